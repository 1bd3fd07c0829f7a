/* ops_gateway.c: the gateway's own ops: health, stats, plugin state, canned responses. */
#include "auth.h"
#include "bus.h"
#include "gateway.h"
#include "isolate.h"
#include "metrics.h"
#include "ops.h"
#include "ops_handlers.h"
#include "presence.h"
#include "queue.h"
#include "relay.h"
#include "reload.h"
#include "store.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

char *op_health(struct op_call *call, const cJSON *req)
{
	(void)req;
	struct gateway *gw = call->gw;
	cJSON *r = cJSON_CreateObject();
	int store_ok = store_ping(gw->st) == 0;
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON_AddStringToObject(r, "status", store_ok && !atomic_load(&gw->draining) ? "ok" : "unavailable");
	cJSON_AddStringToObject(r, "store", store_ok ? "up" : "down");
	cJSON_AddStringToObject(r, "version", PARLEY_VERSION);
	cJSON *chs = cJSON_AddArrayToObject(r, "channels");
	struct topology *t = topology_get(gw);
	for (size_t i = 0; t && i < t->n_channels; i++) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "name", t->channels[i]->name);
		cJSON_AddStringToObject(c, "type", t->channels[i]->plugin->desc->name);
		cJSON_AddBoolToObject(c, "can_send", t->channels[i]->plugin->desc->channel_send != NULL);
		cJSON_AddItemToArray(chs, c);
	}
	isolate_health(t, r);
	topology_put(t);
	cJSON_AddNumberToObject(r, "inflight", (double)bus_inflight(gw->bus));
	relay_health(gw->relay, r);
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return s;
}

char *op_stats(struct op_call *call, const cJSON *req)
{
	(void)req;
	struct gateway *gw = call->gw;
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON_AddNumberToObject(r, "envelopes_stored",
	                        (double)metrics_get(gw->metrics, "envelopes_stored_total", NULL, NULL));
	cJSON_AddNumberToObject(r, "envelopes_duplicate",
	                        (double)metrics_get(gw->metrics, "envelopes_duplicate_total", NULL, NULL));
	cJSON_AddNumberToObject(r, "commit_batches",
	                        (double)metrics_get(gw->metrics, "commit_batches_total", NULL, NULL));
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return s;
}

/* state.get / state.set {instance, key, value}: a plugin instance's key-value state. */
static char *state(struct gateway *gw, const cJSON *req, int set)
{
	const char *inst = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "instance"));
	const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "key"));
	const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "value"));
	if (!inst || !key || (set && !value))
		return ops_error("invalid_request", set ? "state.set needs instance, key and value (strings)"
		                                        : "state.get needs instance and key");
	if (set) {
		int rv = store_kv_set(gw->st, inst, key, value, strlen(value));
		if (rv == 0)
			gateway_changed(gw); /* plugins caching their state look again */
		return rv == 0 ? strdup("{\"ok\":true}") : ops_error("store_error", parley_strerror(rv));
	}
	char *val = NULL;
	size_t len = 0;
	int rv = store_kv_get(gw->st, inst, key, &val, &len);
	if (rv == PARLEY_ENOENT)
		return ops_error("not_found", "no such key in that instance's state");
	if (rv != 0)
		return ops_error("store_error", parley_strerror(rv));
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON_AddStringToObject(r, "value", val);
	free(val);
	char *out = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return out;
}

char *op_state_get(struct op_call *call, const cJSON *req)
{
	return state(call->gw, req, 0);
}

char *op_state_set(struct op_call *call, const cJSON *req)
{
	return state(call->gw, req, 1);
}

char *op_config_reload(struct op_call *call, const cJSON *req)
{
	(void)req;
	char *result = NULL;
	/* Within the CLI's 15 s answer time; a longer drain goes on and says in the log when it is done. */
	int rv = reload_request(call->gw->reloader, 12000, &result);
	if (rv == PARLEY_ETIMEDOUT)
		return ops_error("unavailable",
		                 "the reload is still draining after 12 s; the log says when it is done");
	if (rv != 0)
		return ops_error("unavailable", "the gateway is stopping");
	return result;
}

/* canned.list: the canned responses of canned_responses:, name and template. */
char *op_canned_list(struct op_call *call, const cJSON *req)
{
	(void)req;
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON *list = cJSON_AddArrayToObject(r, "canned_responses");
	/* The node outlives the topology: applied configs are kept while the gateway runs (reload.c). */
	struct topology *t = topology_get(call->gw);
	const struct cfg_node *m = t ? t->canned : NULL;
	topology_put(t);
	for (size_t i = 0; m && m->type == CFG_MAP && i + 1 < m->n; i += 2) {
		if (m->items[i + 1]->type != CFG_SCALAR)
			continue;
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "name", m->items[i]->value);
		cJSON_AddStringToObject(c, "template", m->items[i + 1]->value);
		cJSON_AddItemToArray(list, c);
	}
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return s;
}

/* queue.get {team?}: the team queues (queue.h).  An agent sees their teams' queues only. */
char *op_queue_get(struct op_call *call, const cJSON *req)
{
	char *all = queue_describe(call->gw, req);
	if (!call->who || call->who->role != AUTH_AGENT || !all)
		return all;
	cJSON *r = cJSON_Parse(all);
	free(all);
	cJSON *queues = cJSON_GetObjectItemCaseSensitive(r, "queues");
	for (int i = cJSON_GetArraySize(queues) - 1; i >= 0; i--) {
		const char *team =
		        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(queues, i), "team"));
		if (!auth_sees_team(call->who, team))
			cJSON_DeleteItemFromArray(queues, i);
	}
	char *out = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return out;
}

/* conversation.presence: the caller views (typing or not) the conversation; the others there. */
char *op_presence(struct op_call *call, const cJSON *req)
{
	const char *conv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	int typing = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "typing"));
	cJSON *others = presence_beat(call->gw->presence, conv, ops_caller_name(call), typing, time_now_ms());
	if (!others)
		return NULL;
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON_AddItemToObject(r, "viewers", others);
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return s;
}
