#ifndef CDP_EMBEDDED_H
#define CDP_EMBEDDED_H
#include <stddef.h>

/* One Lua module compiled into the binary as source and as bytecode (see
 * tools/embed.c). */
struct cdp_embedded {
	const char *module; /* "cdp.plan"; for a script, its name: "release" */
	const char *path;   /* "lua/cdp/plan.lua", relative to the source root */
	const char *source;
	size_t size;
	const unsigned char *bytecode; /* what `require` loads; NULL for a script */
	size_t bytecode_size;
};

/* Lua modules (lua/, stdlib/), terminated by an entry whose module is NULL. */
extern const struct cdp_embedded cdp_embedded[];

/* Scripts (pipelines/release.lua as "release"), not modules: `require` never
 * finds them. Terminated the same way. */
extern const struct cdp_embedded cdp_scripts[];

#endif
