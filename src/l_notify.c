/*
 * cdp.notify — notification delivery that never stalls a pipeline stage.
 *
 *   local q = notify.queue{ capacity=, retries=, backoff=, timeout= }
 *   q:post{ id=, kind="http"|"smtp", ... } -> true | nil, "EFULL: ...", "EFULL"
 *   q:poll() -> { {id=, ok=, attempts=, status=, error=, code=}, ... }
 *   q:flush(deadline) -> results, the jobs still pending reported as EDEADLINE
 *   q:pending() -> n
 *   q:close([deadline]) -> results of a last flush (5 s), then the worker joins
 *
 * Each queue has one worker thread with its own libcurl handle. The worker
 * never touches the lua_State: post copies everything a job needs into C
 * memory (cdp.http's job builder does the reading), and results come back
 * through a list the Lua side drains. A job that fails with a 5xx, a 429 or a
 * transport error waits (backoff doubling per retry, or longer if the server
 * sent Retry-After) while later jobs go ahead.
 */
#include "host.h"
#include "core/curl_job.h"

#include <errno.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_TNAME "cdp.notify.Queue"
#define JOB_BUILDER "cdp.http.job" /* registry, set by cdp.http */
#define RETRY_AFTER_MAX 600.0      /* seconds; a server cannot park a job longer */
#define CLOSE_DEADLINE 5.0
#define DELAY_MAX 86400.0 /* seconds; longest backoff or deadline we wait */

struct job {
	struct job *next;
	char *id;
	struct curl_job req;
	int attempts;
	double not_before; /* monotonic seconds */
	long status;       /* of the last attempt, 0: none */
	char *error;       /* message of the last failed attempt */
	const char *code;
};

struct result {
	struct result *next;
	char *id;
	int ok, attempts;
	long status;
	char *error;
	const char *code;
};

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* worker: a job was posted, or stop */
	pthread_cond_t idle; /* flush: a job finished */
	struct job *head, *tail; /* waiting */
	struct job *current;     /* in flight, owned by the worker */
	int current_abandoned;   /* flush has reported it; the worker drops it */
	atomic_int cancel;       /* asks the transfer in flight to stop */
	size_t jobs;             /* waiting + in flight, not abandoned */
	struct result *done, *done_tail; /* finished, not yet taken */
	int stop;
	pthread_t thread;

	size_t capacity;
	int retries;
	double backoff, timeout;

	/* Lua side only: results taken but not yet pushed, kept here so a raise loses nothing. */
	struct result *taken;
};

struct queue_box {
	struct queue *q; /* NULL: closed */
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timespec abstime(double t)
{
	struct timespec ts;
	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static void job_free(struct job *j)
{
	curl_job_free(&j->req);
	free(j->id);
	free(j->error);
	free(j);
}

static void result_free(struct result *r)
{
	free(r->id);
	free(r->error);
	free(r);
}

static void results_free(struct result *r)
{
	while (r) {
		struct result *next = r->next;
		result_free(r);
		r = next;
	}
}

/* [lock held] Add R to the finished results, in order. */
static void done_append(struct queue *q, struct result *r)
{
	if (q->done_tail)
		q->done_tail->next = r;
	else
		q->done = r;
	q->done_tail = r;
}

/*
 * [lock held] Turn J into a result and free J; J no longer counts as pending.
 * ERROR is taken over. When out of memory the result keeps its code only.
 */
static void finish(struct queue *q, struct job *j, int ok, const char *code, char *error)
{
	struct result *r = calloc(1, sizeof *r);
	if (r) {
		r->id = j->id;
		j->id = NULL;
		r->ok = ok;
		r->attempts = j->attempts;
		r->status = j->status;
		r->code = code;
		r->error = error;
		done_append(q, r);
	} else {
		free(error);
	}
	job_free(j);
	q->jobs--;
	pthread_cond_broadcast(&q->idle);
}

static char *str_copy(const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static char *http_status_error(const struct curl_job *req, long status)
{
	char *url = curl_job_redact_url(req->url);
	size_t size = (url ? strlen(url) : 0) + 48;
	char *msg = malloc(size);
	if (msg)
		snprintf(msg, size, "EHTTP: HTTP %ld: %s", status, url ? url : "(url)");
	free(url);
	return msg;
}

/* Seconds the server asked us to wait (Retry-After), or 0. */
static double retry_after(const struct curl_result *res)
{
	char *v = curl_result_header(res, "retry-after");
	if (!v)
		return 0;
	double wait = 0;
	char *end;
	long secs = strtol(v, &end, 10);
	if (end != v && *end == '\0') {
		wait = (double)secs;
	} else {
		time_t t = curl_getdate(v, NULL);
		if (t != -1)
			wait = difftime(t, time(NULL));
	}
	free(v);
	return wait < 0 ? 0 : wait > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : wait;
}

static int cancelled(void *payload)
{
	struct queue *q = payload;
	return atomic_load(&q->cancel);
}

/*
 * One attempt at J, without the lock. Returns 1 when delivered, 0 when worth
 * another attempt, -1 when it never will be; the job's status, error and code
 * say what happened. *WAIT is a delay the server asked for.
 */
static int attempt(struct queue *q, CURL *curl, struct job *j, double *wait)
{
	struct curl_result res = {0};
	int rc = curl_job_perform(curl, &j->req, &res, cancelled, q);
	int outcome;
	free(j->error);
	j->error = NULL;
	j->status = j->req.kind == CURL_JOB_HTTP ? res.status : 0;
	*wait = 0;
	if (rc < 0) {
		j->code = res.code;
		j->error = res.message;
		res.message = NULL;
		if (strcmp(res.code, "EURL") == 0 || strcmp(res.code, "ECANCELED") == 0)
			outcome = -1;
		else if (strcmp(res.code, "ESMTP") == 0)
			outcome = res.status >= 400 && res.status < 500 ? 0 : -1;
		else
			outcome = 0;
	} else if (j->req.kind == CURL_JOB_SMTP || (res.status >= 200 && res.status < 300)) {
		j->code = NULL;
		outcome = 1;
	} else {
		j->code = "EHTTP";
		j->error = http_status_error(&j->req, res.status);
		outcome = res.status >= 500 || res.status == 429 ? 0 : -1;
		if (outcome == 0)
			*wait = retry_after(&res);
	}
	curl_result_free(&res);
	return outcome;
}

static void *worker(void *payload)
{
	struct queue *q = payload;
	CURL *curl = curl_easy_init(); /* NULL: each attempt makes its own */
	pthread_mutex_lock(&q->lock);
	while (!q->stop) {
		/* The first waiting job that is due; the earliest due time otherwise. */
		double t = now(), next = 0;
		struct job *j = NULL, *prev = NULL;
		for (struct job *p = q->head, *pp = NULL; p; pp = p, p = p->next) {
			if (p->not_before <= t) {
				j = p;
				prev = pp;
				break;
			}
			if (next == 0 || p->not_before < next)
				next = p->not_before;
		}
		if (!j) {
			if (next == 0) {
				pthread_cond_wait(&q->wake, &q->lock);
			} else {
				struct timespec ts = abstime(next);
				pthread_cond_timedwait(&q->wake, &q->lock, &ts);
			}
			continue;
		}
		if (prev)
			prev->next = j->next;
		else
			q->head = j->next;
		if (q->tail == j)
			q->tail = prev;
		j->next = NULL;
		j->attempts++;
		q->current = j;
		q->current_abandoned = 0;
		atomic_store(&q->cancel, 0);
		pthread_mutex_unlock(&q->lock);

		double wait;
		int outcome = attempt(q, curl, j, &wait);

		pthread_mutex_lock(&q->lock);
		q->current = NULL;
		if (q->current_abandoned) {
			job_free(j);
		} else if (outcome == 1) {
			finish(q, j, 1, NULL, NULL);
		} else if (outcome == 0 && j->attempts <= q->retries) {
			double delay = q->backoff;
			for (int i = 1; i < j->attempts && delay < DELAY_MAX; i++)
				delay *= 2;
			if (delay > DELAY_MAX)
				delay = DELAY_MAX;
			j->not_before = now() + (wait > delay ? wait : delay);
			if (q->tail)
				q->tail->next = j;
			else
				q->head = j;
			q->tail = j;
		} else {
			char *error = j->error;
			j->error = NULL;
			finish(q, j, 0, j->code ? j->code : "EHTTP", error);
		}
	}
	pthread_mutex_unlock(&q->lock);
	if (curl)
		curl_easy_cleanup(curl);
	return NULL;
}

/* [lock held] Report every pending job as EDEADLINE; the one in flight is dropped when it returns. */
static void abandon(struct queue *q)
{
	while (q->head) {
		struct job *j = q->head;
		q->head = j->next;
		char *error = NULL;
		size_t size = strlen(j->id) + (j->error ? strlen(j->error) : 0) + 80;
		if ((error = malloc(size)))
			snprintf(error, size, "EDEADLINE: %s not delivered by the deadline%s%s%s", j->id,
			         j->error ? " (last: " : "", j->error ? j->error : "", j->error ? ")" : "");
		finish(q, j, 0, "EDEADLINE", error);
	}
	q->tail = NULL;
	struct job *c = q->current;
	if (c && !q->current_abandoned) {
		/* A copy of it goes in the results now; the worker frees the job itself. */
		struct result *r = calloc(1, sizeof *r);
		size_t size = strlen(c->id) + 80;
		char *error = malloc(size);
		char *id = str_copy(c->id);
		if (r && error && id) {
			snprintf(error, size, "EDEADLINE: %s not delivered by the deadline (in flight)",
			         c->id);
			r->id = id;
			r->attempts = c->attempts;
			r->code = "EDEADLINE";
			r->error = error;
			done_append(q, r);
		} else {
			free(r);
			free(error);
			free(id);
		}
		q->current_abandoned = 1;
		atomic_store(&q->cancel, 1);
		q->jobs--;
	}
}

/* Move the finished results to q->taken (Lua side), under the lock. */
static void take_results(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	struct result *r = q->done;
	q->done = q->done_tail = NULL;
	pthread_mutex_unlock(&q->lock);
	struct result **end = &q->taken;
	while (*end)
		end = &(*end)->next;
	*end = r;
}

/* [lock not held] Wait until nothing is pending or DEADLINE seconds pass, then abandon the rest. */
static void drain(struct queue *q, double deadline)
{
	struct timespec ts = abstime(now() + deadline);
	pthread_mutex_lock(&q->lock);
	while (q->jobs > 0)
		if (pthread_cond_timedwait(&q->idle, &q->lock, &ts) == ETIMEDOUT)
			break;
	if (q->jobs > 0)
		abandon(q);
	pthread_mutex_unlock(&q->lock);
}

/* Stop the worker, join it, free everything. The queue must have been drained. */
static void queue_destroy(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->stop = 1;
	atomic_store(&q->cancel, 1);
	pthread_cond_broadcast(&q->wake);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	while (q->head) {
		struct job *j = q->head;
		q->head = j->next;
		job_free(j);
	}
	results_free(q->done);
	results_free(q->taken);
	pthread_cond_destroy(&q->wake);
	pthread_cond_destroy(&q->idle);
	pthread_mutex_destroy(&q->lock);
	free(q);
	curl_job_global_cleanup();
}

/* [-0, +1, m] The taken results as an array, each freed once it is in the array. */
static int push_results(lua_State *L, struct queue *q)
{
	lua_newtable(L);
	int i = 0;
	while (q->taken) {
		struct result *r = q->taken;
		lua_createtable(L, 0, 6);
		lua_pushstring(L, r->id ? r->id : "?");
		lua_setfield(L, -2, "id");
		lua_pushboolean(L, r->ok);
		lua_setfield(L, -2, "ok");
		lua_pushinteger(L, r->attempts);
		lua_setfield(L, -2, "attempts");
		if (r->status) {
			lua_pushinteger(L, r->status);
			lua_setfield(L, -2, "status");
		}
		if (!r->ok) {
			lua_pushstring(L, r->error ? r->error : r->code);
			lua_setfield(L, -2, "error");
			lua_pushstring(L, r->code);
			lua_setfield(L, -2, "code");
		}
		lua_rawseti(L, -2, ++i);
		q->taken = r->next;
		result_free(r);
	}
	return 1;
}

static struct queue *check_open(lua_State *L)
{
	struct queue_box *box = luaL_checkudata(L, 1, QUEUE_TNAME);
	if (!box->q)
		luaL_error(L, "attempt to use a closed notification queue");
	return box->q;
}

static double opt_deadline(lua_State *L, int arg, double def)
{
	double d = luaL_optnumber(L, arg, def);
	luaL_argcheck(L, d >= 0, arg, "deadline must not be negative");
	return d > DELAY_MAX ? DELAY_MAX : d; /* math.huge would not fit a timespec */
}

/* q:post(spec) -> true | nil, "EFULL: ...", "EFULL" */
static int queue_post(lua_State *L)
{
	struct queue *q = check_open(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	if (cdp_rawfield(L, 2, "id") != LUA_TSTRING)
		return luaL_error(L, "field 'id': string expected, got %s", luaL_typename(L, -1));
	size_t id_len;
	const char *id = lua_tolstring(L, 3, &id_len);
	if (cdp_rawfield(L, 2, "kind") != LUA_TSTRING && !lua_isnil(L, -1))
		return luaL_error(L, "field 'kind': string expected, got %s", luaL_typename(L, -1));
	const char *kind = lua_isnil(L, 4) ? "http" : lua_tostring(L, 4);
	if (strcmp(kind, "http") != 0 && strcmp(kind, "smtp") != 0)
		return luaL_error(L, "field 'kind': 'http' or 'smtp' expected, got '%s'", kind);
	int has_timeout = cdp_rawfield(L, 2, "timeout") != LUA_TNIL;
	lua_pop(L, 1);

	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 2);
	lua_pushstring(L, kind);
	lua_call(L, 2, 1); /* raises on misuse */
	lua_toclose(L, -1);
	struct curl_job_box *box = luaL_checkudata(L, -1, CURL_JOB_BOX);

	struct job *j = calloc(1, sizeof *j);
	char *id_copy = malloc(id_len + 1);
	if (!j || !id_copy) {
		free(j);
		free(id_copy);
		return luaL_error(L, "not enough memory");
	}
	memcpy(id_copy, id, id_len + 1);
	j->id = id_copy;
	j->req = box->job;
	memset(&box->job, 0, sizeof box->job);
	if (!has_timeout)
		j->req.timeout = q->timeout;

	pthread_mutex_lock(&q->lock);
	int full = q->jobs >= q->capacity;
	if (!full) {
		if (q->tail)
			q->tail->next = j;
		else
			q->head = j;
		q->tail = j;
		q->jobs++;
		pthread_cond_signal(&q->wake);
	}
	pthread_mutex_unlock(&q->lock);
	if (full) {
		job_free(j);
		lua_pushnil(L);
		lua_pushfstring(L, "EFULL: notification queue full (%I)", (lua_Integer)q->capacity);
		lua_pushliteral(L, "EFULL");
		return 3;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* q:poll() -> results finished since the last poll */
static int queue_poll(lua_State *L)
{
	struct queue *q = check_open(L);
	take_results(q);
	return push_results(L, q);
}

/* q:flush(deadline) -> results; what is still pending by then is abandoned as EDEADLINE */
static int queue_flush(lua_State *L)
{
	struct queue *q = check_open(L);
	drain(q, opt_deadline(L, 2, CLOSE_DEADLINE));
	take_results(q);
	return push_results(L, q);
}

/* q:pending() -> jobs not yet finished */
static int queue_pending(lua_State *L)
{
	struct queue *q = check_open(L);
	pthread_mutex_lock(&q->lock);
	size_t n = q->jobs;
	pthread_mutex_unlock(&q->lock);
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

/* q:close([deadline]) -> results of a last flush; a closed queue gives {} */
static int queue_close(lua_State *L)
{
	struct queue_box *box = luaL_checkudata(L, 1, QUEUE_TNAME);
	double deadline = opt_deadline(L, 2, CLOSE_DEADLINE);
	struct queue *q = box->q;
	if (!q) {
		lua_newtable(L);
		return 1;
	}
	drain(q, deadline);
	take_results(q);
	/* The results outlive the queue: push them first, then destroy it. */
	push_results(L, q);
	box->q = NULL;
	queue_destroy(q);
	return 1;
}

/* __gc and __close: close, dropping the results. */
static int queue_gc(lua_State *L)
{
	struct queue_box *box = luaL_checkudata(L, 1, QUEUE_TNAME);
	struct queue *q = box->q;
	if (q) {
		box->q = NULL;
		drain(q, CLOSE_DEADLINE);
		queue_destroy(q);
	}
	return 0;
}

static int queue_tostring(lua_State *L)
{
	struct queue_box *box = luaL_checkudata(L, 1, QUEUE_TNAME);
	if (!box->q) {
		lua_pushliteral(L, "cdp.notify.Queue (closed)");
		return 1;
	}
	pthread_mutex_lock(&box->q->lock);
	size_t n = box->q->jobs;
	pthread_mutex_unlock(&box->q->lock);
	lua_pushfstring(L, "cdp.notify.Queue (%I pending)", (lua_Integer)n);
	return 1;
}

static lua_Integer opt_int_field(lua_State *L, int t, const char *name, lua_Integer def,
                                 lua_Integer min)
{
	int type = cdp_rawfield(L, t, name);
	lua_Integer v = def;
	if (type != LUA_TNIL) {
		int ok;
		v = lua_tointegerx(L, -1, &ok);
		if (!ok)
			luaL_error(L, "field '%s': integer expected, got %s", name, luaL_typename(L, -1));
	}
	lua_pop(L, 1);
	if (v < min)
		luaL_error(L, "field '%s': must be at least %d", name, (int)min);
	return v;
}

static double opt_num_field(lua_State *L, int t, const char *name, double def, int positive)
{
	int type = cdp_rawfield(L, t, name);
	double v = def;
	if (type == LUA_TNUMBER)
		v = lua_tonumber(L, -1);
	else if (type != LUA_TNIL)
		luaL_error(L, "field '%s': number expected, got %s", name, luaL_typename(L, -1));
	lua_pop(L, 1);
	if (positive ? !(v > 0) : !(v >= 0))
		luaL_error(L, "field '%s': must be %s", name, positive ? "positive" : "non-negative");
	return v;
}

/* notify.queue{ capacity=256, retries=3, backoff=0.5, timeout=10 } -> Queue, its worker started */
static int notify_queue(lua_State *L)
{
	if (lua_isnoneornil(L, 1))
		lua_newtable(L);
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	lua_Integer capacity = opt_int_field(L, 1, "capacity", 256, 1);
	lua_Integer retries = opt_int_field(L, 1, "retries", 3, 0);
	double backoff = opt_num_field(L, 1, "backoff", 0.5, 0);
	double timeout = opt_num_field(L, 1, "timeout", 10, 1);
	if (retries > 100)
		return luaL_error(L, "field 'retries': at most 100");

	struct queue_box *box = lua_newuserdatauv(L, sizeof *box, 0);
	box->q = NULL;
	luaL_setmetatable(L, QUEUE_TNAME);

	struct queue *q = calloc(1, sizeof *q);
	if (!q)
		return luaL_error(L, "not enough memory");
	q->capacity = (size_t)capacity;
	q->retries = (int)retries;
	q->backoff = backoff;
	q->timeout = timeout;
	atomic_init(&q->cancel, 0);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->wake, &attr);
	pthread_cond_init(&q->idle, &attr);
	pthread_condattr_destroy(&attr);

	const char *failed = NULL;
	if (curl_job_global_init() < 0)
		failed = "cannot initialise libcurl";
	else if (pthread_create(&q->thread, NULL, worker, q) != 0) {
		curl_job_global_cleanup();
		failed = "cannot start the notification worker";
	}
	if (failed) {
		pthread_cond_destroy(&q->wake);
		pthread_cond_destroy(&q->idle);
		pthread_mutex_destroy(&q->lock);
		free(q);
		return luaL_error(L, "%s", failed);
	}
	box->q = q;
	return 1;
}

int luaopen_cdp_notify(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"post", queue_post},
		{"poll", queue_poll},
		{"flush", queue_flush},
		{"pending", queue_pending},
		{"close", queue_close},
		{NULL, NULL},
	};
	static const luaL_Reg meta[] = {
		{"__gc", queue_gc},
		{"__close", queue_gc},
		{"__tostring", queue_tostring},
		{NULL, NULL},
	};
	static const luaL_Reg funcs[] = {
		{"queue", notify_queue},
		{NULL, NULL},
	};

	/* post builds jobs with cdp.http's builder, so both read a spec the same way. */
	luaL_requiref(L, "cdp.http", luaopen_cdp_http, 0);
	lua_pop(L, 1);
	if (luaL_newmetatable(L, QUEUE_TNAME)) {
		luaL_setfuncs(L, meta, 0);
		luaL_newlibtable(L, methods);
		lua_getfield(L, LUA_REGISTRYINDEX, JOB_BUILDER);
		luaL_setfuncs(L, methods, 1);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
