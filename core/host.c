/*
 * host.c: the struct parley_host table handed to every plugin.  Each
 * function maps a plugin's request onto the core module that owns it.
 */
#include "host.h"
#include "attachments.h"
#include "auth.h"
#include "bots.h"
#include "bus.h"
#include "config.h"
#include "crypto.h"
#include "envelope.h"
#include "gateway.h"
#include "http.h"
#include "http_ws.h"
#include "inbox/inbox.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"
#include "payload.h"
#include "store.h"
#include "util.h"

#include <nng/nng.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *h_strerror(int err)
{
	switch (err) {
	case PARLEY_OK:
		return "no error";
	case PARLEY_EINVAL:
		return "invalid argument or payload";
	case PARLEY_ENOMEM:
		return "out of memory";
	case PARLEY_ENOENT:
		return "not found";
	case PARLEY_EEXIST:
		return "already exists";
	case PARLEY_EDUPLICATE:
		return "duplicate: already stored";
	case PARLEY_EAUTH:
		return "bad or missing signature";
	case PARLEY_EIO:
		return "storage or network failure";
	case PARLEY_ETIMEDOUT:
		return "timed out";
	case PARLEY_ECLOSED:
		return "the gateway is shutting down";
	case PARLEY_ENOTSUP:
		return "not supported";
	case PARLEY_ETOOBIG:
		return "too large";
	case PARLEY_EBUSY:
		return "busy: try again later";
	case PARLEY_EINTERNAL:
		return "internal error (a bug: please report it)";
	default:
		return "unknown error";
	}
}

const char *parley_strerror(int err)
{
	return h_strerror(err);
}

static void h_log(parley_instance *inst, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, inst ? inst->what : "plugin", fmt, ap);
	va_end(ap);
}

static const char *h_instance_name(parley_instance *inst)
{
	return inst->name;
}

static const struct parley_config_key *find_key(parley_instance *inst, const char *key)
{
	const struct parley_config_key *m = inst->plugin->desc->config;
	for (size_t i = 0; m && m[i].name; i++)
		if (strcmp(m[i].name, key) == 0)
			return &m[i];
	return NULL;
}

/* The scalar text for key: the configured value, else the declared default. */
static const char *scalar(parley_instance *inst, const char *key)
{
	const struct cfg_node *v = cfg_map_get(inst->config, key);
	if (v && v->type == CFG_SCALAR)
		return v->value;
	const struct parley_config_key *k = find_key(inst, key);
	return k ? k->default_value : NULL;
}

static const char *h_config_str(parley_instance *inst, const char *key)
{
	return scalar(inst, key);
}

static int h_config_int(parley_instance *inst, const char *key, int64_t *out)
{
	const char *s = scalar(inst, key);
	char err[128];
	if (!s)
		return PARLEY_ENOENT;
	return cfg_parse_int(s, out, err) == 0 ? 0 : PARLEY_EINVAL;
}

static int h_config_bool(parley_instance *inst, const char *key, int *out)
{
	const char *s = scalar(inst, key);
	char err[128];
	if (!s)
		return PARLEY_ENOENT;
	return cfg_parse_bool(s, out, err) == 0 ? 0 : PARLEY_EINVAL;
}

static int h_config_size(parley_instance *inst, const char *key, uint64_t *out)
{
	const char *s = scalar(inst, key);
	char err[128];
	if (!s)
		return PARLEY_ENOENT;
	return cfg_parse_size(s, out, err) == 0 ? 0 : PARLEY_EINVAL;
}

static int h_config_duration_ms(parley_instance *inst, const char *key, int64_t *out)
{
	const char *s = scalar(inst, key);
	char err[128];
	if (!s)
		return PARLEY_ENOENT;
	return cfg_parse_duration_ms(s, out, err) == 0 ? 0 : PARLEY_EINVAL;
}

static cJSON *node_json(const struct cfg_node *n)
{
	if (n->type == CFG_SCALAR)
		return cJSON_CreateString(n->value);
	if (n->type == CFG_SEQ) {
		cJSON *a = cJSON_CreateArray();
		for (size_t i = 0; i < n->n; i++)
			cJSON_AddItemToArray(a, node_json(n->items[i]));
		return a;
	}
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; i + 1 < n->n; i += 2)
		cJSON_AddItemToObject(o, n->items[i]->value, node_json(n->items[i + 1]));
	return o;
}

char *host_config_json(const struct cfg_node *n)
{
	cJSON *j = node_json(n);
	char *s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

static char *h_config_json(parley_instance *inst, const char *key)
{
	const struct cfg_node *v = key ? cfg_map_get(inst->config, key) : inst->config;
	return v ? host_config_json(v) : NULL;
}

static const char *h_setting(parley_instance *inst, const char *name)
{
	const struct gw_config *c = &inst->gw->cfg;
	if (strcmp(name, "http.public_url") == 0)
		return c->http_public_url;
	if (strcmp(name, "http.listen") == 0)
		return c->http_listen;
	if (strcmp(name, "data_dir") == 0)
		return c->data_dir;
	return NULL;
}

static parley_envelope *h_envelope_new(parley_instance *inst, const char *kind, const char *direction)
{
	parley_envelope *env = envelope_create(kind, direction);
	if (env && inst && inst->plugin->desc->kind == PARLEY_KIND_CHANNEL) {
		envelope_set(env, "channel", inst->name);
		envelope_set(env, "channel_type", inst->plugin->desc->name);
	}
	if (env && inst) {
		env->owner = inst->what;
		env->owner_plugin = inst->plugin->desc->name;
	}
	return env;
}

/* A refused field is logged at once, naming the instance, its plugin, the field and why (envelope_check.c). */
static int refused(const parley_envelope *env, const char *setter, int rv)
{
	if (rv != 0 && env && env->owner)
		log_msg(PARLEY_LOG_WARN, env->owner, "plugin %s: %s refused: %s", env->owner_plugin, setter,
		        env->last_error[0] ? env->last_error : parley_strerror(rv));
	return rv;
}

static int h_envelope_set_str(parley_envelope *env, const char *field, const char *value)
{
	return refused(env, "envelope_set_str", envelope_set(env, field, value));
}

static int h_envelope_set_json(parley_envelope *env, const char *field, const char *json)
{
	return refused(env, "envelope_set_json", envelope_set_json_text(env, field, json));
}

/* What submit and submit_ids check before an envelope may enter the pipeline. */
static int submit_check(parley_instance *inst, parley_envelope **envs, size_t n)
{
	char why[320];
	if (!envs || n == 0)
		return PARLEY_EINVAL;
	for (size_t i = 0; i < n; i++) {
		const char *err = envelope_error(envs[i]);
		if (err) {
			/* A field the plugin meant to set is missing: storing the rest would lose it silently. */
			log_msg(PARLEY_LOG_WARN, inst->what, "submit refused: %s", err);
			return PARLEY_EINVAL;
		}
		/* Whatever setters the plugin skipped, what enters the pipeline is what the schema says. */
		if (envelope_check_all(envs[i]->obj, why, sizeof(why)) != 0) {
			log_msg(PARLEY_LOG_WARN, inst->what, "submit refused: %s", why);
			return PARLEY_EINVAL;
		}
	}
	return atomic_load(&inst->gw->draining) ? PARLEY_ECLOSED : 0;
}

/* Envelopes submitted while a webhook is read carry its id in meta.request_id (log.h). */
static void stamp_request(parley_envelope **envs, size_t n)
{
	const char *rid = log_request();
	for (size_t i = 0; rid && i < n; i++) {
		cJSON *meta = cJSON_GetObjectItemCaseSensitive(envs[i]->obj, "meta");
		if (!meta)
			meta = cJSON_AddObjectToObject(envs[i]->obj, "meta");
		if (cJSON_IsObject(meta) && !cJSON_GetObjectItemCaseSensitive(meta, "request_id"))
			cJSON_AddStringToObject(meta, "request_id", rid);
	}
}

static int h_submit(parley_instance *inst, parley_envelope **envs, size_t n, parley_submit_cb done, void *arg)
{
	int rv = done ? submit_check(inst, envs, n) : PARLEY_EINVAL;
	if (rv == 0)
		stamp_request(envs, n);
	return rv != 0 ? rv : bus_submit_from(inst->gw->bus, inst, envs, n, done, NULL, arg);
}

static int h_submit_ids(parley_instance *inst, parley_envelope **envs, size_t n, parley_submit_ids_cb done, void *arg)
{
	int rv = done ? submit_check(inst, envs, n) : PARLEY_EINVAL;
	if (rv == 0)
		stamp_request(envs, n);
	return rv != 0 ? rv : bus_submit_from(inst->gw->bus, inst, envs, n, NULL, done, arg);
}

static int h_json_check(const char *text, size_t len, char *why, size_t why_len)
{
	return payload_json_check(text, len, why, why_len) == 0 ? 0 : PARLEY_EINVAL;
}

static int h_text_check(const char *name, const char *s, size_t len, char *why, size_t why_len)
{
	return payload_text_check(name, s, len, why, why_len) == 0 ? 0 : PARLEY_EINVAL;
}

static int h_http_route(parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb)
{
	return http_route_add(inst->gw->http, inst, method, subpath, cb);
}

static int h_http_route_public(parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb)
{
	return http_route_add_public(inst->gw->http, inst, method, subpath, cb);
}

static parley_ws *h_ws_accept(parley_http_request *req, const struct parley_ws_callbacks *cb, void *arg)
{
	return http_ws_accept(http_ws_hub_of(req), req, cb, arg);
}

struct parley_timer {
	nng_aio *aio;
	int64_t period_ms;
	parley_timer_cb cb;
	void *arg;
	atomic_int stopped;
};

static void timer_fire(void *p)
{
	struct parley_timer *t = p;
	if (nng_aio_result(t->aio) != 0 || atomic_load(&t->stopped))
		return;
	t->cb(t->arg);
	if (t->period_ms > 0 && !atomic_load(&t->stopped))
		nng_sleep_aio((nng_duration)t->period_ms, t->aio);
}

static int h_timer_start(parley_instance *inst, int64_t delay_ms, int64_t period_ms, parley_timer_cb cb, void *arg,
                         parley_timer **out)
{
	(void)inst;
	struct parley_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return PARLEY_ENOMEM;
	if (nng_aio_alloc(&t->aio, timer_fire, t) != 0) {
		free(t);
		return PARLEY_ENOMEM;
	}
	t->period_ms = period_ms;
	t->cb = cb;
	t->arg = arg;
	nng_sleep_aio((nng_duration)delay_ms, t->aio);
	*out = t;
	return 0;
}

static void h_timer_stop(parley_timer *t)
{
	if (!t)
		return;
	atomic_store(&t->stopped, 1);
	nng_aio_stop(t->aio); /* waits for a running callback */
	nng_aio_free(t->aio);
	free(t);
}

static int h_kv_get(parley_instance *inst, const char *key, char **val, size_t *len)
{
	struct gateway *gw = inst->gw;
	return store_kv_get(gw->st, inst->name, key, val, len);
}

static int h_kv_set(parley_instance *inst, const char *key, const void *val, size_t len)
{
	struct gateway *gw = inst->gw;
	return store_kv_set(gw->st, inst->name, key, val, len);
}

static void h_metric_add(parley_instance *inst, const char *name, int64_t delta)
{
	metrics_add(inst->gw->metrics, name, "channel", inst->name, delta);
}

static int h_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[32])
{
	return crypto_hmac_sha256(key, keylen, data, len, out) == 0 ? 0 : PARLEY_EINTERNAL;
}

static int h_hmac_sha1(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[20])
{
	return crypto_hmac_sha1(key, keylen, data, len, out) == 0 ? 0 : PARLEY_EINTERNAL;
}

static void h_publish(parley_instance *inst, const char *topic, const char *json)
{
	if (topic && json)
		bus_publish(inst->gw->bus, topic, json, strlen(json));
}

static int h_store_query(parley_instance *inst, const char *op, const char *request_json, char **reply)
{
	struct gateway *gw = inst->gw;
	return inbox_op(gw->inbox, op, request_json ? request_json : "{}", reply);
}

static int h_lease(parley_instance *inst, const char *name, int64_t ttl_ms)
{
	struct gateway *gw = inst->gw;
	if (!name || ttl_ms <= 0)
		return PARLEY_EINVAL;
	char *key = str_printf("%s/%s", inst->name, name);
	int rv = key ? store_lease(gw->st, key, gw->cfg.node_name, ttl_ms) : PARLEY_ENOMEM;
	free(key);
	return rv;
}

static int h_lease_release(parley_instance *inst, const char *name)
{
	struct gateway *gw = inst->gw;
	if (!name)
		return PARLEY_EINVAL;
	char *key = str_printf("%s/%s", inst->name, name);
	int rv = key ? store_lease_release(gw->st, key, gw->cfg.node_name) : PARLEY_ENOMEM;
	free(key);
	return rv;
}

static int h_counter_add(parley_instance *inst, const char *name, int64_t delta, int64_t *value)
{
	struct gateway *gw = inst->gw;
	if (!name || !value)
		return PARLEY_EINVAL;
	char *key = str_printf("%s/%s", inst->name, name);
	int rv = key ? store_counter_add(gw->st, key, delta, value) : PARLEY_ENOMEM;
	free(key);
	return rv;
}

static uint64_t h_epoch(parley_instance *inst)
{
	return atomic_load(&inst->gw->epoch);
}

static void h_new_id(char out[32])
{
	ulid_new(out);
}

/* parley_host.op: an op of the table, as the bot this instance is (bots.h). */
static int h_op(parley_instance *inst, const char *op, const char *request_json, char **reply_json)
{
	*reply_json = NULL;
	cJSON *req = cJSON_Parse(request_json ? request_json : "{}");
	if (!cJSON_IsObject(req)) {
		cJSON_Delete(req);
		*reply_json = ops_error("invalid_request", "the request must be a JSON object");
		return PARLEY_EINVAL;
	}
	struct auth_principal who;
	bots_principal(&who, inst->name);
	*reply_json = ops_call(inst->gw, &who, op, req);
	cJSON_Delete(req);
	if (!*reply_json)
		return PARLEY_ENOMEM;
	return strncmp(*reply_json, "{\"ok\":true", 10) == 0 ? 0 : PARLEY_EINVAL;
}

/* parley_host.health: what the channel says of itself, for /healthz. */
static void h_health(parley_instance *inst, int up, const char *why)
{
	pthread_mutex_lock(&inst->health_lock);
	int was = inst->down;
	inst->down = !up;
	snprintf(inst->why, sizeof(inst->why), "%s", up || !why ? "" : why);
	pthread_mutex_unlock(&inst->health_lock);
	if (was != !up)
		log_msg(up ? PARLEY_LOG_INFO : PARLEY_LOG_WARN, inst->what, "%s%s%s", up ? "up again" : "down",
		        up || !why ? "" : ": ", up || !why ? "" : why);
}

static const struct parley_host table = {
        .struct_size = sizeof(struct parley_host),
        .abi = (uint32_t)PARLEY_ABI_MAJOR << 16 | PARLEY_ABI_MINOR,
        .strerror = h_strerror,
        .log = h_log,
        .instance_name = h_instance_name,
        .config_str = h_config_str,
        .config_int = h_config_int,
        .config_bool = h_config_bool,
        .config_size = h_config_size,
        .config_duration_ms = h_config_duration_ms,
        .config_json = h_config_json,
        .setting = h_setting,
        .envelope_new = h_envelope_new,
        .envelope_free = envelope_destroy,
        .envelope_set_str = h_envelope_set_str,
        .envelope_set_json = h_envelope_set_json,
        .envelope_get_str = envelope_get,
        .envelope_get_json = envelope_get_json_text,
        .envelope_to_json = envelope_json,
        .submit = h_submit,
        .http_route = h_http_route,
        .http_method = http_req_method,
        .http_path = http_req_path,
        .http_query = http_req_query,
        .http_header = http_req_header,
        .http_body = http_req_body,
        .http_respond = http_req_respond,
        .timer_start = h_timer_start,
        .timer_stop = h_timer_stop,
        .kv_get = h_kv_get,
        .kv_set = h_kv_set,
        .metric_add = h_metric_add,
        .hmac_sha256 = h_hmac_sha256,
        .hmac_sha1 = h_hmac_sha1,
        .ct_equal = crypto_ct_equal,
        .hex_encode = crypto_hex,
        .attachment_put = attachments_put,
        .publish = h_publish,
        .store_query = h_store_query,
        .new_id = h_new_id,
        .epoch = h_epoch,
        .envelope_error = envelope_error,
        .json_check = h_json_check,
        .text_check = h_text_check,
        .submit_ids = h_submit_ids,
        .lease = h_lease,
        .counter_add = h_counter_add,
        .lease_release = h_lease_release,
        .http_route_public = h_http_route_public,
        .http_respond_with = http_req_respond_with,
        .ws_accept = h_ws_accept,
        .ws_send = http_ws_send,
        .ws_close = http_ws_close,
        .op = h_op,
        .health = h_health,
};

const struct parley_host *host_table(void)
{
	return &table;
}
