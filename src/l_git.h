#ifndef CDP_L_GIT_H
#define CDP_L_GIT_H
/*
 * Shared between l_git.c (cdp.git) and git_changes.c (Repository:changes):
 * the Repository userdata. Nothing else includes this.
 */
#include <git2.h>
#include <lua.h>

#define CDP_GIT_REPOSITORY "cdp.git.Repository"

/* The commits walks have read, kept for the next walk of the same repository
 * (git_changes.c): reachability and the change set read the same history. */
struct cdp_graph;

struct cdp_repository {
	git_repository *repo; /* NULL once closed */
	struct cdp_graph *graph; /* NULL until a walk reads commits */
};

/* [-0, +0, v] The open Repository userdata at index ARG; raises if closed or not one. */
struct cdp_repository *cdp_git_check_handle(lua_State *L, int arg);

/*
 * [-0, +1, m] A to-be-closed box on the stack owning SIZE zeroed bytes, which
 * RELEASE empties and the box then frees, when the box is closed or collected
 * (once). For C state that must not leak when a Lua call raises.
 */
void *cdp_git_box(lua_State *L, size_t size, void (*release)(void *));

/* Free what a walk kept of a repository's graph (git_changes.c); safe on NULL. */
void cdp_git_graph_free(struct cdp_graph *graph);

/* [-0, +0, v] The open repository at index ARG; raises if closed or not one. */
git_repository *cdp_git_check_repo(lua_State *L, int arg);

/*
 * [-0, +1..3, e] Push nil, "<message>", "<CODE>" for libgit2 error ERR (the
 * message from git_error_last, prefixed with WHAT when given). Returns 3.
 */
int cdp_git_push_error(lua_State *L, int err, const char *what);

/*
 * [-0, +1, m] Push TEXT (a commit's message or names; NULL is "") as UTF-8:
 * decoded from ENCODING, the commit's `encoding` header (NULL when it has
 * none), and repaired where it is not valid UTF-8 (src/core/utf8.h). Every
 * place that hands commit text to Lua calls it.
 */
void cdp_git_push_text(lua_State *L, const char *text, const char *encoding);

/* Repository:changes{...} and :reachable(from, oids) — implemented in git_changes.c. */
int cdp_git_changes(lua_State *L);
int cdp_git_reachable(lua_State *L);

/* Repository:tag_candidates(names, templates) — implemented in git_tags.c. */
int cdp_git_tag_candidates(lua_State *L);

#endif
