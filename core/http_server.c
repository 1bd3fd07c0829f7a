/*
 * http_server.c: HTTP/1.1 on libmicrohttpd, with the limits a public
 * webhook endpoint needs.  See docs/http.md for why libmicrohttpd.
 *
 * MHD parses requests on its own epoll threads (one per core, at most four)
 * and answers the requests of one connection in order, so pipelining works
 * by construction.  A request whose handler has not answered yet is
 * suspended (MHD_suspend_connection) and resumed by whichever thread
 * answers; the answer itself is queued from the access handler, the one
 * place MHD allows it.
 *
 * What MHD does not do, this file adds (with core/http_conns.c, which keeps
 * the connection caps and the head and body deadlines):
 * - Counting what MHD refuses by itself (a head over the memory pool is
 *   431, a request line over it 414, a malformed one 400): MHD reports
 *   those only through its log callback, so the logger counts them.
 * - http.max_url_size (414) and http.max_inflight (503 with Retry-After).
 * - JSON error bodies, {"ok":false,"error":"..."}, through cJSON.
 */
#include "http_server.h"
#include "envelope.h"
#include "http_conns.h"
#include "http_server_internal.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * A refused body up to this size is read and dropped before the answer, so
 * a client that sends its whole body first still reads it and may reuse the
 * connection; beyond it the answer goes out at once and the connection
 * closes.
 */
#define DRAIN_LIMIT (64ull * 1024 * 1024)
/* Room in MHD's per-connection pool beyond the request head (the answer's header lines). */
#define POOL_SLACK 4096
/* GnuTLS's default suites, TLS 1.3 and 1.2 only: older versions have known attacks and providers use 1.2+. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

static const char *const refusal_reasons[] = {"header_timeout", "body_timeout",      "too_many_connections",
                                              "uri_too_long",   "headers_too_large", "body_too_large",
                                              "bad_request",    "overloaded"};

static void count_refusal(struct http_server *s, const char *reason)
{
	metrics_add(s->metrics, "http_refused_total", "reason", reason, 1);
}

void srv_count_response(struct http_server *s, unsigned status)
{
	char code[16];
	snprintf(code, sizeof(code), "%u", status);
	metrics_add(s->metrics, "http_responses_total", "code", code, 1);
}

char *http_error_json(const char *message)
{
	const char *m = message ? message : "";
	/* cJSON escapes but does not check UTF-8; a path's raw bytes may be anything. */
	char *clean = NULL;
	if (!utf8_valid(m, strlen(m))) {
		clean = strdup(m);
		if (!clean)
			return NULL;
		for (char *c = clean; *c; c++)
			if ((unsigned char)*c >= 0x80)
				*c = '?';
		m = clean;
	}
	cJSON *o = cJSON_CreateObject();
	char *s = NULL;
	if (o && cJSON_AddBoolToObject(o, "ok", 0) && cJSON_AddStringToObject(o, "error", m))
		s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	free(clean);
	return s;
}

/*
 * Set the deadline of mc's connection.  The connection is looked up each
 * time: MHD may report a request completed after the connection closed.
 */
static void conn_wait(struct http_server *s, struct MHD_Connection *mc, enum http_conn_wait what)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	http_conn_wait(s->conns, ci ? ci->socket_context : NULL, what);
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct http_server *s = cls;
	(void)addrlen;
	return http_conns_admit(s->conns, addr) == 0 ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	struct http_server *s = cls;
	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		/* MHD calls this before it closes the socket, as http_conns_detach() needs. */
		http_conns_detach(s->conns, *socket_context);
		*socket_context = NULL;
		return;
	}
	const union MHD_ConnectionInfo *fd = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *ad = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	*socket_context = fd && ad ? http_conns_attach(s->conns, ad->client_addr, fd->connect_fd) : NULL;
}

/* --------------------------------------------------------------- requests */

void srv_request_unref(parley_http_request *r)
{
	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	struct http_server *s = r->srv;
	if (r->upgrade_cb && !atomic_exchange(&r->upgrade_called, 1))
		r->upgrade_cb(r->upgrade_arg, -1, NULL, 0, NULL);
	pthread_mutex_lock(&s->lock);
	if (r->prev)
		r->prev->next = r->next;
	else
		s->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	pthread_mutex_unlock(&s->lock);
	if (r->answer)
		MHD_destroy_response(r->answer);
	pthread_mutex_destroy(&r->lock);
	free(r->uri);
	free(r->method);
	free(r->label);
	free(r->headers);
	free(r->refuse_msg);
	free(r->body);
	free(r);
}

/* The request line is in: MHD hands us the raw target (undecoded, with its query) only here. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
	struct http_server *s = cls;
	parley_http_request *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->srv = s;
	r->mc = mc;
	atomic_init(&r->refs, 1);
	pthread_mutex_init(&r->lock, NULL);
	r->uri = strdup(uri ? uri : "");
	if (!r->uri) {
		pthread_mutex_destroy(&r->lock);
		free(r);
		return NULL;
	}
	char *q = strchr(r->uri, '?');
	if (q)
		*q++ = '\0';
	r->path = r->uri;
	r->query = q ? q : "";
	clock_gettime(CLOCK_MONOTONIC, &r->started);
	ulid_new(r->request_id);
	const union MHD_ConnectionInfo *ad = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ad ? ad->client_addr : NULL;
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->client_ip, sizeof(r->client_ip));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->client_ip, sizeof(r->client_ip));
	pthread_mutex_lock(&s->lock);
	r->next = s->reqs;
	if (s->reqs)
		s->reqs->prev = r;
	s->reqs = r;
	pthread_mutex_unlock(&s->lock);
	size_t ulen = strlen(uri ? uri : "");
	if (ulen > s->cfg.max_url_size) {
		char *m = str_printf("the request target of %zu bytes is over http.max_url_size (%llu bytes)", ulen,
		                     (unsigned long long)s->cfg.max_url_size);
		r->refuse_status = MHD_HTTP_URI_TOO_LONG;
		r->refuse_msg = m;
		r->refuse_reason = "uri_too_long";
	}
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	parley_http_request *r = *con_cls;
	(void)toe;
	if (!r)
		return;
	*con_cls = NULL;
	/* The next request on a kept-alive connection has header_timeout for its head. */
	if (!atomic_load(&r->upgrade_called))
		conn_wait(s, mc, HTTP_CONN_HEAD);
	if (atomic_exchange(&r->tracked, 0))
		atomic_fetch_sub(&s->inflight, 1);
	atomic_store(&r->completed, 1);
	/* MHD hands an upgraded socket over before it completes the request: this one never switched. */
	if (r->upgrade_cb && !atomic_exchange(&r->upgrade_called, 1)) {
		r->upgrade_cb(r->upgrade_arg, -1, NULL, 0, NULL);
		srv_request_unref(r); /* the upgrade's */
	}
	srv_request_unref(r);
}

void http_server_serve(parley_http_request *r, http_handler handler, void *arg, uint64_t max_body, int tracked)
{
	r->routed = 1;
	r->handler = handler;
	r->handler_arg = arg;
	r->max_body = max_body;
	if (!tracked)
		return;
	r->webhook = 1;
	struct http_server *s = r->srv;
	if (atomic_fetch_add(&s->inflight, 1) >= s->cfg.max_inflight) {
		atomic_fetch_sub(&s->inflight, 1);
		r->refuse_status = MHD_HTTP_SERVICE_UNAVAILABLE;
		r->refuse_msg = str_printf("over http.max_inflight (%lld requests at once): retry later",
		                           (long long)s->cfg.max_inflight);
		r->refuse_reason = "overloaded";
		return;
	}
	atomic_store(&r->tracked, 1);
}

void http_server_refuse(parley_http_request *r, int status, const char *message)
{
	r->routed = 1;
	r->refuse_status = status;
	free(r->refuse_msg);
	r->refuse_msg = strdup(message);
}

static struct MHD_Response *error_response(int status, const char *message, int close)
{
	char *body = http_error_json(message);
	struct MHD_Response *resp =
	        MHD_create_response_from_buffer(body ? strlen(body) : 0, body, MHD_RESPMEM_MUST_COPY);
	free(body);
	if (!resp)
		return NULL;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	if (close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	return resp;
}

static enum MHD_Result queue(parley_http_request *r, unsigned status, struct MHD_Response *resp)
{
	if (!resp)
		return MHD_NO;
	r->queued = 1;
	enum MHD_Result rv = MHD_queue_response(r->mc, status, resp);
	MHD_destroy_response(resp);
	return rv;
}

/* Answer a refused request; close says the rest of its body will not be read. */
static enum MHD_Result queue_refusal(parley_http_request *r, int close)
{
	struct http_server *s = r->srv;
	if (r->refuse_reason)
		count_refusal(s, r->refuse_reason);
	srv_count_response(s, (unsigned)r->refuse_status);
	return queue(r, (unsigned)r->refuse_status, error_response(r->refuse_status, r->refuse_msg, close));
}

static void refuse_body(parley_http_request *r, uint64_t declared)
{
	r->refuse_status = MHD_HTTP_CONTENT_TOO_LARGE;
	r->refuse_reason = "body_too_large";
	free(r->refuse_msg);
	if (declared)
		r->refuse_msg = str_printf("the body of %llu bytes is over http.max_body (%llu bytes)",
		                           (unsigned long long)declared, (unsigned long long)r->max_body);
	else
		r->refuse_msg =
		        str_printf("the body is over http.max_body (%llu bytes)", (unsigned long long)r->max_body);
	r->dropped = r->len;
	free(r->body);
	r->body = NULL;
	r->len = r->cap = 0;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct strbuf *sb = cls;
	(void)kind;
	sb_add(sb, key, strlen(key) + 1);
	sb_add(sb, value ? value : "", (value ? strlen(value) : 0) + 1);
	return MHD_YES;
}

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	size_t *n = cls;
	(void)kind;
	*n += strlen(key) + 2 + (value ? strlen(value) : 0) + 2; /* "key: value\r\n" */
	return MHD_YES;
}

/*
 * The request head's size as sent (near enough: MHD folds whitespace).  MHD
 * itself refuses only heads over its pool, which also holds the answer's
 * header lines; this holds the configured limit exactly.
 */
static size_t head_size(parley_http_request *r, const char *method)
{
	size_t n = strlen(method) + 1 + strlen(r->path) + (r->query[0] ? 1 + strlen(r->query) : 0) + 11;
	MHD_get_connection_values(r->mc, MHD_HEADER_KIND, add_header_size, &n);
	return n + 2;
}

/* Copy the headers out of MHD's pool: handlers read them from any thread, until they answer. */
static int snapshot(parley_http_request *r)
{
	struct strbuf sb;
	sb_init(&sb);
	int n = MHD_get_connection_values(r->mc, MHD_HEADER_KIND, collect_header, &sb);
	size_t index_size = (size_t)(n > 0 ? n : 0) * sizeof(struct header);
	char *block = malloc(index_size + sb.len + 1);
	if (!block) {
		sb_free(&sb);
		return -1;
	}
	struct header *h = (struct header *)block;
	char *text = block + index_size;
	if (sb.len)
		memcpy(text, sb.buf, sb.len);
	size_t off = 0;
	for (int i = 0; i < n && off < sb.len; i++) {
		h[i].name = text + off;
		off += strlen(text + off) + 1;
		h[i].value = text + off;
		off += strlen(text + off) + 1;
		r->n_headers++;
	}
	r->headers = h;
	sb_free(&sb);
	return 0;
}

static enum MHD_Result on_head(struct http_server *s, parley_http_request *r, const char *method)
{
	r->phase = PH_BODY;
	conn_wait(s, r->mc, HTTP_CONN_BODY);
	r->method = strdup(method);
	if (!r->method)
		return MHD_NO;
	size_t head = r->refuse_status ? 0 : head_size(r, method);
	if (head > s->cfg.max_header_size) {
		r->refuse_status = MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
		r->refuse_msg = str_printf("the request head of %zu bytes is over http.max_header_size (%llu bytes)",
		                           head, (unsigned long long)s->cfg.max_header_size);
		r->refuse_reason = "headers_too_large";
	}
	if (!r->refuse_status)
		s->route(s->route_arg, r);
	if (!r->routed && !r->refuse_status)
		http_server_refuse(r, MHD_HTTP_NOT_FOUND, "no such path");
	const char *cl = MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t declared = cl ? strtoull(cl, NULL, 10) : 0;
	if (!r->refuse_status && declared > r->max_body)
		refuse_body(r, declared);
	if (!r->refuse_status)
		return MHD_YES;
	/* A client waiting for 100 Continue, or announcing more than we would drop, gets the answer now. */
	const char *expect = MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
	if (declared > DRAIN_LIMIT || (expect && strcasecmp(expect, "100-continue") == 0))
		return queue_refusal(r, 1);
	return MHD_YES;
}

static enum MHD_Result on_body(parley_http_request *r, const char *data, size_t n)
{
	if (r->queued)
		return MHD_YES;
	if (r->refuse_status) {
		r->dropped += n;
		return r->dropped > DRAIN_LIMIT ? queue_refusal(r, 1) : MHD_YES;
	}
	if (r->len + n > r->max_body) {
		refuse_body(r, 0);
		r->dropped += n;
		return MHD_YES;
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + n + 1)
			cap *= 2;
		char *nb = realloc(r->body, cap);
		if (!nb)
			return MHD_NO;
		r->body = nb;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return MHD_YES;
}

/* The body is in: run the handler, and answer now or suspend until it does. */
static enum MHD_Result on_request(struct http_server *s, parley_http_request *r)
{
	conn_wait(s, r->mc, HTTP_CONN_BUSY);
	if (r->queued)
		return MHD_YES;
	if (r->refuse_status)
		return queue_refusal(r, 0);
	if (snapshot(r) != 0)
		return MHD_NO;
	r->phase = PH_HANDLER;
	atomic_fetch_add(&r->refs, 1); /* the handler's, dropped by http_server_respond() */
	r->handler(r->handler_arg, r);
	pthread_mutex_lock(&r->lock);
	struct MHD_Response *resp = r->answer;
	unsigned status = r->answer_status;
	r->answer = NULL;
	/* Decided under the lock: once suspended, another thread may answer at any moment. */
	int wait = !resp && !r->answered;
	if (wait) {
		MHD_suspend_connection(r->mc);
		r->suspended = 1;
	}
	pthread_mutex_unlock(&r->lock);
	if (wait)
		return MHD_YES;
	return resp ? queue(r, status, resp) : MHD_NO; /* answered, but out of memory for the answer */
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	parley_http_request *r = *con_cls;
	(void)url;
	(void)version;
	if (!r)
		return MHD_NO; /* out of memory in on_uri */
	r->mc = mc;
	switch (r->phase) {
	case PH_HEAD:
		return on_head(s, r, method);
	case PH_BODY:
		if (*upload_data_size) {
			size_t n = *upload_data_size;
			*upload_data_size = 0;
			return on_body(r, upload_data, n);
		}
		return on_request(s, r);
	case PH_HANDLER:
	default: {
		/* Resumed: the answer is waiting (or the server is stopping and there is none). */
		pthread_mutex_lock(&r->lock);
		struct MHD_Response *resp = r->answer;
		unsigned status = r->answer_status;
		r->answer = NULL;
		pthread_mutex_unlock(&r->lock);
		return resp ? queue(r, status, resp) : MHD_NO;
	}
	}
}

/* Store resp as req's answer; resume the connection if the handler already returned. */
int srv_answer(parley_http_request *r, unsigned status, struct MHD_Response *resp)
{
	struct http_server *s = r->srv;
	pthread_mutex_lock(&r->lock);
	if (r->answered) {
		pthread_mutex_unlock(&r->lock);
		if (resp)
			MHD_destroy_response(resp);
		return -1;
	}
	r->answered = 1;
	r->answer = resp;
	r->answer_status = status;
	if (r->suspended) {
		r->suspended = 0;
		/* A suspended connection lives until it is resumed or the daemon stops. */
		pthread_mutex_lock(&s->resume_lock);
		if (!s->stopping)
			MHD_resume_connection(r->mc);
		pthread_mutex_unlock(&s->resume_lock);
	}
	pthread_mutex_unlock(&r->lock);
	return 0;
}

void http_server_respond(parley_http_request *r, int status, const char *content_type, const char *body, size_t len)
{
	http_server_respond_with(r, status, content_type, NULL, body, len);
}

void http_server_respond_with(parley_http_request *r, int status, const char *content_type, const char *const *headers,
                              const char *body, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (resp && content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	for (size_t i = 0; resp && headers && headers[i] && headers[i + 1]; i += 2)
		MHD_add_response_header(resp, headers[i], headers[i + 1]);
	if (resp)
		MHD_add_response_header(resp, "X-Request-Id", r->request_id);
	if (resp && status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	if (srv_answer(r, (unsigned)status, resp) == 0) {
		srv_count_response(r->srv, (unsigned)status);
		if (r->webhook && r->label) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			double s = (double)(now.tv_sec - r->started.tv_sec) +
			           (double)(now.tv_nsec - r->started.tv_nsec) / 1e9;
			metrics_observe(
			        r->srv->metrics, "webhook_seconds",
			        "Time from a webhook's request line to its answer (a 2xx only after the commit).",
			        "channel", r->label, s);
		}
	}
	srv_request_unref(r);
}

void http_server_respond_error(parley_http_request *r, int status, const char *message)
{
	char *body = http_error_json(message);
	http_server_respond(r, status, "application/json", body, body ? strlen(body) : 0);
	free(body);
}

/* ---------------------------------------------------------------- upgrades */

static void on_upgraded(void *cls, struct MHD_Connection *mc, void *con_cls, const char *extra, size_t extra_len,
                        MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	parley_http_request *r = cls;
	(void)mc;
	(void)con_cls;
	if (atomic_exchange(&r->upgrade_called, 1)) {
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		return;
	}
	r->upgrade_cb(r->upgrade_arg, sock, extra, extra_len, (struct http_upgraded *)urh);
	srv_request_unref(r); /* the upgrade's reference */
}

int http_server_upgrade(parley_http_request *r, const char *const *headers, http_upgrade_cb cb, void *arg)
{
	struct http_server *s = r->srv;
	struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgraded, r);
	if (!resp) {
		http_server_respond_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory for the upgrade");
		return PARLEY_ENOMEM;
	}
	for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
		MHD_add_response_header(resp, headers[i], headers[i + 1]);
	/* An upgraded connection may stay for hours: no max_inflight slot. */
	if (atomic_exchange(&r->tracked, 0))
		atomic_fetch_sub(&s->inflight, 1);
	r->upgrade_cb = cb;
	r->upgrade_arg = arg;
	/* Kept until on_upgraded() ran, or until the request is freed without it (then cb gets -1). */
	atomic_fetch_add(&r->refs, 1);
	if (srv_answer(r, MHD_HTTP_SWITCHING_PROTOCOLS, resp) != 0) {
		r->upgrade_cb = NULL;
		srv_request_unref(r);
		srv_request_unref(r);
		return PARLEY_EINVAL;
	}
	srv_count_response(s, MHD_HTTP_SWITCHING_PROTOCOLS);
	srv_request_unref(r);
	return 0;
}

void http_upgraded_close(struct http_upgraded *u)
{
	if (u)
		MHD_upgrade_action((struct MHD_UpgradeResponseHandle *)u, MHD_UPGRADE_ACTION_CLOSE);
}

const char *http_server_method(parley_http_request *r)
{
	return r->method;
}

const char *http_server_path(parley_http_request *r)
{
	return r->path;
}

const char *http_server_query(parley_http_request *r)
{
	return r->query;
}

const char *http_server_request_id(parley_http_request *r)
{
	return r->request_id;
}

const char *http_server_client_ip(parley_http_request *r)
{
	return r->client_ip[0] ? r->client_ip : "unknown";
}

int http_server_tls(parley_http_request *r)
{
	return r->srv->tls;
}

const char *http_server_header(parley_http_request *r, const char *name)
{
	if (!r->headers) /* the router, on MHD's thread, before the snapshot */
		return r->mc ? MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, name) : NULL;
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

int http_server_header_at(parley_http_request *r, size_t i, const char **name, const char **value)
{
	if (!r->headers || i >= r->n_headers)
		return -1;
	*name = r->headers[i].name;
	*value = r->headers[i].value;
	return 0;
}

const void *http_server_body(parley_http_request *r, size_t *len)
{
	*len = r->len;
	return r->body ? r->body : "";
}

void http_server_set_label(parley_http_request *r, const char *label)
{
	free(r->label);
	r->label = label ? strdup(label) : NULL;
}

const char *http_server_label(parley_http_request *r)
{
	return r->label;
}

void *http_server_router_arg(parley_http_request *r)
{
	return r->srv->route_arg;
}

/* ------------------------------------------------------------------ server */

/* MHD's log: count the refusals it answers by itself, keep the rest for debugging. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *s = cls;
	static const char refused[] = "Error processing request (HTTP response code is %u";
	if (strncmp(fmt, refused, sizeof(refused) - 1) == 0) {
		va_list aq;
		va_copy(aq, ap);
		unsigned code = va_arg(aq, unsigned);
		va_end(aq);
		srv_count_response(s, code);
		count_refusal(s, code == MHD_HTTP_URI_TOO_LONG                      ? "uri_too_long"
		                 : code == MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE ? "headers_too_large"
		                 : code == MHD_HTTP_CONTENT_TOO_LARGE               ? "body_too_large"
		                                                                    : "bad_request");
		return;
	}
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	if (s->starting) {
		free(s->start_error);
		s->start_error = strdup(line);
	}
	log_msg(PARLEY_LOG_DEBUG, "http", "libmicrohttpd: %s", line);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, char **errmsg)
{
	const char *colon = strrchr(listen, ':');
	if (!colon || !colon[1]) {
		*errmsg = str_printf("http.listen '%s' is not host:port (e.g. 127.0.0.1:8080)", listen);
		return PARLEY_EINVAL;
	}
	char *host = strndup(listen, (size_t)(colon - listen));
	if (!host)
		return PARLEY_ENOMEM;
	char *h = host;
	if (h[0] == '[' && h[strlen(h) - 1] == ']') {
		h[strlen(h) - 1] = '\0';
		h++;
	}
	struct addrinfo hints = {
	        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int rv = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &res);
	if (rv != 0) {
		*errmsg = str_printf("http.listen '%s' is not host:port: %s", listen, gai_strerror(rv));
		free(host);
		return PARLEY_EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	free(host);
	return 0;
}

int http_server_start(struct http_server **out, const struct http_server_config *cfg, struct metrics *metrics,
                      http_router route, void *route_arg, char **errmsg)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int rv = parse_listen(cfg->listen, &ss, &sslen, errmsg);
	if (rv != 0)
		return rv;
	struct http_server *s = calloc(1, sizeof(*s));
	if (!s)
		return PARLEY_ENOMEM;
	s->cfg = *cfg;
	s->cfg.tls_cert_pem = s->cfg.tls_key_pem = NULL;
	s->metrics = metrics;
	s->route = route;
	s->route_arg = route_arg;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->resume_lock, NULL);
	for (size_t i = 0; i < sizeof(refusal_reasons) / sizeof(refusal_reasons[0]); i++)
		metrics_add(metrics, "http_refused_total", "reason", refusal_reasons[i], 0);
	struct http_conns_limits lim = {cfg->max_connections, cfg->max_connections_per_ip, cfg->header_timeout_ms,
	                                cfg->body_timeout_ms};
	if ((rv = http_conns_open(&s->conns, &lim, metrics)) != 0) {
		*errmsg = str_printf("cannot start the HTTP connection watchdog thread");
		http_server_free(s);
		return rv;
	}
	s->cfg.max_connections = http_conns_limits(s->conns)->max_connections;

	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned workers = cpus < 1 ? 1 : cpus > 4 ? 4 : (unsigned)cpus;
	int64_t longest = cfg->header_timeout_ms > cfg->body_timeout_ms ? cfg->header_timeout_ms : cfg->body_timeout_ms;
	/* MHD's own timeout is idle time (a client that stops reading its answer); ours are the deadlines. */
	unsigned idle_s = longest > 0 ? (unsigned)((longest + 999) / 1000) + 1 : 0; /* 0: none */
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE |
	                 MHD_USE_ERROR_LOG | MHD_USE_TURBO;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_OptionItem tls[] = {{MHD_OPTION_HTTPS_MEM_CERT, 0, NULL},
	                               {MHD_OPTION_HTTPS_MEM_KEY, 0, NULL},
	                               {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
	                               {MHD_OPTION_END, 0, NULL}};
	if (cfg->tls_cert_pem && cfg->tls_key_pem) {
		s->tls_cert = strdup(cfg->tls_cert_pem);
		s->tls_key = strdup(cfg->tls_key_pem);
		if (!s->tls_cert || !s->tls_key) {
			http_server_free(s);
			return PARLEY_ENOMEM;
		}
		tls[0].ptr_value = s->tls_cert;
		tls[1].ptr_value = s->tls_key;
		flags |= MHD_USE_TLS;
		s->tls = 1;
	} else {
		tls[0].option = MHD_OPTION_END;
	}
	s->starting = 1;
	/* The logger goes first so that MHD reports even option errors through it. */
	/* MHD listens on ss; the port is passed too only because MHD names it in its errors. */
	uint16_t port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                               : ((struct sockaddr_in *)&ss)->sin_port);
	s->d = MHD_start_daemon(flags, port, on_accept, s, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
	                        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, workers,
	                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(cfg->max_header_size + POOL_SLACK),
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(s->cfg.max_connections * workers),
	                        MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
	                        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
	                        MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
	s->starting = 0;
	if (!s->d) {
		const char *why = s->start_error ? s->start_error : strerror(errno);
		*errmsg = str_printf("cannot listen on http.listen %s: %s%s", cfg->listen, why,
		                     strstr(why, "in use") ? " (another process listens there: stop it or change "
		                                             "http.listen)"
		                                           : "");
		http_server_free(s);
		return PARLEY_EIO;
	}
	*out = s;
	return 0;
}

void http_server_stop(struct http_server *s)
{
	if (!s || !s->d)
		return;
	/* Requests still waiting for their handler are answered 503, so their providers retry. */
	parley_http_request **waiting = NULL;
	size_t n = 0, cap = 0;
	pthread_mutex_lock(&s->lock);
	for (parley_http_request *r = s->reqs; r; r = r->next) {
		pthread_mutex_lock(&r->lock);
		int wants = r->suspended && !r->answered;
		pthread_mutex_unlock(&r->lock);
		if (!wants)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			parley_http_request **nw = realloc(waiting, cap * sizeof(*nw));
			if (!nw)
				break;
			waiting = nw;
		}
		atomic_fetch_add(&r->refs, 1);
		waiting[n++] = r;
	}
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < n; i++)
		if (srv_answer(waiting[i], MHD_HTTP_SERVICE_UNAVAILABLE,
		               error_response(MHD_HTTP_SERVICE_UNAVAILABLE, "the gateway is shutting down: retry later",
		                              1)) == 0)
			srv_count_response(s, MHD_HTTP_SERVICE_UNAVAILABLE);
	/* Give those answers a moment to leave before the connections close. */
	for (int tries = 0; tries < 100; tries++) {
		size_t left = 0;
		for (size_t i = 0; i < n; i++)
			left += !atomic_load(&waiting[i]->completed);
		if (!left)
			break;
		usleep(10000);
	}
	for (size_t i = 0; i < n; i++)
		srv_request_unref(waiting[i]);
	free(waiting);

	http_streams_end(s);

	pthread_mutex_lock(&s->resume_lock);
	s->stopping = 1;
	pthread_mutex_unlock(&s->resume_lock);
	MHD_stop_daemon(s->d);
	s->d = NULL;
	http_streams_gone(s);
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	/* Requests MHD never completed (it stopped first) and whose handlers have answered. */
	while (s->reqs) {
		parley_http_request *r = s->reqs;
		atomic_store(&r->refs, 1);
		srv_request_unref(r);
	}
	http_conns_close(s->conns);
	pthread_mutex_destroy(&s->resume_lock);
	pthread_mutex_destroy(&s->lock);
	free(s->start_error);
	if (s->tls_key)
		explicit_bzero(s->tls_key, strlen(s->tls_key));
	free(s->tls_key);
	free(s->tls_cert);
	free(s);
}
