-- The default changelog format: Keep a Changelog 1.1.0 (https://keepachangelog.com),
-- with breaking changes first. A team replaces it by giving the Package stage another
-- table with `header` and `render(release)`.
local template = {}

template.header = [[
# Changelog

All notable changes to this crate are documented in this file.

The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/),
and this crate adheres to [Semantic Versioning](https://semver.org/spec/v2.0.0.html).

]]

-- RELEASE: { crate, version, tag, previous_tag, date ("YYYY-MM-DD"), sections, links }
function template.render(release)
  local out = {}
  local heading = ("## [%s]"):format(release.version)
  if release.links and release.previous_tag and release.tag then
    heading = ("## [%s](%s)"):format(release.version, release.links.compare(release.previous_tag, release.tag))
  end
  if release.date then
    heading = heading .. " - " .. release.date
  end
  out[#out + 1] = heading
  out[#out + 1] = ""
  if #release.sections == 0 then
    out[#out + 1] = "No user-facing changes; released with its dependencies."
    out[#out + 1] = ""
  end
  for _, section in ipairs(release.sections) do
    out[#out + 1] = "### " .. section.title
    out[#out + 1] = ""
    for _, e in ipairs(section.entries) do
      local text = e.text:gsub("\n", " ")
      if e.scope then
        text = ("**%s:** %s"):format(e.scope, text)
      end
      local short = e.id:sub(1, 7)
      if release.links then
        text = ("%s ([%s](%s))"):format(text, short, release.links.commit(e.id))
      else
        text = ("%s (%s)"):format(text, short)
      end
      out[#out + 1] = "- " .. text
    end
    out[#out + 1] = ""
  end
  return table.concat(out, "\n") .. "\n"
end

return template
