/*
 * conformance.c: the store conformance suite's harness and main.
 *
 *   store_conformance PLUGIN_DIR TYPE CONFIG
 *       every check against a fresh store of plugin TYPE with storage config
 *       CONFIG (a YAML flow mapping, e.g. "{path: parley.db, claim_timeout:
 *       1s}"; relative paths are under a temporary data_dir).  CONFIG must
 *       set claim_timeout: 1s (the outbox check waits for it to pass).
 *   store_conformance PLUGIN_DIR sqlite --fixture OLD.db MANIFEST.json
 *       a copy of a database written by an older Parley opens, migrates and
 *       keeps everything MANIFEST.json lists (see check_fixture.c).
 *
 * The store is loaded the way the gateway loads it: a config file read by
 * gateway_open() (config parsing, plugin scan, config map check), then the
 * plugin's init, instance_create and instance_start with the real host table.
 */
#include "suite.h"

#include "host.h"
#include "loader.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int suite_failures;

int check_fixture(struct suite *su, const char *fixture, const char *manifest);

int64_t suite_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void suite_time(int64_t ms, char out[64])
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void suite_id(struct suite *su, const char *tag, char out[64])
{
	static int n;
	const char *colon = strchr(tag, ':');
	if (strcmp(tag, "msg") == 0 || strcmp(tag, "out") == 0 || strcmp(tag, "rcpt") == 0 ||
	    strcmp(tag, "reopen") == 0)
		/* An envelope's id is a ULID (sdk/envelope-v1.schema.json; the host refuses anything else). */
		su->h->new_id(out);
	else if (colon && colon[1])
		/* An address stays a URN: its scheme first ("tel:rb" is tel:<run>-rb-<n>). */
		snprintf(out, 64, "%.*s:%s-%s-%d", (int)(colon - tag), tag, su->run, colon + 1, ++n);
	else
		snprintf(out, 64, "%s-%s-%d", su->run, tag, ++n);
}

int suite_open(struct suite *su)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/parley.yaml", su->dir);
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return -1;
	}
	fprintf(f,
	        "data_dir: \"%s\"\nlog:\n  level: warn\nplugins:\n  path: [\"%s\"]\nstorage:\n  type: %s\n  config: "
	        "%s\n",
	        su->dir, su->plugin_dir, su->type, su->config);
	fclose(f);
	struct cfg_errors errs = {0};
	if (gateway_open(&su->gw, path, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		cfg_errors_free(&errs);
		return -1;
	}
	cfg_errors_free(&errs);
	parley_instance *inst = su->gw.store;
	if (!inst) {
		fprintf(stderr, "%s: no store configured\n", path);
		return -1;
	}
	const struct parley_plugin *d = inst->plugin->desc;
	char *err = NULL;
	if (loader_init_plugin(&su->gw.reg, inst->plugin, host_table(), &err) != 0 ||
	    d->instance_create(host_table(), inst, inst->plugin->plugin_data, &inst->data, &err) != 0) {
		fprintf(stderr, "store %s cannot be created: %s\n", su->type, err ? err : "no reason given");
		free(err);
		return -1;
	}
	inst->created = 1;
	if (d->instance_start && d->instance_start(inst->data, &err) != 0) {
		fprintf(stderr, "store %s cannot start: %s\n", su->type, err ? err : "no reason given");
		free(err);
		return -1;
	}
	inst->started = 1;
	su->gw.st = store_open(inst->data, d->store);
	su->h = host_table();
	su->ops = d->store;
	su->store = inst->data;
	su->t = su->ops->struct_size >= offsetof(struct parley_store_ops, typed) + sizeof(void *) ? su->ops->typed
	                                                                                          : NULL;
	return 0;
}

void suite_close(struct suite *su)
{
	gateway_close(&su->gw);
	su->ops = NULL;
	su->t = NULL;
	su->store = NULL;
}

parley_envelope *suite_env(struct suite *su, const char *direction, const char *id, const char *channel,
                           const char *external_id, const char *from, const char *to)
{
	const struct parley_host *h = su->h;
	parley_envelope *e = h->envelope_new(NULL, "message", direction);
	if (id)
		h->envelope_set_str(e, "id", id);
	h->envelope_set_str(e, "channel", channel);
	h->envelope_set_str(e, "channel_type", "webhook");
	if (external_id)
		h->envelope_set_str(e, "external_id", external_id);
	if (from)
		h->envelope_set_str(e, "from", from);
	if (to)
		h->envelope_set_str(e, "to", to);
	h->envelope_set_str(e, "text", "hello");
	return e;
}

int suite_insert(struct suite *su, parley_envelope **envs, size_t n, int *results)
{
	parley_store_tx *tx;
	int rv = su->t->tx_begin(su->store, &tx);
	if (rv != 0)
		return rv;
	rv = su->t->messages_insert(tx, envs, n, results);
	if (rv != 0) {
		su->t->tx_rollback(tx);
		return rv;
	}
	return su->t->tx_commit(tx);
}

cJSON *suite_query(struct suite *su, const char *op, const char *request_json, int *rc)
{
	char *reply = NULL;
	*rc = su->ops->query(su->store, op, request_json, &reply);
	cJSON *r = *rc == 0 && reply ? cJSON_Parse(reply) : NULL;
	free(reply);
	return r;
}

cJSON *suite_message(struct suite *su, const char *id)
{
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "id", id);
	char *text = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	int rc;
	cJSON *r = suite_query(su, "message.get", text, &rc);
	free(text);
	cJSON *m = r ? cJSON_DetachItemFromObjectCaseSensitive(r, "message") : NULL;
	cJSON_Delete(r);
	return m;
}

const char *suite_jstr(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static int max_seq(void *arg, const void *row)
{
	const struct parley_stored_envelope *e = row;
	int64_t *m = arg;
	if (e->seq > *m)
		*m = e->seq;
	return 0;
}

/* What survives closing and reopening the store: messages, key-value state, the schema (no migration fails). */
static void check_reopen(struct suite *su)
{
	char id[64], key[64];
	suite_id(su, "reopen", id);
	suite_id(su, "key", key);
	parley_envelope *e = suite_env(su, "inbound", id, "reopen", id, "tel:+1", NULL);
	int res = -1;
	CHECK_RC(suite_insert(su, &e, 1, &res), 0);
	su->h->envelope_free(e);
	CHECK_RC(su->ops->kv_set(su->store, "suite", key, "kept", 4), 0);
	suite_close(su);
	if (suite_open(su) != 0) {
		fprintf(stderr, "the store does not open a second time on the same data\n");
		suite_failures++;
		return;
	}
	CHECK_RC(su->ops->ping(su->store), 0);
	cJSON *m = suite_message(su, id);
	CHECK(m != NULL);
	CHECK_STR(suite_jstr(m, "channel"), "reopen");
	cJSON_Delete(m);
	char *val = NULL;
	size_t len = 0;
	CHECK_RC(su->ops->kv_get(su->store, "suite", key, &val, &len), 0);
	CHECK(val && len == 4 && memcmp(val, "kept", 4) == 0);
	free(val);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc != 4 && !(argc == 6 && strcmp(argv[3], "--fixture") == 0)) {
		fprintf(stderr, "usage: store_conformance PLUGIN_DIR TYPE CONFIG\n"
		                "       store_conformance PLUGIN_DIR sqlite --fixture OLD.db MANIFEST.json\n");
		return 2;
	}
	/* The config file lives in a temporary directory: relative paths would resolve against it. */
	char *plugins = realpath(argv[1], NULL);
	if (!plugins) {
		perror(argv[1]);
		return 2;
	}
	struct suite su = {.plugin_dir = plugins, .type = argv[2], .config = argv[3], .claim_ms = 1000};
	const char *tmp = getenv("TMPDIR");
	snprintf(su.dir, sizeof(su.dir), "%s/parley-store-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(su.dir)) {
		perror(su.dir);
		return 1;
	}
	int rv;
	if (argc == 6) {
		su.config = "{path: old.db}";
		rv = check_fixture(&su, argv[4], argv[5]);
	} else if (suite_open(&su) != 0) {
		rv = 1;
	} else if (!su.t) {
		fprintf(stderr, "store %s has no typed operations (ABI 1.2 .typed): it cannot pass this suite\n",
		        su.type);
		suite_close(&su);
		rv = 1;
	} else {
		su.h->new_id(su.run);
		CHECK_RC(su.ops->ping(su.store), 0);
		CHECK(su.t->struct_size >= sizeof(struct parley_store_typed_ops));
		CHECK_RC(su.t->messages_since(su.store, 0, 1000000, max_seq, &su.start_seq), 0);
		struct {
			const char *name;
			void (*fn)(struct suite *);
		} areas[] = {
		        {"messages", check_messages},
		        {"contacts and identities", check_contacts},
		        {"conversations, events, notes", check_conversations},
		        {"merges and rollback", check_merges_rollback},
		        {"outbox and receipts", check_outbox},
		        {"classic ops", check_classic},
		        {"reads", check_reads},
		        {"leases", check_leases},
		        {"counters", check_counters},
		        {"queue", check_queue},
		        {"accounts, tokens, sessions", check_accounts},
		        {"SLA targets and surveys", check_sla},
		        {"window and broadcasts", check_broadcasts},
		        {"reopening", check_reopen},
		};
		for (size_t i = 0; i < sizeof(areas) / sizeof(areas[0]); i++) {
			int before = suite_failures;
			areas[i].fn(&su);
			printf("%-32s %s\n", areas[i].name, suite_failures == before ? "ok" : "FAILED");
		}
		suite_close(&su);
		rv = suite_failures ? 1 : 0;
	}
	/* The temporary data_dir: the generated config and, for file stores, the database. */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", su.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", su.dir);
	free(plugins);
	if (suite_failures)
		fprintf(stderr, "%d check(s) failed\n", suite_failures);
	else if (rv == 0)
		printf("all checks passed\n");
	return rv ? 1 : 0;
}
