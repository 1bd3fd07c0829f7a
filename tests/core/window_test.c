/*
 * window_test.c: core/window.c's template check and window names, and the
 * broadcast message id of core/broadcast_ops.c (the same for one (broadcast,
 * contact), another for any other pair, a valid sortable ULID).
 */
#include "broadcast_ops.h"
#include "test.h"
#include "window.h"

#include <stdlib.h>
#include <string.h>

static const char *invalid(const char *json)
{
	cJSON *t = cJSON_Parse(json);
	const char *why = window_template_invalid(t);
	cJSON_Delete(t);
	return why;
}

int main(void)
{
	/* The schema's template shape. */
	CHECK(invalid("{\"name\":\"order_update\",\"language\":\"en_US\"}") == NULL);
	CHECK(invalid("{\"name\":\"outage\",\"language\":\"ko\",\"header\":[\"Seoul\"],\"body\":[\"a\",\"b\"],"
	              "\"buttons\":[{\"type\":\"quick_reply\",\"value\":\"YES\"},{\"type\":\"url\",\"value\":\"x1\"}]"
	              "}") == NULL);
	CHECK_CONTAINS(invalid("{\"name\":\"Order Update\",\"language\":\"en_US\"}"), "template.name");
	CHECK_CONTAINS(invalid("{\"language\":\"en_US\"}"), "template.name");
	CHECK_CONTAINS(invalid("{\"name\":\"a\",\"language\":\"english\"}"), "template.language");
	CHECK_CONTAINS(invalid("{\"name\":\"a\",\"language\":\"en-US\"}"), "template.language");
	CHECK_CONTAINS(invalid("{\"name\":\"a\",\"language\":\"en\",\"body\":[1]}"), "template.body");
	CHECK_CONTAINS(invalid("{\"name\":\"a\",\"language\":\"en\",\"body\":[\"\"]}"), "template.body");
	CHECK_CONTAINS(invalid("{\"name\":\"a\",\"language\":\"en\",\"header\":[\"a\",\"b\"]}"), "template.header");
	CHECK_CONTAINS(
	        invalid("{\"name\":\"a\",\"language\":\"en\",\"buttons\":[{\"type\":\"call\",\"value\":\"1\"}]}"),
	        "template.buttons");
	CHECK_CONTAINS(invalid("{\"name\":\"a\",\"language\":\"en\",\"components\":[]}"), "takes only");
	CHECK_CONTAINS(invalid("\"outage\""), "must be an object");

	char say[32];
	window_say(24 * 3600000LL, say);
	CHECK(strcmp(say, "24-hour") == 0);
	window_say(7 * 86400000LL, say);
	CHECK(strcmp(say, "7-day") == 0);
	window_say(90 * 60000LL, say);
	CHECK(strcmp(say, "90-minute") == 0);

	/* One id per (broadcast, contact), across restarts: derived, not drawn. */
	char a[27], b[27], c[27], d[27];
	broadcast_message_id("01M8SB93V07V73EYDV7ZNYBBQH", "01M8SBBE9K17NF799X6CHVF0SM", a);
	broadcast_message_id("01M8SB93V07V73EYDV7ZNYBBQH", "01M8SBBE9K17NF799X6CHVF0SM", b);
	broadcast_message_id("01M8SB93V07V73EYDV7ZNYBBQH", "01M8SBBE9K17NF799X6CHVF0SR", c);
	broadcast_message_id("01M8SB93V17V73EYDV7ZNYBBQH", "01M8SBBE9K17NF799X6CHVF0SM", d);
	CHECK(strcmp(a, b) == 0);
	CHECK(strcmp(a, c) != 0 && strcmp(a, d) != 0);
	CHECK(strlen(a) == 26 && strncmp(a, "01M8SB93V0", 10) == 0); /* the broadcast's time first: sortable */
	CHECK(strspn(a, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == 26);
	TEST_DONE();
}
