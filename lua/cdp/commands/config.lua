-- cdp config [PIPELINE]: the effective settings, where each comes from.
local cli = require "cdp.cli"

local command = {
  summary = "show a pipeline's effective settings and where each comes from",
  usage = "cdp config [PIPELINE] [--set KEY=VALUE]... [--json]",
  help = [[
Every setting the pipeline's stages declare, with its value and where the value
comes from: the declaration's default, the script's `settings`, a CDP_<KEY>
environment variable, or --set KEY=VALUE (each later one wins). Secrets are read
from their environment variable only and shown as ***; a password in a URL is
shown as ***. `cdp help settings` documents every setting. PIPELINE is found as
`cdp run` finds it (default: the project's cdp.lua or .cdp/pipeline.lua).

Examples:
  cdp config                                  the project's pipeline
  cdp config release --set registry_limits=none
  CDP_TEST_CLIPPY=1 cdp config --json         what a CI job with that variable would run with]],
}

function command.run(args)
  local runcmd = require "cdp.commands.run"
  local settings = require "cdp.settings"
  local json = require "cdp.json"
  local o, positional = runcmd.parse(args, { ["--set"] = "list", ["--json"] = "flag" }, "config")
  if #positional > 1 then
    cli.usage_error("cdp config takes at most one PIPELINE", "config")
  end
  local p = runcmd.load(positional[1])
  local opts = runcmd.options(o, "config")
  local effective, err = p:resolve_settings(opts.sets)
  if not effective then
    cli.usage_error(err, "config")
  end
  local rows = settings.describe(effective)
  if o.json then
    io.stdout:write(json.encode(rows, { indent = "  " }), "\n")
    return cli.EXIT.ok
  end
  io.stdout:write(("pipeline %s, phase %d\n"):format(p.name, p.phase))
  if #rows == 0 then
    io.stdout:write("no settings\n")
  end
  local width = 0
  for _, r in ipairs(rows) do
    width = math.max(width, #r.key)
  end
  for _, r in ipairs(rows) do
    io.stdout:write(("%-" .. width .. "s = %s  (%s%s)\n"):format(r.key, r.value, r.source, r.secret and ", secret" or ""))
  end
  return cli.EXIT.ok
end

return command
