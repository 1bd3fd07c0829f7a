/*
 * envelope.h: the envelope v1 object (see sdk/envelope-v1.schema.json).
 * Inside the core an envelope is a JSON object; on the bus it is its text.
 */
#ifndef PARLEY_CORE_ENVELOPE_H
#define PARLEY_CORE_ENVELOPE_H

#include <cjson/cJSON.h>
#include <parley/parley.h>

struct parley_envelope {
	cJSON *obj;
	/*
	 * The envelope's JSON text while it is known: the bus text it was
	 * parsed from (borrowed, valid as long as its nng message), or a
	 * printed copy (owned).  Any change drops it, so the text is printed
	 * at most once however many times the store and the bus ask for it.
	 */
	const char *text;
	size_t text_len;
	char *printed;
	/*
	 * The first setter failure ("field 'text' is not valid UTF-8"), kept so
	 * that an envelope missing a field it was meant to have can never be
	 * submitted: submit refuses it with this reason.  NULL when none.
	 */
	char *error;
	/* The latest setter failure (the first is error), for the host's log line. */
	char last_error[320];
	/*
	 * Who built the envelope through the host: its instance ("channel
	 * hooks") and plugin ("webhook"), borrowed from the instance, for the
	 * log line of a refused field; NULL for envelopes the core parsed or
	 * built (a step's refusal is logged by the pipeline, naming the step).
	 */
	const char *owner, *owner_plugin;
};

/* A new envelope with v, id, kind, direction and received_at set. */
parley_envelope *envelope_create(const char *kind, const char *direction);
/*
 * Parse bus text; NULL when it is not a JSON object.  The envelope borrows
 * text as its JSON text until changed: text must outlive it.
 */
parley_envelope *envelope_parse(const char *text, size_t len);
/* The JSON text (not NUL-terminated), owned by the envelope; NULL on ENOMEM. */
const char *envelope_text(parley_envelope *env, size_t *len);
void envelope_destroy(parley_envelope *env);
int envelope_set(parley_envelope *env, const char *field, const char *value);
int envelope_set_json_text(parley_envelope *env, const char *field, const char *json);
const char *envelope_get(const parley_envelope *env, const char *field);
char *envelope_get_json_text(const parley_envelope *env, const char *field);
char *envelope_json(const parley_envelope *env);
/* The first setter failure of env, or NULL. */
const char *envelope_error(const parley_envelope *env);
/* The longest address or id (from, to, external_id, ...) an envelope takes, in bytes. */
#define ENVELOPE_MAX_KEY 512
/*
 * What sdk/envelope-v1.schema.json says of each field (envelope_check.c).
 * 1 when field is an envelope v1 field name.
 */
int envelope_field_known(const char *field);
/*
 * Check value for field as envelope_set() would store it (NULL: the field
 * removed): 0, or PARLEY_EINVAL / PARLEY_ETOOBIG with a reason naming the
 * field and why in why (n bytes).
 */
int envelope_check_str(const char *field, const char *value, char *why, size_t n);
/* The same for a JSON value (envelope_set_json_text), NULL: the field removed. */
int envelope_check_json(const char *field, const cJSON *value, char *why, size_t n);
/* Check a whole envelope object: every field known and valid, every required field present. */
int envelope_check_all(const cJSON *obj, char *why, size_t n);
/*
 * envelope_check_all() of env; returns 0, or -1 with a reason in why
 * (>= 160 bytes).
 */
int envelope_validate(const parley_envelope *env, char *why);
/* The bus topic: message.inbound.<type>.<channel>, status.<type>.<channel>, ... */
int envelope_topic(const parley_envelope *env, char *out, size_t outlen);

/* A time-sortable 26-character ULID (out >= 27 bytes). */
void ulid_new(char out[27]);

#endif
