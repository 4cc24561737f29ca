-- Typed errors. An engine module says what kind of failure it met; cdp.cli alone
-- decides how it is shown and which exit code it gives, so no module below the
-- command line needs to know about either.
--
--   errors.usage(msg, command)  bad usage (an unknown stage, run id or option): exit 2,
--                               one line and "Try 'cdp help COMMAND'"
--   errors.world(msg, code)     a failure of the world outside any stage (EROFS, ENOSPC,
--                               a lock, a peer): exit 1, one line naming the path or URL
--   errors.check(ok, msg, code) `assert` for calls that return nil, msg, code: raises a
--                               world error with their message, else returns OK
--   errors.is(e) -> true when E is one of these
--
-- Anything else that reaches cdp.cli (a Lua error in a script or in cdp itself) is shown
-- with its traceback, exit 2.
local errors = {}

local Error = { __name = "cdp.Error" }
Error.__tostring = function(e)
  return e.msg
end

function errors.is(e)
  return getmetatable(e) == Error
end

function errors.new(code, msg, fields)
  local e = { code = code, msg = msg }
  for k, v in pairs(fields or {}) do
    e[k] = v
  end
  return setmetatable(e, Error)
end

function errors.usage(msg, command)
  error(errors.new("usage", tostring(msg), { command = command }), 0)
end

function errors.world(msg, code)
  error(errors.new(code or "EFAIL", tostring(msg)), 0)
end

function errors.check(ok, msg, code, ...)
  if not ok then
    errors.world(msg or "failed", code)
  end
  return ok, msg, code, ...
end

-- Whether E is a usage error.
function errors.is_usage(e)
  return errors.is(e) and e.code == "usage"
end

return errors
