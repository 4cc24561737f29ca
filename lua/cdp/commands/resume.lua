-- cdp resume RUN: continue a failed, interrupted or approved run.
local cli = require "cdp.cli"

local command = {
  summary = "continue a run from its failed, interrupted or awaiting stage",
  usage = "cdp resume RUN [--no-prompt]",
  help = [[
Re-loads the pipeline the run was started with (the file, or the pipeline cdp
ships, by name) and its options, skips what already passed in this run, and runs
the rest: the stage that failed or was interrupted runs again. RUN may be a unique
prefix or "last". Settings are resolved again, so a token set since is used.

Options:
  --no-prompt   never prompt at a phase gate: stop awaiting approval instead

Examples:
  cdp resume last                          after fixing what made a stage fail
  GITHUB_TOKEN=... cdp resume 20261201T10  a run that stopped for want of a token
  cdp approve last && cdp resume last      past a phase gate

A distributed run (cdp stage) goes on from the state on the remote
(refs/cdp/runs/RUN), wherever its earlier jobs ran, pushing after each stage.

]] .. cli.EXIT_HELP,
}

-- Whether run ID is distributed: its journal here says so, or there is none here.
local function distributed(run, id)
  local root = run.root()
  local found = run.find(id, root)
  if not found then
    return true
  end
  local st = run.load(found, root)
  return st and type(st.distributed) == "table"
end

function command.run(args)
  local run = require "cdp.run"
  local o, positional = require("cdp.commands.run").parse(args, { ["--no-prompt"] = "flag" }, "resume")
  if #positional ~= 1 then
    cli.usage_error("cdp resume needs one RUN", "resume")
  end
  local id = positional[1]
  if id ~= "last" and require("cdp.runstate").valid_id(id) and distributed(run, id) then
    -- its state is on the remote: go on from there, pushing after each stage
    return require("cdp.commands.stage").drive({ run = id, no_prompt = o.no_prompt, existing = true }, nil, nil)
  end
  return cli.outcome_code(run.resume(id, {
    load = require("cdp.commands.run").load,
    interactive = o.no_prompt and false or nil,
  }))
end

return command
