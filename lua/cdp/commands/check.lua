-- cdp check [PIPELINE]: run every stage's health checks, and no stage.
local cli = require "cdp.cli"

local command = {
  summary = "run every health check of a pipeline (no stage runs)",
  usage = "cdp check [PIPELINE] [--set KEY=VALUE]...",
  help = [[
Runs the health check of every stage of PIPELINE, in order, and no stage: the
registry answers, the tokens are set, the tools are on the PATH. Each check prints
one line, ✓ or ✗ with its reason; secrets in reasons show as ***. A failed check
would stop a run before its stage. PIPELINE is found as `cdp run` finds it
(default: the project's cdp.lua or .cdp/pipeline.lua).

Examples:
  cdp check                       the project's pipeline
  cdp check release --set registry_index=sparse+https://index.example.org/

Exit codes: 0 every check passed, 1 a check failed, 2 bad usage or a broken script.]],
}

function command.run(args)
  local runcmd = require "cdp.commands.run"
  local o, positional = runcmd.parse(args, { ["--set"] = "list" }, "check")
  if #positional > 1 then
    cli.usage_error("cdp check takes at most one PIPELINE", "check")
  end
  local p = runcmd.load(positional[1])
  local ok, lines = require("cdp.run").check(p, runcmd.options(o, "check"))
  io.stdout:write(table.concat(lines, "\n"), "\n")
  return ok and cli.EXIT.ok or cli.EXIT.failed
end

return command
