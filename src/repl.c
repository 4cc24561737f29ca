/* cdp.repl — placeholder until the REPL lands. */
#include "host.h"
#include <lauxlib.h>

int luaopen_cdp_repl(lua_State *L)
{
	lua_newtable(L);
	return 1;
}
