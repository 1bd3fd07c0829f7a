/* provider_form.c: form and query decoding, URL encoding and base64, for provider plugins. */
#include <parley/provider.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void prov_base64(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
		             (i + 2 < n ? in[i + 2] : 0);
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}

static char *form_decode(const char *s, size_t n, size_t *out_len);

int prov_form_parse(const char *body, size_t len, struct prov_form *f)
{
	memset(f, 0, sizeof(*f));
	size_t i = 0;
	while (i < len) {
		size_t seg = 0;
		while (i + seg < len && body[i + seg] != '&')
			seg++;
		if (seg > 0) {
			size_t eq = 0;
			while (eq < seg && body[i + eq] != '=')
				eq++;
			char **nn = realloc(f->names, (f->n + 1) * sizeof(char *));
			if (nn)
				f->names = nn;
			char **nv = realloc(f->values, (f->n + 1) * sizeof(char *));
			if (nv)
				f->values = nv;
			size_t *nl = realloc(f->lens, (f->n + 1) * sizeof(size_t));
			if (nl)
				f->lens = nl;
			size_t *nnl = realloc(f->name_lens, (f->n + 1) * sizeof(size_t));
			if (nnl)
				f->name_lens = nnl;
			if (!nn || !nv || !nl || !nnl) {
				prov_form_free(f);
				return -1;
			}
			f->names[f->n] = form_decode(body + i, eq, &f->name_lens[f->n]);
			f->values[f->n] =
			        eq < seg ? form_decode(body + i + eq + 1, seg - eq - 1, &f->lens[f->n]) : strdup("");
			if (eq >= seg)
				f->lens[f->n] = 0;
			if (!f->names[f->n] || !f->values[f->n]) {
				free(f->names[f->n]);
				free(f->values[f->n]);
				prov_form_free(f);
				return -1;
			}
			f->n++;
		}
		i += seg + 1;
	}
	return 0;
}

const char *prov_form_get(const struct prov_form *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->names[i], name) == 0)
			return f->values[i];
	return NULL;
}

int prov_form_check(const struct parley_host *h, const struct prov_form *f, char *why, size_t why_len)
{
	for (size_t i = 0; i < f->n; i++) {
		/* The reason goes into a JSON answer: a name is quoted only when it is text, and never cut in a
		 * character. */
		char name[96];
		size_t nl = f->name_lens[i];
		if (h->text_check("a parameter name", f->names[i], nl, why, why_len) != 0)
			return PARLEY_EINVAL;
		if (nl > 64) {
			nl = 64;
			while (nl > 0 && ((unsigned char)f->names[i][nl] & 0xc0) == 0x80)
				nl--;
		}
		snprintf(name, sizeof(name), "parameter '%.*s'", (int)nl, f->names[i]);
		if (h->text_check(name, f->values[i], f->lens[i], why, why_len) != 0)
			return PARLEY_EINVAL;
	}
	return 0;
}

void prov_form_free(struct prov_form *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->names[i]);
		free(f->values[i]);
	}
	free(f->names);
	free(f->values);
	free(f->lens);
	free(f->name_lens);
	memset(f, 0, sizeof(*f));
}

char *prov_urlencode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;
	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

static char *form_decode(const char *v, size_t vl, size_t *out_len)
{
	char *out = malloc(vl + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < vl; i++) {
		if (v[i] == '+') {
			*o++ = ' ';
		} else if (v[i] == '%' && i + 2 < vl && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
			*o++ = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
			i += 2;
		} else {
			*o++ = v[i];
		}
	}
	*o = '\0';
	if (out_len)
		*out_len = (size_t)(o - out);
	return out;
}

char *prov_query_get(const char *query, const char *name)
{
	size_t nl = strlen(name);
	const char *p = query;
	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t seg = amp ? (size_t)(amp - p) : strlen(p);
		if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t vl;
			char *v = form_decode(p + nl + 1, seg - nl - 1, &vl);
			if (v && strlen(v) != vl) {
				/* A %00 would cut the value short: treat it as absent. */
				free(v);
				return NULL;
			}
			return v;
		}
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}
