-- The default Release Plan policy: Conventional Commits decide the bump.
--
--   local conventional = require "cdp.policies.conventional"
--   policy = conventional {
--     types = { feat = "minor", fix = "patch", perf = "patch" },  -- merged over the defaults;
--                                 -- ["*"] is the wildcard: every other type, and every
--                                 -- message that is not a Conventional Commit
--     zero_major = true,          -- on 0.x: breaking -> minor, minor -> patch
--     zero_minor = false,         -- on 0.0.x: breaking -> patch (each 0.0.x is its own series)
--     features_always_bump_minor = false, -- minor stays minor on 0.x (breaking is unchanged)
--     initial_version = "0.1.0",  -- the least version a never-released crate starts at
--     overrides = { crate = "major" | "1.2.3" },
--     lockstep = { { "a", "b" } },-- crates that share one version (version.workspace = true
--                                 -- crates share one without being named)
--     skip = { "c" },             -- never bumped
--     propagate = "patch",        -- bump a dependent whose requirement is rewritten (false: don't);
--                                 -- "breaking": a dependent of a breaking release gets a
--                                 -- breaking bump of its own (minor on 0.x, major from 1.0)
--     raise_requirements = false, -- true: raise every requirement on a released crate to
--                                 -- its new version, releasing the dependent (patch);
--                                 -- "rewrite": raise them without releasing
--     prerelease = nil | "dev",   -- release as X.Y.Z-dev.N
--     prerelease_start = 1,       -- N of a new pre-release series: 0 or 1
--   }
--
-- A policy is a function policy(draft) -> decisions (see cdp.plan): this one
-- works out a level per crate from its commits and hands it to
-- draft:resolve, which does versions, propagation and lockstep. Every level
-- it gives comes with the commits that asked for it (reasons with `id`).
local semver = require "cdp.semver"

local conventional = {}

conventional.DEFAULT_TYPES = { feat = "minor", fix = "patch", perf = "patch" }

conventional.OPTIONS = { types = 1, zero_major = 1, zero_minor = 1, features_always_bump_minor = 1,
  initial_version = 1, overrides = 1, lockstep = 1, skip = 1, propagate = 1, raise_requirements = 1,
  prerelease = 1, prerelease_start = 1 }

local function check_level(level, where, depth)
  if semver.LEVELS[level] == nil then
    error(("conventional: %s must be one of none, patch, minor, major (got %s)")
      :format(where, tostring(level)), depth or 4)
  end
end

-- The level one commit asks for on a crate whose version is BASE, and
-- whether the 0.x rules shifted it. RULES: { zero_minor, features_always_bump_minor }.
function conventional.level_of(parsed, types, zero_major, base, rules)
  rules = rules or {}
  local level
  if parsed.breaking then
    level = "major"
  else
    -- the wildcard takes every type not named, and "other": messages that are
    -- not Conventional Commits at all
    level = types[parsed.type] or types["*"] or "none"
  end
  local shifted = false
  if zero_major and base and base.major == 0 then
    if level == "major" then
      level, shifted = (rules.zero_minor and base.minor == 0) and "patch" or "minor", true
    elseif level == "minor" and not rules.features_always_bump_minor then
      level, shifted = "patch", true
    end
  end
  return level, shifted
end

-- The options, checked, with their defaults filled in.
local function read_options(opts)
  if type(opts) ~= "table" then
    error("conventional: expected a table of options", 3)
  end
  for k in pairs(opts) do
    if not conventional.OPTIONS[k] then
      error(("conventional: unknown option '%s'"):format(tostring(k)), 3)
    end
  end
  local cfg = { types = {} }
  for t, l in pairs(conventional.DEFAULT_TYPES) do
    cfg.types[t] = l
  end
  for t, l in pairs(opts.types or {}) do
    check_level(l, ("types.%s"):format(t))
    cfg.types[t:lower()] = l
  end
  cfg.zero_major = opts.zero_major ~= false
  cfg.rules = { zero_minor = opts.zero_minor == true, features_always_bump_minor = opts.features_always_bump_minor == true }
  cfg.initial = opts.initial_version or "0.1.0"
  if not semver.parse(cfg.initial) then
    error(("conventional: initial_version '%s' is not a semantic version"):format(tostring(cfg.initial)), 3)
  end
  cfg.propagate = opts.propagate
  if cfg.propagate == nil then
    cfg.propagate = "patch"
  elseif cfg.propagate == false then
    cfg.propagate = "none"
  end
  if cfg.propagate ~= "breaking" then
    check_level(cfg.propagate, "propagate")
  end
  local raise = opts.raise_requirements
  if raise ~= nil and raise ~= true and raise ~= false and raise ~= "rewrite" then
    error(("conventional: raise_requirements must be true, false or \"rewrite\" (got %s)"):format(tostring(raise)), 3)
  end
  cfg.raise = raise
  local start = opts.prerelease_start
  if start ~= nil and start ~= 0 and start ~= 1 then
    error(("conventional: prerelease_start must be 0 or 1 (got %s)"):format(tostring(start)), 3)
  end
  cfg.start = start
  cfg.overrides = opts.overrides or {}
  for name, value in pairs(cfg.overrides) do
    if semver.LEVELS[value] == nil and not semver.parse(tostring(value)) then
      error(("conventional: override for %s must be a level or a version (got %s)")
        :format(name, tostring(value)), 3)
    end
  end
  cfg.opts = opts
  return cfg
end

-- Names in the options must be crates of this workspace.
local function check_names(draft, cfg)
  for name in pairs(cfg.overrides) do
    draft:check_crate(name, "overrides")
  end
  for _, name in ipairs(cfg.opts.skip or {}) do
    draft:check_crate(name, "skip")
  end
  for i, group in ipairs(cfg.opts.lockstep or {}) do
    for _, name in ipairs(group) do
      draft:check_crate(name, ("lockstep group %d"):format(i))
    end
  end
end

local function short(id)
  return id:sub(1, 7)
end

-- Why a commit asks for its level, as the reason text shows it.
local function why(c, cfg, shifted)
  local p = c.parsed
  local text
  if p.breaking then
    text = "breaking"
  elseif cfg.types[p.type] then
    text = p.type
  elseif cfg.types["*"] then
    text = p.conventional and (p.type .. ", any change") or "any change"
  else
    text = p.type
  end
  if shifted then
    text = text .. ", on 0.x"
  end
  if c.lock_only then -- a binary crate's only change was the workspace's Cargo.lock
    text = text .. "; changed only Cargo.lock"
  end
  return text
end

-- The level commit C asks of its crate. A commit that changed only a binary's
-- Cargo.lock reaches the binary as a dependency update, whatever it did to
-- the crate it was written for: a patch at most (a dependency's breaking
-- change or feature is not the binary's; release-plz releases such a binary
-- as a patch too).
local function level_of(c, cfg, base)
  local l, shifted = conventional.level_of(c.parsed, cfg.types, cfg.zero_major, base, cfg.rules)
  if c.lock_only and l ~= "none" then
    return "patch", false
  end
  return l, shifted
end

-- The decision for one crate: the highest level its commits ask for, each
-- commit that asks for one as a reason, then the override.
local function decide(crate, cfg)
  local base = semver.parse(crate.last or crate.current)
  local level, reasons = "none", {}
  for _, c in ipairs(crate.commits) do
    local l, shifted = level_of(c, cfg, base)
    if l ~= "none" then
      level = semver.max_bump(level, l)
      reasons[#reasons + 1] = {
        kind = "commit", id = c.id, summary = c.summary, type = c.parsed.type,
        scope = c.parsed.scope, breaking = c.parsed.breaking, level = l,
        text = ("%s %s (%s → %s)"):format(short(c.id), c.summary, why(c, cfg, shifted), l),
      }
    end
  end
  local decision = { bump = level, reasons = reasons }
  local override = cfg.overrides[crate.name]
  if override then
    if semver.LEVELS[override] then
      decision.bump = override
    else
      decision.version = tostring(override)
    end
    table.insert(reasons, 1, { kind = "override", value = tostring(override),
      text = ("policy override: %s"):format(tostring(override)) })
  end
  return decision
end

function conventional.new(opts)
  local cfg = read_options(opts or {})
  return function(draft)
    check_names(draft, cfg)
    local levels = {}
    for _, name in ipairs(draft.names) do
      levels[name] = decide(draft.crates[name], cfg)
    end
    return draft:resolve(levels, {
      propagate = cfg.propagate,
      raise_requirements = cfg.raise,
      lockstep = cfg.opts.lockstep,
      skip = cfg.opts.skip,
      prerelease = cfg.opts.prerelease,
      prerelease_start = cfg.start,
      initial_version = cfg.initial,
    })
  end
end

-- A preset: conventional with DEFAULTS under the options given (a table
-- option such as `types` is merged key by key, the caller's entries winning).
function conventional.preset(name, defaults)
  return function(opts)
    opts = opts or {}
    if type(opts) ~= "table" then
      error(("%s: expected a table of options"):format(name), 2)
    end
    local merged = {}
    for k, v in pairs(defaults) do
      merged[k] = v
    end
    for k, v in pairs(opts) do
      if type(v) == "table" and type(merged[k]) == "table" and k == "types" then
        local t = {}
        for tk, tv in pairs(merged[k]) do
          t[tk] = tv
        end
        for tk, tv in pairs(v) do
          t[tk] = tv
        end
        merged[k] = t
      else
        merged[k] = v
      end
    end
    local ok, policy = pcall(conventional.new, merged)
    if not ok then
      error((tostring(policy):gsub("conventional:", name .. ":", 1)), 2)
    end
    return policy
  end
end

return setmetatable(conventional, { __call = function(_, opts) return conventional.new(opts) end })
