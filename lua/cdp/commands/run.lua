-- cdp run [PIPELINE]: start a run. `cdp PIPELINE.lua [options]` is short for it.
local cli = require "cdp.cli"
local script = require "cdp.script"

local command = {
  summary = "run a pipeline: the project's own, a shipped one (release), or a file",
  usage = "cdp run [PIPELINE] [--from S] [--to S] [--only S] [--force S]... [--dry-run] [--phase N] [--set KEY=VALUE]...",
  help = ([[
Runs the stages of PIPELINE in order, recording each step in
.cdp/runs/<run-id>/journal.ndjson under the repository (or the current directory).
A stage whose key (name, code, settings, inputs) is unchanged since it last
passed is not run again: its recorded outputs are used ("cached").

PIPELINE is
  (nothing)       the project's own pipeline: cdp.lua, else .cdp/pipeline.lua
                  (`cdp init` writes cdp.lua)
  a name          a pipeline shipped in cdp: %s
  a path          a pipeline script (anything with a / or ending in .lua)
`cdp config`, `cdp check`, `cdp plan --pipeline` and `cdp changelog --pipeline` find
PIPELINE the same way. A pipeline that is missing or cannot be read is one line, exit 2.

Options:
  --from S        start at stage S (earlier stages are skipped; their recorded outputs are used)
  --to S          stop after stage S
  --only S        run stage S alone
  --force S       run stage S even if its key is unchanged (repeatable)
  --dry-run       say what would run, run nothing, write nothing
  --phase N       0 approve before and after every stage, 1 approve every stage's outputs,
                  2 approve before publish, 3 automatic (default: the pipeline's)
  --set KEY=VAL   override a setting (after CDP_<KEY> environment variables)
  --no-prompt     never prompt, even on a terminal: stop awaiting approval instead

Examples:
  cdp run --to package                 the project's pipeline up to Package: nothing pushed
  cdp run release --dry-run            what the shipped pipeline would run, and what is cached
  cdp run release --phase 3            the whole release, no approvals
  cdp run ci/release.lua --set registry_limits=none

]]):format(table.concat(script.shipped(), ", ")) .. cli.EXIT_HELP,
}

-- Parse ARGS (from index FIRST) by SPEC: { ["--from"] = "value" | "list" | "flag" }.
-- Returns options (keys without dashes, '-' as '_') and positional arguments.
function command.parse(args, spec, name, first)
  local opts, positional = {}, {}
  local i = first or 1
  while args[i] ~= nil do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    flag = flag or a
    local kind = spec[flag]
    if a:sub(1, 2) == "--" and a ~= "--" then
      if not kind then
        cli.usage_error(("unknown option '%s'"):format(flag), name)
      end
      local key = flag:sub(3):gsub("-", "_")
      if kind == "flag" then
        if inline then
          cli.usage_error(("%s takes no value"):format(flag), name)
        end
        opts[key] = true
      else
        local value = inline
        if value == nil then
          i = i + 1
          value = args[i]
        end
        if value == nil then
          cli.usage_error(("%s needs a value"):format(flag), name)
        end
        if kind == "list" then
          opts[key] = opts[key] or {}
          table.insert(opts[key], value)
        else
          opts[key] = value
        end
      end
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  return opts, positional
end

command.SPEC = {
  ["--from"] = "value", ["--to"] = "value", ["--only"] = "value", ["--force"] = "list",
  ["--dry-run"] = "flag", ["--phase"] = "value", ["--set"] = "list", ["--no-prompt"] = "flag",
}

-- Find and load the pipeline REF (nil: the project's own; a shipped name; a path: see
-- cdp.script.locate). Returns the pipeline and the reference a run's journal records to
-- find it again. Missing, unreadable or not compiling: one line, exit 2 (cli.fail); an
-- error while the script runs raises with its traceback.
function command.load(ref)
  local pipeline = require "cdp.pipeline"
  local loc, err = script.locate(ref, require("cdp.run").root())
  if not loc then
    cli.fail(err)
  end
  local chunk, lerr = script.load_located(loc)
  if not chunk then
    cli.fail(lerr)
  end
  local saved = _G.arg
  _G.arg = { [0] = loc.path }
  local result = chunk()
  _G.arg = saved
  if not pipeline.is(result) then
    cli.usage_error(("%s does not return a pipeline (return cdp.pipeline{ ... })"):format(loc.path))
  end
  return result, loc.ref
end

-- --phase TEXT as a number (nil when absent); a usage error of command NAME otherwise.
function command.parse_phase(text, name)
  if text == nil then
    return nil
  end
  local phase = math.tointeger(tonumber(text))
  if not phase or phase < 0 or phase > 3 then
    cli.usage_error(("--phase must be 0, 1, 2 or 3, not '%s'"):format(text), name)
  end
  return phase
end

-- Turn parsed options into the runner's.
function command.options(o, name)
  local settings = require "cdp.settings"
  local sets, err = settings.parse_sets(o.set)
  if not sets then
    cli.usage_error(err, name)
  end
  local phase = command.parse_phase(o.phase, name)
  local force = {}
  for _, s in ipairs(o.force or {}) do
    force[s] = true
  end
  return { from = o.from, to = o.to, only = o.only, force = force, phase = phase, sets = sets,
    dry_run = o.dry_run, interactive = o.no_prompt and false or nil }
end

local function execute(p, ref, o)
  local run = require "cdp.run"
  local opts = command.options(o, "run")
  opts.script = ref
  if opts.dry_run then
    run.selection(p, opts) -- usage errors first
    io.stdout:write(table.concat(run.dry_run(p, opts), "\n"), "\n")
    return cli.EXIT.ok
  end
  run.selection(p, opts)
  return cli.outcome_code((run.start(p, opts)))
end

-- Called by cdp.cli when a script run as `cdp FILE.lua ARGS` returns a pipeline.
function command.run_pipeline(p, path, arg)
  local o, positional = command.parse(arg, command.SPEC, "run", 1)
  if #positional > 0 then
    cli.usage_error(("unexpected argument '%s'"):format(positional[1]), "run")
  end
  return execute(p, assert(script.locate(path)).ref, o)
end

function command.run(args)
  local o, positional = command.parse(args, command.SPEC, "run", 1)
  if #positional > 1 then
    cli.usage_error(("cdp run takes one PIPELINE, not '%s' too"):format(positional[2]), "run")
  end
  local p, ref = command.load(positional[1])
  return execute(p, ref, o)
end

return command
