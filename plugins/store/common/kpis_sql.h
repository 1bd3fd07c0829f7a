/*
 * kpis_sql.h: the one SQL statement of the store read op reports.kpis,
 * shared by the SQLite and PostgreSQL stores (both speak it: CTEs, window
 * functions, ->> on JSON, $N parameters).  docs/kpis.md defines each
 * figure in words; this is the definition the figures come from.
 *
 * Each store provides two functions: parley_ms(text) (an RFC 3339 time
 * as milliseconds since 1970; at_ms holds it for each row's at) and parley_business_ms(a, b, tz, days,
 * from_m, to_m) (the business milliseconds between two such times, under
 * weekly hours in an IANA zone; NULL when tz is NULL).
 *
 * Parameters: $1 from, $2 to (RFC 3339: rows with from <= at < to count),
 * $3 the dimension (channel, team or agent), $4 the reopen window (ms),
 * $5 the timezone (or NULL: no business time), $6 the days (bit 0 =
 * Sunday), $7 and $8 the hours (minutes after local midnight).
 *
 * It answers one row per (kind, total, key): n measures, hits and hits2
 * (how many satisfied the kind's conditions), and for durations the median
 * and 90th percentile (nearest rank: the value at rank ceil(p * n)) of the
 * calendar and business values.  total is 1 for the row over every key.
 * The statement is the same text on both stores but for the two percentile
 * aggregates (KPI_MEDIAN, KPI_P90 below).
 */
#ifndef PARLEY_STORE_KPIS_SQL_H
#define PARLEY_STORE_KPIS_SQL_H

/*
 * The includer defines KPI_MEDIAN(x) and KPI_P90(x): aggregates giving the nearest-rank median and 90th
 * percentile of x over a group (the value at rank ceil(p * n) of the non-null values; NULL when there are
 * none): parley_median and parley_p90 on SQLite (reports.c), percentile_disc WITHIN GROUP on PostgreSQL,
 * whose definition is the same.
 */
#if !defined(KPI_MEDIAN) || !defined(KPI_P90)
#error "define KPI_MEDIAN(x) and KPI_P90(x) before including kpis_sql.h"
#endif

/* The measures that are durations (the others have counts, and a score as their value). */
#define KPI_DURATION "(kind IN ('first_response', 'resolution', 'queue') OR kind LIKE 'sla.%')"
/* A human resolution: not by a bot, not by inactivity. */
#define KPI_HUMAN(actor)   "NOT (coalesce(" actor ", '') LIKE 'bot:%' OR coalesce(" actor ", '') = 'inactivity')"
#define KPI_IN_PERIOD(at)  at " >= $1 AND " at " < $2"
#define KPI_IN_PERIOD_T(t) t " >= parley_ms($1) AND " t " < parley_ms($2)"
#define KPI_HUMAN_REPLY(p) "(" p "type = 'replied' AND " p "data->>'kind' = 'agent')"
/* Every row sees the rows of its conversation before it (not itself). */
#define KPI_BEFORE                                                                                                     \
	"WINDOW w AS (PARTITION BY x.conversation_id ORDER BY x.seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
/* The start of a wait in the team's queue. */
#define KPI_QUEUE_START "(x.type = 'queued' OR (x.type = 'bot.handoff' AND x.data->>'to' = 'queue'))"
/* Who worked a conversation: its assignees and its human repliers. */
#define KPI_WORKER                                                                                                     \
	"CASE WHEN x.type = 'assigned' THEN x.data->>'assignee' WHEN " KPI_HUMAN_REPLY("x.") " THEN x.actor END"
/* The resolution r was followed by a reopening (o, the next one) within the reopen window. */
#define KPI_REOPENED_SOON(o, r) o ".t <= " r ".t + CAST($4 AS BIGINT)"

/* clang-format off */
static const char kpis_sql[] =
	"WITH cv AS (SELECT DISTINCT conversation_id FROM conversation_events WHERE " KPI_IN_PERIOD("at") "),"
	/* Every row of the conversations with a row in the period (of the types a measure reads: not status
	 * updates), read once, in order, with what the rows
	 * before it say: when a human could last start (start_t); how many human replies (n_hr), human
	 * resolutions (n_hres), resolutions (n_res), reopenings (n_reo), resolutions and bot handoffs (n_rh)
	 * came before; its queue: the latest start of a wait (q_seq, q_t) and the latest claim or assignment
	 * (o_seq); and the first and last of its workers by name (one worker when they are equal).  "The next
	 * reopening after a resolution" is then the reopening with as many reopenings before it as the
	 * resolution had, and so on: equality joins instead of a lookup per row. */
	" e AS MATERIALIZED (SELECT x.conversation_id AS cid, x.seq, x.type, x.at_ms AS t, x.actor,"
	"  x.agent, x.team, x.channel, CASE WHEN x.type IN ('replied', 'assigned', 'rated', 'sla.due', 'bot.claimed')"
	"   THEN x.data END AS data,"
	"  max(CASE WHEN x.type IN ('opened', 'reopened') OR (x.type = 'bot.handoff' AND x.data->>'to' = 'queue')"
	"   THEN x.at_ms END) OVER w AS start_t,"
	"  count(CASE WHEN " KPI_HUMAN_REPLY("x.") " THEN 1 END) OVER w AS n_hr,"
	"  count(CASE WHEN x.type = 'resolved' AND " KPI_HUMAN("x.actor") " THEN 1 END) OVER w AS n_hres,"
	"  count(CASE WHEN x.type = 'resolved' THEN 1 END) OVER w AS n_res,"
	"  count(CASE WHEN x.type = 'reopened' THEN 1 END) OVER w AS n_reo,"
	"  count(CASE WHEN x.type IN ('resolved', 'bot.handoff') THEN 1 END) OVER w AS n_rh,"
	"  max(CASE WHEN " KPI_QUEUE_START " THEN x.seq END) OVER w AS q_seq,"
	"  max(CASE WHEN " KPI_QUEUE_START " THEN x.at_ms END) OVER w AS q_t,"
	"  max(CASE WHEN x.type IN ('bot.claimed', 'assigned') THEN x.seq END) OVER w AS o_seq,"
	"  min(" KPI_WORKER ") OVER w AS w_min, max(" KPI_WORKER ") OVER w AS w_max"
	"  FROM conversation_events AS x WHERE x.conversation_id IN (SELECT conversation_id FROM cv) AND x.type IN"
	"  ('opened', 'reopened', 'queued', 'assigned', 'bot.claimed', 'bot.handoff', 'replied', 'resolved', 'rated',"
	"  'sla.due') " KPI_BEFORE "),"
	/* The reopenings; the resolutions and handoffs (which end a bot's claim); the answers to promises. */
	" rz AS MATERIALIZED (SELECT cid, n_reo, t FROM e WHERE type = 'reopened'),"
	" rh AS MATERIALIZED (SELECT cid, n_rh, CASE WHEN type = 'resolved' AND NOT (" KPI_HUMAN("actor") ")"
	"  THEN 1 ELSE 0 END AS bot_done FROM e WHERE type IN ('resolved', 'bot.handoff')),"
	" an AS MATERIALIZED (SELECT cid, type, n_hr, n_res, t, channel, team,"
	"  CASE WHEN type = 'replied' THEN actor ELSE agent END AS who FROM e WHERE " KPI_HUMAN_REPLY("") " OR type = 'resolved'),"
	/* Every measure: kind, its dimensions, value, business value, and its conditions. */
	" m AS ("
	"  SELECT 'opened' AS kind, channel, team, agent, 0 AS v, NULL AS b, 0 AS f1, 0 AS f2 FROM e"
	"   WHERE type = 'opened' AND " KPI_IN_PERIOD_T("t")
	"  UNION ALL SELECT 'first_response', channel, team, actor, t - start_t,"
	"   parley_business_ms(start_t, t, $5, $6, $7, $8), 0, 0 FROM e"
	"   WHERE " KPI_HUMAN_REPLY("") " AND n_hr = 0 AND start_t IS NOT NULL AND " KPI_IN_PERIOD_T("t")
	"  UNION ALL SELECT 'resolution', channel, team, agent, t - start_t,"
	"   parley_business_ms(start_t, t, $5, $6, $7, $8), 0, 0 FROM e"
	"   WHERE type = 'resolved' AND " KPI_HUMAN("actor") " AND start_t IS NOT NULL AND " KPI_IN_PERIOD_T("t")
	"  UNION ALL SELECT 'fcr', r.channel, r.team, r.agent, 0, NULL,"
	"   CASE WHEN (o.t IS NULL OR NOT " KPI_REOPENED_SOON("o", "r") ") AND (r.w_min IS NULL OR r.w_min = r.w_max)"
	"   THEN 1 ELSE 0 END, 0 FROM e AS r LEFT JOIN rz AS o ON o.cid = r.cid AND o.n_reo = r.n_reo"
	"   WHERE r.type = 'resolved' AND " KPI_HUMAN("r.actor") " AND r.n_hres = 0 AND " KPI_IN_PERIOD_T("r.t")
	"  UNION ALL SELECT 'reopen', r.channel, r.team, r.agent, 0, NULL,"
	"   CASE WHEN " KPI_REOPENED_SOON("o", "r") " THEN 1 ELSE 0 END,"
	"   CASE WHEN " KPI_HUMAN("r.actor") " THEN 0 ELSE 1 END FROM e AS r"
	"   LEFT JOIN rz AS o ON o.cid = r.cid AND o.n_reo = r.n_reo WHERE r.type = 'resolved' AND " KPI_IN_PERIOD_T("r.t")
	"  UNION ALL SELECT 'csat', channel, team, coalesce(data->>'agent', agent), CAST(data->>'score' AS BIGINT),"
	"   NULL, CASE WHEN CAST(data->>'score' AS BIGINT) >= 4 THEN 1 ELSE 0 END, 0 FROM e"
	"   WHERE type = 'rated' AND data->>'survey' = 'csat' AND " KPI_IN_PERIOD_T("t")
	"  UNION ALL SELECT 'nps', channel, team, coalesce(data->>'agent', agent), CAST(data->>'score' AS BIGINT),"
	"   NULL, CASE WHEN CAST(data->>'score' AS BIGINT) >= 9 THEN 1 ELSE 0 END,"
	"   CASE WHEN CAST(data->>'score' AS BIGINT) <= 6 THEN 1 ELSE 0 END FROM e"
	"   WHERE type = 'rated' AND data->>'survey' = 'nps' AND " KPI_IN_PERIOD_T("t")
	"  UNION ALL SELECT 'bot', r.channel, r.team, r.data->>'bot', 0, NULL, coalesce(y.bot_done, 0), 0 FROM e AS r"
	"   LEFT JOIN rh AS y ON y.cid = r.cid AND y.n_rh = r.n_rh WHERE r.type = 'bot.claimed' AND " KPI_IN_PERIOD_T("r.t")
	"  UNION ALL SELECT 'queue', channel, team, agent, t - q_t, NULL, 0, 0 FROM e"
	"   WHERE type = 'assigned' AND q_seq > coalesce(o_seq, 0) AND data->>'assignee' IS NOT NULL AND "
	KPI_IN_PERIOD_T("t")
	/* Each promise (sla.due) with the row that kept or broke it: the next human reply, or the next resolution. */
	"  UNION ALL SELECT 'sla.' || (d.data->>'target'), a.channel, a.team, a.who, a.t - parley_ms(d.data->>'due'), NULL,"
	"   CASE WHEN a.t > parley_ms(d.data->>'due') THEN 1 ELSE 0 END, 0 FROM e AS d JOIN an AS a ON a.cid = d.cid"
	"   AND a.type = 'replied' AND a.n_hr = d.n_hr WHERE d.type = 'sla.due'"
	"   AND d.data->>'target' IN ('first_response', 'next_response') AND parley_ms(d.data->>'due') IS NOT NULL AND "
	KPI_IN_PERIOD_T("a.t")
	"  UNION ALL SELECT 'sla.resolution', a.channel, a.team, a.who, a.t - parley_ms(d.data->>'due'), NULL,"
	"   CASE WHEN a.t > parley_ms(d.data->>'due') THEN 1 ELSE 0 END, 0 FROM e AS d JOIN an AS a ON a.cid = d.cid"
	"   AND a.type = 'resolved' AND a.n_res = d.n_res WHERE d.type = 'sla.due' AND d.data->>'target' = 'resolution'"
	"   AND parley_ms(d.data->>'due') IS NOT NULL AND " KPI_IN_PERIOD_T("a.t") "),"
	/* Each measure under its key, and again in the total: counted, and the durations' percentiles. */
	" mk AS MATERIALIZED (SELECT kind, CASE $3 WHEN 'channel' THEN channel WHEN 'team' THEN team ELSE agent END"
	"  AS grp, v, CASE WHEN " KPI_DURATION " THEN v END AS d, b, f1, f2 FROM m)"
	" SELECT kind, 0 AS total, grp, count(*) AS n, sum(f1) AS hits, sum(f2) AS hits2, " KPI_MEDIAN("d")
	"  AS median_ms, " KPI_P90("d") " AS p90_ms, " KPI_MEDIAN("b") " AS business_median_ms, " KPI_P90("b")
	"  AS business_p90_ms FROM mk GROUP BY kind, grp"
	" UNION ALL SELECT kind, 1, NULL, count(*), sum(f1), sum(f2), " KPI_MEDIAN("d") ", " KPI_P90("d") ", "
	KPI_MEDIAN("b") ", " KPI_P90("b") " FROM mk GROUP BY kind"
	" ORDER BY total, grp, kind";
/* clang-format on */

#endif
