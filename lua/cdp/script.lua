-- Loading user scripts (pipelines, policies, ad-hoc scripts).
--
-- A script runs in an environment of its own: its globals do not leak into
-- cdp's, and reading a global that exists nowhere is an error naming the
-- script's file and line. That catches typos (`stages = { tset }`) at the
-- line that makes them; it is not a sandbox, since scripts are trusted.
local script = {}

function script.env()
  return setmetatable({}, {
    __index = function(_, key)
      local value = _G[key]
      if value == nil then
        error(("unknown global '%s'"):format(tostring(key)), 2)
      end
      return value
    end,
  })
end

-- Load PATH as text (never bytecode) in a fresh environment.
-- Returns the chunk and its environment, or nil and a message naming the file.
function script.load(path, env)
  env = env or script.env()
  local chunk, err = loadfile(path, "t", env)
  if not chunk then
    return nil, err
  end
  return chunk, env
end

-- Load and run PATH with ARGS; raises on error (the host adds the traceback).
function script.run(path, ...)
  local chunk, err = script.load(path)
  if not chunk then
    error(err, 0)
  end
  return chunk(...)
end

return script
