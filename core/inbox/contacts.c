/*
 * contacts.c: what changing a contact means: contact.update (attributes
 * merged as an RFC 7396 merge patch), contacts.merge (every identity,
 * conversation and message of one contact moves into another, names and
 * attributes merged with the surviving contact's winning, and what moved
 * recorded) and contacts.unmerge (exactly that record undone).
 */
#include "internal.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

/* RFC 7396: patch applied to target (both objects); null removes a key. */
static void merge_patch(cJSON *target, const cJSON *patch)
{
	const cJSON *p;
	cJSON_ArrayForEach(p, patch)
	{
		if (cJSON_IsNull(p)) {
			cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
		} else if (cJSON_IsObject(p)) {
			cJSON *t = cJSON_GetObjectItemCaseSensitive(target, p->string);
			if (!cJSON_IsObject(t)) {
				cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
				t = cJSON_AddObjectToObject(target, p->string);
			}
			merge_patch(t, p);
		} else {
			cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
			cJSON_AddItemToObject(target, p->string, cJSON_Duplicate(p, 1));
		}
	}
}

static cJSON *object_of(const char *text)
{
	cJSON *o = cJSON_Parse(text ? text : "{}");
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		o = cJSON_CreateObject();
	}
	return o;
}

static int contact_get(struct inbox *ib, const char *id, char **reply)
{
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "contact_id", id);
	char *text = cJSON_PrintUnformatted(q);
	cJSON_Delete(q);
	int rv = text ? store_query(ib->st, "contact.get", text, reply) : PARLEY_ENOMEM;
	free(text);
	return rv;
}

static int contact_update(struct inbox *ib, const cJSON *req, char **reply)
{
	const char *id = jstr(req, "contact_id");
	const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(req, "attributes");
	if (!id || (attrs && !cJSON_IsObject(attrs)))
		return inbox_fail(reply, PARLEY_EINVAL, "contact.update needs contact_id, and attributes as an object");
	char now[64];
	inbox_now(now);
	struct arena a = {0};
	parley_store_tx *tx = NULL;
	struct parley_contact_rec c;
	int found = 0;
	int rv = ib->t->tx_begin(ib->data, &tx);
	if (rv == 0)
		rv = ib->t->contacts_lock(tx, &id, 1, &c, &found);
	if (rv == 0 && !found)
		rv = PARLEY_ENOENT;
	if (rv == 0) {
		if (jstr(req, "name"))
			c.name = jstr(req, "name");
		if (attrs) {
			cJSON *t = object_of(c.attributes);
			merge_patch(t, attrs);
			c.attributes = arena_json(&a, t);
		}
		c.updated_at = now;
		rv = arena_ok(&a) ? ib->t->contact_update(tx, &c) : PARLEY_ENOMEM;
	}
	if (rv == 0)
		rv = ib->t->tx_commit(tx);
	else if (tx)
		ib->t->tx_rollback(tx);
	arena_free(&a);
	if (rv == PARLEY_ENOENT)
		return inbox_fail(reply, rv, "no contact with that contact_id");
	if (rv != 0)
		return inbox_fail(reply, rv, "the store could not update the contact");
	ib->changed(ib->changed_arg);
	return contact_get(ib, id, reply);
}

/* Row visitors collecting ids into a JSON array. */
static int add_message_id(void *arg, const void *row)
{
	cJSON_AddItemToArray(arg, cJSON_CreateString(row));
	return 0;
}

static int add_urn(void *arg, const void *row)
{
	cJSON_AddItemToArray(arg, cJSON_CreateString(((const struct parley_identity_rec *)row)->urn));
	return 0;
}

struct convs {
	struct parley_conversation_rec *c;
	size_t n, cap;
};

static int add_conversation(void *arg, const void *row)
{
	struct convs *v = arg;
	if (array_room(&v->c, v->n, &v->cap, sizeof(*v->c)) != 0)
		return PARLEY_ENOMEM;
	v->c[v->n++] = *(const struct parley_conversation_rec *)row;
	return 0;
}

/* The strings of a JSON array of strings (borrowed from it), n of them; NULL when empty. */
static const char **strings_of(const cJSON *arr, size_t *n)
{
	*n = 0;
	size_t m = (size_t)cJSON_GetArraySize(arr);
	const char **s = m ? calloc(m, sizeof(*s)) : NULL;
	const cJSON *x;
	cJSON_ArrayForEach(x, arr) if (s && cJSON_IsString(x)) s[(*n)++] = x->valuestring;
	return s;
}

/* Give every conversation listed (ids) or visited to contact `to`. */
static int move_conversations(struct inbox *ib, parley_store_tx *tx, struct convs *v, const char *to, const char *now)
{
	for (size_t i = 0; i < v->n; i++) {
		v->c[i].contact_id = to;
		v->c[i].updated_at = now;
	}
	return v->n ? ib->t->conversations_put(tx, v->c, v->n) : 0;
}

static int move_all(struct inbox *ib, parley_store_tx *tx, const cJSON *urns, const cJSON *messages, struct convs *v,
                    const char *to, const char *now)
{
	size_t nu, nm;
	const char **u = strings_of(urns, &nu), **m = strings_of(messages, &nm);
	int rv = nu ? ib->t->identities_move(tx, u, nu, to) : 0;
	if (rv == 0)
		rv = move_conversations(ib, tx, v, to, now);
	if (rv == 0 && nm)
		rv = ib->t->messages_set_owner(tx, m, nm, to, NULL);
	free(u);
	free(m);
	return rv;
}

static int contacts_merge(struct inbox *ib, const cJSON *req, char **reply)
{
	const char *from = jstr(req, "from"), *into = jstr(req, "into"), *mid = jstr(req, "merge_id");
	if (!from || !into || !mid || strcmp(from, into) == 0)
		return inbox_fail(reply, PARLEY_EINVAL,
		                  "contacts.merge needs two different contact ids: from and into");
	char now[64];
	inbox_now(now);
	struct arena a = {0};
	struct convs v = {0};
	parley_store_tx *tx = NULL;
	/* Locked in id order, as every transaction locks contacts. */
	const char *ids[2] = {strcmp(from, into) < 0 ? from : into, strcmp(from, into) < 0 ? into : from};
	struct parley_contact_rec c[2];
	int found[2] = {0, 0};
	int rv = ib->t->tx_begin(ib->data, &tx);
	if (rv == 0)
		rv = ib->t->contacts_lock(tx, ids, 2, c, found);
	struct parley_contact_rec *f = &c[ids[0] == from ? 0 : 1], *t = &c[ids[0] == from ? 1 : 0];
	if (rv == 0 && (!found[0] || !found[1] || f->merged_into || t->merged_into))
		rv = PARLEY_ENOENT;
	cJSON *moved = cJSON_CreateObject(), *urns = cJSON_AddArrayToObject(moved, "identities");
	cJSON *cids = cJSON_AddArrayToObject(moved, "conversations"), *mids = cJSON_AddArrayToObject(moved, "messages");
	if (rv == 0)
		rv = ib->t->identities_of_contact(tx, from, add_urn, urns);
	if (rv == 0)
		rv = ib->t->conversations_of_contact(tx, from, add_conversation, &v);
	for (size_t i = 0; i < v.n && rv == 0; i++)
		cJSON_AddItemToArray(cids, cJSON_CreateString(v.c[i].id));
	if (rv == 0)
		rv = ib->t->messages_of_contact(tx, from, add_message_id, mids);
	/* What the surviving contact had, so an unmerge restores it. */
	if (t->name)
		cJSON_AddStringToObject(moved, "name", t->name);
	else
		cJSON_AddNullToObject(moved, "name");
	cJSON_AddItemToObject(moved, "attributes", object_of(t->attributes));
	if (rv == 0)
		rv = move_all(ib, tx, urns, mids, &v, into, now);
	if (rv == 0) {
		cJSON *attrs = object_of(f->attributes);
		cJSON *keep = object_of(t->attributes);
		merge_patch(attrs, keep); /* into wins */
		cJSON_Delete(keep);
		if (!t->name)
			t->name = f->name;
		t->attributes = arena_json(&a, attrs);
		t->updated_at = f->updated_at = now;
		f->merged_into = into;
		rv = arena_ok(&a) ? ib->t->contact_update(tx, t) : PARLEY_ENOMEM;
		if (rv == 0)
			rv = ib->t->contact_update(tx, f);
	}
	struct parley_merge_rec m = {mid, from, into, NULL, now, NULL};
	if (rv == 0) {
		m.moved = arena_json(&a, cJSON_Duplicate(moved, 1));
		rv = m.moved ? ib->t->merge_insert(tx, &m) : PARLEY_ENOMEM;
	}
	if (rv == 0)
		rv = ib->t->tx_commit(tx);
	else if (tx)
		ib->t->tx_rollback(tx);
	arena_free(&a);
	free(v.c);
	if (rv != 0) {
		cJSON_Delete(moved);
		return rv == PARLEY_ENOENT ? inbox_fail(reply, rv, "both contacts must exist and not be merged already")
		                           : inbox_fail(reply, rv, "the store could not merge the contacts");
	}
	ib->changed(ib->changed_arg);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", mid);
	cJSON_AddStringToObject(o, "from_id", from);
	cJSON_AddStringToObject(o, "into_id", into);
	cJSON_AddItemToObject(o, "moved", moved);
	cJSON_AddStringToObject(o, "at", now);
	return inbox_reply(reply, "merge", o);
}

static int contacts_unmerge(struct inbox *ib, const cJSON *req, char **reply)
{
	const char *mid = jstr(req, "merge_id");
	if (!mid)
		return inbox_fail(reply, PARLEY_EINVAL, "contacts.unmerge needs merge_id");
	char now[64];
	inbox_now(now);
	struct arena a = {0};
	struct convs v = {0};
	parley_store_tx *tx = NULL;
	struct parley_merge_rec m;
	cJSON *moved = NULL;
	int rv = ib->t->tx_begin(ib->data, &tx);
	if (rv == 0)
		rv = ib->t->merge_lock(tx, mid, &m);
	if (rv == 0 && m.undone_at)
		rv = PARLEY_ENOENT;
	if (rv == 0)
		moved = object_of(m.moved);
	const char *ids[2];
	struct parley_contact_rec c[2];
	int found[2] = {0, 0};
	if (rv == 0) {
		int lt = strcmp(m.from_id, m.into_id) < 0;
		ids[0] = lt ? m.from_id : m.into_id;
		ids[1] = lt ? m.into_id : m.from_id;
		rv = ib->t->contacts_lock(tx, ids, 2, c, found);
	}
	if (rv == 0 && (!found[0] || !found[1]))
		rv = PARLEY_ENOENT;
	/* The conversations that moved, as they are now. */
	const cJSON *x;
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(moved, "conversations"))
	{
		struct parley_conversation_rec cr;
		if (rv != 0 || !cJSON_IsString(x))
			continue;
		int r = ib->t->conversation_lock(tx, x->valuestring, &cr);
		if (r == 0)
			rv = add_conversation(&v, &cr);
		else if (r != PARLEY_ENOENT)
			rv = r;
	}
	if (rv == 0)
		rv = move_all(ib, tx, cJSON_GetObjectItemCaseSensitive(moved, "identities"),
		              cJSON_GetObjectItemCaseSensitive(moved, "messages"), &v, m.from_id, now);
	if (rv == 0) {
		struct parley_contact_rec *f = &c[ids[0] == m.from_id ? 0 : 1], *t = &c[ids[0] == m.from_id ? 1 : 0];
		t->name = jstr(moved, "name");
		const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(moved, "attributes");
		t->attributes = cJSON_IsObject(attrs) ? arena_json(&a, cJSON_Duplicate(attrs, 1)) : "{}";
		t->updated_at = f->updated_at = now;
		f->merged_into = NULL;
		rv = arena_ok(&a) ? ib->t->contact_update(tx, t) : PARLEY_ENOMEM;
		if (rv == 0)
			rv = ib->t->contact_update(tx, f);
	}
	if (rv == 0)
		rv = ib->t->merge_set_undone(tx, mid, now);
	cJSON *o = NULL;
	if (rv == 0) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", mid);
		cJSON_AddStringToObject(o, "from_id", m.from_id);
		cJSON_AddStringToObject(o, "into_id", m.into_id);
		cJSON_AddStringToObject(o, "at", m.at);
		cJSON_AddStringToObject(o, "undone_at", now);
		rv = ib->t->tx_commit(tx);
	} else if (tx) {
		ib->t->tx_rollback(tx);
	}
	cJSON_Delete(moved);
	arena_free(&a);
	free(v.c);
	if (rv != 0) {
		cJSON_Delete(o);
		return rv == PARLEY_ENOENT ? inbox_fail(reply, rv, "no merge with that merge_id to undo")
		                           : inbox_fail(reply, rv, "the store could not undo the merge");
	}
	ib->changed(ib->changed_arg);
	return inbox_reply(reply, "merge", o);
}

int inbox_contact_op(struct inbox *ib, const char *op, const cJSON *req, char **reply)
{
	if (strcmp(op, "contact.update") == 0)
		return contact_update(ib, req, reply);
	if (strcmp(op, "contacts.merge") == 0)
		return contacts_merge(ib, req, reply);
	if (strcmp(op, "contacts.unmerge") == 0)
		return contacts_unmerge(ib, req, reply);
	return PARLEY_ENOTSUP;
}
