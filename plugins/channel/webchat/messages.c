/*
 * messages.c: a visitor's message, from either door (POST /messages or a
 * socket): checked, rate-limited, made an inbound envelope and submitted;
 * answered once committed.
 */
#include "webchat.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The submission is committed (or not): the ack, and the message to the session's other sockets. */
void wc_committed(void *arg, int result, const char *const *ids, size_t n)
{
	struct pending *p = arg;
	struct webchat *w = p->w;
	const char *id = result == 0 && n ? ids[0] : NULL;
	if (id) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "type", "message");
		cJSON_AddStringToObject(m, "direction", "inbound");
		cJSON_AddStringToObject(m, "id", id);
		cJSON_AddStringToObject(m, "text", p->text);
		if (p->client_id[0])
			cJSON_AddStringToObject(m, "client_id", p->client_id);
		if (p->attachment)
			cJSON_AddItemToObject(m, "attachment", cJSON_Parse(p->attachment));
		char *s = cJSON_PrintUnformatted(m);
		cJSON_Delete(m);
		pthread_mutex_lock(&w->lock);
		if (s)
			wc_push_locked(w, p->sid, p->sk, s);
		pthread_mutex_unlock(&w->lock);
		free(s);
	}
	if (p->req) {
		if (id) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddBoolToObject(o, "ok", 1);
			cJSON_AddStringToObject(o, "id", id);
			if (p->client_id[0])
				cJSON_AddStringToObject(o, "client_id", p->client_id);
			wc_respond_json(w, p->req, p->origin, 200, o);
		} else {
			wc_respond_error(w, p->req, p->origin, 503, "not_stored",
			                 "the message was not stored: send it again");
		}
	} else if (p->sk) {
		cJSON *o;
		if (id) {
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "type", "ack");
			cJSON_AddStringToObject(o, "id", id);
			if (p->client_id[0])
				cJSON_AddStringToObject(o, "client_id", p->client_id);
		} else {
			o = wc_error_frame("not_stored", "the message was not stored: send it again", p->client_id);
		}
		wc_sock_send(p->sk, o);
		pthread_mutex_lock(&w->lock);
		wc_sock_unref_locked(p->sk);
		pthread_mutex_unlock(&w->lock);
	}
	free(p->text);
	free(p->attachment);
	free(p);
}

/* 1 when session sid may send one more message this minute (and counts it). */
/*
 * A token bucket per visitor session: rate_per_min messages at once, then
 * one more each 60/rate_per_min seconds.  (A window per calendar minute
 * would let a visitor send twice the limit across a minute's boundary.)
 */
int wc_rate_ok(struct webchat *w, const char *sid)
{
	double now = wc_now_s(), tokens = (double)w->rate_per_min, at = now;
	char val[64];
	pthread_mutex_lock(&w->lock);
	if (w->rates.n > 20000) { /* forget old sessions rather than grow without bound */
		strmap_free(&w->rates);
		memset(&w->rates, 0, sizeof(w->rates));
	}
	const char *v = strmap_get(&w->rates, sid);
	if (v && sscanf(v, "%lf %lf", &tokens, &at) == 2 && now > at)
		tokens += (now - at) * (double)w->rate_per_min / 60.0;
	if (tokens > (double)w->rate_per_min)
		tokens = (double)w->rate_per_min;
	int ok = tokens >= 1.0;
	snprintf(val, sizeof(val), "%.6f %.3f", ok ? tokens - 1.0 : tokens, now);
	strmap_put(&w->rates, sid, val);
	pthread_mutex_unlock(&w->lock);
	return ok;
}

int wc_client_id_ok(const char *c)
{
	size_t n = strlen(c);
	if (n < 1 || n > CLIENT_ID_MAX)
		return 0;
	for (; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
		      *c == '_'))
			return 0;
	return 1;
}

/*
 * A new inbound envelope from session s: from webchat:<sid>, external_id
 * <sid>/<client_id> (a resend after a lost ack is then the same message;
 * random without one), and meta.  NULL when out of memory.
 */
parley_envelope *wc_visitor_envelope(struct webchat *w, const struct wc_session *s, const char *client_id)
{
	const struct parley_host *h = w->h;
	parley_envelope *env = h->envelope_new(w->inst, "message", "inbound");
	if (!env)
		return NULL;
	char buf[600], rnd[40] = "";
	snprintf(buf, sizeof(buf), "webchat:%s", s->sid);
	h->envelope_set_str(env, "from", buf);
	if (!client_id[0])
		wc_session_id(rnd);
	snprintf(buf, sizeof(buf), "%s/%s", s->sid, client_id[0] ? client_id : rnd);
	h->envelope_set_str(env, "external_id", buf);
	/* What the visitor typed is kept apart from what the site vouched for: neither merges contacts by itself. */
	cJSON *meta = cJSON_CreateObject();
	cJSON *wc = cJSON_AddObjectToObject(meta, "webchat");
	cJSON_AddStringToObject(wc, "session_id", s->sid);
	if (s->name[0]) {
		cJSON_AddStringToObject(meta, "contact_name", s->name);
		cJSON_AddStringToObject(wc, "name", s->name);
	}
	if (s->email[0])
		cJSON_AddStringToObject(wc, "email", s->email);
	cJSON_AddBoolToObject(wc, "verified", s->uid[0] != 0);
	if (s->uid[0]) {
		cJSON_AddStringToObject(wc, "user_id", s->uid);
		if (s->uemail[0])
			cJSON_AddStringToObject(wc, "verified_email", s->uemail);
	}
	char *mj = cJSON_PrintUnformatted(meta);
	cJSON_Delete(meta);
	h->envelope_set_json(env, "meta", mj ? mj : "{}");
	free(mj);
	return env;
}

/*
 * A visitor's message: checked, counted, submitted.  0 when submitted (p is
 * the host's until wc_committed()), or the HTTP status of the refusal with
 * *code and *why (p is still the caller's).
 */
int wc_visitor_message(struct webchat *w, const struct wc_session *s, const cJSON *msg, struct pending *p,
                       const char **code, const char **why)
{
	const struct parley_host *h = w->h;
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(msg, "text");
	const cJSON *cid = cJSON_GetObjectItemCaseSensitive(msg, "client_id");
	*code = "bad_request";
	if (cid && (!cJSON_IsString(cid) || !wc_client_id_ok(cid->valuestring))) {
		*why = "'client_id' must be 1-64 characters of A-Z a-z 0-9 - _";
		return 400;
	}
	if (cid)
		snprintf(p->client_id, sizeof(p->client_id), "%s", cid->valuestring);
	if (!cJSON_IsString(text) || !text->valuestring[0]) {
		*why = "'text' is required: a non-empty string";
		return 400;
	}
	if (strlen(text->valuestring) > w->max_message) {
		*code = "too_large";
		*why = "the message is longer than this chat's max_message";
		h->metric_add(w->inst, "webchat_too_large_total", 1);
		return 413;
	}
	if (!wc_rate_ok(w, s->sid)) {
		*code = "rate_limited";
		*why = "too many messages this minute: wait a little";
		h->metric_add(w->inst, "webchat_rate_limited_total", 1);
		return 429;
	}
	parley_envelope *env = wc_visitor_envelope(w, s, p->client_id);
	if (!env) {
		*code = "unavailable";
		*why = "out of memory";
		return 503;
	}
	h->envelope_set_str(env, "text", text->valuestring);
	p->text = strdup(text->valuestring);
	snprintf(p->sid, sizeof(p->sid), "%s", s->sid);
	const char *refused = h->envelope_error(env);
	if (refused || !p->text) {
		h->envelope_free(env);
		free(p->text);
		p->text = NULL;
		*why = refused ? refused : "out of memory";
		return 400;
	}
	parley_envelope *envs[1] = {env};
	int rv = h->submit_ids(w->inst, envs, 1, wc_committed, p);
	if (rv != 0) {
		h->envelope_free(env);
		free(p->text);
		p->text = NULL;
		*code = "unavailable";
		*why = "the gateway cannot take messages right now: retry later";
		return 503;
	}
	return 0;
}

/* POST /messages {text, client_id?} with Authorization: Bearer <session token>. */
void wc_on_post_message(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const char *origin = wc_check_origin(w, req);
	struct wc_session s;
	if (!origin || wc_bearer(w, req, origin, &s) != 0)
		return;
	if (w->require_identity && !s.uid[0]) {
		wc_respond_error(w, req, origin, 401, "identity_required", "this chat requires a verified identity");
		return;
	}
	size_t len;
	w->h->http_body(req, &len);
	if (len > w->max_message * 6 + 1024) {
		wc_respond_error(w, req, origin, 413, "too_large",
		                 "the message is longer than this chat's max_message");
		return;
	}
	cJSON *b = wc_json_body(w, req, origin, 0);
	if (!b)
		return;
	struct pending *p = calloc(1, sizeof(*p));
	if (!p) {
		cJSON_Delete(b);
		wc_respond_error(w, req, origin, 503, "unavailable", "out of memory");
		return;
	}
	p->w = w;
	p->req = req;
	snprintf(p->origin, sizeof(p->origin), "%s", origin);
	const char *code, *why;
	int status = wc_visitor_message(w, &s, b, p, &code, &why);
	cJSON_Delete(b);
	if (status) {
		free(p);
		wc_respond_error(w, req, origin, status, code, why);
	}
}
