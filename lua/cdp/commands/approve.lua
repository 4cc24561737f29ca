-- cdp approve RUN [--stage S] [--note TEXT] [--reject]: decide a pending approval.
local cli = require "cdp.cli"

local command = {
  summary = "approve (or --reject) the approval a run awaits",
  usage = "cdp approve RUN [--stage S] [--note TEXT] [--reject]",
  help = [[
Records who (the current user), when and the note in the run's journal.
Then cdp resume RUN continues the run.]],
}

function command.run(args)
  local run = require "cdp.run"
  local o, positional = require("cdp.commands.run").parse(args,
    { ["--stage"] = "value", ["--note"] = "value", ["--reject"] = "flag" }, "approve")
  if #positional ~= 1 then
    cli.usage_error("cdp approve needs one RUN", "approve")
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
