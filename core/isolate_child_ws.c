/*
 * isolate_child_ws.c: WebSockets for a plugin in an isolated child (the
 * web chat).  The gateway holds the socket (core/isolate_ws.c); here the
 * plugin gets a handle whose messages and close arrive as the gateway's
 * serial notes, so its callbacks run one at a time, in order, as the
 * host's WebSocket thread would run them, and only after ws_accept()
 * returned.
 */
#include "isolate_child.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define ACCEPT_TIMEOUT_MS 10000

struct child_ws {
	struct child *ch;
	uint64_t id;
	struct parley_ws_callbacks cb;
	void *arg;
	int accepted; /* ws_accept has returned it: its callbacks may run */
	int closed;   /* on_close ran or runs: ws_send answers ECLOSED */
	struct child_ws *next;
};

parley_ws *child_ws_accept(parley_http_request *req, const struct parley_ws_callbacks *cb, void *arg)
{
	struct creq *r = (struct creq *)req;
	struct child *ch = r->ch;
	struct child_ws *w = calloc(1, sizeof(*w));
	if (!w) {
		child_respond(req, 503, "text/plain", "out of memory", 13);
		return NULL;
	}
	w->ch = ch;
	memcpy(&w->cb, cb, cb->struct_size < sizeof(w->cb) ? cb->struct_size : sizeof(w->cb));
	w->arg = arg;
	pthread_mutex_lock(&ch->lock);
	w->id = ++ch->next_token;
	w->next = ch->wss;
	ch->wss = w;
	pthread_mutex_unlock(&ch->lock);
	cJSON *h = cJSON_CreateObject();
	cJSON_AddNumberToObject(h, "token", (double)r->token);
	cJSON_AddNumberToObject(h, "id", (double)w->id);
	cJSON_AddNumberToObject(h, "max_message", (double)w->cb.max_message);
	cJSON *reply = NULL;
	int rv = iso_rpc_call(ch->rpc, "ws_accept", h, NULL, 0, ACCEPT_TIMEOUT_MS, &reply, NULL, NULL);
	if (rv == 0)
		rv = (int)iso_num(reply, "rv");
	cJSON_Delete(reply);
	child_req_free(r); /* answered by the gateway, or switched: either way not ours any more */
	pthread_mutex_lock(&ch->lock);
	if (rv == 0) {
		w->accepted = 1;
		pthread_cond_broadcast(&ch->cond);
	} else {
		for (struct child_ws **pp = &ch->wss; *pp; pp = &(*pp)->next)
			if (*pp == w) {
				*pp = w->next;
				break;
			}
	}
	pthread_mutex_unlock(&ch->lock);
	if (rv != 0) {
		free(w);
		return NULL;
	}
	return (parley_ws *)w;
}

int child_ws_send(parley_ws *ws, const char *text, size_t len)
{
	struct child_ws *w = (struct child_ws *)ws;
	if (!utf8_valid(text, len))
		return PARLEY_EINVAL;
	pthread_mutex_lock(&w->ch->lock);
	int closed = w->closed;
	pthread_mutex_unlock(&w->ch->lock);
	if (closed)
		return PARLEY_ECLOSED;
	cJSON *h = cJSON_CreateObject();
	cJSON_AddNumberToObject(h, "id", (double)w->id);
	/* On the serial lane: a socket's messages and its close reach the gateway in the order sent. */
	return iso_rpc_note_serial(w->ch->rpc, "ws_send", h, text, len) == 0 ? 0 : PARLEY_ECLOSED;
}

void child_ws_close(parley_ws *ws, int code, const char *reason)
{
	struct child_ws *w = (struct child_ws *)ws;
	cJSON *h = cJSON_CreateObject();
	cJSON_AddNumberToObject(h, "id", (double)w->id);
	cJSON_AddNumberToObject(h, "code", code);
	cJSON_AddStringToObject(h, "reason", reason ? reason : "");
	iso_rpc_note_serial(w->ch->rpc, "ws_close", h, NULL, 0); /* after the messages sent before it */
}

/* The socket called id once ws_accept returned it (under ch->lock); NULL when there is none. */
static struct child_ws *find_accepted(struct child *ch, const cJSON *hdr, int unlink)
{
	uint64_t id = (uint64_t)iso_num(hdr, "id");
	for (struct child_ws **pp = &ch->wss; *pp; pp = &(*pp)->next) {
		struct child_ws *w = *pp;
		if (w->id != id)
			continue;
		while (!w->accepted)
			pthread_cond_wait(&ch->cond, &ch->lock);
		/* The list may have changed while we waited: unlink w where it is now. */
		for (struct child_ws **qq = &ch->wss; unlink && *qq; qq = &(*qq)->next)
			if (*qq == w) {
				*qq = w->next;
				break;
			}
		return w;
	}
	return NULL;
}

void child_ws_message(struct child *ch, const cJSON *hdr, const void *body, size_t len)
{
	pthread_mutex_lock(&ch->lock);
	struct child_ws *w = find_accepted(ch, hdr, 0);
	pthread_mutex_unlock(&ch->lock);
	char *text = w ? malloc(len + 1) : NULL; /* the callback's text ends with a NUL */
	if (!text)
		return;
	memcpy(text, body, len);
	text[len] = '\0';
	if (w->cb.on_message)
		w->cb.on_message(w->arg, (parley_ws *)w, text, len);
	free(text);
}

void child_ws_closed(struct child *ch, const cJSON *hdr)
{
	pthread_mutex_lock(&ch->lock);
	struct child_ws *w = find_accepted(ch, hdr, 1);
	if (w)
		w->closed = 1;
	pthread_mutex_unlock(&ch->lock);
	if (!w)
		return;
	if (w->cb.on_close)
		w->cb.on_close(w->arg, (parley_ws *)w);
	free(w);
}
