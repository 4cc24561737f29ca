-- cdp.manifest against every real manifest in the shared corpus and against
-- hand-written shapes the corpus lacks: reads never crash, edits change only
-- the bytes of the values they touch, and real cargo reads every edited file
-- it read before, with the new versions.
local support = require "tests.lua.support"
local manifest = require "cdp.manifest"
local toml = require "cdp.toml"
local json = require "cdp.json"

local q = support.quote
local CORPUS = (os.getenv("CDP_CORPUS") or "../shared/corpus") .. "/manifests"
-- The corpus sits beside CI's checkout, not beside a user's clone: without it the
-- corpus tests are left out, unless CDP_REQUIRE_CORPUS=1 (.ci/run) makes that a failure.
local HAVE_CORPUS = require("cdp.fs").exists(CORPUS)
local REQUIRE_CORPUS = os.getenv("CDP_REQUIRE_CORPUS") == "1"
local NEW_VERSION = "77.8.9"
local NEW_REQ = "^77.8.9"

local function corpus_files()
  local out = support.sh("cd " .. q(CORPUS) .. " && find . -type f -name '*Cargo.toml' | LC_ALL=C sort")
  local files = {}
  for line in out:gmatch("[^\n]+") do
    files[#files + 1] = line:gsub("^%./", "")
  end
  return files
end

-- Bump the package version (and [workspace.package]'s) where it is written
-- out, and every requirement that has a version. Returns the new text, the
-- changes, the version cargo should report (or nil) and the crates edited.
local function bump_all(text, name)
  local info, msg, code = manifest.read(text, name)
  if not info then
    return nil, msg, code
  end
  local deps, crates = {}, {}
  for _, d in ipairs(info.deps) do
    if d.req then
      deps[d.name] = NEW_REQ
      crates[d.name] = true
    end
  end
  local new, changes, expect_version = text, {}, nil
  local function apply(opts)
    local t, c, ecode = manifest.edit(new, name, opts)
    assert(t, c, ecode)
    new = t
    for _, x in ipairs(c) do
      changes[#changes + 1] = x
    end
  end
  if info.workspace and info.workspace.version then
    apply { version = NEW_VERSION, workspace = true }
    if info.package and type(info.package.version) == "table" then
      expect_version = NEW_VERSION
    end
  end
  if info.package and type(info.package.version) == "string" then
    apply { version = NEW_VERSION }
    expect_version = NEW_VERSION
  end
  apply { deps = deps }
  return new, changes, expect_version, crates
end

-- Outside the edited values' spans, both texts hold the same bytes.
local function check_spans(name, orig, new, changes)
  local d0 = assert(toml.parse(orig, { name = name }))
  local d1 = assert(toml.parse(new, { name = name }))
  local spans = {}
  for _, c in ipairs(changes) do
    local s0, e0 = d0:span(c.path)
    local s1, e1 = d1:span(c.path)
    assert(s0 and s1, name .. ": no span for an edited value")
    assert.are.equal(c.from, d0:get(c.path))
    assert.are.equal(c.to, d1:get(c.path))
    spans[#spans + 1] = { s0, e0, s1, e1 }
  end
  table.sort(spans, function(a, b) return a[1] < b[1] end)
  local p0, p1 = 1, 1
  for _, s in ipairs(spans) do
    assert.are.equal(orig:sub(p0, s[1] - 1), new:sub(p1, s[3] - 1))
    p0, p1 = s[2] + 1, s[4] + 1
  end
  assert.are.equal(orig:sub(p0), new:sub(p1))
  d0:close()
  d1:close()
end

-- Independently of spans: a line diff shows only lines holding edited values.
local function check_lines(name, orig, new, changes)
  local function lines(s)
    local t = {}
    for l in (s .. "\n"):gmatch("(.-)\n") do
      t[#t + 1] = l
    end
    return t
  end
  local a, b = lines(orig), lines(new)
  assert.are.equal(#a, #b, name .. ": the number of lines changed")
  local differing = 0
  for i = 1, #a do
    if a[i] ~= b[i] then
      differing = differing + 1
      local explained = false
      for _, c in ipairs(changes) do
        if a[i]:find(c.from, 1, true) and b[i]:find(c.to, 1, true) then
          explained = true
        end
      end
      assert(explained, ("%s:%d changed but holds no edited value:\n-%s\n+%s"):format(name, i, a[i], b[i]))
    end
  end
  assert(differing <= #changes, name .. ": more lines changed than values")
  assert(#changes == 0 or differing > 0, name .. ": values changed but no line did")
end

-- The toolchain's own cargo where rustup manages it: the same binary, without the
-- proxy's start-up, which is half the cost of each of the hundreds of runs here.
local function cargo()
  local found = support.sh("rustup which cargo 2>/dev/null || command -v cargo || ls \"$HOME/.cargo/bin/cargo\"",
    { may_fail = true })
  return (found:match("[^\n]+"))
end

-- `cargo metadata --format-version 1 --no-deps --offline` in each of DIRS (under
-- ROOT), two at a time. Returns { [dir] = {ok, meta, err, manifest_path} }.
local function cargo_in(root, dirs)
  if #dirs == 0 then
    return {}
  end
  support.write(root .. "/.dirs", table.concat(dirs, "\n") .. "\n")
  support.sh(("cd %s && xargs -P 2 -I{} -d '\\n' sh -c "
      .. "'cd \"{}\" && %s metadata --format-version 1 --no-deps --offline --manifest-path Cargo.toml "
      .. ">.out.json 2>.err.txt; echo $? > .rc' < .dirs"):format(q(root), q(cargo())))
  local results = {}
  for _, d in ipairs(dirs) do
    local dir = root .. "/" .. d
    local ok = support.read(dir .. "/.rc"):match("^0") ~= nil
    results[d] = {
      ok = ok,
      meta = ok and assert(json.decode(support.read(dir .. "/.out.json"))) or nil,
      err = support.read(dir .. "/.err.txt"),
      manifest_path = dir .. "/Cargo.toml",
    }
  end
  return results
end

-- Write FILES ({ {path = "a/b/Cargo.toml", text = ...} }) under a new
-- directory, each crate with an empty src/lib.rs, and ask cargo for the
-- metadata of each. Returns { {ok, meta, err, manifest_path} } in the order of
-- FILES. A manifest in a project's tree (tree-*/PROJECT/...) is usually a member
-- of that project's workspace, and cargo reads every member to answer for any
-- one of them: its answer is taken from the one run at the project's root when
-- that run succeeded and lists it. The others (no root manifest, the root run
-- failed, or the manifest is no member of it) are run on their own.
local function cargo_metadata_all(files)
  local root = support.tmpdir()
  local list, roots, is_root = {}, {}, {}
  for i, f in ipairs(files) do
    list[i] = f.path:match("^(.*)/Cargo%.toml$")
    if list[i]:match("^tree%-[^/]+/[^/]+$") then
      roots[#roots + 1] = list[i]
      is_root[list[i]] = true
    end
  end
  support.write(root .. "/.dirs", table.concat(list, "\n") .. "\n")
  support.sh(("cd %s && while read -r d; do mkdir -p \"$d/src\" && : > \"$d/src/lib.rs\"; done < .dirs")
    :format(q(root)))
  for _, f in ipairs(files) do
    local out = assert(io.open(root .. "/" .. f.path, "wb"))
    out:write(f.text)
    out:close()
  end
  local at_root = cargo_in(root, roots)
  local results, alone = {}, {}
  for i, d in ipairs(list) do
    local top = d:match("^tree%-[^/]+/[^/]+")
    local whole = top and is_root[top] and at_root[top]
    local path = root .. "/" .. d .. "/Cargo.toml"
    if d == top then
      results[i] = whole
    elseif whole and whole.ok then
      for _, p in ipairs(whole.meta.packages) do
        if p.manifest_path == path then
          results[i] = { ok = true, meta = whole.meta, err = whole.err, manifest_path = path }
        end
      end
    end
    if not results[i] then
      alone[#alone + 1] = d
    end
  end
  local own = cargo_in(root, alone)
  for i, d in ipairs(list) do
    results[i] = results[i] or own[d]
  end
  return results
end

local function package_of(result)
  for _, p in ipairs(result.meta.packages) do
    if p.manifest_path == result.manifest_path then
      return p
    end
  end
end

-- Hand-written shapes: text, what manifest.edit is asked, and the exact
-- replacements (in order of appearance) that must make up the whole change.
local SHAPES = {
  {
    name = "crlf/Cargo.toml",
    text = '[package]\r\nname = "shape-crlf"\r\nversion = "0.1.0"\r\nedition = "2021"\r\n\r\n'
      .. '[dependencies]\r\nserde = "1.0"  # serialisation\r\n'
      .. '[dev-dependencies.serde_json]\r\nversion = "1.0"\r\n',
    opts = { version = "0.2.0", deps = { serde = "1.0.200", serde_json = "1.0.100" } },
    replace = { { '"0.1.0"', '"0.2.0"' }, { '"1.0"', '"1.0.200"' }, { '"1.0"', '"1.0.100"' } },
  },
  {
    name = "comments/Cargo.toml",
    text = [==[
# A crate with comments after values and arrays over many lines.
[package]
name = "shape-comments" # the name
version = "0.1.0" # bumped by cdp
edition = "2021"
keywords = [
  "a", # first
  # between
  "b",
]

[dependencies]
serde = { version = "1.0", features = [
  "derive", # the derive macros
  "rc",
], optional = true } # why optional
log = { path = "../log" } # path only: no version, left alone
anyhow = { version = "1", default-features = false } # after
]==],
    opts = { version = "0.1.1", deps = { serde = "1.0.1", log = "9", anyhow = "1.0.80" } },
    replace = { { '"0.1.0"', '"0.1.1"' }, { '"1.0"', '"1.0.1"' }, { '"1"', '"1.0.80"' } },
  },
  {
    name = "literal/Cargo.toml",
    text = [==[
[package]
name = 'shape-literal'
version = '0.3.0'
edition = '2021'

[dependencies]
tokio = { version = '1.0', features = ['full'] }
"regex" = '1'

[dependencies.'once_cell']
version = '''1.19'''

[package.metadata."docs.rs"]
all-features = true
]==],
    opts = { version = "0.4.0", deps = { tokio = "1.38", regex = "1.10", once_cell = "1.20" } },
    replace = { { "'0.3.0'", "'0.4.0'" }, { "'1.0'", "'1.38'" }, { "'1'", "'1.10'" }, { "'''1.19'''", "'''1.20'''" } },
  },
  {
    name = "targets/Cargo.toml",
    text = [==[
[package]
name = "shape-targets"
version = "1.0.0"
edition = "2021"

[target."cfg(unix)".dependencies]
libc = "0.2"

[target.'cfg(windows)'.dev-dependencies]
libc = { version = "0.2.150" }

[target.'cfg(target_os = "linux")'.build-dependencies.libc]
version = "0.2"
]==],
    opts = { deps = { libc = "0.2.155" } },
    replace = { { '"0.2"', '"0.2.155"' }, { '"0.2.150"', '"0.2.155"' }, { '"0.2"', '"0.2.155"' } },
  },
  {
    name = "renamed-dotted/Cargo.toml",
    text = [==[
[package]
name = "shape-renamed"
version = "0.1.0"
edition = "2021"

[dependencies]
bar = { package = "foo", version = "1" }
baz.package = "foo"
baz.version = "1" # dotted
quux = { version = "1" } # not foo

[dev-dependencies.other]
package = "foo"
version = "1"
]==],
    opts = { deps = { foo = "2" } },
    replace = { { '"1"', '"2"' }, { '"1"', '"2"' }, { 'version = "1"\n', 'version = "2"\n' } },
  },
  {
    name = "workspace/Cargo.toml",
    text = [==[
[workspace]
members = []

[workspace.package]
version = "0.5.0"   # shared
edition = "2021"

[workspace.dependencies]
serde = { version = "1.0", default-features = false }
local = { path = "local" }

[package]
name = "shape-workspace"
version.workspace = true
edition.workspace = true

[dependencies]
serde = { workspace = true, features = ["derive"] }
]==],
    opts = { version = "0.6.0", workspace = true, deps = { serde = "1.0.200", ["local"] = "3" } },
    replace = { { '"0.5.0"', '"0.6.0"' }, { '"1.0"', '"1.0.200"' } },
  },
}

local function apply_replacements(text, replace)
  local out, pos = {}, 1
  for _, r in ipairs(replace) do
    local s, e = text:find(r[1], pos, true)
    assert(s, "replacement not found: " .. r[1])
    out[#out + 1] = text:sub(pos, s - 1) .. r[2]
    pos = e + 1
  end
  out[#out + 1] = text:sub(pos)
  return table.concat(out)
end

describe("cdp.manifest", function()
  describe("hand-written shapes", function()
    for _, shape in ipairs(SHAPES) do
      if shape.opts then
        it("edits only the values asked for in " .. shape.name, function()
          local new, changes = manifest.edit(shape.text, shape.name, shape.opts)
          assert.is_string(new, changes)
          assert.are.equal(apply_replacements(shape.text, shape.replace), new)
          assert.are.equal(#shape.replace, #changes)
          check_spans(shape.name, shape.text, new, changes)
          -- running it again changes nothing
          local again, none = manifest.edit(new, shape.name, shape.opts)
          assert.are.equal(new, again)
          assert.are.same({}, none)
        end)
      end
    end

    it("rewrites each requirement as written when a crate is required differently per table", function()
      local text = '[package]\nname = "cli"\nversion = "1.0.0"\n\n[dependencies]\ncore = { path = "../core", version = "0.3" }\n'
        .. '\n[dev-dependencies.core]\npath = "../core"\nversion = "0.3.1" # pinned for tests\n'
        .. "\n[target.'cfg(unix)'.build-dependencies]\ncore = \"=0.3.1\"\n"
      local new, changes = manifest.edit(text, "cli/Cargo.toml",
        { deps = { core = { ["0.3"] = "0.4", ["0.3.1"] = "0.4.0" } } })
      assert.is_string(new, changes)
      assert.are.equal(text:gsub('version = "0.3" }', 'version = "0.4" }')
        :gsub('version = "0.3.1" #', 'version = "0.4.0" #'), new)
      assert.are.equal(2, #changes)
      check_spans("cli/Cargo.toml", text, new, changes)
    end)

    it("reads packages and dependencies of every kind, renamed and inherited ones included", function()
      local info = assert(manifest.read(SHAPES[5].text, "r/Cargo.toml"))
      assert.are.same({ name = "shape-renamed", version = "0.1.0" }, info.package)
      assert.are.same({
        { kind = "normal", key = "bar", name = "foo", req = "1", workspace = false,
          span_path = { "dependencies", "bar", "version" } },
        { kind = "normal", key = "baz", name = "foo", req = "1", workspace = false,
          span_path = { "dependencies", "baz", "version" } },
        { kind = "normal", key = "quux", name = "quux", req = "1", workspace = false,
          span_path = { "dependencies", "quux", "version" } },
        { kind = "dev", key = "other", name = "foo", req = "1", workspace = false,
          span_path = { "dev-dependencies", "other", "version" } },
      }, info.deps)

      info = assert(manifest.read(SHAPES[6].text, "w/Cargo.toml"))
      assert.are.same({ name = "shape-workspace", version = { workspace = true } }, info.package)
      assert.are.equal("0.5.0", info.workspace.version)
      assert.are.same({ "normal", "workspace", "workspace" },
        { info.deps[1].kind, info.deps[2].kind, info.deps[3].kind })
      assert.is_true(info.deps[1].workspace)
      assert.is_nil(info.deps[1].req)
      assert.are.equal("1.0", info.deps[2].req)
      assert.are.equal("local", info.deps[3].path)
      assert.is_nil(info.deps[3].req)

      info = assert(manifest.read(SHAPES[4].text, "t/Cargo.toml"))
      assert.are.same({ "cfg(unix)", "cfg(windows)", 'cfg(target_os = "linux")' },
        { info.deps[1].target, info.deps[2].target, info.deps[3].target })
      assert.are.same({ "normal", "dev", "build" }, { info.deps[1].kind, info.deps[2].kind, info.deps[3].kind })
    end)

    it("refuses a manifest that is not TOML, naming file, line and column", function()
      local new, msg, code = manifest.edit('[package]\nname = "x"\nversion = 1.0.0\n', "crates/x/Cargo.toml",
        { version = "1.0.1" })
      assert.is_nil(new)
      assert.are.equal("crates/x/Cargo.toml:3:11: invalid number", msg)
      assert.are.equal("ETOML", code)
      local info
      info, msg, code = manifest.read("[dependencies]\nfoo = \n", "a/Cargo.toml")
      assert.is_nil(info)
      assert.are.equal("a/Cargo.toml:2:7: expected a value", msg)
      assert.are.equal("ETOML", code)
    end)

    it("says when the package version is inherited or missing", function()
      local new, msg, code = manifest.edit(SHAPES[6].text, "w/Cargo.toml", { version = "1.0.0" })
      assert.is_nil(new)
      assert.are.equal("w/Cargo.toml: package.version is inherited from the workspace; set [workspace.package] version instead", msg)
      assert.are.equal("EMANIFEST", code)
      new, msg, code = manifest.edit('[package]\nname = "x"\n', "x/Cargo.toml", { version = "1.0.0" })
      assert.is_nil(new)
      assert.are.equal("x/Cargo.toml: no package.version to set", msg)
      assert.are.equal("EMANIFEST", code)
    end)
  end)

  describe("the corpus", function()
    if not HAVE_CORPUS and not REQUIRE_CORPUS then
      pending(("corpus tests left out: %s is absent (CI provides it; set CDP_CORPUS=DIR to run them)"):format(CORPUS))
      return
    end
    it("is present", function()
      assert(HAVE_CORPUS, ("CDP_REQUIRE_CORPUS=1 but there is no corpus at %s"):format(CORPUS))
    end)
    local files = HAVE_CORPUS and corpus_files() or {}

    it("holds the manifests", function()
      assert.is_true(#files >= 287, ("%d manifests in %s"):format(#files, CORPUS))
    end)

    it("is read, edited value by value, and read by cargo before and after", function()
      local cases = {}
      local rejected, edited, values = 0, 0, 0
      for _, name in ipairs(files) do
        local text = assert(support.read(CORPUS .. "/" .. name))
        local new, changes = bump_all(text, name)
        local case = { name = name, text = text, new = new or text }
        if not new then
          rejected = rejected + 1
          assert.matches("^" .. name:gsub("%p", "%%%0") .. ":%d+:%d+: ", changes)
          case.error = changes
        else
          check_spans(name, text, new, changes)
          check_lines(name, text, new, changes)
          if #changes > 0 then
            edited = edited + 1
          end
          values = values + #changes
          local info = manifest.read(text, name)
          case.versioned = info.package and info.package.version ~= nil
        end
        -- where the file sits in its project: bevy/crates__app__Cargo.toml is bevy/crates/app/Cargo.toml
        case.tree_path = name:match("^[^/]+/") .. name:match("^[^/]+/(.*)$"):gsub("__", "/")
        cases[#cases + 1] = case
      end
      for _, shape in ipairs(SHAPES) do
        local new = bump_all(shape.text, shape.name)
        local info = manifest.read(shape.text, shape.name)
        cases[#cases + 1] = { name = shape.name, text = shape.text, new = new,
          versioned = info.package and info.package.version ~= nil }
      end

      -- Each manifest alone, and each in the tree of its project (so members
      -- inherit from their workspace root), original and edited.
      local jobs = {}
      for i, case in ipairs(cases) do
        jobs[#jobs + 1] = { path = ("alone/%d/original/Cargo.toml"):format(i), text = case.text }
        jobs[#jobs + 1] = { path = ("alone/%d/edited/Cargo.toml"):format(i), text = case.new }
        if case.tree_path then
          jobs[#jobs + 1] = { path = "tree-original/" .. case.tree_path, text = case.text }
          jobs[#jobs + 1] = { path = "tree-edited/" .. case.tree_path, text = case.new }
        end
      end
      local results = cargo_metadata_all(jobs)
      local r = 0
      local verified, verified_tree, versions, reqs = 0, 0, 0, 0
      local function check(case, before, after, how)
        if case.error then
          assert(not before.ok, case.name .. ": cargo reads a manifest cdp rejects: " .. case.error)
          return false
        end
        if not before.ok then
          return false
        end
        assert(after.ok, ("%s (%s): cargo read the original but not the edit:\n%s"):format(case.name, how, after.err))
        local p0, p1 = package_of(before), package_of(after)
        if p0 then
          assert.are.equal(case.versioned and NEW_VERSION or p0.version, p1.version, case.name)
          versions = versions + (case.versioned and 1 or 0)
          assert.are.equal(#p0.dependencies, #p1.dependencies, case.name)
          for j, d0 in ipairs(p0.dependencies) do
            local d1 = p1.dependencies[j]
            assert.are.equal(d0.name, d1.name)
            -- every requirement with a version was bumped; "*" means there was none
            assert.are.equal(d0.req == "*" and "*" or NEW_REQ, d1.req, ("%s (%s): %s"):format(case.name, how, d0.name))
            reqs = reqs + (d0.req == "*" and 0 or 1)
          end
        end
        return true
      end
      for _, case in ipairs(cases) do
        local alone = check(case, results[r + 1], results[r + 2], "alone")
        r = r + 2
        local tree = false
        if case.tree_path then
          tree = check(case, results[r + 1], results[r + 2], "in its project")
          r = r + 2
        end
        verified = verified + ((alone or tree) and 1 or 0)
        verified_tree = verified_tree + (tree and 1 or 0)
      end
      print(("\ncorpus: %d manifests, %d read, %d rejected (as cargo does), %d edited (%d values); "
        .. "cargo read %d of %d manifests (with shapes; %d of them in their project's tree) before and after the edit, "
        .. "checking %d new versions and %d new requirements")
        :format(#files, #files - rejected, rejected, edited, values, verified, #cases, verified_tree, versions, reqs))
      assert.is_true(verified > 200, "cargo read too few manifests; is it installed?")
    end)
  end)
end)
