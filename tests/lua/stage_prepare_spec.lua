-- Activate's triggers and fork, Package's README snippets, and `cdp changelog`, which
-- must print exactly what Package writes.
local support = require "tests.lua.support"
local json = require "cdp.json"
local fs = require "cdp.fs"

local activate = require "cdp.stages.activate"
local package = require "cdp.stages.package"

local q = support.quote
local cdp = support.cdp()

local function demo()
  local dir = support.tmpdir()
  support.sh("bash tests/fixtures/workspace_demo.sh " .. q(dir))
  return dir .. "/work", dir
end

-- The trigger activate.trigger reads from an environment (run in a child cdp, since
-- this process cannot change its own environment).
local function trigger_with(env)
  local out = support.sh(("env -u GITHUB_ACTIONS -u GITLAB_CI %s %s -e %s"):format(env, q(cdp),
    q('print(require("cdp.json").encode(require("cdp.stages.activate").trigger({ settings = {} })))')))
  return assert(json.decode(out))
end

describe("Activate", function()
  it("takes its trigger from GitHub Actions, GitLab CI or the command line", function()
    local gh = trigger_with("GITHUB_ACTIONS=true GITHUB_SHA=abc123 GITHUB_REF=refs/heads/main "
      .. "GITHUB_EVENT_NAME=push GITHUB_ACTOR=octocat")
    assert.are.same({ event = "push", ref = "refs/heads/main", rev = "abc123", actor = "octocat",
      source = "GitHub Actions" }, gh)
    local tag = trigger_with("GITHUB_ACTIONS=true GITHUB_SHA=abc123 GITHUB_REF=refs/tags/v1.0.0 GITHUB_EVENT_NAME=push")
    assert.are.equal("tag", tag.event)
    local gl = trigger_with("GITLAB_CI=true CI_COMMIT_SHA=def456 CI_COMMIT_BRANCH=main "
      .. "CI_PIPELINE_SOURCE=push GITLAB_USER_LOGIN=tanuki")
    assert.are.same({ event = "push", ref = "refs/heads/main", rev = "def456", actor = "tanuki",
      source = "GitLab CI" }, gl)
    local manual = trigger_with("")
    assert.are.equal("manual", manual.event)
    assert.are.equal("HEAD", manual.rev)
    assert.are.equal("command line", manual.source)
  end)

  it("makes the Release Fork at the trigger commit, objects hard-linked, on the release branch", function()
    local work = demo()
    support.git(work, "gc", "-q") -- packed objects: the pack is what a local clone links
    local head = support.git(work, "rev-parse", "HEAD~1")
    local run_dir = support.tmpdir()
    local out = activate.run({ run = "r1", run_dir = run_dir, root = work,
      settings = { ref = "HEAD~1" }, log = function() end })
    assert.are.equal(head, out.trigger.commit)
    assert.are.equal(head, out.fork.commit)
    assert.are.equal("cdp/release/main", out.fork.branch)
    assert.are.equal("main", out.fork.base)
    assert.are.equal(head, support.git(out.fork.path, "rev-parse", "HEAD"))
    assert.are.equal("cdp/release/main", support.git(out.fork.path, "rev-parse", "--abbrev-ref", "HEAD"))
    assert.are.equal(support.git(work, "remote", "get-url", "origin"),
      support.git(out.fork.path, "remote", "get-url", "origin"))
    local pack = fs.list(work .. "/.git/objects/pack")
    local idx
    for _, name in ipairs(pack) do
      if name:match("%.pack$") then idx = name end
    end
    local a = fs.stat(work .. "/.git/objects/pack/" .. idx)
    local b = fs.stat(out.fork.path .. "/.git/objects/pack/" .. idx)
    assert.are.equal(a.ino, b.ino)
    -- The user's work tree is where it was.
    assert.are.equal(support.git(work, "rev-parse", "main"), support.git(work, "rev-parse", "HEAD"))
    assert.are.equal("", support.git(work, "status", "--porcelain"))
    assert.is_true(activate.verify({ root = work, settings = { ref = "HEAD~1" } }, out))
    support.commit(work, "fix(core): one more", { ["crates/demo-core/extra.rs"] = "" })
    assert.is_false(activate.verify({ root = work, settings = { ref = "HEAD" } }, out))
  end)

  it("keys on the commit its trigger names, so a new commit is a new fork", function()
    local work = demo()
    local ctx = { root = work, settings = {} }
    local before = activate.key_facts(ctx)
    assert.are.same({ commit = support.git(work, "rev-parse", "HEAD") }, before)
    local run = require "cdp.run"
    local stage = require("cdp.pipeline").new({ stages = { "activate" } }, "spec").stages[1]
    local key1 = run.stage_key(stage, {}, {}, nil, nil, nil, run.key_facts(stage, work, {}))
    support.commit(work, "fix(core): one more", { ["crates/demo-core/extra.rs"] = "" })
    local key2 = run.stage_key(stage, {}, {}, nil, nil, nil, run.key_facts(stage, work, {}))
    assert.are_not.equal(key1, key2)
    assert.are.equal(key2, run.stage_key(stage, {}, {}, nil, nil, nil, run.key_facts(stage, work, {})))
  end)

  it("names the release branch after the base, and takes the origin's tags the clone never fetched", function()
    local work, dir = demo()
    -- A release made elsewhere: its tag is on the origin only (a squash-merged release
    -- branch that was deleted leaves the clone no way to follow it).
    local other = dir .. "/other"
    support.sh(("git clone -q %s %s"):format(q(dir .. "/origin.git"), q(other)))
    support.commit(other, "chore(release): elsewhere", { ["notes.txt"] = "x" })
    support.git(other, "tag", "-a", "demo-util-v1.0.1", "-m", "demo-util 1.0.1")
    support.git(other, "push", "-q", "origin", "demo-util-v1.0.1")
    local lines = {}
    local out = activate.run({ run = "r2", run_dir = support.tmpdir(), root = work,
      settings = { release_branch = "releases/{base}-next", base_branch = "develop" },
      log = function(l) lines[#lines + 1] = l end })
    assert.are.equal("releases/develop-next", out.fork.branch)
    assert.are.equal("develop", out.fork.base)
    assert.are.equal(support.git(other, "rev-parse", "HEAD"),
      support.git(out.fork.path, "rev-parse", "demo-util-v1.0.1^{commit}"))
    assert.matches("1 tag from " .. dir .. "/origin.git", table.concat(lines, "\n"), 1, true)
    assert.are.equal("", support.git(work, "tag", "-l", "demo-util-v1.0.1"))

    local ok, err = pcall(activate.run, { run = "r3", run_dir = support.tmpdir(), root = work,
      settings = { release_branch = "release {base}" }, log = function() end })
    assert.is_false(ok)
    assert.matches("release_branch 'release main' (for base main) is not a valid branch name", err, 1, true)
  end)
end)

describe("Package README snippets", function()
  it("follows the new versions with the precision written", function()
    local text = table.concat({
      '```toml',
      'demo-core = "0.1"',
      'demo-core = { version = "0.1.0", features = ["x"] }',
      'demo-core-extra = "0.1"',
      'other = "0.1"',
      'demo-core = "0.9"',
      '```', "" }, "\n")
    local out, n = package.readme_snippets(text, "demo-core", "0.1.0", "0.2.0")
    assert.are.equal(2, n)
    assert.are.equal(table.concat({
      '```toml',
      'demo-core = "0.2"',
      'demo-core = { version = "0.2.0", features = ["x"] }',
      'demo-core-extra = "0.1"',
      'other = "0.1"',
      'demo-core = "0.9"',
      '```', "" }, "\n"), out)
  end)
end)

describe("cdp changelog", function()
  it("prints what Package writes, keeping a hand-edited file's text", function()
    local work = demo()
    local by_hand = "# Changes to demo-core\n\nWritten by hand.\n\n## [0.1.0] - 2026-01-01\n\n- the first release\n"
    support.commit(work, "docs(core): a changelog written by hand", { ["crates/demo-core/CHANGELOG.md"] = by_hand })
    local section = support.sh(("cd %s && %s changelog demo-core --unreleased"):format(q(work), q(cdp)))
    assert.matches("^## %[0%.1%.1%] %- %d%d%d%d%-%d%d%-%d%d\n", section)
    assert.matches("add a greeting to the core API", section, 1, true)
    assert.is_nil(section:find("rename the entry point", 1, true)) -- demo-cli's, not demo-core's
    local whole = support.sh(("cd %s && %s changelog demo-core"):format(q(work), q(cdp)))
    assert.are.equal("==> crates/demo-core/CHANGELOG.md <==\n"
      .. "# Changes to demo-core\n\nWritten by hand.\n\n" .. section .. "## [0.1.0] - 2026-01-01\n\n- the first release\n", whole)
    -- Nothing was written.
    assert.are.equal(by_hand, support.read(work .. "/crates/demo-core/CHANGELOG.md"))
    local _, code = support.sh(("cd %s && %s changelog nope"):format(q(work), q(cdp)), { may_fail = true })
    assert.are.equal(1, code)
  end)

  it("reads the committed changelog, never the work tree's file or what a link points at", function()
    local work = demo()
    support.commit(work, "docs(core): a changelog", { ["crates/demo-core/CHANGELOG.md"] = "# Committed\n" })
    support.write(work .. "/crates/demo-core/CHANGELOG.md", "# Not committed\n")
    local whole = support.sh(("cd %s && %s changelog demo-core"):format(q(work), q(cdp)))
    assert.are.equal(1, whole:find("==> crates/demo-core/CHANGELOG.md <==\n# Committed\n", 1, true), whole)
    assert.is_nil(whole:find("Not committed", 1, true))

    support.sh(("cd %s && rm crates/demo-core/CHANGELOG.md && ln -s /proc/self/environ crates/demo-core/CHANGELOG.md "
      .. "&& git add -A && git commit -qm 'docs: link'"):format(q(work)))
    local out, code = support.sh(("cd %s && SECRET_MARK=env-must-not-show %s changelog demo-core"):format(q(work), q(cdp)),
      { may_fail = true })
    assert.are_not.equal(0, code)
    assert.matches("crates/demo%-core/CHANGELOG%.md in commit %x+: .*is a symbolic link", out)
    assert.is_nil(out:find("env-must-not-show", 1, true))
  end)
end)
