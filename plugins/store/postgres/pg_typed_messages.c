/*
 * pg_typed_messages.c: the messages of the typed contract on PostgreSQL:
 * batch insert with dedupe under the seq lock, receipts, owners, and the
 * relay's read (messages_since) (see pg_typed.c).
 */
#include "pg_typed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------------------- messages */

static const char insert_sql[] =
        "INSERT INTO messages (id, channel, channel_type, external_id, direction, kind, from_urn, to_urn,"
        " contact_id, conversation_id, status, next_attempt_ms, received_at, envelope, thread_ref)"
        " SELECT e->>'id', e->>'channel', e->>'channel_type', e->>'external_id', e->>'direction', e->>'kind',"
        "  e->>'from', e->>'to', e->>'contact_id', e->>'conversation_id', e->>'status',"
        "  CASE WHEN e->>'direction' = 'outbound' AND e->>'status' = 'queued' THEN 0 END,"
        "  e->>'received_at', e, e->>'thread_ref'"
        " FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(e, i) ORDER BY i"
        " ON CONFLICT (channel, external_id) DO NOTHING RETURNING id";

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The envelopes as one JSON array text, malloc'd. */
static char *envelopes_json(const struct parley_host *h, struct parley_envelope *const *envs, size_t n)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	buf[len++] = '[';
	for (size_t i = 0; i < n; i++) {
		char *j = h->envelope_to_json(envs[i]);
		size_t jl = j ? strlen(j) : 0;
		if (!j || len + jl + 3 > cap) {
			while (j && len + jl + 3 > cap)
				cap *= 2;
			char *nb = j ? realloc(buf, cap) : NULL;
			if (!nb) {
				free(j);
				free(buf);
				return NULL;
			}
			buf = nb;
		}
		if (i)
			buf[len++] = ',';
		memcpy(buf + len, j, jl);
		len += jl;
		free(j);
	}
	buf[len++] = ']';
	buf[len] = '\0';
	return buf;
}

int pg_messages_insert(parley_store_tx *tx, struct parley_envelope *const *envs, size_t n, int *results)
{
	struct pgstore *s = tx->s;
	const struct parley_host *h = s->host;
	if (n == 0)
		return 0;
	int rv = pg_tx_lock_seq(tx);
	if (rv != 0)
		return rv;
	char *json = envelopes_json(h, envs, n);
	if (!json)
		return PARLEY_ENOMEM;
	const char *p[] = {json};
	PGresult *r = pg_tx_exec(tx, insert_sql, 1, p, &rv);
	free(json);
	if (!r)
		return rv;
	/* RETURNING names the inserted rows; the others were already stored under (channel, external_id). */
	int nr = PQntuples(r);
	const char **inserted = malloc(sizeof(*inserted) * (size_t)(nr ? nr : 1));
	size_t *dups = malloc(sizeof(*dups) * n);
	if (!inserted || !dups) {
		free(inserted);
		free(dups);
		PQclear(r);
		return PARLEY_ENOMEM;
	}
	for (int k = 0; k < nr; k++)
		inserted[k] = PQgetvalue(r, k, 0);
	qsort(inserted, (size_t)nr, sizeof(*inserted), cmp_str);
	struct pga ch, ext;
	pga_init(&ch);
	pga_init(&ext);
	size_t ndup = 0;
	for (size_t i = 0; i < n; i++) {
		const char *id = h->envelope_get_str(envs[i], "id");
		results[i] =
		        id && bsearch(&id, inserted, (size_t)nr, sizeof(*inserted), cmp_str) ? 0 : PARLEY_EDUPLICATE;
		if (results[i] != 0) {
			pga_add(&ch, h->envelope_get_str(envs[i], "channel"));
			pga_add(&ext, h->envelope_get_str(envs[i], "external_id"));
			dups[ndup++] = i;
		}
	}
	free(inserted);
	PQclear(r);
	char *arrays[] = {pga_end(&ch), pga_end(&ext)};
	if (ndup == 0) {
		free(arrays[0]);
		free(arrays[1]);
		free(dups);
		return 0;
	}
	/* A new statement, so it sees the concurrent winner the insert waited for. */
	r = pg_tx_exec_arrays(tx,
	                      "SELECT k.i, m.id FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(ch, ext, i)"
	                      " JOIN messages AS m ON m.channel = k.ch AND m.external_id = k.ext",
	                      2, arrays, &rv);
	if (!r) {
		free(dups);
		return rv;
	}
	size_t seen = 0;
	for (int k = 0; k < PQntuples(r); k++) {
		/* k.i counts the duplicates from 1, in the order they were added to the arrays. */
		size_t d = (size_t)strtoull(PQgetvalue(r, k, 0), NULL, 10);
		if (d < 1 || d > ndup)
			continue;
		if (h->envelope_set_str(envs[dups[d - 1]], "id", PQgetvalue(r, k, 1)) != 0)
			rv = PARLEY_EINTERNAL;
		seen++;
	}
	free(dups);
	PQclear(r);
	if (rv == 0 && seen != ndup) {
		s->host->log(s->inst, PARLEY_LOG_ERROR, "postgres %s: a duplicate without a stored message", s->where);
		rv = PARLEY_EIO;
	}
	return rv;
}

int pg_receipts_apply(parley_store_tx *tx, const char *const *channels, const char *const *refs,
                      const char *const *statuses, const char *const *errors, size_t n)
{
	if (n == 0)
		return 0;
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	char now[64];
	pg_now(now);
	char *p[] = {pg_array(channels, n), pg_array(refs, n), pg_array(statuses, n), pg_array(errors, n), strdup(now)};
	int rv;
	/* Several receipts for one message in a batch: the furthest wins, as if applied in any order. */
	PQclear(pg_tx_exec_arrays(
	        tx,
	        "UPDATE messages AS m SET status = r.st, error = coalesce(r.er, m.error), updated_at = $5"
	        " FROM (SELECT DISTINCT ON (ch, ref) ch, ref, st, er"
	        "  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(ch, ref, st, er)"
	        "  ORDER BY ch, ref, " PG_RANK(
	                "st") " DESC) AS r"
	                      " WHERE m.channel = r.ch AND m.provider_id = r.ref AND m.direction = 'outbound'"
	                      " AND " PG_RANK("m.status") " < " PG_RANK("r.st"),
	        5, p, &rv));
	return rv;
}

int pg_message_status_advance(parley_store_tx *tx, const char *channel, const char *provider_id, const char *status,
                              const char *error)
{
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	static const char *const known[] = {"sent", "delivered", "read", "failed"};
	int ok = 0;
	for (size_t i = 0; status && i < 4; i++)
		ok |= strcmp(status, known[i]) == 0;
	if (!ok || !channel || !provider_id)
		return PARLEY_EINVAL;
	return pg_receipts_apply(tx, &channel, &provider_id, &status, &error, 1);
}

int pg_messages_set_owner(parley_store_tx *tx, const char *const *ids, size_t n, const char *contact_id,
                          const char *conversation_id)
{
	if (n == 0)
		return 0;
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	if (!contact_id)
		return PARLEY_EINVAL;
	char *p[] = {pg_array(ids, n), contact_id ? strdup(contact_id) : NULL,
	             conversation_id ? strdup(conversation_id) : NULL};
	if (!conversation_id) {
		/* pg_tx_exec_arrays treats a NULL as out of memory: give the absent one its own statement shape. */
		int rv;
		char *q[] = {p[0], p[1]};
		PQclear(pg_tx_exec_arrays(tx,
		                          "UPDATE messages SET contact_id = $2,"
		                          " envelope = jsonb_set(envelope, '{contact_id}', to_jsonb($2::text))"
		                          " WHERE id = ANY($1::text[])",
		                          2, q, &rv));
		return rv;
	}
	int rv;
	PQclear(pg_tx_exec_arrays(tx,
	                          "UPDATE messages SET contact_id = $2, conversation_id = $3,"
	                          " envelope = envelope || jsonb_build_object('contact_id', $2::text,"
	                          " 'conversation_id', $3::text) WHERE id = ANY($1::text[])",
	                          3, p, &rv));
	return rv;
}

int pg_messages_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg)
{
	int rv;
	const char *p[] = {contact_id};
	PGresult *r = pg_tx_exec(tx, "SELECT id FROM messages WHERE contact_id = $1 ORDER BY seq", 1, p, &rv);
	for (int i = 0; r && rv == 0 && i < PQntuples(r); i++)
		rv = cb(arg, pg_tx_dup(tx, r, i, 0));
	PQclear(r);
	return rv;
}

/* ----------------------------------------------------- reads, no transaction */

int pg_messages_since(void *store, int64_t after_seq, size_t max, parley_store_row_cb cb, void *arg)
{
	struct pgstore *s = store;
	char after[24], lim[24];
	snprintf(after, sizeof(after), "%" PRId64, after_seq);
	pg_limit(lim, max);
	const char *p[] = {after, lim};
	int rv;
	PGresult *r = pg_run(s,
	                     "SELECT seq, id, " PG_ENVELOPE " FROM messages WHERE seq > $1::bigint ORDER BY seq"
	                     " LIMIT $2::bigint",
	                     2, p, &rv);
	for (int i = 0; r && rv == 0 && i < PQntuples(r); i++) {
		struct parley_stored_envelope e = {strtoll(PQgetvalue(r, i, 0), NULL, 10), PQgetvalue(r, i, 1),
		                                   PQgetvalue(r, i, 2)};
		rv = cb(arg, &e);
	}
	PQclear(r);
	return rv;
}
