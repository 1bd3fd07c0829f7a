/*
 * typed_sla.c: SLA targets and surveys (store.h, 1.4) over the SQLite
 * schema (migration 10: conversation_sla, surveys).  The operations that
 * take a transaction run on it; the reads without one (sla_list,
 * surveys_due, ratings_list) are one statement on the writer under its
 * mutex, their visitor called while the row is on the statement.
 */
#include "typed.h"

#include <stdlib.h>
#include <string.h>

#define SLA_COLS                                                                                                       \
	"s.conversation_id, s.target, s.policy, s.started_at, s.due_at, s.warn_at, s.paused_at, s.warned_at,"          \
	" s.breached_at, s.met_at"
#define SURVEY_COLS                                                                                                    \
	"conversation_id, contact_id, survey, channel, language, status, due_at, sent_at, message_id, agent, team,"    \
	" score, comment, answered_at, reason"

static const char *const sql_sla_put =
        "INSERT OR REPLACE INTO conversation_sla (conversation_id, target, policy, started_at, due_at, warn_at,"
        " paused_at, warned_at, breached_at, met_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
static const char *const sql_sla_of =
        "SELECT " SLA_COLS ", NULL FROM conversation_sla AS s WHERE s.conversation_id = ?1 ORDER BY s.target";
static const char *const sql_sla_due =
        "SELECT " SLA_COLS ", NULL FROM conversation_sla AS s WHERE s.met_at IS NULL AND s.paused_at IS NULL AND"
        " ((s.warned_at IS NULL AND s.warn_at <= ?1) OR (s.breached_at IS NULL AND s.due_at <= ?1))"
        " ORDER BY s.due_at LIMIT ?2";
static const char *const sql_sla_list =
        "SELECT " SLA_COLS ", c.team FROM conversation_sla AS s JOIN conversations AS c ON c.id = s.conversation_id"
        " WHERE s.met_at IS NULL AND c.status <> 'resolved' AND (?2 IS NULL OR c.team = ?2) AND"
        " CASE ?1 WHEN 'breached' THEN s.breached_at IS NOT NULL"
        " ELSE s.warned_at IS NOT NULL AND s.breached_at IS NULL END ORDER BY s.due_at LIMIT ?3";
static const char *const sql_survey_insert =
        "INSERT INTO surveys (" SURVEY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
        " ?15)";
static const char *const sql_survey_update =
        "UPDATE surveys SET contact_id = ?2, survey = ?3, channel = ?4, language = ?5, status = ?6, due_at = ?7,"
        " sent_at = ?8, message_id = ?9, agent = ?10, team = ?11, score = ?12, comment = ?13, answered_at = ?14,"
        " reason = ?15 WHERE conversation_id = ?1";
static const char *const sql_survey_get = "SELECT " SURVEY_COLS " FROM surveys WHERE conversation_id = ?1";
static const char *const sql_surveys_due = "SELECT " SURVEY_COLS " FROM surveys WHERE status = 'scheduled' AND"
                                           " due_at <= ?1 ORDER BY due_at, conversation_id LIMIT ?2";
static const char *const sql_ratings =
        "SELECT " SURVEY_COLS " FROM surveys WHERE status = 'answered' AND (?1 IS NULL OR conversation_id = ?1) AND"
        " (?2 IS NULL OR agent = ?2) ORDER BY answered_at DESC, conversation_id LIMIT ?3";

/* A column as text: kept in tx's arena when there is one, else borrowed from the statement. */
static const char *col(parley_store_tx *tx, sqlite3_stmt *st, int i)
{
	return tx ? ty_col(tx, st, i) : (const char *)sqlite3_column_text(st, i);
}

static void sla_row(parley_store_tx *tx, sqlite3_stmt *st, struct parley_sla_rec *r)
{
	const char **f[] = {&r->conversation_id, &r->target,  &r->policy,    &r->started_at,
	                    &r->due_at,          &r->warn_at, &r->paused_at, &r->warned_at,
	                    &r->breached_at,     &r->met_at,  &r->team};
	for (int i = 0; i < 11; i++)
		*f[i] = col(tx, st, i);
}

static void survey_row(parley_store_tx *tx, sqlite3_stmt *st, struct parley_survey_rec *r)
{
	const char **f[] = {&r->conversation_id, &r->contact_id, &r->survey,     &r->channel, &r->language, &r->status,
	                    &r->due_at,          &r->sent_at,    &r->message_id, &r->agent,   &r->team};
	for (int i = 0; i < 11; i++)
		*f[i] = col(tx, st, i);
	r->score = sqlite3_column_type(st, 11) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 11);
	r->comment = col(tx, st, 12);
	r->answered_at = col(tx, st, 13);
	r->reason = col(tx, st, 14);
}

enum kind { SLA, SURVEY };

/*
 * Step st (bound), each row as a record of kind: collected in tx's arena
 * and visited after the statement is done (a transaction's visitor may
 * call other operations), or without tx visited on the statement.
 */
static int rows(struct store *s, parley_store_tx *tx, sqlite3_stmt *st, enum kind kind, parley_store_row_cb cb,
                void *arg)
{
	size_t size = kind == SLA ? sizeof(struct parley_sla_rec) : sizeof(struct parley_survey_rec);
	void *kept = NULL;
	size_t n = 0, cap = 0;
	int rv = 0;
	for (;;) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			rv = ty_step_error(s, rc);
			break;
		}
		struct parley_sla_rec sr = {0};
		struct parley_survey_rec vr = {0};
		void *row = kind == SLA ? (void *)&sr : (void *)&vr;
		if (kind == SLA)
			sla_row(tx, st, &sr);
		else
			survey_row(tx, st, &vr);
		if (!tx) {
			if ((rv = cb(arg, row)) != 0)
				break;
			continue;
		}
		void *slot = ty_grow(&kept, size, &n, &cap);
		if (!slot) {
			rv = PARLEY_ENOMEM;
			break;
		}
		memcpy(slot, row, size);
	}
	ty_done(st);
	if (rv == 0 && tx)
		rv = ty_visit(kept, size, n, cb, arg);
	free(kept);
	return rv;
}

int ty_sla_put(parley_store_tx *tx, const struct parley_sla_rec *r, size_t n)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_sla_put);
	if (!st)
		return PARLEY_EIO;
	for (size_t i = 0; i < n; i++) {
		const char *v[] = {r[i].conversation_id, r[i].target,    r[i].policy,    r[i].started_at,  r[i].due_at,
		                   r[i].warn_at,         r[i].paused_at, r[i].warned_at, r[i].breached_at, r[i].met_at};
		for (int k = 0; k < 10; k++)
			sq_bind(st, k + 1, v[k]);
		int rv = ty_exec_done(tx->s, st);
		if (rv != 0)
			return rv;
	}
	return 0;
}

int ty_sla_of_conversation(parley_store_tx *tx, const char *conversation_id, parley_store_row_cb cb, void *arg)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_sla_of);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, conversation_id);
	return rows(tx->s, tx, st, SLA, cb, arg);
}

/* One writer at a time: no other transaction can hold a due row, so there is nothing to skip. */
int ty_sla_due(parley_store_tx *tx, const char *now, size_t max, parley_store_row_cb cb, void *arg)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_sla_due);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	return rows(tx->s, tx, st, SLA, cb, arg);
}

int ty_sla_list(void *store, const char *state, const char *team, size_t max, parley_store_row_cb cb, void *arg)
{
	struct store *s = store;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_sla_list);
	int rv = PARLEY_EIO;
	if (st) {
		sq_bind(st, 1, state);
		sq_bind(st, 2, team);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
		rv = rows(s, NULL, st, SLA, cb, arg);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

static void bind_survey(sqlite3_stmt *st, const struct parley_survey_rec *r)
{
	const char *v[] = {r->conversation_id, r->contact_id, r->survey,     r->channel, r->language, r->status,
	                   r->due_at,          r->sent_at,    r->message_id, r->agent,   r->team};
	for (int k = 0; k < 11; k++)
		sq_bind(st, k + 1, v[k]);
	if (r->score >= 0)
		sqlite3_bind_int64(st, 12, r->score);
	sq_bind(st, 13, r->comment);
	sq_bind(st, 14, r->answered_at);
	sq_bind(st, 15, r->reason);
}

int ty_survey_insert(parley_store_tx *tx, const struct parley_survey_rec *r)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_survey_insert);
	if (!st)
		return PARLEY_EIO;
	bind_survey(st, r);
	int rc = sqlite3_step(st);
	ty_done(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return PARLEY_EEXIST; /* not logged: one survey per conversation is the rule, not a failure */
	return rc == SQLITE_DONE ? 0 : ty_step_error(tx->s, rc);
}

int ty_survey_update(parley_store_tx *tx, const struct parley_survey_rec *r)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_survey_update);
	if (!st)
		return PARLEY_EIO;
	bind_survey(st, r);
	int rv = ty_exec_done(tx->s, st);
	return rv == 0 && sqlite3_changes(tx->s->w) == 0 ? PARLEY_ENOENT : rv;
}

static int keep_one(void *arg, const void *row)
{
	*(struct parley_survey_rec *)arg = *(const struct parley_survey_rec *)row;
	return 1;
}

int ty_survey_lock(parley_store_tx *tx, const char *conversation_id, struct parley_survey_rec *out)
{
	sqlite3_stmt *st = ty_prep(tx->s, sql_survey_get);
	if (!st)
		return PARLEY_EIO;
	sq_bind(st, 1, conversation_id);
	int rv = rows(tx->s, tx, st, SURVEY, keep_one, out);
	return rv == 1 ? 0 : rv == 0 ? PARLEY_ENOENT : rv;
}

int ty_surveys_due(void *store, const char *now, size_t max, parley_store_row_cb cb, void *arg)
{
	struct store *s = store;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_surveys_due);
	int rv = PARLEY_EIO;
	if (st) {
		sq_bind(st, 1, now);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
		rv = rows(s, NULL, st, SURVEY, cb, arg);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

int ty_ratings_list(void *store, const char *conversation_id, const char *agent, size_t max, parley_store_row_cb cb,
                    void *arg)
{
	struct store *s = store;
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st = ty_prep(s, sql_ratings);
	int rv = PARLEY_EIO;
	if (st) {
		sq_bind(st, 1, conversation_id);
		sq_bind(st, 2, agent);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
		rv = rows(s, NULL, st, SURVEY, cb, arg);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}
