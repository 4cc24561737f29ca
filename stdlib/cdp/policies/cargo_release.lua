-- cargo-release's decisions, for teams that come from it:
--   policy = require("cdp.policies.cargo_release") {}   -- takes conventional's options
--
-- Reproduces (read from cargo-release's source and docs/reference.md: steps/plan.rs,
-- steps/version.rs, steps/mod.rs):
-- - cargo-release does not read commit messages: the maintainer names the
--   level (`cargo release patch|minor|major`). The crates it releases are the
--   ones with files changed since their last tag (changed_since; it warns when
--   asked to release one without changes). Here a crate with any change since
--   its tag releases, at least a patch (types = { ["*"] = "patch" }), and
--   Conventional Commit messages, where a team writes them, choose minor or
--   major as a maintainer would.
-- - dependent-version = "upgrade" (the default): dependents' requirements on a
--   released crate are rewritten to the new version at their written
--   precision (update_dependent_versions). That changes the dependent's
--   manifest, and a `cargo release --workspace` releases every crate with
--   changes: on rust-cli/anstyle and toml-rs/toml the dependents were
--   released alongside (a patch). Here: raise_requirements = true,
--   propagate = "patch"; raise_requirements = "rewrite" raises without releasing.
--   dependent-version = "fix" (only requirements that no longer admit the new
--   version are rewritten, and those dependents release): raise_requirements = false.
-- - shared-version groups are lockstep groups; version.workspace = true
--   crates share one version.
-- - The last release is the tag of the manifest's version, else the newest
--   tag matching the crate's tag name (find_last_tag).
-- - Tags: "{prefix}v{version}" with prefix "" at the repository root and
--   "{crate}-" below it: "v{version}" for the root crate, "{crate}-v{version}"
--   for members (found from the tags that exist here).
-- Differs:
-- - cargo-release bumps every selected crate by the one level given on its
--   command line, and releases only the crates selected (-p); cdp gives each
--   crate with changes the level its commits ask for (set overrides = { crate =
--   "minor" } for a level of your choosing, --package for a selection).
-- - metadata = "optional": cargo-release drops build metadata unless given
--   again; cdp keeps it (1.1.3+spec-1.1.0 -> 1.1.4+spec-1.1.0).
-- - What counts as a crate's change (steps/plan.rs PackageRelease::load): to
--   cargo-release the workspace's Cargo.lock is one of a binary crate's files
--   (a lock-only change, such as a dependency's release, makes typos-cli
--   "changed"), and files under tests/ are not; cdp's attribution, shared by
--   every policy, counts `cargo package`'s files without that adjustment.
-- - A crate with no change since its tag is still released when named on the
--   command line (with a warning, warn_changed): such re-releases (snapbox
--   0.6.12, toml's 4ac61f76) are not in the history cdp reads.
local conventional = require "cdp.policies.conventional"

return setmetatable({
  DEFAULTS = { types = { ["*"] = "patch" }, raise_requirements = true, propagate = "patch" },
}, { __call = function(self, opts) return conventional.preset("cargo_release", self.DEFAULTS)(opts) end })
