/*
 * Repository:changes{...} — the change set of every crate of a workspace,
 * found in one walk of the commit graph, as cargo and git see it.
 *
 *   local list, stats = repo:changes{
 *     from = "HEAD",
 *     paths = { "crates/a", "" },             -- crate directories
 *     since = { oid, false },                 -- each crate's release, or false
 *     first_parent = false,
 *     files = { { include = {...}, exclude = {...}, extra = {...} }, false },
 *     manifest = "Cargo.toml",                -- the workspace's root manifest
 *     inherits = { { "dependencies.serde", "package.edition" }, false },
 *     parse = true,                           -- commits.parse's table per commit
 *     messages = true,                        -- false: no message kept (see below)
 *     marks = { oid, ... } }                  -- commits whose reach is reported
 *   list:  commits newest first, in topological order, each
 *          { id, summary, message, author, email, time, parents = {oid...},
 *            paths = {i...}, parsed = {...}|nil, inherited = {[i] = {key...}}|nil,
 *            marks = {k...}|nil }
 *          paths are indexes into PATHS (ascending), time the committer time,
 *          message the full message, summary git's (its first paragraph on
 *          one line). With messages = false there is no message: parsed's
 *          body and footers read it again from the repository when asked.
 *   stats: { walked = commits read, trees = tree objects read, blobs =
 *          manifests read, reachable = { [since oid] = true } for the
 *          releases FROM reaches } — the cost of the call, and what it found.
 *
 * What a crate is. Crate i is the files `cargo package` ships from its
 * directory: every file below it except nested packages (a directory below
 * with a Cargo.toml of its own, member or not, and everything in it), the
 * package's own Cargo.lock and target/, and what files[i].include or
 * files[i].exclude leave out (gitignore-style patterns as cargo reads them,
 * src/core/glob.c: with include, only what it names; Cargo.toml is always
 * in). files[i].extra names files outside the directory the crate ships too
 * (a readme or licence file up the tree, and for a crate with a bin target
 * the workspace's Cargo.lock: cdp.workspace ships_lock), repository-relative;
 * an extra file counts even where the rules above leave it out (a root
 * binary's Cargo.lock). Everything
 * at or below a crate directory of PATHS belongs to that crate alone, never
 * to an enclosing one (everything nests in a root crate "").
 *
 * What counts. Commit C counts for crate i when C is reachable from `from`
 * but not from since[i], and a shipped file of crate i differs between C and
 * its parent (a file appearing or disappearing counts), or an entry of
 * [workspace.dependencies] / [workspace.package] that the crate inherits
 * (inherits[i], keys under [workspace]) differs in MANIFEST; such commits
 * carry the keys in inherited[i], so a policy can tell a dependency change
 * from a change of the crate's own files. Trees are compared by oid,
 * descending only where oids differ, and patterns are matched only on the
 * entries that differ; no blob is read except the root manifest, and only at
 * commits where its oid changed.
 *
 * Merges, and git's history simplification. A merge counts for a crate only
 * when the crate differs from EVERY parent: the merge made a change of its
 * own (an evil merge, a conflict resolution) or joined changes from both
 * sides. Which commits a merge brings in is decided per crate as
 * `git log -- DIR` decides it: when the crate's files at the merge equal
 * those of a parent that the crate's release does not reach, or of the
 * release commit itself (git counts the range's bottom as relevant), the
 * crate follows that parent only (the first such), and the other parents'
 * own commits do not count for it. So a merged maintenance branch whose
 * fixes were cherry-picked or reverted brings nothing in twice, also when
 * it is merged right after a release. A merge equal only to a parent the
 * release reaches further down (the merge of a released branch) follows
 * every parent, and counts for nothing itself. With first_parent only first
 * parents are followed and compared (so a merge carries its whole branch),
 * and reachability from since[i] is along first parents too.
 *
 * Never released (since[i] == false). The crate is followed back only to
 * where its directory appears: a commit of from's history that lacks the
 * directory acts as the crate's release, so the commit that adds it counts
 * and nothing older does. A directory deleted and added again is followed
 * back to the latest addition only. A crate absent at `from` has no commits.
 *
 * Releases off the branch. Exclusion is by reachability, whatever the graph:
 * when since[i] is not an ancestor of `from`, the walk also goes down from
 * since[i] until it meets from's history, so the commits both can reach are
 * excluded, exactly as `git log since..from` does.
 *
 * The walk. One pass for all crates, newest commit first (committer time,
 * then discovery order), from `from` and from every release commit. Each
 * distinct release commit, and each never-released crate, owns one bit;
 * bits flow from children to parents, and a commit holding a crate's bit is
 * excluded for that crate. A commit holding every bit is dead; its
 * ancestors are too, so the walk ends when no live commit of from's history
 * is left to read. That makes the common ancestors of all releases (their
 * octopus merge base) the floor of the walk without a separate merge-base
 * search: the cost follows the commits since the releases, not the size of
 * the repository. Bits arriving late at a commit already read (clock skew,
 * equal times) are pushed down again, and the walk reads on while commits
 * as new as the oldest live one remain, so equal timestamps stay exact; for
 * clock skew it reads a few more, as git does. Marks flow the same way and
 * end nothing. Tree comparisons run once per commit read, only for the
 * crates still live there, over a trie of the crate paths; trees come from a
 * small cache shared by all crates, so a commit and its parent share their
 * lookups. Simplification is a last pass in topological order, when every
 * bit is known. Commits are read as raw objects and only their headers
 * parsed; libgit2's object cache is off during the walk (it held every root
 * tree read: 83 MB on a workspace of 70 crates) and pack windows are kept
 * modest. Messages are parsed once (parse = true), in C.
 *
 * Errors. A bad `from` or since[i] gives nil, message, "ENOTFOUND" (naming
 * the rev, and the crate); other libgit2 failures come through
 * cdp_git_push_error. Wrong argument types and bad patterns raise.
 * Everything allocated lives in a Scratch box closed on return or on error,
 * so raising never leaks, and libgit2's settings are put back.
 *
 * Repository:reachable(from, oids), at the end of this file, shares the graph.
 */
#include "l_commits.h"
#include "l_git.h"
#include "core/glob.h"
#include "core/utf8.h"
#include "core/workspace_keys.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TREE_CACHE 1024 /* direct-mapped; a power of two */
#define MANIFEST_CACHE 4

enum {
	N_INTERESTING = 1, /* reachable from `from` */
	N_QUEUED = 2,      /* waiting in the heap */
	N_DONE = 4,        /* read, parents known */
	N_DIFFED = 8,      /* crates it changed are in walk.chg */
};

/*
 * Open addressing from commit ids to indexes into an array whose elements
 * start with their git_oid (BASE, STRIDE bytes apart): the walk's nodes and
 * the repository's graph. Slots hold index + 1; half full at most.
 */
struct oid_index {
	uint32_t *slots;
	size_t cap;
};

static uint32_t oid_slot(const git_oid *id, size_t cap)
{
	uint32_t h;
	memcpy(&h, id->id, sizeof h);
	return h & (uint32_t)(cap - 1);
}

static const git_oid *oid_at(const void *base, size_t stride, uint32_t i)
{
	return (const git_oid *)((const char *)base + (size_t)i * stride);
}

static int32_t index_find(const struct oid_index *x, const void *base, size_t stride, const git_oid *id)
{
	if (!x->cap)
		return -1;
	for (uint32_t s = oid_slot(id, x->cap);; s = (s + 1) & (uint32_t)(x->cap - 1)) {
		uint32_t v = x->slots[s];
		if (v == 0)
			return -1;
		if (git_oid_equal(oid_at(base, stride, v - 1), id))
			return (int32_t)(v - 1);
	}
}

static void index_add(struct oid_index *x, const void *base, size_t stride, uint32_t i)
{
	uint32_t s = oid_slot(oid_at(base, stride, i), x->cap);
	while (x->slots[s])
		s = (s + 1) & (uint32_t)(x->cap - 1);
	x->slots[s] = i + 1;
}

/* Room for one more than the N entries there are; raises when out of memory. */
static void index_reserve(lua_State *L, struct oid_index *x, const void *base, size_t stride, size_t n)
{
	if ((n + 1) * 2 <= x->cap)
		return;
	size_t cap = x->cap ? x->cap * 2 : 1024;
	uint32_t *slots = calloc(cap, sizeof *slots);
	if (!slots)
		luaL_error(L, "not enough memory");
	free(x->slots);
	x->slots = slots;
	x->cap = cap;
	for (uint32_t i = 0; i < n; i++)
		index_add(x, base, stride, i);
}

struct trie {
	char *name;     /* path component; "" for the root */
	uint32_t *kids; /* child trie nodes, sorted by name */
	uint32_t nkids;
	int32_t crate;     /* first crate at this directory, or -1 */
	int32_t *watchers; /* crates that ship this path from outside their directory */
	uint32_t nwatchers;
};

struct spec {
	struct glob_set include, exclude;
	int has_include;
	uint64_t *keys; /* inherited keys, w->kwords words; NULL when none */
};

struct edge {
	git_oid id;
	uint32_t node; /* valid once the child is DONE */
};

struct node {
	git_oid id;
	git_oid tree;
	int64_t time;
	uint32_t edges; /* first walked parent in walk.edges */
	uint32_t nparents;
	uint32_t indeg; /* ordering pass */
	uint32_t keys;  /* 1 + offset into walk.kpool of the inherited keys it changed, or 0 */
	uint8_t flags;
};

struct manifest_values {
	git_oid blob;
	int used;
	char **values; /* nkeys canonical texts, NULL for absent */
};

struct walk {
	git_repository *repo;
	struct cdp_repository *handle; /* whose graph this walk reads through */
	git_odb *odb;
	int first_parent, parse, messages;

	size_t ncrates, cwords; /* crates, and words of a crate set */
	char **paths;           /* normalised crate paths */
	uint32_t *crate_bit;    /* crate -> bit */
	int32_t *crate_next;    /* next crate at the same directory */
	uint8_t *never;         /* crate never released */
	uint32_t *crate_trie;   /* crate -> trie node */
	struct spec *specs;
	char *pathbuf; /* the path being compared, relative to its crate */
	size_t pathcap;
	char *dirbuf; /* has_dir's scratch */

	struct trie *trie;
	size_t ntrie, trie_cap;
	uint64_t *below;      /* trie node -> crates at or below it, and watchers (cwords) */
	uint64_t *below_dirs; /* trie node -> crates whose directory is at or below it */

	size_t nbits, words;   /* bits (releases + never-released crates) */
	size_t nmarks, mwords; /* marks */

	struct node *nodes;
	uint64_t *bits;  /* nodes x words */
	uint64_t *mbits; /* nodes x mwords */
	uint64_t *chg;   /* nodes x cwords: crates each commit changed */
	size_t nnodes, nodes_cap;
	struct edge *edges;
	uint64_t *edge_chg; /* edges x cwords: crates differing from that parent */
	size_t nedges, edges_cap;
	struct oid_index node_index; /* oid -> node */
	uint32_t *heap;
	size_t nheap, heap_cap;
	uint32_t *stack; /* pending re-propagations */
	size_t nstack, stack_cap;
	size_t live_queued; /* queued, interesting, not dead */
	int64_t tmin;       /* oldest live interesting commit read */
	uint32_t from_node;

	/* inherited [workspace.*] keys */
	char **keys;
	size_t nkeys, kwords;
	char **manifest; /* path components of the root manifest */
	size_t nmanifest;
	struct manifest_values mcache[MANIFEST_CACHE];
	size_t mnext;
	uint64_t *kpool;
	size_t kpool_n, kpool_cap;
	uint64_t *kchanged, *kacc;

	git_odb_object *tcache[TREE_CACHE]; /* raw trees */
	size_t walked, trees, blobs;

	git_oid *release; /* distinct release commits */
	uint32_t *release_node;
	git_oid *mark; /* mark commits */
	uint64_t *changed, *acc, *live, *want, *same, *tmp; /* crate sets */
	uint64_t *never_set; /* crates never released */
	uint64_t *absent;    /* never-released crates whose directory the parent compared lacks */
	uint64_t *tbits;     /* bits to give a node (words) */
	git_odb_object *raw; /* held while reading one commit */
	git_object *obj;
	git_object *peeled;
	git_blob *blob;
	struct cc_message message;
	char *text; /* summary scratch */
	size_t text_cap;
	int cache_off; /* libgit2's object cache was turned off by this walk */
};

static void walk_free(void *p)
{
	struct walk *w = p;
	if (w->paths)
		for (size_t i = 0; i < w->ncrates; i++)
			free(w->paths[i]);
	free(w->paths);
	if (w->specs)
		for (size_t i = 0; i < w->ncrates; i++) {
			glob_set_free(&w->specs[i].include);
			glob_set_free(&w->specs[i].exclude);
			free(w->specs[i].keys);
		}
	free(w->specs);
	free(w->crate_bit);
	free(w->crate_next);
	free(w->never);
	free(w->crate_trie);
	free(w->pathbuf);
	free(w->dirbuf);
	for (size_t i = 0; i < w->ntrie; i++) {
		free(w->trie[i].name);
		free(w->trie[i].kids);
		free(w->trie[i].watchers);
	}
	free(w->trie);
	free(w->below);
	free(w->below_dirs);
	free(w->nodes);
	free(w->bits);
	free(w->mbits);
	free(w->chg);
	free(w->edges);
	free(w->edge_chg);
	free(w->node_index.slots);
	free(w->heap);
	free(w->stack);
	if (w->keys)
		for (size_t i = 0; i < w->nkeys; i++)
			free(w->keys[i]);
	free(w->keys);
	if (w->manifest)
		for (size_t i = 0; i < w->nmanifest; i++)
			free(w->manifest[i]);
	free(w->manifest);
	for (size_t i = 0; i < MANIFEST_CACHE; i++)
		if (w->mcache[i].values) {
			workspace_keys_free(w->mcache[i].values, w->nkeys);
			free(w->mcache[i].values);
		}
	free(w->kpool);
	free(w->kchanged);
	free(w->kacc);
	for (size_t i = 0; i < TREE_CACHE; i++)
		git_odb_object_free(w->tcache[i]);
	free(w->changed);
	free(w->acc);
	free(w->live);
	free(w->want);
	free(w->same);
	free(w->tmp);
	free(w->never_set);
	free(w->absent);
	free(w->tbits);
	free(w->release);
	free(w->release_node);
	free(w->mark);
	git_odb_object_free(w->raw);
	git_object_free(w->obj);
	git_object_free(w->peeled);
	git_blob_free(w->blob);
	git_odb_free(w->odb);
	cc_message_free(&w->message);
	free(w->text);
	if (w->cache_off) {
		git_libgit2_opts(GIT_OPT_ENABLE_CACHING, 1);
	}
	memset(w, 0, sizeof *w);
}

/*
 * The walk reads many objects once each: libgit2's object cache would only
 * hold them (every root tree), so it is off until the walk's box closes (the
 * setting is process-wide, and put back). Pack windows are kept modest for
 * the whole process, in luaopen_cdp_git.
 */
static void walk_settings(struct walk *w)
{
	git_libgit2_opts(GIT_OPT_ENABLE_CACHING, 0);
	w->cache_off = 1;
}

/* Grow *P (of *CAP elements of SIZE) to hold NEED; raises when out of memory. */
static void grow(lua_State *L, void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * size);
	if (!q)
		luaL_error(L, "not enough memory");
	*p = q;
	*cap = n;
}

static void *zalloc(lua_State *L, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		luaL_error(L, "not enough memory");
	return p;
}

static char *dupstr(lua_State *L, const char *s, size_t len)
{
	char *p = zalloc(L, len + 1, 1);
	memcpy(p, s, len);
	return p;
}

static int bit_test(const uint64_t *set, size_t bit)
{
	return (int)((set[bit / 64] >> (bit % 64)) & 1);
}

static void bit_set(uint64_t *set, size_t bit)
{
	set[bit / 64] |= (uint64_t)1 << (bit % 64);
}

static int set_any(const uint64_t *set, size_t words)
{
	for (size_t i = 0; i < words; i++)
		if (set[i])
			return 1;
	return 0;
}

static uint64_t *node_bits(struct walk *w, uint32_t n)
{
	return w->bits + (size_t)n * w->words;
}

static int node_dead(struct walk *w, uint32_t n)
{
	const uint64_t *b = node_bits(w, n);
	for (size_t i = 0; i < w->words; i++) {
		uint64_t full = i + 1 < w->words || w->nbits % 64 == 0
		                    ? UINT64_MAX
		                    : ((uint64_t)1 << (w->nbits % 64)) - 1;
		if ((b[i] & full) != full)
			return 0;
	}
	return 1;
}

/* Counted in live_queued: a queued commit of from's history not yet dead. */
static int node_counts(struct walk *w, uint32_t n)
{
	uint8_t f = w->nodes[n].flags;
	return (f & N_QUEUED) && (f & N_INTERESTING) && !node_dead(w, n);
}

/* Into OUT: the crates live at commit N, those whose release does not reach it. */
static void live_set(struct walk *w, uint32_t n, uint64_t *out)
{
	memset(out, 0, w->cwords * sizeof *out);
	const uint64_t *b = node_bits(w, n);
	for (size_t c = 0; c < w->ncrates; c++)
		if (!bit_test(b, w->crate_bit[c]))
			bit_set(out, c);
}

/* ---- crate paths and their trie ---------------------------------------- */

/* Normalise a repository path: no leading "./" or trailing "/", "." is the
 * root. Returns NULL when the path is absolute or has empty, "." or ".." parts. */
static char *path_normalise(lua_State *L, const char *in)
{
	while (in[0] == '.' && in[1] == '/')
		in += 2;
	if (strcmp(in, ".") == 0)
		in = "";
	size_t len = strlen(in);
	while (len > 0 && in[len - 1] == '/')
		len--;
	char *p = dupstr(L, in, len);
	if (len == 0)
		return p;
	for (const char *c = p;;) {
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) {
			free(p);
			return NULL;
		}
		if (!end)
			break;
		c = end + 1;
	}
	return p;
}

/* Index of kid NAME (LEN bytes) of trie node T, or -1; *at is where it would go. */
static int32_t trie_find(struct walk *w, uint32_t t, const char *name, size_t len, uint32_t *at)
{
	uint32_t lo = 0, hi = w->trie[t].nkids;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const char *k = w->trie[w->trie[t].kids[mid]].name;
		size_t klen = strlen(k);
		int c = memcmp(name, k, len < klen ? len : klen);
		if (c == 0)
			c = (len > klen) - (len < klen);
		if (c == 0) {
			if (at)
				*at = mid;
			return (int32_t)w->trie[t].kids[mid];
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (at)
		*at = lo;
	return -1;
}

static uint32_t trie_add(lua_State *L, struct walk *w, const char *name, size_t len)
{
	grow(L, (void **)&w->trie, &w->trie_cap, w->ntrie + 1, sizeof *w->trie);
	struct trie *t = &w->trie[w->ntrie];
	memset(t, 0, sizeof *t);
	t->crate = -1;
	w->ntrie++; /* counted first, so walk_free sees what follows */
	t->name = dupstr(L, name, len);
	return (uint32_t)(w->ntrie - 1);
}

/* The trie node of repository path PATH, made when missing. */
static uint32_t trie_node(lua_State *L, struct walk *w, const char *path)
{
	uint32_t t = 0;
	const char *p = path;
	while (*p) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		uint32_t at;
		int32_t k = trie_find(w, t, p, n, &at);
		if (k < 0) {
			uint32_t nk = trie_add(L, w, p, n);
			struct trie *pt = &w->trie[t];
			uint32_t *kids = realloc(pt->kids, (pt->nkids + 1) * sizeof *kids);
			if (!kids)
				luaL_error(L, "not enough memory");
			memmove(kids + at + 1, kids + at, (pt->nkids - at) * sizeof *kids);
			kids[at] = nk;
			pt->kids = kids;
			pt->nkids++;
			k = (int32_t)nk;
		}
		t = (uint32_t)k;
		p += n + (end ? 1 : 0);
	}
	return t;
}

static void trie_insert(lua_State *L, struct walk *w, size_t crate)
{
	uint32_t t = trie_node(L, w, w->paths[crate]);
	w->crate_trie[crate] = t;
	w->crate_next[crate] = w->trie[t].crate;
	w->trie[t].crate = (int32_t)crate;
}

static void trie_watch(lua_State *L, struct walk *w, size_t crate, const char *path)
{
	uint32_t t = trie_node(L, w, path);
	struct trie *tn = &w->trie[t];
	int32_t *list = realloc(tn->watchers, (tn->nwatchers + 1) * sizeof *list);
	if (!list)
		luaL_error(L, "not enough memory");
	list[tn->nwatchers++] = (int32_t)crate;
	tn->watchers = list;
}

/* below[t]: the crates at or below trie node T and those watching a path
 * there; below_dirs[t]: the crates whose directory is at or below T. */
static void trie_below(struct walk *w, uint32_t t)
{
	uint64_t *mine = w->below + (size_t)t * w->cwords;
	uint64_t *dirs = w->below_dirs + (size_t)t * w->cwords;
	for (int32_t c = w->trie[t].crate; c >= 0; c = w->crate_next[c])
		bit_set(dirs, (size_t)c);
	for (uint32_t i = 0; i < w->trie[t].nwatchers; i++)
		bit_set(mine, (size_t)w->trie[t].watchers[i]);
	for (uint32_t i = 0; i < w->trie[t].nkids; i++) {
		uint32_t k = w->trie[t].kids[i];
		trie_below(w, k);
		const uint64_t *theirs = w->below + (size_t)k * w->cwords;
		const uint64_t *their_dirs = w->below_dirs + (size_t)k * w->cwords;
		for (size_t j = 0; j < w->cwords; j++) {
			mine[j] |= theirs[j];
			dirs[j] |= their_dirs[j];
		}
	}
	for (size_t j = 0; j < w->cwords; j++)
		mine[j] |= dirs[j];
}

/* ---- commits, read raw ------------------------------------------------- */

static int is_git_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == '\v';
}

/* libgit2's is_crud: what a signature's name and e-mail are trimmed of. */
static int is_crud(unsigned char c)
{
	return c <= 32 || c == '.' || c == ',' || c == ':' || c == ';' || c == '<' || c == '>' || c == '"' ||
	       c == '\\' || c == '\'';
}

struct raw_commit {
	const char *data, *end;
	const char *author, *author_end; /* the author line, after "author " */
	const char *committer, *committer_end;
	const char *message; /* the raw message, as libgit2 keeps it */
	const char *encoding, *encoding_end; /* the `encoding` header's value, or NULL */
	size_t nparents;
	const char *parents; /* the first "parent " line */
};

/* The line at P, up to '\n' (or END). */
static const char *line_end(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	return nl ? nl : end;
}

static int has_prefix(const char *p, const char *end, const char *prefix)
{
	size_t n = strlen(prefix);
	return (size_t)(end - p) >= n && memcmp(p, prefix, n) == 0;
}

/* Split a raw commit object into its parts, as libgit2's commit_parse does. */
static int raw_split(struct raw_commit *r, const char *data, size_t size)
{
	memset(r, 0, sizeof *r);
	r->data = data;
	r->end = data + size;
	const char *p = data;
	if (!has_prefix(p, r->end, "tree ") || r->end - p < 5 + GIT_OID_HEXSZ + 1)
		return -1;
	p += 5 + GIT_OID_HEXSZ + 1;
	r->parents = p;
	while (has_prefix(p, r->end, "parent ") && r->end - p >= 7 + GIT_OID_HEXSZ + 1) {
		r->nparents++;
		p += 7 + GIT_OID_HEXSZ + 1;
	}
	while (has_prefix(p, r->end, "author ")) {
		const char *e = line_end(p, r->end);
		if (!r->author) {
			r->author = p + 7;
			r->author_end = e;
		}
		p = e < r->end ? e + 1 : e;
	}
	if (has_prefix(p, r->end, "committer ")) {
		r->committer = p + 10;
		r->committer_end = line_end(p, r->end);
		p = r->committer_end < r->end ? r->committer_end + 1 : r->committer_end;
	}
	/* Other headers up to the blank line; the message follows it. */
	while (p < r->end) {
		if (p[-1] == '\n' && p[0] == '\n')
			break;
		const char *e = line_end(p, r->end);
		if (has_prefix(p, e, "encoding ") && !r->encoding) {
			r->encoding = p + 9;
			r->encoding_end = e;
		}
		p = e < r->end ? e + 1 : e;
	}
	r->message = p + 1 <= r->end ? p + 1 : r->end;
	return 0;
}

/* The committer time, as git_signature__parse reads it (0 when there is none). */
static int64_t raw_time(const struct raw_commit *r)
{
	if (!r->committer)
		return 0;
	const char *gt = NULL;
	for (const char *q = r->committer; q < r->committer_end; q++)
		if (*q == '>')
			gt = q;
	if (!gt || gt + 2 >= r->committer_end)
		return 0;
	const char *p = gt + 2, *end = r->committer_end;
	while (p < end && is_git_space(*p))
		p++;
	int neg = 0;
	if (p < end && (*p == '-' || *p == '+'))
		neg = *p++ == '-';
	int64_t t = 0;
	while (p < end && *p >= '0' && *p <= '9' && t < INT64_MAX / 10)
		t = t * 10 + (*p++ - '0');
	return neg ? -t : t;
}

/* Read commit ID raw into w->raw and split it. */
static int raw_read_from(git_odb *odb, git_odb_object **holder, const git_oid *id, struct raw_commit *r)
{
	git_odb_object_free(*holder);
	*holder = NULL;
	int err = git_odb_read(holder, odb, id);
	if (err < 0)
		return err;
	if (git_odb_object_type(*holder) != GIT_OBJECT_COMMIT ||
	    raw_split(r, git_odb_object_data(*holder), git_odb_object_size(*holder)) < 0) {
		git_error_set(GIT_ERROR_OBJECT, "object %s is not a commit git can read", git_oid_tostr_s(id));
		return GIT_EINVALID;
	}
	return 0;
}

static int raw_read(struct walk *w, const git_oid *id, struct raw_commit *r)
{
	return raw_read_from(w->odb, &w->raw, id, r);
}

/* git_commit_message: the raw message (a C string, as libgit2 copies it)
 * without its leading newlines. */
static const char *raw_message(const struct raw_commit *r, size_t *len)
{
	size_t raw_len = (size_t)(r->end - r->message);
	const char *nul = memchr(r->message, '\0', raw_len);
	size_t n = nul ? (size_t)(nul - r->message) : raw_len;
	const char *msg = r->message;
	while (n > 0 && *msg == '\n')
		msg++, n--;
	*len = n;
	return msg;
}

/* [-0, +1, m] A signature part, trimmed as libgit2 trims it. */
static void push_trimmed(lua_State *L, const char *p, size_t len)
{
	while (len && is_crud((unsigned char)p[0]))
		p++, len--;
	while (len && is_crud((unsigned char)p[len - 1]))
		len--;
	lua_pushlstring(L, p, len);
}

/* [-0, +2, m] The author's name and e-mail, as git_signature__parse finds them. */
static void push_author(lua_State *L, const struct raw_commit *r)
{
	const char *lt = NULL, *gt = NULL;
	for (const char *q = r->author; r->author && q < r->author_end; q++) {
		if (*q == '<')
			lt = q;
		else if (*q == '>')
			gt = q;
	}
	if (!lt || !gt || gt <= lt) {
		lua_pushliteral(L, "");
		lua_pushliteral(L, "");
		return;
	}
	push_trimmed(L, r->author, (size_t)(lt - r->author));
	push_trimmed(L, lt + 1, (size_t)(gt - lt - 1));
}

/* [-0, +1, m] git_commit_summary of MESSAGE (libgit2 1.5's algorithm): the
 * first paragraph, runs of white space with a newline made one space. */
static void push_summary(lua_State *L, struct walk *w, const char *msg, size_t len)
{
	size_t n = 0;
	const char *space = NULL, *end = msg + len;
	int space_has_newline = 0;
	grow(L, (void **)&w->text, &w->text_cap, len + 1, 1);
	for (; msg < end; ++msg) {
		char c = msg[0];
		if (c == '\n') {
			if (msg + 1 == end || msg[1] == '\n')
				break;
			const char *next = msg + 1;
			while (next < end && is_git_space(*next) && *next != '\n')
				++next;
			if (next == end || *next == '\n')
				break;
		}
		if (is_git_space(c)) {
			if (!space) {
				space = msg;
				space_has_newline = 0;
			}
			space_has_newline |= c == '\n';
		} else {
			if (space) {
				if (space_has_newline) {
					w->text[n++] = ' ';
				} else {
					memcpy(w->text + n, space, (size_t)(msg - space));
					n += (size_t)(msg - space);
				}
				space = NULL;
			}
			w->text[n++] = c;
		}
	}
	lua_pushlstring(L, w->text, n);
}

/* ---- the repository's graph ---------------------------------------------- */

/*
 * What walks of one repository have read of each commit: its tree, time and
 * parents (about 70 bytes a commit). Reachability and the change set walk the
 * same history one after the other; the second reads nothing again. It lives
 * with the Repository userdata and goes when the repository is closed.
 */
struct gcommit {
	git_oid id, tree;
	int64_t time;
	uint32_t parents; /* first parent in cdp_graph.parents */
	uint32_t nparents;
};

struct cdp_graph {
	struct gcommit *commits;
	size_t n, cap;
	git_oid *parents;
	size_t np, pcap;
	struct oid_index index; /* oid -> commit */
};

void cdp_git_graph_free(struct cdp_graph *g)
{
	if (!g)
		return;
	free(g->commits);
	free(g->parents);
	free(g->index.slots);
	free(g);
}

static int raw_read(struct walk *w, const git_oid *id, struct raw_commit *r);

/*
 * The commit ID as the graph holds it, read (raw, header only) when it is
 * not there yet. The pointer is good until the next call. Raises when out
 * of memory; the graph stays whole.
 */
static int graph_commit(lua_State *L, struct walk *w, const git_oid *id, const struct gcommit **out)
{
	if (!w->handle->graph) {
		w->handle->graph = calloc(1, sizeof *w->handle->graph);
		if (!w->handle->graph)
			luaL_error(L, "not enough memory");
	}
	struct cdp_graph *g = w->handle->graph;
	int32_t found = index_find(&g->index, g->commits, sizeof *g->commits, id);
	if (found >= 0) {
		*out = &g->commits[found];
		return 0;
	}
	struct raw_commit r;
	int err = raw_read(w, id, &r);
	if (err < 0)
		return err;
	index_reserve(L, &g->index, g->commits, sizeof *g->commits, g->n);
	grow(L, (void **)&g->commits, &g->cap, g->n + 1, sizeof *g->commits);
	grow(L, (void **)&g->parents, &g->pcap, g->np + r.nparents, sizeof *g->parents);
	struct gcommit *c = &g->commits[g->n];
	git_oid_cpy(&c->id, id);
	git_oid_fromstrn(&c->tree, r.data + 5, GIT_OID_HEXSZ);
	c->time = raw_time(&r);
	c->parents = (uint32_t)g->np;
	c->nparents = (uint32_t)r.nparents;
	for (size_t k = 0; k < r.nparents; k++)
		git_oid_fromstrn(&g->parents[g->np++], r.parents + k * (8 + GIT_OID_HEXSZ) + 7, GIT_OID_HEXSZ);
	git_odb_object_free(w->raw);
	w->raw = NULL;
	index_add(&g->index, g->commits, sizeof *g->commits, (uint32_t)g->n);
	*out = &g->commits[g->n++];
	return 0;
}

/* ---- trees ------------------------------------------------------------- */

/*
 * Trees are read raw and their entries parsed in place ("<mode> <name>\0<oid>"
 * in git's order), through a direct-mapped cache of raw objects that a
 * commit and its parent share: no per-tree allocation beyond libgit2's read,
 * and no lookup by name but a scan. A tree in use is held by a reference of
 * its own, so the cache may evict it meanwhile.
 */
struct rtree {
	git_odb_object *obj; /* NULL: nothing */
	const char *data;
	size_t size;
};

struct rentry {
	const char *name; /* NUL-terminated, inside the tree */
	size_t len;
	unsigned mode;
	const git_oid *oid;
};

static int tree_get(struct walk *w, struct rtree *out, const git_oid *id)
{
	size_t slot;
	memcpy(&slot, id->id, sizeof slot);
	slot &= TREE_CACHE - 1;
	git_odb_object *t = w->tcache[slot];
	if (!t || !git_oid_equal(git_odb_object_id(t), id)) {
		git_odb_object *fresh;
		int err = git_odb_read(&fresh, w->odb, id);
		if (err < 0)
			return err;
		if (git_odb_object_type(fresh) != GIT_OBJECT_TREE) {
			git_odb_object_free(fresh);
			git_error_set(GIT_ERROR_OBJECT, "object %s is not a tree", git_oid_tostr_s(id));
			return GIT_EINVALID;
		}
		w->trees++;
		git_odb_object_free(t);
		w->tcache[slot] = t = fresh;
	}
	int err = git_odb_object_dup(&out->obj, t);
	if (err < 0)
		return err;
	out->data = git_odb_object_data(t);
	out->size = git_odb_object_size(t);
	return 0;
}

static void tree_release(struct rtree *t)
{
	git_odb_object_free(t->obj);
	memset(t, 0, sizeof *t);
}

/* The entry at *POS of T, advancing *POS; 0 at the end (or at a broken entry). */
static int tree_next(const struct rtree *t, size_t *pos, struct rentry *e)
{
	if (!t->obj || *pos >= t->size)
		return 0;
	const char *p = t->data + *pos, *end = t->data + t->size;
	unsigned mode = 0;
	while (p < end && *p >= '0' && *p <= '7')
		mode = mode * 8 + (unsigned)(*p++ - '0');
	if (p >= end || *p++ != ' ')
		return 0;
	const char *nul = memchr(p, '\0', (size_t)(end - p));
	if (!nul || (size_t)(end - nul) < 1 + GIT_OID_RAWSZ)
		return 0;
	e->name = p;
	e->len = (size_t)(nul - p);
	e->mode = mode;
	e->oid = (const git_oid *)(const void *)(nul + 1);
	*pos = (size_t)(nul + 1 + GIT_OID_RAWSZ - t->data);
	return 1;
}

/* The entry of T called NAME (LEN bytes), if any. */
static int tree_find(const struct rtree *t, const char *name, size_t len, struct rentry *e)
{
	size_t pos = 0;
	while (tree_next(t, &pos, e))
		if (e->len == len && memcmp(e->name, name, len) == 0)
			return 1;
	return 0;
}

/* git's tree order: names compared as if directories ended in '/'. */
static int entry_cmp(const struct rentry *a, const struct rentry *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->name, b->name, n);
	if (c)
		return c;
	unsigned char ca = (unsigned char)a->name[n], cb = (unsigned char)b->name[n];
	if (ca == '\0' && a->mode == GIT_FILEMODE_TREE)
		ca = '/';
	if (cb == '\0' && b->mode == GIT_FILEMODE_TREE)
		cb = '/';
	return (ca > cb) - (ca < cb);
}

/* One side of a comparison: what sits at a path. oid NULL = nothing. */
struct side {
	const git_oid *oid;
	git_filemode_t mode;
};

static const struct side NONE = {NULL, 0};

static int side_equal(struct side a, struct side b)
{
	if (!a.oid || !b.oid)
		return !a.oid && !b.oid;
	return a.mode == b.mode && git_oid_equal(a.oid, b.oid);
}

static int is_tree(struct side s)
{
	return s.oid && s.mode == GIT_FILEMODE_TREE;
}

static int is_file(struct side s)
{
	return s.oid && s.mode != GIT_FILEMODE_TREE;
}

/* A directory with a Cargo.toml of its own is a package: nested, for whoever encloses it. */
static int is_package(const struct rtree *t)
{
	struct rentry e;
	return t->obj && tree_find(t, "Cargo.toml", 10, &e) && e.mode != GIT_FILEMODE_TREE;
}

/* Append NAME to the path of length LEN; returns the new length. Raises when out of memory. */
static size_t path_push(lua_State *L, struct walk *w, size_t len, const char *name, size_t n)
{
	grow(L, (void **)&w->pathbuf, &w->pathcap, len + n + 2, 1);
	if (len)
		w->pathbuf[len++] = '/';
	memcpy(w->pathbuf + len, name, n);
	w->pathbuf[len + n] = '\0';
	return len + n;
}

/* Does crate C ship the file at PATH (relative to its directory)? */
static int shipped(const struct walk *w, size_t c, const char *path, size_t len)
{
	if (len == 10 && memcmp(path, "Cargo.toml", 10) == 0)
		return 1;
	if (len == 10 && memcmp(path, "Cargo.lock", 10) == 0)
		return 0; /* cargo writes its own */
	if (len >= 6 && memcmp(path, "target", 6) == 0 && (len == 6 || path[6] == '/'))
		return 0;
	const struct spec *s = &w->specs[c];
	if (s->has_include)
		return glob_match_path(&s->include, path, len, 0) == GLOB_IGNORE;
	if (s->exclude.n)
		return glob_match_path(&s->exclude, path, len, 0) != GLOB_IGNORE;
	return 1;
}

/* Can nothing below directory PATH be shipped? (An excluded directory with no '!' to bring a file back.) */
static int dir_left_out(const struct walk *w, size_t c, const char *path, size_t len)
{
	const struct spec *s = &w->specs[c];
	if (len == 6 && memcmp(path, "target", 6) == 0)
		return 1;
	return !s->has_include && s->exclude.n && !s->exclude.has_whitelist &&
	       glob_match_path(&s->exclude, path, len, 1) == GLOB_IGNORE;
}

struct pair {
	struct rtree a, b;
	size_t i, j;            /* where each side's next entry starts */
	struct rentry ea, eb;   /* the entries at i and j, when have_a / have_b */
	int have_a, have_b;
};

static int pair_open(struct walk *w, struct pair *p, struct side a, struct side b)
{
	memset(p, 0, sizeof *p);
	int err = 0;
	if (is_tree(a))
		err = tree_get(w, &p->a, a.oid);
	if (!err && is_tree(b))
		err = tree_get(w, &p->b, b.oid);
	p->have_a = tree_next(&p->a, &p->i, &p->ea);
	p->have_b = tree_next(&p->b, &p->j, &p->eb);
	return err;
}

/* Drop side A or B of the pair (a nested package: none of it counts). */
static void pair_drop(struct pair *p, int side_a)
{
	if (side_a) {
		tree_release(&p->a);
		p->have_a = 0;
	} else {
		tree_release(&p->b);
		p->have_b = 0;
	}
}

static void pair_close(struct pair *p)
{
	tree_release(&p->a);
	tree_release(&p->b);
}

static struct side side_of(const struct rentry *e)
{
	struct side s = {e->oid, (git_filemode_t)e->mode};
	return s;
}

/* The next entry name present on either side whose sides differ, and what each side has there. */
static int pair_next(struct pair *p, const char **name, size_t *len, struct side *sa, struct side *sb)
{
	while (p->have_a || p->have_b) {
		int c = !p->have_a ? 1 : !p->have_b ? -1 : entry_cmp(&p->ea, &p->eb);
		*sa = c <= 0 ? side_of(&p->ea) : NONE;
		*sb = c >= 0 ? side_of(&p->eb) : NONE;
		const struct rentry *e = c <= 0 ? &p->ea : &p->eb;
		*name = e->name;
		*len = e->len;
		if (c <= 0)
			p->have_a = tree_next(&p->a, &p->i, &p->ea);
		if (c >= 0)
			p->have_b = tree_next(&p->b, &p->j, &p->eb);
		if (!side_equal(*sa, *sb))
			return 1;
	}
	return 0;
}

/*
 * Does a file crate C ships differ between sides A and B of the entry at
 * w->pathbuf (LEN bytes, relative to the crate's directory)? Descends only
 * into trees whose oids differ, and stops at the first shipped file found.
 */
static int files_differ(lua_State *L, struct walk *w, size_t c, size_t len, struct side a, struct side b, int *out)
{
	*out = 0;
	if (side_equal(a, b))
		return 0;
	if ((is_file(a) || is_file(b)) && shipped(w, c, w->pathbuf, len)) {
		*out = 1;
		return 0;
	}
	if (!is_tree(a) && !is_tree(b))
		return 0;
	if (dir_left_out(w, c, w->pathbuf, len))
		return 0;
	struct pair p;
	int err = pair_open(w, &p, a, b);
	if (!err && is_package(&p.a)) /* nested packages ship nothing of C's */
		pair_drop(&p, 1);
	if (!err && is_package(&p.b))
		pair_drop(&p, 0);
	const char *name;
	size_t nlen;
	struct side sa, sb;
	/* Files first: a shipped file that differs here settles it without reading deeper. */
	struct pair files = p;
	while (!err && !*out && pair_next(&files, &name, &nlen, &sa, &sb))
		if (is_file(sa) || is_file(sb))
			*out = shipped(w, c, w->pathbuf, path_push(L, w, len, name, nlen));
	while (!err && !*out && pair_next(&p, &name, &nlen, &sa, &sb)) {
		if (!is_tree(sa) && !is_tree(sb))
			continue;
		size_t n = path_push(L, w, len, name, nlen);
		err = files_differ(L, w, c, n, is_tree(sa) ? sa : NONE, is_tree(sb) ? sb : NONE, out);
	}
	pair_close(&p);
	return err;
}

/* Is any crate of owner trie node O still to be decided? */
static int owner_pending(const struct walk *w, int32_t o)
{
	for (int32_t c = o >= 0 ? w->trie[o].crate : -1; c >= 0; c = w->crate_next[c])
		if (bit_test(w->want, (size_t)c) && !bit_test(w->changed, (size_t)c))
			return 1;
	return 0;
}

/* Decide, for each pending crate of owner O, whether the entry at the path
 * (LEN bytes) ships a differing file. */
static int owner_files(lua_State *L, struct walk *w, int32_t o, size_t len, struct side a, struct side b)
{
	for (int32_t c = w->trie[o].crate; c >= 0; c = w->crate_next[c]) {
		if (!bit_test(w->want, (size_t)c) || bit_test(w->changed, (size_t)c))
			continue;
		int d;
		int err = files_differ(L, w, (size_t)c, len, a, b, &d);
		if (err < 0)
			return err;
		if (d)
			bit_set(w->changed, (size_t)c);
	}
	return 0;
}

/* Is anything below trie node T still to be decided? A never-released crate
 * always is, while its directory may be missing from the parent. */
static int trie_pending(const struct walk *w, uint32_t t)
{
	const uint64_t *b = w->below + (size_t)t * w->cwords;
	const uint64_t *d = w->below_dirs + (size_t)t * w->cwords;
	for (size_t i = 0; i < w->cwords; i++)
		if ((b[i] & w->want[i] & ~w->changed[i]) || (d[i] & w->want[i] & w->never_set[i]))
			return 1;
	return 0;
}

/* The parent side (B) at trie node T has no directory: the never-released
 * crates at or below T begin at the commit compared, not before. */
static void note_absent(struct walk *w, uint32_t t, struct side b)
{
	if (is_tree(b))
		return;
	const uint64_t *d = w->below_dirs + (size_t)t * w->cwords;
	for (size_t i = 0; i < w->cwords; i++)
		w->absent[i] |= d[i] & w->want[i] & w->never_set[i];
}

/*
 * Compare trie node T between sides A and B, marking in w->changed the
 * wanted crates whose shipped files differ. OWNER is the trie node of the
 * crate the files here belong to (-1: none); the path relative to it is
 * w->pathbuf, LEN bytes. VIS_A / VIS_B: that side is still the owner's (no
 * nested package in between).
 */
static int diff_dir(lua_State *L, struct walk *w, uint32_t t, int32_t owner, int vis_a, int vis_b, size_t len,
                    struct side a, struct side b)
{
	if (side_equal(a, b))
		return 0;
	const struct trie *tn = &w->trie[t];
	for (uint32_t i = 0; i < tn->nwatchers; i++)
		if (bit_test(w->want, (size_t)tn->watchers[i]))
			bit_set(w->changed, (size_t)tn->watchers[i]);
	int err = 0;
	if (tn->crate >= 0) {
		owner = (int32_t)t;
		vis_a = vis_b = 1;
		len = 0;
	} else if (owner >= 0 && (is_file(a) || is_file(b)) && owner_pending(w, owner)) {
		/* this path is also one of the owner's files */
		err = owner_files(L, w, owner, len, vis_a && is_file(a) ? a : NONE, vis_b && is_file(b) ? b : NONE);
		if (err < 0)
			return err;
	}
	if (!is_tree(a) && !is_tree(b))
		return 0;
	int mine = owner >= 0 && owner_pending(w, owner);
	if (!mine && !trie_pending(w, t))
		return 0;
	struct pair p;
	err = pair_open(w, &p, a, b);
	if (!err && tn->crate < 0 && owner >= 0) {
		vis_a = vis_a && !is_package(&p.a);
		vis_b = vis_b && !is_package(&p.b);
	}
	const char *name;
	size_t nlen;
	struct side sa, sb;
	while (!err && pair_next(&p, &name, &nlen, &sa, &sb)) {
		int32_t kid = trie_find(w, t, name, nlen, NULL);
		if (kid >= 0) {
			note_absent(w, (uint32_t)kid, sb);
			if (owner_pending(w, owner) || trie_pending(w, (uint32_t)kid)) {
				size_t n = owner >= 0 ? path_push(L, w, len, name, nlen) : 0;
				err = diff_dir(L, w, (uint32_t)kid, owner, vis_a, vis_b, n, sa, sb);
			}
		} else if (owner >= 0 && owner_pending(w, owner)) {
			size_t n = path_push(L, w, len, name, nlen);
			err = owner_files(L, w, owner, n, vis_a ? sa : NONE, vis_b ? sb : NONE);
		}
	}
	pair_close(&p);
	return err;
}

/* Does tree ROOT hold a directory at crate C's path? */
static int has_dir(struct walk *w, const git_oid *root, size_t c, int *out)
{
	git_oid id;
	git_oid_cpy(&id, root);
	*out = 1;
	for (const char *p = w->paths[c]; *p;) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		struct rtree t;
		struct rentry e;
		int err = tree_get(w, &t, &id);
		if (err < 0)
			return err;
		int found = tree_find(&t, p, n, &e) && e.mode == GIT_FILEMODE_TREE;
		if (found)
			git_oid_cpy(&id, e.oid);
		tree_release(&t);
		if (!found) {
			*out = 0;
			return 0;
		}
		p += n + (end ? 1 : 0);
	}
	return 0;
}

/* ---- inherited [workspace.*] entries ----------------------------------- */

/* The oid of the root manifest in tree ROOT (*found = 0 when there is none). */
static int manifest_blob(struct walk *w, const git_oid *root, git_oid *out, int *found)
{
	git_oid id;
	git_oid_cpy(&id, root);
	*found = 0;
	for (size_t i = 0; i < w->nmanifest; i++) {
		struct rtree t;
		struct rentry e;
		int err = tree_get(w, &t, &id);
		if (err < 0)
			return err;
		int last = i + 1 == w->nmanifest;
		int ok = tree_find(&t, w->manifest[i], strlen(w->manifest[i]), &e) &&
		         (e.mode == GIT_FILEMODE_TREE) != last;
		if (ok)
			git_oid_cpy(&id, e.oid);
		tree_release(&t);
		if (!ok)
			return 0;
	}
	git_oid_cpy(out, &id);
	*found = 1;
	return 0;
}

/* The inherited entries of manifest blob ID (NULL: no manifest), read once per blob. */
static int manifest_values(lua_State *L, struct walk *w, const git_oid *id, char ***out)
{
	static char *none[1];
	*out = NULL;
	if (!id)
		return 0;
	for (size_t i = 0; i < MANIFEST_CACHE; i++)
		if (w->mcache[i].used && git_oid_equal(&w->mcache[i].blob, id)) {
			*out = w->mcache[i].values;
			return 0;
		}
	struct manifest_values *m = &w->mcache[w->mnext];
	w->mnext = (w->mnext + 1) % MANIFEST_CACHE;
	if (m->values)
		workspace_keys_free(m->values, w->nkeys);
	else
		m->values = zalloc(L, w->nkeys, sizeof *m->values);
	m->used = 0;
	int err = git_blob_lookup(&w->blob, w->repo, id);
	if (err < 0)
		return err;
	w->blobs++;
	int rc = workspace_keys_read(git_blob_rawcontent(w->blob), (size_t)git_blob_rawsize(w->blob),
	                             (const char *const *)w->keys, w->nkeys, m->values);
	git_blob_free(w->blob);
	w->blob = NULL;
	if (rc < 0)
		luaL_error(L, "not enough memory");
	git_oid_cpy(&m->blob, id);
	m->used = 1;
	*out = m->values;
	(void)none;
	return 0;
}

/*
 * The inherited keys whose values differ between trees MINE and THEIRS (NULL:
 * nothing) into w->kchanged, and the wanted crates inheriting one of them
 * into w->changed.
 */
static int inherited_changes(lua_State *L, struct walk *w, const git_oid *mine, const git_oid *theirs)
{
	memset(w->kchanged, 0, w->kwords * sizeof *w->kchanged);
	if (!w->nkeys || !w->nmanifest)
		return 0;
	git_oid a, b;
	int fa = 0, fb = 0, err;
	if ((err = manifest_blob(w, mine, &a, &fa)) < 0)
		return err;
	if (theirs && (err = manifest_blob(w, theirs, &b, &fb)) < 0)
		return err;
	if (fa == fb && (!fa || git_oid_equal(&a, &b)))
		return 0;
	char **va, **vb;
	if ((err = manifest_values(L, w, fa ? &a : NULL, &va)) < 0)
		return err;
	/* The cache holds both: the second read never evicts the first. */
	if ((err = manifest_values(L, w, fb ? &b : NULL, &vb)) < 0)
		return err;
	for (size_t k = 0; k < w->nkeys; k++) {
		const char *x = va ? va[k] : NULL, *y = vb ? vb[k] : NULL;
		if ((x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0))
			bit_set(w->kchanged, k);
	}
	for (size_t c = 0; c < w->ncrates; c++) {
		const uint64_t *keys = w->specs[c].keys;
		if (!keys || !bit_test(w->want, c))
			continue;
		for (size_t i = 0; i < w->kwords; i++)
			if (keys[i] & w->kchanged[i]) {
				bit_set(w->changed, c);
				break;
			}
	}
	return 0;
}

/* ---- the graph --------------------------------------------------------- */

static int heap_before(struct walk *w, uint32_t a, uint32_t b)
{
	if (w->nodes[a].time != w->nodes[b].time)
		return w->nodes[a].time > w->nodes[b].time;
	return a < b;
}

static void heap_push(lua_State *L, struct walk *w, uint32_t n)
{
	grow(L, (void **)&w->heap, &w->heap_cap, w->nheap + 1, sizeof *w->heap);
	size_t i = w->nheap++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!heap_before(w, n, w->heap[up]))
			break;
		w->heap[i] = w->heap[up];
		i = up;
	}
	w->heap[i] = n;
}

static uint32_t heap_pop(struct walk *w)
{
	uint32_t top = w->heap[0], last = w->heap[--w->nheap];
	size_t i = 0;
	for (;;) {
		size_t k = 2 * i + 1;
		if (k >= w->nheap)
			break;
		if (k + 1 < w->nheap && heap_before(w, w->heap[k + 1], w->heap[k]))
			k++;
		if (!heap_before(w, w->heap[k], last))
			break;
		w->heap[i] = w->heap[k];
		i = k;
	}
	if (w->nheap > 0)
		w->heap[i] = last;
	return top;
}

/* Resize per-node arrays of WORDS words each to the node capacity. */
static void resize_sets(lua_State *L, uint64_t **sets, size_t cap, size_t words)
{
	uint64_t *p = realloc(*sets, (cap ? cap : 1) * (words ? words : 1) * sizeof *p);
	if (!p)
		luaL_error(L, "not enough memory");
	*sets = p;
}

/* The node of commit ID: found, or read, created and queued. ID may point
 * into w->edges, which this grows: it is copied first. */
static int node_get(lua_State *L, struct walk *w, const git_oid *id_in, uint32_t *out)
{
	git_oid copy;
	git_oid_cpy(&copy, id_in);
	const git_oid *id = &copy;
	int32_t found = index_find(&w->node_index, w->nodes, sizeof *w->nodes, id);
	if (found >= 0) {
		*out = (uint32_t)found;
		return 0;
	}
	const struct gcommit *gc;
	int err = graph_commit(L, w, id, &gc);
	if (err < 0)
		return err;
	/* what the graph says, before anything here can grow it */
	git_oid tree;
	git_oid_cpy(&tree, &gc->tree);
	int64_t time = gc->time;
	size_t np = gc->nparents, first = gc->parents;
	w->walked++;

	index_reserve(L, &w->node_index, w->nodes, sizeof *w->nodes, w->nnodes);
	size_t cap = w->nodes_cap;
	grow(L, (void **)&w->nodes, &w->nodes_cap, w->nnodes + 1, sizeof *w->nodes);
	if (w->nodes_cap != cap) {
		resize_sets(L, &w->bits, w->nodes_cap, w->words);
		resize_sets(L, &w->chg, w->nodes_cap, w->cwords);
		if (w->mwords)
			resize_sets(L, &w->mbits, w->nodes_cap, w->mwords);
	}
	if (w->first_parent && np > 1)
		np = 1;
	size_t ecap = w->edges_cap;
	grow(L, (void **)&w->edges, &w->edges_cap, w->nedges + np, sizeof *w->edges);
	if (w->edges_cap != ecap)
		resize_sets(L, &w->edge_chg, w->edges_cap, w->cwords);

	uint32_t n = (uint32_t)w->nnodes++;
	struct node *nd = &w->nodes[n];
	memset(nd, 0, sizeof *nd);
	git_oid_cpy(&nd->id, id);
	git_oid_cpy(&nd->tree, &tree);
	nd->time = time;
	nd->edges = (uint32_t)w->nedges;
	nd->nparents = (uint32_t)np;
	const struct cdp_graph *g = w->handle->graph;
	for (size_t k = 0; k < np; k++) {
		git_oid_cpy(&w->edges[w->nedges].id, &g->parents[first + k]);
		w->edges[w->nedges++].node = UINT32_MAX;
	}
	memset(node_bits(w, n), 0, w->words * sizeof(uint64_t));
	if (w->mwords)
		memset(w->mbits + (size_t)n * w->mwords, 0, w->mwords * sizeof(uint64_t));
	index_add(&w->node_index, w->nodes, sizeof *w->nodes, n);
	heap_push(L, w, n);
	nd->flags |= N_QUEUED;
	*out = n;
	return 0;
}

/* OR BITS (and MBITS, and INTERESTING) into node P; re-propagate below P if P was read. */
static void give(lua_State *L, struct walk *w, uint32_t p, const uint64_t *bits, const uint64_t *mbits,
                 int interesting)
{
	uint64_t *pb = node_bits(w, p);
	uint64_t *pm = w->mbits + (size_t)p * w->mwords;
	int more = interesting && !(w->nodes[p].flags & N_INTERESTING);
	for (size_t i = 0; i < w->words && !more; i++)
		more = (bits[i] & ~pb[i]) != 0;
	for (size_t i = 0; mbits && i < w->mwords && !more; i++)
		more = (mbits[i] & ~pm[i]) != 0;
	if (!more)
		return;
	int counted = node_counts(w, p);
	for (size_t i = 0; i < w->words; i++)
		pb[i] |= bits[i];
	for (size_t i = 0; mbits && i < w->mwords; i++)
		pm[i] |= mbits[i];
	if (interesting)
		w->nodes[p].flags |= N_INTERESTING;
	w->live_queued += (size_t)node_counts(w, p) - (size_t)counted;
	if (w->nodes[p].flags & N_DONE) {
		grow(L, (void **)&w->stack, &w->stack_cap, w->nstack + 1, sizeof *w->stack);
		w->stack[w->nstack++] = p;
	}
}

/* Give parent P what child C carries. */
static void pass_down(lua_State *L, struct walk *w, uint32_t c, uint32_t p)
{
	give(L, w, p, node_bits(w, c), w->mbits + (size_t)c * w->mwords, w->nodes[c].flags & N_INTERESTING);
}

/* Keep the inherited keys that changed in w->kacc for commit N's record. */
static void keep_keys(lua_State *L, struct walk *w, uint32_t n)
{
	if (!set_any(w->kacc, w->kwords))
		return;
	grow(L, (void **)&w->kpool, &w->kpool_cap, w->kpool_n + w->kwords, sizeof *w->kpool);
	memcpy(w->kpool + w->kpool_n, w->kacc, w->kwords * sizeof *w->kpool);
	w->nodes[n].keys = (uint32_t)w->kpool_n + 1;
	w->kpool_n += w->kwords;
}

/*
 * The crates commit N changed, for the crates live at N (w->want): per
 * parent into edge_chg (a crate not compared counts as differing), and
 * against every parent into chg. A crate the same as an earlier parent is
 * not compared with later ones: the merge does not count for it, and which
 * parent it follows is known.
 */
static int node_changes(lua_State *L, struct walk *w, uint32_t n)
{
	struct node *nd = &w->nodes[n];
	struct side mine = {&nd->tree, GIT_FILEMODE_TREE};
	uint64_t *chg = w->chg + (size_t)n * w->cwords;
	live_set(w, n, w->live);
	int err = 0;
	if (nd->nparents == 0) {
		memcpy(w->want, w->live, w->cwords * sizeof *w->want);
		memset(w->changed, 0, w->cwords * sizeof *w->changed);
		err = diff_dir(L, w, 0, -1, 1, 1, 0, mine, NONE);
		if (!err)
			err = inherited_changes(L, w, &nd->tree, NULL);
		memcpy(chg, w->changed, w->cwords * sizeof *chg);
		memcpy(w->kacc, w->kchanged, w->kwords * sizeof *w->kacc);
		if (!err)
			keep_keys(L, w, n);
		return err;
	}
	memset(w->same, 0, w->cwords * sizeof *w->same);
	for (size_t i = 0; i < w->cwords; i++)
		chg[i] = UINT64_MAX;
	for (uint32_t k = 0; k < nd->nparents && !err; k++) {
		uint32_t e = nd->edges + k;
		uint64_t *ec = w->edge_chg + (size_t)e * w->cwords;
		/* a never-released crate is compared with every parent: each may be where it began */
		for (size_t i = 0; i < w->cwords; i++)
			w->want[i] = w->live[i] & ~(w->same[i] & ~w->never_set[i]);
		if (!set_any(w->want, w->cwords)) {
			for (size_t i = 0; i < w->cwords; i++)
				ec[i] = UINT64_MAX;
			continue;
		}
		uint32_t pn = w->edges[e].node;
		const struct node *pd = &w->nodes[pn];
		struct side theirs = {&pd->tree, GIT_FILEMODE_TREE};
		memset(w->changed, 0, w->cwords * sizeof *w->changed);
		memset(w->absent, 0, w->cwords * sizeof *w->absent);
		note_absent(w, 0, theirs);
		err = diff_dir(L, w, 0, -1, 1, 1, 0, mine, theirs);
		if (!err)
			err = inherited_changes(L, w, &nd->tree, &pd->tree);
		if (!err && set_any(w->absent, w->cwords)) {
			memset(w->tbits, 0, w->words * sizeof *w->tbits);
			for (size_t c = 0; c < w->ncrates; c++)
				if (bit_test(w->absent, c))
					bit_set(w->tbits, w->crate_bit[c]);
			give(L, w, pn, w->tbits, NULL, 0);
		}
		for (size_t i = 0; i < w->cwords; i++) {
			ec[i] = w->changed[i] | ~w->want[i];
			w->same[i] |= w->want[i] & ~w->changed[i];
			chg[i] &= ec[i];
		}
		for (size_t i = 0; i < w->kwords; i++)
			w->kacc[i] = k == 0 ? w->kchanged[i] : w->kacc[i] & w->kchanged[i];
	}
	if (!err)
		keep_keys(L, w, n);
	return err;
}

/* A read commit of from's history that is live: note its time, and find the
 * crates it changed while its trees and its parents' are fresh in the cache
 * (which also finds the parents that lack a never-released crate's directory). */
static int settle(lua_State *L, struct walk *w, uint32_t n)
{
	struct node *nd = &w->nodes[n];
	if (!(nd->flags & N_INTERESTING) || node_dead(w, n))
		return 0;
	if (nd->time < w->tmin)
		w->tmin = nd->time;
	if (!(nd->flags & N_DIFFED)) {
		int err = node_changes(L, w, n);
		if (err < 0)
			return err;
		w->nodes[n].flags |= N_DIFFED;
	}
	return 0;
}

/* Read commit N's parents and hand them its bits; then drain re-propagations. */
static int process(lua_State *L, struct walk *w, uint32_t n)
{
	w->live_queued -= (size_t)node_counts(w, n);
	w->nodes[n].flags = (uint8_t)((w->nodes[n].flags & ~N_QUEUED) | N_DONE);
	for (uint32_t k = 0; k < w->nodes[n].nparents; k++) {
		uint32_t e = w->nodes[n].edges + k, p;
		int err = node_get(L, w, &w->edges[e].id, &p);
		if (err < 0)
			return err;
		w->edges[e].node = p;
	}
	int err = settle(L, w, n);
	if (err < 0)
		return err;
	for (uint32_t k = 0; k < w->nodes[n].nparents; k++)
		pass_down(L, w, n, w->edges[w->nodes[n].edges + k].node);
	while (w->nstack > 0) {
		uint32_t m = w->stack[--w->nstack];
		err = settle(L, w, m);
		if (err < 0)
			return err;
		for (uint32_t k = 0; k < w->nodes[m].nparents; k++)
			pass_down(L, w, m, w->edges[w->nodes[m].edges + k].node);
	}
	return 0;
}

/*
 * The walk is over when no live commit of from's history is queued and every
 * queued commit is older than the oldest live one read: with times that
 * never decrease from parent to child, nothing queued can reach a live commit
 * read. Against clock skew (a child older than its parent) read SLOP more, as
 * git does; needless when no live commit was read at all.
 */
#define SLOP 5

static int walk_graph(lua_State *L, struct walk *w)
{
	int slop = SLOP;
	while (w->nheap > 0) {
		if (w->live_queued == 0 && w->nodes[w->heap[0]].time < w->tmin) {
			if (w->tmin == INT64_MAX || slop-- == 0)
				break;
		} else {
			slop = SLOP;
		}
		int err = process(L, w, heap_pop(w));
		if (err < 0)
			return err;
	}
	return 0;
}

/* ---- the list ---------------------------------------------------------- */

/* Resolve REV to a commit id; w->obj and w->peeled are scratch. Unknown,
 * malformed and non-commit revisions are all GIT_ENOTFOUND. */
static int resolve(struct walk *w, const char *rev, git_oid *out)
{
	int err = git_revparse_single(&w->obj, w->repo, rev);
	if (err == 0) {
		err = git_object_peel(&w->peeled, w->obj, GIT_OBJECT_COMMIT);
		if (err < 0)
			git_error_set(GIT_ERROR_OBJECT, "'%s' is a %s, not a commit", rev,
			              git_object_type2string(git_object_type(w->obj)));
	}
	if (err == 0)
		git_oid_cpy(out, git_object_id(w->peeled));
	git_object_free(w->peeled);
	git_object_free(w->obj);
	w->peeled = NULL;
	w->obj = NULL;
	return err < 0 ? GIT_ENOTFOUND : 0;
}

/* [-0, +1, m] {i...} for the crates in SET. */
static void push_crates(lua_State *L, const struct walk *w, const uint64_t *set)
{
	lua_newtable(L);
	lua_Integer k = 0;
	for (size_t i = 0; i < w->ncrates; i++)
		if (bit_test(set, i)) {
			lua_pushinteger(L, (lua_Integer)i + 1);
			lua_rawseti(L, -2, ++k);
		}
}

/* [-0, +0, m] record.inherited = { [i] = {key...} } for the crates in SET inheriting a changed key. */
static void set_inherited(lua_State *L, const struct walk *w, uint32_t n, const uint64_t *set)
{
	if (!w->nodes[n].keys)
		return;
	const uint64_t *changed = w->kpool + w->nodes[n].keys - 1;
	int made = 0;
	for (size_t c = 0; c < w->ncrates; c++) {
		const uint64_t *keys = w->specs[c].keys;
		if (!keys || !bit_test(set, c))
			continue;
		lua_Integer count = 0;
		for (size_t k = 0; k < w->nkeys; k++) {
			if (!bit_test(keys, k) || !bit_test(changed, k))
				continue;
			if (!made) {
				lua_newtable(L);
				made = 1;
			}
			if (count == 0) {
				lua_newtable(L);
				lua_pushvalue(L, -1);
				lua_rawseti(L, -3, (lua_Integer)c + 1);
			}
			lua_pushstring(L, w->keys[k]);
			lua_rawseti(L, -2, ++count);
		}
		if (count > 0)
			lua_pop(L, 1);
	}
	if (made)
		lua_setfield(L, -2, "inherited");
}

/*
 * The commit's encoding header as a C string in BUF (CAP bytes), or NULL when it
 * has none (or one too long to be an encoding's name: then the text is repaired as
 * UTF-8 with Latin-1 bytes, as with none).
 */
static const char *raw_encoding(const struct raw_commit *r, char *buf, size_t cap)
{
	size_t n = r->encoding ? (size_t)(r->encoding_end - r->encoding) : 0;
	if (n == 0 || n >= cap)
		return NULL;
	memcpy(buf, r->encoding, n);
	buf[n] = '\0';
	return buf;
}

/*
 * [-0, +(0|1), m] TEXT (LEN bytes) as UTF-8, as cdp_git_push_text makes it: pushed
 * and returned when it had to be decoded or repaired, else NULL with nothing pushed
 * (the bytes are already what Lua should get).
 */
static const char *push_decoded(lua_State *L, const char *text, size_t *len, const char *encoding)
{
	if (encoding == NULL && cdp_utf8_valid(text, *len))
		return NULL;
	size_t max = cdp_utf8_decoded_max(*len);
	luaL_Buffer b;
	char *out = luaL_buffinitsize(L, &b, max);
	luaL_pushresultsize(&b, cdp_utf8_decode(text, *len, encoding, out, max));
	return lua_tolstring(L, -1, len);
}

/* [-0, +0, m] The string at IDX (a name from the raw commit) made UTF-8 in place. */
static void decode_in_place(lua_State *L, int idx, const char *encoding)
{
	idx = lua_absindex(L, idx);
	size_t len;
	const char *s = lua_tolstring(L, idx, &len);
	if (push_decoded(L, s, &len, encoding))
		lua_replace(L, idx);
}

/* [-0, +1, m] The list entry for commit N counted for the crates in SET.
 * LOADER: the stack index of the message loader (messages = false), or 0. */
static int push_commit(lua_State *L, struct walk *w, uint32_t n, const uint64_t *set, int loader)
{
	struct raw_commit r;
	int err = raw_read(w, &w->nodes[n].id, &r);
	if (err < 0)
		return err;
	char hex[GIT_OID_HEXSZ + 1];
	lua_createtable(L, 0, 10);
	int t = lua_gettop(L);
	lua_pushstring(L, git_oid_tostr(hex, sizeof hex, &w->nodes[n].id));
	int id = lua_gettop(L);
	lua_pushvalue(L, id);
	lua_setfield(L, t, "id");
	size_t len;
	const char *msg = raw_message(&r, &len);
	char encbuf[64];
	const char *encoding = raw_encoding(&r, encbuf, sizeof encbuf);
	int message = 0;
	/* Text that is not UTF-8 (a Latin-1 commit with its header, or bytes without one)
	 * is decoded before it is parsed: Lua, and all cdp writes, get UTF-8. */
	const char *decoded = push_decoded(L, msg, &len, encoding);
	if (decoded) {
		message = lua_gettop(L);
		msg = decoded;
	}
	if (!loader) {
		if (!message) {
			lua_pushlstring(L, msg, len);
			message = lua_gettop(L);
			msg = lua_tostring(L, message); /* parsed spans point into this copy */
		}
		lua_pushvalue(L, message);
		lua_setfield(L, t, "message");
	}
	push_summary(L, w, msg, len);
	lua_setfield(L, t, "summary");
	if (w->parse) {
		if (cc_parse(&w->message, msg, len, 0) < 0)
			luaL_error(L, "not enough memory");
		cdp_commits_push(L, &w->message, message ? message : id, loader);
		lua_setfield(L, t, "parsed");
	}
	push_author(L, &r);
	decode_in_place(L, -1, encoding);
	decode_in_place(L, -2, encoding);
	lua_setfield(L, t, "email");
	lua_setfield(L, t, "author");
	lua_pushinteger(L, (lua_Integer)w->nodes[n].time);
	lua_setfield(L, t, "time");
	lua_createtable(L, (int)r.nparents, 0);
	for (size_t k = 0; k < r.nparents; k++) {
		lua_pushlstring(L, r.parents + k * (8 + GIT_OID_HEXSZ) + 7, GIT_OID_HEXSZ);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, t, "parents");
	git_odb_object_free(w->raw);
	w->raw = NULL;
	lua_settop(L, t);
	push_crates(L, w, set);
	lua_setfield(L, t, "paths");
	set_inherited(L, w, n, set);
	if (w->nmarks) {
		const uint64_t *m = w->mbits + (size_t)n * w->mwords;
		lua_newtable(L);
		lua_Integer k = 0;
		for (size_t i = 0; i < w->nmarks; i++)
			if (bit_test(m, i)) {
				lua_pushinteger(L, (lua_Integer)i + 1);
				lua_rawseti(L, -2, ++k);
			}
		lua_setfield(L, t, "marks");
	}
	return 0;
}

/* ---- messages on demand ------------------------------------------------ */

/*
 * With messages = false a record carries no message, and its parsed table
 * reads the message again only when body or footers are asked for, through
 * this source: the repository's path, opened on the first such read. A large
 * history's messages (10 MB of them in bevy's) then never sit in Lua.
 */
#define SOURCE_MT "cdp.git.MessageSource"

struct source {
	char *path;
	git_repository *repo;
	git_odb *odb;
	git_odb_object *raw;
};

static int source_close(lua_State *L)
{
	struct source *src = luaL_checkudata(L, 1, SOURCE_MT);
	git_odb_object_free(src->raw);
	git_odb_free(src->odb);
	git_repository_free(src->repo);
	free(src->path);
	memset(src, 0, sizeof *src);
	return 0;
}

/* loader(id) -> the message of commit ID (upvalue 1: the source) */
static int source_load(lua_State *L)
{
	struct source *src = luaL_checkudata(L, lua_upvalueindex(1), SOURCE_MT);
	git_oid id;
	size_t n;
	const char *hex = luaL_checklstring(L, 1, &n);
	if (n != GIT_OID_HEXSZ || git_oid_fromstrn(&id, hex, n) < 0)
		return luaL_error(L, "not a commit id: %s", hex);
	int err = 0;
	if (!src->repo && (err = git_repository_open(&src->repo, src->path)) == 0)
		err = git_repository_odb(&src->odb, src->repo);
	struct raw_commit r;
	if (!err)
		err = raw_read_from(src->odb, &src->raw, &id, &r);
	if (err < 0) {
		const git_error *e = git_error_last();
		return luaL_error(L, "cannot read the message of %s in %s: %s", hex, src->path,
		                  e && e->message ? e->message : "libgit2 error");
	}
	size_t len;
	const char *msg = raw_message(&r, &len);
	char encbuf[64];
	if (!push_decoded(L, msg, &len, raw_encoding(&r, encbuf, sizeof encbuf)))
		lua_pushlstring(L, msg, len);
	git_odb_object_free(src->raw);
	src->raw = NULL;
	return 1;
}

/* [-0, +1, m] The loader for this repository's messages. */
static void push_loader(lua_State *L, git_repository *repo)
{
	struct source *src = lua_newuserdatauv(L, sizeof *src, 0);
	memset(src, 0, sizeof *src);
	if (luaL_newmetatable(L, SOURCE_MT)) {
		lua_pushcfunction(L, source_close);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	const char *path = git_repository_path(repo);
	src->path = malloc(strlen(path) + 1);
	if (!src->path)
		luaL_error(L, "not enough memory");
	strcpy(src->path, path);
	lua_pushcclosure(L, source_load, 1);
}

/* Into OUT, the crates whose release is commit N: a merge the same as its
 * parent N for such a crate brought it nothing from its other parents, as
 * `git log TAG..HEAD -- DIR` sees it (TAG is the walk's bottom, so a
 * parent that counts). */
static void relevant_releases(const struct walk *w, uint32_t n, uint64_t *out)
{
	for (size_t c = 0; c < w->ncrates; c++)
		if (!w->never[c] && w->release_node[w->crate_bit[c]] == n)
			bit_set(out, c);
}

static int listed(const struct node *nd)
{
	return (nd->flags & (N_DONE | N_INTERESTING)) == (N_DONE | N_INTERESTING);
}

/*
 * [-0, +1, m] The list: read commits of from's history in topological order
 * (newest first among those ready). Each crate reaches commits from `from`
 * along the parents history simplification leaves it (a merge the same as
 * one parent the crate's release does not reach, or as the release itself,
 * hands the crate to that parent only); a commit is listed when it changed a
 * crate that reaches it and is live there.
 */
static int push_list(lua_State *L, struct walk *w, int loader)
{
	lua_newtable(L);
	lua_Integer count = 0;
	uint64_t *reach = zalloc(L, w->nnodes * w->cwords, sizeof *reach);
	for (uint32_t n = 0; n < w->nnodes; n++) {
		const struct node *nd = &w->nodes[n];
		if (!listed(nd))
			continue;
		for (uint32_t k = 0; k < nd->nparents; k++)
			w->nodes[w->edges[nd->edges + k].node].indeg++;
	}
	if (w->nnodes > 0)
		for (size_t c = 0; c < w->ncrates; c++)
			bit_set(reach + (size_t)w->from_node * w->cwords, c);
	w->nheap = 0;
	for (uint32_t n = 0; n < w->nnodes; n++)
		if (listed(&w->nodes[n]) && w->nodes[n].indeg == 0)
			heap_push(L, w, n);
	int err = 0;
	while (!err && w->nheap > 0) {
		uint32_t n = heap_pop(w);
		struct node *nd = &w->nodes[n];
		for (uint32_t k = 0; k < nd->nparents; k++) {
			uint32_t p = w->edges[nd->edges + k].node;
			if (listed(&w->nodes[p]) && --w->nodes[p].indeg == 0)
				heap_push(L, w, p);
		}
		if (node_dead(w, n))
			continue;
		live_set(w, n, w->live);
		uint64_t *r = reach + (size_t)n * w->cwords;
		int any = 0;
		for (size_t i = 0; i < w->cwords; i++) {
			r[i] &= w->live[i];
			any |= r[i] != 0;
		}
		if (!any)
			continue;
		/* Live now means settled, and so diffed, while live; but be sure. */
		if (!(nd->flags & N_DIFFED)) {
			err = node_changes(L, w, n);
			nd->flags |= N_DIFFED;
		}
		const uint64_t *chg = w->chg + (size_t)n * w->cwords;
		any = 0;
		for (size_t i = 0; i < w->cwords; i++) {
			w->acc[i] = chg[i] & r[i];
			any |= w->acc[i] != 0;
		}
		if (!err && any) {
			err = push_commit(L, w, n, w->acc, loader);
			if (!err)
				lua_rawseti(L, -2, ++count);
		}
		/* Hand the crates on: to the first parent the same as this commit and
		 * live for the crate, or that is the crate's release itself (git's
		 * "relevant" parents: not excluded, or the range's bottom), else to
		 * every parent. */
		memcpy(w->tmp, r, w->cwords * sizeof *w->tmp);
		for (uint32_t k = 0; k < nd->nparents && nd->nparents > 1; k++) {
			uint32_t e = nd->edges + k, p = w->edges[e].node;
			const uint64_t *ec = w->edge_chg + (size_t)e * w->cwords;
			live_set(w, p, w->want);
			relevant_releases(w, p, w->want);
			uint64_t *pr = reach + (size_t)p * w->cwords;
			for (size_t i = 0; i < w->cwords; i++) {
				uint64_t sel = w->tmp[i] & ~ec[i] & w->want[i];
				pr[i] |= sel;
				w->tmp[i] &= ~sel;
			}
		}
		for (uint32_t k = 0; k < nd->nparents; k++) {
			uint64_t *pr = reach + (size_t)w->edges[nd->edges + k].node * w->cwords;
			for (size_t i = 0; i < w->cwords; i++)
				pr[i] |= w->tmp[i];
		}
	}
	free(reach);
	return err;
}

/* ---- options ----------------------------------------------------------- */

/* Patterns of files[i].KEY into SET; raises on a wrong type. */
static void read_patterns(lua_State *L, int spec, const char *key, struct glob_set *set, size_t i)
{
	int t = lua_getfield(L, spec, key);
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (t != LUA_TTABLE)
		luaL_argerror(L, 2, lua_pushfstring(L, "files[%d].%s: list of patterns expected", (int)i + 1, key));
	lua_Integer n = luaL_len(L, -1);
	for (lua_Integer k = 1; k <= n; k++) {
		size_t len;
		if (lua_geti(L, -1, k) != LUA_TSTRING)
			luaL_argerror(L, 2, lua_pushfstring(L, "files[%d].%s[%d]: string expected", (int)i + 1, key, (int)k));
		const char *p = lua_tolstring(L, -1, &len);
		if (glob_set_add(set, p, len) < 0)
			luaL_error(L, "not enough memory");
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* files[i]: include, exclude and extra files of crate I. */
static void read_files(lua_State *L, struct walk *w, int files, size_t i)
{
	int t = files ? lua_geti(L, files, (lua_Integer)i + 1) : LUA_TNIL;
	if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
		lua_pop(L, files ? 1 : 0);
		return;
	}
	if (t != LUA_TTABLE)
		luaL_argerror(L, 2, lua_pushfstring(L, "files[%d]: table or false expected", (int)i + 1));
	int spec = lua_gettop(L);
	read_patterns(L, spec, "include", &w->specs[i].include, i);
	read_patterns(L, spec, "exclude", &w->specs[i].exclude, i);
	w->specs[i].has_include = w->specs[i].include.n > 0;
	if (lua_getfield(L, spec, "extra") == LUA_TTABLE) {
		lua_Integer n = luaL_len(L, -1);
		for (lua_Integer k = 1; k <= n; k++) {
			if (lua_geti(L, -1, k) != LUA_TSTRING)
				luaL_argerror(L, 2, lua_pushfstring(L, "files[%d].extra[%d]: path expected", (int)i + 1, (int)k));
			char *p = path_normalise(L, lua_tostring(L, -1));
			if (!p || !*p) {
				free(p);
				luaL_argerror(L, 2, lua_pushfstring(L, "files[%d].extra[%d]: bad path '%s'", (int)i + 1,
				                                    (int)k, lua_tostring(L, -1)));
			}
			/* anchored on the stack until the trie is built: kept in a string */
			lua_pushstring(L, p);
			free(p);
			lua_replace(L, -2);
			lua_rawseti(L, -2, k);
		}
	} else if (!lua_isnil(L, -1)) {
		luaL_argerror(L, 2, lua_pushfstring(L, "files[%d].extra: list of paths expected", (int)i + 1));
	}
	lua_pop(L, 2);
}

/* The distinct keys of inherits[...] into w->keys, and each crate's set. */
static void read_inherits(lua_State *L, struct walk *w, int inherits)
{
	lua_newtable(L); /* key -> index */
	int index = lua_gettop(L);
	for (size_t i = 0; i < w->ncrates && inherits; i++) {
		int t = lua_geti(L, inherits, (lua_Integer)i + 1);
		if (t == LUA_TTABLE) {
			lua_Integer n = luaL_len(L, -1);
			for (lua_Integer k = 1; k <= n; k++) {
				if (lua_geti(L, -1, k) != LUA_TSTRING || !strchr(lua_tostring(L, -1), '.'))
					luaL_argerror(L, 2, lua_pushfstring(L, "inherits[%d][%d]: key like 'dependencies.NAME' expected",
					                                    (int)i + 1, (int)k));
				lua_pushvalue(L, -1);
				if (lua_rawget(L, index) == LUA_TNIL) {
					lua_pushvalue(L, -2);
					lua_pushinteger(L, (lua_Integer)w->nkeys++);
					lua_rawset(L, index);
				}
				lua_pop(L, 2);
			}
		} else if (t != LUA_TNIL && !(t == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
			luaL_argerror(L, 2, lua_pushfstring(L, "inherits[%d]: list of keys or false expected", (int)i + 1));
		}
		lua_pop(L, 1);
	}
	w->kwords = (w->nkeys + 63) / 64;
	w->keys = zalloc(L, w->nkeys, sizeof *w->keys);
	w->kchanged = zalloc(L, w->kwords, sizeof(uint64_t));
	w->kacc = zalloc(L, w->kwords, sizeof(uint64_t));
	lua_pushnil(L);
	while (lua_next(L, index)) {
		size_t len;
		const char *k = lua_tolstring(L, -2, &len);
		w->keys[lua_tointeger(L, -1)] = dupstr(L, k, len);
		lua_pop(L, 1);
	}
	for (size_t i = 0; i < w->ncrates && inherits && w->nkeys; i++) {
		if (lua_geti(L, inherits, (lua_Integer)i + 1) == LUA_TTABLE) {
			w->specs[i].keys = zalloc(L, w->kwords, sizeof(uint64_t));
			lua_Integer n = luaL_len(L, -1);
			for (lua_Integer k = 1; k <= n; k++) {
				lua_geti(L, -1, k);
				lua_rawget(L, index);
				bit_set(w->specs[i].keys, (size_t)lua_tointeger(L, -1));
				lua_pop(L, 1);
			}
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

static void read_manifest(lua_State *L, struct walk *w)
{
	int t = lua_getfield(L, 2, "manifest");
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (t != LUA_TSTRING)
		luaL_argerror(L, 2, "manifest: path of the root Cargo.toml expected");
	char *p = path_normalise(L, lua_tostring(L, -1));
	if (!p || !*p) {
		free(p);
		luaL_argerror(L, 2, lua_pushfstring(L, "manifest: bad path '%s'", lua_tostring(L, -1)));
	}
	lua_pushstring(L, p);
	free(p);
	const char *s = lua_tostring(L, -1);
	size_t n = 1;
	for (const char *c = s; *c; c++)
		n += *c == '/';
	w->manifest = zalloc(L, n, sizeof *w->manifest);
	for (const char *c = s; *c;) {
		const char *end = strchr(c, '/');
		size_t len = end ? (size_t)(end - c) : strlen(c);
		w->manifest[w->nmanifest++] = dupstr(L, c, len);
		c += len + (end ? 1 : 0);
	}
	lua_pop(L, 2);
}

/* Read opts (raising on misuse) into W; leaves the from rev on the stack top.
 * Stack: 4 paths, 5 since, 6 files, 7 inherits, 8 marks, 9 from. */
static const char *read_opts(lua_State *L, struct walk *w)
{
	if (lua_getfield(L, 2, "first_parent") != LUA_TNIL) {
		luaL_argexpected(L, lua_isboolean(L, -1), 2, "first_parent: boolean");
		w->first_parent = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, 2, "parse") != LUA_TNIL) {
		luaL_argexpected(L, lua_isboolean(L, -1), 2, "parse: boolean");
		w->parse = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	w->messages = 1;
	if (lua_getfield(L, 2, "messages") != LUA_TNIL) {
		luaL_argexpected(L, lua_isboolean(L, -1), 2, "messages: boolean");
		w->messages = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);

	if (lua_getfield(L, 2, "paths") != LUA_TTABLE)
		luaL_argerror(L, 2, "paths: table of crate directories expected");
	int paths = lua_gettop(L);
	if (lua_getfield(L, 2, "since") != LUA_TTABLE && !lua_isnil(L, -1))
		luaL_argerror(L, 2, "since: table expected");
	int since = lua_gettop(L);
	/* each getfield leaves its slot, nil or not: 6 files, 7 inherits, 8 marks */
	int files = lua_getfield(L, 2, "files") == LUA_TNIL ? 0 : lua_gettop(L);
	if (files && !lua_istable(L, files))
		luaL_argerror(L, 2, "files: table expected");
	int inherits = lua_getfield(L, 2, "inherits") == LUA_TNIL ? 0 : lua_gettop(L);
	if (inherits && !lua_istable(L, inherits))
		luaL_argerror(L, 2, "inherits: table expected");
	int marks = lua_getfield(L, 2, "marks");
	if (marks != LUA_TNIL && marks != LUA_TTABLE)
		luaL_argerror(L, 2, "marks: table of commit ids expected");

	w->ncrates = (size_t)luaL_len(L, paths);
	w->cwords = (w->ncrates + 63) / 64;
	if (w->cwords == 0)
		w->cwords = 1;
	w->paths = zalloc(L, w->ncrates, sizeof *w->paths);
	w->specs = zalloc(L, w->ncrates, sizeof *w->specs);
	w->crate_bit = zalloc(L, w->ncrates, sizeof *w->crate_bit);
	w->crate_next = zalloc(L, w->ncrates, sizeof *w->crate_next);
	w->never = zalloc(L, w->ncrates, sizeof *w->never);
	w->crate_trie = zalloc(L, w->ncrates, sizeof *w->crate_trie);
	w->changed = zalloc(L, w->cwords, sizeof(uint64_t));
	w->acc = zalloc(L, w->cwords, sizeof(uint64_t));
	w->live = zalloc(L, w->cwords, sizeof(uint64_t));
	w->want = zalloc(L, w->cwords, sizeof(uint64_t));
	w->same = zalloc(L, w->cwords, sizeof(uint64_t));
	w->tmp = zalloc(L, w->cwords, sizeof(uint64_t));
	w->never_set = zalloc(L, w->cwords, sizeof(uint64_t));
	w->absent = zalloc(L, w->cwords, sizeof(uint64_t));
	size_t longest = 0;
	for (size_t i = 0; i < w->ncrates; i++) {
		if (lua_geti(L, paths, (lua_Integer)i + 1) != LUA_TSTRING)
			luaL_argerror(L, 2, lua_pushfstring(L, "paths[%d]: string expected, got %s",
			                                    (int)i + 1, luaL_typename(L, -1)));
		w->paths[i] = path_normalise(L, lua_tostring(L, -1));
		if (!w->paths[i])
			luaL_argerror(L, 2, lua_pushfstring(L, "paths[%d]: bad crate directory '%s'",
			                                    (int)i + 1, lua_tostring(L, -1)));
		lua_pop(L, 1);
		size_t len = strlen(w->paths[i]);
		longest = len > longest ? len : longest;
		if (!lua_isnil(L, since)) {
			int t = lua_geti(L, since, (lua_Integer)i + 1);
			if (t != LUA_TSTRING && t != LUA_TNIL && !(t == LUA_TBOOLEAN && !lua_toboolean(L, -1)))
				luaL_argerror(L, 2, lua_pushfstring(L, "since[%d]: commit id or false expected, got %s",
				                                    (int)i + 1, luaL_typename(L, -1)));
			lua_pop(L, 1);
		}
		read_files(L, w, files, i);
	}
	w->dirbuf = zalloc(L, longest + 1, 1);
	read_inherits(L, w, inherits);
	read_manifest(L, w);

	int t = lua_getfield(L, 2, "from");
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		lua_pushliteral(L, "HEAD");
	} else if (t != LUA_TSTRING) {
		luaL_argerror(L, 2, "from: string expected");
	}
	return lua_tostring(L, 9);
}

/* The bits: one per distinct release commit, then one per never-released crate. */
static int read_since(lua_State *L, struct walk *w, int since)
{
	w->release = zalloc(L, w->ncrates, sizeof *w->release);
	w->release_node = zalloc(L, w->ncrates, sizeof *w->release_node);
	size_t nrel = 0;
	for (size_t i = 0; i < w->ncrates; i++) {
		if (lua_isnil(L, since) || lua_geti(L, since, (lua_Integer)i + 1) != LUA_TSTRING) {
			if (!lua_isnil(L, since))
				lua_pop(L, 1);
			w->never[i] = 1;
			continue;
		}
		git_oid id;
		if (resolve(w, lua_tostring(L, -1), &id) < 0)
			return cdp_git_push_error(L, GIT_ENOTFOUND,
			                          lua_pushfstring(L, "crate '%s': since '%s'", w->paths[i],
			                                          lua_tostring(L, -1)));
		lua_pop(L, 1);
		size_t b = 0;
		while (b < nrel && !git_oid_equal(&w->release[b], &id))
			b++;
		if (b == nrel)
			git_oid_cpy(&w->release[nrel++], &id);
		w->crate_bit[i] = (uint32_t)b;
	}
	w->nbits = nrel;
	for (size_t i = 0; i < w->ncrates; i++)
		if (w->never[i]) {
			w->crate_bit[i] = (uint32_t)w->nbits++;
			bit_set(w->never_set, i);
		}
	w->words = w->nbits ? (w->nbits + 63) / 64 : 1;
	w->tbits = zalloc(L, w->words, sizeof(uint64_t));
	return 0;
}

static int read_marks(lua_State *L, struct walk *w, int marks)
{
	if (!lua_istable(L, marks))
		return 0;
	w->nmarks = (size_t)luaL_len(L, marks);
	w->mwords = w->nmarks ? (w->nmarks + 63) / 64 : 0;
	w->mark = zalloc(L, w->nmarks, sizeof *w->mark);
	for (size_t i = 0; i < w->nmarks; i++) {
		if (lua_geti(L, marks, (lua_Integer)i + 1) != LUA_TSTRING)
			luaL_argerror(L, 2, lua_pushfstring(L, "marks[%d]: commit id expected", (int)i + 1));
		if (resolve(w, lua_tostring(L, -1), &w->mark[i]) < 0)
			return cdp_git_push_error(L, GIT_ENOTFOUND, lua_pushfstring(L, "mark '%s'", lua_tostring(L, -1)));
		lua_pop(L, 1);
	}
	return 0;
}

/* [-0, +1, m] The stats table. */
static void push_stats(lua_State *L, struct walk *w, size_t nrel)
{
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, (lua_Integer)w->walked);
	lua_setfield(L, -2, "walked");
	lua_pushinteger(L, (lua_Integer)w->trees);
	lua_setfield(L, -2, "trees");
	lua_pushinteger(L, (lua_Integer)w->blobs);
	lua_setfield(L, -2, "blobs");
	lua_newtable(L);
	char hex[GIT_OID_HEXSZ + 1];
	for (size_t b = 0; b < nrel && w->nnodes > 0; b++)
		if (w->nodes[w->release_node[b]].flags & N_INTERESTING) {
			lua_pushstring(L, git_oid_tostr(hex, sizeof hex, &w->release[b]));
			lua_pushboolean(L, 1);
			lua_rawset(L, -3);
		}
	lua_setfield(L, -2, "reachable");
}

int cdp_git_changes(lua_State *L)
{
	struct cdp_repository *handle = cdp_git_check_handle(L, 1);
	git_repository *repo = handle->repo;
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	struct walk *w = cdp_git_box(L, sizeof *w, walk_free); /* 3 */
	w->repo = repo;
	w->handle = handle;
	w->tmin = INT64_MAX;
	const char *from = read_opts(L, w); /* 4 paths, 5 since, 6 files, 7 inherits, 8 marks, 9 from */

	git_oid from_id;
	if (resolve(w, from, &from_id) < 0)
		return cdp_git_push_error(L, GIT_ENOTFOUND, lua_pushfstring(L, "from '%s'", from));
	int rc = read_since(L, w, 5);
	if (rc)
		return rc;
	if ((rc = read_marks(L, w, 8)))
		return rc;
	size_t nrel = w->nbits;
	for (size_t i = 0; i < w->ncrates; i++)
		nrel -= w->never[i];

	int err = git_repository_odb(&w->odb, repo);
	if (!err && w->ncrates > 0) {
		walk_settings(w);
		trie_add(L, w, "", 0);
		for (size_t i = 0; i < w->ncrates; i++)
			trie_insert(L, w, i);
		if (lua_istable(L, 6))
			for (size_t i = 0; i < w->ncrates; i++) {
				if (lua_geti(L, 6, (lua_Integer)i + 1) == LUA_TTABLE && lua_getfield(L, -1, "extra") == LUA_TTABLE) {
					lua_Integer n = luaL_len(L, -1);
					for (lua_Integer k = 1; k <= n; k++) {
						lua_geti(L, -1, k);
						trie_watch(L, w, i, lua_tostring(L, -1));
						lua_pop(L, 1);
					}
				}
				lua_settop(L, 9);
			}
		w->below = zalloc(L, w->ntrie * w->cwords, sizeof *w->below);
		w->below_dirs = zalloc(L, w->ntrie * w->cwords, sizeof *w->below_dirs);
		trie_below(w, 0);
		uint32_t n;
		err = node_get(L, w, &from_id, &n);
		if (!err) {
			w->nodes[n].flags |= N_INTERESTING;
			w->from_node = n;
		}
		/* A never-released crate missing at `from` has nothing; below it, the
		 * diffs find where each one's directory begins. */
		for (size_t c = 0; c < w->ncrates && !err; c++) {
			int present = 1;
			if (w->never[c])
				err = has_dir(w, &w->nodes[n].tree, c, &present);
			if (!err && !present)
				bit_set(node_bits(w, n), w->crate_bit[c]);
		}
		for (size_t b = 0; b < nrel && !err; b++) {
			uint32_t r;
			err = node_get(L, w, &w->release[b], &r);
			if (!err) {
				bit_set(node_bits(w, r), b);
				w->release_node[b] = r;
			}
		}
		for (size_t m = 0; m < w->nmarks && !err; m++) {
			uint32_t r;
			err = node_get(L, w, &w->mark[m], &r);
			if (!err)
				bit_set(w->mbits + (size_t)r * w->mwords, m);
		}
		if (!err) {
			w->live_queued = (size_t)node_counts(w, n);
			err = walk_graph(L, w);
		}
	}
	/* What the list needs is in the nodes: the trees read go before it is built. */
	for (size_t i = 0; i < TREE_CACHE; i++) {
		git_odb_object_free(w->tcache[i]);
		w->tcache[i] = NULL;
	}
	free(w->heap);
	w->heap = NULL;
	w->heap_cap = w->nheap = 0;
	int loader = 0;
	if (!w->messages && w->parse) {
		push_loader(L, repo);
		loader = lua_gettop(L);
	}
	if (!err)
		err = push_list(L, w, loader);
	if (err < 0)
		return cdp_git_push_error(L, err, "changes");
	push_stats(L, w, nrel);
	return 2;
}
/* ---- reachability ------------------------------------------------------ */

/*
 * Repository:reachable(from, oids) -> { [oid] = true } for each of OIDS
 * (commit ids) that is FROM or one of its ancestors; | nil, message, code.
 *
 * One walk from FROM, newest first, for all of them: it stops when every oid
 * is found, or when SLOP commits in a row are older than the oldest one still
 * sought (with committer times that never decrease from parent to child,
 * nothing older can lead to it; SLOP is for clock skew, as git's). An oid
 * that is not a commit in the repository is not reachable. Deciding tags this
 * way replaces a merge-base search per tag.
 */
struct sought {
	git_oid id;
	int64_t time;
	int found; /* 1 found, 0 sought, -1 not a commit or given twice */
};

struct sought_key {
	git_oid id;
	uint32_t at; /* in the list sorted by time */
};

static int sought_time_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct sought *)a)->time, y = ((const struct sought *)b)->time;
	return (x > y) - (x < y);
}

static int sought_key_cmp(const void *a, const void *b)
{
	return git_oid_cmp(&((const struct sought_key *)a)->id, &((const struct sought_key *)b)->id);
}

int cdp_git_reachable(lua_State *L)
{
	struct cdp_repository *handle = cdp_git_check_handle(L, 1);
	git_repository *repo = handle->repo;
	const char *from = luaL_checkstring(L, 2);
	luaL_checktype(L, 3, LUA_TTABLE);
	lua_settop(L, 3);
	size_t n = (size_t)luaL_len(L, 3);
	/* GC-managed, anchored on the stack: nothing here needs freeing by hand. */
	struct sought *want = lua_newuserdatauv(L, (n ? n : 1) * sizeof *want, 0);   /* 4 */
	struct sought_key *keys = lua_newuserdatauv(L, (n ? n : 1) * sizeof *keys, 0); /* 5 */
	for (size_t i = 0; i < n; i++) {
		size_t len;
		if (lua_geti(L, 3, (lua_Integer)i + 1) != LUA_TSTRING)
			luaL_argerror(L, 3, lua_pushfstring(L, "oids[%d]: string expected", (int)i + 1));
		const char *hex = lua_tolstring(L, -1, &len);
		if (len != GIT_OID_HEXSZ || git_oid_fromstrn(&want[i].id, hex, len) != 0)
			luaL_argerror(L, 3, lua_pushfstring(L, "oids[%d]: 40-character hex commit id expected", (int)i + 1));
		lua_pop(L, 1);
	}
	struct walk *w = cdp_git_box(L, sizeof *w, walk_free); /* 6 */
	w->repo = repo;
	w->handle = handle;
	w->words = w->cwords = 1;
	git_oid from_id;
	if (resolve(w, from, &from_id) < 0)
		return cdp_git_push_error(L, GIT_ENOTFOUND, lua_pushfstring(L, "from '%s'", from));
	int err = git_repository_odb(&w->odb, repo);
	if (err < 0)
		return cdp_git_push_error(L, err, "reachable");
	walk_settings(w);

	/* The time of each sought commit bounds the walk; what is not a commit is never found. */
	for (size_t i = 0; i < n; i++) {
		const struct gcommit *gc;
		want[i].found = 0;
		want[i].time = INT64_MIN;
		if (graph_commit(L, w, &want[i].id, &gc) < 0) {
			git_error_clear();
			want[i].found = -1;
			continue;
		}
		want[i].time = gc->time;
	}
	qsort(want, n, sizeof *want, sought_time_cmp);
	for (size_t i = 0; i < n; i++) {
		git_oid_cpy(&keys[i].id, &want[i].id);
		keys[i].at = (uint32_t)i;
	}
	qsort(keys, n, sizeof *keys, sought_key_cmp);
	size_t left = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && git_oid_equal(&keys[i].id, &keys[i - 1].id)) {
			/* given twice: one entry is sought, and every key leads to it */
			want[keys[i].at].found = -1;
			keys[i].at = keys[i - 1].at;
			continue;
		}
		left += want[keys[i].at].found == 0;
	}
	size_t oldest = 0; /* the oldest still sought, in WANT */
	uint32_t start;
	err = left ? node_get(L, w, &from_id, &start) : 0;
	int slop = SLOP;
	while (!err && left > 0 && w->nheap > 0) {
		uint32_t c = heap_pop(w);
		struct sought_key key, *hit;
		git_oid_cpy(&key.id, &w->nodes[c].id);
		hit = bsearch(&key, keys, n, sizeof *keys, sought_key_cmp);
		if (hit && want[hit->at].found == 0) {
			want[hit->at].found = 1;
			left--;
		}
		while (oldest < n && want[oldest].found != 0)
			oldest++;
		if (oldest < n && w->nodes[c].time < want[oldest].time) {
			if (slop-- == 0)
				break;
		} else {
			slop = SLOP;
		}
		for (uint32_t k = 0; k < w->nodes[c].nparents && !err; k++) {
			uint32_t p;
			err = node_get(L, w, &w->edges[w->nodes[c].edges + k].id, &p);
		}
	}
	if (err < 0)
		return cdp_git_push_error(L, err, "reachable");
	lua_createtable(L, 0, (int)n);
	char hex[GIT_OID_HEXSZ + 1];
	for (size_t i = 0; i < n; i++)
		if (want[i].found == 1) {
			lua_pushstring(L, git_oid_tostr(hex, sizeof hex, &want[i].id));
			lua_pushboolean(L, 1);
			lua_rawset(L, -3);
		}
	return 1;
}
