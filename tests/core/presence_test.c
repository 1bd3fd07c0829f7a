/* presence_test.c: core/presence.c: who else is seen where, typing or not, and forgotten after the TTL. */
#include "presence.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* "agent:typing,agent:typing" of a viewers array, for comparing. */
static const char *names(cJSON *a)
{
	static char out[256];
	out[0] = '\0';
	const cJSON *v;
	cJSON_ArrayForEach(v, a)
	{
		size_t n = strlen(out);
		snprintf(out + n, sizeof(out) - n, "%s%s:%d", n ? "," : "",
		         cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "agent")),
		         cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "typing")));
	}
	cJSON_Delete(a);
	return out;
}

int main(void)
{
	struct presence *p;
	CHECK(presence_open(&p) == 0);
	int64_t t = 1000000;
	CHECK(strcmp(names(presence_beat(p, "c1", "ana", 0, t)), "") == 0);
	CHECK(strcmp(names(presence_beat(p, "c1", "bo", 1, t + 10)), "ana:0") == 0);
	CHECK(strcmp(names(presence_beat(p, "c1", "ana", 0, t + 20)), "bo:1") == 0);
	/* Another conversation's viewers are not these; a caller without a name only looks. */
	CHECK(strcmp(names(presence_beat(p, "c2", "cy", 0, t + 30)), "") == 0);
	CHECK(strcmp(names(presence_beat(p, "c1", NULL, 0, t + 40)), "ana:0,bo:1") == 0);
	/* bo stops typing; then nobody hears from him within the TTL and he is gone. */
	CHECK(strcmp(names(presence_beat(p, "c1", "bo", 0, t + 50)), "ana:0") == 0);
	CHECK(strcmp(names(presence_beat(p, "c1", "ana", 0, t + 50 + PRESENCE_TTL_MS)), "bo:0") == 0);
	CHECK(strcmp(names(presence_beat(p, "c1", "ana", 0, t + 51 + PRESENCE_TTL_MS)), "") == 0);
	/* Memory stays bounded: many viewers, and the oldest are forgotten first. */
	char conv[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(conv, sizeof(conv), "k%d", i);
		cJSON_Delete(presence_beat(p, conv, "ana", 0, t + 100 + PRESENCE_TTL_MS + i));
	}
	CHECK(strcmp(names(presence_beat(p, "k4999", NULL, 0, t + 5100 + PRESENCE_TTL_MS)), "ana:0") == 0);
	CHECK(strcmp(names(presence_beat(p, "k0", NULL, 0, t + 5100 + PRESENCE_TTL_MS)), "") == 0);
	presence_free(p);
	TEST_DONE();
}
