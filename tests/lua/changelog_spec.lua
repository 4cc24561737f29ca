local support = require "tests.lua.support"
local changelog = require "cdp.changelog"
local json = require "cdp.json"

local q = support.quote

-- Commits of a repository, newest first, as the Package stage hands them over.
local function history(dir)
  local out = support.git(dir, "log", "--format=%H%x00%B%x01")
  local list = {}
  for id, message in out:gmatch("(%x+)%z(.-)\1") do
    message = message:gsub("^%s+", ""):gsub("%s+$", "")
    list[#list + 1] = { id = id, message = message, summary = message:match("^[^\n]*") }
  end
  return list
end

local function fixture()
  local dir = support.git_init()
  local n = 0
  local function c(msg)
    n = n + 1
    support.commit(dir, msg, { ["f" .. n] = tostring(n) })
  end
  c("feat(api): add a greeting")
  c("fix: handle empty names")
  c("perf(core): cache the parsed manifest")
  c("refactor: split the planner")
  c("docs: describe tags")
  c("chore: bump CI image")
  c("update the readme by hand")
  c("feat(cli)!: rename the entry point")
  c("fix(api): stop trimming names\n\nThe old behaviour lost data.\n\nBREAKING CHANGE: names are no longer trimmed")
  c("test: cover the planner")
  c("feat: add --json")
  return dir
end

local function ids_by_title(sections)
  local out = {}
  for _, s in ipairs(sections) do
    local ids = {}
    for _, e in ipairs(s.entries) do ids[#ids + 1] = e.id end
    table.sort(ids)
    out[s.title] = ids
  end
  return out
end

describe("cdp.changelog", function()
  it("groups a history the way git-cliff does, with breaking changes first", function()
    local dir = fixture()
    local sections = changelog.sections(history(dir))
    assert.are.equal("Breaking changes", sections[1].title)
    local ours = ids_by_title(sections)

    local config = support.tmpdir() .. "/cliff.toml"
    support.write(config, [=[
[changelog]
body = ""
[git]
conventional_commits = true
filter_unconventional = false
filter_commits = false
commit_parsers = [
  { message = "^feat(\\(.*\\))?!?:", group = "Added" },
  { message = "^fix(\\(.*\\))?!?:", group = "Fixed" },
  { message = "^perf(\\(.*\\))?!?:", group = "Performance" },
  { message = "^refactor(\\(.*\\))?!?:", group = "Changed" },
  { message = "^docs(\\(.*\\))?!?:", group = "Documentation" },
  { message = "^(chore|ci|test|style|build)(\\(.*\\))?!?:", skip = true },
  { message = ".*", group = "Other" },
]
]=])
    local cliff = os.getenv("CDP_SOURCE_DIR") and (os.getenv("CDP_SOURCE_DIR") .. "/node_modules/.bin/git-cliff")
      or "node_modules/.bin/git-cliff"
    local out = support.sh(("cd %s && %s --config %s --unreleased --context 2>/dev/null"):format(q(dir), q(cliff), q(config)))
    local releases = assert(json.decode(out))
    local theirs, breaking = {}, {}
    for _, c in ipairs(releases[1].commits) do
      theirs[c.group] = theirs[c.group] or {}
      table.insert(theirs[c.group], c.id)
      if c.breaking then breaking[#breaking + 1] = c.id end
    end
    -- git-cliff lists a breaking change in its type's group and marks it; cdp lists it
    -- once, under its own heading.
    local is_breaking = {}
    for _, id in ipairs(breaking) do is_breaking[id] = true end
    for group, ids in pairs(theirs) do
      local kept = {}
      for _, id in ipairs(ids) do
        if not is_breaking[id] then kept[#kept + 1] = id end
      end
      table.sort(kept)
      theirs[group] = #kept > 0 and kept or nil
    end
    table.sort(breaking)
    theirs["Breaking changes"] = breaking
    assert.are.same(theirs, ours)
    local text = changelog.render { crate = "demo", version = "0.2.0", commits = history(dir) }
    local _, n = text:gsub("rename the entry point", "")
    assert.are.equal(1, n, text)
  end)

  it("renders Keep a Changelog with commit and compare links when the remote is known", function()
    local dir = fixture()
    local text = changelog.render {
      crate = "demo", version = "0.2.0", tag = "demo-v0.2.0", previous_tag = "demo-v0.1.0",
      date = "2026-11-24", commits = history(dir), remote = "git@github.com:demo-org/demo.git",
    }
    assert.matches("^## %[0%.2%.0%]%(https://github%.com/demo%-org/demo/compare/demo%-v0%.1%.0%.%.%.demo%-v0%.2%.0%) %- 2026%-11%-24\n", text)
    assert.matches("\n%- %*%*cli:%*%* rename the entry point %(%[%x+%]%(https://github%.com/demo%-org/demo/commit/%x+%)%)", text)
    assert.is_true(text:find("### Breaking changes", 1, true) < text:find("### Added", 1, true))
    assert.matches("names are no longer trimmed", text, 1, true)
    assert.is_nil(text:find("bump CI image", 1, true))
    assert.matches("### Other\n\n- update the readme by hand", text, 1, true)
    local plain = changelog.render { crate = "demo", version = "0.2.0", commits = history(dir) }
    assert.matches("^## %[0%.2%.0%]\n", plain)
  end)

  it("keeps every byte written by hand and puts the new release above the earlier ones", function()
    local by_hand = "# Changelog of demo\r\n\r\nHand-written intro with *emphasis*   \n\n"
      .. "## [Unreleased]\n\n- something planned\n\n"
      .. "## [0.1.0] - 2026-01-01\n\n### Added\n\n- first release, written by hand\n"
    local section = "## [0.2.0] - 2026-11-24\n\n### Fixed\n\n- a fix (abc1234)\n\n"
    local out = changelog.insert(by_hand, section, "0.2.0")
    local at = assert(out:find(section, 1, true))
    assert.are.equal(by_hand:sub(1, at - 1), out:sub(1, at - 1))
    assert.are.equal(by_hand:sub(at), out:sub(at + #section))
    assert.is_true(at > by_hand:find("[Unreleased]", 1, true))
    -- The same version again replaces its own section only.
    assert.are.equal(out, changelog.insert(out, section, "0.2.0"))
    local again = changelog.insert(out, section:gsub("a fix", "the fix"), "0.2.0")
    assert.are.equal(out:gsub("a fix", "the fix"), again)
  end)

  it("starts a new file with the template's header and an Unreleased heading to write notes under", function()
    local out = changelog.insert(nil, "## [0.1.0]\n\n- x\n", "0.1.0")
    assert.matches("^# Changelog\n", out)
    assert.matches("\n## %[Unreleased%]\n\n## %[0%.1%.0%]\n\n%- x\n$", out)
  end)

  it("folds pre-release sections into the graduated release", function()
    local text = changelog.insert(nil, "## [0.3.1] - 2026-01-01\n\n- old\n\n", "0.3.1")
    text = changelog.insert(text, "## [0.4.0-dev.1] - 2026-02-01\n\n- one\n\n", "0.4.0-dev.1")
    text = changelog.insert(text, "## [0.4.0-dev.2] - 2026-03-01\n\n- two\n\n", "0.4.0-dev.2")
    local function pos(v) return assert(text:find("## [" .. v .. "]", 1, true)) end
    assert.is_true(pos("0.4.0-dev.2") < pos("0.4.0-dev.1") and pos("0.4.0-dev.1") < pos("0.3.1"))
    local graduated = changelog.insert(text, "## [0.4.0] - 2026-04-01\n\n- one\n- two\n\n", "0.4.0", { fold = true })
    assert.is_nil(graduated:find("dev.1", 1, true))
    assert.is_nil(graduated:find("dev.2", 1, true))
    assert.matches("## [0.4.0] - 2026-04-01\n\n- one\n- two\n\n## [0.3.1]", graduated, 1, true)
  end)

  it("extracts one release's notes for a GitHub release", function()
    local text = changelog.insert(nil, "## [0.1.0]\n\n- x\n\n", "0.1.0")
    text = changelog.insert(text, "## [0.2.0]\n\n### Fixed\n\n- y\n\n", "0.2.0")
    assert.are.equal("### Fixed\n\n- y", changelog.extract(text, "0.2.0"))
    assert.are.equal("- x", changelog.extract(text, "0.1.0"))
    assert.is_nil(changelog.extract(text, "9.9.9"))
  end)

  it("leaves out a commit and its revert, and keeps a lone revert", function()
    local dir = support.git_init()
    support.commit(dir, "feat: try a thing", { a = "1" })
    local tried = support.git(dir, "rev-parse", "HEAD")
    support.git(dir, "revert", "--no-edit", tried)
    support.commit(dir, "fix: keep this", { b = "1" })
    support.commit(dir, "revert: drop the old cache\n\nRefs: 0123456", { c = "1" })
    local titles = ids_by_title(changelog.sections(history(dir)))
    assert.is_nil(titles.Added)
    assert.are.equal(1, #titles.Fixed)
    assert.are.equal(1, #titles.Reverted)
  end)

  it("takes a team's own template", function()
    local template = {
      header = "CHANGES\n\n",
      render = function(r)
        local n = 0
        for _, s in ipairs(r.sections) do n = n + #s.entries end
        return ("%s %s: %d entries\n"):format(r.crate, r.version, n)
      end,
    }
    local text = changelog.render({ crate = "demo", version = "1.0.0",
      commits = { { id = "abc", message = "feat: x" }, { id = "def", message = "fix: y" } } }, template)
    assert.are.equal("demo 1.0.0: 2 entries\n", text)
    assert.are.equal("CHANGES\n\n" .. text, changelog.insert(nil, text, "1.0.0", { template = template }))
  end)

  -- Changelogs as teams write them by hand: the newest heading sets the style.
  local A, B = ("a"):rep(40), ("b"):rep(40)
  local function release(version, extra)
    local r = { crate = "tool", version = version, date = "2026-03-04",
      commits = { { id = A, message = "feat: a new flag" }, { id = B, message = "fix: a new fix" } } }
    for k, v in pairs(extra or {}) do r[k] = v end
    return r
  end

  it("writes a #-style file's way: # headings, ## groups, no date when it has none", function()
    local old = "# Changelog of tool\n\nBy hand.\n\n# 0.5.6\n\n## Fixed\n\n- an old fix\n\n# 0.5.5\n\n- older\n"
    local r = changelog.update(old, release("0.5.7"))
    assert.are.equal("# Changelog of tool\n\nBy hand.\n\n"
      .. "# 0.5.7\n\n## Added\n\n- a new flag (aaaaaaa)\n\n## Fixed\n\n- a new fix (bbbbbbb)\n\n"
      .. "# 0.5.6\n\n## Fixed\n\n- an old fix\n\n# 0.5.5\n\n- older\n", r.text)
    assert.are.equal("## Added\n\n- a new flag (aaaaaaa)\n\n## Fixed\n\n- a new fix (bbbbbbb)", r.notes)
    assert.are.equal("## Fixed\n\n- an old fix", changelog.extract(r.text, "0.5.6"))
  end)

  it("follows brackets, a leading v, the date's punctuation and links, or their absence", function()
    local remote = "https://github.com/o/tool.git"
    local function heading(old)
      local r = changelog.update(old, release("0.2.0", { remote = remote, tag = "v0.2.0", previous_tag = "v0.1.0" }))
      return ("\n" .. r.text):match("\n(#+ [^\n]*0%.2%.0[^\n]*)\n")
    end
    assert.are.equal("## [0.2.0] - 2026-03-04", heading("# Changelog\n\n## [0.1.0] - 2026-01-01\n\n- x\n"))
    assert.are.equal("## [0.2.0](https://github.com/o/tool/compare/v0.1.0...v0.2.0) - 2026-03-04",
      heading("# Changelog\n\n## [0.1.0](https://github.com/o/tool/compare/v0.0.1...v0.1.0) - 2026-01-01\n\n- x\n"))
    assert.are.equal("## v0.2.0 (2026-03-04)", heading("## v0.1.0 (2025-12-31)\n\n- x\n"))
    assert.are.equal("## [v0.2.0] — 2026-03-04", heading("## [v0.1.0] — 2025-12-31\n\n- x\n"))
    assert.are.equal("## [0.2.0] - 2026-03-04", heading("## [0.1.0] - 2025-12-31 [YANKED]\n\n- x\n"))
    assert.are.equal("## 0.2.0 [2026-03-04]", heading("## 0.1.0 [2025-12-31]\n\n- x\n"))
    assert.are.equal("### Version 0.2.0", heading("## Releases\n\n### Version 0.1.0\n\n- x\n"))
    -- A new file: Keep a Changelog, with the compare link.
    assert.are.equal("## [0.2.0](https://github.com/o/tool/compare/v0.1.0...v0.2.0) - 2026-03-04", heading(nil))
  end)

  it("reads no heading in a code block, and no subheading with a version, as a release", function()
    local old = "# Changelog\n\n```sh\n# 9.9.9 is not a release\n```\n\n"
      .. "## [1.0.0] - 2026-01-01\n\n### Upgrading from 0.9.0\n\n- steps\n\n## [0.9.0] - 2025-01-01\n\n- old\n"
    assert.are.equal("- old", changelog.extract(old, "0.9.0"))
    assert.are.equal("### Upgrading from 0.9.0\n\n- steps", changelog.extract(old, "1.0.0"))
    assert.is_nil(changelog.extract(old, "9.9.9"))
    local r = changelog.update(old, release("1.1.0"))
    local at = assert(r.text:find("## [1.1.0] - 2026-03-04\n", 1, true))
    assert.are.equal(old, r.text:sub(1, at - 1) .. r.text:sub(at + #r.section))
    assert.is_true(at > old:find("```\n\n", 1, true))
    assert.is_true(at < old:find("## [1.0.0]", 1, true) + 1)
  end)

  it("moves the notes under [Unreleased] into the release, merged into its groups", function()
    local old = "# Changelog\n\n## [Unreleased]\n\nA release of the new parser.\n\n"
      .. "### Fixed\n\n- a fix written by hand\n\n### Removed\n\n- the old flag\n\n"
      .. "## [0.1.0] - 2026-01-01\n\n- first\n"
    local r = changelog.update(old, release("0.2.0"))
    assert.are.equal("# Changelog\n\n## [Unreleased]\n\n"
      .. "## [0.2.0] - 2026-03-04\n\nA release of the new parser.\n\n"
      .. "### Added\n\n- a new flag (aaaaaaa)\n\n"
      .. "### Fixed\n\n- a fix written by hand\n- a new fix (bbbbbbb)\n\n"
      .. "### Removed\n\n- the old flag\n\n"
      .. "## [0.1.0] - 2026-01-01\n\n- first\n", r.text)
    assert.matches("^A release of the new parser%.\n", r.notes)
    assert.matches("- a fix written by hand", r.notes, 1, true)
    -- The next release finds the Unreleased heading empty: nothing is taken twice.
    local again = changelog.update(r.text, release("0.2.1"))
    assert.are.equal(1, select(2, again.text:gsub("a fix written by hand", "")))
    -- cargo-release's markers stay where they are; an empty Unreleased block is left alone.
    local marked = "<!-- next-header -->\n## [Unreleased] - ReleaseDate\n\n<!-- next-url -->\n\n## [0.1.0] - 2026-01-01\n\n- x\n"
    local m = changelog.update(marked, release("0.2.0"))
    assert.are.equal(marked:gsub("## %[0%.1%.0%]", function() return m.section .. "## [0.1.0]" end), m.text)
  end)

  it("gives each crate its own headings in a changelog they share", function()
    local crates = { "demo-cli", "demo-core" }
    local function add(text, crate, version)
      return changelog.update(text, { crate = crate, version = version, date = "2026-03-04",
        commits = { { id = A, message = "fix: in " .. crate } } }, { crate = crate, shared = true, crates = crates }).text
    end
    local text = add(nil, "demo-core", "0.2.0")
    text = add(text, "demo-cli", "0.2.0")
    assert.matches("## %[demo%-cli 0%.2%.0%] %- 2026%-03%-04\n\n### Fixed\n\n%- in demo%-cli", text)
    assert.matches("## %[demo%-core 0%.2%.0%] %- 2026%-03%-04\n\n### Fixed\n\n%- in demo%-core", text)
    assert.is_true(text:find("[demo-cli 0.2.0]", 1, true) < text:find("[demo-core 0.2.0]", 1, true))
    assert.are.equal("### Fixed\n\n- in demo-core (aaaaaaa)", changelog.extract(text, "0.2.0", "demo-core", true))
    assert.are.equal("### Fixed\n\n- in demo-cli (aaaaaaa)", changelog.extract(text, "0.2.0", "demo-cli", true))
    -- Writing one crate's section again replaces its own only.
    assert.are.equal(text, add(text, "demo-core", "0.2.0"))
    -- A hand-written shared file's style, with the crate's name where it stands.
    local by_hand = "# Changes\n\n## demo-core v0.1.0 (2025-01-01)\n\n- x\n"
    local styled = changelog.update(by_hand, { crate = "demo-cli", version = "0.3.0", date = "2026-03-04" },
      { crate = "demo-cli", shared = true, crates = crates })
    assert.matches("^## demo%-cli v0%.3%.0 %(2026%-03%-04%)\n", styled.section)
  end)

  it("finds each crate's changelog from changelog_path", function()
    local core = { name = "demo-core", dir = "crates/demo-core" }
    local root = { name = "demo", dir = "" }
    assert.are.equal("crates/demo-core/CHANGELOG.md", changelog.path(nil, core))
    assert.are.equal("CHANGELOG.md", changelog.path(nil, root))
    assert.are.equal("CHANGELOG.md", changelog.path("CHANGELOG.md", core))
    assert.are.equal("CHANGELOG.md", changelog.path("./CHANGELOG.md", core))
    assert.are.equal("docs/x/CHANGES.md", changelog.path("./docs//./x/CHANGES.md", core))
    assert.are.equal("docs/changes/demo-core.md", changelog.path("docs/changes/{crate}.md", core))
    local spec = { ["demo-core"] = "docs/CORE.md", demo = false, ["*"] = "{dir}/CHANGES.md" }
    assert.are.equal("docs/CORE.md", changelog.path(spec, core))
    assert.is_false(changelog.path(spec, root))
    assert.are.equal("crates/x/CHANGES.md", changelog.path(spec, { name = "x", dir = "crates/x" }))
    assert.are.same({ ["CHANGELOG.md"] = true }, changelog.shared_paths("CHANGELOG.md", { core, root }))
    assert.are.same({}, changelog.shared_paths(nil, { core, root }))
    assert.has_error(function() changelog.path({ ["demo-core"] = 3 }, core) end,
      "changelog_path for demo-core must be a path or false, not 3")
  end)
end)

-- A crate's whole history from one walk: every release its tags name, the commits
-- each release shipped first, what came since under Unreleased.
describe("cdp.changelog.history", function()
  local attribution = require "tests.fixtures.attribution"
  local git = require "cdp.git"

  local function ids_in(text)
    local out = {}
    for id in text:gmatch("%((%x%x%x%x%x%x%x)%)") do
      out[#out + 1] = id
    end
    return out
  end

  it("gives each release the commits it shipped first, and finds the tags' convention", function()
    local h = attribution.maintenance()
    local G = function(...) return support.git(h.dir, ...) end
    G("tag", "-a", "a@1.1.0", "-m", "x", h.at.feat)       -- on main, before the merge
    G("tag", "a@1.0.1", h.at.revert)                       -- on 1.0.x
    G("tag", "-a", "b-v9.9.9", "-m", "another crate's", h.at.merge)
    local repo = assert(git.open(h.dir))
    local texts = assert(changelog.history(repo, { { name = "a", dir = "crates/a" } },
      { from = assert(repo:resolve("HEAD")), template = "cdp.templates.keepachangelog" }))
    local text = texts.a
    -- its convention is {crate}@{version} now (its newest release), and, as the plan
    -- counts them, the a-v1.0.0 it was released with before is a release of it too;
    -- another crate's tag is not
    local headings = {}
    for v in text:gmatch("\n## %[([^%]]+)%]") do
      headings[#headings + 1] = v
    end
    assert.are.same({ "Unreleased", "1.1.0", "1.0.1", "1.0.0" }, headings)
    local function section(v)
      return text:match("\n## %[" .. v:gsub("%.", "%%.") .. "%][^\n]*\n(.-)\n## ") or text:match("\n## %[" .. v:gsub("%.", "%%.") .. "%][^\n]*\n(.*)$")
    end
    local short = function(name) return h.at[name]:sub(1, 7) end
    assert.are.same({ short("after") }, ids_in(section("Unreleased")))
    assert.are.same({ short("feat"), short("fix") }, ids_in(section("1.1.0")))
    -- 1.0.1, tagged on the maintenance branch: the merge took a from main, so, as in
    -- git log -- crates/a, nothing of the branch is a's (its pick is fix's twin)
    assert.are.same({}, ids_in(section("1.0.1")))
    assert.is_nil(text:find("## [9.9.9]", 1, true))
  end)

  -- { {version, {short ids}} } of TEXT's sections, in order
  local function releases_in(text)
    local out = {}
    for line in text:gmatch("[^\n]*") do
      local version = line:match("^## %[([^%]]+)%]")
      if version then
        out[#out + 1] = { version, {} }
      elseif out[#out] then
        for _, id in ipairs(ids_in(line)) do
          table.insert(out[#out][2], id)
        end
      end
    end
    return out
  end

  local function expected(h, crate)
    local out = {}
    for i, r in ipairs(h.expect[crate]) do
      local ids = {}
      for k, name in ipairs(r[2]) do
        ids[k] = h.at[name]:sub(1, 7)
      end
      out[i] = { r[1], ids }
    end
    return out
  end

  it("finds a member's v{version} tags as the plan does, and its siblings' own", function()
    local h = attribution.shared_tags()
    local repo = assert(git.open(h.dir))
    local ws = assert(require("cdp.workspace").load(h.dir, { repo_root = h.dir }))
    local list = {}
    for i, name in ipairs(h.names) do
      local m = ws.by_name[name]
      list[i] = { name = name, dir = m.dir, version = m.version, publish = m.publish,
        inherited_version = m.inherited_version }
    end
    local texts = assert(changelog.history(repo, list, { from = assert(repo:resolve("HEAD")), members = ws.members }))
    -- v0.1.0 is older than crates/edit: no release of it, as in the plan
    assert.are.same(expected(h, "edit"), releases_in(texts.edit))
    assert.are.same(expected(h, "toml"), releases_in(texts.toml))
    local p = assert(require("cdp.plan").make { dir = h.dir })
    assert.are.equal("v0.3.0", p.by_name.edit.last_tag)
  end)

  it("is what `cdp changelog --full` prints for such a member", function()
    local h = attribution.shared_tags()
    local out = support.sh(("cd %s && %s changelog --full edit toml"):format(support.quote(h.dir),
      support.quote(require("cdp.fs").realpath(support.cdp()))))
    local edit, toml = out:match("^==> edit: every release <==\n(.-)\n==> toml: every release <==\n(.*)$")
    assert.are.same(expected(h, "edit"), releases_in(edit))
    assert.are.same(expected(h, "toml"), releases_in(toml))
  end)

  it("gives Package a graduating member's last stable v{version} release", function()
    local h = attribution.shared_tags()
    local pre = '[package]\nname = "edit"\nversion = "0.4.0-alpha.1"\nedition = "2021"\n'
    support.commit(h.dir, "chore: release edit 0.4.0-alpha.1", { ["crates/edit/Cargo.toml"] = pre })
    support.git(h.dir, "tag", "-a", "v0.4.0-alpha.1", "-m", "edit 0.4.0-alpha.1")
    support.commit(h.dir, "fix(edit): a panic", { ["crates/edit/src/lib.rs"] = "// fixed\n" })
    local last = support.git(h.dir, "rev-parse", "HEAD")
    local repo = assert(git.open(h.dir))
    local cl = require("cdp.stages.package").changelog(repo, { name = "edit", dir = "crates/edit",
      current = "0.4.0-alpha.1", next = "0.4.0", tag_template = "v{version}", tag = "v0.4.0" },
      { root = h.dir, from = "HEAD", date = "2026-04-01", path = false, remote = "https://github.com/o/edit" })
    repo:close()
    -- everything since v0.3.0, the last stable release: the pre-release's and after
    local linked = {}
    for id in cl.section:gmatch("%[(%x%x%x%x%x%x%x)%]%(") do
      linked[#linked + 1] = id
    end
    assert.are.same({ h.at.after:sub(1, 7), last:sub(1, 7) }, linked) -- Added, then Fixed
    assert.matches("compare/v0.3.0...v0.4.0", cl.section, 1, true)
  end)

  it("keeps to a template it is given, and dates releases by their commits", function()
    local h = attribution.maintenance()
    support.git(h.dir, "tag", "a@1.3.0", h.at.feat)
    local repo = assert(git.open(h.dir))
    local texts = assert(changelog.history(repo, { { name = "a", dir = "crates/a", template = "{crate}-v{version}" } },
      { from = assert(repo:resolve("HEAD")) }))
    local when = os.date("!%Y-%m-%d", tonumber(support.git(h.dir, "log", "-1", "--format=%ct", h.release)))
    assert.truthy(texts.a:find("## [1.0.0] - " .. when, 1, true), texts.a)
    assert.is_nil(texts.a:find("1.3.0", 1, true))
  end)

  -- A release is dated by its tagged commit's committer time, in UTC, whether that
  -- commit is one of the crate's own (read by the walk) or another crate's (read
  -- on its own): a release tagged where only a sibling changed ships nothing new.
  it("dates a release by the committer time of its tagged commit, the crate's or not", function()
    local dir = support.git_init()
    local function commit(message, path, author, committer)
      support.write(dir .. "/" .. path, message .. "\n")
      support.git(dir, "add", "-A")
      support.sh(("cd %s && GIT_AUTHOR_DATE=%s GIT_COMMITTER_DATE=%s git commit -q -m %s"):format(q(dir),
        q(author), q(committer), q(message)))
      return support.git(dir, "rev-parse", "HEAD")
    end
    -- committed at 01:00 +05:00: 20:00 UTC the day before; written a month earlier
    local own = commit("feat(a): start", "crates/a/src/lib.rs", "2023-12-01T12:00:00+00:00",
      "2024-01-05T01:00:00+05:00")
    local other = commit("feat(b): begin", "crates/b/src/lib.rs", "2024-01-20T12:00:00+00:00",
      "2024-02-10T12:00:00+00:00")
    commit("fix(a): after", "crates/a/src/fix.rs", "2024-03-01T12:00:00+00:00", "2024-03-02T12:00:00+00:00")
    support.git(dir, "tag", "a-v0.1.0", own)
    support.git(dir, "tag", "-a", "a-v0.1.1", "-m", "a 0.1.1", other)
    local repo = assert(git.open(dir))
    local crates = { { name = "a", dir = "crates/a", version = "0.1.1" }, { name = "b", dir = "crates/b", version = "0.1.0" } }
    local texts = assert(changelog.history(repo, { crates[1] }, { from = assert(repo:resolve("HEAD")), members = crates }))
    repo:close()
    assert.are.same({ { "Unreleased", { support.git(dir, "rev-parse", "--short=7", "HEAD") } },
      { "0.1.1", {} }, { "0.1.0", { own:sub(1, 7) } } }, releases_in(texts.a))
    assert.truthy(texts.a:find("\n## [0.1.1] - 2024-02-10\n", 1, true), texts.a)
    assert.truthy(texts.a:find("\n## [0.1.0] - 2024-01-04\n", 1, true), texts.a)
  end)
end)
