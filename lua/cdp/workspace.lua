-- The workspace model: members, their dependencies on each other, and the
-- order to publish them in, read from `cargo metadata --no-deps --offline`.
--
--   ws = workspace.load(dir, { repo_root = "/abs/repo" })
--   pending = workspace.start(dir); ...; ws = pending:finish { repo_root = ... }
--                   cargo metadata running meanwhile (the same answers and failures)
--   guess = workspace.guess(dir, opts)  the model as the manifests alone say it, or nil
--   ws.members      sorted by name: { name, version, manifest_path, dir, publish,
--                     inherited_version, deps = { {name, kind, req, path, registry,
--                     rename, target, optional, member, inherited} },
--                     package (the cargo metadata package, as cargo printed it) }
--   ws.by_name[name], ws.order (publish order), ws.single (a workspace of one)
--   ws:dependents(name) -> { {from, kind, req, rename, dep} } sorted
--   ws.manifest     the root Cargo.toml, relative to the repository
--   member.files    what cargo package ships besides "every file of dir but
--                   nested packages": { include = {...}, exclude = {...},
--                   extra = {repository paths of files from elsewhere} } | nil
--                   (a crate with a bin target ships the workspace's Cargo.lock:
--                   member.lock is its repository path, in extra; see ships_lock)
--   member.inherits the [workspace.*] entries it inherits, as keys under
--                   [workspace] ("dependencies.serde", "package.edition"), sorted
--   ws:walk_files() -> files, inherits: those two for every member, by index,
--                   false where there is nothing (what repo:changes takes)
--
-- `dir` is relative to the repository root ("" for a crate at the root), the
-- form cdp.git's change sets take. `publish` is true, false, or the list of
-- registries it may go to. Failures return nil, message, code: cargo's own
-- message (it names the manifest and line) for a broken Cargo.toml, ECYCLE for
-- a dependency cycle that publishing cannot order, EOUTSIDE for a member whose
-- real path is outside the repository, ELOOP for a manifest that is a link.
local json = require "cdp.json"
local tables = require "cdp.tables"

local workspace = {}

local Workspace = { __name = "cdp.Workspace" }
Workspace.__index = Workspace
Workspace.__tostring = function(ws)
  return ("cdp.Workspace(%s, %d crates)"):format(ws.root, #ws.members)
end

local function strip_slash(p)
  if #p > 1 then
    p = p:gsub("/+$", "")
  end
  return p
end

-- PATH relative to ROOT ("" when equal), or nil when PATH is outside ROOT.
local function relative(path, root)
  path, root = strip_slash(path), strip_slash(root)
  if path == root then
    return ""
  end
  if root == "/" then
    return path:sub(2)
  end
  if path:sub(1, #root + 1) == root .. "/" then
    return path:sub(#root + 2)
  end
  return nil
end
workspace.relative = relative

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

-- What a manifest's text says that cargo metadata resolves away: whether the
-- package version is inherited from [workspace.package], and which
-- dependencies take their requirement from [workspace.dependencies].
-- A line-based reading of the keys involved; cdp.toml is the full parser.
function workspace.manifest_facts(text)
  local facts = { inherited_version = false, inherited_deps = {} }
  local section
  for raw in (text .. "\n"):gmatch("([^\n]*)\n") do
    local line = raw:gsub("%s+#.*$", ""):match("^%s*(.-)%s*$")
    local header = line:match("^%[%s*([^%[%]]-)%s*%]$")
    if header then
      section = header:gsub("%s", ""):gsub('"', "")
    elseif section == "package" then
      if line:match("^version%s*%.%s*workspace%s*=%s*true$")
        or line:match("^version%s*=%s*{.*workspace%s*=%s*true") then
        facts.inherited_version = true
      end
    elseif section == "package.version" then
      if line:match("^workspace%s*=%s*true$") then
        facts.inherited_version = true
      end
    elseif section then
      local kind = section:match("^(%a*%-?dependencies)$") or section:match("^target%..-%.(%a*%-?dependencies)$")
      if kind then
        local key = line:match('^"?([%w_-]+)"?%s*%.%s*workspace%s*=%s*true$')
          or line:match('^"?([%w_-]+)"?%s*=%s*{.*workspace%s*=%s*true')
        if key then
          facts.inherited_deps[key] = true
        end
      else
        local key = section:match("^%a*%-?dependencies%.([%w_-]+)$")
          or section:match("^target%..-%.%a*%-?dependencies%.([%w_-]+)$")
        if key and line:match("^workspace%s*=%s*true$") then
          facts.inherited_deps[key] = true
        end
      end
    end
  end
  return facts
end

-- What the manifest text says, through cdp.manifest (the TOML reader) when
-- it can read it, else through manifest_facts: { inherited_version,
-- inherited_deps = {key = true}, deps = {["kind\0key\0target"] = {req, workspace}} }.
local function manifest_info(text, path)
  local ok, manifest = pcall(require, "cdp.manifest")
  local info = ok and manifest.read(text, path)
  if not info then
    local facts = workspace.manifest_facts(text)
    facts.deps = {}
    return facts
  end
  local facts = { inherited_version = false, inherited_deps = {}, deps = {} }
  local v = info.package and info.package.version
  facts.inherited_version = type(v) == "table" and v.workspace == true
  for _, d in ipairs(info.deps) do
    if d.kind ~= "workspace" then
      facts.deps[d.kind .. "\0" .. d.key .. "\0" .. (d.target or "")] = { req = d.req, workspace = d.workspace }
      if d.workspace then
        facts.inherited_deps[d.key] = true
      end
    end
  end
  return facts
end

-- [workspace.dependencies] of the root manifest as written: { [key] = req }.
local function workspace_requirements(text, path)
  local ok, manifest = pcall(require, "cdp.manifest")
  local info = ok and text and manifest.read(text, path)
  local reqs = {}
  for _, d in ipairs(info and info.deps or {}) do
    if d.kind == "workspace" and d.req then
      reqs[d.key] = d.req
    end
  end
  return reqs
end

-- Fields of [package] a crate can take from [workspace.package].
local INHERITABLE = { "authors", "categories", "description", "documentation", "edition", "exclude",
  "homepage", "include", "keywords", "license", "license-file", "publish", "readme", "repository",
  "rust-version", "version" }

-- PATH joined to the repository-relative DIR and normalised ("a/b/../c" -> "a/c");
-- nil when it leaves the repository.
local function repo_path(dir, path)
  local parts = {}
  for part in ((dir ~= "" and (dir .. "/") or "") .. path):gmatch("[^/]+") do
    if part == ".." then
      if #parts == 0 then
        return nil
      end
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return table.concat(parts, "/")
end

local function string_list(v)
  if type(v) ~= "table" then
    return nil
  end
  local out = {}
  for i, x in ipairs(v) do
    if type(x) ~= "string" then
      return nil
    end
    out[i] = x
  end
  return #out > 0 and out or nil
end

-- The workspace's Cargo.lock is one of a binary crate's files (`ships_lock`).
-- cargo package has shipped the lock of packages with a bin or example target
-- since cargo 1.37 (rust-lang/cargo#7026), and of every package since 1.84
-- (#14815); but a library's users never read its lock, and the tools teams
-- come from count it only for binaries: cargo-release adds the workspace's
-- Cargo.lock to the files of a package with a bin target and drops it from
-- every other (steps/plan.rs PackageRelease::load), and release-plz releases
-- a package with a bin target whose locked dependency versions differ from
-- the published lock (updater.rs contains_executable, lock_compare.rs). So
-- cdp counts the lock for crates with a bin target only: a lock update
-- reaches the binary users install, never a library's dependents. (Examples
-- are left out too: the tools ignore them, and nobody installs an example.)
local function ships_lock(pkg)
  for _, t in ipairs(pkg.targets or {}) do
    for _, k in ipairs(t.kind or {}) do
      if k == "bin" then
        return true
      end
    end
  end
  return false
end
workspace.ships_lock = ships_lock

-- What cargo package ships of a member besides its directory, and what it
-- inherits: { files = {include, exclude, extra} | nil, inherits = {keys} }.
-- PKG is its manifest's [package] table, WS_PKG the root's [workspace.package],
-- DIR and ROOT_DIR the member's and the workspace's repository-relative paths.
-- A readme or license-file (its own or inherited, which cargo reads from the
-- workspace root) ships whatever include says, so it goes in `extra`; so does
-- the workspace's Cargo.lock when LOCK (ships_lock).
local function shipped_files(pkg, ws_pkg, inherited_deps, dir, root_dir, lock)
  local inherits = {}
  local function value(field)
    local v = pkg[field]
    if type(v) == "table" and v.workspace == true then
      return ws_pkg[field], root_dir
    end
    return v, dir
  end
  for _, field in ipairs(INHERITABLE) do
    local v = pkg[field]
    if type(v) == "table" and v.workspace == true then
      inherits[#inherits + 1] = "package." .. field
    end
  end
  for key in pairs(inherited_deps) do
    inherits[#inherits + 1] = "dependencies." .. key
  end
  table.sort(inherits)
  local files = { include = string_list((value("include"))), exclude = string_list((value("exclude"))) }
  local extra = {}
  for _, field in ipairs { "readme", "license-file" } do
    local v, base = value(field)
    local path = type(v) == "string" and repo_path(base, v)
    if path and path ~= "" then
      extra[#extra + 1] = path
    end
  end
  if lock then
    extra[#extra + 1] = repo_path(root_dir, "Cargo.lock")
  end
  files.extra = #extra > 0 and extra or nil
  if not (files.include or files.exclude or files.extra) then
    files = nil
  end
  return files, inherits
end

-- Tables of one manifest (a member's [package], the root's [workspace.package]),
-- one for each of KEY_LISTS, from one parse; each empty when the text is not
-- TOML (cargo metadata read it, so that is a reader's gap, and the crate is then
-- taken as its directory).
local function toml_tables(text, path, key_lists)
  local ok, toml = pcall(require, "cdp.toml")
  local doc = ok and text and toml.parse(text, { name = path })
  local out = {}
  for i, keys in ipairs(key_lists) do
    local t = doc and doc:get(keys)
    out[i] = type(t) == "table" and t or {}
  end
  if doc then
    doc:close()
  end
  return table.unpack(out, 1, #key_lists)
end

local function toml_table(text, path, keys)
  return (toml_tables(text, path, { keys }))
end

local function publish_of(value)
  if value == nil or value == json.null then
    return true
  end
  if type(value) == "table" and #value == 0 then
    return false
  end
  local regs = {}
  for i, r in ipairs(value) do
    regs[i] = r
  end
  table.sort(regs)
  return regs
end

local function opt(v)
  if v == json.null then
    return nil
  end
  return v
end

-- The directory of crate PKG (at PKG_DIR) relative to the repository, or nil and
-- why not. A member is inside the repository when its real path is: cargo names a
-- member by the path it globbed, so a committed `crates/victim -> /elsewhere`
-- looks inside by its name alone, and Version and Package would write where it points.
local function member_dir(pkg, pkg_dir, repo_root, real_root, realpath)
  local dir = relative(pkg_dir, repo_root)
  local real = realpath(pkg_dir)
  if real and real ~= pkg_dir then
    local real_dir = relative(real, real_root)
    if not real_dir then
      return nil, ("crate %s at %s is a link to %s, outside the repository %s"):format(pkg.name, pkg_dir,
        real, repo_root)
    end
    dir = dir or real_dir
  end
  if not dir then
    return nil, ("crate %s at %s is outside the repository %s"):format(pkg.name, pkg_dir, repo_root)
  end
  return dir
end

-- Build the model from decoded `cargo metadata` output. OPTS.repo_root: the
-- directory member dirs are made relative to (default: the workspace root);
-- OPTS.read(path) -> text|nil reads manifests (default: cdp.fs.read, beneath
-- the repository root: never through a link); OPTS.realpath(path) -> path|nil
-- (default: cdp.fs.realpath).
function workspace.from_metadata(meta, opts)
  opts = opts or {}
  local root = strip_slash(meta.workspace_root)
  local repo_root = strip_slash(opts.repo_root or root)
  local read_file = opts.read or function(path) return require("cdp.fs").read(path, { beneath = repo_root }) end
  -- A manifest that is a link is refused: what it says is not what the commit says.
  local refused
  local function read(path)
    local text, err, code = read_file(path)
    if not text and code == "ELOOP" and not refused then
      refused = err
    end
    return text
  end
  local realpath = opts.realpath or function(path) return (require("cdp.fs").realpath(path)) end
  local real_root = realpath(repo_root) or repo_root
  local member_ids = {}
  for _, id in ipairs(meta.workspace_members or {}) do
    member_ids[id] = true
  end
  local members, by_name, by_dir = {}, {}, {}
  local root_manifest = root .. "/Cargo.toml"
  local root_text = read(root_manifest)
  local inherited_reqs = workspace_requirements(root_text, root_manifest)
  local ws_pkg = toml_table(root_text, root_manifest, { "workspace", "package" })
  local root_dir = relative(root, repo_root) or ""
  for _, pkg in ipairs(meta.packages or {}) do
    if member_ids[pkg.id] or not meta.workspace_members then
      local pkg_dir = dirname(pkg.manifest_path)
      local dir, err = member_dir(pkg, pkg_dir, repo_root, real_root, realpath)
      if not dir then
        return nil, err, "EOUTSIDE"
      end
      local text = read(pkg.manifest_path) or ""
      local facts = manifest_info(text, pkg.manifest_path)
      local m = {
        name = pkg.name,
        version = pkg.version,
        manifest_path = pkg.manifest_path,
        abs_dir = pkg_dir,
        dir = dir,
        publish = publish_of(pkg.publish),
        inherited_version = facts.inherited_version,
        deps = {},
        -- cargo's own record (description, license, features, ...), which
        -- Validate checks and Publish sends to the registry.
        package = pkg,
      }
      m.lock = ships_lock(pkg) and repo_path(root_dir, "Cargo.lock") or nil
      m.files, m.inherits = shipped_files(toml_table(text, pkg.manifest_path, { "package" }), ws_pkg,
        facts.inherited_deps, dir, root_dir, m.lock ~= nil)
      for _, d in ipairs(pkg.dependencies or {}) do
        local kind, key, target = opt(d.kind) or "normal", opt(d.rename) or d.name, opt(d.target)
        local written = facts.deps[kind .. "\0" .. key .. "\0" .. (target or "")]
          or facts.deps[kind .. "\0" .. key .. "\0"]
        local inherited = (written and written.workspace) or facts.inherited_deps[key] == true
        local req_text = written and written.req or nil
        if inherited then
          req_text = inherited_reqs[key] -- written once, in the root's [workspace.dependencies]
        end
        m.deps[#m.deps + 1] = {
          name = d.name,
          kind = kind,
          req = d.req,
          -- the requirement as the manifest writes it ("0.1", where cargo says "^0.1")
          req_text = req_text,
          path = opt(d.path),
          registry = opt(d.registry),
          rename = opt(d.rename),
          target = opt(d.target),
          optional = d.optional == true,
          inherited = inherited,
        }
      end
      if by_name[m.name] then
        return nil, ("two workspace members are named %s (%s and %s)"):format(m.name,
          by_name[m.name].manifest_path, m.manifest_path), "EDUPLICATE"
      end
      by_name[m.name] = m
      by_dir[pkg_dir] = m
      members[#members + 1] = m
    end
  end
  if refused then
    return nil, refused, "ELOOP"
  end
  table.sort(members, function(a, b) return a.name < b.name end)
  -- A dependency is on a member when it is a path dependency into that
  -- member's directory (a registry crate of the same name is something else).
  for _, m in ipairs(members) do
    for _, d in ipairs(m.deps) do
      local target = d.path and by_dir[strip_slash(d.path)]
      d.member = target ~= nil and target.name == d.name
    end
    table.sort(m.deps, function(a, b)
      if a.name ~= b.name then return a.name < b.name end
      if a.kind ~= b.kind then return a.kind < b.kind end
      return (a.target or "") < (b.target or "")
    end)
  end
  local ws = setmetatable({
    root = root,
    repo_root = repo_root,
    manifest = (root_dir ~= "" and (root_dir .. "/") or "") .. "Cargo.toml",
    members = members,
    by_name = by_name,
    single = #members == 1,
  }, Workspace)
  local order, err, code = workspace.publish_order(members)
  if not order then
    return nil, err, code
  end
  ws.order = order
  return ws
end

-- Lua pattern for one component of a member glob ("crate-*", "[ab]?"), or nil for
-- what cargo's globs can say and this cannot ("**").
local function component_pattern(glob)
  if glob:find("**", 1, true) then
    return nil
  end
  local out = glob:gsub("[%^%$%(%)%%%.%+%-]", "%%%0"):gsub("%*", "[^/]*"):gsub("%?", "[^/]")
  return "^" .. out .. "$"
end

-- Directories (relative to ROOT) that member glob GLOB names, or nil when it is beyond this reader.
local function expand_member(fs, root, glob)
  local dirs = { "" }
  for part in glob:gsub("^%./", ""):gsub("/+$", ""):gmatch("[^/]+") do
    local pattern = part:find("[%*%?%[]") and component_pattern(part)
    if part:find("[%*%?%[]") and not pattern then
      return nil
    end
    local next_dirs = {}
    for _, d in ipairs(dirs) do
      local here = d == "" and root or (root .. "/" .. d)
      if pattern then
        for _, name in ipairs(fs.list(here) or {}) do
          local st = name:match(pattern) and fs.stat(here .. "/" .. name)
          if st and st.type == "directory" then
            if not fs.exists(here .. "/" .. name .. "/Cargo.toml") then
              return nil -- cargo refuses a member without a manifest: let it say so
            end
            next_dirs[#next_dirs + 1] = d == "" and name or (d .. "/" .. name)
          end
        end
      else
        next_dirs[#next_dirs + 1] = d == "" and part or (d .. "/" .. part)
      end
    end
    dirs = next_dirs
  end
  return dirs
end

-- The members a workspace's manifests name, read without cargo: the root manifest in
-- DIR (a [package], and [workspace] members and exclude, globs with * ? []), each
-- member's name and directory relative to OPTS.repo_root. For what needs names and
-- directories only (a crate's whole changelog), before or instead of cargo metadata;
-- nil when the manifests say what only cargo reads (globs with **, unreadable TOML,
-- no Cargo.toml in DIR). Members cargo adds itself (path dependencies inside the
-- workspace) are not found: a caller missing a crate asks cargo.
function workspace.from_manifests(dir, opts)
  opts = opts or {}
  local fs = require "cdp.fs"
  local ok, toml = pcall(require, "cdp.toml")
  if not ok then
    return nil
  end
  local root = strip_slash(fs.realpath(dir) or dir)
  local repo_root = strip_slash(opts.repo_root or root)
  local base = relative(root, repo_root)
  if not base then
    return nil
  end
  local function package_at(d)
    local path = (d == "" and root or (root .. "/" .. d)) .. "/Cargo.toml"
    local doc = toml.parse(fs.read(path) or "", { name = path })
    if not doc then
      return nil
    end
    local pkg, ws = doc:get { "package" }, doc:get { "workspace" }
    doc:close()
    return pkg, ws
  end
  local pkg, ws = package_at("")
  if not pkg and not ws then
    return nil
  end
  local members, seen = {}, {}
  local function add(d, p)
    if p and type(p.name) == "string" and not seen[d] then
      seen[d] = true
      local rel = base == "" and d or (d == "" and base or (base .. "/" .. d))
      members[#members + 1] = { name = p.name, dir = rel, version = type(p.version) == "string" and p.version or nil }
    end
  end
  add("", pkg)
  if type(ws) == "table" then
    local excluded = {}
    for _, e in ipairs(type(ws.exclude) == "table" and ws.exclude or {}) do
      excluded[strip_slash((tostring(e):gsub("^%./", "")))] = true
    end
    for _, glob in ipairs(type(ws.members) == "table" and ws.members or {}) do
      local dirs = type(glob) == "string" and expand_member(fs, root, glob)
      if not dirs then
        return nil
      end
      for _, d in ipairs(dirs) do
        if not excluded[d] then
          local p = package_at(d)
          add(d, p)
        end
      end
    end
  end
  table.sort(members, function(a, b) return a.name < b.name end)
  local by_name = {}
  for _, m in ipairs(members) do
    by_name[m.name] = m
  end
  return { root = root, repo_root = repo_root, members = members, by_name = by_name, single = #members == 1 }
end

-- The path dependencies cargo makes members of itself: those of a member (any
-- kind, any target, or through [workspace.dependencies]) inside the
-- workspace root and not under [workspace] exclude, and theirs in turn.
-- Appends them to MEMBERS ({name, dir} as from_manifests gives them).
local function add_path_members(members, found, root_text, root_manifest, fs)
  local base = relative(found.root, found.repo_root) or ""
  local ws_deps, ws = toml_tables(root_text, root_manifest, { { "workspace", "dependencies" }, { "workspace" } })
  local excluded = ws.exclude
  local seen = {}
  local function ws_rel(dir)
    return base == "" and dir or (dir == base and "" or dir:sub(#base + 2))
  end
  for _, x in ipairs(members) do
    seen[ws_rel(x.dir)] = true
  end
  local function is_excluded(d)
    for _, e in ipairs(type(excluded) == "table" and excluded or {}) do
      local ex = type(e) == "string" and repo_path("", e)
      if ex and (d == ex or d:sub(1, #ex + 1) == ex .. "/") then
        return true
      end
    end
    return false
  end
  local i = 1
  while i <= #members do
    local at = ws_rel(members[i].dir)
    local path = found.root .. (at == "" and "" or ("/" .. at)) .. "/Cargo.toml"
    local deps, dev, build, targets = toml_tables(fs.read(path), path,
      { { "dependencies" }, { "dev-dependencies" }, { "build-dependencies" }, { "target" } })
    local tables = { deps, dev, build }
    for _, t in pairs(targets) do
      for _, kind in ipairs { "dependencies", "dev-dependencies", "build-dependencies" } do
        if type(t) == "table" and type(t[kind]) == "table" then
          tables[#tables + 1] = t[kind]
        end
      end
    end
    for _, t in ipairs(tables) do
      for key, d in pairs(t) do
        local dep_dir
        if type(d) == "table" and type(d.path) == "string" then
          dep_dir = repo_path(at, d.path)
        elseif type(d) == "table" and d.workspace == true and type(ws_deps[key]) == "table"
            and type(ws_deps[key].path) == "string" then
          dep_dir = repo_path("", ws_deps[key].path)
        end
        if dep_dir and not seen[dep_dir] and not is_excluded(dep_dir) then
          seen[dep_dir] = true
          local dep_path = found.root .. (dep_dir == "" and "" or ("/" .. dep_dir)) .. "/Cargo.toml"
          local pkg = toml_table(fs.read(dep_path), dep_path, { "package" })
          if type(pkg.name) == "string" then
            members[#members + 1] = { name = pkg.name,
              dir = base == "" and dep_dir or (dep_dir == "" and base or (base .. "/" .. dep_dir)) }
          end
        end
      end
    end
    i = i + 1
  end
end

-- A guess of the model from the manifests alone (workspace.from_manifests),
-- for work done while cargo metadata runs: names, directories, versions and
-- publish read as cargo would in the plain cases, shipped files and inherited
-- keys exactly as from_metadata reads them; no dependencies. Nil when the
-- manifests say what only cargo reads. A guess is for speed only: whoever
-- uses one checks what it gave against cargo's model before trusting it.
function workspace.guess(dir, opts)
  opts = opts or {}
  local found = workspace.from_manifests(dir, opts)
  if not found or #found.members == 0 then
    return nil
  end
  local fs = require "cdp.fs"
  local function manifest_of(rel)
    return found.repo_root .. (rel == "" and "" or ("/" .. rel)) .. "/Cargo.toml"
  end
  local root_manifest = found.root .. "/Cargo.toml"
  local root_text = fs.read(root_manifest)
  local ws_pkg = toml_table(root_text, root_manifest, { "workspace", "package" })
  local members = {}
  for i, x in ipairs(found.members) do
    members[i] = x
  end
  add_path_members(members, found, root_text, root_manifest, fs)
  table.sort(members, function(a, b) return a.name < b.name end)
  local packages, ids = {}, {}
  for i, x in ipairs(members) do
    local path = manifest_of(x.dir)
    local pkg, bins = toml_tables(fs.read(path), path, { { "package" }, { "bin" } })
    local function field(name)
      local v = pkg[name]
      if type(v) == "table" and v.workspace == true then
        return ws_pkg[name]
      end
      return v
    end
    local version, publish = field("version"), field("publish")
    if version == nil then
      version = "0.0.0" -- cargo's default for a manifest without one
    end
    if type(version) ~= "string" then
      return nil
    end
    if publish == false then
      publish = {}
    elseif publish == nil or publish == true then
      publish = json.null
    elseif type(publish) ~= "table" then
      return nil
    end
    ids[i] = x.name
    -- bin targets as cargo finds them (src/main.rs, src/bin/, [[bin]]), so the
    -- guess's file sets carry the lock where cargo metadata's will (ships_lock)
    local crate_dir = path:sub(1, -#"/Cargo.toml" - 1)
    local has_bin = #bins > 0 or (pkg.autobins ~= false and
      (fs.exists(crate_dir .. "/src/main.rs") or fs.exists(crate_dir .. "/src/bin")))
    packages[i] = { id = x.name, name = x.name, version = version, manifest_path = path, publish = publish,
      dependencies = {}, targets = has_bin and { { kind = { "bin" } } } or {} }
  end
  return workspace.from_metadata({ workspace_root = found.root, packages = packages, workspace_members = ids },
    opts)
end

local METADATA_ARGS = { "metadata", "--format-version", "1", "--no-deps", "--offline" }

-- What cargo metadata's run gave (proc.run's result, or process:wait's with
-- the output captured): the model, or the message today's callers know.
local function from_cargo_result(dir, res, err, code, opts)
  if not res then
    return nil, ("cannot run cargo metadata in %s: %s"):format(dir, err), code or "ECARGO"
  end
  if res.code ~= 0 or res.timed_out then
    local msg = (res.stderr or ""):gsub("%s+$", "")
    if res.timed_out then
      msg = "timed out. " .. msg
    end
    return nil, ("cargo metadata failed in %s:\n%s"):format(dir, msg), "ECARGO"
  end
  local meta, jerr = json.decode(res.stdout)
  if not meta then
    return nil, ("cargo metadata in %s printed bad JSON: %s"):format(dir, jerr), "ECARGO"
  end
  return workspace.from_metadata(meta, opts)
end

-- Run cargo metadata in DIR and build the model (see from_metadata for OPTS).
function workspace.load(dir, opts)
  opts = opts or {}
  local proc = require "cdp.proc"
  local argv = { opts.cargo or "cargo", table.unpack(METADATA_ARGS) }
  local res, err, code = proc.run { argv = argv, cwd = dir, timeout = opts.timeout or 300 }
  return from_cargo_result(dir, res, err, code, opts)
end

local Pending = { __name = "cdp.workspace.Pending" }
Pending.__index = Pending

-- workspace.start(dir, opts) -> pending: cargo metadata started in DIR, running
-- while the caller reads git; pending:finish(opts) -> what workspace.load
-- returns (the same messages and codes, cargo's stderr, a timeout, a program
-- that is not there), and pending:close() (also __close, __gc) ends a cargo
-- still running and lets its output go. Nothing is left on disk on any path:
-- the output is in unnamed files (proc.spawn's capture).
function workspace.start(dir, opts)
  opts = opts or {}
  local proc = require "cdp.proc"
  local argv = { opts.cargo or "cargo", table.unpack(METADATA_ARGS) }
  local child, err, code = proc.spawn { argv = argv, cwd = dir, capture = true, timeout = opts.timeout or 300 }
  return setmetatable({ dir = dir, child = child, err = err, code = code }, Pending)
end

function Pending:finish(opts)
  local res, err, code
  if self.child then
    res, err, code = self.child:wait()
    self.child:close()
    self.child = nil
  else
    err, code = self.err, self.code
  end
  return from_cargo_result(self.dir, res, err, code, opts or {})
end

function Pending:close()
  if self.child then
    self.child:close()
    self.child = nil
  end
end
Pending.__close = Pending.close
Pending.__gc = Pending.close

-- Edges that order publishing: a crate is published after the members it
-- needs to build (normal and build dependencies). Dev-dependencies are not
-- edges: cargo strips them from published manifests, so their cycles are fine.
local function ordering_edges(members)
  local by_name, needs = {}, {}
  for _, m in ipairs(members) do
    by_name[m.name] = m
  end
  for _, m in ipairs(members) do
    local set = {}
    for _, d in ipairs(m.deps) do
      if d.member ~= false and by_name[d.name] and d.kind ~= "dev" and d.name ~= m.name then
        set[d.name] = true
      end
    end
    needs[m.name] = tables.sorted_keys(set)
  end
  return needs
end

-- One cycle among NAMES (each needing others via NEEDS), as "a -> b -> a".
local function find_cycle(names, needs)
  local state, stack = {}, {}
  local found
  local function visit(n)
    state[n] = "active"
    stack[#stack + 1] = n
    for _, d in ipairs(needs[n]) do
      if found then return end
      if state[d] == "active" then
        local cycle = {}
        for i = #stack, 1, -1 do
          table.insert(cycle, 1, stack[i])
          if stack[i] == d then break end
        end
        cycle[#cycle + 1] = d
        found = cycle
        return
      elseif state[d] == nil and needs[d] then
        visit(d)
      end
    end
    stack[#stack] = nil
    state[n] = "done"
  end
  for _, n in ipairs(names) do
    if not state[n] and not found then
      visit(n)
    end
  end
  return found
end

-- Publish order: every crate after the members it depends on (normal and
-- build dependencies); ties broken by name so the order is stable.
-- Returns the list of names, or nil, a message naming the crates of a cycle, "ECYCLE".
function workspace.publish_order(members)
  local needs = ordering_edges(members)
  local pending, users = {}, {}
  for _, m in ipairs(members) do
    pending[m.name] = #needs[m.name]
    for _, d in ipairs(needs[m.name]) do
      users[d] = users[d] or {}
      table.insert(users[d], m.name)
    end
  end
  local ready = {}
  for _, m in ipairs(members) do
    if pending[m.name] == 0 then
      ready[#ready + 1] = m.name
    end
  end
  local order = {}
  while #ready > 0 do
    table.sort(ready, function(a, b) return a > b end)
    local n = table.remove(ready)
    order[#order + 1] = n
    for _, u in ipairs(users[n] or {}) do
      pending[u] = pending[u] - 1
      if pending[u] == 0 then
        ready[#ready + 1] = u
      end
    end
  end
  if #order < #members then
    local left = {}
    for _, m in ipairs(members) do
      if pending[m.name] > 0 then
        left[#left + 1] = m.name
      end
    end
    local cycle = find_cycle(left, needs) or left
    return nil, ("dependency cycle among workspace crates (normal/build dependencies): %s")
      :format(table.concat(cycle, " -> ")), "ECYCLE"
  end
  return order
end

-- What repo:changes takes for the members, by index: each one's file set and
-- inherited keys, false where there is nothing to say.
function Workspace:walk_files()
  local files, inherits = {}, {}
  for i, m in ipairs(self.members) do
    files[i] = m.files or false
    inherits[i] = (m.inherits and #m.inherits > 0) and m.inherits or false
  end
  return files, inherits
end

-- The [[package]] entries of Cargo.lock TEXT: { [entry text] = name }, each
-- entry as cargo wrote it (cargo writes the lock in one fixed layout, an
-- entry per blank-line-separated block). Nil when TEXT has none.
function workspace.lock_entries(text)
  local out, any, pos = {}, false, 1
  while true do -- plain finds: a pattern scan cost a plan of gitoxide seconds
    local _, e = text:find("[[package]]\n", pos, true)
    if not e then
      break
    end
    local stop = text:find("\n\n", e, true) or #text + 1
    local block = text:sub(e + 1, stop - 1)
    local name = block:match('^name = "([^"]*)"')
    if name then
      out[block] = name
      any = true
    end
    pos = stop
  end
  return any and out or nil
end

-- The names of the packages whose entries differ between lock entries A and B
-- (lock_entries'), sorted: what a lock change changed.
function workspace.lock_changes(a, b)
  local names = {}
  for block, name in pairs(a) do
    if not b[block] then
      names[name] = true
    end
  end
  for block, name in pairs(b) do
    if not a[block] then
      names[name] = true
    end
  end
  return tables.sorted_keys(names)
end

-- The members NAME builds or tests with (any kind of dependency, through
-- other members), NAME left out: { [member name] = true }.
function Workspace:member_closure(name)
  local out, queue = {}, { name }
  while #queue > 0 do
    local m = self.by_name[table.remove(queue)]
    for _, d in ipairs(m and m.deps or {}) do
      if d.member and not out[d.name] and d.name ~= name then
        out[d.name] = true
        queue[#queue + 1] = d.name
      end
    end
  end
  return out
end

-- Members that depend on NAME (any kind), with the requirement they state
-- (as written; `inherited` when it is written in [workspace.dependencies]).
function Workspace:dependents(name)
  local out = {}
  for _, m in ipairs(self.members) do
    for _, d in ipairs(m.deps) do
      if d.member and d.name == name then
        out[#out + 1] = { from = m.name, kind = d.kind, req = d.req_text or d.req, rename = d.rename,
          inherited = d.inherited, dep = d }
      end
    end
  end
  table.sort(out, function(a, b)
    if a.from ~= b.from then return a.from < b.from end
    if a.kind ~= b.kind then return a.kind < b.kind end
    return (a.dep.target or "") < (b.dep.target or "")
  end)
  return out
end

return workspace
