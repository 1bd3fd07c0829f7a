/*
 * http.c: the web chat's HTTP plumbing and its simplest routes: the Origin
 * check against allowed_origins, answers with CORS headers, the Bearer
 * session token and JSON bodies; GET /widget.js, GET /settings and the
 * OPTIONS preflights.
 */
#include "webchat.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The request's Origin when allowed, "" when it has none; NULL when refused. */
static const char *origin_of(struct webchat *w, parley_http_request *req)
{
	const char *o = w->h->http_header(req, "Origin");
	if (!o || !o[0])
		return "";
	if (w->any_origin)
		return o;
	const cJSON *it;
	cJSON_ArrayForEach(it, w->origins)
	{
		if (cJSON_IsString(it) && strcmp(it->valuestring, o) == 0)
			return o;
	}
	return NULL;
}

void wc_respond(struct webchat *w, parley_http_request *req, const char *origin, int status, const char *ctype,
                const char *body, size_t len)
{
	const char *cors[] = {"Access-Control-Allow-Origin",
	                      origin,
	                      "Vary",
	                      "Origin",
	                      "Access-Control-Allow-Headers",
	                      "Authorization, Content-Type",
	                      "Access-Control-Allow-Methods",
	                      "GET, POST, OPTIONS",
	                      "Access-Control-Max-Age",
	                      "600",
	                      "Cache-Control",
	                      "no-store",
	                      NULL};
	const char *none[] = {"Cache-Control", "no-store", NULL};
	w->h->http_respond_with(req, status, ctype, origin && origin[0] ? cors : none, body, len);
}

void wc_respond_json(struct webchat *w, parley_http_request *req, const char *origin, int status, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);
	wc_respond(w, req, origin, status, "application/json", s ? s : "{}", s ? strlen(s) : 2);
	free(s);
	cJSON_Delete(o);
}

void wc_respond_error(struct webchat *w, parley_http_request *req, const char *origin, int status, const char *code,
                      const char *message)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 0);
	cJSON_AddStringToObject(o, "code", code);
	cJSON_AddStringToObject(o, "error", message);
	wc_respond_json(w, req, origin, status, o);
}

/* The Origin check every route but widget.js starts with; NULL when answered 403. */
const char *wc_check_origin(struct webchat *w, parley_http_request *req)
{
	const char *origin = origin_of(w, req);
	if (!origin) {
		w->h->metric_add(w->inst, "webchat_origin_refused_total", 1);
		wc_respond_error(w, req, NULL, 403, "origin",
		                 "this page's origin is not in the channel's allowed_origins");
	}
	return origin;
}

/* The session of a request's Authorization: Bearer token; 0, or answered 401. */
int wc_bearer(struct webchat *w, parley_http_request *req, const char *origin, struct wc_session *s)
{
	const char *a = w->h->http_header(req, "Authorization");
	const char *why = "Authorization: Bearer <session token> is required";
	if (a && strncmp(a, "Bearer ", 7) == 0 &&
	    wc_session_check(w->h, w->secret, w->name, a + 7, wc_now_s(), w->ttl_s, s, &why) == 0)
		return 0;
	wc_respond_error(w, req, origin, 401, "bad_token", why);
	return -1;
}

cJSON *wc_json_body(struct webchat *w, parley_http_request *req, const char *origin, int empty_ok)
{
	size_t len;
	const char *body = w->h->http_body(req, &len);
	char why[200];
	if (len == 0 && empty_ok)
		return cJSON_CreateObject();
	if (w->h->json_check(body, len, why, sizeof(why)) != 0) {
		wc_respond_error(w, req, origin, 400, "bad_request", why);
		return NULL;
	}
	cJSON *o = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		wc_respond_error(w, req, origin, 400, "bad_request", "the body must be a JSON object");
		return NULL;
	}
	return o;
}

void wc_on_widget(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const char *headers[] = {"Cache-Control", "public, max-age=300", "X-Content-Type-Options", "nosniff", NULL};
	w->h->http_respond_with(req, 200, "application/javascript; charset=utf-8", headers,
	                        (const char *)webchat_widget_js, (size_t)webchat_widget_js_len);
}

void wc_on_preflight(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const char *origin = wc_check_origin(w, req);
	if (origin)
		wc_respond(w, req, origin, 204, NULL, "", 0);
}

/* GET /settings: what the widget shows before a session exists. */
void wc_on_settings(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const char *origin = wc_check_origin(w, req);
	if (!origin)
		return;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddStringToObject(o, "title", w->title);
	cJSON_AddBoolToObject(o, "prechat", w->prechat);
	cJSON_AddBoolToObject(o, "require_identity", w->require_identity);
	cJSON_AddNumberToObject(o, "max_message", (double)w->max_message);
	wc_respond_json(w, req, origin, 200, o);
}
