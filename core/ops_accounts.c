/*
 * ops_accounts.c: the op table's door to the accounts and tokens ops of
 * auth_ops.c (agent.*, token.*).  A control-socket caller acts as the
 * operator: an admin named "control".
 */
#include "auth_ops.h"
#include "gateway.h"
#include "ops.h"
#include "ops_handlers.h"

static const struct auth_principal control_operator = {.role = AUTH_ADMIN, .name = "control"};

static const struct auth_principal *caller(const struct op_call *c)
{
	return c->who ? c->who : &control_operator;
}

char *op_agent_add(struct op_call *c, const cJSON *req)
{
	return auth_op_agent_add(c->gw, caller(c), req);
}

char *op_agent_list(struct op_call *c, const cJSON *req)
{
	return auth_op_agent_list(c->gw, caller(c), req);
}

char *op_agent_remove(struct op_call *c, const cJSON *req)
{
	return auth_op_agent_remove(c->gw, caller(c), req);
}

char *op_agent_password(struct op_call *c, const cJSON *req)
{
	return auth_op_agent_password(c->gw, caller(c), req);
}

char *op_token_create(struct op_call *c, const cJSON *req)
{
	/* Scopes are ops of the table. */
	return auth_op_token_create_with(c->gw, caller(c), req, ops_known);
}

char *op_token_list(struct op_call *c, const cJSON *req)
{
	return auth_op_token_list(c->gw, caller(c), req);
}

char *op_token_revoke(struct op_call *c, const cJSON *req)
{
	return auth_op_token_revoke(c->gw, caller(c), req);
}
