/*
 * http.c: what the gateway serves over HTTP: channel webhooks under
 * /webhooks/<channel>[/subpath], channels' public routes under
 * /<channel type>/<channel>[/subpath] (the web chat widget), /healthz and
 * /metrics, and the inbox's pages under /inbox/ (core/http_static.c).  WebSockets are core/http_ws.c's.  Connections,
 * limits and answering from other threads are core/http_server.c's.
 */
#include "http.h"
#include "api.h"
#include "bus.h"
#include "gateway.h"
#include "http_server.h"
#include "http_static.h"
#include "http_ws.h"
#include "kpi_gauges.h"
#include "log.h"
#include "metrics.h"
#include "relay.h"
#include "store.h"
#include "tls.h"
#include "topology.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct route {
	parley_instance *inst;
	char *method;
	char *subpath;
	parley_http_cb cb;
	int public_route; /* under /<type>/<channel>, not /webhooks/<channel> */
};

struct http {
	struct gateway *gw;
	struct http_server *srv;
	/* Every instance's routes; a reload adds and drops some while requests look (under routes_lock). */
	pthread_mutex_t routes_lock;
	struct route *routes;
	size_t n_routes;
	struct http_ws_hub *ws;
	struct http_static *web; /* the inbox's files */
	int started;
};

int http_open(struct http **out, struct gateway *gw)
{
	struct http *h = calloc(1, sizeof(*h));
	if (!h)
		return PARLEY_ENOMEM;
	h->gw = gw;
	pthread_mutex_init(&h->routes_lock, NULL);
	if (http_static_open(&h->web) != 0) {
		free(h);
		return PARLEY_ENOMEM;
	}
	*out = h;
	return 0;
}

static int route_add(struct http *h, parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb,
                     int public_route)
{
	if (!method || !cb || !subpath || (subpath[0] && subpath[0] != '/'))
		return PARLEY_EINVAL;
	int rv = 0;
	pthread_mutex_lock(&h->routes_lock);
	for (size_t i = 0; rv == 0 && i < h->n_routes; i++)
		if (h->routes[i].inst == inst && h->routes[i].public_route == public_route &&
		    strcmp(h->routes[i].method, method) == 0 && strcmp(h->routes[i].subpath, subpath) == 0)
			rv = PARLEY_EEXIST;
	struct route *nr = rv == 0 ? realloc(h->routes, (h->n_routes + 1) * sizeof(*nr)) : NULL;
	if (rv == 0 && !nr)
		rv = PARLEY_ENOMEM;
	if (rv == 0) {
		h->routes = nr;
		h->routes[h->n_routes] = (struct route){inst, strdup(method), strdup(subpath), cb, public_route};
		h->n_routes++;
	}
	pthread_mutex_unlock(&h->routes_lock);
	return rv;
}

void http_routes_drop(struct http *h, const parley_instance *inst)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->routes_lock);
	size_t kept = 0;
	for (size_t i = 0; i < h->n_routes; i++) {
		if (h->routes[i].inst == inst) {
			free(h->routes[i].method);
			free(h->routes[i].subpath);
		} else {
			h->routes[kept++] = h->routes[i];
		}
	}
	h->n_routes = kept;
	pthread_mutex_unlock(&h->routes_lock);
}

/*
 * The route of inst for method and sub (public or under /webhooks), copied
 * out: 0, or the status to refuse with (404: no such path, 405: not this
 * method).
 */
static int route_find(struct http *h, const parley_instance *inst, int public_route, const char *method,
                      const char *sub, struct route *out)
{
	int status = 404;
	pthread_mutex_lock(&h->routes_lock);
	for (size_t i = 0; i < h->n_routes && status != 0; i++) {
		const struct route *r = &h->routes[i];
		if (r->inst != inst || r->public_route != public_route || (sub && strcmp(r->subpath, sub) != 0))
			continue;
		status = 405;
		if (method && strcmp(r->method, method) == 0) {
			*out = *r;
			status = 0;
		}
	}
	pthread_mutex_unlock(&h->routes_lock);
	return status;
}

int http_route_add(struct http *h, parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb)
{
	return route_add(h, inst, method, subpath, cb, 0);
}

int http_route_add_public(struct http *h, parley_instance *inst, const char *method, const char *subpath,
                          parley_http_cb cb)
{
	return route_add(h, inst, method, subpath, cb, 1);
}

struct http_ws_hub *http_ws_hub_of(parley_http_request *req)
{
	struct http *h = http_server_router_arg(req);
	return h->ws;
}

/*
 * /healthz: is everything working?  The store, the draining state, and
 * each channel as it says of itself (parley_host.health): 503 with the
 * channels that are down named.  /ready: can the gateway take webhooks
 * (the store up, not draining), whatever a poller says.
 */
static void health(struct gateway *gw, parley_http_request *req, int ready_only)
{
	int store_ok = store_ping(gw->st) == 0;
	int draining = atomic_load(&gw->draining);
	cJSON *r = cJSON_CreateObject();
	cJSON *down = cJSON_CreateArray();
	struct topology *topo = topology_get(gw);
	for (size_t i = 0; !ready_only && topo && i < topo->n_channels; i++) {
		parley_instance *c = topo->channels[i];
		pthread_mutex_lock(&c->health_lock);
		if (c->down) {
			cJSON *d = cJSON_CreateObject();
			cJSON_AddStringToObject(d, "channel", c->name);
			cJSON_AddStringToObject(d, "why", c->why);
			cJSON_AddItemToArray(down, d);
		}
		pthread_mutex_unlock(&c->health_lock);
	}
	topology_put(topo);
	int ok = store_ok && !draining && cJSON_GetArraySize(down) == 0;
	cJSON_AddStringToObject(r, "status", ok ? "ok" : store_ok && !draining ? "degraded" : "unavailable");
	cJSON_AddStringToObject(r, "store", store_ok ? "up" : "down");
	cJSON_AddStringToObject(r, "bus", draining ? "draining" : "up");
	cJSON_AddNumberToObject(r, "inflight", (double)bus_inflight(gw->bus));
	cJSON_AddStringToObject(r, "durable_bus", relay_state(gw->relay));
	if (cJSON_GetArraySize(down))
		cJSON_AddItemToObject(r, "channels_down", down);
	else
		cJSON_Delete(down);
	char *body = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	http_server_respond(req, ok ? 200 : 503, "application/json", body, body ? strlen(body) : 0);
	free(body);
}

static void on_healthz(void *arg, parley_http_request *req)
{
	health(((struct http *)arg)->gw, req, 0);
}

static void on_ready(void *arg, parley_http_request *req)
{
	health(((struct http *)arg)->gw, req, 1);
}

static void on_metrics(void *arg, parley_http_request *req)
{
	struct gateway *gw = ((struct http *)arg)->gw;
	struct strbuf sb;
	sb_init(&sb);
	metrics_render(gw->metrics, &sb);
	sb_printf(&sb,
	          "# HELP parley_inflight_submissions Webhooks submitted and not yet committed.\n"
	          "# TYPE parley_inflight_submissions gauge\nparley_inflight_submissions %zu\n",
	          bus_inflight(gw->bus));
	relay_metrics(gw->relay, &sb);
	kpi_gauges_render(gw->kpi_gauges, &sb); /* the last figures computed, never a report here */
	/* The outbox as the store has it: waiting and dead-lettered (read at each scrape: cheap, indexed). */
	char *reply = NULL;
	if (store_query(gw->st, "outbox.counts", "{}", &reply) == 0) {
		cJSON *r = cJSON_Parse(reply);
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "counts");
		sb_adds(&sb,
		        "# HELP parley_outbox_messages Outbound messages by state: queued, retry and sending wait; "
		        "failed are the dead letters.\n# TYPE parley_outbox_messages gauge\n");
		static const char *const states[] = {"queued", "retry", "sending", "failed"};
		for (size_t i = 0; i < 4; i++)
			sb_printf(&sb, "parley_outbox_messages{state=\"%s\"} %.0f\n", states[i],
			          cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, states[i])));
		cJSON_Delete(r);
	}
	free(reply);
	http_server_respond(req, 200, "text/plain; version=0.0.4", sb.buf, sb.len);
	sb_free(&sb);
}

/*
 * Where a request goes: the channel named in its path, and the rest of the
 * path.  A webhook's path is /webhooks/<channel>[/sub]; a public route's
 * /<channel type>/<channel>[/sub], whose type goes to *type.  0, or -1 when
 * the path names no channel.
 */
struct target {
	char channel[128];
	const char *sub;
	const char *type;
	size_t type_len;
};

static int target_of(const char *path, int public_route, struct target *t)
{
	const char *name = path;
	memset(t, 0, sizeof(*t));
	if (public_route) {
		t->type = path + 1;
		t->type_len = strcspn(t->type, "/");
		if (!t->type_len || t->type[t->type_len] != '/')
			return -1;
		name = t->type + t->type_len + 1;
	} else {
		name = path[9] ? path + 10 : ""; /* after "/webhooks/" */
	}
	size_t n = strcspn(name, "/");
	if (n == 0 || n >= sizeof(t->channel))
		return -1;
	memcpy(t->channel, name, n);
	t->channel[n] = '\0';
	t->sub = name + n;
	return 0;
}

/* The channel of t in topology topo, or NULL (for a public route, of the type the path names). */
static parley_instance *target_channel(const struct topology *topo, const struct target *t)
{
	parley_instance *inst = topology_channel(topo, t->channel);
	if (inst && t->type &&
	    (strlen(inst->plugin->desc->name) != t->type_len ||
	     strncmp(inst->plugin->desc->name, t->type, t->type_len)))
		return NULL;
	return inst;
}

/*
 * The body is read: hand the request to its channel's route, as the
 * channels are now.  The channel is looked up again, since a reload may
 * have replaced it while the body arrived; the topology is held while the
 * plugin reads the request (what it submits is counted by the bus).
 */
static void deliver(struct http *h, parley_http_request *req, int public_route)
{
	struct gateway *gw = h->gw;
	if (atomic_load(&gw->draining)) {
		http_server_respond_error(req, 503, "the gateway is shutting down: retry later");
		return;
	}
	struct target tg;
	struct topology *topo = topology_get(gw);
	parley_instance *inst =
	        target_of(http_server_path(req), public_route, &tg) == 0 ? target_channel(topo, &tg) : NULL;
	struct route rt;
	if (!inst || route_find(h, inst, public_route, http_server_method(req), tg.sub, &rt) != 0) {
		topology_put(topo);
		http_server_respond_error(req, 404, "this channel is no longer configured (the config was reloaded)");
		return;
	}
	metrics_add(gw->metrics, "webhooks_received_total", "channel", inst->name, 1);
	/* What the plugin logs and submits while it reads the webhook carries the request's id. */
	char rid[32];
	snprintf(rid, sizeof(rid), "%s", http_server_request_id(req));
	log_set_request(rid);
	log_msg(PARLEY_LOG_DEBUG, inst->what, "webhook %s %s", http_server_method(req), http_server_path(req));
	rt.cb(inst->data, req);
	log_set_request(NULL);
	topology_put(topo);
}

static void on_webhook(void *arg, parley_http_request *req)
{
	deliver(arg, req, 0);
}

static void on_public(void *arg, parley_http_request *req)
{
	deliver(arg, req, 1);
}

/* /webhooks/<channel>[/sub]: the channel's route for this method, or a refusal. */
static void route_webhook(struct http *h, parley_http_request *req, const char *path)
{
	struct target tg;
	if (target_of(path, 0, &tg) != 0) {
		http_server_refuse(req, 404, "no channel in the path: POST to /webhooks/<channel>");
		return;
	}
	struct topology *topo = topology_get(h->gw);
	parley_instance *inst = topology_channel(topo, tg.channel);
	struct route rt;
	int status = inst ? route_find(h, inst, 0, http_server_method(req), tg.sub, &rt) : 0;
	if (inst)
		http_server_set_label(req, inst->name);
	topology_put(topo);
	if (!inst) {
		char *m = str_printf("unknown channel '%s': it is not configured under channels:", tg.channel);
		http_server_refuse(req, 404, m ? m : "unknown channel");
		free(m);
	} else if (status != 0) {
		http_server_refuse(req, status,
		                   status == 405 ? "method not allowed for this channel's webhook"
		                                 : "no such webhook path for this channel");
	} else {
		http_server_serve(req, on_webhook, h, h->gw->cfg.http_max_body, 1);
	}
}

/*
 * /<type>/<channel>[/sub]: a public route of a channel of that type.  0
 * when the path names no channel with public routes (the caller refuses).
 */
static int route_public(struct http *h, parley_http_request *req, const char *path)
{
	struct target tg;
	if (target_of(path, 1, &tg) != 0)
		return 0;
	struct topology *topo = topology_get(h->gw);
	parley_instance *inst = target_channel(topo, &tg);
	struct route rt;
	/* A channel without public routes, or no channel: not ours to answer (method NULL matches none: 405). */
	int known = inst && route_find(h, inst, 1, NULL, NULL, &rt) == 405;
	int status = known ? route_find(h, inst, 1, http_server_method(req), tg.sub, &rt) : 404;
	if (known)
		http_server_set_label(req, inst->name);
	topology_put(topo);
	if (!known)
		return 0;
	if (status != 0)
		http_server_refuse(req, status,
		                   status == 405 ? "method not allowed for this path"
		                                 : "no such path for this channel");
	else
		http_server_serve(req, on_public, h, h->gw->cfg.http_max_body, 1);
	return 1;
}

/* The router: called by the server when a request's head is complete. */
static void route(void *arg, parley_http_request *req)
{
	struct http *h = arg;
	const char *path = http_server_path(req);
	const char *method = http_server_method(req);
	http_handler builtin = strcmp(path, "/healthz") == 0   ? on_healthz
	                       : strcmp(path, "/ready") == 0   ? on_ready
	                       : strcmp(path, "/metrics") == 0 ? on_metrics
	                                                       : NULL;
	if (builtin) {
		/* HEAD too: libmicrohttpd sends the head of the GET answer without its body. */
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			http_server_refuse(req, 405, "method not allowed: use GET");
		else
			http_server_serve(req, builtin, h, 0, 0);
		return;
	}
	if (strncmp(path, "/api/v1", 7) == 0 && (path[7] == '/' || path[7] == '\0') && h->gw->api) {
		api_route(h->gw->api, req, path + 7);
		return;
	}
	if (strncmp(path, "/webhooks", 9) == 0 && (path[9] == '/' || path[9] == '\0')) {
		route_webhook(h, req, path);
		return;
	}
	if (http_static_route(h->web, req, path) || route_public(h, req, path))
		return;
	http_server_refuse(req, 404, "no such path: webhooks are under /webhooks/<channel>");
}

const char *http_req_method(parley_http_request *r)
{
	return http_server_method(r);
}

const char *http_req_path(parley_http_request *r)
{
	return http_server_path(r);
}

const char *http_req_query(parley_http_request *r)
{
	return http_server_query(r);
}

const char *http_req_header(parley_http_request *r, const char *name)
{
	return http_server_header(r, name);
}

const void *http_req_body(parley_http_request *r, size_t *len)
{
	return http_server_body(r, len);
}

void http_req_respond(parley_http_request *r, int status, const char *content_type, const char *body, size_t len)
{
	http_req_respond_with(r, status, content_type, NULL, body, len);
}

void http_req_respond_with(parley_http_request *r, int status, const char *content_type, const char *const *headers,
                           const char *body, size_t len)
{
	if (status >= 400 && status != 503)
		log_msg(PARLEY_LOG_INFO, http_server_label(r), "webhook %s answered %d: %.*s",
		        http_server_request_id(r), status, (int)(len > 300 ? 300 : len), body ? body : "");
	else
		log_msg(PARLEY_LOG_DEBUG, http_server_label(r), "webhook %s answered %d: %.*s",
		        http_server_request_id(r), status, (int)(len > 300 ? 300 : len), body ? body : "");
	http_server_respond_with(r, status, content_type, headers, body, len);
}

int http_start(struct http *h, char **errmsg)
{
	const struct gw_config *c = &h->gw->cfg;
	struct http_server_config sc = {
	        .listen = c->http_listen,
	        .header_timeout_ms = c->http_header_timeout_ms,
	        .body_timeout_ms = c->http_body_timeout_ms,
	        .max_connections = c->http_max_connections,
	        .max_connections_per_ip = c->http_max_connections_per_ip,
	        .max_inflight = c->http_max_inflight,
	        .max_header_size = c->http_max_header_size,
	        .max_url_size = c->http_max_url_size,
	};
	/* The files are read again at each start: a replaced certificate is served from the next start on. */
	struct tls_pair tls = {NULL, NULL};
	if (c->http_tls_cert) {
		enum tls_culprit culprit;
		int rv = tls_pair_load(&tls, c->http_tls_cert, c->http_tls_key, &culprit, errmsg);
		if (rv != 0)
			return rv;
		sc.tls_cert_pem = tls.cert_pem;
		sc.tls_key_pem = tls.key_pem;
	}
	int rv = h->ws ? 0 : http_ws_hub_start(&h->ws, h->gw->metrics, 0, errmsg);
	if (rv == 0)
		rv = http_server_start(&h->srv, &sc, h->gw->metrics, route, h, errmsg);
	tls_pair_free(&tls);
	if (rv == 0)
		h->started = 1;
	return rv;
}

void http_stop(struct http *h)
{
	if (h && h->started) {
		/* WebSockets first: the server must not stop under sockets it handed over. */
		http_ws_hub_stop(h->ws);
		http_server_stop(h->srv);
		h->started = 0;
	}
}

void http_free(struct http *h)
{
	if (!h)
		return;
	http_server_free(h->srv);
	http_ws_hub_free(h->ws);
	for (size_t i = 0; i < h->n_routes; i++) {
		free(h->routes[i].method);
		free(h->routes[i].subpath);
	}
	free(h->routes);
	http_static_free(h->web);
	free(h);
}
