-- cdp stage, status --run, approve --run and resume of a distributed run, through the
-- cdp binary, each job in a clone of its own of one bare origin. The pipeline is
-- Activate and two small stages of its own, so no cargo runs.
local support = require "tests.lua.support"
local q = support.quote
local G = support.git

local PIPELINE = [[
local git = require "cdp.git"
local fs = require "cdp.fs"
return cdp.pipeline {
  name = "mini",
  phase = 2,
  stages = {
    "activate",
    { name = "note", needs = { "fork" }, gives = { "note" }, modifies_fork = true,
      run = function(ctx, inputs)
        -- a commit in the fork, which only the run state carries to the next job
        local repo = assert(git.open(inputs.fork.path))
        assert(fs.write(inputs.fork.path .. "/NOTE", "noted in " .. ctx.run .. "\n"))
        assert(repo:add { "NOTE" })
        local commit = assert(repo:commit_index { message = "note\n" })
        assert(repo:reference_set("refs/cdp/" .. ctx.run .. "/note", commit, "note", { force = true }))
        repo:close()
        ctx.log("noted at " .. commit)
        return { note = { commit = commit } }
      end },
    { name = "ship", needs = { "fork", "note" }, gives = { "shipped" }, approval = "before",
      run = function(_, inputs)
        local text = assert(fs.read(inputs.fork.path .. "/NOTE"))
        return { shipped = { text = text, commit = inputs.note.commit } }
      end },
  },
}
]]

describe("cdp stage", function()
  local base, origin, n

  -- A new clone of the origin: a job's machine. Returns its path.
  local function machine()
    n = n + 1
    local dir = base .. "/job" .. n
    support.sh("git clone -q " .. q(origin) .. " " .. q(dir))
    G(dir, "config", "user.name", "Job")
    G(dir, "config", "user.email", "job@cdp.invalid")
    return dir
  end

  -- cdp ARGS in DIR: output, exit code.
  local function cdp(dir, args, env)
    return support.sh(("cd %s && %s %s %s"):format(q(dir), env or "", q(support.cdp()), args), { may_fail = true })
  end

  before_each(function()
    base = support.tmpdir()
    origin = base .. "/origin.git"
    n = 0
    support.sh("git init -q --bare -b main " .. q(origin))
    local seed = support.git_init(base .. "/seed")
    support.commit(seed, "chore: start", { ["README.md"] = "hi\n", ["mini.lua"] = PIPELINE })
    G(seed, "remote", "add", "origin", origin)
    G(seed, "push", "-q", "origin", "main")
  end)

  it("runs each stage in another clone, gates Ship until approved on the remote, and finishes", function()
    local out, code = cdp(machine(), "stage note --run 5-1 mini.lua")
    assert.are.equal(1, code)
    assert.matches("run 5%-1 has no state on .* its first stage starts it %(cdp stage activate %-%-run 5%-1%)", out)

    out, code = cdp(machine(), "stage activate --run 5-1 mini.lua")
    assert.are.equal(0, code, out)
    assert.matches("cdp run 5%-1: activate passed", G(origin, "log", "-1", "--format=%s", "refs/cdp/runs/5-1"))
    out, code = cdp(machine(), "stage note --run 5-1 mini.lua")
    assert.are.equal(0, code, out)
    -- the fork's commit travelled with the state, not as a branch
    local note = out:match("noted at (%x+)")
    assert.are.equal("commit", G(origin, "cat-file", "-t", note))

    -- phase 2: Ship waits for a person
    out, code = cdp(machine(), "stage ship --run 5-1 mini.lua")
    assert.are.equal(3, code, out)
    assert.matches("cdp approve --run 5-1", out, 1, true)
    out = cdp(machine(), "status --run 5-1")
    assert.matches("ship%s+awaiting%-approval", out)
    out, code = cdp(machine(), "approve --run 5-1 --note 'looks right'")
    assert.are.equal(0, code, out)
    out, code = cdp(machine(), "stage ship --run 5-1 mini.lua")
    assert.are.equal(0, code, out)

    local status = require("cdp.json").decode((cdp(machine(), "status --run 5-1 --json")))
    assert.are.equal("done", status.state)
    assert.are.equal("noted in 5-1\n", status.stages[3].outputs.shipped.text)
    assert.are.equal(note, status.stages[3].outputs.shipped.commit)
    assert.are.equal("approved", status.stages[3].approvals[1].decision)
  end)

  it("does nothing for a stage that passed, and continues an earlier attempt of the same CI run", function()
    local a = machine()
    assert.are.equal(0, select(2, cdp(a, "stage activate --run 6-1 mini.lua")))
    local out, code = cdp(a, "stage activate --run 6-1 mini.lua")
    assert.are.equal(0, code, out)
    assert.matches("stage activate passed in run 6-1 already: nothing to do", out, 1, true)
    local before = G(origin, "rev-parse", "refs/cdp/runs/6-1")
    out, code = cdp(machine(), "stage activate --run 6-2 mini.lua")
    assert.are.equal(0, code, out)
    assert.matches("continuing 6-1, an earlier attempt", out, 1, true)
    assert.matches("nothing to do", out, 1, true)
    assert.are.equal(before, G(origin, "rev-parse", "refs/cdp/runs/6-1"))
    assert.has_error(function() G(origin, "rev-parse", "--verify", "-q", "refs/cdp/runs/6-2") end)
  end)

  it("refuses a stage whose earlier stage has not passed, and records nothing", function()
    assert.are.equal(0, select(2, cdp(machine(), "stage activate --run 7-1 mini.lua")))
    local before = G(origin, "rev-parse", "refs/cdp/runs/7-1")
    local out, code = cdp(machine(), "stage ship --run 7-1 --approved tester mini.lua")
    assert.are.equal(1, code)
    assert.matches("stage note comes before this job's, and it has not passed in run 7-1 (it is pending)", out, 1, true)
    assert.are.equal(before, G(origin, "rev-parse", "refs/cdp/runs/7-1"))
  end)

  it("records a CI environment's approval, and resumes a distributed run on another machine", function()
    assert.are.equal(0, select(2, cdp(machine(), "stage activate --run 8-1 mini.lua")))
    -- cdp resume goes on from the remote state, here where the run never was
    local out, code = cdp(machine(), "resume 8-1 --no-prompt")
    assert.are.equal(3, code, out) -- note runs, ship waits
    out, code = cdp(machine(), "stage ship --run 8-1 --approved 'GitHub environment mini-ship' mini.lua")
    assert.are.equal(0, code, out)
    local status = require("cdp.json").decode((cdp(machine(), "status --run 8-1 --json")))
    assert.are.equal("done", status.state)
    assert.are.equal("GitHub environment mini-ship", status.stages[3].approvals[1].user)
  end)
end)
