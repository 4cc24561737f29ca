-- Package: write each planned crate's CHANGELOG.md from git history and bring README
-- version snippets up to date, as one commit on the fork; then build the .crate files
-- for the crates to publish with `cargo package --offline` and keep them, with their
-- sha256, in the run folder. Nothing is published here.
--
-- Settings: changelog_template (a module name; default cdp.templates.keepachangelog),
-- tag_template.
local changelog = require "cdp.changelog"
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
    "tag_template", "registry_name", "registry_index",
    changelog_template = { type = "string", default = "cdp.templates.keepachangelog",
      doc = "the Lua module that renders a changelog section (header and render(release))" },
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

-- Commits for CRATE's section, newest first, with full messages.
local function crate_commits(repo, c, since_stable)
  local list = {}
  local ids = {}
  if since_stable then
    ids = since_stable
  else
    for _, cm in ipairs(c.commits or {}) do
      ids[#ids + 1] = cm.id
    end
  end
  for _, id in ipairs(ids) do
    local commit = repo:commit(id)
    if commit then
      list[#list + 1] = { id = commit.id, summary = commit.summary, message = commit.message }
    end
  end
  return list
end

-- When a pre-release graduates (0.4.0-dev.2 -> 0.4.0), its section covers every
-- commit since the last stable release, not only those since the last pre-release.
local function commits_since_stable(tag_template, repo, c, from, single)
  local best
  for _, tag in ipairs(repo:tags()) do
    local prefix = release.tag_name(tag_template, c.name, "", single)
    if tag.name:sub(1, #prefix) == prefix then
      local v = semver.parse(tag.name:sub(#prefix + 1))
      if v and #v.pre == 0 and repo:descendant_of(from, tag.peeled) and (not best or semver.compare(v, best.v) > 0) then
        best = { v = v, tag = tag }
      end
    end
  end
  local list = assert(repo:changes { from = from, paths = { c.dir or "" }, since = { best and best.tag.peeled or false } })
  local ids = {}
  for _, cm in ipairs(list) do
    ids[#ids + 1] = cm.id
  end
  return ids, best and best.tag.name or nil
end

local function date_of(repo, commit)
  local t = repo:commit(commit).committer.time
  return os.date("!%Y-%m-%d", t)
end

-- What Package writes into crate C's CHANGELOG.md (C is a plan entry). OPTS: root
-- (the work tree), from (the commit whose history is walked), date_of (the commit
-- being released, whose date heads the section; default FROM), remote (URL or nil),
-- template, tag_template, single. Returns { path (relative), section, old, text }.
-- The date is a commit's, not the clock's, so the text is the same on every run.
function package.changelog(repo, c, opts)
  local graduating = not release.is_prerelease(c.next) and release.is_prerelease(c.current)
  local ids, previous_tag
  if graduating then
    ids, previous_tag = commits_since_stable(opts.tag_template, repo, c, opts.from, opts.single)
  end
  if not previous_tag and c.last_tag and c.last_tag ~= json.null then
    previous_tag = c.last_tag
  end
  local section = changelog.render({
    crate = c.name, version = c.next, date = date_of(repo, opts.date_of or opts.from), remote = opts.remote,
    tag = release.tag_name(opts.tag_template, c.name, c.next, opts.single),
    previous_tag = previous_tag, commits = crate_commits(repo, c, ids),
  }, opts.template)
  local path = (c.dir and c.dir ~= "") and (c.dir .. "/CHANGELOG.md") or "CHANGELOG.md"
  local old = fs.read(opts.root .. "/" .. path)
  local text = changelog.insert(old, section, c.next, { fold = graduating, template = opts.template })
  return { path = path, section = section, old = old, text = text }
end

function package.run(ctx, inputs)
  local fork, plan, versioned = inputs.fork, inputs.plan, inputs.versioned
  -- Start from Version's commit whatever an interrupted attempt left behind.
  local repo = release.fork_at(fork, versioned.commit)

  local planned = release.planned(plan)
  local changed = {}
  for _, c in ipairs(planned) do
    local cl = package.changelog(repo, c, {
      root = fork.path, from = versioned.commit, date_of = fork.commit, remote = fork.origin or nil,
      template = release.setting(ctx, "changelog_template"), tag_template = release.setting(ctx, "tag_template"),
      single = #(plan.crates or {}) == 1,
    })
    if cl.text ~= cl.old then
      assert(fs.write(fork.path .. "/" .. cl.path, release.utf8(cl.path, cl.text)))
      changed[#changed + 1] = cl.path
      ctx.log(("%s: %s section for %s"):format(cl.path, cl.old and "new" or "created with a", c.next))
    end
  end

  -- README snippets in each crate's folder and at the root.
  local readmes = { "README.md" }
  for _, c in ipairs(planned) do
    if c.dir and c.dir ~= "" then
      readmes[#readmes + 1] = c.dir .. "/README.md"
    end
  end
  for _, rel in ipairs(readmes) do
    local path = fork.path .. "/" .. rel
    local text = fs.read(path)
    if text then
      local new, total = text, 0
      for _, c in ipairs(planned) do
        local n
        new, n = package.readme_snippets(new, c.name, c.current, c.next)
        total = total + n
      end
      if new ~= text then
        assert(fs.write(path, release.utf8(rel, new)))
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
    local argv = { "cargo", "package", "--offline", "--no-verify" }
    for _, c in ipairs(publishable) do
      argv[#argv + 1] = "-p"
      argv[#argv + 1] = c.name
    end
    local target = ctx.run_dir .. "/target"
    ctx.log("$ " .. table.concat(argv, " "))
    local res, err = proc.run { argv = argv, cwd = fork.path, timeout = 900,
      env = { CARGO_TARGET_DIR = target, CARGO_TERM_COLOR = "never" },
      on_line = function(_, line) ctx.log(line) end }
    if not res or res.code ~= 0 then
      error(("cargo package failed: %s"):format(res and (res.stderr ~= "" and res.stderr or res.stdout) or err), 0)
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
  return { packaged = { commit = commit, path = fork.path, crates = crates } }
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
