/* log.c: timestamped log lines on stderr. */
#include "log.h"
#include "util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static atomic_int level = 2;
static const char *const names[] = {"error", "warn", "info", "debug"};

void log_set_level(int l)
{
	atomic_store(&level, l);
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

void log_vmsg(int l, const char *who, const char *fmt, va_list ap)
{
	if (l > atomic_load(&level))
		return;
	char ts[64], line[2048];
	time_format_ms(time_now_ms(), ts);
	int n = snprintf(line, sizeof(line), "%s %-5s [%s] ", ts, names[l < 0 ? 0 : (l > 3 ? 3 : l)], who);
	if (n < 0)
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One fputs per line keeps lines whole across threads. */
	size_t len = strlen(line);
	if (len < sizeof(line) - 1) {
		line[len] = '\n';
		line[len + 1] = '\0';
	}
	fputs(line, stderr);
}

void log_msg(int l, const char *who, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(l, who, fmt, ap);
	va_end(ap);
}
