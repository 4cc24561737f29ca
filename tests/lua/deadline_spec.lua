-- A forge or registry that hangs costs the http_timeout setting, not every attempt's
-- timeout and backoff: against a peer that accepts connections and never answers, a
-- call gives up once its total deadline has passed, naming the URL and the setting,
-- after as many attempts as fit in it (one, when an attempt's own timeout is longer).
local support = require "tests.lua.support"
local forge = require "cdp.forge"
local registry = require "cdp.registry"

local q = support.quote

-- A peer that accepts every connection and never says a word; it appends a line to
-- COUNT for each connection it accepts.
local function hanging_peer()
  local count = support.tmpdir() .. "/connections"
  local pipe, ports = support.start_fixture(("python3 -c %s %s"):format(q([[
import socket, sys, threading
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print("PORT %d" % s.getsockname()[1], flush=True)
held = []
def serve():
    while True:
        c, _ = s.accept(); held.append(c)
        with open(sys.argv[1], "a") as f: f.write("x\n")
threading.Thread(target=serve, daemon=True).start()
sys.stdin.read()
]]), q(count)))
  return "http://127.0.0.1:" .. ports.PORT, pipe, function()
    return #((support.read(count) or ""):gsub("[^\n]", ""))
  end
end

describe("http_timeout", function()
  it("bounds a forge call that never gets an answer", function()
    local url, pipe, connections = hanging_peer()
    local gh = forge.github { api = url, token = "t", repo = "o/r", deadline = 1.5, backoff = 0.01 }
    local res, msg, code = gh:find_pull("cdp/release/main")
    pipe:close()
    assert.is_nil(res)
    assert.are.equal("ETIMEDOUT", code)
    assert.matches("GET " .. url .. "/repos/o/r/pulls?state=open&head=o%3Acdp%2Frelease%2Fmain: no answer within 1.5s "
      .. "(http_timeout)", msg, 1, true)
    -- each attempt may take 30 s, and 5 retries are allowed: the deadline left room for one
    assert.are.equal(1, connections())
  end)

  it("bounds a registry index read the same way", function()
    local url, pipe, connections = hanging_peer()
    local reg = registry.new { index = "sparse+" .. url .. "/index/", deadline = 1.5 }
    local versions, msg, code = reg:versions("demo-core")
    pipe:close()
    assert.is_nil(versions)
    assert.are.equal("ETIMEDOUT", code)
    assert.matches("GET " .. url .. "/index/de/mo/demo-core: no answer within 1.5s (http_timeout)", msg, 1, true)
    assert.are.equal(1, connections())
  end)

  it("is a setting the release stages that talk to peers read, 60 s unless set", function()
    local release = require "cdp.release"
    assert.are.equal(60, release.SETTINGS.http_timeout.default)
    for _, name in ipairs { "merge", "publish" } do
      assert.is_truthy(require("cdp.stages." .. name).settings.http_timeout, name)
    end
    assert.is_truthy(require("cdp.stages.validate").settings.http_timeout)
  end)
end)
