/*
 * pg_typed_sla.c: SLA targets and surveys (store.h, 1.4) over the
 * PostgreSQL schema (migration 8: conversation_sla, surveys).  The due
 * targets are read FOR UPDATE SKIP LOCKED, so two nodes never warn twice;
 * the reads without a transaction are one statement each.
 */
#include "pg_typed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLA_COLS                                                                                                       \
	"s.conversation_id, s.target, s.policy, s.started_at, s.due_at, s.warn_at, s.paused_at, s.warned_at,"          \
	" s.breached_at, s.met_at"
#define SURVEY_COLS                                                                                                    \
	"conversation_id, contact_id, survey, channel, language, status, due_at, sent_at, message_id, agent, team,"    \
	" score, comment, answered_at, reason"

/* A column: copied into tx's arena when there is a transaction, else borrowed from r. */
static const char *col(parley_store_tx *tx, const PGresult *r, int row, int i)
{
	return tx ? pg_tx_dup(tx, r, row, i) : pg_val(r, row, i);
}

static void sla_row(parley_store_tx *tx, const PGresult *r, int row, struct parley_sla_rec *s)
{
	const char **f[] = {&s->conversation_id, &s->target,  &s->policy,    &s->started_at,
	                    &s->due_at,          &s->warn_at, &s->paused_at, &s->warned_at,
	                    &s->breached_at,     &s->met_at,  &s->team};
	for (int i = 0; i < 11; i++)
		*f[i] = col(tx, r, row, i);
}

static void survey_row(parley_store_tx *tx, const PGresult *r, int row, struct parley_survey_rec *s)
{
	const char **f[] = {&s->conversation_id, &s->contact_id, &s->survey,     &s->channel, &s->language, &s->status,
	                    &s->due_at,          &s->sent_at,    &s->message_id, &s->agent,   &s->team};
	for (int i = 0; i < 11; i++)
		*f[i] = col(tx, r, row, i);
	const char *score = pg_val(r, row, 11);
	s->score = score ? atoll(score) : -1;
	s->comment = col(tx, r, row, 12);
	s->answered_at = col(tx, r, row, 13);
	s->reason = col(tx, r, row, 14);
}

enum kind { SLA, SURVEY };

/* Visit the rows of r as records of kind; rv is the statement's status. */
static int visit(parley_store_tx *tx, PGresult *r, int rv, enum kind kind, parley_store_row_cb cb, void *arg)
{
	for (int i = 0; r && rv == 0 && i < PQntuples(r); i++) {
		struct parley_sla_rec s;
		struct parley_survey_rec v;
		if (kind == SLA) {
			sla_row(tx, r, i, &s);
			rv = cb(arg, &s);
		} else {
			survey_row(tx, r, i, &v);
			rv = cb(arg, &v);
		}
	}
	PQclear(r);
	return rv;
}

int pg_sla_put(parley_store_tx *tx, const struct parley_sla_rec *s, size_t n)
{
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	int rv = 0;
	for (size_t i = 0; i < n && rv == 0; i++) {
		const char *p[] = {s[i].conversation_id, s[i].target,    s[i].policy,    s[i].started_at,  s[i].due_at,
		                   s[i].warn_at,         s[i].paused_at, s[i].warned_at, s[i].breached_at, s[i].met_at};
		rv = pg_tx_cmd(
		        tx,
		        "INSERT INTO conversation_sla (conversation_id, target, policy, started_at, due_at, warn_at,"
		        " paused_at, warned_at, breached_at, met_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
		        " ON CONFLICT (conversation_id, target) DO UPDATE SET policy = excluded.policy,"
		        " started_at = excluded.started_at, due_at = excluded.due_at, warn_at = excluded.warn_at,"
		        " paused_at = excluded.paused_at, warned_at = excluded.warned_at,"
		        " breached_at = excluded.breached_at, met_at = excluded.met_at",
		        10, p, NULL);
	}
	return rv;
}

int pg_sla_of_conversation(parley_store_tx *tx, const char *conversation_id, parley_store_row_cb cb, void *arg)
{
	const char *p[] = {conversation_id};
	int rv;
	PGresult *r = pg_tx_exec(tx,
	                         "SELECT " SLA_COLS ", NULL FROM conversation_sla AS s WHERE s.conversation_id = $1"
	                         " ORDER BY s.target",
	                         1, p, &rv);
	return visit(tx, r, rv, SLA, cb, arg);
}

int pg_sla_due(parley_store_tx *tx, const char *now, size_t max, parley_store_row_cb cb, void *arg)
{
	char lim[24];
	pg_limit(lim, max);
	const char *p[] = {now, lim};
	/*
	 * The sweep appends log rows for what it locks here: the log's lock first,
	 * as a commit takes it before the rows it writes, or the two would wait
	 * for each other.
	 */
	int rv = pg_tx_lock_seq(tx);
	if (rv != 0)
		return rv;
	PGresult *r = pg_tx_exec(tx,
	                         "SELECT " SLA_COLS ", NULL FROM conversation_sla AS s WHERE s.met_at IS NULL AND"
	                         " s.paused_at IS NULL AND ((s.warned_at IS NULL AND s.warn_at <= $1) OR"
	                         " (s.breached_at IS NULL AND s.due_at <= $1)) ORDER BY s.due_at LIMIT $2::bigint"
	                         " FOR UPDATE SKIP LOCKED",
	                         2, p, &rv);
	return visit(tx, r, rv, SLA, cb, arg);
}

int pg_sla_list(void *store, const char *state, const char *team, size_t max, parley_store_row_cb cb, void *arg)
{
	char lim[24];
	pg_limit(lim, max);
	const char *p[] = {state, team, lim};
	int rv;
	PGresult *r = pg_run(store,
	                     "SELECT " SLA_COLS ", c.team FROM conversation_sla AS s JOIN conversations AS c"
	                     " ON c.id = s.conversation_id WHERE s.met_at IS NULL AND c.status <> 'resolved' AND"
	                     " ($2::text IS NULL OR c.team = $2) AND CASE $1::text WHEN 'breached' THEN"
	                     " s.breached_at IS NOT NULL ELSE s.warned_at IS NOT NULL AND s.breached_at IS NULL END"
	                     " ORDER BY s.due_at LIMIT $3::bigint",
	                     3, p, &rv);
	return visit(NULL, r, rv, SLA, cb, arg);
}

/* The survey's columns as parameters (score NULL when < 0); score is written into buf. */
static void survey_params(const struct parley_survey_rec *s, const char *p[15], char buf[24])
{
	const char *v[] = {s->conversation_id, s->contact_id, s->survey,     s->channel, s->language, s->status,
	                   s->due_at,          s->sent_at,    s->message_id, s->agent,   s->team};
	for (int i = 0; i < 11; i++)
		p[i] = v[i];
	snprintf(buf, 24, "%lld", (long long)s->score);
	p[11] = s->score >= 0 ? buf : NULL;
	p[12] = s->comment;
	p[13] = s->answered_at;
	p[14] = s->reason;
}

int pg_survey_insert(parley_store_tx *tx, const struct parley_survey_rec *s)
{
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	const char *p[15];
	char buf[24];
	survey_params(s, p, buf);
	long rows = 0;
	/* ON CONFLICT: one survey per conversation is the rule, not an error the server logs. */
	int rv = pg_tx_cmd(tx,
	                   "INSERT INTO surveys (" SURVEY_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
	                   " $12::bigint, $13, $14, $15) ON CONFLICT (conversation_id) DO NOTHING",
	                   15, p, &rows);
	return rv == 0 && rows == 0 ? PARLEY_EEXIST : rv;
}

int pg_survey_update(parley_store_tx *tx, const struct parley_survey_rec *s)
{
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	const char *p[15];
	char buf[24];
	survey_params(s, p, buf);
	long rows = 0;
	int rv = pg_tx_cmd(tx,
	                   "UPDATE surveys SET contact_id = $2, survey = $3, channel = $4, language = $5, status = $6,"
	                   " due_at = $7, sent_at = $8, message_id = $9, agent = $10, team = $11, score = $12::bigint,"
	                   " comment = $13, answered_at = $14, reason = $15 WHERE conversation_id = $1",
	                   15, p, &rows);
	return rv == 0 && rows == 0 ? PARLEY_ENOENT : rv;
}

int pg_survey_lock(parley_store_tx *tx, const char *conversation_id, struct parley_survey_rec *out)
{
	int locked = pg_tx_lock_seq(tx); /* the lock order: pg_typed.c */
	if (locked != 0)
		return locked;
	const char *p[] = {conversation_id};
	int rv;
	PGresult *r =
	        pg_tx_exec(tx, "SELECT " SURVEY_COLS " FROM surveys WHERE conversation_id = $1 FOR UPDATE", 1, p, &rv);
	if (rv == 0 && PQntuples(r) == 0)
		rv = PARLEY_ENOENT;
	if (rv == 0)
		survey_row(tx, r, 0, out);
	PQclear(r);
	return rv;
}

int pg_surveys_due(void *store, const char *now, size_t max, parley_store_row_cb cb, void *arg)
{
	char lim[24];
	pg_limit(lim, max);
	const char *p[] = {now, lim};
	int rv;
	PGresult *r = pg_run(store,
	                     "SELECT " SURVEY_COLS " FROM surveys WHERE status = 'scheduled' AND due_at <= $1"
	                     " ORDER BY due_at, conversation_id LIMIT $2::bigint",
	                     2, p, &rv);
	return visit(NULL, r, rv, SURVEY, cb, arg);
}

int pg_ratings_list(void *store, const char *conversation_id, const char *agent, size_t max, parley_store_row_cb cb,
                    void *arg)
{
	char lim[24];
	pg_limit(lim, max);
	const char *p[] = {conversation_id, agent, lim};
	int rv;
	PGresult *r = pg_run(store,
	                     "SELECT " SURVEY_COLS " FROM surveys WHERE status = 'answered' AND"
	                     " ($1::text IS NULL OR conversation_id = $1) AND ($2::text IS NULL OR agent = $2)"
	                     " ORDER BY answered_at DESC, conversation_id LIMIT $3::bigint",
	                     3, p, &rv);
	return visit(NULL, r, rv, SURVEY, cb, arg);
}
