-- cargo-smart-release's decisions, for teams that come from it:
--   policy = require("cdp.policies.smart_release") {}   -- takes conventional's options
--
-- Reproduces (read from cargo-smart-release's source: version.rs, traverse.rs, utils.rs):
-- - `--bump auto`: a crate with unreleased history gets at least a patch, any
--   message counting (the wildcard types = { ["*"] = "patch" }); breaking ->
--   minor on 0.x (0.0.x included: 0.0.3 -> 0.1.0), major from 1.0; feat ->
--   patch on 0.x, minor from 1.0 ("pre-release" there means major == 0).
-- - Safety bumps: every workspace crate that depends on a crate whose release
--   is breaking gets a breaking bump of its own (minor on 0.x, major from 1.0),
--   transitively, so its users are not broken by a dependency they cannot see
--   (isolate_dependencies_from_breaking_changes). Here: propagate = "breaking".
-- - A manifest already ahead of the last release is released as it stands
--   (bump_when_needed); a crate never released is released at its manifest
--   version, a 0.0.0 placeholder included: gitoxide reserves crate names by
--   publishing them at 0.0.0 (gix-note, gix-tix). Here: initial_version = "0.0.0".
-- - Tags: "{crate}-v{version}", and "v{version}" for the crate at the top of
--   the repository (tag_prefix), found from the tags that exist here.
-- Differs:
-- - smart-release starts from the crates named on its command line and adds
--   their changed dependencies; cdp plans every crate, or those of --package
--   and what propagation forces (changed dependencies are not added).
-- - It reads the last release from the crates index; cdp from tags (and the
--   index with --registry for crates without a tag).
-- - It never auto-publishes stable (1.x) dependents when told not to
--   (--no-auto-publish-of-stable-crates); cdp applies safety bumps to all.
local conventional = require "cdp.policies.conventional"

return setmetatable({
  DEFAULTS = { types = { ["*"] = "patch" }, propagate = "breaking", initial_version = "0.0.0" },
}, { __call = function(self, opts) return conventional.preset("smart_release", self.DEFAULTS)(opts) end })
