#ifndef CDP_L_COMMITS_H
#define CDP_L_COMMITS_H
/*
 * Shared between l_commits.c (cdp.commits.native) and git_changes.c, which
 * parses every message of a walk once: a parsed message as a Lua table.
 */
#include "core/conventional.h"

#include <lua.h>

/*
 * [-0, +1, m] Push the table commits.parse returns for message M (parsed from
 * the Lua string at index MESSAGE). Without m->has_body, "body" and "footers"
 * are filled in on first use, from that string; every other field is there.
 * With LOADER (a stack index, 0: none), the value at MESSAGE is a key and the
 * message is LOADER(key), called on first use: the walk then keeps no text.
 */
void cdp_commits_push(lua_State *L, const struct cc_message *m, int message, int loader);

#endif
