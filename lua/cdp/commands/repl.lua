-- `cdp repl [PIPELINE]`: inspect pipelines, plans, changelogs and runs interactively.
local cli = require "cdp.cli"
local host = require "cdp.host"
local pretty = require "cdp.pretty"
local repl = require "cdp.repl"
local script = require "cdp.script"

local command = {
  summary = "inspect plans, changelogs and runs in an interactive Lua prompt",
  usage = "cdp repl [PIPELINE]",
  help = [[
Reads Lua lines and prints their values. `=expr` (or just `expr`) shows a
value; statements may span lines. The cdp.* modules are in `cdp`, the pretty
printer in `pretty`; globals you set stay in the REPL's own environment.
Type `help` at the prompt for what it offers: plan(), explain(crate),
changelog(crate), runs(), diff(policy_a, policy_b).

With PIPELINE (found as `cdp run` finds it: a path, or a shipped name such as
release), it runs first in that environment and its first return value is kept as
`pipeline` (and `result`); plan() and the others then use its policy and settings.
Without one, they use the project's cdp.lua or .cdp/pipeline.lua, if there is one.

Keys: Tab completes names (cdp.pl<Tab> gives cdp.plan), Ctrl-C stops a running
chunk or clears the line, Ctrl-D quits.
History: $CDP_HISTORY, else $XDG_STATE_HOME/cdp/history, else ~/.cdp_history.
When stdin is not a terminal, lines are read from it without prompts.

Examples:
  cdp repl                     then: plan()  explain("demo-core")  runs()
  cdp repl cdp.lua             then: diff(pipeline.policy, conventional { zero_major = false })
  echo '=plan():table()' | cdp repl]],
}

command.HELP = [[
cdp repl: type Lua; an expression's value is printed (=expr works too).

  plan()                     the Release Plan of the current directory, under the
                             pipeline's policy; plan { dir =, from =, since =, prerelease =, policy = }
  explain("crate")           why a crate bumps: its commits and dependency edges
  changelog()                the sections Package would write for every planned crate;
  changelog("crate")         for one; changelog { crate =, dir =, date = "YYYY-MM-DD" }
  runs()                     this repository's runs, oldest first; runs("ID") or runs("last"):
                             one run's stages, states and errors
  diff(policy_a, policy_b)   how the plan changes from one policy to another, e.g.
                             diff(pipeline.policy, conventional { zero_major = false })
  conventional { ... }       the Conventional Commits policy (cdp.policies.conventional)
  pipeline                   what the pipeline given to cdp repl returned
  cdp.plan, cdp.git, ...     every module; cdp.<Tab> lists them, Tab completes any name
  pretty.format(value)       a value as text
  help                       this text

Keys: Tab completes, Ctrl-C stops a running chunk or clears the line, Ctrl-D quits.]]

-- Text shown as it is, not quoted, when a value is printed.
local Text = { __name = "cdp.repl.Text" }
Text.__tostring = function(t)
  return (t.text:gsub("\n+$", ""))
end
local function text(s)
  return setmetatable({ text = s }, Text)
end

-- The options of a plan the REPL makes: OPTS, then the policy and settings of the
-- pipeline the REPL was given (REF) or of the project's own.
local function plan_options(ref, opts)
  local plancmd = require "cdp.commands.plan"
  opts = opts or {}
  local o = { dir = opts.dir or ".", from = opts.from, since = opts.since, prerelease = opts.prerelease,
    policy = opts.policy }
  if ref or plancmd.project_pipeline(opts.dir) then
    local p, err = plancmd.load_pipeline(ref)
    if not p then
      error(err, 0)
    end
    o.policy = o.policy or p.policy
    o.tag_template, o.prerelease = p.tag_template, o.prerelease or p.prerelease
    o.pipeline = p
  end
  return o
end

local function make_plan(ref, opts)
  local o = plan_options(ref, opts)
  local p, err = require("cdp.plan").make(o)
  if not p then
    error(tostring(err), 0)
  end
  return p, o
end

local function policy_of(x)
  if require("cdp.pipeline").is(x) then
    return x.policy
  end
  return x
end

-- The helpers `help` lists, for the REPL whose pipeline was REF (or nil).
function command.helpers(ref)
  local h = {}
  h.help = setmetatable({}, {
    __name = "cdp.repl.Help",
    __tostring = function() return command.HELP end,
    __call = function() io.stdout:write(command.HELP, "\n") end,
  })
  function h.plan(opts)
    return (make_plan(ref, opts))
  end
  function h.explain(crate, opts)
    if type(crate) ~= "string" then
      error("explain(crate): name a crate, e.g. explain(\"demo-core\")", 2)
    end
    local p = make_plan(ref, opts)
    local out, err = p:explain(crate)
    if not out then
      error(err, 0)
    end
    return text(out)
  end
  function h.changelog(arg)
    local o = type(arg) == "table" and arg or { crate = arg }
    local chcmd = require "cdp.commands.changelog"
    local list, err = chcmd.collect { crate = o.crate, dir = o.dir, date = o.date, pipeline = ref }
    if not list then
      error(err, 0)
    end
    local parts = {}
    for _, item in ipairs(list) do
      parts[#parts + 1] = item.changelog.section
    end
    return text(#parts > 0 and table.concat(parts, "\n") or "nothing to release\n")
  end
  function h.runs(id)
    local run = require "cdp.run"
    local status = require "cdp.commands.status"
    local root = run.root()
    if id ~= nil then
      local found, err = run.find(id, root)
      if not found then
        error(err, 0)
      end
      return (status.state(found, root))
    end
    local out = {}
    for _, rid in ipairs(run.list(root)) do
      local st = status.state(rid, root)
      if st then
        out[#out + 1] = { run = rid, pipeline = st.pipeline, state = st.state }
      end
    end
    return out
  end
  function h.diff(a, b, opts)
    if a == nil or b == nil then
      error("diff(a, b): two policies (or pipelines, or plans) to compare", 2)
    end
    local function as_plan(x)
      if getmetatable(x) == require("cdp.plan").Plan then
        return x
      end
      local o = {}
      for k, v in pairs(opts or {}) do o[k] = v end
      o.policy = policy_of(x)
      return (make_plan(ref, o))
    end
    local lines = {}
    for _, d in ipairs(as_plan(a):diff(as_plan(b))) do
      lines[#lines + 1] = d.text
    end
    return text(#lines > 0 and table.concat(lines, "\n") or "the two plans are the same")
  end
  h.conventional = require "cdp.policies.conventional"
  return h
end

-- Globals the user sets stay here; everything else falls back to _G.
function command.env(ref)
  local env = setmetatable({ pretty = pretty }, { __index = _G })
  for k, v in pairs(command.helpers(ref)) do
    env[k] = v
  end
  return env
end

---------------------------------------------------------------------------
-- Tab completion

-- The next name after PREFIX (say "cdp.stages.") among the modules cdp has: in Lua
-- (embedded or overridden) and in C (cdp.git, cdp.fs, ..., in package.preload).
local function module_names(prefix)
  local all = {}
  for _, m in ipairs(host.modules()) do
    all[#all + 1] = m.module
  end
  for name in pairs(package.preload) do
    all[#all + 1] = name
  end
  local out = {}
  for _, name in ipairs(all) do
    local rest = name:sub(#prefix + 1)
    if name:sub(1, #prefix) == prefix and rest ~= "" then
      out[#out + 1] = rest:match("^[^.]+")
    end
  end
  return out
end

-- The keys of T, and of the tables its metatables' __index chain holds (methods).
local function keys_of(t, out)
  local seen = 0
  while type(t) == "table" and seen < 8 do
    for k in next, t do
      if type(k) == "string" then
        out[#out + 1] = k
      end
    end
    local mt = getmetatable(t)
    t = type(mt) == "table" and rawget(mt, "__index") or nil
    seen = seen + 1
  end
  return out
end

-- Completions of TEXT (a name, or a dotted path such as "cdp.pl" or "pipeline.sta")
-- in ENV: the whole candidates, sorted. Only fields are read; the one thing run is
-- the cdp namespace's loading of a module the path names (cdp.plan. loads cdp.plan).
function command.complete(env, text)
  local head, sep, last = text:match("^(.-)([.:])([%w_]*)$")
  local names = {}
  if not head then
    if not text:match("^[%a_][%w_]*$") and text ~= "" then
      return {}
    end
    head, sep, last = nil, "", text
    keys_of(env, names)
  elseif not head:match("^[%a_][%w_]*$") and not head:match("^[%a_][%w_.]*[%w_]$") then
    return {}
  else
    local value, path = env, {}
    for part in head:gmatch("[^.]+") do
      path[#path + 1] = part
      if type(value) ~= "table" then
        value = nil
        break
      end
      local v = rawget(value, part)
      if v == nil and rawequal(value, env) then
        v = _G[part]
      end
      local mt = getmetatable(value)
      if v == nil and type(mt) == "table" and rawget(mt, "__name") == "cdp.namespace" then
        local ok, m = pcall(function() return value[part] end) -- loads cdp's module of that name
        v = ok and m or nil
      end
      value = v
    end
    if head:match("^cdp$") or head:match("^cdp%.") then
      for _, n in ipairs(module_names(head .. ".")) do names[#names + 1] = n end
    end
    if type(value) == "table" then
      keys_of(value, names)
    end
  end
  local out, seen = {}, {}
  for _, n in ipairs(names) do
    if n:sub(1, #last) == last and not seen[n] and n:match("^[%a_][%w_]*$") then
      seen[n] = true
      out[#out + 1] = (head and (head .. sep) or "") .. n
    end
  end
  table.sort(out)
  return out
end

function command.run(args)
  if #args > 1 then
    cli.usage_error("repl takes at most one PIPELINE (or script)", "repl")
  end
  local file = args[1]
  local loc
  if file then
    local err
    loc, err = script.locate(file, require("cdp.run").root())
    if not loc then
      cli.fail(err)
    end
  end
  local env = command.env(nil)
  if loc then
    local chunk, err = script.load_located(loc, env)
    if not chunk then
      io.stderr:write(err, "\n")
      return cli.EXIT.usage
    end
    local saved = _G.arg
    _G.arg = { [0] = loc.path }
    local result = chunk()
    _G.arg = saved
    env.pipeline, env.result = result, result
    if require("cdp.pipeline").is(result) then
      for k, v in pairs(command.helpers(loc.ref)) do
        env[k] = v
      end
    end
  end
  if repl.interactive() then
    io.stdout:write(("cdp %s REPL (%s) — help lists what it offers, Tab completes, Ctrl-D quits%s\n"):format(
      host.version, host.lua_version, file and ("; `pipeline` is what " .. file .. " returned") or ""))
  end
  repl.run { env = env, complete = function(t) return command.complete(env, t) end }
  return cli.EXIT.ok
end

return command
