/* typed_contacts.c: contacts, identities and reversible merges of the typed contract (see typed.c). */
#include "typed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------ contacts, identities */

#define CONTACT_COLUMNS "id, name, attributes, merged_into, created_at, updated_at"

static void read_contact(parley_store_tx *tx, sqlite3_stmt *st, struct parley_contact_rec *c)
{
	c->id = ty_col(tx, st, 0);
	c->name = ty_col(tx, st, 1);
	c->attributes = ty_col(tx, st, 2);
	c->merged_into = ty_col(tx, st, 3);
	c->created_at = ty_col(tx, st, 4);
	c->updated_at = ty_col(tx, st, 5);
}

static const char *const sql_contact_insert =
        "INSERT INTO contacts (" CONTACT_COLUMNS ") VALUES (?1, ?2, coalesce(?3, '{}'), ?4, coalesce(?5, ?7),"
        " coalesce(?6, ?5, ?7)) ON CONFLICT (id) DO NOTHING";

int ty_contacts_insert(parley_store_tx *tx, const struct parley_contact_rec *c, size_t n)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_contact_insert);
	if (!st)
		return PARLEY_EIO;
	char now[64];
	sq_now(now);
	for (size_t i = 0; i < n; i++) {
		sq_bind(st, 1, c[i].id);
		sq_bind(st, 2, c[i].name);
		sq_bind(st, 3, c[i].attributes);
		sq_bind(st, 4, c[i].merged_into);
		sq_bind(st, 5, c[i].created_at);
		sq_bind(st, 6, c[i].updated_at);
		sq_bind(st, 7, now);
		int rv = ty_exec_done(tx->s, st);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static const char *const sql_contact_get = "SELECT " CONTACT_COLUMNS " FROM contacts WHERE id = ?1";

/* The transaction holds SQLite's write lock: every row it reads is locked against other writers already. */
int ty_contacts_lock(parley_store_tx *tx, const char *const *ids, size_t n, struct parley_contact_rec *out, int *found)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_contact_get);
	if (!st)
		return PARLEY_EIO;
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		sq_bind(st, 1, ids[i]);
		int rc = sqlite3_step(st);
		found[i] = rc == SQLITE_ROW;
		if (found[i])
			read_contact(tx, st, &out[i]);
		ty_done(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return ty_step_error(tx->s, rc);
	}
	return 0;
}

/* A NULL attributes keeps the stored ones (the column is never NULL); NULL times keep created_at, set updated_at. */
static const char *const sql_contact_update =
        "UPDATE contacts SET name = ?2, attributes = coalesce(?3, attributes), merged_into = ?4,"
        " created_at = coalesce(?5, created_at), updated_at = coalesce(?6, ?7) WHERE id = ?1";

int ty_contact_update(parley_store_tx *tx, const struct parley_contact_rec *c)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_contact_update);
	if (!st)
		return PARLEY_EIO;
	char now[64];
	sq_now(now);
	sq_bind(st, 1, c->id);
	sq_bind(st, 2, c->name);
	sq_bind(st, 3, c->attributes);
	sq_bind(st, 4, c->merged_into);
	sq_bind(st, 5, c->created_at);
	sq_bind(st, 6, c->updated_at);
	sq_bind(st, 7, now);
	int rv = ty_exec_done(tx->s, st);
	if (rv == 0 && sqlite3_changes(tx->s->w) == 0)
		rv = PARLEY_ENOENT;
	return rv;
}

static const char *const sql_identity_claim =
        "INSERT INTO identities (urn, contact_id, display_name, created_at) VALUES (?1, ?2, ?3, coalesce(?4, ?5))"
        " ON CONFLICT (urn) DO UPDATE SET display_name = excluded.display_name"
        " WHERE excluded.display_name IS NOT NULL AND display_name IS NOT excluded.display_name";
static const char *const sql_identity_owner = "SELECT contact_id FROM identities WHERE urn = ?1";

int ty_identities_claim(parley_store_tx *tx, const struct parley_identity_rec *in, size_t n, const char **owners)
{
	sqlite3_stmt *ins = ty_prep(tx->s, sql_identity_claim);
	sqlite3_stmt *own = ty_prep(tx->s, sql_identity_owner);
	if (!ins || !own)
		return PARLEY_EIO;
	char now[64];
	sq_now(now);
	for (size_t i = 0; i < n; i++) {
		sq_bind(ins, 1, in[i].urn);
		sq_bind(ins, 2, in[i].contact_id);
		sq_bind(ins, 3, in[i].display_name);
		sq_bind(ins, 4, in[i].created_at);
		sq_bind(ins, 5, now);
		int rv = ty_exec_done(tx->s, ins);
		if (rv != 0)
			return rv;
		sq_bind(own, 1, in[i].urn);
		int rc = sqlite3_step(own);
		owners[i] = rc == SQLITE_ROW ? ty_col(tx, own, 0) : NULL;
		ty_done(own);
		if (rc != SQLITE_ROW)
			return ty_step_error(tx->s, rc);
	}
	return 0;
}

int ty_identities_owner(parley_store_tx *tx, const char *const *urns, size_t n, const char **owners)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_identity_owner);
	if (!st)
		return PARLEY_EIO;
	for (size_t i = 0; i < n; i++) {
		sq_bind(st, 1, urns[i]);
		int rc = sqlite3_step(st);
		owners[i] = rc == SQLITE_ROW ? ty_col(tx, st, 0) : NULL;
		ty_done(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return ty_step_error(tx->s, rc);
	}
	return 0;
}

static const char *const sql_identities_of_contact =
        "SELECT urn, contact_id, display_name, created_at FROM identities WHERE contact_id = ?1"
        " ORDER BY created_at, rowid";

int ty_identities_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_identities_of_contact);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, contact_id);
	struct parley_identity_rec *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct parley_identity_rec *r = ty_grow((void **)&rows, sizeof(*rows), &n, &cap);
		if (!r)
			break;
		r->urn = ty_col(tx, st, 0);
		r->contact_id = ty_col(tx, st, 1);
		r->display_name = ty_col(tx, st, 2);
		r->created_at = ty_col(tx, st, 3);
	}
	ty_done(st);
	int rv = rc == SQLITE_DONE ? ty_visit(rows, sizeof(*rows), n, cb, arg) : ty_step_error(tx->s, rc);
	free(rows);
	return rv;
}

static const char *const sql_identities_move =
        "UPDATE identities SET contact_id = ?2 WHERE urn IN (SELECT value FROM json_each(?1))";

int ty_identities_move(parley_store_tx *tx, const char *const *urns, size_t n, const char *contact_id)
{
	if (n == 0)
		return 0;
	char *arr = ty_json_strings(urns, n);
	sqlite3_stmt *st = arr ? ty_prep(tx->s, sql_identities_move) : NULL;
	if (!st) {
		free(arr);
		return arr ? PARLEY_EIO : PARLEY_ENOMEM;
	}
	sq_bind(st, 1, arr);
	sq_bind(st, 2, contact_id);
	int rv = ty_exec_done(tx->s, st);
	free(arr);
	return rv;
}

/* ------------------------------------------------------------ merges */

static const char *const sql_merge_insert =
        "INSERT INTO contact_merges (id, from_id, into_id, moved, at, undone_at) VALUES (?1, ?2, ?3,"
        " coalesce(?4, '{}'), coalesce(?5, ?7), ?6)";

int ty_merge_insert(parley_store_tx *tx, const struct parley_merge_rec *m)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_merge_insert);
	if (!st)
		return PARLEY_EIO;
	char now[64];
	sq_now(now);
	sq_bind(st, 1, m->id);
	sq_bind(st, 2, m->from_id);
	sq_bind(st, 3, m->into_id);
	sq_bind(st, 4, m->moved);
	sq_bind(st, 5, m->at);
	sq_bind(st, 6, m->undone_at);
	sq_bind(st, 7, now);
	return ty_exec_done(tx->s, st);
}

static const char *const sql_merge_get =
        "SELECT id, from_id, into_id, moved, at, undone_at FROM contact_merges WHERE id = ?1";

int ty_merge_lock(parley_store_tx *tx, const char *id, struct parley_merge_rec *out)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_merge_get);
	if (!st)
		return PARLEY_EIO;
	memset(out, 0, sizeof(*out));
	sq_bind(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->id = ty_col(tx, st, 0);
		out->from_id = ty_col(tx, st, 1);
		out->into_id = ty_col(tx, st, 2);
		out->moved = ty_col(tx, st, 3);
		out->at = ty_col(tx, st, 4);
		out->undone_at = ty_col(tx, st, 5);
	}
	ty_done(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? PARLEY_ENOENT : ty_step_error(tx->s, rc);
}

static const char *const sql_merge_undone = "UPDATE contact_merges SET undone_at = ?2 WHERE id = ?1";

int ty_merge_set_undone(parley_store_tx *tx, const char *id, const char *undone_at)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_merge_undone);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, id);
	sq_bind(st, 2, undone_at);
	int rv = ty_exec_done(tx->s, st);
	if (rv == 0 && sqlite3_changes(tx->s->w) == 0)
		rv = PARLEY_ENOENT;
	return rv;
}
