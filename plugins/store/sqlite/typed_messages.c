/* typed_messages.c: the messages of the typed contract: insert with dedupe, receipts, owners, and the relay's read
 * (messages_since) (see typed.c). */
#include "typed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------- messages */

int ty_messages_insert(parley_store_tx *tx, struct parley_envelope *const *envs, size_t n, int *results)
{
	for (size_t i = 0; i < n; i++) {
		int rv = sq_insert(tx->s, envs[i], &results[i]);
		if (rv != 0)
			return rv;
	}
	return 0;
}

int ty_message_status_advance(parley_store_tx *tx, const char *channel, const char *provider_id, const char *status,
                              const char *error)
{
	static const char *const known[] = {"sent", "delivered", "read", "failed"};
	int ok = 0;
	for (size_t i = 0; status && i < 4; i++)
		ok |= strcmp(status, known[i]) == 0;
	if (!ok || !channel || !provider_id)
		return PARLEY_EINVAL;
	char ts[64];
	sq_now(ts);
	/* The classic receipt statement: moves the message only forward (STATUS_RANK). */
	sqlite3_stmt *st = tx->s->receipt;
	sq_bind(st, 1, channel);
	sq_bind(st, 2, provider_id);
	sq_bind(st, 3, status);
	sq_bind(st, 4, error);
	sq_bind(st, 5, ts);
	return ty_exec_done(tx->s, st);
}

static const char *const sql_set_owner =
        "UPDATE messages SET contact_id = ?2, conversation_id = coalesce(?3, conversation_id),"
        " envelope = CASE WHEN ?3 IS NULL THEN json_set(envelope, '$.contact_id', ?2)"
        " ELSE json_set(envelope, '$.contact_id', ?2, '$.conversation_id', ?3) END"
        " WHERE id IN (SELECT value FROM json_each(?1))";

int ty_messages_set_owner(parley_store_tx *tx, const char *const *ids, size_t n, const char *contact_id,
                          const char *conversation_id)
{
	if (n == 0)
		return 0;
	char *arr = ty_json_strings(ids, n);
	sqlite3_stmt *st = arr ? ty_prep(tx->s, sql_set_owner) : NULL;
	if (!st) {
		free(arr);
		return arr ? PARLEY_EIO : PARLEY_ENOMEM;
	}
	sq_bind(st, 1, arr);
	sq_bind(st, 2, contact_id);
	sq_bind(st, 3, conversation_id);
	int rv = ty_exec_done(tx->s, st);
	free(arr);
	return rv;
}

static const char *const sql_messages_of_contact =
        "SELECT id FROM messages WHERE contact_id = ?1 AND contact_id IS NOT NULL ORDER BY seq";

/* Each row is the id itself (const char *), valid until the transaction ends. */
int ty_messages_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_messages_of_contact);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, contact_id);
	const char **ids = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char **slot = ty_grow((void **)&ids, sizeof(*ids), &n, &cap);
		if (!slot)
			break;
		*slot = ty_col(tx, st, 0);
	}
	ty_done(st);
	int rv = rc == SQLITE_DONE ? 0 : ty_step_error(tx->s, rc);
	for (size_t i = 0; rv == 0 && i < n; i++)
		rv = cb(arg, ids[i]);
	free(ids);
	return rv;
}

/* ------------------------------------------------- reads, no transaction */

/*
 * On the reader connection.  Rows are copied before the visitor runs, so
 * the visitor may call the store (the reader's lock is not held then).
 */
int ty_messages_since(void *store, int64_t after_seq, size_t max, parley_store_row_cb cb, void *arg)
{
	struct store *s = store;
	struct parley_stored_envelope *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int rv = PARLEY_EIO;
	pthread_mutex_lock(&s->rlock);
	if (sqlite3_prepare_v2(s->r,
	                       "SELECT seq, id, " ENVELOPE_SQL " FROM messages WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	                       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, after_seq);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
		int rc;
		rv = 0;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct parley_stored_envelope *r = ty_grow((void **)&rows, sizeof(*rows), &n, &cap);
			if (!r) {
				rv = PARLEY_ENOMEM;
				break;
			}
			r->seq = sqlite3_column_int64(st, 0);
			r->id = strdup((const char *)sqlite3_column_text(st, 1));
			r->envelope = strdup((const char *)sqlite3_column_text(st, 2));
			if (!r->id || !r->envelope)
				rv = PARLEY_ENOMEM;
		}
		if (rv == 0 && rc != SQLITE_DONE)
			rv = PARLEY_EIO;
	}
	if (rv == PARLEY_EIO)
		s->host->log(s->inst, PARLEY_LOG_ERROR, "%s: messages_since: %s", s->path, sqlite3_errmsg(s->r));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->rlock);
	if (rv == 0)
		rv = ty_visit(rows, sizeof(*rows), n, cb, arg);
	for (size_t i = 0; i < n; i++) {
		free((char *)rows[i].id);
		free((char *)rows[i].envelope);
	}
	free(rows);
	return rv;
}
