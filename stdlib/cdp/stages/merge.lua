-- Merge: push the release branch (the packaged commit) to the origin and keep one
-- release pull request per base branch: open it, or update the open one (title, and a
-- body with the plan and each crate's changelog section). cdp's older release PRs for
-- that base (other branches, from runs before the release branch was stable) are closed
-- with a comment naming the one that replaces them.
--
-- The release branch is cdp's: every run makes it anew on the base, so it is replaced,
-- never merged into. Replaced with a lease: cdp keeps the commit it last pushed in
-- refs/cdp/pushed/<branch> on the origin, and pushes only while the branch is still
-- there (or gone, or an ancestor of the new commit). A commit someone else pushed on
-- it stops the stage, naming the commit and its author; nothing is ever force-pushed
-- over it.
--
-- merge_method = "merge" | "squash" | "rebase" has Merge merge the pull request itself
-- once its checks pass (statuses and check runs on the pushed commit), only while its
-- head is still that commit; "none" (the default) leaves merging to people.
--
-- Settings: forge_api, forge_repo ("" = from the origin URL), forge_token, git_token,
-- git_username, merge_method, merge_timeout.
local proc = require "cdp.proc"
local release = require "cdp.release"

local merge = {
  name = "merge",
  needs = { "fork", "plan", "packaged" },
  gives = { "pr" },
  modifies_fork = false,
  settings = release.settings {
    "remote", "forge_api", "forge_repo", "git_username", "forge_token", "git_token", "tag_template", "http_timeout",
    merge_method = { type = "string", default = "none", choices = { "none", "merge", "squash", "rebase" },
      doc = "how Merge merges the release PR once its checks pass; none leaves it to people" },
    merge_timeout = { type = "number", default = 3600,
      doc = "seconds Merge waits for the release PR's checks to pass before it gives up (merge_method)" },
  },
  requires = { "forge_token" },
}

-- The first line of every release PR body: how cdp knows its own pull requests.
merge.MARKER = "<!-- cdp release pull request -->"

-- Whether PR (as the forge returns it) is a release PR cdp made: its body carries the
-- marker, or the words of the bodies cdp wrote before there was one.
function merge.is_cdp_pull(pr)
  local body = type(pr.body) == "string" and pr.body or ""
  return body:find(merge.MARKER, 1, true) ~= nil or body:find("prepared by cdp (run `", 1, true) ~= nil
end

-- The pull request's title.
function merge.title(plan)
  return release.summary(release.planned(plan))
end

-- For a dry run: the release PR Merge would open or update.
function merge.preview(ctx)
  local _, table_plan, fork = release.preview_plan(ctx)
  if #release.planned(table_plan) == 0 then
    return { "pull request: none (nothing to release)" }
  end
  return { ("pull request %q%s"):format(merge.title(table_plan),
    fork.branch and (" from %s into %s"):format(fork.branch, fork.base) or "") }
end

-- The pull request's body: a plan table, then each crate's changelog section.
-- Deterministic, so an unchanged plan leaves the pull request unchanged.
function merge.body(ctx, inputs)
  local fork, plan = inputs.fork, inputs.plan
  local planned = release.planned(plan)
  local out = {
    merge.MARKER,
    ("This pull request releases %d crate%s from %s at %s, prepared by cdp.")
      :format(#planned, #planned == 1 and "" or "s", fork.base, fork.commit:sub(1, 12)),
    "",
    "| crate | from | to | bump | tag |",
    "|---|---|---|---|---|",
  }
  for _, c in ipairs(planned) do
    out[#out + 1] = ("| %s | %s | %s | %s | %s |"):format(c.name,
      (c.current ~= "" and c.current ~= c.next) and c.current or "(new)", c.next, c.bump,
      c.publish == false and "(not published)" or ("`" .. release.crate_tag(ctx, plan, c) .. "`"))
  end
  for _, c in ipairs(planned) do
    out[#out + 1] = ""
    out[#out + 1] = ("## %s %s"):format(c.name, c.next)
    out[#out + 1] = ""
    out[#out + 1] = release.crate_notes(fork.path, c, inputs.packaged) or "_No changelog section for this version._"
  end
  out[#out + 1] = ""
  if ctx.running and ctx.running.publish then
    out[#out + 1] = "Merging this pull request brings the version bumps and changelogs to the base branch; "
      .. "the crates are published by the run's Publish stage."
  else
    out[#out + 1] = "Merging this pull request brings the version bumps and changelogs to the base branch; "
      .. "then the publish pipeline (`cdp run publish`) on the merged commit tags and publishes the crates."
  end
  return table.concat(out, "\n") .. "\n"
end

-- Private refs in the fork: what is pushed, and what the origin had when we looked.
local function push_ref(branch) return "refs/cdp/push/" .. branch end
local function seen_ref(branch) return "refs/cdp/remote-head/" .. branch end
local function seen_lease_ref(branch) return "refs/cdp/remote-pushed/" .. branch end
-- On the origin: the commit cdp last pushed as BRANCH.
function merge.lease_ref(branch) return "refs/cdp/pushed/" .. branch end

-- The origin's BRANCH and cdp's record of what it pushed there: { tip, pushed }, each
-- a commit or nil; or nil, message, code.
function merge.remote_branch(repo, url, branch, credentials)
  for _, name in ipairs { seen_ref(branch), seen_lease_ref(branch) } do
    if repo:resolve(name) then
      assert(repo:reference_delete(name))
    end
  end
  local ok, err, code = repo:fetch(url, {
    "+refs/heads/" .. branch .. ":" .. seen_ref(branch),
    "+" .. merge.lease_ref(branch) .. ":" .. seen_lease_ref(branch),
  }, credentials)
  if not ok then
    return nil, ("cannot read the release branch %s of %s: %s%s"):format(branch, url, err,
      code == "EAUTH" and " (check git_token)" or ""), code
  end
  return { tip = repo:resolve(seen_ref(branch)), pushed = repo:resolve(seen_lease_ref(branch)) }
end

-- The commits on TIP that cdp did not push: reachable from it and from neither what cdp
-- pushed last nor the commit about to be pushed. { {id, summary, author} }, newest first.
local function foreign_commits(repo, tip, hide)
  local out = {}
  for _, id in ipairs(assert(repo:walk { from = tip, hide = hide, limit = 20 })) do
    local c = repo:commit(id)
    out[#out + 1] = { id = id, summary = c and c.summary or "?",
      author = c and ("%s <%s>"):format(c.author.name, c.author.email) or "?" }
  end
  return out
end

-- How the release branch is to be updated: { lease = oid | false, push = bool }, or a
-- raise naming the commits someone else pushed.
function merge.update_plan(repo, url, branch, seen, commit)
  if not seen.tip then
    return { lease = false, push = true, how = "created" }
  elseif seen.tip == commit then
    return { lease = commit, push = seen.pushed ~= commit, how = "already there" }
  elseif repo:descendant_of(commit, seen.tip) then
    return { lease = seen.tip, push = true, how = "fast-forwarded" }
  elseif seen.tip == seen.pushed then
    return { lease = seen.tip, push = true, how = "replaced (cdp pushed it last)" }
  end
  local hide = { commit }
  if seen.pushed then
    hide[#hide + 1] = seen.pushed
  end
  local lines = {}
  for _, c in ipairs(foreign_commits(repo, seen.tip, hide)) do
    lines[#lines + 1] = ("  %s %s (%s)"):format(c.id:sub(1, 12), c.summary, c.author)
  end
  error(("the release branch %s on %s has commits cdp did not push:\n%s\n"
    .. "cdp never pushes over them: merge them into the base branch or drop them from %s (or delete the branch), then run again")
    :format(branch, url, table.concat(lines, "\n"), branch), 0)
end

-- Push COMMIT as the release branch, with the lease. Returns how it went.
local function push_release_branch(ctx, repo, fork, commit, url)
  local credentials = release.git_credentials(ctx, url)
  local seen, err = merge.remote_branch(repo, url, fork.branch, credentials)
  if not seen then
    error(err, 0)
  end
  local update = merge.update_plan(repo, url, fork.branch, seen, commit)
  if not update.push then
    ctx.log(("%s on %s is at %s already"):format(fork.branch, url, commit:sub(1, 12)))
    return update.how
  end
  assert(repo:reference_set(push_ref(fork.branch), commit, "cdp: merge", { force = true }))
  local specs = {
    ("+%s:refs/heads/%s"):format(push_ref(fork.branch), fork.branch),
    ("+%s:%s"):format(push_ref(fork.branch), merge.lease_ref(fork.branch)),
  }
  local ok, perr, code = repo:push(url, specs, {
    token = credentials and credentials.token, username = credentials and credentials.username,
    lease = { ["refs/heads/" .. fork.branch] = update.lease },
  })
  if not ok then
    if code == "ESTALE" then
      error(("cannot push the release branch %s to %s: someone pushed to it while cdp was looking (%s); "
        .. "nothing was forced over it — run again to see whose commits they are"):format(fork.branch, url, perr), 0)
    end
    error(("cannot push the release branch %s to %s: %s%s"):format(fork.branch, url, perr,
      code == "EAUTH" and ("; " .. release.credentials_source(ctx, fork, url)) or ""), 0)
  end
  ctx.log(("%s %s on %s at %s"):format(fork.branch, update.how, url, commit:sub(1, 12)))
  return update.how
end

local function forge_failure(gh, what, err, code)
  local hint = code == "EAUTH" and " (check forge_token)"
    or code == "ENOTFOUND" and (" (check forge_repo and forge_api: %s at %s)"):format(gh.repo, gh.api)
    or ""
  return ("%s: %s%s"):format(what, err, hint)
end

-- cdp's other open release PRs into the base, closed with a comment naming PR.
local function close_stale(ctx, gh, fork, pr)
  local open, err, code = gh:open_pulls(fork.base)
  if not open then
    error(forge_failure(gh, "cannot list the open pull requests into " .. fork.base, err, code), 0)
  end
  local closed = {}
  for _, other in ipairs(open) do
    local head = type(other.head) == "table" and other.head.ref
    if other.number ~= pr.number and head ~= fork.branch and merge.is_cdp_pull(other) then
      local note = ("Superseded by #%d (%s): cdp keeps one release pull request per base branch, on `%s`.")
        :format(pr.number, pr.html_url or pr.url or "", fork.branch)
      local ok, cerr, ccode = gh:comment(other.number, note)
      if ok then
        ok, cerr, ccode = gh:close_pull(other.number)
      end
      if not ok then
        error(forge_failure(gh, ("cannot close the stale release pull request #%d"):format(other.number), cerr, ccode), 0)
      end
      ctx.log(("closed the stale release pull request #%d (%s), superseded by #%d"):format(other.number,
        tostring(head), pr.number))
      closed[#closed + 1] = math.tointeger(other.number) or other.number
    end
  end
  return closed
end

-- Wait for the checks on SHA; returns once they pass, raises when one fails or time runs out.
local function wait_for_checks(ctx, gh, pr, sha)
  local timeout = release.setting(ctx, "merge_timeout")
  local deadline = proc.clock() + timeout
  local delay, said = 5, nil
  while true do
    local checks, err, code = gh:checks(sha)
    if not checks then
      error(forge_failure(gh, ("cannot read the checks of pull request #%d"):format(pr.number), err, code), 0)
    end
    if checks.state == "success" then
      ctx.log(checks.total == 0 and ("no checks report on %s: nothing to wait for"):format(sha:sub(1, 12))
        or ("all %d checks passed on %s"):format(checks.total, sha:sub(1, 12)))
      return
    elseif checks.state == "failure" then
      error(("pull request #%d (%s) is not merged: its checks failed on %s: %s"):format(pr.number,
        pr.html_url or "", sha:sub(1, 12), table.concat(checks.failing, ", ")), 0)
    end
    if proc.clock() >= deadline then
      error(("pull request #%d (%s) is not merged: its checks were still running after %ds (merge_timeout): %s")
        :format(pr.number, pr.html_url or "", timeout, table.concat(checks.pending, ", ")), 0)
    end
    local now = table.concat(checks.pending, ", ")
    if now ~= said then
      ctx.log(("waiting for the checks of pull request #%d: %s"):format(pr.number, now))
      said = now
    end
    proc.sleep(math.min(delay, math.max(deadline - proc.clock(), 0.1)))
    delay = math.min(delay * 1.5, 30)
  end
end

-- Merge PR by merge_method once its checks pass. Returns the merge commit.
local function merge_when_green(ctx, gh, pr, sha, title)
  local method = release.setting(ctx, "merge_method")
  wait_for_checks(ctx, gh, pr, sha)
  local done, err, code = gh:merge_pull(pr.number, { method = method, sha = sha, title = title })
  if not done then
    error(forge_failure(gh, ("cannot %s pull request #%d (%s)"):format(method == "merge" and "merge"
      or (method .. "-merge"), pr.number, pr.html_url or ""), err, code), 0)
  end
  ctx.log(("pull request #%d merged (%s): %s"):format(pr.number, method, tostring(done.sha)))
  return done.sha
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

  local repo <close> = release.open_fork(fork, { write = true })
  if repo:resolve(packaged.commit) ~= packaged.commit then
    error(("the release fork %s does not have the packaged commit %s"):format(fork.path, packaged.commit), 0)
  end
  local pushed = push_release_branch(ctx, repo, fork, packaged.commit, url)

  local title = merge.title(plan)
  local pr, what, perr_code = gh:open_or_update_pull {
    head = fork.branch, base = fork.base, title = title, body = merge.body(ctx, inputs),
  }
  if not pr then
    error(forge_failure(gh, "cannot open the pull request for " .. fork.branch, what, perr_code), 0)
  end
  ctx.log(("pull request #%d %s: %s"):format(pr.number, what, pr.html_url or pr.url or ""))
  local closed = close_stale(ctx, gh, fork, pr)
  local out = { url = pr.html_url or pr.url, number = math.tointeger(pr.number) or pr.number, head = fork.branch,
    base = fork.base, action = what, commit = packaged.commit, branch_update = pushed, closed = closed,
    merged = false }
  if release.setting(ctx, "merge_method") ~= "none" then
    out.merged = true
    out.merge_commit = merge_when_green(ctx, gh, pr, packaged.commit, ("%s (#%d)"):format(title, pr.number))
  end
  return { pr = out }
end

-- Recorded outputs hold while the pull request is still open for the branch (or,
-- merged by this stage, while the forge says it is merged).
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
  if pr.merged then
    local now, err = gh:pull(pr.number)
    if not now then
      return false, err
    end
    if now.merged ~= true then
      return false, ("pull request #%d is no longer merged"):format(pr.number)
    end
    return true
  end
  local found, err = gh:find_pull(pr.head)
  if err then
    return false, err
  end
  if not found or found.number ~= pr.number then
    return false, ("pull request #%d for %s is no longer open"):format(pr.number, pr.head)
  end
  return true
end

-- The forge repository the user's remote names (or forge_repo) answers with our token,
-- and the token may push there (a token that may only read fails here, before Tag).
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
    local access, err = gh:access()
    if not access then
      return false, err
    end
    if access.push == false then
      return false, ("the forge token may read %s but not push to it: the release branch and its pull request need "
        .. "push rights (a token with contents: write and pull-requests: write)"):format(gh.repo)
    end
    if access.scopes and #access.scopes > 0 then
      local has = {}
      for _, s in ipairs(access.scopes) do has[s] = true end
      if not (has.repo or has.public_repo) then
        return false, ("the forge token's scopes (%s) do not include repo or public_repo: it cannot push to %s or open "
          .. "pull requests there"):format(table.concat(access.scopes, ", "), gh.repo)
      end
    end
    return true
  end },
}

return merge
