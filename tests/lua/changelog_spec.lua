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
    for _, ids in pairs(theirs) do table.sort(ids) end
    table.sort(breaking)
    theirs["Breaking changes"] = breaking
    assert.are.same(theirs, ours)
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

  it("starts a new file with the template's header", function()
    local out = changelog.insert(nil, "## [0.1.0]\n\n- x\n", "0.1.0")
    assert.matches("^# Changelog\n", out)
    assert.matches("\n## %[0%.1%.0%]\n\n%- x\n$", out)
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
end)
