-- cdp.toml as Lua sees it: values, spans, errors with positions, edits that
-- keep every other byte, and the handle's life cycle.
local toml = require "cdp.toml"

local function parse(text)
  return assert(toml.parse(text, { name = "t.toml" }))
end

-- The text outside [a, b] must be the same in both, and the inside must differ.
local function assert_only_changed(before, after, first, last, new_last)
  assert.are.equal(before:sub(1, first - 1), after:sub(1, first - 1))
  assert.are.equal(before:sub(last + 1), after:sub(new_last + 1))
end

describe("cdp.toml", function()
  describe("reading", function()
    it("gives every kind of value", function()
      local doc = parse [==[
s1 = "basic \"q\" \t \u00e9 \U0001F600"
s2 = 'C:\literal'
s3 = """
two
lines"""
s4 = '''
raw \n '''
s5 = """a \
     b"""
i = [1_000, -7, 0xff, 0o17, 0b101, +3]
f = [1.5, -2e3, 6.02E+23, inf, -inf]
b = [true, false]
d = [1979-05-27T07:32:00Z, 1979-05-27 07:32:00.999, 1979-05-27, 07:32:00, 1979-05-27T00:32:00-07:00]
nested = [[1, 2], ["a", { x = 1 }]]
]==]
      assert.are.equal('basic "q" \t é 😀', doc:get { "s1" })
      assert.are.equal("C:\\literal", doc:get { "s2" })
      assert.are.equal("two\nlines", doc:get { "s3" })
      assert.are.equal("raw \\n ", doc:get { "s4" })
      assert.are.equal("a b", doc:get { "s5" })
      assert.are.same({ 1000, -7, 255, 15, 5, 3 }, doc:get { "i" })
      assert.is_true(math.type(doc:get { "i", 1 }) == "integer")
      local f = doc:get { "f" }
      assert.are.same({ 1.5, -2000.0, 6.02e23, math.huge, -math.huge }, f)
      assert.are.same({ true, false }, doc:get { "b" })
      assert.are.same({ "1979-05-27T07:32:00Z", "1979-05-27 07:32:00.999", "1979-05-27", "07:32:00",
        "1979-05-27T00:32:00-07:00" }, doc:get { "d" })
      assert.are.same({ { 1, 2 }, { "a", { x = 1 } } }, doc:get { "nested" })
      assert.are.equal(1, doc:get { "nested", 2, 2, "x" })
      assert.is_nil(doc:get { "nested", 3 })
      assert.is_nil(doc:get { "s1", "x" })
      assert.is_nil(doc:get { "missing" })
    end)

    it("reads tables, arrays of tables, dotted and quoted keys", function()
      local doc = parse [==[
title = "x"
a.b.c = 1
"quoted.key" = 2
site."google.com" = true
[t]
x = 1
[t.sub]
y = 2
[[bin]]
name = "one"
[[bin]]
name = "two"
[bin.extra]
z = 3
[target.'cfg(unix)'.dependencies]
libc = "0.2"
]==]
      assert.are.same({
        title = "x",
        a = { b = { c = 1 } },
        ["quoted.key"] = 2,
        site = { ["google.com"] = true },
        t = { x = 1, sub = { y = 2 } },
        bin = { { name = "one" }, { name = "two", extra = { z = 3 } } },
        target = { ["cfg(unix)"] = { dependencies = { libc = "0.2" } } },
      }, doc:to_table())
      assert.are.equal("two", doc:get { "bin", 2, "name" })
      assert.are.same({ "title", "a", "quoted.key", "site", "t", "bin", "target" }, doc:keys())
      assert.are.equal("header", doc:style { "t" })
      assert.are.equal("dotted", doc:style { "a", "b" })
      assert.are.equal("implicit", doc:style { "target" })
      assert.are.equal("array", doc:style { "bin", 1 })
      assert.are.equal("array", doc:type { "bin" })
      assert.are.equal("integer", doc:type { "t", "x" })
    end)

    it("gives spans of value tokens, 1-based and inclusive", function()
      local text = 'a = "x" # c\nb = { version = \'1.0\', path = ".." }\n[dependencies.foo]\nversion = "2"\n'
      local doc = parse(text)
      local s, e = doc:span { "a" }
      assert.are.equal('"x"', text:sub(s, e))
      s, e = doc:span { "b", "version" }
      assert.are.equal("'1.0'", text:sub(s, e))
      s, e = doc:span { "b" }
      assert.are.equal('{ version = \'1.0\', path = ".." }', text:sub(s, e))
      s, e = doc:span { "dependencies", "foo" }
      assert.are.equal("[dependencies.foo]", text:sub(s, e))
      s, e = doc:key_span { "dependencies", "foo", "version" }
      assert.are.equal("version", text:sub(s, e))
      assert.is_nil(doc:span { "dependencies" }) -- implicit: no token of its own
    end)

    it("reads CRLF text, comments everywhere, and multi-line arrays", function()
      local doc = parse("# head\r\n[package] # c\r\nname = 'x' # c\r\nkw = [ # c\r\n  \"a\", # c\r\n\r\n  'b', # c\r\n]\r\n")
      assert.are.same({ package = { name = "x", kw = { "a", "b" } } }, doc:to_table())
    end)

    it("accepts what TOML 1.1 relaxed and cargo reads", function()
      local doc = parse('t = { a = 1, # c\n  b = "\\e\\x41", }\nm = 07:32\n')
      assert.are.same({ t = { a = 1, b = "\27A" }, m = "07:32" }, doc:to_table())
    end)
  end)

  describe("errors", function()
    local cases = {
      { "a = 1\nb c\n", "t.toml:2:3: expected '=' after key" },
      { "a = 1\na = 2\n", "t.toml:2:1: duplicate key 'a' (first defined at line 1)" },
      { "[a]\nx = 1\n[a]\n", "t.toml:3:1: table 'a' is defined twice (first at line 1)" },
      { "a = \"open\n", "t.toml:1:10: newline in a single-line string" },
      { "a = \"open", "t.toml:1:5: unterminated string" },
      { "a = 'é\1'\n", "t.toml:1:7: control character in string" },
      { "a = bare\n", "t.toml:1:5: invalid value 'bare' (strings need quotes)" },
      { "a = 1 2\n", "t.toml:1:7: expected a newline after a value" },
      { "a = [1, 2\n", "t.toml:2:1: unterminated array" },
      { "a = 01\n", "t.toml:1:5: leading zeros are not allowed in a number" },
      { "a = 9223372036854775808\n", "t.toml:1:5: integer does not fit in 64 bits" },
      { "a = 1979-02-29\n", "t.toml:1:5: invalid date or time" },
      { "a = \"\\q\"\n", "t.toml:1:6: invalid escape sequence in string" },
      { "a = {x = 1}\n[a]\n", "t.toml:2:1: 'a' is already defined at line 1" },
      { "a = {x = 1}\na.y = 2\n", "t.toml:2:1: cannot add keys to inline table 'a'" },
      { "[a]\nb.c = 1\n[a.b]\n", "t.toml:3:1: table 'a.b' was already defined by dotted keys at line 2" },
      { "[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", "t.toml:4:3: table 'b.c' was defined by a header at line 1; dotted keys cannot add to it" },
      { "a = [1]\n[[a]]\n", "t.toml:2:1: 'a' is already defined and is not an array of tables" },
      { "a = 1\r\nb = 2\rc = 3\n", "t.toml:2:6: carriage return without a line feed" },
      { "# \0\n", "t.toml:1:3: control character in comment" },
      { "a = \"\xff\"\n", "t.toml:1:6: invalid UTF-8" },
      { string.rep("[", 200) .. "\n", "t.toml:1:3: expected a key" },
      { "a = " .. string.rep("[", 200), "t.toml:1:133: arrays or inline tables nested too deeply" },
    }
    for _, c in ipairs(cases) do
      it("says where and why: " .. c[2], function()
        local doc, msg, code = toml.parse(c[1], { name = "t.toml" })
        assert.is_nil(doc)
        assert.are.equal(c[2], msg)
        assert.are.equal("ETOML", code)
      end)
    end
  end)

  describe("set_string", function()
    local function edit(text, path, value)
      local doc = parse(text)
      local s, e = doc:span(path)
      assert(doc:set_string(path, value))
      local after = doc:text()
      local s2, e2 = doc:span(path)
      assert.are.equal(s, s2)
      assert_only_changed(text, after, s, e, e2)
      assert.are.equal(value, doc:get(path))
      assert.are.equal(value, parse(after):get(path)) -- and a fresh read agrees
      return after:sub(s2, e2), after
    end

    it("keeps the quote style of each kind of string", function()
      assert.are.equal('"2.0"', edit('v = "1.0" # keep\n', { "v" }, "2.0"))
      assert.are.equal("'2.0'", edit("v = '1.0'\n", { "v" }, "2.0"))
      assert.are.equal('"""2.0"""', edit('v = """1.0"""\n', { "v" }, "2.0"))
      assert.are.equal("'''2.0'''", edit("v = '''1.0'''\n", { "v" }, "2.0"))
    end)

    it("falls back to a basic string when a literal cannot hold the value", function()
      assert.are.equal([["it's"]], edit("v = 'x'\n", { "v" }, "it's"))
      assert.are.equal([["a\nb"]], edit("v = 'x'\n", { "v" }, "a\nb"))
      assert.are.equal('"""a\'\'\'b"""', edit("v = '''x'''\n", { "v" }, "a'''b"))
    end)

    it("escapes what a basic string needs", function()
      assert.are.equal([["q\"b\\s\u0001\r"]], edit('v = ""\n', { "v" }, 'q"b\\s\1\r'))
      assert.are.equal('"""\\nx\ny"""', edit('v = """"""\n', { "v" }, "\nx\ny"))
      assert.are.equal("'''\n\nx'''", edit("v = ''''''\n", { "v" }, "\nx"))
    end)

    it("edits values in inline tables, dotted keys, headers and arrays", function()
      local text = table.concat({
        "[dependencies]",
        'a = { version = "1", path = "../a" } # a',
        'b.version = "1"',
        "[dependencies.c]",
        "version = '1'",
        "[package]",
        'keywords = ["x",',
        '  "y", # y',
        "]",
        "",
      }, "\r\n")
      local doc = parse(text)
      assert(doc:set_string({ "dependencies", "a", "version" }, "22"))
      assert(doc:set_string({ "dependencies", "b", "version" }, "333"))
      assert(doc:set_string({ "dependencies", "c", "version" }, "4444"))
      assert(doc:set_string({ "package", "keywords", 2 }, "zz"))
      assert.are.equal(table.concat({
        "[dependencies]",
        'a = { version = "22", path = "../a" } # a',
        'b.version = "333"',
        "[dependencies.c]",
        "version = '4444'",
        "[package]",
        'keywords = ["x",',
        '  "zz", # y',
        "]",
        "",
      }, "\r\n"), doc:text())
    end)

    it("refuses what is not a string, and bad UTF-8", function()
      local doc = parse('n = 1\n[t]\ns = "x"\n')
      local ok, msg, code = doc:set_string({ "n" }, "2")
      assert.is_nil(ok)
      assert.are.equal("t.toml: n is not a string but a value of type integer", msg)
      assert.are.equal("ETOML", code)
      ok, msg = doc:set_string({ "t", "missing" }, "2")
      assert.are.equal("t.toml: no value at t.missing", msg)
      ok, msg = doc:set_string({ "t", "s" }, "\xff")
      assert.is_nil(ok)
      assert.are.equal("t.toml: cannot set t.s: the new value is not valid UTF-8", msg)
      assert.are.equal('n = 1\n[t]\ns = "x"\n', doc:text())
    end)
  end)

  describe("handles", function()
    it("close once or many times, and refuse use after close", function()
      local doc = parse("a = 1\n")
      assert.matches("^cdp.toml.Document %(t.toml%)$", tostring(doc))
      doc:close()
      doc:close()
      assert.matches("closed", tostring(doc))
      assert.has_error(function() doc:get { "a" } end, "attempt to use a closed TOML document")
    end)

    it("close at the end of a to-be-closed scope", function()
      local kept
      do
        local doc <close> = parse("a = 1\n")
        kept = doc
      end
      assert.has_error(function() kept:text() end)
    end)

    it("raise on misuse", function()
      local doc = parse("a = 1\n")
      assert.has_error(function() doc:get { true } end)
      assert.has_error(function() doc:set_string({ "a" }, {}) end)
      assert.has_error(function() toml.parse(nil) end)
    end)
  end)
end)
