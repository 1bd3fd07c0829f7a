/* gateway.c: check the config against the plugins, start, serve, drain. */
#include "gateway.h"
#include "api.h"
#include "auth.h"
#include "broadcast.h"
#include "bus.h"
#include "control.h"
#include "envelope.h"
#include "events.h"
#include "host.h"
#include "housekeeping.h"
#include "http.h"
#include "inbox/inbox.h"
#include "instance.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "pipeline.h"
#include "presence.h"
#include "queue.h"
#include "relay.h"
#include "store.h"
#include "util.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Steps used when the config has no pipelines: section. */
static const char *const default_steps[] = {"dedupe", NULL};

static void list_names(const struct plugin_registry *reg, int kind1, int kind2, const char ***names, size_t *n)
{
	*names = calloc(reg->n + 1, sizeof(char *));
	*n = 0;
	for (size_t i = 0; i < reg->n; i++)
		if (reg->items[i].desc->kind == kind1 || reg->items[i].desc->kind == kind2)
			(*names)[(*n)++] = reg->items[i].desc->name;
}

static const struct plugin_entry *need_plugin(struct gateway *gw, int kind1, int kind2, const char *name,
                                              const struct cfg_node *at, const char *what, struct cfg_errors *errs)
{
	const struct plugin_entry *e = loader_find(&gw->reg, kind1, name);
	if (!e && kind2)
		e = loader_find(&gw->reg, kind2, name);
	if (e)
		return e;
	const char **names;
	size_t n;
	list_names(&gw->reg, kind1, kind2, &names, &n);
	const char *s = cfg_suggest(name, names, n);
	struct strbuf known;
	sb_init(&known);
	for (size_t i = 0; i < n; i++)
		sb_printf(&known, "%s%s", i ? ", " : "", names[i]);
	const char *why = "";
	for (size_t i = 0; i < gw->reg.n_refused; i++) {
		const char *base = strrchr(gw->reg.refused[i].path, '/');
		if (base && strstr(base, name))
			why = " (a plugin file of that name was refused: see `parley plugins`)";
	}
	if (s)
		cfg_errors_add(errs, gw->cfg.path, at, "unknown %s '%s': did you mean '%s'?%s", what, name, s, why);
	else
		cfg_errors_add(errs, gw->cfg.path, at, "unknown %s '%s' (known: %s)%s", what, name,
		               known.len ? known.buf : "none", why);
	sb_free(&known);
	free(names);
	return NULL;
}

int gateway_open(struct gateway *gw, const char *config_path, struct cfg_errors *errs)
{
	memset(gw, 0, sizeof(*gw));
	pthread_mutex_init(&gw->changed_lock, NULL);
	if (cfg_load(config_path, &gw->cfg, errs) != 0 && !gw->cfg.root) {
		cfg_free(&gw->cfg);
		return -1;
	}
	int lvl = log_level_parse(gw->cfg.log_level);
	if (lvl < 0)
		cfg_errors_add(errs, gw->cfg.path, cfg_map_get(cfg_map_get(gw->cfg.root, "log"), "level"),
		               "log.level '%s' is not one of error, warn, info, debug", gw->cfg.log_level);
	else
		log_set_level(lvl);
	log_set_json(gw->cfg.log_json);

	char **dirs;
	size_t nd = loader_default_dirs(&dirs);
	loader_scan(&gw->reg, dirs, nd);
	for (size_t i = 0; i < nd; i++)
		free(dirs[i]);
	free(dirs);
	loader_scan(&gw->reg, gw->cfg.plugin_paths, gw->cfg.n_plugin_paths);
	for (size_t i = 0; i < gw->reg.n_refused; i++)
		log_warn("plugin %s refused: %s", gw->reg.refused[i].path, gw->reg.refused[i].reason);

	struct gw_config *c = &gw->cfg;
	const char *file = c->path;
	/* The store. */
	if (c->storage.type) {
		const struct cfg_node *at = c->storage.type_at ? c->storage.type_at : cfg_map_get(c->root, "storage");
		const struct plugin_entry *e =
		        need_plugin(gw, PARLEY_KIND_STORE, 0, c->storage.type, at, "storage type", errs);
		if (e) {
			loader_check_config(e, c->storage.config, c->storage.at, file, "storage", errs);
			gw->store = instance_new(gw, e, c->storage.type, c->storage.config, c->storage.at);
		}
	}
	/* The durable bus, fed from the store by core/relay.c. */
	const struct plugin_entry *be =
	        c->bus.type ? need_plugin(gw, PARLEY_KIND_BUS, 0, c->bus.type, c->bus.type_at, "bus type", errs) : NULL;
	if (be) {
		size_t before = errs->n;
		loader_check_config(be, c->bus.config, c->bus.at, file, "bus", errs);
		if (errs->n == before)
			instance_check_config(gw->cfg.path, be, c->bus.config, c->bus.at, "bus", errs);
		if (gw->store && !relay_store_supported(gw->store->plugin->desc->store))
			cfg_errors_add(errs, file, c->bus.at,
			               "bus: the store '%s' cannot replay committed envelopes (it has no typed "
			               "messages_since op, ABI 1.2): use a store that has it, or remove bus:",
			               gw->store->name);
		gw->bus_instance = instance_new(gw, be, c->bus.type, c->bus.config, c->bus.at);
	}
	/* Channels. */
	gw->channels = calloc(c->n_channels + 1, sizeof(*gw->channels));
	for (size_t i = 0; i < c->n_channels; i++) {
		struct cfg_instance *ci = &c->channels[i];
		if (!ci->type || !ci->name)
			continue;
		const struct plugin_entry *e =
		        need_plugin(gw, PARLEY_KIND_CHANNEL, 0, ci->type, ci->type_at, "channel type", errs);
		if (!e)
			continue;
		char *what = str_printf("channel '%s'", ci->name);
		size_t before = errs->n;
		loader_check_config(e, ci->config, ci->at, file, what, errs);
		if (errs->n == before)
			instance_check_config(gw->cfg.path, e, ci->config, ci->at, what, errs);
		free(what);
		parley_instance *inst = instance_new(gw, e, ci->name, ci->config, ci->at);
		inst->rate = ci->rate_limit;
		inst->tokens = ci->rate_limit > 1 ? ci->rate_limit : 1;
		gw->channels[gw->n_channels++] = inst;
	}
	/* Pipelines, or the default one. */
	size_t np = c->n_pipelines ? c->n_pipelines : 1;
	gw->pipes = calloc(np, sizeof(*gw->pipes));
	gw->n_pipes = np;
	size_t total_steps = 0;
	for (size_t i = 0; i < c->n_pipelines; i++)
		total_steps += c->pipelines[i].has_steps ? c->pipelines[i].n_steps : 1;
	gw->steps = calloc(total_steps + 2, sizeof(*gw->steps));
	for (size_t i = 0; i < np; i++) {
		struct gw_pipeline *p = &gw->pipes[i];
		struct cfg_pipeline *cp = c->n_pipelines ? &c->pipelines[i] : NULL;
		p->name = strdup(cp ? cp->name : "default");
		p->from = cp ? cp->from : NULL;
		p->n_from = cp ? cp->n_from : 0;
		size_t ns = cp && cp->has_steps ? cp->n_steps : 1;
		p->steps = calloc(ns + 1, sizeof(*p->steps));
		for (size_t s = 0; s < ns; s++) {
			const char *type = cp && cp->has_steps ? cp->steps[s].type : default_steps[s];
			const struct cfg_node *at = cp && cp->has_steps ? cp->steps[s].at : (cp ? cp->at : c->root);
			const struct cfg_node *scfg = cp && cp->has_steps ? cp->steps[s].config : NULL;
			const struct plugin_entry *e =
			        need_plugin(gw, PARLEY_KIND_STEP, PARLEY_KIND_ROUTER, type, at, "step", errs);
			if (!e)
				continue;
			char *what = str_printf("step '%s' of pipeline '%s'", type, p->name);
			size_t before = errs->n;
			loader_check_config(e, scfg, at, file, what, errs);
			if (errs->n == before)
				instance_check_config(gw->cfg.path, e, scfg, at, what, errs);
			free(what);
			parley_instance *inst = instance_new(gw, e, type, scfg, at);
			p->steps[p->n_steps++] = inst;
			gw->steps[gw->n_steps++] = inst;
		}
	}
	if (errs->n > 0) {
		gateway_close(gw);
		return -1;
	}
	return 0;
}

struct parley_instance *gateway_channel(struct gateway *gw, const char *name)
{
	for (size_t i = 0; i < gw->n_channels; i++)
		if (strcmp(gw->channels[i]->name, name) == 0)
			return gw->channels[i];
	return NULL;
}

const struct gw_pipeline *gateway_pipeline_for(struct gateway *gw, const char *channel)
{
	for (size_t i = 0; i < gw->n_pipes; i++) {
		const struct gw_pipeline *p = &gw->pipes[i];
		if (p->n_from == 0)
			return p;
		for (size_t j = 0; channel && j < p->n_from; j++)
			if (strcmp(p->from[j], channel) == 0)
				return p;
	}
	return NULL;
}

/* The pipeline committed outbound envelopes: the outbox has work (it starts after the pipeline). */
static void outbox_wake_gateway(void *arg)
{
	struct gateway *gw = arg;
	if (gw->outbox)
		outbox_wake(gw->outbox);
}

void gateway_changed(struct gateway *gw)
{
	atomic_fetch_add(&gw->epoch, 1);
	/* The other nodes sharing the store see the mark change (housekeeping) and empty their caches too. */
	char mark[32];
	ulid_new(mark);
	if (store_kv_set(gw->st, "parley", "changed", mark, strlen(mark)) == 0) {
		pthread_mutex_lock(&gw->changed_lock);
		snprintf(gw->changed_mark, sizeof(gw->changed_mark), "%s", mark);
		pthread_mutex_unlock(&gw->changed_lock);
	}
}

static void epoch_advance(void *arg)
{
	gateway_changed(arg);
}

void gateway_changed_elsewhere(struct gateway *gw)
{
	char *val = NULL;
	size_t len = 0;
	if (store_kv_get(gw->st, "parley", "changed", &val, &len) != 0)
		return;
	pthread_mutex_lock(&gw->changed_lock);
	int moved = strcmp(val, gw->changed_mark) != 0;
	if (moved)
		snprintf(gw->changed_mark, sizeof(gw->changed_mark), "%s", val);
	pthread_mutex_unlock(&gw->changed_lock);
	free(val);
	if (moved)
		atomic_fetch_add(&gw->epoch, 1);
}

/*
 * The conversation rules' parameters, configured on the identify and thread
 * steps.  A conversation spans channels, and so pipelines: one reopen
 * window and one phone-linking rule apply to all of them.
 */
static int inbox_rules_of(struct gateway *gw, struct inbox_rules *r)
{
	const struct parley_host *h = host_table();
	int have_reopen = 0, have_link = 0;
	r->reopen_ms = 7LL * 24 * 3600 * 1000;
	r->link_phone = 1;
	for (size_t i = 0; i < gw->n_steps; i++) {
		parley_instance *s = gw->steps[i];
		int64_t ms;
		int b;
		if (strcmp(s->plugin->desc->name, "thread") == 0 &&
		    h->config_duration_ms(s, "reopen_within", &ms) == 0) {
			if (have_reopen && ms != r->reopen_ms) {
				log_error(
				        "the thread steps of two pipelines give different reopen_within: conversations "
				        "span pipelines, so give them one value");
				return -1;
			}
			r->reopen_ms = ms;
			have_reopen = 1;
		}
		if (strcmp(s->plugin->desc->name, "identify") == 0 && h->config_bool(s, "link_phone", &b) == 0) {
			if (have_link && b != r->link_phone) {
				log_error(
				        "the identify steps of two pipelines give different link_phone: contacts span "
				        "pipelines, so give them one value");
				return -1;
			}
			r->link_phone = b;
			have_link = 1;
		}
	}
	return 0;
}

/*
 * SIGHUP: check the config file again, as `parley check` does.  A broken
 * file is refused with each error at its FILE:LINE:COL, and the gateway
 * goes on serving; a valid one is said to need a restart, since the running
 * gateway does not rebuild its channels and pipelines (yet): it never dies
 * of a SIGHUP.
 */
static void check_reload(struct gateway *gw)
{
	struct gateway probe;
	struct cfg_errors errs = {0};
	log_info("received SIGHUP: checking %s", gw->cfg.path ? gw->cfg.path : "the config");
	int rv = gateway_open(&probe, gw->cfg.path, &errs);
	/* Checking set the log as the new file says: the running gateway keeps its own. */
	int lvl = log_level_parse(gw->cfg.log_level);
	if (lvl >= 0)
		log_set_level(lvl);
	log_set_json(gw->cfg.log_json);
	if (rv != 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("reload refused: %s", errs.msgs[i]);
		log_error("reload refused: %zu error(s); still serving on the config the gateway started with", errs.n);
	} else {
		log_warn("%s is valid (%zu channel(s), %zu pipeline(s)); the gateway keeps serving on the config it "
		         "started with: restart it (SIGTERM drains) to apply the new one",
		         gw->cfg.path, probe.n_channels, probe.n_pipes);
		gateway_close(&probe);
	}
	cfg_errors_free(&errs);
}

int gateway_run(struct gateway *gw)
{
	char *err = NULL;
	int rc = 1;
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/*
	 * Messages, contacts and their attachments are the customers' data:
	 * whatever the caller's umask, what the gateway creates is its user's
	 * alone (the database, its -wal and -shm, attachments, ipc sockets).
	 */
	umask(077);
	int mk = path_mkdirs(gw->cfg.data_dir, 0700);
	if (mk != 0) {
		log_error("cannot create data_dir %s: %s", gw->cfg.data_dir, strerror(-mk));
		return 1;
	}
	struct stat st;
	if (stat(gw->cfg.data_dir, &st) == 0 && (st.st_mode & 077) && st.st_uid == geteuid()) {
		if (chmod(gw->cfg.data_dir, st.st_mode & 0700) == 0)
			log_warn("data_dir %s was readable by others: now mode %03o", gw->cfg.data_dir,
			         (unsigned)(st.st_mode & 0700));
	}
	struct inbox_rules rules;
	gw->metrics = metrics_new();
	/* Counters exist from the start, so dashboards see 0 rather than nothing. */
	static const char *const counters[] = {"envelopes_stored_total", "envelopes_duplicate_total",
	                                       "commit_batches_total", "commit_failures_total"};
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		metrics_add(gw->metrics, counters[i], NULL, NULL, 0);
	/* Per channel from the start, so a dashboard's rate() has a series before the first send. */
	static const char *const per_channel[] = {"webhooks_received_total", "outbound_sent_total",
	                                          "outbound_retries_total", "outbound_failed_total"};
	for (size_t c = 0; c < gw->n_channels; c++)
		for (size_t i = 0; i < sizeof(per_channel) / sizeof(per_channel[0]); i++)
			metrics_add(gw->metrics, per_channel[i], "channel", gw->channels[c]->name, 0);
	if (instance_up(&gw->reg, gw->store) != 0)
		goto out;
	gw->st = store_open(gw->store->data, gw->store->plugin->desc->store);
	if (!gw->st || inbox_rules_of(gw, &rules) != 0 || !(gw->inbox = inbox_open(gw->st, &rules, epoch_advance, gw)))
		goto out;
	if (auth_open(&gw->auth, gw->st, &gw->cfg.auth) != 0) {
		log_error("cannot start the accounts module (auth:): out of memory or bad auth.kdf_* values");
		goto out;
	}
	if (!auth_available(gw->auth))
		log_warn("store %s does not keep accounts (store ABI 1.3): logins and service tokens are refused",
		         gw->store->name);
	if (gw->bus_instance && (instance_up(&gw->reg, gw->bus_instance) != 0 ||
	                         relay_start(&gw->relay, gw, gw->bus_instance, &err) != 0)) {
		log_error("bus %s: %s", gw->bus_instance->name, err ? err : "cannot start");
		goto out;
	}
	if (bus_open(&gw->bus, gw, &err) != 0 || http_open(&gw->http, gw) != 0 || events_start(&gw->events, gw) != 0 ||
	    presence_open(&gw->presence) != 0 || api_open(&gw->api, gw) != 0) {
		log_error("%s", err ? err : "cannot open the bus");
		goto out;
	}
	for (size_t i = 0; i < gw->n_steps; i++)
		if (instance_up(&gw->reg, gw->steps[i]) != 0)
			goto out;
	for (size_t i = 0; i < gw->n_channels; i++)
		if (instance_up(&gw->reg, gw->channels[i]) != 0)
			goto out;
	if (pipeline_start(&gw->pipeline, gw, outbox_wake_gateway, gw) != 0 || outbox_start(&gw->outbox, gw) != 0 ||
	    housekeeping_start(&gw->housekeeping, gw) != 0 || queue_start(&gw->queue, gw) != 0 ||
	    broadcast_start(&gw->broadcast, gw) != 0) {
		log_error("cannot start the pipeline and outbox threads");
		goto out;
	}
	if (control_start(&gw->control, gw, &err) != 0 || http_start(gw->http, &err) != 0) {
		log_error("%s", err ? err : "cannot start");
		goto out;
	}
	log_info("parley %s serving: %s %s, publish %s, control %s, %zu channel(s), store %s", PARLEY_VERSION,
	         gw->cfg.http_tls_cert ? "https" : "http", gw->cfg.http_listen, gw->cfg.publish_listen,
	         gw->cfg.control_listen, gw->n_channels, gw->store->name);

	int sig = 0;
	for (;;) {
		sigwait(&sigs, &sig);
		if (sig != SIGHUP)
			break;
		check_reload(gw);
	}
	log_info("received %s: draining (new webhooks get 503, committed work is acknowledged)",
	         sig == SIGTERM ? "SIGTERM" : "SIGINT");
	rc = 0;
out:
	atomic_store(&gw->draining, 1);
	if (gw->bus && bus_wait_idle(gw->bus, 5000) != 0)
		log_warn("drain: %zu submission(s) still in flight after 5 s; their providers will retry",
		         bus_inflight(gw->bus));
	http_stop(gw->http);
	/* The API's workers finish what they hold (a reply waits for its commit) before the pipeline stops. */
	api_close(gw->api);
	gw->api = NULL;
	events_stop(gw->events);
	gw->events = NULL;
	queue_stop(gw->queue);
	gw->queue = NULL;
	for (size_t i = 0; i < gw->n_channels; i++)
		instance_down(gw->channels[i]);
	control_stop(gw->control);
	gw->control = NULL;
	broadcast_stop(gw->broadcast);
	gw->broadcast = NULL;
	outbox_stop(gw->outbox);
	gw->outbox = NULL;
	housekeeping_stop(gw->housekeeping);
	gw->housekeeping = NULL;
	bus_close(gw->bus);
	pipeline_join(gw->pipeline);
	gw->pipeline = NULL;
	relay_stop(gw->relay);
	instance_down(gw->bus_instance);
	free(err);
	if (rc == 0)
		log_info("stopped cleanly");
	return rc;
}

void gateway_close(struct gateway *gw)
{
	for (size_t i = 0; i < gw->n_channels; i++)
		instance_free(gw->channels[i]);
	free(gw->channels);
	for (size_t i = 0; i < gw->n_steps; i++)
		instance_free(gw->steps[i]);
	free(gw->steps);
	for (size_t i = 0; i < gw->n_pipes; i++) {
		free(gw->pipes[i].name);
		free(gw->pipes[i].steps);
	}
	free(gw->pipes);
	inbox_close(gw->inbox);
	auth_close(gw->auth);
	store_close(gw->st);
	relay_free(gw->relay);
	instance_free(gw->bus_instance);
	instance_free(gw->store);
	http_free(gw->http);
	presence_free(gw->presence);
	bus_free(gw->bus);
	metrics_free(gw->metrics);
	loader_free(&gw->reg);
	cfg_free(&gw->cfg);
	memset(gw, 0, sizeof(*gw));
}
