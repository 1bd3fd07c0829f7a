/*
 * auth_ops.c: agent.* and token.* control ops (see auth_ops.h).  Every
 * field is checked here, before anything is hashed or written, and every
 * refusal names the field and what it must be.
 */
#include "auth_ops.h"

#include "envelope.h"
#include "gateway.h"
#include "password.h"
#include "store.h"
#include "util.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN  64
#define EMAIL_MAX_LEN 254
#define TEAMS_MAX     64
#define SCOPES_MAX    128
#define PASSWORD_MIN  10
#define PASSWORD_MAX  1024

static char *reply_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *reply_error(const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 0);
	cJSON *e = cJSON_AddObjectToObject(r, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return s;
}

/* {"ok":true} with r's members (r is consumed). */
static char *reply_ok(cJSON *r)
{
	cJSON_AddItemToObject(r, "ok", cJSON_CreateTrue());
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return s ? s : reply_error("internal", "out of memory");
}

static char *store_failed(int rv)
{
	if (rv == PARLEY_ENOTSUP)
		return reply_error("not_supported",
		                   "this store does not keep accounts (it predates store ABI 1.3): use the sqlite or "
		                   "postgres store of this Parley");
	return reply_error("store_error", "the store failed: %s", parley_strerror(rv));
}

static struct store *st_of(struct gateway *gw)
{
	return gw->auth ? auth_store(gw->auth) : gw->st;
}

/* ------------------------------------------------------------ field checks */

/* Names of accounts, teams and tokens: 1..64 of letters, digits, '.', '_', '-', starting with a letter or digit. */
static int name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > NAME_MAX_LEN || !isalnum((unsigned char)s[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

/* local@domain: printable ASCII without spaces, one '@', a dotted domain of letters, digits and '-'. */
static int email_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	const char *at = s ? strchr(s, '@') : NULL;
	if (n < 3 || n > EMAIL_MAX_LEN || !at || at == s || at - s > 64 || strchr(at + 1, '@'))
		return 0;
	for (const char *p = s; p < at; p++)
		if (*p <= ' ' || *p > '~' || strchr("\"(),:;<>[\\]", *p))
			return 0;
	const char *d = at + 1;
	if (!*d || *d == '.' || *d == '-' || !strchr(d, '.') || d[strlen(d) - 1] == '.')
		return 0;
	for (const char *p = d; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && !(*p == '.' && p[1] != '.'))
			return 0;
	return 1;
}

static const char *str_field(const cJSON *req, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, key));
}

/*
 * A list of names (teams, scopes) as a JSON array text, malloc'd, in *out;
 * NULL and a reply on a bad field.  Absent is [].
 */
static char *names_field(const cJSON *req, const char *key, size_t max, int (*ok)(const char *), char **out,
                         const char *what)
{
	*out = NULL;
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(req, key);
	if (a && !cJSON_IsArray(a))
		return reply_error("invalid_request", "'%s' must be a list of strings", key);
	if (cJSON_GetArraySize(a) > (int)max)
		return reply_error("invalid_request", "'%s' has too many entries", key);
	cJSON *copy = cJSON_CreateArray();
	const cJSON *it;
	cJSON_ArrayForEach(it, a)
	{
		if (!cJSON_IsString(it) || !ok(it->valuestring)) {
			cJSON_Delete(copy);
			char m[256];
			snprintf(m, sizeof(m), "'%s': every entry must be %s", key, what);
			return reply_error("invalid_request", "%s", m);
		}
		cJSON_AddItemToArray(copy, cJSON_CreateString(it->valuestring));
	}
	*out = cJSON_PrintUnformatted(copy);
	cJSON_Delete(copy);
	return *out ? NULL : reply_error("internal", "out of memory");
}

static char *password_field(const cJSON *req, const char **out)
{
	const char *pw = str_field(req, "password");
	*out = pw;
	if (!pw)
		return reply_error("invalid_request", "'password' is required (a string of %s bytes)", "10 to 1024");
	size_t n = strlen(pw);
	if (n < PASSWORD_MIN || n > PASSWORD_MAX || !utf8_valid(pw, n))
		return reply_error("invalid_request", "'password' must be UTF-8 text of %s bytes", "10 to 1024");
	return NULL;
}

/* ------------------------------------------------------------ agents */

static cJSON *json_or(const char *text, const char *fallback)
{
	cJSON *j = text ? cJSON_Parse(text) : NULL;
	return j ? j : cJSON_Parse(fallback);
}

static cJSON *account_json(const struct parley_account_rec *a)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", a->name);
	cJSON_AddStringToObject(o, "email", a->email);
	cJSON_AddStringToObject(o, "role", a->role);
	cJSON_AddItemToObject(o, "teams", json_or(a->teams, "[]"));
	cJSON_AddBoolToObject(o, "disabled", a->disabled);
	cJSON_AddBoolToObject(o, "has_password", a->password_hash != NULL);
	if (a->created_at)
		cJSON_AddStringToObject(o, "created_at", a->created_at);
	if (a->updated_at)
		cJSON_AddStringToObject(o, "updated_at", a->updated_at);
	return o;
}

char *auth_op_agent_add(struct gateway *gw, const struct auth_principal *who, const cJSON *req)
{
	(void)who;
	const char *name = str_field(req, "name"), *email = str_field(req, "email"), *role = str_field(req, "role");
	const char *pw = NULL;
	char *r;
	if (!name_ok(name))
		return reply_error("invalid_request",
		                   "'name' must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or "
		                   "digit");
	if (!email_ok(email))
		return reply_error("invalid_request", "'email' must be an e-mail address such as ana@example.org");
	if (!role || (strcmp(role, "agent") != 0 && strcmp(role, "admin") != 0))
		return reply_error("invalid_request", "'role' must be \"agent\" or \"admin\"");
	if ((r = password_field(req, &pw)) != NULL)
		return r;
	char *teams = NULL;
	if ((r = names_field(req, "teams", TEAMS_MAX, name_ok, &teams, "a team name (letters, digits, . _ -)")))
		return r;
	if (!gw->auth || !auth_available(gw->auth)) {
		free(teams);
		return store_failed(PARLEY_ENOTSUP);
	}
	char lower[EMAIL_MAX_LEN + 1];
	size_t n = 0;
	for (; email[n]; n++)
		lower[n] = (char)tolower((unsigned char)email[n]);
	lower[n] = '\0';
	char hash[PASSWORD_HASH_MAX];
	int rv = auth_password_hash(gw->auth, pw, hash, sizeof(hash));
	if (rv != 0) {
		free(teams);
		return reply_error("internal", "cannot hash the password: %s", parley_strerror(rv));
	}
	char now[64];
	time_format_ms(time_now_ms(), now);
	struct parley_account_rec a = {name, lower, role, teams, hash, 0, now, now};
	rv = store_account_insert(st_of(gw), &a);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (rv == PARLEY_EEXIST) {
		free(teams);
		return reply_error("conflict", "an account named '%s' or with that e-mail exists already", name);
	}
	if (rv != 0) {
		free(teams);
		return store_failed(rv);
	}
	a.password_hash = NULL;
	cJSON *o = cJSON_CreateObject();
	cJSON *acc = account_json(&a);
	cJSON_DeleteItemFromObjectCaseSensitive(acc, "has_password");
	cJSON_AddItemToObject(o, "agent", acc);
	free(teams);
	return reply_ok(o);
}

static int list_account(void *arg, const void *row)
{
	cJSON_AddItemToArray(arg, account_json(row));
	return 0;
}

char *auth_op_agent_list(struct gateway *gw, const struct auth_principal *who, const cJSON *req)
{
	(void)who;
	(void)req;
	cJSON *o = cJSON_CreateObject();
	cJSON *list = cJSON_AddArrayToObject(o, "agents");
	int rv = store_accounts_list(st_of(gw), list_account, list);
	if (rv != 0) {
		cJSON_Delete(o);
		return store_failed(rv);
	}
	return reply_ok(o);
}

char *auth_op_agent_remove(struct gateway *gw, const struct auth_principal *who, const cJSON *req)
{
	(void)who;
	const char *name = str_field(req, "name");
	if (!name_ok(name))
		return reply_error("invalid_request", "'name' must be the name of an account (see agent.list)");
	int rv = store_account_delete(st_of(gw), name);
	if (rv == PARLEY_ENOENT)
		return reply_error("not_found", "no account is named '%s' (see agent.list)", name);
	if (rv != 0)
		return store_failed(rv);
	/* After the delete: a session checked in between finds no account and is refused anyway. */
	rv = gw->auth ? auth_revoke_account(gw->auth, name) : 0;
	if (rv != 0)
		return store_failed(rv);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", name);
	return reply_ok(o);
}

/* The account of name, copied into the caller's strings (what agent.password rewrites). */
struct account_copy {
	char *email, *role, *teams, *created_at;
	int disabled;
};

static int copy_account(void *arg, const void *row)
{
	struct account_copy *c = arg;
	const struct parley_account_rec *a = row;
	c->email = str_dup(a->email);
	c->role = str_dup(a->role);
	c->teams = str_dup(a->teams);
	c->created_at = str_dup(a->created_at);
	c->disabled = a->disabled;
	return 0;
}

char *auth_op_agent_password(struct gateway *gw, const struct auth_principal *who, const cJSON *req)
{
	(void)who;
	const char *name = str_field(req, "name"), *pw = NULL;
	char *r;
	if (!name_ok(name))
		return reply_error("invalid_request", "'name' must be the name of an account (see agent.list)");
	if ((r = password_field(req, &pw)) != NULL)
		return r;
	if (!gw->auth || !auth_available(gw->auth))
		return store_failed(PARLEY_ENOTSUP);
	struct account_copy c = {0};
	int rv = store_account_get(st_of(gw), name, copy_account, &c);
	char hash[PASSWORD_HASH_MAX], now[64];
	if (rv == 0)
		rv = auth_password_hash(gw->auth, pw, hash, sizeof(hash)) == 0 ? 0 : PARLEY_EINTERNAL;
	if (rv == 0) {
		time_format_ms(time_now_ms(), now);
		struct parley_account_rec a = {name, c.email, c.role, c.teams, hash, c.disabled, c.created_at, now};
		rv = store_account_update(st_of(gw), &a);
		OPENSSL_cleanse(hash, sizeof(hash));
	}
	free(c.email);
	free(c.role);
	free(c.teams);
	free(c.created_at);
	if (rv == 0)
		rv = auth_revoke_account(gw->auth, name);
	if (rv == PARLEY_ENOENT)
		return reply_error("not_found", "no account is named '%s' (see agent.list)", name);
	if (rv == PARLEY_EINTERNAL)
		return reply_error("internal", "cannot hash the password");
	if (rv != 0)
		return store_failed(rv);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", name);
	return reply_ok(o);
}

/* ------------------------------------------------------------ service tokens */

int auth_op_known_default(const char *op)
{
	static const char *const ops[] = {"health",
	                                  "stats",
	                                  "messages.list",
	                                  "message.get",
	                                  "message.send",
	                                  "conversations.list",
	                                  "conversation.get",
	                                  "conversation.assign",
	                                  "conversation.resolve",
	                                  "conversation.reopen",
	                                  "contact.get",
	                                  "contacts.merge",
	                                  "state.get",
	                                  "state.set",
	                                  NULL};
	for (size_t i = 0; ops[i]; i++)
		if (strcmp(op, ops[i]) == 0)
			return 1;
	for (size_t i = 0; auth_op_table[i].name; i++)
		if (strcmp(op, auth_op_table[i].name) == 0)
			return 1;
	return 0;
}

char *auth_op_token_create_with(struct gateway *gw, const struct auth_principal *who, const cJSON *req,
                                int (*op_known)(const char *op))
{
	const char *name = str_field(req, "name"), *role = str_field(req, "role");
	if (!name_ok(name))
		return reply_error("invalid_request",
		                   "'name' must be 1 to 64 letters, digits, '.', '_' or '-' saying what the token is "
		                   "for");
	if (role && strcmp(role, "service") != 0)
		return reply_error("invalid_request",
		                   "'role' must be \"service\" (agents and admins log in with a password)");
	char *scopes = NULL, *r;
	r = names_field(req, "scopes", SCOPES_MAX, op_known ? op_known : auth_op_known_default, &scopes,
	                "the name of a control op, e.g. messages.list");
	if (r)
		return r;
	/* A service may hand on only what it has: named scopes, each one its own. */
	if (who && who->role == AUTH_SERVICE) {
		cJSON *list = cJSON_Parse(scopes);
		int ok = cJSON_GetArraySize(list) > 0;
		const cJSON *it;
		cJSON_ArrayForEach(it, list)
		{
			if (!auth_may(who, it->valuestring, AUTH_ADMIN))
				ok = 0;
		}
		cJSON_Delete(list);
		if (!ok) {
			free(scopes);
			return reply_error("forbidden",
			                   "a service token can create only tokens whose 'scopes' are among its own");
		}
	}
	if (!gw->auth || !auth_available(gw->auth)) {
		free(scopes);
		return store_failed(PARLEY_ENOTSUP);
	}
	char token[AUTH_TOKEN_MAX], hash[65], id[32], ulid[27], now[64];
	int rv = auth_token_new(AUTH_SERVICE_PREFIX, token, hash);
	if (rv != 0) {
		free(scopes);
		return reply_error("internal", "no random bytes for a token");
	}
	ulid_new(ulid);
	snprintf(id, sizeof(id), "tok_%s", ulid);
	time_format_ms(time_now_ms(), now);
	struct parley_token_rec t = {id, name, "service", scopes, hash, now, NULL, NULL};
	rv = store_token_insert(st_of(gw), &t);
	if (rv != 0) {
		OPENSSL_cleanse(token, sizeof(token));
		free(scopes);
		return store_failed(rv);
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "role", "service");
	cJSON_AddItemToObject(o, "scopes", json_or(scopes, "[]"));
	cJSON_AddStringToObject(o, "created_at", now);
	cJSON_AddStringToObject(o, "token", token);
	OPENSSL_cleanse(token, sizeof(token));
	free(scopes);
	return reply_ok(o);
}

char *auth_op_token_create(struct gateway *gw, const struct auth_principal *who, const cJSON *req)
{
	return auth_op_token_create_with(gw, who, req, auth_op_known_default);
}

static int list_token(void *arg, const void *row)
{
	const struct parley_token_rec *t = row;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", t->id);
	cJSON_AddStringToObject(o, "name", t->name);
	cJSON_AddStringToObject(o, "role", t->role);
	cJSON_AddItemToObject(o, "scopes", json_or(t->scopes, "[]"));
	cJSON_AddStringToObject(o, "created_at", t->created_at);
	cJSON_AddItemToObject(o, "revoked_at", t->revoked_at ? cJSON_CreateString(t->revoked_at) : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "last_used_at",
	                      t->last_used_at ? cJSON_CreateString(t->last_used_at) : cJSON_CreateNull());
	cJSON_AddItemToArray(arg, o);
	return 0;
}

char *auth_op_token_list(struct gateway *gw, const struct auth_principal *who, const cJSON *req)
{
	(void)who;
	(void)req;
	cJSON *o = cJSON_CreateObject();
	cJSON *list = cJSON_AddArrayToObject(o, "tokens");
	int rv = store_tokens_list(st_of(gw), list_token, list);
	if (rv != 0) {
		cJSON_Delete(o);
		return store_failed(rv);
	}
	return reply_ok(o);
}

char *auth_op_token_revoke(struct gateway *gw, const struct auth_principal *who, const cJSON *req)
{
	(void)who;
	const char *id = str_field(req, "id");
	if (!id || strncmp(id, "tok_", 4) != 0 || strlen(id) > 31)
		return reply_error("invalid_request", "'id' must be a token id such as tok_01J... (see token.list)");
	char now[64];
	time_format_ms(time_now_ms(), now);
	int rv = store_token_revoke(st_of(gw), id, now);
	if (rv == PARLEY_ENOENT)
		return reply_error("not_found", "no token has the id '%s' (see token.list)", id);
	if (rv != 0)
		return store_failed(rv);
	if (gw->auth)
		auth_forget_tokens(gw->auth);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", id);
	return reply_ok(o);
}

/* ------------------------------------------------------------ the table */

const struct auth_op auth_op_table[] = {
        {"agent.add", auth_op_agent_add, AUTH_ADMIN},       {"agent.list", auth_op_agent_list, AUTH_ADMIN},
        {"agent.remove", auth_op_agent_remove, AUTH_ADMIN}, {"agent.password", auth_op_agent_password, AUTH_ADMIN},
        {"token.create", auth_op_token_create, AUTH_ADMIN}, {"token.list", auth_op_token_list, AUTH_ADMIN},
        {"token.revoke", auth_op_token_revoke, AUTH_ADMIN}, {NULL, NULL, AUTH_NONE},
};

char *auth_ops_handle(struct gateway *gw, const struct auth_principal *who, const char *op, const cJSON *req)
{
	for (size_t i = 0; op && auth_op_table[i].name; i++) {
		if (strcmp(op, auth_op_table[i].name) != 0)
			continue;
		if (!auth_may(who, op, auth_op_table[i].role))
			return reply_error("forbidden", "'%s' needs an admin", op);
		return auth_op_table[i].handler(gw, who, req);
	}
	return NULL;
}
