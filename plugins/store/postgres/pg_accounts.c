/*
 * pg_accounts.c: accounts, service tokens, sessions and failed-login
 * counts (store.h, ABI 1.3) on PostgreSQL (migration 3).  Each op is one
 * statement outside any transaction, so it is atomic on its own and every
 * node sharing the database sees it as soon as it returns: a session
 * revoked on one node is refused on the next lookup on another, and the
 * failed-login counts behind the lockout are one row per key for all
 * nodes (the upsert in pg_login_failure_add serializes concurrent
 * failures on the row lock).
 */
#include "pg_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCOUNT_COLS "name, email, role, teams::text, password_hash, disabled, created_at, updated_at"
#define TOKEN_COLS   "id, name, role, scopes::text, hash, created_at, revoked_at, last_used_at"
#define SESSION_COLS "hash, account, created_ms, expires_ms, revoked"

static int64_t num(const PGresult *r, int row, int col)
{
	const char *v = pg_val(r, row, col);
	return v ? strtoll(v, NULL, 10) : 0;
}

static int flag(const PGresult *r, int row, int col)
{
	const char *v = pg_val(r, row, col);
	return v && v[0] == 't';
}

enum row_kind { ROW_ACCOUNT, ROW_TOKEN, ROW_SESSION };

/* Run a SELECT and visit its rows as records of kind; with one set, PARLEY_ENOENT when there is none. */
static int visit(void *store, const char *sql, int n, const char *const *p, enum row_kind kind, int one,
                 parley_store_row_cb cb, void *arg)
{
	int rv;
	PGresult *r = pg_run(store, sql, n, p, &rv);
	if (!r)
		return rv;
	int rows = PQntuples(r);
	for (int i = 0; rv == 0 && i < rows; i++) {
		struct parley_account_rec a = {0};
		struct parley_token_rec t = {0};
		struct parley_session_rec s = {0};
		const void *row = &a;
		if (kind == ROW_ACCOUNT) {
			a = (struct parley_account_rec){pg_val(r, i, 0), pg_val(r, i, 1), pg_val(r, i, 2),
			                                pg_val(r, i, 3), pg_val(r, i, 4), flag(r, i, 5),
			                                pg_val(r, i, 6), pg_val(r, i, 7)};
		} else if (kind == ROW_TOKEN) {
			t = (struct parley_token_rec){pg_val(r, i, 0), pg_val(r, i, 1), pg_val(r, i, 2),
			                              pg_val(r, i, 3), pg_val(r, i, 4), pg_val(r, i, 5),
			                              pg_val(r, i, 6), pg_val(r, i, 7)};
			row = &t;
		} else {
			s = (struct parley_session_rec){pg_val(r, i, 0), pg_val(r, i, 1), num(r, i, 2), num(r, i, 3),
			                                flag(r, i, 4)};
			row = &s;
		}
		rv = cb(arg, row);
	}
	PQclear(r);
	return rv == 0 && one && rows == 0 ? PARLEY_ENOENT : rv;
}

/* Run a statement; PARLEY_ENOENT when need_row and no row changed; *changes (may be NULL) receives how many. */
static int cmd(void *store, const char *sql, int n, const char *const *p, int need_row, int64_t *changes)
{
	long rows = 0;
	int rv = pg_run_cmd(store, sql, n, p, &rows);
	if (changes)
		*changes = rv == 0 ? rows : 0;
	return rv == 0 && need_row && rows == 0 ? PARLEY_ENOENT : rv;
}

static int account_write(void *store, const char *sql, const struct parley_account_rec *a, int need_row)
{
	if (!a || !a->name || !a->email || !a->role || !a->created_at || !a->updated_at)
		return PARLEY_EINVAL;
	const char *p[] = {a->name,       a->email,     a->role, a->teams, a->password_hash, a->disabled ? "t" : "f",
	                   a->created_at, a->updated_at};
	return cmd(store, sql, 8, p, need_row, NULL);
}

int pg_account_insert(void *store, const struct parley_account_rec *a)
{
	return account_write(store,
	                     "INSERT INTO accounts (name, email, role, teams, password_hash, disabled, created_at,"
	                     " updated_at) VALUES ($1, $2, $3, coalesce($4::jsonb, '[]'), $5, $6::boolean, $7, $8)",
	                     a, 0);
}

int pg_account_update(void *store, const struct parley_account_rec *a)
{
	return account_write(store,
	                     "UPDATE accounts SET email = $2, role = $3, teams = coalesce($4::jsonb, '[]'),"
	                     " password_hash = $5, disabled = $6::boolean, updated_at = $8"
	                     " WHERE name = $1 AND $7::text IS NOT NULL",
	                     a, 1);
}

int pg_account_get(void *store, const char *name, parley_store_row_cb cb, void *arg)
{
	const char *p[] = {name};
	return name ? visit(store, "SELECT " ACCOUNT_COLS " FROM accounts WHERE name = $1", 1, p, ROW_ACCOUNT, 1, cb,
	                    arg)
	            : PARLEY_EINVAL;
}

int pg_account_find_email(void *store, const char *email, parley_store_row_cb cb, void *arg)
{
	const char *p[] = {email};
	return email ? visit(store, "SELECT " ACCOUNT_COLS " FROM accounts WHERE email = $1", 1, p, ROW_ACCOUNT, 1, cb,
	                     arg)
	             : PARLEY_EINVAL;
}

int pg_accounts_list(void *store, parley_store_row_cb cb, void *arg)
{
	return visit(store, "SELECT " ACCOUNT_COLS " FROM accounts ORDER BY name", 0, NULL, ROW_ACCOUNT, 0, cb, arg);
}

int pg_account_delete(void *store, const char *name)
{
	const char *p[] = {name};
	return name ? cmd(store, "DELETE FROM accounts WHERE name = $1", 1, p, 1, NULL) : PARLEY_EINVAL;
}

int pg_token_insert(void *store, const struct parley_token_rec *t)
{
	if (!t || !t->id || !t->name || !t->role || !t->hash || !t->created_at)
		return PARLEY_EINVAL;
	const char *p[] = {t->id, t->name, t->role, t->scopes, t->hash, t->created_at, t->revoked_at, t->last_used_at};
	return cmd(store,
	           "INSERT INTO service_tokens (id, name, role, scopes, hash, created_at, revoked_at, last_used_at)"
	           " VALUES ($1, $2, $3, coalesce($4::jsonb, '[]'), $5, $6, $7, $8)",
	           8, p, 0, NULL);
}

int pg_token_find(void *store, const char *hash, parley_store_row_cb cb, void *arg)
{
	const char *p[] = {hash};
	return hash ? visit(store, "SELECT " TOKEN_COLS " FROM service_tokens WHERE hash = $1", 1, p, ROW_TOKEN, 1, cb,
	                    arg)
	            : PARLEY_EINVAL;
}

int pg_tokens_list(void *store, parley_store_row_cb cb, void *arg)
{
	return visit(store, "SELECT " TOKEN_COLS " FROM service_tokens ORDER BY created_at, id", 0, NULL, ROW_TOKEN, 0,
	             cb, arg);
}

int pg_token_revoke(void *store, const char *id, const char *revoked_at)
{
	const char *p[] = {id, revoked_at};
	return id && revoked_at
	               ? cmd(store, "UPDATE service_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1", 2,
	                     p, 1, NULL)
	               : PARLEY_EINVAL;
}

int pg_token_touch(void *store, const char *id, const char *used_at)
{
	const char *p[] = {id, used_at};
	return id && used_at ? cmd(store, "UPDATE service_tokens SET last_used_at = $2 WHERE id = $1", 2, p, 1, NULL)
	                     : PARLEY_EINVAL;
}

int pg_session_insert(void *store, const struct parley_session_rec *s)
{
	if (!s || !s->hash || !s->account)
		return PARLEY_EINVAL;
	char created[24], expires[24];
	snprintf(created, sizeof(created), "%" PRId64, s->created_ms);
	snprintf(expires, sizeof(expires), "%" PRId64, s->expires_ms);
	const char *p[] = {s->hash, s->account, created, expires, s->revoked ? "t" : "f"};
	return cmd(store,
	           "INSERT INTO sessions (" SESSION_COLS ") VALUES ($1, $2, $3::bigint, $4::bigint, $5::boolean)", 5, p,
	           0, NULL);
}

int pg_session_find(void *store, const char *hash, parley_store_row_cb cb, void *arg)
{
	const char *p[] = {hash};
	return hash ? visit(store, "SELECT " SESSION_COLS " FROM sessions WHERE hash = $1", 1, p, ROW_SESSION, 1, cb,
	                    arg)
	            : PARLEY_EINVAL;
}

int pg_session_revoke(void *store, const char *hash)
{
	const char *p[] = {hash};
	return hash ? cmd(store, "UPDATE sessions SET revoked = true WHERE hash = $1", 1, p, 1, NULL) : PARLEY_EINVAL;
}

int pg_sessions_revoke_account(void *store, const char *account, int64_t *n)
{
	const char *p[] = {account};
	return account ? cmd(store, "UPDATE sessions SET revoked = true WHERE account = $1 AND NOT revoked", 1, p, 0, n)
	               : PARLEY_EINVAL;
}

int pg_sessions_delete_expired(void *store, int64_t now_ms, int64_t *n)
{
	char now[24];
	snprintf(now, sizeof(now), "%" PRId64, now_ms);
	const char *p[] = {now};
	return cmd(store, "DELETE FROM sessions WHERE expires_ms <= $1::bigint", 1, p, 0, n);
}

int pg_login_failure_add(void *store, const char *key, int64_t now_ms, int64_t forget_ms, int64_t *count)
{
	if (!key || !count)
		return PARLEY_EINVAL;
	char now[24], forget[24];
	snprintf(now, sizeof(now), "%" PRId64, now_ms);
	snprintf(forget, sizeof(forget), "%" PRId64, forget_ms);
	const char *p[] = {key, now, forget};
	int rv;
	PGresult *r = pg_run(store,
	                     "INSERT INTO login_failures (key, count, last_ms) VALUES ($1, 1, $2::bigint)"
	                     " ON CONFLICT (key) DO UPDATE SET count = CASE WHEN login_failures.last_ms <"
	                     " $2::bigint - $3::bigint THEN 1 ELSE login_failures.count + 1 END, last_ms = $2::bigint"
	                     " RETURNING count",
	                     3, p, &rv);
	if (r && PQntuples(r) == 1)
		*count = num(r, 0, 0);
	else if (rv == 0)
		rv = PARLEY_EIO;
	PQclear(r);
	return rv;
}

int pg_login_failure_get(void *store, const char *key, int64_t *count, int64_t *last_ms)
{
	if (!key || !count || !last_ms)
		return PARLEY_EINVAL;
	*count = *last_ms = 0;
	const char *p[] = {key};
	int rv;
	PGresult *r = pg_run(store, "SELECT count, last_ms FROM login_failures WHERE key = $1", 1, p, &rv);
	if (r && PQntuples(r) == 1) {
		*count = num(r, 0, 0);
		*last_ms = num(r, 0, 1);
	}
	PQclear(r);
	return rv;
}

int pg_login_failure_clear(void *store, const char *key)
{
	const char *p[] = {key};
	return key ? cmd(store, "DELETE FROM login_failures WHERE key = $1", 1, p, 0, NULL) : PARLEY_EINVAL;
}

int pg_login_failures_forget(void *store, int64_t before_ms)
{
	char before[24];
	snprintf(before, sizeof(before), "%" PRId64, before_ms);
	const char *p[] = {before};
	return cmd(store, "DELETE FROM login_failures WHERE last_ms < $1::bigint", 1, p, 0, NULL);
}
