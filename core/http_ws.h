/*
 * http_ws.h: WebSockets (RFC 6455) over the HTTP server: the opening
 * handshake, and one I/O thread (epoll) that reads every open socket,
 * reassembles and checks client messages, answers pings and runs the close
 * handshake.  Messages are sent from any thread.  Plugins reach it through
 * the host table (ws_accept, ws_send, ws_close).  Internal to the core.
 */
#ifndef PARLEY_CORE_HTTP_WS_H
#define PARLEY_CORE_HTTP_WS_H

#include <parley/parley.h>
#include <stdint.h>

struct metrics;
struct http_ws_hub;

/* Bytes a socket may hold unsent before http_ws_send() refuses more. */
#define HTTP_WS_BACKLOG (1024u * 1024u)

/* A client silent this long is pinged; silent 2.5 times as long, its socket is closed. */
#define HTTP_WS_PING_MS 30000

/*
 * Start the hub and its thread, pinging silent clients after ping_ms (0:
 * HTTP_WS_PING_MS).  0 or a PARLEY_E* code with *errmsg (malloc'd).
 */
int http_ws_hub_start(struct http_ws_hub **out, struct metrics *metrics, int64_t ping_ms, char **errmsg);
/*
 * Close every socket (1001 going away; on_close fires for each, also for
 * sockets whose switch has not happened yet) and join the thread.  Later
 * http_ws_accept() calls answer 503.  Call before the HTTP server stops.
 */
void http_ws_hub_stop(struct http_ws_hub *hub);
/* Free the hub; after http_ws_hub_stop() and after the HTTP server stopped. */
void http_ws_hub_free(struct http_ws_hub *hub);

/*
 * The handshake check: 0 when req is a GET asking for a version 13
 * WebSocket, with accept (29 bytes) set to its Sec-WebSocket-Accept; or the
 * HTTP status to refuse it with (400, or 426 for another version) and *why.
 */
int http_ws_check(parley_http_request *req, char accept[29], const char **why);
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key GUID)) into out (29 bytes). */
void http_ws_accept_key(const char *key, char out[29]);

/* parley_host.ws_accept, ws_send and ws_close: see parley.h. */
parley_ws *http_ws_accept(struct http_ws_hub *hub, parley_http_request *req, const struct parley_ws_callbacks *cb,
                          void *arg);
int http_ws_send(parley_ws *ws, const char *text, size_t len);
void http_ws_close(parley_ws *ws, int code, const char *reason);

#endif
