"""Outages of the shared servers (the scale-out issue, acceptance 5).  PostgreSQL stopped for 10 s during load:
no webhook is acknowledged for work not committed, /healthz says the store is down, ingest resumes by itself
when it is back, and nothing acknowledged is lost.  NATS stopped for 10 s: ingest goes on, and the stream
catches up afterwards with nothing missing."""
import json
import threading
import time

from cluster import Nats, Postgres, Sender, node, need
from harness import check, done

need()
pg = Postgres()
nats = Nats()
a = node("node-a", pg, nats)
b = node("node-b", pg, nats)


def load(sender, prefix, seconds, stats):
    """Post for `seconds` from 4 threads, each webhook retried until acknowledged; acks counted per second."""
    stop = time.time() + seconds
    n = [0]
    lock = threading.Lock()

    def work(t):
        while time.time() < stop:
            with lock:
                i = n[0]
                n[0] += 1
            if sender.post(i, {"id": f"{prefix}{i}", "from": f"s{i % 50}", "text": "x"}, deadline=40):
                stats.append(time.time())

    ts = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    return ts


try:
    a.start()
    b.start()
    s = Sender([a, b])

    # PostgreSQL goes away for 10 s in the middle of the load.
    acks = []
    ts = load(s, "p", 16, acks)
    time.sleep(3)
    pg.stop()
    down_at = time.time()
    time.sleep(1)
    st, body = a.request("GET", "/healthz")
    health = json.loads(body)
    check(st == 503 and health.get("store") == "down", f"/healthz says the store is down: {st} {body[:200]!r}")
    time.sleep(9)
    pg.resume()
    up_at = time.time()
    for t in ts:
        t.join()
    during = [t for t in acks if down_at + 0.5 < t < up_at - 0.2]
    after = [t for t in acks if t > up_at]
    check(not during, f"no webhook acknowledged while PostgreSQL was down: {len(during)}")
    check(len(after) > 20, f"ingest resumed by itself once PostgreSQL was back: {len(after)} acknowledged after")
    check(s.refused > 0, "webhooks were refused (not acknowledged) during the outage, for the provider to retry")
    st, _ = a.request("GET", "/healthz")
    check(st == 200, f"/healthz is ok again: {st}")
    counts = {r[0]: int(r[1]) for r in pg.sql(
        "SELECT external_id, count(*) FROM messages WHERE external_id LIKE 'p%' GROUP BY external_id")}
    lost = [k for k in s.acked if k.startswith("p") and k not in counts]
    check(not lost, f"nothing acknowledged is lost: {len(lost)} of {len(s.acked)}")
    check(all(v == 1 for v in counts.values()), "and nothing is stored twice")

    # NATS goes away for 10 s: ingest goes on; the stream catches up.
    acks2 = []
    ts = load(s, "n", 14, acks2)
    time.sleep(2)
    nats.stop()
    nats_down = time.time()
    time.sleep(10)
    during = [t for t in acks2 if nats_down + 0.5 < t < time.time()]
    nats.start()
    for t in ts:
        t.join()
    check(len(during) > 20, f"ingest goes on while NATS is down: {len(during)} acknowledged meanwhile")
    stored = {r[0] for r in pg.sql("SELECT id FROM messages WHERE channel = 'hooks'")}
    end = time.time() + 40
    while True:
        ids = [mid for subj, mid in nats.stream_ids() if subj.startswith("parley.message.")]
        if set(ids) >= stored or time.time() > end:
            break
        time.sleep(0.5)
    check(set(ids) >= stored, f"the stream caught up: {len(stored - set(ids))} of {len(stored)} stored envelopes missing")
    check(len(ids) == len(set(ids)), f"with no envelope twice: {len(ids) - len(set(ids))} duplicates")
finally:
    a.cleanup()
    b.cleanup()
    nats.close()
    pg.close()
done()
