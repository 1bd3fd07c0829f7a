/*
 * flaky_bus.c: a test bus plugin that appends "TOPIC MSG_ID" to a file for
 * each message it takes, and refuses on demand, to drive the host's relay
 * without a NATS server: every publish fails while the file `down` names
 * exists; every fail_every-th call fails; a message over max_size is
 * PARLEY_ETOOBIG.
 */
#include <parley/parley.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct flaky {
	const char *log, *down;
	int64_t fail_every, max_size, calls;
};

static const struct parley_config_key keys[] = {
        {"log", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED, "file that gets one line per message taken"},
        {"down", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED, "while this file exists every publish fails"},
        {"fail_every", PARLEY_CFG_INT, "0", 0, "fail every n-th call (0: never)"},
        {"max_size", PARLEY_CFG_INT, "0", 0, "refuse larger messages as too big (0: no limit)"},
        {NULL, 0, NULL, 0, NULL},
};

static int create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **err)
{
	(void)pd;
	(void)err;
	struct flaky *f = calloc(1, sizeof(*f));
	if (!f)
		return PARLEY_ENOMEM;
	f->log = h->config_str(inst, "log");
	f->down = h->config_str(inst, "down");
	h->config_int(inst, "fail_every", &f->fail_every);
	h->config_int(inst, "max_size", &f->max_size);
	*data = f;
	return 0;
}

static void destroy(void *data)
{
	free(data);
}

static int publish(void *data, const char *topic, const char *msg_id, const char *json, size_t len)
{
	(void)json;
	struct flaky *f = data;
	f->calls++;
	if (access(f->down, F_OK) == 0 || (f->fail_every && f->calls % f->fail_every == 0))
		return PARLEY_EIO;
	if (f->max_size && (int64_t)len > f->max_size)
		return PARLEY_ETOOBIG;
	FILE *out = fopen(f->log, "a");
	if (!out)
		return PARLEY_EIO;
	fprintf(out, "%s %s\n", topic, msg_id);
	return fclose(out) == 0 ? 0 : PARLEY_EIO;
}

static int ping(void *data)
{
	struct flaky *f = data;
	return access(f->down, F_OK) == 0 ? PARLEY_EIO : 0;
}

static const struct parley_bus_ops ops = {
        .struct_size = sizeof(struct parley_bus_ops),
        .publish = publish,
        .ping = ping,
};

static const struct parley_plugin desc = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_BUS,
        .name = "flaky",
        .version = "1.0.0",
        .description = "test bus: a file of what it took, failures on demand",
        .config = keys,
        .instance_create = create,
        .instance_destroy = destroy,
        .bus = &ops,
};

PARLEY_PLUGIN_DEFINE(desc)
