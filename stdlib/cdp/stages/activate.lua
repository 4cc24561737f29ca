-- Activate: decide what is being released (the trigger) and make the Release Fork, a
-- private clone at that commit inside the run folder, on the release branch
-- (`release_branch`, default cdp/release/<base>: one per base branch, so every run
-- updates the one release PR). Nothing here, or in any later stage, touches the
-- user's working tree.
--
-- The fork takes the origin's release tags too: what was released is what the origin
-- holds, and a CI checkout or a clone that never fetched the tags of a squash-merged
-- release branch would otherwise plan those releases again. The user's own tags win
-- where both have one (Tag compares with the origin before it pushes anything).
--
-- Its key holds the commit the trigger names: a new commit on the branch is a new
-- fork, never a recorded one made for an older commit.
--
-- Triggers, first match wins: a CI push event in the environment (GitHub Actions'
-- GITHUB_*, GitLab's CI_*), else the `ref` setting (`--set ref=v1.2.0`, a branch, tag
-- or commit; default HEAD), as a manual trigger by the local user.
local git = require "cdp.git"
local proc = require "cdp.proc"
local release = require "cdp.release"

local activate = {
  name = "activate",
  needs = {},
  gives = { "trigger", "fork" },
  modifies_fork = true,
  settings = release.settings {
    "remote", "release_branch", "git_token", "git_username",
    ref = { type = "string", default = "HEAD",
      doc = "what to release: a branch, tag or commit (CI runs take GITHUB_SHA / CI_COMMIT_SHA)" },
    base_branch = { type = "string", default = "",
      doc = "the pull request's base; \"\" = the branch ref is on, else main" },
  },
}

local function env(name)
  local v = proc.getenv(name)
  if v == "" then
    return nil
  end
  return v
end

-- The trigger as the environment or the settings describe it (no commit yet).
function activate.trigger(ctx)
  if env("GITHUB_ACTIONS") == "true" and env("GITHUB_SHA") then
    return {
      event = env("GITHUB_EVENT_NAME") == "schedule" and "schedule"
        or (env("GITHUB_REF") or ""):match("^refs/tags/") and "tag" or "push",
      ref = env("GITHUB_REF") or env("GITHUB_SHA"),
      rev = env("GITHUB_SHA"),
      actor = env("GITHUB_ACTOR") or "github-actions",
      source = "GitHub Actions",
    }
  end
  if env("GITLAB_CI") == "true" and env("CI_COMMIT_SHA") then
    local source = env("CI_PIPELINE_SOURCE")
    return {
      event = source == "schedule" and "schedule" or env("CI_COMMIT_TAG") and "tag" or "push",
      ref = env("CI_COMMIT_TAG") and ("refs/tags/" .. env("CI_COMMIT_TAG"))
        or env("CI_COMMIT_BRANCH") and ("refs/heads/" .. env("CI_COMMIT_BRANCH"))
        or env("CI_COMMIT_REF_NAME") or env("CI_COMMIT_SHA"),
      rev = env("CI_COMMIT_SHA"),
      actor = env("GITLAB_USER_LOGIN") or "gitlab-ci",
      source = "GitLab CI",
    }
  end
  local ref = release.setting(ctx, "ref")
  return { event = ref == "HEAD" and "manual" or (ref:match("^v?%d") and "tag" or "manual"),
    ref = ref, rev = ref, actor = proc.user(), source = "command line" }
end

-- The user's repository and the commit the trigger names.
local function resolve(ctx, trigger)
  local repo, err = git.discover(ctx.root)
  if not repo then
    error(("%s is not in a git repository: %s"):format(ctx.root, err), 0)
  end
  local commit, rerr = repo:resolve(trigger.rev)
  if not commit then
    error(("cannot release '%s' (from %s): %s"):format(trigger.rev, trigger.source, rerr), 0)
  end
  local ref = trigger.ref
  if ref == "HEAD" then
    ref = repo:head_ref() or commit
  end
  return repo, commit, ref
end

local function base_branch(ctx, ref)
  local base = release.setting(ctx, "base_branch")
  if base ~= "" then
    return base
  end
  return ref:match("^refs/heads/(.+)$") or "main"
end

-- The URL the remote NAME pushes to, as configured: credentials in it are used as given
-- (repo:remotes() shows them masked).
local function remote_url(repo, name)
  return repo:config_get("remote." .. name .. ".pushurl") or repo:config_get("remote." .. name .. ".url")
end

-- The release branch for BASE: release_branch with {base} filled in.
function activate.release_branch(ctx, base)
  local name = release.setting(ctx, "release_branch"):gsub("{base}", function() return base end)
  if name == "" or name:find("[%s~^:?*%[\\]") or name:find("..", 1, true) or name:sub(1, 1) == "/"
    or name:sub(-1) == "/" or name:find("//", 1, true) or name:sub(-5) == ".lock" then
    error(("release_branch '%s' (for base %s) is not a valid branch name"):format(name, base), 0)
  end
  return name
end

-- The origin's tags, fetched into the fork; a failure is logged, not fatal: the plan
-- then rests on the repository's own tags, as `cdp plan` does.
local function fetch_origin_tags(ctx, fork, origin)
  local before = #fork:tags()
  local ok, err = fork:fetch(origin, { "refs/tags/*:refs/tags/*" }, release.git_credentials(ctx, origin))
  if not ok then
    ctx.log(("cannot read the release tags of %s (%s); planning from the repository's own tags"):format(origin, err))
    return
  end
  local added = #fork:tags() - before
  if added > 0 then
    ctx.log(("%d tag%s from %s that the repository had not fetched"):format(added, added == 1 and "" or "s", origin))
  end
end

-- The key's facts: the commit the trigger names now.
function activate.key_facts(ctx)
  local repo, commit = resolve(ctx, activate.trigger(ctx))
  repo:close()
  return { commit = commit }
end

-- For a dry run: what the fork would be, made of nothing (the plan of the others'
-- previews is read from the repository where it is). Sets CTX.shared.fork.
function activate.preview(ctx)
  local t = activate.trigger(ctx)
  local user_repo, commit, ref = resolve(ctx, t)
  user_repo:close()
  local base = base_branch(ctx, ref)
  local branch = activate.release_branch(ctx, base)
  ctx.shared.fork = { path = ctx.root, commit = commit, branch = branch, base = base }
  return { ("release fork: %s at %s on branch %s, for base %s (not made: dry run)"):format(ctx.root,
    commit:sub(1, 12), branch, base) }
end

function activate.run(ctx)
  local t = activate.trigger(ctx)
  local user_repo, commit, ref = resolve(ctx, t)
  local path = ctx.run_dir .. "/fork"
  local base = base_branch(ctx, ref)
  local branch = activate.release_branch(ctx, base)
  local remote = release.setting(ctx, "remote")
  local origin = remote_url(user_repo, remote) or (remote:find("[:/]") and remote) or nil
  -- The identity the user commits with, wherever their git config sets it.
  local identity = user_repo:signature()
  user_repo:close()

  -- A fork left by an attempt that did not finish is made again from scratch.
  ctx.log(("release fork: cloning %s at %s into %s"):format(ctx.root, commit:sub(1, 12), path))
  local fork = release.make_fork(ctx.root, path, { branch = branch, commit = commit, origin = origin,
    identity = identity })
  if origin then
    fetch_origin_tags(ctx, fork, origin)
  end
  fork:close()
  ctx.log(("release fork ready on branch %s (origin %s)"):format(branch,
    origin and require("cdp.settings").mask_url(origin) or "none"))

  -- Recorded with its password masked; release.push_url reads it back from the fork.
  local settings = require "cdp.settings"
  return {
    trigger = { event = t.event, ref = ref, commit = commit, actor = t.actor, source = t.source },
    fork = { path = path, commit = commit, branch = branch, base = base,
      origin = origin and settings.mask_url(origin) or false, remote = settings.mask_url(remote) },
  }
end

-- A recorded Activate still holds when its fork exists at its commit and the
-- trigger still names that commit (a moved branch means a new release).
function activate.verify(ctx, outputs)
  local t = activate.trigger(ctx)
  local ok, user_repo, commit = pcall(resolve, ctx, t)
  if not ok then
    return false, user_repo
  end
  user_repo:close()
  if commit ~= outputs.trigger.commit then
    return false, ("%s now points at %s, not %s"):format(t.rev, commit:sub(1, 12), outputs.trigger.commit:sub(1, 12))
  end
  local fork = git.open(outputs.fork.path)
  if not fork then
    return false, "the release fork " .. outputs.fork.path .. " is gone"
  end
  fork:close()
  return true
end

activate.health = {
  { name = "repository", check = function(ctx)
    local repo, err = git.discover(ctx.root)
    if not repo then
      return false, ("%s is not in a git repository: %s"):format(ctx.root, err)
    end
    repo:close()
    return true
  end },
}

return activate
