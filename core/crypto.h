/* crypto.h: HMAC and constant-time helpers (OpenSSL underneath). */
#ifndef PARLEY_CORE_CRYPTO_H
#define PARLEY_CORE_CRYPTO_H

#include <stddef.h>

int crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[32]);
int crypto_hmac_sha1(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[20]);
int crypto_ct_equal(const void *a, const void *b, size_t n);
void crypto_hex(const unsigned char *in, size_t n, char *out);

#endif
