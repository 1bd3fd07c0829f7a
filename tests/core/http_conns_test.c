/*
 * http_conns_test.c: the HTTP connection table refuses over its caps, shuts a
 * socket down when its head or body deadline passes (not while a handler
 * works), and counts each refusal.
 */
#include "http_conns.h"
#include "metrics.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in addr(const char *ip, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

#define SA(a) ((const struct sockaddr *)&(a))

/* 1 when the peer of fd has been shut down (reads end of stream) within ms. */
static int ended_within(int fd, int ms)
{
	for (int waited = 0; waited <= ms; waited += 10) {
		char c;
		ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
		if (n == 0)
			return 1;
		usleep(10000);
	}
	return 0;
}

int main(void)
{
	struct metrics *m = metrics_new();
	struct http_conns *t;
	struct http_conns_limits lim = {
	        .max_connections = 3, .max_per_ip = 2, .header_timeout_ms = 100, .body_timeout_ms = 150};
	CHECK(http_conns_open(&t, &lim, m) == 0);

	struct sockaddr_in a1 = addr("127.0.0.1", 1001), a2 = addr("127.0.0.1", 1002), a3 = addr("127.0.0.1", 1003);
	struct sockaddr_in b1 = addr("127.0.0.2", 2001), c1 = addr("127.0.0.3", 3001);
	CHECK(http_conns_admit(t, SA(a1)) == 0);
	CHECK(http_conns_admit(t, SA(a2)) == 0);
	CHECK(http_conns_admit(t, SA(a3)) == -1); /* a third from one address */
	CHECK(http_conns_admit(t, SA(b1)) == 0);
	CHECK(http_conns_admit(t, SA(c1)) == -1); /* a fourth in all */
	CHECK(metrics_get(m, "http_refused_total", "reason", "too_many_connections") == 2);

	int head[2], body[2], busy[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, head) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, body) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, busy) == 0);
	struct http_conn *ch = http_conns_attach(t, SA(a1), head[0]);
	struct http_conn *cb = http_conns_attach(t, SA(a2), body[0]);
	struct http_conn *cw = http_conns_attach(t, SA(b1), busy[0]);
	CHECK(ch && cb && cw);
	CHECK(http_conns_attach(t, SA(c1), 99) == NULL); /* never admitted */
	http_conn_wait(t, cb, HTTP_CONN_BODY);
	http_conn_wait(t, cw, HTTP_CONN_BUSY);

	CHECK(ended_within(head[1], 600));
	CHECK(ended_within(body[1], 600));
	CHECK(!ended_within(busy[1], 400)); /* a handler is working: no deadline */
	CHECK(metrics_get(m, "http_refused_total", "reason", "header_timeout") == 1);
	CHECK(metrics_get(m, "http_refused_total", "reason", "body_timeout") == 1);

	/* A detached slot is free again. */
	http_conns_detach(t, ch);
	CHECK(http_conns_admit(t, SA(c1)) == 0);

	http_conns_detach(t, cb);
	http_conns_detach(t, cw);
	http_conns_close(t);
	for (int i = 0; i < 2; i++) {
		close(head[i]);
		close(body[i]);
		close(busy[i]);
	}
	metrics_free(m);
	TEST_DONE();
}
