/*
 * topology.c: the channels and pipelines of a config, made into instances
 * checked against the plugins, and the reference count that lets a reload
 * replace them while webhooks, sends and batches are using them.
 */
#include "topology.h"
#include "config.h"
#include "gateway.h"
#include "instance.h"
#include "isolate.h"
#include "loader.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Steps used when the config has no pipelines: section. */
static const char *const default_steps[] = {"dedupe", NULL};

static void list_names(const struct plugin_registry *reg, int kind1, int kind2, const char ***names, size_t *n)
{
	*names = calloc(reg->n + 1, sizeof(char *));
	*n = 0;
	for (size_t i = 0; *names && i < reg->n; i++)
		if (reg->items[i].desc->kind == kind1 || reg->items[i].desc->kind == kind2)
			(*names)[(*n)++] = reg->items[i].desc->name;
}

const struct plugin_entry *plugin_needed(const struct plugin_registry *reg, const char *file, int kind1, int kind2,
                                         const char *name, const struct cfg_node *at, const char *what,
                                         struct cfg_errors *errs)
{
	const struct plugin_entry *e = loader_find(reg, kind1, name);
	if (!e && kind2)
		e = loader_find(reg, kind2, name);
	if (e)
		return e;
	const char **names;
	size_t n;
	list_names(reg, kind1, kind2, &names, &n);
	const char *s = names ? cfg_suggest(name, names, n) : NULL;
	struct strbuf known;
	sb_init(&known);
	for (size_t i = 0; i < n; i++)
		sb_printf(&known, "%s%s", i ? ", " : "", names[i]);
	const char *why = "";
	for (size_t i = 0; i < reg->n_refused; i++) {
		const char *base = strrchr(reg->refused[i].path, '/');
		if (base && strstr(base, name))
			why = " (a plugin file of that name was refused: see `parley plugins`)";
	}
	if (s)
		cfg_errors_add(errs, file, at, "unknown %s '%s': did you mean '%s'?%s", what, name, s, why);
	else
		cfg_errors_add(errs, file, at, "unknown %s '%s' (known: %s)%s", what, name,
		               known.len ? known.buf : "none", why);
	sb_free(&known);
	free(names);
	return NULL;
}

/* The running channel an unchanged entry of the new config keeps, or NULL. */
static parley_instance *same_channel(const struct topology *from, const struct cfg_instance *ci)
{
	parley_instance *old = from ? topology_channel(from, ci->name) : NULL;
	return old && cfg_node_equal(old->at, ci->at) ? old : NULL;
}

static const struct gw_pipeline *same_pipeline(const struct topology *from, const struct cfg_pipeline *cp)
{
	for (size_t i = 0; from && i < from->n_pipes; i++) {
		const struct gw_pipeline *p = &from->pipes[i];
		if (cp ? p->at && strcmp(p->name, cp->name) == 0 && cfg_node_equal(p->at, cp->at) : !p->at)
			return p;
	}
	return NULL;
}

/* A new instance of the plugin `type` for a channel or a step, checked; NULL with the reason in errs. */
static parley_instance *new_instance(struct gateway *gw, const char *file, int kind1, int kind2, const char *type,
                                     const char *name, const struct cfg_node *config, const struct cfg_node *at,
                                     const struct cfg_node *type_at, const char *what, struct cfg_errors *errs)
{
	const struct plugin_entry *e = plugin_needed(&gw->reg, file, kind1, kind2, type, type_at,
	                                             kind1 == PARLEY_KIND_CHANNEL ? "channel type" : "step", errs);
	if (!e)
		return NULL;
	size_t before = errs->n;
	loader_check_config(e, config, at, file, what, errs);
	if (errs->n == before)
		instance_check_config(file, e, config, at, what, errs);
	return instance_new(gw, e, name, config, at);
}

static int build_channels(struct gateway *gw, const struct gw_config *c, const struct topology *from,
                          struct topology *t, struct cfg_errors *errs)
{
	t->channels = calloc(c->n_channels + 1, sizeof(*t->channels));
	if (!t->channels)
		return -1;
	for (size_t i = 0; i < c->n_channels; i++) {
		const struct cfg_instance *ci = &c->channels[i];
		if (!ci->type || !ci->name)
			continue;
		parley_instance *inst = same_channel(from, ci);
		if (!inst) {
			char *what = str_printf("channel '%s'", ci->name);
			inst = new_instance(gw, c->path, PARLEY_KIND_CHANNEL, 0, ci->type, ci->name, ci->config, ci->at,
			                    ci->type_at, what ? what : "channel", errs);
			free(what);
			if (!inst)
				continue;
			inst->rate = ci->rate_limit;
			inst->tokens = ci->rate_limit > 1 ? ci->rate_limit : 1;
			if (ci->isolate && isolate_wrap(inst, c->path, ci->isolate_at, errs) != 0) {
				instance_free(inst); /* the error is in errs: the topology is not built */
				continue;
			}
		}
		t->channels[t->n_channels++] = inst;
	}
	return 0;
}

static int build_pipelines(struct gateway *gw, const struct gw_config *c, const struct topology *from,
                           struct topology *t, struct cfg_errors *errs)
{
	size_t np = c->n_pipelines ? c->n_pipelines : 1, total = 0;
	for (size_t i = 0; i < c->n_pipelines; i++)
		total += c->pipelines[i].has_steps ? c->pipelines[i].n_steps : 1;
	t->pipes = calloc(np, sizeof(*t->pipes));
	t->steps = calloc(total + 2, sizeof(*t->steps));
	if (!t->pipes || !t->steps)
		return -1;
	t->n_pipes = np;
	for (size_t i = 0; i < np; i++) {
		struct gw_pipeline *p = &t->pipes[i];
		const struct cfg_pipeline *cp = c->n_pipelines ? &c->pipelines[i] : NULL;
		const struct gw_pipeline *old = same_pipeline(from, cp);
		size_t ns = cp && cp->has_steps ? cp->n_steps : 1;
		p->name = strdup(cp ? cp->name : "default");
		p->from = cp ? cp->from : NULL;
		p->n_from = cp ? cp->n_from : 0;
		p->at = cp ? cp->at : NULL;
		p->steps = calloc(ns + 1, sizeof(*p->steps));
		if (!p->name || !p->steps)
			return -1;
		if (old) {
			/* Unchanged: the same step instances, already running. */
			p->kept = 1;
			for (size_t s = 0; s < old->n_steps; s++)
				p->steps[p->n_steps++] = t->steps[t->n_steps++] = old->steps[s];
			continue;
		}
		for (size_t s = 0; s < ns; s++) {
			const char *type = cp && cp->has_steps ? cp->steps[s].type : default_steps[s];
			const struct cfg_node *at = cp && cp->has_steps ? cp->steps[s].at : (cp ? cp->at : c->root);
			const struct cfg_node *scfg = cp && cp->has_steps ? cp->steps[s].config : NULL;
			char *what = str_printf("step '%s' of pipeline '%s'", type, p->name);
			parley_instance *inst = new_instance(gw, c->path, PARLEY_KIND_STEP, PARLEY_KIND_ROUTER, type,
			                                     type, scfg, at, at, what ? what : "step", errs);
			free(what);
			if (inst && cp && cp->has_steps && cp->steps[s].isolate &&
			    isolate_wrap(inst, c->path, cp->steps[s].isolate_at, errs) != 0) {
				instance_free(inst);
				continue;
			}
			if (inst)
				p->steps[p->n_steps++] = t->steps[t->n_steps++] = inst;
		}
	}
	return 0;
}

struct topology *topology_build(struct gateway *gw, const struct gw_config *cfg, const struct topology *from,
                                struct cfg_errors *errs)
{
	struct topology *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	atomic_init(&t->refs, 1);
	t->canned = cfg->canned;
	size_t before = errs->n;
	if (build_channels(gw, cfg, from, t, errs) != 0 || build_pipelines(gw, cfg, from, t, errs) != 0 ||
	    errs->n > before) {
		if (errs->n == before)
			cfg_errors_add(errs, cfg->path, cfg->root, "out of memory building the channels and pipelines");
		topology_free(t, from);
		return NULL;
	}
	return t;
}

int topology_up(struct gateway *gw, struct topology *t, const struct topology *running)
{
	/* Steps before channels: a channel's first webhook finds its pipeline ready. */
	for (size_t i = 0; i < t->n_steps; i++)
		if (!topology_has(running, t->steps[i]) && !t->steps[i]->started &&
		    instance_up(&gw->reg, t->steps[i]) != 0)
			return -1;
	for (size_t i = 0; i < t->n_channels; i++)
		if (!topology_has(running, t->channels[i]) && instance_up(&gw->reg, t->channels[i]) != 0)
			return -1;
	return 0;
}

int topology_has(const struct topology *t, const parley_instance *inst)
{
	for (size_t i = 0; t && i < t->n_channels; i++)
		if (t->channels[i] == inst)
			return 1;
	for (size_t i = 0; t && i < t->n_steps; i++)
		if (t->steps[i] == inst)
			return 1;
	return 0;
}

void topology_free(struct topology *t, const struct topology *keep)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_channels; i++)
		if (!topology_has(keep, t->channels[i]))
			instance_free(t->channels[i]);
	for (size_t i = 0; i < t->n_steps; i++)
		if (!topology_has(keep, t->steps[i]))
			instance_free(t->steps[i]);
	for (size_t i = 0; i < t->n_pipes; i++) {
		free(t->pipes[i].name);
		free(t->pipes[i].steps);
	}
	free(t->pipes);
	free(t->steps);
	free(t->channels);
	free(t);
}

struct topology *topology_get(struct gateway *gw)
{
	pthread_mutex_lock(&gw->topo_lock);
	struct topology *t = gw->topo;
	if (t)
		atomic_fetch_add(&t->refs, 1);
	pthread_mutex_unlock(&gw->topo_lock);
	return t;
}

void topology_put(struct topology *t)
{
	if (t)
		atomic_fetch_sub(&t->refs, 1);
}

struct parley_instance *topology_channel(const struct topology *t, const char *name)
{
	for (size_t i = 0; t && name && i < t->n_channels; i++)
		if (strcmp(t->channels[i]->name, name) == 0)
			return t->channels[i];
	return NULL;
}

const struct gw_pipeline *topology_pipeline_for(const struct topology *t, const char *channel)
{
	for (size_t i = 0; t && i < t->n_pipes; i++) {
		const struct gw_pipeline *p = &t->pipes[i];
		if (p->n_from == 0)
			return p;
		for (size_t j = 0; channel && j < p->n_from; j++)
			if (strcmp(p->from[j], channel) == 0)
				return p;
	}
	return NULL;
}
