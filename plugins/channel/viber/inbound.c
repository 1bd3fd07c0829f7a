/*
 * inbound.c: Viber callbacks into envelopes.
 *
 * One callback, one envelope.  A message (text, picture, video, file,
 * sticker, contact, url, location) is a message from viber:<sender.id>,
 * keyed by its message_token.  subscribed, unsubscribed and
 * conversation_started are events; delivered, seen and failed are
 * receipts (status delivered, read, failed) of the message whose token
 * they name, so the outbound message's status moves.  Callbacks of other
 * kinds are events kept whole in meta.raw.
 */
#include "viber.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str_in(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* The callback being read: its batch, its JSON, and its message token (digits). */
struct cb {
	struct viber *v;
	struct prov_batch *b;
	const cJSON *doc;
	const char *event;
	char token[24];
};

/* The sender's profile: name as the contact's name, and what Viber says about the user. */
static void add_profile(cJSON *meta, const cJSON *user)
{
	static const char *const kept[] = {"country", "language", NULL};
	const char *name = str_in(user, "name");
	if (name)
		cJSON_AddStringToObject(meta, "contact_name", name);
	for (size_t i = 0; kept[i]; i++)
		if (str_in(user, kept[i]))
			cJSON_AddStringToObject(meta, kept[i], str_in(user, kept[i]));
	const cJSON *api = cJSON_GetObjectItemCaseSensitive(user, "api_version");
	if (cJSON_IsNumber(api))
		cJSON_AddNumberToObject(meta, "api_version", api->valuedouble);
}

/* 1 when v is not within -max..max (NaN included). */
static int out_of(double v, double max)
{
	return !(v >= -max && v <= max);
}

struct media_type {
	const char *type, *kind, *content_type;
};

/* Viber sends JPEG pictures and MP4 videos; files keep the type of their name, which Viber does not give. */
static const struct media_type media_types[] = {{"picture", "image", "image/jpeg"},
                                                {"video", "video", "video/mp4"},
                                                {"file", "document", NULL},
                                                {"sticker", "sticker", "image/png"},
                                                {NULL, NULL, NULL}};

static void add_media(struct cb *c, parley_envelope *env, const struct media_type *mt, const cJSON *msg)
{
	const struct parley_host *h = c->v->host;
	const char *url = str_in(msg, "media");
	long long size = 0, secs = 0;
	if ((cJSON_GetObjectItemCaseSensitive(msg, "size") && prov_json_int(msg, "size", 0, 1LL << 50, &size) != 0) ||
	    (cJSON_GetObjectItemCaseSensitive(msg, "file_size") &&
	     prov_json_int(msg, "file_size", 0, 1LL << 50, &size) != 0)) {
		prov_batch_refuse(c->b, "message.size is not a size in bytes");
		return;
	}
	if (cJSON_GetObjectItemCaseSensitive(msg, "duration") &&
	    prov_json_int(msg, "duration", 0, 1LL << 32, &secs) != 0) {
		prov_batch_refuse(c->b, "message.duration is not a length in seconds");
		return;
	}
	cJSON *att = cJSON_CreateObject();
	cJSON_AddStringToObject(att, "kind", mt->kind);
	if (mt->content_type)
		cJSON_AddStringToObject(att, "content_type", mt->content_type);
	if (url)
		cJSON_AddStringToObject(att, "url", url);
	if (str_in(msg, "file_name"))
		cJSON_AddStringToObject(att, "name", str_in(msg, "file_name"));
	if (size)
		cJSON_AddNumberToObject(att, "provider_size", (double)size);
	if (secs)
		cJSON_AddNumberToObject(att, "duration_s", (double)secs);
	cJSON *list = cJSON_CreateArray();
	cJSON_AddItemToArray(list, att);
	prov_set_json(h, env, "attachments", list);
	if (url && (!size || (uint64_t)size <= c->v->max_media))
		prov_batch_media(c->b, env, 0, url);
}

/* The message of a message callback into env and meta; 0 when its type is one Viber documents. */
static int message_body(struct cb *c, parley_envelope *env, const cJSON *msg, cJSON *meta)
{
	const struct parley_host *h = c->v->host;
	const char *type = str_in(msg, "type");
	prov_set_from(h, env, "text", msg, "text");
	if (strcmp(type, "text") == 0)
		return 0;
	if (strcmp(type, "url") == 0) {
		prov_set_from(h, env, "text", msg, "media");
		return 0;
	}
	if (strcmp(type, "location") == 0) {
		const cJSON *loc = cJSON_GetObjectItemCaseSensitive(msg, "location");
		const cJSON *lat = cJSON_GetObjectItemCaseSensitive(loc, "lat");
		const cJSON *lon = cJSON_GetObjectItemCaseSensitive(loc, "lon");
		if (!cJSON_IsNumber(lat) || out_of(lat->valuedouble, 90) || !cJSON_IsNumber(lon) ||
		    out_of(lon->valuedouble, 180)) {
			prov_batch_refuse(
			        c->b, "message.location needs 'lat' (-90 to 90) and 'lon' (-180 to 180) as numbers");
			return 0;
		}
		cJSON *m = cJSON_AddObjectToObject(meta, "location");
		cJSON_AddNumberToObject(m, "latitude", lat->valuedouble);
		cJSON_AddNumberToObject(m, "longitude", lon->valuedouble);
		return 0;
	}
	if (strcmp(type, "contact") == 0) {
		const cJSON *ct = cJSON_GetObjectItemCaseSensitive(msg, "contact");
		const char *name = str_in(ct, "name"), *phone = str_in(ct, "phone_number");
		cJSON *list = cJSON_AddArrayToObject(meta, "contacts");
		cJSON_AddItemToArray(list, cJSON_Duplicate(ct, 1));
		/* The text says what was shared, as the customer's app shows it. */
		if (name || phone)
			prov_set_fmt(h, env, "text", "%s%s%s", name ? name : "", name && phone ? ", " : "",
			             phone ? phone : "");
		return 0;
	}
	for (size_t i = 0; media_types[i].type; i++)
		if (strcmp(type, media_types[i].type) == 0) {
			long long sticker;
			if (cJSON_GetObjectItemCaseSensitive(msg, "sticker_id")) {
				if (prov_json_int(msg, "sticker_id", 0, 1LL << 53, &sticker) != 0) {
					prov_batch_refuse(c->b, "message.sticker_id is not a sticker id (an integer)");
					return 0;
				}
				cJSON_AddNumberToObject(meta, "sticker_id", (double)sticker);
			}
			add_media(c, env, &media_types[i], msg);
			return 0;
		}
	return -1;
}

static void message_envelope(struct cb *c)
{
	const struct parley_host *h = c->v->host;
	const cJSON *sender = cJSON_GetObjectItemCaseSensitive(c->doc, "sender");
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c->doc, "message");
	const char *id = str_in(sender, "id"), *type = str_in(msg, "type");
	if (!viber_user_id(id)) {
		prov_batch_refuse(c->b, "sender.id is %s", id ? "not a Viber user id" : "missing");
		return;
	}
	if (!type) {
		prov_batch_refuse(c->b, "message.type is missing or not a string");
		return;
	}
	parley_envelope *env = prov_batch_envelope(c->b, "message");
	if (!env)
		return;
	prov_set_fmt(h, env, "from", "viber:%s", id);
	h->envelope_set_str(env, "external_id", c->token);
	prov_set_time(c->b, env, c->doc, "timestamp", 0.001);
	cJSON *meta = cJSON_CreateObject();
	add_profile(meta, sender);
	cJSON_AddStringToObject(meta, "type", type);
	if (str_in(msg, "tracking_data"))
		cJSON_AddStringToObject(meta, "tracking_data", str_in(msg, "tracking_data"));
	if (message_body(c, env, msg, meta) != 0) {
		/* Kept whole, never dropped: a later version may understand it. */
		h->log(c->v->inst, PARLEY_LOG_WARN, "message %s of unknown type '%s' kept in meta.raw", c->token, type);
		cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(c->doc, 1));
	}
	prov_set_json(h, env, "meta", meta);
}

/* delivered, seen, failed: a receipt of the message with this token. */
static void receipt_envelope(struct cb *c, const char *state)
{
	const struct parley_host *h = c->v->host;
	const char *user = str_in(c->doc, "user_id");
	if (user && !viber_user_id(user)) {
		prov_batch_refuse(c->b, "user_id is not a Viber user id");
		return;
	}
	parley_envelope *env = prov_batch_envelope(c->b, "status");
	if (!env)
		return;
	prov_set_fmt(h, env, "external_id", "%s:%s", c->token, c->event);
	h->envelope_set_str(env, "thread_ref", c->token);
	h->envelope_set_str(env, "status", state);
	if (user)
		prov_set_fmt(h, env, "to", "viber:%s", user);
	prov_set_time(c->b, env, c->doc, "timestamp", 0.001);
	prov_set_from(h, env, "error", c->doc, "desc");
}

/* subscribed, unsubscribed, conversation_started, and kinds without a handler (kept in meta.raw). */
static void event_envelope(struct cb *c, int known)
{
	const struct parley_host *h = c->v->host;
	const cJSON *user = cJSON_GetObjectItemCaseSensitive(c->doc, "user");
	const char *id = user ? str_in(user, "id") : str_in(c->doc, "user_id");
	if (id && !viber_user_id(id)) {
		prov_batch_refuse(c->b, "%s is not a Viber user id", user ? "user.id" : "user_id");
		return;
	}
	parley_envelope *env = prov_batch_envelope(c->b, "event");
	if (!env)
		return;
	prov_set_fmt(h, env, "external_id", "%s:%s", c->event, c->token);
	if (id)
		prov_set_fmt(h, env, "from", "viber:%s", id);
	prov_set_time(c->b, env, c->doc, "timestamp", 0.001);
	cJSON *meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "event", c->event);
	add_profile(meta, user);
	if (known) {
		static const char *const kept[] = {"type", "context", NULL};
		for (size_t i = 0; kept[i]; i++)
			if (str_in(c->doc, kept[i]))
				cJSON_AddStringToObject(meta, kept[i], str_in(c->doc, kept[i]));
		const cJSON *sub = cJSON_GetObjectItemCaseSensitive(c->doc, "subscribed");
		if (cJSON_IsBool(sub))
			cJSON_AddBoolToObject(meta, "subscribed", cJSON_IsTrue(sub));
	} else {
		h->log(c->v->inst, PARLEY_LOG_INFO, "callback '%s' %s kept in meta.raw", c->event, c->token);
		cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(c->doc, 1));
	}
	prov_set_json(h, env, "meta", meta);
}

void viber_on_post(void *data, parley_http_request *req)
{
	struct viber *v = data;
	const struct parley_host *h = v->host;
	size_t len;
	const char *body = h->http_body(req, &len);
	if (!prov_check_hmac_sha256_hex(h, v->token, h->http_header(req, "X-Viber-Content-Signature"), "", body, len)) {
		h->metric_add(v->inst, "webhook_bad_signature_total", 1);
		prov_respond_error(
		        h, req, 401,
		        "bad or missing X-Viber-Content-Signature (hex HMAC-SHA256 of the body with the auth "
		        "token)");
		return;
	}
	cJSON *doc = prov_json_body(h, req, body, len);
	if (!doc)
		return;
	struct cb c = {v, NULL, doc, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "event")), ""};
	if (!cJSON_IsObject(doc) || !c.event || !c.event[0]) {
		cJSON_Delete(doc);
		prov_respond_error(h, req, 400, "not a Viber callback: expected an object with 'event'");
		return;
	}
	int check = strcmp(c.event, "webhook") == 0;
	/* Every callback names itself by its token: without it a redelivery could not be told from a new one. */
	if (!check && (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(doc, "message_token")) ||
	               viber_message_token(body, len, c.token, sizeof(c.token)) != 0)) {
		cJSON_Delete(doc);
		prov_respond_error(h, req, 400, "message_token is missing or not an unsigned 64-bit integer");
		return;
	}
	c.b = prov_batch_new(h, v->inst, req, v->media);
	static const struct {
		const char *event, *state;
	} receipts[] = {{"delivered", "delivered"}, {"seen", "read"}, {"failed", "failed"}, {NULL, NULL}};
	const char *state = NULL;
	for (size_t i = 0; receipts[i].event; i++)
		if (strcmp(c.event, receipts[i].event) == 0)
			state = receipts[i].state;
	if (check)
		prov_batch_ignore(c.b, "Viber's check of the webhook (set_webhook)");
	else if (strcmp(c.event, "message") == 0)
		message_envelope(&c);
	else if (state)
		receipt_envelope(&c, state);
	else
		event_envelope(&c, strcmp(c.event, "subscribed") == 0 || strcmp(c.event, "unsubscribed") == 0 ||
		                           strcmp(c.event, "conversation_started") == 0);
	cJSON_Delete(doc);
	prov_batch_finish(c.b);
}
