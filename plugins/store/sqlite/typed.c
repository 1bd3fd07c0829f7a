/*
 * typed.c: the typed store contract (store.h, ABI 1.2) over the SQLite
 * schema.  SQLite has one writer, so a transaction is the writer
 * connection's mutex plus BEGIN IMMEDIATE: everything a transaction reads
 * is locked against every other writer until it ends, which is what the
 * contract's row locks (contacts_lock, conversation_lock, merge_lock) and
 * its "waits for a concurrent transaction" promises ask for.  Batched
 * operations step one prepared statement per row inside that one
 * transaction (no round trips to save in an embedded database).
 *
 * Strings a transaction hands back live in its arena, freed when it ends.
 * Visitors first collect their rows, then call back: a callback may call
 * other operations of the same transaction.
 */
#include "typed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ arena */

/* A copy of v that lives until the transaction ends; NULL for NULL (or out of memory). */
const char *ty_keep(parley_store_tx *tx, const char *v)
{
	if (!v)
		return NULL;
	size_t n = strlen(v) + 1;
	struct chunk *c = tx->arena;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > 8192 ? n : 8192;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = tx->arena;
		c->used = 0;
		c->cap = cap;
		tx->arena = c;
	}
	char *p = c->data + c->used;
	memcpy(p, v, n);
	c->used += n;
	return p;
}

void ty_tx_free(parley_store_tx *tx)
{
	struct chunk *c = tx->arena;
	while (c) {
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
	free(tx->seen);
	free(tx);
}

/* ------------------------------------------------------- statements */

/* The statement for sql (static text) on the writer, prepared once; NULL after logging on failure. */
sqlite3_stmt *ty_prep(struct store *s, const char *sql)
{
	struct stmt_cache *c = &s->tcache;
	for (size_t i = 0; i < c->n; i++)
		if (c->sql[i] == sql)
			return c->st[i];
	sqlite3_stmt *st = NULL;
	if (c->n == sizeof(c->sql) / sizeof(c->sql[0]) ||
	    sqlite3_prepare_v3(s->w, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		s->host->log(s->inst, PARLEY_LOG_ERROR, "%s: cannot prepare a typed store statement: %s", s->path,
		             sqlite3_errmsg(s->w));
		sqlite3_finalize(st);
		return NULL;
	}
	c->sql[c->n] = sql;
	c->st[c->n++] = st;
	return st;
}

void typed_close(struct store *s)
{
	for (size_t i = 0; i < s->tcache.n; i++)
		sqlite3_finalize(s->tcache.st[i]);
	s->tcache.n = 0;
}

/* The contract's error for a failed step: busy or locked is PARLEY_EBUSY, a constraint PARLEY_EEXIST. */
int ty_step_error(struct store *s, int rc)
{
	s->host->log(s->inst, PARLEY_LOG_ERROR, "%s: %s", s->path, sqlite3_errmsg(s->w));
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return PARLEY_EBUSY;
	case SQLITE_CONSTRAINT:
		return PARLEY_EEXIST;
	default:
		return PARLEY_EIO;
	}
}

void ty_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Step a statement that returns no rows; 0 or the contract's error. */
int ty_exec_done(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	ty_done(st);
	return rc == SQLITE_DONE ? 0 : ty_step_error(s, rc);
}

const char *ty_col(parley_store_tx *tx, sqlite3_stmt *st, int i)
{
	return ty_keep(tx, (const char *)sqlite3_column_text(st, i));
}

/* A JSON array of strings, for json_each(): malloc'd, or NULL when out of memory. */
char *ty_json_strings(const char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	char *text = a ? cJSON_PrintUnformatted(a) : NULL;
	cJSON_Delete(a);
	return text;
}

/* Visit collected rows; the visitor's non-zero return stops and is returned. */
int ty_visit(const void *rows, size_t size, size_t n, parley_store_row_cb cb, void *arg)
{
	for (size_t i = 0; i < n; i++) {
		int r = cb(arg, (const char *)rows + i * size);
		if (r)
			return r;
	}
	return 0;
}

/* Grow a row array by one; NULL when out of memory. */
void *ty_grow(void **rows, size_t size, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		void *p = realloc(*rows, nc * size);
		if (!p)
			return NULL;
		*rows = p;
		*cap = nc;
	}
	void *row = (char *)*rows + (*n)++ * size;
	memset(row, 0, size);
	return row;
}

/* ----------------------------------------------------- transactions */

static int tx_begin(void *store, parley_store_tx **out)
{
	struct store *s = store;
	parley_store_tx *tx = calloc(1, sizeof(*tx));
	if (!tx)
		return PARLEY_ENOMEM;
	tx->s = s;
	pthread_mutex_lock(&s->wlock);
	int rc = sqlite3_exec(s->w, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		int rv = ty_step_error(s, rc);
		pthread_mutex_unlock(&s->wlock);
		free(tx);
		return rv == PARLEY_EEXIST ? PARLEY_EIO : rv;
	}
	*out = tx;
	return 0;
}

static int tx_commit(parley_store_tx *tx)
{
	struct store *s = tx->s;
	int rc = sqlite3_exec(s->w, "COMMIT", NULL, NULL, NULL);
	int rv = 0;
	if (rc != SQLITE_OK) {
		rv = ty_step_error(s, rc) == PARLEY_EBUSY ? PARLEY_EBUSY : PARLEY_EIO;
		sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&s->wlock);
	ty_tx_free(tx);
	return rv;
}

static void tx_rollback(parley_store_tx *tx)
{
	struct store *s = tx->s;
	if (!sqlite3_get_autocommit(s->w))
		sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&s->wlock);
	ty_tx_free(tx);
}

const struct parley_store_typed_ops sq_typed_ops = {
        .struct_size = sizeof(struct parley_store_typed_ops),
        .tx_begin = tx_begin,
        .tx_commit = tx_commit,
        .tx_rollback = tx_rollback,
        .messages_insert = ty_messages_insert,
        .message_status_advance = ty_message_status_advance,
        .messages_set_owner = ty_messages_set_owner,
        .messages_of_contact = ty_messages_of_contact,
        .contacts_insert = ty_contacts_insert,
        .contacts_lock = ty_contacts_lock,
        .contact_update = ty_contact_update,
        .identities_claim = ty_identities_claim,
        .identities_owner = ty_identities_owner,
        .identities_of_contact = ty_identities_of_contact,
        .identities_move = ty_identities_move,
        .conversations_current = ty_conversations_current,
        .conversation_lock = ty_conversation_lock,
        .conversation_of_ref = ty_conversation_of_ref,
        .conversations_put = ty_conversations_put,
        .conversations_of_contact = ty_conversations_of_contact,
        .conversations_due = ty_conversations_due,
        .conversation_events_append = ty_conversation_events_append,
        .note_insert = ty_note_insert,
        .merge_insert = ty_merge_insert,
        .merge_lock = ty_merge_lock,
        .merge_set_undone = ty_merge_set_undone,
        .messages_since = ty_messages_since,
        .lease_acquire = ty_lease_acquire,
        .lease_release = ty_lease_release,
        .counter_add = ty_counter_add,
        .account_insert = ty_account_insert,
        .account_update = ty_account_update,
        .account_get = ty_account_get,
        .account_find_email = ty_account_find_email,
        .accounts_list = ty_accounts_list,
        .account_delete = ty_account_delete,
        .token_insert = ty_token_insert,
        .token_find = ty_token_find,
        .tokens_list = ty_tokens_list,
        .token_revoke = ty_token_revoke,
        .token_touch = ty_token_touch,
        .session_insert = ty_session_insert,
        .session_find = ty_session_find,
        .session_revoke = ty_session_revoke,
        .sessions_revoke_account = ty_sessions_revoke_account,
        .sessions_delete_expired = ty_sessions_delete_expired,
        .login_failure_add = ty_login_failure_add,
        .login_failure_get = ty_login_failure_get,
        .login_failure_clear = ty_login_failure_clear,
        .login_failures_forget = ty_login_failures_forget,
        .sla_put = ty_sla_put,
        .sla_of_conversation = ty_sla_of_conversation,
        .sla_due = ty_sla_due,
        .sla_list = ty_sla_list,
        .survey_insert = ty_survey_insert,
        .survey_update = ty_survey_update,
        .survey_lock = ty_survey_lock,
        .surveys_due = ty_surveys_due,
        .ratings_list = ty_ratings_list,
        .window_last_inbound = ty_window_last_inbound,
        .broadcast_candidates = ty_broadcast_candidates,
        .broadcast_insert = ty_broadcast_insert,
        .broadcast_get = ty_broadcast_get,
        .broadcasts_list = ty_broadcasts_list,
        .broadcast_counts = ty_broadcast_counts,
        .broadcast_recipients = ty_broadcast_recipients,
        .broadcast_pending = ty_broadcast_pending,
        .broadcast_recipients_set = ty_broadcast_recipients_set,
        .broadcast_recipient_advance = ty_broadcast_recipient_advance,
        .broadcast_set_state = ty_broadcast_set_state,
};
