/* provider_webhook.c: webhooks in: signatures, handshakes, checked JSON and form bodies, error answers. */
#include <parley/provider.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int prov_check_hmac_sha256_hex(const struct parley_host *h, const char *secret, const char *header, const char *prefix,
                               const void *body, size_t len)
{
	size_t pl = strlen(prefix);
	if (!secret || !header || strncmp(header, prefix, pl) != 0 || strlen(header + pl) != 64)
		return 0;
	unsigned char mac[32];
	char want[65], given[65];
	h->hmac_sha256(secret, strlen(secret), body, len, mac);
	h->hex_encode(mac, 32, want);
	for (int i = 0; i < 64; i++)
		given[i] = (char)tolower((unsigned char)header[pl + i]);
	given[64] = '\0';
	return h->ct_equal(want, given, 64);
}

void prov_refuse_signature(const struct parley_host *h, parley_instance *inst, parley_http_request *req,
                           const char *msg)
{
	h->metric_add(inst, "webhook_bad_signature_total", 1);
	prov_respond_error(h, req, 401, msg);
}

void prov_meta_keys_read(const struct parley_host *h, parley_instance *inst, struct prov_meta_keys *k)
{
	k->access_token = h->config_str(inst, "access_token");
	k->app_secret = h->config_str(inst, "app_secret");
	k->verify_token = h->config_str(inst, "verify_token");
	k->version = h->config_str(inst, "api_version");
}

int prov_meta_signed(const struct parley_host *h, parley_instance *inst, parley_http_request *req,
                     const char *app_secret, const void *body, size_t len)
{
	if (prov_check_hmac_sha256_hex(h, app_secret, h->http_header(req, "X-Hub-Signature-256"), "sha256=", body, len))
		return 1;
	prov_refuse_signature(h, inst, req,
	                      "bad or missing X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the app secret)");
	return 0;
}

cJSON *prov_meta_body(const struct parley_host *h, parley_instance *inst, parley_http_request *req,
                      const char *app_secret, const char *what, const cJSON **entries)
{
	size_t len;
	const char *body = h->http_body(req, &len);
	if (!prov_meta_signed(h, inst, req, app_secret, body, len))
		return NULL;
	cJSON *doc = prov_json_body(h, req, body, len);
	if (!doc)
		return NULL;
	*entries = cJSON_GetObjectItemCaseSensitive(doc, "entry");
	if (!cJSON_IsObject(doc) || !cJSON_IsArray(*entries)) {
		char msg[160];
		snprintf(msg, sizeof(msg), "not a %s webhook: expected an object with an entry list", what);
		cJSON_Delete(doc);
		prov_respond_error(h, req, 400, msg);
		return NULL;
	}
	return doc;
}

void prov_meta_handshake(const struct parley_host *h, parley_http_request *req, const char *verify_token)
{
	const char *q = h->http_query(req);
	char *mode = prov_query_get(q, "hub.mode");
	char *token = prov_query_get(q, "hub.verify_token");
	char *challenge = prov_query_get(q, "hub.challenge");
	int ok = mode && token && challenge && verify_token && strcmp(mode, "subscribe") == 0 &&
	         strlen(token) == strlen(verify_token) && h->ct_equal(token, verify_token, strlen(token));
	if (ok)
		h->http_respond(req, 200, "text/plain", challenge, strlen(challenge));
	else
		prov_respond_error(h, req, 403, "hub.verify_token does not match the channel's verify_token");
	free(mode);
	free(token);
	free(challenge);
}

cJSON *prov_json_parse(const struct parley_host *h, const char *text, size_t len, char *why, size_t why_len)
{
	if (h->json_check(text, len, why, why_len) != 0)
		return NULL;
	cJSON *doc = cJSON_ParseWithLength(text, len);
	if (!doc)
		snprintf(why, why_len, "the body is not valid JSON");
	return doc;
}

/* How much of a header value to quote in an error: printable ASCII only (the reason goes into a JSON answer). */
static int printable(const char *s, size_t max)
{
	size_t n = 0;
	while (s && n < max && s[n] >= 0x20 && s[n] < 0x7f)
		n++;
	return (int)n;
}

static int is_json_type(const char *ct)
{
	if (!ct)
		return 0;
	while (*ct == ' ')
		ct++;
	size_t n = strcspn(ct, "; ");
	/* application/json, or a structured type such as application/vnd.api+json */
	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	       (n > 17 && strncasecmp(ct, "application/", 12) == 0 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

cJSON *prov_json_body(const struct parley_host *h, parley_http_request *req, const void *body, size_t len)
{
	const char *ct = h->http_header(req, "Content-Type");
	if (!is_json_type(ct)) {
		char msg[200];
		snprintf(msg, sizeof(msg), "Content-Type must be application/json, not '%.*s'", printable(ct, 80),
		         ct ? ct : "");
		prov_respond_error(h, req, 415, msg);
		return NULL;
	}
	char why[320];
	cJSON *doc = prov_json_parse(h, body, len, why, sizeof(why));
	if (!doc)
		prov_respond_error(h, req, 400, why);
	return doc;
}

int prov_require_form(const struct parley_host *h, parley_http_request *req)
{
	const char *ct = h->http_header(req, "Content-Type");
	size_t n = ct ? strcspn(ct, "; ") : 0;
	if (!ct || n != 33 || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
		char msg[200];
		snprintf(msg, sizeof(msg), "Content-Type must be application/x-www-form-urlencoded, not '%.*s'",
		         printable(ct, 80), ct ? ct : "");
		prov_respond_error(h, req, 415, msg);
		return -1;
	}
	return 0;
}

int prov_form_body(const struct parley_host *h, parley_http_request *req, const void *body, size_t len,
                   struct prov_form *f)
{
	if (prov_require_form(h, req) != 0)
		return -1;
	if (prov_form_parse(body, len, f) != 0) {
		prov_respond_error(h, req, 503, "out of memory: retry later");
		return -1;
	}
	return 0;
}

void prov_respond_error(const struct parley_host *h, parley_http_request *req, int status, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 0);
	cJSON_AddStringToObject(o, "error", msg);
	char *s = cJSON_PrintUnformatted(o);
	h->http_respond(req, status, "application/json", s, strlen(s));
	free(s);
	cJSON_Delete(o);
}

int prov_check_signing(const char *config_json, const char *key, const char *what, char **errmsg)
{
	cJSON *c = cJSON_Parse(config_json ? config_json : "{}");
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, key));
	const char *ins = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "insecure"));
	int ok = (v && v[0]) || (ins && (!strcmp(ins, "true") || !strcmp(ins, "yes") || !strcmp(ins, "on")));
	cJSON_Delete(c);
	if (ok)
		return 0;
	size_t n = strlen(key) + strlen(what) + 160;
	*errmsg = malloc(n);
	if (*errmsg)
		snprintf(*errmsg, n,
		         "no '%s': anyone who can reach the webhook could post messages; set %s, or say insecure: true "
		         "to accept unsigned requests",
		         key, what);
	return PARLEY_EINVAL;
}
