#include "curl_job.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static int global_users;

int curl_job_global_init(void)
{
	int rc = 0;
	pthread_mutex_lock(&global_lock);
	if (global_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		rc = -1;
	else
		global_users++;
	pthread_mutex_unlock(&global_lock);
	return rc;
}

void curl_job_global_cleanup(void)
{
	pthread_mutex_lock(&global_lock);
	if (global_users > 0 && --global_users == 0)
		curl_global_cleanup();
	pthread_mutex_unlock(&global_lock);
}

void curl_job_free(struct curl_job *job)
{
	free(job->url);
	curl_slist_free_all(job->headers);
	free(job->method);
	free(job->body);
	free(job->from);
	curl_slist_free_all(job->rcpt);
	free(job->message);
	free(job->username);
	if (job->password) {
		/* Scrubbed so a later heap dump or reuse does not show it. */
		volatile char *p = job->password;
		while (*p)
			*p++ = '\0';
		free(job->password);
	}
	memset(job, 0, sizeof *job);
}

void curl_result_free(struct curl_result *res)
{
	free(res->body);
	free(res->headers);
	free(res->url);
	free(res->message);
	memset(res, 0, sizeof *res);
}

/* A growable byte buffer; OOM is sticky so callbacks can report it once. */
struct buf {
	char *data;
	size_t size, cap;
	int oom;
};

static int buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->oom)
		return -1;
	if (b->size + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->size + n + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d) {
			b->oom = 1;
			return -1;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->size, p, n);
	b->size += n;
	b->data[b->size] = '\0';
	return 0;
}

static int buf_str(struct buf *b, const char *s) { return buf_add(b, s, strlen(s)); }

char *curl_job_redact_url(const char *url)
{
	const char *auth = strstr(url, "://");
	auth = auth ? auth + 3 : url;
	size_t end = strcspn(auth, "/?#");
	const char *at = NULL;
	for (const char *p = auth; p < auth + end; p++)
		if (*p == '@')
			at = p;
	size_t len = strlen(url);
	char *out = malloc(len + 1);
	if (!out)
		return NULL;
	if (!at) {
		memcpy(out, url, len + 1);
		return out;
	}
	size_t head = (size_t)(auth - url);
	memcpy(out, url, head);
	strcpy(out + head, at + 1);
	return out;
}

char *curl_job_address(const char *mailbox)
{
	const char *lt = strrchr(mailbox, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;
	const char *start = mailbox, *end = mailbox + strlen(mailbox);
	if (lt && gt) {
		start = lt + 1;
		end = gt;
	}
	while (start < end && (*start == ' ' || *start == '\t'))
		start++;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	char *out = malloc((size_t)(end - start) + 1);
	if (!out)
		return NULL;
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
	return out;
}

char *curl_result_header(const struct curl_result *res, const char *name)
{
	size_t nlen = strlen(name);
	for (const char *line = res->headers; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		if (len > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			const char *v = line + nlen + 1, *e = line + len;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
				e--;
			char *out = malloc((size_t)(e - v) + 1);
			if (out) {
				memcpy(out, v, (size_t)(e - v));
				out[e - v] = '\0';
			}
			return out;
		}
		line = eol ? eol + 1 : line + len;
	}
	return NULL;
}

static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Not strftime: %a and %b follow the locale, and mail and HTTP dates do not. */
static void format_tm(time_t t, const char *zone, char *out, size_t size)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	int n = snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d %s", day_names[tm.tm_wday % 7],
	                 tm.tm_mday, month_names[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
	                 tm.tm_min, tm.tm_sec, zone);
	/* Only a year past 9999 does not fit, and no date header can say it: none then. */
	if (n < 0 || (size_t)n >= size)
		out[0] = '\0';
}

char *curl_job_format_date(time_t t, char out[30])
{
	format_tm(t, "GMT", out, 30);
	return out;
}

static const char base64_digits[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int buf_base64(struct buf *b, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		char q[4] = {base64_digits[v >> 18 & 63], base64_digits[v >> 12 & 63],
		             i + 1 < n ? base64_digits[v >> 6 & 63] : '=',
		             i + 2 < n ? base64_digits[v & 63] : '='};
		if (buf_add(b, q, 4) < 0)
			return -1;
	}
	return 0;
}

/* RFC 2047: encoded words of whole UTF-8 characters, each at most 75 characters. */
static int buf_subject(struct buf *b, const char *s)
{
	int ascii = 1;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p >= 0x80)
			ascii = 0;
	if (ascii)
		return buf_str(b, s);
	size_t n = strlen(s), i = 0;
	while (i < n) {
		size_t take = n - i < 45 ? n - i : 45;
		while (take > 1 && i + take < n && ((unsigned char)s[i + take] & 0xC0) == 0x80)
			take--;
		if ((i > 0 && buf_str(b, "\r\n ") < 0) || buf_str(b, "=?UTF-8?B?") < 0 ||
		    buf_base64(b, (const unsigned char *)s + i, take) < 0 || buf_str(b, "?=") < 0)
			return -1;
		i += take;
	}
	return 0;
}

int curl_job_compose(struct curl_job *job, const char *from, const char *const *to,
                     const char *subject, const struct curl_slist *extra, const char *body,
                     size_t body_size, time_t now)
{
	static atomic_uint counter;
	struct buf b = {0};
	char date[40], id[160];
	format_tm(now, "+0000", date, sizeof date);

	const char *at = strrchr(from, '@');
	size_t dlen = at ? strcspn(at + 1, "> \t") : 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(id, sizeof id, "<%llx.%lx.%x.%u@%.*s>", (unsigned long long)ts.tv_sec,
	         (unsigned long)ts.tv_nsec, (unsigned)getpid(), atomic_fetch_add(&counter, 1),
	         dlen ? (int)(dlen < 100 ? dlen : 100) : 7, dlen ? at + 1 : "cdp.local");

	buf_str(&b, "Date: ");
	buf_str(&b, date);
	buf_str(&b, "\r\nMessage-ID: ");
	buf_str(&b, id);
	buf_str(&b, "\r\nFrom: ");
	buf_str(&b, from);
	buf_str(&b, "\r\nTo: ");
	for (size_t i = 0; to[i]; i++) {
		if (i > 0)
			buf_str(&b, ",\r\n ");
		buf_str(&b, to[i]);
	}
	buf_str(&b, "\r\nSubject: ");
	buf_subject(&b, subject ? subject : "");
	buf_str(&b, "\r\nMIME-Version: 1.0\r\n"
	            "Content-Type: text/plain; charset=utf-8\r\n"
	            "Content-Transfer-Encoding: 8bit\r\n");
	for (const struct curl_slist *h = extra; h; h = h->next) {
		buf_str(&b, h->data);
		buf_str(&b, "\r\n");
	}
	buf_str(&b, "\r\n");
	/* Bare LF and CR become CRLF; curl itself dot-stuffs lines that start with '.'. */
	for (size_t i = 0; i < body_size; i++) {
		char c = body[i];
		if (c == '\r' || c == '\n') {
			buf_add(&b, "\r\n", 2);
			if (c == '\r' && i + 1 < body_size && body[i + 1] == '\n')
				i++;
		} else {
			buf_add(&b, &c, 1);
		}
	}
	if (b.oom) {
		free(b.data);
		return -1;
	}
	free(job->message);
	job->message = b.data ? b.data : calloc(1, 1);
	job->message_size = b.size;
	return job->message ? 0 : -1;
}

/* What a transfer in progress keeps; the callbacks get a pointer to it. */
struct transfer {
	const struct curl_job *job;
	struct buf body, headers;
	int too_big;
	size_t sent; /* SMTP upload position */
	char reply[256]; /* the SMTP server's last reply line */
	curl_job_cancel_cb cancelled;
	void *payload;
};

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	struct transfer *t = userdata;
	size_t len = size * n;
	if (t->job->max_body && t->body.size + len > t->job->max_body) {
		t->too_big = 1;
		return 0;
	}
	return buf_add(&t->body, p, len) < 0 ? 0 : len;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
	struct transfer *t = userdata;
	size_t len = size * n;
	/* A status line starts the headers of another response (redirect, 100). */
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
		t->headers.size = 0;
	return buf_add(&t->headers, p, len) < 0 ? 0 : len;
}

static size_t on_read(char *p, size_t size, size_t n, void *userdata)
{
	struct transfer *t = userdata;
	size_t left = t->job->message_size - t->sent, len = size * n;
	if (len > left)
		len = left;
	memcpy(p, t->job->message + t->sent, len);
	t->sent += len;
	return len;
}

/*
 * Keeps the server's first error reply (4xx, 5xx), else its last reply line;
 * only what came in, never what we sent (AUTH carries the password).
 */
static int on_debug(CURL *curl, curl_infotype type, char *data, size_t size, void *userdata)
{
	(void)curl;
	struct transfer *t = userdata;
	if (type != CURLINFO_HEADER_IN || t->reply[0] == '4' || t->reply[0] == '5')
		return 0;
	while (size > 0 && (data[size - 1] == '\n' || data[size - 1] == '\r'))
		size--;
	const char *line = data;
	for (size_t i = 0; i + 1 < size; i++)
		if (data[i] == '\n')
			line = data + i + 1;
	size -= (size_t)(line - data);
	if (size >= sizeof t->reply)
		size = sizeof t->reply - 1;
	for (size_t i = 0; i < size; i++)
		t->reply[i] = (line[i] >= 0x20 && line[i] < 0x7f) ? line[i] : '?';
	t->reply[size] = '\0';
	return 0;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	struct transfer *t = userdata;
	return t->cancelled(t->payload) ? 1 : 0;
}

static int is_tls_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_USE_SSL_FAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
		return 1;
	default:
		return 0;
	}
}

/* Whether S holds any of the credentials in URL or JOB, so it must not be shown. */
static int holds_secret(const char *s, const struct curl_job *job)
{
	if (job->password && *job->password && strstr(s, job->password))
		return 1;
	const char *auth = strstr(job->url, "://");
	auth = auth ? auth + 3 : job->url;
	size_t end = strcspn(auth, "/?#");
	const char *at = NULL;
	for (const char *p = auth; p < auth + end; p++)
		if (*p == '@')
			at = p;
	if (!at)
		return 0;
	/* Each of user and password, as written in the URL. */
	for (const char *p = auth; p < at;) {
		size_t len = strcspn(p, ":@");
		if (len > 0) {
			char piece[256];
			if (len >= sizeof piece)
				return 1;
			memcpy(piece, p, len);
			piece[len] = '\0';
			if (strstr(s, piece))
				return 1;
		}
		p += len + 1;
	}
	return 0;
}

static void fail(struct curl_result *res, const struct curl_job *job, const char *code,
                 const char *what, const char *detail)
{
	char *url = curl_job_redact_url(job->url);
	if (detail && (!*detail || holds_secret(detail, job)))
		detail = NULL;
	const char *u = url ? url : "(url)";
	size_t size = strlen(code) + strlen(what) + strlen(u) + (detail ? strlen(detail) : 0) + 8;
	res->code = code;
	res->message = malloc(size);
	if (res->message)
		snprintf(res->message, size, "%s: %s: %s%s%s", code, what, u, detail ? ": " : "",
		         detail ? detail : "");
	free(url);
}

static void map_error(struct curl_result *res, const struct curl_job *job, const struct transfer *t,
                      CURLcode rc, const char *errbuf)
{
	const char *detail = *errbuf ? errbuf : curl_easy_strerror(rc);
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		fail(res, job, "ECANCELED", "cancelled", NULL);
	else if (t->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		char what[80];
		snprintf(what, sizeof what, "response body larger than max_body (%zu bytes)",
		         job->max_body);
		fail(res, job, "EHTTP", what, NULL);
	} else if (t->body.oom || t->headers.oom || rc == CURLE_OUT_OF_MEMORY)
		fail(res, job, "EHTTP", "out of memory", NULL);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		fail(res, job, "ETIMEDOUT", "timed out", detail);
	else if (rc == CURLE_COULDNT_CONNECT)
		fail(res, job, "ECONNREFUSED", "connection refused", NULL);
	else if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY)
		fail(res, job, "EHOST", "could not resolve host", NULL);
	else if (is_tls_error(rc))
		fail(res, job, "ETLS", "TLS failed", detail);
	else if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
		fail(res, job, "EURL", "bad URL", detail);
	else if (job->kind == CURL_JOB_SMTP && (res->status >= 400 || t->reply[0] == '4' ||
	                                        t->reply[0] == '5'))
		fail(res, job, "ESMTP", "rejected by the mail server", t->reply);
	else if (rc == CURLE_SEND_ERROR)
		fail(res, job, "ESEND", "send failed", detail);
	else if (rc == CURLE_RECV_ERROR)
		fail(res, job, "ERECV", "receive failed", detail);
	else
		fail(res, job, "EHTTP", "transfer failed", detail);
}

static void set_ms(CURL *curl, CURLoption opt, double seconds)
{
	if (seconds > 0) {
		double ms = seconds * 1000.0;
		curl_easy_setopt(curl, opt, ms < 1 ? 1L : ms > 1e9 ? 1000000000L : (long)ms);
	}
}

/*
 * Whether JOB would send a mail password where it can be read on the way: a
 * password (the field, or in the URL) without TLS required (smtps://, or
 * STARTTLS with tls = require) to a server beyond this machine. Opportunistic
 * STARTTLS does not count: whoever is on the path can strip the offer.
 */
static int smtp_insecure(const struct curl_job *job)
{
	if (job->kind != CURL_JOB_SMTP || job->tls == CURL_JOB_TLS_REQUIRE)
		return 0;
	CURLU *u = curl_url();
	if (!u)
		return 1;
	char *scheme = NULL, *host = NULL, *password = NULL;
	int insecure = 0;
	if (curl_url_set(u, CURLUPART_URL, job->url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
		curl_url_get(u, CURLUPART_HOST, &host, 0);
		curl_url_get(u, CURLUPART_PASSWORD, &password, 0);
		int has_password = (job->password && *job->password) || (password && *password);
		int tls = scheme && strcmp(scheme, "smtps") == 0;
		int loopback = host && (strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
		                        strcmp(host, "[::1]") == 0);
		insecure = has_password && !tls && !loopback;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(password);
	curl_url_cleanup(u);
	return insecure;
}

int curl_job_perform(CURL *curl, const struct curl_job *job, struct curl_result *res,
                     curl_job_cancel_cb cancelled, void *payload)
{
	if (smtp_insecure(job)) {
		fail(res, job, "EINSECURE", "a mail password goes only over TLS (smtps://, or tls = require)",
		     NULL);
		return -1;
	}
	struct transfer t = {.job = job, .cancelled = cancelled, .payload = payload};
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	int own = curl == NULL;
	if (own && !(curl = curl_easy_init())) {
		fail(res, job, "EHTTP", "out of memory", NULL);
		return -1;
	}
	curl_easy_reset(curl);

	curl_easy_setopt(curl, CURLOPT_URL, job->url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	set_ms(curl, CURLOPT_TIMEOUT_MS, job->timeout);
	set_ms(curl, CURLOPT_CONNECTTIMEOUT_MS, job->connect_timeout);
	if (cancelled) {
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
	}

	int oom = 0;
	if (job->kind == CURL_JOB_HTTP) {
		curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
		curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
		if (job->follow) {
			curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
			curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 20L);
			/* Credentials stay with the first host: libcurl then sends neither
			 * its own auth nor an Authorization or Cookie header elsewhere. */
			curl_easy_setopt(curl, CURLOPT_UNRESTRICTED_AUTH, 0L);
		}
		if (job->max_body)
			curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)job->max_body);

		/* No "Expect: 100-continue" wait unless the caller asks for it. */
		int expect = 0;
		for (const struct curl_slist *h = job->headers; h && !oom; h = h->next) {
			struct curl_slist *n = curl_slist_append(headers, h->data);
			oom = n == NULL;
			headers = n ? n : headers;
			expect |= strncasecmp(h->data, "expect:", 7) == 0 ||
			          strncasecmp(h->data, "expect;", 7) == 0;
		}
		if (!oom && !expect) {
			struct curl_slist *n = curl_slist_append(headers, "Expect:");
			oom = n == NULL;
			headers = n ? n : headers;
		}
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

		const char *method = job->method ? job->method : "GET";
		if (job->body) {
			curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)job->body_size);
			curl_easy_setopt(curl, CURLOPT_POSTFIELDS, job->body);
			if (strcmp(method, "POST") != 0)
				curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
		} else if (strcmp(method, "HEAD") == 0) {
			curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
		} else if (strcmp(method, "POST") == 0) {
			curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
			curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
		} else if (strcmp(method, "GET") != 0) {
			curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
		}
	} else {
		curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
		/* A cached connection may predate this job's TLS demand; mail is rare, so never reuse. */
		curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
		curl_easy_setopt(curl, CURLOPT_MAIL_FROM, job->from);
		curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, job->rcpt);
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(curl, CURLOPT_READDATA, &t);
		curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)job->message_size);
		curl_easy_setopt(curl, CURLOPT_USE_SSL,
		                 job->tls == CURL_JOB_TLS_REQUIRE ? (long)CURLUSESSL_ALL
		                 : job->tls == CURL_JOB_TLS_TRY   ? (long)CURLUSESSL_TRY
		                                                  : (long)CURLUSESSL_NONE);
		if (job->username)
			curl_easy_setopt(curl, CURLOPT_USERNAME, job->username);
		if (job->password)
			curl_easy_setopt(curl, CURLOPT_PASSWORD, job->password);
		curl_easy_setopt(curl, CURLOPT_DEBUGFUNCTION, on_debug);
		curl_easy_setopt(curl, CURLOPT_DEBUGDATA, &t);
		curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);
	}

	CURLcode rc = oom ? CURLE_OUT_OF_MEMORY : curl_easy_perform(curl);

	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
	if (job->kind == CURL_JOB_SMTP && (t.reply[0] == '4' || t.reply[0] == '5'))
		res->status = strtol(t.reply, NULL, 10); /* the rejection, not the QUIT after it */
	curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME, &res->time);
	char *effective = NULL;
	curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &effective);
	res->url = curl_job_redact_url(effective ? effective : job->url);
	if (rc == CURLE_OK && !res->url)
		rc = CURLE_OUT_OF_MEMORY;
	if (rc != CURLE_OK)
		map_error(res, job, &t, rc, errbuf);

	/* Forget the handle's pointers into this frame before it ends. */
	curl_easy_reset(curl);
	if (own)
		curl_easy_cleanup(curl);
	curl_slist_free_all(headers);

	if (rc != CURLE_OK) {
		free(t.body.data);
		free(t.headers.data);
		return -1;
	}
	res->body = t.body.data ? t.body.data : calloc(1, 1);
	res->body_size = t.body.size;
	res->headers = t.headers.data ? t.headers.data : calloc(1, 1);
	res->headers_size = t.headers.size;
	if (!res->body || !res->headers) {
		curl_result_free(res);
		fail(res, job, "EHTTP", "out of memory", NULL);
		return -1;
	}
	return 0;
}
