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

---------------------------------------------------------------------------
-- Pipelines: a file, one shipped in the binary, or the project's own

-- The project's own pipeline, where `cdp init` writes it, in the order looked for.
script.PROJECT_PIPELINES = { "cdp.lua", ".cdp/pipeline.lua" }

-- The names of the pipelines cdp ships (pipelines/*.lua, embedded), sorted.
function script.shipped()
  local names = {}
  for _, s in ipairs(require("cdp.host").scripts()) do
    names[#names + 1] = s.name
  end
  table.sort(names)
  return names
end

local function readable(path)
  local f, err = io.open(path, "r")
  if not f then
    return false, err
  end
  -- A directory opens on Linux, and fails on the first read.
  local ok, rerr = f:read(0)
  f:close()
  if ok == nil and rerr then
    return false, ("%s: %s"):format(path, rerr)
  end
  return true
end

local function absolute(path)
  if path:sub(1, 1) == "/" then
    return path
  end
  local cwd = require("cdp.fs").cwd()
  return cwd and (cwd .. "/" .. path:gsub("^%./", "")) or path
end

-- The root of the git repository the current directory is in, or nil, the current directory.
function script.repository_root()
  local fs = require "cdp.fs"
  local cwd = require("cdp.errors").check(fs.cwd())
  local dir = cwd
  while true do
    if fs.exists(dir .. "/.git") then
      return dir
    end
    local parent = fs.dirname(dir)
    if parent == dir then
      return nil, cwd
    end
    dir = parent
  end
end

-- The project's root, where its pipeline and its runs are found: the repository
-- root, or the current directory outside one.
function script.project_root()
  local root, cwd = script.repository_root()
  return root or cwd
end

-- Where the pipeline REF is:
--   nil        the project's own: cdp.lua or .cdp/pipeline.lua, in the current directory
--              or else in ROOT (the repository's root)
--   "release"  a name: a pipeline cdp ships (script.shipped()), else a file of that name
--   "x.lua"    a path: anything with a "/" or ending in .lua is a file
-- Returns { ref = what a journal records to find it again (an absolute path, or the
-- shipped name), path = its chunk name without "@", file = the file to read | nil,
-- source = the shipped text | nil }, or nil, a one-line message, and a code.
function script.locate(ref, root)
  if ref == nil then
    local dirs = { "." }
    if root and absolute(".") ~= root then
      dirs[2] = root
    end
    for _, dir in ipairs(dirs) do
      for _, name in ipairs(script.PROJECT_PIPELINES) do
        local path = dir == "." and name or (dir .. "/" .. name)
        local ok, err = readable(path)
        if ok then
          return { ref = absolute(path), path = path, file = path }
        elseif require("cdp.fs").exists(path) then
          return nil, ("cannot read the pipeline %s"):format(err), "EACCES"
        end
      end
    end
    return nil, ("no pipeline here: neither %s exists in %s; `cdp init` writes one, and "
      .. "`cdp run release` runs the pipeline cdp ships"):format(table.concat(script.PROJECT_PIPELINES, " nor "),
      root or absolute(".")), "ENOENT"
  end
  if type(ref) ~= "string" or ref == "" then
    error("script.locate: expected a pipeline name or path", 2)
  end
  local is_path = ref:find("/", 1, true) or ref:match("%.lua$")
  if not is_path then
    local source, path = require("cdp.host").script(ref)
    if source then
      return { ref = ref, path = path, source = source }
    end
  end
  local ok, err = readable(ref)
  if ok then
    return { ref = absolute(ref), path = ref, file = ref }
  end
  if require("cdp.fs").exists(ref) then
    return nil, ("cannot read the pipeline %s"):format(err), "EACCES"
  end
  if is_path then
    return nil, ("no pipeline %s: no such file"):format(ref), "ENOENT"
  end
  local names = script.shipped()
  local near = require("cdp.settings").nearest(ref, names)
  return nil, ("no pipeline '%s': not a file, and cdp ships %s%s"):format(ref, table.concat(names, ", "),
    near and ("; did you mean '%s'?"):format(near) or ""), "ENOENT"
end

-- The shipped scripts loaded so far, chunk path -> text: what a stage's key hashes
-- for a function defined in one (there is no file to read it from).
local loaded_shipped = {}

function script.shipped_source(path)
  return loaded_shipped[path]
end

-- Load the pipeline LOC (from script.locate) as text in ENV (default a fresh one).
-- Returns the chunk and its environment, or nil and a message naming the file and line.
function script.load_located(loc, env)
  env = env or script.env()
  if loc.source then
    local chunk, err = load(loc.source, "@" .. loc.path, "t", env)
    if not chunk then
      return nil, err
    end
    loaded_shipped[loc.path] = loc.source
    return chunk, env
  end
  return script.load(loc.file, env)
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
