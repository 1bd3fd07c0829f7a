/* api_events.c: GET /api/v1/events, the live events stream (Server-Sent Events). */
#include "api_internal.h"

void api_events(struct gateway *gw, parley_http_request *req, const struct auth_principal *who)
{
	(void)gw, (void)who;
	api_respond_error(req, 501, "not_implemented", "the events stream is not served yet");
}
