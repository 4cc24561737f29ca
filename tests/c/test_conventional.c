/* Conventional Commits messages in C: the fields, and one message reused for many parses.
 * That every field equals commits.reference_parse's is tests/lua/commits_spec.lua's job. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/conventional.h"

static void assert_span(const char *base, struct cc_span s, const char *want)
{
	if (s.len != strlen(want) || memcmp(base + s.off, want, s.len) != 0)
		fail_msg("got '%.*s', want '%s'", (int)s.len, base + s.off, want);
}

static void parses_header_body_and_footers(void **state)
{
	(void)state;
	struct cc_message m = {0};
	const char *text = "\n\nfeat(core)!: add x\r\n\r\nwhy it is\r\nneeded\r\n\r\nRefs: #1\r\nBREAKING CHANGE: y\r\n  more";
	assert_int_equal(cc_parse(&m, text, strlen(text), 1), 0);
	assert_true(m.conventional);
	assert_true(m.breaking);
	assert_true(m.has_scope);
	assert_span(text, m.header, "feat(core)!: add x");
	assert_span(m.buf, m.type, "feat");
	assert_span(text, m.scope, "core");
	assert_span(text, m.description, "add x");
	assert_span(m.buf, m.body, "why it is\nneeded");
	assert_int_equal(m.nfooters, 2);
	assert_span(text, m.footers[0].token, "Refs");
	assert_span(m.buf, m.footers[0].value, "#1");
	assert_span(text, m.footers[1].token, "BREAKING CHANGE");
	assert_span(m.buf, m.footers[1].value, "y\n  more");
	assert_int_equal(m.note, 1);
	assert_false(m.is_revert);
	cc_message_free(&m);
}

static void reads_reverts(void **state)
{
	(void)state;
	struct cc_message m = {0};
	const char *git = "Revert \"feat: a\"\n\nThis reverts commit ABCDEF0123.";
	assert_int_equal(cc_parse(&m, git, strlen(git), 0), 0);
	assert_true(m.is_revert);
	assert_false(m.conventional);
	assert_span(m.buf, m.type, "revert");
	assert_span(git, m.revert_header, "feat: a");
	assert_true(m.has_revert_id);
	assert_span(m.buf, m.revert_id, "abcdef0123");
	const char *refs = "revert: fix: b\n\nRefs: 1234567";
	assert_int_equal(cc_parse(&m, refs, strlen(refs), 0), 0);
	assert_true(m.is_revert);
	assert_true(m.conventional);
	assert_span(refs, m.revert_header, "fix: b");
	assert_span(m.buf, m.revert_id, "1234567");
	cc_message_free(&m);
}

static void keeps_other_messages(void **state)
{
	(void)state;
	struct cc_message m = {0};
	const char *texts[] = {"", "Update README", "feat:no space", "fix(a)(b): x", "feat(a: x"};
	for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
		assert_int_equal(cc_parse(&m, texts[i], strlen(texts[i]), 0), 0);
		assert_false(m.conventional);
		assert_span(m.buf, m.type, "other");
		assert_span(texts[i], m.description, texts[i]);
		assert_false(m.has_body);
	}
	cc_message_free(&m);
}

static void reuses_one_message(void **state)
{
	(void)state;
	struct cc_message m = {0};
	char text[64];
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(text, sizeof text, "fix(c%d): change %d\n\nRefs: #%d", i, i, i);
		assert_int_equal(cc_parse(&m, text, (size_t)n, i % 2), 0);
		char want[32];
		snprintf(want, sizeof want, "c%d", i);
		assert_span(text, m.scope, want);
		assert_int_equal(m.nfooters, 1);
	}
	cc_message_free(&m);
	cc_message_free(&m); /* safe twice */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_header_body_and_footers),
		cmocka_unit_test(reads_reverts),
		cmocka_unit_test(keeps_other_messages),
		cmocka_unit_test(reuses_one_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
