-- cdp runs: every run of this repository, oldest first.
local cli = require "cdp.cli"

local command = {
  summary = "list the runs of this repository",
  usage = "cdp runs [--json]",
  help = [[
Every run under .cdp/runs/ of this repository, oldest first: its id, its pipeline,
its state and how many stages are in each state. Each id works with cdp status,
cdp resume and cdp approve (as does a unique prefix of it, or "last").

Examples:
  cdp runs
  cdp runs --json | jq -r '.[] | select(.state == "failed") | .run']],
}

function command.run(args)
  local run = require "cdp.run"
  local json = require "cdp.json"
  local o, positional = require("cdp.commands.run").parse(args, { ["--json"] = "flag" }, "runs")
  if #positional > 0 then
    cli.usage_error("cdp runs takes no arguments", "runs")
  end
  local root = run.root()
  local rows = {}
  for _, id in ipairs(run.list(root)) do
    local status = require("cdp.commands.status").state(id, root)
    if status then
      local counts = {}
      for _, s in ipairs(status.stages) do
        counts[s.state] = (counts[s.state] or 0) + 1
      end
      rows[#rows + 1] = { run = id, pipeline = status.pipeline, state = status.state, stages = counts }
    end
  end
  if o.json then
    io.stdout:write(json.encode(rows, { indent = "  " }), "\n")
    return cli.EXIT.ok
  end
  if #rows == 0 then
    io.stdout:write("no runs\n")
  end
  for _, r in ipairs(rows) do
    local parts = {}
    for _, state in ipairs { "passed", "cached", "skipped", "failed", "interrupted", "awaiting-approval", "pending" } do
      if r.stages[state] then
        parts[#parts + 1] = ("%d %s"):format(r.stages[state], state)
      end
    end
    io.stdout:write(("%s  %-10s %-18s %s\n"):format(r.run, r.pipeline or "?", r.state, table.concat(parts, ", ")))
  end
  return cli.EXIT.ok
end

return command
