/*
 * isolate_child.c: `parley plugin-host PLUGIN NAME URL`, the child process
 * an isolated instance runs in (core/isolate.c starts it; never by hand).
 *
 * It loads the one plugin, dials the gateway on URL and runs the instance
 * behind a host table of its own: what needs the gateway (submit, routes,
 * answers, key-value state, the store, metrics, health) becomes a call or
 * a note to it; the rest (config, envelopes, timers, checks, crypto, the
 * log on the gateway's stderr) is the core's own code, run here.
 * Plugin callbacks run on the rpc's workers, never on its receive thread,
 * since a callback may call the gateway and wait for the answer.  The
 * child ends when the gateway goes away.
 */
#include "isolate_child.h"
#include "config.h"
#include "envelope.h"
#include "gateway.h"
#include "host.h"
#include "isolate.h"
#include "log.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* The instance config as the gateway sent it (JSON, scalars as strings), as a config tree. */
static struct cfg_node *node_of(const cJSON *j)
{
	struct cfg_node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
		int obj = cJSON_IsObject(j);
		size_t count = (size_t)cJSON_GetArraySize(j) * (obj ? 2 : 1);
		n->type = obj ? CFG_MAP : CFG_SEQ;
		n->items = calloc(count ? count : 1, sizeof(*n->items));
		for (const cJSON *c = j->child; n->items && c; c = c->next) {
			if (obj) {
				struct cfg_node *k = calloc(1, sizeof(*k));
				if (k)
					k->value = strdup(c->string);
				n->items[n->n++] = k;
			}
			n->items[n->n++] = node_of(c);
		}
		return n;
	}
	n->type = CFG_SCALAR;
	n->value = cJSON_IsString(j) ? strdup(j->valuestring) : cJSON_PrintUnformatted(j);
	return n;
}

static void reply_rv(cJSON **reply, int rv, const char *err)
{
	if (!reply)
		return;
	*reply = cJSON_CreateObject();
	cJSON_AddNumberToObject(*reply, "rv", rv);
	if (err)
		cJSON_AddStringToObject(*reply, "error", err);
}

static void on_start(struct child *ch, const cJSON *hdr, cJSON **reply)
{
	parley_instance *inst = &ch->inst;
	const struct parley_plugin *d = inst->plugin->desc;
	cJSON *cfg = cJSON_Parse(iso_str(hdr, "config"));
	ch->config = cJSON_IsObject(cfg) ? node_of(cfg) : NULL;
	cJSON_Delete(cfg);
	inst->config = ch->config;
	ch->settings = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(hdr, "settings"), 1);
	int level = log_level_parse(iso_str(hdr, "log_level"));
	if (level >= 0)
		log_set_level(level);
	log_set_json(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hdr, "log_json")));
	char *err = NULL;
	int rv = loader_init_plugin(&ch->reg, inst->plugin, &ch->host, &err) == 0 ? 0 : PARLEY_EINVAL;
	if (rv != 0) {
		char *why = str_printf("plugin %s failed to initialize: %s", inst->plugin->path,
		                       err ? err : "no reason given");
		reply_rv(reply, rv, why);
		free(why);
		free(err);
		return;
	}
	rv = d->instance_create(&ch->host, inst, inst->plugin->plugin_data, &inst->data, &err);
	if (rv == 0) {
		inst->created = 1;
		rv = d->instance_start ? d->instance_start(inst->data, &err) : 0;
		inst->started = rv == 0;
	}
	char *why = rv ? str_printf("%s: cannot %s: %s", inst->what, inst->created ? "start" : "be created",
	                            err ? err : "no reason given")
	               : NULL;
	reply_rv(reply, rv, why);
	free(why);
	free(err);
}

static void on_stop(struct child *ch, cJSON **reply)
{
	parley_instance *inst = &ch->inst;
	const struct parley_plugin *d = inst->plugin->desc;
	if (inst->started && d->instance_stop)
		d->instance_stop(inst->data);
	inst->started = 0;
	if (inst->created && d->instance_destroy)
		d->instance_destroy(inst->data);
	inst->created = 0;
	pthread_mutex_lock(&ch->lock);
	ch->stopped = 1;
	pthread_mutex_unlock(&ch->lock);
	reply_rv(reply, 0, NULL);
}

static void on_http(struct child *ch, const cJSON *hdr, const void *body, size_t len)
{
	struct creq *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	r->ch = ch;
	r->token = (uint64_t)iso_num(hdr, "token");
	r->method = strdup(iso_str(hdr, "method"));
	r->path = strdup(iso_str(hdr, "path"));
	r->query = strdup(iso_str(hdr, "query"));
	r->headers = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(hdr, "headers"), 1);
	r->body = len ? malloc(len + 1) : NULL;
	if (r->body) {
		memcpy(r->body, body, len);
		((char *)r->body)[len] = '\0';
		r->len = len;
	}
	int pub = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hdr, "public"));
	const char *sub = iso_str(hdr, "sub");
	parley_http_cb cb = NULL;
	pthread_mutex_lock(&ch->lock);
	for (size_t i = 0; i < ch->n_routes && !cb; i++)
		if (ch->routes[i].public_route == pub && strcmp(ch->routes[i].sub, sub) == 0 &&
		    strcmp(ch->routes[i].method, r->method) == 0)
			cb = ch->routes[i].cb;
	pthread_mutex_unlock(&ch->lock);
	if (!cb || !r->method || !r->path || !r->query) {
		static const char msg[] = "{\"error\":\"no such route\"}";
		child_respond((parley_http_request *)r, 404, "application/json", msg, sizeof(msg) - 1);
		return;
	}
	atomic_store(&ch->epoch, (uint64_t)iso_num(hdr, "epoch"));
	child_rid = iso_str(hdr, "rid");
	child_in_call = 1;
	cb(ch->inst.data, (parley_http_request *)r);
	child_rid = NULL;
	child_in_call = 0;
}

/* An envelope from the gateway's bytes, owned by the caller; NULL when they are no JSON object. */
static parley_envelope *envelope_of(const void *body, size_t len)
{
	cJSON *obj = cJSON_ParseWithLength(body, len);
	parley_envelope *env = cJSON_IsObject(obj) ? calloc(1, sizeof(*env)) : NULL;
	if (!env) {
		cJSON_Delete(obj);
		return NULL;
	}
	env->obj = obj;
	return env;
}

static void on_send(struct child *ch, const void *body, size_t len, cJSON **reply)
{
	const struct parley_plugin *d = ch->inst.plugin->desc;
	parley_envelope *env = envelope_of(body, len);
	struct parley_send_result res;
	memset(&res, 0, sizeof(res));
	res.struct_size = sizeof(res);
	res.outcome = PARLEY_SEND_RETRY;
	if (env && d->channel_send)
		d->channel_send(ch->inst.data, env, &res);
	else
		res.outcome = PARLEY_SEND_PERMANENT;
	envelope_destroy(env);
	res.provider_id[sizeof(res.provider_id) - 1] = '\0';
	res.error_code[sizeof(res.error_code) - 1] = '\0';
	res.error_text[sizeof(res.error_text) - 1] = '\0';
	*reply = cJSON_CreateObject();
	cJSON_AddNumberToObject(*reply, "outcome", res.outcome);
	cJSON_AddStringToObject(*reply, "provider_id", res.provider_id);
	cJSON_AddStringToObject(*reply, "error_code", res.error_code);
	cJSON_AddStringToObject(*reply, "error_text", res.error_text);
	cJSON_AddNumberToObject(*reply, "retry_after_ms", (double)res.retry_after_ms);
}

static void on_process(struct child *ch, const cJSON *hdr, const void *body, size_t len, cJSON **reply, void **out,
                       size_t *out_len)
{
	const struct parley_plugin *d = ch->inst.plugin->desc;
	parley_envelope *env = envelope_of(body, len);
	if (!env || !d->process) {
		envelope_destroy(env);
		reply_rv(reply, PARLEY_EINTERNAL, NULL);
		return;
	}
	atomic_store(&ch->epoch, (uint64_t)iso_num(hdr, "epoch"));
	child_in_call = 1;
	int rv = d->process(ch->inst.data, env);
	child_in_call = 0;
	reply_rv(reply, rv, envelope_error(env));
	char *json = envelope_json(env);
	*out = json;
	*out_len = json ? strlen(json) : 0;
	envelope_destroy(env);
}

static void on_after_commit(struct child *ch, const cJSON *hdr, const void *body, size_t len)
{
	const struct parley_plugin *d = ch->inst.plugin->desc;
	parley_envelope *env = envelope_of(body, len);
	if (env && d->after_commit)
		d->after_commit(ch->inst.data, env, (int)iso_num(hdr, "result"));
	envelope_destroy(env);
}

static void child_handler(void *arg, struct iso_rpc *rpc, const char *op, const cJSON *hdr, const void *body,
                          size_t len, cJSON **reply, void **reply_body, size_t *reply_len)
{
	(void)rpc;
	struct child *ch = arg;
	if (strcmp(op, "http") == 0)
		on_http(ch, hdr, body, len);
	else if (strcmp(op, "submitted") == 0)
		child_submitted(ch, hdr);
	else if (strcmp(op, "process") == 0 && reply)
		on_process(ch, hdr, body, len, reply, reply_body, reply_len);
	else if (strcmp(op, "ws_message") == 0)
		child_ws_message(ch, hdr, body, len);
	else if (strcmp(op, "ws_close") == 0)
		child_ws_closed(ch, hdr);
	else if (strcmp(op, "after_commit") == 0)
		on_after_commit(ch, hdr, body, len);
	else if (strcmp(op, "send") == 0 && reply)
		on_send(ch, body, len, reply);
	else if (strcmp(op, "start") == 0 && reply)
		on_start(ch, hdr, reply);
	else if (strcmp(op, "stop") == 0 && reply)
		on_stop(ch, reply);
	else
		reply_rv(reply, PARLEY_ENOTSUP, "unknown call");
}

int isolate_child_main(int argc, char **argv)
{
	if (argc != 4) {
		fputs("usage: parley plugin-host PLUGIN NAME URL (started by the gateway for `isolate: true`)\n",
		      stderr);
		return 2;
	}
	/* The child never outlives the gateway that started it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	/*
	 * The gateway stops its child itself, after draining: a signal to the
	 * whole group (Ctrl-C, timeout(1), systemd's stop of the unit's cgroup)
	 * must not end it first and turn the drain's webhooks into 503s.
	 */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* A plugin's crash must end the child by its signal, which the supervisor logs (a sanitizer's handler would
	 * exit). */
	signal(SIGSEGV, SIG_DFL);
	signal(SIGBUS, SIG_DFL);
	signal(SIGFPE, SIG_DFL);
	signal(SIGILL, SIG_DFL);
	struct child *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return 1;
	pthread_mutex_init(&ch->lock, NULL);
	pthread_cond_init(&ch->cond, NULL);
	pthread_mutex_init(&ch->inst.send_lock, NULL);
	pthread_mutex_init(&ch->inst.health_lock, NULL);
	child_host_init(&ch->host);
	if (loader_open(&ch->reg, argv[1]) != 0 || ch->reg.n != 1) {
		fprintf(stderr, "parley plugin-host: %s %s\n", argv[1],
		        ch->reg.n_refused ? ch->reg.refused[0].reason : "cannot be loaded");
		return 1;
	}
	parley_instance *inst = &ch->inst;
	inst->plugin = &ch->reg.items[0];
	inst->name = strdup(argv[2]);
	int kind = inst->plugin->desc->kind;
	inst->what = kind == PARLEY_KIND_CHANNEL ? str_printf("channel %s", argv[2])
	                                         : str_printf("%s %s", loader_kind_name(kind), argv[2]);
	if (iso_rpc_dial(&ch->rpc, argv[3], child_handler, ch) != 0) {
		fprintf(stderr, "parley plugin-host: cannot reach the gateway at %s\n", argv[3]);
		return 1;
	}
	/* Until the gateway closes its end (after a stop) or goes away. */
	while (!iso_rpc_closed(ch->rpc)) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&ch->lock);
	int stopped = ch->stopped;
	pthread_mutex_unlock(&ch->lock);
	if (!stopped)
		_exit(1); /* the gateway is gone: nothing here can be acknowledged any more */
	iso_rpc_release(ch->rpc);
	loader_free(&ch->reg);
	cfg_node_free(ch->config);
	cJSON_Delete(ch->settings);
	for (size_t i = 0; i < ch->n_routes; i++) {
		free(ch->routes[i].method);
		free(ch->routes[i].sub);
	}
	free(ch->routes);
	free(inst->name);
	free((char *)inst->what);
	free(ch);
	return 0;
}
