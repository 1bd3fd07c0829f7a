/*
 * webhook.c: the generic webhook channel type, for integrators' own systems.
 *
 * Inbound: POST /webhooks/<channel> with one message object, or an array of
 * them: {"id", "from", "to"?, "text"?, "subject"?, "attachments"?,
 * "sent_at"?, "thread_ref"?, "meta"?}.  With a `secret`, the request must
 * carry X-Parley-Signature: sha256=<hex HMAC-SHA256 of the raw body>.
 * Answered 200 only after every envelope is committed.
 *
 * Outbound: POSTs the envelope JSON to `outbound_url`, signed the same way.
 */
#include <parley/provider.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 100

struct webhook {
	const struct parley_host *host;
	parley_instance *inst;
	const char *secret;
	const char *outbound_url;
	int64_t timeout_ms;
	struct prov_client client; /* reused: keeps the connection to outbound_url alive */
};

struct pending {
	const struct parley_host *host;
	parley_http_request *req;
};

static const struct parley_config_key config_map[] = {
        {"secret", PARLEY_CFG_STRING, NULL, PARLEY_CFG_SECRET,
         "HMAC-SHA256 key; when set, inbound requests must carry a valid X-Parley-Signature"},
        {"outbound_url", PARLEY_CFG_STRING, NULL, 0, "where replies are POSTed as envelope JSON"},
        {"insecure", PARLEY_CFG_BOOL, "false", 0,
         "accept unsigned requests when no secret is set (anyone who can reach the listener can post)"},
        {"timeout", PARLEY_CFG_DURATION, "5s", 0, "outbound request timeout"},
        {NULL, 0, NULL, 0, NULL},
};

static int verify(struct webhook *w, parley_http_request *req, const void *body, size_t len)
{
	return prov_check_hmac_sha256_hex(w->host, w->secret, w->host->http_header(req, "X-Parley-Signature"),
	                                  "sha256=", body, len);
}

/* The answer names the ids the messages are stored under: a re-post gets the first post's ids. */
static void committed(void *arg, int result, const char *const *stored, size_t n)
{
	struct pending *p = arg;
	const struct parley_host *h = p->host;
	if (result != 0) {
		char msg[160];
		snprintf(msg, sizeof(msg), "not stored (%s): retry later", h->strerror(result));
		prov_respond_error(h, p->req, 503, msg);
	} else {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddBoolToObject(o, "ok", 1);
		cJSON *ids = cJSON_AddArrayToObject(o, "ids");
		for (size_t i = 0; i < n; i++)
			cJSON_AddItemToArray(ids, cJSON_CreateString(stored[i]));
		char *s = cJSON_PrintUnformatted(o);
		h->http_respond(p->req, 200, "application/json", s, strlen(s));
		free(s);
		cJSON_Delete(o);
	}
	free(p);
}

/*
 * 1 when s is a URN as the envelope schema has them: a scheme of a lower-case
 * letter then letters, digits, '+', '.' or '-', a ':', then at least one character.
 */
static int urn_valid(const char *s)
{
	size_t n = 0;
	if (!(s[0] >= 'a' && s[0] <= 'z'))
		return 0;
	while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '.' ||
	       s[n] == '-')
		n++;
	return s[n] == ':' && s[n + 1] != '\0';
}

/* Set an address field: a URN as given, a bare id of the integrator's under our webhook: scheme. */
static int set_address(struct webhook *w, parley_envelope *env, const char *field, const char *v)
{
	if (strchr(v, ':')) {
		if (!urn_valid(v))
			return -1;
		return w->host->envelope_set_str(env, field, v);
	}
	return prov_set_fmt(w->host, env, field, "webhook:%s", v);
}

/* Build one envelope from one message object; NULL with *why set on a bad field. */
static parley_envelope *to_envelope(struct webhook *w, const cJSON *m, const char **why)
{
	const struct parley_host *h = w->host;
	if (!cJSON_IsObject(m)) {
		*why = "each message must be a JSON object";
		return NULL;
	}
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
	const cJSON *from = cJSON_GetObjectItemCaseSensitive(m, "from");
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(m, "text");
	const cJSON *atts = cJSON_GetObjectItemCaseSensitive(m, "attachments");
	if (!cJSON_IsString(id) || !id->valuestring[0] || strlen(id->valuestring) > 256) {
		*why = "'id' is required: a string of 1-256 characters, your system's id for the message (re-posts "
		       "with the same id are stored once)";
		return NULL;
	}
	if (!cJSON_IsString(from) || !from->valuestring[0]) {
		*why = "'from' is required: the sender, as a URN (e.g. tel:+15551234567) or your own user id";
		return NULL;
	}
	if (text && !cJSON_IsString(text)) {
		*why = "'text' must be a string";
		return NULL;
	}
	if (atts && !cJSON_IsArray(atts)) {
		*why = "'attachments' must be a list of objects";
		return NULL;
	}
	if (!text && !atts) {
		*why = "a message needs 'text' or 'attachments'";
		return NULL;
	}
	static const char *const str_fields[] = {"to", "subject", "sent_at", "thread_ref", NULL};
	for (size_t i = 0; str_fields[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, str_fields[i]);
		if (v && !cJSON_IsString(v)) {
			*why = "'to', 'subject', 'sent_at' and 'thread_ref' must be strings";
			return NULL;
		}
	}
	const cJSON *sent = cJSON_GetObjectItemCaseSensitive(m, "sent_at");
	if (sent && !prov_rfc3339_valid(sent->valuestring)) {
		*why = "'sent_at' must be an RFC 3339 time, e.g. 2026-11-22T10:11:12.345Z";
		return NULL;
	}
	const cJSON *to = cJSON_GetObjectItemCaseSensitive(m, "to");
	if ((strchr(from->valuestring, ':') && !urn_valid(from->valuestring)) ||
	    (to && (!to->valuestring[0] || (strchr(to->valuestring, ':') && !urn_valid(to->valuestring))))) {
		*why = "'from' and 'to' must be URNs (a lower-case scheme, ':', then the address, e.g. "
		       "tel:+15551234567) or ids of your own without ':'";
		return NULL;
	}
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(m, "meta");
	if (meta && !cJSON_IsObject(meta)) {
		*why = "'meta' must be an object";
		return NULL;
	}
	parley_envelope *env = h->envelope_new(w->inst, "message", "inbound");
	if (!env) {
		*why = "out of memory";
		return NULL;
	}
	h->envelope_set_str(env, "external_id", id->valuestring);
	/* Addresses are URNs; a bare id from the integrator's system gets our scheme. */
	set_address(w, env, "from", from->valuestring);
	if (to)
		set_address(w, env, "to", to->valuestring);
	for (size_t i = 0; str_fields[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, str_fields[i]);
		if (v && strcmp(str_fields[i], "to") != 0)
			h->envelope_set_str(env, str_fields[i], v->valuestring);
	}
	if (text)
		h->envelope_set_str(env, "text", text->valuestring);
	if (atts || meta) {
		char *j;
		if (atts) {
			j = cJSON_PrintUnformatted(atts);
			h->envelope_set_json(env, "attachments", j);
			free(j);
		}
		if (meta) {
			j = cJSON_PrintUnformatted(meta);
			h->envelope_set_json(env, "meta", j);
			free(j);
		}
	}
	return env;
}

static void on_post(void *data, parley_http_request *req)
{
	struct webhook *w = data;
	const struct parley_host *h = w->host;
	size_t len;
	const char *body = h->http_body(req, &len);
	if (w->secret && w->secret[0] && !verify(w, req, body, len)) {
		prov_refuse_signature(
		        h, w->inst, req,
		        "bad or missing X-Parley-Signature: expected sha256=<hex HMAC-SHA256 of the raw body with "
		        "the channel's secret>");
		return;
	}
	cJSON *doc = prov_json_body(h, req, body, len);
	if (!doc)
		return;
	cJSON *one = NULL;
	const cJSON *list = doc;
	if (cJSON_IsObject(doc)) {
		one = cJSON_CreateArrayReference(doc);
		list = one;
	}
	int n = cJSON_GetArraySize(list);
	if (!cJSON_IsArray(list) || n < 1 || n > MAX_BATCH) {
		prov_respond_error(h, req, 400, "the body must be a message object or a list of 1-100 of them");
		cJSON_Delete(one);
		cJSON_Delete(doc);
		return;
	}
	parley_envelope *envs[MAX_BATCH];
	struct pending *p = calloc(1, sizeof(*p));
	p->host = h;
	p->req = req;
	const char *why = NULL;
	int i = 0;
	const cJSON *m;
	cJSON_ArrayForEach(m, list)
	{
		envs[i] = to_envelope(w, m, &why);
		if (!envs[i])
			break;
		i++;
	}
	cJSON_Delete(one);
	cJSON_Delete(doc);
	if (why) {
		for (int k = 0; k < i; k++)
			h->envelope_free(envs[k]);
		free(p);
		prov_respond_error(h, req, 400, why);
		return;
	}
	int rv = h->submit_ids(w->inst, envs, (size_t)n, committed, p);
	if (rv != 0) {
		/* The host names the field it refused (an id too long, say). */
		int bad = rv == PARLEY_EINVAL || rv == PARLEY_ETOOBIG;
		char msg[400];
		snprintf(msg, sizeof(msg), "%s",
		         bad ? "the message could not be turned into an envelope"
		             : "the gateway cannot take messages right now: retry later");
		for (int k = n - 1; k >= 0; k--) {
			const char *e = bad ? h->envelope_error(envs[k]) : NULL;
			if (e)
				snprintf(msg, sizeof(msg), "message %d: %s", k, e);
			h->envelope_free(envs[k]);
		}
		free(p);
		prov_respond_error(h, req, bad ? 400 : 503, msg);
	}
}

static int wh_create(const struct parley_host *host, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	(void)errmsg;
	struct webhook *w = calloc(1, sizeof(*w));
	if (!w)
		return PARLEY_ENOMEM;
	w->host = host;
	w->inst = inst;
	w->secret = host->config_str(inst, "secret");
	w->outbound_url = host->config_str(inst, "outbound_url");
	host->config_duration_ms(inst, "timeout", &w->timeout_ms);
	prov_client_init(&w->client, w->timeout_ms, 64 * 1024);
	*data = w;
	return 0;
}

static int wh_start(void *data, char **errmsg)
{
	struct webhook *w = data;
	(void)errmsg;
	if (!w->secret || !w->secret[0])
		w->host->log(
		        w->inst, PARLEY_LOG_WARN,
		        "INSECURE: no 'secret' (insecure: true): anyone who can reach the listener can post messages");
	return w->host->http_route(w->inst, "POST", "", on_post);
}

static void wh_destroy(void *data)
{
	struct webhook *w = data;
	prov_client_fini(&w->client);
	free(w);
}

static int wh_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct webhook *w = data;
	const struct parley_host *h = w->host;
	if (!w->outbound_url || !w->outbound_url[0]) {
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text), "channel has no outbound_url configured");
		return 0;
	}
	char *json = h->envelope_to_json(env);
	char sighdr[100] = "";
	if (w->secret && w->secret[0]) {
		unsigned char mac[32];
		char hex[65];
		h->hmac_sha256(w->secret, strlen(w->secret), json, strlen(json), mac);
		h->hex_encode(mac, 32, hex);
		snprintf(sighdr, sizeof(sighdr), "X-Parley-Signature: sha256=%s", hex);
	}
	const char *hdrs[] = {"Content-Type: application/json", sighdr[0] ? sighdr : NULL, NULL};
	struct prov_http r;
	prov_request(&w->client, "POST", w->outbound_url, hdrs, json, strlen(json), NULL, &r);
	free(json);
	prov_classify(&r, NULL, NULL, res);
	if (res->outcome == PARLEY_SEND_OK) {
		/* An "id" in the answer is the receiver's id for the message. */
		cJSON *j = cJSON_Parse(r.body ? r.body : "");
		const char *pid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "id"));
		if (pid)
			snprintf(res->provider_id, sizeof(res->provider_id), "%s", pid);
		cJSON_Delete(j);
	}
	prov_http_free(&r);
	return 0;
}

static int wh_check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	(void)h;
	return prov_check_signing(config_json, "secret", "a secret (HMAC-SHA256 key)", errmsg);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "webhook",
        .version = "1.0.0",
        .description = "generic JSON webhook in (HMAC-SHA256 signed), envelope JSON POSTed out",
        .config = config_map,
        .init = prov_plugin_init,
        .fini = prov_plugin_fini,
        .instance_create = wh_create,
        .instance_start = wh_start,
        .instance_destroy = wh_destroy,
        .channel_send = wh_send,
        .check_config = wh_check,
};

PARLEY_PLUGIN_DEFINE(plugin)
