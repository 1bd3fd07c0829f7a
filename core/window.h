/*
 * window.h: the customer-service window.  Some channel types let a
 * business write freely only for a while after the customer's last
 * message (WhatsApp and Messenger: 24 hours); outside it only a message
 * the provider approved goes out: a template (WhatsApp) or a message tag
 * (Messenger).  The core knows no provider by name: a channel type
 * declares its window with the config key `reply_window` (a duration; 0
 * or absent: no window), and that it takes message tags instead of
 * templates with the key `tag_window` (how long the HUMAN_AGENT tag may
 * be used).  The customer's last message is the store's
 * (window_last_inbound): the latest inbound message on the channel from
 * the address the send goes to, or from the contact that address belongs to.
 *
 * Threads: any; every function reads the store.
 */
#ifndef PARLEY_CORE_WINDOW_H
#define PARLEY_CORE_WINDOW_H

#include <cjson/cJSON.h>
#include <parley/parley.h>
#include <stdint.h>

struct gateway;

/* What a channel takes outside its window. */
enum window_rule {
	WINDOW_NONE = 0,      /* no window: anything, any time */
	WINDOW_TEMPLATES = 1, /* a template */
	WINDOW_TAGS = 2,      /* a message tag (meta.tag) */
};

/* The channel's rule, its window in *len_ms (0 for WINDOW_NONE) and, for WINDOW_TAGS, the HUMAN_AGENT window. */
enum window_rule window_rule_of(parley_instance *ch, int64_t *len_ms, int64_t *tag_ms);

/* A window's length as people say it before "window": "24-hour", "7-day", "90-minute", "30-second". */
void window_say(int64_t ms, char out[32]);

/* 1 when ch's channel type sends template messages (it declares a window that templates open). */
int window_takes_templates(parley_instance *ch);

/*
 * Whether the window of ch towards `to` is open now: 1 open (or the
 * channel has none), 0 closed (the customer never wrote from `to` or wrote
 * longer ago than the window), or a negative store error.  *last_ms (may be
 * NULL) receives the customer's last message time, 0 when none.
 */
int window_open(struct gateway *gw, parley_instance *ch, const char *to, int64_t *last_ms);

/*
 * Is the window of ch towards `to` closed to this send (template and tag
 * are the send's, may be NULL)?  0 when it may go; 1 when not, with *why
 * (malloc'd) naming the window, when the customer last wrote and what the
 * channel takes instead; or a negative store error.
 */
int window_closed(struct gateway *gw, parley_instance *ch, const char *to, const cJSON *template, const char *tag,
                  char **why);

/*
 * May this send go out on ch now?  NULL when it may; otherwise an ops
 * error reply (code outside_window, malloc'd) naming the window and what
 * the channel takes instead.  template and tag are the send's (may be
 * NULL).  A store without the window op lets everything go (the provider
 * refuses then).
 */
char *window_refusal(struct gateway *gw, parley_instance *ch, const char *to, const cJSON *template, const char *tag);

/*
 * A template object as the envelope's `template` field takes it
 * (sdk/envelope-v1.schema.json): NULL when valid, else why (static text
 * naming the member).
 */
const char *window_template_invalid(const cJSON *t);

#endif
