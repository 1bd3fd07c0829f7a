/*
 * bots.h: who owns a conversation, a bot, the queue or an agent, as the
 * server enforces it (ops_bots.c); the principal a bot's host calls act
 * as (parley_host.op).  Internal to the core.
 */
#ifndef PARLEY_CORE_BOTS_H
#define PARLEY_CORE_BOTS_H

#include <cjson/cJSON.h>

struct gateway;
struct auth_principal;

/* The principal of the bot instance `instance`: a service named "bot:<instance>" with the bot ops as scopes. */
void bots_principal(struct auth_principal *p, const char *instance);
/* 1 when who is a bot's principal. */
int bots_is_bot(const struct auth_principal *who);
/* 1 when a bot owns the conversation now. */
int bots_owns(struct gateway *gw, const char *conversation_id);
/* NULL when who may run op on req as far as ownership goes, else the refusal (a bot outside its conversations). */
char *bots_check(struct gateway *gw, const struct auth_principal *who, const char *op, const cJSON *req);
/* After op succeeded for who: an agent's reply or assignment ends a bot's ownership. */
void bots_after(struct gateway *gw, const struct auth_principal *who, const char *op, const cJSON *req);

#endif
