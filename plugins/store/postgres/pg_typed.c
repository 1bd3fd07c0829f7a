/*
 * pg_typed.c: the typed store contract (store.h) on PostgreSQL.
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
 */
#include "pg_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PGresult *tx_exec(parley_store_tx *tx, const char *sql, int n, const char *const *params, int *rv)
{
	return pg_exec(tx->s, tx->c, sql, n, params, rv);
}

static int tx_cmd(parley_store_tx *tx, const char *sql, int n, const char *const *params, long *rows)
{
	int rv;
	PGresult *r = tx_exec(tx, sql, n, params, &rv);
	if (r && rows)
		*rows = strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return rv;
}

/* Frees the array literals params[0..n) after running sql with them. */
static PGresult *tx_exec_arrays(parley_store_tx *tx, const char *sql, int n, char **params, int *rv)
{
	PGresult *r = NULL;
	*rv = 0;
	for (int i = 0; i < n; i++)
		if (!params[i])
			*rv = PARLEY_ENOMEM;
	if (*rv == 0)
		r = tx_exec(tx, sql, n, (const char *const *)params, rv);
	for (int i = 0; i < n; i++)
		free(params[i]);
	return r;
}

static const char *dup(parley_store_tx *tx, const PGresult *r, int row, int col)
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
	PGresult *r = tx_exec(tx, "COMMIT", 0, NULL, &rv);
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
	int rv = 0;
	if (!tx->seq_locked) {
		PQclear(tx_exec(tx, "SELECT pg_advisory_xact_lock(hashtext('parley.messages.seq'))", 0, NULL, &rv));
		if (rv != 0)
			return rv;
		tx->seq_locked = 1;
	}
	char *json = envelopes_json(h, envs, n);
	if (!json)
		return PARLEY_ENOMEM;
	const char *p[] = {json};
	PGresult *r = tx_exec(tx, insert_sql, 1, p, &rv);
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
	r = tx_exec_arrays(tx,
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
	char now[64];
	pg_now(now);
	char *p[] = {pg_array(channels, n), pg_array(refs, n), pg_array(statuses, n), pg_array(errors, n), strdup(now)};
	int rv;
	/* Several receipts for one message in a batch: the furthest wins, as if applied in any order. */
	PQclear(tx_exec_arrays(
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

static int t_message_status_advance(parley_store_tx *tx, const char *channel, const char *provider_id,
                                    const char *status, const char *error)
{
	static const char *const known[] = {"sent", "delivered", "read", "failed"};
	int ok = 0;
	for (size_t i = 0; status && i < 4; i++)
		ok |= strcmp(status, known[i]) == 0;
	if (!ok || !channel || !provider_id)
		return PARLEY_EINVAL;
	return pg_receipts_apply(tx, &channel, &provider_id, &status, &error, 1);
}

static int t_messages_set_owner(parley_store_tx *tx, const char *const *ids, size_t n, const char *contact_id,
                                const char *conversation_id)
{
	if (n == 0)
		return 0;
	if (!contact_id)
		return PARLEY_EINVAL;
	char *p[] = {pg_array(ids, n), contact_id ? strdup(contact_id) : NULL,
	             conversation_id ? strdup(conversation_id) : NULL};
	if (!conversation_id) {
		/* tx_exec_arrays treats a NULL as out of memory: give the absent one its own statement shape. */
		int rv;
		char *q[] = {p[0], p[1]};
		PQclear(tx_exec_arrays(tx,
		                       "UPDATE messages SET contact_id = $2,"
		                       " envelope = jsonb_set(envelope, '{contact_id}', to_jsonb($2::text))"
		                       " WHERE id = ANY($1::text[])",
		                       2, q, &rv));
		return rv;
	}
	int rv;
	PQclear(tx_exec_arrays(tx,
	                       "UPDATE messages SET contact_id = $2, conversation_id = $3,"
	                       " envelope = envelope || jsonb_build_object('contact_id', $2::text,"
	                       " 'conversation_id', $3::text) WHERE id = ANY($1::text[])",
	                       3, p, &rv));
	return rv;
}

static int t_messages_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg)
{
	int rv;
	const char *p[] = {contact_id};
	PGresult *r = tx_exec(tx, "SELECT id FROM messages WHERE contact_id = $1 ORDER BY seq", 1, p, &rv);
	for (int i = 0; r && rv == 0 && i < PQntuples(r); i++)
		rv = cb(arg, dup(tx, r, i, 0));
	PQclear(r);
	return rv;
}

/* ------------------------------------------------- contacts, identities */

#define CONTACT_COLS "id, name, attributes::text, merged_into, created_at, updated_at"

static void fill_contact(parley_store_tx *tx, const PGresult *r, int i, struct parley_contact_rec *c)
{
	c->id = dup(tx, r, i, 0);
	c->name = dup(tx, r, i, 1);
	c->attributes = dup(tx, r, i, 2);
	c->merged_into = dup(tx, r, i, 3);
	c->created_at = dup(tx, r, i, 4);
	c->updated_at = dup(tx, r, i, 5);
}

static int t_contacts_insert(parley_store_tx *tx, const struct parley_contact_rec *c, size_t n)
{
	if (n == 0)
		return 0;
	struct pga a[6];
	for (int k = 0; k < 6; k++)
		pga_init(&a[k]);
	for (size_t i = 0; i < n; i++) {
		pga_add(&a[0], c[i].id);
		pga_add(&a[1], c[i].name);
		pga_add(&a[2], c[i].attributes);
		pga_add(&a[3], c[i].merged_into);
		pga_add(&a[4], c[i].created_at);
		pga_add(&a[5], c[i].updated_at);
	}
	char now[64];
	pg_now(now);
	char *p[7];
	for (int k = 0; k < 6; k++)
		p[k] = pga_end(&a[k]);
	p[6] = strdup(now);
	int rv;
	PQclear(tx_exec_arrays(tx,
	                       "INSERT INTO contacts (id, name, attributes, merged_into, created_at, updated_at)"
	                       " SELECT id, name, coalesce(attributes::jsonb, '{}'), merged_into,"
	                       "  coalesce(created_at, $7), coalesce(updated_at, created_at, $7)"
	                       " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])"
	                       "  AS u(id, name, attributes, merged_into, created_at, updated_at)"
	                       " ON CONFLICT (id) DO NOTHING",
	                       7, p, &rv));
	return rv;
}

static int t_contacts_lock(parley_store_tx *tx, const char *const *ids, size_t n, struct parley_contact_rec *out,
                           int *found)
{
	for (size_t i = 0; i < n; i++)
		found[i] = 0;
	if (n == 0)
		return 0;
	char *p[] = {pg_array(ids, n)};
	int rv;
	/* In id order, as the core sorts them, so that two transactions lock in one order. */
	PGresult *r = tx_exec_arrays(tx,
	                             "SELECT " CONTACT_COLS " FROM contacts WHERE id = ANY($1::text[])"
	                             " ORDER BY id FOR UPDATE",
	                             1, p, &rv);
	for (int k = 0; r && k < PQntuples(r); k++)
		for (size_t i = 0; i < n; i++)
			if (!found[i] && ids[i] && strcmp(ids[i], PQgetvalue(r, k, 0)) == 0) {
				fill_contact(tx, r, k, &out[i]);
				found[i] = 1;
			}
	PQclear(r);
	return rv;
}

static int t_contact_update(parley_store_tx *tx, const struct parley_contact_rec *c)
{
	char now[64];
	pg_now(now);
	const char *p[] = {c->id, c->name, c->attributes, c->merged_into, c->created_at, c->updated_at, now};
	long rows = 0;
	int rv = tx_cmd(tx,
	                "UPDATE contacts SET name = $2, attributes = coalesce($3::jsonb, attributes), merged_into = $4,"
	                " created_at = coalesce($5, created_at), updated_at = coalesce($6, $7) WHERE id = $1",
	                7, p, &rows);
	return rv == 0 && rows == 0 ? PARLEY_ENOENT : rv;
}

static int t_identities_claim(parley_store_tx *tx, const struct parley_identity_rec *in, size_t n, const char **owners)
{
	if (n == 0)
		return 0;
	struct pga a[4];
	for (int k = 0; k < 4; k++)
		pga_init(&a[k]);
	for (size_t i = 0; i < n; i++) {
		pga_add(&a[0], in[i].urn);
		pga_add(&a[1], in[i].contact_id);
		pga_add(&a[2], in[i].display_name);
		pga_add(&a[3], in[i].created_at);
	}
	char now[64];
	pg_now(now);
	char *p[5];
	for (int k = 0; k < 4; k++)
		p[k] = pga_end(&a[k]);
	p[4] = strdup(now);
	/* The three statements share the literals: keep copies for the two after the insert. */
	char *urns = p[0] ? strdup(p[0]) : NULL, *urns2 = p[0] ? strdup(p[0]) : NULL;
	char *names = p[2] ? strdup(p[2]) : NULL;
	int rv;
	/* Waits for a concurrent claim of the same URN; then skips it if that one committed. */
	PQclear(tx_exec_arrays(tx,
	                       "INSERT INTO identities (urn, contact_id, display_name, created_at)"
	                       " SELECT urn, cid, dn, coalesce(at, $5)"
	                       " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(urn, cid, dn, at)"
	                       " ON CONFLICT (urn) DO NOTHING",
	                       5, p, &rv));
	if (rv == 0) {
		char *q[] = {urns, names};
		urns = names = NULL;
		PQclear(tx_exec_arrays(
		        tx,
		        /* A URN given twice: its last name wins, as if the claims were made one by one. */
		        "UPDATE identities AS i SET display_name = u.dn"
		        " FROM (SELECT DISTINCT ON (urn) urn, dn FROM unnest($1::text[], $2::text[]) WITH ORDINALITY"
		        "  AS v(urn, dn, o) WHERE dn IS NOT NULL ORDER BY urn, o DESC) AS u"
		        " WHERE i.urn = u.urn AND i.display_name IS DISTINCT FROM u.dn",
		        2, q, &rv));
	}
	PGresult *r = NULL;
	if (rv == 0) {
		char *q[] = {urns2};
		urns2 = NULL;
		r = tx_exec_arrays(tx, "SELECT urn, contact_id FROM identities WHERE urn = ANY($1::text[])", 1, q, &rv);
	}
	free(urns);
	free(urns2);
	free(names);
	for (size_t i = 0; i < n; i++) {
		owners[i] = NULL;
		for (int k = 0; r && k < PQntuples(r); k++)
			if (in[i].urn && strcmp(in[i].urn, PQgetvalue(r, k, 0)) == 0)
				owners[i] = dup(tx, r, k, 1);
	}
	PQclear(r);
	return rv;
}

static int t_identities_owner(parley_store_tx *tx, const char *const *urns, size_t n, const char **owners)
{
	for (size_t i = 0; i < n; i++)
		owners[i] = NULL;
	if (n == 0)
		return 0;
	char *p[] = {pg_array(urns, n)};
	int rv;
	PGresult *r =
	        tx_exec_arrays(tx, "SELECT urn, contact_id FROM identities WHERE urn = ANY($1::text[])", 1, p, &rv);
	for (size_t i = 0; i < n; i++)
		for (int k = 0; r && k < PQntuples(r); k++)
			if (urns[i] && strcmp(urns[i], PQgetvalue(r, k, 0)) == 0)
				owners[i] = dup(tx, r, k, 1);
	PQclear(r);
	return rv;
}

static int t_identities_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg)
{
	int rv;
	const char *p[] = {contact_id};
	PGresult *r = tx_exec(tx,
	                      "SELECT urn, contact_id, display_name, created_at FROM identities WHERE contact_id = $1"
	                      " ORDER BY created_at, urn",
	                      1, p, &rv);
	for (int i = 0; r && rv == 0 && i < PQntuples(r); i++) {
		struct parley_identity_rec rec = {dup(tx, r, i, 0), dup(tx, r, i, 1), dup(tx, r, i, 2),
		                                  dup(tx, r, i, 3)};
		rv = cb(arg, &rec);
	}
	PQclear(r);
	return rv;
}

static int t_identities_move(parley_store_tx *tx, const char *const *urns, size_t n, const char *contact_id)
{
	if (n == 0)
		return 0;
	if (!contact_id)
		return PARLEY_EINVAL;
	char *p[] = {pg_array(urns, n), strdup(contact_id)};
	int rv;
	PQclear(tx_exec_arrays(tx, "UPDATE identities SET contact_id = $2 WHERE urn = ANY($1::text[])", 2, p, &rv));
	return rv;
}

/* ---------------------------------------------------------- conversations */

#define CONV_SELECT                                                                                                    \
	"c.id, c.contact_id, c.status, c.assignee, c.team, c.priority, c.labels::text, c.last_channel,"                \
	" c.snoozed_until, c.first_inbound_at, c.last_inbound_at, c.first_response_at, c.resolved_at, c.resolutions,"  \
	" c.created_at, c.updated_at"

static void fill_conv(parley_store_tx *tx, const PGresult *r, int i, struct parley_conversation_rec *c)
{
	c->id = dup(tx, r, i, 0);
	c->contact_id = dup(tx, r, i, 1);
	c->status = dup(tx, r, i, 2);
	c->assignee = dup(tx, r, i, 3);
	c->team = dup(tx, r, i, 4);
	c->priority = dup(tx, r, i, 5);
	c->labels = dup(tx, r, i, 6);
	c->last_channel = dup(tx, r, i, 7);
	c->snoozed_until = dup(tx, r, i, 8);
	c->first_inbound_at = dup(tx, r, i, 9);
	c->last_inbound_at = dup(tx, r, i, 10);
	c->first_response_at = dup(tx, r, i, 11);
	c->resolved_at = dup(tx, r, i, 12);
	c->resolutions = strtoll(PQgetvalue(r, i, 13), NULL, 10);
	c->created_at = dup(tx, r, i, 14);
	c->updated_at = dup(tx, r, i, 15);
}

/* The single conversation a statement returns: 0 and *out, PARLEY_ENOENT, or the error. */
static int one_conv(parley_store_tx *tx, const char *sql, int n, const char *const *p,
                    struct parley_conversation_rec *out)
{
	int rv;
	PGresult *r = tx_exec(tx, sql, n, p, &rv);
	if (r && PQntuples(r) == 0)
		rv = PARLEY_ENOENT;
	else if (r)
		fill_conv(tx, r, 0, out);
	PQclear(r);
	return rv;
}

static int visit_convs(parley_store_tx *tx, const char *sql, int n, const char *const *p, parley_store_row_cb cb,
                       void *arg)
{
	int rv;
	PGresult *r = tx_exec(tx, sql, n, p, &rv);
	for (int i = 0; r && rv == 0 && i < PQntuples(r); i++) {
		struct parley_conversation_rec c;
		fill_conv(tx, r, i, &c);
		rv = cb(arg, &c);
	}
	PQclear(r);
	return rv;
}

static int t_conversations_current(parley_store_tx *tx, const char *const *contact_ids, size_t n,
                                   struct parley_conversation_rec *out, int *found)
{
	for (size_t i = 0; i < n; i++)
		found[i] = 0;
	if (n == 0)
		return 0;
	char *p[] = {pg_array(contact_ids, n)};
	int rv;
	PGresult *r = tx_exec_arrays(tx,
	                             "SELECT DISTINCT ON (c.contact_id) " CONV_SELECT " FROM conversations AS c"
	                             " WHERE c.contact_id = ANY($1::text[])"
	                             " ORDER BY c.contact_id, c.created_at DESC, c.id DESC",
	                             1, p, &rv);
	for (int k = 0; r && k < PQntuples(r); k++)
		for (size_t i = 0; i < n; i++)
			if (!found[i] && contact_ids[i] && strcmp(contact_ids[i], PQgetvalue(r, k, 1)) == 0) {
				fill_conv(tx, r, k, &out[i]);
				found[i] = 1;
			}
	PQclear(r);
	return rv;
}

static int t_conversation_lock(parley_store_tx *tx, const char *id, struct parley_conversation_rec *out)
{
	const char *p[] = {id};
	return one_conv(tx, "SELECT " CONV_SELECT " FROM conversations AS c WHERE c.id = $1 FOR UPDATE", 1, p, out);
}

static int t_conversation_of_ref(parley_store_tx *tx, const char *channel, const char *ref,
                                 struct parley_conversation_rec *out)
{
	const char *p[] = {channel, ref};
	return one_conv(tx,
	                "SELECT " CONV_SELECT " FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id"
	                " WHERE m.channel = $1 AND m.conversation_id IS NOT NULL"
	                " AND (m.external_id = $2 OR m.provider_id = $2) ORDER BY m.seq DESC LIMIT 1",
	                2, p, out);
}

static int t_conversations_put(parley_store_tx *tx, const struct parley_conversation_rec *c, size_t n)
{
	if (n == 0)
		return 0;
	struct pga a[16];
	for (int k = 0; k < 16; k++)
		pga_init(&a[k]);
	for (size_t i = 0; i < n; i++) {
		char res[24];
		snprintf(res, sizeof(res), "%" PRId64, c[i].resolutions);
		const char *v[16] = {c[i].id,
		                     c[i].contact_id,
		                     c[i].status,
		                     c[i].assignee,
		                     c[i].team,
		                     c[i].priority,
		                     c[i].labels,
		                     c[i].last_channel,
		                     c[i].snoozed_until,
		                     c[i].first_inbound_at,
		                     c[i].last_inbound_at,
		                     c[i].first_response_at,
		                     c[i].resolved_at,
		                     res,
		                     c[i].created_at,
		                     c[i].updated_at};
		for (int k = 0; k < 16; k++)
			pga_add(&a[k], v[k]);
	}
	char now[64];
	pg_now(now);
	char *p[17];
	for (int k = 0; k < 16; k++)
		p[k] = pga_end(&a[k]);
	p[16] = strdup(now);
	int rv;
	PQclear(tx_exec_arrays(
	        tx,
	        "INSERT INTO conversations (id, contact_id, status, assignee, team, priority, labels, last_channel,"
	        " snoozed_until, first_inbound_at, last_inbound_at, first_response_at, resolved_at, resolutions,"
	        " created_at, updated_at, queued_at)"
	        /* A conversation given twice: the last row wins (ON CONFLICT may not touch a row twice). */
	        " SELECT DISTINCT ON (id) id, cid, coalesce(st, 'open'), asg, team, prio, coalesce(lab::jsonb, '[]'), "
	        "lc,"
	        "  sn, fi, li, fr, ra, coalesce(res, 0), coalesce(ca, $17), coalesce(ua, ca, $17),"
	        /* Waiting in its team's queue (a team, no assignee, open or pending): since now, or since it began. */
	        "  CASE WHEN coalesce(team, '') <> '' AND coalesce(asg, '') = '' AND coalesce(st, 'open') IN ('open', "
	        "'pending')"
	        "   THEN coalesce(ua, ca, $17) END"
	        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
	        "  $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[],"
	        "  $15::text[], $16::text[]) WITH ORDINALITY"
	        "  AS u(id, cid, st, asg, team, prio, lab, lc, sn, fi, li, fr, ra, res, ca, ua, o)"
	        " ORDER BY id, o DESC"
	        " ON CONFLICT (id) DO UPDATE SET contact_id = excluded.contact_id, status = excluded.status,"
	        " assignee = excluded.assignee, team = excluded.team, priority = excluded.priority,"
	        " labels = excluded.labels, last_channel = excluded.last_channel,"
	        " snoozed_until = excluded.snoozed_until, first_inbound_at = excluded.first_inbound_at,"
	        " last_inbound_at = excluded.last_inbound_at, first_response_at = excluded.first_response_at,"
	        " resolved_at = excluded.resolved_at, resolutions = excluded.resolutions,"
	        " created_at = excluded.created_at, updated_at = excluded.updated_at,"
	        " queued_at = CASE WHEN excluded.queued_at IS NOT NULL"
	        "  THEN coalesce(conversations.queued_at, excluded.queued_at) END",
	        17, p, &rv));
	return rv;
}

static int t_conversations_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg)
{
	const char *p[] = {contact_id};
	return visit_convs(tx,
	                   "SELECT " CONV_SELECT " FROM conversations AS c WHERE c.contact_id = $1"
	                   " ORDER BY c.created_at, c.id",
	                   1, p, cb, arg);
}

static int t_conversations_due(parley_store_tx *tx, const char *now, size_t max, parley_store_row_cb cb, void *arg)
{
	char lim[24];
	pg_limit(lim, max);
	const char *p[] = {now, lim};
	return visit_convs(tx,
	                   "SELECT " CONV_SELECT " FROM conversations AS c WHERE c.status = 'snoozed'"
	                   " AND c.snoozed_until <= $1 ORDER BY c.snoozed_until, c.id LIMIT $2::bigint"
	                   " FOR UPDATE SKIP LOCKED",
	                   2, p, cb, arg);
}

static int t_conversation_events_append(parley_store_tx *tx, const struct parley_conversation_event_rec *e, size_t n)
{
	if (n == 0)
		return 0;
	struct pga a[4];
	for (int k = 0; k < 4; k++)
		pga_init(&a[k]);
	for (size_t i = 0; i < n; i++) {
		pga_add(&a[0], e[i].conversation_id);
		pga_add(&a[1], e[i].type);
		pga_add(&a[2], e[i].data);
		pga_add(&a[3], e[i].at);
	}
	int rv = 0;
	/* The same lock as the messages' seqs: event seqs too become visible in order (the events stream tails them).
	 */
	if (!tx->seq_locked) {
		PQclear(tx_exec(tx, "SELECT pg_advisory_xact_lock(hashtext('parley.messages.seq'))", 0, NULL, &rv));
		if (rv != 0) {
			for (int k = 0; k < 4; k++)
				free(pga_end(&a[k]));
			return rv;
		}
		tx->seq_locked = 1;
	}
	char now[64];
	pg_now(now);
	char *p[5];
	for (int k = 0; k < 4; k++)
		p[k] = pga_end(&a[k]);
	p[4] = strdup(now);
	/* In the order given: seqs are what orders a conversation's history. */
	PQclear(tx_exec_arrays(tx,
	                       "INSERT INTO conversation_events (conversation_id, type, data, at)"
	                       " SELECT cid, type, coalesce(data::jsonb, '{}'), coalesce(at, $5)"
	                       " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY"
	                       "  AS u(cid, type, data, at, i) ORDER BY i",
	                       5, p, &rv));
	return rv;
}

static int t_note_insert(parley_store_tx *tx, const char *id, const char *conversation_id, const char *author,
                         const char *text, const char *created_at)
{
	char now[64];
	pg_now(now);
	const char *p[] = {id, conversation_id, author, text, created_at ? created_at : now};
	return tx_cmd(tx,
	              "INSERT INTO notes (id, conversation_id, author, text, created_at) VALUES ($1, $2, $3, $4, $5)",
	              5, p, NULL);
}

/* ----------------------------------------------------------------- merges */

static int t_merge_insert(parley_store_tx *tx, const struct parley_merge_rec *m)
{
	char now[64];
	pg_now(now);
	const char *p[] = {m->id,       m->from_id, m->into_id, m->moved ? m->moved : "{}", m->at ? m->at : now,
	                   m->undone_at};
	return tx_cmd(tx,
	              "INSERT INTO contact_merges (id, from_id, into_id, moved, at, undone_at)"
	              " VALUES ($1, $2, $3, $4::jsonb, $5, $6)",
	              6, p, NULL);
}

static int t_merge_lock(parley_store_tx *tx, const char *id, struct parley_merge_rec *out)
{
	const char *p[] = {id};
	int rv;
	PGresult *r = tx_exec(tx,
	                      "SELECT id, from_id, into_id, moved::text, at, undone_at FROM contact_merges"
	                      " WHERE id = $1 FOR UPDATE",
	                      1, p, &rv);
	if (r && PQntuples(r) == 0) {
		rv = PARLEY_ENOENT;
	} else if (r) {
		out->id = dup(tx, r, 0, 0);
		out->from_id = dup(tx, r, 0, 1);
		out->into_id = dup(tx, r, 0, 2);
		out->moved = dup(tx, r, 0, 3);
		out->at = dup(tx, r, 0, 4);
		out->undone_at = dup(tx, r, 0, 5);
	}
	PQclear(r);
	return rv;
}

static int t_merge_set_undone(parley_store_tx *tx, const char *id, const char *undone_at)
{
	const char *p[] = {id, undone_at};
	long rows = 0;
	int rv = tx_cmd(tx, "UPDATE contact_merges SET undone_at = $2 WHERE id = $1", 2, p, &rows);
	return rv == 0 && rows == 0 ? PARLEY_ENOENT : rv;
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
        .message_status_advance = t_message_status_advance,
        .messages_set_owner = t_messages_set_owner,
        .messages_of_contact = t_messages_of_contact,
        .contacts_insert = t_contacts_insert,
        .contacts_lock = t_contacts_lock,
        .contact_update = t_contact_update,
        .identities_claim = t_identities_claim,
        .identities_owner = t_identities_owner,
        .identities_of_contact = t_identities_of_contact,
        .identities_move = t_identities_move,
        .conversations_current = t_conversations_current,
        .conversation_lock = t_conversation_lock,
        .conversation_of_ref = t_conversation_of_ref,
        .conversations_put = t_conversations_put,
        .conversations_of_contact = t_conversations_of_contact,
        .conversations_due = t_conversations_due,
        .conversation_events_append = t_conversation_events_append,
        .note_insert = t_note_insert,
        .merge_insert = t_merge_insert,
        .merge_lock = t_merge_lock,
        .merge_set_undone = t_merge_set_undone,
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
};
