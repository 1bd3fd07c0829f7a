/*
 * http_conns.c: connection caps and deadlines for the HTTP server.
 *
 * libmicrohttpd's own connection timeout is idle time, which a client that
 * sends one byte a second never reaches, and its connection limit is split
 * between its threads.  So the server keeps one table here: a socket gets a
 * slot when it is accepted (refused when a cap is reached), a deadline while
 * it waits for a request head or body, none while a handler works.  A
 * watchdog thread shuts down the sockets whose deadline has passed; the
 * server sees the end of the stream and closes them itself.
 *
 * When every slot is taken, a new client does not simply lose to the ones
 * already there: the connection that has waited longest for a request head
 * (a slowloris, or an idle keep-alive) is shut down to make room.  Sockets
 * shut but not yet closed by the server still hold a descriptor, so only
 * FD_RESERVE / 2 of them may be outstanding at once.
 */
#include "http_conns.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <netinet/in.h>
#include <parley/parley.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* File descriptors kept free for everything else the gateway opens. */
#define FD_RESERVE 128
/* An admitted socket the server never attached is forgotten after this long. */
#define PENDING_MS 5000

/* One client address and port. */
struct ip_key {
	int family;
	unsigned char addr[16];
	unsigned short port;
};

struct http_conn {
	struct http_conn *prev, *next;
	struct ip_key ip;
	int fd; /* -1 while reserved: accepted, not yet attached */
	int64_t since_ms;
	int shut;                        /* shut down by the watchdog or to make room */
	atomic_uint_fast64_t wait_seq;   /* when it began to wait for what it waits for, in the table's order */
	atomic_int_fast64_t deadline_ms; /* 0: none */
	atomic_int waiting;              /* enum http_conn_wait */
};

struct http_conns {
	struct http_conns_limits lim;
	struct metrics *metrics;
	pthread_mutex_t lock; /* the list, n, stop */
	struct http_conn *list;
	size_t n;
	size_t n_shut;            /* entries shut down, still open in the server */
	atomic_uint_fast64_t seq; /* orders the waits (many start within one millisecond) */
	pthread_t watchdog;
	pthread_cond_t wake;
	int stop;
};

static void ip_key_from(struct ip_key *k, const struct sockaddr *sa)
{
	memset(k, 0, sizeof(*k));
	if (!sa)
		return;
	k->family = sa->sa_family;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		memcpy(k->addr, &in->sin_addr, 4);
		k->port = in->sin_port;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		memcpy(k->addr, &in6->sin6_addr, 16);
		k->port = in6->sin6_port;
	}
}

static int same_ip(const struct ip_key *a, const struct ip_key *b)
{
	return a->family == b->family && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static void unlink_conn(struct http_conns *t, struct http_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		t->list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	t->n--;
}

static int64_t timeout_for(const struct http_conns *t, enum http_conn_wait what)
{
	return what == HTTP_CONN_HEAD ? t->lim.header_timeout_ms : what == HTTP_CONN_BODY ? t->lim.body_timeout_ms : 0;
}

void http_conn_wait(struct http_conns *t, struct http_conn *c, enum http_conn_wait what)
{
	if (!c)
		return;
	int64_t ms = timeout_for(t, what);
	int64_t now = time_mono_ms();
	atomic_store(&c->waiting, (int)what);
	atomic_store(&c->wait_seq, atomic_fetch_add(&t->seq, 1));
	atomic_store(&c->deadline_ms, ms > 0 ? now + ms : 0);
}

/* Shut c down (the server then closes it); called with t->lock held. */
static void shut_locked(struct http_conns *t, struct http_conn *c, const char *reason)
{
	shutdown(c->fd, SHUT_RDWR);
	c->shut = 1;
	t->n_shut++;
	metrics_add(t->metrics, "http_refused_total", "reason", reason, 1);
}

/* The connection that has waited longest for a request head, to make room; NULL when none may go. */
static struct http_conn *room_locked(struct http_conns *t)
{
	if (t->n_shut >= FD_RESERVE / 2)
		return NULL;
	struct http_conn *victim = NULL;
	for (struct http_conn *o = t->list; o; o = o->next)
		if (o->fd >= 0 && !o->shut && atomic_load(&o->waiting) == HTTP_CONN_HEAD &&
		    (!victim || atomic_load(&o->wait_seq) < atomic_load(&victim->wait_seq)))
			victim = o;
	return victim;
}

int http_conns_admit(struct http_conns *t, const struct sockaddr *addr)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	ip_key_from(&c->ip, addr);
	c->fd = -1;
	c->since_ms = time_mono_ms();
	pthread_mutex_lock(&t->lock);
	size_t same = 0;
	for (struct http_conn *o = t->list; o; o = o->next)
		same += same_ip(&o->ip, &c->ip);
	int refuse = same >= (size_t)t->lim.max_per_ip;
	if (!refuse && t->n - t->n_shut >= (size_t)t->lim.max_connections) {
		struct http_conn *victim = room_locked(t);
		if (victim)
			shut_locked(t, victim, "evicted_idle");
		else
			refuse = 1;
	}
	if (!refuse) {
		c->next = t->list;
		if (t->list)
			t->list->prev = c;
		t->list = c;
		t->n++;
	}
	pthread_mutex_unlock(&t->lock);
	if (refuse) {
		free(c);
		metrics_add(t->metrics, "http_refused_total", "reason", "too_many_connections", 1);
		return -1;
	}
	return 0;
}

struct http_conn *http_conns_attach(struct http_conns *t, const struct sockaddr *addr, int fd)
{
	struct ip_key k;
	ip_key_from(&k, addr);
	pthread_mutex_lock(&t->lock);
	struct http_conn *c = t->list;
	while (c && !(c->fd < 0 && same_ip(&c->ip, &k) && c->ip.port == k.port))
		c = c->next;
	if (c) {
		c->fd = fd;
		http_conn_wait(t, c, HTTP_CONN_HEAD);
	}
	pthread_mutex_unlock(&t->lock);
	return c;
}

void http_conns_detach(struct http_conns *t, struct http_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&t->lock);
	if (c->shut)
		t->n_shut--;
	unlink_conn(t, c);
	pthread_mutex_unlock(&t->lock);
	free(c);
}

static void *watchdog_main(void *arg)
{
	struct http_conns *t = arg;
	int64_t shortest = 0;
	for (int w = HTTP_CONN_HEAD; w <= HTTP_CONN_BODY; w++) {
		int64_t ms = timeout_for(t, (enum http_conn_wait)w);
		if (ms > 0 && (shortest == 0 || ms < shortest))
			shortest = ms;
	}
	/* A fifth of the shortest deadline: closes land within 20% of it, at little cost. */
	int64_t tick = shortest ? shortest / 5 : 1000;
	tick = tick < 10 ? 10 : tick > 200 ? 200 : tick;
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		int64_t now = time_mono_ms();
		struct http_conn *c = t->list;
		while (c) {
			struct http_conn *next = c->next;
			int64_t dl = atomic_load(&c->deadline_ms);
			if (c->fd < 0 && now - c->since_ms > PENDING_MS) {
				unlink_conn(t, c);
				free(c);
			} else if (c->fd >= 0 && dl && now >= dl && !c->shut) {
				/* Read first: once the stream ends, the server's thread may move the connection on. */
				int head = atomic_load(&c->waiting) == HTTP_CONN_HEAD;
				shut_locked(t, c, head ? "header_timeout" : "body_timeout");
			}
			c = next;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(tick % 1000) * 1000000L;
		ts.tv_sec += tick / 1000 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&t->wake, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* Room for the connection cap within the open-file limit, raising the soft limit if needed. */
static void fit_fd_limit(struct http_conns_limits *lim)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rlim_t need = (rlim_t)lim->max_connections + FD_RESERVE;
	if (rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < need) {
		int64_t fit = rl.rlim_cur > FD_RESERVE * 2 ? (int64_t)(rl.rlim_cur - FD_RESERVE) : FD_RESERVE;
		log_warn(
		        "http.max_connections %lld does not fit the open-file limit %llu: using %lld (raise ulimit -n)",
		        (long long)lim->max_connections, (unsigned long long)rl.rlim_cur, (long long)fit);
		lim->max_connections = fit;
	}
}

int http_conns_open(struct http_conns **out, const struct http_conns_limits *limits, struct metrics *metrics)
{
	struct http_conns *t = calloc(1, sizeof(*t));
	if (!t)
		return PARLEY_ENOMEM;
	t->lim = *limits;
	t->metrics = metrics;
	fit_fd_limit(&t->lim);
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->wake, NULL);
	if (thread_start(&t->watchdog, watchdog_main, t, "parley:watchdog") != 0) {
		pthread_cond_destroy(&t->wake);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return PARLEY_EIO;
	}
	*out = t;
	return 0;
}

const struct http_conns_limits *http_conns_limits(const struct http_conns *t)
{
	return &t->lim;
}

void http_conns_close(struct http_conns *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = 1;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->watchdog, NULL);
	while (t->list) {
		struct http_conn *c = t->list;
		unlink_conn(t, c);
		free(c);
	}
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
