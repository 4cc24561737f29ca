-- The forge client against the GitHub stand-in, which has Prism check every request
-- against GitHub's own OpenAPI description.
local support = require "tests.lua.support"
local forge = require "cdp.forge"
local json = require "cdp.json"
local http = require "cdp.http"

local dir, env, base, gh, waits
local TOKEN = "forge-spec-token-5c1f"

local function control(body)
  assert(http.request { method = "POST", url = base .. "/_control", body = json.encode(body) })
end

local function lines(path)
  local text = support.read(path) or ""
  local out = {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = json.decode(l) end
  return out
end

describe("cdp.forge (GitHub REST through Prism)", function()
  lazy_setup(function()
    dir = support.tmpdir()
    support.sh("bash tests/fixtures/peers.sh start " .. support.quote(dir) .. " " .. TOKEN)
    env = {}
    for k, v in (support.read(dir .. "/peers.env")):gmatch("([%w_]+)=([^\n]*)") do env[k] = v end
    base = env.FORGE_API
  end)
  lazy_teardown(function()
    support.sh("bash tests/fixtures/peers.sh stop " .. support.quote(dir), { may_fail = true })
  end)
  before_each(function()
    waits = {}
    gh = forge.github { api = base, token = TOKEN, repo = "demo-org/demo", backoff = 0.01,
      sleep = function(s) waits[#waits + 1] = s end }
  end)

  it("reads owner/name from the remote URLs people use", function()
    assert.are.equal("o/r", forge.parse_remote("https://github.com/o/r.git"))
    assert.are.equal("o/r", forge.parse_remote("git@github.com:o/r.git"))
    assert.are.equal("o/r", forge.parse_remote("ssh://git@ghe.example.com/o/r"))
    assert.is_nil(forge.parse_remote("/srv/git/repo.git"))
  end)

  it("opens a pull request, then updates it instead of opening another", function()
    local pr, what = assert(gh:open_or_update_pull { head = "cdp/release/r1", base = "main",
      title = "Release demo-core 0.1.1", body = "plan v1" })
    assert.are.equal("created", what)
    local again, what2 = assert(gh:open_or_update_pull { head = "cdp/release/r1", base = "main",
      title = "Release demo-core 0.1.1", body = "plan v1" })
    assert.are.equal("unchanged", what2)
    assert.are.equal(pr.number, again.number)
    local updated, what3 = assert(gh:open_or_update_pull { head = "cdp/release/r1", base = "main",
      title = "Release demo-core 0.1.1", body = "plan v2" })
    assert.are.equal("updated", what3)
    assert.are.equal("plan v2", updated.body)
    local state = json.decode(http.request { url = base .. "/_state" }.body)
    local open = 0
    for _, p in ipairs(state.pulls) do
      if p.head.ref == "cdp/release/r1" then open = open + 1 end
    end
    assert.are.equal(1, open)
  end)

  it("defuses @-mentions and closing keywords commit text puts into pull requests and releases", function()
    local body = "- fix(core): greet @alice properly, fixes #12"
    local pr = assert(gh:open_or_update_pull { head = "cdp/release/defuse", base = "main", title = "Release", body = body })
    local rel = assert(gh:ensure_release { tag = "defuse-v1.0.0", name = "defuse 1.0.0", body = body })
    local state = json.decode(http.request { url = base .. "/_state" }.body)
    for _, kind in ipairs { "pulls", "releases" } do
      for _, x in ipairs(state[kind]) do
        if x.number == pr.number and kind == "pulls" or x.id == rel.id and kind == "releases" then
          assert.is_nil(x.body:find("@alice", 1, true), x.body)
          assert.is_nil(x.body:find("fixes #12", 1, true), x.body)
          assert.are.equal(body, (x.body:gsub("\226\128\141", "")))
        end
      end
    end
    local _, what = assert(gh:open_or_update_pull { head = "cdp/release/defuse", base = "main", title = "Release", body = body })
    assert.are.equal("unchanged", what) -- compared as sent, not as given
  end)

  it("creates a release once", function()
    local rel, what = assert(gh:ensure_release { tag = "demo-core-v0.1.1", name = "demo-core 0.1.1", body = "notes" })
    assert.are.equal("created", what)
    local again, what2 = assert(gh:ensure_release { tag = "demo-core-v0.1.1", name = "demo-core 0.1.1", body = "notes" })
    assert.are.equal("exists", what2)
    assert.are.equal(rel.id, again.id)
  end)

  it("reports a wrong token with the API's message and never the token", function()
    local bad = forge.github { api = base, token = "wrong-token-77", repo = "demo-org/demo",
      sleep = function() end }
    local pr, msg, code = bad:open_or_update_pull { head = "x", base = "main", title = "t", body = "b" }
    assert.is_nil(pr)
    assert.are.equal("EAUTH", code)
    assert.matches("401 Bad credentials", msg, 1, true)
    assert.is_nil(msg:find("wrong-token-77", 1, true))
  end)

  it("reports an unknown repository as ENOTFOUND", function()
    local other = forge.github { api = base, token = TOKEN, repo = "demo-org/missing", sleep = function() end }
    local rel, msg, code = other:ensure_release { tag = "v1.0.0", name = "v1.0.0", body = "" }
    assert.is_nil(rel)
    assert.are.equal("ENOTFOUND", code)
    assert.matches("demo-org/missing", msg, 1, true)
  end)

  it("retries 5xx answers with backoff", function()
    control { fail = { path = "/repos/demo-org/demo/releases", times = 2, status = 502 } }
    local rel, what = assert(gh:ensure_release { tag = "demo-util-v1.0.1", name = "demo-util 1.0.1", body = "" })
    assert.are.equal("created", what)
    assert.are.equal(2, #waits)
    assert.is_true(waits[2] > waits[1])
    assert.are.equal("demo-util-v1.0.1", rel.tag_name)
  end)

  it("looks again when a retried create finds that its first attempt landed", function()
    control { lose_reply = { path = "/repos/demo-org/demo/pulls", times = 1 } }
    local pr, what = assert(gh:open_or_update_pull { head = "cdp/release/lost", base = "main",
      title = "Release after a lost reply", body = "b" })
    assert.are.equal("created", what)
    assert.are.equal("cdp/release/lost", pr.head.ref)
    control { lose_reply = { path = "/repos/demo-org/demo/releases", times = 1 } }
    local rel, rwhat = assert(gh:ensure_release { tag = "lost-v1.0.0", name = "lost 1.0.0", body = "" })
    assert.are.equal("exists", rwhat)
    assert.are.equal("lost-v1.0.0", rel.tag_name)
    local state = json.decode(http.request { url = base .. "/_state" }.body)
    local n = 0
    for _, p in ipairs(state.pulls) do
      if p.head.ref == "cdp/release/lost" then n = n + 1 end
    end
    assert.are.equal(1, n)
  end)

  it("waits out a rate limit until x-ratelimit-reset", function()
    control { rate_limit = { times = 1, reset_in = 2 } }
    assert(gh:release_for_tag("demo-core-v0.1.1"))
    assert.are.equal(1, #waits)
    assert.is_true(waits[1] > 0 and waits[1] <= 4, "waited " .. tostring(waits[1]))
  end)

  it("sent nothing Prism finds against GitHub's description, and Prism does catch a bad request", function()
    assert.are.same({}, lines(dir .. "/forge/violations.jsonl"))
    local ok, msg = gh:call("POST", "/repos/demo-org/demo/pulls", { title = 5, head = "x" })
    assert.is_nil(ok)
    assert.matches("422 request violates GitHub's OpenAPI description", msg, 1, true)
    local found = lines(dir .. "/forge/violations.jsonl")
    assert.are.equal(1, #found)
    assert.matches("title must be string", json.encode(found[1]), 1, true)
    -- Every request that reached the forge named the API version and asked for JSON.
    for _, r in ipairs(lines(dir .. "/forge/requests.jsonl")) do
      assert.are.equal("2022-11-28", r.headers["x-github-api-version"])
      -- the token went as a Bearer credential (or, for the wrong-token client, another one)
      assert.is_truthy(r.headers.authorization == "Bearer <the token>"
        or r.headers.authorization == "Bearer <another value>", tostring(r.headers.authorization))
      assert.is_nil(json.encode(r):find(TOKEN, 1, true))
    end
  end)
end)
