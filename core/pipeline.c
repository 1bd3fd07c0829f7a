/* pipeline.c: steps, group commit and publish on one worker thread. */
#include "pipeline.h"
#include "bus.h"
#include "envelope.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pipeline {
	struct gateway *gw;
	pthread_t thread;
	/* Reused across batches so a steady load allocates no arrays. */
	struct bus_item *items;
	size_t n_items, cap_items;
	nng_msg **msgs;
	size_t n_msgs, cap_msgs;
	parley_envelope **envs;
	parley_envelope **commit;
	int *results;
	int *commit_results;
	size_t *commit_index;
	const struct gw_pipeline **pipes;
	size_t cap;
};

static int grow(struct pipeline *p, size_t need)
{
	if (need <= p->cap)
		return 0;
	size_t cap = p->cap ? p->cap : 256;
	while (cap < need)
		cap *= 2;
	void *a = realloc(p->envs, cap * sizeof(*p->envs));
	if (a)
		p->envs = a;
	void *b = realloc(p->commit, cap * sizeof(*p->commit));
	if (b)
		p->commit = b;
	void *c = realloc(p->results, cap * sizeof(*p->results));
	if (c)
		p->results = c;
	void *d = realloc(p->commit_results, cap * sizeof(*p->commit_results));
	if (d)
		p->commit_results = d;
	void *e = realloc(p->commit_index, cap * sizeof(*p->commit_index));
	if (e)
		p->commit_index = e;
	void *f = realloc(p->pipes, cap * sizeof(*p->pipes));
	if (f)
		p->pipes = f;
	if (!a || !b || !c || !d || !e || !f)
		return -1;
	p->cap = cap;
	return 0;
}

static int keep_msg(struct pipeline *p, nng_msg *m)
{
	if (p->n_msgs == p->cap_msgs) {
		size_t nc = p->cap_msgs ? p->cap_msgs * 2 : 64;
		nng_msg **nm = realloc(p->msgs, nc * sizeof(*nm));
		if (!nm)
			return -1;
		p->msgs = nm;
		p->cap_msgs = nc;
	}
	p->msgs[p->n_msgs++] = m;
	return 0;
}

static void process_batch(struct pipeline *p)
{
	struct gateway *gw = p->gw;
	size_t n = p->n_items;
	if (grow(p, n) != 0) {
		for (size_t i = 0; i < n; i++)
			bus_ticket_done(gw->bus, p->items[i].ticket, PARLEY_ENOMEM);
		return;
	}
	size_t nc = 0;
	int outbound = 0;
	for (size_t i = 0; i < n; i++) {
		p->results[i] = 0;
		p->pipes[i] = NULL;
		parley_envelope *env = envelope_parse(p->items[i].json, p->items[i].len);
		p->envs[i] = env;
		if (!env) {
			p->results[i] = PARLEY_EINTERNAL;
			continue;
		}
		const char *dir = envelope_get(env, "direction");
		if (dir && strcmp(dir, "inbound") == 0) {
			const struct gw_pipeline *pl = gateway_pipeline_for(gw, envelope_get(env, "channel"));
			p->pipes[i] = pl;
			for (size_t s = 0; pl && s < pl->n_steps; s++) {
				struct parley_instance *st = pl->steps[s];
				int rv = st->plugin->desc->process(st->data, env);
				if (rv != 0) {
					p->results[i] = rv;
					break;
				}
			}
		} else {
			outbound = 1;
		}
		if (p->results[i] == 0) {
			p->commit_index[nc] = i;
			p->commit[nc++] = env;
		}
	}
	int rv = 0;
	if (nc > 0) {
		memset(p->commit_results, 0, nc * sizeof(int));
		rv = gw->store_ops->commit(gw->store->data, p->commit, nc, p->commit_results);
		if (rv != 0) {
			log_error("store commit of %zu envelopes failed: %s; the providers will retry", nc,
			          parley_strerror(rv));
			metrics_add(gw->metrics, "commit_failures_total", NULL, NULL, 1);
		}
		for (size_t k = 0; k < nc; k++)
			p->results[p->commit_index[k]] = rv != 0 ? rv : p->commit_results[k];
		metrics_add(gw->metrics, "commit_batches_total", NULL, NULL, 1);
	}
	/* Acknowledge first: publishing must not delay the providers' answers. */
	size_t stored = 0, dups = 0;
	for (size_t i = 0; i < n; i++) {
		int r = p->results[i];
		if (r == 0)
			stored++;
		else if (r == PARLEY_EDUPLICATE)
			dups++;
		bus_ticket_done(gw->bus, p->items[i].ticket, r == PARLEY_EDUPLICATE ? 0 : r);
	}
	metrics_add(gw->metrics, "envelopes_stored_total", NULL, NULL, (int64_t)stored);
	if (dups)
		metrics_add(gw->metrics, "envelopes_duplicate_total", NULL, NULL, (int64_t)dups);
	for (size_t i = 0; i < n; i++) {
		parley_envelope *env = p->envs[i];
		if (!env)
			continue;
		const struct gw_pipeline *pl = p->pipes[i];
		for (size_t s = 0; pl && s < pl->n_steps; s++) {
			struct parley_instance *st = pl->steps[s];
			if (st->plugin->desc->after_commit)
				st->plugin->desc->after_commit(st->data, env, p->results[i]);
		}
		if (p->results[i] == 0) {
			char topic[256];
			if (envelope_topic(env, topic, sizeof(topic)) == 0) {
				char *json = envelope_json(env);
				if (json) {
					bus_publish(gw->bus, topic, json, strlen(json));
					free(json);
				}
			}
		}
		envelope_destroy(env);
		p->envs[i] = NULL;
	}
	if (outbound)
		outbox_wake(gw->outbox);
}

static void *pipeline_main(void *arg)
{
	struct pipeline *p = arg;
	struct gateway *gw = p->gw;
	size_t max_batch = (size_t)gw->cfg.commit_max_batch;
	for (;;) {
		nng_msg *m;
		if (bus_recv(gw->bus, &m, 0) != 0)
			break;
		p->n_items = 0;
		p->n_msgs = 0;
		bus_decode(m, &p->items, &p->n_items, &p->cap_items);
		keep_msg(p, m);
		/* Take whatever else is already waiting, up to the batch limit. */
		while (p->n_items < max_batch && bus_recv(gw->bus, &m, 1) == 0) {
			bus_decode(m, &p->items, &p->n_items, &p->cap_items);
			keep_msg(p, m);
		}
		process_batch(p);
		for (size_t i = 0; i < p->n_msgs; i++)
			nng_msg_free(p->msgs[i]);
	}
	return NULL;
}

int pipeline_start(struct pipeline **out, struct gateway *gw)
{
	struct pipeline *p = calloc(1, sizeof(*p));
	if (!p)
		return PARLEY_ENOMEM;
	p->gw = gw;
	if (pthread_create(&p->thread, NULL, pipeline_main, p) != 0) {
		free(p);
		return PARLEY_EIO;
	}
	*out = p;
	return 0;
}

void pipeline_join(struct pipeline *p)
{
	if (!p)
		return;
	pthread_join(p->thread, NULL);
	free(p->items);
	free(p->msgs);
	free(p->envs);
	free(p->commit);
	free(p->results);
	free(p->commit_results);
	free(p->commit_index);
	free(p->pipes);
	free(p);
}
