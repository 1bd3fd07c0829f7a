/*
 * api_auth.c: who calls the HTTP API, and signing in and out.
 *
 * Agents sign in with POST /api/v1/login and carry the session in the
 * cookie parley_session (HttpOnly, SameSite=Strict, Secure over TLS);
 * services send Authorization: Bearer pst_...; the operator's own tools
 * may send control.token as the bearer (the control socket's rights).
 * A request signed in by cookie that changes something and names another
 * Origin than this gateway's is refused (SameSite=Strict already keeps
 * other sites' requests from carrying the cookie; this is the second lock).
 */
#include "api_internal.h"
#include "auth.h"
#include "crypto.h"
#include "gateway.h"
#include "http_server.h"
#include "log.h"
#include "queue.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define COOKIE "parley_session"

/* The bearer token of req, or NULL. */
static const char *bearer(parley_http_request *req)
{
	const char *h = http_server_header(req, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return *h ? h : NULL;
}

/* The session cookie's value into out; 0 when there is none (or it is too long to be one). */
static int session_cookie(parley_http_request *req, char *out, size_t cap)
{
	const char *h = http_server_header(req, "Cookie");
	for (const char *p = h; p && *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		size_t len = strcspn(p, ";");
		if (len > sizeof(COOKIE) && strncmp(p, COOKIE "=", sizeof(COOKIE)) == 0) {
			size_t vl = len - sizeof(COOKIE);
			if (vl == 0 || vl >= cap)
				return 0;
			memcpy(out, p + sizeof(COOKIE), vl);
			out[vl] = '\0';
			return 1;
		}
		p += len;
	}
	return 0;
}

static void unauthorized(parley_http_request *req, const char *message)
{
	static const char *const headers[] = {"WWW-Authenticate", "Bearer realm=\"parley\"", "Cache-Control",
	                                      "no-store", NULL};
	cJSON *r = cJSON_CreateObject();
	cJSON *e = cJSON_AddObjectToObject(r, "error");
	cJSON_AddStringToObject(e, "code", "unauthorized");
	cJSON_AddStringToObject(e, "message", message);
	char *body = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	http_server_respond_with(req, 401, "application/json", headers, body, body ? strlen(body) : 0);
	free(body);
}

/* 1 when req's Origin (when it has one) is this gateway: scheme://Host. */
static int same_origin(parley_http_request *req)
{
	const char *origin = http_server_header(req, "Origin");
	const char *host = http_server_header(req, "Host");
	if (!origin)
		return 1;
	if (!host)
		return 0;
	char want[512];
	snprintf(want, sizeof(want), "%s://%s", http_server_tls(req) ? "https" : "http", host);
	return strcmp(origin, want) == 0;
}

int api_authenticate(struct gateway *gw, parley_http_request *req, struct auth_principal *who, int *full)
{
	memset(who, 0, sizeof(*who));
	*full = 0;
	const char *tok = bearer(req);
	if (tok) {
		const char *want = gw->cfg.control_token;
		/* control.token: the rights of the control socket, for the operator's own tools. */
		if (want && strlen(tok) == strlen(want) && crypto_ct_equal(tok, want, strlen(want))) {
			*full = 1;
			return 0;
		}
		if (gw->auth && auth_bearer(gw->auth, tok, who) == 0)
			return 0;
		unauthorized(req, "the bearer token is not valid (revoked, expired or mistyped)");
		return -1;
	}
	char session[AUTH_TOKEN_MAX + 8];
	if (session_cookie(req, session, sizeof(session))) {
		if (!gw->auth || auth_session(gw->auth, session, who) != 0) {
			unauthorized(req, "the session has ended: sign in again");
			return -1;
		}
		const char *m = http_server_method(req);
		if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && !same_origin(req)) {
			auth_principal_clear(who);
			api_respond_error(req, 403, "forbidden",
			                  "a signed-in change must come from this gateway's own pages");
			return -1;
		}
		return 0;
	}
	unauthorized(req, "sign in (POST /api/v1/login) or send Authorization: Bearer <token>");
	return -1;
}

void api_principal_done(struct auth_principal *who)
{
	auth_principal_clear(who);
}

/* The Set-Cookie value for token (NULL: the one that removes the cookie), malloc'd. */
static char *cookie(parley_http_request *req, const char *token, int64_t max_age_s)
{
	return str_printf(COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s", token ? token : "",
	                  token ? (long long)max_age_s : 0LL, http_server_tls(req) ? "; Secure" : "");
}

void api_login(struct gateway *gw, parley_http_request *req)
{
	size_t len;
	const char *body = http_server_body(req, &len);
	cJSON *in = len && utf8_valid(body, len) ? cJSON_ParseWithLength(body, len) : NULL;
	const char *email = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "email"));
	const char *password = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "password"));
	if (!cJSON_IsObject(in) || !email || !password) {
		cJSON_Delete(in);
		api_respond_error(req, 400, "invalid_request", "log in with a JSON body {\"email\", \"password\"}");
		return;
	}
	char token[AUTH_TOKEN_MAX];
	int64_t expires_ms = 0, retry_ms = 0;
	int rv = gw->auth ? auth_login(gw->auth, email, password, http_server_client_ip(req), token, &expires_ms,
	                               &retry_ms)
	                  : PARLEY_ENOTSUP;
	cJSON_Delete(in);
	if (rv == PARLEY_EBUSY) {
		char after[24];
		snprintf(after, sizeof(after), "%lld",
		         (long long)((retry_ms + 999) / 1000 > 0 ? (retry_ms + 999) / 1000 : 1));
		const char *headers[] = {"Retry-After", after, "Cache-Control", "no-store", NULL};
		const char *msg =
		        "{\"error\":{\"code\":\"locked\",\"message\":\"too many failed sign-ins for this account "
		        "or address: wait for Retry-After\"}}";
		http_server_respond_with(req, 429, "application/json", headers, msg, strlen(msg));
		return;
	}
	if (rv == PARLEY_EAUTH) {
		api_respond_error(req, 401, "unauthorized", "wrong e-mail or password");
		return;
	}
	if (rv == PARLEY_ENOTSUP) {
		api_respond_error(req, 501, "not_supported", "this gateway's store keeps no accounts");
		return;
	}
	if (rv != 0) {
		api_respond_error(req, 503, "unavailable", "cannot sign in now: the store is down");
		return;
	}
	queue_kick(gw->queue); /* an agent signed in: they may take waiting conversations */
	struct auth_principal who;
	memset(&who, 0, sizeof(who));
	int64_t max_age = (expires_ms - time_now_ms()) / 1000;
	char *set = cookie(req, token, max_age > 0 ? max_age : 1);
	cJSON *r = cJSON_CreateObject();
	if (auth_session(gw->auth, token, &who) == 0) {
		cJSON_AddStringToObject(r, "name", who.name);
		cJSON_AddStringToObject(r, "role", auth_role_name(who.role));
		cJSON *teams = cJSON_AddArrayToObject(r, "teams");
		for (size_t i = 0; i < who.n_teams; i++)
			cJSON_AddItemToArray(teams, cJSON_CreateString(who.teams[i]));
	}
	char at[64];
	time_format_ms(expires_ms, at);
	cJSON_AddStringToObject(r, "expires_at", at);
	char *out = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	auth_principal_clear(&who);
	const char *headers[] = {"Set-Cookie", set ? set : "", "Cache-Control", "no-store", NULL};
	http_server_respond_with(req, 200, "application/json", headers, out, out ? strlen(out) : 0);
	free(out);
	free(set);
}

void api_logout(struct gateway *gw, parley_http_request *req)
{
	char session[AUTH_TOKEN_MAX + 8];
	if (gw->auth && session_cookie(req, session, sizeof(session)))
		auth_logout(gw->auth, session);
	char *set = cookie(req, NULL, 0);
	const char *headers[] = {"Set-Cookie", set ? set : "", "Cache-Control", "no-store", NULL};
	http_server_respond_with(req, 200, "application/json", headers, "{}", 2);
	free(set);
}

void api_me(parley_http_request *req, const struct auth_principal *who)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "name", who ? who->name : "control");
	cJSON_AddStringToObject(r, "role", who ? auth_role_name(who->role) : "admin");
	cJSON *teams = cJSON_AddArrayToObject(r, "teams");
	for (size_t i = 0; who && i < who->n_teams; i++)
		cJSON_AddItemToArray(teams, cJSON_CreateString(who->teams[i]));
	if (who && who->role == AUTH_SERVICE) {
		cJSON *scopes = cJSON_AddArrayToObject(r, "scopes");
		for (size_t i = 0; i < who->n_scopes; i++)
			cJSON_AddItemToArray(scopes, cJSON_CreateString(who->scopes[i]));
	}
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	api_respond_json(req, 200, s);
	free(s);
}
