/* payload_test.c: every string of a payload is valid UTF-8 without NUL, named by its path when not. */
#include "envelope.h"
#include "payload.h"
#include "test.h"
#include "util.h"

static const char *why_of(const char *json)
{
	static char why[320];
	why[0] = '\0';
	return payload_json_check(json, strlen(json), why, sizeof(why)) == 0 ? NULL : why;
}

int main(void)
{
	CHECK(why_of("{\"a\":[1,2,{\"b\":\"환불\"}],\"c\":null,\"d\":true}") == NULL);
	CHECK(why_of("{\"x\":\"back\\\\u0000slash\"}") == NULL); /* an escaped backslash, then text */
	CHECK_CONTAINS(why_of("{\"entry\":[{\"changes\":[{\"text\":{\"body\":\"caf\xe9\"}}]}]}"),
	               "entry[0].changes[0].text.body is not valid UTF-8");
	CHECK_CONTAINS(why_of("{\"id\":\"order-7\\u0000a\"}"), "id contains \\u0000");
	CHECK_CONTAINS(why_of("[\"ok\",\"bad\xc0\"]"), "[1] is not valid UTF-8");
	CHECK_CONTAINS(why_of("{\"k\xff\":1}"), "(a key) is not valid UTF-8");
	CHECK_CONTAINS(why_of("{\"a\":"), "not valid JSON");
	CHECK_CONTAINS(why_of("{\"a\":1} trailing"), "not valid JSON");
	/* Surrogates encoded in UTF-8 (CESU) are not UTF-8. */
	CHECK_CONTAINS(why_of("{\"s\":\"\xed\xa0\x80\"}"), "s is not valid UTF-8");
	char deep[300];
	memset(deep, '[', 200);
	deep[200] = '\0';
	CHECK_CONTAINS(why_of(deep), "nested too deeply");
	char why[160];
	CHECK(payload_text_check("parameter 'Body'", "h\0i", 3, why, sizeof(why)) != 0);
	CHECK_CONTAINS(why, "parameter 'Body' contains a NUL");
	CHECK(payload_text_check("parameter 'Body'", "h\xffi", 3, why, sizeof(why)) != 0);
	CHECK(payload_text_check("parameter 'Body'", "héllo", 6, why, sizeof(why)) == 0);
	/* utf8_valid reads ASCII eight bytes at a time: a bad byte is found at every offset. */
	for (size_t at = 0; at < 24; at++) {
		char text[25];
		memset(text, 'a', 24);
		text[24] = '\0';
		CHECK(utf8_valid(text, 24));
		text[at] = '\xff';
		CHECK(!utf8_valid(text, 24));
		CHECK(!utf8_valid(text, at + 1));
		CHECK(utf8_valid(text, at));
		memcpy(text + (at < 22 ? at : 21), "\xe2\x82\xac", 3); /* a euro sign */
		CHECK(utf8_valid(text, 24));
		CHECK(!utf8_valid(text, (at < 22 ? at : 21) + 2)); /* cut inside the euro sign */
	}

	/* A setter's refusal stays with the envelope. */
	parley_envelope *e = envelope_create("message", "inbound");
	CHECK(envelope_error(e) == NULL);
	CHECK(envelope_set(e, "text", "caf\xe9") == PARLEY_EINVAL);
	CHECK(envelope_set(e, "from", "webhook:alice") == 0);
	CHECK_CONTAINS(envelope_error(e), "field 'text' is not valid UTF-8");
	envelope_destroy(e);
	e = envelope_create("message", "inbound");
	char longurn[600];
	memset(longurn, 'a', sizeof(longurn) - 1);
	longurn[sizeof(longurn) - 1] = '\0';
	CHECK(envelope_set(e, "from", longurn) == PARLEY_ETOOBIG);
	CHECK_CONTAINS(envelope_error(e), "field 'from' is 599 bytes long");
	CHECK(envelope_get(e, "from") == NULL); /* never cut short */
	envelope_destroy(e);
	e = envelope_create("message", "inbound");
	CHECK(envelope_set(e, "conversation_id", "x\",\"admin\":true") == PARLEY_EINVAL);
	CHECK_CONTAINS(envelope_error(e), "not a gateway id");
	CHECK(envelope_set_json_text(e, "meta", "{\"raw\":\"\\u0000\"}") == PARLEY_EINVAL);
	envelope_destroy(e);
	/* An empty id would make every such message a duplicate of the first. */
	e = envelope_create("message", "inbound");
	CHECK(envelope_set(e, "external_id", "") == PARLEY_EINVAL);
	CHECK_CONTAINS(envelope_error(e), "field 'external_id' is empty");
	envelope_destroy(e);
	TEST_DONE();
}
