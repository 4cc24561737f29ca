#ifndef CDP_SHA256_H
#define CDP_SHA256_H
#include <stddef.h>
#include <stdint.h>

/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104). */

#define SHA256_DIGEST_SIZE 32
#define SHA256_BLOCK_SIZE 64

struct sha256 {
	uint32_t state[8];
	uint64_t length; /* bytes hashed so far */
	uint8_t block[SHA256_BLOCK_SIZE];
	size_t used;
};

void sha256_init(struct sha256 *ctx);
void sha256_update(struct sha256 *ctx, const void *data, size_t size);
void sha256_final(struct sha256 *ctx, uint8_t digest[SHA256_DIGEST_SIZE]);

void sha256(const void *data, size_t size, uint8_t digest[SHA256_DIGEST_SIZE]);
void hmac_sha256(const void *key, size_t key_size, const void *data, size_t size,
                 uint8_t digest[SHA256_DIGEST_SIZE]);

/* Lower-case hex of DIGEST into OUT, which holds 2 * SHA256_DIGEST_SIZE + 1 bytes. */
void sha256_hex(const uint8_t digest[SHA256_DIGEST_SIZE], char out[2 * SHA256_DIGEST_SIZE + 1]);

#endif
