-- Pipeline settings: declared once, by the stage that reads them, and given values by
-- the pipeline script, then CDP_<KEY> environment variables, then `--set key=value`
-- (each later source wins). Every value remembers where it came from, so `cdp config`
-- can say why it is what it is, and every declaration carries a type, a default and a
-- line of documentation, so `cdp help settings` and the README are made from it.
--
--   declaration = { type = "string" | "number" | "boolean" | "list" | "table" | "secret"
--                          | { "string", "table" },      -- one of several
--                   default = ..., doc = "one line",
--                   env = "GITHUB_TOKEN",                 -- secrets: where the value is read
--                   items = "string" | "command",         -- lists: what each item is
--                   choices = { "a", "b" },                -- strings: the values allowed
--                   module = true }                        -- strings: a Lua module's name,
--                                                          -- whose code is part of stage keys
--
-- A secret is read from its environment variable only (never CDP_<KEY>, never --set,
-- which would show it in /proc/PID/cmdline) and is never written anywhere: stage keys
-- hash its name, the journal and `cdp config` show ***.
local settings = {}

local TYPES = { string = true, number = true, boolean = true, list = true, table = true, secret = true }

---------------------------------------------------------------------------
-- Markers a pipeline script writes in its `settings` table

local Secret = { __name = "cdp.Secret" }
Secret.__tostring = function(s)
  return ("secret from $%s"):format(s.env)
end

-- A secret read from the environment variable ENV: as a script's value for a declared
-- secret it names another variable to read; for a name no stage declares, it declares one.
-- OPTS.default: a value used when ENV is unset (rarely wise for real secrets).
function settings.secret(env, opts)
  if type(env) ~= "string" or not env:match("^[%a_][%w_]*$") then
    error("settings.secret: expected the name of an environment variable", 2)
  end
  return setmetatable({ env = env, default = opts and opts.default }, Secret)
end

function settings.is_secret_marker(v)
  return getmetatable(v) == Secret
end

local Declared = { __name = "cdp.Setting" }

-- A setting a script declares for its own stages: cdp.pipeline.setting{ type =, default =, doc = }.
function settings.setting(spec)
  if type(spec) ~= "table" then
    error("cdp.pipeline.setting expects a table { type =, default =, doc = }", 2)
  end
  return setmetatable({ spec = spec }, Declared)
end

function settings.is_declaration_marker(v)
  return getmetatable(v) == Declared
end

---------------------------------------------------------------------------
-- Names

-- Names that are secret by their look alone: they are redacted wherever they appear.
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

-- Variables in the CDP_ namespace that are not settings: the host's own, and the
-- ones cdp's own test suite uses. Anything else named CDP_* must be a setting.
settings.HOST_ENV = {
  CDP_LUA_PATH = "directories searched for Lua modules before the embedded copy",
  CDP_NO_LOCAL_LUA = "1: never load the repository's .cdp/lua/ overrides",
  CDP_RUN = "set by cdp in every command a run's stages start: that run's id",
  CDP_DEBUG = "1: tracebacks for every error, not only for errors in scripts",
  CDP_HISTORY = "the REPL's history file",
  CDP_RUN = "cdp stage: the run's id when --run is not given (the workflows cdp export writes set it)",
  CDP_SERVE_SECRET = "cdp serve: the webhook secret deliveries are signed with (never passed to the runs)",
  CDP_SOURCE_DIR = "cdp's own test suite: the checkout under test",
  CDP_CORPUS = "cdp's own test suite: the real-world manifests",
  CDP_REQUIRE_CORPUS = "cdp's own test suite: 1 makes a missing corpus a failure",
  CDP_FUZZ_SECONDS = "cdp's own test suite: how long .ci/run fuzzes",
  CDP_TEST_PAUSE = "cdp's own kill tests: the point where cdp pauses (src/test_point.c)",
  CDP_TEST_PAUSE_FILE = "cdp's own kill tests: the file cdp writes its pid to when it pauses",
}

-- Optimal string alignment distance, for "did you mean".
local function distance(a, b)
  local la, lb = #a, #b
  local d = {}
  for i = 0, la do
    d[i] = { [0] = i }
  end
  for j = 0, lb do
    d[0][j] = j
  end
  for i = 1, la do
    for j = 1, lb do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[la][lb]
end

-- The candidate nearest NAME, or nil when none is near enough to be a typo of it.
function settings.nearest(name, candidates)
  local best, best_d
  for _, c in ipairs(candidates) do
    local d = distance(name:lower(), c:lower())
    if d < (best_d or math.huge) or (d == best_d and c < best) then
      best, best_d = c, d
    end
  end
  if best and best_d <= math.max(2, #name // 3) then
    return best
  end
  return nil
end

local sorted_keys = require("cdp.tables").sorted_keys

local function unknown(name, decls, where)
  local near = settings.nearest(name, sorted_keys(decls))
  return ("unknown setting '%s' (%s)%s"):format(name, where,
    near and ("; did you mean '%s'?"):format(near) or "; `cdp help settings` lists them")
end

---------------------------------------------------------------------------
-- Declarations

local function type_list(t)
  if type(t) == "table" then
    return t
  end
  return { t }
end

local function type_text(decl)
  local list = type_list(decl.type)
  local out = table.concat(list, " or ")
  if decl.choices then
    out = ("one of %s"):format(table.concat(decl.choices, ", "))
  end
  return out
end
settings.type_text = type_text

local function infer_type(value)
  local t = type(value)
  if t == "table" then
    return #value > 0 and "list" or (next(value) == nil and "list" or "table")
  end
  return t
end

-- Check a declaration of NAME (raising with WHERE when it is malformed) and return it
-- normalised: { name, type, default, doc, env, items, choices }.
function settings.declare(name, spec, where)
  local function fail(fmt, ...)
    error(("%s: setting '%s': " .. fmt):format(where or "?", name, ...), 0)
  end
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    error(("%s: a setting's name is letters, digits and '_' (got %s)"):format(where or "?", tostring(name)), 0)
  end
  if type(spec) ~= "table" then
    fail("a declaration is a table { type =, default =, doc = }, got %s", type(spec))
  end
  local decl = { name = name, doc = spec.doc, default = spec.default, env = spec.env, items = spec.items,
    choices = spec.choices, module = spec.module }
  decl.type = spec.type or (spec.env and "secret") or (spec.default ~= nil and infer_type(spec.default)) or "string"
  for _, t in ipairs(type_list(decl.type)) do
    if not TYPES[t] then
      fail("unknown type '%s' (string, number, boolean, list, table or secret)", tostring(t))
    end
  end
  if decl.type == "secret" then
    if type(decl.env) ~= "string" or not decl.env:match("^[%a_][%w_]*$") then
      fail("a secret names the environment variable it is read from (env = \"NAME\")")
    end
    if decl.default ~= nil then
      fail("a secret has no default")
    end
  elseif decl.env ~= nil then
    fail("only secrets name an environment variable")
  end
  if decl.items ~= nil and decl.items ~= "string" and decl.items ~= "command" then
    fail("items is \"string\" or \"command\"")
  end
  if decl.module ~= nil and (decl.module ~= true or decl.type ~= "string") then
    fail("module = true is for a string setting that names a Lua module")
  end
  if decl.doc ~= nil and type(decl.doc) ~= "string" then
    fail("doc is one line of text")
  end
  if decl.default ~= nil then
    local ok, err = settings.check_value(decl, decl.default)
    if not ok then
      fail("its default %s", err)
    end
  end
  return decl
end

-- Does VALUE fit DECL? Returns true, or nil and what is wrong.
function settings.check_value(decl, value)
  local function fits(t)
    if t == "secret" then
      return type(value) == "string"
    elseif t == "list" then
      if type(value) ~= "table" or (next(value) ~= nil and #value == 0) then
        return false
      end
      for _, item in ipairs(value) do
        if decl.items == "command" then
          if type(item) == "table" then
            for _, word in ipairs(item) do
              if type(word) ~= "string" then
                return false
              end
            end
          elseif type(item) ~= "string" then
            return false
          end
        elseif type(item) ~= "string" then
          return false
        end
      end
      return true
    elseif t == "table" then
      return type(value) == "table"
    end
    return type(value) == t
  end
  for _, t in ipairs(type_list(decl.type)) do
    if fits(t) then
      if decl.choices and type(value) == "string" then
        for _, c in ipairs(decl.choices) do
          if c == value then
            return true
          end
        end
        return nil, ("must be %s, not '%s'"):format(type_text(decl), value)
      end
      return true
    end
  end
  local got = type(value)
  if got == "table" then
    got = infer_type(value)
  end
  return nil, ("must be %s%s, not a %s"):format(type_text(decl),
    decl.items == "command" and " (of commands)" or "", got)
end

-- Shell-like words of a command line: spaces separate, quotes group, \ escapes.
-- No expansion of any kind: a command runs from its argument vector, never a shell.
function settings.split_command(text)
  local words, word, quote, i = {}, nil, nil, 1
  while i <= #text do
    local c = text:sub(i, i)
    if quote then
      if c == quote then
        quote = nil
      elseif c == "\\" and quote == '"' and i < #text then
        i = i + 1
        word = word .. text:sub(i, i)
      else
        word = word .. c
      end
    elseif c == "'" or c == '"' then
      quote, word = c, word or ""
    elseif c == "\\" and i < #text then
      i = i + 1
      word = (word or "") .. text:sub(i, i)
    elseif c:match("%s") then
      if word then
        words[#words + 1], word = word, nil
      end
    else
      word = (word or "") .. c
    end
    i = i + 1
  end
  if quote then
    return nil, ("unclosed %s quote in '%s'"):format(quote, text)
  end
  if word then
    words[#words + 1] = word
  end
  return words
end

-- Turn TEXT (from the environment or --set) into a value of DECL's type.
local function parse_text(decl, text, source)
  local function bad(expected)
    return nil, ("setting '%s' from %s: expected %s, got '%s'"):format(decl.name, source, expected, text)
  end
  local types = type_list(decl.type)
  local json = require "cdp.json"
  for _, t in ipairs(types) do
    if t == "table" and text:match("^%s*{") then
      local v, err = json.decode(text)
      if type(v) ~= "table" then
        return nil, ("setting '%s' from %s: a table is given as a JSON object: %s"):format(decl.name, source,
          tostring(err or "not an object"))
      end
      return v
    end
  end
  local t = types[1]
  if #types > 1 then
    for _, x in ipairs(types) do
      if x ~= "table" then
        t = x
        break
      end
    end
  end
  if t == "number" then
    local n = tonumber(text)
    if not n then
      return bad("a number")
    end
    return n
  elseif t == "boolean" then
    local lower = text:lower()
    if lower == "true" or lower == "1" or lower == "yes" or lower == "on" then
      return true
    elseif lower == "false" or lower == "0" or lower == "no" or lower == "off" or lower == "" then
      return false
    end
    return bad("true or false")
  elseif t == "list" then
    local list = {}
    if text:match("^%s*%[") then
      local v, err = json.decode(text)
      if type(v) ~= "table" then
        return nil, ("setting '%s' from %s: a list is `a,b,c` or a JSON array: %s"):format(decl.name, source,
          tostring(err or "not an array"))
      end
      list = v
    else
      for item in (text .. ","):gmatch("([^,]*),") do
        item = item:match("^%s*(.-)%s*$")
        if item ~= "" then
          list[#list + 1] = item
        end
      end
    end
    local ok, err = settings.check_value(decl, list)
    if not ok then
      return nil, ("setting '%s' from %s: %s"):format(decl.name, source, err)
    end
    return list
  elseif t == "table" then
    return bad("a JSON object")
  end
  if decl.choices then
    local ok, err = settings.check_value(decl, text)
    if not ok then
      return nil, ("setting '%s' from %s: %s"):format(decl.name, source, err)
    end
  end
  return text
end
settings.parse_text = parse_text

-- A list of commands as argument vectors: strings are split into words.
function settings.commands(list)
  local out = {}
  for i, item in ipairs(list or {}) do
    if type(item) == "string" then
      out[i] = assert(settings.split_command(item))
    else
      out[i] = item
    end
  end
  return out
end

---------------------------------------------------------------------------
-- A pipeline's declarations and the script's values

local function same_declaration(a, b)
  if a == b then
    return true
  end
  local json = require "cdp.json"
  local function text(d)
    return json.encode { type = d.type, default = d.default, env = d.env, items = d.items, choices = d.choices,
      module = d.module }
  end
  return text(a) == text(b)
end

-- Collect the declarations of STAGES (each { name, declares = {[name] = decl} }) and of
-- the script's SCRIPT table (values, cdp.pipeline.setting{} and secret markers).
-- Returns declarations { [name] = decl } and the script's values { [name] = value }.
-- Raises "WHERE: ..." for a conflict, an unknown name or a value of the wrong type: a
-- mistake in the script is reported before any stage runs.
function settings.collect(stages, script, where)
  local decls, owner = {}, {}
  for _, stage in ipairs(stages) do
    for name, decl in pairs(stage.declares or {}) do
      if decls[name] and not same_declaration(decls[name], decl) then
        error(("%s: setting '%s' is declared by stages %s and %s with different types or defaults")
          :format(where, name, owner[name], stage.name), 0)
      end
      decls[name], owner[name] = decls[name] or decl, owner[name] or stage.name
    end
  end
  script = script or {}
  if type(script) ~= "table" then
    error(("%s: cdp.pipeline: settings must be a table"):format(where), 0)
  end
  local values = {}
  for _, name in ipairs(sorted_keys(script)) do
    local v = script[name]
    if type(name) ~= "string" then
      error(("%s: settings: keys must be names, got %s"):format(where, tostring(name)), 0)
    end
    if settings.is_declaration_marker(v) then
      if decls[name] then
        error(("%s: setting '%s' is declared by stage %s already; give it a value instead")
          :format(where, name, owner[name]), 0)
      end
      decls[name] = settings.declare(name, v.spec, where)
      owner[name] = "the script"
    elseif settings.is_secret_marker(v) then
      local d = decls[name]
      if d and d.type ~= "secret" then
        error(("%s: setting '%s' is not a secret (it is %s)"):format(where, name, type_text(d)), 0)
      end
      decls[name] = { name = name, type = "secret", env = v.env, default_secret = v.default,
        doc = d and d.doc or "a secret of the script's own" }
      owner[name] = owner[name] or "the script"
    else
      local d = decls[name]
      if not d then
        error(("%s: %s"):format(where, unknown(name, decls, "in the script's settings")), 0)
      end
      if d.type == "secret" then
        error(("%s: setting '%s' is a secret: it is read from the environment variable %s, not written in the script (cdp.pipeline.secret(\"%s\") reads another variable)")
          :format(where, name, d.env, d.env), 0)
      end
      local ok, err = settings.check_value(d, v)
      if not ok then
        error(("%s: setting '%s' in the script %s"):format(where, name, err), 0)
      end
      values[name] = v
    end
  end
  return decls, values, owner
end

---------------------------------------------------------------------------
-- Resolution

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

local function copy(v)
  if type(v) ~= "table" then
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    out[k] = copy(x)
  end
  return out
end

-- The effective settings.
--   decls:  { [name] = declaration } (settings.collect)
--   script: { [name] = value } the script gives
--   opts.getenv(name) -> string|nil; opts.take_secret(name) -> string|nil (reads a secret
--     and takes it out of the environment; default getenv); opts.environ: the names of every
--     environment variable (for unknown CDP_* names); opts.sets: {{key=, value=}} from --set;
--     opts.reserved: more CDP_* names that are not settings (e.g. secrets of alert sinks);
--     opts.known: { [name] = true } settings that other stages cdp knows declare (a CDP_*
--     variable for one of them is not this pipeline's, and not a typo either).
-- Returns { [key] = {value=, source=, secret=bool, env=} }, or nil and a message naming the
-- setting, the source and what was expected.
function settings.resolve(decls, script, opts)
  opts = opts or {}
  local getenv = opts.getenv or os.getenv
  local take = opts.take_secret or getenv
  local out = {}
  local env_of = {}
  for name, d in pairs(decls) do
    env_of[settings.env_name(name)] = name
  end
  for _, name in ipairs(sorted_keys(decls)) do
    local d = decls[name]
    local entry = { secret = d.type == "secret" or settings.looks_secret(name) }
    if d.type == "secret" then
      entry.env = d.env
      local v = take(d.env)
      if v ~= nil and v ~= "" then
        entry.value, entry.source = v, "env " .. d.env
      elseif d.default_secret ~= nil then
        entry.value, entry.source = d.default_secret, "script"
      else
        entry.source = "unset (env " .. d.env .. ")"
      end
    else
      entry.value, entry.source = copy(d.default), "default"
      if script and script[name] ~= nil then
        entry.value, entry.source = copy(script[name]), "script"
      end
      local env = settings.env_name(name)
      local text = getenv(env)
      if text ~= nil then
        local value, err = parse_text(d, text, "env " .. env)
        if err then
          return nil, err
        end
        entry.value, entry.source = value, "env " .. env
      end
    end
    out[name] = entry
  end
  -- CDP_* variables that are no setting: a typo would otherwise be silently ignored.
  local secret_envs = {}
  for _, d in pairs(decls) do
    if d.env then
      secret_envs[d.env] = true
    end
  end
  local reserved = opts.reserved or {}
  for _, var in ipairs(opts.environ or {}) do
    if var:match("^CDP_") and not settings.HOST_ENV[var] and not secret_envs[var] and not reserved[var] then
      local name = env_of[var]
      if name and decls[name].type == "secret" then
        return nil, ("environment variable %s: '%s' is a secret and is read from %s only")
          :format(var, name, decls[name].env)
      elseif not name and not (opts.known and opts.known[var:sub(5):lower()]) then
        -- A setting of some other pipeline's stages (CI environments set them for all
        -- pipelines) is left alone; a name no stage cdp knows declares is a typo.
        local guess = settings.nearest(var:sub(5):lower(), sorted_keys(decls))
        return nil, ("environment variable %s is not a setting%s"):format(var,
          guess and ("; did you mean %s (%s)?"):format(settings.env_name(guess), guess)
            or " (`cdp help settings` lists them; CDP_* names belong to cdp)")
      end
    end
  end
  for _, set in ipairs(opts.sets or {}) do
    local d = decls[set.key]
    if not d then
      return nil, unknown(set.key, decls, "--set")
    end
    if d.type == "secret" then
      return nil, ("setting '%s' is a secret and cannot be given with --set (it would show in the process list); set the environment variable %s"):format(
        set.key, d.env)
    end
    local value, err = parse_text(d, set.value, "--set")
    if err then
      return nil, err
    end
    out[set.key].value, out[set.key].source = value, "--set"
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
    if entry.secret and type(entry.value) == "string" and entry.value ~= "" then
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

-- URL TEXT with the password of its user part masked: a credential in a URL is a secret.
function settings.mask_url(text)
  return (text:gsub("^(%a[%w+.-]*://)([^/@%s]+)@", function(scheme, userinfo)
    local user = userinfo:match("^([^:]*):") or userinfo
    if userinfo:find(":", 1, true) then
      return scheme .. user .. ":***@"
    end
    return scheme .. "***@"
  end))
end

local function shown_value(v)
  if type(v) == "string" then
    return ("%q"):format(settings.mask_url(v))
  elseif type(v) == "table" then
    return require("cdp.json").encode(v)
  end
  return tostring(v)
end
settings.shown_value = shown_value

-- Sorted lines for `cdp config`: key = value  (source)
function settings.describe(effective)
  local rows = {}
  for _, key in ipairs(sorted_keys(effective)) do
    local e = effective[key]
    local shown
    if e.secret then
      shown = e.value == nil and "(unset)" or "***"
    else
      shown = shown_value(e.value)
    end
    rows[#rows + 1] = { key = key, value = shown, source = e.source, secret = e.secret }
  end
  return rows
end

---------------------------------------------------------------------------
-- The reference

-- Rows for `cdp help settings`: every declaration of STAGES (normalised pipeline stages or
-- stage modules with `declares`), with the stages that read it, sorted by name.
function settings.reference(stages)
  local rows, by_name = {}, {}
  for _, stage in ipairs(stages) do
    for name, decl in pairs(stage.declares or {}) do
      local row = by_name[name]
      if not row then
        row = { name = name, decl = decl, readers = {} }
        by_name[name] = row
        rows[#rows + 1] = row
      end
      row.readers[#row.readers + 1] = stage.name
    end
  end
  table.sort(rows, function(a, b) return a.name < b.name end)
  for _, row in ipairs(rows) do
    local d = row.decl
    row.type = d.type == "secret" and "secret" or type_text(d)
    if d.items == "command" then
      row.type = "list of commands"
    end
    if d.type == "secret" then
      row.default = "env " .. d.env
      row.from = d.env
    else
      row.default = d.default == nil and "(none)" or shown_value(d.default)
      row.from = settings.env_name(row.name)
    end
    row.doc = d.doc or ""
  end
  return rows
end

return settings
