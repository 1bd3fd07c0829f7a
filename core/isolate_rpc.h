/*
 * isolate_rpc.h: the message protocol between the gateway and an isolated
 * plugin's child process (core/isolate.c, core/isolate_child.c), over one
 * nng pair1 socket on ipc://.  Both sides call each other: a call waits
 * for its reply, a note does not.
 *
 * A message is a JSON header (NUL-terminated) followed by raw bytes (an
 * HTTP body, an envelope's JSON, a key-value value).  The receive thread
 * only matches replies to their callers; calls and notes from the peer run
 * on a small pool of worker threads, so a handler may itself call the peer
 * and wait.  Notes marked serial (iso_rpc_note_serial) run one at a time,
 * in the order sent, on a lane of their own.
 */
#ifndef PARLEY_CORE_ISOLATE_RPC_H
#define PARLEY_CORE_ISOLATE_RPC_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

struct iso_rpc;

/*
 * A call or note from the peer, on a worker thread.  op, hdr and body are
 * borrowed for the call.  For a call (reply non-NULL) set *reply to a JSON
 * object (the rpc takes it; NULL answers {}) and, optionally, *reply_body
 * to malloc'd bytes of *reply_len (the rpc frees them).
 */
typedef void (*iso_rpc_handler)(void *arg, struct iso_rpc *rpc, const char *op, const cJSON *hdr, const void *body,
                                size_t len, cJSON **reply, void **reply_body, size_t *reply_len);

/*
 * Listen on url (the gateway's end; the socket file gets mode 0600) or
 * dial it (the child's end).  0 with *out, or a negative PARLEY_E* code.
 * The rpc holds one reference for its opener.
 */
int iso_rpc_listen(struct iso_rpc **out, const char *url, iso_rpc_handler h, void *arg);
int iso_rpc_dial(struct iso_rpc **out, const char *url, iso_rpc_handler h, void *arg);

/* Wait up to timeout_ms for the peer to connect: 0, or PARLEY_ETIMEDOUT / PARLEY_ECLOSED. */
int iso_rpc_wait_peer(struct iso_rpc *r, int64_t timeout_ms);

/*
 * Call op on the peer with hdr (a JSON object, taken; NULL for {}) and
 * len bytes of body (copied).  0 with *reply (the caller deletes it) and,
 * when rbody is non-NULL, *rbody and *rlen (malloc'd, NUL-terminated, or NULL);
 * PARLEY_ECLOSED when the peer went away or the rpc was shut down before
 * the reply, PARLEY_ETIMEDOUT after timeout_ms.
 */
int iso_rpc_call(struct iso_rpc *r, const char *op, cJSON *hdr, const void *body, size_t len, int64_t timeout_ms,
                 cJSON **reply, void **rbody, size_t *rlen);
/*
 * Send a note (no reply): 0 or a negative error.  hdr is taken.  On the
 * listening (gateway's) end it never waits: with the peer's queue full it fails.
 */
int iso_rpc_note(struct iso_rpc *r, const char *op, cJSON *hdr, const void *body, size_t len);
/* A note the peer handles on its serial lane, after every serial note sent before it. */
int iso_rpc_note_serial(struct iso_rpc *r, const char *op, cJSON *hdr, const void *body, size_t len);

/* 1 once the peer went away or the rpc was shut down. */
int iso_rpc_closed(struct iso_rpc *r);

/*
 * Close the socket, fail every waiting call with PARLEY_ECLOSED, and wait
 * for the receive thread and the workers to end.  Idempotent; never from
 * one of the rpc's own threads.
 */
void iso_rpc_shutdown(struct iso_rpc *r);

/* References: the last release shuts the rpc down and frees it. */
void iso_rpc_hold(struct iso_rpc *r);
void iso_rpc_release(struct iso_rpc *r);

struct timespec;
/* ts becomes the CLOCK_REALTIME time ms from now, for pthread_cond_timedwait. */
void iso_deadline(struct timespec *ts, int64_t ms);

/* Helpers for headers: a string or number field of hdr ("" / 0 when absent). */
const char *iso_str(const cJSON *hdr, const char *key);
int64_t iso_num(const cJSON *hdr, const char *key);

#endif
