/*
 * http.h: the HTTP listener.  Channel plugins register routes under
 * /webhooks/<channel>; the core serves /healthz and /metrics.  The server
 * underneath (libmicrohttpd, limits, pipelining) is core/http_server.h.
 */
#ifndef PARLEY_CORE_HTTP_H
#define PARLEY_CORE_HTTP_H

#include <parley/parley.h>

struct gateway;
struct http;

int http_open(struct http **out, struct gateway *gw);
int http_route_add(struct http *h, parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb);
/* A route on /<plugin name>/<instance name><subpath> (parley_host.http_route_public). */
int http_route_add_public(struct http *h, parley_instance *inst, const char *method, const char *subpath,
                          parley_http_cb cb);
/* Forget inst's routes (it is being freed). */
void http_routes_drop(struct http *h, const parley_instance *inst);
/* The WebSocket hub of the listener that received req. */
struct http_ws_hub *http_ws_hub_of(parley_http_request *req);
/* Start serving on http.listen; errmsg malloc'd on failure. */
int http_start(struct http *h, char **errmsg);
void http_stop(struct http *h);
void http_free(struct http *h);

const char *http_req_method(parley_http_request *req);
const char *http_req_path(parley_http_request *req);
const char *http_req_query(parley_http_request *req);
const char *http_req_header(parley_http_request *req, const char *name);
const void *http_req_body(parley_http_request *req, size_t *len);
void http_req_respond(parley_http_request *req, int status, const char *content_type, const char *body, size_t len);
void http_req_respond_with(parley_http_request *req, int status, const char *content_type, const char *const *headers,
                           const char *body, size_t len);

#endif
