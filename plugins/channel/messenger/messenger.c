/*
 * messenger.c: the Messenger and Instagram channel types (Meta's Messenger
 * Platform).  One source, built twice: PARLEY_META_INSTAGRAM selects the
 * Instagram flavour (object "instagram", instagram:<IGSID> addresses).
 *
 * Inbound: webhooks signed with X-Hub-Signature-256 (HMAC-SHA256 of the raw
 * body with the app secret), entry[].messaging[] events: message (text,
 * attachments, quick_reply, reply_to, is_deleted), postback, reaction,
 * message_edit, delivery and read receipts; echoes of our own sends are
 * acknowledged and skipped.  The hub.challenge handshake.  Attachment URLs
 * are fetched after commit.
 *
 * Outbound: POST /{version}/{page_id}/messages: text, quick replies from
 * meta.buttons, one attachment by URL.
 */
#include <parley/fetch_policy.h>
#include <parley/provider.h>
#include <parley/provider_channel.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef PARLEY_META_INSTAGRAM
#define TYPE_NAME "instagram"
#define OBJECT    "instagram"
#define SCHEME    "instagram:"
#else
#define TYPE_NAME "messenger"
#define OBJECT    "page"
#define SCHEME    "messenger:"
#endif

struct meta {
	/* First: host, inst, api_base_url, timeout, max_media, the client, the policy, the media thread. */
	struct prov_channel ch;
	const char *page_id;
	struct prov_meta_keys graph; /* access_token, app_secret, verify_token, api_version */
};

/* Attachment URLs are signed links on Meta's CDNs (Instagram's too); they take no token. */
static const char *const media_hosts[] = {"lookaside.fbsbx.com", "*.fbcdn.net", "*.cdninstagram.com", NULL};

static const struct parley_config_key config_map[] = {
        {"page_id", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED,
         "the Page (or Instagram account) id; events for other pages are acknowledged and ignored"},
        {"access_token", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET, "the Page access token"},
        {"app_secret", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "the Meta app secret: webhooks must carry X-Hub-Signature-256 made with it"},
        {"verify_token", PARLEY_CFG_STRING, NULL, PARLEY_CFG_SECRET, "the token of the hub.challenge handshake"},
        PROV_CHANNEL_CONFIG("https://graph.facebook.com", "Graph API base URL", "25MiB"),
        {"api_version", PARLEY_CFG_STRING, "v19.0", 0, "Graph API version"},
        {"reply_window", PARLEY_CFG_DURATION, "24h", 0,
         "the standard messaging window: after this long since the customer's last message only a message tag "
         "(meta.tag) goes out; a send without one is refused before the provider"},
        {"tag_window", PARLEY_CFG_DURATION, "7d", 0,
         "how long after the customer's last message the HUMAN_AGENT tag may be used"},
        {NULL, 0, NULL, 0, NULL},
};

static void on_verify(void *data, parley_http_request *req)
{
	struct meta *m = data;
	prov_meta_handshake(m->ch.host, req, m->graph.verify_token);
}

static const char *str(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* Common fields: from, to, time (where names the event in the payload when its time is refused). */
static parley_envelope *event_envelope(struct meta *m, struct prov_batch *b, const cJSON *ev, const char *kind,
                                       const char *where)
{
	const struct parley_host *h = m->ch.host;
	parley_envelope *env = prov_batch_envelope(b, kind);
	if (!env)
		return NULL;
	const char *sender = str(cJSON_GetObjectItemCaseSensitive(ev, "sender"), "id");
	const char *recipient = str(cJSON_GetObjectItemCaseSensitive(ev, "recipient"), "id");
	if (sender) {
		prov_set_fmt(h, env, "from", SCHEME "%s", sender);
	}
	if (recipient) {
		prov_set_fmt(h, env, "to", SCHEME "%s", recipient);
	}
	prov_set_time_at(b, env, ev, "timestamp", 0.001, where);
	return env;
}

/* 1 when s is a Page-scoped or Instagram-scoped id, or a Page's: digits, as Meta issues them. */
static int numeric_id(const char *s)
{
	size_t n = strspn(s, "0123456789");
	return n >= 1 && n <= 32 && s[n] == '\0';
}

/*
 * The emoji a sticker or attachment stands for, so that its text says what
 * the customer sent: Messenger's "like" button sends one of three thumbs-up
 * stickers, Instagram's heart a like_heart attachment.
 */
static const char *attachment_emoji(const char *type, const cJSON *payload)
{
	const cJSON *sticker = cJSON_GetObjectItemCaseSensitive(payload, "sticker_id");
	if (cJSON_IsNumber(sticker)) {
		static const double like[] = {369239263222822.0, 369239343222814.0, 369239383222810.0};
		for (size_t i = 0; i < sizeof(like) / sizeof(like[0]); i++)
			if (sticker->valuedouble == like[i])
				return "\xF0\x9F\x91\x8D"; /* U+1F44D thumbs up */
	}
	if (type && strcmp(type, "like_heart") == 0)
		return "\xE2\x9D\xA4\xEF\xB8\x8F"; /* U+2764 U+FE0F red heart */
	return NULL;
}

/* The emoji of a reaction Meta names without one (older payloads carry only "reaction"). */
static const char *reaction_emoji(const char *name)
{
	static const char *const map[][2] = {
	        {"like", "\xF0\x9F\x91\x8D"},  {"love", "\xE2\x9D\xA4\xEF\xB8\x8F"}, {"haha", "\xF0\x9F\x98\x86"},
	        {"wow", "\xF0\x9F\x98\xAE"},   {"sad", "\xF0\x9F\x98\xA2"},          {"angry", "\xF0\x9F\x98\xA0"},
	        {"smile", "\xF0\x9F\x98\x8A"},
	};
	for (size_t i = 0; name && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(name, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

static void message_event(struct meta *m, struct prov_batch *b, const cJSON *ev, const cJSON *msg, const char *where)
{
	const struct parley_host *h = m->ch.host;
	const char *mid = str(msg, "mid");
	if (!mid) {
		prov_batch_refuse(b, "%s.message.mid is missing: a message needs its id", where);
		return;
	}
	int deleted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "is_deleted"));
	parley_envelope *env = event_envelope(m, b, ev, deleted ? "event" : "message", where);
	if (!env)
		return;
	if (deleted)
		prov_set_fmt(h, env, "external_id", "%s:deleted", mid);
	else
		h->envelope_set_str(env, "external_id", mid);
	cJSON *meta = cJSON_CreateObject();
	if (deleted) {
		cJSON_AddBoolToObject(meta, "deleted", 1);
		h->envelope_set_str(env, "thread_ref", mid);
	}
	prov_set_from(h, env, "text", msg, "text");
	const char *emoji = NULL;
	const cJSON *qr = cJSON_GetObjectItemCaseSensitive(msg, "quick_reply");
	if (str(qr, "payload"))
		cJSON_AddStringToObject(meta, "reply_id", str(qr, "payload"));
	const cJSON *reply_to = cJSON_GetObjectItemCaseSensitive(msg, "reply_to");
	if (str(reply_to, "mid"))
		h->envelope_set_str(env, "thread_ref", str(reply_to, "mid"));
	const cJSON *atts = cJSON_GetObjectItemCaseSensitive(msg, "attachments");
	if (cJSON_IsArray(atts) && cJSON_GetArraySize(atts) > 0) {
		cJSON *out = cJSON_CreateArray();
		const cJSON *a;
		size_t i = 0;
		cJSON_ArrayForEach(a, atts)
		{
			const char *type = str(a, "type");
			const cJSON *payload = cJSON_GetObjectItemCaseSensitive(a, "payload");
			if (type && strcmp(type, "location") == 0) {
				cJSON *loc = cJSON_AddObjectToObject(meta, "location");
				const cJSON *c = cJSON_GetObjectItemCaseSensitive(payload, "coordinates");
				cJSON_AddNumberToObject(
				        loc, "latitude",
				        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "lat")));
				cJSON_AddNumberToObject(
				        loc, "longitude",
				        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "long")));
				continue;
			}
			if (!emoji)
				emoji = attachment_emoji(type, payload);
			cJSON *att = cJSON_CreateObject();
			const char *kind = type ? type : "file";
			if (cJSON_GetObjectItemCaseSensitive(payload, "sticker_id"))
				kind = "sticker";
			else if (strcmp(kind, "file") == 0)
				kind = "document";
			cJSON_AddStringToObject(att, "kind", kind);
			const char *url = str(payload, "url");
			if (url)
				cJSON_AddStringToObject(att, "url", url);
			if (str(a, "title"))
				cJSON_AddStringToObject(att, "name", str(a, "title"));
			cJSON_AddItemToArray(out, att);
			if (url && strcmp(kind, "fallback") != 0)
				prov_batch_media(b, env, i, url);
			i++;
		}
		if (cJSON_GetArraySize(out) > 0)
			prov_set_json(h, env, "attachments", out);
		else
			cJSON_Delete(out);
	}
	if (emoji && !str(msg, "text"))
		h->envelope_set_str(env, "text", emoji);
	prov_set_json(h, env, "meta", meta);
}

static void messaging_event(struct meta *m, struct prov_batch *b, const cJSON *ev, const char *where)
{
	const struct parley_host *h = m->ch.host;
	const cJSON *v;
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ev, "message");
	if (msg && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "is_echo"))) {
		h->metric_add(m->ch.inst, "echoes_skipped_total", 1); /* our own send, already stored */
		prov_batch_ignore(b, "%s is an echo of our own send %s", where, str(msg, "mid") ? str(msg, "mid") : "");
		return;
	}
	const char *sender = str(cJSON_GetObjectItemCaseSensitive(ev, "sender"), "id");
	const char *recipient = str(cJSON_GetObjectItemCaseSensitive(ev, "recipient"), "id");
	static const char *const handled[] = {"message",  "postback", "reaction", "message_edit",
	                                      "delivery", "read",     NULL};
	int known = 0;
	for (size_t i = 0; handled[i]; i++)
		if (cJSON_GetObjectItemCaseSensitive(ev, handled[i]))
			known = 1;
	/* Some events of other kinds name the person by user_ref only (checkbox opt-ins): kept below. */
	if ((sender && !numeric_id(sender)) || (!sender && known)) {
		prov_batch_refuse(b, "%s.sender.id is %s", where, sender ? "not a numeric id" : "missing");
		return;
	}
	if (!recipient || strcmp(recipient, m->page_id) != 0) {
		/* Sent to another page or account of the same app: acknowledged, not ours to store. */
		h->metric_add(m->ch.inst, "webhook_other_account_total", 1);
		prov_batch_ignore(b, "%s is for recipient %s, not this channel's page %s", where,
		                  recipient ? recipient : "(none)", m->page_id);
		return;
	}
	if (msg) {
		message_event(m, b, ev, msg, where);
	} else if ((v = cJSON_GetObjectItemCaseSensitive(ev, "postback"))) {
		parley_envelope *env = event_envelope(m, b, ev, "message", where);
		if (!env)
			return;
		const char *mid = str(v, "mid");
		if (mid)
			prov_set_fmt(h, env, "external_id", "postback:%s", mid);
		else /* older postbacks have no mid: sender and time make it unique */
			prov_set_fmt(h, env, "external_id", "postback:%s:%.0f", sender ? sender : "",
			             cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ev, "timestamp")));
		prov_set_from(h, env, "text", v, "title");
		cJSON *meta = cJSON_CreateObject();
		if (str(v, "payload"))
			cJSON_AddStringToObject(meta, "reply_id", str(v, "payload"));
		cJSON_AddStringToObject(meta, "reply_type", "postback");
		prov_set_json(h, env, "meta", meta);
	} else if ((v = cJSON_GetObjectItemCaseSensitive(ev, "reaction"))) {
		parley_envelope *env = event_envelope(m, b, ev, "event", where);
		if (!env)
			return;
		prov_set_fmt(h, env, "external_id", "reaction:%s:%s:%.0f", str(v, "mid") ? str(v, "mid") : "",
		             str(v, "action") ? str(v, "action") : "",
		             cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(ev, "timestamp")));
		prov_set_from(h, env, "thread_ref", v, "mid");
		if (str(v, "emoji"))
			prov_set_from(h, env, "text", v, "emoji");
		else if (reaction_emoji(str(v, "reaction")) &&
		         !(str(v, "action") && strcmp(str(v, "action"), "unreact") == 0))
			h->envelope_set_str(env, "text", reaction_emoji(str(v, "reaction")));
		cJSON *meta = cJSON_CreateObject();
		cJSON_AddItemToObject(meta, "reaction", cJSON_Duplicate(v, 1));
		prov_set_json(h, env, "meta", meta);
	} else if ((v = cJSON_GetObjectItemCaseSensitive(ev, "message_edit"))) {
		parley_envelope *env = event_envelope(m, b, ev, "event", where);
		if (!env)
			return;
		prov_set_fmt(h, env, "external_id", "%s:edit:%.0f", str(v, "mid") ? str(v, "mid") : "",
		             cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(v, "num_edit")));
		prov_set_from(h, env, "thread_ref", v, "mid");
		prov_set_from(h, env, "text", v, "text");
		cJSON *meta = cJSON_CreateObject();
		cJSON_AddBoolToObject(meta, "edited", 1);
		prov_set_json(h, env, "meta", meta);
	} else if ((v = cJSON_GetObjectItemCaseSensitive(ev, "delivery"))) {
		/* One receipt per message id the delivery names. */
		const cJSON *mid;
		const cJSON *mids = cJSON_GetObjectItemCaseSensitive(v, "mids");
		if (cJSON_GetArraySize(mids) == 0)
			prov_batch_ignore(b, "%s is a delivery watermark naming no message", where);
		cJSON_ArrayForEach(mid, mids)
		{
			if (!cJSON_IsString(mid)) {
				prov_batch_refuse(b, "%s.delivery.mids holds a value that is not a message id", where);
				return;
			}
			parley_envelope *env = event_envelope(m, b, ev, "status", where);
			if (!env)
				return;
			prov_set_fmt(h, env, "external_id", "%s:delivered", mid->valuestring);
			h->envelope_set_str(env, "thread_ref", mid->valuestring);
			h->envelope_set_str(env, "status", "delivered");
		}
	} else if ((v = cJSON_GetObjectItemCaseSensitive(ev, "read"))) {
		/* A read watermark covers every earlier message; kept for subscribers. */
		parley_envelope *env = event_envelope(m, b, ev, "status", where);
		if (!env)
			return;
		prov_set_fmt(h, env, "external_id", "read:%s:%.0f", sender ? sender : "",
		             cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(v, "watermark")));
		h->envelope_set_str(env, "status", "read");
		prov_set_from(h, env, "thread_ref", v, "mid");
		cJSON *meta = cJSON_CreateObject();
		cJSON_AddItemToObject(meta, "read", cJSON_Duplicate(v, 1));
		prov_set_json(h, env, "meta", meta);
	} else {
		parley_envelope *env = event_envelope(m, b, ev, "event", where);
		if (!env)
			return;
		char ext[80];
		/* No id of its own: the content names it, so a redelivery is stored once. */
		prov_content_id(h, "event", ev, ext, sizeof(ext));
		h->envelope_set_str(env, "external_id", ext);
		cJSON *meta = cJSON_CreateObject();
		cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(ev, 1));
		prov_set_json(h, env, "meta", meta);
		h->log(m->ch.inst, PARLEY_LOG_INFO, "%s, of a kind not understood, kept in meta.raw as %s", where, ext);
	}
}

static void on_post(void *data, parley_http_request *req)
{
	struct meta *m = data;
	const struct parley_host *h = m->ch.host;
	const cJSON *entries;
	cJSON *doc = prov_meta_body(h, m->ch.inst, req, m->graph.app_secret, "Messenger Platform", &entries);
	if (!doc)
		return;
	struct prov_batch *b = prov_batch_new(h, m->ch.inst, req, m->ch.media);
	const char *object = str(doc, "object");
	if (!object || strcmp(object, OBJECT) != 0)
		prov_batch_ignore(b, "webhook object '%s' where '" OBJECT "' was expected", object ? object : "(none)");
	const cJSON *entry, *ev;
	const cJSON *ours = object && strcmp(object, OBJECT) == 0 ? entries : NULL;
	int ei = 0;
	cJSON_ArrayForEach(entry, ours)
	{
		const char *id = str(entry, "id");
		if (!id || strcmp(id, m->page_id) != 0) {
			h->metric_add(m->ch.inst, "webhook_other_account_total", 1);
			prov_batch_ignore(b, "entry[%d] is for page %s, not %s", ei, id ? id : "(none)", m->page_id);
			ei++;
			continue;
		}
		const cJSON *events = cJSON_GetObjectItemCaseSensitive(entry, "messaging");
		if (!cJSON_IsArray(events))
			prov_batch_ignore(b, "entry[%d] has no 'messaging' events (standby or changes are not read)",
			                  ei);
		int k = 0;
		cJSON_ArrayForEach(ev, events)
		{
			char where[64];
			snprintf(where, sizeof(where), "entry[%d].messaging[%d]", ei, k++);
			messaging_event(m, b, ev, where);
		}
		ei++;
	}
	cJSON_Delete(doc);
	prov_batch_finish(b);
}

static int fetch_url(void *arg, struct prov_client *client, const char *url, struct prov_http *out)
{
	struct meta *m = arg;
	return prov_fetch(client, &m->ch.policy, url, NULL, out);
}

static int transient_code(int code)
{
	return code == 1 || code == 2 || code == 4 || code == 17 || code == 32 || code == 613 || code == 80006;
}

static int meta_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct meta *m = data;
	const struct parley_host *h = m->ch.host;
	const char *to = h->envelope_get_str(env, "to");
	size_t sl = strlen(SCHEME);
	if (!to || strncmp(to, SCHEME, sl) != 0 || !to[sl]) {
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text), "'to' must be " SCHEME "<id>");
		return 0;
	}
	char *tpl = h->envelope_get_json(env, "template");
	free(tpl);
	if (tpl) {
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text),
		         "this channel type has no template messages: outside the 24-hour window send text with a "
		         "message "
		         "tag (meta.tag)");
		return 0;
	}
	char *metas = h->envelope_get_json(env, "meta");
	cJSON *mt = metas ? cJSON_Parse(metas) : NULL;
	free(metas);
	/* Message tags (Meta's list): a send outside the standard window names why it may still go. */
	static const char *const tags[] = {"CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE",
	                                   "HUMAN_AGENT", NULL};
	const char *tag = str(mt, "tag");
	int known = 0;
	for (size_t i = 0; tag && tags[i]; i++)
		known |= strcmp(tag, tags[i]) == 0;
	if (tag && !known) {
		cJSON_Delete(mt);
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(
		        res->error_text, sizeof(res->error_text),
		        "meta.tag must be CONFIRMED_EVENT_UPDATE, POST_PURCHASE_UPDATE, ACCOUNT_UPDATE or HUMAN_AGENT");
		return 0;
	}
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(cJSON_AddObjectToObject(req, "recipient"), "id", to + sl);
	cJSON_AddStringToObject(req, "messaging_type", tag ? "MESSAGE_TAG" : "RESPONSE");
	if (tag)
		cJSON_AddStringToObject(req, "tag", tag);
	cJSON *msg = cJSON_AddObjectToObject(req, "message");
	const char *text = h->envelope_get_str(env, "text");
	char *atts = h->envelope_get_json(env, "attachments");
	cJSON *a = atts ? cJSON_Parse(atts) : NULL;
	free(atts);
	const cJSON *att = cJSON_GetArrayItem(a, 0);
	if (att) {
		const char *ct = str(att, "content_type");
		const char *type = "file";
		if (ct && strncmp(ct, "image/", 6) == 0)
			type = "image";
		else if (ct && strncmp(ct, "video/", 6) == 0)
			type = "video";
		else if (ct && strncmp(ct, "audio/", 6) == 0)
			type = "audio";
		cJSON *at = cJSON_AddObjectToObject(msg, "attachment");
		cJSON_AddStringToObject(at, "type", type);
		cJSON *payload = cJSON_AddObjectToObject(at, "payload");
		cJSON_AddStringToObject(payload, "url", str(att, "url") ? str(att, "url") : "");
		cJSON_AddBoolToObject(payload, "is_reusable", 1);
	} else {
		cJSON_AddStringToObject(msg, "text", text ? text : "");
	}
	const cJSON *buttons = cJSON_GetObjectItemCaseSensitive(mt, "buttons");
	if (cJSON_IsArray(buttons) && cJSON_GetArraySize(buttons) > 0) {
		cJSON *qrs = cJSON_AddArrayToObject(msg, "quick_replies");
		const cJSON *bt;
		cJSON_ArrayForEach(bt, buttons)
		{
			cJSON *q = cJSON_CreateObject();
			cJSON_AddStringToObject(q, "content_type", "text");
			cJSON_AddStringToObject(q, "title", str(bt, "title") ? str(bt, "title") : "");
			cJSON_AddStringToObject(q, "payload",
			                        str(bt, "id") ? str(bt, "id")
			                                      : (str(bt, "title") ? str(bt, "title") : ""));
			cJSON_AddItemToArray(qrs, q);
		}
	}
	cJSON_Delete(a);
	cJSON_Delete(mt);
	char *body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	char *tok = prov_urlencode(m->graph.access_token);
	char url[2048];
	snprintf(url, sizeof(url), "%s/%s/%s/messages?access_token=%s", m->ch.base, m->graph.version, m->page_id, tok);
	free(tok);
	const char *hdrs[] = {"Content-Type: application/json", NULL};
	struct prov_http r;
	prov_request(&m->ch.client, "POST", url, hdrs, body, strlen(body), NULL, &r);
	free(body);
	cJSON *j = cJSON_Parse(r.body ? r.body : "");
	if (r.status >= 200 && r.status < 300) {
		prov_classify(&r, NULL, NULL, res);
		if (str(j, "message_id"))
			snprintf(res->provider_id, sizeof(res->provider_id), "%s", str(j, "message_id"));
	} else {
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
		const cJSON *sub = cJSON_GetObjectItemCaseSensitive(err, "error_subcode");
		char cbuf[48] = "";
		if (cJSON_IsNumber(code))
			snprintf(cbuf, sizeof(cbuf), cJSON_IsNumber(sub) ? "%d/%d" : "%d", code->valueint,
			         cJSON_IsNumber(sub) ? sub->valueint : 0);
		prov_classify_code(&r, cbuf, str(err, "message"),
		                   cJSON_IsNumber(code) && transient_code(code->valueint), res);
	}
	cJSON_Delete(j);
	prov_http_free(&r);
	return 0;
}

static int meta_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	int rv = prov_channel_new(data, sizeof(struct meta), h, inst, media_hosts, NULL, errmsg);
	if (rv != 0)
		return rv;
	struct meta *m = *data;
	m->page_id = h->config_str(inst, "page_id");
	prov_meta_keys_read(h, inst, &m->graph);
	return 0;
}

static int meta_start(void *data, char **errmsg)
{
	struct meta *m = data;
	(void)errmsg;
	/* POST: the webhook; GET: the verification handshake. */
	static const struct prov_route routes[] = {{"POST", "", on_post}, {"GET", "", on_verify}, {NULL, NULL, NULL}};
	return prov_channel_start(&m->ch, fetch_url, m, routes);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = TYPE_NAME,
        .version = "1.0.0",
        .description =
                "Meta " TYPE_NAME ": messages, attachments, quick replies, postbacks, reactions, edits, receipts",
        .config = config_map,
        .init = prov_plugin_init,
        .fini = prov_plugin_fini,
        .instance_create = meta_create,
        .instance_start = meta_start,
        .instance_stop = prov_channel_instance_stop,
        .instance_destroy = prov_channel_instance_destroy,
        .channel_send = meta_send,
        .check_config = prov_policy_check_config,
};

PARLEY_PLUGIN_DEFINE(plugin)
