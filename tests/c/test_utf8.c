/* Commit text made UTF-8: validation by RFC 3629, decoding by git's encoding header
 * with iconv, and the repair of what is left invalid (its bytes taken as Latin-1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/utf8.h"

static char out[4096];

static const char *decode(const char *text, const char *encoding)
{
	size_t len = strlen(text);
	assert_true(cdp_utf8_decoded_max(len) < sizeof out);
	size_t n = cdp_utf8_decode(text, len, encoding, out, sizeof out - 1);
	out[n] = '\0';
	assert_true(cdp_utf8_valid(out, n));
	return out;
}

static void test_validation(void **state)
{
	(void)state;
	assert_true(cdp_utf8_valid("", 0));
	assert_true(cdp_utf8_valid("plain ascii", 11));
	assert_true(cdp_utf8_valid("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\x80", 14));
	assert_false(cdp_utf8_valid("caf\xE9", 4));             /* Latin-1 */
	assert_false(cdp_utf8_valid("\xC0\xAF", 2));            /* overlong '/' */
	assert_false(cdp_utf8_valid("\xE0\x80\xAF", 3));        /* overlong */
	assert_false(cdp_utf8_valid("\xED\xA0\x80", 3));        /* a surrogate */
	assert_false(cdp_utf8_valid("\xF4\x90\x80\x80", 4));    /* above U+10FFFF */
	assert_false(cdp_utf8_valid("\xE2\x82", 2));            /* cut short */
	assert_int_equal(cdp_utf8_valid_prefix("ok\xFFno", 6), 2);
}

static void test_decodes_by_the_encoding_header(void **state)
{
	(void)state;
	assert_string_equal(decode("fix: caf\xE9 na\xEFve", "ISO-8859-1"), "fix: caf\xC3\xA9 na\xC3\xAFve");
	assert_string_equal(decode("fix: caf\xE9", "latin1"), "fix: caf\xC3\xA9");
	assert_string_equal(decode("\x80 price", "CP1252"), "\xE2\x82\xAC price");
	/* Shift_JIS: 日本 */
	assert_string_equal(decode("\x93\xFA\x96\x7B", "Shift_JIS"), "\xE6\x97\xA5\xE6\x9C\xAC");
	/* a byte the encoding does not have becomes U+FFFD, the rest is kept */
	assert_string_equal(decode("a\x81" "b", "CP1252"), "a\xEF\xBF\xBD" "b");
}

static void test_repairs_what_is_not_utf8(void **state)
{
	(void)state;
	/* no header: UTF-8 as it is, and the bytes of invalid sequences as Latin-1 */
	assert_string_equal(decode("caf\xC3\xA9", NULL), "caf\xC3\xA9");
	assert_string_equal(decode("d\xE9j\xE0 vu", NULL), "d\xC3\xA9j\xC3\xA0 vu");
	assert_string_equal(decode("caf\xC3\xA9 and caf\xE9", NULL), "caf\xC3\xA9 and caf\xC3\xA9");
	/* a header that says UTF-8 but lies, and one iconv does not know */
	assert_string_equal(decode("caf\xE9", "UTF-8"), "caf\xC3\xA9");
	assert_string_equal(decode("caf\xE9", "no-such-encoding-x"), "caf\xC3\xA9");
	/* a sequence cut short, and a surrogate: byte by byte */
	assert_string_equal(decode("\xE2\x82", "utf8"), "\xC3\xA2\xC2\x82");
	assert_string_equal(decode("\xED\xA0\x80", NULL), "\xC3\xAD\xC2\xA0\xC2\x80");
}

static void test_never_writes_past_the_buffer(void **state)
{
	(void)state;
	char small[8];
	memset(small, 'Z', sizeof small);
	size_t n = cdp_utf8_decode("\xE9\xE9\xE9\xE9\xE9", 5, NULL, small, 7);
	assert_true(n <= 7);
	assert_int_equal(small[7], 'Z');
	n = cdp_utf8_decode("\xE9\xE9\xE9\xE9\xE9", 5, "latin1", small, 7);
	assert_true(n <= 7);
	assert_int_equal(small[7], 'Z');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_decodes_by_the_encoding_header),
		cmocka_unit_test(test_repairs_what_is_not_utf8),
		cmocka_unit_test(test_never_writes_past_the_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
