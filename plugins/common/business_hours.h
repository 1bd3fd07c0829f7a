/*
 * business_hours.h: weekly business hours in an IANA timezone, read from
 * the system's zoneinfo (TZif, with its daylight-saving transitions), not
 * the process's TZ: for routers and bots that decide by the hour.
 *
 *   business_hours: { timezone: Asia/Seoul, days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00",
 *                     holidays: ["2026-12-25", "2027-01-01"] }
 *
 * days defaults to Monday to Friday; from later than to spans midnight
 * (22:00-06:00); a holiday is a local date closed all day (hours spanning
 * midnight belong to the day they start on).  Business time is counted to
 * the second over the open minutes: "due one business hour after Friday
 * 17:30" is Monday 09:30 with 09:00-18:00 hours.  Threads: a parsed struct
 * is read-only, safe from any thread.
 */
#ifndef PARLEY_BUSINESS_HOURS_H
#define PARLEY_BUSINESS_HOURS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct business_hours {
	int64_t *times;   /* the zone's transition times, ascending */
	int32_t *offsets; /* UTC offset in effect from times[i] */
	size_t n;
	int32_t initial;
	int days;         /* bit 0 = Sunday */
	int from_m, to_m; /* minutes after local midnight */
	int *holidays;    /* local dates closed all day, as yyyymmdd, ascending */
	size_t n_holidays;
};

/* Parse {timezone, days, from, to}: 0, or -1 with *err (malloc'd) saying what is wrong. */
int bh_parse(const cJSON *config, struct business_hours *out, char **err);
void bh_free(struct business_hours *bh);
/* 1 when now is within the hours. */
int bh_open(const struct business_hours *bh, time_t now);
/* The first minute at or after now within the hours (now itself when open); now when there are none. */
time_t bh_next_open(const struct business_hours *bh, time_t now);
/* t as the zone's local time. */
void bh_local(const struct business_hours *bh, time_t t, struct tm *out);
/*
 * The milliseconds between a_ms and b_ms (since 1970) within the hours:
 * each day's window [from, to) of the days, local times converted with the
 * offset in effect then (0 when b_ms <= a_ms).  The KPIs' business time.
 */
int64_t bh_business_ms(const struct business_hours *bh, int64_t a_ms, int64_t b_ms);

/*
 * The moment `seconds` of business time have passed after t (t itself for
 * 0), counting only open hours; 0 when the hours never open again within
 * a year (no days, or every day a holiday).
 */
time_t bh_add_seconds(const struct business_hours *bh, time_t t, int64_t seconds);
/* The business time in seconds between t1 and t2; 0 when t2 <= t1. */
int64_t bh_seconds_between(const struct business_hours *bh, time_t t1, time_t t2);
/* The same in business minutes: "add N business minutes to T", "business minutes between T1 and T2". */
time_t bh_add_minutes(const struct business_hours *bh, time_t t, int64_t minutes);
int64_t bh_minutes_between(const struct business_hours *bh, time_t t1, time_t t2);

#endif
