-- JSON: cjson decodes; encoding here is deterministic, for everything that is
-- written to a file or compared (journals, plans, hashes of stage inputs).
--
-- Keys are sorted bytewise. A table is an array when its keys are exactly
-- 1..n; an empty table is an array unless marked with json.object(), because
-- in cdp's outputs empty lists (no commits, no reasons) far outnumber empty
-- maps. json.null stands for null; NaN and infinities are refused.
--
-- json.encode runs in C (cdp.json.native); json.reference_encode below is its
-- definition, in Lua, and the specs hold the two to the same bytes. The C one
-- exists for speed: a large plan is megabytes of small tables.
local cjson = require "cjson"
local native = require "cdp.json.native"

local json = {}

json.null = cjson.null
local object_mt = { __name = "cdp.json.object" }
local array_mt = { __name = "cdp.json.array" }

-- Mark T (default: a new table) as a JSON object even when it is empty.
function json.object(t)
  return setmetatable(t or {}, object_mt)
end

-- Mark T (default: a new table) as a JSON array.
function json.array(t)
  return setmetatable(t or {}, array_mt)
end

function json.decode(text)
  local ok, value = pcall(cjson.decode, text)
  if not ok then
    return nil, (value:gsub("^.-: ", "", 1)), "EJSON"
  end
  return value
end

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function array_length(t)
  local mt = getmetatable(t)
  if mt == object_mt then
    return nil
  end
  local n = #t
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then
      return nil
    end
    count = count + 1
  end
  if count ~= n then
    return nil
  end
  return n
end

local encode_value

local function encode_table(t, out, indent, depth, seen)
  if seen[t] then
    error("json: cannot encode a table that contains itself", 0)
  end
  seen[t] = true
  local nl, pad, inner = "", "", ""
  if indent then
    nl = "\n"
    pad = indent:rep(depth)
    inner = indent:rep(depth + 1)
  end
  local n = array_length(t)
  if n then
    if n == 0 then
      out[#out + 1] = "[]"
    else
      out[#out + 1] = "[" .. nl
      for i = 1, n do
        out[#out + 1] = inner
        encode_value(t[i], out, indent, depth + 1, seen)
        out[#out + 1] = (i < n and "," or "") .. nl
      end
      out[#out + 1] = pad .. "]"
    end
  else
    local keys = {}
    for k in pairs(t) do
      local kt = type(k)
      if kt == "number" then
        k = math.type(k) == "integer" and ("%d"):format(k) or tostring(k)
      elseif kt ~= "string" then
        error("json: cannot encode a key of type " .. kt, 0)
      end
      keys[#keys + 1] = k
    end
    table.sort(keys)
    if #keys == 0 then
      out[#out + 1] = "{}"
    else
      out[#out + 1] = "{" .. nl
      local sep = indent and ": " or ":"
      for i, k in ipairs(keys) do
        local v = t[k]
        if v == nil then
          v = t[tonumber(k)]
        end
        out[#out + 1] = inner .. quote(k) .. sep
        encode_value(v, out, indent, depth + 1, seen)
        out[#out + 1] = (i < #keys and "," or "") .. nl
      end
      out[#out + 1] = pad .. "}"
    end
  end
  seen[t] = nil
end

function encode_value(v, out, indent, depth, seen)
  local vt = type(v)
  if vt == "string" then
    out[#out + 1] = quote(v)
  elseif vt == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      error("json: cannot encode " .. tostring(v), 0)
    end
    -- JSON has one number type and cjson decodes every number as a float, so
    -- integral floats are written as integers: encode(decode(s)) == s.
    local int = math.tointeger(v)
    if int and math.abs(v) < 2 ^ 53 then
      out[#out + 1] = ("%d"):format(int)
    else
      local s
      for digits = 15, 17 do -- the shortest text that reads back as the same float
        s = ("%." .. digits .. "g"):format(v)
        if tonumber(s) == v then
          break
        end
      end
      out[#out + 1] = s
    end
  elseif vt == "boolean" then
    out[#out + 1] = tostring(v)
  elseif v == nil or v == cjson.null then
    out[#out + 1] = "null"
  elseif vt == "table" then
    encode_table(v, out, indent, depth, seen)
  else
    error("json: cannot encode a value of type " .. vt, 0)
  end
end

-- Encode VALUE with sorted keys. OPTS.indent: a string (e.g. "  ") for
-- pretty output with one value per line.
function json.encode(value, opts)
  return native.encode(value, opts and opts.indent, object_mt)
end

-- What json.encode does, written in Lua: the definition the C encoder keeps to.
function json.reference_encode(value, opts)
  local out = {}
  encode_value(value, out, opts and opts.indent, 0, {})
  return table.concat(out)
end

return json
