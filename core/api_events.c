/*
 * api_events.c: GET /api/v1/events, the live events as Server-Sent Events.
 * Each event's id is its cursor ("M.E", events.h): a client that
 * reconnects with Last-Event-ID (or ?after=) gets what it missed, in
 * order, once.  The first event, `ready`, names where the client starts.
 */
#include "api_internal.h"
#include "events.h"
#include "gateway.h"
#include "http_server.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One client: owned by the stream (until on_close) and by the subscription (until release). */
struct sse {
	pthread_mutex_t lock; /* st, sub, closed, refs */
	struct http_stream *st;
	struct events_sub *sub;
	int closed;
	int refs;
};

static void sse_unref(struct sse *c)
{
	pthread_mutex_lock(&c->lock);
	int last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (last) {
		pthread_mutex_destroy(&c->lock);
		free(c);
	}
}

/* The events thread: one event (or a heartbeat) to the client. */
static int sse_sink(void *arg, const char *id, const char *topic, const char *json)
{
	struct sse *c = arg;
	pthread_mutex_lock(&c->lock); /* waits until the stream is made */
	struct http_stream *st = c->st;
	pthread_mutex_unlock(&c->lock);
	if (!st)
		return -1;
	char *text = topic ? str_printf("id: %s\nevent: %s\ndata: %s\n\n", id, topic, json) : strdup(": keepalive\n\n");
	/* Only the events thread writes and closes: st stays valid here. */
	int rv = text ? http_stream_write(st, text, strlen(text)) : PARLEY_ENOMEM;
	free(text);
	return rv == 0 ? 0 : -1;
}

/* The events thread, after the last sink call: end the body. */
static void sse_release(void *arg)
{
	struct sse *c = arg;
	pthread_mutex_lock(&c->lock);
	struct http_stream *st = c->st;
	c->st = NULL;
	c->sub = NULL;
	pthread_mutex_unlock(&c->lock);
	http_stream_close(st);
	sse_unref(c);
}

/* The server: the client is gone (or the server stops). */
static void sse_closed(void *arg)
{
	struct sse *c = arg;
	pthread_mutex_lock(&c->lock);
	c->closed = 1;
	/* Under the lock: sse_release (which forgets sub before it is freed) cannot run meanwhile. */
	if (c->sub)
		events_unsubscribe(c->sub);
	pthread_mutex_unlock(&c->lock);
	sse_unref(c);
}

/* The cursor the client resumes from: Last-Event-ID, else ?after=; 1 when given, 0 when not, -1 when malformed. */
static int resume_cursor(parley_http_request *req, struct events_cursor *out)
{
	const char *last = http_server_header(req, "Last-Event-ID");
	if (last && *last)
		return events_cursor_parse(last, out) == 0 ? 1 : -1;
	for (const char *p = http_server_query(req); p && *p;) {
		size_t len = strcspn(p, "&");
		if (len > 6 && strncmp(p, "after=", 6) == 0) {
			char v[64];
			if (api_pct_decode(p + 6, len - 6, v, sizeof(v)) != 0)
				return -1;
			return events_cursor_parse(v, out) == 0 ? 1 : -1;
		}
		p += len + (p[len] == '&');
	}
	return 0;
}

void api_events(struct gateway *gw, parley_http_request *req, const struct auth_principal *who)
{
	struct events_cursor from;
	int given = resume_cursor(req, &from);
	if (given < 0) {
		api_respond_error(req, 400, "invalid_request",
		                  "Last-Event-ID (or ?after=) must be an event id as the stream sent it: M.E");
		return;
	}
	if (!given && events_position(gw->events, &from) != 0) {
		api_respond_error(req, 503, "unavailable", "the store is down: retry");
		return;
	}
	struct sse *c = calloc(1, sizeof(*c));
	if (!c) {
		api_respond_error(req, 503, "unavailable", "out of memory");
		return;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->refs = 2;
	pthread_mutex_lock(&c->lock);
	c->sub = events_subscribe(gw->events, &from, who, sse_sink, sse_release, c);
	if (!c->sub) {
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_destroy(&c->lock);
		free(c);
		api_respond_error(req, 503, "unavailable", "too many subscribers on this node: retry");
		return;
	}
	static const char *const headers[] = {"Cache-Control", "no-store", "X-Accel-Buffering", "no", NULL};
	c->st = http_server_stream(req, 200, "text/event-stream; charset=utf-8", headers, sse_closed, c);
	if (!c->st) {
		/* Answered 503; on_close never fires: its reference goes here. */
		c->closed = 1;
		c->refs--;
		events_unsubscribe(c->sub);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	/* The first event names where the client starts: its Last-Event-ID until a real event arrives. */
	char *ready = str_printf("retry: 2000\nid: %lld.%lld\nevent: ready\ndata: {\"resumed\":%s}\n\n",
	                         (long long)from.message_seq, (long long)from.event_seq, given ? "true" : "false");
	if (ready)
		http_stream_write(c->st, ready, strlen(ready));
	free(ready);
	pthread_mutex_unlock(&c->lock);
}
