/*
 * broadcast.h: broadcasts, one message to the contacts of a segment, each
 * on their own channel (parley broadcast create|status|cancel).
 *
 * broadcast.create (broadcast_ops.c) selects the contacts and stores the
 * broadcast with one recipient row per contact, in one transaction:
 * pending, or skipped with the reason (opted out, never wrote on a
 * channel, the channel is not configured).  The feeder thread
 * (broadcast.c) moves pending recipients into the outbox at each channel's
 * rate_limit: per recipient it decides text or template by the channel's
 * customer-service window (window.h), or skips it with the reason, and
 * inserts its outbound message in the same store transaction that moves
 * the recipient to queued.  The message's id is derived from (broadcast,
 * contact), the recipient row's key is unique, and only a pending row
 * moves: a (broadcast, contact) reaches the outbox at most once, also
 * across crashes.  Broadcast messages are the outbox's lower priority
 * class, so replies on the same channel go first.
 *
 * The outbox calls broadcast_send_begin() right before the provider call
 * and broadcast_send_end() with its outcome: the recipient goes queued →
 * sending → sent / failed (or back to queued for a retry).  A recipient
 * found in sending when its message is claimed again was being sent when
 * a gateway died: its outcome is unknown and it is not sent again (at most
 * once), recorded as failed with that reason.
 *
 * Opt-outs (broadcast_optout.c): an inbound message that is only a stop
 * word ("STOP", "수신거부", "그만", ...) sets the contact's attributes
 * opt_out: true, opt_out_at and opt_out_channel (a start word sets opt_out:
 * false); the customer gets a confirmation unless the channel type
 * declares that its provider answers stop words itself (config key
 * provider_opt_out true, as Twilio does).  Opted-out contacts are skipped
 * by every later broadcast, and by the pending rows of running ones.
 *
 * Threads: broadcast_start/stop on the main thread; the rest from any.
 */
#ifndef PARLEY_CORE_BROADCAST_H
#define PARLEY_CORE_BROADCAST_H

#include <cjson/cJSON.h>
#include <parley/parley.h>

struct gateway;
struct broadcast;

int broadcast_start(struct broadcast **out, struct gateway *gw);
/* New pending recipients (or a confirmation to send): feed now rather than at the next tick. */
void broadcast_wake(struct broadcast *b);
void broadcast_stop(struct broadcast *b);

/* What the outbox does with a claimed message before its provider call. */
enum broadcast_go {
	BROADCAST_SEND = 0,    /* not a broadcast's, or its recipient is now sending: call the provider */
	BROADCAST_FAILED = 1,  /* do not send: record it failed with *why */
	BROADCAST_DROPPED = 2, /* do not send: the broadcast was cancelled (*why) */
	BROADCAST_LATER = 3,   /* the store did not answer: back in the queue, not an attempt */
};
/*
 * 1 when msg (an outbound envelope) is a broadcast's message or an automatic
 * confirmation (meta.broadcast_id, meta.auto_reply): it records no first
 * response in its conversation.
 */
int broadcast_automatic(const cJSON *msg);
/* msg: the claimed envelope; *why malloc'd for FAILED and DROPPED. */
enum broadcast_go broadcast_send_begin(struct gateway *gw, const cJSON *msg, char **why);
/* The send's outcome: state "sent", "failed" (reason) or "queued" (a retry follows). */
void broadcast_send_end(struct gateway *gw, const cJSON *msg, const char *state, const char *reason);

/* A stored inbound envelope (the pipeline's post thread): opt-out and opt-in words. */
void broadcast_inbound(struct gateway *gw, const parley_envelope *env);

/* Internal to broadcast*.c: a confirmation for the feeder thread to send (copied). */
void broadcast_queue_reply(struct broadcast *b, const char *channel, const char *to, const char *conversation_id,
                           const char *text);

#endif
