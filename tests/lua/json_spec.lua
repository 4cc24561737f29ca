local json = require "cdp.json"
local support_read = require("tests.lua.support").read

describe("cdp.json", function()
  it("sorts keys at every level so output is the same in every process", function()
    local value = { zeta = 1, alpha = { d = 1, c = 2, b = { z = true, a = false } }, mid = "x" }
    assert.are.equal('{"alpha":{"b":{"a":false,"z":true},"c":2,"d":1},"mid":"x","zeta":1}',
      json.encode(value))
  end)

  it("gives the same bytes for tables built in different orders", function()
    local a, b = {}, {}
    for i = 1, 200 do a["k" .. i] = i end
    for i = 200, 1, -1 do b["k" .. i] = i end
    assert.are.equal(json.encode(a), json.encode(b))
  end)

  it("tells arrays from objects, empty tables being arrays unless marked", function()
    assert.are.equal('[1,2,3]', json.encode({ 1, 2, 3 }))
    assert.are.equal('{"1":"a","3":"c"}', json.encode({ [1] = "a", [3] = "c" }))
    assert.are.equal('[]', json.encode({}))
    assert.are.equal('{}', json.encode(json.object()))
    assert.are.equal('{"commits":[],"outputs":{}}', json.encode({ commits = {}, outputs = json.object() }))
  end)

  it("escapes strings and keeps UTF-8 as is", function()
    assert.are.equal('"a\\"b\\\\c\\n\\t\\u0001é"', json.encode('a"b\\c\n\t\1é'))
  end)

  it("encodes numbers exactly", function()
    assert.are.equal('[1,-7,1.5,3,1e+300,0.1]', json.encode({ 1, -7, 1.5, 3.0, 1e300, 0.1 }))
    assert.are.equal(2 ^ 60, tonumber(json.encode(2 ^ 60)))
    assert.has_error(function() json.encode(0 / 0) end)
    assert.has_error(function() json.encode(math.huge) end)
  end)

  it("indents when asked", function()
    assert.are.equal('{\n  "a": [\n    1\n  ],\n  "b": {}\n}', json.encode({ a = { 1 }, b = json.object() }, { indent = "  " }))
  end)

  it("refuses cycles and values JSON cannot hold", function()
    local t = {}
    t.self = t
    assert.has_error(function() json.encode(t) end, "json: cannot encode a table that contains itself")
    assert.has_error(function() json.encode({ f = print }) end)
  end)

  it("round-trips through decode", function()
    local text = '{"a":[1,2,{"b":null}],"c":"d"}'
    local v = assert(json.decode(text))
    assert.are.equal(json.null, v.a[3].b)
    assert.are.equal(text, json.encode(v))
  end)

  it("decodes integral numbers as integers, at any depth, and others as floats", function()
    local v = assert(json.decode('{"n":30,"pr":{"number":12,"list":[1,2.5,-0,1e3,9007199254740993,1e300]}}'))
    assert.are.equal("30", tostring(v.n))
    assert.are.equal("/pulls/12", "/pulls/" .. v.pr.number)
    local list = v.pr.list
    assert.are.same({ "integer", "float", "integer", "integer", "float", "float" },
      { math.type(list[1]), math.type(list[2]), math.type(list[3]), math.type(list[4]), math.type(list[5]),
        math.type(list[6]) })
    assert.are.equal(1000, list[4])
    assert.are.equal("integer", math.type(json.decode("7")))
    assert.are.equal("a", json.decode('"a"'))
  end)

  it("returns nil, a message and EJSON for bad input", function()
    local v, msg, code = json.decode('{"a":')
    assert.is_nil(v)
    assert.are.equal("EJSON", code)
    assert.is_string(msg)
  end)
end)

-- json.encode is C; json.reference_encode is its definition in Lua. They must
-- agree byte for byte on every value, and raise the same errors.
describe("cdp.json.encode against its Lua definition", function()
  local function same(value, opts)
    local ok1, a = pcall(json.reference_encode, value, opts)
    local ok2, b = pcall(json.encode, value, opts)
    assert.are.equal(ok1, ok2, "one raised and the other did not: " .. tostring(a) .. " / " .. tostring(b))
    assert.are.equal(a, b)
    return a
  end

  it("on strings holding every byte", function()
    local bytes = {}
    for i = 0, 255 do
      bytes[#bytes + 1] = string.char(i)
    end
    local all = table.concat(bytes)
    same(all)
    same({ [all] = all, ["\0key"] = 1, ["key\0"] = 2, key = 3 })
    same({ "é", "\u{1F600}", "\xff\xfe", "tab\there", "" })
  end)

  it("on numbers at the edges", function()
    for _, v in ipairs { 0, -0.0, 1, -1, 2 ^ 53, 2 ^ 53 - 1, -(2 ^ 53), 2 ^ 53 + 2, 2 ^ 63, -(2 ^ 63),
      math.maxinteger, math.mininteger, math.maxinteger - 1, 1 << 53, (1 << 53) - 1, 1 << 60,
      0.1, 0.1 + 0.2, 1 / 3, 1e300, 1e-300, 5e-324, 1.7976931348623157e308, 123456789.125, -2.5,
      3.0, 1e15, 1e16, 1e17, 1e21, 4.35, 100 / 3 } do
      same(v)
      same({ v })
    end
    for _, bad in ipairs { 0 / 0, math.huge, -math.huge } do
      assert.has_error(function() json.encode(bad) end)
      same({ x = bad })
    end
  end)

  it("on arrays, objects and what lies between", function()
    same({})
    same(json.object())
    same(json.array({ 1, 2 }))
    same(json.object({ 1, 2 }))
    same({ 1, 2, nil, 4 })
    same({ [1] = "a", [3] = "c" })
    same({ [0] = "zero", "one" })
    same({ [-1] = 1, [2] = 2 })
    same({ [1.5] = "float key", [2] = "int key", [1e300] = "big" })
    same({ [0.1 + 0.2] = "not read back", x = 1 })
    same({ 1, 2, x = 3 })
    same({ [1] = "int", ["1"] = "string" })
    same({ ["10"] = 1, ["9"] = 2, ["a"] = 3, ["B"] = 4, ["_"] = 5, [""] = 6 })
    same({ nested = { deeper = { deepest = { json.null, true, false } } } })
  end)

  it("on tables with metamethods, read through #, pairs and t[k]", function()
    local proxied = setmetatable({}, {
      __pairs = function()
        local keys, i = { "b", "a", "c" }, 0
        return function()
          i = i + 1
          if keys[i] then
            return keys[i], i * 10
          end
        end
      end,
    })
    same({ proxied = proxied })
    local with_index = setmetatable({ x = 1 }, { __index = function(_, k) return "from index " .. tostring(k) end })
    same(with_index)
    local counted = setmetatable({ 1, 2, 3 }, { __len = function() return 2 end })
    same(counted)
    same(setmetatable({ 1, 2 }, { __tostring = function() return "x" end }))
  end)

  it("on shared tables, cycles and values JSON cannot hold", function()
    local shared = { 1 }
    same({ a = shared, b = shared, c = { shared } })
    local t = {}
    t.self = t
    same(t)
    local deep = { { { {} } } }
    deep[1][1][1][1] = deep
    same(deep)
    same({ f = print })
    same({ [true] = 1 })
    same({ [{}] = 1 })
    same(coroutine.create(print))
    same({ io.stdout })
  end)

  it("with and without indentation", function()
    local value = { a = { 1, { b = {} }, json.object() }, c = "d", e = { { {} } } }
    for _, indent in ipairs { "  ", "\t", "", "    " } do
      same(value, { indent = indent })
    end
    same(value, { indent = false })
    same(value, {})
  end)

  it("on many random values", function()
    local seed = 20240601
    local function rand(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    end
    local words = { "id", "name", "a", "b", "é", "key with space", "\n", "1", "01", "z" }
    local function value(depth)
      local kind = rand(depth > 3 and 5 or 8)
      if kind == 0 then
        return words[rand(#words) + 1]
      elseif kind == 1 then
        return rand(2000000) - 1000000
      elseif kind == 2 then
        return (rand(1000000) - 500000) / (rand(999) + 1)
      elseif kind == 3 then
        return rand(2) == 1
      elseif kind == 4 then
        return json.null
      elseif kind == 5 then
        local t = {}
        for i = 1, rand(6) do
          t[i] = value(depth + 1)
        end
        return t
      else
        local t = kind == 7 and json.object() or {}
        for _ = 1, rand(6) do
          t[words[rand(#words) + 1]] = value(depth + 1)
        end
        return t
      end
    end
    for _ = 1, 500 do
      local v = value(0)
      same(v)
      same(v, { indent = "  " })
    end
  end)

  it("on a real plan's JSON as cjson reads it back", function()
    local text = support_read("tests/e2e/plan_outputs/linear.txt")
    local body = text:match("^%$ cdp plan %-%-json\n(.-)\n%[exit 0%]")
    local v = assert(json.decode(body))
    assert.are.equal(body, same(v, { indent = "  " }))
  end)
end)
