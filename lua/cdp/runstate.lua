-- The state of a distributed run, carried in git so that each stage can run as a
-- job on another machine. On the origin, refs/cdp/runs/<ID> is a commit whose tree
-- holds
--   journal.ndjson    the run's journal; every path under the repository root is
--                     written "${root}/...", so a job in another folder reads its own
--   fork.json         the Release Fork's refs: { branch = name, refs = { ref = oid } }
--   crates/<file>     the .crate files Package built: Publish elsewhere uploads the
--                     bytes that were packaged and checked
--   logs/<stage>.log  what each stage logged
-- Its first parent is the state before; the others are the fork's commits, so one
-- fetch of the ref brings everything a job needs to make the fork again.
--
-- Every update is pushed with a lease on the state it was made from: of two jobs that
-- race, one push loses, reads the state again, and either appends its records to the
-- other's or, when the other ran the same stage, stops (Sync below). Before a stage
-- runs its job pushes a claim (the stage.started entry), so two copies of one job run
-- the stage once.
local fs = require "cdp.fs"
local git = require "cdp.git"
local json = require "cdp.json"
local journal = require "cdp.journal"
local proc = require "cdp.proc"

local runstate = {}

runstate.PREFIX = "refs/cdp/runs/"
runstate.ROOT = "${root}"

-- An ID names a ref: CI's own run id ("1234-1"), or cdp's.
function runstate.valid_id(id)
  return type(id) == "string" and id:match("^[%w][%w._-]*$") ~= nil and not id:find("..", 1, true)
    and not id:match("%.lock$") and #id <= 100
end

function runstate.ref(id)
  return runstate.PREFIX .. id
end

local function map_strings(value, fn)
  if type(value) == "string" then
    return fn(value)
  elseif type(value) ~= "table" then
    return value
  end
  local out = setmetatable({}, getmetatable(value))
  for k, v in pairs(value) do
    out[k] = map_strings(v, fn)
  end
  return out
end

-- VALUE with every string that is ROOT or a path under it written "${root}...":
-- what is recorded for other machines, and what stage keys hash.
function runstate.portable(value, root)
  local n = #root
  return map_strings(value, function(s)
    if s:sub(1, n) == root and (#s == n or s:sub(n + 1, n + 1) == "/") then
      return runstate.ROOT .. s:sub(n + 1)
    end
    return s
  end)
end

-- The inverse: "${root}..." read on a machine whose repository is at ROOT.
function runstate.localize(value, root)
  local n = #runstate.ROOT
  return map_strings(value, function(s)
    if s:sub(1, n) == runstate.ROOT then
      return root .. s:sub(n + 1)
    end
    return s
  end)
end

-- Who runs a job, as a claim records it: enough to tell a live job from a dead one.
function runstate.job_identity()
  local function env(name)
    local v = proc.getenv(name)
    return v ~= "" and v or nil
  end
  local ci
  if env("GITHUB_ACTIONS") == "true" then
    ci = { system = "github", run = env("GITHUB_RUN_ID"), attempt = tonumber(env("GITHUB_RUN_ATTEMPT") or ""),
      job = env("GITHUB_JOB"),
      url = env("GITHUB_SERVER_URL") and env("GITHUB_REPOSITORY") and env("GITHUB_RUN_ID")
        and ("%s/%s/actions/runs/%s"):format(env("GITHUB_SERVER_URL"), env("GITHUB_REPOSITORY"), env("GITHUB_RUN_ID")) }
  elseif env("GITLAB_CI") == "true" then
    ci = { system = "gitlab", run = env("CI_PIPELINE_ID"), job = env("CI_JOB_NAME"), job_id = env("CI_JOB_ID"),
      url = env("CI_JOB_URL") }
  end
  return { host = proc.hostname(), pid = proc.pid(), user = proc.user(), ci = ci,
    time = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(proc.time())) }
end

-- "pid 123 on build-7 (GitHub run 99 job publish)".
function runstate.describe_job(job)
  if type(job) ~= "table" then
    return "an unknown job"
  end
  local s = ("pid %s on %s"):format(tostring(math.tointeger(job.pid) or job.pid or "?"), tostring(job.host or "?"))
  if type(job.ci) == "table" then
    s = s .. (" (%s run %s job %s)"):format(job.ci.system == "github" and "GitHub" or "GitLab",
      tostring(job.ci.run or "?"), tostring(job.ci.job or "?"))
  end
  return s
end

-- Whether the job that made CLAIM (a stage.started entry) can no longer be running,
-- as seen by the job ME: a process of this host that is gone, or a job of an earlier
-- attempt of the same CI run (CI runs attempts one after another).
function runstate.claim_is_dead(claim, me)
  local job = claim and claim.job
  if type(job) ~= "table" then
    return false
  end
  -- numbers come back from JSON as floats
  local pid = math.tointeger(job.pid)
  if job.host == me.host and pid then
    if pid == me.pid then
      return true
    end
    local alive, _, code = proc.kill(pid, 0)
    if not alive then
      return code == "ESRCH"
    end
    -- A job killed with its runner is a zombie until someone reaps it, and the init of a
    -- container often never does: kill(pid, 0) still succeeds on it.
    local f = io.open(("/proc/%d/stat"):format(pid))
    local stat = f and f:read("a")
    if f then
      f:close()
    end
    local state = stat and stat:match(".*%) (%u)")
    return state == "Z" or state == "X"
  end
  local a, b = job.ci, me.ci
  if type(a) == "table" and type(b) == "table" and a.system == b.system and a.run == b.run
    and tonumber(a.attempt) and tonumber(b.attempt) then
    return tonumber(a.attempt) < tonumber(b.attempt)
  end
  return false
end

---------------------------------------------------------------------------
-- The store: the state's ref in the repository at ROOT and on its remote.

local Store = {}
Store.__index = Store
Store.__name = "cdp.runstate.Store"
function Store:__tostring()
  return ("cdp.runstate.Store (%s)"):format(self.url)
end

-- runstate.open{ root = DIR, remote = "origin" | URL, credentials = { token, username } }
-- -> Store | nil, msg, code
function runstate.open(opts)
  assert(type(opts) == "table" and type(opts.root) == "string", "runstate.open: root expected")
  local repo, err, code = git.open(opts.root)
  if not repo then
    return nil, ("%s is not a git repository: %s"):format(opts.root, err), code
  end
  local remote = opts.remote or "origin"
  local url
  for _, r in ipairs(repo:remotes()) do
    if r.name == remote then
      url = r.url
    end
  end
  if not url and not remote:find("[:/]") then
    repo:close()
    return nil, ("the repository at %s has no remote '%s' to keep the run state on; add one (git remote add %s URL) or set the `remote` setting to a URL")
      :format(opts.root, remote, remote), "ENOREMOTE"
  end
  return setmetatable({ root = opts.root, repo = repo, remote = remote, url = url or remote,
    creds = opts.credentials }, Store)
end

function Store:close()
  if self.repo then
    self.repo:close()
    self.repo = nil
  end
end

-- The state commit of run ID on the remote, fetched: its oid, or false when the remote
-- has no such run.
function Store:fetch(id)
  local ref = runstate.ref(id)
  -- A state fetched before is no evidence: only what the remote has now counts.
  self.repo:reference_delete(ref)
  local ok, err, code = self.repo:fetch(self.remote, { "+" .. ref .. ":" .. ref }, self.creds)
  if not ok then
    return nil, ("cannot read the state of run %s from %s: %s"):format(id, self.url, err), code
  end
  return self.repo:resolve(ref) or false
end

local function blob_files(repo, commit, dir)
  local out = {}
  for _, e in ipairs(repo:tree_list(commit, dir) or {}) do
    if e.type == "blob" then
      out[e.name] = e.oid
    end
  end
  return out
end

-- What state commit OID holds, with paths read for this machine:
-- { commit, entries, fork = {branch, refs} | nil, crates = {file = oid}, logs = {file = oid} }
function Store:read(oid)
  local text, err, code = self.repo:read_blob(oid, "journal.ndjson")
  if not text then
    return nil, ("the run state %s on %s has no journal: %s"):format(oid, self.url, err), code
  end
  local entries = journal.parse(text)
  for i, e in ipairs(entries) do
    entries[i] = runstate.localize(e, self.root)
  end
  local fork
  local ftext = self.repo:read_blob(oid, "fork.json")
  if ftext then
    fork = json.decode(ftext)
  end
  return { commit = oid, entries = entries, fork = type(fork) == "table" and fork or nil,
    crates = blob_files(self.repo, oid, "crates"), logs = blob_files(self.repo, oid, "logs") }
end

-- Write the journal ENTRIES to the run folder DIR (replacing what is there).
local function write_journal(dir, entries)
  local lines = {}
  for i, e in ipairs(entries) do
    lines[i] = json.encode(e) .. "\n"
  end
  assert(fs.mkdir(dir, { parents = true }))
  assert(fs.write(dir .. "/" .. journal.FILE, table.concat(lines)))
end

-- Make the run folder DIR what the state SNAP says: its journal, .crate files and logs.
function Store:materialize(snap, dir)
  write_journal(dir, snap.entries)
  for sub, files in pairs { crates = snap.crates, logs = snap.logs } do
    assert(fs.mkdir(dir .. "/" .. sub, { parents = true }))
    for name in pairs(files) do
      local content = assert(self.repo:read_blob(snap.commit, sub .. "/" .. name))
      assert(fs.write(dir .. "/" .. sub .. "/" .. name, content))
    end
  end
end

-- The Release Fork recorded in SNAP, made again at PATH when it is not there with its
-- refs: a clone of this repository (which has the fork's commits: they came with the
-- state) on the fork's branch. ACTIVATE is the fork artifact Activate recorded.
function Store:rebuild_fork(snap, path, activate)
  local fork = snap.fork
  if not fork or type(fork.refs) ~= "table" then
    return true
  end
  local existing = git.open(path)
  if existing then
    local same = true
    for name, oid in pairs(fork.refs) do
      same = same and existing:resolve(name) == oid
    end
    existing:close()
    if same then
      return true
    end
  end
  local release = require "cdp.release"
  local identity = self.repo:signature()
  local head = fork.refs["refs/heads/" .. fork.branch] or activate.commit
  local repo = release.make_fork(self.root, path, { branch = fork.branch, commit = head,
    origin = activate.origin or nil, identity = identity, refs = fork.refs })
  repo:close()
  return true
end

-- The refs of the fork at PATH that belong to run ID, fetched into this repository
-- (so a state commit can name them as parents): { ref = oid }.
function Store:fork_refs(id, path, branch)
  local fork = git.open(path)
  if not fork then
    return nil
  end
  local refs = {}
  for _, r in ipairs(fork:references("refs/cdp/" .. id .. "/*")) do
    refs[r.name] = r.target
  end
  local head = branch and fork:resolve("refs/heads/" .. branch)
  if head then
    refs["refs/heads/" .. branch] = head
  end
  fork:close()
  local specs = {}
  for name in pairs(refs) do
    specs[#specs + 1] = ("+%s:refs/cdp/forks/%s/%s"):format(name, id, name:gsub("^refs/", ""))
  end
  table.sort(specs)
  if #specs > 0 then
    local ok, err, code = self.repo:fetch(path, specs)
    if not ok then
      return nil, ("cannot read the release fork %s: %s"):format(path, err), code
    end
  end
  return refs
end

local function files_tree(repo, dir)
  local entries = {}
  for _, name in ipairs(fs.exists(dir) and assert(fs.list(dir)) or {}) do
    local content = fs.read(dir .. "/" .. name)
    if content then
      entries[#entries + 1] = { name = name, oid = assert(repo:blob_create(content)) }
    end
  end
  if #entries == 0 then
    return nil
  end
  return assert(repo:tree_create(entries))
end

-- A state commit for run ID on BASE (an oid, or false for the first): the journal
-- ENTRIES (as this machine has them), the .crate files and logs in the run folder
-- DIR, and the fork's refs. Returns its oid, set as the local refs/cdp/runs/<ID>.
function Store:commit(id, dir, entries, base, message)
  local repo = self.repo
  local lines = {}
  for i, e in ipairs(entries) do
    lines[i] = json.encode(runstate.portable(e, self.root)) .. "\n"
  end
  local tree = {
    { name = "journal.ndjson", oid = assert(repo:blob_create(table.concat(lines))) },
    { name = "README", oid = assert(repo:blob_create(("The state of cdp run %s: `cdp status --run %s` shows it, "
      .. "`cdp stage NAME --run %s` runs its next stage.\n"):format(id, id, id))) },
  }
  local parents = {}
  if base then
    parents[1] = base
  end
  local branch = "cdp/release/" .. id
  local refs, err, code = self:fork_refs(id, dir .. "/fork", branch)
  if err then
    return nil, err, code
  end
  if not refs and base then
    -- no fork here (cdp approve): the fork stays as the state before has it
    local kept = repo:tree_entry(base, "fork.json")
    if kept then
      tree[#tree + 1] = { name = "fork.json", oid = kept }
    end
  end
  if refs then
    tree[#tree + 1] = { name = "fork.json", oid = assert(repo:blob_create(json.encode { branch = branch,
      refs = json.object(refs) } .. "\n")) }
    local seen = { [base or ""] = true }
    local names = {}
    for name in pairs(refs) do
      names[#names + 1] = name
    end
    table.sort(names)
    for _, name in ipairs(names) do
      if not seen[refs[name]] then
        seen[refs[name]] = true
        parents[#parents + 1] = refs[name]
      end
    end
  end
  for _, sub in ipairs { "crates", "logs" } do
    local t = files_tree(repo, dir .. "/" .. sub)
    if t then
      tree[#tree + 1] = { name = sub, oid = t, type = "tree" }
    end
  end
  local sig = repo:signature() or { name = "cdp", email = "cdp@localhost" }
  return repo:commit_index { message = ("cdp run %s: %s\n"):format(id, message), tree = assert(repo:tree_create(tree)), parents = parents,
    update_ref = false, author = sig, committer = sig }
end

-- Push the local state of run ID (commit OID) to the remote, which must still be at
-- BASE (false: have no state for ID). nil, msg, "ESTALE" when another push came first.
function Store:push(id, oid, base)
  local ref = runstate.ref(id)
  local opts = { lease = { [ref] = base or false } }
  for k, v in pairs(self.creds or {}) do
    opts[k] = v
  end
  assert(self.repo:reference_set(ref, oid, "cdp: run state", { force = true }))
  return self.repo:push(self.remote, { ref .. ":" .. ref }, opts)
end

---------------------------------------------------------------------------
-- Sync: what a job's drive calls to keep the remote state current. It knows the
-- state it started from (BASE, and how many journal entries it had); everything the
-- writer appended since is this job's own.

local Sync = {}
Sync.__index = Sync

-- runstate.sync(store, id, dir, base_oid_or_false, base_count)
function runstate.sync(store, id, dir, base, count)
  return setmetatable({ store = store, id = id, dir = dir, base = base, count = count }, Sync)
end

local TOUCHES = { ["stage.started"] = "started", ["stage.passed"] = "passed", ["stage.cached"] = "passed",
  ["stage.failed"] = "failed", ["stage.interrupted"] = "interrupted" }

-- Why the entries THEIRS (pushed by another job since our base) conflict with MINE, or nil.
local function conflict(theirs, mine)
  local touched = {}
  for _, e in ipairs(mine) do
    if TOUCHES[e.event] then
      touched[e.stage] = true
    end
  end
  for _, e in ipairs(theirs) do
    if TOUCHES[e.event] and touched[e.stage] then
      return e
    end
  end
  if #theirs > 0 and (theirs[#theirs].event == "run.finished") then
    return theirs[#theirs]
  end
end

-- Replace the writer's entries (and the journal file) with ENTRIES.
local function reset_writer(writer, dir, entries)
  write_journal(dir, entries)
  writer.entries = {}
  writer.seq = 0
  for i, e in ipairs(entries) do
    writer.entries[i] = json.decode(json.encode(e))
    writer.seq = math.max(writer.seq, math.tointeger(e.seq) or 0)
  end
end

-- Push what WRITER appended since the base, as one state commit (MESSAGE), rebasing it
-- on whatever other jobs pushed meanwhile. Returns true, or nil, msg, code; code
-- "ECONFLICT" when another job touched the same stage (its records are kept, ours
-- dropped, and the local journal is the remote's again).
function Sync:push(writer, message)
  for _ = 1, 8 do
    local mine = {}
    for i = self.count + 1, #writer.entries do
      mine[#mine + 1] = writer.entries[i]
    end
    if #mine == 0 and self.base then
      return true
    end
    if not message then
      local last = mine[#mine]
      message = last and last.stage and ("%s %s"):format(last.stage, (last.event:gsub("^stage%.", "")))
        or last and last.event or "records"
    end
    local oid, cerr, ccode = self.store:commit(self.id, self.dir, writer.entries, self.base, message)
    if not oid then
      return nil, cerr, ccode
    end
    local ok, err, code = self.store:push(self.id, oid, self.base)
    if ok then
      self.base, self.count = oid, #writer.entries
      return true
    elseif code ~= "ESTALE" then
      return nil, ("cannot push the state of run %s to %s: %s"):format(self.id, self.store.url, err), code
    end
    local head, ferr, fcode = self.store:fetch(self.id)
    if not head then
      return nil, ferr or ("the state of run %s is gone from %s"):format(self.id, self.store.url), fcode or "ESTALE"
    end
    local snap, rerr, rcode = self.store:read(head)
    if not snap then
      return nil, rerr, rcode
    end
    local theirs = {}
    for i = self.count + 1, #snap.entries do
      theirs[#theirs + 1] = snap.entries[i]
    end
    local clash = conflict(theirs, mine)
    if clash then
      self.store:materialize(snap, self.dir)
      reset_writer(writer, self.dir, snap.entries)
      self.base, self.count = head, #snap.entries
      local what = clash.event == "run.finished" and "finished the run"
        or clash.event == "stage.started" and ("started stage %s"):format(clash.stage)
        or ("recorded stage %s as %s"):format(clash.stage, TOUCHES[clash.event])
      return nil, ("another job (%s) %s of run %s first; this job leaves it to that one")
        :format(runstate.describe_job(clash.job), what, self.id), "ECONFLICT"
    end
    local merged = {}
    local seq = 0
    for i, e in ipairs(snap.entries) do
      merged[i] = e
      seq = math.max(seq, math.tointeger(e.seq) or 0)
    end
    for _, e in ipairs(mine) do
      local copy = json.decode(json.encode(e))
      seq = seq + 1
      copy.seq = seq
      merged[#merged + 1] = copy
    end
    reset_writer(writer, self.dir, merged)
    self.base, self.count = head, #snap.entries
  end
  return nil, ("cannot push the state of run %s to %s: other jobs kept pushing first"):format(self.id, self.store.url),
    "ESTALE"
end

return runstate
