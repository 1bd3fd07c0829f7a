/*
 * outbound.c: LINE replies and pushes, and content downloads.
 *
 * An outbound envelope becomes up to five message objects (LINE's limit
 * per request): each attachment (image; video and audio when the
 * attachment gives what LINE requires, a preview image or a duration;
 * anything else as a link, since bots cannot send files), then the text,
 * with quick-reply postback buttons from meta.buttons on the last one.
 * Attachments that do not fit go as links in the text.
 * They go with the chat's reply token while it is good (free of charge),
 * else, or when LINE refuses the token, by push with a retry key.
 */
#include "line.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_MESSAGES 5
#define LINE_MAX_BUTTONS  13 /* quick reply items */
#define LINE_LABEL_MAX    20 /* characters of an action label */

static const char *str_in(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* The first max characters of UTF-8 text s (a label LINE limits by characters), malloc'd. */
static char *first_chars(const char *s, size_t max)
{
	size_t i = 0, n = 0;
	while (s[i] && n < max) {
		i++;
		while (((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		n++;
	}
	return strndup(s, i);
}

/* before (may be NULL; freed), a new line when it is not empty, then "<name>: <url>" of att (malloc'd). */
static char *link_text(char *before, const cJSON *att)
{
	const char *url = str_in(att, "url"), *name = str_in(att, "name");
	size_t n = (before ? strlen(before) : 0) + (url ? strlen(url) : 0) + (name ? strlen(name) : 0) + 4;
	char *text = malloc(n);
	if (text)
		snprintf(text, n, "%s%s%s%s%s", before ? before : "", before && before[0] ? "\n" : "", name ? name : "",
		         name && url ? ": " : "", url ? url : "");
	free(before);
	return text;
}

/* One attachment as a message object. */
static cJSON *attachment_message(const cJSON *att)
{
	const char *ct = str_in(att, "content_type"), *url = str_in(att, "url");
	const char *preview = str_in(att, "preview_url");
	const cJSON *dur = cJSON_GetObjectItemCaseSensitive(att, "duration_ms");
	cJSON *m = cJSON_CreateObject();
	if (!url)
		url = "";
	if (ct && strncmp(ct, "image/", 6) == 0) {
		cJSON_AddStringToObject(m, "type", "image");
		cJSON_AddStringToObject(m, "originalContentUrl", url);
		cJSON_AddStringToObject(m, "previewImageUrl", preview ? preview : url);
	} else if (ct && strncmp(ct, "video/", 6) == 0 && preview) {
		cJSON_AddStringToObject(m, "type", "video");
		cJSON_AddStringToObject(m, "originalContentUrl", url);
		cJSON_AddStringToObject(m, "previewImageUrl", preview);
	} else if (ct && strncmp(ct, "audio/", 6) == 0 && cJSON_IsNumber(dur) && dur->valuedouble > 0) {
		cJSON_AddStringToObject(m, "type", "audio");
		cJSON_AddStringToObject(m, "originalContentUrl", url);
		cJSON_AddNumberToObject(m, "duration", dur->valuedouble);
	} else {
		char *text = link_text(NULL, att);
		cJSON_AddStringToObject(m, "type", "text");
		cJSON_AddStringToObject(m, "text", text ? text : url);
		free(text);
	}
	return m;
}

/* Quick-reply postback buttons: a tap comes back as a postback event whose data is the button's id. */
static void add_buttons(cJSON *msg, const cJSON *buttons)
{
	cJSON *items = cJSON_AddArrayToObject(cJSON_AddObjectToObject(msg, "quickReply"), "items");
	const cJSON *bt;
	cJSON_ArrayForEach(bt, buttons)
	{
		/* A button with only an id shows the id. */
		const char *id = str_in(bt, "id"), *title = str_in(bt, "title") ? str_in(bt, "title") : id;
		if (!title || cJSON_GetArraySize(items) == LINE_MAX_BUTTONS)
			continue;
		cJSON *item = cJSON_CreateObject();
		cJSON_AddStringToObject(item, "type", "action");
		cJSON *act = cJSON_AddObjectToObject(item, "action");
		char *label = first_chars(title, LINE_LABEL_MAX);
		cJSON_AddStringToObject(act, "type", "postback");
		cJSON_AddStringToObject(act, "label", label ? label : "");
		cJSON_AddStringToObject(act, "data", id ? id : title);
		cJSON_AddStringToObject(act, "displayText", title);
		free(label);
		cJSON_AddItemToArray(items, item);
	}
}

/* The message objects of env. */
static cJSON *build_messages(const struct parley_host *h, const parley_envelope *env, const cJSON *meta)
{
	cJSON *list = cJSON_CreateArray();
	char *atts = h->envelope_get_json(env, "attachments");
	cJSON *a = atts ? cJSON_Parse(atts) : NULL;
	free(atts);
	const char *given = h->envelope_get_str(env, "text");
	int n = cJSON_GetArraySize(a);
	/* More than fit in one request: the last message is the text with the links of the rest. */
	int room = n + (given ? 1 : 0) <= LINE_MAX_MESSAGES ? n : LINE_MAX_MESSAGES - 1;
	char *text = given ? strdup(given) : NULL;
	const cJSON *att;
	cJSON_ArrayForEach(att, a)
	{
		if (cJSON_GetArraySize(list) < room)
			cJSON_AddItemToArray(list, attachment_message(att));
		else
			text = link_text(text ? text : strdup(""), att);
	}
	cJSON_Delete(a);
	if (text || cJSON_GetArraySize(list) == 0) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "type", "text");
		cJSON_AddStringToObject(m, "text", text ? text : "");
		free(text);
		const char *quote = str_in(meta, "quote_token");
		if (quote)
			cJSON_AddStringToObject(m, "quoteToken", quote);
		cJSON_AddItemToArray(list, m);
	}
	const cJSON *buttons = cJSON_GetObjectItemCaseSensitive(meta, "buttons");
	if (cJSON_IsArray(buttons) && cJSON_GetArraySize(buttons) > 0)
		add_buttons(cJSON_GetArrayItem(list, cJSON_GetArraySize(list) - 1), buttons);
	return list;
}

/*
 * The retry key of a push: a UUID made from the envelope's id, so every
 * attempt to send one envelope carries the same key and LINE delivers it
 * once (409 to the attempts after the one it took).
 */
static void retry_key(const struct parley_host *h, const char *id, char out[64])
{
	unsigned char d[32];
	char hex[65];
	h->hmac_sha256("parley-line-retry-key", 21, id, strlen(id), d);
	d[6] = (unsigned char)((d[6] & 0x0f) | 0x40); /* version 4 */
	d[8] = (unsigned char)((d[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	h->hex_encode(d, 16, hex);
	snprintf(out, 64, "X-Line-Retry-Key: %.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* POST body to path; r is the answer and j its JSON (NULL when not JSON). */
static cJSON *call(struct line *l, const char *path, const char *body, const char *extra, struct prov_http *r)
{
	char url[1024];
	snprintf(url, sizeof(url), "%s%s", l->base, path);
	const char *hdrs[] = {l->auth, "Content-Type: application/json", extra, NULL};
	prov_request(&l->client, "POST", url, hdrs, body, strlen(body), NULL, r);
	return cJSON_Parse(r->body ? r->body : "");
}

/* The outcome of an answer: sent (2xx, or 409 for a push LINE already took), else LINE's message. */
static void outcome(const struct prov_http *r, const cJSON *j, int push, struct parley_send_result *res)
{
	const char *id = str_in(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "sentMessages"), 0), "id");
	if ((r->status >= 200 && r->status < 300) || (push && r->status == 409)) {
		res->outcome = PARLEY_SEND_OK;
		if (id)
			snprintf(res->provider_id, sizeof(res->provider_id), "%s", id);
		return;
	}
	const char *msg = str_in(j, "message");
	const cJSON *detail = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "details"), 0);
	char text[512] = "";
	if (msg)
		snprintf(text, sizeof(text), "%s%s%s%s%s", msg, detail ? " (" : "",
		         detail ? str_in(detail, "property") : "", detail ? ": " : "",
		         detail ? str_in(detail, "message") : "");
	if (detail && text[0])
		snprintf(text + strlen(text), sizeof(text) - strlen(text), ")");
	prov_classify(r, NULL, text, res);
}

int line_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct line *l = data;
	const struct parley_host *h = l->host;
	const char *to = h->envelope_get_str(env, "to");
	if (!to || strncmp(to, "line:", 5) != 0 || !line_chat_id(to + 5)) {
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text),
		         "'to' must be line:<user, group or room id> (U, C or R and 32 hex digits)");
		return 0;
	}
	const char *chat = to + 5;
	char *metas = h->envelope_get_json(env, "meta");
	cJSON *meta = metas ? cJSON_Parse(metas) : NULL;
	free(metas);
	cJSON *req = cJSON_CreateObject();
	cJSON_AddItemToObject(req, "messages", build_messages(h, env, meta));
	int buttons = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(meta, "buttons"));
	if (buttons > LINE_MAX_BUTTONS)
		h->log(l->inst, PARLEY_LOG_WARN, "%d buttons: LINE shows %d quick replies, the rest are left out",
		       buttons, LINE_MAX_BUTTONS);
	char token[520];
	const char *given = str_in(meta, "reply_token");
	int have = line_reply_take(l, chat, token, sizeof(token)) == 0;
	if (given && strlen(given) < sizeof(token)) {
		snprintf(token, sizeof(token), "%s", given);
		have = 1;
	}
	cJSON_Delete(meta);
	struct prov_http r;
	cJSON *j = NULL;
	int done = 0;
	if (have) {
		cJSON_AddStringToObject(req, "replyToken", token);
		char *body = cJSON_PrintUnformatted(req);
		j = call(l, "/v2/bot/message/reply", body, NULL, &r);
		free(body);
		cJSON_DeleteItemFromObject(req, "replyToken");
		const char *msg = str_in(j, "message");
		/* An expired or used token ("Invalid reply token"): the message goes by push instead. */
		done = !(r.status == 400 && msg && strstr(msg, "reply token"));
		if (!done) {
			h->log(l->inst, PARLEY_LOG_INFO, "reply token refused (%s): pushing instead", msg);
			cJSON_Delete(j);
			prov_http_free(&r);
		} else {
			outcome(&r, j, 0, res);
		}
	}
	if (!done) {
		cJSON_AddStringToObject(req, "to", chat);
		char *body = cJSON_PrintUnformatted(req);
		char key[64];
		retry_key(h, h->envelope_get_str(env, "id"), key);
		j = call(l, "/v2/bot/message/push", body, key, &r);
		free(body);
		outcome(&r, j, 1, res);
	}
	cJSON_Delete(req);
	cJSON_Delete(j);
	prov_http_free(&r);
	return 0;
}

int line_fetch(void *arg, struct prov_client *client, const char *spec, struct prov_http *out)
{
	struct line *l = arg;
	if (strncmp(spec, "url:", 4) == 0) {
		/* An external content provider's URL: fetched under the policy, never with the token. */
		return prov_fetch(client, &l->policy, spec + 4, NULL, out);
	}
	const char *id = strncmp(spec, "id:", 3) == 0 ? spec + 3 : spec;
	/* The id becomes a path: anything but digits could name another endpoint. */
	const char *bad = prov_ref_digits(id);
	if (bad)
		return prov_fetch_refuse(out, "message id '%.64s': %s", id, bad);
	char url[1024];
	snprintf(url, sizeof(url), "%s/v2/bot/message/%s/content", l->data_base, id);
	const struct prov_credentials cred = {l->auth, NULL};
	int rv = prov_fetch(client, &l->policy, url, &cred, out);
	if (rv == 0 && out->status == 202) {
		/* A video or audio LINE is still preparing: not an attachment yet, ask again. */
		out->status = 0;
		snprintf(out->error, sizeof(out->error), "content of message %s not ready yet (202)", id);
		return -1;
	}
	return rv;
}
