-- A remote URL with credentials in it (https://user:token@host/repo.git) is pushed to as
-- given and shown masked: Activate gives the fork the URL as configured and records it
-- masked, Tag pushes with it over smart HTTP (git http-backend behind Basic auth), and
-- a refusal names where the credentials came from. A whole run writes the password
-- nowhere under .cdp/.
local support = require "tests.lua.support"
local rs = require "tests.lua.release_support"
local activate = require "cdp.stages.activate"
local release = require "cdp.release"
local tag = require "cdp.stages.tag"

local q = support.quote
local TOKEN = "url-cred-token-77e1"

describe("credentials in a remote's URL", function()
  local root, pid, base

  lazy_setup(function()
    root = support.tmpdir()
    pid = support.sh(("python3 tests/fixtures/git_http_server.py --root %s --token %s --port 0 >%s 2>%s </dev/null & echo $!")
      :format(q(root .. "/srv"), TOKEN, q(root .. "/port"), q(root .. "/log"))):match("%d+")
    for _ = 1, 100 do
      local port = (support.read(root .. "/port") or ""):match("PORT (%d+)")
      if port then base = "127.0.0.1:" .. port break end
      support.sh("sleep 0.1")
    end
    assert(base, "git_http_server.py did not start: " .. (support.read(root .. "/log") or ""))
  end)
  lazy_teardown(function() support.sh("kill " .. pid, { may_fail = true }) end)

  -- The demo workspace whose origin is served over HTTP as NAME.git, its remote URL
  -- carrying USERINFO ("user:password"); returns the Tag fixture with Activate's fork.
  local function served(name, userinfo)
    local fx = rs.make()
    local srv = root .. "/srv/" .. name .. ".git"
    support.sh(("mkdir -p %s && git clone -q --bare %s %s"):format(q(root .. "/srv"), q(fx.origin), q(srv)))
    support.git(srv, "config", "http.receivepack", "true")
    fx.origin = srv
    local url = ("http://%s%s/%s.git"):format(userinfo and (userinfo .. "@") or "", base, name)
    support.git(fx.work, "remote", "set-url", "origin", url)
    local out = activate.run { run = "r1", run_dir = fx.dir .. "/activate", root = fx.work, settings = {},
      log = function() end }
    -- Tag's inputs: Activate's fork artifact over the fixture's packaged fork
    support.git(fx.fork.path, "remote", "set-url", "origin",
      support.git(out.fork.path, "config", "remote.origin.url"))
    fx.fork.origin, fx.fork.remote = out.fork.origin, out.fork.remote
    return fx, url, out
  end

  it("is given to the fork as configured, recorded masked, and pushed with", function()
    local fx, url, out = served("given", "bob:" .. TOKEN)
    assert.are.equal(url, support.git(out.fork.path, "config", "remote.origin.url"))
    assert.are.equal(("http://bob:***@%s/given.git"):format(base), out.fork.origin)
    assert.are.equal(url, release.push_url(fx.fork, "push"))
    -- no git_token: the URL's own credentials do it
    local res = tag.run(fx.ctx(), fx.inputs())
    assert.are.equal(fx.packaged.commit, res.tags["demo-core-v0.1.1"])
    assert.are.equal(fx.packaged.commit, support.git(fx.origin, "rev-parse", "demo-core-v0.1.1^{commit}"))
    assert.is_true(tag.verify(fx.ctx(), res, fx.inputs()))
  end)

  -- `cdp run release --to tag` in FX's work tree, ENV given; returns output, exit code.
  local function run_to_tag(fx, env)
    local cdp = support.cdp()
    cdp = cdp:sub(1, 1) == "/" and cdp or (support.sh("pwd"):gsub("%s+$", "") .. "/" .. cdp)
    return support.sh(("cd %s && env -u GITHUB_TOKEN -u CARGO_REGISTRY_TOKEN %s %s %s --phase 3 --to tag "
      .. "--set 'validate_skip=tokens,access' --set 'test_commands=cargo metadata --offline --no-deps --format-version 1'"
      .. " </dev/null"):format(q(fx.work), env or "", q(cdp), q((os.getenv("CDP_SOURCE_DIR") or ".") .. "/pipelines/release.lua")),
      { may_fail = true })
  end

  -- Files under FX's .cdp/ holding TEXT (the forks' git config, which holds the URL as
  -- the user's own config does, left out).
  local function files_with(fx, text)
    return support.sh(("grep -rl %s %s/.cdp --exclude=config || true"):format(q(text), q(fx.work)))
  end

  it("names the URL (masked) as the source when the remote refuses them", function()
    local fx = served("refused", "bob:not-the-token-5")
    local msg = rs.raises(tag.run, fx.ctx(), fx.inputs())
    assert.matches("authentication failed; the credentials came from the URL of remote 'origin' in the "
      .. ("repository's git config (http://bob:***@%s/refused.git)"):format(base), msg, 1, true)
    msg = rs.raises(tag.run, fx.ctx { git_token = "wrong-too-9" }, fx.inputs())
    assert.matches("(http://bob:***@" .. base .. "/refused.git), then git_token (env CDP_GIT_TOKEN) as user "
      .. "x-access-token", msg, 1, true)
    -- a whole run says the same, with the password masked everywhere it writes
    local out, code = run_to_tag(fx)
    assert.are.equal(1, code, out)
    assert.matches("the credentials came from the URL of remote 'origin' in the repository's git config "
      .. ("(http://bob:***@%s/refused.git)"):format(base), out, 1, true)
    assert.is_nil(out:find("not-the-token-5", 1, true), "the password is in the output")
    assert.are.equal("", files_with(fx, "not-the-token-5"))
  end)

  it("names git_token and where it is set, or says no credentials were given", function()
    local fx = served("token", nil)
    local ctx = fx.ctx { git_token = "wrong-token-3" }
    ctx.sources = { git_token = "env MY_PUSH_TOKEN" }
    local msg = rs.raises(tag.run, ctx, fx.inputs())
    assert.matches("authentication failed; the credentials came from git_token (env MY_PUSH_TOKEN) as user "
      .. "x-access-token", msg, 1, true)
    msg = rs.raises(tag.run, fx.ctx(), fx.inputs())
    assert.matches("no credentials were given: set git_token (env CDP_GIT_TOKEN) or put them in the remote's URL",
      msg, 1, true)
  end)

  it("never reaches the journal, logs or output of a whole run", function()
    local fx, url = served("run", "bob:" .. TOKEN)
    local out, code = run_to_tag(fx)
    assert.are.equal(0, code, out)
    assert.is_nil(out:find(TOKEN, 1, true), "the password is in the output")
    assert.matches("http://bob:***@" .. base .. "/run.git", out, 1, true)
    assert.are.equal("", files_with(fx, TOKEN))
    assert.is_truthy(support.git(fx.origin, "tag", "-l", "demo-core-v0.1.1") ~= "")
    assert.are.equal(url, support.git(fx.work, "remote", "get-url", "origin"))
  end)
end)
