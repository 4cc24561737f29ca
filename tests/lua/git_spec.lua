-- cdp.git against real repositories made with the git command line, bare
-- remotes on disk, and a smart HTTP server (git http-backend) on loopback.
local git = require "cdp.git"
local support = require "tests.lua.support"
local q = support.quote
local G = support.git

local FIXTURE = "tests/fixtures/git_http_server.py"

local function absolute(path)
  if path:sub(1, 1) == "/" then
    return path
  end
  return (os.getenv("PWD") or support.sh("pwd"):gsub("%s+$", "")) .. "/" .. path
end

-- A repository with one commit per message; returns dir and the commit ids.
local function repo_with(messages)
  local dir = support.git_init()
  local ids = {}
  for i, m in ipairs(messages) do
    ids[i] = support.commit(dir, m, { ["file" .. i .. ".txt"] = m .. "\n" })
  end
  return dir, ids
end

local function inode(path)
  return support.sh("stat -c %i " .. q(path)):gsub("%s+$", "")
end

local function object_path(gitdir, oid)
  return gitdir .. "/objects/" .. oid:sub(1, 2) .. "/" .. oid:sub(3)
end

describe("cdp.git", function()
  it("names the libgit2 it runs on", function()
    assert.matches("^libgit2 %d+%.%d+%.%d+$", git.version())
  end)

  describe("open, discover, init", function()
    it("opens a work tree and reports HEAD, its ref and its paths", function()
      local dir, ids = repo_with { "one", "two" }
      local r = assert(git.open(dir))
      assert.are.equal(ids[2], r:head())
      assert.are.equal(G(dir, "rev-parse", "HEAD"), r:head())
      assert.are.equal("refs/heads/main", r:head_ref())
      assert.are.equal(dir .. "/.git", r:path())
      assert.are.equal(dir, r:workdir())
      assert.is_false(r:is_bare())
      assert.are.equal("cdp.git.Repository (" .. dir .. ")", tostring(r))
      r:close()
    end)

    it("opens exactly the path given, and discovers upward on request", function()
      local dir = repo_with { "one" }
      support.write(dir .. "/sub/deeper/x.txt", "x")
      local r, msg, code = git.open(dir .. "/sub/deeper")
      assert.is_nil(r)
      assert.are.equal("ENOTFOUND", code)
      assert.matches(dir .. "/sub/deeper", msg, 1, true)
      local d = assert(git.discover(dir .. "/sub/deeper"))
      assert.are.equal(dir, d:workdir())
      d:close()
    end)

    it("initialises repositories with an unborn HEAD on main", function()
      local dir = support.tmpdir() .. "/new"
      local r = assert(git.init(dir))
      assert.are.equal("refs/heads/main", r:head_ref())
      local oid, msg, code = r:head()
      assert.is_nil(oid)
      assert.are.equal("EUNBORN", code)
      assert.is_string(msg)
      assert.are.equal("ref: refs/heads/main", support.read(dir .. "/.git/HEAD"):gsub("%s+$", ""))
      local b = assert(git.init(support.tmpdir() .. "/bare.git", { bare = true, initial_head = "trunk" }))
      assert.is_true(b:is_bare())
      assert.is_nil(b:workdir())
      assert.are.equal("refs/heads/trunk", b:head_ref())
      assert.are.equal("true", G(b:path(), "config", "core.bare"))
    end)

    it("runs from the cdp command line", function()
      local dir = repo_with { "one", "two" }
      local cmd = "cd " .. q(dir) .. " && " .. q(absolute(support.cdp())) .. " -e "
        .. q('print(require("cdp.git").open("."):head())') .. " 2>&1"
      local p = assert(io.popen(cmd))
      local out = p:read("a")
      assert.is_true(p:close())
      assert.are.equal(G(dir, "rev-parse", "HEAD") .. "\n", out)
    end)
  end)

  describe("handles", function()
    it("raises when a closed repository is used, and closes twice safely", function()
      local r = assert(git.open(repo_with { "one" }))
      r:close()
      r:close()
      assert.has_error(function() r:head() end, "attempt to use a closed cdp.git.Repository")
      assert.are.equal("cdp.git.Repository (closed)", tostring(r))
    end)

    it("closes at the end of a <close> scope", function()
      local dir = repo_with { "one" }
      local escaped
      do
        local r <close> = assert(git.open(dir))
        escaped = r
        assert.is_string(r:head())
      end
      assert.has_error(function() escaped:head() end)
    end)

    it("raises on misuse", function()
      local r = assert(git.open(repo_with { "one" }))
      assert.has_error(function() git.open({}) end)
      assert.has_error(function() r:walk("HEAD") end)
      assert.has_error(function() r:walk { first_parent = "yes" } end)
      assert.has_error(function() r:tags { pattern = 7 } end)
      assert.has_error(function() r:reference_set("refs/x", "not-an-oid") end)
      assert.has_error(function() r:add { 1, 2 } end)
      assert.has_error(function() r:commit_index { author = "me" } end)
      assert.has_error(function() r.head({}) end)
      -- raised after libgit2 objects were acquired: nothing may leak (ASan run)
      assert.has_error(function() r:walk { from = "HEAD", hide = { 1 } } end, "hide[1] must be a string, not number")
      assert.has_error(function() r:commit_index { message = "m", parents = { "HEAD", false } } end)
      assert.has_error(function() r:push(".", { "refs/heads/main" }, { token = 5 }) end)
    end)
  end)

  describe("reading history", function()
    it("resolves revisions to commits, and reports a bad one as ENOTFOUND naming it", function()
      local dir, ids = repo_with { "one", "two" }
      G(dir, "tag", "-a", "v1", "-m", "annotated", ids[1])
      local r = assert(git.open(dir))
      assert.are.equal(ids[1], r:resolve("HEAD~1"))
      assert.are.equal(ids[1], r:resolve("v1"))
      assert.are.equal(ids[2], r:resolve(ids[2]:sub(1, 10)))
      for _, bad in ipairs { "nope", "HEAD~5", "main..." } do
        local oid, msg, code = r:resolve(bad)
        assert.is_nil(oid)
        assert.are.equal("ENOTFOUND", code)
        assert.matches(bad, msg, 1, true)
      end
      local _, msg, code = r:resolve("HEAD^{tree}")
      assert.are.equal("ENOTFOUND", code)
      assert.matches("not a commit", msg, 1, true)
    end)

    it("reads a commit: summary, body, people, parents", function()
      local dir, ids = repo_with { "one" }
      support.write(dir .. "/x", "x")
      G(dir, "add", "x")
      G(dir, "commit", "-q", "-m", "feat: add x\n\nLonger body,\nover two lines.\n\nRefs: #1")
      local r = assert(git.open(dir))
      local c = r:commit("HEAD")
      assert.are.equal(G(dir, "rev-parse", "HEAD"), c.id)
      assert.are.equal(G(dir, "rev-parse", "HEAD^{tree}"), c.tree)
      assert.are.equal("feat: add x", c.summary)
      assert.are.equal("Longer body,\nover two lines.\n\nRefs: #1", c.body)
      assert.are.equal("feat: add x\n\nLonger body,\nover two lines.\n\nRefs: #1\n", c.message)
      assert.are.same({ ids[1] }, c.parents)
      assert.are.equal("cdp-test", c.author.name)
      assert.are.equal("test@cdp.invalid", c.committer.email)
      assert.are.equal(tonumber(G(dir, "log", "-1", "--format=%ct")), c.time)
      assert.are.equal(c.time, c.committer.time)
      assert.is_number(c.author.offset)
      assert.are.same({}, r:commit(ids[1]).parents)
      local none, _, code = r:commit("missing")
      assert.is_nil(none)
      assert.are.equal("ENOTFOUND", code)
    end)

    describe("walk over a merge", function()
      local dir, c, r
      setup(function()
        dir = support.git_init()
        c = {}
        c.A = support.commit(dir, "A", { a = "1" })
        c.B = support.commit(dir, "B", { b = "1" })
        G(dir, "checkout", "-q", "-b", "feature")
        c.C = support.commit(dir, "C", { c = "1" })
        G(dir, "checkout", "-q", "main")
        c.D = support.commit(dir, "D", { d = "1" })
        G(dir, "merge", "-q", "--no-ff", "-m", "M", "feature")
        c.M = G(dir, "rev-parse", "HEAD")
        r = assert(git.open(dir))
      end)
      teardown(function() r:close() end)

      local function positions(list)
        local pos = {}
        for i, oid in ipairs(list) do
          pos[oid] = i
        end
        return pos
      end

      it("walks everything from HEAD newest first, children before parents", function()
        local all = r:walk()
        assert.are.equal(5, #all)
        assert.are.equal(c.M, all[1])
        assert.are.equal(c.A, all[5])
        local pos = positions(all)
        assert.is_true(pos[c.D] < pos[c.B] and pos[c.C] < pos[c.B])
        assert.are.same(all, r:walk { from = "main" })
        assert.are.same({ c.M, c.D }, r:walk { from = "main", limit = 2 })
        assert.are.same({}, r:walk { limit = 0 })
      end)

      it("follows first parents only", function()
        assert.are.same({ c.M, c.D, c.B, c.A }, r:walk { from = "main", first_parent = true })
      end)

      it("hides what is reachable from other revisions", function()
        assert.are.same({ c.M, c.D }, r:walk { from = "main", hide = { "feature" } })
        assert.are.same({ c.C }, r:walk { from = { "feature" }, hide = "main~1" })
        local walked = r:walk { from = { "feature", c.D }, hide = { c.B } }
        table.sort(walked)
        local expect = { c.C, c.D }
        table.sort(expect)
        assert.are.same(expect, walked)
        local none, msg, code = r:walk { hide = { "no-such-rev" } }
        assert.is_nil(none)
        assert.are.equal("ENOTFOUND", code)
        assert.matches("no-such-rev", msg, 1, true)
      end)

      it("finds merge bases and ancestry", function()
        assert.are.equal(c.B, r:merge_base("feature", "main~1"))
        assert.are.equal(c.C, r:merge_base("feature", "main"))
        assert.is_true(r:descendant_of("main", c.A))
        assert.is_false(r:descendant_of(c.A, "main"))
        assert.is_false(r:descendant_of("main", "main"))
        local none, _, code = r:descendant_of("main", "nope")
        assert.is_nil(none)
        assert.are.equal("ENOTFOUND", code)
      end)
    end)

    it("reads tree entries and blobs at a revision", function()
      local dir = support.git_init()
      support.commit(dir, "one", { ["crates/a/Cargo.toml"] = "[package]\nname = \"a\"\n", ["run.sh"] = "#!/bin/sh\n" })
      support.sh("chmod +x " .. q(dir .. "/run.sh"))
      support.commit(dir, "exec")
      support.commit(dir, "two", { ["crates/a/Cargo.toml"] = "changed\n" })
      local r = assert(git.open(dir))
      local oid, kind, mode = r:tree_entry("HEAD", "crates/a")
      assert.are.equal(G(dir, "rev-parse", "HEAD:crates/a"), oid)
      assert.are.equal("tree", kind)
      assert.are.equal(tonumber("40000", 8), mode)
      oid, kind, mode = r:tree_entry("HEAD~2", "crates/a/Cargo.toml")
      assert.are.equal(G(dir, "rev-parse", "HEAD~2:crates/a/Cargo.toml"), oid)
      assert.are.equal("blob", kind)
      assert.are.equal(tonumber("100644", 8), mode)
      assert.are.equal(tonumber("100755", 8), select(3, r:tree_entry("HEAD", "run.sh")))
      assert.are.equal(G(dir, "rev-parse", "HEAD^{tree}"), r:tree_entry("HEAD", ""))
      assert.are.equal(1, select("#", r:tree_entry("HEAD", "crates/b")))
      assert.is_nil(r:tree_entry("HEAD", "crates/b"))
      local _, _, code = r:tree_entry("nope", "crates")
      assert.are.equal("ENOTFOUND", code)

      assert.are.equal("[package]\nname = \"a\"\n", r:read_blob("HEAD~1", "crates/a/Cargo.toml"))
      assert.are.equal("changed\n", r:read_blob("HEAD", "crates/a/Cargo.toml"))
      local content, msg, code2 = r:read_blob("HEAD", "crates/a/missing.toml")
      assert.is_nil(content)
      assert.are.equal("ENOTFOUND", code2)
      assert.matches("crates/a/missing.toml", msg, 1, true)
      assert.are.equal("ENOTFOUND", select(3, r:read_blob("HEAD", "crates")))
    end)

    it("lists a commit's symbolic links and never reads one as a file", function()
      local dir = support.git_init()
      support.commit(dir, "crates", { ["crates/a/Cargo.toml"] = "[package]\n", ["docs/x.md"] = "x\n" })
      support.sh(("cd %s && ln -s /proc/self/environ crates/a/CHANGELOG.md && ln -s ../docs crates/b "
        .. "&& git add -A && git commit -qm links"):format(q(dir)))
      local r = assert(git.open(dir))
      assert.are.same({
        { path = "crates/a/CHANGELOG.md", target = "/proc/self/environ" },
        { path = "crates/b", target = "../docs" },
      }, r:symlinks("HEAD"))
      assert.are.same({}, r:symlinks("HEAD~1"))
      local content, msg, code = r:read_blob("HEAD", "crates/a/CHANGELOG.md")
      assert.is_nil(content)
      assert.are.equal("ELOOP", code)
      assert.matches("crates/a/CHANGELOG.md' is a symbolic link", msg, 1, true)
      assert.are.equal("ENOTFOUND", select(3, r:symlinks("nope")))
    end)
  end)

  describe("tags", function()
    it("lists lightweight and annotated tags sorted by name, peeled to commits", function()
      local dir, ids = repo_with { "one", "two", "three" }
      G(dir, "tag", "v0.2.0", ids[2])
      G(dir, "tag", "-a", "v1.0.0", "-m", "release 1.0.0", ids[3])
      G(dir, "tag", "a-v0.1.0", ids[1])
      local r = assert(git.open(dir))
      local tags = r:tags()
      assert.are.equal(3, #tags)
      assert.are.same({ "a-v0.1.0", "v0.2.0", "v1.0.0" }, { tags[1].name, tags[2].name, tags[3].name })
      assert.are.same({ name = "v0.2.0", target = ids[2], peeled = ids[2], annotated = false }, tags[2])
      assert.are.equal(G(dir, "rev-parse", "refs/tags/v1.0.0"), tags[3].target)
      assert.are_not.equal(ids[3], tags[3].target)
      assert.are.equal(ids[3], tags[3].peeled)
      assert.is_true(tags[3].annotated)
      assert.are.equal("release 1.0.0\n", tags[3].message)
      local v = r:tags { pattern = "v*" }
      assert.are.same({ "v0.2.0", "v1.0.0" }, { v[1].name, v[2].name })
      assert.are.same({}, r:tags { pattern = "nothing*" })
    end)

    -- What a plain Lua reading of the tags gives, to hold tag_candidates to:
    -- every (tag, template, crate) with TEMPLATE's text around a version
    -- starting with a digit, sorted by tag, template, then reading.
    local function expected_candidates(r, names, templates)
      local out = {}
      for _, tag in ipairs(r:tags()) do
        for ti, t in ipairs(templates) do
          local list = t:find("{crate}", 1, true) and names or { false }
          local readings = {}
          for _, name in ipairs(list) do
            local filled = name and t:gsub("{crate}", function() return name end) or t
            local before, after = filled:match("^(.-){version}(.*)$")
            local n = tag.name
            if #n > #before + #after and n:sub(1, #before) == before and n:sub(#n - #after + 1) == after then
              local v = n:sub(#before + 1, #n - #after)
              if v:match("^%d") then
                readings[#readings + 1] = { tag = n, crate = name or nil, template = templates[ti], version = v,
                  target = tag.target, peeled = tag.peeled, annotated = tag.annotated, at = #before }
              end
            end
          end
          table.sort(readings, function(a, b)
            if a.at ~= b.at then return a.at < b.at end
            return #a.version < #b.version
          end)
          for _, x in ipairs(readings) do
            x.at = nil
            out[#out + 1] = x
          end
        end
      end
      return out
    end

    it("finds release tags for crates and templates in one pass", function()
      local dir, ids = repo_with { "one", "two", "three", "four" }
      G(dir, "tag", "-a", "core-v1.0.0", "-m", "core 1.0.0", ids[1])
      G(dir, "tag", "core-v1.1.0", ids[2])
      G(dir, "tag", "-a", "core-util-v0.2.0", "-m", "x", ids[3])
      G(dir, "tag", "-a", "core-v2-v1.0.0", "-m", "x", ids[3]) -- core's "2-v1.0.0" and core-v2's 1.0.0
      G(dir, "tag", "core-vnext", ids[3])                        -- not a version
      G(dir, "tag", "v3.0.0", ids[4])
      G(dir, "tag", "-a", "cli@0.1.0", "-m", "x", ids[4])
      G(dir, "tag", "0.9.0-core", ids[2])                        -- {version}-{crate}
      G(dir, "tag", "-a", "packed-v1.0.0", "-m", "a tag of a tree", ids[4] .. "^{tree}")
      G(dir, "tag", "-a", "nested-v1.0.0", "-m", "outer", "core-v1.0.0")
      G(dir, "pack-refs", "--all")
      G(dir, "tag", "-a", "tree-v1.0.0", "-m", "a tag of a tree", ids[4] .. "^{tree}")
      G(dir, "tag", "-a", "core-v1.2.0", "-m", "loose, annotated", ids[4])
      G(dir, "tag", "cli@0.2.0", ids[4])                         -- loose, lightweight
      local r = assert(git.open(dir))
      local names = { "core", "core-util", "core-v2", "cli", "tree", "nested" }
      local templates = { "{crate}-v{version}", "{crate}@{version}", "v{version}", "{version}-{crate}" }
      local got = assert(r:tag_candidates(names, templates))
      assert.are.same(expected_candidates(r, names, templates), got)
      local by = {}
      for _, c in ipairs(got) do
        by[c.tag .. " " .. (c.crate or "-")] = c
      end
      assert.are.equal(ids[1], by["core-v1.0.0 core"].peeled)
      assert.is_true(by["core-v1.0.0 core"].annotated)
      assert.are_not.equal(ids[1], by["core-v1.0.0 core"].target)
      assert.are.equal(ids[4], by["core-v1.2.0 core"].peeled)
      assert.are.equal("2-v1.0.0", by["core-v2-v1.0.0 core"].version)
      assert.are.equal("1.0.0", by["core-v2-v1.0.0 core-v2"].version)
      assert.are.equal("3.0.0", by["v3.0.0 -"].version)
      assert.are.equal("0.9.0", by["0.9.0-core core"].version)
      assert.is_nil(by["tree-v1.0.0 tree"].peeled)
      assert.are.equal(ids[1], by["nested-v1.0.0 nested"].peeled)
      assert.is_nil(by["core-vnext core"])
      -- packed-refs records what a tag peels to, and that is taken as it is
      -- written: for a tag of a tree, the tree (the walk refuses it later)
      local packed = assert(r:tag_candidates({ "packed" }, { "{crate}-v{version}" }))
      assert.are.equal(G(dir, "rev-parse", ids[4] .. "^{tree}"), packed[1].peeled)
      assert.are.same({}, assert(r:tag_candidates({}, { "{crate}-v{version}" })))
      assert.are.same({}, assert(r:tag_candidates({ "core" }, {})))
    end)

    it("refuses a template without one {version}, and misuse", function()
      local dir = repo_with { "one" }
      local r = assert(git.open(dir))
      local list, msg, code = r:tag_candidates({ "a" }, { "{crate}-v{version}", "{crate}" })
      assert.is_nil(list)
      assert.are.equal("ETAG", code)
      assert.matches("'{crate}'", msg, 1, true)
      assert.has_error(function() r:tag_candidates("a", {}) end)
      assert.has_error(function() r:tag_candidates({ 1 }, {}) end)
      assert.has_error(function() r:tag_candidates({}, { true }) end)
    end)

    it("decides which commits are ancestors of one, in one walk", function()
      local dir, ids = repo_with { "one", "two", "three" }
      G(dir, "checkout", "-q", "-b", "side", ids[2])
      local side = support.commit(dir, "side", { side = "1" })
      G(dir, "checkout", "-q", "main")
      local r = assert(git.open(dir))
      local tree = G(dir, "rev-parse", "HEAD^{tree}")
      local got = assert(r:reachable(ids[3], { ids[1], ids[3], side, ids[2], ids[1], tree, ("0"):rep(40) }))
      assert.are.same({ [ids[1]] = true, [ids[2]] = true, [ids[3]] = true }, got)
      assert.are.same({ [ids[2]] = true, [side] = true }, assert(r:reachable(side, { side, ids[2], ids[3] })))
      assert.are.same({}, assert(r:reachable(ids[1], {})))
      local none, msg, code = r:reachable("no-such-rev", { ids[1] })
      assert.is_nil(none)
      assert.are.equal("ENOTFOUND", code)
      assert.matches("no-such-rev", msg, 1, true)
      assert.has_error(function() r:reachable(ids[1], { "abc" }) end)
      assert.has_error(function() r:reachable(ids[1], "x") end)
    end)

    it("creates annotated and lightweight tags the git CLI sees", function()
      local dir, ids = repo_with { "one", "two" }
      local r = assert(git.open(dir))
      local tag = assert(r:tag_create("v1.0.0", "HEAD", "Release v1.0.0\n", { tagger = { name = "Rel Bot", email = "bot@cdp.invalid" } }))
      assert.are.equal(G(dir, "rev-parse", "refs/tags/v1.0.0"), tag)
      assert.are.equal("tag", G(dir, "cat-file", "-t", "v1.0.0"))
      assert.are.equal(ids[2], G(dir, "rev-parse", "v1.0.0^{commit}"))
      assert.are.equal("Rel Bot <bot@cdp.invalid>", G(dir, "for-each-ref", "--format=%(taggername) %(taggeremail)", "refs/tags/v1.0.0"))
      local light = assert(r:tag_create("v0.9.0", "HEAD~1"))
      assert.are.equal(ids[1], light)
      assert.are.equal("commit", G(dir, "cat-file", "-t", "v0.9.0"))
      -- default tagger is the repository's identity
      assert(r:tag_create("v1.1.0", "HEAD", "again"))
      assert.are.equal("cdp-test", G(dir, "for-each-ref", "--format=%(taggername)", "refs/tags/v1.1.0"))
    end)

    it("never moves an existing tag, and names the commit it is at", function()
      local dir, ids = repo_with { "one", "two" }
      G(dir, "tag", "-a", "v1.0.0", "-m", "first", ids[1])
      local r = assert(git.open(dir))
      local tag, msg, code = r:tag_create("v1.0.0", "HEAD", "second")
      assert.is_nil(tag)
      assert.are.equal("EEXISTS", code)
      assert.matches("v1.0.0", msg, 1, true)
      assert.matches(ids[1], msg, 1, true)
      assert.is_nil(msg:find(ids[2], 1, true))
      assert.are.equal(ids[1], G(dir, "rev-parse", "v1.0.0^{commit}"))
      local _, _, code2 = r:tag_create("v1.0.0", "HEAD")
      assert.are.equal("EEXISTS", code2)
      local _, _, code3 = r:tag_create("v2", "no-such-rev", "x")
      assert.are.equal("ENOTFOUND", code3)
    end)

    it("deletes tags", function()
      local dir = repo_with { "one" }
      G(dir, "tag", "v1")
      local r = assert(git.open(dir))
      assert.is_true(r:tag_delete("v1"))
      assert.are.equal("", G(dir, "tag", "-l"))
      local ok, msg, code = r:tag_delete("v1")
      assert.is_nil(ok)
      assert.are.equal("ENOTFOUND", code)
      assert.matches("v1", msg, 1, true)
    end)
  end)

  describe("branches and references", function()
    it("lists, creates and checks out branches", function()
      local dir, ids = repo_with { "one", "two" }
      local r = assert(git.open(dir))
      assert.is_true(r:branch_create("feature/x", "HEAD~1"))
      assert.are.equal(ids[1], G(dir, "rev-parse", "feature/x"))
      assert.are.same({
        { name = "feature/x", target = ids[1], head = false },
        { name = "main", target = ids[2], head = true },
      }, r:branches())
      local ok, msg, code = r:branch_create("feature/x", "HEAD")
      assert.is_nil(ok)
      assert.are.equal("EEXISTS", code)
      assert.matches("feature/x", msg, 1, true)
      assert.is_true(r:branch_create("feature/x", "HEAD", { force = true }))
      assert.are.equal(ids[2], G(dir, "rev-parse", "feature/x"))

      assert.is_true(r:checkout("feature/x"))
      assert.are.equal("refs/heads/feature/x", r:head_ref())
      assert.are.equal("feature/x", G(dir, "symbolic-ref", "--short", "HEAD"))
      assert.is_true(r:checkout(ids[1]))
      assert.is_nil(r:head_ref())
      assert.are.equal(ids[1], r:head())
      assert.is_nil(support.read(dir .. "/file2.txt"))
      assert.are.equal("", G(dir, "status", "--porcelain"))
      assert.is_true(r:checkout("refs/heads/main"))
      assert.are.equal("refs/heads/main", r:head_ref())
      assert.are.equal("two\n", support.read(dir .. "/file2.txt"))
      local _, _, code2 = r:checkout("no-such-branch")
      assert.are.equal("ENOTFOUND", code2)
    end)

    it("sets, lists and deletes references", function()
      local dir, ids = repo_with { "one", "two" }
      local r = assert(git.open(dir))
      -- Nothing matches yet: an empty list, not a sort over no array (UBSan caught that).
      assert.are.same({}, r:references("refs/cdp/*"))
      assert.are.same({}, r:tags { pattern = "nothing-*" })
      assert.is_true(r:reference_set("refs/cdp/run-1/version", ids[1], "cdp: version stage"))
      assert.is_true(r:reference_set("refs/cdp/run-1/tag", ids[2]))
      assert.are.equal(ids[1], G(dir, "rev-parse", "refs/cdp/run-1/version"))
      assert.are.same({
        { name = "refs/cdp/run-1/tag", target = ids[2] },
        { name = "refs/cdp/run-1/version", target = ids[1] },
      }, r:references("refs/cdp/*"))
      local all = r:references()
      assert.are.equal(3, #all)
      assert.are.equal("refs/heads/main", all[3].name)

      local ok, msg, code = r:reference_set("refs/cdp/run-1/tag", ids[1], nil, { force = false })
      assert.is_nil(ok)
      assert.are.equal("EEXISTS", code)
      assert.matches("refs/cdp/run-1/tag", msg, 1, true)
      assert.is_true(r:reference_set("refs/cdp/run-1/tag", ids[1]))
      assert.are.equal(ids[1], G(dir, "rev-parse", "refs/cdp/run-1/tag"))
      local _, _, code2 = r:reference_set("refs/cdp/x", ("0"):rep(39) .. "1")
      assert.are.equal("ENOTFOUND", code2)

      assert.is_true(r:reference_delete("refs/cdp/run-1/tag"))
      assert.are.same({ { name = "refs/cdp/run-1/version", target = ids[1] } }, r:references("refs/cdp/*"))
      local _, _, code3 = r:reference_delete("refs/cdp/run-1/tag")
      assert.are.equal("ENOTFOUND", code3)
    end)
  end)

  describe("work tree, index and commits", function()
    it("reports status sorted by path, and whether the tree is clean", function()
      local dir = support.git_init()
      support.commit(dir, "base", { ["a.txt"] = "a\n", ["b.txt"] = "b\n", ["c.txt"] = "c\n" })
      local r = assert(git.open(dir))
      assert.are.same({}, r:status())
      assert.is_true((r:is_clean()))
      support.write(dir .. "/a.txt", "changed\n")
      os.remove(dir .. "/b.txt")
      support.write(dir .. "/d.txt", "d\n")
      G(dir, "add", "d.txt")
      support.write(dir .. "/e/e.txt", "e\n")
      G(dir, "mv", "c.txt", "f.txt")
      local expect = {
        { path = "a.txt", status = "modified", staged = false },
        { path = "b.txt", status = "deleted", staged = false },
        { path = "d.txt", status = "new", staged = true },
        { path = "e/e.txt", status = "new", staged = false },
        { path = "f.txt", status = "renamed", staged = true, old_path = "c.txt" },
      }
      assert.are.same(expect, r:status())
      local clean, status = r:is_clean()
      assert.is_false(clean)
      assert.are.same(expect, status)
      table.remove(expect, 4)
      assert.are.same(expect, r:status { untracked = false })

      assert.is_true(r:add { all = true })
      assert(r:commit_index { message = "everything" })
      assert.is_true((r:is_clean()))
      assert.are.equal("", G(dir, "status", "--porcelain"))

      support.write(dir .. "/new.txt", "n\n")
      assert.is_true((r:is_clean { untracked = false }))
      assert.is_false((r:is_clean()))
    end)

    it("adds paths and commits the index; the git CLI sees the commit", function()
      local dir, ids = repo_with { "one" }
      local r = assert(git.open(dir))
      support.write(dir .. "/crates/a/src/lib.rs", "pub fn a() {}\n")
      support.write(dir .. "/other.txt", "not added\n")
      assert.is_true(r:add { "crates/a" })
      local oid = assert(r:commit_index { message = "feat(a): add a\n\nBody.\n" })
      assert.are.equal(G(dir, "rev-parse", "HEAD"), oid)
      assert.are.equal(ids[1], G(dir, "rev-parse", "HEAD~1"))
      assert.are.equal("feat(a): add a", G(dir, "log", "-1", "--format=%s"))
      assert.are.equal("cdp-test <test@cdp.invalid>", G(dir, "log", "-1", "--format=%an <%ae>"))
      assert.are.equal("crates/a/src/lib.rs", G(dir, "show", "--format=", "--name-only", "HEAD"))
      assert.are.equal("?? other.txt", G(dir, "status", "--porcelain"))
      G(dir, "fsck", "--strict")

      -- removals are staged too, and explicit people and time are kept
      os.remove(dir .. "/file1.txt")
      assert.is_true(r:add { "file1.txt" })
      local oid2 = assert(r:commit_index {
        message = "chore: remove",
        author = { name = "Ann Author", email = "ann@cdp.invalid", time = 1700000000, offset = 60 },
        committer = { name = "Bot", email = "bot@cdp.invalid", time = 1700000100 },
      })
      assert.are.equal("Ann Author|ann@cdp.invalid|1700000000 +0100|Bot|1700000100",
        G(dir, "log", "-1", "--format=%an|%ae|%ad|%cn|%ct", "--date=raw", oid2))
      assert.are.equal("", G(dir, "ls-tree", "--name-only", "HEAD", "file1.txt"))
    end)

    it("commits with explicit parents and refs, and roots in an unborn repository", function()
      local dir = support.tmpdir() .. "/fresh"
      local r = assert(git.init(dir))
      support.write(dir .. "/README", "hi\n")
      r:config_set("user.name", "cdp-test")
      r:config_set("user.email", "test@cdp.invalid")
      assert(r:add { all = true })
      local root = assert(r:commit_index { message = "root" })
      assert.are.equal(root, G(dir, "rev-parse", "main"))
      assert.are.same({}, r:commit(root).parents)
      local orphan = assert(r:commit_index { message = "orphan", parents = {}, update_ref = "refs/heads/orphan" })
      assert.are.equal(orphan, G(dir, "rev-parse", "orphan"))
      assert.are.equal(root, r:head())
      assert.is_nil(r:merge_base("main", "orphan"))
      local loose = assert(r:commit_index { message = "loose", parents = { root, orphan }, update_ref = false })
      assert.are.same({ root, orphan }, r:commit(loose).parents)
      assert.are.equal(root, r:head())
    end)

    it("writes blobs and trees, commits a tree that is no work tree's, and lists trees", function()
      local dir, ids = repo_with { "one" }
      local r = assert(git.open(dir))
      local blob = assert(r:blob_create("journal line\n\0binary"))
      local crate = assert(r:blob_create("crate bytes"))
      local sub = assert(r:tree_create { { name = "a-1.0.0.crate", oid = crate } })
      local tree = assert(r:tree_create { { name = "journal.ndjson", oid = blob }, { name = "crates", oid = sub, type = "tree" } })
      local c = assert(r:commit_index { message = "state", tree = tree, parents = { ids[1] }, update_ref = "refs/cdp/runs/x",
        author = { name = "cdp", email = "cdp@cdp.invalid" } })
      assert.are.equal(tree, G(dir, "rev-parse", c .. "^{tree}"))
      assert.are.equal("journal line\n\0binary", r:read_blob(c, "journal.ndjson"))
      assert.are.equal("crate bytes", G(dir, "cat-file", "blob", c .. ":crates/a-1.0.0.crate"))
      assert.are.equal(ids[1], r:head(), "HEAD stays where it was")
      local top = assert(r:tree_list(c))
      assert.are.same({ "crates", "journal.ndjson" }, { top[1].name, top[2].name })
      assert.are.same({ "tree", "blob" }, { top[1].type, top[2].type })
      local crates = assert(r:tree_list(c, "crates"))
      assert.are.same({ { name = "a-1.0.0.crate", oid = crate, type = "blob", mode = 33188 } }, crates)
      assert.is_nil(r:tree_list(c, "logs"))
      local _, _, code = r:tree_list(c, "journal.ndjson")
      assert.are.equal("ENOTDIR", code)
      assert.has_error(function() r:tree_create { { name = "a/b", oid = blob } } end)
      assert.has_error(function() r:tree_create { { name = "x", oid = "nope" } } end)
      assert.has_error(function() r:commit_index { message = "m", tree = "nope" } end)
    end)

    it("reports a missing identity as ENOIDENTITY", function()
      local home = support.tmpdir()
      local dir = support.tmpdir() .. "/r"
      support.sh("git init -q -b main " .. q(dir))
      local code = [[
        local git = require "cdp.git"
        local r = assert(git.open(arg[1] or ...))
        local sig, msg, code = r:signature()
        print(sig, msg, code)
        print(r:commit_index { message = "x" })
        print(type(r:commit_index { message = "with author", author = { name = "A", email = "a@x" } }))
        print(r:tag_create("v1", "HEAD", "m"))
      ]]
      support.write(home .. "/s.lua", code)
      local out = support.sh("cd " .. q(dir) .. " && HOME=" .. q(home) .. " XDG_CONFIG_HOME=" .. q(home)
        .. " " .. q(absolute(support.cdp())) .. " " .. q(home .. "/s.lua") .. " " .. q(dir))
      local lines = {}
      for line in out:gmatch("[^\n]+") do
        lines[#lines + 1] = line
      end
      assert.are.equal("nil\tno git identity: set user.name and user.email\tENOIDENTITY", lines[1])
      assert.are.equal("nil\tno git identity: set user.name and user.email\tENOIDENTITY", lines[2])
      assert.are.equal("string", lines[3])
      assert.matches("ENOIDENTITY$", lines[4])
    end)

    it("reads and writes config, and the repository's identity", function()
      local dir = repo_with { "one" }
      local r = assert(git.open(dir))
      assert.are.equal("cdp-test", r:config_get("user.name"))
      assert.is_nil(r:config_get("cdp.nothing"))
      assert.is_true(r:config_set("cdp.stage", "version"))
      assert.are.equal("version", G(dir, "config", "cdp.stage"))
      assert.are.equal("version", r:config_get("cdp.stage"))
      assert.is_true(r:config_set("cdp.flag", true))
      assert.are.equal("true", G(dir, "config", "cdp.flag"))
      assert.are.same({ name = "cdp-test", email = "test@cdp.invalid" }, r:signature())
    end)
  end)

  describe("clone, push and fetch on disk", function()
    it("clones a local path with hard-linked objects and records origin", function()
      local src, ids = repo_with { "one", "two" }
      local dest = support.tmpdir() .. "/clone"
      local r = assert(git.clone(src, dest))
      assert.are.equal(ids[2], r:head())
      assert.are.equal("refs/heads/main", r:head_ref())
      assert.are.equal("two\n", support.read(dest .. "/file2.txt"))
      assert.are.same({ { name = "origin", url = src } }, r:remotes())
      assert.are.equal(src, G(dest, "config", "remote.origin.url"))
      local obj = object_path(src .. "/.git", ids[1])
      assert.is_string(support.read(obj))
      assert.are.equal(inode(obj), inode(object_path(dest .. "/.git", ids[1])))
      assert.are.equal(ids[2], G(dest, "rev-parse", "origin/main"))
    end)

    it("clones file:// URLs bare, by branch, or without checkout", function()
      local src, ids = repo_with { "one", "two" }
      G(src, "branch", "release", ids[1])
      local bare = assert(git.clone("file://" .. src, support.tmpdir() .. "/b.git", { bare = true }))
      assert.is_true(bare:is_bare())
      assert.are.equal(ids[2], bare:resolve("main"))
      assert.are.equal("file://" .. src, bare:remotes()[1].url)
      assert.are.equal(inode(object_path(src .. "/.git", ids[2])), inode(object_path(bare:path(), ids[2])))
      local dest = support.tmpdir() .. "/rel"
      local rel = assert(git.clone("file://" .. src, dest, { branch = "release" }))
      assert.are.equal("refs/heads/release", rel:head_ref())
      assert.are.equal(ids[1], rel:head())
      local dest2 = support.tmpdir() .. "/nocheckout"
      local nc = assert(git.clone(src, dest2, { checkout = false }))
      assert.are.equal(ids[2], nc:head())
      assert.is_nil(support.read(dest2 .. "/file1.txt"))
      local none, msg, code = git.clone(src .. "/missing", support.tmpdir() .. "/x")
      assert.is_nil(none)
      assert.is_string(code)
      assert.matches("missing", msg, 1, true)
      local _, _, exists = git.clone(src, dest)
      assert.are.equal("EEXISTS", exists)
    end)

    it("pushes to a bare repository by path, by file:// URL and by remote name; fetches back", function()
      local dir, ids = repo_with { "one", "two" }
      local bare = support.tmpdir() .. "/remote.git"
      support.sh("git init -q --bare -b main " .. q(bare))
      local r = assert(git.open(dir))
      assert.is_true(r:push(bare, { "refs/heads/main" }))
      assert.are.equal(ids[2], G(bare, "rev-parse", "refs/heads/main"))
      assert(r:tag_create("v1.0.0", "HEAD", "release"))
      assert.is_true(r:push("file://" .. bare, { "refs/tags/v1.0.0", "refs/heads/main:refs/heads/copy" }))
      assert.are.equal(ids[2], G(bare, "rev-parse", "v1.0.0^{commit}"))
      assert.are.equal(ids[2], G(bare, "rev-parse", "refs/heads/copy"))
      assert.is_true(r:remote_set("origin", bare))
      assert.are.same({ { name = "origin", url = bare } }, r:remotes())
      local three = support.commit(dir, "three", { x = "3" })
      assert.is_true(r:push("origin", "refs/heads/main"))
      assert.are.equal(three, G(bare, "rev-parse", "main"))

      -- another clone moves the remote; fetch by name brings it back
      local other = support.tmpdir() .. "/other"
      support.sh("git clone -q " .. q(bare) .. " " .. q(other))
      local four = support.commit(other, "four", { y = "4" })
      G(other, "push", "-q", "origin", "main")
      assert.is_true(r:fetch("origin"))
      assert.are.equal(four, G(dir, "rev-parse", "refs/remotes/origin/main"))
      assert.is_true(r:fetch("file://" .. bare, { "refs/heads/copy:refs/cdp/copy" }))
      assert.are.equal(ids[2], G(dir, "rev-parse", "refs/cdp/copy"))
      -- Explicit refspecs from a named remote fetch exactly those: a tag made on the
      -- remote is not followed into refs/tags on the side.
      G(other, "tag", "-a", "v9.9.9", "-m", "elsewhere")
      G(other, "push", "-q", "origin", "v9.9.9")
      assert.is_true(r:fetch("origin", { "+refs/tags/*:refs/cdp/remote-tags/*" }))
      assert.are.equal(four, G(dir, "rev-parse", "refs/cdp/remote-tags/v9.9.9^{commit}"))
      assert.are.same({}, r:references("refs/tags/v9*"))
      local _, msg, code = r:push("no-such-remote", { "refs/heads/main" })
      assert.are.equal("ENOTFOUND", code)
      assert.matches("no-such-remote", msg, 1, true)
    end)

    it("rejects a non-fast-forward push and leaves the remote unchanged", function()
      local dir, ids = repo_with { "one", "two" }
      local bare = support.tmpdir() .. "/remote.git"
      support.sh("git init -q --bare -b main " .. q(bare))
      local r = assert(git.open(dir))
      assert(r:push(bare, { "refs/heads/main" }))
      G(dir, "reset", "-q", "--hard", ids[1])
      local diverged = support.commit(dir, "diverged", { z = "z" })
      for _, target in ipairs { bare, "file://" .. bare } do
        local ok, msg, code = r:push(target, { "refs/heads/main" })
        assert.is_nil(ok)
        assert.are.equal("ENONFASTFORWARD", code)
        assert.matches("refs/heads/main", msg, 1, true)
        assert.matches(bare, msg, 1, true)
        assert.are.equal(ids[2], G(bare, "rev-parse", "main"))
      end
      -- a tag never moves either
      G(bare, "tag", "v1", ids[2])
      r:tag_create("v1", "HEAD")
      local _, msg, code = r:push(bare, { "refs/tags/v1" })
      assert.are.equal("EREJECTED", code)
      assert.matches("refs/tags/v1", msg, 1, true)
      -- forcing is the caller's explicit choice
      assert.is_true(r:push(bare, { "+refs/heads/main" }))
      assert.are.equal(diverged, G(bare, "rev-parse", "main"))
    end)
  end)

  -- A leased push moves a remote ref only from where the lease says it is:
  -- false for "absent", an oid for "there". Both outcomes of a race.
  local function leased_pushes(target, push_opts, remote_git)
    local dir, ids = repo_with { "one", "two", "three" }
    local r = assert(git.open(dir))
    local ref = "refs/cdp/runs/lease-" .. tostring(math.random(1e9))
    local function at(oid)
      assert(r:reference_set(ref, oid, "test", { force = true }))
    end
    local function opts(lease)
      local o = { lease = lease }
      for k, v in pairs(push_opts or {}) do o[k] = v end
      return o
    end
    at(ids[1])
    assert.is_true(r:push(target, { ref }, opts { [ref] = false }))
    assert.are.equal(ids[1], G(remote_git, "rev-parse", ref))
    -- a second start of the same run loses
    at(ids[2])
    local ok, msg, code = r:push(target, { ref }, opts { [ref] = false })
    assert.is_nil(ok)
    assert.are.equal("ESTALE", code)
    assert.matches(ref, msg, 1, true)
    assert.matches(ids[1], msg, 1, true)
    -- an update from where it is wins; a second from the old place loses
    assert.is_true(r:push(target, { ref }, opts { [ref] = ids[1] }))
    assert.are.equal(ids[2], G(remote_git, "rev-parse", ref))
    at(ids[3])
    local _, msg2, code2 = r:push(target, { ref }, opts { [ref] = ids[1] })
    assert.are.equal("ESTALE", code2)
    assert.matches("at " .. ids[2], msg2, 1, true)
    assert.are.equal(ids[2], G(remote_git, "rev-parse", ref))
    -- nothing is left behind on the remote
    assert.are.equal("", G(remote_git, "for-each-ref", "refs/cdp/incoming/"))
    assert.has_error(function() r:push(target, { ref }, opts { [ref] = "not-an-oid" }) end)
  end

  it("pushes with a lease to a path and a file:// remote", function()
    for _, scheme in ipairs { "", "file://" } do
      local bare = support.tmpdir() .. "/remote.git"
      support.sh("git init -q --bare -b main " .. q(bare))
      leased_pushes(scheme .. bare, nil, bare)
    end
  end)

  it("redacts credentials in remote URLs", function()
    local r = assert(git.open(repo_with { "one" }))
    assert.is_true(r:remote_set("gh", "https://bot:tok-123@example.invalid/org/repo.git"))
    assert.are.same({ { name = "gh", url = "https://***@example.invalid/org/repo.git" } }, r:remotes())
    assert.is_true(r:remote_set("gh", "https://example.invalid/org/other.git"))
    assert.are.equal("https://example.invalid/org/other.git", r:remotes()[1].url)
  end)

  describe("smart HTTP with a token", function()
    local TOKEN = "s3cr3t-token-4242"
    local root, server, url, log

    local function count(pattern)
      local n = 0
      for _ in (support.read(log) or ""):gmatch(pattern) do
        n = n + 1
      end
      return n
    end

    setup(function()
      root = support.tmpdir()
      support.sh("git init -q --bare -b main " .. q(root .. "/repo.git"))
      support.sh("git -C " .. q(root .. "/repo.git") .. " config http.receivepack true")
      local tmp = support.tmpdir()
      log = tmp .. "/log"
      local pid = support.sh("python3 " .. q(FIXTURE) .. " --root " .. q(root) .. " --token " .. q(TOKEN)
        .. " --port 0 >" .. q(tmp .. "/port") .. " 2>>" .. q(log) .. " </dev/null & echo $!")
      server = { pid = pid:match("%d+") }
      for _ = 1, 100 do
        local port = (support.read(tmp .. "/port") or ""):match("PORT (%d+)")
        if port then
          url = "http://127.0.0.1:" .. port .. "/repo.git"
          return
        end
        os.execute("sleep 0.1")
      end
      error("git_http_server.py did not start:\n" .. (support.read(log) or ""))
    end)

    teardown(function()
      if server and server.pid then
        os.execute("kill " .. server.pid .. " 2>/dev/null")
      end
    end)

    it("pushes with the right token", function()
      local dir, ids = repo_with { "one", "two" }
      local r = assert(git.open(dir))
      assert.is_true(r:push(url, { "refs/heads/main" }, { token = TOKEN }))
      assert.are.equal(ids[2], G(root .. "/repo.git", "rev-parse", "refs/heads/main"))
      assert.is_true(r:push(url, { "refs/heads/main:refs/heads/bot" }, { token = TOKEN, username = "cdp-bot" }))
      assert.are.equal(ids[2], G(root .. "/repo.git", "rev-parse", "refs/heads/bot"))
    end)

    it("fails promptly with EAUTH for a wrong or missing token, and never shows it", function()
      local dir = repo_with { "one" }
      local r = assert(git.open(dir))
      local before = count(" 401\n")
      local ok, msg, code = r:push(url, { "refs/heads/main:refs/heads/wrong" }, { token = "wrong-" .. TOKEN })
      assert.is_nil(ok)
      assert.are.equal("EAUTH", code)
      assert.matches(url, msg, 1, true)
      assert.is_nil(msg:find("wrong-", 1, true))
      assert.is_nil(msg:find(TOKEN, 1, true))
      -- one challenge, one refused answer: no retry loop
      assert.is_true(count(" 401\n") - before <= 2)
      local _, msg2, code2 = r:push(url, { "refs/heads/main:refs/heads/wrong" })
      assert.are.equal("EAUTH", code2)
      assert.is_string(msg2)
      local with_userinfo = url:gsub("^http://", "http://user:" .. "pw-" .. TOKEN .. "@")
      local _, msg3, code3 = r:fetch(with_userinfo, { "refs/heads/main:refs/x" })
      assert.are.equal("EAUTH", code3)
      assert.is_nil(msg3:find(TOKEN, 1, true))
      assert.matches("***@127.0.0.1", msg3, 1, true)
      assert.has_error(function() G(root .. "/repo.git", "rev-parse", "--verify", "-q", "refs/heads/wrong") end)
    end)

    it("fetches and clones with the token", function()
      local up = repo_with { "one", "two", "three" }
      local upr = assert(git.open(up))
      assert(upr:push(url, { "+refs/heads/main:refs/heads/fetchme" }, { token = TOKEN }))
      local dir = repo_with { "other" }
      local r = assert(git.open(dir))
      assert.is_true(r:fetch(url, { "refs/heads/fetchme:refs/remotes/http/fetchme" }, { token = TOKEN }))
      assert.are.equal(upr:head(), G(dir, "rev-parse", "refs/remotes/http/fetchme"))
      local _, _, code = r:fetch(url, { "refs/heads/fetchme:refs/remotes/http/x" }, { token = "nope" })
      assert.are.equal("EAUTH", code)
      local dest = support.tmpdir() .. "/c"
      local c = assert(git.clone(url, dest, { token = TOKEN, branch = "fetchme" }))
      assert.are.equal(upr:head(), c:head())
      assert.are.equal(url, c:remotes()[1].url)
      local none, msg, code2 = git.clone(url, support.tmpdir() .. "/d", { token = "bad-token" })
      assert.is_nil(none)
      assert.are.equal("EAUTH", code2)
      assert.is_nil(msg:find("bad-token", 1, true))
    end)

    it("reports a ref refused by the server as EREJECTED naming it", function()
      local hook = root .. "/repo.git/hooks/update"
      support.write(hook, '#!/bin/sh\ncase "$1" in refs/heads/blocked) echo "blocked by policy" >&2; exit 1;; esac\nexit 0\n')
      support.sh("chmod +x " .. q(hook))
      local dir = repo_with { "one" }
      local r = assert(git.open(dir))
      local ok, msg, code = r:push(url, { "refs/heads/main:refs/heads/blocked" }, { token = TOKEN })
      os.remove(hook)
      assert.is_nil(ok)
      assert.are.equal("EREJECTED", code)
      assert.matches("ref refs/heads/blocked rejected by " .. url, msg, 1, true)
    end)

    it("pushes with a lease, compared by the server", function()
      leased_pushes(url, { token = TOKEN }, root .. "/repo.git")
    end)

    it("reports an unreachable server as ENETWORK", function()
      local r = assert(git.open(repo_with { "one" }))
      local _, _, code = r:fetch("http://127.0.0.1:1/repo.git", { "refs/heads/main:refs/x" }, { token = TOKEN })
      assert.are.equal("ENETWORK", code)
    end)

    -- A second server that accepts the same token, on another loopback address, and a
    -- first one that redirects there: the token must never reach the second.
    local function start(args)
      local tmp = support.tmpdir()
      local pid = support.sh("python3 " .. q(FIXTURE) .. " --root " .. q(root) .. " --token " .. q(TOKEN)
        .. " --port 0 " .. args .. " >" .. q(tmp .. "/port") .. " 2>>" .. q(tmp .. "/log") .. " </dev/null & echo $!")
      for _ = 1, 100 do
        local port = (support.read(tmp .. "/port") or ""):match("PORT (%d+)")
        if port then
          return { pid = pid:match("%d+"), port = port, log = tmp .. "/log" }
        end
        os.execute("sleep 0.1")
      end
      error("git_http_server.py did not start:\n" .. (support.read(tmp .. "/log") or ""))
    end

    it("never sends the token where a redirect points, before or after authentication", function()
      local other = start("--host 127.0.0.2")
      local before = start("--redirect-to http://127.0.0.2:" .. other.port)
      local after = start("--redirect-to http://127.0.0.2:" .. other.port .. " --redirect-after-auth")
      local r = assert(git.open(repo_with { "one" }))
      for _, first in ipairs { before, after } do
        local at = "http://127.0.0.1:" .. first.port .. "/repo.git"
        local ok, msg, code = r:push(at, { "refs/heads/main:refs/heads/redirected" }, { token = TOKEN })
        assert.is_nil(ok)
        assert.are.equal("EREDIRECT", code, msg)
        assert.matches("push to " .. at .. ": the server redirects elsewhere", msg, 1, true)
        assert.is_nil(msg:find(TOKEN, 1, true))
        local _, _, fcode = r:fetch(at, { "refs/heads/main:refs/x" }, { token = TOKEN })
        assert.are.equal("EREDIRECT", fcode)
      end
      os.execute("kill " .. other.pid .. " " .. before.pid .. " " .. after.pid)
      -- The other server was never asked for anything: no request carried the token there.
      assert.are.equal("", support.read(other.log) or "")
      assert.is_false((pcall(G, root .. "/repo.git", "rev-parse", "--verify", "-q", "refs/heads/redirected")))
    end)

    it("sends a token over plain http only to a loopback address", function()
      local r = assert(git.open(repo_with { "one" }))
      local ok, msg, code = r:push("http://git.example.invalid/org/repo.git", { "refs/heads/main" }, { token = TOKEN })
      assert.is_nil(ok)
      assert.are.equal("EINSECURE", code)
      assert.matches("push to http://git.example.invalid/org/repo.git: a token is sent only over https://", msg, 1, true)
      assert.are.equal("EINSECURE", select(3, r:fetch("http://10.0.0.1/x.git", { "refs/heads/main:refs/x" }, { token = TOKEN })))
      assert.are.equal("EINSECURE", select(3, git.clone("http://10.0.0.1/x.git", support.tmpdir() .. "/c", { token = TOKEN })))
      -- without a token, plain http anywhere is the caller's business (and fails here for want of a host)
      assert.are_not.equal("EINSECURE", select(3, r:fetch("http://git.example.invalid/x.git", { "refs/heads/main:refs/x" })))
    end)
  end)
end)
