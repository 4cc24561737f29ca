-- The host as a user meets it: scripts, errors, exit codes, module overrides.
local support = require "tests.lua.support"

local cdp = support.cdp()
local q = support.quote

-- Run cdp with a shell argument string; returns output (stdout+stderr) and exit code.
local function run(args, opts)
  opts = opts or {}
  local prefix = opts.cwd and ("cd " .. q(opts.cwd) .. " && ") or ""
  local env = opts.env or ""
  return support.sh(prefix .. env .. " " .. q(cdp) .. " " .. args, { may_fail = true })
end

describe("cdp host", function()
  it("runs a script with its arguments in arg", function()
    local dir = support.tmpdir()
    support.write(dir .. "/s.lua", 'print(arg[0], arg[1], arg[2], select("#", ...))')
    local out, code = run(q(dir .. "/s.lua") .. " one two")
    assert.are.equal(0, code)
    assert.are.equal(dir .. "/s.lua\tone\ttwo\t2\n", out)
  end)

  it("reports a typo in a script as file:line with a traceback and exit code 2", function()
    local dir = support.tmpdir()
    support.write(dir .. "/typo.lua", "local x = 1\nprnt(x)\n")
    local out, code = run(q(dir .. "/typo.lua"))
    assert.are.equal(2, code)
    assert.matches(dir .. "/typo.lua:2: unknown global 'prnt'", out, 1, true)
    assert.matches("stack traceback:", out, 1, true)
  end)

  it("reports a syntax error with file:line and exit code 2", function()
    local dir = support.tmpdir()
    support.write(dir .. "/bad.lua", "local x = \n\n)")
    local out, code = run(q(dir .. "/bad.lua"))
    assert.are.equal(2, code)
    assert.matches(dir .. "/bad.lua:3:", out, 1, true)
  end)

  it("names a missing module and every place it looked", function()
    local dir = support.tmpdir()
    local out, code = run("--lua-dir " .. q(dir) .. " -e 'require \"cdp.nope\"'")
    assert.are.equal(2, code)
    assert.matches("module 'cdp.nope' not found", out, 1, true)
    assert.matches("no file '" .. dir .. "/cdp/nope.lua'", out, 1, true)
    assert.matches("no embedded module 'cdp.nope'", out, 1, true)
    assert.matches("no file '/usr/share/lua/5.4/cdp/nope.lua'", out, 1, true)
  end)

  it("shows error objects through their __tostring", function()
    local out, code = run([[-e 'error(setmetatable({}, {__tostring = function() return "stage tag failed: EEXISTS" end}))']])
    assert.are.equal(2, code)
    assert.matches("stage tag failed: EEXISTS", out, 1, true)
  end)

  it("points tracebacks from embedded modules at their source paths", function()
    local out, code = run([[-e 'require("cdp.json").encode({f = print})']])
    assert.are.equal(2, code)
    assert.matches("lua/cdp/json.lua:%d+:", out)
  end)

  describe("module overrides", function()
    local override = 'return { encode = function() return "from disk" end }'

    it("--lua-dir replaces an embedded module without rebuilding", function()
      local dir = support.tmpdir()
      support.write(dir .. "/cdp/json.lua", override)
      local out, code = run("--lua-dir " .. q(dir) .. " -e 'print(require(\"cdp.json\").encode({}))'")
      assert.are.equal(0, code)
      assert.are.equal("from disk\n", out)
      local version = run("--lua-dir " .. q(dir) .. " --version")
      assert.matches("on disk for 1 of %d+ modules", version)
      assert.matches("cdp.json <- " .. dir .. "/cdp/json.lua", version, 1, true)
    end)

    it("CDP_LUA_PATH and a repository-shaped directory (lua/cdp/...) work too", function()
      local dir = support.tmpdir()
      support.write(dir .. "/lua/cdp/json.lua", override)
      local out = run("-e 'print(require(\"cdp.json\").encode({}))'", { env = "CDP_LUA_PATH=" .. q(dir) })
      assert.are.equal("from disk\n", out)
    end)

    it("a project-local .cdp/lua is searched for the repository's scripts and pipelines, and says so", function()
      local dir = support.tmpdir()
      support.write(dir .. "/.cdp/lua/cdp/json.lua", override)
      support.write(dir .. "/show.lua", 'print(require("cdp.json").encode({}))')
      local out = run("show.lua 2>/dev/null", { cwd = dir })
      assert.are.equal("from disk\n", out)
      local said = run("show.lua 2>&1 >/dev/null", { cwd = dir })
      assert.are.equal("cdp: using the repository's Lua from .cdp/lua/ (in place of cdp.json); "
        .. "CDP_NO_LOCAL_LUA=1 or --no-local-lua turns it off\n", said)
      local builtin = run("-e 'print(require(\"cdp.json\").encode({}))'")
      assert.are_not.equal("from disk\n", builtin)
      assert.are.equal(builtin, run("--no-local-lua show.lua", { cwd = dir }))
      assert.are.equal(builtin, run("show.lua", { cwd = dir, env = "CDP_NO_LOCAL_LUA=1" }))
    end)

    it("a project-local .cdp/lua is never loaded by --version, help, -e or commands that run no pipeline", function()
      local dir = support.tmpdir()
      -- Lua a checkout could ship: it would print the token as soon as it runs.
      local evil = 'io.stderr:write("LOCAL LUA RAN ", tostring(os.getenv("GITHUB_TOKEN")), "\\n") os.exit(9)'
      for _, m in ipairs { "cdp/cli.lua", "cdp/init.lua", "cdp/json.lua", "cdp/plan.lua", "cdp/commands/status.lua",
        "cdp/commands/plan.lua", "cdp/secrets.lua" } do
        support.write(dir .. "/.cdp/lua/" .. m, evil)
      end
      for _, args in ipairs { "--version", "--help", "help", "help run", "help settings", "status",
        "-e 'print(require(\"cdp.json\").encode({}))'", "plan" } do
        local out = run(args, { cwd = dir, env = "GITHUB_TOKEN=tok-for-local-lua-55" })
        assert.is_nil(out:find("LOCAL LUA RAN", 1, true), args .. ": " .. out)
        assert.is_nil(out:find("tok-for-local-lua-55", 1, true), args .. ": " .. out)
      end
      local version = run("--version", { cwd = dir })
      assert.matches("lua runtime: embedded", version, 1, true)
    end)

    it("--version says the embedded runtime is in use when nothing overrides it", function()
      local out, code = run("--version", { cwd = support.tmpdir() })
      assert.are.equal(0, code)
      assert.matches("^cdp %d+%.%d+%.%d+, Lua 5%.4", out)
      assert.matches("lua runtime: embedded", out, 1, true)
    end)
  end)

  describe("command line", function()
    it("documents every exit code in --help", function()
      local out, code = run("--help")
      assert.are.equal(0, code)
      for _, n in ipairs { "0", "1", "2", "3" } do
        assert.matches("\n  " .. n .. "  ", out, 1, true)
      end
    end)

    it("exits 2 on an unknown option or a missing script", function()
      local out, code = run("--frobnicate")
      assert.are.equal(2, code)
      assert.matches("unknown option '--frobnicate'", out, 1, true)
      out, code = run("/nonexistent/pipeline.lua")
      assert.are.equal(2, code)
      assert.matches("/nonexistent/pipeline.lua", out, 1, true)
    end)

    it("exposes the cdp namespace to -e code", function()
      local out, code = run([[-e 'print(cdp.json.encode({b = 1, a = 2}))']])
      assert.are.equal(0, code)
      assert.are.equal('{"a":2,"b":1}\n', out)
    end)
  end)
end)
