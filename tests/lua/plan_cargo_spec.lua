-- plan.make runs cargo metadata while it reads git (workspace.start), and
-- reads git ahead on a guess of the workspace (workspace.guess). What it
-- gives and how it fails must be what the one-step-after-another path gives.
local support = require "tests.lua.support"
local fixture = require "tests.fixtures.plan_workspace"
local workspace = require "cdp.workspace"
local proc = require "cdp.proc"
local fs = require "cdp.fs"
local path_dep = require("tests.fixtures.plan_histories").path_dep

local q = support.quote

-- Whether PID runs (a zombie, exited and not yet reaped by whoever adopted it, does not).
local function alive(pid)
  local stat = fs.read("/proc/" .. tostring(pid) .. "/stat")
  return stat ~= nil and stat:match("^%d+ %b() (%a)") ~= "Z"
end

-- a 0.3.1 (depends on b), b 0.1.0, both released, then changes to each.
local function released_pair()
  local w = fixture.new()
  w:crate("b", "0.1.0")
  w:crate("a", "0.3.1", { deps = { b = path_dep("b", "0.1.0") } })
  w:commit("chore: start")
  w:release()
  w:change("b", "feat: more b")
  w:change("a", "fix: a mended")
  return w
end

-- A directory holding a `cargo` that runs BODY (sh), for a child cdp's PATH.
local function fake_cargo(body)
  local bin = support.tmpdir()
  support.write(bin .. "/cargo", "#!/bin/sh\n" .. body .. "\n")
  support.sh("chmod +x " .. q(bin .. "/cargo"))
  return bin
end

-- Run Lua CODE in a cdp child with PATH set to PATH_VALUE; its stdout.
local function cdp_with_path(path_value, code)
  return support.sh("env PATH=" .. q(path_value) .. " " .. q(support.cdp()) .. " -e " .. q(code) .. " 2>&1")
end

describe("plan: cargo metadata while git is read", function()
  it("gives the same plan as without the guess, byte for byte", function()
    local w = released_pair()
    local guessed = assert(w:plan()):to_json()
    assert.are.equal(assert(w:plan { guess = false }):to_json(), guessed)
    assert.truthy(guessed:find("feat: more b", 1, true))
  end)

  it("takes nothing from a wrong guess", function()
    local w = released_pair()
    local want = assert(w:plan { guess = false }):to_json()
    local real_guess = workspace.guess
    local wrong = {
      -- another version for a: its manifest tag is another one
      function(ws) ws.by_name.a.version = "0.2.0" end,
      -- a crate missing: the walk's paths differ
      function(ws) table.remove(ws.members, 1) end,
      -- another shipped file set: the walk is asked something else
      function(ws) ws.by_name.b.files = { include = { "src/**" } } end,
    }
    for _, spoil in ipairs(wrong) do
      workspace.guess = function(...)
        local ws = real_guess(...)
        spoil(ws)
        return ws
      end
      local ok, got = pcall(function() return assert(w:plan()):to_json() end)
      workspace.guess = real_guess
      assert(ok, got)
      assert.are.equal(want, got)
    end
  end)

  it("fails as before when cargo fails while git is read: cargo's message, the dir, ECARGO", function()
    local w = released_pair()
    w:write("crates/b/Cargo.toml", '[package]\nname = "b"\nversion = "0.1.0\nedition = "2021"\n')
    w:commit("chore: break it")
    local _, want, want_code = workspace.load(w.dir, { repo_root = w.dir })
    local p, err, code = w:plan()
    assert.is_nil(p)
    assert.are.equal("ECARGO", code)
    assert.are.equal(want_code, code)
    assert.are.equal(want, err)
    assert.truthy(err:find("crates/b/Cargo.toml:3", 1, true), err)
    -- cargo's failure still comes before a revision that does not resolve,
    -- although git is read first now
    local p2, err2, code2 = w:plan { from = "no-such-branch" }
    assert.is_nil(p2)
    assert.are.equal(want, err2)
    assert.are.equal("ECARGO", code2)
  end)

  it("says so when there is no cargo to run, as workspace.load does", function()
    local w = released_pair()
    local out = cdp_with_path(fake_cargo("exit 0") .. "/nowhere", ([[
      local _, e1, c1 = require("cdp.plan").make { dir = %q }
      local _, e2, c2 = require("cdp.workspace").load(%q)
      print(c1, c1 == c2, e1 == e2)
      print(e1)
    ]]):format(w.dir, w.dir))
    assert.truthy(out:find("^ENOENT\ttrue\ttrue\ncannot run cargo metadata in " .. w.dir:gsub("%p", "%%%0")
      .. ": ENOENT[^\n]*cargo\n$"), out)
  end)

  it("ends a cargo that hangs at the timeout, with the same message as workspace.load", function()
    local w = released_pair()
    local bin = fake_cargo("echo 'still resolving' >&2; exec sleep 30")
    local cargo = bin .. "/cargo"
    local _, want, want_code = workspace.load(w.dir, { cargo = cargo, timeout = 0.3 })
    local pending <close> = workspace.start(w.dir, { cargo = cargo, timeout = 0.3 })
    local ws, err, code = pending:finish()
    assert.is_nil(ws)
    assert.are.equal(want_code, code)
    assert.are.equal(want, err)
    assert.are.equal(("cargo metadata failed in %s:\ntimed out. still resolving"):format(w.dir), err)
  end)

  -- True once process PID has been asleep (state S) at 10 samples in a row, 20 ms
  -- apart: blocked in a wait, not working (a process preempted or paging is R or D).
  local function settled(pid)
    local asleep, deadline = 0, proc.clock() + 30
    while proc.clock() < deadline do
      local stat = fs.read("/proc/" .. tostring(pid) .. "/stat")
      asleep = stat and stat:match("^%d+ %b() (%a)") == "S" and asleep + 1 or 0
      if asleep >= 10 then
        return true
      end
      proc.sleep(0.02)
    end
    return false
  end

  it("stops on Ctrl-C while waiting for cargo, leaving no cargo behind", function()
    local w = released_pair()
    local dir = support.tmpdir()
    local bin = fake_cargo(('echo $$ > %s/cargo.pid; exec sleep 30'):format(q(dir)))
    local code = ([[
      cdp.proc.trap_signals()
      local p, err, code = require("cdp.plan").make { dir = %q }
      print(p, err, code)
    ]]):format(w.dir)
    local out = dir .. "/out"
    local pid = support.sh("env PATH=" .. q(bin .. ":" .. os.getenv("PATH")) .. " " .. q(support.cdp()) .. " -e "
      .. q(code) .. " </dev/null >" .. q(out) .. " 2>&1 & echo $!"):gsub("%s+$", "")
    local deadline = proc.clock() + 20
    while not fs.exists(dir .. "/cargo.pid") and proc.clock() < deadline do
      proc.sleep(0.02)
    end
    assert.is_true(fs.exists(dir .. "/cargo.pid"), "cargo never started")
    local cargo_pid = tonumber((fs.read(dir .. "/cargo.pid"):gsub("%s+$", "")))
    -- Into the wait for cargo: the git work is done once cdp sleeps without a break
    -- (under ASan on a loaded machine that git work takes more than a moment).
    assert.is_true(settled(pid), "cdp never settled into waiting for cargo")
    assert.is_true(proc.kill(tonumber(pid), "INT"))
    deadline = proc.clock() + 20
    while alive(pid) and proc.clock() < deadline do
      proc.sleep(0.02)
    end
    local text = fs.read(out)
    assert.are.equal(("nil\tcannot run cargo metadata in %s: EINTR: interrupted by SIGINT: cargo metadata "
      .. "--format-version 1 --no-deps --offline\tEINTR\n"):format(w.dir), text)
    assert.is_false(alive(cargo_pid), "cargo is still there")
  end)
end)
