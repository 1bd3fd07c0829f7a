/*
 * config.h: the gateway configuration.  cfg_load() parses YAML with libyaml
 * into a tree of nodes that remember their line and column, substitutes
 * ${ENV} and ${ENV:-default}, and checks the core's own sections.  Every
 * error becomes one "FILE:LINE:COL: message" line in a struct cfg_errors.
 */
#ifndef PARLEY_CORE_CONFIG_H
#define PARLEY_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum cfg_node_type { CFG_SCALAR, CFG_MAP, CFG_SEQ };

struct cfg_node {
	enum cfg_node_type type;
	char *value;   /* scalars only, after ${ENV} substitution */
	int line, col; /* 1-based */
	/* Maps hold key/value pairs as items[2i], items[2i+1]; sequences items[i]. */
	struct cfg_node **items;
	size_t n;
};

struct cfg_errors {
	char **msgs;
	size_t n;
};

struct cfg_step {
	char *type; /* the step or router plugin name */
	struct cfg_node *config;
	const struct cfg_node *at;
	int isolate; /* isolate: true beside the step: its plugin runs in a child process (core/isolate.h) */
	const struct cfg_node *isolate_at; /* its value, or NULL */
};

struct cfg_pipeline {
	char *name;
	char **from; /* channel names; n_from == 0 means every channel */
	size_t n_from;
	struct cfg_step *steps;
	size_t n_steps;
	int has_steps; /* 0: use the default steps */
	const struct cfg_node *at;
};

struct cfg_instance {
	char *name;                     /* channel name, or the plugin name for a store */
	char *type;                     /* plugin name */
	struct cfg_node *config;        /* a map, or NULL */
	const struct cfg_node *at;      /* the entry, for errors */
	const struct cfg_node *type_at; /* the type value, for errors */
	double rate_limit;              /* channels: outbound sends per second, 0 = unlimited */
	int isolate; /* channels: isolate: true, the plugin runs in a child process (core/isolate.h) */
	const struct cfg_node *isolate_at;
};

/*
 * auth: how logins, sessions and the password KDF behave (core/auth.h
 * tells what each limit does).  Durations in ms.
 */
struct auth_config {
	int64_t session_ttl_ms;        /* a session cookie lives this long (12h) */
	int64_t delay_after;           /* failures of one account before each try waits (5) */
	int64_t delay_base_ms;         /* the first wait, doubled at each further failure (1s) */
	int64_t lockout_after;         /* failures of one account in a row that lock it (20) */
	int64_t lockout_for_ms;        /* how long the lock lasts, and when old failures are forgotten (15m) */
	int64_t address_lockout_after; /* failures from one client address that lock the address (100) */
	int64_t kdf_memory_kib;        /* argon2id memory per hash, KiB (19456: 19 MiB, OWASP) */
	int64_t kdf_iterations;        /* argon2id passes (2) */
	int64_t kdf_concurrency;       /* password hashes computed at once (2) */
	int64_t kdf_wait_ms; /* how long a login waits for a free hash slot before "busy" (1s; 0: not at all) */
};

struct gw_config {
	char *path; /* as given */
	char *dir;  /* directory of path: relative paths resolve against it */
	char *data_dir;
	char *log_level;
	int log_json; /* log.format: json, one JSON object per line */
	char **plugin_paths;
	size_t n_plugin_paths;
	char *http_listen;
	uint64_t http_max_body;
	int64_t http_request_timeout_ms;
	char *http_public_url;
	/* Limits against slow or hostile clients (see core/http_server.c). */
	int64_t http_header_timeout_ms;
	int64_t http_body_timeout_ms;
	int64_t http_max_connections;
	int64_t http_max_connections_per_ip;
	int64_t http_max_inflight;
	uint64_t http_max_header_size;
	uint64_t http_max_url_size;
	/* http.tls: absolute paths of the PEM certificate chain and key, or NULL for plain HTTP. */
	char *http_tls_cert;
	char *http_tls_key;
	char *publish_listen;
	int publish_buffer;
	char *control_listen;
	char *control_token;      /* required in every control request when set */
	char *node_name;          /* node.name: this gateway among the nodes sharing a store (default: the host name) */
	int publish_allow_remote; /* publish.listen may be reachable from other machines */
	int outbox_max_attempts;
	int64_t outbox_backoff_base_ms;
	int64_t outbox_backoff_max_ms;
	int64_t outbox_poll_ms;
	int64_t commit_max_batch;
	struct auth_config auth;
	struct cfg_instance storage;
	struct cfg_instance bus; /* bus: a durable bus plugin (type NULL: none), see core/relay.h */
	struct cfg_instance *channels;
	size_t n_channels;
	struct cfg_pipeline *pipelines;
	size_t n_pipelines;
	/* sla: and surveys: (promises.h), NULL when absent. */
	struct sla_config *sla;
	struct survey_config *surveys;
	/* canned_responses: name -> template (borrowed from the tree). */
	const struct cfg_node *canned;
	/* reports: the KPIs' business_hours calendar (borrowed; NULL: none) and reopen window (0: reopen_within). */
	const struct cfg_node *reports_hours;
	int64_t reports_reopen_ms;
	/* reports.metrics_interval: how often the parley_kpi_* gauges are computed (0: no gauges). */
	int64_t reports_metrics_ms;
	struct cfg_node *root;
};

void cfg_errors_add(struct cfg_errors *e, const char *file, const struct cfg_node *at, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
void cfg_errors_free(struct cfg_errors *e);

/*
 * Load and check path.  Returns 0 and fills *cfg (free with cfg_free), or
 * -1 with at least one error in *errs.  path NULL gives the built-in
 * defaults with relative paths resolved against the working directory.
 */
int cfg_load(const char *path, struct gw_config *cfg, struct cfg_errors *errs);
/* Parse YAML text only (used by cfg_load and the tests). */
struct cfg_node *cfg_parse(const char *file, const char *text, size_t len, struct cfg_errors *errs);
void cfg_free(struct gw_config *cfg);
void cfg_node_free(struct cfg_node *n);

/* The defaults of the auth: section (for tests and embedders that build an auth_config themselves). */
void cfg_auth_defaults(struct auth_config *a);

/* Do two trees say the same, positions aside (a reload tells a changed channel by it)? */
int cfg_node_equal(const struct cfg_node *a, const struct cfg_node *b);
/* The value node for key in a map, or NULL. */
const struct cfg_node *cfg_map_get(const struct cfg_node *map, const char *key);

/*
 * Parse a scalar as one of the typed forms of parley_config_key.  Each
 * returns 0 or -1 with a message in err (>= 128 bytes).
 */
int cfg_parse_int(const char *s, int64_t *out, char *err);
int cfg_parse_bool(const char *s, int *out, char *err);
int cfg_parse_size(const char *s, uint64_t *out, char *err);
int cfg_parse_duration_ms(const char *s, int64_t *out, char *err);

/*
 * Report keys of map not in allowed (NULL-terminated), with a "did you
 * mean" when one is close.  what names the section ("http", "channel
 * 'hooks' config").
 */
void cfg_check_keys(const char *file, const struct cfg_node *map, const char *const *allowed, const char *what,
                    struct cfg_errors *errs);

/* The closest of candidates to word within a small distance, or NULL. */
const char *cfg_suggest(const char *word, const char *const *candidates, size_t n);

#endif
