-- Merge: push the release branch (the packaged commit) to the origin and open a pull
-- request back to the base branch, with the plan and each crate's changelog section as
-- its body; when a pull request for that branch is open already, update it instead.
-- The branch is never force-pushed: a remote branch that is not an ancestor of the
-- packaged commit fails the stage, naming branch and remote.
--
-- Settings: forge_api, forge_repo ("" = from the origin URL), forge_token, git_token,
-- git_username.
local release = require "cdp.release"

local merge = {
  name = "merge",
  needs = { "fork", "plan", "packaged" },
  gives = { "pr" },
  modifies_fork = false,
  settings = release.settings { "remote", "forge_api", "forge_repo", "git_username", "forge_token", "git_token",
    "http_timeout" },
  requires = { "forge_token" },
}

-- The pull request's body: a plan table, then each crate's changelog section.
-- Deterministic, so an unchanged plan leaves the pull request unchanged.
function merge.body(ctx, inputs)
  local fork, plan = inputs.fork, inputs.plan
  local planned = release.planned(plan)
  local out = {
    ("This pull request releases %d crate%s, prepared by cdp (run `%s`).")
      :format(#planned, #planned == 1 and "" or "s", ctx.run),
    "",
    "| crate | from | to | bump |",
    "|---|---|---|---|",
  }
  for _, c in ipairs(planned) do
    out[#out + 1] = ("| %s | %s | %s | %s%s |"):format(c.name, c.current ~= "" and c.current or "(new)",
      c.next, c.bump, c.publish == false and " (not published)" or "")
  end
  for _, c in ipairs(planned) do
    out[#out + 1] = ""
    out[#out + 1] = ("## %s %s"):format(c.name, c.next)
    out[#out + 1] = ""
    out[#out + 1] = release.crate_notes(fork.path, c, inputs.packaged) or "_No changelog section for this version._"
  end
  out[#out + 1] = ""
  out[#out + 1] = "Merging this pull request brings the version bumps and changelogs to the base branch; "
    .. "the crates are published by the run's Publish stage."
  return table.concat(out, "\n") .. "\n"
end

-- A private ref at the packaged commit, pushed as the release branch: the push
-- sends exactly that commit whatever the fork's branch points at now.
local function push_ref(fork)
  return "refs/cdp/push/" .. fork.branch
end

function merge.run(ctx, inputs)
  local fork, plan, packaged = inputs.fork, inputs.plan, inputs.packaged
  local planned = release.planned(plan)
  if #planned == 0 then
    -- A run on a commit with nothing to release is a success with nothing to do.
    ctx.log("the plan releases nothing: no release branch to push, no pull request to open")
    return { pr = { action = "none", head = fork.branch, base = fork.base, number = 0, url = false } }
  end
  local url = release.push_url(fork, "cannot push the release branch " .. fork.branch)
  -- Ask for the forge first: a forge we cannot name fails before anything is pushed.
  local gh = release.forge(ctx, fork)

  local repo <close> = release.open_fork(fork)
  if repo:resolve(packaged.commit) ~= packaged.commit then
    error(("the release fork %s does not have the packaged commit %s"):format(fork.path, packaged.commit), 0)
  end
  assert(repo:reference_set(push_ref(fork), packaged.commit, "cdp: merge", { force = true }))
  local spec = ("%s:refs/heads/%s"):format(push_ref(fork), fork.branch)
  local ok, err, code = repo:push(url, { spec }, release.git_credentials(ctx, url))
  if not ok then
    if code == "ENONFASTFORWARD" then
      error(("cannot push the release branch %s to %s: the remote's %s has commits the packaged commit %s does not (non-fast-forward); "
        .. "it was never force-pushed — start a new run, or delete the remote branch if it is stale (%s)")
        :format(fork.branch, url, fork.branch, packaged.commit, err), 0)
    end
    error(("cannot push the release branch %s to %s: %s%s"):format(fork.branch, url, err,
      code == "EAUTH" and ("; " .. release.credentials_source(ctx, fork, url)) or ""), 0)
  end
  ctx.log(("pushed %s at %s to %s"):format(fork.branch, packaged.commit:sub(1, 12), url))

  local pr, what, perr_code = gh:open_or_update_pull {
    head = fork.branch, base = fork.base, title = release.summary(planned), body = merge.body(ctx, inputs),
  }
  if not pr then
    local hint = perr_code == "EAUTH" and " (check forge_token)"
      or perr_code == "ENOTFOUND" and (" (check forge_repo and forge_api: %s at %s)"):format(gh.repo, gh.api)
      or ""
    error(("cannot open the pull request for %s: %s%s"):format(fork.branch, what, hint), 0)
  end
  ctx.log(("pull request #%d %s: %s"):format(pr.number, what, pr.html_url or pr.url or ""))
  return { pr = { url = pr.html_url or pr.url, number = math.tointeger(pr.number) or pr.number, head = fork.branch, base = fork.base,
    action = what } }
end

-- Recorded outputs hold while the pull request is still open for the branch.
function merge.verify(ctx, outputs, inputs)
  local pr = outputs.pr
  if pr.action == "none" then
    return true
  end
  local fork = inputs and inputs.fork
  if not fork then
    local git = require "cdp.git"
    local repo <close> = git.open(ctx.run_dir .. "/fork")
    fork = { origin = repo and repo:config_get("remote.origin.url") or false }
  end
  local gh = release.forge(ctx, fork)
  local found, err = gh:find_pull(pr.head)
  if err then
    return false, err
  end
  if not found or found.number ~= pr.number then
    return false, ("pull request #%d for %s is no longer open"):format(pr.number, pr.head)
  end
  return true
end

-- The forge repository the user's remote names (or forge_repo) answers with our token.
merge.health = {
  { name = "forge repository", check = function(ctx)
    local git = require "cdp.git"
    local origin
    local repo <close> = ctx.root and git.discover(ctx.root)
    if repo then
      local remote = release.setting(ctx, "remote")
      for _, r in ipairs(repo:remotes()) do
        if r.name == remote then origin = r.url end
      end
    end
    local ok, gh = pcall(release.forge, ctx, { origin = origin or false })
    if not ok then
      return false, gh
    end
    local res, err = gh:call("GET", "/repos/" .. gh.repo)
    if not res then
      return false, err
    end
    return true
  end },
}

return merge
