-- The C bindings against option tables with metamethods. A table whose __index makes
-- a fresh string (and runs the collector) used to leave cdp.toml, cdp.http and cdp.git
-- holding pointers to strings nothing anchored any more, and a path whose __index
-- closed the document had cdp.toml walk freed nodes. Options are now copied with raw
-- access before any C resource is held: metamethods never run, so a proxy's fields
-- are not seen, and nothing is used after it is freed (run under ASan to see it).
local support = require "tests.lua.support"
local toml = require "cdp.toml"
local http = require "cdp.http"
local git = require "cdp.git"

-- Fields made on demand, with a full collection each time, so an unanchored string
-- is freed before the binding uses it. (Strings over 40 bytes are not interned: the
-- copy made here is a string of its own that nothing else holds.)
local function proxy(fields)
  return setmetatable({}, {
    __index = function(_, k)
      collectgarbage()
      local v = fields[k]
      if type(v) == "string" then
        v = (v .. "#"):sub(1, -2) -- a new string, referenced by nothing but the stack
      end
      return v
    end,
    __len = function() return #fields end,
  })
end

describe("option readers with metamethods", function()
  before_each(function()
    -- the collector runs a whole cycle at every allocation: what is not anchored goes at once
    collectgarbage("incremental", 0, 1000, 0)
  end)
  after_each(function()
    collectgarbage("incremental", 200, 100, 13)
  end)

  it("cdp.toml reads no option and no path through a metamethod", function()
    local doc = assert(toml.parse("[a]\nb = 1\n", proxy { name = "proxied-name.toml" }))
    assert.are.equal(1, doc:get { "a", "b" })
    -- a path whose element lookup closes the document it is resolving in
    local path = setmetatable({}, { __len = function() return 2 end, __index = function(_, i)
      doc:close()
      collectgarbage()
      return i == 1 and "a" or "b"
    end })
    local ok, root = pcall(doc.get, doc, path)
    assert.is_true(ok, root)
    assert.are.equal("table", type(root)) -- read raw, the path is empty: the whole document
    assert.are.equal(1, doc:get { "a", "b" }) -- and the metamethod never ran to close it
    local bad, msg = toml.parse("x = ", proxy { name = "proxied-name.toml" })
    assert.is_nil(bad)
    assert.matches("^<toml>:", msg) -- the proxy's name is not read
  end)

  it("cdp.http reads no request or mail field through a metamethod", function()
    local fields = { url = "smtp://127.0.0.1:" .. support.closed_port() .. "/" .. ("long-path"):rep(5),
      from = ("sender"):rep(8) .. "@example.org", to = ("recipient"):rep(6) .. "@example.org",
      subject = ("a subject made on demand "):rep(3), body = ("a body made on demand "):rep(3) }
    local ok, err = pcall(http.smtp, proxy(fields))
    assert.is_false(ok)
    assert.matches("field 'url': string expected, got nil", err, 1, true)
    local mail = {}
    for k, v in pairs(fields) do mail[k] = v end
    mail.to = proxy { "ops@example.org" } -- the list too is read raw: empty
    local ok2, err2 = pcall(http.smtp, mail)
    assert.is_false(ok2)
    assert.matches("field 'to': no recipients", err2, 1, true)
    mail.to = { "ops@example.org" }
    local sent, _, code = http.smtp(mail) -- a plain table still works (and finds no server)
    assert.is_nil(sent)
    assert.are.equal("ECONNREFUSED", code)
  end)

  it("cdp.git reads no option through a metamethod", function()
    local src = support.git_init()
    support.commit(src, "one", { a = "1" })
    support.git(src, "branch", "side")
    local dest = support.tmpdir() .. "/c"
    local branch = ("side-branch-"):rep(5)
    support.git(src, "branch", branch)
    local repo = assert(git.clone(src, dest, proxy { branch = branch, checkout = true }))
    assert.are.equal("main", repo:head_ref():gsub("^refs/heads/", "")) -- the proxy's branch was not read
    repo:close()
    local r = assert(git.open(src))
    local sig = proxy { name = ("Proxied Name "):rep(5), email = ("proxied"):rep(7) .. "@example.org" }
    local ok, err = pcall(r.commit_index, r, { message = "x", author = sig })
    assert.is_false(ok)
    assert.matches("needs a name and an email", err, 1, true)
    r:close()
  end)
end)
