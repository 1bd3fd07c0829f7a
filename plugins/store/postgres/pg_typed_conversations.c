/*
 * pg_typed_conversations.c: conversations, their events and notes of the
 * typed contract on PostgreSQL (see pg_typed.c).
 */
#include "pg_typed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------- conversations */

#define CONV_SELECT                                                                                                    \
	"c.id, c.contact_id, c.status, c.assignee, c.team, c.priority, c.labels::text, c.last_channel,"                \
	" c.snoozed_until, c.first_inbound_at, c.last_inbound_at, c.first_response_at, c.resolved_at, c.resolutions,"  \
	" c.created_at, c.updated_at"

static void fill_conv(parley_store_tx *tx, const PGresult *r, int i, struct parley_conversation_rec *c)
{
	c->id = pg_tx_dup(tx, r, i, 0);
	c->contact_id = pg_tx_dup(tx, r, i, 1);
	c->status = pg_tx_dup(tx, r, i, 2);
	c->assignee = pg_tx_dup(tx, r, i, 3);
	c->team = pg_tx_dup(tx, r, i, 4);
	c->priority = pg_tx_dup(tx, r, i, 5);
	c->labels = pg_tx_dup(tx, r, i, 6);
	c->last_channel = pg_tx_dup(tx, r, i, 7);
	c->snoozed_until = pg_tx_dup(tx, r, i, 8);
	c->first_inbound_at = pg_tx_dup(tx, r, i, 9);
	c->last_inbound_at = pg_tx_dup(tx, r, i, 10);
	c->first_response_at = pg_tx_dup(tx, r, i, 11);
	c->resolved_at = pg_tx_dup(tx, r, i, 12);
	c->resolutions = strtoll(PQgetvalue(r, i, 13), NULL, 10);
	c->created_at = pg_tx_dup(tx, r, i, 14);
	c->updated_at = pg_tx_dup(tx, r, i, 15);
}

/* The single conversation a statement returns: 0 and *out, PARLEY_ENOENT, or the error. */
static int one_conv(parley_store_tx *tx, const char *sql, int n, const char *const *p,
                    struct parley_conversation_rec *out)
{
	int rv;
	PGresult *r = pg_tx_exec(tx, sql, n, p, &rv);
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
	PGresult *r = pg_tx_exec(tx, sql, n, p, &rv);
	for (int i = 0; r && rv == 0 && i < PQntuples(r); i++) {
		struct parley_conversation_rec c;
		fill_conv(tx, r, i, &c);
		rv = cb(arg, &c);
	}
	PQclear(r);
	return rv;
}

int pg_conversations_current(parley_store_tx *tx, const char *const *contact_ids, size_t n,
                             struct parley_conversation_rec *out, int *found)
{
	for (size_t i = 0; i < n; i++)
		found[i] = 0;
	if (n == 0)
		return 0;
	char *p[] = {pg_array(contact_ids, n)};
	int rv;
	PGresult *r = pg_tx_exec_arrays(tx,
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

int pg_conversation_lock(parley_store_tx *tx, const char *id, struct parley_conversation_rec *out)
{
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	const char *p[] = {id};
	return one_conv(tx, "SELECT " CONV_SELECT " FROM conversations AS c WHERE c.id = $1 FOR UPDATE", 1, p, out);
}

int pg_conversation_of_ref(parley_store_tx *tx, const char *channel, const char *ref,
                           struct parley_conversation_rec *out)
{
	const char *p[] = {channel, ref};
	return one_conv(tx,
	                "SELECT " CONV_SELECT " FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id"
	                " WHERE m.channel = $1 AND m.conversation_id IS NOT NULL"
	                " AND (m.external_id = $2 OR m.provider_id = $2) ORDER BY m.seq DESC LIMIT 1",
	                2, p, out);
}

int pg_conversations_put(parley_store_tx *tx, const struct parley_conversation_rec *c, size_t n)
{
	if (n == 0)
		return 0;
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
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
	PQclear(pg_tx_exec_arrays(
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

int pg_conversations_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg)
{
	const char *p[] = {contact_id};
	return visit_convs(tx,
	                   "SELECT " CONV_SELECT " FROM conversations AS c WHERE c.contact_id = $1"
	                   " ORDER BY c.created_at, c.id",
	                   1, p, cb, arg);
}

int pg_conversations_due(parley_store_tx *tx, const char *now, size_t max, parley_store_row_cb cb, void *arg)
{
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	char lim[24];
	pg_limit(lim, max);
	const char *p[] = {now, lim};
	return visit_convs(tx,
	                   "SELECT " CONV_SELECT " FROM conversations AS c WHERE c.status = 'snoozed'"
	                   " AND c.snoozed_until <= $1 ORDER BY c.snoozed_until, c.id LIMIT $2::bigint"
	                   " FOR UPDATE SKIP LOCKED",
	                   2, p, cb, arg);
}

int pg_conversation_events_append(parley_store_tx *tx, const struct parley_conversation_event_rec *e, size_t n)
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
	/* The same lock as the messages' seqs: event seqs too become visible in order (the events stream tails them).
	 */
	int rv = pg_tx_lock_seq(tx);
	if (rv != 0) {
		for (int k = 0; k < 4; k++)
			free(pga_end(&a[k]));
		return rv;
	}
	char now[64];
	pg_now(now);
	char *p[5];
	for (int k = 0; k < 4; k++)
		p[k] = pga_end(&a[k]);
	p[4] = strdup(now);
	/* In the order given: seqs are what orders a conversation's history. */
	PQclear(pg_tx_exec_arrays(
	        tx,
	        /* With each row, its actor (data.by) and the conversation's holder and channel. */
	        "INSERT INTO conversation_events (conversation_id, type, data, at, actor, agent, team,"
	        " channel, at_ms) SELECT u.cid, u.type, coalesce(u.data::jsonb, '{}'), coalesce(u.at, $5),"
	        " u.data::jsonb->>'by', c.assignee, c.team, c.last_channel, parley_ms(coalesce(u.at, $5))"
	        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY"
	        "  AS u(cid, type, data, at, i) LEFT JOIN conversations AS c ON c.id = u.cid"
	        " ORDER BY u.i",
	        5, p, &rv));
	return rv;
}

int pg_note_insert(parley_store_tx *tx, const char *id, const char *conversation_id, const char *author,
                   const char *text, const char *created_at)
{
	char now[64];
	pg_now(now);
	const char *p[] = {id, conversation_id, author, text, created_at ? created_at : now};
	return pg_tx_cmd(
	        tx, "INSERT INTO notes (id, conversation_id, author, text, created_at) VALUES ($1, $2, $3, $4, $5)", 5,
	        p, NULL);
}
