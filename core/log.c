/* log.c: timestamped log lines on stderr. */
#include "log.h"
#include "util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static atomic_int level = 2, json;
static _Thread_local const char *request;
static const char *const names[] = {"error", "warn", "info", "debug"};

void log_set_level(int l)
{
	atomic_store(&level, l);
}

void log_set_json(int on)
{
	atomic_store(&json, on);
}

void log_set_request(const char *request_id)
{
	request = request_id;
}

const char *log_request(void)
{
	return request;
}

/* s as a JSON string's content into out (quotes, backslashes and control characters escaped). */
static size_t json_escape(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	for (; *s && o + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return o;
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
	char ts[64], line[4096];
	time_format_ms(time_now_ms(), ts);
	const char *name = names[l < 0 ? 0 : (l > 3 ? 3 : l)];
	if (atomic_load(&json)) {
		char msg[1024], emsg[2048], ewho[256];
		vsnprintf(msg, sizeof(msg), fmt, ap);
		json_escape(emsg, sizeof(emsg), msg);
		json_escape(ewho, sizeof(ewho), who ? who : "");
		/* Messages are UTF-8 or were cleaned before: a line a JSON reader takes. */
		snprintf(line, sizeof(line),
		         "{\"ts\":\"%.63s\",\"level\":\"%s\",\"who\":\"%.255s\",\"msg\":\"%.2047s\"%s%.40s%s}", ts,
		         name, ewho, emsg, request ? ",\"request_id\":\"" : "", request ? request : "",
		         request ? "\"" : "");
	} else {
		int n = snprintf(line, sizeof(line), "%s %-5s [%s] ", ts, name, who);
		if (n < 0)
			return;
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		if (request) {
			size_t len = strlen(line);
			snprintf(line + len, sizeof(line) - len, " (request %s)", request);
		}
	}
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
