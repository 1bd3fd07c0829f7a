/*
 * isolate_child.h: what the two halves of `parley plugin-host` share: the
 * child's state (isolate_child.c runs the instance and answers the
 * gateway's calls) and its host table (isolate_child_host.c).
 */
#ifndef PARLEY_CORE_ISOLATE_CHILD_H
#define PARLEY_CORE_ISOLATE_CHILD_H

#include "config.h"
#include "gateway.h"
#include "isolate_rpc.h"
#include "loader.h"

#include <parley/parley.h>
#include <pthread.h>
#include <stdatomic.h>

struct child_ws;

struct route {
	char *method, *sub;
	int public_route;
	parley_http_cb cb;
};

/* A submission waiting for its completion from the gateway. */
struct submission {
	uint64_t token;
	parley_submit_cb done;
	parley_submit_ids_cb done_ids;
	void *arg;
	int returned; /* submit() has returned 0: the completion may run */
	struct submission *next;
};

struct child {
	struct parley_instance inst; /* first: the host functions find the child from it */
	struct parley_host host;
	struct plugin_registry reg;
	struct iso_rpc *rpc;
	struct cfg_node *config;
	cJSON *settings;
	atomic_uint_fast64_t epoch;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct route *routes;
	size_t n_routes;
	struct submission *subs;
	uint64_t next_token;
	int stopped;
	struct child_ws *wss; /* the WebSockets the plugin accepted (isolate_child_ws.c), under lock */
};

/* An HTTP request as the child got it. */
struct creq {
	struct child *ch;
	uint64_t token;
	char *method, *path, *query;
	cJSON *headers; /* [name, value, name, value, ...] */
	void *body;
	size_t len;
};

/* The webhook's request id while its handler runs on this thread (the gateway stamps what it submits). */
extern _Thread_local const char *child_rid;
/* 1 while this thread runs a webhook or an envelope for the gateway, which sent its epoch along. */
extern _Thread_local int child_in_call;

/* Free a request the child got (after its answer, or once it became a WebSocket). */
void child_req_free(struct creq *r);

/* parley_host.ws_accept, ws_send, ws_close in the child (isolate_child_ws.c). */
parley_ws *child_ws_accept(parley_http_request *req, const struct parley_ws_callbacks *cb, void *arg);
int child_ws_send(parley_ws *ws, const char *text, size_t len);
void child_ws_close(parley_ws *ws, int code, const char *reason);
/* The gateway's notes of a socket: a message from the client, its close (the serial lane). */
void child_ws_message(struct child *ch, const cJSON *hdr, const void *body, size_t len);
void child_ws_closed(struct child *ch, const cJSON *hdr);

/* The child's host table: the core's own, with what needs the gateway sent to it. */
void child_host_init(struct parley_host *h);
/* The gateway tells a submission's result: run its completion, once submit() has returned. */
void child_submitted(struct child *ch, const cJSON *hdr);
/* parley_host.http_respond of a request the child got. */
void child_respond(parley_http_request *req, int status, const char *content_type, const char *body, size_t len);

#endif
