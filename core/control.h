/*
 * control.h: the control socket (nng REP on control.listen).  One JSON
 * request {"op": "...", ...} gets one JSON reply {"ok": true, ...} or
 * {"ok": false, "error": {"code": "...", "message": "..."}}.
 */
#ifndef PARLEY_CORE_CONTROL_H
#define PARLEY_CORE_CONTROL_H

#include <stddef.h>

struct gateway;
struct control;

int control_start(struct control **out, struct gateway *gw, char **errmsg);
void control_stop(struct control *c);
/* Answer one request (used by the socket loop and the tests); malloc'd reply. */
char *control_handle(struct gateway *gw, const char *req, size_t len);

#endif
