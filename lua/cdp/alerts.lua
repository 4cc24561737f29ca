-- Alerts: events, alert rules, sinks, and the one redaction function
-- every writer uses (terminal, logs, journal, deliveries).
--
-- Events are tables { event = "stage.failed", run =, pipeline =, stage =, ... }.
-- The runner hands each one to an alerts dispatcher, which writes it to the
-- terminal sink and, for every rule that matches, posts it to the rule's
-- sinks through the C delivery queue (asynchronous, bounded, retried). A
-- delivery that fails is reported back (dispatcher:poll) so the runner can
-- journal it; it never fails the pipeline.
--
-- Alerts in a pipeline script:
--   alerts = {
--     sinks = {
--       hook = { webhook = "http://127.0.0.1:9000/cdp", secret = cdp.pipeline.secret("HOOK_SECRET") },
--                -- signed: X-Cdp-Timestamp: T, X-Cdp-Signature: sha256=HMAC(secret, "T.body")
--       chat = { slack = "https://hooks.slack.example/T000" },
--       mail = { email = "smtp://mail.example.org:587", from = "cdp@example.org", to = { "ops@example.org" },
--                username = "cdp", password = cdp.pipeline.secret("SMTP_PASSWORD") },  -- tls = "required"
--       log  = { jsonl = ".cdp/events.jsonl" },
--     },
--     rules = {
--       { on = "stage.failed", to = { "mail", "hook" } },   -- an event name
--       { on = "run.*", to = "log" },                      -- a name pattern (* = any)
--       { on = function(ev) return ev.stage == "publish" end, to = "chat" },  -- a predicate
--     },
--     retries = 3, timeout = 5, flush = 10,   -- delivery: attempts after the first, seconds
--   }
local json = require "cdp.json"
local secrets = require "cdp.secrets"
local settings = require "cdp.settings"
local text = require "cdp.text"

local notify = {}

notify.EVENTS = {
  "run.started", "stage.started", "stage.passed", "stage.failed", "stage.skipped", "stage.cached",
  "approval.needed", "run.finished", "run.failed",
}

---------------------------------------------------------------------------
-- Redaction

-- Environment variable names whose values are secrets wherever they appear.
notify.secret_env_name = secrets.is_secret_name

-- The process environment as { name = value }, with the secrets cdp took out of it.
notify.environ = secrets.environ

-- Values shorter than this are not redacted: replacing every "1" or "ab" in
-- the output would make it unreadable, and such values are not credentials.
notify.MIN_SECRET = 4

-- A redactor for the secret VALUES (a list), plus the values of environment
-- variables named like secrets (ENV: { name = value }, default the process
-- environment). Returns redact(v): strings have every secret replaced by
-- ***, tables are copied with their keys and values redacted; the list of
-- secrets; and keep(v), which adds a secret come by later (a short-lived token).
function notify.redactor(values, env)
  local set, list = {}, {}
  local function add(v)
    if type(v) == "string" and #v >= notify.MIN_SECRET and not set[v] then
      set[v] = true
      list[#list + 1] = v
    end
  end
  for _, v in ipairs(values or {}) do
    add(v)
  end
  for name, v in pairs(env or notify.environ()) do
    if notify.secret_env_name(name) then
      add(v)
    end
  end
  -- Longest first, so a secret that contains another is replaced whole.
  local function longest_first()
    table.sort(list, function(a, b)
      if #a ~= #b then
        return #a > #b
      end
      return a < b
    end)
  end
  longest_first()

  local function redact_string(s)
    for _, secret in ipairs(list) do
      local i = s:find(secret, 1, true)
      while i do
        s = s:sub(1, i - 1) .. "***" .. s:sub(i + #secret)
        i = s:find(secret, i + 3, true)
      end
    end
    return s
  end

  local function redact(v, seen)
    local t = type(v)
    if t == "string" then
      return redact_string(v)
    elseif t ~= "table" or #list == 0 then
      return v
    end
    seen = seen or {}
    if seen[v] then
      return seen[v]
    end
    local copy = setmetatable({}, getmetatable(v))
    seen[v] = copy
    for k, x in pairs(v) do
      copy[redact(k, seen)] = redact(x, seen)
    end
    return copy
  end

  return function(v)
    return redact(v)
  end, list, function(v)
    add(v)
    longest_first()
  end
end

---------------------------------------------------------------------------
-- Alert rules and sinks

local SINK_KINDS = { "webhook", "slack", "email", "jsonl" }

local function sink_kind(spec)
  local found
  for _, kind in ipairs(SINK_KINDS) do
    if spec[kind] ~= nil then
      if found then
        return nil, ("a sink is one of %s, not both %s and %s"):format(table.concat(SINK_KINDS, ", "), found, kind)
      end
      found = kind
    end
  end
  if not found then
    return nil, ("a sink needs one of %s"):format(table.concat(SINK_KINDS, ", "))
  end
  return found
end

local function list_of(v)
  if type(v) == "string" then
    return { v }
  end
  return v
end

-- Check an `alerts` table from a pipeline script. Returns true or nil, message.
function notify.check_alerts(alerts)
  if type(alerts) ~= "table" then
    return nil, "alerts must be a table { sinks = {...}, rules = {...} }"
  end
  local sinks = alerts.sinks or {}
  if type(sinks) ~= "table" then
    return nil, "alerts.sinks must map names to sinks"
  end
  for name, spec in pairs(sinks) do
    if type(name) ~= "string" or type(spec) ~= "table" then
      return nil, ("sink '%s' must be a table like { webhook = URL }"):format(tostring(name))
    end
    local kind, err = sink_kind(spec)
    if not kind then
      return nil, ("sink '%s': %s"):format(name, err)
    end
    if kind == "email" and (type(spec.to) ~= "table" and type(spec.to) ~= "string" or not spec.from) then
      return nil, ("sink '%s': email needs from and to"):format(name)
    end
    if kind == "email" and spec.tls ~= nil and spec.tls ~= "required" and spec.tls ~= "try" and spec.tls ~= "none" then
      return nil, ("sink '%s': tls is \"required\" (the default: smtps:// or STARTTLS), \"try\" or \"none\", not %s")
        :format(name, tostring(spec.tls))
    end
  end
  for i, rule in ipairs(alerts.rules or {}) do
    if type(rule) ~= "table" then
      return nil, ("rules[%d] must be { on = EVENT|PATTERN|function, to = SINK|{SINK...} }"):format(i)
    end
    if type(rule.on) ~= "string" and type(rule.on) ~= "function" then
      return nil, ("rules[%d].on must be an event name, a pattern like 'stage.*', or a function(event)"):format(i)
    end
    local to = list_of(rule.to)
    if type(to) ~= "table" or #to == 0 then
      return nil, ("rules[%d].to must name a sink"):format(i)
    end
    for _, name in ipairs(to) do
      if not sinks[name] then
        return nil, ("rules[%d] sends to sink '%s', which alerts.sinks does not define"):format(i, tostring(name))
      end
    end
  end
  return true
end

-- Does a rule's `on` match EVENT?
function notify.matches(on, event)
  if type(on) == "function" then
    local ok, result = pcall(on, event)
    return ok and result and true or false
  end
  if on == "*" then
    return true
  end
  local pattern = "^" .. on:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
  return event.event:match(pattern) ~= nil
end

-- One line that says what happened, for chat, e-mail subjects and plain terminals.
function notify.summary(event)
  local who = ("%s %s"):format(event.pipeline or "pipeline", event.run or "")
  local e = event.event
  if e == "run.started" then
    return ("%s: run started"):format(who)
  elseif e == "run.finished" then
    return ("%s: run finished"):format(who)
  elseif e == "run.failed" then
    return ("%s: run failed%s"):format(who, event.reason and (": " .. event.reason) or "")
  elseif e == "approval.needed" then
    return ("%s: approval needed %s stage %s (cdp approve %s)"):format(who, event.when or "", event.stage or "?", event.run or "RUN")
  elseif e:match("^stage%.") then
    local line = ("%s: stage %s %s"):format(who, event.stage or "?", e:sub(7))
    if event.error then
      line = line .. ": " .. tostring(event.error.msg or event.error)
    elseif event.reason then
      line = line .. " (" .. event.reason .. ")"
    end
    return line
  end
  return ("%s: %s"):format(who, e)
end

local function secret_value(v, getenv)
  if settings.is_secret_marker(v) then
    return getenv(v.env) or v.default
  end
  return v
end

-- The signature of a webhook delivery made at NOW (unix seconds) of BODY: the
-- timestamp is inside the signed bytes, so a receiver that refuses old timestamps
-- refuses a replayed delivery. X-Cdp-Signature: sha256=HMAC(secret, "NOW.BODY").
function notify.sign(secret, now, body)
  return "sha256=" .. require("cdp.fs").hmac_sha256(secret, ("%d.%s"):format(now, body))
end

-- The message to post for EVENT to a sink of SPEC (a table for q:post), or
-- nil for sinks written here and now (jsonl). BODY is the event's JSON; NOW
-- (default: the clock) dates a webhook's signature.
function notify.message(name, spec, event, body, getenv, now)
  getenv = getenv or secrets.take
  local kind = assert(sink_kind(spec))
  if kind == "webhook" then
    local headers = { ["Content-Type"] = "application/json", ["X-Cdp-Event"] = event.event }
    for k, v in pairs(spec.headers or {}) do
      headers[k] = secret_value(v, getenv)
    end
    local secret = secret_value(spec.secret, getenv)
    if secret then
      now = math.floor(now or require("cdp.proc").time())
      headers["X-Cdp-Timestamp"] = tostring(now)
      headers["X-Cdp-Signature"] = notify.sign(secret, now, body)
    end
    return { kind = "http", method = "POST", url = secret_value(spec.webhook, getenv),
      headers = headers, body = body }
  elseif kind == "slack" then
    return { kind = "http", method = "POST", url = secret_value(spec.slack, getenv),
      headers = { ["Content-Type"] = "application/json" },
      body = json.encode { text = notify.summary(event) } }
  elseif kind == "email" then
    local pretty = json.encode(json.decode(body), { indent = "  " })
    return { kind = "smtp", url = secret_value(spec.email, getenv), from = spec.from, to = list_of(spec.to),
      -- one line: a multi-line error made the mail unsendable, and the run crashed with it
      subject = text.one_line((spec.subject_prefix or "[cdp] ") .. notify.summary(event), 200),
      body = notify.summary(event) .. "\n\n" .. pretty .. "\n",
      headers = spec.headers,
      -- TLS required unless the sink says otherwise: a run's failures are not for
      -- whoever is on the path, and a password never goes in clear (EINSECURE).
      tls = spec.tls or "required",
      username = secret_value(spec.username, getenv), password = secret_value(spec.password, getenv) }
  end
  return nil
end

---------------------------------------------------------------------------
-- The terminal sink: live progress on a terminal, plain lines otherwise.

local function fmt_elapsed(s)
  if s < 60 then
    return ("%.1fs"):format(s)
  end
  return ("%dm%02ds"):format(s // 60, math.floor(s % 60))
end
notify.elapsed = fmt_elapsed

function notify.terminal(opts)
  local raw, tty, clock = opts.out or io.stdout, opts.tty, opts.clock or os.clock
  -- Commit text and tools' output reach these lines: no escape sequence of theirs
  -- reaches the terminal (or a CI log viewer) to rewrite what it shows.
  local out = {
    write = function(_, ...)
      local parts = table.pack(...)
      for i = 1, parts.n do
        parts[i] = text.printable(parts[i])
      end
      return raw:write(table.unpack(parts, 1, parts.n))
    end,
    flush = function() return raw:flush() end,
  }
  local started = {}
  local live -- the stage whose status line is showing
  local self = {}
  local function clear()
    if tty and live then
      raw:write("\r\27[K") -- cdp's own control sequence
    end
  end
  local function line(text)
    clear()
    out:write(text, "\n")
    live = nil
  end
  local marks = { passed = "✓", cached = "=", failed = "✗", skipped = "-", interrupted = "!" }
  function self.event(ev)
    local e = ev.event
    local kind = e:match("^stage%.(.*)$")
    if e == "run.started" then
      line(("%s run %s (%s)"):format(ev.pipeline, ev.run, ev.resumed and "resumed" or ("phase " .. tostring(ev.phase))))
    elseif kind == "started" then
      started[ev.stage] = clock()
      if tty then
        clear()
        out:write(("● %s …"):format(ev.stage))
        out:flush()
        live = ev.stage
      else
        line(("stage %s started"):format(ev.stage))
      end
    elseif kind then
      local t = started[ev.stage] and fmt_elapsed(clock() - started[ev.stage]) or nil
      local shown
      if tty then
        shown = ("%s %s %s%s"):format(marks[kind] or "·", ev.stage, kind, t and (" " .. t) or "")
      else
        shown = ("stage %s %s%s"):format(ev.stage, kind, t and (" (" .. t .. ")") or "")
      end
      if ev.reason then
        shown = shown .. " — " .. ev.reason
      end
      if ev.error then
        shown = shown .. "\n  " .. tostring(ev.error.msg):gsub("\n", "\n  ")
      end
      line(shown)
    elseif e == "approval.needed" then
      if ev.resume then
        line(("approval needed %s stage %s: cdp approve --run %s [--note TEXT], then %s")
          :format(ev.when, ev.stage, ev.run, ev.resume))
      else
        line(("approval needed %s stage %s: cdp approve %s [--note TEXT], then cdp resume %s")
          :format(ev.when, ev.stage, ev.run, ev.run))
      end
      -- what the approval is for, as cdp status shows it
      for _, l in ipairs(type(ev.summary) == "table" and ev.summary or {}) do
        line("  " .. l)
      end
    elseif e == "run.finished" then
      line(("run %s finished"):format(ev.run))
    elseif e == "run.failed" then
      line(("run %s failed%s; %s continues it"):format(ev.run, ev.reason and (": " .. ev.reason) or "",
        ev.resume or ("cdp resume " .. ev.run)))
    end
    out:flush()
  end
  -- A log line from the running stage: on a terminal it refreshes the status
  -- line with the elapsed time; otherwise it is printed as it is.
  function self.log(stage, text)
    if tty then
      local t = started[stage] and fmt_elapsed(clock() - started[stage]) or ""
      clear()
      local cols = 100
      local shown = text:gsub("[%c]", " ")
      if #shown > cols then
        shown = shown:sub(1, cols - 1) .. "…"
      end
      out:write(("● %s %s  %s"):format(stage, t, shown))
      live = stage
    else
      out:write(("  %s| %s\n"):format(stage, text))
    end
    out:flush()
  end
  function self.print(text)
    line(text)
  end
  return self
end

---------------------------------------------------------------------------
-- The dispatcher: rules → sinks, through the C queue.

-- The C delivery queue (src/l_notify.c).
local function c_queue_module()
  local ok, m = pcall(require, "cdp.notify")
  if ok and type(m) == "table" and m.queue then
    return m
  end
  return nil
end

-- opts: alerts (script table), redact, terminal (sink), getenv, jsonl_write(path, line)
function notify.dispatcher(opts)
  local alerts = opts.alerts or {}
  local redact = opts.redact or function(v) return v end
  local getenv = opts.getenv or secrets.take
  local self = { pending = {}, failures = {} }
  local queue
  local seq = 0

  local function get_queue()
    if queue == nil then
      pcall(require, "cdp.http") -- registers the job builder the queue uses
      local m = c_queue_module()
      queue = m and m.queue {
        capacity = alerts.capacity or 64,
        retries = alerts.retries or 3,
        backoff = alerts.backoff or 0.5,
        timeout = alerts.timeout or 5,
      } or false
    end
    return queue or nil
  end

  local function failed(id, info)
    self.failures[#self.failures + 1] = info
    self.pending[id] = nil
  end

  -- One sink's delivery of EVENT, written now (jsonl) or queued (the rest). Returns
  -- true, or nil, message, code, attempts. Raises when the sink cannot make its
  -- message at all, which emit records as that sink's failure.
  local function deliver(name, spec, event, body, info)
    if spec.jsonl then
      local ok, err, code = opts.jsonl_write(spec.jsonl, body .. "\n")
      if not ok then
        return nil, tostring(err), code or "EIO", 1
      end
      return true
    end
    local msg = notify.message(name, spec, event, body, getenv)
    msg.id = info.id
    local q = get_queue()
    if not q then
      return nil, "no delivery queue (cdp.notify.queue unavailable)", "ENOSYS", 0
    end
    local ok, err, code = q:post(msg)
    if not ok then
      return nil, tostring(err), code or "EFULL", 0
    end
    self.pending[info.id] = info
    return true
  end

  -- Send EVENT (already carrying run/pipeline) to the terminal and every
  -- matching sink. Never raises: what a sink cannot format or deliver is a
  -- failure poll() reports, and the run goes on.
  function self.emit(event)
    event = redact(event)
    local function failure(info, err, code, attempts)
      info.error, info.code, info.attempts = redact(tostring(err)), code, attempts
      seq = seq + 1
      info.id = info.id or ("%s#%d"):format(info.sink, seq)
      failed(info.id, info)
    end
    if opts.terminal then
      local ok, err = pcall(opts.terminal.event, event)
      if not ok then
        failure({ sink = "terminal", about = event.event, stage = event.stage }, err, "EFORMAT", 1)
      end
    end
    local ok_body, body
    for _, rule in ipairs(alerts.rules or {}) do
      if notify.matches(rule.on, event) then
        for _, name in ipairs(list_of(rule.to)) do
          if ok_body == nil then
            ok_body, body = pcall(json.encode, event)
          end
          seq = seq + 1
          local info = { id = ("%s#%d"):format(name, seq), sink = name, about = event.event, stage = event.stage }
          if not ok_body then
            failure(info, "cannot encode the event: " .. tostring(body), "EFORMAT", 0)
          else
            local ok, done, err, code, attempts = pcall(deliver, name, alerts.sinks[name], event, body, info)
            if not ok then
              failure(info, "cannot make the message: " .. tostring(done), "EFORMAT", 0)
            elseif not done then
              failure(info, err, code, attempts)
            end
          end
        end
      end
    end
  end

  -- Failed deliveries since the last call: { {id, sink, about (the event), stage, error, code, attempts, status} }.
  local function take(results)
    for _, r in ipairs(results or {}) do
      local info = self.pending[r.id]
      if info then
        self.pending[r.id] = nil
        if not r.ok then
          info.error = redact(tostring(r.error or ("HTTP " .. tostring(r.status))))
          info.code, info.attempts, info.status = r.code, r.attempts, r.status
          self.failures[#self.failures + 1] = info
        end
      end
    end
  end

  function self.poll()
    if queue then
      take(queue:poll())
    end
    local out = self.failures
    self.failures = {}
    return out
  end

  -- Wait up to SECONDS for pending deliveries, then report failures (those
  -- still pending count as failed with ETIMEDOUT).
  function self.flush(seconds)
    if queue then
      take(queue:flush(seconds or alerts.flush or 10))
    end
    local out = self.poll()
    local ids = {}
    for id in pairs(self.pending) do
      ids[#ids + 1] = id
    end
    table.sort(ids)
    for _, id in ipairs(ids) do
      local info = self.pending[id]
      info.error, info.code = "not delivered before the flush deadline", "ETIMEDOUT"
      out[#out + 1] = info
      self.pending[id] = nil
    end
    return out
  end

  function self.close()
    if queue then
      queue:close()
      queue = false
    end
  end

  return self
end

return notify
