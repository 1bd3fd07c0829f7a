/*
 * plugin_test_host.c: the fake host of `parley test`.
 *
 * The host table is the real one (config access, envelope setters with
 * their schema checks, crypto, timers) with every slot that reaches the
 * gateway replaced: submit records the envelopes and completes them from a
 * thread of its own, as the pipeline would; HTTP routes are kept and called
 * with requests built from the fixture; state, counters and leases live in
 * memory.  Ids and received_at are made deterministic so that a fixture can
 * expect whole envelopes.  One instance is tested at a time: the bound host
 * is one static pointer of the parley binary, never of a plugin.  The fake
 * provider is plugin_test_provider.c.
 */
#include "crypto.h"
#include "envelope.h"
#include "gateway.h"
#include "host.h"
#include "log.h"
#include "plugin_test.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FIXED_RECEIVED_AT "2026-01-01T00:00:00.000Z"

struct route {
	char *method, *path; /* the whole path: /webhooks/<name><subpath> or /<type>/<name><subpath> */
	parley_http_cb cb;
};

struct completion {
	struct completion *next;
	parley_submit_cb done;
	parley_submit_ids_cb done_ids;
	void *arg;
	char **ids;
	size_t n;
};

struct fake_request {
	struct ptest_host *host;
	const char *method, *path, *query;
	const cJSON *headers;
	const char *body;
	size_t len;
};

struct ptest_host {
	const char *data_dir;
	parley_instance *inst;
	int submit_result;
	unsigned next_id;
	struct route *routes;
	size_t n_routes;
	cJSON *envelopes; /* submitted, in order */
	cJSON *kv;        /* key: value text */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	/* The answer of the request under way. */
	int answered;
	struct ptest_answer answer;
	/* Submit completions, run by the completer thread in order. */
	struct completion *queue, **tail;
	size_t running;
	int quit;
	pthread_t completer;
};

static struct ptest_host *bound;

/* The next deterministic id of the fixture: 26 digits, a valid ULID. */
static void next_id(struct ptest_host *h, char out[32])
{
	pthread_mutex_lock(&h->lock);
	unsigned n = ++h->next_id;
	pthread_mutex_unlock(&h->lock);
	snprintf(out, 32, "%026u", n);
}

static void *completer_main(void *arg)
{
	struct ptest_host *h = arg;
	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (!h->queue && !h->quit)
			pthread_cond_wait(&h->cv, &h->lock);
		if (!h->queue)
			break;
		struct completion *c = h->queue;
		h->queue = c->next;
		if (!h->queue)
			h->tail = &h->queue;
		h->running++;
		int result = h->submit_result;
		pthread_mutex_unlock(&h->lock);
		if (c->done)
			c->done(c->arg, result);
		else
			c->done_ids(c->arg, result, result == 0 ? (const char *const *)c->ids : NULL, c->n);
		for (size_t i = 0; i < c->n; i++)
			free(c->ids[i]);
		free(c->ids);
		free(c);
		pthread_mutex_lock(&h->lock);
		h->running--;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

struct ptest_host *ptest_host_new(const char *data_dir)
{
	struct ptest_host *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->data_dir = data_dir;
	h->tail = &h->queue;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cv, NULL);
	if (thread_start(&h->completer, completer_main, h, "parley:complete") != 0) {
		pthread_mutex_destroy(&h->lock);
		pthread_cond_destroy(&h->cv);
		free(h);
		return NULL;
	}
	return h;
}

void ptest_host_free(struct ptest_host *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->quit = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->completer, NULL);
	ptest_host_end(h);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cv);
	if (bound == h)
		bound = NULL;
	free(h);
}

void ptest_host_begin(struct ptest_host *h, parley_instance *inst, int submit_result)
{
	h->inst = inst;
	h->submit_result = submit_result;
	h->next_id = 0;
	h->envelopes = cJSON_CreateArray();
	h->kv = cJSON_CreateObject();
	bound = h;
}

void ptest_host_end(struct ptest_host *h)
{
	ptest_host_settle(h);
	ptest_answer_free(&h->answer);
	for (size_t i = 0; i < h->n_routes; i++) {
		free(h->routes[i].method);
		free(h->routes[i].path);
	}
	free(h->routes);
	h->routes = NULL;
	h->n_routes = 0;
	cJSON_Delete(h->envelopes);
	cJSON_Delete(h->kv);
	h->envelopes = h->kv = NULL;
	h->inst = NULL;
}

void ptest_host_settle(struct ptest_host *h)
{
	pthread_mutex_lock(&h->lock);
	while (h->queue || h->running)
		pthread_cond_wait(&h->cv, &h->lock);
	pthread_mutex_unlock(&h->lock);
}

cJSON *ptest_host_envelopes(struct ptest_host *h)
{
	pthread_mutex_lock(&h->lock);
	cJSON *a = cJSON_Duplicate(h->envelopes, 1);
	pthread_mutex_unlock(&h->lock);
	return a;
}

/* Envelopes: the real ones, with the fixture's ids and a fixed received_at. */
static void make_deterministic(struct ptest_host *h, parley_envelope *env)
{
	char id[32];
	next_id(h, id);
	envelope_set(env, "id", id);
	envelope_set(env, "received_at", FIXED_RECEIVED_AT);
}

static parley_envelope *f_envelope_new(parley_instance *inst, const char *kind, const char *direction)
{
	parley_envelope *env = host_table()->envelope_new(inst, kind, direction);
	if (env && bound)
		make_deterministic(bound, env);
	return env;
}

parley_envelope *ptest_host_outbound(struct ptest_host *h)
{
	parley_envelope *env = envelope_create("message", "outbound");
	if (!env)
		return NULL;
	make_deterministic(h, env);
	envelope_set(env, "channel", h->inst->name);
	envelope_set(env, "channel_type", h->inst->plugin->desc->name);
	return env;
}

static void f_new_id(char out[32])
{
	if (bound)
		next_id(bound, out);
	else
		ulid_new(out);
}

/* Submit: the checks of the real host, then the envelopes are recorded and completed from the completer. */
static int enqueue(parley_instance *inst, parley_envelope **envs, size_t n, parley_submit_cb done,
                   parley_submit_ids_cb done_ids, void *arg)
{
	struct ptest_host *h = bound;
	char why[320];
	if (!h || !envs || n == 0 || (!done && !done_ids))
		return PARLEY_EINVAL;
	for (size_t i = 0; i < n; i++) {
		const char *err = envelope_error(envs[i]);
		if (err || envelope_check_all(envs[i]->obj, why, sizeof(why)) != 0) {
			log_msg(PARLEY_LOG_WARN, inst->what, "submit refused: %s", err ? err : why);
			return PARLEY_EINVAL;
		}
	}
	struct completion *c = calloc(1, sizeof(*c));
	char **ids = calloc(n, sizeof(*ids));
	if (!c || !ids) {
		free(c);
		free(ids);
		return PARLEY_ENOMEM;
	}
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < n; i++) {
		ids[i] = strdup(envelope_get(envs[i], "id"));
		cJSON_AddItemToArray(h->envelopes, cJSON_Duplicate(envs[i]->obj, 1));
		envelope_destroy(envs[i]);
	}
	c->done = done;
	c->done_ids = done_ids;
	c->arg = arg;
	c->ids = ids;
	c->n = n;
	*h->tail = c;
	h->tail = &c->next;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static int f_submit(parley_instance *inst, parley_envelope **envs, size_t n, parley_submit_cb done, void *arg)
{
	return enqueue(inst, envs, n, done, NULL, arg);
}

static int f_submit_ids(parley_instance *inst, parley_envelope **envs, size_t n, parley_submit_ids_cb done, void *arg)
{
	return enqueue(inst, envs, n, NULL, done, arg);
}

/* HTTP: routes are kept by whole path; requests come from the fixture. */
static int add_route(parley_instance *inst, const char *prefix, const char *method, const char *subpath,
                     parley_http_cb cb)
{
	struct ptest_host *h = bound;
	if (!h || !method || !cb)
		return PARLEY_EINVAL;
	struct route *r = realloc(h->routes, (h->n_routes + 1) * sizeof(*r));
	if (!r)
		return PARLEY_ENOMEM;
	h->routes = r;
	r[h->n_routes].method = strdup(method);
	r[h->n_routes].path = str_printf("/%s/%s%s", prefix, inst->name, subpath ? subpath : "");
	r[h->n_routes].cb = cb;
	h->n_routes++;
	return 0;
}

static int f_http_route(parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb)
{
	return add_route(inst, "webhooks", method, subpath, cb);
}

static int f_http_route_public(parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb)
{
	return add_route(inst, inst->plugin->desc->name, method, subpath, cb);
}

#define REQ(r) ((struct fake_request *)(void *)(r))

static const char *f_http_method(parley_http_request *r)
{
	return REQ(r)->method;
}

static const char *f_http_path(parley_http_request *r)
{
	return REQ(r)->path;
}

static const char *f_http_query(parley_http_request *r)
{
	return REQ(r)->query;
}

static const char *f_http_header(parley_http_request *r, const char *name)
{
	const cJSON *item;
	cJSON_ArrayForEach(item, REQ(r)->headers)
	{
		if (item->string && strcasecmp(item->string, name) == 0)
			return cJSON_GetStringValue(item);
	}
	return NULL;
}

static const void *f_http_body(parley_http_request *r, size_t *len)
{
	*len = REQ(r)->len;
	return REQ(r)->body;
}

static void f_http_respond_with(parley_http_request *r, int status, const char *content_type,
                                const char *const *headers, const char *body, size_t len)
{
	(void)headers;
	struct ptest_host *h = REQ(r)->host;
	pthread_mutex_lock(&h->lock);
	if (!h->answered) {
		h->answered = 1;
		h->answer.status = status;
		h->answer.content_type = content_type ? strdup(content_type) : NULL;
		h->answer.body = malloc(len + 1);
		if (h->answer.body) {
			if (len)
				memcpy(h->answer.body, body, len);
			h->answer.body[len] = '\0';
			h->answer.len = len;
		}
	}
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->lock);
}

static void f_http_respond(parley_http_request *r, int status, const char *content_type, const char *body, size_t len)
{
	f_http_respond_with(r, status, content_type, NULL, body, len);
}

static parley_ws *f_ws_accept(parley_http_request *r, const struct parley_ws_callbacks *cb, void *arg)
{
	(void)cb;
	(void)arg;
	static const char msg[] = "parley test does not run WebSockets";
	f_http_respond(r, 400, "text/plain", msg, sizeof(msg) - 1);
	return NULL;
}

static int f_ws_send(parley_ws *ws, const char *text, size_t len)
{
	(void)ws;
	(void)text;
	(void)len;
	return PARLEY_ECLOSED;
}

static void f_ws_close(parley_ws *ws, int code, const char *reason)
{
	(void)ws;
	(void)code;
	(void)reason;
}

void ptest_answer_free(struct ptest_answer *a)
{
	free(a->content_type);
	free(a->body);
	memset(a, 0, sizeof(*a));
}

int ptest_host_request(struct ptest_host *h, const char *method, const char *path, const char *query,
                       const cJSON *headers, const char *body, size_t len, int64_t timeout_ms, struct ptest_answer *out,
                       char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	const struct route *route = NULL;
	for (size_t i = 0; i < h->n_routes && !route; i++)
		if (strcmp(h->routes[i].method, method) == 0 && strcmp(h->routes[i].path, path) == 0)
			route = &h->routes[i];
	if (!route) {
		struct strbuf sb;
		sb_init(&sb);
		for (size_t i = 0; i < h->n_routes; i++)
			sb_printf(&sb, "%s%s %s", i ? ", " : "", h->routes[i].method, h->routes[i].path);
		snprintf(why, why_len, "the plugin registered no route for %s %s (it has: %s)", method, path,
		         sb.len ? sb.buf : "none");
		sb_free(&sb);
		return -1;
	}
	struct fake_request req = {.host = h,
	                           .method = method,
	                           .path = path,
	                           .query = query ? query : "",
	                           .headers = headers,
	                           .body = body,
	                           .len = len};
	pthread_mutex_lock(&h->lock);
	h->answered = 0;
	ptest_answer_free(&h->answer); /* an answer that came after the last request's wait */
	pthread_mutex_unlock(&h->lock);
	route->cb(h->inst->data, (parley_http_request *)(void *)&req);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&h->lock);
	while (!h->answered)
		if (pthread_cond_timedwait(&h->cv, &h->lock, &until) != 0)
			break;
	if (h->answered) {
		*out = h->answer;
		memset(&h->answer, 0, sizeof(h->answer));
	}
	pthread_mutex_unlock(&h->lock);
	/* An answer after the wait would write into a request that is gone: the completions end first. */
	ptest_host_settle(h);
	return 0;
}

/* What a gateway would know. */
static const char *f_setting(parley_instance *inst, const char *name)
{
	(void)inst;
	if (strcmp(name, "http.public_url") == 0)
		return "https://parley.test";
	if (strcmp(name, "http.listen") == 0)
		return "127.0.0.1:8080";
	if (strcmp(name, "data_dir") == 0)
		return bound ? bound->data_dir : NULL;
	return NULL;
}

/* State in memory, per fixture. */
static int f_kv_get(parley_instance *inst, const char *key, char **val, size_t *len)
{
	(void)inst;
	struct ptest_host *h = bound;
	pthread_mutex_lock(&h->lock);
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h->kv, key));
	*val = v ? strdup(v) : NULL;
	pthread_mutex_unlock(&h->lock);
	if (!*val)
		return PARLEY_ENOENT;
	*len = strlen(*val);
	return 0;
}

static int f_kv_set(parley_instance *inst, const char *key, const void *val, size_t len)
{
	(void)inst;
	struct ptest_host *h = bound;
	char *copy = strndup(val, len);
	if (!copy)
		return PARLEY_ENOMEM;
	pthread_mutex_lock(&h->lock);
	cJSON_DeleteItemFromObjectCaseSensitive(h->kv, key);
	cJSON_AddStringToObject(h->kv, key, copy);
	pthread_mutex_unlock(&h->lock);
	free(copy);
	return 0;
}

static int f_counter_add(parley_instance *inst, const char *name, int64_t delta, int64_t *value)
{
	(void)inst;
	struct ptest_host *h = bound;
	char key[300];
	snprintf(key, sizeof(key), "counter/%s", name);
	pthread_mutex_lock(&h->lock);
	cJSON *c = cJSON_GetObjectItemCaseSensitive(h->kv, key);
	*value = (int64_t)(cJSON_IsNumber(c) ? c->valuedouble : 0) + delta;
	cJSON_DeleteItemFromObjectCaseSensitive(h->kv, key);
	cJSON_AddNumberToObject(h->kv, key, (double)*value);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static void f_metric_add(parley_instance *inst, const char *name, int64_t delta)
{
	(void)inst;
	(void)name;
	(void)delta;
}

static int f_attachment_put(parley_instance *inst, const char *message_id, size_t index, const void *data, size_t len,
                            const char *content_type, char *sha256_hex)
{
	(void)inst;
	(void)message_id;
	(void)index;
	(void)content_type;
	unsigned char d[32];
	crypto_sha256(data, len, d);
	if (sha256_hex)
		crypto_hex(d, 32, sha256_hex);
	return 0;
}

static void f_publish(parley_instance *inst, const char *topic, const char *json)
{
	(void)inst;
	(void)topic;
	(void)json;
}

static int f_store_query(parley_instance *inst, const char *op, const char *request_json, char **reply)
{
	(void)inst;
	(void)op;
	(void)request_json;
	*reply = strdup("parley test has no store");
	return PARLEY_ENOTSUP;
}

static uint64_t f_epoch(parley_instance *inst)
{
	(void)inst;
	return 0;
}

static int f_lease(parley_instance *inst, const char *name, int64_t ttl_ms)
{
	(void)inst;
	(void)name;
	(void)ttl_ms;
	return 0;
}

static int f_lease_release(parley_instance *inst, const char *name)
{
	(void)inst;
	(void)name;
	return 0;
}

static int f_op(parley_instance *inst, const char *op, const char *request_json, char **reply_json)
{
	(void)inst;
	(void)op;
	(void)request_json;
	*reply_json = strdup("{\"ok\":false,\"error\":{\"code\":\"not_supported\",\"message\":\"parley test runs no "
	                     "control ops\"}}");
	return PARLEY_ENOTSUP;
}

static void f_health(parley_instance *inst, int up, const char *why)
{
	log_msg(PARLEY_LOG_INFO, inst->what, "%s%s%s", up ? "up" : "down", up || !why ? "" : ": ",
	        up || !why ? "" : why);
}

static struct parley_host table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	table = *host_table();
	table.setting = f_setting;
	table.envelope_new = f_envelope_new;
	table.submit = f_submit;
	table.submit_ids = f_submit_ids;
	table.http_route = f_http_route;
	table.http_route_public = f_http_route_public;
	table.http_method = f_http_method;
	table.http_path = f_http_path;
	table.http_query = f_http_query;
	table.http_header = f_http_header;
	table.http_body = f_http_body;
	table.http_respond = f_http_respond;
	table.http_respond_with = f_http_respond_with;
	table.ws_accept = f_ws_accept;
	table.ws_send = f_ws_send;
	table.ws_close = f_ws_close;
	table.kv_get = f_kv_get;
	table.kv_set = f_kv_set;
	table.counter_add = f_counter_add;
	table.metric_add = f_metric_add;
	table.attachment_put = f_attachment_put;
	table.publish = f_publish;
	table.store_query = f_store_query;
	table.new_id = f_new_id;
	table.epoch = f_epoch;
	table.lease = f_lease;
	table.lease_release = f_lease_release;
	table.op = f_op;
	table.health = f_health;
}

const struct parley_host *ptest_host_table(void)
{
	pthread_once(&table_once, table_init);
	return &table;
}
