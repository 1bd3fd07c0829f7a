/*
 * ops_handlers.h: the handlers of the op table (ops.c), one file per
 * subject: ops_gateway.c, ops_messages.c, ops_store.c, ops_accounts.c.  Internal to the core.
 */
#ifndef PARLEY_CORE_OPS_HANDLERS_H
#define PARLEY_CORE_OPS_HANDLERS_H

#include "ops.h"

char *op_health(struct op_call *call, const cJSON *req);
char *op_stats(struct op_call *call, const cJSON *req);
char *op_state_get(struct op_call *call, const cJSON *req);
char *op_state_set(struct op_call *call, const cJSON *req);
char *op_canned_list(struct op_call *call, const cJSON *req);
/* config.reload: apply the config file again (reload.h) and answer the result. */
char *op_config_reload(struct op_call *call, const cJSON *req);
char *op_queue_get(struct op_call *call, const cJSON *req);
char *op_reports_kpis(struct op_call *call, const cJSON *req); /* reports.c */
/* Bots and who owns a conversation (ops_bots.c). */
char *op_conversation_claim(struct op_call *call, const cJSON *req);
char *op_conversation_handoff(struct op_call *call, const cJSON *req);
char *op_conversation_bot(struct op_call *call, const cJSON *req);
char *op_conversation_position(struct op_call *call, const cJSON *req);
char *op_presence(struct op_call *call, const cJSON *req);
char *op_message_send(struct op_call *call, const cJSON *req);
/* message.retry / message.drop {id}: a dead letter sent again, or given up (ops_messages.c). */
char *op_message_retry(struct op_call *call, const cJSON *req);
char *op_message_drop(struct op_call *call, const cJSON *req);
/* An op of the conversation core or a read the store answers (inbox_op), by the def's name. */
char *op_inbox(struct op_call *call, const cJSON *req);

/* Accounts and service tokens (ops_accounts.c over auth_ops.c). */
char *op_agent_add(struct op_call *call, const cJSON *req);
char *op_agent_list(struct op_call *call, const cJSON *req);
char *op_agent_remove(struct op_call *call, const cJSON *req);
char *op_agent_password(struct op_call *call, const cJSON *req);
char *op_token_create(struct op_call *call, const cJSON *req);
char *op_token_list(struct op_call *call, const cJSON *req);
char *op_token_revoke(struct op_call *call, const cJSON *req);

/* sla.list and ratings.list (ops_promises.c over sla.c and survey.c). */
char *op_sla_list(struct op_call *call, const cJSON *req);
char *op_ratings_list(struct op_call *call, const cJSON *req);
char *op_conversations_list(struct op_call *call, const cJSON *req);

/* The caller's name for records ("by", "author"): the agent or token name, NULL for the control socket. */
const char *ops_caller_name(const struct op_call *call);

#endif
