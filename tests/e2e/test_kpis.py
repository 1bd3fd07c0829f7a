"""KPIs (docs/kpis.md) on SQLite: a synthetic history of 300 conversations built through the real
pipeline with a steered clock, over the webhook, Telegram and WhatsApp channels; every KPI computed
again here from what the test did, and `parley stats --json` gives the same figures, per channel, per
team and per agent, for the whole month and for a part of it."""
import json
import os

from harness import check, done
from kpihistory import TOKEN, History, compare, plan, run, sanity, sqlite_appender

h = History()
h.raw_sql = sqlite_appender(h)
try:
    h.start()
    customers, acts = plan(300)
    run(h, acts)
    got, total = compare(h, "2026-11-01", "2026-12-01", "channel")
    sanity(total)
    got_team, _ = compare(h, "2026-11-01", "2026-12-01", "team")
    # The same figures over HTTP, and refusals that name the field.
    st, body = h.gw.request("GET", "/api/v1/reports/kpis?from=2026-11-01&to=2026-12-01&by=team",
                            headers={"Authorization": "Bearer " + TOKEN})
    r = json.loads(body)
    r.pop("ok", None)
    check(st == 200 and r == got_team, f"GET /api/v1/reports/kpis answers what parley stats does: {st}")
    for q, field in (("by=colour", "'by'"), ("from=yesterday", "'from'"), ("from=2026-12-01&to=2026-11-01", "'from'")):
        st, body = h.gw.request("GET", f"/api/v1/reports/kpis?{q}", headers={"Authorization": "Bearer " + TOKEN})
        check(st == 400 and field in body.decode(), f"{q}: 400 naming {field}: {st} {body[:200]}")
    compare(h, "2026-11-01", "2026-12-01", "agent")
    # A part of the period: only what ended within it counts.
    compare(h, "2026-11-02T12:00:00.000Z", "2026-11-03T02:00:00.000Z", "channel")
    rc, out, err = h.gw.cli("stats", "-c", h.gw.config, "--from", "2026-11-01", "--to", "2026-12-01", "--by", "team")
    check(rc == 0 and "TOTAL" in out and "support" in out, f"the table: {out}")
    # A calendar that cannot be is refused at check time, with where.
    bad = os.path.join(h.gw.dir, "bad.yaml")
    with open(bad, "w") as f:
        f.write("reports:\n  business_hours: { timezone: Mars/Olympus, from: \"09:00\", to: \"18:00\" }\n"
                "  reopen_window: soon\n")
    rc, out, err = h.gw.cli("check", "-c", bad)
    check(rc != 0 and "bad.yaml:2:19: reports.business_hours: unknown timezone 'Mars/Olympus'" in err
          and "bad.yaml:3:18: reopen_window" in err, f"parley check names the calendar's errors: {err}")
finally:
    h.close()
done()
