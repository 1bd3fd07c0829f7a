/*
 * isolate_ws.c: the WebSockets of an isolated channel (the web chat).  The
 * gateway accepts the socket on the child's word and keeps it; what the
 * client sends, and its close, go to the child as serial notes (a socket's
 * callbacks run one at a time, in order, as on the host's WebSocket
 * thread); what the child sends and closes comes back as notes.  When the
 * child dies its sockets are closed (1012, "service restart"): the widget
 * reconnects to the next child.
 */
#include "gateway.h"
#include "host.h"
#include "isolate_internal.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct iso_ws {
	struct isolate *iso;
	struct iso_rpc *rpc; /* held: the child that accepted it */
	uint64_t id;         /* the child's name for it */
	parley_ws *ws;
	struct iso_ws *next;
};

static void pw_message(void *arg, parley_ws *ws, const char *text, size_t len)
{
	struct iso_ws *pw = arg;
	cJSON *h = cJSON_CreateObject();
	cJSON_AddNumberToObject(h, "id", (double)pw->id);
	if (iso_rpc_note_serial(pw->rpc, "ws_message", h, text, len) != 0)
		host_table()->ws_close(ws, 1011, "the channel cannot take messages now");
}

static void pw_close(void *arg, parley_ws *ws)
{
	(void)ws;
	struct iso_ws *pw = arg;
	struct isolate *iso = pw->iso;
	pthread_mutex_lock(&iso->ws_lock);
	for (struct iso_ws **pp = &iso->wss; *pp; pp = &(*pp)->next)
		if (*pp == pw) {
			*pp = pw->next;
			break;
		}
	pthread_mutex_unlock(&iso->ws_lock);
	cJSON *h = cJSON_CreateObject();
	cJSON_AddNumberToObject(h, "id", (double)pw->id);
	iso_rpc_note_serial(pw->rpc, "ws_close", h, NULL, 0);
	iso_rpc_release(pw->rpc);
	free(pw);
}

void iso_ws_accept(struct isolate *iso, struct iso_rpc *rpc, const cJSON *hdr, cJSON **reply)
{
	*reply = cJSON_CreateObject();
	struct iso_req *r = iso_take_request(iso, (uint64_t)iso_num(hdr, "token"));
	struct iso_ws *pw = r ? calloc(1, sizeof(*pw)) : NULL;
	if (!pw) {
		if (r) /* no memory: the request is still ours to answer */
			host_table()->http_respond(r->req, 503, "text/plain", "out of memory", 13);
		free(r);
		cJSON_AddNumberToObject(*reply, "rv", r ? PARLEY_ENOMEM : PARLEY_ENOENT);
		return;
	}
	pw->iso = iso;
	pw->rpc = rpc;
	pw->id = (uint64_t)iso_num(hdr, "id");
	iso_rpc_hold(rpc);
	struct parley_ws_callbacks cb = {
	        .struct_size = sizeof(cb),
	        .max_message = (size_t)iso_num(hdr, "max_message"),
	        .on_message = pw_message,
	        .on_close = pw_close,
	};
	/* The list first: the callbacks run only after ws_accept returns, and may find it there. */
	pthread_mutex_lock(&iso->ws_lock);
	pw->next = iso->wss;
	iso->wss = pw;
	pw->ws = host_table()->ws_accept(r->req, &cb, pw);
	if (!pw->ws) /* not a WebSocket handshake: answered 400 by the host */
		iso->wss = pw->next;
	pthread_mutex_unlock(&iso->ws_lock);
	free(r);
	cJSON_AddNumberToObject(*reply, "rv", pw->ws ? 0 : PARLEY_EINVAL);
	if (!pw->ws) {
		iso_rpc_release(rpc);
		free(pw);
	}
}

/* The socket the child calls id, used under ws_lock (the host's send and close never call back). */
static struct iso_ws *find_locked(struct isolate *iso, const cJSON *hdr)
{
	uint64_t id = (uint64_t)iso_num(hdr, "id");
	struct iso_ws *pw = iso->wss;
	while (pw && pw->id != id)
		pw = pw->next;
	return pw;
}

void iso_ws_send(struct isolate *iso, const cJSON *hdr, const void *body, size_t len)
{
	pthread_mutex_lock(&iso->ws_lock);
	struct iso_ws *pw = find_locked(iso, hdr);
	int rv = pw ? host_table()->ws_send(pw->ws, body, len) : 0;
	if (rv == PARLEY_EBUSY) /* a client that does not read, as the host's contract says: close it */
		host_table()->ws_close(pw->ws, 1008, "too much unread");
	pthread_mutex_unlock(&iso->ws_lock);
}

void iso_ws_close(struct isolate *iso, const cJSON *hdr)
{
	pthread_mutex_lock(&iso->ws_lock);
	struct iso_ws *pw = find_locked(iso, hdr);
	const char *reason = iso_str(hdr, "reason");
	if (pw)
		host_table()->ws_close(pw->ws, (int)iso_num(hdr, "code"), reason[0] ? reason : NULL);
	pthread_mutex_unlock(&iso->ws_lock);
}

void iso_ws_close_all(struct isolate *iso, int wait)
{
	pthread_mutex_lock(&iso->ws_lock);
	for (struct iso_ws *pw = iso->wss; pw; pw = pw->next)
		host_table()->ws_close(pw->ws, 1012, "service restart");
	int left = iso->wss != NULL;
	pthread_mutex_unlock(&iso->ws_lock);
	for (int i = 0; wait && left && i < 500; i++) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&iso->ws_lock);
		left = iso->wss != NULL;
		pthread_mutex_unlock(&iso->ws_lock);
	}
	if (left)
		log_msg(PARLEY_LOG_WARN, iso->inst->what, "WebSockets still open after 10 s of closing");
}
