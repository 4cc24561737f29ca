-- Validate: is this commit releasable? It reads the fork and never changes it (it
-- checks that, too). Every check has a name; a pipeline turns checks off with
-- `validate_skip = { "licence" }` or makes its own stage with more checks:
--
--   local validate = require "cdp.stages.validate"
--   stages = { "activate", validate.with { extra = { { name = "msrv", check = fn } } }, ... }
--
-- A check is check(ctx, facts) -> true | false, reason, where facts holds the fork
-- (repo), the workspace (ws) and the user's repository (user_repo).
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

validate.CHECKS = {
  { name = "workspace", check = function(_, facts)
    -- Loading it is the check; facts.ws_error says why it failed.
    if not facts.ws then
      return false, facts.ws_error
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
        if v == nil or v == "" then
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
    settings = release.settings {
      "tag_template", "forge_api", "forge_repo", "forge_token", "registry_index", "registry_name", "registry_token",
      "http_timeout",
      validate_skip = { type = "list", default = {},
        doc = "checks to leave out: workspace, metadata, versions, dependencies, clean, identity, tokens, access" },
    },
  }

  function stage.run(ctx, inputs)
    local fork = inputs.fork
    local repo = release.open_fork(fork)
    local before = release.snapshot(repo)
    local facts = { repo = repo, commit = fork.commit, user_repo = git.discover(ctx.root) }
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
      elseif not facts.ws and c.name ~= "workspace" and c.name ~= "clean" and c.name ~= "identity"
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
