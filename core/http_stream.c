/*
 * http_stream.c: streamed responses, bodies that stay open (Server-Sent
 * Events): writers append from any thread, MHD's content reader sends, and
 * a quiet stream waits suspended (see http_server.h).
 */
#include "http_server_internal.h"
#include "metrics.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- streams */

/*
 * A stream is one response body that stays open.  Writers append to buf
 * under lock; MHD's content reader (on the connection's thread) takes from
 * it and, when it is empty, suspends the connection until the next write or
 * the end resumes it.  A suspended connection has no MHD idle timeout, so a
 * quiet stream stays open for as long as it is wanted.
 *
 * References: the caller's (dropped by http_stream_close()) and MHD's
 * (dropped by the response's free callback, when MHD is done with the
 * body: the client went away, the body ended, or the daemon stopped).
 * on_close fires once, when the body can no longer reach the client.
 */
struct http_stream {
	struct http_server *srv;
	struct MHD_Connection *mc;
	struct http_stream *prev, *next; /* srv->streams, under srv->lock */
	pthread_mutex_t lock;            /* everything below */
	char *buf;
	size_t off, len, cap; /* bytes waiting are buf[off, len) */
	int refs;
	int suspended; /* by the reader, waiting for bytes */
	int ending;    /* http_stream_close(): end the body once buf is sent */
	int gone;      /* MHD is done with the body: writes are refused */
	int answering; /* http_server_stream() has not returned: on_close waits for it */
	int close_deferred;
	atomic_int closed_fired;
	void (*on_close)(void *arg);
	void *arg;
};

static void stream_unref(struct http_stream *st)
{
	pthread_mutex_lock(&st->lock);
	int last = --st->refs == 0;
	pthread_mutex_unlock(&st->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&st->lock);
	free(st->buf);
	free(st);
}

/* Resume st's connection if the reader suspended it (st->lock held). */
static void stream_wake(struct http_stream *st)
{
	if (!st->suspended)
		return;
	st->suspended = 0;
	struct http_server *s = st->srv;
	pthread_mutex_lock(&s->resume_lock);
	if (!s->stopping)
		MHD_resume_connection(st->mc);
	pthread_mutex_unlock(&s->resume_lock);
}

/* Tell the owner the stream is over: once, whoever notices first. */
static void stream_fire_close(struct http_stream *st)
{
	pthread_mutex_lock(&st->lock);
	int later = st->answering;
	st->close_deferred |= later;
	pthread_mutex_unlock(&st->lock);
	if (later)
		return; /* http_server_stream() fires it, if the stream was made at all */
	if (atomic_exchange(&st->closed_fired, 1))
		return;
	if (st->on_close)
		st->on_close(st->arg);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct http_stream *st = cls;
	(void)pos;
	pthread_mutex_lock(&st->lock);
	size_t n = st->len - st->off;
	if (n > max)
		n = max;
	if (n) {
		memcpy(out, st->buf + st->off, n);
		st->off += n;
		if (st->off == st->len)
			st->off = st->len = 0;
	} else if (st->ending) {
		pthread_mutex_unlock(&st->lock);
		return MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		/* Nothing to send: wait off MHD's loop (returning 0 alone would spin). */
		MHD_suspend_connection(st->mc);
		st->suspended = 1;
	}
	pthread_mutex_unlock(&st->lock);
	return (ssize_t)n;
}

/* MHD is done with the body: no reader call follows. */
static void stream_done(void *cls)
{
	struct http_stream *st = cls;
	struct http_server *s = st->srv;
	pthread_mutex_lock(&s->lock);
	if (st->prev)
		st->prev->next = st->next;
	else if (s->streams == st)
		s->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&st->lock);
	st->gone = 1;
	st->suspended = 0;
	free(st->buf);
	st->buf = NULL;
	st->off = st->len = st->cap = 0;
	pthread_mutex_unlock(&st->lock);
	stream_fire_close(st);
	stream_unref(st);
}

struct http_stream *http_server_stream(parley_http_request *r, int status, const char *content_type,
                                       const char *const *headers, void (*on_close)(void *arg), void *arg)
{
	struct http_server *s = r->srv;
	struct http_stream *st = calloc(1, sizeof(*st));
	struct MHD_Response *resp = NULL;
	if (st) {
		st->srv = s;
		st->mc = r->mc;
		st->refs = 2; /* the caller's and MHD's */
		st->answering = 1;
		st->on_close = on_close;
		st->arg = arg;
		pthread_mutex_init(&st->lock, NULL);
		/* The block size bounds one read; MHD's connection pool bounds it further. */
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st, stream_done);
	}
	if (!resp) {
		if (st)
			pthread_mutex_destroy(&st->lock);
		free(st);
		http_server_respond_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory for the stream");
		return NULL;
	}
	if (content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
		MHD_add_response_header(resp, headers[i], headers[i + 1]);
	/* A stream may stay open for hours: it must not hold a max_inflight slot. */
	if (atomic_exchange(&r->tracked, 0))
		atomic_fetch_sub(&s->inflight, 1);
	pthread_mutex_lock(&s->lock);
	st->next = s->streams;
	if (s->streams)
		s->streams->prev = st;
	s->streams = st;
	pthread_mutex_unlock(&s->lock);
	/*
	 * From here MHD's reference is dropped by stream_done(), which MHD calls
	 * when it destroys resp, even when resp never goes out (answered
	 * already, or the server stopped first).
	 */
	int rv = srv_answer(r, (unsigned)status, resp);
	pthread_mutex_lock(&st->lock);
	st->answering = 0;
	int deferred = st->close_deferred;
	pthread_mutex_unlock(&st->lock);
	if (rv != 0) {
		/* Answered already (the server is stopping): no stream, and no on_close. */
		atomic_store(&st->closed_fired, 1);
		srv_request_unref(r);
		http_stream_close(st);
		return NULL;
	}
	srv_count_response(s, (unsigned)status);
	srv_request_unref(r);
	if (deferred)
		stream_fire_close(st); /* the client left before this returned */
	return st;
}

int http_stream_write(struct http_stream *st, const void *data, size_t len)
{
	pthread_mutex_lock(&st->lock);
	if (st->gone || st->ending) {
		pthread_mutex_unlock(&st->lock);
		return PARLEY_ECLOSED;
	}
	if (st->len - st->off + len > HTTP_STREAM_BACKLOG) {
		pthread_mutex_unlock(&st->lock);
		return PARLEY_EBUSY;
	}
	if (st->len + len > st->cap && st->off) {
		memmove(st->buf, st->buf + st->off, st->len - st->off);
		st->len -= st->off;
		st->off = 0;
	}
	if (st->len + len > st->cap) {
		size_t cap = st->cap ? st->cap : 4096;
		while (cap < st->len + len)
			cap *= 2;
		char *nb = realloc(st->buf, cap);
		if (!nb) {
			pthread_mutex_unlock(&st->lock);
			return PARLEY_ENOMEM;
		}
		st->buf = nb;
		st->cap = cap;
	}
	if (len)
		memcpy(st->buf + st->len, data, len);
	st->len += len;
	if (len)
		stream_wake(st);
	pthread_mutex_unlock(&st->lock);
	return 0;
}

void http_stream_close(struct http_stream *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&st->lock);
	st->ending = 1;
	stream_wake(st);
	pthread_mutex_unlock(&st->lock);
	stream_unref(st);
}

/*
 * End every open stream and wait a moment for the ends to leave, so that
 * clients see a complete body rather than a cut connection.
 */
void http_streams_end(struct http_server *s)
{
	pthread_mutex_lock(&s->lock);
	for (struct http_stream *st = s->streams; st; st = st->next) {
		pthread_mutex_lock(&st->lock);
		st->ending = 1;
		stream_wake(st);
		pthread_mutex_unlock(&st->lock);
	}
	pthread_mutex_unlock(&s->lock);
	for (int tries = 0; tries < 100; tries++) {
		pthread_mutex_lock(&s->lock);
		int left = s->streams != NULL;
		pthread_mutex_unlock(&s->lock);
		if (!left)
			break;
		usleep(10000);
	}
}

/*
 * After MHD stopped: a stream MHD still held (a client that read nothing
 * of its end) has had its response destroyed by now, or will have when its
 * request is freed; tell the owners at once either way.
 */
void http_streams_gone(struct http_server *s)
{
	for (;;) {
		pthread_mutex_lock(&s->lock);
		struct http_stream *st = s->streams;
		if (st) {
			s->streams = st->next;
			if (st->next)
				st->next->prev = NULL;
			st->prev = st->next = NULL;
			pthread_mutex_lock(&st->lock);
			st->gone = 1;
			st->suspended = 0;
			pthread_mutex_unlock(&st->lock);
		}
		pthread_mutex_unlock(&s->lock);
		if (!st)
			return;
		stream_fire_close(st);
	}
}
