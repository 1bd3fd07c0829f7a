/*
 * sqlite_store.c: the default store.  One SQLite file in WAL mode; one
 * writer connection (group commits, outbox, key-value writes) and one
 * reader connection (control queries), each behind its own mutex, so reads
 * never wait for a commit.
 */
#include <parley/parley.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

/* Numbered migrations, applied in order at start, each in its own transaction. */
static const char *const migrations[] = {
        /* 1: the skeleton schema. */
        "CREATE TABLE contacts ("
        "  id TEXT PRIMARY KEY, name TEXT, attributes TEXT NOT NULL DEFAULT '{}',"
        "  merged_into TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE identities ("
        "  urn TEXT PRIMARY KEY, contact_id TEXT NOT NULL REFERENCES contacts(id),"
        "  display_name TEXT, created_at TEXT NOT NULL);"
        "CREATE INDEX identities_contact ON identities(contact_id);"
        "CREATE TABLE conversations ("
        "  id TEXT PRIMARY KEY, contact_id TEXT NOT NULL REFERENCES contacts(id),"
        "  status TEXT NOT NULL DEFAULT 'open', last_channel TEXT, created_at TEXT NOT NULL,"
        "  updated_at TEXT NOT NULL);"
        "CREATE INDEX conversations_contact ON conversations(contact_id, status);"
        "CREATE TABLE messages ("
        "  seq INTEGER PRIMARY KEY,"
        "  id TEXT NOT NULL UNIQUE,"
        "  channel TEXT NOT NULL, channel_type TEXT NOT NULL, external_id TEXT,"
        "  direction TEXT NOT NULL, kind TEXT NOT NULL, from_urn TEXT, to_urn TEXT,"
        "  contact_id TEXT, conversation_id TEXT,"
        "  status TEXT, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER,"
        "  provider_id TEXT, error TEXT, thread_ref TEXT,"
        "  received_at TEXT NOT NULL, updated_at TEXT,"
        "  envelope TEXT NOT NULL,"
        "  UNIQUE (channel, external_id));"
        "CREATE INDEX messages_conversation ON messages(conversation_id, seq) WHERE conversation_id IS NOT NULL;"
        /* Inbound messages have no status, so only outbound ones are indexed. Queries must repeat the
         * index's WHERE term ("status IS NOT NULL") for SQLite to use it. */
        "CREATE INDEX messages_outbox ON messages(status, next_attempt_ms) WHERE status IS NOT NULL;"
        /* Receipts (kind status) name the provider's id of the message they are about in thread_ref. */
        "CREATE INDEX messages_provider ON messages(channel, provider_id) WHERE provider_id IS NOT NULL;"
        "CREATE INDEX messages_receipts ON messages(channel, thread_ref) WHERE kind = 'status';"
        "CREATE TABLE kv (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB, updated_at TEXT NOT NULL,"
        "  PRIMARY KEY (ns, key));", /* 2: conversations: state, assignment, timestamps, history, notes, reversible
                                        merges. */
        "ALTER TABLE conversations ADD COLUMN assignee TEXT;"
        "ALTER TABLE conversations ADD COLUMN team TEXT;"
        "ALTER TABLE conversations ADD COLUMN priority TEXT;"
        "ALTER TABLE conversations ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';"
        "ALTER TABLE conversations ADD COLUMN snoozed_until TEXT;"
        "ALTER TABLE conversations ADD COLUMN first_inbound_at TEXT;"
        "ALTER TABLE conversations ADD COLUMN last_inbound_at TEXT;"
        "ALTER TABLE conversations ADD COLUMN first_response_at TEXT;"
        "ALTER TABLE conversations ADD COLUMN resolved_at TEXT;"
        "ALTER TABLE conversations ADD COLUMN resolutions INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX conversations_status ON conversations(status, updated_at);"
        "CREATE INDEX conversations_assignee ON conversations(assignee, status) WHERE assignee IS NOT NULL;"
        "CREATE INDEX messages_contact ON messages(contact_id, seq) WHERE contact_id IS NOT NULL;"
        "CREATE TABLE conversation_events (seq INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL,"
        "  type TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}', at TEXT NOT NULL);"
        "CREATE INDEX conversation_events_conversation ON conversation_events(conversation_id, seq);"
        "CREATE TABLE notes (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, author TEXT, text TEXT NOT NULL,"
        "  created_at TEXT NOT NULL);"
        "CREATE INDEX notes_conversation ON notes(conversation_id, created_at);"
        "CREATE TABLE contact_merges (id TEXT PRIMARY KEY, from_id TEXT NOT NULL, into_id TEXT NOT NULL,"
        "  moved TEXT NOT NULL, at TEXT NOT NULL, undone_at TEXT);",
        /* 3: the typed contract (store.h): claim times for the outbox, leases, snoozed conversations by time. */
        "ALTER TABLE messages ADD COLUMN claimed_at_ms INTEGER;"
        "CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_ms INTEGER NOT NULL);"
        "CREATE INDEX conversations_snoozed ON conversations(snoozed_until) WHERE status = 'snoozed';",
        /* 4: counters several nodes advance together (round-robin positions). */
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        /* 5: accounts, service tokens, sessions, failed logins (store.h ABI 1.3; typed_accounts.c). */
        "CREATE TABLE accounts (name TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, role TEXT NOT NULL,"
        "  teams TEXT NOT NULL DEFAULT '[]', password_hash TEXT, disabled INTEGER NOT NULL DEFAULT 0,"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE service_tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,"
        "  scopes TEXT NOT NULL DEFAULT '[]', hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked_at TEXT,"
        "  last_used_at TEXT);"
        "CREATE TABLE sessions (hash TEXT PRIMARY KEY, account TEXT NOT NULL, created_ms INTEGER NOT NULL,"
        "  expires_ms INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX sessions_account ON sessions(account);"
        "CREATE INDEX sessions_expiry ON sessions(expires_ms);"
        "CREATE TABLE login_failures (key TEXT PRIMARY KEY, count INTEGER NOT NULL, last_ms INTEGER NOT NULL);",
        /* 6: conversations by latest activity (conversations.list's order), a page without sorting them all. */
        "CREATE INDEX conversations_recent ON conversations(updated_at, id);",
        /* 7: since when a conversation waits in its team's queue (conversations_put keeps it; NULL: not waiting). */
        "ALTER TABLE conversations ADD COLUMN queued_at TEXT;"
        "UPDATE conversations SET queued_at = updated_at WHERE coalesce(team, '') <> '' AND coalesce(assignee, '') = ''"
        " AND status IN ('open', 'pending');"
        "CREATE INDEX conversations_queue ON conversations(team, queued_at) WHERE queued_at IS NOT NULL;",
        /* 8: the dead letters, counted and listed without reading every message. */
        "CREATE INDEX messages_dead ON messages(channel, seq) WHERE direction = 'outbound' AND status = 'failed';",
        /* 9: the history as the KPIs read it (docs/kpis.md): who did it, and who held the conversation where,
         * recorded with each row, and its time as milliseconds (at_ms, what the KPIs compute with); rows by time. */
        "ALTER TABLE conversation_events ADD COLUMN actor TEXT;"
        "ALTER TABLE conversation_events ADD COLUMN agent TEXT;"
        "ALTER TABLE conversation_events ADD COLUMN team TEXT;"
        "ALTER TABLE conversation_events ADD COLUMN channel TEXT;"
        "ALTER TABLE conversation_events ADD COLUMN at_ms INTEGER;"
        "UPDATE conversation_events SET at_ms = CAST(round((julianday(at) - 2440587.5) * 86400000) AS INTEGER),"
        " actor = data->>'by', agent = (SELECT c.assignee FROM conversations AS c"
        " WHERE c.id = conversation_id), team = (SELECT c.team FROM conversations AS c WHERE c.id = conversation_id),"
        " channel = (SELECT c.last_channel FROM conversations AS c WHERE c.id = conversation_id);"
        "CREATE INDEX conversation_events_at ON conversation_events(at, conversation_id);",
        /* 10: SLA targets per conversation, and the surveys asked after a resolve with their ratings (typed_sla.c). */
        "CREATE TABLE conversation_sla (conversation_id TEXT NOT NULL, target TEXT NOT NULL, policy TEXT NOT NULL,"
        "  started_at TEXT NOT NULL, due_at TEXT NOT NULL, warn_at TEXT NOT NULL, paused_at TEXT, warned_at TEXT,"
        "  breached_at TEXT, met_at TEXT, PRIMARY KEY (conversation_id, target));"
        "CREATE INDEX conversation_sla_running ON conversation_sla(due_at) WHERE met_at IS NULL AND paused_at IS NULL;"
        "CREATE TABLE surveys (conversation_id TEXT PRIMARY KEY, contact_id TEXT NOT NULL, survey TEXT NOT NULL,"
        "  channel TEXT, language TEXT, status TEXT NOT NULL, due_at TEXT NOT NULL, sent_at TEXT, message_id TEXT,"
        "  agent TEXT, team TEXT, score INTEGER, comment TEXT, answered_at TEXT, reason TEXT);"
        "CREATE INDEX surveys_due ON surveys(due_at) WHERE status = 'scheduled';"
        "CREATE INDEX surveys_answered ON surveys(agent, answered_at) WHERE status = 'answered';",
        /*
         * 11: broadcasts and their recipients (typed_broadcasts.c, store.h ABI 1.4); the outbox's priority
         * class (1: broadcast traffic, claimed after replies); the customer's last message per channel and
         * address (the customer-service window).
         */
        "CREATE TABLE broadcasts (id TEXT PRIMARY KEY, state TEXT NOT NULL, spec TEXT NOT NULL, created_by TEXT,"
        "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE broadcast_recipients (broadcast_id TEXT NOT NULL, contact_id TEXT NOT NULL, channel TEXT,"
        "  urn TEXT, state TEXT NOT NULL, reason TEXT, message_id TEXT, updated_at TEXT NOT NULL,"
        "  PRIMARY KEY (broadcast_id, contact_id));"
        "CREATE INDEX broadcast_recipients_pending ON broadcast_recipients(broadcast_id, channel, contact_id)"
        "  WHERE state = 'pending';"
        "CREATE UNIQUE INDEX broadcast_recipients_message ON broadcast_recipients(message_id)"
        "  WHERE message_id IS NOT NULL;"
        "ALTER TABLE messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX messages_inbound_from ON messages(channel, from_urn, seq) WHERE direction = 'inbound';",
        NULL,
};

static const struct parley_config_key config_map[] = {
        {"path", PARLEY_CFG_STRING, "parley.db", 0, "database file; relative paths are under data_dir"},
        {"synchronous", PARLEY_CFG_STRING, "full", 0,
         "full: an acknowledged webhook survives power loss; normal: survives a crash of the process"},
        {"busy_timeout", PARLEY_CFG_DURATION, "5s", 0, "how long to wait for a lock held by another process"},
        {"checkpoint_pages", PARLEY_CFG_INT, "1000", 0,
         "fold the write-ahead log into the database every this many pages (smaller: shorter, more frequent pauses)"},
        {"claim_timeout", PARLEY_CFG_DURATION, "5m", 0,
         "an outbound message claimed for sending and not settled within this time is claimed again (its sender "
         "died)"},
        {NULL, 0, NULL, 0, NULL},
};

void sq_now(char out[64])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

char *sq_printf(const char *fmt, const char *a, const char *b)
{
	int n = snprintf(NULL, 0, fmt, a, b);
	char *s = malloc((size_t)n + 1);
	if (s)
		snprintf(s, (size_t)n + 1, fmt, a, b);
	return s;
}

int sq_exec(struct store *s, sqlite3 *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		s->host->log(s->inst, PARLEY_LOG_ERROR, "%s: %s", s->path, err ? err : "error");
		sqlite3_free(err);
		return PARLEY_EIO;
	}
	return 0;
}

static int open_db(struct store *s, sqlite3 **db, char **errmsg)
{
	if (sqlite3_open_v2(s->path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		*errmsg = sq_printf("cannot open the SQLite store %s: %s", s->path,
		                    *db ? sqlite3_errmsg(*db) : "out of memory");
		return PARLEY_EIO;
	}
	sqlite3_busy_timeout(*db, (int)s->busy_ms);
	/*
	 * A database made by an older version or another umask may be readable
	 * by others; SQLite gives -wal and -shm the database's mode, so fixing
	 * the file fixes all three.
	 */
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s%s", s->path, suffixes[i]);
		if (stat(path, &st) == 0 && (st.st_mode & 077))
			chmod(path, st.st_mode & 0600);
	}
	return 0;
}

static int migrate(struct store *s, char **errmsg)
{
	if (sq_exec(s, s->w, "PRAGMA journal_mode=WAL") != 0 ||
	    sq_exec(s, s->w, s->synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") != 0 ||
	    sq_exec(s, s->w,
	            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT "
	            "NULL)") != 0) {
		*errmsg = sq_printf("cannot prepare the SQLite store %s: %s", s->path, sqlite3_errmsg(s->w));
		return PARLEY_EIO;
	}
	sqlite3_stmt *st;
	int have = 0;
	if (sqlite3_prepare_v2(s->w, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1, &st, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			have = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	int known = 0;
	while (migrations[known])
		known++;
	if (have > known) {
		char a[16], b[16];
		snprintf(a, sizeof(a), "%d", have);
		snprintf(b, sizeof(b), "%d", known);
		*errmsg = sq_printf(
		        "the store's schema is at version %s but this Parley knows only up to %s: upgrade Parley", a,
		        b);
		return PARLEY_EINVAL;
	}
	for (int v = have + 1; v <= known; v++) {
		char ts[64], sql[160];
		sq_now(ts);
		snprintf(sql, sizeof(sql), "INSERT INTO schema_migrations VALUES (%d, '%s')", v, ts);
		if (sq_exec(s, s->w, "BEGIN IMMEDIATE") != 0 || sq_exec(s, s->w, migrations[v - 1]) != 0 ||
		    sq_exec(s, s->w, sql) != 0 || sq_exec(s, s->w, "COMMIT") != 0) {
			sq_exec(s, s->w, "ROLLBACK");
			*errmsg = sq_printf("schema migration failed on %s: %s", s->path, sqlite3_errmsg(s->w));
			return PARLEY_EIO;
		}
		s->host->log(s->inst, PARLEY_LOG_INFO, "applied schema migration %d to %s", v, s->path);
	}
	/* A send interrupted by a crash is retried (at-least-once). */
	sq_exec(s, s->w, "UPDATE messages SET status = 'retry' WHERE status IS NOT NULL AND status = 'sending'");
	return 0;
}

static int st_create(const struct parley_host *host, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	(void)errmsg;
	/*
	 * No allocation statistics: SQLite would take a global mutex around every malloc and free for them (4%
	 * of a report's CPU).  Before the library's first use only; later (a second store) it refuses, harmlessly.
	 */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return PARLEY_ENOMEM;
	s->host = host;
	s->inst = inst;
	const char *path = host->config_str(inst, "path");
	const char *dd = host->setting(inst, "data_dir");
	if (path[0] == '/' || !dd)
		s->path = strdup(path);
	else
		s->path = sq_printf("%s/%s", dd, path);
	const char *sync = host->config_str(inst, "synchronous");
	s->synchronous_full = strcmp(sync, "normal") != 0;
	host->config_duration_ms(inst, "busy_timeout", &s->busy_ms);
	host->config_int(inst, "checkpoint_pages", &s->checkpoint_pages);
	host->config_duration_ms(inst, "claim_timeout", &s->claim_timeout_ms);
	pthread_mutex_init(&s->wlock, NULL);
	pthread_mutex_init(&s->rlock, NULL);
	pthread_mutex_init(&s->replock, NULL);
	*data = s;
	return 0;
}

static int st_start(void *data, char **errmsg)
{
	struct store *s = data;
	int rv;
	if ((rv = open_db(s, &s->w, errmsg)) != 0 || (rv = migrate(s, errmsg)) != 0 ||
	    (rv = open_db(s, &s->r, errmsg)) != 0 || (rv = open_db(s, &s->rep, errmsg)) != 0)
		return rv;
	if (reports_register(s->w) != 0 || reports_register(s->r) != 0 || reports_register(s->rep) != 0) {
		*errmsg = sq_printf("cannot prepare the SQLite store %s: %s", s->path, sqlite3_errmsg(s->r));
		return PARLEY_EIO;
	}
	sqlite3_wal_autocheckpoint(s->w, (int)s->checkpoint_pages);
	const char *ins =
	        "INSERT INTO messages (id, channel, channel_type, external_id, direction, kind, from_urn, to_urn,"
	        " contact_id, conversation_id, status, next_attempt_ms, received_at, envelope, thread_ref)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
	        " ON CONFLICT (channel, external_id) DO NOTHING";
	const char *rcpt =
	        "UPDATE messages SET status = ?3, error = coalesce(?4, error), updated_at = ?5"
	        " WHERE channel = ?1 AND provider_id IS NOT NULL AND provider_id = ?2 AND direction = 'outbound'"
	        " AND " STATUS_RANK("status") " < " STATUS_RANK("?3");
	const char *dup = "SELECT id FROM messages WHERE channel = ?1 AND external_id = ?2";
	if (sqlite3_prepare_v3(s->w, ins, -1, SQLITE_PREPARE_PERSISTENT, &s->insert, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->w, rcpt, -1, SQLITE_PREPARE_PERSISTENT, &s->receipt, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->w, dup, -1, SQLITE_PREPARE_PERSISTENT, &s->stored_id, NULL) != SQLITE_OK) {
		*errmsg = sq_printf("cannot prepare the insert on %s: %s", s->path, sqlite3_errmsg(s->w));
		return PARLEY_EIO;
	}
	return 0;
}

static void st_stop(void *data)
{
	struct store *s = data;
	conv_close(s);
	typed_close(s);
	sqlite3_finalize(s->insert);
	sqlite3_finalize(s->receipt);
	sqlite3_finalize(s->stored_id);
	s->insert = NULL;
	s->receipt = NULL;
	s->stored_id = NULL;
	if (s->w)
		sqlite3_close(s->w);
	if (s->r)
		sqlite3_close(s->r);
	if (s->rep)
		sqlite3_close(s->rep);
	s->w = s->r = s->rep = NULL;
}

static void st_destroy(void *data)
{
	struct store *s = data;
	st_stop(s);
	pthread_mutex_destroy(&s->wlock);
	pthread_mutex_destroy(&s->rlock);
	pthread_mutex_destroy(&s->replock);
	free(s->path);
	free(s);
}

void sq_bind(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* An inbound receipt moves the outbound message it names (thread_ref = provider id) forward. */
static int apply_receipt(struct store *s, const parley_envelope *e)
{
	const struct parley_host *h = s->host;
	const char *ref = h->envelope_get_str(e, "thread_ref");
	const char *status = h->envelope_get_str(e, "status");
	if (!ref || !status)
		return 0;
	char ts[64];
	sq_now(ts);
	sqlite3_stmt *st = s->receipt;
	sq_bind(st, 1, h->envelope_get_str(e, "channel"));
	sq_bind(st, 2, ref);
	sq_bind(st, 3, status);
	sq_bind(st, 4, h->envelope_get_str(e, "error"));
	sq_bind(st, 5, ts);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		h->log(s->inst, PARLEY_LOG_ERROR, "receipt update in %s failed: %s", s->path, sqlite3_errmsg(s->w));
		return PARLEY_EIO;
	}
	return 0;
}

/*
 * A duplicate takes the id of the message stored before, so the channel
 * tells its sender the id that is in the store (see submit_ids).
 */
static int stored_id(struct store *s, parley_envelope *e)
{
	const struct parley_host *h = s->host;
	sqlite3_stmt *st = s->stored_id;
	sq_bind(st, 1, h->envelope_get_str(e, "channel"));
	sq_bind(st, 2, h->envelope_get_str(e, "external_id"));
	int rc = sqlite3_step(st);
	int rv = 0;
	if (rc == SQLITE_ROW)
		rv = h->envelope_set_str(e, "id", (const char *)sqlite3_column_text(st, 0));
	else
		h->log(s->inst, PARLEY_LOG_ERROR, "duplicate without a stored message in %s: %s", s->path,
		       sqlite3_errmsg(s->w));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW ? rv : PARLEY_EIO;
}

int sq_insert(struct store *s, parley_envelope *e, int *result)
{
	const struct parley_host *h = s->host;
	char *json = h->envelope_to_json(e);
	if (!json)
		return PARLEY_ENOMEM;
	const char *status = h->envelope_get_str(e, "status");
	const char *dir = h->envelope_get_str(e, "direction");
	int queued = dir && strcmp(dir, "outbound") == 0 && status && strcmp(status, "queued") == 0;
	sqlite3_stmt *st = s->insert;
	sq_bind(st, 1, h->envelope_get_str(e, "id"));
	sq_bind(st, 2, h->envelope_get_str(e, "channel"));
	sq_bind(st, 3, h->envelope_get_str(e, "channel_type"));
	sq_bind(st, 4, h->envelope_get_str(e, "external_id"));
	sq_bind(st, 5, dir);
	sq_bind(st, 6, h->envelope_get_str(e, "kind"));
	sq_bind(st, 7, h->envelope_get_str(e, "from"));
	sq_bind(st, 8, h->envelope_get_str(e, "to"));
	sq_bind(st, 9, h->envelope_get_str(e, "contact_id"));
	sq_bind(st, 10, h->envelope_get_str(e, "conversation_id"));
	sq_bind(st, 11, status);
	if (queued)
		sqlite3_bind_int64(st, 12, 0);
	else
		sqlite3_bind_null(st, 12);
	sq_bind(st, 13, h->envelope_get_str(e, "received_at"));
	sqlite3_bind_text(st, 14, json, -1, SQLITE_STATIC);
	sq_bind(st, 15, h->envelope_get_str(e, "thread_ref"));
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	free(json);
	if (rc != SQLITE_DONE) {
		h->log(s->inst, PARLEY_LOG_ERROR, "insert into %s failed: %s", s->path, sqlite3_errmsg(s->w));
		return rc == SQLITE_BUSY ? PARLEY_EBUSY : PARLEY_EIO;
	}
	*result = sqlite3_changes(s->w) == 0 ? PARLEY_EDUPLICATE : 0;
	if (*result == PARLEY_EDUPLICATE)
		return stored_id(s, e);
	return 0;
}

static int st_commit(void *data, parley_envelope *const *envs, size_t n, int *results)
{
	struct store *s = data;
	const struct parley_host *h = s->host;
	pthread_mutex_lock(&s->wlock);
	if (sq_exec(s, s->w, "BEGIN IMMEDIATE") != 0) {
		pthread_mutex_unlock(&s->wlock);
		return PARLEY_EIO;
	}
	for (size_t i = 0; i < n; i++) {
		const parley_envelope *e = envs[i];
		if (sq_insert(s, envs[i], &results[i]) != 0)
			goto fail;
		const char *dir = h->envelope_get_str(e, "direction");
		const char *kind = h->envelope_get_str(e, "kind");
		if (results[i] == 0 && kind && strcmp(kind, "status") == 0 && dir && strcmp(dir, "inbound") == 0 &&
		    apply_receipt(s, e) != 0)
			goto fail;
	}
	if (sq_exec(s, s->w, "COMMIT") != 0)
		goto fail;
	pthread_mutex_unlock(&s->wlock);
	return 0;
fail:
	sq_exec(s, s->w, "ROLLBACK");
	pthread_mutex_unlock(&s->wlock);
	return PARLEY_EIO;
}

/* The stored envelope with the columns that change after insert folded in. */
static void set_reply_error(char **reply, const char *msg)
{
	*reply = strdup(msg);
}

static int query_list(struct store *s, cJSON *req, char **reply)
{
	const char *channel = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "channel"));
	const char *conv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	const char *after = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "after_id"));
	const char *dir = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "direction"));
	const char *address = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "address"));
	const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "status"));
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	int limit = 100;
	if (lim) {
		if (!cJSON_IsNumber(lim) || lim->valuedouble < 1 || lim->valuedouble > 1000) {
			set_reply_error(reply, "limit must be a number from 1 to 1000");
			return PARLEY_EINVAL;
		}
		limit = (int)lim->valuedouble;
	}
	char sql[1024];
	snprintf(sql, sizeof(sql),
	         "SELECT id, " ENVELOPE_SQL " FROM messages WHERE (?1 IS NULL OR channel = ?1)"
	         " AND (?2 IS NULL OR conversation_id = ?2) AND (?3 IS NULL OR direction = ?3)"
	         " AND (?4 IS NULL OR seq > coalesce((SELECT seq FROM messages WHERE id = ?4), -1))"
	         " AND (?6 IS NULL OR from_urn = ?6 OR to_urn = ?6) AND (?7 IS NULL OR status = ?7)"
	         " ORDER BY seq LIMIT ?5");
	pthread_mutex_lock(&s->rlock);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->r, sql, -1, &st, NULL) != SQLITE_OK) {
		s->host->log(s->inst, PARLEY_LOG_ERROR, "messages.list: %s", sqlite3_errmsg(s->r));
		pthread_mutex_unlock(&s->rlock);
		return PARLEY_EIO;
	}
	sq_bind(st, 1, channel);
	sq_bind(st, 2, conv);
	sq_bind(st, 3, dir);
	sq_bind(st, 4, after);
	sqlite3_bind_int(st, 5, limit);
	sq_bind(st, 6, address);
	sq_bind(st, 7, status);
	/* Stored envelopes are already JSON: concatenate instead of re-parsing. */
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int count = 0, rc;
	char last[64] = "";
	len += (size_t)snprintf(buf, cap, "{\"messages\":[");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *env = (const char *)sqlite3_column_text(st, 1);
		size_t el = strlen(env);
		if (len + el + 128 > cap) {
			while (len + el + 128 > cap)
				cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb)
				break;
			buf = nb;
		}
		if (count++)
			buf[len++] = ',';
		memcpy(buf + len, env, el);
		len += el;
		snprintf(last, sizeof(last), "%s", id);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->rlock);
	if (rc != SQLITE_DONE) {
		free(buf);
		return PARLEY_EIO;
	}
	if (count == limit)
		snprintf(buf + len, cap - len, "],\"count\":%d,\"next_after_id\":\"%s\"}", count, last);
	else
		snprintf(buf + len, cap - len, "],\"count\":%d}", count);
	*reply = buf;
	return 0;
}

static int query_get(struct store *s, cJSON *req, char **reply)
{
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "id"));
	if (!id) {
		set_reply_error(reply, "message.get needs 'id'");
		return PARLEY_EINVAL;
	}
	pthread_mutex_lock(&s->rlock);
	sqlite3_stmt *st;
	int rv = PARLEY_EIO;
	if (sqlite3_prepare_v2(s->r, "SELECT " ENVELOPE_SQL " FROM messages WHERE id = ?1", -1, &st, NULL) ==
	    SQLITE_OK) {
		sq_bind(st, 1, id);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*reply = sq_printf("{\"message\":%s%s}", (const char *)sqlite3_column_text(st, 0), "");
			rv = 0;
		} else if (rc == SQLITE_DONE) {
			set_reply_error(reply, "no message with that id");
			rv = PARLEY_ENOENT;
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&s->rlock);
	return rv;
}

/*
 * store.backup {path}: a copy of the database as committed now, through
 * SQLite's online backup API on a connection of its own (readers and the
 * writer go on meanwhile; the WAL's committed pages are in the copy).  The
 * file must not exist yet; it is created 0600.  Restore by stopping the
 * gateway and copying the file over the database (removing -wal and -shm).
 */
static int query_backup(struct store *s, const cJSON *req, char **reply)
{
	const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "path"));
	if (!path || path[0] != '/') {
		set_reply_error(reply, "store.backup needs path: an absolute file name");
		return PARLEY_EINVAL;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		char *m = sq_printf("cannot create %s: %s (a backup never overwrites a file)", path, strerror(errno));
		*reply = m;
		return PARLEY_EINVAL;
	}
	close(fd);
	sqlite3 *src = NULL, *dst = NULL;
	int rv = PARLEY_EIO;
	if (sqlite3_open_v2(s->path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
	    sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(src, 5000);
		sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
		if (b) {
			int rc = sqlite3_backup_step(b, -1);
			sqlite3_backup_finish(b);
			/* The copy stands alone: one file, no WAL of its own. */
			if (rc == SQLITE_DONE && sq_exec(s, dst, "PRAGMA journal_mode=DELETE") == 0)
				rv = 0;
		}
	}
	if (rv != 0)
		s->host->log(s->inst, PARLEY_LOG_ERROR, "backup to %s failed: %s", path,
		             dst ? sqlite3_errmsg(dst) : "cannot open the database");
	sqlite3_close(src);
	sqlite3_close(dst);
	if (rv != 0) {
		unlink(path);
		set_reply_error(reply, "the backup failed: see the gateway's log");
		return rv;
	}
	struct stat st;
	long long size = stat(path, &st) == 0 ? (long long)st.st_size : 0;
	/* The path as JSON text (it may hold any byte a file name may). */
	cJSON *o = cJSON_CreateObject(), *b = cJSON_AddObjectToObject(o, "backup");
	cJSON_AddStringToObject(b, "path", path);
	cJSON_AddNumberToObject(b, "bytes", (double)size);
	*reply = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return *reply ? 0 : PARLEY_ENOMEM;
}

static int st_query(void *data, const char *op, const char *request_json, char **reply)
{
	struct store *s = data;
	cJSON *req = cJSON_Parse(request_json);
	int rv;
	if (!req)
		return PARLEY_EINVAL;
	if (strcmp(op, "messages.list") == 0)
		rv = query_list(s, req, reply);
	else if (strcmp(op, "message.get") == 0)
		rv = query_get(s, req, reply);
	else if (strcmp(op, "store.backup") == 0)
		rv = query_backup(s, req, reply);
	else if (strcmp(op, "reports.kpis") == 0)
		rv = reports_kpis(s, req, reply);
	else
		rv = conv_query(s, op, req, reply);
	cJSON_Delete(req);
	return rv;
}

static int st_kv_get(void *data, const char *ns, const char *key, char **val, size_t *len)
{
	struct store *s = data;
	pthread_mutex_lock(&s->rlock);
	sqlite3_stmt *st;
	int rv = PARLEY_EIO;
	if (sqlite3_prepare_v2(s->r, "SELECT value FROM kv WHERE ns = ?1 AND key = ?2", -1, &st, NULL) == SQLITE_OK) {
		sq_bind(st, 1, ns);
		sq_bind(st, 2, key);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			int n = sqlite3_column_bytes(st, 0);
			*val = malloc((size_t)n + 1);
			if (n)
				memcpy(*val, sqlite3_column_blob(st, 0), (size_t)n);
			(*val)[n] = '\0';
			if (len)
				*len = (size_t)n;
			rv = 0;
		} else if (rc == SQLITE_DONE) {
			rv = PARLEY_ENOENT;
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&s->rlock);
	return rv;
}

static int st_kv_set(void *data, const char *ns, const char *key, const void *val, size_t len)
{
	struct store *s = data;
	char ts[64];
	sq_now(ts);
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st;
	int rv = PARLEY_EIO;
	if (sqlite3_prepare_v2(
	            s->w,
	            "INSERT INTO kv (ns, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)"
	            " ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
	            -1, &st, NULL) == SQLITE_OK) {
		sq_bind(st, 1, ns);
		sq_bind(st, 2, key);
		sqlite3_bind_blob(st, 3, val, (int)len, SQLITE_STATIC);
		sq_bind(st, 4, ts);
		if (sqlite3_step(st) == SQLITE_DONE)
			rv = 0;
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

static int st_outbox_claim(void *data, int64_t now_ms, size_t max, char **json_array)
{
	struct store *s = data;
	pthread_mutex_lock(&s->wlock);
	if (sq_exec(s, s->w, "BEGIN IMMEDIATE") != 0) {
		pthread_mutex_unlock(&s->wlock);
		return PARLEY_EIO;
	}
	sqlite3_stmt *sel = NULL, *upd = NULL;
	int rv = PARLEY_EIO;
	cJSON *arr = cJSON_CreateArray();
	if (sqlite3_prepare_v2(
	            s->w,
	            "SELECT id, json_set(envelope, '$.attempts', attempts) FROM messages"
	            " WHERE status IS NOT NULL AND ((status IN ('queued', 'retry') AND next_attempt_ms <= ?1)"
	            "  OR (status = 'sending' AND coalesce(claimed_at_ms, 0) <= ?3))"
	            " AND direction = 'outbound'"
	            " ORDER BY priority, next_attempt_ms, seq LIMIT ?2",
	            -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->w, "UPDATE messages SET status = 'sending', claimed_at_ms = ?2 WHERE id = ?1", -1,
	                       &upd, NULL) != SQLITE_OK)
		goto out;
	/* A claim older than the claim timeout belongs to a sender that died: the message is claimed again. */
	sqlite3_bind_int64(sel, 1, now_ms);
	sqlite3_bind_int64(sel, 2, (sqlite3_int64)max);
	sqlite3_bind_int64(sel, 3, now_ms - s->claim_timeout_ms);
	sqlite3_bind_int64(upd, 2, now_ms);
	int rc;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		cJSON *e = cJSON_Parse((const char *)sqlite3_column_text(sel, 1));
		if (e)
			cJSON_AddItemToArray(arr, e);
		sqlite3_bind_text(upd, 1, (const char *)sqlite3_column_text(sel, 0), -1, SQLITE_TRANSIENT);
		sqlite3_step(upd);
		sqlite3_reset(upd);
	}
	if (rc == SQLITE_DONE && sq_exec(s, s->w, "COMMIT") == 0)
		rv = 0;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	if (rv != 0)
		sq_exec(s, s->w, "ROLLBACK");
	pthread_mutex_unlock(&s->wlock);
	if (rv == 0 && cJSON_GetArraySize(arr) > 0)
		*json_array = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	return rv;
}

static int st_outbox_update(void *data, const char *id, const char *status, const char *provider_id, const char *error,
                            int64_t next_attempt_ms)
{
	struct store *s = data;
	char ts[64];
	sq_now(ts);
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st;
	int rv = PARLEY_EIO;
	if (sqlite3_prepare_v2(s->w,
	                       "UPDATE messages SET status = ?2, provider_id = coalesce(?3, provider_id), error = ?4,"
	                       " next_attempt_ms = ?5, attempts = attempts + (?2 <> 'queued'), updated_at = ?6"
	                       " WHERE id = ?1",
	                       -1, &st, NULL) == SQLITE_OK) {
		sq_bind(st, 1, id);
		sq_bind(st, 2, status);
		sq_bind(st, 3, provider_id);
		sq_bind(st, 4, error);
		if (strcmp(status, "retry") == 0 || strcmp(status, "queued") == 0)
			sqlite3_bind_int64(st, 5, next_attempt_ms);
		else
			sqlite3_bind_null(st, 5);
		sq_bind(st, 6, ts);
		if (sqlite3_step(st) == SQLITE_DONE)
			rv = sqlite3_changes(s->w) ? 0 : PARLEY_ENOENT;
		sqlite3_finalize(st);
	}
	/*
	 * A provider may post its receipt before we recorded its message id:
	 * apply the furthest receipt already stored for that id.
	 */
	if (rv == 0 && provider_id &&
	    sqlite3_prepare_v2(
	            s->w,
	            "UPDATE messages SET status = r.status, error = coalesce(r.error, messages.error)"
	            " FROM (SELECT x.status, x.error FROM messages AS x WHERE x.kind = 'status'"
	            "  AND x.channel = (SELECT channel FROM messages WHERE id = ?1) AND x.thread_ref = ?2"
	            "  ORDER BY " STATUS_RANK("x.status") " DESC LIMIT 1) AS r"
	                                                  " WHERE messages.id = ?1 AND " STATUS_RANK(
	                                                          "messages.status") " < " STATUS_RANK("r.status"),
	            -1, &st, NULL) == SQLITE_OK) {
		sq_bind(st, 1, id);
		sq_bind(st, 2, provider_id);
		if (sqlite3_step(st) != SQLITE_DONE)
			rv = PARLEY_EIO;
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

static int st_attachment_set(void *data, const char *message_id, size_t index, const char *fields)
{
	struct store *s = data;
	char path[48];
	snprintf(path, sizeof(path), "$.attachments[%zu]", index);
	pthread_mutex_lock(&s->wlock);
	sqlite3_stmt *st;
	int rv = PARLEY_EIO;
	if (sqlite3_prepare_v2(s->w,
	                       "UPDATE messages SET envelope = json_set(envelope, ?2,"
	                       " json_patch(json_extract(envelope, ?2), json(?3)))"
	                       " WHERE id = ?1 AND json_type(envelope, ?2) = 'object'",
	                       -1, &st, NULL) == SQLITE_OK) {
		sq_bind(st, 1, message_id);
		sq_bind(st, 2, path);
		sq_bind(st, 3, fields);
		if (sqlite3_step(st) == SQLITE_DONE)
			rv = sqlite3_changes(s->w) ? 0 : PARLEY_ENOENT;
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

static int st_ping(void *data)
{
	struct store *s = data;
	pthread_mutex_lock(&s->rlock);
	int rv = s->r && sqlite3_exec(s->r, "SELECT 1 FROM schema_migrations LIMIT 1", NULL, NULL, NULL) == SQLITE_OK
	                 ? 0
	                 : PARLEY_EIO;
	pthread_mutex_unlock(&s->rlock);
	return rv;
}

/*
 * Of the typed contract only the read a bus relay needs, for now; the
 * integrator merges this with the full table of typed.c.
 */

static const struct parley_store_ops ops = {
        .struct_size = sizeof(struct parley_store_ops),
        .commit = st_commit,
        .query = st_query,
        .kv_get = st_kv_get,
        .kv_set = st_kv_set,
        .outbox_claim = st_outbox_claim,
        .outbox_update = st_outbox_update,
        .ping = st_ping,
        .attachment_set = st_attachment_set,
        .typed = &sq_typed_ops,
};

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_STORE,
        .name = "sqlite",
        .version = "1.0.0",
        .description = "SQLite store (WAL, group commit): messages, contacts, conversations, outbox, key-value state",
        .config = config_map,
        .instance_create = st_create,
        .instance_start = st_start,
        .instance_stop = st_stop,
        .instance_destroy = st_destroy,
        .store = &ops,
};

PARLEY_PLUGIN_DEFINE(plugin)
