/*
 * housekeeping.c: every few seconds, notice changes other nodes sharing
 * the store made (their caches' epoch), wake snoozed conversations,
 * publish SLA warnings and breaches (sla.c) and ask due surveys (survey.c);
 * every 10 minutes, delete expired sessions (auth_tick).
 */
#include "housekeeping.h"
#include "auth.h"
#include "bus.h"
#include "gateway.h"
#include "inbox/inbox.h"
#include "log.h"
#include "sla.h"
#include "survey.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PERIOD_MS 2000

struct housekeeping {
	struct gateway *gw;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int stop;
};

static void wake_snoozed(struct gateway *gw)
{
	char *reply = NULL;
	int rv = inbox_op(gw->inbox, "conversations.wake", "{}", &reply);
	if (rv != 0) {
		/* A store without conversations has nothing to wake. */
		free(reply);
		return;
	}
	cJSON *r = cJSON_Parse(reply); /* the conversation core told the caches already */
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(r, "woken"))
	{
		cJSON *ev = cJSON_CreateObject();
		cJSON_AddStringToObject(ev, "conversation_id", cJSON_GetStringValue(c));
		cJSON_AddStringToObject(ev, "by", "snooze");
		char *js = cJSON_PrintUnformatted(ev);
		bus_publish(gw->bus, "conversation.reopened", js, strlen(js));
		free(js);
		cJSON_Delete(ev);
	}
	cJSON_Delete(r);
	free(reply);
}

static void *main_loop(void *arg)
{
	struct housekeeping *hk = arg;
	pthread_mutex_lock(&hk->lock);
	while (!hk->stop) {
		pthread_mutex_unlock(&hk->lock);
		gateway_changed_elsewhere(hk->gw);
		wake_snoozed(hk->gw);
		sla_sweep(hk->gw);
		survey_sweep(hk->gw);
		if (hk->gw->auth)
			auth_tick(hk->gw->auth);
		pthread_mutex_lock(&hk->lock);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += PERIOD_MS / 1000;
		if (!hk->stop)
			pthread_cond_timedwait(&hk->cv, &hk->lock, &ts);
	}
	pthread_mutex_unlock(&hk->lock);
	return NULL;
}

int housekeeping_start(struct housekeeping **out, struct gateway *gw)
{
	struct housekeeping *hk = calloc(1, sizeof(*hk));
	if (!hk)
		return PARLEY_ENOMEM;
	hk->gw = gw;
	pthread_mutex_init(&hk->lock, NULL);
	pthread_cond_init(&hk->cv, NULL);
	if (thread_start(&hk->thread, main_loop, hk, "parley:upkeep") != 0) {
		free(hk);
		return PARLEY_EIO;
	}
	*out = hk;
	return 0;
}

void housekeeping_stop(struct housekeeping *hk)
{
	if (!hk)
		return;
	pthread_mutex_lock(&hk->lock);
	hk->stop = 1;
	pthread_cond_signal(&hk->cv);
	pthread_mutex_unlock(&hk->lock);
	pthread_join(hk->thread, NULL);
	pthread_mutex_destroy(&hk->lock);
	pthread_cond_destroy(&hk->cv);
	free(hk);
}
