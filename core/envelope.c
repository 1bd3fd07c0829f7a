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

static const char *const fields[] = {
        "v",     "id",      "kind",        "direction",       "channel",    "channel_type", "external_id",
        "from",  "to",      "contact_id",  "conversation_id", "thread_ref", "sent_at",      "received_at",
        "text",  "subject", "attachments", "status",          "error",      "labels",       "priority",
        "route", "meta",    NULL,
};
/* Fields of later minor versions of v1, each documented in sdk/envelope-v1.schema.json. */
static const char *const fields_added[] = {"template", NULL};

int envelope_field_known(const char *field)
{
	for (size_t i = 0; fields[i]; i++)
		if (strcmp(fields[i], field) == 0)
			return 1;
	for (size_t i = 0; fields_added[i]; i++)
		if (strcmp(fields_added[i], field) == 0)
			return 1;
	return 0;
}

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
	time_format_ms(time_now_ms(), now);
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
	if (env && !env->error) {
		va_list ap;
		va_start(ap, fmt);
		struct strbuf sb;
		sb_init(&sb);
		sb_vprintf(&sb, fmt, ap);
		va_end(ap);
		env->error = sb_detach(&sb);
	}
	return rv;
}

const char *envelope_error(const parley_envelope *env)
{
	return env ? env->error : NULL;
}

/* Fields that are keys (dedupe, contacts, threads): refused when longer than ENVELOPE_MAX_KEY, never cut. */
static int is_key_field(const char *field)
{
	static const char *const keys[] = {"id",      "external_id",  "from", "to", "contact_id", "conversation_id",
	                                   "channel", "channel_type", NULL};
	for (size_t i = 0; keys[i]; i++)
		if (strcmp(keys[i], field) == 0)
			return 1;
	return 0;
}

/* Gateway ids (ULIDs, or an integrator's own) are printed into JSON and paths: a safe alphabet only. */
static int is_id_field(const char *field)
{
	return strcmp(field, "id") == 0 || strcmp(field, "contact_id") == 0 || strcmp(field, "conversation_id") == 0;
}

static int id_valid(const char *s, size_t len)
{
	if (len == 0 || len > 64)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
		      c == '_'))
			return 0;
	}
	return 1;
}

int envelope_set(parley_envelope *env, const char *field, const char *value)
{
	if (!env || !field)
		return PARLEY_EINVAL;
	if (!envelope_field_known(field) || strcmp(field, "v") == 0)
		return fail(env, PARLEY_EINVAL, "'%.64s' is not an envelope field that can be set", field);
	size_t len = value ? strlen(value) : 0;
	if (value && !utf8_valid(value, len))
		return fail(env, PARLEY_EINVAL, "field '%s' is not valid UTF-8", field);
	if (value && is_id_field(field) && !id_valid(value, len))
		return fail(env, PARLEY_EINVAL, "field '%s' is not a gateway id (1-64 letters, digits, '-' or '_')",
		            field);
	if (value && len == 0 && (is_key_field(field) || strcmp(field, "thread_ref") == 0))
		return fail(env, PARLEY_EINVAL, "field '%s' is empty", field);
	if (value && len > ENVELOPE_MAX_KEY && is_key_field(field))
		return fail(env, PARLEY_ETOOBIG, "field '%s' is %zu bytes long: at most %d are taken", field, len,
		            ENVELOPE_MAX_KEY);
	changed(env);
	cJSON_DeleteItemFromObjectCaseSensitive(env->obj, field);
	if (!value)
		return 0;
	return cJSON_AddStringToObject(env->obj, field, value) ? 0 : PARLEY_ENOMEM;
}

int envelope_set_json_text(parley_envelope *env, const char *field, const char *json)
{
	if (!env || !field)
		return PARLEY_EINVAL;
	if (!envelope_field_known(field) || strcmp(field, "v") == 0)
		return fail(env, PARLEY_EINVAL, "'%.64s' is not an envelope field that can be set", field);
	if (json) {
		char why[320];
		if (payload_json_check(json, strlen(json), why, sizeof(why)) != 0)
			return fail(env, PARLEY_EINVAL, "field '%s': %s", field, why);
	}
	cJSON *v = json ? cJSON_Parse(json) : NULL;
	if (json && !v)
		return fail(env, PARLEY_EINVAL, "field '%s' is not valid JSON", field);
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
	static const char *const need[] = {"id", "kind", "direction", "channel", "channel_type", NULL};
	for (size_t i = 0; need[i]; i++) {
		if (!envelope_get(env, need[i])) {
			snprintf(why, 160, "envelope has no '%s'", need[i]);
			return -1;
		}
	}
	const char *k = envelope_get(env, "kind");
	if (strcmp(k, "message") && strcmp(k, "status") && strcmp(k, "event")) {
		snprintf(why, 160, "envelope kind '%.40s' is not message, status or event", k);
		return -1;
	}
	const char *d = envelope_get(env, "direction");
	if (strcmp(d, "inbound") && strcmp(d, "outbound")) {
		snprintf(why, 160, "envelope direction '%.40s' is not inbound or outbound", d);
		return -1;
	}
	return 0;
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
