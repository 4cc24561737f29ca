/*
 * cdp.toml — lossless TOML documents for Lua, on src/core/toml.c.
 *
 *   local doc, msg, code = toml.parse(text, { name = "crates/a/Cargo.toml" })
 *   doc:get({ "dependencies", "serde", "version" })   --> "1.0"
 *   doc:set_string({ "package", "version" }, "1.2.3") --> true | nil, msg, "ETOML"
 *   doc:text()                                        --> the edited text
 *
 * A path is an array of keys (strings) and, inside arrays, 1-based indexes.
 */
#include "host.h"
#include "core/toml.h"

#include <lauxlib.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#define DOC_MT "cdp.toml.Document"

struct ldoc {
	toml_doc *doc; /* NULL when closed */
};

/* [-0, +0, v] The open document at IDX; raises if it is closed. */
static struct ldoc *check_doc(lua_State *L, int idx)
{
	struct ldoc *d = luaL_checkudata(L, idx, DOC_MT);
	if (!d->doc)
		luaL_error(L, "attempt to use a closed TOML document");
	return d;
}

/* [-0, +1, -] The document's name (from toml.parse's options). */
static const char *doc_name(lua_State *L, int idx)
{
	lua_getiuservalue(L, idx, 1);
	return lua_tostring(L, -1);
}

static bool is_bare_key(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* [-0, +1, m] The path at IDX as TOML would write it: target.'cfg(unix)'.dependencies */
static const char *push_path_text(lua_State *L, int idx)
{
	if (lua_type(L, idx) == LUA_TSTRING) {
		lua_pushvalue(L, idx);
		return lua_tostring(L, -1);
	}
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, i);
		if (lua_type(L, -1) == LUA_TNUMBER) {
			lua_pushfstring(L, "[%I]", (LUAI_UACINT)lua_tointeger(L, -1));
			lua_remove(L, -2);
			luaL_addvalue(&b);
			continue;
		}
		size_t len;
		const char *k = lua_tolstring(L, -1, &len);
		if (i > 1)
			luaL_addchar(&b, '.');
		if (is_bare_key(k, len)) {
			luaL_addvalue(&b);
		} else {
			bool q = memchr(k, '\'', len) != NULL;
			luaL_addchar(&b, q ? '"' : '\'');
			luaL_addvalue(&b);
			luaL_addchar(&b, q ? '"' : '\'');
		}
	}
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

/* [-0, +0, v] The node at the path in argument IDX, or NULL. Bad paths raise. */
static const toml_node *resolve(lua_State *L, const toml_doc *doc, int idx)
{
	const toml_node *x = toml_doc_root(doc);
	if (lua_type(L, idx) == LUA_TSTRING) {
		size_t len;
		const char *k = lua_tolstring(L, idx, &len);
		return toml_node_get(x, k, len);
	}
	luaL_argexpected(L, lua_type(L, idx) == LUA_TTABLE, idx, "path (table of keys)");
	/* Raw: a metamethod could close the document while X points into it. */
	lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
	for (lua_Integer i = 1; i <= n; i++) {
		int t = lua_rawgeti(L, idx, i);
		if (t == LUA_TSTRING) {
			size_t len;
			const char *k = lua_tolstring(L, -1, &len);
			x = x ? toml_node_get(x, k, len) : NULL;
		} else if (t == LUA_TNUMBER && lua_isinteger(L, -1)) {
			lua_Integer at = lua_tointeger(L, -1);
			x = x && toml_node_type(x) == TOML_ARRAY && at >= 1
			        ? toml_node_at(x, (size_t)(at - 1))
			        : NULL;
		} else {
			luaL_error(L, "bad path element #%d (string or integer expected, got %s)", (int)i,
			           luaL_typename(L, -1));
		}
		lua_pop(L, 1);
	}
	return x;
}

/* [-0, +1, m] Push NODE as a Lua value. */
static void push_node(lua_State *L, const toml_node *x)
{
	luaL_checkstack(L, 4, "TOML document nested too deeply");
	size_t len;
	const char *s;
	switch (toml_node_type(x)) {
	case TOML_STRING:
		s = toml_node_string(x, &len);
		lua_pushlstring(L, s, len);
		break;
	case TOML_INTEGER:
		lua_pushinteger(L, (lua_Integer)toml_node_integer(x));
		break;
	case TOML_FLOAT:
		lua_pushnumber(L, (lua_Number)toml_node_float(x));
		break;
	case TOML_BOOL:
		lua_pushboolean(L, toml_node_bool(x));
		break;
	case TOML_DATETIME:
		s = toml_node_raw(x, &len);
		lua_pushlstring(L, s, len);
		break;
	case TOML_ARRAY: {
		size_t n = toml_node_count(x);
		lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
		for (size_t i = 0; i < n; i++) {
			push_node(L, toml_node_at(x, i));
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	}
	case TOML_TABLE: {
		size_t n = toml_node_count(x);
		lua_createtable(L, 0, n > INT_MAX ? INT_MAX : (int)n);
		for (size_t i = 0; i < n; i++) {
			const toml_node *kid = toml_node_at(x, i);
			s = toml_node_key(kid, &len);
			lua_pushlstring(L, s, len);
			push_node(L, kid);
			lua_rawset(L, -3);
		}
		break;
	}
	}
}

/* toml.parse(text [, {name = "Cargo.toml"}]) -> Document | nil, "name:line:col: why", "ETOML" */
static int toml_parse(lua_State *L)
{
	size_t len;
	const char *text = luaL_checklstring(L, 1, &len);
	const char *name = "<toml>";
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		/* Raw, and left on the stack: NAME is used after allocations below. */
		if (cdp_rawfield(L, 2, "name") != LUA_TNIL)
			name = luaL_checkstring(L, -1);
	}
	/* The handle exists, closed, before the document does: an error leaves nothing behind. */
	struct ldoc *d = lua_newuserdatauv(L, sizeof *d, 1);
	d->doc = NULL;
	luaL_setmetatable(L, DOC_MT);
	lua_pushstring(L, name);
	lua_setiuservalue(L, -2, 1);
	toml_error err;
	if (toml_doc_parse(&d->doc, text, len, &err) < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s:%d:%d: %s", name, (int)err.line, (int)err.column, err.message);
		lua_pushliteral(L, "ETOML");
		return 3;
	}
	return 1;
}

/* doc:get(path) -> value | nil */
static int doc_get(lua_State *L)
{
	struct ldoc *d = check_doc(L, 1);
	const toml_node *x = resolve(L, d->doc, 2);
	if (!x)
		lua_pushnil(L);
	else
		push_node(L, x);
	return 1;
}

/* doc:to_table() -> the whole document as Lua tables */
static int doc_to_table(lua_State *L)
{
	struct ldoc *d = check_doc(L, 1);
	push_node(L, toml_doc_root(d->doc));
	return 1;
}

/* doc:span(path) -> first, last (1-based, inclusive, as string.sub takes them) | nil */
static int doc_span(lua_State *L)
{
	struct ldoc *d = check_doc(L, 1);
	const toml_node *x = resolve(L, d->doc, 2);
	size_t start, end;
	if (!x || !toml_node_span(x, &start, &end)) {
		lua_pushnil(L);
		return 1;
	}
	lua_pushinteger(L, (lua_Integer)start + 1);
	lua_pushinteger(L, (lua_Integer)end);
	return 2;
}

/* doc:key_span(path) -> first, last of the key naming the value | nil */
static int doc_key_span(lua_State *L)
{
	struct ldoc *d = check_doc(L, 1);
	const toml_node *x = resolve(L, d->doc, 2);
	size_t start, end;
	if (!x || !toml_node_key_span(x, &start, &end)) {
		lua_pushnil(L);
		return 1;
	}
	lua_pushinteger(L, (lua_Integer)start + 1);
	lua_pushinteger(L, (lua_Integer)end);
	return 2;
}

/* doc:type(path) -> "table" | "array" | "string" | "integer" | "float" | "boolean" | "datetime" | nil */
static int doc_type(lua_State *L)
{
	struct ldoc *d = check_doc(L, 1);
	const toml_node *x = resolve(L, d->doc, 2);
	if (!x)
		lua_pushnil(L);
	else
		lua_pushstring(L, toml_type_name(toml_node_type(x)));
	return 1;
}

/*
 * doc:style(path) -> how the value was written: "basic", "literal", "ml-basic",
 * "ml-literal" for strings; "root", "header", "array", "inline", "dotted",
 * "implicit" for tables; nil otherwise.
 */
static int doc_style(lua_State *L)
{
	static const char *const str_styles[] = {"basic", "literal", "ml-basic", "ml-literal"};
	static const char *const table_kinds[] = {"root",   "header",  "array",
	                                          "inline", "dotted", "implicit"};
	struct ldoc *d = check_doc(L, 1);
	const toml_node *x = resolve(L, d->doc, 2);
	if (x && toml_node_type(x) == TOML_STRING)
		lua_pushstring(L, str_styles[toml_node_str_style(x)]);
	else if (x && toml_node_type(x) == TOML_TABLE)
		lua_pushstring(L, table_kinds[toml_node_table_kind(x)]);
	else
		lua_pushnil(L);
	return 1;
}

/* doc:keys(path) -> the table's keys in the order the text defines them | nil */
static int doc_keys(lua_State *L)
{
	struct ldoc *d = check_doc(L, 1);
	const toml_node *x = lua_isnoneornil(L, 2) ? toml_doc_root(d->doc) : resolve(L, d->doc, 2);
	if (!x || toml_node_type(x) != TOML_TABLE) {
		lua_pushnil(L);
		return 1;
	}
	size_t n = toml_node_count(x);
	lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *k = toml_node_key(toml_node_at(x, i), &len);
		lua_pushlstring(L, k, len);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* doc:set_string(path, value) -> true | nil, msg, "ETOML" */
static int doc_set_string(lua_State *L)
{
	struct ldoc *d = check_doc(L, 1);
	size_t len;
	const char *value = luaL_checklstring(L, 3, &len);
	const toml_node *x = resolve(L, d->doc, 2);
	if (!x || toml_node_type(x) != TOML_STRING) {
		const char *name = doc_name(L, 1);
		const char *path = push_path_text(L, 2);
		lua_pushnil(L);
		if (!x)
			lua_pushfstring(L, "%s: no value at %s", name, path);
		else
			lua_pushfstring(L, "%s: %s is not a string but a value of type %s", name, path,
			                toml_type_name(toml_node_type(x)));
		lua_pushliteral(L, "ETOML");
		return 3;
	}
	toml_error err;
	if (toml_doc_set_string(d->doc, x, value, len, &err) < 0) {
		const char *name = doc_name(L, 1);
		const char *path = push_path_text(L, 2);
		lua_pushnil(L);
		lua_pushfstring(L, "%s: cannot set %s: %s", name, path, err.message);
		lua_pushliteral(L, "ETOML");
		return 3;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* doc:text() -> the current text */
static int doc_text(lua_State *L)
{
	struct ldoc *d = check_doc(L, 1);
	size_t len;
	const char *text = toml_doc_text(d->doc, &len);
	lua_pushlstring(L, text, len);
	return 1;
}

/* doc:name() -> the name given to toml.parse */
static int doc_get_name(lua_State *L)
{
	luaL_checkudata(L, 1, DOC_MT);
	doc_name(L, 1);
	return 1;
}

/* __gc, __close and doc:close(): safe to call twice. */
static int doc_close(lua_State *L)
{
	struct ldoc *d = luaL_checkudata(L, 1, DOC_MT);
	toml_doc_free(d->doc);
	d->doc = NULL;
	return 0;
}

static int doc_tostring(lua_State *L)
{
	struct ldoc *d = luaL_checkudata(L, 1, DOC_MT);
	const char *name = doc_name(L, 1);
	if (d->doc)
		lua_pushfstring(L, DOC_MT " (%s)", name);
	else
		lua_pushfstring(L, DOC_MT " (%s, closed)", name);
	return 1;
}

int luaopen_cdp_toml(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{"parse", toml_parse},
		{NULL, NULL},
	};
	static const luaL_Reg methods[] = {
		{"get", doc_get},         {"span", doc_span},   {"key_span", doc_key_span},
		{"type", doc_type},       {"style", doc_style}, {"keys", doc_keys},
		{"to_table", doc_to_table}, {"set_string", doc_set_string},
		{"text", doc_text},       {"name", doc_get_name}, {"close", doc_close},
		{NULL, NULL},
	};
	static const luaL_Reg metamethods[] = {
		{"__gc", doc_close},
		{"__close", doc_close},
		{"__tostring", doc_tostring},
		{"__index", NULL},
		{NULL, NULL},
	};
	luaL_newmetatable(L, DOC_MT);
	luaL_setfuncs(L, metamethods, 0);
	luaL_newlibtable(L, methods);
	luaL_setfuncs(L, methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
