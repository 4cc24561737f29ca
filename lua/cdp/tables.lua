-- Small helpers on Lua tables that several modules need alike. Lua 5.4 walks a
-- table in an order that changes from one process to the next, so whatever
-- cdp writes or compares from a table's keys goes through sorted_keys.
local tables = {}

-- The keys of T as a list, sorted by LESS (a function (a, b) -> boolean), or
-- by `<` when it is nil (all keys then strings, or all numbers).
function tables.sorted_keys(t, less)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys, less)
  return keys
end

return tables
