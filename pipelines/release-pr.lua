-- The PR-first flow, part one: on every push to the base branch, prepare the release
-- and keep the one release pull request current.
--   Activate → Validate → Test → Version → Package → Merge
--
--   cdp run release-pr                 (or cdp pipelines/release-pr.lua) on every push to main
--   cdp run publish                    on the commit that merging the release PR makes
--
-- Nothing is tagged or published here. Merge pushes the release branch (release_branch,
-- default cdp/release/<base>: one per base branch, replaced on every run under a lease,
-- never over a commit someone else pushed) and opens or updates the release PR, whose
-- body holds the plan and the changelog sections. Merging it — merge commit, squash or
-- rebase, by hand or with merge_method — brings the versions and changelogs to the base
-- branch; pipelines/publish.lua on that commit then tags and publishes them.
--
-- Phase 3: this flow only ever pushes a branch and a pull request, which people review
-- before they merge it. Secrets: forge_token from GITHUB_TOKEN, git_token from
-- CDP_GIT_TOKEN; no registry token is needed.
local conventional = require "cdp.policies.conventional"

return cdp.pipeline {
  name = "release-pr",
  phase = 3,

  -- Conventional Commits decide the bumps, as in pipelines/release.lua.
  policy = conventional {},

  -- Every stage declares the settings it reads (`cdp help settings`); give values here,
  -- with CDP_<KEY>=value, or --set key=value, for example:
  --   merge_method = "squash",   -- merge the release PR once its checks pass
  --   release_branch = "release/{base}",
  settings = {},

  alerts = {
    sinks = { events = { jsonl = ".cdp/events.jsonl" } },
    rules = { { on = "*", to = "events" } },
  },

  stages = { "activate", "validate", "test", "version", "package", "merge" },
}
