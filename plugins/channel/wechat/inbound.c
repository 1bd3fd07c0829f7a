/*
 * inbound.c: WeChat's server URL.  GET is the URL verification (echo
 * echostr when the signature is right); POST a message or an event, XML,
 * in safe mode encrypted.  Answered "success" (WeChat's empty passive
 * reply) after the commit; WeChat retries three times when it has no
 * answer within 5 s, and MsgId (for events FromUserName + CreateTime +
 * Event, as WeChat's guide says to deduplicate them) makes a retry a
 * duplicate.
 */
#include "wechat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX 16384 /* bytes; WeChat's texts are at most 2,048 */

static const char *field(const cJSON *f, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, name));
}

/* 1 when s is printable ASCII of 1-max bytes (timestamps, nonces, echostr, ids). */
static int token_ok(const char *s, size_t max, const char *allowed)
{
	size_t n = s ? strlen(s) : 0;
	return n >= 1 && n <= max && strspn(s, allowed) == n;
}

#define DIGITS  "0123456789"
#define IDCHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

int wechat_check_query(struct wechat *w, parley_http_request *req, char **timestamp, char **nonce)
{
	const struct parley_host *h = w->host;
	const char *q = h->http_query(req);
	char *sig = prov_query_get(q, "signature");
	*timestamp = prov_query_get(q, "timestamp");
	*nonce = prov_query_get(q, "nonce");
	int ok = token_ok(*timestamp, 20, DIGITS) && token_ok(*nonce, 64, IDCHARS);
	const char *parts[] = {w->token, *timestamp, *nonce};
	ok = ok && wechat_signature_ok(h, sig, parts, 3);
	free(sig);
	if (!ok) {
		h->metric_add(w->inst, "webhook_bad_signature_total", 1);
		prov_respond_error(h, req, 401,
		                   "bad or missing signature (SHA1 of the sorted token, timestamp and nonce)");
		free(*timestamp);
		free(*nonce);
		*timestamp = *nonce = NULL;
	}
	return ok;
}

void wechat_on_verify(void *data, parley_http_request *req)
{
	struct wechat *w = data;
	char *ts, *nonce;
	if (!wechat_check_query(w, req, &ts, &nonce))
		return;
	char *echo = prov_query_get(w->host->http_query(req), "echostr");
	if (!token_ok(echo, 256, IDCHARS "+/=.")) {
		prov_respond_error(w->host, req, 400, "echostr is missing or not 1-256 letters and digits");
	} else {
		w->host->http_respond(req, 200, "text/plain", echo, strlen(echo));
	}
	free(echo);
	free(ts);
	free(nonce);
}

/* An attachment from MediaId (fetched after the commit from the API's /cgi-bin/media/get). */
static void add_media(struct wechat *w, struct prov_batch *b, parley_envelope *env, const cJSON *f, const char *kind,
                      const char *content_type)
{
	const char *mid = field(f, "MediaId");
	cJSON *att = cJSON_CreateObject();
	cJSON_AddStringToObject(att, "kind", kind);
	if (content_type)
		cJSON_AddStringToObject(att, "content_type", content_type);
	if (mid)
		cJSON_AddStringToObject(att, "provider_id", mid);
	if (field(f, "PicUrl"))
		cJSON_AddStringToObject(att, "url", field(f, "PicUrl"));
	cJSON *list = cJSON_CreateArray();
	cJSON_AddItemToArray(list, att);
	prov_set_json(w->host, env, "attachments", list);
	if (mid)
		prov_batch_media(b, env, 0, mid);
}

/* A number field as a JSON number; -1 (refused, naming it) when present and not a number. */
static int add_number(struct prov_batch *b, cJSON *into, const cJSON *f, const char *name, const char *as)
{
	const char *s = field(f, name);
	if (!s)
		return 0;
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || v != v || v > 1e9 || v < -1e9) {
		prov_batch_refuse(b, "%s is not a number", name);
		return -1;
	}
	cJSON_AddNumberToObject(into, as, v);
	return 0;
}

/* The kinds with a handler; 0 when type has none (the message is then kept whole in meta.raw). */
static int message_body(struct wechat *w, struct prov_batch *b, parley_envelope *env, const cJSON *f, const char *type,
                        cJSON *meta)
{
	const struct parley_host *h = w->host;
	if (strcmp(type, "text") == 0) {
		const char *text = field(f, "Content");
		if (!text || strlen(text) > TEXT_MAX) {
			prov_batch_refuse(b, "Content is missing or over %d bytes", TEXT_MAX);
			return 1;
		}
		h->envelope_set_str(env, "text", text);
		if (field(f, "bizmsgmenuid")) /* the answer to a msgmenu we sent: its item's id */
			cJSON_AddStringToObject(meta, "reply_id", field(f, "bizmsgmenuid"));
	} else if (strcmp(type, "image") == 0 && field(f, "MediaId")) {
		add_media(w, b, env, f, "image", "image/jpeg");
	} else if (strcmp(type, "voice") == 0 && field(f, "MediaId")) {
		const char *fmt = field(f, "Format");
		add_media(w, b, env, f, "voice", fmt && strcmp(fmt, "amr") == 0 ? "audio/amr" : NULL);
		if (fmt)
			cJSON_AddStringToObject(meta, "format", fmt);
		if (field(f, "Recognition") && field(f, "Recognition")[0])
			h->envelope_set_str(env, "text", field(f, "Recognition"));
	} else if ((strcmp(type, "video") == 0 || strcmp(type, "shortvideo") == 0) && field(f, "MediaId")) {
		add_media(w, b, env, f, "video", "video/mp4");
		if (field(f, "ThumbMediaId"))
			cJSON_AddStringToObject(meta, "thumb_media_id", field(f, "ThumbMediaId"));
	} else if (strcmp(type, "location") == 0) {
		cJSON *loc = cJSON_AddObjectToObject(meta, "location");
		if (add_number(b, loc, f, "Location_X", "latitude") ||
		    add_number(b, loc, f, "Location_Y", "longitude") || add_number(b, loc, f, "Scale", "scale"))
			return 1;
		if (field(f, "Label")) {
			cJSON_AddStringToObject(loc, "label", field(f, "Label"));
			h->envelope_set_str(env, "text", field(f, "Label"));
		}
	} else if (strcmp(type, "link") == 0 && field(f, "Url")) {
		cJSON *link = cJSON_AddObjectToObject(meta, "link");
		const char *title = field(f, "Title");
		cJSON_AddStringToObject(link, "url", field(f, "Url"));
		if (title)
			cJSON_AddStringToObject(link, "title", title);
		if (field(f, "Description"))
			cJSON_AddStringToObject(link, "description", field(f, "Description"));
		prov_set_fmt(h, env, "text", "%s%s%s", title ? title : "", title ? "\n" : "", field(f, "Url"));
	} else {
		return 0;
	}
	return 1;
}

/* The envelope of one message or event. */
static void envelope(struct wechat *w, struct prov_batch *b, const cJSON *f)
{
	const struct parley_host *h = w->host;
	const char *type = field(f, "MsgType"), *from = field(f, "FromUserName"), *to = field(f, "ToUserName");
	const char *msgid = field(f, "MsgId"), *event = field(f, "Event"), *key = field(f, "EventKey");
	if (!type || !token_ok(from, 64, IDCHARS)) {
		prov_batch_refuse(b, "%s", !type ? "MsgType is missing" : "FromUserName is not an OpenID");
		return;
	}
	if (msgid && !token_ok(msgid, 20, DIGITS)) {
		prov_batch_refuse(b, "MsgId is not a number");
		return;
	}
	if (w->original_id && (!to || strcmp(to, w->original_id) != 0)) {
		prov_batch_ignore(b, "a message to account %.64s, not %s", to ? to : "(none)", w->original_id);
		return;
	}
	int is_event = strcmp(type, "event") == 0;
	/* A menu click is the customer choosing: a message, its key the text, as a button's answer. */
	int click = is_event && event && strcmp(event, "CLICK") == 0 && key && key[0];
	parley_envelope *env = prov_batch_envelope(b, is_event && !click ? "event" : "message");
	if (!env)
		return;
	cJSON *meta = cJSON_CreateObject();
	prov_set_fmt(h, env, "from", "wechat:%s", from);
	if (to && token_ok(to, 64, IDCHARS))
		prov_set_fmt(h, env, "to", "wechat:%s", to);
	if (msgid) {
		h->envelope_set_str(env, "external_id", msgid);
	} else if (is_event) {
		const char *ct = field(f, "CreateTime");
		prov_set_fmt(h, env, "external_id", "event:%s:%.20s:%.40s", from, ct ? ct : "", event ? event : "");
	} else {
		char ext[80];
		prov_content_id(h, "msg", f, ext, sizeof(ext));
		h->envelope_set_str(env, "external_id", ext);
	}
	prov_set_time_at(b, env, f, "CreateTime", 1, "xml");
	cJSON_AddStringToObject(meta, "msg_type", type);
	int known;
	if (is_event) {
		known = click || (event && (strcmp(event, "subscribe") == 0 || strcmp(event, "unsubscribe") == 0));
		if (event)
			cJSON_AddStringToObject(meta, "event", event);
		if (key && key[0])
			cJSON_AddStringToObject(meta, "event_key", key);
		if (click) {
			h->envelope_set_str(env, "text", key);
			cJSON_AddStringToObject(meta, "reply_id", key);
		}
	} else {
		known = message_body(w, b, env, f, type, meta);
	}
	if (!known) {
		/* Kept whole, never dropped: a later version may understand it. */
		if (is_event)
			h->log(w->inst, PARLEY_LOG_WARN, "event '%.40s' kept in meta.raw", event ? event : "(none)");
		else
			h->log(w->inst, PARLEY_LOG_WARN, "message of type '%.40s' kept in meta.raw", type);
		cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(f, 1));
	}
	prov_set_json(h, env, "meta", meta);
}

/* The message's fields: decrypted first in safe mode.  NULL after answering the request. */
static cJSON *message_fields(struct wechat *w, parley_http_request *req, const char *ts, const char *nonce)
{
	const struct parley_host *h = w->host;
	size_t len;
	const char *body = h->http_body(req, &len);
	const char *ctype = h->http_header(req, "Content-Type");
	if (ctype && !strstr(ctype, "xml")) {
		prov_respond_error(h, req, 415, "WeChat messages are XML (text/xml)");
		return NULL;
	}
	char why[300];
	cJSON *outer;
	if (wechat_xml_fields(h, body, len, &outer, why, sizeof(why)) != 0) {
		prov_respond_error(h, req, 400, why);
		return NULL;
	}
	const char *enc = field(outer, "Encrypt");
	if (!w->safe) {
		if (enc && !field(outer, "MsgType")) {
			cJSON_Delete(outer);
			prov_respond_error(h, req, 400,
			                   "the message is encrypted (safe mode): set the channel's encoding_aes_key");
			return NULL;
		}
		return outer;
	}
	char *msig = prov_query_get(h->http_query(req), "msg_signature");
	const char *parts[] = {w->token, ts, nonce, enc ? enc : ""};
	int ok = enc && wechat_signature_ok(h, msig, parts, 4);
	free(msig);
	char *plain = NULL;
	size_t plen = 0;
	if (!enc) {
		snprintf(why, sizeof(why), "Encrypt is missing: the channel is in safe mode (encoding_aes_key)");
	} else if (!ok) {
		snprintf(why, sizeof(why), "bad or missing msg_signature (SHA1 of token, timestamp, nonce, Encrypt)");
	} else if (wechat_decrypt(w->aes_key, enc, w->app_id, &plain, &plen, why, sizeof(why)) == 0) {
		why[0] = '\0';
	} else {
		ok = 0; /* a message that does not decrypt, or is another appid's, is not authentic */
	}
	cJSON_Delete(outer);
	if (why[0]) {
		if (enc)
			h->metric_add(w->inst, "webhook_bad_signature_total", 1);
		prov_respond_error(h, req, enc && !ok ? 401 : 400, why);
		return NULL;
	}
	cJSON *inner;
	int rv = wechat_xml_fields(h, plain, plen, &inner, why, sizeof(why));
	free(plain);
	if (rv != 0) {
		prov_respond_error(h, req, 400, why);
		return NULL;
	}
	return inner;
}

void wechat_on_post(void *data, parley_http_request *req)
{
	struct wechat *w = data;
	char *ts, *nonce;
	if (!wechat_check_query(w, req, &ts, &nonce))
		return;
	cJSON *f = message_fields(w, req, ts, nonce);
	free(ts);
	free(nonce);
	if (!f)
		return;
	struct prov_batch *b = prov_batch_new(w->host, w->inst, req, w->media);
	if (!b) {
		cJSON_Delete(f);
		prov_respond_error(w->host, req, 503, "out of memory: retry later");
		return;
	}
	b->ok_type = "text/plain";
	b->ok_body = strdup("success");
	envelope(w, b, f);
	cJSON_Delete(f);
	prov_batch_finish(b);
}
