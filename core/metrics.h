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
/*
 * Count one observation of seconds in the histogram parley_<name>{<label>="<value>"}
 * (buckets from 1 ms to 10 s, with _sum and _count); help says what it measures.
 */
void metrics_observe(struct metrics *m, const char *name, const char *help, const char *label, const char *value,
                     double seconds);
void metrics_render(struct metrics *m, struct strbuf *out);
/* Append a label value as the text format wants it: backslash, double quote and newline escaped. */
void metrics_label_value(struct strbuf *out, const char *v);
/* Append a sample value in the fewest digits (15 to 17) that read back as exactly v. */
void metrics_number(struct strbuf *out, double v);

#endif
