-- Shared helpers for busted specs: temporary directories, shell commands,
-- and git repositories made for real with the git command line.
-- Specs use it as `local support = require "tests.lua.support"`.
local support = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
support.quote = quote

-- Run a shell command; returns its stdout. Raises (naming the command and
-- its output) when it exits non-zero, unless opts.may_fail.
function support.sh(cmd, opts)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1", "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  if not ok and not (opts and opts.may_fail) then
    error(("command failed (%s): %s\n%s"):format(tostring(code), cmd, out), 2)
  end
  return out, ok and 0 or code
end

local made = {}
-- A new empty directory, removed when the process exits.
function support.tmpdir()
  local dir = support.sh("mktemp -d /tmp/cdp-test.XXXXXX"):gsub("%s+$", "")
  made[#made + 1] = dir
  return dir
end
-- Anchored in a table that is never collected before exit.
support._cleanup = setmetatable({}, {
  __gc = function()
    for _, d in ipairs(made) do
      os.execute("rm -rf " .. quote(d))
    end
  end,
})

function support.write(path, content)
  support.sh("mkdir -p " .. quote(path:match("^(.*)/[^/]*$") or "."))
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
end

function support.read(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("a")
  f:close()
  return s
end

-- git -C DIR ARGS... (each argument quoted); returns trimmed stdout.
function support.git(dir, ...)
  local args = {}
  for i, a in ipairs { ... } do
    args[i] = quote(a)
  end
  return (support.sh("git -C " .. quote(dir) .. " " .. table.concat(args, " ")):gsub("%s+$", ""))
end

-- A new repository with a deterministic identity. Returns its path.
function support.git_init(dir)
  dir = dir or support.tmpdir()
  support.sh("git init -q -b main " .. quote(dir))
  support.git(dir, "config", "user.name", "cdp-test")
  support.git(dir, "config", "user.email", "test@cdp.invalid")
  support.git(dir, "config", "commit.gpgsign", "false")
  return dir
end

-- Write FILES ({ [relative path] = content }) and commit them with MESSAGE.
-- Returns the new commit id.
function support.commit(dir, message, files)
  for path, content in pairs(files or {}) do
    support.write(dir .. "/" .. path, content)
  end
  support.git(dir, "add", "-A")
  support.git(dir, "commit", "-q", "--allow-empty", "-m", message)
  return support.git(dir, "rev-parse", "HEAD")
end

-- Wall-clock seconds with 10 ms resolution (os.clock is CPU time).
function support.uptime()
  return tonumber(support.read("/proc/uptime"):match("^(%S+)"))
end

-- Start a fixture that prints its ports ("PORT 1234", or MailDev's "SMTP n" and
-- "WEB n"), with its stdin a pipe from us so it exits when we close it (or die).
-- Returns the pipe and { NAME = port }; raises with the fixture's output if it
-- does not start within 180 s (node peers start slowly on a loaded machine).
function support.start_fixture(cmd)
  local out = support.tmpdir() .. "/out"
  local pipe = assert(io.popen(cmd .. " >" .. quote(out) .. " 2>&1", "w"))
  local t0 = support.uptime()
  while true do
    local text = support.read(out) or ""
    local ports = {}
    for name, port in text:gmatch("(%u+) (%d+)\n") do
      ports[name] = tonumber(port)
    end
    if ports.PORT or (ports.SMTP and ports.WEB) then
      return pipe, ports
    end
    if text:match("maildev.sh: ") or text:match("Error") or support.uptime() - t0 > 180 then
      pipe:close()
      error("fixture did not start: " .. cmd .. "\n" .. text)
    end
    os.execute("sleep 0.05")
  end
end

-- A loopback port nobody listens on: bound, then let go.
function support.closed_port()
  return tonumber((support.sh([[python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])']]):gsub("%s+$", "")))
end

-- Path of the cdp binary under test.
function support.cdp()
  return os.getenv("CDP") or "build/cdp"
end

return support
