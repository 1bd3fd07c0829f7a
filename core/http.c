/* http.c: webhook routing, /healthz and /metrics on nng's HTTP server. */
#include "http.h"
#include "bus.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct route {
	parley_instance *inst;
	char *method;
	char *subpath;
	parley_http_cb cb;
};

struct http {
	struct gateway *gw;
	nng_http_server *srv;
	struct route *routes;
	size_t n_routes;
	int started;
	nng_http_handler *handlers[3];
	size_t n_handlers;
};

struct parley_http_request {
	struct http *http;
	nng_aio *aio;
	nng_http_req *req;
	char *path;
	const char *query;
	const char *channel;
	nng_aio *rd_aio;
	char *body;
	size_t len;
	unsigned long long discard_left; /* bytes of an oversized body still to drain */
	int status;                      /* the answer to send once drained */
	char *message;
};

/*
 * An oversized body up to this size is read and discarded before the 413,
 * so a client that sends its whole body first still reads the answer;
 * beyond it the connection is closed at once.
 */
#define DRAIN_LIMIT (64ull * 1024 * 1024)
#define DRAIN_CHUNK 65536

int http_open(struct http **out, struct gateway *gw)
{
	struct http *h = calloc(1, sizeof(*h));
	if (!h)
		return PARLEY_ENOMEM;
	h->gw = gw;
	*out = h;
	return 0;
}

int http_route_add(struct http *h, parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb)
{
	if (h->started || !method || !cb || !subpath || (subpath[0] && subpath[0] != '/'))
		return PARLEY_EINVAL;
	for (size_t i = 0; i < h->n_routes; i++)
		if (h->routes[i].inst == inst && strcmp(h->routes[i].method, method) == 0 &&
		    strcmp(h->routes[i].subpath, subpath) == 0)
			return PARLEY_EEXIST;
	struct route *nr = realloc(h->routes, (h->n_routes + 1) * sizeof(*nr));
	if (!nr)
		return PARLEY_ENOMEM;
	h->routes = nr;
	h->routes[h->n_routes].inst = inst;
	h->routes[h->n_routes].method = strdup(method);
	h->routes[h->n_routes].subpath = strdup(subpath);
	h->routes[h->n_routes].cb = cb;
	h->n_routes++;
	return 0;
}

static void reply(nng_aio *aio, struct gateway *gw, int status, const char *ctype, const char *body, size_t len)
{
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_http_res_set_status(res, (uint16_t)status);
	if (ctype)
		nng_http_res_set_header(res, "Content-Type", ctype);
	if (len)
		nng_http_res_copy_data(res, body, len);
	char code[8];
	snprintf(code, sizeof(code), "%d", status);
	metrics_add(gw->metrics, "http_responses_total", "code", code, 1);
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static void reply_error(nng_aio *aio, struct gateway *gw, int status, const char *msg)
{
	char *body = str_printf("{\"error\":\"%s\"}\n", msg);
	reply(aio, gw, status, "application/json", body, body ? strlen(body) : 0);
	free(body);
}

/* Answer without reading the body: the connection cannot be reused. */
static void reply_close(nng_aio *aio, struct gateway *gw, int status, const char *msg)
{
	nng_http_res *res;
	char *body = str_printf("{\"error\":\"%s\"}\n", msg);
	if (nng_http_res_alloc(&res) != 0) {
		free(body);
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_http_res_set_status(res, (uint16_t)status);
	nng_http_res_set_header(res, "Content-Type", "application/json");
	nng_http_res_set_header(res, "Connection", "close");
	nng_http_res_copy_data(res, body, strlen(body));
	free(body);
	char code[8];
	snprintf(code, sizeof(code), "%d", status);
	metrics_add(gw->metrics, "http_responses_total", "code", code, 1);
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static void request_free(struct parley_http_request *r)
{
	if (r->rd_aio)
		nng_aio_reap(r->rd_aio);
	free(r->message);
	free(r->body);
	free(r->path);
	free(r);
}

/* The body is in: route to the channel's handler. */
static void dispatch(struct parley_http_request *r)
{
	struct http *h = r->http;
	struct gateway *gw = h->gw;
	const char *uri = nng_http_req_get_uri(r->req);
	const char *method = nng_http_req_get_method(r->req);

	/* /webhooks/<channel>[/sub][?query] */
	const char *rest = uri + strlen("/webhooks");
	if (*rest == '/')
		rest++;
	size_t plen = strcspn(rest, "?");
	size_t clen = strcspn(rest, "/?");
	char channel[128];
	if (clen == 0 || clen >= sizeof(channel)) {
		reply_error(r->aio, gw, 404, "no channel in the path: POST to /webhooks/<channel>");
		request_free(r);
		return;
	}
	memcpy(channel, rest, clen);
	channel[clen] = '\0';
	parley_instance *inst = gateway_channel(gw, channel);
	if (!inst) {
		char *m = str_printf("unknown channel '%s': it is not configured under channels:", channel);
		reply_error(r->aio, gw, 404, m);
		free(m);
		request_free(r);
		return;
	}
	char *sub = strndup(rest + clen, plen - clen);
	const struct route *rt = NULL;
	int path_known = 0;
	for (size_t i = 0; i < h->n_routes; i++) {
		if (h->routes[i].inst != inst || strcmp(h->routes[i].subpath, sub) != 0)
			continue;
		path_known = 1;
		if (strcmp(h->routes[i].method, method) == 0)
			rt = &h->routes[i];
	}
	free(sub);
	if (!rt) {
		reply_error(r->aio, gw, path_known ? 405 : 404,
		            path_known ? "method not allowed for this channel's webhook"
		                       : "no such webhook path for this channel");
		request_free(r);
		return;
	}
	if (atomic_load(&gw->draining)) {
		reply_error(r->aio, gw, 503, "the gateway is shutting down: retry later");
		request_free(r);
		return;
	}
	metrics_add(gw->metrics, "webhooks_received_total", "channel", inst->name, 1);
	r->path = strndup(uri, (size_t)(rest - uri) + plen);
	r->query = rest[plen] == '?' ? rest + plen + 1 : "";
	r->channel = inst->name;
	rt->cb(inst->data, r);
}

static void body_read(void *arg)
{
	struct parley_http_request *r = arg;
	int rv = nng_aio_result(r->rd_aio);
	if (rv != 0) {
		/* The client went away or was too slow: nobody to answer. */
		nng_aio_finish(r->aio, rv);
		request_free(r);
		return;
	}
	dispatch(r);
}

static void drain_read(void *arg)
{
	struct parley_http_request *r = arg;
	int rv = nng_aio_result(r->rd_aio);
	if (rv != 0) {
		nng_aio_finish(r->aio, rv);
		request_free(r);
		return;
	}
	size_t got = nng_aio_count(r->rd_aio);
	r->discard_left -= got < r->discard_left ? got : r->discard_left;
	if (r->discard_left == 0) {
		reply_error(r->aio, r->http->gw, r->status, r->message);
		request_free(r);
		return;
	}
	nng_iov iov = {.iov_buf = r->body, .iov_len = r->discard_left < DRAIN_CHUNK ? r->discard_left : DRAIN_CHUNK};
	nng_aio_set_iov(r->rd_aio, 1, &iov);
	nng_http_conn_read(nng_aio_get_input(r->aio, 2), r->rd_aio);
}

/* Read and drop len bytes of body, then answer status with message. */
static void drain_then_reply(nng_aio *aio, struct http *h, unsigned long long len, int status, char *message)
{
	struct parley_http_request *r = calloc(1, sizeof(*r));
	if (!r || !(r->body = malloc(DRAIN_CHUNK)) || nng_aio_alloc(&r->rd_aio, drain_read, r) != 0) {
		if (r)
			free(r->body);
		free(r);
		reply_close(aio, h->gw, status, message);
		free(message);
		return;
	}
	r->http = h;
	r->aio = aio;
	r->discard_left = len;
	r->status = status;
	r->message = message;
	nng_aio_set_timeout(r->rd_aio, (nng_duration)h->gw->cfg.http_request_timeout_ms);
	nng_iov iov = {.iov_buf = r->body, .iov_len = len < DRAIN_CHUNK ? len : DRAIN_CHUNK};
	nng_aio_set_iov(r->rd_aio, 1, &iov);
	nng_http_conn_read(nng_aio_get_input(aio, 2), r->rd_aio);
}

static void on_webhook(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	nng_http_handler *hd = nng_aio_get_input(aio, 1);
	nng_http_conn *conn = nng_aio_get_input(aio, 2);
	struct http *h = nng_http_handler_get_data(hd);
	struct gateway *gw = h->gw;

	const char *cl = nng_http_req_get_header(req, "Content-Length");
	const char *te = nng_http_req_get_header(req, "Transfer-Encoding");
	unsigned long long len = 0;
	if (te) {
		reply_close(aio, gw, 411, "chunked bodies are not accepted: send Content-Length");
		return;
	}
	if (cl) {
		char *end;
		len = strtoull(cl, &end, 10);
		if (end == cl || *end) {
			reply_close(aio, gw, 400, "Content-Length is not a number");
			return;
		}
	}
	if (len > gw->cfg.http_max_body) {
		char *m = str_printf("the body of %llu bytes is over http.max_body (%llu bytes)", len,
		                     (unsigned long long)gw->cfg.http_max_body);
		if (len <= DRAIN_LIMIT) {
			drain_then_reply(aio, h, len, 413, m);
		} else {
			reply_close(aio, gw, 413, m);
			free(m);
		}
		return;
	}
	struct parley_http_request *r = calloc(1, sizeof(*r));
	if (!r) {
		reply_close(aio, gw, 503, "out of memory");
		return;
	}
	r->http = h;
	r->aio = aio;
	r->req = req;
	r->body = malloc(len + 1);
	r->len = (size_t)len;
	if (!r->body) {
		free(r);
		reply_close(aio, gw, 503, "out of memory");
		return;
	}
	r->body[len] = '\0';
	if (len == 0) {
		dispatch(r);
		return;
	}
	if (nng_aio_alloc(&r->rd_aio, body_read, r) != 0) {
		request_free(r);
		reply_close(aio, gw, 503, "out of memory");
		return;
	}
	nng_iov iov = {.iov_buf = r->body, .iov_len = r->len};
	nng_aio_set_iov(r->rd_aio, 1, &iov);
	nng_aio_set_timeout(r->rd_aio, (nng_duration)gw->cfg.http_request_timeout_ms);
	nng_http_conn_read_all(conn, r->rd_aio);
}

const char *http_req_method(parley_http_request *r)
{
	return nng_http_req_get_method(r->req);
}

const char *http_req_path(parley_http_request *r)
{
	return r->path;
}

const char *http_req_query(parley_http_request *r)
{
	return r->query;
}

const char *http_req_header(parley_http_request *r, const char *name)
{
	return nng_http_req_get_header(r->req, name);
}

const void *http_req_body(parley_http_request *r, size_t *len)
{
	*len = r->len;
	return r->body;
}

void http_req_respond(parley_http_request *r, int status, const char *content_type, const char *body, size_t len)
{
	if (status >= 400 && status != 503)
		log_msg(PARLEY_LOG_INFO, r->channel, "webhook answered %d: %.*s", status, (int)(len > 300 ? 300 : len),
		        body ? body : "");
	reply(r->aio, r->http->gw, status, content_type, body, len);
	request_free(r);
}

static void on_healthz(nng_aio *aio)
{
	nng_http_handler *hd = nng_aio_get_input(aio, 1);
	struct http *h = nng_http_handler_get_data(hd);
	struct gateway *gw = h->gw;
	int store_ok = gw->store_ops->ping ? gw->store_ops->ping(gw->store->data) == 0 : 1;
	int draining = atomic_load(&gw->draining);
	char *body = str_printf("{\"status\":\"%s\",\"store\":\"%s\",\"bus\":\"%s\",\"inflight\":%zu}\n",
	                        store_ok && !draining ? "ok" : "unavailable", store_ok ? "up" : "down",
	                        draining ? "draining" : "up", bus_inflight(gw->bus));
	reply(aio, gw, store_ok && !draining ? 200 : 503, "application/json", body, strlen(body));
	free(body);
}

static void on_metrics(nng_aio *aio)
{
	nng_http_handler *hd = nng_aio_get_input(aio, 1);
	struct http *h = nng_http_handler_get_data(hd);
	struct strbuf sb;
	sb_init(&sb);
	metrics_render(h->gw->metrics, &sb);
	sb_printf(&sb, "# TYPE parley_inflight_submissions gauge\nparley_inflight_submissions %zu\n",
	          bus_inflight(h->gw->bus));
	reply(aio, h->gw, 200, "text/plain; version=0.0.4", sb.buf, sb.len);
	sb_free(&sb);
}

static int add_handler(struct http *h, const char *path, void (*cb)(nng_aio *), const char *method, int tree,
                       int collect)
{
	nng_http_handler *hd;
	int rv = nng_http_handler_alloc(&hd, path, cb);
	if (rv != 0)
		return rv;
	nng_http_handler_set_method(hd, method);
	nng_http_handler_set_data(hd, h, NULL);
	if (tree)
		nng_http_handler_set_tree(hd);
	/* Webhook bodies are read by on_webhook, which answers 413 itself. */
	nng_http_handler_collect_body(hd, collect != 0, collect ? 0 : (size_t)-1);
	rv = nng_http_server_add_handler(h->srv, hd);
	if (rv != 0)
		nng_http_handler_free(hd);
	else
		h->handlers[h->n_handlers++] = hd;
	return rv;
}

int http_start(struct http *h, char **errmsg)
{
	char *url = str_printf("http://%s", h->gw->cfg.http_listen);
	nng_url *u;
	int rv = nng_url_parse(&u, url);
	if (rv != 0) {
		*errmsg = str_printf("http.listen '%s' is not host:port: %s", h->gw->cfg.http_listen, nng_strerror(rv));
		free(url);
		return PARLEY_EINVAL;
	}
	free(url);
	rv = nng_http_server_hold(&h->srv, u);
	nng_url_free(u);
	if (rv != 0) {
		*errmsg = str_printf("cannot create the HTTP server for %s: %s", h->gw->cfg.http_listen,
		                     nng_strerror(rv));
		return PARLEY_EIO;
	}
	if ((rv = add_handler(h, "/webhooks", on_webhook, NULL, 1, 0)) != 0 ||
	    (rv = add_handler(h, "/healthz", on_healthz, "GET", 0, 1)) != 0 ||
	    (rv = add_handler(h, "/metrics", on_metrics, "GET", 0, 1)) != 0) {
		*errmsg = str_printf("cannot register HTTP handlers: %s", nng_strerror(rv));
		return PARLEY_EIO;
	}
	if ((rv = nng_http_server_start(h->srv)) != 0) {
		*errmsg = str_printf("cannot listen on http.listen %s: %s", h->gw->cfg.http_listen, nng_strerror(rv));
		return PARLEY_EIO;
	}
	h->started = 1;
	return 0;
}

void http_stop(struct http *h)
{
	if (h && h->srv && h->started) {
		nng_http_server_stop(h->srv);
		h->started = 0;
	}
}

void http_free(struct http *h)
{
	if (!h)
		return;
	if (h->srv) {
		/* The server frees handlers lazily; remove and free ours now. */
		for (size_t i = 0; i < h->n_handlers; i++)
			if (nng_http_server_del_handler(h->srv, h->handlers[i]) == 0)
				nng_http_handler_free(h->handlers[i]);
		nng_http_server_release(h->srv);
	}
	for (size_t i = 0; i < h->n_routes; i++) {
		free(h->routes[i].method);
		free(h->routes[i].subpath);
	}
	free(h->routes);
	free(h);
}
