-- The Release Plan: which crates bump, to what, and why.
--
--   local p = assert(plan.make{ dir = ".", from = "HEAD", since = nil,
--                               policy = fn|nil, tag_template = nil, prerelease = nil })
--   p.crates          sorted by name: { name, current, next, bump, commits = {{id, summary}},
--                     reasons = {{kind, text, ...}}, publish, dir, last_release, last_tag,
--                     requirements = {{dependency, kind, from, to}}, cancelled = {...} }
--   p.order           publish order of the crates that will be published
--   p:explain(name)   the commits and dependency edges behind a bump, as text
--   p:diff(other)     what changed between two plans: {{crate, field, old, new, text}}
--   p:to_json()       deterministic JSON
--
-- `cdp.plan()` (the module called) is plan.make. Failures of the world (not a
-- repository, broken Cargo.toml, a release tag that is not semver, a policy
-- naming an unknown crate) return nil, a message naming the thing, and a code.
--
-- Policies. A policy is a function policy(draft) -> decisions. The draft has
--   draft.crates[name] = { name, current, last (version of the last release tag or nil),
--     last_tag, new (never released), publish, dir, commits (effective, newest first,
--     each {id, summary, message, parsed = cdp.commits.parse(...), inherited = {key...}|nil,
--     the [workspace.*] entries of the crate it changed}), cancelled, deps }
--   draft.names (sorted), draft.order (publish order), draft.prerelease (from the command line)
--   draft:check_crate(name, where)   raises naming a crate that is not in the workspace
--   draft:resolve(levels, opts)      versions, propagation and lockstep from per-crate levels
-- and DECISIONS is what draft:resolve returns, or simply a table crate -> level
-- ("none", "patch", "minor", "major"), version string, or {bump=, version=, reasons=},
-- which the plan resolves with the default options.
local semver = require "cdp.semver"
local commits = require "cdp.commits"
local workspace = require "cdp.workspace"
local json = require "cdp.json"

local plan = {}

plan.DEFAULT_TEMPLATE = "{crate}-v{version}"
plan.SINGLE_TEMPLATE = "v{version}"

local PolicyError = { __name = "cdp.plan.PolicyError" }
PolicyError.__tostring = function(e) return e.msg end
local function policy_error(fmt, ...)
  error(setmetatable({ msg = fmt:format(...) }, PolicyError), 0)
end

---------------------------------------------------------------------------
-- Release tags
---------------------------------------------------------------------------

local function escape_pattern(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- Split TEMPLATE at {version}: what comes before (with {crate} as NAME) and after.
local function template_parts(template, name)
  local before, after = template:match("^(.-){version}(.*)$")
  if not before or after:find("{version}", 1, true) then
    return nil, ("tag template '%s' must contain {version} once"):format(template)
  end
  local function fill(s)
    return (s:gsub("{crate}", function() return name end))
  end
  return fill(before), fill(after)
end

plan.template_parts = template_parts

-- The tag of crate NAME at VERSION.
function plan.tag_name(template, name, version)
  local before, after = template_parts(template, name)
  return before .. tostring(version) .. after
end

-- The last release of each crate: the highest semver among tags that match
-- the template and are reachable from FROM (a commit oid). A tag matches when
-- its text around the version is the template's and the version part starts
-- with a digit; such a tag whose version is not semver is an error naming it.
-- Returns { [crate] = {tag, version, commit} }, or nil, message, "ETAG".
function plan.releases(repo, names, template, from)
  local prefixes, lengths, suffix_of = {}, {}, {}
  for _, name in ipairs(names) do
    local before, after = template_parts(template, name)
    if not before then
      return nil, after, "ETAG"
    end
    local key = before .. "\0" .. after
    prefixes[before] = prefixes[before] or {}
    table.insert(prefixes[before], name)
    suffix_of[name] = after
    lengths[#before] = true
    prefixes[key] = true
  end
  local length_list = {}
  for l in pairs(lengths) do
    length_list[#length_list + 1] = l
  end
  table.sort(length_list)

  local candidates = {}
  for _, tag in ipairs(repo:tags {}) do
    local valid, invalid = {}, nil
    for _, l in ipairs(length_list) do
      local owners = prefixes[tag.name:sub(1, l)]
      if owners and #tag.name > l then
        for _, name in ipairs(owners) do
          local after = suffix_of[name]
          local rest = tag.name:sub(l + 1)
          if after == "" or rest:sub(-#after) == after then
            local text = rest:sub(1, #rest - #after)
            if text:match("^%d") then
              local v = semver.parse(text)
              if v then
                valid[#valid + 1] = { name = name, version = v }
              else
                invalid = invalid or text
              end
            end
          end
        end
      end
    end
    if #valid > 0 then
      -- "foo-v2-v1.0.0" is foo-v2's 1.0.0, not foo's: the longest name wins.
      table.sort(valid, function(a, b) return #a.name > #b.name end)
      local best = valid[1]
      candidates[best.name] = candidates[best.name] or {}
      table.insert(candidates[best.name], { tag = tag.name, version = best.version, commit = tag.peeled or tag.target })
    elseif invalid then
      return nil, ("release tag '%s' matches the tag template '%s' but '%s' is not a semantic version")
        :format(tag.name, template, invalid), "ETAG"
    end
  end

  local reachable = {}
  local function is_reachable(oid)
    if reachable[oid] == nil then
      reachable[oid] = oid == from or repo:descendant_of(from, oid) == true
    end
    return reachable[oid]
  end
  local releases = {}
  for name, list in pairs(candidates) do
    table.sort(list, function(a, b)
      if a.version ~= b.version then
        return a.version > b.version
      end
      return a.tag < b.tag
    end)
    for _, r in ipairs(list) do
      if r.commit and is_reachable(r.commit) then
        releases[name] = { tag = r.tag, version = tostring(r.version), commit = r.commit }
        break
      end
    end
  end
  return releases
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

local function add_reason(list, reason)
  for _, r in ipairs(list) do
    if r.text == reason.text then
      return
    end
  end
  list[#list + 1] = reason
end

-- The version CRATE releases at for LEVEL (or FORCED), under pre-release LABEL.
-- Returns version (Version) and the bump to show, or nil when nothing is released.
local function next_version(crate, level, forced, label, initial)
  local current = semver.v(crate.current)
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
    if initial and semver.v(initial) > v then
      v = semver.v(initial)
    end
    if label and not v:is_prerelease() then
      v = semver.new(v.major, v.minor, v.patch, { label, "1" })
    end
    return v, "initial"
  end
  local base = semver.v(crate.last)
  local v, shown
  if label then
    if level == "none" then
      return nil, "none"
    end
    local target = semver.bump(base, level)
    local base_label, n = base:prerelease_label()
    if base:is_prerelease() and target == base:release() and base_label == label and n then
      v = semver.new(target.major, target.minor, target.patch, { label, tostring(n + 1) })
    else
      v = semver.new(target.major, target.minor, target.patch, { label, "1" })
    end
    shown = level
  elseif base:is_prerelease() then
    v = level == "none" and base:release() or semver.bump(base, level)
    shown = level == "none" and "graduate" or level
  else
    if level == "none" then
      return nil, "none"
    end
    v, shown = semver.bump(base, level), level
  end
  -- A manifest already moved past the last release (by hand) is not undone.
  if current > v and current > base and (label == nil) == (not current:is_prerelease()) then
    v = current
  end
  return v, shown
end

-- Turn per-crate LEVELS into the plan's decisions.
-- LEVELS[name]: nil | level | version string | {bump=, version=, reasons=}.
-- OPTS: propagate (level a dependent bumps by when a requirement on a bumped
-- crate must be rewritten; default "patch"), lockstep ({{names}}), skip ({names}),
-- prerelease (label; the command line's wins), initial_version ("0.1.0").
function Draft:resolve(levels, opts)
  opts = opts or {}
  local label = self.prerelease or opts.prerelease
  local propagate = opts.propagate or "patch"
  if propagate == false then
    propagate = "none"
  end
  local initial = opts.initial_version or "0.1.0"
  local skip = {}
  for _, name in ipairs(opts.skip or {}) do
    self:check_crate(name, "skip")
    skip[name] = true
  end
  for i, group in ipairs(opts.lockstep or {}) do
    for _, name in ipairs(group) do
      self:check_crate(name, ("lockstep group %d"):format(i))
    end
  end
  for name in pairs(levels) do
    if type(name) == "string" then
      self:check_crate(name, "the policy's decisions")
    end
  end

  local state = {}
  for _, name in ipairs(self.names) do
    local crate = self.crates[name]
    local d = levels[name]
    local s = { level = "none", reasons = {}, eligible = crate.publish and not skip[name] }
    if type(d) == "string" then
      if semver.LEVELS[d] then
        s.level = d
      else
        s.forced = d
      end
    elseif type(d) == "table" then
      s.level = d.bump or "none"
      s.forced = d.version
      for _, r in ipairs(d.reasons or {}) do
        add_reason(s.reasons, type(r) == "string" and { kind = "policy", text = r } or r)
      end
    elseif d ~= nil then
      policy_error("policy: decision for %s must be a level, a version or a table (got %s)", name, type(d))
    end
    if semver.LEVELS[s.level] == nil then
      policy_error("policy: level '%s' for %s is not none, patch, minor or major", tostring(s.level), name)
    end
    if not crate.publish then
      add_reason(s.reasons, { kind = "unpublished", text = "publish = false: never released by cdp" })
    elseif skip[name] then
      add_reason(s.reasons, { kind = "skip", text = "skipped by the policy" })
    end
    state[name] = s
  end

  local function recompute(name)
    local s = state[name]
    if not s.eligible then
      s.next, s.shown = nil, "none"
      return
    end
    s.next, s.shown = next_version(self.crates[name], s.level, s.forced, label, initial)
  end
  for _, name in ipairs(self.names) do
    recompute(name)
    local s, crate = state[name], self.crates[name]
    if s.shown == "initial" then
      add_reason(s.reasons, { kind = "initial", text = ("first release (no release tag reachable)") })
    elseif s.shown == "graduate" then
      add_reason(s.reasons, { kind = "graduate", text = ("graduates from pre-release %s"):format(crate.last) })
    end
  end

  -- Propagation and lockstep feed each other; repeat until nothing moves.
  local limit = 4 * #self.names + 4
  for _ = 1, limit do
    local moved = false
    for _, x in ipairs(self.order) do
      local sx = state[x]
      if sx.next then
        for _, e in ipairs(self.dependents[x] or {}) do
          local sd = state[e.from]
          local req = semver.req(e.req)
          if e.req ~= "*" and req and not req:matches(sx.next) and e.kind ~= "dev"
            and sd.eligible and propagate ~= "none" and not sd.forced then
            local text = ("depends on %s (%s): \"%s\" does not admit %s"):format(x, e.kind, e.req, tostring(sx.next))
            add_reason(sd.reasons, { kind = "dependency", crate = x, dep_kind = e.kind, old_req = e.req,
              new_req = semver.rewrite_req(e.req, sx.next), version = tostring(sx.next), level = propagate, text = text })
            if semver.LEVELS[sd.level] < semver.LEVELS[propagate] or not sd.next then
              sd.level = semver.max_bump(sd.level, propagate)
              local before = sd.next and tostring(sd.next)
              recompute(e.from)
              if (sd.next and tostring(sd.next)) ~= before then
                moved = true
              end
            end
          end
        end
      end
    end
    for i, group in ipairs(opts.lockstep or {}) do
      local shared
      for _, name in ipairs(group) do
        local s = state[name]
        if s.next and (shared == nil or s.next > shared) then
          shared = s.next
        end
      end
      if shared then
        -- every member must move up to the shared version
        for _, name in ipairs(group) do
          local s, crate = state[name], self.crates[name]
          if s.eligible and not crate.new then
            local last = semver.v(crate.last)
            if last >= shared then
              local v = next_version(crate, "patch", nil, label, initial)
              if v > shared then
                shared = v
              end
            end
          end
        end
        local members = table.concat(group, ", ")
        for _, name in ipairs(group) do
          local s, crate = state[name], self.crates[name]
          if s.eligible and (s.next == nil or s.next ~= shared) then
            local base = crate.last and semver.v(crate.last) or semver.v(crate.current)
            s.forced = tostring(shared)
            local l = semver.level_between(base:release(), shared:release())
            s.level = semver.max_bump(s.level, l == "none" and "patch" or l)
            s.next, s.shown = shared, crate.new and "initial" or s.level
            moved = true
          end
          if s.eligible then
            add_reason(s.reasons, { kind = "lockstep", group = i,
              text = ("lockstep group %d (%s) shares version %s"):format(i, members, tostring(shared)) })
          end
        end
      end
    end
    if not moved then
      break
    end
  end

  -- Every requirement on a crate that moves must still admit its new version:
  -- rewritten for every kind, and for publish = false crates too.
  for _, name in ipairs(self.names) do
    state[name].requirements = {}
  end
  for _, x in ipairs(self.names) do
    local sx = state[x]
    if sx.next then
      for _, e in ipairs(self.dependents[x] or {}) do
        local req = semver.req(e.req)
        if e.req ~= "*" and req and not req:matches(sx.next) then
          local sd = state[e.from]
          local new = semver.rewrite_req(e.req, sx.next)
          table.insert(sd.requirements, { dependency = x, kind = e.kind, from = e.req, to = new,
            rename = e.rename, inherited = e.inherited or nil })
          add_reason(sx.reasons, { kind = "dependent", crate = e.from, dep_kind = e.kind,
            old_req = e.req, new_req = new,
            text = ("%s's %s requirement \"%s\" rewritten to \"%s\""):format(e.from, e.kind, e.req, new) })
          if e.kind == "dev" then
            add_reason(sd.reasons, { kind = "dev-dependency", crate = x, old_req = e.req, new_req = new,
              text = ("dev-dependency on %s: \"%s\" rewritten to \"%s\" (no bump)"):format(x, e.req, new) })
          elseif not sd.next then
            add_reason(sd.reasons, { kind = "requirement", crate = x, old_req = e.req, new_req = new,
              text = ("requirement on %s: \"%s\" rewritten to \"%s\""):format(x, e.req, new) })
          end
        end
      end
    end
  end
  for _, name in ipairs(self.names) do
    table.sort(state[name].requirements, function(a, b)
      if a.dependency ~= b.dependency then return a.dependency < b.dependency end
      return a.kind < b.kind
    end)
  end

  local decisions = {}
  for _, name in ipairs(self.names) do
    local s, crate = state[name], self.crates[name]
    if s.next and crate.last and not (s.next > semver.v(crate.last)) then
      policy_error("policy: %s would go to %s, which is not above its last release %s",
        name, tostring(s.next), crate.last)
    end
    decisions[name] = {
      next = s.next and tostring(s.next) or nil,
      bump = s.next and s.shown or "none",
      reasons = s.reasons,
      requirements = s.requirements,
    }
  end
  return setmetatable(decisions, Resolved)
end

-- The draft for a workspace model WS, release map RELEASES and per-crate
-- commit lists CHANGES[name] (newest first, {id, summary, message}).
function plan.draft(ws, releases, changes, opts)
  opts = opts or {}
  local draft = setmetatable({ crates = {}, names = {}, order = ws.order, dependents = {},
    prerelease = opts.prerelease, single = ws.single }, Draft)
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
        inherited = c.inherited and c.inherited[m.name] }
    end
    local kept, cancelled = commits.effective(list)
    draft.crates[m.name] = {
      name = m.name, current = m.version, last = rel and rel.version, last_tag = rel and rel.tag,
      new = rel == nil, publish = m.publish ~= false, registries = type(m.publish) == "table" and m.publish or nil,
      dir = m.dir, commits = kept, all_commits = list, cancelled = cancelled, deps = m.deps,
      inherited_version = m.inherited_version,
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

local function primary_reason(entry)
  local best, best_level = nil, -1
  for _, r in ipairs(entry.reasons) do
    local l = semver.LEVELS[r.level or ""] or 0
    if r.kind == "override" or r.kind == "initial" or r.kind == "graduate" or r.kind == "lockstep" then
      l = 4
    end
    if l > best_level then
      best, best_level = r, l
    end
  end
  return best
end

-- Build the plan from a draft and the policy's decisions.
function plan.build(draft, decisions, meta)
  if getmetatable(decisions) ~= Resolved then
    decisions = draft:resolve(decisions or {}, {})
  end
  local crates, by_name = {}, {}
  for _, name in ipairs(draft.names) do
    local c, d = draft.crates[name], decisions[name]
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
      cancelled = {},
    }
    for i, commit in ipairs(c.commits) do
      entry.commits[i] = { id = commit.id, summary = commit.summary }
    end
    for i, commit in ipairs(c.cancelled) do
      entry.cancelled[i] = { id = commit.id, summary = commit.summary, cancelled_by = commit.cancelled_by }
    end
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
  meta = meta or {}
  return setmetatable({ crates = crates, by_name = by_name, order = order, draft = draft,
    from = meta.from, tag_template = meta.tag_template, since = meta.since }, Plan)
end

-- The plan as data, without the draft (what the JSON holds).
function Plan:data()
  local crates = {}
  for i, c in ipairs(self.crates) do
    crates[i] = c
  end
  return { crates = crates, order = self.order, from = self.from or json.null,
    tag_template = self.tag_template or json.null }
end

function Plan:to_json(opts)
  return json.encode(self:data(), { indent = (opts and opts.indent) or "  " })
end

-- A fixed-width table: crate, current -> next, bump, commits, reason.
function Plan:table()
  local rows = { { "crate", "version", "bump", "commits", "reason" } }
  for _, c in ipairs(self.crates) do
    local version = c.bump == "none" and c.current or (c.current .. " → " .. c.next)
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
    rows[#rows + 1] = { c.name, version, c.bump, tostring(#c.commits), reason }
  end
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
  return table.concat(lines, "\n") .. "\n"
end
Plan.__tostring = Plan.table

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
    add("%s %s → %s (%s)", c.name, c.current, c.next, c.bump)
  end
  add("  directory: %s", c.dir == "" and "(repository root)" or c.dir)
  if c.last_tag ~= json.null then
    add("  last release: %s (tag %s)", c.last_release, c.last_tag)
  else
    add("  last release: none (no release tag reachable)")
  end
  if not c.publishable then
    add("  publish = false: requirements are kept up to date, the crate is never published")
  end
  local by_commit = {}
  for _, r in ipairs(c.reasons) do
    if r.kind == "commit" then
      by_commit[r.id] = r
    end
  end
  local draft_crate = self.draft and self.draft.crates[name]
  add("  commits since the last release: %d", #c.commits)
  for _, commit in ipairs(draft_crate and draft_crate.commits or c.commits) do
    local r = by_commit[commit.id]
    local note = r and ("→ " .. r.level .. (r.breaking and " (breaking)" or "")) or "(no bump)"
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
-- plan.make: from a repository to a plan
---------------------------------------------------------------------------

local function default_policy()
  return require("cdp.policies.conventional") {}
end

-- plan.make{ dir, from, since, policy, tag_template, prerelease } -> Plan | nil, msg, code
function plan.make(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("plan.make: expected a table of options", 2)
  end
  local git = require "cdp.git"
  local fs = require "cdp.fs"
  local dir = opts.dir or "."
  local repo, err, code = git.discover(dir)
  if not repo then
    return nil, ("%s is not in a git repository: %s"):format(dir, tostring(err)), code or "ENOTREPO"
  end
  local workdir = repo:workdir()
  if not workdir then
    return nil, ("%s is in a bare repository; plan needs a working tree"):format(dir), "EBARE"
  end
  local repo_root = fs.realpath(workdir) or workdir
  local ws
  ws, err, code = workspace.load(dir, { repo_root = repo_root })
  if not ws then
    return nil, err, code
  end
  local from = opts.from or "HEAD"
  local from_oid
  from_oid, err, code = repo:resolve(from)
  if not from_oid then
    return nil, ("cannot resolve '%s': %s"):format(from, tostring(err)), code or "ENOTFOUND"
  end
  local template = opts.tag_template or (ws.single and plan.SINGLE_TEMPLATE or plan.DEFAULT_TEMPLATE)
  local names = {}
  for i, m in ipairs(ws.members) do
    names[i] = m.name
  end
  local releases
  releases, err, code = plan.releases(repo, names, template, from_oid)
  if not releases then
    return nil, err, code
  end
  local since_oid
  if opts.since then
    since_oid, err, code = repo:resolve(opts.since)
    if not since_oid then
      return nil, ("cannot resolve --since '%s': %s"):format(opts.since, tostring(err)), code or "ENOTFOUND"
    end
  end
  local paths, since = {}, {}
  for i, m in ipairs(ws.members) do
    paths[i] = m.dir
    local rel = releases[m.name]
    since[i] = since_oid or (rel and rel.commit) or false
  end
  local list
  local files, inherits = ws:walk_files()
  list, err, code = repo:changes { from = from_oid, paths = paths, since = since, files = files,
    inherits = inherits, manifest = ws.manifest, parse = true, messages = false }
  -- The walk was the last use of the repository: closing it now hands libgit2's
  -- object cache and pack maps back before the plan is built on top of them.
  repo:close()
  if not list then
    return nil, ("cannot walk the history from %s: %s"):format(from, tostring(err)), code
  end
  local changes = {}
  for _, m in ipairs(ws.members) do
    changes[m.name] = {}
  end
  for _, c in ipairs(list) do
    for _, i in ipairs(c.paths) do
      local t = changes[ws.members[i].name]
      t[#t + 1] = c
    end
    if c.inherited then -- by crate index from the walk, by name for the draft
      local by_name = {}
      for i, keys in pairs(c.inherited) do
        by_name[ws.members[i].name] = keys
      end
      c.inherited = by_name
    end
  end
  local draft = plan.draft(ws, releases, changes, { prerelease = opts.prerelease })
  local policy = opts.policy or default_policy()
  if type(policy) ~= "function" and not (type(policy) == "table" and getmetatable(policy)
      and getmetatable(policy).__call) then
    return nil, ("policy must be a function, got %s"):format(type(policy)), "EPOLICY"
  end
  -- A policy that fails (an unknown crate, a bug in a custom policy) fails the
  -- plan with its message; a bug keeps its traceback so it points at the line.
  local function handler(e)
    if getmetatable(e) == PolicyError then
      return e.msg
    end
    return debug.traceback(tostring(e), 2)
  end
  local ok, decisions = xpcall(policy, handler, draft)
  if not ok then
    return nil, decisions, "EPOLICY"
  end
  local result
  ok, result = xpcall(plan.build, handler, draft, decisions,
    { from = from_oid, tag_template = template, since = since_oid })
  if not ok then
    return nil, result, "EPOLICY"
  end
  result.workspace = ws
  return result
end

plan.Plan = Plan
plan.Draft = Draft

return setmetatable(plan, { __call = function(_, opts) return plan.make(opts) end })
