/*
 * webchat.c: the `webchat` channel type: a chat window on the company's own
 * site, served by the gateway.
 *
 * One <script src="https://gw.example/webchat/<channel>/widget.js"> tag on
 * any page (an origin in allowed_origins) shows the button and the window.
 * The widget gets a signed session token (POST /session), keeps it in the
 * page's localStorage, opens a WebSocket (GET /ws) and sends the token as
 * its first message: the token never travels in a URL.  A visitor's message
 * becomes an inbound envelope from webchat:<session id>; the ack goes back
 * only after the commit.  Agents' replies (channel_send) go to every open
 * socket of that session; a visitor who comes back gets the conversation
 * from the store (GET /messages).  POST /messages does what the socket does,
 * for clients without one (and answers 413 over max_message).
 *
 * Public routes, under /webchat/<channel>: GET /widget.js, GET /settings, POST /session,
 * GET /ws, GET and POST /messages, POST /attachments, OPTIONS for CORS preflights.
 */
#include "token.h"

#include <cjson/cJSON.h>
#include <parley/parley.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strmap.h"

extern const unsigned char webchat_widget_js[];
extern const unsigned long webchat_widget_js_len;

#define HISTORY_MAX   200
#define CLIENT_ID_MAX 64

struct sock;

struct webchat {
	const struct parley_host *h;
	parley_instance *inst;
	const char *name;
	const char *secret;
	cJSON *origins; /* allowed_origins, a JSON array of strings */
	int any_origin;
	int64_t rate_per_min;
	uint64_t max_message;
	int require_identity;
	int prechat;
	int64_t ttl_s;
	const char *title;
	int64_t auth_timeout_ms;
	uint64_t max_attachment;
	parley_timer *sweeper;
	/* Attachments are written by a thread of the instance (attachment_put blocks for the disk). */
	pthread_t writer;
	int writer_started, writer_stop;
	pthread_cond_t jobs_cv;
	struct job *jobs;
	pthread_mutex_t lock; /* socks, rates, nonces */
	struct sock *socks;
	struct strmap rates;  /* session id -> "<minute> <count>" */
	struct strmap nonces; /* identity nonces seen since start (the store keeps them too) */
};

/* One visitor's WebSocket.  Freed when the socket closed and no submission still points at it. */
struct sock {
	struct webchat *w;
	parley_ws *ws; /* NULL once closed; under w->lock */
	struct sock *prev, *next;
	int refs;   /* under w->lock: the socket's own, one per submission in flight */
	int authed; /* after a valid auth message */
	int64_t opened_s;
	struct wc_session s;
};

/* An uploaded attachment waiting for the writer thread. */
struct job {
	struct job *next;
	parley_http_request *req;
	char origin[256];
	struct wc_session s;
	char client_id[65];
	char name[256];
	char content_type[128];
	unsigned char *data;
	size_t len;
};

/* A submission in flight: answered over HTTP or over a socket. */
struct pending {
	struct webchat *w;
	parley_http_request *req; /* or NULL */
	char origin[256];
	struct sock *sk; /* or NULL */
	char client_id[CLIENT_ID_MAX + 1];
	char sid[40];
	char *text;
	char *attachment; /* JSON {name, size, content_type} shown to the session's sockets, or NULL */
};

static const struct parley_config_key config_map[] = {
        {"secret", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "HMAC-SHA256 key (at least 32 characters) that signs session tokens and checks the site's identity tokens"},
        {"allowed_origins", PARLEY_CFG_LIST, NULL, 0,
         "origins of the sites that embed the widget (https://shop.example); \"*\" allows any; none allows none"},
        {"rate_limit", PARLEY_CFG_INT, "20", 0, "messages a visitor session may send per minute"},
        {"max_message", PARLEY_CFG_SIZE, "4k", 0, "the longest message text a visitor may send, in bytes"},
        {"require_identity", PARLEY_CFG_BOOL, "false", 0,
         "refuse visitors without a valid identity_token signed by the site"},
        {"prechat", PARLEY_CFG_BOOL, "false", 0, "ask the visitor's name and e-mail (unverified) before the chat"},
        {"session_ttl", PARLEY_CFG_DURATION, "30d", 0, "how long a visitor's session token stays valid"},
        {"title", PARLEY_CFG_STRING, "Chat with us", 0, "the chat window's title"},
        {"max_attachment", PARLEY_CFG_SIZE, "1MiB", 0,
         "the largest file a visitor may attach (http.max_body bounds it too); 0 turns attachments off"},
        {"auth_timeout", PARLEY_CFG_DURATION, "10s", 0,
         "a socket that has not sent its session token within this time is closed"},
        {NULL, 0, NULL, 0, NULL},
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* ------------------------------------------------------------------ HTTP */

/* The request's Origin when allowed, "" when it has none; NULL when refused. */
static const char *origin_of(struct webchat *w, parley_http_request *req)
{
	const char *o = w->h->http_header(req, "Origin");
	if (!o || !o[0])
		return "";
	if (w->any_origin)
		return o;
	const cJSON *it;
	cJSON_ArrayForEach(it, w->origins)
	{
		if (cJSON_IsString(it) && strcmp(it->valuestring, o) == 0)
			return o;
	}
	return NULL;
}

static void respond(struct webchat *w, parley_http_request *req, const char *origin, int status, const char *ctype,
                    const char *body, size_t len)
{
	const char *cors[] = {"Access-Control-Allow-Origin",
	                      origin,
	                      "Vary",
	                      "Origin",
	                      "Access-Control-Allow-Headers",
	                      "Authorization, Content-Type",
	                      "Access-Control-Allow-Methods",
	                      "GET, POST, OPTIONS",
	                      "Access-Control-Max-Age",
	                      "600",
	                      "Cache-Control",
	                      "no-store",
	                      NULL};
	const char *none[] = {"Cache-Control", "no-store", NULL};
	w->h->http_respond_with(req, status, ctype, origin && origin[0] ? cors : none, body, len);
}

static void respond_json(struct webchat *w, parley_http_request *req, const char *origin, int status, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);
	respond(w, req, origin, status, "application/json", s ? s : "{}", s ? strlen(s) : 2);
	free(s);
	cJSON_Delete(o);
}

static void respond_error(struct webchat *w, parley_http_request *req, const char *origin, int status, const char *code,
                          const char *message)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 0);
	cJSON_AddStringToObject(o, "code", code);
	cJSON_AddStringToObject(o, "error", message);
	respond_json(w, req, origin, status, o);
}

/* The Origin check every route but widget.js starts with; NULL when answered 403. */
static const char *check_origin(struct webchat *w, parley_http_request *req)
{
	const char *origin = origin_of(w, req);
	if (!origin) {
		w->h->metric_add(w->inst, "webchat_origin_refused_total", 1);
		respond_error(w, req, NULL, 403, "origin",
		              "this page's origin is not in the channel's allowed_origins");
	}
	return origin;
}

/* The session of a request's Authorization: Bearer token; 0, or answered 401. */
static int bearer(struct webchat *w, parley_http_request *req, const char *origin, struct wc_session *s)
{
	const char *a = w->h->http_header(req, "Authorization");
	const char *why = "Authorization: Bearer <session token> is required";
	if (a && strncmp(a, "Bearer ", 7) == 0 &&
	    wc_session_check(w->h, w->secret, w->name, a + 7, now_s(), w->ttl_s, s, &why) == 0)
		return 0;
	respond_error(w, req, origin, 401, "bad_token", why);
	return -1;
}

static cJSON *json_body(struct webchat *w, parley_http_request *req, const char *origin, int empty_ok)
{
	size_t len;
	const char *body = w->h->http_body(req, &len);
	char why[200];
	if (len == 0 && empty_ok)
		return cJSON_CreateObject();
	if (w->h->json_check(body, len, why, sizeof(why)) != 0) {
		respond_error(w, req, origin, 400, "bad_request", why);
		return NULL;
	}
	cJSON *o = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		respond_error(w, req, origin, 400, "bad_request", "the body must be a JSON object");
		return NULL;
	}
	return o;
}

static void on_widget(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const char *headers[] = {"Cache-Control", "public, max-age=300", "X-Content-Type-Options", "nosniff", NULL};
	w->h->http_respond_with(req, 200, "application/javascript; charset=utf-8", headers,
	                        (const char *)webchat_widget_js, (size_t)webchat_widget_js_len);
}

static void on_preflight(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const char *origin = check_origin(w, req);
	if (origin)
		respond(w, req, origin, 204, NULL, "", 0);
}

/* GET /settings: what the widget shows before a session exists. */
static void on_settings(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const char *origin = check_origin(w, req);
	if (!origin)
		return;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddStringToObject(o, "title", w->title);
	cJSON_AddBoolToObject(o, "prechat", w->prechat);
	cJSON_AddBoolToObject(o, "require_identity", w->require_identity);
	cJSON_AddNumberToObject(o, "max_message", (double)w->max_message);
	respond_json(w, req, origin, 200, o);
}

/* ------------------------------------------------------------- sessions */

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
static void on_session(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const struct parley_host *h = w->h;
	const char *origin = check_origin(w, req);
	if (!origin)
		return;
	cJSON *b = json_body(w, req, origin, 1);
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
		respond_error(w, req, origin, 400, "bad_request", bad);
		return;
	}
	if (cJSON_IsString(name))
		snprintf(s.name, sizeof(s.name), "%s", name->valuestring);
	if (cJSON_IsString(email))
		snprintf(s.email, sizeof(s.email), "%s", email->valuestring);
	if (cJSON_IsString(idt) && idt->valuestring[0]) {
		struct wc_identity id;
		const char *why = NULL;
		if (wc_identity_check(h, w->secret, w->name, idt->valuestring, now_s(), &id, &why) != 0) {
			cJSON_Delete(b);
			h->metric_add(w->inst, "webchat_identity_refused_total", 1);
			respond_error(w, req, origin, 401, "bad_identity", why);
			return;
		}
		if (nonce_fresh(w, id.nonce, id.exp) != 0) {
			cJSON_Delete(b);
			h->metric_add(w->inst, "webchat_identity_refused_total", 1);
			respond_error(
			        w, req, origin, 401, "bad_identity",
			        "identity_token was used before (its nonce is not new): the site must sign a new one");
			return;
		}
		snprintf(s.uid, sizeof(s.uid), "%s", id.uid);
		snprintf(s.uemail, sizeof(s.uemail), "%s", id.email);
	}
	cJSON_Delete(b);
	if (w->require_identity && !s.uid[0]) {
		respond_error(w, req, origin, 401, "identity_required",
		              "this chat requires a signed identity_token from the site (require_identity: true)");
		return;
	}
	s.iat = now_s();
	char *tok = NULL;
	if (wc_session_id(s.sid) != 0 || !(tok = wc_session_token(h, w->secret, w->name, &s))) {
		respond_error(w, req, origin, 503, "unavailable", "cannot make a session right now: retry later");
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
	respond_json(w, req, origin, 200, o);
}

/* ------------------------------------------------------------- messages */

static void sock_unref_locked(struct sock *sk)
{
	if (--sk->refs == 0)
		free(sk);
}

/* Send json to every open, authenticated socket of session sid except `but` (w->lock held). */
static void push_locked(struct webchat *w, const char *sid, const struct sock *but, const char *json)
{
	for (struct sock *sk = w->socks; sk; sk = sk->next)
		if (sk != but && sk->ws && sk->authed && strcmp(sk->s.sid, sid) == 0)
			w->h->ws_send(sk->ws, json, strlen(json));
}

static void sock_send(struct sock *sk, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s)
		return;
	pthread_mutex_lock(&sk->w->lock);
	if (sk->ws)
		sk->w->h->ws_send(sk->ws, s, strlen(s));
	pthread_mutex_unlock(&sk->w->lock);
	free(s);
}

static cJSON *error_frame(const char *code, const char *message, const char *client_id)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", "error");
	cJSON_AddStringToObject(o, "code", code);
	cJSON_AddStringToObject(o, "message", message);
	if (client_id && client_id[0])
		cJSON_AddStringToObject(o, "client_id", client_id);
	return o;
}

/* The submission is committed (or not): the ack, and the message to the session's other sockets. */
static void committed(void *arg, int result, const char *const *ids, size_t n)
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
			push_locked(w, p->sid, p->sk, s);
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
			respond_json(w, p->req, p->origin, 200, o);
		} else {
			respond_error(w, p->req, p->origin, 503, "not_stored",
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
			o = error_frame("not_stored", "the message was not stored: send it again", p->client_id);
		}
		sock_send(p->sk, o);
		pthread_mutex_lock(&w->lock);
		sock_unref_locked(p->sk);
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
static int rate_ok(struct webchat *w, const char *sid)
{
	double now = now_s(), tokens = (double)w->rate_per_min, at = now;
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

static int client_id_ok(const char *c)
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
static parley_envelope *visitor_envelope(struct webchat *w, const struct wc_session *s, const char *client_id)
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
 * the host's until committed()), or the HTTP status of the refusal with
 * *code and *why (p is still the caller's).
 */
static int visitor_message(struct webchat *w, const struct wc_session *s, const cJSON *msg, struct pending *p,
                           const char **code, const char **why)
{
	const struct parley_host *h = w->h;
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(msg, "text");
	const cJSON *cid = cJSON_GetObjectItemCaseSensitive(msg, "client_id");
	*code = "bad_request";
	if (cid && (!cJSON_IsString(cid) || !client_id_ok(cid->valuestring))) {
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
	if (!rate_ok(w, s->sid)) {
		*code = "rate_limited";
		*why = "too many messages this minute: wait a little";
		h->metric_add(w->inst, "webchat_rate_limited_total", 1);
		return 429;
	}
	parley_envelope *env = visitor_envelope(w, s, p->client_id);
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
	int rv = h->submit_ids(w->inst, envs, 1, committed, p);
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
static void on_post_message(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const char *origin = check_origin(w, req);
	struct wc_session s;
	if (!origin || bearer(w, req, origin, &s) != 0)
		return;
	if (w->require_identity && !s.uid[0]) {
		respond_error(w, req, origin, 401, "identity_required", "this chat requires a verified identity");
		return;
	}
	size_t len;
	w->h->http_body(req, &len);
	if (len > w->max_message * 6 + 1024) {
		respond_error(w, req, origin, 413, "too_large", "the message is longer than this chat's max_message");
		return;
	}
	cJSON *b = json_body(w, req, origin, 0);
	if (!b)
		return;
	struct pending *p = calloc(1, sizeof(*p));
	if (!p) {
		cJSON_Delete(b);
		respond_error(w, req, origin, 503, "unavailable", "out of memory");
		return;
	}
	p->w = w;
	p->req = req;
	snprintf(p->origin, sizeof(p->origin), "%s", origin);
	const char *code, *why;
	int status = visitor_message(w, &s, b, p, &code, &why);
	cJSON_Delete(b);
	if (status) {
		free(p);
		respond_error(w, req, origin, status, code, why);
	}
}

/* The session's messages from the store, oldest first (at most HISTORY_MAX, the latest). */
static cJSON *history(struct webchat *w, const char *sid)
{
	char urn[64];
	snprintf(urn, sizeof(urn), "webchat:%s", sid);
	cJSON *out = cJSON_CreateArray();
	char after[64] = "";
	for (int page = 0; page < 20; page++) {
		cJSON *q = cJSON_CreateObject();
		cJSON_AddStringToObject(q, "channel", w->name);
		cJSON_AddStringToObject(q, "address", urn);
		cJSON_AddNumberToObject(q, "limit", 500);
		if (after[0])
			cJSON_AddStringToObject(q, "after_id", after);
		char *qs = cJSON_PrintUnformatted(q);
		cJSON_Delete(q);
		char *reply = NULL;
		int rv = qs ? w->h->store_query(w->inst, "messages.list", qs, &reply) : PARLEY_ENOMEM;
		free(qs);
		cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
		free(reply);
		if (!r) {
			cJSON_Delete(out);
			return NULL;
		}
		const cJSON *m;
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(r, "messages"))
		{
			const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "from"));
			const char *to = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "to"));
			const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "kind"));
			const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "text"));
			/* The store filters by address; this filter holds even with a store that does not. */
			const cJSON *atts = cJSON_GetObjectItemCaseSensitive(m, "attachments");
			if (!kind || strcmp(kind, "message") != 0 || (!text && !cJSON_GetArraySize(atts)) ||
			    !((from && strcmp(from, urn) == 0) || (to && strcmp(to, urn) == 0)))
				continue;
			cJSON *e = cJSON_CreateObject();
			const cJSON *a0 = cJSON_GetArrayItem(atts, 0);
			if (a0) {
				cJSON *a = cJSON_AddObjectToObject(e, "attachment");
				static const char *const af[] = {"name", "content_type", NULL};
				for (size_t i = 0; af[i]; i++) {
					const char *v =
					        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a0, af[i]));
					if (v)
						cJSON_AddStringToObject(a, af[i], v);
				}
				const cJSON *size = cJSON_GetObjectItemCaseSensitive(a0, "size");
				if (cJSON_IsNumber(size))
					cJSON_AddNumberToObject(a, "size", size->valuedouble);
			}
			static const char *const keep[] = {"id", "direction", "text", "received_at", "status", NULL};
			if (!text)
				cJSON_AddStringToObject(e, "text", "");
			for (size_t i = 0; keep[i]; i++) {
				const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, keep[i]));
				if (v)
					cJSON_AddStringToObject(e, keep[i], v);
			}
			cJSON_AddItemToArray(out, e);
			if (cJSON_GetArraySize(out) > HISTORY_MAX)
				cJSON_DeleteItemFromArray(out, 0);
		}
		const char *next = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "next_after_id"));
		int more = next && strlen(next) < sizeof(after);
		if (more)
			snprintf(after, sizeof(after), "%s", next);
		cJSON_Delete(r);
		if (!more)
			break;
	}
	return out;
}

/* GET /messages with Authorization: Bearer <session token>: the visitor's conversation so far. */
static void on_get_messages(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const char *origin = check_origin(w, req);
	struct wc_session s;
	if (!origin || bearer(w, req, origin, &s) != 0)
		return;
	cJSON *list = history(w, s.sid);
	if (!list) {
		respond_error(w, req, origin, 503, "unavailable", "the history cannot be read right now: retry later");
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddStringToObject(o, "session_id", s.sid);
	cJSON_AddItemToObject(o, "messages", list);
	respond_json(w, req, origin, 200, o);
}

/* ------------------------------------------------------------ attachments */

/* The writer thread: keep the bytes, then submit the message that names them. */
static void write_attachment(struct webchat *w, struct job *j)
{
	const struct parley_host *h = w->h;
	char sha[65];
	if (h->attachment_put(w->inst, NULL, 0, j->data, j->len, j->content_type, sha) != 0) {
		respond_error(w, j->req, j->origin, 503, "not_stored", "the file was not stored: send it again");
		return;
	}
	struct pending *p = calloc(1, sizeof(*p));
	parley_envelope *env = p ? visitor_envelope(w, &j->s, j->client_id) : NULL;
	if (!env) {
		free(p);
		respond_error(w, j->req, j->origin, 503, "unavailable", "out of memory");
		return;
	}
	p->w = w;
	p->req = j->req;
	snprintf(p->origin, sizeof(p->origin), "%s", j->origin);
	snprintf(p->client_id, sizeof(p->client_id), "%s", j->client_id);
	snprintf(p->sid, sizeof(p->sid), "%s", j->s.sid);
	char buf[600];
	cJSON *atts = cJSON_CreateArray();
	cJSON *a = cJSON_CreateObject();
	cJSON_AddItemToArray(atts, a);
	snprintf(buf, sizeof(buf), "attachments/%.2s/%s", sha, sha);
	cJSON_AddStringToObject(a, "ref", buf);
	cJSON_AddStringToObject(a, "sha256", sha);
	cJSON_AddNumberToObject(a, "size", (double)j->len);
	cJSON_AddStringToObject(a, "content_type", j->content_type);
	if (j->name[0])
		cJSON_AddStringToObject(a, "name", j->name);
	char *aj = cJSON_PrintUnformatted(atts);
	cJSON_Delete(atts);
	h->envelope_set_json(env, "attachments", aj ? aj : "[]");
	free(aj);
	cJSON *pub = cJSON_CreateObject();
	cJSON_AddStringToObject(pub, "name", j->name);
	cJSON_AddNumberToObject(pub, "size", (double)j->len);
	cJSON_AddStringToObject(pub, "content_type", j->content_type);
	p->attachment = cJSON_PrintUnformatted(pub);
	cJSON_Delete(pub);
	p->text = strdup("");
	const char *refused = h->envelope_error(env);
	parley_envelope *envs[1] = {env};
	if (refused || !p->text || h->submit_ids(w->inst, envs, 1, committed, p) != 0) {
		h->envelope_free(env);
		respond_error(w, j->req, j->origin, refused ? 400 : 503, refused ? "bad_request" : "unavailable",
		              refused ? refused : "the gateway cannot take messages right now: retry later");
		free(p->text);
		free(p->attachment);
		free(p);
	}
}

static void *writer_main(void *arg)
{
	struct webchat *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->jobs && !w->writer_stop)
			pthread_cond_wait(&w->jobs_cv, &w->lock);
		struct job *j = w->jobs;
		if (!j)
			break; /* stopping, and nothing left */
		w->jobs = j->next;
		pthread_mutex_unlock(&w->lock);
		write_attachment(w, j);
		free(j->data);
		free(j);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* POST /attachments?name=<file name>[&client_id=...]: the body is the file, typed by Content-Type. */
static void on_post_attachment(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const struct parley_host *h = w->h;
	const char *origin = check_origin(w, req);
	struct wc_session s;
	if (!origin || bearer(w, req, origin, &s) != 0)
		return;
	size_t len;
	const void *body = h->http_body(req, &len);
	const char *ctype = h->http_header(req, "Content-Type");
	if (!w->max_attachment) {
		respond_error(w, req, origin, 403, "no_attachments", "this chat takes no files (max_attachment: 0)");
		return;
	}
	if (len > w->max_attachment) {
		respond_error(w, req, origin, 413, "too_large", "the file is larger than this chat's max_attachment");
		return;
	}
	if (!len || !ctype || !ctype[0] || strlen(ctype) >= 128 || strchr(ctype, '\n')) {
		respond_error(w, req, origin, 400, "bad_request",
		              "send the file as the body, typed by its Content-Type");
		return;
	}
	struct job *j = calloc(1, sizeof(*j));
	if (!j || !(j->data = malloc(len))) {
		free(j);
		respond_error(w, req, origin, 503, "unavailable", "out of memory");
		return;
	}
	const char *q = h->http_query(req);
	for (const char *p = q; p && *p;) {
		size_t n = strcspn(p, "&");
		char *dst = strncmp(p, "name=", 5) == 0         ? j->name
		            : strncmp(p, "client_id=", 10) == 0 ? j->client_id
		                                                : NULL;
		size_t cap = dst == j->name ? sizeof(j->name) : sizeof(j->client_id);
		const char *v = dst ? strchr(p, '=') + 1 : NULL;
		/* percent-decode the value */
		for (size_t o = 0; v && v < p + n && o + 1 < cap; o++) {
			unsigned c = (unsigned char)*v;
			if (c == '%' && v + 2 < p + n + 1 && sscanf(v + 1, "%2x", &c) == 1)
				v += 3;
			else
				v += 1, c = c == '+' ? ' ' : c;
			dst[o] = (char)c;
			dst[o + 1] = '\0';
		}
		p += n + (p[n] == '&');
	}
	char why[160];
	if ((j->client_id[0] && !client_id_ok(j->client_id)) ||
	    h->text_check("name", j->name, strlen(j->name), why, sizeof(why)) != 0) {
		free(j->data);
		free(j);
		respond_error(w, req, origin, 400, "bad_request",
		              "'name' must be UTF-8 and 'client_id' 1-64 of A-Z a-z 0-9 - _");
		return;
	}
	if (!rate_ok(w, s.sid)) {
		free(j->data);
		free(j);
		respond_error(w, req, origin, 429, "rate_limited", "too many messages this minute: wait a little");
		return;
	}
	memcpy(j->data, body, len);
	j->len = len;
	j->req = req;
	j->s = s;
	snprintf(j->origin, sizeof(j->origin), "%s", origin);
	snprintf(j->content_type, sizeof(j->content_type), "%s", ctype);
	pthread_mutex_lock(&w->lock);
	struct job **tail = &w->jobs;
	while (*tail)
		tail = &(*tail)->next;
	*tail = j;
	pthread_cond_signal(&w->jobs_cv);
	pthread_mutex_unlock(&w->lock);
}

/* ----------------------------------------------------------- WebSockets */

static void on_ws_message(void *arg, parley_ws *ws, const char *text, size_t len)
{
	struct sock *sk = arg;
	struct webchat *w = sk->w;
	const struct parley_host *h = w->h;
	cJSON *m = cJSON_ParseWithLength(text, len);
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "type"));
	if (!cJSON_IsObject(m) || !type) {
		sock_send(sk, error_frame("bad_request", "each message is a JSON object with a 'type'", NULL));
		cJSON_Delete(m);
		return;
	}
	if (!sk->authed) {
		const char *why = "the first message must be {\"type\":\"auth\",\"token\":\"<session token>\"}";
		const char *tok = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "token"));
		int ok = strcmp(type, "auth") == 0 &&
		         wc_session_check(h, w->secret, w->name, tok, now_s(), w->ttl_s, &sk->s, &why) == 0;
		if (ok && w->require_identity && !sk->s.uid[0]) {
			ok = 0;
			why = "this chat requires a verified identity";
		}
		cJSON_Delete(m);
		if (!ok) {
			h->metric_add(w->inst, "webchat_auth_refused_total", 1);
			sock_send(sk, error_frame("bad_token", why, NULL));
			h->ws_close(ws, 4001, "authentication failed");
			return;
		}
		pthread_mutex_lock(&w->lock);
		sk->authed = 1;
		pthread_mutex_unlock(&w->lock);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "type", "ready");
		cJSON_AddStringToObject(o, "session_id", sk->s.sid);
		sock_send(sk, o);
		return;
	}
	if (strcmp(type, "message") != 0) {
		sock_send(sk, error_frame("bad_request", "unknown 'type': send \"message\"", NULL));
		cJSON_Delete(m);
		return;
	}
	struct pending *p = calloc(1, sizeof(*p));
	if (!p) {
		cJSON_Delete(m);
		return;
	}
	p->w = w;
	p->sk = sk;
	pthread_mutex_lock(&w->lock);
	sk->refs++;
	pthread_mutex_unlock(&w->lock);
	const char *code, *why;
	int status = visitor_message(w, &sk->s, m, p, &code, &why);
	cJSON_Delete(m);
	if (status) {
		sock_send(sk, error_frame(code, why, p->client_id));
		pthread_mutex_lock(&w->lock);
		sock_unref_locked(sk);
		pthread_mutex_unlock(&w->lock);
		free(p);
	}
}

static void on_ws_close(void *arg, parley_ws *ws)
{
	struct sock *sk = arg;
	struct webchat *w = sk->w;
	(void)ws;
	pthread_mutex_lock(&w->lock);
	sk->ws = NULL;
	if (sk->prev)
		sk->prev->next = sk->next;
	else
		w->socks = sk->next;
	if (sk->next)
		sk->next->prev = sk->prev;
	sk->prev = sk->next = NULL;
	sock_unref_locked(sk);
	pthread_mutex_unlock(&w->lock);
}

/* GET /ws: the Origin is checked before the switch; the token comes as the first message. */
static void on_ws(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	if (!check_origin(w, req))
		return;
	struct sock *sk = calloc(1, sizeof(*sk));
	if (!sk) {
		respond_error(w, req, NULL, 503, "unavailable", "out of memory");
		return;
	}
	sk->w = w;
	sk->refs = 1;
	sk->opened_s = now_s();
	/* JSON escapes can make the frame up to six times the text. */
	struct parley_ws_callbacks cb = {sizeof(cb), (size_t)w->max_message * 6 + 1024, on_ws_message, on_ws_close};
	pthread_mutex_lock(&w->lock);
	parley_ws *ws = w->h->ws_accept(req, &cb, sk);
	if (ws) {
		sk->ws = ws;
		sk->next = w->socks;
		if (w->socks)
			w->socks->prev = sk;
		w->socks = sk;
	}
	pthread_mutex_unlock(&w->lock);
	if (!ws)
		free(sk);
}

/* Sockets that never sent their token hold a connection for nothing: close them. */
static void sweep(void *arg)
{
	struct webchat *w = arg;
	int64_t limit = w->auth_timeout_ms / 1000;
	pthread_mutex_lock(&w->lock);
	for (struct sock *sk = w->socks; sk; sk = sk->next)
		if (sk->ws && !sk->authed && now_s() - sk->opened_s >= (limit > 0 ? limit : 1))
			w->h->ws_close(sk->ws, 4001, "no session token in time");
	pthread_mutex_unlock(&w->lock);
}

/* --------------------------------------------------------------- outbound */

static int wc_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct webchat *w = data;
	const struct parley_host *h = w->h;
	const char *to = h->envelope_get_str(env, "to");
	const char *text = h->envelope_get_str(env, "text");
	if (!to || strncmp(to, "webchat:", 8) != 0 || !to[8]) {
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text),
		         "'to' must be a web chat visitor, webchat:<session id>");
		return 0;
	}
	const char *id = h->envelope_get_str(env, "id");
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", "message");
	cJSON_AddStringToObject(o, "direction", "outbound");
	if (id)
		cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "text", text ? text : "");
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	/* No open socket is no failure: the message is stored, and the visitor sees it in the history. */
	pthread_mutex_lock(&w->lock);
	if (s)
		push_locked(w, to + 8, NULL, s);
	pthread_mutex_unlock(&w->lock);
	free(s);
	res->outcome = PARLEY_SEND_OK;
	if (id)
		snprintf(res->provider_id, sizeof(res->provider_id), "%s", id);
	return 0;
}

/* -------------------------------------------------------------- lifecycle */

static int wc_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	(void)errmsg;
	if (!PARLEY_HOST_HAS(h, ws_close))
		return PARLEY_ENOTSUP;
	struct webchat *w = calloc(1, sizeof(*w));
	if (!w)
		return PARLEY_ENOMEM;
	w->h = h;
	w->inst = inst;
	w->name = h->instance_name(inst);
	w->secret = h->config_str(inst, "secret");
	char *origins = h->config_json(inst, "allowed_origins");
	w->origins = cJSON_Parse(origins ? origins : "[]");
	free(origins);
	const cJSON *it;
	cJSON_ArrayForEach(it, w->origins)
	{
		if (cJSON_IsString(it) && strcmp(it->valuestring, "*") == 0)
			w->any_origin = 1;
	}
	h->config_int(inst, "rate_limit", &w->rate_per_min);
	h->config_size(inst, "max_message", &w->max_message);
	h->config_bool(inst, "require_identity", &w->require_identity);
	h->config_bool(inst, "prechat", &w->prechat);
	int64_t ttl_ms = 0;
	h->config_duration_ms(inst, "session_ttl", &ttl_ms);
	w->ttl_s = ttl_ms / 1000;
	w->title = h->config_str(inst, "title");
	h->config_duration_ms(inst, "auth_timeout", &w->auth_timeout_ms);
	h->config_size(inst, "max_attachment", &w->max_attachment);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->jobs_cv, NULL);
	*data = w;
	return 0;
}

static int wc_start(void *data, char **errmsg)
{
	struct webchat *w = data;
	const struct parley_host *h = w->h;
	(void)errmsg;
	static const struct {
		const char *method, *sub;
		parley_http_cb cb;
	} routes[] = {
	        {"GET", "/widget.js", on_widget},          {"GET", "/settings", on_settings},
	        {"OPTIONS", "/session", on_preflight},     {"POST", "/session", on_session},
	        {"OPTIONS", "/messages", on_preflight},    {"GET", "/messages", on_get_messages},
	        {"POST", "/messages", on_post_message},    {"GET", "/ws", on_ws},
	        {"OPTIONS", "/attachments", on_preflight}, {"POST", "/attachments", on_post_attachment},
	};
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		int rv = h->http_route_public(w->inst, routes[i].method, routes[i].sub, routes[i].cb);
		if (rv != 0)
			return rv;
	}
	if (pthread_create(&w->writer, NULL, writer_main, w) != 0)
		return PARLEY_EIO;
	w->writer_started = 1;
	return h->timer_start(w->inst, 1000, 1000, sweep, w, &w->sweeper);
}

static void wc_stop(void *data)
{
	struct webchat *w = data;
	if (w->sweeper)
		w->h->timer_stop(w->sweeper);
	w->sweeper = NULL;
	if (w->writer_started) {
		pthread_mutex_lock(&w->lock);
		w->writer_stop = 1;
		pthread_cond_signal(&w->jobs_cv);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->writer, NULL); /* it answers what was queued first */
		w->writer_started = 0;
	}
}

static void wc_destroy(void *data)
{
	struct webchat *w = data;
	/* The gateway closed every socket before stopping instances; what is left is unreferenced. */
	while (w->socks) {
		struct sock *sk = w->socks;
		w->socks = sk->next;
		free(sk);
	}
	strmap_free(&w->rates);
	strmap_free(&w->nonces);
	cJSON_Delete(w->origins);
	pthread_cond_destroy(&w->jobs_cv);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static int fail(char **errmsg, const char *msg)
{
	*errmsg = strdup(msg);
	return PARLEY_EINVAL;
}

/* An origin is scheme://host[:port], nothing more: what a browser sends in Origin. */
static int origin_valid(const char *o)
{
	const char *rest = strncmp(o, "https://", 8) == 0 ? o + 8 : strncmp(o, "http://", 7) == 0 ? o + 7 : NULL;
	return rest && rest[0] && !strpbrk(rest, "/?#@ ") && rest[strlen(rest) - 1] != ':';
}

static int wc_check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	(void)h;
	cJSON *c = cJSON_Parse(config_json ? config_json : "{}");
	const char *secret = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "secret"));
	const cJSON *origins = cJSON_GetObjectItemCaseSensitive(c, "allowed_origins");
	const char *rate = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "rate_limit"));
	int rv = 0;
	char msg[400];
	if (!secret || strlen(secret) < 32) {
		rv = fail(errmsg, "secret: at least 32 characters are needed (it signs visitors' session tokens); "
		                  "generate one with `openssl rand -hex 32`");
	} else if (rate && atoll(rate) < 1) {
		rv = fail(errmsg, "rate_limit: must be at least 1 message per minute");
	} else if (origins) {
		const cJSON *it;
		cJSON_ArrayForEach(it, origins)
		{
			if (!cJSON_IsString(it) ||
			    (strcmp(it->valuestring, "*") != 0 && !origin_valid(it->valuestring))) {
				snprintf(msg, sizeof(msg),
				         "allowed_origins: '%.200s' is not an origin: write scheme://host[:port] with "
				         "no path, "
				         "e.g. https://shop.example, or \"*\"",
				         cJSON_IsString(it) ? it->valuestring : "?");
				rv = fail(errmsg, msg);
				break;
			}
		}
	}
	cJSON_Delete(c);
	return rv;
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "webchat",
        .version = "1.0.0",
        .description = "a chat window on your own site: one script tag, WebSocket, signed visitor sessions",
        .config = config_map,
        .instance_create = wc_create,
        .instance_start = wc_start,
        .instance_stop = wc_stop,
        .instance_destroy = wc_destroy,
        .channel_send = wc_send,
        .check_config = wc_check,
};

PARLEY_PLUGIN_DEFINE(plugin)
