/*
 * store.h: what the SQLite store's files share: the store object and a few
 * statement helpers.  Internal to this plugin.
 */
#ifndef PARLEY_STORE_SQLITE_STORE_H
#define PARLEY_STORE_SQLITE_STORE_H

#include <parley/parley.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <sqlite3.h>

struct store {
	const struct parley_host *host;
	parley_instance *inst;
	char *path;
	int synchronous_full;
	int64_t busy_ms;
	int64_t checkpoint_pages;
	int64_t claim_timeout_ms; /* an outbox claim older than this is claimable again */
	sqlite3 *w, *r;
	pthread_mutex_t wlock, rlock;
	/* Reports (reports.c) read on their own connection: a report of a year takes seconds, and reads of the
	 * inbox, /healthz and the events reader must not wait behind it (WAL readers do not block each other). */
	sqlite3 *rep;
	pthread_mutex_t replock;
	sqlite3_stmt *insert;
	sqlite3_stmt *receipt;   /* applies an inbound receipt to the outbound message */
	sqlite3_stmt *stored_id; /* the id a duplicate (channel, external_id) is stored under */
	/* Prepared statements by SQL text (static strings), one cache per connection. */
	struct stmt_cache {
		const char *sql[128];
		sqlite3_stmt *st[128];
		size_t n;
	} wcache, rcache, tcache; /* tcache: the typed operations' statements (typed.c), on the writer */
};

/*
 * How far a message has got; a receipt never moves a message back (a late
 * "delivered" after "read" changes nothing), but "failed" after "sent" does.
 */
#define STATUS_RANK(x)                                                                                                 \
	"(CASE " x " WHEN 'sent' THEN 2 WHEN 'delivered' THEN 3 WHEN 'read' THEN 4 WHEN 'failed' THEN 5 ELSE 1 END)"

/*
 * The stored envelope with the columns that change after insert folded in.
 * json_patch is an RFC 7396 merge patch: NULL columns remove their field.
 */
#define ENVELOPE_SQL                                                                                                   \
	"CASE WHEN status IS NULL OR direction <> 'outbound' THEN envelope ELSE json_patch(envelope, "                 \
	"json_object('status', status,"                                                                                \
	" 'error', error, 'external_id', provider_id, 'attempts', attempts)) END"

/* RFC 3339 UTC now, with milliseconds. */
void sq_now(char out[64]);
/* malloc'd printf of two strings. */
char *sq_printf(const char *fmt, const char *a, const char *b);
/* Run SQL, logging errors; 0 or PARLEY_EIO. */
int sq_exec(struct store *s, sqlite3 *db, const char *sql);
/* Bind text or NULL. */
void sq_bind(sqlite3_stmt *st, int i, const char *v);

/*
 * Conversations (conversations.c): conv_query answers the contact and
 * conversation reads, PARLEY_ENOTSUP for others.
 */
int conv_query(struct store *s, const char *op, const cJSON *req, char **reply);
/* Finalize the cached statements (before the connections close). */
void conv_close(struct store *s);

/*
 * Insert one envelope as a message on the writer connection, inside the
 * caller's transaction: *result is 0, or PARLEY_EDUPLICATE when (channel,
 * external_id) is stored already (the envelope's id is then set to the
 * stored one).  Returns 0, or the error that must roll the transaction back.
 */
int sq_insert(struct store *s, parley_envelope *e, int *result);

/* reports.c: parley_ms and parley_business_ms on a connection (both: the writer's appends use parley_ms), and
 * reports.kpis (on the reader). */
int reports_register(sqlite3 *db);
int reports_kpis(struct store *s, const cJSON *req, char **reply);
/* The typed contract (typed.c), and finalizing its statements. */
extern const struct parley_store_typed_ops sq_typed_ops;
void typed_close(struct store *s);

#endif
