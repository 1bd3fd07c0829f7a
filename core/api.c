/* api.c: the op table over HTTP under /api/v1 (see api.h). */
#include "api.h"
#include "api_internal.h"
#include "gateway.h"
#include "http_server.h"
#include "log.h"
#include "ops.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Requests waiting for a worker beyond this are answered 503 at once. */
#define API_QUEUE_MAX 1024
#define API_WORKERS   4
#define PARAM_MAX     512

enum target_kind { T_OP, T_GENERIC, T_LOGIN, T_LOGOUT, T_ME, T_OPENAPI, T_ATTACHMENT, T_EVENTS };

struct target {
	struct api *api;
	enum target_kind kind;
	const char *method, *path; /* path template under /api/v1 */
	const struct op_def *op;   /* T_OP */
};

struct job {
	parley_http_request *req;
	const struct target *t;
	struct job *next;
};

struct api {
	struct gateway *gw;
	struct target *targets;
	size_t n_targets;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct job *head, *tail;
	size_t queued;
	int stop;
	pthread_t threads[API_WORKERS];
	size_t n_threads;
};

static const struct target specials[] = {
        {NULL, T_LOGIN, "POST", "/login", NULL},
        {NULL, T_LOGOUT, "POST", "/logout", NULL},
        {NULL, T_ME, "GET", "/me", NULL},
        {NULL, T_OPENAPI, "GET", "/openapi.json", NULL},
        {NULL, T_EVENTS, "GET", "/events", NULL},
        {NULL, T_ATTACHMENT, "GET", "/attachments/{sha256}", NULL},
        {NULL, T_GENERIC, "POST", "/ops/{op}", NULL},
};

/* ------------------------------------------------------------ answers */

static const char *const plain_headers[] = {"Cache-Control", "no-store", "X-Content-Type-Options", "nosniff", NULL};

void api_respond_json(parley_http_request *req, int status, const char *json)
{
	http_server_respond_with(req, status, "application/json", plain_headers, json, json ? strlen(json) : 0);
}

void api_respond_error(parley_http_request *req, int status, const char *code, const char *message)
{
	cJSON *r = cJSON_CreateObject();
	cJSON *e = cJSON_AddObjectToObject(r, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	api_respond_json(req, status, s);
	free(s);
}

/* An op's reply ({"ok":...}) as HTTP: the object without "ok", or its error with the error's status. */
static void respond_reply(parley_http_request *req, char *reply)
{
	cJSON *r = reply ? cJSON_Parse(reply) : NULL;
	free(reply);
	if (!cJSON_IsObject(r)) {
		cJSON_Delete(r);
		api_respond_error(req, 500, "internal", "the op gave no reply");
		return;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"))) {
		cJSON_DeleteItemFromObjectCaseSensitive(r, "ok");
		char *s = cJSON_PrintUnformatted(r);
		api_respond_json(req, 200, s);
		free(s);
	} else {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
		const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "code"));
		const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
		api_respond_error(req, ops_error_status(code), code ? code : "internal", msg ? msg : "failed");
	}
	cJSON_Delete(r);
}

/* ------------------------------------------------------------ matching */

/*
 * Match path against template (segments; "{name}" takes one non-empty
 * segment).  With params, each {name} is added to it percent-decoded as a
 * string.  1 on a match.
 */
static int match(const char *tpl, const char *path, cJSON *params)
{
	while (*tpl && *path) {
		if (*tpl != '/' || *path != '/')
			return 0;
		tpl++, path++;
		size_t tl = strcspn(tpl, "/"), pl = strcspn(path, "/");
		if (tpl[0] == '{') {
			if (pl == 0 || pl >= PARAM_MAX)
				return 0;
			if (params) {
				char name[64], value[PARAM_MAX];
				snprintf(name, sizeof(name), "%.*s", (int)(tl - 2), tpl + 1);
				if (api_pct_decode(path, pl, value, sizeof(value)) != 0)
					return 0;
				cJSON_AddStringToObject(params, name, value);
			}
		} else if (tl != pl || strncmp(tpl, path, tl) != 0) {
			return 0;
		}
		tpl += tl, path += pl;
	}
	return *tpl == '\0' && *path == '\0';
}

int api_pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			char hex[3] = {s[i + 1], s[i + 2], 0};
			char *end;
			long v = strtol(hex, &end, 16);
			if (*end || end != hex + 2)
				return -1;
			c = (unsigned char)v;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c == 0 || o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return utf8_valid(out, o) ? 0 : -1;
}

/* ------------------------------------------------------------ requests */

/* A query value as the field's type; NULL (with why) when it is not one. */
static cJSON *typed_value(const struct op_field *f, const char *v, char *why, size_t cap)
{
	switch (f->type) {
	case OP_INTEGER: {
		char *end;
		long long n = strtoll(v, &end, 10);
		if (!*v || *end || n < -1000000000LL || n > 1000000000LL) {
			snprintf(why, cap, "query parameter '%s' must be an integer", f->name);
			return NULL;
		}
		return cJSON_CreateNumber((double)n);
	}
	case OP_BOOLEAN:
		if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
			return cJSON_CreateBool(v[0] == 't');
		snprintf(why, cap, "query parameter '%s' must be true or false", f->name);
		return NULL;
	case OP_STRING:
		return cJSON_CreateString(v);
	default:
		snprintf(why, cap, "'%s' cannot be given in the query: send it in a JSON body", f->name);
		return NULL;
	}
}

/* The query's parameters into req, each a declared field of op; -1 with why otherwise. */
static int add_query(const struct op_def *op, const char *query, cJSON *req, char *why, size_t cap)
{
	const char *p = query;
	while (p && *p) {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		char name[64], value[PARAM_MAX];
		size_t nl = eq ? (size_t)(eq - p) : len;
		if (len && (api_pct_decode(p, nl, name, sizeof(name)) != 0 ||
		            api_pct_decode(eq ? eq + 1 : "", eq ? len - nl - 1 : 0, value, sizeof(value)) != 0)) {
			snprintf(why, cap, "a query parameter is too long or not valid UTF-8");
			return -1;
		}
		if (len && value[0]) { /* ?status= is no filter */
			const struct op_field *f = op->fields;
			while (f->name && strcmp(f->name, name) != 0)
				f++;
			if (!f->name) {
				snprintf(why, cap, "unknown query parameter '%.60s' for %s", name, op->name);
				return -1;
			}
			cJSON *v = typed_value(f, value, why, cap);
			if (!v)
				return -1;
			cJSON_DeleteItemFromObjectCaseSensitive(req, name);
			cJSON_AddItemToObject(req, name, v);
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return 0;
}

/* The JSON body as an object (an empty body is {}); NULL with why when it is not one. */
static cJSON *body_object(parley_http_request *req, char *why, size_t cap)
{
	size_t len;
	const char *body = http_server_body(req, &len);
	if (len == 0)
		return cJSON_CreateObject();
	const char *ct = http_server_header(req, "Content-Type");
	if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
		snprintf(why, cap, "the body must be JSON: send Content-Type: application/json");
		return NULL;
	}
	if (!utf8_valid(body, len)) {
		snprintf(why, cap, "the body is not valid UTF-8");
		return NULL;
	}
	cJSON *o = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		snprintf(why, cap, "the body must be a JSON object");
		return NULL;
	}
	return o;
}

static void serve_op(struct api *a, parley_http_request *req, const struct target *t, const struct auth_principal *who)
{
	char why[256];
	cJSON *params = cJSON_CreateObject();
	match(t->path, http_server_path(req) + 7, params);
	const struct op_def *op = t->op;
	if (t->kind == T_GENERIC) {
		op = ops_find(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "op")));
		if (!op) {
			cJSON_Delete(params);
			api_respond_error(req, 404, "unknown_op",
			                  "no op of that name: GET /api/v1/openapi.json lists them");
			return;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(params, "op");
	}
	cJSON *body = body_object(req, why, sizeof(why));
	if (!body) {
		cJSON_Delete(params);
		api_respond_error(req, 400, "invalid_request", why);
		return;
	}
	if (add_query(op, http_server_query(req), body, why, sizeof(why)) != 0) {
		cJSON_Delete(params);
		cJSON_Delete(body);
		api_respond_error(req, 400, "invalid_request", why);
		return;
	}
	/* The path names the object: it wins over the same member in the body. */
	cJSON *p;
	cJSON_ArrayForEach(p, params)
	{
		cJSON_DeleteItemFromObjectCaseSensitive(body, p->string);
		cJSON_AddStringToObject(body, p->string, p->valuestring);
	}
	cJSON_Delete(params);
	respond_reply(req, ops_call(a->gw, who, op->name, body));
	cJSON_Delete(body);
}

static void serve(struct api *a, parley_http_request *req, const struct target *t)
{
	if (t->kind == T_OPENAPI) {
		char *doc = api_openapi(a->gw);
		api_respond_json(req, doc ? 200 : 500, doc ? doc : "{}");
		free(doc);
		return;
	}
	if (t->kind == T_LOGIN) {
		api_login(a->gw, req);
		return;
	}
	struct auth_principal who;
	int full = 0;
	if (api_authenticate(a->gw, req, &who, &full) != 0)
		return; /* answered 401 */
	const struct auth_principal *p = full ? NULL : &who;
	switch (t->kind) {
	case T_LOGOUT:
		api_logout(a->gw, req);
		break;
	case T_ME:
		api_me(req, p);
		break;
	case T_ATTACHMENT:
		api_attachment(a->gw, req, p);
		break;
	case T_EVENTS:
		api_events(a->gw, req, p);
		break;
	default:
		serve_op(a, req, t, p);
	}
	api_principal_done(&who);
}

/* ------------------------------------------------------------ workers */

static void *worker_main(void *arg)
{
	struct api *a = arg;
	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (!a->head && !a->stop)
			pthread_cond_wait(&a->cv, &a->lock);
		struct job *j = a->head;
		if (!j)
			break; /* stopping, nothing left */
		a->head = j->next;
		if (!a->head)
			a->tail = NULL;
		a->queued--;
		pthread_mutex_unlock(&a->lock);
		serve(a, j->req, j->t);
		free(j);
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* The server's handler: the body is in; a worker answers. */
static void on_api(void *arg, parley_http_request *req)
{
	const struct target *t = arg;
	struct api *api = t->api;
	struct job *j = calloc(1, sizeof(*j));
	pthread_mutex_lock(&api->lock);
	int refused = !j || api->stop || api->queued >= API_QUEUE_MAX;
	if (!refused) {
		j->req = req;
		j->t = t;
		if (api->tail)
			api->tail->next = j;
		else
			api->head = j;
		api->tail = j;
		api->queued++;
		pthread_cond_signal(&api->cv);
	}
	pthread_mutex_unlock(&api->lock);
	if (refused) {
		free(j);
		api_respond_error(req, 503, "unavailable", "the API is busy: retry shortly");
	}
}

void api_route(struct api *a, parley_http_request *req, const char *path)
{
	const char *method = http_server_method(req);
	int path_known = 0;
	for (size_t i = 0; i < a->n_targets; i++) {
		const struct target *t = &a->targets[i];
		if (!match(t->path, path, NULL))
			continue;
		path_known = 1;
		int head_of_get = strcmp(method, "HEAD") == 0 && strcmp(t->method, "GET") == 0;
		if (strcmp(t->method, method) != 0 && !head_of_get)
			continue;
		http_server_set_label(req, "api");
		http_server_serve(req, on_api, (void *)t, a->gw->cfg.http_max_body, 0);
		return;
	}
	http_server_refuse(req, path_known ? 405 : 404,
	                   path_known ? "method not allowed for this API path"
	                              : "no such API path: GET /api/v1/openapi.json lists them");
}

/* ------------------------------------------------------------ lifecycle */

int api_open(struct api **out, struct gateway *gw)
{
	struct api *a = calloc(1, sizeof(*a));
	size_t n_ops;
	const struct op_def *ops = ops_table(&n_ops);
	size_t n_special = sizeof(specials) / sizeof(specials[0]);
	if (!a || !(a->targets = calloc(n_ops + n_special, sizeof(*a->targets)))) {
		free(a);
		return PARLEY_ENOMEM;
	}
	a->gw = gw;
	/* The fixed paths first: /conversations/{id} must not take /ops/... and the like. */
	for (size_t i = 0; i < n_special; i++) {
		a->targets[a->n_targets] = specials[i];
		a->targets[a->n_targets++].api = a;
	}
	for (size_t i = 0; i < n_ops; i++)
		if (ops[i].http_path)
			a->targets[a->n_targets++] =
			        (struct target){a, T_OP, ops[i].http_method, ops[i].http_path, &ops[i]};
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cv, NULL);
	for (; a->n_threads < API_WORKERS; a->n_threads++)
		if (thread_start(&a->threads[a->n_threads], worker_main, a, "parley:api") != 0)
			break;
	if (a->n_threads == 0) {
		api_close(a);
		return PARLEY_EIO;
	}
	*out = a;
	return 0;
}

void api_close(struct api *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = 1;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->lock);
	for (size_t i = 0; i < a->n_threads; i++)
		pthread_join(a->threads[i], NULL);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cv);
	free(a->targets);
	free(a);
}
