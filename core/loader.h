/*
 * loader.h: plugin discovery and loading.  Every *.so in the plugin
 * directories is opened with RTLD_NOW | RTLD_LOCAL and its descriptor
 * checked; refused objects are kept with their reason for `parley plugins`.
 */
#ifndef PARLEY_CORE_LOADER_H
#define PARLEY_CORE_LOADER_H

#include <parley/parley.h>
#include <stddef.h>
#include <stdio.h>

struct cfg_node;
struct cfg_errors;

struct plugin_entry {
	char *path;
	void *handle;
	const struct parley_plugin *desc;
	void *plugin_data; /* from desc->init */
	int initialized;
	/* Loaded with a caveat (built for a newer ABI minor: what it will not get), or NULL; malloc'd. */
	char *notice;
};

struct plugin_refusal {
	char *path;
	char *reason;
};

struct plugin_registry {
	struct plugin_entry *items;
	size_t n;
	struct plugin_refusal *refused;
	size_t n_refused;
};

/* The built-in directories: next to the binary, and under the install prefix. */
size_t loader_default_dirs(char ***dirs);
/* Open every *.so in dirs (in order); later duplicates are refused. */
void loader_scan(struct plugin_registry *reg, char *const *dirs, size_t ndirs);
/* Open one object (used by loader_scan and the tests). 0 or -1 (refused). */
int loader_open(struct plugin_registry *reg, const char *path);
const struct plugin_entry *loader_find(const struct plugin_registry *reg, int kind, const char *name);
/* Run desc->init once; 0 or -1 with *errmsg malloc'd. */
int loader_init_plugin(const struct plugin_registry *reg, const struct plugin_entry *e, const struct parley_host *host,
                       char **errmsg);
/* Call fini for initialized plugins and close every object. */
void loader_free(struct plugin_registry *reg);

/*
 * Print what `parley plugins NAME` shows: the plugin's kind, version, ABI,
 * path and description, then each config key with its type, default, flags
 * and help.
 */
void loader_describe(const struct plugin_entry *e, FILE *out);

const char *loader_kind_name(int kind);
int loader_kind_from_name(const char *name);

/*
 * Check an instance config (a map node, or NULL) against the plugin's config
 * map: unknown keys (with "did you mean"), missing required keys and values
 * of the wrong type are reported at their line and column.
 */
void loader_check_config(const struct plugin_entry *e, const struct cfg_node *config, const struct cfg_node *at,
                         const char *file, const char *what, struct cfg_errors *errs);

#endif
