/*
 * line.h: the LINE Messaging API channel type, shared by its parts:
 * line.c (config and lifecycle, the reply tokens kept for replies),
 * inbound.c (webhook events into envelopes) and outbound.c (reply and push
 * messages, content downloads).
 */
#ifndef PARLEY_CHANNEL_LINE_H
#define PARLEY_CHANNEL_LINE_H

#include "fetch_policy.h"
#include "provider.h"
#include "strmap.h"

#include <pthread.h>

struct line {
	const struct parley_host *host;
	parley_instance *inst;
	const char *secret, *bot_user_id, *base, *data_base;
	char *auth; /* "Authorization: Bearer <channel access token>" */
	int64_t timeout_ms, reply_window_ms;
	uint64_t max_media;
	struct prov_client client; /* the outbox thread's */
	struct prov_media *media;
	struct prov_policy policy;
	/*
	 * The newest reply token of each chat (user, group or room id), as
	 * "<ms of the event> <token>".  Webhook threads put, the outbox thread
	 * takes (a token is good for one reply only); under lock.
	 */
	pthread_mutex_t lock;
	struct strmap replies;
};

/* 1 when s is a LINE user, group or room id: U, C or R and 32 lower-case hex digits. */
int line_chat_id(const char *s);

/* Milliseconds since 1970 (the clock LINE's event timestamps are on). */
int64_t line_now_ms(void);

/*
 * Remember token as chat's reply token, of an event at at_ms (its
 * timestamp; the token's minute runs from there): a redelivered event's
 * token is as old as the event.  at_ms 0 or in the future: now.
 */
void line_reply_put(struct line *l, const char *chat, const char *token, int64_t at_ms);
/*
 * Take chat's reply token into out when one came within the reply window:
 * 0, or -1 when there is none (send by push then).  Either way it is gone.
 */
int line_reply_take(struct line *l, const char *chat, char *out, size_t outlen);

/* POST /webhooks/<name>: a webhook request (inbound.c). */
void line_on_post(void *data, parley_http_request *req);

/* channel_send (outbound.c). */
int line_send(void *data, const parley_envelope *env, struct parley_send_result *res);

/* The media worker's fetch: "id:<message id>" from the content API, or "url:<url>" of an external provider. */
int line_fetch(void *arg, struct prov_client *client, const char *spec, struct prov_http *out);

#endif
