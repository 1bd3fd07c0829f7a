/*
 * topology.h: the channels and pipelines a gateway serves, as one object
 * that a reload replaces whole (core/reload.c).
 *
 * Whoever uses a channel or a step outside the main thread takes a
 * reference to the current topology first and drops it when done: a
 * webhook while its plugin reads it, the outbox around one send, the
 * pipeline around one batch, an op while it looks.  A reload swaps in the
 * new topology and stops the instances only the old one had once nothing
 * holds the old one and their submissions are committed, so no instance
 * is stopped under its user, and nothing waits for a reload but the reload.
 */
#ifndef PARLEY_CORE_TOPOLOGY_H
#define PARLEY_CORE_TOPOLOGY_H

#include <parley/parley.h>
#include <stdatomic.h>
#include <stddef.h>

struct gateway;
struct gw_config;
struct cfg_errors;
struct cfg_node;
struct plugin_registry;
struct plugin_entry;

struct gw_pipeline {
	char *name;
	char **from; /* borrowed from the config; n_from 0 = every channel */
	size_t n_from;
	struct parley_instance **steps;
	size_t n_steps;
	const struct cfg_node *at; /* the pipeline's entry (NULL: the default pipeline), to tell a change */
	int kept;                  /* taken over from the running topology by a reload */
};

struct topology {
	struct parley_instance **channels;
	size_t n_channels;
	struct parley_instance **steps; /* every step instance, for the lifecycle */
	size_t n_steps;
	struct gw_pipeline *pipes;
	size_t n_pipes;
	const struct cfg_node *canned; /* canned_responses: name -> template (borrowed from the config) */
	atomic_int refs;
};

/*
 * The topology cfg describes, checked against the gateway's plugins: every
 * problem is added to errs at its line.  With `from` (the running
 * topology), a channel whose entry is unchanged, and a pipeline whose entry
 * is unchanged, is taken over from it (the same instance), and the others
 * are made new, not started.  NULL when errs got an error or on no memory.
 */
struct topology *topology_build(struct gateway *gw, const struct gw_config *cfg, const struct topology *from,
                                struct cfg_errors *errs);

/*
 * The plugin of kind1 (or kind2, when not 0) named name, or NULL with an
 * error at `at` naming what was asked for ("channel type") and the
 * closest known name.
 */
const struct plugin_entry *plugin_needed(const struct plugin_registry *reg, const char *file, int kind1, int kind2,
                                         const char *name, const struct cfg_node *at, const char *what,
                                         struct cfg_errors *errs);

/*
 * Create and start t's instances that `running` (NULL: none) does not
 * have, steps first: 0, or -1 with the reason logged (topology_free(t,
 * running) then stops and frees those started).
 */
int topology_up(struct gateway *gw, struct topology *t, const struct topology *running);

/* Is inst one of t's channels or steps? */
int topology_has(const struct topology *t, const parley_instance *inst);

/* Free t and the instances in it that `keep` does not have (NULL: all of them; they are stopped first). */
void topology_free(struct topology *t, const struct topology *keep);

/* A reference to the gateway's current topology (never NULL while it runs); give it back with topology_put. */
struct topology *topology_get(struct gateway *gw);
void topology_put(struct topology *t);

/* t's channel of that name, or NULL. */
struct parley_instance *topology_channel(const struct topology *t, const char *name);
/* The pipeline for an inbound envelope of channel, or NULL for none. */
const struct gw_pipeline *topology_pipeline_for(const struct topology *t, const char *channel);

#endif
