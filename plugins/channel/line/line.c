/*
 * line.c: the LINE Messaging API channel type: its config, its lifecycle,
 * and the reply tokens it keeps between a webhook and the reply to it.
 *
 * Inbound (inbound.c): webhook requests signed with X-Line-Signature
 * (base64 of HMAC-SHA256 of the body with the channel secret), for the
 * configured bot (`destination`).  Each event is keyed by its
 * webhookEventId, so a redelivery (deliveryContext.isRedelivery) is stored
 * once.  Images, videos, audio and files are downloaded after the commit
 * from the content API (api-data.line.me).
 *
 * Outbound (outbound.c): a reply message with the chat's reply token while
 * it is good (LINE accepts one within a minute of the event, once), else a
 * push message with an X-Line-Retry-Key made from the envelope's id, so a
 * retried push is delivered once.
 *
 * A reply token lives in memory only: after a restart, or on another
 * gateway node, the reply goes by push, which is always correct (it only
 * counts against the push quota).
 */
#include "line.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Content comes from the content API host, which takes the channel access token. */
static const char *const media_hosts[] = {"api-data.line.me", NULL};

static const struct parley_config_key config_map[] = {
        {"channel_secret", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "the channel secret: webhooks must carry X-Line-Signature made with it"},
        {"channel_access_token", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "the channel access token, for sending and content downloads"},
        {"bot_user_id", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED,
         "the bot's user id (U and 32 hex digits); webhooks for another bot (destination) are acknowledged and "
         "ignored"},
        {"api_base_url", PARLEY_CFG_STRING, "https://api.line.me", 0, "Messaging API base URL"},
        {"data_api_base_url", PARLEY_CFG_STRING, "https://api-data.line.me", 0,
         "content API base URL (media downloads): api-data.line.me or on api_base_url's origin"},
        {"timeout", PARLEY_CFG_DURATION, "10s", 0, "provider request timeout"},
        {"max_media", PARLEY_CFG_SIZE, "50MiB", 0, "larger files are not downloaded"},
        {"reply_token_window", PARLEY_CFG_DURATION, "50s", 0,
         "how long after an event its reply token is used (LINE takes it for one minute); later replies are "
         "pushed"},
        {"media_hosts", PARLEY_CFG_LIST, NULL, 0,
         "more hosts media may be fetched from over https (external content providers); they never get the "
         "credentials"},
        {NULL, 0, NULL, 0, NULL},
};

/* More chats than this with a token: the stale ones are swept before another is added. */
#define LINE_REPLIES_SWEEP 4096

int line_chat_id(const char *s)
{
	if (!s || (s[0] != 'U' && s[0] != 'C' && s[0] != 'R') || strlen(s) != 33)
		return 0;
	for (size_t i = 1; i < 33; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return 0;
	return 1;
}

int64_t line_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The time a kept token came, or -1 for a value that is not one. */
static int64_t token_time(const char *v)
{
	long long ms;
	char num[24];
	size_t n = strcspn(v, " ");
	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, v, n);
	num[n] = '\0';
	return prov_parse_ll(num, 0, INT64_MAX, &ms) == 0 ? (int64_t)ms : -1;
}

static void sweep(struct line *l, int64_t now)
{
	for (size_t i = 0; i < l->replies.cap;) {
		const char *k = l->replies.keys[i];
		if (k && now - token_time(l->replies.vals[i]) > l->reply_window_ms) {
			/* strmap_del moves later entries of the probe run into this slot: look at it again. */
			char *key = strdup(k);
			if (!key)
				return;
			strmap_del(&l->replies, key);
			free(key);
			continue;
		}
		i++;
	}
}

void line_reply_put(struct line *l, const char *chat, const char *token, int64_t at_ms)
{
	int64_t now = line_now_ms();
	char *v = malloc(strlen(token) + 24);
	if (!v)
		return;
	snprintf(v, strlen(token) + 24, "%lld %s", (long long)(at_ms > 0 && at_ms < now ? at_ms : now), token);
	pthread_mutex_lock(&l->lock);
	if (l->replies.n >= LINE_REPLIES_SWEEP)
		sweep(l, now);
	if (l->replies.n < 2 * LINE_REPLIES_SWEEP)
		strmap_put(&l->replies, chat, v);
	pthread_mutex_unlock(&l->lock);
	free(v);
}

int line_reply_take(struct line *l, const char *chat, char *out, size_t outlen)
{
	int rv = -1;
	pthread_mutex_lock(&l->lock);
	const char *v = strmap_get(&l->replies, chat);
	if (v) {
		int64_t at = token_time(v);
		const char *tok = strchr(v, ' ');
		if (at >= 0 && line_now_ms() - at <= l->reply_window_ms && tok && strlen(tok + 1) < outlen) {
			snprintf(out, outlen, "%s", tok + 1);
			rv = 0;
		}
		strmap_del(&l->replies, chat);
	}
	pthread_mutex_unlock(&l->lock);
	return rv;
}

static int line_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	struct line *l = calloc(1, sizeof(*l));
	if (!l)
		return PARLEY_ENOMEM;
	int rv = prov_policy_init(&l->policy, h, inst, media_hosts, media_hosts, errmsg);
	if (rv != 0) {
		free(l);
		return rv;
	}
	l->host = h;
	l->inst = inst;
	l->secret = h->config_str(inst, "channel_secret");
	l->bot_user_id = h->config_str(inst, "bot_user_id");
	l->base = h->config_str(inst, "api_base_url");
	l->data_base = h->config_str(inst, "data_api_base_url");
	h->config_duration_ms(inst, "timeout", &l->timeout_ms);
	h->config_duration_ms(inst, "reply_token_window", &l->reply_window_ms);
	h->config_size(inst, "max_media", &l->max_media);
	/* The content API gets the token: it must be a host the fetch policy gives credentials to. */
	struct prov_hop hop;
	char why[256] = "";
	if (prov_policy_check(&l->policy, l->data_base, &hop, why, sizeof(why)) != 0 || !hop.credentials) {
		size_t n = strlen(why) + 160;
		*errmsg = malloc(n);
		if (*errmsg)
			snprintf(*errmsg, n,
			         "data_api_base_url: %s; set it to https://api-data.line.me or a URL on api_base_url's "
			         "origin",
			         why[0] ? why : "it would not get the channel access token");
		prov_policy_fini(&l->policy);
		free(l);
		return PARLEY_EINVAL;
	}
	const char *token = h->config_str(inst, "channel_access_token");
	size_t n = strlen(token) + 32;
	l->auth = malloc(n);
	if (!l->auth) {
		prov_policy_fini(&l->policy);
		free(l);
		return PARLEY_ENOMEM;
	}
	snprintf(l->auth, n, "Authorization: Bearer %s", token);
	pthread_mutex_init(&l->lock, NULL);
	prov_client_init(&l->client, l->timeout_ms, 1 << 20);
	*data = l;
	return 0;
}

static int line_start(void *data, char **errmsg)
{
	struct line *l = data;
	(void)errmsg;
	int rv = prov_media_start(&l->media, l->host, l->inst, line_fetch, l, (size_t)l->max_media, l->timeout_ms);
	return rv ? rv : l->host->http_route(l->inst, "POST", "", line_on_post);
}

static void line_stop(void *data)
{
	struct line *l = data;
	prov_media_stop(l->media);
	l->media = NULL;
}

static void line_destroy(void *data)
{
	struct line *l = data;
	prov_client_fini(&l->client);
	prov_policy_fini(&l->policy);
	strmap_free(&l->replies);
	pthread_mutex_destroy(&l->lock);
	free(l->auth);
	free(l);
}

/* The length of url's origin ("https://host:port"), or 0 when it has none. */
static size_t origin_len(const char *url)
{
	const char *p = strstr(url, "://");
	return p ? (size_t)(p + 3 - url) + strcspn(p + 3, "/?#") : 0;
}

/* 1 when the content API URL gets the token safely: LINE's own host, or api_base_url's origin. */
static int data_base_ok(const char *data, const char *api)
{
	static const char line_data[] = "https://api-data.line.me";
	size_t n = origin_len(data);
	return n && ((n == origin_len(api) && strncasecmp(data, api, n) == 0) ||
	             (n == sizeof(line_data) - 1 && strncasecmp(data, line_data, n) == 0));
}

static int line_check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	cJSON *c = cJSON_Parse(config_json);
	const char *bot = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "bot_user_id"));
	const char *api = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "api_base_url"));
	const char *data = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "data_api_base_url"));
	int bad_bot = bot && (bot[0] != 'U' || !line_chat_id(bot));
	int bad_data = data && !data_base_ok(data, api ? api : "https://api.line.me");
	cJSON_Delete(c);
	if (bad_bot) {
		*errmsg = strdup("bot_user_id must be the bot's user id: U and 32 lower-case hex digits (the "
		                 "webhook's 'destination'; GET /v2/bot/info gives it as userId)");
		return PARLEY_EINVAL;
	}
	if (bad_data) {
		*errmsg = strdup("data_api_base_url gets the channel access token: it must be https://api-data.line.me "
		                 "or a URL on api_base_url's origin");
		return PARLEY_EINVAL;
	}
	return prov_policy_check_config(h, config_json, errmsg);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "line",
        .version = "1.0.0",
        .description = "LINE Messaging API: messages, media, locations, stickers, postbacks, follows; reply and push",
        .config = config_map,
        .init = prov_plugin_init,
        .fini = prov_plugin_fini,
        .instance_create = line_create,
        .instance_start = line_start,
        .instance_stop = line_stop,
        .instance_destroy = line_destroy,
        .channel_send = line_send,
        .check_config = line_check,
};

PARLEY_PLUGIN_DEFINE(plugin)
