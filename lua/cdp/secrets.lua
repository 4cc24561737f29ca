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

-- What the commands a stage runs (cargo, build scripts, tests, hooks) get of cdp's
-- environment: these names, and prefixes ending in '*'; nothing else, so no token
-- of the pipeline's reaches them whatever its name (see proc.child_env). A
-- pipeline adds names with `child_env = { "DATABASE_URL", "MYAPP_*" }`.
secrets.CHILD_ENV = {
  -- the system and the user
  "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TZ", "LANG", "LANGUAGE", "LC_*",
  "TMPDIR", "TMP", "TEMP", "NO_COLOR", "COLORTERM", "CI", "SOURCE_DATE_EPOCH",
  -- cargo and rustc
  "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "RUSTC", "RUSTC_WRAPPER", "RUSTDOC",
  "RUSTFLAGS", "RUSTDOCFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_*", "CARGO_TARGET_*",
  "CARGO_PROFILE_*", "CARGO_INCREMENTAL", "CARGO_TERM_*", "CARGO_NET_*", "CARGO_HTTP_*",
  "CARGO_REGISTRIES_*", "RUST_BACKTRACE", "RUST_LOG", "RUST_MIN_STACK", "RUST_TEST_THREADS",
  -- C toolchains build scripts call
  "CC", "CXX", "AR", "LD", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "PKG_CONFIG*",
  "LD_LIBRARY_PATH", "LIBRARY_PATH", "CPATH", "C_INCLUDE_PATH",
  -- certificates and proxies
  "SSL_CERT_FILE", "SSL_CERT_DIR", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY",
  "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "all_proxy",
  -- git, as cargo package reads the repository
  "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
  "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL",
  -- sanitizers of an instrumented build
  "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "MSAN_OPTIONS",
}

-- The proc.child_env policy of run RUN_ID: the allow list plus EXTRA names, with
-- CDP_RUN=RUN_ID in every child, so a resumed run can find what a killed one left.
function secrets.child_policy(run_id, extra)
  local allow = {}
  for i, name in ipairs(secrets.CHILD_ENV) do
    allow[i] = name
  end
  for _, name in ipairs(extra or {}) do
    allow[#allow + 1] = name
  end
  return { allow = allow, set = run_id and { CDP_RUN = run_id } or {} }
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
