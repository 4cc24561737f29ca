-- What the Release Plan specs share: making a plan that must succeed, and
-- reading its entries back.
local support = require "tests.lua.support"
-- busted's assert lives in each spec's environment; a module takes it from luassert
local assert = require "luassert"

local ps = {}

-- A plan of fixture workspace W that must succeed; its entries by name.
function ps.make(w, opts)
  local p, err = w:plan(opts)
  assert(p, err)
  return p, p.by_name
end

-- ENTRY is at CURRENT in its manifest and goes to NEXT with BUMP.
function ps.expect(entry, current, next, bump)
  assert.are.same({ current = current, next = next, bump = bump },
    { current = entry.current, next = entry.next, bump = entry.bump }, entry.name)
end

function ps.summaries(entry)
  local out = {}
  for i, c in ipairs(entry.commits) do
    out[i] = c.summary
  end
  return out
end

function ps.reason_kinds(entry)
  local out = {}
  for i, r in ipairs(entry.reasons) do
    out[i] = r.kind
  end
  return out
end

-- The reason of KIND in ENTRY (the first), or nil.
function ps.reason(entry, kind)
  for _, r in ipairs(entry.reasons) do
    if r.kind == kind then
      return r
    end
  end
  return nil
end

-- `cdp ARGS`: stdout only, and the exit status.
function ps.cdp(args)
  return support.sh(support.quote(support.cdp()) .. " " .. args .. " 2>/dev/null", { may_fail = true })
end

-- `cdp ARGS` with stderr folded in.
function ps.cdp_all(args)
  return support.sh(support.quote(support.cdp()) .. " " .. args .. " 2>&1", { may_fail = true })
end

return ps
