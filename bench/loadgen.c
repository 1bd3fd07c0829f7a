/*
 * loadgen.c: posts signed ~1 KiB webhooks to a Parley `webhook` channel over
 * keep-alive HTTP/1.1 connections on loopback, and reports throughput and
 * latency of the 2xx answers (which Parley sends only after commit).
 *
 *   loadgen -p PORT[,PORT...] -c CHANNEL -s SECRET [-n CONNS] [-r RATE] [-d SECONDS] [-b BYTES] [-u SENDERS]
 *   loadgen -p PORT -g PATH [-H 'Name: value'] [-n CONNS] [-r RATE] [-d SECONDS]
 *
 * -N COUNT: stop after COUNT requests (and their answers), before -d if sooner.
 * -g PATH: GET PATH instead (the HTTP API), with the header -H (say
 * "Authorization: Bearer pst_..." or "Cookie: parley_session=...").
 *
 * With several ports (gateway nodes), connection i goes to port i mod the
 * number of ports, so the connections are spread evenly over the nodes.
 * -u N: the messages come from N distinct senders ("from" tel:+1555 then the
 * message number mod N, seven digits), in turn.
 *
 * RATE 0 sends as fast as the connections allow (closed loop).  With a RATE,
 * requests are scheduled at fixed intervals (open loop) and latency counts
 * from the scheduled time, so a stall is not hidden by sending less.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	int busy;
	int64_t t_sched; /* ns: when this request was due */
	char out[4096];
	size_t out_len, out_off;
	char in[1 << 18]; /* an API answer: a page of conversations */
	size_t in_len;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		exit(1);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static const char *channel = "hooks", *secret = "bench";
static int ports[16] = {8080}, nports = 1, body_bytes = 1024, senders = 1;
static uint64_t seq;
static char run_tag[32];
static const char *get_path, *get_header;
static long max_requests; /* -N: 0 = no limit */

static void build_request(struct conn *c)
{
	if (get_path) {
		c->out_len = (size_t)snprintf(c->out, sizeof(c->out), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s\r\n",
		                              get_path, get_header ? get_header : "", get_header ? "\r\n" : "");
		c->out_off = 0;
		c->in_len = 0;
		return;
	}
	char body[2048], pad[1500];
	int padn = body_bytes - 129;
	if (padn < 0)
		padn = 0;
	if (padn > (int)sizeof(pad) - 1)
		padn = (int)sizeof(pad) - 1;
	memset(pad, 'x', (size_t)padn);
	pad[padn] = '\0';
	/* -u N: the messages come from N different customers, in turn. */
	/* The text starts with the customer's number, for rules that route on it. */
	unsigned long long who = (unsigned long long)(seq % (unsigned long long)senders);
	int bl = snprintf(body, sizeof(body),
	                  "{\"id\":\"%s-%llu\",\"from\":\"tel:+1555%07llu\",\"text\":\"c%07llu %s\"}", run_tag,
	                  (unsigned long long)seq, who, who, pad);
	seq++;
	unsigned char mac[32];
	unsigned int ml = 32;
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)body, (size_t)bl, mac, &ml);
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	c->out_len =
	        (size_t)snprintf(c->out, sizeof(c->out),
	                         "POST /webhooks/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
	                         "X-Parley-Signature: sha256=%s\r\nContent-Length: %d\r\n\r\n%s",
	                         channel, hex, bl, body);
	c->out_off = 0;
	c->in_len = 0;
}

/* Returns 1 when a whole response is in c->in, storing its status. */
static int response_done(struct conn *c, int *status)
{
	c->in[c->in_len] = '\0';
	char *hdr_end = strstr(c->in, "\r\n\r\n");
	if (!hdr_end)
		return 0;
	long cl = 0;
	char *p = strcasestr(c->in, "Content-Length:");
	if (p && p < hdr_end)
		cl = strtol(p + 15, NULL, 10);
	if ((size_t)(hdr_end + 4 - c->in) + (size_t)cl > c->in_len)
		return 0;
	*status = atoi(c->in + 9);
	return 1;
}

int main(int argc, char **argv)
{
	int nconns = 64, rate = 0, duration = 10, opt;
	while ((opt = getopt(argc, argv, "p:c:s:n:r:d:b:u:g:H:N:")) != -1) {
		switch (opt) {
		case 'p': {
			nports = 0;
			char *save = NULL;
			for (char *tok = strtok_r(optarg, ",", &save); tok && nports < 16;
			     tok = strtok_r(NULL, ",", &save))
				ports[nports++] = atoi(tok);
			if (nports == 0)
				ports[nports++] = 8080;
			break;
		}
		case 'c':
			channel = optarg;
			break;
		case 's':
			secret = optarg;
			break;
		case 'n':
			nconns = atoi(optarg);
			break;
		case 'r':
			rate = atoi(optarg);
			break;
		case 'd':
			duration = atoi(optarg);
			break;
		case 'b':
			body_bytes = atoi(optarg);
			break;
		case 'N':
			max_requests = atol(optarg);
			break;
		case 'g':
			get_path = optarg;
			break;
		case 'H':
			get_header = optarg;
			break;
		case 'u':
			senders = atoi(optarg) > 0 ? atoi(optarg) : 1;
			break;
		default:
			fprintf(stderr, "usage: loadgen -p PORT[,PORT...] -c CHANNEL -s SECRET [-n CONNS] [-r RATE] "
			                "[-d SECONDS] "
			                "[-b BYTES] [-u SENDERS]\n       loadgen -p PORT -g PATH [-H 'Name: value'] "
			                "[-n CONNS] [-r RATE] "
			                "[-d SECONDS]\n");
			return 2;
		}
	}
	snprintf(run_tag, sizeof(run_tag), "b%lld", (long long)(now_ns() / 1000));
	int ep = epoll_create1(0);
	struct conn *cs = calloc((size_t)nconns, sizeof(*cs));
	for (int i = 0; i < nconns; i++) {
		cs[i].fd = connect_to(ports[i % nports]);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = &cs[i]};
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	size_t lat_cap = 1 << 20, nlat = 0;
	int64_t *lat = malloc(lat_cap * sizeof(int64_t));
	long ok = 0, bad = 0, sent = 0;
	int64_t t0 = now_ns(), end = t0 + (int64_t)duration * 1000000000;
	int64_t interval = rate > 0 ? 1000000000 / rate : 0;
	int64_t next_due = t0;
	/* Requests due but with no idle connection wait here (open loop). */
	int64_t *backlog = malloc(sizeof(int64_t) * 1000000);
	size_t bl_head = 0, bl_len = 0;
	struct epoll_event evs[256];
	while ((now_ns() < end && !(max_requests && ok + bad >= max_requests)) || sent > ok + bad) {
		int64_t now = now_ns();
		if (now >= end + 10000000000LL)
			break;
		if (now < end && !(max_requests && sent >= max_requests)) {
			if (rate > 0) {
				while (next_due <= now && bl_len < 1000000) {
					backlog[(bl_head + bl_len++) % 1000000] = next_due;
					next_due += interval;
				}
			}
			for (int i = 0; i < nconns; i++) {
				struct conn *c = &cs[i];
				if (c->busy)
					continue;
				if (max_requests && sent >= max_requests)
					break;
				if (rate > 0) {
					if (bl_len == 0)
						break;
					c->t_sched = backlog[bl_head];
					bl_head = (bl_head + 1) % 1000000;
					bl_len--;
				} else {
					c->t_sched = now_ns();
				}
				build_request(c);
				c->busy = 1;
				sent++;
				ssize_t w = write(c->fd, c->out, c->out_len);
				if (w > 0)
					c->out_off = (size_t)w;
			}
		}
		int timeout = rate > 0 ? 0 : 1;
		int n = epoll_wait(ep, evs, 256, timeout);
		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			if (c->busy && c->out_off < c->out_len) {
				ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
				if (w > 0)
					c->out_off += (size_t)w;
			}
			for (;;) {
				ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len);
				if (r <= 0) {
					if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
						fprintf(stderr, "connection closed by the gateway\n");
						return 1;
					}
					break;
				}
				c->in_len += (size_t)r;
				int status;
				if (c->busy && response_done(c, &status)) {
					int64_t l = now_ns() - c->t_sched;
					if (status >= 200 && status < 300) {
						ok++;
						if (nlat < lat_cap)
							lat[nlat++] = l;
					} else {
						bad++;
					}
					c->busy = 0;
					c->in_len = 0;
				}
			}
		}
		if (rate > 0 && n == 0) {
			struct timespec ts = {0, 50000};
			nanosleep(&ts, NULL);
		}
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	if (secs > duration)
		secs = duration;
	qsort(lat, nlat, sizeof(int64_t), cmp_i64);
	double p50 = nlat ? (double)lat[nlat / 2] / 1e6 : 0, p99 = nlat ? (double)lat[nlat * 99 / 100] / 1e6 : 0;
	double pmax = nlat ? (double)lat[nlat - 1] / 1e6 : 0;
	printf("target_rate=%d conns=%d duration_s=%.1f ok=%ld errors=%ld %s=%.0f p50_ms=%.2f p99_ms=%.2f "
	       "max_ms=%.2f\n",
	       rate, nconns, secs, ok, bad, get_path ? "requests_per_s" : "webhooks_per_s", (double)ok / secs, p50, p99,
	       pmax);
	for (int i = 0; i < nconns; i++)
		close(cs[i].fd);
	close(ep);
	free(cs);
	free(lat);
	free(backlog);
	return bad ? 1 : 0;
}
