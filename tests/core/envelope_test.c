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
