/*
 * password.h: password hashes with argon2id (libargon2, RFC 9106), in the
 * encoded form "$argon2id$v=19$m=...,t=...,p=...$salt$hash" that carries
 * its own parameters, so a hash made with older parameters still verifies
 * after the configured ones change.
 *
 * The parameters are auth.kdf_memory (default 19 MiB), auth.kdf_iterations
 * (2) and one lane: OWASP's minimum for argon2id.  One hash costs tens of
 * milliseconds of one core and that much memory: callers limit how many run
 * at once (core/auth.c).  Thread-safe; no state.
 */
#ifndef PARLEY_CORE_PASSWORD_H
#define PARLEY_CORE_PASSWORD_H

#include <stddef.h>
#include <stdint.h>

/* Enough for an encoded hash of a 16-byte salt and a 32-byte tag with any parameters. */
#define PASSWORD_HASH_MAX 160

/*
 * Hash password (NUL-terminated) with a fresh random salt into out: 0, or
 * PARLEY_EINVAL (parameters out of range), PARLEY_ENOMEM, PARLEY_EINTERNAL.
 */
int password_hash(const char *password, uint32_t memory_kib, uint32_t iterations, char out[PASSWORD_HASH_MAX]);

/* 1 when password matches the encoded hash, 0 when it does not or the hash is not one. */
int password_verify(const char *encoded, const char *password);

#endif
