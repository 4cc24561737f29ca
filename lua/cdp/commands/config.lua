-- cdp config PIPELINE: the effective settings, where each comes from.
local cli = require "cdp.cli"

local command = {
  summary = "show a pipeline's effective settings and where each comes from",
  usage = "cdp config PIPELINE [--set KEY=VALUE]... [--json]",
  help = [[
Settings come from the script's `settings`, then CDP_<KEY> environment
variables, then --set KEY=VALUE. Secret settings (cdp.pipeline.secret(ENV),
or a name containing token, password or secret) are shown as ***.]],
}

function command.run(args)
  local runcmd = require "cdp.commands.run"
  local settings = require "cdp.settings"
  local json = require "cdp.json"
  local o, positional = runcmd.parse(args, { ["--set"] = "list", ["--json"] = "flag" }, "config")
  if #positional ~= 1 then
    cli.usage_error("cdp config needs one PIPELINE script", "config")
  end
  local p = runcmd.load(positional[1])
  local opts = runcmd.options(o, "config")
  local effective, err = settings.resolve(p.settings, os.getenv, opts.sets)
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
