-- cdp changelog [CRATE] [--unreleased] [--dir DIR] [--pipeline FILE] [--prerelease LABEL]
-- Prints what the Package stage would write into each planned crate's CHANGELOG.md,
-- from the same plan and the same code, without touching anything.
local cli = require "cdp.cli"

local command = {
  summary = "show the changelog Package would write (nothing is written)",
  usage = "cdp changelog [CRATE] [--unreleased] [--dir DIR] [--pipeline FILE] [--prerelease LABEL]",
  help = [[
For every crate the Release Plan releases (or only CRATE), print its CHANGELOG.md as the
Package stage would leave it: the new section above the earlier ones, text written by hand
kept as it is, pre-release sections folded when a release graduates.

  --unreleased     print only the new sections, not whole files
  --dir DIR        the workspace (default: the current directory)
  --pipeline FILE  take the policy, tag template and changelog template from a pipeline script
  --prerelease L   plan -L.N pre-releases, as the prerelease setting does]],
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

function command.run(args)
  local o = parse_args(args)
  local git = require "cdp.git"
  local plan = require "cdp.plan"
  local package = require "cdp.stages.package"
  local release = require "cdp.release"
  local opts = { dir = o.dir or ".", prerelease = o.prerelease }
  local template
  if o.pipeline then
    local p, err = require("cdp.commands.plan").load_pipeline(o.pipeline)
    if not p then
      io.stderr:write("cdp changelog: ", err, "\n")
      return cli.EXIT.usage
    end
    opts.policy, opts.tag_template, template = p.policy, p.tag_template, p.changelog_template
    opts.prerelease = opts.prerelease or p.prerelease
  end
  local p, err = plan.make(opts)
  if not p then
    io.stderr:write("cdp changelog: ", tostring(err), "\n")
    return cli.EXIT.failed
  end
  if o.crate and not p.by_name[o.crate] then
    io.stderr:write(("cdp changelog: no crate '%s' in the workspace\n"):format(o.crate))
    return cli.EXIT.failed
  end
  local repo <close> = assert(git.discover(opts.dir))
  local root = repo:workdir()
  local origin
  for _, r in ipairs(repo:remotes()) do
    if r.name == "origin" then origin = r.url end
  end
  local shown = 0
  for _, c in ipairs(release.planned(p)) do
    if not o.crate or c.name == o.crate then
      local cl = package.changelog(repo, c, {
        root = root, from = p.from, remote = origin, template = template,
        tag_template = p.tag_template, single = #p.crates == 1,
      })
      if shown > 0 then
        io.stdout:write("\n")
      end
      if o.unreleased then
        io.stdout:write(cl.section)
      else
        io.stdout:write(("==> %s <==\n"):format(cl.path), cl.text)
      end
      shown = shown + 1
    end
  end
  if shown == 0 then
    io.stderr:write(o.crate and ("%s has nothing to release\n"):format(o.crate) or "nothing to release\n")
  end
  return cli.EXIT.ok
end

return command
