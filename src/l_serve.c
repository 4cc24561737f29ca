/*
 * cdp.serve — an HTTP/1.1 listener for forge webhooks (cdp serve). One request
 * per connection: its head (bounded) and body (bounded by the caller) are read
 * whole, within a read timeout, then the caller answers and the connection
 * closes. No TLS: it listens on loopback unless told otherwise, behind a
 * reverse proxy that terminates TLS when the forge is elsewhere.
 *
 *   serve.listen{ address = "127.0.0.1", port = 0 } -> Listener | nil, msg, code
 *   listener:accept{ timeout =, max_body =, read_timeout = } -> request, connection
 *       | nil (timeout) | nil, msg, code ("EINTR" when a signal came)
 *   connection:respond(status, body, content_type) -> true | nil, msg, code
 *   serve.equal(a, b) -> bool, in time that depends on the lengths only
 *
 * A request is a table: method, target, path, query, headers (lower-case names),
 * body (nil when too_large or chunked), too_large, chunked, peer.
 */
#define _GNU_SOURCE /* accept4 */
#include "host.h"

#include <arpa/inet.h>
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LISTENER_MT "cdp.serve.Listener"
#define CONNECTION_MT "cdp.serve.Connection"
#define HEAD_MAX 16384

struct handle {
	int fd; /* -1: closed */
};

static int handle_close(lua_State *L, const char *mt)
{
	struct handle *h = luaL_checkudata(L, 1, mt);
	if (h->fd >= 0) {
		close(h->fd);
		h->fd = -1;
	}
	return 0;
}

static int listener_close(lua_State *L) { return handle_close(L, LISTENER_MT); }
static int connection_close(lua_State *L) { return handle_close(L, CONNECTION_MT); }

static struct handle *check_open(lua_State *L, const char *mt)
{
	struct handle *h = luaL_checkudata(L, 1, mt);
	if (h->fd < 0)
		luaL_error(L, "attempt to use a closed %s", mt);
	return h;
}

static double now_monotonic(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double opt_number(lua_State *L, int t, const char *key, double def)
{
	if (!t)
		return def;
	int type = lua_getfield(L, t, key);
	double v = def;
	if (type == LUA_TNUMBER)
		v = lua_tonumber(L, -1);
	else if (type != LUA_TNIL)
		luaL_error(L, "option '%s' must be a number, not %s", key, luaL_typename(L, -1));
	lua_pop(L, 1);
	return v;
}

/* serve.listen{ address, port } */
static int serve_listen(lua_State *L)
{
	int t = 0;
	if (!lua_isnoneornil(L, 1)) {
		luaL_checktype(L, 1, LUA_TTABLE);
		t = 1;
	}
	const char *address = "127.0.0.1";
	if (t && lua_getfield(L, 1, "address") != LUA_TNIL)
		address = luaL_checkstring(L, -1);
	double port = opt_number(L, t, "port", 0);
	if (port < 0 || port > 65535 || port != floor(port))
		luaL_error(L, "option 'port' must be an integer from 0 to 65535");
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, address, &sa.sin_addr) != 1)
		luaL_error(L, "option 'address' must be an IPv4 address such as 127.0.0.1, not '%s'", address);

	struct handle *h = lua_newuserdatauv(L, sizeof *h, 0);
	h->fd = -1;
	luaL_setmetatable(L, LISTENER_MT);
	char thing[96];
	snprintf(thing, sizeof thing, "%s:%d", address, (int)port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cdp_push_errno(L, errno, thing, NULL);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0) {
		int err = errno;
		close(fd);
		return cdp_push_errno(L, err, thing, NULL);
	}
	h->fd = fd;
	return 1;
}

/* listener:port() -> the port it listens on (the one chosen for port 0) */
static int listener_port(lua_State *L)
{
	struct handle *h = check_open(L, LISTENER_MT);
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	if (getsockname(h->fd, (struct sockaddr *)&sa, &len) != 0)
		return cdp_push_errno(L, errno, "listener", NULL);
	lua_pushinteger(L, ntohs(sa.sin_port));
	return 1;
}

/* Wait until FD is readable or DEADLINE passes: 1, 0 (timeout), or -errno. */
static int wait_readable(int fd, double deadline)
{
	for (;;) {
		double left = deadline - now_monotonic();
		if (left <= 0)
			return 0;
		struct pollfd p = {fd, POLLIN, 0};
		int ms = left > 3600 ? 3600000 : (int)ceil(left * 1000);
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 1;
		if (r < 0)
			return -errno;
	}
}

/* A header's value in the raw head, or NULL (the name matched without case). */
static const char *header_value(lua_State *L, int headers, const char *name)
{
	lua_getfield(L, headers, name);
	const char *v = lua_tostring(L, -1);
	lua_pop(L, 1); /* anchored in the headers table */
	return v;
}

/*
 * [-0, +1, m] Parse the head (request line and headers) in BUF into a request
 * table. Returns 0, or an HTTP status for a malformed head (400).
 */
static int parse_head(lua_State *L, const char *buf, size_t len)
{
	const char *end = buf + len, *eol = memchr(buf, '\n', len);
	if (!eol)
		return 400;
	const char *sp1 = memchr(buf, ' ', (size_t)(eol - buf));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2)
		return 400;
	lua_createtable(L, 0, 10);
	lua_pushlstring(L, buf, (size_t)(sp1 - buf));
	lua_setfield(L, -2, "method");
	const char *target = sp1 + 1;
	size_t tlen = (size_t)(sp2 - target);
	lua_pushlstring(L, target, tlen);
	lua_setfield(L, -2, "target");
	const char *q = memchr(target, '?', tlen);
	lua_pushlstring(L, target, q ? (size_t)(q - target) : tlen);
	lua_setfield(L, -2, "path");
	lua_pushlstring(L, q ? q + 1 : "", q ? (size_t)(sp2 - q - 1) : 0);
	lua_setfield(L, -2, "query");
	lua_newtable(L);
	int headers = lua_gettop(L);
	for (const char *line = eol + 1; line < end;) {
		const char *next = memchr(line, '\n', (size_t)(end - line));
		const char *stop = next ? next : end;
		const char *le = stop > line && stop[-1] == '\r' ? stop - 1 : stop;
		if (le == line)
			break;
		const char *colon = memchr(line, ':', (size_t)(le - line));
		if (!colon || colon == line)
			return lua_pop(L, 2), 400;
		luaL_Buffer b;
		luaL_buffinit(L, &b);
		for (const char *c = line; c < colon; c++)
			luaL_addchar(&b, (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c));
		luaL_pushresult(&b);
		const char *v = colon + 1;
		while (v < le && (*v == ' ' || *v == '\t'))
			v++;
		const char *ve = le;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		lua_pushlstring(L, v, (size_t)(ve - v));
		lua_settable(L, headers);
		line = next ? next + 1 : end;
	}
	lua_setfield(L, -2, "headers");
	return 0;
}

/* Read from FD into the buffer B until it holds N bytes or the deadline passes. */
static int read_exact(int fd, luaL_Buffer *b, size_t n, double deadline)
{
	while (n > 0) {
		int r = wait_readable(fd, deadline);
		if (r <= 0)
			return r == 0 ? ETIMEDOUT : -r;
		char chunk[8192];
		ssize_t got = read(fd, chunk, n < sizeof chunk ? n : sizeof chunk);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got == 0 ? ECONNRESET : errno;
		luaL_addlstring(b, chunk, (size_t)got);
		n -= (size_t)got;
	}
	return 0;
}

/*
 * listener:accept{ timeout = 1, max_body = 1048576, read_timeout = 10 }
 * A connection whose head does not arrive whole within read_timeout is closed
 * and the wait goes on, so one slow client cannot stop the others for long.
 */
static int listener_accept(lua_State *L)
{
	struct handle *h = check_open(L, LISTENER_MT);
	int t = lua_isnoneornil(L, 2) ? 0 : (luaL_checktype(L, 2, LUA_TTABLE), 2);
	double timeout = opt_number(L, t, "timeout", 1);
	double max_body = opt_number(L, t, "max_body", 1048576);
	double read_timeout = opt_number(L, t, "read_timeout", 10);
	double deadline = now_monotonic() + timeout;
	for (;;) {
		int r = wait_readable(h->fd, deadline);
		if (r == 0) {
			lua_pushnil(L);
			return 1;
		}
		if (r < 0)
			return cdp_push_errno(L, -r, "accept", NULL);
		struct sockaddr_in peer;
		socklen_t plen = sizeof peer;
		struct handle *c = lua_newuserdatauv(L, sizeof *c, 0);
		c->fd = -1;
		luaL_setmetatable(L, CONNECTION_MT);
		int conn = accept4(h->fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
		if (conn < 0) {
			lua_pop(L, 1);
			if (errno == EINTR)
				return cdp_push_errno(L, EINTR, "accept", NULL);
			continue;
		}
		c->fd = conn;
		int cidx = lua_gettop(L);
		/* the head: up to the empty line, HEAD_MAX at most */
		char head[HEAD_MAX];
		size_t have = 0;
		size_t head_end = 0;
		double rdeadline = now_monotonic() + read_timeout;
		int bad = 0;
		while (!head_end) {
			int w = wait_readable(conn, rdeadline);
			if (w <= 0) {
				bad = -1;
				break;
			}
			ssize_t got = read(conn, head + have, sizeof head - have);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				bad = -1;
				break;
			}
			size_t from = have >= 3 ? have - 3 : 0;
			have += (size_t)got;
			for (size_t i = from; i + 4 <= have; i++)
				if (memcmp(head + i, "\r\n\r\n", 4) == 0) {
					head_end = i + 4;
					break;
				}
			if (!head_end && have == sizeof head) {
				bad = 431;
				break;
			}
		}
		if (bad == -1) { /* gone, or too slow: nothing to answer */
			lua_settop(L, cidx - 1);
			continue;
		}
		if (bad || parse_head(L, head, head_end) != 0) {
			lua_createtable(L, 0, 2);
			lua_pushboolean(L, 1);
			lua_setfield(L, -2, "malformed");
			lua_pushinteger(L, bad ? bad : 400);
			lua_setfield(L, -2, "status");
			lua_pushvalue(L, cidx);
			return 2;
		}
		int req = lua_gettop(L);
		char addr[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &peer.sin_addr, addr, sizeof addr);
		lua_pushfstring(L, "%s:%d", addr, ntohs(peer.sin_port));
		lua_setfield(L, req, "peer");
		lua_getfield(L, req, "headers");
		int headers = lua_gettop(L);
		const char *te = header_value(L, headers, "transfer-encoding");
		const char *cl = header_value(L, headers, "content-length");
		lua_pop(L, 1);
		if (te && strcasecmp(te, "identity") != 0) {
			lua_pushboolean(L, 1);
			lua_setfield(L, req, "chunked");
			lua_pushvalue(L, cidx);
			return 2;
		}
		char *endp = NULL;
		double length = cl ? strtod(cl, &endp) : 0;
		if (cl && (endp == cl || *endp != '\0' || length < 0 || length != floor(length))) {
			lua_pushboolean(L, 1);
			lua_setfield(L, req, "malformed");
			lua_pushinteger(L, 400);
			lua_setfield(L, req, "status");
			lua_pushvalue(L, cidx);
			return 2;
		}
		if (length > max_body) {
			lua_pushboolean(L, 1);
			lua_setfield(L, req, "too_large");
			lua_pushvalue(L, cidx);
			return 2;
		}
		luaL_Buffer b;
		luaL_buffinit(L, &b);
		size_t extra = have - head_end;
		if (extra > (size_t)length)
			extra = (size_t)length;
		luaL_addlstring(&b, head + head_end, extra);
		int err = read_exact(conn, &b, (size_t)length - extra, rdeadline);
		luaL_pushresult(&b);
		if (err) {
			lua_settop(L, cidx - 1);
			continue;
		}
		lua_setfield(L, req, "body");
		lua_pushvalue(L, cidx);
		return 2;
	}
}

static const char *reason_of(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

/* connection:respond(status, body = "", content_type = "application/json"), then it is closed */
static int connection_respond(lua_State *L)
{
	struct handle *c = check_open(L, CONNECTION_MT);
	int status = (int)luaL_checkinteger(L, 2);
	size_t blen;
	const char *body = luaL_optlstring(L, 3, "", &blen);
	const char *ctype = luaL_optstring(L, 4, "application/json");
	luaL_argcheck(L, status >= 100 && status <= 599, 2, "an HTTP status from 100 to 599");
	lua_pushfstring(L, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
	                status, reason_of(status), ctype, (int)blen);
	size_t hlen;
	const char *headp = lua_tolstring(L, -1, &hlen);
	const char *parts[2] = {headp, body};
	size_t lens[2] = {hlen, blen};
	int err = 0;
	for (int i = 0; i < 2 && !err; i++) {
		size_t off = 0;
		while (off < lens[i]) {
			ssize_t w = send(c->fd, parts[i] + off, lens[i] - off, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				err = errno;
				break;
			}
			off += (size_t)w;
		}
	}
	shutdown(c->fd, SHUT_WR);
	close(c->fd);
	c->fd = -1;
	if (err)
		return cdp_push_errno(L, err, "respond", NULL);
	lua_pushboolean(L, 1);
	return 1;
}

/* serve.equal(a, b): compares every byte, so the time says nothing of where they differ */
static int serve_equal(lua_State *L)
{
	size_t la, lb;
	const unsigned char *a = (const unsigned char *)luaL_checklstring(L, 1, &la);
	const unsigned char *b = (const unsigned char *)luaL_checklstring(L, 2, &lb);
	unsigned char diff = la != lb;
	size_t n = la > lb ? la : lb;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)((i < la ? a[i] : 0) ^ (i < lb ? b[i] : 0));
	lua_pushboolean(L, diff == 0);
	return 1;
}

static int listener_tostring(lua_State *L)
{
	struct handle *h = luaL_checkudata(L, 1, LISTENER_MT);
	lua_pushfstring(L, "%s (%s)", LISTENER_MT, h->fd < 0 ? "closed" : "open");
	return 1;
}

static int connection_tostring(lua_State *L)
{
	struct handle *h = luaL_checkudata(L, 1, CONNECTION_MT);
	lua_pushfstring(L, "%s (%s)", CONNECTION_MT, h->fd < 0 ? "closed" : "open");
	return 1;
}

int luaopen_cdp_serve(lua_State *L)
{
	static const luaL_Reg listener_methods[] = {
		{"accept", listener_accept}, {"port", listener_port}, {"close", listener_close}, {NULL, NULL}};
	static const luaL_Reg listener_meta[] = {
		{"__gc", listener_close}, {"__close", listener_close}, {"__tostring", listener_tostring}, {NULL, NULL}};
	static const luaL_Reg connection_methods[] = {
		{"respond", connection_respond}, {"close", connection_close}, {NULL, NULL}};
	static const luaL_Reg connection_meta[] = {
		{"__gc", connection_close}, {"__close", connection_close}, {"__tostring", connection_tostring}, {NULL, NULL}};
	static const luaL_Reg functions[] = {{"listen", serve_listen}, {"equal", serve_equal}, {NULL, NULL}};
	const struct {
		const char *mt;
		const luaL_Reg *methods, *meta;
	} types[] = {{LISTENER_MT, listener_methods, listener_meta}, {CONNECTION_MT, connection_methods, connection_meta}};
	for (int i = 0; i < 2; i++) {
		luaL_newmetatable(L, types[i].mt);
		luaL_setfuncs(L, types[i].meta, 0);
		lua_newtable(L);
		luaL_setfuncs(L, types[i].methods, 0);
		lua_setfield(L, -2, "__index");
		lua_pop(L, 1);
	}
	luaL_newlib(L, functions);
	return 1;
}
