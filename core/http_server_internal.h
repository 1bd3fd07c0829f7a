/*
 * http_server_internal.h: what the files of the HTTP server share:
 * http_server.c (connections, requests, answers, the daemon) and
 * http_stream.c (response bodies that stay open).  Internal to them.
 */
#ifndef PARLEY_CORE_HTTP_SERVER_INTERNAL_H
#define PARLEY_CORE_HTTP_SERVER_INTERNAL_H

#include "http_server.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

struct http_conns;

enum phase { PH_HEAD, PH_BODY, PH_HANDLER };

struct header {
	const char *name, *value;
};

struct parley_http_request {
	struct http_server *srv;
	struct MHD_Connection *mc;
	struct parley_http_request *prev, *next;
	atomic_int refs; /* MHD's until completed, the handler's until it answers */
	atomic_int completed;
	enum phase phase;
	char *uri; /* path NUL query, copied from the request line */
	const char *path, *query;
	char *method;
	char *label;
	/* Header snapshot (one block), so accessors never reach into MHD from other threads. */
	struct header *headers;
	size_t n_headers;
	http_handler handler;
	void *handler_arg;
	uint64_t max_body;
	atomic_int tracked; /* counted in srv->inflight */
	int routed;
	int refuse_status;
	char *refuse_msg;
	const char *refuse_reason;
	uint64_t dropped;
	int queued; /* an answer is queued: drop whatever MHD still hands us */
	char *body;
	size_t len, cap;
	/* A protocol switch (http_server_upgrade()): called once, with the socket or with -1. */
	http_upgrade_cb upgrade_cb;
	void *upgrade_arg;
	atomic_int upgrade_called;
	pthread_mutex_t lock; /* answer, answered, suspended */
	struct MHD_Response *answer;
	unsigned answer_status;
	int answered, suspended;
	char client_ip[64];      /* the peer's address, numeric */
	struct timespec started; /* the request line came in (CLOCK_MONOTONIC) */
	char request_id[32];     /* a ULID: in X-Request-Id, the log lines and the envelopes' meta */
	int webhook;             /* served tracked: its answer's time goes to parley_webhook_seconds */
};

struct http_server {
	struct http_server_config cfg;
	int tls; /* serving HTTPS */
	struct metrics *metrics;
	http_router route;
	void *route_arg;
	struct MHD_Daemon *d;
	struct http_conns *conns;
	pthread_mutex_t lock; /* reqs */
	struct parley_http_request *reqs;
	atomic_long inflight;
	pthread_mutex_t resume_lock; /* MHD_resume_connection() against stopping */
	int stopping;
	struct http_stream *streams; /* open streams, under lock */
	int starting;
	char *start_error;
	char *tls_cert, *tls_key; /* MHD reads them while it starts; kept until free */
};

/* Store resp as r's answer, resuming the connection if the handler already returned: 0, or -1 when r was answered. */
int srv_answer(parley_http_request *r, unsigned status, struct MHD_Response *resp);
/* Drop one reference to r (MHD's or the handler's); the last frees it. */
void srv_request_unref(parley_http_request *r);
/* Count an answer by status in parley_http_responses_total. */
void srv_count_response(struct http_server *s, unsigned status);

/* At stop: end every open stream's body, then (after the daemon is gone) fire what MHD left undone. */
void http_streams_end(struct http_server *s);
void http_streams_gone(struct http_server *s);

#endif
