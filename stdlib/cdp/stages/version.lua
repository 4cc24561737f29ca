-- Version: turn the change set since the last releases into the Release Plan, and
-- write it into the fork as one commit: each planned crate's version, and every
-- requirement on a bumped crate that no longer admits its new version. Manifests are
-- edited with cdp.manifest, which changes only the bytes of the values it touches;
-- a tracked Cargo.lock is refreshed (offline when cargo_offline is set). A crate
-- released at the version its manifest already names (a first release) needs no edit.
local fs = require "cdp.fs"
local git = require "cdp.git"
local manifest = require "cdp.manifest"
local proc = require "cdp.proc"
local release = require "cdp.release"
local workspace = require "cdp.workspace"

local version = {
  name = "version",
  needs = { "fork" },
  gives = { "plan", "versioned" },
  modifies_fork = true,
  uses_policy = true, -- the pipeline's policy is part of this stage's key
  settings = release.settings { "tag_template", "cargo_offline", "prerelease", "versions", "registry_index" },
}

-- The Release Plan for the fork's commit, as a plain table (what the journal keeps).
version.make_plan = release.make_plan

-- Edits per manifest file: { [path] = { version =, workspace =, deps = { [crate] = { [from] = to } } } }.
-- Requirements inherited from [workspace.dependencies] are rewritten there.
local function edits_for(ws, table_plan, root_manifest)
  local edits = {}
  local function edit(path)
    edits[path] = edits[path] or { deps = {} }
    return edits[path]
  end
  for _, c in ipairs(release.planned(table_plan)) do
    local m = ws.by_name[c.name]
    if m.inherited_version then
      local e = edit(root_manifest)
      if e.version and e.version ~= c.next then
        error(("%s and another crate inherit [workspace.package] version but the plan gives them "
          .. "different versions (%s, %s); put them in one lockstep group"):format(m.name, e.version, c.next), 0)
      end
      e.version, e.workspace = c.next, true
    else
      edit(m.manifest_path).version = c.next
    end
  end
  for _, c in ipairs(table_plan.crates) do
    local m = ws.by_name[c.name]
    for _, r in ipairs(c.requirements or {}) do
      if r.to and r.to ~= r.from then
        -- An inherited requirement lives in [workspace.dependencies].
        local deps = edit(r.inherited and root_manifest or m.manifest_path).deps
        deps[r.dependency] = deps[r.dependency] or {}
        deps[r.dependency][r.from] = r.to
      end
    end
  end
  return edits
end

-- The manifest edits the plan asks for, not written: { {path, rel, text, changes} }
-- by path, for each file whose text changes (changes: cdp.manifest's, each {path, from, to}).
function version.edits(fork, p, table_plan)
  local root = fs.realpath(fork.path)
  local edits = edits_for(p.workspace, table_plan, root .. "/Cargo.toml")
  local paths = {}
  for path in pairs(edits) do
    paths[#paths + 1] = path
  end
  table.sort(paths)
  local out = {}
  for _, path in ipairs(paths) do
    local text = assert(fs.read(path, { beneath = root }))
    local e = edits[path]
    local new_text, changes_or_err = manifest.edit(text, path, {
      version = e.version, workspace = e.workspace, deps = e.deps })
    if not new_text then
      error(changes_or_err, 0)
    end
    if new_text ~= text then
      out[#out + 1] = { path = path, root = root, rel = workspace.relative(path, root), text = new_text,
        changes = changes_or_err }
    end
  end
  return out
end

local function edit_lines(edit)
  local out = {}
  for _, c in ipairs(edit.changes) do
    out[#out + 1] = ("%s: %s %s -> %s"):format(edit.rel, table.concat(c.path, "."), c.from, c.to)
  end
  return out
end

-- For a dry run: the plan, and each manifest edit Version would make (nothing written).
function version.preview(ctx)
  local p, table_plan, fork = release.preview_plan(ctx)
  local planned = release.planned(table_plan)
  if #planned == 0 then
    return { "plan: nothing to release" }
  end
  local out = { "plan:" }
  for _, c in ipairs(planned) do
    out[#out + 1] = ("  %s %s -> %s (%s)"):format(c.name, c.current, c.next, c.bump)
  end
  for _, e in ipairs(version.edits(fork, p, table_plan)) do
    for _, line in ipairs(edit_lines(e)) do
      out[#out + 1] = "edit " .. line
    end
  end
  return out
end

function version.run(ctx, inputs)
  local fork = inputs.fork
  -- Start from the fork's commit whatever an interrupted attempt left behind.
  local repo = release.fork_at(fork, fork.commit)

  local p, table_plan = version.make_plan(ctx, fork)
  local planned = release.planned(table_plan)
  for _, c in ipairs(planned) do
    ctx.log(("%s %s -> %s (%s)"):format(c.name, c.current, c.next, c.bump))
  end
  if #planned == 0 then
    ctx.log(release.setting(ctx, "versions") == "manifest"
      and "nothing to release: every crate's manifest version is released already (tagged and in the registry)"
      or "nothing to release: no crate changed since its last release")
    repo:close()
    return { plan = table_plan, versioned = { commit = fork.commit, path = fork.path, files = {} } }
  end

  local changed = {}
  for _, e in ipairs(version.edits(fork, p, table_plan)) do
    -- Beneath the fork and never through a link: a manifest path cargo reports for
    -- a linked crate directory must not become a write outside the repository.
    assert(fs.write(e.path, e.text, { beneath = e.root }))
    changed[#changed + 1] = e.rel
    for _, line in ipairs(edit_lines(e)) do
      ctx.log(line)
    end
  end

  if #changed == 0 then
    -- Every planned crate is released at the version its manifest names already.
    ctx.log("every planned version is in the manifests already: no version commit")
    repo:close()
    return { plan = table_plan, versioned = { commit = fork.commit, path = fork.path, files = {} } }
  end

  -- Only a Cargo.lock the repository tracks is part of the release commit.
  if repo:tree_entry(fork.commit, "Cargo.lock") then
    local argv = { "cargo", "update", "--workspace" }
    local res, err = proc.run { argv = argv, cwd = fork.path, timeout = 300, env = release.cargo_env(ctx) }
    if not res or res.code ~= 0 then
      error(release.cargo_failure(ctx, ("cannot refresh Cargo.lock with `%s`"):format(table.concat(argv, " ")),
        res, err), 0)
    end
    changed[#changed + 1] = "Cargo.lock"
  end

  assert(repo:add(changed))
  local commit = assert(repo:commit_index { message = release.summary(planned) .. "\n" })
  assert(repo:reference_set(("refs/cdp/%s/version"):format(ctx.run), commit, "cdp: version", { force = true }))
  ctx.log(("version commit %s on %s"):format(commit:sub(1, 12), fork.branch))
  repo:close()
  return { plan = table_plan, versioned = { commit = commit, path = fork.path, files = changed } }
end

-- Recorded outputs hold while the fork still has the version commit.
function version.verify(_, outputs)
  return release.fork_has(outputs.versioned.path, outputs.versioned.commit)
end

return version
