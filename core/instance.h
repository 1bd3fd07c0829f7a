/*
 * instance.h: the life of one configured instance (see instance.c).  All
 * of it runs on the main thread.
 */
#ifndef PARLEY_CORE_INSTANCE_H
#define PARLEY_CORE_INSTANCE_H

#include <parley/parley.h>

struct gateway;
struct plugin_entry;
struct plugin_registry;
struct cfg_node;
struct cfg_errors;

/*
 * The plugin's own check of a config (its check_config, when it has one),
 * reported as errors at the config's line and column of `file`.
 */
void instance_check_config(const char *file, const struct plugin_entry *e, const struct cfg_node *config,
                           const struct cfg_node *at, const char *what, struct cfg_errors *errs);

/* A new instance named `name` of plugin e; config and at are borrowed from the config tree. */
parley_instance *instance_new(struct gateway *gw, const struct plugin_entry *e, const char *name,
                              const struct cfg_node *config, const struct cfg_node *at);
/* Initialize its plugin (once), create and start it: 0, or -1 with the reason logged. */
int instance_up(const struct plugin_registry *reg, parley_instance *inst);
/* Stop it (its threads and timers end); NULL is ignored. */
void instance_down(parley_instance *inst);
/* Stop, destroy and free it; NULL is ignored. */
void instance_free(parley_instance *inst);

#endif
