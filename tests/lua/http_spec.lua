-- cdp.http against real peers on loopback: tests/fixtures/http_server.py and
-- MailDev (tests/fixtures/maildev.sh). MailDev missing is a failure, not a skip.
local http = require "cdp.http"
local cjson = require "cjson"
local support = require "tests.lua.support"

local root = os.getenv("CDP_SOURCE_DIR") or "."

local uptime, start, closed_port = support.uptime, support.start_fixture, support.closed_port

describe("cdp.http", function()
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

  it("names the libcurl it runs on", function()
    assert.matches("^libcurl %d+%.%d+%.%d+", http.version())
  end)

  describe("request", function()
    it("GETs, sending the headers given", function()
      local r = assert(http.request { url = base .. "/echo", headers = { ["X-Cdp-Test"] = "yes" } })
      assert.equal(200, r.status)
      local echo = cjson.decode(r.body)
      assert.equal("GET", echo.method)
      assert.equal("/echo", echo.path)
      assert.equal("yes", echo.headers["x-cdp-test"])
      assert.equal("", echo.body)
      assert.equal(base .. "/echo", r.url)
      assert.is_number(r.time)
      assert.is_true(r.time >= 0 and r.time < 10)
    end)

    it("POSTs and PUTs a body, exactly", function()
      local body = '{"a": 1, "z": "\0binary\r\n"}'
      for _, method in ipairs { "POST", "PUT", "PATCH" } do
        local r = assert(http.request {
          method = method,
          url = base .. "/echo",
          headers = { ["Content-Type"] = "application/json" },
          body = body,
        })
        local echo = cjson.decode(r.body)
        assert.equal(method, echo.method)
        assert.equal(body, echo.body)
        assert.equal("application/json", echo.headers["content-type"])
        assert.equal(tostring(#body), echo.headers["content-length"])
        assert.is_nil(echo.headers["expect"])
      end
    end)

    it("sends DELETE and HEAD without a body", function()
      local r = assert(http.request { method = "DELETE", url = base .. "/echo" })
      assert.equal("DELETE", cjson.decode(r.body).method)
      r = assert(http.request { method = "HEAD", url = base .. "/echo" })
      assert.equal(200, r.status)
      assert.equal("", r.body)
    end)

    it("lower-cases header names and joins repeated headers", function()
      local r = assert(http.request { url = base .. "/headers" })
      assert.equal("a=1, b=2", r.headers["set-cookie"])
      assert.equal("one, two", r.headers["x-multi"])
      assert.equal("only", r.headers["x-single"])
      assert.equal("7", r.headers["content-length"])
      for name in pairs(r.headers) do
        assert.equal(name:lower(), name)
      end
    end)

    it("returns HTTP error statuses as answers", function()
      for _, status in ipairs { 404, 500, 503 } do
        local r, err = http.request { url = base .. "/status/" .. status }
        assert.is_nil(err)
        assert.equal(status, r.status)
        assert.equal("status " .. status, r.body)
      end
    end)

    it("follows redirects only when asked", function()
      local r = assert(http.request { url = base .. "/redirect" })
      assert.equal(302, r.status)
      assert.equal("/echo", r.headers.location)
      r = assert(http.request { url = base .. "/redirect", follow = true })
      assert.equal(200, r.status)
      assert.equal(base .. "/echo", r.url)
      assert.equal("GET", cjson.decode(r.body).method)
    end)

    it("refuses a body larger than max_body", function()
      local r, err, code = http.request { url = base .. "/big/1000", max_body = 999 }
      assert.is_nil(r)
      assert.equal("EHTTP", code)
      assert.matches("max_body", err)
      r = assert(http.request { url = base .. "/big/1000", max_body = 1000 })
      assert.equal(1000, #r.body)
    end)

    it("times out within a bounded time", function()
      local t0 = uptime()
      local r, err, code = http.request { url = base .. "/slow/5", timeout = 0.5 }
      local took = uptime() - t0
      assert.is_nil(r)
      assert.equal("ETIMEDOUT", code)
      assert.matches("^ETIMEDOUT: timed out: " .. base:gsub("%p", "%%%0") .. "/slow/5", err)
      assert.is_true(took >= 0.4 and took < 2.5, "took " .. took .. " s")
    end)

    it("reports a refused connection", function()
      local port = closed_port()
      local url = "http://127.0.0.1:" .. port .. "/x"
      local r, err, code = http.request { url = url }
      assert.is_nil(r)
      assert.equal("ECONNREFUSED", code)
      assert.equal("ECONNREFUSED: connection refused: " .. url, err)
    end)

    it("reports a host that does not resolve", function()
      local r, err, code = http.request { url = "http://no-such-host.cdp-test.invalid/x", timeout = 10 }
      assert.is_nil(r)
      assert.equal("EHOST", code)
      assert.matches("no%-such%-host%.cdp%-test%.invalid", err)
    end)

    it("reports malformed and unsupported URLs", function()
      for _, url in ipairs { "http://[::1/x", "http://127.0.0.1:99999999/", "file:///etc/passwd", "gopher://127.0.0.1/" } do
        local r, err, code = http.request { url = url }
        assert.is_nil(r, url)
        assert.equal("EURL", code, url .. ": " .. tostring(err))
        assert.matches("^EURL: ", err)
      end
    end)

    it("keeps userinfo and header values out of messages and results", function()
      local secret_url = "http://cdp-user:hunter2-secret@127.0.0.1:"
      local headers = { Authorization = "Bearer tok-0123456789" }
      -- The credentials do reach the server, so the redaction below is not vacuous.
      local r = assert(http.request { url = secret_url .. base:match(":(%d+)$") .. "/echo", headers = headers })
      local echo = cjson.decode(r.body)
      assert.equal("Bearer tok-0123456789", echo.headers.authorization)
      assert.equal(base .. "/echo", r.url)

      local failures = {
        { url = secret_url .. closed_port() .. "/x", headers = headers },
        { url = "http://cdp-user:hunter2-secret@no-such-host.cdp-test.invalid/x", headers = headers },
        { url = secret_url .. base:match(":(%d+)$") .. "/slow/5", headers = headers, timeout = 0.3 },
        { url = "http://cdp-user:hunter2-secret@[::1/x", headers = headers },
      }
      for _, spec in ipairs(failures) do
        local res, err, code = http.request(spec)
        assert.is_nil(res)
        assert.is_string(code)
        assert.not_matches("hunter2", err)
        assert.not_matches("cdp%-user", err)
        assert.not_matches("tok%-0123456789", err)
        assert.not_matches("hunter2", code)
      end
    end)

    it("raises on misuse", function()
      assert.has_error(function() http.request() end)
      assert.has_error(function() http.request { } end, "field 'url': string expected, got nil")
      assert.has_error(function() http.request { url = base, headers = { ["X-A"] = "a\r\nX-Injected: 1" } } end)
      assert.has_error(function() http.request { url = base, headers = { ["Bad Name"] = "a" } } end)
      assert.has_error(function() http.request { url = base, method = "get" } end)
      assert.has_error(function() http.request { url = base, timeout = "soon" } end)
      assert.has_error(function() http.request { url = base, body = {} } end)
    end)
  end)

  describe("dates and URLs", function()
    it("parses and formats HTTP dates", function()
      assert.equal(1445412480, http.parse_date("Wed, 21 Oct 2015 07:28:00 GMT"))
      assert.equal("Wed, 21 Oct 2015 07:28:00 GMT", http.format_date(1445412480))
      assert.equal("Thu, 01 Jan 1970 00:00:00 GMT", http.format_date(0))
      assert.is_nil(http.parse_date("not a date"))
      local now = os.time()
      assert.equal(now, http.parse_date(http.format_date(now)))
    end)

    it("percent-encodes all but unreserved characters", function()
      assert.equal("a%20b%2Fc%3F%26%3D~-._%C3%BC", http.urlencode("a b/c?&=~-._ü"))
      assert.equal("", http.urlencode(""))
    end)
  end)

  describe("smtp", function()
    local maildev, web, smtp_url

    setup(function()
      local ports
      maildev, ports = start("bash " .. root .. "/tests/fixtures/maildev.sh")
      web = "http://127.0.0.1:" .. ports.WEB
      smtp_url = "smtp://127.0.0.1:" .. ports.SMTP
    end)

    teardown(function()
      if maildev then
        maildev:close()
      end
    end)

    local function received(subject)
      local r = assert(http.request { url = web .. "/api/email" })
      assert.equal(200, r.status)
      for _, mail in ipairs(cjson.decode(r.body)) do
        if mail.subject == subject then
          return mail
        end
      end
      error("no mail with subject " .. subject .. " in " .. r.body)
    end

    it("delivers a composed message with subject, body and headers", function()
      local subject = "Release ünïcode " .. os.time() .. " — with a subject long enough to need folding"
      assert.is_true(assert(http.smtp {
        url = smtp_url,
        from = "cdp <cdp@example.org>",
        to = { "alice@example.org", "Bob <bob@example.org>" },
        subject = subject,
        body = "stage failed\n.dotted line\nlast",
        headers = { ["X-Cdp-Event"] = "stage.failed" },
        tls = "try",
      }))
      local mail = received(subject)
      assert.equal("stage failed\n.dotted line\nlast\n", mail.text)
      assert.equal("stage.failed", mail.headers["x-cdp-event"])
      assert.equal("1.0", mail.headers["mime-version"])
      assert.matches("^<.+@example%.org>$", mail.headers["message-id"])
      local source = assert(http.request { url = web .. "/api/email/" .. mail.id .. "/source" }).body
      assert.matches("^Date: %a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d %+0000\r\n", source)
      assert.matches("\r\nContent%-Type: text/plain; charset=utf%-8\r\n", source)
      assert.matches("\r\nSubject: =%?UTF%-8%?B%?", source)
      assert.matches("\r\n\r\nstage failed\r\n%.dotted line\r\nlast", source)
      assert.equal("cdp@example.org", mail.from[1].address)
      assert.equal("alice@example.org", mail.to[1].address)
      assert.equal("bob@example.org", mail.to[2].address)
      assert.equal("Bob", mail.to[2].name)
      assert.equal(2, #mail.envelope.to)
    end)

    it("sends a whole message given as text", function()
      local subject = "whole " .. os.time()
      assert(http.smtp {
        url = smtp_url,
        from = "cdp@example.org",
        to = "carol@example.org",
        message = "From: cdp@example.org\r\nTo: carol@example.org\r\nSubject: " .. subject .. "\r\n\r\nas given\r\n",
      })
      local mail = received(subject)
      assert.equal("as given\n", mail.text)
      assert.equal("carol@example.org", mail.envelope.to[1].address)
    end)

    it("fails with ETLS when TLS is required and not offered", function()
      local ok, err, code = http.smtp { url = smtp_url, from = "a@example.org", to = "b@example.org", subject = "x", body = "y", tls = "require" }
      assert.is_nil(ok)
      assert.equal("ETLS", code)
      assert.matches("^ETLS: ", err)
    end)

    it("refuses a password without TLS required, before connecting", function()
      local base = { from = "a@example.org", to = "b@example.org", subject = "x", body = "y" }
      local function send(extra)
        local spec = {}
        for k, v in pairs(base) do spec[k] = v end
        for k, v in pairs(extra) do spec[k] = v end
        return http.smtp(spec)
      end
      for _, extra in ipairs {
        { url = "smtp://mail.example.invalid:587", username = "cdp", password = "pw-in-clear-1" },
        { url = "smtp://mail.example.invalid:587", username = "cdp", password = "pw-in-clear-1", tls = "try" },
        { url = "smtp://cdp:pw-in-clear-1@mail.example.invalid:25", tls = "none" },
      } do
        local ok, err, code = send(extra)
        assert.is_nil(ok)
        assert.equal("EINSECURE", code)
        assert.matches("^EINSECURE: a mail password goes only over TLS", err)
        assert.not_matches("pw%-in%-clear", err)
      end
      -- required TLS, or smtps://, may carry it (these then fail for want of the host)
      assert.equal("EHOST", select(3, send { url = "smtp://mail.example.invalid:587", password = "p", tls = "require" }))
      assert.equal("EHOST", select(3, send { url = "smtps://cdp:p@mail.example.invalid:465" }))
      assert.equal("EHOST", select(3, send { url = "smtp://mail.example.invalid:25" })) -- no password, no demand
    end)

    it("fails with ECONNREFUSED on a closed port", function()
      local url = "smtp://127.0.0.1:" .. closed_port()
      local ok, err, code = http.smtp { url = url, from = "a@example.org", to = "b@example.org", subject = "x", body = "y" }
      assert.is_nil(ok)
      assert.equal("ECONNREFUSED", code)
      assert.equal("ECONNREFUSED: connection refused: " .. url, err)
    end)

    it("reports a rejection with the server's reply, never the password", function()
      local authed, ports = start("bash " .. root .. "/tests/fixtures/maildev.sh --incoming-user cdp --incoming-pass right-pw")
      local url = "smtp://127.0.0.1:" .. ports.SMTP
      local mail = { url = url, from = "a@example.org", to = "b@example.org", subject = "auth", body = "y",
                     username = "cdp", password = "wrong-pw-s3cret", tls = "none" }
      local ok, err, code = http.smtp(mail)
      local ok2, err2, code2 = http.smtp { url = "smtp://cdp:wrong-pw-s3cret@127.0.0.1:" .. ports.SMTP,
                                           from = "a@example.org", to = "b@example.org", subject = "auth", body = "y" }
      mail.password = "right-pw"
      local delivered = http.smtp(mail)
      authed:close()
      assert.is_nil(ok)
      assert.equal("ESMTP", code)
      assert.matches("^ESMTP: rejected by the mail server: " .. url:gsub("%p", "%%%0") .. ": 535", err)
      assert.not_matches("s3cret", err)
      assert.is_nil(ok2)
      assert.equal("ESMTP", code2)
      assert.not_matches("s3cret", err2)
      assert.not_matches("cdp:", err2)
      assert.is_true(delivered)
    end)

    it("raises on misuse", function()
      assert.has_error(function() http.smtp { url = smtp_url, to = "b@x" } end, "field 'from': string expected, got nil")
      assert.has_error(function() http.smtp { url = smtp_url, from = "a@x", to = {} } end)
      assert.has_error(function() http.smtp { url = smtp_url, from = "a@x", to = "b@x", subject = "a\nBcc: c@x" } end)
      assert.has_error(function() http.smtp { url = smtp_url, from = "a@x", to = "b@x", tls = "maybe" } end)
      assert.has_error(function() http.smtp { url = smtp_url, from = "a@x", to = "b@x", message = "m", subject = "s" } end)
    end)
  end)

  it("opens libcurl when HTTP is first used, not when cdp starts", function()
    -- libcurl and its 30 libraries cost every start of cdp (core/curl_lazy.c)
    local code = [[
      local function curl_mapped()
        return (cdp.fs.read("/proc/self/maps") or ""):find("libcurl", 1, true) ~= nil
      end
      print(curl_mapped())
      require("cdp.plan")
      print(curl_mapped())
      print(require("cdp.http").version():match("^libcurl %d") ~= nil, curl_mapped())
    ]]
    local out = support.sh(support.quote(support.cdp()) .. " -e " .. support.quote(code))
    assert.are.equal("false\nfalse\ntrue\ttrue\n", out)
  end)
end)
