/* outbox.c: claim, send, retry and dead-letter outbound envelopes. */
#include "outbox.h"
#include "broadcast.h"
#include "bus.h"
#include "envelope.h"
#include "gateway.h"
#include "inbox/inbox.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"
#include "window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct outbox {
	struct gateway *gw;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int wake, stop;
	/* Outbox thread only: messages wait over a rate limit until deferred_until, due every tick_ms. */
	int64_t deferred_until, tick_ms;
};

int64_t outbox_backoff_ms(int attempts, int64_t base_ms, int64_t max_ms)
{
	int64_t d = base_ms;
	for (int i = 1; i < attempts && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	/* Full jitter in [d/2, d): retries of many messages spread out. */
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint32_t)rand();
	int64_t half = d / 2;
	return half + (half > 0 ? (int64_t)(r % (uint32_t)(half > 0x7fffffff ? 0x7fffffff : half)) : 0);
}

static void publish_status(struct gateway *gw, const cJSON *msg, const char *status, const char *provider_id,
                           const char *error)
{
	parley_envelope *st = envelope_create("status", "outbound");
	if (!st)
		return;
	const cJSON *ch = cJSON_GetObjectItemCaseSensitive(msg, "channel");
	const cJSON *ct = cJSON_GetObjectItemCaseSensitive(msg, "channel_type");
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
	const cJSON *to = cJSON_GetObjectItemCaseSensitive(msg, "to");
	const cJSON *conv = cJSON_GetObjectItemCaseSensitive(msg, "conversation_id");
	envelope_set(st, "channel", cJSON_GetStringValue(ch));
	envelope_set(st, "channel_type", cJSON_GetStringValue(ct));
	envelope_set(st, "to", cJSON_GetStringValue(to));
	envelope_set(st, "conversation_id", cJSON_GetStringValue(conv));
	envelope_set(st, "status", status);
	envelope_set(st, "external_id", provider_id);
	if (error)
		envelope_set(st, "error", error);
	cJSON *meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "message_id", cJSON_GetStringValue(id));
	cJSON_AddItemToObject(st->obj, "meta", meta);
	if (envelope_error(st))
		/* A provider's error text that is not UTF-8, say: the event goes out without that field, said here. */
		log_warn("status event of %s: %s: published without it", cJSON_GetStringValue(id), envelope_error(st));
	char topic[256];
	char *json = envelope_json(st);
	if (json && envelope_topic(st, topic, sizeof(topic)) == 0)
		bus_publish(gw->bus, topic, json, strlen(json));
	free(json);
	envelope_destroy(st);
}

/*
 * Take a token from the channel's bucket (burst: one second's worth).
 * Returns 0, or how many ms until a token is there.
 */
static int64_t rate_wait_ms(parley_instance *ch)
{
	if (ch->rate <= 0)
		return 0;
	int64_t now = time_mono_ms();
	double burst = ch->rate > 1 ? ch->rate : 1;
	if (ch->tokens_at_ms)
		ch->tokens += (double)(now - ch->tokens_at_ms) * ch->rate / 1000.0;
	if (ch->tokens > burst)
		ch->tokens = burst;
	ch->tokens_at_ms = now;
	/*
	 * Half a token is enough, the rest a debt the next refill pays: a
	 * message given a slot 1/rate after the last send finds just under one
	 * token there (clock granularity), and must go then, not to the end of
	 * the line.  The long-run rate is the same.
	 */
	if (ch->tokens >= 0.5) {
		ch->tokens -= 1;
		return 0;
	}
	return (int64_t)((0.5 - ch->tokens) * 1000.0 / ch->rate) + 1;
}

/* Send one claimed message; the wall-clock time it was deferred to when over the rate limit, else 0. */
static int64_t send_with(struct outbox *o, cJSON *msg, const struct topology *topo)
{
	struct gateway *gw = o->gw;
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "id"));
	const char *chname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "channel"));
	int attempts = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(msg, "attempts"));
	if (!id)
		return 0;
	parley_instance *ch = chname ? topology_channel(topo, chname) : NULL;
	if (!ch || !ch->plugin->desc->channel_send) {
		char *err = str_printf("channel '%s' is not configured or cannot send", chname ? chname : "");
		store_outbox_update(gw->st, id, "failed", NULL, err, 0);
		publish_status(gw, msg, "failed", NULL, err);
		free(err);
		return 0;
	}
	int64_t wait = rate_wait_ms(ch);
	if (wait <= 0 && ch->rate > 0) {
		/*
		 * The limit is the channel's, not this node's: every send also takes
		 * the channel's slot in the store, a lease of 1/rate that no other
		 * node's send can take until it lapses.
		 */
		char holder[32], *key = str_printf("rate/%s", ch->name);
		ulid_new(holder);
		int lr = key ? store_lease(gw->st, key, holder, (int64_t)(1000.0 / ch->rate)) : PARLEY_ENOMEM;
		free(key);
		int64_t interval = (int64_t)(1000.0 / ch->rate);
		if (lr != 0) {
			/*
			 * Another send holds the channel's slot for a moment more: try
			 * again soon, keeping the token and this message's place (the
			 * end of the line would starve a backlog).
			 */
			ch->tokens += 1;
			int64_t now = time_now_ms();
			int64_t at = ch->lease_until_ms > now ? ch->lease_until_ms + 1 : now + interval / 4 + 1;
			store_outbox_update(gw->st, id, "queued", NULL, NULL, at);
			return at;
		}
		ch->lease_until_ms = time_now_ms() + interval;
		if (ch->slot_ms < time_now_ms() + interval) {
			/* Messages deferred from now on get slots after this send's lease lapses, not before it. */
			ch->slot_ms = time_now_ms() + interval;
		}
	}
	if (wait > 0) {
		/*
		 * Over the channel's rate_limit: back in the queue (not an attempt)
		 * until a slot of its own, one per 1/rate after the last one given
		 * out, so a backlog is written back once, not once per poll.
		 */
		int64_t at = time_now_ms() + wait;
		if (ch->slot_ms > at)
			at = ch->slot_ms;
		ch->slot_ms = at + (int64_t)(1000.0 / ch->rate);
		store_outbox_update(gw->st, id, "queued", NULL, NULL, at);
		metrics_add(gw->metrics, "outbound_rate_limited_total", "channel", ch->name, 1);
		return at;
	}
	/* A broadcast's message goes out at most once: its recipient moves to sending first (broadcast.h). */
	char *why = NULL;
	enum broadcast_go go = broadcast_send_begin(gw, msg, &why);
	if (go != BROADCAST_SEND) {
		if (go == BROADCAST_LATER)
			store_outbox_update(gw->st, id, "queued", NULL, NULL, time_now_ms() + 1000);
		else
			store_outbox_update(gw->st, id, go == BROADCAST_DROPPED ? "dropped" : "failed", NULL, why, 0);
		if (go == BROADCAST_FAILED)
			publish_status(gw, msg, "failed", NULL, why);
		free(why);
		return 0;
	}
	/* Queued inside the customer-service window, due after it (retries, a backlog): the provider would refuse. */
	char *closed = NULL;
	const char *tag = cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(msg, "meta"), "tag"));
	if (window_closed(gw, ch, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "to")),
	                  cJSON_GetObjectItemCaseSensitive(msg, "template"), tag, &closed) > 0) {
		log_msg(PARLEY_LOG_WARN, ch->what, "send of %s not attempted: %s", id, closed);
		store_outbox_update(gw->st, id, "failed", NULL, closed, 0);
		broadcast_send_end(gw, msg, "failed", closed);
		publish_status(gw, msg, "failed", NULL, closed);
		free(closed);
		return 0;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(msg, "attempts");
	parley_envelope env = {.obj = msg};
	struct parley_send_result res;
	memset(&res, 0, sizeof(res));
	res.struct_size = sizeof(res);
	res.outcome = PARLEY_SEND_RETRY;
	pthread_mutex_lock(&ch->send_lock);
	ch->plugin->desc->channel_send(ch->data, &env, &res);
	pthread_mutex_unlock(&ch->send_lock);
	res.provider_id[sizeof(res.provider_id) - 1] = '\0';
	res.error_code[sizeof(res.error_code) - 1] = '\0';
	res.error_text[sizeof(res.error_text) - 1] = '\0';
	attempts++;
	char *err = NULL;
	if (res.error_code[0] || res.error_text[0])
		err = str_printf("%s%s%s", res.error_code, res.error_code[0] && res.error_text[0] ? ": " : "",
		                 res.error_text);
	if (res.outcome == PARLEY_SEND_OK) {
		store_outbox_update(gw->st, id, "sent", res.provider_id[0] ? res.provider_id : NULL, NULL, 0);
		broadcast_send_end(gw, msg, "sent", NULL);
		metrics_add(gw->metrics, "outbound_sent_total", "channel", ch->name, 1);
		/* Accepted by the provider: a response (a dead-lettered send never is one, nor a survey asking, nor a
		 * broadcast). */
		const char *conv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "conversation_id"));
		const cJSON *meta = cJSON_GetObjectItemCaseSensitive(msg, "meta");
		if (cJSON_GetObjectItemCaseSensitive(meta, "survey") || broadcast_automatic(msg))
			conv = NULL; /* a survey asked, a broadcast or an opt-out confirmation is no response */
		const cJSON *by = cJSON_GetObjectItemCaseSensitive(meta, "sent_by");
		const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(by, "kind"));
		const char *agent = kind && strcmp(kind, "agent") == 0
		                            ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(by, "name"))
		                            : NULL;
		if (conv && inbox_sent(gw->inbox, conv, clock_now_ms(), agent) != 0)
			log_msg(PARLEY_LOG_WARN, ch->what, "could not record the first response of conversation %s",
			        conv);
		publish_status(gw, msg, "sent", res.provider_id[0] ? res.provider_id : NULL, NULL);
	} else if (res.outcome == PARLEY_SEND_RETRY && attempts < gw->cfg.outbox_max_attempts) {
		int64_t delay = res.retry_after_ms > 0 ? res.retry_after_ms
		                                       : outbox_backoff_ms(attempts, gw->cfg.outbox_backoff_base_ms,
		                                                           gw->cfg.outbox_backoff_max_ms);
		log_msg(PARLEY_LOG_WARN, ch->what, "send of %s failed (attempt %d of %d): %s; retrying in %lld ms", id,
		        attempts, gw->cfg.outbox_max_attempts, err ? err : "transient error", (long long)delay);
		store_outbox_update(gw->st, id, "retry", NULL, err, time_now_ms() + delay);
		broadcast_send_end(gw, msg, "queued", NULL);
		metrics_add(gw->metrics, "outbound_retries_total", "channel", ch->name, 1);
	} else {
		if (res.outcome == PARLEY_SEND_RETRY) {
			char *e2 =
			        str_printf("gave up after %d attempts: %s", attempts, err ? err : "transient errors");
			free(err);
			err = e2;
		}
		log_msg(PARLEY_LOG_ERROR, ch->what, "send of %s dead-lettered: %s", id, err ? err : "permanent error");
		store_outbox_update(gw->st, id, "failed", NULL, err ? err : "permanent error", 0);
		broadcast_send_end(gw, msg, "failed", err ? err : "permanent error");
		metrics_add(gw->metrics, "outbound_failed_total", "channel", ch->name, 1);
		publish_status(gw, msg, "failed", NULL, err ? err : "permanent error");
	}
	free(err);
	return 0;
}

static void *outbox_main(void *arg)
{
	struct outbox *o = arg;
	struct gateway *gw = o->gw;
	pthread_mutex_lock(&o->lock);
	while (!o->stop) {
		o->wake = 0;
		pthread_mutex_unlock(&o->lock);
		char *json = NULL;
		int sent = 0;
		if (store_outbox_claim(gw->st, time_now_ms(), 32, &json) == 0 && json) {
			cJSON *arr = cJSON_Parse(json);
			cJSON *it;
			cJSON_ArrayForEach(it, arr)
			{
				const char *chname =
				        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "channel"));
				/* The channel as the topology has it now, held so that a reload stops it only after the
				 * send. */
				struct topology *topo = topology_get(gw);
				parley_instance *ch = chname ? topology_channel(topo, chname) : NULL;
				int64_t at = send_with(o, it, topo);
				double rate = ch ? ch->rate : 0;
				topology_put(topo);
				sent += !at;
				if (at && rate > 0) {
					int64_t tick = (int64_t)(1000.0 / rate / 2) + 1;
					if (at > o->deferred_until)
						o->deferred_until = at;
					if (!o->tick_ms || tick < o->tick_ms)
						o->tick_ms = tick;
				}
			}
			cJSON_Delete(arr);
		}
		free(json);
		pthread_mutex_lock(&o->lock);
		if (sent > 0 || o->wake || o->stop)
			continue;
		/* A rate-limited backlog comes due slot by slot: look at the pace of its channel, not a poll later. */
		int64_t wait_ms = gw->cfg.outbox_poll_ms;
		if (o->deferred_until >= time_now_ms() && o->tick_ms < wait_ms)
			wait_ms = o->tick_ms;
		else if (o->deferred_until < time_now_ms())
			o->deferred_until = o->tick_ms = 0;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + wait_ms * 1000000L;
		ts.tv_sec += ns / 1000000000L;
		ts.tv_nsec = ns % 1000000000L;
		pthread_cond_timedwait(&o->cv, &o->lock, &ts);
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

int outbox_start(struct outbox **out, struct gateway *gw)
{
	struct outbox *o = calloc(1, sizeof(*o));
	if (!o)
		return PARLEY_ENOMEM;
	o->gw = gw;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cv, NULL);
	if (thread_start(&o->thread, outbox_main, o, "parley:outbox") != 0) {
		free(o);
		return PARLEY_EIO;
	}
	*out = o;
	return 0;
}

void outbox_wake(struct outbox *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	o->wake = 1;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->lock);
}

void outbox_stop(struct outbox *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	o->stop = 1;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->lock);
	pthread_join(o->thread, NULL);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->cv);
	free(o);
}
