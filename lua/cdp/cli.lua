-- The command line. main.c hands every argument after --lua-dir here.
--
-- Commands are modules named cdp.commands.<name>, each returning
-- { summary = "one line", usage = "cdp name ...", help = "more", run = fn(args) }.
-- run returns an exit code (cli.EXIT). Adding a command is adding a module.
local errors = require "cdp.errors"
local host = require "cdp.host"
local script = require "cdp.script"

local cli = {}

cli.EXIT = { ok = 0, failed = 1, usage = 2, approval = 3 }

cli.EXIT_HELP = [[
Exit codes:
  0  done
  1  a run, stage or check failed, or the world did (a read-only or full disk, a
     peer that does not answer): one line names the path or URL; the run stays resumable
  2  bad usage (an unknown option, stage or run id), or an error in a script
     (file:line and a traceback are printed)
  3  a run stopped awaiting approval (cdp approve RUN, then cdp resume RUN)
CDP_DEBUG=1 adds a traceback to every error.]]

-- What a run ended in (cdp.run's outcomes) as an exit code.
local OUTCOME = { done = cli.EXIT.ok, failed = cli.EXIT.failed, interrupted = cli.EXIT.failed,
  paused = cli.EXIT.approval }

function cli.outcome_code(outcome)
  local code = OUTCOME[outcome]
  if not code then
    error(("cli.outcome_code: no run outcome '%s'"):format(tostring(outcome)), 2)
  end
  return code
end

-- Bad usage; main() turns it into a message and exit code 2.
cli.usage_error = errors.usage

-- Input that is not there or not usable (a pipeline that is missing, unreadable or
-- does not compile): one line, "cdp: MSG", exit code 2, and no "Try ..." hint.
function cli.fail(msg)
  error(errors.new("usage", tostring(msg), { hint = false }), 0)
end

local function command_names()
  local names = {}
  for _, m in ipairs(host.modules()) do
    local name = m.module:match("^cdp%.commands%.([%w_-]+)$")
    if name then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  return names
end

local function load_command(name)
  local ok, command = pcall(require, "cdp.commands." .. name)
  if ok then
    return command
  end
  if not tostring(command):find("module 'cdp.commands." .. name .. "' not found", 1, true) then
    error(command, 0) -- a broken command module: let the traceback show it
  end
  return nil
end

function cli.help(out)
  out = out or io.stdout
  local lines = {
    "cdp — continuous deployment for Cargo workspaces",
    "",
    "Usage:",
    "  cdp [--lua-dir DIR]... COMMAND [ARGS]",
    "  cdp [--lua-dir DIR]... PIPELINE.lua [ARGS]   run a pipeline (or any Lua script)",
    "  cdp -e CODE [-e CODE]... [FILE.lua [ARGS]]    run Lua code, then FILE if given",
    "",
    "In a Cargo workspace's root, in its git repository:",
    "  cdp init                  write cdp.lua: the tags' convention, your release-plz /",
    "                            cargo-release / git-cliff settings, every other setting commented",
    "  cdp plan                  which crates bump, to what, and why",
    "  cdp run --to package      bumps, changelogs and .crate files in a private fork; nothing pushed",
    "  cdp run                   the whole release; `cdp run release` runs the one cdp ships",
    "",
    "Commands:",
  }
  for _, name in ipairs(command_names()) do
    local command = load_command(name)
    lines[#lines + 1] = ("  %-10s %s"):format(name, command and command.summary or "")
  end
  for _, l in ipairs {
    "  help       cdp help COMMAND: a command's options and examples; cdp help settings: every setting",
    "",
    "Options:",
    "  --lua-dir DIR  load Lua modules from DIR before the copy built into cdp",
    "                 (DIR/cdp/plan.lua or DIR/lua/cdp/plan.lua overrides cdp.plan)",
    "  --no-local-lua never load the repository's .cdp/lua/ (also CDP_NO_LOCAL_LUA=1)",
    "  -e CODE        run CODE, a Lua chunk; the cdp.* modules are in the `cdp` table",
    "  --version      cdp, Lua, libgit2 and libcurl versions, and which Lua runtime is used",
    "  -h, --help     this text",
    "",
    "Environment:",
    "  CDP_LUA_PATH   ':'-separated directories searched like --lua-dir",
    "  .cdp/lua/      in the current directory, searched after both, only by commands",
    "                 that run the repository's pipeline (run, resume, check, stage, config,",
    "                 export, serve, PIPELINE.lua; plan, changelog and repl when the project",
    "                 has cdp.lua or .cdp/pipeline.lua, or --pipeline is given)",
    "  CDP_NO_LOCAL_LUA=1  never load .cdp/lua/ (CI on untrusted branches)",
    "  CDP_<KEY>      a setting's value (cdp help settings)",
    "",
    cli.EXIT_HELP,
    "",
    "Documentation: README.md and docs/ (installed in share/doc/cdp/): the stage contract,",
    "policies and presets, changelogs and templates.",
  } do
    lines[#lines + 1] = l
  end
  out:write(table.concat(lines, "\n"), "\n")
end

function cli.version(out)
  out = out or io.stdout
  local overrides, total = {}, 0
  for _, m in ipairs(host.modules()) do
    total = total + 1
    if m.override then
      overrides[#overrides + 1] = ("    %s <- %s"):format(m.module, m.override)
    end
  end
  local versions = { ("cdp %s"):format(host.version), host.lua_version }
  for _, name in ipairs { "git", "http" } do
    local ok, mod = pcall(require, "cdp." .. name)
    if ok and type(mod) == "table" and mod.version then
      versions[#versions + 1] = mod.version()
    end
  end
  out:write(table.concat(versions, ", "), "\n")
  if #overrides == 0 then
    out:write(("lua runtime: embedded (%d modules built in)\n"):format(total))
  else
    out:write(("lua runtime: on disk for %d of %d modules, embedded for the rest\n")
      :format(#overrides, total))
    out:write(table.concat(overrides, "\n"), "\n")
  end
  local dirs = host.dirs()
  if #dirs > 0 then
    out:write("override directories: ", table.concat(dirs, ", "), "\n")
  end
end

-- `arg` as lua.c builds it: arg[0] the script, arg[1..] its arguments.
local function set_arg(argv, first)
  local a = { [0] = argv[first] }
  for i = first + 1, #argv do
    a[#a + 1] = argv[i]
  end
  a[-1] = argv[0]
  _G.arg = a
  return a
end

-- Run a script file. If it returns a pipeline, run the pipeline.
local function run_script(argv, first)
  local a = set_arg(argv, first)
  local path = argv[first]
  local chunk, err = script.load(path)
  if not chunk then
    io.stderr:write(err, "\n")
    return cli.EXIT.usage
  end
  local result = chunk(table.unpack(a))
  if type(result) == "table" and getmetatable(result) and getmetatable(result).__name == "cdp.Pipeline" then
    local run = load_command("run")
    if run then
      return run.run_pipeline(result, path, a)
    end
  end
  if math.type(result) == "integer" then
    return result
  end
  return cli.EXIT.ok
end

-- Commands that run the repository's own pipeline, and so may use its .cdp/lua/.
cli.PIPELINE_COMMANDS = { run = true, resume = true, check = true, stage = true, config = true,
  export = true, serve = true }
-- Commands that run the project's pipeline only when it has one (cdp.lua or
-- .cdp/pipeline.lua) or one is named with --pipeline: then they use .cdp/lua/ as a run
-- does, so `cdp changelog` shows what Package writes with the team's template module.
cli.PROJECT_COMMANDS = { plan = true, changelog = true, repl = true }

-- Whether ARGV (a PROJECT_COMMANDS command's) runs a pipeline of the project's.
local function runs_project_pipeline(argv)
  for i = 2, #argv do
    if argv[i] == "--pipeline" then
      return true
    elseif argv[i] == "--dir" then
      return false -- planning another directory: its pipeline, not this checkout's
    end
  end
  -- .cdp/lua/ is the current directory's: so is the pipeline that lets it in
  return script.locate(nil) ~= nil
end

cli.LOCAL_LUA = ".cdp/lua"

-- The repository's .cdp/lua/ overrides, for a command that runs its pipeline: searched
-- after --lua-dir and CDP_LUA_PATH, announced on stderr, and never loaded with
-- CDP_NO_LOCAL_LUA=1 or --no-local-lua (CI on untrusted branches). Any other command
-- (--version, help, plan, status, ...) runs only cdp's own Lua.
function cli.use_local_lua(off)
  local env = os.getenv("CDP_NO_LOCAL_LUA")
  if off or (env and env ~= "" and env ~= "0") then
    return false
  end
  local st = require("cdp.fs").stat(cli.LOCAL_LUA)
  if not st or st.type ~= "directory" then
    return false
  end
  host.add_dir(cli.LOCAL_LUA)
  local overridden, too_late = {}, {}
  for _, m in ipairs(host.modules()) do
    if m.override and m.override:sub(1, #cli.LOCAL_LUA + 1) == cli.LOCAL_LUA .. "/" then
      -- what cdp loaded before it knew the command stays built in
      local list = package.loaded[m.module] == nil and overridden or too_late
      list[#list + 1] = m.module
    end
  end
  io.stderr:write(("cdp: using the repository's Lua from %s/ (%s%s); CDP_NO_LOCAL_LUA=1 or --no-local-lua turns it off\n")
    :format(cli.LOCAL_LUA, #overridden > 0 and ("in place of " .. table.concat(overridden, ", "))
      or "no built-in module replaced",
      #too_late > 0 and ("; " .. table.concat(too_late, ", ") .. " stay built in") or ""))
  return true
end

local function dispatch(argv)
  local no_local_lua = false
  while argv[1] == "--no-local-lua" do
    no_local_lua = true
    table.remove(argv, 1)
  end
  local first = argv[1]
  if first == nil then
    cli.help(io.stderr)
    return cli.EXIT.usage
  elseif first == "-h" or first == "--help" then
    cli.help()
    return cli.EXIT.ok
  elseif first == "--version" then
    cli.version()
    return cli.EXIT.ok
  elseif first == "help" then
    if argv[2] == "settings" then
      if argv[3] ~= nil and argv[3] ~= "--markdown" then
        cli.usage_error(("cdp help settings takes only --markdown, not '%s'"):format(argv[3]))
      end
      io.stdout:write(require("cdp.reference").settings(argv[3] == "--markdown" and "markdown" or "text"))
      return cli.EXIT.ok
    elseif argv[2] then
      local command = load_command(argv[2])
      if not command then
        cli.usage_error(("unknown command '%s'"):format(argv[2]))
      end
      io.stdout:write(command.usage or "", "\n", command.help and ("\n" .. command.help .. "\n") or "")
    else
      cli.help()
    end
    return cli.EXIT.ok
  elseif first == "-e" then
    local i = 1
    while argv[i] == "-e" do
      if not argv[i + 1] then
        cli.usage_error("-e needs a Lua chunk")
      end
      local chunk, err = load(argv[i + 1], "=(command line)", "t")
      if not chunk then
        io.stderr:write(err, "\n")
        return cli.EXIT.usage
      end
      chunk()
      i = i + 2
    end
    if argv[i] then
      return run_script(argv, i)
    end
    return cli.EXIT.ok
  end

  local is_command = not first:find("[/.]")
  if (is_command and cli.PIPELINE_COMMANDS[first]) or (not is_command and first:sub(1, 1) ~= "-")
      or (is_command and cli.PROJECT_COMMANDS[first] and runs_project_pipeline(argv)) then
    cli.use_local_lua(no_local_lua)
  end
  local command = is_command and load_command(first)
  if command then
    local args = { [0] = first }
    for i = 2, #argv do
      args[#args + 1] = argv[i]
    end
    if args[1] == "-h" or args[1] == "--help" then
      io.stdout:write(command.usage or "", "\n", command.help and ("\n" .. command.help .. "\n") or "")
      return cli.EXIT.ok
    end
    return command.run(args) or cli.EXIT.ok
  end
  if first:sub(1, 1) == "-" then
    cli.usage_error(("unknown option '%s'"):format(first))
  end
  local f = io.open(first, "r")
  if not f then
    cli.usage_error(("'%s' is neither a command nor a readable script"):format(first))
  end
  f:close()
  return run_script(argv, 1)
end

local function debugging()
  local v = os.getenv("CDP_DEBUG")
  return v ~= nil and v ~= "" and v ~= "0"
end

-- Every error that reaches the command line, and its exit code: typed errors
-- (cdp.errors) are one line, code 2 for usage and 1 for the world; anything else is
-- an error in a script or in cdp, shown with its traceback, code 2.
function cli.main(argv)
  -- Before any command or script runs: secrets out of the environment, so that no
  -- child inherits them or reads them from /proc/<cdp>/environ.
  require("cdp.secrets").take_all()
  local traceback
  local ok, result = xpcall(dispatch, function(e)
    traceback = debug.traceback(nil, 2)
    if errors.is(e) then
      return e
    end
    return debug.traceback(type(e) == "string" and e or tostring(e), 2)
  end, argv)
  if ok then
    return result
  end
  if errors.is(result) then
    io.stderr:write("cdp: ", result.msg, "\n")
    if debugging() then
      io.stderr:write(traceback, "\n")
    end
    if errors.is_usage(result) then
      if result.hint ~= false then
        io.stderr:write("Try 'cdp ", result.command and ("help " .. result.command) or "--help", "'.\n")
      end
      return cli.EXIT.usage
    end
    return cli.EXIT.failed
  end
  io.stderr:write(result, "\n")
  return cli.EXIT.usage
end

return cli
