/*
 * ticker.c: a test channel that uses timers and key-value state.  Every
 * `interval` it submits one envelope "tick N" (external id tick-N) until it
 * has sent `count` in this run; N continues from the value kept in the
 * store, so a restart neither repeats nor skips a number.
 */
#include <parley/parley.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ticker {
	const struct parley_host *host;
	parley_instance *inst;
	parley_timer *timer;
	int64_t interval, count, sent, next;
};

static const struct parley_config_key keys[] = {
        {"interval", PARLEY_CFG_DURATION, "20ms", 0, "time between ticks"},
        {"count", PARLEY_CFG_INT, "5", 0, "ticks per run"},
        {NULL, 0, NULL, 0, NULL},
};

static void committed(void *arg, int result)
{
	struct ticker *t = arg;
	if (result != 0)
		t->host->log(t->inst, PARLEY_LOG_ERROR, "tick not committed: %s", t->host->strerror(result));
}

static void tick(void *arg)
{
	struct ticker *t = arg;
	const struct parley_host *h = t->host;
	if (t->sent >= t->count)
		return;
	char num[32], ext[48], text[48];
	snprintf(num, sizeof(num), "%lld", (long long)t->next);
	snprintf(ext, sizeof(ext), "tick-%lld", (long long)t->next);
	snprintf(text, sizeof(text), "tick %lld", (long long)t->next);
	/* Remember the number first: a crash after this skips one, never repeats one. */
	if (h->kv_set(t->inst, "next", num, strlen(num)) != 0)
		return;
	parley_envelope *env = h->envelope_new(t->inst, "message", "inbound");
	h->envelope_set_str(env, "external_id", ext);
	h->envelope_set_str(env, "from", "ticker:clock");
	h->envelope_set_str(env, "text", text);
	if (h->submit(t->inst, &env, 1, committed, t) != 0) {
		h->envelope_free(env);
		return;
	}
	t->next++;
	t->sent++;
	h->metric_add(t->inst, "ticks_total", 1);
}

static int create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **err)
{
	(void)pd;
	(void)err;
	struct ticker *t = calloc(1, sizeof(*t));
	t->host = h;
	t->inst = inst;
	h->config_duration_ms(inst, "interval", &t->interval);
	h->config_int(inst, "count", &t->count);
	*data = t;
	return 0;
}

static int start(void *data, char **err)
{
	struct ticker *t = data;
	char *val = NULL;
	size_t len;
	int rv = t->host->kv_get(t->inst, "next", &val, &len);
	if (rv == 0) {
		t->next = atoll(val) + 1;
		free(val);
	} else if (rv == PARLEY_ENOENT) {
		t->next = 1;
	} else {
		*err = strdup("cannot read the tick counter from the store");
		return rv;
	}
	return t->host->timer_start(t->inst, t->interval, t->interval, tick, t, &t->timer);
}

static void stop(void *data)
{
	struct ticker *t = data;
	t->host->timer_stop(t->timer);
	t->timer = NULL;
}

static void destroy(void *data)
{
	free(data);
}

static const struct parley_plugin desc = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "ticker",
        .version = "1.0.0",
        .description = "test channel: timers and key-value state",
        .config = keys,
        .instance_create = create,
        .instance_start = start,
        .instance_stop = stop,
        .instance_destroy = destroy,
};

PARLEY_PLUGIN_DEFINE(desc)
