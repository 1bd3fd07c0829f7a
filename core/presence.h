/*
 * presence.h: who is looking at a conversation, and who is typing in it,
 * for the inbox's collision warnings.  Held in this node's memory only:
 * agents heartbeat every few seconds (conversation.presence), and one not
 * heard from for PRESENCE_TTL_MS is gone.  Behind a load balancer two agents
 * on different nodes do not see each other; the soft lock on replies
 * (message.send's confirm) holds on every node, since it reads the store.
 *
 * Threads: every function may be called from any thread at once.
 */
#ifndef PARLEY_CORE_PRESENCE_H
#define PARLEY_CORE_PRESENCE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#define PRESENCE_TTL_MS 12000

struct presence;

/* 0 or PARLEY_ENOMEM. */
int presence_open(struct presence **out);
void presence_free(struct presence *p);
/*
 * Record that agent views conversation_id (typing or not) at now_ms, and
 * return the others seen there within PRESENCE_TTL_MS as a new array of
 * {agent, typing, seen_at} (the caller owns it), or NULL on ENOMEM.
 * agent NULL: record nothing, only list.
 */
cJSON *presence_beat(struct presence *p, const char *conversation_id, const char *agent, int typing, int64_t now_ms);

#endif
