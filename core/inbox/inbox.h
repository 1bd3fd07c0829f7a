/*
 * inbox.h: the conversation core.  Every rule about contacts, identities
 * and conversations lives here, once: which contact an address belongs to
 * (and which addresses are provably the same person's), which conversation
 * a message joins, when a resolved conversation reopens or a new one
 * starts, what resolving, reopening, assigning, snoozing and merging do,
 * and when the first response happened.  Stores only persist and query
 * (the typed contract of sdk/include/parley/store.h); the pipeline's
 * `identify` and `thread` steps ask this module for their proposals, and
 * the group commit decides for good inside the store's transaction, so two
 * gateway nodes deciding for one new customer agree.
 *
 * With an ABI 1.0/1.1 store (no typed contract) the store's own commit and
 * ops decide, as before: every function here then passes through.
 *
 * Threads: every function may be called from any thread.
 */
#ifndef PARLEY_CORE_INBOX_H
#define PARLEY_CORE_INBOX_H

#include <cjson/cJSON.h>
#include <parley/parley.h>

struct store;
struct inbox;

/* The rules' parameters (configured on the identify and thread steps). */
struct inbox_rules {
	int64_t reopen_ms; /* a resolved conversation reopens when its contact writes within this; default 7 days */
	int link_phone;    /* tel:+N and whatsapp:N are one person; default on */
};

/*
 * changed(arg) is called after contacts or conversations change other than
 * by the pipeline (the host's epoch, which empties the steps' caches).
 * st is borrowed and outlives the inbox.
 */
struct inbox *inbox_open(struct store *st, const struct inbox_rules *rules, void (*changed)(void *), void *arg);
void inbox_close(struct inbox *ib);

/*
 * The promises the core keeps and the surveys it schedules (promises.h;
 * both may be NULL, both borrowed and outliving the inbox): SLA clocks
 * start, pause and stop, and surveys are scheduled and answered, in the
 * transactions of the changes that cause them (sla.h, survey.h).
 */
struct sla_config;
struct survey_config;
void inbox_set_promises(struct inbox *ib, const struct sla_config *sla, const struct survey_config *surveys);

/*
 * The group commit: store envs[0..n) in one transaction, results[i] 0 or
 * PARLEY_EDUPLICATE (see parley_store_ops.commit), and decide their
 * contacts and conversations in that same transaction.  A proposal of the
 * steps that another node's commit overtook (a contact or conversation
 * made meanwhile for the same address) is replaced in the envelope, so
 * what is published is what is stored.  0 when durable.
 */
int inbox_commit(struct inbox *ib, parley_envelope *const *envs, size_t n, int *results);

/*
 * A control or step op about contacts and conversations (contact.decide,
 * conversation.decide, conversation.resolve/.reopen/.assign/.set/.note,
 * contact.update, contacts.merge/.unmerge, conversations.wake); reads go to
 * the store.  *reply is malloc'd JSON (the object merged into the reply)
 * or, on PARLEY_EINVAL/PARLEY_ENOENT, a message.  The caller frees it.
 */
int inbox_op(struct inbox *ib, const char *op, const char *request_json, char **reply);

/*
 * The outbox sent a message of conversation_id at at_ms: the first
 * response, unless the conversation has one.  agent, when not NULL, is the
 * agent who wrote it: a human reply, logged as `replied` (a bot's or the
 * system's message is not one).  A message dead-lettered is never a
 * response, so this is called for sends the provider accepted.
 */
int inbox_sent(struct inbox *ib, const char *conversation_id, int64_t at_ms, const char *agent);

/*
 * Append one row to the history of conversation_id, of a change the
 * conversation core does not make itself (a bot's claim or handoff: the
 * ownership kept by core/ops_bots.c), in its own transaction with the
 * conversation locked.  data is JSON object text (borrowed).  0, or
 * PARLEY_ENOENT when there is no such conversation.
 */
int inbox_log(struct inbox *ib, const char *conversation_id, const char *type, const char *data);

/* The reopen window (the thread steps' reopen_within), for the KPIs' first-contact resolution. */
int64_t inbox_reopen_ms(const struct inbox *ib);

/* ---- the rules themselves (rules.c), pure functions */

#define INBOX_URN_MAX 640

/*
 * The addresses provably the same person's as `from`, itself first
 * (e-mail lower-cased; with link_phone, whatsapp:N and tel:+N of one
 * number).  Returns how many (1-3), 0 when from is too long to be a key.
 */
size_t inbox_candidates(const struct inbox_rules *r, const char *from, char out[3][INBOX_URN_MAX]);

/* What an inbound message does to its contact's latest conversation. */
enum inbox_choice {
	INBOX_JOIN = 0,   /* it is not resolved: the message joins it */
	INBOX_REOPEN = 1, /* resolved within reopen_ms: it reopens */
	INBOX_OPEN = 2,   /* none, or resolved longer ago: a new conversation starts */
};
enum inbox_choice inbox_choose(const struct inbox_rules *r, const struct parley_conversation_rec *latest,
                               const char *received_at);

#endif
