/*
 * queue.h: the team queues.  A conversation with a team, no assignee and
 * status open or pending waits in its team's queue (the store keeps since
 * when: queued_at), ordered by priority, then by waiting time.  The queue
 * offers waiting conversations, first in line first, to the routers that
 * can take offers (parley.h `offer`: the assign router), and assigns each
 * to the agent a router names, as soon as an agent of the team has room:
 * when a conversation is resolved, reassigned, snoozed or reopened, an
 * agent becomes available or signs in, and every 2 s (what another node
 * changed).  Nodes sharing a store take turns: one holds the lease "queue".
 * The order lives in the store, so a restart or kill -9 keeps it.
 */
#ifndef PARLEY_CORE_QUEUE_H
#define PARLEY_CORE_QUEUE_H

#include <cjson/cJSON.h>

struct gateway;
struct queue;

int queue_start(struct queue **out, struct gateway *gw);
void queue_stop(struct queue *q);
/* Something that may let a waiting conversation be assigned happened: offer again soon.  q may be NULL. */
void queue_kick(struct queue *q);

/*
 * queue.get {team?}: every team's waiting conversations (or one team's)
 * with their place in line, as {"ok":true,"queues":[{team,
 * median_handling_s?, agents?, waiting: [{conversation_id, position,
 * priority, queued_at, waited_s, estimated_wait_s?}]}]}; malloc'd.  The
 * estimate comes from the team's last 50 resolutions (the median time from
 * assignment to resolution, and how many agents resolved them); with fewer
 * than 3 there is none rather than a made-up one.
 */
char *queue_describe(struct gateway *gw, const cJSON *req);

#endif
