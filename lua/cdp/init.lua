-- The `cdp` namespace that scripts and the REPL see: cdp.git, cdp.plan, ...
-- Each field is the module of that name, loaded on first use, so starting
-- cdp costs nothing for modules a script never touches. A name that is a
-- folder of modules rather than a module (cdp.stages, cdp.policies,
-- cdp.commands) is a namespace of its own the same way: cdp.stages.tag.
local function namespace(prefix, fields)
  return setmetatable(fields or {}, {
    __name = "cdp.namespace",
    __tostring = function() return ("<modules %s.*>"):format(prefix) end,
    __index = function(self, key)
      local name = prefix .. "." .. tostring(key)
      local ok, module = pcall(require, name)
      if ok then
        rawset(self, key, module)
        return module
      end
      if tostring(module):find("module '" .. name .. "' not found", 1, true) then
        for _, m in ipairs(require("cdp.host").modules()) do
          if m.module:sub(1, #name + 1) == name .. "." then
            local folder = namespace(name)
            rawset(self, key, folder)
            return folder
          end
        end
      end
      error(module, 2)
    end,
  })
end

return namespace("cdp", {
  -- cdp.secret("ENV"): a setting whose value comes from that environment variable.
  secret = function(...)
    return require("cdp.settings").secret(...)
  end,
})
