/*
 * inbound.c: LINE webhook requests into envelopes.
 *
 * A request is {"destination": <bot user id>, "events": [...]}.  Each
 * event becomes one envelope keyed by its webhookEventId: message events
 * (text, image, video, audio, file, location, sticker) and postbacks are
 * messages; follow, unfollow and unsend are events; any other type
 * (join, memberJoined, beacon, accountLink, membership, ...) is an event
 * kept whole in meta.raw.  A one-to-one chat is line:<user id>; in a group
 * or multi-person chat the group (line:C...) or room (line:R...) is the
 * sender, as replies go to it, and the member is meta.group_sender.
 */
#include "line.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a part of the payload is, for the reason of a refusal: "events[2]". */
struct at {
	struct line *l;
	struct prov_batch *b;
	const cJSON *ev;
	char where[32];
};

static const char *str_in(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* 1 when s is a ULID, as LINE's webhookEventId is: 26 characters of Crockford's base32. */
static int ulid(const char *s)
{
	return s && strlen(s) == 26 && strspn(s, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == 26;
}

/* 1 when s is a token LINE issues (reply and quote tokens): 1-512 printable ASCII characters, no spaces. */
static int token(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	return n >= 1 && n <= 512;
}

/*
 * The chat the event came from (group, room or user id) into chat, and the
 * member who wrote into member ("" when none): 0, -1 after refusing the
 * batch when an id is not one LINE issues.  No source: chat "".
 */
static int source_ids(struct at *a, char *chat, char *member)
{
	const cJSON *src = cJSON_GetObjectItemCaseSensitive(a->ev, "source");
	static const struct {
		const char *key;
		char prefix;
		const char *what;
	} ids[] = {{"groupId", 'C', "group"}, {"roomId", 'R', "room"}, {"userId", 'U', "user"}};
	chat[0] = member[0] = '\0';
	if (src && !cJSON_IsObject(src)) {
		prov_batch_refuse(a->b, "%s.source is not an object", a->where);
		return -1;
	}
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, ids[i].key);
		if (!v)
			continue;
		if (!cJSON_IsString(v) || v->valuestring[0] != ids[i].prefix || !line_chat_id(v->valuestring)) {
			prov_batch_refuse(a->b, "%s.source.%s is not a LINE %s id (%c and 32 hex digits)", a->where,
			                  ids[i].key, ids[i].what, ids[i].prefix);
			return -1;
		}
		if (!chat[0])
			memcpy(chat, v->valuestring, 34);
		else
			memcpy(member, v->valuestring, 34);
	}
	return 0;
}

/* Copy member k of o into meta when present. */
static void keep(cJSON *meta, const char *name, const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (v)
		cJSON_AddItemToObject(meta, name, cJSON_Duplicate(v, 1));
}

struct media_type {
	const char *type, *kind, *content_type;
};

/* LINE documents the formats it hands over: JPEG images, MP4 video, M4A audio. */
static const struct media_type media_types[] = {{"image", "image", "image/jpeg"},
                                                {"video", "video", "video/mp4"},
                                                {"audio", "audio", "audio/x-m4a"},
                                                {"file", "document", NULL},
                                                {NULL, NULL, NULL}};

/* An image, video, audio or file message's attachment, and its download after the commit. */
static void add_media(struct at *a, parley_envelope *env, const struct media_type *mt, const cJSON *msg, const char *id)
{
	const struct parley_host *h = a->l->host;
	const cJSON *cp = cJSON_GetObjectItemCaseSensitive(msg, "contentProvider");
	const char *provider = str_in(cp, "type");
	const char *url = str_in(cp, "originalContentUrl");
	long long size = 0, ms = 0;
	if (cJSON_GetObjectItemCaseSensitive(msg, "fileSize") &&
	    prov_json_int(msg, "fileSize", 0, 1LL << 50, &size) != 0) {
		prov_batch_refuse(a->b, "%s.message.fileSize is not a size in bytes", a->where);
		return;
	}
	if (cJSON_GetObjectItemCaseSensitive(msg, "duration") &&
	    prov_json_int(msg, "duration", 0, 1LL << 40, &ms) != 0) {
		prov_batch_refuse(a->b, "%s.message.duration is not a length in milliseconds", a->where);
		return;
	}
	if (provider && strcmp(provider, "line") != 0 && strcmp(provider, "external") != 0) {
		prov_batch_refuse(a->b, "%s.message.contentProvider.type is neither 'line' nor 'external'", a->where);
		return;
	}
	int external = provider && strcmp(provider, "external") == 0;
	cJSON *att = cJSON_CreateObject();
	cJSON_AddStringToObject(att, "kind", mt->kind);
	if (mt->content_type)
		cJSON_AddStringToObject(att, "content_type", mt->content_type);
	cJSON_AddStringToObject(att, "provider_id", id);
	if (external && url)
		cJSON_AddStringToObject(att, "url", url);
	if (str_in(msg, "fileName"))
		cJSON_AddStringToObject(att, "name", str_in(msg, "fileName"));
	if (size)
		cJSON_AddNumberToObject(att, "provider_size", (double)size);
	if (ms)
		cJSON_AddNumberToObject(att, "duration_ms", (double)ms);
	cJSON *list = cJSON_CreateArray();
	cJSON_AddItemToArray(list, att);
	prov_set_json(h, env, "attachments", list);
	if (size && (uint64_t)size > a->l->max_media) {
		h->log(a->l->inst, PARLEY_LOG_INFO, "file of message %s (%lld bytes) over max_media: not downloaded",
		       id, size);
	} else if (external && url) {
		char *spec = malloc(strlen(url) + 5);
		if (spec) {
			snprintf(spec, strlen(url) + 5, "url:%s", url);
			prov_batch_media(a->b, env, 0, spec);
			free(spec);
		}
	} else if (!external) {
		char spec[64];
		snprintf(spec, sizeof(spec), "id:%s", id);
		prov_batch_media(a->b, env, 0, spec);
	}
}

/* A location's text: its title, then its address, each when given. */
static int location(struct at *a, parley_envelope *env, const cJSON *msg, cJSON *meta)
{
	const cJSON *lat = cJSON_GetObjectItemCaseSensitive(msg, "latitude");
	const cJSON *lon = cJSON_GetObjectItemCaseSensitive(msg, "longitude");
	if (!cJSON_IsNumber(lat) || lat->valuedouble < -90 || lat->valuedouble > 90 || !cJSON_IsNumber(lon) ||
	    lon->valuedouble < -180 || lon->valuedouble > 180) {
		prov_batch_refuse(a->b,
		                  "%s.message needs 'latitude' (-90 to 90) and 'longitude' (-180 to 180) as numbers",
		                  a->where);
		return -1;
	}
	cJSON *loc = cJSON_AddObjectToObject(meta, "location");
	cJSON_AddNumberToObject(loc, "latitude", lat->valuedouble);
	cJSON_AddNumberToObject(loc, "longitude", lon->valuedouble);
	keep(loc, "title", msg, "title");
	keep(loc, "address", msg, "address");
	const char *title = str_in(msg, "title"), *addr = str_in(msg, "address");
	if ((title && title[0]) || (addr && addr[0]))
		prov_set_fmt(a->l->host, env, "text", "%s%s%s", title ? title : "",
		             title && title[0] && addr && addr[0] ? ", " : "", addr ? addr : "");
	return 0;
}

/* The message of a message event into env and meta; 0 when its type is one LINE documents. */
static int message_body(struct at *a, parley_envelope *env, const cJSON *msg, const char *id, cJSON *meta)
{
	const struct parley_host *h = a->l->host;
	const char *type = str_in(msg, "type");
	if (strcmp(type, "text") == 0) {
		prov_set_from(h, env, "text", msg, "text");
		keep(meta, "emojis", msg, "emojis");
		keep(meta, "mention", msg, "mention");
		return 0;
	}
	if (strcmp(type, "location") == 0) {
		location(a, env, msg, meta); /* a refusal is the batch's */
		return 0;
	}
	if (strcmp(type, "sticker") == 0) {
		/* Stickers are LINE's own artwork: named, not downloaded (the content API does not serve them). */
		cJSON *st = cJSON_AddObjectToObject(meta, "sticker");
		keep(st, "package_id", msg, "packageId");
		keep(st, "sticker_id", msg, "stickerId");
		keep(st, "resource_type", msg, "stickerResourceType");
		keep(st, "keywords", msg, "keywords");
		prov_set_from(h, env, "text", msg, "text");
		return 0;
	}
	for (size_t i = 0; media_types[i].type; i++)
		if (strcmp(type, media_types[i].type) == 0) {
			keep(meta, "image_set", msg, "imageSet");
			add_media(a, env, &media_types[i], msg, id);
			return 0;
		}
	return -1;
}

static void message_event(struct at *a, parley_envelope *env, cJSON *meta)
{
	const struct parley_host *h = a->l->host;
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(a->ev, "message");
	const char *type = str_in(msg, "type"), *id = str_in(msg, "id");
	if (!type || !id || !id[0] || strspn(id, "0123456789") != strlen(id) || strlen(id) > 32) {
		prov_batch_refuse(a->b, "%s.message needs 'type' and 'id' (digits) as strings", a->where);
		return;
	}
	const char *quote = str_in(msg, "quoteToken"), *quoted = str_in(msg, "quotedMessageId");
	if ((quote && !token(quote)) || (quoted && (!quoted[0] || strspn(quoted, "0123456789") != strlen(quoted)))) {
		prov_batch_refuse(a->b, "%s.message.%s is not one LINE issues", a->where,
		                  quote && !token(quote) ? "quoteToken" : "quotedMessageId");
		return;
	}
	cJSON_AddStringToObject(meta, "message_id", id);
	cJSON_AddStringToObject(meta, "type", type);
	if (quote)
		cJSON_AddStringToObject(meta, "quote_token", quote);
	if (quoted)
		h->envelope_set_str(env, "thread_ref", quoted);
	if (message_body(a, env, msg, id, meta) != 0) {
		/* Kept whole, never dropped: a later version may understand it. */
		h->log(a->l->inst, PARLEY_LOG_WARN, "message %s of unknown type '%s' kept in meta.raw", id, type);
		cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(a->ev, 1));
	}
}

/* The kind an event type becomes: message, event, or NULL for one without a handler (kept in meta.raw). */
static const char *event_kind(const char *type)
{
	static const char *const messages[] = {"message", "postback", NULL};
	static const char *const events[] = {"follow", "unfollow", "unsend", NULL};
	for (size_t i = 0; messages[i]; i++)
		if (strcmp(type, messages[i]) == 0)
			return "message";
	for (size_t i = 0; events[i]; i++)
		if (strcmp(type, events[i]) == 0)
			return "event";
	return NULL;
}

static void event_envelope(struct at *a)
{
	struct line *l = a->l;
	const struct parley_host *h = l->host;
	const cJSON *ev = a->ev;
	const char *type = str_in(ev, "type"), *eid = str_in(ev, "webhookEventId");
	if (!cJSON_IsObject(ev) || !type || !ulid(eid)) {
		prov_batch_refuse(a->b, "%s needs 'type' and 'webhookEventId' (a ULID) as strings", a->where);
		return;
	}
	long long at_ms;
	if (prov_json_int(ev, "timestamp", 1, 253402300799999LL, &at_ms) != 0) {
		prov_batch_refuse(a->b, "%s.timestamp is %s", a->where,
		                  cJSON_GetObjectItemCaseSensitive(ev, "timestamp") ? "not a time in milliseconds"
		                                                                    : "missing");
		return;
	}
	const char *reply = str_in(ev, "replyToken"), *mode = str_in(ev, "mode");
	const cJSON *redelivery = cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetObjectItemCaseSensitive(ev, "deliveryContext"), "isRedelivery");
	if (reply && !token(reply)) {
		prov_batch_refuse(a->b, "%s.replyToken is not a token LINE issues", a->where);
		return;
	}
	char chat[34], member[34];
	if (source_ids(a, chat, member) != 0)
		return;
	const char *kind = event_kind(type);
	/* A message no chat can be answered in has no sender to thread it to: an event, kept whole. */
	int orphan = kind && strcmp(kind, "message") == 0 && !chat[0];
	parley_envelope *env = prov_batch_envelope(a->b, kind && !orphan ? kind : "event");
	if (!env)
		return;
	h->envelope_set_str(env, "external_id", eid);
	prov_set_time_at(a->b, env, ev, "timestamp", 0.001, a->where);
	if (chat[0])
		prov_set_fmt(h, env, "from", "line:%s", chat);
	prov_set_fmt(h, env, "to", "line:%s", l->bot_user_id);
	cJSON *meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "event_type", type);
	if (member[0])
		cJSON_AddStringToObject(meta, "group_sender", member);
	if (mode)
		cJSON_AddStringToObject(meta, "mode", mode);
	if (cJSON_IsTrue(redelivery))
		cJSON_AddBoolToObject(meta, "redelivery", 1);
	if (reply) {
		cJSON_AddStringToObject(meta, "reply_token", reply);
		/* In standby mode another channel answers the chat: its token is not ours to use. */
		if (chat[0] && (!mode || strcmp(mode, "standby") != 0))
			line_reply_put(l, chat, reply, (int64_t)at_ms);
	}
	if (!kind || orphan) {
		h->log(l->inst, PARLEY_LOG_INFO, "event %s of type '%s'%s kept in meta.raw", eid, type,
		       orphan ? " from no chat" : "");
		cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(ev, 1));
	} else if (strcmp(type, "message") == 0) {
		message_event(a, env, meta);
	} else if (strcmp(type, "postback") == 0) {
		const cJSON *pb = cJSON_GetObjectItemCaseSensitive(ev, "postback");
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(pb, "data"))) {
			prov_batch_refuse(a->b, "%s.postback.data is missing or not a string", a->where);
		} else {
			prov_set_from(h, env, "text", pb, "data");
			keep(meta, "reply_id", pb, "data");
			keep(meta, "postback_params", pb, "params");
		}
	} else if (strcmp(type, "follow") == 0) {
		const cJSON *unblocked =
		        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev, "follow"), "isUnblocked");
		if (cJSON_IsBool(unblocked))
			cJSON_AddBoolToObject(meta, "is_unblocked", cJSON_IsTrue(unblocked));
	} else if (strcmp(type, "unsend") == 0) {
		prov_set_from(h, env, "thread_ref", cJSON_GetObjectItemCaseSensitive(ev, "unsend"), "messageId");
	}
	prov_set_json(h, env, "meta", meta);
}

/* 1 when header is the base64 HMAC-SHA256 of body with secret (constant time). */
static int signature_ok(const struct parley_host *h, const char *secret, const char *header, const void *body,
                        size_t len)
{
	unsigned char mac[32];
	char want[48];
	if (!header || strlen(header) != 44)
		return 0;
	h->hmac_sha256(secret, strlen(secret), body, len, mac);
	prov_base64(mac, sizeof(mac), want);
	return h->ct_equal(want, header, 44);
}

void line_on_post(void *data, parley_http_request *req)
{
	struct line *l = data;
	const struct parley_host *h = l->host;
	size_t len;
	const char *body = h->http_body(req, &len);
	if (!signature_ok(h, l->secret, h->http_header(req, "X-Line-Signature"), body, len)) {
		h->metric_add(l->inst, "webhook_bad_signature_total", 1);
		prov_respond_error(h, req, 401,
		                   "bad or missing X-Line-Signature (base64 HMAC-SHA256 of the body with the channel "
		                   "secret)");
		return;
	}
	cJSON *doc = prov_json_body(h, req, body, len);
	if (!doc)
		return;
	const char *dest = str_in(doc, "destination");
	const cJSON *events = cJSON_GetObjectItemCaseSensitive(doc, "events");
	if (!cJSON_IsObject(doc) || !cJSON_IsArray(events) || !dest || dest[0] != 'U' || !line_chat_id(dest)) {
		cJSON_Delete(doc);
		prov_respond_error(h, req, 400,
		                   "not a LINE webhook: expected an object with 'destination' (a bot user id) and an "
		                   "'events' list");
		return;
	}
	struct prov_batch *b = prov_batch_new(h, l->inst, req, l->media);
	if (strcmp(dest, l->bot_user_id) != 0) {
		/* Another bot of the same provider: acknowledged, not ours to store. */
		h->metric_add(l->inst, "webhook_other_account_total", 1);
		prov_batch_ignore(b, "a request for bot %s, not %s", dest, l->bot_user_id);
	} else if (cJSON_GetArraySize(events) == 0) {
		prov_batch_ignore(b, "a request without events (LINE's check of the webhook URL)");
	}
	struct at a = {l, b, NULL, ""};
	const cJSON *ours = strcmp(dest, l->bot_user_id) == 0 ? events : NULL;
	int i = 0;
	cJSON_ArrayForEach(a.ev, ours)
	{
		snprintf(a.where, sizeof(a.where), "events[%d]", i++);
		event_envelope(&a);
	}
	cJSON_Delete(doc);
	prov_batch_finish(b);
}
