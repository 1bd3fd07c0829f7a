/* crypto.h: HMAC and constant-time helpers (OpenSSL underneath). */
#ifndef PARLEY_CORE_CRYPTO_H
#define PARLEY_CORE_CRYPTO_H

#include <stddef.h>

int crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[32]);
int crypto_hmac_sha1(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[20]);
int crypto_ct_equal(const void *a, const void *b, size_t n);
void crypto_hex(const unsigned char *in, size_t n, char *out);
/* n bytes from the operating system's CSPRNG (OpenSSL RAND_bytes); 0 or -1. */
int crypto_random(unsigned char *out, size_t n);
/* SHA-256 of n bytes; 0 or -1. */
int crypto_sha256(const void *data, size_t n, unsigned char out[32]);
/* Lowercase hex SHA-256 of a string, in out (65 bytes); 0 or -1. */
int crypto_sha256_hex(const char *s, char out[65]);
/* Unpadded base64url (RFC 4648 section 5) of n bytes into out (4 * ceil(n / 3) + 1 bytes at least). */
void crypto_b64url(const unsigned char *in, size_t n, char *out);

#endif
