-- Changelogs derived from git history.
--
-- A release's entries come from its commits, parsed as Conventional Commits, grouped
-- into sections (breaking changes first). The text is made by a template — a Lua
-- table with `header` and `render(release)` — so a team can replace the format
-- (stdlib/cdp/templates/keepachangelog.lua is the default). Writing into an existing
-- CHANGELOG.md only ever inserts the new section (or replaces the one generated for
-- the same version): every byte written by hand stays as it was.
local commits = require "cdp.commits"
local semver = require "cdp.semver"

local changelog = {}

-- Commit type -> section title, in the order sections appear. Types not listed
-- (chore, ci, test, style, build) are left out of changelogs by default; breaking
-- changes of any type are always in.
changelog.DEFAULT_GROUPS = {
  { types = { "feat" }, title = "Added" },
  { types = { "fix" }, title = "Fixed" },
  { types = { "perf" }, title = "Performance" },
  { types = { "refactor" }, title = "Changed" },
  { types = { "revert" }, title = "Reverted" },
  { types = { "docs" }, title = "Documentation" },
  { types = { "security" }, title = "Security" },
  { types = { "other" }, title = "Other" },
}
changelog.BREAKING_TITLE = "Breaking changes"

-- The web address of a commit and of a compare view, for remotes whose forge we know.
function changelog.links(remote_url)
  if type(remote_url) ~= "string" then
    return nil
  end
  local host, path = remote_url:match("^https?://([^/]+)/(.-)%.git$")
  if not host then
    host, path = remote_url:match("^https?://([^/]+)/(.-)/*$")
  end
  if not host then
    host, path = remote_url:match("^[^@/]+@([^:]+):(.-)%.git$")
  end
  if not host then
    host, path = remote_url:match("^[^@/]+@([^:]+):(.-)$")
  end
  if not host or not path:match("^[^/]+/[^/]+$") then
    return nil
  end
  host = host:gsub("^.*@", "") -- credentials in the remote's URL are no part of a link
  local base = "https://" .. host .. "/" .. path
  return {
    commit = function(id) return base .. "/commit/" .. id end,
    compare = function(from, to) return ("%s/compare/%s...%s"):format(base, from, to) end,
  }
end

-- Group COMMITS ({id, summary, message, parsed?}, newest first) into sections.
-- Returns { {title, entries = { {id, scope, text, breaking, commit} } } } in GROUPS order,
-- breaking changes first; reverted pairs that cancel out are left out.
function changelog.sections(list, groups)
  groups = groups or changelog.DEFAULT_GROUPS
  local items = {}
  for i, c in ipairs(list) do
    items[i] = { id = c.id, summary = c.summary, message = c.message,
      parsed = c.parsed or commits.parse(c.message or c.summary or "") }
  end
  local effective = commits.effective(items)
  local by_type = {}
  for _, g in ipairs(groups) do
    for _, t in ipairs(g.types) do
      by_type[t] = g
    end
  end
  local breaking = { title = changelog.BREAKING_TITLE, entries = {} }
  local sections = {}
  for _, g in ipairs(groups) do
    sections[g] = { title = g.title, entries = {} }
  end
  for _, c in ipairs(effective) do
    local p = c.parsed
    local entry = { id = c.id, scope = p.scope, text = p.description, breaking = p.breaking, commit = c }
    if p.breaking then
      breaking.entries[#breaking.entries + 1] = {
        id = c.id, scope = p.scope, breaking = true, commit = c,
        text = (p.breaking_note and p.breaking_note ~= p.description)
          and (p.description .. " — " .. p.breaking_note) or p.description,
      }
    end
    local g = by_type[p.type]
    if g then
      local s = sections[g].entries
      s[#s + 1] = entry
    end
  end
  local out = {}
  if #breaking.entries > 0 then
    out[1] = breaking
  end
  for _, g in ipairs(groups) do
    if #sections[g].entries > 0 then
      out[#out + 1] = sections[g]
    end
  end
  return out
end

-- The default template, or TEMPLATE given as a table or a module name.
local function template_of(template)
  if type(template) == "string" then
    return require(template)
  end
  return template or require "cdp.templates.keepachangelog"
end

-- Render one release section. RELEASE: { crate, version, previous_tag, tag, date,
-- commits (newest first), remote (URL or nil), groups }.
function changelog.render(release, template)
  local t = template_of(template)
  local r = {}
  for k, v in pairs(release) do r[k] = v end
  r.sections = changelog.sections(release.commits or {}, release.groups)
  r.links = changelog.links(release.remote)
  return t.render(r)
end

-- Headings of release sections ("## [0.2.0] - ..." / "## 0.2.0 ...") and where they start.
local function release_headings(text)
  local found = {}
  local pos = 1
  while pos <= #text do
    local line_end = text:find("\n", pos, true) or #text
    local line = text:sub(pos, line_end)
    local version = line:match("^##%s+%[v?(%d+%.%d+%.%d+[%w.+-]*)%]") or line:match("^##%s+v?(%d+%.%d+%.%d+[%w.+-]*)")
    if version then
      found[#found + 1] = { version = version, start = pos }
    elseif line:match("^##%s") then
      found[#found + 1] = { start = pos } -- an unversioned heading, e.g. [Unreleased]
    end
    pos = line_end + 1
  end
  return found
end

-- Insert SECTION (the text of one release) into EXISTING (a CHANGELOG.md, or nil).
-- The new section goes before the first versioned release heading (so below the
-- preamble and any [Unreleased] block), or at the end when there is none. A section
-- already there for VERSION is replaced. With opts.fold = true,
-- sections of VERSION's pre-releases (0.4.0-dev.1, -dev.2 for 0.4.0) are removed: the
-- graduated release lists their changes itself.
function changelog.insert(existing, section, version, opts)
  opts = opts or {}
  local t = template_of(opts.template)
  if existing == nil or existing == "" then
    return t.header .. section
  end
  local text = existing
  local target = semver.parse(version)
  local headings = release_headings(text)
  -- Remove (from the end, so offsets hold) the sections to replace or fold.
  for i = #headings, 1, -1 do
    local h = headings[i]
    local remove = h.version == version
    if not remove and opts.fold and h.version and target then
      local v = semver.parse(h.version)
      remove = v and v.pre and #v.pre > 0 and v.major == target.major and v.minor == target.minor
        and v.patch == target.patch
    end
    if remove then
      local stop = headings[i + 1] and headings[i + 1].start or #text + 1
      text = text:sub(1, h.start - 1) .. text:sub(stop)
    end
  end
  headings = release_headings(text)
  local at
  for _, h in ipairs(headings) do
    if h.version then
      at = h.start
      break
    end
  end
  if not at then
    local sep = text:sub(-1) == "\n" and "" or "\n"
    local blank = text:sub(-2) == "\n\n" and "" or "\n"
    return text .. sep .. blank .. section
  end
  return text:sub(1, at - 1) .. section .. text:sub(at)
end

-- The section of VERSION in TEXT (without its heading), for release notes.
function changelog.extract(text, version)
  for i, h in ipairs(release_headings(text or "")) do
    if h.version == version then
      local hs = release_headings(text)
      local stop = hs[i + 1] and hs[i + 1].start or #text + 1
      local section = text:sub(h.start, stop - 1)
      return (section:gsub("^[^\n]*\n", ""):gsub("^%s+", ""):gsub("%s+$", ""))
    end
  end
  return nil
end

return changelog
