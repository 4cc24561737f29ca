/* Gitignore-style patterns as cargo's include and exclude read them: the
 * examples of cargo's manifest documentation, and the edges of the syntax. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/glob.h"

static struct glob_set set_of(const char *const *lines)
{
	struct glob_set s = {0};
	for (; *lines; lines++)
		assert_int_equal(glob_set_add(&s, *lines, strlen(*lines)), 0);
	return s;
}

static enum glob_match path(const struct glob_set *s, const char *p, int is_dir)
{
	return glob_match_path(s, p, strlen(p), is_dir);
}

#define IGN GLOB_IGNORE
#define WL GLOB_WHITELIST
#define NONE GLOB_NONE

static void names_match_at_any_depth(void **state)
{
	(void)state;
	struct glob_set s = set_of((const char *[]){"foo", NULL});
	assert_int_equal(path(&s, "foo", 0), IGN);
	assert_int_equal(path(&s, "a/foo", 0), IGN);
	assert_int_equal(path(&s, "a/b/foo", 1), IGN);
	assert_int_equal(path(&s, "a/foo/inside.rs", 0), IGN); /* through its parent */
	assert_int_equal(path(&s, "foobar", 0), NONE);
	assert_int_equal(path(&s, "a/xfoo", 0), NONE);
	glob_set_free(&s);
}

static void a_leading_slash_anchors(void **state)
{
	(void)state;
	struct glob_set s = set_of((const char *[]){"/foo", "bar/baz", NULL});
	assert_int_equal(path(&s, "foo", 0), IGN);
	assert_int_equal(path(&s, "a/foo", 0), NONE);
	assert_int_equal(path(&s, "bar/baz", 0), IGN);
	assert_int_equal(path(&s, "x/bar/baz", 0), NONE);
	glob_set_free(&s);
}

static void a_trailing_slash_is_for_directories(void **state)
{
	(void)state;
	struct glob_set s = set_of((const char *[]){"foo/", NULL});
	assert_int_equal(path(&s, "foo", 0), NONE);
	assert_int_equal(path(&s, "foo", 1), IGN);
	assert_int_equal(path(&s, "a/foo/x.rs", 0), IGN);
	glob_set_free(&s);
}

static void stars_classes_and_alternatives(void **state)
{
	(void)state;
	struct glob_set s = set_of((const char *[]){"*.html", "src/[a-c]?.rs", "{docs,benches}/*.md", "x[!0-9]", NULL});
	assert_int_equal(path(&s, "index.html", 0), IGN);
	assert_int_equal(path(&s, "a/b/index.html", 0), IGN);
	assert_int_equal(path(&s, "src/ab.rs", 0), IGN);
	assert_int_equal(path(&s, "src/db.rs", 0), NONE);
	assert_int_equal(path(&s, "src/a/b.rs", 0), NONE); /* ? does not cross '/' */
	assert_int_equal(path(&s, "docs/a.md", 0), IGN);
	assert_int_equal(path(&s, "benches/a.md", 0), IGN);
	assert_int_equal(path(&s, "tests/a.md", 0), NONE);
	assert_int_equal(path(&s, "docs/a/b.md", 0), NONE);
	assert_int_equal(path(&s, "xa", 0), IGN);
	assert_int_equal(path(&s, "x1", 0), NONE);
	glob_set_free(&s);
}

static void double_stars(void **state)
{
	(void)state;
	struct glob_set s = set_of((const char *[]){"foo/**", "a/**/b", "**/deep", NULL});
	assert_int_equal(path(&s, "foo", 1), NONE); /* inside, not the directory itself */
	assert_int_equal(path(&s, "foo/x", 0), IGN);
	assert_int_equal(path(&s, "foo/x/y", 0), IGN);
	assert_int_equal(path(&s, "a/b", 0), IGN);
	assert_int_equal(path(&s, "a/x/y/b", 0), IGN);
	assert_int_equal(path(&s, "deep", 0), IGN);
	assert_int_equal(path(&s, "q/r/deep", 0), IGN);
	glob_set_free(&s);
}

static void the_last_pattern_wins_and_whitelists(void **state)
{
	(void)state;
	struct glob_set s = set_of((const char *[]){"*.rs", "!keep.rs", "tests/", NULL});
	assert_int_equal(path(&s, "src/lib.rs", 0), IGN);
	assert_int_equal(path(&s, "src/keep.rs", 0), WL);
	assert_int_equal(path(&s, "tests/keep.rs", 0), WL); /* the file itself decides first */
	assert_int_equal(path(&s, "tests/data.txt", 0), IGN);
	assert_true(s.has_whitelist);
	glob_set_free(&s);
}

static void comments_spaces_and_escapes(void **state)
{
	(void)state;
	struct glob_set s = set_of((const char *[]){"# a comment", "", "   ", "trail   ", "\\#hash", "\\!bang", "sp\\ ", NULL});
	assert_int_equal(s.n, 4);
	assert_int_equal(path(&s, "trail", 0), IGN);
	assert_int_equal(path(&s, "#hash", 0), IGN);
	assert_int_equal(path(&s, "!bang", 0), IGN);
	assert_int_equal(path(&s, "sp ", 0), IGN);
	assert_false(s.has_whitelist);
	glob_set_free(&s);
	glob_set_free(&s); /* safe twice */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_match_at_any_depth),
		cmocka_unit_test(a_leading_slash_anchors),
		cmocka_unit_test(a_trailing_slash_is_for_directories),
		cmocka_unit_test(stars_classes_and_alternatives),
		cmocka_unit_test(double_stars),
		cmocka_unit_test(the_last_pattern_wins_and_whitelists),
		cmocka_unit_test(comments_spaces_and_escapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
