/*
 * pipeline.h: the pipeline worker.  One thread takes ingest messages off
 * the bus, runs each inbound envelope through its pipeline's steps, commits
 * the whole batch in one store transaction (group commit), completes the
 * submitters' tickets, then publishes what was stored.
 */
#ifndef PARLEY_CORE_PIPELINE_H
#define PARLEY_CORE_PIPELINE_H

struct gateway;
struct pipeline;

/*
 * Start the stages.  outbound(arg) is called on the post thread after a
 * commit that stored outbound envelopes (new work for the outbox).
 */
int pipeline_start(struct pipeline **out, struct gateway *gw, void (*outbound)(void *arg), void *arg);
/* Join the worker; call after bus_close() ended its receive. */
void pipeline_join(struct pipeline *p);

#endif
