"""A long report does not stall the gateway's other readers.

A year of KPIs over a large history takes seconds.  While `parley stats` computes it, `/healthz` (what a load
balancer asks), `parley api health` and the inbox's conversation list must still answer: the SQLite store
reads reports on a connection of their own, and the control socket answers several requests at once.  The
test writes 40,000 conversations' history into the store, starts a year's report, and asks the others while
it runs: each must be answered before the report is (an order, not a time limit)."""
import json
import os
import sqlite3
import subprocess
import threading
import time

from harness import PARLEY, Gateway, check, done

N = 40000
gw = Gateway(config_body="""pipelines:
  - name: inbound
    steps: [dedupe, identify, thread]
""")
try:
    gw.start()
    gw.stop()
    db = sqlite3.connect(os.path.join(gw.dir, "var", "parley.db"))
    rows = []
    t0 = 1767225600000  # 2026-01-01T00:00:00Z

    def iso(ms):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"

    for i in range(N):
        cid, t = f"C{i:09d}", t0 + (i * 7919 % 360) * 86400000 + i % 86400000
        agent = ("ana", "bo", "cy")[i % 3]
        for k, (kind, data, actor) in enumerate((
                ("opened", {"channel": "hooks", "by": "contact"}, "contact"),
                ("queued", {"team": "web", "by": "router"}, "router"),
                ("assigned", {"assignee": agent, "team": "web", "by": "queue"}, "queue"),
                ("replied", {"by": agent, "kind": "agent"}, agent),
                ("replied", {"by": agent, "kind": "agent"}, agent),
                ("resolved", {"by": agent}, agent))):
            at = t + k * 600000
            rows.append((cid, kind, json.dumps(data), iso(at), actor, agent if k > 1 else None,
                         "web" if k else None, "hooks", at))
    db.executemany("INSERT INTO conversation_events (conversation_id, type, data, at, actor, agent, team, channel,"
                   " at_ms) VALUES (?,?,?,?,?,?,?,?,?)", rows)
    db.commit()
    db.close()
    gw.start()

    finished = {}

    def report():
        r = subprocess.run([PARLEY, "stats", "-c", gw.config, "--from", "2026-01-01", "--to", "2027-01-01",
                            "--by", "agent", "--json"], capture_output=True, text=True, timeout=170)
        finished["report"] = time.monotonic()
        finished["report_out"] = (r.returncode, r.stdout, r.stderr)

    th = threading.Thread(target=report)
    th.start()
    time.sleep(0.3)  # the report has started: its CLI connected and sent the request
    answered = []
    for what in ("healthz", "api health", "conversations.list"):
        if what == "healthz":
            st, _ = gw.request("GET", "/healthz")
            ok = st == 200
        elif what == "api health":
            rc, r = gw.api("health")
            ok = rc == 0 and r.get("ok")
        else:
            rc, r = gw.api("conversations.list", {})
            ok = rc == 0 and r.get("ok")
        answered.append((what, ok, time.monotonic()))
    th.join()
    rc, out, err = finished["report_out"]
    check(rc == 0, f"the year's report was computed: {err[-300:]}")
    got = json.loads(out) if rc == 0 else {}
    check(got.get("total", {}).get("conversations_opened") == N and
          got.get("total", {}).get("resolution", {}).get("count") == N,
          f"the report counts the {N} conversations opened and resolved: {json.dumps(got.get('total'))[:300]}")
    for what, ok, at in answered:
        check(ok, f"{what} answered during the report")
        check(at < finished["report"], f"{what} was answered before the report finished, not after it "
                                       f"({at - finished['report']:+.2f} s)")
finally:
    gw.cleanup()
done()
