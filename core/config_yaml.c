/*
 * config_yaml.c: YAML text to a tree of cfg_node with line and column,
 * and ${ENV} / ${ENV:-default} substitution in scalars.
 */
#include "config.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void cfg_errors_add(struct cfg_errors *e, const char *file, const struct cfg_node *at, const char *fmt, ...)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_printf(&sb, "%s:%d:%d: ", file ? file : "<config>", at ? at->line : 1, at ? at->col : 1);
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	/*
	 * One error, one line of UTF-8, whatever the config quoted: tools read
	 * `parley check` line by line.  Control characters become spaces, and a
	 * byte that does not start a valid character (a quote cut short, a file
	 * in another encoding) becomes '?'.
	 */
	for (size_t i = 0; i < sb.len;) {
		unsigned char c = (unsigned char)sb.buf[i];
		if (c < 0x20 || c == 0x7f) {
			sb.buf[i++] = ' ';
			continue;
		}
		size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (c >= 0x80 && (i + n > sb.len || !utf8_valid(sb.buf + i, n))) {
			sb.buf[i++] = '?';
			continue;
		}
		i += n;
	}
	char **nm = realloc(e->msgs, (e->n + 1) * sizeof(*nm));
	if (!nm) {
		sb_free(&sb);
		return;
	}
	e->msgs = nm;
	e->msgs[e->n++] = sb_detach(&sb);
}

void cfg_errors_free(struct cfg_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->n = 0;
}

void cfg_node_free(struct cfg_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		cfg_node_free(n->items[i]);
	free(n->items);
	free(n->value);
	free(n);
}

static struct cfg_node *node_new(enum cfg_node_type type, const yaml_mark_t *m)
{
	struct cfg_node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->type = type;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	return n;
}

static int node_push(struct cfg_node *parent, struct cfg_node *child)
{
	struct cfg_node **ni = realloc(parent->items, (parent->n + 1) * sizeof(*ni));
	if (!ni)
		return -1;
	parent->items = ni;
	parent->items[parent->n++] = child;
	return 0;
}

/*
 * Substitute ${NAME} and ${NAME:-default}; "$${" stays a literal "${".
 * Returns a malloc'd string, or NULL with an error reported.
 */
static char *substitute_env(const char *file, const struct cfg_node *at, const char *in, struct cfg_errors *errs)
{
	if (!strchr(in, '$'))
		return strdup(in);
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "");
	const char *p = in;
	while (*p) {
		if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
			sb_adds(&sb, "${");
			p += 3;
			continue;
		}
		if (p[0] != '$' || p[1] != '{') {
			sb_add(&sb, p, 1);
			p++;
			continue;
		}
		const char *end = strchr(p + 2, '}');
		if (!end) {
			cfg_errors_add(errs, file, at, "unterminated '${' in \"%s\": write ${NAME} or ${NAME:-default}",
			               in);
			sb_free(&sb);
			return NULL;
		}
		char *expr = strndup(p + 2, (size_t)(end - p - 2));
		char *def = strstr(expr, ":-");
		if (def) {
			*def = '\0';
			def += 2;
		}
		const char *val = getenv(expr);
		if (val && (val[0] || !def)) {
			sb_adds(&sb, val);
		} else if (def) {
			sb_adds(&sb, def);
		} else {
			cfg_errors_add(errs, file, at,
			               "environment variable %s is not set: export it, or write ${%s:-default}", expr,
			               expr);
			free(expr);
			sb_free(&sb);
			return NULL;
		}
		free(expr);
		p = end + 1;
	}
	return sb_detach(&sb);
}

struct cfg_node *cfg_parse(const char *file, const char *text, size_t len, struct cfg_errors *errs)
{
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		return NULL;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

	struct cfg_node *stack[64];
	int depth = 0;
	struct cfg_node *root = NULL;
	int failed = 0, done = 0;

	while (!done && !failed) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			struct cfg_node at = {.line = (int)parser.problem_mark.line + 1,
			                      .col = (int)parser.problem_mark.column + 1};
			cfg_errors_add(errs, file, &at, "YAML syntax: %s%s%s",
			               parser.problem ? parser.problem : "error", parser.context ? " " : "",
			               parser.context ? parser.context : "");
			failed = 1;
			break;
		}
		struct cfg_node *n = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_ALIAS_EVENT: {
			struct cfg_node at = {.line = (int)ev.start_mark.line + 1,
			                      .col = (int)ev.start_mark.column + 1};
			cfg_errors_add(errs, file, &at, "YAML aliases (*name) are not supported: repeat the value");
			failed = 1;
			break;
		}
		case YAML_SCALAR_EVENT:
			n = node_new(CFG_SCALAR, &ev.start_mark);
			if (n) {
				n->value = substitute_env(file, n, (const char *)ev.data.scalar.value, errs);
				if (!n->value)
					failed = 1;
			}
			break;
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			n = node_new(ev.type == YAML_MAPPING_START_EVENT ? CFG_MAP : CFG_SEQ, &ev.start_mark);
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		if (n) {
			if (depth > 0) {
				node_push(stack[depth - 1], n);
			} else if (!root) {
				root = n;
			} else {
				cfg_errors_add(errs, file, n, "only one YAML document is allowed in a config file");
				cfg_node_free(n);
				n = NULL;
				failed = 1;
			}
			if (n && n->type != CFG_SCALAR) {
				if (depth >= 63) {
					cfg_errors_add(errs, file, n, "nesting is too deep");
					failed = 1;
				} else {
					stack[depth++] = n;
				}
			}
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	if (failed) {
		cfg_node_free(root);
		return NULL;
	}
	if (!root) {
		/* An empty file is an empty map: every default applies. */
		yaml_mark_t m = {0, 0, 0};
		root = node_new(CFG_MAP, &m);
	}
	/* Duplicate keys are mistakes that YAML silently allows. */
	struct cfg_node *todo[256];
	size_t nt = 0;
	todo[nt++] = root;
	while (nt > 0) {
		struct cfg_node *c = todo[--nt];
		if (c->type == CFG_MAP) {
			for (size_t i = 0; i + 1 < c->n; i += 2) {
				for (size_t j = 0; j < i; j += 2) {
					if (c->items[i]->type == CFG_SCALAR && c->items[j]->type == CFG_SCALAR &&
					    strcmp(c->items[i]->value, c->items[j]->value) == 0)
						cfg_errors_add(errs, file, c->items[i],
						               "duplicate key '%s' (first at line %d)",
						               c->items[i]->value, c->items[j]->line);
				}
			}
		}
		for (size_t i = 0; i < c->n && nt < 256; i++)
			if (c->items[i]->type != CFG_SCALAR)
				todo[nt++] = c->items[i];
	}
	return root;
}

const struct cfg_node *cfg_map_get(const struct cfg_node *map, const char *key)
{
	if (!map || map->type != CFG_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (map->items[i]->type == CFG_SCALAR && strcmp(map->items[i]->value, key) == 0)
			return map->items[i + 1];
	return NULL;
}

const char *cfg_suggest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	int bestd = 3;
	size_t wl = strlen(word);
	for (size_t i = 0; i < n; i++) {
		int d = str_distance(word, candidates[i]);
		int limit = wl <= 4 ? 1 : (wl <= 8 ? 2 : 3);
		if (d <= limit && d < bestd) {
			bestd = d;
			best = candidates[i];
		}
	}
	return best;
}

void cfg_check_keys(const char *file, const struct cfg_node *map, const char *const *allowed, const char *what,
                    struct cfg_errors *errs)
{
	if (!map || map->type != CFG_MAP)
		return;
	size_t na = 0;
	while (allowed[na])
		na++;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct cfg_node *k = map->items[i];
		if (k->type != CFG_SCALAR) {
			cfg_errors_add(errs, file, k, "keys in %s must be plain names", what);
			continue;
		}
		size_t j;
		for (j = 0; j < na; j++)
			if (strcmp(k->value, allowed[j]) == 0)
				break;
		if (j < na)
			continue;
		const char *s = cfg_suggest(k->value, allowed, na);
		struct strbuf list;
		sb_init(&list);
		for (j = 0; j < na; j++)
			sb_printf(&list, "%s%s", j ? ", " : "", allowed[j]);
		if (s)
			cfg_errors_add(errs, file, k, "unknown key '%s' in %s: did you mean '%s'?", k->value, what, s);
		else
			cfg_errors_add(errs, file, k, "unknown key '%s' in %s (known keys: %s)", k->value, what,
			               list.buf ? list.buf : "none");
		sb_free(&list);
	}
}

int cfg_node_equal(const struct cfg_node *a, const struct cfg_node *b)
{
	if (!a || !b)
		return a == b;
	if (a->type != b->type || a->n != b->n)
		return 0;
	if (a->type == CFG_SCALAR)
		return strcmp(a->value ? a->value : "", b->value ? b->value : "") == 0;
	for (size_t i = 0; i < a->n; i++)
		if (!cfg_node_equal(a->items[i], b->items[i]))
			return 0;
	return 1;
}
