/*
 * api.h: the HTTP API under /api/v1/: the op table (ops.h) over HTTP, with
 * REST routes where the op declares one and POST /api/v1/ops/<op> for
 * every op; sign-in (login, logout, me), the OpenAPI document, stored
 * attachments and the live events stream.
 *
 * Requests are answered by the API's own worker threads, never on the HTTP
 * server's threads, so a slow store read cannot hold up webhooks.
 */
#ifndef PARLEY_CORE_API_H
#define PARLEY_CORE_API_H

#include <parley/parley.h>

struct gateway;
struct api;

int api_open(struct api **out, struct gateway *gw);
/* Stop the workers after answering what they hold; then free. */
void api_close(struct api *a);

/*
 * The router's hand-off for a path under /api/v1 (path given without the
 * prefix, "" or "/..."): calls http_server_serve() or http_server_refuse()
 * for req, once.
 */
void api_route(struct api *a, parley_http_request *req, const char *path);

#endif
