-- The run journal: parsing with torn lines, appending after a torn write,
-- deterministic lines, and the state derived from entries.
local journal = require "cdp.journal"
local json = require "cdp.json"
local support = require "tests.lua.support"

local function entries(list)
  for i, e in ipairs(list) do
    e.seq = i
  end
  return list
end

describe("cdp.journal", function()
  it("parses whole lines and skips a torn last line", function()
    local text = '{"event":"run.started","run":"r1","seq":1}\n{"event":"stage.started","seq":2,"stage":"a"}\n{"event":"stage.pa'
    local list, torn = journal.parse(text)
    assert.are.equal(2, #list)
    assert.are.equal(1, torn)
    assert.are.equal("stage.started", list[2].event)
  end)

  it("skips a garbled line in the middle (a torn write later ended by the writer)", function()
    local list, torn = journal.parse('{"event":"a","seq":1}\n{"eve\n{"event":"b","seq":3}\n')
    assert.are.same({ "a", "b" }, { list[1].event, list[2].event })
    assert.are.equal(1, torn)
  end)

  it("a line without its newline is torn even if it happens to parse", function()
    local list, torn = journal.parse('{"event":"a","seq":1}\n{"event":"b","seq":2}')
    assert.are.equal(1, #list)
    assert.are.equal(1, torn)
  end)

  it("appends sorted-key lines, fsync'd, after ending a torn fragment", function()
    local dir = support.tmpdir()
    local path = dir .. "/journal.ndjson"
    support.write(path, '{"event":"run.started","run":"r","seq":1}\n{"event":"stage.pass')
    local w = assert(journal.open(path))
    w:append("stage.passed", { stage = "b", outputs = { z = 1, a = { "x" } }, key = "k" })
    local text = support.read(path)
    assert.are.equal('{"event":"run.started","run":"r","seq":1}\n{"event":"stage.pass\n'
      .. '{"event":"stage.passed","key":"k","outputs":{"a":["x"],"z":1},"seq":2,"stage":"b"}\n', text)
    local list, torn = journal.read(path)
    assert.are.equal(2, #list)
    assert.are.equal(1, torn)
  end)

  it("redacts every entry it writes", function()
    local dir = support.tmpdir()
    local path = dir .. "/journal.ndjson"
    local w = assert(journal.open(path, function(e)
      return json.decode((json.encode(e):gsub("hunter2", "***")))
    end))
    w:append("stage.failed", { stage = "a", error = { msg = "password hunter2 refused" } })
    assert.is_nil(support.read(path):find("hunter2", 1, true))
    assert.matches("password *** refused", support.read(path), 1, true)
  end)

  describe("derive", function()
    local started = { event = "run.started", run = "r", pipeline = "p", stages = { "a", "b", "c" } }

    it("starts every stage pending, in the declared order", function()
      local st = journal.derive(entries { started })
      assert.are.equal("running", st.state)
      assert.are.same({ "a", "b", "c" }, { st.stages[1].name, st.stages[2].name, st.stages[3].name })
      assert.are.equal("pending", st.stages[3].state)
    end)

    it("a stage started and never ended is running; the run's last word decides its state", function()
      local st = journal.derive(entries {
        started,
        { event = "stage.started", stage = "a", key = "ka" },
        { event = "stage.passed", stage = "a", key = "ka", outputs = { x = 1 } },
        { event = "stage.started", stage = "b", key = "kb" },
      })
      assert.are.equal("passed", st.stages[1].state)
      assert.are.same({ x = 1 }, st.stages[1].outputs)
      assert.are.equal("running", st.stages[2].state)
      assert.are.equal("b", st.current)
    end)

    it("failed, interrupted, resumed, finished", function()
      local list = entries {
        started,
        { event = "stage.started", stage = "a", key = "ka" },
        { event = "stage.failed", stage = "a", key = "ka", error = { code = "EFAIL", msg = "boom" }, log_tail = { "l" } },
        { event = "run.failed", reason = "stage a failed" },
      }
      local st = journal.derive(list)
      assert.are.equal("failed", st.state)
      assert.are.same({ code = "EFAIL", msg = "boom" }, st.stages[1].error)
      list[#list + 1] = { event = "run.resumed", seq = 5 }
      list[#list + 1] = { event = "stage.started", stage = "a", key = "ka", seq = 6 }
      list[#list + 1] = { event = "stage.interrupted", stage = "a", signal = "SIGTERM", seq = 7 }
      list[#list + 1] = { event = "run.interrupted", signal = "SIGTERM", seq = 8 }
      st = journal.derive(list)
      assert.are.equal("interrupted", st.state)
      assert.are.equal("interrupted", st.stages[1].state)
      assert.is_nil(st.stages[1].error)
    end)

    it("approvals: needed, granted (back to the state before), rejected", function()
      local list = entries {
        started,
        { event = "stage.passed", stage = "a", key = "ka", outputs = {} },
        { event = "approval.needed", stage = "a", when = "after" },
        { event = "run.paused", reason = "approval" },
      }
      local st = journal.derive(list)
      assert.are.equal("awaiting-approval", st.state)
      assert.are.equal("awaiting-approval", st.stages[1].state)
      assert.are.same({ stage = "a", when = "after" }, st.pending_approval)
      list[#list + 1] = { event = "run.resumed", seq = 5 }
      assert.are.same({ stage = "a", when = "after" }, journal.derive(list).pending_approval)
      list[#list + 1] = { event = "approval.granted", stage = "a", when = "after", user = "ana", time = "T", note = "ok", seq = 6 }
      st = journal.derive(list)
      assert.are.equal("passed", st.stages[1].state)
      assert.is_nil(st.pending_approval)
      assert.are.same({ { when = "after", decision = "approved", user = "ana", time = "T", note = "ok" } }, st.stages[1].approvals)
      assert.are.equal("granted", st.gates["a/after"])

      list[#list + 1] = { event = "approval.needed", stage = "b", when = "before", seq = 7 }
      list[#list + 1] = { event = "approval.rejected", stage = "b", when = "before", user = "bo", seq = 8 }
      st = journal.derive(list)
      assert.are.equal("failed", st.stages[2].state)
      assert.are.equal("EREJECTED", st.stages[2].error.code)
    end)

    it("status is the public shape, with null outputs for stages that have none", function()
      local st = journal.derive(entries {
        started,
        { event = "stage.cached", stage = "a", key = "ka", outputs = { x = 1 } },
        { event = "stage.skipped", stage = "b", reason = "--only a" },
      })
      local status = journal.status(st)
      assert.are.equal(
        '{"pipeline":"p","run":"r","stages":[{"name":"a","outputs":{"x":1},"state":"cached"},'
          .. '{"name":"b","outputs":null,"state":"skipped"},{"name":"c","outputs":null,"state":"pending"}],'
          .. '"state":"running"}',
        json.encode(status))
    end)

    it("indexes stage outputs by key across journals", function()
      local index = journal.index {
        { { event = "stage.passed", key = "k1", outputs = { a = 1 } } },
        { { event = "stage.cached", key = "k2", outputs = { b = 2 } }, { event = "stage.failed", key = "k3" } },
      }
      assert.are.same({ k1 = { a = 1 }, k2 = { b = 2 } }, index)
    end)
  end)
end)
