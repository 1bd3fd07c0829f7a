/*
 * http_server.h: the HTTP/1.1 server under core/http.c (libmicrohttpd).
 *
 * It owns connections and requests: limits against slow or hostile clients
 * (connection caps, header and body deadlines, head and URL sizes, requests
 * in flight), body collection, pipelining, and answering from any thread.
 * It knows no routes: for each request whose head is complete it asks the
 * router (http.c) what serves it.  Internal to the core.
 */
#ifndef PARLEY_CORE_HTTP_SERVER_H
#define PARLEY_CORE_HTTP_SERVER_H

#include <parley/parley.h>
#include <stddef.h>
#include <stdint.h>

struct metrics;
struct http_server;

struct http_server_config {
	const char *listen; /* host:port */
	int64_t header_timeout_ms;
	int64_t body_timeout_ms;
	int64_t max_connections;
	int64_t max_connections_per_ip;
	int64_t max_inflight;
	uint64_t max_header_size;
	uint64_t max_url_size;
	/*
	 * TLS: the PEM certificate chain and private key (copied by
	 * http_server_start()), or both NULL for plain HTTP.  Only TLS 1.2 and
	 * 1.3 are offered.
	 */
	const char *tls_cert_pem;
	const char *tls_key_pem;
};

/*
 * A request's handler, called on a server thread once the body is in.  It
 * must lead to exactly one http_server_respond() for req, from any thread,
 * before or after it returns.
 */
typedef void (*http_handler)(void *arg, parley_http_request *req);

/*
 * The router, called on a server thread when a request's head is complete
 * (method and path are readable, the body is not yet).  It either calls
 * http_server_serve() or http_server_refuse() for req, exactly once.
 */
typedef void (*http_router)(void *arg, parley_http_request *req);

/*
 * Serve req with handler(arg, req) once its body (at most max_body bytes;
 * more is refused with 413) has arrived.  A tracked request counts toward
 * max_inflight until it is answered; over the limit it is refused with 503
 * and Retry-After instead.
 */
void http_server_serve(parley_http_request *req, http_handler handler, void *arg, uint64_t max_body, int tracked);
/* Answer req with status and a JSON error (message copied) once its body is read and dropped. */
void http_server_refuse(parley_http_request *req, int status, const char *message);

/*
 * Start serving cfg.listen.  route(route_arg, req) is called for every
 * request; counters go to metrics.  On failure returns a PARLEY_E* code and
 * sets *errmsg (malloc'd, freed by the caller).
 */
int http_server_start(struct http_server **out, const struct http_server_config *cfg, struct metrics *metrics,
                      http_router route, void *route_arg, char **errmsg);
/*
 * Stop accepting, answer requests still waiting for their handler with 503,
 * end open streams (their on_close fires before this returns), close every
 * connection and join the server's threads.  A handler's later
 * http_server_respond() for such a request is accepted and dropped.
 */
void http_server_stop(struct http_server *s);
/* Free the server; call after http_server_stop() and after every handler has answered. */
void http_server_free(struct http_server *s);

/* Request accessors: pointers owned by the server, valid until the request is answered. */
const char *http_server_method(parley_http_request *req);
const char *http_server_path(parley_http_request *req);  /* raw path, without the query */
const char *http_server_query(parley_http_request *req); /* raw query, or "" */
/* The request's id (a ULID, also sent as X-Request-Id): its log lines and envelopes carry it. */
const char *http_server_request_id(parley_http_request *req);
/* The client's address (numeric, the TCP peer: a proxy's own when behind one), or "unknown". */
const char *http_server_client_ip(parley_http_request *req);
/* 1 when req came over TLS (http.tls). */
int http_server_tls(parley_http_request *req);
/* A request header by name (case-insensitive), or NULL. */
const char *http_server_header(parley_http_request *req, const char *name);
const void *http_server_body(parley_http_request *req, size_t *len);
/* The i-th header of the request's snapshot: 0, or -1 past the last (isolated plugins get them all). */
int http_server_header_at(parley_http_request *req, size_t i, const char **name, const char **value);
/* A label for log lines about req set by the router (e.g. the channel name), or NULL. */
void http_server_set_label(parley_http_request *req, const char *label);
const char *http_server_label(parley_http_request *req);
/* The route_arg given to http_server_start() for the server that received req. */
void *http_server_router_arg(parley_http_request *req);

/*
 * Answer req (body copied): from any thread, exactly once per request.
 * After it returns req must not be used.
 */
void http_server_respond(parley_http_request *req, int status, const char *content_type, const char *body, size_t len);
/*
 * The same with more response headers: headers is NULL or a NULL-ended list
 * of name, value pairs ({"Set-Cookie", "...", "Cache-Control", "no-store", NULL}),
 * copied.
 */
void http_server_respond_with(parley_http_request *req, int status, const char *content_type,
                              const char *const *headers, const char *body, size_t len);
/*
 * Streamed responses: a body that stays open (Server-Sent Events, long
 * polls).  The body goes out with chunked transfer encoding (HTTP/1.1) or
 * until the connection closes (HTTP/1.0).
 */
struct http_stream;

/* Bytes a stream may hold unsent before http_stream_write() refuses more. */
#define HTTP_STREAM_BACKLOG (1024u * 1024u)

/*
 * Answer req with status and a body that stays open, from any thread, in
 * place of http_server_respond(): req counts as answered and must not be
 * used after the call.  content_type may be NULL; headers is NULL or a
 * NULL-ended list of name, value pairs, as in http_server_respond_with()
 * (copied).  The stream does not count toward http.max_inflight, and no
 * idle timeout or request deadline applies to it while it waits for bytes
 * to send: it stays open until one of the ends below.
 *
 * on_close(arg) is called exactly once, from any thread (a server thread,
 * or the one calling http_server_stop()), when the body can no longer reach
 * the client: the client went away, the body ended after
 * http_stream_close(), or the server stops.  A client that goes away is
 * noticed at the next write (the server does not watch the socket of a
 * stream with nothing to send), so a writer that wants it noticed sends
 * something now and then (an SSE comment).  After on_close returns, arg is
 * not used again.  on_close may call http_stream_close(); it must not
 * block on another thread that writes to the stream.
 *
 * Returns the stream, which the caller owns until http_stream_close(); or
 * NULL when it cannot be made (out of memory: req is answered 503; or req
 * was answered already, by a stopping server): on_close is then never
 * called.
 */
struct http_stream *http_server_stream(parley_http_request *req, int status, const char *content_type,
                                       const char *const *headers, void (*on_close)(void *arg), void *arg);

/*
 * Append len bytes of data (copied) to the body, from any thread; they are
 * sent as soon as the socket takes them.  0; PARLEY_EBUSY when more than
 * HTTP_STREAM_BACKLOG bytes would be waiting (a client that does not read:
 * close the stream); PARLEY_ECLOSED once the stream is over (on_close fired
 * or is about to) or after http_stream_close() began; PARLEY_ENOMEM.
 */
int http_stream_write(struct http_stream *st, const void *data, size_t len);

/*
 * End the body once the bytes already written are sent (the connection may
 * then carry the next request) and drop the caller's reference: st must
 * not be used after the call.  Safe after on_close fired, from any thread,
 * including on_close itself; NULL is ignored.  on_close still fires, when
 * the end has gone out, unless it fired before.
 */
void http_stream_close(struct http_stream *st);

/*
 * Protocol switches (WebSocket): after the 101 answer the connection's
 * socket belongs to the caller.
 */
struct http_upgraded;

/*
 * Called once per http_server_upgrade(), on a server thread: with fd, the
 * socket (non-blocking use is the caller's choice; never close(2) it), the
 * bytes the client sent after its request head (extra, extra_len: valid
 * during the call only; feed them first) and u, to be closed with
 * http_upgraded_close() when done; or with fd -1 and u NULL when the switch
 * never happened (the client went away, or the server stopped first).  It
 * must not block.
 */
typedef void (*http_upgrade_cb)(void *arg, int fd, const char *extra, size_t extra_len, struct http_upgraded *u);

/*
 * Answer req 101 Switching Protocols with headers (NULL-ended name, value
 * pairs, copied; the caller gives Upgrade and the protocol's own) and hand
 * the connection to cb.  From any thread, in place of http_server_respond():
 * req must not be used after the call.  The connection holds no
 * http.max_inflight slot and no deadline applies to it.  0, or a PARLEY_E*
 * code when req was answered otherwise (503 out of memory); cb is then never
 * called.  cb may run before this returns.
 */
int http_server_upgrade(parley_http_request *req, const char *const *headers, http_upgrade_cb cb, void *arg);
/* Close an upgraded connection (its socket is closed by the server); u is not used after. */
void http_upgraded_close(struct http_upgraded *u);

/* Answer req with {"ok":false,"error":message}. */
void http_server_respond_error(parley_http_request *req, int status, const char *message);

/* {"ok":false,"error":message} as malloc'd JSON text (cJSON escapes message), or NULL. */
char *http_error_json(const char *message);

#endif
