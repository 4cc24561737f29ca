-- Test: run the workspace's tests on the fork and record a summary. It never changes
-- the fork: builds go to the run folder's target/, and a Cargo.lock that cargo makes
-- for a workspace that does not commit one is removed again.
--
-- Settings: test_commands (a list of argument vectors; default cargo test), test_timeout
-- (seconds per command), test_clippy and test_fmt (add those checks).
local fs = require "cdp.fs"
local proc = require "cdp.proc"
local release = require "cdp.release"
local settings = require "cdp.settings"

local test = {
  name = "test",
  needs = { "fork" },
  gives = { "tests" },
  modifies_fork = false,
  settings = release.settings {
    "cargo_offline",
    test_commands = { type = "list", items = "command", default = { "cargo test --workspace" },
      doc = "the commands Test runs in the fork, each split into words and run without a shell" },
    test_timeout = { type = "number", default = 1800, doc = "seconds each test command may take" },
    test_clippy = { type = "boolean", default = false, doc = "also run cargo clippy --workspace -- -D warnings" },
    test_fmt = { type = "boolean", default = false, doc = "also run cargo fmt --all -- --check" },
  },
}

function test.commands(ctx)
  local list = {}
  for _, argv in ipairs(settings.commands(release.setting(ctx, "test_commands"))) do
    list[#list + 1] = argv
  end
  if release.setting(ctx, "test_fmt") then
    list[#list + 1] = { "cargo", "fmt", "--all", "--", "--check" }
  end
  if release.setting(ctx, "test_clippy") then
    list[#list + 1] = { "cargo", "clippy", "--workspace", "--", "-D", "warnings" }
  end
  return list
end

-- cargo's closing lines ("test result: ok. 3 passed; 0 failed; ...") added up, a
-- line at a time: captured output keeps only its tail, and each line is seen here.
local function tally()
  local t = { passed = 0, failed = 0, ignored = 0 }
  function t.line(line)
    local p, f, i = line:match("test result: %a+%. (%d+) passed; (%d+) failed; (%d+) ignored")
    if p then
      t.passed, t.failed, t.ignored = t.passed + tonumber(p), t.failed + tonumber(f), t.ignored + tonumber(i)
    end
  end
  return t
end

function test.run(ctx, inputs)
  local fork = inputs.fork
  local repo = release.open_fork(fork)
  local before = release.snapshot(repo)
  local had_lock = fs.exists(fork.path .. "/Cargo.lock")
  local timeout = release.setting(ctx, "test_timeout")
  local results = {}
  local failure
  for _, argv in ipairs(test.commands(ctx)) do
    local shown = table.concat(argv, " ")
    ctx.log("$ " .. shown)
    local count = tally()
    local res, err = proc.run {
      argv = argv, cwd = fork.path, timeout = timeout,
      env = release.cargo_env(ctx, { CARGO_TARGET_DIR = ctx.run_dir .. "/target", CARGO_TERM_COLOR = "never" }),
      on_line = function(_, line) count.line(line) ctx.log(line) end,
    }
    if not res then
      failure = ("cannot run %s: %s"):format(shown, err)
      results[#results + 1] = { command = shown, error = err }
      break
    end
    local passed, failed, ignored = count.passed, count.failed, count.ignored
    results[#results + 1] = { command = shown, code = res.code or false, signal = res.signame or false,
      timed_out = res.timed_out, seconds = math.floor(res.duration * 10 + 0.5) / 10,
      passed = passed, failed = failed, ignored = ignored }
    if res.timed_out then
      failure = ("%s did not finish within %ds (test_timeout)"):format(shown, timeout)
      break
    elseif res.code ~= 0 then
      failure = ("%s failed (%s); %d tests failed — the log tail above shows where")
        :format(shown, res.code and ("exit code " .. res.code) or res.signame, failed)
      if failed == 0 and passed == 0 then
        -- Nothing ran: cargo could not build, and may say why in a way we can add to.
        failure = release.cargo_failure(ctx, failure, res)
      end
      break
    end
  end
  if not had_lock and fs.exists(fork.path .. "/Cargo.lock") then
    fs.remove(fork.path .. "/Cargo.lock")
  end
  local same, how = release.same_snapshot(before, release.snapshot(repo))
  repo:close()
  if not same then
    error("the tests changed the release fork, which Test must never do: " .. how, 0)
  end
  if failure then
    error(failure, 0)
  end
  return { tests = { commit = fork.commit, commands = results } }
end

return test
