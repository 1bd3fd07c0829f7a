/*
 * viber.c: the Viber REST bot API channel type: its config, its lifecycle,
 * and the reading of Viber's 64-bit message tokens.
 *
 * Inbound (inbound.c): callbacks POSTed to the webhook set with
 * set_webhook, signed with X-Viber-Content-Signature (hex HMAC-SHA256 of
 * the body with the auth token): message, subscribed, unsubscribed,
 * conversation_started, and delivered / seen / failed receipts of our own
 * messages; the "webhook" check set_webhook makes is acknowledged.  Media
 * come as URLs and are fetched after the commit.
 *
 * Outbound (outbound.c): send_message with X-Viber-Auth-Token.  Viber
 * answers HTTP 200 for its own errors too, with `status` in the JSON body:
 * each documented status is mapped to sent, retry or dead letter.
 */
#include "viber.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Viber serves the media of callbacks from its own hosts (dl-media.viber.com); the links need no token. */
static const char *const media_hosts[] = {"*.viber.com", NULL};

static const struct parley_config_key config_map[] = {
        {"auth_token", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "the bot's authentication token (app key): callbacks must carry X-Viber-Content-Signature made with it, "
         "and sends are made with it"},
        {"sender_name", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED,
         "the sender name shown with our messages (at most 28 characters)"},
        {"sender_avatar", PARLEY_CFG_STRING, NULL, 0, "URL of the sender's avatar shown with our messages"},
        {"api_base_url", PARLEY_CFG_STRING, "https://chatapi.viber.com/pa", 0, "REST bot API base URL"},
        {"timeout", PARLEY_CFG_DURATION, "10s", 0, "provider request timeout"},
        {"max_media", PARLEY_CFG_SIZE, "50MiB", 0, "larger files are not fetched"},
        {"media_hosts", PARLEY_CFG_LIST, NULL, 0,
         "more hosts media may be fetched from over https (a media proxy, say); they never get the credentials"},
        {NULL, 0, NULL, 0, NULL},
};

/* After a string that starts at *p (the opening quote), just past its closing quote; NULL when unterminated. */
static const char *past_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

int viber_message_token(const char *json, size_t len, char *out, size_t outlen)
{
	static const char key[] = "\"message_token\"";
	const char *p = json, *end = json + len;
	int depth = 0;
	while (p < end) {
		if (*p == '"') {
			const char *s = p;
			if (!(p = past_string(p, end)))
				return -1;
			if (depth != 1 || (size_t)(p - s) != sizeof(key) - 1 || memcmp(s, key, sizeof(key) - 1) != 0)
				continue;
			while (p < end && isspace((unsigned char)*p))
				p++;
			if (p == end || *p != ':')
				continue; /* a value "message_token", not the member */
			for (p++; p < end && isspace((unsigned char)*p);)
				p++;
			size_t n = 0;
			while (p + n < end && isdigit((unsigned char)p[n]))
				n++;
			/* 2^64 - 1 has 20 digits; a fraction or exponent is not a token. */
			if (n == 0 || n > 20 || n >= outlen || (n == 20 && memcmp(p, "18446744073709551615", 20) > 0) ||
			    (p + n < end && strchr(".eE", p[n])))
				return -1;
			memcpy(out, p, n);
			out[n] = '\0';
			return 0;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		p++;
	}
	return -1;
}

int viber_user_id(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n >= 1 && n <= 64 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") == n;
}

static int viber_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	struct viber *v = calloc(1, sizeof(*v));
	if (!v)
		return PARLEY_ENOMEM;
	int rv = prov_policy_init(&v->policy, h, inst, media_hosts, NULL, errmsg);
	if (rv != 0) {
		free(v);
		return rv;
	}
	v->host = h;
	v->inst = inst;
	v->token = h->config_str(inst, "auth_token");
	v->sender_name = h->config_str(inst, "sender_name");
	v->sender_avatar = h->config_str(inst, "sender_avatar");
	v->base = h->config_str(inst, "api_base_url");
	h->config_duration_ms(inst, "timeout", &v->timeout_ms);
	h->config_size(inst, "max_media", &v->max_media);
	size_t n = strlen(v->token) + 32;
	if (!(v->auth = malloc(n))) {
		prov_policy_fini(&v->policy);
		free(v);
		return PARLEY_ENOMEM;
	}
	snprintf(v->auth, n, "X-Viber-Auth-Token: %s", v->token);
	prov_client_init(&v->client, v->timeout_ms, 1 << 20);
	*data = v;
	return 0;
}

static int viber_start(void *data, char **errmsg)
{
	struct viber *v = data;
	(void)errmsg;
	int rv = prov_media_start(&v->media, v->host, v->inst, viber_fetch, v, (size_t)v->max_media, v->timeout_ms);
	if (rv == 0)
		rv = v->host->http_route(v->inst, "POST", "", viber_on_post);
	return rv;
}

static void viber_stop(void *data)
{
	struct viber *v = data;
	prov_media_stop(v->media);
	v->media = NULL;
}

static void viber_destroy(void *data)
{
	struct viber *v = data;
	prov_client_fini(&v->client);
	prov_policy_fini(&v->policy);
	free(v->auth);
	free(v);
}

/* Characters of UTF-8 text s (code points; continuation bytes are not counted). */
static size_t chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static int viber_check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	cJSON *c = cJSON_Parse(config_json);
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "sender_name"));
	int bad = name && (!name[0] || chars(name) > 28);
	cJSON_Delete(c);
	if (bad) {
		*errmsg = strdup("sender_name must be 1 to 28 characters (Viber's limit for sender.name)");
		return PARLEY_EINVAL;
	}
	return prov_policy_check_config(h, config_json, errmsg);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "viber",
        .version = "1.0.0",
        .description = "Viber REST bot API: messages, media, locations, contacts, subscriptions, receipts",
        .config = config_map,
        .init = prov_plugin_init,
        .fini = prov_plugin_fini,
        .instance_create = viber_create,
        .instance_start = viber_start,
        .instance_stop = viber_stop,
        .instance_destroy = viber_destroy,
        .channel_send = viber_send,
        .check_config = viber_check,
};

PARLEY_PLUGIN_DEFINE(plugin)
