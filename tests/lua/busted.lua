-- Run busted specs inside cdp, so the cdp.* modules (C and embedded Lua) are
-- present exactly as pipelines see them: `cdp tests/lua/busted.lua SPEC...`.
require "busted.runner" { standalone = false }
