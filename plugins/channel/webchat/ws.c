/*
 * ws.c: the visitors' WebSockets: GET /ws, the session token as the first
 * message, messages over the socket, close, and the sweep of sockets that
 * never authenticated.
 */
#include "webchat.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wc_sock_unref_locked(struct sock *sk)
{
	if (--sk->refs == 0)
		free(sk);
}

void wc_sock_send(struct sock *sk, cJSON *o)
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

cJSON *wc_error_frame(const char *code, const char *message, const char *client_id)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", "error");
	cJSON_AddStringToObject(o, "code", code);
	cJSON_AddStringToObject(o, "message", message);
	if (client_id && client_id[0])
		cJSON_AddStringToObject(o, "client_id", client_id);
	return o;
}

static void on_ws_message(void *arg, parley_ws *ws, const char *text, size_t len)
{
	struct sock *sk = arg;
	struct webchat *w = sk->w;
	const struct parley_host *h = w->h;
	cJSON *m = cJSON_ParseWithLength(text, len);
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "type"));
	if (!cJSON_IsObject(m) || !type) {
		wc_sock_send(sk, wc_error_frame("bad_request", "each message is a JSON object with a 'type'", NULL));
		cJSON_Delete(m);
		return;
	}
	if (!sk->authed) {
		const char *why = "the first message must be {\"type\":\"auth\",\"token\":\"<session token>\"}";
		const char *tok = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "token"));
		int ok = strcmp(type, "auth") == 0 &&
		         wc_session_check(h, w->secret, w->name, tok, wc_now_s(), w->ttl_s, &sk->s, &why) == 0;
		if (ok && w->require_identity && !sk->s.uid[0]) {
			ok = 0;
			why = "this chat requires a verified identity";
		}
		cJSON_Delete(m);
		if (!ok) {
			h->metric_add(w->inst, "webchat_auth_refused_total", 1);
			wc_sock_send(sk, wc_error_frame("bad_token", why, NULL));
			h->ws_close(ws, 4001, "authentication failed");
			return;
		}
		pthread_mutex_lock(&w->lock);
		sk->authed = 1;
		pthread_mutex_unlock(&w->lock);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "type", "ready");
		cJSON_AddStringToObject(o, "session_id", sk->s.sid);
		wc_sock_send(sk, o);
		return;
	}
	if (strcmp(type, "message") != 0) {
		wc_sock_send(sk, wc_error_frame("bad_request", "unknown 'type': send \"message\"", NULL));
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
	int status = wc_visitor_message(w, &sk->s, m, p, &code, &why);
	cJSON_Delete(m);
	if (status) {
		wc_sock_send(sk, wc_error_frame(code, why, p->client_id));
		pthread_mutex_lock(&w->lock);
		wc_sock_unref_locked(sk);
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
	wc_sock_unref_locked(sk);
	pthread_mutex_unlock(&w->lock);
}

/* GET /ws: the Origin is checked before the switch; the token comes as the first message. */
void wc_on_ws(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	if (!wc_check_origin(w, req))
		return;
	struct sock *sk = calloc(1, sizeof(*sk));
	if (!sk) {
		wc_respond_error(w, req, NULL, 503, "unavailable", "out of memory");
		return;
	}
	sk->w = w;
	sk->refs = 1;
	sk->opened_s = wc_now_s();
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
void wc_sweep(void *arg)
{
	struct webchat *w = arg;
	int64_t limit = w->auth_timeout_ms / 1000;
	pthread_mutex_lock(&w->lock);
	for (struct sock *sk = w->socks; sk; sk = sk->next)
		if (sk->ws && !sk->authed && wc_now_s() - sk->opened_s >= (limit > 0 ? limit : 1))
			w->h->ws_close(sk->ws, 4001, "no session token in time");
	pthread_mutex_unlock(&w->lock);
}
