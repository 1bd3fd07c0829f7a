/* cli_stats.c: how `parley stats` prints the KPIs the gateway answers (reports.kpis). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

static const cJSON *member(const cJSON *o, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
	return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

/* A duration in ms as 1h02m03s (or "-"), into out. */
static const char *dur(const cJSON *v, char out[32])
{
	if (!cJSON_IsNumber(v))
		return "-";
	long long s = (long long)(v->valuedouble / 1000);
	if (s >= 3600)
		snprintf(out, 32, "%lldh%02lldm%02llds", s / 3600, s / 60 % 60, s % 60);
	else if (s >= 60)
		snprintf(out, 32, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(out, 32, "%.1fs", v->valuedouble / 1000);
	return out;
}

static const char *pct(const cJSON *v, char out[32])
{
	if (!cJSON_IsNumber(v))
		return "-";
	snprintf(out, 32, "%.1f", v->valuedouble);
	return out;
}

static void line(const char *key, const cJSON *f)
{
	char a[32], b[32], c[32], d[32], e[32], g[32], h[32], i[32], j[32], k[32];
	printf("%-20.20s %6.0f %9s %9s %9s %9s %6s %7s %6s %6s %7s %9s\n", key,
	       cJSON_GetNumberValue(member(f, "conversations_opened", NULL)),
	       dur(member(f, "first_response", "median_ms"), a), dur(member(f, "first_response", "p90_ms"), b),
	       dur(member(f, "resolution", "median_ms"), c), dur(member(f, "resolution", "p90_ms"), d),
	       pct(member(f, "fcr", "rate"), e), pct(member(f, "resolutions", "reopen_rate"), g),
	       pct(member(f, "csat", "score"), h), pct(member(f, "nps", "score"), i),
	       pct(member(f, "bot", "containment_rate"), j), dur(member(f, "queue", "median_ms"), k));
}

void cli_stats_print(const cJSON *reply)
{
	const char *by = cJSON_GetStringValue(member(reply, "by", NULL));
	printf("KPIs from %s to %s by %s (docs/kpis.md; business time and SLA gaps: --json)\n",
	       cJSON_GetStringValue(member(reply, "from", NULL)), cJSON_GetStringValue(member(reply, "to", NULL)),
	       by ? by : "?");
	printf("%-20s %6s %9s %9s %9s %9s %6s %7s %6s %6s %7s %9s\n", by ? by : "KEY", "OPENED", "FRT-MED", "FRT-P90",
	       "TTR-MED", "TTR-P90", "FCR%", "REOPEN%", "CSAT%", "NPS", "BOT%", "QUEUE-MED");
	const cJSON *g;
	cJSON_ArrayForEach(g, member(reply, "groups", NULL))
	{
		const char *key = cJSON_GetStringValue(member(g, "key", NULL));
		line(key ? key : "(none)", g);
	}
	line("TOTAL", member(reply, "total", NULL));
}
