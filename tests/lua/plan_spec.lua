-- Release Plan cases over workspaces built with real git and real cargo metadata.
local support = require "tests.lua.support"
local fixture = require "tests.fixtures.plan_workspace"
local plan = require "cdp.plan"
local json = require "cdp.json"
local conventional = require "cdp.policies.conventional"

local function path_dep(name, version, extra)
  return ('{ path = "../%s", version = "%s"%s }'):format(name, version, extra or "")
end

-- A plan that must succeed; its entries by name.
local function make(w, opts)
  local p, err = w:plan(opts)
  assert(p, err)
  return p, p.by_name
end

local function expect(entry, current, next, bump)
  assert.are.same({ current = current, next = next, bump = bump },
    { current = entry.current, next = entry.next, bump = entry.bump }, entry.name)
end

local function summaries(entry)
  local out = {}
  for i, c in ipairs(entry.commits) do
    out[i] = c.summary
  end
  return out
end

local function reason_kinds(entry)
  local out = {}
  for i, r in ipairs(entry.reasons) do
    out[i] = r.kind
  end
  return out
end

-- Two crates, released: a 0.3.1 (depends on b), b VERSION_B.
local function pair(version_a, version_b, req)
  local w = fixture.new()
  w:crate("b", version_b)
  w:crate("a", version_a, { deps = { b = path_dep("b", req or version_b) } })
  w:commit("chore: start")
  w:release()
  return w
end

local function cdp(args)
  local out, code = support.sh(support.quote(support.cdp()) .. " " .. args .. " 2>/dev/null", { may_fail = true })
  return out, code
end

local function cdp_err(args)
  return support.sh(support.quote(support.cdp()) .. " " .. args, { may_fail = true })
end

describe("plan: 0.x and 1.x rules", function()
  it("0.x: a feat is a patch, a fix is a patch", function()
    local w = pair("0.3.1", "0.1.0")
    w:change("a", "feat: add x")
    w:change("b", "fix: handle y")
    local _, c = make(w)
    expect(c.a, "0.3.1", "0.3.2", "patch")
    expect(c.b, "0.1.0", "0.1.1", "patch")
  end)

  it("0.x: a breaking change ('!') is a minor", function()
    local w = pair("0.3.1", "0.1.0")
    w:change("a", "feat!: drop the old API")
    local _, c = make(w)
    expect(c.a, "0.3.1", "0.4.0", "minor")
    assert.are.equal("commit", c.a.reasons[1].kind)
    assert.is_true(c.a.reasons[1].breaking)
  end)

  it("1.x: feat is minor, fix is patch, '!' is major", function()
    local w = fixture.new()
    for _, n in ipairs { "f", "p", "m" } do
      w:crate(n, "1.4.2")
    end
    w:commit("chore: start")
    w:release()
    w:change("f", "feat: new thing")
    w:change("p", "fix: old thing")
    w:change("p", "perf: faster")
    w:change("m", "fix!: return a Result")
    local _, c = make(w)
    expect(c.f, "1.4.2", "1.5.0", "minor")
    expect(c.p, "1.4.2", "1.4.3", "patch")
    expect(c.m, "1.4.2", "2.0.0", "major")
  end)

  it("1.x: a BREAKING CHANGE footer makes a major even on a chore", function()
    local w = fixture.new()
    w:crate("a", "1.0.0")
    w:crate("b", "2.1.0")
    w:commit("chore: start")
    w:release()
    w:change("a", "feat: allow config objects\n\nLonger text.\n\nBREAKING CHANGE: `extends` now merges")
    w:change("b", "chore: raise the msrv\n\nBREAKING-CHANGE: needs rustc 1.80")
    local _, c = make(w)
    expect(c.a, "1.0.0", "2.0.0", "major")
    expect(c.b, "2.1.0", "3.0.0", "major")
  end)

  it("zero_major = false treats 0.x like 1.x", function()
    local w = pair("0.3.1", "0.1.0")
    w:change("a", "feat: add x")
    local _, c = make(w, { policy = conventional { zero_major = false } })
    expect(c.a, "0.3.1", "0.4.0", "minor")
  end)

  it("takes the highest level among a crate's commits", function()
    local w = pair("1.0.0", "1.0.0")
    w:change("a", "fix: one")
    w:change("a", "feat: two")
    w:change("a", "fix: three")
    local _, c = make(w)
    expect(c.a, "1.0.0", "1.1.0", "minor")
    assert.are.same({ "fix: three", "feat: two", "fix: one" }, summaries(c.a))
  end)

  it("lists crates without releasable changes with bump 'none'", function()
    local w = pair("1.0.0", "1.0.0")
    w:change("a", "docs: explain")
    w:change("a", "chore(ci): cache")
    local _, c = make(w)
    expect(c.a, "1.0.0", "1.0.0", "none")
    assert.are.same({ "chore(ci): cache", "docs: explain" }, summaries(c.a))
    assert.are.same({ "no-release" }, reason_kinds(c.a))
    expect(c.b, "1.0.0", "1.0.0", "none")
    assert.are.same({}, c.b.commits)
    assert.is_false(c.a.publish)
  end)

  it("type -> level table is configurable", function()
    local w = pair("1.0.0", "1.0.0")
    w:change("a", "docs: explain")
    w:change("b", "feat: new")
    local _, c = make(w, { policy = conventional { types = { docs = "patch", feat = "patch" } } })
    expect(c.a, "1.0.0", "1.0.1", "patch")
    expect(c.b, "1.0.0", "1.0.1", "patch")
  end)
end)

describe("plan: commits", function()
  it("reads scopes and '!' after a scope; the scope does not move a commit to another crate", function()
    local w = pair("1.2.0", "1.0.0")
    w:change("b", "feat(a)!: the scope names a, the change is in b")
    local p, c = make(w)
    expect(c.b, "1.0.0", "2.0.0", "major")
    assert.are.equal("a", c.b.reasons[1].scope)
    -- a is a dependent whose requirement "1.0.0" no longer admits 2.0.0
    expect(c.a, "1.2.0", "1.2.1", "patch")
    assert.are.same({}, c.a.commits)
    assert.truthy(p:explain("a"):find('depends on b (normal): "1.0.0" does not admit 2.0.0', 1, true))
  end)

  it("keeps non-conventional commits as 'other' and releases nothing for them", function()
    local w = pair("1.0.0", "1.0.0")
    w:change("a", "Update the README")
    w:change("a", "WIP")
    local p, c = make(w)
    expect(c.a, "1.0.0", "1.0.0", "none")
    assert.are.same({ "WIP", "Update the README" }, summaries(c.a))
    assert.are.equal("other", p.draft.crates.a.commits[1].parsed.type)
    assert.truthy(c.a.reasons[1].text:find("2 commit", 1, true))
  end)

  it("cancels a commit and its git revert when both are unreleased", function()
    local w = pair("1.0.0", "1.0.0")
    local feat = w:change("a", "feat: risky", "src/risky.rs")
    w:change("a", "fix: small")
    w:git("revert", "--no-edit", feat)
    local p, c = make(w)
    expect(c.a, "1.0.0", "1.0.1", "patch")
    assert.are.same({ "fix: small" }, summaries(c.a))
    assert.are.equal(2, #c.a.cancelled)
    assert.are.equal(feat, c.a.cancelled[2].id)
    assert.truthy(p:explain("a"):find("cancelled by reverts", 1, true))
  end)

  it("keeps a revert of an already released commit", function()
    local w = pair("1.0.0", "1.0.0")
    local feat = w:change("a", "feat: shipped")
    w:tag("a-v1.1.0")
    w:set_version("a", "1.1.0")
    w:commit("chore: a 1.1.0")
    w:git("revert", "--no-edit", feat)
    local _, c = make(w, { policy = conventional { types = { revert = "patch" } } })
    expect(c.a, "1.1.0", "1.1.1", "patch")
    assert.are.same({ 'Revert "feat: shipped"', "chore: a 1.1.0" }, summaries(c.a))
    assert.are.same({}, c.a.cancelled)
  end)

  it("attributes a merged branch's commits, not the merge, to the crates they touch", function()
    local w = pair("1.0.0", "1.0.0")
    w:git("checkout", "-q", "-b", "topic")
    w:change("a", "feat: on the branch")
    w:git("checkout", "-q", "main")
    w:change("b", "fix: on main")
    w:git("merge", "--no-ff", "-q", "-m", "Merge branch 'topic'", "topic")
    local _, c = make(w)
    expect(c.a, "1.0.0", "1.1.0", "minor")
    assert.are.same({ "feat: on the branch" }, summaries(c.a))
    expect(c.b, "1.0.0", "1.0.1", "patch")
    assert.are.same({ "fix: on main" }, summaries(c.b))
  end)

  it("counts a merge that changes a crate itself (a conflict resolution)", function()
    local w = pair("1.0.0", "1.0.0")
    w:git("checkout", "-q", "-b", "topic")
    w:change("a", "feat: on the branch")
    w:git("checkout", "-q", "main")
    w:git("merge", "--no-ff", "--no-commit", "-q", "topic")
    w:write("crates/b/src/lib.rs", "// b, edited while merging\n")
    w:git("add", "-A")
    w:git("commit", "-q", "-m", "fix: merge topic and adjust b")
    local p, c = make(w)
    expect(c.b, "1.0.0", "1.0.1", "patch")
    assert.are.same({ "fix: merge topic and adjust b" }, summaries(c.b))
    assert.is_true(p.draft.crates.b.commits[1].merge)
    assert.truthy(p:explain("b"):find("[merge]", 1, true))
  end)

  it("ignores commits outside every crate", function()
    local w = pair("1.0.0", "1.0.0")
    w:change("README.md", "feat: document everything")
    local _, c = make(w)
    expect(c.a, "1.0.0", "1.0.0", "none")
    expect(c.b, "1.0.0", "1.0.0", "none")
  end)
end)

describe("plan: workspace shapes", function()
  it("follows renamed dependencies (package = ...)", function()
    local w = fixture.new()
    w:crate("b", "1.0.0")
    w:crate("a", "1.0.0", { deps = { bee = path_dep("b", "1.0.0", ', package = "b"') } })
    w:commit("chore: start")
    w:release()
    w:change("b", "feat!: new b")
    local _, c = make(w)
    expect(c.b, "1.0.0", "2.0.0", "major")
    expect(c.a, "1.0.0", "1.0.1", "patch")
    assert.are.same({ { dependency = "b", kind = "normal", from = "1.0.0", to = "2.0.0", rename = "bee" } },
      c.a.requirements)
    local ws = require("cdp.workspace")
    local m = assert(ws.load(w.dir)).by_name.a
    assert.are.equal("bee", m.deps[1].rename)
    assert.are.equal("b", m.deps[1].name)
  end)

  it("reads inherited workspace versions", function()
    local w = fixture.new()
    w:workspace_version("2.3.0")
    w.workspace_v = "2.3.0"
    w:crate("a", "workspace")
    w:crate("b", "workspace")
    w:commit("chore: start")
    w:release()
    w:change("a", "feat: x")
    local p, c = make(w)
    expect(c.a, "2.3.0", "2.4.0", "minor")
    expect(c.b, "2.3.0", "2.3.0", "none")
    local m = p.workspace.by_name.a
    assert.is_true(m.inherited_version)
    assert.is_true(p.workspace.by_name.b.inherited_version)
  end)

  it("plans a crate added since the last release as a first release", function()
    local w = pair("1.0.0", "1.0.0")
    w:change("a", "feat: before c existed")
    w:crate("c", "0.2.0")
    w:commit("feat: add crate c")
    w:change("c", "fix: c detail")
    local _, c = make(w)
    expect(c.c, "0.2.0", "0.2.0", "initial")
    -- followed back only to where its directory appears
    assert.are.same({ "fix: c detail", "feat: add crate c" }, summaries(c.c))
    assert.are.equal(json.null, c.c.last_tag)
    assert.is_true(c.c.publish)
  end)

  it("raises a new crate below initial_version to it", function()
    local w = pair("1.0.0", "1.0.0")
    w:crate("c", "0.0.0")
    w:commit("feat: add crate c")
    local _, c = make(w, { policy = conventional { initial_version = "0.1.0" } })
    expect(c.c, "0.0.0", "0.1.0", "initial")
  end)

  it("never publishes publish = false crates but rewrites their requirements", function()
    local w = fixture.new()
    w:crate("lib", "0.2.0")
    w:crate("tool", "0.1.0", { publish = "false", deps = { lib = path_dep("lib", "0.2") } })
    w:commit("chore: start")
    w:release()
    w:change("lib", "feat!: reshape")
    w:change("tool", "feat: a flag")
    local p, c = make(w)
    expect(c.lib, "0.2.0", "0.3.0", "minor")
    expect(c.tool, "0.1.0", "0.1.0", "none")
    assert.is_false(c.tool.publish)
    assert.is_false(c.tool.publishable)
    assert.are.same({ { dependency = "lib", kind = "normal", from = "0.2", to = "0.3" } }, c.tool.requirements)
    assert.are.same({ "lib" }, p.order)
    assert.truthy(p:explain("tool"):find("publish = false", 1, true))
  end)

  it("reads publish = [registries]", function()
    local w = fixture.new()
    w:crate("a", "1.0.0", { publish = '["internal"]' })
    w:crate("b", "1.0.0")
    w:commit("chore: start")
    local ws = assert(require("cdp.workspace").load(w.dir))
    assert.are.same({ "internal" }, ws.by_name.a.publish)
    assert.is_true(ws.by_name.b.publish)
  end)

  it("allows dev-dependency cycles: order by normal deps, no bump through dev-deps", function()
    local w = fixture.new()
    w:crate("core", "1.0.0", { dev_deps = { testkit = path_dep("testkit", "1.0.0") } })
    w:crate("testkit", "1.0.0", { deps = { core = path_dep("core", "1.0.0") } })
    w:commit("chore: start")
    w:release()
    w:change("testkit", "feat!: new harness")
    local p, c = make(w)
    assert.are.same({ "core", "testkit" }, p.workspace.order)
    assert.are.same({ "testkit" }, p.order)
    expect(c.testkit, "1.0.0", "2.0.0", "major")
    expect(c.core, "1.0.0", "1.0.0", "none")
    assert.are.same({ { dependency = "testkit", kind = "dev", from = "1.0.0", to = "2.0.0" } }, c.core.requirements)
    assert.are.same({ "dev-dependency" }, reason_kinds(c.core))
  end)

  it("refuses a cycle of normal dependencies, naming the crates", function()
    local w = fixture.new()
    w:crate("x", "1.0.0", { deps = { y = path_dep("y", "1.0.0") } })
    w:crate("y", "1.0.0", { build_deps = { x = path_dep("x", "1.0.0") } })
    w:commit("chore: start")
    local ws = require "cdp.workspace"
    local members = {
      { name = "x", deps = { { name = "y", kind = "normal", member = true } } },
      { name = "y", deps = { { name = "x", kind = "build", member = true } } },
      { name = "z", deps = {} },
    }
    local order, err, code = ws.publish_order(members)
    assert.is_nil(order)
    assert.are.equal("ECYCLE", code)
    assert.truthy(err:find("x -> y -> x", 1, true), err)
    -- cargo itself refuses the manifests; the plan passes its message on
    local p, perr = w:plan()
    assert.is_nil(p)
    assert.truthy(perr:find("cycle", 1, true), perr)
  end)

  it("attributes nested crates to themselves only (a root crate and one inside it)", function()
    local w = fixture.new()
    w:crate("outer", "1.0.0", { dir = "" })
    w:crate("inner", "1.0.0", { dir = "inner" })
    w:commit("chore: start")
    w:release()
    w:change("inner", "feat: inner only")
    w:change("outer", "fix: outer only")
    local _, c = make(w)
    expect(c.inner, "1.0.0", "1.1.0", "minor")
    assert.are.same({ "feat: inner only" }, summaries(c.inner))
    expect(c.outer, "1.0.0", "1.0.1", "patch")
    assert.are.same({ "fix: outer only" }, summaries(c.outer))
    assert.are.equal("", c.outer.dir)
  end)

  it("uses v{version} tags for a single-crate repository", function()
    local w = fixture.new { single = true }
    w:crate("solo", "0.5.0", { dir = "" })
    w:commit("chore: start")
    w:release()
    w:tag("solo-v9.9.9") -- another template's tag is not a release here
    w:change("solo", "fix: x")
    local p, c = make(w)
    expect(c.solo, "0.5.0", "0.5.1", "patch")
    assert.are.equal("v0.5.0", c.solo.last_tag)
    assert.are.equal("v{version}", p.tag_template)
  end)
end)

describe("plan: propagation", function()
  it("bumps a dependent whose requirement no longer admits the new version, and records old -> new", function()
    local w = pair("0.3.1", "0.1.0", "0.1")
    w:change("b", "feat!: break b")
    local p, c = make(w)
    expect(c.b, "0.1.0", "0.2.0", "minor")
    expect(c.a, "0.3.1", "0.3.2", "patch")
    assert.are.same({ { dependency = "b", kind = "normal", from = "0.1", to = "0.2" } }, c.a.requirements)
    assert.are.same({ "dependency" }, reason_kinds(c.a))
    assert.are.same({ "b", "a" }, p.order)
  end)

  it("leaves a dependent alone when its requirement still admits the new version", function()
    local w = pair("0.3.1", "0.1.0", "0.1")
    w:change("b", "fix: small")
    local _, c = make(w)
    expect(c.b, "0.1.0", "0.1.1", "patch")
    expect(c.a, "0.3.1", "0.3.1", "none")
    assert.are.same({}, c.a.requirements)
  end)

  it("propagates through chains and build-dependencies", function()
    local w = fixture.new()
    w:crate("base", "1.0.0")
    w:crate("mid", "1.0.0", { build_deps = { base = path_dep("base", "1.0.0") } })
    w:crate("top", "1.0.0", { deps = { mid = path_dep("mid", "=1.0.0") } })
    w:commit("chore: start")
    w:release()
    w:change("base", "feat!: v2")
    local p, c = make(w)
    expect(c.base, "1.0.0", "2.0.0", "major")
    expect(c.mid, "1.0.0", "1.0.1", "patch")
    expect(c.top, "1.0.0", "1.0.1", "patch")
    assert.are.same({ { dependency = "mid", kind = "normal", from = "=1.0.0", to = "=1.0.1" } }, c.top.requirements)
    assert.are.same({ "base", "mid", "top" }, p.order)
  end)

  it("propagate = false rewrites requirements without bumping", function()
    local w = pair("0.3.1", "0.1.0", "0.1")
    w:change("b", "feat!: break b")
    local _, c = make(w, { policy = conventional { propagate = false } })
    expect(c.a, "0.3.1", "0.3.1", "none")
    assert.are.equal(1, #c.a.requirements)
  end)

  it("propagate = 'minor' sets the least bump of a dependent", function()
    local w = pair("1.3.1", "1.1.0")
    w:change("b", "feat!: break b")
    w:change("a", "fix: also a fix")
    local _, c = make(w, { policy = conventional { propagate = "minor" } })
    expect(c.a, "1.3.1", "1.4.0", "minor")
  end)
end)

describe("plan: policy options", function()
  it("lockstep groups share one version", function()
    local w = fixture.new()
    w:crate("a", "1.2.0")
    w:crate("b", "1.2.0")
    w:crate("c", "1.2.0")
    w:commit("chore: start")
    w:release()
    w:change("a", "feat: a feature")
    w:change("c", "fix: c fix")
    local _, c = make(w, { policy = conventional { lockstep = { { "a", "b" } } } })
    expect(c.a, "1.2.0", "1.3.0", "minor")
    expect(c.b, "1.2.0", "1.3.0", "minor")
    expect(c.c, "1.2.0", "1.2.1", "patch")
    assert.are.same({ "lockstep" }, reason_kinds(c.b))
  end)

  it("skip keeps a crate where it is", function()
    local w = pair("1.0.0", "1.0.0")
    w:change("a", "feat: x")
    local _, c = make(w, { policy = conventional { skip = { "a" } } })
    expect(c.a, "1.0.0", "1.0.0", "none")
    assert.are.same({ "commit", "skip" }, reason_kinds(c.a))
  end)

  it("overrides force a level or a version", function()
    local w = pair("1.0.0", "1.0.0")
    w:change("a", "docs: nothing much")
    local _, c = make(w, { policy = conventional { overrides = { a = "major", b = "1.5.0" } } })
    expect(c.a, "1.0.0", "2.0.0", "major")
    expect(c.b, "1.0.0", "1.5.0", "minor")
    assert.are.equal("override", c.b.reasons[1].kind)
  end)

  it("names an unknown crate in overrides, lockstep or skip", function()
    local w = pair("1.0.0", "1.0.0")
    for _, opts in ipairs {
      { overrides = { nope = "major" } }, { lockstep = { { "a", "nope" } } }, { skip = { "nope" } },
    } do
      local p, err, code = w:plan { policy = conventional(opts) }
      assert.is_nil(p)
      assert.are.equal("EPOLICY", code)
      assert.truthy(err:find("unknown crate 'nope'", 1, true), err)
    end
    assert.has_error(function() conventional { tpyes = {} } end, "conventional: unknown option 'tpyes'")
  end)

  it("takes a plain function that returns levels as a policy", function()
    local w = pair("1.0.0", "1.0.0", "1.0.0")
    w:change("b", "docs: b")
    local policy = function(draft)
      local out = {}
      for _, name in ipairs(draft.names) do
        out[name] = #draft.crates[name].commits > 0 and "major" or "none"
      end
      return out
    end
    local _, c = make(w, { policy = policy })
    expect(c.b, "1.0.0", "2.0.0", "major")
    expect(c.a, "1.0.0", "1.0.1", "patch") -- propagation applies to plain policies too
  end)
end)

describe("plan: pre-releases", function()
  it("counts -dev.N up and graduates", function()
    local w = pair("0.3.1", "0.1.0")
    w:change("a", "feat: first")
    local dev = conventional { zero_major = false, prerelease = "dev" }
    local _, c = make(w, { policy = dev })
    expect(c.a, "0.3.1", "0.4.0-dev.1", "minor")
    -- release it, then a fix: -dev.2
    w:set_version("a", "0.4.0-dev.1")
    w:commit("chore: release a 0.4.0-dev.1")
    w:tag("a-v0.4.0-dev.1")
    w:change("a", "fix: second")
    _, c = make(w, { policy = dev })
    expect(c.a, "0.4.0-dev.1", "0.4.0-dev.2", "patch")
    w:set_version("a", "0.4.0-dev.2")
    w:commit("chore: release a 0.4.0-dev.2")
    w:tag("a-v0.4.0-dev.2")
    -- nothing new and still in pre-release mode: nothing to do
    _, c = make(w, { policy = dev })
    expect(c.a, "0.4.0-dev.2", "0.4.0-dev.2", "none")
    -- graduate
    _, c = make(w, { policy = conventional { zero_major = false } })
    expect(c.a, "0.4.0-dev.2", "0.4.0", "graduate")
    expect(c.b, "0.1.0", "0.1.0", "none")
  end)

  it("takes the label from plan.make (the command line) and bumps 0.x breaking to the next minor", function()
    local w = pair("0.3.1", "0.1.0")
    w:change("a", "feat!: big")
    local _, c = make(w, { prerelease = "dev" })
    expect(c.a, "0.3.1", "0.4.0-dev.1", "minor")
    expect(c.b, "0.1.0", "0.1.0", "none")
  end)

  it("starts a new series when a pre-release needs a larger bump", function()
    local w = pair("1.0.0", "1.0.0")
    w:set_version("a", "1.0.1-dev.1")
    w:commit("chore: a 1.0.1-dev.1")
    w:tag("a-v1.0.1-dev.1")
    w:change("a", "feat: now a feature")
    local _, c = make(w, { prerelease = "dev" })
    expect(c.a, "1.0.1-dev.1", "1.1.0-dev.1", "minor")
  end)
end)

describe("plan: release tags", function()
  it("takes the highest semver among reachable tags", function()
    local w = pair("0.10.0", "1.0.0")
    w:tag("a-v0.9.0")
    w:tag("a-v0.2.0")
    w:change("a", "fix: x")
    local _, c = make(w)
    assert.are.equal("a-v0.10.0", c.a.last_tag)
    expect(c.a, "0.10.0", "0.10.1", "patch")
  end)

  it("ignores release tags that the planned commit cannot reach", function()
    local w = pair("1.0.0", "1.0.0")
    w:git("checkout", "-q", "-b", "elsewhere")
    w:change("a", "feat: only on a side branch")
    w:tag("a-v1.1.0")
    w:git("checkout", "-q", "main")
    w:change("a", "fix: on main")
    local _, c = make(w)
    assert.are.equal("a-v1.0.0", c.a.last_tag)
    expect(c.a, "1.0.0", "1.0.1", "patch")
  end)

  it("refuses a tag that matches the template with a version that is not semver, naming it", function()
    local w = pair("1.0.0", "1.0.0")
    w:tag("a-v1.2")
    local p, err, code = w:plan()
    assert.is_nil(p)
    assert.are.equal("ETAG", code)
    assert.truthy(err:find("'a-v1.2'", 1, true), err)
    local out, status = cdp_err("plan " .. support.quote(w.dir))
    assert.are.equal(1, status)
    assert.truthy(out:find("a-v1.2", 1, true), out)
  end)

  it("gives a tag to the crate whose name makes its version semver", function()
    local w = fixture.new()
    w:crate("foo", "1.0.0")
    w:crate("foo-v2", "1.0.0")
    w:commit("chore: start")
    w:release()
    local _, c = make(w)
    assert.are.equal("foo-v2-v1.0.0", c["foo-v2"].last_tag)
    assert.are.equal("foo-v1.0.0", c.foo.last_tag)
  end)

  it("uses a custom tag template", function()
    local w = fixture.new { template = "release/{crate}/{version}" }
    w:crate("a", "1.0.0")
    w:crate("b", "1.0.0")
    w:commit("chore: start")
    w:release()
    w:change("a", "fix: x")
    local _, c = make(w, { tag_template = "release/{crate}/{version}" })
    assert.are.equal("release/a/1.0.0", c.a.last_tag)
    expect(c.a, "1.0.0", "1.0.1", "patch")
    -- with the default template nothing is released yet
    local _, d = make(w)
    expect(d.a, "1.0.0", "1.0.0", "initial")
  end)

  it("plans from an older commit and from --since", function()
    local w = pair("1.0.0", "1.0.0")
    local fix = w:change("a", "fix: first")
    w:change("a", "feat: second")
    local _, c = make(w, { from = fix })
    expect(c.a, "1.0.0", "1.0.1", "patch")
    _, c = make(w, { since = fix })
    expect(c.a, "1.0.0", "1.1.0", "minor")
    assert.are.same({ "feat: second" }, summaries(c.a))
  end)
end)

describe("plan: malformed input", function()
  it("names the file and line of a broken Cargo.toml", function()
    local w = pair("1.0.0", "1.0.0")
    w:write("crates/b/Cargo.toml", '[package]\nname = "b"\nversion = "1.0.0\nedition = "2021"\n')
    w:commit("chore: break it")
    local p, err, code = w:plan()
    assert.is_nil(p)
    assert.are.equal("ECARGO", code)
    assert.truthy(err:find("crates/b/Cargo.toml:3", 1, true), err)
  end)

  it("says when the directory is not a repository", function()
    local p, err = plan.make { dir = support.tmpdir() }
    assert.is_nil(p)
    assert.truthy(err:find("not in a git repository", 1, true), err)
  end)
end)

describe("plan: output", function()
  it("writes deterministic JSON with every crate, unchanged ones as 'none'", function()
    local w = pair("0.3.1", "0.1.0")
    w:change("b", "feat!: break b")
    local first = assert(w:plan()):to_json()
    for _ = 1, 3 do
      assert.are.equal(first, assert(w:plan()):to_json())
    end
    local data = assert(json.decode(first))
    assert.are.equal(2, #data.crates)
    assert.are.same({ "a", "b" }, { data.crates[1].name, data.crates[2].name })
    for _, c in ipairs(data.crates) do
      for _, key in ipairs { "name", "current", "next", "bump", "commits", "reasons" } do
        assert.is_not_nil(c[key], key)
      end
    end
    assert.are.equal("minor", data.crates[2].bump)
    assert.are.equal("feat!: break b", data.crates[2].commits[1].summary)
  end)

  it("cdp plan prints a table, JSON and an explanation", function()
    local w = pair("0.3.1", "0.1.0", "0.1")
    w:change("b", "feat!: break b")
    w:change("a", "docs: words")
    local out, code = cdp("plan " .. support.quote(w.dir))
    assert.are.equal(0, code)
    assert.truthy(out:find("b%s+0%.1%.0 → 0%.2%.0%s+minor%s+1"), out)
    assert.truthy(out:find("a%s+0%.3%.1 → 0%.3%.2%s+patch%s+1"), out)
    out, code = cdp("plan --json " .. support.quote(w.dir))
    assert.are.equal(0, code)
    local data = assert(json.decode(out))
    assert.are.equal("0.3.2", data.crates[1].next)
    out, code = cdp("plan " .. support.quote(w.dir) .. " --explain a")
    assert.are.equal(0, code)
    assert.truthy(out:find("docs: words  (no bump)", 1, true), out)
    assert.truthy(out:find('b (normal): "0.1" → "0.2"', 1, true), out)
  end)

  it("cdp plan exits 2 on bad usage and 1 on an unknown crate to explain", function()
    local w = pair("1.0.0", "1.0.0")
    local _, code = cdp("plan --bogus")
    assert.are.equal(2, code)
    _, code = cdp("plan --explain")
    assert.are.equal(2, code)
    _, code = cdp("plan " .. support.quote(w.dir) .. " --json --explain a")
    assert.are.equal(2, code)
    local out
    out, code = cdp_err("plan " .. support.quote(w.dir) .. " --explain nope")
    assert.are.equal(1, code)
    assert.truthy(out:find("no crate 'nope'", 1, true), out)
  end)

  it("cdp plan --pipeline takes a custom policy written in the pipeline script", function()
    local w = pair("1.0.0", "1.0.0")
    w:change("a", "docs: tiny")
    w:change("b", "chore: tidy")
    local script = w.dir .. "/../pipeline-" .. tostring(math.random(1e9)) .. ".lua"
    support.write(script, [[
local conventional = require "cdp.policies.conventional"
local base = conventional { types = { docs = "patch" } }
return {
  settings = { tag_template = "{crate}-v{version}" },
  -- our rule: the base policy, but anything touching b is a minor
  policy = function(draft)
    local levels = {}
    for _, name in ipairs(draft.names) do
      local n = #draft.crates[name].commits
      levels[name] = (name == "b" and n > 0) and "minor" or nil
    end
    local base_decisions = base(draft)
    for name, d in pairs(base_decisions) do
      if not levels[name] and d.next then levels[name] = d.bump end
    end
    return levels
  end,
}
]])
    local out, code = cdp("plan --json --pipeline " .. support.quote(script) .. " " .. support.quote(w.dir))
    assert.are.equal(0, code, out)
    local data = assert(json.decode(out))
    assert.are.same({ "1.0.1", "patch" }, { data.crates[1].next, data.crates[1].bump })
    assert.are.same({ "1.1.0", "minor" }, { data.crates[2].next, data.crates[2].bump })
    -- a policy naming an unknown crate fails the plan with exit 1
    support.write(script, [[return { policy = require("cdp.policies.conventional") { skip = { "ghost" } } }]])
    out, code = cdp_err("plan --pipeline " .. support.quote(script) .. " " .. support.quote(w.dir))
    assert.are.equal(1, code)
    assert.truthy(out:find("unknown crate 'ghost' in skip", 1, true), out)
  end)

  it("is callable from the cdp namespace and diffs two plans", function()
    local w = pair("1.0.0", "1.0.0")
    w:change("a", "feat: x")
    local cdp_ns = require "cdp"
    local before = assert(cdp_ns.plan { dir = w.dir })
    local after = assert(cdp_ns.plan { dir = w.dir, policy = conventional { types = { feat = "patch" } } })
    local diffs = before:diff(after)
    assert.are.same({ "a: bump minor → patch", "a: next 1.1.0 → 1.0.1" }, { diffs[1].text, diffs[2].text })
    assert.are.equal(2, #diffs)
    assert.are.same({}, before:diff(before))
  end)
end)
