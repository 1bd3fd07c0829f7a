/*
 * typed.h: what the files of the SQLite store's typed contract share: the
 * transaction (a writer lock and an arena), prepared statements, and the
 * operations each file implements for the table in typed.c.  Internal to
 * this plugin.
 */
#ifndef PARLEY_STORE_SQLITE_TYPED_H
#define PARLEY_STORE_SQLITE_TYPED_H

#include "store.h"

struct chunk {
	struct chunk *next;
	size_t used, cap;
	char data[];
};

struct parley_store_tx {
	struct store *s;
	struct chunk *arena;
	/* The conversations as this transaction read or wrote them (typed_conversations.c), by id. */
	struct parley_conversation_rec *seen;
	size_t n_seen, cap_seen;
};

/* A copy of v that lives until the transaction ends; NULL for NULL (or out of memory). */
const char *ty_keep(parley_store_tx *tx, const char *v);
/* Free the transaction and its arena. */
void ty_tx_free(parley_store_tx *tx);
/* The statement for sql (static text) on the writer, prepared once; NULL after logging on failure. */
sqlite3_stmt *ty_prep(struct store *s, const char *sql);
/* Log a failed step: PARLEY_EBUSY for a lock, PARLEY_EEXIST for a constraint, else PARLEY_EIO. */
int ty_step_error(struct store *s, int rc);
/* Reset a cached statement and clear its bindings. */
void ty_done(sqlite3_stmt *st);
/* Step a statement that returns no rows, then ty_done(); 0 or the error. */
int ty_exec_done(struct store *s, sqlite3_stmt *st);
/* Column i as text kept in the transaction's arena, or NULL. */
const char *ty_col(parley_store_tx *tx, sqlite3_stmt *st, int i);
/* A JSON array text of n strings, malloc'd (for json_each parameters). */
char *ty_json_strings(const char *const *v, size_t n);
/* Visit collected rows; the visitor's non-zero return stops and is returned. */
int ty_visit(const void *rows, size_t size, size_t n, parley_store_row_cb cb, void *arg);
/* Grow a row array by one zeroed row; NULL when out of memory. */
void *ty_grow(void **rows, size_t size, size_t *n, size_t *cap);

/* The operations, one file per part of the contract (typed_*.c); typed.c holds the table. */
int ty_messages_insert(parley_store_tx *tx, struct parley_envelope *const *envs, size_t n, int *results);
int ty_message_status_advance(parley_store_tx *tx, const char *channel, const char *provider_id, const char *status,
                              const char *error);
int ty_messages_set_owner(parley_store_tx *tx, const char *const *ids, size_t n, const char *contact_id,
                          const char *conversation_id);
int ty_messages_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg);
int ty_messages_since(void *store, int64_t after_seq, size_t max, parley_store_row_cb cb, void *arg);
int ty_contacts_insert(parley_store_tx *tx, const struct parley_contact_rec *c, size_t n);
int ty_contacts_lock(parley_store_tx *tx, const char *const *ids, size_t n, struct parley_contact_rec *out, int *found);
int ty_contact_update(parley_store_tx *tx, const struct parley_contact_rec *c);
int ty_identities_claim(parley_store_tx *tx, const struct parley_identity_rec *in, size_t n, const char **owners);
int ty_identities_owner(parley_store_tx *tx, const char *const *urns, size_t n, const char **owners);
int ty_identities_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg);
int ty_identities_move(parley_store_tx *tx, const char *const *urns, size_t n, const char *contact_id);
int ty_merge_insert(parley_store_tx *tx, const struct parley_merge_rec *m);
int ty_merge_lock(parley_store_tx *tx, const char *id, struct parley_merge_rec *out);
int ty_merge_set_undone(parley_store_tx *tx, const char *id, const char *undone_at);
int ty_conversations_current(parley_store_tx *tx, const char *const *contact_ids, size_t n,
                             struct parley_conversation_rec *out, int *found);
int ty_conversation_lock(parley_store_tx *tx, const char *id, struct parley_conversation_rec *out);
int ty_conversation_of_ref(parley_store_tx *tx, const char *channel, const char *ref,
                           struct parley_conversation_rec *out);
int ty_conversations_put(parley_store_tx *tx, const struct parley_conversation_rec *c, size_t n);
int ty_conversations_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg);
int ty_conversations_due(parley_store_tx *tx, const char *now, size_t max, parley_store_row_cb cb, void *arg);
int ty_conversation_events_append(parley_store_tx *tx, const struct parley_conversation_event_rec *e, size_t n);
int ty_note_insert(parley_store_tx *tx, const char *id, const char *conversation_id, const char *author,
                   const char *text, const char *created_at);
int ty_lease_acquire(void *store, const char *name, const char *holder, int64_t now_ms, int64_t ttl_ms,
                     char **holder_out);
int ty_lease_release(void *store, const char *name, const char *holder);
int ty_counter_add(void *store, const char *name, int64_t delta, int64_t *value);

/* Accounts, service tokens, sessions, failed logins (typed_accounts.c, ABI 1.3). */
int ty_account_insert(void *store, const struct parley_account_rec *a);
int ty_account_update(void *store, const struct parley_account_rec *a);
int ty_account_get(void *store, const char *name, parley_store_row_cb cb, void *arg);
int ty_account_find_email(void *store, const char *email, parley_store_row_cb cb, void *arg);
int ty_accounts_list(void *store, parley_store_row_cb cb, void *arg);
int ty_account_delete(void *store, const char *name);
int ty_token_insert(void *store, const struct parley_token_rec *t);
int ty_token_find(void *store, const char *hash, parley_store_row_cb cb, void *arg);
int ty_tokens_list(void *store, parley_store_row_cb cb, void *arg);
int ty_token_revoke(void *store, const char *id, const char *revoked_at);
int ty_token_touch(void *store, const char *id, const char *used_at);
int ty_session_insert(void *store, const struct parley_session_rec *s);
int ty_session_find(void *store, const char *hash, parley_store_row_cb cb, void *arg);
int ty_session_revoke(void *store, const char *hash);
int ty_sessions_revoke_account(void *store, const char *account, int64_t *n);
int ty_sessions_delete_expired(void *store, int64_t now_ms, int64_t *n);
int ty_login_failure_add(void *store, const char *key, int64_t now_ms, int64_t forget_ms, int64_t *count);
int ty_login_failure_get(void *store, const char *key, int64_t *count, int64_t *last_ms);
int ty_login_failure_clear(void *store, const char *key);
int ty_login_failures_forget(void *store, int64_t before_ms);

/* SLA targets and surveys (typed_sla.c, 1.4). */
int ty_sla_put(parley_store_tx *tx, const struct parley_sla_rec *r, size_t n);
int ty_sla_of_conversation(parley_store_tx *tx, const char *conversation_id, parley_store_row_cb cb, void *arg);
int ty_sla_due(parley_store_tx *tx, const char *now, size_t max, parley_store_row_cb cb, void *arg);
int ty_sla_list(void *store, const char *state, const char *team, size_t max, parley_store_row_cb cb, void *arg);
int ty_survey_insert(parley_store_tx *tx, const struct parley_survey_rec *r);
int ty_survey_update(parley_store_tx *tx, const struct parley_survey_rec *r);
int ty_survey_lock(parley_store_tx *tx, const char *conversation_id, struct parley_survey_rec *out);
int ty_surveys_due(void *store, const char *now, size_t max, parley_store_row_cb cb, void *arg);
int ty_ratings_list(void *store, const char *conversation_id, const char *agent, size_t max, parley_store_row_cb cb,
                    void *arg);
/* The customer-service window and broadcasts (typed_broadcasts.c, ABI 1.4). */
int ty_window_last_inbound(void *store, const char *channel, const char *urn, char **at);
int ty_broadcast_candidates(void *store, const struct parley_segment_term *terms, size_t n, const char *channel,
                            parley_store_row_cb cb, void *arg);
int ty_broadcast_insert(void *store, const struct parley_broadcast_rec *b,
                        const struct parley_broadcast_recipient_rec *r, size_t n);
int ty_broadcast_get(void *store, const char *id, parley_store_row_cb cb, void *arg);
int ty_broadcasts_list(void *store, const char *state, parley_store_row_cb cb, void *arg);
int ty_broadcast_counts(void *store, const char *id, parley_store_row_cb cb, void *arg);
int ty_broadcast_recipients(void *store, const char *id, const char *after_contact, size_t max, parley_store_row_cb cb,
                            void *arg);
int ty_broadcast_pending(void *store, const char *id, const char *channel, size_t max, parley_store_row_cb cb,
                         void *arg);
int ty_broadcast_recipients_set(parley_store_tx *tx, const struct parley_broadcast_recipient_rec *r, size_t n,
                                int64_t *moved);
int ty_broadcast_recipient_advance(void *store, const char *message_id, const char *from, const char *to,
                                   const char *reason);
int ty_broadcast_set_state(void *store, const char *id, const char *state, const char *at, int64_t *n);

#endif
