/*
 * auth_ops.h: the control ops that manage accounts and service tokens.
 *
 * Each handler answers one request: req is the request object (borrowed;
 * its "op" is ignored), who the principal already allowed to run the op by
 * the op table (auth_may with the role of auth_op_table).  The reply is
 * malloc'd JSON text, {"ok":true,...} or {"ok":false,"error":{"code",
 * "message"}} with code invalid_request (the message names the field),
 * not_found, conflict, forbidden, not_supported (a store without accounts)
 * or store_error.  No reply ever holds a password or a password hash; a
 * service token's text is in token.create's reply only, once.
 *
 * Threads: any thread, at once; each reads and writes the store directly.
 */
#ifndef PARLEY_CORE_AUTH_OPS_H
#define PARLEY_CORE_AUTH_OPS_H

#include "auth.h"

#include <cjson/cJSON.h>

struct gateway;

/* {name, email, role: agent|admin, teams: [..], password} -> {agent: {name, email, role, teams, created_at}} */
char *auth_op_agent_add(struct gateway *gw, const struct auth_principal *who, const cJSON *req);
/* {} -> {agents: [{name, email, role, teams, disabled, created_at, updated_at}]} */
char *auth_op_agent_list(struct gateway *gw, const struct auth_principal *who, const cJSON *req);
/* {name} -> {name, sessions_revoked}; the account's sessions are revoked */
char *auth_op_agent_remove(struct gateway *gw, const struct auth_principal *who, const cJSON *req);
/* {name, password} -> {name}; the account's sessions are revoked */
char *auth_op_agent_password(struct gateway *gw, const struct auth_principal *who, const cJSON *req);
/*
 * {name, role: "service" (the default), scopes: [op, ..]} -> {id, name,
 * role, scopes, created_at, token}.  Scopes must be op names op_known
 * knows; a service creating a token may give only scopes it has itself.
 */
char *auth_op_token_create_with(struct gateway *gw, const struct auth_principal *who, const cJSON *req,
                                int (*op_known)(const char *op));
/* auth_op_token_create_with with auth_op_known_default. */
char *auth_op_token_create(struct gateway *gw, const struct auth_principal *who, const cJSON *req);
/* {} -> {tokens: [{id, name, role, scopes, created_at, revoked_at, last_used_at}]} */
char *auth_op_token_list(struct gateway *gw, const struct auth_principal *who, const cJSON *req);
/* {id} -> {id, revoked_at}; refused everywhere within AUTH_CACHE_MS */
char *auth_op_token_revoke(struct gateway *gw, const struct auth_principal *who, const cJSON *req);

/* The control ops of v1 and these: the scopes token.create accepts until the op table is wired in. */
int auth_op_known_default(const char *op);

/* The ops above with the role each needs (all AUTH_ADMIN), for the op table; NULL-name ended. */
struct auth_op {
	const char *name;
	char *(*handler)(struct gateway *gw, const struct auth_principal *who, const cJSON *req);
	enum auth_role role;
};
extern const struct auth_op auth_op_table[];

/* The handler's reply for op when it is one of auth_op_table, else NULL. */
char *auth_ops_handle(struct gateway *gw, const struct auth_principal *who, const char *op, const cJSON *req);

#endif
