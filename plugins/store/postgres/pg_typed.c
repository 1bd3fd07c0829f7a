/*
 * pg_typed.c: the typed store contract (store.h) on PostgreSQL: its
 * transactions, the statement helpers the pg_typed_*.c files share, leases,
 * counters and the ops table.  The ops themselves live beside it, one file
 * per responsibility: pg_typed_messages.c, pg_typed_contacts.c and
 * pg_typed_conversations.c.
 *
 * Transactions run at READ COMMITTED: each statement sees what others
 * committed before it began, which is what lets a second statement see the
 * winner of a race the first one waited for (ON CONFLICT waits for a
 * concurrent insert of the same key).  Batches are one statement each,
 * their rows passed as array literals and unnested by the server.
 *
 * Message seqs are handed out under a transaction-level advisory lock held
 * until commit, so seqs become visible in order: a reader of messages_since
 * that saw seq n never later finds a seq below n appear.  The price is that
 * transactions inserting messages commit one at a time across nodes.
 * Conversation events take the same lock, for the same reason.
 *
 * The lock order: that lock first, then rows.  A webhook's commit takes it
 * (messages_insert) before it writes contacts, identities and conversations;
 * an agent's op locks a conversation and then appends to its history.  Taken
 * the other way round the two wait on each other until the server's deadlock
 * detector aborts one (a 503 for the webhook, or a failed op), so every op that
 * locks or writes a contact, identity, merge, conversation, promise, survey or
 * message row takes the sequence lock first (pg_tx_lock_seq, once per
 * transaction; tests/e2e/test_scale_out_locks.py).
 */
#include "pg_typed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

PGresult *pg_tx_exec(parley_store_tx *tx, const char *sql, int n, const char *const *params, int *rv)
{
	return pg_exec(tx->s, tx->c, sql, n, params, rv);
}

int pg_tx_lock_seq(parley_store_tx *tx)
{
	int rv = 0;
	if (tx->seq_locked)
		return 0;
	PQclear(pg_tx_exec(tx, "SELECT pg_advisory_xact_lock(hashtext('parley.messages.seq'))", 0, NULL, &rv));
	tx->seq_locked = rv == 0;
	return rv;
}

int pg_tx_cmd(parley_store_tx *tx, const char *sql, int n, const char *const *params, long *rows)
{
	int rv;
	PGresult *r = pg_tx_exec(tx, sql, n, params, &rv);
	if (r && rows)
		*rows = strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return rv;
}

/* Frees the array literals params[0..n) after running sql with them. */
PGresult *pg_tx_exec_arrays(parley_store_tx *tx, const char *sql, int n, char **params, int *rv)
{
	PGresult *r = NULL;
	*rv = 0;
	for (int i = 0; i < n; i++)
		if (!params[i])
			*rv = PARLEY_ENOMEM;
	if (*rv == 0)
		r = pg_tx_exec(tx, sql, n, (const char *const *)params, rv);
	for (int i = 0; i < n; i++)
		free(params[i]);
	return r;
}

const char *pg_tx_dup(parley_store_tx *tx, const PGresult *r, int row, int col)
{
	return pg_arena_dup(&tx->arena, pg_val(r, row, col));
}

/* ---------------------------------------------------------- transactions */

int pg_tx_begin(void *store, parley_store_tx **out)
{
	struct pgstore *s = store;
	parley_store_tx *tx = calloc(1, sizeof(*tx));
	if (!tx)
		return PARLEY_ENOMEM;
	tx->s = s;
	/* Explicit, whatever the server's default: the ops rely on each statement seeing what committed before it. */
	int rv = pg_acquire(s, &tx->c);
	if (rv == 0)
		PQclear(pg_exec(s, tx->c, "BEGIN ISOLATION LEVEL READ COMMITTED", 0, NULL, &rv));
	if (rv != 0) {
		if (tx->c)
			pg_release(s, tx->c);
		free(tx);
		return rv;
	}
	*out = tx;
	return 0;
}

static void tx_end(parley_store_tx *tx)
{
	pg_release(tx->s, tx->c);
	pg_arena_free(&tx->arena);
	free(tx);
}

int pg_tx_commit(parley_store_tx *tx)
{
	int rv;
	PGresult *r = pg_tx_exec(tx, "COMMIT", 0, NULL, &rv);
	/* COMMIT of a transaction that failed earlier answers ROLLBACK: nothing was kept. */
	if (r && strcmp(PQcmdStatus(r), "COMMIT") != 0)
		rv = PARLEY_EIO;
	PQclear(r);
	tx_end(tx);
	return rv;
}

void pg_tx_rollback(parley_store_tx *tx)
{
	/* pg_release rolls back whatever is still open. */
	tx_end(tx);
}
/* ------------------------------------------------ leases and counters, no transaction */

int pg_lease_acquire(void *store, const char *name, const char *holder, int64_t now_ms, int64_t ttl_ms,
                     char **holder_out)
{
	struct pgstore *s = store;
	char now[24], until[24];
	snprintf(now, sizeof(now), "%" PRId64, now_ms);
	snprintf(until, sizeof(until), "%" PRId64, now_ms + ttl_ms);
	const char *p[] = {name, holder, now, until};
	int rv;
	/* One statement: granted when free, expired or already ours; otherwise the current holder is read. */
	PGresult *r =
	        pg_run(s,
	               "WITH up AS (INSERT INTO leases (name, holder, expires_ms) VALUES ($1, $2, $4::bigint)"
	               " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms"
	               " WHERE leases.expires_ms <= $3::bigint OR leases.holder = excluded.holder"
	               " RETURNING holder)"
	               " SELECT holder, true FROM up UNION ALL"
	               " SELECT holder, false FROM leases WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM up)",
	               4, p, &rv);
	if (r) {
		int granted = PQntuples(r) > 0 && PQgetvalue(r, 0, 1)[0] == 't';
		if (holder_out)
			*holder_out = PQntuples(r) > 0 ? strdup(PQgetvalue(r, 0, 0)) : NULL;
		rv = granted ? 0 : PARLEY_EBUSY;
	}
	PQclear(r);
	return rv;
}

int pg_lease_release(void *store, const char *name, const char *holder)
{
	const char *p[] = {name, holder};
	return pg_run_cmd(store, "DELETE FROM leases WHERE name = $1 AND holder = $2", 2, p, NULL);
}

static int counter_add(void *store, const char *name, int64_t delta, int64_t *value)
{
	char d[24];
	snprintf(d, sizeof(d), "%" PRId64, delta);
	const char *p[] = {name, d};
	int rv;
	PGresult *r = pg_run(store,
	                     "INSERT INTO counters (name, value) VALUES ($1, $2::bigint) ON CONFLICT (name)"
	                     " DO UPDATE SET value = counters.value + excluded.value RETURNING value",
	                     2, p, &rv);
	if (r && rv == 0 && PQntuples(r) == 1)
		*value = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else if (rv == 0)
		rv = PARLEY_EIO;
	PQclear(r);
	return rv;
}

const struct parley_store_typed_ops pg_typed_ops = {
        .struct_size = sizeof(struct parley_store_typed_ops),
        .tx_begin = pg_tx_begin,
        .tx_commit = pg_tx_commit,
        .tx_rollback = pg_tx_rollback,
        .messages_insert = pg_messages_insert,
        .message_status_advance = pg_message_status_advance,
        .messages_set_owner = pg_messages_set_owner,
        .messages_of_contact = pg_messages_of_contact,
        .contacts_insert = pg_contacts_insert,
        .contacts_lock = pg_contacts_lock,
        .contact_update = pg_contact_update,
        .identities_claim = pg_identities_claim,
        .identities_owner = pg_identities_owner,
        .identities_of_contact = pg_identities_of_contact,
        .identities_move = pg_identities_move,
        .conversations_current = pg_conversations_current,
        .conversation_lock = pg_conversation_lock,
        .conversation_of_ref = pg_conversation_of_ref,
        .conversations_put = pg_conversations_put,
        .conversations_of_contact = pg_conversations_of_contact,
        .conversations_due = pg_conversations_due,
        .conversation_events_append = pg_conversation_events_append,
        .note_insert = pg_note_insert,
        .merge_insert = pg_merge_insert,
        .merge_lock = pg_merge_lock,
        .merge_set_undone = pg_merge_set_undone,
        .messages_since = pg_messages_since,
        .lease_acquire = pg_lease_acquire,
        .lease_release = pg_lease_release,
        .counter_add = counter_add,
        .account_insert = pg_account_insert,
        .account_update = pg_account_update,
        .account_get = pg_account_get,
        .account_find_email = pg_account_find_email,
        .accounts_list = pg_accounts_list,
        .account_delete = pg_account_delete,
        .token_insert = pg_token_insert,
        .token_find = pg_token_find,
        .tokens_list = pg_tokens_list,
        .token_revoke = pg_token_revoke,
        .token_touch = pg_token_touch,
        .session_insert = pg_session_insert,
        .session_find = pg_session_find,
        .session_revoke = pg_session_revoke,
        .sessions_revoke_account = pg_sessions_revoke_account,
        .sessions_delete_expired = pg_sessions_delete_expired,
        .login_failure_add = pg_login_failure_add,
        .login_failure_get = pg_login_failure_get,
        .login_failure_clear = pg_login_failure_clear,
        .login_failures_forget = pg_login_failures_forget,
        .sla_put = pg_sla_put,
        .sla_of_conversation = pg_sla_of_conversation,
        .sla_due = pg_sla_due,
        .sla_list = pg_sla_list,
        .survey_insert = pg_survey_insert,
        .survey_update = pg_survey_update,
        .survey_lock = pg_survey_lock,
        .surveys_due = pg_surveys_due,
        .ratings_list = pg_ratings_list,
        .window_last_inbound = pg_window_last_inbound,
        .broadcast_candidates = pg_broadcast_candidates,
        .broadcast_insert = pg_broadcast_insert,
        .broadcast_get = pg_broadcast_get,
        .broadcasts_list = pg_broadcasts_list,
        .broadcast_counts = pg_broadcast_counts,
        .broadcast_recipients = pg_broadcast_recipients,
        .broadcast_pending = pg_broadcast_pending,
        .broadcast_recipients_set = pg_broadcast_recipients_set,
        .broadcast_recipient_advance = pg_broadcast_recipient_advance,
        .broadcast_set_state = pg_broadcast_set_state,
};
