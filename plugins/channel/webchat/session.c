/*
 * session.c: POST /session, where a visitor gets a signed session token,
 * verified by the site's identity token when one comes (its nonce is
 * accepted once).
 */
#include "webchat.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 0 when nonce is new (remembered from now on), -1 when it was seen. */
static int nonce_fresh(struct webchat *w, const char *nonce, int64_t exp)
{
	char key[96], val[32];
	snprintf(key, sizeof(key), "nonce:%s", nonce);
	snprintf(val, sizeof(val), "%lld", (long long)exp);
	pthread_mutex_lock(&w->lock);
	int seen = strmap_get(&w->nonces, nonce) != NULL;
	if (!seen)
		strmap_put(&w->nonces, nonce, val);
	pthread_mutex_unlock(&w->lock);
	if (seen)
		return -1;
	char *stored = NULL;
	size_t n;
	if (w->h->kv_get(w->inst, key, &stored, &n) == 0) {
		free(stored);
		return -1; /* seen before a restart, or by another node */
	}
	w->h->kv_set(w->inst, key, val, strlen(val));
	return 0;
}

/* POST /session {name?, email?, identity_token?}: a new visitor session and its token. */
void wc_on_session(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const struct parley_host *h = w->h;
	const char *origin = wc_check_origin(w, req);
	if (!origin)
		return;
	cJSON *b = wc_json_body(w, req, origin, 1);
	if (!b)
		return;
	struct wc_session s;
	memset(&s, 0, sizeof(s));
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
	const cJSON *email = cJSON_GetObjectItemCaseSensitive(b, "email");
	const cJSON *idt = cJSON_GetObjectItemCaseSensitive(b, "identity_token");
	const char *bad = NULL;
	if (name && !cJSON_IsNull(name) && (!cJSON_IsString(name) || strlen(name->valuestring) >= sizeof(s.name)))
		bad = "'name' must be a string of at most 127 bytes";
	else if (email && !cJSON_IsNull(email) &&
	         (!cJSON_IsString(email) || strlen(email->valuestring) >= sizeof(s.email) ||
	          (email->valuestring[0] && !strchr(email->valuestring, '@'))))
		bad = "'email' must be an e-mail address of at most 255 bytes";
	else if (idt && !cJSON_IsNull(idt) && !cJSON_IsString(idt))
		bad = "'identity_token' must be a string";
	if (bad) {
		cJSON_Delete(b);
		wc_respond_error(w, req, origin, 400, "bad_request", bad);
		return;
	}
	if (cJSON_IsString(name))
		snprintf(s.name, sizeof(s.name), "%s", name->valuestring);
	if (cJSON_IsString(email))
		snprintf(s.email, sizeof(s.email), "%s", email->valuestring);
	if (cJSON_IsString(idt) && idt->valuestring[0]) {
		struct wc_identity id;
		const char *why = NULL;
		if (wc_identity_check(h, w->secret, w->name, idt->valuestring, wc_now_s(), &id, &why) != 0) {
			cJSON_Delete(b);
			h->metric_add(w->inst, "webchat_identity_refused_total", 1);
			wc_respond_error(w, req, origin, 401, "bad_identity", why);
			return;
		}
		if (nonce_fresh(w, id.nonce, id.exp) != 0) {
			cJSON_Delete(b);
			h->metric_add(w->inst, "webchat_identity_refused_total", 1);
			wc_respond_error(
			        w, req, origin, 401, "bad_identity",
			        "identity_token was used before (its nonce is not new): the site must sign a new one");
			return;
		}
		snprintf(s.uid, sizeof(s.uid), "%s", id.uid);
		snprintf(s.uemail, sizeof(s.uemail), "%s", id.email);
	}
	cJSON_Delete(b);
	if (w->require_identity && !s.uid[0]) {
		wc_respond_error(w, req, origin, 401, "identity_required",
		                 "this chat requires a signed identity_token from the site (require_identity: true)");
		return;
	}
	s.iat = wc_now_s();
	char *tok = NULL;
	if (wc_session_id(s.sid) != 0 || !(tok = wc_session_token(h, w->secret, w->name, &s))) {
		wc_respond_error(w, req, origin, 503, "unavailable", "cannot make a session right now: retry later");
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddStringToObject(o, "token", tok);
	cJSON_AddStringToObject(o, "session_id", s.sid);
	cJSON_AddBoolToObject(o, "verified", s.uid[0] != 0);
	cJSON_AddStringToObject(o, "title", w->title);
	cJSON_AddBoolToObject(o, "prechat", w->prechat);
	cJSON_AddNumberToObject(o, "max_message", (double)w->max_message);
	free(tok);
	wc_respond_json(w, req, origin, 200, o);
}
