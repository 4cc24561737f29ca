-- What keeps a workspace's crates from being published, found before anything is
-- written: cargo finds both of these only while packaging, and says "no matching
-- package named `x` found", naming neither the crate that cannot be published nor why.
--
--   publishable.problems(ws) -> { message, ... } (empty when there are none)
--
-- 1. A published crate that needs a `publish = false` member: a normal or build
--    dependency, or a dev-dependency that carries a version (cargo keeps those in the
--    published manifest; one with a path only is left out of the package).
-- 2. A cycle through a dev-dependency that carries a version: a -[dev]-> b -> a means
--    b must be in the registry before a is packaged and a before b; cargo can order
--    neither.
-- WS is a cdp.workspace model. Only dependencies on members count: the registry's
-- crates are the registry's business.
local workspace = require "cdp.workspace"

local publishable = {}

-- M's manifest as the repository names it (crates/x/Cargo.toml).
local function manifest(ws, m)
  return workspace.relative(m.manifest_path, ws.repo_root or ws.root) or m.manifest_path
end

-- The edges cargo needs published first: normal and build dependencies on members, and
-- dev-dependencies on members that carry a version ("*" is cargo's word for none).
local function needed(m, ws)
  local out = {}
  for _, d in ipairs(m.deps) do
    local target = d.member and ws.by_name[d.name]
    if target and target.name ~= m.name and (d.kind ~= "dev" or (d.req and d.req ~= "*")) then
      out[#out + 1] = { to = target, kind = d.kind }
    end
  end
  return out
end

local function kind_word(kind)
  return kind == "dev" and "dev-dependency" or kind == "build" and "build-dependency" or "dependency"
end

local function on_unpublished(ws, problems)
  for _, m in ipairs(ws.members) do
    if m.publish ~= false then
      for _, e in ipairs(needed(m, ws)) do
        if e.to.publish == false then
          problems[#problems + 1] = ("%s has a %s on %s (%s), which has publish = false (%s): a published crate "
            .. "can need only published crates; publish %s, or %s"):format(m.name, kind_word(e.kind), e.to.name,
            manifest(ws, m), manifest(ws, e.to), e.to.name,
            e.kind == "dev" and "drop the dev-dependency's version (a path alone is left out of the package)"
              or "drop the dependency")
        end
      end
    end
  end
end

-- Every elementary cycle is not needed: one per strongly connected group that holds a
-- dev edge is enough to name. Depth-first from each crate in name order; the first
-- cycle back to the start that uses a dev edge is reported, and its crates are not
-- started from again.
local function dev_cycles(ws, problems)
  local edges, reported = {}, {}
  for _, m in ipairs(ws.members) do
    if m.publish ~= false then
      edges[m.name] = {}
      for _, e in ipairs(needed(m, ws)) do
        if e.to.publish ~= false then
          table.insert(edges[m.name], { to = e.to.name, dev = e.kind == "dev" })
        end
      end
    end
  end
  for _, m in ipairs(ws.members) do
    local start = m.name
    if edges[start] and not reported[start] then
      local path, on_path, found = {}, {}, nil
      local function visit(n, via_dev)
        on_path[n] = true
        for _, e in ipairs(edges[n]) do
          if found then return end
          path[#path + 1] = e
          if e.to == start and (via_dev or e.dev) then
            found = { table.unpack(path) }
          elseif not on_path[e.to] and not reported[e.to] and edges[e.to] then
            visit(e.to, via_dev or e.dev)
          end
          path[#path] = nil
        end
        on_path[n] = nil
      end
      visit(start, false)
      if found then
        local shown, dev = { start }, nil
        for _, e in ipairs(found) do
          shown[#shown + 1] = (e.dev and "-[dev]-> " or "-> ") .. e.to
          reported[e.to] = true
        end
        for i, e in ipairs(found) do
          if e.dev and not dev then
            dev = { from = i == 1 and start or found[i - 1].to, to = e.to }
          end
        end
        problems[#problems + 1] = ("a dependency cycle through a dev-dependency with a version: %s; cargo "
          .. "cannot publish either crate first — drop the version of %s's dev-dependency on %s (keep the path: "
          .. "cargo then leaves it out of the package) in %s"):format(table.concat(shown, " "), dev.from, dev.to,
          manifest(ws, ws.by_name[dev.from]))
      end
    end
  end
end

function publishable.problems(ws)
  local problems = {}
  on_unpublished(ws, problems)
  dev_cycles(ws, problems)
  return problems
end

return publishable
