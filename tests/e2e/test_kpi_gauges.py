"""/metrics' parley_kpi_* gauges (docs/kpis.md, core/kpi_gauges.c) on SQLite: a history built through the
real pipeline with a steered clock (kpihistory.py); the gauges of every channel and of the total
(channel="") equal the figures `parley stats --json` gives for the current month, computed on their own
thread every reports.metrics_interval (1s here): new activity shows up after a refresh, a failed
computation keeps the last figures and counts parley_kpi_errors_total, a reload leaves them running, and
metrics_interval: 0 leaves no parley_kpi_* series at all."""
import os
import re
import sqlite3
import time

from harness import check, done
from kpihistory import History, compare, plan, run, sqlite_appender

# The gauges and the figure of the report each one shows (and its unit: ms become seconds).
GAUGES = {
    "first_response_median_seconds": ("first_response", "median_ms", 1000),
    "resolution_median_seconds": ("resolution", "median_ms", 1000),
    "fcr_percent": ("fcr", "rate", 1),
    "reopen_percent": ("resolutions", "reopen_rate", 1),
    "csat_percent": ("csat", "score", 1),
    "nps": ("nps", "score", 1),
    "bot_containment_percent": ("bot", "containment_rate", 1),
}
SAMPLE = re.compile(r'^parley_kpi_(\w+?)(?:\{channel="([^"]*)"\})? (\S+)$')

h = History()
h.raw_sql = sqlite_appender(h)


def scrape():
    """/metrics' parley_kpi_* samples: {(name, channel): value}, channel None for the unlabelled ones."""
    st, body = h.gw.request("GET", "/metrics")
    check(st == 200, f"/metrics answers: {st}")
    out = {}
    for line in body.decode().splitlines():
        m = SAMPLE.match(line)
        if m:
            out[(m.group(1), m.group(2))] = float(m.group(3))
    return out


def wanted(report):
    """The samples the gauges must show for a report of parley stats --json --by channel."""
    out = {}
    for key, fig in [(g["key"], g) for g in report["groups"]] + [("", report["total"])]:
        for name, (a, b, div) in GAUGES.items():
            v = fig[a][b]
            if v is not None:
                out[(name, key)] = v / div
    return out


def figures(samples):
    return {k: v for k, v in samples.items() if k[1] is not None}


def refreshed_after(t, timeout=30):
    """The samples of the first scrape whose figures were computed after t (wall clock), or None."""
    end = time.time() + timeout
    while time.time() < end:
        s = scrape()
        if s.get(("computed_timestamp_seconds", None), 0) > t:
            return s
        time.sleep(0.1)
    return None


def rename(a, b):
    db = sqlite3.connect(os.path.join(h.gw.dir, "var", "parley.db"), timeout=10)
    with db:
        db.execute(f"ALTER TABLE {a} RENAME TO {b}")
    db.close()


def set_interval(value):
    """reports.metrics_interval: value, or the default when value is None."""
    text = re.sub(r"(?m)^  metrics_interval: .*\n", "", open(h.gw.config).read())
    if value is not None:
        text = text.replace("reports:\n", f"reports:\n  metrics_interval: {value}\n", 1)
    with open(h.gw.config, "w") as f:
        f.write(text)


try:
    set_interval("1s")
    h.start()
    customers, acts = plan(60, seed=7)
    half = 110
    run(h, [a for a in acts if a["step"] < half])
    report, _ = compare(h, "2026-11-01", "2026-12-01", "channel")
    t = time.time()
    want = wanted(report)
    check({k for _, k in want} == {"hooks", "tg", "wa", ""} and {n for n, _ in want} == set(GAUGES),
          f"the history gives every gauge for every channel and the total: {sorted(want)}")
    got = refreshed_after(t)
    check(got is not None, "the gauges are computed again within 30 s (metrics_interval: 1s)")
    got = got or {}
    check(figures(got) == want, f"the gauges are parley stats' figures of the month: {figures(got)} != {want}")
    check(got.get(("compute_seconds", None), -1) >= 0 and got.get(("errors_total", None)) == 0,
          f"the computation's cost is shown and nothing failed: {got}")

    # A reload leaves the gauges computing; the rest of the month's activity shows up after a refresh.
    set_interval("2s")
    r = h.op("config.reload", {})
    check(r.get("restart_needed") == ["reports"] and "channels" in r,
          f"config.reload applied, and says the new interval takes a restart: {r}")
    run(h, [a for a in acts if a["step"] >= half])
    report2, _ = compare(h, "2026-11-01", "2026-12-01", "channel")
    want2 = wanted(report2)
    check(want2 != want, "the new activity changed the figures (a stale cache would show)")
    t = time.time()
    got = refreshed_after(t) or {}
    check(figures(got) == want2, f"after new activity the gauges are refreshed: {figures(got)} != {want2}")

    # A computation that fails keeps the last figures, counts the error and says so once.
    rename("conversation_events", "conversation_events_away")
    end = time.time() + 30
    while time.time() < end and got.get(("errors_total", None), 0) < 2:
        time.sleep(0.1)
        got = scrape()
    check(got.get(("errors_total", None), 0) >= 2, f"failed computations are counted: {got}")
    check(figures(got) == want2, f"the last figures are kept while the store fails: {figures(got)}")
    warned = h.gw.read_log().count("gauges were not computed")
    check(warned == 1, f"the failure streak is logged once: {warned} times")
    rename("conversation_events_away", "conversation_events")
    t = time.time()
    got = refreshed_after(t) or {}
    check(figures(got) == want2, f"the gauges are computed again once the store works: {figures(got)}")
    check("gauges are computed again after" in h.gw.read_log(), "the recovery is logged")

    # metrics_interval: 0: no gauges at all (the history would give them), and a clean stop before.
    check(h.gw.stop() == 0, "the gateway stops cleanly while computing the gauges")
    set_interval("0")
    h.start()
    st, body = h.gw.request("GET", "/metrics")
    check(st == 200 and b"parley_http_responses_total" in body and b"parley_kpi" not in body,
          f"metrics_interval: 0 leaves no parley_kpi_* series: {[x for x in body.decode().splitlines() if 'kpi' in x]}")

    # The default (60s) computes them at start: the same figures, from the first computation.
    check(h.gw.stop() == 0, "the gateway stops cleanly without gauges")
    set_interval(None)
    h.start()
    got = refreshed_after(0) or {}
    check(figures(got) == want2, f"by default the gauges are computed at start: {figures(got)}")

    # Refusals name the file, line and column.
    bad = os.path.join(h.gw.dir, "bad.yaml")
    for value, why in (("200ms", "metrics_interval: '200ms' is shorter than 1s"),
                       ("often", "metrics_interval: 'often' is not a duration")):
        with open(bad, "w") as f:
            f.write(f"reports:\n  metrics_interval: {value}\n")
        rc, out, err = h.gw.cli("check", "-c", bad)
        check(rc != 0 and f"bad.yaml:2:21: {why}" in err, f"parley check refuses metrics_interval {value}: {err}")
finally:
    h.close()
done()
