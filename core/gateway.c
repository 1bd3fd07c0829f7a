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
#include "kpi_gauges.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "pipeline.h"
#include "presence.h"
#include "queue.h"
#include "relay.h"
#include "reload.h"
#include "sla.h"
#include "store.h"
#include "util.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int gateway_open(struct gateway *gw, const char *config_path, struct cfg_errors *errs)
{
	memset(gw, 0, sizeof(*gw));
	pthread_mutex_init(&gw->changed_lock, NULL);
	pthread_mutex_init(&gw->topo_lock, NULL);
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
	for (size_t i = 0; i < gw->reg.n; i++)
		if (gw->reg.items[i].notice)
			log_warn("plugin %s %s", gw->reg.items[i].path, gw->reg.items[i].notice);

	struct gw_config *c = &gw->cfg;
	const char *file = c->path;
	/* The store. */
	if (c->storage.type) {
		const struct cfg_node *at = c->storage.type_at ? c->storage.type_at : cfg_map_get(c->root, "storage");
		const struct plugin_entry *e =
		        plugin_needed(&gw->reg, file, PARLEY_KIND_STORE, 0, c->storage.type, at, "storage type", errs);
		if (e) {
			loader_check_config(e, c->storage.config, c->storage.at, file, "storage", errs);
			gw->store = instance_new(gw, e, c->storage.type, c->storage.config, c->storage.at);
		}
	}
	/* The durable bus, fed from the store by core/relay.c. */
	const struct plugin_entry *be = c->bus.type ? plugin_needed(&gw->reg, file, PARLEY_KIND_BUS, 0, c->bus.type,
	                                                            c->bus.type_at, "bus type", errs)
	                                            : NULL;
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
	/* Channels and pipelines. */
	gw->topo = topology_build(gw, c, NULL, errs);
	if (errs->n > 0) {
		gateway_close(gw);
		return -1;
	}
	return 0;
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
int gateway_inbox_rules(const struct topology *t, struct inbox_rules *r, const char **why)
{
	const struct parley_host *h = host_table();
	int have_reopen = 0, have_link = 0;
	r->reopen_ms = 7LL * 24 * 3600 * 1000;
	r->link_phone = 1;
	for (size_t i = 0; i < t->n_steps; i++) {
		parley_instance *s = t->steps[i];
		int64_t ms;
		int b;
		if (strcmp(s->plugin->desc->name, "thread") == 0 &&
		    h->config_duration_ms(s, "reopen_within", &ms) == 0) {
			if (have_reopen && ms != r->reopen_ms) {
				*why = "the thread steps of two pipelines give different reopen_within: conversations "
				       "span pipelines, so give them one value";
				return -1;
			}
			r->reopen_ms = ms;
			have_reopen = 1;
		}
		if (strcmp(s->plugin->desc->name, "identify") == 0 && h->config_bool(s, "link_phone", &b) == 0) {
			if (have_link && b != r->link_phone) {
				*why = "the identify steps of two pipelines give different link_phone: contacts span "
				       "pipelines, so give them one value";
				return -1;
			}
			r->link_phone = b;
			have_link = 1;
		}
	}
	return 0;
}

void gateway_count_channels(struct gateway *gw, const struct topology *t)
{
	/* Per channel from the start, so a dashboard's rate() has a series before the first send. */
	static const char *const per_channel[] = {"webhooks_received_total", "outbound_sent_total",
	                                          "outbound_retries_total", "outbound_failed_total"};
	for (size_t c = 0; c < t->n_channels; c++)
		for (size_t i = 0; i < sizeof(per_channel) / sizeof(per_channel[0]); i++)
			metrics_add(gw->metrics, per_channel[i], "channel", t->channels[c]->name, 0);
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
	gateway_count_channels(gw, gw->topo);
	if (instance_up(&gw->reg, gw->store) != 0)
		goto out;
	gw->st = store_open(gw->store->data, gw->store->plugin->desc->store);
	const char *why = NULL;
	if (gw->st && gateway_inbox_rules(gw->topo, &rules, &why) != 0) {
		log_error("%s", why);
		goto out;
	}
	if (!gw->st || !(gw->inbox = inbox_open(gw->st, &rules, epoch_advance, gw)))
		goto out;
	inbox_set_promises(gw->inbox, gw->cfg.sla, gw->cfg.surveys);
	if ((gw->cfg.sla || gw->cfg.surveys) && !store_typed_keeps_promises(store_typed(gw->st)))
		log_warn("store %s keeps no SLA targets or surveys (store.h 1.4): sla: and surveys: do nothing",
		         gw->store->name);
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
	if (topology_up(gw, gw->topo, NULL) != 0)
		goto out;
	if (pipeline_start(&gw->pipeline, gw, outbox_wake_gateway, gw) != 0 || outbox_start(&gw->outbox, gw) != 0 ||
	    housekeeping_start(&gw->housekeeping, gw) != 0 || queue_start(&gw->queue, gw) != 0 ||
	    broadcast_start(&gw->broadcast, gw) != 0 ||
	    kpi_gauges_start(&gw->kpi_gauges, gw, gw->cfg.reports_metrics_ms) != 0) {
		log_error("cannot start the pipeline and outbox threads");
		goto out;
	}
	if (reload_start(&gw->reloader, gw) != 0 || control_start(&gw->control, gw, &err) != 0 ||
	    http_start(gw->http, &err) != 0) {
		log_error("%s", err ? err : "cannot start");
		goto out;
	}
	log_info("parley %s serving: %s %s, publish %s, control %s, %zu channel(s), store %s", PARLEY_VERSION,
	         gw->cfg.http_tls_cert ? "https" : "http", gw->cfg.http_listen, gw->cfg.publish_listen,
	         gw->cfg.control_listen, gw->topo->n_channels, gw->store->name);

	int sig = 0;
	for (;;) {
		sigwait(&sigs, &sig);
		if (sig != SIGHUP)
			break;
		/* Applied by the reload thread (core/reload.c), so that SIGTERM is heard while it drains. */
		log_info("received SIGHUP: reloading %s", gw->cfg.path ? gw->cfg.path : "the config");
		reload_request(gw->reloader, 0, NULL);
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
	/* No reload starts now; one under way has finished (its new channels are in gw->topo). */
	reload_stop(gw->reloader);
	gw->reloader = NULL;
	for (size_t i = 0; gw->topo && i < gw->topo->n_channels; i++)
		instance_down(gw->topo->channels[i]);
	control_stop(gw->control);
	gw->control = NULL;
	broadcast_stop(gw->broadcast);
	gw->broadcast = NULL;
	outbox_stop(gw->outbox);
	gw->outbox = NULL;
	housekeeping_stop(gw->housekeeping);
	gw->housekeeping = NULL;
	kpi_gauges_stop(gw->kpi_gauges); /* after http_stop: no scrape reads it now */
	gw->kpi_gauges = NULL;
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
	topology_free(gw->topo, NULL);
	for (size_t i = 0; i < gw->n_applied; i++) {
		cfg_free(gw->applied[i]);
		free(gw->applied[i]);
	}
	free(gw->applied);
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
