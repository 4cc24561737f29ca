-- The Merge stage against a bare origin and the GitHub stand-in, which has Prism check
-- every request against GitHub's own OpenAPI description.
local support = require "tests.lua.support"
local rs = require "tests.lua.release_support"
local forge = require "cdp.forge"
local merge = require "cdp.stages.merge"

local TOKEN = "merge-spec-token-3e7a"
local peers

local function settings(extra)
  local s = { forge_api = peers.FORGE_API, forge_token = TOKEN, forge_repo = "demo-org/demo" }
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

local function pulls_for(head)
  local out = {}
  for _, p in ipairs(peers.forge_state().pulls) do
    if p.head.ref == head then out[#out + 1] = p end
  end
  return out
end

local function remote_branch(fx)
  return (support.sh(("git -C %s rev-parse --verify -q refs/heads/%s"):format(support.quote(fx.origin), fx.fork.branch),
    { may_fail = true }):gsub("%s+$", ""))
end

local function open_pulls()
  local out = {}
  for _, p in ipairs(peers.forge_state().pulls) do
    if p.state == "open" then out[#out + 1] = p end
  end
  return out
end

describe("stage merge", function()
  lazy_setup(function() peers = rs.start_peers(TOKEN) end)
  lazy_teardown(function() peers.stop() end)
  before_each(function() peers.forge_control { reset = true } end)

  it("pushes the release branch and opens a pull request with the plan and changelogs", function()
    local fx = rs.make { run = "m1" }
    local out = merge.run(fx.ctx(settings()), fx.inputs())
    assert.are.equal(fx.packaged.commit, remote_branch(fx))
    assert.are.equal("created", out.pr.action)
    assert.are.equal("cdp/release/m1", out.pr.head)
    assert.are.equal("main", out.pr.base)
    local prs = pulls_for("cdp/release/m1")
    assert.are.equal(1, #prs)
    assert.are.equal(prs[1].number, out.pr.number)
    assert.are.equal(prs[1].html_url, out.pr.url)
    assert.are.equal("chore(release): demo-cli 0.2.0, demo-core 0.1.1, demo-util 1.0.1", prs[1].title)
    assert.are.equal("main", prs[1].base.ref)
    local body = prs[1].body
    assert.matches("| crate | from | to | bump |", body, 1, true)
    assert.matches("| demo-core | 0.1.0 | 0.1.1 | patch |", body, 1, true)
    assert.matches("| demo-cli | 0.1.0 | 0.2.0 | minor |", body, 1, true)
    assert.matches("## demo-util 1.0.1\n\n### Fixed\n\n- demo-util: the release of 1.0.1", body, 1, true)
    -- only this release's section, not the previous one
    assert.is_nil(body:find("first release", 1, true))
    assert.is_true(merge.verify(fx.ctx(settings()), out, fx.inputs()))
  end)

  it("succeeds with nothing to do when the plan releases nothing", function()
    local fx = rs.make { run = "m0" }
    local inputs = fx.inputs()
    for _, c in ipairs(inputs.plan.crates) do
      c.bump, c.next = "none", c.current
    end
    local out = merge.run(fx.ctx(settings()), inputs)
    assert.are.equal("none", out.pr.action)
    assert.are.equal("", remote_branch(fx))
    assert.are.same({}, pulls_for("cdp/release/m0"))
    assert.is_true(merge.verify(fx.ctx(settings()), out, inputs))
  end)

  it("leaves an unchanged pull request alone and updates a changed one", function()
    local fx = rs.make { run = "m2" }
    local first = merge.run(fx.ctx(settings()), fx.inputs())
    local again = merge.run(fx.ctx(settings()), fx.inputs())
    assert.are.equal("unchanged", again.pr.action)
    assert.are.equal(first.pr.number, again.pr.number)
    assert.are.equal(1, #pulls_for("cdp/release/m2"))

    -- A resumed run whose Package made a new commit on top (a changelog fixed by hand).
    local notes = fx.fork.path .. "/crates/demo-core/CHANGELOG.md"
    support.write(notes, (support.read(notes):gsub("the release of 0.1.1", "the release of 0.1.1, now with notes")))
    fx.packaged.commit = support.commit(fx.fork.path, "docs: better notes for demo-core")
    local updated = merge.run(fx.ctx(settings()), fx.inputs())
    assert.are.equal("updated", updated.pr.action)
    assert.are.equal(first.pr.number, updated.pr.number)
    local prs = pulls_for("cdp/release/m2")
    assert.are.equal(1, #prs)
    assert.matches("now with notes", prs[1].body, 1, true)
    assert.are.equal(fx.packaged.commit, remote_branch(fx))
  end)

  it("never pushes over a release branch commit someone else pushed, and says whose it is", function()
    local fx = rs.make { run = "m3" }
    -- Someone else pushed to the release branch before cdp ever did.
    local theirs = support.commit(fx.work, "chore: somebody else's commit")
    support.git(fx.work, "push", "-q", "origin", "HEAD:refs/heads/cdp/release/m3")
    local msg = rs.raises(merge.run, fx.ctx(settings()), fx.inputs())
    assert.matches("the release branch cdp/release/m3 on " .. fx.origin .. " has commits cdp did not push:\n  "
      .. theirs:sub(1, 12) .. " chore: somebody else's commit (cdp-test <test@cdp.invalid>)", msg, 1, true)
    assert.matches("cdp never pushes over them", msg, 1, true)
    assert.are.equal(theirs, remote_branch(fx))
    assert.are.equal(0, #pulls_for("cdp/release/m3"))

    -- Once cdp has pushed, a reviewer's fixup on top stops the next run just the same.
    support.git(fx.origin, "update-ref", "-d", "refs/heads/cdp/release/m3")
    merge.run(fx.ctx(settings()), fx.inputs())
    local reviewer = fx.dir .. "/reviewer"
    support.sh(("git clone -q -b cdp/release/m3 %s %s"):format(support.quote(fx.origin), support.quote(reviewer)))
    support.sh(("cd %s && GIT_AUTHOR_NAME='Rita Reviewer' GIT_AUTHOR_EMAIL=rita@example.invalid "
      .. "git commit -q --allow-empty -m \"docs: a reviewer's fixup\""):format(support.quote(reviewer)))
    local fixup = support.git(reviewer, "rev-parse", "HEAD")
    support.git(reviewer, "push", "-q", "origin", "cdp/release/m3")
    local msg2 = rs.raises(merge.run, fx.ctx(settings()), fx.inputs())
    assert.matches(fixup:sub(1, 12) .. " docs: a reviewer's fixup (Rita Reviewer <rita@example.invalid>)", msg2, 1, true)
    assert.are.equal(fixup, remote_branch(fx))
  end)

  it("keeps one release PR per base: the branch replaced under a lease, the PR updated, cdp's stale PRs closed", function()
    local fx = rs.make { run = "m9" }
    fx.fork.branch = "cdp/release/main"
    local gh = forge.github { api = peers.FORGE_API, token = TOKEN, repo = "demo-org/demo" }
    -- A release PR from the days of one branch per run, and a person's own PR.
    local stale = assert(gh:open_or_update_pull { head = "cdp/release/20250101T000000.000Z-abcd", base = "main",
      title = "chore(release): demo-util 1.0.1", body = "This pull request releases 1 crate, prepared by cdp (run `x`)." })
    local human = assert(gh:open_or_update_pull { head = "feature/x", base = "main", title = "feat: x", body = "mine" })
    local first = merge.run(fx.ctx(settings()), fx.inputs())
    assert.are.equal("created", first.pr.action)
    assert.are.equal("created", first.pr.branch_update)
    assert.are.same({ stale.number }, first.pr.closed)
    local state = peers.forge_state()
    assert.are.equal(1, #state.comments)
    assert.are.equal(stale.number, state.comments[1].issue)
    assert.are.equal(("Superseded by #%d (%s): cdp keeps one release pull request per base branch, on `cdp/release/main`.")
      :format(first.pr.number, first.pr.url), state.comments[1].body)
    local open = open_pulls()
    assert.are.equal(2, #open)
    assert.are.same({ human.number, first.pr.number }, { open[1].number, open[2].number })
    assert.matches("^<!%-%- cdp release pull request %-%->\n", open[2].body)
    assert.are.equal(fx.packaged.commit, support.git(fx.origin, "rev-parse", "refs/cdp/pushed/cdp/release/main"))

    -- The next run starts from a newer base: its release commit does not descend from the
    -- last one. The branch cdp pushed is replaced, and the one PR updated.
    support.git(fx.fork.path, "reset", "-q", "--hard", fx.base)
    support.write(fx.fork.path .. "/NEWS.md", "a newer base\n")
    local second_commit = support.commit(fx.fork.path, "chore(release): demo-cli 0.2.0, demo-core 0.1.1, demo-util 1.0.2")
    fx.packaged.commit = second_commit
    fx.fork.commit = second_commit
    local second = merge.run(fx.ctx(settings()), fx.inputs())
    assert.are.equal("updated", second.pr.action)
    assert.are.equal("replaced (cdp pushed it last)", second.pr.branch_update)
    assert.are.equal(first.pr.number, second.pr.number)
    assert.are.same({}, second.pr.closed)
    assert.are.equal(second_commit, support.git(fx.origin, "rev-parse", "refs/heads/cdp/release/main"))
    assert.are.equal(2, #open_pulls())
    assert.are.equal(1, #pulls_for("cdp/release/main"))
  end)

  it("merges the release PR itself once its checks pass (merge_method), only while its head is ours", function()
    local fx = rs.make { run = "m10" }
    peers.forge_control { git = fx.origin }
    local main_before = support.git(fx.origin, "rev-parse", "refs/heads/main")
    -- A check still running when time is up: nothing merged, and it says which.
    peers.forge_control { status = { sha = fx.packaged.commit, context = "ci/build", state = "pending" } }
    local msg = rs.raises(merge.run, fx.ctx(settings { merge_method = "squash", merge_timeout = 0 }), fx.inputs())
    assert.matches("is not merged: its checks were still running after 0s (merge_timeout): ci/build", msg, 1, true)
    peers.forge_control { status = { sha = fx.packaged.commit, context = "ci/build", state = "failure" } }
    msg = rs.raises(merge.run, fx.ctx(settings { merge_method = "squash" }), fx.inputs())
    assert.matches("its checks failed on " .. fx.packaged.commit:sub(1, 12) .. ": ci/build (failure)", msg, 1, true)
    assert.are.equal(main_before, support.git(fx.origin, "rev-parse", "refs/heads/main"))

    peers.forge_control { status = { sha = fx.packaged.commit, context = "ci/build", state = "success" } }
    local out = merge.run(fx.ctx(settings { merge_method = "squash" }), fx.inputs())
    assert.is_true(out.pr.merged)
    local main_after = support.git(fx.origin, "rev-parse", "refs/heads/main")
    assert.are.equal(out.pr.merge_commit, main_after)
    assert.are.equal(main_before, support.git(fx.origin, "rev-parse", "refs/heads/main^"))
    assert.are.equal(("chore(release): demo-cli 0.2.0, demo-core 0.1.1, demo-util 1.0.1 (#%d)"):format(out.pr.number),
      support.git(fx.origin, "log", "-1", "--format=%s", "main"))
    -- the squash holds exactly the release commit's tree
    assert.are.equal(support.git(fx.origin, "rev-parse", fx.packaged.commit .. "^{tree}"),
      support.git(fx.origin, "rev-parse", "main^{tree}"))
    assert.is_true(merge.verify(fx.ctx(settings()), out, fx.inputs()))
  end)

  it("reports a wrong forge token as 401 without the token", function()
    local fx = rs.make { run = "m4" }
    local msg = rs.raises(merge.run, fx.ctx(settings { forge_token = "wrong-forge-token-55" }), fx.inputs())
    assert.matches("401 Bad credentials", msg, 1, true)
    assert.matches("check forge_token", msg, 1, true)
    assert.is_nil(msg:find("wrong-forge-token-55", 1, true))
    assert.is_nil(fx.log_text():find("wrong-forge-token-55", 1, true))
    assert.are.equal(0, #pulls_for("cdp/release/m4"))
  end)

  it("reports an unknown repository as 404, and a remote that names none before pushing", function()
    local fx = rs.make { run = "m5" }
    local msg = rs.raises(merge.run, fx.ctx(settings { forge_repo = "demo-org/missing" }), fx.inputs())
    assert.matches("404 Not Found", msg, 1, true)
    assert.matches("demo-org/missing", msg, 1, true)

    local fx2 = rs.make { run = "m6" }
    local msg2 = rs.raises(merge.run, fx2.ctx(settings { forge_repo = "" }), fx2.inputs())
    assert.matches("cannot tell which forge repository to use from the remote " .. fx2.origin, msg2, 1, true)
    assert.are.equal("", remote_branch(fx2))
  end)

  it("verify says no once the pull request is closed", function()
    local fx = rs.make { run = "m7" }
    local out = merge.run(fx.ctx(settings()), fx.inputs())
    local gh = forge.github { api = peers.FORGE_API, token = TOKEN, repo = "demo-org/demo" }
    assert(gh:call("PATCH", "/repos/demo-org/demo/pulls/" .. out.pr.number, { state = "closed" }))
    local ok, why = merge.verify(fx.ctx(settings()), out)
    assert.is_false(ok)
    assert.matches("pull request #" .. out.pr.number .. " for cdp/release/m7 is no longer open", why, 1, true)
  end)

  it("checks up front that the forge repository answers", function()
    local fx = rs.make { run = "m8" }
    local check = merge.health[1].check
    assert.is_true(check(fx.ctx(settings())))
    local ok, why = check(fx.ctx(settings { forge_token = "wrong-forge-token-56" }))
    assert.is_false(ok)
    assert.matches("401 Bad credentials", why, 1, true)
    ok, why = check(fx.ctx(settings { forge_repo = "" }))
    assert.is_false(ok)
    assert.matches("set forge_repo", why, 1, true)
    -- a token that may read the repository but not push to it
    ok, why = check(fx.ctx(settings { forge_token = peers.FORGE_READ_TOKEN }))
    assert.is_false(ok)
    assert.matches("the forge token may read demo-org/demo but not push to it", why, 1, true)
  end)

  it("sent nothing that breaks GitHub's OpenAPI description", function()
    assert.are.same({}, peers.jsonl("violations.jsonl"))
    local requests = peers.jsonl("requests.jsonl")
    assert.is_true(#requests > 5)
    local with_token = 0
    for _, r in ipairs(requests) do
      -- the token is sent in the Authorization header, and nowhere else
      assert.is_nil(require("cdp.json").encode(r):find(TOKEN, 1, true))
      if r.headers.authorization == "Bearer <the token>" then with_token = with_token + 1 end
    end
    assert.is_true(with_token > 5, "requests carrying the token: " .. with_token)
  end)
end)
