/* control.c: the control socket (nng REP): one transport of the op table (ops.h). */
#include "control.h"
#include "auth.h"
#include "bus.h"
#include "crypto.h"
#include "gateway.h"
#include "log.h"
#include "ops.h"
#include "payload.h"
#include "util.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Requests are answered by CONTROL_WORKERS threads, each on its own REP
 * context, so a long one (a year's reports.kpis, a backup) does not hold up
 * `parley api health`, a reload or the next CLI command behind it.
 */
#define CONTROL_WORKERS 4

struct control {
	struct gateway *gw;
	nng_socket sock;
	pthread_t threads[CONTROL_WORKERS];
	size_t started;
};

/* 1 when the control socket is a local file or in-process (ipc://, inproc://), which the file mode guards. */
static int local_socket(const char *url)
{
	return url && (strncasecmp(url, "ipc://", 6) == 0 || strncasecmp(url, "inproc://", 9) == 0);
}

enum caller { CALLER_REFUSED, CALLER_OPERATOR, CALLER_SERVICE };

/*
 * Who sends req, from its "token" (removed from req): control.token, or a
 * service token (its principal into *who); with neither, the operator on a
 * local socket without control.token, else refused.  A tcp:// (or any
 * network) socket always needs one of the two.
 */
static enum caller authorized(struct gateway *gw, cJSON *req, struct auth_principal *who)
{
	const char *want = gw->cfg.control_token;
	const char *given = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "token"));
	enum caller c = CALLER_REFUSED;
	if (given && want && strlen(given) == strlen(want) && crypto_ct_equal(given, want, strlen(want)))
		c = CALLER_OPERATOR;
	else if (given && gw->auth && auth_bearer(gw->auth, given, who) == 0)
		c = CALLER_SERVICE;
	else if (!given && !want && local_socket(gw->cfg.control_listen))
		c = CALLER_OPERATOR;
	cJSON_DeleteItemFromObjectCaseSensitive(req, "token");
	return c;
}

char *control_handle(struct gateway *gw, const char *text, size_t len)
{
	char why[320];
	/* Refused on any verdict: what the check cannot read, cJSON must not read differently. */
	if (payload_json_check(text, len, why, sizeof(why)) != 0)
		return ops_error("invalid_request", why);
	cJSON *req = cJSON_ParseWithLength(text, len);
	if (!cJSON_IsObject(req)) {
		cJSON_Delete(req);
		return ops_error("invalid_request", "the request must be a JSON object with an \"op\"");
	}
	struct auth_principal who;
	memset(&who, 0, sizeof(who));
	enum caller caller = authorized(gw, req, &who);
	if (caller == CALLER_REFUSED) {
		cJSON_Delete(req);
		log_warn("control: a request without a valid token was refused");
		return ops_error("unauthorized",
		                 local_socket(gw->cfg.control_listen)
		                         ? "this gateway's control socket needs \"token\": control.token "
		                           "or a service token"
		                         : "a network control socket needs \"token\": control.token or a "
		                           "service token (parley token create)");
	}
	const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "op"));
	char name[128];
	char *reply;
	if (!op || strlen(op) >= sizeof(name)) {
		reply = ops_error("invalid_request", "the request has no \"op\" (a string naming the op)");
	} else {
		snprintf(name, sizeof(name), "%s", op);
		cJSON_DeleteItemFromObjectCaseSensitive(req, "op");
		/* The operator may do everything; a service token what its scopes allow. */
		reply = ops_call(gw, caller == CALLER_SERVICE ? &who : NULL, name, req);
	}
	auth_principal_clear(&who);
	cJSON_Delete(req);
	return reply;
}

static void *control_main(void *arg)
{
	struct control *c = arg;
	nng_ctx ctx;
	nng_aio *aio;
	if (nng_ctx_open(&ctx, c->sock) != 0)
		return NULL;
	if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
		nng_ctx_close(ctx);
		return NULL;
	}
	for (;;) {
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0)
			break; /* the socket was closed: control_stop */
		nng_msg *m = nng_aio_get_msg(aio);
		char *reply = control_handle(c->gw, nng_msg_body(m), nng_msg_len(m));
		if (!reply)
			reply = ops_error("internal", "out of memory");
		nng_msg_clear(m);
		int rv = reply ? nng_msg_append(m, reply, strlen(reply)) : NNG_ENOMEM;
		free(reply);
		if (rv != 0) {
			nng_msg_free(m);
			break;
		}
		nng_aio_set_msg(aio, m);
		nng_ctx_send(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0) {
			nng_msg_free(nng_aio_get_msg(aio)); /* not sent: still ours */
			if (nng_aio_result(aio) == NNG_ECLOSED)
				break;
		}
	}
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	return NULL;
}

int control_start(struct control **out, struct gateway *gw, char **errmsg)
{
	struct control *c = calloc(1, sizeof(*c));
	int rv;
	if (!c)
		return PARLEY_ENOMEM;
	c->gw = gw;
	if ((rv = nng_rep0_open(&c->sock)) != 0 || (rv = bus_listen_private(c->sock, gw->cfg.control_listen)) != 0) {
		*errmsg = str_printf(
		        "cannot listen on control.listen %s: %s (is another gateway running with the same config?)",
		        gw->cfg.control_listen, nng_strerror(rv));
		nng_close(c->sock);
		free(c);
		return PARLEY_EIO;
	}
	for (; c->started < CONTROL_WORKERS; c->started++)
		if (thread_start(&c->threads[c->started], control_main, c, "parley:control") != 0)
			break;
	if (c->started == 0) {
		nng_close(c->sock);
		free(c);
		return PARLEY_EIO;
	}
	*out = c;
	return 0;
}

void control_stop(struct control *c)
{
	if (!c)
		return;
	nng_close(c->sock);
	for (size_t i = 0; i < c->started; i++)
		pthread_join(c->threads[i], NULL);
	free(c);
}
