-- Where `cdp plan --json` spends its time, phase by phase, in one process:
--   (cd WORKSPACE && cdp -e "$(cat bench/profile_plan.lua)")   [ALL=1 for --all]
-- Wraps the steps plan.make runs (its upvalues, as they are named in
-- lua/cdp/plan.lua) and the JSON encoding, and prints wall and CPU seconds
-- of each on stderr (CPU is this process's: cargo metadata's own is not in it).
-- Nothing here changes a result.
local plan = require "cdp.plan"
local proc = require "cdp.proc"

local rows = {}
local function timed(name, fn)
  return function(...)
    local w, c = proc.clock(), os.clock()
    local r = table.pack(fn(...))
    rows[#rows + 1] = ("%-20s wall %.3f s  cpu %.3f s"):format(name, proc.clock() - w, os.clock() - c)
    return table.unpack(r, 1, r.n)
  end
end

local i = 1
while true do
  local name, value = debug.getupvalue(plan.make, i)
  if not name then
    break
  end
  if type(value) == "function" then
    debug.setupvalue(plan.make, i, timed(name, value))
  end
  i = i + 1
end

-- Inside the phases: the tag and reachability seams and the convention finder.
local tags = require "cdp.tags"
plan.tag_candidates = timed("  tag_candidates", plan.tag_candidates)
plan.reachable = timed("  reachable", plan.reachable)
tags.conventions = timed("  tags.conventions", tags.conventions)
local workspace = require "cdp.workspace"
workspace.guess = timed("  workspace.guess", workspace.guess)
-- the walk, whoever calls it (the guess or walk_changes): a method of every repository
local methods = getmetatable(require("cdp.git").open(".")).__index
methods.changes = timed("  repo:changes", methods.changes)

local w0, c0 = proc.clock(), os.clock()
local result = assert(plan.make { dir = ".", all = os.getenv("ALL") == "1" })
local json = timed("to_json", function() return result:to_json() end)()
io.stderr:write(table.concat(rows, "\n"), "\n")
io.stderr:write(("%-20s wall %.3f s  cpu %.3f s  (%d bytes of JSON)\n"):format("total", proc.clock() - w0,
  os.clock() - c0, #json))
