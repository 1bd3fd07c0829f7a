/*
 * outbox.h: the durable outbox.  Outbound envelopes are committed with
 * status "queued"; this worker claims due ones from the store, sends them
 * through their channel plugin, and records sent / retry (exponential
 * backoff with jitter, or the provider's Retry-After) / failed (dead
 * letter, with the provider's error), publishing a status envelope.
 */
#ifndef PARLEY_CORE_OUTBOX_H
#define PARLEY_CORE_OUTBOX_H

#include <stdint.h>

struct gateway;
struct outbox;

int outbox_start(struct outbox **out, struct gateway *gw);
void outbox_wake(struct outbox *o);
void outbox_stop(struct outbox *o);

/* The delay before attempt number `attempts` + 1 (jitter included). */
int64_t outbox_backoff_ms(int attempts, int64_t base_ms, int64_t max_ms);

#endif
