-- cdp status [RUN] [--json]: the state of a run, derived from its journal.
local cli = require "cdp.cli"
local json = require "cdp.json"

local command = {
  summary = "show the state of a run (default: the newest)",
  usage = "cdp status [RUN | --run ID] [--json]",
  help = [[
States of a run: running, done, failed, interrupted, awaiting-approval.
States of a stage: pending, running, passed, cached, failed, skipped,
interrupted, awaiting-approval. A run whose journal says "running" while no
cdp process holds the repository's lock was killed: it shows as interrupted,
and cdp resume RUN continues it.

--run ID reads distributed run ID from the remote (refs/cdp/runs/ID on origin, or on
the remote CDP_REMOTE names), as its CI jobs left it.

--json prints {"run", "state", "stages": [{"name", "state", "outputs"}]}.
RUN may be a whole id, a unique prefix or "last" (the default).

Examples:
  cdp status                    the newest run: each stage's state, and what to do next
  cdp status 20261201T1030      one run by a prefix of its id
  cdp status --run 4242-1       a run of CI jobs, read from the remote
  cdp status --json | jq '.stages[] | select(.state == "failed")']],
}

-- The derived state, corrected for a run that was killed: its journal ends
-- mid-run and nobody holds the lock.
function command.state(id, root)
  local run = require "cdp.run"
  local journal = require "cdp.journal"
  local st, err = run.load(id, root)
  if not st then
    return nil, err
  end
  if st.state == "running" then
    local lock = run.lock(root, "status")
    if lock then
      lock:close()
      st.state = "interrupted"
      for _, s in ipairs(st.stages) do
        if s.state == "running" then
          s.state = "interrupted"
        end
      end
    end
  end
  return journal.status(st), st
end

-- The state of distributed run ID as its remote has it (refs/cdp/runs/ID).
function command.remote_state(id, root)
  local journal = require "cdp.journal"
  local runstate = require "cdp.runstate"
  local stage = require "cdp.commands.stage"
  local store, err = runstate.open(stage.env_store_options(root))
  if not store then
    return nil, err
  end
  local head, found = stage.find_state(store, id)
  if not head then
    store:close()
    return nil, head == false and ("no run %s on %s (%s)"):format(id, store.url, runstate.ref(id)) or found
  end
  local snap, rerr = store:read(head)
  store:close()
  if not snap then
    return nil, rerr
  end
  local st = journal.derive(snap.entries)
  -- a running stage names the job that claimed it
  for _, s in ipairs(st.stages) do
    if s.state == "running" then
      for _, e in ipairs(snap.entries) do
        if e.event == "stage.started" and e.stage == s.name then
          s.job = e.job
        end
      end
    end
  end
  return journal.status(st), st
end

function command.run(args)
  local run = require "cdp.run"
  local o, positional = require("cdp.commands.run").parse(args, { ["--json"] = "flag", ["--run"] = "value" }, "status")
  if #positional > 1 or (o.run and #positional > 0) then
    cli.usage_error("cdp status takes at most one RUN (or --run ID)", "status")
  end
  local root = run.root()
  local status, st
  if o.run then
    status, st = command.remote_state(o.run, root)
  else
    local id, err = run.find(positional[1], root)
    if not id then
      cli.usage_error(err, "status")
    end
    status, st = command.state(id, root)
  end
  if not status then
    io.stderr:write("cdp: ", tostring(st), "\n")
    return cli.EXIT.failed
  end
  if o.json then
    io.stdout:write(json.encode(status, { indent = "  " }), "\n")
    return cli.EXIT.ok
  end
  local out = {}
  out[#out + 1] = ("run %s  pipeline %s  %s"):format(status.run, status.pipeline or "?", status.state)
  for i, s in ipairs(status.stages) do
    local line = ("  %-12s %s"):format(s.name, s.state)
    local job = st.stages[i] and st.stages[i].job
    if job then
      line = line .. "  in " .. require("cdp.runstate").describe_job(job) .. " since " .. tostring(job.time or "?")
    end
    if s.error then
      line = line .. "  " .. tostring(s.error.msg)
    end
    out[#out + 1] = line
    for _, a in ipairs(s.approvals or {}) do
      out[#out + 1] = ("      %s %s by %s at %s%s"):format(a.decision, a.when, a.user or "?", a.time or "?",
        a.note and (": " .. a.note) or "")
    end
  end
  if st.deliveries_failed > 0 then
    out[#out + 1] = ("  %d notification(s) not delivered (delivery.failed in the journal)"):format(st.deliveries_failed)
  end
  if status.state == "awaiting-approval" and st.pending_approval then
    out[#out + 1] = ("awaiting approval %s stage %s: cdp approve %s, then cdp resume %s"):format(
      st.pending_approval.when, st.pending_approval.stage, status.run, status.run)
    for _, l in ipairs(type(st.pending_approval.summary) == "table" and st.pending_approval.summary or {}) do
      out[#out + 1] = "  " .. l
    end
  elseif status.state == "failed" or status.state == "interrupted" then
    out[#out + 1] = ("cdp resume %s continues it"):format(status.run)
  end
  io.stdout:write(require("cdp.text").printable(table.concat(out, "\n")), "\n")
  return cli.EXIT.ok
end

return command
