/*
 * isolate_internal.h: what core/isolate.c (the supervisor) and
 * core/isolate_proxy.c (the proxied calls) share about one isolated
 * instance.
 */
#ifndef PARLEY_CORE_ISOLATE_INTERNAL_H
#define PARLEY_CORE_ISOLATE_INTERNAL_H

#include "isolate_rpc.h"
#include "loader.h"

#include <parley/parley.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

enum iso_state {
	ISO_STARTING, /* a child is being spawned and started */
	ISO_UP,       /* the child serves */
	ISO_DOWN,     /* it died: waiting out the backoff before a restart */
	ISO_OPEN,     /* the circuit breaker is open: no restart until it closes */
	ISO_STOPPED,
};

/* A webhook the child holds, answered 503 when the child dies. */
struct iso_ws;

struct iso_req {
	uint64_t token;
	parley_http_request *req;
	struct iso_req *next;
};

struct isolate {
	struct plugin_entry entry; /* first: inst->plugin points here */
	struct parley_plugin desc; /* the proxy descriptor */
	const struct plugin_entry *real;
	parley_instance *inst;
	char *url;  /* ipc://<data_dir>/isolate-<pid>-<n>.ipc */
	char *path; /* its socket file */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under lock: */
	enum iso_state state;
	struct iso_rpc *rpc; /* the child's, while ISO_UP */
	pid_t pid;           /* the child's, 0 when none */
	int stopping;
	int first_done, first_rv; /* the first start, which instance_start waits for */
	char first_err[768];
	char why[256]; /* what happened last, for op health */
	uint64_t restarts;
	int64_t crash_ms[8]; /* when the last crashes happened (ring) */
	size_t n_crash;
	struct iso_req *reqs;
	uint64_t next_token;
	/* The WebSockets the child accepted (isolate_ws.c), under ws_lock. */
	pthread_mutex_t ws_lock;
	struct iso_ws *wss;
	pthread_t super;
	int super_started;
};

/* The child's rpc with a reference, while it is up; NULL otherwise.  iso_rpc_release() it. */
struct iso_rpc *iso_rpc_up(struct isolate *iso);

/* The calls the child makes of the host (isolate_proxy.c), run on the rpc's workers. */
void iso_parent_handler(void *arg, struct iso_rpc *rpc, const char *op, const cJSON *hdr, const void *body, size_t len,
                        cJSON **reply, void **reply_body, size_t *reply_len);

/* Fill desc's proxied callbacks from the real descriptor (isolate_proxy.c). */
void iso_proxy_desc(struct isolate *iso);

/* Answer every webhook the child held with 503 (it died or stops). */
void iso_fail_requests(struct isolate *iso, const char *why);

/* The webhook the child holds under token, taken out of the list; NULL when it was answered already. */
struct iso_req *iso_take_request(struct isolate *iso, uint64_t token);

/* The child's WebSockets (isolate_ws.c): it accepts one, sends, closes. */
void iso_ws_accept(struct isolate *iso, struct iso_rpc *rpc, const cJSON *hdr, cJSON **reply);
void iso_ws_send(struct isolate *iso, const cJSON *hdr, const void *body, size_t len);
void iso_ws_close(struct isolate *iso, const cJSON *hdr);
/* Close every socket of the child (it died or stops); with wait, until their on_close ran (at most 10 s). */
void iso_ws_close_all(struct isolate *iso, int wait);

/* The proxy's lifecycle (isolate.c). */
int iso_start(void *data, char **errmsg);
void iso_stop(void *data);
void iso_destroy(void *data);

#endif
