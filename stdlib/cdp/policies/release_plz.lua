-- release-plz's decisions, for teams that come from it:
--   policy = require("cdp.policies.release_plz") {}   -- takes conventional's options
--
-- Reproduces (read from release-plz's source: crates/next_version,
-- release_plz_core's updater and package_dependencies):
-- - Every commit that touches a crate releases it: commits that are not
--   Conventional Commits, and types such as docs or chore, are a patch
--   (next_version: "some commits, none conventional -> patch"). Here: the
--   wildcard types = { ["*"] = "patch" }.
-- - From 1.0: breaking -> major, feat -> minor. On 0.x (minor > 0): breaking ->
--   minor, feat -> patch (features_always_increment_minor = false); on 0.0.x a
--   breaking change is a patch (zero_minor = true), as next_version does.
-- - A package whose local dependency is released and whose requirement on it
--   would be written differently (cargo-edit's upgrade_requirement keeps the
--   written precision: "0.3" stays for 0.3.2, "0.3.1" becomes "0.3.2") gets the
--   requirement raised and a patch release ("updated the following local
--   packages"). Here: raise_requirements = true, propagate = "patch".
-- - Crates that inherit version.workspace = true share the highest next
--   version among them (new_workspace_version); a crate not in the registry is
--   released at its manifest version, a 0.0.0 placeholder included
--   (version.rs: next_version_of_new_package_is_unchanged; here
--   initial_version = "0.0.0"); a manifest already ahead of the registry
--   is released as it stands (version_already_bumped).
-- - Tags: "{crate}-v{version}", "v{version}" for a one-crate workspace (found
--   from the tags that exist here, as for every policy).
-- - A package with a bin target whose locked dependency versions differ from
--   its published Cargo.lock is released ("chore: update Cargo.lock
--   dependencies", updater.rs add_dependencies_update_if_any). Here the
--   workspace's lock is a binary crate's file (cdp.workspace ships_lock), and a
--   commit whose only change is the lock counts unless it rewrote only entries
--   of workspace members the binary does not depend on (a release commit); its
--   reason says "changed only Cargo.lock". release-plz looks only at the
--   locked versions the binary builds with, so an update of a library's
--   dev-dependency in the lock releases the binary here and not there.
-- Differs:
-- - release-plz compares each package with its last published copy from the
--   registry (downloading it); cdp counts commits since the release tag (or
--   asks the registry's index only for crates without a tag, with --registry).
-- - No cargo-semver-checks run: an API break without a breaking commit
--   message is not seen.
-- - A binary's Cargo.lock-only changes do not release it here.
-- - On a pre-release version release-plz bumps the pre-release number with any
--   commit; cdp does that in pre-release mode (--prerelease LABEL), and
--   graduates otherwise.
local conventional = require "cdp.policies.conventional"

return setmetatable({
  DEFAULTS = { types = { ["*"] = "patch" }, zero_minor = true, raise_requirements = true, propagate = "patch",
    initial_version = "0.0.0" },
}, { __call = function(self, opts) return conventional.preset("release_plz", self.DEFAULTS)(opts) end })
