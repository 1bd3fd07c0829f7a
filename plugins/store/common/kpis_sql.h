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
 */
#ifndef PARLEY_STORE_KPIS_SQL_H
#define PARLEY_STORE_KPIS_SQL_H

/* A human resolution: not by a bot, not by inactivity. */
#define KPI_HUMAN(actor)   "NOT (coalesce(" actor ", '') LIKE 'bot:%' OR coalesce(" actor ", '') = 'inactivity')"
#define KPI_IN_PERIOD(at)  at " >= $1 AND " at " < $2"
#define KPI_IN_PERIOD_T(t) t " >= parley_ms($1) AND " t " < parley_ms($2)"
#define KPI_HUMAN_REPLY(p) "(" p "type = 'replied' AND " p "data->>'kind' = 'agent')"
#define KPI_RUNNING        "OVER (PARTITION BY x.conversation_id ORDER BY x.seq ROWS UNBOUNDED PRECEDING)"
#define KPI_BEFORE                                                                                                     \
	"OVER (PARTITION BY x.conversation_id ORDER BY x.seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
/* The start of a wait in the team's queue. */
#define KPI_QUEUE_START "(x.type = 'queued' OR (x.type = 'bot.handoff' AND x.data->>'to' = 'queue'))"
#define KPI_REOPENED_AFTER(r)                                                                                          \
	"EXISTS (SELECT 1 FROM conversation_events AS z WHERE z.conversation_id = " r ".cid AND z.seq > " r ".seq"     \
	" AND z.type = 'reopened' AND z.at_ms <= " r ".t + CAST($4 AS BIGINT))"

/* clang-format off */
static const char kpis_sql[] =
	"WITH cv AS (SELECT DISTINCT conversation_id FROM conversation_events WHERE " KPI_IN_PERIOD("at") "),"
	/* Every row of the conversations with a row in the period, with: when a human could last start
	 * (start_t), how many human replies and human resolutions it had so far, and its queue: the latest
	 * start of a wait (q_seq, q_t) and the latest claim or assignment before the row (o_seq). */
	" e AS MATERIALIZED (SELECT x.conversation_id AS cid, x.seq, x.type, x.at_ms AS t, x.actor,"
	"  x.agent, x.team, x.channel, CASE WHEN x.type IN ('replied', 'assigned', 'rated', 'sla.due', 'bot.claimed')"
	"   THEN x.data END AS data,"
	"  max(CASE WHEN x.type IN ('opened', 'reopened') OR (x.type = 'bot.handoff' AND x.data->>'to' = 'queue')"
	"   THEN x.at_ms END) " KPI_RUNNING " AS start_t,"
	"  sum(CASE WHEN " KPI_HUMAN_REPLY("x.") " THEN 1 ELSE 0 END) " KPI_RUNNING " AS human_replies,"
	"  sum(CASE WHEN x.type = 'resolved' AND " KPI_HUMAN("x.actor") " THEN 1 ELSE 0 END) " KPI_RUNNING
	"   AS human_resolutions,"
	"  max(CASE WHEN " KPI_QUEUE_START " THEN x.seq END) " KPI_RUNNING " AS q_seq,"
	"  max(CASE WHEN " KPI_QUEUE_START " THEN x.at_ms END) " KPI_RUNNING " AS q_t,"
	"  max(CASE WHEN x.type IN ('bot.claimed', 'assigned') THEN x.seq END) " KPI_BEFORE " AS o_seq"
	"  FROM conversation_events AS x JOIN cv ON cv.conversation_id = x.conversation_id),"
	/* Each promise (sla.due) with the row that kept or broke it. */
	" sd AS (SELECT d.cid, d.data->>'target' AS target, parley_ms(d.data->>'due') AS due_t,"
	"  (SELECT min(z.seq) FROM conversation_events AS z WHERE z.conversation_id = d.cid AND z.seq > d.seq AND"
	"   ((d.data->>'target' IN ('first_response', 'next_response') AND " KPI_HUMAN_REPLY("z.") ") OR"
	"    (d.data->>'target' = 'resolution' AND z.type = 'resolved'))) AS aseq"
	"  FROM e AS d WHERE d.type = 'sla.due'),"
	/* Every measure: kind, its dimensions, value, business value, and its conditions. */
	" m AS ("
	"  SELECT 'opened' AS kind, channel, team, agent, 0 AS v, NULL AS b, 0 AS f1, 0 AS f2 FROM e"
	"   WHERE type = 'opened' AND " KPI_IN_PERIOD_T("t")
	"  UNION ALL SELECT 'first_response', channel, team, actor, t - start_t,"
	"   parley_business_ms(start_t, t, $5, $6, $7, $8), 0, 0 FROM e"
	"   WHERE " KPI_HUMAN_REPLY("") " AND human_replies = 1 AND start_t IS NOT NULL AND " KPI_IN_PERIOD_T("t")
	"  UNION ALL SELECT 'resolution', channel, team, agent, t - start_t,"
	"   parley_business_ms(start_t, t, $5, $6, $7, $8), 0, 0 FROM e"
	"   WHERE type = 'resolved' AND " KPI_HUMAN("actor") " AND start_t IS NOT NULL AND " KPI_IN_PERIOD_T("t")
	"  UNION ALL SELECT 'fcr', r.channel, r.team, r.agent, 0, NULL,"
	"   CASE WHEN NOT " KPI_REOPENED_AFTER("r")
	"   AND (SELECT count(DISTINCT CASE WHEN y.type = 'assigned' THEN y.data->>'assignee' ELSE y.actor END)"
	"    FROM conversation_events AS y WHERE y.conversation_id = r.cid AND y.seq < r.seq AND"
	"    ((y.type = 'assigned' AND y.data->>'assignee' IS NOT NULL) OR " KPI_HUMAN_REPLY("y.") ")) <= 1"
	"   THEN 1 ELSE 0 END, 0 FROM e AS r"
	"   WHERE r.type = 'resolved' AND " KPI_HUMAN("r.actor") " AND r.human_resolutions = 1 AND "
	KPI_IN_PERIOD_T("r.t")
	"  UNION ALL SELECT 'reopen', r.channel, r.team, r.agent, 0, NULL,"
	"   CASE WHEN " KPI_REOPENED_AFTER("r") " THEN 1 ELSE 0 END,"
	"   CASE WHEN " KPI_HUMAN("r.actor") " THEN 0 ELSE 1 END FROM e AS r"
	"   WHERE r.type = 'resolved' AND " KPI_IN_PERIOD_T("r.t")
	"  UNION ALL SELECT 'csat', channel, team, coalesce(data->>'agent', agent), CAST(data->>'score' AS BIGINT),"
	"   NULL, CASE WHEN CAST(data->>'score' AS BIGINT) >= 4 THEN 1 ELSE 0 END, 0 FROM e"
	"   WHERE type = 'rated' AND data->>'survey' = 'csat' AND " KPI_IN_PERIOD_T("t")
	"  UNION ALL SELECT 'nps', channel, team, coalesce(data->>'agent', agent), CAST(data->>'score' AS BIGINT),"
	"   NULL, CASE WHEN CAST(data->>'score' AS BIGINT) >= 9 THEN 1 ELSE 0 END,"
	"   CASE WHEN CAST(data->>'score' AS BIGINT) <= 6 THEN 1 ELSE 0 END FROM e"
	"   WHERE type = 'rated' AND data->>'survey' = 'nps' AND " KPI_IN_PERIOD_T("t")
	"  UNION ALL SELECT 'bot', r.channel, r.team, r.data->>'bot', 0, NULL,"
	"   coalesce((SELECT CASE WHEN z.type = 'resolved' AND NOT (" KPI_HUMAN("z.actor") ") THEN 1 ELSE 0 END"
	"    FROM conversation_events AS z WHERE z.conversation_id = r.cid AND z.seq > r.seq"
	"    AND z.type IN ('resolved', 'bot.handoff') ORDER BY z.seq LIMIT 1), 0), 0 FROM e AS r"
	"   WHERE r.type = 'bot.claimed' AND " KPI_IN_PERIOD_T("r.t")
	"  UNION ALL SELECT 'queue', channel, team, agent, t - q_t, NULL, 0, 0 FROM e"
	"   WHERE type = 'assigned' AND q_seq > coalesce(o_seq, 0) AND data->>'assignee' IS NOT NULL AND "
	KPI_IN_PERIOD_T("t")
	"  UNION ALL SELECT 'sla.' || sd.target, a.channel, a.team,"
	"   CASE WHEN a.type = 'replied' THEN a.actor ELSE a.agent END, a.t - sd.due_t, NULL,"
	"   CASE WHEN a.t > sd.due_t THEN 1 ELSE 0 END, 0 FROM sd JOIN e AS a ON a.cid = sd.cid AND a.seq = sd.aseq"
	"   WHERE sd.due_t IS NOT NULL AND " KPI_IN_PERIOD_T("a.t") "),"
	/* Each measure under its key, and again in the total: counted; the durations ranked for the percentiles. */
	" mk AS MATERIALIZED (SELECT kind, CASE $3 WHEN 'channel' THEN channel WHEN 'team' THEN team ELSE agent END"
	"  AS grp, v, b, f1, f2 FROM m),"
	" c AS MATERIALIZED (SELECT kind, 0 AS total, grp, count(*) AS n, sum(f1) AS hits, sum(f2) AS hits2 FROM mk"
	"  GROUP BY kind, grp UNION ALL SELECT kind, 1, NULL, count(*), sum(f1), sum(f2) FROM mk GROUP BY kind),"
	" g AS (SELECT kind, 0 AS total, grp, v, b FROM mk WHERE kind IN ('first_response', 'resolution', 'queue')"
	"  OR kind LIKE 'sla.%' UNION ALL SELECT kind, 1, NULL, v, b FROM mk WHERE kind IN ('first_response',"
	"  'resolution', 'queue') OR kind LIKE 'sla.%'),"
	" rv AS (SELECT kind, total, grp, v, row_number() OVER (PARTITION BY kind, total, grp ORDER BY v) AS k FROM g),"
	" rb AS (SELECT kind, total, grp, b, row_number() OVER (PARTITION BY kind, total, grp ORDER BY b) AS k FROM g"
	"  WHERE kind IN ('first_response', 'resolution') AND b IS NOT NULL),"
	" pv AS (SELECT rv.kind, rv.total, rv.grp, max(CASE WHEN rv.k = (c.n + 1) / 2 THEN rv.v END) AS median_ms,"
	"  max(CASE WHEN rv.k = (9 * c.n + 9) / 10 THEN rv.v END) AS p90_ms FROM rv JOIN c ON c.kind = rv.kind"
	"  AND c.total = rv.total AND c.grp IS NOT DISTINCT FROM rv.grp WHERE rv.k IN ((c.n + 1) / 2, (9 * c.n + 9) / 10)"
	"  GROUP BY rv.kind, rv.total, rv.grp),"
	" pb AS (SELECT rb.kind, rb.total, rb.grp, max(CASE WHEN rb.k = (c.n + 1) / 2 THEN rb.b END) AS median_ms,"
	"  max(CASE WHEN rb.k = (9 * c.n + 9) / 10 THEN rb.b END) AS p90_ms FROM rb JOIN c ON c.kind = rb.kind"
	"  AND c.total = rb.total AND c.grp IS NOT DISTINCT FROM rb.grp WHERE rb.k IN ((c.n + 1) / 2, (9 * c.n + 9) / 10)"
	"  GROUP BY rb.kind, rb.total, rb.grp)"
	" SELECT c.kind, c.total, c.grp, c.n, c.hits, c.hits2, pv.median_ms, pv.p90_ms,"
	"  pb.median_ms AS business_median_ms, pb.p90_ms AS business_p90_ms"
	" FROM c LEFT JOIN pv ON pv.kind = c.kind AND pv.total = c.total AND pv.grp IS NOT DISTINCT FROM c.grp"
	" LEFT JOIN pb ON pb.kind = c.kind AND pb.total = c.total AND pb.grp IS NOT DISTINCT FROM c.grp"
	" ORDER BY c.total, c.grp, c.kind";
/* clang-format on */

#endif
