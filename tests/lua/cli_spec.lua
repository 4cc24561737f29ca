-- The help a user reads: `cdp --help` and `cdp help COMMAND` for every command, each
-- with its usage and an example, from the real binary.
local support = require "tests.lua.support"
local host = require "cdp.host"

local q = support.quote
local cdp = support.cdp()

local function run(args)
  return support.sh(("%s %s </dev/null"):format(q(cdp), args), { may_fail = true })
end

local function commands()
  local names = {}
  for _, m in ipairs(host.modules()) do
    local name = m.module:match("^cdp%.commands%.([%w_-]+)$")
    if name then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

describe("cdp help", function()
  it("lists every command with its summary, and how to start in a workspace", function()
    local out, code = run("--help")
    assert.are.equal(0, code, out)
    for _, name in ipairs(commands()) do
      assert.matches("\n  " .. name:gsub("%-", "%%-") .. "%s+%S", out)
    end
    for _, line in ipairs { "  cdp init ", "  cdp plan ", "  cdp run --to package ", "Exit codes:" } do
      assert.matches(line, out, 1, true)
    end
  end)

  it("gives every command its usage, what it does and an example", function()
    local names = commands()
    assert.is_true(#names >= 11, "commands: " .. table.concat(names, ", "))
    for _, name in ipairs(names) do
      local out, code = run("help " .. name)
      assert.are.equal(0, code, out)
      assert.matches("^cdp " .. name:gsub("%-", "%%-") .. "[ \n]", out)
      assert.matches("\nExamples?:\n  cdp ", out)
      local again = run(name .. " --help")
      assert.are.equal(out, again)
    end
  end)

  it("names an unknown command in one line and a hint", function()
    local out, code = run("help nosuch")
    assert.are.equal(2, code)
    assert.are.equal("cdp: unknown command 'nosuch'\nTry 'cdp --help'.\n", out)
  end)
end)
