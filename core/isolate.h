/*
 * isolate.h: channels and steps configured `isolate: true` run their
 * plugin in a supervised child process (`parley plugin-host`), so that a
 * plugin that crashes cannot take the gateway down.
 *
 * The instance stays a parley_instance of the topology: isolate_wrap()
 * points it at a proxy descriptor whose lifecycle, channel_send, process,
 * after_commit and HTTP routes speak core/isolate_rpc.h to the child,
 * which loads the real plugin and runs it behind a host table of its own
 * (core/isolate_child.c; WebSockets: core/isolate_ws.c and
 * core/isolate_child_ws.c).  A supervisor thread per instance restarts a
 * child that died, with exponential backoff and a circuit breaker; while
 * it is down its webhooks are answered 503 at once, its sends are retried
 * later and its pipeline's envelopes are not committed, so nothing is
 * acknowledged that is not stored.
 */
#ifndef PARLEY_CORE_ISOLATE_H
#define PARLEY_CORE_ISOLATE_H

#include <cjson/cJSON.h>
#include <parley/parley.h>

struct cfg_errors;
struct cfg_node;
struct topology;

/*
 * Make inst (new, not created) run isolated: 0, or -1 with an error at
 * `at` of file when its plugin cannot run so (a router that takes queue
 * offers).  On the main thread.
 */
int isolate_wrap(parley_instance *inst, const char *file, const struct cfg_node *at, struct cfg_errors *errs);

/* 1 when inst runs isolated. */
int isolate_is(const parley_instance *inst);

/* Add "isolated": [{instance, pid, state, restarts, last}] for t's isolated instances to obj (op health). */
void isolate_health(const struct topology *t, cJSON *obj);

/* `parley plugin-host PLUGIN NAME URL`: the child's side (isolate_child.c); the exit code. */
int isolate_child_main(int argc, char **argv);

#endif
