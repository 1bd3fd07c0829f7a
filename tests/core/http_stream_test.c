/*
 * http_stream_test.c: a streamed response (core/http_server.c) sends what
 * is written from another thread as it is written, stays open while idle
 * past every timeout, holds no http.max_inflight slot, refuses a backlog a
 * client does not read, and tells its owner exactly once when the body
 * ended, the client went away or the server stopped.
 */
#define _GNU_SOURCE
#include "http_server.h"
#include "metrics.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define N_STREAMS 4

struct slot {
	struct http_stream *_Atomic st;
	atomic_int opened;
	atomic_int closes;
};

static void on_close(void *arg)
{
	struct slot *sl = arg;
	atomic_fetch_add(&sl->closes, 1);
}

static void serve_stream(void *arg, parley_http_request *req)
{
	struct slot *sl = arg;
	static const char *const headers[] = {"Cache-Control", "no-store", NULL};
	atomic_store(&sl->st, http_server_stream(req, 200, "text/event-stream", headers, on_close, sl));
	atomic_store(&sl->opened, 1);
}

static void serve_plain(void *arg, parley_http_request *req)
{
	(void)arg;
	http_server_respond(req, 200, "text/plain", "plain", 5);
}

static void route(void *arg, parley_http_request *req)
{
	struct slot *slots = arg;
	const char *path = http_server_path(req);
	if (strncmp(path, "/stream/", 8) == 0 && path[8] >= '0' && path[8] < '0' + N_STREAMS)
		http_server_serve(req, serve_stream, &slots[path[8] - '0'], 0, 1);
	else
		http_server_serve(req, serve_plain, NULL, 0, 1);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	return ntohs(a.sin_port);
}

static int dial(int port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((unsigned short)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct reader {
	int fd;
	char buf[65536];
	size_t len;
	int eof;
};

/* 1 when needle has arrived on r within ms (everything read is kept). */
static int arrives(struct reader *r, const char *needle, int ms)
{
	for (int waited = 0; waited <= ms;) {
		if (memmem(r->buf, r->len, needle, strlen(needle)))
			return 1;
		if (r->eof)
			return 0;
		struct pollfd p = {.fd = r->fd, .events = POLLIN};
		if (poll(&p, 1, 20) == 1) {
			ssize_t n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len, 0);
			if (n <= 0)
				r->eof = 1;
			else
				r->len += (size_t)n;
		} else {
			waited += 20;
		}
	}
	return memmem(r->buf, r->len, needle, strlen(needle)) != NULL;
}

static int open_stream(struct reader *r, int port, int n, struct slot *sl, int rcvbuf)
{
	memset(r, 0, sizeof(*r));
	r->fd = dial(port, rcvbuf);
	char req[128];
	int len = snprintf(req, sizeof(req), "GET /stream/%d HTTP/1.1\r\nHost: test\r\n\r\n", n);
	if (r->fd < 0 || send(r->fd, req, (size_t)len, 0) != len)
		return -1;
	for (int i = 0; i < 200 && !atomic_load(&sl->opened); i++)
		usleep(10000);
	return atomic_load(&sl->st) ? 0 : -1;
}

static int closes_within(struct slot *sl, int ms)
{
	for (int i = 0; i <= ms / 10 && !atomic_load(&sl->closes); i++)
		usleep(10000);
	return atomic_load(&sl->closes);
}

static void *write_hello(void *arg)
{
	http_stream_write(arg, "data: hello\n\n", 13);
	return NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void)
{
	struct slot slots[N_STREAMS];
	memset(slots, 0, sizeof(slots));
	int port = free_port();
	char listen[64];
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	/* Short deadlines: MHD's idle timeout is then 2 s, which an open stream must outlive. */
	struct http_server_config cfg = {.listen = listen,
	                                 .header_timeout_ms = 300,
	                                 .body_timeout_ms = 300,
	                                 .max_connections = 64,
	                                 .max_connections_per_ip = 64,
	                                 .max_inflight = 1,
	                                 .max_header_size = 8192,
	                                 .max_url_size = 2048};
	struct metrics *m = metrics_new();
	struct http_server *srv = NULL;
	char *err = NULL;
	CHECK(http_server_start(&srv, &cfg, m, route, slots, &err) == 0);
	if (!srv) {
		fprintf(stderr, "%s\n", err ? err : "no server");
		return 1;
	}

	/* Stream 0: bytes written on another thread arrive, chunked, with the stream's headers. */
	struct reader r0;
	CHECK(open_stream(&r0, port, 0, &slots[0], 0) == 0);
	struct http_stream *st0 = atomic_load(&slots[0].st);
	pthread_t t;
	pthread_create(&t, NULL, write_hello, st0);
	pthread_join(t, NULL);
	CHECK(arrives(&r0, "data: hello\n\n", 2000));
	CHECK_CONTAINS(r0.buf, "HTTP/1.1 200");
	CHECK_CONTAINS(r0.buf, "text/event-stream");
	CHECK_CONTAINS(r0.buf, "Cache-Control: no-store");
	CHECK_CONTAINS(r0.buf, "chunked");

	/* With max_inflight 1 and the stream open, another request is still served. */
	struct reader rp = {.fd = dial(port, 0)};
	const char plain[] = "GET /plain HTTP/1.1\r\nHost: test\r\n\r\n";
	CHECK(send(rp.fd, plain, sizeof(plain) - 1, 0) == (ssize_t)(sizeof(plain) - 1));
	CHECK(arrives(&rp, "plain", 2000));
	CHECK_CONTAINS(rp.buf, "HTTP/1.1 200");
	close(rp.fd);

	/* Idle past the header and body deadlines and MHD's idle timeout: still open. */
	usleep(3500 * 1000);
	CHECK(!r0.eof && !arrives(&r0, "0\r\n\r\n", 0));
	CHECK(http_stream_write(st0, "data: later\n\n", 13) == 0);
	CHECK(arrives(&r0, "data: later\n\n", 2000));
	CHECK(atomic_load(&slots[0].closes) == 0);

	/* Closing ends the body (the last chunk) and fires on_close once. */
	http_stream_close(st0);
	CHECK(arrives(&r0, "\r\n0\r\n\r\n", 2000));
	CHECK(closes_within(&slots[0], 2000) == 1);
	close(r0.fd);

	/* Stream 1: the client goes away; the next writes notice, on_close fires once. */
	struct reader r1;
	CHECK(open_stream(&r1, port, 1, &slots[1], 0) == 0);
	struct http_stream *st1 = atomic_load(&slots[1].st);
	CHECK(http_stream_write(st1, "x", 1) == 0);
	CHECK(arrives(&r1, "x", 2000));
	close(r1.fd);
	for (int i = 0; i < 300 && !atomic_load(&slots[1].closes); i++) {
		http_stream_write(st1, "data: anyone?\n\n", 15);
		usleep(10000);
	}
	CHECK(atomic_load(&slots[1].closes) == 1);
	CHECK(http_stream_write(st1, "y", 1) == PARLEY_ECLOSED);
	http_stream_close(st1); /* after on_close: allowed */
	usleep(50000);
	CHECK(atomic_load(&slots[1].closes) == 1);

	/* Stream 2: a client that reads nothing; the backlog is bounded. */
	struct reader r2;
	CHECK(open_stream(&r2, port, 2, &slots[2], 4096) == 0);
	struct http_stream *st2 = atomic_load(&slots[2].st);
	static char chunk[65536];
	memset(chunk, 'z', sizeof(chunk));
	int rv = 0;
	for (int i = 0; i < 4096 && rv == 0; i++)
		rv = http_stream_write(st2, chunk, sizeof(chunk));
	CHECK(rv == PARLEY_EBUSY);

	/* Stream 3: open and idle when the server stops. */
	struct reader r3;
	CHECK(open_stream(&r3, port, 3, &slots[3], 0) == 0);
	struct http_stream *st3 = atomic_load(&slots[3].st);
	CHECK(http_stream_write(st3, "data: 3\n\n", 9) == 0);
	CHECK(arrives(&r3, "data: 3", 2000));

	int64_t t0 = now_ms();
	http_server_stop(srv);
	CHECK(now_ms() - t0 < 3000);
	CHECK(atomic_load(&slots[2].closes) == 1);
	CHECK(atomic_load(&slots[3].closes) == 1);
	CHECK(arrives(&r3, "\r\n0\r\n\r\n", 1000) || r3.eof);
	CHECK(http_stream_write(st3, "late", 4) == PARLEY_ECLOSED);
	http_stream_close(st2);
	http_stream_close(st3);
	close(r2.fd);
	close(r3.fd);
	http_server_free(srv);
	metrics_free(m);
	free(err);
	for (int i = 0; i < N_STREAMS; i++)
		CHECK(atomic_load(&slots[i].closes) == 1);
	TEST_DONE();
}
