/*
 * skill.c: a skill request (SkillPayload) in: authenticated, checked field
 * by field, turned into one inbound envelope, submitted, and held for its
 * answer (hold.c).
 *
 * The payload carries no message id and Kakao does not redeliver a skill
 * request (it shows its own failure message after 5 s), so each request
 * is its own message: external_id "req:<gateway ULID>".  A payload that is
 * not a SkillPayload is answered 400 naming the field and stores nothing;
 * Kakao then shows the block's failure message to the user, which is the
 * truth (a 2xx would say the message was taken).
 */
#include "kakao.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UTTERANCE_MAX 4096 /* bytes; Kakao's input box takes 1,000 characters */
#define URL_MAX       2048

/* 1 when s is a Kakao user or bot id as the payloads show them: 1-128 of [A-Za-z0-9_.=+/-]. */
static int kakao_id(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > KAKAO_USER_MAX)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.=+/-") == n;
}

/* 1 when s is an absolute http(s) URL without spaces or control characters, at most URL_MAX bytes. */
static int callback_url_ok(const char *s)
{
	size_t n = strlen(s);
	if (n > URL_MAX || (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7f)
			return 0;
	return 1;
}

/* 1 when the request carries the configured secret (constant time). */
static int authentic(struct kakao *k, parley_http_request *req)
{
	if (k->insecure && !k->secret)
		return 1;
	const char *got = k->host->http_header(req, k->secret_header);
	size_t n = k->secret ? strlen(k->secret) : 0;
	return got && n > 0 && strlen(got) == n && k->host->ct_equal(got, k->secret, n);
}

/* An optional member that must be an object when present: copied into meta under `as`. */
static int copy_object(cJSON *meta, const cJSON *from, const char *member, const char *as, const char *where, char *why,
                       size_t why_len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, member);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsObject(v)) {
		snprintf(why, why_len, "%s%s is not an object", where, member);
		return -1;
	}
	cJSON_AddItemToObject(meta, as, cJSON_Duplicate(v, 1));
	return 0;
}

/* An optional string member: NULL when absent; -1 (why set) when present and not a string or too long. */
static int opt_string(const cJSON *from, const char *member, size_t max, const char *where, const char **out, char *why,
                      size_t why_len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, member);
	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || strlen(v->valuestring) > max) {
		snprintf(why, why_len, "%s%s is not a string of at most %zu bytes", where, member, max);
		return -1;
	}
	*out = v->valuestring;
	return 0;
}

/*
 * The envelope's meta from the payload: bot, block, action (its
 * clientExtra.button_id is the quick reply's id), params, the user's other
 * keys.  -1 with why naming the field when one is not what Kakao sends.
 */
static int build_meta(const cJSON *doc, const cJSON *ur, const cJSON *user, cJSON *meta, char *why, size_t why_len)
{
	const cJSON *bot = cJSON_GetObjectItemCaseSensitive(doc, "bot");
	const cJSON *action = cJSON_GetObjectItemCaseSensitive(doc, "action");
	const char *s;
	if (copy_object(meta, doc, "intent", "intent", "", why, why_len) ||
	    copy_object(meta, doc, "action", "action", "", why, why_len) ||
	    copy_object(meta, ur, "block", "block", "userRequest.", why, why_len) ||
	    copy_object(meta, ur, "params", "params", "userRequest.", why, why_len) ||
	    copy_object(meta, user, "properties", "user_properties", "userRequest.user.", why, why_len))
		return -1;
	if (opt_string(bot, "name", 256, "bot.", &s, why, why_len))
		return -1;
	if (s)
		cJSON_AddStringToObject(meta, "bot_name", s);
	if (opt_string(user, "type", 64, "userRequest.user.", &s, why, why_len))
		return -1;
	if (s)
		cJSON_AddStringToObject(meta, "user_type", s);
	if (opt_string(ur, "lang", 16, "userRequest.", &s, why, why_len))
		return -1;
	if (s)
		cJSON_AddStringToObject(meta, "lang", s);
	if (opt_string(ur, "timezone", 64, "userRequest.", &s, why, why_len))
		return -1;
	if (s)
		cJSON_AddStringToObject(meta, "timezone", s);
	const cJSON *extra = cJSON_GetObjectItemCaseSensitive(action, "clientExtra");
	const char *bid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(extra, "button_id"));
	if (bid)
		cJSON_AddStringToObject(meta, "reply_id", bid);
	return 0;
}

/* Fill env from the payload; -1 with why naming the field that is not a SkillPayload's. */
static int build(struct kakao *k, parley_envelope *env, const cJSON *doc, struct kakao_hold *hold, char *why,
                 size_t why_len)
{
	const struct parley_host *h = k->host;
	const cJSON *ur = cJSON_GetObjectItemCaseSensitive(doc, "userRequest");
	const cJSON *user = cJSON_GetObjectItemCaseSensitive(ur, "user");
	const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(user, "id"));
	const char *utterance, *cb, *bot_id;
	if (!cJSON_IsObject(ur)) {
		snprintf(why, why_len, "userRequest is missing or not an object: not a Kakao skill payload");
		return -1;
	}
	if (!kakao_id(uid)) {
		snprintf(why, why_len, "userRequest.user.id is not a Kakao user id (1-%d letters, digits, _.=+/-)",
		         KAKAO_USER_MAX);
		return -1;
	}
	if (opt_string(ur, "utterance", UTTERANCE_MAX, "userRequest.", &utterance, why, why_len) ||
	    opt_string(ur, "callbackUrl", URL_MAX, "userRequest.", &cb, why, why_len) ||
	    opt_string(cJSON_GetObjectItemCaseSensitive(doc, "bot"), "id", KAKAO_USER_MAX, "bot.", &bot_id, why,
	               why_len))
		return -1;
	if (cb && !callback_url_ok(cb)) {
		snprintf(why, why_len, "userRequest.callbackUrl is not an http(s) URL");
		return -1;
	}
	cJSON *meta = cJSON_CreateObject();
	if (build_meta(doc, ur, user, meta, why, why_len)) {
		cJSON_Delete(meta);
		return -1;
	}
	snprintf(hold->user, sizeof(hold->user), "kakao:%s", uid);
	h->envelope_set_str(env, "from", hold->user);
	char id[32];
	h->new_id(id);
	prov_set_fmt(h, env, "external_id", "req:%s", id);
	if (bot_id)
		cJSON_AddStringToObject(meta, "bot_id", bot_id);
	cJSON_AddBoolToObject(meta, "callback", cb != NULL);
	if (utterance) {
		h->envelope_set_str(env, "text", utterance);
	} else {
		/* No utterance (an event block, a newer kind): kept whole, never dropped. */
		h->log(k->inst, PARLEY_LOG_WARN, "a skill request without an utterance kept as an event in meta.raw");
		cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(doc, 1));
	}
	prov_set_json(h, env, "meta", meta);
	if (cb)
		hold->callback_url = strdup(cb);
	return 0;
}

void kakao_on_skill(void *data, parley_http_request *req)
{
	struct kakao *k = data;
	const struct parley_host *h = k->host;
	size_t len;
	const char *body = h->http_body(req, &len);
	if (!authentic(k, req)) {
		h->metric_add(k->inst, "webhook_bad_signature_total", 1);
		char msg[200];
		snprintf(msg, sizeof(msg), "bad or missing %s (the secret set in the skill's headers)",
		         k->secret_header);
		prov_respond_error(h, req, 401, msg);
		return;
	}
	cJSON *doc = prov_json_body(h, req, body, len);
	if (!doc)
		return;
	const char *bot_id = cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "bot"), "id"));
	if (k->bot_id && (!bot_id || strcmp(bot_id, k->bot_id) != 0)) {
		cJSON_Delete(doc);
		h->metric_add(k->inst, "webhook_bad_signature_total", 1);
		prov_respond_error(h, req, 401, "bot.id is not this channel's bot_id");
		return;
	}
	/* Without an utterance (an event block, a newer kind) the request is kept whole as an event. */
	int has_text = cJSON_IsString(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "userRequest"), "utterance"));
	struct kakao_hold *hold = calloc(1, sizeof(*hold));
	struct prov_batch *b = hold ? prov_batch_new(h, k->inst, NULL, NULL) : NULL;
	parley_envelope *env = b ? prov_batch_envelope(b, has_text ? "message" : "event") : NULL;
	char why[300];
	if (!env) {
		snprintf(why, sizeof(why), "out of memory: retry later");
	} else if (build(k, env, doc, hold, why, sizeof(why)) != 0) {
		prov_batch_refuse(b, "%s", why); /* logged by prov_batch_finish */
	} else {
		why[0] = '\0';
	}
	cJSON_Delete(doc);
	if (why[0]) {
		if (b)
			prov_batch_finish(b); /* refused: stores nothing, done is not set */
		if (hold)
			free(hold->callback_url);
		free(hold);
		prov_respond_error(h, req, env ? 400 : 503, why);
		return;
	}
	hold->k = k;
	hold->req = req;
	hold->arrived_ms = kakao_now_ms();
	hold->deadline_ms = hold->arrived_ms + k->answer_within_ms;
	kakao_hold_add(k, hold);
	b->done = kakao_hold_committed;
	b->done_arg = hold;
	prov_batch_finish(b);
}
