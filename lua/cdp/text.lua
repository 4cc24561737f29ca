-- Text from repositories (commit messages, error output of their tools) on its way
-- out of cdp: to a terminal, a mail subject, a pull request or a release page.
-- Commit text is untrusted: an escape sequence in it can rewrite what a terminal
-- shows, and an @-mention or "fixes #12" in a PR body pings people and closes issues.
local text = {}

-- S without terminal escape sequences (CSI "ESC [ ... letter", OSC "ESC ] ... BEL|ST",
-- and other ESC pairs) and without control characters other than newline and tab.
function text.printable(s)
  s = tostring(s)
  s = s:gsub("\27%][^\7\27]*\7", ""):gsub("\27%][^\7\27]*\27\\", "") -- OSC (titles, links)
  s = s:gsub("\27%[[\48-\63]*[\32-\47]*[\64-\126]", "")            -- CSI (colours, cursor)
  s = s:gsub("\27[\32-\47]*[\48-\126]", "")                         -- the other ESC sequences
  s = s:gsub("\194[\128-\159]", "")                                 -- C1 controls as UTF-8
  s = s:gsub("[%z\1-\8\11-\31\127]", "")
  return s
end

-- S printable and on one line of at most MAX bytes (ending "…" when cut, never inside
-- a UTF-8 sequence): for mail subjects and status lines.
function text.one_line(s, max)
  s = text.printable(tostring(s):gsub("[\r\n\t]+", " ")):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  if max and #s > max then
    local cut = max - 3
    while cut > 0 and (s:byte(cut + 1) or 0) >= 0x80 and (s:byte(cut + 1) or 0) < 0xC0 do
      cut = cut - 1
    end
    s = s:sub(1, cut) .. "…"
  end
  return s
end

-- The words GitHub, GitLab and Gitea read as closing an issue when followed by a reference.
local CLOSING = { "close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved" }

-- S for the body of a pull request or a release: an @-mention gets a zero-width joiner
-- after its @ (it shows the same, and notifies nobody), and a closing keyword before an
-- issue reference ("fixes #12", "Closes org/repo#3", "resolves https://.../issues/4")
-- gets one inside its word, so merging the PR closes nothing. As release-plz and
-- git-cliff templates do, the text stays readable; only the forge's parsing is defeated.
function text.defuse(s)
  s = tostring(s)
  local ZWJ = "\226\128\141"
  -- @user, @org/team: not an e-mail address (a word character before the @)
  s = s:gsub("()@([%w][%w%-]*)", function(at, name)
    local before = at > 1 and s:sub(at - 1, at - 1) or ""
    if before:match("[%w%.%-_+]") then
      return nil
    end
    return "@" .. ZWJ .. name
  end)
  local function joined(w, rest)
    return w:sub(1, 1) .. ZWJ .. w:sub(2) .. rest
  end
  for _, word in ipairs(CLOSING) do
    local any_case = word:gsub("%a", function(c) return "[" .. c:upper() .. c .. "]" end)
    -- "fixes #12", "Closes org/repo#3", "resolves: https://host/o/r/issues/4"
    s = s:gsub("(%f[%a]" .. any_case .. "%f[%A])(:?%s+[%w%._/%-]*#%d)", joined)
    s = s:gsub("(%f[%a]" .. any_case .. "%f[%A])(:?%s+https?://)", joined)
  end
  return s
end

return text
