-- The runner: takes a checked pipeline through a run, recording every step
-- in the run journal before and after it happens.
--
--   run.start(pipeline, opts)  a new run   -> outcome, run id
--   run.resume(run_id, opts)   continue one -> outcome
--   run.dry_run(pipeline, opts) what would happen, nothing written
--   run.check(pipeline, opts)  every health check, no stage runs
--
-- An outcome is what the run ended in: "done", "paused" (awaiting approval), "failed"
-- or "interrupted"; cdp.cli maps it to an exit code. Bad usage raises a usage error,
-- and a failure of the world outside any stage (a read-only .cdp/, a full disk, the
-- lock held) a world error (cdp.errors); neither leaves a half-made run behind.
--
-- Resumption and SIGKILL: a stage is recorded as started before it runs and
-- as passed (with its outputs) after; anything else is derived. A stage that
-- started and never ended is run again (stages are idempotent by contract);
-- a stage that passed in this run with the same key is not. So a run killed
-- at any moment and resumed ends in the state of a run never killed.
local errors = require "cdp.errors"
local fs = require "cdp.fs"
local json = require "cdp.json"
local journal = require "cdp.journal"
local pipeline = require "cdp.pipeline"
local script = require "cdp.script"
local settings = require "cdp.settings"

local run = {}

-- Events, alert rules, sinks and redaction (lua/cdp/alerts.lua); delivery is
-- the C queue, cdp.notify.
function run.notify()
  return require "cdp.alerts"
end

local function proc()
  return require "cdp.proc"
end

---------------------------------------------------------------------------
-- Where runs live

-- The root of the git repository the current directory is in, or nil, the
-- current directory; where runs are read (cdp.script has them: commands that
-- only look for the project's pipeline need not load this module).
run.repository_root = script.repository_root
run.root = script.project_root

-- Where a run may be written: the repository root. Outside a repository this is a
-- usage error, raised before anything is written (no .cdp/ is left in a stray
-- directory).
function run.writable_root(opts)
  if opts and opts.root then
    return opts.root
  end
  local root, cwd = run.repository_root()
  if not root then
    errors.usage(("%s is not in a git repository; cdp keeps its runs in the repository's .cdp/ — "
      .. "run it inside your repository (or git init one)"):format(cwd))
  end
  return root
end

function run.runs_dir(root)
  return (root or run.root()) .. "/.cdp/runs"
end

-- Sortable: UTC time of the start, then a short random part.
-- Milliseconds keep runs started in the same second in order; AFTER (the
-- newest existing id) is waited out should the clock say otherwise.
function run.new_id(after)
  while true do
    local t = proc().time()
    local s = math.floor(t)
    local id = ("%s.%03dZ-%04x"):format(os.date("!%Y%m%dT%H%M%S", s), math.floor((t - s) * 1000),
      math.random(0, 0xffff))
    if not after or id > after then
      return id
    end
    proc().sleep(0.001)
  end
end

-- Every run id, oldest first.
function run.list(root)
  local dir = run.runs_dir(root)
  if not fs.exists(dir) then
    return {}
  end
  local out = {}
  for _, name in ipairs(errors.check(fs.list(dir))) do
    if fs.exists(dir .. "/" .. name .. "/" .. journal.FILE) then
      out[#out + 1] = name
    end
  end
  return out
end

-- RUN may be a whole id, a unique prefix, or "last"/nil for the newest.
function run.find(id, root)
  local ids = run.list(root)
  if #ids == 0 then
    return nil, ("no runs under %s"):format(run.runs_dir(root))
  end
  if id == nil or id == "last" or id == "latest" then
    return ids[#ids]
  end
  local found
  for _, name in ipairs(ids) do
    if name == id then
      return name
    end
    if name:sub(1, #id) == id then
      if found then
        return nil, ("run id '%s' is ambiguous (%s, %s, ...)"):format(id, found, name)
      end
      found = name
    end
  end
  if not found then
    return nil, ("no run '%s' under %s"):format(id, run.runs_dir(root))
  end
  return found
end

function run.load(id, root)
  local path = run.runs_dir(root) .. "/" .. id .. "/" .. journal.FILE
  local entries, err = journal.read(path)
  if not entries then
    return nil, err
  end
  return journal.derive(entries), entries
end

-- key -> outputs across every run's journal.
local function cache_index(root)
  local lists = {}
  for _, id in ipairs(run.list(root)) do
    local entries = journal.read(run.runs_dir(root) .. "/" .. id .. "/" .. journal.FILE)
    lists[#lists + 1] = entries or {}
  end
  return journal.index(lists)
end

-- .cdp/.gitignore: runs, release forks, logs and the lock are cdp's own and stay out
-- of the team's `git status`; what the team writes there (.cdp/pipeline.lua, module
-- overrides in .cdp/lua/) is theirs to commit. It ignores itself, so a first run leaves
-- no untracked file behind.
run.GITIGNORE = [[
# Written by cdp. Runs, release forks, logs and locks are cdp's own and stay out of git;
# what a team writes here (.cdp/pipeline.lua, module overrides in .cdp/lua/) is not ignored.
/*
!/pipeline.lua
!/lua/
]]
-- What cdp wrote before: it ignored .cdp/lua/ too.
local OLD_GITIGNORE = "# Made by cdp: runs, release forks and logs are not part of the repository.\n*\n"

-- Make ROOT/.cdp with its .gitignore (an old cdp's is brought up to date; a team's own
-- is left alone). Returns the directory; a .cdp/ that cannot be made or written raises
-- a world error naming the path.
function run.cdp_dir(root)
  local dir = root .. "/.cdp"
  -- Private: runs hold release forks, logs and journals (0700 here, 0600 files).
  local _, merr = fs.mkdir(dir, { parents = true, mode = "0700" })
  if merr then
    errors.world(("cannot make cdp's folder in the repository: %s"):format(merr), (merr:match("^(%u+):")))
  end
  local path = dir .. "/.gitignore"
  local current = fs.read(path)
  if current == nil or current == OLD_GITIGNORE then
    local ok, err, code = fs.write(path, run.GITIGNORE)
    if not ok then
      errors.world(("cannot write in cdp's folder: %s"):format(err), code)
    end
  end
  return dir
end

function run.lock(root, what)
  local dir = run.cdp_dir(root)
  local p = proc()
  local holder = ("cdp %s, pid %d on %s, user %s, since %s"):format(what, p.pid(), p.hostname(), p.user() or "?",
    os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(p.time())))
  local lock, err, code, held_by = fs.lock(dir .. "/lock", { holder = holder })
  if not lock then
    if code == "ELOCKED" then
      return nil, ("another cdp holds %s/lock: %s"):format(dir, held_by ~= "" and held_by or "unknown holder")
    end
    errors.world(("cannot lock the repository's runs: %s"):format(err), code)
  end
  return lock
end

---------------------------------------------------------------------------
-- Stage keys

local code_hashes = setmetatable({}, { __mode = "k" })
local function code_hash(stage)
  local h = code_hashes[stage]
  if not h then
    h = fs.sha256(pipeline.code(stage))
    code_hashes[stage] = h
  end
  return h
end

-- The code of the modules that settings declared `module = true` name (a changelog
-- template), by setting: editing a team's template must run its stage again.
local function module_hashes(stage, used, declarations)
  local out
  for k, v in pairs(used) do
    local d = (stage.declares or {})[k] or (declarations or {})[k]
    if d and d.module and type(v) == "string" and v ~= "" then
      local code = require("cdp.pipeline").module_code(v)
      out = out or {}
      out[k] = code and fs.sha256(code) or ("no module " .. v)
    end
  end
  return out and json.object(out)
end

-- sha256 of the stage's name, code, the settings it reads (secrets by name
-- only), the code of the modules those settings name, its inputs, FACTS (what
-- stage.key_facts says of the world), and for a stage that uses the pipeline's policy
-- (Version), the policy's fingerprint: editing the policy must plan again.
-- DECLARATIONS: the pipeline's (for settings a stage reads but another declares).
-- Paths in the inputs count from ROOT (the repository's), so a job of a distributed
-- run in another folder or on another machine finds the same key.
function run.stage_key(stage, public_settings, inputs, policy, declarations, root, facts)
  if root then
    inputs = require("cdp.runstate").portable(inputs, root)
  end
  local used = public_settings
  if stage.settings then
    used = {}
    for _, k in ipairs(stage.settings) do
      used[k] = public_settings[k]
    end
  end
  return fs.sha256(json.encode {
    modules = module_hashes(stage, used, declarations),
    name = stage.name,
    code = code_hash(stage),
    needs = stage.needs,
    gives = stage.gives,
    settings = json.object(used),
    inputs = json.object(inputs),
    policy = stage.uses_policy and fs.sha256(pipeline.fingerprint(policy)) or nil,
    facts = facts,
  })
end

-- What STAGE's key_facts say of the world, or nil. A stage that cannot say (no
-- repository yet) keys without them and fails in its run, where it says why.
function run.key_facts(stage, root, values)
  if not stage.key_facts then
    return nil
  end
  local ok, facts = pcall(stage.key_facts, { root = root, settings = values, stage = stage.name })
  if ok then
    return facts
  end
  return nil
end

---------------------------------------------------------------------------
-- Selection: --from, --to, --only

function run.selection(p, opts)
  local lo, hi = 1, #p.stages
  local function index(name, flag)
    local s = p.by_name[name]
    if not s then
      errors.usage(("%s: no stage '%s' in pipeline %s (stages: %s)"):format(flag, name, p.name,
        table.concat(p:names(), ", ")))
    end
    return s.index
  end
  if opts.only then
    if opts.from or opts.to then
      errors.usage("--only cannot be combined with --from or --to")
    end
    lo = index(opts.only, "--only")
    hi = lo
  end
  if opts.from then
    lo = index(opts.from, "--from")
  end
  if opts.to then
    hi = index(opts.to, "--to")
  end
  if lo > hi then
    errors.usage(("--from %s comes after --to %s"):format(opts.from, opts.to))
  end
  for name in pairs(opts.force or {}) do
    index(name, "--force")
  end
  local why
  if opts.only then
    why = "--only " .. opts.only
  end
  return function(i)
    if i >= lo and i <= hi then
      return true
    end
    return false, why or (i < lo and ("before --from " .. opts.from) or ("after --to " .. opts.to))
  end
end

function run.gates(phase, stage)
  if phase == 0 then
    return true, true
  elseif phase == 1 then
    return false, true
  elseif phase == 2 then
    return stage.approval == "before", false
  end
  return false, false
end

---------------------------------------------------------------------------
-- Effective settings and redaction

local function resolve_settings(p, sets)
  local effective, err = p:resolve_settings(sets)
  if not effective then
    errors.usage(err)
  end
  return effective
end

-- The credentials in URL ("https://user:password@host/..."): the password, and the
-- whole user part when it has none (a token given as the user name).
local function url_credentials(url, into)
  local userinfo = type(url) == "string" and url:match("^%a[%w+.-]*://([^/@%s]+)@")
  if userinfo then
    local password = userinfo:match(":(.+)$")
    into[#into + 1] = password or userinfo
  end
end

-- Credentials in URLs the run may show: setting values (a `remote` or an index given
-- as a URL) and the repository's remotes, which Activate's fork pushes to as given.
local function credentials_in_urls(effective, root, into)
  for _, e in pairs(effective) do
    local v = e.value
    for _, s in ipairs(type(v) == "table" and v or { v }) do
      url_credentials(s, into)
    end
  end
  local ok, git = pcall(require, "cdp.git")
  local repo = ok and root and git.discover(root)
  if repo then
    for _, r in ipairs(repo:remotes()) do
      url_credentials(repo:config_get("remote." .. r.name .. ".url"), into)
      url_credentials(repo:config_get("remote." .. r.name .. ".pushurl"), into)
    end
    repo:close()
  end
end

-- One redactor for everything the run writes: secret settings, secrets in
-- alert sinks (webhook secrets, Slack URLs, which are credentials), credentials
-- in URLs, and environment variables named like secrets.
local function make_redactor(effective, p, root)
  local values = settings.secret_values(effective)
  credentials_in_urls(effective, root, values)
  for _, spec in pairs(p.alerts and p.alerts.sinks or {}) do
    for field, v in pairs(spec) do
      if settings.is_secret_marker(v) then
        values[#values + 1] = require("cdp.secrets").take(v.env) or v.default
      elseif (field == "slack" or field == "password") and type(v) == "string" then
        values[#values + 1] = v
      end
    end
  end
  return run.notify().redactor(values)
end


---------------------------------------------------------------------------
-- Stage errors, and the approval prompt

local function tail_list(lines)
  local out = {}
  for i, l in ipairs(lines) do
    out[i] = l
  end
  return out
end

local StageError = { __name = "cdp.StageError" }
StageError.__tostring = function(e)
  local s = ("stage %s failed: %s%s"):format(e.stage or "?", e.code and (e.code .. ": ") or "", e.msg or "?")
  if e.traceback then
    s = s .. "\n" .. e.traceback
  end
  return s
end
run.StageError = StageError

local function stage_error(stage, err, tb)
  local e
  if type(err) == "table" and getmetatable(err) ~= StageError and (err.msg or err.code) then
    e = { code = err.code, msg = tostring(err.msg or err.code) }
  elseif getmetatable(err) == StageError then
    e = { code = err.code, msg = err.msg }
  else
    local msg = type(err) == "string" and err or tostring(err)
    e = { code = "EFAIL", msg = msg }
  end
  e.stage = stage
  e.traceback = tb
  return setmetatable(e, StageError)
end

-- What a person approves before STAGE, from the run's ARTIFACTS so far: the plan's
-- releases, the tags pushed, the release PR, and for Publish each crate, version,
-- checksum and registry (VALUES: the settings). Lines, shown in the prompt and kept in
-- the approval.needed entry and event, where `cdp status` of a paused run reads them.
function run.approval_summary(stage, artifacts, values)
  local lines = {}
  local plan = type(artifacts.plan) == "table" and artifacts.plan or {}
  for _, c in ipairs(plan.crates or {}) do
    if c.bump and c.bump ~= "none" then
      lines[#lines + 1] = ("release %s %s -> %s (%s)"):format(c.name, c.current, c.next, c.bump)
    end
  end
  local function sorted(t)
    local names = {}
    for k in pairs(type(t) == "table" and t or {}) do
      names[#names + 1] = k
    end
    table.sort(names)
    return names
  end
  for _, name in ipairs(sorted(artifacts.tags)) do
    lines[#lines + 1] = ("tag %s at %s"):format(name, tostring(artifacts.tags[name]):sub(1, 12))
  end
  local pr = artifacts.pr
  if type(pr) == "table" and type(pr.number) == "number" and pr.number > 0 then
    lines[#lines + 1] = ("pull request #%d %s"):format(pr.number, type(pr.url) == "string" and pr.url or "")
  end
  local packaged = artifacts.packaged
  if stage.name == "publish" and type(packaged) == "table" then
    for _, name in ipairs(sorted(packaged.crates)) do
      local c = packaged.crates[name]
      lines[#lines + 1] = ("publish %s %s (sha256 %s) to %s"):format(name, c.version, c.sha256,
        tostring(values and values.registry_index or "the registry"))
    end
  end
  return lines
end

-- Prompt on the terminal for a gate, showing SUMMARY (run.approval_summary) before a
-- stage. Returns "approve", "reject" or nil (EOF).
local function prompt(term, stage, when, outputs, redact, summary)
  local shown = json.encode(redact(outputs == nil and json.null or outputs), { indent = "  " })
  local lines = {}
  for l in (shown .. "\n"):gmatch("(.-)\n") do
    lines[#lines + 1] = l
  end
  local LIMIT = 20
  local function show(all)
    local n = all and #lines or math.min(#lines, LIMIT)
    for i = 1, n do
      io.stdout:write("  ", lines[i], "\n")
    end
    if n < #lines then
      io.stdout:write(("  … %d more lines (s: show more)\n"):format(#lines - n))
    end
  end
  if when == "after" then
    term.print(("stage %s outputs:"):format(stage.name))
    show(false)
  else
    term.print(("stage %s is next (needs: %s)"):format(stage.name,
      #stage.needs > 0 and table.concat(stage.needs, ", ") or "nothing"))
    for _, l in ipairs(summary or {}) do
      io.stdout:write("  ", l, "\n")
    end
    if outputs ~= nil then
      show(false)
    end
  end
  while true do
    io.stdout:write(("Approve %s stage %s? [a]pprove, [r]eject, [s]how more: "):format(when, stage.name))
    io.stdout:flush()
    local answer = io.stdin:read("l")
    if answer == nil then
      io.stdout:write("\n")
      return nil
    end
    answer = answer:lower():gsub("^%s+", ""):gsub("%s+$", "")
    if answer == "a" or answer == "approve" or answer == "y" or answer == "yes" then
      return "approve"
    elseif answer == "r" or answer == "reject" or answer == "n" or answer == "no" then
      return "reject"
    elseif answer == "s" or answer == "show" or answer == "show more" then
      show(true)
    end
  end
end

---------------------------------------------------------------------------
-- The drive: one pass over the stages, in named steps that share one table of
-- run state, D (a Drive, made from the run R by new_drive):
--   from R:   p, id, dir, root, writer, effective, redact, opts, alerts, term,
--             interactive, resumed
--   its own:  selected (i -> selected?, why not), public, values and sources (settings),
--             cache (key -> outputs in every run), gates, in_run (this run's
--             stages as the journal has them), phase, running (name -> stage of
--             the stages this run runs), artifacts (kind -> outputs so far),
--             current (the stage running now, for interrupts)
-- A step returns nothing to go on, or the outcome the run ends with (Drive:finish).

local Drive = {}
Drive.__index = Drive

local function new_drive(R)
  local D = setmetatable({}, Drive)
  for k, v in pairs(R) do
    D[k] = v
  end
  D.selected = run.selection(R.p, R.opts)
  D.public = settings.public(R.effective)
  D.values = settings.values(R.effective)
  -- where each value comes from ("env CDP_GIT_TOKEN", "--set"), for messages that say so
  D.sources = {}
  for name, e in pairs(R.effective) do
    D.sources[name] = e.source
  end
  D.cache = cache_index(R.root)
  local derived = journal.derive(R.writer.entries)
  D.gates = derived.gates
  D.started = derived.time
  D.in_run = {}
  for _, s in ipairs(derived.stages) do
    D.in_run[s.name] = s
  end
  D.phase = R.opts.phase or R.p.phase
  -- A stage may check early for a later one (Validate checks the forge and the
  -- registry, and the secrets, of the stages this run will reach).
  D.running = {}
  for i, stage in ipairs(R.p.stages) do
    if D.selected(i) then
      D.running[stage.name] = stage
    end
  end
  D.artifacts = {}
  return D
end

-- A distributed job (R.job = { first, last, approved, who }, R.sync): it runs
-- the stages FIRST..LAST and takes the earlier ones as the jobs before it
-- recorded them; R.sync keeps the state on the remote current (cdp.runstate).

function Drive:emit(event, fields)
  local ev = { run = self.id, pipeline = self.p.name }
  for k, v in pairs(fields or {}) do
    ev[k] = v
  end
  if self.job and (event == "run.failed" or event == "approval.needed") then
    -- what goes on with it: the job again, not a local resume
    ev.resume = ("cdp stage %s --run %s"):format(self.p.stages[self.job.first].name, self.id)
  end
  ev.event = event
  self.alerts.emit(ev)
end

function Drive:record(event, fields)
  return self.writer:append(event, fields)
end

-- Deliveries that failed since the last look go into the journal.
function Drive:deliveries()
  for _, f in ipairs(self.alerts.poll()) do
    self:record("delivery.failed", f)
  end
end

-- End the run in STATE ("done", "paused", "interrupted" or "failed"); returns it, the
-- run's outcome.
function Drive:finish(state, fields)
  if state == "done" then
    self:record("run.finished", {})
    self:emit("run.finished", {})
  elseif state == "paused" then
    self:record("run.paused", fields)
  elseif state == "interrupted" then
    self:record("run.interrupted", fields)
    self:emit("run.failed", { reason = "interrupted by " .. tostring(fields.signal) })
  else
    state = "failed"
    self:record("run.failed", fields)
    self:emit("run.failed", fields)
  end
  return state
end

-- A gate WHEN ("before" or "after") STAGE: "ok", "paused" or "rejected".
function Drive:gate(stage, when, outputs)
  local P = proc()
  local g = stage.name .. "/" .. when
  if self.gates[g] == "granted" then
    return "ok"
  end
  if self.job and self.job.approved then
    -- the job runs because a person approved it where CI asks (a protected environment)
    self:record("approval.granted", { stage = stage.name, when = when, user = self.job.approved,
      time = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(P.time())), note = "the job's own approval (cdp stage --approved)" })
    self.gates[g] = "granted"
    return "ok"
  end
  local summary = when == "before" and run.approval_summary(stage, self.artifacts, self.values) or nil
  if self.interactive then
    local answer = prompt(self.term, stage, when, outputs, self.redact, summary)
    if answer then
      local decision = answer == "approve" and "approval.granted" or "approval.rejected"
      self:record(decision, { stage = stage.name, when = when, user = P.user() or "?",
        time = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(P.time())), note = "on the terminal" })
      self.gates[g] = answer == "approve" and "granted" or "rejected"
      return answer == "approve" and "ok" or "rejected"
    end
  end
  if self.gates[g] ~= "needed" then
    self:record("approval.needed", { stage = stage.name, when = when, summary = summary })
    self.gates[g] = "needed"
    self:emit("approval.needed", { stage = stage.name, when = when, summary = summary })
  else
    self.term.print(("still awaiting approval %s stage %s: cdp approve %s"):format(when, stage.name, self.id))
  end
  return "paused"
end

-- The gate as a step: nothing when it is passed, else the outcome.
function Drive:pass_gate(stage, when, outputs)
  local g = self:gate(stage, when, outputs)
  if g == "paused" then
    return self:finish("paused", { reason = "approval", stage = stage.name, when = when })
  elseif g == "rejected" then
    return self:finish("failed", { reason = when == "before" and ("rejected before stage %s"):format(stage.name)
      or ("outputs of stage %s rejected"):format(stage.name) })
  end
end

-- STAGE's inputs from the artifacts given so far, and the first kind it needs
-- that no earlier stage gave (or nil).
function Drive:inputs(stage)
  local inputs, missing = {}, nil
  for _, kind in ipairs(stage.needs) do
    if self.artifacts[kind] == nil then
      missing = missing or kind
    end
    inputs[kind] = self.artifacts[kind]
  end
  return inputs, missing
end

-- What a stage sees: ctx, and the tail of its log lines (for the journal on failure).
function Drive:context(stage)
  local logs = {}
  local log_path = self.dir .. "/logs/" .. stage.name .. ".log"
  local ctx = {
    run = self.id, run_dir = self.dir, root = self.root, stage = stage.name, pipeline = self.p.name,
    phase = self.phase, settings = self.values, sources = self.sources, policy = self.p.policy,
    running = self.running,
    -- The run's start (UTC, ISO 8601) as its journal records it once: the release
    -- date a changelog shows, the same when the run is resumed days later.
    started = self.started,
  }
  -- A secret the stage comes by as it runs (a short-lived registry token): from
  -- now on it is redacted from everything the run writes, as the settings' are.
  function ctx.keep_secret(value)
    if self.keep_secret then
      self.keep_secret(value)
    end
  end
  local redact, term = self.redact, self.term
  function ctx.log(...)
    local parts = {}
    for k = 1, select("#", ...) do
      parts[k] = tostring((select(k, ...)))
    end
    local text = redact(table.concat(parts, " "))
    for line in (text .. "\n"):gmatch("(.-)\n") do
      logs[#logs + 1] = line
      if #logs > 40 then
        table.remove(logs, 1)
      end
      errors.check(fs.append(log_path, line .. "\n", { mode = "0600" }))
      term.log(stage.name, line)
    end
  end
  return ctx, logs
end

-- Outputs recorded under KEY (in any run) that still hold in the world, or nil.
function Drive:reusable(stage, key, ctx, inputs)
  if self.opts.force and self.opts.force[stage.name] then
    return nil
  end
  local cached = self.cache[key]
  if cached ~= nil and stage.verify then
    local ok, holds, reason = pcall(stage.verify, ctx, cached, inputs)
    if not (ok and holds) then
      self.term.print(("stage %s: recorded outputs no longer hold (%s); running it again")
        :format(stage.name, self.redact(tostring(ok and reason or holds))))
      return nil
    end
  end
  return cached
end

-- The stage's health checks: nothing when all pass, else the outcome.
function Drive:check_health(stage, key, ctx, logs)
  for _, check in ipairs(stage.checks) do
    local ok, healthy, reason = pcall(check.check, ctx)
    if not ok or healthy ~= true then
      if not ok and proc().interrupted() then
        error(healthy, 0)
      end
      local why_not = not ok and tostring(healthy) or tostring(reason or "it returned " .. tostring(healthy))
      local err = { code = "EHEALTH", check = check.name,
        msg = ("health check '%s' failed: %s"):format(check.name, why_not) }
      self:record("stage.failed", { stage = stage.name, key = key, error = err, log_tail = tail_list(logs) })
      self:emit("stage.failed", { stage = stage.name, error = err })
      return self:finish("failed", { reason = err.msg, stage = stage.name })
    end
  end
end

-- What a stage returned, as the journal keeps it: every kind it gives and no
-- other, serialisable. Returns the outputs, or nil and what is wrong.
local function check_outputs(stage, result)
  if result == nil and #stage.gives == 0 then
    result = {}
  end
  if type(result) ~= "table" then
    return nil, ("returned %s, not a table of outputs"):format(type(result))
  end
  for _, kind in ipairs(stage.gives) do
    if result[kind] == nil then
      return nil, ("did not give '%s'"):format(kind)
    end
  end
  for kind in pairs(result) do
    local declared = false
    for _, g in ipairs(stage.gives) do
      declared = declared or g == kind
    end
    if not declared then
      return nil, ("returned '%s', which it does not declare in gives"):format(tostring(kind))
    end
  end
  local ok, text = pcall(json.encode, json.object(result))
  if not ok then
    return nil, "outputs are not serialisable: " .. tostring(text)
  end
  return json.decode(text)
end

-- Run the stage itself under xpcall. Returns its outputs, or nil and the outcome.
function Drive:execute(stage, key, ctx, inputs, logs)
  errors.check(fs.mkdir(self.dir .. "/logs", { parents = true, mode = "0700" }))
  self:record("stage.started", { stage = stage.name, key = key, job = self.job and self.job.who or nil })
  if self.sync then
    -- the claim: pushed before the stage acts, so a second copy of this job stops
    local ok, err = self.sync:push(self.writer, ("%s started"):format(stage.name))
    if not ok then
      self.term.print(("stage %s not run: %s"):format(stage.name, self.redact(err)))
      self.sync.lost = true -- nothing of this job's goes to the remote
      return nil, "failed"
    end
  end
  self:emit("stage.started", { stage = stage.name })
  self.current = stage.name
  local ok, result = xpcall(stage.run, function(e)
    -- the stage's own frames; the engine's below them say nothing new
    local tb = debug.traceback(nil, 2):gsub("\n\t%[C%]: in function 'xpcall'.*$", "")
    return stage_error(stage.name, e, tb)
  end, ctx, inputs)
  if ok then
    local outputs, problem = check_outputs(stage, result)
    if outputs then
      result = outputs
    else
      ok = false
      result = setmetatable({ stage = stage.name, code = "EOUTPUT", msg = problem }, StageError)
    end
  end
  self.current = nil
  if ok then
    self:record("stage.passed", { stage = stage.name, key = key, outputs = result })
    self:emit("stage.passed", { stage = stage.name })
    return result
  end
  local signal = proc().interrupted()
  if signal then
    self:record("stage.interrupted", { stage = stage.name, signal = signal })
    self:emit("stage.interrupted", { stage = stage.name, reason = "by " .. signal })
    return nil, self:finish("interrupted", { signal = signal, stage = stage.name })
  end
  local err = { code = result.code, msg = self.redact(result.msg), traceback = self.redact(result.traceback) }
  self:record("stage.failed", { stage = stage.name, key = key, error = err, log_tail = tail_list(logs) })
  self:emit("stage.failed", { stage = stage.name, error = { code = err.code, msg = err.msg },
    log_tail = tail_list(logs) })
  self:deliveries()
  return nil, self:finish("failed", { reason = ("stage %s failed"):format(stage.name), stage = stage.name })
end

-- A selected stage not yet done in this run: gate, reuse or run, gate.
-- Returns its outputs, or nil and the outcome.
function Drive:run_stage(stage, key, inputs)
  local before, after = run.gates(self.phase, stage)
  local idle = stage.definition and stage.definition.nothing_to_do
  if before and idle and idle(inputs) then
    -- nothing to approve: the stage will do nothing (Publish with no crate to send)
    self.term.print(("stage %s has nothing to do: no approval asked"):format(stage.name))
    before = false
  end
  if before then
    local stop = self:pass_gate(stage, "before", nil)
    if stop then
      return nil, stop
    end
  end
  local ctx, logs = self:context(stage)
  local outputs = self:reusable(stage, key, ctx, inputs)
  if outputs ~= nil then
    self:record("stage.cached", { stage = stage.name, key = key, outputs = outputs })
    self:emit("stage.cached", { stage = stage.name })
  else
    local stop = self:check_health(stage, key, ctx, logs)
    if stop then
      return nil, stop
    end
    local outcome
    outputs, outcome = self:execute(stage, key, ctx, inputs, logs)
    if not outputs then
      return nil, outcome
    end
  end
  self.in_run[stage.name] = { state = "passed", key = key, outputs = outputs }
  if after and not self.job then -- a job leaves its after-gate to the next job
    local stop = self:pass_gate(stage, "after", outputs)
    if stop then
      return nil, stop
    end
  end
  return outputs
end

-- The stage at index I: skipped, reused from this run, or run. Returns nothing to
-- go on, or the outcome the run ends with.
function Drive:step(i, stage)
  if self.job and i < self.job.first then
    return self:earlier(stage)
  end
  local is_selected, why = self.selected(i)
  local inputs, missing = self:inputs(stage)
  local prior = self.in_run[stage.name]
  if missing and not is_selected then
    -- skipped, and so is whatever it would have needed: nothing to record but that
    if not (prior and prior.state == "skipped") then
      self:record("stage.skipped", { stage = stage.name, reason = why })
      self:emit("stage.skipped", { stage = stage.name, reason = why })
    end
    return
  end
  if missing then
    local giver = self.p:giver(missing, i)
    local msg = ("stage %s needs '%s' from stage %s, which was skipped and has no recorded outputs "
      .. "for its current key; run stage %s first"):format(stage.name, missing, giver and giver.name or "?",
      giver and giver.name or "?")
    self:record("stage.failed", { stage = stage.name, error = { code = "ENOINPUT", msg = msg } })
    self:emit("stage.failed", { stage = stage.name, error = { code = "ENOINPUT", msg = msg } })
    return self:finish("failed", { reason = msg })
  end
  local key = run.stage_key(stage, self.public, inputs, self.p.policy, self.p.declarations, self.root,
    run.key_facts(stage, self.root, self.values))
  local done_here = prior and (prior.state == "passed" or prior.state == "cached") and prior.key == key
  local outputs
  if done_here and self.job then
    self.term.print(("stage %s passed in run %s already: nothing to do"):format(stage.name, self.id))
  end
  if not is_selected then
    outputs = done_here and prior.outputs or self.cache[key]
    if not (prior and prior.state == "skipped" and prior.key == key) and not done_here then
      self:record("stage.skipped", { stage = stage.name, reason = why, key = key, outputs = outputs })
      self:emit("stage.skipped", { stage = stage.name, reason = why })
    end
  elseif done_here then
    outputs = prior.outputs
  else
    local outcome
    outputs, outcome = self:run_stage(stage, key, inputs)
    if outputs == nil then
      return outcome
    end
    if self.sync then
      -- others see each stage as it ends; a failure here is retried by the next push
      local ok, err = self.sync:push(self.writer)
      if not ok then
        self.term.print(("cdp: %s"):format(self.redact(err)))
      end
    end
  end
  for kind, v in pairs(outputs or {}) do
    self.artifacts[kind] = v
  end
  self:deliveries()
end

-- A stage before a job's first: the job before it ran it. Its outputs are taken as
-- recorded, not keyed again (that job had secrets this one has not), and passing
-- the gate after it is this job's. Nothing to go on, or the exit code.
function Drive:earlier(stage)
  local prior = self.in_run[stage.name]
  if not prior or not (prior.state == "passed" or prior.state == "cached"
      or (prior.state == "skipped" and prior.outputs ~= nil)) then
    self.term.print(("cdp: stage %s comes before this job's, and it has not passed in run %s (it is %s); "
      .. "its own job runs it (cdp status --run %s)"):format(stage.name, self.id, prior and prior.state or "pending",
      self.id))
    return "failed"
  end
  local _, after = run.gates(self.phase, stage)
  if after then
    local stop = self:pass_gate(stage, "after", prior.outputs)
    if stop then
      return stop
    end
  end
  for kind, v in pairs(prior.outputs or {}) do
    self.artifacts[kind] = v
  end
end

function Drive:body()
  for i, stage in ipairs(self.p.stages) do
    if self.job and i > self.job.last then
      return "done" -- this job's stages are done; the jobs after it go on
    end
    local outcome = self:step(i, stage)
    if outcome then
      return outcome
    end
  end
  return self:finish("done")
end

-- Drive the run R through its pipeline; returns its outcome. A typed error (a usage
-- error, or the world failing outside any stage: the journal cannot be written, the
-- disk is full) goes up to cdp.cli as it is, after the run is marked failed where
-- the journal still takes it; anything else is a bug, raised with its traceback.
local function drive(R)
  local D = new_drive(R)
  D:emit("run.started", { phase = D.phase, resumed = R.resumed or nil })
  local ok, outcome = xpcall(Drive.body, function(e)
    if errors.is(e) then
      return e
    end
    return { err = e, traceback = debug.traceback(tostring(e), 2) }
  end, D)
  if ok then
    return outcome
  end
  local signal = proc().interrupted()
  if signal then
    if D.current then
      D:record("stage.interrupted", { stage = D.current, signal = signal })
    end
    return D:finish("interrupted", { signal = signal, stage = D.current })
  end
  if errors.is(outcome) then
    if not errors.is_usage(outcome) then
      pcall(D.finish, D, "failed", { reason = outcome.msg, stage = D.current })
    end
    error(outcome, 0)
  end
  error(outcome.traceback, 0)
end

---------------------------------------------------------------------------
-- Entry points

local function is_tty()
  local P = proc()
  return P.isatty(0) and P.isatty(1)
end

-- Set up what every driven run needs, drive it, flush deliveries, unlock.
local function with_run(R)
  local P = proc()
  local notify = run.notify()
  R.term = notify.terminal { out = io.stdout, tty = P.isatty(1), clock = P.clock }
  R.interactive = R.interactive == nil and is_tty() or R.interactive
  local term_print = R.term.print
  R.term.print = function(text)
    term_print(R.redact(text))
  end
  R.alerts = notify.dispatcher {
    alerts = R.p.alerts,
    redact = R.redact,
    terminal = R.term,
    jsonl_write = function(path, line)
      if path:sub(1, 1) ~= "/" then
        path = R.root .. "/" .. path
      end
      fs.mkdir(fs.dirname(path), { parents = true, mode = "0700" })
      return fs.append(path, line, { mode = "0600" })
    end,
  }
  if P.trap_signals then
    P.trap_signals()
  end
  -- Every command a stage runs gets the allow-listed environment, marked with the run.
  local previous_env = P.child_env(require("cdp.secrets").child_policy(R.id, R.p.child_env))
  local ok, outcome = pcall(drive, R)
  P.child_env(previous_env)
  local failures = R.alerts.flush((R.p.alerts and R.p.alerts.flush) or 10)
  -- A journal that no longer takes entries has already failed the run; the
  -- deliveries' failures are then only shown.
  local recorded = pcall(function()
    for _, f in ipairs(failures) do
      R.writer:append("delivery.failed", f)
    end
  end)
  if R.sync and not R.sync.lost then
    local pushed, err = R.sync:push(R.writer)
    if not pushed then
      R.term.print(("cdp: %s"):format(R.redact(err)))
      if ok and outcome == "done" then
        outcome = "failed"
      end
    end
  end
  R.alerts.close()
  if #failures > 0 then
    R.term.print(("%d notification(s) could not be delivered%s"):format(#failures,
      recorded and (" (see cdp status %s)"):format(R.id) or ""))
  end
  R.lock:close()
  if not ok then
    error(outcome, 0)
  end
  return outcome
end

-- The run.started entry of run ID, with its options as OPTS gives them (secrets never).
local function started_entry(p, id, opts, effective, extra)
  local sets = {}
  for _, s in ipairs(opts.sets or {}) do
    if not (effective[s.key] and effective[s.key].secret) then
      sets[#sets + 1] = { key = s.key, value = s.value }
    end
  end
  local force = {}
  for name in pairs(opts.force or {}) do
    force[#force + 1] = name
  end
  table.sort(force)
  local fields = {
    run = id, pipeline = p.name, script = opts.script or json.null,
    phase = opts.phase or p.phase,
    time = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(proc().time())),
    options = json.object { from = opts.from, to = opts.to, only = opts.only, force = force,
      phase = opts.phase, sets = sets },
    settings = json.object(settings.public(effective)),
    stages = p:names(),
  }
  for k, v in pairs(extra or {}) do
    fields[k] = v
  end
  return fields
end

-- A new run folder under ROOT with its journal, or a world error naming the path; a
-- folder that could not be made whole is removed again (it recorded nothing).
local function new_run_folder(root, redact, first_entry)
  local ids = run.list(root)
  local id = run.new_id(ids[#ids])
  local dir = run.runs_dir(root) .. "/" .. id
  while fs.exists(dir) do
    id = run.new_id(id)
    dir = run.runs_dir(root) .. "/" .. id
  end
  local ok, err = pcall(function()
    local made, merr, mcode = fs.mkdir(dir .. "/logs", { parents = true, mode = "0700" })
    if not made then
      errors.world(("cannot make the run folder: %s"):format(merr), mcode)
    end
    local writer = journal.open(dir .. "/" .. journal.FILE, redact)
    local entry = first_entry(id)
    writer:append("run.started", entry)
    return writer
  end)
  if not ok then
    fs.remove(dir, { recursive = true })
    error(err, 0)
  end
  return id, dir, err
end

-- opts: script (what finds the pipeline again: an absolute path or a shipped name, see
-- cdp.script.locate), from, to, only, force (set of names), phase, sets (list of
-- {key,value}), interactive
function run.start(p, opts)
  local root = run.writable_root(opts)
  local effective = resolve_settings(p, opts.sets)
  local redact, _, keep = make_redactor(effective, p, root)
  local lock, err = run.lock(root, "run " .. p.name)
  if not lock then
    errors.world(err, "ELOCKED")
  end
  local ok, id, dir, writer = pcall(new_run_folder, root, redact, function(id)
    return started_entry(p, id, opts, effective)
  end)
  if not ok then
    lock:close()
    error(id, 0)
  end
  local R = { p = p, id = id, dir = dir, root = root, writer = writer, effective = effective, redact = redact,
    opts = opts, lock = lock, interactive = opts.interactive, keep_secret = keep }
  return with_run(R), id
end

-- Processes a killed run RUN_ID left running: { {pid, command} } by pid. Every
-- child of a run has CDP_RUN=<id> in its environment (cdp.secrets.child_policy),
-- and its own children inherit it.
function run.orphans(run_id)
  local found = {}
  local me = tostring(proc().pid())
  local marker = "\0CDP_RUN=" .. run_id .. "\0"
  for _, pid in ipairs(fs.list("/proc") or {}) do
    if pid:match("^%d+$") and pid ~= me then
      local env = fs.read("/proc/" .. pid .. "/environ")
      if env and ("\0" .. env):find(marker, 1, true) then
        local cmd = (fs.read("/proc/" .. pid .. "/cmdline") or ""):gsub("%z+$", ""):gsub("%z", " ")
        found[#found + 1] = { pid = tonumber(pid), command = cmd }
      end
    end
  end
  table.sort(found, function(a, b) return a.pid < b.pid end)
  return found
end

-- Re-load the pipeline a run was started with, and drive it again.
-- opts: root, interactive, load(script) -> pipeline
function run.resume(id, opts)
  local root = run.writable_root(opts)
  local found, err = run.find(id, root)
  if not found then
    errors.usage(err, "resume")
  end
  id = found
  local state, lerr = run.load(id, root)
  if not state then
    errors.world(("cannot read run %s: %s"):format(id, lerr))
  end
  if not state.run then
    errors.world(("run %s has no run.started entry in %s; start a new run"):format(id,
      run.runs_dir(root) .. "/" .. id .. "/" .. journal.FILE), "EJOURNAL")
  end
  if state.state == "done" then
    io.stdout:write(("run %s is already done\n"):format(id))
    return "done"
  end
  if type(state.script) ~= "string" then
    errors.world(("run %s does not record its pipeline script; start a new run"):format(id), "EJOURNAL")
  end
  local p = opts.load(state.script)
  local o = state.options or {}
  local force = {}
  for _, name in ipairs(o.force or {}) do
    force[name] = true
  end
  local options = { from = o.from, to = o.to, only = o.only, force = force, phase = o.phase or state.phase,
    sets = o.sets, script = state.script, interactive = opts.interactive }
  local effective = resolve_settings(p, options.sets)
  local redact, _, keep = make_redactor(effective, p, root)
  local lock, lockerr = run.lock(root, "resume " .. id)
  if not lock then
    errors.world(lockerr, "ELOCKED")
  end
  local dir = run.runs_dir(root) .. "/" .. id
  local ok, writer = pcall(function()
    local w = journal.open(dir .. "/" .. journal.FILE, redact)
    w:append("run.resumed", { run = id })
    return w
  end)
  if not ok then
    lock:close()
    error(writer, 0)
  end
  -- cdp's watchdog kills what a killed run started; name whatever outlived both.
  local orphans = run.orphans(id)
  if #orphans > 0 then
    local lines = {}
    for i, o in ipairs(orphans) do
      lines[i] = ("  pid %d: %s"):format(o.pid, redact(o.command))
    end
    io.stderr:write(("cdp: %d process(es) of run %s from before it stopped are still running; they may "
      .. "still write to its fork (kill them, or wait for them to end):\n%s\n"):format(#orphans, id,
      table.concat(lines, "\n")))
  end
  -- force applies to the first pass only: what was forced and passed stays
  local R = { p = p, id = id, dir = dir, root = root, writer = writer, effective = effective, redact = redact,
    opts = options, lock = lock, interactive = opts.interactive, resumed = true, keep_secret = keep }
  return with_run(R)
end

-- A job of a distributed run: stages OPTS.first..OPTS.last (indices) of run OPTS.id,
-- whose run folder the caller made from the remote state (cdp.runstate), or which
-- OPTS.new starts. opts: root, id, lock (held), sync (a runstate Sync at the state the
-- folder has), new, remote (where the state lives, for run.started), script, sets, phase,
-- force, approved (who approved this job's gates, or nil), interactive. Returns the outcome.
function run.job(p, opts)
  local root = opts.root
  local effective = resolve_settings(p, opts.sets)
  local redact, _, keep = make_redactor(effective, p, root)
  local dir = run.runs_dir(root) .. "/" .. opts.id
  errors.check(fs.mkdir(dir .. "/logs", { parents = true, mode = "0700" }))
  local writer = journal.open(dir .. "/" .. journal.FILE, redact)
  opts.sync.count = #writer.entries
  if opts.new then
    writer:append("run.started", started_entry(p, opts.id, opts, effective,
      { distributed = json.object { remote = opts.remote } }))
  end
  local first, last = p.stages[opts.first], p.stages[opts.last]
  local R = { p = p, id = opts.id, dir = dir, root = root, writer = writer, effective = effective, redact = redact,
    opts = { from = first.name, to = last.name, force = opts.force or {}, phase = opts.phase, sets = opts.sets },
    lock = opts.lock, interactive = opts.interactive, resumed = not opts.new or nil,
    keep_secret = keep, sync = opts.sync,
    job = { first = opts.first, last = opts.last, approved = opts.approved,
      who = require("cdp.runstate").job_identity() } }
  return with_run(R)
end

-- What a run would do, without doing it. Returns lines.
function run.dry_run(p, opts)
  local root = opts.root or run.root()
  local effective = resolve_settings(p, opts.sets)
  local public = settings.public(effective)
  local values = settings.values(effective)
  local selected = run.selection(p, opts)
  local cache = cache_index(root)
  local artifacts, unknown = {}, {}
  local lines = {}
  local phase = opts.phase or p.phase
  lines[#lines + 1] = ("pipeline %s, phase %d (%s), dry run:"):format(p.name, phase,
    pipeline.PHASES[phase])
  for i, stage in ipairs(p.stages) do
    local inputs, blind = {}, false
    for _, kind in ipairs(stage.needs) do
      if unknown[kind] then
        blind = true
      end
      inputs[kind] = artifacts[kind]
    end
    local key = not blind and run.stage_key(stage, public, inputs, p.policy, p.declarations, root,
      run.key_facts(stage, root, values)) or nil
    local is_selected, why = selected(i)
    local what
    local outputs = key and cache[key]
    if not is_selected then
      what = "skip (" .. why .. ")" .. (outputs == nil and ", no recorded outputs" or "")
    elseif outputs ~= nil and not (opts.force and opts.force[stage.name]) then
      what = "cached"
    else
      what = blind and "run (inputs not known until earlier stages run)" or "run"
      outputs = nil
    end
    local before, after = run.gates(phase, stage)
    if is_selected and before then
      what = "approve, then " .. what
    end
    if is_selected and after then
      what = what .. ", then approve"
    end
    lines[#lines + 1] = ("  %d. %-12s %s"):format(i, stage.name, what)
    for _, kind in ipairs(stage.gives) do
      if outputs ~= nil then
        artifacts[kind], unknown[kind] = outputs[kind], nil
      else
        artifacts[kind], unknown[kind] = nil, true
      end
    end
  end
  -- What the release would be: each selected stage that can say (its `preview`) says it
  -- from the repository as it is, writing nothing, in stage order.
  local ctx = { root = root, settings = values, policy = p.policy, shared = {}, log = function() end }
  local header = false
  for i, stage in ipairs(p.stages) do
    local preview = stage.definition and stage.definition.preview
    if preview and selected(i) then
      if not header then
        lines[#lines + 1] = "what the run would do:"
        header = true
      end
      local ok, got = pcall(preview, ctx)
      if not ok then
        lines[#lines + 1] = ("  %s: cannot tell: %s"):format(stage.name, tostring(got))
        break
      end
      for _, l in ipairs(got) do
        lines[#lines + 1] = "  " .. l
      end
    end
  end
  return lines
end

-- The health checks of every stage, with the values of the settings.
local function check_all(p, root, values, redact)
  local all_ok, lines = true, {}
  for _, stage in ipairs(p.stages) do
    local ctx = { run = nil, root = root, stage = stage.name, pipeline = p.name, settings = values, policy = p.policy,
      log = function(...) end }
    if #stage.checks == 0 then
      lines[#lines + 1] = ("- %s: no health checks"):format(stage.name)
    end
    for _, check in ipairs(stage.checks) do
      local ok, healthy, reason = pcall(check.check, ctx)
      if ok and healthy == true then
        lines[#lines + 1] = ("✓ %s: %s"):format(stage.name, check.name)
      else
        all_ok = false
        local why = not ok and tostring(healthy) or tostring(reason or ("it returned " .. tostring(healthy)))
        lines[#lines + 1] = redact(("✗ %s: %s: %s"):format(stage.name, check.name, why))
      end
    end
  end
  return all_ok, lines
end

-- Every health check of every stage. Returns ok, lines.
function run.check(p, opts)
  local root = opts.root or run.root()
  local effective = resolve_settings(p, opts.sets)
  local redact = make_redactor(effective, p, root)
  local values = settings.values(effective)
  local P = proc()
  local previous_env = P.child_env(require("cdp.secrets").child_policy(nil, p.child_env))
  local ok, all_ok, lines = pcall(check_all, p, root, values, redact)
  P.child_env(previous_env)
  if not ok then
    error(all_ok, 0)
  end
  return all_ok, lines
end

return run
