/*
 * libcurl, loaded when first used rather than when cdp starts.
 *
 * libcurl brings 30 shared libraries with it (TLS, GSSAPI, LDAP, SSH, IDN,
 * HTTP/2, ...): linking it made the dynamic loader's work at every start of
 * cdp 26 ms of CPU of 42 (measured with an empty program linked against
 * cdp's libraries, perf stat -r 40), while most commands (`cdp plan`, `cdp
 * changelog`, the REPL) never speak HTTP. So cdp is not linked against it:
 * these definitions of the libcurl functions cdp calls (and only those) open
 * libcurl.so.4 once, on the first call from any thread, and forward to it.
 * Every caller already handles the failure values used when it cannot be
 * opened (curl_global_init's CURLE_FAILED_INIT first of all, which is what
 * cdp.http and cdp.notify ask before anything else); cdp_curl_error() says why.
 *
 * A libcurl function cdp starts calling must be added here too: the link
 * fails with an undefined reference until it is, so none is missed silently.
 */
#define CURL_DISABLE_TYPECHECK /* curl_easy_setopt and _getinfo as functions, not macros */
#include "core/curl_lazy.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static const char *const sonames[] = {"libcurl.so.4", "libcurl-gnutls.so.4"};

static struct {
	CURLcode (*global_init)(long);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *);
	void (*easy_reset)(CURL *);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	CURLU *(*url)(void);
	void (*url_cleanup)(CURLU *);
	CURLUcode (*url_get)(CURLU *, CURLUPart, char **, unsigned int);
	CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int);
	void (*free)(void *);
	time_t (*getdate)(const char *, const time_t *);
	curl_version_info_data *(*version_info)(CURLversion);
} fn;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;
static char error[512];

static void load(void)
{
	void *lib = NULL;
	for (size_t i = 0; i < sizeof sonames / sizeof *sonames && !lib; i++)
		lib = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *why = dlerror();
		snprintf(error, sizeof error, "cannot load libcurl (%s): %s", sonames[0], why ? why : "not found");
		return;
	}
	/* Never closed: libcurl's global state and threads live as long as cdp. */
	struct {
		const char *name;
		void **slot;
	} syms[] = {
		{"curl_global_init", (void **)&fn.global_init},
		{"curl_global_cleanup", (void **)&fn.global_cleanup},
		{"curl_easy_init", (void **)&fn.easy_init},
		{"curl_easy_cleanup", (void **)&fn.easy_cleanup},
		{"curl_easy_reset", (void **)&fn.easy_reset},
		{"curl_easy_perform", (void **)&fn.easy_perform},
		{"curl_easy_setopt", (void **)&fn.easy_setopt},
		{"curl_easy_getinfo", (void **)&fn.easy_getinfo},
		{"curl_easy_strerror", (void **)&fn.easy_strerror},
		{"curl_slist_append", (void **)&fn.slist_append},
		{"curl_slist_free_all", (void **)&fn.slist_free_all},
		{"curl_url", (void **)&fn.url},
		{"curl_url_cleanup", (void **)&fn.url_cleanup},
		{"curl_url_get", (void **)&fn.url_get},
		{"curl_url_set", (void **)&fn.url_set},
		{"curl_free", (void **)&fn.free},
		{"curl_getdate", (void **)&fn.getdate},
		{"curl_version_info", (void **)&fn.version_info},
	};
	for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
		if (!(*syms[i].slot = dlsym(lib, syms[i].name))) {
			snprintf(error, sizeof error, "cannot load libcurl: %s has no %s", sonames[0], syms[i].name);
			return;
		}
	}
	loaded = 1;
}

static int ready(void)
{
	pthread_once(&once, load);
	return loaded;
}

const char *cdp_curl_error(void)
{
	return ready() ? NULL : error;
}

CURLcode(curl_global_init)(long flags)
{
	return ready() ? fn.global_init(flags) : CURLE_FAILED_INIT;
}

void(curl_global_cleanup)(void)
{
	if (ready())
		fn.global_cleanup();
}

CURL *(curl_easy_init)(void)
{
	return ready() ? fn.easy_init() : NULL;
}

void(curl_easy_cleanup)(CURL *h)
{
	if (ready())
		fn.easy_cleanup(h);
}

void(curl_easy_reset)(CURL *h)
{
	if (ready())
		fn.easy_reset(h);
}

CURLcode(curl_easy_perform)(CURL *h)
{
	return ready() ? fn.easy_perform(h) : CURLE_FAILED_INIT;
}

/* The argument's type follows from the option's number, as libcurl reads it. */
CURLcode(curl_easy_setopt)(CURL *h, CURLoption option, ...)
{
	if (!ready())
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, option);
	CURLcode rc;
	if (option < CURLOPTTYPE_OBJECTPOINT)
		rc = fn.easy_setopt(h, option, va_arg(ap, long));
	else if (option < CURLOPTTYPE_FUNCTIONPOINT)
		rc = fn.easy_setopt(h, option, va_arg(ap, void *));
	else if (option < CURLOPTTYPE_OFF_T)
		rc = fn.easy_setopt(h, option, va_arg(ap, void (*)(void)));
	else if (option < CURLOPTTYPE_BLOB)
		rc = fn.easy_setopt(h, option, va_arg(ap, curl_off_t));
	else
		rc = fn.easy_setopt(h, option, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

/* Every CURLINFO takes a pointer to where the answer goes. */
CURLcode(curl_easy_getinfo)(CURL *h, CURLINFO info, ...)
{
	if (!ready())
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, info);
	CURLcode rc = fn.easy_getinfo(h, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

const char *(curl_easy_strerror)(CURLcode code)
{
	return ready() ? fn.easy_strerror(code) : error;
}

struct curl_slist *(curl_slist_append)(struct curl_slist *list, const char *s)
{
	return ready() ? fn.slist_append(list, s) : NULL;
}

void(curl_slist_free_all)(struct curl_slist *list)
{
	if (ready())
		fn.slist_free_all(list);
}

CURLU *(curl_url)(void)
{
	return ready() ? fn.url() : NULL;
}

void(curl_url_cleanup)(CURLU *u)
{
	if (ready())
		fn.url_cleanup(u);
}

CURLUcode(curl_url_get)(CURLU *u, CURLUPart what, char **part, unsigned int flags)
{
	return ready() ? fn.url_get(u, what, part, flags) : CURLUE_OUT_OF_MEMORY;
}

CURLUcode(curl_url_set)(CURLU *u, CURLUPart what, const char *part, unsigned int flags)
{
	return ready() ? fn.url_set(u, what, part, flags) : CURLUE_OUT_OF_MEMORY;
}

void(curl_free)(void *p)
{
	if (ready())
		fn.free(p);
}

time_t(curl_getdate)(const char *s, const time_t *unused)
{
	return ready() ? fn.getdate(s, unused) : -1;
}

curl_version_info_data *(curl_version_info)(CURLversion age)
{
	return ready() ? fn.version_info(age) : NULL;
}
