-- The forge: GitHub's REST API (and what GitHub Enterprise, Gitea and Forgejo share of
-- it) for pull requests and releases.
--
-- Every call retries what a forge means as "later" — 5xx, secondary rate limits and
-- 403/429 with x-ratelimit-remaining: 0 — with backoff, honouring Retry-After and
-- x-ratelimit-reset, within a total deadline: a forge that hangs costs `deadline`
-- seconds (the http_timeout setting), not every attempt's timeout and backoff. Waits
-- the forge itself asks for are bounded by max_wait instead. A 4xx is final and reported with the API's own message. The token
-- goes into the Authorization header only; no message or return value carries it.
local http = require "cdp.http"
local json = require "cdp.json"
local proc = require "cdp.proc"
local text = require "cdp.text"

local forge = {}

-- "https://github.com/o/r.git", "git@github.com:o/r.git", "ssh://git@host/o/r" -> "o/r"
function forge.parse_remote(url)
  if type(url) ~= "string" then
    return nil
  end
  local path = url:match("^[%w+.-]+://[^/]+/(.+)$") or url:match("^[^@/]+@[^:]+:(.+)$")
  if not path then
    return nil
  end
  path = path:gsub("%.git$", ""):gsub("/+$", "")
  local owner, name = path:match("^([^/]+)/([^/]+)$")
  if not owner then
    return nil
  end
  return owner .. "/" .. name
end

local Forge = {}
Forge.__index = Forge
Forge.__name = "cdp.forge.GitHub"
function Forge:__tostring()
  return ("cdp.forge.GitHub (%s, %s)"):format(self.api, self.repo)
end

-- forge.github{ api = "https://api.github.com", token = "...", repo = "owner/name",
--   retries = 5, backoff = 1, max_wait = 120, timeout = 30 (each attempt), deadline = 60 (all of a
--   call's attempts and backoff), sleep = proc.sleep, log = fn }
function forge.github(opts)
  assert(type(opts) == "table", "forge.github: options table expected")
  assert(type(opts.repo) == "string" and opts.repo:match("^[^/]+/[^/]+$"),
    "forge.github: repo must be 'owner/name'")
  return setmetatable({
    api = (opts.api or "https://api.github.com"):gsub("/+$", ""),
    token = opts.token,
    repo = opts.repo,
    retries = opts.retries or 5,
    backoff = opts.backoff or 1,
    max_wait = opts.max_wait or 120,
    timeout = opts.timeout or 30,
    deadline = opts.deadline or 60,
    sleep = opts.sleep or proc.sleep,
    log = opts.log or function() end,
  }, Forge)
end

local function api_message(body)
  local decoded = json.decode(body or "")
  if type(decoded) ~= "table" then
    return (body or ""):sub(1, 200)
  end
  local msg = decoded.message or ""
  if type(decoded.errors) == "table" then
    local details = {}
    for _, e in ipairs(decoded.errors) do
      if type(e) == "table" then
        details[#details + 1] = e.message or e.code
      end
    end
    if #details > 0 then
      msg = msg .. ": " .. table.concat(details, "; ")
    end
  end
  return msg
end

local function code_for(status)
  if status == 401 or status == 403 then
    return "EAUTH"
  elseif status == 404 then
    return "ENOTFOUND"
  elseif status == 409 or status == 422 then
    return "ECONFLICT"
  end
  return "EFORGE"
end

-- How long the forge asks us to wait, or nil when the answer is not a "later".
local function wait_for(res, attempt, backoff)
  local h = res.headers
  local rate_limited = (res.status == 403 or res.status == 429)
    and (h["x-ratelimit-remaining"] == "0" or h["retry-after"])
  if not (res.status >= 500 or res.status == 429 or rate_limited) then
    return nil
  end
  local after = h["retry-after"]
  if after then
    local seconds = tonumber(after)
    if not seconds then
      local at = http.parse_date(after)
      seconds = at and (at - proc.time())
    end
    if seconds then
      return math.max(seconds, 0)
    end
  end
  local reset = tonumber(h["x-ratelimit-reset"])
  if rate_limited and reset then
    return math.max(reset - proc.time(), 0) + 1
  end
  return backoff * 2 ^ (attempt - 1)
end

-- One REST call. Returns the response with its decoded body as .data, or nil, message,
-- code (and the response, when there was one).
function Forge:call(method, path, body)
  local url = self.api .. path
  local headers = {
    ["Accept"] = "application/vnd.github+json, application/json",
    ["X-GitHub-Api-Version"] = "2022-11-28",
    ["User-Agent"] = "cdp",
  }
  if self.token and self.token ~= "" then
    headers["Authorization"] = "Bearer " .. self.token
  end
  local payload
  if body ~= nil then
    payload = json.encode(body)
    headers["Content-Type"] = "application/json"
  end
  local what = ("%s %s"):format(method, url)
  local deadline = proc.clock() + self.deadline
  local function expired(last)
    return nil, ("%s: no answer within %gs (http_timeout)%s"):format(what, self.deadline,
      last and ("; last: " .. last) or ""), "ETIMEDOUT"
  end
  for attempt = 1, self.retries + 1 do
    local left = deadline - proc.clock()
    if left <= 0 then
      return expired()
    end
    local res, err, code = http.request {
      method = method, url = url, headers = headers, body = payload, timeout = math.min(self.timeout, left),
    }
    local wait
    if not res then
      if attempt > self.retries then
        return nil, ("%s: %s"):format(what, err), code
      end
      wait = self.backoff * 2 ^ (attempt - 1)
      self.log(("%s: %s; retrying in %.1fs"):format(what, err, wait))
    elseif res.status >= 200 and res.status < 300 then
      res.data = res.body ~= "" and json.decode(res.body) or nil
      return res
    else
      wait = wait_for(res, attempt, self.backoff)
      if not wait or attempt > self.retries then
        return nil, ("%s: %d %s"):format(what, res.status, api_message(res.body)), code_for(res.status), res
      end
      if wait > self.max_wait then
        return nil, ("%s: %d %s (the forge asks to wait %ds, more than max_wait %ds)")
          :format(what, res.status, api_message(res.body), math.ceil(wait), self.max_wait), "ERATELIMIT", res
      end
      self.log(("%s: %d %s; retrying in %.1fs"):format(what, res.status, api_message(res.body), wait))
      if res.headers["retry-after"] or res.headers["x-ratelimit-reset"] then
        deadline = deadline + wait -- the forge's own "later": max_wait bounds it
      end
    end
    if proc.clock() + wait >= deadline then
      return expired(res and ("%d %s"):format(res.status, api_message(res.body)) or err)
    end
    self.sleep(wait)
  end
end

local function owner(self)
  return self.repo:match("^([^/]+)/")
end

-- The open pull request whose head is HEAD (a branch of this repository), or nil.
function Forge:find_pull(head)
  local path = ("/repos/%s/pulls?state=open&head=%s"):format(self.repo,
    http.urlencode(owner(self) .. ":" .. head))
  local res, err, code = self:call("GET", path)
  if not res then
    return nil, err, code
  end
  for _, pr in ipairs(res.data or {}) do
    if type(pr.head) == "table" and pr.head.ref == head then
      return pr
    end
  end
  return nil
end

-- Open a pull request from HEAD to BASE, or update the open one for HEAD.
-- Returns the pull request and "created" | "updated" | "unchanged".
-- What goes onto a forge page from commit text: defused, so that an @-mention in a
-- commit pings nobody and "fixes #12" closes nothing when the pull request merges.
local function page_text(s)
  return s and text.defuse(s) or s
end

function Forge:open_or_update_pull(opts)
  opts = { head = opts.head, base = opts.base, title = page_text(opts.title), body = page_text(opts.body) }
  local existing, err, code = self:find_pull(opts.head)
  if err then
    return nil, err, code
  end
  if existing then
    if existing.title == opts.title and existing.body == opts.body then
      return existing, "unchanged"
    end
    local res, uerr, ucode = self:call("PATCH", ("/repos/%s/pulls/%d"):format(self.repo, existing.number),
      { title = opts.title, body = opts.body })
    if not res then
      return nil, uerr, ucode
    end
    return res.data, "updated"
  end
  local res, cerr, ccode = self:call("POST", ("/repos/%s/pulls"):format(self.repo), {
    title = opts.title, head = opts.head, base = opts.base, body = opts.body,
    maintainer_can_modify = true,
  })
  if not res then
    -- A retried POST whose first attempt landed (its answer lost) is told the pull
    -- request exists: look again rather than fail.
    local found = ccode == "ECONFLICT" and self:find_pull(opts.head)
    if found then
      return found, "created"
    end
    return nil, cerr, ccode
  end
  return res.data, "created"
end

-- Open pull requests into BASE (every page), oldest first.
function Forge:open_pulls(base)
  local out, page = {}, 1
  while true do
    local path = ("/repos/%s/pulls?state=open&base=%s&sort=created&direction=asc&per_page=100&page=%d")
      :format(self.repo, http.urlencode(base), page)
    local res, err, code = self:call("GET", path)
    if not res then
      return nil, err, code
    end
    local list = type(res.data) == "table" and res.data or {}
    for _, pr in ipairs(list) do
      out[#out + 1] = pr
    end
    if #list < 100 then
      return out
    end
    page = page + 1
  end
end

-- The pull request NUMBER, or nil, message, code.
function Forge:pull(number)
  local res, err, code = self:call("GET", ("/repos/%s/pulls/%d"):format(self.repo, number))
  if not res then
    return nil, err, code
  end
  return res.data
end

-- A comment on pull request (or issue) NUMBER.
function Forge:comment(number, body)
  local res, err, code = self:call("POST", ("/repos/%s/issues/%d/comments"):format(self.repo, number), { body = body })
  if not res then
    return nil, err, code
  end
  return res.data
end

-- Close pull request NUMBER without merging it.
function Forge:close_pull(number)
  local res, err, code = self:call("PATCH", ("/repos/%s/pulls/%d"):format(self.repo, number), { state = "closed" })
  if not res then
    return nil, err, code
  end
  return res.data
end

-- What the forge says of the checks on commit SHA, statuses and check runs together:
-- { state = "success" | "pending" | "failure", total = n, failing = {names}, pending = {names} }.
-- A commit nothing reports on is "success": a repository without CI has nothing to wait for.
function Forge:checks(sha)
  local out = { total = 0, failing = {}, pending = {} }
  -- One status or check run: OUTCOME is "pending", "success" or what went wrong.
  local function count(name, outcome)
    out.total = out.total + 1
    if outcome == "pending" then
      out.pending[#out.pending + 1] = name
    elseif outcome ~= "success" then
      out.failing[#out.failing + 1] = ("%s (%s)"):format(name, tostring(outcome))
    end
  end
  local res, err, code = self:call("GET", ("/repos/%s/commits/%s/status"):format(self.repo, sha))
  if not res then
    return nil, err, code
  end
  for _, st in ipairs(type(res.data) == "table" and res.data.statuses or {}) do
    count(st.context or "status", st.state)
  end
  local runs, rerr, rcode = self:call("GET", ("/repos/%s/commits/%s/check-runs?per_page=100"):format(self.repo, sha))
  if not runs then
    return nil, rerr, rcode
  end
  local fine = { success = true, neutral = true, skipped = true }
  for _, run in ipairs(type(runs.data) == "table" and runs.data.check_runs or {}) do
    count(run.name or "check run", run.status ~= "completed" and "pending"
      or fine[run.conclusion] and "success" or run.conclusion)
  end
  out.state = #out.failing > 0 and "failure" or #out.pending > 0 and "pending" or "success"
  return out
end

-- Merge pull request NUMBER by METHOD ("merge" | "squash" | "rebase"), only while its
-- head is still SHA. Returns { sha = merge commit, merged = true }, or nil, message, code.
function Forge:merge_pull(number, opts)
  local res, err, code = self:call("PUT", ("/repos/%s/pulls/%d/merge"):format(self.repo, number), {
    merge_method = opts.method, sha = opts.sha, commit_title = opts.title,
  })
  if not res then
    return nil, err, code
  end
  return res.data
end

-- What the token may do in this repository: { push = bool | nil, scopes = {...} | nil,
-- login = ... }. push is nil when the forge does not say (no permissions in its answer).
function Forge:access()
  local res, err, code = self:call("GET", "/repos/" .. self.repo)
  if not res then
    return nil, err, code
  end
  local perms = type(res.data) == "table" and type(res.data.permissions) == "table" and res.data.permissions or nil
  local out = { push = perms and perms.push }
  local scopes = res.headers and res.headers["x-oauth-scopes"]
  if scopes then
    out.scopes = {}
    for scope in scopes:gmatch("[^,%s]+") do
      out.scopes[#out.scopes + 1] = scope
    end
  end
  return out
end

-- The release for TAG, or nil when there is none.
function Forge:release_for_tag(tag)
  local res, err, code = self:call("GET", ("/repos/%s/releases/tags/%s"):format(self.repo, http.urlencode(tag)))
  if res then
    return res.data
  elseif code == "ENOTFOUND" then
    return nil
  end
  return nil, err, code
end

-- Create the release for TAG unless it exists. Returns it and "created" | "exists".
function Forge:ensure_release(opts)
  opts = { tag = opts.tag, name = opts.name, body = page_text(opts.body), prerelease = opts.prerelease }
  local existing, err, code = self:release_for_tag(opts.tag)
  if err then
    return nil, err, code
  end
  if existing then
    return existing, "exists"
  end
  local res, cerr, ccode = self:call("POST", ("/repos/%s/releases"):format(self.repo), {
    tag_name = opts.tag, name = opts.name, body = opts.body,
    draft = false, prerelease = opts.prerelease and true or false,
  })
  if not res then
    local found = ccode == "ECONFLICT" and self:release_for_tag(opts.tag) -- see open_or_update_pull
    if found then
      return found, "exists"
    end
    return nil, cerr, ccode
  end
  return res.data, "created"
end

return forge
