/*
 * check_sla.c: SLA targets and surveys (store.h, 1.4): what core/sla.c and
 * core/survey.c rely on, in every store.  Rows of other runs (a shared
 * database) are told apart by the run's prefix.
 */
#include "suite.h"

#include <stdlib.h>

struct seen_sla {
	const char *prefix;
	int n;
	char targets[8][64], warned[8][64];
};

static int see_sla(void *arg, const void *row)
{
	struct seen_sla *s = arg;
	const struct parley_sla_rec *r = row;
	if (strncmp(r->conversation_id, s->prefix, strlen(s->prefix)) != 0 || s->n == 8)
		return 0;
	snprintf(s->targets[s->n], 64, "%s/%s%s", r->target, r->team ? r->team : "", r->paused_at ? "/paused" : "");
	snprintf(s->warned[s->n++], 64, "%s", r->warned_at ? r->warned_at : "-");
	return 0;
}

struct seen_survey {
	const char *prefix;
	int n;
	int64_t score;
	char status[32], agent[64], comment[64];
};

static int see_survey(void *arg, const void *row)
{
	struct seen_survey *s = arg;
	const struct parley_survey_rec *r = row;
	if (strncmp(r->conversation_id, s->prefix, strlen(s->prefix)) != 0)
		return 0;
	s->n++;
	s->score = r->score;
	snprintf(s->status, sizeof(s->status), "%s", r->status);
	snprintf(s->agent, sizeof(s->agent), "%s", r->agent ? r->agent : "-");
	snprintf(s->comment, sizeof(s->comment), "%s", r->comment ? r->comment : "-");
	return 0;
}

void check_sla(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	if (t->struct_size < offsetof(struct parley_store_typed_ops, ratings_list) + sizeof(t->ratings_list)) {
		CHECK(!"the store has the 1.4 slots");
		return;
	}
	char contact[64], v1[64], v2[64], prefix[64];
	suite_id(su, "contact", contact);
	suite_id(su, "slaconv", v1);
	suite_id(su, "slaconv", v2);
	snprintf(prefix, sizeof(prefix), "%s-slaconv", su->run);
	int64_t now = suite_now_ms();
	char past[64], nowt[64], future[64];
	suite_time(now - 60000, past);
	suite_time(now, nowt);
	suite_time(now + 3600000, future);

	parley_store_tx *tx;
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	struct parley_contact_rec c = {.id = contact};
	CHECK_RC(t->contacts_insert(tx, &c, 1), 0);
	struct parley_conversation_rec conv[2] = {{.id = v1,
	                                           .contact_id = contact,
	                                           .status = "open",
	                                           .team = "support",
	                                           .created_at = past,
	                                           .updated_at = past},
	                                          {.id = v2,
	                                           .contact_id = contact,
	                                           .status = "open",
	                                           .team = "billing",
	                                           .created_at = past,
	                                           .updated_at = past}};
	CHECK_RC(t->conversations_put(tx, conv, 2), 0);
	/* v1: first_response warned long ago and due now; resolution far off.  v2: paused. */
	struct parley_sla_rec s[3] = {{v1, "first_response", "p", past, past, past, NULL, NULL, NULL, NULL, NULL},
	                              {v1, "resolution", "p", past, future, future, NULL, NULL, NULL, NULL, NULL},
	                              {v2, "first_response", "p", past, past, past, past, NULL, NULL, NULL, NULL}};
	CHECK_RC(t->sla_put(tx, s, 3), 0);
	struct seen_sla due = {.prefix = prefix};
	CHECK_RC(t->sla_due(tx, nowt, 1000, see_sla, &due), 0);
	CHECK(due.n == 1);
	CHECK_STR(due.targets[0], "first_response/");
	/* Replacing by (conversation, target): warned now, no longer due a warning but still a breach. */
	s[0].warned_at = nowt;
	CHECK_RC(t->sla_put(tx, s, 1), 0);
	struct seen_sla of = {.prefix = prefix};
	CHECK_RC(t->sla_of_conversation(tx, v1, see_sla, &of), 0);
	CHECK(of.n == 2);
	CHECK_STR(of.targets[0], "first_response/");
	CHECK_STR(of.warned[0], nowt);
	CHECK_STR(of.targets[1], "resolution/");
	s[0].breached_at = nowt;
	CHECK_RC(t->sla_put(tx, s, 1), 0);
	struct seen_sla none = {.prefix = prefix};
	CHECK_RC(t->sla_due(tx, nowt, 1000, see_sla, &none), 0);
	CHECK(none.n == 0);

	/* One survey per conversation. */
	struct parley_survey_rec sv = {.conversation_id = v1,
	                               .contact_id = contact,
	                               .survey = "csat",
	                               .channel = "wa",
	                               .status = "scheduled",
	                               .due_at = past,
	                               .score = -1};
	CHECK_RC(t->survey_insert(tx, &sv), 0);
	CHECK_RC(t->survey_insert(tx, &sv), PARLEY_EEXIST);
	struct parley_survey_rec got;
	CHECK_RC(t->survey_lock(tx, v2, &got), PARLEY_ENOENT);
	CHECK_RC(t->survey_lock(tx, v1, &got), 0);
	CHECK_STR(got.status, "scheduled");
	CHECK(got.score == -1);
	CHECK_RC(t->tx_commit(tx), 0);

	struct seen_sla breached = {.prefix = prefix}, risk = {.prefix = prefix};
	CHECK_RC(t->sla_list(su->store, "breached", NULL, 1000, see_sla, &breached), 0);
	CHECK(breached.n == 1);
	CHECK_STR(breached.targets[0], "first_response/support");
	CHECK_RC(t->sla_list(su->store, "at_risk", NULL, 1000, see_sla, &risk), 0);
	CHECK(risk.n == 0);
	struct seen_sla other = {.prefix = prefix};
	CHECK_RC(t->sla_list(su->store, "breached", "billing", 1000, see_sla, &other), 0);
	CHECK(other.n == 0);

	/* conversations.list's sla filter reads the same state. */
	char q[256];
	snprintf(q, sizeof(q), "{\"contact_id\":\"%s\",\"sla\":\"breached\"}", contact);
	int rc;
	cJSON *l = suite_query(su, "conversations.list", q, &rc);
	const cJSON *listed = cJSON_GetObjectItemCaseSensitive(l, "conversations");
	CHECK(rc == 0 && cJSON_GetArraySize(listed) == 1);
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(listed, 0), "id"), v1);
	cJSON_Delete(l);
	snprintf(q, sizeof(q), "{\"contact_id\":\"%s\",\"sla\":\"at_risk\"}", contact);
	l = suite_query(su, "conversations.list", q, &rc);
	CHECK(rc == 0 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(l, "conversations")) == 0);
	cJSON_Delete(l);

	struct seen_survey d = {.prefix = prefix};
	CHECK_RC(t->surveys_due(su->store, nowt, 1000, see_survey, &d), 0);
	CHECK(d.n == 1);
	CHECK_STR(d.status, "scheduled");
	struct seen_survey early = {.prefix = prefix};
	CHECK_RC(t->surveys_due(su->store, past, 1000, see_survey, &early), 0);
	CHECK(early.n == 1); /* due at `past` exactly */

	/* Answered: a rating, listed by conversation and by agent; resolved conversations leave sla_list. */
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	CHECK_RC(t->survey_lock(tx, v1, &got), 0);
	got.status = "answered";
	got.score = 4;
	got.agent = "ana";
	got.answered_at = nowt;
	got.comment = "quick";
	CHECK_RC(t->survey_update(tx, &got), 0);
	struct parley_survey_rec missing = {.conversation_id = v2,
	                                    .contact_id = contact,
	                                    .survey = "csat",
	                                    .status = "sent",
	                                    .due_at = past,
	                                    .score = -1};
	CHECK_RC(t->survey_update(tx, &missing), PARLEY_ENOENT);
	conv[0].status = "resolved";
	CHECK_RC(t->conversations_put(tx, conv, 1), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	struct seen_survey r1 = {.prefix = prefix}, r2 = {.prefix = prefix}, r3 = {.prefix = prefix};
	CHECK_RC(t->ratings_list(su->store, v1, NULL, 10, see_survey, &r1), 0);
	CHECK(r1.n == 1 && r1.score == 4);
	CHECK_STR(r1.agent, "ana");
	CHECK_STR(r1.comment, "quick");
	CHECK_RC(t->ratings_list(su->store, NULL, "ana", 1000, see_survey, &r2), 0);
	CHECK(r2.n == 1);
	CHECK_RC(t->surveys_due(su->store, nowt, 1000, see_survey, &r3), 0);
	CHECK(r3.n == 0);
	struct seen_sla gone = {.prefix = prefix};
	CHECK_RC(t->sla_list(su->store, "breached", NULL, 1000, see_sla, &gone), 0);
	CHECK(gone.n == 0);
}
