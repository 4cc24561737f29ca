-- The workspace model, from real `cargo metadata` over fixture workspaces.
local support = require "tests.lua.support"
local fixture = require "tests.fixtures.plan_workspace"
local workspace = require "cdp.workspace"

local function names(list)
  local out = {}
  for i, x in ipairs(list) do
    out[i] = x.name or x.from
  end
  return out
end

describe("cdp.workspace", function()
  it("reads members, versions, dirs relative to the repository, publish and dependencies", function()
    local w = fixture.new { root_extra = '[workspace.package]\nversion = "3.1.0"\n\n[workspace.dependencies]\nb = { path = "crates/b", version = "1.2" }\n' }
    w:crate("b", "1.2.0", { publish = '["internal"]' })
    w:crate("a", "workspace", {
      deps = { b = "{ workspace = true }" },
      dev_deps = { cee = '{ path = "../c", version = "0.1", package = "c" }' },
      extra = '\n[target.\'cfg(unix)\'.build-dependencies]\nc = { path = "../c", version = "0.1.0" }\n',
    })
    w:crate("c", "0.1.0", { publish = "false" })
    w:commit("chore: start")
    local ws = assert(workspace.load(w.dir, { repo_root = w.dir }))
    assert.are.same({ "a", "b", "c" }, names(ws.members))
    assert.is_false(ws.single)
    local a, b, c = ws.by_name.a, ws.by_name.b, ws.by_name.c
    assert.are.equal("3.1.0", a.version)
    assert.is_true(a.inherited_version)
    assert.is_false(b.inherited_version)
    assert.are.equal("crates/a", a.dir)
    assert.are.equal(w.dir .. "/crates/a/Cargo.toml", a.manifest_path)
    assert.is_true(a.publish)
    assert.are.same({ "internal" }, b.publish)
    assert.is_false(c.publish)
    local deps = {}
    for _, d in ipairs(a.deps) do
      deps[#deps + 1] = { d.name, d.kind, d.req, d.req_text or false, d.rename or false, d.target or false,
        d.member, d.inherited }
    end
    assert.are.same({
      { "b", "normal", "^1.2", "1.2", false, false, true, true }, -- as [workspace.dependencies] writes it
      { "c", "build", "^0.1.0", "0.1.0", false, "cfg(unix)", true, false },
      { "c", "dev", "^0.1", "0.1", "cee", false, true, false },
    }, deps)
    assert.are.same({ "a" }, names(ws:dependents("b")))
    assert.are.same({ { "a", "build" }, { "a", "dev" } }, (function()
      local out = {}
      for i, e in ipairs(ws:dependents("c")) do out[i] = { e.from, e.kind } end
      return out
    end)())
    assert.are.same({ "b", "c", "a" }, ws.order)
  end)

  it("is a workspace of one for a single crate at the repository root", function()
    local w = fixture.new { single = true }
    w:crate("solo", "0.1.0", { dir = "" })
    w:commit("chore: start")
    local ws = assert(workspace.load(w.dir, { repo_root = w.dir }))
    assert.is_true(ws.single)
    assert.are.equal("", ws.members[1].dir)
    assert.are.same({ "solo" }, ws.order)
  end)

  it("passes cargo's message for a broken manifest on, naming file and line", function()
    local w = fixture.new()
    w:crate("a", "1.0.0", { extra = "[features\n" })
    local ws, err, code = workspace.load(w.dir)
    assert.is_nil(ws)
    assert.are.equal("ECARGO", code)
    assert.truthy(err:find("cargo metadata failed in " .. w.dir, 1, true), err)
    assert.truthy(err:find("crates/a/Cargo.toml:1[0-9]"), err)
  end)

  it("orders publishing by normal and build deps and names the crates of a cycle", function()
    local function m(name, deps)
      local list = {}
      for i, d in ipairs(deps) do
        list[i] = { name = d[1], kind = d[2], member = true }
      end
      return { name = name, deps = list }
    end
    assert.are.same({ "a", "b", "c", "d" }, workspace.publish_order {
      m("d", { { "c", "normal" } }), m("c", { { "a", "normal" }, { "b", "build" } }), m("b", {}), m("a", { { "d", "dev" } }),
    })
    local order, err, code = workspace.publish_order {
      m("a", { { "b", "normal" } }), m("b", { { "c", "normal" } }), m("c", { { "a", "build" } }), m("z", {}),
    }
    assert.is_nil(order)
    assert.are.equal("ECYCLE", code)
    assert.are.equal("dependency cycle among workspace crates (normal/build dependencies): a -> b -> c -> a", err)
  end)

  it("reads inherited versions and dependencies from manifest text", function()
    local f = workspace.manifest_facts [[
[package]
name = "x"
version.workspace = true

[dependencies]
serde = { workspace = true, features = ["derive"] }
log.workspace = true
plain = "1"

[target.'cfg(unix)'.dev-dependencies.nix]
workspace = true
]]
    assert.is_true(f.inherited_version)
    assert.are.same({ serde = true, log = true, nix = true }, f.inherited_deps)
    assert.is_true(workspace.manifest_facts('[package]\nversion = { workspace = true }\n').inherited_version)
    assert.is_false(workspace.manifest_facts('[package]\nversion = "1.0.0"\n[workspace]\nversion.workspace = true\n').inherited_version)
  end)

  it("makes paths relative to the repository root", function()
    assert.are.equal("", workspace.relative("/r/x", "/r/x/"))
    assert.are.equal("crates/a", workspace.relative("/r/x/crates/a", "/r/x"))
    assert.is_nil(workspace.relative("/r/xy/a", "/r/x"))
  end)

  it("refuses a member outside the repository root", function()
    local w = fixture.new()
    w:crate("a", "1.0.0")
    local ws, err, code = workspace.load(w.dir, { repo_root = w.dir .. "/crates/b" })
    assert.is_nil(ws)
    assert.are.equal("EOUTSIDE", code)
    assert.truthy(err:find("crate a", 1, true), err)
    assert.is_nil(support.read(w.dir .. "/crates/b/Cargo.toml"))
  end)

  it("compares members by real path: a crate directory linked out of the repository is outside", function()
    local w = fixture.new()
    w:crate("a", "1.0.0")
    local elsewhere = support.tmpdir()
    support.write(elsewhere .. "/victim/Cargo.toml", '[package]\nname = "victim"\nversion = "0.1.0"\nedition = "2021"\n')
    support.write(elsewhere .. "/victim/src/lib.rs", "")
    support.sh(("ln -s %s %s"):format(support.quote(elsewhere .. "/victim"), support.quote(w.dir .. "/crates/victim")))
    support.write(w.dir .. "/Cargo.toml", '[workspace]\nresolver = "2"\nmembers = ["crates/*"]\n')
    local ws, err, code = workspace.load(w.dir, { repo_root = w.dir })
    assert.is_nil(ws)
    assert.are.equal("EOUTSIDE", code)
    assert.are.equal(("crate victim at %s/crates/victim is a link to %s/victim, outside the repository %s")
      :format(w.dir, elsewhere, w.dir), err)
  end)

  it("refuses a manifest that is a link, naming it", function()
    local w = fixture.new()
    w:crate("a", "1.0.0")
    local elsewhere = support.tmpdir()
    support.write(elsewhere .. "/Cargo.toml", support.read(w.dir .. "/crates/a/Cargo.toml"))
    support.sh(("ln -sf %s %s"):format(support.quote(elsewhere .. "/Cargo.toml"), support.quote(w.dir .. "/crates/a/Cargo.toml")))
    local ws, err, code = workspace.load(w.dir, { repo_root = w.dir })
    assert.is_nil(ws)
    assert.are.equal("ELOOP", code)
    assert.truthy(err:find(w.dir .. "/crates/a/Cargo.toml", 1, true), err)
  end)

  -- What the walk needs to know to count commits as cargo ships files: the
  -- fixtures of tests/fixtures/attribution.lua, read by real cargo metadata.
  describe("file sets", function()
    local attribution = require "tests.fixtures.attribution"

    local function load(h)
      return assert(workspace.load(h.dir, { repo_root = h.dir }))
    end

    it("reads include, exclude and a readme from outside the crate", function()
      local ws = load(attribution.root_include())
      assert.are.equal("Cargo.toml", ws.manifest)
      -- app is a binary: the workspace's lock is one of its files (ships_lock)
      local app = { include = { "src/**", "README.md" }, extra = { "Cargo.lock" } }
      assert.are.same(app, ws.by_name.app.files)
      assert.are.same({ extra = { "README.md" } }, ws.by_name.x.files)
      assert.is_nil(ws.by_name.y.files)
      local files, inherits = ws:walk_files()
      assert.are.same({ app, { extra = { "README.md" } }, false }, files)
      assert.are.same({ false, false, false }, inherits)
      ws = load(attribution.exclude_list())
      assert.are.same({ exclude = { "tests/fixtures/**", "*.snap", "!keep.snap", "/benches/" } }, ws.by_name.a.files)
    end)

    it("gives a crate with a bin target the workspace's Cargo.lock, and a library none", function()
      local w = fixture.new { root_extra = "" }
      w:crate("lib", "0.1.0")
      w:crate("tool", "1.0.0", { extra = '\n[[bin]]\nname = "tool-cli"\npath = "src/cli.rs"\n' })
      w:crate("auto", "1.0.0")
      w:write("crates/tool/src/cli.rs", "fn main() {}\n")
      w:write("crates/auto/src/main.rs", "fn main() {}\n") -- cargo finds it without [[bin]]
      w:commit("chore: start")
      local ws = assert(workspace.load(w.dir, { repo_root = w.dir }))
      assert.is_nil(ws.by_name.lib.files)
      assert.is_nil(ws.by_name.lib.lock)
      assert.are.same({ extra = { "Cargo.lock" } }, ws.by_name.tool.files)
      assert.are.equal("Cargo.lock", ws.by_name.auto.lock)
      -- a workspace below the repository's top: the lock is its root's
      local below = assert(workspace.load(w.dir, { repo_root = (support.sh("dirname " .. support.quote(w.dir)):gsub("%s+$", "")) }))
      local top = w.dir:match("([^/]+)$")
      assert.are.same({ extra = { top .. "/Cargo.lock" } }, below.by_name.tool.files)
      -- the guess from the manifests alone finds the same bin targets
      local guess = assert(workspace.guess(w.dir, { repo_root = w.dir }))
      assert.are.same(names(ws.members), names(guess.members))
      assert.are.same({ ws:walk_files() }, { guess:walk_files() })
    end)

    it("names the [workspace.*] entries each crate inherits", function()
      local ws = load(attribution.workspace_dependencies())
      assert.are.same({ "dependencies.serde", "package.edition" }, ws.by_name.a.inherits)
      assert.are.same({ "dependencies.anyhow", "package.rust-version" }, ws.by_name.b.inherits)
      assert.are.same({}, ws.by_name.c.inherits)
      local _, inherits = ws:walk_files()
      assert.are.same({ ws.by_name.a.inherits, ws.by_name.b.inherits, false }, inherits)
    end)

    it("takes inherited include lists and readmes from the workspace root", function()
      local w = fixture.new { root_extra = '[workspace.package]\ninclude = ["src/**"]\nreadme = "docs/README.md"\n' }
      w:crate("a", "1.0.0")
      w:write("crates/a/Cargo.toml", '[package]\nname = "a"\nversion = "1.0.0"\nedition = "2021"\n'
        .. 'include.workspace = true\nreadme.workspace = true\nlicense-file = "../../LICENSE"\n')
      w:write("docs/README.md", "# a\n")
      w:write("LICENSE", "MIT\n")
      w:commit("chore: start")
      local ws = assert(workspace.load(w.dir, { repo_root = w.dir }))
      assert.are.same({ include = { "src/**" }, extra = { "docs/README.md", "LICENSE" } }, ws.by_name.a.files)
      assert.are.same({ "package.include", "package.readme" }, ws.by_name.a.inherits)
    end)

    it("makes the root manifest's path relative to the repository", function()
      local w = fixture.new()
      w:crate("a", "1.0.0")
      w:commit("chore: start")
      local ws = assert(workspace.load(w.dir, { repo_root = support.sh("dirname " .. support.quote(w.dir)):gsub("%s+$", "") }))
      assert.are.equal(w.dir:match("[^/]+$") .. "/Cargo.toml", ws.manifest)
    end)
  end)

  describe("from the manifests alone", function()
    it("finds members by their globs and exclude list, as cargo metadata does", function()
      local w = fixture.new { root_extra = 'exclude = ["crates/gone"]\n' }
      w:crate("a", "1.0.0")
      w:crate("b", "0.2.0", { dir = "tools/b" })
      w:write("Cargo.toml", '[workspace]\nresolver = "2"\nmembers = ["crates/*", "tools/[b]"]\nexclude = ["crates/gone"]\n')
      w:write("crates/gone/Cargo.toml", '[package]\nname = "gone"\nversion = "0.1.0"\n')
      w:write("crates/README.md", "not a crate\n")
      w:commit("chore: start")
      local quick = assert(workspace.from_manifests(w.dir, { repo_root = w.dir }))
      local cargo = assert(workspace.load(w.dir, { repo_root = w.dir }))
      local function dirs(ws)
        local out = {}
        for _, m in ipairs(ws.members) do
          out[#out + 1] = m.name .. " " .. m.dir
        end
        return out
      end
      assert.are.same(dirs(cargo), dirs(quick))
      assert.are.equal("0.2.0", quick.by_name.b.version)
    end)

    it("says nothing where only cargo can tell", function()
      local w = fixture.new()
      w:crate("a", "1.0.0")
      w:write("Cargo.toml", '[workspace]\nmembers = ["crates/**"]\n')
      assert.is_nil(workspace.from_manifests(w.dir, { repo_root = w.dir }))
      w:write("Cargo.toml", "[workspace\n")
      assert.is_nil(workspace.from_manifests(w.dir, { repo_root = w.dir }))
      w:write("Cargo.toml", '[workspace]\nmembers = ["crates/*"]\n')
      w:write("crates/notes/README.md", "a directory without a manifest: cargo refuses it\n")
      assert.is_nil(workspace.from_manifests(w.dir, { repo_root = w.dir }))
      assert.is_nil(workspace.from_manifests(support.tmpdir()))
    end)
  end)
end)
