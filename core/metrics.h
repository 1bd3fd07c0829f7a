/* metrics.h: counters rendered in the Prometheus text format at /metrics. */
#ifndef PARLEY_CORE_METRICS_H
#define PARLEY_CORE_METRICS_H

#include <stdint.h>

struct strbuf;
struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
/* Add delta to parley_<name>{<label>="<value>"}; label may be NULL. */
void metrics_add(struct metrics *m, const char *name, const char *label, const char *value, int64_t delta);
int64_t metrics_get(struct metrics *m, const char *name, const char *label, const char *value);
void metrics_render(struct metrics *m, struct strbuf *out);

#endif
