-- The Version stage on its own, over workspaces the demo does not have: versions
-- inherited from [workspace.package], requirements inherited from
-- [workspace.dependencies], and propagation when a requirement stops admitting the
-- new version. Only the bytes of the edited values may change.
local support = require "tests.lua.support"
local git = require "cdp.git"
local json = require "cdp.json"

local version = require "cdp.stages.version"

local function ctx_for(dir, settings)
  local lines = {}
  return {
    run = "spec", run_dir = dir .. "/run", root = dir, stage = "version", settings = settings or {},
    log = function(...) lines[#lines + 1] = table.concat({ ... }, " ") end, lines = lines,
  }
end

local function fork_of(dir)
  local repo = git.open(dir)
  local head = repo:head()
  repo:close()
  support.git(dir, "checkout", "-q", "-b", "cdp/release/spec")
  return { path = dir, commit = head, branch = "cdp/release/spec", base = "main", origin = false }
end

-- Lines of the diff a commit made, without headers: "-old" / "+new".
local function changed_lines(dir, rev)
  local out = {}
  for line in support.git(dir, "show", "--format=", "--unified=0", rev):gmatch("[^\n]+") do
    if line:match("^[-+][^-+]") or line:match("^[-+]$") then
      out[#out + 1] = line
    end
  end
  return out
end

describe("Version stage", function()
  it("bumps [workspace.package] and rewrites requirements inherited from [workspace.dependencies]", function()
    local dir = support.git_init()
    support.commit(dir, "chore: start", {
      ["Cargo.toml"] = [[
[workspace]
members = ["base", "app"]
resolver = "2"

[workspace.package]
version = "1.4.0"   # shared by base and app
edition = "2021"
license = 'MIT'

[workspace.dependencies]
base = { path = "base", version = "1.4.0" } # exact on purpose
]],
      ["base/Cargo.toml"] = '[package]\nname = "base"\nversion.workspace = true\nedition.workspace = true\nlicense.workspace = true\ndescription = "b"\n',
      ["base/src/lib.rs"] = "pub fn b() {}\n",
      ["app/Cargo.toml"] = '[package]\nname = "app"\nversion.workspace = true\nedition.workspace = true\nlicense.workspace = true\ndescription = "a"\n\n[dependencies]\nbase.workspace = true\n',
      ["app/src/lib.rs"] = "pub fn a() {}\n",
    })
    support.git(dir, "tag", "base-v1.4.0")
    support.git(dir, "tag", "app-v1.4.0")
    support.commit(dir, "feat(base)!: drop the old API", { ["base/src/lib.rs"] = "pub fn b2() {}\n" })
    local fork = fork_of(dir)
    local policy = require "cdp.policies.conventional" { lockstep = { { "base", "app" } } }
    local ctx = ctx_for(dir)
    ctx.policy = policy
    local out = version.run(ctx, { fork = fork })

    local by = {}
    for _, c in ipairs(out.plan.crates) do by[c.name] = c end
    assert.are.equal("2.0.0", by.base.next)
    assert.are.equal("2.0.0", by.app.next)
    assert.are_not.equal(fork.commit, out.versioned.commit)
    assert.are.same({
      '-version = "1.4.0"   # shared by base and app',
      '+version = "2.0.0"   # shared by base and app',
      '-base = { path = "base", version = "1.4.0" } # exact on purpose',
      '+base = { path = "base", version = "2.0.0" } # exact on purpose',
    }, changed_lines(dir, out.versioned.commit))
    local meta = json.decode(support.sh("cd " .. support.quote(dir) .. " && cargo metadata --format-version 1 --no-deps --offline"))
    for _, p in ipairs(meta.packages) do
      assert.are.equal("2.0.0", p.version)
    end
    assert.are.equal("chore(release): app 2.0.0, base 2.0.0", support.git(dir, "log", "-1", "--format=%s"))
  end)

  it("rewrites a dependent's requirement that no longer admits the new version, and bumps it", function()
    local dir = support.git_init()
    support.commit(dir, "chore: start", {
      ["Cargo.toml"] = '[workspace]\nmembers = ["core", "cli"]\nresolver = "2"\n',
      ["core/Cargo.toml"] = '[package]\nname = "core"\nversion = "0.3.1"\nedition = "2021"\n',
      ["core/src/lib.rs"] = "pub fn c() {}\n",
      ["cli/Cargo.toml"] = '[package]\nname = "cli"\nversion = "1.0.0"\nedition = "2021"\n\n[dependencies.core]\npath = "../core"\nversion = "0.3"\n\n[dev-dependencies]\ncore = { path = "../core", version = "0.3.1" }\n',
      ["cli/src/lib.rs"] = "pub fn x() {}\n",
    })
    support.sh("cd " .. support.quote(dir) .. " && cargo generate-lockfile --offline -q")
    support.commit(dir, "chore: lock", {})
    support.git(dir, "tag", "core-v0.3.1")
    support.git(dir, "tag", "cli-v1.0.0")
    support.commit(dir, "feat(core)!: a breaking change", { ["core/src/lib.rs"] = "pub fn c2() {}\n" })
    local fork = fork_of(dir)
    local out = version.run(ctx_for(dir), { fork = fork })
    local by = {}
    for _, c in ipairs(out.plan.crates) do by[c.name] = c end
    assert.are.equal("0.4.0", by.core.next)
    assert.are.equal("1.0.1", by.cli.next)
    local cli = support.read(dir .. "/cli/Cargo.toml")
    assert.are.equal('[package]\nname = "cli"\nversion = "1.0.1"\nedition = "2021"\n\n[dependencies.core]\npath = "../core"\nversion = "0.4"\n\n[dev-dependencies]\ncore = { path = "../core", version = "0.4.0" }\n', cli)
    assert.are.same({ "cli/Cargo.toml", "core/Cargo.toml", "Cargo.lock" }, out.versioned.files)
    assert.matches('name = "core"\nversion = "0.4.0"', support.read(dir .. "/Cargo.lock"), 1, true)
  end)

  it("starts from the fork's commit whatever a killed attempt left in the fork", function()
    local dir = support.git_init()
    support.commit(dir, "chore: start", {
      ["Cargo.toml"] = '[package]\nname = "solo"\nversion = "0.1.0"\nedition = "2021"\n',
      ["src/lib.rs"] = "",
      -- a repository that hides dot files: cdp's temporary files are ignored too
      [".gitignore"] = "/target\n.*.cdp-*\n",
    })
    support.git(dir, "tag", "v0.1.0")
    support.commit(dir, "fix: a fix", { ["src/lib.rs"] = "pub fn f() {}\n" })
    local fork = fork_of(dir)
    -- What a SIGKILL at any byte of Version or Package leaves: a half-done edit, the
    -- temporary file of an atomic write (hidden by .gitignore or not), a changelog
    -- written before its commit, a staged file, and a build in an ignored target/.
    support.write(dir .. "/Cargo.toml", '[package]\nname = "solo"\nversion = "0.1.1"\nedition = "2021"\n')
    support.write(dir .. "/.Cargo.toml.cdp-Ab12Cd", "[package]\nname = \"so")
    support.write(dir .. "/src/.lib.rs.cdp-x9Y8z7", "pub fn")
    support.write(dir .. "/CHANGELOG.md", "# Changelog\n\n## [0.1.1]\n")
    support.write(dir .. "/staged.txt", "staged")
    support.git(dir, "add", "staged.txt")
    support.write(dir .. "/target/debug/solo", "binary")
    support.git(dir, "commit", "-qam", "chore: an attempt's own commit")
    local out = version.run(ctx_for(dir), { fork = fork })
    assert.are.equal(fork.commit, support.git(dir, "rev-parse", out.versioned.commit .. "~1"))
    assert.are.equal("cdp/release/spec", support.git(dir, "rev-parse", "--abbrev-ref", "HEAD"))
    assert.are.equal("!! target/", support.git(dir, "status", "--porcelain", "--ignored"))
    assert.are.same({ "Cargo.toml" }, out.versioned.files)
    assert.are.equal("binary", support.read(dir .. "/target/debug/solo"))
  end)

  it("resumes past the lock files git leaves when a kill lands between lock and rename", function()
    -- e2e/kill_resume's random loop (seed 17558) killed Version inside
    -- reference_set: refs/cdp/RUN/version.lock stayed, and every resume failed
    -- with "failed to lock file ... for writing"
    local dir = support.git_init()
    support.commit(dir, "chore: start", {
      ["Cargo.toml"] = '[package]\nname = "solo"\nversion = "0.1.0"\nedition = "2021"\n',
      ["src/lib.rs"] = "",
    })
    support.git(dir, "tag", "v0.1.0")
    support.commit(dir, "fix: a fix", { ["src/lib.rs"] = "pub fn f() {}\n" })
    local fork = fork_of(dir)
    local locks = { ".git/refs/cdp/spec/version.lock", ".git/refs/heads/cdp/release/spec.lock", ".git/index.lock",
      ".git/HEAD.lock", ".git/packed-refs.lock" }
    for _, path in ipairs(locks) do
      support.write(dir .. "/" .. path, "")
    end
    local out = version.run(ctx_for(dir), { fork = fork })
    assert.are.equal(fork.commit, support.git(dir, "rev-parse", out.versioned.commit .. "~1"))
    assert.are.equal(out.versioned.commit, support.git(dir, "rev-parse", "refs/cdp/spec/version"))
    for _, path in ipairs(locks) do
      assert.is_nil(io.open(dir .. "/" .. path), path)
    end
  end)

  it("makes no commit when nothing changed since the last releases", function()
    local dir = support.git_init()
    support.commit(dir, "chore: start", {
      ["Cargo.toml"] = '[package]\nname = "solo"\nversion = "0.1.0"\nedition = "2021"\n',
      ["src/lib.rs"] = "",
    })
    support.git(dir, "tag", "v0.1.0")
    local fork = fork_of(dir)
    local out = version.run(ctx_for(dir), { fork = fork })
    assert.are.equal(fork.commit, out.versioned.commit)
    assert.are.equal("none", out.plan.crates[1].bump)
  end)

  it("releases a never-released crate at its manifest version, with no edit and no commit", function()
    local dir = support.git_init()
    support.commit(dir, "chore: start", {
      ["Cargo.toml"] = '[workspace]\nmembers = ["old", "fresh"]\nresolver = "2"\n',
      ["old/Cargo.toml"] = '[package]\nname = "old"\nversion = "1.0.0"\nedition = "2021"\n',
      ["old/src/lib.rs"] = "",
    })
    support.git(dir, "tag", "old-v1.0.0")
    support.commit(dir, "feat(fresh): a new crate", {
      ["fresh/Cargo.toml"] = '[package]\nname = "fresh"\nversion = "0.1.0"\nedition = "2021"\n',
      ["fresh/src/lib.rs"] = "pub fn f() {}\n",
    })
    local fork = fork_of(dir)
    local ctx = ctx_for(dir)
    local out = version.run(ctx, { fork = fork })
    local planned = require("cdp.release").planned(out.plan)
    assert.are.equal(1, #planned)
    assert.are.equal("fresh", planned[1].name)
    assert.are.equal("0.1.0", planned[1].next)
    assert.are.equal(fork.commit, out.versioned.commit)
    assert.are.same({}, out.versioned.files)
    assert.matches("no version commit", table.concat(ctx.lines, "\n"), 1, true)
  end)

  it("says to run cargo fetch or unset cargo_offline when cargo cannot resolve offline", function()
    local dir = support.git_init()
    support.commit(dir, "chore: start", {
      ["Cargo.toml"] = '[package]\nname = "solo"\nversion = "0.1.0"\nedition = "2021"\n',
      ["src/lib.rs"] = "",
    })
    support.sh("cd " .. support.quote(dir) .. " && cargo generate-lockfile --offline -q")
    support.commit(dir, "chore: lock", {})
    support.git(dir, "tag", "v0.1.0")
    -- A dependency this machine's cargo cache has never seen.
    support.commit(dir, "fix: lean on a crate from the registry", {
      ["Cargo.toml"] = '[package]\nname = "solo"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\ncdp-nowhere-7f3 = "1"\n',
    })
    local fork = fork_of(dir)
    local ok, err = pcall(version.run, ctx_for(dir, { cargo_offline = true }), { fork = fork })
    assert.is_false(ok)
    assert.matches("cannot refresh Cargo.lock with `cargo update --workspace`", err, 1, true)
    assert.matches("cdp-nowhere-7f3", err, 1, true)
    assert.matches("run `cargo fetch` in the repository", err, 1, true)
    assert.matches("or unset cargo_offline", err, 1, true)
  end)
end)
