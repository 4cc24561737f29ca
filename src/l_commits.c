/*
 * cdp.commits.native — Conventional Commits messages parsed in C
 * (src/core/conventional.c), for commits.parse and for the walk.
 *
 *   native.parse(message) -> { type, scope, breaking, breaking_note,
 *     description, header, body, footers = {{token, value}}, conventional,
 *     revert = {header, id} }      -- what commits.reference_parse returns
 *
 * A walk reads thousands of messages and a policy looks at a few fields of
 * each, so cdp_commits_push can leave "body" and "footers" out: a shared
 * metatable fills them in from the message on first use. The message is kept
 * in a weak table keyed by the parsed table, so it lives as long as that does.
 */
#include "l_commits.h"
#include "host.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define PARSED_MT "cdp.commits.Parsed"
#define MESSAGES "cdp.commits.messages" /* parsed table -> message (or its key), weak keys */
#define LOADERS "cdp.commits.loaders"   /* parsed table -> what reads the message by its key */
#define SCRATCH_MT "cdp.commits.Scratch"

static void register_parsed(lua_State *L);

static void push_span(lua_State *L, const char *base, struct cc_span s)
{
	lua_pushlstring(L, base + s.off, s.len);
}

/* [-0, +0, m] body and footers of M into the table at T. */
static void set_body_and_footers(lua_State *L, const struct cc_message *m, int t)
{
	push_span(L, m->buf, m->body);
	lua_setfield(L, t, "body");
	lua_createtable(L, (int)m->nfooters, 0);
	for (size_t i = 0; i < m->nfooters; i++) {
		lua_createtable(L, 0, 2);
		push_span(L, m->text, m->footers[i].token);
		lua_setfield(L, -2, "token");
		push_span(L, m->buf, m->footers[i].value);
		lua_setfield(L, -2, "value");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, t, "footers");
}

/* A message in a to-be-closed box, so a raise while pushing frees its buffers. */
static int scratch_close(lua_State *L)
{
	cc_message_free(luaL_checkudata(L, 1, SCRATCH_MT));
	return 0;
}

/* [-0, +1, m] A closed-on-return box holding an empty message. */
static struct cc_message *scratch_new(lua_State *L)
{
	struct cc_message *m = lua_newuserdatauv(L, sizeof *m, 0);
	memset(m, 0, sizeof *m);
	luaL_setmetatable(L, SCRATCH_MT);
	lua_toclose(L, -1);
	return m;
}

/* [-0, +0, m] Parse the string at MESSAGE into M; raises when out of memory. */
static void parse_into(lua_State *L, struct cc_message *m, int message, int body)
{
	size_t len;
	const char *text = lua_tolstring(L, message, &len);
	if (cc_parse(m, text, len, body) < 0)
		luaL_error(L, "not enough memory");
}

/* __index of a walk's parsed table: body and footers, parsed when first asked for. */
static int parsed_index(lua_State *L)
{
	const char *k = lua_tostring(L, 2);
	if (!k || (strcmp(k, "body") != 0 && strcmp(k, "footers") != 0))
		return 0;
	lua_getfield(L, LUA_REGISTRYINDEX, LOADERS);
	lua_pushvalue(L, 1);
	int loader = lua_rawget(L, -2) == LUA_TFUNCTION;
	lua_getfield(L, LUA_REGISTRYINDEX, MESSAGES);
	lua_pushvalue(L, 1);
	lua_rawget(L, -2);
	if (loader) {
		lua_pushvalue(L, -3);
		lua_insert(L, -2);
		lua_call(L, 1, 1);
	}
	if (lua_type(L, -1) != LUA_TSTRING)
		return 0;
	int message = lua_gettop(L);
	struct cc_message *m = scratch_new(L);
	parse_into(L, m, message, 1);
	set_body_and_footers(L, m, 1);
	lua_pushvalue(L, 2);
	lua_rawget(L, 1);
	return 1;
}

void cdp_commits_push(lua_State *L, const struct cc_message *m, int message, int loader)
{
	message = lua_absindex(L, message);
	if (loader)
		loader = lua_absindex(L, loader);
	lua_createtable(L, 0, 10);
	int t = lua_gettop(L);
	push_span(L, m->buf, m->type);
	lua_setfield(L, t, "type");
	if (m->has_scope) {
		push_span(L, m->text, m->scope);
		lua_setfield(L, t, "scope");
	}
	lua_pushboolean(L, m->breaking);
	lua_setfield(L, t, "breaking");
	if (m->note == CC_NOTE_DESCRIPTION) {
		push_span(L, m->text, m->description);
		lua_setfield(L, t, "breaking_note");
	} else if (m->note >= 0) {
		push_span(L, m->buf, m->footers[m->note].value);
		lua_setfield(L, t, "breaking_note");
	}
	push_span(L, m->text, m->description);
	lua_setfield(L, t, "description");
	push_span(L, m->text, m->header);
	lua_setfield(L, t, "header");
	lua_pushboolean(L, m->conventional);
	lua_setfield(L, t, "conventional");
	if (m->is_revert) {
		lua_createtable(L, 0, 2);
		push_span(L, m->text, m->revert_header);
		lua_setfield(L, -2, "header");
		if (m->has_revert_id) {
			push_span(L, m->buf, m->revert_id);
			lua_setfield(L, -2, "id");
		}
		lua_setfield(L, t, "revert");
	}
	if (m->has_body) {
		set_body_and_footers(L, m, t);
		return;
	}
	if (luaL_getmetatable(L, PARSED_MT) != LUA_TTABLE) {
		lua_pop(L, 1);
		register_parsed(L);
		luaL_getmetatable(L, PARSED_MT);
	}
	lua_setmetatable(L, t);
	lua_getfield(L, LUA_REGISTRYINDEX, MESSAGES);
	lua_pushvalue(L, t);
	lua_pushvalue(L, message);
	lua_rawset(L, -3);
	lua_pop(L, 1);
	if (loader) {
		lua_getfield(L, LUA_REGISTRYINDEX, LOADERS);
		lua_pushvalue(L, t);
		lua_pushvalue(L, loader);
		lua_rawset(L, -3);
		lua_pop(L, 1);
	}
}

/* native.parse(message) -> the whole parsed table */
static int commits_parse(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TSTRING);
	lua_settop(L, 1);
	struct cc_message *m = scratch_new(L);
	parse_into(L, m, 1, 1);
	cdp_commits_push(L, m, 1, 0);
	return 1;
}

/* The metatables and the weak table of messages, once per state; the walk can
 * push parsed messages before anyone requires this module. */
static void register_parsed(lua_State *L)
{
	if (luaL_newmetatable(L, SCRATCH_MT)) {
		lua_pushcfunction(L, scratch_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, scratch_close);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, PARSED_MT)) {
		lua_pushcfunction(L, parsed_index);
		lua_setfield(L, -2, "__index");
		lua_pushliteral(L, "cdp.commits.Parsed");
		lua_setfield(L, -2, "__name");
	}
	lua_pop(L, 1);
	const char *weak[] = {MESSAGES, LOADERS};
	for (int i = 0; i < 2; i++) {
		if (lua_getfield(L, LUA_REGISTRYINDEX, weak[i]) != LUA_TTABLE) {
			lua_newtable(L);
			lua_createtable(L, 0, 1);
			lua_pushliteral(L, "k");
			lua_setfield(L, -2, "__mode");
			lua_setmetatable(L, -2);
			lua_setfield(L, LUA_REGISTRYINDEX, weak[i]);
		}
		lua_pop(L, 1);
	}
}

int luaopen_cdp_commits_native(lua_State *L)
{
	register_parsed(L);
	static const luaL_Reg functions[] = {
		{"parse", commits_parse},
		{NULL, NULL},
	};
	luaL_newlib(L, functions);
	return 1;
}