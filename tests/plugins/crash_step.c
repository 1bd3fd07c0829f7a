/*
 * crash_step.c: a test step that dereferences NULL on an envelope whose
 * text is "crash", to drive isolate: true on a step
 * (tests/e2e/test_isolation.py); it labels every other envelope
 * "crash-step-saw-it", so a test sees that the isolated step ran.
 */
#include <parley/parley.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct cstep {
	const struct parley_host *host;
};

static const struct parley_config_key keys[] = {{NULL, 0, NULL, 0, NULL}};

static int create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **err)
{
	(void)inst;
	(void)pd;
	(void)err;
	struct cstep *s = calloc(1, sizeof(*s));
	s->host = h;
	*data = s;
	return 0;
}

static void destroy(void *data)
{
	free(data);
}

static int process(void *data, parley_envelope *env)
{
	struct cstep *s = data;
	const char *text = s->host->envelope_get_str(env, "text");
	if (text && strcmp(text, "crash") == 0) {
#if defined(__SANITIZE_ADDRESS__)
		raise(SIGSEGV); /* under the sanitizers a NULL store is a report and an exit, not the signal */
#else
		volatile int *nowhere = NULL;
		*nowhere = 1; /* the bug this step exists for */
#endif
	}
	return s->host->envelope_set_json(env, "labels", "[\"crash-step-saw-it\"]");
}

static const struct parley_plugin desc = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_STEP,
        .name = "crash_step",
        .version = "1.0.0",
        .description = "test step: crashes on an envelope whose text is \"crash\"",
        .config = keys,
        .instance_create = create,
        .instance_destroy = destroy,
        .process = process,
};

PARLEY_PLUGIN_DEFINE(desc)
