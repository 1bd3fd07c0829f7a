/*
 * api.c: the Official Account API: the access token, replies through the
 * customer-service message API, media by MediaId.
 *
 * The access token comes from /cgi-bin/stable_token (the default: every
 * caller gets the same token, so gateway nodes sharing an account do not
 * invalidate each other's) or /cgi-bin/token, and is kept until five
 * minutes before expires_in; an answer saying it is invalid or expired
 * (40001, 40014, 42001) drops it and the send is tried once more with a
 * new one.  WeChat answers HTTP 200 with an errcode: 0 is sent; -1
 * (busy) and the rate limits retry; 45015 means the user has not written
 * within 48 hours, when WeChat takes no customer-service message, and is
 * a dead letter saying so, as is every other errcode.
 */
#include "wechat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int token_errcode(long code)
{
	return code == 40001 || code == 40014 || code == 42001;
}

/* The errcode of an API answer (0 when none), and its errmsg. */
static long api_error(const cJSON *j, const char **msg)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "errcode");
	*msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "errmsg"));
	return cJSON_IsNumber(c) ? (long)c->valuedouble : 0;
}

/* Fetch a new access token into w (token_lock held).  0, or -1 with why. */
static int token_fetch_locked(struct wechat *w, struct prov_client *c, char *why, size_t why_len)
{
	char url[1024];
	struct prov_http r;
	if (w->stable_token) {
		cJSON *req = cJSON_CreateObject();
		cJSON_AddStringToObject(req, "grant_type", "client_credential");
		cJSON_AddStringToObject(req, "appid", w->app_id);
		cJSON_AddStringToObject(req, "secret", w->app_secret);
		cJSON_AddFalseToObject(req, "force_refresh");
		char *body = cJSON_PrintUnformatted(req);
		cJSON_Delete(req);
		const char *hdrs[] = {"Content-Type: application/json", NULL};
		snprintf(url, sizeof(url), "%s/cgi-bin/stable_token", w->base);
		prov_request(c, "POST", url, hdrs, body ? body : "{}", body ? strlen(body) : 2, NULL, &r);
		free(body);
	} else {
		char *id = prov_urlencode(w->app_id), *secret = prov_urlencode(w->app_secret);
		snprintf(url, sizeof(url), "%s/cgi-bin/token?grant_type=client_credential&appid=%s&secret=%s", w->base,
		         id ? id : "", secret ? secret : "");
		free(id);
		free(secret);
		prov_request(c, "GET", url, NULL, NULL, 0, NULL, &r);
	}
	cJSON *j = r.status == 200 && r.body ? cJSON_Parse(r.body) : NULL;
	const char *tok = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "access_token"));
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
	const char *msg;
	long code = api_error(j, &msg);
	int rv = -1;
	if (tok && strlen(tok) < sizeof(w->access_token) &&
	    strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                "0123456789_-*.") == strlen(tok)) {
		double secs = cJSON_IsNumber(exp) ? exp->valuedouble : 7200;
		secs = secs > 600 ? secs - 300 : secs / 2; /* renewed well before WeChat lets it lapse */
		snprintf(w->access_token, sizeof(w->access_token), "%s", tok);
		w->token_expires_ms = now_ms() + (int64_t)(secs * 1000);
		rv = 0;
	} else if (r.status == 0) {
		snprintf(why, why_len, "access token: %s", r.error);
	} else {
		snprintf(why, why_len, "access token refused: HTTP %ld, errcode %ld: %.200s", r.status, code,
		         msg ? msg : "(no errmsg)");
	}
	cJSON_Delete(j);
	prov_http_free(&r);
	return rv;
}

/* The current access token copied into out (fetched when there is none or it expired; dropped first when stale). */
static int token_get(struct wechat *w, struct prov_client *c, int drop, char *out, size_t outlen, char *why,
                     size_t why_len)
{
	pthread_mutex_lock(&w->token_lock);
	if (drop)
		w->token_expires_ms = 0;
	int rv = 0;
	if (w->token_expires_ms <= now_ms())
		rv = token_fetch_locked(w, c, why, why_len);
	if (rv == 0)
		snprintf(out, outlen, "%s", w->access_token);
	/* The channel is down while WeChat refuses the token (a wrong AppSecret, an IP not allowed): said on change. */
	int change = w->said_up != (rv == 0);
	w->said_up = rv == 0;
	pthread_mutex_unlock(&w->token_lock);
	if (change && PARLEY_HOST_HAS(w->host, health))
		w->host->health(w->inst, rv == 0, rv == 0 ? NULL : why);
	return rv;
}

/* The customer-service message for env: text (attachments' URLs on lines of their own), or a msgmenu for buttons. */
static char *build_message(const struct parley_host *h, const parley_envelope *env, const char *openid)
{
	const char *text = h->envelope_get_str(env, "text");
	char *atts_s = h->envelope_get_json(env, "attachments");
	char *meta_s = h->envelope_get_json(env, "meta");
	cJSON *atts = atts_s ? cJSON_Parse(atts_s) : NULL, *meta = meta_s ? cJSON_Parse(meta_s) : NULL;
	free(atts_s);
	free(meta_s);
	/* The text, then each attachment's URL on a line of its own: the API sends media by its own ids only. */
	size_t cap = (text ? strlen(text) : 0) + 1, at = 0;
	const cJSON *a;
	cJSON_ArrayForEach(a, atts)
	{
		const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "url"));
		cap += url ? strlen(url) + 1 : 0;
	}
	char *content = calloc(1, cap);
	if (content && text)
		at += (size_t)snprintf(content, cap, "%s", text);
	cJSON_ArrayForEach(a, atts)
	{
		const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "url"));
		if (content && url)
			at += (size_t)snprintf(content + at, cap - at, "%s%s", at ? "\n" : "", url);
	}
	cJSON *msg = cJSON_CreateObject();
	cJSON_AddStringToObject(msg, "touser", openid);
	const cJSON *buttons = cJSON_GetObjectItemCaseSensitive(meta, "buttons");
	if (cJSON_IsArray(buttons) && cJSON_GetArraySize(buttons) > 0) {
		/* A menu the user taps: the tap comes back as a text with bizmsgmenuid (meta.reply_id). */
		cJSON_AddStringToObject(msg, "msgtype", "msgmenu");
		cJSON *menu = cJSON_AddObjectToObject(msg, "msgmenu");
		cJSON_AddStringToObject(menu, "head_content", content ? content : "");
		cJSON *list = cJSON_AddArrayToObject(menu, "list");
		const cJSON *b;
		cJSON_ArrayForEach(b, buttons)
		{
			const char *title = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "title"));
			const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "id"));
			cJSON *one = cJSON_CreateObject();
			cJSON_AddStringToObject(one, "id", id ? id : (title ? title : ""));
			cJSON_AddStringToObject(one, "content", title ? title : "");
			cJSON_AddItemToArray(list, one);
		}
		cJSON_AddStringToObject(menu, "tail_content", "");
	} else {
		cJSON_AddStringToObject(msg, "msgtype", "text");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(msg, "text"), "content", content ? content : "");
	}
	char *out = cJSON_PrintUnformatted(msg);
	cJSON_Delete(msg);
	cJSON_Delete(atts);
	cJSON_Delete(meta);
	free(content);
	return out;
}

/* What an errcode of the send means. */
static void classify(long code, const char *msg, struct parley_send_result *res)
{
	snprintf(res->error_code, sizeof(res->error_code), "%ld", code);
	res->outcome = code == -1 || code == 45009 || code == 45011 || token_errcode(code) ? PARLEY_SEND_RETRY
	                                                                                   : PARLEY_SEND_PERMANENT;
	if (code == 45015)
		snprintf(res->error_text, sizeof(res->error_text),
		         "45015: outside the 48-hour window: the user has not written to the account in the last 48 "
		         "hours, and WeChat takes customer-service messages only within them (%.200s)",
		         msg ? msg : "response out of time limit");
	else if (code == 45047)
		snprintf(res->error_text, sizeof(res->error_text),
		         "45047: over the customer-service messages allowed since the user last wrote (%.200s)",
		         msg ? msg : "out of response count limit");
	else
		snprintf(res->error_text, sizeof(res->error_text), "%ld: %.400s", code, msg ? msg : "(no errmsg)");
}

int wechat_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct wechat *w = data;
	const struct parley_host *h = w->host;
	const char *to = h->envelope_get_str(env, "to");
	const char *openid = to && strncmp(to, "wechat:", 7) == 0 ? to + 7 : NULL;
	size_t n = openid ? strlen(openid) : 0;
	if (n < 1 || n > 64 ||
	    strspn(openid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != n) {
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text), "'to' must be wechat:<OpenID>");
		return 0;
	}
	char *body = build_message(h, env, openid);
	if (!body) {
		res->outcome = PARLEY_SEND_RETRY;
		snprintf(res->error_text, sizeof(res->error_text), "out of memory");
		return 0;
	}
	const char *hdrs[] = {"Content-Type: application/json", NULL};
	for (int attempt = 0; attempt < 2; attempt++) {
		char tok[600], why[300], url[1024];
		if (token_get(w, &w->client, attempt > 0, tok, sizeof(tok), why, sizeof(why)) != 0) {
			/* The operator can fix an app secret or the IP allowlist: retried, dead-lettered after the last
			 * try. */
			res->outcome = PARLEY_SEND_RETRY;
			snprintf(res->error_text, sizeof(res->error_text), "%s", why);
			break;
		}
		snprintf(url, sizeof(url), "%s/cgi-bin/message/custom/send?access_token=%s", w->base, tok);
		struct prov_http r;
		prov_request(&w->client, "POST", url, hdrs, body, strlen(body), NULL, &r);
		cJSON *j = r.status == 200 && r.body ? cJSON_Parse(r.body) : NULL;
		const char *msg;
		long code = api_error(j, &msg);
		if (r.status != 200 || !cJSON_IsObject(j))
			prov_classify(&r, NULL, r.status == 200 ? "an answer that is not JSON" : NULL, res);
		else if (code == 0)
			prov_classify(&r, NULL, NULL, res);
		else
			classify(code, msg, res);
		cJSON_Delete(j);
		prov_http_free(&r);
		if (!(r.status == 200 && token_errcode(code)))
			break;
	}
	free(body);
	return 0;
}

int wechat_fetch_media(void *arg, struct prov_client *client, const char *media_id, struct prov_http *out)
{
	struct wechat *w = arg;
	const char *bad = prov_ref_token(media_id);
	if (bad)
		return prov_fetch_refuse(out, "MediaId '%.64s': %s", media_id, bad);
	for (int attempt = 0; attempt < 2; attempt++) {
		char tok[600], why[300], url[1024];
		if (token_get(w, client, attempt > 0, tok, sizeof(tok), why, sizeof(why)) != 0) {
			memset(out, 0, sizeof(*out));
			snprintf(out->error, sizeof(out->error), "%.250s", why);
			return -1;
		}
		snprintf(url, sizeof(url), "%s/cgi-bin/media/get?access_token=%s&media_id=%s", w->base, tok, media_id);
		int rv = prov_fetch(client, &w->policy, url, NULL, out);
		/* An error is JSON with an errcode; the media itself is anything else. */
		if (rv != 0 || !strstr(out->content_type, "json"))
			return rv;
		cJSON *j = out->body ? cJSON_Parse(out->body) : NULL;
		const char *msg;
		long code = api_error(j, &msg);
		cJSON_Delete(j);
		if (code == 0)
			return 0;
		if (!token_errcode(code) || attempt > 0) {
			snprintf(out->error, sizeof(out->error), "media/get errcode %ld", code);
			out->status = 502;
			return 0;
		}
		prov_http_free(out);
	}
	return -1;
}
