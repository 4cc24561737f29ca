-- The pipeline engine as users meet it: real cdp processes running the test
-- pipelines in tests/fixtures/engine_*.lua, killed for real, on a real pty;
-- and its notifications: redaction, alert rules, a webhook whose signature
-- tests/fixtures/webhook_receiver.py checks, e-mail that MailDev receives,
-- endpoints that are down.
local support = require "tests.lua.support"
local cjson = require "cjson"
local json = require "cdp.json"
local fs = require "cdp.fs"
local notify = require("cdp.run").notify()

local cdp = support.cdp()
local q = support.quote
local root = os.getenv("CDP_SOURCE_DIR") or "."
local BASIC = root .. "/tests/fixtures/engine_basic.lua"
if BASIC:sub(1, 1) ~= "/" then
  BASIC = support.sh("pwd"):gsub("%s+$", "") .. "/" .. BASIC
end
local CDP = cdp:sub(1, 1) == "/" and cdp or (support.sh("pwd"):gsub("%s+$", "") .. "/" .. cdp)

-- Run cdp in DIR with ENV ({NAME = value}); returns output (stdout+stderr), exit code.
local function run(dir, args, env)
  local parts = {}
  for k, v in pairs(env or {}) do
    parts[#parts + 1] = k .. "=" .. q(v)
  end
  table.sort(parts)
  return support.sh("cd " .. q(dir) .. " && env " .. table.concat(parts, " ") .. " " .. q(CDP) .. " " .. args
    .. " </dev/null", { may_fail = true })
end

-- A pipeline with alert sinks (a JSON lines file among them) and stages that log.
local ALERTS = root .. "/tests/fixtures/engine_alerts.lua"
if ALERTS:sub(1, 1) ~= "/" then
  ALERTS = support.sh("pwd"):gsub("%s+$", "") .. "/" .. ALERTS
end

local function status(dir, id)
  local out, code = run(dir, "status " .. (id or "") .. " --json")
  assert(code == 0, out)
  return cjson.decode(out)
end

-- The parts of a status that must match between two runs: stage names,
-- states and outputs (not the run id).
local function shape(st)
  local out = { state = st.state, stages = {} }
  for i, s in ipairs(st.stages) do
    out.stages[i] = { name = s.name, state = s.state, outputs = s.outputs }
  end
  return out
end

local function lines(path)
  local t = {}
  for l in (support.read(path) or ""):gmatch("[^\n]+") do
    t[#t + 1] = l
  end
  return t
end

local function wait_for(path, seconds)
  for _ = 1, (seconds or 20) * 50 do
    if support.read(path) then
      return true
    end
    os.execute("sleep 0.02")
  end
  error("timed out waiting for " .. path)
end

-- Start cdp in the background; returns its pid and the file its output goes to.
local function spawn(dir, args, env)
  local parts = {}
  for k, v in pairs(env or {}) do
    parts[#parts + 1] = k .. "=" .. q(v)
  end
  local out = dir .. "/bg.out"
  local pid = support.sh("cd " .. q(dir) .. " && { env " .. table.concat(parts, " ") .. " " .. q(CDP) .. " " .. args
    .. " </dev/null >" .. q(out) .. " 2>&1 & echo $!; }"):gsub("%s+$", "")
  return pid, out
end

local function alive(pid)
  local _, code = support.sh("kill -0 " .. pid, { may_fail = true })
  return code == 0
end

local function wait_exit(pid)
  for _ = 1, 1000 do
    if not alive(pid) then
      return
    end
    os.execute("sleep 0.02")
  end
  error("process " .. pid .. " did not exit")
end

local function write_script(text)
  local dir = support.git_init()
  local path = dir .. "/pipeline.lua"
  support.write(path, text)
  return dir, path
end

describe("cdp.pipeline validation", function()
  it("names an unknown stage with the script's file:line and exits 2", function()
    local dir, path = write_script([[
local fetch = { name = "fetch", gives = { "x" }, run = function() return { x = 1 } end }
return cdp.pipeline {
  name = "p",
  stages = { fetch, "no-such-stage" },
}
]])
    local out, code = run(dir, q(path))
    assert.are.equal(2, code)
    assert.matches(path .. ":4: unknown stage 'no-such-stage'", out, 1, true)
  end)

  it("names a need no earlier stage gives, at the stage's definition", function()
    local dir, path = write_script([[
return cdp.pipeline {
  stages = {
    { name = "a", gives = { "x" }, run = function() return { x = 1 } end },
    { name = "b", needs = { "y" },
      run = function() end },
  },
}
]])
    local out, code = run(dir, "run " .. q(path))
    assert.are.equal(2, code)
    assert.matches(path .. ":5: stage 'b' needs 'y', which no earlier stage gives", out, 1, true)
  end)

  it("says when the artifact comes from a later stage", function()
    local dir, path = write_script([[
return cdp.pipeline {
  stages = {
    { name = "a", needs = { "x" }, run = function() end },
    { name = "b", gives = { "x" }, run = function() return { x = 1 } end },
  },
}
]])
    local out, code = run(dir, q(path))
    assert.are.equal(2, code)
    assert.matches(path .. ":3: stage 'a' needs 'x', which only the later stage 'b' gives", out, 1, true)
  end)

  it("refuses a duplicated stage and a bad phase", function()
    local dir, path = write_script([[
return cdp.pipeline {
  stages = {
    { name = "a", run = function() end },
    { name = "a", run = function() end },
  },
}
]])
    local out, code = run(dir, q(path))
    assert.are.equal(2, code)
    assert.matches(path .. ":4: duplicate stage 'a' (stages 1 and 2)", out, 1, true)

    local dir2, path2 = write_script([[

return cdp.pipeline { phase = 7, stages = { { name = "a", run = function() end } } }
]])
    out, code = run(dir2, q(path2))
    assert.are.equal(2, code)
    assert.matches(path2 .. ":2: bad phase 7", out, 1, true)
    assert.is_nil(support.read(dir2 .. "/.cdp/lock"), "nothing may be written for a broken script")
  end)

  it("refuses alerts that send to an undefined sink", function()
    local dir, path = write_script([[
return cdp.pipeline {
  stages = { { name = "a", run = function() end } },
  alerts = { sinks = {}, rules = { { on = "run.*", to = "pager" } } },
}
]])
    local out, code = run(dir, q(path))
    assert.are.equal(2, code)
    assert.matches(path .. ":1: alerts: rules[1] sends to sink 'pager'", out, 1, true)
  end)
end)

describe("cdp run", function()
  it("runs stages in order, records outputs, and a second run runs nothing", function()
    local dir = support.git_init()
    local out, code = run(dir, q(BASIC), { ENGINE_TRACE = dir .. "/trace" })
    assert.are.equal(0, code, out)
    assert.are.same({ "fetch", "build", "test", "publish" }, lines(dir .. "/trace"))
    local first = status(dir)
    assert.are.equal("done", first.state)
    assert.are.equal("passed", first.stages[4].state)
    assert.are.same({ binary = { name = "hello.bin", size = 42 } }, first.stages[2].outputs)

    os.remove(dir .. "/trace")
    out, code = run(dir, "run " .. q(BASIC), { ENGINE_TRACE = dir .. "/trace" })
    assert.are.equal(0, code, out)
    assert.is_nil(support.read(dir .. "/trace"), "the second run ran a stage")
    local second = status(dir)
    assert.are_not.equal(first.run, second.run)
    for i, s in ipairs(second.stages) do
      assert.are.equal("cached", s.state)
      assert.are.same(first.stages[i].outputs, s.outputs)
    end
    -- the first run's derived state is untouched by the second
    assert.are.same(first, status(dir, first.run))
  end)

  it("runs a stage again when its settings change, and with --force", function()
    local dir = support.git_init()
    assert.are.equal(0, select(2, run(dir, q(BASIC))))
    local out, code = run(dir, q(BASIC) .. " --set level=2", { ENGINE_TRACE = dir .. "/trace" })
    assert.are.equal(0, code, out)
    -- every stage reads every setting: all run again, and the outputs follow
    assert.are.same({ "fetch", "build", "test", "publish" }, lines(dir .. "/trace"))
    assert.are.equal(84, status(dir).stages[2].outputs.binary.size)
    os.remove(dir .. "/trace")
    out, code = run(dir, q(BASIC) .. " --force test", { ENGINE_TRACE = dir .. "/trace" })
    assert.are.equal(0, code, out)
    assert.are.same({ "test" }, lines(dir .. "/trace"))
  end)

  it("honours --to, --from and --only", function()
    local dir = support.git_init()
    local env = { ENGINE_TRACE = dir .. "/trace" }
    local out, code = run(dir, q(BASIC) .. " --to build", env)
    assert.are.equal(0, code, out)
    assert.are.same({ "fetch", "build" }, lines(dir .. "/trace"))
    local st = status(dir)
    assert.are.same({ "passed", "passed", "skipped", "skipped" },
      { st.stages[1].state, st.stages[2].state, st.stages[3].state, st.stages[4].state })

    os.remove(dir .. "/trace")
    out, code = run(dir, q(BASIC) .. " --from test", env)
    assert.are.equal(0, code, out)
    assert.are.same({ "test", "publish" }, lines(dir .. "/trace"))
    st = status(dir)
    assert.are.equal("skipped", st.stages[2].state)
    assert.are.same({ binary = { name = "hello.bin", size = 42 } }, st.stages[2].outputs)

    os.remove(dir .. "/trace")
    out, code = run(dir, q(BASIC) .. " --only build --force build", env)
    assert.are.equal(0, code, out)
    assert.are.same({ "build" }, lines(dir .. "/trace"))

    out, code = run(dir, q(BASIC) .. " --only nope")
    assert.are.equal(2, code)
    assert.matches("--only: no stage 'nope' in pipeline basic (stages: fetch, build, test, publish)", out, 1, true)
  end)

  it("fails a stage whose inputs were skipped and never recorded", function()
    local dir = support.git_init()
    local out, code = run(dir, q(BASIC) .. " --from test")
    assert.are.equal(1, code, out)
    assert.matches("stage test needs 'binary' from stage build, which was skipped", out, 1, true)
  end)

  it("--dry-run says what would run and writes nothing", function()
    local dir = support.git_init()
    local out, code = run(dir, q(BASIC) .. " --dry-run --phase 2", { ENGINE_TRACE = dir .. "/trace" })
    assert.are.equal(0, code, out)
    assert.matches("1. fetch        run\n", out, 1, true)
    assert.matches("4. publish      approve, then run", out, 1, true)
    assert.is_nil(support.read(dir .. "/trace"))
    assert.are.equal(".git\n", support.sh("ls -A " .. q(dir)))
    assert.are.equal(0, select(2, run(dir, q(BASIC))))
    out = run(dir, q(BASIC) .. " --dry-run --to test")
    assert.matches("1. fetch        cached", out, 1, true)
    assert.matches("3. test         cached", out, 1, true)
    assert.matches("4. publish      skip (after --to test)", out, 1, true)
  end)

  it("fails on a health check, naming the check and why", function()
    local dir = support.git_init()
    local out, code = run(dir, q(BASIC), { ENGINE_UNHEALTHY = "build", ENGINE_TRACE = dir .. "/trace" })
    assert.are.equal(1, code, out)
    assert.matches("health check 'compiler present' failed: the disk is full (ENGINE_UNHEALTHY)", out, 1, true)
    assert.are.same({ "fetch" }, lines(dir .. "/trace"))
    local st = status(dir)
    assert.are.equal("failed", st.stages[2].state)
    assert.are.equal("EHEALTH", st.stages[2].error.code)

    out, code = run(dir, "check " .. q(BASIC), { ENGINE_UNHEALTHY = "publish" })
    assert.are.equal(1, code)
    assert.matches("✗ publish: publish: the disk is full", out, 1, true)
    assert.matches("✓ build: compiler present", out, 1, true)
    assert.are.equal(0, select(2, run(dir, "check " .. q(BASIC))))
  end)

  it("resumes a stage that failed the first time, and records its error and log tail", function()
    local dir = support.git_init()
    local env = { ENGINE_FAIL_ONCE = dir .. "/flag", ENGINE_TRACE = dir .. "/trace" }
    local out, code = run(dir, q(BASIC), env)
    assert.are.equal(1, code, out)
    local st = status(dir)
    assert.are.equal("failed", st.state)
    assert.are.equal("failed", st.stages[2].state)
    assert.matches("engine_basic.lua:%d+: the build broke %(first attempt%)", st.stages[2].error.msg)
    local journal = support.read(dir .. "/.cdp/runs/" .. st.run .. "/journal.ndjson")
    local failed
    for l in journal:gmatch("[^\n]+") do
      local e = cjson.decode(l)
      if e.event == "stage.failed" then
        failed = e
      end
    end
    assert.are.same({ "first attempt: failing on purpose" }, failed.log_tail)
    assert.matches("engine_basic.lua:%d+: in function", failed.error.traceback)

    out, code = run(dir, "resume " .. st.run, env)
    assert.are.equal(0, code, out)
    assert.are.same({ "fetch", "build", "build", "test", "publish" }, lines(dir .. "/trace"))
    local after = status(dir, st.run)
    assert.are.equal("done", after.state)
    local clean = support.git_init()
    assert.are.equal(0, select(2, run(clean, q(BASIC))))
    assert.are.same(shape(status(clean)), shape(after))
  end)

  it("refuses a second run while the first holds the lock, naming the holder", function()
    local dir = support.git_init()
    local pid = spawn(dir, q(BASIC), { ENGINE_WAIT = "build:" .. dir .. "/go" })
    wait_for(dir .. "/go.started")
    local out, code = run(dir, q(BASIC))
    assert.are.equal(1, code, out)
    assert.matches("another cdp holds " .. dir .. "/.cdp/lock: cdp run basic, pid " .. pid, out, 1, true)
    support.write(dir .. "/go", "")
    wait_exit(pid)
    assert.are.equal("done", status(dir).state)
  end)
end)

describe("cdp run under SIGKILL and SIGINT", function()
  local reference
  setup(function()
    local dir = support.git_init()
    assert.are.equal(0, select(2, run(dir, q(BASIC))))
    reference = shape(status(dir))
    for _, s in ipairs(reference.stages) do
      assert.are.equal("passed", s.state)
    end
  end)

  -- Kill cdp with SIGKILL at the point VAR (ENGINE_WAIT or ENGINE_WAIT_HEALTH)
  -- names, optionally tear the journal's last line, then resume.
  local function kill_and_resume(var, stage, tear)
    local dir = support.git_init()
    local trace = dir .. "/trace"
    local pid = spawn(dir, q(BASIC), { [var] = stage .. ":" .. dir .. "/go", ENGINE_TRACE = trace })
    wait_for(dir .. "/go.started")
    support.sh("kill -KILL " .. pid)
    wait_exit(pid)
    local killed = status(dir)
    assert.are.equal("interrupted", killed.state)
    local journal = dir .. "/.cdp/runs/" .. killed.run .. "/journal.ndjson"
    if tear then
      -- what a kill in the middle of an append leaves behind
      support.sh("printf '%s' '{\"event\":\"stage.passed\",\"outputs\":{\"bin' >> " .. q(journal))
    end
    support.write(dir .. "/go", "")
    local out, code = run(dir, "resume " .. killed.run, { ENGINE_TRACE = trace })
    assert.are.equal(0, code, out)
    assert.are.same(reference, shape(status(dir, killed.run)))
    return killed, lines(trace), journal
  end

  it("before a stage (in its health check)", function()
    local killed, ran = kill_and_resume("ENGINE_WAIT_HEALTH", "build")
    assert.are.equal("passed", killed.stages[1].state)
    assert.are.equal("pending", killed.stages[2].state)
    assert.are.same({ "fetch", "build", "test", "publish" }, ran)
  end)

  it("during a stage, which then runs again", function()
    local killed, ran = kill_and_resume("ENGINE_WAIT", "build")
    assert.are.equal("interrupted", killed.stages[2].state)
    assert.are.same({ "fetch", "build", "build", "test", "publish" }, ran)
  end)

  it("after a stage, with the journal's last line torn", function()
    local killed, ran, journal = kill_and_resume("ENGINE_WAIT", "publish", true)
    assert.are.equal("passed", killed.stages[3].state)
    assert.are.same({ "fetch", "build", "test", "publish", "publish" }, ran)
    -- the torn fragment stays on a line of its own; every other line is whole JSON
    local bad = 0
    for l in support.read(journal):gmatch("[^\n]+") do
      if not pcall(cjson.decode, l) then
        bad = bad + 1
      end
    end
    assert.are.equal(1, bad)
  end)

  it("SIGINT marks the stage interrupted, exits 1, and the run resumes", function()
    local dir = support.git_init()
    local pid, out = spawn(dir, q(BASIC), { ENGINE_WAIT = "test:" .. dir .. "/go" })
    wait_for(dir .. "/go.started")
    support.sh("kill -INT " .. pid)
    wait_exit(pid)
    assert.matches("stage test interrupted", support.read(out), 1, true)
    local st = status(dir)
    assert.are.equal("interrupted", st.state)
    assert.are.equal("interrupted", st.stages[3].state)
    support.write(dir .. "/go", "")
    local text, code = run(dir, "resume " .. st.run)
    assert.are.equal(0, code, text)
    assert.are.same(reference, shape(status(dir)))
  end)
end)

describe("approvals", function()
  it("phase 2 without a terminal stops before publish with exit 3; approve and resume finish", function()
    local dir = support.git_init()
    local env = { ENGINE_TRACE = dir .. "/trace" }
    local out, code = run(dir, q(BASIC) .. " --phase 2", env)
    assert.are.equal(3, code, out)
    assert.matches("approval needed before stage publish", out, 1, true)
    assert.are.same({ "fetch", "build", "test" }, lines(dir .. "/trace"))
    local st = status(dir)
    assert.are.equal("awaiting-approval", st.state)
    assert.are.equal("awaiting-approval", st.stages[4].state)

    out, code = run(dir, "resume " .. st.run, env)
    assert.are.equal(3, code, out)

    out, code = run(dir, "approve " .. st.run .. " --stage build")
    assert.are.equal(2, code)
    assert.matches("awaits approval before stage publish, not build", out, 1, true)
    out, code = run(dir, "approve " .. st.run .. " --stage publish --note 'release 1.2'")
    assert.are.equal(0, code, out)
    out, code = run(dir, "resume " .. st.run, env)
    assert.are.equal(0, code, out)
    assert.are.same({ "fetch", "build", "test", "publish" }, lines(dir .. "/trace"))
    st = status(dir)
    assert.are.equal("done", st.state)
    local a = st.stages[4].approvals[1]
    assert.are.equal("approved", a.decision)
    assert.are.equal("before", a.when)
    assert.are.equal("release 1.2", a.note)
    assert.are.equal(support.sh("id -un"):gsub("%s+$", ""), a.user)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", a.time)
  end)

  it("phase 0 asks before and after every stage", function()
    local dir = support.git_init()
    local env = { ENGINE_TRACE = dir .. "/trace" }
    local out, code = run(dir, q(BASIC) .. " --phase 0", env)
    local asked = {}
    while code == 3 do
      local st = status(dir)
      local waiting
      for _, s in ipairs(st.stages) do
        if s.state == "awaiting-approval" then
          waiting = s.name
        end
      end
      local when = out:match("approval needed (%a+) stage " .. waiting) or out:match("still awaiting approval (%a+) stage")
      asked[#asked + 1] = when .. " " .. waiting
      assert.are.equal(0, select(2, run(dir, "approve last")))
      out, code = run(dir, "resume last", env)
      assert(#asked < 20, "approvals never end")
    end
    assert.are.equal(0, code, out)
    assert.are.same({ "before fetch", "after fetch", "before build", "after build", "before test", "after test",
      "before publish", "after publish" }, asked)
    assert.are.same({ "fetch", "build", "test", "publish" }, lines(dir .. "/trace"))
  end)

  it("phase 1 on a terminal shows the outputs and honours reject", function()
    local dir = support.git_init()
    -- drive cdp through a real pseudo-terminal
    local driver = dir .. "/drive_tty.py"
    support.write(driver, [[
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
def until(text, timeout=30):
    global out
    end = time.time() + timeout
    while text.encode() not in out:
        if time.time() > end:
            sys.stdout.write(out.decode("utf-8", "replace")); sys.exit("timed out waiting for " + text)
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
def answer(text):
    os.write(fd, (text + "\n").encode())
until("Approve after stage fetch?")
answer("s")
until("Approve after stage fetch?", 30)
before = out.count(b"Approve after stage fetch?")
answer("a")
until("Approve after stage build?")
answer("r")
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
print("\nEXIT %d" % os.WEXITSTATUS(status))
]])
    local out = support.sh("cd " .. q(dir) .. " && python3 " .. q(driver) .. " " .. q(CDP) .. " " .. q(BASIC)
      .. " --phase 1")
    assert.matches("EXIT 1", out, 1, true)
    assert.matches('"greeting": "hello"', out, 1, true)
    assert.matches('"name": "hello.bin"', out, 1, true)
    assert.matches("[a]pprove, [r]eject, [s]how more", out, 1, true)
    -- live progress on a terminal: marks and elapsed times, not plain lines
    assert.matches("✓ fetch passed %d+%.%ds", out)
    assert.is_nil(out:find("stage fetch started", 1, true))
    local st = status(dir)
    assert.are.equal("failed", st.state)
    assert.are.equal("passed", st.stages[1].state)
    assert.are.equal("failed", st.stages[2].state)
    assert.are.equal("EREJECTED", st.stages[2].error.code)
    assert.are.equal("pending", st.stages[3].state)
    assert.are.equal("rejected", st.stages[2].approvals[1].decision)
  end)
end)

describe("recorded outputs", function()
  it("are checked against the world by verify, and the stage runs again when they no longer hold", function()
    local dir, path = write_script([[
return cdp.pipeline {
  phase = 3,
  stages = {
    {
      name = "tag",
      gives = { "tag" },
      verify = function(ctx, outputs)
        if io.open(ctx.root .. "/moved", "r") then
          return false, "tag v1 now points elsewhere"
        end
        return outputs.tag.oid == "abc"
      end,
      run = function(ctx)
        local f = io.open(ctx.root .. "/ran", "a"); f:write("x"); f:close()
        return { tag = { name = "v1", oid = "abc" } }
      end,
    },
  },
}
]])
    assert.are.equal(0, select(2, run(dir, q(path))))
    assert.are.equal(0, select(2, run(dir, q(path))))
    assert.are.equal("x", support.read(dir .. "/ran"))
    assert.are.equal("cached", status(dir).stages[1].state)
    support.write(dir .. "/moved", "")
    local out, code = run(dir, q(path))
    assert.are.equal(0, code, out)
    assert.matches("recorded outputs no longer hold (tag v1 now points elsewhere)", out, 1, true)
    assert.are.equal("xx", support.read(dir .. "/ran"))
    assert.are.equal("passed", status(dir).stages[1].state)
  end)

  it("must be the declared artifacts", function()
    local dir, path = write_script([[
return cdp.pipeline {
  phase = 3,
  stages = { { name = "a", gives = { "x" }, run = function() return { y = 1 } end } },
}
]])
    local out, code = run(dir, q(path))
    assert.are.equal(1, code)
    assert.matches("stage a failed (", out, 1, true)
    local st = status(dir)
    assert.are.equal("EOUTPUT", st.stages[1].error.code)
    assert.are.equal("did not give 'x'", st.stages[1].error.msg)
  end)
end)

describe("stdlib alerts", function()
  it("cdp.alerts.default sends failures and approvals everywhere, progress only where asked", function()
    local alerts = require("cdp.alerts.default") {
      sinks = { mail = { email = "smtp://x", from = "a@b", to = "c@d" }, chat = { slack = "http://x" } },
      progress = { "chat" },
    }
    assert.is_true(notify.check_alerts(alerts))
    local function sinks_for(event)
      local out = {}
      for _, r in ipairs(alerts.rules) do
        if notify.matches(r.on, { event = event }) then
          for _, n in ipairs(r.to) do
            out[#out + 1] = n
          end
        end
      end
      table.sort(out)
      return out
    end
    assert.are.same({ "chat", "mail" }, sinks_for("stage.failed"))
    assert.are.same({ "chat", "mail" }, sinks_for("approval.needed"))
    assert.are.same({ "chat" }, sinks_for("stage.passed"))
    assert.are.same({}, sinks_for("stage.started"))
  end)
end)

describe("run files", function()
  it("are private: run folders 0700, journals, logs and events 0600", function()
    local dir = support.git_init()
    local out, code = run(dir, q(ALERTS))
    assert.are.equal(0, code, out)
    local function mode(path)
      return (support.sh("stat -c %a " .. q(path)):gsub("%s+$", ""))
    end
    local id = (support.sh("ls " .. q(dir .. "/.cdp/runs")):gsub("%s+$", ""))
    assert.are.equal("700", mode(dir .. "/.cdp"))
    assert.are.equal("700", mode(dir .. "/.cdp/runs"))
    assert.are.equal("700", mode(dir .. "/.cdp/runs/" .. id))
    assert.are.equal("700", mode(dir .. "/.cdp/runs/" .. id .. "/logs"))
    assert.are.equal("600", mode(dir .. "/.cdp/runs/" .. id .. "/journal.ndjson"))
    for _, log in ipairs { "prepare", "deploy" } do
      assert.are.equal("600", mode(dir .. "/.cdp/runs/" .. id .. "/logs/" .. log .. ".log"))
    end
    assert.are.equal("600", mode(dir .. "/.cdp/events.jsonl"))
  end)
end)

describe("secrets", function()
  it("a token in the environment appears in no file under .cdp/ and not in the output", function()
    local dir = support.git_init()
    local token = "ghp_T0kenThatMustNeverLeak42"
    local other = "s3cr3t-deploy-password-99"
    local env = { ENGINE_GITHUB_TOKEN = token, MY_DEPLOY_PASSWORD = other, ENGINE_LEAK = token .. " and " .. other,
      ENGINE_FAIL_ONCE = dir .. "/flag" }
    local out1 = run(dir, q(BASIC), env)
    local out2 = run(dir, "resume last", env)
    local out3 = run(dir, "status --json")
    local out4 = run(dir, "config " .. q(BASIC), env)
    assert.matches("github_token = ***  (env ENGINE_GITHUB_TOKEN, secret)", out4, 1, true)
    assert.matches("the token is *** and ***", out1, 1, true)
    for _, text in ipairs { out1, out2, out3, out4 } do
      assert.is_nil(text:find(token, 1, true))
      assert.is_nil(text:find(other, 1, true))
    end
    local files = support.sh("find " .. q(dir .. "/.cdp") .. " -type f")
    assert.matches("journal.ndjson", files, 1, true)
    assert.matches("logs/build.log", files, 1, true)
    local _, code = support.sh("grep -r -F -e " .. q(token) .. " -e " .. q(other) .. " " .. q(dir .. "/.cdp"),
      { may_fail = true })
    assert.are.equal(1, code, "a secret was written under .cdp/")
    assert.matches("the token is *** and ***", support.read(support.sh("ls " .. q(dir) .. "/.cdp/runs/*/logs/build.log"):gsub("%s+$", "")), 1, true)
  end)
end)

local function absolute(p)
  return p:sub(1, 1) == "/" and p or (support.sh("pwd"):gsub("%s+$", "") .. "/" .. p)
end

local uptime, start, closed_port = support.uptime, support.start_fixture, support.closed_port

local function journal_of(dir)
  local path = support.sh("ls " .. q(dir) .. "/.cdp/runs/*/journal.ndjson"):gsub("%s+$", "")
  local out = {}
  for l in support.read(path):gmatch("[^\n]+") do
    out[#out + 1] = cjson.decode(l)
  end
  return out
end

describe("redaction", function()
  it("replaces every secret value in strings and nested tables, keys included", function()
    local redact = notify.redactor({ "hunter22", "abc" }, { GITHUB_TOKEN = "ghp_xyz123", HOME = "/root" })
    assert.are.equal("pw=*** tok=*** home=/root abc", redact("pw=hunter22 tok=ghp_xyz123 home=/root abc"))
    assert.are.same({ a = { "***x***" }, ["k***"] = true }, redact({ a = { "hunter22xhunter22" }, ["khunter22"] = true }))
    assert.are.equal(5, redact(5))
  end)

  it("replaces a longer secret whole when a shorter one is inside it", function()
    local redact = notify.redactor({ "secret", "my-secret-value" }, {})
    assert.are.equal("*** and ***", redact("my-secret-value and secret"))
  end)

  it("takes env vars named like secrets, and only those", function()
    assert.is_true(notify.secret_env_name("NPM_TOKEN"))
    assert.is_true(notify.secret_env_name("db_password"))
    assert.is_true(notify.secret_env_name("CLIENT_SECRET"))
    assert.is_false(notify.secret_env_name("PATH"))
    local redact = notify.redactor({}, { SMTP_PASSWORD = "pa55word", EDITOR = "vim-editor" })
    assert.are.equal("*** vim-editor", redact("pa55word vim-editor"))
  end)
end)

describe("alert rules and messages", function()
  it("a sink that cannot make its message is a recorded failure, never an error of the run", function()
    local written = {}
    local d = notify.dispatcher {
      alerts = {
        sinks = { bad = { webhook = "http://127.0.0.1:1/x", headers = { ["X-Bad"] = "two\nlines" } },
          log = { jsonl = "events.jsonl" } },
        rules = { { on = "*", to = { "bad", "log" } } },
      },
      jsonl_write = function(_, line) written[#written + 1] = line return true end,
    }
    d.emit { event = "stage.failed", run = "r", stage = "deploy", error = { msg = "a\nb" } }
    local failures = d.poll()
    d.close()
    assert.are.equal(1, #failures)
    assert.are.equal("bad", failures[1].sink)
    assert.are.equal("EFORMAT", failures[1].code)
    assert.matches("cannot make the message: .*line breaks", failures[1].error)
    assert.are.equal(1, #written) -- the other sink still got it
  end)


  it("checks alerts and names what is wrong", function()
    assert.is_true(notify.check_alerts { sinks = { h = { webhook = "http://x" } }, rules = { { on = "run.*", to = "h" } } })
    local ok, err = notify.check_alerts { sinks = { h = { webhook = "u", slack = "v" } } }
    assert.is_nil(ok)
    assert.matches("sink 'h': a sink is one of", err, 1, true)
    ok, err = notify.check_alerts { sinks = { m = { email = "smtp://x" } } }
    assert.are.equal("sink 'm': email needs from and to", err)
    ok, err = notify.check_alerts { sinks = { m = { email = "smtp://x", from = "a@b", to = "c@d", tls = "maybe" } } }
    assert.matches("sink 'm': tls is \"required\" (the default", err, 1, true)
  end)

  it("sends e-mail with TLS required unless the sink says otherwise, the password from a secret", function()
    local body = json.encode { event = "run.failed", run = "r" }
    local spec = { email = "smtp://mail.example.org:587", from = "a@b", to = "c@d", username = "cdp",
      password = require("cdp.settings").secret("SINK_PW") }
    local msg = notify.message("m", spec, { event = "run.failed" }, body, function(name)
      return name == "SINK_PW" and "the-pw" or nil
    end)
    assert.are.equal("required", msg.tls)
    assert.are.equal("cdp", msg.username)
    assert.are.equal("the-pw", msg.password)
    spec.tls = "none"
    assert.are.equal("none", notify.message("m", spec, { event = "run.failed" }, body, function() end).tls)
  end)

  it("matches by name, pattern and predicate; a predicate that raises does not match", function()
    local ev = { event = "stage.failed", stage = "publish" }
    assert.is_true(notify.matches("stage.failed", ev))
    assert.is_true(notify.matches("stage.*", ev))
    assert.is_true(notify.matches("*", ev))
    assert.is_false(notify.matches("stage.passed", ev))
    assert.is_false(notify.matches("stage", ev))
    assert.is_true(notify.matches(function(e) return e.stage == "publish" end, ev))
    assert.is_false(notify.matches(function() error("oops") end, ev))
  end)

  it("signs webhook deliveries with HMAC-SHA256 of the timestamp and the exact body", function()
    local body = json.encode { event = "run.failed", run = "r" }
    local msg = notify.message("h", { webhook = "http://127.0.0.1:1/x", secret = "k3y" }, { event = "run.failed" }, body,
      nil, 1767225600)
    assert.are.equal(body, msg.body)
    assert.are.equal("1767225600", msg.headers["X-Cdp-Timestamp"])
    assert.are.equal("sha256=" .. fs.hmac_sha256("k3y", "1767225600." .. body), msg.headers["X-Cdp-Signature"])
    -- the same HMAC as an independent implementation computes
    local py = support.sh("python3 -c 'import hmac,hashlib,sys; print(hmac.new(b\"k3y\", sys.argv[1].encode(), hashlib.sha256).hexdigest())' "
      .. q("1767225600." .. body)):gsub("%s+$", "")
    assert.are.equal("sha256=" .. py, msg.headers["X-Cdp-Signature"])
    -- a delivery made later signs other bytes: an old one cannot pass for a new one
    local later = notify.message("h", { webhook = "http://127.0.0.1:1/x", secret = "k3y" }, { event = "run.failed" }, body,
      nil, 1767225601)
    assert.are_not.equal(msg.headers["X-Cdp-Signature"], later.headers["X-Cdp-Signature"])
    local now = notify.message("h", { webhook = "http://127.0.0.1:1/x", secret = "k3y" }, { event = "run.failed" }, body)
    assert.is_true(math.abs(tonumber(now.headers["X-Cdp-Timestamp"]) - os.time()) <= 2)
    local slack = notify.message("s", { slack = "http://x" }, { event = "run.failed", pipeline = "p", run = "r" }, body)
    assert.are.equal('{"text":"p r: run failed"}', slack.body)
  end)
end)

describe("deliveries from a run", function()
  local maildev, mail_ports, receiver, hook_port, record

  -- The last mail MailDev got whose subject holds TEXT, and every mail it got.
  local function mail_about(text)
    local mails = cjson.decode((support.sh("curl -sf http://127.0.0.1:" .. mail_ports.WEB .. "/api/email")))
    local found
    for _, m in ipairs(mails) do
      if m.subject:find(text, 1, true) then
        found = m
      end
    end
    return found, mails
  end

  setup(function()
    maildev, mail_ports = start("bash " .. q(absolute(root .. "/tests/fixtures/maildev.sh")))
    record = support.tmpdir() .. "/hooks.ndjson"
    receiver, hook_port = start("python3 " .. q(absolute(root .. "/tests/fixtures/webhook_receiver.py")) .. " "
      .. q(record) .. " --secret hook-s3cret-value")
    hook_port = hook_port.PORT
  end)
  teardown(function()
    if maildev then
      maildev:close()
    end
    if receiver then
      receiver:close()
    end
  end)

  it("a failing stage sends a signed webhook and an e-mail, and no secret goes out", function()
    local dir = support.git_init()
    local token = "tok-ENGINE-api-0123456789"
    local out, code = run(dir, q(ALERTS), {
      ENGINE_FAIL = "1",
      ENGINE_API_TOKEN = token,
      ENGINE_HOOK_SECRET = "hook-s3cret-value",
      ENGINE_HOOK_URL = "http://127.0.0.1:" .. hook_port .. "/cdp",
      ENGINE_SMTP_URL = "smtp://127.0.0.1:" .. mail_ports.SMTP,
    })
    assert.are.equal(1, code, out)
    assert.matches("stage deploy failed", out, 1, true)

    local hooks = {}
    for l in (support.read(record) or ""):gmatch("[^\n]+") do
      hooks[#hooks + 1] = cjson.decode(l)
    end
    local events = {}
    for _, h in ipairs(hooks) do
      assert.is_true(h.signature_ok, "signature did not verify: " .. h.body)
      assert.are.equal("/cdp", h.path)
      assert.are.equal("application/json", h.headers["content-type"])
      events[#events + 1] = h.event
    end
    assert.are.same({ "run.started", "stage.failed", "run.failed" }, events)
    -- the same delivery sent again is a replay, which the signed timestamp lets a receiver refuse
    local h = hooks[1]
    local replay = support.sh(("curl -s -o /dev/null -w '%%{http_code}' -X POST -H %s -H %s -H %s --data-binary %s %s")
      :format(q("X-Cdp-Timestamp: " .. h.headers["x-cdp-timestamp"]), q("X-Cdp-Signature: " .. h.headers["x-cdp-signature"]),
        q("Content-Type: application/json"), q(h.body), q("http://127.0.0.1:" .. hook_port .. "/cdp")))
    assert.are.equal("401", replay)
    assert.matches("^sha256=%x+$", h.headers["x-cdp-signature"])
    local failed = cjson.decode((hooks[2].body))
    assert.are.equal("deploy", failed.stage)
    assert.are.equal("EDEPLOY", failed.error.code)
    assert.matches("deploy refused by the cluster (token ***)", failed.error.msg, 1, true)

    local mail, mails = mail_about("stage deploy failed")
    assert.is_not_nil(mail, "MailDev got no mail about the failed stage")
    assert.matches("^%[cdp%] alerting ", mail.subject)
    assert.are.equal("ops@example.invalid", mail.to[1].address)
    assert.matches('"code": "EDEPLOY"', mail.text, 1, true)

    -- the token went nowhere: not the output, the journal, logs, events, webhooks or mail
    assert.is_nil(out:find(token, 1, true))
    assert.is_nil(support.read(record):find(token, 1, true))
    assert.is_nil(support.read(record):find("hook-s3cret-value", 1, true))
    assert.is_nil(json.encode(mails):find(token, 1, true))
    local _, grep = support.sh("grep -r -F " .. q(token) .. " " .. q(dir .. "/.cdp"), { may_fail = true })
    assert.are.equal(1, grep)
    assert.matches('"stage":"deploy"', support.read(dir .. "/.cdp/events.jsonl"), 1, true)
    for _, e in ipairs(journal_of(dir)) do
      assert.are_not.equal("delivery.failed", e.event, "unexpected failed delivery: " .. json.encode(e))
    end
  end)

  it("an e-mail alert on a failure of several lines goes out on one subject line, and the run ends as it should", function()
    local dir = support.git_init()
    local out, code = run(dir, q(ALERTS), {
      ENGINE_FAIL = "lines",
      ENGINE_HOOK_SECRET = "hook-s3cret-value",
      ENGINE_HOOK_URL = "http://127.0.0.1:" .. hook_port .. "/cdp",
      ENGINE_SMTP_URL = "smtp://127.0.0.1:" .. mail_ports.SMTP,
    })
    assert.are.equal(1, code, out) -- a failed run, not a crash (2) with a traceback
    assert.is_nil(out:find("stack traceback", 1, true), out)
    local events = {}
    for _, e in ipairs(journal_of(dir)) do
      events[#events + 1] = e.event
      assert.are_not.equal("delivery.failed", e.event, "a delivery failed: " .. json.encode(e))
    end
    assert.are.equal("run.failed", events[#events])
    local mail = mail_about("node a: full")
    assert.is_not_nil(mail, "no mail about the failure of several lines")
    assert.matches("stage deploy failed: deploy refused by the cluster: node a: full node b: gone", mail.subject, 1, true)
    assert.matches("node a: full", mail.text, 1, true)
  end)

  it("with the endpoints down the pipeline still succeeds and the journal records the failed deliveries", function()
    local dir = support.git_init()
    local dead = closed_port()
    local out, code = run(dir, q(ALERTS), {
      ENGINE_HOOK_SECRET = "hook-s3cret-value",
      ENGINE_HOOK_URL = "http://127.0.0.1:" .. dead .. "/cdp",
      ENGINE_SMTP_URL = "smtp://127.0.0.1:" .. dead,
    })
    assert.are.equal(0, code, out)
    assert.matches("notification(s) could not be delivered", out, 1, true)
    local failures = {}
    local finished
    for _, e in ipairs(journal_of(dir)) do
      if e.event == "delivery.failed" then
        failures[#failures + 1] = e
      elseif e.event == "run.finished" then
        finished = true
      end
    end
    assert.is_true(finished)
    -- run.started and run.finished went to the webhook; both failed, after retrying
    assert.are.equal(2, #failures)
    table.sort(failures, function(a, b) return a.about < b.about end)
    assert.are.same({ "run.finished", "run.started" }, { failures[1].about, failures[2].about })
    for _, f in ipairs(failures) do
      assert.are.equal("hook", f.sink)
      assert.are.equal("ECONNREFUSED", f.code)
      assert.are.equal(2, f.attempts)
    end
    local st = cjson.decode((run(dir, "status --json")))
    assert.are.equal("done", st.state)
  end)

  it("a webhook answering 500 is retried, recorded, and does not fail the run", function()
    local rec = support.tmpdir() .. "/500.ndjson"
    local server, ports = start("python3 " .. q(absolute(root .. "/tests/fixtures/webhook_receiver.py")) .. " "
      .. q(rec) .. " --secret x --status 500")
    local dir = support.git_init()
    local out, code = run(dir, q(ALERTS), {
      ENGINE_HOOK_SECRET = "hook-s3cret-value",
      ENGINE_HOOK_URL = "http://127.0.0.1:" .. ports.PORT .. "/cdp",
      ENGINE_SMTP_URL = "smtp://127.0.0.1:" .. closed_port(),
    })
    server:close()
    assert.are.equal(0, code, out)
    local n = 0
    for _ in support.read(rec):gmatch("[^\n]+") do
      n = n + 1
    end
    assert.are.equal(4, n, "two events, each tried twice")
    local failures = 0
    for _, e in ipairs(journal_of(dir)) do
      if e.event == "delivery.failed" then
        failures = failures + 1
        assert.are.equal(500, e.status)
      end
    end
    assert.are.equal(2, failures)
  end)
end)
