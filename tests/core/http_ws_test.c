/*
 * http_ws_test.c: WebSockets over the real HTTP server: the handshake
 * (RFC 6455's own example key), refusals (400, 426), echo through the hub
 * thread, ping/pong, an idle socket outliving every HTTP timeout, the close
 * handshake, a client that vanishes, one that never answers the hub's pings,
 * and the hub stopping with a socket open (close 1001).  on_close fires exactly once for each.
 */
#define _GNU_SOURCE
#include "http_server.h"
#include "http_ws.h"
#include "metrics.h"
#include "test.h"
#include "ws_frame.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

static struct http_ws_hub *hub;
static atomic_int closes, messages;

static void on_message(void *arg, parley_ws *ws, const char *text, size_t len)
{
	(void)arg;
	atomic_fetch_add(&messages, 1);
	if (strcmp(text, "bye") == 0)
		http_ws_close(ws, 4000, "asked to");
	else
		http_ws_send(ws, text, len);
}

static void on_close(void *arg, parley_ws *ws)
{
	(void)arg;
	(void)ws;
	atomic_fetch_add(&closes, 1);
}

static void serve_ws(void *arg, parley_http_request *req)
{
	(void)arg;
	struct parley_ws_callbacks cb = {sizeof(cb), 1024, on_message, on_close};
	http_ws_accept(hub, req, &cb, NULL);
}

static void route(void *arg, parley_http_request *req)
{
	http_server_serve(req, serve_ws, arg, 0, 1);
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

struct conn {
	int fd;
	unsigned char buf[65536];
	size_t len;
	int eof;
};

static int wait_for(struct conn *c, size_t want, int ms)
{
	for (int waited = 0; c->len < want && !c->eof && waited < ms;) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		if (poll(&p, 1, 20) == 1) {
			ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
			if (n <= 0)
				c->eof = 1;
			else
				c->len += (size_t)n;
		} else {
			waited += 20;
		}
	}
	return c->len >= want;
}

static void consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* Send a request head; read the answer's head into c (consumed); its status. */
static int handshake_once(struct conn *c, int port, const char *extra_headers)
{
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((unsigned short)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return -1;
	char req[1024];
	int n = snprintf(req, sizeof(req), "GET /ws HTTP/1.1\r\nHost: test\r\n%s\r\n", extra_headers);
	send(c->fd, req, (size_t)n, 0);
	for (int i = 0; i < 100; i++) {
		wait_for(c, c->len + 1, 20);
		unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		if (end) {
			int status = atoi((char *)c->buf + 9);
			c->buf[end - c->buf] = '\0';
			if (strstr((char *)c->buf, "Content-Length: ")) {
				size_t cl = (size_t)atoi(strstr((char *)c->buf, "Content-Length: ") + 16);
				wait_for(c, (size_t)(end - c->buf) + 4 + cl, 1000);
			}
			return status;
		}
	}
	return -1;
}

/*
 * handshake_once, again while it is answered 503: the server runs with max_inflight 1, and the previous
 * request's slot is given back when libmicrohttpd reports it completed, which on a loaded machine can be
 * a moment after this client read that answer and connected again.  Any other answer is returned.
 */
static int handshake(struct conn *c, int port, const char *extra_headers)
{
	int status = -1;
	for (int i = 0; i < 50; i++) {
		status = handshake_once(c, port, extra_headers);
		if (status != 503)
			break;
		close(c->fd);
		usleep(20000);
	}
	return status;
}

#define GOOD                                                                                                           \
	"Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"                       \
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

/* A client frame head: the server's, with the mask bit set. */
static size_t ws_frame_head_client(unsigned char *b, int op, size_t n)
{
	size_t h = ws_frame_head(b, op, n);
	b[1] |= 0x80;
	return h;
}

static void send_frame(struct conn *c, int op, const char *p, size_t n)
{
	unsigned char b[512];
	static const unsigned char mask[4] = {1, 2, 3, 4};
	size_t h = ws_frame_head_client(b, op, n);
	memcpy(b + h, mask, 4);
	for (size_t i = 0; i < n; i++)
		b[h + 4 + i] = (unsigned char)p[i] ^ mask[i & 3];
	send(c->fd, b, h + 4 + n, 0);
}

/* The next server frame: opcode, payload into out (NUL-ended); -1 when none came. */
static int next_frame(struct conn *c, char *out, size_t cap, int ms)
{
	if (!wait_for(c, 2, ms))
		return -1;
	size_t n = c->buf[1] & 0x7F, h = 2;
	if (n == 126) {
		if (!wait_for(c, 4, ms))
			return -1;
		n = (size_t)c->buf[2] << 8 | c->buf[3];
		h = 4;
	}
	if (!wait_for(c, h + n, ms))
		return -1;
	int op = c->buf[0] & 0x0F;
	size_t k = n < cap - 1 ? n : cap - 1;
	memcpy(out, c->buf + h, k);
	out[k] = '\0';
	consume(c, h + n);
	return op;
}

static int closes_reach(int want, int ms)
{
	for (int i = 0; i < ms / 10 && atomic_load(&closes) < want; i++)
		usleep(10000);
	return atomic_load(&closes);
}

int main(void)
{
	char acc[29];
	http_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", acc);
	CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);

	int port = free_port();
	char listen[64];
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
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
	CHECK(http_ws_hub_start(&hub, m, 1000, &err) == 0); /* pings after 1 s of silence, closes after 2.5 s */
	CHECK(http_server_start(&srv, &cfg, m, route, NULL, &err) == 0);
	if (!srv || !hub)
		return 1;

	/* Refusals before any switch. */
	struct conn c;
	CHECK(handshake(&c, port,
	                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
	                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") == 426);
	CHECK_CONTAINS((char *)c.buf, "Sec-WebSocket-Version: 13");
	close(c.fd);
	CHECK(handshake(&c, port, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n") == 400);
	close(c.fd);
	CHECK(handshake(&c, port, "") == 400);
	close(c.fd);

	/* The switch, then echo, ping, and the close handshake. */
	CHECK(handshake(&c, port, GOOD) == 101);
	CHECK_CONTAINS((char *)c.buf, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	CHECK_CONTAINS((char *)c.buf, "Upgrade: websocket");
	consume(&c, strlen((char *)c.buf) + 4);
	char got[512];
	send_frame(&c, 0x1, "안녕하세요", strlen("안녕하세요"));
	CHECK(next_frame(&c, got, sizeof(got), 2000) == 0x1 && strcmp(got, "안녕하세요") == 0);
	send_frame(&c, 0x9, "pi", 2);
	CHECK(next_frame(&c, got, sizeof(got), 2000) == 0xA && strcmp(got, "pi") == 0);

	/*
	 * Idle past the HTTP deadlines, MHD's idle timeout (2 s here) and the
	 * hub's silence limit, answering only its pings: still open.
	 */
	int pings = 0;
	for (int i = 0; i < 60; i++) {
		int op = next_frame(&c, got, sizeof(got), 100);
		if (op == 0x9) {
			pings++;
			send_frame(&c, 0xA, got, strlen(got));
		}
	}
	CHECK(pings >= 2);
	send_frame(&c, 0x1, "still here", 10);
	CHECK(next_frame(&c, got, sizeof(got), 2000) == 0x1 && strcmp(got, "still here") == 0);

	send_frame(&c, 0x1, "bye", 3);
	CHECK(next_frame(&c, got, sizeof(got), 2000) == 0x8 && (unsigned char)got[0] == 0x0F &&
	      (unsigned char)got[1] == 0xA0 && strcmp(got + 2, "asked to") == 0);
	send_frame(&c, 0x8, "\x0f\xa0", 2);
	CHECK(closes_reach(1, 2000) == 1);
	CHECK(!wait_for(&c, 1, 2000) && c.eof); /* the server closed the TCP connection */
	close(c.fd);

	/* Over max_message (1024 here): close 1009. */
	CHECK(handshake(&c, port, GOOD) == 101);
	consume(&c, strlen((char *)c.buf) + 4);
	static char big[2000];
	memset(big, 'a', sizeof(big));
	unsigned char b[2100];
	size_t h = ws_frame_head_client(b, 0x1, sizeof(big));
	memset(b + h, 0, 4);
	memcpy(b + h + 4, big, sizeof(big));
	send(c.fd, b, h + 4 + sizeof(big), 0);
	CHECK(next_frame(&c, got, sizeof(got), 2000) == 0x8 && (unsigned char)got[0] == 0x03 &&
	      (unsigned char)got[1] == 0xF1);
	close(c.fd);
	CHECK(closes_reach(2, 5000) == 2);

	/* A client that vanishes without a close frame. */
	CHECK(handshake(&c, port, GOOD) == 101);
	close(c.fd);
	CHECK(closes_reach(3, 2000) == 3);

	/* A client that never answers a ping is closed after 2.5 s of silence. */
	CHECK(handshake(&c, port, GOOD) == 101);
	CHECK(closes_reach(4, 1500) == 3);
	CHECK(closes_reach(4, 8000) == 4); /* generous: a loaded machine's timers run late, never early */
	close(c.fd);

	/* The hub stops with a socket open: 1001, and on_close. */
	CHECK(handshake(&c, port, GOOD) == 101);
	consume(&c, strlen((char *)c.buf) + 4);
	send_frame(&c, 0x1, "x", 1);
	CHECK(next_frame(&c, got, sizeof(got), 2000) == 0x1);
	http_ws_hub_stop(hub);
	CHECK(atomic_load(&closes) == 5);
	CHECK(next_frame(&c, got, sizeof(got), 2000) == 0x8 && (unsigned char)got[0] == 0x03 &&
	      (unsigned char)got[1] == 0xE9);
	close(c.fd);
	http_server_stop(srv);
	http_server_free(srv);
	http_ws_hub_free(hub);
	metrics_free(m);
	free(err);
	CHECK(atomic_load(&closes) == 5);
	TEST_DONE();
}
