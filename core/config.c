/*
 * config.c: the gateway's configuration model, built from the YAML tree,
 * with defaults for everything so that an empty file runs.
 */
#include "config.h"
#include "business_hours.h"
#include "config_reader.h"
#include "host.h"
#include "promises.h"
#include "tls.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define NODE_NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

/* A plugins.path entry that is no directory would otherwise be skipped in silence, its plugins "unknown". */
static void check_plugin_dir(struct reader *r, const struct cfg_node *at, const char *abs)
{
	struct stat st;
	if (stat(abs, &st) != 0)
		cfg_errors_add(r->errs, r->file, at,
		               "plugins.path: %s does not exist (%s): name a directory that holds plugin .so files",
		               abs, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		cfg_errors_add(
		        r->errs, r->file, at,
		        "plugins.path: %s is not a directory: name the directory that holds the plugin .so files", abs);
}

/* isolate: true|false (a channel's or a step's), at node v (NULL: absent, false). */
static void read_isolate(struct reader *r, const struct cfg_node *v, int *out, const struct cfg_node **at)
{
	char err[128];
	*at = v;
	if (v && (v->type != CFG_SCALAR || cfg_parse_bool(v->value, out, err) != 0))
		cfg_errors_add(r->errs, r->file, v, "isolate must be true or false");
}

/*
 * A step entry may hold isolate: beside its one '- name: {config}' pair;
 * take it out: the index of the step's own pair in the map s.
 */
static size_t step_pair(struct reader *r, const struct cfg_node *s, struct cfg_step *st)
{
	if (s->type != CFG_MAP || s->n != 4)
		return 0;
	for (size_t k = 0; k < 4; k += 2)
		if (s->items[k]->type == CFG_SCALAR && strcmp(s->items[k]->value, "isolate") == 0) {
			read_isolate(r, s->items[k + 1], &st->isolate, &st->isolate_at);
			return k == 0 ? 2 : 0;
		}
	return 0;
}

static void read_instance(struct reader *r, const struct cfg_node *n, const char *what, int need_name,
                          struct cfg_instance *inst)
{
	static const char *const keys[] = {"name", "type", "config", "rate_limit", "isolate", NULL};
	static const char *const store_keys[] = {"type", "config", NULL};
	if (!want_map(r, n, what))
		return;
	cfg_check_keys(r->file, n, need_name ? keys : store_keys, what, r->errs);
	inst->at = n;
	const struct cfg_node *t = want_scalar(r, cfg_map_get(n, "type"), "type");
	if (t) {
		inst->type = strdup(t->value);
		inst->type_at = t;
	} else if (!cfg_map_get(n, "type")) {
		cfg_errors_add(r->errs, r->file, n, "%s has no 'type': name the plugin, e.g. type: webhook", what);
	}
	if (need_name) {
		const struct cfg_node *nm = want_scalar(r, cfg_map_get(n, "name"), "name");
		if (nm) {
			inst->name = strdup(nm->value);
			for (const char *p = nm->value; *p; p++) {
				if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') {
					cfg_errors_add(r->errs, r->file, nm,
					               "channel name '%s' may only hold letters, digits, '-' and '_' "
					               "(it is part of URLs and topics)",
					               nm->value);
					break;
				}
			}
		} else if (!cfg_map_get(n, "name")) {
			cfg_errors_add(r->errs, r->file, n, "%s has no 'name': give it one, e.g. name: wa-main", what);
		}
	} else if (inst->type) {
		inst->name = strdup(inst->type);
	}
	const struct cfg_node *rl = need_name ? want_scalar(r, cfg_map_get(n, "rate_limit"), "rate_limit") : NULL;
	if (rl) {
		char *end;
		inst->rate_limit = strtod(rl->value, &end);
		if (end == rl->value || *end || inst->rate_limit < 0)
			cfg_errors_add(r->errs, r->file, rl,
			               "rate_limit '%s' is not a number of sends per second (e.g. 20 or 0.5)",
			               rl->value);
	}
	if (need_name)
		read_isolate(r, cfg_map_get(n, "isolate"), &inst->isolate, &inst->isolate_at);
	const struct cfg_node *c = cfg_map_get(n, "config");
	if (c && c->type == CFG_SCALAR && c->value[0] == '\0')
		c = NULL; /* "config:" with nothing after it */
	if (c && want_map(r, c, "config"))
		inst->config = (struct cfg_node *)c;
}

static void read_pipeline(struct reader *r, const struct cfg_node *n, struct cfg_pipeline *p)
{
	static const char *const keys[] = {"name", "from", "steps", NULL};
	if (!want_map(r, n, "a pipeline"))
		return;
	cfg_check_keys(r->file, n, keys, "pipeline", r->errs);
	p->at = n;
	const struct cfg_node *nm = want_scalar(r, cfg_map_get(n, "name"), "name");
	p->name = strdup(nm ? nm->value : "inbound");
	read_str_list(r, cfg_map_get(n, "from"), "from", &p->from, &p->n_from);
	const struct cfg_node *steps = cfg_map_get(n, "steps");
	if (!steps)
		return;
	p->has_steps = 1;
	if (steps->type != CFG_SEQ) {
		cfg_errors_add(r->errs, r->file, steps, "steps must be a list of '- name: {config}' items");
		return;
	}
	p->steps = calloc(steps->n ? steps->n : 1, sizeof(*p->steps));
	for (size_t i = 0; i < steps->n; i++) {
		const struct cfg_node *s = steps->items[i];
		struct cfg_step *st = &p->steps[p->n_steps];
		if (s->type == CFG_SCALAR) {
			st->type = strdup(s->value);
			st->at = s;
			p->n_steps++;
			continue;
		}
		size_t pair = step_pair(r, s, st);
		if (s->type != CFG_MAP || s->n != (st->isolate_at ? 4 : 2) || s->items[pair]->type != CFG_SCALAR) {
			cfg_errors_add(r->errs, r->file, s,
			               "a step is written '- name: {config}', e.g. '- dedupe: {}', with isolate: true "
			               "beside it to run it in a child process");
			continue;
		}
		st->type = strdup(s->items[pair]->value);
		st->at = s->items[pair];
		const struct cfg_node *c = s->items[pair + 1];
		if (strcmp(st->type, "route") == 0 && c->type == CFG_MAP) {
			/* "- route: {type: rules, config: {...}}" names the router plugin inside. */
			static const char *const rk[] = {"type", "config", NULL};
			cfg_check_keys(r->file, c, rk, "route step", r->errs);
			const struct cfg_node *t = want_scalar(r, cfg_map_get(c, "type"), "type");
			if (!t) {
				cfg_errors_add(r->errs, r->file, c,
				               "a route step names its router: route: {type: rules, config: {...}}");
				p->n_steps++;
				continue;
			}
			free(st->type);
			st->type = strdup(t->value);
			st->at = t;
			c = cfg_map_get(c, "config");
			if (!c) {
				p->n_steps++;
				continue;
			}
		}
		if (c->type == CFG_MAP)
			st->config = (struct cfg_node *)c;
		else if (!(c->type == CFG_SCALAR && c->value[0] == '\0'))
			cfg_errors_add(r->errs, r->file, c, "the config of step '%s' must be a mapping, e.g. {}",
			               st->type);
		p->n_steps++;
	}
}

/*
 * http.tls: {cert, key}.  The pair is read and checked here, so that
 * `parley check` refuses what the listener could not serve, at the line of
 * the file at fault.
 */
static void read_tls(struct reader *r, struct gw_config *cfg, const struct cfg_node *tls)
{
	static const char *const k[] = {"cert", "key", NULL};
	if (!tls || (tls->type == CFG_SCALAR && tls->value[0] == '\0'))
		return;
	if (!want_map(r, tls, "http.tls"))
		return;
	cfg_check_keys(r->file, tls, k, "http.tls", r->errs);
	const struct cfg_node *cn = cfg_map_get(tls, "cert"), *kn = cfg_map_get(tls, "key");
	const struct cfg_node *cert = want_scalar(r, cn, "cert"), *key = want_scalar(r, kn, "key");
	if ((cn && !cert) || (kn && !key))
		return; /* reported: not a single value */
	if (!cert || !key || !cert->value[0] || !key->value[0]) {
		cfg_errors_add(r->errs, r->file, tls,
		               "http.tls needs both cert and key, the paths of PEM files: e.g. "
		               "tls: { cert: tls/server.crt, key: tls/server.key }");
		return;
	}
	cfg->http_tls_cert = path_resolve(cfg->dir, cert->value);
	cfg->http_tls_key = path_resolve(cfg->dir, key->value);
	struct tls_pair pair;
	enum tls_culprit culprit;
	char *err = NULL;
	if (tls_pair_load(&pair, cfg->http_tls_cert, cfg->http_tls_key, &culprit, &err) != 0) {
		cfg_errors_add(r->errs, r->file, culprit == TLS_CULPRIT_CERT ? cert : key, "%s",
		               err ? err : "out of memory");
		free(err);
		return;
	}
	tls_pair_free(&pair);
}

/*
 * reports: {business_hours: {timezone, days, from, to}, reopen_window, metrics_interval}: the KPIs' calendar
 * (docs/kpis.md) and how often /metrics' parley_kpi_* gauges are computed (core/kpi_gauges.h).
 */
static void read_reports(struct reader *r, struct gw_config *cfg, const struct cfg_node *rp)
{
	static const char *const k[] = {"business_hours", "reopen_window", "metrics_interval", NULL};
	cfg_check_keys(cfg->path, rp, k, "reports", r->errs);
	read_duration(r, rp, "reopen_window", &cfg->reports_reopen_ms);
	int64_t every = cfg->reports_metrics_ms;
	read_duration(r, rp, "metrics_interval", &every);
	if (every > 0 && every < 1000)
		cfg_errors_add(r->errs, r->file, cfg_map_get(rp, "metrics_interval"),
		               "metrics_interval: '%s' is shorter than 1s: each computation reads the month's whole "
		               "history; write e.g. 60s, or 0 to turn the parley_kpi_* gauges off",
		               cfg_map_get(rp, "metrics_interval")->value);
	else
		cfg->reports_metrics_ms = every;
	const struct cfg_node *bh = want_map(r, cfg_map_get(rp, "business_hours"), "reports.business_hours");
	if (!bh)
		return;
	char *text = host_config_json(bh), *err = NULL;
	cJSON *j = text ? cJSON_Parse(text) : NULL;
	struct business_hours hours;
	if (bh_parse(j, &hours, &err) != 0)
		cfg_errors_add(r->errs, r->file, bh, "reports.business_hours: %s", err ? err : "invalid");
	else
		bh_free(&hours);
	free(err);
	free(text);
	cJSON_Delete(j);
	cfg->reports_hours = bh;
}

void cfg_auth_defaults(struct auth_config *a)
{
	a->session_ttl_ms = 12 * 3600 * 1000;
	a->delay_after = 5;
	a->delay_base_ms = 1000;
	a->lockout_after = 20;
	a->lockout_for_ms = 15 * 60 * 1000;
	a->address_lockout_after = 100;
	a->kdf_memory_kib = 19456;
	a->kdf_iterations = 2;
	a->kdf_concurrency = 2;
	a->kdf_wait_ms = 1000;
}

/* auth: logins, sessions, the password KDF. */
static void read_auth(struct reader *r, struct gw_config *cfg, const struct cfg_node *au)
{
	static const char *const k[] = {
	        "session_ttl", "delay_after",    "delay_base",      "lockout_after",         "lockout_for",
	        "kdf_memory",  "kdf_iterations", "kdf_concurrency", "address_lockout_after", "kdf_wait",
	        NULL};
	cfg_check_keys(r->file, au, k, "auth", r->errs);
	struct auth_config *a = &cfg->auth;
	static const struct {
		const char *key;
		int64_t min, max; /* ms */
		size_t off;
	} durations[] = {
	        {"session_ttl", 1000, 366LL * 86400 * 1000, offsetof(struct auth_config, session_ttl_ms)},
	        {"delay_base", 1, 3600 * 1000, offsetof(struct auth_config, delay_base_ms)},
	        {"lockout_for", 1000, 7LL * 86400 * 1000, offsetof(struct auth_config, lockout_for_ms)},
	        {"kdf_wait", 0, 60 * 1000, offsetof(struct auth_config, kdf_wait_ms)},
	};
	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		const struct cfg_node *n = cfg_map_get(au, durations[i].key);
		int64_t *dst = (int64_t *)((char *)a + durations[i].off), v = *dst;
		read_duration(r, au, durations[i].key, &v);
		if (n && (v < durations[i].min || v > durations[i].max))
			cfg_errors_add(r->errs, r->file, n, "auth.%s must be between %lld ms and %lld ms",
			               durations[i].key, (long long)durations[i].min, (long long)durations[i].max);
		else
			*dst = v;
	}
	read_int(r, au, "delay_after", 1, 1000000, &a->delay_after);
	read_int(r, au, "lockout_after", 1, 1000000, &a->lockout_after);
	read_int(r, au, "address_lockout_after", 1, 100000000, &a->address_lockout_after);
	read_int(r, au, "kdf_iterations", 1, 100, &a->kdf_iterations);
	read_int(r, au, "kdf_concurrency", 1, 64, &a->kdf_concurrency);
	const struct cfg_node *m = cfg_map_get(au, "kdf_memory");
	uint64_t mem = (uint64_t)a->kdf_memory_kib * 1024;
	read_size(r, au, "kdf_memory", &mem);
	if (m && (mem < 1024 * 1024 || mem > 4096ULL * 1024 * 1024))
		cfg_errors_add(
		        r->errs, r->file, m,
		        "auth.kdf_memory must be between 1MiB and 4GiB (19MiB is the OWASP minimum for argon2id)");
	else
		a->kdf_memory_kib = (int64_t)(mem / 1024);
}

static void set_defaults(struct gw_config *cfg)
{
	cfg_auth_defaults(&cfg->auth);
	cfg->data_dir = path_resolve(cfg->dir, "var");
	cfg->log_level = strdup("info");
	cfg->http_listen = strdup("127.0.0.1:8080");
	cfg->http_max_body = 1024 * 1024;
	cfg->http_request_timeout_ms = 30000;
	cfg->http_header_timeout_ms = 10000;
	cfg->http_body_timeout_ms = -1; /* unset: http.request_timeout */
	cfg->http_max_connections = 1024;
	cfg->http_max_connections_per_ip = 256;
	cfg->http_max_inflight = 256;
	cfg->http_max_header_size = 16 * 1024;
	cfg->http_max_url_size = 8 * 1024;
	cfg->publish_buffer = 1024;
	cfg->outbox_max_attempts = 8;
	cfg->outbox_backoff_base_ms = 1000;
	cfg->outbox_backoff_max_ms = 300000;
	cfg->outbox_poll_ms = 500;
	cfg->commit_max_batch = 1024;
	cfg->reports_metrics_ms = 60000;
	cfg->storage.type = strdup("sqlite");
	cfg->storage.name = strdup("sqlite");
}

int cfg_load(const char *path, struct gw_config *cfg, struct cfg_errors *errs)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = strdup(path ? path : "<defaults>");
	cfg->dir = path ? path_dirname(path) : strdup(".");
	set_defaults(cfg);

	if (path) {
		FILE *f = fopen(path, "rb");
		if (!f) {
			cfg_errors_add(errs, path, NULL, "cannot open the config file: %s", strerror(errno));
			return -1;
		}
		struct strbuf sb;
		sb_init(&sb);
		char buf[8192];
		size_t got;
		while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
			sb_add(&sb, buf, got);
		fclose(f);
		cfg->root = cfg_parse(path, sb.buf ? sb.buf : "", sb.len, errs);
		sb_free(&sb);
		if (!cfg->root)
			return -1;
	} else {
		cfg->root = cfg_parse("<defaults>", "", 0, errs);
	}

	struct reader r = {cfg->path, errs};
	const struct cfg_node *root = cfg->root;
	if (root->type != CFG_MAP) {
		cfg_errors_add(errs, cfg->path, root,
		               "the config must be a mapping of sections (channels:, storage:, ...)");
		return -1;
	}
	static const char *const top[] = {"data_dir", "log",      "plugins",   "http",   "publish", "control",
	                                  "storage",  "channels", "pipelines", "outbox", "commit",  "canned_responses",
	                                  "node",     "bus",      "auth",      "sla",    "surveys", "reports",
	                                  NULL};
	cfg_check_keys(cfg->path, root, top, "the top level", errs);

	const struct cfg_node *dd = want_scalar(&r, cfg_map_get(root, "data_dir"), "data_dir");
	if (dd) {
		free(cfg->data_dir);
		cfg->data_dir = path_resolve(cfg->dir, dd->value);
	}

	const struct cfg_node *log = want_map(&r, cfg_map_get(root, "log"), "log");
	if (log) {
		static const char *const k[] = {"level", "format", NULL};
		cfg_check_keys(cfg->path, log, k, "log", errs);
		read_str(&r, log, "level", &cfg->log_level);
		const struct cfg_node *f = cfg_map_get(log, "format");
		if (f && (f->type != CFG_SCALAR || (strcmp(f->value, "text") != 0 && strcmp(f->value, "json") != 0)))
			cfg_errors_add(errs, cfg->path, f, "log.format must be text or json");
		else if (f)
			cfg->log_json = strcmp(f->value, "json") == 0;
	}

	const struct cfg_node *plugins = want_map(&r, cfg_map_get(root, "plugins"), "plugins");
	if (plugins) {
		static const char *const k[] = {"path", NULL};
		cfg_check_keys(cfg->path, plugins, k, "plugins", errs);
		const struct cfg_node *pp = cfg_map_get(plugins, "path");
		read_str_list(&r, pp, "plugins.path", &cfg->plugin_paths, &cfg->n_plugin_paths);
		for (size_t i = 0, item = 0; i < cfg->n_plugin_paths; i++, item++) {
			char *abs = path_resolve(cfg->dir, cfg->plugin_paths[i]);
			free(cfg->plugin_paths[i]);
			cfg->plugin_paths[i] = abs;
			/* The i-th path came from the i-th scalar item (read_str_list skips the others). */
			while (pp->type == CFG_SEQ && item < pp->n && pp->items[item]->type != CFG_SCALAR)
				item++;
			check_plugin_dir(&r, pp->type == CFG_SEQ ? pp->items[item] : pp, abs);
		}
	}

	const struct cfg_node *http = want_map(&r, cfg_map_get(root, "http"), "http");
	if (http) {
		static const char *const k[] = {"listen",
		                                "max_body",
		                                "request_timeout",
		                                "public_url",
		                                "header_timeout",
		                                "body_timeout",
		                                "max_connections",
		                                "max_connections_per_ip",
		                                "max_inflight",
		                                "max_header_size",
		                                "max_url_size",
		                                "tls",
		                                NULL};
		cfg_check_keys(cfg->path, http, k, "http", errs);
		read_str(&r, http, "listen", &cfg->http_listen);
		read_size(&r, http, "max_body", &cfg->http_max_body);
		read_duration(&r, http, "request_timeout", &cfg->http_request_timeout_ms);
		read_str(&r, http, "public_url", &cfg->http_public_url);
		read_duration(&r, http, "header_timeout", &cfg->http_header_timeout_ms);
		read_duration(&r, http, "body_timeout", &cfg->http_body_timeout_ms);
		read_int(&r, http, "max_connections", 1, 1000000, &cfg->http_max_connections);
		read_int(&r, http, "max_connections_per_ip", 1, 1000000, &cfg->http_max_connections_per_ip);
		read_int(&r, http, "max_inflight", 1, 1000000, &cfg->http_max_inflight);
		read_size(&r, http, "max_header_size", &cfg->http_max_header_size);
		read_size(&r, http, "max_url_size", &cfg->http_max_url_size);
		/* The request head is parsed in a per-connection pool of this size. */
		const struct cfg_node *hs = cfg_map_get(http, "max_header_size"),
		                      *us = cfg_map_get(http, "max_url_size");
		if (cfg->http_max_header_size < 1024 || cfg->http_max_header_size > 1024 * 1024)
			cfg_errors_add(errs, cfg->path, hs,
			               "max_header_size: write a size from 1KiB to 1MiB, e.g. 16KiB");
		else if (cfg->http_max_url_size < 256 || cfg->http_max_url_size > cfg->http_max_header_size)
			cfg_errors_add(errs, cfg->path, us ? us : hs,
			               "max_url_size is %llu bytes: write a size from 256 bytes up to max_header_size "
			               "(%llu bytes)",
			               (unsigned long long)cfg->http_max_url_size,
			               (unsigned long long)cfg->http_max_header_size);
	}
	if (cfg->http_body_timeout_ms < 0)
		cfg->http_body_timeout_ms = cfg->http_request_timeout_ms;
	if (http)
		read_tls(&r, cfg, cfg_map_get(http, "tls"));

	const struct cfg_node *pub = want_map(&r, cfg_map_get(root, "publish"), "publish");
	if (pub) {
		static const char *const k[] = {"listen", "buffer", "allow_remote", NULL};
		cfg_check_keys(cfg->path, pub, k, "publish", errs);
		read_str(&r, pub, "listen", &cfg->publish_listen);
		read_bool(&r, pub, "allow_remote", &cfg->publish_allow_remote);
		int64_t b = cfg->publish_buffer;
		read_int(&r, pub, "buffer", 0, 8192, &b);
		cfg->publish_buffer = (int)b;
	}
	const struct cfg_node *node = want_map(&r, cfg_map_get(root, "node"), "node");
	if (node) {
		static const char *const k[] = {"name", NULL};
		cfg_check_keys(cfg->path, node, k, "node", errs);
		read_str(&r, node, "name", &cfg->node_name);
		const char *n = cfg->node_name;
		if (n && (!n[0] || strlen(n) > 64 || strspn(n, NODE_NAME_CHARS) != strlen(n)))
			cfg_errors_add(errs, cfg->path, cfg_map_get(node, "name"),
			               "node.name must be 1 to 64 letters, digits, '.', '_' or '-'");
	}
	if (!cfg->node_name) {
		/* Stable across restarts, so a restarted node keeps its leases; two nodes on one host need names. */
		char host[256] = "";
		gethostname(host, sizeof(host) - 1);
		host[strcspn(host, ".")] = '\0';
		cfg->node_name = strdup(host[0] ? host : "parley");
	}
	const struct cfg_node *ctl = want_map(&r, cfg_map_get(root, "control"), "control");
	if (ctl) {
		static const char *const k[] = {"listen", "token", NULL};
		cfg_check_keys(cfg->path, ctl, k, "control", errs);
		read_str(&r, ctl, "listen", &cfg->control_listen);
		read_str(&r, ctl, "token", &cfg->control_token);
		if (cfg->control_token && strlen(cfg->control_token) < 16)
			cfg_errors_add(errs, cfg->path, cfg_map_get(ctl, "token"),
			               "control.token must be at least 16 characters (e.g. `openssl rand -hex 16`)");
	}
	/*
	 * Anyone who reaches the control socket can send messages and merge
	 * contacts, and anyone who reaches the publish socket reads every
	 * message: neither is left open to other machines by accident.
	 */
	if (cfg->control_listen && listen_is_remote(cfg->control_listen) && !cfg->control_token)
		cfg_errors_add(errs, cfg->path, ctl ? cfg_map_get(ctl, "listen") : root,
		               "control.listen %s can be reached by other machines or users and takes "
		               "unauthenticated requests: set control.token (clients send it as \"token\"), or listen "
		               "on 127.0.0.1 or an ipc:// path",
		               cfg->control_listen);
	if (cfg->publish_listen && listen_is_remote(cfg->publish_listen) && !cfg->publish_allow_remote)
		cfg_errors_add(errs, cfg->path, pub ? cfg_map_get(pub, "listen") : root,
		               "publish.listen %s lets other machines read every message: listen on 127.0.0.1 or "
		               "an ipc:// path, or set publish.allow_remote: true if a firewall guards it",
		               cfg->publish_listen);
	/* ipc:// paths, like every path in the file, are relative to the file. */
	char **urls[] = {&cfg->publish_listen, &cfg->control_listen};
	for (size_t i = 0; i < 2; i++) {
		char *u = *urls[i];
		if (u && strncmp(u, "ipc://", 6) == 0 && u[6] != '/' && u[6] != '\0') {
			char *p = path_resolve(cfg->dir, u + 6);
			*urls[i] = str_printf("ipc://%s", p);
			free(p);
			free(u);
		}
	}
	if (!cfg->publish_listen)
		cfg->publish_listen = str_printf("ipc://%s/events.ipc", cfg->data_dir);
	if (!cfg->control_listen)
		cfg->control_listen = str_printf("ipc://%s/control.ipc", cfg->data_dir);

	const struct cfg_node *ob = want_map(&r, cfg_map_get(root, "outbox"), "outbox");
	if (ob) {
		static const char *const k[] = {"max_attempts", "backoff_base", "backoff_max", "poll_interval", NULL};
		cfg_check_keys(cfg->path, ob, k, "outbox", errs);
		int64_t a = cfg->outbox_max_attempts;
		read_int(&r, ob, "max_attempts", 1, 1000, &a);
		cfg->outbox_max_attempts = (int)a;
		read_duration(&r, ob, "backoff_base", &cfg->outbox_backoff_base_ms);
		read_duration(&r, ob, "backoff_max", &cfg->outbox_backoff_max_ms);
		read_duration(&r, ob, "poll_interval", &cfg->outbox_poll_ms);
	}
	const struct cfg_node *au = want_map(&r, cfg_map_get(root, "auth"), "auth");
	if (au)
		read_auth(&r, cfg, au);
	const struct cfg_node *cm = want_map(&r, cfg_map_get(root, "commit"), "commit");
	if (cm) {
		static const char *const k[] = {"max_batch", NULL};
		cfg_check_keys(cfg->path, cm, k, "commit", errs);
		read_int(&r, cm, "max_batch", 1, 100000, &cfg->commit_max_batch);
	}

	const struct cfg_node *canned = want_map(&r, cfg_map_get(root, "canned_responses"), "canned_responses");
	if (canned) {
		static const char *const fields[] = {"contact.name", "contact.id", "conversation.id", "agent", "team",
		                                     "channel",      NULL};
		for (size_t i = 0; i + 1 < canned->n; i += 2) {
			const struct cfg_node *t = want_scalar(&r, canned->items[i + 1], "a canned response");
			for (const char *p = t ? t->value : ""; (p = strstr(p, "{{")) != NULL; p += 2) {
				const char *end = strstr(p, "}}");
				size_t len = end ? (size_t)(end - p - 2) : 0;
				size_t name_len = strcspn(p + 2, "|}");
				int known = 0;
				for (size_t k = 0; end && fields[k]; k++)
					if (strlen(fields[k]) == name_len && strncmp(p + 2, fields[k], name_len) == 0)
						known = 1;
				if (!known) {
					cfg_errors_add(errs, cfg->path, t,
					               "canned response '%s': unknown placeholder {{%.*s}} (known: "
					               "contact.name, "
					               "contact.id, conversation.id, agent, team, channel; a default: "
					               "{{contact.name|there}})",
					               canned->items[i]->value, (int)(end ? len : 20), p + 2);
					break;
				}
			}
		}
		cfg->canned = canned;
	}

	const struct cfg_node *rp = want_map(&r, cfg_map_get(root, "reports"), "reports");
	if (rp)
		read_reports(&r, cfg, rp);

	const struct cfg_node *st = cfg_map_get(root, "storage");
	if (st) {
		free(cfg->storage.type);
		free(cfg->storage.name);
		cfg->storage.type = NULL;
		cfg->storage.name = NULL;
		read_instance(&r, st, "storage", 0, &cfg->storage);
	}
	if (cfg_map_get(root, "bus"))
		read_instance(&r, cfg_map_get(root, "bus"), "bus", 0, &cfg->bus);

	const struct cfg_node *chs = cfg_map_get(root, "channels");
	if (chs && chs->type != CFG_SEQ && !(chs->type == CFG_SCALAR && !chs->value[0])) {
		cfg_errors_add(errs, cfg->path, chs, "channels must be a list of '- name: ..., type: ...' entries");
	} else if (chs && chs->type == CFG_SEQ) {
		cfg->channels = calloc(chs->n ? chs->n : 1, sizeof(*cfg->channels));
		for (size_t i = 0; i < chs->n; i++) {
			struct cfg_instance *c = &cfg->channels[cfg->n_channels++];
			read_instance(&r, chs->items[i], "channel", 1, c);
			for (size_t j = 0; c->name && j + 1 < cfg->n_channels; j++) {
				if (cfg->channels[j].name && strcmp(cfg->channels[j].name, c->name) == 0)
					cfg_errors_add(errs, cfg->path, chs->items[i],
					               "channel name '%s' is used twice (first at line %d): names must "
					               "be unique",
					               c->name, cfg->channels[j].at->line);
			}
		}
	}

	const struct cfg_node *pls = cfg_map_get(root, "pipelines");
	if (pls && pls->type != CFG_SEQ && !(pls->type == CFG_SCALAR && !pls->value[0])) {
		cfg_errors_add(errs, cfg->path, pls, "pipelines must be a list");
	} else if (pls && pls->type == CFG_SEQ) {
		cfg->pipelines = calloc(pls->n ? pls->n : 1, sizeof(*cfg->pipelines));
		for (size_t i = 0; i < pls->n; i++)
			read_pipeline(&r, pls->items[i], &cfg->pipelines[cfg->n_pipelines++]);
	}
	/* A pipeline's from: must name configured channels. */
	for (size_t i = 0; i < cfg->n_pipelines; i++) {
		struct cfg_pipeline *p = &cfg->pipelines[i];
		const struct cfg_node *from = cfg_map_get(p->at, "from");
		for (size_t j = 0; j < p->n_from; j++) {
			size_t k;
			for (k = 0; k < cfg->n_channels; k++)
				if (cfg->channels[k].name && strcmp(cfg->channels[k].name, p->from[j]) == 0)
					break;
			if (k == cfg->n_channels) {
				const struct cfg_node *at = from;
				if (from && from->type == CFG_SEQ && j < from->n)
					at = from->items[j];
				cfg_errors_add(errs, cfg->path, at,
				               "pipeline '%s' takes from channel '%s', which is not configured under "
				               "channels:",
				               p->name, p->from[j]);
			}
		}
	}
	cfg_read_promises(cfg, root, errs);
	return errs->n ? -1 : 0;
}

static void free_instance(struct cfg_instance *i)
{
	free(i->name);
	free(i->type);
}

void cfg_free(struct gw_config *cfg)
{
	cfg_free_promises(cfg);
	free(cfg->path);
	free(cfg->dir);
	free(cfg->data_dir);
	free(cfg->log_level);
	for (size_t i = 0; i < cfg->n_plugin_paths; i++)
		free(cfg->plugin_paths[i]);
	free(cfg->plugin_paths);
	free(cfg->http_listen);
	free(cfg->http_public_url);
	free(cfg->http_tls_cert);
	free(cfg->http_tls_key);
	free(cfg->publish_listen);
	free(cfg->control_listen);
	free(cfg->control_token);
	free(cfg->node_name);
	free_instance(&cfg->storage);
	free_instance(&cfg->bus);
	for (size_t i = 0; i < cfg->n_channels; i++)
		free_instance(&cfg->channels[i]);
	free(cfg->channels);
	for (size_t i = 0; i < cfg->n_pipelines; i++) {
		struct cfg_pipeline *p = &cfg->pipelines[i];
		free(p->name);
		for (size_t j = 0; j < p->n_from; j++)
			free(p->from[j]);
		free(p->from);
		for (size_t j = 0; j < p->n_steps; j++)
			free(p->steps[j].type);
		free(p->steps);
	}
	free(cfg->pipelines);
	cfg_node_free(cfg->root);
	memset(cfg, 0, sizeof(*cfg));
}
