-- The worked examples of docs/ do what the pages say, run by the real cdp on real
-- workspaces: each is taken from the page (the ```lua block after an
-- `<!-- example: NAME -->` line), so the page and the test cannot drift apart.
local support = require "tests.lua.support"

local q = support.quote
local cdp = support.cdp()
local CDP = cdp:sub(1, 1) == "/" and cdp or (support.sh("pwd"):gsub("%s+$", "") .. "/" .. cdp)
local root = os.getenv("CDP_SOURCE_DIR") or "."

local function example(page, name)
  local text = assert(support.read(root .. "/docs/" .. page), "no docs/" .. page)
  local code = text:match("<!%-%- example: " .. name .. " %-%->\n```lua\n(.-)\n```")
  return assert(code, ("docs/%s has no example '%s'"):format(page, name))
end

local function run(dir, args, env)
  return support.sh(("cd %s && %s %s %s </dev/null"):format(q(dir), env or "", q(CDP), args), { may_fail = true })
end

local function demo()
  local dir = support.tmpdir()
  support.sh("bash tests/fixtures/workspace_demo.sh " .. q(dir))
  return dir .. "/work"
end

describe("docs/stages.md", function()
  it("the worked stage passes under the limit and names the crate over it", function()
    local work = demo()
    support.write(work .. "/cdp.lua", example("stages.md", "stage"))
    local out, code = run(work, "run --to size")
    assert.are.equal(0, code, out)
    assert.matches("demo%-util 1%.0%.1: %d+ bytes", out)
    out, code = run(work, "run --to size --set crate_size_limit=100")
    assert.are.equal(1, code, out)
    assert.matches("stage size failed[^\n]*\n  demo%-cli 0%.2%.0: [^\n]*/demo%-cli%-0%.2%.0%.crate is %d+ bytes, over crate_size_limit %(100%)\n", out)
    out, code = run(work, "config --set crate_size_limit=lots")
    assert.are.equal(2, code, out)
    assert.matches("crate_size_limit", out, 1, true)
    -- Nothing changed: the stage is cached.
    out = run(work, "run --to size")
    assert.matches("stage size cached", out, 1, true)
  end)
end)

describe("docs/policies.md", function()
  it("the worked policy makes chore(deps) a patch, and says so in the plan", function()
    local dir = support.git_init()
    support.write(dir .. "/Cargo.toml", '[package]\nname = "solo"\nversion = "1.0.0"\nedition = "2021"\n'
      .. 'license = "MIT"\ndescription = "solo"\n')
    support.write(dir .. "/src/lib.rs", "pub fn f() {}\n")
    support.sh(("cd %s && cargo generate-lockfile --offline -q"):format(q(dir)))
    support.commit(dir, "feat: the start")
    support.git(dir, "tag", "-a", "v1.0.0", "-m", "v1.0.0")
    support.commit(dir, "chore(deps): bump serde from 1.0.1 to 1.0.2", { ["src/lib.rs"] = "pub fn f() {}\n// serde\n" })
    local out, code = run(dir, "plan --all")
    assert.are.equal(0, code, out)
    assert.matches("\nsolo%s+1%.0%.0%s+none%s", out)
    support.write(dir .. "/cdp.lua", example("policies.md", "policy"))
    out, code = run(dir, "plan")
    assert.are.equal(0, code, out)
    assert.matches("\nsolo%s+1%.0%.0 → 1%.0%.1%s+patch%s+1%s+%x+ chore%(deps%): bump serde from 1%.0%.1 to 1%.0%.2 %(→ patch%)\n", out)
  end)
end)

describe("docs/changelogs.md", function()
  it("the worked template renders every change on one line, breaking ones marked", function()
    local work = demo()
    support.write(work .. "/.cdp/lua/team/changelog.lua", example("changelogs.md", "template"))
    support.write(work .. "/cdp.lua", 'return cdp.pipeline { name = "release", stages = { "activate", "version", "package" },\n'
      .. '  settings = { changelog_template = "team.changelog" } }\n')
    local out, code = run(work, "changelog demo-cli --date 2026-03-04")
    assert.are.equal(0, code, out)
    -- the project's pipeline names the module, so its .cdp/lua/ is used, and said so
    local said
    out, said = out:gsub("^cdp: using the repository's Lua from %.cdp/lua/ %(no built%-in module replaced%)[^\n]*\n", "")
    assert.are.equal(1, said, out)
    assert.matches("^==> crates/demo%-cli/CHANGELOG%.md <==\n# Changes\n\n## %[0%.2%.0%] %- 2026%-03%-04\n\n"
      .. "%- %*%*breaking%*%* cli: rename the entry point to run — main%(%) is now run%(%)%. %(%x%x%x%x%x%x%x%)\n", out)
  end)
end)
