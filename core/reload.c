/*
 * reload.c: one thread that applies the config file again when asked
 * (see reload.h): check, build beside the running topology, start what is
 * new, swap, drain and stop what is gone.
 */
#include "reload.h"
#include "config.h"
#include "gateway.h"
#include "inbox/inbox.h"
#include "log.h"
#include "ops.h"
#include "topology.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a drain waits for the old channels' users before it gives up on stopping them. */
#define DRAIN_LIMIT_MS (120 * 1000)

struct reloader {
	struct gateway *gw;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	uint64_t requested, completed; /* requests counted, and the count the last finished run covered */
	char *result;                  /* the last run's answer */
	int stop;
};

/* Top-level sections a reload applies; a change anywhere else needs a restart. */
static int section_reloadable(const char *key)
{
	static const char *const live[] = {"channels", "pipelines", "canned_responses", "log", NULL};
	for (size_t i = 0; live[i]; i++)
		if (strcmp(key, live[i]) == 0)
			return 1;
	return 0;
}

/* The sections of the new file that differ from what the gateway started with and cannot change live. */
static void restart_needed(const struct cfg_node *was, const struct cfg_node *now, cJSON *out)
{
	const struct cfg_node *roots[2] = {was, now};
	for (int r = 0; r < 2; r++) {
		for (size_t i = 0; roots[r] && roots[r]->type == CFG_MAP && i + 1 < roots[r]->n; i += 2) {
			const char *key = roots[r]->items[i]->value;
			if (!key || section_reloadable(key) || (r == 1 && cfg_map_get(was, key)))
				continue;
			if (!cfg_node_equal(cfg_map_get(was, key), cfg_map_get(now, key)))
				cJSON_AddItemToArray(out, cJSON_CreateString(key));
		}
	}
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * Wait until nobody holds the old topology but the gateway's own reference
 * is gone, and the submissions of each instance `gone` are committed: 0,
 * or -1 after DRAIN_LIMIT_MS (the instances are then left running).
 */
static int drain(struct topology *old, const struct topology *now)
{
	int64_t start = time_mono_ms(), told = start;
	for (;;) {
		int busy = atomic_load(&old->refs) > 0;
		for (size_t i = 0; !busy && i < old->n_channels; i++)
			busy = !topology_has(now, old->channels[i]) && atomic_load(&old->channels[i]->inflight) > 0;
		for (size_t i = 0; !busy && i < old->n_steps; i++)
			busy = !topology_has(now, old->steps[i]) && atomic_load(&old->steps[i]->inflight) > 0;
		if (!busy)
			return 0;
		int64_t t = time_mono_ms();
		if (t - start > DRAIN_LIMIT_MS)
			return -1;
		if (t - told >= 10000) {
			log_warn("reload: still draining the replaced channels and pipelines after %lld s",
			         (long long)((t - start) / 1000));
			told = t;
		}
		sleep_ms(5);
	}
}

/* What happened to each channel and pipeline, for the answer and the log. */
static void describe(const struct topology *old, const struct topology *t, cJSON *r, struct strbuf *line)
{
	cJSON *ch = cJSON_AddObjectToObject(r, "channels");
	cJSON *added = cJSON_AddArrayToObject(ch, "added"), *changed = cJSON_AddArrayToObject(ch, "changed");
	cJSON *removed = cJSON_AddArrayToObject(ch, "removed"), *same = cJSON_AddArrayToObject(ch, "unchanged");
	for (size_t i = 0; i < t->n_channels; i++) {
		const char *name = t->channels[i]->name;
		cJSON *to = topology_has(old, t->channels[i]) ? same : topology_channel(old, name) ? changed : added;
		cJSON_AddItemToArray(to, cJSON_CreateString(name));
	}
	for (size_t i = 0; i < old->n_channels; i++)
		if (!topology_channel(t, old->channels[i]->name))
			cJSON_AddItemToArray(removed, cJSON_CreateString(old->channels[i]->name));
	cJSON *pl = cJSON_AddObjectToObject(r, "pipelines");
	cJSON *rebuilt = cJSON_AddArrayToObject(pl, "rebuilt"), *kept = cJSON_AddArrayToObject(pl, "unchanged");
	for (size_t i = 0; i < t->n_pipes; i++)
		cJSON_AddItemToArray(t->pipes[i].kept ? kept : rebuilt, cJSON_CreateString(t->pipes[i].name));
	const char *names[] = {"added", "changed", "removed"};
	const cJSON *lists[] = {added, changed, removed};
	for (int k = 0; k < 3; k++) {
		sb_printf(line, "%s%s", k ? "; " : "", names[k]);
		const cJSON *e;
		int n = 0;
		cJSON_ArrayForEach(e, lists[k]) sb_printf(line, "%s%s", n++ ? ", " : " ", e->valuestring);
		if (!n)
			sb_adds(line, " none");
	}
	sb_printf(line, "; %d pipeline(s) rebuilt", cJSON_GetArraySize(rebuilt));
}

static char *refused(const char *message, const struct cfg_errors *errs)
{
	char *base = ops_error("invalid_config", message);
	cJSON *r = cJSON_Parse(base);
	free(base);
	cJSON *list = cJSON_AddArrayToObject(r, "errors");
	for (size_t i = 0; errs && i < errs->n; i++) {
		log_error("reload refused: %s", errs->msgs[i]);
		cJSON_AddItemToArray(list, cJSON_CreateString(errs->msgs[i]));
	}
	log_error("reload refused: %s; still serving on the running config", message);
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return s;
}

static int same_rules(const struct inbox_rules *a, const struct inbox_rules *b)
{
	return a->reopen_ms == b->reopen_ms && a->link_phone == b->link_phone;
}

/* One reload: the op answer. */
static char *run(struct gateway *gw, uint64_t requests)
{
	struct cfg_errors errs = {0};
	struct gw_config *nc = calloc(1, sizeof(*nc));
	char *answer = NULL;
	if (!nc)
		return ops_error("internal", "out of memory");
	if (cfg_load(gw->cfg.path, nc, &errs) != 0 || log_level_parse(nc->log_level) < 0) {
		if (errs.n == 0)
			cfg_errors_add(&errs, nc->path, cfg_map_get(cfg_map_get(nc->root, "log"), "level"),
			               "log.level '%s' is not one of error, warn, info, debug", nc->log_level);
		char *m = str_printf("%s has %zu error(s)", gw->cfg.path ? gw->cfg.path : "the config", errs.n);
		answer = refused(m ? m : "the config has errors", &errs);
		free(m);
		goto out;
	}
	struct topology *old = gw->topo; /* only this thread replaces it once the gateway runs */
	struct topology *t = topology_build(gw, nc, old, &errs);
	if (!t) {
		char *m = str_printf("%s has %zu error(s)", gw->cfg.path, errs.n);
		answer = refused(m ? m : "the config has errors", &errs);
		free(m);
		goto out;
	}
	const char *why = NULL;
	struct inbox_rules was_rules, rules;
	gateway_inbox_rules(old, &was_rules, &why);
	if (gateway_inbox_rules(t, &rules, &why) != 0) {
		cfg_errors_add(&errs, nc->path, cfg_map_get(nc->root, "pipelines"), "%s", why);
		answer = refused("the pipelines disagree", &errs);
		topology_free(t, old);
		goto out;
	}
	if (topology_up(gw, t, old) != 0) {
		topology_free(t, old);
		answer = refused("a new channel or step did not start (see the log); nothing was changed", NULL);
		goto out;
	}
	gateway_count_channels(gw, t);
	int64_t swapped = time_mono_ms();
	pthread_mutex_lock(&gw->topo_lock);
	gw->topo = t;
	pthread_mutex_unlock(&gw->topo_lock);
	/* The log: section applies at once. */
	log_set_level(log_level_parse(nc->log_level));
	log_set_json(nc->log_json);

	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	struct strbuf line;
	sb_init(&line);
	describe(old, t, r, &line);
	cJSON *restart = cJSON_AddArrayToObject(r, "restart_needed");
	restart_needed(gw->cfg.root, nc->root, restart);
	if (!same_rules(&was_rules, &rules))
		cJSON_AddItemToArray(restart, cJSON_CreateString("pipelines (reopen_within, link_phone)"));
	cJSON_AddNumberToObject(r, "requests", (double)requests);

	/* The old topology's users finish with it; what only it had is then stopped. */
	topology_put(old); /* the gateway's reference */
	if (drain(old, t) == 0) {
		topology_free(old, t);
	} else {
		log_error("reload: the replaced channels and pipelines were still in use after %d s: left running",
		          DRAIN_LIMIT_MS / 1000);
	}
	cJSON_AddNumberToObject(r, "drained_ms", (double)(time_mono_ms() - swapped));
	/* Instances borrow their config nodes: the applied file lives as long as the gateway. */
	struct gw_config **grown = realloc(gw->applied, (gw->n_applied + 1) * sizeof(*grown));
	if (grown) {
		gw->applied = grown;
		gw->applied[gw->n_applied++] = nc;
		nc = NULL;
	} /* else: leaked rather than freed under the instances */
	log_info("reload applied: %s", line.buf ? line.buf : "");
	const cJSON *e;
	cJSON_ArrayForEach(e, restart) log_warn("reload: %s changed, which takes a restart to apply", e->valuestring);
	sb_free(&line);
	answer = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
out:
	if (nc) {
		cfg_free(nc);
		free(nc);
	}
	cfg_errors_free(&errs);
	return answer;
}

static void *reload_main(void *arg)
{
	struct reloader *r = arg;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->stop && r->requested == r->completed)
			pthread_cond_wait(&r->cv, &r->lock);
		if (r->stop)
			break;
		uint64_t upto = r->requested, covers = r->requested - r->completed;
		pthread_mutex_unlock(&r->lock);
		char *answer = run(r->gw, covers);
		pthread_mutex_lock(&r->lock);
		free(r->result);
		r->result = answer;
		r->completed = upto;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int reload_start(struct reloader **out, struct gateway *gw)
{
	struct reloader *r = calloc(1, sizeof(*r));
	if (!r)
		return PARLEY_ENOMEM;
	r->gw = gw;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (thread_start(&r->thread, reload_main, r, "parley:reload") != 0) {
		free(r);
		return PARLEY_ENOMEM;
	}
	*out = r;
	return 0;
}

int reload_request(struct reloader *r, int wait_ms, char **result)
{
	if (!r)
		return PARLEY_ECLOSED;
	pthread_mutex_lock(&r->lock);
	if (r->stop) {
		pthread_mutex_unlock(&r->lock);
		return PARLEY_ECLOSED;
	}
	uint64_t mine = ++r->requested;
	pthread_cond_broadcast(&r->cv);
	int rv = 0;
	if (result) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wait_ms / 1000;
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (rv == 0 && r->completed < mine && !r->stop)
			if (pthread_cond_timedwait(&r->cv, &r->lock, &until) == ETIMEDOUT)
				rv = PARLEY_ETIMEDOUT;
		if (r->completed >= mine)
			*result = strdup(r->result ? r->result : "{}"), rv = 0;
		else if (rv == 0)
			rv = PARLEY_ECLOSED;
	}
	pthread_mutex_unlock(&r->lock);
	return rv;
}

void reload_stop(struct reloader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->lock);
	free(r->result);
	free(r);
}
