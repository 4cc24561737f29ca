-- The runner: takes a checked pipeline through a run, recording every step
-- in the run journal before and after it happens.
--
--   run.start(pipeline, opts)  a new run   -> exit code, run id
--   run.resume(run_id, opts)   continue one -> exit code
--   run.dry_run(pipeline, opts) what would happen, nothing written
--   run.check(pipeline, opts)  every health check, no stage runs
--
-- Resumption and SIGKILL: a stage is recorded as started before it runs and
-- as passed (with its outputs) after; anything else is derived. A stage that
-- started and never ended is run again (stages are idempotent by contract);
-- a stage that passed in this run with the same key is not. So a run killed
-- at any moment and resumed ends in the state of a run never killed.
local fs = require "cdp.fs"
local json = require "cdp.json"
local journal = require "cdp.journal"
local settings = require "cdp.settings"
local cli = require "cdp.cli"

local run = {}

local EXIT = cli.EXIT

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

-- The repository root above the current directory, or the current directory.
function run.root()
  local cwd = assert(fs.cwd())
  local dir = cwd
  while true do
    if fs.exists(dir .. "/.git") then
      return dir
    end
    local parent = fs.dirname(dir)
    if parent == dir then
      return cwd
    end
    dir = parent
  end
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
  for _, name in ipairs(assert(fs.list(dir))) do
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
-- is left alone). Returns the directory.
function run.cdp_dir(root)
  local dir = root .. "/.cdp"
  assert(fs.mkdir(dir, { parents = true }))
  local path = dir .. "/.gitignore"
  local current = fs.read(path)
  if current == nil or current == OLD_GITIGNORE then
    assert(fs.write(path, run.GITIGNORE))
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
    return nil, err
  end
  return lock
end

---------------------------------------------------------------------------
-- Stage keys

local code_hashes = setmetatable({}, { __mode = "k" })
local function code_hash(stage)
  local h = code_hashes[stage]
  if not h then
    h = fs.sha256(require("cdp.pipeline").code(stage))
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
-- only), the code of the modules those settings name, its inputs, and for a stage
-- that uses the pipeline's policy (Version), the policy's fingerprint: editing the
-- policy must plan again. DECLARATIONS: the pipeline's (for settings a stage reads
-- but another declares).
function run.stage_key(stage, public_settings, inputs, policy, declarations)
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
    policy = stage.uses_policy and fs.sha256(require("cdp.pipeline").fingerprint(policy)) or nil,
  })
end

---------------------------------------------------------------------------
-- Selection: --from, --to, --only

function run.selection(p, opts)
  local lo, hi = 1, #p.stages
  local function index(name, flag)
    local s = p.by_name[name]
    if not s then
      cli.usage_error(("%s: no stage '%s' in pipeline %s (stages: %s)"):format(flag, name, p.name,
        table.concat(p:names(), ", ")))
    end
    return s.index
  end
  if opts.only then
    if opts.from or opts.to then
      cli.usage_error("--only cannot be combined with --from or --to")
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
    cli.usage_error(("--from %s comes after --to %s"):format(opts.from, opts.to))
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
    cli.usage_error(err)
  end
  return effective
end

-- One redactor for everything the run writes: secret settings, secrets in
-- alert sinks (webhook secrets, Slack URLs, which are credentials), and
-- environment variables named like secrets.
local function make_redactor(effective, p)
  local values = settings.secret_values(effective)
  for _, spec in pairs(p.alerts and p.alerts.sinks or {}) do
    for field, v in pairs(spec) do
      if settings.is_secret_marker(v) then
        values[#values + 1] = os.getenv(v.env) or v.default
      elseif field == "slack" and type(v) == "string" then
        values[#values + 1] = v
      end
    end
  end
  return run.notify().redactor(values)
end

---------------------------------------------------------------------------
-- The drive: one pass over the stages.

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

-- Prompt on the terminal for a gate. Returns "approve", "reject" or nil (EOF).
local function prompt(term, stage, when, outputs, redact)
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

-- R: the run being driven: { p, id, dir, root, writer, state, effective,
-- redact, opts, alerts, term, interactive }
local function drive(R)
  local p, writer, opts = R.p, R.writer, R.opts
  local P = proc()
  local selected = run.selection(p, opts)
  local public = settings.public(R.effective)
  local values = settings.values(R.effective)
  local cache = cache_index(R.root)
  local derived = journal.derive(writer.entries)
  local gates = derived.gates
  local in_run = {}
  for _, s in ipairs(derived.stages) do
    in_run[s.name] = s
  end
  local phase = opts.phase or p.phase
  local base = { run = R.id, pipeline = p.name }
  -- The stages this run runs, by name: a stage may check early for a later one
  -- (Validate checks the forge and registry when Merge and Publish will run).
  local running = {}
  for i, stage in ipairs(p.stages) do
    if selected(i) then
      running[stage.name] = stage
    end
  end

  local function emit(event, fields)
    local ev = {}
    for k, v in pairs(base) do
      ev[k] = v
    end
    for k, v in pairs(fields or {}) do
      ev[k] = v
    end
    ev.event = event
    R.alerts.emit(ev)
  end
  local function record(event, fields)
    return writer:append(event, fields)
  end
  local function deliveries()
    for _, f in ipairs(R.alerts.poll()) do
      record("delivery.failed", f)
    end
  end

  local function finish(state, fields)
    if state == "done" then
      record("run.finished", {})
      emit("run.finished", {})
      return EXIT.ok
    elseif state == "paused" then
      record("run.paused", fields)
      return EXIT.approval
    elseif state == "interrupted" then
      record("run.interrupted", fields)
      emit("run.failed", { reason = "interrupted by " .. tostring(fields.signal) })
      return EXIT.failed
    end
    record("run.failed", fields)
    emit("run.failed", fields)
    return EXIT.failed
  end

  -- A gate: "ok", "paused" or "rejected".
  local function gate(stage, when, outputs)
    local g = stage.name .. "/" .. when
    if gates[g] == "granted" then
      return "ok"
    end
    if R.interactive then
      local answer = prompt(R.term, stage, when, outputs, R.redact)
      if answer then
        local decision = answer == "approve" and "approval.granted" or "approval.rejected"
        record(decision, { stage = stage.name, when = when, user = P.user() or "?",
          time = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(P.time())), note = "on the terminal" })
        gates[g] = answer == "approve" and "granted" or "rejected"
        return answer == "approve" and "ok" or "rejected"
      end
    end
    if gates[g] ~= "needed" then
      record("approval.needed", { stage = stage.name, when = when })
      gates[g] = "needed"
      emit("approval.needed", { stage = stage.name, when = when })
    else
      R.term.print(("still awaiting approval %s stage %s: cdp approve %s"):format(when, stage.name, R.id))
    end
    return "paused"
  end

  emit("run.started", { phase = phase, resumed = R.resumed or nil })

  local artifacts = {}
  local current -- the stage running now, for interrupts
  local function body()
    for i, stage in ipairs(p.stages) do
      local inputs = {}
      local is_selected, why = selected(i)
      local missing
      for _, kind in ipairs(stage.needs) do
        if artifacts[kind] == nil then
          missing = kind
        end
        inputs[kind] = artifacts[kind]
      end
      if missing and not is_selected then
        -- skipped, and so is whatever it would have needed: nothing to record but that
        if not (in_run[stage.name] and in_run[stage.name].state == "skipped") then
          record("stage.skipped", { stage = stage.name, reason = why })
          emit("stage.skipped", { stage = stage.name, reason = why })
        end
        goto continue
      end
      for _, kind in ipairs(stage.needs) do
        if artifacts[kind] == nil then
          local giver = p:giver(kind, i)
          local msg = ("stage %s needs '%s' from stage %s, which was skipped and has no recorded outputs "
            .. "for its current key; run stage %s first"):format(stage.name, kind, giver and giver.name or "?",
            giver and giver.name or "?")
          record("stage.failed", { stage = stage.name, error = { code = "ENOINPUT", msg = msg } })
          emit("stage.failed", { stage = stage.name, error = { code = "ENOINPUT", msg = msg } })
          return finish("failed", { reason = msg })
        end
        inputs[kind] = artifacts[kind]
      end
      local key = run.stage_key(stage, public, inputs, p.policy, p.declarations)
      local prior = in_run[stage.name]
      local done_here = prior and (prior.state == "passed" or prior.state == "cached") and prior.key == key
      local outputs

      if not is_selected then
        outputs = done_here and prior.outputs or cache[key]
        if not (prior and prior.state == "skipped" and prior.key == key) and not done_here then
          record("stage.skipped", { stage = stage.name, reason = why, key = key, outputs = outputs })
          emit("stage.skipped", { stage = stage.name, reason = why })
        end
      elseif done_here then
        outputs = prior.outputs
      else
        local before, after = run.gates(phase, stage)
        if before then
          local g = gate(stage, "before", nil)
          if g == "paused" then
            return finish("paused", { reason = "approval", stage = stage.name, when = "before" })
          elseif g == "rejected" then
            return finish("failed", { reason = ("rejected before stage %s"):format(stage.name) })
          end
        end
        local forced = opts.force and opts.force[stage.name]
        local logs = {}
        local log_path = R.dir .. "/logs/" .. stage.name .. ".log"
        local ctx = {
          run = R.id, run_dir = R.dir, root = R.root, stage = stage.name, pipeline = p.name, phase = phase,
          settings = values, policy = p.policy, running = running,
          -- The run's start (UTC, ISO 8601) as its journal records it once: the release
          -- date a changelog shows, the same when the run is resumed days later.
          started = derived.time,
        }
        function ctx.log(...)
          local parts = {}
          for k = 1, select("#", ...) do
            parts[k] = tostring((select(k, ...)))
          end
          local text = R.redact(table.concat(parts, " "))
          for line in (text .. "\n"):gmatch("(.-)\n") do
            logs[#logs + 1] = line
            if #logs > 40 then
              table.remove(logs, 1)
            end
            assert(fs.append(log_path, line .. "\n"))
            R.term.log(stage.name, line)
          end
        end

        local cached
        if not forced then
          cached = cache[key]
        end
        if cached ~= nil and stage.verify then
          local ok, holds, reason = pcall(stage.verify, ctx, cached, inputs)
          if not (ok and holds) then
            R.term.print(("stage %s: recorded outputs no longer hold (%s); running it again")
              :format(stage.name, R.redact(tostring(ok and reason or holds))))
            cached = nil
          end
        end
        if cached ~= nil then
          outputs = cached
          record("stage.cached", { stage = stage.name, key = key, outputs = outputs })
          emit("stage.cached", { stage = stage.name })
        else
          -- health checks, then the stage itself
          for _, check in ipairs(stage.checks) do
            local ok, healthy, reason = pcall(check.check, ctx)
            if not ok or healthy ~= true then
              if not ok and P.interrupted() then
                error(healthy, 0)
              end
              local why_not = not ok and tostring(healthy) or tostring(reason or "it returned " .. tostring(healthy))
              local err = { code = "EHEALTH", check = check.name,
                msg = ("health check '%s' failed: %s"):format(check.name, why_not) }
              record("stage.failed", { stage = stage.name, key = key, error = err, log_tail = tail_list(logs) })
              emit("stage.failed", { stage = stage.name, error = err })
              return finish("failed", { reason = err.msg, stage = stage.name })
            end
          end
          assert(fs.mkdir(R.dir .. "/logs", { parents = true }))
          record("stage.started", { stage = stage.name, key = key })
          emit("stage.started", { stage = stage.name })
          current = stage.name
          local ok, result = xpcall(stage.run, function(e)
            -- the stage's own frames; the engine's below them say nothing new
            local tb = debug.traceback(nil, 2):gsub("\n\t%[C%]: in function 'xpcall'.*$", "")
            return stage_error(stage.name, e, tb)
          end, ctx, inputs)
          if ok then
            if result == nil and #stage.gives == 0 then
              result = {}
            end
            local problem
            if type(result) ~= "table" then
              problem = ("returned %s, not a table of outputs"):format(type(result))
            else
              for _, kind in ipairs(stage.gives) do
                if result[kind] == nil then
                  problem = ("did not give '%s'"):format(kind)
                  break
                end
              end
              if not problem then
                for kind in pairs(result) do
                  local declared = false
                  for _, g in ipairs(stage.gives) do
                    declared = declared or g == kind
                  end
                  if not declared then
                    problem = ("returned '%s', which it does not declare in gives"):format(tostring(kind))
                    break
                  end
                end
              end
              if not problem then
                local enc_ok, text = pcall(json.encode, json.object(result))
                if enc_ok then
                  result = json.decode(text)
                else
                  problem = "outputs are not serialisable: " .. tostring(text)
                end
              end
            end
            if problem then
              ok = false
              result = setmetatable({ stage = stage.name, code = "EOUTPUT", msg = problem }, StageError)
            end
          end
          current = nil
          if not ok then
            local signal = P.interrupted()
            if signal then
              record("stage.interrupted", { stage = stage.name, signal = signal })
              emit("stage.interrupted", { stage = stage.name, reason = "by " .. signal })
              return finish("interrupted", { signal = signal, stage = stage.name })
            end
            local err = { code = result.code, msg = R.redact(result.msg), traceback = R.redact(result.traceback) }
            record("stage.failed", { stage = stage.name, key = key, error = err, log_tail = tail_list(logs) })
            emit("stage.failed", { stage = stage.name, error = { code = err.code, msg = err.msg },
              log_tail = tail_list(logs) })
            deliveries()
            return finish("failed", { reason = ("stage %s failed"):format(stage.name), stage = stage.name })
          end
          outputs = result
          record("stage.passed", { stage = stage.name, key = key, outputs = outputs })
          emit("stage.passed", { stage = stage.name })
        end
        in_run[stage.name] = { state = "passed", key = key, outputs = outputs }
        if after then
          local g = gate(stage, "after", outputs)
          if g == "paused" then
            return finish("paused", { reason = "approval", stage = stage.name, when = "after" })
          elseif g == "rejected" then
            return finish("failed", { reason = ("outputs of stage %s rejected"):format(stage.name) })
          end
        end
      end
      for kind, v in pairs(outputs or {}) do
        artifacts[kind] = v
      end
      deliveries()
      ::continue::
    end
    return finish("done")
  end

  local ok, code = xpcall(body, function(e)
    if getmetatable(e) and getmetatable(e).__name == "cdp.UsageError" then
      return e
    end
    return { err = e, traceback = debug.traceback(tostring(e), 2) }
  end)
  if ok then
    return code
  end
  if getmetatable(code) and getmetatable(code).__name == "cdp.UsageError" then
    error(code, 0)
  end
  local signal = P.interrupted()
  if signal then
    if current then
      record("stage.interrupted", { stage = current, signal = signal })
    end
    return finish("interrupted", { signal = signal, stage = current })
  end
  error(code.traceback, 0)
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
      fs.mkdir(fs.dirname(path), { parents = true })
      return fs.append(path, line)
    end,
  }
  if P.trap_signals then
    P.trap_signals()
  end
  local ok, code = pcall(drive, R)
  local failures = R.alerts.flush((R.p.alerts and R.p.alerts.flush) or 10)
  for _, f in ipairs(failures) do
    R.writer:append("delivery.failed", f)
  end
  R.alerts.close()
  if #failures > 0 then
    R.term.print(("%d notification(s) could not be delivered (see cdp status %s)"):format(#failures, R.id))
  end
  R.lock:close()
  if not ok then
    error(code, 0)
  end
  return code
end

-- opts: script (what finds the pipeline again: an absolute path or a shipped name, see
-- cdp.script.locate), from, to, only, force (set of names), phase, sets (list of
-- {key,value}), interactive
function run.start(p, opts)
  local root = opts.root or run.root()
  local effective = resolve_settings(p, opts.sets)
  local redact = make_redactor(effective, p)
  local lock, err = run.lock(root, "run " .. p.name)
  if not lock then
    io.stderr:write("cdp: ", err, "\n")
    return EXIT.failed
  end
  local ids = run.list(root)
  local id = run.new_id(ids[#ids])
  local dir = run.runs_dir(root) .. "/" .. id
  while fs.exists(dir) do
    id = run.new_id(id)
    dir = run.runs_dir(root) .. "/" .. id
  end
  assert(fs.mkdir(dir .. "/logs", { parents = true }))
  local writer = assert(journal.open(dir .. "/" .. journal.FILE, redact))
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
  writer:append("run.started", {
    run = id, pipeline = p.name, script = opts.script or json.null,
    phase = opts.phase or p.phase,
    time = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(proc().time())),
    options = json.object { from = opts.from, to = opts.to, only = opts.only, force = force,
      phase = opts.phase, sets = sets },
    settings = json.object(settings.public(effective)),
    stages = p:names(),
  })
  local R = { p = p, id = id, dir = dir, root = root, writer = writer, effective = effective, redact = redact,
    opts = opts, lock = lock, interactive = opts.interactive }
  return with_run(R), id
end

-- Re-load the pipeline a run was started with, and drive it again.
-- opts: root, interactive, load(script) -> pipeline
function run.resume(id, opts)
  local root = opts.root or run.root()
  local found, err = run.find(id, root)
  if not found then
    cli.usage_error(err, "resume")
  end
  id = found
  local state = run.load(id, root)
  if not state or not state.run then
    io.stderr:write(("cdp: run %s has no run.started entry; start a new run\n"):format(id))
    return EXIT.failed
  end
  if state.state == "done" then
    io.stdout:write(("run %s is already done\n"):format(id))
    return EXIT.ok
  end
  if type(state.script) ~= "string" then
    io.stderr:write(("cdp: run %s does not record its pipeline script\n"):format(id))
    return EXIT.failed
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
  local redact = make_redactor(effective, p)
  local lock, lerr = run.lock(root, "resume " .. id)
  if not lock then
    io.stderr:write("cdp: ", lerr, "\n")
    return EXIT.failed
  end
  local dir = run.runs_dir(root) .. "/" .. id
  local writer = assert(journal.open(dir .. "/" .. journal.FILE, redact))
  writer:append("run.resumed", { run = id })
  -- force applies to the first pass only: what was forced and passed stays
  local R = { p = p, id = id, dir = dir, root = root, writer = writer, effective = effective, redact = redact,
    opts = options, lock = lock, interactive = opts.interactive, resumed = true }
  return with_run(R)
end

-- What a run would do, without doing it. Returns lines.
function run.dry_run(p, opts)
  local root = opts.root or run.root()
  local effective = resolve_settings(p, opts.sets)
  local public = settings.public(effective)
  local selected = run.selection(p, opts)
  local cache = cache_index(root)
  local artifacts, unknown = {}, {}
  local lines = {}
  local phase = opts.phase or p.phase
  lines[#lines + 1] = ("pipeline %s, phase %d (%s), dry run:"):format(p.name, phase,
    require("cdp.pipeline").PHASES[phase])
  for i, stage in ipairs(p.stages) do
    local inputs, blind = {}, false
    for _, kind in ipairs(stage.needs) do
      if unknown[kind] then
        blind = true
      end
      inputs[kind] = artifacts[kind]
    end
    local key = not blind and run.stage_key(stage, public, inputs, p.policy, p.declarations) or nil
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
  return lines
end

-- Every health check of every stage. Returns ok, lines.
function run.check(p, opts)
  local root = opts.root or run.root()
  local effective = resolve_settings(p, opts.sets)
  local redact = make_redactor(effective, p)
  local values = settings.values(effective)
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

return run
