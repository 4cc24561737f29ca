/*
 * Repository:changes{from=, paths=, since=, first_parent=} — the change set
 * of every crate of a workspace, found in one walk of the commit graph.
 *
 *   local list, stats = repo:changes{
 *     from = "HEAD", paths = { "crates/a", "" }, since = { oid, false },
 *     first_parent = false }
 *   list:  commits newest first, in topological order, each
 *          { id, summary, message, author, email, time, parents = {oid...},
 *            paths = {i...} } (indexes into paths, ascending); time is the
 *          committer time, message the full message.
 *   stats: { walked = commits read from the object database, trees = tree
 *          objects read } — the cost of the call, for tests and benchmarks.
 *
 * What counts. Commit C belongs to crate i when C is reachable from `from`
 * but not from since[i], and C changed the crate's directory: its tree oid
 * differs from the parent's (appearing or disappearing counts). Trees are
 * compared by oid only; no blob is read and no diff is made. Crates nest
 * (everything nests in the root crate ""): a difference at or below a
 * crate's directory belongs to that crate alone, never to an enclosing one.
 *
 * Merges. A merge counts for a crate only when the crate differs from EVERY
 * parent: the merge made a change of its own (an evil merge, a conflict
 * resolution) or joined changes to the crate from both sides. A merge that
 * takes the crate from one side adds nothing: that side's own commits are in
 * the walk and are attributed one by one. This is the choice git log's
 * history simplification makes for `git log -- DIR`. With first_parent only
 * first parents are followed and compared (so a merge carries its whole
 * branch), and reachability from since[i] is along first parents too.
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
 * clock skew it reads a few more, as git does.
 * Tree comparisons run once per kept commit over a trie of the crate paths,
 * descending only into entries whose oid differs from the parent's; trees
 * come from a small cache shared by all crates, so a commit and its parent
 * share their lookups.
 *
 * Errors. A bad `from` or since[i] gives nil, message, "ENOTFOUND" (naming
 * the rev, and the crate); other libgit2 failures come through
 * cdp_git_push_error. Wrong argument types raise. Everything allocated lives
 * in a Scratch box closed on return or on error, so raising never leaks.
 */
#include "l_git.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SCRATCH_MT "cdp.git.changes.Scratch"
#define TREE_CACHE 256 /* direct-mapped; a power of two */

enum {
	N_INTERESTING = 1, /* reachable from `from` */
	N_QUEUED = 2,      /* waiting in the heap */
	N_DONE = 4,        /* read, parents known */
	N_CHECKED = 8,     /* presence of never-released crates checked */
	N_DIFFED = 16,     /* crates it changed are in walk.chg */
};

struct trie {
	char *name;     /* path component; "" for the root */
	uint32_t *kids; /* child trie nodes, sorted by name */
	uint32_t nkids;
	int32_t crate; /* first crate at this directory, or -1 */
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
	uint8_t flags;
};

struct walk {
	git_repository *repo;
	int first_parent;

	size_t ncrates, cwords; /* crates, and words of a crate set */
	char **paths;           /* normalised crate paths */
	uint32_t *crate_bit;    /* crate -> bit */
	int32_t *crate_next;    /* next crate at the same directory */
	uint8_t *never;         /* crate never released */
	uint32_t *crate_trie;   /* crate -> trie node */
	char *pathbuf;

	struct trie *trie;
	size_t ntrie, trie_cap;

	size_t nbits, words; /* bits (releases + never-released crates) */

	struct node *nodes;
	uint64_t *bits; /* nodes x words */
	uint64_t *chg;  /* nodes x cwords: crates each commit changed */
	size_t nnodes, nodes_cap;
	struct edge *edges;
	size_t nedges, edges_cap;
	uint32_t *slots; /* oid -> node + 1 */
	size_t slots_cap;
	uint32_t *heap;
	size_t nheap, heap_cap;
	uint32_t *stack; /* pending re-propagations */
	size_t nstack, stack_cap;
	size_t live_queued; /* queued, interesting, not dead */
	int64_t tmin;       /* oldest live interesting commit read */

	git_tree *tcache[TREE_CACHE];
	size_t walked, trees;

	git_oid *release;               /* distinct release commits */
	uint64_t *changed, *acc, *live; /* crate sets */
	git_commit *commit;             /* held while reading one commit */
	git_object *obj;
	git_object *peeled;
};

static void walk_free(struct walk *w)
{
	if (w->paths)
		for (size_t i = 0; i < w->ncrates; i++)
			free(w->paths[i]);
	free(w->paths);
	free(w->crate_bit);
	free(w->crate_next);
	free(w->never);
	free(w->crate_trie);
	free(w->pathbuf);
	for (size_t i = 0; i < w->ntrie; i++) {
		free(w->trie[i].name);
		free(w->trie[i].kids);
	}
	free(w->trie);
	free(w->nodes);
	free(w->bits);
	free(w->chg);
	free(w->edges);
	free(w->slots);
	free(w->heap);
	free(w->stack);
	for (size_t i = 0; i < TREE_CACHE; i++)
		git_tree_free(w->tcache[i]);
	free(w->changed);
	free(w->acc);
	free(w->live);
	free(w->release);
	git_commit_free(w->commit);
	git_object_free(w->obj);
	git_object_free(w->peeled);
	memset(w, 0, sizeof *w);
}

/* __gc, __close: safe twice. */
static int scratch_close(lua_State *L)
{
	struct walk **box = luaL_checkudata(L, 1, SCRATCH_MT);
	if (*box) {
		walk_free(*box);
		free(*box);
		*box = NULL;
	}
	return 0;
}

/* [-0, +1, m] A to-be-closed box owning a zeroed struct walk, on the top. */
static struct walk *scratch_new(lua_State *L)
{
	struct walk **box = lua_newuserdatauv(L, sizeof *box, 0);
	*box = NULL;
	if (luaL_newmetatable(L, SCRATCH_MT)) {
		lua_pushcfunction(L, scratch_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, scratch_close);
		lua_setfield(L, -2, "__close");
	}
	lua_setmetatable(L, -2);
	*box = calloc(1, sizeof **box);
	if (!*box)
		luaL_error(L, "not enough memory");
	lua_toclose(L, -1);
	return *box;
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

static int bit_test(const uint64_t *set, size_t bit)
{
	return (int)((set[bit / 64] >> (bit % 64)) & 1);
}

static void bit_set(uint64_t *set, size_t bit)
{
	set[bit / 64] |= (uint64_t)1 << (bit % 64);
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

/* ---- crate paths and their trie ---------------------------------------- */

/* Normalise a crate path: no leading "./" or trailing "/", "." is the root.
 * Returns NULL when the path is absolute or has empty, "." or ".." parts. */
static char *path_normalise(lua_State *L, const char *in)
{
	while (in[0] == '.' && in[1] == '/')
		in += 2;
	if (strcmp(in, ".") == 0)
		in = "";
	size_t len = strlen(in);
	while (len > 0 && in[len - 1] == '/')
		len--;
	char *p = zalloc(L, len + 1, 1);
	memcpy(p, in, len);
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

/* Index of kid NAME of trie node T, or -1; *at is where it would go. */
static int32_t trie_find(struct walk *w, uint32_t t, const char *name, uint32_t *at)
{
	uint32_t lo = 0, hi = w->trie[t].nkids;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, w->trie[w->trie[t].kids[mid]].name);
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
	t->name = zalloc(L, len + 1, 1);
	memcpy(t->name, name, len);
	return (uint32_t)(w->ntrie - 1);
}

static void trie_insert(lua_State *L, struct walk *w, size_t crate)
{
	uint32_t t = 0;
	const char *p = w->paths[crate];
	char comp[256];
	while (*p) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n >= sizeof comp)
			luaL_error(L, "crate path component too long: %s", w->paths[crate]);
		memcpy(comp, p, n);
		comp[n] = '\0';
		uint32_t at;
		int32_t k = trie_find(w, t, comp, &at);
		if (k < 0) {
			uint32_t nk = trie_add(L, w, comp, n);
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
	w->crate_trie[crate] = t;
	w->crate_next[crate] = w->trie[t].crate;
	w->trie[t].crate = (int32_t)crate;
}

/* ---- trees ------------------------------------------------------------- */

/* An owned reference to tree ID, through the cache. */
static int tree_get(struct walk *w, git_tree **out, const git_oid *id)
{
	size_t slot;
	memcpy(&slot, id->id, sizeof slot);
	slot &= TREE_CACHE - 1;
	git_tree *t = w->tcache[slot];
	if (!t || !git_oid_equal(git_tree_id(t), id)) {
		git_tree *fresh;
		int err = git_tree_lookup(&fresh, w->repo, id);
		if (err < 0)
			return err;
		w->trees++;
		git_tree_free(t);
		w->tcache[slot] = t = fresh;
	}
	return git_tree_dup(out, t);
}

/* One side of a comparison: what sits at a path. oid NULL = nothing. */
struct side {
	const git_oid *oid;
	git_filemode_t mode;
};

static struct side side_of(const git_tree_entry *e)
{
	struct side s = {NULL, 0};
	if (e) {
		s.oid = git_tree_entry_id(e);
		s.mode = git_tree_entry_filemode(e);
	}
	return s;
}

static int side_equal(struct side a, struct side b)
{
	if (!a.oid || !b.oid)
		return !a.oid && !b.oid;
	return a.mode == b.mode && git_oid_equal(a.oid, b.oid);
}

/*
 * Compare trie node T between sides A and B. Marks in w->changed the crates
 * at or below T whose own part differs; *dirty tells the enclosing crate that
 * something differs outside every crate at or below T.
 */
static int diff_node(struct walk *w, uint32_t t, struct side a, struct side b, int *dirty)
{
	*dirty = 0;
	if (side_equal(a, b))
		return 0;
	int own = 0;
	const struct trie *tn = &w->trie[t];
	if (tn->nkids == 0) {
		own = 1;
	} else {
		git_tree *ta = NULL, *tb = NULL;
		int err = 0;
		if ((a.oid && a.mode != GIT_FILEMODE_TREE) || (b.oid && b.mode != GIT_FILEMODE_TREE))
			own = 1;
		if (a.oid && a.mode == GIT_FILEMODE_TREE)
			err = tree_get(w, &ta, a.oid);
		if (!err && b.oid && b.mode == GIT_FILEMODE_TREE)
			err = tree_get(w, &tb, b.oid);
		size_t na = ta ? git_tree_entrycount(ta) : 0;
		size_t nb = tb ? git_tree_entrycount(tb) : 0;
		size_t i = 0, j = 0;
		while (!err && (i < na || j < nb)) {
			const git_tree_entry *ea = i < na ? git_tree_entry_byindex(ta, i) : NULL;
			const git_tree_entry *eb = j < nb ? git_tree_entry_byindex(tb, j) : NULL;
			int c = !ea ? 1 : !eb ? -1 : git_tree_entry_cmp(ea, eb);
			if (c < 0)
				eb = NULL, i++;
			else if (c > 0)
				ea = NULL, j++;
			else
				i++, j++;
			struct side sa = side_of(ea), sb = side_of(eb);
			if (side_equal(sa, sb))
				continue;
			int32_t kid = trie_find(w, t, git_tree_entry_name(ea ? ea : eb), NULL);
			if (kid < 0) {
				own = 1;
				continue;
			}
			int kid_dirty;
			err = diff_node(w, (uint32_t)kid, sa, sb, &kid_dirty);
			own |= kid_dirty;
		}
		git_tree_free(ta);
		git_tree_free(tb);
		if (err < 0)
			return err;
	}
	if (tn->crate < 0) {
		*dirty = own;
	} else if (own) {
		for (int32_t c = tn->crate; c >= 0; c = w->crate_next[c])
			bit_set(w->changed, (size_t)c);
	}
	return 0;
}

/* Does tree ROOT hold a directory at crate C's path? */
static int has_dir(struct walk *w, const git_oid *root, size_t c, int *out)
{
	git_oid id;
	git_oid_cpy(&id, root);
	strcpy(w->pathbuf, w->paths[c]);
	*out = 1;
	for (char *p = w->pathbuf; *p;) {
		char *end = strchr(p, '/');
		if (end)
			*end = '\0';
		git_tree *t;
		int err = tree_get(w, &t, &id);
		if (err < 0)
			return err;
		const git_tree_entry *e = git_tree_entry_byname(t, p);
		if (!e || git_tree_entry_filemode(e) != GIT_FILEMODE_TREE) {
			git_tree_free(t);
			*out = 0;
			return 0;
		}
		git_oid_cpy(&id, git_tree_entry_id(e));
		git_tree_free(t);
		if (!end)
			break;
		p = end + 1;
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

static uint32_t slot_of(const git_oid *id, size_t cap)
{
	uint32_t h;
	memcpy(&h, id->id, sizeof h);
	return h & (uint32_t)(cap - 1);
}

static int32_t node_find(struct walk *w, const git_oid *id)
{
	if (!w->slots_cap)
		return -1;
	for (uint32_t s = slot_of(id, w->slots_cap);; s = (s + 1) & (uint32_t)(w->slots_cap - 1)) {
		uint32_t v = w->slots[s];
		if (v == 0)
			return -1;
		if (git_oid_equal(&w->nodes[v - 1].id, id))
			return (int32_t)(v - 1);
	}
}

static void slots_insert(struct walk *w, uint32_t n)
{
	uint32_t s = slot_of(&w->nodes[n].id, w->slots_cap);
	while (w->slots[s])
		s = (s + 1) & (uint32_t)(w->slots_cap - 1);
	w->slots[s] = n + 1;
}

/* The node of commit ID: found, or read, created and queued. */
static int node_get(lua_State *L, struct walk *w, const git_oid *id, uint32_t *out)
{
	int32_t found = node_find(w, id);
	if (found >= 0) {
		*out = (uint32_t)found;
		return 0;
	}
	int err = git_commit_lookup(&w->commit, w->repo, id);
	if (err < 0)
		return err;
	w->walked++;

	if ((w->nnodes + 1) * 2 > w->slots_cap) {
		size_t cap = w->slots_cap ? w->slots_cap * 2 : 1024;
		uint32_t *slots = calloc(cap, sizeof *slots);
		if (!slots)
			luaL_error(L, "not enough memory");
		free(w->slots);
		w->slots = slots;
		w->slots_cap = cap;
		for (uint32_t i = 0; i < w->nnodes; i++)
			slots_insert(w, i);
	}
	size_t cap = w->nodes_cap;
	grow(L, (void **)&w->nodes, &w->nodes_cap, w->nnodes + 1, sizeof *w->nodes);
	if (w->nodes_cap != cap) {
		uint64_t *bits = realloc(w->bits, w->nodes_cap * w->words * sizeof *bits);
		if (!bits)
			luaL_error(L, "not enough memory");
		w->bits = bits;
		uint64_t *chg = realloc(w->chg, w->nodes_cap * w->cwords * sizeof *chg);
		if (!chg)
			luaL_error(L, "not enough memory");
		w->chg = chg;
	}
	unsigned int np = git_commit_parentcount(w->commit);
	if (w->first_parent && np > 1)
		np = 1;
	grow(L, (void **)&w->edges, &w->edges_cap, w->nedges + np, sizeof *w->edges);

	uint32_t n = (uint32_t)w->nnodes++;
	struct node *nd = &w->nodes[n];
	git_oid_cpy(&nd->id, id);
	git_oid_cpy(&nd->tree, git_commit_tree_id(w->commit));
	nd->time = (int64_t)git_commit_time(w->commit);
	nd->edges = (uint32_t)w->nedges;
	nd->nparents = np;
	nd->indeg = 0;
	nd->flags = 0;
	for (unsigned int k = 0; k < np; k++) {
		git_oid_cpy(&w->edges[w->nedges].id, git_commit_parent_id(w->commit, k));
		w->edges[w->nedges++].node = UINT32_MAX;
	}
	git_commit_free(w->commit);
	w->commit = NULL;
	memset(node_bits(w, n), 0, w->words * sizeof(uint64_t));
	slots_insert(w, n);
	heap_push(L, w, n);
	nd->flags |= N_QUEUED;
	*out = n;
	return 0;
}

/* Crates commit N changed, into w->acc: against every walked parent. */
static int node_changes(struct walk *w, uint32_t n)
{
	struct node *nd = &w->nodes[n];
	struct side mine = {&nd->tree, GIT_FILEMODE_TREE};
	int dirty;
	if (nd->nparents == 0) {
		memset(w->changed, 0, w->cwords * sizeof(uint64_t));
		struct side none = {NULL, 0};
		int err = diff_node(w, 0, mine, none, &dirty);
		memcpy(w->acc, w->changed, w->cwords * sizeof(uint64_t));
		return err;
	}
	for (uint32_t k = 0; k < nd->nparents; k++) {
		const struct node *pd = &w->nodes[w->edges[nd->edges + k].node];
		struct side theirs = {&pd->tree, GIT_FILEMODE_TREE};
		memset(w->changed, 0, w->cwords * sizeof(uint64_t));
		int err = diff_node(w, 0, mine, theirs, &dirty);
		if (err < 0)
			return err;
		int any = 0;
		for (size_t i = 0; i < w->cwords; i++) {
			w->acc[i] = k == 0 ? w->changed[i] : w->acc[i] & w->changed[i];
			any |= w->acc[i] != 0;
		}
		if (!any)
			break;
	}
	return 0;
}

/* A read commit of from's history that is live: check which never-released
 * crates' directories it lacks (they end there), note its time, and find the
 * crates it changed while its trees and its parents' are fresh in the cache. */
static int settle(struct walk *w, uint32_t n)
{
	struct node *nd = &w->nodes[n];
	if (!(nd->flags & N_INTERESTING) || node_dead(w, n))
		return 0;
	if (!(nd->flags & N_CHECKED)) {
		nd->flags |= N_CHECKED;
		for (size_t c = 0; c < w->ncrates; c++) {
			if (!w->never[c] || bit_test(node_bits(w, n), w->crate_bit[c]))
				continue;
			int present;
			int err = has_dir(w, &w->nodes[n].tree, c, &present);
			if (err < 0)
				return err;
			if (!present)
				bit_set(node_bits(w, n), w->crate_bit[c]);
		}
		if (node_dead(w, n))
			return 0;
	}
	if (nd->time < w->tmin)
		w->tmin = nd->time;
	if (!(nd->flags & N_DIFFED)) {
		int err = node_changes(w, n);
		if (err < 0)
			return err;
		memcpy(w->chg + (size_t)n * w->cwords, w->acc, w->cwords * sizeof(uint64_t));
		nd->flags |= N_DIFFED;
	}
	return 0;
}

/* Give parent P what child C carries; re-propagate below P if P was read. */
static void pass_down(lua_State *L, struct walk *w, uint32_t c, uint32_t p)
{
	const uint64_t *cb = node_bits(w, c);
	uint64_t *pb = node_bits(w, p);
	int more = (w->nodes[c].flags & N_INTERESTING) && !(w->nodes[p].flags & N_INTERESTING);
	for (size_t i = 0; i < w->words && !more; i++)
		more = (cb[i] & ~pb[i]) != 0;
	if (!more)
		return;
	int counted = node_counts(w, p);
	for (size_t i = 0; i < w->words; i++)
		pb[i] |= cb[i];
	w->nodes[p].flags |= w->nodes[c].flags & N_INTERESTING;
	w->live_queued += (size_t)node_counts(w, p) - (size_t)counted;
	if (w->nodes[p].flags & N_DONE) {
		grow(L, (void **)&w->stack, &w->stack_cap, w->nstack + 1, sizeof *w->stack);
		w->stack[w->nstack++] = p;
	}
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
	int err = settle(w, n);
	if (err < 0)
		return err;
	for (uint32_t k = 0; k < w->nodes[n].nparents; k++)
		pass_down(L, w, n, w->edges[w->nodes[n].edges + k].node);
	while (w->nstack > 0) {
		uint32_t m = w->stack[--w->nstack];
		err = settle(w, m);
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

/* ---- Lua --------------------------------------------------------------- */

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

/* [-0, +1, m] The list entry for commit N with attributed crates w->acc. */
static int push_commit(lua_State *L, struct walk *w, uint32_t n)
{
	int err = git_commit_lookup(&w->commit, w->repo, &w->nodes[n].id);
	if (err < 0)
		return err;
	const git_commit *c = w->commit;
	char hex[GIT_OID_HEXSZ + 1];
	lua_createtable(L, 0, 8);
	lua_pushstring(L, git_oid_tostr(hex, sizeof hex, git_commit_id(c)));
	lua_setfield(L, -2, "id");
	const char *encoding = git_commit_message_encoding(c);
	cdp_git_push_text(L, git_commit_summary(w->commit), encoding);
	lua_setfield(L, -2, "summary");
	cdp_git_push_text(L, git_commit_message(c), encoding);
	lua_setfield(L, -2, "message");
	const git_signature *a = git_commit_author(c);
	cdp_git_push_text(L, a->name, encoding);
	lua_setfield(L, -2, "author");
	cdp_git_push_text(L, a->email, encoding);
	lua_setfield(L, -2, "email");
	lua_pushinteger(L, (lua_Integer)git_commit_time(c));
	lua_setfield(L, -2, "time");
	unsigned int np = git_commit_parentcount(c);
	lua_createtable(L, (int)np, 0);
	for (unsigned int k = 0; k < np; k++) {
		lua_pushstring(L, git_oid_tostr(hex, sizeof hex, git_commit_parent_id(c, k)));
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	lua_setfield(L, -2, "parents");
	git_commit_free(w->commit);
	w->commit = NULL;
	lua_newtable(L);
	lua_Integer k = 0;
	for (size_t i = 0; i < w->ncrates; i++)
		if (bit_test(w->acc, i)) {
			lua_pushinteger(L, (lua_Integer)i + 1);
			lua_rawseti(L, -2, ++k);
		}
	lua_setfield(L, -2, "paths");
	return 0;
}

/* [-0, +1, m] The list: read commits of from's history in topological order
 * (newest first among those ready), keeping those that changed a live crate. */
static int push_list(lua_State *L, struct walk *w)
{
	lua_newtable(L);
	lua_Integer count = 0;
	for (uint32_t n = 0; n < w->nnodes; n++) {
		const struct node *nd = &w->nodes[n];
		if ((nd->flags & (N_DONE | N_INTERESTING)) != (N_DONE | N_INTERESTING))
			continue;
		for (uint32_t k = 0; k < nd->nparents; k++)
			w->nodes[w->edges[nd->edges + k].node].indeg++;
	}
	w->nheap = 0;
	for (uint32_t n = 0; n < w->nnodes; n++) {
		const struct node *nd = &w->nodes[n];
		if ((nd->flags & (N_DONE | N_INTERESTING)) == (N_DONE | N_INTERESTING) && nd->indeg == 0)
			heap_push(L, w, n);
	}
	while (w->nheap > 0) {
		uint32_t n = heap_pop(w);
		struct node *nd = &w->nodes[n];
		for (uint32_t k = 0; k < nd->nparents; k++) {
			uint32_t p = w->edges[nd->edges + k].node;
			const struct node *pd = &w->nodes[p];
			if ((pd->flags & (N_DONE | N_INTERESTING)) == (N_DONE | N_INTERESTING) && --w->nodes[p].indeg == 0)
				heap_push(L, w, p);
		}
		if (node_dead(w, n))
			continue;
		int any = 0;
		for (size_t c = 0; c < w->ncrates; c++) {
			int live = !bit_test(node_bits(w, n), w->crate_bit[c]);
			if (live)
				bit_set(w->live, c);
			else
				w->live[c / 64] &= ~((uint64_t)1 << (c % 64));
			any |= live;
		}
		if (!any)
			continue;
		/* Live now means settled, and so diffed, while live; but be sure. */
		if (!(nd->flags & N_DIFFED)) {
			int err = node_changes(w, n);
			if (err < 0)
				return err;
			memcpy(w->chg + (size_t)n * w->cwords, w->acc, w->cwords * sizeof(uint64_t));
			nd->flags |= N_DIFFED;
		}
		const uint64_t *chg = w->chg + (size_t)n * w->cwords;
		any = 0;
		for (size_t i = 0; i < w->cwords; i++) {
			w->acc[i] = chg[i] & w->live[i];
			any |= w->acc[i] != 0;
		}
		if (!any)
			continue;
		int err = push_commit(L, w, n);
		if (err < 0)
			return err;
		lua_rawseti(L, -2, ++count);
	}
	return 0;
}

/* Read opts (raising on misuse) into W; leaves the from rev on the stack top. */
static const char *read_opts(lua_State *L, struct walk *w)
{
	if (lua_getfield(L, 2, "first_parent") != LUA_TNIL) {
		luaL_argexpected(L, lua_isboolean(L, -1), 2, "first_parent: boolean");
		w->first_parent = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);

	if (lua_getfield(L, 2, "paths") != LUA_TTABLE)
		luaL_argerror(L, 2, "paths: table of crate directories expected");
	int paths = lua_gettop(L);
	if (lua_getfield(L, 2, "since") != LUA_TTABLE && !lua_isnil(L, -1))
		luaL_argerror(L, 2, "since: table expected");
	int since = lua_gettop(L);

	w->ncrates = (size_t)luaL_len(L, paths);
	w->cwords = (w->ncrates + 63) / 64;
	w->paths = zalloc(L, w->ncrates, sizeof *w->paths);
	w->crate_bit = zalloc(L, w->ncrates, sizeof *w->crate_bit);
	w->crate_next = zalloc(L, w->ncrates, sizeof *w->crate_next);
	w->never = zalloc(L, w->ncrates, sizeof *w->never);
	w->crate_trie = zalloc(L, w->ncrates, sizeof *w->crate_trie);
	w->changed = zalloc(L, w->cwords, sizeof(uint64_t));
	w->acc = zalloc(L, w->cwords, sizeof(uint64_t));
	w->live = zalloc(L, w->cwords, sizeof(uint64_t));
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
	}
	w->pathbuf = zalloc(L, longest + 1, 1);

	int t = lua_getfield(L, 2, "from");
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		lua_pushliteral(L, "HEAD");
	} else if (t != LUA_TSTRING) {
		luaL_argerror(L, 2, "from: string expected");
	}
	return lua_tostring(L, -1);
}

int cdp_git_changes(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	struct walk *w = scratch_new(L); /* 3 */
	w->repo = repo;
	w->tmin = INT64_MAX;
	const char *from = read_opts(L, w); /* paths 4, since 5, from 6 */

	git_oid from_id;
	if (resolve(w, from, &from_id) < 0)
		return cdp_git_push_error(L, GIT_ENOTFOUND, lua_pushfstring(L, "from '%s'", from));

	/* Bits: one per distinct release commit, then one per never-released crate. */
	w->release = zalloc(L, w->ncrates, sizeof *w->release);
	size_t nrel = 0;
	for (size_t i = 0; i < w->ncrates; i++) {
		if (lua_isnil(L, 5) || lua_geti(L, 5, (lua_Integer)i + 1) != LUA_TSTRING) {
			lua_settop(L, 6);
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
		if (w->never[i])
			w->crate_bit[i] = (uint32_t)w->nbits++;
	w->words = w->nbits ? (w->nbits + 63) / 64 : 1;

	int err = 0;
	if (w->ncrates > 0) {
		trie_add(L, w, "", 0);
		for (size_t i = 0; i < w->ncrates; i++)
			trie_insert(L, w, i);
		uint32_t n;
		err = node_get(L, w, &from_id, &n);
		if (!err)
			w->nodes[n].flags |= N_INTERESTING;
		for (size_t b = 0; b < nrel && !err; b++) {
			uint32_t r;
			err = node_get(L, w, &w->release[b], &r);
			if (!err)
				bit_set(node_bits(w, r), b);
		}
		if (!err) {
			w->live_queued = (size_t)node_counts(w, n);
			err = walk_graph(L, w);
		}
	}
	if (!err)
		err = push_list(L, w);
	if (err < 0)
		return cdp_git_push_error(L, err, "changes");

	lua_createtable(L, 0, 2);
	lua_pushinteger(L, (lua_Integer)w->walked);
	lua_setfield(L, -2, "walked");
	lua_pushinteger(L, (lua_Integer)w->trees);
	lua_setfield(L, -2, "trees");
	return 2;
}
