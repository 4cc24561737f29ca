-- JSON: cjson decodes; encoding here is deterministic, for everything that is
-- written to a file or compared (journals, plans, hashes of stage inputs).
--
-- Keys are sorted bytewise. A table is an array when its keys are exactly
-- 1..n; an empty table is an array unless marked with json.object(), because
-- in cdp's outputs empty lists (no commits, no reasons) far outnumber empty
-- maps. json.null stands for null; NaN and infinities are refused, and so is a
-- string that is not valid UTF-8 (the error names where it is): what cdp writes
-- and sends is UTF-8, checked here rather than by whoever reads it.
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

-- TEXT decoded; integral numbers (below 2^53) are Lua integers, so that 30 reads
-- back as 30 and not 30.0 wherever it is printed or joined into a string.
function json.decode(text)
  local ok, value = pcall(cjson.decode, text)
  if not ok then
    return nil, (value:gsub("^.-: ", "", 1)), "EJSON"
  end
  return native.integers(value)
end

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
-- Raised by quote for a string that is not UTF-8; json.encode then finds where it is.
local NOT_UTF8 = setmetatable({}, { __name = "cdp.json.not_utf8" })

local function quote(s)
  if not utf8.len(s) then
    error(NOT_UTF8, 0)
  end
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

-- S for an error message: its invalid bytes as \xHH (the message must be UTF-8
-- itself), at most 80 bytes of it.
local function shown(s)
  local parts, i = {}, 1
  while i <= #s do
    local _, bad = utf8.len(s, i)
    parts[#parts + 1] = s:sub(i, bad and bad - 1 or #s):gsub('[%c"\\]', function(c)
      return escapes[c] or ("\\u%04x"):format(c:byte())
    end)
    if not bad then
      break
    end
    parts[#parts + 1] = ("\\x%02X"):format(s:byte(bad))
    i = bad + 1
  end
  local text = table.concat(parts)
  if #text > 80 then
    text = text:sub(1, 77):gsub("[\192-\255][\128-\191]*$", "") .. "..."
  end
  return '"' .. text .. '"'
end

-- The message for the first string or key in V (keys in encoding order) that is not
-- UTF-8, PATH being where V is ("pulls[1].body").
local function not_utf8(v, path)
  if type(v) == "string" then
    local _, pos = utf8.len(v)
    if pos then
      return ("json: the string at %s is not valid UTF-8 (byte %d): %s"):format(path ~= "" and path or "the top",
        pos, shown(v))
    end
  elseif type(v) == "table" then
    local keys = {}
    for k in pairs(v) do
      keys[#keys + 1] = k
    end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do
      if type(k) == "string" and not utf8.len(k) then
        return ("json: a key is not valid UTF-8 (byte %d) in %s: %s"):format(select(2, utf8.len(k)),
          path ~= "" and path or "the top level", shown(k))
      end
      local where = math.type(k) == "integer" and ("%s[%d]"):format(path, k)
        or (path == "" and tostring(k) or (path .. "." .. tostring(k)))
      local msg = not_utf8(v[k], where)
      if msg then
        return msg
      end
    end
  end
end

-- Encode VALUE with sorted keys. OPTS.indent: a string (e.g. "  ") for
-- pretty output with one value per line.
function json.encode(value, opts)
  local out = native.encode(value, opts and opts.indent, object_mt)
  -- escapes are ASCII: the output is UTF-8 exactly when every string in VALUE is
  if not utf8.len(out) then
    error(not_utf8(value, ""), 0)
  end
  return out
end

-- What json.encode does, written in Lua: the definition the C encoder keeps to.
function json.reference_encode(value, opts)
  local out = {}
  local ok, err = pcall(encode_value, value, out, opts and opts.indent, 0, {})
  if not ok then
    if err == NOT_UTF8 then
      error(not_utf8(value, ""), 0)
    end
    error(err, 0)
  end
  return table.concat(out)
end

return json
