-- Where a pipeline comes from, as users name it: nothing (the project's own cdp.lua or
-- .cdp/pipeline.lua), a name (a pipeline shipped in the binary), or a path; and what a
-- missing or unreadable one says. Real cdp processes in scratch repositories that hold
-- no file of the checkout.
local support = require "tests.lua.support"
local script = require "cdp.script"

local q = support.quote
local cdp = support.cdp()
local CDP = cdp:sub(1, 1) == "/" and cdp or (support.sh("pwd"):gsub("%s+$", "") .. "/" .. cdp)

-- cdp ARGS in DIR; returns stdout+stderr and the exit code.
local function run(dir, args)
  return support.sh(("cd %s && %s %s </dev/null"):format(q(dir), q(CDP), args), { may_fail = true })
end

local PIPELINE = [[
return cdp.pipeline {
  name = "%s",
  stages = { { name = "hello", run = function(ctx) ctx.log("hello from %s") end } },
}
]]

describe("cdp.script.locate", function()
  it("finds the shipped pipelines by name, with the text the binary holds", function()
    local names = script.shipped()
    assert.is_true(#names >= 1)
    local found = false
    for _, n in ipairs(names) do found = found or n == "release" end
    assert.is_true(found, "release is not shipped")
    local loc = assert(script.locate("release"))
    assert.are.equal("release", loc.ref)
    assert.are.equal("pipelines/release.lua", loc.path)
    assert.is_nil(loc.file)
    assert.matches("cdp.pipeline", loc.source, 1, true)
    -- The text is the checkout's file: the build embeds what is committed.
    local root = os.getenv("CDP_SOURCE_DIR") or "."
    assert.are.equal(support.read(root .. "/pipelines/release.lua"), loc.source)
  end)

  it("prefers cdp.lua to .cdp/pipeline.lua, in the current directory then the repository root", function()
    local repo = support.git_init()
    support.write(repo .. "/.cdp/pipeline.lua", PIPELINE:format("dot", "dot"))
    support.write(repo .. "/sub/dir/keep", "")
    local out, code = run(repo .. "/sub/dir", "run")
    assert.are.equal(0, code, out)
    assert.matches("hello from dot", out, 1, true)
    support.write(repo .. "/cdp.lua", PIPELINE:format("top", "top"))
    out = run(repo .. "/sub/dir", "run")
    assert.matches("hello from top", out, 1, true)
    -- The run records the absolute path, so `cdp resume` finds the script from anywhere.
    local status = run(repo, "status --json")
    assert.matches('"pipeline": "top"', status, 1, true)
    local journal = support.sh(("cat %s/.cdp/runs/*/journal.ndjson"):format(q(repo)))
    assert.matches('"script":"' .. repo .. '/cdp.lua"', journal, 1, true)
  end)

  it("runs a shipped pipeline in a repository with no pipeline of its own", function()
    local repo = support.git_init()
    local out, code = run(repo, "run release --dry-run")
    assert.are.equal(0, code, out)
    assert.matches("pipeline release, phase 2", out, 1, true)
    assert.matches("1. activate", out, 1, true)
    out, code = run(repo, "config release")
    assert.are.equal(0, code, out)
    assert.matches("tag_template", out, 1, true)
  end)

  it("says in one line, exit 2, that a pipeline is missing or unreadable", function()
    local repo = support.git_init()
    local function one_line(args, pattern)
      local out, code = run(repo, args)
      assert.are.equal(2, code, out)
      assert.are.equal(1, select(2, out:gsub("\n", "")), "more than one line: " .. out)
      assert.matches(pattern, out)
    end
    one_line("run", "^cdp: no pipeline here: neither cdp%.lua nor %.cdp/pipeline%.lua exists in .*; `cdp init` writes one")
    one_line("config", "^cdp: no pipeline here")
    one_line("check", "^cdp: no pipeline here")
    one_line("run relase", "^cdp: no pipeline 'relase': not a file, and cdp ships .*release.*; did you mean 'release'%?")
    one_line("config pipelines/release.lua", "^cdp: no pipeline pipelines/release%.lua: no such file")
    support.sh("mkdir " .. q(repo .. "/dir.lua"))
    one_line("check dir.lua", "^cdp: cannot read the pipeline dir%.lua: ")
    support.write(repo .. "/broken.lua", "return cdp.pipeline {\n  stages = {\n")
    one_line("run broken.lua", "^cdp: broken%.lua:3: .*")
    local out, code = run(repo, "plan --pipeline nope")
    assert.are.equal(2, code, out)
    assert.matches("no pipeline 'nope'", out, 1, true)
  end)

  it("keeps runs out of git status, and not .cdp/pipeline.lua or .cdp/lua/ overrides", function()
    local repo = support.git_init()
    support.commit(repo, "chore: start")
    support.write(repo .. "/.cdp/pipeline.lua", PIPELINE:format("dot", "dot"))
    local out, code = run(repo, "run")
    assert.are.equal(0, code, out)
    assert.are.equal("?? .cdp/pipeline.lua", support.git(repo, "status", "--porcelain", "--untracked-files=all"))
    support.write(repo .. "/.cdp/lua/team/notes.lua", "return {}")
    assert.are.equal("?? .cdp/lua/team/notes.lua\n?? .cdp/pipeline.lua",
      support.git(repo, "status", "--porcelain", "--untracked-files=all"))
    for _, path in ipairs { ".cdp/runs", ".cdp/lock", ".cdp/.gitignore", ".cdp/events.jsonl" } do
      support.sh(("git -C %s check-ignore -q %s"):format(q(repo), path))
    end
    -- The file an older cdp wrote ignored .cdp/lua/ too: it is brought up to date.
    support.write(repo .. "/.cdp/.gitignore",
      "# Made by cdp: runs, release forks and logs are not part of the repository.\n*\n")
    run(repo, "run")
    assert.matches("!/lua/", support.read(repo .. "/.cdp/.gitignore"), 1, true)
    -- A team's own is theirs.
    support.write(repo .. "/.cdp/.gitignore", "runs/\n")
    run(repo, "run")
    assert.are.equal("runs/\n", support.read(repo .. "/.cdp/.gitignore"))
  end)

  it("resumes a run of a shipped pipeline by its name", function()
    local repo = support.git_init()
    support.commit(repo, "chore: start")
    -- Validate fails on a repository without a workspace; resume must find `release` again.
    local out, code = run(repo, "run release --to validate --no-prompt")
    assert.are.equal(1, code, out)
    local journal = support.sh(("cat %s/.cdp/runs/*/journal.ndjson"):format(q(repo)))
    assert.matches('"script":"release"', journal, 1, true)
    out, code = run(repo, "resume last --no-prompt")
    assert.are.equal(1, code, out)
    assert.matches("stage validate failed", out, 1, true)
    assert.is_nil(out:find("does not record", 1, true))
  end)
end)
