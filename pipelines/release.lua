-- The whole release of a Cargo workspace:
--   Activate → Validate → Test → Version → Package → Tag → Merge → Publish
--
-- It is built into cdp, so it runs in any repository by its name:
--   cdp run release                   run it (approval before Publish: phase 2)
--   cdp run release --phase 3         fully automatic
--   cdp check release                 every health check, no stage runs
--   cdp config release                the effective settings and where they come from
--   cdp plan --pipeline release       the Release Plan this policy gives
-- `cdp init` writes a project's own copy (cdp.lua), with its tag convention and settings.
--
-- The release commits are made on the release branch (release_branch, default
-- cdp/release/<base>), tagged there and published; Merge opens the one release PR that
-- brings them to the base branch. Merge it however the team merges (merge commit,
-- squash, rebase): the next plan finds these tags all the same. While it is open, a new
-- run stops at Validate, naming the PR. merge_method = "squash" (or "merge", "rebase")
-- has Merge merge it once its checks pass. The PR-first flow is `cdp run release-pr`
-- and `cdp run publish`.
--
-- Every setting can be given here, or with CDP_<KEY>=value or --set key=value.
-- Edit the policy, the stage list or the alert rules here; nothing needs recompiling.
local conventional = require "cdp.policies.conventional"

return cdp.pipeline {
  name = "release",
  phase = 2,

  -- Conventional Commits decide the bumps: breaking → major (0.x: minor), feat → minor
  -- (0.x: patch), fix and perf → patch. docs/policies.md explains its options (types,
  -- overrides, lockstep groups, skipped crates, pre-release labels) and the presets.
  policy = conventional {},

  -- Every stage declares the settings it reads, with a default: `cdp help settings` lists
  -- them all, `cdp config release` shows their values and where each comes from. Give
  -- values here (or CDP_<KEY>=value, or --set key=value), for example:
  --   registry_limits = "none", test_clippy = true, validate_skip = { "clean" },
  -- Secrets are read from the environment: forge_token from GITHUB_TOKEN, registry_token
  -- from CARGO_REGISTRY_TOKEN, git_token from CDP_GIT_TOKEN (cdp.pipeline.secret("VAR")
  -- reads another variable).
  settings = {},

  -- Progress always goes to the terminal. Add sinks and rules to be told elsewhere:
  --   hook = { webhook = "https://ci.example.org/cdp", secret = cdp.pipeline.secret("CDP_HOOK_SECRET") },
  --   mail = { email = "smtp://mail.example.org:587", from = "cdp@example.org", to = { "releases@example.org" } },
  --   chat = { slack = "https://hooks.slack.com/services/..." },
  -- with rules such as { on = "stage.failed", to = { "mail", "chat" } }.
  alerts = {
    sinks = { events = { jsonl = ".cdp/events.jsonl" } },
    rules = { { on = "*", to = "events" } },
  },

  stages = { "activate", "validate", "test", "version", "package", "tag", "merge", "publish" },
}
