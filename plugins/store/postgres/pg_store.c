/*
 * pg_store.c: the PostgreSQL store's lifecycle, connection pool, schema
 * migrations and statement helpers.
 *
 * Several gateway nodes may share one database, so everything a node
 * decides alone in SQLite is serialized here by the server: row locks for
 * contacts and conversations, SKIP LOCKED for the outbox and wake-ups, an
 * advisory lock for the schema.  Each transaction holds one pooled
 * connection; reads outside a transaction borrow one for the statement.  A
 * connection that broke is dropped when it is released and the next caller
 * connects again, so a restarted server is picked up without a restart of
 * the gateway, and while it is down every op fails within connect_timeout.
 */
#include "pg_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Numbered migrations, applied in order at start, all in one transaction
 * under an advisory lock so that two nodes starting together do not race.
 * 1 mirrors SQLite's migrations 1 and 2, plus the outbox claim time and
 * leases.  Foreign keys are left out as in SQLite (which does not enforce
 * them): the typed contract lets an identity be claimed before its contact
 * is inserted.
 */
static const char *const migrations[] = {
        /* 1: the schema. */
        "CREATE FUNCTION parley_status_rank(s text) RETURNS int LANGUAGE sql IMMUTABLE AS $$"
        "  SELECT CASE s WHEN 'sent' THEN 2 WHEN 'delivered' THEN 3 WHEN 'read' THEN 4 WHEN 'failed' THEN 5"
        "  ELSE 1 END $$;"
        "CREATE TABLE contacts ("
        "  id text PRIMARY KEY, name text, attributes jsonb NOT NULL DEFAULT '{}',"
        "  merged_into text, created_at text NOT NULL, updated_at text NOT NULL);"
        "CREATE TABLE identities ("
        "  urn text PRIMARY KEY, contact_id text NOT NULL, display_name text, created_at text NOT NULL);"
        "CREATE INDEX identities_contact ON identities(contact_id, created_at);"
        "CREATE TABLE conversations ("
        "  id text PRIMARY KEY, contact_id text NOT NULL, status text NOT NULL DEFAULT 'open',"
        "  assignee text, team text, priority text, labels jsonb NOT NULL DEFAULT '[]', last_channel text,"
        "  snoozed_until text, first_inbound_at text, last_inbound_at text, first_response_at text,"
        "  resolved_at text, resolutions bigint NOT NULL DEFAULT 0,"
        "  created_at text NOT NULL, updated_at text NOT NULL);"
        "CREATE INDEX conversations_contact ON conversations(contact_id, created_at);"
        "CREATE INDEX conversations_status ON conversations(status, updated_at);"
        "CREATE INDEX conversations_updated ON conversations(updated_at);"
        "CREATE INDEX conversations_assignee ON conversations(assignee, status) WHERE assignee IS NOT NULL;"
        "CREATE INDEX conversations_snoozed ON conversations(snoozed_until) WHERE status = 'snoozed';"
        "CREATE TABLE messages ("
        "  seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE,"
        "  channel text NOT NULL, channel_type text NOT NULL, external_id text,"
        "  direction text NOT NULL, kind text NOT NULL, from_urn text, to_urn text,"
        "  contact_id text, conversation_id text,"
        "  status text, attempts integer NOT NULL DEFAULT 0, next_attempt_ms bigint, claimed_at_ms bigint,"
        "  provider_id text, error text, thread_ref text,"
        "  received_at text NOT NULL, updated_at text, envelope jsonb NOT NULL,"
        "  UNIQUE (channel, external_id));"
        "CREATE INDEX messages_conversation ON messages(conversation_id, seq) WHERE conversation_id IS NOT NULL;"
        "CREATE INDEX messages_contact ON messages(contact_id, seq) WHERE contact_id IS NOT NULL;"
        "CREATE INDEX messages_outbox ON messages(status, next_attempt_ms)"
        "  WHERE direction = 'outbound' AND status IN ('queued', 'retry', 'sending');"
        "CREATE INDEX messages_provider ON messages(channel, provider_id) WHERE provider_id IS NOT NULL;"
        "CREATE INDEX messages_receipts ON messages(channel, thread_ref) WHERE kind = 'status';"
        "CREATE TABLE conversation_events (seq bigserial PRIMARY KEY, conversation_id text NOT NULL,"
        "  type text NOT NULL, data jsonb NOT NULL DEFAULT '{}', at text NOT NULL);"
        "CREATE INDEX conversation_events_conversation ON conversation_events(conversation_id, seq);"
        "CREATE TABLE notes (id text PRIMARY KEY, conversation_id text NOT NULL, author text, text text NOT NULL,"
        "  created_at text NOT NULL);"
        "CREATE INDEX notes_conversation ON notes(conversation_id, created_at);"
        "CREATE TABLE contact_merges (id text PRIMARY KEY, from_id text NOT NULL, into_id text NOT NULL,"
        "  moved jsonb NOT NULL, at text NOT NULL, undone_at text);"
        "CREATE TABLE kv (ns text NOT NULL, key text NOT NULL, value bytea, updated_at text NOT NULL,"
        "  PRIMARY KEY (ns, key));"
        "CREATE TABLE leases (name text PRIMARY KEY, holder text NOT NULL, expires_ms bigint NOT NULL);",
        /* 2: counters several nodes advance together (round-robin positions). */
        "CREATE TABLE counters (name text PRIMARY KEY, value bigint NOT NULL);",
        /* 3: accounts, service tokens, sessions, failed logins (store.h ABI 1.3; pg_accounts.c). */
        "CREATE TABLE accounts (name text PRIMARY KEY, email text NOT NULL UNIQUE, role text NOT NULL,"
        "  teams jsonb NOT NULL DEFAULT '[]', password_hash text, disabled boolean NOT NULL DEFAULT false,"
        "  created_at text NOT NULL, updated_at text NOT NULL);"
        "CREATE TABLE service_tokens (id text PRIMARY KEY, name text NOT NULL, role text NOT NULL,"
        "  scopes jsonb NOT NULL DEFAULT '[]', hash text NOT NULL UNIQUE, created_at text NOT NULL, revoked_at text,"
        "  last_used_at text);"
        "CREATE TABLE sessions (hash text PRIMARY KEY, account text NOT NULL, created_ms bigint NOT NULL,"
        "  expires_ms bigint NOT NULL, revoked boolean NOT NULL DEFAULT false);"
        "CREATE INDEX sessions_account ON sessions(account);"
        "CREATE INDEX sessions_expiry ON sessions(expires_ms);"
        "CREATE TABLE login_failures (key text PRIMARY KEY, count bigint NOT NULL, last_ms bigint NOT NULL);",
        /* 4: conversations.list's order (latest activity, then id) read from one index, ties included. */
        "DROP INDEX conversations_updated;"
        "CREATE INDEX conversations_recent ON conversations(updated_at, id);",
        /* 5: since when a conversation waits in its team's queue (conversations_put keeps it; NULL: not waiting). */
        "ALTER TABLE conversations ADD COLUMN queued_at text;"
        "UPDATE conversations SET queued_at = updated_at WHERE coalesce(team, '') <> '' AND coalesce(assignee, '') = ''"
        " AND status IN ('open', 'pending');"
        "CREATE INDEX conversations_queue ON conversations(team, queued_at) WHERE queued_at IS NOT NULL;",
        /* 6: the dead letters, counted and listed without reading every message. */
        "CREATE INDEX messages_dead ON messages(channel, seq) WHERE direction = 'outbound' AND status = 'failed';",
        /* 7: the history as the KPIs read it (docs/kpis.md): who did it, and who held the conversation where,
         * recorded with each row, and its time as milliseconds (at_ms, what the KPIs compute with); rows by time;
         * the KPIs' SQL functions (pg_reports.c). */
        PG_BUSINESS_MS_FUNCTION
        "ALTER TABLE conversation_events ADD COLUMN actor text, ADD COLUMN agent text, ADD COLUMN team text,"
        " ADD COLUMN channel text, ADD COLUMN at_ms bigint;"
        "UPDATE conversation_events AS e SET at_ms = parley_ms(e.at), actor = e.data->>'by', agent = c.assignee,"
        " team = c.team, channel = c.last_channel FROM conversations AS c WHERE c.id = e.conversation_id;"
        "UPDATE conversation_events SET at_ms = parley_ms(at) WHERE at_ms IS NULL;"
        "CREATE INDEX conversation_events_at ON conversation_events(at, conversation_id);",
        /* 8: SLA targets per conversation, and the surveys asked after a resolve with their ratings (pg_typed_sla.c).
         */
        "CREATE TABLE conversation_sla (conversation_id text NOT NULL, target text NOT NULL, policy text NOT NULL,"
        "  started_at text NOT NULL, due_at text NOT NULL, warn_at text NOT NULL, paused_at text, warned_at text,"
        "  breached_at text, met_at text, PRIMARY KEY (conversation_id, target));"
        "CREATE INDEX conversation_sla_running ON conversation_sla(due_at) WHERE met_at IS NULL AND paused_at IS NULL;"
        "CREATE TABLE surveys (conversation_id text PRIMARY KEY, contact_id text NOT NULL, survey text NOT NULL,"
        "  channel text, language text, status text NOT NULL, due_at text NOT NULL, sent_at text, message_id text,"
        "  agent text, team text, score bigint, comment text, answered_at text, reason text);"
        "CREATE INDEX surveys_due ON surveys(due_at) WHERE status = 'scheduled';"
        "CREATE INDEX surveys_answered ON surveys(agent, answered_at) WHERE status = 'answered';",
        /*
         * 9: broadcasts and their recipients (store.h ABI 1.4; SQLite's migration 11); the outbox's priority
         * class (1: broadcast traffic, claimed after replies); the customer's last message per channel and
         * address (the customer-service window).
         */
        "CREATE TABLE broadcasts (id text PRIMARY KEY, state text NOT NULL, spec jsonb NOT NULL, created_by text,"
        "  created_at text NOT NULL, updated_at text NOT NULL);"
        "CREATE TABLE broadcast_recipients (broadcast_id text NOT NULL, contact_id text NOT NULL, channel text,"
        "  urn text, state text NOT NULL, reason text, message_id text, updated_at text NOT NULL,"
        "  PRIMARY KEY (broadcast_id, contact_id));"
        "CREATE INDEX broadcast_recipients_pending ON broadcast_recipients(broadcast_id, channel, contact_id)"
        "  WHERE state = 'pending';"
        "CREATE UNIQUE INDEX broadcast_recipients_message ON broadcast_recipients(message_id)"
        "  WHERE message_id IS NOT NULL;"
        "ALTER TABLE messages ADD COLUMN priority integer NOT NULL DEFAULT 0;"
        "CREATE INDEX messages_inbound_from ON messages(channel, from_urn, seq) WHERE direction = 'inbound';",
        NULL,
};

static const struct parley_config_key config_map[] = {
        {"url", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "libpq connection URI or string, e.g. postgres://parley@127.0.0.1:5432/parley (may carry a password)"},
        {"pool_size", PARLEY_CFG_INT, "4", 0, "connections kept to the server (each open transaction holds one)"},
        {"connect_timeout", PARLEY_CFG_DURATION, "5s", 0,
         "how long to wait for the server (connecting, or a free pooled connection) before an op fails"},
        {"claim_timeout", PARLEY_CFG_DURATION, "60s", 0,
         "an outbox claim not released within this time (its node died) is claimable again"},
        {NULL, 0, NULL, 0, NULL},
};

void pg_now(char out[64])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

void pg_limit(char out[24], size_t max)
{
	uint64_t m = max > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : (uint64_t)max;
	snprintf(out, 24, "%llu", (unsigned long long)m);
}

/* malloc'd printf of two strings; messages are short, so a longer one is cut at 2 KiB. */
static char *str_printf(const char *fmt, const char *a, const char *b)
{
	char buf[2048];
	snprintf(buf, sizeof(buf), fmt, a, b);
	return strdup(buf);
}

/* libpq's messages end with a newline (and may hold several lines): log the first line. */
static void log_pq(struct pgstore *s, int level, const char *what, const char *msg)
{
	size_t n = strcspn(msg ? msg : "", "\n");
	s->host->log(s->inst, level, "postgres %s: %s: %.*s", s->where, what, (int)n, msg ? msg : "");
}

/* ------------------------------------------------------------ the pool */

/* Server notices ("already exists, skipping") go to the log, not to the gateway's stderr. */
static void on_notice(void *arg, const char *msg)
{
	log_pq(arg, PARLEY_LOG_DEBUG, "notice", msg);
}

static PGconn *connect_db(struct pgstore *s)
{
	char timeout[24], user_timeout[24];
	/* libpq counts whole seconds and treats anything under 2 as 2. */
	int64_t sec = (s->connect_timeout_ms + 999) / 1000;
	snprintf(timeout, sizeof(timeout), "%lld", (long long)(sec < 2 ? 2 : sec));
	/* A server that vanishes mid-statement (no RST) fails the statement after this, instead of hanging. */
	snprintf(user_timeout, sizeof(user_timeout), "%lld", (long long)s->connect_timeout_ms);
	/* Keywords after dbname override those the URL carries. */
	const char *const keys[] = {"dbname",           "connect_timeout",  "application_name",
	                            "keepalives",       "keepalives_idle",  "keepalives_interval",
	                            "keepalives_count", "tcp_user_timeout", NULL};
	const char *const vals[] = {s->url, timeout, "parley", "1", "10", "5", "3", user_timeout, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	int ok = c && PQstatus(c) == CONNECTION_OK;
	/* While the server is down every op tries again: say so once, then every 30 s, not on every poll. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	pthread_mutex_lock(&s->mu);
	int say = ok ? s->down : (!s->down || now - s->down_logged_ms >= 30000);
	if (!ok && say)
		s->down_logged_ms = now;
	s->down = !ok;
	pthread_mutex_unlock(&s->mu);
	if (!ok) {
		if (say)
			log_pq(s, PARLEY_LOG_ERROR, "cannot connect (ops fail until it is back)",
			       c ? PQerrorMessage(c) : "out of memory");
		PQfinish(c);
		return NULL;
	}
	if (say)
		s->host->log(s->inst, PARLEY_LOG_INFO, "postgres %s: connected again", s->where);
	PQsetNoticeProcessor(c, on_notice, s);
	return c;
}

int pg_acquire(struct pgstore *s, struct pg_conn **out)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)(s->connect_timeout_ms / 1000);
	deadline.tv_nsec += (long)(s->connect_timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	struct pg_conn *c = NULL;
	for (;;) {
		/* Prefer a connected slot, so an idle pool does not open connections it does not need. */
		for (int i = 0; i < s->pool_size && !c; i++)
			if (!s->pool[i].busy && s->pool[i].c)
				c = &s->pool[i];
		for (int i = 0; i < s->pool_size && !c; i++)
			if (!s->pool[i].busy)
				c = &s->pool[i];
		if (c)
			break;
		if (pthread_cond_timedwait(&s->freed, &s->mu, &deadline) == ETIMEDOUT) {
			pthread_mutex_unlock(&s->mu);
			s->host->log(s->inst, PARLEY_LOG_WARN,
			             "postgres %s: every pooled connection stayed busy for connect_timeout:"
			             " raise pool_size",
			             s->where);
			return PARLEY_EBUSY;
		}
	}
	c->busy = 1;
	pthread_mutex_unlock(&s->mu);
	/*
	 * An idle connection whose server went away has an end-of-file (or the server's goodbye) waiting:
	 * reading it without blocking finds out, so a restarted server costs no failed op per pooled connection.
	 */
	/* Twice: a server shutting down sends its FATAL first, then closes. */
	if (c->c && (PQconsumeInput(c->c) == 0 || PQconsumeInput(c->c) == 0 || PQstatus(c->c) != CONNECTION_OK)) {
		PQfinish(c->c);
		c->c = NULL;
	}
	if (!c->c && !(c->c = connect_db(s))) {
		pg_release(s, c);
		return PARLEY_EIO;
	}
	*out = c;
	return 0;
}

void pg_release(struct pgstore *s, struct pg_conn *c)
{
	if (c->c && PQstatus(c->c) == CONNECTION_OK && PQtransactionStatus(c->c) != PQTRANS_IDLE)
		PQclear(PQexec(c->c, "ROLLBACK"));
	if (c->c && (PQstatus(c->c) != CONNECTION_OK || PQtransactionStatus(c->c) != PQTRANS_IDLE)) {
		PQfinish(c->c);
		c->c = NULL;
	}
	pthread_mutex_lock(&s->mu);
	c->busy = 0;
	pthread_cond_signal(&s->freed);
	pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------ statements */

PGresult *pg_exec_fmt(struct pgstore *s, struct pg_conn *c, const char *sql, int n, const char *const *params,
                      const int *lengths, const int *formats, int result_format, int *rv)
{
	PGresult *r = PQexecParams(c->c, sql, n, NULL, params, lengths, formats, result_format);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		*rv = 0;
		return r;
	}
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->c);
	if (PQstatus(c->c) != CONNECTION_OK) {
		*rv = PARLEY_EIO;
		log_pq(s, PARLEY_LOG_ERROR, "connection lost", msg);
	} else if (state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0)) {
		/* The transaction lost a lock race: the gateway fails the batch and the provider retries. */
		*rv = PARLEY_EBUSY;
		log_pq(s, PARLEY_LOG_WARN, "transaction aborted, will be retried", msg);
	} else if (state && strcmp(state, "23505") == 0) {
		*rv = PARLEY_EEXIST;
		log_pq(s, PARLEY_LOG_WARN, "already exists", msg);
	} else if (state && strncmp(state, "22", 2) == 0) {
		*rv = PARLEY_EINVAL;
		log_pq(s, PARLEY_LOG_WARN, "invalid value", msg);
	} else {
		*rv = PARLEY_EIO;
		log_pq(s, PARLEY_LOG_ERROR, "statement failed", msg);
	}
	PQclear(r);
	return NULL;
}

PGresult *pg_exec(struct pgstore *s, struct pg_conn *c, const char *sql, int n, const char *const *params, int *rv)
{
	return pg_exec_fmt(s, c, sql, n, params, NULL, NULL, 0, rv);
}

PGresult *pg_run(struct pgstore *s, const char *sql, int n, const char *const *params, int *rv)
{
	struct pg_conn *c;
	if ((*rv = pg_acquire(s, &c)) != 0)
		return NULL;
	PGresult *r = pg_exec(s, c, sql, n, params, rv);
	pg_release(s, c);
	return r;
}

int pg_run_cmd(struct pgstore *s, const char *sql, int n, const char *const *params, long *rows)
{
	int rv;
	PGresult *r = pg_run(s, sql, n, params, &rv);
	if (r && rows)
		*rows = strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return rv;
}

const char *pg_val(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* Type OIDs of pg_type, stable across server versions. */
#define OID_BOOL  16
#define OID_INT8  20
#define OID_INT2  21
#define OID_INT4  23
#define OID_JSON  114
#define OID_JSONB 3802

cJSON *pg_rows_json(const PGresult *r)
{
	cJSON *rows = cJSON_CreateArray();
	int nf = PQnfields(r);
	for (int i = 0; i < PQntuples(r); i++) {
		cJSON *o = cJSON_CreateObject();
		for (int f = 0; f < nf; f++) {
			const char *v = pg_val(r, i, f);
			if (!v)
				continue;
			Oid t = PQftype(r, f);
			cJSON *item;
			if (t == OID_INT8 || t == OID_INT2 || t == OID_INT4)
				item = cJSON_CreateNumber((double)strtoll(v, NULL, 10));
			else if (t == OID_BOOL)
				item = cJSON_CreateBool(v[0] == 't');
			else if (t == OID_JSON || t == OID_JSONB)
				item = cJSON_Parse(v);
			else
				item = cJSON_CreateString(v);
			cJSON_AddItemToObject(o, PQfname(r, f), item ? item : cJSON_CreateString(v));
		}
		cJSON_AddItemToArray(rows, o);
	}
	return rows;
}

/* ------------------------------------------------- array literals, arena */

static void pga_put(struct pga *a, const char *p, size_t n)
{
	if (a->oom)
		return;
	if (a->len + n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap : 256;
		while (a->len + n + 2 > cap)
			cap *= 2;
		char *b = realloc(a->buf, cap);
		if (!b) {
			a->oom = 1;
			return;
		}
		a->buf = b;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void pga_init(struct pga *a)
{
	memset(a, 0, sizeof(*a));
	pga_put(a, "{", 1);
}

void pga_add(struct pga *a, const char *v)
{
	if (a->n++)
		pga_put(a, ",", 1);
	if (!v) {
		pga_put(a, "NULL", 4);
		return;
	}
	/* Quoted, with backslash before '"' and '\': the array input syntax. */
	pga_put(a, "\"", 1);
	for (const char *p = v; *p;) {
		size_t run = strcspn(p, "\"\\");
		pga_put(a, p, run);
		p += run;
		if (*p) {
			pga_put(a, "\\", 1);
			pga_put(a, p, 1);
			p++;
		}
	}
	pga_put(a, "\"", 1);
}

char *pga_end(struct pga *a)
{
	pga_put(a, "}", 1);
	if (a->oom) {
		free(a->buf);
		return NULL;
	}
	a->buf[a->len] = '\0';
	return a->buf;
}

char *pg_array(const char *const *v, size_t n)
{
	struct pga a;
	pga_init(&a);
	for (size_t i = 0; i < n; i++)
		pga_add(&a, v[i]);
	return pga_end(&a);
}

struct pg_arena_str {
	struct pg_arena_str *next;
	char text[];
};

const char *pg_arena_dup(struct pg_arena *a, const char *v)
{
	if (!v)
		return NULL;
	size_t n = strlen(v);
	struct pg_arena_str *s = malloc(sizeof(*s) + n + 1);
	if (!s)
		return NULL;
	memcpy(s->text, v, n + 1);
	s->next = a->head;
	a->head = s;
	return s->text;
}

void pg_arena_free(struct pg_arena *a)
{
	while (a->head) {
		struct pg_arena_str *next = a->head->next;
		free(a->head);
		a->head = next;
	}
}

/* ---------------------------------------------------------- migrations */

static int migrate(struct pgstore *s, struct pg_conn *c, char **errmsg)
{
	int known = 0;
	while (migrations[known])
		known++;
	int rv;
	PGresult *r = pg_exec(s, c, "BEGIN", 0, NULL, &rv);
	PQclear(r);
	/* Held until COMMIT: a second node starting now waits here, then finds the schema current. */
	if (rv == 0)
		PQclear(pg_exec(s, c, "SELECT pg_advisory_xact_lock(hashtext('parley.schema_migrations'))", 0, NULL,
		                &rv));
	if (rv == 0)
		PQclear(pg_exec(s, c,
		                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
		                " applied_at text NOT NULL)",
		                0, NULL, &rv));
	int have = 0;
	if (rv == 0 && (r = pg_exec(s, c, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, &rv))) {
		have = atoi(PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	if (rv != 0) {
		*errmsg = str_printf("cannot read the schema version of the PostgreSQL store %s: %s", s->where,
		                     PQerrorMessage(c->c));
		return PARLEY_EIO;
	}
	if (have > known) {
		char a[16], b[16];
		snprintf(a, sizeof(a), "%d", have);
		snprintf(b, sizeof(b), "%d", known);
		char *m = str_printf("the store's schema is at version %s but this Parley knows only up to %s:"
		                     " upgrade Parley",
		                     a, b);
		*errmsg = str_printf("PostgreSQL store %s: %s", s->where, m);
		free(m);
		return PARLEY_EINVAL;
	}
	for (int v = have + 1; v <= known && rv == 0; v++) {
		r = PQexec(c->c, migrations[v - 1]);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			char num[16];
			snprintf(num, sizeof(num), "%d", v);
			char *m = str_printf("schema migration %s failed: %s", num, PQresultErrorMessage(r));
			*errmsg = str_printf("PostgreSQL store %s: %s", s->where, m);
			free(m);
			PQclear(r);
			return PARLEY_EIO;
		}
		PQclear(r);
		char ver[16], ts[64];
		snprintf(ver, sizeof(ver), "%d", v);
		pg_now(ts);
		const char *p[] = {ver, ts};
		PQclear(pg_exec(s, c, "INSERT INTO schema_migrations VALUES ($1::int, $2)", 2, p, &rv));
	}
	if (rv == 0)
		PQclear(pg_exec(s, c, "COMMIT", 0, NULL, &rv));
	if (rv != 0) {
		*errmsg = str_printf("cannot record the schema migrations of the PostgreSQL store %s: %s", s->where,
		                     PQerrorMessage(c->c));
		return PARLEY_EIO;
	}
	for (int v = have + 1; v <= known; v++)
		s->host->log(s->inst, PARLEY_LOG_INFO, "applied schema migration %d to postgres %s", v, s->where);
	return 0;
}

/* ------------------------------------------------------------ lifecycle */

/* "host:port/db" of a connection string, or NULL when libpq cannot parse it (*err then says why). */
static char *describe_url(const char *url, char **err)
{
	PQconninfoOption *opts = PQconninfoParse(url, err);
	if (!opts) {
		/* libpq ends its message with a newline; ours goes on after it. */
		if (*err)
			(*err)[strcspn(*err, "\n")] = '\0';
		return NULL;
	}
	const char *host = NULL, *port = NULL, *db = NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (strcmp(o->keyword, "host") == 0 || (strcmp(o->keyword, "hostaddr") == 0 && !host))
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
	}
	char buf[512];
	snprintf(buf, sizeof(buf), "%s:%s/%s", host ? host : "localhost", port ? port : "5432", db ? db : "");
	PQconninfoFree(opts);
	return strdup(buf);
}

static int st_check_config(const struct parley_host *host, const char *config_json, char **errmsg)
{
	(void)host;
	cJSON *cfg = cJSON_Parse(config_json);
	const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "url"));
	const char *pool = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "pool_size"));
	int rv = 0;
	char *err = NULL;
	char *where = url ? describe_url(url, &err) : NULL;
	if (url && !where) {
		*errmsg = str_printf("url is not a PostgreSQL connection URI or string (%s): write it as %s",
		                     err ? err : "out of memory", "postgres://USER:PASSWORD@HOST:5432/DATABASE");
		rv = PARLEY_EINVAL;
	} else if (pool && (atoi(pool) < 1 || atoi(pool) > 256)) {
		*errmsg = strdup("pool_size must be from 1 to 256");
		rv = PARLEY_EINVAL;
	}
	PQfreemem(err);
	free(where);
	cJSON_Delete(cfg);
	return rv;
}

static int st_create(const struct parley_host *host, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	struct pgstore *s = calloc(1, sizeof(*s));
	if (!s)
		return PARLEY_ENOMEM;
	s->host = host;
	s->inst = inst;
	const char *url = host->config_str(inst, "url");
	int64_t pool = 4;
	host->config_int(inst, "pool_size", &pool);
	s->connect_timeout_ms = 5000;
	s->claim_timeout_ms = 60000;
	host->config_duration_ms(inst, "connect_timeout", &s->connect_timeout_ms);
	host->config_duration_ms(inst, "claim_timeout", &s->claim_timeout_ms);
	s->pool_size = pool < 1 ? 1 : pool > 256 ? 256 : (int)pool;
	char *err = NULL;
	s->url = url ? strdup(url) : NULL;
	s->where = url ? describe_url(url, &err) : NULL;
	s->pool = calloc((size_t)s->pool_size, sizeof(*s->pool));
	if (!s->where || !s->pool || !s->url) {
		*errmsg = str_printf("postgres store: url is missing or not a PostgreSQL connection URI (%s): write it"
		                     " as %s",
		                     err ? err : "out of memory", "postgres://USER:PASSWORD@HOST:5432/DATABASE");
		PQfreemem(err);
		free(s->url);
		free(s->where);
		free(s->pool);
		free(s);
		return PARLEY_EINVAL;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->freed, NULL);
	*data = s;
	return 0;
}

static int st_start(void *data, char **errmsg)
{
	struct pgstore *s = data;
	struct pg_conn *c;
	if (pg_acquire(s, &c) != 0) {
		*errmsg = str_printf("cannot reach the PostgreSQL store at %s%s: check that the server runs and the url"
		                     " (user, password, database) is right; the log has libpq's reason",
		                     s->where, "");
		return PARLEY_EIO;
	}
	int rv = migrate(s, c, errmsg);
	pg_release(s, c);
	if (rv == 0)
		s->host->log(s->inst, PARLEY_LOG_INFO, "postgres store %s ready (pool of %d)", s->where, s->pool_size);
	return rv;
}

static void st_stop(void *data)
{
	struct pgstore *s = data;
	/* After stop no op runs (parley.h), so every slot is free to close. */
	for (int i = 0; i < s->pool_size; i++) {
		PQfinish(s->pool[i].c);
		s->pool[i].c = NULL;
	}
}

static void st_destroy(void *data)
{
	struct pgstore *s = data;
	st_stop(s);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->freed);
	free(s->url);
	free(s->where);
	free(s->pool);
	free(s);
}

static int st_ping(void *data)
{
	struct pgstore *s = data;
	return pg_run_cmd(s, "SELECT 1 FROM schema_migrations LIMIT 1", 0, NULL, NULL) == 0 ? 0 : PARLEY_EIO;
}

static const struct parley_store_ops ops = {
        .struct_size = sizeof(struct parley_store_ops),
        .commit = pg_commit,
        .query = pg_query,
        .kv_get = pg_kv_get,
        .kv_set = pg_kv_set,
        .outbox_claim = pg_outbox_claim,
        .outbox_update = pg_outbox_update,
        .ping = st_ping,
        .attachment_set = pg_attachment_set,
        .typed = &pg_typed_ops,
};

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_STORE,
        .name = "postgres",
        .version = "1.0.0",
        .description = "PostgreSQL store (libpq, shared by several nodes): messages, contacts, conversations,"
                       " outbox, key-value state, leases",
        .config = config_map,
        .instance_create = st_create,
        .instance_start = st_start,
        .instance_stop = st_stop,
        .instance_destroy = st_destroy,
        .store = &ops,
        .check_config = st_check_config,
};

PARLEY_PLUGIN_DEFINE(plugin)
