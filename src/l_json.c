/*
 * cdp.json.native — the encoder behind cdp.json.encode, in C.
 *
 *   native.encode(value, indent|nil, object_mt) -> text
 *   native.integers(value) -> value
 *
 * It writes the same bytes as json.reference_encode, the definition in Lua
 * (lua/cdp/json.lua), for every value: keys sorted bytewise, a table an array
 * when its keys are exactly 1..#t (unless its metatable is OBJECT_MT), empty
 * tables arrays, integral numbers below 2^53 as integers and other numbers in
 * the shortest of %.15g, %.16g, %.17g that reads back as the same number,
 * control characters escaped, every other byte as it is. Tables are read as
 * the Lua definition reads them: through #t, pairs(t) and t[k], so __len,
 * __pairs and __index mean what they mean there. A plan's JSON is a few MB of
 * small tables; building it in Lua cost a tenth of a second on large
 * workspaces.
 *
 * Errors are the Lua definition's messages, raised without a position: a
 * cycle, NaN or an infinity, a key or value JSON cannot hold. The output
 * buffer lives in a to-be-closed box, so a raise (from here or from a
 * metamethod) frees it.
 */
#include "host.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUFFER_MT "cdp.json.Buffer"

struct key {
	const char *s;
	size_t len;
};

struct buffer {
	char *p;
	size_t n, cap;
	const void **path; /* tables being encoded, outermost first */
	size_t depth, path_cap;
	const char *indent; /* NULL: compact */
	size_t indent_len;
	struct key *keys; /* a stack of the keys of the objects being encoded */
	size_t nkeys, keys_cap;
};

static int buffer_close(lua_State *L)
{
	struct buffer *b = luaL_checkudata(L, 1, BUFFER_MT);
	free(b->p);
	free(b->path);
	free(b->keys);
	b->p = NULL;
	b->path = NULL;
	b->keys = NULL;
	b->n = b->cap = b->depth = b->path_cap = b->nkeys = b->keys_cap = 0;
	return 0;
}

static void reserve(lua_State *L, struct buffer *b, size_t more)
{
	if (b->n + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->n + more)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		luaL_error(L, "not enough memory");
	b->p = p;
	b->cap = cap;
}

static void put(lua_State *L, struct buffer *b, const char *s, size_t len)
{
	reserve(L, b, len);
	memcpy(b->p + b->n, s, len);
	b->n += len;
}

#define PUT_LITERAL(L, b, s) put(L, b, s, sizeof(s) - 1)

static void put_indent(lua_State *L, struct buffer *b, size_t depth)
{
	for (size_t i = 0; i < depth; i++)
		put(L, b, b->indent, b->indent_len);
}

/* '"' .. s:gsub('[%c"\\]', escapes) .. '"' — %c is iscntrl in the C locale. */
static void put_quoted(lua_State *L, struct buffer *b, const char *s, size_t len)
{
	reserve(L, b, len + 2);
	b->p[b->n++] = '"';
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\')
			continue;
		put(L, b, s + start, i - start);
		start = i + 1;
		char esc[8];
		switch (c) {
		case '"': PUT_LITERAL(L, b, "\\\""); break;
		case '\\': PUT_LITERAL(L, b, "\\\\"); break;
		case '\b': PUT_LITERAL(L, b, "\\b"); break;
		case '\f': PUT_LITERAL(L, b, "\\f"); break;
		case '\n': PUT_LITERAL(L, b, "\\n"); break;
		case '\r': PUT_LITERAL(L, b, "\\r"); break;
		case '\t': PUT_LITERAL(L, b, "\\t"); break;
		default:
			snprintf(esc, sizeof esc, "\\u%04x", c);
			put(L, b, esc, 6);
		}
	}
	put(L, b, s + start, len - start);
	PUT_LITERAL(L, b, "\"");
}

/* [-0, +0, e] The number at IDX, as the Lua definition writes it. */
static void put_number(lua_State *L, struct buffer *b, int idx)
{
	char text[64];
	int len;
	double d;
	if (lua_isinteger(L, idx)) {
		lua_Integer i = lua_tointeger(L, idx);
		/* math.abs wraps at math.mininteger, as it does in Lua */
		lua_Integer a = i < 0 ? (lua_Integer)(0u - (lua_Unsigned)i) : i;
		if (a < ((lua_Integer)1 << 53)) {
			len = snprintf(text, sizeof text, LUA_INTEGER_FMT, (LUAI_UACINT)i);
			put(L, b, text, (size_t)len);
			return;
		}
		d = (double)i;
	} else {
		d = (double)lua_tonumber(L, idx);
		if (isnan(d) || isinf(d)) {
			const char *shown = luaL_tolstring(L, idx, NULL);
			lua_pushfstring(L, "json: cannot encode %s", shown);
			lua_error(L);
		}
		lua_Integer i;
		if (lua_numbertointeger(floor(d), &i) && floor(d) == d && fabs(d) < 9007199254740992.0) {
			len = snprintf(text, sizeof text, LUA_INTEGER_FMT, (LUAI_UACINT)i);
			put(L, b, text, (size_t)len);
			return;
		}
	}
	/* The shortest text that reads back as the same number. */
	for (int digits = 15; digits <= 17; digits++) {
		len = snprintf(text, sizeof text, "%.*g", digits, d);
		if (lua_stringtonumber(L, text)) {
			int same = lua_compare(L, -1, idx, LUA_OPEQ);
			lua_pop(L, 1);
			if (same)
				break;
		}
	}
	put(L, b, text, (size_t)len);
}

/* pairs(t), with the __pairs metamethod when there is one. */
struct pairs {
	int t;
	int f; /* stack index of the iterator function, 0 for lua_next */
};

/* [-0, +1 or +3, e] Start iterating table T: leaves the first control value on top. */
static void pairs_start(lua_State *L, int t, struct pairs *it)
{
	it->t = t;
	it->f = 0;
	if (luaL_getmetafield(L, t, "__pairs") != LUA_TNIL) {
		lua_pushvalue(L, t);
		lua_call(L, 1, 3);
		it->f = lua_gettop(L) - 2;
	} else {
		lua_pushnil(L);
	}
}

/* [-1, +2 | -1 (-3 for __pairs at the end), e] lua_next's protocol. */
static int pairs_next(lua_State *L, struct pairs *it)
{
	if (!it->f)
		return lua_next(L, it->t);
	lua_pushvalue(L, it->f);
	lua_pushvalue(L, it->f + 1);
	lua_pushvalue(L, -3);
	lua_call(L, 2, 2);
	if (lua_isnil(L, -2)) {
		lua_pop(L, 5); /* k, v, the last key, and the function and state */
		return 0;
	}
	lua_remove(L, -3);
	return 1;
}

/* [-1, +0, e] Stop an iteration early: pop the key and the iterator. */
static void pairs_stop(lua_State *L, struct pairs *it)
{
	lua_pop(L, it->f ? 3 : 1);
}

/* The length of T as an array, or -1 when T is an object (array_length). */
static lua_Integer array_length(lua_State *L, int t, int object_mt)
{
	if (lua_getmetatable(L, t)) {
		int object = lua_rawequal(L, -1, object_mt);
		lua_pop(L, 1);
		if (object)
			return -1;
	}
	lua_Integer n = luaL_len(L, t);
	lua_Integer count = 0;
	struct pairs it;
	pairs_start(L, t, &it);
	while (pairs_next(L, &it)) {
		lua_pop(L, 1);
		lua_Integer k;
		if (!lua_isinteger(L, -1) || (k = lua_tointeger(L, -1)) < 1 || k > n) {
			pairs_stop(L, &it);
			return -1;
		}
		count++;
	}
	return count == n ? n : -1;
}

static int key_cmp(const void *pa, const void *pb)
{
	const struct key *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->s, b->s, n);
	if (c)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

static void encode_value(lua_State *L, struct buffer *b, int idx, size_t depth, int object_mt);

static void encode_array(lua_State *L, struct buffer *b, int t, lua_Integer n, size_t depth, int object_mt)
{
	if (n == 0) {
		PUT_LITERAL(L, b, "[]");
		return;
	}
	put(L, b, b->indent ? "[\n" : "[", b->indent ? 2 : 1);
	for (lua_Integer i = 1; i <= n; i++) {
		if (b->indent)
			put_indent(L, b, depth + 1);
		lua_geti(L, t, i);
		encode_value(L, b, lua_gettop(L), depth + 1, object_mt);
		lua_pop(L, 1);
		if (i < n)
			PUT_LITERAL(L, b, ",");
		if (b->indent)
			PUT_LITERAL(L, b, "\n");
	}
	if (b->indent)
		put_indent(L, b, depth);
	PUT_LITERAL(L, b, "]");
}

/* [-0, +1, e] t[k] as the Lua definition reads it: a number key, written as
 * text, is looked up again as t[tonumber(k)]. PLAIN: no metatable, so raw. */
static void get_member(lua_State *L, int t, const struct key *k, int plain)
{
	lua_pushlstring(L, k->s, k->len);
	if (plain) {
		lua_rawget(L, t);
		return;
	}
	if (lua_gettable(L, t) != LUA_TNIL)
		return;
	lua_pop(L, 1);
	size_t r = lua_stringtonumber(L, k->s);
	if (r == k->len + 1) {
		lua_gettable(L, t);
	} else {
		lua_pop(L, r ? 1 : 0); /* not all of the text is a number */
		lua_pushnil(L);
	}
}

static void push_key(lua_State *L, struct buffer *b, const char *s, size_t len)
{
	if (b->nkeys == b->keys_cap) {
		size_t cap = b->keys_cap ? b->keys_cap * 2 : 64;
		struct key *keys = realloc(b->keys, cap * sizeof *keys);
		if (!keys)
			luaL_error(L, "not enough memory");
		b->keys = keys;
		b->keys_cap = cap;
	}
	b->keys[b->nkeys].s = s;
	b->keys[b->nkeys++].len = len;
}

/* The object T whose keys are b->keys[base...], each anchored by the caller. */
static void put_object(lua_State *L, struct buffer *b, int t, size_t base, size_t depth, int object_mt,
                       int plain)
{
	size_t count = b->nkeys - base;
	if (count == 0) {
		PUT_LITERAL(L, b, "{}");
		return;
	}
	qsort(b->keys + base, count, sizeof *b->keys, key_cmp);
	put(L, b, b->indent ? "{\n" : "{", b->indent ? 2 : 1);
	for (size_t i = 0; i < count; i++) {
		struct key k = b->keys[base + i]; /* the stack may move below */
		if (b->indent)
			put_indent(L, b, depth + 1);
		put_quoted(L, b, k.s, k.len);
		put(L, b, b->indent ? ": " : ":", b->indent ? 2 : 1);
		get_member(L, t, &k, plain);
		encode_value(L, b, lua_gettop(L), depth + 1, object_mt);
		lua_pop(L, 1);
		if (i + 1 < count)
			PUT_LITERAL(L, b, ",");
		if (b->indent)
			PUT_LITERAL(L, b, "\n");
	}
	if (b->indent)
		put_indent(L, b, depth);
	PUT_LITERAL(L, b, "}");
	b->nkeys = base;
}

/*
 * A table without a metatable whose keys are all strings, the shape of almost
 * every object cdp writes: its keys stay anchored by the table itself. Returns
 * 0, having pushed and popped nothing, when T is not of that shape.
 */
static int encode_plain_object(lua_State *L, struct buffer *b, int t, size_t depth, int object_mt)
{
	if (lua_getmetatable(L, t)) {
		lua_pop(L, 1);
		return 0;
	}
	size_t base = b->nkeys;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			lua_pop(L, 1);
			b->nkeys = base;
			return 0;
		}
		size_t len;
		const char *s = lua_tolstring(L, -1, &len);
		push_key(L, b, s, len);
	}
	put_object(L, b, t, base, depth, object_mt, 1);
	return 1;
}

static void encode_object(lua_State *L, struct buffer *b, int t, size_t depth, int object_mt)
{
	if (encode_plain_object(L, b, t, depth, object_mt))
		return;
	/* The keys as strings, anchored in a table NAMES, as pairs(t) gives them. */
	lua_newtable(L);
	int names = lua_gettop(L);
	lua_Integer count = 0;
	struct pairs it;
	pairs_start(L, t, &it);
	while (pairs_next(L, &it)) {
		lua_pop(L, 1);
		int kt = lua_type(L, -1);
		if (kt == LUA_TNUMBER) {
			if (lua_isinteger(L, -1))
				lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, -1));
			else
				luaL_tolstring(L, -1, NULL);
		} else if (kt == LUA_TSTRING) {
			lua_pushvalue(L, -1);
		} else {
			lua_pushfstring(L, "json: cannot encode a key of type %s", lua_typename(L, kt));
			lua_error(L);
		}
		lua_rawseti(L, names, ++count);
	}
	size_t base = b->nkeys;
	for (lua_Integer i = 1; i <= count; i++) {
		size_t len;
		lua_rawgeti(L, names, i);
		const char *s = lua_tolstring(L, -1, &len);
		lua_pop(L, 1); /* still anchored by NAMES */
		push_key(L, b, s, len);
	}
	put_object(L, b, t, base, depth, object_mt, 0);
	lua_pop(L, 1);
}

static void encode_table(lua_State *L, struct buffer *b, int t, size_t depth, int object_mt)
{
	const void *self = lua_topointer(L, t);
	for (size_t i = 0; i < b->depth; i++)
		if (b->path[i] == self) {
			lua_pushliteral(L, "json: cannot encode a table that contains itself");
			lua_error(L);
		}
	if (b->depth == b->path_cap) {
		size_t cap = b->path_cap ? b->path_cap * 2 : 16;
		const void **path = realloc(b->path, cap * sizeof *path);
		if (!path)
			luaL_error(L, "not enough memory");
		b->path = path;
		b->path_cap = cap;
	}
	b->path[b->depth++] = self;
	luaL_checkstack(L, 12, "json: nesting too deep");
	lua_Integer n = array_length(L, t, object_mt);
	if (n >= 0)
		encode_array(L, b, t, n, depth, object_mt);
	else
		encode_object(L, b, t, depth, object_mt);
	b->depth--;
}

static void encode_value(lua_State *L, struct buffer *b, int idx, size_t depth, int object_mt)
{
	size_t len;
	const char *s;
	switch (lua_type(L, idx)) {
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &len);
		put_quoted(L, b, s, len);
		return;
	case LUA_TNUMBER:
		put_number(L, b, idx);
		return;
	case LUA_TBOOLEAN:
		if (lua_toboolean(L, idx))
			PUT_LITERAL(L, b, "true");
		else
			PUT_LITERAL(L, b, "false");
		return;
	case LUA_TNIL:
		PUT_LITERAL(L, b, "null");
		return;
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == NULL) { /* cjson.null */
			PUT_LITERAL(L, b, "null");
			return;
		}
		break;
	case LUA_TTABLE:
		encode_table(L, b, idx, depth, object_mt);
		return;
	}
	lua_pushfstring(L, "json: cannot encode a value of type %s", luaL_typename(L, idx));
	lua_error(L);
}

static int json_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	int has_indent = !lua_isnoneornil(L, 2) && !(lua_isboolean(L, 2) && !lua_toboolean(L, 2));
	if (has_indent)
		luaL_checktype(L, 2, LUA_TSTRING);
	luaL_checktype(L, 3, LUA_TTABLE);
	lua_settop(L, 3);
	struct buffer *b = lua_newuserdatauv(L, sizeof *b, 0);
	memset(b, 0, sizeof *b);
	luaL_setmetatable(L, BUFFER_MT);
	lua_toclose(L, 4);
	if (has_indent)
		b->indent = lua_tolstring(L, 2, &b->indent_len);
	encode_value(L, b, 1, 0, 3);
	lua_pushlstring(L, b->p ? b->p : "", b->n);
	return 1;
}

/*
 * Integral floats in the tables at IDX made integers, in place. cjson reads
 * every JSON number as a float, so a count of 30 from a journal or a forge
 * answer printed as "30.0" and a pull request's number went into a URL as
 * "12.0"; JSON has one number type, and an integer is what 30 says. A decoded
 * value has no cycles and is nested at most cjson's depth limit.
 */
static void integers_in(lua_State *L, int idx)
{
	luaL_checkstack(L, 3, "json: nested too deeply");
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
			lua_Number v = lua_tonumber(L, -1);
			lua_Integer i;
			if (fabs(v) < 9007199254740992.0 && lua_numbertointeger(v, &i) && (lua_Number)i == v) {
				lua_pushvalue(L, -2);
				lua_pushinteger(L, i);
				lua_rawset(L, idx);
			}
		} else if (lua_type(L, -1) == LUA_TTABLE) {
			integers_in(L, lua_gettop(L));
		}
		lua_pop(L, 1);
	}
}

static int json_integers(lua_State *L)
{
	luaL_checkany(L, 1);
	lua_settop(L, 1);
	if (lua_type(L, 1) == LUA_TTABLE)
		integers_in(L, 1);
	else if (lua_type(L, 1) == LUA_TNUMBER && !lua_isinteger(L, 1)) {
		lua_Number v = lua_tonumber(L, 1);
		lua_Integer i;
		if (fabs(v) < 9007199254740992.0 && lua_numbertointeger(v, &i) && (lua_Number)i == v)
			lua_pushinteger(L, i);
	}
	return 1;
}

int luaopen_cdp_json_native(lua_State *L)
{
	if (luaL_newmetatable(L, BUFFER_MT)) {
		lua_pushcfunction(L, buffer_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, buffer_close);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);
	static const luaL_Reg functions[] = {
		{"encode", json_encode},
		{"integers", json_integers},
		{NULL, NULL},
	};
	luaL_newlib(L, functions);
	return 1;
}
