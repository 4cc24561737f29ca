/* Inherited [workspace.*] entries as comparable text: equal however they are
 * written, different when their values differ, absent when missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/workspace_keys.h"

static const char *const KEYS[] = {"dependencies.serde", "dependencies.tokio", "package.edition",
                                   "package.rust-version", "dependencies.missing", "nodot"};
#define NKEYS (sizeof KEYS / sizeof *KEYS)

static void read_ok(const char *text, char **out)
{
	assert_int_equal(workspace_keys_read(text, strlen(text), KEYS, NKEYS, out), 0);
}

static void formatting_does_not_matter(void **state)
{
	(void)state;
	char *a[NKEYS], *b[NKEYS];
	read_ok("[workspace]\nmembers = [\"a\"]\n\n[workspace.dependencies]\n"
	        "serde = { version = \"1.0\", features = [\"derive\"] }\ntokio = \"1\"\n\n"
	        "[workspace.package]\nedition = \"2021\"\n",
	        a);
	read_ok("# a comment\n[workspace]\nmembers = [ 'a' ]\n[workspace.package]\nedition = '2021' # why\n"
	        "[workspace.dependencies.serde]\nfeatures = [ \"derive\", ]\nversion = \"1.0\"\n"
	        "[workspace.dependencies]\ntokio = '1'\n",
	        b);
	for (size_t i = 0; i < 3; i++) {
		assert_non_null(a[i]);
		assert_string_equal(a[i], b[i]);
	}
	for (size_t i = 3; i < NKEYS; i++) {
		assert_null(a[i]);
		assert_null(b[i]);
	}
	workspace_keys_free(a, NKEYS);
	workspace_keys_free(b, NKEYS);
}

static void values_do(void **state)
{
	(void)state;
	char *a[NKEYS], *b[NKEYS];
	read_ok("[workspace.dependencies]\nserde = \"1.0\"\ntokio = { version = \"1\", features = [\"rt\"] }\n"
	        "[workspace.package]\nrust-version = \"1.70\"\n",
	        a);
	read_ok("[workspace.dependencies]\nserde = \"1.0.190\"\ntokio = { version = \"1\", features = [\"rt\", \"net\"] }\n"
	        "[workspace.package]\nrust-version = \"1.70\"\nedition = \"2021\"\n",
	        b);
	assert_string_not_equal(a[0], b[0]);
	assert_string_not_equal(a[1], b[1]);
	assert_null(a[2]);
	assert_non_null(b[2]);
	assert_string_equal(a[3], b[3]);
	workspace_keys_free(a, NKEYS);
	workspace_keys_free(b, NKEYS);
}

static void a_requirement_is_its_table(void **state)
{
	(void)state;
	char *a[NKEYS], *b[NKEYS];
	read_ok("[workspace.dependencies]\nserde = \"1\"\n[workspace.package]\nedition = \"2021\"\n", a);
	read_ok("[workspace.dependencies]\nserde = { version = \"1\" }\n[workspace.package]\nedition = { version = \"2021\" }\n", b);
	assert_string_equal(a[0], b[0]);     /* cargo reads both the same */
	assert_string_not_equal(a[2], b[2]); /* a package field is what it says */
	workspace_keys_free(a, NKEYS);
	workspace_keys_free(b, NKEYS);
}

static void types_stay_apart(void **state)
{
	(void)state;
	char *a[NKEYS], *b[NKEYS];
	read_ok("[workspace.package]\nedition = \"1\"\nrust-version = 1_000\n", a);
	read_ok("[workspace.package]\nedition = 1\nrust-version = 1000\n", b);
	assert_string_not_equal(a[2], b[2]); /* a string is not an integer */
	assert_string_equal(a[3], b[3]);     /* 1_000 is 1000 */
	workspace_keys_free(a, NKEYS);
	workspace_keys_free(b, NKEYS);
}

static void broken_manifests_compare_as_one(void **state)
{
	(void)state;
	char *a[NKEYS], *b[NKEYS], *c[NKEYS];
	const char *broken = "[workspace.dependencies\nserde = ";
	assert_int_equal(workspace_keys_read(broken, strlen(broken), KEYS, NKEYS, a), 1);
	const char *other = "not = toml = at all";
	assert_int_equal(workspace_keys_read(other, strlen(other), KEYS, NKEYS, b), 1);
	read_ok("[workspace.dependencies]\nserde = \"1\"\n", c);
	assert_string_equal(a[0], b[0]);
	assert_string_not_equal(a[0], c[0]);
	assert_non_null(a[1]); /* broken: every key differs from a readable manifest */
	workspace_keys_free(a, NKEYS);
	workspace_keys_free(b, NKEYS);
	workspace_keys_free(c, NKEYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(formatting_does_not_matter),
		cmocka_unit_test(values_do),
		cmocka_unit_test(a_requirement_is_its_table),
		cmocka_unit_test(types_stay_apart),
		cmocka_unit_test(broken_manifests_compare_as_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
