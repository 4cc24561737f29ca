/* The lossless TOML reader and editor: values, spans, errors, byte-exact edits. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/toml.h"

static toml_doc *parse_ok(const char *text)
{
	toml_doc *doc = NULL;
	toml_error err;
	int rc = toml_doc_parse(&doc, text, strlen(text), &err);
	if (rc != 0)
		fail_msg("%u:%u: %s\n%s", err.line, err.column, err.message, text);
	return doc;
}

static void expect_error(const char *text, unsigned line, unsigned column, const char *message)
{
	toml_doc *doc = (toml_doc *)1;
	toml_error err;
	assert_int_equal(toml_doc_parse(&doc, text, strlen(text), &err), -1);
	assert_null(doc);
	if (err.line != line || err.column != column || strcmp(err.message, message) != 0)
		fail_msg("%s\nwant %u:%u: %s\ngot  %u:%u: %s", text, line, column, message, err.line,
		         err.column, err.message);
}

static const toml_node *at(const toml_doc *doc, const char *a, const char *b, const char *c)
{
	const char *path[] = {a, b, c};
	size_t n = c ? 3 : b ? 2 : 1;
	return toml_doc_lookup(doc, path, n);
}

static void expect_str(const toml_node *x, const char *want)
{
	assert_non_null(x);
	assert_int_equal(toml_node_type(x), TOML_STRING);
	size_t len;
	const char *s = toml_node_string(x, &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(s, want, len);
}

static void expect_span(const toml_doc *doc, const toml_node *x, const char *token)
{
	size_t start, end;
	assert_non_null(x);
	assert_true(toml_node_span(x, &start, &end));
	const char *text = toml_doc_text(doc, NULL);
	assert_int_equal(end - start, strlen(token));
	assert_memory_equal(text + start, token, end - start);
}

static void test_every_string_kind(void **state)
{
	(void)state;
	toml_doc *doc = parse_ok("b = \"tab\\there \\\"q\\\" \\u00E9 \\U0001F600 \\\\\"\n"
	                         "l = 'C:\\Users\\x'\n"
	                         "mb = \"\"\"\nline one\n  line \\\n    two\"\"\"\n"
	                         "ml = '''\nraw \\n\n'''\n"
	                         "q = \"\"\"\"quoted\"\"\"\"\n"
	                         "e = ''\n");
	expect_str(at(doc, "b", NULL, NULL), "tab\there \"q\" \xC3\xA9 \xF0\x9F\x98\x80 \\");
	expect_str(at(doc, "l", NULL, NULL), "C:\\Users\\x");
	expect_str(at(doc, "mb", NULL, NULL), "line one\n  line two");
	expect_str(at(doc, "ml", NULL, NULL), "raw \\n\n");
	expect_str(at(doc, "q", NULL, NULL), "\"quoted\"");
	expect_str(at(doc, "e", NULL, NULL), "");
	assert_int_equal(toml_node_str_style(at(doc, "b", NULL, NULL)), TOML_STR_BASIC);
	assert_int_equal(toml_node_str_style(at(doc, "l", NULL, NULL)), TOML_STR_LITERAL);
	assert_int_equal(toml_node_str_style(at(doc, "mb", NULL, NULL)), TOML_STR_ML_BASIC);
	assert_int_equal(toml_node_str_style(at(doc, "ml", NULL, NULL)), TOML_STR_ML_LITERAL);
	expect_span(doc, at(doc, "q", NULL, NULL), "\"\"\"\"quoted\"\"\"\"");
	toml_doc_free(doc);
}

static void test_numbers_booleans_dates(void **state)
{
	(void)state;
	toml_doc *doc = parse_ok("i = -9_223_372_036_854_775_808\nh = 0xDEAD_beef\no = 0o755\nb = 0b1010\n"
	                         "f = 6.626e-34\nz = -0.0\nn = nan\np = +inf\nt = true\n"
	                         "d = 1979-05-27T07:32:00.5+01:00\nld = 2024-02-29\nlt = 23:59:60\n"
	                         "g = 0.1e-0\n");
	/* "0.1e-0" has a '-' where a date has one, and is still a float */
	assert_int_equal(toml_node_type(at(doc, "g", NULL, NULL)), TOML_FLOAT);
	assert_true(toml_node_float(at(doc, "g", NULL, NULL)) == 0.1);
	assert_true(toml_node_integer(at(doc, "i", NULL, NULL)) == INT64_MIN);
	assert_int_equal(toml_node_integer(at(doc, "h", NULL, NULL)), 0xDEADBEEF);
	assert_int_equal(toml_node_integer(at(doc, "o", NULL, NULL)), 0755);
	assert_int_equal(toml_node_integer(at(doc, "b", NULL, NULL)), 10);
	assert_true(toml_node_float(at(doc, "f", NULL, NULL)) == 6.626e-34);
	assert_true(signbit(toml_node_float(at(doc, "z", NULL, NULL))));
	assert_true(isnan(toml_node_float(at(doc, "n", NULL, NULL))));
	assert_true(isinf(toml_node_float(at(doc, "p", NULL, NULL))));
	assert_true(toml_node_bool(at(doc, "t", NULL, NULL)));
	assert_int_equal(toml_node_type(at(doc, "d", NULL, NULL)), TOML_DATETIME);
	size_t len;
	const char *raw = toml_node_raw(at(doc, "d", NULL, NULL), &len);
	assert_int_equal(len, strlen("1979-05-27T07:32:00.5+01:00"));
	assert_memory_equal(raw, "1979-05-27T07:32:00.5+01:00", len);
	assert_int_equal(toml_node_type(at(doc, "ld", NULL, NULL)), TOML_DATETIME);
	assert_int_equal(toml_node_type(at(doc, "lt", NULL, NULL)), TOML_DATETIME);
	toml_doc_free(doc);
}

static void test_tables_and_keys(void **state)
{
	(void)state;
	const char *text = "name = \"root\"\n"
	                   "[package]\nversion = \"1.0.0\"\n"
	                   "[target.'cfg(unix)'.dependencies]\nlibc = { version = \"0.2\", default-features = false }\n"
	                   "[target.\"cfg(windows)\".dependencies.winapi]\nversion = \"0.3\"\n"
	                   "[dependencies]\nfoo.version = \"1\"\n\"a.b\" = \"2\"\n"
	                   "[[bin]]\nname = \"one\"\n[[bin]]\nname = \"two\"\n[bin.meta]\nx = 1\n";
	toml_doc *doc = parse_ok(text);
	const toml_node *root = toml_doc_root(doc);
	assert_int_equal(toml_node_count(root), 5);
	size_t len;
	assert_string_equal(toml_node_key(toml_node_at(root, 0), &len), "name");
	assert_string_equal(toml_node_key(toml_node_at(root, 3), &len), "dependencies");

	const char *libc[] = {"target", "cfg(unix)", "dependencies", "libc", "version"};
	const toml_node *x = toml_doc_lookup(doc, libc, 5);
	expect_str(x, "0.2");
	expect_span(doc, x, "\"0.2\"");
	expect_span(doc, toml_doc_lookup(doc, libc, 4), "{ version = \"0.2\", default-features = false }");
	assert_int_equal(toml_node_table_kind(toml_doc_lookup(doc, libc, 4)), TOML_TABLE_INLINE);
	assert_int_equal(toml_node_table_kind(toml_doc_lookup(doc, libc, 1)), TOML_TABLE_IMPLICIT);

	const char *winapi[] = {"target", "cfg(windows)", "dependencies", "winapi"};
	expect_span(doc, toml_doc_lookup(doc, winapi, 4), "[target.\"cfg(windows)\".dependencies.winapi]");
	expect_str(at(doc, "dependencies", "foo", "version"), "1");
	assert_int_equal(toml_node_table_kind(at(doc, "dependencies", "foo", NULL)), TOML_TABLE_DOTTED);
	expect_str(at(doc, "dependencies", "a.b", NULL), "2");
	assert_null(at(doc, "dependencies", "a", NULL));

	const toml_node *bins = at(doc, "bin", NULL, NULL);
	assert_int_equal(toml_node_type(bins), TOML_ARRAY);
	assert_int_equal(toml_node_count(bins), 2);
	expect_str(toml_node_get(toml_node_at(bins, 1), "name", 4), "two");
	assert_int_equal(toml_node_integer(toml_node_get(toml_node_get(toml_node_at(bins, 1), "meta", 4), "x", 1)), 1);
	assert_null(toml_node_at(bins, 2));
	assert_null(toml_node_get(bins, "name", 4));
	toml_doc_free(doc);
}

static void test_crlf_comments_multiline_arrays(void **state)
{
	(void)state;
	const char *text = "\xEF\xBB\xBF# header \xC3\xA9\r\n"
	                   "[package] # trailing\r\n"
	                   "keywords = [ # open\r\n"
	                   "  \"a\" , # one\r\n"
	                   "  # alone\r\n"
	                   "\r\n"
	                   "  'b', # two\r\n"
	                   "] # close\r\n"
	                   "v = \"1\"# tight\r\n"
	                   "ml = \"\"\"x\r\ny\"\"\"";
	toml_doc *doc = parse_ok(text);
	const toml_node *kw = at(doc, "package", "keywords", NULL);
	assert_int_equal(toml_node_count(kw), 2);
	expect_str(toml_node_at(kw, 0), "a");
	expect_str(toml_node_at(kw, 1), "b");
	expect_str(at(doc, "package", "v", NULL), "1");
	expect_str(at(doc, "package", "ml", NULL), "x\ny");
	size_t len;
	assert_ptr_equal(toml_doc_text(doc, &len), toml_doc_text(doc, NULL));
	assert_int_equal(len, strlen(text));
	assert_memory_equal(toml_doc_text(doc, NULL), text, len);
	toml_doc_free(doc);
}

static void test_error_positions(void **state)
{
	(void)state;
	expect_error("a = 1\nb c\n", 2, 3, "expected '=' after key");
	expect_error("[x]\na = 1\n\n[x]\n", 4, 1, "table 'x' is defined twice (first at line 1)");
	expect_error("a.b = 1\na.b = 2\n", 2, 3, "duplicate key 'a.b' (first defined at line 1)");
	expect_error("a = 1\na.b = 2\n", 2, 1, "key 'a' is already an integer, not a table");
	expect_error("[a]\nb = 1\n[a.b.c]\n", 3, 4, "key 'a.b' is already an integer, not a table");
	expect_error("é = 1\n", 1, 1, "expected a key");
	expect_error("k = \"caf\xC3\"\n", 1, 9, "invalid UTF-8");
	expect_error("k = \"\\uD800\"\n", 1, 6, "escape is not a Unicode scalar value");
	expect_error("k = '''a''''''\n", 1, 9, "too many quotes at the end of a string");
	expect_error("k = [1 2]\n", 1, 8, "expected ',' or ']' in array");
	expect_error("k = {a = 1 b = 2}\n", 1, 12, "expected ',' or '}' in inline table");
	expect_error("k = {a = 1, a = 2}\n", 1, 13, "duplicate key 'a' (first defined at line 1)");
	expect_error("k = 1.\n", 1, 5, "a decimal point needs digits on both sides");
	expect_error("k = 1__0\n", 1, 5, "invalid number");
	expect_error("k = 2024-13-01\n", 1, 5, "invalid date or time");
	expect_error("[a]]\n", 1, 4, "expected a newline after a table header");
	expect_error("[[a]\n", 1, 4, "expected ']]' after table name");
	expect_error("k =\n", 1, 4, "expected a value");
	expect_error("k = \"\"\"open", 1, 5, "unterminated multi-line string");
	expect_error("k = \"a\\ b\"\n", 1, 7, "invalid escape sequence in string");
	expect_error("k = 'a\r'\n", 1, 7, "newline in a single-line string");
	expect_error("\"\"\"k\"\"\" = 1\n", 1, 1, "a multi-line string cannot be a key");
	/* an error at the end of text has a position too */
	expect_error("[a", 1, 3, "expected ']' after table name");
}

/* Replace the string at PATH and check the whole new text. */
static void expect_edit(const char *text, const char *a, const char *b, const char *value,
                        const char *want)
{
	toml_doc *doc = parse_ok(text);
	const toml_node *x = at(doc, a, b, NULL);
	toml_error err;
	if (toml_doc_set_string(doc, x, value, strlen(value), &err) != 0)
		fail_msg("%s", err.message);
	size_t len;
	const char *got = toml_doc_text(doc, &len);
	if (len != strlen(want) || memcmp(got, want, len) != 0)
		fail_msg("want:\n%s\ngot:\n%s", want, got);
	expect_str(at(doc, a, b, NULL), value);
	toml_doc_free(doc);
}

static void test_edits_keep_every_other_byte(void **state)
{
	(void)state;
	expect_edit("[package]\r\nname = \"x\" # n\r\nversion = \"0.1.0\"   # bump me\r\n\r\n",
	            "package", "version", "0.2.0",
	            "[package]\r\nname = \"x\" # n\r\nversion = \"0.2.0\"   # bump me\r\n\r\n");
	expect_edit("dep = { version = '1', path = \"..\" }\n", "dep", "version", "1.2.3",
	            "dep = { version = '1.2.3', path = \"..\" }\n");
	expect_edit("dep = { version = '1' }\n", "dep", "version", "it's",
	            "dep = { version = \"it's\" }\n");
	expect_edit("dep.version = \"\"\"1\"\"\"\n", "dep", "version", "a\"\"\"b\\",
	            "dep.version = \"\"\"a\\\"\\\"\\\"b\\\\\"\"\"\n");
	expect_edit("v = '''x'''\n", "v", NULL, "two\nlines", "v = '''two\nlines'''\n");
	expect_edit("v = '''x'''\n", "v", NULL, "ends'", "v = \"\"\"ends'\"\"\"\n");
	expect_edit("v = \"x\"", "v", NULL, "tab\tnl\ndel\x7f", "v = \"tab\tnl\\ndel\\u007F\"");
	expect_edit("v = \"x\"\n", "v", NULL, "", "v = \"\"\n");
}

static void test_edit_refusals(void **state)
{
	(void)state;
	toml_doc *doc = parse_ok("n = 1\ns = \"x\"\n");
	toml_doc *other = parse_ok("s = \"x\"\n");
	toml_error err;
	assert_int_equal(toml_doc_set_string(doc, at(doc, "n", NULL, NULL), "2", 1, &err), -1);
	assert_string_equal(err.message, "the value is not a string");
	assert_int_equal(toml_doc_set_string(doc, at(other, "s", NULL, NULL), "2", 1, &err), -1);
	assert_string_equal(err.message, "the node is not part of this document");
	assert_int_equal(toml_doc_set_string(doc, at(doc, "s", NULL, NULL), "\xC0\x80", 2, &err), -1);
	assert_string_equal(err.message, "the new value is not valid UTF-8");
	assert_string_equal(toml_doc_text(doc, NULL), "n = 1\ns = \"x\"\n");
	toml_doc_free(doc);
	toml_doc_free(other);
	toml_doc_free(NULL);
}

/* Every value encoded in every style reads back as itself. */
static void test_encode_round_trip(void **state)
{
	(void)state;
	const char *values[] = {"", "plain", "it's", "'''", "a\"\"\"b", "\n", "\nlead", "tail\n",
	                        "\\", "ctl\x01\x1f\x7f", "crlf\r\n", "quote'", "é😀", "''x''"};
	for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
		for (int style = TOML_STR_BASIC; style <= TOML_STR_ML_LITERAL; style++) {
			size_t len = strlen(values[v]);
			ptrdiff_t n = toml_string_encode(NULL, 0, values[v], len, (toml_str_style)style);
			assert_true(n > 0);
			char *text = malloc((size_t)n + 5);
			memcpy(text, "k = ", 4);
			assert_int_equal(toml_string_encode(text + 4, (size_t)n, values[v], len,
			                                    (toml_str_style)style), n);
			text[4 + n] = '\0';
			toml_doc *doc = parse_ok(text);
			expect_str(at(doc, "k", NULL, NULL), values[v]);
			toml_doc_free(doc);
			free(text);
		}
	}
	assert_int_equal(toml_string_encode(NULL, 0, "\xff", 1, TOML_STR_BASIC), -1);
}

/* A big flat table and deep nesting stay cheap and bounded. */
static void test_limits(void **state)
{
	(void)state;
	size_t n = 20000, cap = n * 24 + 1;
	char *text = malloc(cap), *p = text;
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "k%zu = %zu\n", i, i);
	toml_doc *doc = parse_ok(text);
	assert_int_equal(toml_node_count(toml_doc_root(doc)), n);
	assert_int_equal(toml_node_integer(at(doc, "k19999", NULL, NULL)), 19999);
	toml_doc_free(doc);

	memset(text, '[', 1000);
	memcpy(text, "a = ", 4);
	text[1000] = '\0';
	toml_error err;
	assert_int_equal(toml_doc_parse(&doc, text, strlen(text), &err), -1);
	assert_string_equal(err.message, "arrays or inline tables nested too deeply");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_string_kind),
		cmocka_unit_test(test_numbers_booleans_dates),
		cmocka_unit_test(test_tables_and_keys),
		cmocka_unit_test(test_crlf_comments_multiline_arrays),
		cmocka_unit_test(test_error_positions),
		cmocka_unit_test(test_edits_keep_every_other_byte),
		cmocka_unit_test(test_edit_refusals),
		cmocka_unit_test(test_encode_round_trip),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
