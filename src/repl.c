/*
 * cdp.repl — the read-eval-print loop behind `cdp repl`, after lua.c's doREPL.
 *
 *   require("cdp.repl").run{ env = table, history = path|false|nil,
 *                            prompt = "cdp> ", prompt2 = "cdp>> ",
 *                            print = function(...),
 *                            complete = function(text) -> { "cdp.plan", ... } }
 *
 * On a terminal lines are read with libedit (history kept in a file across
 * sessions); otherwise plain lines are read from stdin with no prompts, so the
 * REPL can be scripted. A line is tried as `return <line>` first, then as a
 * statement; a statement cut short (syntax error at <eof>) continues on the
 * next line. `=expr` is `return expr`.
 *
 * Ctrl-C while a chunk runs stops the chunk: a SIGINT handler, installed only
 * around the call, sets a hook that raises "interrupted!" at the next Lua
 * instruction (a second Ctrl-C, while stuck in C, ends cdp as usual). Ctrl-C
 * at the prompt drops the line being typed. Ctrl-D ends the loop.
 *
 * Tab completes the word before the cursor with what complete(word) returns.
 * libedit asks while readline() runs, so that is the one place it calls into
 * Lua: the call is protected (an error completes nothing), and what it returns
 * is copied to C memory before libedit sees it, so no error unwinds through
 * libedit.
 */
#include "host.h"

#include <editline/readline.h>
#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SESSION_MT "cdp.repl.Session"
#define HISTORY_MAX 1000

/* Stack slots of run(), fixed for the whole loop. */
enum { OPTS = 1, SESSION, ENV, PRINT, PROMPT, PROMPT2, COMPLETE, BASE = COMPLETE };

/*
 * What a session holds outside Lua: the line being read and the history file.
 * A to-be-closed userdata, so an error out of run() still frees the line and
 * saves the history.
 */
struct session {
	char *line;     /* from readline() or getline(); NULL when none */
	size_t line_cap; /* getline()'s buffer size */
	char *history;  /* history file to save to, or NULL */
	int tty;        /* reading a terminal through libedit */
	int outer;      /* stack levels below the chunks: run() and its callers */
};

/* The state whose running chunk Ctrl-C stops; set only around docall(). */
static lua_State *volatile running_L;
/* Set by Ctrl-C at the prompt. */
static volatile sig_atomic_t prompt_interrupted;

/*
 * Tab completion. While readline() runs, completing_L is the state whose
 * run() frame holds the complete function at COMPLETE (nil: none). The
 * candidates of the word being completed live in C memory until the next
 * word (or the session's end) frees them.
 */
static lua_State *completing_L;
static char **candidates;
static size_t n_candidates;

static void free_candidates(void)
{
	for (size_t i = 0; i < n_candidates; i++)
		free(candidates[i]);
	free(candidates);
	candidates = NULL;
	n_candidates = 0;
}

/* [-2, +0, e] Called protected with complete and the word (a light userdata):
 * copy what complete(word) returns into candidates. */
static int collect_candidates(lua_State *L)
{
	const char *word = lua_touserdata(L, 2);
	lua_pushvalue(L, 1);
	lua_pushstring(L, word);
	lua_call(L, 1, 1);
	if (!lua_istable(L, -1))
		return 0;
	lua_Integer n = luaL_len(L, -1);
	if (n <= 0)
		return 0;
	char **list = calloc((size_t)n, sizeof *list);
	if (!list)
		return 0;
	candidates = list;
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_geti(L, -1, i) == LUA_TSTRING) {
			char *copy = strdup(lua_tostring(L, -1));
			if (!copy)
				break;
			candidates[n_candidates++] = copy;
		}
		lua_pop(L, 1);
	}
	return 0;
}

/* libedit's generator: the STATE'th candidate for WORD, malloc'd, or NULL. */
static char *next_candidate(const char *word, int state)
{
	static size_t next;
	if (state == 0) {
		free_candidates();
		next = 0;
		lua_State *L = completing_L;
		/* Room was made before readline(); these pushes cannot raise. */
		if (L && lua_isfunction(L, COMPLETE)) {
			int top = lua_gettop(L);
			lua_pushcfunction(L, collect_candidates);
			lua_pushvalue(L, COMPLETE);
			lua_pushlightuserdata(L, (void *)word);
			lua_pcall(L, 2, 0, 0); /* an error completes nothing */
			lua_settop(L, top);
		}
	}
	return next < n_candidates ? strdup(candidates[next++]) : NULL;
}

static char **complete_word(const char *word, int start, int end)
{
	(void)start;
	(void)end;
	rl_attempted_completion_over = 1; /* names, never file names */
	return rl_completion_matches(word, next_candidate);
}

/* The hook Ctrl-C sets: raise in the running chunk at the next chance. */
static void stop_chunk(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	luaL_error(L, "interrupted!");
}

/* lua_sethook is safe in a signal handler; nothing else is done here. */
static void on_sigint_running(int sig)
{
	(void)sig;
	lua_sethook(running_L, stop_chunk,
	            LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

static void on_sigint_prompt(int sig)
{
	(void)sig;
	prompt_interrupted = 1;
}

/*
 * Drop the frames of run() and its callers from the traceback at the top of
 * the stack: the user wants to see their chunk, not how cdp got to the REPL.
 * luaL_traceback writes one line per level and always keeps the outermost
 * levels, so the last OUTER lines are exactly those frames.
 */
static void trim_traceback(lua_State *L, int outer)
{
	size_t len;
	const char *msg = lua_tolstring(L, -1, &len);
	if (msg == NULL || outer <= 0 || outer > 10 || strstr(msg, "\nstack traceback:") == NULL)
		return;
	size_t end = len;
	for (int i = 0; i < outer; i++) {
		while (end > 0 && msg[end - 1] != '\n')
			end--;
		if (end == 0)
			return;
		end--; /* the '\n' itself */
	}
	lua_pushlstring(L, msg, end);
	lua_replace(L, -2);
}

/* [-n, +r] Call the function below NARGS arguments; Ctrl-C interrupts it. */
static int docall(lua_State *L, struct session *s, int nargs, int nresults)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint_running;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESETHAND; /* the second Ctrl-C is not caught */
	lua_State *prev = running_L; /* a REPL may run inside a REPL's chunk */
	running_L = L;
	sigaction(SIGINT, &sa, &old);
	int status = cdp_pcall(L, nargs, nresults);
	sigaction(SIGINT, &old, NULL);
	running_L = prev;
	/* A Ctrl-C just as the chunk ended must not stop the next one. */
	if (lua_gethook(L) == stop_chunk)
		lua_sethook(L, NULL, 0, 0);
	if (status != LUA_OK)
		trim_traceback(L, s->outer);
	return status;
}

/* Print the error at the top of the stack after what was printed before it. */
static void report(lua_State *L)
{
	fflush(stdout);
	cdp_report(L);
}

/*
 * Keep LINE in the in-memory history, unless empty or a repeat of the last.
 * Each physical line is an entry of its own: libedit's readline() cuts a
 * recalled entry at its first newline, so a whole multi-line chunk would not
 * come back intact.
 */
static void remember(struct session *s, const char *line)
{
	if (!s->tty || line[0] == '\0')
		return;
	HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
	if (last && last->line && strcmp(last->line, line) == 0)
		return;
	add_history(line);
}

enum { LINE_OK = 1, LINE_EOF = 0, LINE_INTERRUPTED = -1 };

/* [-0, +(0|1)] Read one line and push it without its newline. */
static int pushline(lua_State *L, struct session *s, int firstline)
{
	size_t len;
	if (s->tty) {
		const char *prompt = lua_tostring(L, firstline ? PROMPT : PROMPT2);
		struct sigaction sa, old;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_sigint_prompt;
		sigemptyset(&sa.sa_mask);
		/*
		 * libedit's own handler (it also restores the terminal, follows
		 * resizes and Ctrl-Z) passes SIGINT on to this one; without
		 * SA_RESTART its read() then fails and readline() returns NULL.
		 */
		sa.sa_flags = 0;
		prompt_interrupted = 0;
		sigaction(SIGINT, &sa, &old);
		lua_State *outer = completing_L; /* a REPL inside a REPL's chunk */
		completing_L = L;
		s->line = readline(prompt);
		completing_L = outer;
		sigaction(SIGINT, &old, NULL);
		if (prompt_interrupted) {
			free(s->line);
			s->line = NULL;
			fputs("\n", stdout);
			fflush(stdout);
			return LINE_INTERRUPTED;
		}
		if (s->line == NULL)
			return LINE_EOF;
		len = strlen(s->line);
	} else {
		ssize_t n = getline(&s->line, &s->line_cap, stdin);
		if (n < 0)
			return LINE_EOF;
		len = (size_t)n;
		if (len > 0 && s->line[len - 1] == '\n')
			s->line[--len] = '\0';
	}
	remember(s, s->line);
	if (firstline && s->line[0] == '=')
		lua_pushfstring(L, "return %s", s->line + 1);
	else
		lua_pushlstring(L, s->line, len);
	if (s->tty) {
		free(s->line);
		s->line = NULL;
	}
	return LINE_OK;
}

/* [-0, +1] Load CODE as a text chunk named "=stdin" whose _ENV is ENV. */
static int load_chunk(lua_State *L, const char *code, size_t len)
{
	int status = luaL_loadbufferx(L, code, len, "=stdin", "t");
	if (status == LUA_OK && !lua_isnil(L, ENV)) {
		lua_pushvalue(L, ENV);
		lua_setupvalue(L, -2, 1);
	}
	return status;
}

/* Whether the load error at the top of the stack says the chunk was cut short. */
static int incomplete(lua_State *L, int status)
{
	static const char mark[] = "<eof>";
	size_t len;
	const char *msg = lua_tolstring(L, -1, &len);
	return status == LUA_ERRSYNTAX && msg && len >= sizeof mark - 1 &&
	       memcmp(msg + len - (sizeof mark - 1), mark, sizeof mark - 1) == 0;
}

/* What loadline() returns besides a load status; nothing is pushed then. */
enum { CHUNK_EOF = -1, CHUNK_DROPPED = -2 };

/*
 * [-0, +1] Read a chunk and load it: the function, or a syntax error message.
 * Returns the load status, CHUNK_EOF at the end of input, or CHUNK_DROPPED
 * when Ctrl-C threw away what was typed.
 */
static int loadline(lua_State *L, struct session *s)
{
	int got = pushline(L, s, 1);
	if (got != LINE_OK)
		return got == LINE_EOF ? CHUNK_EOF : CHUNK_DROPPED;
	int line = lua_gettop(L);

	/* An expression? Then show its values. */
	size_t len;
	const char *code = lua_tolstring(L, line, &len);
	const char *ret = lua_pushfstring(L, "return %s;", code);
	if (load_chunk(L, ret, strlen(ret)) == LUA_OK) {
		lua_replace(L, line);
		lua_settop(L, line);
		return LUA_OK;
	}
	lua_settop(L, line);

	/* A statement, perhaps over several lines. */
	for (;;) {
		code = lua_tolstring(L, line, &len);
		int status = load_chunk(L, code, len);
		if (!incomplete(L, status)) {
			lua_replace(L, line);
			return status;
		}
		lua_pop(L, 1);
		got = pushline(L, s, 0);
		if (got == LINE_INTERRUPTED) {
			lua_settop(L, line - 1);
			return CHUNK_DROPPED;
		}
		if (got == LINE_EOF) {
			/* End of input inside a statement: say what was missing. */
			load_chunk(L, code, len);
			lua_replace(L, line);
			return LUA_ERRSYNTAX;
		}
		lua_pushliteral(L, "\n");
		lua_insert(L, -2);
		lua_concat(L, 3);
	}
}

/* [-n, +0] Print the N values at the top of the stack with the print function. */
static void print_results(lua_State *L, struct session *s, int n)
{
	if (n <= 0)
		return;
	luaL_checkstack(L, 2, "too many results to print");
	lua_pushvalue(L, PRINT);
	lua_insert(L, -n - 1);
	if (docall(L, s, n, 0) != LUA_OK) {
		lua_pushfstring(L, "error calling print (%s)", lua_tostring(L, -1));
		lua_remove(L, -2);
		report(L);
	}
	fflush(stdout);
}

static char *history_default(void)
{
	const char *env = getenv("CDP_HISTORY");
	if (env && *env)
		return strdup(env);
	const char *state = getenv("XDG_STATE_HOME");
	if (state && *state) {
		size_t n = strlen(state) + sizeof "/cdp/history";
		char *path = malloc(n);
		if (path) {
			snprintf(path, n, "%s/cdp", state);
			mkdir(state, 0700); /* may exist: then the history file decides */
			mkdir(path, 0700);
			snprintf(path, n, "%s/cdp/history", state);
		}
		return path;
	}
	const char *home = getenv("HOME");
	if (home && *home) {
		size_t n = strlen(home) + sizeof "/.cdp_history";
		char *path = malloc(n);
		if (path)
			snprintf(path, n, "%s/.cdp_history", home);
		return path;
	}
	return NULL;
}

/* Save the history and free what the session holds. Safe to call twice. */
static int session_close(lua_State *L)
{
	struct session *s = luaL_checkudata(L, 1, SESSION_MT);
	free(s->line);
	s->line = NULL;
	s->line_cap = 0;
	free_candidates();
	if (s->history) {
		stifle_history(HISTORY_MAX);
		/* Lines typed may hold tokens: the file is 0600 before a line is in it
		 * (an old one is narrowed first, a new one is made under umask 077). */
		chmod(s->history, 0600);
		mode_t mask = umask(077);
		int err = write_history(s->history);
		umask(mask);
		if (err != 0)
			fprintf(stderr, "cdp: cannot save REPL history to %s: %s\n", s->history,
			        strerror(err));
		free(s->history);
		s->history = NULL;
	}
	return 0;
}

static int session_tostring(lua_State *L)
{
	struct session *s = luaL_checkudata(L, 1, SESSION_MT);
	lua_pushfstring(L, "cdp.repl.Session (%s)", s->tty ? "terminal" : "stdin");
	return 1;
}

static const char *opt_string(lua_State *L, const char *field, const char *def)
{
	lua_getfield(L, OPTS, field);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_pushstring(L, def);
	} else if (lua_type(L, -1) != LUA_TSTRING) {
		luaL_error(L, "bad option '%s' to 'run' (string expected, got %s)", field,
		           luaL_typename(L, -1));
	}
	return lua_tostring(L, -1);
}

/* repl.run(opts) -> nothing, when input ends. */
static int repl_run(lua_State *L)
{
	if (lua_isnoneornil(L, OPTS)) {
		lua_settop(L, 0);
		lua_newtable(L);
	}
	luaL_checktype(L, OPTS, LUA_TTABLE);
	lua_settop(L, OPTS);

	/* Check every option before acquiring anything. */
	lua_getfield(L, OPTS, "history");
	int history_type = lua_type(L, -1);
	if (history_type != LUA_TNIL && history_type != LUA_TSTRING && history_type != LUA_TBOOLEAN)
		return luaL_error(L, "bad option 'history' to 'run' (string or false expected, got %s)",
		                  luaL_typename(L, -1));
	int history_wanted = history_type != LUA_TBOOLEAN || lua_toboolean(L, -1);
	lua_pop(L, 1);

	struct session *s = lua_newuserdatauv(L, sizeof *s, 0);
	memset(s, 0, sizeof *s);
	if (luaL_newmetatable(L, SESSION_MT)) {
		lua_pushcfunction(L, session_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, session_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, session_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_setmetatable(L, SESSION);
	lua_toclose(L, SESSION);

	lua_getfield(L, OPTS, "env");
	if (!lua_isnil(L, ENV) && !lua_istable(L, ENV))
		return luaL_error(L, "bad option 'env' to 'run' (table expected, got %s)",
		                  luaL_typename(L, ENV));
	lua_getfield(L, OPTS, "print");
	if (lua_isnil(L, PRINT)) {
		lua_pop(L, 1);
		lua_getglobal(L, "require");
		lua_pushliteral(L, "cdp.pretty");
		lua_call(L, 1, 1);
		lua_getfield(L, -1, "print");
		lua_remove(L, -2);
	}
	if (lua_type(L, PRINT) != LUA_TFUNCTION && !luaL_getmetafield(L, PRINT, "__call"))
		return luaL_error(L, "bad option 'print' to 'run' (function expected, got %s)",
		                  luaL_typename(L, PRINT));
	lua_settop(L, PRINT);
	opt_string(L, "prompt", "cdp> ");
	opt_string(L, "prompt2", "cdp>> ");
	lua_getfield(L, OPTS, "complete");
	if (!lua_isnil(L, COMPLETE) && !lua_isfunction(L, COMPLETE))
		return luaL_error(L, "bad option 'complete' to 'run' (function expected, got %s)",
		                  luaL_typename(L, COMPLETE));

	lua_Debug ar;
	while (lua_getstack(L, s->outer, &ar))
		s->outer++;

	s->tty = isatty(STDIN_FILENO);
	if (s->tty) {
		using_history(); /* sets libedit up once; a REPL inside a REPL reuses it */
		rl_attempted_completion_function = complete_word;
		rl_completion_append_character = '\0'; /* cdp.plan, then . or ( as the user goes on */
		if (history_wanted) {
			lua_getfield(L, OPTS, "history");
			const char *path = lua_tostring(L, -1);
			s->history = path ? strdup(path) : history_default();
			lua_pop(L, 1);
			/* A REPL inside a REPL shares libedit's one history list. */
			if (s->history && history_length == 0)
				read_history(s->history); /* a missing file is a first session */
			stifle_history(HISTORY_MAX);
		}
	}

	for (;;) {
		lua_settop(L, BASE);
		luaL_checkstack(L, 8, "no room for the REPL's completion"); /* what next_candidate pushes */
		int status = loadline(L, s);
		if (status == CHUNK_EOF)
			break;
		if (status == CHUNK_DROPPED)
			continue;
		if (status == LUA_OK)
			status = docall(L, s, 0, LUA_MULTRET);
		if (status == LUA_OK)
			print_results(L, s, lua_gettop(L) - BASE);
		else
			report(L);
	}
	if (s->tty)
		fputs("\n", stdout);
	fflush(stdout);
	return 0; /* closing SESSION saves the history */
}

/* repl.interactive() -> whether run() reads a terminal (prompts, libedit). */
static int repl_interactive(lua_State *L)
{
	lua_pushboolean(L, isatty(STDIN_FILENO));
	return 1;
}

int luaopen_cdp_repl(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{"run", repl_run},
		{"interactive", repl_interactive},
		{NULL, NULL},
	};
	luaL_newlib(L, funcs);
	return 1;
}
