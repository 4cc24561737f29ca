-- What the Tag, Merge and Publish specs share: the demo workspace with a bare origin,
-- a Release Fork cloned from it, a packaged commit on cdp/release/<run> (the version
-- bumps and changelogs Version and Package would make), real .crate files built by
-- cargo from it, and the fork, plan and packaged artifacts those stages consume.
local support = require "tests.lua.support"
local fs = require "cdp.fs"
local json = require "cdp.json"
local http = require "cdp.http"

local q = support.quote
local rs = {}

-- The demo plan (tests/fixtures/workspace_demo.sh), in plan order.
rs.PLAN = {
  { name = "demo-cli", dir = "crates/demo-cli", current = "0.1.0", next = "0.2.0", bump = "minor" },
  { name = "demo-core", dir = "crates/demo-core", current = "0.1.0", next = "0.1.1", bump = "patch" },
  { name = "demo-util", dir = "crates/demo-util", current = "1.0.0", next = "1.0.1", bump = "patch" },
}

local function bump_manifest(path, from, to)
  local text = assert(support.read(path))
  local edited, n = text:gsub('\nversion = "' .. from:gsub("%.", "%%.") .. '"', '\nversion = "' .. to .. '"', 1)
  assert(n == 1, "no version " .. from .. " in " .. path)
  support.write(path, edited)
end

-- A fresh fixture under a new temporary directory. OPTS.run (default "r1"),
-- OPTS.notes = { [crate] = extra changelog text } (a different packaged commit).
-- Returns { dir, origin, work, fork = artifact, plan = artifact, packaged = artifact,
-- run_dir, ctx = function(settings) -> ctx, lines = log lines of the last ctx }.
function rs.make(opts)
  opts = opts or {}
  local run = opts.run or "r1"
  local dir = support.tmpdir()
  support.sh("bash tests/fixtures/workspace_demo.sh " .. q(dir))
  local origin = dir .. "/origin.git"
  local run_dir = dir .. "/run"
  local fork = run_dir .. "/fork"
  local branch = "cdp/release/" .. run
  support.sh(("git clone -q %s %s"):format(q(dir .. "/work"), q(fork)))
  support.git(fork, "remote", "set-url", "origin", origin)
  support.git(fork, "config", "user.name", "cdp-test")
  support.git(fork, "config", "user.email", "test@cdp.invalid")
  support.git(fork, "config", "commit.gpgsign", "false")
  support.git(fork, "checkout", "-q", "-b", branch)
  local base = support.git(fork, "rev-parse", "HEAD")

  local plan = { crates = {} }
  for _, c in ipairs(rs.PLAN) do
    bump_manifest(fork .. "/" .. c.dir .. "/Cargo.toml", c.current, c.next)
    local notes = ("### Fixed\n\n- %s: the release of %s%s\n"):format(c.name, c.next, (opts.notes or {})[c.name] or "")
    support.write(fork .. "/" .. c.dir .. "/CHANGELOG.md",
      ("# Changelog\n\n## [%s] - 2026-01-01\n\n%s\n## [%s] - 2025-01-01\n\n- first release\n")
        :format(c.next, notes, c.current))
    plan.crates[#plan.crates + 1] = { name = c.name, dir = c.dir, current = c.current, next = c.next,
      bump = c.bump, publish = true, commits = {}, reasons = {} }
  end
  support.sh(("cd %s && cargo update --offline -q -w"):format(q(fork)))
  local commit = support.commit(fork, "chore(release): demo-cli 0.2.0, demo-core 0.1.1, demo-util 1.0.1")

  local crates = {}
  support.sh(("cd %s && CARGO_TARGET_DIR=%s cargo package --offline --no-verify --allow-dirty -q --workspace")
    :format(q(fork), q(dir .. "/target")))
  for _, c in ipairs(rs.PLAN) do
    local file = ("%s/crates/%s-%s.crate"):format(run_dir, c.name, c.next)
    assert(fs.mkdir(run_dir .. "/crates", { parents = true }) or fs.exists(run_dir .. "/crates"))
    assert(fs.copy(("%s/target/package/%s-%s.crate"):format(dir, c.name, c.next), file))
    crates[c.name] = { version = c.next, file = file, sha256 = fs.sha256_file(file) }
  end

  local fx = {
    dir = dir, origin = origin, work = dir .. "/work", run_dir = run_dir, base = base,
    fork = { path = fork, commit = base, branch = branch, base = "main", origin = origin, remote = "origin" },
    plan = plan,
    packaged = { commit = commit, path = fork, crates = crates },
    lines = {},
  }
  function fx.inputs()
    return { fork = fx.fork, plan = fx.plan, packaged = fx.packaged }
  end
  function fx.ctx(settings)
    fx.lines = {}
    return {
      run = run, run_dir = run_dir, root = fx.work, stage = "test", pipeline = "release", phase = 3,
      settings = settings or {}, policy = nil,
      log = function(...)
        local parts = {}
        for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
        fx.lines[#fx.lines + 1] = table.concat(parts, " ")
      end,
    }
  end
  function fx.log_text()
    return table.concat(fx.lines, "\n")
  end
  return fx
end

-- Run FN, expecting it to raise; returns the message (a string).
function rs.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return tostring(err)
end

-- The local peers (registry, Prism, GitHub stand-in) for a spec file.
function rs.start_peers(token)
  local dir = support.tmpdir()
  support.sh("bash tests/fixtures/peers.sh start " .. q(dir) .. " " .. token)
  local env = { dir = dir }
  for k, v in (support.read(dir .. "/peers.env")):gmatch("([%w_]+)=([^\n]*)") do env[k] = v end
  function env.stop()
    support.sh("bash tests/fixtures/peers.sh stop " .. q(dir), { may_fail = true })
  end
  function env.forge_state()
    return json.decode(assert(http.request { url = env.FORGE_API .. "/_state" }).body)
  end
  function env.forge_control(body)
    assert(http.request { method = "POST", url = env.FORGE_API .. "/_control", body = json.encode(body) })
  end
  function env.registry_control(body)
    assert(http.request { method = "POST", url = ("http://127.0.0.1:%s/_control"):format(env.REGISTRY_PORT),
      body = json.encode(body) })
  end
  function env.registry_log()
    return json.decode(assert(http.request { url = ("http://127.0.0.1:%s/_log"):format(env.REGISTRY_PORT) }).body)
  end
  function env.jsonl(name)
    local out = {}
    for l in (support.read(dir .. "/forge/" .. name) or ""):gmatch("[^\n]+") do out[#out + 1] = json.decode(l) end
    return out
  end
  return env
end

-- A registry of its own (tests/fixtures/registry.py), for a test that needs an empty one.
function rs.start_registry(token)
  local dir = support.tmpdir()
  local pid = support.sh(("setsid python3 tests/fixtures/registry.py --root %s --token %s >%s 2>%s </dev/null & echo $!")
    :format(q(dir .. "/reg"), token, q(dir .. "/port"), q(dir .. "/log"))):match("%d+")
  local port
  for _ = 1, 100 do
    port = (support.read(dir .. "/port") or ""):match("PORT (%d+)")
    if port then break end
    support.sh("sleep 0.1")
  end
  assert(port, "registry did not start: " .. (support.read(dir .. "/log") or ""))
  local reg = { dir = dir, root = dir .. "/reg", port = port,
    index = ("sparse+http://127.0.0.1:%s/index/"):format(port) }
  function reg.stop()
    support.sh("kill " .. pid, { may_fail = true })
  end
  function reg.control(body)
    assert(http.request { method = "POST", url = ("http://127.0.0.1:%s/_control"):format(port), body = json.encode(body) })
  end
  function reg.log()
    return json.decode(assert(http.request { url = ("http://127.0.0.1:%s/_log"):format(port) }).body)
  end
  return reg
end

return rs
