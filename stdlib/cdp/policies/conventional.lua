-- The default Release Plan policy: Conventional Commits decide the bump.
--
--   local conventional = require "cdp.policies.conventional"
--   policy = conventional {
--     types = { feat = "minor", fix = "patch", perf = "patch" },  -- merged over the defaults
--     zero_major = true,          -- on 0.x: breaking -> minor, minor -> patch
--     initial_version = "0.1.0",  -- the least version a never-released crate starts at
--     overrides = { crate = "major" | "1.2.3" },
--     lockstep = { { "a", "b" } },-- crates that share one version
--     skip = { "c" },             -- never bumped
--     propagate = "patch",        -- bump a dependent whose requirement is rewritten (false: don't)
--     prerelease = nil | "dev",   -- release as X.Y.Z-dev.N
--   }
--
-- A policy is a function policy(draft) -> decisions (see cdp.plan): this one
-- works out a level per crate from its commits and hands it to
-- draft:resolve, which does versions, propagation and lockstep.
local semver = require "cdp.semver"

local conventional = {}

conventional.DEFAULT_TYPES = { feat = "minor", fix = "patch", perf = "patch" }

local KNOWN = { types = 1, zero_major = 1, initial_version = 1, overrides = 1, lockstep = 1,
  skip = 1, propagate = 1, prerelease = 1 }

local function check_level(level, where)
  if semver.LEVELS[level] == nil then
    error(("conventional: %s must be one of none, patch, minor, major (got %s)")
      :format(where, tostring(level)), 3)
  end
end

-- The level one commit asks for on a crate whose version is BASE.
function conventional.level_of(parsed, types, zero_major, base)
  local level
  if parsed.breaking then
    level = "major"
  else
    level = types[parsed.type] or "none"
  end
  local shifted = false
  if zero_major and base and base.major == 0 then
    if level == "major" then
      level, shifted = "minor", true
    elseif level == "minor" then
      level, shifted = "patch", true
    end
  end
  return level, shifted
end

local function short(id)
  return id:sub(1, 7)
end

function conventional.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("conventional: expected a table of options", 2)
  end
  for k in pairs(opts) do
    if not KNOWN[k] then
      error(("conventional: unknown option '%s'"):format(tostring(k)), 2)
    end
  end
  local types = {}
  for t, l in pairs(conventional.DEFAULT_TYPES) do
    types[t] = l
  end
  for t, l in pairs(opts.types or {}) do
    check_level(l, ("types.%s"):format(t))
    types[t:lower()] = l
  end
  local zero_major = opts.zero_major ~= false
  local initial = opts.initial_version or "0.1.0"
  if not semver.parse(initial) then
    error(("conventional: initial_version '%s' is not a semantic version"):format(tostring(initial)), 2)
  end
  local propagate = opts.propagate
  if propagate == nil then
    propagate = "patch"
  elseif propagate == false then
    propagate = "none"
  end
  check_level(propagate, "propagate")
  local overrides = opts.overrides or {}
  for name, value in pairs(overrides) do
    if semver.LEVELS[value] == nil and not semver.parse(tostring(value)) then
      error(("conventional: override for %s must be a level or a version (got %s)")
        :format(name, tostring(value)), 2)
    end
  end

  return function(draft)
    -- Names in the options must be crates of this workspace.
    for name in pairs(overrides) do
      draft:check_crate(name, "overrides")
    end
    for _, name in ipairs(opts.skip or {}) do
      draft:check_crate(name, "skip")
    end
    for i, group in ipairs(opts.lockstep or {}) do
      for _, name in ipairs(group) do
        draft:check_crate(name, ("lockstep group %d"):format(i))
      end
    end

    local levels = {}
    for _, name in ipairs(draft.names) do
      local crate = draft.crates[name]
      local base = semver.parse(crate.last or crate.current)
      local level, reasons = "none", {}
      for _, c in ipairs(crate.commits) do
        local l, shifted = conventional.level_of(c.parsed, types, zero_major, base)
        if l ~= "none" then
          level = semver.max_bump(level, l)
          local why = c.parsed.breaking and "breaking" or c.parsed.type
          if shifted then
            why = why .. ", on 0.x"
          end
          reasons[#reasons + 1] = {
            kind = "commit", id = c.id, summary = c.summary, type = c.parsed.type,
            scope = c.parsed.scope, breaking = c.parsed.breaking, level = l,
            text = ("%s %s (%s → %s)"):format(short(c.id), c.summary, why, l),
          }
        end
      end
      local override = overrides[name]
      local decision = { bump = level, reasons = reasons }
      if override then
        if semver.LEVELS[override] then
          decision.bump = override
        else
          decision.version = tostring(override)
        end
        table.insert(reasons, 1, { kind = "override", value = tostring(override),
          text = ("policy override: %s"):format(tostring(override)) })
      end
      levels[name] = decision
    end
    return draft:resolve(levels, {
      propagate = propagate,
      lockstep = opts.lockstep,
      skip = opts.skip,
      prerelease = opts.prerelease,
      initial_version = initial,
    })
  end
end

return setmetatable(conventional, { __call = function(_, opts) return conventional.new(opts) end })
