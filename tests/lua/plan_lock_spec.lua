-- The workspace's Cargo.lock in a binary crate's file set (workspace.ships_lock):
-- on a scripted history with real cargo's lock (tests/fixtures/plan_histories.lua
-- lock_only).
local histories = require "tests.fixtures.plan_histories"
local ps = require "tests.lua.plan_support"
local make, expect, summaries, reason = ps.make, ps.expect, ps.summaries, ps.reason

describe("plan attribution: Cargo.lock", function()
  it("counts a lock change for a binary that depends on what changed, and says so", function()
    local w = histories.lock_only()
    local release_plz = require "cdp.policies.release_plz"
    local p, c = make(w, { policy = release_plz {} })
    expect(c.tool, "1.4.0", "1.4.1", "patch")
    -- other's release commit rewrote only other's entry: tool does not depend on it
    assert.are.same({ "chore: release lib 0.2.1" }, summaries(c.tool))
    local r = reason(c.tool, "commit")
    assert.truthy(r and r.text:find("changed only Cargo.lock", 1, true), p:explain("tool"))
    -- the libraries beside it: the lock is none of their files
    expect(c.util, "0.1.0", "0.1.0", "none")
    expect(c.lib, "0.2.1", "0.2.1", "none")
    expect(c.other, "0.3.1", "0.3.1", "none")
    assert.are.same({}, summaries(c.util))
  end)

  it("leaves the level to the policy: a chore does not release under conventional", function()
    local w = histories.lock_only()
    local _, c = make(w)
    expect(c.tool, "1.4.0", "1.4.0", "none")
    assert.are.same({ "chore: release lib 0.2.1" }, summaries(c.tool))
    -- a fix that only updates the lock is a patch, and its own commit
    w:write("crates/lib/src/lib.rs", "// lib, fixed\n")
    w:commit("fix(lib): the fix tool needs")
    w:set_version("lib", "0.2.2")
    require("tests.lua.support").sh("cd " .. require("tests.lua.support").quote(w.dir)
      .. " && cargo generate-lockfile --offline -q")
    w:commit("fix(deps): take lib 0.2.2")
    _, c = make(w)
    expect(c.tool, "1.4.0", "1.4.1", "patch")
    assert.are.same({ "fix(deps): take lib 0.2.2", "chore: release lib 0.2.1" }, summaries(c.tool))
  end)

  it("gives a binary a patch for a dependency's breaking change that reached it only through the lock", function()
    local support = require "tests.lua.support"
    local w = histories.lock_only()
    w:write("crates/lib/src/lib.rs", "// lib, a new API\n")
    -- as typos' "chore!: Upgrade phf": the commit's own crate and the lock, one commit
    w:set_version("lib", "0.2.2")
    support.sh("cd " .. support.quote(w.dir) .. " && cargo generate-lockfile --offline -q")
    w:commit("feat(lib)!: a new API")
    local p, c = make(w)
    assert.are.equal("minor", c.lib.bump)
    expect(c.tool, "1.4.0", "1.4.1", "patch")
    local r = reason(c.tool, "commit")
    assert.are.equal("patch", r.level)
    assert.truthy(r.text:find("breaking; changed only Cargo.lock → patch", 1, true), p:explain("tool"))
  end)

  it("counts the lock of a binary at the workspace's root, which sits in its own directory", function()
    local support = require "tests.lua.support"
    local fixture = require "tests.fixtures.plan_workspace"
    local w = fixture.new()
    w:crate("app", "2.0.0", { dir = "", deps = { core = '{ path = "crates/core", version = "0.1" }' } })
    w:crate("core", "0.1.0")
    w:write("src/main.rs", "fn main() {}\n")
    support.sh("cd " .. support.quote(w.dir) .. " && cargo generate-lockfile --offline -q")
    w:commit("chore: start")
    w:release()
    w:set_version("core", "0.1.1")
    support.sh("cd " .. support.quote(w.dir) .. " && cargo generate-lockfile --offline -q")
    w:commit("chore: release core 0.1.1")
    w:release { "core" }
    local _, c = make(w, { policy = require("cdp.policies.release_plz") {} })
    expect(c.app, "2.0.0", "2.0.1", "patch")
    assert.are.same({ "chore: release core 0.1.1" }, summaries(c.app))
    expect(c.core, "0.1.1", "0.1.1", "none")
  end)
end)
