/*
 * webchat.h: internal to the webchat channel plugin (not an SDK header):
 * the instance's state, a visitor's socket, a queued attachment and a
 * submission in flight, shared by the plugin's files, and the functions
 * one file offers the others.  Every function here runs on the host's
 * threads unless it says otherwise; "_locked" ones need w->lock held.
 */
#ifndef PARLEY_WEBCHAT_H
#define PARLEY_WEBCHAT_H

#include "token.h"

#include <cjson/cJSON.h>
#include <parley/parley.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <parley/strmap.h>

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

static inline int64_t wc_now_s(void)
{
	return (int64_t)time(NULL);
}

/* http.c: answers with the CORS headers an allowed origin gets; wc_respond_json frees o. */
void wc_respond(struct webchat *w, parley_http_request *req, const char *origin, int status, const char *ctype,
                const char *body, size_t len);
void wc_respond_json(struct webchat *w, parley_http_request *req, const char *origin, int status, cJSON *o);
void wc_respond_error(struct webchat *w, parley_http_request *req, const char *origin, int status, const char *code,
                      const char *message);
/* The Origin check every route but widget.js starts with; NULL when answered 403. */
const char *wc_check_origin(struct webchat *w, parley_http_request *req);
/* The session of a request's Authorization: Bearer token; 0, or answered 401. */
int wc_bearer(struct webchat *w, parley_http_request *req, const char *origin, struct wc_session *s);
/* The request's body as a JSON object the caller frees; NULL when answered 400. */
cJSON *wc_json_body(struct webchat *w, parley_http_request *req, const char *origin, int empty_ok);

/* Routes (data is the struct webchat), registered by wc_start. */
void wc_on_widget(void *data, parley_http_request *req);
void wc_on_preflight(void *data, parley_http_request *req);
void wc_on_settings(void *data, parley_http_request *req);
void wc_on_session(void *data, parley_http_request *req);
void wc_on_post_message(void *data, parley_http_request *req);
void wc_on_get_messages(void *data, parley_http_request *req);
void wc_on_post_attachment(void *data, parley_http_request *req);
void wc_on_ws(void *data, parley_http_request *req);

/* messages.c: the submit_ids callback; it answers and frees the struct pending arg. */
void wc_committed(void *arg, int result, const char *const *ids, size_t n);
/* 1 when session sid may send one more message this minute (and counts it). */
int wc_rate_ok(struct webchat *w, const char *sid);
int wc_client_id_ok(const char *c);
/* A new inbound envelope from session s, the caller's; NULL when out of memory. */
parley_envelope *wc_visitor_envelope(struct webchat *w, const struct wc_session *s, const char *client_id);
/*
 * A visitor's message: 0 when submitted (p is the host's until
 * wc_committed()), or the HTTP status of the refusal with *code and *why
 * (p is still the caller's).
 */
int wc_visitor_message(struct webchat *w, const struct wc_session *s, const cJSON *msg, struct pending *p,
                       const char **code, const char **why);

/* outbound.c: json to every open, authenticated socket of session sid except `but` (w->lock held). */
void wc_push_locked(struct webchat *w, const char *sid, const struct sock *but, const char *json);
int wc_send(void *data, const parley_envelope *env, struct parley_send_result *res);

/* ws.c: wc_sock_send sends o (and frees it) if the socket is still open; it takes w->lock. */
void wc_sock_unref_locked(struct sock *sk);
void wc_sock_send(struct sock *sk, cJSON *o);
/* An error frame the caller owns. */
cJSON *wc_error_frame(const char *code, const char *message, const char *client_id);
/* The timer callback (arg is the struct webchat) that closes sockets without a token in time. */
void wc_sweep(void *arg);

/* attachments.c: the instance's writer thread (arg is the struct webchat); wc_stop joins it. */
void *wc_writer_main(void *arg);

#endif
