-- Values as readable, Lua-like text, for the REPL and for debugging output.
--
-- The same value always gives the same text: keys are sorted, and no
-- addresses appear (functions show where they were defined, cycles name the
-- path of the table they point back to). Tables are read with next() and
-- rawget, so proxies with __index or __pairs are shown as they are stored,
-- and printing never loads modules or runs user code other than __tostring.
local pretty = {}

local DEFAULTS = { depth = 4, indent = "  ", width = 100 }

local KEYWORDS = {}
for word in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  KEYWORDS[word] = true
end

local function is_identifier(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil and not KEYWORDS[s]
end

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\a"] = "\\a", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ["\v"] = "\\v" }

-- Like %q, but on one line: "\n" rather than a backslash-newline.
local function quote(s)
  return '"' .. s:gsub('([%c"\\])(%d?)', function(c, digit)
    local esc = ESCAPES[c]
    if not esc then -- a numeric escape followed by a digit needs all three digits
      esc = (digit == "" and "\\%d" or "\\%03d"):format(c:byte())
    end
    return esc .. digit
  end) .. '"'
end

local function number(n)
  if math.type(n) == "integer" then
    return tostring(n)
  elseif n ~= n then
    return "0/0"
  elseif n == math.huge then
    return "1/0"
  elseif n == -math.huge then
    return "-1/0"
  end
  local s
  for digits = 14, 17 do -- the shortest text that reads back as the same float
    s = ("%." .. digits .. "g"):format(n)
    if tonumber(s) == n then
      break
    end
  end
  if not s:find("[%.eEn]") then
    s = s .. ".0" -- keep floats recognisable: 3.0, not 3
  end
  return s
end

local function func(f)
  local info = debug.getinfo(f, "S")
  if info.what == "C" then
    return "<function: builtin>"
  end
  return ("<function: %s:%d>"):format(info.short_src, info.linedefined)
end

-- The text of a value with a __tostring or __name, or nil.
local function by_metatable(v)
  local mt = getmetatable(v)
  if type(mt) ~= "table" then
    return nil
  end
  if rawget(mt, "__tostring") ~= nil then
    local ok, s = pcall(tostring, v)
    if ok and type(s) == "string" then
      return s
    end
    return ("<%s: __tostring failed: %s>"):format(type(v), tostring(s))
  end
  local name = rawget(mt, "__name")
  if type(name) == "string" and type(v) ~= "table" then
    return ("<%s>"):format(name)
  end
  return nil
end

local TYPE_ORDER = { number = 1, string = 2 }

local function key_less(a, b)
  local ta, tb = TYPE_ORDER[type(a)] or 3, TYPE_ORDER[type(b)] or 3
  if ta ~= tb then
    return ta < tb
  elseif ta < 3 then
    return a < b
  end
  local sa, sb = tostring(a), tostring(b)
  if sa ~= sb then
    return sa < sb
  end
  return type(a) < type(b)
end

-- The keys of T, sorted, and how many of them form the array part 1..n.
local function sorted_keys(t)
  local n = 0
  while rawget(t, n + 1) ~= nil do
    n = n + 1
  end
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, key_less)
  return n, keys
end

local function path_step(path, key)
  if is_identifier(key) then
    return path .. "." .. key
  elseif type(key) == "string" then
    return path .. "[" .. quote(key) .. "]"
  elseif type(key) == "number" then
    return path .. "[" .. number(key) .. "]"
  end
  return path .. "[" .. tostring(key) .. "]"
end

local format_value

-- Lay out ITEMS (strings) as one table: on one line if it fits, otherwise
-- one per line, or several short scalars per line for long arrays.
local function layout(items, scalars, level, col, opts)
  if #items == 0 then
    return "{}"
  end
  local flat = "{ " .. table.concat(items, ", ") .. " }"
  if col + #flat <= opts.width and not flat:find("\n", 1, true) then
    return flat
  end
  local pad = opts.indent:rep(level + 1)
  local lines = {}
  if scalars then
    local line = pad
    for i, item in ipairs(items) do
      local piece = item .. ","
      if line ~= pad and #line + 1 + #piece > opts.width then
        lines[#lines + 1] = line
        line = pad
      end
      line = (line == pad and pad or line .. " ") .. piece
      if i == #items then
        lines[#lines + 1] = line
      end
    end
  else
    for i, item in ipairs(items) do
      lines[i] = pad .. item .. ","
    end
  end
  return "{\n" .. table.concat(lines, "\n") .. "\n" .. opts.indent:rep(level) .. "}"
end

local function format_table(t, level, col, opts, ancestors, path)
  local shown = by_metatable(t)
  if shown then
    return shown
  end
  if ancestors[t] then
    return ("<cycle: %s>"):format(ancestors[t])
  end
  if next(t) == nil then
    return "{}"
  end
  if level >= opts.depth then
    return "{...}"
  end
  ancestors[t] = path
  local n, keys = sorted_keys(t)
  local items, scalars = {}, #keys == 0
  local inner = #opts.indent * (level + 1)
  for i = 1, n do
    local v = rawget(t, i)
    items[i] = format_value(v, level + 1, inner, opts, ancestors, path .. "[" .. i .. "]")
    if type(v) == "table" and not by_metatable(v) then
      scalars = false
    end
  end
  for _, k in ipairs(keys) do
    local label
    if is_identifier(k) then
      label = k .. " = "
    else
      label = "[" .. format_value(k, level + 1, inner + 1, opts, ancestors, path) .. "] = "
    end
    local v = rawget(t, k)
    items[#items + 1] = label .. format_value(v, level + 1, inner + #label, opts, ancestors,
      path_step(path, k))
  end
  ancestors[t] = nil
  return layout(items, scalars, level, col, opts)
end

function format_value(v, level, col, opts, ancestors, path)
  local kind = type(v)
  if kind == "string" then
    return quote(v)
  elseif kind == "number" then
    return number(v)
  elseif kind == "table" then
    return format_table(v, level, col, opts, ancestors, path)
  elseif kind == "nil" or kind == "boolean" then
    return tostring(v)
  end
  local shown = by_metatable(v)
  if shown then
    return shown
  elseif kind == "function" then
    return func(v)
  end
  return ("<%s>"):format(kind) -- userdata, thread
end

-- pretty.format(value, {depth = 4, indent = "  ", width = 100}) -> string
function pretty.format(value, opts)
  local o = {}
  for k, default in pairs(DEFAULTS) do
    o[k] = opts and opts[k] or default
  end
  return format_value(value, 0, 0, o, {}, "root")
end

-- pretty.print(...): each argument formatted, tab-separated like print.
function pretty.print(...)
  local n = select("#", ...)
  local out = {}
  for i = 1, n do
    out[i] = pretty.format((select(i, ...)))
  end
  io.stdout:write(table.concat(out, "\t"), "\n")
end

return pretty
