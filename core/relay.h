/*
 * relay.h: the host's relay from the store to a durable bus plugin (the
 * `bus:` section, e.g. NATS JetStream), beside the nng PUB socket.
 *
 * Envelopes are relayed from the store, not from memory: the relay keeps a
 * cursor (the last published store seq) in the store's key-value state
 * (namespace "bus:<instance>", key "cursor"), reads committed envelopes with
 * the typed store op messages_since() after the cursor, publishes each with
 * its envelope id as the bus's deduplication id, and advances the cursor.
 * A publish that fails is retried from the cursor after a backoff (100 ms,
 * doubling to 5 s while no publish gets through), so nothing committed is
 * skipped while the bus is down;
 * the cursor is saved at most every 200 ms and at the end of each pass, so a
 * crash republishes at most that much, which the bus's deduplication drops.
 *
 * Events that are not stored envelopes (contact.created,
 * conversation.opened, an outbox status, ...: whatever bus_publish() sends)
 * go through a bounded in-memory queue with the same retry, each with a new
 * id: they survive a bus outage but not a gateway crash.
 *
 * Threads: one relay thread per instance calls the plugin's publish().
 * relay_notify() and relay_event() may be called from any thread and never
 * block on the bus; every function accepts r == NULL (no bus configured)
 * and then does nothing.
 */
#ifndef PARLEY_CORE_RELAY_H
#define PARLEY_CORE_RELAY_H

#include "util.h"

#include <cjson/cJSON.h>
#include <parley/parley.h>
#include <stddef.h>

struct gateway;
struct relay;

/* 1 when the store can replay committed envelopes (typed messages_since, ABI 1.2). */
int relay_store_supported(const struct parley_store_ops *ops);

/*
 * Start the relay of the started bus instance `bus` (kind bus), on the
 * gateway's started store.  0, or a negative error with *errmsg (malloc'd).
 * The relay borrows gw and bus until relay_free().
 */
int relay_start(struct relay **out, struct gateway *gw, parley_instance *bus, char **errmsg);

/* An envelope was committed (called once per stored envelope, after the commit). */
void relay_notify(struct relay *r);

/* Queue an event for the bus (topic and json are copied); dropped when the queue is full. */
void relay_event(struct relay *r, const char *topic, const char *json, size_t len);

/*
 * Stop the thread after one last bounded pass (when the bus is up), save
 * the cursor; after it no publish() is called.  Queued events are lost.
 */
void relay_stop(struct relay *r);
void relay_free(struct relay *r);

/* "up", "down" (the last publish failed: retrying) or "starting". */
const char *relay_state(struct relay *r);
/* Add the relay's state to a health reply: "durable_bus": {name, state, lag, ...}. */
void relay_health(struct relay *r, cJSON *reply);
/* Append the relay's gauges (lag, queued events) in the Prometheus text format. */
void relay_metrics(struct relay *r, struct strbuf *out);

#endif
