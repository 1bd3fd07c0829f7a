/*
 * pg_typed.h: what the typed contract's files (pg_typed.c and the
 * pg_typed_*.c beside it) share: the statement helpers of a transaction and
 * the ops each file defines for pg_typed_ops.  Internal to this plugin; the
 * ops' contracts are those of store.h.
 */
#ifndef PARLEY_STORE_PG_TYPED_H
#define PARLEY_STORE_PG_TYPED_H

#include "pg_store.h"

/* pg_exec on the transaction's connection. */
PGresult *pg_tx_exec(parley_store_tx *tx, const char *sql, int n, const char *const *params, int *rv);
/* pg_tx_exec that keeps only the status; *rows (may be NULL) receives the rows changed. */
int pg_tx_cmd(parley_store_tx *tx, const char *sql, int n, const char *const *params, long *rows);
/* Frees the array literals params[0..n) after running sql with them (PARLEY_ENOMEM when one is NULL). */
PGresult *pg_tx_exec_arrays(parley_store_tx *tx, const char *sql, int n, char **params, int *rv);
/*
 * Take the transaction-level lock that orders message and event seqs by
 * commit (pg_typed.c), once per transaction: 0 or the error.
 */
int pg_tx_lock_seq(parley_store_tx *tx);
/* A column of a result row, copied into the transaction's arena (NULL stays NULL). */
const char *pg_tx_dup(parley_store_tx *tx, const PGresult *r, int row, int col);

/* Messages (pg_typed_messages.c); pg_messages_insert, pg_receipts_apply and pg_messages_since are in pg_store.h. */
int pg_message_status_advance(parley_store_tx *tx, const char *channel, const char *provider_id, const char *status,
                              const char *error);
int pg_messages_set_owner(parley_store_tx *tx, const char *const *ids, size_t n, const char *contact_id,
                          const char *conversation_id);
int pg_messages_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg);

/* Contacts, identities and merges (pg_typed_contacts.c). */
int pg_contacts_insert(parley_store_tx *tx, const struct parley_contact_rec *c, size_t n);
int pg_contacts_lock(parley_store_tx *tx, const char *const *ids, size_t n, struct parley_contact_rec *out, int *found);
int pg_contact_update(parley_store_tx *tx, const struct parley_contact_rec *c);
int pg_identities_claim(parley_store_tx *tx, const struct parley_identity_rec *in, size_t n, const char **owners);
int pg_identities_owner(parley_store_tx *tx, const char *const *urns, size_t n, const char **owners);
int pg_identities_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg);
int pg_identities_move(parley_store_tx *tx, const char *const *urns, size_t n, const char *contact_id);
int pg_merge_insert(parley_store_tx *tx, const struct parley_merge_rec *m);
int pg_merge_lock(parley_store_tx *tx, const char *id, struct parley_merge_rec *out);
int pg_merge_set_undone(parley_store_tx *tx, const char *id, const char *undone_at);

/* Conversations, their events and notes (pg_typed_conversations.c). */
int pg_conversations_current(parley_store_tx *tx, const char *const *contact_ids, size_t n,
                             struct parley_conversation_rec *out, int *found);
int pg_conversation_lock(parley_store_tx *tx, const char *id, struct parley_conversation_rec *out);
int pg_conversation_of_ref(parley_store_tx *tx, const char *channel, const char *ref,
                           struct parley_conversation_rec *out);
int pg_conversations_put(parley_store_tx *tx, const struct parley_conversation_rec *c, size_t n);
int pg_conversations_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg);
int pg_conversations_due(parley_store_tx *tx, const char *now, size_t max, parley_store_row_cb cb, void *arg);
int pg_conversation_events_append(parley_store_tx *tx, const struct parley_conversation_event_rec *e, size_t n);
int pg_note_insert(parley_store_tx *tx, const char *id, const char *conversation_id, const char *author,
                   const char *text, const char *created_at);

/* SLA targets and surveys (pg_typed_sla.c, store.h 1.4). */
int pg_sla_put(parley_store_tx *tx, const struct parley_sla_rec *s, size_t n);
int pg_sla_of_conversation(parley_store_tx *tx, const char *conversation_id, parley_store_row_cb cb, void *arg);
int pg_sla_due(parley_store_tx *tx, const char *now, size_t max, parley_store_row_cb cb, void *arg);
int pg_sla_list(void *store, const char *state, const char *team, size_t max, parley_store_row_cb cb, void *arg);
int pg_survey_insert(parley_store_tx *tx, const struct parley_survey_rec *s);
int pg_survey_update(parley_store_tx *tx, const struct parley_survey_rec *s);
int pg_survey_lock(parley_store_tx *tx, const char *conversation_id, struct parley_survey_rec *out);
int pg_surveys_due(void *store, const char *now, size_t max, parley_store_row_cb cb, void *arg);
int pg_ratings_list(void *store, const char *conversation_id, const char *agent, size_t max, parley_store_row_cb cb,
                    void *arg);
/* The customer-service window and broadcasts (pg_broadcasts.c, ABI 1.4). */
int pg_window_last_inbound(void *store, const char *channel, const char *urn, char **at);
int pg_broadcast_candidates(void *store, const struct parley_segment_term *terms, size_t n, const char *channel,
                            parley_store_row_cb cb, void *arg);
int pg_broadcast_insert(void *store, const struct parley_broadcast_rec *b,
                        const struct parley_broadcast_recipient_rec *r, size_t n);
int pg_broadcast_get(void *store, const char *id, parley_store_row_cb cb, void *arg);
int pg_broadcasts_list(void *store, const char *state, parley_store_row_cb cb, void *arg);
int pg_broadcast_counts(void *store, const char *id, parley_store_row_cb cb, void *arg);
int pg_broadcast_recipients(void *store, const char *id, const char *after_contact, size_t max, parley_store_row_cb cb,
                            void *arg);
int pg_broadcast_pending(void *store, const char *id, const char *channel, size_t max, parley_store_row_cb cb,
                         void *arg);
int pg_broadcast_recipients_set(parley_store_tx *tx, const struct parley_broadcast_recipient_rec *r, size_t n,
                                int64_t *moved);
int pg_broadcast_recipient_advance(void *store, const char *message_id, const char *from, const char *to,
                                   const char *reason);
int pg_broadcast_set_state(void *store, const char *id, const char *state, const char *at, int64_t *n);

#endif
