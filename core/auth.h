/*
 * auth.h: who is asking.  Accounts (agents and admins who log in with an
 * e-mail and a password), service tokens (other systems, sent as
 * Authorization: Bearer), login sessions (the cookie), the failed-login
 * limits, and the two questions every op asks: may this principal run this
 * op, and may it see this team's conversations.  HTTP lives elsewhere: this
 * module takes and gives token text.
 *
 * Secrets.  A password is hashed with argon2id (password.h) and never kept
 * or logged.  A token is "pst_" (service) or "pss_" (session) and 43
 * base64url characters of 32 random bytes; the prefixes let secret scanners
 * find leaked ones.  Only the SHA-256 of a token is stored, and only this
 * module sees the text: the caller shows a new token once and forgets it.
 *
 * Failed logins.  Counted per account (by e-mail, known or not, so an
 * unknown address behaves as a wrong password) and per client address, in
 * the store, so every node sharing it sees the same counts.  After
 * auth.delay_after failures of one account each try waits
 * auth.delay_base, doubled per further failure, up to auth.lockout_for;
 * after auth.lockout_after in a row the account is locked for
 * auth.lockout_for after the last one; an address with
 * auth.address_lockout_after failures is locked as long.  Failures older
 * than auth.lockout_for are forgotten; a success forgets the account's.
 * The check happens before the password hash is computed, and a refused
 * try is neither hashed nor counted (it costs one store read, or none when
 * this node already knows the wait), so a flood against one account never
 * slows logins of others or the webhook path.  At most auth.kdf_concurrency
 * hashes run at once; a login beyond that is answered "busy" at once.
 *
 * Caching.  Sessions and tokens are checked against the store and the
 * result kept for AUTH_CACHE_MS (2 s) on this node: a revocation (logout,
 * token.revoke, a removed account or a changed password) takes effect
 * within 2 s on every node, at once on the node that made it.
 *
 * Threads: every function may be called from any thread at once.
 */
#ifndef PARLEY_CORE_AUTH_H
#define PARLEY_CORE_AUTH_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

struct store;
struct auth;

/* How long a validated session or token is believed without asking the store. */
#define AUTH_CACHE_MS 2000
/* A token's text with its NUL: a 4-character prefix, 43 base64url characters. */
#define AUTH_TOKEN_MAX      48
#define AUTH_SERVICE_PREFIX "pst_"
#define AUTH_SESSION_PREFIX "pss_"

enum auth_role { AUTH_NONE = 0, AUTH_AGENT = 1, AUTH_ADMIN = 2, AUTH_SERVICE = 3 };

/*
 * Who is asking.  teams and scopes are malloc'd and owned by the
 * principal: free with auth_principal_clear().
 */
struct auth_principal {
	enum auth_role role;
	char name[128]; /* the account's name, or the service token's name */
	char id[32];    /* a service token's id; "" for accounts */
	char **teams;   /* agents: the teams whose conversations they see */
	size_t n_teams;
	char **scopes; /* services: the ops allowed; n_scopes 0 = every op but the admin ones (see auth_may) */
	size_t n_scopes;
};

/* Free what p holds and zero it (role AUTH_NONE).  p may be NULL. */
void auth_principal_clear(struct auth_principal *p);
/* A deep copy of src into dst (dst is overwritten, not cleared first): 0 or PARLEY_ENOMEM. */
int auth_principal_copy(struct auth_principal *dst, const struct auth_principal *src);

/* "agent", "admin", "service" (and "none"); auth_role_parse gives AUTH_NONE for anything else. */
const char *auth_role_name(enum auth_role r);
enum auth_role auth_role_parse(const char *s);

/*
 * Open the module over st (borrowed: it outlives the auth) with cfg
 * (copied).  Computes one dummy hash (tens of ms).  Works with any store;
 * with one that keeps no accounts every login, session and token is
 * refused and the admin functions return PARLEY_ENOTSUP.  0, or
 * PARLEY_ENOMEM / PARLEY_EINVAL (bad KDF parameters).
 */
int auth_open(struct auth **out, struct store *st, const struct auth_config *cfg);
void auth_close(struct auth *a);
/* 1 when the store keeps accounts (store.h ABI 1.3). */
int auth_available(const struct auth *a);

/*
 * Log in.  email is compared lowercased; client_ip is the peer address
 * (any text; NULL is "unknown").  On 0 token_out holds the new session
 * token (the cookie's value) and *expires_ms its expiry (ms since the
 * epoch).  PARLEY_EAUTH: wrong e-mail or password, or a disabled account
 * (one answer for all, in about the same time).  PARLEY_EBUSY: refused
 * without checking, *retry_after_ms (may be NULL) says when to try again:
 * the account or address is waiting or locked, too many hashes run, or
 * the failure counts cannot be read (fail closed: 1 s).
 * PARLEY_ENOTSUP: the store keeps no accounts.  PARLEY_EIO: the store failed.
 */
int auth_login(struct auth *a, const char *email, const char *password, const char *client_ip,
               char token_out[AUTH_TOKEN_MAX], int64_t *expires_ms, int64_t *retry_after_ms);

/*
 * The principal of a session token (the cookie): 0 and *out filled (clear
 * it with auth_principal_clear), or PARLEY_EAUTH (unknown, revoked,
 * expired, its account removed or disabled), PARLEY_EIO.
 */
int auth_session(struct auth *a, const char *token, struct auth_principal *out);
/* The principal of a service token (Authorization: Bearer); as auth_session. */
int auth_bearer(struct auth *a, const char *token, struct auth_principal *out);
/* Revoke the session of token, on every node: 0, or PARLEY_EAUTH when it is no session. */
int auth_logout(struct auth *a, const char *token);

/*
 * May p run op, an op that needs role `needed`?  AUTH_NONE: anyone.
 * AUTH_AGENT: agents, admins, and services whose scopes allow op (no
 * scopes: every op).  AUTH_ADMIN: admins, and services that name op in
 * their scopes (an unscoped token does not manage accounts or tokens).
 * AUTH_SERVICE: admins and services (scopes as for AUTH_AGENT).  1 or 0.
 */
int auth_may(const struct auth_principal *p, const char *op, enum auth_role needed);

/*
 * Does p see the conversations of team?  Admins and services: all.
 * Agents: their teams', and those of no team (team NULL or "": the shared
 * queue, so a gateway that routes to no teams shows agents everything).
 */
int auth_sees_team(const struct auth_principal *p, const char *team);

/* --------------------------------------------- for the admin ops (auth_ops.c) */

/*
 * Hash a new password (waits for a free hash slot, unlike auth_login):
 * 0 and out filled, or PARLEY_EINVAL, PARLEY_ENOMEM.
 */
int auth_password_hash(struct auth *a, const char *password, char *out, size_t size);
/*
 * A new token with prefix (AUTH_SERVICE_PREFIX or AUTH_SESSION_PREFIX) in
 * token_out, and the hex SHA-256 the store keeps in hash_out: 0 or
 * PARLEY_EINTERNAL (no randomness).
 */
int auth_token_new(const char *prefix, char token_out[AUTH_TOKEN_MAX], char hash_out[65]);
/* Revoke every session of account, and forget this node's cached ones (removal, new password): 0 or the store's error.
 */
int auth_revoke_account(struct auth *a, const char *account);
/* Forget this node's cached validation of every service token (after token.revoke). */
void auth_forget_tokens(struct auth *a);
/* The store behind it (the admin ops read and write accounts through store.h). */
struct store *auth_store(struct auth *a);

/* Delete expired sessions and failure counts older than auth.lockout_for, now. */
void auth_sweep(struct auth *a);
/* auth_sweep when the last one is 10 minutes old, else nothing (core/housekeeping.c calls it every few seconds). */
void auth_tick(struct auth *a);

#endif
