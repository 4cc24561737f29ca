#ifndef CDP_CURL_JOB_H
#define CDP_CURL_JOB_H
#include <curl/curl.h>
#include <stddef.h>
#include <time.h>

/*
 * One HTTP request or SMTP submission, self-contained: every string is owned
 * by the job, so a job built on the Lua side can be handed to another thread
 * (cdp.notify's worker) and performed there. Pure C, no Lua.
 *
 * Failures carry a stable code (curl_job_code) and a one-line message that
 * names the URL without its userinfo; no message ever holds a header value
 * or a password.
 */

enum curl_job_kind { CURL_JOB_HTTP, CURL_JOB_SMTP };
enum curl_job_tls { CURL_JOB_TLS_NONE, CURL_JOB_TLS_TRY, CURL_JOB_TLS_REQUIRE };

struct curl_job {
	enum curl_job_kind kind;
	char *url;
	double timeout;          /* whole transfer, seconds; 0: none */
	double connect_timeout;  /* seconds; 0: libcurl's default */
	struct curl_slist *headers; /* "Name: value" lines, as given */

	/* HTTP */
	char *method;         /* NULL: GET */
	char *body;           /* NULL: no request body */
	size_t body_size;
	int follow;           /* follow redirects */
	size_t max_body;      /* largest response body accepted; 0: no limit */

	/* SMTP: the message is sent as is; curl_job_compose builds one. */
	char *from;           /* envelope sender (the address only) */
	struct curl_slist *rcpt; /* envelope recipients (addresses only) */
	char *message;
	size_t message_size;
	char *username;
	char *password;
	enum curl_job_tls tls;
};

struct curl_result {
	long status;          /* HTTP status, or the last SMTP reply code */
	char *body;           /* response body (HTTP), NUL-terminated */
	size_t body_size;
	char *headers;        /* header lines of the final response, CRLF-separated */
	size_t headers_size;
	char *url;            /* effective URL, without userinfo */
	double time;          /* seconds */
	const char *code;     /* NULL on success, else "ETIMEDOUT", "ECONNREFUSED", ... */
	char *message;        /* NULL on success, else "CODE: what: url[: detail]" */
};

/*
 * What cdp.http's private job builder returns: a userdata of this type name
 * and layout. cdp.notify moves the job out of it (zeroing it) and hands it to
 * its worker thread; the box's __gc frees whatever is left.
 */
#define CURL_JOB_BOX "cdp.http.Job"
struct curl_job_box {
	struct curl_job job;
	struct curl_result res;
};

/* Polled during a transfer; nonzero stops it. */
typedef int (*curl_job_cancel_cb)(void *payload);

/*
 * libcurl's global state, reference-counted so every user can pair its own
 * init and cleanup. Returns 0, or -1 when libcurl cannot initialise.
 */
int curl_job_global_init(void);
void curl_job_global_cleanup(void);

/* Free everything JOB owns and zero it; safe on a zeroed job. */
void curl_job_free(struct curl_job *job);
void curl_result_free(struct curl_result *res);

/*
 * Perform JOB on CURL (reset first; NULL: a handle of its own). Fills RES,
 * which must be zeroed. Returns 0 when the transfer completed (an HTTP error
 * status is a completed transfer) and -1 with res->code and res->message set
 * otherwise. CANCELLED, when not NULL, is polled during the transfer; a
 * cancelled transfer fails with code "ECANCELED".
 */
int curl_job_perform(CURL *curl, const struct curl_job *job, struct curl_result *res,
                     curl_job_cancel_cb cancelled, void *payload);

/*
 * Build an RFC 5322 text/plain message into JOB->message: Date, Message-ID,
 * From, To (every recipient in TO, a NULL-terminated array), Subject (RFC
 * 2047-encoded when not ASCII), MIME-Version, Content-Type, then the lines of
 * EXTRA ("Name: value"), a blank line and BODY with line ends made CRLF.
 * Returns 0, or -1 when out of memory.
 */
int curl_job_compose(struct curl_job *job, const char *from, const char *const *to,
                     const char *subject, const struct curl_slist *extra, const char *body,
                     size_t body_size, time_t now);

/* The address part of "Name <addr>" or "addr", as a new string; NULL when out of memory. */
char *curl_job_address(const char *mailbox);

/* URL without the userinfo of its authority, as a new string; NULL when out of memory. */
char *curl_job_redact_url(const char *url);

/* Value of the first header NAME (any case) in RES, as a new string, or NULL. */
char *curl_result_header(const struct curl_result *res, const char *name);

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of T into OUT; returns OUT. */
char *curl_job_format_date(time_t t, char out[30]);

#endif
