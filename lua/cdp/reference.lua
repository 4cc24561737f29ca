-- The settings reference, made from the declarations of the stages cdp ships: what
-- `cdp help settings` prints and what the README's settings table is (a spec checks
-- that the README holds exactly `cdp help settings --markdown`).
local host = require "cdp.host"
local settings = require "cdp.settings"

local reference = {}

-- The stdlib stages, each { name, declares }, sorted by name.
function reference.stdlib_stages()
  local out = {}
  for _, m in ipairs(host.modules()) do
    if m.module:match("^cdp%.stages%.[%w_-]+$") then
      local ok, stage = pcall(require, m.module)
      if ok and type(stage) == "table" and type(stage.name) == "string" then
        local declares = {}
        for k, v in pairs(stage.settings or {}) do
          if type(k) == "string" then
            declares[k] = v
          end
        end
        out[#out + 1] = { name = stage.name, declares = declares }
      end
    end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

reference.INTRO = [[
Every stage declares the settings it reads. Give a value in the pipeline script's
`settings = { ... }`, with the environment variable CDP_<KEY>, or with --set KEY=VALUE;
each later one wins, and `cdp config PIPELINE` shows where each value comes from. A list
is written `a,b,c` or as a JSON array, a table as a JSON object. Secrets are read from
their environment variable only (never --set). An unknown name is an error.]]

local function md(text)
  return (tostring(text):gsub("|", "\\|"))
end

-- The reference as text (FORMAT "text") or as a Markdown table ("markdown").
function reference.settings(format)
  local rows = settings.reference(reference.stdlib_stages())
  local out = {}
  if format == "markdown" then
    out[#out + 1] = "| setting | type | default | from | read by | meaning |"
    out[#out + 1] = "|---|---|---|---|---|---|"
    for _, r in ipairs(rows) do
      out[#out + 1] = ("| `%s` | %s | %s | `%s` | %s | %s |"):format(r.name, md(r.type),
        r.decl.type == "secret" and "—" or ("`" .. md(r.default) .. "`"), r.from, table.concat(r.readers, ", "),
        md(r.doc))
    end
    return table.concat(out, "\n") .. "\n"
  end
  out[#out + 1] = reference.INTRO
  out[#out + 1] = ""
  for _, r in ipairs(rows) do
    out[#out + 1] = ("%s  (%s; %s; %s)  read by %s"):format(r.name, r.type,
      r.decl.type == "secret" and ("from $" .. r.from) or ("default " .. r.default),
      r.decl.type == "secret" and "never --set" or ("or $" .. r.from), table.concat(r.readers, ", "))
    out[#out + 1] = "    " .. r.doc
  end
  out[#out + 1] = ""
  out[#out + 1] = "Example:"
  out[#out + 1] = "  cdp run --set registry_limits=none --set validate_skip=clean,tokens \\"
  out[#out + 1] = "    --set 'test_commands=[\"cargo test --workspace\", \"cargo clippy -- -D warnings\"]'"
  return table.concat(out, "\n") .. "\n"
end

return reference
