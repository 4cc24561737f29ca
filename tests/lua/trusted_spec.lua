-- cdp.trusted against the test registry's stand-ins for GitHub's OIDC issuer and
-- crates.io's Trusted Publishing exchange (tests/fixtures/registry.py --trusted).
-- Each case runs cdp in a process of its own, with the environment a CI job has.
local support = require "tests.lua.support"
local q = support.quote

local REQUEST = "oidc-request-token-spec-19"

describe("cdp.trusted", function()
  local pid, api

  setup(function()
    local dir = support.tmpdir()
    support.sh(("setsid python3 tests/fixtures/registry.py --root %s --trusted demo-org/demo --trusted-environment release-publish --oidc-request-token %s >%s 2>%s & echo $! >%s")
      :format(q(dir .. "/reg"), REQUEST, q(dir .. "/port"), q(dir .. "/log"), q(dir .. "/pid")))
    local port
    for _ = 1, 100 do
      port = (support.read(dir .. "/port") or ""):match("PORT (%d+)")
      if port then break end
      support.sh("sleep 0.1")
    end
    assert(port, "registry did not start: " .. (support.read(dir .. "/log") or ""))
    pid = support.read(dir .. "/pid"):match("%d+")
    api = "http://127.0.0.1:" .. port
  end)

  teardown(function()
    if pid then
      support.sh("kill " .. pid, { may_fail = true })
    end
  end)

  -- Run CODE (Lua, printing what the test reads) in cdp with ENV ({NAME = value}).
  local function cdp(env, code)
    local parts = { "env -i PATH=\"$PATH\"" }
    for k, v in pairs(env) do
      parts[#parts + 1] = ("%s=%s"):format(k, q(v))
    end
    parts[#parts + 1] = q(support.cdp()) .. " -e " .. q(code)
    return (support.sh(table.concat(parts, " ")):gsub("%s+$", ""))
  end

  local function job_env(repository, environment)
    return { GITHUB_ACTIONS = "true", GITHUB_REPOSITORY = repository,
      ACTIONS_ID_TOKEN_REQUEST_URL = ("%s/_oidc/token?repository=%s&environment=%s"):format(api, repository, environment),
      ACTIONS_ID_TOKEN_REQUEST_TOKEN = REQUEST }
  end

  it("exchanges the job's OIDC token, publishes with the short-lived token, revokes it, and is refused after", function()
    local out = cdp(job_env("demo-org/demo", "release-publish"), ([[
      local t = require "cdp.trusted"
      local http = require "cdp.http"
      local jwt = assert(t.id_token(t.audience(%q)))
      local token = assert(t.exchange(%q, jwt))
      local function put()
        return http.request { method = "PUT", url = %q .. "/api/v1/crates/new", body = "x",
          headers = { Authorization = token } }.status
      end
      local before = put()
      assert(t.revoke(%q, token))
      local again, msg = t.revoke(%q, token)
      print(before, put(), again, msg ~= nil, token:find("^cio_tp_") ~= nil)
      -- a JWT is good for one exchange
      print((select(2, t.exchange(%q, jwt))):match("exchanged already") ~= nil)
    ]]):format(api, api, api, api, api, api))
    -- 400: a malformed body, past authentication; 403 once revoked
    assert.are.equal("400\t403\tnil\ttrue\ttrue\ntrue", out)
  end)

  it("says what to configure when the registry refuses the exchange", function()
    local out = cdp(job_env("someone/else", "release-publish"), ([[
      local t = require "cdp.trusted"
      local jwt = assert(t.id_token(t.audience(%q)))
      local token, msg, code = t.exchange(%q, jwt)
      print(token, code)
      print(msg)
    ]]):format(api, api))
    local first, msg = out:match("^([^\n]*)\n(.*)$")
    assert.are.equal("nil\tEAUTH", first)
    assert.matches("refused the Trusted Publishing exchange", msg, 1, true)
    assert.matches("no trusted publisher for repository 'someone/else'", msg, 1, true)
    assert.matches("add repository someone/else", msg, 1, true)
    assert.is_nil(msg:find("\n", 1, true), "one line")
    local wrong_env = cdp(job_env("demo-org/demo", "staging"), ([[
      local t = require "cdp.trusted"
      print(select(2, t.exchange(%q, assert(t.id_token(t.audience(%q))))))
    ]]):format(api, api))
    assert.matches("needs environment 'release-publish', not 'staging'", wrong_env, 1, true)
  end)

  it("says a GitHub job needs id-token: write when it cannot ask for a token", function()
    local out = cdp({ GITHUB_ACTIONS = "true" }, [[
      local t = require "cdp.trusted"
      print(t.id_token("crates.io"))
    ]])
    assert.matches("^nil\t[^\n]*permissions: id%-token: write[^\n]*\tENOOIDC$", out)
    local outside = cdp({}, [[print(select(2, require("cdp.trusted").source()))]])
    assert.matches("GitHub Actions and GitLab CI jobs only", outside, 1, true)
    local gitlab = cdp({ GITLAB_CI = "true", CDP_ID_TOKEN = "a.b.c" }, [[
      local t = require "cdp.trusted"
      print(t.source(), t.id_token("crates.io"))
    ]])
    assert.are.equal("gitlab\ta.b.c", gitlab)
  end)

  it("treats an unset token and \"trusted\" as asking for it, and any other token as not", function()
    local t = require "cdp.trusted"
    assert.is_true(t.wanted(nil))
    assert.is_true(t.wanted(""))
    assert.is_true(t.wanted("trusted"))
    assert.is_false(t.wanted("cio_long_lived"))
    assert.are.equal("127.0.0.1:8080", t.audience("http://127.0.0.1:8080/"))
    assert.are.equal("crates.io", t.audience("https://crates.io"))
  end)
end)
