/*
 * twilio.c: the Twilio Programmable Messaging (SMS/MMS) channel type.
 *
 * Inbound: form-encoded webhooks signed with X-Twilio-Signature: base64 of
 * HMAC-SHA1(auth token, public URL + every POST parameter name and value,
 * sorted by name).  The public URL is http.public_url + the request path.
 * A message (Body, NumMedia, MediaUrlN) becomes an envelope from tel:+E164;
 * a status callback (MessageStatus) becomes a receipt for MessageSid.
 * Answered with an empty TwiML <Response/>.
 *
 * Outbound: POST /2010-04-01/Accounts/{AccountSid}/Messages.json with basic
 * auth: To, From (or MessagingServiceSid), Body, MediaUrl, StatusCallback.
 */
#include <parley/fetch_policy.h>
#include <parley/provider.h>
#include <parley/provider_channel.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct twilio {
	/* First: host, inst, api_base_url, timeout, max_media, the client, the policy, the media thread. */
	struct prov_channel ch;
	const char *sid, *token, *from, *public_url;
	char userpwd[256];
};

/*
 * MediaUrlN names api.twilio.com, which takes basic auth and redirects to a
 * signed link on Twilio's media CDN; the CDN gets no credentials.
 */
static const char *const media_hosts[] = {"api.twilio.com", "*.twiliocdn.com", NULL};
static const char *const credential_hosts[] = {"api.twilio.com", NULL};

static const struct parley_config_key config_map[] = {
        {"account_sid", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED, "the Account SID (AC...)"},
        {"auth_token", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "the auth token: signs webhooks and authenticates sends"},
        {"from", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED,
         "the sending number (+E.164) or a Messaging Service SID (MG...)"},
        PROV_CHANNEL_CONFIG("https://api.twilio.com", "REST API base URL", "16MiB"),
        {"reply_window", PARLEY_CFG_DURATION, "0", 0,
         "the customer-service window: set 24h on a WhatsApp sender (from: whatsapp:+...), and a send after it "
         "is refused before Twilio; 0 (SMS): none"},
        {"provider_opt_out", PARLEY_CFG_BOOL, "true", 0,
         "Twilio answers STOP, START and HELP itself (Advanced Opt-Out): Parley records the opt-out and sends no "
         "confirmation of its own"},
        {NULL, 0, NULL, 0, NULL},
};

static const char twiml[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";

struct field {
	const char *name, *value;
	size_t len;
};

static int cmp_names(const void *a, const void *b)
{
	return strcmp(((const struct field *)a)->name, ((const struct field *)b)->name);
}

/*
 * Twilio's signature over url + sorted name/value pairs, with each value's
 * decoded bytes (a %00 included), so a value that the check then refuses
 * is refused as invalid, not as forged.
 */
static int signature_ok(struct twilio *t, parley_http_request *req, const struct prov_form *f)
{
	const struct parley_host *h = t->ch.host;
	const char *given = h->http_header(req, "X-Twilio-Signature");
	if (!given)
		return 0;
	const char *query = h->http_query(req);
	size_t total = strlen(t->public_url) + strlen(h->http_path(req)) + strlen(query) + 2;
	struct field *order = calloc(f->n + 1, sizeof(*order));
	if (!order)
		return 0;
	for (size_t i = 0; i < f->n; i++) {
		order[i] = (struct field){f->names[i], f->values[i], f->lens[i]};
		total += strlen(f->names[i]) + f->lens[i];
	}
	char *data = malloc(total + 1);
	if (!data) {
		free(order);
		return 0;
	}
	qsort(order, f->n, sizeof(*order), cmp_names);
	size_t n = (size_t)snprintf(data, total + 1, "%s%s%s%s", t->public_url, h->http_path(req), query[0] ? "?" : "",
	                            query);
	for (size_t i = 0; i < f->n; i++) {
		size_t nl = strlen(order[i].name);
		memcpy(data + n, order[i].name, nl);
		memcpy(data + n + nl, order[i].value, order[i].len);
		n += nl + order[i].len;
	}
	free(order);
	unsigned char mac[20];
	char want[32];
	h->hmac_sha1(t->token, strlen(t->token), data, n, mac);
	free(data);
	prov_base64(mac, 20, want);
	return strlen(given) == strlen(want) && h->ct_equal(given, want, strlen(want));
}

/* tel:+E164 for a phone number; whatsapp:<digits> for Twilio's "whatsapp:+..." addresses. */
/* 1 when s is 1-15 digits: an E.164 number without its '+'. */
static int e164_digits(const char *s)
{
	size_t n = strspn(s, "0123456789");
	return n >= 1 && n <= 15 && s[n] == '\0';
}

/*
 * Set field to the URN of a Twilio address: tel:+<E.164>, whatsapp:<digits>
 * for Twilio's WhatsApp senders, twilio:<short code or sender id>.  An
 * address that claims to be a number and is not one is refused, never
 * trimmed to its digits (two senders would become one customer).
 */
static void set_urn(struct prov_batch *b, parley_envelope *env, const char *field, const char *param, const char *addr)
{
	const struct parley_host *h = b->host;
	if (strncmp(addr, "whatsapp:", 9) == 0) {
		const char *num = addr + 9 + (addr[9] == '+');
		/* A user with a username and no shared number is named by the business-scoped user id, kept whole. */
		if (addr[9] != '+' && prov_whatsapp_bsuid(addr + 9))
			prov_set_fmt(h, env, field, "whatsapp:%s", addr + 9);
		else if (!e164_digits(num))
			prov_batch_refuse(
			        b, "parameter '%s' is neither whatsapp:+<E.164 number> nor whatsapp:<user id>", param);
		else
			prov_set_fmt(h, env, field, "whatsapp:%s", num);
	} else if (addr[0] == '+') {
		if (!e164_digits(addr + 1))
			prov_batch_refuse(b, "parameter '%s' is not an E.164 number (+ and 1-15 digits)", param);
		else
			prov_set_fmt(h, env, field, "tel:%s", addr);
	} else {
		prov_set_fmt(h, env, field, "twilio:%s", addr);
	}
}

/*
 * Twilio sometimes hands a concatenated SMS (NumSegments > 1) over as the
 * base64 of its text.  The decoded text, malloc'd, when s is strict base64
 * (padded, nothing else) of valid UTF-8 without control characters other
 * than tab and line breaks; else NULL, and the body is kept as it came.
 */
static char *decode_base64_text(const struct parley_host *h, const char *s)
{
	size_t n = strlen(s);
	if (n < 8 || n % 4 != 0)
		return NULL;
	unsigned char *out = malloc(n / 4 * 3 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	unsigned v = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int d;
		if (c >= 'A' && c <= 'Z')
			d = c - 'A';
		else if (c >= 'a' && c <= 'z')
			d = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			d = c - '0' + 52;
		else if (c == '+')
			d = 62;
		else if (c == '/')
			d = 63;
		else if (c == '=' && i >= n - 2 && (i == n - 1 || s[n - 1] == '='))
			break;
		else {
			free(out);
			return NULL;
		}
		v = (v << 6) | (unsigned)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
			v &= (1u << bits) - 1;
		}
	}
	out[o] = '\0';
	char why[64];
	int ok = o > 0 && h->text_check("Body", (const char *)out, o, why, sizeof(why)) == 0;
	for (size_t i = 0; ok && i < o; i++)
		if (out[i] < 0x20 && out[i] != '\t' && out[i] != '\n' && out[i] != '\r')
			ok = 0;
	if (!ok) {
		free(out);
		return NULL;
	}
	return (char *)out;
}

/* The receipt state of a Twilio MessageStatus, or NULL when it is not one the envelope has. */
static const char *receipt_state(const char *status)
{
	static const char *const same[] = {"sent", "delivered", "read", "failed", NULL};
	for (size_t i = 0; same[i]; i++)
		if (strcmp(status, same[i]) == 0)
			return same[i];
	if (strcmp(status, "undelivered") == 0)
		return "failed";
	return NULL;
}

/* Every parameter of the request as a JSON object, for meta.raw. */
static cJSON *form_object(const struct prov_form *f)
{
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; i < f->n; i++)
		cJSON_AddStringToObject(o, f->names[i], f->values[i]);
	return o;
}

static void on_post(void *data, parley_http_request *req)
{
	struct twilio *t = data;
	const struct parley_host *h = t->ch.host;
	size_t len;
	const char *body = h->http_body(req, &len);
	struct prov_form f;
	/* The signature covers the parameters, so they are read first; nothing else is said before it holds. */
	if (prov_form_parse(body, len, &f) != 0) {
		prov_respond_error(h, req, 503, "out of memory: retry later");
		return;
	}
	if (!signature_ok(t, req, &f)) {
		prov_form_free(&f);
		prov_refuse_signature(
		        h, t->ch.inst, req,
		        "bad or missing X-Twilio-Signature (checked against http.public_url + the request path)");
		return;
	}
	if (prov_require_form(h, req) != 0) {
		prov_form_free(&f);
		return;
	}
	char why[200];
	if (prov_form_check(h, &f, why, sizeof(why)) != 0) {
		prov_form_free(&f);
		prov_respond_error(h, req, 400, why);
		return;
	}
	const char *msid = prov_form_get(&f, "MessageSid");
	const char *acct = prov_form_get(&f, "AccountSid");
	if (!msid || !msid[0]) {
		prov_form_free(&f);
		prov_respond_error(h, req, 400, "not a Twilio messaging webhook: parameter 'MessageSid' is required");
		return;
	}
	struct prov_batch *b = prov_batch_new(h, t->ch.inst, req, t->ch.media);
	b->ok_type = "text/xml";
	b->ok_body = strdup(twiml);
	/* The signature, made with this account's auth token, proves the account; a status callback may omit it. */
	if (acct && strcmp(acct, t->sid) != 0) {
		/* Another account's traffic: acknowledged, not ours to store. */
		h->metric_add(t->ch.inst, "webhook_other_account_total", 1);
		prov_batch_ignore(b, "message %.64s is for account %.64s, not %s", msid, acct, t->sid);
		prov_form_free(&f);
		prov_batch_finish(b);
		return;
	}
	const char *status = prov_form_get(&f, "MessageStatus");
	const char *from = prov_form_get(&f, "From");
	const char *to = prov_form_get(&f, "To");
	if (status && strcmp(status, "received") != 0) {
		const char *st = receipt_state(status);
		parley_envelope *env = prov_batch_envelope(b, st ? "status" : "event");
		if (!env) {
			prov_form_free(&f);
			prov_batch_finish(b);
			return;
		}
		prov_set_fmt(h, env, "external_id", "%s:%s", msid, status);
		h->envelope_set_str(env, "thread_ref", msid);
		if (st)
			h->envelope_set_str(env, "status", st);
		if (to)
			set_urn(b, env, "to", "To", to);
		const char *code = prov_form_get(&f, "ErrorCode");
		const char *text = prov_form_get(&f, "ErrorMessage");
		if (code || text) {
			prov_set_fmt(h, env, "error", "%s%s%s", code ? code : "", code && text ? ": " : "",
			             text ? text : "");
		}
		cJSON *meta = cJSON_CreateObject();
		cJSON_AddStringToObject(meta, "provider_status", status);
		if (!st) {
			/* accepted, queued, canceled, a state Twilio adds later: kept, never applied as a receipt. */
			h->log(t->ch.inst, PARLEY_LOG_WARN,
			       "status callback for %.64s with state '%.64s' kept as an event in meta.raw", msid,
			       status);
			cJSON_AddItemToObject(meta, "raw", form_object(&f));
		}
		prov_set_json(h, env, "meta", meta);
	} else {
		if (!from || !from[0]) {
			prov_batch_refuse(b, "parameter 'From' is missing: a message needs its sender");
			prov_form_free(&f);
			prov_batch_finish(b);
			return;
		}
		parley_envelope *env = prov_batch_envelope(b, "message");
		if (!env) {
			prov_form_free(&f);
			prov_batch_finish(b);
			return;
		}
		h->envelope_set_str(env, "external_id", msid);
		set_urn(b, env, "from", "From", from);
		if (to)
			set_urn(b, env, "to", "To", to);
		cJSON *meta = cJSON_CreateObject();
		const char *text = prov_form_get(&f, "Body");
		const char *button = prov_form_get(&f, "ButtonText");
		long long segments = 1;
		const char *ns = prov_form_get(&f, "NumSegments");
		if (ns && prov_parse_ll(ns, 0, 1000, &segments) != 0)
			prov_batch_refuse(b, "parameter 'NumSegments' is not a number");
		char *decoded = segments > 1 && text ? decode_base64_text(h, text) : NULL;
		if (button && button[0]) {
			/* A WhatsApp button reply: Body may be a placeholder; the button's own text is what was chosen.
			 */
			h->envelope_set_str(env, "text", button);
		} else if (decoded) {
			h->envelope_set_str(env, "text", decoded);
			cJSON_AddStringToObject(meta, "body_base64", text);
		} else if (text && text[0]) {
			h->envelope_set_str(env, "text", text);
		}
		free(decoded);
		static const char *const extra[] = {
		        "ProfileName", "FromCity",      "FromState",  "FromCountry", "MessagingServiceSid",
		        "NumSegments", "ButtonPayload", "ButtonText", "WaId",        NULL};
		for (size_t i = 0; extra[i]; i++)
			if (prov_form_get(&f, extra[i]))
				cJSON_AddStringToObject(meta, extra[i], prov_form_get(&f, extra[i]));
		if (prov_form_get(&f, "ProfileName"))
			cJSON_AddStringToObject(meta, "contact_name", prov_form_get(&f, "ProfileName"));
		if (prov_form_get(&f, "Latitude") && prov_form_get(&f, "Longitude")) {
			cJSON *loc = cJSON_AddObjectToObject(meta, "location");
			char *e1, *e2;
			double lat = strtod(prov_form_get(&f, "Latitude"), &e1);
			double lon = strtod(prov_form_get(&f, "Longitude"), &e2);
			/* The comparisons are false for NaN. */
			if (*e1 || *e2 || !(lat >= -90 && lat <= 90) || !(lon >= -180 && lon <= 180))
				prov_batch_refuse(b, "parameters 'Latitude' and 'Longitude' are not a place on Earth");
			cJSON_AddNumberToObject(loc, "latitude", lat);
			cJSON_AddNumberToObject(loc, "longitude", lon);
		}
		const char *bp = prov_form_get(&f, "ButtonPayload");
		if (bp)
			cJSON_AddStringToObject(meta, "reply_id", bp);
		prov_set_json(h, env, "meta", meta);
		long long nmedia = 0;
		if (prov_form_get(&f, "NumMedia") &&
		    prov_parse_ll(prov_form_get(&f, "NumMedia"), 0, 10, &nmedia) != 0) {
			prov_batch_refuse(b, "parameter 'NumMedia' is not a number from 0 to 10");
			nmedia = 0;
		}
		if (nmedia > 0) {
			cJSON *arr = cJSON_CreateArray();
			for (int i = 0; i < nmedia && i < 10; i++) {
				char key[32];
				snprintf(key, sizeof(key), "MediaUrl%d", i);
				const char *url = prov_form_get(&f, key);
				snprintf(key, sizeof(key), "MediaContentType%d", i);
				const char *ct = prov_form_get(&f, key);
				cJSON *att = cJSON_CreateObject();
				const char *kind = "document";
				if (ct && strncmp(ct, "image/", 6) == 0)
					kind = "image";
				else if (ct && strncmp(ct, "audio/", 6) == 0)
					kind = "audio";
				else if (ct && strncmp(ct, "video/", 6) == 0)
					kind = "video";
				cJSON_AddStringToObject(att, "kind", kind);
				if (ct)
					cJSON_AddStringToObject(att, "content_type", ct);
				if (url)
					cJSON_AddStringToObject(att, "url", url);
				cJSON_AddItemToArray(arr, att);
				if (url)
					prov_batch_media(b, env, (size_t)i, url);
			}
			prov_set_json(h, env, "attachments", arr);
		}
	}
	prov_form_free(&f);
	prov_batch_finish(b);
}

static int fetch_media(void *arg, struct prov_client *client, const char *url, struct prov_http *out)
{
	struct twilio *t = arg;
	/* Media URLs may need HTTP basic auth (when the account enforces it). */
	const struct prov_credentials cred = {NULL, t->userpwd};
	return prov_fetch(client, &t->ch.policy, url, &cred, out);
}

/* Append name=value (URL-encoded) to a form body. */
static void form_add(char **body, size_t *len, const char *name, const char *value)
{
	char *enc = prov_urlencode(value);
	size_t add = strlen(name) + strlen(enc) + 2;
	*body = realloc(*body, *len + add + 1);
	*len += (size_t)snprintf(*body + *len, add + 1, "%s%s=%s", *len ? "&" : "", name, enc);
	free(enc);
}

static int tw_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct twilio *t = data;
	const struct parley_host *h = t->ch.host;
	const char *to = h->envelope_get_str(env, "to");
	char number[32];
	if (to && strncmp(to, "tel:+", 5) == 0 && e164_digits(to + 5)) {
		snprintf(number, sizeof(number), "%s", to + 4);
	} else if (to && strncmp(to, "whatsapp:", 9) == 0 && e164_digits(to + 9 + (to[9] == '+'))) {
		snprintf(number, sizeof(number), "whatsapp:+%s", to + 9 + (to[9] == '+'));
	} else {
		/* Never sent to a number cut or cleaned into another one. */
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text),
		         "'to' must be tel:+<E.164 number> or whatsapp:<E.164 number> (1-15 digits)");
		return 0;
	}
	char *tpl = h->envelope_get_json(env, "template");
	free(tpl);
	if (tpl) {
		/* Twilio sends WhatsApp templates as Content Templates (ContentSid): refused here, never sent as text.
		 */
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text),
		         "template messages through Twilio are Content Templates (ContentSid, ContentVariables), which "
		         "this "
		         "channel type does not send yet: use a whatsapp channel (Cloud API) for templates");
		return 0;
	}
	char *body = NULL;
	size_t len = 0;
	form_add(&body, &len, "To", number);
	form_add(&body, &len, strncmp(t->from, "MG", 2) == 0 ? "MessagingServiceSid" : "From", t->from);
	const char *text = h->envelope_get_str(env, "text");
	if (text)
		form_add(&body, &len, "Body", text);
	char *atts = h->envelope_get_json(env, "attachments");
	cJSON *a = atts ? cJSON_Parse(atts) : NULL;
	free(atts);
	const cJSON *att;
	cJSON_ArrayForEach(att, a)
	{
		const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(att, "url"));
		if (url)
			form_add(&body, &len, "MediaUrl", url);
	}
	cJSON_Delete(a);
	if (t->public_url) {
		char cb[1024];
		snprintf(cb, sizeof(cb), "%s/webhooks/%s", t->public_url, h->instance_name(t->ch.inst));
		form_add(&body, &len, "StatusCallback", cb);
	}
	char url[1024];
	snprintf(url, sizeof(url), "%s/2010-04-01/Accounts/%s/Messages.json", t->ch.base, t->sid);
	const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
	struct prov_http r;
	prov_request(&t->ch.client, "POST", url, hdrs, body, len, t->userpwd, &r);
	free(body);
	cJSON *j = cJSON_Parse(r.body ? r.body : "");
	if (r.status >= 200 && r.status < 300) {
		prov_classify(&r, NULL, NULL, res);
		const char *sid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "sid"));
		if (sid)
			snprintf(res->provider_id, sizeof(res->provider_id), "%s", sid);
	} else {
		char code[32] = "";
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "code");
		if (cJSON_IsNumber(c))
			snprintf(code, sizeof(code), "%d", c->valueint);
		prov_classify(&r, code, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "message")), res);
		/* 20429: too many requests, whatever the HTTP status. */
		if (cJSON_IsNumber(c) && c->valueint == 20429)
			res->outcome = PARLEY_SEND_RETRY;
	}
	cJSON_Delete(j);
	prov_http_free(&r);
	return 0;
}

static int tw_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	int rv = prov_channel_new(data, sizeof(struct twilio), h, inst, media_hosts, credential_hosts, errmsg);
	if (rv != 0)
		return rv;
	struct twilio *t = *data;
	t->sid = h->config_str(inst, "account_sid");
	t->token = h->config_str(inst, "auth_token");
	t->from = h->config_str(inst, "from");
	t->public_url = h->setting(inst, "http.public_url");
	snprintf(t->userpwd, sizeof(t->userpwd), "%s:%s", t->sid, t->token);
	return 0;
}

static int tw_start(void *data, char **errmsg)
{
	struct twilio *t = data;
	if (!t->public_url || !t->public_url[0]) {
		*errmsg = strdup("Twilio signs webhooks over their public URL: set http.public_url (e.g. "
		                 "https://parley.example.com) in the config");
		return PARLEY_EINVAL;
	}
	static const struct prov_route routes[] = {{"POST", "", on_post}, {NULL, NULL, NULL}};
	return prov_channel_start(&t->ch, fetch_media, t, routes);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "twilio",
        .version = "1.0.0",
        .description = "Twilio SMS/MMS: signed form webhooks, media, status callbacks; sends through Messages.json",
        .config = config_map,
        .init = prov_plugin_init,
        .fini = prov_plugin_fini,
        .instance_create = tw_create,
        .instance_start = tw_start,
        .instance_stop = prov_channel_instance_stop,
        .instance_destroy = prov_channel_instance_destroy,
        .channel_send = tw_send,
        .check_config = prov_policy_check_config,
};

PARLEY_PLUGIN_DEFINE(plugin)
