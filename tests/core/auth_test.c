/*
 * auth_test.c: core/auth.c and core/auth_ops.c over a real SQLite store
 * loaded by the real loader.  Two auth objects on one store stand for two
 * gateway nodes sharing it.
 *
 *   auth_test PLUGIN_DIR [STORAGE]
 *
 * STORAGE is the storage: section as a YAML flow mapping (default: SQLite
 * under a temporary data_dir); tests/core/auth_postgres.sh passes a
 * throwaway PostgreSQL server's, so the two "nodes" share a real server.
 */
#include "auth.h"
#include "auth_ops.h"
#include "crypto.h"
#include "gateway.h"
#include "instance.h"
#include "password.h"
#include "store.h"
#include "test.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static struct gateway gw;
static char dir[] = "/tmp/parley-auth-XXXXXX";

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int open_store(const char *plugin_dir, const char *storage)
{
	if (!mkdtemp(dir))
		return -1;
	char path[512];
	snprintf(path, sizeof(path), "%s/parley.yaml", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "data_dir: \"%s\"\nlog:\n  level: error\nplugins:\n  path: [\"%s\"]\n", dir, plugin_dir);
	if (storage)
		fprintf(f, "storage: %s\n", storage);
	fclose(f);
	struct cfg_errors errs = {0};
	if (gateway_open(&gw, path, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		cfg_errors_free(&errs);
		return -1;
	}
	cfg_errors_free(&errs);
	if (instance_up(&gw.reg, gw.store) != 0)
		return -1;
	gw.st = store_open(gw.store->data, gw.store->plugin->desc->store);
	return gw.st ? 0 : -1;
}

/* A control reply parsed; ok and the error code checked. */
static cJSON *op(char *(*fn)(struct gateway *, const struct auth_principal *, const cJSON *),
                 const struct auth_principal *who, const char *req_json, const char *want_code, char **text_out)
{
	cJSON *req = cJSON_Parse(req_json);
	char *text = fn(&gw, who, req);
	cJSON_Delete(req);
	cJSON *r = cJSON_Parse(text);
	const char *code = cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "error"), "code"));
	int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"));
	if (want_code ? !code || strcmp(code, want_code) != 0 : !ok) {
		fprintf(stderr, "request %s: expected %s, got %s\n", req_json, want_code ? want_code : "ok", text);
		test_failures++;
	}
	if (text_out)
		*text_out = text;
	else
		free(text);
	return r;
}

static const struct auth_principal admin = {.role = AUTH_ADMIN, .name = "root"};

static void test_password_and_tokens(void)
{
	char h[PASSWORD_HASH_MAX];
	CHECK(password_hash("correct horse battery", 19456, 2, h) == 0);
	CHECK(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
	CHECK(password_verify(h, "correct horse battery"));
	CHECK(!password_verify(h, "correct horse batterx"));
	CHECK(!password_verify("$2b$10$notargon", "x"));
	char h2[PASSWORD_HASH_MAX];
	CHECK(password_hash("correct horse battery", 19456, 2, h2) == 0);
	CHECK(strcmp(h, h2) != 0); /* salted */

	char t1[AUTH_TOKEN_MAX], t2[AUTH_TOKEN_MAX], x1[65], x2[65], want[65];
	CHECK(auth_token_new(AUTH_SERVICE_PREFIX, t1, x1) == 0);
	CHECK(auth_token_new(AUTH_SERVICE_PREFIX, t2, x2) == 0);
	CHECK(strncmp(t1, "pst_", 4) == 0 && strlen(t1) == 47);
	CHECK(strspn(t1 + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43);
	CHECK(strcmp(t1, t2) != 0 && strcmp(x1, x2) != 0);
	CHECK(crypto_sha256_hex(t1, want) == 0 && strcmp(x1, want) == 0);
	CHECK(strstr(x1, t1 + 4) == NULL);
}

static void test_agent_ops(void)
{
	char *text;
	cJSON_Delete(op(auth_op_agent_add, &admin,
	                "{\"name\":\"ana\",\"email\":\"not-an-email\",\"role\":\"agent\",\"password\":\"0123456789\"}",
	                "invalid_request", &text));
	CHECK_CONTAINS(text, "'email'");
	free(text);
	cJSON_Delete(op(auth_op_agent_add, &admin,
	                "{\"name\":\"ana\",\"email\":\"ana@example.org\",\"role\":\"agent\",\"password\":\"short\"}",
	                "invalid_request", &text));
	CHECK_CONTAINS(text, "'password'");
	free(text);
	cJSON_Delete(
	        op(auth_op_agent_add, &admin,
	           "{\"name\":\"ana\",\"email\":\"ana@example.org\",\"role\":\"boss\",\"password\":\"0123456789\"}",
	           "invalid_request", &text));
	CHECK_CONTAINS(text, "'role'");
	free(text);
	cJSON_Delete(
	        op(auth_op_agent_add, &admin,
	           "{\"name\":\"a na\",\"email\":\"ana@example.org\",\"role\":\"agent\",\"password\":\"0123456789\"}",
	           "invalid_request", &text));
	CHECK_CONTAINS(text, "'name'");
	free(text);
	cJSON_Delete(op(auth_op_agent_add, &admin,
	                "{\"name\":\"ana\",\"email\":\"ana@example.org\",\"role\":\"agent\",\"teams\":[\"bad team\"],"
	                "\"password\":\"0123456789\"}",
	                "invalid_request", &text));
	CHECK_CONTAINS(text, "'teams'");
	free(text);
	cJSON_Delete(op(auth_op_agent_add, &admin,
	                "{\"name\":\"ana\",\"email\":\"Ana@Example.org\",\"role\":\"agent\",\"teams\":[\"billing\"],"
	                "\"password\":\"ana-secret-pw\"}",
	                NULL, &text));
	CHECK(strstr(text, "ana-secret-pw") == NULL && strstr(text, "argon2") == NULL);
	CHECK_CONTAINS(text, "\"email\":\"ana@example.org\"");
	free(text);
	cJSON_Delete(
	        op(auth_op_agent_add, &admin,
	           "{\"name\":\"ana\",\"email\":\"other@example.org\",\"role\":\"agent\",\"password\":\"0123456789\"}",
	           "conflict", NULL));
	cJSON_Delete(
	        op(auth_op_agent_add, &admin,
	           "{\"name\":\"bob\",\"email\":\"bob@example.org\",\"role\":\"admin\",\"password\":\"bob-secret-pw\"}",
	           NULL, NULL));
	cJSON_Delete(op(auth_op_agent_list, &admin, "{}", NULL, &text));
	CHECK_CONTAINS(text, "\"name\":\"ana\"");
	CHECK_CONTAINS(text, "\"name\":\"bob\"");
	CHECK(strstr(text, "argon2") == NULL && strstr(text, "secret-pw") == NULL);
	free(text);
	/* An agent or an unscoped service cannot run admin ops. */
	const struct auth_principal agent = {.role = AUTH_AGENT, .name = "ana"};
	const struct auth_principal service = {.role = AUTH_SERVICE, .name = "crm"};
	char *r = auth_ops_handle(&gw, &agent, "agent.list", NULL);
	CHECK_CONTAINS(r, "forbidden");
	free(r);
	r = auth_ops_handle(&gw, &service, "agent.add", NULL);
	CHECK_CONTAINS(r, "forbidden");
	free(r);
	CHECK(auth_ops_handle(&gw, &admin, "messages.list", NULL) == NULL);
}

static void test_login_session(struct auth *a, struct auth *node2)
{
	char tok[AUTH_TOKEN_MAX];
	int64_t exp = 0, retry = 0;
	CHECK(auth_login(a, "ANA@example.org", "ana-secret-pw", "10.0.0.1", tok, &exp, &retry) == 0);
	CHECK(strncmp(tok, "pss_", 4) == 0 && strlen(tok) == 47);
	CHECK(exp > time_now_ms() + 11 * 3600 * 1000);
	struct auth_principal p;
	CHECK(auth_session(a, tok, &p) == 0);
	CHECK(p.role == AUTH_AGENT && strcmp(p.name, "ana") == 0);
	CHECK(p.n_teams == 1 && strcmp(p.teams[0], "billing") == 0);
	CHECK(auth_sees_team(&p, "billing") && !auth_sees_team(&p, "sales") && auth_sees_team(&p, NULL));
	CHECK(auth_may(&p, "conversations.list", AUTH_AGENT) && !auth_may(&p, "agent.add", AUTH_ADMIN));
	auth_principal_clear(&p);
	/* The other node knows the session too (shared store), and caches it. */
	CHECK(auth_session(node2, tok, &p) == 0);
	auth_principal_clear(&p);
	CHECK(auth_session(a, "pst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &p) == PARLEY_EAUTH);
	CHECK(auth_bearer(a, tok, &p) == PARLEY_EAUTH); /* a session is no bearer token */
	CHECK(auth_login(a, "ana@example.org", "wrong-password", "10.0.0.1", tok + 0, &exp, &retry) == PARLEY_EAUTH);
	CHECK(tok[0] == '\0');

	/* Logout: refused at once here, on the other node once its cache time has passed. */
	char t2[AUTH_TOKEN_MAX];
	CHECK(auth_login(a, "ana@example.org", "ana-secret-pw", "10.0.0.1", t2, &exp, &retry) == 0);
	CHECK(auth_session(node2, t2, &p) == 0);
	auth_principal_clear(&p);
	CHECK(auth_logout(a, t2) == 0);
	CHECK(auth_session(a, t2, &p) == PARLEY_EAUTH);
	sleep_ms(AUTH_CACHE_MS + 100);
	CHECK(auth_session(node2, t2, &p) == PARLEY_EAUTH);

	/* A new password revokes the sessions; the new one logs in, the old does not. */
	char t3[AUTH_TOKEN_MAX];
	CHECK(auth_login(a, "ana@example.org", "ana-secret-pw", "10.0.0.1", t3, &exp, &retry) == 0);
	cJSON_Delete(
	        op(auth_op_agent_password, &admin, "{\"name\":\"ana\",\"password\":\"ana-new-password\"}", NULL, NULL));
	CHECK(auth_session(a, t3, &p) == PARLEY_EAUTH);
	CHECK(auth_login(a, "ana@example.org", "ana-secret-pw", "10.0.0.1", t3, &exp, &retry) == PARLEY_EAUTH);
	CHECK(auth_login(a, "ana@example.org", "ana-new-password", "10.0.0.1", t3, &exp, &retry) == 0);
	/* Removing the account revokes its sessions too. */
	cJSON_Delete(op(auth_op_agent_remove, &admin, "{\"name\":\"ana\"}", NULL, NULL));
	CHECK(auth_session(a, t3, &p) == PARLEY_EAUTH);
	cJSON_Delete(op(auth_op_agent_remove, &admin, "{\"name\":\"ana\"}", "not_found", NULL));
}

struct seen_session {
	int found;
};

static int see_session(void *arg, const void *row)
{
	(void)row;
	((struct seen_session *)arg)->found = 1;
	return 0;
}

static void test_expiry(const struct auth_config *base)
{
	struct auth_config c = *base;
	c.session_ttl_ms = 300;
	struct auth *a;
	CHECK(auth_open(&a, gw.st, &c) == 0);
	char tok[AUTH_TOKEN_MAX];
	int64_t exp, retry;
	struct auth_principal p;
	CHECK(auth_login(a, "bob@example.org", "bob-secret-pw", "10.0.0.2", tok, &exp, &retry) == 0);
	CHECK(auth_session(a, tok, &p) == 0);
	CHECK(p.role == AUTH_ADMIN);
	CHECK(auth_sees_team(&p, "anything"));
	auth_principal_clear(&p);
	sleep_ms(400);
	/* Expired, even though this node validated it less than AUTH_CACHE_MS ago. */
	CHECK(auth_session(a, tok, &p) == PARLEY_EAUTH);
	/* And swept from the store. */
	char hash[65];
	struct seen_session s = {0};
	crypto_sha256_hex(tok, hash);
	CHECK(store_session_find(gw.st, hash, see_session, &s) == 0 && s.found);
	auth_sweep(a);
	CHECK(store_session_find(gw.st, hash, see_session, &s) == PARLEY_ENOENT);
	auth_close(a);
}

struct hammer {
	struct auth *a;
	int n, busy;
	int64_t ms;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	int64_t t0 = time_mono_ms();
	for (int i = 0; i < h->n; i++) {
		char tok[AUTH_TOKEN_MAX];
		int64_t exp, retry;
		if (auth_login(h->a, "carl@example.org", "guess-number-x", "192.0.2.66", tok, &exp, &retry) ==
		    PARLEY_EBUSY)
			h->busy++;
	}
	h->ms = time_mono_ms() - t0;
	return NULL;
}

static void test_lockout(const struct auth_config *base)
{
	cJSON_Delete(op(
	        auth_op_agent_add, &admin,
	        "{\"name\":\"carl\",\"email\":\"carl@example.org\",\"role\":\"agent\",\"password\":\"carl-secret-pw\"}",
	        NULL, NULL));
	cJSON_Delete(op(
	        auth_op_agent_add, &admin,
	        "{\"name\":\"dora\",\"email\":\"dora@example.org\",\"role\":\"agent\",\"password\":\"dora-secret-pw\"}",
	        NULL, NULL));
	struct auth_config c = *base;
	c.lockout_after = 3;
	c.delay_after = 100;
	c.lockout_for_ms = 3000;
	struct auth *a, *node2;
	CHECK(auth_open(&a, gw.st, &c) == 0 && auth_open(&node2, gw.st, &c) == 0);
	char tok[AUTH_TOKEN_MAX];
	int64_t exp, retry;
	for (int i = 0; i < 3; i++)
		CHECK(auth_login(a, "carl@example.org", "wrong-guess", "192.0.2.66", tok, &exp, &retry) ==
		      PARLEY_EAUTH);
	/* Locked: even the right password is not checked. */
	CHECK(auth_login(a, "carl@example.org", "carl-secret-pw", "192.0.2.67", tok, &exp, &retry) == PARLEY_EBUSY);
	CHECK(retry > 0 && retry <= 3000);
	/* On the other node too: the counts are the store's. */
	retry = 0;
	CHECK(auth_login(node2, "carl@example.org", "carl-secret-pw", "192.0.2.68", tok, &exp, &retry) == PARLEY_EBUSY);
	CHECK(retry > 0 && retry <= 3000);

	/* 1,000 tries in a row against the locked account, while another account logs in. */
	struct hammer h = {a, 1000, 0, 0};
	pthread_t th;
	pthread_create(&th, NULL, hammer_thread, &h);
	int64_t t0 = time_mono_ms();
	CHECK(auth_login(a, "dora@example.org", "dora-secret-pw", "198.51.100.7", tok, &exp, &retry) == 0);
	int64_t dora_ms = time_mono_ms() - t0;
	pthread_join(th, NULL);
	CHECK(h.busy == 1000);
	/* Not one of them cost a password hash (each takes tens of ms). */
	CHECK(h.ms < 1000);
	CHECK(dora_ms < 1000);
	printf("1000 refused tries: %lld ms; another account's login meanwhile: %lld ms\n", (long long)h.ms,
	       (long long)dora_ms);
	/* An unknown account is counted and refused the same way. */
	for (int i = 0; i < 3; i++)
		CHECK(auth_login(a, "nobody@example.org", "whatever-pw", "192.0.2.70", tok, &exp, &retry) ==
		      PARLEY_EAUTH);
	CHECK(auth_login(a, "nobody@example.org", "whatever-pw", "192.0.2.71", tok, &exp, &retry) == PARLEY_EBUSY);
	/* The lock ends lockout_for after the last counted failure. */
	sleep_ms(3100);
	CHECK(auth_login(a, "carl@example.org", "carl-secret-pw", "192.0.2.67", tok, &exp, &retry) == 0);
	auth_close(a);
	auth_close(node2);

	/* Delays before the lock: after delay_after failures each try waits delay_base, doubling. */
	c.lockout_after = 100;
	c.delay_after = 2;
	c.delay_base_ms = 1500;
	CHECK(auth_open(&a, gw.st, &c) == 0);
	/* The wait runs from the last failure, which began at d0 at the earliest: it is within [W - (d1 - d0), W]. */
	CHECK(auth_login(a, "dora@example.org", "wrong-guess", "203.0.113.1", tok, &exp, &retry) == PARLEY_EAUTH);
	int64_t d0 = time_now_ms();
	CHECK(auth_login(a, "dora@example.org", "wrong-guess", "203.0.113.1", tok, &exp, &retry) == PARLEY_EAUTH);
	CHECK(auth_login(a, "dora@example.org", "dora-secret-pw", "203.0.113.1", tok, &exp, &retry) == PARLEY_EBUSY);
	int64_t d1 = time_now_ms();
	CHECK(retry <= 1500 && retry >= 1500 - (d1 - d0) - 2);
	sleep_ms((int)retry + 50);
	d0 = time_now_ms();
	CHECK(auth_login(a, "dora@example.org", "wrong-guess", "203.0.113.1", tok, &exp, &retry) == PARLEY_EAUTH);
	CHECK(auth_login(a, "dora@example.org", "dora-secret-pw", "203.0.113.1", tok, &exp, &retry) == PARLEY_EBUSY);
	d1 = time_now_ms();
	CHECK(retry <= 3000 && retry >= 3000 - (d1 - d0) - 2); /* doubled */
	auth_close(a);

	/* Per address: many accounts from one address lock the address. */
	c = *base;
	c.address_lockout_after = 3;
	CHECK(auth_open(&a, gw.st, &c) == 0);
	const char *emails[] = {"x1@example.org", "x2@example.org", "x3@example.org"};
	for (int i = 0; i < 3; i++)
		CHECK(auth_login(a, emails[i], "wrong-guess", "203.0.113.9", tok, &exp, &retry) == PARLEY_EAUTH);
	CHECK(auth_login(a, "carl@example.org", "carl-secret-pw", "203.0.113.9", tok, &exp, &retry) == PARLEY_EBUSY);
	CHECK(auth_login(a, "carl@example.org", "carl-secret-pw", "203.0.113.10", tok, &exp, &retry) == 0);
	auth_close(a);
}

static void test_service_tokens(struct auth *a, struct auth *node2)
{
	char *text;
	cJSON_Delete(op(auth_op_token_create, &admin, "{\"name\":\"crm\",\"scopes\":[\"no.such.op\"]}",
	                "invalid_request", &text));
	CHECK_CONTAINS(text, "'scopes'");
	free(text);
	cJSON_Delete(
	        op(auth_op_token_create, &admin, "{\"name\":\"crm\",\"role\":\"admin\"}", "invalid_request", NULL));
	cJSON *r = op(auth_op_token_create, &admin,
	              "{\"name\":\"crm\",\"scopes\":[\"messages.list\",\"message.send\"]}", NULL, NULL);
	const char *token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "token"));
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "id"));
	CHECK(token && strncmp(token, "pst_", 4) == 0);
	CHECK(id && strncmp(id, "tok_", 4) == 0);
	if (!token || !id) {
		cJSON_Delete(r);
		return;
	}
	struct auth_principal p;
	CHECK(auth_bearer(a, token, &p) == 0);
	CHECK(p.role == AUTH_SERVICE && strcmp(p.name, "crm") == 0 && p.n_scopes == 2);
	CHECK(auth_may(&p, "messages.list", AUTH_AGENT));
	CHECK(!auth_may(&p, "conversations.list", AUTH_AGENT));
	CHECK(!auth_may(&p, "agent.add", AUTH_ADMIN));
	CHECK(auth_sees_team(&p, "billing"));
	/* A scoped service hands on only its own scopes. */
	cJSON *wider = cJSON_Parse("{\"name\":\"x\",\"scopes\":[\"conversations.list\"]}");
	char *deny = auth_op_token_create(&gw, &p, wider);
	CHECK_CONTAINS(deny, "forbidden");
	free(deny);
	cJSON_Delete(wider);
	auth_principal_clear(&p);
	CHECK(auth_session(a, token, &p) == PARLEY_EAUTH); /* a bearer token is no session */

	char *list = NULL;
	cJSON_Delete(op(auth_op_token_list, &admin, "{}", NULL, &list));
	CHECK_CONTAINS(list, id);
	CHECK(strstr(list, token) == NULL && strstr(list, token + 4) == NULL);
	char hash[65];
	crypto_sha256_hex(token, hash);
	CHECK(strstr(list, hash) == NULL);
	free(list);

	/* Revoked: at once on this node, within AUTH_CACHE_MS on the other (which had it cached). */
	CHECK(auth_bearer(node2, token, &p) == 0);
	auth_principal_clear(&p);
	char req[128];
	snprintf(req, sizeof(req), "{\"id\":\"%s\"}", id);
	cJSON_Delete(op(auth_op_token_revoke, &admin, req, NULL, NULL));
	CHECK(auth_bearer(a, token, &p) == PARLEY_EAUTH);
	CHECK(auth_bearer(node2, token, &p) == 0); /* still cached there: the documented window */
	auth_principal_clear(&p);
	sleep_ms(AUTH_CACHE_MS + 100);
	CHECK(auth_bearer(node2, token, &p) == PARLEY_EAUTH);
	cJSON_Delete(op(auth_op_token_revoke, &admin, "{\"id\":\"tok_nope\"}", "not_found", NULL));
	cJSON_Delete(r);

	/* Unscoped: every op but the admin ones. */
	r = op(auth_op_token_create, &admin, "{\"name\":\"bi\"}", NULL, NULL);
	token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "token"));
	CHECK(token && auth_bearer(a, token, &p) == 0);
	CHECK(p.n_scopes == 0 && auth_may(&p, "conversations.list", AUTH_AGENT) &&
	      !auth_may(&p, "token.create", AUTH_ADMIN));
	auth_principal_clear(&p);
	cJSON_Delete(r);
}

struct slow_login {
	struct auth *a;
	int rv;
};

static void *slow_login_thread(void *arg)
{
	struct slow_login *l = arg;
	char tok[AUTH_TOKEN_MAX];
	int64_t exp, retry;
	l->rv = auth_login(l->a, "carl@example.org", "carl-secret-pw", "198.51.100.20", tok, &exp, &retry);
	return NULL;
}

/* With one hash slot taken, the next login is answered "busy" at once instead of queuing behind it. */
static void test_kdf_slots(const struct auth_config *base)
{
	struct auth_config c = *base;
	c.kdf_concurrency = 1;
	c.kdf_wait_ms = 0;             /* "busy" at once; the queue within kdf_wait is checked below */
	c.kdf_memory_kib = 128 * 1024; /* a slow hash for the first login: hundreds of ms */
	c.kdf_iterations = 6;
	struct auth *a;
	CHECK(auth_open(&a, gw.st, &c) == 0);
	/* carl's stored hash has the default cost: give him one at this cost, so his login is slow. */
	char hash[PASSWORD_HASH_MAX], now[64];
	CHECK(auth_password_hash(a, "carl-secret-pw", hash, sizeof(hash)) == 0);
	time_format_ms(time_now_ms(), now);
	struct parley_account_rec acc = {"carl", "carl@example.org", "agent", NULL, hash, 0, now, now};
	CHECK(store_account_update(gw.st, &acc) == 0);
	struct slow_login l = {a, -100};
	pthread_t th;
	int64_t t0 = time_mono_ms();
	pthread_create(&th, NULL, slow_login_thread, &l);
	sleep_ms(50);
	char tok[AUTH_TOKEN_MAX];
	int64_t exp, retry = 0, t1 = time_mono_ms();
	int rv = auth_login(a, "dora@example.org", "dora-secret-pw", "198.51.100.21", tok, &exp, &retry);
	int64_t busy_ms = time_mono_ms() - t1;
	pthread_join(th, NULL);
	int64_t slow_ms = time_mono_ms() - t0;
	printf("a login during a %lld ms hash: %d after %lld ms\n", (long long)slow_ms, rv, (long long)busy_ms);
	CHECK(l.rv == 0);
	if (slow_ms > 150) { /* the first hash was still running when the second login came */
		CHECK(rv == PARLEY_EBUSY && retry > 0);
		CHECK(busy_ms < 50);
	}
	/* Its slot free again, the next one is served. */
	CHECK(auth_login(a, "dora@example.org", "dora-secret-pw", "198.51.100.21", tok, &exp, &retry) == 0);
	auth_close(a);

	/* With kdf_wait, a login during another's hash waits for the slot and is served. */
	c.kdf_wait_ms = 10000;
	CHECK(auth_open(&a, gw.st, &c) == 0);
	l.a = a;
	l.rv = -100;
	pthread_create(&th, NULL, slow_login_thread, &l);
	sleep_ms(50);
	rv = auth_login(a, "dora@example.org", "dora-secret-pw", "198.51.100.21", tok, &exp, &retry);
	pthread_join(th, NULL);
	CHECK(l.rv == 0);
	CHECK(rv == 0);
	auth_close(a);
}

/* An ABI 1.2 store: its typed table ends before the accounts block. */
static int old_store_called;

static int old_account_get(void *store, const char *name, parley_store_row_cb cb, void *arg)
{
	(void)store, (void)name, (void)cb, (void)arg;
	old_store_called = 1;
	return 0;
}

static void test_old_store(const struct auth_config *cfg)
{
	/* Beyond struct_size the fields are whatever an older plugin has there: here a function that must not run. */
	static struct parley_store_typed_ops old_typed;
	old_typed.struct_size = (uint32_t)offsetof(struct parley_store_typed_ops, account_insert);
	old_typed.account_get = old_account_get;
	static const struct parley_store_ops ops = {.struct_size = sizeof(struct parley_store_ops),
	                                            .typed = &old_typed};
	struct store *st = store_open(NULL, &ops);
	CHECK(st && !store_keeps_accounts(st));
	CHECK(store_account_get(st, "ana", NULL, NULL) == PARLEY_ENOTSUP);
	CHECK(!old_store_called);
	struct auth *a;
	CHECK(auth_open(&a, st, cfg) == 0);
	CHECK(!auth_available(a));
	char tok[AUTH_TOKEN_MAX];
	int64_t exp, retry;
	struct auth_principal p;
	CHECK(auth_login(a, "ana@example.org", "whatever-pw", "10.0.0.9", tok, &exp, &retry) == PARLEY_ENOTSUP);
	CHECK(auth_session(a, "pss_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &p) == PARLEY_EAUTH);
	struct auth *saved = gw.auth;
	gw.auth = a;
	char *text;
	cJSON_Delete(
	        op(auth_op_agent_add, &admin,
	           "{\"name\":\"old\",\"email\":\"old@example.org\",\"role\":\"agent\",\"password\":\"0123456789\"}",
	           "not_supported", &text));
	CHECK_CONTAINS(text, "does not keep accounts");
	free(text);
	gw.auth = saved;
	CHECK(!old_store_called);
	auth_close(a);
	store_close(st);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: auth_test PLUGIN_DIR [STORAGE]\n");
		return 2;
	}
	if (open_store(argv[1], argc > 2 ? argv[2] : NULL) != 0) {
		fprintf(stderr, "cannot open the store (%s) from %s\n", argc > 2 ? argv[2] : "sqlite", argv[1]);
		return 1;
	}
	printf("store: %s\n", gw.store->plugin->desc->name);
	struct auth_config cfg;
	cfg_auth_defaults(&cfg);
	struct auth *node2;
	CHECK(auth_open(&gw.auth, gw.st, &cfg) == 0);
	CHECK(auth_open(&node2, gw.st, &cfg) == 0);
	CHECK(auth_available(gw.auth));
	test_password_and_tokens();
	test_agent_ops();
	test_login_session(gw.auth, node2);
	test_expiry(&cfg);
	test_lockout(&cfg);
	test_service_tokens(gw.auth, node2);
	test_kdf_slots(&cfg);
	test_old_store(&cfg);
	auth_close(node2);
	gateway_close(&gw);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	TEST_DONE();
}
