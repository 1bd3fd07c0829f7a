/* crypto.c: HMAC and constant-time comparison for the host table (OpenSSL). */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

int crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 32;
	return HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n) ? 0 : -1;
}

int crypto_hmac_sha1(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[20])
{
	unsigned int n = 20;
	return HMAC(EVP_sha1(), key, (int)keylen, data, len, out, &n) ? 0 : -1;
}

int crypto_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void crypto_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}
