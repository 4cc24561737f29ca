-- The Tag stage against real remotes: a bare repository on disk, and smart HTTP with a
-- token (git http-backend) for the authenticated path and a hook that rejects.
local support = require "tests.lua.support"
local rs = require "tests.lua.release_support"
local tag = require "cdp.stages.tag"

local q = support.quote

-- refs/tags/NAME on the repository at DIR: { object = tag object oid, commit = peeled } or nil.
local function tag_on(dir, name)
  local out = support.sh(("git -C %s for-each-ref --format='%%(objectname) %%(objecttype) %%(*objectname)' refs/tags/%s")
    :format(q(dir), name))
  local object, kind, peeled = out:match("^(%x+) (%a+) (%x*)")
  if not object then
    return nil
  end
  return { object = object, kind = kind, commit = peeled ~= "" and peeled or object }
end

local TAGS = { "demo-cli-v0.2.0", "demo-core-v0.1.1", "demo-util-v1.0.1" }

describe("stage tag", function()
  it("makes an annotated tag per released crate on the packaged commit and pushes it", function()
    local fx = rs.make()
    local out = tag.run(fx.ctx(), fx.inputs())
    local commit = fx.packaged.commit
    local expected = {}
    for _, name in ipairs(TAGS) do
      expected[name] = commit
      local t = assert(tag_on(fx.origin, name), name .. " is not on the origin")
      assert.are.equal("tag", t.kind)
      assert.are.equal(commit, t.commit)
      assert.are.equal(commit, tag_on(fx.fork.path, name).commit)
    end
    assert.are.same({ tags = expected }, out)
    assert.are.equal("demo-core 0.1.1", support.git(fx.origin, "tag", "-l", "--format=%(contents:subject)", "demo-core-v0.1.1"))
    assert.is_true(tag.verify(fx.ctx(), out, fx.inputs()))
    assert.is_true(tag.verify(fx.ctx(), out))
  end)

  it("tags past a lock file a kill left in the fork's own refs/tags", function()
    local fx = rs.make()
    support.write(fx.fork.path .. "/.git/refs/tags/demo-core-v0.1.1.lock", "")
    tag.run(fx.ctx(), fx.inputs())
    assert.are.equal(fx.packaged.commit, assert(tag_on(fx.origin, "demo-core-v0.1.1")).commit)
    assert.is_nil(io.open(fx.fork.path .. "/.git/refs/tags/demo-core-v0.1.1.lock"))
  end)

  it("does nothing when run again, and leaves a tag already on the remote alone", function()
    local fx = rs.make()
    tag.run(fx.ctx(), fx.inputs())
    local before = {}
    for _, name in ipairs(TAGS) do before[name] = tag_on(fx.origin, name).object end
    local out = tag.run(fx.ctx(), fx.inputs())
    assert.matches("tag demo-core-v0.1.1 is already on " .. fx.origin, fx.log_text(), 1, true)
    assert.is_nil(fx.log_text():find("pushed", 1, true))
    for _, name in ipairs(TAGS) do
      assert.are.equal(before[name], tag_on(fx.origin, name).object)
      assert.are.equal(fx.packaged.commit, out.tags[name])
    end
    -- A fork without the local tags (a resumed run on another machine) does not re-push either.
    support.git(fx.fork.path, "tag", "-d", "demo-util-v1.0.1")
    tag.run(fx.ctx(), fx.inputs())
    assert.is_nil(fx.log_text():find("pushed", 1, true))
    assert.are.equal(before["demo-util-v1.0.1"], tag_on(fx.origin, "demo-util-v1.0.1").object)
  end)

  it("fails on a tag at another commit on the remote, naming the tag and both commits, and pushes nothing", function()
    local fx = rs.make()
    local other = fx.base
    support.git(fx.work, "tag", "-a", "demo-core-v0.1.1", "-m", "stray", other)
    support.git(fx.work, "push", "-q", "origin", "refs/tags/demo-core-v0.1.1")
    local msg = rs.raises(tag.run, fx.ctx(), fx.inputs())
    assert.matches("tag demo-core-v0.1.1 already exists on " .. fx.origin, msg, 1, true)
    assert.matches("at commit " .. other, msg, 1, true)
    assert.matches("not at the packaged commit " .. fx.packaged.commit, msg, 1, true)
    assert.matches("nothing was pushed", msg, 1, true)
    assert.is_nil(tag_on(fx.origin, "demo-util-v1.0.1"))
    assert.is_nil(tag_on(fx.origin, "demo-cli-v0.2.0"))
    assert.are.equal(other, tag_on(fx.origin, "demo-core-v0.1.1").commit)
    -- nor made any local tag
    assert.is_nil(tag_on(fx.fork.path, "demo-util-v1.0.1"))
  end)

  it("fails on a tag at another commit in the fork itself", function()
    local fx = rs.make()
    support.git(fx.fork.path, "tag", "demo-util-v1.0.1", fx.base)
    local msg = rs.raises(tag.run, fx.ctx(), fx.inputs())
    assert.matches("tag demo-util-v1.0.1 already exists in the release fork at commit " .. fx.base, msg, 1, true)
    assert.is_nil(tag_on(fx.origin, "demo-core-v0.1.1"))
  end)

  it("names tags by the template, v{version} for a one-crate plan", function()
    local fx = rs.make()
    local one = { crates = { fx.plan.crates[3] } }
    local out = tag.run(fx.ctx(), { fork = fx.fork, plan = one, packaged = fx.packaged })
    assert.are.same({ ["v1.0.1"] = fx.packaged.commit }, out.tags)
    assert.is_not_nil(tag_on(fx.origin, "v1.0.1"))
    local out2 = tag.run(fx.ctx { tag_template = "{crate}@{version}" }, fx.inputs())
    assert.are.equal(fx.packaged.commit, out2.tags["demo-cli@0.2.0"])
    assert.is_not_nil(tag_on(fx.origin, "demo-core@0.1.1"))
  end)

  it("tags only crates that go to a registry", function()
    local fx = rs.make()
    fx.plan.crates[1].publish = false
    fx.plan.crates[2].bump = "none"
    fx.plan.crates[2].next = fx.plan.crates[2].current
    local out = tag.run(fx.ctx(), fx.inputs())
    assert.are.same({ ["demo-util-v1.0.1"] = fx.packaged.commit }, out.tags)
    assert.is_nil(tag_on(fx.origin, "demo-cli-v0.2.0"))
  end)

  it("verify says no once the remote's tag is gone or moved", function()
    local fx = rs.make()
    local out = tag.run(fx.ctx(), fx.inputs())
    support.git(fx.origin, "tag", "-d", "demo-util-v1.0.1")
    local ok, why = tag.verify(fx.ctx(), out)
    assert.is_false(ok)
    assert.matches("tag demo-util-v1.0.1 on " .. fx.origin .. " is gone", why, 1, true)
    support.git(fx.origin, "tag", "demo-util-v1.0.1", fx.base)
    ok, why = tag.verify(fx.ctx(), out, fx.inputs())
    assert.is_false(ok)
    assert.matches("is at " .. fx.base, why, 1, true)
  end)

  it("says clearly when the repository has no remote to push to", function()
    local fx = rs.make()
    fx.fork.origin = false
    local msg = rs.raises(tag.run, fx.ctx(), fx.inputs())
    assert.matches("has no remote 'origin' to push to", msg, 1, true)
  end)

  it("names a lock a killed push left in a path remote, and pushes once it is gone", function()
    local fx = rs.make()
    -- what a push killed between locking the ref and renaming the lock leaves
    local lock = fx.origin .. "/refs/tags/demo-core-v0.1.1.lock"
    support.write(lock, fx.packaged.commit .. "\n")
    local msg = rs.raises(tag.run, fx.ctx(), fx.inputs())
    assert.matches("push to " .. fx.origin .. ": a previous push was interrupted; remove " .. lock
      .. " if no git process is running", msg, 1, true)
    assert.is_nil(msg:find("a tag that exists there", 1, true))
    assert.is_nil(tag_on(fx.origin, "demo-core-v0.1.1"))
    os.remove(lock)
    tag.run(fx.ctx(), fx.inputs())
    for _, name in ipairs(TAGS) do
      assert.are.equal(fx.packaged.commit, tag_on(fx.origin, name).commit)
    end
  end)

  describe("over smart HTTP", function()
    local TOKEN = "tag-spec-git-token-81f"
    local root, pid, url

    lazy_setup(function()
      root = support.tmpdir()
      local out = support.sh(("python3 tests/fixtures/git_http_server.py --root %s --token %s --port 0 >%s 2>%s </dev/null & echo $!")
        :format(q(root .. "/srv"), TOKEN, q(root .. "/port"), q(root .. "/log")))
      pid = out:match("%d+")
      for _ = 1, 100 do
        local port = (support.read(root .. "/port") or ""):match("PORT (%d+)")
        if port then url = "http://127.0.0.1:" .. port break end
        support.sh("sleep 0.1")
      end
      assert(url, "git_http_server.py did not start: " .. (support.read(root .. "/log") or ""))
    end)
    lazy_teardown(function() support.sh("kill " .. pid, { may_fail = true }) end)

    -- A fixture whose origin is served over HTTP as NAME.git.
    local function served(name)
      local fx = rs.make()
      support.sh(("mkdir -p %s && git clone -q --bare %s %s"):format(q(root .. "/srv"), q(fx.origin), q(root .. "/srv/" .. name .. ".git")))
      support.git(root .. "/srv/" .. name .. ".git", "config", "http.receivepack", "true")
      fx.origin = root .. "/srv/" .. name .. ".git"
      fx.fork.origin = url .. "/" .. name .. ".git"
      support.git(fx.fork.path, "remote", "set-url", "origin", fx.fork.origin)
      return fx
    end

    it("pushes with git_token and never shows it", function()
      local fx = served("ok")
      local msg = rs.raises(tag.run, fx.ctx { git_token = "wrong-token-1" }, fx.inputs())
      assert.matches("authentication failed", msg, 1, true)
      assert.is_nil(msg:find("wrong-token-1", 1, true))
      local out = tag.run(fx.ctx { git_token = TOKEN }, fx.inputs())
      assert.are.equal(fx.packaged.commit, tag_on(fx.origin, "demo-core-v0.1.1").commit)
      assert.is_true(tag.verify(fx.ctx { git_token = TOKEN }, out))
      assert.is_nil(fx.log_text():find(TOKEN, 1, true))
      -- loopback is the one place plain http may carry it, and the log says so
      assert.matches("warning: git_token goes to " .. fx.fork.origin .. " over plain http", fx.log_text(), 1, true)
    end)

    -- A served origin with the hook NAME (update, pre-receive) running SCRIPT, and the
    -- message Tag fails with when it pushes there.
    local function push_with_hook(name, script)
      local fx = served(name)
      local hook = fx.origin .. "/hooks/" .. name
      support.write(hook, script)
      support.sh("chmod +x " .. q(hook))
      return fx, rs.raises(tag.run, fx.ctx { git_token = TOKEN }, fx.inputs())
    end

    it("reports a push a hook rejects with the remote, the ref and the reason", function()
      local fx, msg = push_with_hook("update",
        '#!/bin/sh\ncase "$1" in refs/tags/*) echo "tags are frozen" >&2; exit 1;; esac\nexit 0\n')
      assert.matches("cannot push tags demo-cli-v0.2.0, demo-core-v0.1.1, demo-util-v1.0.1 to " .. fx.fork.origin, msg, 1, true)
      -- the server's own reason, as git reports an update hook's refusal, and what the hook said
      assert.matches("ref refs/tags/demo-cli-v0.2.0 rejected by " .. fx.fork.origin .. ": hook declined; "
        .. "the remote said: ", msg, 1, true)
      assert.matches("tags are frozen", msg, 1, true)
      assert.is_nil(msg:find(TOKEN, 1, true))
      assert.is_nil(tag_on(fx.origin, "demo-core-v0.1.1"))
    end)

    it("shows a pre-receive hook's own reason, not only that it declined", function()
      local fx, msg = push_with_hook("pre-receive",
        '#!/bin/sh\necho "release tags need a signed-off changelog (policy REL-7)" >&2\nexit 1\n')
      assert.matches("ref refs/tags/demo-cli-v0.2.0 rejected by " .. fx.fork.origin .. ": pre-receive hook declined; "
        .. "the remote said: release tags need a signed-off changelog (policy REL-7)", msg, 1, true)
      assert.is_nil(tag_on(fx.origin, "demo-cli-v0.2.0"))
    end)
  end)
end)
