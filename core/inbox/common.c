/* common.c: the small helpers the conversation core's files share (see internal.h). */
#include "internal.h"
#include "util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int arena_add(struct arena *a, char *s)
{
	if (!s)
		return -1;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		char **ns = realloc(a->s, cap * sizeof(*ns));
		if (!ns) {
			free(s);
			a->cap = (size_t)-1; /* marks the failure for arena_ok */
			return -1;
		}
		a->s = ns;
		a->cap = cap;
	}
	a->s[a->n++] = s;
	return 0;
}

const char *arena_dup(struct arena *a, const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		a->cap = (size_t)-1;
	return arena_add(a, d) == 0 ? d : NULL;
}

const char *arena_json(struct arena *a, cJSON *v)
{
	char *s = v ? cJSON_PrintUnformatted(v) : NULL;
	cJSON_Delete(v);
	if (!s)
		a->cap = (size_t)-1;
	return arena_add(a, s) == 0 ? s : NULL;
}

int array_room(void *arr, size_t n, size_t *cap, size_t size)
{
	void **p = arr;
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	void *q = realloc(*p, c * size);
	if (!q)
		return PARLEY_ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

int arena_ok(const struct arena *a)
{
	return a->cap != (size_t)-1;
}

void arena_free(struct arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->s[i]);
	free(a->s);
	memset(a, 0, sizeof(*a));
}

int inbox_waiting(const struct parley_conversation_rec *c)
{
	return c->team && c->team[0] && (!c->assignee || !c->assignee[0]) &&
	       (!c->status || same(c->status, "open") || same(c->status, "pending"));
}

void inbox_now(char out[64])
{
	time_format_ms(clock_now_ms(), out);
}

const char *event_data(struct arena *a, ...)
{
	cJSON *o = cJSON_CreateObject();
	va_list ap;
	va_start(ap, a);
	const char *k;
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		if (v)
			cJSON_AddStringToObject(o, k, v);
	}
	va_end(ap);
	return arena_json(a, o);
}

int inbox_reply(char **reply, const char *key, cJSON *value)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, key, value ? value : cJSON_CreateNull());
	*reply = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return *reply ? 0 : PARLEY_ENOMEM;
}

int inbox_fail(char **reply, int rv, const char *msg)
{
	*reply = strdup(msg);
	return rv;
}

cJSON *inbox_conversation_json(const struct parley_conversation_rec *c)
{
	cJSON *o = cJSON_CreateObject();
	const struct {
		const char *k, *v;
	} f[] = {{"id", c->id},
	         {"contact_id", c->contact_id},
	         {"status", c->status},
	         {"assignee", c->assignee},
	         {"team", c->team},
	         {"priority", c->priority},
	         {"last_channel", c->last_channel},
	         {"snoozed_until", c->snoozed_until},
	         {"first_inbound_at", c->first_inbound_at},
	         {"last_inbound_at", c->last_inbound_at},
	         {"first_response_at", c->first_response_at},
	         {"resolved_at", c->resolved_at},
	         {"created_at", c->created_at},
	         {"updated_at", c->updated_at}};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (f[i].v)
			cJSON_AddStringToObject(o, f[i].k, f[i].v);
		if (i == 5) {
			cJSON *l = cJSON_Parse(c->labels ? c->labels : "[]");
			cJSON_AddItemToObject(o, "labels", l ? l : cJSON_CreateArray());
		}
	}
	cJSON_AddNumberToObject(o, "resolutions", (double)c->resolutions);
	return o;
}
