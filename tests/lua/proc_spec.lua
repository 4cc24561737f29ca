-- cdp.proc against real processes: sh, sleep, and cdp itself.
local proc = require "cdp.proc"
local fs = require "cdp.fs"
local support = require "tests.lua.support"
local q = support.quote

local function sh(script, opts)
  opts = opts or {}
  opts.argv = { "sh", "-c", script }
  return proc.run(opts)
end

-- Running, as opposed to gone or a zombie nobody has reaped yet (PID 1 in
-- a container may be slow to reap the orphans these tests make).
local function alive(pid)
  local f = io.open("/proc/" .. tostring(pid) .. "/stat", "r")
  if not f then
    return false
  end
  local stat = f:read("a")
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

-- Run `cdp -e CODE` in the background with output to a file; returns pid, out.
local function spawn_cdp(code, dir)
  local out = dir .. "/out"
  local pid = support.sh(q(support.cdp()) .. " -e " .. q(code)
    .. " </dev/null >" .. q(out) .. " 2>&1 & echo $!"):gsub("%s+$", "")
  return pid, out
end

local function wait_for(pred, seconds)
  local deadline = proc.clock() + seconds
  while not pred() do
    if proc.clock() > deadline then
      return false
    end
    proc.sleep(0.02)
  end
  return true
end

describe("cdp.proc", function()
  describe("run", function()
    it("reports exit codes and captures both streams", function()
      local r = assert(sh("printf out; printf err >&2; exit 3"))
      assert.are.equal(3, r.code)
      assert.is_nil(r.signal)
      assert.is_nil(r.signame)
      assert.are.equal("out", r.stdout)
      assert.are.equal("err", r.stderr)
      assert.is_false(r.timed_out)
      assert.is_true(r.duration >= 0 and r.duration < 10)
      assert.are.equal(0, assert(proc.run { argv = { "true" } }).code)
    end)

    it("passes arguments without a shell", function()
      local r = assert(proc.run { argv = { "printf", "[%s]", "a b", "$HOME", "'q'", "" } })
      assert.are.equal("[a b][$HOME]['q'][]", r.stdout)
    end)

    it("reports a child killed by a signal", function()
      local r = assert(sh("kill -TERM $$; sleep 5"))
      assert.is_nil(r.code)
      assert.are.equal(15, r.signal)
      assert.are.equal("SIGTERM", r.signame)
      r = assert(sh("kill -KILL $$"))
      assert.are.equal("SIGKILL", r.signame)
    end)

    it("feeds stdin and gives /dev/null without it", function()
      local input = "line one\n\0binary\n" .. ("z"):rep(300000)
      local r = assert(proc.run { argv = { "cat" }, stdin = input })
      assert.are.equal(input, r.stdout)
      r = assert(proc.run { argv = { "cat" } })
      assert.are.equal("", r.stdout)
      assert.are.equal(0, r.code)
      -- a child that never reads its stdin does not hang or kill us
      r = assert(sh("exit 0", { stdin = ("x"):rep(1000000) }))
      assert.are.equal(0, r.code)
    end)

    it("captures several MB on both streams without deadlock", function()
      local r = assert(sh("head -c 4000000 /dev/zero | tr '\\0' o & head -c 3000000 /dev/zero | tr '\\0' e >&2; wait",
        { timeout = 60 }))
      assert.are.equal(0, r.code)
      assert.are.equal(4000000, #r.stdout)
      assert.are.equal(3000000, #r.stderr)
      assert.is_nil(r.stdout:find("[^o]"))
      assert.is_nil(r.stderr:find("[^e]"))
    end)

    it("sets, unsets and clears the environment", function()
      local script = 'printf "%s|%s|%s" "${CDP_A-unset}" "${HOME-unset}" "${CDP_N-unset}"'
      local r = assert(sh(script, { env = { CDP_A = "v a", HOME = false, CDP_N = 5 } }))
      assert.are.equal("v a|unset|5", r.stdout)
      r = assert(sh(script))
      assert.are.equal("unset|" .. os.getenv("HOME") .. "|unset", r.stdout)
      r = assert(proc.run { argv = { "/usr/bin/env" }, env_clear = true, env = { ONLY = "1" } })
      assert.are.equal("ONLY=1\n", r.stdout)
      assert.has_error(function() proc.run { argv = { "true" }, env = { A = {} } } end)
      assert.has_error(function() proc.run { argv = { "true" }, env = { ["A=B"] = "x" } } end)
    end)

    it("runs in cwd, and names a missing cwd", function()
      local dir = support.tmpdir()
      local r = assert(proc.run { argv = { "pwd", "-P" }, cwd = dir })
      assert.are.equal(fs.realpath(dir) .. "\n", r.stdout)
      local ok, msg, code = proc.run { argv = { "pwd" }, cwd = dir .. "/none" }
      assert.is_nil(ok)
      assert.are.equal("ENOENT", code)
      assert.are.equal("ENOENT: no such file or directory: " .. dir .. "/none", msg)
    end)

    it("returns ENOENT for a program that does not exist", function()
      local ok, msg, code = proc.run { argv = { "cdp-no-such-program", "x" } }
      assert.is_nil(ok)
      assert.are.equal("ENOENT", code)
      assert.are.equal("ENOENT: no such file or directory: cdp-no-such-program", msg)
      local dir = support.tmpdir()
      support.write(dir .. "/noexec", "#!/bin/sh\n")
      ok, msg, code = proc.run { argv = { dir .. "/noexec" } }
      assert.is_nil(ok)
      assert.are.equal("EACCES", code)
      assert.is_truthy(msg:find(dir .. "/noexec", 1, true))
    end)

    it("raises on misuse", function()
      assert.has_error(function() proc.run() end)
      assert.has_error(function() proc.run {} end)
      assert.has_error(function() proc.run { argv = {} } end)
      assert.has_error(function() proc.run { argv = { "true", 1 } } end)
      assert.has_error(function() proc.run { argv = { "true" }, timeout = -1 } end)
      assert.has_error(function() proc.run { argv = { "true" }, stdin = 5 } end)
      assert.has_error(function() proc.run { argv = { "true" }, on_line = "print" } end)
    end)

    it("on timeout kills the whole group, grandchildren included", function()
      local dir = support.tmpdir()
      local t0 = proc.clock()
      local r = assert(sh("sleep 100 & echo $! > " .. q(dir .. "/pid") .. "; wait", { timeout = 0.5 }))
      local took = proc.clock() - t0
      assert.is_true(r.timed_out)
      assert.are.equal("SIGTERM", r.signame)
      assert.is_true(took >= 0.5 and took < 4, "took " .. took)
      local pid = assert(fs.read(dir .. "/pid")):gsub("%s+$", "")
      assert.is_true(wait_for(function() return not alive(pid) end, 3), "grandchild still alive")
    end)

    it("sends SIGKILL to a group that ignores SIGTERM", function()
      local t0 = proc.clock()
      local r = assert(sh("trap '' TERM; echo ready; sleep 3; sleep 3; exit 0", { timeout = 0.3 }))
      local took = proc.clock() - t0
      assert.is_true(r.timed_out)
      assert.are.equal("SIGKILL", r.signame)
      assert.are.equal("ready\n", r.stdout)
      assert.is_true(took >= 2 and took < 5, "took " .. took)
    end)

    it("returns when the child exits even if a background process holds its output", function()
      local t0 = proc.clock()
      local r = assert(sh("sleep 5 & echo started"))
      assert.are.equal(0, r.code)
      assert.are.equal("started\n", r.stdout)
      assert.is_true(proc.clock() - t0 < 3)
    end)

    it("hands on_line every line in order and still captures", function()
      local seen = {}
      local r = assert(sh("for i in 1 2 3; do echo out$i; echo err$i >&2; done; printf tail", {
        on_line = function(stream, line)
          seen[#seen + 1] = stream .. ":" .. line
        end,
      }))
      assert.are.equal("out1\nout2\nout3\ntail", r.stdout)
      local out, err = {}, {}
      for _, s in ipairs(seen) do
        local stream, line = s:match("^(%w+):(.*)$")
        table.insert(stream == "stdout" and out or err, line)
      end
      assert.are.same({ "out1", "out2", "out3", "tail" }, out)
      assert.are.same({ "err1", "err2", "err3" }, err)
    end)

    it("calls on_line as lines arrive, not at the end", function()
      local at = {}
      local t0 = proc.clock()
      assert(sh("echo first; sleep 1; echo second", {
        on_line = function(_, line) at[line] = proc.clock() - t0 end,
      }))
      assert.is_true(at.first < 0.8, "first at " .. at.first)
      assert.is_true(at.second >= 0.9)
    end)

    it("kills and reaps the child when on_line raises, then re-raises", function()
      local dir = support.tmpdir()
      local pidfile = dir .. "/pid"
      local ok, err = pcall(proc.run, {
        argv = { "sh", "-c", "echo $$ > " .. q(pidfile) .. "; echo boom; exec sleep 100" },
        on_line = function(_, line) error("on_line failed at " .. line) end,
      })
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("on_line failed at boom", 1, true))
      local pid = assert(fs.read(pidfile)):gsub("%s+$", "")
      -- reaped: not even a zombie is left
      assert.is_false(alive(pid))
      local ps = support.sh("ps -o pid=,stat= --ppid " .. proc.pid(), { may_fail = true })
      assert.is_nil(ps:find("Z"), ps)
      -- error objects that are not strings pass through untouched
      local marker = {}
      local ok2, err2 = pcall(proc.run, {
        argv = { "echo", "x" },
        on_line = function() error(marker) end,
      })
      assert.is_false(ok2)
      assert.are.equal(marker, err2)
    end)

    it("gives a child no descriptor above 2: no socket, no file of cdp's", function()
      local http = require "cdp.http"
      local server, ports = support.start_fixture("python3 tests/fixtures/http_server.py")
      -- A live keep-alive connection to a server, and a file Lua holds open (no O_CLOEXEC).
      assert.are.equal(200, assert(http.request { url = ("http://127.0.0.1:%d/echo"):format(ports.PORT) }).status)
      local dir = support.tmpdir()
      local held <close> = assert(io.open(dir .. "/held", "w"))
      -- `[ -e ]` opens nothing, so the shell's own descriptors do not show.
      local r = assert(sh('n=0; while [ $n -lt 1024 ]; do [ -e /proc/$$/fd/$n ] && echo "$n $(readlink /proc/$$/fd/$n)"; '
        .. 'n=$((n+1)); done'))
      server:close()
      local fds = {}
      for fd in r.stdout:gmatch("(%d+) [^\n]*") do
        fds[#fds + 1] = fd
      end
      assert.are.same({ "0", "1", "2" }, fds, r.stdout)
    end)

    it("kills its children and their children when cdp is killed", function()
      local dir = support.tmpdir()
      local pids = dir .. "/pids"
      -- In a session of its own, so that killing its process group kills only cdp.
      local code = ("require('cdp.proc').run { argv = { 'sh', '-c', %q } }")
        :format("sleep 300 & echo $! > " .. pids .. ".tmp; echo $$ >> " .. pids .. ".tmp; mv "
          .. pids .. ".tmp " .. pids .. "; wait")
      local pid = support.sh("setsid " .. q(support.cdp()) .. " -e " .. q(code) .. " </dev/null >"
        .. q(dir .. "/out") .. " 2>&1 & echo $!"):gsub("%s+$", "")
      assert.is_true(wait_for(function() return fs.exists(pids) end, 10), "the child did not start")
      local child, grandchild = nil, nil
      for line in fs.read(pids):gmatch("%d+") do
        if grandchild then child = line else grandchild = line end
      end
      assert.is_true(alive(child) and alive(grandchild))
      -- SIGKILL to cdp's whole process group, as a CI runner cancelling a job does.
      assert.are.equal(pid, (support.sh("ps -o pgid= " .. pid):gsub("%s", "")))
      support.sh("kill -9 -" .. pid)
      assert.is_true(wait_for(function() return not alive(child) end, 5), "the child outlived cdp")
      assert.is_true(wait_for(function() return not alive(grandchild) end, 5), "the grandchild outlived cdp")
    end)

    it("keeps the tail of output beyond max_output, and says how much went", function()
      local r = assert(sh("i=0; while [ $i -lt 3000 ]; do printf '%0999d\\n' $i; i=$((i+1)); done; echo last",
        { max_output = 100000 }))
      assert.are.equal(100000, #r.stdout)
      assert.matches("\nlast\n$", r.stdout)
      assert.are.equal(3000 * 1000 + 5 - 100000, r.dropped.stdout)
      assert.are.equal(0, r.dropped.stderr)
      local lines = 0
      local all = assert(sh("i=0; while [ $i -lt 3000 ]; do printf '%0999d\\n' $i; i=$((i+1)); done",
        { max_output = 100000, on_line = function() lines = lines + 1 end }))
      assert.are.equal(3000, lines) -- on_line still sees every line
      assert.are.equal(100000, #all.stdout)
      assert.is_nil(assert(sh("echo small")).dropped)
      assert.has_error(function() sh("true", { max_output = -1 }) end)
    end)

    it("gives children only the allow-listed environment under child_env", function()
      local script = [[
        local proc = require "cdp.proc"
        local function env(opts)
          opts = opts or {}
          opts.argv = { "env" }
          local out = {}
          for k in assert(proc.run(opts)).stdout:gmatch("([^=\n]+)=") do out[#out + 1] = k end
          table.sort(out)
          return table.concat(out, " ")
        end
        assert(proc.child_env { allow = { "KEEP_ME", "KEEP_*" }, set = { CDP_RUN = "r1" } } == nil)
        print(env())
        print(env { env = { EXTRA = "x" } })
        print(env { env = { ONLY = "y" }, env_clear = true })
        local previous = proc.child_env(nil)
        assert(previous.allow[2] == "KEEP_*" and previous.set.CDP_RUN == "r1")
        print(env():find("DROP_ME", 1, true) ~= nil)
      ]]
      local out = support.sh(("env KEEP_ME=1 KEEP_TOO=2 DROP_ME=3 %s -e %s"):format(q(support.cdp()), q(script)))
      assert.are.equal("CDP_RUN KEEP_ME KEEP_TOO\nCDP_RUN EXTRA KEEP_ME KEEP_TOO\nONLY\ntrue\n", out)
      assert.has_error(function() proc.child_env { allow = { 7 } } end)
      assert.has_error(function() proc.child_env { allow = {}, set = { ["A=B"] = "x" } } end)
    end)

    it("lets the child use our stdout with inherit", function()
      local dir = support.tmpdir()
      local code = "local r = cdp.proc.run{argv={'sh','-c','echo to-stdout; echo to-stderr >&2'}, inherit=true}\n"
        .. "io.write(('captured=[%s][%s]\\n'):format(r.stdout, r.stderr))"
      local out = support.sh(q(support.cdp()) .. " -e " .. q(code) .. " 2>" .. q(dir .. "/err"))
      assert.are.equal("to-stdout\ncaptured=[][]\n", out)
      assert.are.equal("to-stderr\n", fs.read(dir .. "/err"))
    end)
  end)

  describe("environment and time", function()
    it("getenv and environ read the environment", function()
      assert.are.equal(os.getenv("HOME"), proc.getenv("HOME"))
      assert.is_nil(proc.getenv("CDP_SURELY_UNSET_VARIABLE"))
      local env = proc.environ()
      assert.are.equal(os.getenv("PATH"), env.PATH)
    end)

    it("take_env keeps a secret in memory only: no child reads it from /proc/$PPID/environ", function()
      -- cdp itself takes GITHUB_TOKEN (named like a secret) when it starts, and the
      -- script takes HOOK_KEY (named like anything) as a setting would.
      local script = [[
        local proc = require "cdp.proc"
        assert(proc.take_env("HOOK_KEY") == "hook-value-7f2a")
        assert(proc.take_env("HOOK_KEY") == "hook-value-7f2a", "a second call returns the kept value")
        assert(os.getenv("GITHUB_TOKEN") == "gh-value-91c3", "os.getenv still sees it")
        assert(proc.getenv("HOOK_KEY") == "hook-value-7f2a")
        assert(proc.environ().GITHUB_TOKEN == nil and proc.environ().HOOK_KEY == nil)
        assert(proc.taken().GITHUB_TOKEN == "gh-value-91c3")
        assert(proc.take_env("CDP_SURELY_UNSET_VARIABLE") == nil)
        local res = assert(proc.run { argv = { "sh", "-c", 'tr "\\0" "\\n" </proc/$PPID/environ; echo ==; env' } })
        io.write(res.stdout)
      ]]
      local out = support.sh(("GITHUB_TOKEN=gh-value-91c3 HOOK_KEY=hook-value-7f2a KEEP_ME=plain-value %s -e %s")
        :format(q(support.cdp()), q(script)))
      local parent, child = out:match("^(.*)==\n(.*)$")
      assert.truthy(parent, out)
      assert.is_nil(out:find("gh-value-91c3", 1, true), out)
      assert.is_nil(out:find("hook-value-7f2a", 1, true), out)
      assert.truthy(parent:find("KEEP_ME=plain-value", 1, true), "the rest of the environment is as it was")
      assert.truthy(child:find("KEEP_ME=plain-value", 1, true))
      assert.is_nil(child:find("GITHUB_TOKEN", 1, true))
      assert.has_error(function() proc.take_env("A=B") end)
    end)

    it("cdp is not dumpable and makes no core files", function()
      assert.is_false(proc.dumpable())
      local limits = assert(proc.run { argv = { "sh", "-c", "cat /proc/$PPID/limits" } }).stdout
      assert.matches("Max core file size%s+0%s+0", limits)
    end)

    it("isatty answers for 0, 1, 2 only", function()
      assert.is_boolean(proc.isatty(1))
      local out = support.sh(q(support.cdp()) .. " -e 'print(cdp.proc.isatty(1))' | cat")
      assert.are.equal("false\n", out)
      assert.has_error(function() proc.isatty(7) end)
    end)

    it("clock, time and sleep", function()
      local c0, t0 = proc.clock(), proc.time()
      proc.sleep(0.2)
      local dc, dt = proc.clock() - c0, proc.time() - t0
      assert.is_true(dc >= 0.19 and dc < 2, dc)
      assert.is_true(dt > 0.1 and dt < 2, dt)
      assert.is_true(math.abs(proc.time() - os.time()) < 2)
      assert.has_error(function() proc.sleep(-1) end)
    end)

    it("pid, hostname and user name this process", function()
      assert.are.equal(tonumber((support.sh("echo $PPID"):gsub("%s+$", ""))), proc.pid())
      assert.are.equal((support.sh("hostname"):gsub("%s+$", "")), proc.hostname())
      assert.are.equal((support.sh("id -un"):gsub("%s+$", "")), proc.user())
    end)

    it("kill sends signals by name or number and fails on a missing pid", function()
      local pid = support.sh("sleep 30 >/dev/null 2>&1 & echo $!"):gsub("%s+$", "")
      pid = tonumber(pid)
      assert.is_true(proc.kill(pid, 0))
      assert.is_true(proc.kill(pid, "KILL"))
      assert.is_true(wait_for(function() return not alive(pid) end, 3))
      -- a pid its parent has already reaped
      local gone = tonumber((support.sh("true & p=$!; wait; echo $p"):gsub("%s+$", "")))
      local ok, msg, code = proc.kill(gone, "SIGTERM")
      assert.is_nil(ok)
      assert.are.equal("ESRCH", code)
      assert.are.equal("ESRCH: no such process: pid " .. gone, msg)
      assert.has_error(function() proc.kill(pid, "NOPE") end)
      assert.has_error(function() proc.kill("x") end)
    end)
  end)

  describe("interruption", function()
    it("reports SIGINT during proc.run as EINTR and kills the group", function()
      local dir = support.tmpdir()
      local code = ([[
        local proc = cdp.proc
        proc.trap_signals()
        proc.trap_signals()
        local ok, msg, code = proc.run {
          argv = { "sh", "-c", "echo $$ > %s; echo running; exec sleep 30" },
          on_line = function(_, line) cdp.fs.write(%q, line) end,
        }
        print(ok, msg, code, proc.interrupted())
        proc.clear_interrupt()
        print("cleared", proc.interrupted())
      ]]):format(q(dir .. "/child"), dir .. "/ready")
      local t0 = proc.clock()
      local pid, out = spawn_cdp(code, dir)
      assert.is_true(wait_for(function() return fs.exists(dir .. "/ready") end, 20), "never started")
      assert.is_true(proc.kill(tonumber(pid), "INT"))
      assert.is_true(wait_for(function() return not alive(pid) end, 5), "did not exit")
      assert.is_true(proc.clock() - t0 < 15)
      local text = fs.read(out)
      local cmd = "sh -c echo $$ > " .. q(dir .. "/child") .. "; echo running; exec sleep 30"
      assert.are.equal("nil\tEINTR: interrupted by SIGINT: " .. cmd .. "\tEINTR\tSIGINT\ncleared\tnil\n", text)
      local child = fs.read(dir .. "/child"):gsub("%s+$", "")
      assert.is_false(alive(child))
    end)

    it("counts a signal that stops on_line as an interrupt of the run", function()
      local dir = support.tmpdir()
      local code = ([[
        cdp.proc.trap_signals()
        local calls = 0
        local ok, msg, code = cdp.proc.run {
          argv = { "sh", "-c", "echo one; echo two; exec sleep 30" },
          on_line = function(_, line)
            calls = calls + 1
            cdp.fs.write(%q, line)
            while true do end
          end,
        }
        print(ok, code, calls)
      ]]):format(dir .. "/ready")
      local pid, out = spawn_cdp(code, dir)
      assert.is_true(wait_for(function() return fs.exists(dir .. "/ready") end, 20), "never started")
      assert.is_true(proc.kill(tonumber(pid), "TERM"))
      assert.is_true(wait_for(function() return not alive(pid) end, 10), "did not exit")
      assert.are.equal("nil\tEINTR\t1\n", fs.read(out))
    end)

    it("stops running Lua code with an error, like lua.c", function()
      local code = [[
        local proc = cdp.proc
        print(proc.interrupted())
        proc.trap_signals()
        local ok, err = pcall(function()
          proc.kill(proc.pid(), "TERM")
          while true do end
        end)
        print(ok, err, proc.interrupted())
        local r = proc.run { argv = { "echo", "after" } }
        print(r and r.stdout or "nil")
        proc.clear_interrupt()
        print(proc.interrupted())
      ]]
      local out = support.sh("timeout 20 " .. q(support.cdp()) .. " -e " .. q(code))
      assert.is_truthy(out:find("^nil\nfalse\t[^\n]*interrupted by SIGTERM\tSIGTERM\nafter\n\nnil\n$"), out)
    end)

    it("cuts proc.sleep short", function()
      local dir = support.tmpdir()
      local code = ([[
        cdp.proc.trap_signals()
        local t0 = cdp.proc.clock()
        local ok, err = pcall(function()
          cdp.fs.write(%q, "")
          cdp.proc.sleep(30)
        end)
        print(ok, err, cdp.proc.clock() - t0 < 20)
      ]]):format(dir .. "/ready")
      local pid, out = spawn_cdp(code, dir)
      assert.is_true(wait_for(function() return fs.exists(dir .. "/ready") end, 20), "never started")
      proc.kill(tonumber(pid), "INT")
      assert.is_true(wait_for(function() return not alive(pid) end, 10), "did not exit")
      assert.is_truthy(fs.read(out):find("^false\t[^\n]*interrupted by SIGINT\ttrue\n$"), fs.read(out))
    end)
  end)
  describe("spawn", function()
    it("runs a child that goes on while cdp does other things, its output in a file", function()
      local dir = support.tmpdir()
      local child = assert(proc.spawn { argv = { "sh", "-c", "echo out; echo err >&2; echo $FOO; exit 3" },
        cwd = dir, output = dir .. "/log", env = { FOO = "bar" } })
      assert.is_true(child:pid() > 0)
      local res = assert(child:wait(20))
      assert.are.equal(3, res.code)
      assert.are.equal("out\nerr\nbar\n", fs.read(dir .. "/log"))
      -- reaped once, the same answer again
      assert.are.equal(3, child:wait(0).code)
      assert.is_false(child:kill("TERM"))
    end)

    it("waits with a timeout, and kills on request", function()
      local child = assert(proc.spawn { argv = { "sleep", "30" } })
      local none, msg, code = child:wait(0.1)
      assert.is_nil(none)
      assert.are.equal("ETIMEDOUT", code)
      assert.matches("still running", msg, 1, true)
      assert.is_true(child:kill("TERM"))
      local res = assert(child:wait(10))
      assert.are.equal("SIGTERM", res.signame)
    end)

    it("captures output in files that have no name on disk, and ends the child on close", function()
      -- What the child writes to is a file without a name ("(deleted)" in /proc).
      local child = assert(proc.spawn { argv = { "sh", "-c", "echo out; echo err >&2; readlink /proc/self/fd/1; "
        .. "readlink /proc/self/fd/2 >&2; exit 4" }, capture = true })
      local res = assert(child:wait())
      assert.are.equal(4, res.code)
      assert.matches("^out\n[^\n]*%(deleted%)\n$", res.stdout)
      assert.matches("^err\n[^\n]*%(deleted%)\n$", res.stderr)
      assert.is_false(res.timed_out)
      child:close()
      child:close() -- idempotent

      -- A child still running when its handle is closed is killed with its
      -- group and reaped: no process and no zombie is left.
      local sleeper = assert(proc.spawn { argv = { "sh", "-c", "sleep 30 & echo $!; wait" }, capture = true })
      local pid = sleeper:pid()
      assert.is_true(wait_for(function() return proc.kill(pid, 0) ~= nil end, 5))
      sleeper:close()
      assert.is_nil(proc.kill(pid, 0)) -- reaped, so not even a zombie answers
    end)

    it("ends a captured child at its timeout, as proc.run does", function()
      local child = assert(proc.spawn { argv = { "sh", "-c", "echo started >&2; exec sleep 30" }, capture = true,
        timeout = 0.2 })
      local res = assert(child:wait())
      assert.is_true(res.timed_out)
      assert.are.equal("SIGTERM", res.signame)
      assert.are.equal("started\n", res.stderr)
      child:close()
    end)

    it("reports a program that is not there, and a folder that is not there", function()
      local none, msg, code = proc.spawn { argv = { "no-such-program-cdp" } }
      assert.is_nil(none)
      assert.are.equal("ENOENT", code)
      assert.matches("no-such-program-cdp", msg, 1, true)
      local _, _, code2 = proc.spawn { argv = { "true" }, cwd = "/no/such/dir" }
      assert.are.equal("ENOENT", code2)
      local _, msg3, code3 = proc.spawn { argv = { "no-such-program-cdp" }, capture = true }
      assert.are.equal("ENOENT", code3)
      assert.matches("no-such-program-cdp", msg3, 1, true)
      assert.has_error(function() proc.spawn { argv = {} } end)
    end)
  end)
end)
