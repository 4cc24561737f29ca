-- Trusted Publishing: instead of a long-lived registry token, a CI job proves who it is
-- with the OIDC token its CI system gives it, and the registry answers with a token
-- that lives for minutes. crates.io's scheme:
--   GitHub Actions  GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<registry host>, with
--                   Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN -> {"value": jwt}
--                   (the job needs `permissions: id-token: write`)
--   GitLab CI       the job's ID token in CDP_ID_TOKEN (id_tokens: in .gitlab-ci.yml)
--   exchange        POST <api>/api/v1/trusted_publishing/tokens {"jwt": jwt} -> {"token": t}
--   revoke          DELETE <api>/api/v1/trusted_publishing/tokens, Authorization: Bearer t
-- Neither token is logged: callers hand both to ctx.keep_secret.
local http = require "cdp.http"
local json = require "cdp.json"
local proc = require "cdp.proc"

local trusted = {}

trusted.PATH = "/api/v1/trusted_publishing/tokens"

local function env(name)
  local v = proc.getenv(name)
  return v ~= "" and v or nil
end

-- Whether the registry_token setting asks for Trusted Publishing: unset, or "trusted".
function trusted.wanted(token)
  return token == nil or token == "" or token == "trusted"
end

-- Where this job's OIDC token comes from: "github", "gitlab", or nil and why not.
function trusted.source()
  if env("ACTIONS_ID_TOKEN_REQUEST_URL") and env("ACTIONS_ID_TOKEN_REQUEST_TOKEN") then
    return "github"
  elseif env("CDP_ID_TOKEN") then
    return "gitlab"
  elseif env("GITHUB_ACTIONS") == "true" then
    return nil, "this GitHub Actions job cannot ask for an OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL is not set): "
      .. "give the Publish job `permissions: id-token: write` (cdp export github-actions does)"
  elseif env("GITLAB_CI") == "true" then
    return nil, "this GitLab CI job has no ID token in CDP_ID_TOKEN: give the Publish job "
      .. "`id_tokens: { CDP_ID_TOKEN: { aud: <registry host> } }` (cdp export gitlab-ci does)"
  end
  return nil, "Trusted Publishing works in GitHub Actions and GitLab CI jobs only"
end

-- The audience the registry expects: the host (and port) of its Web API URL.
function trusted.audience(api)
  return (api:match("^%a+://([^/]+)")) or api
end

-- What the registry must be told to trust this job, for messages.
local function publisher()
  if env("GITHUB_REPOSITORY") then
    local workflow = (env("GITHUB_WORKFLOW_REF") or ""):match("/([^/@]+)@") or env("GITHUB_WORKFLOW") or "?"
    return ("repository %s, workflow %s%s"):format(env("GITHUB_REPOSITORY"), workflow,
      env("GITHUB_ENVIRONMENT") and (", environment " .. env("GITHUB_ENVIRONMENT")) or "")
  elseif env("CI_PROJECT_PATH") then
    return ("project %s"):format(env("CI_PROJECT_PATH"))
  end
  return "this CI job"
end

-- The job's OIDC token for AUDIENCE, or nil, msg, code.
function trusted.id_token(audience)
  local source, why = trusted.source()
  if source == "gitlab" then
    return env("CDP_ID_TOKEN")
  elseif not source then
    return nil, why, "ENOOIDC"
  end
  local url = env("ACTIONS_ID_TOKEN_REQUEST_URL")
  url = url .. (url:find("?", 1, true) and "&" or "?") .. "audience=" .. http.urlencode(audience)
  local res, err, code = http.request { url = url, timeout = 30, headers = {
    ["Authorization"] = "Bearer " .. env("ACTIONS_ID_TOKEN_REQUEST_TOKEN"), ["Accept"] = "application/json",
    ["User-Agent"] = "cdp" } }
  if not res then
    return nil, ("cannot ask GitHub for an OIDC token: %s"):format(err), code
  end
  local body = json.decode(res.body or "")
  if res.status ~= 200 or type(body) ~= "table" or type(body.value) ~= "string" or body.value == "" then
    return nil, ("GitHub gave no OIDC token (%d): check the job's `permissions: id-token: write`"):format(res.status),
      "ENOOIDC"
  end
  return body.value
end

local function detail(res)
  local body = json.decode(res.body or "")
  if type(body) == "table" and type(body.errors) == "table" and type(body.errors[1]) == "table" then
    return tostring(body.errors[1].detail)
  end
  return (res.body or ""):sub(1, 200)
end

-- Exchange JWT at the registry whose Web API is API: the short-lived token, or nil, msg, code.
function trusted.exchange(api, jwt)
  local url = api:gsub("/+$", "") .. trusted.PATH
  local res, err, code = http.request { method = "POST", url = url, timeout = 30, body = json.encode { jwt = jwt },
    headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json", ["User-Agent"] = "cdp" } }
  if not res then
    return nil, ("cannot reach %s for Trusted Publishing: %s"):format(url, err), code
  end
  local body = json.decode(res.body or "")
  if res.status >= 200 and res.status < 300 and type(body) == "table" and type(body.token) == "string" then
    return body.token
  end
  return nil, ("the registry refused the Trusted Publishing exchange at %s (%d: %s): add %s as a trusted publisher of each crate in the registry's settings, or set CARGO_REGISTRY_TOKEN")
    :format(url, res.status, detail(res), publisher()), "EAUTH"
end

-- Revoke the short-lived TOKEN at API: true, or nil, msg, code.
function trusted.revoke(api, token)
  local url = api:gsub("/+$", "") .. trusted.PATH
  local res, err, code = http.request { method = "DELETE", url = url, timeout = 30,
    headers = { ["Authorization"] = "Bearer " .. token, ["User-Agent"] = "cdp" } }
  if not res then
    return nil, ("cannot revoke the Trusted Publishing token at %s: %s"):format(url, err), code
  end
  if res.status >= 200 and res.status < 300 then
    return true
  end
  return nil, ("cannot revoke the Trusted Publishing token at %s: %d %s"):format(url, res.status, detail(res)),
    "EREGISTRY"
end

return trusted
