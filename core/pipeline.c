/*
 * pipeline.c: steps, group commit and publish, as three stages on three
 * threads, so that the store's fsync overlaps with the work around it:
 *
 *   prepare: take ingest messages off the bus, parse, run the steps
 *   commit:  take every prepared batch waiting, commit them in one store
 *            transaction, complete the submitters' tickets (the acks)
 *   post:    tell steps about the commit, publish what was stored, free
 *
 * While the commit stage waits for the disk, the prepare stage keeps
 * preparing; the next commit takes all of it at once, so batches grow with
 * the load instead of the load waiting for batches.
 */
#include "pipeline.h"
#include "broadcast.h"
#include "bus.h"
#include "envelope.h"
#include "gateway.h"
#include "inbox/inbox.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct batch {
	struct batch *next;
	struct bus_item *items;
	size_t n, cap_items;
	nng_msg **msgs;
	size_t n_msgs, cap_msgs;
	parley_envelope **envs;
	int *results;
	const struct gw_pipeline **pipes;
	struct topology *topo; /* held from the steps to the after_commit calls: a reload waits for it */
	int outbound;
};

/* A queue of batches between two stages. */
struct queue {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct batch *head, *tail;
	size_t envelopes; /* queued, for back-pressure */
	int closed;
};

struct pipeline {
	struct gateway *gw;
	pthread_t prepare, commit, post;
	struct queue to_commit, to_post;
	size_t max_batch;
	/* Commit-stage arrays, reused so a steady load allocates none. */
	parley_envelope **commit_envs;
	int *commit_results;
	int **commit_slots;
	size_t commit_cap;
	void (*outbound)(void *arg); /* new outbound work was committed */
	void *outbound_arg;
};

static void queue_init(struct queue *q)
{
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->head = q->tail = NULL;
	q->envelopes = 0;
	q->closed = 0;
}

static void queue_destroy(struct queue *q)
{
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cv);
}

/* Append b; wait while more than limit envelopes are queued (0: no limit). */
static void queue_put(struct queue *q, struct batch *b, size_t limit)
{
	pthread_mutex_lock(&q->lock);
	while (limit && q->envelopes > limit && !q->closed)
		pthread_cond_wait(&q->cv, &q->lock);
	b->next = NULL;
	if (q->tail)
		q->tail->next = b;
	else
		q->head = b;
	q->tail = b;
	q->envelopes += b->n;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->lock);
}

/* Take every queued batch (a list), waiting for one; NULL once closed and empty. */
static struct batch *queue_take_all(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	while (!q->head && !q->closed)
		pthread_cond_wait(&q->cv, &q->lock);
	struct batch *all = q->head;
	q->head = q->tail = NULL;
	q->envelopes = 0;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->lock);
	return all;
}

static void queue_close(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->lock);
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		envelope_destroy(b->envs ? b->envs[i] : NULL);
	for (size_t i = 0; i < b->n_msgs; i++)
		nng_msg_free(b->msgs[i]);
	free(b->items);
	free(b->msgs);
	free(b->envs);
	free(b->results);
	free(b->pipes);
	topology_put(b->topo);
	free(b);
}

static int batch_keep_msg(struct batch *b, nng_msg *m)
{
	if (b->n_msgs == b->cap_msgs) {
		size_t nc = b->cap_msgs ? b->cap_msgs * 2 : 8;
		nng_msg **nm = realloc(b->msgs, nc * sizeof(*nm));
		if (!nm)
			return -1;
		b->msgs = nm;
		b->cap_msgs = nc;
	}
	b->msgs[b->n_msgs++] = m;
	return 0;
}

/* Parse and run the steps; results[i] is 0 to commit, or the reason not to. */
static void prepare_batch(struct gateway *gw, struct batch *b)
{
	b->envs = calloc(b->n ? b->n : 1, sizeof(*b->envs));
	b->results = calloc(b->n ? b->n : 1, sizeof(*b->results));
	b->pipes = calloc(b->n ? b->n : 1, sizeof(*b->pipes));
	if (!b->envs || !b->results || !b->pipes) {
		free(b->envs);
		b->envs = NULL;
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		parley_envelope *env = envelope_parse(b->items[i].json, b->items[i].len);
		b->envs[i] = env;
		if (!env) {
			b->results[i] = PARLEY_EINTERNAL;
			continue;
		}
		const char *dir = envelope_get(env, "direction");
		if (!dir || strcmp(dir, "inbound") != 0) {
			b->outbound = 1;
			continue;
		}
		if (!b->topo)
			b->topo = topology_get(gw);
		const struct gw_pipeline *pl = topology_pipeline_for(b->topo, envelope_get(env, "channel"));
		b->pipes[i] = pl;
		for (size_t s = 0; pl && s < pl->n_steps; s++) {
			struct parley_instance *st = pl->steps[s];
			int rv = st->plugin->desc->process(st->data, env);
			/*
			 * A setter that refused remembers why (envelope.h), whether or not
			 * the step looked at its result: such an envelope is never stored
			 * missing the field, and the provider is told to retry.
			 */
			const char *why = rv == 0 ? envelope_error(env) : NULL;
			if (why) {
				const cJSON *rq = cJSON_GetObjectItemCaseSensitive(
				        cJSON_GetObjectItemCaseSensitive(env->obj, "meta"), "request_id");
				log_msg(PARLEY_LOG_ERROR, st->what, "%s: the envelope is not stored (request %s)", why,
				        cJSON_IsString(rq) ? rq->valuestring : "-");
				rv = PARLEY_EINVAL;
			}
			if (rv != 0) {
				b->results[i] = rv;
				break;
			}
		}
	}
}

static void *prepare_main(void *arg)
{
	struct pipeline *p = arg;
	struct gateway *gw = p->gw;
	for (;;) {
		nng_msg *m;
		if (bus_recv(gw->bus, &m, 0) != 0)
			break;
		struct batch *b = calloc(1, sizeof(*b));
		if (!b) {
			nng_msg_free(m);
			continue;
		}
		do {
			bus_decode(m, &b->items, &b->n, &b->cap_items);
			batch_keep_msg(b, m);
		} while (b->n < p->max_batch && bus_recv(gw->bus, &m, 1) == 0);
		prepare_batch(gw, b);
		if (!b->envs) {
			for (size_t i = 0; i < b->n; i++)
				bus_ticket_done(gw->bus, b->items[i].ticket, b->items[i].index, PARLEY_ENOMEM, NULL);
			b->n = 0;
			batch_free(b);
			continue;
		}
		/* Back-pressure: at most a few batches' worth waits for the disk. */
		queue_put(&p->to_commit, b, 4 * p->max_batch);
	}
	queue_close(&p->to_commit);
	return NULL;
}

static int commit_grow(struct pipeline *p, size_t need)
{
	if (need <= p->commit_cap)
		return 0;
	size_t cap = p->commit_cap ? p->commit_cap : 1024;
	while (cap < need)
		cap *= 2;
	parley_envelope **e = realloc(p->commit_envs, cap * sizeof(*e));
	if (e)
		p->commit_envs = e;
	int *r = realloc(p->commit_results, cap * sizeof(*r));
	if (r)
		p->commit_results = r;
	int **s = realloc(p->commit_slots, cap * sizeof(*s));
	if (s)
		p->commit_slots = s;
	if (!e || !r || !s)
		return -1;
	p->commit_cap = cap;
	return 0;
}

static void *commit_main(void *arg)
{
	struct pipeline *p = arg;
	struct gateway *gw = p->gw;
	struct batch *all;
	while ((all = queue_take_all(&p->to_commit)) != NULL) {
		size_t total = 0, nc = 0;
		for (struct batch *b = all; b; b = b->next)
			total += b->n;
		int rv = commit_grow(p, total) == 0 ? 0 : PARLEY_ENOMEM;
		for (struct batch *b = all; b && rv == 0; b = b->next) {
			for (size_t i = 0; i < b->n; i++) {
				if (b->results[i] != 0)
					continue;
				p->commit_envs[nc] = b->envs[i];
				p->commit_slots[nc] = &b->results[i];
				p->commit_results[nc] = 0;
				nc++;
			}
		}
		if (rv == 0 && nc > 0) {
			rv = inbox_commit(gw->inbox, p->commit_envs, nc, p->commit_results);
			if (rv != 0) {
				log_error("store commit of %zu envelopes failed: %s; their providers will retry", nc,
				          parley_strerror(rv));
				metrics_add(gw->metrics, "commit_failures_total", NULL, NULL, 1);
			}
			metrics_add(gw->metrics, "commit_batches_total", NULL, NULL, 1);
		}
		for (size_t k = 0; k < nc; k++)
			*p->commit_slots[k] = rv != 0 ? rv : p->commit_results[k];
		if (rv != 0 && nc == 0) {
			for (struct batch *b = all; b; b = b->next)
				for (size_t i = 0; i < b->n; i++)
					if (b->results[i] == 0)
						b->results[i] = rv;
		}
		/* Acknowledge first: the providers are waiting for this. */
		size_t stored = 0, dups = 0;
		for (struct batch *b = all; b; b = b->next) {
			for (size_t i = 0; i < b->n; i++) {
				int r = b->results[i];
				stored += r == 0;
				dups += r == PARLEY_EDUPLICATE;
				/* A duplicate carries the stored message's id: the store or dedupe put it there. */
				const char *id = (r == 0 || r == PARLEY_EDUPLICATE) && b->envs[i]
				                         ? envelope_get(b->envs[i], "id")
				                         : NULL;
				bus_ticket_done(gw->bus, b->items[i].ticket, b->items[i].index, r, id);
			}
		}
		metrics_add(gw->metrics, "envelopes_stored_total", NULL, NULL, (int64_t)stored);
		if (dups)
			metrics_add(gw->metrics, "envelopes_duplicate_total", NULL, NULL, (int64_t)dups);
		while (all) {
			struct batch *next = all->next;
			queue_put(&p->to_post, all, 0);
			all = next;
		}
	}
	queue_close(&p->to_post);
	return NULL;
}

static void *post_main(void *arg)
{
	struct pipeline *p = arg;
	struct gateway *gw = p->gw;
	struct batch *all;
	while ((all = queue_take_all(&p->to_post)) != NULL) {
		int outbound = 0;
		while (all) {
			struct batch *b = all;
			all = b->next;
			outbound |= b->outbound;
			for (size_t i = 0; i < b->n; i++) {
				parley_envelope *env = b->envs[i];
				if (!env)
					continue;
				const struct gw_pipeline *pl = b->pipes[i];
				for (size_t s = 0; pl && s < pl->n_steps; s++) {
					struct parley_instance *st = pl->steps[s];
					if (st->plugin->desc->after_commit)
						st->plugin->desc->after_commit(st->data, env, b->results[i]);
				}
				if (b->results[i] != 0)
					continue;
				broadcast_inbound(gw, env); /* a stop word opts the contact out */
				char topic[256];
				size_t len;
				const char *json = envelope_text(env, &len);
				if (json && envelope_topic(env, topic, sizeof(topic)) == 0)
					bus_publish_stored(gw->bus, topic, json, len);
			}
			batch_free(b);
		}
		if (outbound && p->outbound)
			p->outbound(p->outbound_arg);
	}
	return NULL;
}

int pipeline_start(struct pipeline **out, struct gateway *gw, void (*outbound)(void *arg), void *arg)
{
	struct pipeline *p = calloc(1, sizeof(*p));
	if (!p)
		return PARLEY_ENOMEM;
	p->gw = gw;
	p->outbound = outbound;
	p->outbound_arg = arg;
	p->max_batch = (size_t)gw->cfg.commit_max_batch;
	queue_init(&p->to_commit);
	queue_init(&p->to_post);
	if (thread_start(&p->post, post_main, p, "parley:post") != 0)
		goto fail_post;
	if (thread_start(&p->commit, commit_main, p, "parley:commit") != 0)
		goto fail_commit;
	if (thread_start(&p->prepare, prepare_main, p, "parley:prepare") != 0)
		goto fail_prepare;
	*out = p;
	return 0;
fail_prepare:
	queue_close(&p->to_commit);
	pthread_join(p->commit, NULL);
fail_commit:
	queue_close(&p->to_post);
	pthread_join(p->post, NULL);
fail_post:
	queue_destroy(&p->to_commit);
	queue_destroy(&p->to_post);
	free(p);
	return PARLEY_EIO;
}

void pipeline_join(struct pipeline *p)
{
	if (!p)
		return;
	/* bus_close() ended the prepare stage's receive; each stage closes the next. */
	pthread_join(p->prepare, NULL);
	pthread_join(p->commit, NULL);
	pthread_join(p->post, NULL);
	queue_destroy(&p->to_commit);
	queue_destroy(&p->to_post);
	free(p->commit_envs);
	free(p->commit_results);
	free(p->commit_slots);
	free(p);
}
