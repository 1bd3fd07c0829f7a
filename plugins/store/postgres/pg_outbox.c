/*
 * pg_outbox.c: the classic write ops: the group commit (the typed insert in
 * one transaction), the outbox's claims and results, key-value state and
 * stored attachments.  Each is one statement where it can be, so a node
 * dying between two never leaves half of an op behind.
 */
#include "pg_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is(const char *a, const char *b)
{
	return a && strcmp(a, b) == 0;
}

int pg_commit(void *store, parley_envelope *const *envs, size_t n, int *results)
{
	struct pgstore *s = store;
	const struct parley_host *h = s->host;
	parley_store_tx *tx;
	int rv = pg_tx_begin(s, &tx);
	if (rv != 0)
		return rv;
	rv = pg_messages_insert(tx, envs, n, results);
	/* A stored inbound receipt moves the outbound message it names (thread_ref = provider id) forward. */
	const char **cols = rv == 0 && n ? calloc(4 * n, sizeof(*cols)) : NULL;
	size_t nr = 0;
	if (rv == 0 && n && !cols)
		rv = PARLEY_ENOMEM;
	for (size_t i = 0; rv == 0 && i < n; i++) {
		const parley_envelope *e = envs[i];
		const char *ref = h->envelope_get_str(e, "thread_ref");
		const char *status = h->envelope_get_str(e, "status");
		if (results[i] != 0 || !is(h->envelope_get_str(e, "kind"), "status") ||
		    !is(h->envelope_get_str(e, "direction"), "inbound") || !ref || !status)
			continue;
		cols[nr] = h->envelope_get_str(e, "channel");
		cols[n + nr] = ref;
		cols[2 * n + nr] = status;
		cols[3 * n + nr] = h->envelope_get_str(e, "error");
		nr++;
	}
	if (rv == 0 && nr)
		rv = pg_receipts_apply(tx, cols, cols + n, cols + 2 * n, cols + 3 * n, nr);
	free(cols);
	if (rv != 0) {
		pg_tx_rollback(tx);
		return rv == PARLEY_EBUSY ? rv : PARLEY_EIO;
	}
	return pg_tx_commit(tx);
}

int pg_kv_get(void *store, const char *ns, const char *key, char **val, size_t *len)
{
	struct pgstore *s = store;
	struct pg_conn *c;
	int rv = pg_acquire(s, &c);
	if (rv != 0)
		return rv;
	const char *p[] = {ns, key};
	/* Binary results: the value is bytes, not text. */
	PGresult *r = pg_exec_fmt(s, c, "SELECT value FROM kv WHERE ns = $1 AND key = $2", 2, p, NULL, NULL, 1, &rv);
	pg_release(s, c);
	if (!r)
		return rv;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return PARLEY_ENOENT;
	}
	size_t n = PQgetisnull(r, 0, 0) ? 0 : (size_t)PQgetlength(r, 0, 0);
	*val = malloc(n + 1);
	if (*val) {
		if (n)
			memcpy(*val, PQgetvalue(r, 0, 0), n);
		(*val)[n] = '\0';
		if (len)
			*len = n;
	}
	PQclear(r);
	return *val ? 0 : PARLEY_ENOMEM;
}

int pg_kv_set(void *store, const char *ns, const char *key, const void *val, size_t len)
{
	struct pgstore *s = store;
	if (len > 0x7fffffff)
		return PARLEY_ETOOBIG;
	char now[64];
	pg_now(now);
	const char *p[] = {ns, key, val ? val : "", now};
	const int lengths[] = {0, 0, (int)len, 0};
	const int formats[] = {0, 0, 1, 0};
	struct pg_conn *c;
	int rv = pg_acquire(s, &c);
	if (rv != 0)
		return rv;
	PQclear(pg_exec_fmt(
	        s, c,
	        "INSERT INTO kv (ns, key, value, updated_at) VALUES ($1, $2, $3::bytea, $4)"
	        " ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
	        4, p, lengths, formats, 0, &rv));
	pg_release(s, c);
	return rv;
}

int pg_outbox_claim(void *store, int64_t now_ms, size_t max, char **json_array)
{
	struct pgstore *s = store;
	char now[24], lim[24], stale[24];
	snprintf(now, sizeof(now), "%" PRId64, now_ms);
	pg_limit(lim, max);
	snprintf(stale, sizeof(stale), "%" PRId64, now_ms - s->claim_timeout_ms);
	const char *p[] = {now, lim, stale};
	int rv;
	/*
	 * One statement: due messages, and claims older than claim_timeout (their node died mid-send), are
	 * locked, skipping rows another node is claiming this instant, and marked sending with the claim time.
	 */
	PGresult *r =
	        pg_run(s,
	               "WITH due AS (SELECT id FROM messages WHERE direction = 'outbound'"
	               "  AND ((status IN ('queued', 'retry') AND next_attempt_ms <= $1::bigint)"
	               "   OR (status = 'sending' AND coalesce(claimed_at_ms, 0) <= $3::bigint))"
	               "  ORDER BY priority, next_attempt_ms, seq LIMIT $2::bigint FOR UPDATE SKIP LOCKED),"
	               " claimed AS (UPDATE messages AS m SET status = 'sending', claimed_at_ms = $1::bigint FROM due"
	               "  WHERE m.id = due.id"
	               "  RETURNING m.seq, m.priority, m.next_attempt_ms,"
	               "   m.envelope || jsonb_build_object('attempts', m.attempts) AS e)"
	               " SELECT e FROM claimed ORDER BY priority, next_attempt_ms, seq",
	               3, p, &rv);
	if (!r)
		return rv;
	int n = PQntuples(r);
	if (n > 0) {
		size_t cap = 3;
		for (int i = 0; i < n; i++)
			cap += (size_t)PQgetlength(r, i, 0) + 1;
		char *buf = malloc(cap);
		if (!buf) {
			/* The claims expire after claim_timeout and are sent then. */
			PQclear(r);
			return PARLEY_ENOMEM;
		}
		size_t len = 0;
		buf[len++] = '[';
		for (int i = 0; i < n; i++) {
			if (i)
				buf[len++] = ',';
			memcpy(buf + len, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
			len += (size_t)PQgetlength(r, i, 0);
		}
		buf[len++] = ']';
		buf[len] = '\0';
		*json_array = buf;
	}
	PQclear(r);
	return 0;
}

int pg_outbox_update(void *store, const char *id, const char *status, const char *provider_id, const char *error,
                     int64_t next_attempt_ms)
{
	struct pgstore *s = store;
	char now[64], next[24];
	pg_now(now);
	snprintf(next, sizeof(next), "%" PRId64, next_attempt_ms);
	const char *p[] = {id, status, provider_id, error, is(status, "retry") || is(status, "queued") ? next : NULL,
	                   now};
	long rows = 0;
	/*
	 * A provider may post its receipt before we recorded its message id: the furthest receipt already
	 * stored for that id is applied in the same statement.
	 */
	int rv = pg_run_cmd(
	        s,
	        "UPDATE messages AS m SET status = coalesce(r.st, $2), error = CASE WHEN r.st IS NULL THEN $4"
	        " ELSE coalesce(r.er, $4) END, provider_id = coalesce($3, m.provider_id),"
	        " next_attempt_ms = $5::bigint, attempts = m.attempts + CASE WHEN $2 <> 'queued' THEN 1 ELSE 0 END,"
	        " updated_at = $6, claimed_at_ms = NULL"
	        " FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT x.status AS st, x.error AS er FROM messages AS x"
	        "  WHERE $3::text IS NOT NULL AND x.kind = 'status' AND x.thread_ref = $3"
	        "  AND x.channel = (SELECT channel FROM messages WHERE id = $1)"
	        "  AND " PG_RANK("x.status") " > " PG_RANK("$2::text") " ORDER BY " PG_RANK(
	                "x.status") " DESC LIMIT 1)"
	                            "  AS r ON true"
	                            " WHERE m.id = $1",
	        6, p, &rows);
	return rv == 0 && rows == 0 ? PARLEY_ENOENT : rv;
}

int pg_attachment_set(void *store, const char *message_id, size_t index, const char *fields)
{
	struct pgstore *s = store;
	char idx[24];
	snprintf(idx, sizeof(idx), "%zu", index);
	const char *p[] = {message_id, idx, fields};
	long rows = 0;
	int rv = pg_run_cmd(s,
	                    "UPDATE messages SET envelope = jsonb_set(envelope, ARRAY['attachments', $2::text],"
	                    " (envelope->'attachments'->($2::int)) || $3::jsonb)"
	                    " WHERE id = $1 AND jsonb_typeof(envelope->'attachments'->($2::int)) = 'object'"
	                    " AND jsonb_typeof($3::jsonb) = 'object'",
	                    3, p, &rows);
	return rv == 0 && rows == 0 ? PARLEY_ENOENT : rv;
}
