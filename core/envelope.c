/* envelope.c: envelope v1 objects, their fields, topics and ULIDs. */
#include "envelope.h"
#include "payload.h"
#include "util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static pthread_mutex_t ulid_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t ulid_last_ms;
static unsigned char ulid_rand[10];

void ulid_new(char out[27])
{
	static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	unsigned char b[16];
	int64_t ms = time_now_ms();
	pthread_mutex_lock(&ulid_lock);
	if (ms <= ulid_last_ms) {
		/* Same millisecond (or a clock step back): stay monotonic. */
		ms = ulid_last_ms;
		for (int i = 9; i >= 0; i--)
			if (++ulid_rand[i] != 0)
				break;
	} else {
		if (getrandom(ulid_rand, sizeof(ulid_rand), 0) != (ssize_t)sizeof(ulid_rand)) {
			for (size_t i = 0; i < sizeof(ulid_rand); i++)
				ulid_rand[i] = (unsigned char)(rand() & 0xff);
		}
		/* Leave headroom so increments within one ms never wrap. */
		ulid_rand[0] &= 0x7f;
		ulid_last_ms = ms;
	}
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
	memcpy(b + 6, ulid_rand, 10);
	pthread_mutex_unlock(&ulid_lock);
	/* 128 bits as 26 base32 digits, most significant first (2 pad bits). */
	int bit = -2;
	for (int i = 0; i < 26; i++) {
		unsigned v = 0;
		for (int k = 0; k < 5; k++, bit++) {
			v <<= 1;
			if (bit >= 0)
				v |= (b[bit / 8] >> (7 - bit % 8)) & 1u;
		}
		out[i] = alphabet[v];
	}
	out[26] = '\0';
}

parley_envelope *envelope_create(const char *kind, const char *direction)
{
	parley_envelope *env = calloc(1, sizeof(*env));
	if (!env)
		return NULL;
	env->obj = cJSON_CreateObject();
	if (!env->obj) {
		free(env);
		return NULL;
	}
	char id[27], now[64];
	ulid_new(id);
	time_format_ms(clock_now_ms(), now);
	cJSON_AddNumberToObject(env->obj, "v", 1);
	cJSON_AddStringToObject(env->obj, "id", id);
	cJSON_AddStringToObject(env->obj, "kind", kind ? kind : "message");
	cJSON_AddStringToObject(env->obj, "direction", direction ? direction : "inbound");
	cJSON_AddStringToObject(env->obj, "received_at", now);
	return env;
}

parley_envelope *envelope_parse(const char *text, size_t len)
{
	cJSON *o = cJSON_ParseWithLength(text, len);
	if (!o)
		return NULL;
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return NULL;
	}
	parley_envelope *env = calloc(1, sizeof(*env));
	if (!env) {
		cJSON_Delete(o);
		return NULL;
	}
	env->obj = o;
	env->text = text;
	env->text_len = len;
	return env;
}

static void changed(parley_envelope *env)
{
	env->text = NULL;
	free(env->printed);
	env->printed = NULL;
}

const char *envelope_text(parley_envelope *env, size_t *len)
{
	if (!env->text) {
		env->printed = cJSON_PrintUnformatted(env->obj);
		if (!env->printed)
			return NULL;
		env->text = env->printed;
		env->text_len = strlen(env->printed);
	}
	*len = env->text_len;
	return env->text;
}

void envelope_destroy(parley_envelope *env)
{
	if (!env)
		return;
	cJSON_Delete(env->obj);
	free(env->printed);
	free(env->error);
	free(env);
}

/* Remember the first failure (see envelope.h) and return rv. */
static int fail(parley_envelope *env, int rv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(parley_envelope *env, int rv, const char *fmt, ...)
{
	if (env) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(env->last_error, sizeof(env->last_error), fmt, ap);
		va_end(ap);
		if (!env->error)
			env->error = strdup(env->last_error);
	}
	return rv;
}

const char *envelope_error(const parley_envelope *env)
{
	return env ? env->error : NULL;
}

int envelope_set(parley_envelope *env, const char *field, const char *value)
{
	char why[320];
	if (!env || !field)
		return PARLEY_EINVAL;
	int rv = envelope_check_str(field, value, why, sizeof(why));
	if (rv)
		return fail(env, rv, "%s", why);
	changed(env);
	cJSON_DeleteItemFromObjectCaseSensitive(env->obj, field);
	if (!value)
		return 0;
	return cJSON_AddStringToObject(env->obj, field, value) ? 0 : PARLEY_ENOMEM;
}

int envelope_set_json_text(parley_envelope *env, const char *field, const char *json)
{
	char why[320];
	if (!env || !field)
		return PARLEY_EINVAL;
	if (json && payload_json_check(json, strlen(json), why, sizeof(why)) != 0)
		return fail(env, PARLEY_EINVAL, "field '%.64s': %s", field, why);
	cJSON *v = json ? cJSON_Parse(json) : NULL;
	if (json && !v)
		return fail(env, PARLEY_EINVAL, "field '%.64s' is not valid JSON", field);
	int rv = envelope_check_json(field, v, why, sizeof(why));
	if (rv) {
		cJSON_Delete(v);
		return fail(env, rv, "%s", why);
	}
	changed(env);
	cJSON_DeleteItemFromObjectCaseSensitive(env->obj, field);
	if (v)
		cJSON_AddItemToObject(env->obj, field, v);
	return 0;
}

const char *envelope_get(const parley_envelope *env, const char *field)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(env->obj, field);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

char *envelope_get_json_text(const parley_envelope *env, const char *field)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(env->obj, field);
	return v ? cJSON_PrintUnformatted(v) : NULL;
}

char *envelope_json(const parley_envelope *env)
{
	if (env->text)
		return strndup(env->text, env->text_len);
	return cJSON_PrintUnformatted(env->obj);
}

int envelope_validate(const parley_envelope *env, char *why)
{
	return envelope_check_all(env->obj, why, 160) == 0 ? 0 : -1;
}

int envelope_topic(const parley_envelope *env, char *out, size_t outlen)
{
	const char *kind = envelope_get(env, "kind");
	const char *type = envelope_get(env, "channel_type");
	const char *ch = envelope_get(env, "channel");
	int n;
	if (kind && strcmp(kind, "status") == 0)
		n = snprintf(out, outlen, "status.%s.%s", type ? type : "-", ch ? ch : "-");
	else
		n = snprintf(out, outlen, "%s.%s.%s.%s", kind ? kind : "message",
		             envelope_get(env, "direction") ? envelope_get(env, "direction") : "inbound",
		             type ? type : "-", ch ? ch : "-");
	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}
