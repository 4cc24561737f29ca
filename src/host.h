#ifndef CDP_HOST_H
#define CDP_HOST_H
#include <lua.h>

/* Exit codes, the same in `cdp --help`, the README and lua/cdp/cli.lua. */
enum {
	CDP_EXIT_OK = 0,       /* done */
	CDP_EXIT_FAILED = 1,   /* a run or check failed */
	CDP_EXIT_USAGE = 2,    /* bad usage, or an error in a script */
	CDP_EXIT_APPROVAL = 3, /* a run stopped awaiting approval */
};

/*
 * A Lua state with the standard libraries, every cdp C module and cjson in
 * package.preload, and a searcher that finds modules first in the override
 * directories (lua_dirs, then CDP_LUA_PATH, then ./.cdp/lua), then in the
 * copy embedded in the binary. Returns NULL when out of memory.
 */
lua_State *cdp_host_open(const char *const *lua_dirs, int n_lua_dirs);

/*
 * lua_pcall with a traceback message handler. On error the message (with
 * traceback) is left on the stack as a string.
 */
int cdp_pcall(lua_State *L, int nargs, int nresults);

/* Print the error at the top of the stack to stderr and pop it. */
void cdp_report(lua_State *L);

/* The stable upper-case name of errno value ERR ("ENOENT"), or "EUNKNOWN". */
const char *cdp_errno_name(int err);

/*
 * [-0, +3, m] Push nil, "CODE: description: THING", "CODE" for errno ERR, the
 * way every cdp module reports a failure of the world (luv's wording). With
 * OTHER, the message names both: "CODE: description: THING -> OTHER". Returns 3.
 */
int cdp_push_errno(lua_State *L, int err, const char *thing, const char *other);

/*
 * A point where cdp's kill tests may stop it (src/test_point.c): when
 * CDP_TEST_PAUSE is KIND, or KIND:TEXT and DETAIL contains TEXT, cdp writes
 * "PID KIND DETAIL" to CDP_TEST_PAUSE_FILE and waits until that file is removed
 * (or cdp is killed), once per process. Kinds: "write" (fs.write, the temporary
 * file written and not yet renamed; DETAIL the path), "commit" (repo:commit_index,
 * before the commit; DETAIL its message), "push" (repo:push, objects going out;
 * DETAIL the URL).
 */
void cdp_test_point(const char *kind, const char *detail);

/*
 * [-0, +1, -] Push T[KEY] without metamethods and return its type: how the C
 * modules read option tables. An __index that made a fresh string (and ran
 * the collector) would leave C holding a pointer to a string nothing
 * anchors, or run Lua that closes what C holds; a raw field is anchored in
 * the table, and no Lua runs to read it.
 */
int cdp_rawfield(lua_State *L, int t, const char *key);

/* The C modules, registered in package.preload by cdp_host_open. */
int luaopen_cdp_fs(lua_State *L);
int luaopen_cdp_proc(lua_State *L);
int luaopen_cdp_git(lua_State *L);
int luaopen_cdp_commits_native(lua_State *L);
int luaopen_cdp_json_native(lua_State *L);
int luaopen_cdp_http(lua_State *L);
int luaopen_cdp_notify(lua_State *L);
int luaopen_cdp_toml(lua_State *L);
int luaopen_cdp_serve(lua_State *L);
int luaopen_cdp_repl(lua_State *L);

#endif
