-- cdp stage NAME --run ID [PIPELINE]: one stage of a run whose state travels in git,
-- as one CI job. See cdp.runstate for the state, cdp.run's run.job for the drive.
local cli = require "cdp.cli"

local command = {
  summary = "run one stage of a distributed run (one CI job per stage)",
  usage = "cdp stage NAME --run ID [PIPELINE] [--set KEY=VALUE]... [--phase N] [--approved WHO] [--take-over] [--force]",
  help = [[
Runs stage NAME of run ID, whose state lives on the origin as refs/cdp/runs/ID: the
journal, the finished stages' outputs, the .crate files and the Release Fork's commits.
The job fetches that ref, makes the fork again from the commits it names, runs the
stage as a local run would (same keys, health checks and phases), then pushes its
records with a lease. Each job may run on another machine, in another folder.

  - The first stage of an unknown ID starts the run under that ID, so CI's own run id
    can name it (cdp export github-actions uses RUN_ID-ATTEMPT; an ID whose state is
    missing continues the newest earlier attempt, so re-running failed jobs goes on).
  - A stage that passed in the run already does nothing.
  - Before the stage acts, its job pushes a claim. A second copy of the same job
    started together loses the push, reads the state again and stops without
    running the stage (exit 1). A claim of a job that is gone (a dead process on this
    host, an earlier CI attempt) is taken over; --take-over takes any.
  - The stages before NAME must have passed; their outputs are used as recorded.
  - Gates: a stage whose phase asks for approval before it (or after the stage
    before it) stops the run awaiting approval (exit 3) unless --approved WHO says
    who approved this job, as a CI environment with required reviewers does.

PIPELINE defaults to the script the run was started with. The state is kept on the
remote the `remote` setting names (default origin), pushed with git_token.

Options:
  --run ID         the run (default $CDP_RUN): letters, digits, '.', '_' and '-'
  --set KEY=VAL    override a setting (after CDP_<KEY> environment variables)
  --phase N        0-3; default the run's
  --approved WHO   record WHO as approving this job's gates (a protected environment)
  --take-over      run the stage even if another job's claim on it looks alive
  --force          run the stage even if it passed with the same key

Examples:
  cdp stage activate --run 4242-1 cdp.lua     the first job: starts run 4242-1
  cdp stage test --run 4242-1                 the next job, on another machine
  cdp stage publish --run 4242-1 --approved "$GITHUB_ACTOR"

]] .. cli.EXIT_HELP,
}

command.SPEC = { ["--run"] = "value", ["--set"] = "list", ["--phase"] = "value", ["--approved"] = "value",
  ["--take-over"] = "flag", ["--force"] = "flag", ["--no-prompt"] = "flag" }

local function fail(msg)
  io.stderr:write("cdp: ", msg, "\n")
  return cli.EXIT.failed
end

-- The remote and push credentials a store of run states uses, from the effective settings.
local function store_options(root, effective)
  local function value(k)
    return effective[k] and effective[k].value
  end
  local token = value("git_token")
  return { root = root, remote = value("remote") or "origin",
    credentials = type(token) == "string" and token ~= "" and { token = token, username = value("git_username") or "x-access-token" } or nil }
end
command.store_options = store_options

-- The same before any pipeline is loaded: CDP_REMOTE (or origin) and CDP_GIT_TOKEN.
function command.env_store_options(root)
  local proc = require "cdp.proc"
  local function env(k)
    local v = proc.getenv(k)
    return v ~= "" and v or nil
  end
  return store_options(root, { remote = { value = env("CDP_REMOTE") }, git_token = { value = env("CDP_GIT_TOKEN") },
    git_username = { value = env("CDP_GIT_USERNAME") } })
end

-- The state of run ID on the store: head oid (or false), and the ID it is under: a CI
-- re-run (RUN-ATTEMPT) whose ID has no state continues the newest earlier attempt.
function command.find_state(store, id, out)
  local head, err, code = store:fetch(id)
  if head == nil then
    return nil, err, code
  end
  local base, attempt = id:match("^(.-)%-(%d+)$")
  attempt = tonumber(attempt)
  if head == false and base and attempt and attempt > 1 then
    for k = attempt - 1, 1, -1 do
      local earlier = ("%s-%d"):format(base, k)
      local h = store:fetch(earlier)
      if h then
        if out then
          out(("run %s has no state on %s; continuing %s, an earlier attempt of the same CI run")
            :format(id, store.url, earlier))
        end
        return h, earlier
      end
    end
  end
  return head, id
end

-- Load the pipeline and its effective settings: PATH, or the script the run recorded.
local function pipeline_of(path, recorded, root)
  local run_command = require "cdp.commands.run"
  if not path then
    if type(recorded) ~= "string" or recorded == "" then
      cli.usage_error("this run records no pipeline script: name it (cdp stage NAME --run ID PIPELINE)", "stage")
    end
    path = recorded
    local rel = path:sub(1, #root + 1) == root .. "/" and path:sub(#root + 2) or path
    path = rel
  end
  return run_command.load(path), path
end

-- The fork artifact Activate recorded in the derived state ST, or nil.
local function recorded_fork(st)
  for _, s in ipairs(st.stages) do
    if type(s.outputs) == "table" and type(s.outputs.fork) == "table" then
      return s.outputs.fork
    end
  end
end

-- The first stage of the derived state ST that has not passed, by index in P.
local function first_unfinished(p, st)
  local state = {}
  for _, s in ipairs(st and st.stages or {}) do
    state[s.name] = s.state
  end
  for i, stage in ipairs(p.stages) do
    if state[stage.name] ~= "passed" and state[stage.name] ~= "cached" then
      return i
    end
  end
end

function command.run(args)
  local o, positional = require("cdp.commands.run").parse(args, command.SPEC, "stage")
  local name, path = positional[1], positional[2]
  if not name or #positional > 2 then
    cli.usage_error("cdp stage needs a stage NAME, --run ID and at most one PIPELINE", "stage")
  end
  return command.drive(o, name, path)
end

-- Run stage NAME of run O.run (options O as cdp stage parses them) or, with no NAME,
-- every stage from the first that has not passed to the last (cdp resume of a
-- distributed run). PATH: the pipeline script, or nil for the recorded one.
function command.drive(o, name, path)
  local run = require "cdp.run"
  local journal = require "cdp.journal"
  local runstate = require "cdp.runstate"
  local settings = require "cdp.settings"
  if not o.run and os.getenv("CDP_RUN") and os.getenv("CDP_RUN") ~= "" then
    o.run = os.getenv("CDP_RUN")
  end
  if not o.run then
    cli.usage_error("cdp stage needs --run ID (in CI, its own run id)", "stage")
  end
  if not runstate.valid_id(o.run) then
    cli.usage_error(("--run %s: a run id is letters, digits, '.', '_' and '-', starting with a letter or digit")
      :format(o.run), "stage")
  end
  local sets, serr = settings.parse_sets(o.set)
  if not sets then
    cli.usage_error(serr, "stage")
  end
  local phase = require("cdp.commands.run").parse_phase(o.phase, "stage")
  local root = run.root()
  local effective
  if path then
    local p0 = require("cdp.commands.run").load(path)
    local eerr
    effective, eerr = p0:resolve_settings(sets)
    if not effective then
      cli.usage_error(eerr, "stage")
    end
  end
  local store, err = runstate.open(effective and store_options(root, effective) or command.env_store_options(root))
  if not store then
    if o.existing then -- cdp resume of a run that is not here: there is nowhere else to look
      cli.usage_error(("no run '%s' under %s"):format(o.run, run.runs_dir(root)), "resume")
    end
    return fail(err)
  end
  local lock, lerr = run.lock(root, ("stage %s of run %s"):format(name, o.run))
  if not lock then
    store:close()
    return fail(lerr)
  end
  local function give_up(msg)
    lock:close()
    store:close()
    return fail(msg)
  end
  local head, id = command.find_state(store, o.run, print)
  if head == nil then
    return give_up(id)
  end
  if not head and o.existing then
    lock:close()
    store:close()
    cli.usage_error(("no run '%s' under %s nor on %s (%s)"):format(o.run, run.runs_dir(root), store.url,
      runstate.ref(o.run)), "resume")
  end
  local snap, st
  if head then
    snap, err = store:read(head)
    if not snap then
      return give_up(err)
    end
    st = journal.derive(snap.entries)
  end
  local p
  p, path = pipeline_of(path, st and st.script, root)
  local index, last
  if name then
    index = p.by_name[name] and p.by_name[name].index
    last = index
  else
    index, last = first_unfinished(p, st), #p.stages
    if not index then
      lock:close()
      store:close()
      print(("run %s is already done"):format(id))
      return cli.EXIT.ok
    end
    name = p.stages[index].name
  end
  if not index then
    cli.usage_error(("no stage '%s' in pipeline %s (stages: %s)"):format(name, p.name, table.concat(p:names(), ", ")),
      "stage")
  end
  if not head and index ~= 1 then
    return give_up(("run %s has no state on %s (%s): its first stage starts it (cdp stage %s --run %s)")
      :format(id, store.url, runstate.ref(id), p.stages[1].name, id))
  end
  if st then
    if st.pipeline ~= p.name then
      return give_up(("run %s is a run of pipeline %s, not %s"):format(id, tostring(st.pipeline), p.name))
    end
    for _, s in ipairs(st.stages) do
      if s.name == name and s.state == "running" then
        local claim
        for _, e in ipairs(snap.entries) do
          if e.event == "stage.started" and e.stage == name then
            claim = e
          end
        end
        local who = runstate.describe_job(claim and claim.job)
        if not (o.take_over or runstate.claim_is_dead(claim, runstate.job_identity())) then
          return give_up(("stage %s of run %s is running in another job (%s, started %s); if that job is gone, "
            .. "run this one with --take-over"):format(name, id, who, tostring(claim and claim.job and claim.job.time or "earlier")))
        end
        print(("stage %s of run %s: taking over from %s, which is gone"):format(name, id, who))
      end
    end
  end
  local dir = run.runs_dir(root) .. "/" .. id
  if snap then
    store:materialize(snap, dir)
    local fork = recorded_fork(st)
    if fork then
      local ok, ferr = pcall(store.rebuild_fork, store, snap, fork.path, fork)
      if not ok then
        return give_up(tostring(ferr))
      end
    end
  else
    -- a folder left by a run of this id that never reached the remote
    require("cdp.fs").remove(dir, { recursive = true })
  end
  local outcome = run.job(p, {
    root = root, id = id, lock = lock, sync = runstate.sync(store, id, dir, head, 0), new = not head,
    remote = store.url, script = path, sets = sets, phase = phase or (st and st.phase) or nil,
    force = o.force and { [name] = true } or {}, approved = o.approved, first = index, last = last,
    interactive = o.no_prompt and false or nil,
  })
  store:close()
  return cli.outcome_code(outcome)
end

return command
