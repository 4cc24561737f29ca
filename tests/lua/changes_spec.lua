-- Repository:changes — the change set of every crate in one walk, checked
-- against `git log TAG..HEAD -- DIR` on real repositories made with git.
local support = require "tests.lua.support"
local git = require "cdp.git"

local q = support.quote

-- Commits get distinct, increasing times, as real histories mostly do.
local clock = 1700000000
local function tick()
  clock = clock + 60
  return ("@%d +0000"):format(clock)
end

-- Write FILES ({ path = content, path = false to delete }) and commit them.
local function commit(dir, message, files)
  for path, content in pairs(files or {}) do
    if content then
      support.write(dir .. "/" .. path, content)
    else
      support.sh("rm -rf " .. q(dir .. "/" .. path))
    end
  end
  support.git(dir, "add", "-A")
  local date = tick()
  support.sh(("cd %s && GIT_AUTHOR_DATE=%s GIT_COMMITTER_DATE=%s git commit -q --allow-empty -m %s")
    :format(q(dir), q(date), q(date), q(message)))
  return support.git(dir, "rev-parse", "HEAD")
end

-- Merge BRANCH into the current branch; EXTRA files make it an evil merge.
local function merge(dir, branch, message, extra)
  support.git(dir, "merge", "-q", "--no-ff", "--no-commit", branch)
  return commit(dir, message, extra)
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do
    t[#t + 1] = l
  end
  return t
end

-- `git log --format=%H REVS -- PATHSPEC...` as a list of ids.
local function git_log(dir, revs, ...)
  local args = { "log", "--format=%H" }
  for w in revs:gmatch("%S+") do
    args[#args + 1] = w
  end
  args[#args + 1] = "--"
  for _, p in ipairs { ... } do
    args[#args + 1] = p
  end
  return lines(support.git(dir, table.unpack(args)))
end

-- repo:changes, then the ids per crate index, in list order.
local function per_crate(repo, opts)
  local list, stats = assert(repo:changes(opts))
  local ids = {}
  for i = 1, #opts.paths do
    ids[i] = {}
  end
  for _, c in ipairs(list) do
    for _, i in ipairs(c.paths) do
      table.insert(ids[i], c.id)
    end
  end
  return ids, list, stats
end

local function sorted(t)
  local c = { table.unpack(t) }
  table.sort(c)
  return c
end

-- Every listed commit comes before its listed parents.
local function assert_topological(list)
  local pos = {}
  for i, c in ipairs(list) do
    pos[c.id] = i
  end
  for i, c in ipairs(list) do
    for _, p in ipairs(c.parents) do
      if pos[p] then
        assert.is_true(pos[p] > i, "parent listed before child " .. c.id)
      end
    end
  end
end

local function crate_files(name, v)
  return {
    ["crates/" .. name .. "/Cargo.toml"] = ('[package]\nname = "%s"\nversion = "%s"\n'):format(name, v or "0.1.0"),
    ["crates/" .. name .. "/src/lib.rs"] = "// " .. name .. " " .. (v or "0") .. "\n",
  }
end

local function merged(...)
  local t = {}
  for _, f in ipairs { ... } do
    for k, v in pairs(f) do
      t[k] = v
    end
  end
  return t
end

-- A long linear history through git fast-import: crates a and b alternate;
-- crate n appears at commit ADD_N. Tags: a at TAG_A, b at TAG_B.
local function long_history(n_commits, add_n, tag_a, tag_b)
  local dir = support.git_init()
  local parts = {}
  local function data(s)
    parts[#parts + 1] = ("data %d\n%s\n"):format(#s, s)
  end
  for i = 1, n_commits do
    parts[#parts + 1] = ("commit refs/heads/main\nmark :%d\n"):format(i)
    parts[#parts + 1] = ("committer T <t@cdp.invalid> %d +0000\n"):format(1600000000 + i * 60)
    data(("fix: change %d"):format(i))
    if i > 1 then
      parts[#parts + 1] = ("from :%d\n"):format(i - 1)
    end
    if i == 1 then
      parts[#parts + 1] = "M 100644 inline Cargo.toml\n"
      data('[workspace]\nmembers = ["crates/*"]\n')
    end
    local crate = i % 2 == 0 and "a" or "b"
    if i >= add_n and i % 3 == 0 then
      crate = "n"
    end
    parts[#parts + 1] = ("M 100644 inline crates/%s/src/lib.rs\n"):format(crate)
    data(("// %d\n"):format(i))
  end
  parts[#parts + 1] = ("reset refs/tags/a-v1\nfrom :%d\n\n"):format(tag_a)
  parts[#parts + 1] = ("reset refs/tags/b-v1\nfrom :%d\n\n"):format(tag_b)
  local stream = support.tmpdir() .. "/stream"
  support.write(stream, table.concat(parts))
  support.sh(("git -C %s fast-import --quiet < %s"):format(q(dir), q(stream)))
  return dir
end

describe("Repository:changes", function()
  describe("on a linear history", function()
    local dir, repo, tags
    setup(function()
      dir = support.git_init()
      tags = {}
      commit(dir, "chore: init", merged({ ["Cargo.toml"] = "[workspace]\n" }, crate_files("a"), crate_files("b"), crate_files("c")))
      commit(dir, "feat(a): one", { ["crates/a/src/lib.rs"] = "a1" })
      tags.a = commit(dir, "fix(b): one", { ["crates/b/src/lib.rs"] = "b1" })
      support.git(dir, "tag", "a-v0.1.0")
      commit(dir, "feat(a): two", { ["crates/a/src/lib.rs"] = "a2" })
      commit(dir, "feat: a and c", { ["crates/a/src/lib.rs"] = "a3", ["crates/c/src/lib.rs"] = "c1" })
      tags.b = commit(dir, "docs: readme", { ["README.md"] = "hi" })
      support.git(dir, "tag", "-a", "-m", "b release", "b-v0.1.0")
      commit(dir, "fix(b): two", { ["crates/b/src/lib.rs"] = "b2" })
      commit(dir, "refactor(c): two", { ["crates/c/src/x.rs"] = "c2" })
      commit(dir, "chore(a): revert to a2 content", { ["crates/a/src/lib.rs"] = "a2" })
      tags.c = commit(dir, "fix(c): three", { ["crates/c/src/x.rs"] = "c3" })
      repo = assert(git.open(dir))
    end)

    it("gives each crate the commits git log gives for TAG..HEAD -- DIR", function()
      local paths = { "crates/a", "crates/b", "crates/c" }
      local since = { tags.a, tags.b, false }
      local ids, list = per_crate(repo, { from = "HEAD", paths = paths, since = since })
      assert.are.same(git_log(dir, "a-v0.1.0..HEAD", "crates/a"), ids[1])
      assert.are.same(git_log(dir, "b-v0.1.0..HEAD", "crates/b"), ids[2])
      assert.are.same(git_log(dir, "HEAD", "crates/c"), ids[3])
      assert.are.equal(3, #ids[1])
      assert_topological(list)
    end)

    it("fills in every field of a commit", function()
      local list = assert(repo:changes { paths = { "crates/c" }, since = { tags.b } })
      local c = list[1]
      assert.are.equal(support.git(dir, "rev-parse", "HEAD"), c.id)
      assert.are.equal("fix(c): three", c.summary)
      assert.are.equal("fix(c): three\n", c.message)
      assert.are.equal("cdp-test", c.author)
      assert.are.equal("test@cdp.invalid", c.email)
      assert.are.equal(tonumber(support.git(dir, "log", "-1", "--format=%ct")), c.time)
      assert.are.same({ support.git(dir, "rev-parse", "HEAD~1") }, c.parents)
      assert.are.same({ 1 }, c.paths)
    end)

    it("lists crates in ascending index order and a commit once", function()
      local list = assert(repo:changes { paths = { "crates/c", "crates/b", "crates/a" }, since = { false, false, false } })
      local both
      for _, c in ipairs(list) do
        if c.summary == "feat: a and c" then
          both = c
        end
      end
      assert.are.same({ 1, 3 }, both.paths)
      local seen = {}
      for _, c in ipairs(list) do
        assert.is_nil(seen[c.id])
        seen[c.id] = true
      end
    end)

    it("has no commits for a crate released at HEAD", function()
      local head = support.git(dir, "rev-parse", "HEAD")
      local ids, _, stats = per_crate(repo, { paths = { "crates/a", "crates/b" }, since = { head, tags.b } })
      assert.are.same({}, ids[1])
      assert.are.same(git_log(dir, "b-v0.1.0..HEAD", "crates/b"), ids[2])
      local none, _, st = per_crate(repo, { paths = { "crates/a", "crates/c" }, since = { head, head } })
      assert.are.same({ {}, {} }, none)
      assert.are.equal(1, st.walked) -- HEAD is dead from the start
      assert.is_true(stats.walked <= 10)
    end)

    it("peels an annotated tag and accepts any rev", function()
      local tag_oid = support.git(dir, "rev-parse", "b-v0.1.0")
      assert.are_not.equal(tags.b, tag_oid)
      local by_tag = per_crate(repo, { paths = { "crates/b" }, since = { tag_oid } })
      local by_name = per_crate(repo, { paths = { "crates/b" }, since = { "b-v0.1.0" } })
      local by_commit = per_crate(repo, { paths = { "crates/b" }, since = { tags.b } })
      assert.are.same(by_commit, by_tag)
      assert.are.same(by_commit, by_name)
    end)

    it("accepts ./dir/ spellings of a crate directory", function()
      local a = per_crate(repo, { paths = { "./crates/a/" }, since = { tags.a } })
      assert.are.same(git_log(dir, "a-v0.1.0..HEAD", "crates/a"), a[1])
    end)

    it("counts a commit that restores older content, since the tree differs from its parent's", function()
      local ids = per_crate(repo, { paths = { "crates/a" }, since = { tags.a } })
      assert.are.equal("chore(a): revert to a2 content", support.git(dir, "log", "-1", "--format=%s", ids[1][1]))
    end)

    it("walks from an older commit", function()
      local ids = per_crate(repo, { from = "HEAD~3", paths = { "crates/a", "crates/c" }, since = { tags.a, false } })
      assert.are.same(git_log(dir, "a-v0.1.0..HEAD~3", "crates/a"), ids[1])
      assert.are.same(git_log(dir, "HEAD~3", "crates/c"), ids[2])
    end)
  end)

  describe("with a root crate and member crates", function()
    it("gives the root crate only what it ships: no member's files, no nested package's", function()
      local dir = support.git_init()
      commit(dir, "chore: init", merged({ ["Cargo.toml"] = "[package]\nname = \"root\"\n", ["src/main.rs"] = "" }, crate_files("a"), crate_files("b")))
      local base = commit(dir, "feat: root", { ["src/main.rs"] = "fn main() {}" })
      commit(dir, "feat(a): x", { ["crates/a/src/lib.rs"] = "x" })
      commit(dir, "docs: crates readme", { ["crates/README.md"] = "members" })
      commit(dir, "feat(b): y", { ["crates/b/src/lib.rs"] = "y", ["build.rs"] = "" })
      commit(dir, "feat(c): new crate", crate_files("c"))
      local repo = assert(git.open(dir))
      local ids = per_crate(repo, { paths = { "", "crates/a", "crates/b" }, since = { base, base, base } })
      assert.are.same(git_log(dir, base .. "..HEAD", ".", ":!crates/a", ":!crates/b", ":!crates/c"), ids[1])
      assert.are.same(git_log(dir, base .. "..HEAD", "crates/a"), ids[2])
      assert.are.same(git_log(dir, base .. "..HEAD", "crates/b"), ids[3])
      assert.are.equal(2, #ids[1]) -- crates/README.md, build.rs; crates/c is a package of its own
      local all = per_crate(repo, { paths = { "." }, since = { false } })
      assert.are.same(git_log(dir, "HEAD", ".", ":!crates/a", ":!crates/b", ":!crates/c"), all[1])
    end)
  end)

  describe("with a nested crate", function()
    it("gives a change inside the nested crate to it alone", function()
      local dir = support.git_init()
      local base = commit(dir, "chore: init", merged(crate_files("a"), { ["crates/a/sub/Cargo.toml"] = "[package]\n" }))
      commit(dir, "feat(sub): inner", { ["crates/a/sub/src/lib.rs"] = "inner" })
      commit(dir, "feat(a): outer", { ["crates/a/src/lib.rs"] = "outer" })
      commit(dir, "feat: both", { ["crates/a/src/lib.rs"] = "o2", ["crates/a/sub/src/lib.rs"] = "i2" })
      commit(dir, "feat(sub): sub-sub", { ["crates/a/sub/deep/x.rs"] = "x" })
      commit(dir, "chore: remove sub", { ["crates/a/sub"] = false })
      local repo = assert(git.open(dir))
      local ids = per_crate(repo, { paths = { "crates/a", "crates/a/sub" }, since = { base, base } })
      assert.are.same(git_log(dir, base .. "..HEAD", "crates/a", ":!crates/a/sub"), ids[1])
      assert.are.same(git_log(dir, base .. "..HEAD", "crates/a/sub"), ids[2])
      assert.are.equal(2, #ids[1])
      assert.are.equal(4, #ids[2])
      -- Not asked for, the nested package is still not the outer crate's: cargo
      -- package leaves any directory with a Cargo.toml of its own out.
      local alone = per_crate(repo, { paths = { "crates/a" }, since = { base } })
      assert.are.same(git_log(dir, base .. "..HEAD", "crates/a", ":!crates/a/sub"), alone[1])
    end)
  end)

  describe("with a never-released crate", function()
    it("stops at the commit that adds its directory", function()
      -- 400 commits; n appears at 380; a and b were released at 390 and 385.
      local dir = long_history(400, 380, 390, 385)
      local repo = assert(git.open(dir))
      local a = support.git(dir, "rev-parse", "a-v1")
      local b = support.git(dir, "rev-parse", "b-v1")
      local ids, _, stats = per_crate(repo, { paths = { "crates/a", "crates/b", "crates/n" }, since = { a, b, false } })
      assert.are.same(git_log(dir, "a-v1..HEAD", "crates/a"), ids[1])
      assert.are.same(git_log(dir, "b-v1..HEAD", "crates/b"), ids[2])
      assert.are.same(git_log(dir, "HEAD", "crates/n"), ids[3])
      local adding = ids[3][#ids[3]]
      assert.are.equal("", support.git(dir, "ls-tree", adding .. "~1", "crates/n"))
      -- Down to 379, the adding commit's parent, and 5 more against clock
      -- skew, as git reads.
      assert.is_true(stats.walked <= 28, "walked " .. stats.walked)

      local alone, _, st = per_crate(repo, { paths = { "crates/n" }, since = { false } })
      assert.are.same(ids[3], alone[1])
      assert.is_true(st.walked <= 28, "walked " .. st.walked)
    end)

    it("walks the whole history of a crate that was always there", function()
      local dir = long_history(60, 50, 55, 55)
      local repo = assert(git.open(dir))
      local ids, _, stats = per_crate(repo, { paths = { "crates/a" }, since = { false } })
      assert.are.same(git_log(dir, "HEAD", "crates/a"), ids[1])
      assert.are.equal(60, stats.walked)
    end)

    it("has nothing for a crate missing at from", function()
      local dir = long_history(30, 20, 25, 25)
      local repo = assert(git.open(dir))
      local ids, _, stats = per_crate(repo, { paths = { "crates/zz" }, since = { false } })
      assert.are.same({}, ids[1])
      -- HEAD only: the crate is known missing there before anything is read.
      assert.are.equal(1, stats.walked)
    end)
  end)

  describe("with merges", function()
    local dir, repo, base, plain, evil
    setup(function()
      dir = support.git_init()
      base = commit(dir, "chore: init", merged(crate_files("a"), crate_files("b")))
      support.git(dir, "tag", "v0")
      support.git(dir, "checkout", "-q", "-b", "topic")
      commit(dir, "feat(a): on topic", { ["crates/a/src/lib.rs"] = "topic 1" })
      commit(dir, "fix(a): on topic again", { ["crates/a/src/t.rs"] = "topic 2" })
      support.git(dir, "checkout", "-q", "main")
      commit(dir, "feat(b): on main", { ["crates/b/src/lib.rs"] = "main 1" })
      plain = merge(dir, "topic", "Merge topic")
      support.git(dir, "checkout", "-q", "-b", "topic2", base)
      commit(dir, "feat(a): second topic", { ["crates/a/src/u.rs"] = "u" })
      support.git(dir, "checkout", "-q", "main")
      commit(dir, "fix(a): on main", { ["crates/a/src/m.rs"] = "m" })
      evil = merge(dir, "topic2", "Merge topic2, evilly", { ["crates/a/src/lib.rs"] = "resolved" })
      repo = assert(git.open(dir))
    end)

    it("attributes the branch commits and not the merge, and an evil merge", function()
      local ids, list = per_crate(repo, { paths = { "crates/a", "crates/b" }, since = { base, base } })
      local want_a = git_log(dir, "v0..HEAD", "crates/a")
      assert.are.same(sorted(want_a), sorted(ids[1]))
      assert.are.equal(5, #ids[1])
      local has = {}
      for _, id in ipairs(ids[1]) do
        has[id] = true
      end
      assert.is_nil(has[plain])
      assert.is_true(has[evil])
      assert.are.same(git_log(dir, "v0..HEAD", "crates/b"), ids[2])
      assert_topological(list)
      assert.are.equal(evil, list[1].id)
    end)

    it("follows first parents only when asked", function()
      local ids, list = per_crate(repo, { paths = { "crates/a", "crates/b" }, since = { base, base }, first_parent = true })
      assert.are.same(git_log(dir, "--first-parent v0..HEAD", "crates/a"), ids[1])
      assert.are.same(git_log(dir, "--first-parent v0..HEAD", "crates/b"), ids[2])
      local chain = {}
      for _, id in ipairs(lines(support.git(dir, "rev-list", "--first-parent", "main"))) do
        chain[id] = true
      end
      for _, c in ipairs(list) do
        assert.is_true(chain[c.id], c.summary)
      end
      assert.are.equal(2, #list[1].parents) -- parents are all parents, even so
    end)

    it("excludes what a release on an unmerged branch can reach", function()
      support.git(dir, "checkout", "-q", "-b", "side", base)
      commit(dir, "feat(a): side", { ["crates/a/src/side.rs"] = "s" })
      local side = commit(dir, "feat(b): side", { ["crates/b/src/side.rs"] = "s" })
      support.git(dir, "checkout", "-q", "main")
      local r = assert(git.open(dir))
      local ids = per_crate(r, { paths = { "crates/a", "crates/b" }, since = { side, side } })
      assert.are.same(sorted(git_log(dir, side .. "..main", "crates/a")), sorted(ids[1]))
      assert.are.same(sorted(git_log(dir, side .. "..main", "crates/b")), sorted(ids[2]))
      -- A release off to the side of a topic commit hides only what it reaches.
      local topic1 = support.git(dir, "rev-parse", "topic~1")
      local t = per_crate(r, { paths = { "crates/a" }, since = { topic1 } })
      assert.are.same(sorted(git_log(dir, topic1 .. "..main", "crates/a")), sorted(t[1]))
    end)
  end)

  describe("with clock skew", function()
    it("still excludes what a release with an old timestamp reaches", function()
      -- Y is the root; R (released, its clock 80 minutes slow) and Z fork
      -- from it; M merges them. Y must not count for a: R reaches it.
      local dir = support.git_init()
      local function at(t, message, files)
        clock = t
        return commit(dir, message, files)
      end
      local y = at(1700100000, "feat: a and b", merged(crate_files("a"), crate_files("b")))
      local z = at(1700100300, "feat(a): z", { ["crates/a/src/lib.rs"] = "z" })
      support.git(dir, "checkout", "-q", "-b", "rel", y)
      local r = at(1700100000 - 4800, "fix(b): r", { ["crates/b/src/lib.rs"] = "r" })
      support.git(dir, "checkout", "-q", "main")
      clock = 1700100600
      merge(dir, "rel", "Merge rel")
      local repo = assert(git.open(dir))
      local ids = per_crate(repo, { paths = { "crates/a", "crates/b" }, since = { r, r } })
      assert.are.same({ z }, ids[1])
      assert.are.same(git_log(dir, r .. "..HEAD", "crates/a"), ids[1])
      assert.are.same(git_log(dir, r .. "..HEAD", "crates/b"), ids[2])
    end)
  end)

  describe("with a deleted crate directory", function()
    it("counts the commit that deletes it", function()
      local dir = support.git_init()
      local base = commit(dir, "chore: init", merged(crate_files("a"), crate_files("b")))
      commit(dir, "feat(a): x", { ["crates/a/src/lib.rs"] = "x" })
      local gone = commit(dir, "refactor!: drop a", { ["crates/a"] = false })
      commit(dir, "feat(b): y", { ["crates/b/src/lib.rs"] = "y" })
      local repo = assert(git.open(dir))
      local ids = per_crate(repo, { paths = { "crates/a", "crates/b" }, since = { base, base } })
      assert.are.same(git_log(dir, base .. "..HEAD", "crates/a"), ids[1])
      assert.are.equal(gone, ids[1][1])
    end)

    it("counts a crate directory that replaced a file of the same name", function()
      local dir = support.git_init()
      local base = commit(dir, "chore: init", { ["crates/a"] = "a file" })
      support.sh("rm " .. q(dir .. "/crates/a"))
      local made = commit(dir, "feat(a): now a crate", crate_files("a"))
      local repo = assert(git.open(dir))
      local ids = per_crate(repo, { paths = { "crates/a", "" }, since = { base, base } })
      assert.are.same({ made }, ids[1])
      assert.are.same({}, ids[2])
    end)
  end)

  -- The shapes of tests/fixtures/attribution.lua, walked with what the
  -- workspace model hands the walk: each crate's file set and inherited keys.
  describe("as cargo and git see it", function()
    local attribution = require "tests.fixtures.attribution"

    -- repo:changes over fixture H; returns the commit names per crate and the list.
    local function walk(h, extra)
      local repo = assert(git.open(h.dir))
      local paths, since, files, inherits = {}, {}, {}, {}
      for i, name in ipairs(h.names) do
        paths[i] = h.dirs[name]
        since[i] = (h.since or {})[name] or h.release
        files[i] = (h.files or {})[name] or false
        inherits[i] = (h.inherits or {})[name] or false
      end
      local opts = { paths = paths, since = since, files = files, inherits = inherits, manifest = "Cargo.toml",
        parse = true }
      for k, v in pairs(extra or {}) do
        opts[k] = v
      end
      local list, stats = assert(repo:changes(opts))
      local name_of = {}
      for n, id in pairs(h.at) do
        name_of[id] = n
      end
      local got = {}
      for _, n in ipairs(h.names) do
        got[n] = {}
      end
      for _, c in ipairs(list) do
        for _, i in ipairs(c.paths) do
          table.insert(got[h.names[i]], name_of[c.id] or c.id)
        end
      end
      assert_topological(list)
      return got, list, stats
    end

    -- Each crate's commits in LIST are what `git log SINCE..HEAD -- DIR` lists.
    local function as_git_log(h, list)
      for i, name in ipairs(h.names) do
        local ids = {}
        for _, c in ipairs(list) do
          for _, k in ipairs(c.paths) do
            if k == i then ids[#ids + 1] = c.id end
          end
        end
        local since = (h.since or {})[name] or h.release
        assert.are.same(git_log(h.dir, since .. "..HEAD", h.dirs[name]), ids)
      end
    end

    it("gives a root crate with an include list only what it ships", function()
      local h = attribution.root_include()
      local got = walk(h)
      assert.are.same(h.expect, got)
      -- what git log says for the files the include list names
      local want = {}
      for _, id in ipairs(git_log(h.dir, h.release .. "..HEAD", "src", "README.md", "Cargo.toml")) do
        for n, x in pairs(h.at) do
          if x == id then want[#want + 1] = n end
        end
      end
      assert.are.same(want, got.app)
    end)

    it("follows a merged maintenance branch as git log -- DIR does", function()
      local h = attribution.maintenance()
      local got, list = walk(h)
      assert.are.same(h.expect, got)
      as_git_log(h, list)
      -- Without simplification the branch's duplicate, experiment and revert
      -- would count for a: they are there, on the side the merge did not take.
      local full = {}
      for _, id in ipairs(git_log(h.dir, "--full-history " .. h.release .. "..HEAD", "crates/a")) do
        full[id] = true
      end
      assert.is_true(full[h.at.pick] and full[h.at.experiment] and full[h.at.revert])
    end)

    it("gives nothing of a branch merged right after a release to the released crate, as git log does", function()
      local h = attribution.merge_after_release()
      local got, list = walk(h)
      assert.are.same(h.expect, got)
      as_git_log(h, list)
      -- the pick is in the range: only history simplification leaves it out
      assert.are.same({ h.at.merge, h.at.pick }, git_log(h.dir, "--full-history " .. h.at.a_release .. "..HEAD", "crates/a"))
    end)

    it("counts an inherited [workspace.*] entry for the crates that inherit it, and says so", function()
      local h = attribution.workspace_dependencies()
      local got, list, stats = walk(h)
      assert.are.same(h.expect, got)
      local by_id = {}
      for _, c in ipairs(list) do
        by_id[c.id] = c
      end
      local serde = by_id[h.at.serde]
      assert.are.same({ [1] = { "dependencies.serde" } }, serde.inherited)
      assert.are.same({ [2] = { "package.rust-version" } }, by_id[h.at.msrv].inherited)
      assert.is_nil(by_id[h.at.c1].inherited)
      assert.are.equal("chore", serde.parsed.type)
      assert.is_true(stats.blobs >= 2 and stats.blobs <= 8, "manifests read: " .. stats.blobs)
      -- Without the keys, a change to the root manifest belongs to no crate.
      local bare = walk(h, { inherits = {} })
      assert.are.same({ a = {}, b = {}, c = { "c1" } }, bare)
    end)

    it("leaves out what an exclude list names, and brings back what it whitelists", function()
      local h = attribution.exclude_list()
      assert.are.same(h.expect, (walk(h)))
    end)

    it("leaves out packages nested in a crate, members or not", function()
      local h = attribution.nested_packages()
      assert.are.same(h.expect, (walk(h)))
    end)

    it("reports which releases the walk reached", function()
      local h = attribution.maintenance()
      local _, _, stats = walk(h)
      assert.are.same({ [h.release] = true }, stats.reachable)
      local repo = assert(git.open(h.dir))
      local _, st = assert(repo:changes { paths = { "crates/a" }, since = { h.at.pick }, from = h.at.fix })
      assert.are.same({}, st.reachable) -- the pick is on 1.0.x, not behind the fix
    end)

    it("marks each listed commit with the marks that reach it", function()
      local h = attribution.maintenance()
      local repo = assert(git.open(h.dir))
      local list = assert(repo:changes { paths = { "crates/a" }, since = { false },
        marks = { h.at.feat, h.at.after, h.release } })
      local marks = {}
      for _, c in ipairs(list) do
        marks[c.id] = table.concat(c.marks, ",")
      end
      assert.are.equal("2", marks[h.at.after])
      assert.are.equal("1,2", marks[h.at.feat])
      assert.are.equal("1,2", marks[h.at.fix])
      assert.are.equal("1,2,3", marks[h.at.init])
    end)

    it("keeps no messages when asked, and reads them again for body and footers", function()
      local h = attribution.maintenance()
      local repo = assert(git.open(h.dir))
      -- from the revert, on 1.0.x: its message has a body
      local opts = { from = h.at.revert, paths = { "crates/a", "crates/b" }, since = { false, false }, parse = true }
      local with = assert(repo:changes(opts))
      opts.messages = false
      local without = assert(repo:changes(opts))
      repo:close() -- the messages come from the repository's path, opened again
      assert.are.equal(#with, #without)
      for i, c in ipairs(without) do
        assert.is_nil(c.message)
        assert.are.equal(with[i].summary, c.summary)
        for _, k in ipairs { "type", "scope", "breaking", "description", "header", "body", "footers" } do
          assert.are.same(with[i].parsed[k], c.parsed[k], k)
        end
      end
      local revert
      for _, c in ipairs(without) do
        if c.id == h.at.revert then revert = c end
      end
      assert.matches("This reverts commit " .. h.at.experiment, revert.parsed.body, 1, true)
    end)

    it("parses every message once, with body and footers on demand", function()
      local h = attribution.maintenance()
      local _, list = walk(h)
      local commits = require "cdp.commits"
      for _, c in ipairs(list) do
        local want = commits.reference_parse(c.message)
        for _, k in ipairs { "type", "scope", "breaking", "breaking_note", "description", "header",
          "conventional", "body", "footers" } do
          assert.are.same(want[k], c.parsed[k], k .. " of " .. c.summary)
        end
        assert.are.same(want.revert, c.parsed.revert)
      end
    end)
  end)

  describe("errors", function()
    local dir, repo
    setup(function()
      dir = support.git_init()
      commit(dir, "chore: init", crate_files("a"))
      repo = assert(git.open(dir))
    end)

    it("names a bad from rev", function()
      local list, msg, code = repo:changes { from = "no-such-rev", paths = { "crates/a" }, since = { false } }
      assert.is_nil(list)
      assert.are.equal("ENOTFOUND", code)
      assert.matches("no-such-rev", msg, 1, true)
    end)

    it("names the crate of a bad since", function()
      local list, msg, code = repo:changes { paths = { "crates/a" }, since = { ("0"):rep(40) } }
      assert.is_nil(list)
      assert.are.equal("ENOTFOUND", code)
      assert.matches("crates/a", msg, 1, true)
      assert.matches(("0"):rep(40), msg, 1, true)
    end)

    it("raises on wrong argument types", function()
      assert.has_error(function() repo:changes() end)
      assert.has_error(function() repo:changes { paths = "crates/a" } end)
      assert.has_error(function() repo:changes { paths = { 1 } } end)
      assert.has_error(function() repo:changes { paths = { "crates/a" }, since = { true } } end)
      assert.has_error(function() repo:changes { paths = { "crates/a" }, since = { 42 } } end)
      assert.has_error(function() repo:changes { paths = { "crates/a" }, first_parent = "yes" } end)
      assert.has_error(function() repo:changes { paths = { "../a" } } end)
      assert.has_error(function() repo:changes { from = 1, paths = {} } end)
    end)

    it("returns an empty list for no crates", function()
      local list, stats = repo:changes { paths = {} }
      assert.are.same({}, list)
      assert.are.equal(0, stats.walked)
    end)
  end)
end)
