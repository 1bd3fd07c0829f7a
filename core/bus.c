/* bus.c: ingest batching over nng PUSH/PULL, tickets, and the PUB socket. */
#include "bus.h"
#include "envelope.h"
#include "events.h"
#include "gateway.h"
#include "log.h"
#include "relay.h"
#include "util.h"

#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/pubsub0/pub.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define INGEST_URL "inproc://parley-ingest"

struct bus_ticket {
	atomic_int remaining; /* envelopes not yet done */
	atomic_int result;    /* the first error, or 0 */
	atomic_int fired;     /* done() called */
	atomic_int refs;      /* pipeline side + in-flight list */
	parley_submit_cb done;
	parley_submit_ids_cb ids_done;
	void *arg;
	char (*ids)[32]; /* with ids_done: the stored id of each envelope */
	size_t n;
	int64_t deadline;
	int linked;
	struct bus_ticket *prev, *next;
	parley_instance *owner; /* the channel that submitted, or NULL: its inflight counts the ticket */
};

struct bus {
	struct gateway *gw;
	nng_socket push, pull, pub;
	nng_aio *send_aio;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	struct strbuf pending; /* encoded items waiting for the next send */
	int sending;
	int closed;
	struct bus_ticket inflight; /* list head, ordered by deadline */
	size_t n_inflight;
	pthread_t reaper;
	int reaper_started;
	int stop_reaper;
	pthread_cond_t reaper_cv;
};

static void ticket_unref(struct bus_ticket *t)
{
	if (atomic_fetch_sub(&t->refs, 1) == 1) {
		free(t->ids);
		free(t);
	}
}

/* The submitter's completion, with the stored ids when it asked for them. */
static void ticket_call(struct bus_ticket *t, int result)
{
	if (!t->ids_done) {
		t->done(t->arg, result);
		return;
	}
	if (result != 0) {
		t->ids_done(t->arg, result, NULL, t->n);
		return;
	}
	const char *small[16] = {NULL};
	const char **ids = t->n <= 16 ? small : malloc(t->n * sizeof(*ids));
	if (!ids) {
		t->ids_done(t->arg, PARLEY_ENOMEM, NULL, t->n);
		return;
	}
	for (size_t i = 0; i < t->n; i++)
		ids[i] = t->ids[i];
	t->ids_done(t->arg, 0, ids, t->n);
	if (ids != small)
		free(ids);
}

static void unlink_locked(struct bus *b, struct bus_ticket *t)
{
	if (!t->linked)
		return;
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->linked = 0;
	b->n_inflight--;
	if (b->n_inflight == 0)
		pthread_cond_broadcast(&b->idle);
}

/* Call done once; drop the list's reference. */
static void ticket_fire(struct bus *b, struct bus_ticket *t, int result)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&t->fired, &expected, 1)) {
		ticket_call(t, result);
		if (t->owner)
			atomic_fetch_sub(&t->owner->inflight, 1);
	}
	pthread_mutex_lock(&b->lock);
	int was_linked = t->linked;
	unlink_locked(b, t);
	pthread_mutex_unlock(&b->lock);
	if (was_linked)
		ticket_unref(t);
}

void bus_ticket_done(struct bus *b, struct bus_ticket *t, uint32_t index, int result, const char *id)
{
	if (result == PARLEY_EDUPLICATE)
		result = 0;
	if (t->ids && index < t->n && id)
		snprintf(t->ids[index], sizeof(t->ids[index]), "%s", id);
	if (result < 0) {
		int expected = 0;
		atomic_compare_exchange_strong(&t->result, &expected, result);
	}
	if (atomic_fetch_sub(&t->remaining, 1) == 1) {
		ticket_fire(b, t, atomic_load(&t->result));
		ticket_unref(t);
	}
}

static void fail_msg(struct bus *b, nng_msg *msg, int result)
{
	struct bus_item *items = NULL;
	size_t n = 0, cap = 0;
	bus_decode(msg, &items, &n, &cap);
	for (size_t i = 0; i < n; i++)
		bus_ticket_done(b, items[i].ticket, items[i].index, result, NULL);
	free(items);
	nng_msg_free(msg);
}

/* Called with b->lock held and pending non-empty. */
static void start_send_locked(struct bus *b)
{
	nng_msg *msg;
	if (nng_msg_alloc(&msg, b->pending.len) != 0) {
		log_error("bus: out of memory for an ingest message of %zu bytes", b->pending.len);
		return;
	}
	memcpy(nng_msg_body(msg), b->pending.buf, b->pending.len);
	b->pending.len = 0;
	b->sending = 1;
	nng_aio_set_msg(b->send_aio, msg);
	nng_send_aio(b->push, b->send_aio);
}

static void send_done(void *arg)
{
	struct bus *b = arg;
	int rv = nng_aio_result(b->send_aio);
	if (rv != 0) {
		nng_msg *msg = nng_aio_get_msg(b->send_aio);
		nng_aio_set_msg(b->send_aio, NULL);
		if (msg)
			fail_msg(b, msg, PARLEY_ECLOSED);
	}
	pthread_mutex_lock(&b->lock);
	b->sending = 0;
	if (b->pending.len > 0 && !b->closed && rv == 0)
		start_send_locked(b);
	if (!b->sending)
		pthread_cond_broadcast(&b->idle);
	pthread_mutex_unlock(&b->lock);
}

int bus_submit(struct bus *b, parley_envelope **envs, size_t n, parley_submit_cb done, parley_submit_ids_cb ids_done,
               void *arg)
{
	return bus_submit_from(b, NULL, envs, n, done, ids_done, arg);
}

int bus_submit_from(struct bus *b, parley_instance *owner, parley_envelope **envs, size_t n, parley_submit_cb done,
                    parley_submit_ids_cb ids_done, void *arg)
{
	/*
	 * The caller's array may be freed by its own completion, which can run
	 * on the pipeline before this function returns: keep the pointers.
	 */
	parley_envelope *small[16];
	parley_envelope **own = n <= 16 ? small : malloc(n * sizeof(*own));
	struct bus_ticket *t = calloc(1, sizeof(*t));
	struct strbuf enc;
	sb_init(&enc);
	int rv = PARLEY_ENOMEM;
	if (!t || !own || n > UINT32_MAX)
		goto out;
	if (ids_done && !(t->ids = calloc(n, sizeof(*t->ids))))
		goto out;
	memcpy(own, envs, n * sizeof(*own));
	/* Serialize outside the lock: concurrent submitters only contend for the copy. */
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *json = envelope_text(own[i], &len);
		uint64_t tp = (uint64_t)(uintptr_t)t;
		uint32_t idx = (uint32_t)i, len32 = (uint32_t)len;
		if (!json || len > UINT32_MAX || sb_add(&enc, &tp, sizeof(tp)) || sb_add(&enc, &idx, sizeof(idx)) ||
		    sb_add(&enc, &len32, sizeof(len32)) || sb_add(&enc, json, len))
			goto out;
	}
	atomic_init(&t->remaining, (int)n);
	atomic_init(&t->refs, 2);
	t->done = done;
	t->ids_done = ids_done;
	t->arg = arg;
	t->n = n;
	t->deadline = time_mono_ms() + b->gw->cfg.http_request_timeout_ms;

	pthread_mutex_lock(&b->lock);
	if (b->closed || sb_add(&b->pending, enc.buf, enc.len) != 0) {
		rv = b->closed ? PARLEY_ECLOSED : PARLEY_ENOMEM;
		pthread_mutex_unlock(&b->lock);
		goto out;
	}
	t->linked = 1;
	t->owner = owner;
	if (owner)
		atomic_fetch_add(&owner->inflight, 1);
	t->prev = b->inflight.prev;
	t->next = &b->inflight;
	b->inflight.prev->next = t;
	b->inflight.prev = t;
	b->n_inflight++;
	if (!b->sending)
		start_send_locked(b);
	pthread_mutex_unlock(&b->lock);
	t = NULL; /* the bus owns it now */
	for (size_t i = 0; i < n; i++)
		envelope_destroy(own[i]);
	rv = 0;
out:
	/* On failure the caller still owns its envelopes. */
	if (t)
		free(t->ids);
	free(t);
	sb_free(&enc);
	if (own != small)
		free(own);
	return rv;
}

int bus_decode(nng_msg *msg, struct bus_item **items, size_t *n, size_t *cap)
{
	const char *p = nng_msg_body(msg);
	size_t left = nng_msg_len(msg);
	int count = 0;
	while (left >= 16) {
		uint64_t tp;
		uint32_t idx, len;
		memcpy(&tp, p, 8);
		memcpy(&idx, p + 8, 4);
		memcpy(&len, p + 12, 4);
		if (left - 16 < len)
			return -1;
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 256;
			struct bus_item *ni = realloc(*items, nc * sizeof(*ni));
			if (!ni)
				return -1;
			*items = ni;
			*cap = nc;
		}
		(*items)[*n].ticket = (struct bus_ticket *)(uintptr_t)tp;
		(*items)[*n].index = idx;
		(*items)[*n].json = p + 16;
		(*items)[*n].len = len;
		(*n)++;
		count++;
		p += 16 + len;
		left -= 16 + len;
	}
	return count;
}

int bus_recv(struct bus *b, nng_msg **msg, int nonblock)
{
	return nng_recvmsg(b->pull, msg, nonblock ? NNG_FLAG_NONBLOCK : 0);
}

static void pub_send(struct bus *b, const char *topic, const char *json, size_t len)
{
	nng_msg *msg;
	size_t tl = strlen(topic);
	if (nng_msg_alloc(&msg, tl + 1 + len) != 0)
		return;
	char *body = nng_msg_body(msg);
	memcpy(body, topic, tl);
	body[tl] = ' ';
	memcpy(body + tl + 1, json, len);
	if (nng_sendmsg(b->pub, msg, NNG_FLAG_NONBLOCK) != 0)
		nng_msg_free(msg);
}

void bus_publish(struct bus *b, const char *topic, const char *json, size_t len)
{
	pub_send(b, topic, json, len);
	relay_event(b->gw->relay, topic, json, len);
	events_wake(b->gw->events);
}

void bus_publish_stored(struct bus *b, const char *topic, const char *json, size_t len)
{
	pub_send(b, topic, json, len);
	relay_notify(b->gw->relay);
	events_wake(b->gw->events);
}

/* Completes tickets whose request timeout has passed. */
static void *reaper_main(void *arg)
{
	struct bus *b = arg;
	pthread_mutex_lock(&b->lock);
	while (!b->stop_reaper) {
		int64_t now = time_mono_ms();
		while (b->inflight.next != &b->inflight && b->inflight.next->deadline <= now) {
			struct bus_ticket *t = b->inflight.next;
			unlink_locked(b, t);
			pthread_mutex_unlock(&b->lock);
			int expected = 0;
			if (atomic_compare_exchange_strong(&t->fired, &expected, 1)) {
				log_warn("a submission was not committed within http.request_timeout: answering 503 so "
				         "the provider retries");
				ticket_call(t, PARLEY_ETIMEDOUT);
			}
			ticket_unref(t);
			pthread_mutex_lock(&b->lock);
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&b->reaper_cv, &b->lock, &ts);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

int bus_listen_private(nng_socket s, const char *url)
{
	nng_listener l;
	int rv = nng_listener_create(&l, s, url);
	if (rv != 0)
		return rv;
	if (strncasecmp(url, "ipc://", 6) == 0 && (rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600)) != 0) {
		nng_listener_close(l);
		return rv;
	}
	if ((rv = nng_listener_start(l, 0)) != 0)
		nng_listener_close(l);
	return rv;
}

static int listen_err(const char *what, const char *url, int rv, char **errmsg)
{
	*errmsg = str_printf("cannot listen on %s %s: %s (is another gateway running with the same config?)", what, url,
	                     nng_strerror(rv));
	return PARLEY_EIO;
}

int bus_open(struct bus **out, struct gateway *gw, char **errmsg)
{
	struct bus *b = calloc(1, sizeof(*b));
	int rv;
	if (!b)
		return PARLEY_ENOMEM;
	b->gw = gw;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->idle, NULL);
	pthread_cond_init(&b->reaper_cv, NULL);
	b->inflight.next = b->inflight.prev = &b->inflight;
	sb_init(&b->pending);
	if ((rv = nng_push0_open(&b->push)) != 0 || (rv = nng_pull0_open(&b->pull)) != 0 ||
	    (rv = nng_pub0_open(&b->pub)) != 0 || (rv = nng_aio_alloc(&b->send_aio, send_done, b)) != 0) {
		*errmsg = str_printf("cannot open the bus sockets: %s", nng_strerror(rv));
		bus_free(b);
		return PARLEY_EIO;
	}
	nng_socket_set_int(b->pull, NNG_OPT_RECVBUF, 64);
	nng_socket_set_int(b->pub, NNG_OPT_SENDBUF, gw->cfg.publish_buffer);
	if ((rv = nng_listen(b->pull, INGEST_URL, NULL, 0)) != 0 ||
	    (rv = nng_dial(b->push, INGEST_URL, NULL, 0)) != 0) {
		*errmsg = str_printf("cannot connect the ingest sockets: %s", nng_strerror(rv));
		bus_free(b);
		return PARLEY_EIO;
	}
	if ((rv = bus_listen_private(b->pub, gw->cfg.publish_listen)) != 0) {
		listen_err("publish.listen", gw->cfg.publish_listen, rv, errmsg);
		bus_free(b);
		return PARLEY_EIO;
	}
	if (thread_start(&b->reaper, reaper_main, b, "parley:reaper") != 0) {
		*errmsg = str_printf("cannot start the bus timeout thread");
		bus_free(b);
		return PARLEY_EIO;
	}
	b->reaper_started = 1;
	*out = b;
	return 0;
}

int bus_wait_idle(struct bus *b, int64_t timeout_ms)
{
	int64_t end = time_now_ms() + timeout_ms;
	pthread_mutex_lock(&b->lock);
	while (b->n_inflight > 0 || b->sending || b->pending.len > 0) {
		int64_t left = end - time_now_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + (left > 100 ? 100 : left) * 1000000L;
		ts.tv_sec += ns / 1000000000L;
		ts.tv_nsec = ns % 1000000000L;
		pthread_cond_timedwait(&b->idle, &b->lock, &ts);
	}
	int idle = b->n_inflight == 0 && !b->sending && b->pending.len == 0;
	pthread_mutex_unlock(&b->lock);
	return idle ? 0 : -1;
}

size_t bus_inflight(struct bus *b)
{
	pthread_mutex_lock(&b->lock);
	size_t n = b->n_inflight;
	pthread_mutex_unlock(&b->lock);
	return n;
}

void bus_close(struct bus *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->closed = 1;
	b->stop_reaper = 1;
	pthread_cond_broadcast(&b->reaper_cv);
	pthread_mutex_unlock(&b->lock);
	if (b->reaper_started) {
		pthread_join(b->reaper, NULL);
		b->reaper_started = 0;
	}
	if (b->send_aio)
		nng_aio_stop(b->send_aio);
	nng_close(b->push);
	nng_close(b->pull);
	nng_close(b->pub);
	/* Anything still listed never reached the store: the provider retries. */
	pthread_mutex_lock(&b->lock);
	while (b->inflight.next != &b->inflight) {
		struct bus_ticket *t = b->inflight.next;
		unlink_locked(b, t);
		pthread_mutex_unlock(&b->lock);
		int expected = 0;
		if (atomic_compare_exchange_strong(&t->fired, &expected, 1))
			ticket_call(t, PARLEY_ECLOSED);
		ticket_unref(t);
		pthread_mutex_lock(&b->lock);
	}
	pthread_mutex_unlock(&b->lock);
}

void bus_free(struct bus *b)
{
	if (!b)
		return;
	if (b->send_aio)
		nng_aio_free(b->send_aio);
	sb_free(&b->pending);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->idle);
	pthread_cond_destroy(&b->reaper_cv);
	free(b);
}
