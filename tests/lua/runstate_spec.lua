-- cdp.runstate against real repositories: a bare origin on disk and clones of it,
-- each standing for a job on another machine, in another folder.
local fs = require "cdp.fs"
local journal = require "cdp.journal"
local runstate = require "cdp.runstate"
local support = require "tests.lua.support"
local q = support.quote
local G = support.git

-- An origin with one commit and N clones of it ("machines").
local function world(n)
  local base = support.tmpdir()
  local origin = base .. "/origin.git"
  support.sh("git init -q --bare -b main " .. q(origin))
  local seed = support.git_init(base .. "/seed")
  support.commit(seed, "chore: start", { ["README.md"] = "hi\n" })
  G(seed, "remote", "add", "origin", origin)
  G(seed, "push", "-q", "origin", "main")
  local clones = {}
  for i = 1, n do
    clones[i] = base .. "/job" .. i
    support.sh("git clone -q " .. q(origin) .. " " .. q(clones[i]))
  end
  return origin, clones
end

local function writer_at(dir, entries)
  assert(fs.mkdir(dir, { parents = true }))
  local lines = {}
  for i, e in ipairs(entries or {}) do
    lines[i] = require("cdp.json").encode(e) .. "\n"
  end
  assert(fs.write(dir .. "/" .. journal.FILE, table.concat(lines)))
  return assert(journal.open(dir .. "/" .. journal.FILE))
end

describe("cdp.runstate", function()
  it("writes paths under the repository root portably, and reads them back for another root", function()
    local value = { path = "/w/a/.cdp/runs/1/fork", other = "/w/ab/x", list = { "/w/a", "x/w/a" }, n = 3 }
    local p = runstate.portable(value, "/w/a")
    assert.are.same({ path = "${root}/.cdp/runs/1/fork", other = "/w/ab/x", list = { "${root}", "x/w/a" }, n = 3 }, p)
    assert.are.same({ path = "/home/ci/r/.cdp/runs/1/fork", other = "/w/ab/x", list = { "/home/ci/r", "x/w/a" }, n = 3 },
      runstate.localize(p, "/home/ci/r"))
  end)

  it("accepts CI run ids and refuses what is no ref name", function()
    for _, ok in ipairs { "1234-1", "20260101T000000.000Z-ab12", "a.b_c" } do
      assert.is_true(runstate.valid_id(ok), ok)
    end
    for _, bad in ipairs { "", "-x", "a/b", "a..b", "x.lock", "a b", ("x"):rep(101) } do
      assert.is_false(runstate.valid_id(bad), bad)
    end
  end)

  it("carries journal, .crate files and logs from one clone to another through the origin", function()
    local origin, clones = world(2)
    local a = assert(runstate.open { root = clones[1] })
    assert.are.equal(false, a:fetch("7-1"))
    local dir = clones[1] .. "/.cdp/runs/7-1"
    local w = writer_at(dir)
    w:append("run.started", { run = "7-1", pipeline = "release", stages = { "package" } })
    w:append("stage.passed", { stage = "package", key = "k", outputs = { packaged = {
      crates = { x = { file = dir .. "/crates/x-1.0.0.crate", sha256 = "s" } } } } })
    support.write(dir .. "/crates/x-1.0.0.crate", "\31\139 crate bytes\0")
    support.write(dir .. "/logs/package.log", "packaged\n")
    local sync = runstate.sync(a, "7-1", dir, false, 0)
    assert(sync:push(w))
    local head = G(origin, "rev-parse", "refs/cdp/runs/7-1")
    assert.matches("cdp run 7%-1: package passed", G(origin, "log", "-1", "--format=%s", head))
    assert.matches('"${root}/.cdp/runs/7-1/crates/x-1.0.0.crate"', G(origin, "show", head .. ":journal.ndjson"), 1, true)

    local b = assert(runstate.open { root = clones[2] })
    local got = assert(b:fetch("7-1"))
    assert.are.equal(head, got)
    local snap = assert(b:read(got))
    local dir2 = clones[2] .. "/.cdp/runs/7-1"
    b:materialize(snap, dir2)
    local st = journal.derive(assert(journal.read(dir2 .. "/" .. journal.FILE)))
    assert.are.equal(dir2 .. "/crates/x-1.0.0.crate", st.stages[1].outputs.packaged.crates.x.file)
    assert.are.equal("\31\139 crate bytes\0", support.read(dir2 .. "/crates/x-1.0.0.crate"))
    assert.are.equal("packaged\n", support.read(dir2 .. "/logs/package.log"))
    a:close()
    b:close()
  end)

  it("carries the release fork's commits, and makes the fork again elsewhere", function()
    local origin, clones = world(2)
    local release = require "cdp.release"
    local a = assert(runstate.open { root = clones[1] })
    local dir = clones[1] .. "/.cdp/runs/8-1"
    local head = G(clones[1], "rev-parse", "HEAD")
    local fork = release.make_fork(clones[1], dir .. "/fork", { branch = "cdp/release/8-1", commit = head,
      origin = origin, identity = { name = "Rel", email = "rel@cdp.invalid" } })
    support.write(dir .. "/fork/VERSION", "2\n")
    assert(fork:add { "VERSION" })
    local bump = assert(fork:commit_index { message = "chore(release): 2\n" })
    assert(fork:reference_set("refs/cdp/8-1/version", bump, "test", { force = true }))
    fork:close()
    local w = writer_at(dir)
    w:append("run.started", { run = "8-1", pipeline = "release", stages = { "activate", "version" } })
    w:append("stage.passed", { stage = "activate", key = "k", outputs = { fork = { path = dir .. "/fork",
      commit = head, branch = "cdp/release/8-1", origin = origin } } })
    assert(runstate.sync(a, "8-1", dir, false, 0):push(w))
    -- the fork's commit is on the origin only through the state
    assert.are.equal("commit", G(origin, "cat-file", "-t", bump))
    assert.are.equal("", G(origin, "branch", "--list", "cdp/*"))

    local b = assert(runstate.open { root = clones[2] })
    local snap = assert(b:read(assert(b:fetch("8-1"))))
    local dir2 = clones[2] .. "/.cdp/runs/8-1"
    b:materialize(snap, dir2)
    local st = journal.derive(snap.entries)
    assert(b:rebuild_fork(snap, dir2 .. "/fork", st.stages[1].outputs.fork))
    assert.are.equal(bump, G(dir2 .. "/fork", "rev-parse", "HEAD"))
    assert.are.equal("cdp/release/8-1", G(dir2 .. "/fork", "rev-parse", "--abbrev-ref", "HEAD"))
    assert.are.equal(bump, G(dir2 .. "/fork", "rev-parse", "refs/cdp/8-1/version"))
    assert.are.equal("2", support.read(dir2 .. "/fork/VERSION"):gsub("%s+$", ""))
    assert.are.equal(origin, G(dir2 .. "/fork", "remote", "get-url", "origin"))
    a:close()
    b:close()
  end)

  describe("two jobs pushing from the same state", function()
    local origin, clones, stores, dirs, writers, syncs

    before_each(function()
      origin, clones = world(2)
      stores, dirs, writers, syncs = {}, {}, {}, {}
      local first = assert(runstate.open { root = clones[1] })
      local d = clones[1] .. "/.cdp/runs/9-1"
      local w = writer_at(d)
      w:append("run.started", { run = "9-1", pipeline = "release", stages = { "tag", "publish" } })
      w:append("stage.passed", { stage = "tag", key = "k", outputs = { tags = {} } })
      assert(runstate.sync(first, "9-1", d, false, 0):push(w))
      first:close()
      for i = 1, 2 do
        stores[i] = assert(runstate.open { root = clones[i] })
        local head = assert(stores[i]:fetch("9-1"))
        dirs[i] = clones[i] .. "/.cdp/runs/9-1b"
        stores[i]:materialize(assert(stores[i]:read(head)), dirs[i])
        writers[i] = assert(journal.open(dirs[i] .. "/" .. journal.FILE))
        syncs[i] = runstate.sync(stores[i], "9-1", dirs[i], head, #writers[i].entries)
      end
    end)

    after_each(function()
      for _, s in ipairs(stores) do s:close() end
    end)

    it("claim the same stage: the second push loses, reads again and stops", function()
      for i = 1, 2 do
        writers[i]:append("stage.started", { stage = "publish", key = "p", job = { host = "h", pid = 100 + i } })
      end
      assert(syncs[1]:push(writers[1]))
      local ok, msg, code = syncs[2]:push(writers[2])
      assert.is_nil(ok)
      assert.are.equal("ECONFLICT", code)
      assert.matches("pid 101 on h", msg, 1, true)
      assert.matches("started stage publish", msg, 1, true)
      -- the loser's journal is the remote's again; the remote has one claim
      local entries = assert(journal.read(dirs[2] .. "/" .. journal.FILE))
      assert.are.equal(101, entries[#entries].job.pid)
      local remote = journal.parse(G(origin, "show", "refs/cdp/runs/9-1:journal.ndjson") .. "\n")
      local claims = 0
      for _, e in ipairs(remote) do
        if e.event == "stage.started" then claims = claims + 1 end
      end
      assert.are.equal(1, claims)
    end)

    it("touch different things: the second push is appended to the first's", function()
      writers[1]:append("approval.granted", { stage = "publish", when = "before", user = "ann" })
      writers[2]:append("stage.started", { stage = "publish", key = "p" })
      assert(syncs[1]:push(writers[1]))
      assert(syncs[2]:push(writers[2]))
      local remote = journal.parse(G(origin, "show", "refs/cdp/runs/9-1:journal.ndjson") .. "\n")
      assert.are.same({ "run.started", "stage.passed", "approval.granted", "stage.started" },
        { remote[1].event, remote[2].event, remote[3].event, remote[4].event })
      assert.are.same({ 1, 2, 3, 4 }, { remote[1].seq, remote[2].seq, remote[3].seq, remote[4].seq })
      assert.are.equal(4, #writers[2].entries)
      -- the state history is one line: each commit's first parent is the state before
      assert.are.equal(3, tonumber(G(origin, "rev-list", "--count", "--first-parent", "refs/cdp/runs/9-1")))
    end)
  end)

  it("tells a dead claim from a live one", function()
    local me = runstate.job_identity()
    local dead = support.sh("sh -c 'echo $$'"):match("%d+")
    assert.is_true(runstate.claim_is_dead({ job = { host = me.host, pid = tonumber(dead) } }, me))
    local sleeper = support.sh("sleep 30 >/dev/null 2>&1 & echo $!"):match("%d+")
    assert.is_false(runstate.claim_is_dead({ job = { host = me.host, pid = tonumber(sleeper) } }, me))
    os.execute("kill " .. sleeper)
    -- a job killed with its runner stays a zombie where the container's init never reaps it
    local shell = io.popen("echo $$")
    local zombie = tonumber(shell:read("l"))
    for _ = 1, 200 do
      local f = io.open(("/proc/%d/stat"):format(zombie))
      local state = f and f:read("a"):match(".*%) (%u)")
      if f then f:close() end
      if state == "Z" then break end
      os.execute("sleep 0.01")
    end
    assert.is_true(runstate.claim_is_dead({ job = { host = me.host, pid = zombie } }, me))
    shell:close()
    assert.is_false(runstate.claim_is_dead({ job = { host = "elsewhere", pid = 1 } }, me))
    local ci = { system = "github", run = "55", attempt = 2 }
    assert.is_true(runstate.claim_is_dead({ job = { host = "x", pid = 1, ci = { system = "github", run = "55", attempt = 1 } } },
      { host = "y", pid = 2, ci = ci }))
    assert.is_false(runstate.claim_is_dead({ job = { host = "x", pid = 1, ci = { system = "github", run = "55", attempt = 2 } } },
      { host = "y", pid = 2, ci = ci }))
  end)
end)
