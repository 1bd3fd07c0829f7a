/*
 * business_hours_test.c: open hours, holidays and business-time arithmetic
 * (plugins/common/business_hours.c) in real zones: Asia/Seoul (no DST) and
 * America/New_York across its spring-forward and fall-back nights.
 */
#include "test.h"

#include "business_hours.h"

#include <cjson/cJSON.h>

/* Seconds since the epoch of a UTC time. */
static time_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
	return timegm(&tm);
}

static int parse(const char *json, struct business_hours *bh, char **err)
{
	cJSON *c = cJSON_Parse(json);
	*err = NULL;
	int rv = bh_parse(c, bh, err);
	cJSON_Delete(c);
	return rv;
}

static void seoul(void)
{
	struct business_hours bh;
	char *err;
	CHECK(parse("{\"timezone\":\"Asia/Seoul\",\"from\":\"09:00\",\"to\":\"18:00\"}", &bh, &err) == 0);
	/* Friday 2026-12-04 17:30 KST is 08:30 UTC: one business hour later is Monday 09:30 KST (00:30 UTC). */
	time_t fri = utc(2026, 12, 4, 8, 30);
	CHECK(bh_add_minutes(&bh, fri, 60) == utc(2026, 12, 7, 0, 30));
	CHECK(bh_minutes_between(&bh, fri, utc(2026, 12, 7, 0, 30)) == 60);
	/* 80% of the hour: 48 minutes, 30 on Friday and 18 on Monday. */
	CHECK(bh_add_minutes(&bh, fri, 48) == utc(2026, 12, 7, 0, 18));
	/* Seconds count: 17:30:20 plus 60 business minutes is 09:30:20. */
	CHECK(bh_add_seconds(&bh, fri + 20, 3600) == utc(2026, 12, 7, 0, 30) + 20);
	/* A weekend start counts from Monday 09:00; the weekend itself is worth nothing. */
	CHECK(bh_add_minutes(&bh, utc(2026, 12, 5, 3, 0), 30) == utc(2026, 12, 7, 0, 30));
	CHECK(bh_minutes_between(&bh, utc(2026, 12, 4, 9, 0), utc(2026, 12, 7, 0, 0)) == 0);
	/* A whole week is 5 x 9 hours. */
	CHECK(bh_minutes_between(&bh, utc(2026, 11, 30, 0, 0), utc(2026, 12, 7, 0, 0)) == 45 * 60);
	CHECK(bh_minutes_between(&bh, utc(2026, 12, 7, 0, 0), utc(2026, 11, 30, 0, 0)) == 0);
	CHECK(bh_add_minutes(&bh, fri, 0) == fri);
	bh_free(&bh);
}

static void holidays(void)
{
	struct business_hours bh;
	char *err;
	CHECK(parse("{\"timezone\":\"Asia/Seoul\",\"from\":\"09:00\",\"to\":\"18:00\","
	            "\"holidays\":[\"2026-12-25\",\"2026-12-07\"]}",
	            &bh, &err) == 0);
	/* Monday 2026-12-07 is a holiday: Friday 17:30 + 1h is Tuesday 09:30. */
	CHECK(bh_add_minutes(&bh, utc(2026, 12, 4, 8, 30), 60) == utc(2026, 12, 8, 0, 30));
	CHECK(!bh_open(&bh, utc(2026, 12, 7, 2, 0)));
	CHECK(bh_open(&bh, utc(2026, 12, 8, 2, 0)));
	/* Christmas (a Friday) is not counted between Thursday 18:00 and Monday 09:00. */
	CHECK(bh_minutes_between(&bh, utc(2026, 12, 24, 0, 0), utc(2026, 12, 28, 0, 0)) == 9 * 60);
	bh_free(&bh);
	CHECK(parse("{\"timezone\":\"Asia/Seoul\",\"from\":\"09:00\",\"to\":\"18:00\",\"holidays\":[\"12/25\"]}", &bh,
	            &err) != 0);
	CHECK_CONTAINS(err, "12/25");
	free(err);
	/* No open day at all: nothing is ever due. */
	CHECK(parse("{\"timezone\":\"UTC\",\"from\":\"09:00\",\"to\":\"18:00\",\"days\":[]}", &bh, &err) == 0);
	CHECK(bh_add_minutes(&bh, utc(2026, 12, 4, 8, 30), 60) == 0);
	bh_free(&bh);
}

static void dst(void)
{
	struct business_hours bh;
	char *err;
	/* New York, open around the clock: the spring-forward Sunday 2026-03-08 is a 23-hour local day. */
	CHECK(parse("{\"timezone\":\"America/New_York\",\"from\":\"00:00\",\"to\":\"24:00\","
	            "\"days\":[\"sun\",\"mon\",\"tue\",\"wed\",\"thu\",\"fri\",\"sat\"]}",
	            &bh, &err) == 0);
	/* 2026-03-08 is the spring-forward Sunday: that local day is 23 hours long. */
	CHECK(bh_minutes_between(&bh, utc(2026, 3, 8, 5, 0), utc(2026, 3, 9, 4, 0)) == 23 * 60);
	bh_free(&bh);
	CHECK(parse("{\"timezone\":\"America/New_York\",\"from\":\"09:00\",\"to\":\"17:00\"}", &bh, &err) == 0);
	/* Friday 2026-03-06 16:30 EST (21:30 UTC) + 1h: Monday 09:30 EDT, which is 13:30 UTC (not 14:30). */
	CHECK(bh_add_minutes(&bh, utc(2026, 3, 6, 21, 30), 60) == utc(2026, 3, 9, 13, 30));
	/* Friday 2026-10-30 16:30 EDT (20:30 UTC) + 1h: Monday 09:30 EST after fall-back, 14:30 UTC. */
	CHECK(bh_add_minutes(&bh, utc(2026, 10, 30, 20, 30), 60) == utc(2026, 11, 2, 14, 30));
	/* A working week either side of the change is still 5 x 8 hours. */
	CHECK(bh_minutes_between(&bh, utc(2026, 3, 2, 5, 0), utc(2026, 3, 9, 4, 0)) == 40 * 60);
	CHECK(bh_minutes_between(&bh, utc(2026, 3, 9, 4, 0), utc(2026, 3, 16, 4, 0)) == 40 * 60);
	bh_free(&bh);
}

static void spans_midnight(void)
{
	struct business_hours bh;
	char *err;
	/* A night desk Friday 22:00 to Saturday 06:00 UTC; Friday the 4th a holiday closes that night. */
	CHECK(parse("{\"timezone\":\"UTC\",\"from\":\"22:00\",\"to\":\"06:00\",\"days\":[\"fri\"],"
	            "\"holidays\":[\"2026-12-04\"]}",
	            &bh, &err) == 0);
	CHECK(!bh_open(&bh, utc(2026, 12, 5, 2, 0)));
	CHECK(bh_open(&bh, utc(2026, 12, 12, 2, 0)));
	CHECK(bh_add_minutes(&bh, utc(2026, 12, 4, 23, 0), 60) == utc(2026, 12, 11, 23, 0));
	bh_free(&bh);
}

int main(void)
{
	seoul();
	holidays();
	dst();
	spans_midnight();
	TEST_DONE();
}
