-- Changelogs derived from git history, written the way the team already writes them.
--
-- A release's entries come from its commits, parsed as Conventional Commits, grouped
-- into sections (breaking changes first, each listed once). The text is made by a
-- template — a Lua table with `header` and `render(release)` — so a team can replace
-- the format (stdlib/cdp/templates/keepachangelog.lua is the default; docs/changelogs.md
-- says how to write one).
--
-- An existing CHANGELOG.md sets the style: the heading of its newest release says the
-- level (`#` or `##`), brackets or none, a leading `v`, a crate name, a compare link
-- and a date (or none), and the new section is written alike, above that release.
-- Notes written by hand under `## [Unreleased]` move into the new section (merged into
-- its groups by title) and so into the release notes; the Unreleased heading stays.
-- Every other byte written by hand stays as it was: only the new section is inserted
-- (or the one generated for the same version replaced).
local commits = require "cdp.commits"
local semver = require "cdp.semver"
local tags = require "cdp.tags"

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
-- breaking changes first (and only there); reverted pairs that cancel out are left out.
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
    -- A breaking change is listed once, under its own heading: what readers must act on.
    local g = by_type[p.type]
    if p.breaking then
      breaking.entries[#breaking.entries + 1] = {
        id = c.id, scope = p.scope, breaking = true, commit = c, type = p.type,
        text = (p.breaking_note and p.breaking_note ~= p.description)
          and (p.description .. " — " .. p.breaking_note) or p.description,
      }
    elseif g then
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

---------------------------------------------------------------------------
-- Reading a changelog: headings, release headings, their style

-- Markdown ATX headings outside fenced code blocks (a `# install` line in a shell
-- sample is no heading): { start, stop (where its line ends), level, text }.
local function headings_of(text)
  local out, pos, fence = {}, 1, nil
  while pos <= #text do
    local line_end = text:find("\n", pos, true) or #text
    local line = text:sub(pos, line_end):gsub("\r?\n$", "")
    local marker = line:match("^ ? ? ?(```+)") or line:match("^ ? ? ?(~~~+)")
    if fence then
      if marker and marker:sub(1, 1) == fence:sub(1, 1) and #marker >= #fence and line:match("^%s*[`~]+%s*$") then
        fence = nil
      end
    elseif marker then
      fence = marker
    else
      local hashes, rest = line:match("^(#+)%s+(.-)%s*#*%s*$")
      if hashes and #hashes <= 6 then
        out[#out + 1] = { start = pos, stop = line_end + 1, level = #hashes, text = rest }
      end
    end
    pos = line_end + 1
  end
  return out
end

local DATE = "(%d%d%d%d%-%d%d%-%d%d)"

-- What a heading's text says about a release: { version, prefix (text before the
-- version, "v" and a crate name included), brackets, link (the compare URL or nil),
-- date, date_before, date_after }, { unreleased = true }, or nil for other headings.
local function classify(text)
  if text:match("^%[?[Uu][Nn][Rr][Ee][Ll][Ee][Aa][Ss][Ee][Dd]%]?") then
    return { unreleased = true }
  end
  local r = {}
  local label, after
  if text:sub(1, 1) == "[" then
    local close = text:find("]", 2, true)
    if not close then
      return nil
    end
    label, after = text:sub(2, close - 1), text:sub(close + 1)
    r.brackets = true
    local link, rest = after:match("^(%b())(.*)$")
    if link then
      r.link, after = link:sub(2, -2), rest
    end
    r.prefix, r.version = label:match("^(.-)(%d+%.%d+%.%d+[%w.+-]*)$")
  else
    r.prefix, r.version, after = text:match("^(.-)(%d+%.%d+%.%d+[%w.+-]*)(.*)$")
    if after and not after:match("^[%s(,:;—–-]") and after ~= "" then
      return nil -- "1.2.3x": not a version
    end
  end
  -- A crate name, "v", "Version ": a heading that says more is prose, not a release.
  if not r.version or not semver.parse(r.version) or #r.prefix > 60 or not r.prefix:match("^[%w%s_@/.-]*$") then
    return nil
  end
  local d1, d2 = after:find(DATE)
  if d1 then
    -- What closes the date ("(2025-01-01)") is style; a "[YANKED]" after it is not.
    r.date, r.date_before, r.date_after = after:sub(d1, d2), after:sub(1, d1 - 1), after:sub(d2 + 1):match("^[)%]]*")
  end
  -- After the version: a date, "[YANKED]", "(yanked)", cargo-release's ReleaseDate; not words.
  local rest = (after:gsub(DATE, ""):gsub("%b()", ""):gsub("%b[]", ""):gsub("ReleaseDate", ""))
  if rest:find("%a") then
    return nil
  end
  return r
end

-- Release headings of TEXT, each { start, stop, level, version, prefix, ..., ends }
-- (ENDS: where its section ends: the next heading of its level or above), and the
-- Unreleased heading, if any, the same way. Releases are headings at the level of the
-- first (the newest): a "### Upgrading from 0.9.0" inside a release is not one.
local function releases_of(text)
  local all = headings_of(text)
  local releases, unreleased, level = {}, nil, nil
  for i, h in ipairs(all) do
    local c = classify(h.text)
    if c and (c.unreleased or not level or h.level == level) then
      for k, v in pairs(c) do h[k] = v end
      h.ends = #text + 1
      for j = i + 1, #all do
        if all[j].level <= h.level then
          h.ends = all[j].start
          break
        end
      end
      if c.unreleased then
        unreleased = unreleased or h
      else
        level = level or h.level
        releases[#releases + 1] = h
      end
    end
  end
  return releases, unreleased
end

-- Whether release heading H is CRATE's: in a changelog of its own, any heading of the
-- version is; in one SHARED by several crates, only a heading that names it.
local function is_of(h, crate, shared)
  if not shared or not crate then
    return true
  end
  return h.prefix:find(crate, 1, true) ~= nil
end

-- The style of a new file: Keep a Changelog's.
changelog.DEFAULT_STYLE = { level = 2, brackets = true, prefix = "", link = true, date = true,
  date_before = " - ", date_after = "" }

-- The style of TEXT's newest release heading, or the default. CRATES (names) lets a
-- crate name in a shared changelog's heading become the {crate} of the style, so
-- each crate's heading names itself; SHARED (a changelog several crates write)
-- gives the default style a crate name too.
function changelog.style(text, crates, shared)
  local newest = releases_of(text or "")[1]
  if not newest then
    local s = {}
    for k, v in pairs(changelog.DEFAULT_STYLE) do s[k] = v end
    if shared then
      s.prefix = "{crate} "
    end
    return s
  end
  local prefix = newest.prefix
  local longest
  for _, name in ipairs(crates or {}) do
    if prefix:find(name, 1, true) and (not longest or #name > #longest) then
      longest = name
    end
  end
  if longest then
    local at = prefix:find(longest, 1, true)
    prefix = prefix:sub(1, at - 1) .. "{crate}" .. prefix:sub(at + #longest)
  elseif shared then
    prefix = "{crate} " .. prefix
  end
  return { level = newest.level, brackets = newest.brackets or false, prefix = prefix,
    link = newest.link ~= nil, date = newest.date ~= nil, date_before = newest.date_before or " - ",
    date_after = newest.date_after or "" }
end

-- The heading line of RELEASE ({ crate, version, date, tag, previous_tag, links,
-- style }) in its style.
function changelog.heading(release)
  local s = release.style or changelog.DEFAULT_STYLE
  local label = s.prefix:gsub("{crate}", function() return release.crate or "" end) .. release.version
  if s.brackets then
    label = "[" .. label .. "]"
    if s.link and release.links and release.previous_tag and release.tag then
      label = label .. "(" .. release.links.compare(release.previous_tag, release.tag) .. ")"
    end
  end
  local line = ("#"):rep(s.level) .. " " .. label
  if s.date and release.date then
    line = line .. s.date_before .. release.date .. s.date_after
  end
  return line
end

---------------------------------------------------------------------------
-- Notes written by hand under [Unreleased]

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Take the notes under TEXT's Unreleased heading out of it. Returns the text with
-- that heading kept and its body emptied (HTML comments, such as cargo-release's
-- markers, stay), and the notes (nil when there are none).
function changelog.take_unreleased(text)
  if not text then
    return text, nil
  end
  local _, h = releases_of(text)
  if not h then
    return text, nil
  end
  local body = text:sub(h.stop, h.ends - 1)
  local comments = {}
  local notes = body:gsub("<!%-%-.-%-%->", function(c)
    comments[#comments + 1] = c
    return ""
  end)
  notes = trim(notes)
  if notes == "" then
    return text, nil
  end
  local kept = #comments > 0 and ("\n" .. table.concat(comments, "\n") .. "\n\n") or "\n"
  return text:sub(1, h.stop - 1) .. kept .. text:sub(h.ends), notes, h.level
end

-- NOTES (text under an Unreleased heading of LEVEL) as { intro, groups = { {title, text} } }:
-- the text before its first subheading, then each subheading's text.
function changelog.parse_notes(notes, level)
  local out = { groups = {} }
  if not notes then
    return out
  end
  level = level or 2
  local subs = {}
  for _, h in ipairs(headings_of(notes)) do
    if h.level == level + 1 then
      subs[#subs + 1] = h
    end
  end
  out.intro = trim(notes:sub(1, subs[1] and subs[1].start - 1 or #notes))
  if out.intro == "" then
    out.intro = nil
  end
  for i, h in ipairs(subs) do
    local stop = subs[i + 1] and subs[i + 1].start or #notes + 1
    out.groups[#out.groups + 1] = { title = h.text, text = trim(notes:sub(h.stop, stop - 1)) }
  end
  return out
end

-- SECTIONS (changelog.sections) with NOTES (changelog.parse_notes) merged in: a group
-- written by hand joins the section of the same title (its text first), in that
-- section's place; a title cdp does not make goes where its group would, or last.
local function merge_notes(sections, notes, groups)
  if not notes or #notes.groups == 0 then
    return sections
  end
  local rank = { [changelog.BREAKING_TITLE:lower()] = 0 }
  for i, g in ipairs(groups or changelog.DEFAULT_GROUPS) do
    rank[g.title:lower()] = i
  end
  local out, by_title = {}, {}
  for i, s in ipairs(sections) do
    out[i] = { title = s.title, entries = s.entries, rank = rank[s.title:lower()] or 1000, order = i }
    by_title[s.title:lower()] = out[i]
  end
  for i, g in ipairs(notes.groups) do
    local s = by_title[g.title:lower()]
    if s then
      s.hand = g.text ~= "" and g.text or nil
    else
      s = { title = g.title, entries = {}, hand = g.text ~= "" and g.text or nil,
        rank = rank[g.title:lower()] or 1000, order = #sections + i }
      out[#out + 1] = s
      by_title[g.title:lower()] = s
    end
  end
  table.sort(out, function(a, b)
    if a.rank ~= b.rank then
      return a.rank < b.rank
    end
    return a.order < b.order
  end)
  return out
end

---------------------------------------------------------------------------
-- Writing

-- Render one release section. RELEASE: { crate, version, previous_tag, tag, date,
-- commits (newest first), remote (URL or nil), groups, style (changelog.style),
-- notes (text written by hand, from changelog.take_unreleased), notes_level }.
-- The template gets RELEASE with sections (notes merged in: each may carry `hand`,
-- text as written), intro (notes before any subheading), heading (the heading line in
-- the file's style), level (its heading level) and links.
function changelog.render(release, template)
  local t = template_of(template)
  local r = {}
  for k, v in pairs(release) do r[k] = v end
  r.links = changelog.links(release.remote)
  r.style = release.style or changelog.DEFAULT_STYLE
  r.level = r.style.level
  r.heading = changelog.heading(r)
  local notes = changelog.parse_notes(release.notes, release.notes_level or r.level)
  r.intro = notes.intro
  r.sections = merge_notes(changelog.sections(release.commits or {}, release.groups), notes, release.groups)
  return t.render(r)
end

-- Insert SECTION (the text of one release) into EXISTING (a CHANGELOG.md, or nil).
-- The new section goes above the newest release heading (so below the preamble and
-- any [Unreleased] block); with no release yet, after the Unreleased block, else at
-- the end. A section already there for VERSION is replaced. OPTS: template (its
-- header starts a new file), crate and shared (in a changelog several crates share,
-- only headings naming CRATE are its own), fold = true (sections of VERSION's
-- pre-releases, 0.4.0-dev.1 and -dev.2 for 0.4.0, are removed: the graduated release
-- lists their changes itself).
function changelog.insert(existing, section, version, opts)
  opts = opts or {}
  local t = template_of(opts.template)
  if existing == nil or existing == "" then
    return t.header .. section
  end
  local text = existing
  local target = semver.parse(version)
  local releases = releases_of(text)
  -- Remove (from the end, so offsets hold) the sections to replace or fold; a section
  -- replaced keeps its place.
  local replaced_at
  for i = #releases, 1, -1 do
    local h = releases[i]
    local same = h.version == version
    local remove = same
    if not remove and opts.fold and target then
      local v = semver.parse(h.version)
      remove = v and v.pre and #v.pre > 0 and v.major == target.major and v.minor == target.minor
        and v.patch == target.patch
    end
    if remove and is_of(h, opts.crate, opts.shared) then
      text = text:sub(1, h.start - 1) .. text:sub(h.ends)
      if same then
        replaced_at = h.start
      elseif replaced_at and h.start < replaced_at then
        replaced_at = replaced_at - (h.ends - h.start)
      end
    end
  end
  if replaced_at then
    return text:sub(1, replaced_at - 1) .. section .. text:sub(replaced_at)
  end
  local unreleased
  releases, unreleased = releases_of(text)
  local at = releases[1] and releases[1].start
  if not at and unreleased then
    at = unreleased.ends
    if at > #text then
      at = nil
    end
  end
  if not at then
    local sep = text:sub(-1) == "\n" and "" or "\n"
    local blank = text:sub(-2) == "\n\n" and "" or "\n"
    return text .. sep .. blank .. section
  end
  return text:sub(1, at - 1) .. section .. text:sub(at)
end

-- What a release does to OLD (a changelog's text, or nil): the Unreleased notes are
-- taken out and merged into the new section, rendered in OLD's style and inserted.
-- RELEASE as for changelog.render (style and notes are filled in here); OPTS as for
-- changelog.insert, plus crates (the workspace's names, for a shared file's style).
-- Returns { text, section, notes (the section without its heading, for release notes) }.
function changelog.update(old, release, opts)
  opts = opts or {}
  local r = {}
  for k, v in pairs(release) do r[k] = v end
  local rest, notes, level = changelog.take_unreleased(old)
  r.notes, r.notes_level = notes, level
  r.style = changelog.style(old, opts.crates, opts.shared)
  local section = changelog.render(r, opts.template)
  local text = changelog.insert(rest, section, release.version, opts)
  return { text = text, section = section, notes = trim((section:gsub("^[^\n]*\n", ""))) }
end

---------------------------------------------------------------------------
-- Where changelogs are: the changelog_path setting

changelog.DEFAULT_PATH = "{dir}/CHANGELOG.md"

-- The changelog of crate C ({name, dir}) under SPEC (the changelog_path setting): a path
-- with {dir} (the crate's directory) and {crate} (its name), or a table of crate name ->
-- path or false (none), "*" for the others. Returns the path relative to the workspace
-- root, or false. Raises for a SPEC that is neither.
function changelog.path(spec, c)
  spec = spec == nil and changelog.DEFAULT_PATH or spec
  if type(spec) == "table" then
    local own = spec[c.name]
    if own == nil then
      own = spec["*"]
    end
    if own == nil then
      own = changelog.DEFAULT_PATH
    end
    spec = own
  end
  if spec == false then
    return false
  end
  if type(spec) ~= "string" or spec == "" then
    error(("changelog_path for %s must be a path or false, not %s"):format(c.name, tostring(spec)), 0)
  end
  local dir = (c.dir == nil or c.dir == ".") and "" or c.dir
  local path = spec:gsub("{dir}", function() return dir end):gsub("{crate}", function() return c.name end)
  -- Relative to the workspace root, as git's tree names it: no "./", no doubled "/".
  path = ("/" .. path):gsub("/+", "/"):gsub("/%./", "/"):gsub("/%./", "/")
  return (path:gsub("^/", ""))
end

-- The paths of SPEC that several of CRATES write: { [path] = true }.
function changelog.shared_paths(spec, crates)
  local count, out = {}, {}
  for _, c in ipairs(crates) do
    local path = changelog.path(spec, c)
    if path then
      count[path] = (count[path] or 0) + 1
      if count[path] > 1 then
        out[path] = true
      end
    end
  end
  return out
end

---------------------------------------------------------------------------
-- A crate's whole history: every release, from one walk

-- Each crate's release tags, { [name] = { {tag, v, version, commit} } }, by the
-- plan's own rules (cdp.tags.conventions): under its template when given, else
-- under the convention its tags show, with the crate-less tags (v{version}) a member
-- shares when it was released with them (toml-rs' toml_edit, bevy's members). A
-- shared tag at a commit where the crate was not there yet is not its release, as
-- in the plan. MEMBERS: every crate of the workspace ({name, version, dir, publish,
-- inherited_version}; CRATES when not given), whose versions say who shares what.
-- One pass over the tags for all of them.
local function release_tags(repo, crates, members, single)
  local all, names, known, set = {}, {}, {}, nil
  for _, m in ipairs(members) do
    all[#all + 1], known[m.name] = m, true
  end
  for _, c in ipairs(crates) do
    if not known[c.name] then
      all[#all + 1] = c
    end
  end
  for i, m in ipairs(all) do
    names[i] = m.name
  end
  local templates, seen = {}, {}
  local function add(t)
    if not seen[t] then
      seen[t] = true
      templates[#templates + 1] = t
    end
  end
  local given = {}
  for _, c in ipairs(crates) do
    if c.template then
      set = set or {}
      set[c.name] = c.template
      given[#given + 1] = c.template
    end
  end
  table.sort(given)
  for _, t in ipairs(given) do
    add(t)
  end
  for _, t in ipairs(tags.KNOWN) do
    add(t)
  end
  local list, err, code = repo:tag_candidates(names, templates)
  if not list then
    return nil, err, code
  end
  local function exists(commit, dir)
    return commit == nil or dir == nil
      or repo:tree_entry(commit, (dir == "" and "" or dir .. "/") .. "Cargo.toml") ~= nil
  end
  -- Every member's name reads the tags (a tag reads as the longest name it starts
  -- with), but a crate's convention needs only the crate and the root crate (whose
  -- version members may share); a crate with none has no release to list. A set
  -- template is checked against every member it applies to, so then all of them.
  local asked = all
  if not set then
    asked = {}
    local wanted = {}
    for _, c in ipairs(crates) do
      wanted[c.name] = true
    end
    for _, m in ipairs(all) do
      if wanted[m.name] or m.dir == "" then
        asked[#asked + 1] = m
      end
    end
  end
  local conventions
  conventions, err, code = tags.conventions(list, asked, set, single, exists)
  if not conventions then
    return nil, err, code
  end
  -- only tags of commits count (a tag of a tree names no release), and a tag
  -- names the crate it reads as, when it reads as one
  local peeled, own = {}, {}
  for _, x in ipairs(list) do
    peeled[x.tag] = peeled[x.tag] or x.peeled
    if x.crate then
      own[x.tag] = own[x.tag] or {}
      own[x.tag][x.crate] = true
    end
  end
  local out = {}
  for _, c in ipairs(crates) do
    local mine = {}
    for _, r in ipairs(conventions[c.name].tags) do
      local commit = peeled[r.tag]
      local shared = not (own[r.tag] and own[r.tag][c.name])
      if commit and (not shared or exists(commit, c.dir)) then
        mine[#mine + 1] = { tag = r.tag, v = r.version, version = tostring(r.version), commit = commit }
      end
    end
    out[c.name] = mine
  end
  return out
end

-- The whole changelog of each crate of CRATES, every release of it, from one walk of
-- their histories and one pass over the tags. CRATES: { {name, dir, template (its
-- release tags' template, or nil to find it), next (the version a planned release
-- gives, or nil), tag (that release's tag)} }; OPTS: from (the commit walked from),
-- remote, template (the changelog template), date (the planned release's), single
-- (a workspace of one crate), members (every crate of the workspace, {name, version,
-- dir, publish, inherited_version}, so conventions are found as the plan finds them;
-- default CRATES, which then need those fields too). A commit belongs to the lowest
-- release whose tag reaches it; the commits no tag reaches are the planned release's,
-- or, with none planned, are listed under Unreleased. Each release is dated by its tagged commit.
-- Returns { [name] = text }, or nil, message, code.
function changelog.history(repo, crates, opts)
  local t = template_of(opts.template)
  local released, err, code = release_tags(repo, crates, opts.members or crates, opts.single)
  if not released then
    return nil, err, code
  end
  local marks, mark_of = {}, {}
  for _, c in ipairs(crates) do
    for _, x in ipairs(released[c.name]) do
      if not mark_of[x.commit] then
        marks[#marks + 1] = x.commit
        mark_of[x.commit] = #marks
      end
      x.mark = mark_of[x.commit]
    end
  end
  local paths, since = {}, {}
  for i, c in ipairs(crates) do
    paths[i], since[i] = c.dir or "", false
    table.sort(released[c.name], function(a, b) return a.v < b.v end)
  end
  local list
  list, err, code = repo:changes { from = opts.from, paths = paths, since = since, marks = marks,
    parse = true, messages = false }
  if not list then
    return nil, err, code
  end
  -- A release is dated by its tagged commit's committer time, which the walk has read
  -- when that commit is in the list (a release commit bumps the crate's manifest).
  local time_of = {}
  for _, r in ipairs(list) do
    time_of[r.id] = r.time
  end
  local out = {}
  for i, c in ipairs(crates) do
    -- the release each mark stands for: the lowest version tagged at that commit
    local release_of, order = {}, {}
    for _, tg in ipairs(released[c.name]) do
      if not release_of[tg.mark] then
        release_of[tg.mark] = tg
        order[#order + 1] = tg
      end
    end
    -- by mark, the rank of its release in ORDER (lower: older), so that the
    -- loop below, over every mark of every commit, compares integers
    local rank_of = {}
    for k, tg in ipairs(order) do
      rank_of[tg.mark] = k
      tg.commits = {}
    end
    local unreleased = {}
    for _, r in ipairs(list) do
      local mine = false
      for _, k in ipairs(r.paths) do
        mine = mine or k == i
      end
      if mine then
        local best
        for _, m in ipairs(r.marks or {}) do
          local k = rank_of[m]
          if k and (not best or k < best) then
            best = k
          end
        end
        table.insert(best and order[best].commits or unreleased, r)
      end
    end
    local sections = {}
    local newest = order[#order]
    if c.next then
      sections[#sections + 1] = changelog.render({ crate = c.name, version = c.next, date = opts.date,
        remote = opts.remote, tag = c.tag, previous_tag = newest and newest.tag, commits = unreleased }, t)
    end
    for k = #order, 1, -1 do
      local tg = order[k]
      local time = time_of[tg.commit]
      if not time then
        local commit = repo:commit(tg.commit)
        time = commit and commit.committer.time
      end
      sections[#sections + 1] = changelog.render({ crate = c.name, version = tg.version,
        date = time and os.date("!%Y-%m-%d", time), remote = opts.remote, tag = tg.tag,
        previous_tag = order[k - 1] and order[k - 1].tag, commits = tg.commits }, t)
    end
    local text = t.header
    if not c.next and #unreleased > 0 then
      -- under the header's own Unreleased heading, when it has one
      local body = changelog.render({ crate = c.name, version = "Unreleased", commits = unreleased }, t)
      local has_heading = text:match("\n##%s+%[?Unreleased%]?%s*\n%s*$")
      text = text .. (has_heading and body:gsub("^[^\n]*\n\n?", "", 1) or body)
    end
    out[c.name] = text .. table.concat(sections)
  end
  return out
end

-- The section of VERSION in TEXT (without its heading), for release notes; in a
-- changelog SHARED by several crates, the one whose heading names CRATE.
function changelog.extract(text, version, crate, shared)
  for _, h in ipairs(releases_of(text or "")) do
    if h.version == version and is_of(h, crate, shared) then
      return trim(text:sub(h.stop, h.ends - 1))
    end
  end
  return nil
end

return changelog
