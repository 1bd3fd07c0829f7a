/*
 * broadcast_ops.c: broadcast.create, broadcast.status, broadcast.cancel and
 * broadcasts.list (admin ops; see broadcast.h), and the segment grammar:
 *
 *   segment := term ("," term)*        every term must match (and)
 *   term    := "all"                   every contact
 *            | "label:" NAME           a conversation of the contact has the label
 *            | "attr:" KEY "=" VALUE   the contact's attribute KEY is VALUE (as text: true, 42, gold)
 *            | "attr:" KEY             the attribute is present and neither false nor null
 *            | "channel:" NAME         the contact wrote on the channel NAME
 *
 * `segment` is one string or a list of them (the CLI's repeated
 * --segment); all their terms are and-ed.
 */
#include "broadcast_ops.h"
#include "broadcast.h"
#include "bus.h"
#include "crypto.h"
#include "envelope.h"
#include "gateway.h"
#include "ops_handlers.h"
#include "store.h"
#include "util.h"
#include "window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void broadcast_message_id(const char *broadcast_id, const char *contact_id, char out[27])
{
	static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	unsigned char h[32];
	struct strbuf sb;
	sb_init(&sb);
	sb_printf(&sb, "%s/%s", broadcast_id, contact_id);
	crypto_sha256(sb.buf ? sb.buf : "", sb.len, h);
	sb_free(&sb);
	/* The broadcast's own ULID time (its first 10 characters), so its messages sort by its creation. */
	size_t bl = strlen(broadcast_id);
	for (size_t i = 0; i < 10; i++)
		out[i] = i < bl ? broadcast_id[i] : '0';
	for (size_t i = 0; i < 16; i++) {
		size_t bit = i * 5;
		unsigned v = ((unsigned)h[bit / 8] << 8 | h[bit / 8 + 1]) >> (11 - bit % 8);
		out[10 + i] = alphabet[v & 31];
	}
	out[26] = '\0';
}

/* Room for one more element of size in *arr (n used of *cap); 0 or -1. */
static int grow(void *arr, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 16;
	void *nv = realloc(*(void **)arr, nc * size);
	if (!nv)
		return -1;
	*(void **)arr = nv;
	*cap = nc;
	return 0;
}

/* ---------------------------------------------------------- segments */

struct segment {
	struct parley_segment_term *t;
	size_t n, cap;
	char *text; /* the terms point into it */
};

static void segment_free(struct segment *sg)
{
	free(sg->t);
	free(sg->text);
}

/* Parse the terms of one segment string into sg; NULL, or the refusal. */
static char *segment_add(struct segment *sg, char *s)
{
	for (char *term = s; term;) {
		char *comma = strchr(term, ',');
		if (comma)
			*comma = '\0';
		while (*term == ' ')
			term++;
		size_t tl = strlen(term);
		while (tl && term[tl - 1] == ' ')
			term[--tl] = '\0';
		if (strcmp(term, "all") != 0) {
			if (grow(&sg->t, sg->n, &sg->cap, sizeof(*sg->t)) != 0)
				return ops_error("unavailable", "out of memory");
			struct parley_segment_term *t = &sg->t[sg->n];
			char *colon = strchr(term, ':');
			if (colon)
				*colon = '\0';
			t->kind = term;
			t->key = colon ? colon + 1 : NULL;
			t->value = NULL;
			int ok = colon && t->key[0] &&
			         (strcmp(term, "label") == 0 || strcmp(term, "channel") == 0 ||
			          strcmp(term, "attr") == 0);
			if (ok && strcmp(term, "attr") == 0) {
				char *eq = strchr(colon + 1, '=');
				if (eq) {
					*eq = '\0';
					t->value = eq + 1;
				}
				ok = t->key[0] != '\0';
			}
			if (!ok) {
				if (colon)
					*colon = ':';
				char *m = str_printf("segment term '%s' is not one of all, label:NAME, attr:KEY=VALUE, "
				                     "attr:KEY, channel:NAME (terms are separated by ',')",
				                     term);
				char *r = ops_error("invalid_request", m ? m : "bad segment term");
				free(m);
				return r;
			}
			sg->n++;
		}
		term = comma ? comma + 1 : NULL;
	}
	return NULL;
}

/* The segment of a request (a string or a list of strings); NULL, or the refusal. */
static char *segment_parse(const cJSON *v, struct segment *sg)
{
	memset(sg, 0, sizeof(*sg));
	struct strbuf all;
	sb_init(&all);
	const cJSON *it;
	if (cJSON_IsString(v)) {
		sb_adds(&all, v->valuestring);
	} else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
		cJSON_ArrayForEach(it, v)
		{
			if (!cJSON_IsString(it)) {
				sb_free(&all);
				return ops_error("invalid_request", "'segment' must be a string or a list of strings");
			}
			sb_printf(&all, "%s%s", all.len ? "," : "", it->valuestring);
		}
	} else {
		return ops_error("invalid_request",
		                 "a broadcast needs 'segment', e.g. \"label:outage-seoul\" (\"all\" for "
		                 "every contact)");
	}
	sg->text = sb_detach(&all);
	if (!sg->text)
		return ops_error("unavailable", "out of memory");
	return segment_add(sg, sg->text);
}

/* ------------------------------------------------------------ create */

struct candidates {
	const struct topology *topo; /* the channels as they were when the broadcast was made */
	const char *channel;         /* the one named, or NULL */
	const char *created_at;
	struct parley_broadcast_recipient_rec *v;
	size_t n, cap;
	int oom;
	int64_t pending, skipped;
};

static int collect_candidate(void *arg, const void *row)
{
	struct candidates *c = arg;
	const struct parley_broadcast_recipient_rec *r = row;
	if (grow(&c->v, c->n, &c->cap, sizeof(*c->v)) != 0) {
		c->oom = 1;
		return 1;
	}
	struct parley_broadcast_recipient_rec *w = &c->v[c->n++];
	memset(w, 0, sizeof(*w));
	w->contact_id = strdup(r->contact_id);
	w->channel = r->channel ? strdup(r->channel) : NULL;
	w->urn = r->urn ? strdup(r->urn) : NULL;
	w->updated_at = c->created_at;
	parley_instance *ch = r->channel ? topology_channel(c->topo, r->channel) : NULL;
	if (r->opted_out) {
		w->state = "skipped";
		w->reason = "opted out";
	} else if (!r->channel || !r->urn) {
		w->state = "skipped";
		w->reason = c->channel ? "never wrote on that channel" : "never wrote on any channel";
	} else if (!ch || !ch->plugin->desc->channel_send) {
		w->state = "skipped";
		w->reason = "their last channel is no longer configured, or cannot send";
	} else {
		w->state = "pending";
	}
	if (strcmp(w->state, "pending") == 0)
		c->pending++;
	else
		c->skipped++;
	return 0;
}

static void candidates_free(struct candidates *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free((char *)c->v[i].contact_id);
		free((char *)c->v[i].channel);
		free((char *)c->v[i].urn);
	}
	free(c->v);
}

static char *no_store(void)
{
	return ops_error("not_supported", "this store does not keep broadcasts (it predates store ABI 1.4)");
}

char *op_broadcast_create(struct op_call *call, const cJSON *req)
{
	struct gateway *gw = call->gw;
	if (!store_keeps_broadcasts(gw->st))
		return no_store();
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "text"));
	const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(req, "template");
	const char *tag = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "tag"));
	const char *chname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "channel"));
	if (!text && !tpl)
		return ops_error("invalid_request", "a broadcast needs 'text', 'template' or both (the template goes "
		                                    "where the customer-service window is closed)");
	if (text && (!text[0] || !utf8_valid(text, strlen(text))))
		return ops_error("invalid_request", "'text' must be non-empty UTF-8");
	const char *bad = tpl ? window_template_invalid(tpl) : NULL;
	if (bad)
		return ops_error("invalid_request", bad);
	if (tag && (!tag[0] || strlen(tag) > 64 || strspn(tag, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != strlen(tag)))
		return ops_error("invalid_request", "'tag' must be a message tag such as ACCOUNT_UPDATE");
	struct topology *topo = topology_get(gw);
	parley_instance *ch = chname ? topology_channel(topo, chname) : NULL;
	if (chname && (!ch || !ch->plugin->desc->channel_send)) {
		topology_put(topo);
		return ops_error("unknown_channel", "'channel' must name a configured channel that sends");
	}
	struct segment sg;
	char *refusal = segment_parse(cJSON_GetObjectItemCaseSensitive(req, "segment"), &sg);
	if (refusal) {
		topology_put(topo);
		segment_free(&sg);
		return refusal;
	}
	char id[32], now[64];
	ulid_new(id);
	time_format_ms(time_now_ms(), now);
	struct candidates c = {.topo = topo, .channel = chname, .created_at = now};
	int rv = store_broadcast_candidates(gw->st, sg.t, sg.n, chname, collect_candidate, &c);
	topology_put(topo);
	c.topo = NULL;
	if (c.oom)
		rv = PARLEY_ENOMEM;
	cJSON *spec = cJSON_CreateObject();
	cJSON_AddItemToObject(spec, "segment", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(req, "segment"), 1));
	if (text)
		cJSON_AddStringToObject(spec, "text", text);
	if (tpl)
		cJSON_AddItemToObject(spec, "template", cJSON_Duplicate(tpl, 1));
	if (tag)
		cJSON_AddStringToObject(spec, "tag", tag);
	if (chname)
		cJSON_AddStringToObject(spec, "channel", chname);
	char *spec_text = cJSON_PrintUnformatted(spec);
	cJSON_Delete(spec);
	const char *by = ops_caller_name(call);
	struct parley_broadcast_rec b = {id, "running", spec_text, by, now, now};
	if (rv == 0)
		rv = spec_text ? store_broadcast_insert(gw->st, &b, c.v, c.n) : PARLEY_ENOMEM;
	char *out;
	if (rv != 0) {
		out = ops_error("store_error", parley_strerror(rv));
	} else {
		broadcast_wake(gw->broadcast);
		cJSON *r = cJSON_CreateObject();
		cJSON_AddBoolToObject(r, "ok", 1);
		cJSON_AddStringToObject(r, "id", id);
		cJSON_AddStringToObject(r, "state", "running");
		cJSON_AddNumberToObject(r, "recipients", (double)c.n);
		cJSON_AddNumberToObject(r, "queued", (double)c.pending);
		cJSON_AddNumberToObject(r, "skipped", (double)c.skipped);
		out = cJSON_PrintUnformatted(r);
		cJSON_Delete(r);
		if (out)
			bus_publish(gw->bus, "broadcast.created", out, strlen(out));
	}
	free(spec_text);
	candidates_free(&c);
	segment_free(&sg);
	return out;
}

/* ------------------------------------------------------------ status */

static int got_broadcast(void *arg, const void *row)
{
	const struct parley_broadcast_rec *b = row;
	cJSON *o = arg;
	cJSON_AddStringToObject(o, "id", b->id);
	cJSON_AddStringToObject(o, "state", b->state);
	cJSON *spec = cJSON_Parse(b->spec ? b->spec : "{}");
	cJSON *it;
	cJSON_ArrayForEach(it, spec) cJSON_AddItemToObject(o, it->string, cJSON_Duplicate(it, 1));
	cJSON_Delete(spec);
	if (b->created_by)
		cJSON_AddStringToObject(o, "created_by", b->created_by);
	cJSON_AddStringToObject(o, "created_at", b->created_at);
	cJSON_AddStringToObject(o, "updated_at", b->updated_at);
	return 0;
}

static int got_count(void *arg, const void *row)
{
	const struct parley_broadcast_count *c = row;
	cJSON *counts = arg;
	cJSON_DeleteItemFromObjectCaseSensitive(counts, c->status);
	cJSON_AddNumberToObject(counts, c->status, (double)c->n);
	cJSON *total = cJSON_GetObjectItemCaseSensitive(counts, "total");
	cJSON_SetNumberValue(total, total->valuedouble + (double)c->n);
	return 0;
}

static int got_recipient(void *arg, const void *row)
{
	const struct parley_broadcast_recipient_rec *r = row;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "contact_id", r->contact_id);
	if (r->channel)
		cJSON_AddStringToObject(o, "channel", r->channel);
	if (r->urn)
		cJSON_AddStringToObject(o, "to", r->urn);
	cJSON_AddStringToObject(o, "status", r->status ? r->status : r->state);
	if (r->reason)
		cJSON_AddStringToObject(o, "reason", r->reason);
	if (r->message_id)
		cJSON_AddStringToObject(o, "message_id", r->message_id);
	cJSON_AddStringToObject(o, "updated_at", r->updated_at);
	cJSON_AddItemToArray(arg, o);
	return 0;
}

char *op_broadcast_status(struct op_call *call, const cJSON *req)
{
	struct gateway *gw = call->gw;
	if (!store_keeps_broadcasts(gw->st))
		return no_store();
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "id"));
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON *b = cJSON_AddObjectToObject(r, "broadcast");
	int rv = store_broadcast_get(gw->st, id, got_broadcast, b);
	cJSON *counts = cJSON_AddObjectToObject(r, "counts");
	static const char *const shown[] = {"queued",  "sent",      "delivered", "read", "failed",
	                                    "skipped", "cancelled", "total",     NULL};
	for (size_t i = 0; shown[i]; i++)
		cJSON_AddNumberToObject(counts, shown[i], 0);
	if (rv == 0)
		rv = store_broadcast_counts(gw->st, id, got_count, counts);
	if (rv == 0 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "recipients"))) {
		const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
		double limit = cJSON_IsNumber(lim) ? lim->valuedouble : 1000;
		if (limit < 1 || limit > 10000 || limit != (double)(int)limit) {
			cJSON_Delete(r);
			return ops_error("invalid_request", "'limit' must be a whole number from 1 to 10000");
		}
		cJSON *list = cJSON_AddArrayToObject(r, "recipients");
		const char *after = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "after"));
		rv = store_broadcast_recipients(gw->st, id, after, (size_t)limit, got_recipient, list);
		int n = cJSON_GetArraySize(list);
		if (rv == 0 && n == (int)limit)
			cJSON_AddStringToObject(r, "next_after",
			                        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			                                cJSON_GetArrayItem(list, n - 1), "contact_id")));
	}
	if (rv != 0) {
		cJSON_Delete(r);
		return rv == PARLEY_ENOENT ? ops_error("not_found", "no broadcast with that id")
		                           : ops_error("store_error", parley_strerror(rv));
	}
	char *out = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return out;
}

static int got_state(void *arg, const void *row)
{
	const struct parley_broadcast_rec *b = row;
	snprintf(arg, 16, "%s", b->state);
	return 0;
}

char *op_broadcast_cancel(struct op_call *call, const cJSON *req)
{
	struct gateway *gw = call->gw;
	if (!store_keeps_broadcasts(gw->st))
		return no_store();
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "id"));
	char state[16] = "";
	int rv = store_broadcast_get(gw->st, id, got_state, state);
	if (rv == PARLEY_ENOENT)
		return ops_error("not_found", "no broadcast with that id");
	if (rv != 0)
		return ops_error("store_error", parley_strerror(rv));
	if (strcmp(state, "running") != 0) {
		char *m = str_printf("the broadcast is %s: only a running one is cancelled", state);
		char *r = ops_error("conflict", m ? m : "not running");
		free(m);
		return r;
	}
	char now[64];
	time_format_ms(time_now_ms(), now);
	int64_t n = 0;
	rv = store_broadcast_set_state(gw->st, id, "cancelled", now, &n);
	if (rv != 0)
		return ops_error("store_error", parley_strerror(rv));
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON_AddStringToObject(r, "id", id);
	cJSON_AddStringToObject(r, "state", "cancelled");
	cJSON_AddNumberToObject(r, "cancelled", (double)n);
	char *out = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	if (out)
		bus_publish(gw->bus, "broadcast.cancelled", out, strlen(out));
	return out;
}

static int got_listed(void *arg, const void *row)
{
	cJSON *o = cJSON_CreateObject();
	got_broadcast(o, row);
	cJSON_AddItemToArray(arg, o);
	return 0;
}

char *op_broadcasts_list(struct op_call *call, const cJSON *req)
{
	struct gateway *gw = call->gw;
	if (!store_keeps_broadcasts(gw->st))
		return no_store();
	const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "state"));
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	int rv = store_broadcasts_list(gw->st, state, got_listed, cJSON_AddArrayToObject(r, "broadcasts"));
	if (rv != 0) {
		cJSON_Delete(r);
		return ops_error("store_error", parley_strerror(rv));
	}
	char *out = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return out;
}
