/*
 * pg_store.h: what the PostgreSQL store's files share: the store object, its
 * connection pool, statement helpers and the per-transaction arena.
 * Internal to this plugin.
 *
 * Threads: every store op may be called from any host thread at once.  The
 * pool's mutex guards only which slot is taken; a taken slot (struct pg_conn)
 * belongs to one thread until it is released, so statements on it need no
 * lock.
 */
#ifndef PARLEY_STORE_PG_STORE_H
#define PARLEY_STORE_PG_STORE_H

#include <parley/parley.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <pthread.h>

/* One pooled connection; c is NULL until first used and after it broke. */
struct pg_conn {
	PGconn *c;
	int busy;
};

struct pgstore {
	const struct parley_host *host;
	parley_instance *inst;
	char *url;   /* secret: may carry a password; never logged */
	char *where; /* "host:port/db" for log lines, without credentials */
	int pool_size;
	int64_t connect_timeout_ms;
	int64_t claim_timeout_ms;
	pthread_mutex_t mu;
	pthread_cond_t freed;
	struct pg_conn *pool;
	/* Under mu: the server could not be reached, and when that was last logged (at most every 30 s). */
	int down;
	int64_t down_logged_ms;
};

/* Strings a transaction hands out, freed together when it ends. */
struct pg_arena {
	struct pg_arena_str *head;
};

struct parley_store_tx {
	struct pgstore *s;
	struct pg_conn *c;
	struct pg_arena arena;
	int seq_locked; /* holds the advisory lock that orders message seqs by commit (pg_typed_messages.c) */
};

/*
 * How far a message has got (SQL function created by the migration); a
 * receipt never moves a message back, but "failed" after "sent" does.
 */
#define PG_RANK(x) "parley_status_rank(" x ")"

/*
 * The stored envelope with the columns that change after insert folded in,
 * as SQLite's ENVELOPE_SQL: NULL columns remove their field.
 */
#define PG_ENVELOPE                                                                                                    \
	"CASE WHEN status IS NULL OR direction <> 'outbound' THEN envelope ELSE"                                       \
	" (envelope - ARRAY['status', 'error', 'external_id', 'attempts']) || jsonb_strip_nulls(jsonb_build_object("   \
	"'status', status, 'error', error, 'external_id', provider_id, 'attempts', attempts)) END"

#define PG_CONV_COLS                                                                                                   \
	"c.id, c.contact_id, c.status, c.assignee, c.team, c.priority, c.labels, c.last_channel, c.snoozed_until,"     \
	" c.first_inbound_at, c.last_inbound_at, c.first_response_at, c.resolved_at, c.resolutions, c.created_at,"     \
	" c.updated_at, c.queued_at"

/* A LIMIT as text: max, or the largest bigint when max is beyond it ("no limit"). */
void pg_limit(char out[24], size_t max);

/* RFC 3339 UTC now, with milliseconds. */
void pg_now(char out[64]);

/*
 * Take a pooled connection, connecting it when it is not (or no longer)
 * connected.  Waits up to connect_timeout for a free slot (PARLEY_EBUSY
 * then); PARLEY_EIO when the server cannot be reached.  On 0 the caller owns
 * *out until pg_release().
 */
int pg_acquire(struct pgstore *s, struct pg_conn **out);
/*
 * Give a connection back (c is not to be used after); one left inside a
 * transaction is rolled back, one that is broken is closed (the next
 * pg_acquire of its slot connects again).
 */
void pg_release(struct pgstore *s, struct pg_conn *c);

/*
 * Run sql with n text parameters (NULL is SQL NULL) on c.  Returns the
 * result (the caller PQclear()s it) when the statement succeeded, else NULL
 * with *rv set: PARLEY_EBUSY for a deadlock or serialization failure,
 * PARLEY_EIO for a broken connection or another error (logged), PARLEY_EEXIST
 * for a unique violation, PARLEY_EINVAL for bad input text (JSON, numbers).
 */
PGresult *pg_exec(struct pgstore *s, struct pg_conn *c, const char *sql, int n, const char *const *params, int *rv);
/* The same with explicit formats and lengths (binary values). */
PGresult *pg_exec_fmt(struct pgstore *s, struct pg_conn *c, const char *sql, int n, const char *const *params,
                      const int *lengths, const int *formats, int result_format, int *rv);
/* Acquire, pg_exec, release: for statements outside a transaction. */
PGresult *pg_run(struct pgstore *s, const char *sql, int n, const char *const *params, int *rv);
/* pg_run that keeps only the status: 0 or the error; *rows (may be NULL) receives the rows changed. */
int pg_run_cmd(struct pgstore *s, const char *sql, int n, const char *const *params, long *rows);

/*
 * A PostgreSQL array literal ("{"a","b",NULL}") of text values, built one
 * value at a time.  On allocation failure pga_end returns NULL.
 */
struct pga {
	char *buf;
	size_t len, cap;
	size_t n;
	int oom;
};
void pga_init(struct pga *a);
void pga_add(struct pga *a, const char *v);
/* The literal, malloc'd (the caller frees it), or NULL when out of memory. */
char *pga_end(struct pga *a);
/* The array literal of n strings, malloc'd. */
char *pg_array(const char *const *v, size_t n);

/* A copy of v owned by the arena (NULL stays NULL; NULL also when out of memory). */
const char *pg_arena_dup(struct pg_arena *a, const char *v);
void pg_arena_free(struct pg_arena *a);

/* A text column of a result row (owned by r, valid until PQclear), or NULL when SQL NULL. */
const char *pg_val(const PGresult *r, int row, int col);

/*
 * Result rows as a JSON array of objects (NULL columns left out, jsonb parsed,
 * integers as numbers), as SQLite's row_object does; the caller cJSON_Delete()s it.
 */
cJSON *pg_rows_json(const PGresult *r);

/* The typed operations (pg_typed.c; the rest in pg_typed.h). */
extern const struct parley_store_typed_ops pg_typed_ops;
int pg_tx_begin(void *store, parley_store_tx **tx);
int pg_tx_commit(parley_store_tx *tx);
void pg_tx_rollback(parley_store_tx *tx);
int pg_messages_insert(parley_store_tx *tx, struct parley_envelope *const *envs, size_t n, int *results);
/* Receipts: move outbound messages (channel, provider id) forward to status, n at a time. */
int pg_receipts_apply(parley_store_tx *tx, const char *const *channels, const char *const *refs,
                      const char *const *statuses, const char *const *errors, size_t n);
int pg_messages_since(void *store, int64_t after_seq, size_t max, parley_store_row_cb cb, void *arg);
int pg_lease_acquire(void *store, const char *name, const char *holder, int64_t now_ms, int64_t ttl_ms,
                     char **holder_out);
int pg_lease_release(void *store, const char *name, const char *holder);

/* The classic operations (pg_reads.c: queries; pg_outbox.c: commit, outbox, kv, attachments). */
int pg_query(void *store, const char *op, const char *request_json, char **reply_json);
int pg_commit(void *store, parley_envelope *const *envs, size_t n, int *results);
int pg_kv_get(void *store, const char *ns, const char *key, char **val, size_t *len);
int pg_kv_set(void *store, const char *ns, const char *key, const void *val, size_t len);
int pg_outbox_claim(void *store, int64_t now_ms, size_t max, char **json_array);
int pg_outbox_update(void *store, const char *id, const char *status, const char *provider_id, const char *error,
                     int64_t next_attempt_ms);
int pg_attachment_set(void *store, const char *message_id, size_t index, const char *fields);

/* Accounts, service tokens, sessions, failed logins (pg_accounts.c, store.h ABI 1.3). */
int pg_account_insert(void *store, const struct parley_account_rec *a);
int pg_account_update(void *store, const struct parley_account_rec *a);
int pg_account_get(void *store, const char *name, parley_store_row_cb cb, void *arg);
int pg_account_find_email(void *store, const char *email, parley_store_row_cb cb, void *arg);
int pg_accounts_list(void *store, parley_store_row_cb cb, void *arg);
int pg_account_delete(void *store, const char *name);
int pg_token_insert(void *store, const struct parley_token_rec *t);
int pg_token_find(void *store, const char *hash, parley_store_row_cb cb, void *arg);
int pg_tokens_list(void *store, parley_store_row_cb cb, void *arg);
int pg_token_revoke(void *store, const char *id, const char *revoked_at);
int pg_token_touch(void *store, const char *id, const char *used_at);
int pg_session_insert(void *store, const struct parley_session_rec *s);
int pg_session_find(void *store, const char *hash, parley_store_row_cb cb, void *arg);
int pg_session_revoke(void *store, const char *hash);
int pg_sessions_revoke_account(void *store, const char *account, int64_t *n);
int pg_sessions_delete_expired(void *store, int64_t now_ms, int64_t *n);
int pg_login_failure_add(void *store, const char *key, int64_t now_ms, int64_t forget_ms, int64_t *count);
int pg_login_failure_get(void *store, const char *key, int64_t *count, int64_t *last_ms);
int pg_login_failure_clear(void *store, const char *key);
int pg_login_failures_forget(void *store, int64_t before_ms);

/*
 * pg_reports.c: reports.kpis (kpis_sql.h), and the SQL functions it calls,
 * created by migration 7: parley_ms(text) and parley_business_ms(a, b, tz,
 * days, from_m, to_m), business time in SQL (each local day's window of the
 * days, the zone's rules PostgreSQL's own).
 */
int pg_reports_kpis(struct pgstore *s, const char *request_json, char **reply);
#define PG_BUSINESS_MS_FUNCTION                                                                                        \
	"CREATE FUNCTION parley_ms(t text) RETURNS bigint LANGUAGE sql STABLE AS $$"                                   \
	"  SELECT (extract(epoch FROM t::timestamptz) * 1000)::bigint $$;"                                             \
	"CREATE FUNCTION parley_business_ms(a bigint, b bigint, tz text, days int, from_m int, to_m int)"              \
	" RETURNS bigint LANGUAGE sql STABLE AS $$"                                                                    \
	"  SELECT CASE WHEN a IS NULL OR b IS NULL OR tz IS NULL THEN NULL WHEN b <= a THEN 0 ELSE"                    \
	"  (SELECT coalesce(sum(greatest(0, least(b, w.e) - greatest(a, w.s))), 0)::bigint FROM"                       \
	"   (SELECT (extract(epoch FROM (d + make_interval(mins => from_m)) AT TIME ZONE tz) * 1000)::bigint AS s,"    \
	"     (extract(epoch FROM (d + make_interval(mins => to_m + CASE WHEN to_m < from_m THEN 1440 ELSE 0 END))"    \
	"      AT TIME ZONE tz) * 1000)::bigint AS e"                                                                  \
	"    FROM generate_series(date_trunc('day', to_timestamp(a / 1000.0) AT TIME ZONE tz) - interval '1 day',"     \
	"     to_timestamp(b / 1000.0) AT TIME ZONE tz, interval '1 day') AS d"                                        \
	"    WHERE (days >> extract(dow FROM d)::int) & 1 = 1) AS w) END $$;"

#endif
