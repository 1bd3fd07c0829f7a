/*
 * instance.c: the life of one configured instance (a channel, a step, the
 * store, the bus): made from its plugin and config, checked, created and
 * started, stopped, destroyed.  The gateway decides the order.
 */
#include "instance.h"
#include "config.h"
#include "gateway.h"
#include "host.h"
#include "http.h"
#include "log.h"
#include "util.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The plugin's own check of a config, when its descriptor has one. */
void instance_check_config(const char *file, const struct plugin_entry *e, const struct cfg_node *config,
                           const struct cfg_node *at, const char *what, struct cfg_errors *errs)
{
	const struct parley_plugin *d = e->desc;
	if (d->struct_size < offsetof(struct parley_plugin, check_config) + sizeof(d->check_config) || !d->check_config)
		return;
	char *json = config ? host_config_json(config) : strdup("{}");
	char *err = NULL;
	if (d->check_config(host_table(), json, &err) != 0)
		cfg_errors_add(errs, file, config ? config : at, "%s: %s", what,
		               err ? err : "the plugin refused this config");
	free(err);
	free(json);
}

parley_instance *instance_new(struct gateway *gw, const struct plugin_entry *e, const char *name,
                              const struct cfg_node *config, const struct cfg_node *at)
{
	parley_instance *inst = calloc(1, sizeof(*inst));
	inst->gw = gw;
	inst->name = strdup(name);
	inst->plugin = e;
	inst->config = config;
	inst->at = at;
	if (e->desc->kind == PARLEY_KIND_CHANNEL)
		inst->what = str_printf("channel %s", name);
	else
		inst->what = str_printf("%s %s", loader_kind_name(e->desc->kind), name);
	pthread_mutex_init(&inst->send_lock, NULL);
	pthread_mutex_init(&inst->health_lock, NULL);
	return inst;
}

int instance_up(const struct plugin_registry *reg, parley_instance *inst)
{
	char *err = NULL;
	const struct parley_plugin *d = inst->plugin->desc;
	if (loader_init_plugin(reg, inst->plugin, host_table(), &err) != 0) {
		log_error("%s: plugin %s failed to initialize: %s", inst->what, inst->plugin->path,
		          err ? err : "no reason given");
		free(err);
		return -1;
	}
	if (d->instance_create(host_table(), inst, inst->plugin->plugin_data, &inst->data, &err) != 0) {
		log_error("%s: cannot be created: %s", inst->what, err ? err : "no reason given");
		free(err);
		return -1;
	}
	inst->created = 1;
	if (d->instance_start && d->instance_start(inst->data, &err) != 0) {
		log_error("%s: cannot start: %s", inst->what, err ? err : "no reason given");
		free(err);
		return -1;
	}
	inst->started = 1;
	return 0;
}

void instance_down(parley_instance *inst)
{
	if (!inst)
		return;
	if (inst->started && inst->plugin->desc->instance_stop)
		inst->plugin->desc->instance_stop(inst->data);
	inst->started = 0;
}

void instance_free(parley_instance *inst)
{
	if (!inst)
		return;
	instance_down(inst);
	if (inst->gw)
		http_routes_drop(inst->gw->http, inst);
	if (inst->created && inst->plugin->desc->instance_destroy)
		inst->plugin->desc->instance_destroy(inst->data);
	pthread_mutex_destroy(&inst->send_lock);
	pthread_mutex_destroy(&inst->health_lock);
	free(inst->name);
	free((char *)inst->what);
	free(inst);
}
