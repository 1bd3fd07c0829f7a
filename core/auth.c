/*
 * auth.c: logins, sessions, service tokens and the failed-login limits (see
 * auth.h for the rules).  The order of auth_login is the point of the file:
 * every check that costs no hash (this node's memory of a wait, then the
 * shared failure counts) comes before the one that does, and the hash runs
 * only in one of auth.kdf_concurrency slots.
 */
#include "auth.h"

#include "crypto.h"
#include "log.h"
#include "password.h"
#include "store.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <parley/parley.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_SLOTS    256
#define BLOCK_SLOTS    256
#define SWEEP_EVERY_MS (10 * 60 * 1000)
/* A token's last_used_at is written at most this often. */
#define TOUCH_EVERY_MS 60000
/* What a login beyond the hash slots is told to wait. */
#define KDF_BUSY_RETRY_MS 250
/* Longer passwords are refused without hashing (agent.add accepts at most 1024 bytes). */
#define PASSWORD_MAX 1024
#define EMAIL_MAX    254

enum cache_kind { CACHE_EMPTY, CACHE_SESSION, CACHE_TOKEN };

/* A validated session or token, believed for AUTH_CACHE_MS. */
struct cached {
	enum cache_kind kind;
	unsigned char digest[32];
	int64_t validated_ms;
	int64_t expires_ms; /* sessions: their expiry; tokens: INT64_MAX */
	struct auth_principal p;
};

/* This node's memory of a wait it decided: no store read until it ends. */
struct blocked {
	uint64_t key; /* FNV-1a of the failure key; 0 = empty */
	int64_t until_ms;
};

struct auth {
	struct store *st;
	struct auth_config cfg;
	char dummy[PASSWORD_HASH_MAX]; /* verified against when the account is unknown */
	pthread_mutex_t kdf_lock;
	pthread_cond_t kdf_free;
	int64_t kdf_running;
	pthread_mutex_t lock; /* cache, blocked, last_sweep_ms */
	struct cached cache[CACHE_SLOTS];
	struct blocked blocked[BLOCK_SLOTS];
	int64_t last_sweep_ms;
};

/* ------------------------------------------------------------ principals */

void auth_principal_clear(struct auth_principal *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_teams; i++)
		free(p->teams[i]);
	free(p->teams);
	for (size_t i = 0; i < p->n_scopes; i++)
		free(p->scopes[i]);
	free(p->scopes);
	memset(p, 0, sizeof(*p));
}

static int strings_copy(char ***dst, size_t *nd, char *const *src, size_t n)
{
	*dst = NULL;
	*nd = 0;
	if (n == 0)
		return 0;
	if (!(*dst = calloc(n, sizeof(char *))))
		return PARLEY_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!((*dst)[i] = strdup(src[i])))
			return PARLEY_ENOMEM;
		*nd = i + 1;
	}
	return 0;
}

int auth_principal_copy(struct auth_principal *dst, const struct auth_principal *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->role = src->role;
	memcpy(dst->name, src->name, sizeof(dst->name));
	memcpy(dst->id, src->id, sizeof(dst->id));
	if (strings_copy(&dst->teams, &dst->n_teams, src->teams, src->n_teams) != 0 ||
	    strings_copy(&dst->scopes, &dst->n_scopes, src->scopes, src->n_scopes) != 0) {
		auth_principal_clear(dst);
		return PARLEY_ENOMEM;
	}
	return 0;
}

/* The strings of a JSON array text into a malloc'd list; non-strings are skipped. */
static int strings_of_json(const char *json, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	cJSON *a = json ? cJSON_Parse(json) : NULL;
	int size = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
	int rv = 0;
	if (size > 0 && !(*out = calloc((size_t)size, sizeof(char *))))
		rv = PARLEY_ENOMEM;
	const cJSON *it;
	cJSON_ArrayForEach(it, a)
	{
		if (rv == 0 && cJSON_IsString(it)) {
			if (!((*out)[*n] = strdup(it->valuestring)))
				rv = PARLEY_ENOMEM;
			else
				(*n)++;
		}
	}
	cJSON_Delete(a);
	return rv;
}

const char *auth_role_name(enum auth_role r)
{
	switch (r) {
	case AUTH_AGENT:
		return "agent";
	case AUTH_ADMIN:
		return "admin";
	case AUTH_SERVICE:
		return "service";
	default:
		return "none";
	}
}

enum auth_role auth_role_parse(const char *s)
{
	if (!s)
		return AUTH_NONE;
	if (strcmp(s, "agent") == 0)
		return AUTH_AGENT;
	if (strcmp(s, "admin") == 0)
		return AUTH_ADMIN;
	if (strcmp(s, "service") == 0)
		return AUTH_SERVICE;
	return AUTH_NONE;
}

static int scoped(const struct auth_principal *p, const char *op)
{
	for (size_t i = 0; op && i < p->n_scopes; i++)
		if (strcmp(p->scopes[i], op) == 0)
			return 1;
	return 0;
}

int auth_may(const struct auth_principal *p, const char *op, enum auth_role needed)
{
	if (needed == AUTH_NONE)
		return 1;
	if (!p)
		return 0;
	switch (p->role) {
	case AUTH_ADMIN:
		return 1;
	case AUTH_AGENT:
		return needed == AUTH_AGENT;
	case AUTH_SERVICE:
		if (needed == AUTH_ADMIN)
			return scoped(p, op);
		return p->n_scopes == 0 || scoped(p, op);
	default:
		return 0;
	}
}

int auth_sees_team(const struct auth_principal *p, const char *team)
{
	if (!p)
		return 0;
	if (p->role == AUTH_ADMIN || p->role == AUTH_SERVICE)
		return 1;
	if (p->role != AUTH_AGENT)
		return 0;
	if (!team || !team[0])
		return 1;
	for (size_t i = 0; i < p->n_teams; i++)
		if (strcmp(p->teams[i], team) == 0)
			return 1;
	return 0;
}

/* ------------------------------------------------------------ open, close */

int auth_open(struct auth **out, struct store *st, const struct auth_config *cfg)
{
	*out = NULL;
	struct auth *a = calloc(1, sizeof(*a));
	if (!a)
		return PARLEY_ENOMEM;
	a->st = st;
	a->cfg = *cfg;
	if (a->cfg.kdf_concurrency < 1)
		a->cfg.kdf_concurrency = 1;
	/* The dummy's password is random: nothing verifies against it. */
	unsigned char r[16];
	char pw[32];
	int rv = crypto_random(r, sizeof(r)) == 0 ? 0 : PARLEY_EINTERNAL;
	if (rv == 0) {
		crypto_b64url(r, sizeof(r), pw);
		rv = password_hash(pw, (uint32_t)a->cfg.kdf_memory_kib, (uint32_t)a->cfg.kdf_iterations, a->dummy);
	}
	if (rv != 0) {
		free(a);
		return rv;
	}
	pthread_mutex_init(&a->kdf_lock, NULL);
	pthread_cond_init(&a->kdf_free, NULL);
	pthread_mutex_init(&a->lock, NULL);
	a->last_sweep_ms = time_now_ms();
	*out = a;
	return 0;
}

void auth_close(struct auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		auth_principal_clear(&a->cache[i].p);
	pthread_mutex_destroy(&a->kdf_lock);
	pthread_cond_destroy(&a->kdf_free);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int auth_available(const struct auth *a)
{
	return a && store_keeps_accounts(a->st);
}

struct store *auth_store(struct auth *a)
{
	return a->st;
}

/* ------------------------------------------------------------ hash slots */

/* A hash slot, waiting up to wait_ms for one (-1: as long as it takes); 1 when taken. */
static int kdf_take(struct auth *a, int64_t wait_ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&a->kdf_lock);
	while (wait_ms != 0 && a->kdf_running >= a->cfg.kdf_concurrency) {
		if (wait_ms < 0)
			pthread_cond_wait(&a->kdf_free, &a->kdf_lock);
		else if (pthread_cond_timedwait(&a->kdf_free, &a->kdf_lock, &until) != 0)
			break;
	}
	int ok = a->kdf_running < a->cfg.kdf_concurrency;
	if (ok)
		a->kdf_running++;
	pthread_mutex_unlock(&a->kdf_lock);
	return ok;
}

static void kdf_give(struct auth *a)
{
	pthread_mutex_lock(&a->kdf_lock);
	a->kdf_running--;
	pthread_cond_signal(&a->kdf_free);
	pthread_mutex_unlock(&a->kdf_lock);
}

int auth_password_hash(struct auth *a, const char *password, char *out, size_t size)
{
	if (!password || size < PASSWORD_HASH_MAX)
		return PARLEY_EINVAL;
	kdf_take(a, -1);
	int rv = password_hash(password, (uint32_t)a->cfg.kdf_memory_kib, (uint32_t)a->cfg.kdf_iterations, out);
	kdf_give(a);
	return rv;
}

/* ------------------------------------------------------------ tokens */

int auth_token_new(const char *prefix, char token_out[AUTH_TOKEN_MAX], char hash_out[65])
{
	unsigned char r[32];
	char b[48];
	if (strlen(prefix) != 4 || crypto_random(r, sizeof(r)) != 0)
		return PARLEY_EINTERNAL;
	crypto_b64url(r, sizeof(r), b);
	memcpy(token_out, prefix, 4);
	memcpy(token_out + 4, b, 44); /* 43 characters and the NUL */
	return crypto_sha256_hex(token_out, hash_out) == 0 ? 0 : PARLEY_EINTERNAL;
}

/* A token of this shape (prefix, 43 base64url characters), and its digest. */
static int token_digest(const char *token, const char *prefix, unsigned char digest[32])
{
	if (!token || strncmp(token, prefix, 4) != 0 || strlen(token) != AUTH_TOKEN_MAX - 1)
		return 0;
	if (strspn(token + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != 43)
		return 0;
	return crypto_sha256(token, strlen(token), digest) == 0;
}

/* ------------------------------------------------------------ the cache */

static struct cached *slot_of(struct auth *a, const unsigned char digest[32])
{
	return &a->cache[digest[0] % CACHE_SLOTS];
}

/* A fresh cached validation of digest into out: 1, or 0 (then ask the store). */
static int cache_get(struct auth *a, enum cache_kind kind, const unsigned char digest[32], int64_t now,
                     struct auth_principal *out)
{
	pthread_mutex_lock(&a->lock);
	struct cached *c = slot_of(a, digest);
	int hit = c->kind == kind && crypto_ct_equal(c->digest, digest, 32) && now - c->validated_ms < AUTH_CACHE_MS &&
	          now >= c->validated_ms && now < c->expires_ms;
	if (hit && auth_principal_copy(out, &c->p) != 0)
		hit = 0;
	pthread_mutex_unlock(&a->lock);
	return hit;
}

static void cache_put(struct auth *a, enum cache_kind kind, const unsigned char digest[32], int64_t now,
                      int64_t expires_ms, const struct auth_principal *p)
{
	pthread_mutex_lock(&a->lock);
	struct cached *c = slot_of(a, digest);
	auth_principal_clear(&c->p);
	c->kind = CACHE_EMPTY;
	if (auth_principal_copy(&c->p, p) == 0) {
		c->kind = kind;
		memcpy(c->digest, digest, 32);
		c->validated_ms = now;
		c->expires_ms = expires_ms;
	}
	pthread_mutex_unlock(&a->lock);
}

/* Forget cached entries of kind: all of them (account NULL), or those of one account. */
static void cache_forget(struct auth *a, enum cache_kind kind, const char *account, const unsigned char *digest)
{
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		struct cached *c = &a->cache[i];
		if (c->kind != kind || (account && strcmp(c->p.name, account) != 0) ||
		    (digest && !crypto_ct_equal(c->digest, digest, 32)))
			continue;
		auth_principal_clear(&c->p);
		c->kind = CACHE_EMPTY;
	}
	pthread_mutex_unlock(&a->lock);
}

void auth_forget_tokens(struct auth *a)
{
	cache_forget(a, CACHE_TOKEN, NULL, NULL);
}

/* ------------------------------------------------------------ sessions */

struct session_row {
	int found;
	char account[128];
	int64_t expires_ms;
	int revoked;
};

static int copy_session(void *arg, const void *row)
{
	struct session_row *s = arg;
	const struct parley_session_rec *r = row;
	s->found = 1;
	snprintf(s->account, sizeof(s->account), "%s", r->account ? r->account : "");
	s->expires_ms = r->expires_ms;
	s->revoked = r->revoked;
	return 0;
}

/* An account as the login and session checks need it. */
struct account_row {
	int found;
	char name[128];
	enum auth_role role;
	char *teams; /* JSON text, malloc'd */
	char *hash;  /* malloc'd */
	int disabled;
};

static int copy_account(void *arg, const void *row)
{
	struct account_row *a = arg;
	const struct parley_account_rec *r = row;
	a->found = 1;
	snprintf(a->name, sizeof(a->name), "%s", r->name ? r->name : "");
	a->role = auth_role_parse(r->role);
	a->teams = r->teams ? strdup(r->teams) : NULL;
	a->hash = r->password_hash ? strdup(r->password_hash) : NULL;
	a->disabled = r->disabled;
	return 0;
}

static void account_row_free(struct account_row *a)
{
	free(a->teams);
	if (a->hash)
		OPENSSL_clear_free(a->hash, strlen(a->hash));
	memset(a, 0, sizeof(*a));
}

/* A token presented to auth_session or auth_bearer. */
struct presented {
	unsigned char digest[32];
	char hex[65]; /* what the store keys it by */
	int64_t now;
};

/*
 * Clear out and read token: 0 with *p filled (ask the store), 1 when this
 * node validated it within AUTH_CACHE_MS (out filled), PARLEY_EAUTH when
 * it is no token of kind.
 */
static int present(struct auth *a, const char *token, enum cache_kind kind, struct auth_principal *out,
                   struct presented *p)
{
	memset(out, 0, sizeof(*out));
	if (!token_digest(token, kind == CACHE_SESSION ? AUTH_SESSION_PREFIX : AUTH_SERVICE_PREFIX, p->digest))
		return PARLEY_EAUTH;
	p->now = time_now_ms();
	if (cache_get(a, kind, p->digest, p->now, out))
		return 1;
	crypto_hex(p->digest, 32, p->hex);
	return 0;
}

int auth_session(struct auth *a, const char *token, struct auth_principal *out)
{
	struct presented pr;
	int rv = present(a, token, CACHE_SESSION, out, &pr);
	if (rv != 0)
		return rv > 0 ? 0 : rv;
	const unsigned char *digest = pr.digest;
	int64_t now = pr.now;
	struct session_row s = {0};
	rv = store_session_find(a->st, pr.hex, copy_session, &s);
	if (rv == PARLEY_ENOENT || rv == PARLEY_ENOTSUP || (rv == 0 && (s.revoked || s.expires_ms <= now)))
		return PARLEY_EAUTH;
	if (rv != 0)
		return rv;
	struct account_row acc = {0};
	rv = store_account_get(a->st, s.account, copy_account, &acc);
	if (rv == 0 && (acc.disabled || (acc.role != AUTH_AGENT && acc.role != AUTH_ADMIN)))
		rv = PARLEY_EAUTH;
	if (rv == 0) {
		out->role = acc.role;
		snprintf(out->name, sizeof(out->name), "%s", acc.name);
		rv = strings_of_json(acc.teams, &out->teams, &out->n_teams);
	}
	account_row_free(&acc);
	if (rv == 0)
		cache_put(a, CACHE_SESSION, digest, now, s.expires_ms, out);
	else
		auth_principal_clear(out);
	return rv == PARLEY_ENOENT ? PARLEY_EAUTH : rv;
}

int auth_logout(struct auth *a, const char *token)
{
	unsigned char digest[32];
	if (!token_digest(token, AUTH_SESSION_PREFIX, digest))
		return PARLEY_EAUTH;
	char hex[65];
	crypto_hex(digest, 32, hex);
	cache_forget(a, CACHE_SESSION, NULL, digest);
	int rv = store_session_revoke(a->st, hex);
	return rv == PARLEY_ENOENT || rv == PARLEY_ENOTSUP ? PARLEY_EAUTH : rv;
}

int auth_revoke_account(struct auth *a, const char *account)
{
	cache_forget(a, CACHE_SESSION, account, NULL);
	return store_sessions_revoke_account(a->st, account, NULL);
}

/* ------------------------------------------------------------ service tokens */

struct token_row {
	int found;
	char id[32], name[128];
	char *scopes;
	int revoked;
	int64_t last_used_ms;
};

static int copy_token(void *arg, const void *row)
{
	struct token_row *t = arg;
	const struct parley_token_rec *r = row;
	t->found = 1;
	snprintf(t->id, sizeof(t->id), "%s", r->id ? r->id : "");
	snprintf(t->name, sizeof(t->name), "%s", r->name ? r->name : "");
	t->scopes = r->scopes ? strdup(r->scopes) : NULL;
	t->revoked = r->revoked_at != NULL || auth_role_parse(r->role) != AUTH_SERVICE;
	t->last_used_ms = r->last_used_at ? time_parse_ms(r->last_used_at) : 0;
	return 0;
}

int auth_bearer(struct auth *a, const char *token, struct auth_principal *out)
{
	struct presented pr;
	int rv = present(a, token, CACHE_TOKEN, out, &pr);
	if (rv != 0)
		return rv > 0 ? 0 : rv;
	const unsigned char *digest = pr.digest;
	int64_t now = pr.now;
	struct token_row t = {0};
	rv = store_token_find(a->st, pr.hex, copy_token, &t);
	if (rv == 0 && t.revoked)
		rv = PARLEY_EAUTH;
	if (rv == 0) {
		out->role = AUTH_SERVICE;
		snprintf(out->name, sizeof(out->name), "%s", t.name);
		snprintf(out->id, sizeof(out->id), "%s", t.id);
		rv = strings_of_json(t.scopes, &out->scopes, &out->n_scopes);
	}
	free(t.scopes);
	if (rv == 0) {
		cache_put(a, CACHE_TOKEN, digest, now, INT64_MAX, out);
		if (now - t.last_used_ms >= TOUCH_EVERY_MS) {
			char at[64];
			time_format_ms(now, at);
			store_token_touch(a->st, t.id, at);
		}
	} else {
		auth_principal_clear(out);
	}
	return rv == PARLEY_ENOENT || rv == PARLEY_ENOTSUP ? PARLEY_EAUTH : rv;
}

/* ------------------------------------------------------------ failed logins */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h ? h : 1;
}

/* How long this node already knows key must wait (0: ask the store). */
static int64_t blocked_for(struct auth *a, const char *key, int64_t now)
{
	uint64_t k = fnv1a(key);
	pthread_mutex_lock(&a->lock);
	struct blocked *b = &a->blocked[k % BLOCK_SLOTS];
	int64_t left = b->key == k && b->until_ms > now ? b->until_ms - now : 0;
	pthread_mutex_unlock(&a->lock);
	return left;
}

static void block_set(struct auth *a, const char *key, int64_t until_ms)
{
	uint64_t k = fnv1a(key);
	pthread_mutex_lock(&a->lock);
	struct blocked *b = &a->blocked[k % BLOCK_SLOTS];
	if (until_ms > 0 || b->key == k) {
		b->key = until_ms > 0 ? k : 0;
		b->until_ms = until_ms;
	}
	pthread_mutex_unlock(&a->lock);
}

/* Until when an account with count failures, the last at last_ms, waits (0: it does not). */
static int64_t account_until(const struct auth_config *c, int64_t count, int64_t last_ms)
{
	if (count >= c->lockout_after)
		return last_ms + c->lockout_for_ms;
	if (count < c->delay_after)
		return 0;
	int64_t shift = count - c->delay_after, wait = c->delay_base_ms;
	while (shift-- > 0 && wait < c->lockout_for_ms)
		wait *= 2;
	return last_ms + (wait < c->lockout_for_ms ? wait : c->lockout_for_ms);
}

static int64_t address_until(const struct auth_config *c, int64_t count, int64_t last_ms)
{
	return count >= c->address_lockout_after ? last_ms + c->lockout_for_ms : 0;
}

void auth_sweep(struct auth *a)
{
	int64_t now = time_now_ms();
	store_sessions_delete_expired(a->st, now, NULL);
	store_login_failures_forget(a->st, now - a->cfg.lockout_for_ms);
}

void auth_tick(struct auth *a)
{
	int64_t now = time_now_ms();
	pthread_mutex_lock(&a->lock);
	int due = now - a->last_sweep_ms >= SWEEP_EVERY_MS;
	if (due)
		a->last_sweep_ms = now;
	pthread_mutex_unlock(&a->lock);
	if (due)
		auth_sweep(a);
}

/*
 * Count one failure of both keys and remember the waits they now have.
 * account is the name of the account tried, or NULL when the e-mail is
 * nobody's: the text typed is then not logged (it may be a password typed
 * in the wrong field).
 */
static void failed(struct auth *a, const char *akey, const char *ipkey, const char *account, int64_t now)
{
	int64_t c = 0;
	if (store_login_failure_add(a->st, akey, now, a->cfg.lockout_for_ms, &c) == 0) {
		block_set(a, akey, account_until(&a->cfg, c, now));
		if (c == a->cfg.lockout_after)
			log_warn("login: %s%s%s locked for %lld s after %lld failed logins in a row",
			         account ? "account '" : "an unknown e-mail address", account ? account : "",
			         account ? "'" : "", (long long)(a->cfg.lockout_for_ms / 1000), (long long)c);
	}
	if (store_login_failure_add(a->st, ipkey, now, a->cfg.lockout_for_ms, &c) == 0) {
		block_set(a, ipkey, address_until(&a->cfg, c, now));
		if (c == a->cfg.address_lockout_after) {
			/* The address as the HTTP layer gave it, reduced to what an address is made of. */
			char addr[81];
			size_t n = 0;
			for (const char *p = ipkey + 8; *p && n < sizeof(addr) - 1; p++)
				addr[n++] = strchr("0123456789abcdefABCDEF.:[]", *p) ? *p : '?';
			addr[n] = '\0';
			log_warn("login: client address %s locked for %lld s after %lld failed logins", addr,
			         (long long)(a->cfg.lockout_for_ms / 1000), (long long)c);
		}
	}
}

/* The wait the shared counts impose on key, or 0; a store error is a wait of 1 s (fail closed). */
static int64_t shared_until(struct auth *a, const char *key, int is_account)
{
	int64_t count = 0, last = 0;
	int rv = store_login_failure_get(a->st, key, &count, &last);
	if (rv != 0)
		return time_now_ms() + 1000;
	return is_account ? account_until(&a->cfg, count, last) : address_until(&a->cfg, count, last);
}

static int new_session(struct auth *a, const char *account, int64_t now, char token_out[AUTH_TOKEN_MAX],
                       int64_t *expires_ms)
{
	char hash[65];
	int rv = auth_token_new(AUTH_SESSION_PREFIX, token_out, hash);
	struct parley_session_rec s = {hash, account, now, now + a->cfg.session_ttl_ms, 0};
	if (rv == 0)
		rv = store_session_insert(a->st, &s);
	if (rv == 0 && expires_ms)
		*expires_ms = s.expires_ms;
	if (rv != 0)
		OPENSSL_cleanse(token_out, AUTH_TOKEN_MAX);
	return rv;
}

int auth_login(struct auth *a, const char *email, const char *password, const char *client_ip,
               char token_out[AUTH_TOKEN_MAX], int64_t *expires_ms, int64_t *retry_after_ms)
{
	token_out[0] = '\0';
	if (retry_after_ms)
		*retry_after_ms = 0;
	if (!auth_available(a))
		return PARLEY_ENOTSUP;
	if (!email || !password || strlen(email) > EMAIL_MAX || strlen(password) > PASSWORD_MAX)
		return PARLEY_EAUTH;
	char lower[EMAIL_MAX + 1], akey[EMAIL_MAX + 16], ipkey[96];
	size_t n = 0;
	for (; email[n]; n++)
		lower[n] = (char)tolower((unsigned char)email[n]);
	lower[n] = '\0';
	snprintf(akey, sizeof(akey), "account:%s", lower);
	snprintf(ipkey, sizeof(ipkey), "address:%.80s", client_ip && client_ip[0] ? client_ip : "unknown");
	int64_t now = time_now_ms();
	auth_tick(a);

	/* 1. Waits this node decided already: no store read, no hash. */
	int64_t wait = blocked_for(a, akey, now), wait_ip = blocked_for(a, ipkey, now);
	if (wait_ip > wait)
		wait = wait_ip;
	/* 2. The counts every node shares. */
	if (wait == 0) {
		int64_t until = shared_until(a, akey, 1), until_ip = shared_until(a, ipkey, 0);
		if (until > now)
			block_set(a, akey, until);
		if (until_ip > now)
			block_set(a, ipkey, until_ip);
		if (until_ip > until)
			until = until_ip;
		wait = until > now ? until - now : 0;
	}
	if (wait > 0) {
		if (retry_after_ms)
			*retry_after_ms = wait;
		return PARLEY_EBUSY;
	}
	/* 3. A hash slot within auth.kdf_wait (a short queue: other accounts' logins wait a hash or two), or "busy". */
	if (!kdf_take(a, a->cfg.kdf_wait_ms)) {
		if (retry_after_ms)
			*retry_after_ms = KDF_BUSY_RETRY_MS;
		return PARLEY_EBUSY;
	}
	struct account_row acc = {0};
	int rv = store_account_find_email(a->st, lower, copy_account, &acc);
	if (rv != 0 && rv != PARLEY_ENOENT) {
		kdf_give(a);
		account_row_free(&acc);
		return rv == PARLEY_ENOTSUP ? rv : PARLEY_EIO;
	}
	/* An unknown account costs the same hash as a wrong password. */
	int ok = password_verify(acc.found && acc.hash ? acc.hash : a->dummy, password) && acc.found && acc.hash &&
	         !acc.disabled && (acc.role == AUTH_AGENT || acc.role == AUTH_ADMIN);
	kdf_give(a);
	if (!ok) {
		failed(a, akey, ipkey, acc.found ? acc.name : NULL, now);
		account_row_free(&acc);
		return PARLEY_EAUTH;
	}
	store_login_failure_clear(a->st, akey);
	block_set(a, akey, 0);
	rv = new_session(a, acc.name, now, token_out, expires_ms);
	account_row_free(&acc);
	return rv;
}
