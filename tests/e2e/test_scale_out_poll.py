"""One node at a time polls (the scale-out issue: only one node polls a mailbox or a bot at a time, a lease in
the store).  Two nodes on one PostgreSQL with the same Telegram channel in mode: poll: getUpdates calls never
overlap, though each node would long-poll in a loop of its own; every update is stored once; when the polling
node stops, the other takes over at once (the lease is given up, not left to lapse)."""
import json
import threading
import time

from cluster import Postgres, node, need
from fakeprovider import FakeProvider
from harness import check, done, fixture

need(nats=False)
BOT = "42:poll-token"
path = f"/bot{BOT}/getUpdates"
updates = {}
for i, name in enumerate(["text.json", "two_in_one_chat.json"]):
    u = json.loads(fixture("telegram", name))
    u["update_id"] = 900 + i
    updates[900 + i] = u
spans, active, lock = [], [0], threading.Lock()
most = [0]


def get_updates(req):
    """A long poll: the answer comes after a while, with the updates from offset on."""
    with lock:
        active[0] += 1
        most[0] = max(most[0], active[0])
    t0 = time.monotonic()
    time.sleep(0.3)
    with lock:
        active[0] -= 1
        spans.append((t0, time.monotonic()))
    ids = [k for k in sorted(updates) if k >= int(req.query.get("offset", "0"))]
    return {"ok": True, "result": [updates[k] for k in ids]}


fake = FakeProvider()
fake.script[("GET", path)] = [(200, get_updates)]
channel = f"""  - name: tgp
    type: telegram
    config: {{ token: "{BOT}", mode: poll, poll_timeout: 1s, api_base_url: "{fake.url}" }}
"""
pg = Postgres()
a = node("node-a", pg, extra_channels=channel)
b = node("node-b", pg, extra_channels=channel)
try:
    a.start()
    time.sleep(1.5)  # node A takes the lease first
    b.start()
    time.sleep(4)
    check(len(spans) >= 5, f"the bot is polled in a loop: {len(spans)} calls")
    check(most[0] == 1, f"one node at a time polls: at most {most[0]} getUpdates at once")
    rows = pg.sql("SELECT external_id, count(*) FROM messages WHERE channel = 'tgp' GROUP BY external_id")
    check(len(rows) == 2 and all(r[1] == "1" for r in rows), f"every update stored once: {rows}")
    a.stop()
    stopped = time.monotonic()
    time.sleep(4)
    taken = [t0 for t0, _ in spans if t0 > stopped]
    check(taken and taken[0] - stopped < 3.0,
          f"node B polls within 3 s of node A's stop: {taken[0] - stopped if taken else None}")
finally:
    a.cleanup()
    b.cleanup()
    pg.close()
    fake.close()
done()
