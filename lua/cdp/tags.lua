-- Tag conventions: the templates release tags follow, how a tag name reads back
-- into a crate and a version, and which convention each crate of a workspace
-- uses, found from the tags that exist.
--
-- A template holds {version} once and {crate} at most once:
--   "{crate}-v{version}"  "{crate}@{version}"  "v{version}"  "release/{crate}/{version}"
-- A template without {crate} ("crate-less") names one tag per version, so it
-- can only serve crates that share one version, a one-crate repository or the
-- root crate of a workspace; found from the tags, it is also the convention
-- of a member with no tags of its own when a crate-less tag names exactly its
-- manifest's version at a commit where it existed (toml-rs' toml_edit, clap's
-- subcrates). Crates at one version sharing one move in lockstep.
--
-- Templates for a workspace are a table, the crate's own entry first, then "*":
--   { ["*"] = "{crate}-v{version}", ["my-cli"] = "v{version}" }
-- A string is the same as { ["*"] = string }. tags.templates also reads the
-- command line's and settings' text form: "T" or "crate=T" entries separated
-- by commas ("{crate}@{version},my-cli=v{version}").
local semver = require "cdp.semver"

local tags = {}

-- What conventions are looked for when none is set, most common first. The
-- crate-less ones come last: a crate's own tags win over shared ones.
tags.KNOWN = { "{crate}-v{version}", "{crate}-{version}", "{crate}@{version}", "{crate}/v{version}",
  "{crate}_v{version}", "v{version}", "{version}" }
tags.DEFAULT = "{crate}-v{version}"
tags.SINGLE = "v{version}"

local parsed_cache = {}

-- tags.parse(template) -> { text, crate = "first"|"last"|nil, pre, mid, post } | nil, msg, "ETAG"
-- A tag is PRE .. crate .. MID .. version .. POST ("first"), PRE .. version ..
-- MID .. crate .. POST ("last"), or PRE .. version .. POST (no crate).
function tags.parse(template)
  if type(template) ~= "string" then
    error(("tags.parse: expected a template string, got %s"):format(type(template)), 2)
  end
  local hit = parsed_cache[template]
  if hit then
    return hit
  end
  local function fail(why)
    return nil, ("tag template '%s' %s"):format(template, why), "ETAG"
  end
  for name in template:gmatch("{([^}]*)}") do
    if name ~= "crate" and name ~= "version" then
      return fail(("has an unknown placeholder {%s} (only {crate} and {version})"):format(name))
    end
  end
  local _, nversion = template:gsub("{version}", "")
  local _, ncrate = template:gsub("{crate}", "")
  if nversion ~= 1 then
    return fail("must contain {version} once")
  end
  if ncrate > 1 then
    return fail("may contain {crate} at most once")
  end
  local p = { text = template }
  local v = template:find("{version}", 1, true)
  local c = template:find("{crate}", 1, true)
  if not c then
    p.pre, p.mid, p.post = template:sub(1, v - 1), "", template:sub(v + 9)
  elseif c < v then
    p.crate = "first"
    p.pre, p.mid, p.post = template:sub(1, c - 1), template:sub(c + 7, v - 1), template:sub(v + 9)
  else
    p.crate = "last"
    p.pre, p.mid, p.post = template:sub(1, v - 1), template:sub(v + 9, c - 1), template:sub(c + 7)
  end
  parsed_cache[template] = p
  return p
end

-- Whether TEMPLATE names the crate ({crate} in it).
function tags.has_crate(template)
  return template:find("{crate}", 1, true) ~= nil
end

-- The tag of crate NAME at VERSION under TEMPLATE. Raises on a malformed template.
function tags.name(template, name, version)
  local p, err = tags.parse(template)
  if not p then
    error(err, 2)
  end
  local v = tostring(version)
  if p.crate == "first" then
    return p.pre .. name .. p.mid .. v .. p.post
  elseif p.crate == "last" then
    return p.pre .. v .. p.mid .. name .. p.post
  end
  return p.pre .. v .. p.post
end

-- VERSION (text or Version) without its build metadata: "1.1.4+spec-1.1.0" -> "1.1.4".
function tags.without_metadata(version)
  return (tostring(version):gsub("%+.*$", ""))
end

-- Every way tag NAME reads under parsed template P as (crate, version text),
-- with crates from the set NAMES: a list of { crate = name|nil, version = text }.
-- The version text must start with a digit; whether it is semver is for the
-- caller to judge (a tag that fits but is not semver is worth reporting).
function tags.read(p, tag, names)
  local out = {}
  local npre, npost = #p.pre, #p.post
  if #tag <= npre + npost or (npre > 0 and tag:sub(1, npre) ~= p.pre)
    or (npost > 0 and tag:sub(-npost) ~= p.post) then
    return out
  end
  local middle = tag:sub(npre + 1, #tag - npost)
  if not p.crate then
    if middle:find("^%d") then
      out[1] = { version = middle }
    end
    return out
  end
  -- Every split of MIDDLE at an occurrence of MID is a candidate; crate names
  -- may contain MID themselves ("tokio-util-0.7.0" under "{crate}-{version}").
  local mid, step, from = p.mid, #p.mid, 1
  while true do
    local s
    if step == 0 then
      s = from <= #middle and from or nil
    else
      s = middle:find(mid, from, true)
    end
    if not s then
      break
    end
    local left, right = middle:sub(1, s - 1), middle:sub(s + step)
    local crate, version = left, right
    if p.crate == "last" then
      crate, version = right, left
    end
    if crate ~= "" and version:find("^%d") and (names == nil or names[crate]) then
      out[#out + 1] = { crate = crate, version = version }
    end
    from = s + 1
  end
  return out
end

-- Normalise a template setting into { ["*"] = T?, [crate] = T } (every entry
-- parsed), or nil for "find them from the tags". Accepts nil, "", a string
-- (with optional "crate=T" entries, comma separated), a list of such strings,
-- or a table. Returns nil, msg, "ETAG" on a malformed template.
function tags.templates(value)
  if value == nil or value == "" then
    return nil
  end
  local out = {}
  local function entry(text)
    text = text:match("^%s*(.-)%s*$")
    if text == "" then
      return true
    end
    local crate, template = text:match("^([%w_-]+)=(.+)$")
    if not crate then
      crate, template = "*", text
    end
    local ok, err, code = tags.parse(template)
    if not ok then
      return nil, err, code
    end
    out[crate] = template
    return true
  end
  if type(value) == "string" then
    for part in (value .. ","):gmatch("([^,]*),") do
      local ok, err, code = entry(part)
      if not ok then
        return nil, err, code
      end
    end
  elseif type(value) == "table" then
    for k, v in pairs(value) do
      if type(k) == "number" then
        if type(v) ~= "string" then
          return nil, ("tag templates: entry %d must be a string, got %s"):format(k, type(v)), "ETAG"
        end
        local ok, err, code = entry(v)
        if not ok then
          return nil, err, code
        end
      elseif type(k) == "string" and type(v) == "string" then
        local ok, err, code = tags.parse(v)
        if not ok then
          return nil, err, code
        end
        out[k] = v
      else
        return nil, ("tag templates: '%s' must map to a template string, got %s"):format(tostring(k), type(v)), "ETAG"
      end
    end
  else
    return nil, ("tag templates: expected a string or a table, got %s"):format(type(value)), "ETAG"
  end
  if next(out) == nil then
    return nil
  end
  return out
end

-- The template set for crate NAME in TEMPLATES (tags.templates' form), or nil.
function tags.for_crate(templates, name)
  if not templates then
    return nil
  end
  return templates[name] or templates["*"]
end

-- Text form of TEMPLATES for display and settings: "*" first, then crates by name.
function tags.describe(templates)
  local parts = {}
  if templates["*"] then
    parts[1] = templates["*"]
  end
  local names = {}
  for k in pairs(templates) do
    if k ~= "*" then
      names[#names + 1] = k
    end
  end
  table.sort(names)
  for _, k in ipairs(names) do
    parts[#parts + 1] = k .. "=" .. templates[k]
  end
  return table.concat(parts, ",")
end

---------------------------------------------------------------------------
-- Closest names: when no tag matches, what the tags that exist look like.
---------------------------------------------------------------------------

local function distance(a, b)
  if #a > 64 or #b > 64 then
    return math.abs(#a - #b) + 64
  end
  local prev, cur = {}, {}
  for j = 0, #b do
    prev[j] = j
  end
  for i = 1, #a do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, #b do
      local cost = ca == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[#b]
end

-- The shapes of TAG_NAMES that look like releases (a version-like part), as
-- { {shape = "release-{version}", count, example} }, closest to EXPECTED (tag
-- names the workspace would use) first, at most LIMIT of them.
function tags.closest(tag_names, expected, limit)
  local shapes, order = {}, {}
  for _, name in ipairs(tag_names) do
    local s, e = name:find("%d+%.%d+[%w%.%-+]*$")
    if not s then
      s, e = name:find("%d+%.%d+[%w%.%-+]*")
    end
    if s then
      local shape = name:sub(1, s - 1) .. "{version}" .. name:sub(e + 1)
      if not shapes[shape] then
        shapes[shape] = { shape = shape, count = 0, example = name }
        order[#order + 1] = shapes[shape]
      end
      shapes[shape].count = shapes[shape].count + 1
    end
  end
  for _, sh in ipairs(order) do
    local best = math.huge
    for i = 1, math.min(#expected, 50) do
      best = math.min(best, distance(sh.example, expected[i]))
    end
    sh.score = best
  end
  table.sort(order, function(a, b)
    if a.score ~= b.score then return a.score < b.score end
    if a.count ~= b.count then return a.count > b.count end
    return a.shape < b.shape
  end)
  local out = {}
  for i = 1, math.min(limit or 5, #order) do
    out[i] = { shape = order[i].shape, count = order[i].count, example = order[i].example }
  end
  return out
end

---------------------------------------------------------------------------
-- Conventions: which template each crate's tags follow.
---------------------------------------------------------------------------

-- A crate-less template names one tag per version: set for crates that do
-- not share a version, it is refused, saying what to set instead.
local function check_set_templates(members, set)
  local served, order = {}, {}
  for _, m in ipairs(members) do
    local t = tags.for_crate(set, m.name)
    if t and not tags.has_crate(t) and m.publish ~= false then
      if not served[t] then
        served[t] = {}
        order[#order + 1] = t
      end
      table.insert(served[t], m)
    end
  end
  table.sort(order)
  for _, t in ipairs(order) do
    local list, versions, seen = served[t], {}, {}
    for _, m in ipairs(list) do
      local v = m.version or "?"
      if not seen[v] then
        seen[v] = true
        versions[#versions + 1] = v
      end
    end
    if #versions > 1 then
      local names = {}
      for i, m in ipairs(list) do
        names[i] = ("%s %s"):format(m.name, m.version)
      end
      table.sort(names)
      return nil, ("tag template '%s' has no {crate}, so it names one tag per version, but the crates it "
        .. "applies to do not share a version (%s); give those crates a template with {crate}, e.g. "
        .. "tag_template = { [\"*\"] = \"{crate}-v{version}\", [\"%s\"] = \"%s\" }, or make them share "
        .. "one version (version.workspace = true)"):format(t, table.concat(names, ", "), list[1].name, t), "ETAG"
    end
  end
  return true
end

local function by_version(list)
  table.sort(list, function(a, b)
    if a.version ~= b.version then
      return a.version > b.version
    end
    return a.tag < b.tag
  end)
  return list
end

-- The readings of CANDIDATES, per tag: a crate's own (a template with
-- {crate}; the longest crate name wins) into OWN[crate][template], crate-less
-- ones into SHARED[template], and tags that read only as versions that are not
-- semver into PROBLEMS.
local function group_readings(candidates)
  local per_tag, tag_order = {}, {}
  for _, c in ipairs(candidates) do
    local entry = per_tag[c.tag]
    if not entry then
      entry = { valid = {}, invalid = {} }
      per_tag[c.tag] = entry
      tag_order[#tag_order + 1] = c.tag
    end
    local v = semver.parse(c.version)
    if v then
      entry.valid[#entry.valid + 1] = { c = c, v = v }
    else
      entry.invalid[#entry.invalid + 1] = c
    end
  end
  local own, shared, problems = {}, {}, {}
  for _, name in ipairs(tag_order) do
    local entry = per_tag[name]
    local best
    for _, r in ipairs(entry.valid) do
      if r.c.crate and (not best or #r.c.crate > #best.c.crate) then
        best = r
      end
    end
    if best then
      own[best.c.crate] = own[best.c.crate] or {}
      local t = own[best.c.crate]
      t[best.c.template] = t[best.c.template] or {}
      table.insert(t[best.c.template], { tag = name, version = best.v, commit = best.c.peeled or best.c.target })
    end
    for _, r in ipairs(entry.valid) do
      if not r.c.crate then
        shared[r.c.template] = shared[r.c.template] or {}
        table.insert(shared[r.c.template], { tag = name, version = r.v, commit = r.c.peeled or r.c.target })
      end
    end
    if #entry.valid == 0 then
      for _, c in ipairs(entry.invalid) do
        problems[#problems + 1] = { tag = name, crate = c.crate, template = c.template, version = c.version }
      end
    end
  end
  return own, shared, problems
end

local RANK = {}
for i, t in ipairs(tags.KNOWN) do
  RANK[t] = i
end

-- The shared tags crate M may own: those whose version it has reached.
local function shared_for(shared, m, template)
  local out = {}
  local current = m.version and semver.parse(m.version)
  for _, r in ipairs(shared[template] or {}) do
    if not m.version or (current and not (r.version > current)) then
      out[#out + 1] = r
    end
  end
  return out
end

local function with_version(list, version)
  local v = version and semver.parse(version)
  for _, r in ipairs(list) do
    if v and r.version == v then
      return r
    end
  end
  return nil
end

-- The convention crate M follows, found from its tags, or nil. Its own
-- conventions, and shared ones when it may share them (SHARES) or when
-- none of its own tags is its manifest's version but a shared one is, at a
-- commit where the crate was there (EXISTS): a member released with the
-- others' tags, or one that used to be the repository's only crate. The
-- convention with the tag of the manifest's version wins, its own before a
-- shared one; then the one of its newest release (conventions change: 0.10.5,
-- then cargo-release-0.11.1, then v0.12.2); then the most tags; then the order
-- of tags.KNOWN. Its releases are the tags of all of them.
local function found_convention(m, own, shared, shares, exists)
  local options, own_current = {}, false
  for t, list in pairs(own[m.name] or {}) do
    local current = with_version(list, m.version) ~= nil
    options[#options + 1] = { template = t, list = list, current = current }
    own_current = own_current or current
  end
  for t in pairs(shared) do
    local list = shared_for(shared, m, t)
    local at = with_version(list, m.version)
    local claimed = not own_current and at ~= nil and (exists == nil or exists(at.commit, m.dir))
    if #list > 0 and (shares or claimed) then
      options[#options + 1] = { template = t, list = list, current = at ~= nil, shared = true }
    end
  end
  for _, o in ipairs(options) do
    by_version(o.list)
    o.newest = o.list[1].version
  end
  table.sort(options, function(a, b)
    if a.current ~= b.current then return a.current end
    if a.current and a.shared ~= b.shared then return not a.shared end
    if a.newest ~= b.newest then return a.newest > b.newest end
    if #a.list ~= #b.list then return #a.list > #b.list end
    local ra, rb = RANK[a.template] or 99, RANK[b.template] or 99
    if ra ~= rb then return ra < rb end
    return a.template < b.template
  end)
  if not options[1] then
    return nil
  end
  local all, seen = {}, {}
  for _, o in ipairs(options) do
    for _, r in ipairs(o.list) do
      if not seen[r.tag] then
        seen[r.tag] = true
        all[#all + 1] = r
      end
    end
  end
  return { template = options[1].template, source = "tags", tags = by_version(all), own = #options[1].list }
end

-- Crates without tags follow what their siblings do: the most common
-- convention with {crate} found, else the default (v{version} for one crate).
local function default_convention(by_crate, single)
  local counts, sibling, best = {}, nil, 0
  for _, conv in pairs(by_crate) do
    if conv.source == "tags" and tags.has_crate(conv.template) then
      counts[conv.template] = (counts[conv.template] or 0) + 1
    end
  end
  for t, n in pairs(counts) do
    if n > best or (n == best and ((RANK[t] or 99) < (RANK[sibling] or 99)
        or ((RANK[t] or 99) == (RANK[sibling] or 99) and t < sibling))) then
      sibling, best = t, n
    end
  end
  return single and tags.SINGLE or sibling or tags.DEFAULT
end

-- Tags may leave out the build metadata the manifest carries (cargo-release
-- makes toml-v1.1.4 for 1.1.4+spec-1.1.0): then new tags leave it out too.
local function keeps_metadata(m, conv)
  local current = m.version and semver.parse(m.version)
  if not current or #current.build == 0 or #conv.tags == 0 then
    return nil
  end
  for _, r in ipairs(conv.tags) do
    if #r.version.build > 0 then
      return true
    end
  end
  return false
end

-- Tags that fit the convention in force for a crate but are not semver.
local function problems_in_force(problems, members, by_crate)
  local out = {}
  for _, pr in ipairs(problems) do
    for _, m in ipairs(members) do
      local conv = by_crate[m.name]
      if pr.template == conv.template and (pr.crate == m.name or (pr.crate == nil and conv.source ~= "default")) then
        out[#out + 1] = { tag = pr.tag, crate = m.name, template = pr.template, version = pr.version,
          explicit = conv.source == "set" }
        break
      end
    end
  end
  return out
end

-- Release tags per crate from CANDIDATES (plan.tag_candidates' list) for
-- workspace MEMBERS ({name, version, dir, publish, inherited_version}).
-- SET is tags.templates' form or nil; SINGLE says the workspace has one crate;
-- EXISTS(commit, dir), when given, says whether a crate was there at a commit.
-- Returns
--   by_crate[name] = { template, source = "set"|"tags"|"default", found = n,
--                      tags = { {tag, version (Version), commit} } newest version first,
--                      metadata = false when its tags leave out the manifest's build metadata },
--   problems = { {tag, crate, template, version, explicit} } (tags that fit the
--                      convention in force for a crate with a version that is not semver)
-- or nil, message, "ETAG" for a template set on crates it cannot serve.
function tags.conventions(candidates, members, set, single, exists)
  if set then
    local ok, err, code = check_set_templates(members, set)
    if not ok then
      return nil, err, code
    end
  end
  local own, shared, problems = group_readings(candidates)
  -- Members that write out the root crate's version and have no tags of
  -- their own are released with its crate-less tags: bevy tags v0.13.2 for
  -- every crate at 0.13.2, and the members move on to 0.14.0-dev with the root.
  local root_version
  for _, m in ipairs(members) do
    if m.dir == "" then
      root_version = m.version
    end
  end
  local by_crate = {}
  for _, m in ipairs(members) do
    local template = tags.for_crate(set, m.name)
    if template then
      local list = tags.has_crate(template) and ((own[m.name] or {})[template] or {}) or shared_for(shared, m, template)
      by_crate[m.name] = { template = template, source = "set", tags = by_version(list) }
    else
      -- The only crate, the root crate, crates inheriting [workspace.package]
      -- version and untagged members at the root crate's version may share
      -- crate-less tags.
      local shares = single or m.dir == "" or m.inherited_version == true
        or (root_version ~= nil and m.version == root_version and own[m.name] == nil)
      by_crate[m.name] = found_convention(m, own, shared, shares, exists)
    end
  end
  local fallback = default_convention(by_crate, single)
  for _, m in ipairs(members) do
    local conv = by_crate[m.name] or { template = fallback, source = "default", tags = {} }
    by_crate[m.name] = conv
    conv.found = #conv.tags
    conv.metadata = keeps_metadata(m, conv)
  end
  return by_crate, problems_in_force(problems, members, by_crate)
end

return tags
