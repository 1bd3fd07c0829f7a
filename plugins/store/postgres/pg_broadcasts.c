/*
 * pg_broadcasts.c: the customer-service window and broadcasts (store.h,
 * ABI 1.4) on PostgreSQL (migration 9), as typed_broadcasts.c does on
 * SQLite.  Reads and single updates are one statement each; a broadcast's
 * insert (with all its recipients, unnested from arrays) and its
 * cancellation are one transaction each; recipients_set runs in the
 * caller's.  A recipient moves only from the state it is read in (WHERE
 * state = ...), so two nodes never both move one.
 */
#include "pg_typed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * What a recipient shows: its own state until its message is settled, then
 * how far the message got (receipts).  The message's row decides once it is
 * settled, so a crash between the outbox's record of a send and the
 * recipient's still counts the send.
 */
#define SHOWN                                                                                                          \
	"CASE WHEN r.state IN ('pending', 'queued', 'sending') AND (m.status IS NULL OR m.status IN ('queued',"        \
	" 'retry', 'sending')) THEN 'queued' WHEN r.state IN ('queued', 'sending', 'sent') THEN CASE m.status"         \
	" WHEN 'delivered' THEN 'delivered' WHEN 'read' THEN 'read' WHEN 'failed' THEN 'failed' WHEN 'dropped'"        \
	" THEN 'cancelled' ELSE 'sent' END ELSE r.state END"
#define BROADCAST_COLS "id, state, spec::text, created_by, created_at, updated_at"

static int visit_rows(struct pgstore *s, const char *sql, int n, const char *const *p,
                      int (*row)(const PGresult *, int, parley_store_row_cb, void *), int need_row,
                      parley_store_row_cb cb, void *arg)
{
	int rv;
	PGresult *r = pg_run(s, sql, n, p, &rv);
	if (!r)
		return rv;
	int rows = PQntuples(r);
	for (int i = 0; rv == 0 && i < rows; i++)
		rv = row(r, i, cb, arg);
	PQclear(r);
	return rv == 0 && need_row && rows == 0 ? PARLEY_ENOENT : rv;
}

int pg_window_last_inbound(void *store, const char *channel, const char *urn, char **at)
{
	if (!channel || !urn || !at)
		return PARLEY_EINVAL;
	*at = NULL;
	const char *p[] = {channel, urn};
	int rv;
	PGresult *r = pg_run(store,
	                     "SELECT least(coalesce(envelope->>'sent_at', received_at), received_at) FROM messages"
	                     " WHERE seq = (SELECT max(s) FROM (SELECT max(seq) AS s FROM messages WHERE channel = $1"
	                     "  AND from_urn = $2 AND direction = 'inbound' AND kind = 'message' UNION ALL"
	                     "  SELECT max(seq) FROM messages WHERE contact_id = (SELECT contact_id FROM identities"
	                     "  WHERE urn = $2) AND channel = $1 AND direction = 'inbound' AND kind = 'message') AS x)",
	                     2, p, &rv);
	if (!r)
		return rv;
	const char *v = PQntuples(r) ? pg_val(r, 0, 0) : NULL;
	rv = v ? ((*at = strdup(v)) ? 0 : PARLEY_ENOMEM) : PARLEY_ENOENT;
	PQclear(r);
	return rv;
}

static int candidate_row(const PGresult *r, int i, parley_store_row_cb cb, void *arg)
{
	const char *opt = pg_val(r, i, 1);
	struct parley_broadcast_recipient_rec rec = {.contact_id = pg_val(r, i, 0),
	                                             .opted_out = opt && opt[0] == 't',
	                                             .channel = pg_val(r, i, 2),
	                                             .urn = pg_val(r, i, 3)};
	return cb(arg, &rec);
}

int pg_broadcast_candidates(void *store, const struct parley_segment_term *terms, size_t n, const char *channel,
                            parley_store_row_cb cb, void *arg)
{
	if (n > 100)
		return PARLEY_EINVAL;
	const char **p = calloc(2 * n + 1, sizeof(*p));
	char *sql = NULL;
	size_t len = 0;
	FILE *f = p ? open_memstream(&sql, &len) : NULL;
	if (!f) {
		free(p);
		return PARLEY_ENOMEM;
	}
	fputs("SELECT c.id, coalesce(c.attributes->'opt_out' = 'true'::jsonb, false), m.channel, m.from_urn"
	      " FROM contacts c LEFT JOIN LATERAL (SELECT x.channel, x.from_urn FROM messages x"
	      " WHERE x.contact_id = c.id AND x.direction = 'inbound' AND x.kind = 'message'"
	      " AND ($1::text IS NULL OR x.channel = $1::text) ORDER BY x.seq DESC LIMIT 1) m ON true"
	      " WHERE c.merged_into IS NULL",
	      f);
	int np = 1, bad = 0;
	p[0] = channel;
	for (size_t i = 0; i < n; i++) {
		const struct parley_segment_term *t = &terms[i];
		int k = ++np;
		p[k - 1] = t->key;
		if (!t->kind || !t->key) {
			bad = 1;
		} else if (strcmp(t->kind, "label") == 0) {
			fprintf(f,
			        " AND EXISTS (SELECT 1 FROM conversations v WHERE v.contact_id = c.id AND v.labels ? "
			        "$%d)",
			        k);
		} else if (strcmp(t->kind, "channel") == 0) {
			fprintf(f,
			        " AND EXISTS (SELECT 1 FROM messages x WHERE x.contact_id = c.id AND x.channel = $%d"
			        " AND x.direction = 'inbound')",
			        k);
		} else if (strcmp(t->kind, "attr") == 0 && t->value) {
			int v = ++np;
			p[v - 1] = t->value;
			fprintf(f,
			        " AND (CASE jsonb_typeof(c.attributes->$%d) WHEN 'string' THEN c.attributes->>$%d"
			        " ELSE (c.attributes->$%d)::text END) = $%d",
			        k, k, k, v);
		} else if (strcmp(t->kind, "attr") == 0) {
			fprintf(f,
			        " AND c.attributes ? $%d AND c.attributes->$%d NOT IN ('false'::jsonb, 'null'::jsonb)",
			        k, k);
		} else {
			bad = 1;
		}
	}
	fputs(" ORDER BY c.id", f);
	fclose(f);
	int rv = bad ? PARLEY_EINVAL : visit_rows(store, sql, np, p, candidate_row, 0, cb, arg);
	free(sql);
	free(p);
	return rv;
}

int pg_broadcast_insert(void *store, const struct parley_broadcast_rec *b,
                        const struct parley_broadcast_recipient_rec *r, size_t n)
{
	if (!b || !b->id || !b->state || !b->spec)
		return PARLEY_EINVAL;
	parley_store_tx *tx;
	int rv = pg_tx_begin(store, &tx);
	if (rv != 0)
		return rv;
	const char *p[] = {b->id, b->state, b->spec, b->created_by, b->created_at, b->updated_at};
	rv = pg_tx_cmd(tx,
	               "INSERT INTO broadcasts (id, state, spec, created_by, created_at, updated_at)"
	               " VALUES ($1, $2, $3::jsonb, $4, $5, $6)",
	               6, p, NULL);
	if (rv == 0 && n > 0) {
		struct pga cols[7];
		for (int k = 0; k < 7; k++)
			pga_init(&cols[k]);
		for (size_t i = 0; i < n; i++) {
			pga_add(&cols[0], r[i].contact_id);
			pga_add(&cols[1], r[i].channel);
			pga_add(&cols[2], r[i].urn);
			pga_add(&cols[3], r[i].state);
			pga_add(&cols[4], r[i].reason);
			pga_add(&cols[5], r[i].message_id);
			pga_add(&cols[6], r[i].updated_at ? r[i].updated_at : b->created_at);
		}
		char *a[8] = {strdup(b->id)};
		for (int k = 0; k < 7; k++)
			a[k + 1] = pga_end(&cols[k]);
		PGresult *res = pg_tx_exec_arrays(tx,
		                                  "INSERT INTO broadcast_recipients (broadcast_id, contact_id, "
		                                  "channel, urn, state, reason, message_id,"
		                                  " updated_at) SELECT $1, * FROM unnest($2::text[], $3::text[], "
		                                  "$4::text[], $5::text[], $6::text[],"
		                                  " $7::text[], $8::text[])",
		                                  8, a, &rv);
		PQclear(res);
	}
	if (rv == 0)
		return pg_tx_commit(tx);
	pg_tx_rollback(tx);
	return rv;
}

static int broadcast_row(const PGresult *r, int i, parley_store_row_cb cb, void *arg)
{
	struct parley_broadcast_rec b = {pg_val(r, i, 0), pg_val(r, i, 1), pg_val(r, i, 2),
	                                 pg_val(r, i, 3), pg_val(r, i, 4), pg_val(r, i, 5)};
	return cb(arg, &b);
}

int pg_broadcast_get(void *store, const char *id, parley_store_row_cb cb, void *arg)
{
	const char *p[] = {id};
	return id ? visit_rows(store, "SELECT " BROADCAST_COLS " FROM broadcasts WHERE id = $1", 1, p, broadcast_row, 1,
	                       cb, arg)
	          : PARLEY_EINVAL;
}

int pg_broadcasts_list(void *store, const char *state, parley_store_row_cb cb, void *arg)
{
	const char *p[] = {state};
	return visit_rows(store,
	                  "SELECT " BROADCAST_COLS " FROM broadcasts WHERE $1::text IS NULL OR state = $1::text"
	                  " ORDER BY created_at, id",
	                  1, p, broadcast_row, 0, cb, arg);
}

static int count_row(const PGresult *r, int i, parley_store_row_cb cb, void *arg)
{
	const char *n = pg_val(r, i, 1);
	struct parley_broadcast_count c = {pg_val(r, i, 0), n ? strtoll(n, NULL, 10) : 0};
	return cb(arg, &c);
}

int pg_broadcast_counts(void *store, const char *id, parley_store_row_cb cb, void *arg)
{
	const char *p[] = {id};
	return id ? visit_rows(store,
	                       "SELECT " SHOWN " AS shown, count(*) FROM broadcast_recipients r"
	                       " LEFT JOIN messages m ON m.id = r.message_id WHERE r.broadcast_id = $1"
	                       " GROUP BY shown ORDER BY shown",
	                       1, p, count_row, 0, cb, arg)
	          : PARLEY_EINVAL;
}

static int recipient_row(const PGresult *r, int i, parley_store_row_cb cb, void *arg)
{
	struct parley_broadcast_recipient_rec rec = {.broadcast_id = pg_val(r, i, 0),
	                                             .contact_id = pg_val(r, i, 1),
	                                             .channel = pg_val(r, i, 2),
	                                             .urn = pg_val(r, i, 3),
	                                             .state = pg_val(r, i, 4),
	                                             .reason = pg_val(r, i, 5),
	                                             .message_id = pg_val(r, i, 6),
	                                             .updated_at = pg_val(r, i, 7),
	                                             .status = pg_val(r, i, 8)};
	return cb(arg, &rec);
}

int pg_broadcast_recipients(void *store, const char *id, const char *after_contact, size_t max, parley_store_row_cb cb,
                            void *arg)
{
	char lim[24];
	pg_limit(lim, max);
	const char *p[] = {id, after_contact ? after_contact : "", lim};
	return id ? visit_rows(
	                    store,
	                    "SELECT r.broadcast_id, r.contact_id, r.channel, r.urn, r.state, coalesce(r.reason,"
	                    " CASE WHEN m.status = 'failed' THEN m.error END), r.message_id, r.updated_at, " SHOWN
	                    " FROM broadcast_recipients r LEFT JOIN messages m ON m.id = r.message_id"
	                    " WHERE r.broadcast_id = $1 AND r.contact_id > $2 ORDER BY r.contact_id LIMIT $3::bigint",
	                    3, p, recipient_row, 0, cb, arg)
	          : PARLEY_EINVAL;
}

static int pending_row(const PGresult *r, int i, parley_store_row_cb cb, void *arg)
{
	const char *opt = pg_val(r, i, 4);
	struct parley_broadcast_recipient_rec rec = {.broadcast_id = pg_val(r, i, 0),
	                                             .contact_id = pg_val(r, i, 1),
	                                             .channel = pg_val(r, i, 2),
	                                             .urn = pg_val(r, i, 3),
	                                             .state = "pending",
	                                             .opted_out = opt && opt[0] == 't',
	                                             .conversation_id = pg_val(r, i, 5)};
	return cb(arg, &rec);
}

int pg_broadcast_pending(void *store, const char *id, const char *channel, size_t max, parley_store_row_cb cb,
                         void *arg)
{
	char lim[24];
	pg_limit(lim, max);
	const char *p[] = {id, channel, lim};
	return id && channel ? visit_rows(store,
	                                  "SELECT r.broadcast_id, r.contact_id, r.channel, r.urn,"
	                                  " coalesce(c.attributes->'opt_out' = 'true'::jsonb, false),"
	                                  " (SELECT v.id FROM conversations v WHERE v.contact_id = r.contact_id"
	                                  "  ORDER BY v.created_at DESC, v.id DESC LIMIT 1)"
	                                  " FROM broadcast_recipients r LEFT JOIN contacts c ON c.id = r.contact_id"
	                                  " WHERE r.broadcast_id = $1 AND r.state = 'pending' AND r.channel = $2"
	                                  " ORDER BY r.contact_id LIMIT $3::bigint",
	                                  3, p, pending_row, 0, cb, arg)
	                     : PARLEY_EINVAL;
}

int pg_broadcast_recipients_set(parley_store_tx *tx, const struct parley_broadcast_recipient_rec *r, size_t n,
                                int64_t *moved)
{
	if (moved)
		*moved = 0;
	if (n == 0)
		return 0;
	char now[64];
	pg_now(now);
	struct pga cols[6], ids;
	for (int k = 0; k < 6; k++)
		pga_init(&cols[k]);
	pga_init(&ids);
	for (size_t i = 0; i < n; i++) {
		pga_add(&cols[0], r[i].broadcast_id);
		pga_add(&cols[1], r[i].contact_id);
		pga_add(&cols[2], r[i].state);
		pga_add(&cols[3], r[i].reason);
		pga_add(&cols[4], r[i].message_id);
		pga_add(&cols[5], r[i].updated_at ? r[i].updated_at : now);
		if (r[i].message_id)
			pga_add(&ids, r[i].message_id);
	}
	char *a[6];
	for (int k = 0; k < 6; k++)
		a[k] = pga_end(&cols[k]);
	int rv;
	PGresult *res = pg_tx_exec_arrays(
	        tx,
	        "WITH u AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
	        "$6::text[])"
	        " AS u(bid, cid, state, reason, mid, at)), moved AS (UPDATE broadcast_recipients r SET state = u.state,"
	        " reason = u.reason, message_id = u.mid, updated_at = u.at FROM u WHERE r.broadcast_id = u.bid"
	        " AND r.contact_id = u.cid AND r.state = 'pending' RETURNING r.message_id)"
	        " SELECT count(*) FROM moved",
	        6, a, &rv);
	if (res && moved && PQntuples(res))
		*moved = strtoll(pg_val(res, 0, 0) ? pg_val(res, 0, 0) : "0", NULL, 10);
	PQclear(res);
	char *m[1] = {pga_end(&ids)};
	if (rv == 0) {
		res = pg_tx_exec_arrays(tx, "UPDATE messages SET priority = 1 WHERE id = ANY($1::text[])", 1, m, &rv);
		PQclear(res);
	} else {
		free(m[0]);
	}
	return rv;
}

int pg_broadcast_recipient_advance(void *store, const char *message_id, const char *from, const char *to,
                                   const char *reason)
{
	if (!message_id || !from || !to)
		return PARLEY_EINVAL;
	char now[64];
	pg_now(now);
	const char *p[] = {message_id, from, to, reason, now};
	long rows = 0;
	int rv = pg_run_cmd(store,
	                    "UPDATE broadcast_recipients SET state = $3, reason = coalesce($4, reason), updated_at = $5"
	                    " WHERE message_id = $1 AND state = $2",
	                    5, p, &rows);
	return rv == 0 && rows == 0 ? PARLEY_ENOENT : rv;
}

int pg_broadcast_set_state(void *store, const char *id, const char *state, const char *at, int64_t *n)
{
	if (!id || !state || !at)
		return PARLEY_EINVAL;
	parley_store_tx *tx;
	int rv = pg_tx_begin(store, &tx);
	if (rv != 0)
		return rv;
	const char *p[] = {id, state, at};
	long rows = 0, cancelled = 0;
	rv = pg_tx_cmd(tx, "UPDATE broadcasts SET state = $2, updated_at = $3 WHERE id = $1", 3, p, &rows);
	if (rv == 0 && rows == 0)
		rv = PARLEY_ENOENT;
	if (rv == 0 && strcmp(state, "cancelled") == 0) {
		const char *q[] = {id, at};
		rv = pg_tx_cmd(tx,
		               "UPDATE broadcast_recipients SET state = 'cancelled', updated_at = $2"
		               " WHERE broadcast_id = $1 AND state IN ('pending', 'queued')",
		               2, q, &cancelled);
	}
	if (rv != 0) {
		pg_tx_rollback(tx);
		return rv;
	}
	rv = pg_tx_commit(tx);
	if (rv == 0 && n)
		*n = cancelled;
	return rv;
}
