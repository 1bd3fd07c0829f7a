/*
 * typed_accounts.c: accounts, service tokens, sessions and failed-login
 * counts (store.h, ABI 1.3) over the SQLite schema (migration 5).  Every
 * op is one statement on the writer connection under its mutex, so each
 * is atomic against every other writer of the file; a visitor is called
 * while the row is on the statement (it copies, and calls no store op).
 */
#include "typed.h"

#include <stdlib.h>
#include <string.h>

#define ACCOUNT_COLS "name, email, role, teams, password_hash, disabled, created_at, updated_at"
#define TOKEN_COLS   "id, name, role, scopes, hash, created_at, revoked_at, last_used_at"

static const char *const sql_account_insert =
        "INSERT INTO accounts (" ACCOUNT_COLS ") VALUES (?1, ?2, ?3, coalesce(?4, '[]'), ?5, ?6, ?7, ?8)";
static const char *const sql_account_update =
        "UPDATE accounts SET email = ?2, role = ?3, teams = coalesce(?4, '[]'), password_hash = ?5, disabled = ?6,"
        " updated_at = ?8 WHERE name = ?1";
static const char *const sql_account_get = "SELECT " ACCOUNT_COLS " FROM accounts WHERE name = ?1";
static const char *const sql_account_email = "SELECT " ACCOUNT_COLS " FROM accounts WHERE email = ?1";
static const char *const sql_accounts_list = "SELECT " ACCOUNT_COLS " FROM accounts ORDER BY name";
static const char *const sql_account_delete = "DELETE FROM accounts WHERE name = ?1";
static const char *const sql_token_insert =
        "INSERT INTO service_tokens (" TOKEN_COLS ") VALUES (?1, ?2, ?3, coalesce(?4, '[]'), ?5, ?6, ?7, ?8)";
static const char *const sql_token_find = "SELECT " TOKEN_COLS " FROM service_tokens WHERE hash = ?1";
static const char *const sql_tokens_list = "SELECT " TOKEN_COLS " FROM service_tokens ORDER BY created_at, id";
static const char *const sql_token_revoke =
        "UPDATE service_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1";
static const char *const sql_token_touch = "UPDATE service_tokens SET last_used_at = ?2 WHERE id = ?1";
static const char *const sql_session_insert =
        "INSERT INTO sessions (hash, account, created_ms, expires_ms, revoked) VALUES (?1, ?2, ?3, ?4, ?5)";
static const char *const sql_session_find =
        "SELECT hash, account, created_ms, expires_ms, revoked FROM sessions WHERE hash = ?1";
static const char *const sql_session_revoke = "UPDATE sessions SET revoked = 1 WHERE hash = ?1";
static const char *const sql_sessions_revoke_account =
        "UPDATE sessions SET revoked = 1 WHERE account = ?1 AND revoked = 0";
static const char *const sql_sessions_expired = "DELETE FROM sessions WHERE expires_ms <= ?1";
static const char *const sql_failure_add =
        "INSERT INTO login_failures (key, count, last_ms) VALUES (?1, 1, ?2) ON CONFLICT (key) DO UPDATE SET"
        " count = CASE WHEN login_failures.last_ms < ?2 - ?3 THEN 1 ELSE login_failures.count + 1 END,"
        " last_ms = ?2 RETURNING count";
static const char *const sql_failure_get = "SELECT count, last_ms FROM login_failures WHERE key = ?1";
static const char *const sql_failure_clear = "DELETE FROM login_failures WHERE key = ?1";
static const char *const sql_failures_forget = "DELETE FROM login_failures WHERE last_ms < ?1";

static const char *text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static void account_row(sqlite3_stmt *st, struct parley_account_rec *a)
{
	a->name = text(st, 0);
	a->email = text(st, 1);
	a->role = text(st, 2);
	a->teams = text(st, 3);
	a->password_hash = text(st, 4);
	a->disabled = sqlite3_column_int(st, 5);
	a->created_at = text(st, 6);
	a->updated_at = text(st, 7);
}

static void token_row(sqlite3_stmt *st, struct parley_token_rec *t)
{
	t->id = text(st, 0);
	t->name = text(st, 1);
	t->role = text(st, 2);
	t->scopes = text(st, 3);
	t->hash = text(st, 4);
	t->created_at = text(st, 5);
	t->revoked_at = text(st, 6);
	t->last_used_at = text(st, 7);
}

static void session_row(sqlite3_stmt *st, struct parley_session_rec *s)
{
	s->hash = text(st, 0);
	s->account = text(st, 1);
	s->created_ms = sqlite3_column_int64(st, 2);
	s->expires_ms = sqlite3_column_int64(st, 3);
	s->revoked = sqlite3_column_int(st, 4);
}

enum row_kind { ROW_ACCOUNT, ROW_TOKEN, ROW_SESSION };

/*
 * Step sql bound with key (or nothing), visiting each row as a record of
 * kind; with one set, PARLEY_ENOENT when there is no row.
 */
static int visit(struct store *s, const char *sql, const char *key, enum row_kind kind, int one, parley_store_row_cb cb,
                 void *arg)
{
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql);
	int rv = st ? 0 : PARLEY_EIO;
	size_t rows = 0;
	if (st && key)
		sq_bind(st, 1, key);
	while (rv == 0) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			rv = ty_step_error(s, rc);
			break;
		}
		rows++;
		struct parley_account_rec a;
		struct parley_token_rec t;
		struct parley_session_rec se;
		const void *row = &a;
		if (kind == ROW_ACCOUNT) {
			account_row(st, &a);
		} else if (kind == ROW_TOKEN) {
			token_row(st, &t);
			row = &t;
		} else {
			session_row(st, &se);
			row = &se;
		}
		rv = cb(arg, row);
		if (one)
			break;
	}
	if (st)
		ty_done(st);
	pthread_mutex_unlock(&s->wlock);
	return rv == 0 && one && rows == 0 ? PARLEY_ENOENT : rv;
}

/* Step a statement that returns no rows under the writer lock; *changes (may be NULL) receives the rows changed. */
static int run(struct store *s, sqlite3_stmt *st, int64_t *changes)
{
	int rv = ty_exec_done(s, st);
	if (rv == 0 && changes)
		*changes = sqlite3_changes(s->w);
	return rv;
}

static int account_write(void *store, const char *sql, const struct parley_account_rec *a, int need_row)
{
	struct store *s = store;
	if (!a || !a->name || !a->email || !a->role || !a->created_at || !a->updated_at)
		return PARLEY_EINVAL;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql);
	int rv = PARLEY_EIO;
	int64_t n = 0;
	if (st) {
		sq_bind(st, 1, a->name);
		sq_bind(st, 2, a->email);
		sq_bind(st, 3, a->role);
		sq_bind(st, 4, a->teams);
		sq_bind(st, 5, a->password_hash);
		sqlite3_bind_int(st, 6, a->disabled ? 1 : 0);
		sq_bind(st, 7, a->created_at);
		sq_bind(st, 8, a->updated_at);
		rv = run(s, st, &n);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv == 0 && need_row && n == 0 ? PARLEY_ENOENT : rv;
}

int ty_account_insert(void *store, const struct parley_account_rec *a)
{
	return account_write(store, sql_account_insert, a, 0);
}

int ty_account_update(void *store, const struct parley_account_rec *a)
{
	return account_write(store, sql_account_update, a, 1);
}

int ty_account_get(void *store, const char *name, parley_store_row_cb cb, void *arg)
{
	return name ? visit(store, sql_account_get, name, ROW_ACCOUNT, 1, cb, arg) : PARLEY_EINVAL;
}

int ty_account_find_email(void *store, const char *email, parley_store_row_cb cb, void *arg)
{
	return email ? visit(store, sql_account_email, email, ROW_ACCOUNT, 1, cb, arg) : PARLEY_EINVAL;
}

int ty_accounts_list(void *store, parley_store_row_cb cb, void *arg)
{
	return visit(store, sql_accounts_list, NULL, ROW_ACCOUNT, 0, cb, arg);
}

/* One statement with text parameters p1, p2 (NULL: unbound); PARLEY_ENOENT when need_row and nothing changed. */
static int exec2(void *store, const char *sql, const char *p1, const char *p2, int need_row, int64_t *changes)
{
	struct store *s = store;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql);
	int rv = PARLEY_EIO;
	int64_t n = 0;
	if (st) {
		sq_bind(st, 1, p1);
		if (p2)
			sq_bind(st, 2, p2);
		rv = run(s, st, &n);
	}
	pthread_mutex_unlock(&s->wlock);
	if (changes)
		*changes = n;
	return rv == 0 && need_row && n == 0 ? PARLEY_ENOENT : rv;
}

int ty_account_delete(void *store, const char *name)
{
	return name ? exec2(store, sql_account_delete, name, NULL, 1, NULL) : PARLEY_EINVAL;
}

int ty_token_insert(void *store, const struct parley_token_rec *t)
{
	struct store *s = store;
	if (!t || !t->id || !t->name || !t->role || !t->hash || !t->created_at)
		return PARLEY_EINVAL;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_token_insert);
	int rv = PARLEY_EIO;
	if (st) {
		const char *v[] = {t->id,   t->name,       t->role,       t->scopes,
		                   t->hash, t->created_at, t->revoked_at, t->last_used_at};
		for (int i = 0; i < 8; i++)
			sq_bind(st, i + 1, v[i]);
		rv = run(s, st, NULL);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

int ty_token_find(void *store, const char *hash, parley_store_row_cb cb, void *arg)
{
	return hash ? visit(store, sql_token_find, hash, ROW_TOKEN, 1, cb, arg) : PARLEY_EINVAL;
}

int ty_tokens_list(void *store, parley_store_row_cb cb, void *arg)
{
	return visit(store, sql_tokens_list, NULL, ROW_TOKEN, 0, cb, arg);
}

int ty_token_revoke(void *store, const char *id, const char *revoked_at)
{
	return id && revoked_at ? exec2(store, sql_token_revoke, id, revoked_at, 1, NULL) : PARLEY_EINVAL;
}

int ty_token_touch(void *store, const char *id, const char *used_at)
{
	return id && used_at ? exec2(store, sql_token_touch, id, used_at, 1, NULL) : PARLEY_EINVAL;
}

int ty_session_insert(void *store, const struct parley_session_rec *se)
{
	struct store *s = store;
	if (!se || !se->hash || !se->account)
		return PARLEY_EINVAL;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_session_insert);
	int rv = PARLEY_EIO;
	if (st) {
		sq_bind(st, 1, se->hash);
		sq_bind(st, 2, se->account);
		sqlite3_bind_int64(st, 3, se->created_ms);
		sqlite3_bind_int64(st, 4, se->expires_ms);
		sqlite3_bind_int(st, 5, se->revoked ? 1 : 0);
		rv = run(s, st, NULL);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

int ty_session_find(void *store, const char *hash, parley_store_row_cb cb, void *arg)
{
	return hash ? visit(store, sql_session_find, hash, ROW_SESSION, 1, cb, arg) : PARLEY_EINVAL;
}

int ty_session_revoke(void *store, const char *hash)
{
	return hash ? exec2(store, sql_session_revoke, hash, NULL, 1, NULL) : PARLEY_EINVAL;
}

int ty_sessions_revoke_account(void *store, const char *account, int64_t *n)
{
	return account ? exec2(store, sql_sessions_revoke_account, account, NULL, 0, n) : PARLEY_EINVAL;
}

/* One statement with integer parameters; the rows changed in *n (may be NULL). */
static int exec_ints(void *store, const char *sql, const char *key, const int64_t *v, int nv, int64_t *n)
{
	struct store *s = store;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql);
	int rv = PARLEY_EIO;
	int64_t changes = 0;
	if (st) {
		int i = 1;
		if (key)
			sq_bind(st, i++, key);
		for (int k = 0; k < nv; k++)
			sqlite3_bind_int64(st, i++, v[k]);
		rv = run(s, st, &changes);
	}
	pthread_mutex_unlock(&s->wlock);
	if (n)
		*n = changes;
	return rv;
}

int ty_sessions_delete_expired(void *store, int64_t now_ms, int64_t *n)
{
	return exec_ints(store, sql_sessions_expired, NULL, &now_ms, 1, n);
}

int ty_login_failure_add(void *store, const char *key, int64_t now_ms, int64_t forget_ms, int64_t *count)
{
	struct store *s = store;
	if (!key || !count)
		return PARLEY_EINVAL;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_failure_add);
	int rv = PARLEY_EIO;
	if (st) {
		sq_bind(st, 1, key);
		sqlite3_bind_int64(st, 2, now_ms);
		sqlite3_bind_int64(st, 3, forget_ms);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*count = sqlite3_column_int64(st, 0);
		rv = rc == SQLITE_ROW ? 0 : ty_step_error(s, rc);
		ty_done(st);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

int ty_login_failure_get(void *store, const char *key, int64_t *count, int64_t *last_ms)
{
	struct store *s = store;
	if (!key || !count || !last_ms)
		return PARLEY_EINVAL;
	*count = *last_ms = 0;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_failure_get);
	int rv = PARLEY_EIO;
	if (st) {
		sq_bind(st, 1, key);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*count = sqlite3_column_int64(st, 0);
			*last_ms = sqlite3_column_int64(st, 1);
		}
		rv = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ty_step_error(s, rc);
		ty_done(st);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

int ty_login_failure_clear(void *store, const char *key)
{
	return key ? exec2(store, sql_failure_clear, key, NULL, 0, NULL) : PARLEY_EINVAL;
}

int ty_login_failures_forget(void *store, int64_t before_ms)
{
	return exec_ints(store, sql_failures_forget, NULL, &before_ms, 1, NULL);
}
