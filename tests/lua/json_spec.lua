local json = require "cdp.json"

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

  it("returns nil, a message and EJSON for bad input", function()
    local v, msg, code = json.decode('{"a":')
    assert.is_nil(v)
    assert.are.equal("EJSON", code)
    assert.is_string(msg)
  end)
end)
