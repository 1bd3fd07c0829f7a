/* log.h: the gateway's log, one line per event on stderr. */
#ifndef PARLEY_CORE_LOG_H
#define PARLEY_CORE_LOG_H

#include <stdarg.h>

void log_set_level(int level);
/* 1: one JSON object per line ({ts, level, who, msg, request_id?}); 0: text (the default). */
void log_set_json(int on);
/*
 * The request this thread works for now (a webhook's id, NULL for none):
 * its log lines carry it.  The id is borrowed until it is set again.
 */
void log_set_request(const char *request_id);
const char *log_request(void);
/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *s);
void log_msg(int level, const char *who, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void log_vmsg(int level, const char *who, const char *fmt, va_list ap);

#define log_error(...) log_msg(0, "core", __VA_ARGS__)
#define log_warn(...)  log_msg(1, "core", __VA_ARGS__)
#define log_info(...)  log_msg(2, "core", __VA_ARGS__)
#define log_debug(...) log_msg(3, "core", __VA_ARGS__)

#endif
