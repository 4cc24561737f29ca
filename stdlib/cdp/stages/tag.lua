-- Tag: an annotated tag per released crate on the packaged commit, pushed to the
-- origin. Nothing is ever forced: a tag already at the packaged commit (here or on the
-- remote) is left alone, a tag at any other commit fails the stage naming both, and
-- that check covers every tag before anything is pushed.
--
-- Only crates that go to a registry are tagged. The plan never bumps a publish = false
-- crate ("never released by cdp"), and a tag is what the next plan measures a crate's
-- change set from: a tag for a crate cdp does not release would claim a release that
-- never happened.
--
-- Settings: tag_template, remote (through the fork), git_token and git_username (HTTPS).
local release = require "cdp.release"

local tag = {
  name = "tag",
  needs = { "fork", "plan", "packaged" },
  gives = { "tags" },
  modifies_fork = false,
  settings = release.settings { "tag_template", "git_username", "git_token", "registry_index", "http_timeout" },
}

-- Remote tags are fetched here, away from refs/tags, so a look never changes the
-- fork's own tags.
local REMOTE_TAGS = "refs/cdp/remote-tags/"

-- { [tag] = commit } as the remote has them now. The private namespace is emptied
-- first: a tag deleted on the remote must not be seen as still there. SOURCE says
-- where the credentials come from, should the remote refuse them.
function tag.remote_tags(repo, url, credentials, source)
  for _, r in ipairs(repo:references(REMOTE_TAGS .. "*")) do
    assert(repo:reference_delete(r.name))
  end
  local ok, err, code = repo:fetch(url, { "+refs/tags/*:" .. REMOTE_TAGS .. "*" }, credentials)
  if not ok then
    return nil, ("cannot read the tags of %s: %s%s"):format(url, err,
      code == "EAUTH" and ("; " .. (source or "check git_token")) or ""), code
  end
  local out = {}
  for _, r in ipairs(repo:references(REMOTE_TAGS .. "*")) do
    out[r.name:sub(#REMOTE_TAGS + 1)] = repo:resolve(r.name) or r.target
  end
  return out
end

-- The tags this run makes: { {name, crate, version} } in plan order.
function tag.wanted(ctx, plan)
  local out = {}
  for _, c in ipairs(release.publishable(plan)) do
    out[#out + 1] = { name = release.crate_tag(ctx, plan, c), crate = c.name, version = c.next }
  end
  return out
end

-- For a dry run: the tags Tag would push.
function tag.preview(ctx)
  local _, table_plan = release.preview_plan(ctx)
  local out = {}
  for _, t in ipairs(tag.wanted(ctx, table_plan)) do
    out[#out + 1] = "tag " .. t.name
  end
  return out
end

function tag.run(ctx, inputs)
  local fork, plan, packaged = inputs.fork, inputs.plan, inputs.packaged
  local commit = packaged.commit
  local url = release.push_url(fork, "cannot push the release tags")
  local credentials = release.git_credentials(ctx, url)
  local repo <close> = release.open_fork(fork, { write = true })
  if repo:resolve(commit) ~= commit then
    error(("the release fork %s does not have the packaged commit %s"):format(fork.path, commit), 0)
  end
  local wanted = tag.wanted(ctx, plan)
  if #wanted == 0 then
    ctx.log("no crate is released: no tags to make")
    return { tags = {} }
  end
  -- Package looked already; a Package reused from an earlier run may have looked at
  -- another registry, or long ago.
  release.look_in_registry(ctx, packaged)

  local remote, err = tag.remote_tags(repo, url, credentials, release.credentials_source(ctx, fork, url))
  if not remote then
    error(err, 0)
  end
  -- Look at every tag before acting on any, so a conflict leaves nothing pushed.
  local conflicts, to_create, to_push = {}, {}, {}
  for _, t in ipairs(wanted) do
    local here = repo:resolve("refs/tags/" .. t.name)
    local there = remote[t.name]
    if there and there ~= commit then
      conflicts[#conflicts + 1] = ("tag %s already exists on %s at commit %s, not at the packaged commit %s")
        :format(t.name, url, there, commit)
    elseif here and here ~= commit then
      conflicts[#conflicts + 1] = ("tag %s already exists in the release fork at commit %s, not at the packaged commit %s")
        :format(t.name, here, commit)
    else
      if not here then
        to_create[#to_create + 1] = t
      end
      if there then
        ctx.log(("tag %s is already on %s at %s: nothing to do"):format(t.name, url, commit:sub(1, 12)))
      else
        to_push[#to_push + 1] = t
      end
    end
  end
  if #conflicts > 0 then
    error(table.concat(conflicts, "\n") .. "\nnothing was pushed; a released version is never re-tagged — "
      .. "bump the version, or delete the stray tag if it was never released", 0)
  end

  for _, t in ipairs(to_create) do
    local ok, terr = repo:tag_create(t.name, commit, ("%s %s"):format(t.crate, t.version))
    if not ok then
      error(("cannot create tag %s in the release fork: %s"):format(t.name, terr), 0)
    end
    ctx.log(("tagged %s at %s"):format(t.name, commit:sub(1, 12)))
  end
  if #to_push > 0 then
    local specs, names = {}, {}
    for _, t in ipairs(to_push) do
      specs[#specs + 1] = ("refs/tags/%s:refs/tags/%s"):format(t.name, t.name)
      names[#names + 1] = t.name
    end
    local ok, perr, code = repo:push(url, specs, credentials)
    if not ok then
      local why = code == "ENONFASTFORWARD" and "the remote refused it as non-fast-forward"
        or code == "EREJECTED" and "the remote rejected it"
        or code == "ELOCKED" and "the remote is locked"
        or code == "EAUTH" and ("authentication failed; " .. release.credentials_source(ctx, fork, url))
        or "the push failed"
      error(("cannot push tags %s to %s: %s: %s"):format(table.concat(names, ", "), url, why, perr), 0)
    end
    ctx.log(("pushed %s to %s"):format(table.concat(names, ", "), url))
  end

  local out = {}
  for _, t in ipairs(wanted) do
    out[t.name] = commit
  end
  return { tags = out }
end

-- Where verify looks: the engine passes verify no inputs, so the fork is found where
-- Activate makes it and the remote by the name Activate gives it. Its URL, not the
-- name: cdp.git's fetch from a configured remote follows that remote's own refspecs
-- (and auto-follows tags into refs/tags), not the ones given.
function tag.origin_url(ctx, inputs, repo)
  local fork = inputs and inputs.fork
  if fork then
    return fork.origin and release.push_url(fork, "cannot check the release tags")
  end
  return repo:config_get("remote.origin.url")
end

-- The recorded tags hold while the remote still has each of them at its commit.
function tag.verify(ctx, outputs, inputs)
  local tags = outputs.tags or {}
  if next(tags) == nil then
    return true
  end
  local path = inputs and inputs.fork and inputs.fork.path or (ctx.run_dir .. "/fork")
  local git = require "cdp.git"
  local repo <close> = git.open(path)
  if not repo then
    return false, "the release fork " .. path .. " is gone"
  end
  local url = tag.origin_url(ctx, inputs, repo)
  if type(url) ~= "string" or url == "" then
    return false, "the release fork has no origin to check the tags on"
  end
  local remote, err = tag.remote_tags(repo, url, release.git_credentials(ctx, url),
    release.credentials_source(ctx, inputs and inputs.fork, url))
  if not remote then
    return false, err
  end
  local names = {}
  for name in pairs(tags) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local commit = tags[name]
    if remote[name] ~= commit then
      return false, ("tag %s on %s is %s, not %s"):format(name, url,
        remote[name] and ("at " .. remote[name]) or "gone", commit)
    end
  end
  return true
end

return tag
