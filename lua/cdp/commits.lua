-- Conventional Commits 1.0 (https://www.conventionalcommits.org/en/v1.0.0/).
--
-- commits.parse(message) reads one commit message; commits.effective(list)
-- drops commit/revert pairs that cancel out. Nothing is ever dropped silently:
-- a message that is not conventional is kept with type "other", and cancelled
-- commits are returned beside the effective ones.
--
-- commits.parse runs in C (cdp.commits.native, which the walk also uses to
-- read each message once); commits.reference_parse below is its definition,
-- in Lua, and the specs hold the two to the same results.
local native = require "cdp.commits.native"

local commits = {}

-- type(scope)!: description — the type is a noun; the scope any text but ')'.
local HEADER = "^([%a][%w_-]*)(%b())(!?):[ \t]+(.-)%s*$"
local HEADER_NOSCOPE = "^([%a][%w_-]*)(!?):[ \t]+(.-)%s*$"

local function split_lines(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    lines[#lines + 1] = line:gsub("\r$", "")
  end
  return lines
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- A footer line starts with "Token: value" or "Token #value"; the token is a
-- word (hyphens for spaces) or the one exception, "BREAKING CHANGE".
local function footer_start(line)
  local token, value = line:match("^(BREAKING CHANGE):[ \t]*(.*)$")
  if token then
    return token, value
  end
  token, value = line:match("^([%w][%w-]*):[ \t]+(.*)$")
  if token then
    return token, value
  end
  token, value = line:match("^([%w][%w-]*)[ \t]+(#.*)$")
  return token, value
end

local function is_breaking_token(token)
  return token == "BREAKING CHANGE" or token == "BREAKING-CHANGE"
end

-- Body and footers from the lines after the header. Footers are the trailing
-- paragraphs that each start with a footer token; a footer's value runs on
-- (across lines) until the next token.
local function body_and_footers(lines)
  local paragraphs, current = {}, nil
  for _, line in ipairs(lines) do
    if line:match("^%s*$") then
      current = nil
    else
      if not current then
        current = {}
        paragraphs[#paragraphs + 1] = current
      end
      current[#current + 1] = line
    end
  end
  local first_footer = #paragraphs + 1
  for i = #paragraphs, 1, -1 do
    if footer_start(paragraphs[i][1]) then
      first_footer = i
    else
      break
    end
  end
  local body = {}
  for i = 1, first_footer - 1 do
    body[#body + 1] = table.concat(paragraphs[i], "\n")
  end
  local footers = {}
  for i = first_footer, #paragraphs do
    for _, line in ipairs(paragraphs[i]) do
      local token, value = footer_start(line)
      if token then
        footers[#footers + 1] = { token = token, value = value }
      else
        local f = footers[#footers]
        f.value = f.value .. "\n" .. line
      end
    end
  end
  for _, f in ipairs(footers) do
    f.value = trim(f.value)
  end
  return table.concat(body, "\n\n"), footers
end

-- "This reverts commit <sha>." as git revert writes it; also a Refs footer.
local function reverted_id(text, footers)
  local id = text:match("[Tt]his reverts commit (%x%x%x%x%x%x%x+)")
  if id then
    return id:lower()
  end
  for _, f in ipairs(footers) do
    if f.token:lower() == "refs" or f.token:lower() == "reverts" then
      id = f.value:match("^(%x%x%x%x%x%x%x+)")
      if id then
        return id:lower()
      end
    end
  end
  return nil
end

-- parse(message) -> {
--   type (lower case; "other" when not conventional), scope|nil, breaking (bool),
--   breaking_note|nil, description, header, body, footers = {{token, value}},
--   conventional (bool), revert = {id|nil, header|nil}|nil }
function commits.parse(message)
  if type(message) ~= "string" then
    error(("commits.parse: expected a string, got %s"):format(type(message)), 2)
  end
  return native.parse(message)
end

-- What commits.parse does, written in Lua: the definition the C parser keeps to.
function commits.reference_parse(message)
  if type(message) ~= "string" then
    error(("commits.parse: expected a string, got %s"):format(type(message)), 2)
  end
  local lines = split_lines(message:gsub("^%s*\n", ""))
  local header = trim(lines[1] or "")
  table.remove(lines, 1)
  local body, footers = body_and_footers(lines)
  local c = { header = header, body = body, footers = footers, breaking = false }

  local ctype, scope, bang, description = header:match(HEADER)
  if ctype then
    scope = trim(scope:sub(2, -2))
    if scope == "" then
      scope = nil
    end
  else
    ctype, bang, description = header:match(HEADER_NOSCOPE)
  end
  if ctype and description ~= "" then
    c.conventional = true
    c.type = ctype:lower()
    c.scope = scope
    c.description = description
    if bang == "!" then
      c.breaking = true
      c.breaking_note = description
    end
  else
    c.conventional = false
    c.type = "other"
    c.description = header
  end
  for _, f in ipairs(footers) do
    if is_breaking_token(f.token) then
      c.breaking = true
      c.breaking_note = f.value
    end
  end

  -- Reverts: git's `Revert "<header>"` and the conventional `revert: <header>`.
  local quoted = header:match('^Revert "(.*)"$')
  if quoted then
    c.type = "revert"
    c.revert = { header = quoted, id = reverted_id(message, footers) }
  elseif c.type == "revert" then
    c.revert = { header = c.description, id = reverted_id(message, footers) }
  end
  return c
end

-- effective(list) -> kept, cancelled
-- LIST holds commit records ({id, message|summary, parsed = commits.parse(...)}),
-- newest first. A revert whose target is also in LIST cancels it and itself;
-- a revert of a revert brings the original back. CANCELLED lists each
-- cancelled commit with `cancelled_by` set to the id of the other half.
function commits.effective(list)
  local by_id, by_header = {}, {}
  for i, c in ipairs(list) do
    by_id[c.id] = i
    local h = c.parsed.header
    by_header[h] = by_header[h] or {}
    table.insert(by_header[h], i)
  end
  local function find_target(i)
    local r = list[i].parsed.revert
    if r.id then
      for j = i + 1, #list do
        if list[j].id:sub(1, #r.id):lower() == r.id then
          return j
        end
      end
      return nil
    end
    -- no id: the newest older commit whose header is the reverted one
    for _, j in ipairs(by_header[r.header] or {}) do
      if j > i then
        return j
      end
    end
    return nil
  end
  local cancelled_by = {}
  for i, c in ipairs(list) do
    if not cancelled_by[i] and c.parsed.revert then
      local j = find_target(i)
      if j and not cancelled_by[j] then
        cancelled_by[i], cancelled_by[j] = j, i
      end
    end
  end
  local kept, cancelled = {}, {}
  for i, c in ipairs(list) do
    if cancelled_by[i] then
      c.cancelled_by = list[cancelled_by[i]].id
      cancelled[#cancelled + 1] = c
    else
      kept[#kept + 1] = c
    end
  end
  return kept, cancelled
end

return commits
