/*
 * cdp.http — HTTP requests and SMTP submissions through libcurl.
 *
 *   http.request{ method=, url=, headers=, body=, timeout=, connect_timeout=,
 *                 follow=, max_body= } -> { status=, headers=, body=, url=, time= }
 *   http.smtp{ url=, from=, to=, subject=, body=, headers=, message=,
 *              username=, password=, tls="try"|"require"|"none", timeout= } -> true
 *     (with a password, TLS must be required: smtps://, tls = "require", or a
 *     loopback server; anything else fails with EINSECURE before connecting)
 *   http.parse_date(s), http.format_date(t), http.urlencode(s), http.version()
 *
 * Failures of the world return nil, "CODE: what: url", "CODE"; an HTTP error
 * status is an answer, not a failure. The URL in a message or result has no
 * userinfo, and header values and passwords never appear in either.
 *
 * The table -> job builder also serves cdp.notify, which gets it from the
 * registry (JOB_BUILDER) rather than from the public module table.
 */
#include "host.h"
#include "core/curl_job.h"
#include "core/curl_lazy.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATE_TNAME "cdp.http.State"
#define JOB_BUILDER "cdp.http.job" /* registry: function(spec, kind) -> Job */

/* The module's libcurl state: one global init, one handle reused across requests. */
struct http_state {
	CURL *curl;
	int global; /* holds a curl_job_global_init */
};

static int state_gc(lua_State *L)
{
	struct http_state *s = luaL_checkudata(L, 1, STATE_TNAME);
	if (s->curl)
		curl_easy_cleanup(s->curl);
	s->curl = NULL;
	if (s->global)
		curl_job_global_cleanup();
	s->global = 0;
	return 0;
}

static int state_tostring(lua_State *L)
{
	struct http_state *s = luaL_checkudata(L, 1, STATE_TNAME);
	lua_pushfstring(L, "cdp.http.State (%s)", s->curl ? "connected" : "idle");
	return 1;
}

/* Jobs: a boxed struct curl_job_box, freed by __gc or __close, so misuse may raise mid-build. */

static int box_gc(lua_State *L)
{
	struct curl_job_box *b = luaL_checkudata(L, 1, CURL_JOB_BOX);
	curl_job_free(&b->job);
	curl_result_free(&b->res);
	return 0;
}

static int box_tostring(lua_State *L)
{
	struct curl_job_box *b = luaL_checkudata(L, 1, CURL_JOB_BOX);
	char *url = b->job.url ? curl_job_redact_url(b->job.url) : NULL;
	lua_pushfstring(L, "cdp.http.Job (%s %s)", b->job.kind == CURL_JOB_SMTP ? "smtp" : "http",
	                url ? url : "-");
	free(url);
	return 1;
}

/* [-0, +1, m] A new empty job box. */
static struct curl_job_box *box_new(lua_State *L)
{
	struct curl_job_box *b = lua_newuserdatauv(L, sizeof *b, 0);
	memset(b, 0, sizeof *b);
	luaL_setmetatable(L, CURL_JOB_BOX);
	return b;
}

/* Reading a spec table; every helper raises on misuse. */

static char *dup_mem(lua_State *L, const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p)
		luaL_error(L, "not enough memory");
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* [-0, +0, e] Field NAME of table T as a string, or NULL when absent. */
static const char *opt_field_string(lua_State *L, int t, const char *name, size_t *len)
{
	int type = cdp_rawfield(L, t, name);
	const char *s = NULL;
	if (type == LUA_TSTRING)
		s = lua_tolstring(L, -1, len);
	else if (type != LUA_TNIL)
		luaL_error(L, "field '%s': string expected, got %s", name, luaL_typename(L, -1));
	lua_pop(L, 1); /* the spec table still holds it: read raw, no metamethod made it */
	return s;
}

static const char *field_string(lua_State *L, int t, const char *name, size_t *len)
{
	const char *s = opt_field_string(L, t, name, len);
	if (!s)
		luaL_error(L, "field '%s': string expected, got nil", name);
	return s;
}

static double opt_field_number(lua_State *L, int t, const char *name, double def)
{
	int type = cdp_rawfield(L, t, name);
	double v = def;
	if (type == LUA_TNUMBER)
		v = lua_tonumber(L, -1);
	else if (type != LUA_TNIL)
		luaL_error(L, "field '%s': number expected, got %s", name, luaL_typename(L, -1));
	lua_pop(L, 1);
	if (!(v >= 0))
		luaL_error(L, "field '%s': must not be negative", name);
	return v;
}

static int opt_field_bool(lua_State *L, int t, const char *name, int def)
{
	int type = cdp_rawfield(L, t, name);
	int v = def;
	if (type == LUA_TBOOLEAN)
		v = lua_toboolean(L, -1);
	else if (type != LUA_TNIL)
		luaL_error(L, "field '%s': boolean expected, got %s", name, luaL_typename(L, -1));
	lua_pop(L, 1);
	return v;
}

/* A header value or mail field must stay on its line: no CR, LF or NUL. */
static void check_one_line(lua_State *L, const char *what, const char *s, size_t len)
{
	if (strcspn(s, "\r\n") != len || strlen(s) != len)
		luaL_error(L, "%s: must not contain line breaks", what);
}

static int is_token(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *s))
			return 0;
	return 1;
}

static void slist_add(lua_State *L, struct curl_slist **list, const char *line)
{
	struct curl_slist *n = curl_slist_append(*list, line);
	if (!n)
		luaL_error(L, "not enough memory");
	*list = n;
}

/* Field "headers" of T: { Name = value } into "Name: value" lines on *LIST. */
static void read_headers(lua_State *L, int t, struct curl_slist **list)
{
	int type = cdp_rawfield(L, t, "headers");
	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (type != LUA_TTABLE)
		luaL_error(L, "field 'headers': table expected, got %s", luaL_typename(L, -1));
	int h = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, h)) {
		if (lua_type(L, -2) != LUA_TSTRING || !is_token(lua_tostring(L, -2)))
			luaL_error(L, "field 'headers': keys must be header names");
		if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
			luaL_error(L, "field 'headers': value of '%s' must be a string",
			           lua_tostring(L, -2));
		size_t len;
		const char *v = lua_tolstring(L, -1, &len); /* numbers: the value only */
		check_one_line(L, "field 'headers'", v, len);
		/* curl sends "Name;" as a header with an empty value. */
		lua_pushfstring(L, len ? "%s: %s" : "%s;", lua_tostring(L, -2), v);
		slist_add(L, list, lua_tostring(L, -1));
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
}

static void read_http(lua_State *L, int t, struct curl_job *job)
{
	size_t len;
	const char *s = opt_field_string(L, t, "method", &len);
	if (s) {
		for (const char *p = s; *p; p++)
			if (!(*p >= 'A' && *p <= 'Z'))
				luaL_error(L, "field 'method': '%s' is not an upper-case method", s);
		if (len == 0)
			luaL_error(L, "field 'method': empty");
		job->method = dup_mem(L, s, len);
	}
	read_headers(L, t, &job->headers);
	s = opt_field_string(L, t, "body", &len);
	if (s) {
		job->body = dup_mem(L, s, len);
		job->body_size = len;
	}
	job->follow = opt_field_bool(L, t, "follow", 0);
	double max = opt_field_number(L, t, "max_body", 64.0 * 1024 * 1024);
	job->max_body = max >= 1e15 ? 0 : (size_t)max;
}

/* [-0, +0, e] Field "to": one address or an array of them, each checked. */
static void read_recipients(lua_State *L, int t, struct curl_job *job, int list)
{
	int type = cdp_rawfield(L, t, "to");
	if (type == LUA_TSTRING) {
		lua_createtable(L, 1, 0);
		lua_insert(L, -2);
		lua_rawseti(L, -2, 1);
	} else if (type != LUA_TTABLE) {
		luaL_error(L, "field 'to': string or array expected, got %s", luaL_typename(L, -1));
	}
	lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
	if (n < 1)
		luaL_error(L, "field 'to': no recipients");
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
			luaL_error(L, "field 'to': entry %d is not a string", (int)i);
		size_t len;
		const char *to = lua_tolstring(L, -1, &len);
		check_one_line(L, "field 'to'", to, len);
		char *addr = curl_job_address(to);
		if (!addr)
			luaL_error(L, "not enough memory");
		lua_pushfstring(L, "<%s>", addr);
		free(addr);
		slist_add(L, &job->rcpt, lua_tostring(L, -1));
		lua_pop(L, 2);
	}
	/* Leave the normalised array at LIST for composing the To: header. */
	lua_replace(L, list);
}

static void read_smtp(lua_State *L, int t, struct curl_job *job)
{
	size_t len;
	const char *from = field_string(L, t, "from", &len);
	check_one_line(L, "field 'from'", from, len);
	char *addr = curl_job_address(from);
	if (!addr)
		luaL_error(L, "not enough memory");
	lua_pushfstring(L, "<%s>", addr);
	free(addr);
	job->from = dup_mem(L, lua_tostring(L, -1), lua_rawlen(L, -1));
	lua_pop(L, 1);

	lua_pushnil(L);
	int list = lua_gettop(L);
	read_recipients(L, t, job, list);

	const char *s = opt_field_string(L, t, "username", &len);
	if (s)
		job->username = dup_mem(L, s, len);
	s = opt_field_string(L, t, "password", &len);
	if (s)
		job->password = dup_mem(L, s, len);

	/* A password goes only over TLS required (or smtps://, or to loopback):
	 * curl_job_perform refuses the job otherwise, with EINSECURE. */
	s = opt_field_string(L, t, "tls", &len);
	if (!s || strcmp(s, "try") == 0)
		job->tls = CURL_JOB_TLS_TRY;
	else if (strcmp(s, "none") == 0)
		job->tls = CURL_JOB_TLS_NONE;
	else if (strcmp(s, "require") == 0 || strcmp(s, "required") == 0)
		job->tls = CURL_JOB_TLS_REQUIRE;
	else
		luaL_error(L, "field 'tls': 'none', 'try' or 'require' expected, got '%s'", s);

	const char *message = opt_field_string(L, t, "message", &len);
	if (message) {
		cdp_rawfield(L, t, "subject");
		cdp_rawfield(L, t, "body");
		cdp_rawfield(L, t, "headers");
		if (!lua_isnil(L, -1) || !lua_isnil(L, -2) || !lua_isnil(L, -3))
			luaL_error(L, "field 'message': give either message or subject, body and headers");
		lua_pop(L, 3);
		job->message = dup_mem(L, message, len);
		job->message_size = len;
		lua_settop(L, list - 1);
		return;
	}

	size_t subject_len;
	const char *subject = opt_field_string(L, t, "subject", &subject_len);
	if (subject)
		check_one_line(L, "field 'subject'", subject, subject_len);
	size_t body_len = 0;
	const char *body = opt_field_string(L, t, "body", &body_len);
	read_headers(L, t, &job->headers);

	lua_Integer n = (lua_Integer)lua_rawlen(L, list);
	const char **to = lua_newuserdatauv(L, sizeof *to * ((size_t)n + 1), 0);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, list, i);
		to[i - 1] = lua_tostring(L, -1);
		lua_pop(L, 1); /* the array still holds it */
	}
	to[n] = NULL;
	if (curl_job_compose(job, from, to, subject, job->headers, body ? body : "", body_len,
	                     time(NULL)) < 0)
		luaL_error(L, "not enough memory");
	lua_settop(L, list - 1);
}

/* job(spec, kind) -> Job: the request SPEC describes, every string copied out of Lua. */
static int job_build(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	static const char *const kinds[] = {"http", "smtp", NULL};
	int kind = luaL_checkoption(L, 2, "http", kinds);
	lua_settop(L, 2);
	struct curl_job_box *b = box_new(L);
	struct curl_job *job = &b->job;
	job->kind = kind == 0 ? CURL_JOB_HTTP : CURL_JOB_SMTP;

	size_t len;
	const char *url = field_string(L, 1, "url", &len);
	if (strlen(url) != len)
		luaL_error(L, "field 'url': contains a NUL byte");
	job->url = dup_mem(L, url, len);
	job->timeout = opt_field_number(L, 1, "timeout", 30);
	job->connect_timeout = opt_field_number(L, 1, "connect_timeout", 10);
	if (job->kind == CURL_JOB_HTTP)
		read_http(L, 1, job);
	else
		read_smtp(L, 1, job);
	return 1;
}

/* [-0, +1, m] The headers of RES as { lower-case name = value }, repeats joined by ", ". */
static void push_headers(lua_State *L, const struct curl_result *res)
{
	lua_newtable(L);
	int t = lua_gettop(L);
	lua_pushnil(L); /* t + 1: the previous header's name, for folded lines */
	for (const char *line = res->headers; *line;) {
		size_t len = strcspn(line, "\n");
		const char *next = line[len] ? line + len + 1 : line + len;
		const char *end = line + len;
		while (end > line && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
			end--;
		const char *colon = memchr(line, ':', (size_t)(end - line));
		if ((*line == ' ' || *line == '\t') && !lua_isnil(L, t + 1)) {
			const char *v = line;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			lua_pushvalue(L, t + 1);
			lua_pushvalue(L, t + 1);
			lua_rawget(L, t);
			lua_pushliteral(L, " ");
			lua_pushlstring(L, v, (size_t)(end - v));
			lua_concat(L, 3);
			lua_rawset(L, t);
		} else if (colon && colon > line && strncmp(line, "HTTP/", 5) != 0) {
			luaL_Buffer name;
			luaL_buffinit(L, &name);
			for (const char *p = line; p < colon; p++)
				luaL_addchar(&name, (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p);
			luaL_pushresult(&name);
			lua_replace(L, t + 1);
			const char *v = colon + 1;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			lua_pushvalue(L, t + 1);
			lua_pushvalue(L, t + 1);
			if (lua_rawget(L, t) == LUA_TSTRING) {
				lua_pushliteral(L, ", ");
				lua_pushlstring(L, v, (size_t)(end - v));
				lua_concat(L, 3);
			} else {
				lua_pop(L, 1);
				lua_pushlstring(L, v, (size_t)(end - v));
			}
			lua_rawset(L, t);
		}
		line = next;
	}
	lua_settop(L, t);
}

static int push_failure(lua_State *L, const struct curl_result *res)
{
	lua_pushnil(L);
	lua_pushstring(L, res->message ? res->message : res->code);
	lua_pushstring(L, res->code);
	return 3;
}

static CURL *state_handle(lua_State *L)
{
	struct http_state *s = lua_touserdata(L, lua_upvalueindex(1));
	if (!s->curl && !(s->curl = curl_easy_init()))
		luaL_error(L, "cannot create a libcurl handle");
	return s->curl;
}

/* Push the job builder, call it on the spec, leave the to-be-closed Job on top. */
static struct curl_job_box *build(lua_State *L, const char *kind)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	lua_pushcfunction(L, job_build);
	lua_pushvalue(L, 1);
	lua_pushstring(L, kind);
	lua_call(L, 2, 1);
	lua_toclose(L, -1);
	return lua_touserdata(L, -1);
}

/* http.request(spec) -> response | nil, msg, code */
static int http_request(lua_State *L)
{
	CURL *curl = state_handle(L);
	struct curl_job_box *b = build(L, "http");
	if (curl_job_perform(curl, &b->job, &b->res, NULL, NULL) < 0)
		return push_failure(L, &b->res);
	lua_createtable(L, 0, 5);
	lua_pushinteger(L, b->res.status);
	lua_setfield(L, -2, "status");
	push_headers(L, &b->res);
	lua_setfield(L, -2, "headers");
	lua_pushlstring(L, b->res.body, b->res.body_size);
	lua_setfield(L, -2, "body");
	lua_pushstring(L, b->res.url);
	lua_setfield(L, -2, "url");
	lua_pushnumber(L, b->res.time);
	lua_setfield(L, -2, "time");
	return 1;
}

/* http.smtp(spec) -> true | nil, msg, code */
static int http_smtp(lua_State *L)
{
	CURL *curl = state_handle(L);
	struct curl_job_box *b = build(L, "smtp");
	if (curl_job_perform(curl, &b->job, &b->res, NULL, NULL) < 0)
		return push_failure(L, &b->res);
	lua_pushboolean(L, 1);
	return 1;
}

/* http.parse_date(s) -> unix seconds | nil */
static int http_parse_date(lua_State *L)
{
	time_t t = curl_getdate(luaL_checkstring(L, 1), NULL);
	if (t == -1)
		lua_pushnil(L);
	else
		lua_pushinteger(L, (lua_Integer)t);
	return 1;
}

/* http.format_date(t) -> "Sun, 06 Nov 1994 08:49:37 GMT" */
static int http_format_date(lua_State *L)
{
	lua_Integer t = luaL_checkinteger(L, 1);
	char out[30];
	lua_pushstring(L, curl_job_format_date((time_t)t, out));
	return 1;
}

/* http.urlencode(s) -> s with everything but RFC 3986 unreserved characters percent-encoded */
static int http_urlencode(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			luaL_addchar(&b, (char)c);
		} else {
			luaL_addchar(&b, '%');
			luaL_addchar(&b, "0123456789ABCDEF"[c >> 4]);
			luaL_addchar(&b, "0123456789ABCDEF"[c & 15]);
		}
	}
	luaL_pushresult(&b);
	return 1;
}

/* http.version() -> "libcurl 7.88.1" */
static int http_version(lua_State *L)
{
	lua_pushfstring(L, "libcurl %s", curl_version_info(CURLVERSION_NOW)->version);
	return 1;
}

int luaopen_cdp_http(lua_State *L)
{
	static const luaL_Reg box_meta[] = {
		{"__gc", box_gc},
		{"__close", box_gc},
		{"__tostring", box_tostring},
		{NULL, NULL},
	};
	static const luaL_Reg state_meta[] = {
		{"__gc", state_gc},
		{"__tostring", state_tostring},
		{NULL, NULL},
	};
	static const luaL_Reg funcs[] = {
		{"request", http_request},
		{"smtp", http_smtp},
		{"parse_date", http_parse_date},
		{"format_date", http_format_date},
		{"urlencode", http_urlencode},
		{"version", http_version},
		{NULL, NULL},
	};
	if (luaL_newmetatable(L, CURL_JOB_BOX))
		luaL_setfuncs(L, box_meta, 0);
	lua_pop(L, 1);
	if (luaL_newmetatable(L, STATE_TNAME))
		luaL_setfuncs(L, state_meta, 0);
	lua_pop(L, 1);

	lua_pushcfunction(L, job_build);
	lua_setfield(L, LUA_REGISTRYINDEX, JOB_BUILDER);

	struct http_state *s = lua_newuserdatauv(L, sizeof *s, 0);
	s->curl = NULL;
	s->global = 0;
	luaL_setmetatable(L, STATE_TNAME);
	if (curl_job_global_init() < 0)
		return luaL_error(L, "cannot initialise libcurl%s%s", cdp_curl_error() ? ": " : "",
		                  cdp_curl_error() ? cdp_curl_error() : "");
	s->global = 1;

	luaL_newlibtable(L, funcs);
	lua_pushvalue(L, -2);
	luaL_setfuncs(L, funcs, 1);
	return 1;
}
