-- The default changelog format: Keep a Changelog 1.1.0 (https://keepachangelog.com),
-- with breaking changes first. A team replaces it with a module of its own (the
-- changelog_template setting; docs/changelogs.md shows one) holding `header` and
-- `render(release)`.
local template = {}

-- What a new CHANGELOG.md starts with; the Unreleased heading is where the team writes
-- notes by hand between releases (the next release takes them in).
template.header = [[
# Changelog

All notable changes to this crate are documented in this file.

The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/),
and this crate adheres to [Semantic Versioning](https://semver.org/spec/v2.0.0.html).

## [Unreleased]

]]

-- One entry: "**scope:** text (abc1234)", the id linked when the forge is known.
local function entry(e, links)
  local text = e.text:gsub("\n", " ")
  if e.scope then
    text = ("**%s:** %s"):format(e.scope, text)
  end
  local short = e.id:sub(1, 7)
  if links then
    return ("- %s ([%s](%s))"):format(text, short, links.commit(e.id))
  end
  return ("- %s (%s)"):format(text, short)
end

-- RELEASE: { crate, version, tag, previous_tag, date ("YYYY-MM-DD"), heading (the
-- heading line in the file's style), level (its heading level), intro (notes written
-- by hand, before any group), sections = { {title, hand (text written by hand, or
-- nil), entries} }, links }
function template.render(release)
  local out = {}
  out[#out + 1] = release.heading
  out[#out + 1] = ""
  if release.intro then
    out[#out + 1] = release.intro
    out[#out + 1] = ""
  end
  if #release.sections == 0 and not release.intro then
    out[#out + 1] = "No user-facing changes; released with its dependencies."
    out[#out + 1] = ""
  end
  local sub = ("#"):rep((release.level or 2) + 1)
  for _, section in ipairs(release.sections) do
    out[#out + 1] = sub .. " " .. section.title
    out[#out + 1] = ""
    if section.hand then
      out[#out + 1] = section.hand
    end
    for _, e in ipairs(section.entries) do
      out[#out + 1] = entry(e, release.links)
    end
    out[#out + 1] = ""
  end
  return table.concat(out, "\n") .. "\n"
end

return template
