-- Text is UTF-8 everywhere it goes: commit messages and names are decoded by the
-- commit's `encoding` header (git's i18n.commitEncoding) and repaired where they are not
-- UTF-8, wherever cdp.git hands them to Lua; the JSON encoder refuses invalid UTF-8,
-- naming where it is; and a changelog written from such history is UTF-8.
local support = require "tests.lua.support"
local git = require "cdp.git"
local json = require "cdp.json"

local q = support.quote

-- A repository with a Latin-1 commit (and author) that says so in its encoding
-- header, and on it a commit object with Latin-1 bytes and no header, written as a
-- raw object (git's own commit would repair the bytes itself). Returns dir, ids.
local function latin1_history()
  local dir = support.git_init()
  support.commit(dir, "chore: start", { ["a.txt"] = "a\n" })
  support.write(dir .. "/b.txt", "b\n")
  support.git(dir, "add", "b.txt")
  -- git stores the message bytes as given and records the encoding in the header
  support.sh(("cd %s && printf 'fix: caf\\351 au lait\\n\\nna\\357ve body\\n' >%s && "
    .. "GIT_AUTHOR_NAME=\"$(printf 'Jos\\351')\" git -c i18n.commitEncoding=ISO-8859-1 commit -q -F %s")
    :format(q(dir), q(dir .. "/../msg"), q(dir .. "/../msg")))
  local labelled = support.git(dir, "rev-parse", "HEAD")
  local raw = ("tree %s\nparent %s\nauthor Ren\233 <r@example.invalid> 1700000000 +0000\n"
    .. "committer Ren\233 <r@example.invalid> 1700000000 +0000\n\nfeat: d\233j\224 vu\n")
    :format(support.git(dir, "rev-parse", "HEAD^{tree}"), labelled)
  support.write(dir .. "/../raw", raw)
  local unlabelled = support.git(dir, "hash-object", "-t", "commit", "-w", dir .. "/../raw")
  support.git(dir, "update-ref", "HEAD", unlabelled)
  return dir, { labelled = labelled, unlabelled = unlabelled }
end

describe("commit text", function()
  it("is decoded by the commit's encoding header, and repaired without one", function()
    local dir, ids = latin1_history()
    assert.are.equal("ISO-8859-1", support.git(dir, "cat-file", "commit", ids.labelled):match("\nencoding ([^\n]+)"))
    local r = assert(git.open(dir))
    local c = r:commit(ids.labelled)
    assert.are.equal("fix: café au lait", c.summary)
    assert.are.equal("fix: café au lait\n\nnaïve body\n", c.message)
    assert.are.equal("naïve body", c.body:gsub("%s+$", ""))
    assert.are.equal("José", c.author.name)
    -- no header, and bytes that are not UTF-8: taken as Latin-1, as git itself does
    local u = r:commit(ids.unlabelled)
    assert.are.equal("feat: déjà vu", u.summary)
    assert.are.equal("René", u.author.name)
    for _, cm in ipairs(assert(r:changes { from = "HEAD", paths = { "" } })) do
      assert.is_truthy(utf8.len(cm.message), cm.id)
      assert.is_truthy(utf8.len(cm.summary), cm.id)
      assert.is_truthy(utf8.len(cm.author), cm.id)
      if cm.id == ids.labelled then
        assert.are.equal("fix: café au lait", cm.summary)
        assert.are.equal("José", cm.author)
      end
    end
    r:close()
  end)

  it("of annotated tags is repaired too", function()
    -- (git tag writes the bytes as given: no repair, no header)
    local dir = support.git_init()
    support.commit(dir, "chore: start", { ["a.txt"] = "a\n" })
    support.sh(("cd %s && printf 'r\\351lease\\n' >%s && git tag -a v1 -F %s")
      :format(q(dir), q(dir .. "/../tagmsg"), q(dir .. "/../tagmsg")))
    local r = assert(git.open(dir))
    local tags = r:tags()
    assert.are.equal("rélease\n", tags[1].message)
    r:close()
  end)
end)

describe("the JSON encoder", function()
  it("refuses a string that is not UTF-8, naming where it is", function()
    local ok, err = pcall(json.encode, { pulls = { { body = "caf\xE9" } } })
    assert.is_false(ok)
    assert.matches('json: the string at pulls[1].body is not valid UTF-8 (byte 4): "caf\\xE9"', err, 1, true)
    ok, err = pcall(json.encode, { ["k\xFF"] = 1 })
    assert.is_false(ok)
    assert.matches('json: a key is not valid UTF-8 (byte 2) in the top level: "k\\xFF"', err, 1, true)
    assert.is_truthy(utf8.len(err))
    assert.are.equal('{"s":"café ☕"}', json.encode { s = "café ☕" })
  end)
end)

describe("a changelog from Latin-1 history", function()
  it("is UTF-8, and an old changelog in another encoding is refused naming the file", function()
    local package = require "cdp.stages.package"
    local release = require "cdp.release"
    local dir, ids = latin1_history()
    local r = assert(git.open(dir))
    local c = { name = "solo", dir = "", current = "0.1.0", next = "0.1.1", bump = "patch",
      commits = { { id = ids.unlabelled }, { id = ids.labelled } } }
    local cl = package.changelog(r, c, { root = dir, from = "HEAD", template = "cdp.templates.keepachangelog",
      tag_template = "", single = true })
    r:close()
    assert.is_truthy(utf8.len(cl.text))
    assert.matches("café au lait", cl.text, 1, true)
    assert.matches("déjà vu", cl.text, 1, true)
    assert.are.equal(cl.text, release.utf8("CHANGELOG.md", cl.text))
    local ok, err = pcall(release.utf8, "crates/x/CHANGELOG.md", "# Changelog\n\n- caf\xE9\n")
    assert.is_false(ok)
    assert.are.equal("crates/x/CHANGELOG.md is not valid UTF-8 (byte 19); cdp writes it as UTF-8: convert it "
      .. "first (e.g. iconv -f ISO-8859-1 -t UTF-8) and commit that", err)
  end)
end)
