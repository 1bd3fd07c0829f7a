/* api_auth.c: who calls the HTTP API, and signing in and out. */
#include "api_internal.h"
#include "crypto.h"
#include "gateway.h"
#include "http_server.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

int api_authenticate(struct gateway *gw, parley_http_request *req, struct auth_principal *who, int *full)
{
	memset(who, 0, sizeof(*who));
	*full = 0;
	const char *tok = bearer(req);
	const char *want = gw->cfg.control_token;
	/* control.token: the rights of the control socket (for the operator's own tools). */
	if (tok && want && strlen(tok) == strlen(want) && crypto_ct_equal(tok, want, strlen(want))) {
		*full = 1;
		return 0;
	}
	static const char *const challenge[] = {"WWW-Authenticate", "Bearer realm=\"parley\"", "Cache-Control",
	                                        "no-store", NULL};
	const char *body = tok ? "{\"error\":{\"code\":\"unauthorized\",\"message\":\"the bearer token is not valid "
	                         "(revoked, expired or mistyped)\"}}"
	                       : "{\"error\":{\"code\":\"unauthorized\",\"message\":\"sign in (POST /api/v1/login) "
	                         "or send Authorization: Bearer <token>\"}}";
	http_server_respond_with(req, 401, "application/json", challenge, body, strlen(body));
	return -1;
}

void api_principal_done(struct auth_principal *who)
{
	(void)who;
}

void api_login(struct gateway *gw, parley_http_request *req)
{
	(void)gw;
	api_respond_error(req, 501, "not_implemented", "this gateway keeps no accounts yet");
}

void api_logout(struct gateway *gw, parley_http_request *req)
{
	(void)gw;
	api_respond_json(req, 200, "{}");
}

void api_me(parley_http_request *req, const struct auth_principal *who)
{
	cJSON *r = cJSON_CreateObject();
	static const char *const roles[] = {"none", "agent", "admin", "service"};
	cJSON_AddStringToObject(r, "name", who ? who->name : "control");
	cJSON_AddStringToObject(r, "role", who ? roles[who->role] : "service");
	cJSON *teams = cJSON_AddArrayToObject(r, "teams");
	for (size_t i = 0; who && i < who->n_teams; i++)
		cJSON_AddItemToArray(teams, cJSON_CreateString(who->teams[i]));
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	api_respond_json(req, 200, s);
	free(s);
}
