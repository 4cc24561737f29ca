/*
 * Repository:tag_candidates(names, templates) — the release tags of a
 * workspace, read in one pass over the tag refs.
 *
 *   local list = repo:tag_candidates({ "core", "cli" }, { "{crate}-v{version}", "v{version}" })
 *   list: { { tag = "core-v1.2.0", crate = "core", template = "{crate}-v{version}",
 *             version = "1.2.0", target = oid, peeled = commit oid | nil,
 *             annotated = bool }, ... }
 *
 * A tag is a candidate for crate N under template T when its name is T with
 * {crate} as N and some text starting with a digit as {version}; a template
 * without {crate} gives candidates with no crate. One tag can be a candidate
 * several times ("foo-v2-v1.0.0" for foo and for foo-v2): which one owns it is
 * the plan's decision. {crate} may come before or after {version}. Templates
 * are taken as given: the plan checks them (cdp.tags.parse) first. The list is
 * sorted by tag name (bytewise), then by the template's place in TEMPLATES,
 * then by where the version text starts and its length, which is the order of
 * the readings from left to right.
 *
 * Cost. The refs are read as git writes them: packed-refs in one read (its
 * "^" lines give the object each annotated tag peels to), then the loose refs
 * under refs/tags, which override packed ones. libgit2's reference iterator
 * allocates and resolves every ref (90 ms for 3,440 tags), and reading each
 * tag object was what listing tags cost before (91 ms). Names are matched in
 * C against a hash of every template's text before {version} (with {crate}
 * filled in), so a tag costs one lookup per distinct prefix length, whatever
 * the number of crates. Only matching tags are resolved: a packed one costs
 * nothing (its peeled line is taken as the commit it names, as git writes it;
 * a tag of a tree is refused later, by the walk, naming the crate), a loose
 * one an object header read, a loose annotated one its tag object.
 *
 * Errors. A template without exactly one {version} gives nil, message,
 * "ETAG"; libgit2 failures come through cdp_git_push_error, naming the tag.
 * Wrong argument types raise. Everything allocated lives in a box closed on
 * return or on error.
 */
#include "l_git.h"

#include <dirent.h>
#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct pattern {
	char *prefix, *suffix;
	size_t plen, slen;
	int crate;     /* index into names, or -1 */
	int template;  /* index into templates */
	int32_t next;  /* next pattern in the same hash bucket, or -1 */
};

struct candidate {
	char *tag; /* without refs/tags/ */
	size_t len;
	size_t vstart, vlen; /* the version text in TAG */
	int crate, template;
	git_oid target, peeled;
	int has_peeled, annotated;
};

struct ref {
	char *name; /* without refs/tags/ */
	size_t len;
	git_oid target, peeled;
	int has_peel; /* packed-refs gave the peeled object */
	int loose;    /* a file under refs/tags (it overrides packed-refs) */
	int symbolic; /* a loose "ref: ..." */
};

struct tags {
	struct pattern *pats;
	size_t npats;
	int32_t *buckets;
	size_t nbuckets;
	size_t *lengths; /* distinct prefix lengths, ascending */
	size_t nlengths;
	struct candidate *cands;
	size_t ncands, cands_cap;
	struct ref *refs;
	size_t nrefs, refs_cap;
	int32_t *ref_slots; /* name hash -> ref + 1 */
	size_t ref_slots_cap;
	int packed_peeled; /* packed-refs says annotated tags carry "^" lines */
	char *file;        /* packed-refs, or a loose ref being read */
	char *path;        /* a path under the common dir */
	size_t path_cap;
	git_reference *ref, *resolved;
	git_odb *odb;
	git_object *obj, *peeled;
};

static void tags_free(void *p)
{
	struct tags *t = p;
	for (size_t i = 0; i < t->npats; i++) {
		free(t->pats[i].prefix);
		free(t->pats[i].suffix);
	}
	free(t->pats);
	free(t->buckets);
	free(t->lengths);
	for (size_t i = 0; i < t->ncands; i++)
		free(t->cands[i].tag);
	free(t->cands);
	for (size_t i = 0; i < t->nrefs; i++)
		free(t->refs[i].name);
	free(t->refs);
	free(t->ref_slots);
	free(t->file);
	free(t->path);
	git_reference_free(t->ref);
	git_reference_free(t->resolved);
	git_odb_free(t->odb);
	git_object_free(t->obj);
	git_object_free(t->peeled);
	memset(t, 0, sizeof *t);
}

static void *xcalloc(lua_State *L, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		luaL_error(L, "not enough memory");
	return p;
}

static uint32_t hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

/* S with every {crate} replaced by NAME (NULL: S as it is), newly allocated. */
static char *fill(lua_State *L, const char *s, size_t len, const char *name, size_t *out_len)
{
	static const char key[] = "{crate}";
	size_t klen = sizeof key - 1, nlen = name ? strlen(name) : 0, n = 0;
	for (size_t i = 0; i < len;)
		if (name && i + klen <= len && memcmp(s + i, key, klen) == 0)
			n += nlen, i += klen;
		else
			n++, i++;
	char *p = xcalloc(L, n + 1, 1);
	size_t o = 0;
	for (size_t i = 0; i < len;)
		if (name && i + klen <= len && memcmp(s + i, key, klen) == 0)
			memcpy(p + o, name, nlen), o += nlen, i += klen;
		else
			p[o++] = s[i++];
	*out_len = n;
	return p;
}

static int size_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return (x > y) - (x < y);
}

/*
 * The patterns of every template for every name, hashed by prefix. Returns
 * the index of a template without exactly one {version}, or -1.
 */
static int build_patterns(lua_State *L, struct tags *t, int names, int templates)
{
	size_t nn = (size_t)luaL_len(L, names), nt = (size_t)luaL_len(L, templates);
	t->pats = xcalloc(L, nn * nt + nt, sizeof *t->pats);
	t->lengths = xcalloc(L, nn * nt + nt, sizeof *t->lengths);
	for (size_t ti = 0; ti < nt; ti++) {
		lua_geti(L, templates, (lua_Integer)ti + 1);
		size_t len;
		const char *tpl = lua_tolstring(L, -1, &len);
		lua_pop(L, 1); /* anchored by TEMPLATES */
		const char *v = strstr(tpl, "{version}");
		if (!v || strstr(v + 9, "{version}"))
			return (int)ti;
		int per_crate = strstr(tpl, "{crate}") != NULL;
		for (size_t ni = 0; ni < (per_crate ? nn : 1); ni++) {
			const char *name = NULL;
			if (per_crate) {
				lua_geti(L, names, (lua_Integer)ni + 1);
				name = lua_tostring(L, -1);
				lua_pop(L, 1);
			}
			struct pattern *p = &t->pats[t->npats++];
			p->prefix = fill(L, tpl, (size_t)(v - tpl), name, &p->plen);
			p->suffix = fill(L, v + 9, len - (size_t)(v + 9 - tpl), name, &p->slen);
			p->crate = per_crate ? (int)ni : -1;
			p->template = (int)ti;
		}
	}
	t->nbuckets = 16;
	while (t->nbuckets < 2 * t->npats)
		t->nbuckets *= 2;
	t->buckets = xcalloc(L, t->nbuckets, sizeof *t->buckets);
	for (size_t b = 0; b < t->nbuckets; b++)
		t->buckets[b] = -1;
	/* Chains keep NAMES order within a template, templates in TEMPLATES order. */
	for (size_t i = t->npats; i-- > 0;) {
		struct pattern *p = &t->pats[i];
		uint32_t b = hash(p->prefix, p->plen) & (uint32_t)(t->nbuckets - 1);
		p->next = t->buckets[b];
		t->buckets[b] = (int32_t)i;
		t->lengths[t->nlengths++] = p->plen;
	}
	qsort(t->lengths, t->nlengths, sizeof *t->lengths, size_cmp);
	size_t d = 0;
	for (size_t i = 0; i < t->nlengths; i++)
		if (d == 0 || t->lengths[d - 1] != t->lengths[i])
			t->lengths[d++] = t->lengths[i];
	t->nlengths = d;
	return -1;
}

static void add_candidate(lua_State *L, struct tags *t, const char *name, size_t len, const struct pattern *p)
{
	if (t->ncands == t->cands_cap) {
		size_t cap = t->cands_cap ? t->cands_cap * 2 : 64;
		struct candidate *c = realloc(t->cands, cap * sizeof *c);
		if (!c)
			luaL_error(L, "not enough memory");
		t->cands = c;
		t->cands_cap = cap;
	}
	struct candidate *c = &t->cands[t->ncands];
	memset(c, 0, sizeof *c);
	c->tag = xcalloc(L, len + 1, 1);
	t->ncands++;
	memcpy(c->tag, name, len);
	c->len = len;
	c->vstart = p->plen;
	c->vlen = len - p->plen - p->slen;
	c->crate = p->crate;
	c->template = p->template;
}

/* Add the candidates tag NAME gives; returns how many. */
static size_t match_tag(lua_State *L, struct tags *t, const char *name, size_t len)
{
	size_t found = 0;
	for (size_t li = 0; li < t->nlengths && t->lengths[li] < len; li++) {
		size_t l = t->lengths[li];
		uint32_t b = hash(name, l) & (uint32_t)(t->nbuckets - 1);
		for (int32_t i = t->buckets[b]; i >= 0; i = t->pats[i].next) {
			const struct pattern *p = &t->pats[i];
			if (p->plen != l || memcmp(p->prefix, name, l) != 0)
				continue;
			if (p->plen + p->slen >= len || name[l] < '0' || name[l] > '9')
				continue;
			if (memcmp(name + len - p->slen, p->suffix, p->slen) != 0)
				continue;
			add_candidate(L, t, name, len, p);
			found++;
		}
	}
	return found;
}

/* What REF points at, for the last FOUND candidates. */
static int resolve_targets(struct tags *t, git_repository *repo, struct ref *ref, size_t found)
{
	git_oid target, peeled;
	int has_peeled = 0, annotated = 0, err;
	if (ref->symbolic) { /* rare: let libgit2 follow it */
		char name[1024];
		if (ref->len + 11 > sizeof name)
			return GIT_ENOTFOUND;
		memcpy(name, "refs/tags/", 10);
		memcpy(name + 10, ref->name, ref->len + 1);
		if ((err = git_reference_lookup(&t->ref, repo, name)) < 0 ||
		    (err = git_reference_resolve(&t->resolved, t->ref)) < 0)
			return err;
		git_oid_cpy(&ref->target, git_reference_target(t->resolved));
		git_reference_free(t->resolved);
		git_reference_free(t->ref);
		t->resolved = t->ref = NULL;
		ref->symbolic = 0;
		ref->loose = 1;
	}
	git_oid_cpy(&target, &ref->target);
	if (ref->has_peel) { /* a "^" line: annotated, no object read */
		git_oid_cpy(&peeled, &ref->peeled);
		has_peeled = annotated = 1;
	} else if (!ref->loose && t->packed_peeled) { /* packed, no "^" line: not annotated */
		git_oid_cpy(&peeled, &target);
		has_peeled = 1;
	} else {
		size_t size;
		git_object_t type;
		if (!t->odb && (err = git_repository_odb(&t->odb, repo)) < 0)
			return err;
		if ((err = git_odb_read_header(&size, &type, t->odb, &target)) < 0)
			return err;
		if (type == GIT_OBJECT_COMMIT) {
			git_oid_cpy(&peeled, &target);
			has_peeled = 1;
		} else if (type == GIT_OBJECT_TAG) {
			annotated = 1;
			if ((err = git_object_lookup(&t->obj, repo, &target, GIT_OBJECT_TAG)) < 0)
				return err;
			if (git_object_peel(&t->peeled, t->obj, GIT_OBJECT_COMMIT) == 0) {
				git_oid_cpy(&peeled, git_object_id(t->peeled));
				has_peeled = 1;
			} else {
				git_error_clear(); /* a tag of a tree or a blob */
			}
			git_object_free(t->peeled);
			git_object_free(t->obj);
			t->peeled = NULL;
			t->obj = NULL;
		}
	}
	for (size_t i = t->ncands - found; i < t->ncands; i++) {
		git_oid_cpy(&t->cands[i].target, &target);
		if (has_peeled)
			git_oid_cpy(&t->cands[i].peeled, &peeled);
		t->cands[i].has_peeled = has_peeled;
		t->cands[i].annotated = annotated;
	}
	return 0;
}

/* ---- refs as git writes them -------------------------------------------- */

static int32_t ref_find(const struct tags *t, const char *name, size_t len)
{
	if (!t->ref_slots_cap)
		return -1;
	for (uint32_t s = hash(name, len) & (uint32_t)(t->ref_slots_cap - 1);;
	     s = (s + 1) & (uint32_t)(t->ref_slots_cap - 1)) {
		int32_t v = t->ref_slots[s];
		if (v == 0)
			return -1;
		const struct ref *r = &t->refs[v - 1];
		if (r->len == len && memcmp(r->name, name, len) == 0)
			return v - 1;
	}
}

static void ref_slot(struct tags *t, size_t i)
{
	uint32_t s = hash(t->refs[i].name, t->refs[i].len) & (uint32_t)(t->ref_slots_cap - 1);
	while (t->ref_slots[s])
		s = (s + 1) & (uint32_t)(t->ref_slots_cap - 1);
	t->ref_slots[s] = (int32_t)i + 1;
}

/* The ref NAME (LEN bytes, without refs/tags/), made when new. */
static struct ref *ref_get(lua_State *L, struct tags *t, const char *name, size_t len)
{
	int32_t found = ref_find(t, name, len);
	if (found >= 0)
		return &t->refs[found];
	if ((t->nrefs + 1) * 2 > t->ref_slots_cap) {
		size_t cap = t->ref_slots_cap ? t->ref_slots_cap * 2 : 256;
		int32_t *slots = calloc(cap, sizeof *slots);
		if (!slots)
			luaL_error(L, "not enough memory");
		free(t->ref_slots);
		t->ref_slots = slots;
		t->ref_slots_cap = cap;
		for (size_t i = 0; i < t->nrefs; i++)
			ref_slot(t, i);
	}
	if (t->nrefs == t->refs_cap) {
		size_t cap = t->refs_cap ? t->refs_cap * 2 : 256;
		struct ref *refs = realloc(t->refs, cap * sizeof *refs);
		if (!refs)
			luaL_error(L, "not enough memory");
		t->refs = refs;
		t->refs_cap = cap;
	}
	struct ref *r = &t->refs[t->nrefs];
	memset(r, 0, sizeof *r);
	r->name = xcalloc(L, len + 1, 1);
	memcpy(r->name, name, len);
	r->len = len;
	t->nrefs++;
	ref_slot(t, t->nrefs - 1);
	return r;
}

/* The whole file at PATH into t->file (NUL-terminated); 0 when missing, -1 on a read error. */
static int read_file(lua_State *L, struct tags *t, const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	size_t cap = 4096, n = 0;
	free(t->file);
	t->file = NULL;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			fclose(f);
			return luaL_error(L, "not enough memory");
		}
		t->file = buf;
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (n + 1 < cap)
			break;
		cap *= 2;
		buf = realloc(buf, cap);
	}
	int bad = ferror(f);
	fclose(f);
	if (bad)
		return -1;
	t->file[n] = '\0';
	*len = n;
	return 1;
}

/* packed-refs: "<oid> refs/tags/<name>" lines, each maybe followed by "^<peeled oid>". */
static int read_packed(lua_State *L, struct tags *t, const char *common)
{
	size_t len;
	lua_pushfstring(L, "%s/packed-refs", common);
	int rc = read_file(L, t, lua_tostring(L, -1), &len);
	lua_pop(L, 1);
	if (rc <= 0)
		return rc;
	const char *p = t->file, *end = t->file + len;
	struct ref *last = NULL;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		if (*p == '#') {
			/* "# pack-refs with: peeled fully-peeled sorted": either trait
			 * means an annotated tag has its "^" line */
			for (const char *q = p; q + 6 <= e; q++)
				if (memcmp(q, "peeled", 6) == 0)
					t->packed_peeled = 1;
		} else if (*p == '^') {
			if (last && e - p > GIT_OID_HEXSZ && git_oid_fromstrn(&last->peeled, p + 1, GIT_OID_HEXSZ) == 0)
				last->has_peel = 1;
		} else if (e - p > GIT_OID_HEXSZ + 11 && p[GIT_OID_HEXSZ] == ' ' &&
		           memcmp(p + GIT_OID_HEXSZ + 1, "refs/tags/", 10) == 0) {
			const char *name = p + GIT_OID_HEXSZ + 11;
			last = ref_get(L, t, name, (size_t)(e - name));
			if (git_oid_fromstrn(&last->target, p, GIT_OID_HEXSZ) != 0)
				last = NULL;
		} else {
			last = NULL;
		}
		p = e + 1;
	}
	return 0;
}

/* The loose refs under DIR (t->path, LEN bytes: common/refs/tags[/sub]); NAME_AT: where names start. */
static int read_loose(lua_State *L, struct tags *t, size_t len, size_t name_at)
{
	DIR *d = opendir(t->path);
	if (!d)
		return 0;
	struct dirent *de;
	int err = 0;
	while (!err && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue; /* ".", "..", and names git never writes */
		size_t n = strlen(de->d_name);
		if (len + n + 2 > t->path_cap) {
			size_t cap = (len + n + 2) * 2;
			char *p = realloc(t->path, cap);
			if (!p) {
				closedir(d);
				luaL_error(L, "not enough memory");
			}
			t->path = p;
			t->path_cap = cap;
		}
		t->path[len] = '/';
		memcpy(t->path + len + 1, de->d_name, n + 1);
		struct stat st;
		if (stat(t->path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			err = read_loose(L, t, len + 1 + n, name_at);
		} else if (S_ISREG(st.st_mode) && !(n > 5 && strcmp(de->d_name + n - 5, ".lock") == 0)) {
			size_t flen;
			char *path = t->path; /* read_file does not touch t->path */
			int rc = read_file(L, t, path, &flen);
			if (rc < 0)
				err = -1;
			if (rc <= 0)
				continue;
			struct ref *r = ref_get(L, t, t->path + name_at, len + 1 + n - name_at);
			r->loose = 1;
			r->has_peel = 0;
			r->symbolic = flen >= 5 && memcmp(t->file, "ref: ", 5) == 0;
			if (!r->symbolic && (flen < GIT_OID_HEXSZ || git_oid_fromstrn(&r->target, t->file, GIT_OID_HEXSZ) != 0))
				r->symbolic = 1; /* not an oid: let libgit2 say what it is */
		}
		t->path[len] = '\0';
	}
	closedir(d);
	return err;
}

static int ref_name_cmp(const void *pa, const void *pb)
{
	const struct ref *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->name, b->name, n);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* Every tag ref, packed and loose. */
static int read_refs(lua_State *L, struct tags *t, git_repository *repo)
{
	const char *common = git_repository_commondir(repo);
	if (read_packed(L, t, common) < 0) {
		git_error_set(GIT_ERROR_OS, "cannot read %s/packed-refs", common);
		return -1;
	}
	size_t len = strlen(common);
	while (len > 1 && common[len - 1] == '/')
		len--;
	t->path_cap = len + 64;
	t->path = xcalloc(L, t->path_cap, 1);
	memcpy(t->path, common, len);
	memcpy(t->path + len, "/refs/tags", 11);
	if (read_loose(L, t, len + 10, len + 11) < 0) {
		git_error_set(GIT_ERROR_OS, "cannot read the tags under %s/refs/tags", common);
		return -1;
	}
	/* the hash is done with: sort by name */
	if (t->nrefs > 1)
		qsort(t->refs, t->nrefs, sizeof *t->refs, ref_name_cmp);
	return 0;
}

static int candidate_cmp(const void *pa, const void *pb)
{
	const struct candidate *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->tag, b->tag, n);
	if (c)
		return c;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	if (a->template != b->template)
		return a->template < b->template ? -1 : 1;
	if (a->vstart != b->vstart)
		return a->vstart < b->vstart ? -1 : 1;
	return (a->vlen > b->vlen) - (a->vlen < b->vlen);
}

static void check_strings(lua_State *L, int arg, const char *what)
{
	luaL_checktype(L, arg, LUA_TTABLE);
	lua_Integer n = luaL_len(L, arg);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_geti(L, arg, i) != LUA_TSTRING)
			luaL_argerror(L, arg, lua_pushfstring(L, "%s[%d]: string expected, got %s", what, (int)i,
			                                      luaL_typename(L, -1)));
		lua_pop(L, 1);
	}
}

int cdp_git_tag_candidates(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	check_strings(L, 2, "names");
	check_strings(L, 3, "templates");
	lua_settop(L, 3);
	struct tags *t = cdp_git_box(L, sizeof *t, tags_free); /* 4 */
	int bad = build_patterns(L, t, 2, 3);
	if (bad >= 0) {
		lua_pushnil(L);
		lua_geti(L, 3, bad + 1);
		lua_pushfstring(L, "tag template '%s' must contain {version} once", lua_tostring(L, -1));
		lua_remove(L, -2);
		lua_pushliteral(L, "ETAG");
		return 3;
	}

	int err = t->npats > 0 ? read_refs(L, t, repo) : 0;
	const char *failed = NULL;
	for (size_t i = 0; !err && i < t->nrefs; i++) {
		struct ref *r = &t->refs[i];
		size_t found = match_tag(L, t, r->name, r->len);
		if (found && (err = resolve_targets(t, repo, r, found)) < 0)
			failed = r->name;
	}
	if (err)
		return cdp_git_push_error(L, err, failed ? lua_pushfstring(L, "tag '%s'", failed) : "tags");

	if (t->ncands > 1)
		qsort(t->cands, t->ncands, sizeof *t->cands, candidate_cmp);
	lua_createtable(L, (int)t->ncands, 0);
	char hex[GIT_OID_HEXSZ + 1];
	for (size_t i = 0; i < t->ncands; i++) {
		const struct candidate *c = &t->cands[i];
		lua_createtable(L, 0, 7);
		lua_pushlstring(L, c->tag, c->len);
		lua_setfield(L, -2, "tag");
		if (c->crate >= 0) {
			lua_geti(L, 2, c->crate + 1);
			lua_setfield(L, -2, "crate");
		}
		lua_geti(L, 3, c->template + 1);
		lua_setfield(L, -2, "template");
		lua_pushlstring(L, c->tag + c->vstart, c->vlen);
		lua_setfield(L, -2, "version");
		lua_pushstring(L, git_oid_tostr(hex, sizeof hex, &c->target));
		lua_setfield(L, -2, "target");
		if (c->has_peeled) {
			lua_pushstring(L, git_oid_tostr(hex, sizeof hex, &c->peeled));
			lua_setfield(L, -2, "peeled");
		}
		lua_pushboolean(L, c->annotated);
		lua_setfield(L, -2, "annotated");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}
