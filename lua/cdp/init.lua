-- The `cdp` namespace that scripts and the REPL see: cdp.git, cdp.plan, ...
-- Each field is the module of that name, loaded on first use, so starting
-- cdp costs nothing for modules a script never touches.
return setmetatable({}, {
  __index = function(self, key)
    local ok, module = pcall(require, "cdp." .. key)
    if not ok then
      error(module, 2)
    end
    rawset(self, key, module)
    return module
  end,
})
