/* config_promises.c: the sla: and surveys: sections (see promises.h). */
#include "config.h"
#include "host.h"
#include "promises.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sla_target_name(enum sla_target t)
{
	static const char *const names[] = {"first_response", "next_response", "resolution"};
	return t < SLA_TARGETS ? names[t] : "?";
}

/* A scalar of a map, or NULL (an error when it is there but not a scalar). */
static const char *scalar(const char *file, const struct cfg_node *map, const char *key, struct cfg_errors *errs)
{
	const struct cfg_node *n = cfg_map_get(map, key);
	if (!n)
		return NULL;
	if (n->type != CFG_SCALAR) {
		cfg_errors_add(errs, file, n, "%s must be a single value", key);
		return NULL;
	}
	return n->value;
}

static int64_t duration(const char *file, const struct cfg_node *map, const char *key, int64_t dflt,
                        struct cfg_errors *errs)
{
	const char *s = scalar(file, map, key, errs);
	int64_t ms = dflt;
	char err[128];
	if (s && (cfg_parse_duration_ms(s, &ms, err) != 0 || ms < 0)) {
		cfg_errors_add(errs, file, cfg_map_get(map, key), "%s: %s", key, ms < 0 ? "must not be negative" : err);
		return dflt;
	}
	return ms;
}

/* A business_hours map into bh, its errors at n. */
static int read_hours(const char *file, const struct cfg_node *n, struct business_hours *bh, struct cfg_errors *errs)
{
	if (n->type != CFG_MAP) {
		cfg_errors_add(errs, file, n,
		               "business_hours must be {timezone, days, from, to, holidays} or a calendar name");
		return -1;
	}
	static const char *const k[] = {"timezone", "days", "from", "to", "holidays", NULL};
	cfg_check_keys(file, n, k, "business_hours", errs);
	char *text = host_config_json(n), *err = NULL;
	cJSON *j = text ? cJSON_Parse(text) : NULL;
	free(text);
	int rv = bh_parse(j, bh, &err);
	cJSON_Delete(j);
	if (rv != 0) {
		cfg_errors_add(errs, file, n, "%s", err ? err : "business_hours cannot be read");
		free(err);
	}
	return rv;
}

static void read_policy(struct gw_config *cfg, const struct cfg_node *calendars, const struct cfg_node *n,
                        struct sla_policy *p, struct cfg_errors *errs)
{
	const char *file = cfg->path;
	static const char *const k[] = {"name",       "match", "business_hours", "first_response", "next_response",
	                                "resolution", NULL};
	cfg_check_keys(file, n, k, "an sla policy", errs);
	const char *name = scalar(file, n, "name", errs);
	if (!name)
		cfg_errors_add(errs, file, n, "an sla policy needs a name (it is in the log and the events)");
	p->name = strdup(name ? name : "?");
	const struct cfg_node *m = cfg_map_get(n, "match");
	if (m && m->type != CFG_MAP)
		cfg_errors_add(errs, file, m, "match must be {team, priority, channel, label}");
	else if (m) {
		static const char *const mk[] = {"team", "priority", "channel", "label", NULL};
		cfg_check_keys(file, m, mk, "an sla policy's match", errs);
		p->team = scalar(file, m, "team", errs);
		p->priority = scalar(file, m, "priority", errs);
		p->channel = scalar(file, m, "channel", errs);
		p->label = scalar(file, m, "label", errs);
		int known = 0;
		for (size_t i = 0; p->channel && i < cfg->n_channels; i++)
			known |= cfg->channels[i].name && strcmp(cfg->channels[i].name, p->channel) == 0;
		if (p->channel && !known)
			cfg_errors_add(errs, file, cfg_map_get(m, "channel"),
			               "sla policy '%s' matches channel '%s', which is not under channels:", p->name,
			               p->channel);
	}
	const struct cfg_node *bh = cfg_map_get(n, "business_hours");
	if (bh && bh->type == CFG_SCALAR) {
		const struct cfg_node *c = cfg_map_get(calendars, bh->value);
		if (!c)
			cfg_errors_add(errs, file, bh, "no calendar '%s' under sla.calendars", bh->value);
		else
			bh = c;
	}
	if (bh && bh->type != CFG_SCALAR && read_hours(file, bh, &p->hours, errs) == 0)
		p->has_hours = 1;
	int any = 0;
	for (int t = 0; t < SLA_TARGETS; t++) {
		int64_t ms = duration(file, n, sla_target_name((enum sla_target)t), 0, errs);
		p->due_s[t] = ms / 1000;
		any |= ms > 0 || cfg_map_get(n, sla_target_name((enum sla_target)t)) != NULL;
	}
	if (!any)
		cfg_errors_add(errs, file, n,
		               "sla policy '%s' promises nothing: give first_response, next_response or resolution "
		               "(a duration of business time such as 1h)",
		               p->name);
}

static void read_sla(struct gw_config *cfg, const struct cfg_node *sla, struct cfg_errors *errs)
{
	const char *file = cfg->path;
	if (sla->type != CFG_MAP) {
		cfg_errors_add(errs, file, sla, "sla must be a mapping {warning_at, calendars, policies}");
		return;
	}
	static const char *const k[] = {"warning_at", "calendars", "policies", NULL};
	cfg_check_keys(file, sla, k, "sla", errs);
	struct sla_config *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	cfg->sla = c;
	c->warning_at = 0.8;
	const char *w = scalar(file, sla, "warning_at", errs);
	if (w) {
		char *end = NULL;
		double v = strtod(w, &end);
		if (!end || *end || !(v > 0 && v < 1))
			cfg_errors_add(errs, file, cfg_map_get(sla, "warning_at"),
			               "warning_at must be a fraction between 0 and 1, such as 0.8");
		else
			c->warning_at = v;
	}
	const struct cfg_node *cal = cfg_map_get(sla, "calendars");
	if (cal && cal->type != CFG_MAP) {
		cfg_errors_add(errs, file, cal, "calendars must map names to business hours");
		cal = NULL;
	}
	/* Every calendar is checked, also one no policy uses yet. */
	for (size_t i = 0; cal && i + 1 < cal->n; i += 2) {
		struct business_hours bh;
		if (read_hours(file, cal->items[i + 1], &bh, errs) == 0)
			bh_free(&bh);
	}
	const struct cfg_node *pol = cfg_map_get(sla, "policies");
	if (!pol || pol->type != CFG_SEQ) {
		cfg_errors_add(errs, file, pol ? pol : sla,
		               "sla needs policies: a list of {name, match, business_hours, "
		               "first_response, next_response, resolution}");
		return;
	}
	c->policies = calloc(pol->n ? pol->n : 1, sizeof(*c->policies));
	for (size_t i = 0; c->policies && i < pol->n; i++) {
		if (pol->items[i]->type != CFG_MAP) {
			cfg_errors_add(errs, file, pol->items[i], "an sla policy must be a mapping");
			continue;
		}
		read_policy(cfg, cal, pol->items[i], &c->policies[c->n++], errs);
	}
}

/* text: one string, or {lang: text}. */
static void read_texts(const char *file, const struct cfg_node *n, const char *what, struct survey_text **out,
                       size_t *nout, struct cfg_errors *errs)
{
	if (!n)
		return;
	if (n->type == CFG_SEQ) {
		cfg_errors_add(errs, file, n, "%s must be a text or {language: text}", what);
		return;
	}
	size_t count = n->type == CFG_SCALAR ? 1 : n->n / 2;
	*out = calloc(count ? count : 1, sizeof(**out));
	if (!*out)
		return;
	if (n->type == CFG_SCALAR) {
		(*out)[(*nout)++] = (struct survey_text){"", n->value};
		return;
	}
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		if (n->items[i + 1]->type != CFG_SCALAR || !n->items[i + 1]->value[0]) {
			cfg_errors_add(errs, file, n->items[i + 1], "%s for '%s' must be a non-empty text", what,
			               n->items[i]->value);
			continue;
		}
		(*out)[(*nout)++] = (struct survey_text){n->items[i]->value, n->items[i + 1]->value};
	}
}

static void read_survey(struct gw_config *cfg, const struct cfg_node *n, struct survey_rule *r, struct cfg_errors *errs)
{
	const char *file = cfg->path;
	static const char *const k[] = {"survey", "channels", "delay", "buttons", "comment_window", "text", NULL};
	cfg_check_keys(file, n, k, "a survey", errs);
	const char *s = scalar(file, n, "survey", errs);
	if (!s || (strcmp(s, "csat") != 0 && strcmp(s, "nps") != 0))
		cfg_errors_add(errs, file, s ? cfg_map_get(n, "survey") : n, "survey must be csat (1-5) or nps (0-10)");
	r->survey = s && strcmp(s, "nps") == 0 ? "nps" : "csat";
	const struct cfg_node *ch = cfg_map_get(n, "channels");
	if (ch && ch->type != CFG_SEQ)
		cfg_errors_add(errs, file, ch, "channels must be a list of channel names");
	else if (ch) {
		r->channels = calloc(ch->n ? ch->n : 1, sizeof(*r->channels));
		for (size_t i = 0; r->channels && i < ch->n; i++) {
			const struct cfg_node *c = ch->items[i];
			int known = 0;
			for (size_t j = 0; c->type == CFG_SCALAR && j < cfg->n_channels; j++)
				known |= cfg->channels[j].name && strcmp(cfg->channels[j].name, c->value) == 0;
			if (!known)
				cfg_errors_add(errs, file, c,
				               "a survey names channel '%s', which is not under channels:",
				               c->type == CFG_SCALAR ? c->value : "?");
			else
				r->channels[r->n_channels++] = c->value;
		}
	}
	r->delay_ms = duration(file, n, "delay", 0, errs);
	r->comment_window_ms = duration(file, n, "comment_window", 10 * 60 * 1000, errs);
	r->buttons = 1;
	const char *b = scalar(file, n, "buttons", errs);
	char err[128];
	if (b && cfg_parse_bool(b, &r->buttons, err) != 0)
		cfg_errors_add(errs, file, cfg_map_get(n, "buttons"), "buttons: %s", err);
	const struct cfg_node *text = cfg_map_get(n, "text");
	if (!text)
		cfg_errors_add(errs, file, n, "a survey needs text: the question, one text or {language: text}");
	read_texts(file, text, "text", &r->text, &r->n_text, errs);
}

void cfg_read_promises(struct gw_config *cfg, const struct cfg_node *root, struct cfg_errors *errs)
{
	const struct cfg_node *sla = cfg_map_get(root, "sla");
	if (sla)
		read_sla(cfg, sla, errs);
	const struct cfg_node *sv = cfg_map_get(root, "surveys");
	if (!sv)
		return;
	if (sv->type != CFG_SEQ) {
		cfg_errors_add(errs, cfg->path, sv, "surveys must be a list of {survey, channels, delay, text, ...}");
		return;
	}
	struct survey_config *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	cfg->surveys = c;
	c->rules = calloc(sv->n ? sv->n : 1, sizeof(*c->rules));
	for (size_t i = 0; c->rules && i < sv->n; i++) {
		if (sv->items[i]->type != CFG_MAP) {
			cfg_errors_add(errs, cfg->path, sv->items[i], "a survey must be a mapping");
			continue;
		}
		read_survey(cfg, sv->items[i], &c->rules[c->n++], errs);
	}
}

void cfg_free_promises(struct gw_config *cfg)
{
	struct sla_config *s = cfg->sla;
	for (size_t i = 0; s && i < s->n; i++) {
		free(s->policies[i].name);
		if (s->policies[i].has_hours)
			bh_free(&s->policies[i].hours);
	}
	if (s)
		free(s->policies);
	free(s);
	struct survey_config *v = cfg->surveys;
	for (size_t i = 0; v && i < v->n; i++) {
		free(v->rules[i].channels);
		free(v->rules[i].text);
	}
	if (v)
		free(v->rules);
	free(v);
	cfg->sla = NULL;
	cfg->surveys = NULL;
}
