/* cdp.fs — placeholder until the module lands. */
#include "host.h"
#include <lauxlib.h>

int luaopen_cdp_fs(lua_State *L)
{
	lua_newtable(L);
	return 1;
}
