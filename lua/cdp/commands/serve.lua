-- cdp serve [PIPELINE]: runs started by forge push webhooks, on a machine of the
-- team's own. One listener (cdp.serve), one run at a time for this repository: each
-- accepted push is queued, journaled with its delivery id, and run as
-- `cdp run PIPELINE --set ref=<commit>` in a process of its own, so deliveries are
-- answered while a run goes on.
local cli = require "cdp.cli"
local fs = require "cdp.fs"
local json = require "cdp.json"
local proc = require "cdp.proc"

local command = {
  summary = "receive forge push webhooks and run the pipeline for each push, one at a time",
  usage = "cdp serve [PIPELINE] [--address A] [--port N] [--branch B]... [--tag GLOB]... [--max-body BYTES]",
  help = [[
Listens for webhook deliveries (POST to any path) from GitHub, Gitea or Forgejo and
starts a run of PIPELINE (found as `cdp run` finds it; default the project's cdp.lua or
.cdp/pipeline.lua) for each push to a branch given with --branch (default main) or a
tag matching --tag. Runs go one at a time, in the order the pushes came; each is
`cdp run PIPELINE --set ref=<commit> --set base_branch=<branch> --no-prompt` in this
repository, its output in .cdp/serve/<delivery>.log.

Every delivery must be signed with the secret in CDP_SERVE_SECRET, as the forge does
it: GitHub's X-Hub-Signature-256 (sha256=HMAC of the body), Gitea's and Forgejo's
X-Gitea-Signature / X-Forgejo-Signature (the HMAC's hex). The comparison takes the
same time wherever the signatures differ.

Answers:  202 a push queued           200 a ping, or a push to a ref not served, or
          401 no or a wrong signature     another event (the body says which)
          409 a delivery id seen before 413 a body over --max-body (default 1 MiB)
          400 a body that is not JSON   404/405 another path or method
GET /health answers {"status": "ok", "queued": n, "running": delivery or null}.

Every accepted or ignored delivery is journaled in .cdp/serve/journal.ndjson with its
id; ids seen before, in this process or an earlier one, are refused, and pushes that
were queued but never started when cdp serve last stopped are queued again.
SIGTERM (or SIGINT) stops accepting, lets the running run record its stage as
interrupted (cdp resume RUN continues it), and exits.

Options:
  --address A      the address to listen on (default 127.0.0.1, loopback only)
  --port N         the port (default 8787; 0 picks a free one, printed at start)
  --branch B       a branch whose pushes start runs (repeatable; default main)
  --tag GLOB       tags whose pushes start runs (repeatable; * matches any run of characters)
  --max-body N     the largest body accepted, in bytes

Examples:
  cdp serve                        with CDP_SERVE_SECRET set: cdp.lua for every push to main
  cdp serve release --address 0.0.0.0 --port 8787 --tag 'v*'
  curl -s http://127.0.0.1:8787/health]],
}

local SPEC = { ["--address"] = "value", ["--port"] = "value", ["--branch"] = "list", ["--tag"] = "list",
  ["--max-body"] = "value" }

local ZERO = ("0"):rep(40)

local function glob_match(glob, s)
  local pattern = "^" .. glob:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
  return s:match(pattern) ~= nil
end

-- The forge's signature and delivery headers: which forge, the id, the event, the
-- signature as hex, or nil.
function command.delivery_of(headers)
  if headers["x-github-delivery"] or headers["x-hub-signature-256"] or headers["x-github-event"] then
    local sig = headers["x-hub-signature-256"]
    return { forge = "github", id = headers["x-github-delivery"], event = headers["x-github-event"],
      signature = sig and sig:match("^sha256=(%x+)$") or (sig and "") }
  end
  local name = headers["x-forgejo-event"] and "forgejo" or "gitea"
  return { forge = name,
    id = headers["x-forgejo-delivery"] or headers["x-gitea-delivery"],
    event = headers["x-forgejo-event"] or headers["x-gitea-event"],
    signature = headers["x-forgejo-signature"] or headers["x-gitea-signature"] }
end

-- Whether SIGNATURE (hex) is BODY's HMAC-SHA256 under SECRET.
function command.signed(secret, body, signature)
  local serve = require "cdp.serve"
  if type(signature) ~= "string" or signature == "" then
    return false
  end
  return serve.equal(fs.hmac_sha256(secret, body), signature:lower())
end

local Server = {}
Server.__index = Server

function Server:record(event, fields)
  return self.writer:append(event, fields)
end

function Server:respond(conn, status, body)
  conn:respond(status, json.encode(body) .. "\n")
end

-- What a push delivery asks for: the ref it moved, the commit it moved to, the branch
-- the release is based on; or nil and why it is not ours to run.
function Server:wanted(payload)
  local ref, after = payload.ref, payload.after
  if type(ref) ~= "string" or type(after) ~= "string" then
    return nil, "a push without ref and after"
  end
  if after == ZERO or payload.deleted == true then
    return nil, ("%s was deleted"):format(ref)
  end
  local branch = ref:match("^refs/heads/(.+)$")
  if branch then
    for _, b in ipairs(self.branches) do
      if b == branch then
        return { ref = ref, commit = after, base = branch }
      end
    end
    return nil, ("%s is not a branch this server runs for (%s)"):format(ref, table.concat(self.branches, ", "))
  end
  local tag = ref:match("^refs/tags/(.+)$")
  for _, glob in ipairs(tag and self.tags or {}) do
    if glob_match(glob, tag) then
      return { ref = ref, commit = after }
    end
  end
  return nil, ("%s is not a ref this server runs for"):format(ref)
end

function Server:handle(req, conn)
  if req.malformed then
    return conn:respond(req.status or 400, "{\"error\": \"malformed request\"}\n")
  end
  if req.method == "GET" and req.path == "/health" then
    return self:respond(conn, 200, { status = "ok", queued = #self.queue,
      running = self.current and self.current.delivery.id or json.null })
  end
  if req.method ~= "POST" then
    return self:respond(conn, req.path == "/health" and 405 or 404, { error = "POST webhook deliveries here" })
  end
  if req.too_large then
    return self:respond(conn, 413, { error = ("the body is over %d bytes"):format(self.max_body) })
  end
  if req.chunked then
    return self:respond(conn, 411, { error = "send a Content-Length" })
  end
  local d = command.delivery_of(req.headers)
  if not d.signature then
    return self:respond(conn, 401, { error = "the delivery is not signed (set the webhook's secret)" })
  end
  if not command.signed(self.secret, req.body, d.signature) then
    return self:respond(conn, 401, { error = "the delivery's signature is wrong" })
  end
  if type(d.id) ~= "string" or d.id == "" then
    return self:respond(conn, 400, { error = "no delivery id" })
  end
  if self.seen[d.id] then
    return self:respond(conn, 409, { error = ("delivery %s was received already"):format(d.id) })
  end
  self.seen[d.id] = true
  if d.event == "ping" then
    self:record("delivery.ignored", { id = d.id, forge = d.forge, event = d.event, reason = "ping" })
    return self:respond(conn, 200, { pong = true })
  end
  local payload = json.decode(req.body)
  if type(payload) ~= "table" then
    self:record("delivery.ignored", { id = d.id, forge = d.forge, event = d.event, reason = "not JSON" })
    return self:respond(conn, 400, { error = "the body is not JSON" })
  end
  if d.event ~= "push" then
    self:record("delivery.ignored", { id = d.id, forge = d.forge, event = d.event, reason = "not a push" })
    return self:respond(conn, 200, { ignored = ("a %s event; this server runs pushes"):format(tostring(d.event)) })
  end
  local want, why = self:wanted(payload)
  if not want then
    self:record("delivery.ignored", { id = d.id, forge = d.forge, event = d.event, ref = payload.ref, reason = why })
    return self:respond(conn, 200, { ignored = why })
  end
  local item = { id = d.id, forge = d.forge, ref = want.ref, commit = want.commit, base = want.base }
  self:record("delivery.accepted", item)
  self.queue[#self.queue + 1] = item
  return self:respond(conn, 202, { queued = d.id, position = #self.queue + (self.current and 1 or 0) })
end

-- Start the first queued delivery's run.
function Server:start_next()
  local item = table.remove(self.queue, 1)
  local git = require "cdp.git"
  local repo = git.open(self.root)
  local ok, err = repo and repo:fetch(self.remote, { "+" .. item.ref .. ":refs/cdp/serve/" .. item.id })
  -- (after an annotated tag's push, `after` is the tag object: it resolves to its commit)
  if repo and not (ok and repo:resolve(item.commit)) then
    ok, err = false, err or ("%s does not have commit %s"):format(self.remote, item.commit)
  end
  if repo then
    repo:close()
  end
  if not ok then
    self:record("run.not_started", { delivery = item.id, reason = tostring(err) })
    io.stdout:write(("delivery %s: cannot fetch %s: %s\n"):format(item.id, item.ref, tostring(err)))
    return
  end
  local argv = { self.cdp, "run", self.pipeline, "--set", "ref=" .. item.commit, "--no-prompt" }
  if item.base then
    argv[#argv + 1] = "--set"
    argv[#argv + 1] = "base_branch=" .. item.base
  end
  local log = self.dir .. "/" .. item.id .. ".log"
  -- the run gets the secrets cdp took out of its environment (cdp.secrets)
  local env = proc.taken and proc.taken() or {}
  env.CDP_SERVE_SECRET = false -- the webhook's secret is the server's alone
  local child, serr = proc.spawn { argv = argv, cwd = self.root, output = log, env = env }
  if not child then
    self:record("run.not_started", { delivery = item.id, reason = serr })
    return
  end
  self.current = { delivery = item, process = child, log = log }
  self:record("run.spawned", { delivery = item.id, pid = child:pid(), commit = item.commit, log = log })
  io.stdout:write(("delivery %s: run of %s at %s started (log %s)\n"):format(item.id, item.ref, item.commit:sub(1, 12), log))
  io.stdout:flush()
end

-- The id of the run a child's log names ("release run <id> ..."), or nil.
local function run_id_in(log)
  local text = fs.read(log) or ""
  return text:match("run (%d%d%d%d%d%d%d%dT[%w.%-]+)")
end

function Server:reap(wait)
  local res = self.current.process:wait(wait)
  if not res then
    return false
  end
  local item = self.current.delivery
  self:record("run.ended", { delivery = item.id, code = res.code, signal = res.signame,
    run = run_id_in(self.current.log) })
  io.stdout:write(("delivery %s: run ended with %s\n"):format(item.id,
    res.code and ("exit code " .. res.code) or tostring(res.signame)))
  io.stdout:flush()
  self.current = nil
  return true
end

-- SIGTERM: let the running run record its interrupted stage, then stop.
function Server:stop(signal)
  if self.current then
    io.stdout:write(("%s: stopping the run of delivery %s\n"):format(signal, self.current.delivery.id))
    self.current.process:kill("TERM")
    if not self:reap(60) then
      self.current.process:kill("KILL")
      self:reap()
    end
  end
  self:record("serve.stopped", { signal = signal, queued = #self.queue })
  io.stdout:write(("cdp serve stopped (%s); %d deliveries stay queued for the next start\n"):format(signal, #self.queue))
end

-- What the serve journal says: ids seen, and pushes accepted that no run started.
local function replay(entries)
  local seen, accepted, started = {}, {}, {}
  for _, e in ipairs(entries) do
    if e.event == "delivery.accepted" or e.event == "delivery.ignored" then
      seen[e.id] = true
      if e.event == "delivery.accepted" then
        accepted[#accepted + 1] = e
      end
    elseif e.event == "run.spawned" or e.event == "run.not_started" then
      started[e.delivery] = true
    end
  end
  local queue = {}
  for _, e in ipairs(accepted) do
    if not started[e.id] then
      queue[#queue + 1] = { id = e.id, forge = e.forge, ref = e.ref, commit = e.commit, base = e.base }
    end
  end
  return seen, queue
end

function command.run(args)
  local run = require "cdp.run"
  local journal = require "cdp.journal"
  local serve = require "cdp.serve"
  local o, positional = require("cdp.commands.run").parse(args, SPEC, "serve")
  if #positional > 1 then
    cli.usage_error("cdp serve takes at most one PIPELINE", "serve")
  end
  -- Found as `cdp run` finds it (the project's cdp.lua by default); a broken script
  -- fails now, not at the first push.
  local p, ref = require("cdp.commands.run").load(positional[1])
  local pipeline = positional[1] or ref
  local secret = proc.take_env and proc.take_env("CDP_SERVE_SECRET") or proc.getenv("CDP_SERVE_SECRET")
  if type(secret) ~= "string" or #secret < 8 then
    cli.usage_error("set CDP_SERVE_SECRET to the webhook's secret (8 characters or more)", "serve")
  end
  local port = tonumber(o.port or "8787")
  local max_body = tonumber(o.max_body or "1048576")
  if not port or not max_body or max_body < 1 then
    cli.usage_error("--port and --max-body take numbers", "serve")
  end
  local root = run.root()
  local dir = root .. "/.cdp/serve"
  assert(fs.mkdir(dir, { parents = true }))
  local lock, lerr = fs.lock(dir .. "/lock", { holder = ("cdp serve, pid %d"):format(proc.pid()) })
  if not lock then
    io.stderr:write("cdp: another cdp serve runs for this repository: ", tostring(lerr), "\n")
    return cli.EXIT.failed
  end
  local listener, err = serve.listen { address = o.address or "127.0.0.1", port = port }
  if not listener then
    lock:close()
    io.stderr:write(("cdp: cannot listen on %s:%s: %s\n"):format(o.address or "127.0.0.1", tostring(port), err))
    return cli.EXIT.failed
  end
  local writer = assert(journal.open(dir .. "/" .. journal.FILE, run.notify().redactor({ secret })))
  local seen, queue = replay(writer.entries)
  local abs = pipeline:sub(1, 1) == "/" and pipeline or fs.join(assert(fs.cwd()), pipeline)
  local self = setmetatable({ root = root, dir = dir, writer = writer, secret = secret, seen = seen, queue = queue,
    branches = o.branch or { "main" }, tags = o.tag or {}, max_body = max_body, pipeline = abs,
    remote = (p.settings and p.settings.remote) or "origin", cdp = fs.realpath("/proc/self/exe") }, Server)
  self:record("serve.started", { address = o.address or "127.0.0.1", port = listener:port(), pipeline = abs,
    branches = self.branches, tags = self.tags, requeued = #queue })
  io.stdout:write(("cdp serve: listening on http://%s:%d for pushes to %s (pipeline %s)%s\n"):format(
    o.address or "127.0.0.1", listener:port(), table.concat(self.branches, ", "), pipeline,
    #queue > 0 and ("; %d deliveries queued again"):format(#queue) or ""))
  io.stdout:flush()
  proc.trap_signals()
  local function step()
    local req, conn = listener:accept { timeout = 0.5, max_body = max_body }
    if req then
      local hok, herr = pcall(self.handle, self, req, conn)
      if not hok and not proc.interrupted() then
        io.stderr:write("cdp serve: ", tostring(herr), "\n")
        pcall(conn.respond, conn, 500, "{\"error\": \"internal error\"}\n")
      end
    end
    if self.current then
      self:reap(0)
    end
    if not self.current and #self.queue > 0 and not proc.interrupted() then
      self:start_next()
    end
  end
  while true do
    -- a signal raises wherever the loop is (proc.trap_signals); it stops here
    local ok, err = pcall(step)
    local signal = proc.interrupted()
    if signal then
      self:stop(signal)
      break
    elseif not ok then
      error(err, 0)
    end
  end
  listener:close()
  lock:close()
  return cli.EXIT.ok
end

return command
