-- `cdp plan`: show the Release Plan of a workspace.
local cli = require "cdp.cli"

local command = {
  summary = "show the Release Plan: which crates bump, to what, and why",
  usage = "cdp plan [DIR] [--json] [--explain CRATE] [--all] [--package NAME]... [--tag-template T]... "
    .. "[--registry INDEX] [--since REV] [--from REV] [--pipeline FILE] [--prerelease LABEL]",
  help = [[
Plans the next release of the Cargo workspace in DIR (default: the current
directory) from its git history: each crate's commits since its last release,
read as Conventional Commits, decide its bump under the policy.

The last release of a crate is the tag of the version its manifest names,
wherever that tag is (a squash-merged release PR leaves it off the branch),
else its highest tag merged into the planned commit. Each crate's tag
convention is found from the tags that exist ({crate}-v{version},
{crate}-{version}, {crate}@{version}, {crate}/v{version}, {crate}_v{version};
v{version} or {version} for a one-crate repository, the root crate, crates
sharing version.workspace, or a member whose manifest version such a tag
names); the first line says which were found. New tags follow them.

Options:
  --json              print the plan as JSON (sorted keys; the shape is docs/plan-json.md)
  --explain CRATE     list the commits and dependency edges behind CRATE's bump
  --all               list every crate, not only those that release, and read the
                      history of never-released publish = false crates too
  --package NAME      release only NAME (repeatable, or comma-separated) and what
                      propagation forces; the crates added are listed with why
  --tag-template T    the tag convention, instead of finding it: T for every crate,
                      or CRATE=T for one (repeatable, or comma-separated)
  --registry INDEX    ask this sparse index about crates without a tag
                      (e.g. sparse+https://index.crates.io/): a version already
                      published there is not a first release
  --since REV         count commits after REV for every crate, not after its tag
  --from REV          plan the release of REV instead of HEAD
  --pipeline P        take the policy (and settings.tag_template) from a pipeline, found
                      as `cdp run` finds it (default: the project's cdp.lua or
                      .cdp/pipeline.lua when planning the current directory, if there is one)
  --prerelease LABEL  plan pre-releases X.Y.Z-LABEL.N

Examples:
  cdp plan                                  the plan of this workspace (under cdp.lua, if it has one)
  cdp plan --explain my-crate               the commits behind my-crate's bump, and its dependency edges
  cdp plan --package my-cli                 release my-cli (and what it forces)
  cdp plan --tag-template '{crate}@{version}' --tag-template 'my-cli=v{version}'
  cdp plan --pipeline release --json        the plan the shipped pipeline makes, as JSON (docs/plan-json.md)
  cdp plan --from v1.2.0 --since v1.1.0

Exit codes: 0 planned, 1 the plan failed (broken manifest, bad tag, unknown
crate in the policy or --package, a plan that cannot hold), 2 bad usage.]],
}

local function parse_args(args)
  local o = {}
  local i = 1
  local function value(flag)
    local v = args[i + 1]
    if v == nil or v:sub(1, 2) == "--" then
      cli.usage_error(("%s needs a value"):format(flag), "plan")
    end
    i = i + 1
    return v
  end
  while i <= #args do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    if flag then
      a = flag
      table.insert(args, i + 1, inline)
    end
    if a == "--json" then
      o.json = true
    elseif a == "--explain" then
      o.explain = value(a)
    elseif a == "--since" then
      o.since = value(a)
    elseif a == "--from" then
      o.from = value(a)
    elseif a == "--pipeline" then
      o.pipeline = value(a)
    elseif a == "--prerelease" then
      o.prerelease = value(a)
    elseif a == "--all" then
      o.all = true
    elseif a == "--package" or a == "-p" then
      o.packages = o.packages or {}
      for name in value(a):gmatch("[^,%s]+") do
        o.packages[#o.packages + 1] = name
      end
    elseif a == "--tag-template" then
      o.tag_templates = o.tag_templates or {}
      o.tag_templates[#o.tag_templates + 1] = value(a)
    elseif a == "--registry" then
      o.registry = value(a)
    elseif a:sub(1, 1) == "-" then
      cli.usage_error(("unknown option '%s'"):format(a), "plan")
    elseif o.dir then
      cli.usage_error(("unexpected argument '%s' (DIR is already '%s')"):format(a, o.dir), "plan")
    else
      o.dir = a
    end
    i = i + 1
  end
  if o.json and o.explain then
    cli.usage_error("--json and --explain cannot be used together", "plan")
  end
  if o.tag_templates then
    local templates, err = require("cdp.tags").templates(o.tag_templates)
    if err then
      cli.usage_error(err, "plan")
    end
    o.tag_template = templates
  end
  return o
end

-- The policy, tag template, pre-release label and changelog template of a
-- pipeline script, with its settings resolved as a run resolves them (CDP_<KEY>
-- overrides the script), so `cdp plan --pipeline` shows the plan a run makes.
function command.load_pipeline(path)
  local script = require "cdp.script"
  local loc, lerr = script.locate(path, require("cdp.script").project_root())
  if not loc then
    return nil, lerr
  end
  path = loc.path
  local chunk, err = script.load_located(loc)
  if not chunk then
    return nil, err
  end
  local ok, value = xpcall(chunk, debug.traceback)
  if not ok then
    return nil, ("%s failed: %s"):format(path, tostring(value))
  end
  if type(value) ~= "table" then
    return nil, ("%s must return a pipeline table (with a policy), got %s"):format(path, type(value))
  end
  -- A pipeline's settings as a run resolves them (declarations, the script, CDP_<KEY>);
  -- a plain table of { policy =, settings = } as it is written.
  local settings = type(value.settings) == "table" and value.settings or {}
  if require("cdp.pipeline").is(value) then
    local effective, serr = value:resolve_settings({})
    if not effective then
      return nil, ("%s: %s"):format(path, serr)
    end
    settings = require("cdp.settings").values(effective)
  end
  local template = settings.tag_template
  if template == "" then -- "" means the default template, as the Tag stage reads it
    template = nil
  end
  local prerelease = settings.prerelease
  if prerelease == "" then
    prerelease = nil
  end
  return { policy = value.policy, tag_template = template, prerelease = prerelease, settings = settings,
    changelog_template = type(settings.changelog_template) == "string" and settings.changelog_template or nil }
end

-- Whether the project has a pipeline of its own (cdp.lua, .cdp/pipeline.lua) that a plan
-- of the current directory (DIR nil) follows when no --pipeline is given.
function command.project_pipeline(dir)
  return dir == nil and require("cdp.script").locate(nil, require("cdp.script").project_root()) ~= nil
end

function command.run(args)
  local o = parse_args(args)
  local plan = require "cdp.plan"
  local opts = { dir = o.dir or ".", since = o.since, from = o.from, prerelease = o.prerelease,
    packages = o.packages, registry = o.registry, all = o.all }
  if o.pipeline or command.project_pipeline(o.dir) then
    local p, err = command.load_pipeline(o.pipeline)
    if not p then
      io.stderr:write("cdp plan: ", err, "\n")
      return cli.EXIT.usage
    end
    opts.policy, opts.tag_template = p.policy, p.tag_template
    opts.prerelease = opts.prerelease or p.prerelease
  end
  -- The command line's templates win over the pipeline's, crate by crate.
  if o.tag_template then
    local merged, base = {}, require("cdp.tags").templates(opts.tag_template) or {}
    for k, v in pairs(base) do
      merged[k] = v
    end
    for k, v in pairs(o.tag_template) do
      merged[k] = v
    end
    opts.tag_template = merged
  end
  local result, err = plan.make(opts)
  if not result then
    io.stderr:write("cdp plan: ", tostring(err), "\n")
    return cli.EXIT.failed
  end
  if o.explain then
    local text, xerr = result:explain(o.explain)
    if not text then
      io.stderr:write("cdp plan: ", xerr, "\n")
      return cli.EXIT.failed
    end
    io.stdout:write(require("cdp.text").printable(text)) -- commit text: no escape sequences
  elseif o.json then
    io.stdout:write(result:to_json(), "\n")
  else
    io.stdout:write(require("cdp.text").printable(result:table { all = o.all }))
  end
  return cli.EXIT.ok
end

return command
