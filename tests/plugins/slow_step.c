/*
 * slow_step.c: a test step that holds the pipeline for `delay` on envelopes
 * whose text is "slow", to drive the request timeout; on text "careless" it
 * sets a field the host refuses and ignores the result, as a buggy step
 * would.
 */
#include <parley/parley.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slow {
	const struct parley_host *host;
	int64_t delay_ms;
};

static const struct parley_config_key keys[] = {
        {"delay", PARLEY_CFG_DURATION, "1s", 0, "how long to hold a \"slow\" envelope"},
        {NULL, 0, NULL, 0, NULL},
};

static int create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **err)
{
	(void)pd;
	(void)err;
	struct slow *s = calloc(1, sizeof(*s));
	s->host = h;
	h->config_duration_ms(inst, "delay", &s->delay_ms);
	*data = s;
	return 0;
}

static void destroy(void *data)
{
	free(data);
}

static int process(void *data, parley_envelope *env)
{
	struct slow *s = data;
	const char *text = s->host->envelope_get_str(env, "text");
	if (text && strcmp(text, "slow") == 0) {
		struct timespec ts = {(time_t)(s->delay_ms / 1000), (long)(s->delay_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (text && strcmp(text, "careless") == 0)
		s->host->envelope_set_str(env, "no_such_field", "x"); /* the result dropped on purpose */
	return 0;
}

static const struct parley_plugin desc = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_STEP,
        .name = "slow",
        .version = "1.0.0",
        .description = "test step: delays envelopes whose text is \"slow\"",
        .config = keys,
        .instance_create = create,
        .instance_destroy = destroy,
        .process = process,
};

PARLEY_PLUGIN_DEFINE(desc)
