/* relay_test.c: which stores a relay can replay from; a gateway without bus: pays nothing. */
#include "relay.h"
#include "test.h"

#include <string.h>

static int since(void *store, int64_t after_seq, size_t max, parley_store_row_cb cb, void *arg)
{
	(void)store;
	(void)after_seq;
	(void)max;
	(void)cb;
	(void)arg;
	return 0;
}

static void test_store_supported(void)
{
	struct parley_store_typed_ops typed = {.struct_size = sizeof(typed), .messages_since = since};
	struct parley_store_ops ops = {.struct_size = sizeof(ops), .typed = &typed};
	CHECK(relay_store_supported(&ops) == 1);
	/* An ABI 1.0/1.1 store: its ops end before `typed`, whatever lies beyond. */
	ops.struct_size = (uint32_t)offsetof(struct parley_store_ops, typed);
	CHECK(relay_store_supported(&ops) == 0);
	ops.struct_size = sizeof(ops);
	ops.typed = NULL;
	CHECK(relay_store_supported(&ops) == 0);
	/* A typed table without the op, or too short to have it. */
	ops.typed = &typed;
	typed.messages_since = NULL;
	CHECK(relay_store_supported(&ops) == 0);
	typed.messages_since = since;
	typed.struct_size = (uint32_t)offsetof(struct parley_store_typed_ops, messages_since);
	CHECK(relay_store_supported(&ops) == 0);
	CHECK(relay_store_supported(NULL) == 0);
}

static void test_no_bus(void)
{
	relay_notify(NULL);
	relay_event(NULL, "contact.created", "{}", 2);
	relay_stop(NULL);
	relay_free(NULL);
	CHECK(strcmp(relay_state(NULL), "none") == 0);
	cJSON *r = cJSON_CreateObject();
	relay_health(NULL, r);
	CHECK(cJSON_GetObjectItemCaseSensitive(r, "durable_bus") == NULL);
	cJSON_Delete(r);
	struct strbuf sb;
	sb_init(&sb);
	relay_metrics(NULL, &sb);
	CHECK(sb.len == 0);
	sb_free(&sb);
}

int main(void)
{
	test_store_supported();
	test_no_bus();
	TEST_DONE();
}
