-- cdp export: the workflow a real validator accepts (npm @action-validator/cli, as
-- package-lock.json pins it), read back with a real YAML parser (python3-yaml), and
-- checked for what each job gets: needs, environments, permissions, secrets.
local support = require "tests.lua.support"
local q = support.quote

local CDP = os.getenv("CDP") or "build/cdp"
local VALIDATOR = "node_modules/.bin/action-validator"

-- The document at PATH as JSON, through PyYAML.
local function parse(path)
  local out = support.sh("python3 -c " .. q("import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))")
    .. " " .. q(path))
  return require("cdp.json").decode(out)
end

local function export(target, args)
  local dir = support.tmpdir()
  local out = dir .. "/out.yml"
  support.sh(q(CDP) .. " export " .. target .. " pipelines/release.lua --output " .. q(out) .. " " .. (args or ""))
  return out
end

describe("cdp export github-actions", function()
  local path, wf
  setup(function()
    path = export("github-actions")
    wf = parse(path)
  end)

  it("is accepted by action-validator, which refuses a broken workflow", function()
    local _, code = support.sh(q(VALIDATOR) .. " " .. q(path), { may_fail = true })
    assert.are.equal(0, code)
    local broken = support.tmpdir() .. "/broken.yml"
    support.write(broken, (support.read(path):gsub("needs: merge", "needs: nowhere")))
    local out, bad = support.sh(q(VALIDATOR) .. " " .. q(broken), { may_fail = true })
    assert.are_not.equal(0, bad)
    assert.matches("unresolved job nowhere", out, 1, true)
  end)

  it("has one job per stage, each needing the one before", function()
    local order = { "activate", "validate", "test", "version", "package", "tag", "merge", "publish" }
    local n = 0
    for _ in pairs(wf.jobs) do n = n + 1 end
    assert.are.equal(#order, n)
    for i, name in ipairs(order) do
      local job = wf.jobs[name]
      assert.is_table(job, name)
      assert.are.equal(i > 1 and order[i - 1] or nil, job.needs)
      local steps = job.steps
      assert.are.equal("actions/checkout@v4", steps[1].uses)
      assert.are.equal(0, steps[1].with["fetch-depth"])
      assert.matches("^cdp stage " .. name .. ' %-%-run "%$CDP_RUN"', steps[#steps].run)
    end
    assert.are.equal("${{ github.run_id }}-${{ github.run_attempt }}", wf.env.CDP_RUN)
  end)

  it("runs on push to the base branch and by hand, one run per branch at a time", function()
    assert.are.same({ "main" }, wf.on.push.branches)
    assert.is_table(wf.on.workflow_dispatch)
    assert.matches("github.ref_name", wf.concurrency.group, 1, true)
    assert.is_false(wf.concurrency["cancel-in-progress"])
  end)

  it("puts Publish alone behind an environment in phase 2, and gates every stage in phase 0", function()
    for name, job in pairs(wf.jobs) do
      if name == "publish" then
        assert.are.equal("release-publish", job.environment)
        assert.matches('--approved "GitHub environment release-publish"', job.steps[#job.steps].run, 1, true)
      else
        assert.is_nil(job.environment, name)
        assert.is_nil(job.steps[#job.steps].run:find("--approved", 1, true), name)
      end
    end
    local all = parse(export("github-actions", "--phase 0"))
    for name, job in pairs(all.jobs) do
      assert.are.equal("release-" .. name, job.environment)
      assert.matches("--phase 0", job.steps[#job.steps].run, 1, true)
    end
  end)

  it("gives each secret only to the jobs whose stage reads it, and an OIDC token only to Publish", function()
    local seen = {}
    for name, job in pairs(wf.jobs) do
      local env = job.steps[#job.steps].env
      -- every job pushes the run state with the job's own token
      assert.are.equal("${{ github.token }}", env.CDP_GIT_TOKEN, name)
      for var in pairs(env) do
        seen[var] = seen[var] or {}
        table.insert(seen[var], name)
      end
      assert.are.equal(name == "publish" and "write" or nil, job.permissions["id-token"], name)
      assert.are.equal("write", job.permissions.contents, name)
      assert.are.equal(name == "merge" and "write" or nil, job.permissions["pull-requests"], name)
    end
    for _, list in pairs(seen) do table.sort(list) end
    assert.are.same({ "publish" }, seen.CARGO_REGISTRY_TOKEN)
    assert.are.equal("${{ secrets.CARGO_REGISTRY_TOKEN }}", wf.jobs.publish.steps[4].env.CARGO_REGISTRY_TOKEN)
    assert.are.same({ "merge", "publish" }, seen.GITHUB_TOKEN)
    assert.are.same({ "contents" }, (function() local k = {} for x in pairs(wf.permissions) do k[#k + 1] = x end return k end)())
    assert.are.equal("read", wf.permissions.contents)
  end)

  it("runs only for a merged release with --on merged-release, and action-validator accepts that too", function()
    local path2 = export("github-actions", "--on merged-release")
    local _, code = support.sh(q(VALIDATOR) .. " " .. q(path2), { may_fail = true })
    assert.are.equal(0, code)
    local wf2 = parse(path2)
    assert.matches("contains(github.event.head_commit.message, 'chore(release)')", wf2.jobs.activate["if"], 1, true)
    assert.is_nil(wf2.jobs.validate["if"])
    assert.is_nil(wf.jobs.activate["if"])
    local out, bad = support.sh(q(CDP) .. " export github-actions pipelines/release.lua --stdout --on tuesday",
      { may_fail = true })
    assert.are.equal(2, bad)
    assert.matches("--on must be push or merged-release", out, 1, true)
  end)

  it("takes runners per stage, and refuses an unknown stage", function()
    local wf2 = parse(export("github-actions", "--runs-on big-box --runs-on publish=locked-down --branch trunk"))
    assert.are.equal("big-box", wf2.jobs.test["runs-on"])
    assert.are.equal("locked-down", wf2.jobs.publish["runs-on"])
    assert.are.same({ "trunk" }, wf2.on.push.branches)
    local out, code = support.sh(q(CDP) .. " export github-actions pipelines/release.lua --stdout --runs-on nope=x",
      { may_fail = true })
    assert.are.equal(2, code)
    assert.matches("no stage 'nope'", out, 1, true)
  end)
end)

describe("cdp export gitlab-ci", function()
  it("has stages, needs, a protected manual environment for Publish, and scoped secrets", function()
    local ci = parse(export("gitlab-ci"))
    assert.are.same({ "activate", "validate", "test", "version", "package", "tag", "merge", "publish" }, ci.stages)
    assert.are.same({}, ci["cdp-activate"].needs)
    assert.are.same({ "cdp-merge" }, ci["cdp-publish"].needs)
    assert.are.equal("manual", ci["cdp-publish"].when)
    assert.is_false(ci["cdp-publish"].allow_failure)
    assert.are.equal("release-publish", ci["cdp-publish"].environment.name)
    assert.is_nil(ci["cdp-publish"].environment.action)
    assert.are.equal("crates.io", ci["cdp-publish"].id_tokens.CDP_ID_TOKEN.aud)
    -- Merge reads the forge token: an environment of its own to scope it to, no gate
    assert.are.same({ name = "release-merge", action = "prepare" }, ci["cdp-merge"].environment)
    assert.is_nil(ci["cdp-merge"].when)
    assert.is_nil(ci["cdp-validate"].environment)
    assert.is_nil(ci["cdp-test"].id_tokens)
    assert.matches('cdp stage publish %-%-run "%$CDP_RUN" %-%-approved', ci["cdp-publish"].script[1])
    assert.are.equal("0", ci.variables.GIT_DEPTH)
  end)
end)
