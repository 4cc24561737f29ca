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

describe("stage merge", function()
  lazy_setup(function() peers = rs.start_peers(TOKEN) end)
  lazy_teardown(function() peers.stop() end)

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

  it("reports a non-fast-forward release branch with the branch and the remote, and opens no pull request", function()
    local fx = rs.make { run = "m3" }
    -- Someone else pushed to the release branch meanwhile.
    support.commit(fx.work, "chore: somebody else's commit")
    support.git(fx.work, "push", "-q", "origin", "HEAD:refs/heads/cdp/release/m3")
    local theirs = remote_branch(fx)
    local msg = rs.raises(merge.run, fx.ctx(settings()), fx.inputs())
    assert.matches("cannot push the release branch cdp/release/m3 to " .. fx.origin, msg, 1, true)
    assert.matches("non-fast-forward", msg, 1, true)
    assert.are.equal(theirs, remote_branch(fx))
    assert.are.equal(0, #pulls_for("cdp/release/m3"))
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
