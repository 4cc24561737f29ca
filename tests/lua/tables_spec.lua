local tables = require "cdp.tables"

describe("tables.sorted_keys", function()
  it("lists the keys in order, whatever order pairs walks them in", function()
    local t = {}
    for i = 50, 1, -1 do
      t[("k%02d"):format(i)] = i % 2 == 0
    end
    local keys = tables.sorted_keys(t)
    assert.are.equal(50, #keys)
    for i = 1, 50 do
      assert.are.equal(("k%02d"):format(i), keys[i])
    end
  end)

  it("takes an order for keys of mixed types, and gives {} for {}", function()
    local mixed = tables.sorted_keys({ [2] = 1, b = 1, [10] = 1, a = 1 },
      function(a, b) return tostring(a) < tostring(b) end)
    assert.are.same({ "10", "2", "a", "b" }, (function()
      local out = {}
      for i, k in ipairs(mixed) do out[i] = tostring(k) end
      return out
    end)())
    assert.are.same({}, tables.sorted_keys({}))
  end)
end)
