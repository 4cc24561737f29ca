-- The registry client against the local registry fixture; what it publishes is then
-- built by real cargo, so the publish body and metadata are checked by cargo itself.
local support = require "tests.lua.support"
local registry = require "cdp.registry"
local json = require "cdp.json"
local http = require "cdp.http"

local q = support.quote
local TOKEN = "registry-spec-token-9d2"
local dir, port, pid, index, reg, waits

local function start_registry()
  dir = support.tmpdir()
  support.sh(("setsid python3 tests/fixtures/registry.py --root %s --token %s >%s 2>%s & echo $! >%s")
    :format(q(dir .. "/reg"), TOKEN, q(dir .. "/port"), q(dir .. "/log"), q(dir .. "/pid")))
  for _ = 1, 100 do
    local p = (support.read(dir .. "/port") or ""):match("PORT (%d+)")
    if p then port = p break end
    support.sh("sleep 0.1")
  end
  assert(port, "registry did not start: " .. (support.read(dir .. "/log") or ""))
  pid = support.read(dir .. "/pid"):match("%d+")
  index = ("sparse+http://127.0.0.1:%s/index/"):format(port)
end

-- A crate packaged by real cargo: returns the .crate path and its cargo metadata package.
local function package_crate(name, version, body, deps)
  local root = dir .. "/src-" .. name .. "-" .. version .. "-" .. #body
  support.write(root .. "/Cargo.toml", ([[
[package]
name = "%s"
version = "%s"
edition = "2021"
description = "registry spec crate"
license = "MIT"

[dependencies]
%s
]]):format(name, version, deps or ""))
  support.write(root .. "/src/lib.rs", body)
  support.sh(("cd %s && cargo package --offline --allow-dirty --no-verify -q"):format(q(root)))
  local meta = json.decode(support.sh(("cd %s && cargo metadata --format-version 1 --no-deps --offline"):format(q(root))))
  return ("%s/target/package/%s-%s.crate"):format(root, name, version), meta.packages[1]
end

local function control(body)
  assert(http.request { method = "POST", url = ("http://127.0.0.1:%s/_control"):format(port), body = json.encode(body) })
end

describe("cdp.registry", function()
  lazy_setup(start_registry)
  lazy_teardown(function() support.sh("kill " .. pid, { may_fail = true }) end)
  before_each(function()
    waits = {}
    reg = registry.new { index = index, token = TOKEN, sleep = function(s) waits[#waits + 1] = s end }
  end)

  it("lays out sparse index paths as cargo does", function()
    assert.are.equal("1/a", registry.index_path("a"))
    assert.are.equal("2/ab", registry.index_path("AB"))
    assert.are.equal("3/a/abc", registry.index_path("abc"))
    assert.are.equal("se/rd/serde_json", registry.index_path("serde_json"))
  end)

  it("paces new crates and new versions under crates.io's limits, with an ETA", function()
    local items = {}
    for i = 1, 7 do items[i] = { kind = "new_crate" } end
    items[8] = { kind = "new_version" }
    local starts, eta = registry.schedule(items, registry.CRATES_IO_LIMITS)
    assert.are.same({ 0, 0, 0, 0, 0, 600, 1200, 1200 }, starts)
    assert.are.equal(1200, eta)
    local _, none = registry.schedule(items, {})
    assert.are.equal(0, none)
  end)

  it("builds publish metadata from cargo's output, nulls included", function()
    -- cargo metadata prints "kind": null for normal dependencies; a crate that needs
    -- the same crate as a dependency and a dev-dependency must not trip on it.
    local root = dir .. "/meta"
    support.write(root .. "/dep/Cargo.toml", '[package]\nname = "spec-dep"\nversion = "0.3.0"\nedition = "2021"\n')
    support.write(root .. "/dep/src/lib.rs", "")
    support.write(root .. "/top/Cargo.toml", '[package]\nname = "spec-meta"\nversion = "0.1.0"\nedition = "2021"\n'
      .. '\n[dependencies]\nspec-dep = { version = "0.3", path = "../dep" }\n'
      .. '\n[dev-dependencies]\nspec-dep = { version = "0.3", path = "../dep" }\n')
    support.write(root .. "/top/src/lib.rs", "")
    local pkg = json.decode(support.sh(("cd %s && cargo metadata --format-version 1 --no-deps --offline")
      :format(q(root .. "/top")))).packages[1]
    assert.are.equal(json.null, pkg.dependencies[1].kind) -- what cargo prints for normal
    local meta = registry.metadata(pkg)
    local text = json.encode(meta)
    assert.is_nil(text:find('"kind":null', 1, true))
    assert.are.same({ "dev", "normal" }, { meta.deps[1].kind, meta.deps[2].kind })
    assert.are.equal("^0.3", meta.deps[2].version_req)
    assert.are.equal(json.null, meta.deps[2].target)
    assert.are.equal(json.null, meta.homepage)
  end)

  it("publishes exactly the .crate bytes, then real cargo builds from the registry", function()
    local crate, pkg = package_crate("spec-base", "0.3.0", 'pub fn answer() -> u32 { 42 }\n')
    local bytes = assert(support.read(crate))
    local cksum = registry.cksum(crate)
    assert.are.equal("absent", reg:check("spec-base", "0.3.0", cksum))
    assert.is_true(reg:publish(registry.metadata(pkg), bytes))
    assert.is_true(reg:wait_visible("spec-base", "0.3.0", cksum, 10))
    assert.are.equal("same", reg:check("spec-base", "0.3.0", cksum))

    local consumer = dir .. "/consumer"
    support.write(consumer .. "/Cargo.toml", [[
[package]
name = "consumer"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
spec-base = { version = "0.3", registry = "local" }
]])
    support.write(consumer .. "/src/main.rs", 'fn main() { println!("{}", spec_base::answer()); }\n')
    support.write(dir .. "/cargo-home/config.toml", ('[registries.local]\nindex = "%s"\n'):format(index))
    local out = support.sh(("cd %s && CARGO_HOME=%s cargo run -q"):format(q(consumer), q(dir .. "/cargo-home")))
    assert.are.equal("42\n", out)
  end)

  it("refuses to publish other bytes under a version the registry already has", function()
    local crate = package_crate("spec-base", "0.3.0", 'pub fn answer() -> u32 { 43 }\n')
    local state, msg, code = reg:check("spec-base", "0.3.0", registry.cksum(crate))
    assert.is_nil(state)
    assert.are.equal("ECKSUM", code)
    assert.matches("spec-base 0.3.0 is already in the registry", msg, 1, true)
    assert.matches(registry.cksum(crate), msg, 1, true)
  end)

  it("looks up every crate before publishing any: absent, the same, or other bytes naming both checksums", function()
    local other = package_crate("spec-base", "0.3.0", 'pub fn answer() -> u32 { 44 }\n')
    local found = assert(reg:lookup {
      { name = "spec-never-published", version = "1.0.0", cksum = "00" },
    })
    assert.are.same({ ["spec-never-published"] = { state = "absent", new_crate = true } }, found)
    local published = reg:versions("spec-base")["0.3.0"].cksum
    found = assert(reg:lookup { { name = "spec-base", version = "0.3.0", cksum = published },
      { name = "spec-base", version = "0.4.0", cksum = "00" } })
    assert.are.same({ state = "absent", new_crate = false }, found["spec-base"])
    local none, msg, code = reg:lookup { { name = "spec-base", version = "0.3.0", cksum = registry.cksum(other) } }
    assert.is_nil(none)
    assert.are.equal("ECKSUM", code)
    assert.matches("with checksum " .. published .. ", but the package built here has " .. registry.cksum(other), msg, 1, true)
  end)

  it("asks the registry about the token without publishing: known, refused, or known to the website only", function()
    local ok, login = reg:check_token()
    assert.is_true(ok)
    assert.are.equal("registry-user", login)
    local bad = registry.new { index = index, token = "wrong-78", sleep = function() end }
    local none, msg, code = bad:check_token()
    assert.is_nil(none)
    assert.are.equal("EAUTH", code)
    assert.are.equal(("the registry http://127.0.0.1:%s refused the token: 403 authentication failed"):format(port), msg)
    -- crates.io lets an API token publish but not read /api/v1/me: the token is good.
    control { me = "website-only" }
    local good, user, how = reg:check_token()
    control { me = "user" }
    assert.is_true(good)
    assert.is_nil(user)
    assert.are.equal("website", how)
    -- a registry with nothing to ask says nothing either way
    local elsewhere = registry.new { index = index, token = TOKEN, sleep = function() end }
    elsewhere._config = { dl = "x", api = "http://127.0.0.1:" .. port .. "/no-such-api" }
    assert.are.equal("unknown", elsewhere:check_token())
  end)

  it("waits out a 429 as long as Retry-After (an HTTP date) asks", function()
    control { rate_limit = { times = 1, retry_after = 3 } }
    local crate, pkg = package_crate("spec-paced", "1.0.0", "pub fn x() {}\n")
    assert.is_true(reg:publish(registry.metadata(pkg), support.read(crate)))
    assert.are.equal(1, #waits)
    assert.is_true(waits[1] >= 1 and waits[1] <= 4, "waited " .. waits[1])
  end)

  it("reports registry errors with the registry's own detail", function()
    control { fail = { crate = "spec-broken", times = 1, status = 500 } }
    local crate, pkg = package_crate("spec-broken", "1.0.0", "pub fn y() {}\n")
    local ok, msg, code = reg:publish(registry.metadata(pkg), support.read(crate))
    assert.is_nil(ok)
    assert.are.equal("EREGISTRY", code)
    assert.matches("publish spec-broken 1.0.0 to http://127.0.0.1:" .. port .. ": 500 injected failure", msg, 1, true)
  end)

  it("reports a wrong token as EAUTH without the token", function()
    local bad = registry.new { index = index, token = "wrong-77", sleep = function() end }
    local crate, pkg = package_crate("spec-auth", "1.0.0", "pub fn z() {}\n")
    local ok, msg, code = bad:publish(registry.metadata(pkg), support.read(crate))
    assert.is_nil(ok)
    assert.are.equal("EAUTH", code)
    assert.is_nil(msg:find("wrong-77", 1, true))
    assert.are.equal("absent", reg:check("spec-auth", "1.0.0", registry.cksum(crate)))
  end)

  it("says so when a registry never shows a version it accepted", function()
    local r = registry.new { index = index, token = TOKEN, sleep = function() end }
    local ok, msg, code = r:wait_visible("spec-never", "9.9.9", "00", 0)
    assert.is_nil(ok)
    assert.are.equal("ETIMEDOUT", code)
    assert.matches("spec-never 9.9.9", msg, 1, true)
  end)
end)
