/*
 * cdp — continuous deployment for Cargo workspaces.
 *
 * main() only builds the Lua state: it takes the options that decide where
 * Lua modules come from (--lua-dir), then hands the remaining arguments to
 * cdp.cli, which owns every command, the help text and the exit codes.
 */
#include "host.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#if defined(__SANITIZE_ADDRESS__)
/*
 * Leaks LeakSanitizer should not report because they are not ours to fix, one
 * list for the whole program:
 * - libgit2 1.5.1 leaks the PCRE2 match data of every regex test that does not
 *   match (each remote lookup scans the config for url.*.insteadOf); fixed
 *   upstream in libgit2 1.6 (PR #6382). Only libgit2 uses libpcre2 here.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libpcre2-8.so\n";
}
#endif

/*
 * cdp holds tokens in its memory: no core dump of it, and no ptrace or
 * /proc/<pid>/mem reading by processes of the same user. Children are
 * dumpable again after their exec.
 */
static void harden(void)
{
	struct rlimit none = {0, 0};
	if (setrlimit(RLIMIT_CORE, &none) != 0)
		perror("cdp: setrlimit(RLIMIT_CORE)");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		perror("cdp: prctl(PR_SET_DUMPABLE)");
}

int main(int argc, char **argv)
{
	harden();
	const char **dirs = calloc((size_t)argc, sizeof *dirs);
	if (!dirs) {
		fprintf(stderr, "cdp: out of memory\n");
		return CDP_EXIT_USAGE;
	}
	int n_dirs = 0, i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--lua-dir") == 0 && i + 1 < argc)
			dirs[n_dirs++] = argv[++i];
		else if (strncmp(argv[i], "--lua-dir=", 10) == 0)
			dirs[n_dirs++] = argv[i] + 10;
		else
			break;
	}
	lua_State *L = cdp_host_open(dirs, n_dirs);
	if (!L) {
		free(dirs);
		return CDP_EXIT_USAGE;
	}

	int status = CDP_EXIT_USAGE;
	lua_getglobal(L, "require");
	lua_pushliteral(L, "cdp.cli");
	if (cdp_pcall(L, 1, 1) != LUA_OK) {
		cdp_report(L);
		goto done;
	}
	lua_getfield(L, -1, "main");
	lua_createtable(L, argc - i, 1);
	lua_pushstring(L, argv[0]);
	lua_rawseti(L, -2, 0);
	for (int k = i; k < argc; k++) {
		lua_pushstring(L, argv[k]);
		lua_rawseti(L, -2, k - i + 1);
	}
	if (cdp_pcall(L, 1, 1) != LUA_OK) {
		cdp_report(L);
		goto done;
	}
	status = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : CDP_EXIT_OK;
done:
	lua_close(L);
	free(dirs);
	return status;
}
