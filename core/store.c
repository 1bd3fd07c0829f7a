/* store.c: the core's one door to the store plugin (see store.h). */
#include "store.h"

#include "util.h"

#include <stdlib.h>

struct store {
	void *data;
	const struct parley_store_ops *ops;
	const struct parley_store_typed_ops *typed;
};

/* The plugin declared the field (its struct_size covers it) and set it. */
#define OPS_HAS(ops, field) ((ops)->struct_size >= offsetof(struct parley_store_ops, field) + sizeof((ops)->field))

struct store *store_open(void *data, const struct parley_store_ops *ops)
{
	struct store *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->data = data;
	st->ops = ops;
	if (OPS_HAS(st->ops, typed) && st->ops->typed && st->ops->typed->struct_size >= sizeof(uint32_t))
		st->typed = st->ops->typed;
	return st;
}

void store_close(struct store *st)
{
	free(st);
}

const struct parley_store_typed_ops *store_typed(const struct store *st)
{
	return st->typed;
}

void *store_data(const struct store *st)
{
	return st->data;
}

int store_commit_classic(struct store *st, parley_envelope *const *envs, size_t n, int *results)
{
	return st->ops->commit(st->data, envs, n, results);
}

int store_query(struct store *st, const char *op, const char *request_json, char **reply)
{
	*reply = NULL;
	return st->ops->query ? st->ops->query(st->data, op, request_json ? request_json : "{}", reply)
	                      : PARLEY_ENOTSUP;
}

int store_kv_get(struct store *st, const char *ns, const char *key, char **val, size_t *len)
{
	return st->ops->kv_get(st->data, ns, key, val, len);
}

int store_kv_set(struct store *st, const char *ns, const char *key, const void *val, size_t len)
{
	return st->ops->kv_set(st->data, ns, key, val, len);
}

int store_outbox_claim(struct store *st, int64_t now_ms, size_t max, char **json_array)
{
	*json_array = NULL;
	return st->ops->outbox_claim ? st->ops->outbox_claim(st->data, now_ms, max, json_array) : PARLEY_ENOTSUP;
}

int store_outbox_update(struct store *st, const char *id, const char *status, const char *provider_id,
                        const char *error, int64_t next_attempt_ms)
{
	return st->ops->outbox_update(st->data, id, status, provider_id, error, next_attempt_ms);
}

int store_ping(struct store *st)
{
	return st->ops->ping ? st->ops->ping(st->data) : 0;
}

int store_attachment_set(struct store *st, const char *message_id, size_t index, const char *fields)
{
	return st->ops->attachment_set ? st->ops->attachment_set(st->data, message_id, index, fields) : PARLEY_ENOTSUP;
}

int store_lease(struct store *st, const char *name, const char *holder, int64_t ttl_ms)
{
	if (!st->typed || !st->typed->lease_acquire)
		return 0;
	return st->typed->lease_acquire(st->data, name, holder, time_now_ms(), ttl_ms, NULL);
}

int store_counter_add(struct store *st, const char *name, int64_t delta, int64_t *value)
{
	const struct parley_store_typed_ops *t = st->typed;
	if (!t || t->struct_size < offsetof(struct parley_store_typed_ops, counter_add) + sizeof(t->counter_add) ||
	    !t->counter_add)
		return PARLEY_ENOTSUP;
	return t->counter_add(st->data, name, delta, value);
}

int store_messages_since(struct store *st, int64_t after_seq, size_t max, parley_store_row_cb cb, void *arg)
{
	if (!st->typed || !st->typed->messages_since)
		return PARLEY_ENOTSUP;
	return st->typed->messages_since(st->data, after_seq, max, cb, arg);
}

int store_lease_release(struct store *st, const char *name, const char *holder)
{
	if (!st->typed || !st->typed->lease_release)
		return 0;
	return st->typed->lease_release(st->data, name, holder);
}

/* ------------------------------------------- ABI 1.3: accounts, tokens, sessions */

/* The typed table declares the ABI 1.3 block (its struct_size reaches its last op). */
int store_keeps_accounts(const struct store *st)
{
	const struct parley_store_typed_ops *t = st->typed;
	return t && t->struct_size >= offsetof(struct parley_store_typed_ops, login_failures_forget) +
	                                      sizeof(t->login_failures_forget);
}

/* Call op of the ABI 1.3 block, or answer PARLEY_ENOTSUP. */
#define ACCOUNTS_CALL(st, op, ...)                                                                                     \
	(store_keeps_accounts(st) && (st)->typed->op ? (st)->typed->op((st)->data, __VA_ARGS__) : PARLEY_ENOTSUP)

int store_account_insert(struct store *st, const struct parley_account_rec *a)
{
	return ACCOUNTS_CALL(st, account_insert, a);
}

int store_account_update(struct store *st, const struct parley_account_rec *a)
{
	return ACCOUNTS_CALL(st, account_update, a);
}

int store_account_get(struct store *st, const char *name, parley_store_row_cb cb, void *arg)
{
	return ACCOUNTS_CALL(st, account_get, name, cb, arg);
}

int store_account_find_email(struct store *st, const char *email, parley_store_row_cb cb, void *arg)
{
	return ACCOUNTS_CALL(st, account_find_email, email, cb, arg);
}

int store_accounts_list(struct store *st, parley_store_row_cb cb, void *arg)
{
	return ACCOUNTS_CALL(st, accounts_list, cb, arg);
}

int store_account_delete(struct store *st, const char *name)
{
	return ACCOUNTS_CALL(st, account_delete, name);
}

int store_token_insert(struct store *st, const struct parley_token_rec *t)
{
	return ACCOUNTS_CALL(st, token_insert, t);
}

int store_token_find(struct store *st, const char *hash, parley_store_row_cb cb, void *arg)
{
	return ACCOUNTS_CALL(st, token_find, hash, cb, arg);
}

int store_tokens_list(struct store *st, parley_store_row_cb cb, void *arg)
{
	return ACCOUNTS_CALL(st, tokens_list, cb, arg);
}

int store_token_revoke(struct store *st, const char *id, const char *revoked_at)
{
	return ACCOUNTS_CALL(st, token_revoke, id, revoked_at);
}

int store_token_touch(struct store *st, const char *id, const char *used_at)
{
	return ACCOUNTS_CALL(st, token_touch, id, used_at);
}

int store_session_insert(struct store *st, const struct parley_session_rec *s)
{
	return ACCOUNTS_CALL(st, session_insert, s);
}

int store_session_find(struct store *st, const char *hash, parley_store_row_cb cb, void *arg)
{
	return ACCOUNTS_CALL(st, session_find, hash, cb, arg);
}

int store_session_revoke(struct store *st, const char *hash)
{
	return ACCOUNTS_CALL(st, session_revoke, hash);
}

int store_sessions_revoke_account(struct store *st, const char *account, int64_t *n)
{
	return ACCOUNTS_CALL(st, sessions_revoke_account, account, n);
}

int store_sessions_delete_expired(struct store *st, int64_t now_ms, int64_t *n)
{
	return ACCOUNTS_CALL(st, sessions_delete_expired, now_ms, n);
}

int store_login_failure_add(struct store *st, const char *key, int64_t now_ms, int64_t forget_ms, int64_t *count)
{
	return ACCOUNTS_CALL(st, login_failure_add, key, now_ms, forget_ms, count);
}

int store_login_failure_get(struct store *st, const char *key, int64_t *count, int64_t *last_ms)
{
	return ACCOUNTS_CALL(st, login_failure_get, key, count, last_ms);
}

int store_login_failure_clear(struct store *st, const char *key)
{
	return ACCOUNTS_CALL(st, login_failure_clear, key);
}

int store_login_failures_forget(struct store *st, int64_t before_ms)
{
	return ACCOUNTS_CALL(st, login_failures_forget, before_ms);
}

/* ------------------------------------------------- 1.4: SLA targets and surveys */

int store_typed_keeps_promises(const struct parley_store_typed_ops *t)
{
	return t && t->struct_size >= offsetof(struct parley_store_typed_ops, ratings_list) + sizeof(t->ratings_list) &&
	       t->sla_put && t->sla_of_conversation && t->sla_due && t->sla_list && t->survey_insert &&
	       t->survey_update && t->survey_lock && t->surveys_due && t->ratings_list;
}

int store_sla_list(struct store *st, const char *state, const char *team, size_t max, parley_store_row_cb cb, void *arg)
{
	if (!store_typed_keeps_promises(st->typed))
		return PARLEY_ENOTSUP;
	return st->typed->sla_list(st->data, state, team, max, cb, arg);
}

int store_surveys_due(struct store *st, const char *now, size_t max, parley_store_row_cb cb, void *arg)
{
	if (!store_typed_keeps_promises(st->typed))
		return PARLEY_ENOTSUP;
	return st->typed->surveys_due(st->data, now, max, cb, arg);
}

int store_ratings_list(struct store *st, const char *conversation_id, const char *agent, size_t max,
                       parley_store_row_cb cb, void *arg)
{
	if (!store_typed_keeps_promises(st->typed))
		return PARLEY_ENOTSUP;
	return st->typed->ratings_list(st->data, conversation_id, agent, max, cb, arg);
}

/* ------------------------------------------- ABI 1.4: the window, broadcasts */

int store_keeps_broadcasts(const struct store *st)
{
	const struct parley_store_typed_ops *t = st->typed;
	return t &&
	       t->struct_size >=
	               offsetof(struct parley_store_typed_ops, broadcast_set_state) + sizeof(t->broadcast_set_state) &&
	       t->window_last_inbound && t->broadcast_candidates && t->broadcast_insert && t->broadcast_get &&
	       t->broadcasts_list && t->broadcast_counts && t->broadcast_recipients && t->broadcast_pending &&
	       t->broadcast_recipients_set && t->broadcast_recipient_advance && t->broadcast_set_state;
}

/* Call op of the ABI 1.4 block, or answer PARLEY_ENOTSUP. */
#define BROADCASTS_CALL(st, op, ...)                                                                                   \
	(store_keeps_broadcasts(st) ? (st)->typed->op((st)->data, __VA_ARGS__) : PARLEY_ENOTSUP)

int store_window_last_inbound(struct store *st, const char *channel, const char *urn, char **at)
{
	return BROADCASTS_CALL(st, window_last_inbound, channel, urn, at);
}

int store_broadcast_candidates(struct store *st, const struct parley_segment_term *terms, size_t n, const char *channel,
                               parley_store_row_cb cb, void *arg)
{
	return BROADCASTS_CALL(st, broadcast_candidates, terms, n, channel, cb, arg);
}

int store_broadcast_insert(struct store *st, const struct parley_broadcast_rec *b,
                           const struct parley_broadcast_recipient_rec *r, size_t n)
{
	return BROADCASTS_CALL(st, broadcast_insert, b, r, n);
}

int store_broadcast_get(struct store *st, const char *id, parley_store_row_cb cb, void *arg)
{
	return BROADCASTS_CALL(st, broadcast_get, id, cb, arg);
}

int store_broadcasts_list(struct store *st, const char *state, parley_store_row_cb cb, void *arg)
{
	return BROADCASTS_CALL(st, broadcasts_list, state, cb, arg);
}

int store_broadcast_counts(struct store *st, const char *id, parley_store_row_cb cb, void *arg)
{
	return BROADCASTS_CALL(st, broadcast_counts, id, cb, arg);
}

int store_broadcast_recipients(struct store *st, const char *id, const char *after_contact, size_t max,
                               parley_store_row_cb cb, void *arg)
{
	return BROADCASTS_CALL(st, broadcast_recipients, id, after_contact, max, cb, arg);
}

int store_broadcast_pending(struct store *st, const char *id, const char *channel, size_t max, parley_store_row_cb cb,
                            void *arg)
{
	return BROADCASTS_CALL(st, broadcast_pending, id, channel, max, cb, arg);
}

int store_broadcast_recipient_advance(struct store *st, const char *message_id, const char *from, const char *to,
                                      const char *reason)
{
	return BROADCASTS_CALL(st, broadcast_recipient_advance, message_id, from, to, reason);
}

int store_broadcast_set_state(struct store *st, const char *id, const char *state, const char *at, int64_t *n)
{
	return BROADCASTS_CALL(st, broadcast_set_state, id, state, at, n);
}
