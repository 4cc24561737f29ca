#ifndef CDP_CURL_LAZY_H
#define CDP_CURL_LAZY_H

/*
 * libcurl is opened on first use (core/curl_lazy.c), not when cdp starts.
 * cdp_curl_error(): NULL once it is loaded (loading it if need be), else why
 * it cannot be, naming the library.
 */
const char *cdp_curl_error(void);

#endif
