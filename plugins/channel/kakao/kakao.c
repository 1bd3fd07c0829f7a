/*
 * kakao.c: the KakaoTalk channel chatbot channel type (a Kakao i Open
 * Builder skill server): its config, its instance's life.  How a skill
 * request is answered by the reply to it is in kakao.h.
 *
 * Kakao signs nothing.  A skill's settings in Open Builder take HTTP
 * headers that Kakao sends with every request, so the channel's `secret`
 * is given there under `secret_header` and compared in constant time;
 * `bot_id`, when set, must be the payload's bot.id as well.  A request
 * failing either is answered 401 and stores nothing.
 */
#include "kakao.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct parley_config_key config_map[] = {
        {"secret", PARLEY_CFG_STRING, NULL, PARLEY_CFG_SECRET,
         "the value of secret_header the skill's settings in Open Builder send with each request; required unless "
         "insecure: true"},
        {"secret_header", PARLEY_CFG_STRING, "X-Parley-Kakao-Secret", 0,
         "the HTTP header the skill's settings send the secret in"},
        {"bot_id", PARLEY_CFG_STRING, NULL, 0, "the Open Builder bot id; requests naming another bot.id get 401"},
        {"insecure", PARLEY_CFG_BOOL, "false", 0, "accept requests without the secret (anyone can post)"},
        {"answer_within", PARLEY_CFG_DURATION, "4500ms", 0,
         "how long a skill request waits for its reply before holding_text answers it (Kakao gives up at 5 s)"},
        {"holding_text", PARLEY_CFG_STRING, "답변을 준비하고 있어요. 잠시만 기다려 주세요.", 0,
         "the answer when no reply came within answer_within"},
        {"timeout", PARLEY_CFG_DURATION, "10s", 0, "callbackUrl request timeout"},
        {NULL, 0, NULL, 0, NULL},
};

int64_t kakao_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int kk_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	struct kakao *k = calloc(1, sizeof(*k));
	if (!k)
		return PARLEY_ENOMEM;
	k->host = h;
	k->inst = inst;
	k->secret = h->config_str(inst, "secret");
	k->secret_header = h->config_str(inst, "secret_header");
	k->bot_id = h->config_str(inst, "bot_id");
	k->holding_text = h->config_str(inst, "holding_text");
	h->config_bool(inst, "insecure", &k->insecure);
	h->config_duration_ms(inst, "answer_within", &k->answer_within_ms);
	h->config_duration_ms(inst, "timeout", &k->timeout_ms);
	if (k->answer_within_ms <= 0 || k->answer_within_ms > 60000) {
		*errmsg = strdup("answer_within must be between 1ms and 60s (Kakao waits 5 s)");
		free(k);
		return PARLEY_EINVAL;
	}
	if (!k->holding_text || !k->holding_text[0] || strlen(k->holding_text) > KAKAO_TEXT_MAX) {
		*errmsg = strdup("holding_text must be 1-1000 bytes");
		free(k);
		return PARLEY_EINVAL;
	}
	prov_client_init(&k->client, k->timeout_ms, 64 * 1024);
	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (k->insecure)
		h->log(inst, PARLEY_LOG_WARN, "insecure: true: skill requests are taken without the secret header");
	*data = k;
	return 0;
}

static int kk_start(void *data, char **errmsg)
{
	struct kakao *k = data;
	(void)errmsg;
	int rv = kakao_holds_start(k);
	return rv ? rv : k->host->http_route(k->inst, "POST", "", kakao_on_skill);
}

static void kk_stop(void *data)
{
	kakao_holds_stop(data);
}

static void kk_destroy(void *data)
{
	struct kakao *k = data;
	prov_client_fini(&k->client);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static int kk_check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	(void)h;
	return prov_check_signing(config_json, "secret", "the secret the skill's settings send in secret_header",
	                          errmsg);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "kakao",
        .version = "1.0.0",
        .description = "KakaoTalk channel chatbot skills: the reply is the skill's answer, in time, or its callback",
        .config = config_map,
        .init = prov_plugin_init,
        .fini = prov_plugin_fini,
        .instance_create = kk_create,
        .instance_start = kk_start,
        .instance_stop = kk_stop,
        .instance_destroy = kk_destroy,
        .channel_send = kakao_send,
        .check_config = kk_check,
};

PARLEY_PLUGIN_DEFINE(plugin)
