/* typed_conversations.c: conversations, their history and notes in the typed contract (see typed.c). */
#include "typed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------- conversations */

#define CONV_COLUMNS                                                                                                   \
	"c.id, c.contact_id, c.status, c.assignee, c.team, c.priority, c.labels, c.last_channel, c.snoozed_until,"     \
	" c.first_inbound_at, c.last_inbound_at, c.first_response_at, c.resolved_at, c.resolutions, c.created_at,"     \
	" c.updated_at"

static void read_conversation(parley_store_tx *tx, sqlite3_stmt *st, struct parley_conversation_rec *c)
{
	c->id = ty_col(tx, st, 0);
	c->contact_id = ty_col(tx, st, 1);
	c->status = ty_col(tx, st, 2);
	c->assignee = ty_col(tx, st, 3);
	c->team = ty_col(tx, st, 4);
	c->priority = ty_col(tx, st, 5);
	c->labels = ty_col(tx, st, 6);
	c->last_channel = ty_col(tx, st, 7);
	c->snoozed_until = ty_col(tx, st, 8);
	c->first_inbound_at = ty_col(tx, st, 9);
	c->last_inbound_at = ty_col(tx, st, 10);
	c->first_response_at = ty_col(tx, st, 11);
	c->resolved_at = ty_col(tx, st, 12);
	c->resolutions = sqlite3_column_int64(st, 13);
	c->created_at = ty_col(tx, st, 14);
	c->updated_at = ty_col(tx, st, 15);
}

/* ------------------------------------- what the transaction has seen */

/*
 * conversations_put writes only the columns that changed when it knows the
 * row as this transaction last read or wrote it: a message that joins an
 * open conversation moves last_inbound_at and updated_at, not its contact,
 * status, assignee or team, so the indexes on those stay untouched.
 */

static int same_text(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static int cmp_seen(const void *a, const void *b)
{
	return strcmp((*(const struct parley_conversation_rec *const *)a)->id,
	              (*(const struct parley_conversation_rec *const *)b)->id);
}

/* What only the whole-row upsert writes right: the columns indexes and the queue depend on. */
static int same_place(const struct parley_conversation_rec *was, const struct parley_conversation_rec *c)
{
	return same_text(was->contact_id, c->contact_id) && same_text(was->status, c->status) &&
	       same_text(was->assignee, c->assignee) && same_text(was->team, c->team) &&
	       same_text(was->snoozed_until, c->snoozed_until) &&
	       (!c->created_at || same_text(was->created_at, c->created_at));
}

static int same_rest(const struct parley_conversation_rec *was, const struct parley_conversation_rec *c)
{
	return same_text(was->priority, c->priority) && same_text(was->labels, c->labels) &&
	       same_text(was->last_channel, c->last_channel) && same_text(was->first_inbound_at, c->first_inbound_at) &&
	       same_text(was->last_inbound_at, c->last_inbound_at) &&
	       same_text(was->first_response_at, c->first_response_at) && same_text(was->resolved_at, c->resolved_at) &&
	       was->resolutions == c->resolutions && c->updated_at && same_text(was->updated_at, c->updated_at);
}

/*
 * Keep *c as the row is now, in slot or appended; its strings are copied into the transaction (a put's are
 * the caller's), unless they live there already (a read's, from ty_col).  0 or PARLEY_ENOMEM.
 */
static int seen_keep(parley_store_tx *tx, struct parley_conversation_rec *slot, const struct parley_conversation_rec *c,
                     int copy)
{
	struct parley_conversation_rec k = *c;
	const char **text[] = {&k.id,
	                       &k.contact_id,
	                       &k.status,
	                       &k.assignee,
	                       &k.team,
	                       &k.priority,
	                       &k.labels,
	                       &k.last_channel,
	                       &k.snoozed_until,
	                       &k.first_inbound_at,
	                       &k.last_inbound_at,
	                       &k.first_response_at,
	                       &k.resolved_at,
	                       &k.created_at,
	                       &k.updated_at};
	for (size_t i = 0; copy && i < sizeof(text) / sizeof(text[0]); i++)
		if (*text[i] && !(*text[i] = ty_keep(tx, *text[i])))
			return PARLEY_ENOMEM;
	if (slot) {
		*slot = k;
		return 0;
	}
	struct parley_conversation_rec *r = ty_grow((void **)&tx->seen, sizeof(*r), &tx->n_seen, &tx->cap_seen);
	if (!r)
		return PARLEY_ENOMEM;
	*r = k;
	return 0;
}

/* A row read: remembered; of several rows of one id, the one kept last is the row as it is. */
static void seen_read(parley_store_tx *tx, const struct parley_conversation_rec *c)
{
	if (seen_keep(tx, NULL, c, 0) != 0)
		tx->n_seen = 0; /* out of memory: forget all, so every put writes the whole row */
}

/* The seen rows by id, of one id in the order kept (a sorted array of pointers, malloc'd); NULL when none. */
static struct parley_conversation_rec **seen_index(parley_store_tx *tx)
{
	struct parley_conversation_rec **v = tx->n_seen ? malloc(tx->n_seen * sizeof(*v)) : NULL;
	for (size_t i = 0; v && i < tx->n_seen; i++)
		v[i] = &tx->seen[i];
	if (v)
		qsort(v, tx->n_seen, sizeof(*v), cmp_seen);
	return v;
}

/* The row of id as the transaction last kept it, or NULL. */
static struct parley_conversation_rec *seen_find(struct parley_conversation_rec **v, size_t n, const char *id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) { /* the first entry not below id */
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid]->id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	struct parley_conversation_rec *r = NULL;
	for (; lo < n && strcmp(v[lo]->id, id) == 0; lo++)
		if (!r || v[lo] > r)
			r = v[lo]; /* kept later: further in the array */
	return r;
}

/* Step st for at most one conversation: 0 with *out, PARLEY_ENOENT, or an error. */
static int one_conversation(parley_store_tx *tx, sqlite3_stmt *st, struct parley_conversation_rec *out)
{
	memset(out, 0, sizeof(*out));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_conversation(tx, st, out);
		if (out->id)
			seen_read(tx, out);
	}
	ty_done(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? PARLEY_ENOENT : ty_step_error(tx->s, rc);
}

/* Step st and visit every conversation it returns. */
static int visit_conversations(parley_store_tx *tx, sqlite3_stmt *st, parley_store_row_cb cb, void *arg)
{
	struct parley_conversation_rec *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct parley_conversation_rec *r = ty_grow((void **)&rows, sizeof(*rows), &n, &cap);
		if (!r)
			break;
		read_conversation(tx, st, r);
	}
	ty_done(st);
	int rv = rc == SQLITE_DONE ? ty_visit(rows, sizeof(*rows), n, cb, arg) : ty_step_error(tx->s, rc);
	free(rows);
	return rv;
}

static const char *const sql_conversation_current = "SELECT " CONV_COLUMNS " FROM conversations AS c"
                                                    " WHERE c.contact_id = ?1 ORDER BY c.created_at DESC, c.id DESC"
                                                    " LIMIT 1";

int ty_conversations_current(parley_store_tx *tx, const char *const *contact_ids, size_t n,
                             struct parley_conversation_rec *out, int *found)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_conversation_current);
	if (!st)
		return PARLEY_EIO;
	for (size_t i = 0; i < n; i++) {
		sq_bind(st, 1, contact_ids[i]);
		int rv = one_conversation(tx, st, &out[i]);
		found[i] = rv == 0;
		if (rv != 0 && rv != PARLEY_ENOENT)
			return rv;
	}
	return 0;
}

static const char *const sql_conversation_get = "SELECT " CONV_COLUMNS " FROM conversations AS c WHERE c.id = ?1";

int ty_conversation_lock(parley_store_tx *tx, const char *id, struct parley_conversation_rec *out)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_conversation_get);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, id);
	return one_conversation(tx, st, out);
}

static const char *const sql_conversation_of_ref =
        "SELECT " CONV_COLUMNS " FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id"
        " WHERE m.channel = ?1 AND m.conversation_id IS NOT NULL"
        " AND (m.external_id = ?2 OR (m.provider_id IS NOT NULL AND m.provider_id = ?2))"
        " ORDER BY m.seq DESC LIMIT 1";

int ty_conversation_of_ref(parley_store_tx *tx, const char *channel, const char *ref,
                           struct parley_conversation_rec *out)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_conversation_of_ref);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, channel);
	sq_bind(st, 2, ref);
	return one_conversation(tx, st, out);
}

static const char *const sql_conversation_put =
        "INSERT INTO conversations (id, contact_id, status, assignee, team, priority, labels, last_channel,"
        " snoozed_until, first_inbound_at, last_inbound_at, first_response_at, resolved_at, resolutions,"
        " created_at, updated_at, queued_at) VALUES (?1, ?2, coalesce(?3, 'open'), ?4, ?5, ?6, coalesce(?7, '[]'),"
        " ?8, ?9, ?10, ?11, ?12, ?13, ?14, coalesce(?15, ?17), coalesce(?16, ?17),"
        /* Waiting in its team's queue (a team, no assignee, open or pending): since now, or since it began. */
        " CASE WHEN coalesce(?5, '') <> '' AND coalesce(?4, '') = '' AND coalesce(?3, 'open') IN ('open', 'pending')"
        "  THEN coalesce(?16, ?17) END)"
        " ON CONFLICT (id) DO UPDATE SET contact_id = excluded.contact_id, status = excluded.status,"
        " assignee = excluded.assignee, team = excluded.team, priority = excluded.priority,"
        " labels = excluded.labels, last_channel = excluded.last_channel, snoozed_until = excluded.snoozed_until,"
        " first_inbound_at = excluded.first_inbound_at, last_inbound_at = excluded.last_inbound_at,"
        " first_response_at = excluded.first_response_at, resolved_at = excluded.resolved_at,"
        " resolutions = excluded.resolutions, created_at = coalesce(?15, conversations.created_at),"
        " updated_at = excluded.updated_at,"
        " queued_at = CASE WHEN excluded.queued_at IS NOT NULL THEN coalesce(conversations.queued_at, "
        "excluded.queued_at)"
        "  END";

/*
 * The columns a join changes, of a row whose place is unchanged; queued_at as the whole-row upsert
 * would leave it (kept while the conversation waits in its team's queue, else none).
 */
static const char *const sql_conversation_touch =
        "UPDATE conversations SET priority = ?2, labels = coalesce(?3, '[]'), last_channel = ?4,"
        " first_inbound_at = ?5, last_inbound_at = ?6, first_response_at = ?7, resolved_at = ?8, resolutions = ?9,"
        " updated_at = coalesce(?10, ?11),"
        " queued_at = CASE WHEN coalesce(team, '') <> '' AND coalesce(assignee, '') = '' AND status IN ('open', "
        "'pending')"
        "  THEN coalesce(queued_at, coalesce(?10, ?11)) END"
        " WHERE id = ?1";

static int put_whole(parley_store_tx *tx, const struct parley_conversation_rec *c, const char *now)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_conversation_put);
	if (!st)
		return PARLEY_EIO;
	const char *text[] = {c->id,
	                      c->contact_id,
	                      c->status,
	                      c->assignee,
	                      c->team,
	                      c->priority,
	                      c->labels,
	                      c->last_channel,
	                      c->snoozed_until,
	                      c->first_inbound_at,
	                      c->last_inbound_at,
	                      c->first_response_at,
	                      c->resolved_at};
	for (int k = 0; k < 13; k++)
		sq_bind(st, k + 1, text[k]);
	sqlite3_bind_int64(st, 14, c->resolutions);
	sq_bind(st, 15, c->created_at);
	sq_bind(st, 16, c->updated_at);
	sq_bind(st, 17, now);
	return ty_exec_done(tx->s, st);
}

/* 0, PARLEY_ENOENT when the row is not there (then the whole row is written), or an error. */
static int put_touch(parley_store_tx *tx, const struct parley_conversation_rec *c, const char *now)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_conversation_touch);
	if (!st)
		return PARLEY_EIO;
	const char *text[] = {c->id,
	                      c->priority,
	                      c->labels,
	                      c->last_channel,
	                      c->first_inbound_at,
	                      c->last_inbound_at,
	                      c->first_response_at,
	                      c->resolved_at};
	for (int k = 0; k < 8; k++)
		sq_bind(st, k + 1, text[k]);
	sqlite3_bind_int64(st, 9, c->resolutions);
	sq_bind(st, 10, c->updated_at);
	sq_bind(st, 11, now);
	int rv = ty_exec_done(tx->s, st);
	return rv == 0 && sqlite3_changes(tx->s->w) == 0 ? PARLEY_ENOENT : rv;
}

int ty_conversations_put(parley_store_tx *tx, const struct parley_conversation_rec *c, size_t n)
{
	char now[64];
	sq_now(now);
	struct parley_conversation_rec **seen = seen_index(tx);
	size_t n_seen = seen ? tx->n_seen : 0;
	size_t *fresh = n ? malloc(n * sizeof(*fresh)) : NULL; /* puts of rows the transaction had not seen */
	size_t n_fresh = 0;
	int rv = n && !fresh ? PARLEY_ENOMEM : 0;
	for (size_t i = 0; i < n && rv == 0; i++) {
		struct parley_conversation_rec *was = seen_find(seen, n_seen, c[i].id);
		if (was && same_place(was, &c[i]) && same_rest(was, &c[i]))
			continue; /* nothing to write */
		rv = was && same_place(was, &c[i]) ? put_touch(tx, &c[i], now) : PARLEY_ENOENT;
		if (rv == PARLEY_ENOENT)
			rv = put_whole(tx, &c[i], now);
		if (rv == 0 && was)
			rv = seen_keep(tx, was, &c[i], 1);
		else if (rv == 0)
			fresh[n_fresh++] = i;
	}
	free(seen);
	for (size_t k = 0; k < n_fresh && rv == 0; k++)
		rv = seen_keep(tx, NULL, &c[fresh[k]], 1);
	free(fresh);
	return rv;
}

static const char *const sql_conversations_of_contact =
        "SELECT " CONV_COLUMNS " FROM conversations AS c WHERE c.contact_id = ?1 ORDER BY c.created_at, c.id";

int ty_conversations_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_conversations_of_contact);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, contact_id);
	return visit_conversations(tx, st, cb, arg);
}

static const char *const sql_conversations_due =
        "SELECT " CONV_COLUMNS " FROM conversations AS c WHERE c.status = 'snoozed' AND c.snoozed_until IS NOT NULL"
        " AND c.snoozed_until <= ?1 ORDER BY c.snoozed_until, c.id LIMIT ?2";

/* One writer at a time: no other transaction can hold a due row, so there is nothing to skip. */
int ty_conversations_due(parley_store_tx *tx, const char *now, size_t max, parley_store_row_cb cb, void *arg)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_conversations_due);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	return visit_conversations(tx, st, cb, arg);
}

/* With each row, its actor (data.by) and the conversation's holder and channel as this transaction leaves them. */
static const char *const sql_event_append =
        "INSERT INTO conversation_events (conversation_id, type, data, at, actor, agent, team, channel, at_ms)"
        " SELECT ?1, ?2, coalesce(?3, '{}'), coalesce(?4, ?5), coalesce(?3, '{}')->>'by', c.assignee, c.team,"
        " c.last_channel, parley_ms(coalesce(?4, ?5)) FROM (SELECT 1) LEFT JOIN conversations AS c ON c.id = ?1";

int ty_conversation_events_append(parley_store_tx *tx, const struct parley_conversation_event_rec *e, size_t n)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_event_append);
	if (!st)
		return PARLEY_EIO;
	char now[64];
	sq_now(now);
	for (size_t i = 0; i < n; i++) {
		sq_bind(st, 1, e[i].conversation_id);
		sq_bind(st, 2, e[i].type);
		sq_bind(st, 3, e[i].data);
		sq_bind(st, 4, e[i].at);
		sq_bind(st, 5, now);
		int rv = ty_exec_done(tx->s, st);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static const char *const sql_note_insert =
        "INSERT INTO notes (id, conversation_id, author, text, created_at) VALUES (?1, ?2, ?3, ?4, coalesce(?5, ?6))";

int ty_note_insert(parley_store_tx *tx, const char *id, const char *conversation_id, const char *author,
                   const char *text, const char *created_at)
{
	if (!id || !conversation_id || !text)
		return PARLEY_EINVAL;
	sqlite3_stmt *st = ty_prep(tx->s, sql_note_insert);
	if (!st)
		return PARLEY_EIO;
	char now[64];
	sq_now(now);
	sq_bind(st, 1, id);
	sq_bind(st, 2, conversation_id);
	sq_bind(st, 3, author);
	sq_bind(st, 4, text);
	sq_bind(st, 5, created_at);
	sq_bind(st, 6, now);
	return ty_exec_done(tx->s, st);
}
