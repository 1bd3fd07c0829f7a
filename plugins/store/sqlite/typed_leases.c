/* typed_leases.c: what nodes sharing a store coordinate with: leases and counters (see typed.c). */
#include "typed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sql_lease_take =
        "INSERT INTO leases (name, holder, expires_ms) VALUES (?1, ?2, ?3 + ?4)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms"
        " WHERE leases.holder = excluded.holder OR leases.expires_ms <= ?3";
static const char *const sql_lease_holder = "SELECT holder FROM leases WHERE name = ?1";
static const char *const sql_lease_release = "DELETE FROM leases WHERE name = ?1 AND holder = ?2";

int ty_lease_acquire(void *store, const char *name, const char *holder, int64_t now_ms, int64_t ttl_ms,
                     char **holder_out)
{
	struct store *s = store;
	if (!name || !holder || ttl_ms <= 0)
		return PARLEY_EINVAL;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *take = ty_prep(s, sql_lease_take);
	sqlite3_stmt *who = ty_prep(s, sql_lease_holder);
	int rv = take && who ? 0 : PARLEY_EIO;
	char *current = NULL;
	if (rv == 0 && sqlite3_exec(s->w, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		rv = ty_step_error(s, sqlite3_errcode(s->w));
	else if (rv == 0) {
		sq_bind(take, 1, name);
		sq_bind(take, 2, holder);
		sqlite3_bind_int64(take, 3, now_ms);
		sqlite3_bind_int64(take, 4, ttl_ms);
		rv = ty_exec_done(s, take);
		if (rv == 0) {
			sq_bind(who, 1, name);
			int rc = sqlite3_step(who);
			if (rc == SQLITE_ROW)
				current = strdup((const char *)sqlite3_column_text(who, 0));
			else
				rv = ty_step_error(s, rc);
			ty_done(who);
		}
		if (rv == 0 && sqlite3_exec(s->w, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			rv = ty_step_error(s, sqlite3_errcode(s->w));
		if (rv != 0)
			sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&s->wlock);
	if (rv == 0 && (!current || strcmp(current, holder) != 0))
		rv = PARLEY_EBUSY;
	if (holder_out && current && (rv == 0 || rv == PARLEY_EBUSY))
		*holder_out = current;
	else
		free(current);
	return rv;
}

/* Releasing a lease one does not hold changes nothing (and is not an error). */
int ty_lease_release(void *store, const char *name, const char *holder)
{
	struct store *s = store;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_lease_release);
	int rv = PARLEY_EIO;
	if (st) {
		sq_bind(st, 1, name);
		sq_bind(st, 2, holder);
		rv = ty_exec_done(s, st);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

static const char *const sql_counter_add =
        "INSERT INTO counters (name, value) VALUES (?1, ?2)"
        " ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value RETURNING value";

int ty_counter_add(void *store, const char *name, int64_t delta, int64_t *value)
{
	struct store *s = store;
	if (!name)
		return PARLEY_EINVAL;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_counter_add);
	int rv = st ? 0 : PARLEY_EIO;
	if (rv == 0) {
		sq_bind(st, 1, name);
		sqlite3_bind_int64(st, 2, delta);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*value = sqlite3_column_int64(st, 0);
		rv = rc == SQLITE_ROW ? 0 : ty_step_error(s, rc);
		ty_done(st);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}
