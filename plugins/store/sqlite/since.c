/*
 * since.c: messages_since, the typed read a relay replays committed
 * envelopes with (core/relay.c).  seq is the messages table's rowid, given
 * in commit order by the one writer connection, so a reader that has seen
 * seq N has seen every seq below it.
 */
#include "store.h"

int sq_messages_since(void *store, int64_t after_seq, size_t max, parley_store_row_cb cb, void *arg)
{
	struct store *s = store;
	if (max == 0)
		return 0;
	pthread_mutex_lock(&s->rlock);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->r,
	                       "SELECT seq, id, " ENVELOPE_SQL " FROM messages WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	                       -1, &st, NULL) != SQLITE_OK) {
		s->host->log(s->inst, PARLEY_LOG_ERROR, "messages_since: %s", sqlite3_errmsg(s->r));
		pthread_mutex_unlock(&s->rlock);
		return PARLEY_EIO;
	}
	sqlite3_bind_int64(st, 1, after_seq);
	sqlite3_bind_int64(st, 2, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
	int rc, rv = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct parley_stored_envelope row = {
		        .seq = sqlite3_column_int64(st, 0),
		        .id = (const char *)sqlite3_column_text(st, 1),
		        .envelope = (const char *)sqlite3_column_text(st, 2),
		};
		if ((rv = cb(arg, &row)) != 0)
			break;
	}
	if (rv == 0 && rc != SQLITE_DONE) {
		s->host->log(s->inst, PARLEY_LOG_ERROR, "messages_since: %s", sqlite3_errmsg(s->r));
		rv = PARLEY_EIO;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->rlock);
	return rv;
}
