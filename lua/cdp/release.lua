-- What the release stages share: their settings and defaults, the Release Fork, the
-- crates a plan releases, and tag names. One place for each, so stages agree.
local git = require "cdp.git"
local semver = require "cdp.semver"

local release = {}

-- Every setting the stdlib stages read, with its default. A pipeline script sets
-- them in `settings = {...}`; CDP_<KEY> and --set key=value override them.
release.DEFAULTS = {
  ref = "HEAD",                    -- what Activate releases: a branch, tag or commit
  base_branch = "",                -- the PR's base; "" = the branch the trigger ref is on, else "main"
  remote = "origin",               -- where tags and the release branch are pushed
  tag_template = "",               -- "" = "{crate}-v{version}", or "v{version}" for one crate
  prerelease = "",                 -- a label such as "dev" makes -dev.N releases
  test_timeout = 1800,             -- seconds, per test command
  test_clippy = false,
  test_fmt = false,
  forge_api = "https://api.github.com",
  forge_repo = "",                 -- "owner/name"; "" = read from the remote's URL
  registry_index = "sparse+https://index.crates.io/",
  registry_limits = "crates.io",   -- "crates.io" paces new crates and versions; "none" does not
  registry_index_timeout = 300,    -- seconds to wait for a published version to show in the index
  git_username = "x-access-token", -- user name sent with git_token over HTTPS
}

-- ctx.settings[key], or its default.
function release.setting(ctx, key)
  local v = ctx.settings and ctx.settings[key]
  if v == nil then
    v = release.DEFAULTS[key]
  end
  return v
end

-- The Release Fork recorded by Activate, opened. Raises when it is gone.
function release.open_fork(fork)
  local repo, err = git.open(fork.path)
  if not repo then
    error(("the release fork %s is gone (%s); start a new run"):format(fork.path, err), 0)
  end
  return repo
end

-- The tag name for CRATE at VERSION under TEMPLATE ("" = the default for WS).
function release.tag_name(template, crate, version, single)
  if template == nil or template == "" then
    template = single and "v{version}" or "{crate}-v{version}"
  end
  return (template:gsub("{crate}", crate):gsub("{version}", version))
end

-- Entries of a plan that release something (bump ~= "none"), in plan order.
function release.planned(plan)
  local out = {}
  for _, c in ipairs(plan.crates or {}) do
    if c.bump and c.bump ~= "none" and c.next and c.next ~= c.current then
      out[#out + 1] = c
    end
  end
  return out
end

-- Those of them that go to a registry (publish ~= false).
function release.publishable(plan)
  local out = {}
  for _, c in ipairs(release.planned(plan)) do
    if c.publish ~= false then
      out[#out + 1] = c
    end
  end
  return out
end

-- "chore(release): a 1.0.1, b 0.2.0" for the crates in LIST.
function release.summary(list)
  local parts = {}
  for _, c in ipairs(list) do
    parts[#parts + 1] = ("%s %s"):format(c.name, c.next)
  end
  return "chore(release): " .. table.concat(parts, ", ")
end

function release.is_prerelease(version)
  local v = semver.parse(version)
  return v ~= nil and v.pre ~= nil and #v.pre > 0
end

-- Check that REPO's HEAD and status are what they were: Validate and Test must
-- leave the fork exactly as they found it.
function release.snapshot(repo)
  local status = repo:status { untracked = true }
  local lines = {}
  for _, s in ipairs(status) do
    lines[#lines + 1] = s.status .. " " .. s.path
  end
  return { head = repo:head(), status = table.concat(lines, "\n") }
end

function release.same_snapshot(a, b)
  if a.head ~= b.head then
    return false, ("HEAD moved from %s to %s"):format(a.head, b.head)
  end
  if a.status ~= b.status then
    return false, ("the working tree changed:\n%s"):format(b.status ~= "" and b.status or "(now clean)")
  end
  return true
end

-- Whether the fork at PATH still holds COMMIT (for stages' verify).
function release.fork_has(path, commit)
  local repo = git.open(path)
  if not repo then
    return false, ("the release fork %s is gone"):format(path)
  end
  local found = repo:resolve(commit)
  repo:close()
  if found ~= commit then
    return false, ("the release fork %s no longer has commit %s"):format(path, commit)
  end
  return true
end

return release
