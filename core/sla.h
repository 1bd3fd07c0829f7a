/*
 * sla.h: the SLA clock.  A conversation gets its policy's due times (the
 * first policy of sla: whose match it meets) when it opens or reopens:
 * first_response on opening, resolution on opening and each reopening,
 * next_response whenever the customer writes after an agent's reply.  The
 * clock counts the policy's business hours and pauses while the
 * conversation is pending (waiting on the customer) or snoozed; when it
 * runs again every due time moves by the business time it was paused.
 * A reply meets first_response and next_response, a resolve meets
 * resolution (and stops the response clocks until a reopening).
 *
 * Every change is decided by the conversation core inside its transaction
 * (sla_track), logged in conversation_events (sla.due when a due time is
 * set or moved, sla.met) and persisted per target (conversation_sla).  A
 * sweep (sla_sweep, every 2 s on the node holding the lease "sla")
 * publishes sla.warning at the configured fraction and sla.breached at the
 * due time, once each, recorded with the target so a restart does not
 * repeat them; both are logged too (the API's live events show them).
 *
 * Threads: any; sla_track runs on the caller's transaction.
 */
#ifndef PARLEY_CORE_SLA_H
#define PARLEY_CORE_SLA_H

#include <cjson/cJSON.h>
#include <parley/store.h>

struct sla_config;
struct gateway;

/* What happened to a conversation. */
enum sla_cause {
	SLA_OPENED,         /* a new conversation: first_response and resolution start */
	SLA_REOPENED,       /* resolved, open again: resolution starts again, stopped response clocks run again */
	SLA_CUSTOMER_WROTE, /* on an open conversation: next_response starts when an agent had replied */
	SLA_PAUSED,         /* pending or snoozed: every clock stops */
	SLA_RESUMED,        /* open again after pending or snoozed: due times move by the paused business time */
	SLA_REPLIED,        /* an agent's reply was sent: first_response and next_response are met */
	SLA_RESOLVED,       /* resolution is met; the response clocks stop */
};

/*
 * Apply cause, which happened at now to conversation c (as it is after the
 * change), to its targets in tx.  0, or the store's error (the caller
 * rolls back).  No-op without an sla: config or a 1.4 store.
 */
int sla_track(const struct sla_config *cfg, const struct parley_store_typed_ops *t, parley_store_tx *tx,
              const struct parley_conversation_rec *c, enum sla_cause cause, const char *now);

/* The causes of a status change from `before` to c->status (an op or the snooze wake-up), applied. */
int sla_status_changed(const struct sla_config *cfg, const struct parley_store_typed_ops *t, parley_store_tx *tx,
                       const struct parley_conversation_rec *c, const char *before, const char *now);

/* Publish the warnings and breaches due now (the lease holder only). */
void sla_sweep(struct gateway *gw);

/* sla.list {state: breached|at_risk, team?, limit?}: the reply, malloc'd. */
char *sla_list_reply(struct gateway *gw, const cJSON *req);

#endif
