/*
 * dedupe.c: drops an inbound envelope whose (channel, external_id) was
 * committed recently, before later steps see it.  The store's unique
 * (channel, external_id) stays the authority; this step keeps redeliveries
 * from reaching steps that act (identify, thread, route) and from costing a
 * write.  Keys are remembered only after their commit (after_commit), so a
 * failed commit never turns the provider's retry into a "duplicate".
 */
#include <parley/parley.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dedupe {
	const struct parley_host *host;
	parley_instance *inst;
	/* process() and after_commit() run on different pipeline threads. */
	pthread_mutex_t lock;
	/*
	 * Open addressing over keys; a FIFO ring evicts the oldest.  Each entry
	 * is "channel \x1f external_id \0 gateway id": the key, then the id the
	 * message is stored under, which a redelivery is answered with.
	 */
	char **slots;
	size_t nslots;
	char **ring;
	size_t ring_cap, ring_head, ring_len;
};

static const struct parley_config_key config_map[] = {
        {"capacity", PARLEY_CFG_INT, "100000", 0, "how many recent (channel, external_id) keys to remember"},
        {NULL, 0, NULL, 0, NULL},
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static char *make_key(const struct parley_host *h, const parley_envelope *env)
{
	const char *ch = h->envelope_get_str(env, "channel");
	const char *ext = h->envelope_get_str(env, "external_id");
	if (!ch || !ext)
		return NULL;
	size_t a = strlen(ch), b = strlen(ext);
	char *k = malloc(a + b + 2);
	memcpy(k, ch, a);
	k[a] = '\x1f';
	memcpy(k + a + 1, ext, b + 1);
	return k;
}

static size_t find_slot(struct dedupe *d, const char *key)
{
	size_t i = hash(key) & (d->nslots - 1);
	while (d->slots[i] && strcmp(d->slots[i], key) != 0)
		i = (i + 1) & (d->nslots - 1);
	return i;
}

/* Remove key by backward-shift deletion so probe chains stay intact. */
static void remove_key(struct dedupe *d, const char *key)
{
	size_t i = find_slot(d, key);
	if (!d->slots[i])
		return;
	d->slots[i] = NULL;
	size_t j = i;
	for (;;) {
		j = (j + 1) & (d->nslots - 1);
		if (!d->slots[j])
			break;
		size_t home = hash(d->slots[j]) & (d->nslots - 1);
		/* Move j back to i when its home is not in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			d->slots[i] = d->slots[j];
			d->slots[j] = NULL;
			i = j;
		}
	}
}

static int dd_process(void *data, parley_envelope *env)
{
	struct dedupe *d = data;
	const char *dir = d->host->envelope_get_str(env, "direction");
	if (!dir || strcmp(dir, "inbound") != 0)
		return 0;
	char *key = make_key(d->host, env);
	if (!key)
		return 0;
	char stored[32] = "";
	pthread_mutex_lock(&d->lock);
	const char *entry = d->slots[find_slot(d, key)];
	if (entry)
		snprintf(stored, sizeof(stored), "%s", entry + strlen(entry) + 1);
	pthread_mutex_unlock(&d->lock);
	free(key);
	if (!entry)
		return 0;
	d->host->metric_add(d->inst, "dedupe_dropped_total", 1);
	if (stored[0])
		d->host->envelope_set_str(env, "id", stored);
	return PARLEY_EDUPLICATE;
}

static void dd_after_commit(void *data, const parley_envelope *env, int result)
{
	struct dedupe *d = data;
	if (result != 0 && result != PARLEY_EDUPLICATE)
		return;
	char *key = make_key(d->host, env);
	const char *id = d->host->envelope_get_str(env, "id");
	if (!key)
		return;
	size_t kl = strlen(key), il = id ? strlen(id) : 0;
	char *entry = realloc(key, kl + il + 2);
	if (!entry) {
		free(key);
		return;
	}
	key = entry;
	memcpy(key + kl + 1, id ? id : "", il + 1);
	pthread_mutex_lock(&d->lock);
	size_t i = find_slot(d, key);
	if (d->slots[i]) {
		pthread_mutex_unlock(&d->lock);
		free(key);
		return;
	}
	if (d->ring_len == d->ring_cap) {
		char *old = d->ring[d->ring_head];
		remove_key(d, old);
		free(old);
		d->ring_head = (d->ring_head + 1) % d->ring_cap;
		d->ring_len--;
		i = find_slot(d, key);
	}
	d->slots[i] = key;
	d->ring[(d->ring_head + d->ring_len) % d->ring_cap] = key;
	d->ring_len++;
	pthread_mutex_unlock(&d->lock);
}

static int dd_create(const struct parley_host *host, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	(void)errmsg;
	int64_t cap = 100000;
	host->config_int(inst, "capacity", &cap);
	if (cap < 1)
		cap = 1;
	struct dedupe *d = calloc(1, sizeof(*d));
	d->host = host;
	d->inst = inst;
	d->ring_cap = (size_t)cap;
	d->nslots = 16;
	while (d->nslots < d->ring_cap * 2)
		d->nslots *= 2;
	pthread_mutex_init(&d->lock, NULL);
	d->slots = calloc(d->nslots, sizeof(char *));
	d->ring = calloc(d->ring_cap, sizeof(char *));
	if (!d->slots || !d->ring) {
		free(d->slots);
		free(d->ring);
		free(d);
		return PARLEY_ENOMEM;
	}
	*data = d;
	return 0;
}

static void dd_destroy(void *data)
{
	struct dedupe *d = data;
	for (size_t k = 0; k < d->ring_len; k++)
		free(d->ring[(d->ring_head + k) % d->ring_cap]);
	free(d->ring);
	free(d->slots);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_STEP,
        .name = "dedupe",
        .version = "1.0.0",
        .description = "drops redelivered inbound envelopes (same channel and external_id) before later steps",
        .config = config_map,
        .instance_create = dd_create,
        .instance_destroy = dd_destroy,
        .process = dd_process,
        .after_commit = dd_after_commit,
};

PARLEY_PLUGIN_DEFINE(plugin)
