/*
 * isolate_rpc.c: calls and notes over one nng pair1 socket (see
 * isolate_rpc.h).  The receive thread never runs a handler: a handler may
 * call the peer back, and the answer to that call arrives on this thread.
 */
#include "isolate_rpc.h"
#include "util.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/transport/ipc/ipc.h>
#include <parley/parley.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORKERS 4

struct waiter {
	uint32_t id;
	int done;
	pthread_cond_t cond; /* its own, so a reply wakes its caller only */
	nng_msg *msg;        /* the reply */
	struct waiter *next;
};

struct job {
	nng_msg *msg;
	struct job *next;
};

/* A queue of incoming calls and notes with its threads. */
struct lane {
	struct job *head, *tail;
	pthread_cond_t work; /* a job came, or the rpc stops */
	pthread_t *threads;
	size_t n_threads;
};

struct iso_rpc {
	nng_socket sock;
	iso_rpc_handler handler;
	void *arg;
	atomic_int refs;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;  /* the peer came or went */
	struct waiter *waiting;
	uint32_t next_id;
	int peer, closed, stopping, shut;
	/*
	 * The gateway's end never waits to send a note: its HTTP and pipeline
	 * threads send them, and a child that stopped reading must not hold
	 * them (the note fails; a webhook is then answered 503).
	 */
	int gateway_end;
	struct lane pool, serial;
	pthread_t rx;
	int rx_started;
};

const char *iso_str(const cJSON *hdr, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(hdr, key));
	return s ? s : "";
}

int64_t iso_num(const cJSON *hdr, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(hdr, key);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static nng_msg *msg_make(const char *kind, uint32_t id, const char *op, cJSON *hdr, const void *body, size_t len)
{
	if (!hdr)
		hdr = cJSON_CreateObject();
	cJSON_AddStringToObject(hdr, "_k", kind);
	cJSON_AddNumberToObject(hdr, "_id", id);
	if (op)
		cJSON_AddStringToObject(hdr, "_op", op);
	char *h = cJSON_PrintUnformatted(hdr);
	cJSON_Delete(hdr);
	nng_msg *m = NULL;
	size_t hl = h ? strlen(h) + 1 : 0;
	if (h && nng_msg_alloc(&m, hl + len) == 0) {
		memcpy(nng_msg_body(m), h, hl);
		if (len)
			memcpy((char *)nng_msg_body(m) + hl, body, len);
	}
	free(h);
	return m;
}

/* The header of m, parsed, and where its bytes start. */
static cJSON *msg_parse(nng_msg *m, const void **body, size_t *len)
{
	const char *p = nng_msg_body(m);
	size_t n = nng_msg_len(m);
	const char *nul = memchr(p, '\0', n);
	if (!nul)
		return NULL;
	*body = nul + 1;
	*len = n - (size_t)(nul + 1 - p);
	return cJSON_ParseWithLength(p, (size_t)(nul - p));
}

static int send_msg(struct iso_rpc *r, nng_msg *m, int flags)
{
	if (!m)
		return PARLEY_ENOMEM;
	if (iso_rpc_closed(r) || nng_sendmsg(r->sock, m, flags) != 0) {
		nng_msg_free(m);
		return PARLEY_ECLOSED;
	}
	return 0;
}

static void run_job(struct iso_rpc *r, nng_msg *m)
{
	const void *body;
	size_t len;
	cJSON *hdr = msg_parse(m, &body, &len);
	if (hdr) {
		int is_call = strcmp(iso_str(hdr, "_k"), "call") == 0;
		cJSON *reply = NULL;
		void *rbody = NULL;
		size_t rlen = 0;
		r->handler(r->arg, r, iso_str(hdr, "_op"), hdr, body, len, is_call ? &reply : NULL, &rbody, &rlen);
		if (is_call)
			send_msg(r, msg_make("reply", (uint32_t)iso_num(hdr, "_id"), NULL, reply, rbody, rlen), 0);
		else
			cJSON_Delete(reply);
		free(rbody);
		cJSON_Delete(hdr);
	}
	nng_msg_free(m);
}

struct lane_arg {
	struct iso_rpc *r;
	struct lane *lane;
};

static void *lane_main(void *p)
{
	struct lane_arg a = *(struct lane_arg *)p;
	free(p);
	struct iso_rpc *r = a.r;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!a.lane->head && !r->stopping)
			pthread_cond_wait(&a.lane->work, &r->lock);
		if (r->stopping)
			break;
		struct job *j = a.lane->head;
		a.lane->head = j->next;
		if (!a.lane->head)
			a.lane->tail = NULL;
		pthread_mutex_unlock(&r->lock);
		run_job(r, j->msg);
		free(j);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void enqueue(struct lane *lane, nng_msg *m)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j) {
		nng_msg_free(m);
		return;
	}
	j->msg = m;
	if (lane->tail)
		lane->tail->next = j;
	else
		lane->head = j;
	lane->tail = j;
	pthread_cond_signal(&lane->work);
}

/* The peer is gone or the rpc shuts down (under lock): every caller and worker looks again. */
static void wake_all_locked(struct iso_rpc *r)
{
	r->closed = 1;
	pthread_cond_broadcast(&r->cond);
	for (struct waiter *w = r->waiting; w; w = w->next)
		pthread_cond_signal(&w->cond);
	pthread_cond_broadcast(&r->pool.work);
	pthread_cond_broadcast(&r->serial.work);
}

static void *rx_main(void *p)
{
	struct iso_rpc *r = p;
	for (;;) {
		nng_msg *m;
		if (nng_recvmsg(r->sock, &m, 0) != 0)
			break;
		const void *body;
		size_t len;
		cJSON *hdr = msg_parse(m, &body, &len);
		if (!hdr) {
			nng_msg_free(m);
			continue;
		}
		const char *k = iso_str(hdr, "_k");
		uint32_t id = (uint32_t)iso_num(hdr, "_id");
		int serial = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hdr, "_serial"));
		pthread_mutex_lock(&r->lock);
		if (strcmp(k, "reply") == 0) {
			struct waiter *w = r->waiting;
			while (w && w->id != id)
				w = w->next;
			if (w && !w->done) {
				w->msg = m;
				w->done = 1;
				m = NULL;
				pthread_cond_signal(&w->cond);
			}
		} else {
			enqueue(serial ? &r->serial : &r->pool, m);
			m = NULL;
		}
		pthread_mutex_unlock(&r->lock);
		cJSON_Delete(hdr);
		if (m)
			nng_msg_free(m);
	}
	pthread_mutex_lock(&r->lock);
	wake_all_locked(r);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* The peer came or went (nng's pipe events; a pair has one peer). */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	struct iso_rpc *r = arg;
	pthread_mutex_lock(&r->lock);
	if (ev == NNG_PIPE_EV_ADD_POST)
		r->peer = 1;
	if (ev == NNG_PIPE_EV_REM_POST && r->peer)
		wake_all_locked(r); /* the peer is gone: calls waiting for it fail now */
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static int start_lane(struct iso_rpc *r, struct lane *lane, size_t n)
{
	lane->threads = calloc(n, sizeof(pthread_t));
	if (!lane->threads)
		return PARLEY_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct lane_arg *a = malloc(sizeof(*a));
		if (a) {
			a->r = r;
			a->lane = lane;
		}
		if (!a || thread_start(&lane->threads[i], lane_main, a, "parley:rpc") != 0) {
			free(a);
			return PARLEY_ENOMEM;
		}
		lane->n_threads++;
	}
	return 0;
}

static int rpc_open(struct iso_rpc **out, const char *url, int listen, iso_rpc_handler h, void *arg)
{
	struct iso_rpc *r = calloc(1, sizeof(*r));
	if (!r)
		return PARLEY_ENOMEM;
	r->handler = h;
	r->arg = arg;
	r->gateway_end = listen;
	atomic_init(&r->refs, 1);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	pthread_cond_init(&r->pool.work, NULL);
	pthread_cond_init(&r->serial.work, NULL);
	if (nng_pair1_open(&r->sock) != 0) {
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
		pthread_cond_destroy(&r->pool.work);
		pthread_cond_destroy(&r->serial.work);
		free(r);
		return PARLEY_EIO;
	}
	nng_socket_set_int(r->sock, NNG_OPT_SENDBUF, 1024);
	nng_socket_set_int(r->sock, NNG_OPT_RECVBUF, 1024);
	nng_socket_set_ms(r->sock, NNG_OPT_SENDTIMEO, 5000);
	nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, 0); /* bodies are limited by the HTTP listener */
	nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_POST, on_pipe, r);
	nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, on_pipe, r);
	int rv;
	if (listen) {
		nng_listener l;
		rv = nng_listener_create(&l, r->sock, url);
		if (rv == 0)
			nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600);
		if (rv == 0)
			rv = nng_listener_start(l, 0);
	} else {
		rv = nng_dial(r->sock, url, NULL, 0);
	}
	/*
	 * *out is set before the threads start: the first call can arrive at once and its handler reaches the
	 * peer through *out (the child's "start" registers routes over it: a NULL there was a SIGSEGV of the
	 * child under load).
	 */
	*out = r;
	if (rv == 0 && (start_lane(r, &r->pool, WORKERS) != 0 || start_lane(r, &r->serial, 1) != 0))
		rv = NNG_ENOMEM;
	if (rv == 0 && thread_start(&r->rx, rx_main, r, "parley:rpc-rx") == 0)
		r->rx_started = 1;
	else if (rv == 0)
		rv = NNG_ENOMEM;
	if (rv != 0) {
		*out = NULL;
		iso_rpc_release(r);
		return PARLEY_EIO;
	}
	return 0;
}

int iso_rpc_listen(struct iso_rpc **out, const char *url, iso_rpc_handler h, void *arg)
{
	return rpc_open(out, url, 1, h, arg);
}

int iso_rpc_dial(struct iso_rpc **out, const char *url, iso_rpc_handler h, void *arg)
{
	return rpc_open(out, url, 0, h, arg);
}

void iso_deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int iso_rpc_wait_peer(struct iso_rpc *r, int64_t timeout_ms)
{
	struct timespec ts;
	iso_deadline(&ts, timeout_ms);
	int rv = 0;
	pthread_mutex_lock(&r->lock);
	while (!r->peer && !r->closed && rv != ETIMEDOUT)
		rv = pthread_cond_timedwait(&r->cond, &r->lock, &ts);
	int out = r->closed ? PARLEY_ECLOSED : r->peer ? 0 : PARLEY_ETIMEDOUT;
	pthread_mutex_unlock(&r->lock);
	return out;
}

int iso_rpc_call(struct iso_rpc *r, const char *op, cJSON *hdr, const void *body, size_t len, int64_t timeout_ms,
                 cJSON **reply, void **rbody, size_t *rlen)
{
	*reply = NULL;
	if (rbody) {
		*rbody = NULL;
		*rlen = 0;
	}
	struct waiter w = {0};
	pthread_cond_init(&w.cond, NULL);
	pthread_mutex_lock(&r->lock);
	w.id = ++r->next_id;
	w.next = r->waiting;
	r->waiting = &w;
	pthread_mutex_unlock(&r->lock);
	int rv = send_msg(r, msg_make("call", w.id, op, hdr, body, len), 0);
	struct timespec ts;
	iso_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&r->lock);
	int wr = 0;
	while (rv == 0 && !w.done && !r->closed && wr != ETIMEDOUT)
		wr = pthread_cond_timedwait(&w.cond, &r->lock, &ts);
	for (struct waiter **pp = &r->waiting; *pp; pp = &(*pp)->next)
		if (*pp == &w) {
			*pp = w.next;
			break;
		}
	if (rv == 0 && !w.done)
		rv = r->closed ? PARLEY_ECLOSED : PARLEY_ETIMEDOUT;
	pthread_mutex_unlock(&r->lock);
	pthread_cond_destroy(&w.cond);
	if (w.msg) {
		const void *b = NULL;
		size_t n = 0;
		*reply = msg_parse(w.msg, &b, &n);
		if (*reply && rbody && n) {
			*rbody = malloc(n + 1);
			if (*rbody) {
				memcpy(*rbody, b, n);
				((char *)*rbody)[n] = '\0';
				*rlen = n;
			}
		}
		nng_msg_free(w.msg);
		if (!*reply)
			rv = PARLEY_EINTERNAL;
	}
	return rv;
}

int iso_rpc_note(struct iso_rpc *r, const char *op, cJSON *hdr, const void *body, size_t len)
{
	return send_msg(r, msg_make("note", 0, op, hdr, body, len), r->gateway_end ? NNG_FLAG_NONBLOCK : 0);
}

int iso_rpc_note_serial(struct iso_rpc *r, const char *op, cJSON *hdr, const void *body, size_t len)
{
	if (!hdr)
		hdr = cJSON_CreateObject();
	cJSON_AddTrueToObject(hdr, "_serial");
	return iso_rpc_note(r, op, hdr, body, len);
}

int iso_rpc_closed(struct iso_rpc *r)
{
	pthread_mutex_lock(&r->lock);
	int c = r->closed;
	pthread_mutex_unlock(&r->lock);
	return c;
}

static void lane_end(struct lane *lane)
{
	for (size_t i = 0; i < lane->n_threads; i++)
		pthread_join(lane->threads[i], NULL);
	free(lane->threads);
	lane->threads = NULL;
	lane->n_threads = 0;
	while (lane->head) {
		struct job *j = lane->head;
		lane->head = j->next;
		nng_msg_free(j->msg);
		free(j);
	}
	lane->tail = NULL;
}

void iso_rpc_shutdown(struct iso_rpc *r)
{
	pthread_mutex_lock(&r->lock);
	int shut = r->shut;
	r->shut = 1;
	wake_all_locked(r);
	pthread_mutex_unlock(&r->lock);
	if (shut)
		return;
	nng_close(r->sock); /* the receive thread ends */
	if (r->rx_started)
		pthread_join(r->rx, NULL);
	pthread_mutex_lock(&r->lock);
	r->stopping = 1;
	wake_all_locked(r);
	pthread_mutex_unlock(&r->lock);
	lane_end(&r->pool);
	lane_end(&r->serial);
}

void iso_rpc_hold(struct iso_rpc *r)
{
	atomic_fetch_add(&r->refs, 1);
}

void iso_rpc_release(struct iso_rpc *r)
{
	if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	iso_rpc_shutdown(r);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	pthread_cond_destroy(&r->pool.work);
	pthread_cond_destroy(&r->serial.work);
	free(r);
}
