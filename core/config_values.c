/*
 * config_values.c: the typed scalars of a config (integers, booleans,
 * sizes, durations) and the section reader's helpers that read one value
 * of a section, each error at its FILE:LINE:COL (config_reader.h).
 */
#include "config.h"
#include "config_reader.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int cfg_parse_int(const char *s, int64_t *out, char *err)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end) {
		snprintf(err, 128, "'%s' is not an integer", s);
		return -1;
	}
	*out = v;
	return 0;
}

int cfg_parse_bool(const char *s, int *out, char *err)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	snprintf(err, 128, "'%s' is not a boolean: write true or false", s);
	return -1;
}

int cfg_parse_size(const char *s, uint64_t *out, char *err)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0) {
		snprintf(err, 128, "'%s' is not a size: write e.g. 512, 64k, 1MiB", s);
		return -1;
	}
	while (*end == ' ')
		end++;
	uint64_t mul = 1;
	char unit = (char)tolower((unsigned char)*end);
	if (unit == 'k')
		mul = 1024;
	else if (unit == 'm')
		mul = 1024 * 1024;
	else if (unit == 'g')
		mul = 1024ull * 1024 * 1024;
	else if (unit != '\0' && unit != 'b') {
		snprintf(err, 128, "'%s' has an unknown size unit: use k, M or G", s);
		return -1;
	}
	if (unit && unit != 'b') {
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
	} else if (unit == 'b') {
		end++;
	}
	if (*end) {
		snprintf(err, 128, "'%s' is not a size: write e.g. 512, 64k, 1MiB", s);
		return -1;
	}
	/* Also false for NaN; the bound keeps the cast defined. */
	if (!(v >= 0 && v * (double)mul < 9.2e18)) {
		snprintf(err, 128, "'%s' is not a size this machine can hold", s);
		return -1;
	}
	*out = (uint64_t)(v * (double)mul);
	return 0;
}

int cfg_parse_duration_ms(const char *s, int64_t *out, char *err)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0) {
		snprintf(err, 128, "'%s' is not a duration: write e.g. 250ms, 5s, 10m, 2h, 7d", s);
		return -1;
	}
	double mul;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "m") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else if (strcmp(end, "d") == 0)
		mul = 86400000;
	else {
		snprintf(err, 128, "'%s' has an unknown duration unit: use ms, s, m, h or d", s);
		return -1;
	}
	/* A century at most: enough for any timeout, and the cast below stays defined. */
	if (!(v * mul <= 100.0 * 365 * 86400000)) {
		snprintf(err, 128, "'%s' is longer than a century", s);
		return -1;
	}
	*out = (int64_t)(v * mul);
	return 0;
}

const struct cfg_node *want_scalar(struct reader *r, const struct cfg_node *n, const char *what)
{
	if (!n)
		return NULL;
	if (n->type != CFG_SCALAR) {
		cfg_errors_add(r->errs, r->file, n, "%s must be a single value, not a %s", what,
		               n->type == CFG_MAP ? "mapping" : "list");
		return NULL;
	}
	return n;
}

void read_str(struct reader *r, const struct cfg_node *map, const char *key, char **dst)
{
	const struct cfg_node *n = want_scalar(r, cfg_map_get(map, key), key);
	if (n) {
		free(*dst);
		*dst = strdup(n->value);
	}
}

/*
 * 1 when an nng listen URL can be reached by others: any transport but an
 * ipc:// file (which the gateway makes 0600) or inproc://, unless it listens
 * on loopback.  nng takes schemes in any case and has many tcp variants
 * (tcp4, ws6, tls+tcp, ...), so only what is known to be private passes;
 * abstract:// sockets have no file permissions at all.
 */
int listen_is_remote(const char *url)
{
	const char *sep = strstr(url, "://");
	if (!sep)
		return 1;
	size_t sl = (size_t)(sep - url);
	if ((sl == 3 && strncasecmp(url, "ipc", 3) == 0) || (sl == 6 && strncasecmp(url, "inproc", 6) == 0))
		return 0;
	if (sl == 8 && strncasecmp(url, "abstract", 8) == 0)
		return 1;
	const char *host = sep + 3;
	size_t n = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":/");
	if ((n == 9 && strncasecmp(host, "localhost", 9) == 0) || (n == 5 && strncmp(host, "[::1]", 5) == 0))
		return 0;
	if (n >= 4 && strncmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") >= n)
		return 0;
	return 1;
}

void read_size(struct reader *r, const struct cfg_node *map, const char *key, uint64_t *dst)
{
	const struct cfg_node *n = want_scalar(r, cfg_map_get(map, key), key);
	char err[128];
	if (n && cfg_parse_size(n->value, dst, err) != 0)
		cfg_errors_add(r->errs, r->file, n, "%s: %s", key, err);
}

void read_duration(struct reader *r, const struct cfg_node *map, const char *key, int64_t *dst)
{
	const struct cfg_node *n = want_scalar(r, cfg_map_get(map, key), key);
	char err[128];
	if (n && cfg_parse_duration_ms(n->value, dst, err) != 0)
		cfg_errors_add(r->errs, r->file, n, "%s: %s", key, err);
}

void read_bool(struct reader *r, const struct cfg_node *map, const char *key, int *dst)
{
	const struct cfg_node *n = want_scalar(r, cfg_map_get(map, key), key);
	char err[128];
	if (n && cfg_parse_bool(n->value, dst, err) != 0)
		cfg_errors_add(r->errs, r->file, n, "%s: %s", key, err);
}

void read_int(struct reader *r, const struct cfg_node *map, const char *key, int64_t min, int64_t max, int64_t *dst)
{
	const struct cfg_node *n = want_scalar(r, cfg_map_get(map, key), key);
	char err[128];
	int64_t v;
	if (!n)
		return;
	if (cfg_parse_int(n->value, &v, err) != 0)
		cfg_errors_add(r->errs, r->file, n, "%s: %s", key, err);
	else if (v < min || v > max)
		cfg_errors_add(r->errs, r->file, n, "%s: %lld is out of range %lld..%lld", key, (long long)v,
		               (long long)min, (long long)max);
	else
		*dst = v;
}

const struct cfg_node *want_map(struct reader *r, const struct cfg_node *n, const char *what)
{
	if (!n)
		return NULL;
	if (n->type != CFG_MAP) {
		cfg_errors_add(r->errs, r->file, n, "%s must be a mapping (key: value)", what);
		return NULL;
	}
	return n;
}

int read_str_list(struct reader *r, const struct cfg_node *n, const char *what, char ***out, size_t *nout)
{
	if (!n)
		return 0;
	if (n->type == CFG_SCALAR) {
		*out = calloc(1, sizeof(char *));
		(*out)[0] = strdup(n->value);
		*nout = 1;
		return 0;
	}
	if (n->type != CFG_SEQ) {
		cfg_errors_add(r->errs, r->file, n, "%s must be a list", what);
		return -1;
	}
	*out = calloc(n->n ? n->n : 1, sizeof(char *));
	for (size_t i = 0; i < n->n; i++) {
		const struct cfg_node *it = want_scalar(r, n->items[i], what);
		if (it)
			(*out)[(*nout)++] = strdup(it->value);
	}
	return 0;
}
