-- Pipelines as scripts. A pipeline script returns
--
--   cdp.pipeline{ name = "release", phase = 2, stages = { "activate", my_stage, ... },
--                 settings = { ... }, alerts = { ... }, policy = ... }
--
-- and this module checks it when the script runs, so a mistake is reported at
-- the script's file:line before any stage runs: an unknown stage, an artifact
-- that no earlier stage gives, a stage listed twice, a phase that is not 0-3.
--
-- A stage is a table (see DESIGN.md, "Stage contract"):
--   name          [%w_-]+
--   needs, gives  lists of artifact kinds
--   run(ctx, inputs) -> outputs   outputs maps each kind in `gives` to a
--                                 JSON-serialisable value
--   health(ctx) -> true | false, reason      or a list { {name=, check=fn}, ... }
--   verify(ctx, outputs, inputs) -> true | false, reason   optional: do recorded
--                                 outputs still hold in the world? (else re-run)
--   modifies_fork boolean: such a stage starts with release.fork_at(fork, its input
--                 commit), so whatever a killed attempt left in the fork is gone
--   approval      "before": with phase 2, ask before this stage (publish always does)
--   settings      the settings the stage reads: string keys declare its own
--                 ({ type =, default =, doc = }, see cdp.settings), list items name
--                 settings another stage or the script declares. Its key then hashes
--                 only those (no `settings` at all: every setting).
--   requires      names of secret settings the stage cannot run without; Validate
--                 checks them before anything is pushed when the stage is in the run
--   for_later     names of settings the stage reads only to check, early, the stages
--                 after it in the same run (Validate): a job of its own (cdp export)
--                 is given none of those secrets
--   key_facts(ctx) -> JSON value   optional: what of the world the stage's key holds
--                 besides its inputs (Activate: the commit its trigger names, so a new
--                 commit on the branch is a new fork)
-- or the name of a stdlib stage, which is require("cdp.stages." .. name).
local settings = require "cdp.settings"

local pipeline = {}

local Pipeline = { __name = "cdp.Pipeline" }
Pipeline.__index = Pipeline
Pipeline.__tostring = function(p)
  return ("cdp.Pipeline(%s, %d stages)"):format(p.name, #p.stages)
end

pipeline.secret = settings.secret
pipeline.setting = settings.setting

local PHASES = {
  [0] = "approval before and after every stage",
  [1] = "approval of every stage's outputs",
  [2] = "approval only before publish",
  [3] = "fully automatic",
}
pipeline.PHASES = PHASES

local function fail(where, fmt, ...)
  error(("%s: " .. fmt):format(where, ...), 0)
end

local function position(info)
  if not info then
    return "?"
  end
  local src = info.source or "?"
  src = src:sub(1, 1) == "@" and src:sub(2) or info.short_src
  return ("%s:%d"):format(src, info.currentline or info.linedefined or 0)
end

-- The position of a function's definition, for errors about inline stages.
local function defined_at(fn, fallback)
  if type(fn) ~= "function" then
    return fallback
  end
  local info = debug.getinfo(fn, "S")
  if info.what ~= "Lua" or info.source:sub(1, 1) ~= "@" then
    return fallback
  end
  return ("%s:%d"):format(info.source:sub(2), info.linedefined)
end

local function string_list(where, stage, field, value)
  if value == nil then
    return {}
  end
  if type(value) == "string" then
    return { value }
  end
  if type(value) ~= "table" then
    fail(where, "stage '%s': %s must be a list of artifact kinds", stage, field)
  end
  local out = {}
  for i, v in ipairs(value) do
    if type(v) ~= "string" or v == "" then
      fail(where, "stage '%s': %s[%d] must be an artifact kind (a string)", stage, field, i)
    end
    out[i] = v
  end
  return out
end

local function load_stdlib_stage(where, name)
  if type(name) ~= "string" or not name:match("^[%w_-]+$") then
    fail(where, "unknown stage '%s'", tostring(name))
  end
  local module = "cdp.stages." .. name
  local ok, stage = pcall(require, module)
  if not ok then
    if tostring(stage):find("module '" .. module .. "' not found", 1, true) then
      fail(where, "unknown stage '%s' (no module %s in stdlib/cdp/stages/ or an override directory)",
        name, module)
    end
    error(stage, 0) -- a stage module with an error of its own: show it as it is
  end
  if type(stage) ~= "table" then
    fail(where, "stage module %s must return a stage table, got %s", module, type(stage))
  end
  return stage, module
end

local function normalise_health(where, name, health)
  if health == nil then
    return {}
  end
  if type(health) == "function" then
    return { { name = name, check = health } }
  end
  if type(health) ~= "table" then
    fail(where, "stage '%s': health must be a function or a list of {name=, check=}", name)
  end
  local out = {}
  for i, c in ipairs(health) do
    if type(c) ~= "table" or type(c.check) ~= "function" then
      fail(where, "stage '%s': health[%d] must be {name = '...', check = function(ctx) ... end}", name, i)
    end
    out[i] = { name = c.name or (name .. "#" .. i), check = c.check }
  end
  return out
end

local function normalise_stage(where, item, index)
  local module
  local at = where
  if type(item) == "string" then
    item, module = load_stdlib_stage(where, item)
  elseif type(item) ~= "table" then
    fail(where, "stages[%d] must be a stage table or the name of a stdlib stage, got %s", index, type(item))
  else
    at = defined_at(item.run, where)
  end
  local name = item.name
  if type(name) ~= "string" or not name:match("^[%w_-]+$") then
    fail(at, "stages[%d]: a stage needs a name made of letters, digits, '-' and '_'", index)
  end
  if type(item.run) ~= "function" then
    fail(at, "stage '%s' has no run function", name)
  end
  if item.verify ~= nil and type(item.verify) ~= "function" then
    fail(at, "stage '%s': verify must be a function", name)
  end
  for _, field in ipairs { "key_facts" } do
    if item[field] ~= nil and type(item[field]) ~= "function" then
      fail(at, "stage '%s': %s must be a function", name, field)
    end
  end
  if item.approval ~= nil and item.approval ~= "before" then
    fail(at, "stage '%s': approval must be \"before\" or nil", name)
  end
  local declares, reads = {}, nil
  if item.settings ~= nil then
    if type(item.settings) ~= "table" then
      fail(at, "stage '%s': settings must be a table of declarations and names", name)
    end
    reads = {}
    for k, v in pairs(item.settings) do
      if math.type(k) == "integer" then
        if type(v) ~= "string" then
          fail(at, "stage '%s': settings[%d] must be the name of a setting", name, k)
        end
        reads[#reads + 1] = v
      else
        declares[k] = settings.declare(k, v, ("%s: stage '%s'"):format(at, name))
        reads[#reads + 1] = k
      end
    end
    table.sort(reads)
  end
  local requires = string_list(at, name, "requires", item.requires)
  for _, key in ipairs(requires) do
    local listed = false
    for _, r in ipairs(reads or {}) do
      listed = listed or r == key
    end
    if not listed then
      fail(at, "stage '%s': requires '%s', which is not among the settings it reads", name, key)
    end
  end
  return {
    name = name,
    needs = string_list(at, name, "needs", item.needs),
    gives = string_list(at, name, "gives", item.gives),
    run = item.run,
    verify = item.verify,
    key_facts = item.key_facts,
    checks = normalise_health(at, name, item.health),
    modifies_fork = item.modifies_fork and true or false,
    uses_policy = item.uses_policy and true or false,
    approval = item.approval or (name == "publish" and "before" or nil),
    settings = reads,
    declares = declares,
    requires = requires,
    for_later = string_list(at, name, "for_later", item.for_later),
    module = module,
    definition = item,
    where = at,
  }
end

-- Check SPEC and make a pipeline. WHERE ("file:line") is the cdp.pipeline
-- call, named in every error; FILE is the script.
function pipeline.new(spec, where, file)
  where = where or "?"
  if type(spec) ~= "table" then
    fail(where, "cdp.pipeline expects a table { name =, stages = {...}, ... }")
  end
  for key in pairs(spec) do
    local known = { name = 1, phase = 1, stages = 1, policy = 1, alerts = 1, settings = 1, description = 1,
      child_env = 1 }
    if not known[key] then
      fail(where, "cdp.pipeline: unknown field '%s'", tostring(key))
    end
  end
  local phase = spec.phase == nil and 2 or spec.phase
  if math.type(phase) ~= "integer" or not PHASES[phase] then
    fail(where, "bad phase %s: a phase is 0 (approve before and after every stage), "
      .. "1 (approve every stage's outputs), 2 (approve before publish) or 3 (automatic)", tostring(phase))
  end
  if spec.name ~= nil and type(spec.name) ~= "string" then
    fail(where, "cdp.pipeline: name must be a string")
  end
  if type(spec.stages) ~= "table" or #spec.stages == 0 then
    fail(where, "cdp.pipeline: stages must be a non-empty list")
  end
  local stages, by_name, givers = {}, {}, {}
  for i, item in ipairs(spec.stages) do
    local stage = normalise_stage(where, item, i)
    if by_name[stage.name] then
      fail(stage.where, "duplicate stage '%s' (stages %d and %d)", stage.name, by_name[stage.name].index, i)
    end
    for _, kind in ipairs(stage.needs) do
      if not givers[kind] then
        local later
        for j = i + 1, #spec.stages do
          local other = spec.stages[j]
          local gives = type(other) == "table" and other.gives
          for _, g in ipairs(type(gives) == "string" and { gives } or gives or {}) do
            if g == kind and not later then
              later = other.name
            end
          end
        end
        if later then
          fail(stage.where, "stage '%s' needs '%s', which only the later stage '%s' gives", stage.name, kind, later)
        end
        fail(stage.where, "stage '%s' needs '%s', which no earlier stage gives", stage.name, kind)
      end
    end
    stage.index = i
    stages[i] = stage
    by_name[stage.name] = stage
    for _, kind in ipairs(stage.gives) do
      givers[kind] = stage.name
    end
  end
  local declarations, values = settings.collect(stages, spec.settings, where)
  for _, stage in ipairs(stages) do
    for _, key in ipairs(stage.settings or {}) do
      if not declarations[key] then
        fail(stage.where, "stage '%s' reads setting '%s', which neither a stage of this pipeline nor its settings "
          .. "declare (declare it: %s = cdp.pipeline.setting{ type = ..., default = ..., doc = ... })",
          stage.name, key, key)
      end
    end
    for _, key in ipairs(stage.requires) do
      if declarations[key].type ~= "secret" then
        fail(stage.where, "stage '%s' requires '%s', which is not a secret setting", stage.name, key)
      end
    end
  end
  if spec.child_env ~= nil then
    -- Variables the commands stages run get beyond cdp.secrets.CHILD_ENV.
    local ok = type(spec.child_env) == "table"
    for i, name in ipairs(ok and spec.child_env or {}) do
      if type(name) ~= "string" or not name:match("^[%w_]+%*?$") then
        fail(where, "child_env[%d]: a variable name, or a prefix and '*', expected (got %s)", i, tostring(name))
      end
    end
    if not ok then
      fail(where, "cdp.pipeline: child_env must be a list of variable names, like { \"DATABASE_URL\", \"MYAPP_*\" }")
    end
  end
  if spec.alerts ~= nil then
    local ok, err = require("cdp.alerts").check_alerts(spec.alerts)
    if not ok then
      fail(where, "alerts: %s", err)
    end
  end
  local name = spec.name
  if not name and file then
    name = file:match("([^/]+)%.lua$") or file
  end
  return setmetatable({
    name = name or "pipeline",
    phase = phase,
    stages = stages,
    by_name = by_name,
    settings = values,
    declarations = declarations,
    alerts = spec.alerts,
    child_env = spec.child_env,
    policy = spec.policy,
    where = where,
    file = file,
  }, Pipeline)
end

-- The environment variables the alert sinks' secrets are read from.
local function sink_secret_envs(alerts)
  local out = {}
  local function scan(t, depth)
    for _, v in pairs(t) do
      if settings.is_secret_marker(v) then
        out[v.env] = true
      elseif type(v) == "table" and depth < 3 then
        scan(v, depth + 1)
      end
    end
  end
  scan(alerts and alerts.sinks or {}, 0)
  return out
end

-- The effective settings of this pipeline with SETS ({{key=, value=}} from --set): the
-- declarations' defaults, the script's values, CDP_<KEY>, --set; secrets from their
-- environment variables, taken out of the environment as they are read.
-- Returns effective settings (see cdp.settings) or nil and a message.
function Pipeline:resolve_settings(sets)
  local proc = require "cdp.proc"
  local names = {}
  for name in pairs(proc.environ()) do
    names[#names + 1] = name
  end
  table.sort(names)
  local known = {}
  for _, stage in ipairs(require("cdp.reference").stdlib_stages()) do
    for name in pairs(stage.declares) do
      known[name] = true
    end
  end
  return settings.resolve(self.declarations, self.settings, {
    getenv = proc.getenv, take_secret = proc.take_env or proc.getenv, environ = names, sets = sets,
    reserved = sink_secret_envs(self.alerts), known = known,
  })
end

function pipeline.is(value)
  return getmetatable(value) == Pipeline
end

-- The stage that gives KIND to the stage at INDEX (the latest earlier giver).
function Pipeline:giver(kind, index)
  for i = index - 1, 1, -1 do
    for _, g in ipairs(self.stages[i].gives) do
      if g == kind then
        return self.stages[i]
      end
    end
  end
  return nil
end

-- Stage names in order.
function Pipeline:names()
  local out = {}
  for i, s in ipairs(self.stages) do
    out[i] = s.name
  end
  return out
end

-- The text of a stage's code, for its key. A stdlib stage is its module's
-- source; an inline stage is the source lines of each of its functions
-- (string.dump is not stable across builds), plus its declared fields.
local file_lines = {}
local function lines_of(path)
  if file_lines[path] == nil then
    local lines = false
    -- A pipeline cdp ships was loaded from the binary, not from a file of that name.
    local shipped = require("cdp.script").shipped_source(path)
    if shipped then
      lines = {}
      for line in (shipped .. "\n"):gmatch("(.-)\r?\n") do
        lines[#lines + 1] = line
      end
    else
      local f = io.open(path, "rb")
      if f then
        lines = {}
        for line in f:lines() do
          lines[#lines + 1] = line
        end
        f:close()
      end
    end
    file_lines[path] = lines
  end
  return file_lines[path] or nil
end

local function function_source(fn)
  local info = debug.getinfo(fn, "S")
  if info.what == "Lua" and info.source:sub(1, 1) == "@" then
    local lines = lines_of(info.source:sub(2))
    if not lines and (info.source:match("^@lua/") or info.source:match("^@stdlib/")) then
      local module = info.source:match("^@%w+/(.-)%.lua$"):gsub("/init$", ""):gsub("/", ".")
      local text = require("cdp.host").source(module)
      if text then
        lines = {}
        for line in (text .. "\n"):gmatch("(.-)\r?\n") do
          lines[#lines + 1] = line
        end
      end
    end
    if lines and lines[info.linedefined] then
      return table.concat(lines, "\n", info.linedefined, math.min(info.lastlinedefined, #lines))
    end
  end
  return string.dump(fn, true)
end

-- The cdp.* modules SOURCE requires, and those they require, by name: a stage's
-- behaviour is its module and the library code it calls (cdp.release,
-- cdp.changelog, ...), so all of it goes into its key.
local function required_sources(module, text)
  local host = require "cdp.host"
  local seen, order = { [module] = true }, {}
  local function scan(source)
    for name in source:gmatch("require%s*%(?%s*[\"']([%w_.]+)[\"']") do
      if not seen[name] and name:match("^cdp%.") then
        seen[name] = true
        local sub = host.source(name)
        if sub then -- C modules have no source: their behaviour is the binary's
          order[#order + 1] = name
          scan(sub)
        end
      end
    end
  end
  scan(text)
  table.sort(order)
  local parts = {}
  for _, name in ipairs(order) do
    parts[#parts + 1] = "-- " .. name .. "\n" .. host.source(name)
  end
  return table.concat(parts, "\n")
end

-- A deterministic text for VALUE: a policy built by conventional{...} is a closure,
-- so its fingerprint is its source and its upvalues (the options it was given).
-- Modules among them are named, not walked; C functions are "builtin".
function pipeline.fingerprint(value)
  local modules = {}
  for name, m in pairs(package.loaded) do
    if type(m) == "table" or type(m) == "function" then
      modules[m] = name
    end
  end
  local seen = {}
  local function fp(v, depth)
    local t = type(v)
    if modules[v] then
      return "module " .. modules[v]
    elseif t == "table" then
      if seen[v] or depth > 20 then
        return "<cycle>"
      end
      seen[v] = true
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      local parts = {}
      for _, k in ipairs(keys) do
        parts[#parts + 1] = tostring(k) .. "=" .. fp(v[k], depth + 1)
      end
      seen[v] = nil
      return "{" .. table.concat(parts, ",") .. "}"
    elseif t == "function" then
      if debug.getinfo(v, "S").what == "C" then
        return "builtin"
      end
      if seen[v] or depth > 20 then
        return "<cycle>"
      end
      seen[v] = true
      local parts = { function_source(v) }
      for i = 1, math.huge do
        local name, up = debug.getupvalue(v, i)
        if not name then break end
        if name ~= "_ENV" then
          parts[#parts + 1] = name .. "=" .. fp(up, depth + 1)
        end
      end
      seen[v] = nil
      return table.concat(parts, "\n")
    end
    return t .. ":" .. tostring(v)
  end
  return fp(value, 0)
end

-- The code of the Lua module NAME and of the cdp.* modules it requires (by name), or
-- nil when there is no such module: what a setting declared `module = true` (a changelog
-- template) adds to the key of the stages that read it.
function pipeline.module_code(name)
  local text = require("cdp.host").source(name)
  if not text then
    return nil
  end
  return text .. "\n" .. required_sources(name, text)
end

function pipeline.code(stage)
  if stage.module then
    local text = require("cdp.host").source(stage.module)
    if text then
      return text .. "\n" .. required_sources(stage.module, text)
    end
  end
  local def = stage.definition
  local keys = {}
  for k in pairs(def) do
    keys[#keys + 1] = tostring(k)
  end
  table.sort(keys)
  local parts = {}
  local function add(key, v)
    local t = type(v)
    if t == "function" then
      parts[#parts + 1] = key .. "=" .. function_source(v)
    elseif t == "table" then
      local sub = {}
      for k in pairs(v) do
        sub[#sub + 1] = k
      end
      table.sort(sub, function(a, b) return tostring(a) < tostring(b) end)
      for _, k in ipairs(sub) do
        add(key .. "." .. tostring(k), v[k])
      end
    else
      parts[#parts + 1] = key .. "=" .. tostring(v)
    end
  end
  for _, k in ipairs(keys) do
    add(k, def[k])
  end
  return table.concat(parts, "\n")
end

-- Called by cdp.pipeline{...} in a script: the caller's file:line is where
-- errors point.
--
-- `return cdp.pipeline{...}` is a tail call, which leaves no frame of the
-- script to ask for its line. Then the script is arg[0] (cdp sets it for the
-- script it runs) and the line is found in its text: the line that names an
-- unknown stage, or the line of the cdp.pipeline call.
local function script_line(file, needle)
  local lines = lines_of(file)
  if not lines then
    return nil
  end
  for i, line in ipairs(lines) do
    if line:find(needle, 1, true) then
      return i
    end
  end
  return nil
end

setmetatable(pipeline, {
  __call = function(_, spec)
    local info = debug.getinfo(2, "Sl")
    if debug.getinfo(1, "t").istailcall or not info or info.what == "C" then
      local file = type(_G.arg) == "table" and type(_G.arg[0]) == "string" and _G.arg[0] or nil
      if not file then
        return pipeline.new(spec, "?", nil)
      end
      local where = ("%s:%d"):format(file, script_line(file, "pipeline") or 0)
      -- point at the line that names a stage we do not know, if that is the problem
      local ok, result = pcall(pipeline.new, spec, where, file)
      if ok then
        return result
      end
      local name = tostring(result):match("unknown stage '([^']*)'")
      local phase = tostring(result):match(": bad phase ")
      local line = name and (script_line(file, '"' .. name .. '"') or script_line(file, "'" .. name .. "'"))
        or phase and script_line(file, "phase")
      if line and tostring(result):sub(1, #where) == where then
        error(("%s:%d%s"):format(file, line, tostring(result):sub(#where + 1)), 0)
      end
      error(result, 0)
    end
    local file = info.source:sub(1, 1) == "@" and info.source:sub(2) or nil
    return pipeline.new(spec, position(info), file)
  end,
})

pipeline.position = position

return pipeline
