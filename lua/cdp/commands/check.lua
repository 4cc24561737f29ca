-- cdp check PIPELINE: run every stage's health checks, and no stage.
local cli = require "cdp.cli"

local command = {
  summary = "run every health check of a pipeline (no stage runs)",
  usage = "cdp check PIPELINE [--set KEY=VALUE]...",
}

function command.run(args)
  local runcmd = require "cdp.commands.run"
  local o, positional = runcmd.parse(args, { ["--set"] = "list" }, "check")
  if #positional ~= 1 then
    cli.usage_error("cdp check needs one PIPELINE script", "check")
  end
  local p = runcmd.load(positional[1])
  local ok, lines = require("cdp.run").check(p, runcmd.options(o, "check"))
  io.stdout:write(table.concat(lines, "\n"), "\n")
  return ok and cli.EXIT.ok or cli.EXIT.failed
end

return command
