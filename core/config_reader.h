/*
 * config_reader.h: what the config's section readers share (config.c,
 * config_values.c): one value of a section read and type-checked, each
 * error added at its FILE:LINE:COL.  Internal to the core.
 */
#ifndef PARLEY_CORE_CONFIG_READER_H
#define PARLEY_CORE_CONFIG_READER_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

/* Helpers that read one scalar of a section, reporting type errors. */
struct reader {
	const char *file;
	struct cfg_errors *errs;
};

const struct cfg_node *want_scalar(struct reader *r, const struct cfg_node *n, const char *what);
void read_str(struct reader *r, const struct cfg_node *map, const char *key, char **dst);
int listen_is_remote(const char *url);
void read_size(struct reader *r, const struct cfg_node *map, const char *key, uint64_t *dst);
void read_duration(struct reader *r, const struct cfg_node *map, const char *key, int64_t *dst);
void read_bool(struct reader *r, const struct cfg_node *map, const char *key, int *dst);
void read_int(struct reader *r, const struct cfg_node *map, const char *key, int64_t min, int64_t max, int64_t *dst);
const struct cfg_node *want_map(struct reader *r, const struct cfg_node *n, const char *what);
int read_str_list(struct reader *r, const struct cfg_node *n, const char *what, char ***out, size_t *nout);

#endif
