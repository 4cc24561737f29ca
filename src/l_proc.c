/*
 * cdp.proc — processes run from argument vectors (never a shell), with
 * captured output, timeouts that take the whole process group down, and
 * interruption by SIGINT/SIGTERM that leaves the pipeline resumable.
 *
 * Misuse raises; failures of the world return nil, "CODE: description:
 * thing", "CODE". While a child runs, everything it holds (pipes, the
 * child itself, the capture buffers) lives in a Run box marked
 * to-be-closed, and on_line is called under lua_pcall: if it raises, the
 * group is killed and reaped and the buffers freed before the error goes on.
 *
 * Secrets (proc.take_env) live in cdp's memory only: taken out of the
 * environment, and their bytes overwritten where /proc/self/environ shows
 * them, so no child can read them from /proc/<cdp>/environ.
 *
 * Children get nothing of cdp's: every descriptor above 2 is close-on-exec
 * before exec, a child dies when cdp does (PR_SET_PDEATHSIG, and a watchdog
 * that kills the process groups of children still running when cdp is gone),
 * and under proc.child_env an allow-listed environment. Captured output is
 * bounded (max_output), keeping the tail.
 */
#define _GNU_SOURCE /* O_TMPFILE: proc.spawn's captured output has no name on disk */
#include "host.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define RUN_MT "cdp.proc.Run"
#define TRAP_MT "cdp.proc.Trap"
#define TRAP_KEY "cdp.proc.trap"
#define CHILD_ENV_KEY "cdp.proc.child_env" /* registry: the policy proc.child_env set */
#define READ_CHUNK 65536
#define MAX_OUTPUT_DEFAULT (16.0 * 1024 * 1024) /* bytes kept of each captured stream */
#define KILL_GRACE 2.0 /* seconds between SIGTERM and SIGKILL */

/* [-0, +3, m] nil, "CODE: description: thing", "CODE" */
static int push_fail(lua_State *L, int err, const char *thing)
{
	return cdp_push_errno(L, err, thing, NULL);
}

static const struct {
	int sig;
	const char *name;
} signal_names[] = {
	{SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},     {SIGQUIT, "SIGQUIT"},   {SIGILL, "SIGILL"},
	{SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},   {SIGBUS, "SIGBUS"},     {SIGFPE, "SIGFPE"},
	{SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"},   {SIGSEGV, "SIGSEGV"},   {SIGUSR2, "SIGUSR2"},
	{SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"},   {SIGTERM, "SIGTERM"},   {SIGCHLD, "SIGCHLD"},
	{SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"},   {SIGTSTP, "SIGTSTP"},   {SIGTTIN, "SIGTTIN"},
	{SIGTTOU, "SIGTTOU"}, {SIGURG, "SIGURG"},     {SIGXCPU, "SIGXCPU"},   {SIGXFSZ, "SIGXFSZ"},
	{SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"}, {SIGSYS, "SIGSYS"},
};

static const char *signal_name(int sig)
{
	for (size_t i = 0; i < sizeof signal_names / sizeof *signal_names; i++)
		if (signal_names[i].sig == sig)
			return signal_names[i].name;
	return NULL;
}

static double now_monotonic(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Interruption ---------------------------------------------------------- */

/*
 * After trap_signals, SIGINT/SIGTERM set INTERRUPTED_BY and PENDING, wake
 * any proc.run through WAKE_PIPE, and (as lua.c's laction does) set a hook
 * on the main Lua thread that raises "interrupted by SIGINT" at the next
 * instruction. Whoever acts on the interrupt first clears PENDING: the hook,
 * or a proc.run that reports it as EINTR (and removes the hook, so its
 * caller sees the return value). A second signal while one is still
 * pending means "really stop": the default action is restored and re-raised.
 */
static volatile sig_atomic_t interrupted_by;
static volatile sig_atomic_t pending;
static volatile sig_atomic_t signal_count; /* tells a signal during on_line */
static lua_State *main_L;
static int wake_pipe[2] = {-1, -1};
static struct sigaction saved_int, saved_term;
static int trapped; /* handlers installed, to be restored by untrap */

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	pending = 0;
	const char *name = signal_name(interrupted_by);
	luaL_error(L, "interrupted by %s", name ? name : "a signal");
}

static void on_signal(int sig)
{
	int saved = errno;
	if (pending) {
		signal(sig, SIG_DFL);
		raise(sig); /* delivered when this handler returns */
	}
	interrupted_by = sig;
	pending = 1;
	signal_count++;
	if (wake_pipe[1] >= 0) {
		ssize_t w = write(wake_pipe[1], "", 1);
		(void)w; /* a full pipe already wakes the reader */
	}
	if (main_L)
		lua_sethook(main_L, interrupt_hook,
		            LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
	errno = saved;
}

/* Take the pending interrupt, if any: proc.run reports it itself. */
static int take_interrupt(void)
{
	if (!pending)
		return 0;
	pending = 0;
	if (main_L)
		lua_sethook(main_L, NULL, 0, 0);
	return interrupted_by;
}

static void drain_wake_pipe(void)
{
	char buf[64];
	while (wake_pipe[0] >= 0 && read(wake_pipe[0], buf, sizeof buf) > 0)
		;
}

/* __gc of the registry sentinel: the state is closing, stop trapping. */
static int untrap(lua_State *L)
{
	(void)L;
	if (!trapped)
		return 0;
	trapped = 0;
	sigaction(SIGINT, &saved_int, NULL);
	sigaction(SIGTERM, &saved_term, NULL);
	main_L = NULL;
	for (int i = 0; i < 2; i++) {
		if (wake_pipe[i] >= 0)
			close(wake_pipe[i]);
		wake_pipe[i] = -1;
	}
	return 0;
}

static int set_flags(int fd, int fd_flags, int fl_flags)
{
	int a = fcntl(fd, F_GETFD), b = fcntl(fd, F_GETFL);
	if (a < 0 || b < 0 || fcntl(fd, F_SETFD, a | fd_flags) < 0 ||
	    fcntl(fd, F_SETFL, b | fl_flags) < 0)
		return errno;
	return 0;
}

/* proc.trap_signals(): idempotent. */
static int proc_trap_signals(lua_State *L)
{
	if (lua_getfield(L, LUA_REGISTRYINDEX, TRAP_KEY) != LUA_TNIL) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pop(L, 1);
	/* The sentinel's __gc undoes what follows when the state closes. */
	lua_newuserdatauv(L, 1, 0);
	luaL_setmetatable(L, TRAP_MT);
	if (pipe(wake_pipe) != 0) {
		wake_pipe[0] = wake_pipe[1] = -1;
		return push_fail(L, errno, "signal pipe");
	}
	for (int i = 0; i < 2; i++)
		set_flags(wake_pipe[i], FD_CLOEXEC, O_NONBLOCK);
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	main_L = lua_tothread(L, -1);
	lua_pop(L, 1);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	/* No SA_RESTART: a blocking call should see EINTR and let us stop. */
	sa.sa_flags = 0;
	sigaction(SIGINT, &sa, &saved_int);
	sigaction(SIGTERM, &sa, &saved_term);
	trapped = 1;
	lua_setfield(L, LUA_REGISTRYINDEX, TRAP_KEY);
	lua_pushboolean(L, 1);
	return 1;
}

/* proc.interrupted() -> "SIGINT" | "SIGTERM" | nil */
static int proc_interrupted(lua_State *L)
{
	const char *name = interrupted_by ? signal_name(interrupted_by) : NULL;
	if (name)
		lua_pushstring(L, name);
	else
		lua_pushnil(L);
	return 1;
}

static int proc_clear_interrupt(lua_State *L)
{
	(void)L;
	pending = 0;
	interrupted_by = 0;
	if (main_L)
		lua_sethook(main_L, NULL, 0, 0);
	drain_wake_pipe();
	return 0;
}

/* Secrets --------------------------------------------------------------- */

/*
 * Secrets taken out of the environment, for the life of the process. The
 * array is reachable from a static, so nothing here is a leak; the values
 * never go back into the environment.
 */
struct kept_secret {
	char *name, *value;
};
static struct kept_secret *kept;
static size_t n_kept, cap_kept;

static const struct kept_secret *kept_find(const char *name)
{
	for (size_t i = 0; i < n_kept; i++)
		if (strcmp(kept[i].name, name) == 0)
			return &kept[i];
	return NULL;
}

/* The bytes the kernel shows as /proc/self/environ: fields 50 and 51 of
 * /proc/self/stat (env_start, env_end). 0 when they cannot be read. */
static int environ_block(uintptr_t *start, uintptr_t *end)
{
	char buf[4096];
	FILE *f = fopen("/proc/self/stat", "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may hold spaces and ')' */
	if (!p)
		return 0;
	p++;
	unsigned long long v[52] = {0};
	for (int field = 3; field <= 51; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return 0;
		char *next;
		v[field] = strtoull(p, &next, 10);
		if (next == p) { /* field 3, the state, is a letter */
			while (*next && *next != ' ')
				next++;
		}
		p = next;
	}
	*start = (uintptr_t)v[50];
	*end = (uintptr_t)v[51];
	return *end > *start;
}

/* Take NAME out of the environment; NULL when it is not there. Raises only
 * when out of memory, before the environment is changed. */
static const struct kept_secret *take_env(lua_State *L, const char *name)
{
	const struct kept_secret *k = kept_find(name);
	if (k)
		return k;
	size_t n = strlen(name);
	const char *value = NULL;
	size_t count = 0;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
			if (!value)
				value = *e + n + 1;
			count++;
		}
	if (!value)
		return NULL;
	if (n_kept == cap_kept) {
		size_t cap = cap_kept ? cap_kept * 2 : 8;
		struct kept_secret *grown = realloc(kept, cap * sizeof *grown);
		if (!grown)
			luaL_error(L, "not enough memory");
		kept = grown;
		cap_kept = cap;
	}
	char *name_copy = strdup(name), *value_copy = strdup(value);
	char **places = calloc(count, sizeof *places);
	if (!name_copy || !value_copy || !places) {
		free(name_copy);
		free(value_copy);
		free(places);
		luaL_error(L, "not enough memory");
	}
	size_t i = 0;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			places[i++] = *e;
	unsetenv(name);
	/* Only the bytes of the block the kernel shows are ours to overwrite: a
	 * value set later by setenv lives in libc's heap, where no child sees it. */
	uintptr_t start, end;
	if (environ_block(&start, &end))
		for (i = 0; i < count; i++) {
			char *v = places[i] + n + 1;
			size_t len = strlen(v);
			if ((uintptr_t)places[i] >= start && (uintptr_t)(v + len) <= end)
				memset(v, 0, len);
		}
	free(places);
	kept[n_kept].name = name_copy;
	kept[n_kept].value = value_copy;
	return &kept[n_kept++];
}

/* proc.take_env(name) -> value | nil: the first call takes NAME out of the
 * environment (and out of /proc/self/environ); every call returns the value. */
static int proc_take_env(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	luaL_argcheck(L, *name && !strchr(name, '='), 1, "an environment variable name");
	const struct kept_secret *k = take_env(L, name);
	if (k)
		lua_pushstring(L, k->value);
	else
		lua_pushnil(L);
	return 1;
}

/* proc.taken() -> { name = value } of every secret taken, for redaction. */
static int proc_taken(lua_State *L)
{
	lua_createtable(L, 0, (int)n_kept);
	for (size_t i = 0; i < n_kept; i++) {
		lua_pushstring(L, kept[i].value);
		lua_setfield(L, -2, kept[i].name);
	}
	return 1;
}

/* proc.dumpable() -> whether this process may dump core or be read by ptrace. */
static int proc_dumpable(lua_State *L)
{
	lua_pushboolean(L, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1);
	return 1;
}

/* Running a child ------------------------------------------------------- */

struct stream {
	const char *name; /* "stdout" | "stderr" */
	int fd;           /* our read end; -1 at EOF or when not captured */
	char *buf;        /* everything read so far */
	size_t len, cap;
	size_t line_start; /* first byte not yet handed to on_line */
	size_t dropped;    /* bytes let go from the front to keep the tail */
};

struct run {
	pid_t pid;  /* > 0 until reaped */
	int exited; /* the child has exited, not yet reaped */
	struct stream out, err;
	int in_fd;   /* our end of the child's stdin */
	int exec_fd; /* reads the exec failure report */
	int child_fds[4]; /* the child's ends, closed in the parent after fork */
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void group_reaped(pid_t pgid);

/* Idempotent: kill and reap the child's group, close, free. */
static void run_release(struct run *r)
{
	close_fd(&r->out.fd);
	close_fd(&r->err.fd);
	close_fd(&r->in_fd);
	close_fd(&r->exec_fd);
	for (int i = 0; i < 4; i++)
		close_fd(&r->child_fds[i]);
	if (r->pid > 0) {
		kill(-r->pid, SIGKILL);
		while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
			;
		group_reaped(r->pid);
		r->pid = 0;
	}
	free(r->out.buf);
	free(r->err.buf);
	r->out.buf = r->err.buf = NULL;
}

static int run_gc(lua_State *L)
{
	run_release(luaL_checkudata(L, 1, RUN_MT));
	return 0;
}

/* Pipe with both ends close-on-exec; the child's ends are dup2'd. */
static int make_pipe(int *read_end, int *write_end)
{
	int p[2];
	if (pipe(p) != 0)
		return errno;
	*read_end = p[0];
	*write_end = p[1];
	int err = set_flags(p[0], FD_CLOEXEC, 0);
	return err ? err : set_flags(p[1], FD_CLOEXEC, 0);
}

enum { FAILED_CWD = 1, FAILED_EXEC = 2 };

struct exec_report {
	int stage;
	int err;
};

struct child_setup {
	char **argv;
	char **envp; /* NULL: inherit */
	const char *cwd;
	int in, out, err, report; /* -1: leave as is */
	pid_t parent;
};

/* Every descriptor above 2 close-on-exec: a child inherits no socket (the
 * keep-alive connection to the forge), lock or journal of cdp's. Async-signal-safe. */
static void cloexec_above_stderr(void)
{
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	/* Kernels before 5.11: each descriptor the limit allows. */
	struct rlimit lim;
	int max = getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
	                  lim.rlim_cur < 1048576
	              ? (int)lim.rlim_cur
	              : 65536;
	for (int fd = 3; fd < max; fd++) {
		int flags = fcntl(fd, F_GETFD);
		if (flags >= 0 && !(flags & FD_CLOEXEC))
			fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
	}
}

/* The watchdog ------------------------------------------------------------ */

/*
 * A child dies with cdp: PR_SET_PDEATHSIG kills the child itself, but not
 * what it started (cargo's rustc and build scripts, a test's servers). So the
 * first proc.run forks a watchdog, in a process group of its own (a kill of
 * cdp's group spares it), that reads "+PGID\n" and "-PGID\n" from a pipe
 * only cdp can write to. When cdp is gone, for whatever reason, the pipe ends
 * and the watchdog kills every group still listed. It runs only
 * async-signal-safe calls: cdp may have threads.
 */
static int watchdog_fd = -1;   /* cdp's write end */
static pid_t watchdog_pid;
static pid_t watchdog_owner;   /* a forked copy of cdp has no watchdog of its own */

#define WATCHED_MAX 1024

static void watchdog_main(int fd)
{
	struct sigaction ign;
	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	const int quiet[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
	for (size_t i = 0; i < sizeof quiet / sizeof *quiet; i++)
		sigaction(quiet[i], &ign, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setpgid(0, 0);
	if (dup2(fd, 0) < 0)
		_exit(1);
	syscall(SYS_close_range, 1U, ~0U, 0U); /* nothing else of cdp's stays open */
	pid_t groups[WATCHED_MAX];
	int n = 0, sign = 0;
	long value = 0;
	char buf[512];
	for (;;) {
		ssize_t got = read(0, buf, sizeof buf);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		for (ssize_t i = 0; i < got; i++) {
			char c = buf[i];
			if (c == '+' || c == '-') {
				sign = c == '+' ? 1 : -1;
				value = 0;
			} else if (c >= '0' && c <= '9') {
				value = value * 10 + (c - '0');
			} else if (c == '\n' && sign && value > 0) {
				if (sign > 0 && n < WATCHED_MAX) {
					groups[n++] = (pid_t)value;
				} else if (sign < 0) {
					for (int k = 0; k < n; k++)
						if (groups[k] == (pid_t)value) {
							groups[k] = groups[--n];
							break;
						}
				}
				sign = 0;
			}
		}
	}
	for (int k = 0; k < n; k++)
		kill(-groups[k], SIGKILL);
	_exit(0);
}

/* Start the watchdog if this process has none; 0 or errno. */
static int watchdog_start(void)
{
	if (watchdog_fd >= 0 && watchdog_owner == getpid())
		return 0;
	int p[2];
	if (pipe(p) != 0)
		return errno;
	/* Close-on-exec: a child holding the write end would keep the watchdog waiting. */
	fcntl(p[0], F_SETFD, FD_CLOEXEC);
	fcntl(p[1], F_SETFD, FD_CLOEXEC);
	pid_t pid = fork();
	if (pid < 0) {
		int err = errno;
		close(p[0]);
		close(p[1]);
		return err;
	}
	if (pid == 0) {
		close(p[1]);
		watchdog_main(p[0]);
	}
	close(p[0]);
	if (watchdog_fd >= 0)
		close(watchdog_fd); /* a forked copy's inherited end: not ours to use */
	watchdog_fd = p[1];
	watchdog_pid = pid;
	watchdog_owner = getpid();
	return 0;
}

/* Tell the watchdog a group was started (+) or has ended (-). */
static void watchdog_tell(char sign, pid_t pgid)
{
	if (watchdog_fd < 0 || watchdog_owner != getpid())
		return;
	char line[32];
	int n = snprintf(line, sizeof line, "%c%ld\n", sign, (long)pgid);
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t w;
	while ((w = write(watchdog_fd, line, (size_t)n)) < 0 && errno == EINTR)
		;
	if (w < 0 && errno == EPIPE) { /* the watchdog was killed: start another next time */
		close(watchdog_fd);
		watchdog_fd = -1;
		struct timespec zero = {0, 0};
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The leader of group PGID was reaped: the watchdog forgets the group once
 * nothing is left in it (what a child left running still dies with cdp). */
static void group_reaped(pid_t pgid)
{
	if (kill(-pgid, 0) != 0 && errno == ESRCH)
		watchdog_tell('-', pgid);
}

static void child_fail(int fd, int stage)
{
	struct exec_report rep = {stage, errno};
	ssize_t w = write(fd, &rep, sizeof rep);
	(void)w;
	_exit(127);
}

/* Between fork and exec: async-signal-safe calls only. */
static void child_exec(const struct child_setup *c)
{
	setpgid(0, 0);
	/* Killed when cdp dies, even by SIGKILL (the watchdog takes the group). */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != c->parent)
		_exit(127); /* cdp died before the line above */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	const int reset[] = {SIGINT, SIGTERM, SIGPIPE, SIGQUIT, SIGHUP, SIGCHLD};
	for (size_t i = 0; i < sizeof reset / sizeof *reset; i++)
		sigaction(reset[i], &dfl, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	const int from[3] = {c->in, c->out, c->err};
	for (int target = 0; target < 3; target++) {
		if (from[target] < 0)
			continue;
		if (from[target] == target)
			fcntl(target, F_SETFD, 0); /* keep it across exec */
		else if (dup2(from[target], target) < 0)
			child_fail(c->report, FAILED_EXEC);
	}
	cloexec_above_stderr();
	if (c->cwd && chdir(c->cwd) != 0)
		child_fail(c->report, FAILED_CWD);
	if (c->envp)
		environ = c->envp;
	execvp(c->argv[0], c->argv);
	child_fail(c->report, FAILED_EXEC);
}

/* Write to the child's stdin without letting a closed pipe kill us. */
static ssize_t write_nosigpipe(int fd, const char *p, size_t n)
{
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t w = write(fd, p, n);
	int saved = errno;
	if (w < 0 && saved == EPIPE && !sigismember(&old, SIGPIPE)) {
		struct timespec zero = {0, 0};
		sigset_t now_pending;
		sigpending(&now_pending);
		if (sigismember(&now_pending, SIGPIPE))
			sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return w;
}

/* Read what is there now into S; 0, or errno (EOF closes S->fd). */
static int stream_read(struct stream *s)
{
	if (s->cap - s->len < READ_CHUNK) {
		size_t cap = s->cap ? s->cap : READ_CHUNK * 2;
		while (cap - s->len < READ_CHUNK)
			cap *= 2;
		char *p = realloc(s->buf, cap);
		if (!p)
			return ENOMEM;
		s->buf = p;
		s->cap = cap;
	}
	ssize_t got = read(s->fd, s->buf + s->len, READ_CHUNK);
	if (got < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : errno;
	if (got == 0)
		close_fd(&s->fd);
	s->len += (size_t)got;
	return 0;
}

/* Keep at most MAX bytes of S, the last ones: a child that prints without end
 * costs memory up to MAX. Lines on_line has not seen yet are kept (bar one
 * longer than MAX, which it then gets in part). */
static void stream_trim(struct stream *s, size_t max, int on_line)
{
	if (max == 0 || s->len <= max)
		return;
	size_t cut = s->len - max;
	if (on_line && cut > s->line_start && s->len - s->line_start <= max)
		cut = s->line_start;
	if (cut == 0)
		return;
	memmove(s->buf, s->buf + cut, s->len - cut);
	s->len -= cut;
	s->line_start = s->line_start > cut ? s->line_start - cut : 0;
	s->dropped += cut;
}

struct line_call {
	const char *stream;
	const char *p;
	size_t n;
};

/* Under lua_pcall: on_line(stream, line). */
static int call_on_line(lua_State *L)
{
	const struct line_call *c = lua_touserdata(L, 2);
	lua_pushvalue(L, 1);
	lua_pushstring(L, c->stream);
	lua_pushlstring(L, c->p, c->n);
	lua_call(L, 2, 0);
	return 0;
}

/* Hand S's complete lines (and with FINAL the unterminated rest) to the
 * function at ON_LINE. Returns a Lua status; an error is left on the stack. */
static int deliver_lines(lua_State *L, int on_line, struct stream *s, int final)
{
	if (!on_line)
		return LUA_OK;
	for (;;) {
		size_t start = s->line_start;
		const char *nl = memchr(s->buf + start, '\n', s->len - start);
		if (!nl && !(final && start < s->len))
			return LUA_OK;
		size_t end = nl ? (size_t)(nl - s->buf) : s->len;
		struct line_call c = {s->name, s->buf + start, end - start};
		s->line_start = nl ? end + 1 : end;
		lua_pushcfunction(L, call_on_line);
		lua_pushvalue(L, on_line);
		lua_pushlightuserdata(L, &c);
		int status = lua_pcall(L, 2, 0, 0);
		if (status != LUA_OK)
			return status;
	}
}

/*
 * deliver_lines, where an error raised by the interrupt hook inside on_line
 * counts as an interrupt of the run (reported as EINTR), not as on_line's
 * failure. Returns 0 with on_line's error on the stack.
 */
static int lines_or_interrupt(lua_State *L, int *on_line, struct stream *s, int final,
                              int *interrupted)
{
	int seen = signal_count;
	if (deliver_lines(L, *on_line, s, final) == LUA_OK)
		return 1;
	if (signal_count == seen || !interrupted_by)
		return 0;
	lua_pop(L, 1);
	take_interrupt();
	if (!*interrupted)
		*interrupted = interrupted_by;
	*on_line = 0; /* the caller's code was stopped: no more calls into it */
	return 1;
}

/* [-0, +1, e] Read and check the options; push the command line for messages. */
struct run_opts {
	int argv, cwd, env, env_clear, in, timeout, on_line, inherit, max_output; /* stack slots */
	double timeout_s;
	size_t max_bytes; /* 0: no bound */
};

static void read_opts(lua_State *L, struct run_opts *o)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	static const char *const keys[] = {"argv", "cwd", "env", "env_clear", "stdin",
	                                   "timeout", "on_line", "inherit", "max_output"};
	static const int types[] = {LUA_TTABLE, LUA_TSTRING, LUA_TTABLE, LUA_TBOOLEAN,
	                            LUA_TSTRING, LUA_TNUMBER, LUA_TFUNCTION, LUA_TBOOLEAN,
	                            LUA_TNUMBER};
	int *slots[] = {&o->argv, &o->cwd, &o->env, &o->env_clear,
	                &o->in, &o->timeout, &o->on_line, &o->inherit, &o->max_output};
	for (int i = 0; i < 9; i++) {
		int t = cdp_rawfield(L, 1, keys[i]);
		if (t != LUA_TNIL && t != types[i])
			luaL_error(L, "bad option '%s' (%s expected, got %s)", keys[i],
			           lua_typename(L, types[i]), luaL_typename(L, -1));
		*slots[i] = t == LUA_TNIL ? 0 : lua_gettop(L);
	}
	if (!o->argv)
		luaL_error(L, "bad option 'argv' (table expected, got nil)");
	lua_Integer n = (lua_Integer)lua_rawlen(L, o->argv);
	if (n < 1)
		luaL_error(L, "bad option 'argv' (at least a program name expected)");
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, o->argv, i) != LUA_TSTRING)
			luaL_error(L, "bad option 'argv' (string expected at [%d], got %s)", (int)i,
			           luaL_typename(L, -1));
		lua_pop(L, 1);
	}
	double max = o->max_output ? lua_tonumber(L, o->max_output) : MAX_OUTPUT_DEFAULT;
	if (!(max >= 0))
		luaL_error(L, "bad option 'max_output' (bytes expected, 0 for no bound)");
	o->max_bytes = max >= 1e15 ? 0 : (size_t)max;
	o->timeout_s = 0;
	if (o->timeout) {
		o->timeout_s = lua_tonumber(L, o->timeout);
		if (!(o->timeout_s > 0))
			luaL_error(L, "bad option 'timeout' (positive number of seconds expected)");
	}
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (lua_Integer i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, ' ');
		lua_rawgeti(L, o->argv, i);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
}

/* [-0, +1, e] The argv array, in a userdata; its strings are anchored by
 * the argv table, which stays on the stack. */
static char **push_argv(lua_State *L, int argv)
{
	size_t n = lua_rawlen(L, argv);
	char **a = lua_newuserdatauv(L, (n + 1) * sizeof *a, 0);
	for (size_t i = 0; i < n; i++) {
		lua_rawgeti(L, argv, (lua_Integer)i + 1);
		a[i] = (char *)lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	a[n] = NULL;
	return a;
}

/* [-0, +2, e] The child's environment: "K=V" strings anchored in a table
 * pushed first, then the NULL-terminated array. NULL when inherited. */
/* Whether NAME (LEN bytes) is in the allow list at index ALLOW: a name, or a
 * prefix ending in '*'. */
static int allowed(lua_State *L, int allow, const char *name, size_t len)
{
	lua_Integer n = (lua_Integer)lua_rawlen(L, allow);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, allow, i);
		size_t plen;
		const char *p = lua_tolstring(L, -1, &plen);
		int match = plen > 0 && p[plen - 1] == '*' ? len >= plen - 1 && memcmp(name, p, plen - 1) == 0
		                                           : len == plen && memcmp(name, p, len) == 0;
		lua_pop(L, 1);
		if (match)
			return 1;
	}
	return 0;
}

static char **push_envp(lua_State *L, const struct run_opts *o)
{
	int clear = o->env_clear && lua_toboolean(L, o->env_clear);
	int policy = 0;
	if (lua_getfield(L, LUA_REGISTRYINDEX, CHILD_ENV_KEY) == LUA_TTABLE)
		policy = lua_gettop(L);
	else
		lua_pop(L, 1);
	if (!clear && !o->env && !policy) {
		lua_pushnil(L);
		lua_pushnil(L);
		return NULL;
	}
	lua_newtable(L);
	int merged = lua_gettop(L);
	int allow = 0;
	if (policy && !clear) {
		lua_pushliteral(L, "allow"); /* a copy proc_child_env made */
		lua_rawget(L, policy);
		allow = lua_gettop(L);
	}
	for (char **e = clear ? NULL : environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq || (allow && !allowed(L, allow, *e, (size_t)(eq - *e))))
			continue;
		lua_pushlstring(L, *e, (size_t)(eq - *e));
		lua_pushstring(L, eq + 1);
		lua_rawset(L, merged);
	}
	if (allow) {
		lua_pushliteral(L, "set");
		lua_rawget(L, policy);
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, merged);
		}
		lua_pop(L, 2); /* set, allow */
	}
	if (o->env) {
		lua_pushnil(L);
		while (lua_next(L, o->env)) {
			if (lua_type(L, -2) != LUA_TSTRING || strchr(lua_tostring(L, -2), '='))
				luaL_error(L, "bad option 'env' (names are strings without '=')");
			int t = lua_type(L, -1);
			if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
				lua_pop(L, 1);
				lua_pushvalue(L, -1);
				lua_pushnil(L);
			} else if (t == LUA_TSTRING || t == LUA_TNUMBER) {
				lua_tostring(L, -1);
				lua_pushvalue(L, -2);
				lua_insert(L, -2);
			} else {
				luaL_error(L, "bad option 'env' (value of '%s' must be a string or false)",
				           lua_tostring(L, -2));
			}
			lua_rawset(L, merged);
		}
	}
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, merged)) {
		n++;
		lua_pop(L, 1);
	}
	lua_newtable(L); /* anchors the "K=V" strings */
	int anchors = lua_gettop(L);
	char **envp = lua_newuserdatauv(L, (n + 1) * sizeof *envp, 0);
	size_t i = 0;
	lua_pushnil(L);
	while (lua_next(L, merged)) {
		envp[i] = (char *)lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
		lua_rawseti(L, anchors, (lua_Integer)++i);
		lua_pop(L, 1);
	}
	envp[n] = NULL;
	lua_remove(L, merged);
	if (policy)
		lua_remove(L, policy);
	return envp;
}

/*
 * proc.child_env{ allow = { "PATH", "LC_*", ... }, set = { NAME = value } } -> previous
 * proc.child_env(nil) -> previous
 * From now on every child gets only the variables ALLOW names (a name, or a
 * prefix and '*'), then SET, then its own `env` option; env_clear still means
 * exactly `env`. nil goes back to inheriting everything. The policy is read
 * with raw access and copied, so later changes to the table do not count.
 */
static int proc_child_env(lua_State *L)
{
	if (!lua_isnoneornil(L, 1))
		luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	lua_getfield(L, LUA_REGISTRYINDEX, CHILD_ENV_KEY); /* 2: the previous */
	if (lua_isnil(L, 1)) {
		lua_pushnil(L);
		lua_setfield(L, LUA_REGISTRYINDEX, CHILD_ENV_KEY);
		return 1;
	}
	lua_createtable(L, 0, 2); /* 3: the copy */
	lua_newtable(L);          /* 4: allow */
	lua_pushliteral(L, "allow");
	if (lua_rawget(L, 1) != LUA_TTABLE)
		return luaL_error(L, "bad option 'allow' (a list of variable names expected)");
	lua_Integer n = (lua_Integer)lua_rawlen(L, 5);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, 5, i) != LUA_TSTRING)
			return luaL_error(L, "bad option 'allow' (string expected at [%d])", (int)i);
		lua_rawseti(L, 4, i);
	}
	lua_pop(L, 1);
	lua_setfield(L, 3, "allow");
	lua_newtable(L); /* 4: set */
	lua_pushliteral(L, "set");
	int t = lua_rawget(L, 1);
	if (t == LUA_TTABLE) {
		lua_pushnil(L);
		while (lua_next(L, 5)) {
			if (lua_type(L, -2) != LUA_TSTRING || strchr(lua_tostring(L, -2), '=') ||
			    lua_type(L, -1) != LUA_TSTRING)
				return luaL_error(L, "bad option 'set' (names without '=' to string values expected)");
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, 4);
		}
	} else if (t != LUA_TNIL) {
		return luaL_error(L, "bad option 'set' (table expected, got %s)", luaL_typename(L, -1));
	}
	lua_pop(L, 1);
	lua_setfield(L, 3, "set");
	lua_setfield(L, LUA_REGISTRYINDEX, CHILD_ENV_KEY);
	lua_settop(L, 2);
	return 1;
}

/* [-0, +1, m] The result table. */
static void push_result(lua_State *L, const struct run *r, int status, int known,
                        double duration, int timed_out)
{
	lua_createtable(L, 0, 7);
	if (known && WIFEXITED(status)) {
		lua_pushinteger(L, WEXITSTATUS(status));
		lua_setfield(L, -2, "code");
	}
	if (known && WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		lua_pushinteger(L, sig);
		lua_setfield(L, -2, "signal");
		const char *name = signal_name(sig);
		if (name) {
			lua_pushstring(L, name);
			lua_setfield(L, -2, "signame");
		}
	}
	lua_pushlstring(L, r->out.buf ? r->out.buf : "", r->out.len);
	lua_setfield(L, -2, "stdout");
	lua_pushlstring(L, r->err.buf ? r->err.buf : "", r->err.len);
	lua_setfield(L, -2, "stderr");
	if (r->out.dropped || r->err.dropped) {
		/* What max_output let go of, from the front of each stream. */
		lua_createtable(L, 0, 2);
		lua_pushinteger(L, (lua_Integer)r->out.dropped);
		lua_setfield(L, -2, "stdout");
		lua_pushinteger(L, (lua_Integer)r->err.dropped);
		lua_setfield(L, -2, "stderr");
		lua_setfield(L, -2, "dropped");
	}
	lua_pushnumber(L, duration);
	lua_setfield(L, -2, "duration");
	lua_pushboolean(L, timed_out);
	lua_setfield(L, -2, "timed_out");
}

/*
 * proc.run{ argv=, cwd=, env=, env_clear=, stdin=, timeout=, on_line=, inherit=,
 *           max_output=16 MiB }
 *   -> { code, signal, signame, stdout, stderr, duration, timed_out, dropped }
 *    | nil, msg, code
 * stdout and stderr are the last max_output bytes of each (0: all of it);
 * dropped = { stdout = n, stderr = n } says how much came before, when any did.
 */
static int proc_run(lua_State *L)
{
	struct run_opts o;
	read_opts(L, &o);
	int cmd = lua_gettop(L);
	const char *cmdline = lua_tostring(L, cmd);
	char **argv = push_argv(L, o.argv);
	char **envp = push_envp(L, &o);
	int inherit = o.inherit && lua_toboolean(L, o.inherit);
	size_t in_len = 0;
	const char *in_data = o.in ? lua_tolstring(L, o.in, &in_len) : NULL;
	luaL_checkstack(L, 8, "proc.run");

	int sig = take_interrupt();
	if (sig) {
		lua_pushnil(L);
		lua_pushfstring(L, "EINTR: interrupted by %s: %s", signal_name(sig), cmdline);
		lua_pushliteral(L, "EINTR");
		return 3;
	}

	struct run *r = lua_newuserdatauv(L, sizeof *r, 0);
	memset(r, 0, sizeof *r);
	r->out.name = "stdout";
	r->err.name = "stderr";
	r->out.fd = r->err.fd = r->in_fd = r->exec_fd = -1;
	for (int i = 0; i < 4; i++)
		r->child_fds[i] = -1;
	luaL_setmetatable(L, RUN_MT);
	lua_toclose(L, -1);

	/* child_fds: 0 stdin, 1 stdout, 2 stderr, 3 exec report */
	int err = watchdog_start();
	if (!err && !inherit) {
		err = make_pipe(&r->out.fd, &r->child_fds[1]);
		if (!err)
			err = make_pipe(&r->err.fd, &r->child_fds[2]);
	}
	if (!err && in_data)
		err = make_pipe(&r->child_fds[0], &r->in_fd);
	else if (!err && !inherit && (r->child_fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		err = errno;
	if (!err)
		err = make_pipe(&r->exec_fd, &r->child_fds[3]);
	const int nonblocking[] = {r->out.fd, r->err.fd, r->in_fd};
	for (int i = 0; i < 3 && !err; i++)
		if (nonblocking[i] >= 0)
			err = set_flags(nonblocking[i], 0, O_NONBLOCK);
	if (err) {
		run_release(r);
		return push_fail(L, err, cmdline);
	}

	double start = now_monotonic();
	struct child_setup setup = {argv, envp, o.cwd ? lua_tostring(L, o.cwd) : NULL,
	                            r->child_fds[0], r->child_fds[1], r->child_fds[2],
	                            r->child_fds[3], getpid()};
	pid_t pid = fork();
	if (pid < 0) {
		err = errno;
		run_release(r);
		return push_fail(L, err, cmdline);
	}
	if (pid == 0)
		child_exec(&setup);
	r->pid = pid;
	setpgid(pid, pid); /* also done by the child: whoever is first wins the race */
	watchdog_tell('+', pid);
	for (int i = 0; i < 4; i++)
		close_fd(&r->child_fds[i]);

	/* The report pipe closes on a successful exec, or carries the errno. */
	struct exec_report rep;
	ssize_t got;
	while ((got = read(r->exec_fd, &rep, sizeof rep)) < 0 && errno == EINTR)
		;
	close_fd(&r->exec_fd);
	if (got == (ssize_t)sizeof rep) {
		run_release(r);
		return push_fail(L, rep.err, rep.stage == FAILED_CWD ? setup.cwd : argv[0]);
	}

	size_t in_off = 0;
	if (r->in_fd >= 0 && in_len == 0)
		close_fd(&r->in_fd);
	double deadline = o.timeout_s > 0 ? start + o.timeout_s : INFINITY;
	double kill_at = INFINITY;
	int killing = 0; /* 1: SIGTERM sent, 2: SIGKILL sent */
	int timed_out = 0, interrupted = 0, quiet_ms = 1;
	int on_line = o.on_line;

	for (;;) {
		double now = now_monotonic();
		if ((sig = take_interrupt()) != 0 && !interrupted)
			interrupted = sig;
		if (!killing && now >= deadline)
			timed_out = 1;
		if (!killing && (interrupted || timed_out)) {
			kill(-pid, SIGTERM);
			killing = 1;
			kill_at = now + KILL_GRACE;
		}
		if (killing == 1 && now >= kill_at) {
			kill(-pid, SIGKILL);
			killing = 2;
		}

		/* WNOWAIT: the pid (and so the group id) stays ours until reaped. */
		siginfo_t info;
		info.si_pid = 0;
		if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
		    info.si_pid == pid)
			r->exited = 1;

		struct stream *streams[2] = {&r->out, &r->err};
		if (r->exited) {
			/* Take what the child wrote before it went; leftovers of
			 * background processes it started are not waited for. */
			for (int i = 0; i < 2 && !err; i++) {
				while (streams[i]->fd >= 0) {
					size_t before = streams[i]->len;
					err = stream_read(streams[i]);
					if (err || streams[i]->len == before)
						break;
					stream_trim(streams[i], o.max_bytes, on_line != 0);
				}
			}
			break;
		}

		enum { OUT, ERR, IN, WAKE } what[4];
		struct pollfd pfd[4];
		int np = 0;
		for (int i = 0; i < 2; i++)
			if (streams[i]->fd >= 0) {
				what[np] = i == 0 ? OUT : ERR;
				pfd[np++] = (struct pollfd){streams[i]->fd, POLLIN, 0};
			}
		int capture_open = np > 0;
		if (r->in_fd >= 0) {
			what[np] = IN;
			pfd[np++] = (struct pollfd){r->in_fd, POLLOUT, 0};
		}
		if (wake_pipe[0] >= 0) {
			what[np] = WAKE;
			pfd[np++] = (struct pollfd){wake_pipe[0], POLLIN, 0};
		}
		/* Exit is noticed by polling waitid: often while output flows,
		 * in growing steps once the child has closed its output. */
		int ms = capture_open ? 250 : quiet_ms;
		if (!capture_open && quiet_ms < 50)
			quiet_ms *= 2;
		double until = killing == 1 ? kill_at : killing ? INFINITY : deadline;
		if (until - now < ms / 1000.0)
			ms = until <= now ? 0 : (int)ceil((until - now) * 1000);
		if (poll(pfd, (nfds_t)np, ms) < 0 && errno != EINTR) {
			err = errno;
			break;
		}
		for (int i = 0; i < np; i++) {
			if (!pfd[i].revents)
				continue;
			if (what[i] == WAKE) {
				drain_wake_pipe();
			} else if (what[i] == IN) {
				size_t left = in_len - in_off;
				ssize_t w = write_nosigpipe(r->in_fd, in_data + in_off,
				                            left < READ_CHUNK ? left : READ_CHUNK);
				if (w > 0)
					in_off += (size_t)w;
				/* A child that stops reading just loses the rest. */
				if (in_off == in_len || (w < 0 && errno != EAGAIN && errno != EINTR))
					close_fd(&r->in_fd);
			} else {
				struct stream *s = what[i] == OUT ? &r->out : &r->err;
				if ((err = stream_read(s)) != 0)
					break;
				if (!lines_or_interrupt(L, &on_line, s, s->fd < 0, &interrupted)) {
					run_release(r);
					return lua_error(L);
				}
				stream_trim(s, o.max_bytes, on_line != 0);
			}
		}
		if (err)
			break;
	}

	if (killing || err)
		kill(-pid, SIGKILL); /* the rest of the group goes with the child */
	int status = 0;
	pid_t reaped;
	while ((reaped = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	int known = reaped == pid;
	group_reaped(pid);
	r->pid = 0;
	double duration = now_monotonic() - start;
	close_fd(&r->in_fd);
	close_fd(&r->out.fd);
	close_fd(&r->err.fd);
	if (err) {
		run_release(r);
		return push_fail(L, err, cmdline);
	}
	if (!lines_or_interrupt(L, &on_line, &r->out, 1, &interrupted) ||
	    !lines_or_interrupt(L, &on_line, &r->err, 1, &interrupted)) {
		run_release(r);
		return lua_error(L);
	}
	if (interrupted) {
		run_release(r);
		lua_pushnil(L);
		lua_pushfstring(L, "EINTR: interrupted by %s: %s", signal_name(interrupted), cmdline);
		lua_pushliteral(L, "EINTR");
		return 3;
	}
	stream_trim(&r->out, o.max_bytes, 0); /* every line has been handed on */
	stream_trim(&r->err, o.max_bytes, 0);
	push_result(L, r, status, known, duration, timed_out);
	return 1;
}

/* The environment, time, and this process ------------------------------- */

/* proc.getenv(name): a secret taken out of the environment is still cdp's. */
static int proc_getenv(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const struct kept_secret *k = kept_find(name);
	const char *v = k ? k->value : getenv(name);
	if (v)
		lua_pushstring(L, v);
	else
		lua_pushnil(L);
	return 1;
}

static int proc_environ(lua_State *L)
{
	lua_newtable(L);
	for (char **e = environ; *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq)
			continue;
		lua_pushlstring(L, *e, (size_t)(eq - *e));
		lua_pushstring(L, eq + 1);
		lua_rawset(L, -3);
	}
	return 1;
}

static int proc_isatty(lua_State *L)
{
	lua_Integer fd = luaL_checkinteger(L, 1);
	luaL_argcheck(L, fd >= 0 && fd <= 2, 1, "0, 1 or 2 expected");
	lua_pushboolean(L, isatty((int)fd));
	return 1;
}

static int proc_clock(lua_State *L)
{
	lua_pushnumber(L, now_monotonic());
	return 1;
}

static int proc_time(lua_State *L)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	lua_pushnumber(L, (lua_Number)t.tv_sec + (lua_Number)t.tv_nsec / 1e9);
	return 1;
}

/* proc.sleep(seconds): cut short by a trapped signal (whose hook then raises). */
static int proc_sleep(lua_State *L)
{
	lua_Number s = luaL_checknumber(L, 1);
	luaL_argcheck(L, s >= 0 && s < 1e9, 1, "seconds out of range");
	struct timespec t = {(time_t)s, (long)((s - floor(s)) * 1e9)};
	while (nanosleep(&t, &t) != 0 && errno == EINTR && !pending)
		;
	return 0;
}

static int proc_pid(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)getpid());
	return 1;
}

static int proc_hostname(lua_State *L)
{
	char host[256];
	if (gethostname(host, sizeof host) != 0)
		return push_fail(L, errno, "hostname");
	host[sizeof host - 1] = '\0';
	lua_pushstring(L, host);
	return 1;
}

/* proc.user(): the login name of the effective user, or $USER, or nil. */
static int proc_user(lua_State *L)
{
	char buf[16384];
	struct passwd pw, *found = NULL;
	if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &found) == 0 && found) {
		lua_pushstring(L, found->pw_name);
		return 1;
	}
	const char *user = getenv("USER");
	if (user)
		lua_pushstring(L, user);
	else
		lua_pushnil(L);
	return 1;
}

/* proc.kill(pid, "TERM" | "SIGTERM" | number = "TERM") */
static int proc_kill(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);
	int sig = SIGTERM;
	if (lua_type(L, 2) == LUA_TNUMBER) {
		sig = (int)luaL_checkinteger(L, 2);
	} else if (!lua_isnoneornil(L, 2)) {
		const char *name = luaL_checkstring(L, 2);
		const char *bare = strncmp(name, "SIG", 3) == 0 ? name + 3 : name;
		sig = -1;
		for (size_t i = 0; i < sizeof signal_names / sizeof *signal_names; i++)
			if (strcmp(signal_names[i].name + 3, bare) == 0)
				sig = signal_names[i].sig;
		luaL_argcheck(L, sig > 0, 2, "unknown signal name");
	}
	if (kill((pid_t)pid, sig) != 0) {
		char thing[64];
		snprintf(thing, sizeof thing, "pid %lld", (long long)pid);
		return push_fail(L, errno, thing);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* Spawned processes ----------------------------------------------------- */

#define PROCESS_MT "cdp.proc.Process"

/* A child that runs while cdp does other things (cdp serve's runs, cargo
 * metadata while the plan reads git). */
struct process {
	pid_t pid;   /* -1: none */
	int reaped;  /* its status is in STATUS */
	int status;
	int tied;    /* captured: the group is cdp's, killed and reaped on close */
	int out_fd, err_fd; /* captured output, unnamed files; -1: none */
	double deadline;    /* INFINITY: no timeout */
	int timed_out;
};

/*
 * An unnamed temporary file, read and write, for a child's output: O_TMPFILE
 * in $TMPDIR (else /tmp), so nothing of it is left on disk whatever happens to
 * cdp, and nobody else can open it by a name. Where the file system has no
 * O_TMPFILE, a file made by mkstemp in a private (0700) directory, both
 * removed at once. -1 and errno on failure.
 */
static int unnamed_file(void)
{
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	int fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	char dir[4096];
	if (snprintf(dir, sizeof dir, "%s/cdp-spawn-XXXXXX", tmp) >= (int)sizeof dir) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (!mkdtemp(dir)) /* mkdtemp makes it 0700 */
		return -1;
	char path[4096 + 16];
	snprintf(path, sizeof path, "%s/out", dir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int err = errno;
	unlink(path);
	rmdir(dir);
	errno = err;
	return fd;
}

/* Idempotent: a tied child's group killed and reaped, the captured files closed. */
static void process_release(struct process *p)
{
	if (p->tied && p->pid > 0 && !p->reaped) {
		kill(-p->pid, SIGKILL);
		int status;
		while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
			;
		p->reaped = 1;
		p->status = status;
		group_reaped(p->pid);
	}
	close_fd(&p->out_fd);
	close_fd(&p->err_fd);
}

/*
 * proc.spawn{ argv=, cwd=, env=, env_clear=, output = path, capture = false,
 *             timeout = s } -> Process | nil, msg, code
 * Like proc.run, but returns at once: stdin is /dev/null, stdout and stderr are
 * appended to OUTPUT (default /dev/null). The child leads a process group of
 * its own, so a signal to cdp's group does not reach it; cdp forwards what it
 * means to (process:kill). Nothing kills it when the handle is collected.
 *
 * With capture = true the child is cdp's, as under proc.run: stdout and stderr
 * go to two unnamed temporary files (never a name on disk, whatever happens to
 * cdp; a child printing megabytes never blocks on a pipe) that process:wait
 * returns as strings; the watchdog takes its group down if cdp dies; and
 * process:close() (also __close and __gc) kills the group and reaps it. TIMEOUT
 * counts from the spawn: process:wait then ends it as proc.run does (SIGTERM to
 * the group, SIGKILL 2 s later) and says timed_out = true.
 */
static int proc_spawn(lua_State *L)
{
	struct run_opts o;
	read_opts(L, &o);
	int cmd = lua_gettop(L);
	const char *cmdline = lua_tostring(L, cmd);
	const char *output = "/dev/null";
	if (lua_getfield(L, 1, "output") != LUA_TNIL)
		output = luaL_checkstring(L, -1);
	int capture = cdp_rawfield(L, 1, "capture") != LUA_TNIL;
	if (capture) {
		luaL_argexpected(L, lua_isboolean(L, -1), 1, "boolean option 'capture'");
		capture = lua_toboolean(L, -1);
	}
	char **argv = push_argv(L, o.argv);
	char **envp = push_envp(L, &o);
	struct process *p = lua_newuserdatauv(L, sizeof *p, 1);
	p->pid = -1;
	p->reaped = 0;
	p->status = 0;
	p->tied = 0;
	p->out_fd = p->err_fd = -1;
	p->deadline = o.timeout_s > 0 ? now_monotonic() + o.timeout_s : INFINITY;
	p->timed_out = 0;
	luaL_setmetatable(L, PROCESS_MT);
	lua_pushvalue(L, cmd);
	lua_setiuservalue(L, -2, 1); /* what EINTR names */
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int out = -1, err_out = -1;
	int err = in < 0 ? errno : 0;
	const char *failed = "/dev/null";
	if (!err && capture) {
		failed = "temporary file";
		if ((p->out_fd = unnamed_file()) < 0 || (p->err_fd = unnamed_file()) < 0)
			err = errno;
		else if ((err = watchdog_start()) == 0) {
			out = p->out_fd;
			err_out = p->err_fd;
		}
	} else if (!err) {
		failed = output;
		if ((out = open(output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
			err = errno;
		err_out = out;
	}
	int report[2] = {-1, -1};
	if (!err)
		err = make_pipe(&report[0], &report[1]);
	if (err) {
		close_fd(&in);
		if (!capture)
			close_fd(&out);
		process_release(p);
		return push_fail(L, err, failed);
	}
	struct child_setup setup = {argv, envp, o.cwd ? lua_tostring(L, o.cwd) : NULL, in, out, err_out, report[1], getpid()};
	pid_t pid = fork();
	if (pid == 0)
		child_exec(&setup);
	err = pid < 0 ? errno : 0;
	close_fd(&in);
	if (!capture)
		close_fd(&out);
	close_fd(&report[1]);
	if (pid < 0) {
		close_fd(&report[0]);
		process_release(p);
		return push_fail(L, err, cmdline);
	}
	setpgid(pid, pid);
	if (capture)
		watchdog_tell('+', pid);
	struct exec_report rep;
	ssize_t got;
	while ((got = read(report[0], &rep, sizeof rep)) < 0 && errno == EINTR)
		;
	close_fd(&report[0]);
	if (got == (ssize_t)sizeof rep) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		if (capture)
			group_reaped(pid);
		process_release(p);
		return push_fail(L, rep.err, rep.stage == FAILED_CWD ? setup.cwd : argv[0]);
	}
	p->pid = pid;
	p->tied = capture;
	return 1;
}

static struct process *check_process(lua_State *L)
{
	struct process *p = luaL_checkudata(L, 1, PROCESS_MT);
	if (p->pid < 0)
		luaL_error(L, "attempt to use a %s that never started", PROCESS_MT);
	return p;
}

/* process:pid() */
static int process_pid(lua_State *L)
{
	lua_pushinteger(L, check_process(L)->pid);
	return 1;
}

/* Whether P has exited (reaped into p->status); -1 and errno on failure. */
static int process_reap(struct process *p)
{
	int status;
	pid_t r;
	while ((r = waitpid(p->pid, &status, WNOHANG)) < 0 && errno == EINTR)
		;
	if (r == p->pid) {
		p->reaped = 1;
		p->status = status;
		if (p->tied)
			group_reaped(p->pid);
		return 1;
	}
	return r < 0 ? -1 : 0;
}

/* Sleep until P may have exited, a signal came, or SECONDS passed (< 0:
 * long). A pidfd wakes at the exit itself; without one, short naps. */
static void process_nap(struct process *p, int *pidfd, double seconds)
{
	if (*pidfd == -2)
		*pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	int ms = seconds < 0 || seconds > 1 ? 1000 : (int)ceil(seconds * 1000);
	if (*pidfd >= 0) {
		struct pollfd pfd[2] = {{*pidfd, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
		if (poll(pfd, wake_pipe[0] >= 0 ? 2 : 1, ms) > 0 && pfd[1].revents)
			drain_wake_pipe();
		return;
	}
	if (ms > 20)
		ms = 20;
	struct timespec nap = {0, (long)ms * 1000 * 1000};
	nanosleep(&nap, NULL);
}

/* [-0, +1, m] What a captured stream holds, as a string. */
static int push_captured(lua_State *L, int fd)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	if (fd >= 0) {
		off_t at = 0;
		for (;;) {
			char *dst = luaL_prepbuffsize(&b, READ_CHUNK);
			ssize_t n = pread(fd, dst, READ_CHUNK, at);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			luaL_addsize(&b, (size_t)n);
			at += n;
		}
	}
	luaL_pushresult(&b);
	return 1;
}

/*
 * process:wait(timeout = forever) -> { code, signal, signame [, stdout, stderr,
 *   timed_out] } | nil, "ETIMEDOUT: ...", "ETIMEDOUT" | nil, "EINTR: ...", "EINTR"
 * TIMEOUT bounds this wait only (the child goes on); the spawn's own timeout
 * ends the child. A signal trapped by proc.trap_signals ends the wait with
 * EINTR, naming the command; the child is left to process:close().
 */
static int process_wait(lua_State *L)
{
	struct process *p = check_process(L);
	double timeout = luaL_optnumber(L, 2, -1);
	double deadline = timeout < 0 ? INFINITY : now_monotonic() + timeout;
	int pidfd = -2, killing = 0; /* 1: SIGTERM sent, 2: SIGKILL sent */
	double kill_at = INFINITY;
	while (!p->reaped) {
		if (process_reap(p) < 0) {
			int err = errno;
			if (pidfd >= 0)
				close(pidfd);
			return push_fail(L, err, "wait");
		}
		if (p->reaped)
			break;
		double now = now_monotonic();
		int sig = p->tied ? take_interrupt() : 0;
		if (sig) {
			if (pidfd >= 0)
				close(pidfd);
			lua_getiuservalue(L, 1, 1);
			lua_pushnil(L);
			lua_pushfstring(L, "EINTR: interrupted by %s: %s", signal_name(sig), lua_tostring(L, -2));
			lua_pushliteral(L, "EINTR");
			return 3;
		}
		if (!killing && now >= p->deadline) {
			p->timed_out = 1;
			kill(-p->pid, SIGTERM);
			killing = 1;
			kill_at = now + KILL_GRACE;
		}
		if (killing == 1 && now >= kill_at) {
			kill(-p->pid, SIGKILL);
			killing = 2;
		}
		if (!killing && now >= deadline) {
			if (pidfd >= 0)
				close(pidfd);
			char thing[64];
			snprintf(thing, sizeof thing, "pid %d is still running", (int)p->pid);
			return push_fail(L, ETIMEDOUT, thing);
		}
		double until = killing == 1 ? kill_at : killing ? INFINITY : fmin(deadline, p->deadline);
		process_nap(p, &pidfd, until == INFINITY ? -1 : until - now);
	}
	if (pidfd >= 0)
		close(pidfd);
	if (p->tied && (killing || p->timed_out))
		kill(-p->pid, SIGKILL); /* the rest of the group goes with the child */
	lua_createtable(L, 0, 6);
	if (WIFEXITED(p->status)) {
		lua_pushinteger(L, WEXITSTATUS(p->status));
		lua_setfield(L, -2, "code");
	} else if (WIFSIGNALED(p->status)) {
		lua_pushinteger(L, WTERMSIG(p->status));
		lua_setfield(L, -2, "signal");
		const char *name = signal_name(WTERMSIG(p->status));
		if (name) {
			lua_pushstring(L, name);
			lua_setfield(L, -2, "signame");
		}
	}
	if (p->out_fd >= 0 || p->err_fd >= 0) {
		push_captured(L, p->out_fd);
		lua_setfield(L, -2, "stdout");
		push_captured(L, p->err_fd);
		lua_setfield(L, -2, "stderr");
		lua_pushboolean(L, p->timed_out);
		lua_setfield(L, -2, "timed_out");
	}
	return 1;
}

/* process:kill(signal = "TERM"): to the process alone; false once it is reaped */
static int process_kill(lua_State *L)
{
	struct process *p = check_process(L);
	if (p->reaped) {
		lua_pushboolean(L, 0);
		return 1;
	}
	lua_pushinteger(L, p->pid);
	lua_replace(L, 1);
	return proc_kill(L);
}

/* process:close(): __close and __gc too; idempotent. A captured child's group
 * is killed and reaped and its output let go; any other child goes on. */
static int process_close(lua_State *L)
{
	struct process *p = luaL_checkudata(L, 1, PROCESS_MT);
	process_release(p);
	return 0;
}

int luaopen_cdp_proc(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{"run", proc_run},
		{"spawn", proc_spawn},
		{"getenv", proc_getenv},
		{"take_env", proc_take_env},
		{"child_env", proc_child_env},
		{"taken", proc_taken},
		{"dumpable", proc_dumpable},
		{"environ", proc_environ},
		{"isatty", proc_isatty},
		{"clock", proc_clock},
		{"time", proc_time},
		{"sleep", proc_sleep},
		{"pid", proc_pid},
		{"hostname", proc_hostname},
		{"user", proc_user},
		{"kill", proc_kill},
		{"trap_signals", proc_trap_signals},
		{"interrupted", proc_interrupted},
		{"clear_interrupt", proc_clear_interrupt},
		{NULL, NULL},
	};
	luaL_newmetatable(L, RUN_MT);
	lua_pushcfunction(L, run_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, run_gc);
	lua_setfield(L, -2, "__close");
	lua_pop(L, 1);
	luaL_newmetatable(L, TRAP_MT);
	lua_pushcfunction(L, untrap);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	static const luaL_Reg process_methods[] = {
		{"pid", process_pid},     {"wait", process_wait}, {"kill", process_kill},
		{"close", process_close}, {NULL, NULL}};
	luaL_newmetatable(L, PROCESS_MT);
	luaL_newlib(L, process_methods);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, process_close);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, process_close);
	lua_setfield(L, -2, "__close");
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
