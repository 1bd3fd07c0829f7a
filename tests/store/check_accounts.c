/*
 * check_accounts.c: accounts, service tokens, sessions and failed-login
 * counts (store.h, ABI 1.3): what core/auth.c relies on, in every store.
 */
#include "suite.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>

/* A copy of the one row a visitor saw. */
struct seen {
	int rows;
	char name[128], email[128], role[32], teams[256], hash[256], revoked_at[64], account[128];
	int disabled, revoked;
	int64_t expires_ms;
};

static void copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "(null)");
}

static int see_account(void *arg, const void *row)
{
	struct seen *s = arg;
	const struct parley_account_rec *a = row;
	s->rows++;
	copy(s->name, sizeof(s->name), a->name);
	copy(s->email, sizeof(s->email), a->email);
	copy(s->role, sizeof(s->role), a->role);
	/* Teams come back as JSON; compare them parsed and printed compactly (a store may space them). */
	cJSON *t = cJSON_Parse(a->teams ? a->teams : "null");
	char *p = t ? cJSON_PrintUnformatted(t) : NULL;
	copy(s->teams, sizeof(s->teams), p);
	free(p);
	cJSON_Delete(t);
	copy(s->hash, sizeof(s->hash), a->password_hash);
	s->disabled = a->disabled;
	return 0;
}

static int see_token(void *arg, const void *row)
{
	struct seen *s = arg;
	const struct parley_token_rec *t = row;
	s->rows++;
	copy(s->name, sizeof(s->name), t->id);
	copy(s->role, sizeof(s->role), t->role);
	cJSON *sc = cJSON_Parse(t->scopes ? t->scopes : "null");
	char *p = sc ? cJSON_PrintUnformatted(sc) : NULL;
	copy(s->teams, sizeof(s->teams), p);
	free(p);
	cJSON_Delete(sc);
	copy(s->hash, sizeof(s->hash), t->hash);
	copy(s->revoked_at, sizeof(s->revoked_at), t->revoked_at);
	copy(s->email, sizeof(s->email), t->last_used_at);
	return 0;
}

static int see_session(void *arg, const void *row)
{
	struct seen *s = arg;
	const struct parley_session_rec *r = row;
	s->rows++;
	copy(s->account, sizeof(s->account), r->account);
	s->revoked = r->revoked;
	s->expires_ms = r->expires_ms;
	return 0;
}

/* Counts the rows of a list whose name (account) or id (token) starts with the run prefix. */
struct listing {
	const char *prefix;
	int accounts, tokens;
	char first[128];
};

static int list_account(void *arg, const void *row)
{
	struct listing *l = arg;
	const struct parley_account_rec *a = row;
	if (strncmp(a->name, l->prefix, strlen(l->prefix)) == 0 && l->accounts++ == 0)
		copy(l->first, sizeof(l->first), a->name);
	return 0;
}

static int list_token(void *arg, const void *row)
{
	struct listing *l = arg;
	const struct parley_token_rec *t = row;
	if (strncmp(t->id, l->prefix, strlen(l->prefix)) == 0)
		l->tokens++;
	return 0;
}

static int stop_at_first(void *arg, const void *row)
{
	(void)arg;
	(void)row;
	return 42;
}

static void check_account_rows(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	char a1[64], a2[64], e1[128], e2[128], now[64];
	suite_id(su, "acct", a1);
	suite_id(su, "acct", a2);
	snprintf(e1, sizeof(e1), "%s@example.org", a1);
	snprintf(e2, sizeof(e2), "%s@example.org", a2);
	suite_time(suite_now_ms(), now);
	struct parley_account_rec r = {a2, e2, "agent", "[\"billing\",\"sales\"]", "$argon2id$v=19$x", 0, now, now};
	CHECK_RC(t->account_insert(su->store, &r), 0);
	struct parley_account_rec r1 = {a1, e1, "admin", NULL, NULL, 0, now, now};
	CHECK_RC(t->account_insert(su->store, &r1), 0);
	/* Name and email are both keys. */
	CHECK_RC(t->account_insert(su->store, &r), PARLEY_EEXIST);
	struct parley_account_rec same_email = {"other-name", e1, "agent", NULL, NULL, 0, now, now};
	char other[64];
	suite_id(su, "acct", other);
	same_email.name = other;
	CHECK_RC(t->account_insert(su->store, &same_email), PARLEY_EEXIST);

	struct seen s = {0};
	CHECK_RC(t->account_get(su->store, a2, see_account, &s), 0);
	CHECK(s.rows == 1);
	CHECK_STR(s.email, e2);
	CHECK_STR(s.role, "agent");
	CHECK_STR(s.teams, "[\"billing\",\"sales\"]");
	CHECK_STR(s.hash, "$argon2id$v=19$x");
	memset(&s, 0, sizeof(s));
	CHECK_RC(t->account_find_email(su->store, e1, see_account, &s), 0);
	CHECK_STR(s.name, a1);
	CHECK_STR(s.teams, "[]"); /* NULL on write means [] */
	CHECK_STR(s.hash, "(null)");
	CHECK_RC(t->account_get(su->store, "no-such-account", see_account, &s), PARLEY_ENOENT);
	CHECK_RC(t->account_find_email(su->store, "nobody@example.org", see_account, &s), PARLEY_ENOENT);

	/* Update replaces every field but the name. */
	struct parley_account_rec up = {a2, e2, "admin", "[\"vip\"]", "$argon2id$v=19$y", 1, now, now};
	CHECK_RC(t->account_update(su->store, &up), 0);
	memset(&s, 0, sizeof(s));
	CHECK_RC(t->account_get(su->store, a2, see_account, &s), 0);
	CHECK_STR(s.role, "admin");
	CHECK_STR(s.teams, "[\"vip\"]");
	CHECK_STR(s.hash, "$argon2id$v=19$y");
	CHECK(s.disabled == 1);
	up.email = e1; /* a1's */
	CHECK_RC(t->account_update(su->store, &up), PARLEY_EEXIST);
	up.name = "no-such-account";
	up.email = "nobody-else@example.org";
	CHECK_RC(t->account_update(su->store, &up), PARLEY_ENOENT);

	/* The list is by name and a visitor's return stops it. */
	struct listing l = {su->run, 0, 0, {0}};
	CHECK_RC(t->accounts_list(su->store, list_account, &l), 0);
	CHECK(l.accounts == 2);
	CHECK_STR(l.first, strcmp(a1, a2) < 0 ? a1 : a2);
	CHECK_RC(t->accounts_list(su->store, stop_at_first, NULL), 42);

	CHECK_RC(t->account_delete(su->store, a1), 0);
	CHECK_RC(t->account_delete(su->store, a1), PARLEY_ENOENT);
	CHECK_RC(t->account_get(su->store, a1, see_account, &s), PARLEY_ENOENT);
	/* Its email is free again. */
	CHECK_RC(t->account_insert(su->store, &r1), 0);
}

static void check_token_rows(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	char id[64], id2[64], hash[128], hash2[128], now[64];
	suite_id(su, "tok", id);
	suite_id(su, "tok", id2);
	snprintf(hash, sizeof(hash), "%s-0123456789abcdef", id);
	snprintf(hash2, sizeof(hash2), "%s-fedcba9876543210", id2);
	suite_time(suite_now_ms(), now);
	struct parley_token_rec r = {id,   "crm", "service", "[\"messages.list\",\"message.send\"]",
	                             hash, now,   NULL,      NULL};
	CHECK_RC(t->token_insert(su->store, &r), 0);
	CHECK_RC(t->token_insert(su->store, &r), PARLEY_EEXIST);
	struct parley_token_rec r2 = {id2, "bi", "service", NULL, hash2, now, NULL, NULL};
	CHECK_RC(t->token_insert(su->store, &r2), 0);
	r2.id = "another-id";
	CHECK_RC(t->token_insert(su->store, &r2), PARLEY_EEXIST); /* the hash is a key */

	struct seen s = {0};
	CHECK_RC(t->token_find(su->store, hash, see_token, &s), 0);
	CHECK(s.rows == 1);
	CHECK_STR(s.name, id);
	CHECK_STR(s.role, "service");
	CHECK_STR(s.teams, "[\"messages.list\",\"message.send\"]");
	CHECK_STR(s.revoked_at, "(null)");
	CHECK_STR(s.email, "(null)"); /* never used */
	CHECK_RC(t->token_find(su->store, "no-such-hash", see_token, &s), PARLEY_ENOENT);
	memset(&s, 0, sizeof(s));
	CHECK_RC(t->token_find(su->store, hash2, see_token, &s), 0);
	CHECK_STR(s.teams, "[]");

	struct listing l = {su->run, 0, 0, {0}};
	CHECK_RC(t->tokens_list(su->store, list_token, &l), 0);
	CHECK(l.tokens == 2);

	CHECK_RC(t->token_touch(su->store, id, "2026-12-01T12:00:00.000Z"), 0);
	CHECK_RC(t->token_touch(su->store, "no-such-id", "2026-12-01T12:00:00.000Z"), PARLEY_ENOENT);
	CHECK_RC(t->token_revoke(su->store, id, "2026-12-01T12:00:01.000Z"), 0);
	/* Revoking again keeps the first time. */
	CHECK_RC(t->token_revoke(su->store, id, "2026-12-01T13:00:00.000Z"), 0);
	CHECK_RC(t->token_revoke(su->store, "no-such-id", "2026-12-01T13:00:00.000Z"), PARLEY_ENOENT);
	memset(&s, 0, sizeof(s));
	CHECK_RC(t->token_find(su->store, hash, see_token, &s), 0); /* revoked tokens are found, and say so */
	CHECK_STR(s.revoked_at, "2026-12-01T12:00:01.000Z");
	CHECK_STR(s.email, "2026-12-01T12:00:00.000Z");
}

static void check_session_rows(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	char h1[64], h2[64], h3[64], acct[64], other[64];
	suite_id(su, "sess", h1);
	suite_id(su, "sess", h2);
	suite_id(su, "sess", h3);
	suite_id(su, "sessacct", acct);
	suite_id(su, "sessacct", other);
	int64_t now = suite_now_ms();
	struct parley_session_rec a = {h1, acct, now, now + 60000, 0};
	struct parley_session_rec b = {h2, acct, now, now + 60000, 0};
	struct parley_session_rec c = {h3, other, now, now + 60000, 0};
	CHECK_RC(t->session_insert(su->store, &a), 0);
	CHECK_RC(t->session_insert(su->store, &b), 0);
	CHECK_RC(t->session_insert(su->store, &c), 0);
	CHECK_RC(t->session_insert(su->store, &a), PARLEY_EEXIST);
	struct seen s = {0};
	CHECK_RC(t->session_find(su->store, h1, see_session, &s), 0);
	CHECK_STR(s.account, acct);
	CHECK(s.revoked == 0);
	CHECK(s.expires_ms == now + 60000);
	CHECK_RC(t->session_find(su->store, "no-such-session", see_session, &s), PARLEY_ENOENT);

	CHECK_RC(t->session_revoke(su->store, h1), 0);
	CHECK_RC(t->session_revoke(su->store, "no-such-session"), PARLEY_ENOENT);
	memset(&s, 0, sizeof(s));
	CHECK_RC(t->session_find(su->store, h1, see_session, &s), 0);
	CHECK(s.revoked == 1);
	/* Revoking an account's sessions counts the live ones and leaves other accounts alone. */
	int64_t n = -1;
	CHECK_RC(t->sessions_revoke_account(su->store, acct, &n), 0);
	CHECK(n == 1);
	memset(&s, 0, sizeof(s));
	CHECK_RC(t->session_find(su->store, h2, see_session, &s), 0);
	CHECK(s.revoked == 1);
	memset(&s, 0, sizeof(s));
	CHECK_RC(t->session_find(su->store, h3, see_session, &s), 0);
	CHECK(s.revoked == 0);
	/* Expired ones go; a far future "now" removes at least ours (other runs may share the database). */
	n = 0;
	CHECK_RC(t->sessions_delete_expired(su->store, now + 59999, &n), 0);
	CHECK_RC(t->session_find(su->store, h3, see_session, &s), 0);
	CHECK_RC(t->sessions_delete_expired(su->store, now + 60000, &n), 0);
	CHECK(n >= 3);
	CHECK_RC(t->session_find(su->store, h3, see_session, &s), PARLEY_ENOENT);
}

struct failing {
	const struct parley_store_typed_ops *t;
	void *store;
	const char *key;
	int64_t now;
	int64_t max_seen;
};

static void *fail_thread(void *arg)
{
	struct failing *f = arg;
	for (int i = 0; i < 50; i++) {
		int64_t c = 0;
		if (f->t->login_failure_add(f->store, f->key, f->now, 60000, &c) == 0 && c > f->max_seen)
			f->max_seen = c;
	}
	return NULL;
}

static void check_failure_counts(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	char key[64];
	suite_id(su, "account:", key);
	int64_t now = suite_now_ms(), c = 0, last = -1;
	CHECK_RC(t->login_failure_get(su->store, key, &c, &last), 0);
	CHECK(c == 0 && last == 0);
	CHECK_RC(t->login_failure_add(su->store, key, now, 60000, &c), 0);
	CHECK(c == 1);
	CHECK_RC(t->login_failure_add(su->store, key, now + 10, 60000, &c), 0);
	CHECK(c == 2);
	CHECK_RC(t->login_failure_get(su->store, key, &c, &last), 0);
	CHECK(c == 2 && last == now + 10);
	/* A count whose last failure is older than forget_ms starts again. */
	CHECK_RC(t->login_failure_add(su->store, key, now + 10 + 60001, 60000, &c), 0);
	CHECK(c == 1);
	CHECK_RC(t->login_failure_clear(su->store, key), 0);
	CHECK_RC(t->login_failure_get(su->store, key, &c, &last), 0);
	CHECK(c == 0);
	/* Two threads (or nodes) failing at once: no failure is lost. */
	struct failing a = {t, su->store, key, now, 0}, b = {t, su->store, key, now, 0};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, fail_thread, &a);
	pthread_create(&tb, NULL, fail_thread, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK_RC(t->login_failure_get(su->store, key, &c, &last), 0);
	CHECK(c == 100);
	CHECK(a.max_seen == 100 || b.max_seen == 100);
	CHECK_RC(t->login_failures_forget(su->store, now), 0);
	CHECK_RC(t->login_failure_get(su->store, key, &c, &last), 0);
	CHECK(c == 100); /* last_ms == now is not before now */
	CHECK_RC(t->login_failures_forget(su->store, now + 1), 0);
	CHECK_RC(t->login_failure_get(su->store, key, &c, &last), 0);
	CHECK(c == 0);
}

void check_accounts(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	CHECK(t->struct_size >= offsetof(struct parley_store_typed_ops, login_failures_forget) + sizeof(void *));
	CHECK(t->account_insert && t->account_update && t->account_get && t->account_find_email && t->accounts_list &&
	      t->account_delete && t->token_insert && t->token_find && t->tokens_list && t->token_revoke &&
	      t->token_touch && t->session_insert && t->session_find && t->session_revoke &&
	      t->sessions_revoke_account && t->sessions_delete_expired && t->login_failure_add &&
	      t->login_failure_get && t->login_failure_clear && t->login_failures_forget);
	if (!t->login_failures_forget)
		return;
	check_account_rows(su);
	check_token_rows(su);
	check_session_rows(su);
	check_failure_counts(su);
}
