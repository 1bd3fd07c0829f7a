/*
 * wechat.c: the WeChat Official Account channel type: its config and its
 * instance's life.  What comes in is in inbound.c, what goes out in
 * api.c; the overview is in wechat.h.
 */
#include "wechat.h"

#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct parley_config_key config_map[] = {
        {"app_id", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED,
         "the Official Account's AppID (wx...); in safe mode, encrypted messages must name it"},
        {"app_secret", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "the AppSecret, for the access token"},
        {"token", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "the Token of the server configuration: requests must be signed with it"},
        {"encoding_aes_key", PARLEY_CFG_STRING, NULL, PARLEY_CFG_SECRET,
         "the EncodingAESKey (43 characters): set for safe mode, where every message must be encrypted"},
        {"original_id", PARLEY_CFG_STRING, NULL, 0,
         "the account's original id (gh_...): messages to another ToUserName are acknowledged and ignored"},
        {"api_base_url", PARLEY_CFG_STRING, "https://api.weixin.qq.com", 0, "the Official Account API base URL"},
        {"token_endpoint", PARLEY_CFG_STRING, "stable_token", 0,
         "stable_token (one token for every caller: several gateway nodes) or token (/cgi-bin/token)"},
        {"timeout", PARLEY_CFG_DURATION, "10s", 0, "API request timeout"},
        {"max_media", PARLEY_CFG_SIZE, "10MiB", 0, "larger media are not fetched"},
        {"media_hosts", PARLEY_CFG_LIST, NULL, 0,
         "more hosts media may be fetched from over https; media come from api_base_url only otherwise"},
        {NULL, 0, NULL, 0, NULL},
};

static int wx_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	struct wechat *w = calloc(1, sizeof(*w));
	if (!w)
		return PARLEY_ENOMEM;
	/* Media come from the API's own /cgi-bin/media/get: no other host by default. */
	static const char *const no_hosts[] = {NULL};
	int rv = prov_policy_init(&w->policy, h, inst, no_hosts, NULL, errmsg);
	if (rv != 0) {
		free(w);
		return rv;
	}
	w->host = h;
	w->inst = inst;
	w->app_id = h->config_str(inst, "app_id");
	w->app_secret = h->config_str(inst, "app_secret");
	w->token = h->config_str(inst, "token");
	w->original_id = h->config_str(inst, "original_id");
	w->base = h->config_str(inst, "api_base_url");
	w->stable_token = strcmp(h->config_str(inst, "token_endpoint"), "token") != 0;
	const char *key = h->config_str(inst, "encoding_aes_key");
	w->safe = key != NULL;
	if (key && wechat_aes_key(key, w->aes_key) != 0) {
		*errmsg = strdup("encoding_aes_key must be the 43 characters of the EncodingAESKey");
		prov_policy_fini(&w->policy);
		free(w);
		return PARLEY_EINVAL;
	}
	h->config_duration_ms(inst, "timeout", &w->timeout_ms);
	h->config_size(inst, "max_media", &w->max_media);
	prov_client_init(&w->client, w->timeout_ms, 1 << 20);
	pthread_mutex_init(&w->token_lock, NULL);
	w->said_up = -1;
	xmlInitParser();
	*data = w;
	return 0;
}

static int wx_start(void *data, char **errmsg)
{
	struct wechat *w = data;
	(void)errmsg;
	int rv = prov_media_start(&w->media, w->host, w->inst, wechat_fetch_media, w, (size_t)w->max_media,
	                          w->timeout_ms);
	if (rv == 0)
		rv = w->host->http_route(w->inst, "POST", "", wechat_on_post);
	if (rv == 0)
		rv = w->host->http_route(w->inst, "GET", "", wechat_on_verify);
	return rv;
}

static void wx_stop(void *data)
{
	struct wechat *w = data;
	prov_media_stop(w->media);
	w->media = NULL;
}

static void wx_destroy(void *data)
{
	struct wechat *w = data;
	prov_client_fini(&w->client);
	prov_policy_fini(&w->policy);
	pthread_mutex_destroy(&w->token_lock);
	free(w);
}

static int wx_check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	cJSON *c = cJSON_Parse(config_json);
	const char *ep = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "token_endpoint"));
	const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "encoding_aes_key"));
	unsigned char raw[32];
	const char *bad = NULL;
	if (ep && strcmp(ep, "stable_token") != 0 && strcmp(ep, "token") != 0)
		bad = "token_endpoint must be stable_token or token";
	else if (key && wechat_aes_key(key, raw) != 0)
		bad = "encoding_aes_key must be the 43 characters of the EncodingAESKey (base64 of 32 bytes, no '=')";
	cJSON_Delete(c);
	if (bad) {
		*errmsg = strdup(bad);
		return PARLEY_EINVAL;
	}
	return prov_policy_check_config(h, config_json, errmsg);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "wechat",
        .version = "1.0.0",
        .description = "WeChat Official Account: messages and events (plain and safe mode), customer-service replies",
        .config = config_map,
        .init = prov_plugin_init,
        .fini = prov_plugin_fini,
        .instance_create = wx_create,
        .instance_start = wx_start,
        .instance_stop = wx_stop,
        .instance_destroy = wx_destroy,
        .channel_send = wechat_send,
        .check_config = wx_check,
};

PARLEY_PLUGIN_DEFINE(plugin)
