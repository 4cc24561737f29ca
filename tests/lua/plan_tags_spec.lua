-- Release Plan: tag conventions and last releases, on scripted histories of the
-- shapes real workspaces have (tests/fixtures/plan_histories.lua).
local support = require "tests.lua.support"
local fixture = require "tests.fixtures.plan_workspace"
local histories = require "tests.fixtures.plan_histories"
local json = require "cdp.json"
local tags = require "cdp.tags"

local ps = require "tests.lua.plan_support"
local make, expect, summaries, cdp = ps.make, ps.expect, ps.summaries, ps.cdp_all

describe("plan tags: reading tag names", function()
  it("splits a tag at every place the separator allows and keeps what names a crate", function()
    local p = assert(tags.parse("{crate}-{version}"))
    local names = { tokio = true, ["tokio-util"] = true }
    assert.are.same({ { crate = "tokio-util", version = "0.7.11" } }, tags.read(p, "tokio-util-0.7.11", names))
    assert.are.same({ { crate = "tokio", version = "1.38.0" } }, tags.read(p, "tokio-1.38.0", names))
    assert.are.same({}, tags.read(p, "tokio-util", names))
    local last = assert(tags.parse("v{version}/{crate}"))
    assert.are.same({ { crate = "tokio", version = "1.0.0" } }, tags.read(last, "v1.0.0/tokio", names))
    assert.are.equal("v2.0.0/tokio", tags.name("v{version}/{crate}", "tokio", "2.0.0"))
  end)

  it("refuses templates it cannot read, naming them", function()
    local _, err = tags.parse("{crate}-v")
    assert.truthy(err:find("'{crate}-v' must contain {version} once", 1, true), err)
    _, err = tags.parse("{name}-{version}")
    assert.truthy(err:find("unknown placeholder {name}", 1, true), err)
    _, err = tags.parse("{crate}-{crate}-{version}")
    assert.truthy(err:find("at most once", 1, true), err)
  end)

  it("names a tag under a set of templates, as stages ask with the tag_template setting", function()
    local plan = require "cdp.plan"
    assert.are.equal("cli-v1.0.0", plan.tag_name("{crate}-v{version}", "cli", "1.0.0"))
    assert.are.equal("v1.0.0", plan.tag_name("{crate}@{version},cli=v{version}", "cli", "1.0.0"))
    assert.are.equal("core@2.0.0", plan.tag_name("{crate}@{version},cli=v{version}", "core", "2.0.0"))
    assert.are.equal("core-v2.0.0", plan.tag_name({ cli = "v{version}" }, "core", "2.0.0"))
    assert.has_error(function() plan.tag_name("{crate}-v,cli=v{version}", "cli", "1.0.0") end)
  end)

  it("reads templates for the workspace and per crate from text and tables", function()
    assert.are.same({ ["*"] = "{crate}@{version}", cli = "v{version}" },
      tags.templates("{crate}@{version}, cli=v{version}"))
    assert.are.same({ ["*"] = "{crate}@{version}", cli = "v{version}" },
      tags.templates { "{crate}@{version}", "cli=v{version}" })
    assert.are.same({ cli = "v{version}" }, tags.templates { cli = "v{version}" })
    assert.is_nil(tags.templates(""))
    local _, err, code = tags.templates { cli = 3 }
    assert.are.equal("ETAG", code)
    assert.truthy(err:find("'cli'", 1, true), err)
  end)
end)

describe("plan tags: conventions found from the tags", function()
  it("tokio style {crate}-{version}, with dashes in crate names", function()
    local w = histories.tokio_style()
    local p, c = make(w)
    for _, name in ipairs { "tokio", "tokio-util", "tokio-macros" } do
      assert.are.equal("{crate}-{version}", c[name].tag_template, name)
      assert.are.equal("tags", c[name].tag_template_source, name)
    end
    assert.are.equal("tokio-util-0.7.11", c["tokio-util"].last_tag)
    assert.are.equal("tokio-1.38.0", c.tokio.last_tag)
    expect(c["tokio-util"], "0.7.11", "0.7.12", "patch")
    expect(c["tokio-macros"], "2.3.0", "2.4.0", "minor")
    expect(c.tokio, "1.38.0", "1.38.1", "patch")
    -- new tags follow the convention found
    assert.are.equal("tokio-macros-2.4.0", c["tokio-macros"].tag)
    assert.are.equal("tokio-macros-2.4.0", p:tag_of("tokio-macros"))
    assert.are.equal("tokio-util-9.9.9", require("cdp.plan").tag_for(json.decode(p:to_json()), "tokio-util", "9.9.9"))
    local out = cdp("plan " .. support.quote(w.dir))
    assert.truthy(out:find("tags: {crate}-{version} for 3 crates (found)", 1, true), out)
    out = cdp("plan " .. support.quote(w.dir) .. " --explain tokio-util")
    assert.truthy(out:find("tag convention: {crate}-{version} (found from its 1 tag); this release: tokio-util-0.7.12",
      1, true), out)
  end)

  for _, template in ipairs { "{crate}@{version}", "{crate}/v{version}", "{crate}_v{version}" } do
    it("finds " .. template, function()
      local w = histories.convention(template)
      local _, c = make(w)
      assert.are.equal(tags.name(template, "a", "1.0.0"), c.a.last_tag)
      assert.are.equal(template, c.b.tag_template)
      expect(c.a, "1.0.0", "1.1.0", "minor")
      expect(c.b, "0.2.0", "0.2.1", "patch")
      assert.are.equal(tags.name(template, "a", "1.1.0"), c.a.tag)
    end)
  end

  it("a root crate on v{version} over members on {crate}-v{version}; a new member follows its siblings", function()
    local w = histories.root_with_members()
    local p, c = make(w)
    assert.are.equal("v{version}", c.app.tag_template)
    assert.are.equal("v1.2.0", c.app.last_tag)
    expect(c.app, "1.2.0", "1.2.1", "patch")
    -- adding a member edits the root manifest, which is the root crate's own
    assert.are.same({ "fix: exit code on --help", "chore: add app-macros" }, summaries(c.app))
    assert.are.equal("{crate}-v{version}", c["app-core"].tag_template)
    expect(c["app-core"], "0.4.0", "0.5.0", "minor")
    -- never released, and a member: not v{version} (that tag is the root's), but its siblings' way
    assert.are.equal(json.null, c["app-macros"].last_tag)
    assert.are.equal("{crate}-v{version}", c["app-macros"].tag_template)
    assert.are.equal("default", c["app-macros"].tag_template_source)
    expect(c["app-macros"], "0.2.0", "0.2.0", "initial")
    assert.are.equal("app-macros-v0.2.0", c["app-macros"].tag)
    local line = p:table():match("^[^\n]+")
    assert.are.equal("tags: {crate}-v{version} for 2 crates, v{version} for 1 crate (found); 1 never released", line)
  end)

  it("one v{version} tag per release for crates that share version.workspace", function()
    local w = histories.shared_version()
    local _, c = make(w)
    for _, name in ipairs { "core", "cli", "derive" } do
      assert.are.equal("v0.9.0", c[name].last_tag, name)
      assert.are.equal("v{version}", c[name].tag_template, name)
      expect(c[name], "0.9.0", "0.10.0", "minor")
    end
    assert.are.equal("v0.10.0", c.core.tag)
    assert.are.equal(json.null, c.internal.tag)
  end)

  it("a member on the repository's v{version} tags; tags without the build metadata", function()
    local w = histories.member_on_shared_tags()
    local p, c = make(w)
    assert.are.equal("v{version}", c.edit.tag_template)
    assert.are.equal("v0.25.13", c.edit.last_tag)
    expect(c.edit, "0.25.13", "0.25.14", "patch")
    assert.are.equal("v0.25.14", c.edit.tag)
    assert.are.equal("toml-v1.1.4", c.toml.last_tag)
    expect(c.toml, "1.1.4+spec-1.1.0", "1.1.5+spec-1.1.0", "patch")
    assert.are.equal("toml-v1.1.5", c.toml.tag)
    assert.is_false(c.toml.tag_metadata)
    assert.are.equal("toml-v1.1.5", require("cdp.plan").tag_for(json.decode(p:to_json()), "toml", "1.1.5+spec-1.1.0"))
    -- v1.0.0 is older than old: not its release, and not its convention
    expect(c.old, "1.0.0", "1.0.0", "initial")
    assert.are.equal("{crate}-v{version}", c.old.tag_template)
  end)

  it("crates sharing v{version} tags at one version move together; a tag that exists is a warning", function()
    local w = histories.shared_tags()
    local p, c = make(w)
    for _, name in ipairs { "serde", "serde_derive", "cli" } do
      assert.are.equal("v{version}", c[name].tag_template, name)
    end
    expect(c.serde_derive, "1.0.228", "1.0.229", "patch")
    expect(c.serde, "1.0.228", "1.0.229", "patch")
    assert.truthy(ps.reason(c.serde, "lockstep").text:find("shares its tags (v{version})", 1, true))
    expect(c.cli, "1.0.227", "1.0.228", "patch")
    assert.are.equal(1, #p.warnings)
    assert.truthy(p.warnings[1]:find("tag v1.0.228 (cli 1.0.228) already exists", 1, true), p.warnings[1])
  end)

  it("the tag of the manifest's version counts even when a squash merge left it off the branch", function()
    local w = histories.squash_merged_release()
    local p, c = make(w)
    assert.are.equal("a-v0.3.2", c.a.last_tag)
    -- the squash commit only repeats the release: it is not a change since it
    assert.are.same({ "fix(a): the option's default" }, summaries(c.a))
    expect(c.a, "0.3.2", "0.3.3", "patch")
    assert.are.same({ "fix(b): handle empty input" }, summaries(c.b))
    expect(c.b, "0.1.0", "0.1.1", "patch")
    -- and with a policy where any commit releases, the copy still does not count
    _, c = make(w, { policy = require("cdp.policies.release_plz") {} })
    assert.are.same({ "fix(a): the option's default" }, summaries(c.a))
    assert.truthy(p:explain("a"):find("last release: 0.3.2 (tag a-v0.3.2)", 1, true))
  end)

  it("and when the release PR was rebase-merged", function()
    local w = histories.squash_merged_release(true)
    local _, c = make(w)
    assert.are.equal("a-v0.3.2", c.a.last_tag)
    assert.are.same({ "fix(a): the option's default" }, summaries(c.a))
    expect(c.a, "0.3.2", "0.3.3", "patch")
  end)

  it("otherwise the highest tag merged into the planned commit", function()
    local w = fixture.new()
    w:crate("a", "1.0.0")
    w:commit("chore: start")
    w:tag("a-v0.9.0")
    w:tag("a-v0.10.0")
    w:change("a", "fix: x")
    local _, c = make(w)
    -- manifest 1.0.0 has no tag: the highest reachable one is the release, the manifest is ahead of it
    assert.are.equal("a-v0.10.0", c.a.last_tag)
    expect(c.a, "1.0.0", "1.0.0", "major")
    assert.truthy(c.a.reasons[#c.a.reasons].text:find("0.10.0 → 1.0.0, already in the manifest", 1, true))
  end)

  it("and when the highest tag below the manifest is off the branch, the highest one merged", function()
    -- reachability is asked for the highest tag first, then for the others:
    -- the answer must be the one a single question over every tag gives
    local w = fixture.new()
    w:crate("a", "1.2.0")
    w:commit("chore: start")
    w:tag("a-v0.9.0")
    w:tag("a-v1.0.0")
    w:git("checkout", "-q", "-b", "elsewhere")
    w:change("a", "feat: only on a side branch")
    w:tag("a-v1.1.0")
    w:git("checkout", "-q", "main")
    w:change("a", "fix: on main")
    local _, c = make(w)
    assert.are.equal("a-v1.0.0", c.a.last_tag)
    expect(c.a, "1.2.0", "1.2.0", "minor")
  end)

  it("a tag above the manifest (a nightly's pre-release) is not the last release while one below is", function()
    local w = fixture.new()
    w:crate("a", "1.0.0")
    w:commit("chore: start")
    w:tag("a-v1.0.0")
    w:change("a", "feat: y")
    w:tag("a-v1.2.0-alpha.1")
    w:set_version("a", "1.1.0")
    w:commit("chore: a 1.1.0 by hand")
    local _, c = make(w)
    assert.are.equal("a-v1.0.0", c.a.last_tag)
    expect(c.a, "1.1.0", "1.1.0", "minor")
  end)

  it("a crate that moved from v{version} to tags of its own is read by its manifest's version", function()
    local w = fixture.new()
    w:crate("axum", "0.2.0")
    w:crate("axum-core", "0.1.0")
    w:commit("chore: start")
    w:tag("axum-v0.2.0")
    w:tag("axum-core-v0.1.0")
    w:set_version("axum", "0.2.1")
    w:commit("chore: axum 0.2.1")
    w:tag("v0.2.1")
    w:change("axum", "fix: routing")
    local _, c = make(w)
    assert.are.equal("v0.2.1", c.axum.last_tag)
    expect(c.axum, "0.2.1", "0.2.2", "patch")
  end)

  it("conventions that changed over time: the last release under any, new tags as the newest", function()
    local w = fixture.new { single = true }
    w:crate("tool", "0.1.0", { dir = "" })
    w:commit("chore: start")
    w:tag("0.1.0")
    w:change("tool", "fix: one")
    w:set_version("tool", "0.2.0")
    w:commit("chore: 0.2.0")
    w:tag("tool-0.2.0")
    w:set_version("tool", "0.2.1-alpha.0") -- cargo-release's dev-version
    w:commit("chore: start 0.2.1")
    w:change("tool", "fix: two")
    local _, c = make(w)
    assert.are.equal("tool-0.2.0", c.tool.last_tag)
    assert.are.equal("{crate}-{version}", c.tool.tag_template)
    expect(c.tool, "0.2.1-alpha.0", "0.2.1", "patch")
    assert.are.equal("tool-0.2.1", c.tool.tag)
  end)

  it("a template set for the workspace and per crate wins over what is found", function()
    local w = histories.root_with_members()
    w:tag("app-v1.0.0") -- an old convention of the root crate
    local _, c = make(w, { tag_template = { ["*"] = "{crate}-v{version}", app = "v{version}" } })
    assert.are.equal("set", c.app.tag_template_source)
    assert.are.equal("v1.2.0", c.app.last_tag)
    assert.are.equal("{crate}-v{version}", c["app-core"].tag_template)
    local _, d = make(w, { tag_template = "{crate}-v{version}" })
    assert.are.equal("app-v1.0.0", d.app.last_tag)
    local out = cdp(("plan %s --tag-template '{crate}-v{version}' --tag-template 'app=v{version}' --json")
      :format(support.quote(w.dir)))
    local data = assert(json.decode(out), out)
    assert.are.equal("v1.2.0", data.crates[1].last_tag)
    out = cdp("plan " .. support.quote(w.dir) .. " --tag-template '{crate}-v'")
    assert.truthy(out:find("must contain {version} once", 1, true), out)
  end)

  it("members at the root crate's version, without tags of their own, share its v{version} tags", function()
    local w = histories.root_shared_by_value()
    local _, c = make(w)
    for _, name in ipairs { "app", "app-core", "app-render" } do
      assert.are.equal("v{version}", c[name].tag_template, name)
      assert.are.equal("v1.3.0", c[name].last_tag, name)
      assert.are.equal("1.3.0", c[name].last_release, name)
      expect(c[name], "1.4.0-dev", "1.4.0", "minor")
      assert.are.equal("v1.4.0", c[name].tag, name)
    end
    assert.are.same({ "fix: an off-by-one", "chore: start 1.4 development" }, summaries(c["app-core"]))
    -- a member at another version, added after the tag, is not released by it
    assert.are.equal(json.null, c["app-extra"].last_tag)
    expect(c["app-extra"], "0.2.0", "0.2.0", "initial")
  end)

  it("a crate-less template on crates that do not share a version is an error that says what to set", function()
    local w = histories.crate_less_mixed()
    local p, err, code = w:plan { tag_template = "v{version}" }
    assert.is_nil(p)
    assert.are.equal("ETAG", code)
    assert.truthy(err:find("do not share a version (a 1.0.0, b 0.3.0)", 1, true), err)
    assert.truthy(err:find('tag_template = { ["*"] = "{crate}-v{version}", ["a"] = "v{version}" }', 1, true), err)
    -- per crate it is fine
    local _, c = make(w, { tag_template = { a = "v{version}" } })
    assert.are.equal("v1.0.0", c.a.last_tag)
    -- found from the tags, v1.0.0 names a's manifest version, and a has no tags of its own: a's
    _, c = make(w)
    assert.are.equal("v1.0.0", c.a.last_tag)
    assert.are.equal("{crate}-v{version}", c.b.tag_template)
  end)

  it("a shared tag older than a crate is not its release", function()
    local w = fixture.new()
    w:workspace_version("1.0.0")
    w.workspace_v = "1.0.0"
    w:crate("a", "workspace")
    w:crate("b", "workspace")
    w:commit("chore: start")
    w:tag("v1.0.0")
    w:crate("c", "workspace")
    w:commit("feat: add c")
    local _, c = make(w)
    assert.are.equal("v1.0.0", c.a.last_tag)
    assert.are.equal(json.null, c.c.last_tag)
  end)

  it("when no tag matches any crate but tags exist, says so and shows the closest shapes", function()
    local w = fixture.new()
    w:crate("alpha", "1.0.0")
    w:crate("beta", "1.0.0")
    w:commit("chore: start")
    w:tag("release-alpha-1.0.0")
    w:tag("release-beta-1.0.0")
    w:tag("nightly")
    local p = make(w)
    assert.are.equal(1, #p.warnings)
    local text = p.warnings[1]
    assert.truthy(text:find("no tag matches a release of any crate, but the repository has 3 tags", 1, true), text)
    assert.truthy(text:find("release-alpha-{version} (1 tag, e.g. release-alpha-1.0.0)", 1, true), text)
    local out = cdp("plan " .. support.quote(w.dir))
    assert.truthy(out:find("warning: no tag matches", 1, true), out)
    local data = json.decode(cdp("plan --json " .. support.quote(w.dir)))
    assert.are.equal(text, data.warnings[1])
    -- set as the hint says, it plans from them
    local _, c = make(w, { tag_template = "release-{crate}-{version}" })
    assert.are.equal("release-alpha-1.0.0", c.alpha.last_tag)
  end)
end)

describe("plan tags: the registry for crates without a tag", function()
  local reg_dir, pid, index

  lazy_setup(function()
    reg_dir = support.tmpdir()
    support.sh(("setsid python3 tests/fixtures/registry.py --root %s --token t0k >%s 2>&1 & echo $! >%s")
      :format(support.quote(reg_dir .. "/reg"), support.quote(reg_dir .. "/out"), support.quote(reg_dir .. "/pid")))
    local port
    for _ = 1, 200 do
      port = (support.read(reg_dir .. "/out") or ""):match("PORT (%d+)")
      if port then
        break
      end
      support.sh("sleep 0.1")
    end
    assert(port, "registry did not start: " .. (support.read(reg_dir .. "/out") or ""))
    pid = support.read(reg_dir .. "/pid"):match("%d+")
    index = ("sparse+http://127.0.0.1:%s/index/"):format(port)
  end)
  lazy_teardown(function()
    if pid then
      support.sh("kill " .. pid, { may_fail = true })
    end
  end)

  it("a version already published is not a first release", function()
    local w = fixture.new()
    w:crate("old", "0.4.0")
    w:crate("fresh", "0.1.0")
    w:commit("chore: start")
    w:change("old", "fix: a detail")
    -- old 0.4.0 was published without a tag: package it with real cargo and publish it
    support.sh(("cd %s/crates/old && cargo package --offline --allow-dirty --no-verify -q")
      :format(support.quote(w.dir)))
    local ws = assert(require("cdp.workspace").load(w.dir))
    local registry = require "cdp.registry"
    local client = registry.new { index = index, token = "t0k", sleep = function() end }
    local crate_file = ("%s/target/package/old-0.4.0.crate"):format(w.dir)
    assert(client:publish(registry.metadata(ws.by_name.old.package), support.read(crate_file)))
    local _, c = make(w)
    expect(c.old, "0.4.0", "0.4.0", "initial")
    local p
    p, c = make(w, { registry = index })
    assert.are.equal("0.4.0", c.old.last_release)
    assert.are.equal("registry", c.old.last_release_source)
    expect(c.old, "0.4.0", "0.4.1", "patch")
    expect(c.fresh, "0.1.0", "0.1.0", "initial")
    assert.truthy(p:explain("fresh"):find("not in the registry", 1, true))
    assert.truthy(p:explain("old"):find("in the registry; no tag", 1, true))
    local out = cdp(("plan %s --registry %s"):format(support.quote(w.dir), index))
    assert.truthy(out:find("old%s+0%.4%.0 → 0%.4%.1%s+patch"), out)
    -- a registry that cannot be reached fails the plan, naming it
    local dead = ("sparse+http://127.0.0.1:%d/index/"):format(support.closed_port())
    local none, err = w:plan { registry = registry.new { index = dead, retries = 0 } }
    assert.is_nil(none)
    assert.truthy(err:find("cannot look up", 1, true) and err:find("127.0.0.1", 1, true), err)
  end)
end)
