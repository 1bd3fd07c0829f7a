/*
 * store.h: the typed store contract (ABI 1.2; accounts and sessions since 1.3; SLA, surveys and broadcasts
 * since 1.4).
 *
 * A store persists and queries; it decides nothing.  When a contact is
 * created, which conversation a message joins, when a resolved conversation
 * reopens, what a merge moves, when the first response happened: all of that
 * is decided once, by the gateway's conversation core (core/inbox/), which
 * calls the operations below inside one transaction.  A new store therefore
 * implements storage primitives with the semantics written here, in its own
 * dialect, and the conformance suite (tests/store/) checks them.
 *
 * Transactions.  tx_begin() opens a write transaction; every tx_* operation
 * takes it; tx_commit() makes everything durable at once (0 means durable:
 * the gateway answers webhooks 2xx only after it) and tx_rollback() undoes
 * it.  Either ends the transaction and frees it.  A transaction is used by
 * one thread at a time.  Several transactions may be open at once, from
 * several threads and, on a shared server, from several gateway nodes: the
 * store serializes what must be serialized with the locks documented per
 * operation, so that two nodes deciding about one contact see each other's
 * committed decision.  When a store detects a deadlock or a serialization
 * failure it returns PARLEY_EBUSY and the transaction must be rolled back;
 * the gateway then fails the batch (the provider retries).
 *
 * Batches.  Operations take arrays so that a group commit of hundreds of
 * envelopes costs a few statements, not a few per envelope.  The core sorts
 * keys it locks (contact ids, URNs) so that transactions lock in one order.
 *
 * Strings.  Inputs are borrowed for the call.  Strings in records a
 * transaction returns (struct parley_*_rec filled by the store) are owned by
 * the transaction and stay valid until it ends.  Times are RFC 3339 UTC text
 * with milliseconds ("2026-12-01T12:00:00.000Z"), which sorts as time does.
 * JSON-valued fields (attributes, labels, data) are JSON text.  NULL means
 * absent.
 *
 * A thread holding a transaction calls no other store function until it
 * ends it: no second tx_begin, no classic op (kv_set, outbox_claim, ...), no
 * lease (a store with one writer connection would wait for itself).
 *
 * Reads.  Lists and timelines are read outside transactions through
 * parley_store_ops.query with an op name: messages.list, message.get,
 * conversations.list, conversation.get, contact.get, conversation.route,
 * agents.load, contact.lookup, conversation.current and conversation.of_ref
 * (the last three are on every new sender's path: one statement each), and
 * reports.kpis (the KPIs aggregated over the history).
 * Each op's request and reply are documented field by field by
 * sdk/schemas/store/<op>.json (see sdk/schemas/store/README.md); the e2e
 * suite validates real replies against them.
 *
 * Claims.  A store shared by nodes takes a config key `claim_timeout` (a
 * duration): an outbox claim older than that belongs to a node that died
 * and is claimable again (parley_store_ops.outbox_claim).
 */
#ifndef PARLEY_STORE_H
#define PARLEY_STORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct parley_envelope;

/* An open write transaction; the store's own type. */
typedef struct parley_store_tx parley_store_tx;

/* A contact: one person, whatever their addresses. */
struct parley_contact_rec {
	const char *id;
	const char *name;        /* display name, or NULL */
	const char *attributes;  /* JSON object text; NULL on write keeps "{}" for a new contact */
	const char *merged_into; /* the contact this one was merged into, or NULL */
	const char *created_at;
	const char *updated_at;
};

/* An identity: one address (URN) of a contact, e.g. "whatsapp:15551234567". */
struct parley_identity_rec {
	const char *urn;
	const char *contact_id;
	const char *display_name; /* the name the channel gave with it, or NULL */
	const char *created_at;
};

/* A conversation: one thread of a contact across channels. */
struct parley_conversation_rec {
	const char *id;
	const char *contact_id;
	const char *status; /* open, pending, snoozed, resolved */
	const char *assignee;
	const char *team;
	const char *priority;
	const char *labels; /* JSON array text of strings; NULL on write means "[]" */
	const char *last_channel;
	const char *snoozed_until;
	const char *first_inbound_at;
	const char *last_inbound_at;
	const char *first_response_at;
	const char *resolved_at;
	int64_t resolutions; /* how many times it was resolved */
	const char *created_at;
	const char *updated_at;
};

/* One entry of a conversation's history (opened, reopened, assigned, resolved, updated, ...). */
struct parley_conversation_event_rec {
	const char *conversation_id;
	const char *type;
	const char *data; /* JSON object text */
	const char *at;
};

/* A reversible merge: what moved from one contact into another. */
struct parley_merge_rec {
	const char *id;
	const char *from_id;
	const char *into_id;
	const char *moved; /* JSON object: {identities:[urn], conversations:[id], messages:[id], name, attributes} */
	const char *at;
	const char *undone_at; /* NULL until undone */
};

/*
 * A row visitor for reads that may return many rows.  Return 0 to go on,
 * non-zero to stop (the operation then returns that value).
 */
typedef int (*parley_store_row_cb)(void *arg, const void *row);

/* ---- ABI 1.3 records: accounts, service tokens, sessions (see the ops at the end of the table) */

/*
 * An account: a person who logs in (an agent or an admin).  name is the
 * key; email is unique too (the core stores it lowercased and logs in by
 * it).  password_hash is an encoded KDF string (argon2id): a secret that
 * only the core reads, never shown.
 */
struct parley_account_rec {
	const char *name;
	const char *email;
	const char *role;          /* "agent" or "admin" */
	const char *teams;         /* JSON array text of team names; NULL on write means "[]" */
	const char *password_hash; /* encoded hash, or NULL: the account cannot log in */
	int disabled;              /* 1: cannot log in; its sessions are refused */
	const char *created_at;
	const char *updated_at;
};

/*
 * A service token: what another system sends as Authorization: Bearer.
 * Only the hash of the token is stored (lowercase hex SHA-256 of the
 * whole token text); the token itself is shown once, when created.
 */
struct parley_token_rec {
	const char *id;     /* the public handle: listed, revoked by */
	const char *name;   /* what it is for */
	const char *role;   /* "service" */
	const char *scopes; /* JSON array text of op names; "[]" (or NULL on write): every op but the admin ones */
	const char *hash;
	const char *created_at;
	const char *revoked_at;   /* NULL while valid */
	const char *last_used_at; /* NULL when never used (updated at most once a minute) */
};

/* A login session: the hash of the cookie's token, as for tokens. */
struct parley_session_rec {
	const char *hash;
	const char *account; /* the account's name */
	int64_t created_ms;  /* ms since the epoch */
	int64_t expires_ms;
	int revoked; /* 1 after logout, a password change or the account's removal */
};

/* ---- 1.4 records: SLA targets and surveys */

/*
 * One promise on a conversation: target "first_response",
 * "next_response" or "resolution" of the policy `policy`, due at due_at
 * (business time counted by the core).  While the clock is paused
 * (paused_at set) neither warning nor breach comes; the core moves due_at
 * and warn_at when it runs again.
 */
struct parley_sla_rec {
	const char *conversation_id;
	const char *target;
	const char *policy;
	const char *started_at;
	const char *due_at;
	const char *warn_at;
	const char *paused_at;   /* NULL while running */
	const char *warned_at;   /* NULL until sla.warning was published */
	const char *breached_at; /* NULL until sla.breached was published */
	const char *met_at;      /* NULL until kept (or kept late) */
	const char *team;        /* sla_list only: the conversation's team */
};

/*
 * A survey (CSAT or NPS) asked after a resolve, and its answer: the
 * rating, on the conversation and on the agent who held it when it was
 * sent.  status: scheduled, sent, answered, skipped (why in `reason`).
 */
struct parley_survey_rec {
	const char *conversation_id;
	const char *contact_id;
	const char *survey; /* "csat" (1-5) or "nps" (0-10) */
	const char *channel;
	const char *language;
	const char *status;
	const char *due_at;
	const char *sent_at;
	const char *message_id; /* the outbound message that asked */
	const char *agent;
	const char *team;
	int64_t score; /* -1 until answered */
	const char *comment;
	const char *answered_at;
	const char *reason; /* why skipped */
};

/* ---- 1.4 records: broadcasts (see the ops at the end of the table) */

/*
 * One term of a broadcast's segment: kind "label" (a conversation of the
 * contact carries the label key), "attr" (the contact's attribute key
 * equals value as text, or is present and neither false nor null when
 * value is NULL) or "channel" (the contact wrote on the channel key).
 */
struct parley_segment_term {
	const char *kind;
	const char *key;
	const char *value;
};

/* A broadcast: one message to the contacts of a segment. */
struct parley_broadcast_rec {
	const char *id;
	const char *state; /* running, done, cancelled */
	const char *spec;  /* JSON object text: segment, text, template, tag, channel (as created) */
	const char *created_by;
	const char *created_at;
	const char *updated_at;
};

/*
 * One recipient of a broadcast; (broadcast_id, contact_id) is unique.
 * state: pending (not yet in the outbox), queued (its message is),
 * sending (the outbox has begun the provider call), sent, failed,
 * skipped (never sent: reason says why), cancelled.
 */
struct parley_broadcast_recipient_rec {
	const char *broadcast_id;
	const char *contact_id;
	const char *channel; /* the configured channel it goes out on, or NULL */
	const char *urn;     /* the address there, or NULL */
	const char *state;
	const char *reason;     /* why skipped or failed, or NULL */
	const char *message_id; /* its outbound message once queued */
	const char *updated_at;
	/* Read only. */
	const char *status;          /* the shown status (broadcast_counts) */
	const char *conversation_id; /* broadcast_pending: the contact's latest conversation */
	int opted_out;               /* the contact's attribute opt_out is true */
};

/* One line of broadcast_counts. */
struct parley_broadcast_count {
	const char *status;
	int64_t n;
};

/*
 * The typed operations.  Appended to struct parley_store_ops as field
 * `typed` (ABI 1.2); a store that leaves it NULL is an ABI 1.0/1.1 store,
 * which decides conversations in its own commit as before.
 */
struct parley_store_typed_ops {
	uint32_t struct_size; /* sizeof(struct parley_store_typed_ops) as built */

	/* ---------------------------------------------------- transactions */

	int (*tx_begin)(void *store, parley_store_tx **tx);
	/* 0 when durable; otherwise nothing of the transaction is kept.  Frees tx either way. */
	int (*tx_commit)(parley_store_tx *tx);
	void (*tx_rollback)(parley_store_tx *tx);

	/* -------------------------------------------------------- messages */

	/*
	 * Insert n envelopes as messages.  A message whose (channel,
	 * external_id) is already stored is not inserted: results[i] =
	 * PARLEY_EDUPLICATE and the envelope's "id" is set to the stored
	 * message's id (through the host's envelope_set_str); otherwise
	 * results[i] = 0.  An outbound envelope with status "queued" enters
	 * the outbox, due now.  Waits for a concurrent transaction inserting
	 * the same key, so a duplicate is seen once that one commits.
	 */
	int (*messages_insert)(parley_store_tx *tx, struct parley_envelope *const *envs, size_t n, int *results);

	/*
	 * Move the outbound message of `channel` whose provider id is
	 * provider_id to `status` (sent, delivered, read, failed), with error
	 * (or NULL), only forward in the order queued < sent < delivered <
	 * read < failed.  No such message is not an error (the receipt may
	 * come before the send is recorded; outbox_update applies it then).
	 */
	int (*message_status_advance)(parley_store_tx *tx, const char *channel, const char *provider_id,
	                              const char *status, const char *error);

	/*
	 * Set contact_id (and conversation_id when not NULL) of the messages
	 * ids[0..n), in their rows and in their stored envelopes.
	 */
	int (*messages_set_owner)(parley_store_tx *tx, const char *const *ids, size_t n, const char *contact_id,
	                          const char *conversation_id);

	/* Visit the ids of the messages of a contact (row: const char *id), oldest first. */
	int (*messages_of_contact)(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg);

	/* -------------------------------------------- contacts, identities */

	/* Insert the contacts that do not exist yet (by id); existing ones are left as they are. */
	int (*contacts_insert)(parley_store_tx *tx, const struct parley_contact_rec *c, size_t n);

	/*
	 * Read contacts by id, locking each row until the transaction ends
	 * (SELECT ... FOR UPDATE): found[i] = 1 and out[i] filled, or found[i]
	 * = 0.
	 */
	int (*contacts_lock)(parley_store_tx *tx, const char *const *ids, size_t n, struct parley_contact_rec *out,
	                     int *found);

	/* Write every field of an existing contact. PARLEY_ENOENT when there is none. */
	int (*contact_update)(parley_store_tx *tx, const struct parley_contact_rec *c);

	/*
	 * Claim addresses: an identity whose URN is not stored yet is
	 * inserted as given; one that is keeps its contact, and its
	 * display_name is replaced by a non-NULL different one.  owners[i]
	 * receives the contact id that owns in[i].urn afterwards (the given
	 * one, or the stored one).  Waits for a concurrent transaction
	 * claiming the same URN, so the first commit wins everywhere.  The
	 * contact need not exist yet in this transaction.
	 */
	int (*identities_claim)(parley_store_tx *tx, const struct parley_identity_rec *in, size_t n,
	                        const char **owners);

	/* The contacts owning any of urns: owners[i] or NULL. */
	int (*identities_owner)(parley_store_tx *tx, const char *const *urns, size_t n, const char **owners);

	/* Visit a contact's identities (row: const struct parley_identity_rec *), oldest first. */
	int (*identities_of_contact)(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg);

	/* Give the identities urns[0..n) to contact_id. */
	int (*identities_move)(parley_store_tx *tx, const char *const *urns, size_t n, const char *contact_id);

	/* ---------------------------------------------------- conversations */

	/*
	 * The latest conversation (by created_at, then id) of each contact:
	 * found[i] and out[i].  Call contacts_lock first for contacts another
	 * node may write: the lock is what serializes the decision.
	 */
	int (*conversations_current)(parley_store_tx *tx, const char *const *contact_ids, size_t n,
	                             struct parley_conversation_rec *out, int *found);

	/* One conversation by id, locked until the transaction ends. PARLEY_ENOENT when there is none. */
	int (*conversation_lock)(parley_store_tx *tx, const char *id, struct parley_conversation_rec *out);

	/*
	 * The conversation of the latest message of `channel` whose
	 * external_id or provider_id is ref (a reply naming an earlier
	 * message).  PARLEY_ENOENT when there is none.
	 */
	int (*conversation_of_ref)(parley_store_tx *tx, const char *channel, const char *ref,
	                           struct parley_conversation_rec *out);

	/* Insert or replace whole conversation rows (by id). */
	int (*conversations_put)(parley_store_tx *tx, const struct parley_conversation_rec *c, size_t n);

	/* Visit a contact's conversations (row: const struct parley_conversation_rec *), oldest first. */
	int (*conversations_of_contact)(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg);

	/*
	 * Visit conversations with status "snoozed" and snoozed_until <= now
	 * (row: const struct parley_conversation_rec *), at most max, each
	 * locked; a store shared by nodes skips rows another transaction holds
	 * (SKIP LOCKED), so a wake-up happens once.
	 */
	int (*conversations_due)(parley_store_tx *tx, const char *now, size_t max, parley_store_row_cb cb, void *arg);

	/*
	 * Append history entries, in the order given.  With each the store
	 * records, for the KPIs (docs/kpis.md, the read op reports.kpis): its
	 * time as milliseconds since 1970 (at_ms), its actor (data.by), and the
	 * conversation's assignee, team and last_channel as this transaction
	 * leaves them (after a conversations_put of the same change).
	 */
	int (*conversation_events_append)(parley_store_tx *tx, const struct parley_conversation_event_rec *e, size_t n);

	/* A private note on a conversation. */
	int (*note_insert)(parley_store_tx *tx, const char *id, const char *conversation_id, const char *author,
	                   const char *text, const char *created_at);

	/* ------------------------------------------------------------ merges */

	int (*merge_insert)(parley_store_tx *tx, const struct parley_merge_rec *m);
	/* PARLEY_ENOENT when there is none; locked until the transaction ends. */
	int (*merge_lock)(parley_store_tx *tx, const char *id, struct parley_merge_rec *out);
	int (*merge_set_undone)(parley_store_tx *tx, const char *id, const char *undone_at);

	/* ------------------------------------------------- reads, no transaction */

	/*
	 * Visit stored envelopes with seq > after_seq in seq order, at most
	 * max (row: const struct parley_stored_envelope *).  For relays that
	 * must not miss anything (the bus plugins).
	 */
	int (*messages_since)(void *store, int64_t after_seq, size_t max, parley_store_row_cb cb, void *arg);

	/*
	 * Leases: a named lock with a holder and an expiry, for work one node
	 * does at a time (polling a mailbox).  Granted (0) when free, expired
	 * or already the holder's, then held until now_ms + ttl_ms;
	 * PARLEY_EBUSY when another holder has it.  *holder_out (may be NULL)
	 * receives the current holder, malloc'd.
	 */
	int (*lease_acquire)(void *store, const char *name, const char *holder, int64_t now_ms, int64_t ttl_ms,
	                     char **holder_out);
	int (*lease_release)(void *store, const char *name, const char *holder);

	/*
	 * Add delta to the counter `name` (created at 0) and give its new value
	 * in *value, atomically for every node sharing the store: for
	 * positions several nodes advance together (a round robin).
	 */
	int (*counter_add)(void *store, const char *name, int64_t delta, int64_t *value);

	/* ---- ABI 1.3: accounts, service tokens, sessions */

	/*
	 * Who may log in, and the proof of it.  The store keeps; the core
	 * (core/auth.c) decides: it hashes passwords, makes and hashes tokens,
	 * counts failed logins and decides lockouts.  None of these takes a
	 * transaction; each is atomic on its own and, on a store shared by
	 * nodes, sees every other node's committed writes (no cache in the
	 * store).  A store built before ABI 1.3 has a struct_size that ends
	 * before account_insert (the block is found by struct_size alone; the
	 * plugin ABI minor is unchanged): the core then answers "this store
	 * does not keep accounts".  Visitors get the one row (const struct
	 * parley_*_rec *), valid during the call; a visitor copies what it
	 * keeps and calls no store function (the store may hold a lock), and
	 * its non-zero return is returned.  PARLEY_ENOENT when there is no
	 * such row.
	 */

	/* A new account; PARLEY_EEXIST when its name or its email is taken. */
	int (*account_insert)(void *store, const struct parley_account_rec *a);
	/* Replace every field but name and created_at of the account a->name; PARLEY_EEXIST when the email is taken. */
	int (*account_update)(void *store, const struct parley_account_rec *a);
	/* The account of that name. */
	int (*account_get)(void *store, const char *name, parley_store_row_cb cb, void *arg);
	/* The account of that email (compared as stored: the core lowercases). */
	int (*account_find_email)(void *store, const char *email, parley_store_row_cb cb, void *arg);
	/* Every account, by name. */
	int (*accounts_list)(void *store, parley_store_row_cb cb, void *arg);
	/* Remove an account (its sessions stay until sessions_revoke_account or their expiry). */
	int (*account_delete)(void *store, const char *name);

	/* A new service token; PARLEY_EEXIST when its id or hash is taken. */
	int (*token_insert)(void *store, const struct parley_token_rec *t);
	/* The token whose hash is hash, revoked or not. */
	int (*token_find)(void *store, const char *hash, parley_store_row_cb cb, void *arg);
	/* Every token, oldest first. */
	int (*tokens_list)(void *store, parley_store_row_cb cb, void *arg);
	/* Revoke the token id at revoked_at; a revoked one keeps its first revoked_at (and 0 is returned). */
	int (*token_revoke)(void *store, const char *id, const char *revoked_at);
	/* Set last_used_at. */
	int (*token_touch)(void *store, const char *id, const char *used_at);

	/* A new session; PARLEY_EEXIST when its hash is taken. */
	int (*session_insert)(void *store, const struct parley_session_rec *s);
	/* The session whose hash is hash, revoked or expired or not. */
	int (*session_find)(void *store, const char *hash, parley_store_row_cb cb, void *arg);
	/* Revoke one session. */
	int (*session_revoke)(void *store, const char *hash);
	/* Revoke every session of an account; *n (may be NULL) receives how many were live. */
	int (*sessions_revoke_account)(void *store, const char *account, int64_t *n);
	/* Delete sessions with expires_ms <= now_ms; *n (may be NULL) receives how many. */
	int (*sessions_delete_expired)(void *store, int64_t now_ms, int64_t *n);

	/*
	 * Failed logins, counted under a key the core makes ("account:EMAIL",
	 * "address:IP"), atomically for every node: the count goes up by one
	 * and last_ms becomes now_ms, except that a count whose last failure
	 * is older than now_ms - forget_ms starts again at 1.  *count receives
	 * the new count.
	 */
	int (*login_failure_add)(void *store, const char *key, int64_t now_ms, int64_t forget_ms, int64_t *count);
	/* The count and last failure time of key: both 0 when there is none (not PARLEY_ENOENT). */
	int (*login_failure_get)(void *store, const char *key, int64_t *count, int64_t *last_ms);
	/* Forget the failures of key (after a successful login). */
	int (*login_failure_clear)(void *store, const char *key);
	/* Forget every key whose last failure is before before_ms. */
	int (*login_failures_forget)(void *store, int64_t before_ms);

	/* ---- 1.4: SLA and surveys */

	/*
	 * The promises kept on a conversation and the surveys asked after it,
	 * decided by the core (core/sla.c, core/survey.c) inside the
	 * conversation core's transactions.  A store built before these slots
	 * has a struct_size that ends before sla_put: the core then keeps no
	 * SLA and asks no survey (and says so at start).  Visitors follow the
	 * rules of the 1.3 block; rows visited inside a transaction are owned
	 * by it.
	 */

	/* Insert or replace SLA targets, by (conversation_id, target). */
	int (*sla_put)(parley_store_tx *tx, const struct parley_sla_rec *s, size_t n);
	/* Visit a conversation's targets (row: const struct parley_sla_rec *), by target. */
	int (*sla_of_conversation)(parley_store_tx *tx, const char *conversation_id, parley_store_row_cb cb, void *arg);
	/*
	 * Visit, at most max, locked (a store shared by nodes skips rows
	 * another transaction holds), the running targets (met_at and
	 * paused_at NULL) that are due a warning (warned_at NULL, warn_at <=
	 * now) or a breach (breached_at NULL, due_at <= now).
	 */
	int (*sla_due)(parley_store_tx *tx, const char *now, size_t max, parley_store_row_cb cb, void *arg);
	/*
	 * Visit targets not met (met_at NULL) by state: "breached"
	 * (breached_at set) or "at_risk" (warned_at set, breached_at NULL),
	 * of conversations not resolved, of one team when team is not NULL,
	 * at most max, the earliest due first (row: const struct parley_sla_rec *,
	 * with team filled from the conversation).
	 */
	int (*sla_list)(void *store, const char *state, const char *team, size_t max, parley_store_row_cb cb,
	                void *arg);

	/* A new survey; PARLEY_EEXIST when the conversation has one (one survey per conversation). */
	int (*survey_insert)(parley_store_tx *tx, const struct parley_survey_rec *s);
	/* Replace every field of the conversation's survey. PARLEY_ENOENT when there is none. */
	int (*survey_update)(parley_store_tx *tx, const struct parley_survey_rec *s);
	/* The conversation's survey, locked until the transaction ends. PARLEY_ENOENT when there is none. */
	int (*survey_lock)(parley_store_tx *tx, const char *conversation_id, struct parley_survey_rec *out);
	/* Visit surveys with status "scheduled" and due_at <= now, the earliest first, at most max (no lock). */
	int (*surveys_due)(void *store, const char *now, size_t max, parley_store_row_cb cb, void *arg);
	/*
	 * Visit answered surveys (the ratings), newest first, at most max: of
	 * one conversation, or one agent, when given (row: const struct
	 * parley_survey_rec *).
	 */
	int (*ratings_list)(void *store, const char *conversation_id, const char *agent, size_t max,
	                    parley_store_row_cb cb, void *arg);

	/* ---- 1.4: broadcasts */

	/*
	 * The customer-service window and broadcasts (core/window.c,
	 * core/broadcast*.c decide; the store keeps and selects).  A store
	 * whose struct_size ends before window_last_inbound keeps no
	 * broadcasts: the core then answers "this store does not keep
	 * broadcasts" and sends without the window check.  None of these but
	 * broadcast_recipients_set takes a transaction; each is atomic on its
	 * own.  Visitors get one row at a time, valid during the call; a
	 * visitor calls no store function, and its non-zero return is
	 * returned.
	 */

	/*
	 * When the customer wrote last on `channel`: of the latest inbound
	 * message (kind message) of that channel from the address urn or from
	 * the contact owning urn (an identity), the earlier of its sent_at and
	 * received_at, in *at (RFC 3339, malloc'd).  PARLEY_ENOENT when the
	 * customer never wrote there.
	 */
	int (*window_last_inbound)(void *store, const char *channel, const char *urn, char **at);

	/*
	 * The contacts (not merged away) matching every term of the segment
	 * (n 0: every contact), each visited once (row: const struct
	 * parley_broadcast_recipient_rec *, with contact_id, opted_out, and
	 * channel/urn: the channel and address of the contact's latest inbound
	 * message, on `channel` only when it is not NULL; both NULL when
	 * there is none).
	 */
	int (*broadcast_candidates)(void *store, const struct parley_segment_term *terms, size_t n, const char *channel,
	                            parley_store_row_cb cb, void *arg);

	/* A new broadcast with its recipients, in one transaction; PARLEY_EEXIST when its id is taken. */
	int (*broadcast_insert)(void *store, const struct parley_broadcast_rec *b,
	                        const struct parley_broadcast_recipient_rec *r, size_t n);

	/* The broadcast of that id (row: const struct parley_broadcast_rec *); PARLEY_ENOENT when none. */
	int (*broadcast_get)(void *store, const char *id, parley_store_row_cb cb, void *arg);

	/* The broadcasts in state (every one when NULL), oldest first (row: const struct parley_broadcast_rec *). */
	int (*broadcasts_list)(void *store, const char *state, parley_store_row_cb cb, void *arg);

	/*
	 * How many recipients of a broadcast are in each shown status (row:
	 * const struct parley_broadcast_count *): queued (pending, queued or
	 * sending), sent, delivered, read (the message's receipts), failed
	 * (the recipient's send, or a failed receipt), skipped, cancelled.
	 */
	int (*broadcast_counts)(void *store, const char *id, parley_store_row_cb cb, void *arg);

	/*
	 * A page of a broadcast's recipients by contact id after after_contact
	 * (NULL: from the first), at most max (row: const struct
	 * parley_broadcast_recipient_rec *, status the shown status as in
	 * broadcast_counts).
	 */
	int (*broadcast_recipients)(void *store, const char *id, const char *after_contact, size_t max,
	                            parley_store_row_cb cb, void *arg);

	/*
	 * At most max recipients of a broadcast still pending on channel, by
	 * contact id (row: const struct parley_broadcast_recipient_rec *, with
	 * opted_out as the contact is now and conversation_id the contact's
	 * latest conversation or NULL).
	 */
	int (*broadcast_pending)(void *store, const char *id, const char *channel, size_t max, parley_store_row_cb cb,
	                         void *arg);

	/*
	 * In the caller's transaction (with the messages_insert of their
	 * messages): move recipients (broadcast_id, contact_id) that are still
	 * pending to r[i].state with reason and message_id.  A recipient with
	 * a message_id makes that message broadcast traffic: the outbox claims
	 * it after every other due message.  *moved (may be NULL) receives
	 * how many were still pending.
	 */
	int (*broadcast_recipients_set)(parley_store_tx *tx, const struct parley_broadcast_recipient_rec *r, size_t n,
	                                int64_t *moved);

	/*
	 * Move the recipient whose message is message_id from state `from` to
	 * `to` (with reason, or NULL): PARLEY_ENOENT when there is no
	 * recipient with that message in state `from` (the outbox's guard: a
	 * send begun before a crash is not begun again).
	 */
	int (*broadcast_recipient_advance)(void *store, const char *message_id, const char *from, const char *to,
	                                   const char *reason);

	/*
	 * Set a broadcast's state (running, done, cancelled) at `at`.  To
	 * cancelled, its recipients pending or queued become cancelled too;
	 * *n (may be NULL) receives how many.  PARLEY_ENOENT when none.
	 */
	int (*broadcast_set_state)(void *store, const char *id, const char *state, const char *at, int64_t *n);
};

/* A stored envelope as messages_since visits it. */
struct parley_stored_envelope {
	int64_t seq;
	const char *id;
	const char *envelope; /* JSON object text, with its current status */
};

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_STORE_H */
