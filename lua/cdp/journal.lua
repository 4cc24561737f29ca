-- The run journal: .cdp/runs/<run-id>/journal.ndjson, one JSON object per
-- line, appended with O_APPEND and fsync, never rewritten. Everything cdp
-- knows about a run is derived from it (journal.derive), so a crash or a
-- SIGKILL loses nothing that was recorded.
--
-- Torn writes: a kill in the middle of an append leaves a last line without
-- its newline. Readers ignore any line that is not a whole JSON object, and
-- the writer first ends such a fragment with a newline, so the next entry
-- starts on a line of its own.
--
-- Entries (all have `seq` and `event`):
--   run.started   {run, pipeline, script, phase, time, options, settings, stages, distributed?}
--   run.resumed   {run}
--   stage.started {stage, key, job?}       stage.passed {stage, key, outputs}
--   stage.cached  {stage, key, outputs}   stage.skipped {stage, reason, key?, outputs?}
--   stage.failed  {stage, key, error = {code, msg, traceback, check?}, log_tail}
--   stage.interrupted {stage, signal}
--   approval.needed {stage, when, summary?}  approval.granted / approval.rejected {stage, when, user, time, note}
--   delivery.failed {id, sink, about (the event), stage?, error, code, attempts, status?}
--   run.finished {}  run.failed {reason}  run.interrupted {signal}  run.paused {reason}
local errors = require "cdp.errors"
local json = require "cdp.json"

local journal = {}

journal.FILE = "journal.ndjson"

-- Parse journal TEXT into a list of entries; a torn or garbled line is skipped
-- and counted (second result).
function journal.parse(text)
  local entries, torn = {}, 0
  local pos = 1
  while pos <= #text do
    local nl = text:find("\n", pos, true)
    local line
    if nl then
      line = text:sub(pos, nl - 1)
      pos = nl + 1
    else
      line = text:sub(pos) -- no newline: the write was cut short
      pos = #text + 1
    end
    if line ~= "" then
      local entry = nl and json.decode(line)
      if type(entry) == "table" and type(entry.event) == "string" then
        entries[#entries + 1] = entry
      else
        torn = torn + 1
      end
    end
  end
  return entries, torn
end

function journal.read(path)
  local fs = require "cdp.fs"
  local text, err, code = fs.read(path)
  if not text then
    return nil, err, code
  end
  return journal.parse(text)
end

-- A journal open for appending. REDACT (a function) is applied to every entry.
-- A journal that cannot be read or written raises a world error (cdp.errors) that
-- names it: a run whose journal does not take entries cannot go on.
local Writer = { __name = "cdp.journal.Writer" }
Writer.__index = Writer

local function unwritable(path, err, code)
  errors.world(("cannot record the run in its journal: %s"):format(err or path), code)
end

function journal.open(path, redact)
  local fs = require "cdp.fs"
  local entries = {}
  if fs.exists(path) then
    local text, rerr, rcode = fs.read(path)
    if not text then
      errors.world(("cannot read the run's journal: %s"):format(rerr), rcode)
    end
    entries = journal.parse(text)
    if #text > 0 and text:sub(-1) ~= "\n" then
      local ok, err, code = fs.append(path, "\n", { mode = "0600" })
      if not ok then
        unwritable(path, err, code)
      end
    end
  end
  local seq = 0
  for _, e in ipairs(entries) do
    if math.type(e.seq) == "integer" or (type(e.seq) == "number") then
      seq = math.max(seq, math.tointeger(e.seq) or 0)
    end
  end
  return setmetatable({ path = path, entries = entries, seq = seq, redact = redact or function(v) return v end }, Writer)
end

-- Append ENTRY (event name plus fields); returns the entry as written.
function Writer:append(event, fields)
  local fs = require "cdp.fs"
  local entry = {}
  for k, v in pairs(fields or {}) do
    entry[k] = v
  end
  entry.event = event
  self.seq = self.seq + 1
  entry.seq = self.seq
  entry = self.redact(entry)
  local line = json.encode(entry) .. "\n"
  local ok, err, code = fs.append(self.path, line, { mode = "0600" }) -- private: runs' settings and errors
  if not ok then
    unwritable(self.path, err, code)
  end
  -- keep what readers will see: the decoded form
  self.entries[#self.entries + 1] = json.decode(line)
  return entry
end

-- Derive the state of a run from its ENTRIES:
-- { run, pipeline, script, phase, state, options, settings,
--   stages = { {name, state, outputs, key, error, log_tail, approval} ... },
--   pending_approval = {stage, when, summary?} | nil, deliveries_failed = n }
-- Stage order is the order of run.started's `stages`.
function journal.derive(entries)
  local st = { stages = {}, state = "pending", deliveries_failed = 0 }
  local by_name = {}
  local function stage(name)
    local s = by_name[name]
    if not s then
      s = { name = name, state = "pending" }
      by_name[name] = s
      st.stages[#st.stages + 1] = s
    end
    return s
  end
  local gates = {} -- "stage/when" -> "needed" | "granted" | "rejected"
  local before_gate = {} -- stage state before it awaited approval
  for _, e in ipairs(entries) do
    local ev = e.event
    if ev == "run.started" then
      st.run, st.pipeline, st.script, st.phase = e.run, e.pipeline, e.script, e.phase
      st.options, st.settings, st.time = e.options, e.settings, e.time
      st.distributed = e.distributed -- {remote}: a run whose state is on a remote (cdp stage)
      st.state = "running"
      for _, name in ipairs(e.stages or {}) do
        stage(name)
      end
    elseif ev == "run.resumed" then
      st.state = "running"
    elseif ev == "run.finished" then
      st.state = "done"
    elseif ev == "run.failed" then
      st.state = "failed"
      st.reason = e.reason
    elseif ev == "run.interrupted" then
      st.state = "interrupted"
    elseif ev == "run.paused" then
      st.state = "awaiting-approval"
    elseif ev == "delivery.failed" then
      st.deliveries_failed = st.deliveries_failed + 1
    elseif e.stage then
      local s = stage(e.stage)
      if ev == "stage.started" then
        s.state, s.key, s.error, s.log_tail = "running", e.key, nil, nil
      elseif ev == "stage.passed" or ev == "stage.cached" then
        s.state = ev == "stage.passed" and "passed" or "cached"
        s.key, s.outputs, s.error, s.log_tail = e.key, e.outputs, nil, nil
      elseif ev == "stage.skipped" then
        s.state, s.key, s.outputs, s.reason = "skipped", e.key, e.outputs, e.reason
      elseif ev == "stage.failed" then
        s.state, s.key, s.error, s.log_tail = "failed", e.key or s.key, e.error, e.log_tail
      elseif ev == "stage.interrupted" then
        s.state = "interrupted"
      elseif ev == "approval.needed" then
        local g = e.stage .. "/" .. e.when
        gates[g] = "needed"
        if s.state ~= "awaiting-approval" then
          before_gate[e.stage] = s.state
        end
        s.state = "awaiting-approval"
        st.pending_approval = { stage = e.stage, when = e.when, summary = e.summary }
      elseif ev == "approval.granted" or ev == "approval.rejected" then
        local g = e.stage .. "/" .. e.when
        local granted = ev == "approval.granted"
        gates[g] = granted and "granted" or "rejected"
        s.approvals = s.approvals or {}
        s.approvals[#s.approvals + 1] = { when = e.when, decision = granted and "approved" or "rejected",
          user = e.user, time = e.time, note = e.note }
        if granted then
          if s.state == "awaiting-approval" then
            s.state = before_gate[e.stage] or "pending"
          end
        else
          s.state = "failed"
          s.error = { code = "EREJECTED", msg = ("rejected by %s%s"):format(e.user or "?", e.note and (": " .. e.note) or "") }
        end
        if st.pending_approval and st.pending_approval.stage == e.stage and st.pending_approval.when == e.when then
          st.pending_approval = nil
        end
      end
    end
  end
  -- A run whose last stage started and never ended was killed.
  if st.state == "running" then
    for _, s in ipairs(st.stages) do
      if s.state == "running" then
        st.current = s.name
      end
    end
  end
  st.gates = gates
  return st
end

-- The public view of a derived state, as `cdp status --json` prints it.
function journal.status(st)
  local stages = {}
  for i, s in ipairs(st.stages) do
    stages[i] = {
      name = s.name,
      state = s.state,
      outputs = s.outputs or json.null,
      error = s.error and { code = s.error.code, msg = s.error.msg, check = s.error.check } or nil,
      approvals = s.approvals,
    }
  end
  return { run = st.run, pipeline = st.pipeline, state = st.state, stages = stages }
end

-- Outputs recorded for stage keys across journals: key -> outputs.
function journal.index(entry_lists)
  local index = {}
  for _, entries in ipairs(entry_lists) do
    for _, e in ipairs(entries) do
      if (e.event == "stage.passed" or e.event == "stage.cached") and e.key and e.outputs ~= nil then
        index[e.key] = e.outputs
      end
    end
  end
  return index
end

return journal
