/*
 * http_ws.c: WebSockets on one I/O thread.
 *
 * The handshake goes through the HTTP server (http_server_upgrade()); once
 * the 101 is out, the server hands over the socket and this hub owns it.
 * One thread waits on every socket with epoll, so a few hundred open chats
 * cost memory, not threads.  Senders on other threads append frames under
 * the socket's lock and write what the socket takes at once; the hub writes
 * the rest when the socket drains.
 *
 * A socket's life: PENDING (answered 101, socket not handed over yet),
 * OPEN, DONE.  Every callback runs on the hub thread, and none runs before
 * http_ws_accept() has returned (the plugin must first learn the pointer).
 * References: the hub's (dropped when it finishes the socket), the
 * server's switch (dropped when the server hands the socket over or says it
 * never will), and http_ws_accept()'s own while it runs.
 */
#include "http_ws.h"
#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "ws_frame.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_MAX_MESSAGE (64u * 1024u)
/* How long a closing socket waits for the client's close frame. */
#define CLOSE_WAIT_MS 3000
#define WS_GUID       "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum ws_state { WS_PENDING, WS_OPEN, WS_DONE };

struct parley_ws {
	struct http_ws_hub *hub;
	struct parley_ws *prev, *next; /* hub->all, under hub->lock */
	struct parley_ws *todo_next;   /* hub->todo, under hub->lock */
	int in_todo;
	pthread_mutex_t lock; /* everything below but `in`; the atomics are also read without it */
	int refs;
	_Atomic int state; /* enum ws_state */
	int accepting;     /* http_ws_accept() has not returned */
	int failed;        /* the switch never happened */
	int fd;
	struct http_upgraded *up;
	int registered, want_out;
	_Atomic int close_queued;
	int peer_closed, broken, eof;
	_Atomic int64_t closing_at;
	_Atomic int64_t last_in; /* when the client last sent anything */
	int ping_sent;           /* the hub thread's: a ping is out, unanswered */
	unsigned char *out;
	size_t out_off, out_len, out_cap;
	unsigned char *extra; /* bytes the client sent with its handshake */
	size_t extra_len;
	struct ws_in in; /* the hub thread's */
	struct parley_ws_callbacks cb;
	void *arg;
};

struct http_ws_hub {
	struct metrics *metrics;
	int64_t ping_ms; /* ping a client silent this long; close it after 2.5 times as long */
	int ep, wake;
	pthread_t thread;
	pthread_mutex_t lock; /* all, todo, stopping, stopped */
	struct parley_ws *all, *todo;
	int stopping, stopped;
};

/* ------------------------------------------------------------- handshake */

void http_ws_accept_key(const char *key, char out[29])
{
	unsigned char digest[SHA_DIGEST_LENGTH];
	struct strbuf sb;
	sb_init(&sb);
	sb_printf(&sb, "%s%s", key, WS_GUID);
	SHA1((const unsigned char *)sb.buf, sb.len, digest);
	sb_free(&sb);
	EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
}

/* 1 when the comma-separated header value has token (case-insensitive). */
static int has_token(const char *value, const char *token)
{
	size_t tl = strlen(token);
	for (const char *p = value; p && *p;) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, ",");
		size_t m = n;
		while (m && (p[m - 1] == ' ' || p[m - 1] == '\t'))
			m--;
		if (m == tl && strncasecmp(p, token, tl) == 0)
			return 1;
		p += n;
	}
	return 0;
}

int http_ws_check(parley_http_request *req, char accept[29], const char **why)
{
	const char *upgrade = http_server_header(req, "Upgrade");
	const char *connection = http_server_header(req, "Connection");
	const char *version = http_server_header(req, "Sec-WebSocket-Version");
	const char *key = http_server_header(req, "Sec-WebSocket-Key");
	if (strcmp(http_server_method(req), "GET") != 0) {
		*why = "a WebSocket handshake is a GET";
		return 400;
	}
	if (!upgrade || !has_token(upgrade, "websocket") || !connection || !has_token(connection, "upgrade")) {
		*why = "not a WebSocket handshake: Upgrade: websocket and Connection: Upgrade are required";
		return 400;
	}
	if (!version || strcmp(version, "13") != 0) {
		*why = "Sec-WebSocket-Version must be 13";
		return 426;
	}
	unsigned char raw[32];
	size_t klen = key ? strlen(key) : 0;
	/* A key is 16 random bytes in base64: 24 characters ending in "==". */
	if (klen != 24 || key[22] != '=' || key[23] != '=' ||
	    EVP_DecodeBlock(raw, (const unsigned char *)key, (int)klen) != 18) {
		*why = "Sec-WebSocket-Key must be 16 bytes in base64";
		return 400;
	}
	http_ws_accept_key(key, accept);
	return 0;
}

/* ------------------------------------------------------------ references */

static void ws_unref(parley_ws *ws)
{
	pthread_mutex_lock(&ws->lock);
	int last = --ws->refs == 0;
	pthread_mutex_unlock(&ws->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&ws->lock);
	ws_in_free(&ws->in);
	free(ws->out);
	free(ws->extra);
	free(ws);
}

/* Ask the hub thread to look at ws (ws->lock held, ws not DONE). */
static void ws_attention(parley_ws *ws)
{
	struct http_ws_hub *hub = ws->hub;
	pthread_mutex_lock(&hub->lock);
	if (!ws->in_todo) {
		ws->in_todo = 1;
		ws->todo_next = hub->todo;
		hub->todo = ws;
	}
	pthread_mutex_unlock(&hub->lock);
	uint64_t one = 1;
	ssize_t n = write(hub->wake, &one, sizeof(one));
	(void)n;
}

/* ---------------------------------------------------------------- output */

/* Write what the socket takes (ws->lock held); arm EPOLLOUT for the rest. */
static void ws_flush(parley_ws *ws)
{
	if (ws->fd < 0 || ws->broken)
		return;
	while (ws->out_off < ws->out_len) {
		ssize_t n = send(ws->fd, ws->out + ws->out_off, ws->out_len - ws->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			ws->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		ws->broken = 1;
		break;
	}
	if (ws->out_off == ws->out_len)
		ws->out_off = ws->out_len = 0;
	int want = ws->out_len > 0 && !ws->broken;
	if (ws->registered && want != ws->want_out) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0), .data.ptr = ws};
		epoll_ctl(ws->hub->ep, EPOLL_CTL_MOD, ws->fd, &ev);
		ws->want_out = want;
	}
}

/* Append one frame (ws->lock held). */
static int ws_queue(parley_ws *ws, int opcode, const void *data, size_t len)
{
	unsigned char head[10];
	size_t hl = ws_frame_head(head, opcode, len);
	size_t need = ws->out_len + hl + len;
	if (need > ws->out_cap) {
		if (ws->out_off) {
			memmove(ws->out, ws->out + ws->out_off, ws->out_len - ws->out_off);
			ws->out_len -= ws->out_off;
			ws->out_off = 0;
			need = ws->out_len + hl + len;
		}
		if (need > ws->out_cap) {
			size_t cap = ws->out_cap ? ws->out_cap : 1024;
			while (cap < need)
				cap *= 2;
			unsigned char *nb = realloc(ws->out, cap);
			if (!nb)
				return PARLEY_ENOMEM;
			ws->out = nb;
			ws->out_cap = cap;
		}
	}
	memcpy(ws->out + ws->out_len, head, hl);
	if (len)
		memcpy(ws->out + ws->out_len + hl, data, len);
	ws->out_len += hl + len;
	return 0;
}

/* Queue our close frame once (ws->lock held). */
static void ws_queue_close(parley_ws *ws, int code, const char *reason)
{
	if (ws->close_queued)
		return;
	unsigned char p[125];
	size_t rl = reason ? strlen(reason) : 0;
	if (rl > 123)
		rl = 123;
	while (rl && !utf8_valid(reason, rl))
		rl--; /* never cut a character in two */
	p[0] = (unsigned char)(code >> 8);
	p[1] = (unsigned char)code;
	if (rl)
		memcpy(p + 2, reason, rl);
	ws_queue(ws, WS_OP_CLOSE, p, rl + 2);
	ws->close_queued = 1;
	ws->closing_at = time_mono_ms();
}

int http_ws_send(parley_ws *ws, const char *text, size_t len)
{
	if (!utf8_valid(text, len))
		return PARLEY_EINVAL;
	pthread_mutex_lock(&ws->lock);
	int rv = 0;
	if (ws->state == WS_DONE || ws->close_queued || ws->broken || ws->eof)
		rv = PARLEY_ECLOSED;
	else if (ws->out_len - ws->out_off + len > HTTP_WS_BACKLOG)
		rv = PARLEY_EBUSY;
	else if ((rv = ws_queue(ws, WS_OP_TEXT, text, len)) == 0 && ws->state == WS_OPEN) {
		ws_flush(ws);
		if (ws->broken)
			ws_attention(ws);
	}
	pthread_mutex_unlock(&ws->lock);
	return rv;
}

void http_ws_close(parley_ws *ws, int code, const char *reason)
{
	pthread_mutex_lock(&ws->lock);
	if (ws->state != WS_DONE && !ws->close_queued) {
		ws_queue_close(ws, code, reason);
		if (ws->state == WS_OPEN)
			ws_flush(ws);
		ws_attention(ws);
	}
	pthread_mutex_unlock(&ws->lock);
}

/* ------------------------------------------------------------ the thread */

/* Done with ws: close the socket, tell the plugin, drop the hub's reference.  Hub thread. */
static void ws_finish(parley_ws *ws)
{
	struct http_ws_hub *hub = ws->hub;
	pthread_mutex_lock(&ws->lock);
	if (ws->state == WS_DONE) {
		pthread_mutex_unlock(&ws->lock);
		return;
	}
	ws->state = WS_DONE;
	if (ws->registered)
		epoll_ctl(hub->ep, EPOLL_CTL_DEL, ws->fd, NULL);
	ws->registered = 0;
	struct http_upgraded *up = ws->up;
	ws->up = NULL;
	ws->fd = -1;
	pthread_mutex_unlock(&ws->lock);
	http_upgraded_close(up);
	pthread_mutex_lock(&hub->lock);
	if (ws->in_todo) {
		for (parley_ws **p = &hub->todo; *p; p = &(*p)->todo_next)
			if (*p == ws) {
				*p = ws->todo_next;
				break;
			}
		ws->in_todo = 0;
	}
	if (ws->prev)
		ws->prev->next = ws->next;
	else
		hub->all = ws->next;
	if (ws->next)
		ws->next->prev = ws->prev;
	pthread_mutex_unlock(&hub->lock);
	metrics_add(hub->metrics, "websockets_closed_total", NULL, NULL, 1);
	if (ws->cb.on_close)
		ws->cb.on_close(ws->arg, ws);
	ws_unref(ws);
}

static void on_frame(void *arg, int opcode, const char *data, size_t len)
{
	parley_ws *ws = arg;
	switch (opcode) {
	case WS_OP_TEXT: {
		pthread_mutex_lock(&ws->lock);
		int closing = ws->close_queued;
		pthread_mutex_unlock(&ws->lock);
		if (closing || !ws->cb.on_message)
			return;
		char *text = malloc(len + 1);
		if (!text)
			return;
		memcpy(text, data, len);
		text[len] = '\0';
		ws->cb.on_message(ws->arg, ws, text, len);
		free(text);
		return;
	}
	case WS_OP_BINARY:
		pthread_mutex_lock(&ws->lock);
		ws_queue_close(ws, WS_CLOSE_UNSUPPORTED, "binary messages are not accepted: send text");
		pthread_mutex_unlock(&ws->lock);
		return;
	case WS_OP_PING:
		pthread_mutex_lock(&ws->lock);
		if (!ws->close_queued)
			ws_queue(ws, WS_OP_PONG, data, len);
		pthread_mutex_unlock(&ws->lock);
		return;
	case WS_OP_CLOSE: {
		int code = len >= 2 ? ((unsigned char)data[0] << 8 | (unsigned char)data[1]) : WS_CLOSE_NORMAL;
		pthread_mutex_lock(&ws->lock);
		ws->peer_closed = 1;
		ws_queue_close(ws, code, NULL);
		pthread_mutex_unlock(&ws->lock);
		return;
	}
	default:
		return;
	}
}

/* Read what the client sent and act on it.  Hub thread. */
static void ws_read(parley_ws *ws)
{
	unsigned char buf[16384];
	for (;;) {
		ssize_t n = recv(ws->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			pthread_mutex_lock(&ws->lock);
			ws->eof = 1;
			pthread_mutex_unlock(&ws->lock);
			return;
		}
		ws->last_in = time_mono_ms();
		ws->ping_sent = 0;
		int rv = ws_in_feed(&ws->in, buf, (size_t)n, on_frame, ws);
		if (rv) {
			pthread_mutex_lock(&ws->lock);
			ws_queue_close(ws, rv,
			               rv == WS_CLOSE_TOO_BIG    ? "message too big"
			               : rv == WS_CLOSE_BAD_DATA ? "text is not valid UTF-8"
			                                         : "protocol error");
			pthread_mutex_unlock(&ws->lock);
			return;
		}
		if (ws->in.closed)
			return;
	}
}

/* Bring ws forward: hand-over, reads, writes, the end.  Hub thread. */
static void ws_service(parley_ws *ws, uint32_t events)
{
	struct http_ws_hub *hub = ws->hub;
	pthread_mutex_lock(&ws->lock);
	if (ws->state == WS_DONE || ws->accepting) {
		pthread_mutex_unlock(&ws->lock);
		return;
	}
	if (ws->failed && ws->fd < 0) {
		pthread_mutex_unlock(&ws->lock);
		ws_finish(ws);
		return;
	}
	int fresh = 0;
	if (ws->state == WS_PENDING && ws->fd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = ws};
		if (epoll_ctl(hub->ep, EPOLL_CTL_ADD, ws->fd, &ev) != 0)
			ws->broken = 1;
		else
			ws->registered = 1;
		ws->state = WS_OPEN;
		ws->last_in = time_mono_ms();
		fresh = 1;
	}
	pthread_mutex_unlock(&ws->lock);
	if (ws->state != WS_OPEN)
		return; /* still waiting for the server to hand the socket over */
	if (fresh && ws->extra_len) {
		int rv = ws_in_feed(&ws->in, ws->extra, ws->extra_len, on_frame, ws);
		if (rv) {
			pthread_mutex_lock(&ws->lock);
			ws_queue_close(ws, rv, "protocol error");
			pthread_mutex_unlock(&ws->lock);
		}
	}
	if (fresh || (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		ws_read(ws);
	pthread_mutex_lock(&ws->lock);
	ws_flush(ws);
	int sent = ws->out_len == 0;
	/* At the end of the client's stream it is gone (a socket left readable would wake epoll forever). */
	int done = ws->broken || ws->eof || (ws->close_queued && sent && ws->peer_closed) ||
	           (ws->close_queued && time_mono_ms() - ws->closing_at > CLOSE_WAIT_MS) ||
	           (ws->close_queued && ws->in.closed && sent);
	if (ws->close_queued && sent && !done)
		shutdown(ws->fd, SHUT_WR); /* our close frame is out: the client ends the TCP side next */
	pthread_mutex_unlock(&ws->lock);
	if (done)
		ws_finish(ws);
}

/*
 * Silent clients: ping one silent for ping_ms (browsers answer on their
 * own); finish one silent for 2.5 times as long (a phone that changed
 * networks leaves a socket nobody will ever close), and one that never
 * answered our close.  Hub thread.  The list is walked under hub->lock
 * only (reading atomics: a sender holds a socket's lock while it takes the
 * hub's), and a socket stays valid after the walk because only this thread
 * drops the hub's reference.
 */
static void sweep(struct http_ws_hub *hub)
{
	int64_t now = time_mono_ms();
	for (;;) {
		parley_ws *late = NULL, *quiet = NULL;
		pthread_mutex_lock(&hub->lock);
		for (parley_ws *ws = hub->all; ws && !late && !quiet; ws = ws->next) {
			if (ws->state != WS_OPEN)
				continue;
			int64_t silent = now - ws->last_in;
			if (ws->close_queued ? now - ws->closing_at > CLOSE_WAIT_MS : silent > hub->ping_ms * 5 / 2)
				late = ws;
			else if (!ws->close_queued && !ws->ping_sent && silent > hub->ping_ms)
				quiet = ws;
		}
		pthread_mutex_unlock(&hub->lock);
		if (late) {
			ws_finish(late);
			continue;
		}
		if (!quiet)
			return;
		quiet->ping_sent = 1;
		pthread_mutex_lock(&quiet->lock);
		ws_queue(quiet, WS_OP_PING, "parley", 6);
		ws_flush(quiet);
		pthread_mutex_unlock(&quiet->lock);
	}
}

/* The hub stops: close every socket now.  Hub thread. */
static void close_all(struct http_ws_hub *hub)
{
	for (int spins = 0;; spins++) {
		pthread_mutex_lock(&hub->lock);
		parley_ws *ws = hub->all;
		hub->todo = NULL;
		for (parley_ws *w = hub->all; w; w = w->next)
			w->in_todo = 0;
		pthread_mutex_unlock(&hub->lock);
		if (!ws)
			return;
		pthread_mutex_lock(&ws->lock);
		int accepting = ws->accepting;
		if (!accepting && ws->state == WS_OPEN) {
			ws_queue_close(ws, WS_CLOSE_GOING_AWAY, "the gateway is shutting down");
			ws_flush(ws);
		}
		pthread_mutex_unlock(&ws->lock);
		if (accepting && spins < 1000) {
			usleep(1000); /* http_ws_accept() is about to return */
			continue;
		}
		ws_finish(ws);
	}
}

static void *hub_main(void *arg)
{
	struct http_ws_hub *hub = arg;
	struct epoll_event evs[64];
	int64_t last_sweep = time_mono_ms();
	for (;;) {
		int n = epoll_wait(hub->ep, evs, 64, 500);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				uint64_t v;
				ssize_t r = read(hub->wake, &v, sizeof(v));
				(void)r;
				continue;
			}
			ws_service(evs[i].data.ptr, evs[i].events);
		}
		for (;;) {
			pthread_mutex_lock(&hub->lock);
			parley_ws *ws = hub->todo;
			if (ws) {
				hub->todo = ws->todo_next;
				ws->in_todo = 0;
			}
			int stopping = hub->stopping;
			pthread_mutex_unlock(&hub->lock);
			if (stopping) {
				close_all(hub);
				return NULL;
			}
			if (!ws)
				break;
			ws_service(ws, 0);
		}
		if (time_mono_ms() - last_sweep >= 500) {
			sweep(hub);
			last_sweep = time_mono_ms();
		}
	}
}

int http_ws_hub_start(struct http_ws_hub **out, struct metrics *metrics, int64_t ping_ms, char **errmsg)
{
	struct http_ws_hub *hub = calloc(1, sizeof(*hub));
	if (!hub)
		return PARLEY_ENOMEM;
	hub->metrics = metrics;
	hub->ping_ms = ping_ms > 0 ? ping_ms : HTTP_WS_PING_MS;
	pthread_mutex_init(&hub->lock, NULL);
	hub->ep = epoll_create1(EPOLL_CLOEXEC);
	hub->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (hub->ep < 0 || hub->wake < 0 || epoll_ctl(hub->ep, EPOLL_CTL_ADD, hub->wake, &ev) != 0 ||
	    thread_start(&hub->thread, hub_main, hub, "parley:ws-hub") != 0) {
		*errmsg = str_printf("cannot start the WebSocket thread: %s", strerror(errno));
		if (hub->ep >= 0)
			close(hub->ep);
		if (hub->wake >= 0)
			close(hub->wake);
		pthread_mutex_destroy(&hub->lock);
		free(hub);
		return PARLEY_EIO;
	}
	metrics_add(metrics, "websockets_opened_total", NULL, NULL, 0);
	metrics_add(metrics, "websockets_closed_total", NULL, NULL, 0);
	*out = hub;
	return 0;
}

void http_ws_hub_stop(struct http_ws_hub *hub)
{
	if (!hub)
		return;
	pthread_mutex_lock(&hub->lock);
	int was = hub->stopping;
	hub->stopping = 1;
	pthread_mutex_unlock(&hub->lock);
	if (was)
		return;
	uint64_t one = 1;
	ssize_t n = write(hub->wake, &one, sizeof(one));
	(void)n;
	pthread_join(hub->thread, NULL);
	pthread_mutex_lock(&hub->lock);
	hub->stopped = 1;
	pthread_mutex_unlock(&hub->lock);
}

void http_ws_hub_free(struct http_ws_hub *hub)
{
	if (!hub)
		return;
	close(hub->ep);
	close(hub->wake);
	pthread_mutex_destroy(&hub->lock);
	free(hub);
}

/* --------------------------------------------------------------- accept */

/* The server hands the socket over (or says it never will).  Server thread. */
static void on_switched(void *arg, int fd, const char *extra, size_t extra_len, struct http_upgraded *up)
{
	parley_ws *ws = arg;
	pthread_mutex_lock(&ws->lock);
	if (ws->state == WS_DONE) {
		pthread_mutex_unlock(&ws->lock);
		http_upgraded_close(up); /* the hub stopped meanwhile */
	} else {
		if (fd < 0) {
			ws->failed = 1;
		} else {
			ws->fd = fd;
			ws->up = up;
			int fl = fcntl(fd, F_GETFL);
			if (fl >= 0)
				fcntl(fd, F_SETFL, fl | O_NONBLOCK);
			if (extra_len && (ws->extra = malloc(extra_len)) != NULL) {
				memcpy(ws->extra, extra, extra_len);
				ws->extra_len = extra_len;
			}
		}
		ws_attention(ws);
		pthread_mutex_unlock(&ws->lock);
	}
	ws_unref(ws); /* the switch's */
}

parley_ws *http_ws_accept(struct http_ws_hub *hub, parley_http_request *req, const struct parley_ws_callbacks *cb,
                          void *arg)
{
	char accept[29];
	const char *why = NULL;
	int status = http_ws_check(req, accept, &why);
	if (status) {
		const char *hv[] = {"Sec-WebSocket-Version", "13", NULL};
		char *body = http_error_json(why);
		http_server_respond_with(req, status, "application/json", status == 426 ? hv : NULL, body,
		                         body ? strlen(body) : 0);
		free(body);
		return NULL;
	}
	parley_ws *ws = calloc(1, sizeof(*ws));
	if (!ws) {
		http_server_respond_error(req, 503, "out of memory for the WebSocket");
		return NULL;
	}
	ws->hub = hub;
	ws->fd = -1;
	ws->refs = 3; /* the hub's, the switch's, this call's */
	ws->accepting = 1;
	pthread_mutex_init(&ws->lock, NULL);
	size_t n = cb->struct_size < sizeof(ws->cb) ? cb->struct_size : sizeof(ws->cb);
	memcpy(&ws->cb, cb, n);
	ws->arg = arg;
	ws_in_init(&ws->in, ws->cb.max_message ? ws->cb.max_message : DEFAULT_MAX_MESSAGE);
	pthread_mutex_lock(&hub->lock);
	int closed = hub->stopping;
	if (!closed) {
		ws->next = hub->all;
		if (hub->all)
			hub->all->prev = ws;
		hub->all = ws;
	}
	pthread_mutex_unlock(&hub->lock);
	if (closed) {
		pthread_mutex_destroy(&ws->lock);
		ws_in_free(&ws->in);
		free(ws);
		http_server_respond_error(req, 503, "the gateway is shutting down: retry later");
		return NULL;
	}
	const char *headers[] = {"Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", accept, NULL};
	if (http_server_upgrade(req, headers, on_switched, ws) != 0) {
		pthread_mutex_lock(&ws->lock);
		ws->failed = 1;
		ws->refs--; /* no switch will come */
		pthread_mutex_unlock(&ws->lock);
	}
	metrics_add(hub->metrics, "websockets_opened_total", NULL, NULL, 1);
	pthread_mutex_lock(&ws->lock);
	ws->accepting = 0;
	if (ws->state != WS_DONE)
		ws_attention(ws);
	pthread_mutex_unlock(&ws->lock);
	ws_unref(ws);
	return ws;
}
