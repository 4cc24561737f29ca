-- Secrets in the environment: which variables hold them, and taking them out of it.
--
-- cdp takes every variable named like a secret (GITHUB_TOKEN, CARGO_REGISTRY_TOKEN,
-- CDP_GIT_TOKEN, SMTP_PASSWORD, ...) out of its environment when it starts
-- (cdp.cli), and the settings and alert sinks that name others (cdp.secret("ENV"))
-- take those when they read them. A taken value stays in cdp's memory: os.getenv
-- and proc.getenv still return it, but no child inherits it and /proc/<cdp>/environ
-- no longer shows it (see proc.take_env).
local proc = require "cdp.proc"

local secrets = {}

-- Words that make an environment variable's name a secret's.
secrets.WORDS = { "TOKEN", "PASSWORD", "PASSWD", "SECRET", "API_KEY", "APIKEY" }

function secrets.is_secret_name(name)
  local upper = tostring(name):upper()
  for _, word in ipairs(secrets.WORDS) do
    if upper:find(word, 1, true) then
      return true
    end
  end
  return false
end

-- The value of the secret in environment variable NAME, taken out of the environment.
function secrets.take(name)
  return proc.take_env(name)
end

-- Take every variable named like a secret. Returns their names, sorted.
function secrets.take_all()
  local names = {}
  for name in pairs(proc.environ()) do
    if secrets.is_secret_name(name) then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    proc.take_env(name)
  end
  return names
end

-- The environment as cdp sees it: what is left of it, plus the secrets taken.
function secrets.environ()
  local env = proc.environ()
  for name, value in pairs(proc.taken()) do
    env[name] = value
  end
  return env
end

return secrets
