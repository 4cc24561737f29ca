-- What the release stages share: their settings and defaults, the Release Fork, the
-- crates a plan releases, and tag names. One place for each, so stages agree.
local git = require "cdp.git"
local plan = require "cdp.plan"
local semver = require "cdp.semver"

local release = {}

-- The settings more than one release stage reads, declared here once. A stage's own
-- settings are declared in the stage; `release.settings{ "name", own = {...} }` gives a
-- stage the declarations it reads: shared ones by name, its own in full.
release.SETTINGS = {
  remote = { type = "string", default = "origin",
    doc = "where tags and the release branch are pushed: a remote of the repository, or a URL" },
  tag_template = { type = "string", default = "",
    doc = "release tag names: \"\" = {crate}-v{version}, or v{version} for a workspace of one crate" },
  forge_api = { type = "string", default = "https://api.github.com",
    doc = "the forge's REST base URL (GitHub Enterprise: https://HOST/api/v3; Gitea and Forgejo share the pull and release endpoints)" },
  forge_repo = { type = "string", default = "",
    doc = "owner/name on the forge; \"\" = read from the remote's URL" },
  forge_token = { type = "secret", env = "GITHUB_TOKEN",
    doc = "the forge token: Merge opens the pull request with it; without it Publish makes no GitHub releases and says so" },
  git_token = { type = "secret", env = "CDP_GIT_TOKEN",
    doc = "sent as HTTP basic credentials when pushing over HTTPS; unset for file:// and ssh remotes" },
  git_username = { type = "string", default = "x-access-token",
    doc = "the user name sent with git_token" },
  registry_index = { type = "string", default = "sparse+https://index.crates.io/",
    doc = "the registry's sparse index; its config.json names the Web API that Publish uploads to" },
  registry_name = { type = "string", default = "crates-io",
    doc = "the name manifests use for that registry: a crate with publish = [\"other\"] is refused before anything is uploaded" },
  registry_token = { type = "secret", env = "CARGO_REGISTRY_TOKEN",
    doc = "the registry token Publish uploads with; unset or \"trusted\" in a CI job: a short-lived one from Trusted Publishing" },
  release_branch = { type = "string", default = "cdp/release/{base}",
    doc = "the one release branch per base branch ({base}), updated on every run; its pull request is the release PR" },
  prerelease = { type = "string", default = "",
    doc = "a label such as dev gives X.Y.Z-dev.N releases; \"\" graduates them to X.Y.Z" },
  versions = { type = "string", default = "plan", choices = { "plan", "manifest" },
    doc = "plan: the Release Plan picks the versions and Version writes them; manifest: release the versions the manifests name that are not released yet (no tag, not in the registry), editing nothing (pipelines/publish.lua)" },
  cargo_offline = { type = "boolean", default = false,
    doc = "run cargo offline (CARGO_NET_OFFLINE): for machines whose cargo cache already holds every dependency" },
  http_timeout = { type = "number", default = 60,
    doc = "seconds a forge or registry request may take in all, retries included (waits a server asks for with Retry-After are bounded apart)" },
}

-- Every declaration a stage module made through release.settings, by name: what
-- release.setting falls back to when a caller's ctx.settings lacks a value.
local declared = {}

-- The declarations a stage reads: LIST names shared ones (release.SETTINGS), and its
-- string keys declare the stage's own: { type =, default =, doc = }.
function release.settings(list)
  local settings = require "cdp.settings"
  local out = {}
  for k, v in pairs(list) do
    local name, spec = k, v
    if math.type(k) == "integer" then
      name, spec = v, release.SETTINGS[v]
      if not spec then
        error(("release.settings: no shared setting '%s' in cdp.release"):format(tostring(v)), 2)
      end
    end
    local decl = declared[name] or settings.declare(name, spec, "cdp.release")
    declared[name] = decl
    out[name] = decl
  end
  return out
end

-- ctx.settings[key], or its declared default. KEY must be declared by some stage.
function release.setting(ctx, key)
  local v = ctx and ctx.settings and ctx.settings[key]
  if v == nil then
    local d = declared[key]
    if not d then
      error(("release.setting: no stage declares a setting '%s'"):format(tostring(key)), 2)
    end
    v = d.default
  end
  return v
end

-- The policy of `versions = "manifest"`: every crate that goes to a registry at the
-- version its manifest names, unless that version is its last release (tagged). Which
-- of them the registry has already is decided after (unreleased_only).
local function manifest_versions(draft)
  local out = {}
  for _, name in ipairs(draft.names) do
    local c = draft.crates[name]
    out[name] = (c.publish and c.last ~= c.current) and c.current or "none"
  end
  return out
end

-- Of the plan table T that releases every untagged manifest version, keep what is not
-- released yet: a version in the registry is released, tag or no tag (one published by
-- other means is not cdp's to tag). A tagged version the registry lacks is released
-- all the same: an earlier publish run that tagged and then failed is finished so.
local function unreleased_only(ctx, fork, t)
  local json = require "cdp.json"
  local reg = release.registry(ctx)
  local repo <close> = release.open_fork(fork)
  for _, c in ipairs(t.crates) do
    local planned = c.bump ~= "none" and c.next
    local tagged_only = not planned and c.publishable ~= false and c.last_release == c.current
      and type(c.last_tag) == "string"
    if planned and c.next ~= c.current then
      error(("%s is at %s in its manifest, but the plan needs %s (a requirement on it no longer holds): "
        .. "the manifests at %s do not hold together, so there is nothing to publish as merged; "
        .. "release them with the release pipeline"):format(c.name, c.current, c.next, fork.commit:sub(1, 12)), 0)
    end
    if planned or tagged_only then
      local versions, err = reg:versions(c.name)
      if not versions then
        error(("cannot tell whether %s %s is released: %s"):format(c.name, c.current, err), 0)
      end
      local tag = tagged_only and c.last_tag or release.crate_tag(ctx, t, c)
      local tagged = tagged_only or repo:resolve("refs/tags/" .. tag) ~= nil
      if versions[c.current] then
        c.bump, c.next, c.publish, c.tag = "none", c.current, false, json.null
        c.reasons = { { kind = "manifest", text = tagged and ("%s is released: tagged %s and in the registry"):format(c.current, tag)
          or ("%s is in the registry already (with no tag %s)"):format(c.current, tag) } }
      else
        c.bump, c.next, c.publish, c.tag = planned and c.bump or "publish", c.current, true, tag
        c.reasons = { { kind = "manifest", text = ("the manifest names %s, which is not in the registry%s"):format(c.current,
          tagged and (" (tagged %s already)"):format(tag) or " and has no tag") } }
      end
    end
  end
  return t
end

-- The Release Plan for FORK's commit, and the plain table of it that the journal keeps.
-- Under the pipeline's policy (`versions = "plan"`), or the manifests' own versions not
-- released yet (`versions = "manifest"`, the publish flow). Raises with the plan's reason.
function release.make_plan(ctx, fork)
  local json = require "cdp.json"
  local template = release.setting(ctx, "tag_template")
  local manifest = release.setting(ctx, "versions") == "manifest"
  local p, err = plan.make {
    dir = fork.path, from = fork.commit, policy = manifest and manifest_versions or ctx.policy,
    tag_template = template ~= "" and template or nil,
    prerelease = release.setting(ctx, "prerelease") ~= "" and release.setting(ctx, "prerelease") or nil,
  }
  if not p then
    error(err, 0)
  end
  local t = json.decode(p:to_json())
  if manifest then
    t = unreleased_only(ctx, fork, t)
  end
  return p, t
end

-- Today's date (UTC) as a release made now would carry it; SOURCE_DATE_EPOCH pins it, as
-- reproducible builds do.
function release.today()
  local epoch = math.tointeger(tonumber(os.getenv("SOURCE_DATE_EPOCH") or ""))
  return os.date("!%Y-%m-%d", epoch or math.floor(require("cdp.proc").time()))
end

-- For a dry run: the plan a run would make, of the repository where it is (the fork
-- Activate's preview describes; HEAD without one). Made once per dry run (CTX.shared).
-- Returns the plan, its table, and that fork.
function release.preview_plan(ctx)
  local shared = ctx.shared
  if not shared.plan then
    local fork = shared.fork
    if not fork then
      local repo = assert(git.discover(ctx.root))
      fork = { path = ctx.root, commit = assert(repo:resolve("HEAD")) }
      repo:close()
    end
    shared.fork = fork
    shared.plan, shared.table_plan = release.make_plan(ctx, fork)
  end
  return shared.plan, shared.table_plan, shared.fork
end

-- The lock files git and libgit2 write beside a file they are about to replace
-- (index.lock, HEAD.lock, packed-refs.lock, refs/…/NAME.lock), left in the fork's
-- .git by a kill between the lock and the rename. Nothing else writes there: the
-- fork is this run's own, the stages that write it run under the run lock (run,
-- resume, stage), which keeps a second cdp out of it, and they alone ask for this.
-- Removed (regular files only, links never followed), or every later attempt of
-- the stage fails on "failed to lock file … for writing" and the run never resumes.
local function remove_stale_locks(fs, gitdir)
  -- PATH removed when it is a lock file; below refs/, every directory searched
  local function visit(path, name, below_refs)
    local st = fs.lstat(path)
    if st and st.type == "file" and name:sub(-5) == ".lock" then
      assert(fs.remove(path))
    elseif st and st.type == "directory" and below_refs then
      for _, entry in ipairs(fs.list(path) or {}) do
        visit(path .. "/" .. entry, entry, true)
      end
    end
  end
  for _, name in ipairs { "index.lock", "HEAD.lock", "ORIG_HEAD.lock", "packed-refs.lock", "config.lock" } do
    visit(gitdir .. "/" .. name, name, false)
  end
  visit(gitdir .. "/refs", "refs", true)
end

-- The Release Fork recorded by Activate, opened. Raises when it is gone. OPTS.write:
-- the caller is a stage about to write it (fork_at, Tag, Merge): git's stale lock
-- files go first. Never for the repository a dry run previews, which is the user's.
function release.open_fork(fork, opts)
  if opts and opts.write then
    remove_stale_locks(require "cdp.fs", fork.path .. "/.git")
  end
  local repo, err = git.open(fork.path)
  if not repo then
    error(("the release fork %s is gone (%s); start a new run"):format(fork.path, err), 0)
  end
  return repo
end

-- cdp.fs's atomic writes go through a temporary file beside the target.
local ATOMIC_TEMP = "^%..+%.cdp%-%w%w%w%w%w%w$"

-- The Release Fork, open, returned to COMMIT (the stage's input commit) on its release
-- branch. Every stage that modifies the fork calls it first, so a run killed at any
-- byte of an earlier attempt resumes: the attempt's edits are reset, and the files it
-- made are removed — untracked files (a CHANGELOG.md written before its commit, the
-- Cargo.lock cargo makes for a workspace that commits none) and the temporary files of
-- cdp's own atomic writes (.Cargo.toml.cdp-XXXXXX), even where .gitignore hides them,
-- and git's own stale lock files (remove_stale_locks).
-- What the repository ignores otherwise (a target/) stays. The stage names its commit
-- itself; the engine could only guess which of its inputs is the one it builds on.
function release.fork_at(fork, commit)
  local fs = require "cdp.fs"
  local repo = release.open_fork(fork, { write = true })
  local function must(ok, err)
    if not ok then
      error(("cannot return the release fork %s to commit %s: %s"):format(fork.path, commit, err), 0)
    end
    return ok
  end
  -- Detached first: a branch cannot be moved while HEAD is on it.
  must(repo:checkout(commit, { force = true }))
  must(repo:branch_create(fork.branch, commit, { force = true }))
  must(repo:checkout(fork.branch, { force = true, clean = true }))
  for _, s in ipairs(must(repo:status { untracked = true, ignored = true })) do
    if s.status == "ignored" and fs.basename(s.path):match(ATOMIC_TEMP) then
      must(fs.remove(fork.path .. "/" .. s.path))
    end
  end
  return repo
end

-- TEXT, which a stage is about to write to PATH, or a raise naming the file and the
-- first byte that is not UTF-8. What cdp writes is UTF-8; a changelog or README kept in
-- another encoding would go into the .crate and the release notes as it is.
function release.utf8(path, text)
  local _, bad = utf8.len(text)
  if bad then
    error(("%s is not valid UTF-8 (byte %d); cdp writes it as UTF-8: convert it first "
      .. "(e.g. iconv -f ISO-8859-1 -t UTF-8) and commit that"):format(path, bad), 0)
  end
  return text
end

-- The tag template in force: the setting, or the plan's default for a workspace of
-- several crates ({crate}-v{version}) or of one (v{version}).
function release.template(template, single)
  if template == nil or template == "" then
    return single and plan.SINGLE_TEMPLATE or plan.DEFAULT_TEMPLATE
  end
  return template
end

-- The tag name for CRATE at VERSION under TEMPLATE ("" = the default).
function release.tag_name(template, crate, version, single)
  return plan.tag_name(release.template(template, single), crate, version)
end

-- Entries of a plan that release something (bump ~= "none"), in plan order. A first
-- release, or a manifest already ahead of its last release, is released at the version
-- the manifest names: next == current there, and it is released all the same.
function release.planned(plan)
  local out = {}
  for _, c in ipairs(plan.crates or {}) do
    if c.bump and c.bump ~= "none" and type(c.next) == "string" and c.next ~= "" then
      out[#out + 1] = c
    end
  end
  return out
end

-- Those of them that go to a registry (publish ~= false).
function release.publishable(plan)
  local out = {}
  for _, c in ipairs(release.planned(plan)) do
    if c.publish ~= false then
      out[#out + 1] = c
    end
  end
  return out
end

-- "chore(release): a 1.0.1, b 0.2.0" for the crates in LIST.
function release.summary(list)
  local parts = {}
  for _, c in ipairs(list) do
    parts[#parts + 1] = ("%s %s"):format(c.name, c.next)
  end
  return "chore(release): " .. table.concat(parts, ", ")
end

function release.is_prerelease(version)
  local v = semver.parse(version)
  return v ~= nil and v.pre ~= nil and #v.pre > 0
end

-- Check that REPO's HEAD and status are what they were: Validate and Test must
-- leave the fork exactly as they found it.
function release.snapshot(repo)
  local status = repo:status { untracked = true }
  local lines = {}
  for _, s in ipairs(status) do
    lines[#lines + 1] = s.status .. " " .. s.path
  end
  return { head = repo:head(), status = table.concat(lines, "\n") }
end

function release.same_snapshot(a, b)
  if a.head ~= b.head then
    return false, ("HEAD moved from %s to %s"):format(a.head, b.head)
  end
  if a.status ~= b.status then
    return false, ("the working tree changed:\n%s"):format(b.status ~= "" and b.status or "(now clean)")
  end
  return true
end

-- Why MEMBER (of a cdp.workspace) may not go to this pipeline's registry, or nil.
-- publish = ["a", "b"] limits a crate to those registries; cargo refuses the others,
-- and so does cdp, before anything is packaged or uploaded.
function release.registry_refusal(ctx, member)
  local allowed = member.publish
  if type(allowed) ~= "table" then
    return nil
  end
  local target = release.setting(ctx, "registry_name")
  for _, r in ipairs(allowed) do
    if r == target then
      return nil
    end
  end
  return ("%s may be published only to %s (publish = [...] in %s), and this pipeline publishes to '%s' "
    .. "(registry_name, index %s); set registry_name and registry_index to one of them")
    :format(member.name, table.concat(allowed, ", "), member.manifest_path, target,
      release.setting(ctx, "registry_index"))
end

-- Make the Release Fork at PATH: a clone of the repository at ROOT (objects shared,
-- nothing checked out), on OPTS.branch at OPTS.commit, with OPTS.refs ({ ref = oid })
-- set, pushing to OPTS.origin (a URL, or nil), committing as OPTS.identity ({name,
-- email}, or nil). A fork left there before is made again from scratch. Returns it open.
function release.make_fork(root, path, opts)
  local fs = require "cdp.fs"
  if fs.exists(path) then
    assert(fs.remove(path, { recursive = true }))
  end
  local fork, err = git.clone(root, path, { checkout = false })
  if not fork then
    error(("cannot make the release fork in %s: %s"):format(path, err), 0)
  end
  for name, oid in pairs(opts.refs or {}) do
    assert(fork:reference_set(name, oid, "cdp: release fork", { force = true }))
  end
  assert(fork:branch_create(opts.branch, opts.commit, { force = true }))
  assert(fork:checkout(opts.branch, { force = true }))
  -- The fork pushes where the user's repository pushes; the user's clone stays
  -- reachable as `local` for audits.
  assert(fork:remote_set("local", root))
  if opts.origin then
    assert(fork:remote_set("origin", opts.origin))
  end
  -- The fork commits as the user's repository does (its own config wins over the
  -- global one, which is all a fresh clone would see).
  if opts.identity then
    fork:config_set("user.name", opts.identity.name)
    fork:config_set("user.email", opts.identity.email)
  end
  return fork
end

-- Whether the fork at PATH still holds COMMIT (for stages' verify).
function release.fork_has(path, commit)
  local repo = git.open(path)
  if not repo then
    return false, ("the release fork %s is gone"):format(path)
  end
  local found = repo:resolve(commit)
  repo:close()
  if found ~= commit then
    return false, ("the release fork %s no longer has commit %s"):format(path, commit)
  end
  return true
end

-- ---------------------------------------------------------------------------
-- Shared by Tag, Merge and Publish (the stages that talk to the user's peers).

-- The tag of plan entry CRATE: the one the plan gives it (each crate carries the tag of
-- its next version, under the convention it uses); for a plan that names none, the
-- `tag_template` setting, "v{version}" for a plan of one crate, "{crate}-v{version}".
function release.crate_tag(ctx, plan, crate)
  if type(crate.tag) == "string" and crate.tag ~= "" then
    return crate.tag
  end
  return release.tag_name(release.setting(ctx, "tag_template"), crate.name, crate.next,
    #(plan.crates or {}) == 1)
end

-- Credentials for git pushes and fetches over HTTPS to URL: git_token, or nil (file://,
-- ssh). cdp.git gives the token only to URL's own scheme, host and port, never over
-- plain http beyond this machine (EINSECURE) and never across a redirect; plain http
-- to a loopback address (a test server) is allowed, with a warning in the log.
function release.git_credentials(ctx, url)
  local token = ctx.settings and ctx.settings.git_token
  if type(token) ~= "string" or token == "" then
    return nil
  end
  if type(url) == "string" and url:match("^[Hh][Tt][Tt][Pp]://") and ctx.log then
    ctx.log(("warning: git_token goes to %s over plain http, unencrypted (allowed for loopback addresses only)")
      :format((url:gsub("//[^/@]*@", "//***@"))))
  end
  return { token = token, username = release.setting(ctx, "git_username") }
end

-- The URL the fork pushes to (its origin), or a raise that says why there is none.
-- Activate records the origin with a password in it masked (the journal is no place
-- for it); the fork's own config has the URL as the user gave it, and that is the one
-- pushed to. The run's redactor keeps its password out of every message.
function release.push_url(fork, what)
  if type(fork.origin) ~= "string" or fork.origin == "" then
    error(("%s: the repository has no remote '%s' to push to; add one (git remote add %s URL) or set the `remote` setting to a URL")
      :format(what, fork.remote or "origin", fork.remote or "origin"), 0)
  end
  if fork.origin:find("***@", 1, true) and fork.path then
    local repo = git.open(fork.path)
    local given = repo and repo:config_get("remote.origin.url")
    if repo then
      repo:close()
    end
    if given and require("cdp.settings").mask_url(given) == fork.origin then
      return given
    end
  end
  return fork.origin
end

-- Where the credentials of a push to or fetch from URL come from, for the message of a
-- remote that refused them: the URL itself (then git_token, which cdp offers when the
-- URL's are refused), git_token and where it is set, or none at all.
function release.credentials_source(ctx, fork, url)
  local settings = require "cdp.settings"
  local token = ctx.settings and ctx.settings.git_token
  local from = ctx.sources and ctx.sources.git_token or ("env " .. release.SETTINGS.git_token.env)
  local with_token = (type(token) == "string" and token ~= "")
    and ("git_token (%s) as user %s"):format(from, release.setting(ctx, "git_username")) or nil
  if type(url) == "string" and url:match("^%a[%w+.-]*://[^/@%s]+@") then
    local remote = fork and fork.remote
    local where = (type(remote) == "string" and remote:find("[:/]")) and "the `remote` setting"
      or ("remote '%s' in the repository's git config"):format(remote or "origin")
    return ("the credentials came from the URL of %s (%s)%s"):format(where, settings.mask_url(url),
      with_token and (", then " .. with_token) or "")
  elseif with_token then
    return "the credentials came from " .. with_token
  end
  return ("no credentials were given: set git_token (%s) or put them in the remote's URL"):format(from)
end

-- The release notes of CRATE (a plan entry) at its next version: what Package recorded
-- in PACKAGED (its outputs), else its section of <fork>/<dir>/CHANGELOG.md as Package
-- left it in the fork's work tree; nil when there is none. Read beneath the fork,
-- never through a link.
function release.crate_notes(fork_path, crate, packaged)
  local recorded = type(packaged) == "table" and type(packaged.notes) == "table" and packaged.notes[crate.name]
  if type(recorded) == "string" then
    return recorded ~= "" and recorded or nil
  end
  local changelog = require "cdp.changelog"
  local fs = require "cdp.fs"
  local text = fs.read(changelog.path(nil, crate), { beneath = fork_path })
  if not text then
    return nil
  end
  return changelog.extract(text, crate.next)
end

-- The forge client for the repository the fork came from: forge_api, forge_token, and
-- forge_repo (or owner/name read from the origin URL). Raises when neither names one.
function release.forge(ctx, fork)
  local forge = require "cdp.forge"
  local repo = release.setting(ctx, "forge_repo")
  if repo == nil or repo == "" then
    repo = forge.parse_remote(fork and fork.origin)
  end
  if type(repo) ~= "string" or not repo:match("^[^/]+/[^/]+$") then
    error(("cannot tell which forge repository to use from the remote %s; set forge_repo = \"owner/name\"")
      :format(tostring(fork and fork.origin or "(none)")), 0)
  end
  return forge.github { api = release.setting(ctx, "forge_api"), token = ctx.settings and ctx.settings.forge_token,
    repo = repo, log = ctx.log, deadline = release.setting(ctx, "http_timeout") }
end

-- The environment cargo runs with: EXTRA, plus CARGO_NET_OFFLINE when cargo_offline is
-- set. The variable rather than --offline, so the commands a team lists in
-- test_commands are offline too without being rewritten.
function release.cargo_env(ctx, extra)
  local env = {}
  for k, v in pairs(extra or {}) do
    env[k] = v
  end
  if release.setting(ctx, "cargo_offline") then
    env.CARGO_NET_OFFLINE = "true"
  end
  return env
end

-- Why a cargo command failed: WHAT, then cargo's own words (RES, or ERR when it could
-- not run). Offline, a dependency cargo has never downloaded is the usual cause, and
-- the fix is not in cargo's message: say it.
function release.cargo_failure(ctx, what, res, err)
  local text = res and ((res.stderr or "") ~= "" and res.stderr or res.stdout or "") or tostring(err)
  text = text:gsub("%s+$", "")
  local msg = ("%s: %s"):format(what, text)
  if release.setting(ctx, "cargo_offline") and res
    and (text:find("offline", 1, true) or text:find("failed to download", 1, true)
      or text:find("no matching package", 1, true) or text:find("failed to get", 1, true)) then
    msg = msg .. "\n(cargo ran offline because cargo_offline is set: run `cargo fetch` in the repository "
      .. "so the cache holds every dependency, or unset cargo_offline to let cargo download them)"
  end
  return msg
end

-- The registry client: registry_index, with registry_token when one is set.
function release.registry(ctx)
  local registry = require "cdp.registry"
  return registry.new { index = release.setting(ctx, "registry_index"), token = ctx.settings and ctx.settings.registry_token,
    log = ctx.log, deadline = release.setting(ctx, "http_timeout") }
end

-- Look before any side effect: when this run publishes, each version Package made a
-- .crate for (PACKAGED.crates) is looked up in the registry. There with the same
-- checksum is logged (Publish will skip it); there with other bytes raises naming both
-- checksums, so nothing is tagged or pushed for a version that can never be published.
function release.look_in_registry(ctx, packaged)
  if not (ctx.running and ctx.running.publish) then
    return
  end
  local names = {}
  for name in pairs(packaged.crates or {}) do
    names[#names + 1] = name
  end
  table.sort(names)
  if #names == 0 then
    return
  end
  local items = {}
  for i, name in ipairs(names) do
    local c = packaged.crates[name]
    items[i] = { name = name, version = c.version, cksum = c.sha256 }
  end
  local found, err, code = release.registry(ctx):lookup(items)
  if not found then
    if code == "ECKSUM" then
      error(err .. "\nnothing was tagged, pushed or published: give the crate a new version", 0)
    end
    error(err, 0)
  end
  for _, item in ipairs(items) do
    if found[item.name].state == "same" then
      ctx.log(("%s %s is in the registry already with the same checksum: Publish will skip it"):format(item.name,
        item.version))
    end
  end
end

-- Decoded `cargo metadata --no-deps --offline` of the workspace in DIR, raw (the
-- registry's publish metadata is built from its packages), or nil, message, "ECARGO".
-- --no-deps reads only the workspace's own manifests, so it never needs the network.
function release.cargo_metadata(dir)
  local json = require "cdp.json"
  local proc = require "cdp.proc"
  local res, err = proc.run {
    argv = { "cargo", "metadata", "--format-version", "1", "--no-deps", "--offline" },
    cwd = dir, timeout = 300,
  }
  if not res then
    return nil, ("cannot run cargo metadata in %s: %s"):format(dir, err), "ECARGO"
  end
  if res.code ~= 0 or res.timed_out then
    return nil, ("cargo metadata failed in %s:\n%s"):format(dir, (res.stderr or ""):gsub("%s+$", "")), "ECARGO"
  end
  local meta, jerr = json.decode(res.stdout)
  if type(meta) ~= "table" then
    return nil, ("cargo metadata in %s printed bad JSON: %s"):format(dir, jerr), "ECARGO"
  end
  return meta
end

return release
