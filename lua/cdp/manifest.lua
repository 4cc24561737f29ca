-- Cargo manifests on cdp.toml: what a Cargo.toml says about its package and
-- its dependency requirements, and version edits that change only the bytes
-- of the values they touch (comments, layout and quoting stay as written).
local toml = require "cdp.toml"

local manifest = {}

-- Dependency tables, in the order cargo documents them. The underscored
-- spellings are older aliases cargo still reads.
local KINDS = {
  { "dependencies", "normal" },
  { "dev-dependencies", "dev" },
  { "dev_dependencies", "dev" },
  { "build-dependencies", "build" },
  { "build_dependencies", "build" },
}

local function copy(t, extra)
  local c = {}
  for i, v in ipairs(t) do
    c[i] = v
  end
  c[#c + 1] = extra
  return c
end

-- One entry of a dependency table at SECTION (a path), named KEY.
local function read_dep(doc, section, key, kind, target)
  local at = copy(section, key)
  local t = doc:type(at)
  local dep = { kind = kind, target = target, key = key, name = key, workspace = false }
  if t == "string" then
    dep.req = doc:get(at)
    dep.span_path = at
  elseif t == "table" then
    local function field(f, want)
      local p = copy(at, f)
      if doc:type(p) == want then
        return doc:get(p), p
      end
    end
    dep.name = field("package", "string") or key
    dep.req, dep.span_path = field("version", "string")
    dep.path = field("path", "string")
    dep.workspace = field("workspace", "boolean") == true
  else
    return nil -- not a dependency cargo would read; cargo itself says why
  end
  return dep
end

local function read_section(doc, section, kind, target, deps)
  if doc:type(section) ~= "table" then
    return
  end
  for _, key in ipairs(doc:keys(section)) do
    deps[#deps + 1] = read_dep(doc, section, key, kind, target)
  end
end

local function read_doc(doc)
  local info = { deps = {} }
  if doc:type { "package" } == "table" then
    local version = doc:get { "package", "version" }
    if type(version) == "table" then
      version = { workspace = version.workspace == true }
    end
    info.package = { name = doc:get { "package", "name" }, version = version }
  end
  if doc:type { "workspace" } == "table" then
    local v = doc:get { "workspace", "package", "version" }
    info.workspace = { version = type(v) == "string" and v or nil, members = doc:get { "workspace", "members" } }
  end
  for _, k in ipairs(KINDS) do
    read_section(doc, { k[1] }, k[2], nil, info.deps)
  end
  if doc:type { "target" } == "table" then
    for _, target in ipairs(doc:keys { "target" }) do
      for _, k in ipairs(KINDS) do
        read_section(doc, { "target", target, k[1] }, k[2], target, info.deps)
      end
    end
  end
  read_section(doc, { "workspace", "dependencies" }, "workspace", nil, info.deps)
  return info
end

local function open(text, name)
  if type(text) ~= "string" then
    error("manifest: text must be a string, got " .. type(text), 3)
  end
  return toml.parse(text, { name = name or "Cargo.toml" })
end

-- manifest.read(text, name) -> {
--   package = { name, version = "1.2.3" | { workspace = true } } | nil,
--   workspace = { version, members } | nil,
--   deps = { { kind = "normal"|"dev"|"build"|"workspace", target, key, name, req,
--              path, workspace = bool, span_path }, ... } -- in document order
-- } | nil, msg, "ETOML"
function manifest.read(text, name)
  local doc, msg, code = open(text, name)
  if not doc then
    return nil, msg, code
  end
  local info = read_doc(doc)
  doc:close()
  return info
end

local function path_text(path)
  local parts = {}
  for i, k in ipairs(path) do
    parts[i] = k:match("^[%w_-]+$") and k or ("'" .. k .. "'")
  end
  return table.concat(parts, ".")
end

-- manifest.edit(text, name, { version = "1.2.3", workspace = bool, deps = { [crate] = req } })
-- A crate's entry in `deps` may also map requirements as written to their
-- replacements ({ ["0.3"] = "0.4", ["0.3.1"] = "0.4.0" }), for a manifest that
-- requires one crate differently as a dependency and a dev-dependency.
--   -> new_text, changes ({ { path, from, to }, ... }) | nil, msg, code
-- `version` sets [package] version, or [workspace.package] version with
-- `workspace = true`. Every requirement on a crate named in `deps` (by its
-- real name, so renamed dependencies count) is rewritten wherever it is
-- written; entries without a version (path-only, inherited) are left alone.
function manifest.edit(text, name, opts)
  opts = opts or {}
  name = name or "Cargo.toml"
  local doc, msg, code = open(text, name)
  if not doc then
    return nil, msg, code
  end
  local changes = {}
  local function set(path, to)
    local from = doc:get(path)
    if from == to then
      return true
    end
    local ok, err, ecode = doc:set_string(path, to)
    if not ok then
      return nil, err, ecode
    end
    changes[#changes + 1] = { path = path, from = from, to = to }
    return true
  end
  local ok, err, ecode = true, nil, nil
  if opts.version ~= nil then
    local path = opts.workspace and { "workspace", "package", "version" } or { "package", "version" }
    local t = doc:type(path)
    if t == "string" then
      ok, err, ecode = set(path, opts.version)
    elseif t == "table" and doc:get(copy(path, "workspace")) == true then
      ok, err, ecode = nil, ("%s: %s is inherited from the workspace; set [workspace.package] version instead")
        :format(name, path_text(path)), "EMANIFEST"
    else
      ok, err, ecode = nil, ("%s: no %s to set"):format(name, path_text(path)), "EMANIFEST"
    end
  end
  if ok and opts.deps and next(opts.deps) then
    for _, dep in ipairs(read_doc(doc).deps) do
      local to = opts.deps[dep.name]
      if type(to) == "table" then
        to = dep.req and to[dep.req] -- keyed by the requirement as written
      end
      if to and dep.req then
        ok, err, ecode = set(dep.span_path, to)
        if not ok then
          break
        end
      end
    end
  end
  local new_text = doc:text()
  doc:close()
  if not ok then
    return nil, err, ecode
  end
  return new_text, changes
end

return manifest
