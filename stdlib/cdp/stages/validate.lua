-- Validate: is this commit releasable? It reads the fork and never changes it (it
-- checks that, too). Every check has a name; a pipeline turns checks off with
-- `validate_skip = { "licence" }` or makes its own stage with more checks:
--
--   local validate = require "cdp.stages.validate"
--   stages = { "activate", validate.with { extra = { { name = "msrv", check = fn } } }, ... }
--
-- A check is check(ctx, facts) -> true | false, reason, where facts holds the fork
-- (repo, commit, fork_path), the workspace (ws) and the user's repository (user_repo).
local git = require "cdp.git"
local plan = require "cdp.plan"
local release = require "cdp.release"
local semver = require "cdp.semver"
local workspace = require "cdp.workspace"

local validate = {}

local function publishable(ws)
  local out = {}
  for _, m in ipairs(ws.members) do
    if m.publish ~= false then
      out[#out + 1] = m
    end
  end
  return out
end

-- Files cdp and cargo read and write by these names, wherever they are.
local RELEASE_FILES = { ["CHANGELOG.md"] = true, ["README.md"] = true, ["Cargo.toml"] = true, ["Cargo.lock"] = true }

-- TARGET of a link at PATH, as a path from the repository root, or nil when it
-- leads out of the repository (absolute, or climbing above the root).
local function link_destination(path, target)
  if target:sub(1, 1) == "/" then
    return nil
  end
  local parts = {}
  for p in (path:match("^(.*)/[^/]*$") or ""):gmatch("[^/]+") do
    parts[#parts + 1] = p
  end
  for p in target:gmatch("[^/]+") do
    if p == ".." then
      if #parts == 0 then
        return nil
      end
      parts[#parts] = nil
    elseif p ~= "." then
      parts[#parts + 1] = p
    end
  end
  return table.concat(parts, "/")
end

local function under(path, dir)
  return dir == "" or path == dir or path:sub(1, #dir + 1) == dir .. "/"
end

-- The links of the fork's commit that a release must not go through, one line
-- each, naming the path: a CHANGELOG.md, README.md, Cargo.toml or Cargo.lock; a
-- crate directory or one above it; a member's readme or license-file; any link in
-- a published crate's directory that leads out of the repository (cargo package
-- would ship the file it points at).
function validate.links(facts)
  local links, err = facts.repo:symlinks(facts.commit)
  if not links then
    return { err }
  end
  local members = facts.ws and facts.ws.members or {}
  local named = {} -- readme and license-file paths, from the repository root
  for _, m in ipairs(members) do
    local pkg = m.package or {}
    for _, field in ipairs { "readme", "license_file" } do
      local v = pkg[field]
      if type(v) == "string" and v ~= "" then
        local at = link_destination((m.dir ~= "" and (m.dir .. "/") or "") .. "x", v)
        if at then
          named[at] = field:gsub("_", "-")
        end
      end
    end
  end
  local problems = {}
  for _, l in ipairs(links) do
    local dest = link_destination(l.path, l.target)
    local shown = ("%s -> %s"):format(l.path, l.target)
    local why
    if RELEASE_FILES[l.path:match("[^/]+$")] then
      why = "is a file cdp or cargo reads and writes"
    elseif named[l.path] then
      why = ("is the %s of a crate"):format(named[l.path])
    elseif facts.fork_path and require("cdp.fs").exists(facts.fork_path .. "/" .. l.path .. "/Cargo.toml") then
      why = "is a crate directory"
    else
      for _, m in ipairs(members) do
        if m.dir ~= "" and under(m.dir, l.path) then
          why = ("holds crate %s"):format(m.name)
          break
        elseif not dest and m.publish ~= false and under(l.path, m.dir) then
          why = ("leads out of the repository from crate %s, whose package would ship what it points at"):format(m.name)
          break
        end
      end
    end
    if why then
      problems[#problems + 1] = ("%s %s"):format(shown, why)
    end
  end
  return problems
end

validate.CHECKS = {
  { name = "workspace", check = function(_, facts)
    -- Loading it is the check; facts.ws_error says why it failed.
    if not facts.ws then
      return false, facts.ws_error
    end
    return true
  end },

  { name = "links", check = function(_, facts)
    -- Repository content is untrusted: a committed link would have Package read and
    -- release whatever it points at, or Version write there. See validate.links.
    local problems = validate.links(facts)
    if #problems > 0 then
      return false, "symbolic links where cdp reads or writes files (commit the files themselves):\n  "
        .. table.concat(problems, "\n  ")
    end
    return true
  end },

  { name = "metadata", check = function(_, facts)
    -- cargo prints absent fields as null, which decodes to a (truthy) cjson.null.
    local function present(v)
      return type(v) == "string" and v ~= ""
    end
    local missing = {}
    for _, m in ipairs(publishable(facts.ws)) do
      local pkg = m.package or {}
      local lacks = {}
      if not present(pkg.description) then
        lacks[#lacks + 1] = "description"
      end
      if not present(pkg.license) and not present(pkg.license_file) then
        lacks[#lacks + 1] = "license (or license-file)"
      end
      if #lacks > 0 then
        missing[#missing + 1] = ("%s (%s) has no %s"):format(m.name, m.manifest_path, table.concat(lacks, " or "))
      end
    end
    if #missing > 0 then
      return false, "a registry requires these before publishing:\n  " .. table.concat(missing, "\n  ")
    end
    return true
  end },

  { name = "versions", check = function(ctx, facts)
    local names = {}
    for i, m in ipairs(facts.ws.members) do
      names[i] = m.name
    end
    local template = release.template(release.setting(ctx, "tag_template"), facts.ws.single)
    local last, err = plan.releases(facts.repo, names, template, facts.commit)
    if not last then
      return false, err
    end
    local wrong = {}
    for _, m in ipairs(facts.ws.members) do
      local tag = last[m.name]
      if tag then
        local have, want = semver.parse(m.version), semver.parse(tag.version)
        if have and want and semver.compare(have, want) < 0 then
          wrong[#wrong + 1] = ("%s is at %s in %s, older than its last release tag %s")
            :format(m.name, m.version, m.manifest_path, tag.tag)
        end
      end
    end
    if #wrong > 0 then
      return false, table.concat(wrong, "\n")
    end
    return true
  end },

  { name = "dependencies", check = function(_, facts)
    -- What cargo would only find while packaging, in words that name neither the crate
    -- nor the cycle (cdp.publishable).
    local problems = require("cdp.publishable").problems(facts.ws)
    if #problems > 0 then
      return false, table.concat(problems, "\n  ")
    end
    return true
  end },

  { name = "unmerged", check = function(ctx, facts)
    -- A release tagged on the release branch whose pull request is not merged yet: the
    -- manifests here still name the old versions, so this run would plan the same
    -- releases again and meet their tags at Tag, after pushing nothing useful. Say so
    -- now, with the pull request to merge.
    local _, table_plan = release.make_plan(ctx, facts.fork)
    local pending = {}
    for _, c in ipairs(release.publishable(table_plan)) do
      local name = release.crate_tag(ctx, table_plan, c)
      local target = facts.repo:resolve("refs/tags/" .. name)
      -- A tag on a descendant of this very commit is this commit's own release, made
      -- by an earlier run whose stages this one reuses.
      if target and target ~= facts.commit and not facts.repo:descendant_of(target, facts.commit) then
        pending[#pending + 1] = { crate = c, tag = name, commit = target }
      end
    end
    if #pending == 0 then
      return true
    end
    local pr
    local token = ctx.settings and ctx.settings.forge_token
    if type(token) == "string" and token ~= "" then
      local ok, gh = pcall(release.forge, ctx, facts.fork)
      pr = ok and gh:find_pull(facts.fork.branch) or nil
    end
    -- The open release PR holds the tagged commit, as far as the fork can tell (a head
    -- it has not fetched, or one the forge does not name, is taken at its word).
    local function on_pr(target)
      local head = pr and type(pr.head) == "table" and pr.head.sha
      if not pr or type(head) ~= "string" or head == target then
        return pr ~= nil
      end
      local below = facts.repo:descendant_of(head, target)
      return below == true or below == nil
    end
    local lines = {}
    for _, p in ipairs(pending) do
      if on_pr(p.commit) then
        lines[#lines + 1] = ("%s %s is tagged on the release branch but not merged: merge PR #%d first (%s; tag %s at %s)")
          :format(p.crate.name, p.crate.next, pr.number, pr.html_url or pr.url or "", p.tag, p.commit:sub(1, 12))
      else
        lines[#lines + 1] = ("%s %s is tagged (%s, at %s) but that commit is not merged into %s, and no release pull "
          .. "request is open for %s: merge it into %s first, or delete the tag if that release was abandoned")
          :format(p.crate.name, p.crate.next, p.tag, p.commit:sub(1, 12), facts.fork.base, facts.fork.branch,
            facts.fork.base)
      end
    end
    return false, table.concat(lines, "\n")
  end },

  { name = "clean", check = function(ctx, facts)
    -- The fork is a fresh clone; what can be dirty is the tree the user works in,
    -- whose uncommitted changes would silently not be in the release.
    if not facts.user_repo or not facts.user_repo:workdir() then
      return true
    end
    local clean, status = facts.user_repo:is_clean { untracked = false }
    if clean then
      return true
    end
    local files = {}
    for i, s in ipairs(status) do
      if i > 10 then
        files[#files + 1] = ("... and %d more"):format(#status - 10)
        break
      end
      files[#files + 1] = s.status .. " " .. s.path
    end
    return false, ("the working tree at %s has uncommitted changes that would not be released "
      .. "(the release is cut from commit %s); commit or stash them, or set validate_skip = { \"clean\" }:\n  %s")
      :format(ctx.root, facts.commit:sub(1, 12), table.concat(files, "\n  "))
  end },

  { name = "identity", check = function(_, facts)
    local sig, err = facts.repo:signature()
    if not sig then
      return false, ("the release commits and tags need a git identity: %s"):format(err)
    end
    return true
  end },

  { name = "tokens", check = function(ctx)
    -- Only the secrets the stages of this run require: `--to package` needs none.
    local needed = {}
    for name, stage in pairs(ctx.running or {}) do
      for _, key in ipairs(type(stage) == "table" and stage.requires or {}) do
        local v = ctx.settings[key]
        local alternative = type(stage) == "table" and stage.definition and stage.definition.alternative
        if (v == nil or v == "") and not (alternative and alternative(ctx, key)) then
          local decl = stage.declares and stage.declares[key]
          needed[key] = needed[key] or { env = decl and decl.env, stages = {} }
          table.insert(needed[key].stages, name)
        end
      end
    end
    local lines = {}
    for key, n in pairs(needed) do
      table.sort(n.stages)
      lines[#lines + 1] = ("%s is not set (%s needs it%s)"):format(key, table.concat(n.stages, " and "),
        n.env and ("; set the environment variable " .. n.env) or "")
    end
    if #lines > 0 then
      table.sort(lines)
      return false, table.concat(lines, "\n  ") .. "\n  (`cdp config PIPELINE` shows where every setting comes from)"
    end
    return true
  end },

  { name = "access", check = function(ctx)
    -- The health checks of the stages that reach the outside world, run now, before
    -- Tag pushes anything: a wrong token found at Merge would leave pushed tags behind.
    local failed = {}
    for _, later in ipairs { "merge", "publish" } do
      if ctx.running and ctx.running[later] then
        for _, c in ipairs(require("cdp.stages." .. later).health or {}) do
          local ok, good, reason = pcall(c.check, ctx)
          if not (ok and good == true) then
            failed[#failed + 1] = ("%s (%s): %s"):format(later, c.name, tostring(ok and reason or good))
          end
        end
      end
    end
    if #failed > 0 then
      return false, table.concat(failed, "\n  ")
    end
    return true
  end },
}

-- A Validate stage with OPTS.skip (names) left out and OPTS.extra checks added.
function validate.with(opts)
  opts = opts or {}
  local skip = {}
  for _, name in ipairs(opts.skip or {}) do
    skip[name] = true
  end
  local checks = {}
  for _, c in ipairs(validate.CHECKS) do
    if not skip[c.name] then
      checks[#checks + 1] = c
    end
  end
  for _, c in ipairs(opts.extra or {}) do
    checks[#checks + 1] = c
  end

  local stage = {
    name = opts.name or "validate",
    needs = { "fork" },
    gives = { "validation" },
    modifies_fork = false,
    uses_policy = true, -- the unmerged check plans, as Version will
    settings = release.settings {
      "tag_template", "prerelease", "versions", "forge_api", "forge_repo", "forge_token", "registry_index", "registry_name",
      "registry_token", "http_timeout",
      validate_skip = { type = "list", default = {},
        doc = "checks to leave out: workspace, links, metadata, versions, dependencies, unmerged, clean, identity, tokens, access" },
    },
    -- the tokens and access checks are Merge's and Publish's, run early when they are in the run
    for_later = { "forge_token", "registry_token" },
  }

  function stage.run(ctx, inputs)
    local fork = inputs.fork
    local repo = release.open_fork(fork)
    local before = release.snapshot(repo)
    local facts = { repo = repo, commit = fork.commit, fork = fork, user_repo = git.discover(ctx.root),
      fork_path = fork.path }
    facts.ws, facts.ws_error = workspace.load(fork.path, { repo_root = fork.path })

    local skip_now = {}
    for _, name in ipairs(release.setting(ctx, "validate_skip")) do
      skip_now[name] = true
    end
    local results, failed = {}, {}
    for _, c in ipairs(checks) do
      if skip_now[c.name] then
        results[#results + 1] = { name = c.name, state = "skipped" }
        ctx.log(("check %s: skipped by validate_skip"):format(c.name))
      elseif not facts.ws and c.name ~= "workspace" and c.name ~= "links" and c.name ~= "clean" and c.name ~= "identity"
        and c.name ~= "tokens" and c.name ~= "access" then
        results[#results + 1] = { name = c.name, state = "skipped", reason = "the workspace did not load" }
      else
        local ok, good, reason = pcall(c.check, ctx, facts)
        if ok and good == true then
          results[#results + 1] = { name = c.name, state = "passed" }
          ctx.log(("check %s: ok"):format(c.name))
        else
          local why = ok and tostring(reason or "failed") or tostring(good)
          results[#results + 1] = { name = c.name, state = "failed", reason = why }
          failed[#failed + 1] = ("%s: %s"):format(c.name, why)
          ctx.log(("check %s: FAILED: %s"):format(c.name, why))
        end
      end
    end

    local same, how = release.same_snapshot(before, release.snapshot(repo))
    if facts.user_repo then
      facts.user_repo:close()
    end
    repo:close()
    if not same then
      error("validate changed the release fork, which it must never do: " .. how, 0)
    end
    if #failed > 0 then
      error(("%d of %d checks failed:\n%s"):format(#failed, #checks, table.concat(failed, "\n")), 0)
    end
    return { validation = { commit = fork.commit, checks = results } }
  end

  -- Recorded outputs hold only while the forge and registry still answer for the
  -- stages this run will reach (an earlier run may have stopped before them).
  function stage.verify(ctx)
    for _, c in ipairs(checks) do
      if c.name == "access" then
        local ok, good, reason = pcall(c.check, ctx)
        if not (ok and good == true) then
          return false, tostring(ok and reason or good)
        end
      end
    end
    return true
  end

  return stage
end

local default = validate.with()
default.with = validate.with
default.CHECKS = validate.CHECKS
return default
