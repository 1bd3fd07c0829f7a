/*
 * check_fixture.c: a SQLite database written by an older Parley (schema
 * version 2, tests/fixtures/store/sqlite-schema2.db, made by
 * make_schema2.sh) opens with this store: the migrations bring it to the
 * current version, and every message, contact, identity, conversation,
 * note and merge the manifest lists is there under the same id.
 */
#include "suite.h"

#include <sqlite3.h>
#include <stdlib.h>

/* The schema version this Parley's SQLite store migrates to (its migrations[] count). */
#define CURRENT_SCHEMA 11

static int schema_version(const char *path)
{
	sqlite3 *db = NULL;
	int v = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_migrations", -1, &st, NULL) == SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW)
				v = sqlite3_column_int(st, 0);
			sqlite3_finalize(st);
		}
	}
	sqlite3_close(db);
	return v;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		*len = (size_t)n;
	}
	return buf;
}

static const char *s_or_empty(const cJSON *o, const char *key)
{
	const char *v = suite_jstr(o, key);
	return v ? v : "";
}

static cJSON *get_obj(struct suite *su, const char *op, const char *key, const char *idkey, const char *id)
{
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, idkey, id);
	char *text = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	int rc;
	cJSON *r = suite_query(su, op, text, &rc);
	free(text);
	cJSON *o = r ? cJSON_DetachItemFromObjectCaseSensitive(r, key) : NULL;
	cJSON_Delete(r);
	return o;
}

/* Every stored message, through messages.list pages. */
static cJSON *all_messages(struct suite *su)
{
	cJSON *all = cJSON_CreateArray();
	char after[128] = "", req[256];
	for (int page = 0; page < 100; page++) {
		if (after[0])
			snprintf(req, sizeof(req), "{\"limit\":50,\"after_id\":\"%s\"}", after);
		else
			snprintf(req, sizeof(req), "{\"limit\":50}");
		int rc;
		cJSON *r = suite_query(su, "messages.list", req, &rc);
		CHECK_RC(rc, 0);
		cJSON *msgs = cJSON_DetachItemFromObjectCaseSensitive(r, "messages");
		cJSON *m;
		while (msgs && (m = cJSON_DetachItemFromArray(msgs, 0)) != NULL)
			cJSON_AddItemToArray(all, m);
		cJSON_Delete(msgs);
		const char *next = suite_jstr(r, "next_after_id");
		if (!next) {
			cJSON_Delete(r);
			break;
		}
		snprintf(after, sizeof(after), "%s", next);
		cJSON_Delete(r);
	}
	return all;
}

/* extra: how many messages were added since the manifest was written. */
static void check_manifest(struct suite *su, const cJSON *want, int extra)
{
	const cJSON *w;
	/* Messages: each listed one, with its channel, direction, owners and text; and no others. */
	cJSON *msgs = all_messages(su);
	CHECK(cJSON_GetArraySize(msgs) ==
	      cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(want, "messages")) + extra);
	cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(want, "messages"))
	{
		const cJSON *got = NULL, *it;
		cJSON_ArrayForEach(it, msgs) if (strcmp(s_or_empty(it, "id"), s_or_empty(w, "id")) == 0) got = it;
		if (!got) {
			fprintf(stderr, "message %s is missing\n", s_or_empty(w, "id"));
			suite_failures++;
			continue;
		}
		static const char *const keys[] = {"channel",    "direction",       "kind", "external_id",
		                                   "contact_id", "conversation_id", "text", "status"};
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			CHECK_STR(s_or_empty(got, keys[k]), s_or_empty(w, keys[k]));
	}
	cJSON_Delete(msgs);
	/* Contacts with their names, merge state and identities. */
	cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(want, "contacts"))
	{
		cJSON *c = get_obj(su, "contact.get", "contact", "contact_id", s_or_empty(w, "id"));
		CHECK(c != NULL);
		CHECK_STR(s_or_empty(c, "name"), s_or_empty(w, "name"));
		CHECK_STR(s_or_empty(c, "merged_into"), s_or_empty(w, "merged_into"));
		const cJSON *u;
		cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(w, "identities"))
		{
			int has = 0;
			const cJSON *i;
			cJSON_ArrayForEach(i, cJSON_GetObjectItemCaseSensitive(c, "identities")) has |=
			        strcmp(s_or_empty(i, "urn"), u->valuestring) == 0;
			if (!has)
				fprintf(stderr, "contact %s lost identity %s\n", s_or_empty(w, "id"), u->valuestring);
			CHECK(has);
		}
		cJSON_Delete(c);
	}
	/* Conversations with their status, contact, history and notes. */
	cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(want, "conversations"))
	{
		cJSON *c = get_obj(su, "conversation.get", "conversation", "conversation_id", s_or_empty(w, "id"));
		CHECK(c != NULL);
		CHECK_STR(s_or_empty(c, "status"), s_or_empty(w, "status"));
		CHECK_STR(s_or_empty(c, "contact_id"), s_or_empty(w, "contact_id"));
		CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "resolutions")) ==
		      cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(w, "resolutions")));
		CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "events")) ==
		      cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(w, "events")));
		cJSON_Delete(c);
	}
	cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(want, "notes"))
	{
		cJSON *c = get_obj(su, "conversation.get", "conversation", "conversation_id",
		                   s_or_empty(w, "conversation_id"));
		int has = 0;
		const cJSON *n;
		cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(c, "notes")) has |=
		        strcmp(s_or_empty(n, "id"), s_or_empty(w, "id")) == 0 &&
		        strcmp(s_or_empty(n, "text"), s_or_empty(w, "text")) == 0;
		if (!has)
			fprintf(stderr, "note %s is missing\n", s_or_empty(w, "id"));
		CHECK(has);
		cJSON_Delete(c);
	}
	/* Merges, through the typed merge_lock. */
	parley_store_tx *tx;
	CHECK_RC(su->t->tx_begin(su->store, &tx), 0);
	cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(want, "merges"))
	{
		struct parley_merge_rec m;
		CHECK_RC(su->t->merge_lock(tx, s_or_empty(w, "id"), &m), 0);
		CHECK_STR(m.from_id, suite_jstr(w, "from_id"));
		CHECK_STR(m.into_id, suite_jstr(w, "into_id"));
		CHECK_STR(m.undone_at, suite_jstr(w, "undone_at"));
	}
	su->t->tx_rollback(tx);
}

int check_fixture(struct suite *su, const char *fixture, const char *manifest)
{
	size_t len = 0, mlen = 0;
	char *db = slurp(fixture, &len);
	char *mtext = slurp(manifest, &mlen);
	cJSON *want = mtext ? cJSON_Parse(mtext) : NULL;
	free(mtext);
	if (!db || !want) {
		fprintf(stderr, "cannot read %s or %s\n", db ? manifest : fixture, manifest);
		free(db);
		cJSON_Delete(want);
		return 1;
	}
	char path[512];
	snprintf(path, sizeof(path), "%s/old.db", su->dir);
	FILE *f = fopen(path, "wb");
	CHECK(f && fwrite(db, 1, len, f) == len);
	if (f)
		fclose(f);
	free(db);
	CHECK(schema_version(path) == 2);
	if (suite_open(su) != 0) {
		cJSON_Delete(want);
		return 1;
	}
	CHECK(su->t != NULL);
	if (su->t) {
		su->h->new_id(su->run);
		check_manifest(su, want, 0);
		/* What the migration added works on the old file: leases, claims, typed writes. */
		CHECK_RC(su->t->lease_acquire(su->store, "fixture", "node-1", suite_now_ms(), 1000, NULL), 0);
		char *json = NULL;
		CHECK_RC(su->ops->outbox_claim(su->store, suite_now_ms(), 10, &json), 0);
		free(json);
		char id[64];
		suite_id(su, "msg", id);
		parley_envelope *e = suite_env(su, "inbound", id, "fixture", id, "tel:+1", NULL);
		int res = -1;
		CHECK_RC(suite_insert(su, &e, 1, &res), 0);
		CHECK_RC(res, 0);
		su->h->envelope_free(e);
	}
	suite_close(su);
	CHECK(schema_version(path) == CURRENT_SCHEMA);
	/* Opening the migrated file again applies nothing and still finds everything. */
	if (suite_open(su) != 0) {
		cJSON_Delete(want);
		return 1;
	}
	CHECK_RC(su->ops->ping(su->store), 0);
	if (su->t)
		check_manifest(su, want, 1);
	suite_close(su);
	CHECK(schema_version(path) == CURRENT_SCHEMA);
	cJSON_Delete(want);
	printf("fixture %s: %s\n", fixture, suite_failures ? "FAILED" : "ok");
	return suite_failures ? 1 : 0;
}
