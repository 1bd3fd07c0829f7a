/*
 * api_internal.h: what the files of the HTTP API share: api.c (routing,
 * workers, ops), api_auth.c (who is calling; login, logout, me),
 * api_openapi.c (the document), api_files.c (stored attachments) and
 * api_events.c (the live events stream).  Internal to the core.
 */
#ifndef PARLEY_CORE_API_INTERNAL_H
#define PARLEY_CORE_API_INTERNAL_H

#include "auth.h"

#include <parley/parley.h>
#include <stddef.h>

struct gateway;

/* Answer req with JSON text (copied), or with {"error":{"code","message"}}. */
void api_respond_json(parley_http_request *req, int status, const char *json);
void api_respond_error(parley_http_request *req, int status, const char *code, const char *message);
/* Percent-decode n bytes of s ('+' is a space) into out: 0, or -1 when malformed, too long, NUL or not UTF-8. */
int api_pct_decode(const char *s, size_t n, char *out, size_t cap);

/*
 * Who sends req: 0 with *who filled (release with api_principal_done), or
 * *full set for the control.token (the control socket's rights); otherwise
 * req is answered 401 and -1 returned.
 */
int api_authenticate(struct gateway *gw, parley_http_request *req, struct auth_principal *who, int *full);
void api_principal_done(struct auth_principal *who);
/* POST /login, POST /logout, GET /me: answer req. */
void api_login(struct gateway *gw, parley_http_request *req);
void api_logout(struct gateway *gw, parley_http_request *req);
void api_me(parley_http_request *req, const struct auth_principal *who);

/* The OpenAPI 3.1 document of the op table (malloc'd JSON), or NULL. */
char *api_openapi(struct gateway *gw);

/* GET /attachments/{sha256}: the stored bytes, for who (NULL: everything). */
void api_attachment(struct gateway *gw, parley_http_request *req, const struct auth_principal *who);

/* GET /events: the live events stream for who (NULL: everything). */
void api_events(struct gateway *gw, parley_http_request *req, const struct auth_principal *who);

#endif
