/*
 * relay.c: committed envelopes and published events to a bus plugin, at
 * least once (see relay.h).  The store is the relay's memory: it never
 * holds an envelope itself, only the seq it has published up to, so a bus
 * outage costs a backlog in the store instead of memory, and a restart
 * resumes from the saved cursor.
 */
#include "relay.h"
#include "envelope.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH          256   /* envelopes read from the store per call */
#define EVENTS_MAX     10000 /* queued events at most; more are dropped (counted) */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define IDLE_POLL_MS   1000 /* look at the store even without a notification */
#define SAVE_EVERY_MS  200  /* save the cursor at most this often during a pass */
#define FINAL_PASS_MS  2000 /* at stop, publish what is left for at most this long */
#define CURSOR_KEY     "cursor"
#define TURN_MS        10000 /* one node relays envelopes; its turn lapses this long after its last pass */

enum { STATE_STARTING, STATE_UP, STATE_DOWN };

struct relay_ev {
	struct relay_ev *next;
	char *topic;
	char *json;
	size_t len;
	char id[32];
};

/* A row copied out of messages_since (the store's row lives only during the callback). */
struct row {
	int64_t seq;
	char *id;
	char *json;
	size_t len;
};

struct rows {
	struct row *v;
	size_t n, cap;
	int oom;
};

struct relay {
	struct gateway *gw;
	parley_instance *inst;
	const struct parley_bus_ops *ops;
	char *ns; /* "bus:<instance>" */
	pthread_t thread;
	int started;

	pthread_mutex_t lock;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	int stop;
	atomic_int wake;
	struct relay_ev *head, *tail;
	size_t n_events;

	/* Relay thread only. */
	int64_t cursor, saved, saved_at;
	int my_turn; /* this node holds the relay's lease (nodes sharing a store relay one at a time) */
	char last_error[160];

	atomic_int state;
	atomic_int_fast64_t committed;     /* relay_notify() calls */
	atomic_int_fast64_t caught_at;     /* committed as of the last time the relay caught up */
	atomic_int_fast64_t since_caught;  /* envelopes published since then */
	atomic_int_fast64_t published_env; /* envelopes published, this process */
	atomic_int_fast64_t published_ev;  /* events published, this process */
	atomic_int_fast64_t failures;
	atomic_int_fast64_t dropped;
};

int relay_store_supported(const struct parley_store_ops *ops)
{
	if (!ops || ops->struct_size < offsetof(struct parley_store_ops, typed) + sizeof(ops->typed) || !ops->typed)
		return 0;
	const struct parley_store_typed_ops *t = ops->typed;
	return t->struct_size >= offsetof(struct parley_store_typed_ops, messages_since) + sizeof(t->messages_since) &&
	       t->messages_since != NULL;
}

static void wait_until(struct relay *r, int64_t until_mono_ms)
{
	struct timespec ts = {.tv_sec = (time_t)(until_mono_ms / 1000),
	                      .tv_nsec = (long)(until_mono_ms % 1000) * 1000000L};
	pthread_cond_timedwait(&r->cv, &r->lock, &ts);
}

static void save_cursor(struct relay *r)
{
	if (r->cursor == r->saved)
		return;
	char v[32];
	int n = snprintf(v, sizeof(v), "%" PRId64, r->cursor);
	int rv = store_kv_set(r->gw->st, r->ns, CURSOR_KEY, v, (size_t)n);
	if (rv != 0) {
		/* Not fatal: the cursor stays in memory, and a restart republishes what the bus drops as duplicates. */
		log_warn("bus %s: cannot save its cursor (%s): will try again", r->inst->name, parley_strerror(rv));
		return;
	}
	r->saved = r->cursor;
	r->saved_at = time_mono_ms();
}

static int collect_row(void *arg, const void *row)
{
	struct rows *rs = arg;
	const struct parley_stored_envelope *se = row;
	if (rs->n == rs->cap) {
		size_t nc = rs->cap ? rs->cap * 2 : 64;
		struct row *nv = realloc(rs->v, nc * sizeof(*nv));
		if (!nv) {
			rs->oom = 1;
			return 1;
		}
		rs->v = nv;
		rs->cap = nc;
	}
	struct row *w = &rs->v[rs->n];
	w->seq = se->seq;
	w->id = strdup(se->id ? se->id : "");
	w->len = se->envelope ? strlen(se->envelope) : 0;
	w->json = se->envelope ? strdup(se->envelope) : NULL;
	if (!w->id || !w->json) {
		free(w->id);
		free(w->json);
		rs->oom = 1;
		return 1;
	}
	rs->n++;
	return 0;
}

static void rows_clear(struct rows *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->v[i].id);
		free(rs->v[i].json);
	}
	rs->n = 0;
	rs->oom = 0;
}

static void note_failure(struct relay *r, const char *what, int rv)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "%s failed (%s)", what, parley_strerror(rv));
	/* Log a change of reason once, not every retry. */
	if (strcmp(msg, r->last_error) != 0)
		log_warn("bus %s: %s; retrying with backoff, nothing is skipped", r->inst->name, msg);
	snprintf(r->last_error, sizeof(r->last_error), "%s", msg);
}

/* The bus will never take this one (over its message size): retrying would stop the relay for good. */
static void skipped(struct relay *r, const char *what, const char *id, size_t len)
{
	log_error("bus %s: %s %s (%zu bytes) is over the bus's message size: not published (subscribers can "
	          "fetch it with message.get)",
	          r->inst->name, what, id, len);
	metrics_add(r->gw->metrics, "bus_skipped_total", "bus", r->inst->name, 1);
}

/* Publish committed envelopes after the cursor until caught up.  0, or the error that stopped it. */
/* The cursor as the store keeps it: 0 (*cursor set, or -1 for none yet) or an error with *why. */
static int load_cursor(struct relay *r, int64_t *cursor, char **why)
{
	char *val = NULL;
	size_t len = 0;
	int rv = store_kv_get(r->gw->st, r->ns, CURSOR_KEY, &val, &len);
	*cursor = -1;
	if (rv == 0) {
		char *end;
		long long c = strtoll(val ? val : "", &end, 10);
		if (!val || end == val || *end || c < 0) {
			*why = str_printf("its cursor (state %s/%s) is '%s', not a store seq: fix or delete it with "
			                  "`parley api state.set`",
			                  r->ns, CURSOR_KEY, val ? val : "");
			rv = PARLEY_EINVAL;
		} else {
			*cursor = c;
		}
	} else if (rv == PARLEY_ENOENT) {
		rv = 0;
	} else {
		*why = str_printf("cannot read its cursor from the store: %s", parley_strerror(rv));
	}
	free(val);
	return rv;
}

/*
 * Nodes sharing a store relay its envelopes one at a time, from one cursor:
 * 1 when it is this node's turn (taking it over, it reads the cursor the
 * previous node saved), 0 when another node's, or an error.
 */
static int take_turn(struct relay *r)
{
	char *name = str_printf("%s/relay", r->ns);
	int rv = name ? store_lease(r->gw->st, name, r->gw->cfg.node_name, TURN_MS) : PARLEY_ENOMEM;
	free(name);
	if (rv == PARLEY_EBUSY) {
		r->my_turn = 0;
		return 0;
	}
	if (rv != 0)
		return rv;
	if (!r->my_turn) {
		int64_t c;
		char *why = NULL;
		if ((rv = load_cursor(r, &c, &why)) != 0) {
			log_error("bus %s: %s", r->inst->name, why);
			free(why);
			return rv;
		}
		if (c > r->cursor)
			r->cursor = r->saved = c;
		r->my_turn = 1;
	}
	return 1;
}

static int pass_envelopes(struct relay *r, struct rows *rs, int64_t deadline)
{
	int turn = take_turn(r);
	if (turn <= 0) {
		if (turn == 0) {
			/* Another node publishes what is stored: this node is caught up as far as it is concerned. */
			atomic_store(&r->caught_at, atomic_load(&r->committed));
			atomic_store(&r->since_caught, 0);
		}
		return turn;
	}
	for (;;) {
		int64_t committed = atomic_load(&r->committed);
		rows_clear(rs);
		int rv = store_messages_since(r->gw->st, r->cursor, BATCH, collect_row, rs);
		if (rs->oom)
			rv = PARLEY_ENOMEM;
		if (rv != 0) {
			note_failure(r, "reading committed envelopes from the store", rv);
			return rv;
		}
		for (size_t i = 0; i < rs->n; i++) {
			struct row *w = &rs->v[i];
			char topic[256];
			parley_envelope *env = envelope_parse(w->json, w->len);
			int ok = env && envelope_topic(env, topic, sizeof(topic)) == 0;
			envelope_destroy(env);
			if (!ok) {
				/* It would fail the same way forever: say so and go on. */
				log_error("bus %s: stored envelope %s (seq %" PRId64
				          ") is not an envelope: not published",
				          r->inst->name, w->id, w->seq);
				r->cursor = w->seq;
				continue;
			}
			rv = r->ops->publish(r->inst->data, topic, w->id, w->json, w->len);
			if (rv == PARLEY_ETOOBIG) {
				skipped(r, "envelope", w->id, w->len);
				atomic_fetch_add(&r->since_caught, 1);
				r->cursor = w->seq;
				continue;
			}
			if (rv != 0) {
				note_failure(r, "publish", rv);
				save_cursor(r);
				return rv;
			}
			r->cursor = w->seq;
			atomic_fetch_add(&r->published_env, 1);
			atomic_fetch_add(&r->since_caught, 1);
			metrics_add(r->gw->metrics, "bus_published_total", "bus", r->inst->name, 1);
			if (time_mono_ms() - r->saved_at >= SAVE_EVERY_MS)
				save_cursor(r);
		}
		size_t got = rs->n;
		if (got < BATCH) {
			/* Everything counted in `committed` was visible to that read, and is now published. */
			atomic_store(&r->caught_at, committed);
			atomic_store(&r->since_caught, 0);
			save_cursor(r);
			return 0;
		}
		if (deadline && time_mono_ms() >= deadline) {
			save_cursor(r);
			return 0;
		}
	}
}

/* Publish queued events in order.  0, or the error that stopped it (the event stays first). */
static int pass_events(struct relay *r, int64_t deadline)
{
	for (;;) {
		pthread_mutex_lock(&r->lock);
		struct relay_ev *e = r->head;
		if (e) {
			r->head = e->next;
			if (!r->head)
				r->tail = NULL;
			r->n_events--;
		}
		pthread_mutex_unlock(&r->lock);
		if (!e)
			return 0;
		int rv = r->ops->publish(r->inst->data, e->topic, e->id, e->json, e->len);
		if (rv == PARLEY_ETOOBIG)
			skipped(r, e->topic, e->id, e->len);
		if (rv != 0 && rv != PARLEY_ETOOBIG) {
			note_failure(r, "publish", rv);
			pthread_mutex_lock(&r->lock);
			e->next = r->head;
			r->head = e;
			if (!r->tail)
				r->tail = e;
			r->n_events++;
			pthread_mutex_unlock(&r->lock);
			return rv;
		}
		if (rv == 0) {
			atomic_fetch_add(&r->published_ev, 1);
			metrics_add(r->gw->metrics, "bus_published_total", "bus", r->inst->name, 1);
		}
		free(e->topic);
		free(e->json);
		free(e);
		if (deadline && time_mono_ms() >= deadline)
			return 0;
	}
}

static int pass(struct relay *r, struct rows *rs, int64_t deadline)
{
	int rv = pass_envelopes(r, rs, deadline);
	if (rv == 0)
		rv = pass_events(r, deadline);
	if (rv == 0) {
		if (atomic_exchange(&r->state, STATE_UP) == STATE_DOWN)
			log_info("bus %s: publishing again; caught up to store seq %" PRId64, r->inst->name, r->cursor);
		r->last_error[0] = '\0';
	} else {
		atomic_store(&r->state, STATE_DOWN);
		atomic_fetch_add(&r->failures, 1);
		metrics_add(r->gw->metrics, "bus_failures_total", "bus", r->inst->name, 1);
	}
	return rv;
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	struct rows rs = {0};
	int64_t backoff = 0;
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		int64_t until = time_mono_ms() + (backoff ? backoff : IDLE_POLL_MS);
		/* While backing off, notifications do not cut the wait short; only stop does. */
		while (!r->stop && (backoff || (!atomic_load(&r->wake) && !r->head)) && time_mono_ms() < until)
			wait_until(r, until);
		if (r->stop)
			break;
		atomic_store(&r->wake, 0);
		pthread_mutex_unlock(&r->lock);
		int64_t cursor = r->cursor, events = atomic_load(&r->published_ev);
		int rv = pass(r, &rs, 0);
		/* A pass that got somewhere before failing meets a flaky bus, not a dead one: retry soon. */
		int progress = r->cursor != cursor || atomic_load(&r->published_ev) != events;
		if (rv == 0)
			backoff = 0;
		else if (progress || !backoff)
			backoff = BACKOFF_MIN_MS;
		else
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	/* Every commit is in the store by now: publish what is left while the bus answers, briefly. */
	if (atomic_load(&r->state) == STATE_UP)
		pass(r, &rs, time_mono_ms() + FINAL_PASS_MS);
	save_cursor(r);
	if (r->my_turn) {
		/* Another node relays from the saved cursor now, not when the turn lapses. */
		char *name = str_printf("%s/relay", r->ns);
		if (name)
			store_lease_release(r->gw->st, name, r->gw->cfg.node_name);
		free(name);
	}
	rows_clear(&rs);
	free(rs.v);
	return NULL;
}

int relay_start(struct relay **out, struct gateway *gw, parley_instance *bus, char **errmsg)
{
	*out = NULL;
	if (!relay_store_supported(gw->store->plugin->desc->store)) {
		*errmsg = str_printf("the store '%s' cannot replay committed envelopes (no messages_since)",
		                     gw->store->name);
		return PARLEY_ENOTSUP;
	}
	struct relay *r = calloc(1, sizeof(*r));
	if (!r)
		return PARLEY_ENOMEM;
	r->gw = gw;
	r->inst = bus;
	r->ops = bus->plugin->desc->bus;
	r->ns = str_printf("bus:%s", bus->name);
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&r->wake, 1);
	atomic_init(&r->state, STATE_STARTING);

	int64_t c;
	int rv = load_cursor(r, &c, errmsg);
	if (rv != 0) {
		relay_free(r);
		return rv;
	}
	/* Without a cursor the relay starts at the first stored envelope: the stream misses nothing. */
	r->cursor = c < 0 ? 0 : c;
	r->saved = c;
	metrics_add(gw->metrics, "bus_published_total", "bus", bus->name, 0);
	metrics_add(gw->metrics, "bus_failures_total", "bus", bus->name, 0);
	metrics_add(gw->metrics, "bus_events_dropped_total", "bus", bus->name, 0);
	metrics_add(gw->metrics, "bus_skipped_total", "bus", bus->name, 0);
	if (thread_start(&r->thread, relay_main, r, "parley:relay") != 0) {
		*errmsg = str_printf("cannot start its relay thread");
		relay_free(r);
		return PARLEY_EIO;
	}
	r->started = 1;
	log_info("bus %s: relaying committed envelopes after store seq %" PRId64, bus->name, r->cursor);
	*out = r;
	return 0;
}

void relay_notify(struct relay *r)
{
	if (!r)
		return;
	atomic_fetch_add(&r->committed, 1);
	/* The lock orders this signal after the relay's check of `wake`: no notification is lost. */
	if (atomic_exchange(&r->wake, 1) == 0) {
		pthread_mutex_lock(&r->lock);
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->lock);
	}
}

void relay_event(struct relay *r, const char *topic, const char *json, size_t len)
{
	if (!r)
		return;
	struct relay_ev *e = calloc(1, sizeof(*e));
	if (!e || !(e->topic = strdup(topic)) || !(e->json = malloc(len + 1))) {
		if (e)
			free(e->topic);
		free(e);
		atomic_fetch_add(&r->dropped, 1);
		metrics_add(r->gw->metrics, "bus_events_dropped_total", "bus", r->inst->name, 1);
		return;
	}
	memcpy(e->json, json, len);
	e->json[len] = '\0';
	e->len = len;
	ulid_new(e->id);
	pthread_mutex_lock(&r->lock);
	int full = r->stop || r->n_events >= EVENTS_MAX;
	if (!full) {
		if (r->tail)
			r->tail->next = e;
		else
			r->head = e;
		r->tail = e;
		r->n_events++;
		pthread_cond_signal(&r->cv);
	}
	pthread_mutex_unlock(&r->lock);
	if (full) {
		if (atomic_fetch_add(&r->dropped, 1) % 1000 == 0)
			log_warn("bus %s: %d events queued while it is down: dropping new events (counted in "
			         "parley_bus_events_dropped_total)",
			         r->inst->name, EVENTS_MAX);
		metrics_add(r->gw->metrics, "bus_events_dropped_total", "bus", r->inst->name, 1);
		free(e->topic);
		free(e->json);
		free(e);
	}
}

void relay_stop(struct relay *r)
{
	if (!r || !r->started)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	r->started = 0;
	if (r->n_events)
		log_warn("bus %s: %zu event(s) not published before the stop (stored envelopes resume from the "
		         "cursor)",
		         r->inst->name, r->n_events);
}

void relay_free(struct relay *r)
{
	if (!r)
		return;
	relay_stop(r);
	while (r->head) {
		struct relay_ev *e = r->head;
		r->head = e->next;
		free(e->topic);
		free(e->json);
		free(e);
	}
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cv);
	free(r->ns);
	free(r);
}

const char *relay_state(struct relay *r)
{
	if (!r)
		return "none";
	switch (atomic_load(&r->state)) {
	case STATE_UP:
		return "up";
	case STATE_DOWN:
		return "down";
	default:
		return "starting";
	}
}

static int64_t relay_lag(struct relay *r)
{
	int64_t lag = atomic_load(&r->committed) - atomic_load(&r->caught_at) - atomic_load(&r->since_caught);
	return lag > 0 ? lag : 0;
}

static size_t queued(struct relay *r)
{
	pthread_mutex_lock(&r->lock);
	size_t n = r->n_events;
	pthread_mutex_unlock(&r->lock);
	return n;
}

void relay_health(struct relay *r, cJSON *reply)
{
	if (!r)
		return;
	cJSON *b = cJSON_AddObjectToObject(reply, "durable_bus");
	cJSON_AddStringToObject(b, "name", r->inst->name);
	cJSON_AddStringToObject(b, "state", relay_state(r));
	int ping = r->ops->ping ? r->ops->ping(r->inst->data) : 0;
	cJSON_AddStringToObject(b, "reachable", ping == 0 ? "yes" : "no");
	cJSON_AddNumberToObject(b, "lag", (double)relay_lag(r));
	cJSON_AddNumberToObject(b, "events_queued", (double)queued(r));
	cJSON_AddNumberToObject(b, "published",
	                        (double)(atomic_load(&r->published_env) + atomic_load(&r->published_ev)));
	cJSON_AddNumberToObject(b, "failures", (double)atomic_load(&r->failures));
}

void relay_metrics(struct relay *r, struct strbuf *out)
{
	if (!r)
		return;
	sb_printf(out, "# HELP parley_bus_lag Committed envelopes the durable bus has not taken yet.\n");
	sb_printf(out, "# TYPE parley_bus_lag gauge\nparley_bus_lag{bus=\"%s\"} %lld\n", r->inst->name,
	          (long long)relay_lag(r));
	sb_printf(out, "# HELP parley_bus_events_queued Events waiting in memory for the durable bus.\n");
	sb_printf(out, "# TYPE parley_bus_events_queued gauge\nparley_bus_events_queued{bus=\"%s\"} %zu\n",
	          r->inst->name, queued(r));
	sb_printf(out, "# HELP parley_bus_up 1 when the durable bus answers.\n");
	sb_printf(out, "# TYPE parley_bus_up gauge\nparley_bus_up{bus=\"%s\"} %d\n", r->inst->name,
	          atomic_load(&r->state) == STATE_UP);
}
