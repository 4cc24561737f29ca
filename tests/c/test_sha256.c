/* SHA-256 and HMAC-SHA256 against FIPS 180-4 and RFC 4231 vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/sha256.h"

static void expect_hex(const uint8_t digest[SHA256_DIGEST_SIZE], const char *want)
{
	char hex[2 * SHA256_DIGEST_SIZE + 1];
	sha256_hex(digest, hex);
	assert_string_equal(hex, want);
}

static void test_fips_vectors(void **state)
{
	(void)state;
	uint8_t d[SHA256_DIGEST_SIZE];
	sha256("", 0, d);
	expect_hex(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256("abc", 3, d);
	expect_hex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha256(two, strlen(two), d);
	expect_hex(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_streaming_matches_one_shot(void **state)
{
	(void)state;
	/* One million 'a', fed in uneven pieces across block boundaries. */
	static char a[1000];
	memset(a, 'a', sizeof a);
	struct sha256 ctx;
	sha256_init(&ctx);
	for (int i = 0; i < 1000; i++) {
		sha256_update(&ctx, a, 999);
		sha256_update(&ctx, a, 1);
	}
	uint8_t d[SHA256_DIGEST_SIZE];
	sha256_final(&ctx, d);
	expect_hex(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_hmac_rfc4231(void **state)
{
	(void)state;
	uint8_t d[SHA256_DIGEST_SIZE];
	uint8_t key1[20];
	memset(key1, 0x0b, sizeof key1);
	hmac_sha256(key1, sizeof key1, "Hi There", 8, d);
	expect_hex(d, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	const char *data2 = "what do ya want for nothing?";
	hmac_sha256("Jefe", 4, data2, strlen(data2), d);
	expect_hex(d, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* Case 6: a key longer than the block is hashed first. */
	uint8_t key6[131];
	memset(key6, 0xaa, sizeof key6);
	const char *data6 = "Test Using Larger Than Block-Size Key - Hash Key First";
	hmac_sha256(key6, sizeof key6, data6, strlen(data6), d);
	expect_hex(d, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fips_vectors),
		cmocka_unit_test(test_streaming_matches_one_shot),
		cmocka_unit_test(test_hmac_rfc4231),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
