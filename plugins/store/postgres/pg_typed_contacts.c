/*
 * pg_typed_contacts.c: contacts, identities and reversible merges of the
 * typed contract on PostgreSQL (see pg_typed.c).
 */
#include "pg_typed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------- contacts, identities */

#define CONTACT_COLS "id, name, attributes::text, merged_into, created_at, updated_at"

static void fill_contact(parley_store_tx *tx, const PGresult *r, int i, struct parley_contact_rec *c)
{
	c->id = pg_tx_dup(tx, r, i, 0);
	c->name = pg_tx_dup(tx, r, i, 1);
	c->attributes = pg_tx_dup(tx, r, i, 2);
	c->merged_into = pg_tx_dup(tx, r, i, 3);
	c->created_at = pg_tx_dup(tx, r, i, 4);
	c->updated_at = pg_tx_dup(tx, r, i, 5);
}

int pg_contacts_insert(parley_store_tx *tx, const struct parley_contact_rec *c, size_t n)
{
	if (n == 0)
		return 0;
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
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
	PQclear(pg_tx_exec_arrays(tx,
	                          "INSERT INTO contacts (id, name, attributes, merged_into, created_at, updated_at)"
	                          " SELECT id, name, coalesce(attributes::jsonb, '{}'), merged_into,"
	                          "  coalesce(created_at, $7), coalesce(updated_at, created_at, $7)"
	                          " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])"
	                          "  AS u(id, name, attributes, merged_into, created_at, updated_at)"
	                          " ON CONFLICT (id) DO NOTHING",
	                          7, p, &rv));
	return rv;
}

int pg_contacts_lock(parley_store_tx *tx, const char *const *ids, size_t n, struct parley_contact_rec *out, int *found)
{
	for (size_t i = 0; i < n; i++)
		found[i] = 0;
	if (n == 0)
		return 0;
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	char *p[] = {pg_array(ids, n)};
	int rv;
	/* In id order, as the core sorts them, so that two transactions lock in one order. */
	PGresult *r = pg_tx_exec_arrays(tx,
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

int pg_contact_update(parley_store_tx *tx, const struct parley_contact_rec *c)
{
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	char now[64];
	pg_now(now);
	const char *p[] = {c->id, c->name, c->attributes, c->merged_into, c->created_at, c->updated_at, now};
	long rows = 0;
	int rv = pg_tx_cmd(
	        tx,
	        "UPDATE contacts SET name = $2, attributes = coalesce($3::jsonb, attributes), merged_into = $4,"
	        " created_at = coalesce($5, created_at), updated_at = coalesce($6, $7) WHERE id = $1",
	        7, p, &rows);
	return rv == 0 && rows == 0 ? PARLEY_ENOENT : rv;
}

int pg_identities_claim(parley_store_tx *tx, const struct parley_identity_rec *in, size_t n, const char **owners)
{
	if (n == 0)
		return 0;
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
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
	PQclear(pg_tx_exec_arrays(tx,
	                          "INSERT INTO identities (urn, contact_id, display_name, created_at)"
	                          " SELECT urn, cid, dn, coalesce(at, $5)"
	                          " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(urn, cid, dn, at)"
	                          " ON CONFLICT (urn) DO NOTHING",
	                          5, p, &rv));
	if (rv == 0) {
		char *q[] = {urns, names};
		urns = names = NULL;
		PQclear(pg_tx_exec_arrays(
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
		r = pg_tx_exec_arrays(tx, "SELECT urn, contact_id FROM identities WHERE urn = ANY($1::text[])", 1, q,
		                      &rv);
	}
	free(urns);
	free(urns2);
	free(names);
	for (size_t i = 0; i < n; i++) {
		owners[i] = NULL;
		for (int k = 0; r && k < PQntuples(r); k++)
			if (in[i].urn && strcmp(in[i].urn, PQgetvalue(r, k, 0)) == 0)
				owners[i] = pg_tx_dup(tx, r, k, 1);
	}
	PQclear(r);
	return rv;
}

int pg_identities_owner(parley_store_tx *tx, const char *const *urns, size_t n, const char **owners)
{
	for (size_t i = 0; i < n; i++)
		owners[i] = NULL;
	if (n == 0)
		return 0;
	char *p[] = {pg_array(urns, n)};
	int rv;
	PGresult *r =
	        pg_tx_exec_arrays(tx, "SELECT urn, contact_id FROM identities WHERE urn = ANY($1::text[])", 1, p, &rv);
	for (size_t i = 0; i < n; i++)
		for (int k = 0; r && k < PQntuples(r); k++)
			if (urns[i] && strcmp(urns[i], PQgetvalue(r, k, 0)) == 0)
				owners[i] = pg_tx_dup(tx, r, k, 1);
	PQclear(r);
	return rv;
}

int pg_identities_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg)
{
	int rv;
	const char *p[] = {contact_id};
	PGresult *r =
	        pg_tx_exec(tx,
	                   "SELECT urn, contact_id, display_name, created_at FROM identities WHERE contact_id = $1"
	                   " ORDER BY created_at, urn",
	                   1, p, &rv);
	for (int i = 0; r && rv == 0 && i < PQntuples(r); i++) {
		struct parley_identity_rec rec = {pg_tx_dup(tx, r, i, 0), pg_tx_dup(tx, r, i, 1),
		                                  pg_tx_dup(tx, r, i, 2), pg_tx_dup(tx, r, i, 3)};
		rv = cb(arg, &rec);
	}
	PQclear(r);
	return rv;
}

int pg_identities_move(parley_store_tx *tx, const char *const *urns, size_t n, const char *contact_id)
{
	if (n == 0)
		return 0;
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	if (!contact_id)
		return PARLEY_EINVAL;
	char *p[] = {pg_array(urns, n), strdup(contact_id)};
	int rv;
	PQclear(pg_tx_exec_arrays(tx, "UPDATE identities SET contact_id = $2 WHERE urn = ANY($1::text[])", 2, p, &rv));
	return rv;
}

/* ----------------------------------------------------------------- merges */

int pg_merge_insert(parley_store_tx *tx, const struct parley_merge_rec *m)
{
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	char now[64];
	pg_now(now);
	const char *p[] = {m->id,       m->from_id, m->into_id, m->moved ? m->moved : "{}", m->at ? m->at : now,
	                   m->undone_at};
	return pg_tx_cmd(tx,
	                 "INSERT INTO contact_merges (id, from_id, into_id, moved, at, undone_at)"
	                 " VALUES ($1, $2, $3, $4::jsonb, $5, $6)",
	                 6, p, NULL);
}

int pg_merge_lock(parley_store_tx *tx, const char *id, struct parley_merge_rec *out)
{
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	const char *p[] = {id};
	int rv;
	PGresult *r = pg_tx_exec(tx,
	                         "SELECT id, from_id, into_id, moved::text, at, undone_at FROM contact_merges"
	                         " WHERE id = $1 FOR UPDATE",
	                         1, p, &rv);
	if (r && PQntuples(r) == 0) {
		rv = PARLEY_ENOENT;
	} else if (r) {
		out->id = pg_tx_dup(tx, r, 0, 0);
		out->from_id = pg_tx_dup(tx, r, 0, 1);
		out->into_id = pg_tx_dup(tx, r, 0, 2);
		out->moved = pg_tx_dup(tx, r, 0, 3);
		out->at = pg_tx_dup(tx, r, 0, 4);
		out->undone_at = pg_tx_dup(tx, r, 0, 5);
	}
	PQclear(r);
	return rv;
}

int pg_merge_set_undone(parley_store_tx *tx, const char *id, const char *undone_at)
{
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	const char *p[] = {id, undone_at};
	long rows = 0;
	int rv = pg_tx_cmd(tx, "UPDATE contact_merges SET undone_at = $2 WHERE id = $1", 2, p, &rows);
	return rv == 0 && rows == 0 ? PARLEY_ENOENT : rv;
}
