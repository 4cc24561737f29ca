-- Semantic Versioning 2.0 and Cargo version requirements.
--
-- Versions are immutable tables { major, minor, patch, pre = {ids}, build = {ids} }
-- with ordering metamethods; requirements follow the `semver` crate that cargo
-- uses, including its pre-release rule: a version with a pre-release tag only
-- matches a requirement that names the same major.minor.patch with a
-- pre-release of its own (so `^0.3` never picks 0.4.0-dev.1, and `*` no
-- pre-release at all).
--
-- Failures of input return nil, a message naming the text, and "ESEMVER".
local semver = {}

local Version = { __name = "cdp.semver.Version" }
Version.__index = Version

local function is_numeric(id)
  return id:match("^%d+$") ~= nil
end

local function parse_ids(text, what, full)
  local ids = {}
  for id in (text .. "."):gmatch("([^.]*)%.") do
    if id == "" or not id:match("^[0-9A-Za-z-]+$") then
      return nil, ("invalid %s '%s' in '%s'"):format(what, text, full)
    end
    if what == "pre-release" and is_numeric(id) and #id > 1 and id:sub(1, 1) == "0" then
      return nil, ("numeric pre-release identifier '%s' has a leading zero in '%s'"):format(id, full)
    end
    ids[#ids + 1] = id
  end
  return ids
end

local function parse_number(text, full)
  if not text:match("^%d+$") then
    return nil, ("'%s' is not a number in version '%s'"):format(text, full)
  end
  if #text > 1 and text:sub(1, 1) == "0" then
    return nil, ("'%s' has a leading zero in version '%s'"):format(text, full)
  end
  local n = math.tointeger(tonumber(text))
  if not n or #text > 18 then
    return nil, ("'%s' is too large in version '%s'"):format(text, full)
  end
  return n
end

local function make(major, minor, patch, pre, build)
  return setmetatable({ major = major, minor = minor, patch = patch, pre = pre or {}, build = build or {} }, Version)
end
semver.new = make

-- semver.parse("1.2.3-rc.1+b5") -> Version | nil, msg, "ESEMVER". A Version passes through.
function semver.parse(text)
  if getmetatable(text) == Version then
    return text
  end
  if type(text) ~= "string" then
    error(("semver.parse: expected a string, got %s"):format(type(text)), 2)
  end
  local core, rest = text:match("^(%d+%.%d+%.%d+)(.*)$")
  if not core then
    return nil, ("'%s' is not a semantic version (MAJOR.MINOR.PATCH)"):format(text), "ESEMVER"
  end
  local nums = {}
  for part in core:gmatch("%d+") do
    local n, err = parse_number(part, text)
    if not n then
      return nil, err, "ESEMVER"
    end
    nums[#nums + 1] = n
  end
  local pre, build = {}, {}
  local pre_text, build_text = rest:match("^%-([^+]*)%+?(.*)$")
  if pre_text then
    local err
    pre, err = parse_ids(pre_text, "pre-release", text)
    if not pre then
      return nil, err, "ESEMVER"
    end
    if rest:find("+", 1, true) then
      build, err = parse_ids(build_text, "build metadata", text)
      if not build then
        return nil, err, "ESEMVER"
      end
    end
  elseif rest:sub(1, 1) == "+" then
    local err
    build, err = parse_ids(rest:sub(2), "build metadata", text)
    if not build then
      return nil, err, "ESEMVER"
    end
  elseif rest ~= "" then
    return nil, ("'%s' is not a semantic version (unexpected '%s')"):format(text, rest), "ESEMVER"
  end
  return make(nums[1], nums[2], nums[3], pre, build)
end

-- Like parse, but raises (for versions that are known to be valid).
function semver.v(text)
  local v, err = semver.parse(text)
  if not v then
    error(err, 2)
  end
  return v
end

-- Pre-release precedence (semver 2.0 §11): an empty list ranks above any
-- non-empty one; numeric identifiers compare as numbers and below alphanumeric ones.
local function compare_pre(a, b)
  if #a == 0 or #b == 0 then
    if #a == #b then
      return 0
    end
    return #a == 0 and 1 or -1
  end
  for i = 1, math.max(#a, #b) do
    local x, y = a[i], b[i]
    if x == nil then
      return -1
    elseif y == nil then
      return 1
    end
    local xn, yn = is_numeric(x), is_numeric(y)
    if xn and yn then
      -- compare as numbers without overflow: longer (no leading zeros) is larger
      if #x ~= #y then
        return #x < #y and -1 or 1
      end
      if x ~= y then
        return x < y and -1 or 1
      end
    elseif xn ~= yn then
      return xn and -1 or 1
    elseif x ~= y then
      return x < y and -1 or 1
    end
  end
  return 0
end
semver.compare_pre = compare_pre

-- -1, 0 or 1. Build metadata does not take part in precedence.
-- (The hot path of every sort of versions: no table built per call.)
function semver.compare(a, b)
  a, b = semver.v(a), semver.v(b)
  if a.major ~= b.major then
    return a.major < b.major and -1 or 1
  elseif a.minor ~= b.minor then
    return a.minor < b.minor and -1 or 1
  elseif a.patch ~= b.patch then
    return a.patch < b.patch and -1 or 1
  end
  return compare_pre(a.pre, b.pre)
end

Version.__eq = function(a, b) return semver.compare(a, b) == 0 end
Version.__lt = function(a, b) return semver.compare(a, b) < 0 end
Version.__le = function(a, b) return semver.compare(a, b) <= 0 end

function semver.format(v)
  local s = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if #v.pre > 0 then
    s = s .. "-" .. table.concat(v.pre, ".")
  end
  if #v.build > 0 then
    s = s .. "+" .. table.concat(v.build, ".")
  end
  return s
end
Version.__tostring = semver.format

function Version:is_prerelease()
  return #self.pre > 0
end

-- The release this pre-release leads to: 0.4.0-dev.2 -> 0.4.0.
function Version:release()
  return make(self.major, self.minor, self.patch)
end

-- Pre-release label and counter: 0.4.0-dev.2 -> "dev", 2; 1.0.0-rc -> "rc", nil.
function Version:prerelease_label()
  if #self.pre == 0 then
    return nil
  end
  local n = self.pre[#self.pre]
  if #self.pre >= 2 and is_numeric(n) then
    return table.concat(self.pre, ".", 1, #self.pre - 1), math.tointeger(tonumber(n))
  end
  return table.concat(self.pre, "."), nil
end

semver.LEVELS = { none = 0, patch = 1, minor = 2, major = 3 }

-- The larger of two bump levels ("none" < "patch" < "minor" < "major").
function semver.max_bump(a, b)
  a, b = a or "none", b or "none"
  return semver.LEVELS[a] >= semver.LEVELS[b] and a or b
end

-- bump(v, level): the next release of v at LEVEL ("major", "minor", "patch", "none").
-- From a pre-release the bump lands on its release when that is already far
-- enough (1.0.0-rc.1 + major = 1.0.0; 0.4.0-dev.1 + minor = 0.4.0;
-- 0.4.1-dev.1 + minor = 0.5.0), as npm and cargo-release do.
function semver.bump(v, level)
  v = semver.v(v)
  if semver.LEVELS[level] == nil then
    error(("semver.bump: unknown level '%s'"):format(tostring(level)), 2)
  end
  local pre = #v.pre > 0
  if level == "major" then
    if pre and v.minor == 0 and v.patch == 0 then
      return make(v.major, 0, 0)
    end
    return make(v.major + 1, 0, 0)
  elseif level == "minor" then
    if pre and v.patch == 0 then
      return make(v.major, v.minor, 0)
    end
    return make(v.major, v.minor + 1, 0)
  elseif level == "patch" then
    if pre then
      return make(v.major, v.minor, v.patch)
    end
    return make(v.major, v.minor, v.patch + 1)
  end
  return make(v.major, v.minor, v.patch, v.pre)
end

-- Which level separates two releases: level_between("0.3.1", "0.4.0") == "minor".
function semver.level_between(a, b)
  a, b = semver.v(a), semver.v(b)
  if a.major ~= b.major then
    return "major"
  elseif a.minor ~= b.minor then
    return "minor"
  elseif a.patch ~= b.patch or compare_pre(a.pre, b.pre) ~= 0 then
    return "patch"
  end
  return "none"
end

---------------------------------------------------------------------------
-- Requirements
---------------------------------------------------------------------------

local Req = { __name = "cdp.semver.Req" }
Req.__index = Req
Req.__tostring = function(r) return r.text end

local OPS = { ["="] = "exact", [">"] = "greater", [">="] = "greater_eq", ["<"] = "less",
  ["<="] = "less_eq", ["~"] = "tilde", ["^"] = "caret" }

local function parse_comparator(text, full)
  local op, rest = text:match("^([=><~^]*)%s*(.-)$")
  if op ~= "" and not OPS[op] then
    return nil, ("unknown operator '%s' in requirement '%s'"):format(op, full)
  end
  if rest == "" then
    return nil, ("missing version after '%s' in requirement '%s'"):format(op, full)
  end
  local numbers, pre_text = rest, nil
  local dash = rest:find("-", 1, true)
  if dash then
    numbers, pre_text = rest:sub(1, dash - 1), rest:sub(dash + 1)
  end
  numbers = numbers:gsub("%+.*$", "")
  if pre_text then
    pre_text = pre_text:gsub("%+.*$", "")
  end
  local parts = {}
  for p in (numbers .. "."):gmatch("([^.]*)%.") do
    parts[#parts + 1] = p
  end
  if #parts > 3 then
    return nil, ("too many parts in '%s' in requirement '%s'"):format(rest, full)
  end
  local c = { op = OPS[op] or "caret", pre = {} }
  local wildcard = false
  for i, key in ipairs { "major", "minor", "patch" } do
    local p = parts[i]
    if p == nil then
      break
    elseif p == "*" or p == "x" or p == "X" then
      wildcard = true
    elseif wildcard then
      return nil, ("unexpected '%s' after a wildcard in requirement '%s'"):format(p, full)
    else
      local n, err = parse_number(p, full)
      if not n then
        return nil, err
      end
      c[key] = n
    end
  end
  if pre_text then
    if c.patch == nil then
      return nil, ("a pre-release needs MAJOR.MINOR.PATCH in requirement '%s'"):format(full)
    end
    local pre, err = parse_ids(pre_text, "pre-release", full)
    if not pre then
      return nil, err
    end
    c.pre = pre
  end
  if wildcard then
    if c.major == nil then
      return "star"
    end
    if op == "" or op == "=" then
      c.op = "exact" -- 1.* and =1.* are =1
    end
  end
  return c
end

-- semver.req("^1.2, <1.5") -> Req | nil, msg, "ESEMVER". A Req passes through.
function semver.req(text)
  if getmetatable(text) == Req then
    return text
  end
  if type(text) ~= "string" then
    error(("semver.req: expected a string, got %s"):format(type(text)), 2)
  end
  local comparators, star = {}, false
  local trimmed = text:match("^%s*(.-)%s*$")
  if trimmed == "" then
    return nil, "empty version requirement", "ESEMVER"
  end
  for part in (trimmed .. ","):gmatch("([^,]*),") do
    part = part:match("^%s*(.-)%s*$")
    if part == "" then
      return nil, ("empty comparator in requirement '%s'"):format(text), "ESEMVER"
    end
    local c, err = parse_comparator(part, text)
    if not c then
      return nil, err, "ESEMVER"
    end
    if c == "star" then
      star = true
    else
      comparators[#comparators + 1] = c
    end
  end
  if star and #comparators > 0 then
    return nil, ("a wildcard (*) must be the only comparator in requirement '%s'"):format(text), "ESEMVER"
  end
  return setmetatable({ text = trimmed, comparators = comparators }, Req)
end

local function matches_exact(c, v)
  if v.major ~= c.major then return false end
  if c.minor ~= nil and v.minor ~= c.minor then return false end
  if c.patch ~= nil and v.patch ~= c.patch then return false end
  return compare_pre(v.pre, c.pre) == 0
end

local function matches_greater(c, v)
  if v.major ~= c.major then return v.major > c.major end
  if c.minor == nil then return false end
  if v.minor ~= c.minor then return v.minor > c.minor end
  if c.patch == nil then return false end
  if v.patch ~= c.patch then return v.patch > c.patch end
  return compare_pre(v.pre, c.pre) > 0
end

local function matches_less(c, v)
  if v.major ~= c.major then return v.major < c.major end
  if c.minor == nil then return false end
  if v.minor ~= c.minor then return v.minor < c.minor end
  if c.patch == nil then return false end
  if v.patch ~= c.patch then return v.patch < c.patch end
  return compare_pre(v.pre, c.pre) < 0
end

local function matches_tilde(c, v)
  if v.major ~= c.major then return false end
  if c.minor ~= nil and v.minor ~= c.minor then return false end
  if c.patch ~= nil and v.patch ~= c.patch then return v.patch > c.patch end
  return compare_pre(v.pre, c.pre) >= 0
end

local function matches_caret(c, v)
  if v.major ~= c.major then return false end
  if c.minor == nil then return true end
  if c.patch == nil then
    if c.major > 0 then return v.minor >= c.minor end
    return v.minor == c.minor
  end
  if c.major > 0 then
    if v.minor ~= c.minor then return v.minor > c.minor end
    if v.patch ~= c.patch then return v.patch > c.patch end
  elseif c.minor > 0 then
    if v.minor ~= c.minor then return false end
    if v.patch ~= c.patch then return v.patch > c.patch end
  elseif v.minor ~= c.minor or v.patch ~= c.patch then
    return false
  end
  return compare_pre(v.pre, c.pre) >= 0
end

local MATCH = {
  exact = matches_exact,
  greater = matches_greater,
  greater_eq = function(c, v) return matches_exact(c, v) or matches_greater(c, v) end,
  less = matches_less,
  less_eq = function(c, v) return matches_exact(c, v) or matches_less(c, v) end,
  tilde = matches_tilde,
  caret = matches_caret,
}

local function pre_is_compatible(c, v)
  return c.major == v.major and c.minor == v.minor and c.patch == v.patch and #c.pre > 0
end

-- Does requirement R admit version V? (cargo's rules, see the top of this file)
function Req:matches(v)
  v = semver.v(v)
  for _, c in ipairs(self.comparators) do
    if not MATCH[c.op](c, v) then
      return false
    end
  end
  if #v.pre == 0 then
    return true
  end
  for _, c in ipairs(self.comparators) do
    if pre_is_compatible(c, v) then
      return true
    end
  end
  return false
end

-- semver.matches("^1.2", "1.4.0") -> bool; raises on a malformed requirement or version.
function semver.matches(req, v)
  local r, err = semver.req(req)
  if not r then
    error(err, 2)
  end
  return r:matches(v)
end

local OP_TEXT = { exact = "=", greater = ">", greater_eq = ">=", less = "<", less_eq = "<=", tilde = "~", caret = "^" }

-- The requirement to write when R must admit NEW: a single caret, tilde or
-- exact comparator keeps its operator (a bare version stays bare) and the
-- precision it was written with ("0.3" -> "0.4", "~1.2" -> "~1.3"; a
-- pre-release needs all three numbers); anything else (ranges, lists, `*`)
-- becomes a caret on NEW.
function semver.rewrite_req(req, new)
  local r = semver.req(req)
  new = semver.v(new)
  local version = semver.format(make(new.major, new.minor, new.patch, new.pre))
  if r and #r.comparators == 1 then
    local c = r.comparators[1]
    if #new.pre == 0 and c.minor == nil then
      version = tostring(new.major)
    elseif #new.pre == 0 and c.patch == nil then
      version = ("%d.%d"):format(new.major, new.minor)
    end
    if c.op == "caret" or c.op == "tilde" or c.op == "exact" then
      local op = r.text:match("^%s*([=~^]?)")
      if c.op == "caret" and op == "" then
        return version
      end
      return OP_TEXT[c.op] .. version
    end
  end
  return "^" .. version
end

semver.Version = Version
semver.Req = Req
return semver
