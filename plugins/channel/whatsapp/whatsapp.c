/*
 * whatsapp.c: the WhatsApp Cloud API channel type.
 *
 * Inbound: Meta's webhook (POST, X-Hub-Signature-256 = HMAC-SHA256 of the raw
 * body with the app secret) carrying entry[].changes[].value with messages[]
 * and statuses[]; the verification handshake (GET hub.challenge).  Media is
 * fetched after commit: GET /{version}/{media-id} for its URL, then the URL,
 * both with the access token.
 *
 * Outbound: POST /{version}/{phone_number_id}/messages: text, media by link,
 * and reply buttons (meta.buttons = [{id, title}]): up to three as reply
 * buttons, four to ten as a list message (its button labelled
 * meta.list_button, "Choose" when absent), more as the text alone; and
 * template messages (the envelope's `template`: name, language,
 * header/body parameters, buttons), the one kind the core lets out after
 * the 24-hour window (reply_window).
 */
#include <parley/fetch_policy.h>
#include <parley/provider.h>
#include <parley/provider_channel.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct whatsapp {
	/* First: host, inst, api_base_url, timeout, max_media, the client, the policy, the media thread. */
	struct prov_channel ch;
	const char *phone_number_id;
	struct prov_meta_keys graph; /* access_token, app_secret, verify_token, api_version */
	char auth[512];
	int groups; /* group messages stored (the group is the conversation) or ignored */
};

/* The Graph API's media lookup answers a lookaside.fbsbx.com URL, which takes the access token. */
static const char *const media_hosts[] = {"lookaside.fbsbx.com", NULL};

static const struct parley_config_key config_map[] = {
        {"phone_number_id", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED,
         "the business phone number's id; payloads for other numbers are acknowledged and ignored"},
        {"access_token", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "Graph API token (system user) for sending and media"},
        {"app_secret", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "the Meta app secret: webhooks must carry X-Hub-Signature-256 made with it"},
        {"verify_token", PARLEY_CFG_STRING, NULL, PARLEY_CFG_SECRET,
         "the token Meta sends in the hub.challenge handshake"},
        PROV_CHANNEL_CONFIG("https://graph.facebook.com", "Graph API base URL", "16MiB"),
        {"api_version", PARLEY_CFG_STRING, "v19.0", 0, "Graph API version"},
        {"reply_window", PARLEY_CFG_DURATION, "24h", 0,
         "the customer-service window: after this long since the customer's last message only a template goes out "
         "(Meta's rule; a send without one is refused before the provider)"},
        {"groups", PARLEY_CFG_BOOL, "false", 0,
         "store messages of WhatsApp groups (Groups API), the group as the conversation; else they are logged and "
         "ignored"},
        {NULL, 0, NULL, 0, NULL},
};

static const char *const media_kinds[] = {"image", "audio", "video", "document", "sticker", NULL};

static void on_verify(void *data, parley_http_request *req)
{
	struct whatsapp *w = data;
	prov_meta_handshake(w->ch.host, req, w->graph.verify_token);
}

/* Attachments and media jobs for image/audio/video/document/sticker. */
static void add_media(struct whatsapp *w, struct prov_batch *b, parley_envelope *env, const char *type, const cJSON *m)
{
	const struct parley_host *h = w->ch.host;
	cJSON *att = cJSON_CreateObject();
	const char *mime = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "mime_type"));
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "id"));
	const char *fname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "filename"));
	int voice = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "voice"));
	cJSON_AddStringToObject(att, "kind", voice ? "voice" : type);
	if (mime)
		cJSON_AddStringToObject(att, "content_type", mime);
	if (id)
		cJSON_AddStringToObject(att, "provider_id", id);
	if (fname)
		cJSON_AddStringToObject(att, "name", fname);
	cJSON *arr = cJSON_CreateArray();
	cJSON_AddItemToArray(arr, att);
	char *s = cJSON_PrintUnformatted(arr);
	h->envelope_set_json(env, "attachments", s);
	free(s);
	cJSON_Delete(arr);
	prov_set_from(h, env, "text", m, "caption");
	if (id)
		prov_batch_media(b, env, 0, id);
}

/* 1 when s is a wa_id: an E.164 number without its '+', 1-15 digits. */
static int wa_number(const char *s)
{
	size_t n = strspn(s, "0123456789");
	return n >= 1 && n <= 15 && s[n] == '\0';
}

static int wa_bsuid(const char *s)
{
	return prov_whatsapp_bsuid(s);
}

/* 1 when s names a WhatsApp user: a phone number or a BSUID. */
static int wa_user(const char *s)
{
	return wa_number(s) || wa_bsuid(s);
}

/*
 * The business number as a URN: display_phone_number may be written for
 * people ("+1 555-078-3881"); its digits are the number.  0, or -1 when it
 * is not 1-15 digits once spaces, '+', '-', '.' and parentheses are gone.
 */
static int business_urn(const char *display, char *out, size_t outlen)
{
	char digits[16];
	size_t n = 0;
	for (const char *p = display; *p; p++) {
		if (isdigit((unsigned char)*p)) {
			if (n == 15)
				return -1;
			digits[n++] = *p;
		} else if (!strchr(" +-.()", *p)) {
			return -1;
		}
	}
	if (n == 0)
		return -1;
	digits[n] = '\0';
	snprintf(out, outlen, "whatsapp:%s", digits);
	return 0;
}

/* The text of a location: its name, then its address unless the address already starts with the name. */
static void location_text(const struct parley_host *h, parley_envelope *env, const cJSON *body)
{
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "name"));
	const char *addr = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "address"));
	if (name && !name[0])
		name = NULL;
	if (addr && !addr[0])
		addr = NULL;
	if (name && addr && strncmp(addr, name, strlen(name)) == 0)
		name = NULL;
	if (name || addr)
		prov_set_fmt(h, env, "text", "%s%s%s", name ? name : "", name && addr ? ", " : "", addr ? addr : "");
}

static void message_envelope(struct whatsapp *w, struct prov_batch *b, const cJSON *m, const char *to_urn,
                             const cJSON *contacts, const char *where)
{
	const struct parley_host *h = w->ch.host;
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "type"));
	const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "from"));
	const char *user_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "from_user_id"));
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "id"));
	const char *group = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "group_id"));
	if (!type || !id) {
		/* A message the channel cannot key is refused, not acknowledged and lost. */
		prov_batch_refuse(b, "%s needs 'type' and 'id' as strings", where);
		return;
	}
	if (from && !wa_user(from)) {
		prov_batch_refuse(b, "%s.from is neither a phone number (1-15 digits) nor a business-scoped user id",
		                  where);
		return;
	}
	if (user_id && !wa_bsuid(user_id)) {
		prov_batch_refuse(b, "%s.from_user_id is not a business-scoped user id (CC.<letters and digits>)",
		                  where);
		return;
	}
	/* A user with a username and no shared number is named by the BSUID alone, here or in contacts[]. */
	const cJSON *c;
	if (!from && !user_id && cJSON_GetArraySize(contacts) == 1)
		user_id = cJSON_GetStringValue(
		        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(contacts, 0), "user_id"));
	const char *sender = from ? from : user_id;
	if (group && !w->groups) {
		prov_batch_ignore(b,
		                  "message %s to WhatsApp group %s: groups are not enabled for this channel (set "
		                  "groups: true to store them)",
		                  id, group);
		return;
	}
	int reaction = strcmp(type, "reaction") == 0;
	parley_envelope *env = prov_batch_envelope(b, reaction || !sender ? "event" : "message");
	if (!env)
		return;
	cJSON *meta = cJSON_CreateObject();
	if (group) {
		/* The group is the conversation: replies go to it, not to the member who wrote. */
		prov_set_fmt(h, env, "from", "whatsapp-group:%s", group);
		cJSON_AddStringToObject(meta, "group_id", group);
		if (sender)
			cJSON_AddStringToObject(meta, "group_sender", sender);
	} else if (sender) {
		prov_set_fmt(h, env, "from", "whatsapp:%s", sender);
	} else {
		/* No sender to thread it to: kept whole as an event, never lost. */
		h->log(w->ch.inst, PARLEY_LOG_WARN,
		       "message %s has no 'from' nor user id: kept as an event in meta.raw", id);
		cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(m, 1));
	}
	if (to_urn)
		h->envelope_set_str(env, "to", to_urn);
	h->envelope_set_str(env, "external_id", id);
	prov_set_time_at(b, env, m, "timestamp", 1, where);
	const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(m, "context");
	prov_set_from(h, env, "thread_ref", ctx, "id");

	cJSON_AddStringToObject(meta, "type", type);
	if (user_id)
		cJSON_AddStringToObject(meta, "user_id", user_id);
	cJSON_ArrayForEach(c, contacts)
	{
		const char *wa = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "wa_id"));
		const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "user_id"));
		const cJSON *profile = cJSON_GetObjectItemCaseSensitive(c, "profile");
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(profile, "name"));
		const char *uname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(profile, "username"));
		int same = sender && ((wa && strcmp(wa, sender) == 0) || (uid && strcmp(uid, sender) == 0));
		if (same && name && !cJSON_GetObjectItemCaseSensitive(meta, "contact_name"))
			cJSON_AddStringToObject(meta, "contact_name", name);
		if (same && uname && !cJSON_GetObjectItemCaseSensitive(meta, "username"))
			cJSON_AddStringToObject(meta, "username", uname);
		if (same && uid && !user_id)
			cJSON_AddStringToObject(meta, "user_id", uid);
	}
	const cJSON *body = cJSON_GetObjectItemCaseSensitive(m, type);
	int known = 1;
	if (strcmp(type, "text") == 0) {
		prov_set_from(h, env, "text", body, "body");
	} else if (strcmp(type, "location") == 0) {
		cJSON_AddItemToObject(meta, "location", cJSON_Duplicate(body, 1));
		location_text(h, env, body);
	} else if (strcmp(type, "contacts") == 0) {
		cJSON_AddItemToObject(meta, "contacts", cJSON_Duplicate(body, 1));
		const cJSON *first = cJSON_GetArrayItem(body, 0);
		prov_set_from(h, env, "text", cJSON_GetObjectItemCaseSensitive(first, "name"), "formatted_name");
	} else if (strcmp(type, "button") == 0) {
		prov_set_from(h, env, "text", body, "text");
		const char *payload = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "payload"));
		if (payload)
			cJSON_AddStringToObject(meta, "reply_id", payload);
	} else if (strcmp(type, "interactive") == 0) {
		const char *itype = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "type"));
		const cJSON *reply = itype ? cJSON_GetObjectItemCaseSensitive(body, itype) : NULL;
		if (itype)
			cJSON_AddStringToObject(meta, "reply_type", itype);
		if (itype && strcmp(itype, "nfm_reply") == 0) {
			/* A Flow's answer: the form's fields are in response_json, a JSON text. */
			prov_set_from(h, env, "text", reply, "body");
			const char *rj = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "response_json"));
			cJSON *resp = rj ? cJSON_Parse(rj) : NULL;
			if (cJSON_IsObject(resp))
				cJSON_AddItemToObject(meta, "flow_response", resp);
			else
				cJSON_Delete(resp);
			const char *fname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "name"));
			if (fname)
				cJSON_AddStringToObject(meta, "flow_name", fname);
			cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(m, 1));
		} else if (itype && (strcmp(itype, "button_reply") == 0 || strcmp(itype, "list_reply") == 0)) {
			prov_set_from(h, env, "text", reply, "title");
			const char *rid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "id"));
			if (rid)
				cJSON_AddStringToObject(meta, "reply_id", rid);
		} else {
			known = 0;
		}
	} else if (reaction) {
		prov_set_from(h, env, "text", body, "emoji");
		prov_set_from(h, env, "thread_ref", body, "message_id");
		cJSON_AddItemToObject(meta, "reaction", cJSON_Duplicate(body, 1));
	} else {
		known = 0;
		for (size_t i = 0; media_kinds[i]; i++)
			if (strcmp(type, media_kinds[i]) == 0)
				known = 1;
		if (known)
			add_media(w, b, env, type, body);
	}
	if (!known) {
		/* Kept whole, never dropped: a later version may understand it. */
		h->log(w->ch.inst, PARLEY_LOG_WARN, "message %s of unknown type '%s' kept in meta.raw", id, type);
		if (!cJSON_GetObjectItemCaseSensitive(meta, "raw"))
			cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(m, 1));
	}
	prov_set_json(h, env, "meta", meta);
}

/* The receipt states of the envelope; anything else Meta sends is an event. */
static int receipt_state(const char *s)
{
	return strcmp(s, "sent") == 0 || strcmp(s, "delivered") == 0 || strcmp(s, "read") == 0 ||
	       strcmp(s, "failed") == 0;
}

static void status_envelope(struct whatsapp *w, struct prov_batch *b, const cJSON *st, const char *where)
{
	const struct parley_host *h = w->ch.host;
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "id"));
	const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "status"));
	if (!id || !status) {
		prov_batch_refuse(b, "%s needs 'id' and 'status' as strings", where);
		return;
	}
	const char *rcpt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "recipient_id"));
	/* A message sent to a BSUID may come back with only the user id. */
	if (!rcpt)
		rcpt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "recipient_user_id"));
	if (rcpt && !wa_user(rcpt)) {
		prov_batch_refuse(
		        b, "%s.recipient_id is neither a phone number (1-15 digits) nor a business-scoped user id",
		        where);
		return;
	}
	int known = receipt_state(status);
	parley_envelope *env = prov_batch_envelope(b, known ? "status" : "event");
	if (!env)
		return;
	prov_set_fmt(h, env, "external_id", "%s:%s", id, status);
	h->envelope_set_str(env, "thread_ref", id);
	if (known)
		h->envelope_set_str(env, "status", status);
	if (rcpt) {
		prov_set_fmt(h, env, "to", "whatsapp:%s", rcpt);
	}
	prov_set_time_at(b, env, st, "timestamp", 1, where);
	const cJSON *err = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(st, "errors"), 0);
	if (err) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
		const char *title = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "title"));
		const char *details = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(err, "error_data"), "details"));
		prov_set_fmt(h, env, "error", "%d: %s%s%s", cJSON_IsNumber(code) ? code->valueint : 0,
		             title ? title : "", details ? " - " : "", details ? details : "");
	}
	cJSON *meta = cJSON_CreateObject();
	const cJSON *pricing = cJSON_GetObjectItemCaseSensitive(st, "pricing");
	const cJSON *conv = cJSON_GetObjectItemCaseSensitive(st, "conversation");
	if (pricing)
		cJSON_AddItemToObject(meta, "pricing", cJSON_Duplicate(pricing, 1));
	if (conv)
		cJSON_AddItemToObject(meta, "conversation", cJSON_Duplicate(conv, 1));
	if (!known) {
		/* Not a state a message can be in ("deleted", a newer one, a misspelling): kept, not applied. */
		h->log(w->ch.inst, PARLEY_LOG_WARN, "receipt for %s with state '%s' kept as an event in meta.raw", id,
		       status);
		cJSON_AddStringToObject(meta, "provider_status", status);
		cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(st, 1));
	}
	prov_set_json(h, env, "meta", meta);
}

/* A messages change with neither messages nor statuses (errors, say): kept whole as an event. */
static void other_value(struct whatsapp *w, struct prov_batch *b, const cJSON *value)
{
	const struct parley_host *h = w->ch.host;
	parley_envelope *env = prov_batch_envelope(b, "event");
	if (!env)
		return;
	char ext[80];
	prov_content_id(h, "event", value, ext, sizeof(ext));
	h->envelope_set_str(env, "external_id", ext);
	cJSON *meta = cJSON_CreateObject();
	cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(value, 1));
	prov_set_json(h, env, "meta", meta);
	h->log(w->ch.inst, PARLEY_LOG_WARN, "a messages change without messages or statuses kept in meta.raw as %s",
	       ext);
}

static void on_post(void *data, parley_http_request *req)
{
	struct whatsapp *w = data;
	const struct parley_host *h = w->ch.host;
	const cJSON *entries;
	cJSON *doc = prov_meta_body(h, w->ch.inst, req, w->graph.app_secret, "WhatsApp Cloud API", &entries);
	if (!doc)
		return;
	struct prov_batch *b = prov_batch_new(h, w->ch.inst, req, w->ch.media);
	const cJSON *entry, *change;
	int ei = 0;
	cJSON_ArrayForEach(entry, entries)
	{
		int ci = 0;
		cJSON_ArrayForEach(change, cJSON_GetObjectItemCaseSensitive(entry, "changes"))
		{
			const cJSON *value = cJSON_GetObjectItemCaseSensitive(change, "value");
			const char *field = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(change, "field"));
			char where[128];
			if (!field || strcmp(field, "messages") != 0) {
				prov_batch_ignore(b, "a '%s' change (only 'messages' changes are stored)",
				                  field ? field : "?");
				ci++;
				continue;
			}
			const cJSON *md = cJSON_GetObjectItemCaseSensitive(value, "metadata");
			const char *pnid =
			        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "phone_number_id"));
			if (!pnid || strcmp(pnid, w->phone_number_id) != 0) {
				/* Another number of the same app: acknowledged, not ours to store. */
				h->metric_add(w->ch.inst, "webhook_other_account_total", 1);
				prov_batch_ignore(b, "a change for phone number id %s, not %s", pnid ? pnid : "(none)",
				                  w->phone_number_id);
				ci++;
				continue;
			}
			const char *display =
			        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "display_phone_number"));
			char to_urn[40];
			if (!display || business_urn(display, to_urn, sizeof(to_urn)) != 0) {
				if (display)
					h->log(w->ch.inst, PARLEY_LOG_WARN,
					       "display_phone_number '%.40s' is not a phone number: 'to' left out",
					       display);
				to_urn[0] = '\0';
			}
			const cJSON *contacts = cJSON_GetObjectItemCaseSensitive(value, "contacts");
			const cJSON *c;
			int k = 0;
			cJSON_ArrayForEach(c, contacts)
			{
				const char *wa = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "wa_id"));
				const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "user_id"));
				if (wa && !wa_user(wa))
					prov_batch_refuse(
					        b,
					        "entry[%d].changes[%d].value.contacts[%d].wa_id is not a phone "
					        "number (1-15 digits)",
					        ei, ci, k);
				if (uid && !wa_bsuid(uid))
					prov_batch_refuse(b,
					                  "entry[%d].changes[%d].value.contacts[%d].user_id is not a "
					                  "business-scoped user id",
					                  ei, ci, k);
				k++;
			}
			const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(value, "messages");
			const cJSON *sts = cJSON_GetObjectItemCaseSensitive(value, "statuses");
			const cJSON *m;
			k = 0;
			cJSON_ArrayForEach(m, msgs)
			{
				snprintf(where, sizeof(where), "entry[%d].changes[%d].value.messages[%d]", ei, ci, k++);
				message_envelope(w, b, m, to_urn[0] ? to_urn : NULL, contacts, where);
			}
			k = 0;
			cJSON_ArrayForEach(m, sts)
			{
				snprintf(where, sizeof(where), "entry[%d].changes[%d].value.statuses[%d]", ei, ci, k++);
				status_envelope(w, b, m, where);
			}
			if (cJSON_GetArraySize(msgs) == 0 && cJSON_GetArraySize(sts) == 0)
				other_value(w, b, value);
			ci++;
		}
		ei++;
	}
	cJSON_Delete(doc);
	prov_batch_finish(b);
}

static int fetch_media(void *arg, struct prov_client *client, const char *media_id, struct prov_http *out)
{
	struct whatsapp *w = arg;
	/* The id becomes a Graph path: anything but digits could name another object or endpoint. */
	const char *bad = prov_ref_digits(media_id);
	if (bad)
		return prov_fetch_refuse(out, "media id '%.64s': %s", media_id, bad);
	char url[1024];
	const struct prov_credentials cred = {w->auth, NULL};
	snprintf(url, sizeof(url), "%s/%s/%s", w->ch.base, w->graph.version, media_id);
	struct prov_http meta;
	int rv = prov_fetch(client, &w->ch.policy, url, &cred, &meta);
	if (rv != 0 || meta.status != 200) {
		*out = meta;
		return rv ? rv : -1;
	}
	cJSON *j = cJSON_Parse(meta.body);
	const char *durl = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "url"));
	rv = -1;
	if (durl)
		rv = prov_fetch(client, &w->ch.policy, durl, &cred, out);
	else
		*out = meta, meta.body = NULL;
	cJSON_Delete(j);
	prov_http_free(&meta);
	return rv;
}

/*
 * The wa_id to send to: whatsapp:<digits> or tel:+<digits>, 1-15 digits
 * (E.164); or a group, whatsapp-group:<group id> (*group set).  Anything
 * else is refused, never cleaned into another number.
 */
static int recipient(const char *to, char *out, size_t outlen, int *group)
{
	const char *num = NULL;
	*group = 0;
	if (to && strncmp(to, "whatsapp-group:", 15) == 0) {
		const char *g = to + 15;
		size_t n = strlen(g);
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)g[i]) && g[i] != '_' && g[i] != '-' && g[i] != '=')
				return -1;
		if (n < 1 || n >= outlen)
			return -1;
		memcpy(out, g, n + 1);
		*group = 1;
		return 0;
	}
	if (to && strncmp(to, "whatsapp:", 9) == 0)
		num = to + 9 + (to[9] == '+');
	else if (to && strncmp(to, "tel:+", 5) == 0)
		num = to + 5;
	size_t n = num ? strspn(num, "0123456789") : 0;
	if (n < 1 || n > 15 || num[n] != '\0' || n >= outlen)
		return -1;
	memcpy(out, num, n + 1);
	return 0;
}

/* One component of a template: {type, parameters: [{type: text, text}]} from a list of strings. */
static void template_component(cJSON *components, const char *type, const cJSON *values)
{
	if (!cJSON_IsArray(values) || cJSON_GetArraySize(values) == 0)
		return;
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "type", type);
	cJSON *params = cJSON_AddArrayToObject(c, "parameters");
	const cJSON *v;
	cJSON_ArrayForEach(v, values)
	{
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "type", "text");
		cJSON_AddStringToObject(p, "text", cJSON_GetStringValue(v) ? cJSON_GetStringValue(v) : "");
		cJSON_AddItemToArray(params, p);
	}
	cJSON_AddItemToArray(components, c);
}

/* The Cloud API's template object for the envelope's template (validated by the core against the schema). */
static void add_template(cJSON *msg, const cJSON *t)
{
	cJSON_AddStringToObject(msg, "type", "template");
	cJSON *tpl = cJSON_AddObjectToObject(msg, "template");
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "name"));
	const char *lang = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "language"));
	cJSON_AddStringToObject(tpl, "name", name ? name : "");
	cJSON *l = cJSON_AddObjectToObject(tpl, "language");
	cJSON_AddStringToObject(l, "policy", "deterministic");
	cJSON_AddStringToObject(l, "code", lang ? lang : "");
	cJSON *components = cJSON_CreateArray();
	template_component(components, "header", cJSON_GetObjectItemCaseSensitive(t, "header"));
	template_component(components, "body", cJSON_GetObjectItemCaseSensitive(t, "body"));
	const cJSON *b;
	int index = 0;
	cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(t, "buttons"))
	{
		const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
		const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "value"));
		int quick = type && strcmp(type, "quick_reply") == 0;
		char idx[16];
		snprintf(idx, sizeof(idx), "%d", index++);
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "type", "button");
		cJSON_AddStringToObject(c, "sub_type", quick ? "quick_reply" : "url");
		cJSON_AddStringToObject(c, "index", idx);
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "type", quick ? "payload" : "text");
		cJSON_AddStringToObject(p, quick ? "payload" : "text", value ? value : "");
		cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "parameters"), p);
		cJSON_AddItemToArray(components, c);
	}
	if (cJSON_GetArraySize(components) > 0)
		cJSON_AddItemToObject(tpl, "components", components);
	else
		cJSON_Delete(components);
}

static cJSON *build_message(const struct parley_host *h, const parley_envelope *env, const char *to, int group)
{
	cJSON *msg = cJSON_CreateObject();
	cJSON_AddStringToObject(msg, "messaging_product", "whatsapp");
	cJSON_AddStringToObject(msg, "recipient_type", group ? "group" : "individual");
	cJSON_AddStringToObject(msg, "to", to);
	const char *text = h->envelope_get_str(env, "text");
	char *atts = h->envelope_get_json(env, "attachments");
	char *meta = h->envelope_get_json(env, "meta");
	cJSON *a = atts ? cJSON_Parse(atts) : NULL;
	cJSON *m = meta ? cJSON_Parse(meta) : NULL;
	free(atts);
	free(meta);
	const cJSON *att = cJSON_GetArrayItem(a, 0);
	const cJSON *buttons = cJSON_GetObjectItemCaseSensitive(m, "buttons");
	const char *reply_to = h->envelope_get_str(env, "thread_ref");
	char *tpl_text = h->envelope_get_json(env, "template");
	cJSON *tpl = tpl_text ? cJSON_Parse(tpl_text) : NULL;
	free(tpl_text);
	if (reply_to) {
		cJSON *ctx = cJSON_AddObjectToObject(msg, "context");
		cJSON_AddStringToObject(ctx, "message_id", reply_to);
	}
	if (cJSON_IsObject(tpl)) {
		add_template(msg, tpl);
	} else if (att) {
		const char *ct = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(att, "content_type"));
		const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(att, "url"));
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(att, "name"));
		const char *type = "document";
		if (ct && strncmp(ct, "image/", 6) == 0)
			type = "image";
		else if (ct && strncmp(ct, "video/", 6) == 0)
			type = "video";
		else if (ct && strncmp(ct, "audio/", 6) == 0)
			type = "audio";
		cJSON_AddStringToObject(msg, "type", type);
		cJSON *media = cJSON_AddObjectToObject(msg, type);
		if (url)
			cJSON_AddStringToObject(media, "link", url);
		if (text && strcmp(type, "audio") != 0)
			cJSON_AddStringToObject(media, "caption", text);
		if (name && strcmp(type, "document") == 0)
			cJSON_AddStringToObject(media, "filename", name);
	} else if (cJSON_IsArray(buttons) && cJSON_GetArraySize(buttons) > 0 && cJSON_GetArraySize(buttons) <= 10) {
		/* WhatsApp allows three reply buttons; a list message holds up to ten rows. */
		int as_list = cJSON_GetArraySize(buttons) > 3;
		cJSON_AddStringToObject(msg, "type", "interactive");
		cJSON *inter = cJSON_AddObjectToObject(msg, "interactive");
		cJSON_AddStringToObject(inter, "type", as_list ? "list" : "button");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(inter, "body"), "text", text ? text : "");
		cJSON *action = cJSON_AddObjectToObject(inter, "action");
		cJSON *list;
		if (as_list) {
			const char *label = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "list_button"));
			cJSON_AddStringToObject(action, "button", label ? label : "Choose");
			cJSON *section = cJSON_CreateObject();
			cJSON_AddItemToArray(cJSON_AddArrayToObject(action, "sections"), section);
			list = cJSON_AddArrayToObject(section, "rows");
		} else {
			list = cJSON_AddArrayToObject(action, "buttons");
		}
		const cJSON *bt;
		cJSON_ArrayForEach(bt, buttons)
		{
			const char *bid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bt, "id"));
			const char *title = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bt, "title"));
			cJSON *one = cJSON_CreateObject(), *r = one;
			if (!as_list) {
				cJSON_AddStringToObject(one, "type", "reply");
				r = cJSON_AddObjectToObject(one, "reply");
			}
			cJSON_AddStringToObject(r, "id", bid ? bid : (title ? title : ""));
			cJSON_AddStringToObject(r, "title", title ? title : "");
			cJSON_AddItemToArray(list, one);
		}
	} else {
		cJSON_AddStringToObject(msg, "type", "text");
		cJSON *t = cJSON_AddObjectToObject(msg, "text");
		cJSON_AddBoolToObject(t, "preview_url", 0);
		cJSON_AddStringToObject(t, "body", text ? text : "");
	}
	cJSON_Delete(a);
	cJSON_Delete(m);
	cJSON_Delete(tpl);
	return msg;
}

/* Graph API error codes that mean "later", not "never". */
static int transient_code(int code)
{
	return code == 1 || code == 2 || code == 4 || code == 80007 || code == 130429 || code == 131000 ||
	       code == 131016 || code == 131048 || code == 131056 || code == 133004;
}

static int wa_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct whatsapp *w = data;
	const struct parley_host *h = w->ch.host;
	char to[160];
	int group;
	if (recipient(h->envelope_get_str(env, "to"), to, sizeof(to), &group) != 0) {
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text),
		         "'to' must be whatsapp:<number> or tel:+<number>, 1-15 digits (E.164), or "
		         "whatsapp-group:<group id>");
		return 0;
	}
	cJSON *msg = build_message(h, env, to, group);
	char *body = cJSON_PrintUnformatted(msg);
	cJSON_Delete(msg);
	char url[1024];
	snprintf(url, sizeof(url), "%s/%s/%s/messages", w->ch.base, w->graph.version, w->phone_number_id);
	const char *hdrs[] = {w->auth, "Content-Type: application/json", NULL};
	struct prov_http r;
	prov_request(&w->ch.client, "POST", url, hdrs, body, strlen(body), NULL, &r);
	free(body);
	cJSON *j = cJSON_Parse(r.body ? r.body : "");
	if (r.status >= 200 && r.status < 300) {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "messages"), 0), "id"));
		prov_classify(&r, NULL, NULL, res);
		if (id)
			snprintf(res->provider_id, sizeof(res->provider_id), "%s", id);
	} else {
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
		const char *message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message"));
		const char *details = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(err, "error_data"), "details"));
		char codebuf[32] = "", text[512] = "";
		if (cJSON_IsNumber(code))
			snprintf(codebuf, sizeof(codebuf), "%d", code->valueint);
		if (message)
			snprintf(text, sizeof(text), "%s%s%s", message, details ? ": " : "", details ? details : "");
		prov_classify_code(&r, codebuf, text, cJSON_IsNumber(code) && transient_code(code->valueint), res);
	}
	cJSON_Delete(j);
	prov_http_free(&r);
	return 0;
}

static int wa_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	int rv = prov_channel_new(data, sizeof(struct whatsapp), h, inst, media_hosts, media_hosts, errmsg);
	if (rv != 0)
		return rv;
	struct whatsapp *w = *data;
	w->phone_number_id = h->config_str(inst, "phone_number_id");
	prov_meta_keys_read(h, inst, &w->graph);
	h->config_bool(inst, "groups", &w->groups);
	snprintf(w->auth, sizeof(w->auth), "Authorization: Bearer %s", w->graph.access_token);
	return 0;
}

static int wa_start(void *data, char **errmsg)
{
	struct whatsapp *w = data;
	(void)errmsg;
	/* POST: the webhook; GET: the verification handshake. */
	static const struct prov_route routes[] = {{"POST", "", on_post}, {"GET", "", on_verify}, {NULL, NULL, NULL}};
	return prov_channel_start(&w->ch, fetch_media, w, routes);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "whatsapp",
        .version = "1.0.0",
        .description = "WhatsApp Cloud API: messages, media, locations, contacts, replies, reactions, receipts",
        .config = config_map,
        .init = prov_plugin_init,
        .fini = prov_plugin_fini,
        .instance_create = wa_create,
        .instance_start = wa_start,
        .instance_stop = prov_channel_instance_stop,
        .instance_destroy = prov_channel_instance_destroy,
        .channel_send = wa_send,
        .check_config = prov_policy_check_config,
};

PARLEY_PLUGIN_DEFINE(plugin)
