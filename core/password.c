/* password.c: argon2id password hashes (see password.h). */
#include "password.h"

#include "crypto.h"

#include <argon2.h>
#include <parley/parley.h>
#include <string.h>

#define SALT_LEN 16
#define TAG_LEN  32

int password_hash(const char *password, uint32_t memory_kib, uint32_t iterations, char out[PASSWORD_HASH_MAX])
{
	unsigned char salt[SALT_LEN];
	if (crypto_random(salt, sizeof(salt)) != 0)
		return PARLEY_EINTERNAL;
	size_t need = argon2_encodedlen(iterations, memory_kib, 1, SALT_LEN, TAG_LEN, Argon2_id);
	if (need > PASSWORD_HASH_MAX)
		return PARLEY_EINVAL;
	int rc = argon2id_hash_encoded(iterations, memory_kib, 1, password, strlen(password), salt, sizeof(salt),
	                               TAG_LEN, out, PASSWORD_HASH_MAX);
	switch (rc) {
	case ARGON2_OK:
		return 0;
	case ARGON2_MEMORY_ALLOCATION_ERROR:
		return PARLEY_ENOMEM;
	case ARGON2_MEMORY_TOO_LITTLE:
	case ARGON2_MEMORY_TOO_MUCH:
	case ARGON2_TIME_TOO_SMALL:
	case ARGON2_TIME_TOO_LARGE:
	case ARGON2_PWD_TOO_LONG:
		return PARLEY_EINVAL;
	default:
		return PARLEY_EINTERNAL;
	}
}

int password_verify(const char *encoded, const char *password)
{
	/* argon2id_verify compares the tags in constant time. */
	return encoded && strncmp(encoded, "$argon2id$", 10) == 0 &&
	       argon2id_verify(encoded, password, strlen(password)) == ARGON2_OK;
}
