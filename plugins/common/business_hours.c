/* business_hours.c: weekly hours in an IANA timezone (see business_hours.h). */
#include "business_hours.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t be(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	if (bytes == 4)
		return (int32_t)(uint32_t)v;
	return (int64_t)v;
}

/* Read a TZif file's transitions (the 64-bit block of version 2+ files). */
static int zone_load(struct business_hours *z, const char *name, char **err)
{
	if (strstr(name, "..") || name[0] == '/') {
		*err = strdup("timezone must be an IANA name such as Asia/Seoul");
		return -1;
	}
	char path[512];
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		size_t n = strlen(name) + 120;
		*err = malloc(n);
		snprintf(*err, n, "unknown timezone '%s' (no %s; is the tzdata package installed?)", name, path);
		return -1;
	}
	unsigned char *buf = malloc(1 << 20);
	size_t len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	int rv = -1;
	size_t off = 0;
	for (int pass = 0; pass < 2; pass++) {
		if (len < off + 44 || memcmp(buf + off, "TZif", 4) != 0)
			break;
		int version = buf[off + 4];
		int64_t isut = be(buf + off + 20, 4), isstd = be(buf + off + 24, 4), leap = be(buf + off + 28, 4);
		int64_t timecnt = be(buf + off + 32, 4), typecnt = be(buf + off + 36, 4),
		        charcnt = be(buf + off + 40, 4);
		int tsize = pass == 0 ? 4 : 8;
		size_t body =
		        (size_t)(timecnt * tsize + timecnt + typecnt * 6 + charcnt + leap * (tsize + 4) + isstd + isut);
		if (len < off + 44 + body || typecnt < 1)
			break;
		if (pass == 0 && version >= '2') {
			off += 44 + body; /* use the 64-bit block that follows */
			continue;
		}
		const unsigned char *p = buf + off + 44;
		const unsigned char *idx = p + timecnt * tsize;
		const unsigned char *types = idx + timecnt;
		z->times = calloc((size_t)timecnt + 1, sizeof(int64_t));
		z->offsets = calloc((size_t)timecnt + 1, sizeof(int32_t));
		z->n = (size_t)timecnt;
		for (int64_t i = 0; i < timecnt; i++) {
			z->times[i] = be(p + i * tsize, tsize);
			int t = idx[i] < typecnt ? idx[i] : 0;
			z->offsets[i] = (int32_t)be(types + t * 6, 4);
		}
		z->initial = (int32_t)be(types, 4);
		rv = 0;
		break;
	}
	free(buf);
	if (rv != 0) {
		size_t n = strlen(path) + 60;
		*err = malloc(n);
		snprintf(*err, n, "%s is not a TZif zoneinfo file", path);
	}
	return rv;
}

static int32_t zone_offset(const struct business_hours *z, int64_t t)
{
	if (z->n == 0 || t < z->times[0])
		return z->initial;
	size_t lo = 0, hi = z->n;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (z->times[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return z->offsets[lo];
}

static int parse_hhmm(const char *s, int *out)
{
	int h, m;
	if (!s || sscanf(s, "%d:%d", &h, &m) != 2 || h < 0 || h > 24 || m < 0 || m > 59)
		return -1;
	*out = h * 60 + m;
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* holidays: ["2026-12-25", ...], kept as sorted yyyymmdd numbers. */
static int parse_holidays(const cJSON *list, struct business_hours *out, char **err)
{
	if (!list)
		return 0;
	if (!cJSON_IsArray(list)) {
		*err = strdup("business_hours holidays must be a list of dates such as \"2026-12-25\"");
		return -1;
	}
	int n = cJSON_GetArraySize(list);
	out->holidays = calloc(n > 0 ? (size_t)n : 1, sizeof(int));
	if (!out->holidays) {
		*err = strdup("out of memory");
		return -1;
	}
	const cJSON *d;
	cJSON_ArrayForEach(d, list)
	{
		int y, m, dd;
		char tail;
		const char *s = cJSON_GetStringValue(d);
		if (!s || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &dd, &tail) != 3 || y < 1970 || y > 9999 || m < 1 ||
		    m > 12 || dd < 1 || dd > 31) {
			size_t len = 120 + (s ? strlen(s) : 0);
			*err = malloc(len);
			if (*err)
				snprintf(*err, len, "business_hours holiday '%s' is not a date such as \"2026-12-25\"",
				         s ? s : "(not a string)");
			return -1;
		}
		out->holidays[out->n_holidays++] = y * 10000 + m * 100 + dd;
	}
	qsort(out->holidays, out->n_holidays, sizeof(int), cmp_int);
	return 0;
}

/* 1 when the local day of tm is a holiday. */
static int holiday(const struct business_hours *bh, const struct tm *tm)
{
	int key = (tm->tm_year + 1900) * 10000 + (tm->tm_mon + 1) * 100 + tm->tm_mday;
	return bh->n_holidays && bsearch(&key, bh->holidays, bh->n_holidays, sizeof(int), cmp_int) != NULL;
}

int bh_parse(const cJSON *bh, struct business_hours *out, char **err)
{
	memset(out, 0, sizeof(*out));
	const char *tz = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bh, "timezone"));
	if (zone_load(out, tz ? tz : "UTC", err) != 0)
		return -1;
	if (parse_hhmm(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bh, "from")), &out->from_m) != 0 ||
	    parse_hhmm(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bh, "to")), &out->to_m) != 0) {
		*err = strdup("business_hours needs from and to as HH:MM");
		bh_free(out);
		return -1;
	}
	static const char *const names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
	const cJSON *d;
	const cJSON *days = cJSON_GetObjectItemCaseSensitive(bh, "days");
	if (!days)
		out->days = 0x3e; /* Monday to Friday */
	cJSON_ArrayForEach(d, days)
	{
		int found = 0;
		for (int j = 0; j < 7; j++)
			if (cJSON_IsString(d) && strncmp(d->valuestring, names[j], 3) == 0)
				out->days |= 1 << j, found = 1;
		if (!found) {
			*err = strdup("business_hours days are mon, tue, wed, thu, fri, sat, sun");
			bh_free(out);
			return -1;
		}
	}
	if (parse_holidays(cJSON_GetObjectItemCaseSensitive(bh, "holidays"), out, err) != 0) {
		bh_free(out);
		return -1;
	}
	return 0;
}

void bh_free(struct business_hours *bh)
{
	free(bh->times);
	free(bh->offsets);
	free(bh->holidays);
	bh->times = NULL;
	bh->offsets = NULL;
	bh->holidays = NULL;
	bh->n = 0;
	bh->n_holidays = 0;
}

void bh_local(const struct business_hours *bh, time_t t, struct tm *out)
{
	time_t local = t + zone_offset(bh, (int64_t)t);
	gmtime_r(&local, out);
}

int bh_open(const struct business_hours *bh, time_t now)
{
	struct tm tm;
	bh_local(bh, now, &tm);
	int m = tm.tm_hour * 60 + tm.tm_min;
	if (bh->from_m <= bh->to_m)
		return (bh->days >> tm.tm_wday & 1) && m >= bh->from_m && m < bh->to_m && !holiday(bh, &tm);
	/* 22:00-06:00 spans midnight: the early part belongs to the day before. */
	if (m >= bh->from_m)
		return (bh->days >> tm.tm_wday & 1) && !holiday(bh, &tm);
	if (m >= bh->to_m || !(bh->days >> ((tm.tm_wday + 6) % 7) & 1))
		return 0;
	struct tm before;
	bh_local(bh, now - 86400, &before);
	return !holiday(bh, &before);
}

/* The first minute boundary after t at which the hours are open (want 1) or closed (want 0); 0 after limit minutes. */
static time_t next_state(const struct business_hours *bh, time_t t, int want, int limit)
{
	time_t m = t - t % 60 + 60;
	for (int i = 0; i < limit; i++, m += 60)
		if (bh_open(bh, m) == want)
			return m;
	return 0;
}

time_t bh_next_open(const struct business_hours *bh, time_t now)
{
	/* Minute by minute from the next whole minute, at most eight days: simple and exact across transitions. */
	if (bh_open(bh, now))
		return now;
	time_t t = next_state(bh, now, 1, 8 * 24 * 60);
	return t ? t : now;
}

#define YEAR_MINUTES (366 * 24 * 60)

time_t bh_add_seconds(const struct business_hours *bh, time_t t, int64_t seconds)
{
	while (seconds > 0) {
		if (!bh_open(bh, t) && !(t = next_state(bh, t, 1, YEAR_MINUTES)))
			return 0;
		/* An open run lasts until the next closed minute (a calendar open around the clock: a year). */
		time_t end = next_state(bh, t, 0, YEAR_MINUTES);
		if (!end)
			end = t + (time_t)YEAR_MINUTES * 60;
		int64_t run = (int64_t)(end - t);
		if (run >= seconds)
			return t + (time_t)seconds;
		seconds -= run;
		t = end;
	}
	return t;
}

int64_t bh_seconds_between(const struct business_hours *bh, time_t t1, time_t t2)
{
	int64_t sum = 0;
	while (t1 < t2) {
		if (!bh_open(bh, t1) && !(t1 = next_state(bh, t1, 1, YEAR_MINUTES)))
			break;
		if (t1 >= t2)
			break;
		time_t end = next_state(bh, t1, 0, YEAR_MINUTES);
		if (!end || end > t2)
			end = t2;
		sum += (int64_t)(end - t1);
		t1 = end;
	}
	return sum;
}

time_t bh_add_minutes(const struct business_hours *bh, time_t t, int64_t minutes)
{
	return bh_add_seconds(bh, t, minutes * 60);
}

int64_t bh_minutes_between(const struct business_hours *bh, time_t t1, time_t t2)
{
	return bh_seconds_between(bh, t1, t2) / 60;
}

/* The UTC time of a local time (seconds), with the offset in effect then. */
static int64_t local_to_utc(const struct business_hours *bh, int64_t local)
{
	int64_t u = local - zone_offset(bh, local);
	return local - zone_offset(bh, u);
}

int64_t bh_business_ms(const struct business_hours *bh, int64_t a_ms, int64_t b_ms)
{
	if (b_ms <= a_ms)
		return 0;
	int span = bh->to_m < bh->from_m;
	int64_t a_local = a_ms / 1000 + zone_offset(bh, a_ms / 1000);
	int64_t total = 0;
	/* From the local day before a's (a window spanning midnight begins then) to the last that opens before b. */
	for (int64_t day = a_local / 86400 - 1;; day++) {
		int64_t start = local_to_utc(bh, day * 86400 + bh->from_m * 60) * 1000;
		int64_t end = local_to_utc(bh, day * 86400 + (bh->to_m + (span ? 1440 : 0)) * 60) * 1000;
		if (start >= b_ms)
			break;
		int wday = (int)((day % 7 + 4 + 7) % 7); /* 1970-01-01 was a Thursday */
		int64_t lo = start > a_ms ? start : a_ms, hi = end < b_ms ? end : b_ms;
		if ((bh->days >> wday & 1) && hi > lo)
			total += hi - lo;
	}
	return total;
}
