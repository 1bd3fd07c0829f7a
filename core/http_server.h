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
 * close every connection and join the server's threads.  A handler's later
 * http_server_respond() for such a request is accepted and dropped.
 */
void http_server_stop(struct http_server *s);
/* Free the server; call after http_server_stop() and after every handler has answered. */
void http_server_free(struct http_server *s);

/* Request accessors: pointers owned by the server, valid until the request is answered. */
const char *http_server_method(parley_http_request *req);
const char *http_server_path(parley_http_request *req);  /* raw path, without the query */
const char *http_server_query(parley_http_request *req); /* raw query, or "" */
/* A request header by name (case-insensitive), or NULL. */
const char *http_server_header(parley_http_request *req, const char *name);
const void *http_server_body(parley_http_request *req, size_t *len);
/* A label for log lines about req set by the router (e.g. the channel name), or NULL. */
void http_server_set_label(parley_http_request *req, const char *label);
const char *http_server_label(parley_http_request *req);

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
/* Answer req with {"ok":false,"error":message}. */
void http_server_respond_error(parley_http_request *req, int status, const char *message);

/* {"ok":false,"error":message} as malloc'd JSON text (cJSON escapes message), or NULL. */
char *http_error_json(const char *message);

#endif
