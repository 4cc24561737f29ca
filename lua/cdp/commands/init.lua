-- cdp init [DIR] [--force] [--stdout] [--github-actions]: write the project's pipeline.
--
-- A team adopting cdp already has a tag convention and often a release-plz.toml, a
-- cargo-release release.toml or a git-cliff cliff.toml. cdp init reads them and writes
-- cdp.lua: the shipped release pipeline's stages, the tag template the tags follow, the
-- policy preset and the settings those files set where cdp has a counterpart, and a
-- commented line for every other setting, made from the settings reference. What it
-- could not carry over is listed, in its output and in the file's header. It never
-- writes over a file without --force, and checks that what it wrote loads.
local cli = require "cdp.cli"
local tables = require "cdp.tables"

local command = {
  summary = "write cdp.lua, the project's pipeline, from its tags and its release tools' files",
  usage = "cdp init [DIR] [--force] [--stdout] [--github-actions]",
  help = [[
Writes DIR/cdp.lua (default: the current directory, the root of a Cargo workspace in a
git repository), the pipeline `cdp run`, `cdp plan --pipeline cdp.lua` and
`cdp config` use when given no other. It holds:
  - the stages of the release pipeline cdp ships, in its order, and its phase;
  - the tag convention the existing tags follow ({crate}-v{version},
    {crate}-{version}, {crate}@{version}, {crate}/v{version}, v{version}, {version});
  - from release-plz.toml (or .release-plz.toml), release.toml (cargo-release, and
    [workspace.metadata.release] / [package.metadata.release] in the manifests) and
    cliff.toml (git-cliff): the policy preset, and every setting cdp has a counterpart
    for (tag names, changelog paths, skipped crates, shared versions, the remote, the
    registry, bump rules); what it cannot carry over is listed;
  - every other setting as a commented line with its default and meaning.
It also writes .cdp/.gitignore, which keeps runs out of git and not .cdp/lua/.

Options:
  --force           write over an existing cdp.lua (or .cdp/pipeline.lua's place)
  --stdout          print the pipeline instead of writing it
  --github-actions  also write the GitHub Actions workflow that runs cdp.lua as one job per
                    stage (cdp export github-actions cdp.lua; cdp help export)

Examples:
  cdp init                      in the workspace's root
  cdp init --stdout | less      see what it would write
  cdp init --force && git diff cdp.lua

Exit codes: 0 written, 1 the repository cannot be read (no Cargo.toml, not a git
repository, a broken manifest) or cdp.lua exists, 2 bad usage.]],
}

local function parse_args(args)
  local runcmd = require "cdp.commands.run"
  local o, positional = runcmd.parse(args, { ["--force"] = "flag", ["--stdout"] = "flag",
    ["--github-actions"] = "flag" }, "init")
  if #positional > 1 then
    cli.usage_error("cdp init takes at most one DIR", "init")
  end
  o.dir = positional[1] or "."
  return o
end

---------------------------------------------------------------------------
-- Lua text

local function quote(s)
  return (("%q"):format(s):gsub("\\\n", "\\n"))
end

local function is_identifier(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local function sorted_keys(t)
  return tables.sorted_keys(t, function(a, b) return tostring(a) < tostring(b) end)
end

-- VALUE as Lua source on one line, keys sorted.
local function literal(v)
  local t = type(v)
  if t == "string" then
    return quote(v)
  elseif t ~= "table" then
    return tostring(v)
  end
  local parts = {}
  if #v > 0 or next(v) == nil then
    for i, x in ipairs(v) do
      parts[i] = literal(x)
    end
    return next(v) == nil and "{}" or ("{ " .. table.concat(parts, ", ") .. " }")
  end
  for _, k in ipairs(sorted_keys(v)) do
    parts[#parts + 1] = (is_identifier(k) and k or ("[" .. literal(k) .. "]")) .. " = " .. literal(v[k])
  end
  return "{ " .. table.concat(parts, ", ") .. " }"
end
command.literal = literal

---------------------------------------------------------------------------
-- What the repository says

-- The workspace, its plan and its repository; or nil and a message.
local function survey(dir)
  local fs = require "cdp.fs"
  local git = require "cdp.git"
  local plan = require "cdp.plan"
  if not fs.exists(dir .. "/Cargo.toml") then
    return nil, ("no Cargo.toml in %s: run cdp init at the root of a Cargo workspace"):format(dir)
  end
  local repo, err = git.discover(dir)
  if not repo then
    return nil, ("%s is not in a git repository (%s): cdp plans releases from git history; git init first")
      :format(dir, tostring(err))
  end
  local p, perr = plan.make { dir = dir }
  if not p then
    repo:close()
    return nil, perr
  end
  local names = {}
  for i, c in ipairs(p.crates) do
    names[i] = c.name
  end
  return { dir = dir, repo = repo, plan = p, ws = p.workspace, names = names, head = repo:resolve("HEAD"),
    single = #names == 1 }
end

-- The conventions cdp knows (DESIGN.md, "Release Plan"); v{version} and {version} name
-- no crate, so they fit a workspace of one crate or of one shared version.
command.CONVENTIONS = { "{crate}-v{version}", "{crate}-{version}", "{crate}@{version}", "{crate}/v{version}",
  "v{version}", "{version}" }

-- How many crates have a release tag under TEMPLATE (0 when a tag it matches is no semver).
local function releases_under(facts, template)
  local releases = require("cdp.plan").releases(facts.repo, facts.names, template, facts.head)
  local n = 0
  for _ in pairs(releases or {}) do
    n = n + 1
  end
  return n
end

-- The tag template the tags follow: { template, found (crates with a release under
-- it), configured (the template a config file named, if that one won) }. PREFERRED: a
-- template a config file names; it wins ties, and stands when there are no tags.
local function tag_convention(facts, preferred)
  local plan = require "cdp.plan"
  local default = facts.single and plan.SINGLE_TEMPLATE or plan.DEFAULT_TEMPLATE
  -- A plan that finds the convention per crate from the tags says so on each crate
  -- (tag_template, and tag_template_source: "default" when no tag showed one); then
  -- the pipeline needs no tag_template, unless a config file names one no tag shows.
  local per_crate, found = {}, 0
  for _, c in ipairs(facts.plan.crates) do
    if type(c.tag_template) == "string" then
      per_crate[c.name] = c.tag_template
      if c.tag_template_source ~= nil and c.tag_template_source ~= "default" then
        found = found + 1
      end
    end
  end
  if next(per_crate) then
    local distinct = {}
    for _, t in pairs(per_crate) do distinct[t] = (distinct[t] or 0) + 1 end
    local best, count = nil, -1
    for t, n in pairs(distinct) do
      if n > count or (n == count and t < best) then best, count = t, n end
    end
    if found == 0 and preferred then
      return { template = preferred, found = 0, default = default, configured = true }
    end
    -- A config file's template the tags agree with is written down: crates added later
    -- follow it too, not the default.
    return { template = best, found = found, default = default, per_crate = per_crate,
      configured = preferred ~= nil and best == preferred and count == #facts.plan.crates }
  end
  local candidates = {}
  if preferred then
    candidates[1] = preferred
  end
  -- A convention without {crate} fits one crate, or crates that share one version.
  local shared = facts.single
  if not shared then
    shared = true
    for _, m in ipairs(facts.ws.members) do
      shared = shared and m.inherited_version and true or false
    end
  end
  for _, t in ipairs(command.CONVENTIONS) do
    if t ~= preferred and (t:find("{crate}", 1, true) or shared) then
      candidates[#candidates + 1] = t
    end
  end
  local best, found = preferred or default, preferred and releases_under(facts, preferred) or releases_under(facts, default)
  for _, t in ipairs(candidates) do
    local n = releases_under(facts, t)
    if n > found then
      best, found = t, n
    end
  end
  return { template = best, found = found, default = default, configured = preferred and best == preferred }
end

---------------------------------------------------------------------------
-- The files of the tools a team comes from

local function read_toml(path)
  local fs = require "cdp.fs"
  local text = fs.read(path)
  if not text then
    return nil
  end
  local doc, err = require("cdp.toml").parse(text, { name = path })
  if not doc then
    return nil, err
  end
  local t = doc:to_table()
  doc:close()
  return t
end

-- A result being gathered: settings, policy options, what was carried and what not.
local function new_result()
  local r = { settings = {}, policy = {}, carried = {}, dropped = {}, files = {} }
  function r.carry(file, key, target, value, why)
    r.carried[#r.carried + 1] = { file = file, key = key, target = target, value = value, why = why }
  end
  function r.drop(file, key, why)
    r.dropped[#r.dropped + 1] = { file = file, key = key, why = why }
  end
  return r
end

-- "{{ package }}-v{{ version }}" (Tera, as release-plz writes it) as a cdp template, or nil.
local function from_tera(text, names)
  if type(text) ~= "string" or text:find("{%", 1, true) or text:find("|", 1, true) then
    return nil
  end
  local out = text
  for placeholder, replacement in pairs(names) do
    out = out:gsub("{{%s*" .. placeholder .. "%s*}}", replacement)
  end
  if out:find("{{", 1, true) then
    return nil
  end
  local _, n = out:gsub("{version}", "")
  return n == 1 and out or nil
end

-- "10m", "30s", "1h" as seconds, or nil.
local function duration(text)
  local n, unit = tostring(text):match("^(%d+)%s*([smh]?)$")
  if not n then
    return nil
  end
  return math.tointeger(tonumber(n) * ({ s = 1, m = 60, h = 3600, [""] = 1 })[unit])
end

-- A forge repository (owner/name) from a URL, or nil.
local function forge_repo(url)
  return require("cdp.forge").parse_remote(url)
end

-- Keys that have no counterpart in cdp, and why (what to do instead).
local RELEASE_PLZ_DROPPED = {
  dependencies_update = "cdp updates only the workspace's own entries in Cargo.lock",
  git_release_enable = "Publish makes GitHub releases when forge_token is set; unset it to make none",
  git_release_name = "GitHub releases are named \"<crate> <version>\"",
  git_release_body = "the release body is the crate's changelog section",
  git_release_type = "a pre-release version makes a pre-release",
  git_release_draft = "releases are published, not drafts",
  git_release_latest = "the forge decides the latest release",
  git_tag_enable = "every release is tagged; the tags are how the next plan finds it",
  pr_draft = "the release PR is opened ready for review",
  pr_labels = "the release PR carries no labels",
  pr_name = "the release PR's title is made from the plan",
  pr_body = "the release PR's body is the plan and the changelog sections",
  pr_branch_prefix = "the release branch is cdp's own",
  publish = "cdp publishes what the manifests allow: set publish = false in a crate's Cargo.toml, "
    .. "or drop publish from the stages",
  publish_allow_dirty = "cdp packages from a clean Release Fork",
  publish_no_verify = "Package runs cargo package --no-verify; Test builds and tests the workspace",
  publish_features = "no counterpart; add the build you need to test_commands",
  semver_check = "cdp does not run cargo-semver-checks; add `cargo semver-checks` to test_commands",
  release_always = "to release only when a release PR is merged, use the PR-first flow "
    .. "(cdp run release-pr on push, cdp run publish on the merged commit)",
  release_commits = "every commit the policy releases triggers a release; write a policy to narrow it",
  features_always_increment_minor = "on 0.x cdp's policy makes a feature a patch and a break a minor "
    .. "together (zero_major = false makes them minor and major)",
  custom_major_increment_regex = "write a policy (docs/policies.md) to read other commit types",
  custom_minor_increment_regex = "write a policy (docs/policies.md) to read other commit types",
  changelog_include = "a crate's changelog lists the commits that change its files",
}

-- Values that say what cdp does anyway.
local RELEASE_PLZ_SAME = {
  allow_dirty = false, changelog_update = true, dependencies_update = false, features_always_increment_minor = false,
  git_release_enable = true, git_release_draft = false, git_tag_enable = true, pr_draft = false, publish = true,
  publish_allow_dirty = false, publish_no_verify = true, release = true, release_always = true, semver_check = false,
}


-- git-cliff's keys ([changelog], [git]), which release-plz's [changelog] shares, and why
-- cdp has no counterpart.
local CHANGELOG_DROPPED = {
  header = "a changelog template module (changelog_template; docs/changelogs.md) writes the header",
  body = "a changelog template module (changelog_template; docs/changelogs.md) writes each section",
  footer = "a changelog template module (changelog_template; docs/changelogs.md) writes the text",
  trim = "a template writes the text it means",
  postprocessors = "a template (docs/changelogs.md) may rewrite entries",
  output = "each crate's changelog is where changelog_path says",
  conventional_commits = "commits are always read as Conventional Commits",
  filter_unconventional = "other commits are listed under Other",
  split_commits = "a commit is one entry",
  commit_preprocessors = "a template (docs/changelogs.md) may rewrite entries",
  commit_parsers = "groups come from commit types; a template (docs/changelogs.md) may regroup them",
  filter_commits = "the commits that change a crate's files are its entries",
  tag_pattern = "the tag convention is found from the tags, and set by tag_template",
  skip_tags = "every release tag is a release",
  ignore_tags = "every release tag is a release",
  topo_order = "entries are listed newest first",
  sort_commits = "entries are listed newest first",
  link_parsers = "a template (docs/changelogs.md) may add links",
  limit_commits = "every commit of the release is listed",
}

-- release-plz.toml or .release-plz.toml.
local function read_release_plz(facts, r)
  for _, name in ipairs { "release-plz.toml", ".release-plz.toml" } do
    local path = facts.dir .. "/" .. name
    local t, err = read_toml(path)
    if err then
      r.drop(name, "(the file)", "it does not parse: " .. err)
      return
    end
    if t then
      r.files[#r.files + 1] = name
      r.preset = r.preset or "release_plz"
      local ws = type(t.workspace) == "table" and t.workspace or {}
      local keys = sorted_keys(ws)
      for _, k in ipairs(keys) do
        local v = ws[k]
        if k == "git_tag_name" then
          local tpl = from_tera(v, { package = "{crate}", version = "{version}" })
          if tpl then
            r.tag_template = tpl
            r.carry(name, k, "tag_template", tpl, "if the tags agree")
          else
            r.drop(name, k, ("'%s' uses more than {{ package }} and {{ version }}"):format(tostring(v)))
          end
        elseif k == "changelog_update" then
          if v == false then
            r.settings.changelog = false
            r.carry(name, k, "changelog", false)
          end
        elseif k == "changelog_config" then
          r.cliff = v
          r.carry(name, k, "(read below)", v, "the git-cliff file it names is read as cliff.toml is")
        elseif k == "allow_dirty" then
          if v == true then
            r.settings.validate_skip = { "clean" }
            r.carry(name, k, "validate_skip", { "clean" })
          end
        elseif k == "repo_url" then
          local repo = forge_repo(v)
          if repo then
            r.settings.forge_repo = repo
            r.carry(name, k, "forge_repo", repo)
          else
            r.drop(name, k, "not a forge URL cdp reads: " .. tostring(v))
          end
        elseif k == "publish_timeout" then
          local seconds = duration(v)
          if seconds then
            r.settings.registry_index_timeout = seconds
            r.carry(name, k, "registry_index_timeout", seconds, "how long Publish waits for the index")
          else
            r.drop(name, k, "not a duration: " .. tostring(v))
          end
        elseif k == "release" then
          if v == false then
            r.release_default = false
          end
        elseif RELEASE_PLZ_SAME[k] == v then
          r.carry(name, k, "(as cdp does)")
        else
          r.drop(name, k, RELEASE_PLZ_DROPPED[k] or "no counterpart in cdp")
        end
      end
      local path_table = {}
      for _, pkg in ipairs(type(t.package) == "table" and t.package or {}) do
        local crate = pkg.name
        if type(crate) == "string" then
          local pkeys = sorted_keys(pkg)
          for _, k in ipairs(pkeys) do
            local v = pkg[k]
            local key = ("package %s: %s"):format(crate, k)
            if k == "name" then
              -- the table's name
            elseif k == "changelog_path" and type(v) == "string" then
              path_table[crate] = v
              r.carry(name, key, "changelog_path", v)
            elseif k == "changelog_update" and v == false then
              path_table[crate] = false
              r.carry(name, key, "changelog_path", false)
            elseif k == "release" then
              r.release = r.release or {}
              r.release[crate] = v ~= false
            elseif k == "git_tag_name" then
              local tpl = from_tera(v, { package = "{crate}", version = "{version}" })
              r.per_crate_tags = r.per_crate_tags or {}
              r.per_crate_tags[crate] = tpl or v
              r.drop(name, key, "one tag_template serves every crate; the tags are read per crate")
            else
              r.drop(name, key, RELEASE_PLZ_DROPPED[k] or "no counterpart in cdp")
            end
          end
        end
      end
      if next(path_table) then
        r.settings.changelog_path = path_table
      end
      local skip = {}
      for _, crate in ipairs(facts.names) do
        local released = r.release and r.release[crate]
        if released == nil then
          released = r.release_default ~= false
        end
        if not released then
          skip[#skip + 1] = crate
        end
      end
      if #skip > 0 then
        r.policy.skip = skip
        r.carry(name, "release = false", "policy skip", skip)
      end
      local ch = type(t.changelog) == "table" and t.changelog or {}
      local ckeys = sorted_keys(ch)
      for _, k in ipairs(ckeys) do
        if k == "protect_breaking_commits" and ch[k] == true then
          r.carry(name, "changelog." .. k, "(as cdp does)", nil, "breaking changes are always listed")
        else
          r.drop(name, "changelog." .. k, CHANGELOG_DROPPED[k] or "no counterpart in cdp")
        end
      end
      return
    end
  end
end

local CARGO_RELEASE_SAME = {
  ["sign-commit"] = false, ["sign-tag"] = false, push = true, tag = true, publish = true, release = true,
  ["consolidate-commits"] = true, ["consolidate-pushes"] = true, ["dependent-version"] = "upgrade",
}

local CARGO_RELEASE_DROPPED = {
  ["allow-branch"] = "cdp releases the ref it is given (the ref setting), from any branch",
  ["sign-commit"] = "cdp's commits are not signed",
  ["sign-tag"] = "cdp's tags are annotated, not signed",
  ["pre-release-commit-message"] = "the release commit's message is made from the plan",
  ["tag-message"] = "the tag message is made from the plan",
  ["pre-release-replacements"] = "Package updates version snippets in README.md itself; "
    .. "write a stage (docs/stages.md) for other files",
  ["pre-release-hook"] = "write a stage (docs/stages.md) to run a command before the release commit",
  ["consolidate-commits"] = "cdp makes one version commit and one changelog commit",
  ["consolidate-pushes"] = "cdp pushes once",
  publish = "cdp publishes what the manifests allow: set publish = false in a crate's Cargo.toml, "
    .. "or drop publish from the stages",
  push = "cdp pushes the tags and the release branch; stop a run with --to package to push nothing",
  tag = "every release is tagged; the tags are how the next plan finds it",
  owners = "no counterpart; set owners on the registry",
  ["enable-features"] = "no counterpart; add the build you need to test_commands",
  ["enable-all-features"] = "no counterpart; add the build you need to test_commands",
  target = "no counterpart; add the build you need to test_commands",
  ["certs-source"] = "cdp uses the system's certificates (libcurl)",
  metadata = "build metadata in a version is kept",
  verify = "Package runs cargo package --no-verify; Test builds and tests the workspace",
  ["dependent-version"] = "cdp rewrites a dependent's requirement when it no longer admits the new version",
  ["push-options"] = "no counterpart",
}

-- The .cargo/config.toml index of registry NAME, as cdp names an index, or nil.
local function registry_index(facts, name)
  local cfg = read_toml(facts.dir .. "/.cargo/config.toml") or read_toml(facts.dir .. "/.cargo/config") or {}
  local reg = type(cfg.registries) == "table" and cfg.registries[name]
  local index = type(reg) == "table" and reg.index
  if type(index) ~= "string" then
    return nil
  end
  return index:match("^sparse%+") and index or nil
end

-- cargo-release: release.toml at the root, [workspace.metadata.release] in the root
-- manifest, [package.metadata.release] and release.toml in a crate's directory.
local function read_cargo_release(facts, r)
  local sources = {}
  local root_file = read_toml(facts.dir .. "/release.toml")
  if root_file then
    sources[#sources + 1] = { name = "release.toml", t = root_file }
  end
  local manifest = read_toml(facts.dir .. "/Cargo.toml") or {}
  local ws_meta = type(manifest.workspace) == "table" and type(manifest.workspace.metadata) == "table"
    and manifest.workspace.metadata.release
  if type(ws_meta) == "table" then
    sources[#sources + 1] = { name = "Cargo.toml [workspace.metadata.release]", t = ws_meta }
  end
  local per_crate = {}
  for _, m in ipairs(facts.ws.members) do
    local dir = (m.dir == "" or m.dir == nil) and facts.dir or (facts.dir .. "/" .. m.dir)
    local crate_file = m.dir ~= "" and read_toml(dir .. "/release.toml")
    local meta = m.package and m.package.metadata
    local pkg = type(meta) == "table" and meta ~= require("cdp.json").null and meta.release
    for _, t in ipairs { crate_file or false, type(pkg) == "table" and pkg or false } do
      if t then
        per_crate[m.name] = per_crate[m.name] or {}
        for k, v in pairs(t) do per_crate[m.name][k] = v end
      end
    end
  end
  if #sources == 0 and next(per_crate) == nil then
    return
  end
  local file = #sources > 0 and sources[1].name or "release.toml"
  r.files[#r.files + 1] = file
  r.preset = r.preset or "cargo_release"
  local t = {}
  for _, s in ipairs(sources) do
    for k, v in pairs(s.t) do
      if t[k] == nil then t[k] = v end
    end
  end
  local keys = sorted_keys(t)
  local prefix = t["tag-prefix"]
  for _, k in ipairs(keys) do
    local v = t[k]
    if k == "tag-name" or k == "tag-prefix" then
      -- below, together
    elseif k == "shared-version" then
      if v == true then
        r.policy.lockstep = { facts.names }
        r.carry(file, k, "policy lockstep", facts.names)
      elseif type(v) == "string" then
        r.drop(file, k, "a named group is set per crate; see lockstep below")
      end
    elseif k == "push-remote" and type(v) == "string" then
      r.settings.remote = v
      r.carry(file, k, "remote", v)
    elseif k == "registry" and type(v) == "string" then
      r.settings.registry_name = v
      r.carry(file, k, "registry_name", v)
      local index = registry_index(facts, v)
      if index then
        r.settings.registry_index = index
        r.carry(".cargo/config.toml", "registries." .. v .. ".index", "registry_index", index)
      else
        r.drop(file, k, ("set registry_index to the sparse index of '%s'"):format(v))
      end
    elseif k == "rate-limit" and type(v) == "table" then
      if (v["new-packages"] or 5) == 5 and (v["existing-packages"] or 30) == 30 then
        r.carry(file, k, "registry_limits", "crates.io", "crates.io's limits, cdp's default")
      else
        r.drop(file, k, "registry_limits is crates.io's limits or none")
      end
    elseif k == "release" and v == false then
      r.policy.skip = facts.names
      r.carry(file, k, "policy skip", facts.names)
    elseif CARGO_RELEASE_SAME[k] == v then
      r.carry(file, k, "(as cdp does)")
    else
      r.drop(file, k, CARGO_RELEASE_DROPPED[k] or "no counterpart in cdp")
    end
  end
  -- Tag names: {{prefix}}v{{version}}, the prefix "" at the root and "{{crate_name}}-" in
  -- a member's directory: cdp's own defaults, unless the files say otherwise.
  if t["tag-name"] ~= nil or prefix ~= nil then
    local name = t["tag-name"] or "{{prefix}}v{{version}}"
    local p = prefix or (facts.single and "" or "{{crate_name}}-")
    local tpl = from_tera(type(name) == "string" and name:gsub("{{%s*prefix%s*}}", function() return p end) or nil,
      { crate_name = "{crate}", version = "{version}" })
    if tpl then
      r.tag_template = tpl
      r.carry(file, t["tag-name"] ~= nil and "tag-name" or "tag-prefix", "tag_template", tpl, "if the tags agree")
    else
      r.drop(file, "tag-name", ("'%s' uses more than {{crate_name}}, {{prefix}} and {{version}}"):format(name))
    end
  end
  local skip, groups = {}, {}
  for _, crate in ipairs(sorted_keys(per_crate)) do
    local c = per_crate[crate]
    local ckeys = sorted_keys(c)
    for _, k in ipairs(ckeys) do
      local key = ("%s: %s"):format(crate, k)
      if k == "release" and c[k] == false then
        skip[#skip + 1] = crate
      elseif k == "shared-version" and c[k] then
        local g = c[k] == true and "default" or tostring(c[k])
        groups[g] = groups[g] or {}
        table.insert(groups[g], crate)
      else
        r.drop("Cargo.toml [package.metadata.release]", key, CARGO_RELEASE_DROPPED[k] or "set per workspace in cdp")
      end
    end
  end
  if #skip > 0 then
    r.policy.skip = skip
    r.carry("[package.metadata.release]", "release = false", "policy skip", skip)
  end
  for _, g in ipairs(sorted_keys(groups)) do
    if #groups[g] > 1 then
      r.policy.lockstep = r.policy.lockstep or {}
      table.insert(r.policy.lockstep, groups[g])
      r.carry("[package.metadata.release]", "shared-version", "policy lockstep", groups[g])
    end
  end
end


-- cliff.toml (git-cliff), or the file release-plz's changelog_config names.
local function read_cliff(facts, r)
  local name = type(r.cliff) == "string" and r.cliff or "cliff.toml"
  local t, err = read_toml(facts.dir .. "/" .. name)
  if err then
    r.drop(name, "(the file)", "it does not parse: " .. err)
    return
  end
  if not t then
    return
  end
  r.files[#r.files + 1] = name
  for _, section in ipairs { "changelog", "git" } do
    local s = type(t[section]) == "table" and t[section] or {}
    local keys = sorted_keys(s)
    for _, k in ipairs(keys) do
      if k == "protect_breaking_commits" and s[k] == true then
        r.carry(name, section .. "." .. k, "(as cdp does)", nil, "breaking changes are always listed")
      else
        r.drop(name, section .. "." .. k, CHANGELOG_DROPPED[k] or "no counterpart in cdp")
      end
    end
  end
  local bump = type(t.bump) == "table" and t.bump or {}
  local minor, major = bump.features_always_bump_minor, bump.breaking_always_bump_major
  if minor == true and major == true then
    r.policy.zero_major = false
    r.carry(name, "bump.features_always_bump_minor, bump.breaking_always_bump_major", "policy zero_major", false)
  elseif minor == true or major == true then
    r.drop(name, minor and "bump.features_always_bump_minor" or "bump.breaking_always_bump_major",
      "on 0.x cdp shifts features and breaks together: zero_major = false does both")
  end
  if type(bump.initial_tag) == "string" then
    local v = bump.initial_tag:gsub("^v", "")
    if require("cdp.semver").parse(v) then
      r.policy.initial_version = v
      r.carry(name, "bump.initial_tag", "policy initial_version", v)
    end
  end
  for k in pairs(bump) do
    if k ~= "features_always_bump_minor" and k ~= "breaking_always_bump_major" and k ~= "initial_tag" then
      r.drop(name, "bump." .. k, "no counterpart in cdp")
    end
  end
  local remote = type(t.remote) == "table" and type(t.remote.github) == "table" and t.remote.github
  if remote and type(remote.owner) == "string" and type(remote.repo) == "string" then
    r.settings.forge_repo = r.settings.forge_repo or (remote.owner .. "/" .. remote.repo)
    r.carry(name, "remote.github", "forge_repo", remote.owner .. "/" .. remote.repo)
  end
end

---------------------------------------------------------------------------
-- The pipeline's text

-- The policy line and what it needs required: the preset if this cdp has it and it
-- takes the options, else the conventional policy with them.
local function policy_source(r)
  local opts = r.policy
  local text = next(opts) and literal(opts) or "{}"
  if r.preset then
    local module = "cdp.policies." .. r.preset
    local ok, preset = pcall(require, module)
    if ok and (type(preset) == "function" or type(preset) == "table") and pcall(preset, opts) then
      return ("local %s = require %q"):format(r.preset, module), ("%s %s"):format(r.preset, text), nil
    end
    r.preset_missing = module
  end
  return 'local conventional = require "cdp.policies.conventional"', "conventional " .. text
end

local function comment_lines(out, items, fmt)
  for _, item in ipairs(items) do
    out[#out + 1] = "--   " .. fmt(item)
  end
end

local function carried_text(c)
  local value = c.value ~= nil and (" = " .. literal(c.value)) or ""
  return ("%s: %s -> %s%s%s"):format(c.file, c.key, c.target, value, c.why and (" (" .. c.why .. ")") or "")
end

local function dropped_text(d)
  return ("%s: %s: %s"):format(d.file, d.key, d.why)
end

-- The text of cdp.lua.
local function render(facts, shipped, tags, r)
  local settings = require "cdp.settings"
  local host = require "cdp.host"
  local out = {}
  local function add(line) out[#out + 1] = line end
  local crates = #facts.names <= 6 and table.concat(facts.names, ", ")
    or ("%d crates"):format(#facts.names)
  add(("-- The release pipeline of this repository (%s), written by `cdp init` (cdp %s)."):format(crates, host.version))
  add("--")
  add("--   cdp plan                 the Release Plan: which crates bump, to what, and why")
  add("--   cdp run --to package     version bumps, changelogs and .crate files in a private fork; nothing pushed")
  add(("--   cdp run                  the whole release: %s"):format(table.concat(shipped:names(), " → ")))
  add("--   cdp config               every setting's value and where it comes from")
  add("--   cdp check                every health check; no stage runs")
  local flows = {}
  for _, n in ipairs(require("cdp.script").shipped()) do flows[n] = true end
  if flows["release-pr"] and flows.publish then
    add("--   (the PR-first flow: cdp run release-pr on every push, cdp run publish on the merged commit)")
  end
  add("--")
  add("-- Found in the repository:")
  if tags.per_crate then
    add(("--   tags: %s for %d of %d crates (each crate's convention is read from its tags)")
      :format(tags.template, tags.found, #facts.names))
  elseif tags.found > 0 then
    add(("--   tags: %s (the last release of %d of %d crates)"):format(tags.template, tags.found, #facts.names))
  else
    add(("--   tags: none yet; new tags will be %s"):format(tags.template))
  end
  if #r.carried > 0 then
    add(("-- Carried over from %s:"):format(table.concat(r.files, ", ")))
    comment_lines(out, r.carried, carried_text)
  end
  if #r.dropped > 0 then
    add("-- Not carried over (no counterpart in cdp, and what to do instead):")
    comment_lines(out, r.dropped, dropped_text)
  end
  add("--")
  add("-- Edit anything here; nothing needs recompiling. The stage contract, policies and")
  add("-- changelog templates are explained in cdp's docs/ (installed in share/doc/cdp/docs).")
  local require_line, policy_line = policy_source(r)
  if r.preset_missing then
    add(("-- The preset %s is not in this cdp; the conventional policy stands in for it."):format(r.preset_missing))
  end
  add(require_line)
  add("")
  add("return cdp.pipeline {")
  add(("  name = %s,"):format(quote(shipped.name)))
  add(("  phase = %d, -- %s"):format(shipped.phase, require("cdp.pipeline").PHASES[shipped.phase]))
  add("")
  add("  -- Conventional Commits decide the bumps: breaking → major (0.x: minor), feat → minor")
  add("  -- (0.x: patch), fix and perf → patch. Options: types, zero_major, initial_version,")
  add("  -- overrides, lockstep, skip, propagate, prerelease (docs/policies.md).")
  add(("  policy = %s,"):format(policy_line))
  add("")
  add("  -- Every setting the stages read. Set here, with CDP_<KEY>=value, or --set key=value;")
  add("  -- `cdp help settings` explains each. The commented lines are the defaults.")
  add("  settings = {")
  local rows = settings.reference(shipped.stages)
  local secrets = {}
  local active = {}
  for k, v in pairs(r.settings) do active[k] = v end
  if tags.template ~= tags.default and (not tags.per_crate or tags.configured) then
    active.tag_template = tags.template
  end
  for _, row in ipairs(rows) do
    if row.decl.type == "secret" then
      secrets[#secrets + 1] = row
    elseif active[row.name] ~= nil and literal(active[row.name]) ~= literal(row.decl.default) then
      local why = row.name == "tag_template" and "the tags' convention" or "carried over"
      add(("    %s = %s, -- %s"):format(row.name, literal(active[row.name]), why))
      active[row.name] = nil
    else
      local given = active[row.name] ~= nil
      active[row.name] = nil
      add(("    -- %s = %s, -- %s"):format(row.name, row.decl.default == nil and "nil" or literal(row.decl.default),
        given and "carried over, and cdp's default too" or row.doc))
    end
  end
  local leftover = sorted_keys(active)
  for _, k in ipairs(leftover) do
    -- A setting this cdp's stages do not declare cannot be set: keep it as a note.
    add(("    -- %s = %s, -- carried over, but no stage of this pipeline reads it"):format(k, literal(active[k])))
  end
  if #secrets > 0 then
    add("    -- Secrets are read from the environment, never written here:")
    for _, row in ipairs(secrets) do
      add(("    --   %s from $%s: %s"):format(row.name, row.decl.env, row.doc))
    end
  end
  add("  },")
  add("")
  add("  -- Progress goes to the terminal; add sinks (webhook, Slack, e-mail, JSON lines) and")
  add("  -- rules to be told elsewhere, e.g.")
  add('  --   alerts = { sinks = { events = { jsonl = ".cdp/events.jsonl" } }, rules = { { on = "*", to = "events" } } },')
  add("")
  local names = {}
  for i, n in ipairs(shipped:names()) do names[i] = quote(n) end
  add(("  stages = { %s },"):format(table.concat(names, ", ")))
  add("}")
  return table.concat(out, "\n") .. "\n"
end

---------------------------------------------------------------------------
-- The command

-- What cdp init would write in DIR: { text, facts, tags, result } or nil, message.
function command.generate(dir)
  local facts, err = survey(dir)
  if not facts then
    return nil, err
  end
  local r = new_result()
  read_release_plz(facts, r)
  read_cargo_release(facts, r)
  read_cliff(facts, r)
  local tags = tag_convention(facts, r.tag_template)
  if r.tag_template and tags.template ~= r.tag_template then
    r.drop("(tags)", "tag template " .. r.tag_template, ("the tags follow %s, which cdp keeps"):format(tags.template))
  end
  local shipped = require("cdp.commands.run").load("release")
  local text = render(facts, shipped, tags, r)
  facts.repo:close()
  return { text = text, facts = facts, tags = tags, result = r }
end

-- TEXT loads as a pipeline whose settings resolve: what init writes must work.
local function check_loads(text, path)
  local script = require "cdp.script"
  local chunk, err = load(text, "@" .. path, "t", script.env())
  if not chunk then
    error(("cdp init wrote a pipeline that does not compile (a bug): %s"):format(err), 0)
  end
  local saved = _G.arg
  _G.arg = { [0] = path }
  local ok, p = pcall(chunk)
  _G.arg = saved
  if not ok or not require("cdp.pipeline").is(p) then
    error(("cdp init wrote a pipeline that does not load (a bug): %s"):format(tostring(p)), 0)
  end
end

function command.run(args)
  local o = parse_args(args)
  local fs = require "cdp.fs"
  local run = require "cdp.run"
  local dir = o.dir:gsub("/+$", "")
  dir = dir == "" and "/" or dir
  local target = dir == "." and "cdp.lua" or (dir .. "/cdp.lua")
  if not o.stdout and not o.force then
    for _, name in ipairs(require("cdp.script").PROJECT_PIPELINES) do
      if fs.exists(dir .. "/" .. name) then
        io.stderr:write(("cdp init: %s exists; `cdp init --force` writes cdp.lua over it, "
          .. "`cdp init --stdout` prints what it would write\n"):format(dir == "." and name or (dir .. "/" .. name)))
        return cli.EXIT.failed
      end
    end
  end
  local export
  if o.github_actions and o.stdout then
    cli.usage_error("--github-actions writes the workflow beside cdp.lua; it does not go with --stdout", "init")
  end
  if o.github_actions then
    local ok, mod = pcall(require, "cdp.commands.export")
    if not ok then
      cli.fail("--github-actions needs `cdp export github-actions`, which this cdp does not have yet; "
        .. "cdp init without it writes the pipeline")
    end
    export = mod
  end
  local g, err = command.generate(dir)
  if not g then
    io.stderr:write("cdp init: ", err, "\n")
    return cli.EXIT.failed
  end
  check_loads(g.text, target)
  if o.stdout then
    io.stdout:write(g.text)
    return cli.EXIT.ok
  end
  local ok, werr = fs.write(target, g.text)
  if not ok then
    io.stderr:write("cdp init: cannot write ", target, ": ", tostring(werr), "\n")
    return cli.EXIT.failed
  end
  run.cdp_dir(require("cdp.git").discover(dir):workdir():gsub("/+$", ""))
  local r, tags = g.result, g.tags
  local lines = {}
  local function say(fmt, ...) lines[#lines + 1] = fmt:format(...) end
  say("cdp init: wrote %s for %d crate%s", target, #g.facts.names,
    #g.facts.names == 1 and "" or "s")
  say("  tags:   %s (%s)", tags.template, tags.found > 0 and ("found on the last release of %d of %d crates")
    :format(tags.found, #g.facts.names) or "no release tags yet")
  say("  policy: %s", r.preset and ("preset %s, from %s%s"):format(r.preset, r.files[1],
    r.preset_missing and (" (not in this cdp yet: the conventional policy stands in)") or "")
    or "Conventional Commits (cdp.policies.conventional)")
  if #r.carried > 0 then
    say("  carried over:")
    for _, c in ipairs(r.carried) do say("    %s", carried_text(c)) end
  end
  if #r.dropped > 0 then
    say("  not carried over (no counterpart in cdp):")
    for _, d in ipairs(r.dropped) do say("    %s", dropped_text(d)) end
  end
  say("next:")
  say("  cdp plan                 the Release Plan under this pipeline")
  say("  cdp run --to package     a release up to the .crate files, nothing pushed")
  say("  git add %s .cdp/.gitignore%s && git commit -m 'chore: release with cdp'", target,
    export and " .github/workflows" or "")
  io.stdout:write(table.concat(lines, "\n"), "\n")
  if export then
    io.stdout:flush()
    return export.run { "github-actions", target }
  end
  return cli.EXIT.ok
end

return command
