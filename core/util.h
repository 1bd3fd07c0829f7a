/* util.h: small helpers shared by the core: growable buffers, time, paths. */
#ifndef PARLEY_CORE_UTIL_H
#define PARLEY_CORE_UTIL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer, always NUL-terminated when len > 0 or after sb_putc. */
struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
int sb_reserve(struct strbuf *sb, size_t extra);
int sb_add(struct strbuf *sb, const void *data, size_t n);
int sb_adds(struct strbuf *sb, const char *s);
int sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sb_vprintf(struct strbuf *sb, const char *fmt, va_list ap);
/* Hand the buffer to the caller (malloc'd, NUL-terminated) and reset sb. */
char *sb_detach(struct strbuf *sb);

/* malloc'd printf; NULL on allocation failure. */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *str_dup(const char *s);

/* Milliseconds since the Unix epoch (wall clock) and a monotonic clock. */
int64_t time_now_ms(void);
int64_t time_mono_ms(void);
/*
 * The history clock: the time stamped on messages (received_at) and on the
 * conversation history (the `at` of conversation_events).  It is
 * time_now_ms(), except under tests: when PARLEY_TEST_CLOCK names a file,
 * each call reads the time from it (RFC 3339 or milliseconds since 1970), so
 * a test steers what the KPIs measure.  For tests only: timers, retries,
 * leases and sessions keep the real clock.
 */
int64_t clock_now_ms(void);
/* RFC 3339 UTC with milliseconds: 2026-11-22T10:11:12.345Z. */
void time_format_ms(int64_t ms, char out[64]);
/* Milliseconds since 1970 of such a time (the fraction optional); 0 when it is not one. */
int64_t time_parse_ms(const char *rfc3339);

/* Join dir and path unless path is absolute; malloc'd. */
char *path_resolve(const char *dir, const char *path);
/* Directory part of path (malloc'd); "." when path has none. */
char *path_dirname(const char *path);
/* mkdir -p; 0 or -errno. */
int path_mkdirs(const char *path, unsigned mode);
/* Directory holding the running executable (malloc'd), or NULL. */
char *path_self_dir(void);

/* Levenshtein distance, capped at 64 for long strings. */
int str_distance(const char *a, const char *b);

/* 1 when s[0..n) is valid UTF-8. */
int utf8_valid(const char *s, size_t n);

/*
 * pthread_create, and name the thread (at most 15 characters, "parley:commit")
 * as top -H, ps -L, perf and gdb show it.  pthread_create's result.
 */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);

#endif
