-- Writing YAML: enough for the CI files cdp export makes, and deterministic. Maps keep
-- the order they are written in (yaml.map{ "key", value, "key", value, ... }), because
-- a workflow reads best as name, on, jobs; strings are quoted whenever a plain scalar
-- could mean something else; text with newlines becomes a literal block.
local yaml = {}

local Map = { __name = "cdp.yaml.map" }

-- An ordered map from alternating keys and values.
function yaml.map(list)
  local keys, values = {}, {}
  for i = 1, #list, 2 do
    local k, v = list[i], list[i + 1]
    if v ~= nil then
      keys[#keys + 1] = k
      values[k] = v
    end
  end
  return setmetatable({ keys = keys, values = values }, Map)
end

function yaml.is_map(v)
  return getmetatable(v) == Map
end

-- Words YAML 1.1 readers (GitHub's among them) take for booleans or null.
local RESERVED = {}
for _, w in ipairs { "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~" } do
  RESERVED[w] = true
end

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r" }
    return named[c] or ("\\x%02x"):format(c:byte())
  end) .. '"'
end

local function scalar(v)
  local t = type(v)
  if t == "boolean" then
    return tostring(v)
  elseif t == "number" then
    return math.type(v) == "integer" and tostring(v) or ("%.17g"):format(v)
  end
  assert(t == "string", "yaml: cannot write a " .. t)
  -- plain only when nothing in it could be read as anything but this string
  if v ~= "" and v:match("^[%w_./@-][%w _./@()+-]*$") and not v:match("%s$") and not RESERVED[v:lower()]
    and not tonumber(v) then
    return v
  end
  return quote(v)
end

local function is_list(v)
  return type(v) == "table" and not yaml.is_map(v)
end

local function empty(v)
  return (yaml.is_map(v) and #v.keys == 0) or (is_list(v) and #v == 0)
end

local emit

-- "key: value" or "key:" followed by the nested block, at INDENT.
local function emit_pair(out, indent, key, v)
  local pad = (" "):rep(indent)
  local k = scalar(key)
  if empty(v) then
    out[#out + 1] = pad .. k .. (yaml.is_map(v) and ": {}" or ": []")
  elseif type(v) == "string" and v:find("\n", 1, true) then
    out[#out + 1] = pad .. k .. ": |" .. (v:sub(-1) == "\n" and "" or "-")
    for line in (v:sub(-1) == "\n" and v or v .. "\n"):gmatch("(.-)\n") do
      out[#out + 1] = line == "" and "" or (pad .. "  " .. line)
    end
  elseif type(v) == "table" then
    out[#out + 1] = pad .. k .. ":"
    emit(out, indent + 2, v)
  else
    out[#out + 1] = pad .. k .. ": " .. scalar(v)
  end
end

function emit(out, indent, v)
  local pad = (" "):rep(indent)
  if yaml.is_map(v) then
    for _, k in ipairs(v.keys) do
      emit_pair(out, indent, k, v.values[k])
    end
  elseif is_list(v) then
    for _, item in ipairs(v) do
      if yaml.is_map(item) and not empty(item) then
        -- the first pair on the dash's line, the rest under it
        local sub = {}
        emit(sub, indent + 2, item)
        sub[1] = pad .. "- " .. sub[1]:sub(indent + 3)
        for _, line in ipairs(sub) do
          out[#out + 1] = line
        end
      elseif type(item) == "table" and not empty(item) then
        out[#out + 1] = pad .. "-"
        emit(out, indent + 2, item)
      else
        out[#out + 1] = pad .. "- " .. (empty(item) and (yaml.is_map(item) and "{}" or "[]") or scalar(item))
      end
    end
  else
    out[#out + 1] = pad .. scalar(v)
  end
end

-- The YAML text of V (maps from yaml.map, lists as Lua arrays, strings, numbers,
-- booleans), with HEADER (lines of comment) first.
function yaml.encode(v, header)
  local out = {}
  for line in ((header or "") .. "\n"):gmatch("(.-)\n") do
    if line ~= "" then
      out[#out + 1] = "# " .. line
    end
  end
  emit(out, 0, v)
  return table.concat(out, "\n") .. "\n"
end

return yaml
