-- The Publish stage against the local registry fixture (what it holds is then built by
-- real cargo) and the GitHub stand-in behind Prism. Each test gets an empty registry of
-- its own; the forge stand-in is shared by the file.
local support = require "tests.lua.support"
local rs = require "tests.lua.release_support"
local json = require "cdp.json"
local proc = require "cdp.proc"
local registry = require "cdp.registry"
local publish = require "cdp.stages.publish"

local q = support.quote
local TOKEN = "publish-spec-token-61c0"
local peers, reg

local function settings(extra)
  local s = { registry_index = reg.index, registry_token = TOKEN, registry_limits = "crates.io",
    registry_index_timeout = 20 }
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

-- "name vers status" for every publish attempt the registry saw.
local function attempts()
  local out = {}
  for _, r in ipairs(reg.log()) do
    out[#out + 1] = ("%s %s %d"):format(r.name, r.vers, r.status)
  end
  return out
end

local ALL_ONCE = { "demo-util 1.0.1 200", "demo-core 0.1.1 200", "demo-cli 0.2.0 200" }

describe("stage publish", function()
  lazy_setup(function() peers = rs.start_peers(TOKEN) end)
  lazy_teardown(function() peers.stop() end)
  before_each(function() reg = rs.start_registry(TOKEN) end)
  after_each(function() reg.stop() end)

  it("publishes in dependency order, makes GitHub releases once, and cargo builds a consumer from the registry", function()
    -- demo-util has an older version there already: it is a new version, the others new crates.
    local client = registry.new { index = reg.index, token = TOKEN }
    assert(client:publish({ name = "demo-util", vers = "0.9.0", deps = {}, features = json.object() }, "old bytes"))
    local fx = rs.make()
    local s = settings { forge_api = peers.FORGE_API, forge_token = TOKEN, forge_repo = "demo-org/demo" }
    local out = publish.run(fx.ctx(s), fx.inputs()).published
    assert.matches("publishing 3 crates (2 new, 1 new version), ETA 0s", fx.log_text(), 1, true)
    assert.are.same({ "demo-util 0.9.0 200", table.unpack(ALL_ONCE) }, attempts())
    for name, c in pairs(fx.packaged.crates) do
      assert.are.same({ version = c.version, cksum = c.sha256, status = "published" }, out.crates[name])
    end
    assert.are.same({
      ["demo-cli-v0.2.0"] = "https://github.invalid/demo-org/demo/releases/tag/demo-cli-v0.2.0",
      ["demo-core-v0.1.1"] = "https://github.invalid/demo-org/demo/releases/tag/demo-core-v0.1.1",
      ["demo-util-v1.0.1"] = "https://github.invalid/demo-org/demo/releases/tag/demo-util-v1.0.1",
    }, out.releases)
    -- the registry holds exactly the bytes Package made
    for name, c in pairs(fx.packaged.crates) do
      assert.are.equal(support.read(c.file), support.read(("%s/crates/%s/%s.crate"):format(reg.root, name, c.version)))
    end

    -- Real cargo resolves and builds the new versions from the registry.
    local consumer = fx.dir .. "/consumer"
    support.write(consumer .. "/Cargo.toml", [[
[package]
name = "consumer"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
demo-cli = { version = "=0.2.0", registry = "local" }
demo-core = { version = "=0.1.1", registry = "local" }
]])
    support.write(consumer .. "/src/main.rs",
      'fn main() { println!("{} {} {}", demo_cli::run(), demo_core::greet_loud("cdp"), demo_core::version()); }\n')
    support.write(fx.dir .. "/cargo-home/config.toml", ('[registries.local]\nindex = "%s"\n'):format(reg.index))
    local ran = support.sh(("cd %s && CARGO_HOME=%s CARGO_TARGET_DIR=%s cargo run -q"):format(q(consumer),
      q(fx.dir .. "/cargo-home"), q(fx.dir .. "/consumer-target")))
    assert.are.equal("run Hello, cdp demo-core\n", ran)
    assert.matches("demo-util v1.0.1", support.sh(("cd %s && CARGO_HOME=%s cargo tree --offline"):format(q(consumer),
      q(fx.dir .. "/cargo-home"))), 1, true)

    -- Run again: nothing new anywhere.
    local again = publish.run(fx.ctx(s), fx.inputs()).published
    for _, c in pairs(again.crates) do
      assert.are.equal("already-published", c.status)
    end
    assert.are.same(out.releases, again.releases)
    assert.matches("nothing to publish: all 3 crates are in the registry already", fx.log_text(), 1, true)
    assert.matches("GitHub release demo-core-v0.1.1 exists already", fx.log_text(), 1, true)
    assert.are.same({ "demo-util 0.9.0 200", table.unpack(ALL_ONCE) }, attempts())
    local per_tag = {}
    for _, r in ipairs(peers.forge_state().releases) do
      per_tag[r.tag_name] = (per_tag[r.tag_name] or 0) + 1
      if r.tag_name == "demo-core-v0.1.1" then
        assert.are.equal("demo-core 0.1.1", r.name)
        assert.are.equal("### Fixed\n\n- demo-core: the release of 0.1.1", r.body)
        assert.is_false(r.prerelease)
      end
    end
    assert.are.same({ ["demo-cli-v0.2.0"] = 1, ["demo-core-v0.1.1"] = 1, ["demo-util-v1.0.1"] = 1 }, per_tag)
    assert.is_true(publish.verify(fx.ctx(s), { published = out }))
  end)

  it("fails on the second of three when the registry does, and publishes the rest once when run again", function()
    local fx = rs.make()
    reg.control { fail = { crate = "demo-core", times = 1, status = 500 } }
    local msg = rs.raises(publish.run, fx.ctx(settings()), fx.inputs())
    assert.matches("cannot publish demo-core 0.1.1: publish demo-core 0.1.1 to http://127.0.0.1:" .. reg.port
      .. ": 500 injected failure", msg, 1, true)
    assert.are.same({ "demo-util 1.0.1 200", "demo-core 0.1.1 500" }, attempts())

    local out = publish.run(fx.ctx(settings()), fx.inputs()).published
    assert.are.equal("already-published", out.crates["demo-util"].status)
    assert.are.equal("published", out.crates["demo-core"].status)
    assert.are.equal("published", out.crates["demo-cli"].status)
    assert.matches("publishing 2 crates (2 new, 0 new versions)", fx.log_text(), 1, true)
    assert.matches("no forge_token: skipping GitHub releases", fx.log_text(), 1, true)
    assert.are.same({ "demo-util 1.0.1 200", "demo-core 0.1.1 500", "demo-core 0.1.1 200", "demo-cli 0.2.0 200" },
      attempts())
  end)

  it("refuses a version the registry has with another checksum, and publishes nothing", function()
    -- The same versions packaged from other sources: other bytes.
    local fx = rs.make()
    local other = rs.make { notes = { ["demo-core"] = "\n- something else" } }
    local client = registry.new { index = reg.index, token = TOKEN }
    -- demo-util as this release made it (its dependency must be there first), then
    -- demo-core with other bytes under the same version.
    local function seed(from, name)
      for _, pkg in ipairs(assert(require("cdp.release").cargo_metadata(from.fork.path)).packages) do
        if pkg.name == name then
          assert(client:publish(registry.metadata(pkg), support.read(from.packaged.crates[name].file)))
          assert(client:wait_visible(name, pkg.version, from.packaged.crates[name].sha256, 10))
        end
      end
    end
    seed(fx, "demo-util")
    seed(other, "demo-core")
    assert.are_not.equal(other.packaged.crates["demo-core"].sha256, fx.packaged.crates["demo-core"].sha256)
    local msg = rs.raises(publish.run, fx.ctx(settings()), fx.inputs())
    assert.matches("refusing to publish: demo-core 0.1.1 is already in the registry", msg, 1, true)
    assert.matches(other.packaged.crates["demo-core"].sha256, msg, 1, true)
    assert.matches(fx.packaged.crates["demo-core"].sha256, msg, 1, true)
    assert.are.same({ "demo-util 1.0.1 200", "demo-core 0.1.1 200" }, attempts())
  end)

  it("waits out a 429 as long as Retry-After asks", function()
    local fx = rs.make()
    reg.control { rate_limit = { times = 1, retry_after = 2 } }
    local t0 = proc.clock()
    publish.run(fx.ctx(settings { registry_limits = "none" }), fx.inputs())
    assert.is_true(proc.clock() - t0 >= 1, "did not wait")
    assert.matches("publish demo-util 1.0.1 to http://127.0.0.1:" .. reg.port .. ": rate limited (429); waiting",
      fx.log_text(), 1, true)
    assert.are.same({ "demo-util 1.0.1 429", table.unpack(ALL_ONCE) }, attempts())
  end)

  it("runs again once a forge token is set when releases were skipped for want of one", function()
    local outputs = { published = { crates = {}, releases = {}, releases_skipped = true } }
    local ok, why = publish.verify({ settings = { forge_token = "now-set-token" } }, outputs)
    assert.is_false(ok)
    assert.matches("skipped for want of a forge_token", why, 1, true)
    assert.is_nil(why:find("now-set-token", 1, true))
  end)

  it("waits for the index to show each version before publishing its dependents", function()
    local fx = rs.make()
    reg.control { index_delay = 1 }
    publish.run(fx.ctx(settings()), fx.inputs())
    local text = fx.log_text()
    local util_seen = text:find("demo-util 1.0.1 is in the index", 1, true)
    local core_sent = text:find("publishing demo-core 0.1.1", 1, true)
    assert.is_truthy(util_seen and core_sent and util_seen < core_sent, text)
    assert.are.same(ALL_ONCE, attempts())
  end)

  it("reports a wrong registry token without the token, and publishes nothing", function()
    local fx = rs.make()
    local msg = rs.raises(publish.run, fx.ctx(settings { registry_token = "wrong-registry-token-9" }), fx.inputs())
    assert.matches("cannot publish demo-util 1.0.1", msg, 1, true)
    assert.matches("403 invalid or missing API token", msg, 1, true)
    assert.matches("check registry_token", msg, 1, true)
    assert.is_nil(msg:find("wrong-registry-token-9", 1, true))
    assert.are.same({}, attempts())
  end)

  it("rejects an unknown registry_limits and a .crate file changed since Package", function()
    local fx = rs.make()
    local msg = rs.raises(publish.run, fx.ctx(settings { registry_limits = "fast" }), fx.inputs())
    assert.matches('registry_limits is "fast"', msg, 1, true)
    support.write(fx.packaged.crates["demo-cli"].file, "not a crate")
    msg = rs.raises(publish.run, fx.ctx(settings()), fx.inputs())
    assert.matches("the .crate file " .. fx.packaged.crates["demo-cli"].file .. " is changed", msg, 1, true)
    assert.are.same({}, attempts())
  end)

  it("verify says no once the index no longer has a recorded version", function()
    local fx = rs.make()
    local out = publish.run(fx.ctx(settings()), fx.inputs())
    assert.is_true(publish.verify(fx.ctx(settings()), out))
    os.remove(reg.root .. "/index/" .. registry.index_path("demo-core"))
    local ok, why = publish.verify(fx.ctx(settings()), out)
    assert.is_false(ok)
    assert.matches("demo-core 0.1.1 is no longer in the registry index", why, 1, true)
  end)

  it("checks up front that the registry answers and that there is a token", function()
    local fx = rs.make()
    local by_name = {}
    for _, h in ipairs(publish.health) do by_name[h.name] = h.check end
    assert.is_true(by_name["registry"](fx.ctx(settings())))
    assert.is_true(by_name["registry token"](fx.ctx(settings())))
    local ok, why = by_name["registry token"](fx.ctx(settings { registry_token = "" }))
    assert.is_false(ok)
    assert.matches("registry_token is not set", why, 1, true)
    reg.stop()
    ok, why = by_name["registry"](fx.ctx(settings()))
    assert.is_false(ok)
    assert.matches("config.json", why, 1, true)
  end)

  it("sent the forge nothing that breaks GitHub's OpenAPI description", function()
    assert.are.same({}, peers.jsonl("violations.jsonl"))
  end)
end)
