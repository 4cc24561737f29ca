-- Pipeline settings: defaults in the script, then CDP_<KEY> environment
-- variables, then `--set key=value` — each later source wins. Every value
-- remembers where it came from, so `cdp config` can say why it is what it is.
--
-- A setting is secret when the script declares it with settings.secret(ENV)
-- (its value is read from that environment variable) or when its name looks
-- like one (token, password, secret). Secret values are never written
-- anywhere: stage keys hash their names, the journal and `cdp config` show ***.
local settings = {}

local Secret = { __name = "cdp.Secret" }
Secret.__tostring = function(s)
  return ("secret from $%s"):format(s.env)
end

-- A secret setting whose value comes from the environment variable ENV.
-- OPTS.default: a value used when ENV is unset (rarely wise for real secrets).
function settings.secret(env, opts)
  if type(env) ~= "string" or env == "" then
    error("settings.secret: expected the name of an environment variable", 2)
  end
  return setmetatable({ env = env, default = opts and opts.default }, Secret)
end

function settings.is_secret_marker(v)
  return getmetatable(v) == Secret
end

-- Names that are secret by their look alone.
local SECRET_NAME = { "token", "password", "passwd", "secret", "api_key", "apikey" }

function settings.looks_secret(name)
  local lower = tostring(name):lower()
  for _, word in ipairs(SECRET_NAME) do
    if lower:find(word, 1, true) then
      return true
    end
  end
  return false
end

-- CDP_<KEY>: upper case, every run of other characters an underscore.
function settings.env_name(key)
  return "CDP_" .. key:upper():gsub("[^%w]+", "_")
end

-- Turn TEXT (from the environment or --set) into the type of DEFAULT.
local function coerce(key, text, default, source)
  local kind = type(default)
  if kind == "number" then
    local n = tonumber(text)
    if not n then
      return nil, ("setting '%s' from %s: expected a number, got '%s'"):format(key, source, text)
    end
    return n
  elseif kind == "boolean" then
    local lower = text:lower()
    if lower == "true" or lower == "1" or lower == "yes" or lower == "on" then
      return true
    elseif lower == "false" or lower == "0" or lower == "no" or lower == "off" or lower == "" then
      return false
    end
    return nil, ("setting '%s' from %s: expected true or false, got '%s'"):format(key, source, text)
  end
  return text
end

-- Parse "key=value" strings (from --set) into an ordered list.
function settings.parse_sets(list)
  local out = {}
  for _, item in ipairs(list or {}) do
    local key, value = item:match("^([^=]+)=(.*)$")
    if not key then
      return nil, ("--set expects key=value, got '%s'"):format(item)
    end
    out[#out + 1] = { key = key, value = value }
  end
  return out
end

-- Resolve the effective settings.
--   declared: the script's `settings` table (may be nil)
--   getenv:   function(name) -> string|nil (the environment)
--   sets:     list of {key=, value=} from --set, in command-line order
-- Returns { [key] = {value=, source=, secret=bool, env=} }, or nil, message.
-- --set may introduce keys the script does not declare (they are strings).
function settings.resolve(declared, getenv, sets)
  declared = declared or {}
  local out = {}
  for key, default in pairs(declared) do
    if type(key) ~= "string" then
      return nil, ("settings: keys must be names, got %s"):format(tostring(key))
    end
    local entry = { secret = settings.looks_secret(key) }
    if settings.is_secret_marker(default) then
      entry.secret = true
      entry.env = default.env
      local v = getenv(default.env)
      if v ~= nil then
        entry.value, entry.source = v, "env " .. default.env
      elseif default.default ~= nil then
        entry.value, entry.source = default.default, "script"
      else
        entry.source = "unset (env " .. default.env .. ")"
      end
    else
      local t = type(default)
      if t ~= "string" and t ~= "number" and t ~= "boolean" then
        return nil, ("setting '%s': a default must be a string, number, boolean or cdp.pipeline.secret(ENV), got %s")
          :format(key, t)
      end
      entry.value, entry.source, entry.default = default, "script", default
    end
    local env = settings.env_name(key)
    local v = getenv(env)
    if v ~= nil then
      local value, err = coerce(key, v, entry.default, "env " .. env)
      if err then
        return nil, err
      end
      entry.value, entry.source = value, "env " .. env
    end
    out[key] = entry
  end
  for _, set in ipairs(sets or {}) do
    local entry = out[set.key] or { secret = settings.looks_secret(set.key) }
    local value, err = coerce(set.key, set.value, entry.default, "--set")
    if err then
      return nil, err
    end
    entry.value, entry.source = value, "--set"
    out[set.key] = entry
  end
  for _, entry in pairs(out) do
    entry.default = nil
  end
  return out
end

-- key -> value, what stages see as ctx.settings.
function settings.values(effective)
  local out = {}
  for key, entry in pairs(effective) do
    out[key] = entry.value
  end
  return out
end

-- The values of secret settings, for redaction.
function settings.secret_values(effective)
  local out = {}
  for _, entry in pairs(effective) do
    if entry.secret and type(entry.value) == "string" then
      out[#out + 1] = entry.value
    end
  end
  table.sort(out)
  return out
end

-- What may be recorded or hashed: secret values replaced by a mark that
-- names the secret (so renaming it changes a stage key, rotating it does not).
function settings.public(effective)
  local out = {}
  for key, entry in pairs(effective) do
    if entry.secret then
      out[key] = entry.value == nil and "(secret, unset)" or "(secret)"
    else
      out[key] = entry.value
    end
  end
  return out
end

-- Sorted lines for `cdp config`: key = value  (source)
function settings.describe(effective)
  local keys = {}
  for key in pairs(effective) do
    keys[#keys + 1] = key
  end
  table.sort(keys)
  local rows = {}
  for _, key in ipairs(keys) do
    local e = effective[key]
    local shown
    if e.secret then
      shown = e.value == nil and "(unset)" or "***"
    elseif type(e.value) == "string" then
      shown = ("%q"):format(e.value)
    else
      shown = tostring(e.value)
    end
    rows[#rows + 1] = { key = key, value = shown, source = e.source, secret = e.secret }
  end
  return rows
end

return settings
