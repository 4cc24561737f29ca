-- Commit text on its way to a terminal, a mail subject and a forge page.
local text = require "cdp.text"
local support = require "tests.lua.support"
local fixture = require "tests.fixtures.plan_workspace"
local notify = require("cdp.run").notify()

local ZWJ = "\226\128\141"

describe("cdp.text", function()
  it("printable drops escape sequences and control characters, keeps lines, tabs and UTF-8", function()
    assert.are.equal("red title cleared", text.printable("\27[31mred\27[0m \27]0;evil title\7title \27[2Jcleared"))
    assert.are.equal("link", text.printable("\27]8;;https://evil.example/\27\\link\27]8;;\27\\"))
    assert.are.equal("a\n\tb", text.printable("a\n\tb\r\0\8\127"))
    assert.are.equal("naïve — ok", text.printable("naïve — ok\194\155"))
    assert.are.equal("ESC gone", text.printable("ESC\27(B gone")) -- a charset switch, gone whole
  end)

  it("one_line makes one printable line, cut on a character", function()
    assert.are.equal("a b c", text.one_line("a\nb\r\n\tc\n"))
    assert.are.equal("x red", text.one_line("x \27[31mred"))
    assert.are.equal("ééé…", text.one_line(("é"):rep(10), 9)) -- 6 + 3 bytes
    assert.are.equal("éé…", text.one_line(("é"):rep(10), 8)) -- not half an é
    assert.are.equal("short", text.one_line("short", 9))
  end)

  it("defuse stops @-mentions and closing keywords, and reads the same", function()
    local s = "Thanks @alice and @org/team. Fixes #12, closes org/repo#3. Resolves: https://github.com/o/r/issues/4"
    local d = text.defuse(s)
    assert.are.equal(s, (d:gsub(ZWJ, ""))) -- only joiners were added
    assert.is_nil(d:find("@alice", 1, true))
    assert.is_truthy(d:find("@" .. ZWJ .. "alice", 1, true))
    assert.is_truthy(d:find("@" .. ZWJ .. "org/team", 1, true))
    for _, w in ipairs { "Fixes #12", "closes org/repo#3", "Resolves: https" } do
      assert.is_nil(d:find(w, 1, true), w)
    end
    for _, w in ipairs { "fix", "fixed", "close", "closed", "resolve", "resolved" } do
      assert.is_nil(text.defuse(w .. " #1"):find(w .. " #1", 1, true), w)
      assert.is_nil(text.defuse(w:upper() .. " #1"):find(w:upper() .. " #1", 1, true), w)
    end
  end)

  it("defuse leaves e-mail addresses and words that close nothing alone", function()
    for _, s in ipairs { "mail me@example.org", "a fix for #5 in prefixes", "the fixed-point #1 type",
      "suffix #4", "see issue #7" } do
      assert.are.equal(s, text.defuse(s))
    end
  end)

  it("no escape sequence of a commit message reaches the terminal: cdp plan, and a run's lines", function()
    local w = fixture.new()
    w:crate("a", "0.1.0")
    w:commit("chore: start")
    w:release()
    w:change("a", "feat: a change \27]0;pwned title\7 that \27[2J\27[1;1Hrewrites the screen")
    local q = support.quote
    for _, args in ipairs { "plan", "plan --explain a" } do
      local out = support.sh(("cd %s && %s %s"):format(q(w.dir), q(support.cdp()), args))
      assert.is_nil(out:find("\27", 1, true), args .. ": " .. out)
      if args ~= "plan" then
        assert.matches("feat: a change  that rewrites the screen", out, 1, true)
      end
    end
    local lines = {}
    local sink = { write = function(_, ...) for _, x in ipairs { ... } do lines[#lines + 1] = x end end, flush = function() end }
    for _, tty in ipairs { true, false } do
      local term = notify.terminal { out = sink, tty = tty, clock = function() return 0 end }
      term.event { event = "stage.started", stage = "version" }
      term.log("version", "commit says \27[31mred\27]0;t\7")
      term.event { event = "stage.failed", stage = "version", error = { msg = "bad \27[2J" } }
    end
    local all = table.concat(lines)
    assert.is_truthy(all:find("commit says red", 1, true), all)
    assert.is_nil((all:gsub("\r\27%[K", "")):find("\27", 1, true), all) -- only cdp's own line clearing
  end)
end)
