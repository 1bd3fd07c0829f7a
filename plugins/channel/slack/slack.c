/*
 * slack.c: the Slack channel type (Events API + chat.postMessage).
 *
 * Inbound: POST /webhooks/<channel> with Events API payloads, verified with
 * X-Slack-Signature = v0=hex(HMAC-SHA256(signing secret, "v0:" + timestamp +
 * ":" + body)) and X-Slack-Request-Timestamp no more than 5 minutes away;
 * url_verification is answered with its challenge.  message events (with
 * files, thread_ts, message_changed, message_deleted), app_mention and
 * reaction_added become envelopes; our own bot's messages are skipped.
 * POST /webhooks/<channel>/interactive takes block_actions (button answers).
 * Files are fetched after commit with the bot token.
 *
 * Outbound: chat.postMessage to the user (slack:<team>/<user>) or a channel,
 * in the thread named by thread_ref ("<channel>:<ts>"), with buttons from
 * meta.buttons and images from attachments.
 */
#include <parley/fetch_policy.h>
#include <parley/provider.h>
#include <parley/provider_channel.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SKEW_S 300

struct slack {
	/* First: host, inst, api_base_url, timeout, max_media, the client, the policy, the media thread. */
	struct prov_channel ch;
	const char *bot_token, *signing_secret;
	char auth[512];
};

/* Slack serves url_private from files.slack.com, which takes the bot token. */
static const char *const media_hosts[] = {"files.slack.com", NULL};

static const struct parley_config_key config_map[] = {
        {"bot_token", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "the bot token (xoxb-...) for sending and files"},
        {"signing_secret", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "the app's signing secret: requests must carry a valid X-Slack-Signature"},
        PROV_CHANNEL_CONFIG("https://slack.com", "Web API base URL", "25MiB"),
        {NULL, 0, NULL, 0, NULL},
};

static const char *str(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* 0 when the request is Slack's; else the 401 reason. */
static const char *verify(struct slack *s, parley_http_request *req, const char *body, size_t len)
{
	const struct parley_host *h = s->ch.host;
	const char *ts = h->http_header(req, "X-Slack-Request-Timestamp");
	const char *sig = h->http_header(req, "X-Slack-Signature");
	if (!ts || !sig)
		return "missing X-Slack-Signature or X-Slack-Request-Timestamp";
	long long t = 0;
	long long now = (long long)time(NULL);
	if (prov_parse_ll(ts, 1, 253402300799LL, &t) != 0 || t < now - MAX_SKEW_S || t > now + MAX_SKEW_S)
		return "X-Slack-Request-Timestamp is more than 5 minutes away: refused as a possible replay";
	size_t n = strlen(ts) + len + 4;
	char *base = malloc(n + 1);
	snprintf(base, n + 1, "v0:%s:", ts);
	memcpy(base + strlen(ts) + 4, body, len);
	int ok = prov_check_hmac_sha256_hex(h, s->signing_secret, sig, "v0=", base, n);
	free(base);
	return ok ? NULL : "bad X-Slack-Signature (v0 HMAC-SHA256 with the signing secret)";
}

static void add_files(struct slack *s, struct prov_batch *b, parley_envelope *env, const cJSON *files)
{
	if (!cJSON_IsArray(files) || cJSON_GetArraySize(files) == 0)
		return;
	cJSON *arr = cJSON_CreateArray();
	const cJSON *f;
	size_t i = 0;
	cJSON_ArrayForEach(f, files)
	{
		cJSON *att = cJSON_CreateObject();
		const char *mime = str(f, "mimetype");
		const char *kind = "document";
		if (mime && strncmp(mime, "image/", 6) == 0)
			kind = "image";
		else if (mime && strncmp(mime, "audio/", 6) == 0)
			kind = "audio";
		else if (mime && strncmp(mime, "video/", 6) == 0)
			kind = "video";
		cJSON_AddStringToObject(att, "kind", kind);
		if (mime)
			cJSON_AddStringToObject(att, "content_type", mime);
		if (str(f, "name"))
			cJSON_AddStringToObject(att, "name", str(f, "name"));
		if (str(f, "id"))
			cJSON_AddStringToObject(att, "provider_id", str(f, "id"));
		const char *url =
		        str(f, "url_private_download") ? str(f, "url_private_download") : str(f, "url_private");
		if (url)
			cJSON_AddStringToObject(att, "url", url); /* kept, fetched or not */
		cJSON_AddItemToArray(arr, att);
		const cJSON *size = cJSON_GetObjectItemCaseSensitive(f, "size");
		if (url && (!cJSON_IsNumber(size) || size->valuedouble <= (double)s->ch.max_media))
			prov_batch_media(b, env, i, url);
		i++;
	}
	prov_set_json(s->ch.host, env, "attachments", arr);
}

/* 1 when s looks like a Slack id of the given prefixes: one of them, then upper-case letters and digits. */
static int slack_id(const char *s, const char *prefixes)
{
	if (!s || !s[0] || !strchr(prefixes, s[0]))
		return 0;
	size_t n = 1;
	while (isupper((unsigned char)s[n]) || isdigit((unsigned char)s[n]))
		n++;
	return n >= 2 && n <= 64 && s[n] == '\0';
}

static void message_event(struct slack *s, struct prov_batch *b, const char *team, const cJSON *ev,
                          const char *event_id)
{
	const struct parley_host *h = s->ch.host;
	const char *subtype = str(ev, "subtype");
	const char *channel = str(ev, "channel");
	const cJSON *inner = ev;
	int edited = subtype && strcmp(subtype, "message_changed") == 0;
	int deleted = subtype && strcmp(subtype, "message_deleted") == 0;
	if (edited)
		inner = cJSON_GetObjectItemCaseSensitive(ev, "message");
	/* Our own posts come back as events: storing them again would loop. */
	if (str(inner, "bot_id") || (subtype && strcmp(subtype, "bot_message") == 0)) {
		h->metric_add(s->ch.inst, "bot_messages_skipped_total", 1);
		prov_batch_ignore(b, "event %s is a bot's message (ours, or another app's)", event_id ? event_id : "?");
		return;
	}
	const char *user = str(inner, "user");
	const char *ts = str(inner, "ts");
	if (deleted)
		ts = str(ev, "deleted_ts");
	if (!channel || !ts) {
		prov_batch_refuse(b, "event.%s is missing: a message needs its channel and ts",
		                  !channel ? "channel" : (deleted ? "deleted_ts" : (edited ? "message.ts" : "ts")));
		return;
	}
	if (user && !slack_id(user, "UW")) {
		prov_batch_refuse(b, "event.%suser is not a Slack user id (U... or W...)", edited ? "message." : "");
		return;
	}
	parley_envelope *env = prov_batch_envelope(b, edited || deleted ? "event" : "message");
	if (!env)
		return;
	if (user) {
		prov_set_fmt(h, env, "from", "slack:%s/%s", team ? team : "", user);
	}
	if (edited || deleted)
		prov_set_fmt(h, env, "external_id", "%s:%s:%s:%s", channel, ts, edited ? "edit" : "deleted",
		             str(ev, "ts") ? str(ev, "ts") : "");
	else
		prov_set_fmt(h, env, "external_id", "%s:%s", channel, ts);
	const char *thread = str(inner, "thread_ts");
	if (edited || deleted || (thread && strcmp(thread, ts) != 0)) {
		prov_set_fmt(h, env, "thread_ref", "%s:%s", channel, edited || deleted ? ts : thread);
	}
	prov_set_time_at(b, env, cJSON_GetObjectItemCaseSensitive(inner, "ts") ? inner : ev, "ts", 1,
	                 inner == ev ? "event" : "event.message");
	if (!deleted)
		prov_set_from(h, env, "text", inner, "text");
	add_files(s, b, env, cJSON_GetObjectItemCaseSensitive(inner, "files"));
	cJSON *meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "slack_channel", channel);
	/* Slack's id for the delivery: its retries carry the same one, so subscribers can correlate them. */
	if (event_id)
		cJSON_AddStringToObject(meta, "event_id", event_id);
	if (str(ev, "channel_type"))
		cJSON_AddStringToObject(meta, "channel_type", str(ev, "channel_type"));
	if (thread)
		cJSON_AddStringToObject(meta, "thread_ts", thread);
	if (edited)
		cJSON_AddBoolToObject(meta, "edited", 1);
	if (deleted)
		cJSON_AddBoolToObject(meta, "deleted", 1);
	if (subtype && !edited && !deleted && strcmp(subtype, "file_share") != 0)
		cJSON_AddStringToObject(meta, "subtype", subtype);
	prov_set_json(h, env, "meta", meta);
}

static void event_callback(struct slack *s, struct prov_batch *b, const cJSON *doc)
{
	const struct parley_host *h = s->ch.host;
	const char *team = str(doc, "team_id");
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(doc, "event");
	const char *type = str(ev, "type");
	if (team && !slack_id(team, "TE")) {
		prov_batch_refuse(b, "team_id is not a Slack team id (T... or E...)");
		return;
	}
	if (!cJSON_IsObject(ev)) {
		prov_batch_refuse(b, "an event_callback needs an 'event' object");
		return;
	}
	if (type && (strcmp(type, "message") == 0 || strcmp(type, "app_mention") == 0)) {
		message_event(s, b, team, ev, str(doc, "event_id"));
		return;
	}
	/* reaction_added, member_joined_channel, ...: kept whole, named by event_id. */
	parley_envelope *env = prov_batch_envelope(b, "event");
	if (!env)
		return;
	if (!str(doc, "event_id")) {
		/* Without it every such event would share one key, and all but the first be "duplicates". */
		prov_batch_refuse(b, "an event_callback needs 'event_id'");
		return;
	}
	prov_set_fmt(h, env, "external_id", "event:%s", str(doc, "event_id"));
	/* Most events name the user in "user"; file events (file_shared, file_created, ...) in "user_id". */
	const char *user = str(ev, "user") ? str(ev, "user") : str(ev, "user_id");
	if (user && !slack_id(user, "UW")) {
		prov_batch_refuse(b, "event.%s is not a Slack user id (U... or W...)",
		                  str(ev, "user") ? "user" : "user_id");
		return;
	}
	if (user) {
		prov_set_fmt(h, env, "from", "slack:%s/%s", team ? team : "", user);
	}
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item");
	if (str(item, "channel") && str(item, "ts")) {
		prov_set_fmt(h, env, "thread_ref", "%s:%s", str(item, "channel"), str(item, "ts"));
	}
	if (type && strcmp(type, "reaction_added") == 0)
		prov_set_from(h, env, "text", ev, "reaction");
	cJSON *meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "event_type", type ? type : "?");
	cJSON_AddStringToObject(meta, "event_id", str(doc, "event_id"));
	cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(ev, 1));
	prov_set_json(h, env, "meta", meta);
	h->log(s->ch.inst, PARLEY_LOG_INFO, "event %s of type '%s' kept in meta.raw", str(doc, "event_id"),
	       type ? type : "?");
}

static void on_post(void *data, parley_http_request *req)
{
	struct slack *s = data;
	const struct parley_host *h = s->ch.host;
	size_t len;
	const char *body = h->http_body(req, &len);
	const char *why = verify(s, req, body, len);
	if (why) {
		prov_refuse_signature(h, s->ch.inst, req, why);
		return;
	}
	cJSON *doc = prov_json_body(h, req, body, len);
	if (!doc)
		return;
	const char *type = str(doc, "type");
	if (!cJSON_IsObject(doc) || !type) {
		cJSON_Delete(doc);
		prov_respond_error(h, req, 400, "not a Slack Events API payload: expected a JSON object with a type");
		return;
	}
	if (strcmp(type, "url_verification") == 0) {
		const char *ch = str(doc, "challenge");
		h->http_respond(req, 200, "text/plain", ch ? ch : "", ch ? strlen(ch) : 0);
		cJSON_Delete(doc);
		return;
	}
	struct prov_batch *b = prov_batch_new(h, s->ch.inst, req, s->ch.media);
	if (strcmp(type, "event_callback") == 0)
		event_callback(s, b, doc);
	else
		prov_batch_ignore(b, "a Slack payload of type '%s' (only event_callback is stored)", type);
	cJSON_Delete(doc);
	prov_batch_finish(b);
}

/* Interactivity: form body payload=<JSON> with block_actions. */
static void on_interactive(void *data, parley_http_request *req)
{
	struct slack *s = data;
	const struct parley_host *h = s->ch.host;
	size_t len;
	const char *body = h->http_body(req, &len);
	const char *why = verify(s, req, body, len);
	if (why) {
		prov_respond_error(h, req, 401, why);
		return;
	}
	struct prov_form f;
	if (prov_form_body(h, req, body, len, &f) != 0)
		return;
	char bad[400];
	const char *payload = prov_form_get(&f, "payload");
	cJSON *p = NULL;
	if (prov_form_check(h, &f, bad, sizeof(bad)) == 0 && payload)
		p = prov_json_parse(h, payload, strlen(payload), bad, sizeof(bad));
	else if (!payload)
		snprintf(bad, sizeof(bad), "expected a form field 'payload' holding a JSON object");
	prov_form_free(&f);
	if (!cJSON_IsObject(p)) {
		if (p)
			snprintf(bad, sizeof(bad), "expected a form field 'payload' holding a JSON object");
		cJSON_Delete(p);
		prov_respond_error(h, req, 400, bad);
		return;
	}
	struct prov_batch *b = prov_batch_new(h, s->ch.inst, req, s->ch.media);
	const char *type = str(p, "type");
	if (type && strcmp(type, "block_actions") == 0) {
		const char *team = str(cJSON_GetObjectItemCaseSensitive(p, "team"), "id");
		const char *user = str(cJSON_GetObjectItemCaseSensitive(p, "user"), "id");
		const char *channel = str(cJSON_GetObjectItemCaseSensitive(p, "channel"), "id");
		const char *msg_ts = str(cJSON_GetObjectItemCaseSensitive(p, "message"), "ts");
		const cJSON *a;
		if (!slack_id(user, "UW"))
			prov_batch_refuse(b, "payload user.id is %s",
			                  user ? "not a Slack user id (U... or W...)" : "missing");
		cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(p, "actions"))
		{
			parley_envelope *env = prov_batch_envelope(b, "message");
			if (!env)
				break;
			prov_set_fmt(h, env, "from", "slack:%s/%s", team ? team : "", user ? user : "");
			if (!str(a, "action_ts") || !str(a, "action_id")) {
				prov_batch_refuse(b, "each of 'actions' needs 'action_id' and 'action_ts'");
				break;
			}
			prov_set_fmt(h, env, "external_id", "action:%s:%s", str(a, "action_ts"), str(a, "action_id"));
			if (channel && msg_ts) {
				prov_set_fmt(h, env, "thread_ref", "%s:%s", channel, msg_ts);
			}
			prov_set_from(h, env, "text", cJSON_GetObjectItemCaseSensitive(a, "text"), "text");
			cJSON *meta = cJSON_CreateObject();
			cJSON_AddStringToObject(meta, "reply_id", str(a, "value") ? str(a, "value") : "");
			if (channel)
				cJSON_AddStringToObject(meta, "slack_channel", channel);
			prov_set_json(h, env, "meta", meta);
		}
	} else
		prov_batch_ignore(b, "an interaction of type '%s' (only block_actions is stored)", type ? type : "?");
	cJSON_Delete(p);
	prov_batch_finish(b);
}

static int fetch_file(void *arg, struct prov_client *client, const char *url, struct prov_http *out)
{
	struct slack *s = arg;
	const struct prov_credentials cred = {s->auth, NULL};
	return prov_fetch(client, &s->ch.policy, url, &cred, out);
}

static int transient_error(const char *e)
{
	static const char *const list[] = {"ratelimited",         "internal_error",  "fatal_error",
	                                   "service_unavailable", "request_timeout", NULL};
	for (size_t i = 0; e && list[i]; i++)
		if (strcmp(e, list[i]) == 0)
			return 1;
	return 0;
}

static int sl_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct slack *s = data;
	const struct parley_host *h = s->ch.host;
	const char *to = h->envelope_get_str(env, "to");
	const char *slash = to && strncmp(to, "slack:", 6) == 0 ? strchr(to, '/') : NULL;
	if (!slash || !slash[1]) {
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text), "'to' must be slack:<team>/<user or channel id>");
		return 0;
	}
	const char *channel = slash + 1;
	cJSON *msg = cJSON_CreateObject();
	cJSON_AddStringToObject(msg, "channel", channel);
	const char *text = h->envelope_get_str(env, "text");
	cJSON_AddStringToObject(msg, "text", text ? text : "");
	const char *ref = h->envelope_get_str(env, "thread_ref");
	const char *colon = ref ? strchr(ref, ':') : NULL;
	if (colon)
		cJSON_AddStringToObject(msg, "thread_ts", colon + 1);
	char *atts = h->envelope_get_json(env, "attachments");
	char *metas = h->envelope_get_json(env, "meta");
	cJSON *a = atts ? cJSON_Parse(atts) : NULL, *m = metas ? cJSON_Parse(metas) : NULL;
	free(atts);
	free(metas);
	const cJSON *buttons = cJSON_GetObjectItemCaseSensitive(m, "buttons");
	if ((cJSON_IsArray(buttons) && cJSON_GetArraySize(buttons) > 0) || cJSON_GetArraySize(a) > 0) {
		cJSON *blocks = cJSON_AddArrayToObject(msg, "blocks");
		cJSON *sec = cJSON_CreateObject();
		cJSON_AddStringToObject(sec, "type", "section");
		cJSON *t = cJSON_AddObjectToObject(sec, "text");
		cJSON_AddStringToObject(t, "type", "mrkdwn");
		cJSON_AddStringToObject(t, "text", text ? text : " ");
		cJSON_AddItemToArray(blocks, sec);
		const cJSON *att;
		cJSON_ArrayForEach(att, a)
		{
			const char *url = str(att, "url");
			if (!url)
				continue;
			cJSON *img = cJSON_CreateObject();
			cJSON_AddStringToObject(img, "type", "image");
			cJSON_AddStringToObject(img, "image_url", url);
			cJSON_AddStringToObject(img, "alt_text", str(att, "name") ? str(att, "name") : "attachment");
			cJSON_AddItemToArray(blocks, img);
		}
		if (cJSON_IsArray(buttons) && cJSON_GetArraySize(buttons) > 0) {
			cJSON *act = cJSON_CreateObject();
			cJSON_AddStringToObject(act, "type", "actions");
			cJSON *els = cJSON_AddArrayToObject(act, "elements");
			const cJSON *bt;
			cJSON_ArrayForEach(bt, buttons)
			{
				const char *id = str(bt, "id") ? str(bt, "id") : str(bt, "title");
				cJSON *e = cJSON_CreateObject();
				cJSON_AddStringToObject(e, "type", "button");
				cJSON *bt_text = cJSON_AddObjectToObject(e, "text");
				cJSON_AddStringToObject(bt_text, "type", "plain_text");
				cJSON_AddStringToObject(bt_text, "text", str(bt, "title") ? str(bt, "title") : "");
				cJSON_AddStringToObject(e, "value", id ? id : "");
				cJSON_AddStringToObject(e, "action_id", id ? id : "");
				cJSON_AddItemToArray(els, e);
			}
			cJSON_AddItemToArray(blocks, act);
		}
	}
	cJSON_Delete(a);
	cJSON_Delete(m);
	char *body = cJSON_PrintUnformatted(msg);
	cJSON_Delete(msg);
	char url[1024];
	snprintf(url, sizeof(url), "%s/api/chat.postMessage", s->ch.base);
	const char *hdrs[] = {s->auth, "Content-Type: application/json; charset=utf-8", NULL};
	struct prov_http r;
	prov_request(&s->ch.client, "POST", url, hdrs, body, strlen(body), NULL, &r);
	free(body);
	cJSON *j = cJSON_Parse(r.body ? r.body : "");
	int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"));
	if (r.status == 200 && ok) {
		prov_classify(&r, NULL, NULL, res);
		snprintf(res->provider_id, sizeof(res->provider_id), "%s:%s",
		         str(j, "channel") ? str(j, "channel") : channel, str(j, "ts") ? str(j, "ts") : "");
	} else {
		const char *err = str(j, "error");
		/* The Web API answers most errors with HTTP 200 and ok: false. */
		struct prov_http as = r;
		if (r.status == 200)
			as.status = transient_error(err) ? 503 : 400;
		prov_classify(&as, err, err, res);
	}
	cJSON_Delete(j);
	prov_http_free(&r);
	return 0;
}

static int sl_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	int rv = prov_channel_new(data, sizeof(struct slack), h, inst, media_hosts, media_hosts, errmsg);
	if (rv != 0)
		return rv;
	struct slack *s = *data;
	s->bot_token = h->config_str(inst, "bot_token");
	s->signing_secret = h->config_str(inst, "signing_secret");
	snprintf(s->auth, sizeof(s->auth), "Authorization: Bearer %s", s->bot_token);
	return 0;
}

static int sl_start(void *data, char **errmsg)
{
	struct slack *s = data;
	(void)errmsg;
	static const struct prov_route routes[] = {
	        {"POST", "", on_post}, {"POST", "/interactive", on_interactive}, {NULL, NULL, NULL}};
	return prov_channel_start(&s->ch, fetch_file, s, routes);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "slack",
        .version = "1.0.0",
        .description = "Slack Events API in (signed, replay-protected), chat.postMessage out with buttons",
        .config = config_map,
        .init = prov_plugin_init,
        .fini = prov_plugin_fini,
        .instance_create = sl_create,
        .instance_start = sl_start,
        .instance_stop = prov_channel_instance_stop,
        .instance_destroy = prov_channel_instance_destroy,
        .channel_send = sl_send,
        .check_config = prov_policy_check_config,
};

PARLEY_PLUGIN_DEFINE(plugin)
