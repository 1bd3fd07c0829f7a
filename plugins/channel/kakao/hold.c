/*
 * hold.c: skill requests held until their answer, and the callback URLs
 * promised to Kakao.
 *
 * A hold is answered exactly once, by whoever unlinks it from k->holds
 * under the lock: the reply (kakao_hold_answer), the deadline thread
 * (holding text), the commit's failure (503), or the instance's stop.  Its
 * answer is only ever a 2xx after the commit of its envelope: a reply
 * that comes first waits in the hold until the completion.
 */
#include "kakao.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void hold_free(struct kakao_hold *h)
{
	free(h->callback_url);
	free(h->reply);
	free(h);
}

static void unlink_hold_locked(struct kakao *k, struct kakao_hold *h)
{
	for (struct kakao_hold **p = &k->holds; *p; p = &(*p)->next)
		if (*p == h) {
			*p = h->next;
			return;
		}
}

static void respond_json(struct kakao *k, parley_http_request *req, const char *body)
{
	k->host->http_respond(req, 200, "application/json; charset=utf-8", body, strlen(body));
}

/*
 * Keep h's callback URL for the next reply to its user (h is being
 * unlinked to be answered with the holding text, k->lock held): 1 when
 * there is one, and the answer is then useCallback.  Under the same lock as
 * the unlinking, so a reply never finds neither the hold nor the callback.
 */
static int keep_callback_locked(struct kakao *k, struct kakao_hold *h)
{
	struct kakao_callback *c = h->callback_url && !k->stopping ? calloc(1, sizeof(*c)) : NULL;
	if (!c)
		return 0;
	snprintf(c->user, sizeof(c->user), "%s", h->user);
	c->url = h->callback_url;
	h->callback_url = NULL;
	c->expires_ms = h->arrived_ms + KAKAO_CALLBACK_TTL_MS;
	c->next = k->callbacks;
	k->callbacks = c;
	return 1;
}

/* Answer h, unlinked, with the holding text: useCallback when its callback URL was kept. */
static void answer_holding(struct kakao *k, struct kakao_hold *h, int use_callback)
{
	char *body = kakao_render_holding(k->holding_text, use_callback);
	k->host->metric_add(k->inst, use_callback ? "kakao_answered_callback_total" : "kakao_answered_holding_total",
	                    1);
	if (body)
		respond_json(k, h->req, body);
	else
		prov_respond_error(k->host, h->req, 500, "out of memory");
	free(body);
	hold_free(h);
}

static void answer_reply(struct kakao *k, struct kakao_hold *h)
{
	k->host->metric_add(k->inst, "kakao_answered_reply_total", 1);
	respond_json(k, h->req, h->reply);
	hold_free(h);
}

void kakao_hold_add(struct kakao *k, struct kakao_hold *h)
{
	pthread_mutex_lock(&k->lock);
	struct kakao_hold **p = &k->holds;
	while (*p)
		p = &(*p)->next; /* oldest first: the first reply answers the first request */
	h->next = NULL;
	*p = h;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->lock);
}

void kakao_hold_committed(void *arg, int result)
{
	struct kakao_hold *h = arg;
	struct kakao *k = h->k;
	pthread_mutex_lock(&k->lock);
	int answer = result != 0 || h->reply || h->late || k->stopping, cb = 0;
	if (answer)
		unlink_hold_locked(k, h);
	else
		h->committed = 1;
	if (answer && result == 0 && !h->reply)
		cb = keep_callback_locked(k, h);
	pthread_mutex_unlock(&k->lock);
	if (!answer)
		return;
	if (result != 0) {
		char msg[160];
		snprintf(msg, sizeof(msg), "not stored (%s)%s", k->host->strerror(result),
		         result == PARLEY_EINVAL || result == PARLEY_ETOOBIG ? "" : ": the user may say it again");
		prov_respond_error(k->host, h->req, result == PARLEY_EINVAL || result == PARLEY_ETOOBIG ? 400 : 503,
		                   msg);
		hold_free(h);
	} else if (h->reply) {
		answer_reply(k, h);
	} else {
		answer_holding(k, h, cb);
	}
}

int kakao_hold_answer(struct kakao *k, const char *user, const char *body)
{
	pthread_mutex_lock(&k->lock);
	struct kakao_hold *h = k->holds;
	while (h && (strcmp(h->user, user) != 0 || h->reply))
		h = h->next;
	if (!h) {
		pthread_mutex_unlock(&k->lock);
		return 0;
	}
	char *copy = strdup(body);
	if (!copy) {
		pthread_mutex_unlock(&k->lock);
		return 0;
	}
	h->reply = copy;
	int now = h->committed;
	if (now)
		unlink_hold_locked(k, h);
	pthread_mutex_unlock(&k->lock);
	if (now)
		answer_reply(k, h);
	return 1;
}

char *kakao_callback_take(struct kakao *k, const char *user)
{
	int64_t now = kakao_now_ms();
	char *url = NULL;
	pthread_mutex_lock(&k->lock);
	for (struct kakao_callback **p = &k->callbacks; *p;) {
		struct kakao_callback *c = *p;
		int expired = c->expires_ms <= now;
		if (expired || (!url && strcmp(c->user, user) == 0)) {
			*p = c->next;
			if (!expired)
				url = c->url;
			else
				free(c->url);
			free(c);
			continue;
		}
		p = &c->next;
	}
	pthread_mutex_unlock(&k->lock);
	return url;
}

void kakao_callback_return(struct kakao *k, const char *user, char *url)
{
	/* The expiry is not known any more: a retry within the minute is all Kakao allows, so give it a short one. */
	struct kakao_callback *c = calloc(1, sizeof(*c));
	if (!c) {
		free(url);
		return;
	}
	snprintf(c->user, sizeof(c->user), "%s", user);
	c->url = url;
	c->expires_ms = kakao_now_ms() + KAKAO_CALLBACK_TTL_MS / 2;
	pthread_mutex_lock(&k->lock);
	c->next = k->callbacks;
	k->callbacks = c;
	pthread_mutex_unlock(&k->lock);
}

/* The deadline thread: answers committed holds whose time is up, marks uncommitted ones late. */
static void *deadline_main(void *arg)
{
	struct kakao *k = arg;
	pthread_mutex_lock(&k->lock);
	while (!k->stopping) {
		int64_t now = kakao_now_ms(), next = now + 1000;
		struct kakao_hold *due = NULL;
		for (struct kakao_hold *h = k->holds; h; h = h->next) {
			if (h->deadline_ms <= now && !h->late) {
				if (h->committed && !h->reply) {
					due = h;
					break;
				}
				h->late = 1; /* its completion answers it */
			} else if (!h->late && h->deadline_ms < next) {
				next = h->deadline_ms;
			}
		}
		if (due) {
			unlink_hold_locked(k, due);
			int cb = keep_callback_locked(k, due);
			pthread_mutex_unlock(&k->lock);
			answer_holding(k, due, cb);
			pthread_mutex_lock(&k->lock);
			continue;
		}
		struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
		pthread_cond_timedwait(&k->cv, &k->lock, &ts);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

int kakao_holds_start(struct kakao *k)
{
	if (pthread_create(&k->thread, NULL, deadline_main, k) != 0)
		return PARLEY_ENOMEM;
	k->thread_started = 1;
	return 0;
}

void kakao_holds_stop(struct kakao *k)
{
	pthread_mutex_lock(&k->lock);
	k->stopping = 1;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->lock);
	if (k->thread_started)
		pthread_join(k->thread, NULL);
	k->thread_started = 0;
	/* Committed holds get their answer now; the others get it from their completion. */
	for (;;) {
		pthread_mutex_lock(&k->lock);
		struct kakao_hold *h = k->holds;
		while (h && !h->committed)
			h = h->next;
		if (h)
			unlink_hold_locked(k, h);
		pthread_mutex_unlock(&k->lock);
		if (!h)
			break;
		if (h->reply)
			answer_reply(k, h);
		else
			answer_holding(k, h, 0);
	}
	while (k->callbacks) {
		struct kakao_callback *c = k->callbacks;
		k->callbacks = c->next;
		free(c->url);
		free(c);
	}
}
