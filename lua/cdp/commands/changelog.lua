-- cdp changelog [CRATE] [--unreleased] [--dir DIR] [--pipeline FILE] [--prerelease LABEL] [--date DATE]
-- Prints what the Package stage would write into each planned crate's changelog, from
-- the same plan and the same code, without touching anything.
local cli = require "cdp.cli"

local command = {
  summary = "show the changelog Package would write (nothing is written)",
  usage = "cdp changelog [CRATE] [--unreleased] [--dir DIR] [--pipeline PIPELINE] [--prerelease LABEL] [--date YYYY-MM-DD]",
  help = [[
For every crate the Release Plan releases (or only CRATE), print its changelog as the
Package stage would leave it: the new section above the newest release, in the style
the file already has (heading level, brackets, a leading v, a date or none), the notes
under [Unreleased] taken into it, text written by hand kept as it is, pre-release
sections folded when a release graduates.

  --unreleased        print only the new sections, not whole files
  --dir DIR           the workspace (default: the current directory)
  --pipeline P        take the policy, tag template and changelog settings (changelog,
                      changelog_path, changelog_template) from a pipeline, found as
                      `cdp run` finds it (default: the project's cdp.lua or
                      .cdp/pipeline.lua when there is one and no --dir is given)
  --prerelease L      plan -L.N pre-releases, as the prerelease setting does
  --date YYYY-MM-DD   the release date in the headings (default: $SOURCE_DATE_EPOCH,
                      else today, UTC; a run uses its start)

Examples:
  cdp changelog --unreleased                 the sections the next release adds
  cdp changelog demo-core --pipeline cdp.lua  one crate's whole file, with the project's settings
  cdp changelog --date 2026-01-31 > /tmp/preview.md

docs/changelogs.md (installed as share/doc/cdp/docs/changelogs.md) explains styles and templates.]],
}

local function parse_args(args)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local function value()
      i = i + 1
      if not args[i] then
        cli.usage_error(a .. " needs a value", "changelog")
      end
      return args[i]
    end
    if a == "--unreleased" then
      o.unreleased = true
    elseif a == "--dir" then
      o.dir = value()
    elseif a == "--pipeline" then
      o.pipeline = value()
    elseif a == "--prerelease" then
      o.prerelease = value()
    elseif a == "--date" then
      o.date = value()
      if not o.date:match("^%d%d%d%d%-%d%d%-%d%d$") then
        cli.usage_error(("--date takes YYYY-MM-DD, not '%s'"):format(o.date), "changelog")
      end
    elseif a:sub(1, 1) == "-" then
      cli.usage_error(("unknown option '%s'"):format(a), "changelog")
    elseif not o.crate then
      o.crate = a
    else
      cli.usage_error("only one CRATE may be named", "changelog")
    end
    i = i + 1
  end
  return o
end

-- The date a release made now would carry: SOURCE_DATE_EPOCH (reproducible builds'
-- convention) when set, else today, in UTC.
local function today()
  local epoch = math.tointeger(tonumber(os.getenv("SOURCE_DATE_EPOCH") or ""))
  return os.date("!%Y-%m-%d", epoch or math.floor(require("cdp.proc").time()))
end

-- What Package would write for O = { crate, dir, pipeline, prerelease, date }: a list of
-- { crate = plan entry, changelog = package.changelog's result, enabled = changelog
-- setting } in plan order, or nil, a message and the exit code it means.
function command.collect(o)
  local git = require "cdp.git"
  local plan = require "cdp.plan"
  local package = require "cdp.stages.package"
  local release = require "cdp.release"
  local opts = { dir = o.dir or ".", prerelease = o.prerelease }
  local template
  local settings = {}
  local plancmd = require "cdp.commands.plan"
  if o.pipeline or plancmd.project_pipeline(o.dir) then
    local p, err = plancmd.load_pipeline(o.pipeline)
    if not p then
      return nil, err, cli.EXIT.usage
    end
    opts.policy, opts.tag_template, template = p.policy, p.tag_template, p.changelog_template
    opts.prerelease = opts.prerelease or p.prerelease
    settings = p.settings or {}
  end
  local p, err = plan.make(opts)
  if not p then
    return nil, tostring(err), cli.EXIT.failed
  end
  if o.crate and not p.by_name[o.crate] then
    return nil, ("no crate '%s' in the workspace"):format(o.crate), cli.EXIT.failed
  end
  local repo <close> = assert(git.discover(opts.dir))
  local origin
  for _, r in ipairs(repo:remotes()) do
    if r.name == "origin" then origin = r.url end
  end
  local enabled = settings.changelog
  if enabled == nil then
    enabled = true
  end
  local out = {}
  package.changelogs(repo, p, release.planned(p), { changelog = enabled, changelog_path = settings.changelog_path }, {
    root = repo:workdir(), from = p.from, remote = origin, template = template, date = o.date or today(),
    tag_template = p.tag_template, single = #p.crates == 1,
  }, function(cl, c)
    if not o.crate or c.name == o.crate then
      out[#out + 1] = { crate = c, changelog = cl, enabled = enabled }
    end
  end)
  return out
end

function command.run(args)
  local o = parse_args(args)
  local list, err, code = command.collect(o)
  if not list then
    io.stderr:write("cdp changelog: ", err, "\n")
    return code
  end
  for i, item in ipairs(list) do
    local cl, c = item.changelog, item.crate
    if i > 1 then
      io.stdout:write("\n")
    end
    if o.unreleased then
      io.stdout:write(cl.section)
    elseif not cl.path then
      io.stdout:write(("==> %s: no changelog file (%s) <==\n"):format(c.name,
        item.enabled and "changelog_path names none" or "changelog = false"), cl.section)
    else
      io.stdout:write(("==> %s <==\n"):format(cl.path), cl.text)
    end
  end
  if #list == 0 then
    io.stderr:write(o.crate and ("%s has nothing to release\n"):format(o.crate) or "nothing to release\n")
  end
  return cli.EXIT.ok
end

return command
