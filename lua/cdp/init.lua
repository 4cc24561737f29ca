-- The `cdp` namespace that scripts and the REPL see: cdp.git, cdp.plan, ...
-- Each field is the module of that name, loaded on first use, so starting
-- cdp costs nothing for modules a script never touches.
return setmetatable({
  -- cdp.secret("ENV"): a setting whose value comes from that environment variable.
  secret = function(...)
    return require("cdp.settings").secret(...)
  end,
}, {
  __index = function(self, key)
    local ok, module = pcall(require, "cdp." .. key)
    if not ok then
      error(module, 2)
    end
    rawset(self, key, module)
    return module
  end,
})
