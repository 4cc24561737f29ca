#include "core/utf8.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The length of the valid UTF-8 sequence at S (at most N bytes), or 0. */
static size_t sequence(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF; /* the range of the second byte */
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0; /* no overlongs */
		else if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F; /* nothing above U+10FFFF */
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

size_t cdp_utf8_valid_prefix(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = sequence(p + i, len - i);
		if (n == 0)
			break;
		i += n;
	}
	return i;
}

int cdp_utf8_valid(const char *s, size_t len)
{
	return cdp_utf8_valid_prefix(s, len) == len;
}

static int is_utf8_name(const char *encoding)
{
	return encoding == NULL || *encoding == '\0' || strcasecmp(encoding, "UTF-8") == 0 ||
	       strcasecmp(encoding, "UTF8") == 0;
}

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

size_t cdp_utf8_decoded_max(size_t len)
{
	/* A byte of a single-byte charset is at most 3 bytes of UTF-8 (U+FFFD's too), a
	 * repaired byte 2; no encoding git records spends less than a byte per code point. */
	return 4 * len + 4;
}

/* S (LEN bytes) into OUT, each byte of an invalid sequence taken as Latin-1, as git's
 * own commit does with a message that is not UTF-8. */
static size_t repair(const char *s, size_t len, char *out, size_t cap)
{
	size_t i = 0, o = 0;
	while (i < len) {
		size_t ok = cdp_utf8_valid_prefix(s + i, len - i);
		if (o + ok > cap)
			ok = cap - o;
		memcpy(out + o, s + i, ok);
		o += ok;
		i += ok;
		if (i < len) {
			if (o + 2 > cap)
				break;
			unsigned char c = (unsigned char)s[i++];
			out[o++] = (char)(0xC0 | (c >> 6));
			out[o++] = (char)(0x80 | (c & 0x3F));
		}
	}
	return o;
}

size_t cdp_utf8_decode(const char *text, size_t len, const char *encoding, char *out, size_t cap)
{
	iconv_t cd = is_utf8_name(encoding) ? (iconv_t)-1 : iconv_open("UTF-8", encoding);
	if (cd == (iconv_t)-1)
		return repair(text, len, out, cap);
	char *in = (char *)text, *dst = out;
	size_t left = len, room = cap;
	while (left > 0) {
		if (iconv(cd, &in, &left, &dst, &room) != (size_t)-1)
			break;
		if (errno == E2BIG || room < 3)
			break;
		/* EILSEQ, EINVAL: a byte that is not in ENCODING, or a sequence cut short */
		memcpy(dst, REPLACEMENT, 3);
		dst += 3;
		room -= 3;
		in++;
		left--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	iconv(cd, NULL, NULL, &dst, &room); /* a stateful encoding's closing shift */
	iconv_close(cd);
	return (size_t)(dst - out);
}
