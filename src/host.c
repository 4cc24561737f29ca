/*
 * The Lua state cdp runs in: libraries, module search, protected calls.
 *
 * Modules are looked up in this order, module by module:
 *   1. package.preload (C modules, cjson),
 *   2. override directories: --lua-dir, CDP_LUA_PATH (':'-separated),
 *      then ./.cdp/lua once cdp.cli adds it (host.add_dir) for a command that
 *      runs the repository's pipeline — so a team can replace any module
 *      without rebuilding, and no other command runs a checkout's Lua,
 *   3. the lua/ and stdlib/ sources embedded in the binary,
 *   4. Lua's own package.path and cpath (busted, penlight, ...).
 */
#include "host.h"
#include "embedded.h"

#include <lauxlib.h>
#include <lua-cjson.h>
#include <lualib.h>
#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIRS_KEY "cdp.host.dirs"     /* array of override directories */
#define ONDISK_KEY "cdp.host.ondisk" /* module -> file it was loaded from */

/* Where an override directory may hold module NAME (dots already slashes). */
static const char *const dir_patterns[] = {
	"%s/%s.lua", "%s/%s/init.lua", "%s/lua/%s.lua", "%s/stdlib/%s.lua", NULL,
};

static const struct cdp_embedded *embedded_find(const char *module)
{
	for (const struct cdp_embedded *e = cdp_embedded; e->module; e++)
		if (strcmp(e->module, module) == 0)
			return e;
	return NULL;
}

/* [-0, +1, m] Push the path of an on-disk override of MODULE, or nil. */
static int find_on_disk(lua_State *L, const char *module)
{
	int base = lua_gettop(L);
	lua_getfield(L, LUA_REGISTRYINDEX, DIRS_KEY);
	const char *slashed = luaL_gsub(L, module, ".", "/");
	int n = (int)luaL_len(L, base + 1);
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, base + 1, i);
		const char *dir = lua_tostring(L, -1);
		for (const char *const *p = dir_patterns; *p; p++) {
			const char *path = lua_pushfstring(L, *p, dir, slashed);
			if (access(path, R_OK) == 0) {
				lua_replace(L, base + 1);
				lua_settop(L, base + 1);
				return 1;
			}
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	lua_settop(L, base);
	lua_pushnil(L);
	return 1;
}

/* [-0, +1, m] Push "\n\tno file '...'" for every place MODULE was looked for. */
static void push_places_tried(lua_State *L, const char *module)
{
	int base = lua_gettop(L);
	lua_getfield(L, LUA_REGISTRYINDEX, DIRS_KEY);
	const char *slashed = luaL_gsub(L, module, ".", "/");
	int n = (int)luaL_len(L, base + 1);
	int pieces = base + 3;
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, base + 1, i);
		const char *dir = lua_tostring(L, -1);
		for (const char *const *p = dir_patterns; *p; p++) {
			const char *path = lua_pushfstring(L, *p, dir, slashed);
			lua_pushfstring(L, "\n\tno file '%s'", path);
			lua_remove(L, -2);
			lua_insert(L, -2); /* keep the dir on top */
		}
		lua_pop(L, 1);
	}
	lua_pushfstring(L, "\n\tno embedded module '%s'", module);
	lua_concat(L, lua_gettop(L) - pieces + 1);
	lua_pushstring(L, lua_tostring(L, -1) + 2); /* require adds the first "\n\t" */
	lua_replace(L, base + 1);
	lua_settop(L, base + 1);
}

/* package.searchers entry: override directories, then the embedded copy. */
static int searcher(lua_State *L)
{
	const char *module = luaL_checkstring(L, 1);
	int base = lua_gettop(L);
	find_on_disk(L, module);
	if (!lua_isnil(L, -1)) {
		const char *path = lua_tostring(L, -1);
		if (luaL_loadfilex(L, path, "t") != LUA_OK)
			return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s",
			                  module, path, lua_tostring(L, -1));
		lua_getfield(L, LUA_REGISTRYINDEX, ONDISK_KEY);
		lua_pushvalue(L, base + 1);
		lua_setfield(L, -2, module);
		lua_pop(L, 1);
		lua_pushvalue(L, base + 1);
		return 2;
	}
	lua_pop(L, 1);

	const struct cdp_embedded *e = embedded_find(module);
	if (e) {
		lua_pushfstring(L, "@%s", e->path);
		/* The bytecode compiled from e->source at build time, with its debug information. */
		if (luaL_loadbufferx(L, (const char *)e->bytecode, e->bytecode_size, lua_tostring(L, -1), "b") != LUA_OK)
			return luaL_error(L, "error loading embedded module '%s':\n\t%s", module,
			                  lua_tostring(L, -1));
		lua_pushfstring(L, "embedded:%s", e->path);
		return 2;
	}

	/* Say where we looked, so a missing module names the places searched. */
	push_places_tried(L, module);
	return 1;
}

/* The stable upper-case name scripts branch on. */
const char *cdp_errno_name(int err)
{
	switch (err) {
#define NAME(e) \
	case e: \
		return #e;
		NAME(EPERM) NAME(ENOENT) NAME(ESRCH) NAME(EINTR) NAME(EIO) NAME(ENXIO)
		NAME(E2BIG) NAME(ENOEXEC) NAME(EBADF) NAME(ECHILD) NAME(EAGAIN)
		NAME(ENOMEM) NAME(EACCES) NAME(EFAULT) NAME(EBUSY) NAME(EEXIST)
		NAME(EXDEV) NAME(ENODEV) NAME(ENOTDIR) NAME(EISDIR) NAME(EINVAL)
		NAME(ENFILE) NAME(EMFILE) NAME(ENOTTY) NAME(ETXTBSY) NAME(EFBIG)
		NAME(ENOSPC) NAME(ESPIPE) NAME(EROFS) NAME(EMLINK) NAME(EPIPE)
		NAME(ERANGE) NAME(ENAMETOOLONG) NAME(ENOLCK) NAME(ENOSYS)
		NAME(ENOTEMPTY) NAME(ELOOP) NAME(EDQUOT) NAME(ESTALE) NAME(ETIMEDOUT)
		NAME(EOVERFLOW) NAME(ECANCELED) NAME(EOPNOTSUPP) NAME(EDEADLK)
#undef NAME
	default:
		return "EUNKNOWN";
	}
}

int cdp_push_errno(lua_State *L, int err, const char *thing, const char *other)
{
	const char *name = cdp_errno_name(err);
	char desc[128];
	snprintf(desc, sizeof desc, "%s", strerror(err));
	desc[0] = (char)tolower((unsigned char)desc[0]); /* "no such file or directory" */
	lua_pushnil(L);
	if (other)
		lua_pushfstring(L, "%s: %s: %s -> %s", name, desc, thing, other);
	else
		lua_pushfstring(L, "%s: %s: %s", name, desc, thing);
	lua_pushstring(L, name);
	return 3;
}

int cdp_rawfield(lua_State *L, int t, const char *key)
{
	t = lua_absindex(L, t);
	lua_pushstring(L, key);
	return lua_rawget(L, t);
}

static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			msg = lua_tostring(L, -1);
		else
			msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

int cdp_pcall(lua_State *L, int nargs, int nresults)
{
	int base = lua_gettop(L) - nargs;
	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	int status = lua_pcall(L, nargs, nresults, base);
	lua_remove(L, base);
	return status;
}

void cdp_report(lua_State *L)
{
	const char *msg = lua_tostring(L, -1);
	fprintf(stderr, "%s\n", msg ? msg : "(error object is not a string)");
	fflush(stderr);
	lua_pop(L, 1);
}

static int panic(lua_State *L)
{
	const char *msg = lua_tostring(L, -1);
	fprintf(stderr, "cdp: unprotected error in Lua: %s\n", msg ? msg : "?");
	exit(CDP_EXIT_USAGE);
}

/* cdp.host: what the runtime is made of, for --version and stage keys. */

/* host.source(module) -> source, origin | nil: the text `require` would load. */
static int host_source(lua_State *L)
{
	const char *module = luaL_checkstring(L, 1);
	find_on_disk(L, module);
	if (!lua_isnil(L, -1)) {
		const char *path = lua_tostring(L, -1);
		/* The buffer first (this may raise), then the file; nothing raises while it is open. */
		struct stat st;
		if (stat(path, &st) != 0)
			return cdp_push_errno(L, errno, path, NULL);
		size_t size = (size_t)st.st_size;
		char *buf = lua_newuserdatauv(L, size + 1, 0);
		FILE *f = fopen(path, "rb");
		if (!f)
			return cdp_push_errno(L, errno, path, NULL);
		size_t got = fread(buf, 1, size + 1, f);
		int failed = ferror(f);
		fclose(f);
		if (failed || got != size) {
			lua_pushnil(L);
			lua_pushfstring(L, "%s: %s while reading", path, failed ? "a read error" : "it changed");
			return 2;
		}
		lua_pushlstring(L, buf, size);
		lua_pushvalue(L, -3); /* the path */
		return 2;
	}
	const struct cdp_embedded *e = embedded_find(module);
	if (!e)
		return 1; /* the nil */
	lua_pushlstring(L, e->source, e->size);
	lua_pushfstring(L, "embedded:%s", e->path);
	return 2;
}

/* host.modules() -> { {module=, path=, override=file|nil}, ... } in embed order. */
static int host_modules(lua_State *L)
{
	lua_newtable(L);
	int i = 0;
	for (const struct cdp_embedded *e = cdp_embedded; e->module; e++) {
		lua_createtable(L, 0, 3);
		lua_pushstring(L, e->module);
		lua_setfield(L, -2, "module");
		lua_pushstring(L, e->path);
		lua_setfield(L, -2, "path");
		find_on_disk(L, e->module);
		lua_setfield(L, -2, "override");
		lua_rawseti(L, -2, ++i);
	}
	return 1;
}

/* host.script(name) -> source, path | nil: a script shipped in the binary ("release"). */
static int host_script(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	for (const struct cdp_embedded *e = cdp_scripts; e->module; e++)
		if (strcmp(e->module, name) == 0) {
			lua_pushlstring(L, e->source, e->size);
			lua_pushstring(L, e->path);
			return 2;
		}
	lua_pushnil(L);
	return 1;
}

/* host.scripts() -> { {name=, path=}, ... }: the shipped scripts, sorted by path. */
static int host_scripts(lua_State *L)
{
	lua_newtable(L);
	int i = 0;
	for (const struct cdp_embedded *e = cdp_scripts; e->module; e++) {
		lua_createtable(L, 0, 2);
		lua_pushstring(L, e->module);
		lua_setfield(L, -2, "name");
		lua_pushstring(L, e->path);
		lua_setfield(L, -2, "path");
		lua_rawseti(L, -2, ++i);
	}
	return 1;
}

/* host.dirs() -> the override directories, in search order. */
static int host_dirs(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, DIRS_KEY);
	return 1;
}

static void add_dir(lua_State *L, int dirs, const char *dir)
{
	if (*dir == '\0')
		return;
	lua_pushstring(L, dir);
	lua_rawseti(L, dirs, (lua_Integer)luaL_len(L, dirs) + 1);
}

/* host.add_dir(dir): search DIR after the override directories there are, for
 * modules not loaded yet (cdp.cli adds the repository's .cdp/lua this way). */
static int host_add_dir(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	luaL_argcheck(L, *dir, 1, "a directory");
	lua_getfield(L, LUA_REGISTRYINDEX, DIRS_KEY);
	add_dir(L, lua_gettop(L), dir);
	return 0;
}

/* host.loaded_from_disk() -> { module = file } for modules an override supplied. */
static int host_ondisk(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, ONDISK_KEY);
	return 1;
}

static int luaopen_cdp_host(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{"source", host_source},
		{"modules", host_modules},
		{"script", host_script},
		{"scripts", host_scripts},
		{"dirs", host_dirs},
		{"loaded_from_disk", host_ondisk},
		{"add_dir", host_add_dir},
		{NULL, NULL},
	};
	luaL_newlib(L, funcs);
	lua_pushstring(L, CDP_VERSION);
	lua_setfield(L, -2, "version");
	lua_pushstring(L, LUA_RELEASE);
	lua_setfield(L, -2, "lua_version");
	return 1;
}


static int host_setup(lua_State *L)
{
	const char *const *lua_dirs = lua_touserdata(L, 1);
	int n = (int)lua_tointeger(L, 2);

	luaL_openlibs(L);

	static const luaL_Reg preload[] = {
		{"cjson", luaopen_cjson},
		{"cdp.host", luaopen_cdp_host},
		{"cdp.fs", luaopen_cdp_fs},
		{"cdp.proc", luaopen_cdp_proc},
		{"cdp.git", luaopen_cdp_git},
		{"cdp.commits.native", luaopen_cdp_commits_native},
		{"cdp.json.native", luaopen_cdp_json_native},
		{"cdp.http", luaopen_cdp_http},
		{"cdp.notify", luaopen_cdp_notify},
		{"cdp.toml", luaopen_cdp_toml},
		{"cdp.serve", luaopen_cdp_serve},
		{"cdp.repl", luaopen_cdp_repl},
		{NULL, NULL},
	};
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	for (const luaL_Reg *r = preload; r->name; r++) {
		lua_pushcfunction(L, r->func);
		lua_setfield(L, -2, r->name);
	}
	lua_pop(L, 1);

	lua_newtable(L);
	int dirs = lua_gettop(L);
	for (int i = 0; i < n; i++)
		add_dir(L, dirs, lua_dirs[i]);
	const char *env = getenv("CDP_LUA_PATH");
	if (env) {
		for (const char *p = env; *p;) {
			const char *end = strchr(p, ':');
			size_t len = end ? (size_t)(end - p) : strlen(p);
			lua_pushlstring(L, p, len);
			add_dir(L, dirs, lua_tostring(L, -1));
			lua_pop(L, 1);
			p += len + (end ? 1 : 0);
		}
	}
	lua_setfield(L, LUA_REGISTRYINDEX, DIRS_KEY);
	lua_newtable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, ONDISK_KEY);

	/* Our searcher goes right after preload, ahead of package.path. */
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "searchers");
	int searchers = lua_gettop(L);
	for (int i = (int)luaL_len(L, searchers); i >= 2; i--) {
		lua_rawgeti(L, searchers, i);
		lua_rawseti(L, searchers, i + 1);
	}
	lua_pushcfunction(L, searcher);
	lua_rawseti(L, searchers, 2);
	lua_settop(L, 0);

	/* os.getenv sees the secrets cdp.proc took out of the environment: they
	 * are still cdp's, only no longer its children's (see proc.take_env). */
	lua_getglobal(L, "require");
	lua_pushliteral(L, "cdp.proc");
	lua_call(L, 1, 1);
	lua_getglobal(L, "os");
	lua_getfield(L, -2, "getenv");
	lua_setfield(L, -2, "getenv");
	lua_settop(L, 0);

	/* The `cdp` namespace: cdp.git, cdp.plan, ... loaded on first use. */
	lua_getglobal(L, "require");
	lua_pushliteral(L, "cdp");
	lua_call(L, 1, 1);
	lua_setglobal(L, "cdp");
	return 0;
}

lua_State *cdp_host_open(const char *const *lua_dirs, int n_lua_dirs)
{
	lua_State *L = luaL_newstate();
	if (!L)
		return NULL;
	lua_atpanic(L, panic);
	lua_pushcfunction(L, host_setup);
	lua_pushlightuserdata(L, (void *)lua_dirs);
	lua_pushinteger(L, n_lua_dirs);
	if (cdp_pcall(L, 2, 0) != LUA_OK) {
		cdp_report(L);
		lua_close(L);
		return NULL;
	}
	return L;
}
