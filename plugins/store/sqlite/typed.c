/*
 * typed.c: the typed store contract (store.h, ABI 1.2) over the SQLite
 * schema.  SQLite has one writer, so a transaction is the writer
 * connection's mutex plus BEGIN IMMEDIATE: everything a transaction reads
 * is locked against every other writer until it ends, which is what the
 * contract's row locks (contacts_lock, conversation_lock, merge_lock) and
 * its "waits for a concurrent transaction" promises ask for.  Batched
 * operations step one prepared statement per row inside that one
 * transaction (no round trips to save in an embedded database).
 *
 * Strings a transaction hands back live in its arena, freed when it ends.
 * Visitors first collect their rows, then call back: a callback may call
 * other operations of the same transaction.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ arena */

struct chunk {
	struct chunk *next;
	size_t used, cap;
	char data[];
};

struct parley_store_tx {
	struct store *s;
	struct chunk *arena;
};

/* A copy of v that lives until the transaction ends; NULL for NULL (or out of memory). */
static const char *keep(parley_store_tx *tx, const char *v)
{
	if (!v)
		return NULL;
	size_t n = strlen(v) + 1;
	struct chunk *c = tx->arena;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > 8192 ? n : 8192;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = tx->arena;
		c->used = 0;
		c->cap = cap;
		tx->arena = c;
	}
	char *p = c->data + c->used;
	memcpy(p, v, n);
	c->used += n;
	return p;
}

static void tx_free(parley_store_tx *tx)
{
	struct chunk *c = tx->arena;
	while (c) {
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
	free(tx);
}

/* ------------------------------------------------------- statements */

/* The statement for sql (static text) on the writer, prepared once; NULL after logging on failure. */
static sqlite3_stmt *prep(struct store *s, const char *sql)
{
	struct stmt_cache *c = &s->tcache;
	for (size_t i = 0; i < c->n; i++)
		if (c->sql[i] == sql)
			return c->st[i];
	sqlite3_stmt *st = NULL;
	if (c->n == sizeof(c->sql) / sizeof(c->sql[0]) ||
	    sqlite3_prepare_v3(s->w, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		s->host->log(s->inst, PARLEY_LOG_ERROR, "%s: cannot prepare a typed store statement: %s", s->path,
		             sqlite3_errmsg(s->w));
		sqlite3_finalize(st);
		return NULL;
	}
	c->sql[c->n] = sql;
	c->st[c->n++] = st;
	return st;
}

void typed_close(struct store *s)
{
	for (size_t i = 0; i < s->tcache.n; i++)
		sqlite3_finalize(s->tcache.st[i]);
	s->tcache.n = 0;
}

/* The contract's error for a failed step: busy or locked is PARLEY_EBUSY, a constraint PARLEY_EEXIST. */
static int step_error(struct store *s, int rc)
{
	s->host->log(s->inst, PARLEY_LOG_ERROR, "%s: %s", s->path, sqlite3_errmsg(s->w));
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return PARLEY_EBUSY;
	case SQLITE_CONSTRAINT:
		return PARLEY_EEXIST;
	default:
		return PARLEY_EIO;
	}
}

static void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Step a statement that returns no rows; 0 or the contract's error. */
static int exec_done(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	done(st);
	return rc == SQLITE_DONE ? 0 : step_error(s, rc);
}

static const char *col(parley_store_tx *tx, sqlite3_stmt *st, int i)
{
	return keep(tx, (const char *)sqlite3_column_text(st, i));
}

/* A JSON array of strings, for json_each(): malloc'd, or NULL when out of memory. */
static char *json_strings(const char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	char *text = a ? cJSON_PrintUnformatted(a) : NULL;
	cJSON_Delete(a);
	return text;
}

/* ----------------------------------------------------- transactions */

static int tx_begin(void *store, parley_store_tx **out)
{
	struct store *s = store;
	parley_store_tx *tx = calloc(1, sizeof(*tx));
	if (!tx)
		return PARLEY_ENOMEM;
	tx->s = s;
	pthread_mutex_lock(&s->wlock);
	int rc = sqlite3_exec(s->w, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		int rv = step_error(s, rc);
		pthread_mutex_unlock(&s->wlock);
		free(tx);
		return rv == PARLEY_EEXIST ? PARLEY_EIO : rv;
	}
	*out = tx;
	return 0;
}

static int tx_commit(parley_store_tx *tx)
{
	struct store *s = tx->s;
	int rc = sqlite3_exec(s->w, "COMMIT", NULL, NULL, NULL);
	int rv = 0;
	if (rc != SQLITE_OK) {
		rv = step_error(s, rc) == PARLEY_EBUSY ? PARLEY_EBUSY : PARLEY_EIO;
		sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&s->wlock);
	tx_free(tx);
	return rv;
}

static void tx_rollback(parley_store_tx *tx)
{
	struct store *s = tx->s;
	if (!sqlite3_get_autocommit(s->w))
		sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&s->wlock);
	tx_free(tx);
}

/* --------------------------------------------------------- messages */

static int messages_insert(parley_store_tx *tx, struct parley_envelope *const *envs, size_t n, int *results)
{
	for (size_t i = 0; i < n; i++) {
		int rv = sq_insert(tx->s, envs[i], &results[i]);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static int message_status_advance(parley_store_tx *tx, const char *channel, const char *provider_id, const char *status,
                                  const char *error)
{
	static const char *const known[] = {"sent", "delivered", "read", "failed"};
	int ok = 0;
	for (size_t i = 0; status && i < 4; i++)
		ok |= strcmp(status, known[i]) == 0;
	if (!ok || !channel || !provider_id)
		return PARLEY_EINVAL;
	char ts[64];
	sq_now(ts);
	/* The classic receipt statement: moves the message only forward (STATUS_RANK). */
	sqlite3_stmt *st = tx->s->receipt;
	sq_bind(st, 1, channel);
	sq_bind(st, 2, provider_id);
	sq_bind(st, 3, status);
	sq_bind(st, 4, error);
	sq_bind(st, 5, ts);
	return exec_done(tx->s, st);
}

static const char *const sql_set_owner =
        "UPDATE messages SET contact_id = ?2, conversation_id = coalesce(?3, conversation_id),"
        " envelope = CASE WHEN ?3 IS NULL THEN json_set(envelope, '$.contact_id', ?2)"
        " ELSE json_set(envelope, '$.contact_id', ?2, '$.conversation_id', ?3) END"
        " WHERE id IN (SELECT value FROM json_each(?1))";

static int messages_set_owner(parley_store_tx *tx, const char *const *ids, size_t n, const char *contact_id,
                              const char *conversation_id)
{
	if (n == 0)
		return 0;
	char *arr = json_strings(ids, n);
	sqlite3_stmt *st = arr ? prep(tx->s, sql_set_owner) : NULL;
	if (!st) {
		free(arr);
		return arr ? PARLEY_EIO : PARLEY_ENOMEM;
	}
	sq_bind(st, 1, arr);
	sq_bind(st, 2, contact_id);
	sq_bind(st, 3, conversation_id);
	int rv = exec_done(tx->s, st);
	free(arr);
	return rv;
}

/* Visit collected rows; the visitor's non-zero return stops and is returned. */
static int visit(const void *rows, size_t size, size_t n, parley_store_row_cb cb, void *arg)
{
	for (size_t i = 0; i < n; i++) {
		int r = cb(arg, (const char *)rows + i * size);
		if (r)
			return r;
	}
	return 0;
}

/* Grow a row array by one; NULL when out of memory. */
static void *grow(void **rows, size_t size, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		void *p = realloc(*rows, nc * size);
		if (!p)
			return NULL;
		*rows = p;
		*cap = nc;
	}
	void *row = (char *)*rows + (*n)++ * size;
	memset(row, 0, size);
	return row;
}

static const char *const sql_messages_of_contact =
        "SELECT id FROM messages WHERE contact_id = ?1 AND contact_id IS NOT NULL ORDER BY seq";

/* Each row is the id itself (const char *), valid until the transaction ends. */
static int messages_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg)
{
	sqlite3_stmt *st = prep(tx->s, sql_messages_of_contact);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, contact_id);
	const char **ids = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char **slot = grow((void **)&ids, sizeof(*ids), &n, &cap);
		if (!slot)
			break;
		*slot = col(tx, st, 0);
	}
	done(st);
	int rv = rc == SQLITE_DONE ? 0 : step_error(tx->s, rc);
	for (size_t i = 0; rv == 0 && i < n; i++)
		rv = cb(arg, ids[i]);
	free(ids);
	return rv;
}

/* ------------------------------------------------ contacts, identities */

#define CONTACT_COLUMNS "id, name, attributes, merged_into, created_at, updated_at"

static void read_contact(parley_store_tx *tx, sqlite3_stmt *st, struct parley_contact_rec *c)
{
	c->id = col(tx, st, 0);
	c->name = col(tx, st, 1);
	c->attributes = col(tx, st, 2);
	c->merged_into = col(tx, st, 3);
	c->created_at = col(tx, st, 4);
	c->updated_at = col(tx, st, 5);
}

static const char *const sql_contact_insert =
        "INSERT INTO contacts (" CONTACT_COLUMNS ") VALUES (?1, ?2, coalesce(?3, '{}'), ?4, coalesce(?5, ?7),"
        " coalesce(?6, ?5, ?7)) ON CONFLICT (id) DO NOTHING";

static int contacts_insert(parley_store_tx *tx, const struct parley_contact_rec *c, size_t n)
{
	sqlite3_stmt *st = prep(tx->s, sql_contact_insert);
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
		int rv = exec_done(tx->s, st);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static const char *const sql_contact_get = "SELECT " CONTACT_COLUMNS " FROM contacts WHERE id = ?1";

/* The transaction holds SQLite's write lock: every row it reads is locked against other writers already. */
static int contacts_lock(parley_store_tx *tx, const char *const *ids, size_t n, struct parley_contact_rec *out,
                         int *found)
{
	sqlite3_stmt *st = prep(tx->s, sql_contact_get);
	if (!st)
		return PARLEY_EIO;
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		sq_bind(st, 1, ids[i]);
		int rc = sqlite3_step(st);
		found[i] = rc == SQLITE_ROW;
		if (found[i])
			read_contact(tx, st, &out[i]);
		done(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return step_error(tx->s, rc);
	}
	return 0;
}

/* A NULL attributes keeps the stored ones (the column is never NULL); NULL times keep created_at, set updated_at. */
static const char *const sql_contact_update =
        "UPDATE contacts SET name = ?2, attributes = coalesce(?3, attributes), merged_into = ?4,"
        " created_at = coalesce(?5, created_at), updated_at = coalesce(?6, ?7) WHERE id = ?1";

static int contact_update(parley_store_tx *tx, const struct parley_contact_rec *c)
{
	sqlite3_stmt *st = prep(tx->s, sql_contact_update);
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
	int rv = exec_done(tx->s, st);
	if (rv == 0 && sqlite3_changes(tx->s->w) == 0)
		rv = PARLEY_ENOENT;
	return rv;
}

static const char *const sql_identity_claim =
        "INSERT INTO identities (urn, contact_id, display_name, created_at) VALUES (?1, ?2, ?3, coalesce(?4, ?5))"
        " ON CONFLICT (urn) DO UPDATE SET display_name = excluded.display_name"
        " WHERE excluded.display_name IS NOT NULL AND display_name IS NOT excluded.display_name";
static const char *const sql_identity_owner = "SELECT contact_id FROM identities WHERE urn = ?1";

static int identities_claim(parley_store_tx *tx, const struct parley_identity_rec *in, size_t n, const char **owners)
{
	sqlite3_stmt *ins = prep(tx->s, sql_identity_claim);
	sqlite3_stmt *own = prep(tx->s, sql_identity_owner);
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
		int rv = exec_done(tx->s, ins);
		if (rv != 0)
			return rv;
		sq_bind(own, 1, in[i].urn);
		int rc = sqlite3_step(own);
		owners[i] = rc == SQLITE_ROW ? col(tx, own, 0) : NULL;
		done(own);
		if (rc != SQLITE_ROW)
			return step_error(tx->s, rc);
	}
	return 0;
}

static int identities_owner(parley_store_tx *tx, const char *const *urns, size_t n, const char **owners)
{
	sqlite3_stmt *st = prep(tx->s, sql_identity_owner);
	if (!st)
		return PARLEY_EIO;
	for (size_t i = 0; i < n; i++) {
		sq_bind(st, 1, urns[i]);
		int rc = sqlite3_step(st);
		owners[i] = rc == SQLITE_ROW ? col(tx, st, 0) : NULL;
		done(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return step_error(tx->s, rc);
	}
	return 0;
}

static const char *const sql_identities_of_contact =
        "SELECT urn, contact_id, display_name, created_at FROM identities WHERE contact_id = ?1"
        " ORDER BY created_at, rowid";

static int identities_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg)
{
	sqlite3_stmt *st = prep(tx->s, sql_identities_of_contact);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, contact_id);
	struct parley_identity_rec *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct parley_identity_rec *r = grow((void **)&rows, sizeof(*rows), &n, &cap);
		if (!r)
			break;
		r->urn = col(tx, st, 0);
		r->contact_id = col(tx, st, 1);
		r->display_name = col(tx, st, 2);
		r->created_at = col(tx, st, 3);
	}
	done(st);
	int rv = rc == SQLITE_DONE ? visit(rows, sizeof(*rows), n, cb, arg) : step_error(tx->s, rc);
	free(rows);
	return rv;
}

static const char *const sql_identities_move =
        "UPDATE identities SET contact_id = ?2 WHERE urn IN (SELECT value FROM json_each(?1))";

static int identities_move(parley_store_tx *tx, const char *const *urns, size_t n, const char *contact_id)
{
	if (n == 0)
		return 0;
	char *arr = json_strings(urns, n);
	sqlite3_stmt *st = arr ? prep(tx->s, sql_identities_move) : NULL;
	if (!st) {
		free(arr);
		return arr ? PARLEY_EIO : PARLEY_ENOMEM;
	}
	sq_bind(st, 1, arr);
	sq_bind(st, 2, contact_id);
	int rv = exec_done(tx->s, st);
	free(arr);
	return rv;
}

/* ---------------------------------------------------- conversations */

#define CONV_COLUMNS                                                                                                   \
	"c.id, c.contact_id, c.status, c.assignee, c.team, c.priority, c.labels, c.last_channel, c.snoozed_until,"     \
	" c.first_inbound_at, c.last_inbound_at, c.first_response_at, c.resolved_at, c.resolutions, c.created_at,"     \
	" c.updated_at"

static void read_conversation(parley_store_tx *tx, sqlite3_stmt *st, struct parley_conversation_rec *c)
{
	c->id = col(tx, st, 0);
	c->contact_id = col(tx, st, 1);
	c->status = col(tx, st, 2);
	c->assignee = col(tx, st, 3);
	c->team = col(tx, st, 4);
	c->priority = col(tx, st, 5);
	c->labels = col(tx, st, 6);
	c->last_channel = col(tx, st, 7);
	c->snoozed_until = col(tx, st, 8);
	c->first_inbound_at = col(tx, st, 9);
	c->last_inbound_at = col(tx, st, 10);
	c->first_response_at = col(tx, st, 11);
	c->resolved_at = col(tx, st, 12);
	c->resolutions = sqlite3_column_int64(st, 13);
	c->created_at = col(tx, st, 14);
	c->updated_at = col(tx, st, 15);
}

/* Step st for at most one conversation: 0 with *out, PARLEY_ENOENT, or an error. */
static int one_conversation(parley_store_tx *tx, sqlite3_stmt *st, struct parley_conversation_rec *out)
{
	memset(out, 0, sizeof(*out));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_conversation(tx, st, out);
	done(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? PARLEY_ENOENT : step_error(tx->s, rc);
}

/* Step st and visit every conversation it returns. */
static int visit_conversations(parley_store_tx *tx, sqlite3_stmt *st, parley_store_row_cb cb, void *arg)
{
	struct parley_conversation_rec *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct parley_conversation_rec *r = grow((void **)&rows, sizeof(*rows), &n, &cap);
		if (!r)
			break;
		read_conversation(tx, st, r);
	}
	done(st);
	int rv = rc == SQLITE_DONE ? visit(rows, sizeof(*rows), n, cb, arg) : step_error(tx->s, rc);
	free(rows);
	return rv;
}

static const char *const sql_conversation_current = "SELECT " CONV_COLUMNS " FROM conversations AS c"
                                                    " WHERE c.contact_id = ?1 ORDER BY c.created_at DESC, c.id DESC"
                                                    " LIMIT 1";

static int conversations_current(parley_store_tx *tx, const char *const *contact_ids, size_t n,
                                 struct parley_conversation_rec *out, int *found)
{
	sqlite3_stmt *st = prep(tx->s, sql_conversation_current);
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

static int conversation_lock(parley_store_tx *tx, const char *id, struct parley_conversation_rec *out)
{
	sqlite3_stmt *st = prep(tx->s, sql_conversation_get);
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

static int conversation_of_ref(parley_store_tx *tx, const char *channel, const char *ref,
                               struct parley_conversation_rec *out)
{
	sqlite3_stmt *st = prep(tx->s, sql_conversation_of_ref);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, channel);
	sq_bind(st, 2, ref);
	return one_conversation(tx, st, out);
}

static const char *const sql_conversation_put =
        "INSERT INTO conversations (id, contact_id, status, assignee, team, priority, labels, last_channel,"
        " snoozed_until, first_inbound_at, last_inbound_at, first_response_at, resolved_at, resolutions,"
        " created_at, updated_at) VALUES (?1, ?2, coalesce(?3, 'open'), ?4, ?5, ?6, coalesce(?7, '[]'), ?8, ?9,"
        " ?10, ?11, ?12, ?13, ?14, coalesce(?15, ?17), coalesce(?16, ?17))"
        " ON CONFLICT (id) DO UPDATE SET contact_id = excluded.contact_id, status = excluded.status,"
        " assignee = excluded.assignee, team = excluded.team, priority = excluded.priority,"
        " labels = excluded.labels, last_channel = excluded.last_channel, snoozed_until = excluded.snoozed_until,"
        " first_inbound_at = excluded.first_inbound_at, last_inbound_at = excluded.last_inbound_at,"
        " first_response_at = excluded.first_response_at, resolved_at = excluded.resolved_at,"
        " resolutions = excluded.resolutions, created_at = coalesce(?15, conversations.created_at),"
        " updated_at = excluded.updated_at";

static int conversations_put(parley_store_tx *tx, const struct parley_conversation_rec *c, size_t n)
{
	sqlite3_stmt *st = prep(tx->s, sql_conversation_put);
	if (!st)
		return PARLEY_EIO;
	char now[64];
	sq_now(now);
	for (size_t i = 0; i < n; i++) {
		const char *text[] = {c[i].id,
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
		                      c[i].resolved_at};
		for (int k = 0; k < 13; k++)
			sq_bind(st, k + 1, text[k]);
		sqlite3_bind_int64(st, 14, c[i].resolutions);
		sq_bind(st, 15, c[i].created_at);
		sq_bind(st, 16, c[i].updated_at);
		sq_bind(st, 17, now);
		int rv = exec_done(tx->s, st);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static const char *const sql_conversations_of_contact =
        "SELECT " CONV_COLUMNS " FROM conversations AS c WHERE c.contact_id = ?1 ORDER BY c.created_at, c.id";

static int conversations_of_contact(parley_store_tx *tx, const char *contact_id, parley_store_row_cb cb, void *arg)
{
	sqlite3_stmt *st = prep(tx->s, sql_conversations_of_contact);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, contact_id);
	return visit_conversations(tx, st, cb, arg);
}

static const char *const sql_conversations_due =
        "SELECT " CONV_COLUMNS " FROM conversations AS c WHERE c.status = 'snoozed' AND c.snoozed_until IS NOT NULL"
        " AND c.snoozed_until <= ?1 ORDER BY c.snoozed_until, c.id LIMIT ?2";

/* One writer at a time: no other transaction can hold a due row, so there is nothing to skip. */
static int conversations_due(parley_store_tx *tx, const char *now, size_t max, parley_store_row_cb cb, void *arg)
{
	sqlite3_stmt *st = prep(tx->s, sql_conversations_due);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	return visit_conversations(tx, st, cb, arg);
}

static const char *const sql_event_append =
        "INSERT INTO conversation_events (conversation_id, type, data, at) VALUES (?1, ?2, coalesce(?3, '{}'),"
        " coalesce(?4, ?5))";

static int conversation_events_append(parley_store_tx *tx, const struct parley_conversation_event_rec *e, size_t n)
{
	sqlite3_stmt *st = prep(tx->s, sql_event_append);
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
		int rv = exec_done(tx->s, st);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static const char *const sql_note_insert =
        "INSERT INTO notes (id, conversation_id, author, text, created_at) VALUES (?1, ?2, ?3, ?4, coalesce(?5, ?6))";

static int note_insert(parley_store_tx *tx, const char *id, const char *conversation_id, const char *author,
                       const char *text, const char *created_at)
{
	if (!id || !conversation_id || !text)
		return PARLEY_EINVAL;
	sqlite3_stmt *st = prep(tx->s, sql_note_insert);
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
	return exec_done(tx->s, st);
}

/* ------------------------------------------------------------ merges */

static const char *const sql_merge_insert =
        "INSERT INTO contact_merges (id, from_id, into_id, moved, at, undone_at) VALUES (?1, ?2, ?3,"
        " coalesce(?4, '{}'), coalesce(?5, ?7), ?6)";

static int merge_insert(parley_store_tx *tx, const struct parley_merge_rec *m)
{
	sqlite3_stmt *st = prep(tx->s, sql_merge_insert);
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
	return exec_done(tx->s, st);
}

static const char *const sql_merge_get =
        "SELECT id, from_id, into_id, moved, at, undone_at FROM contact_merges WHERE id = ?1";

static int merge_lock(parley_store_tx *tx, const char *id, struct parley_merge_rec *out)
{
	sqlite3_stmt *st = prep(tx->s, sql_merge_get);
	if (!st)
		return PARLEY_EIO;
	memset(out, 0, sizeof(*out));
	sq_bind(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->id = col(tx, st, 0);
		out->from_id = col(tx, st, 1);
		out->into_id = col(tx, st, 2);
		out->moved = col(tx, st, 3);
		out->at = col(tx, st, 4);
		out->undone_at = col(tx, st, 5);
	}
	done(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? PARLEY_ENOENT : step_error(tx->s, rc);
}

static const char *const sql_merge_undone = "UPDATE contact_merges SET undone_at = ?2 WHERE id = ?1";

static int merge_set_undone(parley_store_tx *tx, const char *id, const char *undone_at)
{
	sqlite3_stmt *st = prep(tx->s, sql_merge_undone);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, id);
	sq_bind(st, 2, undone_at);
	int rv = exec_done(tx->s, st);
	if (rv == 0 && sqlite3_changes(tx->s->w) == 0)
		rv = PARLEY_ENOENT;
	return rv;
}

/* ------------------------------------------------- reads, no transaction */

/*
 * On the reader connection.  Rows are copied before the visitor runs, so
 * the visitor may call the store (the reader's lock is not held then).
 */
static int messages_since(void *store, int64_t after_seq, size_t max, parley_store_row_cb cb, void *arg)
{
	struct store *s = store;
	struct parley_stored_envelope *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int rv = PARLEY_EIO;
	pthread_mutex_lock(&s->rlock);
	if (sqlite3_prepare_v2(s->r,
	                       "SELECT seq, id, " ENVELOPE_SQL " FROM messages WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	                       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, after_seq);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
		int rc;
		rv = 0;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct parley_stored_envelope *r = grow((void **)&rows, sizeof(*rows), &n, &cap);
			if (!r) {
				rv = PARLEY_ENOMEM;
				break;
			}
			r->seq = sqlite3_column_int64(st, 0);
			r->id = strdup((const char *)sqlite3_column_text(st, 1));
			r->envelope = strdup((const char *)sqlite3_column_text(st, 2));
			if (!r->id || !r->envelope)
				rv = PARLEY_ENOMEM;
		}
		if (rv == 0 && rc != SQLITE_DONE)
			rv = PARLEY_EIO;
	}
	if (rv == PARLEY_EIO)
		s->host->log(s->inst, PARLEY_LOG_ERROR, "%s: messages_since: %s", s->path, sqlite3_errmsg(s->r));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->rlock);
	if (rv == 0)
		rv = visit(rows, sizeof(*rows), n, cb, arg);
	for (size_t i = 0; i < n; i++) {
		free((char *)rows[i].id);
		free((char *)rows[i].envelope);
	}
	free(rows);
	return rv;
}

static const char *const sql_lease_take =
        "INSERT INTO leases (name, holder, expires_ms) VALUES (?1, ?2, ?3 + ?4)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms"
        " WHERE leases.holder = excluded.holder OR leases.expires_ms <= ?3";
static const char *const sql_lease_holder = "SELECT holder FROM leases WHERE name = ?1";
static const char *const sql_lease_release = "DELETE FROM leases WHERE name = ?1 AND holder = ?2";

static int lease_acquire(void *store, const char *name, const char *holder, int64_t now_ms, int64_t ttl_ms,
                         char **holder_out)
{
	struct store *s = store;
	if (!name || !holder || ttl_ms <= 0)
		return PARLEY_EINVAL;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *take = prep(s, sql_lease_take);
	sqlite3_stmt *who = prep(s, sql_lease_holder);
	int rv = take && who ? 0 : PARLEY_EIO;
	char *current = NULL;
	if (rv == 0 && sqlite3_exec(s->w, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		rv = step_error(s, sqlite3_errcode(s->w));
	else if (rv == 0) {
		sq_bind(take, 1, name);
		sq_bind(take, 2, holder);
		sqlite3_bind_int64(take, 3, now_ms);
		sqlite3_bind_int64(take, 4, ttl_ms);
		rv = exec_done(s, take);
		if (rv == 0) {
			sq_bind(who, 1, name);
			int rc = sqlite3_step(who);
			if (rc == SQLITE_ROW)
				current = strdup((const char *)sqlite3_column_text(who, 0));
			else
				rv = step_error(s, rc);
			done(who);
		}
		if (rv == 0 && sqlite3_exec(s->w, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			rv = step_error(s, sqlite3_errcode(s->w));
		if (rv != 0)
			sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&s->wlock);
	if (rv == 0 && (!current || strcmp(current, holder) != 0))
		rv = PARLEY_EBUSY;
	if (holder_out && current && (rv == 0 || rv == PARLEY_EBUSY))
		*holder_out = current;
	else
		free(current);
	return rv;
}

/* Releasing a lease one does not hold changes nothing (and is not an error). */
static int lease_release(void *store, const char *name, const char *holder)
{
	struct store *s = store;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = prep(s, sql_lease_release);
	int rv = PARLEY_EIO;
	if (st) {
		sq_bind(st, 1, name);
		sq_bind(st, 2, holder);
		rv = exec_done(s, st);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

const struct parley_store_typed_ops sq_typed_ops = {
        .struct_size = sizeof(struct parley_store_typed_ops),
        .tx_begin = tx_begin,
        .tx_commit = tx_commit,
        .tx_rollback = tx_rollback,
        .messages_insert = messages_insert,
        .message_status_advance = message_status_advance,
        .messages_set_owner = messages_set_owner,
        .messages_of_contact = messages_of_contact,
        .contacts_insert = contacts_insert,
        .contacts_lock = contacts_lock,
        .contact_update = contact_update,
        .identities_claim = identities_claim,
        .identities_owner = identities_owner,
        .identities_of_contact = identities_of_contact,
        .identities_move = identities_move,
        .conversations_current = conversations_current,
        .conversation_lock = conversation_lock,
        .conversation_of_ref = conversation_of_ref,
        .conversations_put = conversations_put,
        .conversations_of_contact = conversations_of_contact,
        .conversations_due = conversations_due,
        .conversation_events_append = conversation_events_append,
        .note_insert = note_insert,
        .merge_insert = merge_insert,
        .merge_lock = merge_lock,
        .merge_set_undone = merge_set_undone,
        .messages_since = messages_since,
        .lease_acquire = lease_acquire,
        .lease_release = lease_release,
};
