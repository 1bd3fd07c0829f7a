/*
 * fuzz_control.c: the control API's request handling (control_handle in
 * core/control.c) on the input as one request, the text `parley api` and
 * any service send over the control socket.
 *
 * The gateway around it is real where control.c touches it (metrics, a
 * bus, the canned responses parsed from YAML) and fake where it would
 * block or persist: the bus is opened and closed again, so a send is
 * refused at once as during a shutdown, and the store answers from the
 * request itself.  What a client relies on: every request gets one JSON
 * object with a boolean "ok", a failure carries error.code and
 * error.message, and a UTF-8 request gets a UTF-8 answer.  What the store
 * relies on: every request it gets is one JSON object.
 */
#include "bus.h"
#include "control.h"
#include "fake_host.h"
#include "gateway.h"
#include "inbox/inbox.h"
#include "metrics.h"
#include "store.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static struct gateway gw;
static int request_utf8;

/* A store that checks what it is asked and answers from the question. */
static int fake_query(void *store, const char *op, const char *request_json, char **reply)
{
	(void)store;
	*reply = NULL;
	cJSON *req = cJSON_Parse(request_json);
	FUZZ_ASSERT(cJSON_IsObject(req), "the store got a request that is not a JSON object for %s: %s", op,
	            request_json);
	FUZZ_ASSERT(!request_utf8 || fuzz_json_utf8(request_json), "the store got non-UTF-8 for %s: %s", op,
	            request_json);
	const char *conv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	cJSON *r = cJSON_CreateObject();
	int rv = 0;
	if (strcmp(op, "conversation.get") == 0) {
		cJSON *c = cJSON_AddObjectToObject(r, "conversation");
		cJSON_AddStringToObject(c, "id", conv ? conv : "C0");
		cJSON_AddStringToObject(c, "last_channel", "out");
		cJSON_AddStringToObject(c, "team", "billing");
		cJSON *who = cJSON_AddObjectToObject(c, "contact");
		cJSON_AddStringToObject(who, "name", conv ? conv : "Alice");
	} else if (strcmp(op, "conversation.route") == 0) {
		const char *ch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "channel"));
		cJSON *rt = cJSON_AddObjectToObject(r, "route");
		cJSON_AddStringToObject(rt, "channel", ch ? ch : "out");
		cJSON_AddStringToObject(rt, "to", "webhook:alice");
		cJSON_AddStringToObject(rt, "contact_id", "K1");
	} else if (strchr(op, '.') == NULL) {
		rv = PARLEY_ENOTSUP;
	} else if (conv && conv[0] == '!') {
		rv = PARLEY_ENOENT; /* a "missing" conversation, with the store's message */
		cJSON_AddStringToObject(r, "message", "no such conversation");
	} else {
		/* Any other op succeeds and answers with its own request, so ok_merge sees arbitrary objects. */
		cJSON_Delete(r);
		r = cJSON_Duplicate(req, 1);
	}
	*reply = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	cJSON_Delete(req);
	return rv;
}

static int kv_get(void *store, const char *ns, const char *key, char **val, size_t *len)
{
	(void)store, (void)ns;
	if (key[0] == '!')
		return PARLEY_ENOENT;
	*val = strdup(key);
	*len = strlen(key);
	return 0;
}

static int kv_set(void *store, const char *ns, const char *key, const void *val, size_t len)
{
	(void)store, (void)ns, (void)key, (void)val, (void)len;
	return 0;
}

static int ping(void *store)
{
	(void)store;
	return 0;
}

static const struct parley_store_ops store_ops = {
        .struct_size = sizeof(struct parley_store_ops),
        .query = fake_query,
        .kv_get = kv_get,
        .kv_set = kv_set,
        .ping = ping,
};

static int no_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	(void)data, (void)env, (void)res;
	return 0;
}

/* A receive-only channel "in" and a channel "out" that can send. */
static const struct parley_plugin in_desc = {PARLEY_PLUGIN_HEADER, .kind = PARLEY_KIND_CHANNEL, .name = "webhook"};
static const struct parley_plugin out_desc = {PARLEY_PLUGIN_HEADER, .kind = PARLEY_KIND_CHANNEL, .name = "webhook",
                                              .channel_send = no_send};
static struct plugin_entry in_plugin = {.desc = &in_desc}, out_plugin = {.desc = &out_desc};
static struct parley_instance in_ch = {.name = "in", .what = "channel 'in'", .plugin = &in_plugin};
static struct parley_instance out_ch = {.name = "out", .what = "channel 'out'", .plugin = &out_plugin};
static struct parley_instance *channels[] = {&in_ch, &out_ch};
static struct parley_instance store = {.name = "fake", .what = "store 'fake'"};

static const char canned_yaml[] = "greet: \"Hello {{contact.name|there}}, this is {{agent|the team}} of {{team}} on "
                                  "{{channel}} ({{conversation.id}}, {{contact.id|?}})\"\n"
                                  "plain: \"Thanks!\"\n"
                                  "open: \"{{contact.name\"\n";

static void unchanged(void *arg)
{
	(void)arg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	struct cfg_errors errs = {0};
	char *err = NULL;
	gw.cfg.publish_listen = "inproc://parley-fuzz-control";
	gw.cfg.control_listen = "inproc://parley-fuzz-control-rep"; /* a local socket: requests need no token */
	gw.cfg.publish_buffer = 16;
	gw.cfg.http_request_timeout_ms = 1000;
	gw.cfg.root = cfg_parse("canned", canned_yaml, strlen(canned_yaml), &errs);
	FUZZ_ASSERT(gw.cfg.root && errs.n == 0, "the canned responses do not parse");
	gw.cfg.canned = gw.cfg.root;
	gw.metrics = metrics_new();
	gw.store = &store;
	gw.st = store_open(NULL, &store_ops);
	static const struct inbox_rules rules = {.reopen_ms = 7LL * 24 * 3600 * 1000, .link_phone = 1};
	gw.inbox = inbox_open(gw.st, &rules, unchanged, NULL);
	static struct topology topo = {.channels = channels, .n_channels = 2};
	topo.canned = gw.cfg.canned;
	atomic_init(&topo.refs, 1);
	pthread_mutex_init(&gw.topo_lock, NULL);
	gw.topo = &topo;
	in_ch.gw = out_ch.gw = store.gw = &gw;
	FUZZ_ASSERT(bus_open(&gw.bus, &gw, &err) == 0, "bus_open: %s", err ? err : "?");
	/* Closed: message.send gets ECLOSED at once, as during a drain, instead of waiting for a pipeline. */
	bus_close(gw.bus);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	request_utf8 = fuzz_utf8_valid((const char *)data, len);
	char *reply = control_handle(&gw, (const char *)data, len);
	FUZZ_ASSERT(reply, "no reply");
	cJSON *r = cJSON_Parse(reply);
	FUZZ_ASSERT(cJSON_IsObject(r), "the reply is not a JSON object: %s", reply);
	const cJSON *ok = cJSON_GetObjectItemCaseSensitive(r, "ok");
	FUZZ_ASSERT(cJSON_IsBool(ok), "the reply has no boolean \"ok\": %s", reply);
	if (cJSON_IsFalse(ok)) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
		FUZZ_ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "code")) &&
		                    cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "message")),
		            "a failure without error.code and error.message: %s", reply);
	}
	FUZZ_ASSERT(!request_utf8 || fuzz_json_utf8(reply), "a UTF-8 request got a non-UTF-8 reply: %s", reply);
	cJSON_Delete(r);
	free(reply);
	return 0;
}
