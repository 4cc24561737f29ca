-- The whole release of a Cargo workspace:
--   Activate → Validate → Test → Version → Package → Tag → Merge → Publish
--
--   cdp pipelines/release.lua                    run it (approval before Publish: phase 2)
--   cdp pipelines/release.lua --phase 3          fully automatic
--   cdp check pipelines/release.lua              every health check, no stage runs
--   cdp config pipelines/release.lua             the effective settings and where they come from
--   cdp plan --pipeline pipelines/release.lua    the Release Plan this policy gives
--
-- Every setting below can be overridden with CDP_<KEY>=value or --set key=value.
-- Edit the policy, the stage list or the alert rules here; nothing needs recompiling.
local conventional = require "cdp.policies.conventional"

return cdp.pipeline {
  name = "release",
  phase = 2,

  -- Conventional Commits decide the bumps: breaking → major (0.x: minor), feat → minor
  -- (0.x: patch), fix and perf → patch. See stdlib/cdp/policies/conventional.lua for
  -- types, overrides, lockstep groups, skipped crates and pre-release labels.
  policy = conventional {},

  settings = {
    ref = "HEAD",                      -- what to release: a branch, tag or commit
    base_branch = "",                  -- the PR's base ("" = the branch ref is on)
    remote = "origin",                 -- where tags and the release branch go
    tag_template = "",                 -- "" = {crate}-v{version} ({version} with a v for one crate)
    prerelease = "",                   -- e.g. "dev" for -dev.N releases
    test_timeout = 1800,
    test_clippy = false,
    test_fmt = false,
    forge_api = "https://api.github.com",
    forge_repo = "",                   -- "" = from the remote's URL
    forge_token = cdp.pipeline.secret("GITHUB_TOKEN"),
    registry_index = "sparse+https://index.crates.io/",
    registry_name = "crates-io",       -- the name `publish = ["..."]` in manifests uses for it
    registry_token = cdp.pipeline.secret("CARGO_REGISTRY_TOKEN"),
    registry_limits = "crates.io",     -- pace new crates and versions as crates.io limits them
    registry_index_timeout = 300,
    git_token = cdp.pipeline.secret("CDP_GIT_TOKEN"),  -- for pushing over HTTPS; empty for file:// or ssh
  },

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
