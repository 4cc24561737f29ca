-- A Cargo registry: its sparse index (what is published, with which checksum) and its
-- Web API (publish). The Publish stage builds on this; nothing here decides policy.
--
-- Publishing is made safe to repeat by looking first: a version already in the index
-- with the same cksum is skipped, with another cksum is an error naming both.
local fs = require "cdp.fs"
local http = require "cdp.http"
local json = require "cdp.json"
local proc = require "cdp.proc"

local registry = {}

-- crates.io's published limits: a burst, then one per period (seconds).
registry.CRATES_IO_LIMITS = {
  new_crate = { burst = 5, period = 600 },
  new_version = { burst = 30, period = 60 },
}

-- Where the sparse index keeps NAME: 1/a, 2/ab, 3/a/abc, ab/cd/abcd...
function registry.index_path(name)
  local n = name:lower()
  if #n == 1 then
    return "1/" .. n
  elseif #n == 2 then
    return "2/" .. n
  elseif #n == 3 then
    return "3/" .. n:sub(1, 1) .. "/" .. n
  end
  return n:sub(1, 2) .. "/" .. n:sub(3, 4) .. "/" .. n
end

-- The publish request body: u32 LE length + JSON metadata + u32 LE length + .crate bytes.
function registry.publish_body(metadata, crate)
  local meta = json.encode(metadata)
  return string.pack("<s4<s4", meta, crate)
end

-- A field of `cargo metadata` output: cargo prints absent values as null, which
-- cjson decodes to json.null, a truthy value; this gives nil for it instead.
local function field(v)
  if v == json.null then
    return nil
  end
  return v
end

-- Publish metadata (cargo's registry Web API) from a package of `cargo metadata`.
function registry.metadata(pkg)
  local deps = {}
  for _, d in ipairs(field(pkg.dependencies) or {}) do
    local kind, path, req = field(d.kind) or "normal", field(d.path), field(d.req)
    -- cargo drops path-only dev-dependencies when packaging; the rest are published.
    if not (kind == "dev" and path and req == "*") then
      deps[#deps + 1] = {
        name = d.name,
        version_req = req,
        features = json.array(field(d.features) or {}),
        optional = field(d.optional) == true,
        default_features = field(d.uses_default_features) ~= false,
        target = field(d.target) or json.null,
        kind = kind,
        registry = field(d.registry) or json.null,
        explicit_name_in_toml = field(d.rename) or json.null,
      }
    end
  end
  table.sort(deps, function(a, b)
    if a.name ~= b.name then return a.name < b.name end
    if a.kind ~= b.kind then return a.kind < b.kind end
    return tostring(a.target) < tostring(b.target)
  end)
  local function list(v) return json.array(field(v) or {}) end
  local function text(v) return field(v) or json.null end
  return {
    name = pkg.name,
    vers = pkg.version,
    deps = deps,
    features = json.object(field(pkg.features) or {}),
    authors = list(pkg.authors),
    description = text(pkg.description),
    documentation = text(pkg.documentation),
    homepage = text(pkg.homepage),
    readme = json.null,
    readme_file = text(pkg.readme),
    keywords = list(pkg.keywords),
    categories = list(pkg.categories),
    license = text(pkg.license),
    license_file = text(pkg.license_file),
    repository = text(pkg.repository),
    badges = json.object(),
    links = text(pkg.links),
    rust_version = text(pkg.rust_version),
  }
end

-- When each of ITEMS ({kind = "new_crate"|"new_version"}, in publish order) may start,
-- in seconds from now, under LIMITS; and the ETA of the last. Tokens refill one per
-- period, as crates.io's limits do.
function registry.schedule(items, limits)
  limits = limits or {}
  local used = {}
  local starts, eta = {}, 0
  for i, item in ipairs(items) do
    local limit = limits[item.kind]
    local n = used[item.kind] or 0
    local at = 0
    if limit and n >= limit.burst then
      at = (n - limit.burst + 1) * limit.period
    end
    used[item.kind] = n + 1
    at = math.max(at, starts[i - 1] or 0)
    starts[i] = at
    eta = at
  end
  return starts, eta
end

local Registry = {}
Registry.__index = Registry
Registry.__name = "cdp.registry.Registry"
function Registry:__tostring()
  return ("cdp.registry.Registry (%s)"):format(self.index)
end

-- registry.new{ index = "sparse+https://host/index/", token = "...", timeout = 30 (each
--   attempt), deadline = 60 (a request's attempts and backoff in all; an upload's too),
--   retries = 4, max_wait = 600 (Retry-After waits), sleep = proc.sleep, log = fn }
function registry.new(opts)
  assert(type(opts) == "table" and type(opts.index) == "string", "registry.new: index URL expected")
  local index = opts.index:gsub("^sparse%+", "")
  if index:sub(-1) ~= "/" then
    index = index .. "/"
  end
  return setmetatable({
    index = index,
    token = opts.token,
    timeout = opts.timeout or 30,
    deadline = opts.deadline or 60,
    retries = opts.retries or 4,
    max_wait = opts.max_wait or 600,
    sleep = opts.sleep or proc.sleep,
    log = opts.log or function() end,
  }, Registry)
end

local function errors_of(body)
  local decoded = json.decode(body or "")
  if type(decoded) == "table" and type(decoded.errors) == "table" then
    local details = {}
    for _, e in ipairs(decoded.errors) do
      details[#details + 1] = type(e) == "table" and tostring(e.detail) or tostring(e)
    end
    if #details > 0 then
      return table.concat(details, "; ")
    end
  end
  return nil
end

-- GET with retries on transport errors and 5xx, within the deadline; HEADERS are sent
-- besides the User-Agent.
function Registry:get(url, headers)
  local res, err, code
  local deadline = proc.clock() + self.deadline
  local sent = { ["User-Agent"] = "cdp" }
  for k, v in pairs(headers or {}) do
    sent[k] = v
  end
  for attempt = 1, self.retries + 1 do
    local left = deadline - proc.clock()
    res, err, code = http.request { url = url, timeout = math.min(self.timeout, math.max(left, 0.001)),
      headers = sent }
    if res and res.status < 500 then
      return res
    end
    local wait = 0.5 * 2 ^ (attempt - 1)
    if proc.clock() + wait >= deadline then
      return nil, ("GET %s: no answer within %gs (http_timeout); last: %s"):format(url, self.deadline,
        res and res.status or err), "ETIMEDOUT"
    end
    if attempt <= self.retries then
      self.sleep(wait)
    end
  end
  if res then
    return nil, ("GET %s: %d"):format(url, res.status), "EREGISTRY"
  end
  return nil, ("GET %s: %s"):format(url, err), code
end

function Registry:config()
  if self._config then
    return self._config
  end
  local res, err, code = self:get(self.index .. "config.json")
  if not res then
    return nil, err, code
  end
  local cfg = res.status == 200 and json.decode(res.body)
  if type(cfg) ~= "table" or type(cfg.dl) ~= "string" then
    return nil, ("%sconfig.json: not a registry configuration (status %d)"):format(self.index, res.status), "EREGISTRY"
  end
  self._config = cfg
  return cfg
end

-- Every published version of NAME: { [version] = index entry }. A crate the index
-- does not know gives an empty table.
function Registry:versions(name)
  local res, err, code = self:get(self.index .. registry.index_path(name))
  if not res then
    return nil, err, code
  end
  if res.status == 404 or res.status == 410 or res.status == 451 then
    return {}
  elseif res.status ~= 200 then
    return nil, ("GET %s%s: %d"):format(self.index, registry.index_path(name), res.status), "EREGISTRY"
  end
  local versions = {}
  for line in res.body:gmatch("[^\n]+") do
    local entry = json.decode(line)
    if type(entry) == "table" and entry.vers then
      versions[entry.vers] = entry
    end
  end
  return versions
end

-- Look before publishing: "absent", "same" (already there with CKSUM), or nil, message,
-- "ECKSUM" when the registry holds that version with other bytes.
function Registry:check(name, version, cksum)
  local versions, err, code = self:versions(name)
  if not versions then
    return nil, err, code
  end
  local entry = versions[version]
  if not entry then
    return "absent"
  elseif entry.cksum == cksum then
    return "same"
  end
  return nil, ("%s %s is already in the registry %s with checksum %s, but the package built here has %s; refusing to publish different bytes under the same version")
    :format(name, version, self.index, entry.cksum, cksum), "ECKSUM"
end

-- Look at every one of ITEMS ({name, version, cksum}) before anything is published:
-- { [name] = { state = "absent" | "same", new_crate = bool } }, or nil, message, code
-- at the first that cannot be read or that the registry holds with other bytes
-- ("ECKSUM", naming both checksums).
function Registry:lookup(items)
  local out = {}
  for _, item in ipairs(items) do
    local versions, err, code = self:versions(item.name)
    if not versions then
      return nil, ("cannot read %s from the registry index: %s"):format(item.name, err), code
    end
    local entry = versions[item.version]
    if entry and entry.cksum ~= item.cksum then
      local _, msg, ccode = self:check(item.name, item.version, item.cksum)
      return nil, msg, ccode
    end
    out[item.name] = { state = entry and "same" or "absent", new_crate = next(versions) == nil }
  end
  return out
end

-- The Web API's root as config.json names it, without trailing slashes ("" when it
-- names none), or nil, message, code when config.json cannot be read.
function Registry:api_root()
  local cfg, err, code = self:config()
  if not cfg then
    return nil, err, code
  end
  return ((cfg.api or ""):gsub("/+$", ""))
end

-- The crates.io answer to an API token on an endpoint that takes only a browser session:
-- the token authenticated, and the registry will not say more.
local WEBSITE_ONLY = "this action can only be performed on the crates.io website"

-- What the registry says of the token, asked without publishing anything (GET
-- /api/v1/me): true and the user's login when it knows the token; true, nil, "website"
-- when it accepts the token but does not let it read more (crates.io); "unknown" when
-- the registry has no way to ask; nil, message, "EAUTH" when it refuses the token.
function Registry:check_token()
  local api, err0, code0 = self:api_root()
  if api == "" then
    return "unknown"
  elseif not api then
    return nil, err0, code0
  elseif not self.token or self.token == "" then
    return nil, ("no token for the registry %s"):format(api), "EAUTH"
  end
  local res, err, code = self:get(api .. "/api/v1/me", { ["Authorization"] = self.token, ["Accept"] = "application/json" })
  if not res then
    return nil, err, code
  elseif res.status == 200 then
    local me = json.decode(res.body)
    local user = type(me) == "table" and type(me.user) == "table" and me.user.login
    return true, type(user) == "string" and user or nil
  elseif res.status == 401 or res.status == 403 then
    local detail = errors_of(res.body) or ("status " .. res.status)
    if detail:find(WEBSITE_ONLY, 1, true) then
      return true, nil, "website"
    end
    return nil, ("the registry %s refused the token: %d %s"):format(api, res.status, detail), "EAUTH"
  end
  return "unknown"
end

-- PUT /api/v1/crates/new. Honours 429 Retry-After (seconds or an HTTP date).
function Registry:publish(metadata, crate)
  local api, aerr, acode = self:api_root()
  if not api then
    return nil, aerr, acode
  elseif api == "" then
    return nil, ("%s has no Web API (config.json has no api)"):format(self.index), "EREGISTRY"
  elseif not self.token or self.token == "" then
    return nil, ("no token for the registry %s"):format(api), "EAUTH"
  end
  local url = api .. "/api/v1/crates/new"
  local body = registry.publish_body(metadata, crate)
  local what = ("publish %s %s to %s"):format(metadata.name, metadata.vers, api)
  for attempt = 1, self.retries + 1 do
    local res, err, code = http.request {
      method = "PUT", url = url, body = body, timeout = self.deadline,
      headers = { ["Authorization"] = self.token, ["Content-Type"] = "application/octet-stream",
        ["Accept"] = "application/json", ["User-Agent"] = "cdp" },
    }
    if not res then
      -- The upload may or may not have landed: the caller checks the index again.
      return nil, ("%s: %s"):format(what, err), code
    end
    local detail = errors_of(res.body)
    if res.status >= 200 and res.status < 300 and not detail then
      return true
    end
    if res.status == 429 and attempt <= self.retries then
      local after = res.headers["retry-after"]
      local wait = tonumber(after)
      if not wait and after then
        local at = http.parse_date(after)
        wait = at and math.max(at - proc.time(), 0)
      end
      wait = wait or 60
      if wait > self.max_wait then
        return nil, ("%s: rate limited for %ds, more than max_wait %ds"):format(what, math.ceil(wait), self.max_wait), "ERATELIMIT"
      end
      self.log(("%s: rate limited (429); waiting %.0fs as Retry-After asks"):format(what, wait))
      self.sleep(wait)
    else
      local code_for = (res.status == 401 or res.status == 403) and "EAUTH"
        or res.status == 429 and "ERATELIMIT" or "EREGISTRY"
      return nil, ("%s: %d %s"):format(what, res.status, detail or res.body:sub(1, 200)), code_for
    end
  end
end

-- Wait until the index shows NAME VERSION with CKSUM (dependents need it to resolve).
function Registry:wait_visible(name, version, cksum, timeout)
  local deadline = proc.clock() + (timeout or 120)
  local delay = 0.2
  while true do
    local state, err, code = self:check(name, version, cksum)
    if state == "same" then
      return true
    elseif not state then
      return nil, err, code
    end
    if proc.clock() >= deadline then
      return nil, ("%s %s was accepted but the index %s does not show it after %ds")
        :format(name, version, self.index, timeout or 120), "ETIMEDOUT"
    end
    self.sleep(delay)
    delay = math.min(delay * 2, 5)
  end
end

-- The .crate file's checksum as the index records it.
function registry.cksum(path)
  return fs.sha256_file(path)
end

return registry
