/*
 * gateway.h: the running gateway and the objects it wires together.
 *
 * A message enters through http.c (a webhook routed to a channel plugin),
 * is submitted to bus.c (batched onto an nng PUSH socket), processed by
 * pipeline.c (steps, group commit to the store plugin, publish on nng PUB)
 * and acknowledged back to the channel.  Replies enter through control.c
 * (message.send), are committed as queued outbound envelopes and sent by
 * outbox.c through the channel plugin's channel_send().
 */
#ifndef PARLEY_CORE_GATEWAY_H
#define PARLEY_CORE_GATEWAY_H

#include "config.h"
#include "loader.h"
#include "topology.h"

#include <parley/parley.h>
#include <pthread.h>
#include <stdatomic.h>

struct metrics;
struct bus;
struct pipeline;
struct http;
struct control;
struct api;
struct events;
struct queue;
struct outbox;
struct housekeeping;
struct kpi_gauges;
struct relay;
struct reloader;
struct auth;
struct gateway;

struct parley_instance {
	struct gateway *gw;
	char *name;       /* channel name, or plugin name */
	const char *what; /* "channel 'hooks'", for messages */
	const struct plugin_entry *plugin;
	const struct cfg_node *config;
	const struct cfg_node *at;
	void *data;
	int created, started;
	pthread_mutex_t send_lock; /* one channel_send at a time */
	/* Outbound token bucket (outbox thread only): rate per second, 0 = none. */
	double rate, tokens;
	int64_t tokens_at_ms;
	int64_t slot_ms;        /* wall clock: the next free send slot for a deferred message */
	int64_t lease_until_ms; /* wall clock: when this node's last send's hold on the channel's slot lapses */
	/* What the plugin said of itself (parley_host.health), under health_lock: down 1 and why. */
	pthread_mutex_t health_lock;
	int down;
	char why[256];
	atomic_int inflight; /* its submissions not yet committed (a reload waits for them to stop it) */
};

struct gateway {
	struct gw_config cfg;
	struct plugin_registry reg;
	struct metrics *metrics;
	struct parley_instance *store;
	struct store *st;    /* the one door to the store (store.h) */
	struct inbox *inbox; /* the conversation core (inbox/inbox.h) */
	struct auth *auth;   /* accounts, sessions, tokens (auth.h); opened after the store, closed before it */
	/* The channels and pipelines served now (topology.h: take a reference to use them); under topo_lock. */
	struct topology *topo;
	pthread_mutex_t topo_lock;
	/* The configs reloads applied (core/reload.c): kept, since instances borrow their nodes. */
	struct gw_config **applied;
	size_t n_applied;
	struct reloader *reloader;
	struct bus *bus;
	struct pipeline *pipeline;
	struct http *http;
	struct control *control;
	struct api *api;           /* the HTTP API under /api/v1 (api.h) */
	struct events *events;     /* the live events of the API's subscribers (events.h) */
	struct queue *queue;       /* the team queues, offered to the routers (queue.h) */
	struct presence *presence; /* who views and types where, on this node (presence.h) */
	struct outbox *outbox;
	struct broadcast *broadcast; /* broadcasts' feeder (broadcast.h) */
	struct housekeeping *housekeeping;
	struct kpi_gauges *kpi_gauges; /* /metrics' parley_kpi_* figures, computed on their own thread (kpi_gauges.h) */
	struct parley_instance *bus_instance; /* bus: (or NULL), relayed by relay */
	struct relay *relay;
	atomic_int draining;
	/* Advanced by control ops and housekeeping that change contacts or conversations. */
	atomic_uint_fast64_t epoch;
	/* The last change mark seen in the store (another node's change moves it). */
	pthread_mutex_t changed_lock;
	char changed_mark[32];
};

/*
 * Contacts, conversations or plugin state changed other than by the
 * pipeline: advance the epoch (the steps' caches look again) and mark the
 * store, so other nodes sharing it do the same.
 */
void gateway_changed(struct gateway *gw);
/* Advance the epoch when another node marked a change (called periodically). */
void gateway_changed_elsewhere(struct gateway *gw);

struct inbox_rules;
/*
 * The conversation rules' parameters, configured on the identify and
 * thread steps of t.  A conversation spans channels, and so pipelines: one
 * reopen window and one phone-linking rule apply to all of them; -1 with
 * why when two pipelines disagree.
 */
int gateway_inbox_rules(const struct topology *t, struct inbox_rules *r, const char **why);
/* Give t's channels their per-channel counters at 0, so dashboards see a series from the start. */
void gateway_count_channels(struct gateway *gw, const struct topology *t);

/* Text for a PARLEY_E* code. */
const char *parley_strerror(int err);

/*
 * Load the config and the plugins and check everything `parley check`
 * checks.  On failure returns -1 with errors in errs; gw is then freed.
 */
int gateway_open(struct gateway *gw, const char *config_path, struct cfg_errors *errs);
/* Create instances, start everything, serve until SIGTERM/SIGINT, drain. */
int gateway_run(struct gateway *gw);
void gateway_close(struct gateway *gw);

#endif
