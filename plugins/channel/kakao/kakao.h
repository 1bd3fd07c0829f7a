/*
 * kakao.h: internal to the kakao channel plugin (not an SDK header).
 *
 * KakaoTalk channel chatbots (Kakao i Open Builder) call a "skill server"
 * and show its HTTP answer to the user: the bot's reply is the response to
 * the user's request, given within Kakao's 5 s, and Kakao offers no way to
 * write to a user outside a request.  So the plugin holds each skill
 * request (a "hold") after submitting its envelope, and answers it with the
 * first reply the outbox sends to that user (from a bot or an agent) when
 * that comes within `answer_within`; otherwise it answers in time with
 * `holding_text`.  A block with Kakao's callback enabled gives a one-time
 * callbackUrl, valid for a minute: then the in-time answer says
 * useCallback and the next reply goes to that URL instead.  A reply that
 * finds neither a held request nor a valid callback is dead-lettered with
 * that reason.
 *
 * Threads: the HTTP handler and submit completions run on host threads,
 * channel_send on the outbox thread, and the instance's deadline thread
 * answers holds whose time is up; k->lock guards the holds and callbacks.
 */
#ifndef PARLEY_KAKAO_H
#define PARLEY_KAKAO_H

#include "provider.h"

#include <pthread.h>
#include <stdint.h>

/* Kakao's own limits (skill response format): outputs per answer, quick replies, characters. */
#define KAKAO_MAX_OUTPUTS     3
#define KAKAO_MAX_QUICK       10
#define KAKAO_QUICK_LABEL_MAX 14
#define KAKAO_TEXT_MAX        1000
/* A callbackUrl may be used once, within a minute of the request. */
#define KAKAO_CALLBACK_TTL_MS 60000
#define KAKAO_USER_MAX        128

/* One skill request waiting for its answer. */
struct kakao_hold {
	struct kakao_hold *next;
	struct kakao *k;
	parley_http_request *req;
	char user[KAKAO_USER_MAX + 8]; /* the sender's URN, kakao:<user id> */
	int64_t deadline_ms;           /* monotonic: answer by then */
	int64_t arrived_ms;            /* monotonic */
	char *callback_url;            /* userRequest.callbackUrl, or NULL */
	int committed;                 /* the envelope is stored */
	int late;                      /* the deadline passed before the commit */
	char *reply;                   /* an answer that came before the commit (malloc'd) */
};

/* A callbackUrl promised to Kakao (the request was answered useCallback), not used yet. */
struct kakao_callback {
	struct kakao_callback *next;
	char user[KAKAO_USER_MAX + 8];
	char *url;
	int64_t expires_ms; /* monotonic */
};

struct kakao {
	const struct parley_host *host;
	parley_instance *inst;
	const char *secret, *secret_header, *bot_id, *holding_text;
	int insecure;
	int64_t answer_within_ms, timeout_ms;
	struct prov_client client; /* the outbox thread's, for callbacks */
	pthread_mutex_t lock;
	pthread_cond_t cv; /* the deadline thread waits on it */
	struct kakao_hold *holds;
	struct kakao_callback *callbacks;
	pthread_t thread;
	int thread_started, stopping;
};

/* Monotonic milliseconds. */
int64_t kakao_now_ms(void);

/* skill.c: POST /webhooks/<channel>, a SkillPayload. */
void kakao_on_skill(void *data, parley_http_request *req);

/* hold.c */
int kakao_holds_start(struct kakao *k);
/* Stop the deadline thread and answer every held request that can be answered (holding text). */
void kakao_holds_stop(struct kakao *k);
/* Add h (owned by the list from now on) and wake the deadline thread. */
void kakao_hold_add(struct kakao *k, struct kakao_hold *h);
/* The submit completion of h's envelope. */
void kakao_hold_committed(void *arg, int result);
/*
 * Give `body` (a SkillResponse, copied) to the oldest held request of
 * user: 1 when one took it (answered now, or at its commit), 0 when none
 * is held.
 */
int kakao_hold_answer(struct kakao *k, const char *user, const char *body);
/* Take the valid callback URL of user (malloc'd; it is used up), or NULL. */
char *kakao_callback_take(struct kakao *k, const char *user);
/* Give back a callback URL whose use failed in a way worth retrying, unless it has expired. */
void kakao_callback_return(struct kakao *k, const char *user, char *url);

/* response.c */
/*
 * The SkillResponse (version 2.0) for an outbound envelope: simpleText and
 * simpleImage outputs, quickReplies from meta.buttons or meta.choices.
 * NULL with why set when Kakao cannot show it (too long, too many buttons).
 */
char *kakao_render(const struct parley_host *h, const parley_envelope *env, char *why, size_t why_len);
/* The answer given when no reply came in time: useCallback with data.text, or a simpleText. */
char *kakao_render_holding(const char *text, int use_callback);

/* send.c */
int kakao_send(void *data, const parley_envelope *env, struct parley_send_result *res);

#endif
