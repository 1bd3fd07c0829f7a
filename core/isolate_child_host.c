/*
 * isolate_child_host.c: the host table of an isolated plugin's child
 * (isolate_child.h).  What needs the gateway (submit, routes and answers,
 * key-value state, the store, ops, leases, metrics, health) is a call or
 * a note over the rpc, as the gateway's host table would do it in
 * process; the rest is the core's own code.  WebSockets: isolate_child_ws.c.
 */
#include "envelope.h"
#include "host.h"
#include "isolate_child.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CALL_TIMEOUT_MS 30000

_Thread_local const char *child_rid;
_Thread_local int child_in_call;

static struct child *child_of(parley_instance *inst)
{
	return (struct child *)inst;
}

/* A call to the gateway: its rv (or the rpc's error), with the reply kept when wanted. */
static int call(struct child *ch, const char *op, cJSON *hdr, const void *body, size_t len, cJSON **reply, void **rbody,
                size_t *rlen)
{
	cJSON *r = NULL;
	int rv = iso_rpc_call(ch->rpc, op, hdr, body, len, CALL_TIMEOUT_MS, &r, rbody, rlen);
	if (rv == 0)
		rv = (int)iso_num(r, "rv");
	if (reply)
		*reply = r;
	else
		cJSON_Delete(r);
	return rv;
}

static cJSON *hdr_str(const char *key, const char *value)
{
	cJSON *h = cJSON_CreateObject();
	cJSON_AddStringToObject(h, key, value ? value : "");
	return h;
}

static const char *c_setting(parley_instance *inst, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(child_of(inst)->settings, name));
}

/*
 * submit and submit_ids: the envelopes are checked here as the gateway's
 * submit checks them, then sent in a note; the gateway's completion
 * arrives as "submitted" (also when it refused them after all, draining).
 */
static int submit_any(parley_instance *inst, parley_envelope **envs, size_t n, parley_submit_cb done,
                      parley_submit_ids_cb done_ids, void *arg)
{
	struct child *ch = child_of(inst);
	if (!envs || n == 0 || (!done && !done_ids))
		return PARLEY_EINVAL;
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "[");
	for (size_t i = 0; i < n; i++) {
		char why[160];
		const char *err = envelope_error(envs[i]);
		if (!err && envelope_validate(envs[i], why) != 0)
			err = why;
		size_t len;
		const char *text = err ? NULL : envelope_text(envs[i], &len);
		if (!text) {
			log_msg(PARLEY_LOG_WARN, inst->what, "submit refused: %s", err ? err : "out of memory");
			sb_free(&sb);
			return err ? PARLEY_EINVAL : PARLEY_ENOMEM;
		}
		if (i)
			sb_adds(&sb, ",");
		sb_add(&sb, text, len);
	}
	sb_adds(&sb, "]");
	struct submission *s = calloc(1, sizeof(*s));
	if (!s) {
		sb_free(&sb);
		return PARLEY_ENOMEM;
	}
	s->done = done;
	s->done_ids = done_ids;
	s->arg = arg;
	pthread_mutex_lock(&ch->lock);
	s->token = ++ch->next_token;
	s->next = ch->subs;
	ch->subs = s;
	pthread_mutex_unlock(&ch->lock);
	cJSON *h = cJSON_CreateObject();
	cJSON_AddNumberToObject(h, "token", (double)s->token);
	cJSON_AddBoolToObject(h, "with_ids", done_ids != NULL);
	if (child_rid)
		cJSON_AddStringToObject(h, "rid", child_rid);
	int rv = iso_rpc_note(ch->rpc, "submit", h, sb.buf, sb.len);
	sb_free(&sb);
	pthread_mutex_lock(&ch->lock);
	if (rv == 0) {
		s->returned = 1;
		pthread_cond_broadcast(&ch->cond);
	} else {
		for (struct submission **pp = &ch->subs; *pp; pp = &(*pp)->next)
			if (*pp == s) {
				*pp = s->next;
				break;
			}
	}
	pthread_mutex_unlock(&ch->lock);
	if (rv != 0) {
		free(s);
		return PARLEY_ECLOSED;
	}
	for (size_t i = 0; i < n; i++)
		envelope_destroy(envs[i]); /* the gateway has its copies: ours are the host's to free */
	return 0;
}

static int c_submit(parley_instance *inst, parley_envelope **envs, size_t n, parley_submit_cb done, void *arg)
{
	return submit_any(inst, envs, n, done, NULL, arg);
}

static int c_submit_ids(parley_instance *inst, parley_envelope **envs, size_t n, parley_submit_ids_cb done, void *arg)
{
	return submit_any(inst, envs, n, NULL, done, arg);
}

void child_submitted(struct child *ch, const cJSON *hdr)
{
	uint64_t token = (uint64_t)iso_num(hdr, "token");
	pthread_mutex_lock(&ch->lock);
	struct submission *s = NULL;
	for (struct submission **pp = &ch->subs; *pp; pp = &(*pp)->next)
		if ((*pp)->token == token) {
			s = *pp;
			while (!s->returned)
				pthread_cond_wait(&ch->cond, &ch->lock);
			*pp = s->next;
			break;
		}
	pthread_mutex_unlock(&ch->lock);
	if (!s)
		return;
	int result = (int)iso_num(hdr, "result");
	if (s->done) {
		s->done(s->arg, result);
	} else {
		const cJSON *ids = cJSON_GetObjectItemCaseSensitive(hdr, "ids");
		size_t n = (size_t)cJSON_GetArraySize(ids);
		const char **v = result == 0 && n ? calloc(n, sizeof(char *)) : NULL;
		for (size_t i = 0; v && i < n; i++)
			v[i] = cJSON_GetStringValue(cJSON_GetArrayItem(ids, (int)i));
		s->done_ids(s->arg, v ? result : result ? result : PARLEY_EINTERNAL, v, n);
		free(v);
	}
	free(s);
}

static int add_route(parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb, int pub)
{
	struct child *ch = child_of(inst);
	if (!method || !subpath || !cb || (subpath[0] && subpath[0] != '/'))
		return PARLEY_EINVAL;
	pthread_mutex_lock(&ch->lock);
	struct route *nr = realloc(ch->routes, (ch->n_routes + 1) * sizeof(*nr));
	if (nr) {
		ch->routes = nr;
		ch->routes[ch->n_routes++] = (struct route){strdup(method), strdup(subpath), pub, cb};
	}
	pthread_mutex_unlock(&ch->lock);
	if (!nr)
		return PARLEY_ENOMEM;
	cJSON *h = hdr_str("method", method);
	cJSON_AddStringToObject(h, "sub", subpath);
	cJSON_AddBoolToObject(h, "public", pub);
	return call(ch, "route", h, NULL, 0, NULL, NULL, NULL);
}

static int c_http_route(parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb)
{
	return add_route(inst, method, subpath, cb, 0);
}

static int c_http_route_public(parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb)
{
	return add_route(inst, method, subpath, cb, 1);
}

static const char *c_http_method(parley_http_request *req)
{
	return ((struct creq *)req)->method;
}

static const char *c_http_path(parley_http_request *req)
{
	return ((struct creq *)req)->path;
}

static const char *c_http_query(parley_http_request *req)
{
	return ((struct creq *)req)->query;
}

static const char *c_http_header(parley_http_request *req, const char *name)
{
	const cJSON *hs = ((struct creq *)req)->headers;
	int n = cJSON_GetArraySize(hs);
	for (int i = 0; name && i + 1 < n; i += 2) {
		const char *k = cJSON_GetStringValue(cJSON_GetArrayItem(hs, i));
		if (k && strcasecmp(k, name) == 0)
			return cJSON_GetStringValue(cJSON_GetArrayItem(hs, i + 1));
	}
	return NULL;
}

static const void *c_http_body(parley_http_request *req, size_t *len)
{
	struct creq *r = (struct creq *)req;
	*len = r->len;
	return r->body ? r->body : "";
}

void child_req_free(struct creq *r)
{
	free(r->method);
	free(r->path);
	free(r->query);
	cJSON_Delete(r->headers);
	free(r->body);
	free(r);
}

static void c_http_respond_with(parley_http_request *req, int status, const char *content_type,
                                const char *const *headers, const char *body, size_t len)
{
	struct creq *r = (struct creq *)req;
	cJSON *h = hdr_str("content_type", content_type ? content_type : "text/plain");
	cJSON_AddNumberToObject(h, "token", (double)r->token);
	cJSON_AddNumberToObject(h, "status", status);
	cJSON *hs = cJSON_AddArrayToObject(h, "headers");
	for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2) {
		cJSON_AddItemToArray(hs, cJSON_CreateString(headers[i]));
		cJSON_AddItemToArray(hs, cJSON_CreateString(headers[i + 1]));
	}
	iso_rpc_note(r->ch->rpc, "respond", h, body, body ? len : 0);
	child_req_free(r);
}

void child_respond(parley_http_request *req, int status, const char *content_type, const char *body, size_t len)
{
	c_http_respond_with(req, status, content_type, NULL, body, len);
}

static int c_kv_get(parley_instance *inst, const char *key, char **val, size_t *len)
{
	void *b = NULL;
	size_t n = 0;
	int rv = call(child_of(inst), "kv_get", hdr_str("key", key), NULL, 0, NULL, &b, &n);
	if (rv == 0 && !b)
		b = strdup("");
	if (rv != 0) {
		free(b);
		return rv;
	}
	*val = b;
	if (len)
		*len = n;
	return b ? 0 : PARLEY_ENOMEM;
}

static int c_kv_set(parley_instance *inst, const char *key, const void *val, size_t len)
{
	return call(child_of(inst), "kv_set", hdr_str("key", key), val, len, NULL, NULL, NULL);
}

static void c_metric_add(parley_instance *inst, const char *name, int64_t delta)
{
	cJSON *h = hdr_str("name", name);
	cJSON_AddNumberToObject(h, "delta", (double)delta);
	iso_rpc_note(child_of(inst)->rpc, "metric_add", h, NULL, 0);
}

static int c_attachment_put(parley_instance *inst, const char *message_id, size_t index, const void *data, size_t len,
                            const char *content_type, char *sha256_hex)
{
	cJSON *h = hdr_str("message_id", message_id);
	cJSON_AddNumberToObject(h, "index", (double)index);
	cJSON_AddStringToObject(h, "content_type", content_type ? content_type : "");
	cJSON *reply = NULL;
	int rv = call(child_of(inst), "attachment_put", h, data, len, &reply, NULL, NULL);
	if (rv == 0 && sha256_hex)
		snprintf(sha256_hex, 65, "%s", iso_str(reply, "sha256"));
	cJSON_Delete(reply);
	return rv;
}

static void c_publish(parley_instance *inst, const char *topic, const char *json)
{
	if (topic && json)
		iso_rpc_note(child_of(inst)->rpc, "publish", hdr_str("topic", topic), json, strlen(json) + 1);
}

/* store_query and op: a request text in, a malloc'd reply text out. */
static int text_call(parley_instance *inst, const char *what, const char *op, const char *request_json, char **out)
{
	const char *req = request_json ? request_json : "{}";
	void *b = NULL;
	size_t n = 0;
	int rv = call(child_of(inst), what, hdr_str("op", op), req, strlen(req) + 1, NULL, &b, &n);
	*out = b;
	return rv;
}

static int c_store_query(parley_instance *inst, const char *op, const char *request_json, char **reply)
{
	return text_call(inst, "store_query", op, request_json, reply);
}

static int c_op(parley_instance *inst, const char *op, const char *request_json, char **reply_json)
{
	return text_call(inst, "op", op, request_json, reply_json);
}

/*
 * The gateway sends its epoch with each webhook and envelope: inside those
 * calls it is current without asking; a plugin's own thread (a poller) asks.
 */
static uint64_t c_epoch(parley_instance *inst)
{
	struct child *ch = child_of(inst);
	cJSON *reply = NULL;
	if (child_in_call || call(ch, "epoch", NULL, NULL, 0, &reply, NULL, NULL) != 0) {
		cJSON_Delete(reply);
		return atomic_load(&ch->epoch);
	}
	uint64_t e = (uint64_t)iso_num(reply, "epoch");
	cJSON_Delete(reply);
	return e;
}

static int c_lease(parley_instance *inst, const char *name, int64_t ttl_ms)
{
	cJSON *h = hdr_str("name", name);
	cJSON_AddNumberToObject(h, "ttl_ms", (double)ttl_ms);
	return call(child_of(inst), "lease", h, NULL, 0, NULL, NULL, NULL);
}

static int c_lease_release(parley_instance *inst, const char *name)
{
	return call(child_of(inst), "lease_release", hdr_str("name", name), NULL, 0, NULL, NULL, NULL);
}

static int c_counter_add(parley_instance *inst, const char *name, int64_t delta, int64_t *value)
{
	cJSON *h = hdr_str("name", name);
	cJSON_AddNumberToObject(h, "delta", (double)delta);
	cJSON *reply = NULL;
	int rv = call(child_of(inst), "counter_add", h, NULL, 0, &reply, NULL, NULL);
	if (rv == 0 && value)
		*value = iso_num(reply, "value");
	cJSON_Delete(reply);
	return rv;
}

static void c_health(parley_instance *inst, int up, const char *why)
{
	cJSON *h = hdr_str("why", why);
	cJSON_AddNumberToObject(h, "up", up);
	iso_rpc_note(child_of(inst)->rpc, "health", h, NULL, 0);
}

void child_host_init(struct parley_host *h)
{
	*h = *host_table();
	h->setting = c_setting;
	h->submit = c_submit;
	h->submit_ids = c_submit_ids;
	h->http_route = c_http_route;
	h->http_route_public = c_http_route_public;
	h->http_method = c_http_method;
	h->http_path = c_http_path;
	h->http_query = c_http_query;
	h->http_header = c_http_header;
	h->http_body = c_http_body;
	h->http_respond = child_respond;
	h->http_respond_with = c_http_respond_with;
	h->ws_accept = child_ws_accept;
	h->ws_send = child_ws_send;
	h->ws_close = child_ws_close;
	h->kv_get = c_kv_get;
	h->kv_set = c_kv_set;
	h->metric_add = c_metric_add;
	h->attachment_put = c_attachment_put;
	h->publish = c_publish;
	h->store_query = c_store_query;
	h->op = c_op;
	h->epoch = c_epoch;
	h->lease = c_lease;
	h->lease_release = c_lease_release;
	h->counter_add = c_counter_add;
	h->health = c_health;
}
