-- Settings: declared once by the stage that reads them, typed, checked from every
-- source (script, CDP_<KEY>, --set), with secrets only from their environment variable;
-- and the reference `cdp help settings` prints, which the README holds word for word.
local support = require "tests.lua.support"
local settings = require "cdp.settings"
local pipeline = require "cdp.pipeline"

local q = support.quote
local root = os.getenv("CDP_SOURCE_DIR") or "."
local cdp = support.cdp()

local function decls(t)
  local out = {}
  for name, spec in pairs(t) do
    out[name] = settings.declare(name, spec, "spec")
  end
  return out
end

local D = decls {
  level = { type = "number", default = 1, doc = "a number" },
  dry = { type = "boolean", default = false, doc = "a flag" },
  region = { type = "string", default = "eu", doc = "a string" },
  limits = { type = "string", default = "crates.io", choices = { "crates.io", "none" }, doc = "a choice" },
  skip = { type = "list", default = {}, doc = "a list" },
  commands = { type = "list", items = "command", default = { "cargo test" }, doc = "commands" },
  map = { type = { "string", "table" }, default = "", doc = "one or a table" },
  api_token = { type = "secret", env = "API_TOKEN", doc = "a secret" },
}

local function resolve(env, sets, script)
  env = env or {}
  local names = {}
  for k in pairs(env) do
    names[#names + 1] = k
  end
  table.sort(names)
  local parsed = sets and assert(settings.parse_sets(sets)) or {}
  return settings.resolve(D, script or {}, { getenv = function(k) return env[k] end, environ = names, sets = parsed })
end

describe("settings", function()
  it("default, then the script, then CDP_<KEY>, then --set; each value says where it came from", function()
    local eff = assert(resolve({ CDP_LEVEL = "3", CDP_DRY = "yes" }, { "region=us" }, { region = "ap", dry = false }))
    assert.are.same({ value = 3, source = "env CDP_LEVEL", secret = false }, eff.level)
    assert.are.same({ value = true, source = "env CDP_DRY", secret = false }, eff.dry)
    assert.are.same({ value = "us", source = "--set", secret = false }, eff.region)
    assert.are.same({ value = "crates.io", source = "default", secret = false }, eff.limits)
    eff = assert(resolve({}, {}, { region = "ap" }))
    assert.are.same({ value = "ap", source = "script", secret = false }, eff.region)
  end)

  it("lists from a,b,c or a JSON array; commands split into words, quotes kept together", function()
    local eff = assert(resolve({ CDP_SKIP = "clean, tokens" },
      { 'commands=["cargo test --workspace", "cargo clippy -- -D warnings"]' }))
    assert.are.same({ "clean", "tokens" }, eff.skip.value)
    assert.are.same({ "cargo test --workspace", "cargo clippy -- -D warnings" }, eff.commands.value)
    assert.are.same({ { "cargo", "test", "--workspace" }, { "cargo", "clippy", "--", "-D", "warnings" } },
      settings.commands(eff.commands.value))
    assert.are.same({ { "sh", "-c", "echo 'a b'" }, { "x", "a b" } },
      settings.commands { [[sh -c "echo 'a b'"]], { "x", "a b" } })
    eff = assert(resolve({}, { "skip=" }))
    assert.are.same({}, eff.skip.value)
    eff = assert(resolve({}, { 'map={"*": "v{version}", "a": "{crate}@{version}"}' }))
    assert.are.same({ ["*"] = "v{version}", a = "{crate}@{version}" }, eff.map.value)
    eff = assert(resolve({}, { "map=v{version}" }))
    assert.are.equal("v{version}", eff.map.value)
  end)

  it("a value of the wrong type names the setting, the source and what was expected", function()
    local _, err = resolve({}, { "level=high" })
    assert.are.equal("setting 'level' from --set: expected a number, got 'high'", err)
    _, err = resolve({ CDP_DRY = "perhaps" })
    assert.are.equal("setting 'dry' from env CDP_DRY: expected true or false, got 'perhaps'", err)
    _, err = resolve({}, { "limits=fast" })
    assert.are.equal("setting 'limits' from --set: must be one of crates.io, none, not 'fast'", err)
    _, err = resolve({}, { "skip=[1, 2]" })
    assert.matches("setting 'skip' from --set: must be list", err, 1, true)
    _, err = resolve({}, { "map={oops" })
    assert.matches("setting 'map' from --set: a table is given as a JSON object", err, 1, true)
  end)

  it("an unknown name from --set or CDP_* is an error that suggests the nearest", function()
    local _, err = resolve({}, { "regoin=us" })
    assert.are.equal("unknown setting 'regoin' (--set); did you mean 'region'?", err)
    _, err = resolve({}, { "wholly_unrelated=1" })
    assert.are.equal("unknown setting 'wholly_unrelated' (--set); `cdp help settings` lists them", err)
    _, err = resolve({ CDP_LEVLE = "2" })
    assert.are.equal("environment variable CDP_LEVLE is not a setting; did you mean CDP_LEVEL (level)?", err)
    -- the host's own variables and the variables secrets are read from are not settings
    assert(resolve({ CDP_LUA_PATH = "/x", CDP_DEBUG = "1", API_TOKEN = "t" }))
    -- a setting other stages declare (CI sets it for every pipeline) is not this one's, nor a typo
    local function only(var)
      return function(k) return k == var and "none" or nil end
    end
    assert(settings.resolve(D, {}, { getenv = only("CDP_REGISTRY_LIMITS"), environ = { "CDP_REGISTRY_LIMITS" },
      known = { registry_limits = true } }))
    _, err = settings.resolve(D, {}, { getenv = only("CDP_REGISTY_LIMITS"), environ = { "CDP_REGISTY_LIMITS" },
      known = { registry_limits = true } })
    assert.matches("environment variable CDP_REGISTY_LIMITS is not a setting", err, 1, true)
  end)

  it("secrets: only from their variable, refused on --set and as CDP_<KEY>, shown by name only", function()
    local eff = assert(resolve({ API_TOKEN = "tok-123" }))
    assert.are.same({ value = "tok-123", source = "env API_TOKEN", secret = true, env = "API_TOKEN" }, eff.api_token)
    assert.are.same({ "tok-123" }, settings.secret_values(eff))
    assert.are.equal("(secret)", settings.public(eff).api_token)
    local rows = settings.describe(eff)
    for _, r in ipairs(rows) do
      if r.key == "api_token" then
        assert.are.equal("***", r.value)
      end
    end
    local _, err = resolve({}, { "api_token=tok-123" })
    assert.are.equal("setting 'api_token' is a secret and cannot be given with --set (it would show in the "
      .. "process list); set the environment variable API_TOKEN", err)
    _, err = resolve({ CDP_API_TOKEN = "tok-123" })
    assert.are.equal("environment variable CDP_API_TOKEN: 'api_token' is a secret and is read from API_TOKEN only", err)
    eff = assert(resolve({}))
    assert.are.equal("unset (env API_TOKEN)", eff.api_token.source)
  end)

  it("masks the password of a URL wherever a value is shown", function()
    assert.are.equal("https://user:***@git.example.org/x.git", settings.mask_url("https://user:s3cret@git.example.org/x.git"))
    assert.are.equal("sparse+https://***@index.example.org/", settings.mask_url("sparse+https://tok@index.example.org/"))
    assert.are.equal("https://example.org/a@b", settings.mask_url("https://example.org/a@b"))
    local eff = assert(settings.resolve(decls { api = { type = "string", default = "" } }, {},
      { getenv = function() end, sets = { { key = "api", value = "https://me:pw-9@forge.example/api" } } }))
    assert.are.equal('"https://me:***@forge.example/api"', settings.describe(eff)[1].value)
  end)

  it("a declaration is checked: its type, its default, a secret's variable", function()
    local ok, err = pcall(settings.declare, "x", { type = "strng" }, "here")
    assert.is_false(ok)
    assert.matches("here: setting 'x': unknown type 'strng'", err, 1, true)
    ok, err = pcall(settings.declare, "x", { type = "number", default = "1" }, "here")
    assert.matches("here: setting 'x': its default must be number, not a string", err, 1, true)
    ok, err = pcall(settings.declare, "x", { type = "secret" }, "here")
    assert.matches("a secret names the environment variable", err, 1, true)
    ok, err = pcall(settings.declare, "x", { type = "list", module = true }, "here")
    assert.matches("module = true is for a string setting that names a Lua module", err, 1, true)
    assert.is_true(settings.declare("x", { type = "string", module = true, default = "cdp.plan" }).module)
  end)
end)

describe("settings in a pipeline", function()
  local function new(spec)
    return pcall(pipeline.new, spec, "p.lua:1", "p.lua")
  end
  local function stage(name, s, extra)
    local t = { name = name, run = function() return {} end, settings = s }
    for k, v in pairs(extra or {}) do
      t[k] = v
    end
    return t
  end

  it("the script gives values to declared settings; a typo or a wrong type fails at load, naming it", function()
    local ok, p = new { stages = { stage("a", { region = { type = "string", default = "eu", doc = "d" } }) },
      settings = { region = "us" } }
    assert.is_true(ok, p)
    assert.are.same({ region = "us" }, p.settings)
    local err
    ok, err = new { stages = { stage("a", { region = { type = "string", default = "eu" } }) }, settings = { regoin = "us" } }
    assert.is_false(ok)
    assert.are.equal("p.lua:1: unknown setting 'regoin' (in the script's settings); did you mean 'region'?", err)
    ok, err = new { stages = { stage("a", { region = { type = "string", default = "eu" } }) }, settings = { region = 7 } }
    assert.are.equal("p.lua:1: setting 'region' in the script must be string, not a number", err)
  end)

  it("the script may declare settings of its own, and secrets by their variable", function()
    local ok, p = new { stages = { stage("a", { "mine", "key" }) },
      settings = { mine = pipeline.setting { type = "number", default = 2, doc = "mine" }, key = pipeline.secret("MY_KEY") } }
    assert.is_true(ok, p)
    assert.are.equal("number", p.declarations.mine.type)
    assert.are.equal("MY_KEY", p.declarations.key.env)
  end)

  it("a stage reading a setting nobody declares, or requiring a non-secret, fails at load", function()
    local ok, err = new { stages = { stage("a", { "nowhere" }) } }
    assert.is_false(ok)
    assert.matches("stage 'a' reads setting 'nowhere', which neither a stage of this pipeline nor its settings declare", err, 1, true)
    ok, err = new { stages = { stage("a", { x = { type = "string", default = "" } }, { requires = { "x" } }) } }
    assert.matches("stage 'a' requires 'x', which is not a secret setting", err, 1, true)
    ok, err = new { stages = { stage("a", { x = { type = "string", default = "" } }),
      stage("b", { x = { type = "number", default = 1 } }) } }
    assert.matches("setting 'x' is declared by stages a and b with different types or defaults", err, 1, true)
  end)

  it("a secret written into the script is refused, naming its variable", function()
    local ok, err = new { stages = { stage("a", { t = { type = "secret", env = "T_TOKEN" } }) }, settings = { t = "abc" } }
    assert.is_false(ok)
    assert.matches("setting 't' is a secret: it is read from the environment variable T_TOKEN", err, 1, true)
  end)
end)

describe("the settings reference", function()
  it("every setting of the shipped stages has a type and a line of documentation", function()
    local rows = settings.reference(require("cdp.reference").stdlib_stages())
    assert.is_true(#rows >= 20)
    for _, r in ipairs(rows) do
      assert.is_truthy(r.doc ~= "", r.name .. " has no doc")
      assert.is_truthy(r.type, r.name)
    end
  end)

  it("the README's table is `cdp help settings --markdown`, word for word", function()
    local generated = support.sh(q(cdp) .. " help settings --markdown")
    local readme = assert(support.read(root .. "/README.md"))
    local table_text = readme:match("<!%-%- settings: generated[^\n]*%-%->\n(.-)<!%-%- settings: end %-%->")
    assert(table_text, "README.md has no generated settings table")
    assert.are.equal(generated, table_text,
      "README.md's settings table is stale: regenerate it with `cdp help settings --markdown`")
  end)

  it("cdp config and cdp help settings speak of the same settings", function()
    local out = support.sh(q(cdp) .. " config " .. q(root .. "/pipelines/release.lua"))
    for name in support.sh(q(cdp) .. " help settings --markdown"):gmatch("\n| `([%w_]+)` |") do
      assert.matches("\n" .. name .. " +=", out)
    end
  end)
end)

describe("list settings in a run", function()
  it("--set validate_skip=clean,tokens and --set test_commands=[...] change what the run does", function()
    local dir = support.tmpdir()
    support.sh("bash " .. q(root .. "/tests/fixtures/workspace_demo.sh") .. " " .. q(dir))
    local work = dir .. "/work"
    support.write(work .. "/uncommitted.txt", "not committed\n") -- untracked: not a change
    support.sh("echo '// edited' >> " .. q(work .. "/crates/demo-util/src/lib.rs"))
    local run = "cd " .. q(work) .. " && " .. q(cdp) .. " " .. q(root .. "/pipelines/release.lua")
      .. " --phase 3 --to test --no-prompt "
    -- Without the skip, the dirty tree stops the run at Validate.
    local out, code = support.sh(run .. "</dev/null", { may_fail = true })
    assert.are_not.equal(0, code, out)
    assert.matches("clean: the working tree at", out, 1, true)
    out, code = support.sh(run .. "--set validate_skip=clean,tokens "
      .. q('--set=test_commands=["git status --short", "cargo metadata --no-deps --offline --format-version 1"]')
      .. " </dev/null", { may_fail = true })
    assert.are.equal(0, code, out)
    local newest = support.sh("ls " .. q(work .. "/.cdp/runs") .. " | tail -n 1"):gsub("%s+$", "")
    local log = assert(support.read(work .. "/.cdp/runs/" .. newest .. "/logs/test.log"))
    assert.matches("$ git status --short", log, 1, true)
    assert.matches("$ cargo metadata --no-deps --offline --format-version 1", log, 1, true)
    assert.matches('"workspace_root"', log, 1, true)
    assert.is_nil(log:find("cargo test", 1, true))
  end)
end)
