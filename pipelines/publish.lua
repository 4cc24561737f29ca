-- The PR-first flow, part two: on the commit that merging the release PR made, release
-- what its manifests name and the registry does not have yet.
--   Activate → Validate → Version → Package → Tag → Publish
--
--   cdp run publish                    on the merged commit (a push to main in CI)
--   cdp run publish --phase 3          in CI, with no one at a terminal to approve Publish
--
-- versions = "manifest": Version plans no bumps. A crate whose manifest version has no
-- tag and is not in the registry is released at that version; one that is tagged and in
-- the registry is released already and left alone. Nothing is edited: the release PR
-- brought the versions and changelogs, and Package builds the .crate files from the
-- commit as merged. Tag tags that commit, Publish uploads the crates in dependency order
-- and makes the GitHub releases. On a commit with nothing new it does nothing, and says
-- so. Run again after a failure, it finishes what is missing and repeats nothing.
--
-- Secrets: registry_token from CARGO_REGISTRY_TOKEN, forge_token from GITHUB_TOKEN (the
-- GitHub releases), git_token from CDP_GIT_TOKEN for pushes over HTTPS.
return cdp.pipeline {
  name = "publish",
  phase = 2,

  settings = {
    versions = "manifest",
  },

  alerts = {
    sinks = { events = { jsonl = ".cdp/events.jsonl" } },
    rules = { { on = "*", to = "events" } },
  },

  stages = { "activate", "validate", "version", "package", "tag", "publish" },
}
