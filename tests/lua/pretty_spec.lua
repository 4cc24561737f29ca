local pretty = require "cdp.pretty"

describe("cdp.pretty", function()
  local format = pretty.format

  it("shows scalars as Lua would read them", function()
    assert.are.equal("nil", format(nil))
    assert.are.equal("true", format(true))
    assert.are.equal("42", format(42))
    assert.are.equal("-9223372036854775808", format(math.mininteger))
    assert.are.equal("3.0", format(3.0))
    assert.are.equal("0.1", format(0.1))
    assert.are.equal("0.3333333333333333", format(1 / 3))
    assert.are.equal("1/0", format(math.huge))
    assert.are.equal("-1/0", format(-math.huge))
    assert.are.equal("0/0", format(0 / 0))
  end)

  it("quotes strings with escapes, on one line", function()
    assert.are.equal([["plain"]], format("plain"))
    assert.are.equal([["a\"b\\c\n\t\r"]], format('a"b\\c\n\t\r'))
    -- a numeric escape is widened when a digit follows, so it reads back the same
    assert.are.equal([["\1x\0012\127"]], format("\1x\0012\127"))
    assert.are.equal([["\\12"]], format("\\12"))
    assert.are.equal('"é"', format("é"))
    local s = "\0\1\0019\255\"\\\n"
    assert.are.equal(s, load("return " .. format(s))())
  end)

  it("shows short arrays compactly and empty tables as {}", function()
    assert.are.equal("{ 1, 2, 3 }", format({ 1, 2, 3 }))
    assert.are.equal("{}", format({}))
    assert.are.equal('{ "a", { true } }', format({ "a", { true } }))
  end)

  it("sorts keys: array part, other numbers, strings, then the rest", function()
    local t = { "one", "two", z = 1, a = 2, [10] = "ten", [1.5] = "x", ["a b"] = 3, [true] = 4 }
    assert.are.equal(
      '{ "one", "two", [1.5] = "x", [10] = "ten", a = 2, ["a b"] = 3, z = 1, [true] = 4 }',
      format(t))
  end)

  it("writes identifier keys bare and quotes keywords and other strings", function()
    assert.are.equal('{ ["2x"] = 3, _ok2 = 2, ["a-b"] = 4, ["end"] = 1 }',
      format({ ["end"] = 1, _ok2 = 2, ["2x"] = 3, ["a-b"] = 4 }))
  end)

  it("gives the same text for tables built in different orders", function()
    local a, b = {}, {}
    for i = 1, 100 do a["k" .. i] = i end
    for i = 100, 1, -1 do b["k" .. i] = i end
    assert.are.equal(format(a), format(b))
  end)

  it("breaks a table over lines when it does not fit the width", function()
    local t = { name = "validate", needs = { "fork" }, long = ("x"):rep(30) }
    assert.are.equal('{ long = "' .. ("x"):rep(30) .. '", name = "validate", needs = { "fork" } }',
      format(t))
    assert.are.equal(table.concat({
      "{",
      '  long = "' .. ("x"):rep(30) .. '",',
      '  name = "validate",',
      '  needs = { "fork" },',
      "}",
    }, "\n"), format(t, { width = 40 }))
    assert.are.equal('{\n\tlong = "' .. ("x"):rep(30) .. '",\n\tname = "validate",\n\tneeds = { "fork" },\n}',
      format(t, { width = 40, indent = "\t" }))
  end)

  it("packs long arrays of scalars several to a line", function()
    local t = {}
    for i = 1, 30 do t[i] = i end
    local out = format(t, { width = 30 })
    local lines = {}
    for line in out:gmatch("[^\n]+") do
      lines[#lines + 1] = line
      assert.is_true(#line <= 30, line)
    end
    assert.are.equal("{", lines[1])
    assert.are.equal("  1, 2, 3, 4, 5, 6, 7, 8, 9,", lines[2])
    assert.are.equal("}", lines[#lines])
    assert.are.same(t, load("return " .. out)())
  end)

  it("marks cycles with the path of the table they lead back to", function()
    local t = { name = "root table" }
    t.self = t
    t.sub = { up = t, deeper = {} }
    t.sub.deeper.back = t.sub
    assert.are.equal(
      '{ name = "root table", self = <cycle: root>, sub = { deeper = { back = <cycle: root.sub> }, up = <cycle: root> } }',
      format(t, { width = 200 }))
  end)

  it("prints a table shared by two fields in full both times", function()
    local shared = { 1 }
    assert.are.equal("{ a = { 1 }, b = { 1 } }", format({ a = shared, b = shared }))
  end)

  it("stops at the depth limit with {...}", function()
    local t = { a = { b = { c = { d = { e = 1 } } } } }
    assert.are.equal("{ a = { b = { c = { d = {...} } } } }", format(t))
    assert.are.equal("{ a = { b = {...} } }", format(t, { depth = 2 }))
    assert.are.equal("{...}", format(t, { depth = 0 }))
    assert.are.equal("{ a = {} }", format({ a = {} }, { depth = 1 }))
  end)

  it("shows functions without addresses, and objects by __tostring", function()
    assert.are.equal("<function: builtin>", format(print))
    local f = function() end
    local line = debug.getinfo(1, "l").currentline - 1
    assert.are.equal(("<function: %s:%d>"):format(debug.getinfo(1, "S").short_src, line), format(f))
    local obj = setmetatable({ secret = 1 }, { __tostring = function() return "Plan(3 crates)" end })
    assert.are.equal("{ plan = Plan(3 crates) }", format({ plan = obj }))
    assert.are.equal(tostring(io.stdout), format(io.stdout))
    assert.are.equal("<thread>", format(coroutine.create(print)))
    local bad = setmetatable({}, { __tostring = function() error("boom", 0) end })
    assert.are.equal("<table: __tostring failed: boom>", format(bad))
  end)

  it("does not call __index or __pairs while printing", function()
    local proxy = setmetatable({ real = 1 }, {
      __index = function() error("__index called") end,
      __pairs = function() error("__pairs called") end,
    })
    assert.are.equal("{ real = 1 }", format(proxy))
  end)

  it("prints its arguments tab-separated on one line", function()
    local path = os.tmpname()
    local saved = io.output()
    io.output(path)
    local ok, err = pcall(function()
      local real = io.stdout
      -- pretty.print writes to io.stdout; swap it for a file for the test
      io.stdout = io.output()
      local ok2, err2 = pcall(pretty.print, 1, "two", { 3 }, nil)
      io.stdout = real
      assert(ok2, err2)
    end)
    io.output():close()
    io.output(saved)
    local f = assert(io.open(path))
    local text = f:read("a")
    f:close()
    os.remove(path)
    assert(ok, err)
    assert.are.equal('1\t"two"\t{ 3 }\tnil\n', text)
  end)
end)
