-- cdp changelog [CRATE] [--unreleased] [--dir DIR] [--pipeline FILE] [--prerelease LABEL] [--date DATE]
-- cdp changelog --full CRATE... [--dir DIR] [--pipeline FILE] [--date DATE]
-- Prints what the Package stage would write into each planned crate's changelog, from
-- the same plan and the same code, without touching anything; or, with --full, each
-- named crate's whole history, every release of it, from one walk.
local cli = require "cdp.cli"

local command = {
  summary = "show the changelog Package would write (nothing is written)",
  usage = "cdp changelog [CRATE] [--unreleased] [--dir DIR] [--pipeline PIPELINE] [--prerelease LABEL] [--date YYYY-MM-DD]\n"
    .. "       cdp changelog --full CRATE... [--dir DIR] [--pipeline PIPELINE] [--date YYYY-MM-DD]",
  help = [[
For every crate the Release Plan releases (or only CRATE), print its changelog as the
Package stage would leave it: the new section above the newest release, in the style
the file already has (heading level, brackets, a leading v, a date or none), the notes
under [Unreleased] taken into it, text written by hand kept as it is, pre-release
sections folded when a release graduates.

  --unreleased        print only the new sections, not whole files
  --full              for each CRATE named, its whole changelog written anew from
                      the history, from one walk: every release its tags name (dated
                      by the tagged commit; the convention found from the tags unless
                      the pipeline sets one), and what came since under Unreleased
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
  cdp changelog --full demo-core demo-cli    every release of two crates, from one walk

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
    elseif a == "--full" then
      o.full = true
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
    else
      o.crates = o.crates or {}
      o.crates[#o.crates + 1] = a
    end
    i = i + 1
  end
  if o.full then
    if not o.crates then
      cli.usage_error("--full needs the crates to show: cdp changelog --full CRATE...", "changelog")
    elseif o.unreleased then
      cli.usage_error("--full and --unreleased cannot be used together", "changelog")
    elseif o.prerelease or o.date then
      cli.usage_error("--full shows what was released: --prerelease and --date do not apply", "changelog")
    end
  elseif o.crates and #o.crates > 1 then
    cli.usage_error("only one CRATE may be named (or several with --full)", "changelog")
  end
  o.crate = o.crates and o.crates[1]
  return o
end

-- The date a release made now would carry: SOURCE_DATE_EPOCH (reproducible builds'
-- convention) when set, else today, in UTC.
local function today()
  return require("cdp.release").today()
end

-- `cdp changelog --full`: every release of the crates named, from one walk, without
-- a plan: their directories from the manifests (cargo metadata only when those do not
-- say), their tags' convention from the tags that exist unless a pipeline sets one.
local function full(o, dir, tag_template, template)
  local git = require "cdp.git"
  local workspace = require "cdp.workspace"
  local repo <close> = assert(git.discover(dir))
  local root = require("cdp.fs").realpath(repo:workdir()) or repo:workdir()
  local ws = workspace.from_manifests(dir, { repo_root = root })
  for _, name in ipairs(o.crates) do
    if not (ws and ws.by_name[name]) then
      local err, code
      ws, err, code = workspace.load(dir, { repo_root = root })
      if not ws then
        io.stderr:write("cdp changelog: ", tostring(err), "\n")
        return code == "ECARGO" and cli.EXIT.failed or cli.EXIT.failed
      end
      break
    end
  end
  local list = {}
  for _, name in ipairs(o.crates) do
    local m = ws.by_name[name]
    if not m then
      io.stderr:write(("cdp changelog: no crate '%s' in the workspace\n"):format(name))
      return cli.EXIT.failed
    end
    list[#list + 1] = { name = name, dir = m.dir, version = m.version, publish = m.publish,
      inherited_version = m.inherited_version,
      -- cdp.release (and cdp.plan under it) only loaded when a pipeline sets templates
      template = tag_template and require("cdp.release").template(tag_template, ws.single) or nil }
  end
  local origin
  for _, r in ipairs(repo:remotes()) do
    if r.name == "origin" then origin = r.url end
  end
  local texts, err = require("cdp.changelog").history(repo, list, { from = assert(repo:resolve("HEAD")),
    remote = origin, template = template, single = ws.single, members = ws.members })
  if not texts then
    io.stderr:write("cdp changelog: ", tostring(err), "\n")
    return cli.EXIT.failed
  end
  for i, c in ipairs(list) do
    if i > 1 then
      io.stdout:write("\n")
    end
    io.stdout:write(("==> %s: every release <==\n"):format(c.name), texts[c.name])
  end
  return cli.EXIT.ok
end

-- The settings a pipeline gives O (--pipeline, else the project's own when it has one):
-- opts for cdp.plan.make, the changelog template and the settings; or nil, a message
-- and the exit code it means.
local function pipeline_settings(o)
  local opts = { dir = o.dir or ".", prerelease = o.prerelease }
  local plancmd = require "cdp.commands.plan"
  if not (o.pipeline or plancmd.project_pipeline(o.dir)) then
    return opts, nil, {}
  end
  local p, err = plancmd.load_pipeline(o.pipeline)
  if not p then
    return nil, err, cli.EXIT.usage
  end
  opts.policy, opts.tag_template = p.policy, p.tag_template
  opts.prerelease = opts.prerelease or p.prerelease
  return opts, p.changelog_template, p.settings or {}
end

-- What Package would write for O = { crate, dir, pipeline, prerelease, date }: a list of
-- { crate = plan entry, changelog = package.changelog's result, enabled = changelog
-- setting } in plan order, or nil, a message and the exit code it means.
function command.collect(o)
  local git = require "cdp.git"
  local plan = require "cdp.plan"
  local package = require "cdp.stages.package"
  local release = require "cdp.release"
  local opts, template, settings = pipeline_settings(o)
  if not opts then
    return nil, template, settings
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
  if o.full then
    local opts, template, settings = pipeline_settings(o)
    if not opts then
      io.stderr:write("cdp changelog: ", template, "\n")
      return settings
    end
    return full(o, opts.dir, opts.tag_template, template)
  end
  local list, err, code = command.collect(o)
  if not list then
    io.stderr:write("cdp changelog: ", err, "\n")
    return code
  end
  -- Exactly what Package writes, unless a terminal shows it: then without the escape
  -- sequences commit text may carry.
  local write = function(...) io.stdout:write(...) end
  if require("cdp.proc").isatty(1) then
    local printable = require("cdp.text").printable
    write = function(...)
      for _, part in ipairs { ... } do
        io.stdout:write(printable(part))
      end
    end
  end
  for i, item in ipairs(list) do
    local cl, c = item.changelog, item.crate
    if i > 1 then
      write("\n")
    end
    if o.unreleased then
      write(cl.section)
    elseif not cl.path then
      write(("==> %s: no changelog file (%s) <==\n"):format(c.name,
        item.enabled and "changelog_path names none" or "changelog = false"), cl.section)
    else
      write(("==> %s <==\n"):format(cl.path), cl.text)
    end
  end
  if #list == 0 then
    io.stderr:write(o.crate and ("%s has nothing to release\n"):format(o.crate) or "nothing to release\n")
  end
  return cli.EXIT.ok
end

return command
