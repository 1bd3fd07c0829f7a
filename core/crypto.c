/* crypto.c: HMAC and constant-time comparison for the host table, digests and random bytes for tokens (OpenSSL). */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

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

int crypto_random(unsigned char *out, size_t n)
{
	return n <= 0x7fffffff && RAND_bytes(out, (int)n) == 1 ? 0 : -1;
}

int crypto_sha256(const void *data, size_t n, unsigned char out[32])
{
	unsigned int len = 32;
	return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

int crypto_sha256_hex(const char *s, char out[65])
{
	unsigned char d[32];
	if (crypto_sha256(s, strlen(s), d) != 0)
		return -1;
	crypto_hex(d, 32, out);
	return 0;
}

void crypto_b64url(const unsigned char *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
		             (i + 2 < n ? in[i + 2] : 0);
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = a[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = a[v & 63];
	}
	out[o] = '\0';
}
