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

/* Fill env from one message object: NULL, or why it is refused (the whole request is then). */
static const char *fill(struct webhook *w, parley_envelope *env, const cJSON *m)
{
	const struct parley_host *h = w->host;
	if (!cJSON_IsObject(m))
		return "each message must be a JSON object";
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
	const cJSON *from = cJSON_GetObjectItemCaseSensitive(m, "from");
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(m, "text");
	const cJSON *atts = cJSON_GetObjectItemCaseSensitive(m, "attachments");
	if (!cJSON_IsString(id) || !id->valuestring[0] || strlen(id->valuestring) > 256)
		return "'id' is required: a string of 1-256 characters, your system's id for the message (re-posts "
		       "with the same id are stored once)";
	if (!cJSON_IsString(from) || !from->valuestring[0])
		return "'from' is required: the sender, as a URN (e.g. tel:+15551234567) or your own user id";
	if (text && !cJSON_IsString(text))
		return "'text' must be a string";
	if (atts && !cJSON_IsArray(atts))
		return "'attachments' must be a list of objects";
	if (!text && !atts)
		return "a message needs 'text' or 'attachments'";
	static const char *const str_fields[] = {"to", "subject", "sent_at", "thread_ref", NULL};
	for (size_t i = 0; str_fields[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, str_fields[i]);
		if (v && !cJSON_IsString(v))
			return "'to', 'subject', 'sent_at' and 'thread_ref' must be strings";
	}
	const cJSON *sent = cJSON_GetObjectItemCaseSensitive(m, "sent_at");
	if (sent && !prov_rfc3339_valid(sent->valuestring))
		return "'sent_at' must be an RFC 3339 time, e.g. 2026-11-22T10:11:12.345Z";
	const cJSON *to = cJSON_GetObjectItemCaseSensitive(m, "to");
	if ((strchr(from->valuestring, ':') && !urn_valid(from->valuestring)) ||
	    (to && (!to->valuestring[0] || (strchr(to->valuestring, ':') && !urn_valid(to->valuestring)))))
		return "'from' and 'to' must be URNs (a lower-case scheme, ':', then the address, e.g. "
		       "tel:+15551234567) or ids of your own without ':'";
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(m, "meta");
	if (meta && !cJSON_IsObject(meta))
		return "'meta' must be an object";
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
	return NULL;
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
	/* Answered after the commit with the ids the messages are stored under: a re-post gets the first's. */
	struct prov_batch *b = prov_batch_new(h, w->inst, req, NULL);
	if (!b) {
		cJSON_Delete(one);
		cJSON_Delete(doc);
		prov_respond_error(h, req, 503, "out of memory: retry later");
		return;
	}
	b->ok_ids = 1;
	const cJSON *m;
	cJSON_ArrayForEach(m, list)
	{
		parley_envelope *env = prov_batch_envelope(b, "message");
		const char *why = env ? fill(w, env, m) : NULL;
		if (why)
			prov_batch_refuse(b, "%s", why);
		if (!env || why)
			break;
	}
	cJSON_Delete(one);
	cJSON_Delete(doc);
	prov_batch_finish(b);
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
