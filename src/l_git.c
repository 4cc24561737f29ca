/*
 * cdp.git — git repositories through libgit2: objects, revwalks, refs, the
 * index, and fetch/push over local paths, file:// and smart HTTP.
 *
 * Every libgit2 object a function acquires is held in a "scratch" box that
 * is a to-be-closed value on the Lua stack, so a raise (misuse, out of
 * memory) at any point frees what was held. Callbacks from libgit2 are pure
 * C: they record what happened in a payload and return, never calling Lua.
 */
#include "l_git.h"
#include "host.h"
#include "core/utf8.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* git_changes.c and git_tags.c may not be linked in: register their methods only if they are. */
int cdp_git_changes(lua_State *L) __attribute__((weak));
int cdp_git_reachable(lua_State *L) __attribute__((weak));
int cdp_git_tag_candidates(lua_State *L) __attribute__((weak));
void cdp_git_graph_free(struct cdp_graph *graph) __attribute__((weak));

#define SCRATCH "cdp.git.scratch"

/* ---------------------------------------------------------------- scratch */

struct scratch_item {
	void *p;
	void (*free)(void *);
};

struct scratch {
	size_t n, cap;
	struct scratch_item *items; /* freed in reverse order */
};

static void scratch_release(struct scratch *s, size_t mark)
{
	while (s->n > mark) {
		struct scratch_item *it = &s->items[--s->n];
		it->free(it->p);
	}
}

static int scratch_close(lua_State *L)
{
	struct scratch *s = luaL_checkudata(L, 1, SCRATCH);
	scratch_release(s, 0);
	free(s->items);
	s->items = NULL;
	s->cap = 0;
	return 0;
}

/* ------------------------------------------------------------------ boxes */

#define BOX "cdp.git.box"

struct box {
	void *p;
	void (*release)(void *);
};

static int box_close(lua_State *L)
{
	struct box *b = luaL_checkudata(L, 1, BOX);
	if (b->p) {
		b->release(b->p);
		free(b->p);
		b->p = NULL;
	}
	return 0;
}

void *cdp_git_box(lua_State *L, size_t size, void (*release)(void *))
{
	struct box *b = lua_newuserdatauv(L, sizeof *b, 0);
	b->p = NULL;
	b->release = release;
	luaL_setmetatable(L, BOX);
	b->p = calloc(1, size);
	if (!b->p)
		luaL_error(L, "not enough memory");
	lua_toclose(L, -1);
	return b->p;
}

/* [-0, +1, m] A new empty scratch box, marked to be closed with the caller. */
static struct scratch *scratch_new(lua_State *L)
{
	struct scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
	s->n = s->cap = 0;
	s->items = NULL;
	luaL_setmetatable(L, SCRATCH);
	lua_toclose(L, -1);
	return s;
}

/* [-0, +0, m] Hold P (freed with FREE); returns P. On allocation failure P is freed first. */
static void *hold(lua_State *L, struct scratch *s, void *p, void (*fn)(void *))
{
	if (p == NULL)
		return NULL;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct scratch_item *items = realloc(s->items, cap * sizeof *items);
		if (items == NULL) {
			fn(p);
			luaL_error(L, "not enough memory");
		}
		s->items = items;
		s->cap = cap;
	}
	s->items[s->n].p = p;
	s->items[s->n].free = fn;
	s->n++;
	return p;
}

static void free_object(void *p) { git_object_free(p); }
static void free_reference(void *p) { git_reference_free(p); }
static void free_revwalk(void *p) { git_revwalk_free(p); }
static void free_tree_entry(void *p) { git_tree_entry_free(p); }
static void free_index(void *p) { git_index_free(p); }
static void free_status_list(void *p) { git_status_list_free(p); }
static void free_signature(void *p) { git_signature_free(p); }
static void free_config(void *p) { git_config_free(p); }
static void free_remote(void *p) { git_remote_free(p); }
static void free_refspec(void *p) { git_refspec_free(p); }
static void free_reference_iterator(void *p) { git_reference_iterator_free(p); }
static void free_branch_iterator(void *p) { git_branch_iterator_free(p); }
static void free_strarray_box(void *p)
{
	git_strarray_dispose(p);
	free(p);
}

/* [-0, +0, m] A zeroed git_strarray for libgit2 to fill, disposed with the scratch. */
static git_strarray *hold_strarray(lua_State *L, struct scratch *s)
{
	git_strarray *a = calloc(1, sizeof *a);
	if (a == NULL)
		luaL_error(L, "not enough memory");
	return hold(L, s, a, free_strarray_box);
}

/* A growable list of owned strings. */
struct names {
	size_t n, cap;
	char **v;
};

static void free_names(void *p)
{
	struct names *ns = p;
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	free(ns);
}

static struct names *hold_names(lua_State *L, struct scratch *s)
{
	struct names *ns = calloc(1, sizeof *ns);
	if (ns == NULL)
		luaL_error(L, "not enough memory");
	return hold(L, s, ns, free_names);
}

static void names_add(lua_State *L, struct names *ns, const char *name)
{
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		char **v = realloc(ns->v, cap * sizeof *v);
		if (v == NULL)
			luaL_error(L, "not enough memory");
		ns->v = v;
		ns->cap = cap;
	}
	char *copy = strdup(name);
	if (copy == NULL)
		luaL_error(L, "not enough memory");
	ns->v[ns->n++] = copy;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ----------------------------------------------------------------- errors */

static const char *error_code(int err, const git_error *e)
{
	switch (err) {
	case GIT_ENOTFOUND:
		return "ENOTFOUND";
	case GIT_EEXISTS:
		return "EEXISTS";
	case GIT_EAMBIGUOUS:
		return "EAMBIGUOUS";
	case GIT_EAUTH:
		return "EAUTH";
	case GIT_ENONFASTFORWARD:
		return "ENONFASTFORWARD";
	case GIT_ECONFLICT:
	case GIT_EMERGECONFLICT:
	case GIT_EUNMERGED:
		return "ECONFLICT";
	case GIT_EUNBORNBRANCH:
		return "EUNBORN";
	case GIT_ECERTIFICATE:
		return "ENETWORK";
	default:
		break;
	}
	if (e) {
		switch (e->klass) {
		case GIT_ERROR_NET:
		case GIT_ERROR_HTTP:
		case GIT_ERROR_SSL:
		case GIT_ERROR_SSH:
			return "ENETWORK";
		default:
			break;
		}
	}
	return "EGIT";
}

/*
 * [-1, +1, m] Replace the string on top with a copy whose URL user
 * information ("https://user:token@host") reads "***", so a credential
 * written into a URL never reaches a message or a return value.
 */
static void redact_top(lua_State *L)
{
	size_t len;
	const char *s = lua_tolstring(L, -1, &len);
	if (strstr(s, "://") == NULL || memchr(s, '@', len) == NULL)
		return;
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	const char *p = s, *end = s + len;
	while (p < end) {
		const char *scheme = strstr(p, "://");
		if (scheme == NULL) {
			luaL_addlstring(&b, p, (size_t)(end - p));
			break;
		}
		const char *host = scheme + 3;
		const char *stop = host + strcspn(host, "/?# \t\n'\"<>");
		const char *at = NULL;
		for (const char *q = host; q < stop; q++)
			if (*q == '@')
				at = q;
		luaL_addlstring(&b, p, (size_t)(host - p));
		if (at) {
			luaL_addstring(&b, "***");
			p = at;
		} else {
			p = host;
		}
	}
	luaL_pushresult(&b);
	lua_remove(L, -2);
}

/* [-0, +1, m] Push URL with its user information redacted. */
static const char *push_redacted(lua_State *L, const char *url)
{
	lua_pushstring(L, url);
	redact_top(L);
	return lua_tostring(L, -1);
}

int cdp_git_push_error(lua_State *L, int err, const char *what)
{
	const git_error *e = git_error_last();
	const char *code = error_code(err, e);
	lua_pushnil(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	if (what) {
		luaL_addstring(&b, what);
		luaL_addstring(&b, ": ");
	}
	if (e && e->message && *e->message) {
		size_t n = strlen(e->message);
		while (n > 0 && (e->message[n - 1] == '\n' || e->message[n - 1] == ' '))
			n--;
		luaL_addlstring(&b, e->message, n);
	} else {
		char num[48];
		snprintf(num, sizeof num, "libgit2 error %d", err);
		luaL_addstring(&b, num);
	}
	luaL_pushresult(&b);
	redact_top(L);
	lua_pushstring(L, code);
	git_error_clear();
	return 3;
}

/* [-0, +3, m] Push nil, the formatted message, CODE. Returns 3. */
static int push_failure(lua_State *L, const char *code, const char *fmt, ...)
{
	va_list ap;
	lua_pushnil(L);
	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	redact_top(L);
	lua_pushstring(L, code);
	git_error_clear();
	return 3;
}

/* ------------------------------------------------------------- arguments */

struct cdp_repository *cdp_git_check_handle(lua_State *L, int arg)
{
	struct cdp_repository *r = luaL_checkudata(L, arg, CDP_GIT_REPOSITORY);
	if (r->repo == NULL)
		luaL_error(L, "attempt to use a closed %s", CDP_GIT_REPOSITORY);
	return r;
}

git_repository *cdp_git_check_repo(lua_State *L, int arg)
{
	return cdp_git_check_handle(L, arg)->repo;
}

/* [-0, +0, v] ARG as an options table index, or 0 when nil or absent. */
static int check_opts(lua_State *L, int arg)
{
	if (lua_isnoneornil(L, arg))
		return 0;
	luaL_checktype(L, arg, LUA_TTABLE);
	return lua_absindex(L, arg);
}

static int opt_bool(lua_State *L, int t, const char *key, int def)
{
	if (!t)
		return def;
	int v = def;
	int type = cdp_rawfield(L, t, key);
	if (type == LUA_TBOOLEAN)
		v = lua_toboolean(L, -1);
	else if (type != LUA_TNIL)
		luaL_error(L, "option '%s' must be a boolean, not %s", key, luaL_typename(L, -1));
	lua_pop(L, 1);
	return v;
}

/* The string stays anchored in table T (read raw: see cdp_rawfield). */
static const char *opt_string(lua_State *L, int t, const char *key, const char *def)
{
	if (!t)
		return def;
	const char *v = def;
	int type = cdp_rawfield(L, t, key);
	if (type == LUA_TSTRING)
		v = lua_tostring(L, -1);
	else if (type != LUA_TNIL)
		luaL_error(L, "option '%s' must be a string, not %s", key, luaL_typename(L, -1));
	lua_pop(L, 1);
	return v;
}

/* Returns 1 and sets *OUT when the field is set. */
static int opt_integer(lua_State *L, int t, const char *key, lua_Integer *out)
{
	if (!t)
		return 0;
	int type = cdp_rawfield(L, t, key);
	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	int isnum;
	*out = lua_tointegerx(L, -1, &isnum);
	if (!isnum)
		luaL_error(L, "option '%s' must be an integer, not %s", key, luaL_typename(L, -1));
	lua_pop(L, 1);
	return 1;
}

/*
 * [-0, +1, v] The string at ARG, or the strings of the array at ARG, as a
 * git_strarray whose vector lives in a userdata pushed on the stack.
 */
static void check_strarray(lua_State *L, int arg, git_strarray *out, const char *what)
{
	arg = lua_absindex(L, arg);
	if (lua_type(L, arg) == LUA_TSTRING) {
		char **v = lua_newuserdatauv(L, sizeof *v, 0);
		v[0] = (char *)lua_tostring(L, arg);
		out->strings = v;
		out->count = 1;
		return;
	}
	if (lua_type(L, arg) != LUA_TTABLE)
		luaL_error(L, "%s must be a string or an array of strings, not %s", what,
		           luaL_typename(L, arg));
	size_t n = lua_rawlen(L, arg);
	char **v = lua_newuserdatauv(L, (n ? n : 1) * sizeof *v, 0);
	for (size_t i = 0; i < n; i++) {
		if (lua_rawgeti(L, arg, (lua_Integer)i + 1) != LUA_TSTRING)
			luaL_error(L, "%s[%d] must be a string, not %s", what, (int)i + 1,
			           luaL_typename(L, -1));
		v[i] = (char *)lua_tostring(L, -1); /* anchored in the array */
		lua_pop(L, 1);
	}
	out->strings = v;
	out->count = n;
}

/* [-0, +0, v] The 40-hex object id at ARG. */
static void check_oid(lua_State *L, int arg, git_oid *out)
{
	size_t len;
	const char *s = luaL_checklstring(L, arg, &len);
	if (len != GIT_OID_HEXSZ || git_oid_fromstrn(out, s, len) != 0)
		luaL_argerror(L, arg, "expected a 40-character hex object id");
}

/* [-0, +1, m] */
static void push_oid(lua_State *L, const git_oid *oid)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_oid_tostr(hex, sizeof hex, oid);
	lua_pushstring(L, hex);
}

/* [-0, +1, m] A path without libgit2's trailing slash. */
static void push_path(lua_State *L, const char *p)
{
	size_t n = strlen(p);
	if (n > 1 && p[n - 1] == '/')
		n--;
	lua_pushlstring(L, p, n);
}

/* ------------------------------------------------------------- lookups */

/*
 * Resolve REV to an object peeled to TYPE (GIT_OBJECT_ANY: as named), held
 * in S. Unknown and malformed revisions are both GIT_ENOTFOUND.
 */
static int lookup_rev(lua_State *L, struct scratch *s, git_repository *repo, const char *rev,
                      git_object_t type, git_object **out)
{
	git_object *obj = NULL, *peeled = NULL;
	int err = git_revparse_single(&obj, repo, rev);
	if (err == GIT_EINVALIDSPEC)
		err = GIT_ENOTFOUND;
	/* libgit2 says "revspec 'HEAD' not found"; the reason is nothing was committed. */
	if (err == GIT_ENOTFOUND && git_repository_is_empty(repo) == 1)
		git_error_set_str(GIT_ERROR_REFERENCE, "the repository has no commits yet");
	else if (err == GIT_ENOTFOUND && strcmp(rev, "HEAD") == 0 && git_repository_head_unborn(repo) == 1)
		git_error_set_str(GIT_ERROR_REFERENCE, "HEAD is on a branch with no commits yet");
	if (err)
		return err;
	if (type == GIT_OBJECT_ANY) {
		*out = hold(L, s, obj, free_object);
		return 0;
	}
	err = git_object_peel(&peeled, obj, type);
	git_object_t had = git_object_type(obj);
	git_object_free(obj);
	if (err) {
		git_error_set(GIT_ERROR_OBJECT, "'%s' is a %s, not a %s", rev, git_object_type2string(had),
		              git_object_type2string(type));
		return GIT_ENOTFOUND;
	}
	*out = hold(L, s, peeled, free_object);
	return 0;
}

static int lookup_commit(lua_State *L, struct scratch *s, git_repository *repo, const char *rev,
                         git_commit **out)
{
	return lookup_rev(L, s, repo, rev, GIT_OBJECT_COMMIT, (git_object **)out);
}

void cdp_git_push_text(lua_State *L, const char *text, const char *encoding)
{
	if (text == NULL)
		text = "";
	size_t len = strlen(text);
	if (encoding == NULL && cdp_utf8_valid(text, len)) {
		lua_pushlstring(L, text, len);
		return;
	}
	/* Decoded into Lua's own buffer: nothing to free should pushing raise. */
	size_t max = cdp_utf8_decoded_max(len);
	luaL_Buffer b;
	char *out = luaL_buffinitsize(L, &b, max);
	luaL_pushresultsize(&b, cdp_utf8_decode(text, len, encoding, out, max));
}

/* [-0, +1, m] Push {name=, email=, time=, offset=}; names in ENCODING (NULL: UTF-8). */
static void push_signature(lua_State *L, const git_signature *sig, const char *encoding)
{
	lua_createtable(L, 0, 4);
	cdp_git_push_text(L, sig->name, encoding);
	lua_setfield(L, -2, "name");
	cdp_git_push_text(L, sig->email, encoding);
	lua_setfield(L, -2, "email");
	lua_pushinteger(L, (lua_Integer)sig->when.time);
	lua_setfield(L, -2, "time");
	lua_pushinteger(L, sig->when.offset);
	lua_setfield(L, -2, "offset");
}

/*
 * Signature from the {name, email, time?, offset?} table in field KEY of
 * options T, held in S; *OUT is NULL when the field is absent.
 */
static int opt_signature(lua_State *L, struct scratch *s, int t, const char *key,
                         git_signature **out)
{
	*out = NULL;
	if (!t)
		return 0;
	int type = cdp_rawfield(L, t, key);
	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	if (type != LUA_TTABLE)
		luaL_error(L, "option '%s' must be a table {name=, email=}, not %s", key,
		           luaL_typename(L, -1));
	int st = lua_gettop(L);
	const char *name = opt_string(L, st, "name", NULL);
	const char *email = opt_string(L, st, "email", NULL);
	if (name == NULL || email == NULL)
		luaL_error(L, "option '%s' needs a name and an email", key);
	lua_Integer when = 0, offset = 0;
	int has_time = opt_integer(L, st, "time", &when);
	opt_integer(L, st, "offset", &offset);
	git_signature *sig = NULL;
	int err = has_time ? git_signature_new(&sig, name, email, (git_time_t)when, (int)offset)
	                   : git_signature_now(&sig, name, email);
	if (err)
		return err;
	*out = hold(L, s, sig, free_signature);
	lua_pop(L, 1); /* the strings stay anchored through T */
	return 0;
}

/* The repository's configured identity, held in S; GIT_ENOTFOUND when none. */
static int default_signature(lua_State *L, struct scratch *s, git_repository *repo,
                             git_signature **out)
{
	git_signature *sig = NULL;
	int err = git_signature_default(&sig, repo);
	if (err)
		return err;
	*out = hold(L, s, sig, free_signature);
	return 0;
}

static int push_no_identity(lua_State *L)
{
	return push_failure(L, "ENOIDENTITY", "no git identity: set user.name and user.email");
}

/* ----------------------------------------------------- module functions */

static struct cdp_repository *new_repository(lua_State *L)
{
	struct cdp_repository *r = lua_newuserdatauv(L, sizeof *r, 0);
	r->repo = NULL;
	r->graph = NULL;
	luaL_setmetatable(L, CDP_GIT_REPOSITORY);
	return r;
}

/* git.version() -> "libgit2 1.5.1" */
static int git_version(lua_State *L)
{
	int major, minor, rev;
	git_libgit2_version(&major, &minor, &rev);
	lua_pushfstring(L, "libgit2 %d.%d.%d", major, minor, rev);
	return 1;
}

static int open_repo(lua_State *L, unsigned int flags, const char *verb)
{
	const char *path = luaL_checkstring(L, 1);
	struct cdp_repository *r = new_repository(L);
	const char *ceiling = (flags & GIT_REPOSITORY_OPEN_NO_SEARCH) ? NULL
	                                                               : getenv("GIT_CEILING_DIRECTORIES");
	git_repository *repo = NULL;
	int err = git_repository_open_ext(&repo, path, flags, ceiling);
	if (err) {
		lua_pushfstring(L, "%s %s", verb, path);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	r->repo = repo;
	return 1;
}

/* git.open(path) -> repo | nil, msg, code: the repository at exactly PATH. */
static int git_open(lua_State *L)
{
	return open_repo(L, GIT_REPOSITORY_OPEN_NO_SEARCH, "open");
}

/* git.discover(path) -> repo | nil, msg, code: PATH or the nearest parent that is one. */
static int git_discover(lua_State *L)
{
	return open_repo(L, 0, "discover a repository from");
}

/* git.init(path, {bare=false, initial_head="main"}) -> repo | nil, msg, code */
static int git_init(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int t = check_opts(L, 2);
	git_repository_init_options io;
	git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	io.flags = GIT_REPOSITORY_INIT_MKPATH;
	if (opt_bool(L, t, "bare", 0))
		io.flags |= GIT_REPOSITORY_INIT_BARE;
	io.initial_head = opt_string(L, t, "initial_head", "main");
	struct cdp_repository *r = new_repository(L);
	git_repository *repo = NULL;
	int err = git_repository_init_ext(&repo, path, &io);
	if (err) {
		lua_pushfstring(L, "init %s", path);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	r->repo = repo;
	return 1;
}

/* ------------------------------------------------------ remote plumbing */

/* Where a URL points: what decides whether a credential may go there. */
struct endpoint {
	char scheme[8]; /* lower case; "" when the URL has none (scp-like, a path) */
	char host[256]; /* lower case, without userinfo or IPv6 brackets */
	int port;
};

static void lower_into(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] + 32 : src[i]);
	dst[n] = '\0';
}

/* E for URL; 0 when URL has no scheme://host. */
static int parse_endpoint(const char *url, struct endpoint *e)
{
	memset(e, 0, sizeof *e);
	const char *sep = strstr(url, "://");
	if (!sep || sep == url || (size_t)(sep - url) >= sizeof e->scheme)
		return 0;
	lower_into(e->scheme, sizeof e->scheme, url, (size_t)(sep - url));
	const char *p = sep + 3, *end = p + strcspn(p, "/?#");
	for (const char *at = p; at < end; at++)
		if (*at == '@')
			p = at + 1; /* userinfo is not where the request goes */
	const char *host = p, *host_end;
	if (*p == '[') {
		host = p + 1;
		host_end = memchr(host, ']', (size_t)(end - host));
		if (!host_end)
			return 0;
		p = host_end + 1;
	} else {
		host_end = memchr(p, ':', (size_t)(end - p));
		if (!host_end)
			host_end = end;
		p = host_end;
	}
	lower_into(e->host, sizeof e->host, host, (size_t)(host_end - host));
	e->port = *p == ':' && p + 1 < end ? atoi(p + 1)
	          : strcmp(e->scheme, "https") == 0 ? 443
	          : strcmp(e->scheme, "http") == 0  ? 80
	                                            : 0;
	return 1;
}

static int same_endpoint(const struct endpoint *a, const struct endpoint *b)
{
	return strcmp(a->scheme, b->scheme) == 0 && strcmp(a->host, b->host) == 0 && a->port == b->port;
}

/* Plain http may carry a token only to this machine. */
static int is_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

/* What the credential and push callbacks saw; they never call into Lua. */
struct remote_op {
	const char *username, *token;
	int network; /* a URL that is not a local path or file:// */
	struct endpoint remote; /* the only place the token may go */
	int cred_calls;
	int auth_failed;
	int rejected;
	char ref[256];
	char reason[256];
	const char *url;     /* redacted, for the kill tests' "push" point */
	int sent;            /* objects started going out */
	size_t said_len;
	char said[1024];     /* what the server printed (a hook's own reason), the first 1 KiB */
	char refused[1280]; /* why a credential was withheld, when it was */
};

static int credentials_cb(git_credential **out, const char *url, const char *username_from_url,
                          unsigned int allowed_types, void *payload)
{
	struct remote_op *op = payload;
	(void)username_from_url;
	if (op->token == NULL)
		return GIT_PASSTHROUGH; /* libgit2 then fails with GIT_EAUTH */
	struct endpoint asked;
	if (!parse_endpoint(url, &asked) ||
	    (strcmp(asked.scheme, "https") != 0 && strcmp(asked.scheme, "http") != 0))
		return GIT_PASSTHROUGH; /* ssh and the rest: the token is never a password there */
	if (!same_endpoint(&asked, &op->remote) ||
	    (strcmp(asked.scheme, "http") == 0 && !is_loopback(asked.host))) {
		snprintf(op->refused, sizeof op->refused,
		         "%s://%s:%d asked for the credentials of %s://%s:%d, which cdp gives to no other "
		         "host, and over plain http only to a loopback address",
		         asked.scheme, asked.host, asked.port, op->remote.scheme, op->remote.host,
		         op->remote.port);
		git_error_set_str(GIT_ERROR_HTTP, op->refused);
		return GIT_EAUTH;
	}
	/* Asked again: the server refused what we gave. Give up instead of looping. */
	if (op->cred_calls++ > 0 || !(allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT)) {
		op->auth_failed = 1;
		git_error_set_str(GIT_ERROR_HTTP, "authentication failed");
		return GIT_EAUTH;
	}
	return git_credential_userpass_plaintext_new(out, op->username, op->token);
}

static int push_update_reference_cb(const char *refname, const char *status, void *payload)
{
	struct remote_op *op = payload;
	if (status && !op->rejected) {
		op->rejected = 1;
		snprintf(op->ref, sizeof op->ref, "%s", refname);
		snprintf(op->reason, sizeof op->reason, "%s", status);
	}
	return 0;
}

/* The server's messages ("remote: ..." in git): a hook's own reason is there. */
static int sideband_cb(const char *str, int len, void *payload)
{
	struct remote_op *op = payload;
	size_t room = sizeof op->said - 1 - op->said_len;
	size_t n = len > 0 ? (size_t)len : 0;
	if (n > room)
		n = room;
	memcpy(op->said + op->said_len, str, n);
	op->said_len += n;
	op->said[op->said_len] = '\0';
	return 0;
}

static int push_transfer_cb(unsigned int current, unsigned int total, size_t bytes, void *payload)
{
	struct remote_op *op = payload;
	(void)current, (void)total, (void)bytes;
	if (!op->sent++)
		cdp_test_point("push", op->url);
	return 0;
}

static void remote_callbacks(git_remote_callbacks *cb, struct remote_op *op)
{
	cb->credentials = credentials_cb;
	cb->push_update_reference = push_update_reference_cb;
	cb->sideband_progress = sideband_cb;
	cb->push_transfer_progress = push_transfer_cb;
	cb->payload = op;
}

/*
 * [-0, +1, m] What the server said, as one line: its lines joined with "; ",
 * blank lines, progress and git's generic advice left out. Empty when it said
 * nothing worth showing.
 */
static const char *push_remote_said(lua_State *L, const struct remote_op *op)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	const char *p = op->said, *end = op->said + op->said_len;
	int lines = 0;
	while (p < end) {
		size_t n = strcspn(p, "\r\n");
		const char *line = p, *stop = p + n;
		p = stop < end ? stop + 1 : end;
		while (line < stop && (*line == ' ' || *line == '\t'))
			line++;
		while (stop > line && (stop[-1] == ' ' || stop[-1] == '\t'))
			stop--;
		if (stop == line || strncmp(line, "Resolving deltas", 16) == 0 ||
		    strncmp(line, "Counting objects", 16) == 0)
			continue;
		if (lines++)
			luaL_addstring(&b, "; ");
		luaL_addlstring(&b, line, (size_t)(stop - line));
	}
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

/*
 * A lock file a push found in the remote, named in TEXT as git and libgit2
 * name it ("'/srv/r.git/refs/tags/v1.lock'"): copied into OUT, or 0.
 */
static int stale_lock_in(const char *text, char *out, size_t size)
{
	for (const char *q = strstr(text, ".lock'"); q; q = strstr(q + 1, ".lock'")) {
		const char *open = q;
		while (open > text && open[-1] != '\'')
			open--;
		if (open == text)
			continue;
		size_t n = (size_t)(q + 5 - open);
		if (n + 1 > size)
			return 0;
		memcpy(out, open, n);
		out[n] = '\0';
		return 1;
	}
	return 0;
}

/* [-0, +3, m] A push that found a lock a killed push left: say what it is and what to do. */
static int push_locked(lua_State *L, const char *url, const char *lock)
{
	return push_failure(L, "ELOCKED", "push to %s: a previous push was interrupted; remove %s if no git "
	                    "process is running", url, lock);
}

/* [-0, +3, m] The failure of a remote operation, with the token scrubbed. */
static int push_remote_error(lua_State *L, struct remote_op *op, int err, const char *what)
{
	const git_error *e = git_error_last();
	if (op->refused[0]) {
		push_failure(L, "EAUTH", "%s: %s", what, op->refused);
	} else if (op->token && e && e->message && strstr(e->message, "redirect")) {
		push_failure(L, "EREDIRECT", "%s: the server redirects elsewhere (%s); cdp does not follow "
		             "redirects with credentials: set the remote to the URL it redirects to",
		             what, e->message);
	} else if (op->auth_failed || err == GIT_EAUTH) {
		push_failure(L, "EAUTH", "%s: authentication failed", what);
	} else if (op->network && e && e->klass == GIT_ERROR_OS) {
		/* connect(2) and friends fail as OS errors; to a caller it is the network. */
		cdp_git_push_error(L, err, what);
		lua_pushliteral(L, "ENETWORK");
		lua_replace(L, -2);
	} else {
		cdp_git_push_error(L, err, what);
	}
	if (op->token && *op->token) {
		luaL_gsub(L, lua_tostring(L, -2), op->token, "***");
		lua_replace(L, -3);
	}
	return 3;
}

/* [-0, +0|3, m] The only place OP's token may go: URL's scheme, host and port.
 * A token for plain http beyond this machine is refused before anything
 * connects (nil, msg, "EINSECURE" pushed, 3 returned). */
static int remote_allow(lua_State *L, struct remote_op *op, const char *url, const char *what)
{
	parse_endpoint(url, &op->remote);
	if (op->token && strcmp(op->remote.scheme, "http") == 0 && !is_loopback(op->remote.host))
		return push_failure(L, "EINSECURE", "%s: a token is sent only over https:// (plain http:// "
		                    "only to a loopback address)", what);
	return 0;
}

/* Off-site redirects are followed only without credentials. */
static git_remote_redirect_t redirects_for(const struct remote_op *op)
{
	return op->token ? GIT_REMOTE_REDIRECT_NONE : GIT_REMOTE_REDIRECT_INITIAL;
}

static int is_network_url(const char *s)
{
	if (strstr(s, "://"))
		return strncmp(s, "file://", 7) != 0;
	const char *colon = strchr(s, ':'), *slash = strchr(s, '/');
	return colon && (slash == NULL || colon < slash); /* scp-like host:path */
}

static int looks_like_url(const char *s)
{
	return strchr(s, '/') || strchr(s, ':') || s[0] == '.' || access(s, F_OK) == 0;
}

/* A configured remote by NAME, or an anonymous one for a URL or path; held in S. */
static int lookup_remote(lua_State *L, struct scratch *s, git_repository *repo, const char *target,
                         git_remote **out)
{
	git_remote *remote = NULL;
	int err = git_remote_lookup(&remote, repo, target);
	if ((err == GIT_ENOTFOUND || err == GIT_EINVALIDSPEC) && looks_like_url(target))
		err = git_remote_create_anonymous(&remote, repo, target);
	if (err)
		return err;
	*out = hold(L, s, remote, free_remote);
	return 0;
}

/* git.clone(source, dest, {bare, branch, checkout, token, username}) -> repo | nil, msg, code */
static int git_clone_fn(lua_State *L)
{
	const char *source = luaL_checkstring(L, 1);
	const char *dest = luaL_checkstring(L, 2);
	int t = check_opts(L, 3);
	struct remote_op op;
	memset(&op, 0, sizeof op);
	op.token = opt_string(L, t, "token", NULL);
	op.username = opt_string(L, t, "username", "x-access-token");
	git_clone_options co;
	git_clone_options_init(&co, GIT_CLONE_OPTIONS_VERSION);
	co.bare = opt_bool(L, t, "bare", 0);
	co.checkout_branch = opt_string(L, t, "branch", NULL);
	if (!opt_bool(L, t, "checkout", 1))
		co.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;
	/* Local sources share objects by hard links, file:// included. */
	op.network = is_network_url(source);
	int local = !op.network;
	co.local = local ? GIT_CLONE_LOCAL : GIT_CLONE_LOCAL_AUTO;
	remote_callbacks(&co.fetch_opts.callbacks, &op);
	co.fetch_opts.follow_redirects = redirects_for(&op);

	lua_pushfstring(L, "clone %s into %s", push_redacted(L, source), dest);
	const char *what = lua_tostring(L, -1);
	if (remote_allow(L, &op, source, what))
		return 3;
	struct cdp_repository *r = new_repository(L);
	git_repository *repo = NULL;
	int err = git_clone(&repo, source, dest, &co);
	if (err)
		return push_remote_error(L, &op, err, what);
	r->repo = repo;
	return 1;
}

/* --------------------------------------------------- repository methods */

static int repo_close(lua_State *L)
{
	struct cdp_repository *r = luaL_checkudata(L, 1, CDP_GIT_REPOSITORY);
	if (r->repo) {
		git_repository_free(r->repo);
		r->repo = NULL;
	}
	if (r->graph && cdp_git_graph_free) {
		cdp_git_graph_free(r->graph);
		r->graph = NULL;
	}
	return 0;
}

static int repo_tostring(lua_State *L)
{
	struct cdp_repository *r = luaL_checkudata(L, 1, CDP_GIT_REPOSITORY);
	if (r->repo == NULL) {
		lua_pushfstring(L, "%s (closed)", CDP_GIT_REPOSITORY);
		return 1;
	}
	const char *p = git_repository_workdir(r->repo);
	push_path(L, p ? p : git_repository_path(r->repo));
	lua_pushfstring(L, "%s (%s)", CDP_GIT_REPOSITORY, lua_tostring(L, -1));
	return 1;
}

/* repo:path() -> the git directory */
static int repo_path(lua_State *L)
{
	push_path(L, git_repository_path(cdp_git_check_repo(L, 1)));
	return 1;
}

/* repo:workdir() -> the working tree, or nil for a bare repository */
static int repo_workdir(lua_State *L)
{
	const char *p = git_repository_workdir(cdp_git_check_repo(L, 1));
	if (p == NULL)
		lua_pushnil(L);
	else
		push_path(L, p);
	return 1;
}

static int repo_is_bare(lua_State *L)
{
	lua_pushboolean(L, git_repository_is_bare(cdp_git_check_repo(L, 1)));
	return 1;
}

/* repo:head() -> oid of HEAD's commit | nil, msg, "EUNBORN" */
static int repo_head(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	struct scratch *s = scratch_new(L);
	git_reference *ref = NULL;
	git_object *commit = NULL;
	int err = git_repository_head(&ref, repo);
	if (err == GIT_EUNBORNBRANCH || err == GIT_ENOTFOUND)
		return push_failure(L, "EUNBORN", "HEAD of %s has no commit yet",
		                    git_repository_path(repo));
	if (err)
		return cdp_git_push_error(L, err, "HEAD");
	hold(L, s, ref, free_reference);
	err = git_reference_peel(&commit, ref, GIT_OBJECT_COMMIT);
	if (err)
		return cdp_git_push_error(L, err, "HEAD");
	hold(L, s, commit, free_object);
	push_oid(L, git_object_id(commit));
	return 1;
}

/* repo:head_ref() -> "refs/heads/main" | nil when HEAD is detached */
static int repo_head_ref(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	struct scratch *s = scratch_new(L);
	git_reference *ref = NULL;
	int err = git_reference_lookup(&ref, repo, "HEAD");
	if (err)
		return cdp_git_push_error(L, err, "HEAD");
	hold(L, s, ref, free_reference);
	if (git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC)
		lua_pushstring(L, git_reference_symbolic_target(ref));
	else
		lua_pushnil(L);
	return 1;
}

/* repo:resolve(rev) -> commit oid | nil, msg, code */
static int repo_resolve(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *rev = luaL_checkstring(L, 2);
	struct scratch *s = scratch_new(L);
	git_commit *c;
	int err = lookup_commit(L, s, repo, rev, &c);
	if (err) {
		lua_pushfstring(L, "resolve '%s'", rev);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	push_oid(L, git_commit_id(c));
	return 1;
}

/* repo:commit(rev) -> { id, tree, summary, message, body, author, committer, time, parents } */
static int repo_commit(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *rev = luaL_checkstring(L, 2);
	struct scratch *s = scratch_new(L);
	git_commit *c;
	int err = lookup_commit(L, s, repo, rev, &c);
	if (err) {
		lua_pushfstring(L, "commit '%s'", rev);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	lua_createtable(L, 0, 9);
	push_oid(L, git_commit_id(c));
	lua_setfield(L, -2, "id");
	push_oid(L, git_commit_tree_id(c));
	lua_setfield(L, -2, "tree");
	const char *encoding = git_commit_message_encoding(c);
	cdp_git_push_text(L, git_commit_summary(c), encoding);
	lua_setfield(L, -2, "summary");
	cdp_git_push_text(L, git_commit_message(c), encoding);
	lua_setfield(L, -2, "message");
	cdp_git_push_text(L, git_commit_body(c), encoding);
	lua_setfield(L, -2, "body");
	push_signature(L, git_commit_author(c), encoding);
	lua_setfield(L, -2, "author");
	push_signature(L, git_commit_committer(c), encoding);
	lua_setfield(L, -2, "committer");
	lua_pushinteger(L, (lua_Integer)git_commit_time(c));
	lua_setfield(L, -2, "time");
	unsigned int n = git_commit_parentcount(c);
	lua_createtable(L, (int)n, 0);
	for (unsigned int i = 0; i < n; i++) {
		push_oid(L, git_commit_parent_id(c, i));
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "parents");
	return 1;
}

/* Push (HIDE=0) or hide every revision in the string or array at IDX. */
static int walk_add(lua_State *L, struct scratch *s, git_repository *repo, git_revwalk *walk,
                    int idx, int hide, const char *key)
{
	git_strarray revs;
	check_strarray(L, idx, &revs, key);
	for (size_t i = 0; i < revs.count; i++) {
		git_commit *c;
		size_t mark = s->n;
		int err = lookup_commit(L, s, repo, revs.strings[i], &c);
		if (err) {
			lua_pushfstring(L, "walk %s '%s'", key, revs.strings[i]);
			return cdp_git_push_error(L, err, lua_tostring(L, -1));
		}
		err = hide ? git_revwalk_hide(walk, git_commit_id(c)) : git_revwalk_push(walk, git_commit_id(c));
		scratch_release(s, mark);
		if (err) {
			lua_pushfstring(L, "walk %s '%s'", key, revs.strings[i]);
			return cdp_git_push_error(L, err, lua_tostring(L, -1));
		}
	}
	lua_pop(L, 1); /* the vector */
	return 0;
}

/* repo:walk{ from, hide, first_parent, topo, limit } -> { oid, ... } newest first */
static int repo_walk(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	int t = check_opts(L, 2);
	int first_parent = opt_bool(L, t, "first_parent", 0);
	int topo = opt_bool(L, t, "topo", 1);
	lua_Integer limit = -1;
	if (opt_integer(L, t, "limit", &limit) && limit < 0)
		luaL_error(L, "option 'limit' must not be negative");
	struct scratch *s = scratch_new(L);
	git_revwalk *walk = NULL;
	int err = git_revwalk_new(&walk, repo);
	if (err)
		return cdp_git_push_error(L, err, "walk");
	hold(L, s, walk, free_revwalk);
	git_revwalk_sorting(walk, topo ? GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME : GIT_SORT_TIME);
	if (first_parent)
		git_revwalk_simplify_first_parent(walk);

	if (t)
		cdp_rawfield(L, t, "from");
	else
		lua_pushnil(L);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_pushliteral(L, "HEAD");
	}
	if (walk_add(L, s, repo, walk, -1, 0, "from"))
		return 3;
	lua_pop(L, 1);
	if (t && cdp_rawfield(L, t, "hide") != LUA_TNIL && walk_add(L, s, repo, walk, -1, 1, "hide"))
		return 3;
	if (t)
		lua_pop(L, 1);

	lua_newtable(L);
	git_oid oid;
	lua_Integer n = 0;
	while ((limit < 0 || n < limit) && (err = git_revwalk_next(&oid, walk)) == 0) {
		push_oid(L, &oid);
		lua_rawseti(L, -2, ++n);
	}
	if (err && err != GIT_ITEROVER)
		return cdp_git_push_error(L, err, "walk");
	return 1;
}

/* The tree of REV (a commit, tag or tree), held in S. */
static int lookup_tree(lua_State *L, struct scratch *s, git_repository *repo, const char *rev,
                       git_tree **out)
{
	return lookup_rev(L, s, repo, rev, GIT_OBJECT_TREE, (git_object **)out);
}

static int is_root_path(const char *path)
{
	return path[0] == '\0' || strcmp(path, ".") == 0 || strcmp(path, "/") == 0;
}

/* repo:tree_entry(rev, path) -> oid, type, mode | nil (no such path) | nil, msg, code */
static int repo_tree_entry(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *rev = luaL_checkstring(L, 2);
	const char *path = luaL_checkstring(L, 3);
	struct scratch *s = scratch_new(L);
	git_tree *tree;
	int err = lookup_tree(L, s, repo, rev, &tree);
	if (err) {
		lua_pushfstring(L, "tree_entry '%s'", rev);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	if (is_root_path(path)) {
		push_oid(L, git_tree_id(tree));
		lua_pushliteral(L, "tree");
		lua_pushinteger(L, GIT_FILEMODE_TREE);
		return 3;
	}
	git_tree_entry *entry = NULL;
	err = git_tree_entry_bypath(&entry, tree, path);
	if (err == GIT_ENOTFOUND) {
		git_error_clear();
		lua_pushnil(L);
		return 1;
	}
	if (err) {
		lua_pushfstring(L, "tree_entry '%s:%s'", rev, path);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	hold(L, s, entry, free_tree_entry);
	push_oid(L, git_tree_entry_id(entry));
	lua_pushstring(L, git_object_type2string(git_tree_entry_type(entry)));
	lua_pushinteger(L, git_tree_entry_filemode(entry));
	return 3;
}

/* What a tree walk collects of the symbolic links it passes; never raises. */
struct link_walk {
	struct names *paths;
	git_oid *oids;
	size_t cap;
	int oom;
};

static int link_walk_cb(const char *root, const git_tree_entry *entry, void *payload)
{
	struct link_walk *w = payload;
	if (git_tree_entry_filemode(entry) != GIT_FILEMODE_LINK)
		return 0;
	struct names *ns = w->paths;
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		char **v = realloc(ns->v, cap * sizeof *v);
		if (v == NULL)
			return w->oom = 1, -1;
		ns->v = v;
		ns->cap = cap;
	}
	if (w->cap <= ns->n) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		git_oid *o = realloc(w->oids, cap * sizeof *o);
		if (o == NULL)
			return w->oom = 1, -1;
		w->oids = o;
		w->cap = cap;
	}
	const char *name = git_tree_entry_name(entry);
	size_t rl = strlen(root), nl = strlen(name);
	char *path = malloc(rl + nl + 1);
	if (path == NULL)
		return w->oom = 1, -1;
	memcpy(path, root, rl);
	memcpy(path + rl, name, nl + 1);
	git_oid_cpy(&w->oids[ns->n], git_tree_entry_id(entry));
	ns->v[ns->n++] = path;
	return 0;
}

/*
 * repo:symlinks(rev) -> { {path=, target=}, ... } | nil, msg, code
 * Every symbolic link the commit's tree holds, in tree order, with the path it
 * names: what a checkout of that commit would make links of.
 */
static int repo_symlinks(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *rev = luaL_checkstring(L, 2);
	struct scratch *s = scratch_new(L);
	git_tree *tree;
	int err = lookup_tree(L, s, repo, rev, &tree);
	if (err) {
		lua_pushfstring(L, "symlinks '%s'", rev);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	struct link_walk w = {hold_names(L, s), NULL, 0, 0};
	err = git_tree_walk(tree, GIT_TREEWALK_PRE, link_walk_cb, &w);
	git_oid *oids = hold(L, s, w.oids, free); /* raises after freeing them when out of memory */
	if (w.oom)
		return luaL_error(L, "not enough memory");
	if (err) {
		lua_pushfstring(L, "symlinks '%s'", rev);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	lua_createtable(L, (int)w.paths->n, 0);
	for (size_t i = 0; i < w.paths->n; i++) {
		git_blob *blob = NULL;
		err = git_blob_lookup(&blob, repo, &oids[i]);
		if (err) {
			lua_pushfstring(L, "symlinks '%s': %s", rev, w.paths->v[i]);
			return cdp_git_push_error(L, err, lua_tostring(L, -1));
		}
		hold(L, s, blob, free_object);
		lua_createtable(L, 0, 2);
		lua_pushstring(L, w.paths->v[i]);
		lua_setfield(L, -2, "path");
		lua_pushlstring(L, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
		lua_setfield(L, -2, "target");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* repo:read_blob(rev, path) -> content | nil, msg, code */
static int repo_read_blob(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *rev = luaL_checkstring(L, 2);
	const char *path = luaL_checkstring(L, 3);
	struct scratch *s = scratch_new(L);
	lua_pushfstring(L, "read_blob '%s:%s'", rev, path);
	const char *what = lua_tostring(L, -1);
	git_tree *tree;
	int err = lookup_tree(L, s, repo, rev, &tree);
	if (err)
		return cdp_git_push_error(L, err, what);
	git_tree_entry *entry = NULL;
	err = git_tree_entry_bypath(&entry, tree, path);
	if (err)
		return cdp_git_push_error(L, err, what);
	hold(L, s, entry, free_tree_entry);
	if (git_tree_entry_type(entry) != GIT_OBJECT_BLOB)
		return push_failure(L, "ENOTFOUND", "%s: '%s' is a %s, not a file", what, path,
		                    git_object_type2string(git_tree_entry_type(entry)));
	/* A link's blob is the path it names, never content to use as a file's. */
	if (git_tree_entry_filemode(entry) == GIT_FILEMODE_LINK)
		return push_failure(L, "ELOOP", "%s: '%s' is a symbolic link, not a file", what, path);
	git_object *blob = NULL;
	err = git_tree_entry_to_object(&blob, repo, entry);
	if (err)
		return cdp_git_push_error(L, err, what);
	hold(L, s, blob, free_object);
	lua_pushlstring(L, git_blob_rawcontent((git_blob *)blob), (size_t)git_blob_rawsize((git_blob *)blob));
	return 1;
}

/* repo:tree_list(rev, path?) -> { {name, oid, type, mode}, ... } in tree order | nil (no such path) | nil, msg, code */
static int repo_tree_list(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *rev = luaL_checkstring(L, 2);
	const char *path = luaL_optstring(L, 3, "");
	struct scratch *s = scratch_new(L);
	lua_pushfstring(L, "tree_list '%s:%s'", rev, path);
	const char *what = lua_tostring(L, -1);
	git_tree *tree;
	int err = lookup_tree(L, s, repo, rev, &tree);
	if (err)
		return cdp_git_push_error(L, err, what);
	git_object *sub = NULL;
	if (!is_root_path(path)) {
		if ((err = git_object_lookup_bypath(&sub, (git_object *)tree, path, GIT_OBJECT_ANY)) == GIT_ENOTFOUND) {
			git_error_clear();
			lua_pushnil(L);
			return 1;
		} else if (err) {
			return cdp_git_push_error(L, err, what);
		}
		hold(L, s, sub, free_object);
		if (git_object_type(sub) != GIT_OBJECT_TREE)
			return push_failure(L, "ENOTDIR", "%s: '%s' is a %s, not a folder", what, path,
			                    git_object_type2string(git_object_type(sub)));
		tree = (git_tree *)sub;
	}
	size_t n = git_tree_entrycount(tree);
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		lua_createtable(L, 0, 4);
		lua_pushstring(L, git_tree_entry_name(e));
		lua_setfield(L, -2, "name");
		push_oid(L, git_tree_entry_id(e));
		lua_setfield(L, -2, "oid");
		lua_pushstring(L, git_object_type2string(git_tree_entry_type(e)));
		lua_setfield(L, -2, "type");
		lua_pushinteger(L, git_tree_entry_filemode(e));
		lua_setfield(L, -2, "mode");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* repo:blob_create(content) -> oid | nil, msg, code: the blob is written, nothing refers to it yet */
static int repo_blob_create(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	size_t len;
	const char *data = luaL_checklstring(L, 2, &len);
	git_oid oid;
	int err = git_blob_create_from_buffer(&oid, repo, data, len);
	if (err)
		return cdp_git_push_error(L, err, "blob_create");
	push_oid(L, &oid);
	return 1;
}

static void free_treebuilder(void *p) { git_treebuilder_free(p); }

/*
 * repo:tree_create{ {name=, oid=, type="blob"|"tree"}, ... } -> oid | nil, msg, code
 * One level of a tree (files 100644, folders made by earlier calls); the order
 * of ENTRIES does not matter, git's is used.
 */
static int repo_tree_create(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	struct scratch *s = scratch_new(L);
	git_treebuilder *tb = NULL;
	int err = git_treebuilder_new(&tb, repo, NULL);
	if (err)
		return cdp_git_push_error(L, err, "tree_create");
	hold(L, s, tb, free_treebuilder);
	lua_Integer n = luaL_len(L, 2);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
			luaL_error(L, "tree_create: entry %d must be a table {name=, oid=, type=}", (int)i);
		int e = lua_gettop(L);
		const char *name = opt_string(L, e, "name", NULL);
		const char *hex = opt_string(L, e, "oid", NULL);
		const char *type = opt_string(L, e, "type", "blob");
		git_oid oid;
		if (name == NULL || *name == '\0' || strchr(name, '/') != NULL)
			luaL_error(L, "tree_create: entry %d needs a name without '/'", (int)i);
		if (hex == NULL || strlen(hex) != GIT_OID_HEXSZ || git_oid_fromstr(&oid, hex) != 0)
			luaL_error(L, "tree_create: entry %d needs a 40-character hex oid", (int)i);
		git_filemode_t mode = GIT_FILEMODE_BLOB;
		if (strcmp(type, "blob") == 0)
			mode = GIT_FILEMODE_BLOB;
		else if (strcmp(type, "tree") == 0)
			mode = GIT_FILEMODE_TREE;
		else
			luaL_error(L, "tree_create: entry %d: type must be \"blob\" or \"tree\", not \"%s\"", (int)i, type);
		err = git_treebuilder_insert(NULL, tb, name, &oid, mode);
		if (err) {
			lua_pushfstring(L, "tree_create: %s", name);
			return cdp_git_push_error(L, err, lua_tostring(L, -1));
		}
		lua_pop(L, 1);
	}
	git_oid oid;
	err = git_treebuilder_write(&oid, tb);
	if (err)
		return cdp_git_push_error(L, err, "tree_create");
	push_oid(L, &oid);
	return 1;
}

/* repo:tags{ pattern = "glob" } -> { {name, target, peeled, annotated, message}, ... } by name */
static int repo_tags(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	int t = check_opts(L, 2);
	const char *pattern = opt_string(L, t, "pattern", "*");
	struct scratch *s = scratch_new(L);
	git_strarray *names = hold_strarray(L, s);
	int err = git_tag_list_match(names, pattern, repo);
	if (err)
		return cdp_git_push_error(L, err, "tags");
	if (names->count > 1) /* an empty list may have no array at all */
		qsort(names->strings, names->count, sizeof *names->strings, compare_strings);
	lua_createtable(L, (int)names->count, 0);
	lua_Integer n = 0;
	for (size_t i = 0; i < names->count; i++) {
		size_t mark = s->n;
		const char *name = names->strings[i];
		lua_pushfstring(L, "refs/tags/%s", name);
		git_reference *ref = NULL, *resolved = NULL;
		err = git_reference_lookup(&ref, repo, lua_tostring(L, -1));
		lua_pop(L, 1);
		if (err)
			return cdp_git_push_error(L, err, name);
		hold(L, s, ref, free_reference);
		err = git_reference_resolve(&resolved, ref);
		if (err)
			return cdp_git_push_error(L, err, name);
		hold(L, s, resolved, free_reference);
		git_object *obj = NULL, *peeled = NULL;
		err = git_object_lookup(&obj, repo, git_reference_target(resolved), GIT_OBJECT_ANY);
		if (err)
			return cdp_git_push_error(L, err, name);
		hold(L, s, obj, free_object);

		lua_createtable(L, 0, 5);
		lua_pushstring(L, name);
		lua_setfield(L, -2, "name");
		push_oid(L, git_object_id(obj));
		lua_setfield(L, -2, "target");
		int annotated = git_object_type(obj) == GIT_OBJECT_TAG;
		lua_pushboolean(L, annotated);
		lua_setfield(L, -2, "annotated");
		if (annotated) {
			cdp_git_push_text(L, git_tag_message((git_tag *)obj), NULL);
			lua_setfield(L, -2, "message");
		}
		if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) == 0) {
			hold(L, s, peeled, free_object);
			push_oid(L, git_object_id(peeled));
			lua_setfield(L, -2, "peeled");
		} else {
			git_error_clear(); /* a tag of a tree or blob: no peeled commit */
		}
		lua_rawseti(L, -2, ++n);
		scratch_release(s, mark);
	}
	return 1;
}

/* repo:tag_create(name, rev, message, {tagger}) -> tag oid | nil, msg, code */
static int repo_tag_create(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *name = luaL_checkstring(L, 2);
	const char *rev = luaL_checkstring(L, 3);
	const char *message = luaL_optstring(L, 4, NULL);
	int t = check_opts(L, 5);
	struct scratch *s = scratch_new(L);
	lua_pushfstring(L, "tag %s", name);
	const char *what = lua_tostring(L, -1);

	/* Never force: an existing tag is reported with the commit it names. */
	git_reference *existing = NULL;
	lua_pushfstring(L, "refs/tags/%s", name);
	int err = git_reference_lookup(&existing, repo, lua_tostring(L, -1));
	if (err == 0) {
		git_object *at = NULL;
		hold(L, s, existing, free_reference);
		if (git_reference_peel(&at, existing, GIT_OBJECT_COMMIT) == 0) {
			hold(L, s, at, free_object);
			push_oid(L, git_object_id(at));
		} else {
			git_error_clear();
			lua_pushliteral(L, "a non-commit object");
		}
		return push_failure(L, "EEXISTS", "%s already exists at %s", what, lua_tostring(L, -1));
	}
	if (err != GIT_ENOTFOUND)
		return cdp_git_push_error(L, err, what);
	git_error_clear();

	git_commit *target;
	err = lookup_commit(L, s, repo, rev, &target);
	if (err) {
		lua_pushfstring(L, "%s: rev '%s'", what, rev);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	git_oid oid;
	if (message == NULL) {
		err = git_tag_create_lightweight(&oid, repo, name, (git_object *)target, 0);
	} else {
		git_signature *tagger;
		err = opt_signature(L, s, t, "tagger", &tagger);
		if (err)
			return cdp_git_push_error(L, err, what);
		if (tagger == NULL && default_signature(L, s, repo, &tagger) != 0)
			return push_no_identity(L);
		err = git_tag_create(&oid, repo, name, (git_object *)target, tagger, message, 0);
	}
	if (err)
		return cdp_git_push_error(L, err, what);
	push_oid(L, &oid);
	return 1;
}

/* repo:tag_delete(name) -> true | nil, msg, code */
static int repo_tag_delete(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *name = luaL_checkstring(L, 2);
	int err = git_tag_delete(repo, name);
	if (err) {
		lua_pushfstring(L, "delete tag %s", name);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* repo:branches() -> { {name, target, head}, ... } local branches by name */
static int repo_branches(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	struct scratch *s = scratch_new(L);
	struct names *names = hold_names(L, s);
	git_branch_iterator *it = NULL;
	int err = git_branch_iterator_new(&it, repo, GIT_BRANCH_LOCAL);
	if (err)
		return cdp_git_push_error(L, err, "branches");
	hold(L, s, it, free_branch_iterator);
	git_reference *ref;
	git_branch_t type;
	while ((err = git_branch_next(&ref, &type, it)) == 0) {
		hold(L, s, ref, free_reference);
		names_add(L, names, git_reference_name(ref));
		scratch_release(s, s->n - 1);
	}
	if (err != GIT_ITEROVER)
		return cdp_git_push_error(L, err, "branches");
	if (names->n > 1) /* an empty list may have no array at all */
		qsort(names->v, names->n, sizeof *names->v, compare_strings);
	lua_createtable(L, (int)names->n, 0);
	for (size_t i = 0; i < names->n; i++) {
		size_t mark = s->n;
		err = git_reference_lookup(&ref, repo, names->v[i]);
		if (err)
			return cdp_git_push_error(L, err, names->v[i]);
		hold(L, s, ref, free_reference);
		lua_createtable(L, 0, 3);
		lua_pushstring(L, names->v[i] + strlen("refs/heads/"));
		lua_setfield(L, -2, "name");
		git_object *obj = NULL;
		if (git_reference_peel(&obj, ref, GIT_OBJECT_ANY) == 0) {
			hold(L, s, obj, free_object);
			push_oid(L, git_object_id(obj));
			lua_setfield(L, -2, "target");
		} else {
			git_error_clear();
		}
		lua_pushboolean(L, git_branch_is_head(ref) == 1);
		lua_setfield(L, -2, "head");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
		scratch_release(s, mark);
	}
	return 1;
}

/* repo:branch_create(name, rev, {force=false}) -> true | nil, msg, code */
static int repo_branch_create(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *name = luaL_checkstring(L, 2);
	const char *rev = luaL_checkstring(L, 3);
	int force = opt_bool(L, check_opts(L, 4), "force", 0);
	struct scratch *s = scratch_new(L);
	lua_pushfstring(L, "branch %s", name);
	const char *what = lua_tostring(L, -1);
	git_commit *c;
	int err = lookup_commit(L, s, repo, rev, &c);
	if (err) {
		lua_pushfstring(L, "%s: rev '%s'", what, rev);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	git_reference *ref = NULL;
	err = git_branch_create(&ref, repo, name, c, force);
	if (err)
		return cdp_git_push_error(L, err, what);
	git_reference_free(ref);
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * repo:checkout(rev_or_branch, {force=true, clean=false}) -> true | nil, msg, code
 * CLEAN also removes untracked files that are not ignored (`git clean -fd`), so
 * the work tree is the commit's and nothing an interrupted writer left.
 */
static int repo_checkout(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *target = luaL_checkstring(L, 2);
	int t = check_opts(L, 3);
	int force = opt_bool(L, t, "force", 1);
	int clean = opt_bool(L, t, "clean", 0);
	struct scratch *s = scratch_new(L);
	lua_pushfstring(L, "checkout %s", target);
	const char *what = lua_tostring(L, -1);

	/* A local branch by short or full name: HEAD will point at it. */
	git_reference *branch = NULL;
	int err = git_branch_lookup(&branch, repo, target, GIT_BRANCH_LOCAL);
	if (err && strncmp(target, "refs/heads/", 11) == 0)
		err = git_reference_lookup(&branch, repo, target);
	if (err == 0)
		hold(L, s, branch, free_reference);
	else
		git_error_clear();

	git_commit *c;
	if (branch) {
		err = git_reference_peel((git_object **)&c, branch, GIT_OBJECT_COMMIT);
		if (err)
			return cdp_git_push_error(L, err, what);
		hold(L, s, c, free_object);
	} else {
		err = lookup_commit(L, s, repo, target, &c);
		if (err)
			return cdp_git_push_error(L, err, what);
	}
	git_checkout_options co;
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy = force ? GIT_CHECKOUT_FORCE : GIT_CHECKOUT_SAFE;
	if (clean)
		co.checkout_strategy |= GIT_CHECKOUT_REMOVE_UNTRACKED;
	err = git_checkout_tree(repo, (git_object *)c, &co);
	if (err)
		return cdp_git_push_error(L, err, what);
	err = branch ? git_repository_set_head(repo, git_reference_name(branch))
	             : git_repository_set_head_detached(repo, git_commit_id(c));
	if (err)
		return cdp_git_push_error(L, err, what);
	lua_pushboolean(L, 1);
	return 1;
}

/* repo:references(glob) -> { {name, target, symbolic?}, ... } by name */
static int repo_references(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *glob = luaL_optstring(L, 2, NULL);
	struct scratch *s = scratch_new(L);
	struct names *names = hold_names(L, s);
	git_reference_iterator *it = NULL;
	int err = glob ? git_reference_iterator_glob_new(&it, repo, glob)
	               : git_reference_iterator_new(&it, repo);
	if (err)
		return cdp_git_push_error(L, err, "references");
	hold(L, s, it, free_reference_iterator);
	const char *name;
	while ((err = git_reference_next_name(&name, it)) == 0)
		names_add(L, names, name);
	if (err != GIT_ITEROVER)
		return cdp_git_push_error(L, err, "references");
	if (names->n > 1) /* an empty list may have no array at all */
		qsort(names->v, names->n, sizeof *names->v, compare_strings);
	lua_createtable(L, (int)names->n, 0);
	lua_Integer n = 0;
	for (size_t i = 0; i < names->n; i++) {
		size_t mark = s->n;
		git_reference *ref = NULL, *resolved = NULL;
		if (git_reference_lookup(&ref, repo, names->v[i]) != 0) {
			git_error_clear(); /* deleted meanwhile */
			continue;
		}
		hold(L, s, ref, free_reference);
		lua_createtable(L, 0, 3);
		lua_pushstring(L, names->v[i]);
		lua_setfield(L, -2, "name");
		if (git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC) {
			lua_pushstring(L, git_reference_symbolic_target(ref));
			lua_setfield(L, -2, "symbolic");
		}
		if (git_reference_resolve(&resolved, ref) == 0) {
			hold(L, s, resolved, free_reference);
			push_oid(L, git_reference_target(resolved));
			lua_setfield(L, -2, "target");
		} else {
			git_error_clear(); /* a dangling symbolic reference */
		}
		lua_rawseti(L, -2, ++n);
		scratch_release(s, mark);
	}
	return 1;
}

/* repo:reference_set(name, oid, log_message, {force=true}) -> true | nil, msg, code */
static int repo_reference_set(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *name = luaL_checkstring(L, 2);
	git_oid oid;
	check_oid(L, 3, &oid);
	const char *log_message = luaL_optstring(L, 4, NULL);
	int force = opt_bool(L, check_opts(L, 5), "force", 1);
	struct scratch *s = scratch_new(L);
	lua_pushfstring(L, "set reference %s", name);
	const char *what = lua_tostring(L, -1);
	git_object *obj = NULL;
	int err = git_object_lookup(&obj, repo, &oid, GIT_OBJECT_ANY);
	if (err) {
		lua_pushfstring(L, "%s: object %s", what, lua_tostring(L, 3));
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	hold(L, s, obj, free_object);
	git_reference *ref = NULL;
	err = git_reference_create(&ref, repo, name, &oid, force, log_message);
	if (err)
		return cdp_git_push_error(L, err, what);
	git_reference_free(ref);
	lua_pushboolean(L, 1);
	return 1;
}

/* repo:reference_delete(name) -> true | nil, msg, code */
static int repo_reference_delete(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *name = luaL_checkstring(L, 2);
	struct scratch *s = scratch_new(L);
	lua_pushfstring(L, "delete reference %s", name);
	const char *what = lua_tostring(L, -1);
	git_reference *ref = NULL;
	int err = git_reference_lookup(&ref, repo, name);
	if (err)
		return cdp_git_push_error(L, err, what);
	hold(L, s, ref, free_reference);
	err = git_reference_delete(ref);
	if (err)
		return cdp_git_push_error(L, err, what);
	lua_pushboolean(L, 1);
	return 1;
}

/* One line of status: one side (index or work tree) of one path. */
struct status_line {
	const char *path;
	const char *old_path; /* renames only */
	const char *status;
	int staged;
};

static int compare_status_lines(const void *a, const void *b)
{
	const struct status_line *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	return c ? c : y->staged - x->staged; /* staged first */
}

static const char *index_status(unsigned int f)
{
	if (f & GIT_STATUS_INDEX_NEW)
		return "new";
	if (f & GIT_STATUS_INDEX_MODIFIED)
		return "modified";
	if (f & GIT_STATUS_INDEX_DELETED)
		return "deleted";
	if (f & GIT_STATUS_INDEX_RENAMED)
		return "renamed";
	if (f & GIT_STATUS_INDEX_TYPECHANGE)
		return "typechange";
	return NULL;
}

static const char *workdir_status(unsigned int f)
{
	if (f & GIT_STATUS_WT_NEW)
		return "new";
	if (f & GIT_STATUS_WT_MODIFIED)
		return "modified";
	if (f & GIT_STATUS_WT_DELETED)
		return "deleted";
	if (f & GIT_STATUS_WT_RENAMED)
		return "renamed";
	if (f & GIT_STATUS_WT_TYPECHANGE)
		return "typechange";
	if (f & GIT_STATUS_IGNORED)
		return "ignored";
	return NULL;
}

static const char *delta_path(const git_diff_delta *d)
{
	if (d == NULL)
		return NULL;
	return d->new_file.path ? d->new_file.path : d->old_file.path;
}

static void free_block(void *p) { free(p); }

/*
 * [-0, +1 | +3, m] Push the status array, or nil, msg, code. IGNORED adds the
 * ignored files and directories (a directory as one entry, not its contents).
 */
static int push_status(lua_State *L, struct scratch *s, git_repository *repo, int untracked, int ignored)
{
	git_status_options so;
	git_status_options_init(&so, GIT_STATUS_OPTIONS_VERSION);
	so.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	so.flags = GIT_STATUS_OPT_RENAMES_HEAD_TO_INDEX | GIT_STATUS_OPT_SORT_CASE_SENSITIVELY;
	if (untracked)
		so.flags |= GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS;
	if (ignored)
		so.flags |= GIT_STATUS_OPT_INCLUDE_IGNORED;
	git_status_list *list = NULL;
	int err = git_status_list_new(&list, repo, &so);
	if (err)
		return cdp_git_push_error(L, err, "status");
	hold(L, s, list, free_status_list);
	size_t count = git_status_list_entrycount(list);
	struct status_line *lines = calloc(count * 2 + 1, sizeof *lines);
	if (lines == NULL)
		luaL_error(L, "not enough memory");
	hold(L, s, lines, free_block);
	size_t n = 0;
	for (size_t i = 0; i < count; i++) {
		const git_status_entry *e = git_status_byindex(list, i);
		unsigned int f = e->status;
		const char *word;
		if (f & GIT_STATUS_CONFLICTED) {
			const char *p = delta_path(e->index_to_workdir);
			lines[n++] = (struct status_line){p ? p : delta_path(e->head_to_index), NULL,
			                                  "conflicted", 0};
			continue;
		}
		if ((word = index_status(f)) && e->head_to_index) {
			const git_diff_delta *d = e->head_to_index;
			lines[n++] = (struct status_line){
				delta_path(d), (f & GIT_STATUS_INDEX_RENAMED) ? d->old_file.path : NULL, word, 1};
		}
		if ((word = workdir_status(f)) && e->index_to_workdir) {
			const git_diff_delta *d = e->index_to_workdir;
			lines[n++] = (struct status_line){
				delta_path(d), (f & GIT_STATUS_WT_RENAMED) ? d->old_file.path : NULL, word, 0};
		}
	}
	if (n > 1)
		qsort(lines, n, sizeof *lines, compare_status_lines);
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_createtable(L, 0, 4);
		lua_pushstring(L, lines[i].path);
		lua_setfield(L, -2, "path");
		lua_pushstring(L, lines[i].status);
		lua_setfield(L, -2, "status");
		lua_pushboolean(L, lines[i].staged);
		lua_setfield(L, -2, "staged");
		if (lines[i].old_path) {
			lua_pushstring(L, lines[i].old_path);
			lua_setfield(L, -2, "old_path");
		}
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/*
 * repo:status{ untracked = true, ignored = false }
 *   -> { {path, status, staged, old_path?}, ... } by path; status "ignored" with IGNORED
 */
static int repo_status(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	int t = check_opts(L, 2);
	int untracked = opt_bool(L, t, "untracked", 1);
	int ignored = opt_bool(L, t, "ignored", 0);
	struct scratch *s = scratch_new(L);
	return push_status(L, s, repo, untracked, ignored);
}

/* repo:is_clean{ untracked = true } -> bool, status */
static int repo_is_clean(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	int untracked = opt_bool(L, check_opts(L, 2), "untracked", 1);
	struct scratch *s = scratch_new(L);
	if (push_status(L, s, repo, untracked, 0) != 1)
		return 3;
	lua_pushboolean(L, luaL_len(L, -1) == 0);
	lua_insert(L, -2);
	return 2;
}

/* repo:add(paths | {all=true}) -> true | nil, msg, code: like `git add -A [paths]` */
static int repo_add(lua_State *L)
{
	lua_settop(L, 2); /* the optional arguments stay at their indices */
	git_repository *repo = cdp_git_check_repo(L, 1);
	luaL_checkany(L, 2);
	git_strarray paths = {NULL, 0};
	if (lua_istable(L, 2) && cdp_rawfield(L, 2, "all") != LUA_TNIL) {
		if (!lua_toboolean(L, -1))
			luaL_argerror(L, 2, "expected an array of paths or {all=true}");
	} else {
		check_strarray(L, 2, &paths, "paths");
		if (paths.count == 0)
			luaL_argerror(L, 2, "no paths given (use {all=true} to add everything)");
	}
	struct scratch *s = scratch_new(L);
	git_index *index = NULL;
	int err = git_repository_index(&index, repo);
	if (err)
		return cdp_git_push_error(L, err, "add");
	hold(L, s, index, free_index);
	const git_strarray *spec = paths.count ? &paths : NULL;
	/* add_all adds new and changed files; update_all removes deleted ones. */
	if ((err = git_index_add_all(index, spec, GIT_INDEX_ADD_DEFAULT, NULL, NULL)) ||
	    (err = git_index_update_all(index, spec, NULL, NULL)) || (err = git_index_write(index)))
		return cdp_git_push_error(L, err, "add");
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * repo:commit_index{ message, author, committer, update_ref="HEAD", parents, tree } -> oid | nil, msg, code
 * TREE (an oid) commits that tree instead of the index: for commits that are no
 * work tree's, such as a run's state.
 */
static int repo_commit_index(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	const char *message = opt_string(L, 2, "message", NULL);
	if (message == NULL && lua_rawgeti(L, 2, 1) == LUA_TSTRING) /* commit_index{"msg"} */
		message = lua_tostring(L, -1);
	if (message == NULL)
		luaL_argerror(L, 2, "a commit message is required");
	const char *update_ref = "HEAD";
	int type = cdp_rawfield(L, 2, "update_ref");
	if (type == LUA_TSTRING)
		update_ref = lua_tostring(L, -1);
	else if (type == LUA_TBOOLEAN && !lua_toboolean(L, -1))
		update_ref = NULL;
	else if (type != LUA_TNIL)
		luaL_error(L, "option 'update_ref' must be a ref name or false");
	lua_pop(L, 1);
	git_strarray parent_revs = {NULL, 0};
	int explicit_parents = cdp_rawfield(L, 2, "parents") != LUA_TNIL;
	if (explicit_parents)
		check_strarray(L, -1, &parent_revs, "parents");
	const char *tree_hex = opt_string(L, 2, "tree", NULL);

	struct scratch *s = scratch_new(L);
	git_signature *author, *committer, *identity = NULL;
	int err = opt_signature(L, s, 2, "author", &author);
	if (err == 0)
		err = opt_signature(L, s, 2, "committer", &committer);
	if (err)
		return cdp_git_push_error(L, err, "commit");
	if (author == NULL || committer == NULL) {
		if (default_signature(L, s, repo, &identity) != 0) {
			git_error_clear();
			if (author == NULL)
				return push_no_identity(L);
		}
		if (author == NULL)
			author = identity;
		if (committer == NULL)
			committer = identity ? identity : author;
	}

	size_t nparents = explicit_parents ? parent_revs.count : 1;
	const git_commit **parents = lua_newuserdatauv(L, (nparents ? nparents : 1) * sizeof *parents, 0);
	if (explicit_parents) {
		for (size_t i = 0; i < nparents; i++) {
			git_commit *c;
			err = lookup_commit(L, s, repo, parent_revs.strings[i], &c);
			if (err) {
				lua_pushfstring(L, "commit: parent '%s'", parent_revs.strings[i]);
				return cdp_git_push_error(L, err, lua_tostring(L, -1));
			}
			parents[i] = c;
		}
	} else {
		git_reference *head = NULL;
		git_object *c = NULL;
		err = git_repository_head(&head, repo);
		if (err == GIT_EUNBORNBRANCH || err == GIT_ENOTFOUND) {
			git_error_clear();
			nparents = 0;
		} else if (err) {
			return cdp_git_push_error(L, err, "commit: HEAD");
		} else {
			hold(L, s, head, free_reference);
			err = git_reference_peel(&c, head, GIT_OBJECT_COMMIT);
			if (err)
				return cdp_git_push_error(L, err, "commit: HEAD");
			parents[0] = hold(L, s, c, free_object);
		}
	}

	git_oid tree_id, oid;
	git_object *tree = NULL;
	if (tree_hex != NULL) {
		if (strlen(tree_hex) != GIT_OID_HEXSZ || git_oid_fromstr(&tree_id, tree_hex) != 0)
			luaL_error(L, "option 'tree' must be a 40-character hex oid");
		if ((err = git_object_lookup(&tree, repo, &tree_id, GIT_OBJECT_TREE)))
			return cdp_git_push_error(L, err, "commit: tree");
	} else {
		git_index *index = NULL;
		err = git_repository_index(&index, repo);
		if (err)
			return cdp_git_push_error(L, err, "commit");
		hold(L, s, index, free_index);
		if ((err = git_index_write_tree(&tree_id, index)) ||
		    (err = git_object_lookup(&tree, repo, &tree_id, GIT_OBJECT_TREE)))
			return cdp_git_push_error(L, err, "commit: write the index");
	}
	hold(L, s, tree, free_object);
	cdp_test_point("commit", message);
	err = git_commit_create(&oid, repo, update_ref, author, committer, NULL, message,
	                        (git_tree *)tree, nparents, parents);
	if (err) {
		if (update_ref) {
			lua_pushfstring(L, "commit to %s", update_ref);
			return cdp_git_push_error(L, err, lua_tostring(L, -1));
		}
		return cdp_git_push_error(L, err, "commit");
	}
	push_oid(L, &oid);
	return 1;
}

/* repo:signature() -> {name, email} | nil, msg, "ENOIDENTITY" */
static int repo_signature(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	struct scratch *s = scratch_new(L);
	git_signature *sig;
	if (default_signature(L, s, repo, &sig) != 0)
		return push_no_identity(L);
	lua_createtable(L, 0, 2);
	lua_pushstring(L, sig->name);
	lua_setfield(L, -2, "name");
	lua_pushstring(L, sig->email);
	lua_setfield(L, -2, "email");
	return 1;
}

/* repo:config_get(key) -> string | nil */
static int repo_config_get(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *key = luaL_checkstring(L, 2);
	struct scratch *s = scratch_new(L);
	git_config *cfg = NULL;
	int err = git_repository_config_snapshot(&cfg, repo);
	if (err)
		return cdp_git_push_error(L, err, "config");
	hold(L, s, cfg, free_config);
	const char *value;
	err = git_config_get_string(&value, cfg, key);
	if (err == GIT_ENOTFOUND) {
		git_error_clear();
		lua_pushnil(L);
		return 1;
	}
	if (err) {
		lua_pushfstring(L, "config %s", key);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	lua_pushstring(L, value);
	return 1;
}

/* repo:config_set(key, value) -> true | nil, msg, code (in the repository's own config) */
static int repo_config_set(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *key = luaL_checkstring(L, 2);
	int is_bool = lua_type(L, 3) == LUA_TBOOLEAN;
	const char *value = is_bool ? NULL : luaL_checkstring(L, 3);
	struct scratch *s = scratch_new(L);
	git_config *cfg = NULL;
	int err = git_repository_config(&cfg, repo);
	if (err)
		return cdp_git_push_error(L, err, "config");
	hold(L, s, cfg, free_config);
	err = is_bool ? git_config_set_bool(cfg, key, lua_toboolean(L, 3))
	              : git_config_set_string(cfg, key, value);
	if (err) {
		lua_pushfstring(L, "config %s", key);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* repo:remotes() -> { {name, url}, ... } by name; URL credentials redacted */
static int repo_remotes(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	struct scratch *s = scratch_new(L);
	git_strarray *names = hold_strarray(L, s);
	int err = git_remote_list(names, repo);
	if (err)
		return cdp_git_push_error(L, err, "remotes");
	if (names->count > 1) /* an empty list may have no array at all */
		qsort(names->strings, names->count, sizeof *names->strings, compare_strings);
	lua_createtable(L, (int)names->count, 0);
	for (size_t i = 0; i < names->count; i++) {
		size_t mark = s->n;
		git_remote *remote = NULL;
		err = git_remote_lookup(&remote, repo, names->strings[i]);
		if (err)
			return cdp_git_push_error(L, err, names->strings[i]);
		hold(L, s, remote, free_remote);
		lua_createtable(L, 0, 2);
		lua_pushstring(L, names->strings[i]);
		lua_setfield(L, -2, "name");
		const char *url = git_remote_url(remote);
		if (url) {
			push_redacted(L, url);
			lua_setfield(L, -2, "url");
		}
		lua_rawseti(L, -2, (lua_Integer)i + 1);
		scratch_release(s, mark);
	}
	return 1;
}

/* repo:remote_set(name, url) -> true | nil, msg, code: create the remote or change its URL */
static int repo_remote_set(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *name = luaL_checkstring(L, 2);
	const char *url = luaL_checkstring(L, 3);
	struct scratch *s = scratch_new(L);
	lua_pushfstring(L, "remote %s", name);
	const char *what = lua_tostring(L, -1);
	git_remote *remote = NULL;
	int err = git_remote_lookup(&remote, repo, name);
	if (err == 0) {
		hold(L, s, remote, free_remote);
		err = git_remote_set_url(repo, name, url);
	} else if (err == GIT_ENOTFOUND) {
		git_error_clear();
		err = git_remote_create(&remote, repo, name, url);
		hold(L, s, remote, free_remote);
	}
	if (err)
		return cdp_git_push_error(L, err, what);
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * What the lease (the table at index LEASE, 0 for none) expects of the remote
 * ref DST: 0 when DST is not leased; else 1, with *ABSENT set for `false` (the
 * ref must not exist) or *WANT for an oid (the ref must be at it).
 */
static int lease_of(lua_State *L, int lease, const char *dst, git_oid *want, int *absent)
{
	if (!lease)
		return 0;
	int type = lua_getfield(L, lease, dst);
	int leased = 1;
	*absent = 0;
	if (type == LUA_TNIL) {
		leased = 0;
	} else if (type == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
		*absent = 1;
	} else if (type != LUA_TSTRING || lua_rawlen(L, -1) != GIT_OID_HEXSZ ||
	           git_oid_fromstr(want, lua_tostring(L, -1)) != 0) {
		luaL_error(L, "option 'lease': %s must be a 40-character hex oid, or false for no such ref", dst);
	}
	lua_pop(L, 1);
	return leased;
}

/* [-0, +3, m] The refusal of a leased push: DST is at HAVE (NULL: absent), not as expected. */
static int push_stale(lua_State *L, const char *dst, const char *url, const git_oid *have,
                      const git_oid *want)
{
	char h[GIT_OID_HEXSZ + 1] = "nothing", w[GIT_OID_HEXSZ + 1] = "absent";
	if (have)
		git_oid_tostr(h, sizeof h, have);
	if (want)
		git_oid_tostr(w, sizeof w, want);
	return push_failure(L, "ESTALE", "ref %s on %s is %s%s, not %s%s as this push expected: another push came first",
	                    dst, url, have ? "at " : "", h, want ? "at " : "", w);
}

/*
 * Before pushing, compare each non-forced refspec with what the remote
 * advertises, so a rejection names the ref: a branch must fast-forward, a
 * tag must not move, a leased ref must be where the lease (the table at
 * index LEASE, or 0) says. Returns 0, or pushes nil, msg, code and returns 3.
 */
static int check_push_refspecs(lua_State *L, struct scratch *s, git_repository *repo,
                               git_remote *remote, const git_strarray *specs, const char *url,
                               int lease)
{
	const git_remote_head **heads;
	size_t nheads;
	int err = git_remote_ls(&heads, &nheads, remote);
	if (err)
		return 0; /* let the push itself report it */
	for (size_t i = 0; i < specs->count; i++) {
		size_t mark = s->n;
		git_refspec *spec = NULL;
		if (git_refspec_parse(&spec, specs->strings[i], 0) != 0) {
			lua_pushfstring(L, "push to %s: refspec '%s'", url, specs->strings[i]);
			return cdp_git_push_error(L, GIT_EINVALIDSPEC, lua_tostring(L, -1));
		}
		hold(L, s, spec, free_refspec);
		const char *src = git_refspec_src(spec);
		const char *dst = git_refspec_dst(spec);
		if (dst == NULL || *dst == '\0')
			dst = src;
		const git_oid *remote_oid = NULL;
		for (size_t h = 0; dst != NULL && h < nheads; h++)
			if (strcmp(heads[h]->name, dst) == 0)
				remote_oid = &heads[h]->oid;
		git_oid want;
		int absent;
		if (dst != NULL && lease_of(L, lease, dst, &want, &absent)) {
			if (absent ? remote_oid != NULL : (remote_oid == NULL || !git_oid_equal(remote_oid, &want)))
				return push_stale(L, dst, url, remote_oid, absent ? NULL : &want);
			scratch_release(s, mark);
			continue; /* the lease says what may be replaced: no fast-forward rule */
		}
		if (git_refspec_force(spec) || src == NULL || *src == '\0' || dst == NULL) {
			scratch_release(s, mark);
			continue;
		}
		git_object *local = NULL;
		if (remote_oid == NULL || git_revparse_single(&local, repo, src) != 0) {
			git_error_clear(); /* a new ref, or an unknown source the push will report */
			scratch_release(s, mark);
			continue;
		}
		hold(L, s, local, free_object);
		if (git_oid_equal(git_object_id(local), remote_oid)) {
			scratch_release(s, mark);
			continue;
		}
		if (strncmp(dst, "refs/tags/", 10) == 0)
			return push_failure(L, "EREJECTED", "ref %s rejected by %s: already exists", dst, url);
		git_object *commit = NULL;
		int ff = git_object_peel(&commit, local, GIT_OBJECT_COMMIT) == 0;
		if (ff) {
			hold(L, s, commit, free_object);
			ff = git_graph_descendant_of(repo, git_object_id(commit), remote_oid) == 1;
		}
		git_error_clear();
		if (!ff)
			return push_failure(L, "ENONFASTFORWARD", "ref %s rejected by %s: non-fast-forward",
			                    dst, url);
		scratch_release(s, mark);
	}
	return 0;
}

/*
 * [-0, +(1|3), e] What push and fetch share: the credentials in OPTS (index 4),
 * the remote TARGET names (a configured remote, or a URL or path as an
 * anonymous one), and "VERB URL" with the URL redacted. On success leaves the
 * redacted URL and the description on the stack and returns 0; on failure
 * pushes nil, msg, code and returns 3.
 */
static int remote_begin(lua_State *L, git_repository *repo, const char *target, const char *verb,
                        struct remote_op *op, struct scratch *s, git_remote **remote,
                        const char **url, const char **what)
{
	int t = check_opts(L, 4);
	memset(op, 0, sizeof *op);
	op->token = opt_string(L, t, "token", NULL);
	op->username = opt_string(L, t, "username", "x-access-token");
	int err = lookup_remote(L, s, repo, target, remote);
	if (err) {
		lua_pushfstring(L, "%s %s", verb, target);
		redact_top(L);
		return push_remote_error(L, op, err, lua_tostring(L, -1));
	}
	*url = push_redacted(L, git_remote_url(*remote) ? git_remote_url(*remote) : target);
	op->url = *url;
	op->network = is_network_url(*url);
	*what = lua_pushfstring(L, "%s %s", verb, *url);
	return remote_allow(L, op, *url, *what);
}

static void free_repository(void *p) { git_repository_free(p); }

/*
 * libgit2 pushes to a path or file:// remote by writing its refs directly,
 * replacing what is there without comparing: no lease. So a leased push to
 * such a remote sends the objects under a temporary ref, then moves each
 * leased ref in the remote repository with a compare-and-swap on its
 * lockfile (git_reference_create_matching), and drops the temporary refs.
 * Returns 0, or pushes nil, msg, code and returns 3.
 */
static int push_local_leased(lua_State *L, struct scratch *s, git_repository *repo,
                             git_remote *remote, const git_strarray *specs, int lease,
                             git_push_options *po, struct remote_op *op, const char *url,
                             const char *what)
{
	size_t n = specs->count;
	char **sent = lua_newuserdatauv(L, (n ? n : 1) * sizeof *sent, 0);
	struct leased {
		const char *dst, *tmp;
		git_oid loid, want;
		int absent;
	} *moves = lua_newuserdatauv(L, (n ? n : 1) * sizeof *moves, 0);
	size_t nmoves = 0;
	static unsigned counter;
	for (size_t i = 0; i < n; i++) {
		size_t mark = s->n;
		git_refspec *spec = NULL;
		sent[i] = specs->strings[i];
		if (git_refspec_parse(&spec, specs->strings[i], 0) != 0)
			continue; /* the push reports it */
		hold(L, s, spec, free_refspec);
		const char *src = git_refspec_src(spec), *dst = git_refspec_dst(spec);
		if (dst == NULL || *dst == '\0')
			dst = src;
		struct leased *m = &moves[nmoves];
		git_object *local = NULL;
		if (src == NULL || *src == '\0' || !lease_of(L, lease, dst, &m->want, &m->absent) ||
		    git_revparse_single(&local, repo, src) != 0) {
			git_error_clear();
			scratch_release(s, mark);
			continue;
		}
		git_oid_cpy(&m->loid, git_object_id(local));
		git_object_free(local);
		m->dst = lua_pushstring(L, dst); /* anchored on the stack until we return */
		m->tmp = lua_pushfstring(L, "refs/cdp/incoming/%d-%d-%d", (int)getpid(), (int)++counter, (int)i);
		sent[i] = (char *)lua_pushfstring(L, "%s:%s", src, m->tmp);
		nmoves++;
		scratch_release(s, mark);
	}
	git_strarray send = {sent, n};
	int err = git_remote_push(remote, &send, po);
	if (err)
		return push_remote_error(L, op, err, what);
	if (op->rejected)
		return push_failure(L, "EREJECTED", "ref %s rejected by %s: %s", op->ref, url, op->reason);
	const char *path = git_remote_url(remote);
	if (strncmp(path, "file://", 7) == 0)
		path += 7;
	git_repository *target = NULL;
	err = git_repository_open(&target, path);
	if (err)
		return cdp_git_push_error(L, err, what);
	hold(L, s, target, free_repository);
	int failed = -1;
	for (size_t i = 0; i < nmoves && failed < 0; i++) {
		struct leased *m = &moves[i];
		git_reference *ref = NULL;
		err = m->absent ? git_reference_create(&ref, target, m->dst, &m->loid, 0, "cdp: push")
		                : git_reference_create_matching(&ref, target, m->dst, &m->loid, 1, &m->want,
		                                                "cdp: push");
		if (err)
			failed = (int)i;
		git_reference_free(ref);
	}
	for (size_t i = 0; i < nmoves; i++) {
		git_reference *tmp = NULL;
		if (git_reference_lookup(&tmp, target, moves[i].tmp) == 0)
			git_reference_delete(tmp);
		git_reference_free(tmp);
	}
	if (failed >= 0) {
		struct leased *m = &moves[failed];
		if (err != GIT_EEXISTS && err != GIT_EMODIFIED && err != GIT_ENOTFOUND)
			return cdp_git_push_error(L, err, what);
		git_error_clear();
		git_oid have;
		int found = git_reference_name_to_id(&have, target, m->dst) == 0;
		git_error_clear();
		return push_stale(L, m->dst, url, found ? &have : NULL, m->absent ? NULL : &m->want);
	}
	return 0;
}

/*
 * repo:push(remote_or_url, refspecs, {token, username="x-access-token", lease}) -> true | nil, msg, code
 * LEASE = { [remote ref] = oid | false }: each such ref must be at that oid (or
 * absent) on the remote when it is replaced, else nil, msg, "ESTALE" and nothing
 * of it moves. Over smart HTTP and ssh the server compares while it holds the
 * ref's lock; to a path or file:// remote cdp does (push_local_leased).
 */
static int repo_push(lua_State *L)
{
	lua_settop(L, 4); /* the optional arguments stay at their indices */
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *target = luaL_checkstring(L, 2);
	git_strarray specs;
	check_strarray(L, 3, &specs, "refspecs");
	struct scratch *s = scratch_new(L);
	struct remote_op op;
	git_remote *remote;
	const char *url, *what;
	if (remote_begin(L, repo, target, "push to", &op, s, &remote, &url, &what))
		return 3;

	git_push_options po;
	git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
	remote_callbacks(&po.callbacks, &op);
	po.follow_redirects = redirects_for(&op);
	git_remote_connect_options co;
	git_remote_connect_options_init(&co, GIT_REMOTE_CONNECT_OPTIONS_VERSION);
	co.callbacks = po.callbacks;
	co.follow_redirects = po.follow_redirects;
	int err = git_remote_connect_ext(remote, GIT_DIRECTION_PUSH, &co);
	if (err)
		return push_remote_error(L, &op, err, what);
	int lease = 0;
	if (!lua_isnoneornil(L, 4) && lua_getfield(L, 4, "lease") != LUA_TNIL) {
		luaL_checktype(L, -1, LUA_TTABLE);
		lease = lua_gettop(L);
	}
	if (check_push_refspecs(L, s, repo, remote, &specs, url, lease))
		return 3;
	if (lease && !op.network) {
		if (push_local_leased(L, s, repo, remote, &specs, lease, &po, &op, url, what))
			return 3;
		lua_pushboolean(L, 1);
		return 1;
	}
	err = git_remote_push(remote, &specs, &po);
	if (err)
		return push_remote_error(L, &op, err, what);
	if (op.rejected) {
		char lock[512];
		const char *said = push_remote_said(L, &op);
		if (stale_lock_in(op.reason, lock, sizeof lock) || stale_lock_in(said, lock, sizeof lock))
			return push_locked(L, url, lock);
		git_oid want;
		int absent;
		if (lease_of(L, lease, op.ref, &want, &absent))
			return push_failure(L, "ESTALE", "ref %s rejected by %s: %s: another push came first",
			                    op.ref, url, op.reason);
		int nonff = strstr(op.reason, "non-fast-forward") || strstr(op.reason, "fetch first");
		size_t n = strlen(op.reason);
		while (n > 0 && (op.reason[n - 1] == ' ' || op.reason[n - 1] == ':'))
			n--;
		op.reason[n] = '\0';
		/* "pre-receive hook declined" says who refused; what the hook printed says why. */
		if (*said)
			return push_failure(L, nonff ? "ENONFASTFORWARD" : "EREJECTED", "ref %s rejected by %s: %s; "
			                    "the remote said: %s", op.ref, url, op.reason, said);
		return push_failure(L, nonff ? "ENONFASTFORWARD" : "EREJECTED", "ref %s rejected by %s: %s",
		                    op.ref, url, op.reason);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * repo:fetch(remote_or_url, refspecs, {token, username}) -> true | nil, msg, code
 * With REFSPECS, exactly those are fetched: no tags are followed on the side (a
 * configured remote would otherwise write the remote's tags into refs/tags).
 */
static int repo_fetch(lua_State *L)
{
	lua_settop(L, 4); /* the optional arguments stay at their indices */
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *target = luaL_checkstring(L, 2);
	git_strarray specs = {NULL, 0};
	if (!lua_isnoneornil(L, 3))
		check_strarray(L, 3, &specs, "refspecs");
	struct scratch *s = scratch_new(L);
	struct remote_op op;
	git_remote *remote;
	const char *url, *what;
	if (remote_begin(L, repo, target, "fetch from", &op, s, &remote, &url, &what))
		return 3;
	git_fetch_options fo;
	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	remote_callbacks(&fo.callbacks, &op);
	fo.follow_redirects = redirects_for(&op);
	if (specs.count)
		fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	int err = git_remote_fetch(remote, specs.count ? &specs : NULL, &fo, NULL);
	if (err)
		return push_remote_error(L, &op, err, what);
	lua_pushboolean(L, 1);
	return 1;
}

/*
 * [-0, +0|3, e] The commits that arguments 2 and 3 name, held in S. On failure
 * pushes nil, "WHAT 'a' 'b': ...", code and returns 3.
 */
static int lookup_commit_pair(lua_State *L, struct scratch *s, git_repository *repo, const char *what,
                              git_commit **ca, git_commit **cb)
{
	const char *a = lua_tostring(L, 2), *b = lua_tostring(L, 3);
	int err = lookup_commit(L, s, repo, a, ca);
	if (err == 0)
		err = lookup_commit(L, s, repo, b, cb);
	if (!err)
		return 0;
	lua_pushfstring(L, "%s '%s' '%s'", what, a, b);
	return cdp_git_push_error(L, err, lua_tostring(L, -1));
}

/* repo:merge_base(a, b) -> oid | nil (no common ancestor) | nil, msg, code */
static int repo_merge_base(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *a = luaL_checkstring(L, 2);
	const char *b = luaL_checkstring(L, 3);
	struct scratch *s = scratch_new(L);
	git_commit *ca, *cb;
	if (lookup_commit_pair(L, s, repo, "merge_base", &ca, &cb))
		return 3;
	git_oid base;
	int err = git_merge_base(&base, repo, git_commit_id(ca), git_commit_id(cb));
	if (err == GIT_ENOTFOUND) {
		git_error_clear();
		lua_pushnil(L);
		return 1;
	}
	if (err) {
		lua_pushfstring(L, "merge_base '%s' '%s'", a, b);
		return cdp_git_push_error(L, err, lua_tostring(L, -1));
	}
	push_oid(L, &base);
	return 1;
}

/* repo:descendant_of(a, b) -> bool: is A a strict descendant of B | nil, msg, code */
static int repo_descendant_of(lua_State *L)
{
	git_repository *repo = cdp_git_check_repo(L, 1);
	const char *a = luaL_checkstring(L, 2);
	const char *b = luaL_checkstring(L, 3);
	struct scratch *s = scratch_new(L);
	git_commit *ca, *cb;
	if (lookup_commit_pair(L, s, repo, "descendant_of", &ca, &cb))
		return 3;
	int r = git_graph_descendant_of(repo, git_commit_id(ca), git_commit_id(cb));
	if (r < 0) {
		lua_pushfstring(L, "descendant_of '%s' '%s'", a, b);
		return cdp_git_push_error(L, r, lua_tostring(L, -1));
	}
	lua_pushboolean(L, r == 1);
	return 1;
}

/* ------------------------------------------------------------ the module */

static const luaL_Reg git_functions[] = {
	{"version", git_version},
	{"open", git_open},
	{"discover", git_discover},
	{"init", git_init},
	{"clone", git_clone_fn},
	{NULL, NULL},
};

static const luaL_Reg repo_methods[] = {
	{"path", repo_path},
	{"workdir", repo_workdir},
	{"is_bare", repo_is_bare},
	{"head", repo_head},
	{"head_ref", repo_head_ref},
	{"resolve", repo_resolve},
	{"commit", repo_commit},
	{"walk", repo_walk},
	{"tree_entry", repo_tree_entry},
	{"read_blob", repo_read_blob},
	{"symlinks", repo_symlinks},
	{"tree_list", repo_tree_list},
	{"blob_create", repo_blob_create},
	{"tree_create", repo_tree_create},
	{"tags", repo_tags},
	{"tag_create", repo_tag_create},
	{"tag_delete", repo_tag_delete},
	{"branches", repo_branches},
	{"branch_create", repo_branch_create},
	{"checkout", repo_checkout},
	{"references", repo_references},
	{"reference_set", repo_reference_set},
	{"reference_delete", repo_reference_delete},
	{"status", repo_status},
	{"is_clean", repo_is_clean},
	{"add", repo_add},
	{"commit_index", repo_commit_index},
	{"signature", repo_signature},
	{"config_get", repo_config_get},
	{"config_set", repo_config_set},
	{"remotes", repo_remotes},
	{"remote_set", repo_remote_set},
	{"push", repo_push},
	{"fetch", repo_fetch},
	{"merge_base", repo_merge_base},
	{"descendant_of", repo_descendant_of},
	{"close", repo_close},
	{NULL, NULL},
};

static const luaL_Reg repo_metamethods[] = {
	{"__gc", repo_close},
	{"__close", repo_close},
	{"__tostring", repo_tostring},
	{"__index", NULL}, /* the methods table */
	{NULL, NULL},
};

static const luaL_Reg scratch_metamethods[] = {
	{"__gc", scratch_close},
	{"__close", scratch_close},
	{NULL, NULL},
};

static void shutdown_libgit2(void)
{
	git_libgit2_shutdown();
}

int luaopen_cdp_git(lua_State *L)
{
	static int initialized;
	if (!initialized) {
		/* Once per process; never shut down while a Lua state may hold repositories. */
		git_libgit2_init();
		/*
		 * libgit2 re-hashes every object it reads to check its id; git does not,
		 * and planning reads tens of thousands of trees (0.52 s -> 0.33 s on the
		 * benchmark workspace). Objects still pass zlib's checksum.
		 */
		git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
		/*
		 * libgit2 maps packs in 1 GiB windows and keeps up to 8 GiB mapped:
		 * every page a walk touches then stays resident (150 MB planning
		 * bevy's whole history). Windows of 4 MB, 24 MB of them at most, keep
		 * that plan at 76 MB for some 10% more time remapping; large windows
		 * under a low limit remap far more (32 MB ones cost 40%).
		 */
		git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, (size_t)4 << 20);
		git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, (size_t)24 << 20);
		atexit(shutdown_libgit2);
		initialized = 1;
	}
	if (luaL_newmetatable(L, SCRATCH))
		luaL_setfuncs(L, scratch_metamethods, 0);
	lua_pop(L, 1);
	if (luaL_newmetatable(L, BOX)) {
		lua_pushcfunction(L, box_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, box_close);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);

	luaL_newmetatable(L, CDP_GIT_REPOSITORY);
	luaL_setfuncs(L, repo_metamethods, 0);
	luaL_newlibtable(L, repo_methods);
	luaL_setfuncs(L, repo_methods, 0);
	if (cdp_git_changes) {
		lua_pushcfunction(L, cdp_git_changes);
		lua_setfield(L, -2, "changes");
	}
	if (cdp_git_reachable) {
		lua_pushcfunction(L, cdp_git_reachable);
		lua_setfield(L, -2, "reachable");
	}
	if (cdp_git_tag_candidates) {
		lua_pushcfunction(L, cdp_git_tag_candidates);
		lua_setfield(L, -2, "tag_candidates");
	}
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);

	luaL_newlib(L, git_functions);
	return 1;
}
