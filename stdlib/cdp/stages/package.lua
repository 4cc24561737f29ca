-- Package: write each planned crate's changelog from git history and bring README
-- version snippets up to date, as one commit on the fork; then build the .crate files
-- for the crates to publish with `cargo package` (offline when cargo_offline is set)
-- and keep them, with their sha256, in the run folder. Nothing is published here, but
-- when the run goes on to Publish, each version is looked up in the registry now,
-- before Tag pushes anything (release.look_in_registry).
--
-- A changelog is written in the style its file already has, with the notes written by
-- hand under [Unreleased] taken into the new section, dated with the release date (the
-- run's start, as the journal records it: a resumed run writes the same date). Each
-- crate's release notes (its section without the heading) are in the outputs, for
-- Merge and Publish, also when no file is written (changelog = false).
--
-- Settings: changelog, changelog_path, changelog_template (a module, whose code is part
-- of this stage's key), tag_template.
local changelog = require "cdp.changelog"
local git = require "cdp.git"
local fs = require "cdp.fs"
local json = require "cdp.json"
local proc = require "cdp.proc"
local release = require "cdp.release"
local semver = require "cdp.semver"
local workspace = require "cdp.workspace"

local package = {
  name = "package",
  needs = { "fork", "plan", "versioned" },
  gives = { "packaged" },
  modifies_fork = true,
  settings = release.settings {
    "tag_template", "registry_name", "registry_index", "cargo_offline", "http_timeout", "versions",
    changelog = { type = "boolean", default = true,
      doc = "false: Package writes no changelog (release notes are still made from the commits)" },
    changelog_path = { type = { "string", "table" }, default = "{dir}/CHANGELOG.md",
      doc = "each crate's changelog: a path with {dir} or {crate}; one path without them is a changelog "
        .. "the crates share; a table maps crate names (\"*\": the rest) to paths, or false for none" },
    changelog_template = { type = "string", default = "cdp.templates.keepachangelog", module = true,
      doc = "the Lua module that renders a changelog section (header and render(release)); its code is part of Package's key" },
  },
}

local function escape(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- Rewrite `name = "0.3"` and `name = { version = "0.3", ... }` in TEXT when the quoted
-- version is CURRENT or a prefix of it, keeping the number of components written.
function package.readme_snippets(text, name, current, next_version)
  local cur = semver.parse(current)
  local nxt = semver.parse(next_version)
  if not cur or not nxt then
    return text, 0
  end
  local parts_next = { tostring(nxt.major), tostring(nxt.minor), tostring(nxt.patch) }
  local function replace(version)
    local given = {}
    for n in version:gmatch("%d+") do given[#given + 1] = n end
    if not version:match("^%d+[%.%d]*$") or #given > 3 then
      return nil
    end
    local cur_parts = { tostring(cur.major), tostring(cur.minor), tostring(cur.patch) }
    for i, n in ipairs(given) do
      if cur_parts[i] ~= n then
        return nil -- a snippet for some other version: not ours to change
      end
    end
    if #given == 3 then
      return tostring(nxt)
    end
    return table.concat(parts_next, ".", 1, #given)
  end
  local count = 0
  local n = escape(name)
  local function sub(prefix, version, suffix)
    local new = replace(version)
    if new and new ~= version then
      count = count + 1
      return prefix .. new .. suffix
    end
  end
  text = text:gsub("(%f[%w_-]" .. n .. "%s*=%s*\")([%d.]+)(\")", sub)
  text = text:gsub("(%f[%w_-]" .. n .. "%s*=%s*{[^}\n]-version%s*=%s*\")([%d.]+)(\")", sub)
  return text, count
end

-- The release template crate C's tags follow: the plan's own for it, else the setting's.
local function template_of(c, opts)
  if type(c.tag_template) == "string" and c.tag_template ~= "" then
    return c.tag_template
  end
  return release.template(opts.tag_template, opts.single)
end

-- The newest stable release tag reachable from FROM of each crate in LIST, decided
-- in one pass over the tags and one walk: { [name] = { tag, commit } }.
local function stable_releases(repo, list, from, opts)
  local by_template, by_name = {}, {}
  for _, c in ipairs(list) do
    local t = template_of(c, opts)
    by_template[t] = by_template[t] or {}
    table.insert(by_template[t], c.name)
    by_name[c.name] = c
  end
  -- A crate-less tag (v{version}) reads as no crate: it is a release of each crate
  -- that follows that template, as in the plan, where that crate was there and had
  -- reached that version (toml-rs' toml_edit graduating from 0.26.0-alpha.1).
  local function owners(t, names)
    if t.crate then
      return { t.crate }
    end
    local out = {}
    for _, n in ipairs(names) do
      local c, v = by_name[n], semver.parse(t.version)
      local current = semver.parse(c.current or "")
      if (not current or not (v > current))
          and repo:tree_entry(t.peeled, ((c.dir or "") == "" and "" or c.dir .. "/") .. "Cargo.toml") then
        out[#out + 1] = n
      end
    end
    return out
  end
  local candidates = {}
  for template, names in pairs(by_template) do
    for _, t in ipairs(assert(repo:tag_candidates(names, { template }))) do
      local v = semver.parse(t.version)
      if v and #v.pre == 0 and t.peeled then
        for _, n in ipairs(owners(t, names)) do
          candidates[#candidates + 1] = { crate = n, tag = t.tag, v = v, commit = t.peeled }
        end
      end
    end
  end
  local oids = {}
  for i, x in ipairs(candidates) do
    oids[i] = x.commit
  end
  local reachable = assert(repo:reachable(from, oids))
  local best = {}
  for _, x in ipairs(candidates) do
    local b = best[x.crate]
    if reachable[x.commit] and (not b or semver.compare(x.v, b.v) > 0) then
      best[x.crate] = x
    end
  end
  return best
end

-- Every planned crate's commits for its section, newest first, from one walk of the
-- history for all of them: the plan's commits since the last release (plan entries
-- name them), or, when a pre-release graduates (0.4.0-dev.2 -> 0.4.0), every commit
-- since the last stable release. A plan made in this process brings its parsed
-- commits along (plan.draft): then nothing is read at all. Returns
-- { [name] = commits }, { [name] = previous stable tag }.
local function section_commits(repo, plan, planned, opts)
  local lists, previous = {}, {}
  local graduating, rest = {}, {}
  for _, c in ipairs(planned) do
    if not release.is_prerelease(c.next) and release.is_prerelease(c.current) then
      graduating[#graduating + 1] = c
    else
      rest[#rest + 1] = c
    end
  end
  local draft = plan.draft
  local walk = {}
  for _, c in ipairs(rest) do
    local crate = draft and draft.crates and draft.crates[c.name]
    if crate and crate.commits then
      lists[c.name] = crate.commits
    else
      walk[#walk + 1] = c
    end
  end
  local stable = #graduating > 0 and stable_releases(repo, graduating, opts.from, opts) or {}
  for _, c in ipairs(graduating) do
    walk[#walk + 1] = c
  end
  if #walk == 0 then
    return lists, previous
  end
  local first_graduating = #walk - #graduating + 1
  local paths, since = {}, {}
  for i, c in ipairs(walk) do
    paths[i] = c.dir or ""
    if i >= first_graduating then
      local s = stable[c.name]
      since[i] = s and s.commit or false -- never released as stable: all of its history
      previous[c.name] = s and s.tag
    else
      since[i] = type(c.last_tag) == "string" and repo:resolve(c.last_tag) or false
    end
  end
  local found = assert(repo:changes { from = opts.from, paths = paths, since = since, parse = true,
    messages = false })
  local by_id, per = {}, {}
  for i = 1, #walk do
    per[i] = {}
  end
  for _, r in ipairs(found) do
    by_id[r.id] = r
    for _, i in ipairs(r.paths) do
      table.insert(per[i], r)
    end
  end
  for i, c in ipairs(walk) do
    if i >= first_graduating then
      lists[c.name] = per[i]
    else
      -- exactly the plan's commits, in its order; one the walk does not give
      -- (a plan made with --since) is read by itself
      local list = {}
      for _, cm in ipairs(c.commits or {}) do
        local r = by_id[cm.id]
        if not r then
          local commit = repo:commit(cm.id)
          r = commit and { id = commit.id, summary = commit.summary, message = commit.message }
        end
        list[#list + 1] = r
      end
      lists[c.name] = list
    end
  end
  return lists, previous
end

local function date_of(repo, commit)
  local t = repo:commit(commit).committer.time
  return os.date("!%Y-%m-%d", t)
end

-- The text of PATH in COMMIT's tree, or nil when it has none. Changelogs and READMEs
-- are read from the commit, never from a work tree: a committed link
-- (CHANGELOG.md -> /proc/self/environ) would be read as the file it points at, and
-- its bytes released. A link is refused, naming the path (Validate refuses it first).
function package.committed(repo, commit, path)
  local text, err, code = repo:read_blob(commit, path)
  if text or code == "ENOTFOUND" then
    return text
  end
  error(("%s in commit %s: %s"):format(path, commit:sub(1, 12), err), 0)
end

-- What Package writes into crate C's changelog (C is a plan entry). OPTS: root (the
-- work tree), from (the commit whose history is walked), date ("YYYY-MM-DD", the
-- release date; default FROM's commit date), remote (URL or nil), template,
-- tag_template, single, path (from cdp.changelog.path; false: no file, the section
-- only), shared (several crates write that file), crates (every crate's name), texts
-- (path -> text so far, shared by the crates of one release, so a shared file takes
-- each crate's section in turn), commits and previous_tag (the section's commits and
-- the tag it follows, as package.changelogs finds them for every crate at once; read
-- here when not given). Returns { path, section, notes, old, text }.
function package.changelog(repo, c, opts)
  local graduating = not release.is_prerelease(c.next) and release.is_prerelease(c.current)
  local commits, previous_tag = opts.commits, opts.previous_tag
  if not commits then
    local lists, previous = section_commits(repo, {}, { c }, opts)
    commits, previous_tag = lists[c.name], previous[c.name]
  end
  if not previous_tag and c.last_tag and c.last_tag ~= json.null then
    previous_tag = c.last_tag
  end
  local path = opts.path
  if path == nil then
    path = changelog.path(nil, c)
  end
  local old
  if path then
    old = opts.texts and opts.texts[path]
    if old == nil then
      old = package.committed(repo, opts.from, path)
    end
  end
  local result = changelog.update(old, {
    crate = c.name, version = c.next, date = opts.date or date_of(repo, opts.from), remote = opts.remote,
    tag = type(c.tag) == "string" and c.tag ~= "" and c.tag or release.tag_name(opts.tag_template, c.name, c.next, opts.single),
    previous_tag = previous_tag, commits = commits,
  }, { template = opts.template, fold = graduating, crate = c.name, shared = opts.shared, crates = opts.crates })
  if path and opts.texts then
    opts.texts[path] = result.text
  end
  return { path = path, section = result.section, notes = result.notes, old = old,
    text = path and result.text or nil }
end

-- The changelogs of PLANNED (plan entries) as settings say, one call of WRITE(cl) per
-- crate in plan order (cl as package.changelog returns it). OPTS as package.changelog's,
-- less path, shared and texts; SETTINGS: { changelog, changelog_path }. Shared by
-- Package and `cdp changelog`, so what one shows is what the other writes.
function package.changelogs(repo, plan, planned, settings, opts, write)
  local spec = settings.changelog_path
  local shared = changelog.shared_paths(spec, plan.crates or {})
  local names = {}
  for i, c in ipairs(plan.crates or {}) do
    names[i] = c.name
  end
  local texts = {}
  local lists, previous = section_commits(repo, plan, planned, opts)
  for _, c in ipairs(planned) do
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.commits, o.previous_tag = lists[c.name], previous[c.name]
    o.path = settings.changelog ~= false and changelog.path(spec, c) or false
    o.shared, o.crates, o.texts = o.path and shared[o.path] or false, names, texts
    write(package.changelog(repo, c, o), c)
  end
end

-- For a dry run: the changelog section each planned crate would get (nothing written).
function package.preview(ctx)
  local _, table_plan, fork = release.preview_plan(ctx)
  local planned = release.setting(ctx, "versions") == "manifest" and {} or release.planned(table_plan)
  local out = {}
  local repo <close> = assert(git.discover(fork.path))
  package.changelogs(repo, table_plan, planned,
    { changelog = release.setting(ctx, "changelog"), changelog_path = release.setting(ctx, "changelog_path") }, {
    root = fork.path, from = fork.commit, date = release.today(),
    template = release.setting(ctx, "changelog_template"), tag_template = release.setting(ctx, "tag_template"),
    single = #(table_plan.crates or {}) == 1,
  }, function(cl, c)
    out[#out + 1] = ("changelog of %s %s%s:"):format(c.name, c.next, cl.path and (" (" .. cl.path .. ")") or "")
    for l in ((cl.section or ""):gsub("%s+$", "") .. "\n"):gmatch("(.-)\n") do
      out[#out + 1] = "  | " .. l
    end
  end)
  return out
end

function package.run(ctx, inputs)
  local fork, plan, versioned = inputs.fork, inputs.plan, inputs.versioned
  -- Start from Version's commit whatever an interrupted attempt left behind.
  local repo = release.fork_at(fork, versioned.commit)

  -- Releasing what the manifests name (the publish flow): the merged release PR brought
  -- the changelogs and READMEs already, and the commit is released as it is (Merge and
  -- Publish read the notes from the changelogs as merged).
  local planned = release.setting(ctx, "versions") == "manifest" and {} or release.planned(plan)
  local changed, seen, notes = {}, {}, {}
  local enabled = release.setting(ctx, "changelog")
  if not enabled then
    ctx.log("changelog = false: no changelog is written; release notes come from the commits")
  end
  package.changelogs(repo, plan, planned, { changelog = enabled, changelog_path = release.setting(ctx, "changelog_path") }, {
    root = fork.path, from = versioned.commit, remote = fork.origin or nil,
    -- The release date: the run's start, recorded once in its journal, never the clock.
    date = ctx.started and ctx.started:sub(1, 10) or nil,
    template = release.setting(ctx, "changelog_template"), tag_template = release.setting(ctx, "tag_template"),
    single = #(plan.crates or {}) == 1,
  }, function(cl, c)
    notes[c.name] = cl.notes
    if not cl.path then
      if enabled then
        ctx.log(("%s: no changelog (changelog_path names none for it)"):format(c.name))
      end
    elseif cl.text ~= cl.old then
      assert(fs.write(cl.path, release.utf8(cl.path, cl.text), { beneath = fork.path }))
      if not seen[cl.path] then
        seen[cl.path] = true
        changed[#changed + 1] = cl.path
      end
      ctx.log(("%s: %s section for %s %s"):format(cl.path, cl.old and "new" or "created with a", c.name, c.next))
    end
  end)

  -- README snippets in each crate's folder and at the root.
  local readmes = { "README.md" }
  for _, c in ipairs(planned) do
    if c.dir and c.dir ~= "" then
      readmes[#readmes + 1] = c.dir .. "/README.md"
    end
  end
  for _, rel in ipairs(readmes) do
    local text = package.committed(repo, versioned.commit, rel)
    if text then
      local new, total = text, 0
      for _, c in ipairs(planned) do
        local n
        new, n = package.readme_snippets(new, c.name, c.current, c.next)
        total = total + n
      end
      if new ~= text then
        assert(fs.write(rel, release.utf8(rel, new), { beneath = fork.path }))
        changed[#changed + 1] = rel
        ctx.log(("%s: %d version snippet(s) updated"):format(rel, total))
      end
    end
  end

  local commit = versioned.commit
  if #changed > 0 then
    table.sort(changed)
    assert(repo:add(changed))
    commit = assert(repo:commit_index {
      message = ("chore(release): changelogs for %s\n"):format(release.summary(planned):gsub("^chore%(release%): ", "")),
    })
  end
  assert(repo:reference_set(("refs/cdp/%s/package"):format(ctx.run), commit, "cdp: package", { force = true }))

  -- The .crate files, exactly what Publish will upload.
  local crates = {}
  local publishable = release.publishable(plan)
  if #publishable > 0 then
    local ws, werr = workspace.load(fork.path, { repo_root = fs.realpath(fork.path) })
    if not ws then
      error(werr, 0)
    end
    for _, c in ipairs(publishable) do
      local refused = release.registry_refusal(ctx, ws.by_name[c.name])
      if refused then
        error(refused, 0)
      end
    end
    local argv = { "cargo", "package", "--no-verify" }
    for _, c in ipairs(publishable) do
      argv[#argv + 1] = "-p"
      argv[#argv + 1] = c.name
    end
    local target = ctx.run_dir .. "/target"
    ctx.log("$ " .. table.concat(argv, " "))
    local res, err = proc.run { argv = argv, cwd = fork.path, timeout = 900,
      env = release.cargo_env(ctx, { CARGO_TARGET_DIR = target, CARGO_TERM_COLOR = "never" }),
      on_line = function(_, line) ctx.log(line) end }
    if not res or res.code ~= 0 then
      error(release.cargo_failure(ctx, "cargo package failed", res, err), 0)
    end
    assert(fs.mkdir(ctx.run_dir .. "/crates", { parents = true }))
    for _, c in ipairs(publishable) do
      local file = ("%s-%s.crate"):format(c.name, c.next)
      local dest = ctx.run_dir .. "/crates/" .. file
      local ok, cerr = fs.copy(target .. "/package/" .. file, dest)
      if not ok then
        error(("cargo package did not make %s: %s"):format(file, cerr), 0)
      end
      crates[c.name] = { version = c.next, file = dest, sha256 = assert(fs.sha256_file(dest)) }
      ctx.log(("%s sha256 %s"):format(file, crates[c.name].sha256))
    end
  end
  repo:close()
  local packaged = { commit = commit, path = fork.path, crates = crates, notes = notes }
  release.look_in_registry(ctx, packaged)
  return { packaged = packaged }
end

-- Recorded outputs hold while the fork has the commit and every .crate its bytes.
function package.verify(_, outputs)
  local p = outputs.packaged
  local ok, why = release.fork_has(p.path, p.commit)
  if not ok then
    return false, why
  end
  for name, c in pairs(p.crates) do
    if fs.sha256_file(c.file) ~= c.sha256 then
      return false, ("%s's .crate file %s is gone or changed"):format(name, c.file)
    end
  end
  return true
end

return package
