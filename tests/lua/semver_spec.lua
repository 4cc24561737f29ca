local semver = require "cdp.semver"

describe("cdp.semver versions", function()
  it("parses and formats MAJOR.MINOR.PATCH, pre-release and build metadata", function()
    for _, text in ipairs { "0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1",
      "1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0-x-y-z.--", "1.0.0-alpha+001",
      "1.0.0+20130313144700", "1.0.0-beta+exp.sha.5114f85", "2.1.1-really.0" } do
      local v = assert(semver.parse(text))
      assert.are.equal(text, tostring(v))
    end
    local v = semver.parse("1.2.3-rc.1+b5")
    assert.are.same({ 1, 2, 3 }, { v.major, v.minor, v.patch })
    assert.are.same({ "rc", "1" }, v.pre)
    assert.are.same({ "b5" }, v.build)
  end)

  it("refuses what is not semver, naming the text, with ESEMVER", function()
    for _, text in ipairs { "", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "v1.2.3",
      "1.2.3-", "1.2.3-01", "1.2.3-a..b", "1.2.3+", "1.2.3+a..b", "1.2.3-é", "1.2.x", " 1.2.3",
      "1.2.3 ", "a.b.c" } do
      local v, msg, code = semver.parse(text)
      assert.is_nil(v, text)
      assert.are.equal("ESEMVER", code)
      assert.truthy(msg:find(text, 1, true), msg)
    end
  end)

  it("orders versions by semver 2.0 precedence", function()
    -- the ordering from semver.org §11, plus numeric-vs-numeric by value
    local ordered = { "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
      "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0",
      "10.0.0" }
    for i = 1, #ordered do
      for j = 1, #ordered do
        local expected = i < j and -1 or (i > j and 1 or 0)
        assert.are.equal(expected, semver.compare(ordered[i], ordered[j]),
          ordered[i] .. " vs " .. ordered[j])
      end
    end
    assert.is_true(semver.v("0.9.0") < semver.v("0.10.0"))
    assert.is_true(semver.v("1.0.0-2") < semver.v("1.0.0-10"))
    assert.is_true(semver.v("1.0.0-999") < semver.v("1.0.0-a"))
    assert.is_true(semver.v("1.0.0+a") == semver.v("1.0.0+b"), "build metadata has no precedence")
  end)

  it("bumps releases and pre-releases", function()
    local cases = {
      { "1.2.3", "major", "2.0.0" }, { "1.2.3", "minor", "1.3.0" }, { "1.2.3", "patch", "1.2.4" },
      { "1.2.3", "none", "1.2.3" }, { "0.3.1", "minor", "0.4.0" },
      { "1.0.0-rc.1", "major", "1.0.0" }, { "1.1.0-rc.1", "major", "2.0.0" },
      { "0.4.0-dev.1", "minor", "0.4.0" }, { "0.4.1-dev.1", "minor", "0.5.0" },
      { "0.4.0-dev.1", "patch", "0.4.0" }, { "1.2.3+build", "patch", "1.2.4" },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[3], tostring(semver.bump(c[1], c[2])), c[1] .. " + " .. c[2])
    end
    assert.has_error(function() semver.bump("1.0.0", "huge") end, "semver.bump: unknown level 'huge'")
  end)

  it("names the level between two versions and the larger of two levels", function()
    assert.are.equal("minor", semver.level_between("0.3.1", "0.4.0"))
    assert.are.equal("major", semver.level_between("1.3.1", "2.0.0"))
    assert.are.equal("patch", semver.level_between("0.4.0-dev.1", "0.4.0"))
    assert.are.equal("none", semver.level_between("1.0.0", "1.0.0"))
    assert.are.equal("minor", semver.max_bump("patch", "minor"))
    assert.are.equal("patch", semver.max_bump(nil, "patch"))
  end)

  it("splits pre-release label and counter", function()
    assert.are.same({ "dev", 2 }, { semver.v("0.4.0-dev.2"):prerelease_label() })
    assert.are.same({ "rc" }, { semver.v("1.0.0-rc"):prerelease_label() })
    assert.are.same({ "alpha.beta", 3 }, { semver.v("1.0.0-alpha.beta.3"):prerelease_label() })
    assert.is_nil(semver.v("1.0.0"):prerelease_label())
  end)
end)

-- Tables after the semver crate's own tests (dtolnay/semver tests/test_version_req.rs),
-- which is what cargo resolves requirements with.
local MATCHES = {
  { "1.0.0", { "1.0.0", "1.1.0", "1.0.1" }, { "0.9.9", "0.10.0", "0.1.0", "1.0.0-pre", "1.0.1-pre" } },
  { "=1.0.0", { "1.0.0" }, { "1.0.1", "0.9.9", "0.10.0", "0.1.0", "1.0.0-pre" } },
  { "=0.9.0", { "0.9.0" }, { "0.9.1", "1.9.0", "0.0.9", "0.9.0-pre" } },
  { "=0.0.2", { "0.0.2" }, { "0.0.1", "0.0.3", "0.0.2-pre" } },
  { "=0.1.0-beta2.a", { "0.1.0-beta2.a" }, { "0.9.1", "0.1.0", "0.1.1-beta2.a", "0.1.0-beta2" } },
  { "=0.1.0+meta", { "0.1.0", "0.1.0+meta", "0.1.0+any" }, {} },
  { "=1.2", { "1.2.0", "1.2.9" }, { "1.3.0", "1.1.9", "1.2.0-pre" } },
  { ">= 1.0.0", { "1.0.0", "2.0.0" }, { "0.1.0", "0.0.1", "1.0.0-pre", "2.0.0-pre" } },
  { ">= 2.1.0-alpha2", { "2.1.0-alpha2", "2.1.0-alpha3", "2.1.0", "3.0.0" },
    { "2.0.0", "2.1.0-alpha1", "2.0.0-alpha2", "3.0.0-alpha2" } },
  { ">1.2", { "1.3.0", "2.0.0" }, { "1.2.9", "1.2.0" } },
  { ">1", { "2.0.0" }, { "1.9.9" } },
  { "< 1.0.0", { "0.1.0", "0.0.1" }, { "1.0.0", "1.0.0-beta", "1.0.1", "0.9.9-alpha" } },
  { "<= 2.1.0-alpha2", { "2.1.0-alpha2", "2.1.0-alpha1", "2.0.0", "1.0.0" },
    { "2.1.0", "2.2.0-alpha1", "2.0.0-alpha2", "1.0.0-alpha2" } },
  { "<=1.2", { "1.2.9", "0.1.0" }, { "1.3.0" } },
  { ">1.0.0-alpha, <1.0.0", { "1.0.0-beta" }, {} },
  { ">1.0.0-alpha, <1.0", {}, { "1.0.0-beta" } },
  { ">1.0.0-alpha, <1", {}, { "1.0.0-beta" } },
  { "> 0.0.9, <= 2.5.3", { "0.0.10", "1.0.0", "2.5.3" }, { "0.0.8", "2.5.4" } },
  { "0.3.0, 0.4.0", {}, { "0.0.8", "0.3.0", "0.4.0" } },
  { "<= 0.2.0, >= 0.5.0", {}, { "0.0.8", "0.3.0", "0.5.1" } },
  { "0.1.0, 0.1.4, 0.1.6", { "0.1.6", "0.1.9" }, { "0.1.0", "0.1.4", "0.2.0" } },
  { ">=0.5.1-alpha3, <0.6", { "0.5.1-alpha3", "0.5.1-alpha4", "0.5.1-beta", "0.5.1", "0.5.5" },
    { "0.5.1-alpha1", "0.5.2-alpha3", "0.5.5-pre", "0.5.0-pre", "0.6.0", "0.6.0-pre" } },
  { "~1", { "1.0.0", "1.0.1", "1.1.1" }, { "0.9.1", "2.9.0", "0.0.9" } },
  { "~1.2", { "1.2.0", "1.2.1" }, { "1.1.1", "1.3.0", "0.0.9" } },
  { "~1.2.2", { "1.2.2", "1.2.4" }, { "1.2.1", "1.9.0", "1.0.9", "2.0.1", "0.1.3" } },
  { "~1.2.3-beta.2", { "1.2.3", "1.2.4", "1.2.3-beta.2", "1.2.3-beta.4" },
    { "1.3.3", "1.1.4", "1.2.3-beta.1", "1.2.4-beta.2" } },
  { "^1", { "1.1.2", "1.1.0", "1.2.1", "1.0.1" },
    { "0.9.1", "2.9.0", "0.1.4", "1.0.0-beta1", "0.1.0-alpha", "1.0.1-pre" } },
  { "^1.1", { "1.1.2", "1.1.0", "1.2.1" }, { "0.9.1", "2.9.0", "1.0.1", "0.1.4" } },
  { "^1.1.2", { "1.1.2", "1.1.4", "1.2.1" },
    { "0.9.1", "2.9.0", "1.1.1", "0.0.1", "1.1.2-alpha1", "1.1.3-alpha1", "2.9.0-alpha1" } },
  { "^0.1.2", { "0.1.2", "0.1.4" },
    { "0.9.1", "2.9.0", "1.1.1", "0.0.1", "0.1.2-beta", "0.1.3-alpha", "0.2.0-pre" } },
  { "^0.5.1-alpha3", { "0.5.1-alpha3", "0.5.1-alpha4", "0.5.1-beta", "0.5.1", "0.5.5" },
    { "0.5.1-alpha1", "0.5.2-alpha3", "0.5.5-pre", "0.5.0-pre", "0.6.0" } },
  { "^0.0.2", { "0.0.2" }, { "0.9.1", "2.9.0", "1.1.1", "0.0.1", "0.1.4" } },
  { "^0.0", { "0.0.2", "0.0.0" }, { "0.9.1", "2.9.0", "1.1.1", "0.1.4" } },
  { "^0", { "0.9.1", "0.0.2", "0.0.0" }, { "2.9.0", "1.1.1" } },
  { "^1.4.2-beta.5", { "1.4.2", "1.4.3", "1.4.2-beta.5", "1.4.2-beta.6", "1.4.2-c" },
    { "0.9.9", "2.0.0", "1.4.2-alpha", "1.4.2-beta.4", "1.4.3-beta.5" } },
  { "*", { "0.9.1", "2.9.0", "0.0.9", "1.0.1", "1.1.1" }, { "1.0.0-pre" } },
  { "x", { "0.9.1", "2.9.0" }, { "1.0.0-pre" } },
  { "1.*", { "1.2.0", "1.2.1", "1.1.1", "1.3.0" }, { "0.0.9", "1.2.0-pre", "2.0.0" } },
  { "1.x", { "1.2.0" }, { "2.0.0" } },
  { "1.*.*", { "1.2.0" }, { "2.0.0" } },
  { "1.2.*", { "1.2.0", "1.2.2", "1.2.4" }, { "1.9.0", "1.0.9", "2.0.1", "0.1.3", "1.2.2-pre" } },
  { "1.2.X", { "1.2.4" }, { "1.3.0" } },
  { "0.*.*", { "0.5.0" }, { "1.0.0" } },
  { "=2.1.1-really.0", { "2.1.1-really.0" }, {} },
  -- the plan's own questions: does a dependent's requirement still admit the new version?
  { "0.3", { "0.3.0", "0.3.9" }, { "0.4.0", "0.4.0-dev.1" } },
  { "^0.4.0-dev.1", { "0.4.0-dev.1", "0.4.0-dev.2", "0.4.0" }, { "0.4.1-dev.1", "0.5.0" } },
}

describe("cdp.semver requirements", function()
  for _, case in ipairs(MATCHES) do
    it(("'%s' admits and refuses as cargo does"):format(case[1]), function()
      local r = assert(semver.req(case[1]))
      for _, v in ipairs(case[2]) do
        assert.is_true(r:matches(v), case[1] .. " should match " .. v)
      end
      for _, v in ipairs(case[3]) do
        assert.is_false(r:matches(v), case[1] .. " should not match " .. v)
      end
    end)
  end

  it("refuses malformed requirements with a message naming them", function()
    for _, text in ipairs { "", ">= >= 0.0.2", ">== 0.0.2", "a.0.0", "1.0.0-", ">=", "> 0.1.0,",
      "> 0.3.0, ,", "1.2.3 - 2.3.4", "> 0.0.9 <= 2.5.3", "=1.2.3 || =2.3.4", "*.1", "1.*.1",
      ">=1.*.1", "1.2.3-01", "*, 0.20.0-any", "0.20.0-any, *", "1.2.3.4" } do
      local r, msg, code = semver.req(text)
      assert.is_nil(r, text)
      assert.are.equal("ESEMVER", code)
      assert.is_string(msg)
    end
    assert.has_error(function() semver.matches("1.2.3 - 2", "1.0.0") end)
  end)

  it("accepts what cargo accepts around pre-release and build text", function()
    for _, op in ipairs { "=", ">", ">=", "<", "<=", "~", "^" } do
      for _, rest in ipairs { "1.2.3-1a", "1.2.3+1a", "1.2.3-01a", "1.2.3+01", "1.2.3-1+1",
        "1.2.3-1-1+1-1-1", "1.2.3-1a-1a+1a-1a-1a" } do
        assert.truthy(semver.req(op .. " " .. rest), op .. " " .. rest)
      end
    end
  end)

  it("rewrites a requirement to admit a new version, keeping its operator and precision", function()
    local cases = {
      { "0.3", "0.4.0", "0.4" }, { "0.3.1", "0.4.0", "0.4.0" }, { "^1.2", "2.0.0", "^2.0" },
      { "~1.2.3", "1.3.0", "~1.3.0" }, { "~1.2", "1.3.0", "~1.3" }, { "=1.2.3", "1.2.4", "=1.2.4" },
      { "1", "2.0.0", "2" }, { ">=1.0, <2", "2.0.0", "^2.0.0" }, { "0.3", "0.4.0-dev.1", "0.4.0-dev.1" },
      { "1.0", "2.0.0+build.7", "2.0" },
    }
    for _, c in ipairs(cases) do
      local new = semver.rewrite_req(c[1], c[2])
      assert.are.equal(c[3], new, c[1] .. " -> " .. c[2])
      assert.is_true(semver.matches(new, c[2]))
    end
  end)
end)
