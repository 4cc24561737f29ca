/*
 * cdp.fs — files the way a release pipeline needs them: atomic writes,
 * fsync'd appends for journals, trees removed without following links,
 * sha256, and advisory locks that name their holder.
 *
 * Misuse (wrong argument types, bad options) raises. Failures of the world
 * return nil, "ENOENT: no such file or directory: /the/path", "ENOENT".
 * No Lua call that can raise runs while an fd, DIR* or malloc'd block is
 * held, unless that resource lives in a Scratch box marked to-be-closed.
 *
 * Modes are integers taken as-is (Lua has no octal literals: write
 * tonumber("644", 8) or 420) or octal strings ("0644", "755"); files are
 * made with MODE & ~umask, as open(2) makes them.
 *
 * { beneath = ROOT }: read, write, exists, stat and lstat resolve the path
 * inside ROOT and never through a symbolic link, so content of a repository
 * (a committed CHANGELOG.md -> /proc/self/environ, a crate directory linked
 * to /etc) cannot make cdp read or write anything else. A relative path is
 * taken from ROOT; an absolute one must lie under it. The kernel resolves
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) where it has it, else
 * every component is opened with O_NOFOLLOW. A link on the way fails with
 * ELOOP, a path that leaves ROOT with EXDEV.
 */
#define _GNU_SOURCE /* O_PATH, for describing a link beneath a root without following it */
#include "host.h"
#include "core/sha256.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH_MT "cdp.fs.Scratch"
#define LOCK_MT "cdp.fs.Lock"
#define IO_CHUNK 65536

/* [-0, +3, m] nil, "CODE: strerror: thing", "CODE" */
static int push_fail(lua_State *L, int err, const char *thing)
{
	return cdp_push_errno(L, err, thing, NULL);
}

/* [-0, +3, m] Like push_fail, for operations on two paths. */
static int push_fail2(lua_State *L, int err, const char *from, const char *to)
{
	return cdp_push_errno(L, err, from, to);
}

/* Options ------------------------------------------------------------- */

/* [-0, +0, v] Check that argument IDX is absent, nil or a table. */
static int check_opts(lua_State *L, int idx)
{
	if (lua_isnoneornil(L, idx))
		return 0;
	luaL_checktype(L, idx, LUA_TTABLE);
	return idx;
}

/* [-0, +0, v] Boolean option KEY of the table at OPTS (0: no table). */
static int opt_bool(lua_State *L, int opts, const char *key, int def)
{
	if (!opts)
		return def;
	int t = cdp_rawfield(L, opts, key);
	int v = def;
	if (t == LUA_TBOOLEAN)
		v = lua_toboolean(L, -1);
	else if (t != LUA_TNIL)
		return luaL_error(L, "bad option '%s' (boolean expected, got %s)", key,
		                  luaL_typename(L, -1));
	lua_pop(L, 1);
	return v;
}

/* [-0, +0, v] Permission bits from an integer or an octal string. */
static mode_t opt_mode(lua_State *L, int opts, mode_t def)
{
	if (!opts)
		return def;
	int t = cdp_rawfield(L, opts, "mode");
	lua_Integer v = def;
	if (t == LUA_TNUMBER && lua_isinteger(L, -1)) {
		v = lua_tointeger(L, -1);
	} else if (t == LUA_TSTRING) {
		const char *s = lua_tostring(L, -1);
		char *end;
		v = (lua_Integer)strtol(s, &end, 8);
		if (*s == '\0' || *end != '\0')
			return luaL_error(L, "bad option 'mode' (octal string expected, got '%s')", s);
	} else if (t != LUA_TNIL) {
		return luaL_error(L, "bad option 'mode' (integer or octal string expected, got %s)",
		                  luaL_typename(L, -1));
	}
	if (v < 0 || v > 07777)
		return luaL_error(L, "bad option 'mode' (%d is not a permission mode)", (int)v);
	lua_pop(L, 1);
	return (mode_t)v;
}

/* [-0, +1, v] String option KEY of OPTS (0: no table), left on the stack
 * (so it stays alive); NULL, with nil pushed, when absent. */
static const char *opt_string(lua_State *L, int opts, const char *key)
{
	if (!opts) {
		lua_pushnil(L);
		return NULL;
	}
	int t = cdp_rawfield(L, opts, key);
	if (t == LUA_TNIL)
		return NULL;
	if (t != LUA_TSTRING)
		luaL_error(L, "bad option '%s' (string expected, got %s)", key, luaL_typename(L, -1));
	return lua_tostring(L, -1);
}

/* The process's umask, without changing it for longer than a moment. */
static mode_t current_umask(void)
{
	mode_t mask = umask(022);
	umask(mask);
	return mask;
}

/* Scratch: C resources that must not leak if a Lua call raises ------- */

struct scratch {
	int fd;      /* -1 when none */
	DIR *dir;    /* NULL when none */
	char *buf;   /* malloc'd, NULL when none */
	size_t len, cap;
};

static void scratch_release(struct scratch *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->dir)
		closedir(s->dir);
	s->dir = NULL;
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
}

static int scratch_gc(lua_State *L)
{
	scratch_release(luaL_checkudata(L, 1, SCRATCH_MT));
	return 0;
}

/* [-0, +1, m] A new empty Scratch, marked to-be-closed in its slot. */
static struct scratch *scratch_new(lua_State *L)
{
	struct scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
	s->fd = -1;
	s->dir = NULL;
	s->buf = NULL;
	s->len = s->cap = 0;
	luaL_setmetatable(L, SCRATCH_MT);
	lua_toclose(L, -1);
	return s;
}

/* Append "/NAME" (or NAME when empty) to the path in S; 0 or ENOMEM. */
static int scratch_addpath(struct scratch *s, const char *name)
{
	size_t n = strlen(name);
	size_t need = s->len + n + 2;
	if (need > s->cap) {
		size_t cap = s->cap ? s->cap : 256;
		while (cap < need)
			cap *= 2;
		char *p = realloc(s->buf, cap);
		if (!p)
			return ENOMEM;
		s->buf = p;
		s->cap = cap;
	}
	if (s->len > 0 && s->buf[s->len - 1] != '/')
		s->buf[s->len++] = '/';
	memcpy(s->buf + s->len, name, n + 1);
	s->len += n;
	return 0;
}

/* Plain I/O ------------------------------------------------------------ */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Paths, as strings ---------------------------------------------------- */

/* [-0, +1, m] dirname(1) of P: "a/b/" -> "a", "a" -> ".", "/a" -> "/". */
static const char *push_dirname(lua_State *L, const char *p, size_t n)
{
	while (n > 1 && p[n - 1] == '/')
		n--;
	if (n == 1 && p[0] == '/')
		return lua_pushliteral(L, "/");
	size_t i = n;
	while (i > 0 && p[i - 1] != '/')
		i--;
	if (i == 0)
		return lua_pushliteral(L, ".");
	while (i > 1 && p[i - 1] == '/')
		i--;
	return lua_pushlstring(L, p, i);
}

/* [-0, +1, m] basename(1) of P: "a/b/" -> "b", "/" -> "/". */
static const char *push_basename(lua_State *L, const char *p, size_t n)
{
	while (n > 1 && p[n - 1] == '/')
		n--;
	if (n == 1 && p[0] == '/')
		return lua_pushliteral(L, "/");
	size_t i = n;
	while (i > 0 && p[i - 1] != '/')
		i--;
	return lua_pushlstring(L, p + i, n - i);
}

static int fs_dirname(lua_State *L)
{
	size_t n;
	const char *p = luaL_checklstring(L, 1, &n);
	push_dirname(L, p, n);
	return 1;
}

static int fs_basename(lua_State *L)
{
	size_t n;
	const char *p = luaL_checklstring(L, 1, &n);
	push_basename(L, p, n);
	return 1;
}

/* fs.join(a, b, ...): one '/' between parts; an absolute part starts over;
 * empty parts are skipped. */
static int fs_join(lua_State *L)
{
	int n = lua_gettop(L);
	luaL_checkstring(L, 1);
	int first = 1;
	for (int i = 1; i <= n; i++)
		if (luaL_checkstring(L, i)[0] == '/')
			first = i;
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (int i = first; i <= n; i++) {
		size_t len;
		const char *s = lua_tolstring(L, i, &len);
		if (len == 0)
			continue;
		if (luaL_bufflen(&b) > 0 && luaL_buffaddr(&b)[luaL_bufflen(&b) - 1] != '/')
			luaL_addchar(&b, '/');
		luaL_addlstring(&b, s, len);
	}
	luaL_pushresult(&b);
	return 1;
}

/* Beneath a root -------------------------------------------------------- */

/* 1 once openat2 is known to be missing (ENOSYS), or when CDP_FS_NO_OPENAT2
 * asks for the O_NOFOLLOW walk (the fallback's own tests use it). */
static int no_openat2 = -1;

static int have_openat2(void)
{
	if (no_openat2 < 0) {
		const char *e = getenv("CDP_FS_NO_OPENAT2");
		no_openat2 = e && *e && strcmp(e, "0") != 0;
	}
	return !no_openat2;
}

/* REL beneath DIRFD, one component at a time, none of them a link and none
 * of them "..": an fd, or -1 with errno (ELOOP for a link, EXDEV for ".."). */
static int open_nofollow(int dirfd, const char *rel, int flags, mode_t mode)
{
	char comp[NAME_MAX + 1];
	int fd = dirfd, err = 0; /* DIRFD is the caller's: never closed here */
	const char *p = rel;
	for (;;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		const char *next = p + n;
		while (*next == '/')
			next++;
		int last = *next == '\0';
		if (n > NAME_MAX) {
			err = ENAMETOOLONG;
			break;
		}
		memcpy(comp, n ? p : ".", n ? n : 1);
		comp[n ? n : 1] = '\0';
		if (strcmp(comp, "..") == 0) {
			err = EXDEV;
			break;
		}
		int nfd = last ? openat(fd, comp, flags | O_NOFOLLOW, mode)
		               : openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			err = errno;
			struct stat st;
			if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				err = ELOOP;
			break;
		}
		if (fd != dirfd)
			close(fd);
		fd = nfd;
		if (last)
			return fd;
		p = next;
	}
	if (fd != dirfd)
		close(fd);
	errno = err;
	return -1;
}

/* Open REL beneath DIRFD, never through a symbolic link. */
static int open_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
	flags |= O_CLOEXEC;
	if (have_openat2()) {
		struct open_how how;
		memset(&how, 0, sizeof how);
		how.flags = (uint64_t)flags;
		how.mode = (flags & O_CREAT) ? mode : 0;
		how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
		long fd = syscall(SYS_openat2, dirfd, *rel ? rel : ".", &how, sizeof how);
		if (fd >= 0 || errno != ENOSYS)
			return (int)fd;
		no_openat2 = 1;
	}
	return open_nofollow(dirfd, rel, flags, mode);
}

/*
 * Where a file operation's path leads: the directory it is resolved from
 * (ROOT with `beneath`, else the process's directory) and the path from
 * there. Strings live on the Lua stack, set up before anything is opened.
 */
struct where {
	const char *root; /* the `beneath` option, or NULL */
	const char *rel;  /* the path below ROOT ("" for ROOT itself), or the path as given */
	const char *path; /* the path for messages */
};

/* PATH's part below ROOT, or NULL when an absolute PATH is not under ROOT. */
static const char *below(const char *path, const char *root)
{
	if (path[0] != '/')
		return path;
	size_t n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (n == 1 && root[0] == '/')
		return path + 1;
	if (strncmp(path, root, n) != 0 || (path[n] != '/' && path[n] != '\0'))
		return NULL;
	path += n;
	while (*path == '/')
		path++;
	return path;
}

/* [-0, +2, v] Read option `beneath` of OPTS for PATH into W. Returns 0, or
 * EXDEV when PATH is absolute and outside the root (also as resolved). */
static int where_of(lua_State *L, int opts, const char *path, struct where *w)
{
	w->root = opt_string(L, opts, "beneath");
	w->rel = path;
	w->path = path;
	if (!w->root) {
		lua_pushnil(L);
		return 0;
	}
	if (path[0] != '/')
		w->path = lua_pushfstring(L, "%s/%s", w->root, path);
	else
		lua_pushnil(L);
	w->rel = below(path, w->root);
	if (!w->rel) {
		/* The root may be a link to where the path was resolved (/tmp -> /private/tmp). */
		char *real = lua_newuserdatauv(L, PATH_MAX, 0);
		if (realpath(w->root, real))
			w->rel = below(path, real);
		lua_pop(L, 1); /* below() points into PATH, never into the buffer */
	}
	return w->rel ? 0 : EXDEV;
}

/* [-0, +3, m] A failure of an operation on W. */
static int push_where_fail(lua_State *L, int err, const struct where *w)
{
	if (w->root && (err == ELOOP || err == EXDEV)) {
		lua_pushnil(L);
		if (err == ELOOP)
			lua_pushfstring(L, "ELOOP: a symbolic link is on the way to %s "
			                   "(links inside %s are never followed)", w->path, w->root);
		else
			lua_pushfstring(L, "EXDEV: %s is outside %s", w->path, w->root);
		lua_pushstring(L, cdp_errno_name(err));
		return 3;
	}
	return push_fail(L, err, w->path);
}

/* Open W with FLAGS: beneath its root when it has one. -1 with errno. */
static int where_open(const struct where *w, int flags, mode_t mode)
{
	if (!w->root)
		return open(w->rel, flags | O_CLOEXEC, mode);
	int rootfd = open(w->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -1;
	int fd = open_beneath(rootfd, w->rel, flags, mode);
	int err = errno;
	close(rootfd);
	errno = err;
	return fd;
}

/* fs.beneath_method() -> "openat2" | "nofollow": how `beneath` resolves here. */
static int fs_beneath_method(lua_State *L)
{
	if (have_openat2()) {
		/* Ask the kernel once: a probe of "." beneath "." says whether it has openat2. */
		struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		                       .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
		long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof how);
		if (fd >= 0)
			close((int)fd);
		else if (errno == ENOSYS)
			no_openat2 = 1;
	}
	lua_pushstring(L, have_openat2() ? "openat2" : "nofollow");
	return 1;
}

/* Atomic replacement --------------------------------------------------- */

/*
 * A temporary file beside the target in the directory DFD, renamed over the
 * target once complete. BASE and DIR (for messages) live on the Lua stack.
 */
struct atomic {
	int dfd; /* the target's directory; -1 when closed */
	const char *base;
	const char *dir;
	char tmp[NAME_MAX + 1];
	int fd;
};

/* [-0, +2, m] Prepare A for replacing W's target (nothing acquired yet). */
static void atomic_prepare(lua_State *L, struct atomic *a, const struct where *w)
{
	size_t n = strlen(w->path);
	a->dir = push_dirname(L, w->path, n);
	a->base = push_basename(L, w->rel, strlen(w->rel));
	a->dfd = a->fd = -1;
	a->tmp[0] = '\0';
}

/* Open the target's directory (beneath W's root) and make the temporary file.
 * A target that is a link is refused beneath a root: it is replaced, never
 * written through, and replacing it would still be writing where it says. */
static int atomic_open(struct atomic *a, const struct where *w)
{
	if (!*a->base || strcmp(a->base, "/") == 0 || strcmp(a->base, ".") == 0 ||
	    strcmp(a->base, "..") == 0)
		return EISDIR;
	size_t n = strlen(w->rel), b = strlen(a->base);
	while (n > 0 && w->rel[n - 1] == '/')
		n--;
	/* The directory part of REL, in the temporary buffer until the file is made. */
	size_t dn = n >= b ? n - b : 0;
	if (dn >= sizeof a->tmp)
		return ENAMETOOLONG;
	memcpy(a->tmp, w->rel, dn);
	a->tmp[dn] = '\0';
	struct where dir = {w->root, dn ? a->tmp : (w->root ? "" : "."), a->dir};
	a->dfd = where_open(&dir, O_RDONLY | O_DIRECTORY, 0);
	if (a->dfd < 0)
		return errno;
	struct stat st;
	if (w->root && fstatat(a->dfd, a->base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(st.st_mode))
			return ELOOP;
		if (S_ISDIR(st.st_mode))
			return EISDIR;
	}
	for (int tries = 0; tries < 100; tries++) {
		unsigned char r[6];
		if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
			return errno ? errno : EIO;
		char suffix[7];
		for (int i = 0; i < 6; i++)
			suffix[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[r[i] % 62];
		suffix[6] = '\0';
		snprintf(a->tmp, sizeof a->tmp, ".%.200s.cdp-%s", a->base, suffix);
		a->fd = openat(a->dfd, a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (a->fd >= 0)
			return 0;
		if (errno != EEXIST)
			return errno;
	}
	return EEXIST;
}

/* Close what A holds, removing the temporary file if it is still there. */
static void atomic_abort(struct atomic *a)
{
	if (a->fd >= 0) {
		close(a->fd);
		unlinkat(a->dfd, a->tmp, 0);
	}
	a->fd = -1;
	if (a->dfd >= 0)
		close(a->dfd);
	a->dfd = -1;
}

/* Set MODE, flush, and rename over the target; on failure nothing is left
 * behind. *STEP says which path an error concerns: 0 the target, 1 its directory. */
static int atomic_commit(struct atomic *a, mode_t mode, int *step)
{
	*step = 0;
	int err = 0;
	if (fchmod(a->fd, mode) != 0 || fsync(a->fd) != 0)
		err = errno;
	if (close(a->fd) != 0 && !err)
		err = errno;
	a->fd = -1;
	if (!err && renameat(a->dfd, a->tmp, a->dfd, a->base) != 0)
		err = errno;
	if (err) {
		unlinkat(a->dfd, a->tmp, 0);
	} else {
		*step = 1;
		/* Some filesystems cannot sync a directory; the rename still stands. */
		if (fsync(a->dfd) != 0 && errno != EINVAL)
			err = errno;
	}
	close(a->dfd);
	a->dfd = -1;
	return err;
}

/* File contents -------------------------------------------------------- */

/* fs.read(path, {beneath=ROOT}) */
static int fs_read(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct where w;
	if (where_of(L, check_opts(L, 2), path, &w))
		return push_where_fail(L, EXDEV, &w);
	struct scratch *s = scratch_new(L);
	s->fd = where_open(&w, O_RDONLY, 0);
	if (s->fd < 0)
		return push_where_fail(L, errno, &w);
	struct stat st;
	/* Beneath a root only files are read: a FIFO or a device is not content. */
	if (w.root && fstat(s->fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		scratch_release(s);
		return push_where_fail(L, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, &w);
	}
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (;;) {
		char *p = luaL_prepbuffsize(&b, IO_CHUNK);
		ssize_t got = read(s->fd, p, IO_CHUNK);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			int err = errno;
			scratch_release(s);
			return push_where_fail(L, err, &w);
		}
		if (got == 0)
			break;
		luaL_addsize(&b, (size_t)got);
	}
	scratch_release(s);
	luaL_pushresult(&b);
	return 1;
}

/* fs.write(path, data, {mode=0644, beneath=ROOT}): atomic replace, MODE & ~umask. */
static int fs_write(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	size_t n;
	const char *data = luaL_checklstring(L, 2, &n);
	int opts = check_opts(L, 3);
	mode_t mode = opt_mode(L, opts, 0644) & ~current_umask();
	struct where w;
	if (where_of(L, opts, path, &w))
		return push_where_fail(L, EXDEV, &w);
	struct atomic a;
	atomic_prepare(L, &a, &w);

	int err = atomic_open(&a, &w);
	if (!err)
		err = write_all(a.fd, data, n);
	if (err) {
		atomic_abort(&a);
		return push_where_fail(L, err, &w);
	}
	cdp_test_point("write", path);
	int step;
	err = atomic_commit(&a, mode, &step);
	if (err)
		return step ? push_fail(L, err, a.dir) : push_where_fail(L, err, &w);
	lua_pushboolean(L, 1);
	return 1;
}

/* fs.append(path, data, {mode=0644}): for append-only journals; synced
 * before return. MODE (& ~umask) applies when the file is made. */
static int fs_append(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	size_t n;
	const char *data = luaL_checklstring(L, 2, &n);
	mode_t mode = opt_mode(L, check_opts(L, 3), 0644);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode);
	if (fd < 0)
		return push_fail(L, errno, path);
	int err = write_all(fd, data, n);
	if (!err && fsync(fd) != 0)
		err = errno;
	if (close(fd) != 0 && !err)
		err = errno;
	if (err)
		return push_fail(L, err, path);
	lua_pushboolean(L, 1);
	return 1;
}

/* fs.copy(from, to): a regular file, mode kept, replaced atomically. */
static int fs_copy(lua_State *L)
{
	const char *from = luaL_checkstring(L, 1);
	const char *to = luaL_checkstring(L, 2);
	struct where w = {NULL, to, to};
	struct atomic a;
	atomic_prepare(L, &a, &w);
	char *chunk = lua_newuserdatauv(L, IO_CHUNK, 0);

	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return push_fail(L, errno, from);
	struct stat st;
	int err = fstat(in, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
	if (err) {
		close(in);
		return push_fail(L, err, from);
	}
	err = atomic_open(&a, &w);
	if (err) {
		close(in);
		atomic_abort(&a);
		return push_fail(L, err, to);
	}
	const char *culprit = to;
	for (;;) {
		ssize_t got = read(in, chunk, IO_CHUNK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err = errno;
			culprit = from;
			break;
		}
		if (got == 0 || (err = write_all(a.fd, chunk, (size_t)got)) != 0)
			break;
	}
	close(in);
	if (err) {
		atomic_abort(&a);
		return push_fail(L, err, culprit);
	}
	int step;
	err = atomic_commit(&a, st.st_mode & 07777, &step);
	if (err)
		return push_fail(L, err, step ? a.dir : to);
	lua_pushboolean(L, 1);
	return 1;
}

/* Directories ---------------------------------------------------------- */

/* mkdir, where an existing directory counts as done when EXIST_OK. */
static int make_dir(const char *path, mode_t mode, int exist_ok)
{
	if (mkdir(path, mode) == 0)
		return 0;
	int err = errno;
	struct stat st;
	if (err == EEXIST && exist_ok)
		return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
	return err;
}

/* fs.mkdir(path, {parents=false, mode=0755}) */
static int fs_mkdir(lua_State *L)
{
	size_t n;
	const char *path = luaL_checklstring(L, 1, &n);
	int opts = check_opts(L, 2);
	int parents = opt_bool(L, opts, "parents", 0);
	mode_t mode = opt_mode(L, opts, 0755);
	if (!parents || n == 0) {
		int err = make_dir(path, mode, 0);
		if (err)
			return push_fail(L, err, path);
		lua_pushboolean(L, 1);
		return 1;
	}
	/* Create each ancestor in turn; an error names the one that failed. */
	char *p = lua_newuserdatauv(L, n + 1, 0);
	memcpy(p, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (i < n && p[i] != '/')
			continue;
		if (i < n && p[i - 1] == '/')
			continue; /* "a//b" */
		char saved = p[i];
		p[i] = '\0';
		int err = make_dir(p, mode, 1);
		if (err)
			return push_fail(L, err, p);
		p[i] = saved;
	}
	lua_pushboolean(L, 1);
	return 1;
}

struct name_ref {
	const char *name;
	int index;
};

static int name_ref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct name_ref *)a)->name, ((const struct name_ref *)b)->name);
}

/* fs.list(path) -> names sorted bytewise, without "." and "..". */
static int fs_list(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct scratch *s = scratch_new(L);
	lua_newtable(L);
	int names = lua_gettop(L);
	s->dir = opendir(path);
	if (!s->dir)
		return push_fail(L, errno, path);
	int n = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(s->dir);
		if (!de) {
			int err = errno;
			scratch_release(s);
			if (err)
				return push_fail(L, err, path);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		lua_pushstring(L, de->d_name);
		lua_rawseti(L, names, ++n);
	}
	/* The names stay anchored in NAMES while their pointers are sorted. */
	struct name_ref *refs = lua_newuserdatauv(L, (size_t)n * sizeof *refs + 1, 0);
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, names, i + 1);
		refs[i].name = lua_tostring(L, -1);
		refs[i].index = i + 1;
		lua_pop(L, 1);
	}
	qsort(refs, (size_t)n, sizeof *refs, name_ref_cmp);
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, names, refs[i].index);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

/* Metadata ------------------------------------------------------------- */

/* [-0, +1|3, m] The stat of W: of what a link points to when FOLLOW; beneath
 * a root a final link is described, never followed. */
static int push_stat(lua_State *L, const struct where *w, int follow)
{
	struct stat st;
	if (w->root) {
		int fd = where_open(w, O_PATH | O_NOFOLLOW, 0);
		int err = fd < 0 || fstat(fd, &st) != 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		if (err)
			return push_where_fail(L, err, w);
	} else if ((follow ? stat(w->path, &st) : lstat(w->path, &st)) != 0) {
		return push_fail(L, errno, w->path);
	}
	const char *type = S_ISREG(st.st_mode)   ? "file"
	                   : S_ISDIR(st.st_mode) ? "directory"
	                   : S_ISLNK(st.st_mode) ? "link"
	                                         : "other";
	lua_createtable(L, 0, 6);
	lua_pushstring(L, type);
	lua_setfield(L, -2, "type");
	lua_pushinteger(L, (lua_Integer)st.st_size);
	lua_setfield(L, -2, "size");
	lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
	lua_setfield(L, -2, "mode");
	lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + (lua_Number)st.st_mtim.tv_nsec / 1e9);
	lua_setfield(L, -2, "mtime");
	lua_pushinteger(L, (lua_Integer)st.st_ino);
	lua_setfield(L, -2, "ino");
	lua_pushinteger(L, (lua_Integer)st.st_nlink);
	lua_setfield(L, -2, "nlink");
	return 1;
}

static int stat_common(lua_State *L, int follow)
{
	const char *path = luaL_checkstring(L, 1);
	struct where w;
	if (where_of(L, check_opts(L, 2), path, &w))
		return push_where_fail(L, EXDEV, &w);
	return push_stat(L, &w, follow);
}

/* fs.stat(path, {beneath=ROOT}) */
static int fs_stat(lua_State *L)
{
	return stat_common(L, 1);
}

/* fs.lstat(path, {beneath=ROOT}) */
static int fs_lstat(lua_State *L)
{
	return stat_common(L, 0);
}

/* fs.exists(path, {beneath=ROOT}): follows links, so a dangling link does not
 * exist; beneath a root, nothing reached through a link exists. */
static int fs_exists(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct where w;
	int found = 0;
	if (where_of(L, check_opts(L, 2), path, &w) == 0) {
		struct stat st;
		if (!w.root) {
			found = stat(path, &st) == 0;
		} else {
			int fd = where_open(&w, O_PATH | O_NOFOLLOW, 0);
			found = fd >= 0 && fstat(fd, &st) == 0 && !S_ISLNK(st.st_mode);
			if (fd >= 0)
				close(fd);
		}
	}
	lua_pushboolean(L, found);
	return 1;
}

/* Removing ------------------------------------------------------------- */

/* Remove NAME under DIRFD and everything below it, never following a link.
 * PATH holds NAME's full path; on failure it is left naming the culprit. */
static int remove_tree(int dirfd, const char *name, struct scratch *path)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) == 0 ? 0 : errno;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int err = errno;
		close(fd);
		return err;
	}
	int err = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			err = errno;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		size_t mark = path->len;
		if ((err = scratch_addpath(path, de->d_name)) != 0)
			break;
		if ((err = remove_tree(fd, de->d_name, path)) != 0)
			break;
		path->len = mark;
		path->buf[mark] = '\0';
	}
	closedir(d);
	if (err)
		return err;
	return unlinkat(dirfd, name, AT_REMOVEDIR) == 0 ? 0 : errno;
}

/* fs.remove(path, {recursive=false}) */
static int fs_remove(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int recursive = opt_bool(L, check_opts(L, 2), "recursive", 0);
	if (!recursive) {
		struct stat st;
		if (lstat(path, &st) != 0)
			return push_fail(L, errno, path);
		if ((S_ISDIR(st.st_mode) ? rmdir(path) : unlink(path)) != 0)
			return push_fail(L, errno, path);
		lua_pushboolean(L, 1);
		return 1;
	}
	struct scratch *s = scratch_new(L);
	int err = scratch_addpath(s, path);
	if (!err)
		err = remove_tree(AT_FDCWD, path, s);
	if (err == ENOENT && s->buf && strcmp(s->buf, path) == 0)
		err = 0; /* nothing to remove is fine */
	if (err)
		return push_fail(L, err, s->buf ? s->buf : path);
	scratch_release(s);
	lua_pushboolean(L, 1);
	return 1;
}

/* Names ---------------------------------------------------------------- */

static int fs_rename(lua_State *L)
{
	const char *from = luaL_checkstring(L, 1);
	const char *to = luaL_checkstring(L, 2);
	if (rename(from, to) != 0)
		return push_fail2(L, errno, from, to);
	lua_pushboolean(L, 1);
	return 1;
}

/* fs.symlink(target, path): PATH becomes a link to TARGET. */
static int fs_symlink(lua_State *L)
{
	const char *target = luaL_checkstring(L, 1);
	const char *path = luaL_checkstring(L, 2);
	if (symlink(target, path) != 0)
		return push_fail(L, errno, path);
	lua_pushboolean(L, 1);
	return 1;
}

static int fs_realpath(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	char *buf = lua_newuserdatauv(L, PATH_MAX, 0);
	if (!realpath(path, buf))
		return push_fail(L, errno, path);
	lua_pushstring(L, buf);
	return 1;
}

static int fs_cwd(lua_State *L)
{
	char *buf = lua_newuserdatauv(L, PATH_MAX, 0);
	if (!getcwd(buf, PATH_MAX))
		return push_fail(L, errno, "current directory");
	lua_pushstring(L, buf);
	return 1;
}

/* fs.tmpdir(prefix="cdp-") -> a new private directory under $TMPDIR or /tmp. */
static int fs_tmpdir(lua_State *L)
{
	const char *prefix = luaL_optstring(L, 1, "cdp-");
	luaL_argcheck(L, strchr(prefix, '/') == NULL, 1, "a prefix has no '/'");
	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	const char *tmpl = lua_pushfstring(L, "%s/%sXXXXXX", base, prefix);
	size_t len = strlen(tmpl);
	char *buf = lua_newuserdatauv(L, len + 1, 0);
	memcpy(buf, tmpl, len + 1);
	if (!mkdtemp(buf))
		return push_fail(L, errno, tmpl);
	lua_pushstring(L, buf);
	return 1;
}

/* Hashes --------------------------------------------------------------- */

static void push_hex(lua_State *L, const uint8_t digest[SHA256_DIGEST_SIZE])
{
	char hex[2 * SHA256_DIGEST_SIZE + 1];
	sha256_hex(digest, hex);
	lua_pushstring(L, hex);
}

static int fs_sha256(lua_State *L)
{
	size_t n;
	const char *data = luaL_checklstring(L, 1, &n);
	uint8_t digest[SHA256_DIGEST_SIZE];
	sha256(data, n, digest);
	push_hex(L, digest);
	return 1;
}

static int fs_sha256_file(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	char *chunk = lua_newuserdatauv(L, IO_CHUNK, 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return push_fail(L, errno, path);
	struct sha256 ctx;
	sha256_init(&ctx);
	int err = 0;
	for (;;) {
		ssize_t got = read(fd, chunk, IO_CHUNK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			err = errno;
		if (got <= 0)
			break;
		sha256_update(&ctx, chunk, (size_t)got);
	}
	close(fd);
	if (err)
		return push_fail(L, err, path);
	uint8_t digest[SHA256_DIGEST_SIZE];
	sha256_final(&ctx, digest);
	push_hex(L, digest);
	return 1;
}

static int fs_hmac_sha256(lua_State *L)
{
	size_t klen, n;
	const char *key = luaL_checklstring(L, 1, &klen);
	const char *data = luaL_checklstring(L, 2, &n);
	uint8_t digest[SHA256_DIGEST_SIZE];
	hmac_sha256(key, klen, data, n, digest);
	push_hex(L, digest);
	return 1;
}

/* Locks ---------------------------------------------------------------- */

/*
 * An exclusive flock on a file that holds a line saying who holds it.
 * The file is never unlinked: unlinking lock files races with openers.
 * User value 1: the path.
 */
struct lock {
	int fd; /* -1 once released */
};

static struct lock *lock_check(lua_State *L)
{
	struct lock *k = luaL_checkudata(L, 1, LOCK_MT);
	if (k->fd < 0)
		luaL_error(L, "attempt to use a released lock");
	return k;
}

/* lock:unlock() / lock:close() / __close / __gc: idempotent. */
static int lock_release(lua_State *L)
{
	struct lock *k = luaL_checkudata(L, 1, LOCK_MT);
	if (k->fd >= 0) {
		/* Clear the holder text first, so nobody is named after we go. */
		if (ftruncate(k->fd, 0) != 0) {
			/* nothing to do: the lock is released either way */
		}
		close(k->fd);
		k->fd = -1;
	}
	return 0;
}

static int lock_path(lua_State *L)
{
	lock_check(L);
	lua_getiuservalue(L, 1, 1);
	return 1;
}

static int lock_tostring(lua_State *L)
{
	struct lock *k = luaL_checkudata(L, 1, LOCK_MT);
	lua_getiuservalue(L, 1, 1);
	lua_pushfstring(L, "cdp.fs.Lock (%s%s)", k->fd < 0 ? "released: " : "",
	                lua_tostring(L, -1));
	return 1;
}

/* Wait up to SECONDS (negative: forever) for an exclusive lock on FD. */
static int lock_acquire(int fd, double seconds)
{
	if (seconds < 0)
		return flock(fd, LOCK_EX) == 0 ? 0 : errno;
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return errno;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		double spent = (double)(now.tv_sec - start.tv_sec) +
		               (double)(now.tv_nsec - start.tv_nsec) / 1e9;
		if (spent >= seconds)
			return EWOULDBLOCK;
		struct timespec pause = {0, 50 * 1000 * 1000};
		if (nanosleep(&pause, NULL) != 0 && errno == EINTR)
			return EINTR;
	}
}

/*
 * fs.lock(path, {wait=false, holder="pid N on HOST"}) -> Lock
 *   | nil, msg, "ELOCKED", holder_text | nil, msg, code
 * wait: false (try once), true (block), or seconds to keep trying.
 */
static int fs_lock(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int opts = check_opts(L, 2);
	double wait = 0;
	const char *holder = NULL;
	if (opts) {
		int t = cdp_rawfield(L, opts, "wait");
		if (t == LUA_TBOOLEAN)
			wait = lua_toboolean(L, -1) ? -1 : 0;
		else if (t == LUA_TNUMBER && lua_tonumber(L, -1) >= 0)
			wait = lua_tonumber(L, -1);
		else if (t != LUA_TNIL)
			return luaL_error(L, "bad option 'wait' (boolean or seconds expected)");
		t = cdp_rawfield(L, opts, "holder");
		if (t == LUA_TSTRING)
			holder = lua_tostring(L, -1);
		else if (t != LUA_TNIL)
			return luaL_error(L, "bad option 'holder' (string expected, got %s)",
			                  luaL_typename(L, -1));
	}
	if (!holder) {
		char host[256] = "?";
		gethostname(host, sizeof host - 1);
		holder = lua_pushfstring(L, "pid %d on %s", (int)getpid(), host);
	}
	char *seen = lua_newuserdatauv(L, 4096, 0); /* what another holder wrote */

	struct lock *k = lua_newuserdatauv(L, sizeof *k, 1);
	k->fd = -1;
	luaL_setmetatable(L, LOCK_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);

	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return push_fail(L, errno, path);
	int err = lock_acquire(fd, wait);
	if (err == EWOULDBLOCK) {
		ssize_t got = pread(fd, seen, 4095, 0);
		close(fd);
		size_t n = got > 0 ? (size_t)got : 0;
		while (n > 0 && (seen[n - 1] == '\n' || seen[n - 1] == '\r'))
			n--;
		seen[n] = '\0';
		lua_pushnil(L);
		lua_pushfstring(L, "ELOCKED: held by %s: %s", n ? seen : "another process", path);
		lua_pushliteral(L, "ELOCKED");
		lua_pushstring(L, seen);
		return 4;
	}
	size_t hn = strlen(holder);
	if (!err && ftruncate(fd, 0) != 0)
		err = errno;
	if (!err)
		err = write_all(fd, holder, hn);
	if (err) {
		close(fd);
		return push_fail(L, err, path);
	}
	k->fd = fd;
	return 1;
}

int luaopen_cdp_fs(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{"read", fs_read},
		{"write", fs_write},
		{"append", fs_append},
		{"mkdir", fs_mkdir},
		{"list", fs_list},
		{"stat", fs_stat},
		{"lstat", fs_lstat},
		{"exists", fs_exists},
		{"remove", fs_remove},
		{"rename", fs_rename},
		{"copy", fs_copy},
		{"symlink", fs_symlink},
		{"realpath", fs_realpath},
		{"cwd", fs_cwd},
		{"dirname", fs_dirname},
		{"basename", fs_basename},
		{"join", fs_join},
		{"tmpdir", fs_tmpdir},
		{"sha256", fs_sha256},
		{"sha256_file", fs_sha256_file},
		{"hmac_sha256", fs_hmac_sha256},
		{"lock", fs_lock},
		{"beneath_method", fs_beneath_method},
		{NULL, NULL},
	};
	static const luaL_Reg lock_methods[] = {
		{"unlock", lock_release},
		{"close", lock_release},
		{"path", lock_path},
		{NULL, NULL},
	};
	static const luaL_Reg lock_meta[] = {
		{"__gc", lock_release},
		{"__close", lock_release},
		{"__tostring", lock_tostring},
		{NULL, NULL},
	};
	static const luaL_Reg scratch_meta[] = {
		{"__gc", scratch_gc},
		{"__close", scratch_gc},
		{NULL, NULL},
	};

	luaL_newmetatable(L, LOCK_MT);
	luaL_setfuncs(L, lock_meta, 0);
	luaL_newlib(L, lock_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);

	luaL_newmetatable(L, SCRATCH_MT);
	luaL_setfuncs(L, scratch_meta, 0);
	lua_pop(L, 1);

	luaL_newlib(L, funcs);
	return 1;
}
