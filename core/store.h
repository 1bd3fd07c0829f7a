/*
 * store.h: the core's one door to the store plugin.  Every core module
 * reaches the store through these functions, never through the plugin's
 * ops table, so a store's calling conventions (its instance data, optional
 * ops, the typed contract of ABI 1.2) are handled in one place.
 *
 * Threads: every function may be called from any thread; the store
 * plugin serializes internally (parley.h).  Strings returned through
 * char ** are malloc'd and freed by the caller.
 */
#ifndef PARLEY_CORE_STORE_H
#define PARLEY_CORE_STORE_H

#include <parley/parley.h>

struct store;

/*
 * The door to a started store instance: its instance data and the
 * plugin's ops table, both borrowed (the instance outlives the door).
 * NULL on ENOMEM.
 */
struct store *store_open(void *data, const struct parley_store_ops *ops);
void store_close(struct store *st);

/* The typed contract (store.h of the SDK), or NULL for an ABI 1.0/1.1 store. */
const struct parley_store_typed_ops *store_typed(const struct store *st);
/* The plugin's instance data: the `store` argument of the typed reads. */
void *store_data(const struct store *st);

/* The classic group commit (an ABI 1.0/1.1 store decides conversations itself). */
int store_commit_classic(struct store *st, parley_envelope *const *envs, size_t n, int *results);
/* A read op the store answers (store.h lists them); *reply as parley_store_ops.query. */
int store_query(struct store *st, const char *op, const char *request_json, char **reply);
int store_kv_get(struct store *st, const char *ns, const char *key, char **val, size_t *len);
int store_kv_set(struct store *st, const char *ns, const char *key, const void *val, size_t len);
int store_outbox_claim(struct store *st, int64_t now_ms, size_t max, char **json_array);
int store_outbox_update(struct store *st, const char *id, const char *status, const char *provider_id,
                        const char *error, int64_t next_attempt_ms);
/* 0 when usable; a store without ping is taken as usable. */
int store_ping(struct store *st);
/*
 * Hold the lease `name` for holder (this node) until ttl_ms from now: 0,
 * PARLEY_EBUSY when another holder has it, or a store error.  A store
 * without leases serves one node: the lease is always granted.
 */
int store_lease(struct store *st, const char *name, const char *holder, int64_t ttl_ms);
/* Give up a lease holder holds (nothing happens when it does not); 0 for a store without leases. */
int store_lease_release(struct store *st, const char *name, const char *holder);
/* The store's counter name += delta, the new value in *value; PARLEY_ENOTSUP without counters. */
int store_counter_add(struct store *st, const char *name, int64_t delta, int64_t *value);
/* The typed messages_since (store.h of the SDK); PARLEY_ENOTSUP for a store without it. */
int store_messages_since(struct store *st, int64_t after_seq, size_t max, parley_store_row_cb cb, void *arg);
/* PARLEY_ENOTSUP when the store keeps no attachment records. */
int store_attachment_set(struct store *st, const char *message_id, size_t index, const char *fields);

/*
 * Accounts, service tokens, sessions and failed-login counts (the ABI 1.3
 * block of store.h of the SDK; core/auth.c is their one user).  Each
 * returns PARLEY_ENOTSUP when the store predates that block
 * (store_keeps_accounts() is 0): "this store does not keep accounts".
 */
int store_keeps_accounts(const struct store *st);
int store_account_insert(struct store *st, const struct parley_account_rec *a);
int store_account_update(struct store *st, const struct parley_account_rec *a);
int store_account_get(struct store *st, const char *name, parley_store_row_cb cb, void *arg);
int store_account_find_email(struct store *st, const char *email, parley_store_row_cb cb, void *arg);
int store_accounts_list(struct store *st, parley_store_row_cb cb, void *arg);
int store_account_delete(struct store *st, const char *name);
int store_token_insert(struct store *st, const struct parley_token_rec *t);
int store_token_find(struct store *st, const char *hash, parley_store_row_cb cb, void *arg);
int store_tokens_list(struct store *st, parley_store_row_cb cb, void *arg);
int store_token_revoke(struct store *st, const char *id, const char *revoked_at);
int store_token_touch(struct store *st, const char *id, const char *used_at);
int store_session_insert(struct store *st, const struct parley_session_rec *s);
int store_session_find(struct store *st, const char *hash, parley_store_row_cb cb, void *arg);
int store_session_revoke(struct store *st, const char *hash);
int store_sessions_revoke_account(struct store *st, const char *account, int64_t *n);
int store_sessions_delete_expired(struct store *st, int64_t now_ms, int64_t *n);
int store_login_failure_add(struct store *st, const char *key, int64_t now_ms, int64_t forget_ms, int64_t *count);
int store_login_failure_get(struct store *st, const char *key, int64_t *count, int64_t *last_ms);
int store_login_failure_clear(struct store *st, const char *key);
int store_login_failures_forget(struct store *st, int64_t before_ms);

/*
 * SLA targets and surveys (the 1.4 block of store.h of the SDK; sla.c and
 * survey.c are their users).  store_typed_keeps_promises(t) is 1 when the
 * typed table declares and sets the block; the reads below return
 * PARLEY_ENOTSUP otherwise.  The transaction's operations are called on the
 * typed table by the conversation core.
 */
int store_typed_keeps_promises(const struct parley_store_typed_ops *t);
int store_sla_list(struct store *st, const char *state, const char *team, size_t max, parley_store_row_cb cb,
                   void *arg);
int store_surveys_due(struct store *st, const char *now, size_t max, parley_store_row_cb cb, void *arg);
int store_ratings_list(struct store *st, const char *conversation_id, const char *agent, size_t max,
                       parley_store_row_cb cb, void *arg);
/*
 * The customer-service window and broadcasts (the ABI 1.4 block of store.h
 * of the SDK; core/window.c and core/broadcast*.c are their users).  Each
 * returns PARLEY_ENOTSUP when the store predates that block
 * (store_keeps_broadcasts() is 0).  broadcast_recipients_set takes a
 * transaction: call it through store_typed().
 */
int store_keeps_broadcasts(const struct store *st);
int store_window_last_inbound(struct store *st, const char *channel, const char *urn, char **at);
int store_broadcast_candidates(struct store *st, const struct parley_segment_term *terms, size_t n, const char *channel,
                               parley_store_row_cb cb, void *arg);
int store_broadcast_insert(struct store *st, const struct parley_broadcast_rec *b,
                           const struct parley_broadcast_recipient_rec *r, size_t n);
int store_broadcast_get(struct store *st, const char *id, parley_store_row_cb cb, void *arg);
int store_broadcasts_list(struct store *st, const char *state, parley_store_row_cb cb, void *arg);
int store_broadcast_counts(struct store *st, const char *id, parley_store_row_cb cb, void *arg);
int store_broadcast_recipients(struct store *st, const char *id, const char *after_contact, size_t max,
                               parley_store_row_cb cb, void *arg);
int store_broadcast_pending(struct store *st, const char *id, const char *channel, size_t max, parley_store_row_cb cb,
                            void *arg);
int store_broadcast_recipient_advance(struct store *st, const char *message_id, const char *from, const char *to,
                                      const char *reason);
int store_broadcast_set_state(struct store *st, const char *id, const char *state, const char *at, int64_t *n);

#endif
