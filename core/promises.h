/*
 * promises.h: what the gateway promises customers and asks them, as
 * configured: SLA policies (sla:) and surveys after a resolve (surveys:).
 * Parsed by config_promises.c into the gateway's config; used by the
 * conversation core's hooks (sla.c, survey.c).
 *
 *   sla:
 *     warning_at: 0.8                  # sla.warning at this fraction of a target's business time
 *     calendars:
 *       seoul: { timezone: Asia/Seoul, days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00",
 *                holidays: ["2026-12-25"] }
 *     policies:                         # the first that matches a conversation is its policy
 *       - name: vip
 *         match: { team: support, priority: high, channel: wa-main, label: vip }
 *         business_hours: seoul         # a calendar's name, or {timezone, ...}; absent: around the clock
 *         first_response: 1h
 *         next_response: 30m
 *         resolution: 1d
 *
 *   surveys:
 *     - survey: csat                    # csat (1-5) or nps (0-10)
 *       channels: [wa-main, tg]         # absent: every channel
 *       delay: 10m                      # after the resolve
 *       buttons: true                   # offer the scores as buttons (channels without buttons show the text)
 *       comment_window: 10m             # the first text after the answer is kept as its comment (10m)
 *       text: { en: "How did we do? 1 (bad) to 5 (great)", ko: "..." }   # or one text
 *       # the text in the contact's attribute `language`, else the first one given
 *
 * Threads: read-only once loaded.
 */
#ifndef PARLEY_CORE_PROMISES_H
#define PARLEY_CORE_PROMISES_H

#include "business_hours.h"

#include <stddef.h>
#include <stdint.h>

struct cfg_node;
struct cfg_errors;
struct gw_config;

enum sla_target { SLA_FIRST_RESPONSE = 0, SLA_NEXT_RESPONSE = 1, SLA_RESOLUTION = 2, SLA_TARGETS = 3 };

struct sla_policy {
	char *name;
	const char *team, *priority, *channel, *label; /* match (borrowed from the config tree); NULL: any */
	struct business_hours hours;
	int has_hours;              /* 0: counted around the clock */
	int64_t due_s[SLA_TARGETS]; /* business seconds per target; 0: no promise */
};

struct sla_config {
	double warning_at;
	struct sla_policy *policies;
	size_t n;
};

/* One language's text of a survey. */
struct survey_text {
	const char *lang, *text; /* borrowed from the config tree */
};

struct survey_rule {
	const char *survey; /* "csat" or "nps" */
	const char **channels;
	size_t n_channels; /* 0: every channel */
	int64_t delay_ms, comment_window_ms;
	int buttons;
	struct survey_text *text;
	size_t n_text;
};

struct survey_config {
	struct survey_rule *rules;
	size_t n;
};

/* Read the sla: and surveys: sections of root into cfg (errors FILE:LINE:COL into errs). */
void cfg_read_promises(struct gw_config *cfg, const struct cfg_node *root, struct cfg_errors *errs);
void cfg_free_promises(struct gw_config *cfg);

/* The target's name in the log and the events: first_response, next_response, resolution. */
const char *sla_target_name(enum sla_target t);

#endif
