-- The Release Plan: which crates bump, to what, and why.
--
--   local p = assert(plan.make{ dir = ".", from = "HEAD", since = nil, policy = fn|nil,
--                               tag_template = nil, prerelease = nil, packages = nil,
--                               registry = nil, all = false })
--   p.crates          sorted by name: { name, current, next, bump, commits = {{id, summary}},
--                     reasons = {{kind, text, ...}}, publish, dir, last_release, last_tag,
--                     tag_template, tag, requirements = {{dependency, kind, from, to}}, ... }
--   p.order           publish order of the crates that will be published
--   p:explain(name)   the commits and dependency edges behind a bump, as text
--   p:table{all=}     the table `cdp plan` prints, with the lines above it
--   p:tag_of(name, v) the tag crate NAME gets at version V under this plan
--   p:diff(other)     what changed between two plans: {{crate, field, old, new, text}}
--   p:to_json()       deterministic JSON (its shape: docs/plan-json.md)
--
-- `cdp.plan()` (the module called) is plan.make. Options:
--   tag_template  nil (found from the tags), a template, or a table with "*" and
--                 per-crate entries (see cdp.tags): { ["*"] = "{crate}-v{version}", cli = "v{version}" }
--   packages      { names }: release only these crates and what propagation forces
--   registry      a cdp.registry client or a sparse index URL, asked about crates without a tag
--   all           walk never-released publish = false crates too (they are left out otherwise)
--   guess         false: no git work ahead of cargo metadata (see guess_ahead); the plan is
--                 the same either way, only slower without
-- Failures of the world (not a repository, broken Cargo.toml, a release tag
-- that is not semver under a template that is set, a policy naming an unknown
-- crate, a plan that cannot hold) return nil, a message naming the thing, and a code.
--
-- Policies. A policy is a function policy(draft) -> decisions. The draft has
--   draft.crates[name] = { name, current, last (version of the last release or nil),
--     last_tag, last_source ("tag" | "registry" | nil), new (never released),
--     publish, dir, inherited_version, tag_template, commits (effective, newest first,
--     each {id, summary, message, parsed = cdp.commits.parse(...), inherited, lock_only
--     (true: the commit changed only the workspace's Cargo.lock of this binary crate)}), cancelled, deps }
--   draft.names (sorted), draft.order (publish order), draft.prerelease (from the command line),
--   draft.scope (set of names from `packages`, or nil)
--   draft:check_crate(name, where)   raises naming a crate that is not in the workspace
--   draft:resolve(levels, opts)      versions, propagation and lockstep from per-crate levels
-- and DECISIONS is what draft:resolve returns, or simply a table crate -> level
-- ("none", "patch", "minor", "major"), version string, or {bump=, version=, reasons=},
-- which the plan resolves with the default options. A reason with `id` (a commit
-- id, full or abbreviated) says which commit caused the level.
local semver = require "cdp.semver"
local commits = require "cdp.commits"
local workspace = require "cdp.workspace"
local json = require "cdp.json"
local tags = require "cdp.tags"

local plan = {}

plan.DEFAULT_TEMPLATE = tags.DEFAULT
plan.SINGLE_TEMPLATE = tags.SINGLE

local PolicyError = { __name = "cdp.plan.PolicyError" }
PolicyError.__tostring = function(e) return e.msg end
local function policy_error(fmt, ...)
  error(setmetatable({ msg = fmt:format(...) }, PolicyError), 0)
end

---------------------------------------------------------------------------
-- Release tags
---------------------------------------------------------------------------

-- Split TEMPLATE at {version}: what comes before (with {crate} as NAME) and after.
function plan.template_parts(template, name)
  local p, err = tags.parse(template)
  if not p then
    return nil, err
  end
  local marker = "\0"
  local whole = tags.name(template, name, marker)
  local at = whole:find(marker, 1, true)
  return whole:sub(1, at - 1), whole:sub(at + 1)
end

-- The tag of crate NAME at VERSION under TEMPLATE: a template, or a set of
-- them (a table, or the text form "T,crate=T"; a crate without an entry and
-- no "*" gets the default).
function plan.tag_name(template, name, version)
  if type(template) == "table" or template:find("[,=]") then
    local set, err = tags.templates(template)
    if err then
      error(err, 2)
    end
    template = tags.for_crate(set, name) or tags.DEFAULT
  end
  return tags.name(template, name, version)
end

-- Every tag that reads under one of TEMPLATES as a release of one of NAMES, as
-- { tag, crate = name | nil, template, version = "text", target = oid, peeled =
-- commit oid | nil, annotated }; crate is nil for a template without {crate}.
-- The version text starts with a digit and is not checked further. One pass in
-- C (src/git_tags.c): refs read once, packed-refs' peeled ids used, no tag
-- object read for a tag no template matches (git_spec holds it to the plain
-- Lua reading with tags.read).
function plan.tag_candidates(repo, names, templates)
  local list, err, code = repo:tag_candidates(names, templates)
  if not list then
    error(("cannot read the tags: %s (%s)"):format(tostring(err), tostring(code)), 2)
  end
  return list
end

-- The set { [oid] = true } of those OIDS that are FROM or its ancestors: one
-- walk in C (src/git_changes.c, Repository:reachable), bounded by the oldest
-- sought commit's time, rather than a descendant_of call per oid.
function plan.reachable(repo, from, oids)
  return assert(repo:reachable(from, oids))
end

-- The templates to read tags with: those set, and the known conventions when
-- some crate has none set.
local function templates_to_read(names, set)
  local list, seen = {}, {}
  local function add(t)
    if not seen[t] then
      seen[t] = true
      list[#list + 1] = t
    end
  end
  local all_set = set ~= nil and set["*"] ~= nil
  for _, n in ipairs(names) do
    if not tags.for_crate(set, n) then
      all_set = false
    end
  end
  if set then
    local keys = {}
    for k in pairs(set) do
      keys[#keys + 1] = k
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
      add(set[k])
    end
  end
  if not all_set then
    for _, t in ipairs(tags.KNOWN) do
      add(t)
    end
  end
  return list
end

-- The last release of each crate, wherever its tag is: the tag of the version
-- its manifest names, else the highest of its tags merged into FROM.
-- MEMBERS: { {name, version, dir, publish, inherited_version} }; SET: tags.templates' form or nil.
-- Returns releases { [name] = {tag, version, commit, reachable} }, conventions
-- (tags.conventions' by_crate), warnings, or nil, message, "ETAG".
local function last_releases(repo, members, set, single, from)
  local names = {}
  for i, m in ipairs(members) do
    names[i] = m.name
  end
  local candidates = plan.tag_candidates(repo, names, templates_to_read(names, set))
  local function exists(commit, dir)
    return commit == nil or dir == nil
      or repo:tree_entry(commit, (dir == "" and "" or dir .. "/") .. "Cargo.toml") ~= nil
  end
  local conventions, problems, code = tags.conventions(candidates, members, set, single, exists)
  if not conventions then
    return nil, problems, code
  end
  local existing = {}
  for _, c in ipairs(candidates) do
    existing[c.tag] = c.peeled or c.target
  end
  local warnings = {}
  for _, pr in ipairs(problems) do
    if pr.explicit then
      return nil, ("release tag '%s' matches the tag template '%s' but '%s' is not a semantic version")
        :format(pr.tag, pr.template, pr.version), "ETAG"
    end
    warnings[#warnings + 1] = ("tag %s looks like a release of %s (%s) but '%s' is not a semantic version; "
      .. "it is not counted"):format(pr.tag, pr.crate, pr.template, pr.version)
  end

  -- The manifest's own version first: its tag is the release wherever it is,
  -- and whether FROM reaches it is left to the walk (stats.reachable, read
  -- by walk_changes), which reads down to it anyway. Reachability is asked
  -- only for what decides, in at most two batches: for a crate without a
  -- manifest tag, its highest tag not above the manifest (usually the
  -- release, and recent, which keeps the walk short: tokio-macros' oldest tag
  -- would send it through all of tokio's history), then the crate's other
  -- tags only when that one is not merged into FROM.
  local by_manifest, ask, asked, first = {}, {}, {}, {}
  local matched = 0
  local function want(oid)
    if oid and not asked[oid] then
      asked[oid] = true
      ask[#ask + 1] = oid
    end
  end
  for _, m in ipairs(members) do
    local list = conventions[m.name].tags
    local current = m.version and semver.parse(m.version)
    if #list > 0 then
      matched = matched + 1
    end
    for _, r in ipairs(list) do
      if current and r.version == current then
        by_manifest[m.name] = r
        break
      end
    end
    if not by_manifest[m.name] then
      for _, r in ipairs(list) do
        if r.commit and not (current and r.version > current) then
          first[m.name] = r
          want(r.commit)
          break
        end
      end
    end
  end
  local reachable = #ask > 0 and plan.reachable(repo, from, ask) or {}
  ask = {}
  for _, m in ipairs(members) do
    local r = first[m.name]
    if not by_manifest[m.name] and not (r and reachable[r.commit]) then
      for _, t in ipairs(conventions[m.name].tags) do
        want(t.commit)
      end
    end
  end
  if #ask > 0 then
    for oid in pairs(plan.reachable(repo, from, ask)) do
      reachable[oid] = true
    end
  end
  local releases = {}
  for _, m in ipairs(members) do
    local pick = by_manifest[m.name]
    if not pick then
      -- The highest merged tag the manifest has reached; tags above it (a
      -- nightly's pre-release, a release of a newer branch) only when none is.
      local current = m.version and semver.parse(m.version)
      local above
      for _, r in ipairs(conventions[m.name].tags) do
        if r.commit and reachable[r.commit] then
          if current and r.version > current then
            above = above or r
          else
            pick = r
            break
          end
        end
      end
      pick = pick or above
    end
    if pick and not tags.has_crate(conventions[m.name].template) and m.dir ~= "" and not exists(pick.commit, m.dir) then
      pick = nil -- a shared tag older than the crate itself is not its release
    end
    if pick then
      -- reachable: nil for the manifest's tag until the walk has said
      local reach = pick.commit ~= nil and reachable[pick.commit] == true
      if pick == by_manifest[m.name] and pick.commit ~= nil then
        reach = nil
      end
      releases[m.name] = { tag = pick.tag, version = tostring(pick.version), commit = pick.commit,
        reachable = reach, source = "tag" }
    end
  end
  return releases, conventions, warnings, matched, existing
end

-- The last release of each crate as a map { [crate] = {tag, version, commit} }
-- (what Validate compares manifests with). TEMPLATE: a template, a table of
-- them, or nil to find each crate's convention; VERSIONS: { [crate] = manifest
-- version } when known, so the manifest's own tag counts first.
function plan.releases(repo, names, template, from, versions)
  local set, err, code = tags.templates(template)
  if err then
    return nil, err, code
  end
  local members = {}
  for i, n in ipairs(names) do
    members[i] = { name = n, version = versions and versions[n], publish = true }
  end
  local releases
  releases, err, code = last_releases(repo, members, set, #names == 1, from)
  if not releases then
    return nil, err, code
  end
  local out = {}
  for name, r in pairs(releases) do
    out[name] = { tag = r.tag, version = r.version, commit = r.commit }
  end
  return out
end

-- The tag crate NAME gets at VERSION under plan DATA: the plan itself, or
-- its JSON decoded (what stages hold). Falls back to the plan's workspace
-- template, then to the default.
function plan.tag_for(data, name, version)
  local template, metadata
  for _, c in ipairs(data.crates or {}) do
    if c.name == name then
      template, metadata = c.tag_template, c.tag_metadata
      break
    end
  end
  if metadata == false then
    version = tags.without_metadata(version)
  end
  if template == nil or template == json.null then
    template = data.tag_template
  end
  if template == nil or template == json.null then
    template = #(data.crates or {}) == 1 and tags.SINGLE or tags.DEFAULT
  end
  return tags.name(template, name, version)
end

---------------------------------------------------------------------------
-- Versions
---------------------------------------------------------------------------

local function with_build(v, build)
  if #v.build == 0 and build and #build > 0 then
    return semver.new(v.major, v.minor, v.patch, v.pre, build)
  end
  return v
end

-- A release that a caret requirement on the old version does not admit.
local function is_breaking(last, next)
  if not last then
    return false
  end
  local req = semver.req("^" .. semver.format(semver.v(last):release()))
  return req ~= nil and not req:matches(next:release())
end

-- The level that is breaking for a crate at VERSION: minor on 0.x, major from 1.0.
local function breaking_level(version)
  local v = semver.parse(version or "0.0.0")
  return (v and v.major == 0) and "minor" or "major"
end

-- A pre-release that only marks work towards a version ("-dev", "-pre",
-- "-snapshot", "-alpha.0"): a first release outside pre-release mode is that version.
local function is_dev_marker(v)
  local label, n = v:prerelease_label()
  return label == "dev" or label == "pre" or label == "snapshot" or (label == "alpha" and n == 0)
end

-- The version CRATE releases at for LEVEL (or FORCED), under pre-release LABEL
-- counted from START. Returns the version (Version), the bump to show, and
-- "manifest" when the manifest's own version (already past the last
-- release) is what is released; nil when nothing is released.
local function next_version(crate, level, forced, label, initial, start)
  local current = semver.v(crate.current)
  local first = tostring(start or 1)
  if forced then
    local v = semver.parse(forced)
    if not v then
      policy_error("policy: version '%s' for %s is not a semantic version", tostring(forced), crate.name)
    end
    local base = crate.last and semver.v(crate.last) or current
    local shown = crate.new and "initial" or semver.level_between(base, v)
    return v, shown == "none" and "patch" or shown
  end
  if crate.new then
    local v = current
    if initial and v.major == 0 and v.minor == 0 and v.patch == 0 and semver.v(initial) > v then
      v = with_build(semver.v(initial), current.build) -- a 0.0.0 placeholder
    elseif not label and is_dev_marker(v) then
      v = with_build(v:release(), current.build)
    end
    if label and not v:is_prerelease() then
      v = semver.new(v.major, v.minor, v.patch, { label, first }, v.build)
    end
    return v, "initial"
  end
  local base = semver.v(crate.last)
  if not label and is_dev_marker(current) and not base:is_prerelease() and current:release() > base then
    -- The manifest names the next version as a pre-release (cargo-release's
    -- dev-version, "0.8.0-dev"): outside pre-release mode that release is meant.
    current = with_build(current:release(), current.build)
  elseif label and is_dev_marker(current) and not base:is_prerelease() and current:release() > base
      and current:prerelease_label() ~= label then
    -- In pre-release mode that marker names the version the pre-releases lead
    -- to: 0.14.0-dev with --prerelease rc is 0.14.0-rc.1 (bevy), not 0.14.0-dev again.
    local r = current:release()
    current = semver.new(r.major, r.minor, r.patch, { label, first }, current.build)
  end
  -- A manifest already past the last release (bumped by hand, or by a release
  -- that was interrupted) is released as it stands, unless the commits ask for more.
  local ahead = current > base and (label == nil) == (not current:is_prerelease())
  local v, shown
  if label then
    if level == "none" and not ahead then
      return nil, "none"
    end
    if level ~= "none" then
      local target = semver.bump(base, level)
      local base_label, n = base:prerelease_label()
      if base:is_prerelease() and target == base:release() and base_label == label and n then
        v = semver.new(target.major, target.minor, target.patch, { label, tostring(n + 1) })
      else
        v = semver.new(target.major, target.minor, target.patch, { label, first })
      end
      shown = level
    end
  elseif base:is_prerelease() then
    v = level == "none" and base:release() or semver.bump(base, level)
    shown = level == "none" and "graduate" or level
  elseif level ~= "none" then
    v, shown = semver.bump(base, level), level
  end
  if ahead and (v == nil or current > v) then
    local l = semver.level_between(base:release(), current:release())
    return current, l == "none" and "patch" or l, "manifest"
  end
  if not v then
    return nil, "none"
  end
  return with_build(v, current.build), shown
end

---------------------------------------------------------------------------
-- The draft a policy decides on
---------------------------------------------------------------------------

local Draft = { __name = "cdp.plan.Draft" }
Draft.__index = Draft

local Resolved = { __name = "cdp.plan.Decisions" }

function Draft:check_crate(name, where)
  if not self.crates[name] then
    policy_error("policy: unknown crate '%s' in %s (workspace crates: %s)",
      tostring(name), where, table.concat(self.names, ", "))
  end
end

-- Reasons are kept once per text, in the order they came.
local function add_reason(s, reason)
  s.reason_texts = s.reason_texts or {}
  if s.reason_texts[reason.text] then
    return
  end
  s.reason_texts[reason.text] = true
  s.reasons[#s.reasons + 1] = reason
end

-- The options of a resolution, checked, with the lockstep groups it holds:
-- the named ones, and crates inheriting [workspace.package] version.
local function resolution(draft, opts)
  local r = {
    label = draft.prerelease or opts.prerelease,
    start = opts.prerelease_start or 1,
    propagate = opts.propagate or "patch",
    raise = opts.raise_requirements,
    initial = opts.initial_version or "0.1.0",
    skip = {},
    groups = {},
  }
  if r.propagate == false then
    r.propagate = "none"
  end
  if r.propagate ~= "breaking" and semver.LEVELS[r.propagate] == nil then
    policy_error("policy: propagate must be none, patch, minor, major or \"breaking\" (got %s)", tostring(r.propagate))
  end
  if r.start ~= 0 and r.start ~= 1 then
    policy_error("policy: prerelease_start must be 0 or 1 (got %s)", tostring(r.start))
  end
  if r.raise ~= nil and r.raise ~= true and r.raise ~= false and r.raise ~= "rewrite" then
    policy_error("policy: raise_requirements must be true, false or \"rewrite\" (got %s)", tostring(r.raise))
  end
  for _, name in ipairs(opts.skip or {}) do
    draft:check_crate(name, "skip")
    r.skip[name] = true
  end
  for i, group in ipairs(opts.lockstep or {}) do
    for _, name in ipairs(group) do
      draft:check_crate(name, ("lockstep group %d"):format(i))
    end
    r.groups[#r.groups + 1] = { members = group, name = ("lockstep group %d"):format(i) }
  end
  local inherited = {}
  for _, name in ipairs(draft.names) do
    local c = draft.crates[name]
    if c.inherited_version and c.publish then
      inherited[#inherited + 1] = name
    end
  end
  if #inherited > 1 then
    r.groups[#r.groups + 1] = { members = inherited, inherited = true, name = "version.workspace = true" }
  end
  -- A template without {crate} names one tag per version: crates at one
  -- version that share one must keep sharing it, or the next release of one
  -- takes the tag the others need.
  local sharing, keys = {}, {}
  for _, name in ipairs(draft.names) do
    local c = draft.crates[name]
    if c.publish and c.tag_template and not tags.has_crate(c.tag_template) and not c.inherited_version then
      local key = c.tag_template .. "\0" .. c.current
      if not sharing[key] then
        sharing[key] = { members = {}, tag = c.tag_template, name = ("one tag per version (%s)"):format(c.tag_template) }
        keys[#keys + 1] = key
      end
      table.insert(sharing[key].members, name)
    end
  end
  for _, key in ipairs(keys) do
    if #sharing[key].members > 1 then
      r.groups[#r.groups + 1] = sharing[key]
    end
  end
  return r
end

-- Per-crate state from the policy's LEVELS.
local function initial_state(draft, levels, r)
  for name in pairs(levels) do
    if type(name) == "string" then
      draft:check_crate(name, "the policy's decisions")
    end
  end
  local state = {}
  for _, name in ipairs(draft.names) do
    local crate = draft.crates[name]
    local d = levels[name]
    local s = { level = "none", reasons = {}, eligible = crate.publish and not r.skip[name],
      held = draft.scope ~= nil and not draft.scope[name] }
    if type(d) == "string" then
      if semver.LEVELS[d] then
        s.level = d
      else
        s.pinned = d
      end
    elseif type(d) == "table" then
      s.level = d.bump or "none"
      s.pinned = d.version
      for _, reason in ipairs(d.reasons or {}) do
        add_reason(s, type(reason) == "string" and { kind = "policy", text = reason } or reason)
      end
    elseif d ~= nil then
      policy_error("policy: decision for %s must be a level, a version or a table (got %s)", name, type(d))
    end
    if semver.LEVELS[s.level] == nil then
      policy_error("policy: level '%s' for %s is not none, patch, minor or major", tostring(s.level), name)
    end
    s.own_level = s.level
    if not crate.publish then
      add_reason(s, { kind = "unpublished", text = "publish = false: never released by cdp" })
    elseif r.skip[name] then
      add_reason(s, { kind = "skip", text = "skipped by the policy" })
    end
    state[name] = s
  end
  return state
end

-- Work out S.next for crate NAME from its level, pin and lockstep floor.
local function recompute(draft, state, r, name)
  local s = state[name]
  if not s.eligible or s.held then
    s.next, s.shown, s.note = nil, "none", nil
    return
  end
  s.next, s.shown, s.note = next_version(draft.crates[name], s.level, s.pinned, r.label, r.initial, r.start)
  if s.floor and (s.next == nil or s.floor > s.next) then
    local crate = draft.crates[name]
    local base = crate.last and semver.v(crate.last) or semver.v(crate.current)
    s.next, s.note = s.floor, nil
    local l = semver.level_between(base:release(), s.floor:release())
    s.shown = crate.new and "initial" or (l == "none" and "patch" or l)
  end
end

local function note_first_versions(draft, state, r)
  for _, name in ipairs(draft.names) do
    recompute(draft, state, r, name)
    local s, crate = state[name], draft.crates[name]
    if s.shown == "initial" then
      add_reason(s, { kind = "initial", text = crate.last_source == "registry-none"
        and "first release (no release tag, and not in the registry)" or "first release (no release tag)" })
    elseif s.shown == "graduate" then
      add_reason(s, { kind = "graduate", text = ("graduates from pre-release %s"):format(crate.last) })
    end
  end
end

-- Bring crate NAME into the release at LEVEL at least, for REASON; crates
-- outside the scope join it. Returns whether its version moved.
local function force(draft, state, r, name, level, reason)
  local s = state[name]
  if not s.eligible or s.pinned then
    return false
  end
  add_reason(s, reason)
  local before = s.next and tostring(s.next)
  if s.held then
    s.held = false
    s.added = s.added or reason
    s.level = semver.max_bump(s.own_level, s.level)
  end
  if semver.LEVELS[s.level] < semver.LEVELS[level] or not s.next then
    s.level = semver.max_bump(s.level, level)
  end
  recompute(draft, state, r, name)
  return (s.next and tostring(s.next)) ~= before
end

-- One pass over the dependency edges of crates that release: requirements
-- that no longer admit the new version, safety bumps after breaking
-- releases, and raised requirements. Returns whether anything moved.
local function propagate_once(draft, state, r)
  local moved = false
  for _, x in ipairs(draft.order) do
    local sx = state[x]
    if sx.next then
      local breaking = is_breaking(draft.crates[x].last, sx.next)
      for _, e in ipairs(draft.dependents[x] or {}) do
        local req = semver.req(e.req)
        if e.req ~= "*" and req and e.kind ~= "dev" then
          local d = draft.crates[e.from]
          local base = { crate = x, dep_kind = e.kind, old_req = e.req,
            new_req = semver.rewrite_req(e.req, sx.next), version = tostring(sx.next) }
          local reason, level
          if r.propagate == "breaking" and breaking then
            level = breaking_level(d.last or d.current)
            reason = { kind = "dependency", safety = true, text = ("depends on %s (%s), whose %s → %s is breaking: "
              .. "a safety bump"):format(x, e.kind, draft.crates[x].last or "—", tostring(sx.next)) }
          elseif not req:matches(sx.next) and r.propagate ~= "none" then
            level = r.propagate == "breaking" and "patch" or r.propagate
            reason = { kind = "dependency", text = ("depends on %s (%s): \"%s\" does not admit %s")
              :format(x, e.kind, e.req, tostring(sx.next)) }
          elseif r.raise == true and base.new_req ~= e.req then
            level = "patch"
            reason = { kind = "raise", text = ("depends on %s (%s): \"%s\" raised to \"%s\"")
              :format(x, e.kind, e.req, base.new_req) }
          end
          if reason then
            for k, v in pairs(base) do
              reason[k] = v
            end
            reason.level = level
            if force(draft, state, r, e.from, level, reason) then
              moved = true
            end
          end
        end
      end
    end
  end
  return moved
end

-- One pass over the lockstep groups: every member moves to the highest
-- version any of them reaches. Returns whether anything moved.
local function lockstep_once(draft, state, r)
  local moved = false
  for _, group in ipairs(r.groups) do
    local shared
    for _, name in ipairs(group.members) do
      local s = state[name]
      if s.next and (shared == nil or s.next > shared) then
        shared = s.next
      end
    end
    if shared then
      -- no member may go below its own last release
      for _, name in ipairs(group.members) do
        local s, crate = state[name], draft.crates[name]
        if s.eligible and not crate.new and semver.v(crate.last) >= shared then
          local v = next_version(crate, "patch", nil, r.label, r.initial, r.start)
          if v > shared then
            shared = v
          end
        end
      end
      local members = table.concat(group.members, ", ")
      for _, name in ipairs(group.members) do
        local s = state[name]
        if s.eligible then
          local text
          if group.inherited then
            text = ("version.workspace = true: shares version %s with %s"):format(tostring(shared), members)
          elseif group.tag then
            text = ("shares its tags (%s) and version %s with %s"):format(group.tag, tostring(shared), members)
          else
            text = ("%s (%s) shares version %s"):format(group.name, members, tostring(shared))
          end
          local reason = { kind = "lockstep", group = group.name, version = tostring(shared), text = text }
          if s.held then
            force(draft, state, r, name, "none", reason)
          end
          add_reason(s, reason)
          if s.next == nil or s.next ~= shared then
            s.floor = shared
            recompute(draft, state, r, name)
            moved = true
          end
        end
      end
    end
  end
  return moved
end

-- Propagation and lockstep feed each other; repeat until nothing moves.
local function settle(draft, state, r)
  for _ = 1, 4 * #draft.names + 4 do
    local moved = propagate_once(draft, state, r)
    if lockstep_once(draft, state, r) then
      moved = true
    end
    if not moved then
      return
    end
  end
end

-- Every requirement on a crate that moves must still admit its new version:
-- rewritten for every kind, and for publish = false crates too. With
-- raise_requirements, requirements that admit it are raised as well.
local function rewrite_requirements(draft, state, r)
  for _, name in ipairs(draft.names) do
    state[name].requirements = {}
  end
  for _, x in ipairs(draft.names) do
    local sx = state[x]
    if sx.next then
      for _, e in ipairs(draft.dependents[x] or {}) do
        local req = semver.req(e.req)
        local new = req and e.req ~= "*" and semver.rewrite_req(e.req, sx.next)
        local needed = new and not req:matches(sx.next)
        if needed or (new and r.raise and new ~= e.req) then
          local sd = state[e.from]
          table.insert(sd.requirements, { dependency = x, kind = e.kind, from = e.req, to = new,
            rename = e.rename, inherited = e.inherited or nil })
          add_reason(sx, { kind = "dependent", crate = e.from, dep_kind = e.kind,
            old_req = e.req, new_req = new,
            text = ("%s's %s requirement \"%s\" rewritten to \"%s\""):format(e.from, e.kind, e.req, new) })
          if e.kind == "dev" then
            add_reason(sd, { kind = "dev-dependency", crate = x, old_req = e.req, new_req = new,
              text = ("dev-dependency on %s: \"%s\" rewritten to \"%s\" (no bump)"):format(x, e.req, new) })
          elseif not sd.next then
            add_reason(sd, { kind = "requirement", crate = x, old_req = e.req, new_req = new,
              text = ("requirement on %s: \"%s\" rewritten to \"%s\""):format(x, e.req, new) })
          end
        end
      end
    end
  end
  for _, name in ipairs(draft.names) do
    table.sort(state[name].requirements, function(a, b)
      if a.dependency ~= b.dependency then return a.dependency < b.dependency end
      return a.kind < b.kind
    end)
  end
end

-- A plan that cannot be carried out fails here, naming the crates, before
-- any stage acts on it.
local function check_holds(draft, state, r)
  for _, group in ipairs(r.groups) do
    local moving, stuck = {}, {}
    for _, name in ipairs(group.members) do
      local s = state[name]
      if s.next then
        moving[#moving + 1] = name
      elseif draft.crates[name].publish and (r.skip[name] or s.held) then
        stuck[#stuck + 1] = name
      end
    end
    if #moving > 0 and #stuck > 0 then
      local why = group.inherited and "inherit one version from [workspace.package] (version.workspace = true)"
        or ("are in %s"):format(group.name)
      policy_error("the plan cannot hold: %s %s, but %s %s released while %s %s; release all of them or none "
        .. "(unskip them, add them to --package, or give them their own version)",
        table.concat(group.members, ", "), why, table.concat(stuck, ", "), #stuck == 1 and "is not" or "are not",
        table.concat(moving, ", "), #moving == 1 and "is" or "are")
    end
  end
  for _, name in ipairs(draft.names) do
    local s, crate = state[name], draft.crates[name]
    if s.next and crate.last and not (s.next > semver.v(crate.last)) then
      policy_error("policy: %s would go to %s, which is not above its last release %s",
        name, tostring(s.next), crate.last)
    end
  end
end

local function note_outcomes(draft, state)
  for _, name in ipairs(draft.names) do
    local s, crate = state[name], draft.crates[name]
    if s.note == "manifest" then
      -- A dev marker names the version rather than being it: 0.14.0-dev is
      -- released as 0.14.0, or 0.14.0-rc.1 in pre-release mode; say which.
      local next = tostring(s.next)
      local where = next == crate.current and "already in the manifest"
        or ("named by the manifest's %s"):format(crate.current)
      add_reason(s, { kind = "manifest", version = crate.current, level = s.shown,
        text = ("%s → %s, %s"):format(crate.last, next, where) })
    end
    if s.held and s.eligible and s.own_level ~= "none" then
      add_reason(s, { kind = "scope", text = ("left out: not among the packages asked for (its commits ask for %s)")
        :format(s.own_level) })
    end
  end
end

-- Turn per-crate LEVELS into the plan's decisions.
-- LEVELS[name]: nil | level | version string | {bump=, version=, reasons=}.
-- OPTS: propagate (level a dependent bumps by when a requirement on a bumped
-- crate must be rewritten, "breaking" for safety bumps after breaking
-- releases; default "patch"), raise_requirements (true: raise every
-- requirement on a released crate and release the dependent; "rewrite": raise
-- without releasing), lockstep ({{names}}), skip ({names}), prerelease (label;
-- the command line's wins), prerelease_start (0 or 1), initial_version ("0.1.0").
function Draft:resolve(levels, opts)
  local r = resolution(self, opts or {})
  local state = initial_state(self, levels, r)
  note_first_versions(self, state, r)
  settle(self, state, r)
  rewrite_requirements(self, state, r)
  check_holds(self, state, r)
  note_outcomes(self, state)
  local decisions = {}
  for _, name in ipairs(self.names) do
    local s = state[name]
    decisions[name] = {
      next = s.next and tostring(s.next) or nil,
      bump = s.next and s.shown or "none",
      reasons = s.reasons,
      requirements = s.requirements,
      own_level = s.own_level,
      added = s.added and s.next and s.added or nil,
    }
  end
  return setmetatable(decisions, Resolved)
end

-- The draft for a workspace model WS, release map RELEASES and per-crate
-- commit lists CHANGES[name] (newest first, {id, summary, message}).
-- OPTS: prerelease, scope (set of names), conventions (tags.conventions'
-- by_crate), walked (set of names whose history was read; default all).
function plan.draft(ws, releases, changes, opts)
  opts = opts or {}
  local draft = setmetatable({ crates = {}, names = {}, order = ws.order, dependents = {},
    prerelease = opts.prerelease, single = ws.single, scope = opts.scope }, Draft)
  local parsed = opts.parsed_cache or {}
  for _, m in ipairs(ws.members) do
    local rel = releases[m.name]
    local list = {}
    for i, c in ipairs(changes[m.name] or {}) do
      local p = parsed[c.id] or c.parsed -- the walk parses each message once, in C
      if not p then
        p = commits.parse(c.message or c.summary or "")
        parsed[c.id] = p
      end
      list[i] = { id = c.id, summary = c.summary or p.header, message = c.message, parsed = p,
        merge = c.parents ~= nil and #c.parents > 1, author = c.author, time = c.time,
        inherited = c.inherited and c.inherited[m.name], lock_only = c.lock_only and c.lock_only[m.name] }
    end
    local kept, cancelled = commits.effective(list)
    local conv = opts.conventions and opts.conventions[m.name]
    draft.crates[m.name] = {
      name = m.name, current = m.version, last = rel and rel.version, last_tag = rel and rel.tag,
      last_source = rel and rel.source or (opts.registry_asked and opts.registry_asked[m.name] and "registry-none"),
      new = rel == nil, publish = m.publish ~= false, registries = type(m.publish) == "table" and m.publish or nil,
      dir = m.dir, commits = kept, all_commits = list, cancelled = cancelled, deps = m.deps,
      inherited_version = m.inherited_version, tag_template = conv and conv.template,
      tag_metadata = not (conv and conv.metadata == false),
      tag_source = conv and conv.source, tags_found = conv and conv.found,
      walked = opts.walked == nil or opts.walked[m.name] == true,
    }
    draft.names[#draft.names + 1] = m.name
    draft.dependents[m.name] = ws:dependents(m.name)
  end
  table.sort(draft.names)
  return draft
end

---------------------------------------------------------------------------
-- The plan
---------------------------------------------------------------------------

local Plan = { __name = "cdp.Plan" }
Plan.__index = Plan

local PRIMARY = { override = true, initial = true, graduate = true, lockstep = true, manifest = true }

-- Why a crate does not release, most telling first.
local HOLDING = { unpublished = 1, skip = 2, scope = 3, ["no-release"] = 4 }

local function primary_reason(entry)
  if entry.bump == "none" then
    local best
    for _, r in ipairs(entry.reasons) do
      if HOLDING[r.kind] and (best == nil or HOLDING[r.kind] < HOLDING[best.kind]) then
        best = r
      end
    end
    if best then
      return best
    end
  end
  local best, best_level = nil, -1
  for _, r in ipairs(entry.reasons) do
    local l = semver.LEVELS[r.level or ""] or 0
    if PRIMARY[r.kind] then
      l = 4
    end
    if l > best_level then
      best, best_level = r, l
    end
  end
  return best
end

-- Whether a reason names a commit (by id, full or abbreviated) of the entry.
local function names_commit(reason, id)
  local rid = type(reason.id) == "string" and reason.id:lower()
  return rid and #rid >= 7 and id:sub(1, #rid) == rid
end

-- A crate the policy releases by a level of its own, with no reason naming a
-- commit, gets one that says the policy chose it for these commits.
local function tie_policy_level(entry, d, c)
  if d.own_level == nil or d.own_level == "none" or entry.bump == "none" or #c.commits == 0 then
    return
  end
  for _, r in ipairs(entry.reasons) do
    if r.id then
      return
    end
  end
  entry.reasons[#entry.reasons + 1] = { kind = "policy", level = d.own_level,
    text = ("the policy chose %s for the crate's %d commit(s)"):format(d.own_level, #c.commits) }
  entry.policy_level = d.own_level
end

-- Build the plan from a draft and the policy's decisions.
function plan.build(draft, decisions, meta)
  if getmetatable(decisions) ~= Resolved then
    decisions = draft:resolve(decisions or {}, {})
  end
  meta = meta or {}
  local crates, by_name = {}, {}
  for _, name in ipairs(draft.names) do
    local c, d = draft.crates[name], decisions[name]
    local template = c.tag_template or meta.tag_template or (draft.single and tags.SINGLE or tags.DEFAULT)
    local entry = {
      name = name,
      current = c.current,
      next = d.next or c.current,
      bump = d.bump,
      commits = {},
      reasons = d.reasons,
      requirements = d.requirements,
      publish = c.publish and d.next ~= nil,
      publishable = c.publish,
      dir = c.dir,
      last_release = c.last or json.null,
      last_tag = c.last_tag or json.null,
      last_release_source = (c.last_source == "tag" or c.last_source == "registry") and c.last_source or json.null,
      tag_template = template,
      tag_template_source = c.tag_source or "default",
      tag_metadata = c.tag_metadata ~= false,
      tag = d.next and c.publish and tags.name(template, name,
        c.tag_metadata == false and tags.without_metadata(d.next) or d.next) or json.null,
      added = d.added and d.added.text or json.null,
      walked = c.walked ~= false,
      cancelled = {},
    }
    for i, commit in ipairs(c.commits) do
      entry.commits[i] = { id = commit.id, summary = commit.summary }
    end
    for i, commit in ipairs(c.cancelled) do
      entry.cancelled[i] = { id = commit.id, summary = commit.summary, cancelled_by = commit.cancelled_by }
    end
    tie_policy_level(entry, d, c)
    if #entry.reasons == 0 and #c.commits > 0 then
      entry.reasons[1] = { kind = "no-release", text = ("%d commit(s), none that the policy releases")
        :format(#c.commits) }
    end
    crates[#crates + 1] = entry
    by_name[name] = entry
  end
  local order = {}
  for _, name in ipairs(draft.order) do
    if by_name[name].publish then
      order[#order + 1] = name
    end
  end
  return setmetatable({ crates = crates, by_name = by_name, order = order, draft = draft,
    from = meta.from, tag_template = meta.tag_template, since = meta.since,
    warnings = meta.warnings or {}, scope = meta.scope, tags_matched = meta.tags_matched }, Plan)
end

-- How many crates follow each convention: { [template] = n }, for crates that publish.
function Plan:conventions()
  local out = {}
  for _, c in ipairs(self.crates) do
    if c.publishable then
      out[c.tag_template] = (out[c.tag_template] or 0) + 1
    end
  end
  return out
end

-- { crates, release, unchanged, unpublished }
function Plan:counts()
  local n = { crates = #self.crates, release = 0, unchanged = 0, unpublished = 0 }
  for _, c in ipairs(self.crates) do
    if c.bump ~= "none" then
      n.release = n.release + 1
    elseif not c.publishable then
      n.unpublished = n.unpublished + 1
    else
      n.unchanged = n.unchanged + 1
    end
  end
  return n
end

-- The tag crate NAME gets at VERSION (default: its next version) under this plan.
function Plan:tag_of(name, version)
  if not self.by_name[name] then
    error(("plan:tag_of: no crate '%s' in the plan"):format(tostring(name)), 2)
  end
  return plan.tag_for(self, name, version or self.by_name[name].next)
end

-- The scope as data: { packages = {...}, added = {{name, reason}} } or json.null.
local function scope_data(p)
  if not p.scope then
    return json.null
  end
  local added = {}
  for _, c in ipairs(p.crates) do
    if c.added ~= json.null then
      added[#added + 1] = { name = c.name, reason = c.added }
    end
  end
  return { packages = json.array(p.scope), added = json.array(added) }
end

-- The plan as data, without the draft (what the JSON holds).
function Plan:data()
  local crates = {}
  for i, c in ipairs(self.crates) do
    crates[i] = c
  end
  local conventions = self:conventions()
  return { crates = crates, order = self.order, from = self.from or json.null,
    tag_template = self.tag_template or json.null,
    conventions = next(conventions) and conventions or json.object(),
    counts = self:counts(), scope = scope_data(self), warnings = json.array(self.warnings) }
end

function Plan:to_json(opts)
  return json.encode(self:data(), { indent = (opts and opts.indent) or "  " })
end

-- "tags: {crate}-v{version} for 3 crates, v{version} for 1 crate (found); 2 never released"
function Plan:conventions_line()
  local groups, order = {}, {}
  local never, sources = 0, {}
  for _, c in ipairs(self.crates) do
    if c.publishable then
      local g = groups[c.tag_template]
      if not g then
        g = { template = c.tag_template, n = 0 }
        groups[c.tag_template] = g
        order[#order + 1] = g
      end
      g.n = g.n + 1
      sources[c.tag_template_source] = (sources[c.tag_template_source] or 0) + 1
      if c.last_tag == json.null then
        never = never + 1
      end
    end
  end
  if #order == 0 then
    return nil
  end
  table.sort(order, function(a, b)
    if a.n ~= b.n then return a.n > b.n end
    return a.template < b.template
  end)
  if not sources.set and not sources.tags then
    return ("tags: none found yet; new tags will be %s"):format(order[1].template)
  end
  local parts = {}
  for _, g in ipairs(order) do
    parts[#parts + 1] = ("%s for %d crate%s"):format(g.template, g.n, g.n == 1 and "" or "s")
  end
  local how
  if sources.set and (sources.tags or sources.default) then
    how = ("set for %d, found for the rest"):format(sources.set)
  else
    how = sources.set and "set" or "found"
  end
  local line = ("tags: %s (%s)"):format(table.concat(parts, ", "), how)
  if never > 0 then
    line = line .. ("; %d never released"):format(never)
  end
  return line
end

-- "41 crates, 7 release, 30 unchanged, 4 publish = false"
function Plan:counts_line(all)
  local n = self:counts()
  local parts = { ("%d crate%s"):format(n.crates, n.crates == 1 and "" or "s"), ("%d release"):format(n.release) }
  if n.unchanged > 0 then
    parts[#parts + 1] = ("%d unchanged"):format(n.unchanged)
  end
  if n.unpublished > 0 then
    parts[#parts + 1] = ("%d publish = false"):format(n.unpublished)
  end
  local line = table.concat(parts, ", ")
  if not all and n.crates > n.release then
    line = line .. " (--all lists every crate)"
  end
  return line
end

local function render_rows(rows)
  local widths = {}
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do
      widths[i] = math.max(widths[i] or 0, utf8.len(cell) or #cell)
    end
  end
  local lines = {}
  for _, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do
      cells[i] = i == #row and cell or (cell .. (" "):rep(widths[i] - (utf8.len(cell) or #cell)))
    end
    lines[#lines + 1] = (table.concat(cells, "  "):gsub("%s+$", ""))
  end
  return lines
end

-- The version column: last release → next ("—" when never released), or the manifest's.
local function version_cell(c)
  if c.bump == "none" then
    return c.current
  end
  local from = c.last_release ~= json.null and c.last_release or "—"
  return from .. " → " .. c.next
end

-- The lines `cdp plan` prints: the conventions found, warnings, the scope,
-- the count line, then a fixed-width table (crate, version, bump, commits,
-- reason) of the crates that release, or of every crate with OPTS.all.
function Plan:table(opts)
  opts = opts or {}
  local lines = {}
  local conventions = self:conventions_line()
  if conventions then
    lines[#lines + 1] = conventions
  end
  for _, w in ipairs(self.warnings) do
    lines[#lines + 1] = "warning: " .. w
  end
  if self.scope then
    local added = {}
    for _, c in ipairs(self.crates) do
      if c.added ~= json.null then
        added[#added + 1] = ("%s (%s)"):format(c.name, c.added)
      end
    end
    lines[#lines + 1] = ("scope: %s%s"):format(table.concat(self.scope, ", "),
      #added > 0 and ("; added " .. table.concat(added, "; ")) or "")
  end
  lines[#lines + 1] = self:counts_line(opts.all)
  local rows = { { "crate", "version", "bump", "commits", "reason" } }
  for _, c in ipairs(self.crates) do
    if opts.all or c.bump ~= "none" then
      local r = primary_reason(c)
      local reason = r and r.text or ""
      local extra = 0
      for _, x in ipairs(c.reasons) do
        if x ~= r and x.kind ~= "dependent" then
          extra = extra + 1
        end
      end
      if extra > 0 then
        reason = ("%s (+%d more)"):format(reason, extra)
      end
      local ncommits = c.walked and tostring(#c.commits) or "-"
      rows[#rows + 1] = { c.name, version_cell(c), c.bump, ncommits, reason }
    end
  end
  if #rows == 1 then
    lines[#lines + 1] = "nothing to release"
  else
    for _, l in ipairs(render_rows(rows)) do
      lines[#lines + 1] = l
    end
  end
  return table.concat(lines, "\n") .. "\n"
end
Plan.__tostring = Plan.table

local function convention_text(c, found)
  if c.tag_template_source == "set" then
    return ("%s (set by tag_template)"):format(c.tag_template)
  elseif c.tag_template_source == "tags" then
    return ("%s (found from its %d tag%s)"):format(c.tag_template, found or 0, found == 1 and "" or "s")
  end
  return ("%s (no tag of it yet; the workspace's convention)"):format(c.tag_template)
end

-- What --explain says about one commit: the level it caused, or why none.
local function commit_note(c, commit, reasons)
  for _, r in ipairs(reasons) do
    if names_commit(r, commit.id) then
      return "→ " .. tostring(r.level or "release") .. (r.breaking and " (breaking)" or "")
    end
  end
  if c.policy_level then
    return ("→ %s (the policy's level for the crate)"):format(c.policy_level)
  end
  return "(no bump)"
end

-- Why CRATE bumps (or not): its commits with what each asks for, the
-- dependency edges that moved it, and the requirements that change.
function Plan:explain(name)
  local c = self.by_name[name]
  if not c then
    local names = {}
    for _, x in ipairs(self.crates) do
      names[#names + 1] = x.name
    end
    return nil, ("no crate '%s' in the plan (crates: %s)"):format(tostring(name), table.concat(names, ", ")), "ENOTFOUND"
  end
  local out = {}
  local function add(fmt, ...)
    out[#out + 1] = fmt:format(...)
  end
  if c.bump == "none" then
    add("%s %s: no release", c.name, c.current)
  else
    add("%s %s → %s (%s)", c.name, c.last_release ~= json.null and c.last_release or "—", c.next, c.bump)
  end
  add("  directory: %s", c.dir == "" and "(repository root)" or c.dir)
  if c.last_tag ~= json.null then
    add("  last release: %s (tag %s)", c.last_release, c.last_tag)
  elseif c.last_release ~= json.null then
    add("  last release: %s (in the registry; no tag, so every commit of the crate counts)", c.last_release)
  else
    add("  last release: none (no release tag found)")
  end
  if c.publishable then
    local draft_crate = self.draft and self.draft.crates[name]
    add("  tag convention: %s%s", convention_text(c, draft_crate and draft_crate.tags_found),
      c.tag ~= json.null and ("; this release: " .. c.tag) or "")
  else
    add("  publish = false: requirements are kept up to date, the crate is never published")
  end
  if c.added ~= json.null then
    add("  added to the packages asked for: %s", c.added)
  end
  if not c.walked then
    add("  history not read: never released and publish = false (cdp plan --all reads it)")
  end
  local draft_crate = self.draft and self.draft.crates[name]
  add("  commits since the last release: %d", #c.commits)
  for _, commit in ipairs(draft_crate and draft_crate.commits or c.commits) do
    local note = commit_note(c, commit, c.reasons)
    if commit.merge then
      note = note .. " [merge]"
    end
    add("    %s %s  %s", commit.id:sub(1, 7), commit.summary, note)
  end
  if #c.cancelled > 0 then
    add("  cancelled by reverts:")
    for _, x in ipairs(c.cancelled) do
      add("    %s %s  (cancelled with %s)", x.id:sub(1, 7), x.summary, x.cancelled_by:sub(1, 7))
    end
  end
  local edges = {}
  for _, r in ipairs(c.reasons) do
    if r.kind ~= "commit" then
      edges[#edges + 1] = "    " .. r.text
    end
  end
  if #edges > 0 then
    add("  reasons:")
    for _, e in ipairs(edges) do
      out[#out + 1] = e
    end
  end
  if #c.requirements > 0 then
    add("  requirements rewritten in %s's manifest:", c.name)
    for _, q in ipairs(c.requirements) do
      add("    %s (%s): \"%s\" → \"%s\"", q.dependency, q.kind, q.from, q.to)
    end
  end
  return table.concat(out, "\n") .. "\n"
end

local function commit_ids(c)
  local ids = {}
  for _, x in ipairs(c.commits) do
    ids[#ids + 1] = x.id
  end
  return table.concat(ids, ",")
end

-- Differences between this plan and OTHER (e.g. before and after editing the
-- policy), sorted by crate then field: {{crate, field, old, new, text}}.
function Plan:diff(other)
  local diffs = {}
  local names, seen = {}, {}
  for _, p in ipairs { self, other } do
    for _, c in ipairs(p.crates) do
      if not seen[c.name] then
        seen[c.name] = true
        names[#names + 1] = c.name
      end
    end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local a, b = self.by_name[name], other.by_name[name]
    if not a or not b then
      diffs[#diffs + 1] = { crate = name, field = "crate", old = a and "present" or "absent",
        new = b and "present" or "absent", text = ("%s: %s"):format(name, a and "gone" or "new") }
    else
      for _, field in ipairs { "bump", "current", "next", "publish" } do
        if a[field] ~= b[field] then
          diffs[#diffs + 1] = { crate = name, field = field, old = a[field], new = b[field],
            text = ("%s: %s %s → %s"):format(name, field, tostring(a[field]), tostring(b[field])) }
        end
      end
      if commit_ids(a) ~= commit_ids(b) then
        diffs[#diffs + 1] = { crate = name, field = "commits", old = #a.commits, new = #b.commits,
          text = ("%s: commits %d → %d"):format(name, #a.commits, #b.commits) }
      end
    end
  end
  return diffs
end

---------------------------------------------------------------------------
-- plan.make: from a repository to a plan, in named steps over one table M
---------------------------------------------------------------------------

local function default_policy()
  return require("cdp.policies.conventional") {}
end

local function open_repository(m)
  local git = require "cdp.git"
  local fs = require "cdp.fs"
  local repo, err, code = git.discover(m.dir)
  if not repo then
    return nil, ("%s is not in a git repository: %s"):format(m.dir, tostring(err)), code or "ENOTREPO"
  end
  local workdir = repo:workdir()
  if not workdir then
    return nil, ("%s is in a bare repository; plan needs a working tree"):format(m.dir), "EBARE"
  end
  m.repo, m.repo_root = repo, fs.realpath(workdir) or workdir
  return true
end

-- cargo metadata was started by plan.make before the repository was opened
-- (workspace.start); this waits for it. Its failures read as workspace.load's.
local function load_workspace(m)
  local ws, err, code = m.cargo:finish { repo_root = m.repo_root }
  if not ws then
    return nil, err, code
  end
  m.ws = ws
  return true
end
local function resolve_revisions(m)
  local from = m.opts.from or "HEAD"
  local oid, err, code = m.repo:resolve(from)
  if not oid then
    return nil, ("cannot resolve '%s': %s"):format(from, tostring(err)), code or "ENOTFOUND"
  end
  m.from_name, m.from_oid = from, oid
  if m.opts.since then
    oid, err, code = m.repo:resolve(m.opts.since)
    if not oid then
      return nil, ("cannot resolve --since '%s': %s"):format(m.opts.since, tostring(err)), code or "ENOTFOUND"
    end
    m.since_oid = oid
  end
  return true
end

-- The `packages` option: crates of this workspace, sorted.
local function read_scope(m)
  local packages = m.opts.packages
  if packages == nil then
    return true
  end
  if type(packages) == "string" then
    packages = { packages }
  end
  local scope, list = {}, {}
  for _, name in ipairs(packages) do
    if not m.ws.by_name[name] then
      local names = {}
      for i, x in ipairs(m.ws.members) do
        names[i] = x.name
      end
      return nil, ("no crate '%s' in the workspace (packages asked for: %s; workspace crates: %s)")
        :format(tostring(name), table.concat(packages, ", "), table.concat(names, ", ")), "ENOTFOUND"
    end
    if not scope[name] then
      scope[name] = true
      list[#list + 1] = name
    end
  end
  table.sort(list)
  m.scope, m.scope_list = scope, list
  return true
end

-- When no tag matched, what the tags there are look like.
local function no_tags_warning(m)
  local all = m.repo:tags {}
  if #all == 0 then
    return
  end
  local names, expected = {}, {}
  for i, t in ipairs(all) do
    names[i] = t.name
  end
  for _, x in ipairs(m.ws.members) do
    if x.publish ~= false then
      local conv = m.conventions[x.name]
      expected[#expected + 1] = tags.name(conv.template, x.name, x.version)
    end
  end
  local shapes = tags.closest(names, expected, 5)
  local parts = {}
  for _, s in ipairs(shapes) do
    parts[#parts + 1] = ("%s (%d tag%s, e.g. %s)"):format(s.shape, s.count, s.count == 1 and "" or "s", s.example)
  end
  m.warnings[#m.warnings + 1] = ("no tag matches a release of any crate, but the repository has %d tag%s%s; "
    .. "set the convention with --tag-template (e.g. --tag-template '{crate}-{version}')"):format(#all,
    #all == 1 and "" or "s", #parts > 0 and (": closest are " .. table.concat(parts, ", ")) or "")
end

-- A registry client from the `registry` option (a client, or an index URL).
local function registry_client(value)
  if type(value) == "string" then
    return require("cdp.registry").new { index = value }
  end
  return value
end

-- Crates without a tag, looked up in the registry: a version already
-- published is not a first release.
local function ask_registry(m)
  local client = registry_client(m.opts.registry)
  if not client then
    return true
  end
  m.registry_asked = {}
  for _, x in ipairs(m.ws.members) do
    if x.publish ~= false and not m.releases[x.name] then
      local versions, err, code = client:versions(x.name)
      if not versions then
        return nil, ("cannot look up %s in the registry %s: %s"):format(x.name, tostring(client.index), err), code
      end
      local current, best = semver.v(x.version), nil
      for text in pairs(versions) do
        local v = semver.parse(text)
        if v and not (v > current) and (best == nil or v > best) then
          best = v
        end
      end
      m.registry_asked[x.name] = true
      if best then
        m.releases[x.name] = { version = tostring(best), source = "registry" }
      end
    end
  end
  return true
end

-- Deep equality of plain data (strings, numbers, booleans, tables of them).
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b
  end
  for k, v in pairs(a) do
    if not same(v, b[k]) then
      return false
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false
    end
  end
  return true
end

-- Everything last_releases is given, and of each member only the fields it and
-- tags.conventions read: they are handed this projection, not the members, so
-- they cannot come to read a field a guess's answer was not compared on. Equal
-- inputs, equal answers (the tags and the repository are the same within one plan).
local RELEASE_FIELDS = { "name", "version", "dir", "inherited_version", "publish" }
local function release_inputs(m)
  local members = {}
  for i, x in ipairs(m.ws.members) do
    local p = {}
    for _, f in ipairs(RELEASE_FIELDS) do
      p[f] = x[f]
    end
    members[i] = p
  end
  return { members = members, single = m.ws.single, from = m.from_oid or false,
    template = m.opts.tag_template or false }
end

local function releases_from(repo, inputs, set)
  return table.pack(last_releases(repo, inputs.members, set, inputs.single, inputs.from or nil))
end

local function find_releases(m)
  local set, err, code = tags.templates(m.opts.tag_template)
  if err then
    return nil, err, code
  end
  m.template_set = set
  local inputs, found = release_inputs(m), nil
  if m.guess and same(m.guess.release_inputs, inputs) then
    found = m.guess.releases_found
  else
    found = releases_from(m.repo, inputs, set)
  end
  local releases, conventions, warnings, matched, existing = table.unpack(found, 1, 5)
  if not releases then
    local msg, failure = conventions, warnings
    return nil, msg, failure
  end
  m.releases, m.conventions, m.warnings, m.tags_matched = releases, conventions, warnings, matched
  m.existing_tags = existing
  if matched == 0 then
    no_tags_warning(m)
  end
  return ask_registry(m)
end

-- Which crates' histories are read: all, except never-released crates that
-- are never published either (unless asked for with `all`). Those still bound
-- the crates around them, so they are walked "since FROM": nothing of theirs counts.
local function choose_walk(m)
  m.paths, m.since, m.walked = {}, {}, {}
  for i, x in ipairs(m.ws.members) do
    local rel = m.releases[x.name]
    m.paths[i] = x.dir
    if x.publish == false and not rel and not m.opts.all then
      m.since[i] = m.from_oid
    else
      m.since[i] = m.since_oid or (rel and rel.commit) or false
      m.walked[x.name] = true
    end
  end
end

-- Crate X's change set without the commits DROP(c) says are not its changes.
local function drop_changes(m, x, drop)
  local kept = {}
  for _, c in ipairs(m.changes[x.name]) do
    if not drop(c) then
      kept[#kept + 1] = c
    end
  end
  m.changes[x.name] = kept
end

-- After a squash- or rebase-merged release PR the release tag is on a commit
-- that is not on the branch; the commit that brought its content over only
-- repeats the release, so it is not a change since it.
local function drop_release_copies(m)
  for _, x in ipairs(m.ws.members) do
    local rel = m.releases[x.name]
    local list = m.changes[x.name]
    if rel and rel.commit and not rel.reachable and not m.since_oid and #list > 0 and x.dir ~= "" then
      local released = m.repo:tree_entry(rel.commit, x.dir)
      drop_changes(m, x, function(c) return released and m.repo:tree_entry(c.id, x.dir) == released end)
    end
  end
end

-- The workspace's Cargo.lock is a binary crate's file (workspace.ships_lock).
-- A commit that changed nothing else of such a crate is marked lock_only for
-- it (its reason says so), and is dropped for it when every lock entry it
-- changed is a workspace member the crate does not depend on: a release
-- commit rewrites the released crates' own entries, and would otherwise
-- release every binary after every release in the workspace. Any other lock
-- change counts, as for cargo-release (steps/version.rs changed_since);
-- release-plz goes further and compares only the locked versions the binary
-- builds with (lock_compare.rs), which needs the lock's whole graph at every
-- such commit (on gitoxide, a thousand of them, that made a plan 7 times slower).
-- A root crate's lock is inside its directory, so what else
-- changed there is not told apart: its lock commits all count, unmarked.
local function note_lock_changes(m)
  local locks, changes = {}, {} -- by blob, by pair of blobs: each read and compared once
  local function entries(rev, oid, path)
    if locks[oid] == nil then
      local text = m.repo:read_blob(rev, path)
      locks[oid] = text and workspace.lock_entries(text) or false
    end
    return locks[oid]
  end
  local function differs(a, b, path)
    return m.repo:tree_entry(a, path) ~= m.repo:tree_entry(b, path)
  end
  for _, x in ipairs(m.ws.members) do
    if x.lock and x.dir ~= "" and #m.changes[x.name] > 0 then
      local uses = m.ws:member_closure(x.name)
      drop_changes(m, x, function(c)
        local parent = c.parents and c.parents[1]
        local only = parent and differs(c.id, parent, x.lock) and not differs(c.id, parent, x.dir)
          and not (c.inherited and c.inherited[x.name])
        for _, e in ipairs(only and x.files.extra or {}) do
          only = only and (e == x.lock or not differs(c.id, parent, e))
        end
        if not only then
          return false
        end
        local now, before = m.repo:tree_entry(c.id, x.lock), m.repo:tree_entry(parent, x.lock)
        local pair = tostring(now) .. ".." .. tostring(before)
        local changed = changes[pair]
        if not changed then
          local a = now and entries(c.id, now, x.lock)
          local b = before and entries(parent, before, x.lock)
          changed = a and b and workspace.lock_changes(a, b) or { x.name }
          changes[pair] = changed
        end
        local drop = true
        for _, name in ipairs(changed) do
          drop = drop and m.ws.by_name[name] ~= nil and not uses[name] and name ~= x.name
        end
        if not drop then
          c.lock_only = c.lock_only or {}
          c.lock_only[x.name] = true
        end
        return drop
      end)
    end
  end
end

-- What the walk is asked: everything repo:changes answers from.
local function walk_args(m)
  choose_walk(m)
  local files, inherits = m.ws:walk_files()
  return { from = m.from_oid, paths = m.paths, since = m.since, files = files, inherits = inherits,
    manifest = m.ws.manifest, parse = true, messages = false }
end

-- The one walk of the history: every crate's commits since its release. The
-- guess's walk is taken when it was asked exactly the same.
local function walk_changes(m)
  local args = walk_args(m)
  -- repo:changes gives list, stats on success and nil, message, code on failure
  local list, stats, code
  if m.guess and m.guess.walk and same(m.guess.walk_args, args) then
    list, stats = m.guess.walk, m.guess.walk_stats
  else
    list, stats, code = m.repo:changes(args)
  end
  m.guess = nil
  if not list then
    return nil, ("cannot walk the history from %s: %s"):format(m.from_name, tostring(stats)), code
  end
  for _, rel in pairs(m.releases) do
    if rel.reachable == nil and rel.commit then -- the manifest's tag: the walk read down to it
      rel.reachable = stats.reachable[rel.commit] == true
    end
  end
  m.changes = {}
  for _, x in ipairs(m.ws.members) do
    m.changes[x.name] = {}
  end
  for _, c in ipairs(list) do
    for _, i in ipairs(c.paths) do
      local t = m.changes[m.ws.members[i].name]
      t[#t + 1] = c
    end
    if c.inherited then -- by crate index from the walk, by name for the draft
      local by_name = {}
      for i, keys in pairs(c.inherited) do
        by_name[m.ws.members[i].name] = keys
      end
      c.inherited = by_name
    end
  end
  drop_release_copies(m)
  note_lock_changes(m)
  -- The walk was the last use of the repository: closing it now hands libgit2's
  -- object cache and pack maps back before the plan is built on top of them.
  m.repo:close()
  return true
end

local function interruption(e)
  return type(e) == "string" and e:find("interrupted by SIG%u+$") ~= nil
end

-- While cargo metadata runs, the git work done on a guess of the workspace
-- read from its manifests (workspace.guess): the releases and the walk. The
-- real steps take a guessed answer only when asked exactly what the guess
-- was asked (release_inputs, walk_args), so a wrong guess costs time, never a
-- different plan; a guess that fails is dropped, and the real step then
-- fails as it always did, after cargo's own failure if cargo failed. An
-- interruption is not a guess's failure: it goes on.
local function guess_ahead(m)
  if m.opts.guess == false then
    return true
  end
  local g = { opts = m.opts, repo = m.repo, dir = m.dir, repo_root = m.repo_root }
  local ok, e = pcall(function()
    g.ws = workspace.guess(m.dir, { repo_root = m.repo_root })
    if not g.ws or not resolve_revisions(g) then
      return
    end
    local set, err = tags.templates(m.opts.tag_template)
    if err then
      return
    end
    g.release_inputs = release_inputs(g)
    local r = releases_from(g.repo, g.release_inputs, set)
    if not r[1] then
      return
    end
    m.guess = g
    -- choose_walk reads the releases where find_releases leaves them
    g.releases_found, g.releases = r, r[1]
    g.walk_args = walk_args(g)
    g.walk, g.walk_stats = g.repo:changes(g.walk_args)
  end)
  if not ok and interruption(e) then
    error(e, 0)
  end
  return true
end

-- A policy that fails (an unknown crate, a bug in a custom policy) fails the
-- plan with its message; a bug keeps its traceback so it points at the line.
local function policy_handler(e)
  if getmetatable(e) == PolicyError then
    return e.msg
  end
  return debug.traceback(tostring(e), 2)
end

local function run_policy(m)
  m.draft = plan.draft(m.ws, m.releases, m.changes, { prerelease = m.opts.prerelease, scope = m.scope,
    conventions = m.conventions, walked = m.walked, registry_asked = m.registry_asked })
  local policy = m.opts.policy or default_policy()
  if type(policy) ~= "function" and not (type(policy) == "table" and getmetatable(policy)
      and getmetatable(policy).__call) then
    return nil, ("policy must be a function, got %s"):format(type(policy)), "EPOLICY"
  end
  local ok, decisions = xpcall(policy, policy_handler, m.draft)
  if not ok then
    return nil, decisions, "EPOLICY"
  end
  m.decisions = decisions
  return true
end

-- The template shown for the workspace: the one set for "*", else the
-- convention most crates follow.
local function workspace_template(m)
  if m.template_set and m.template_set["*"] then
    return m.template_set["*"]
  end
  local counts, best, n = {}, nil, 0
  for _, x in ipairs(m.ws.members) do
    local t = m.conventions[x.name].template
    counts[t] = (counts[t] or 0) + 1
    if counts[t] > n or (counts[t] == n and t < best) then
      best, n = t, counts[t]
    end
  end
  return best
end

local function build_plan(m)
  local ok, result = xpcall(plan.build, policy_handler, m.draft, m.decisions,
    { from = m.from_oid, tag_template = workspace_template(m), since = m.since_oid,
      warnings = m.warnings, scope = m.scope_list, tags_matched = m.tags_matched })
  if not ok then
    return nil, result, "EPOLICY"
  end
  result.workspace = m.ws
  -- A tag this release would make that exists already would stop the Tag stage.
  local made = {}
  for _, c in ipairs(result.crates) do
    if c.tag ~= json.null and not made[c.tag] then
      made[c.tag] = true
      local at = m.existing_tags[c.tag]
      if at then
        result.warnings[#result.warnings + 1] = ("tag %s (%s %s) already exists, at commit %s; set a tag "
          .. "template with {crate} for %s"):format(c.tag, c.name, c.next, at:sub(1, 12), c.name)
      end
    end
  end
  m.plan = result
  return true
end

-- plan.make{ dir, from, since, policy, tag_template, prerelease, packages,
-- registry, all } -> Plan | nil, msg, code
function plan.make(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("plan.make: expected a table of options", 2)
  end
  local m = { opts = opts, dir = opts.dir or "." }
  -- cargo metadata runs while git is read (guess_ahead); it is ended on every
  -- way out, a raised error or an interruption included.
  local cargo <close> = workspace.start(m.dir)
  m.cargo = cargo
  for _, step in ipairs { open_repository, guess_ahead, load_workspace, resolve_revisions, read_scope,
    find_releases, walk_changes, run_policy, build_plan } do
    local ok, err, code = step(m)
    if not ok then
      if m.repo then
        m.repo:close()
      end
      return nil, err, code
    end
  end
  return m.plan
end

plan.Plan = Plan
plan.Draft = Draft

return setmetatable(plan, { __call = function(_, opts) return plan.make(opts) end })
