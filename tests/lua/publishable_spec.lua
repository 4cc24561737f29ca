-- What keeps crates from being published, found from the workspace model (real cargo
-- metadata over scripted workspaces): a publish = false crate a published one needs,
-- and a cycle through a dev-dependency that carries a version. What cargo leaves out
-- of a package (a dev-dependency with a path only) is no problem.
local support = require "tests.lua.support"
local workspace = require "cdp.workspace"
local publishable = require "cdp.publishable"

-- A workspace of CRATES ({ name = { deps = "toml lines", dev = "toml lines", publish = false } }).
local function problems_of(crates)
  local dir = support.git_init()
  local names = {}
  for name, c in pairs(crates) do
    names[#names + 1] = ('"%s"'):format(name)
    support.write(("%s/%s/Cargo.toml"):format(dir, name), ('[package]\nname = "%s"\nversion = "0.1.0"\nedition = "2021"\n%s'
      .. "\n[dependencies]\n%s\n[dev-dependencies]\n%s\n"):format(name, c.publish == false and "publish = false\n" or "",
      c.deps or "", c.dev or ""))
    support.write(("%s/%s/src/lib.rs"):format(dir, name), "")
  end
  table.sort(names)
  support.write(dir .. "/Cargo.toml", ("[workspace]\nresolver = \"2\"\nmembers = [%s]\n"):format(table.concat(names, ", ")))
  local ws = assert(workspace.load(dir, { repo_root = dir }))
  return publishable.problems(ws)
end

local function dep(name, version)
  return ('%s = { path = "../%s"%s }\n'):format(name, name, version and (', version = "' .. version .. '"') or "")
end

describe("cdp.publishable", function()
  it("names a published crate that needs a publish = false one, by any edge cargo keeps", function()
    local p = problems_of {
      app = { deps = dep("internal", "0.1.0") },
      tool = { dev = dep("internal", "0.1.0") },
      fine = { dev = dep("internal") }, -- a path alone: left out of the package
      internal = { publish = false },
    }
    assert.are.same({
      "app has a dependency on internal (app/Cargo.toml), which has publish = false (internal/Cargo.toml): a published "
        .. "crate can need only published crates; publish internal, or drop the dependency",
      "tool has a dev-dependency on internal (tool/Cargo.toml), which has publish = false (internal/Cargo.toml): a "
        .. "published crate can need only published crates; publish internal, or drop the dev-dependency's version "
        .. "(a path alone is left out of the package)",
    }, p)
  end)

  it("names a cycle through a dev-dependency with a version, and not one without", function()
    assert.are.same({
      "a dependency cycle through a dev-dependency with a version: a -[dev]-> b -> a; cargo cannot publish either "
        .. "crate first — drop the version of a's dev-dependency on b (keep the path: cargo then leaves it out of the "
        .. "package) in a/Cargo.toml",
    }, problems_of { a = { dev = dep("b", "0.1.0") }, b = { deps = dep("a", "0.1.0") } })
    assert.are.same({}, problems_of { a = { dev = dep("b") }, b = { deps = dep("a", "0.1.0") } })
    -- a dev-dependency with a version but no cycle: not this check's concern
    assert.are.same({}, problems_of { a = { dev = dep("b", "0.1.0") }, b = {} })
  end)
end)
