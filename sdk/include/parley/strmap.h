/*
 * strmap.h: a small string-to-string map (open addressing, linear probing)
 * for plugins that remember decisions between the pipeline's stages.  Not
 * thread-safe: the caller locks.  Header-only so any plugin can use it.
 */
#ifndef PARLEY_STRMAP_H
#define PARLEY_STRMAP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct strmap {
	char **keys, **vals;
	size_t cap, n;
};

static inline uint64_t strmap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static inline size_t strmap_slot(const struct strmap *m, const char *key)
{
	size_t i = strmap_hash(key) & (m->cap - 1);
	while (m->keys[i] && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static inline const char *strmap_get(const struct strmap *m, const char *key)
{
	if (!m->cap)
		return NULL;
	size_t i = strmap_slot(m, key);
	return m->keys[i] ? m->vals[i] : NULL;
}

static inline int strmap_put(struct strmap *m, const char *key, const char *val)
{
	if ((m->n + 1) * 2 > m->cap) {
		struct strmap g = {NULL, NULL, m->cap ? m->cap * 2 : 64, 0};
		g.keys = calloc(g.cap, sizeof(char *));
		g.vals = calloc(g.cap, sizeof(char *));
		if (!g.keys || !g.vals) {
			free(g.keys);
			free(g.vals);
			return -1;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->keys[i])
				continue;
			size_t j = strmap_slot(&g, m->keys[i]);
			g.keys[j] = m->keys[i];
			g.vals[j] = m->vals[i];
			g.n++;
		}
		free(m->keys);
		free(m->vals);
		*m = g;
	}
	size_t i = strmap_slot(m, key);
	if (m->keys[i]) {
		free(m->vals[i]);
	} else {
		m->keys[i] = strdup(key);
		m->n++;
	}
	m->vals[i] = strdup(val);
	return 0;
}

static inline void strmap_del(struct strmap *m, const char *key)
{
	if (!m->cap)
		return;
	size_t i = strmap_slot(m, key);
	if (!m->keys[i])
		return;
	free(m->keys[i]);
	free(m->vals[i]);
	m->keys[i] = m->vals[i] = NULL;
	m->n--;
	/* Re-place the rest of the probe run so lookups still find it. */
	for (size_t j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
		char *k = m->keys[j], *v = m->vals[j];
		m->keys[j] = m->vals[j] = NULL;
		size_t t = strmap_slot(m, k);
		m->keys[t] = k;
		m->vals[t] = v;
	}
}

static inline void strmap_free(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->keys[i]);
		free(m->vals[i]);
	}
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

#endif
