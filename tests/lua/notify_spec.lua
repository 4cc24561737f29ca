-- cdp.notify against real peers on loopback: tests/fixtures/http_server.py
-- and MailDev (tests/fixtures/maildev.sh). MailDev missing is a failure.
local notify = require "cdp.notify"
local http = require "cdp.http"
local cjson = require "cjson"
local support = require "tests.lua.support"

local root = os.getenv("CDP_SOURCE_DIR") or "."

local uptime, start, closed_port = support.uptime, support.start_fixture, support.closed_port

-- Results by id.
local function by_id(results)
  local t = {}
  for _, r in ipairs(results) do
    assert.is_nil(t[r.id], "reported twice: " .. r.id)
    t[r.id] = r
  end
  return t
end

describe("cdp.notify", function()
  local server, base

  setup(function()
    local ports
    server, ports = start("python3 " .. root .. "/tests/fixtures/http_server.py")
    base = "http://127.0.0.1:" .. ports.PORT
  end)

  teardown(function()
    if server then
      server:close()
    end
  end)

  local function count(key)
    return tonumber(assert(http.request { url = base .. "/count/" .. key }).body)
  end

  it("posts without waiting for a slow endpoint", function()
    local q <close> = notify.queue { timeout = 10 }
    local t0 = uptime()
    assert.is_true(q:post { id = "slow", kind = "http", method = "POST", url = base .. "/slow/2", body = "{}" })
    assert.is_true(q:post { id = "after", url = base .. "/status/204" })
    local took = uptime() - t0
    assert.is_true(took < 0.5, "post took " .. took .. " s")
    assert.equal(2, q:pending())
    local results = by_id(q:flush(10))
    assert.is_true(uptime() - t0 >= 1.9)
    assert.same({ id = "slow", ok = true, attempts = 1, status = 200 }, results.slow)
    assert.same({ id = "after", ok = true, attempts = 1, status = 204 }, results.after)
    assert.equal(0, q:pending())
  end)

  it("retries a flaky endpoint with backoff until it answers", function()
    local q <close> = notify.queue { retries = 3, backoff = 0.05 }
    assert(q:post { id = "flaky", method = "POST", url = base .. "/flaky/flaky-a/2", body = "x" })
    local r = by_id(q:flush(10)).flaky
    assert.same({ id = "flaky", ok = true, attempts = 3, status = 200 }, r)
    assert.equal(3, count("flaky-a"))
  end)

  it("gives up on a 5xx after the retries", function()
    local q <close> = notify.queue { retries = 2, backoff = 0.05 }
    assert(q:post { id = "down", url = base .. "/status/500?key=down-a" })
    local r = by_id(q:flush(10)).down
    assert.is_false(r.ok)
    assert.equal(3, r.attempts)
    assert.equal(500, r.status)
    assert.equal("EHTTP", r.code)
    assert.matches("^EHTTP: HTTP 500: ", r.error)
    assert.equal(3, count("down-a"))
  end)

  it("fails a 4xx at once, without retrying", function()
    local q <close> = notify.queue { retries = 3, backoff = 0.05 }
    assert(q:post { id = "gone", url = base .. "/status/404?key=gone-a" })
    local r = by_id(q:flush(10)).gone
    assert.is_false(r.ok)
    assert.equal(1, r.attempts)
    assert.equal(404, r.status)
    assert.equal("EHTTP", r.code)
    assert.equal(1, count("gone-a"))
  end)

  it("waits as long as Retry-After asks, not just the backoff", function()
    local q <close> = notify.queue { retries = 2, backoff = 0.05 }
    local t0 = uptime()
    assert(q:post { id = "busy", url = base .. "/retry-after/busy-a" })
    local r = by_id(q:flush(10)).busy
    assert.same({ id = "busy", ok = true, attempts = 2, status = 200 }, r)
    -- The date is 2 s ahead with 1 s resolution: at least 1 s, far more than 0.05.
    assert.is_true(uptime() - t0 >= 0.95, "retried after " .. (uptime() - t0) .. " s")
    assert.equal(2, count("busy-a"))
  end)

  it("reports a dead endpoint through poll, once", function()
    local q <close> = notify.queue { retries = 1, backoff = 0.05 }
    local url = "http://127.0.0.1:" .. closed_port() .. "/hook"
    assert(q:post { id = "dead", url = url })
    local results, t0 = {}, uptime()
    while #results == 0 and uptime() - t0 < 10 do
      os.execute("sleep 0.05")
      results = q:poll()
    end
    assert.equal(1, #results)
    assert.same({ id = "dead", ok = false, attempts = 2, code = "ECONNREFUSED",
                  error = "ECONNREFUSED: connection refused: " .. url }, results[1])
    assert.same({}, q:poll())
    assert.same({}, q:flush(1))
  end)

  it("keeps credentials out of results", function()
    local q <close> = notify.queue { retries = 0 }
    local port = closed_port()
    assert(q:post { id = "secret", url = "http://hook-user:hunter2-pw@127.0.0.1:" .. port .. "/x",
                    headers = { Authorization = "Bearer tok-987654321" } })
    local r = by_id(q:flush(10)).secret
    assert.is_false(r.ok)
    assert.equal("ECONNREFUSED", r.code)
    assert.not_matches("hunter2", r.error)
    assert.not_matches("hook%-user", r.error)
    assert.not_matches("tok%-987654321", r.error)
  end)

  it("refuses jobs beyond its capacity without blocking", function()
    local q = notify.queue { capacity = 2, timeout = 5 }
    assert.is_true(q:post { id = "a", url = base .. "/slow/3" })
    assert.is_true(q:post { id = "b", url = base .. "/slow/3" })
    local t0 = uptime()
    local ok, err, code = q:post { id = "c", url = base .. "/status/200" }
    assert.is_true(uptime() - t0 < 0.5)
    assert.is_nil(ok)
    assert.equal("EFULL: notification queue full (2)", err)
    assert.equal("EFULL", code)
    assert.equal(2, q:pending())
    local results = by_id(q:close(0.2))
    assert.equal("EDEADLINE", results.a.code)
    assert.equal("EDEADLINE", results.b.code)
    assert.is_nil(results.c)
  end)

  it("abandons what the flush deadline leaves, as EDEADLINE", function()
    local q <close> = notify.queue { timeout = 10 }
    assert(q:post { id = "in-flight", url = base .. "/slow/5" })
    assert(q:post { id = "waiting", url = base .. "/status/200?key=waiting-a" })
    local t0 = uptime()
    local results = by_id(q:flush(0.5))
    local took = uptime() - t0
    assert.is_true(took >= 0.45 and took < 2, "flush took " .. took .. " s")
    assert.is_false(results["in-flight"].ok)
    assert.equal("EDEADLINE", results["in-flight"].code)
    assert.equal(1, results["in-flight"].attempts)
    assert.matches("^EDEADLINE: ", results["in-flight"].error)
    assert.is_false(results.waiting.ok)
    assert.equal("EDEADLINE", results.waiting.code)
    assert.equal(0, results.waiting.attempts)
    assert.equal(0, q:pending())
    -- The abandoned in-flight job is not reported again, and the queue still works.
    assert(q:post { id = "later", url = base .. "/status/200" })
    assert.same({ later = { id = "later", ok = true, attempts = 1, status = 200 } }, by_id(q:flush(10)))
    assert.equal(0, count("waiting-a"))
  end)

  it("closes once, and raises when used closed", function()
    local q = notify.queue {}
    assert(q:post { id = "one", url = base .. "/status/200" })
    local results = q:close()
    assert.same({ { id = "one", ok = true, attempts = 1, status = 200 } }, results)
    assert.same({}, q:close())
    assert.matches("closed", tostring(q))
    assert.has_error(function() q:post { id = "x", url = base } end, "attempt to use a closed notification queue")
    assert.has_error(function() q:poll() end)
    assert.has_error(function() q:flush(1) end)
    assert.has_error(function() q:pending() end)
  end)

  it("delivers what is pending when closed by scope", function()
    do
      local q <close> = notify.queue {}
      assert(q:post { id = "scoped", url = base .. "/status/200?key=scoped-a" })
    end
    assert.equal(1, count("scoped-a"))
  end)

  it("raises on misuse", function()
    assert.has_error(function() notify.queue { capacity = 0 } end)
    assert.has_error(function() notify.queue { retries = -1 } end)
    assert.has_error(function() notify.queue { timeout = 0 } end)
    local q <close> = notify.queue {}
    assert.has_error(function() q:post { url = base } end, "field 'id': string expected, got nil")
    assert.has_error(function() q:post { id = "x", kind = "pigeon", url = base } end)
    assert.has_error(function() q:post { id = "x" } end, "field 'url': string expected, got nil")
    assert.has_error(function() q:post { id = "x", url = base, headers = { ["X-A"] = "1\n2" } } end)
    assert.has_error(function() q:post { id = "x", kind = "smtp", url = "smtp://127.0.0.1:1" } end)
    assert.equal(0, q:pending())
  end)

  describe("smtp", function()
    it("delivers a mail job to MailDev", function()
      local maildev, ports = start("bash " .. root .. "/tests/fixtures/maildev.sh")
      local q = notify.queue { retries = 1, backoff = 0.05 }
      local subject = "notify " .. os.time()
      assert(q:post { id = "mail", kind = "smtp", url = "smtp://127.0.0.1:" .. ports.SMTP,
                      from = "cdp@example.org", to = { "ops@example.org" }, subject = subject,
                      body = "run failed", headers = { ["X-Cdp-Event"] = "run.failed" }, tls = "try" })
      assert(q:post { id = "nomail", kind = "smtp", url = "smtp://127.0.0.1:" .. closed_port(),
                      from = "cdp@example.org", to = "ops@example.org", subject = "x", body = "y" })
      local results = by_id(q:close(10))
      local list = assert(http.request { url = "http://127.0.0.1:" .. ports.WEB .. "/api/email" })
      maildev:close()
      assert.same({ id = "mail", ok = true, attempts = 1 }, results.mail)
      assert.is_false(results.nomail.ok)
      assert.equal("ECONNREFUSED", results.nomail.code)
      assert.equal(2, results.nomail.attempts)
      local found
      for _, mail in ipairs(cjson.decode(list.body)) do
        if mail.subject == subject then
          found = mail
        end
      end
      assert(found, "no mail with subject " .. subject .. " in " .. list.body)
      assert.equal("run failed\n", found.text)
      assert.equal("run.failed", found.headers["x-cdp-event"])
      assert.equal("ops@example.org", found.envelope.to[1].address)
    end)
  end)
end)
