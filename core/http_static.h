/*
 * http_static.h: the gateway's own web pages (the agent inbox under
 * /inbox/), served from files installed with the binary.  Only GET and HEAD,
 * only plain file names (no "..", no percent-encoding, no hidden files), with
 * a strict Content-Security-Policy: the pages run only their own scripts.
 */
#ifndef PARLEY_CORE_HTTP_STATIC_H
#define PARLEY_CORE_HTTP_STATIC_H

#include "http_server.h"

struct http_static;

/*
 * Find the directory holding inbox/: <binary dir>/PARLEY_WEB_RELDIR
 * (share/parley of an installed, maybe relocated, prefix), else
 * PARLEY_WEB_DIR, else the source tree's core/web (a build tree).  *out is never NULL on 0; the pages then answer
 * 404 when no directory was found.
 */
int http_static_open(struct http_static **out);
/* The directory found, or NULL (for logs). */
const char *http_static_dir(const struct http_static *st);
/*
 * Serve req when its path is /inbox or under /inbox/: returns 1 (req
 * answered or handed on), else 0 and req is untouched.  Any thread.
 */
int http_static_route(struct http_static *st, parley_http_request *req, const char *path);
void http_static_free(struct http_static *st);

#endif
