/* envelope_test.c: ids sort by time, fields are checked, topics follow the contract. */
#include "envelope.h"
#include "test.h"

int main(void)
{
	char prev[27] = "", id[27];
	for (int i = 0; i < 10000; i++) {
		ulid_new(id);
		CHECK(strlen(id) == 26);
		if (strcmp(prev, id) >= 0) {
			CHECK(!"ULIDs must increase");
			break;
		}
		memcpy(prev, id, sizeof(id));
	}

	parley_envelope *e = envelope_create("message", "inbound");
	char why[160];
	CHECK(envelope_validate(e, why) != 0);
	CHECK_CONTAINS(why, "no 'channel'");
	CHECK(envelope_set(e, "channel", "tg-support") == 0);
	CHECK(envelope_set(e, "channel_type", "telegram") == 0);
	CHECK(envelope_validate(e, why) == 0);
	CHECK(envelope_set(e, "colour", "blue") == PARLEY_EINVAL);
	CHECK(envelope_set(e, "text", "\xff\xfe not utf-8") == PARLEY_EINVAL);
	CHECK(envelope_set(e, "text", "환불 please") == 0);
	CHECK(strcmp(envelope_get(e, "text"), "환불 please") == 0);
	CHECK(envelope_set_json_text(e, "meta", "{\"a\":[1,2]}") == 0);
	CHECK(envelope_set_json_text(e, "meta", "{broken") == PARLEY_EINVAL);
	/* What sdk/envelope-v1.schema.json says, field by field (envelope_check.c). */
	CHECK(envelope_set(e, "sent_at", "last tuesday") == PARLEY_EINVAL);
	CHECK_CONTAINS(e->last_error, "'sent_at'");
	CHECK(envelope_set(e, "sent_at", "2026-02-29T10:00:00Z") == PARLEY_EINVAL); /* not a leap year */
	CHECK(envelope_set(e, "sent_at", "2028-02-29T10:00:00.5+09:00") == 0);
	CHECK(envelope_set(e, "from", "not a urn") == PARLEY_EINVAL);
	CHECK_CONTAINS(e->last_error, "not a URN");
	CHECK(envelope_set(e, "from", "tel:+15551234567") == 0);
	CHECK(envelope_set(e, "to", "telegram:1\nINFO forged log line") == PARLEY_EINVAL);
	CHECK(envelope_set(e, "kind", "memo") == PARLEY_EINVAL);
	CHECK(envelope_set(e, "status", "read") == 0);
	CHECK(envelope_set(e, "status", "lost") == PARLEY_EINVAL);
	CHECK(envelope_set(e, "id", "not-a-ulid") == PARLEY_EINVAL);
	CHECK(envelope_set(e, "received_at", NULL) == PARLEY_EINVAL);
	CHECK(envelope_set(e, "meta", "{}") == PARLEY_EINVAL);
	CHECK(envelope_set_json_text(e, "attachments", "[{\"size\":-1}]") == PARLEY_EINVAL);
	CHECK(envelope_set_json_text(e, "attachments", "[{\"size\":3,\"name\":\"a.txt\"}]") == 0);
	CHECK(envelope_set_json_text(e, "attempts", "2") == 0);
	CHECK(envelope_set_json_text(e, "labels", "[\"vip\",1]") == PARLEY_EINVAL);
	CHECK(envelope_set_json_text(e, "subject", "\"a subject\"") == 0);
	/* The first refusal is kept for submit; what was refused was never stored. */
	CHECK_CONTAINS(envelope_error(e), "'colour'");
	CHECK(strcmp(envelope_get(e, "from"), "tel:+15551234567") == 0);
	CHECK(strcmp(envelope_get(e, "status"), "read") == 0);
	CHECK(envelope_check_all(e->obj, why, sizeof(why)) == 0);
	cJSON_AddStringToObject(e->obj, "colour", "blue");
	CHECK(envelope_check_all(e->obj, why, sizeof(why)) != 0);
	CHECK_CONTAINS(why, "'colour'");
	cJSON_DeleteItemFromObject(e->obj, "colour");
	char topic[128];
	CHECK(envelope_topic(e, topic, sizeof(topic)) == 0);
	CHECK(strcmp(topic, "message.inbound.telegram.tg-support") == 0);
	envelope_set(e, "kind", "status");
	envelope_topic(e, topic, sizeof(topic));
	CHECK(strcmp(topic, "status.telegram.tg-support") == 0);
	char *json = envelope_json(e);
	CHECK_CONTAINS(json, "\"v\":1");
	free(json);
	envelope_destroy(e);
	TEST_DONE();
}
