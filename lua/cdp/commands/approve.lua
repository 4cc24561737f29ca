-- cdp approve RUN [--stage S] [--note TEXT] [--reject]: decide a pending approval.
local cli = require "cdp.cli"

local command = {
  summary = "approve (or --reject) the approval a run awaits",
  usage = "cdp approve RUN [--stage S] [--note TEXT] [--reject] | cdp approve --run ID ...",
  help = [[
A run that reaches a phase gate with no terminal to ask on stops as
awaiting-approval (exit 3). This records the decision, who (the current user),
when and the note, in the run's journal; then cdp resume RUN continues the run
(or, after --reject, ends it as failed). RUN may be a unique prefix or "last".

--run ID decides for a distributed run: the decision is pushed to its state on
the remote (refs/cdp/runs/ID), and the stage's job (cdp stage NAME --run ID)
goes on.

Options:
  --stage S     refuse unless the pending approval is for stage S (a guard in scripts)
  --note TEXT   why, kept in the journal beside the decision
  --reject      reject instead of approve

Examples:
  cdp status                              which run awaits approval, and for which stage
  cdp approve last --note "checked the plan" && cdp resume last
  cdp approve 20261201T1030 --stage publish --reject --note "wait for the freeze"
  cdp approve --run 4242-1 --note "reviewed"   a CI run's gate]],
}

-- The decision for a distributed run: appended to its state on the remote, with a lease.
local function approve_remote(o)
  local run = require "cdp.run"
  local journal = require "cdp.journal"
  local runstate = require "cdp.runstate"
  local stage = require "cdp.commands.stage"
  local root = run.root()
  local store, err = runstate.open(stage.env_store_options(root))
  if not store then
    io.stderr:write("cdp: ", err, "\n")
    return cli.EXIT.failed
  end
  local lock, lerr = run.lock(root, "approve " .. o.run)
  if not lock then
    store:close()
    io.stderr:write("cdp: ", lerr, "\n")
    return cli.EXIT.failed
  end
  local function done(code, msg)
    lock:close()
    store:close()
    if msg then
      (code == cli.EXIT.ok and io.stdout or io.stderr):write(code == cli.EXIT.ok and "" or "cdp: ", msg, "\n")
    end
    return code
  end
  local head, id = stage.find_state(store, o.run)
  if not head then
    return done(cli.EXIT.failed, head == false and ("no run %s on %s"):format(o.run, store.url) or id)
  end
  local snap, rerr = store:read(head)
  if not snap then
    return done(cli.EXIT.failed, rerr)
  end
  local st = journal.derive(snap.entries)
  local pending = st.pending_approval
  if not pending or (o.stage and o.stage ~= pending.stage) then
    return done(cli.EXIT.failed, pending
      and ("run %s awaits approval %s stage %s, not %s"):format(id, pending.when, pending.stage, o.stage)
      or ("run %s is not awaiting approval (it is %s)"):format(id, st.state))
  end
  local dir = run.runs_dir(root) .. "/" .. id
  store:materialize(snap, dir)
  local writer = assert(journal.open(dir .. "/" .. journal.FILE, run.notify().redactor({})))
  local sync = runstate.sync(store, id, dir, head, #writer.entries)
  local proc = require "cdp.proc"
  writer:append(o.reject and "approval.rejected" or "approval.granted", {
    stage = pending.stage, when = pending.when, user = proc.user() or "?",
    time = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(proc.time())), note = o.note,
  })
  local ok, perr = sync:push(writer, ("%s %s stage %s"):format(o.reject and "rejected" or "approved",
    pending.when, pending.stage))
  if not ok then
    return done(cli.EXIT.failed, perr)
  end
  return done(cli.EXIT.ok, ("%s %s stage %s of run %s on %s; cdp stage %s --run %s (or its CI job) goes on")
    :format(o.reject and "rejected" or "approved", pending.when, pending.stage, id, store.url, pending.stage, id))
end

function command.run(args)
  local run = require "cdp.run"
  local o, positional = require("cdp.commands.run").parse(args,
    { ["--stage"] = "value", ["--note"] = "value", ["--reject"] = "flag", ["--run"] = "value" }, "approve")
  if o.run and #positional == 0 then
    return approve_remote(o)
  end
  if #positional ~= 1 then
    cli.usage_error("cdp approve needs one RUN (or --run ID for a distributed run)", "approve")
  end
  local root = run.root()
  local id, err = run.find(positional[1], root)
  if not id then
    cli.usage_error(err, "approve")
  end
  local lock, lerr = run.lock(root, "approve " .. id)
  if not lock then
    require("cdp.errors").world(lerr, "ELOCKED")
  end
  local st = run.load(id, root)
  local pending = st and st.pending_approval
  -- Approving what is not pending is a mistake in the command, not in the world.
  if not pending then
    lock:close()
    cli.usage_error(("run %s is not awaiting approval (it is %s)"):format(id, st and st.state or "unreadable"),
      "approve")
  end
  if o.stage and o.stage ~= pending.stage then
    lock:close()
    cli.usage_error(("run %s awaits approval %s stage %s, not %s"):format(id, pending.when, pending.stage, o.stage),
      "approve")
  end
  local proc = require "cdp.proc"
  local journal = require "cdp.journal"
  local notify = run.notify()
  local writer = assert(journal.open(run.runs_dir(root) .. "/" .. id .. "/" .. journal.FILE, notify.redactor({})))
  writer:append(o.reject and "approval.rejected" or "approval.granted", {
    stage = pending.stage, when = pending.when, user = proc.user() or "?",
    time = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(proc.time())), note = o.note,
  })
  lock:close()
  io.stdout:write(("%s %s stage %s of run %s; cdp resume %s continues it\n"):format(
    o.reject and "rejected" or "approved", pending.when, pending.stage, id, id))
  return cli.EXIT.ok
end

return command
