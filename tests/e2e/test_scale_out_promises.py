"""Two nodes on one PostgreSQL keep the promises once: with both nodes sweeping, each conversation's
sla.warning and sla.breached are logged and published once (one node holds the lease "sla"; due
targets are locked with SKIP LOCKED), and each resolved conversation's survey is sent once (the
lease "surveys" and the survey's external_id), also when the node that was sweeping is killed.
The nodes share the test-only clock file (PARLEY_TEST_CLOCK_FILE)."""
import calendar
import json
import os
import signal
import threading
import time
import http.server

from cluster import Postgres, node, need
from harness import PARLEY, check, done, sign
from subscribers import subscribe

need(nats=False)
CLOCK = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"parley-cluster-clock-{os.getpid()}")
os.environ["PARLEY_TEST_CLOCK_FILE"] = CLOCK


def set_clock(iso):
    target = calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) * 1000
    with open(CLOCK + ".tmp", "w") as f:
        f.write(str(target - int(time.time() * 1000)))
    os.replace(CLOCK + ".tmp", CLOCK)
    time.sleep(0.05)


class Receiver(http.server.BaseHTTPRequestHandler):
    got = []
    lock = threading.Lock()

    def do_POST(self):
        env = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            self.got.append(env)
        data = json.dumps({"id": "ext-" + env["id"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=srv.serve_forever, daemon=True).start()
extra = f"""sla:
  calendars:
    seoul: {{ timezone: Asia/Seoul, days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00" }}
  policies:
    - name: standard
      business_hours: seoul
      first_response: 1h
surveys:
  - survey: csat
    delay: 5m
    text: "How did we do? 1 to 5"
"""
desk = f"""  - name: desk
    type: webhook
    config: {{ secret: desk, outbound_url: "http://127.0.0.1:{srv.server_address[1]}/out" }}
"""
set_clock("2026-12-04T08:30:00Z")
pg = Postgres()
a = node("node-a", pg, extra=extra, extra_channels=desk)
b = node("node-b", pg, extra=extra, extra_channels=desk)
tails = []


def wait_for(pred, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)
    return False


def logged(kind):
    return dict(pg.sql(f"SELECT conversation_id, count(*) FROM conversation_events WHERE type = '{kind}'"
                       " GROUP BY conversation_id"))


try:
    a.start()
    b.start()
    for g in (a, b):
        tails.append(subscribe([PARLEY, "tail", "-c", g.config, "sla."], g, text=True))
    convs = []
    for k in range(12):
        g = (a, b)[k % 2]
        body = json.dumps({"id": f"c{k}", "from": f"cust{k}", "text": "hello"}).encode()
        st, out = g.request("POST", "/webhooks/desk", body,
                            {"Content-Type": "application/json", "X-Parley-Signature": sign("desk", body)})
        check(st == 200, f"message {k}: {st}")
        rc, r = g.api("message.get", {"id": json.loads(out)["ids"][0]})
        convs.append(r["message"]["conversation_id"])

    set_clock("2026-12-07T00:19:00Z")  # Monday 09:19: past the warnings (09:18), before the breaches
    check(wait_for(lambda: len(logged("sla.warning")) == 12), f"every conversation warned: {logged('sla.warning')}")
    set_clock("2026-12-07T00:31:00Z")
    check(wait_for(lambda: len(logged("sla.breached")) == 12), f"every conversation breached: {logged('sla.breached')}")
    time.sleep(4.5)  # more sweeps on both nodes
    check(set(logged("sla.warning").values()) == {"1"} and set(logged("sla.breached").values()) == {"1"},
          f"once each across two sweeping nodes: {logged('sla.warning')} {logged('sla.breached')}")

    # Surveys: resolve all twelve, then kill the node holding the lease while they come due.
    for k, c in enumerate(convs):
        rc, r = (a, b)[k % 2].api("conversation.resolve", {"conversation_id": c})
        check(rc == 0, f"resolve {k}: {r}")
    holder = pg.sql("SELECT holder FROM leases WHERE name = 'surveys'")
    set_clock("2026-12-07T00:37:00Z")
    if holder and holder[0][0] == "node-a":
        a.stop(signal.SIGKILL)
    else:
        b.stop(signal.SIGKILL)
    check(wait_for(lambda: len([e for e in Receiver.got if (e.get("meta") or {}).get("survey")]) >= 12, 30),
          f"every customer is asked: {len(Receiver.got)}")
    time.sleep(3)
    asked = [e["to"] for e in Receiver.got if (e.get("meta") or {}).get("survey")]
    check(sorted(asked) == sorted(f"webhook:cust{k}" for k in range(12)), f"each asked once: {sorted(asked)}")
    rows = pg.sql("SELECT count(*), count(DISTINCT conversation_id) FROM surveys WHERE status = 'sent'")
    check(rows == [["12", "12"]], f"twelve surveys sent, one per conversation: {rows}")

    for t in tails:
        t.terminate()
    seen = {}
    for t in tails:
        out, _ = t.communicate(timeout=5)
        for line in out.splitlines():
            topic, js = line.split(" ", 1)
            key = (topic, json.loads(js)["conversation_id"])
            seen[key] = seen.get(key, 0) + 1
    check(len(seen) == 24 and set(seen.values()) == {1},
          f"a warning and a breach published per conversation, by one node: {sorted(seen.items())}")
finally:
    for t in tails:
        if t.poll() is None:
            t.terminate()
    for g in (a, b):
        g.cleanup()
    pg.close()
    srv.shutdown()
    for p in (CLOCK, CLOCK + ".tmp"):
        if os.path.exists(p):
            os.remove(p)
done()
