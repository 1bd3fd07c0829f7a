/* sign.h: the signatures providers put on webhooks, computed by the harnesses so inputs reach the parsers. */
#ifndef PARLEY_TESTS_FUZZ_SIGN_H
#define PARLEY_TESTS_FUZZ_SIGN_H

#include "crypto.h"

#include <stdio.h>
#include <string.h>

/* "<prefix><lower-case hex HMAC-SHA256(secret, data)>" into out (>= strlen(prefix) + 65). */
static inline void sign_hmac_sha256_hex(const char *secret, const char *prefix, const void *data, size_t len, char *out,
                                        size_t outlen)
{
	unsigned char mac[32];
	char hex[65];
	crypto_hmac_sha256(secret, strlen(secret), data, len, mac);
	crypto_hex(mac, sizeof(mac), hex);
	snprintf(out, outlen, "%s%s", prefix, hex);
}

#endif
