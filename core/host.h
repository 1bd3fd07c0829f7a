/*
 * host.h: the host function table plugins call (parley.h's struct
 * parley_host), one for the process, and what the core shares with it.
 */
#ifndef PARLEY_CORE_HOST_H
#define PARLEY_CORE_HOST_H

#include <parley/parley.h>

struct cfg_node;

/* The table: static, valid for the life of the process. */
const struct parley_host *host_table(void);

/* A config map as the JSON object plugins see (scalars as strings); malloc'd, freed by the caller. */
char *host_config_json(const struct cfg_node *n);

#endif
