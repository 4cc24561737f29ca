-- Publish: upload the exact .crate bytes Package made to the registry, in dependency
-- order, then a GitHub release per crate.
--
-- It looks before it acts, so running it again (cdp resume after a failure midway)
-- publishes only what is missing and never anything twice: every crate's version is
-- read from the sparse index first — there with the same cksum is skipped, there with
-- another cksum fails the stage before anything is uploaded. After each upload it waits
-- until the index shows the version, since the next crate may depend on it. New crates
-- and new versions are paced under the registry's limits (crates.io's by default), with
-- the ETA logged up front; a 429 is waited out as Retry-After asks.
--
-- Settings: registry_index, registry_token, registry_limits ("crates.io" | "none"),
-- registry_index_timeout, forge_api, forge_repo, forge_token (no token: no releases),
-- tag_template.
local fs = require "cdp.fs"
local proc = require "cdp.proc"
local registry = require "cdp.registry"
local release = require "cdp.release"
local trusted = require "cdp.trusted"
local workspace = require "cdp.workspace"

local publish = {
  name = "publish",
  needs = { "fork", "plan", "packaged" },
  gives = { "published" },
  modifies_fork = false,
  approval = "before",
  settings = release.settings {
    "registry_index", "registry_name", "registry_token", "forge_api", "forge_repo", "forge_token", "tag_template",
    "http_timeout",
    registry_limits = { type = "string", default = "crates.io", choices = { "crates.io", "none" },
      doc = "crates.io paces new crates (burst 5, then 1 per 10 min) and new versions (burst 30, then 1 per minute), "
        .. "with an ETA shown up front; none does not" },
    registry_index_timeout = { type = "number", default = 300,
      doc = "seconds to wait for a published version to appear in the index before its dependents go" },
  },
  requires = { "registry_token" },
}

local LIMITS = { ["crates.io"] = registry.CRATES_IO_LIMITS, none = {} }

local registry_of = release.registry

-- What to publish, in publish order: { {crate = plan entry, pkg = cargo metadata
-- package, file, cksum, version} }. Raises when the fork and Package disagree.
function publish.items(ctx, inputs)
  local fork, plan, packaged = inputs.fork, inputs.plan, inputs.packaged
  local wanted = {}
  for _, c in ipairs(release.publishable(plan)) do
    wanted[c.name] = c
  end
  if next(wanted) == nil then
    return {}
  end
  -- The work tree cargo reads is the packaged commit's: a fork rebuilt on another
  -- machine (a distributed run's Publish job) starts at Activate's commit.
  if type(packaged.commit) == "string" then
    release.fork_at(fork, packaged.commit):close()
  end
  local meta, err = release.cargo_metadata(fork.path)
  if not meta then
    error(err, 0)
  end
  local ws, werr = workspace.from_metadata(meta, { repo_root = fork.path })
  if not ws then
    error(werr, 0)
  end
  local pkgs = {}
  for _, pkg in ipairs(meta.packages or {}) do
    if ws.by_name[pkg.name] then
      pkgs[pkg.name] = pkg
    end
  end
  local items = {}
  for _, name in ipairs(ws.order) do
    local c = wanted[name]
    if c then
      wanted[name] = nil
      local file = (packaged.crates or {})[name]
      if not file then
        error(("Package made no .crate file for %s %s; run Package again"):format(name, c.next), 0)
      end
      local pkg = pkgs[name]
      if pkg.version ~= c.next or file.version ~= c.next then
        error(("%s is %s in the release fork's work tree and %s in the packaged .crate, but the plan releases %s: "
          .. "the fork %s is not at the packaged commit %s"):format(name, pkg.version, file.version, c.next,
          fork.path, packaged.commit), 0)
      end
      local sum = fs.sha256_file(file.file)
      if sum ~= file.sha256 then
        error(("the .crate file %s is %s, not what Package made (sha256 %s); run Package again")
          :format(file.file, sum and ("changed (sha256 " .. sum .. ")") or "gone", file.sha256), 0)
      end
      local refused = release.registry_refusal(ctx, ws.by_name[name])
      if refused then
        error(refused, 0)
      end
      items[#items + 1] = { crate = c, pkg = pkg, file = file.file, cksum = file.sha256, version = c.next }
    end
  end
  local missing = next(wanted)
  if missing then
    error(("the plan releases %s, which is not a member of the workspace in %s"):format(missing, fork.path), 0)
  end
  return items
end

-- The registry token to upload with, set on REG: registry_token, or (when it is unset or
-- "trusted", in a CI job) a short-lived one from Trusted Publishing. Returns the function
-- that revokes a short-lived token, or nil.
function publish.credentials(ctx, reg)
  if not trusted.wanted(ctx.settings.registry_token) then
    return nil
  end
  local cfg, cerr = reg:config()
  if not cfg or not cfg.api then
    error(cerr or ("the registry %s has no Web API"):format(reg.index), 0)
  end
  local jwt, jerr = trusted.id_token(trusted.audience(cfg.api))
  if not jwt then
    error(("no registry token (CARGO_REGISTRY_TOKEN), and no Trusted Publishing: %s"):format(jerr), 0)
  end
  ctx.keep_secret(jwt)
  local token, xerr = trusted.exchange(cfg.api, jwt)
  if not token then
    error(xerr, 0)
  end
  ctx.keep_secret(token)
  reg.token = token
  ctx.log(("Trusted Publishing: a short-lived token from %s, revoked when the uploads end"):format(cfg.api))
  return function()
    local ok, err = trusted.revoke(cfg.api, token)
    ctx.log(ok and "Trusted Publishing: the short-lived token is revoked" or ("warning: " .. tostring(err)))
  end
end

-- For a dry run: each crate and version Publish would send, and to which registry.
function publish.preview(ctx)
  local _, table_plan = release.preview_plan(ctx)
  local out = {}
  for _, c in ipairs(release.publishable(table_plan)) do
    out[#out + 1] = ("publish %s %s to %s"):format(c.name, c.next, release.setting(ctx, "registry_index"))
  end
  return out
end

-- Whether Publish, given INPUTS, has nothing to send and no GitHub release to make (the
-- engine then asks no approval for it).
function publish.nothing_to_do(inputs)
  local packaged = inputs and inputs.packaged
  return type(packaged) == "table" and next(packaged.crates or {}) == nil
    and #release.planned(inputs.plan or {}) == 0
end

-- Whether the job can do without setting KEY (Validate's tokens check asks).
function publish.alternative(_, key)
  return key == "registry_token" and trusted.source() ~= nil
end

-- What Registry:lookup asks about ITEMS (publish.items').
local function lookup_items(items)
  local out = {}
  for i, item in ipairs(items) do
    out[i] = { name = item.crate.name, version = item.version, cksum = item.cksum }
  end
  return out
end

-- Upload ITEM unless the index has it; returns "published" or "already-published".
local function publish_one(ctx, reg, item)
  local name, version = item.crate.name, item.version
  local state, err, code = reg:check(name, version, item.cksum)
  if not state then
    error(("refusing to publish: %s"):format(err), 0)
  elseif state == "same" then
    ctx.log(("%s %s is already in the registry with the same checksum: skipped"):format(name, version))
    return "already-published"
  end
  local bytes = assert(fs.read(item.file))
  ctx.log(("publishing %s %s (%d bytes, sha256 %s)"):format(name, version, #bytes, item.cksum))
  local ok, perr, pcode = reg:publish(registry.metadata(item.pkg), bytes)
  if not ok then
    -- The upload may have landed even so (a lost answer, a 5xx after the write).
    local again = reg:check(name, version, item.cksum)
    if again ~= "same" then
      error(("cannot publish %s %s: %s%s"):format(name, version, perr,
        pcode == "EAUTH" and " (check registry_token)" or ""), 0)
    end
    ctx.log(("%s %s: the registry answered %s, but its index has the version with our checksum"):format(name, version, perr))
  end
  local timeout = release.setting(ctx, "registry_index_timeout")
  local visible, verr = reg:wait_visible(name, version, item.cksum, timeout)
  if not visible then
    error(verr, 0)
  end
  ctx.log(("%s %s is in the index"):format(name, version))
  return "published"
end

function publish.run(ctx, inputs)
  local fork, plan = inputs.fork, inputs.plan
  local items = publish.items(ctx, inputs)
  local out = { crates = {}, releases = {} }
  if #items == 0 then
    ctx.log("the plan publishes no crate")
    return { published = out }
  end
  local limits_name = release.setting(ctx, "registry_limits")
  local limits = LIMITS[limits_name]
  if not limits then
    error(("registry_limits is %q; expected \"crates.io\" or \"none\""):format(tostring(limits_name)), 0)
  end
  local reg = registry_of(ctx)

  -- Look at every crate before uploading any: a checksum conflict anywhere stops the
  -- stage with nothing published.
  local found, lerr, lcode = reg:lookup(lookup_items(items))
  if not found then
    error(lcode == "ECKSUM" and ("refusing to publish: " .. lerr) or lerr, 0)
  end
  local todo, new_crates, new_versions = {}, 0, 0
  for _, item in ipairs(items) do
    local name = item.crate.name
    if found[name].state == "same" then
      ctx.log(("%s %s is already in the registry with the same checksum: skipped"):format(name, item.version))
      out.crates[name] = { version = item.version, cksum = item.cksum, status = "already-published" }
    else
      item.kind = found[name].new_crate and "new_crate" or "new_version"
      if item.kind == "new_crate" then new_crates = new_crates + 1 else new_versions = new_versions + 1 end
      todo[#todo + 1] = item
    end
  end
  local starts, eta = registry.schedule(todo, limits)
  if #todo == 0 then
    ctx.log(("nothing to publish: all %d crates are in the registry already"):format(#items))
  else
    ctx.log(("publishing %d crate%s (%d new, %d new version%s), ETA %ds"):format(#todo, #todo == 1 and "" or "s",
      new_crates, new_versions, new_versions == 1 and "" or "s", math.ceil(eta)))
  end

  local revoke = #todo > 0 and publish.credentials(ctx, reg)
  local t0 = proc.clock()
  local ok, err = pcall(function()
    for i, item in ipairs(todo) do
      local wait = t0 + starts[i] - proc.clock()
      if wait > 0 then
        ctx.log(("waiting %ds before %s %s: the registry's limit on %s"):format(math.ceil(wait), item.crate.name,
          item.version, item.kind == "new_crate" and "new crates" or "new versions"))
        proc.sleep(wait)
      end
      local status = publish_one(ctx, reg, item)
      out.crates[item.crate.name] = { version = item.version, cksum = item.cksum, status = status }
    end
  end)
  if revoke then
    revoke() -- when the uploads end, failed or not
  end
  if not ok then
    error(err, 0)
  end

  -- GitHub releases, one per crate, made once.
  local token = ctx.settings.forge_token
  if type(token) ~= "string" or token == "" then
    ctx.log("no forge_token: skipping GitHub releases")
    out.releases_skipped = true -- verify makes them once a token is set
  else
    local gh = release.forge(ctx, fork)
    for _, item in ipairs(items) do
      local c = item.crate
      local tag = release.crate_tag(ctx, plan, c)
      local rel, what, code = gh:ensure_release {
        tag = tag, name = ("%s %s"):format(c.name, c.next),
        body = release.crate_notes(fork.path, c, inputs.packaged) or "", prerelease = release.is_prerelease(c.next),
      }
      if not rel then
        error(("cannot make the GitHub release for %s: %s%s"):format(tag, what,
          code == "EAUTH" and " (check forge_token)" or ""), 0)
      end
      ctx.log(("GitHub release %s %s: %s"):format(tag, what == "created" and "created" or "exists already",
        rel.html_url or rel.url or ""))
      out.releases[tag] = rel.html_url or rel.url
    end
  end
  return { published = out }
end

-- Recorded outputs hold while the index still has every crate with its checksum,
-- and while releases skipped for want of a token still have no token to be made with.
function publish.verify(ctx, outputs)
  local token = ctx.settings.forge_token
  if outputs.published.releases_skipped and type(token) == "string" and token ~= "" then
    return false, "GitHub releases were skipped for want of a forge_token, which is set now"
  end
  local reg = registry_of(ctx)
  local names = {}
  for name in pairs(outputs.published.crates or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local c = outputs.published.crates[name]
    local state, err = reg:check(name, c.version, c.cksum)
    if state ~= "same" then
      return false, err or ("%s %s is no longer in the registry index"):format(name, c.version)
    end
  end
  return true
end

publish.health = {
  { name = "registry", check = function(ctx)
    local cfg, err = registry_of(ctx):config()
    if not cfg then
      return false, err
    end
    if not cfg.api then
      return false, ("the registry %s has no Web API to publish through"):format(release.setting(ctx, "registry_index"))
    end
    return true
  end },
  { name = "registry token", check = function(ctx)
    if trusted.wanted(ctx.settings.registry_token) then
      local source, why = trusted.source()
      if not source then
        return false, ("registry_token is not set (pipelines/release.lua reads it from CARGO_REGISTRY_TOKEN), "
          .. "and Trusted Publishing cannot stand in: %s"):format(why)
      end
      return true
    end
    -- Asked of the registry itself where it can say: a wrong token found here stops the
    -- run at Validate, before Tag pushes anything.
    local ok, err = registry_of(ctx):check_token()
    if not ok then
      return false, err .. " (check registry_token, read from CARGO_REGISTRY_TOKEN)"
    end
    return true
  end },
}

return publish
