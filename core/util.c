/* util.c: growable buffers, time, paths, named threads and small string helpers. */
#define _GNU_SOURCE /* pthread_setname_np */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void sb_init(struct strbuf *sb)
{
	sb->buf = NULL;
	sb->len = 0;
	sb->cap = 0;
}

void sb_free(struct strbuf *sb)
{
	free(sb->buf);
	sb_init(sb);
}

int sb_reserve(struct strbuf *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->cap)
		return 0;
	size_t cap = sb->cap ? sb->cap : 256;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	char *nb = realloc(sb->buf, cap);
	if (!nb)
		return -1;
	sb->buf = nb;
	sb->cap = cap;
	return 0;
}

int sb_add(struct strbuf *sb, const void *data, size_t n)
{
	if (sb_reserve(sb, n) != 0)
		return -1;
	memcpy(sb->buf + sb->len, data, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
	return 0;
}

int sb_adds(struct strbuf *sb, const char *s)
{
	return sb_add(sb, s, strlen(s));
}

int sb_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0 || sb_reserve(sb, (size_t)n) != 0)
		return -1;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
	return 0;
}

int sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rv = sb_vprintf(sb, fmt, ap);
	va_end(ap);
	return rv;
}

char *sb_detach(struct strbuf *sb)
{
	char *b = sb->buf;
	if (!b)
		b = calloc(1, 1);
	sb_init(sb);
	return b;
}

char *str_printf(const char *fmt, ...)
{
	struct strbuf sb;
	sb_init(&sb);
	va_list ap;
	va_start(ap, fmt);
	int rv = sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	if (rv != 0) {
		sb_free(&sb);
		return NULL;
	}
	return sb_detach(&sb);
}

char *str_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/*
 * Test only: PARLEY_TEST_CLOCK_FILE names a file holding a signed number of
 * milliseconds added to the wall clock, so an end-to-end test can move the
 * gateway to Friday 17:30 in Seoul and on to Monday without waiting.  Read
 * again at most every 20 ms; never set it in production.
 */
static const char *test_clock_path;
static void test_clock_look(void)
{
	test_clock_path = getenv("PARLEY_TEST_CLOCK_FILE");
}

static int64_t test_clock_offset(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static int64_t offset, read_at = -1;
	pthread_once(&once, test_clock_look);
	if (!test_clock_path)
		return 0;
	pthread_mutex_lock(&lock);
	int64_t mono = time_mono_ms();
	if (read_at < 0 || mono - read_at >= 20) {
		FILE *f = fopen(test_clock_path, "r");
		long long v = 0;
		if (f && fscanf(f, "%lld", &v) == 1)
			offset = v;
		if (f)
			fclose(f);
		read_at = mono;
	}
	int64_t o = offset;
	pthread_mutex_unlock(&lock);
	return o;
}

int64_t time_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + test_clock_offset();
}

int64_t clock_now_ms(void)
{
	const char *path = getenv("PARLEY_TEST_CLOCK");
	if (!path || !path[0])
		return time_now_ms();
	char buf[80] = "";
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	int64_t ms = strchr(buf, 'T') ? time_parse_ms(buf) : strtoll(buf, NULL, 10);
	return ms > 0 ? ms : time_now_ms();
}

int64_t time_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_format_ms(int64_t ms, char out[64])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

char *path_resolve(const char *dir, const char *path)
{
	if (!path)
		return NULL;
	if (path[0] == '/' || !dir || !dir[0] || strcmp(dir, ".") == 0)
		return strdup(path);
	return str_printf("%s/%s", dir, path);
}

char *path_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int path_mkdirs(const char *path, unsigned mode)
{
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST) {
			int e = errno;
			free(p);
			return -e;
		}
		*s = '/';
	}
	int rv = 0;
	if (mkdir(p, mode) != 0 && errno != EEXIST)
		rv = -errno;
	free(p);
	return rv;
}

char *path_self_dir(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return path_dirname(buf);
}

int str_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return 64;
	int row[64];
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int prev = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int cur = row[j];
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int best = prev + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

int utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		/* Eight ASCII bytes at a time: webhook bodies are mostly ASCII and each is checked twice. */
		uint64_t word;
		while (i + 8 <= n && (memcpy(&word, p + i, 8), (word & 0x8080808080808080ull) == 0))
			i += 8;
		if (i >= n)
			break;
		unsigned c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t need;
		unsigned min;
		if ((c & 0xe0) == 0xc0) {
			need = 1;
			min = 0x80;
			c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2;
			min = 0x800;
			c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3;
			min = 0x10000;
			c &= 0x07;
		} else {
			return 0;
		}
		if (i + need >= n)
			return 0;
		for (size_t k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			c = (c << 6) | (p[i + k] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

int64_t time_parse_ms(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	                 &tm.tm_sec) != 6)
		return 0;
	int ms = 0;
	const char *dot = strchr(s, '.');
	if (dot) {
		/* Milliseconds: the first three digits of the fraction. */
		int digits = 0;
		for (const char *p = dot + 1; isdigit((unsigned char)*p) && digits < 3; p++, digits++)
			ms = ms * 10 + (*p - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

int thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
	int rv = pthread_create(t, NULL, fn, arg);
	if (rv == 0)
		pthread_setname_np(*t, name); /* only a label: a failure changes nothing */
	return rv;
}
