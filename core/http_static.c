/*
 * http_static.c: the agent inbox's files under /inbox/ (see http_static.h).
 * The files are small and few, so each request reads its file: an upgrade
 * of the installed files shows at the next reload, and nothing is cached in
 * memory.  A path is served only when every segment is a plain name: a
 * request cannot name a file outside the directory, encoded or not.
 */
#include "http_static.h"
#include "util.h"

#include <parley/parley.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#ifndef PARLEY_WEB_DIR
#define PARLEY_WEB_DIR "/usr/local/share/parley"
#endif
#ifndef PARLEY_WEB_RELDIR
#define PARLEY_WEB_RELDIR "../share/parley"
#endif

#define PREFIX   "/inbox"
#define MAX_FILE (4u << 20)

struct http_static {
	char *dir; /* holds inbox/, or NULL */
};

/* Every page gets these: only its own scripts and styles, never framed, never sniffed. */
#define SECURITY_HEADERS                                                                                               \
	"Content-Security-Policy",                                                                                     \
	        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "                \
	        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",  \
	        "X-Content-Type-Options", "nosniff", "X-Frame-Options", "DENY", "Referrer-Policy", "no-referrer"

static int is_dir(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int http_static_open(struct http_static **out)
{
	struct http_static *st = calloc(1, sizeof(*st));
	if (!st)
		return PARLEY_ENOMEM;
	char *self = path_self_dir();
	char *cand[3] = {self ? str_printf("%s/" PARLEY_WEB_RELDIR, self) : NULL, strdup(PARLEY_WEB_DIR),
#ifdef PARLEY_WEB_SRCDIR
	                 strdup(PARLEY_WEB_SRCDIR)
#else
	                 NULL
#endif
	};
	free(self);
	for (int i = 0; i < 3; i++) {
		char *inbox = cand[i] ? str_printf("%s/inbox", cand[i]) : NULL;
		if (!st->dir && inbox && is_dir(inbox)) {
			st->dir = cand[i];
			cand[i] = NULL;
		}
		free(inbox);
		free(cand[i]);
	}
	*out = st;
	return 0;
}

const char *http_static_dir(const struct http_static *st)
{
	return st ? st->dir : NULL;
}

void http_static_free(struct http_static *st)
{
	if (!st)
		return;
	free(st->dir);
	free(st);
}

/* 1 when rel is a/b/c.ext of plain names: letters, digits, '-', '_', '.', never starting with '.'. */
static int plain_path(const char *rel)
{
	int seg_start = 1;
	if (!*rel)
		return 0;
	for (const char *p = rel; *p; p++) {
		char c = *p;
		if (c == '/') {
			if (seg_start)
				return 0; /* an empty segment: "//" or a leading '/' */
			seg_start = 1;
			continue;
		}
		if (seg_start && c == '.')
			return 0; /* "..", ".git", hidden files */
		seg_start = 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return 0; /* '%' too: nothing encoded is ever served */
	}
	return !seg_start;
}

static const char *content_type(const char *rel)
{
	static const struct {
		const char *ext, *type;
	} types[] = {{".html", "text/html; charset=utf-8"},
	             {".js", "text/javascript; charset=utf-8"},
	             {".css", "text/css; charset=utf-8"},
	             {".json", "application/json"},
	             {".svg", "image/svg+xml"},
	             {".png", "image/png"},
	             {".ico", "image/x-icon"},
	             {".woff2", "font/woff2"},
	             {".txt", "text/plain; charset=utf-8"}};
	const char *dot = strrchr(rel, '.');
	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

static void refuse(parley_http_request *req, int status, const char *message)
{
	static const char *const headers[] = {SECURITY_HEADERS, "Cache-Control", "no-store", NULL};
	char *body = http_error_json(message);
	http_server_respond_with(req, status, "application/json", headers, body, body ? strlen(body) : 0);
	free(body);
}

static void serve_file(void *arg, parley_http_request *req)
{
	struct http_static *st = arg;
	const char *path = http_server_path(req);
	const char *rel = path[sizeof(PREFIX)] ? path + sizeof(PREFIX) : "index.html";
	const char *type = content_type(rel);
	if (!plain_path(rel) || !type) {
		refuse(req, 404, "no such file under /inbox/");
		return;
	}
	char *file = st->dir ? str_printf("%s/inbox/%s", st->dir, rel) : NULL;
	FILE *f = file ? fopen(file, "rb") : NULL;
	free(file);
	struct stat sb;
	if (!f || fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || (size_t)sb.st_size > MAX_FILE) {
		if (f)
			fclose(f);
		refuse(req, 404,
		       st->dir ? "no such file under /inbox/"
		               : "the inbox's files are not installed (share/parley/inbox beside the binary)");
		return;
	}
	size_t len = (size_t)sb.st_size;
	char *body = malloc(len ? len : 1);
	if (!body || fread(body, 1, len, f) != len) {
		free(body);
		fclose(f);
		refuse(req, 500, "the file could not be read");
		return;
	}
	fclose(f);
	/* no-cache: the browser revalidates (If-Modified-Since), so an upgrade is seen at the next load. */
	char modified[64];
	struct tm tm;
	time_t mtime = sb.st_mtime;
	strftime(modified, sizeof(modified), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&mtime, &tm));
	const char *since = http_server_header(req, "If-Modified-Since");
	int fresh = since && strcmp(since, modified) == 0;
	const char *const headers[] = {SECURITY_HEADERS, "Cache-Control", "no-cache", "Last-Modified", modified, NULL};
	http_server_respond_with(req, fresh ? 304 : 200, type, headers, fresh ? "" : body, fresh ? 0 : len);
	free(body);
}

/* /inbox to /inbox/, so the pages' relative addresses resolve under it. */
static void redirect(void *arg, parley_http_request *req)
{
	(void)arg;
	static const char *const headers[] = {"Location", PREFIX "/", SECURITY_HEADERS, NULL};
	http_server_respond_with(req, 301, "text/plain; charset=utf-8", headers, "see /inbox/\n", 12);
}

int http_static_route(struct http_static *st, parley_http_request *req, const char *path)
{
	size_t n = sizeof(PREFIX) - 1;
	if (strncmp(path, PREFIX, n) != 0 || (path[n] != '/' && path[n] != '\0'))
		return 0;
	const char *method = http_server_method(req);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		http_server_refuse(req, 405, "method not allowed: use GET");
		return 1;
	}
	/* HEAD too: libmicrohttpd sends the head of the GET answer without its body. */
	http_server_serve(req, path[n] == '\0' ? redirect : serve_file, st, 0, 0);
	return 1;
}
