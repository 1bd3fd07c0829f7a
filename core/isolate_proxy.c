/*
 * isolate_proxy.c: the gateway's side of an isolated instance's calls.
 * The proxy descriptor's channel_send, process, after_commit and HTTP
 * routes send the call to the child; what the child asks of the host
 * (submit, routes, answers, key-value state, the store, ...) runs here
 * through the host table, as the instance, exactly as if the plugin were
 * in the process.
 *
 * When the child is down nothing waits for it: a webhook is answered 503
 * with Retry-After (the provider retries), a send is a retry for the
 * outbox, and a step fails its envelope, so its batch is not committed
 * and its webhook gets 503.
 */
#include "envelope.h"
#include "gateway.h"
#include "host.h"
#include "http.h"
#include "http_server.h"
#include "isolate.h"
#include "isolate_internal.h"
#include "log.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEND_TIMEOUT_MS    120000
#define PROCESS_TIMEOUT_MS 10000
#define HOST_TIMEOUT_MS    30000

static void respond_down(parley_http_request *req, const parley_instance *inst, const char *why)
{
	char *msg = str_printf("%s is restarting (%s): retry later", inst->what, why);
	char *body = http_error_json(msg ? msg : "restarting: retry later");
	static const char *const headers[] = {"Retry-After", "1", NULL};
	http_req_respond_with(req, 503, "application/json", headers, body, body ? strlen(body) : 0);
	free(body);
	free(msg);
}

void iso_fail_requests(struct isolate *iso, const char *why)
{
	pthread_mutex_lock(&iso->lock);
	struct iso_req *list = iso->reqs;
	iso->reqs = NULL;
	pthread_mutex_unlock(&iso->lock);
	while (list) {
		struct iso_req *next = list->next;
		respond_down(list->req, iso->inst, why);
		free(list);
		list = next;
	}
}

struct iso_req *iso_take_request(struct isolate *iso, uint64_t token)
{
	pthread_mutex_lock(&iso->lock);
	struct iso_req *r = NULL;
	for (struct iso_req **pp = &iso->reqs; *pp; pp = &(*pp)->next)
		if ((*pp)->token == token) {
			r = *pp;
			*pp = r->next;
			break;
		}
	pthread_mutex_unlock(&iso->lock);
	return r;
}

/* A webhook or public route of the instance: handed to the child, answered when it answers. */
static void on_request(struct isolate *iso, parley_http_request *req, int public_route)
{
	parley_instance *inst = iso->inst;
	struct iso_rpc *rpc = iso_rpc_up(iso);
	if (!rpc) {
		respond_down(req, inst, "its isolated plugin is down");
		return;
	}
	const char *path = http_server_path(req);
	size_t skip = public_route ? 2 + strlen(iso->desc.name) + strlen(inst->name) : 10 + strlen(inst->name);
	cJSON *h = cJSON_CreateObject();
	struct iso_req *pr = calloc(1, sizeof(*pr));
	pthread_mutex_lock(&iso->lock);
	uint64_t token = ++iso->next_token;
	if (pr) {
		pr->token = token;
		pr->req = req;
		pr->next = iso->reqs;
		iso->reqs = pr;
	}
	pthread_mutex_unlock(&iso->lock);
	cJSON_AddNumberToObject(h, "token", (double)token);
	cJSON_AddBoolToObject(h, "public", public_route);
	cJSON_AddStringToObject(h, "method", http_server_method(req));
	cJSON_AddStringToObject(h, "path", path);
	cJSON_AddStringToObject(h, "sub", strlen(path) >= skip ? path + skip : "");
	cJSON_AddStringToObject(h, "query", http_server_query(req));
	cJSON_AddStringToObject(h, "rid", http_server_request_id(req));
	cJSON_AddNumberToObject(h, "epoch", (double)atomic_load(&inst->gw->epoch));
	cJSON *hs = cJSON_AddArrayToObject(h, "headers");
	const char *n, *v;
	for (size_t i = 0; http_server_header_at(req, i, &n, &v) == 0; i++) {
		cJSON_AddItemToArray(hs, cJSON_CreateString(n));
		cJSON_AddItemToArray(hs, cJSON_CreateString(v ? v : ""));
	}
	size_t len = 0;
	const void *body = http_server_body(req, &len);
	int rv = pr ? iso_rpc_note(rpc, "http", h, body, len) : (cJSON_Delete(h), PARLEY_ENOMEM);
	iso_rpc_release(rpc);
	if (rv != 0) {
		struct iso_req *r = iso_take_request(iso, token);
		if (r) {
			respond_down(req, inst, "its isolated plugin did not take the request");
			free(r);
		}
	}
}

static void on_webhook(void *data, parley_http_request *req)
{
	on_request(data, req, 0);
}

static void on_public(void *data, parley_http_request *req)
{
	on_request(data, req, 1);
}

/*
 * A child that does not answer a call in time is stuck (a deadlock, a
 * loop): kill it, and the supervisor starts a new one as after a crash.
 */
static void kill_stuck(struct isolate *iso, const char *what)
{
	pthread_mutex_lock(&iso->lock);
	pid_t pid = iso->state == ISO_UP ? iso->pid : 0;
	pthread_mutex_unlock(&iso->lock);
	if (pid > 0) {
		log_msg(PARLEY_LOG_ERROR, iso->inst->what,
		        "isolated plugin (pid %d) did not answer %s in time: killing it", (int)pid, what);
		kill(pid, SIGKILL);
	}
}

static void fill_send_retry(struct parley_send_result *res, const char *why)
{
	res->outcome = PARLEY_SEND_RETRY;
	snprintf(res->error_text, sizeof(res->error_text), "%s", why);
	res->retry_after_ms = 1000;
}

static int p_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct isolate *iso = data;
	struct iso_rpc *rpc = iso_rpc_up(iso);
	if (!rpc) {
		fill_send_retry(res, "the channel's isolated plugin is down (restarting)");
		return 0;
	}
	char *json = envelope_json(env);
	cJSON *reply = NULL;
	int rv = json ? iso_rpc_call(rpc, "send", NULL, json, strlen(json), SEND_TIMEOUT_MS, &reply, NULL, NULL)
	              : PARLEY_ENOMEM;
	free(json);
	iso_rpc_release(rpc);
	if (rv == PARLEY_ETIMEDOUT)
		kill_stuck(iso, "a send");
	if (rv != 0) {
		/* It may have reached the provider before the child died: the retry is at least once, as a crash is. */
		fill_send_retry(res, rv == PARLEY_ETIMEDOUT ? "the channel's isolated plugin did not answer the send"
		                                            : "the channel's isolated plugin died during the send");
		cJSON_Delete(reply);
		return 0;
	}
	res->outcome = (int)iso_num(reply, "outcome");
	snprintf(res->provider_id, sizeof(res->provider_id), "%s", iso_str(reply, "provider_id"));
	snprintf(res->error_code, sizeof(res->error_code), "%s", iso_str(reply, "error_code"));
	snprintf(res->error_text, sizeof(res->error_text), "%s", iso_str(reply, "error_text"));
	res->retry_after_ms = iso_num(reply, "retry_after_ms");
	cJSON_Delete(reply);
	return 0;
}

/* env takes the child's version of itself (its JSON text, len bytes). */
static int replace_envelope(parley_envelope *env, const char *text, size_t len, const char *error)
{
	cJSON *obj = cJSON_ParseWithLength(text, len);
	if (!cJSON_IsObject(obj)) {
		cJSON_Delete(obj);
		return PARLEY_EINTERNAL;
	}
	cJSON_Delete(env->obj);
	env->obj = obj;
	env->text = NULL;
	free(env->printed);
	env->printed = NULL;
	if (error && error[0] && !env->error)
		env->error = strdup(error);
	return 0;
}

static int p_process(void *data, parley_envelope *env)
{
	struct isolate *iso = data;
	struct iso_rpc *rpc = iso_rpc_up(iso);
	if (!rpc)
		return PARLEY_EIO; /* not stored: the provider retries once the step is back */
	size_t len;
	const char *text = envelope_text(env, &len);
	cJSON *h = cJSON_CreateObject();
	cJSON_AddNumberToObject(h, "epoch", (double)atomic_load(&iso->inst->gw->epoch));
	cJSON *reply = NULL;
	void *out = NULL;
	size_t out_len = 0;
	int rv = text ? iso_rpc_call(rpc, "process", h, text, len, PROCESS_TIMEOUT_MS, &reply, &out, &out_len)
	              : (cJSON_Delete(h), PARLEY_ENOMEM);
	iso_rpc_release(rpc);
	if (rv == 0) {
		rv = (int)iso_num(reply, "rv");
		if (out && replace_envelope(env, out, out_len, iso_str(reply, "error")) != 0)
			rv = PARLEY_EINTERNAL;
	} else {
		if (rv == PARLEY_ETIMEDOUT)
			kill_stuck(iso, "an envelope");
		log_msg(PARLEY_LOG_WARN, iso->inst->what, "envelope %s not processed: the isolated plugin %s",
		        envelope_get(env, "id") ? envelope_get(env, "id") : "-",
		        rv == PARLEY_ETIMEDOUT ? "did not answer" : "died");
		rv = PARLEY_EIO;
	}
	cJSON_Delete(reply);
	free(out);
	return rv;
}

static void p_after_commit(void *data, const parley_envelope *env, int result)
{
	struct isolate *iso = data;
	struct iso_rpc *rpc = iso_rpc_up(iso);
	if (!rpc)
		return; /* a new child starts with no memory of what its predecessor passed */
	char *json = envelope_json(env);
	cJSON *h = cJSON_CreateObject();
	cJSON_AddNumberToObject(h, "result", result);
	if (json)
		iso_rpc_note_serial(rpc, "after_commit", h, json, strlen(json));
	else
		cJSON_Delete(h);
	free(json);
	iso_rpc_release(rpc);
}

void iso_proxy_desc(struct isolate *iso)
{
	const struct parley_plugin *r = iso->real->desc;
	memset(&iso->desc, 0, sizeof(iso->desc));
	iso->desc.magic = r->magic;
	iso->desc.abi_major = r->abi_major;
	iso->desc.abi_minor = r->abi_minor;
	iso->desc.struct_size = sizeof(iso->desc);
	iso->desc.kind = r->kind;
	iso->desc.name = r->name;
	iso->desc.version = r->version;
	iso->desc.description = r->description;
	iso->desc.config = r->config;
	iso->desc.channel_send = r->channel_send ? p_send : NULL;
	iso->desc.process = r->process ? p_process : NULL;
	iso->desc.after_commit = r->after_commit ? p_after_commit : NULL;
}

/* ------------------------------------------------ the child's host calls */

/* What a submit completion tells the child: its token, the result, the ids. */
struct submitted {
	struct iso_rpc *rpc; /* held: the child that submitted, even if a newer one runs now */
	uint64_t token;
};

static void tell_submitted(struct submitted *s, int result, const char *const *ids, size_t n)
{
	cJSON *h = cJSON_CreateObject();
	cJSON_AddNumberToObject(h, "token", (double)s->token);
	cJSON_AddNumberToObject(h, "result", result);
	if (ids) {
		cJSON *a = cJSON_AddArrayToObject(h, "ids");
		for (size_t i = 0; i < n; i++)
			cJSON_AddItemToArray(a, cJSON_CreateString(ids[i]));
	}
	iso_rpc_note(s->rpc, "submitted", h, NULL, 0);
	iso_rpc_release(s->rpc);
	free(s);
}

static void submitted_cb(void *arg, int result)
{
	tell_submitted(arg, result, NULL, 0);
}

static void submitted_ids_cb(void *arg, int result, const char *const *ids, size_t n)
{
	tell_submitted(arg, result, ids, n);
}

/*
 * The child's submission (a note: the child checked its envelopes as
 * submit_check does, so a refusal here is rare, and told as the
 * completion's result).
 */
static void do_submit(struct isolate *iso, struct iso_rpc *rpc, const cJSON *hdr, const void *body, size_t len)
{
	parley_instance *inst = iso->inst;
	struct submitted *s = calloc(1, sizeof(*s));
	if (!s) {
		log_msg(PARLEY_LOG_ERROR, inst->what, "out of memory taking a submission of the isolated plugin");
		return;
	}
	s->rpc = rpc;
	s->token = (uint64_t)iso_num(hdr, "token");
	iso_rpc_hold(rpc);
	cJSON *arr = cJSON_ParseWithLength(body, len);
	int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
	parley_envelope **envs = n > 0 ? calloc((size_t)n, sizeof(*envs)) : NULL;
	int rv = envs ? 0 : n > 0 ? PARLEY_ENOMEM : PARLEY_EINVAL;
	for (int i = 0; envs && i < n; i++) {
		envs[i] = calloc(1, sizeof(**envs));
		if (envs[i])
			envs[i]->obj = cJSON_DetachItemFromArray(arr, 0);
		if (!envs[i] || !cJSON_IsObject(envs[i]->obj)) {
			rv = PARLEY_EINVAL;
		} else if (inst->plugin->desc->kind == PARLEY_KIND_CHANNEL) {
			/* The child speaks for this channel only. */
			envelope_set(envs[i], "channel", inst->name);
			envelope_set(envs[i], "channel_type", inst->plugin->desc->name);
		}
	}
	cJSON_Delete(arr);
	char rid[32];
	snprintf(rid, sizeof(rid), "%s", iso_str(hdr, "rid"));
	log_set_request(rid[0] ? rid : NULL);
	if (rv == 0)
		rv = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hdr, "with_ids"))
		             ? host_table()->submit_ids(inst, envs, (size_t)n, submitted_ids_cb, s)
		             : host_table()->submit(inst, envs, (size_t)n, submitted_cb, s);
	log_set_request(NULL);
	if (rv != 0) {
		for (int i = 0; envs && i < n; i++)
			envelope_destroy(envs[i]);
		tell_submitted(s, rv, NULL, 0);
	}
	free(envs);
}

static void do_respond(struct isolate *iso, const cJSON *hdr, const void *body, size_t len)
{
	struct iso_req *r = iso_take_request(iso, (uint64_t)iso_num(hdr, "token"));
	if (!r)
		return; /* answered already: the child was taken for dead */
	const cJSON *hs = cJSON_GetObjectItemCaseSensitive(hdr, "headers");
	int nh = cJSON_GetArraySize(hs);
	const char **headers = calloc((size_t)nh + 1, sizeof(char *));
	for (int i = 0; headers && i + 1 < nh; i += 2) {
		headers[i] = cJSON_GetStringValue(cJSON_GetArrayItem(hs, i));
		headers[i + 1] = cJSON_GetStringValue(cJSON_GetArrayItem(hs, i + 1));
		if (!headers[i] || !headers[i + 1])
			headers[i] = headers[i + 1] = NULL;
	}
	int status = (int)iso_num(hdr, "status");
	http_req_respond_with(r->req, status >= 100 && status <= 599 ? status : 500, iso_str(hdr, "content_type"),
	                      headers && nh > 1 ? headers : NULL, body, len);
	free(headers);
	free(r);
}

/* The child sends request texts with their NUL: NULL when these bytes are not one. */
static const char *text_of(const void *body, size_t len)
{
	return len && ((const char *)body)[len - 1] == '\0' ? body : NULL;
}

/* Reply {rv}. */
static void reply_rv(cJSON **reply, int rv)
{
	if (!reply)
		return;
	*reply = cJSON_CreateObject();
	cJSON_AddNumberToObject(*reply, "rv", rv);
}

static void give_body(void **reply_body, size_t *reply_len, char *bytes, size_t n)
{
	*reply_body = bytes;
	*reply_len = bytes ? n : 0;
}

void iso_parent_handler(void *arg, struct iso_rpc *rpc, const char *op, const cJSON *hdr, const void *body, size_t len,
                        cJSON **reply, void **reply_body, size_t *reply_len)
{
	struct isolate *iso = arg;
	parley_instance *inst = iso->inst;
	const struct parley_host *H = host_table();
	if (strcmp(op, "respond") == 0) {
		do_respond(iso, hdr, body, len);
	} else if (strcmp(op, "submit") == 0) {
		do_submit(iso, rpc, hdr, body, len);
	} else if (strcmp(op, "ws_accept") == 0 && reply) {
		iso_ws_accept(iso, rpc, hdr, reply);
	} else if (strcmp(op, "ws_send") == 0) {
		iso_ws_send(iso, hdr, body, len);
	} else if (strcmp(op, "ws_close") == 0) {
		iso_ws_close(iso, hdr);
	} else if (strcmp(op, "route") == 0) {
		int pub = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hdr, "public"));
		int rv = pub ? H->http_route_public(inst, iso_str(hdr, "method"), iso_str(hdr, "sub"), on_public)
		             : H->http_route(inst, iso_str(hdr, "method"), iso_str(hdr, "sub"), on_webhook);
		reply_rv(reply, rv == PARLEY_EEXIST ? 0 : rv); /* a restarted child registers its routes again */
	} else if (strcmp(op, "kv_get") == 0) {
		char *val = NULL;
		size_t n = 0;
		reply_rv(reply, H->kv_get(inst, iso_str(hdr, "key"), &val, &n));
		give_body(reply_body, reply_len, val, n);
	} else if (strcmp(op, "kv_set") == 0) {
		reply_rv(reply, H->kv_set(inst, iso_str(hdr, "key"), body, len));
	} else if (strcmp(op, "store_query") == 0 || strcmp(op, "op") == 0) {
		char *out = NULL;
		const char *text = text_of(body, len);
		int rv = !text          ? PARLEY_EINVAL
		         : op[0] == 's' ? H->store_query(inst, iso_str(hdr, "op"), text, &out)
		                        : H->op(inst, iso_str(hdr, "op"), text, &out);
		reply_rv(reply, rv);
		give_body(reply_body, reply_len, out, out ? strlen(out) : 0);
	} else if (strcmp(op, "attachment_put") == 0) {
		char sha[65] = "";
		const char *mid = iso_str(hdr, "message_id");
		int rv = H->attachment_put(inst, mid[0] ? mid : NULL, (size_t)iso_num(hdr, "index"), body, len,
		                           iso_str(hdr, "content_type"), sha);
		reply_rv(reply, rv);
		cJSON_AddStringToObject(*reply, "sha256", sha);
	} else if (strcmp(op, "publish") == 0) {
		if (text_of(body, len))
			H->publish(inst, iso_str(hdr, "topic"), body);
	} else if (strcmp(op, "metric_add") == 0) {
		H->metric_add(inst, iso_str(hdr, "name"), iso_num(hdr, "delta"));
	} else if (strcmp(op, "health") == 0) {
		H->health(inst, (int)iso_num(hdr, "up"), iso_str(hdr, "why"));
	} else if (strcmp(op, "lease") == 0) {
		reply_rv(reply, H->lease(inst, iso_str(hdr, "name"), iso_num(hdr, "ttl_ms")));
	} else if (strcmp(op, "lease_release") == 0) {
		reply_rv(reply, H->lease_release(inst, iso_str(hdr, "name")));
	} else if (strcmp(op, "counter_add") == 0) {
		int64_t value = 0;
		reply_rv(reply, H->counter_add(inst, iso_str(hdr, "name"), iso_num(hdr, "delta"), &value));
		cJSON_AddNumberToObject(*reply, "value", (double)value);
	} else if (strcmp(op, "epoch") == 0) {
		reply_rv(reply, 0);
		cJSON_AddNumberToObject(*reply, "epoch", (double)H->epoch(inst));
	} else if (reply) {
		log_msg(PARLEY_LOG_WARN, inst->what, "the isolated plugin asked for '%s', which the host does not know",
		        op);
		reply_rv(reply, PARLEY_ENOTSUP);
	}
}
