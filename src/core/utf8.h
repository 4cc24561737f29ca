#ifndef CDP_CORE_UTF8_H
#define CDP_CORE_UTF8_H
/*
 * Text as UTF-8. Everything cdp writes (changelogs, .crate contents, journals, JSON
 * bodies) is UTF-8, so text from git is made UTF-8 where it is read: a commit's
 * message and names are decoded by the commit's `encoding` header with iconv, and
 * what is still not UTF-8 is repaired as git repairs a message it is given: each
 * byte of an invalid sequence is taken as Latin-1 (the usual source of such bytes),
 * so "caf\xE9" reads "café". Pure C, no Lua.
 */
#include <stddef.h>

/* The length of the longest prefix of S (LEN bytes) that is valid UTF-8. */
size_t cdp_utf8_valid_prefix(const char *s, size_t len);

/* Whether S (LEN bytes) is valid UTF-8 (RFC 3629: no overlongs, surrogates or
 * code points above U+10FFFF). */
int cdp_utf8_valid(const char *s, size_t len);

/* The most bytes cdp_utf8_decode writes for LEN bytes of text. */
size_t cdp_utf8_decoded_max(size_t len);

/*
 * TEXT (LEN bytes) in ENCODING (git's encoding header: "ISO-8859-1", "latin1",
 * "Shift_JIS", ...; NULL, "" or any spelling of UTF-8 for UTF-8) as valid UTF-8,
 * written to OUT (CAP bytes, at least cdp_utf8_decoded_max(LEN)); returns the
 * length written. Bytes ENCODING does not have become U+FFFD; with no encoding,
 * UTF-8, or one iconv does not know, the bytes are taken as UTF-8 and those of
 * invalid sequences as Latin-1. Allocates nothing (the caller owns OUT), so a
 * caller may give it memory that a raise frees.
 */
size_t cdp_utf8_decode(const char *text, size_t len, const char *encoding, char *out, size_t cap);

#endif
