/*
 * typed_broadcasts.c: the customer-service window and broadcasts (store.h,
 * ABI 1.4) on SQLite (migration 11).  Every op runs on the writer
 * connection under its mutex, as the accounts do: broadcasts are written
 * as often as they are read, and a visitor's rows come from one snapshot.
 */
#include "typed.h"

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

/* The latest of the address's own messages and its contact's (a contact may have written from another address). */
static const char *const sql_last_inbound =
        "SELECT min(coalesce(json_extract(envelope, '$.sent_at'), received_at), received_at) FROM messages"
        " WHERE seq = (SELECT max(s) FROM (SELECT max(seq) AS s FROM messages WHERE channel = ?1 AND from_urn = ?2"
        "  AND direction = 'inbound' AND kind = 'message' UNION ALL SELECT max(seq) FROM messages"
        "  WHERE contact_id = (SELECT contact_id FROM identities WHERE urn = ?2) AND channel = ?1"
        "  AND direction = 'inbound' AND kind = 'message'))";
static const char *const sql_insert =
        "INSERT INTO broadcasts (id, state, spec, created_by, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char *const sql_insert_recipient =
        "INSERT INTO broadcast_recipients (broadcast_id, contact_id, channel, urn, state, reason, message_id,"
        " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
#define BROADCAST_COLS "id, state, spec, created_by, created_at, updated_at"
static const char *const sql_get = "SELECT " BROADCAST_COLS " FROM broadcasts WHERE id = ?1";
static const char *const sql_list =
        "SELECT " BROADCAST_COLS " FROM broadcasts WHERE ?1 IS NULL OR state = ?1 ORDER BY created_at, id";
static const char *const sql_counts = "SELECT " SHOWN " AS shown, count(*) FROM broadcast_recipients r"
                                      " LEFT JOIN messages m ON m.id = r.message_id WHERE r.broadcast_id = ?1"
                                      " GROUP BY shown ORDER BY shown";
static const char *const sql_recipients =
        "SELECT r.contact_id, r.channel, r.urn, r.state, coalesce(r.reason, CASE WHEN m.status = 'failed' THEN"
        " m.error END), r.message_id, r.updated_at, " SHOWN " FROM broadcast_recipients r"
        " LEFT JOIN messages m ON m.id = r.message_id WHERE r.broadcast_id = ?1 AND r.contact_id > coalesce(?2, '')"
        " ORDER BY r.contact_id LIMIT ?3";
static const char *const sql_pending =
        "SELECT r.contact_id, r.channel, r.urn, coalesce(json_type(c.attributes, '$.opt_out') = 'true', 0),"
        " (SELECT v.id FROM conversations v WHERE v.contact_id = r.contact_id ORDER BY v.created_at DESC, v.id DESC"
        " LIMIT 1) FROM broadcast_recipients r LEFT JOIN contacts c ON c.id = r.contact_id"
        " WHERE r.broadcast_id = ?1 AND r.state = 'pending' AND r.channel = ?2 ORDER BY r.contact_id LIMIT ?3";
static const char *const sql_set =
        "UPDATE broadcast_recipients SET state = ?3, reason = ?4, message_id = ?5, updated_at = ?6"
        " WHERE broadcast_id = ?1 AND contact_id = ?2 AND state = 'pending'";
static const char *const sql_priority = "UPDATE messages SET priority = 1 WHERE id = ?1";
static const char *const sql_advance =
        "UPDATE broadcast_recipients SET state = ?3, reason = coalesce(?4, reason), updated_at = ?5"
        " WHERE message_id = ?1 AND state = ?2";
static const char *const sql_state = "UPDATE broadcasts SET state = ?2, updated_at = ?3 WHERE id = ?1";
static const char *const sql_cancel_recipients = "UPDATE broadcast_recipients SET state = 'cancelled', updated_at = ?2"
                                                 " WHERE broadcast_id = ?1 AND state IN ('pending', 'queued')";

static const char *text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static int begin(struct store *s)
{
	return sqlite3_exec(s->w, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
	               ? 0
	               : ty_step_error(s, sqlite3_errcode(s->w));
}

static int end(struct store *s, int rv)
{
	if (rv == 0 && sqlite3_exec(s->w, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rv = ty_step_error(s, sqlite3_errcode(s->w));
	if (rv != 0)
		sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
	return rv;
}

int ty_window_last_inbound(void *store, const char *channel, const char *urn, char **at)
{
	struct store *s = store;
	if (!channel || !urn || !at)
		return PARLEY_EINVAL;
	*at = NULL;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_last_inbound);
	int rv = PARLEY_EIO;
	if (st) {
		sq_bind(st, 1, channel);
		sq_bind(st, 2, urn);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && text(st, 0)) {
			*at = strdup(text(st, 0));
			rv = *at ? 0 : PARLEY_ENOMEM;
		} else {
			rv = rc == SQLITE_ROW || rc == SQLITE_DONE ? PARLEY_ENOENT : ty_step_error(s, rc);
		}
		ty_done(st);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

/* The SQL of one segment term, its parameters bound from ?first on; NULL for an unknown kind. */
static const char *term_sql(const struct parley_segment_term *t)
{
	if (strcmp(t->kind, "label") == 0)
		return " AND EXISTS (SELECT 1 FROM conversations v, json_each(v.labels) l WHERE v.contact_id = c.id"
		       " AND l.value = ?%d)";
	if (strcmp(t->kind, "channel") == 0)
		return " AND EXISTS (SELECT 1 FROM messages x WHERE x.contact_id = c.id AND x.channel = ?%d"
		       " AND x.direction = 'inbound')";
	if (strcmp(t->kind, "attr") == 0 && t->value)
		return " AND EXISTS (SELECT 1 FROM json_each(c.attributes) j WHERE j.key = ?%d AND"
		       " (CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END)"
		       " = ?%d)";
	if (strcmp(t->kind, "attr") == 0)
		return " AND EXISTS (SELECT 1 FROM json_each(c.attributes) j WHERE j.key = ?%d AND"
		       " j.type NOT IN ('false', 'null'))";
	return NULL;
}

int ty_broadcast_candidates(void *store, const struct parley_segment_term *terms, size_t n, const char *channel,
                            parley_store_row_cb cb, void *arg)
{
	struct store *s = store;
	struct {
		char *p;
		size_t len;
	} sql = {NULL, 0};
	FILE *f = open_memstream(&sql.p, &sql.len);
	if (!f)
		return PARLEY_ENOMEM;
	fputs("SELECT c.id, coalesce(json_type(c.attributes, '$.opt_out') = 'true', 0), m.channel, m.from_urn"
	      " FROM contacts c LEFT JOIN messages m ON m.seq = (SELECT x.seq FROM messages x WHERE"
	      " x.contact_id = c.id AND x.direction = 'inbound' AND x.kind = 'message' AND (?1 IS NULL OR"
	      " x.channel = ?1) ORDER BY x.seq DESC LIMIT 1) WHERE c.merged_into IS NULL",
	      f);
	int param = 2;
	for (size_t i = 0; i < n; i++) {
		const char *t = terms[i].kind && terms[i].key ? term_sql(&terms[i]) : NULL;
		if (!t) {
			fclose(f);
			free(sql.p);
			return PARLEY_EINVAL;
		}
		fprintf(f, t, param, param + 1);
		param += terms[i].value && strcmp(terms[i].kind, "attr") == 0 ? 2 : 1;
	}
	fputs(" ORDER BY c.id", f);
	fclose(f);
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = NULL;
	int rv = 0;
	if (sqlite3_prepare_v2(s->w, sql.p, -1, &st, NULL) != SQLITE_OK) {
		rv = ty_step_error(s, sqlite3_errcode(s->w));
	} else {
		sq_bind(st, 1, channel);
		param = 2;
		for (size_t i = 0; i < n; i++) {
			sq_bind(st, param++, terms[i].key);
			if (terms[i].value && strcmp(terms[i].kind, "attr") == 0)
				sq_bind(st, param++, terms[i].value);
		}
		int rc;
		while (rv == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct parley_broadcast_recipient_rec r = {.contact_id = text(st, 0),
			                                           .opted_out = sqlite3_column_int(st, 1),
			                                           .channel = text(st, 2),
			                                           .urn = text(st, 3)};
			rv = cb(arg, &r);
		}
		if (rv == 0 && rc != SQLITE_DONE)
			rv = ty_step_error(s, rc);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->wlock);
	free(sql.p);
	return rv;
}

int ty_broadcast_insert(void *store, const struct parley_broadcast_rec *b,
                        const struct parley_broadcast_recipient_rec *r, size_t n)
{
	struct store *s = store;
	if (!b || !b->id || !b->state || !b->spec)
		return PARLEY_EINVAL;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *ins = ty_prep(s, sql_insert), *rec = ty_prep(s, sql_insert_recipient);
	int rv = ins && rec ? begin(s) : PARLEY_EIO;
	if (rv == 0) {
		const char *v[] = {b->id, b->state, b->spec, b->created_by, b->created_at, b->updated_at};
		for (int i = 0; i < 6; i++)
			sq_bind(ins, i + 1, v[i]);
		rv = ty_exec_done(s, ins);
	}
	for (size_t i = 0; rv == 0 && i < n; i++) {
		const char *v[] = {b->id,           r[i].contact_id,
		                   r[i].channel,    r[i].urn,
		                   r[i].state,      r[i].reason,
		                   r[i].message_id, r[i].updated_at ? r[i].updated_at : b->created_at};
		for (int k = 0; k < 8; k++)
			sq_bind(rec, k + 1, v[k]);
		rv = ty_exec_done(s, rec);
	}
	rv = ins && rec ? end(s, rv) : rv;
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

static int visit_broadcasts(struct store *s, const char *sql, const char *p1, int need_row, parley_store_row_cb cb,
                            void *arg)
{
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql);
	int rv = st ? 0 : PARLEY_EIO, rows = 0, rc = SQLITE_DONE;
	if (st) {
		sq_bind(st, 1, p1);
		while (rv == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct parley_broadcast_rec b = {text(st, 0), text(st, 1), text(st, 2),
			                                 text(st, 3), text(st, 4), text(st, 5)};
			rows++;
			rv = cb(arg, &b);
		}
		if (rv == 0 && rc != SQLITE_DONE)
			rv = ty_step_error(s, rc);
		ty_done(st);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv == 0 && need_row && rows == 0 ? PARLEY_ENOENT : rv;
}

int ty_broadcast_get(void *store, const char *id, parley_store_row_cb cb, void *arg)
{
	return id ? visit_broadcasts(store, sql_get, id, 1, cb, arg) : PARLEY_EINVAL;
}

int ty_broadcasts_list(void *store, const char *state, parley_store_row_cb cb, void *arg)
{
	return visit_broadcasts(store, sql_list, state, 0, cb, arg);
}

int ty_broadcast_counts(void *store, const char *id, parley_store_row_cb cb, void *arg)
{
	struct store *s = store;
	if (!id)
		return PARLEY_EINVAL;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_counts);
	int rv = st ? 0 : PARLEY_EIO, rc = SQLITE_DONE;
	if (st) {
		sq_bind(st, 1, id);
		while (rv == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct parley_broadcast_count c = {text(st, 0), sqlite3_column_int64(st, 1)};
			rv = cb(arg, &c);
		}
		if (rv == 0 && rc != SQLITE_DONE)
			rv = ty_step_error(s, rc);
		ty_done(st);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

/* Visit the recipient rows of sql (?1 broadcast, ?2 text, ?3 limit); pending rows have their own columns. */
static int visit_recipients(struct store *s, const char *sql, const char *id, const char *p2, size_t max, int pending,
                            parley_store_row_cb cb, void *arg)
{
	if (!id)
		return PARLEY_EINVAL;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql);
	int rv = st ? 0 : PARLEY_EIO, rc = SQLITE_DONE;
	if (st) {
		sq_bind(st, 1, id);
		sq_bind(st, 2, p2);
		sqlite3_bind_int64(st, 3, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
		while (rv == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct parley_broadcast_recipient_rec r = {.broadcast_id = id,
			                                           .contact_id = text(st, 0),
			                                           .channel = text(st, 1),
			                                           .urn = text(st, 2)};
			if (pending) {
				r.state = "pending";
				r.opted_out = sqlite3_column_int(st, 3);
				r.conversation_id = text(st, 4);
			} else {
				r.state = text(st, 3);
				r.reason = text(st, 4);
				r.message_id = text(st, 5);
				r.updated_at = text(st, 6);
				r.status = text(st, 7);
			}
			rv = cb(arg, &r);
		}
		if (rv == 0 && rc != SQLITE_DONE)
			rv = ty_step_error(s, rc);
		ty_done(st);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

int ty_broadcast_recipients(void *store, const char *id, const char *after_contact, size_t max, parley_store_row_cb cb,
                            void *arg)
{
	return visit_recipients(store, sql_recipients, id, after_contact, max, 0, cb, arg);
}

int ty_broadcast_pending(void *store, const char *id, const char *channel, size_t max, parley_store_row_cb cb,
                         void *arg)
{
	return channel ? visit_recipients(store, sql_pending, id, channel, max, 1, cb, arg) : PARLEY_EINVAL;
}

int ty_broadcast_recipients_set(parley_store_tx *tx, const struct parley_broadcast_recipient_rec *r, size_t n,
                                int64_t *moved)
{
	struct store *s = tx->s;
	sqlite3_stmt *set = ty_prep(s, sql_set), *pri = ty_prep(s, sql_priority);
	if (!set || !pri)
		return PARLEY_EIO;
	char now[64];
	sq_now(now);
	int64_t count = 0;
	for (size_t i = 0; i < n; i++) {
		const char *v[] = {r[i].broadcast_id, r[i].contact_id, r[i].state,
		                   r[i].reason,       r[i].message_id, r[i].updated_at ? r[i].updated_at : now};
		for (int k = 0; k < 6; k++)
			sq_bind(set, k + 1, v[k]);
		int rv = ty_exec_done(s, set);
		if (rv != 0)
			return rv;
		count += sqlite3_changes(s->w);
		if (r[i].message_id) {
			sq_bind(pri, 1, r[i].message_id);
			if ((rv = ty_exec_done(s, pri)) != 0)
				return rv;
		}
	}
	if (moved)
		*moved = count;
	return 0;
}

int ty_broadcast_recipient_advance(void *store, const char *message_id, const char *from, const char *to,
                                   const char *reason)
{
	struct store *s = store;
	if (!message_id || !from || !to)
		return PARLEY_EINVAL;
	char now[64];
	sq_now(now);
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_advance);
	int rv = PARLEY_EIO;
	if (st) {
		const char *v[] = {message_id, from, to, reason, now};
		for (int k = 0; k < 5; k++)
			sq_bind(st, k + 1, v[k]);
		rv = ty_exec_done(s, st);
		if (rv == 0 && sqlite3_changes(s->w) == 0)
			rv = PARLEY_ENOENT;
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

int ty_broadcast_set_state(void *store, const char *id, const char *state, const char *at, int64_t *n)
{
	struct store *s = store;
	if (!id || !state || !at)
		return PARLEY_EINVAL;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_state), *rc = ty_prep(s, sql_cancel_recipients);
	int rv = st && rc ? begin(s) : PARLEY_EIO;
	int64_t count = 0;
	if (rv == 0) {
		sq_bind(st, 1, id);
		sq_bind(st, 2, state);
		sq_bind(st, 3, at);
		rv = ty_exec_done(s, st);
		if (rv == 0 && sqlite3_changes(s->w) == 0)
			rv = PARLEY_ENOENT;
	}
	if (rv == 0 && strcmp(state, "cancelled") == 0) {
		sq_bind(rc, 1, id);
		sq_bind(rc, 2, at);
		rv = ty_exec_done(s, rc);
		count = sqlite3_changes(s->w);
	}
	rv = st && rc ? end(s, rv) : rv;
	pthread_mutex_unlock(&s->wlock);
	if (rv == 0 && n)
		*n = count;
	return rv;
}
