-- cdp resume RUN: continue a failed, interrupted or approved run.
local cli = require "cdp.cli"

local command = {
  summary = "continue a run from its failed, interrupted or awaiting stage",
  usage = "cdp resume RUN [--no-prompt]",
  help = [[
Re-loads the pipeline script the run was started with (and its options),
skips what already passed in this run, and runs the rest: the stage that
failed or was interrupted runs again. RUN may be a unique prefix or "last".

]] .. cli.EXIT_HELP,
}

function command.run(args)
  local run = require "cdp.run"
  local o, positional = require("cdp.commands.run").parse(args, { ["--no-prompt"] = "flag" }, "resume")
  if #positional ~= 1 then
    cli.usage_error("cdp resume needs one RUN", "resume")
  end
  return cli.outcome_code(run.resume(positional[1], {
    load = require("cdp.commands.run").load,
    interactive = o.no_prompt and false or nil,
  }))
end

return command
