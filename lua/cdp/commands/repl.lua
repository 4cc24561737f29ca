-- `cdp repl [FILE]`: inspect pipelines, plans and runs interactively.
local cli = require "cdp.cli"
local host = require "cdp.host"
local pretty = require "cdp.pretty"
local repl = require "cdp.repl"
local script = require "cdp.script"

local command = {
  summary = "inspect pipelines, plans and runs in an interactive Lua prompt",
  usage = "cdp repl [FILE]",
  help = [[
Reads Lua lines and prints their values. `=expr` (or just `expr`) shows a
value; statements may span lines. The cdp.* modules are in `cdp`, the pretty
printer in `pretty`; globals you set stay in the REPL's own environment.

With FILE (a pipeline or any script), FILE runs first in that environment and
its first return value is kept as `pipeline` (and `result`).

Keys: Ctrl-C stops a running chunk or clears the line, Ctrl-D quits.
History: $CDP_HISTORY, else $XDG_STATE_HOME/cdp/history, else ~/.cdp_history.
When stdin is not a terminal, lines are read from it without prompts.]],
}

-- Globals the user sets stay here; everything else falls back to _G.
function command.env()
  return setmetatable({ pretty = pretty }, { __index = _G })
end

function command.run(args)
  if #args > 1 then
    cli.usage_error("repl takes at most one FILE", "repl")
  end
  local env = command.env()
  local file = args[1]
  if file then
    local chunk, err = script.load(file, env)
    if not chunk then
      io.stderr:write(err, "\n")
      return cli.EXIT.usage
    end
    local result = chunk()
    env.pipeline, env.result = result, result
  end
  if repl.interactive() then
    io.stdout:write(("cdp %s REPL (%s) — =expr shows a value, Ctrl-D quits%s\n"):format(
      host.version, host.lua_version, file and ("; `pipeline` is what " .. file .. " returned") or ""))
  end
  repl.run { env = env }
  return cli.EXIT.ok
end

return command
