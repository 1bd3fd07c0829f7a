"""Two nodes, one PostgreSQL, one nats-server (the scale-out issue, acceptance 2): 2,000 signed webhooks spread
over both nodes, 200 of them delivered to both nodes at once, as a provider retrying on another address would.
Every acknowledged webhook is stored exactly once, and a JetStream reader finds every stored envelope in the
stream exactly once, by id."""
import time

from cluster import Nats, Postgres, Sender, node, need
from harness import check, done

need()
pg = Postgres()
nats = Nats()
a = node("node-a", pg, nats)
b = node("node-b", pg, nats)
try:
    a.start()
    b.start()
    msgs = [{"id": f"w{i}", "from": f"sender{i % 300}", "text": f"message {i}"} for i in range(2000)]
    both = set(range(0, 2000, 10))  # 200 to both nodes at once
    s = Sender([a, b])
    s.run(msgs, threads=16, both=both)
    check(len(s.acked) == 2000, f"every webhook acknowledged (retrying as a provider does): {len(s.acked)}")
    by_node = {g: sum(1 for v in s.acked.values() if v is g) for g in (a, b)}
    check(all(n > 300 for n in by_node.values()), f"both nodes took webhooks: {list(by_node.values())}")

    rows = pg.sql("SELECT external_id, count(*) FROM messages WHERE channel = 'hooks' GROUP BY external_id")
    counts = {r[0]: int(r[1]) for r in rows}
    missing = [k for k in s.acked if k not in counts]
    twice = {k: n for k, n in counts.items() if n != 1}
    check(not missing, f"every acknowledged webhook is stored: {len(missing)} missing, e.g. {missing[:5]}")
    check(not twice, f"and stored once: {len(twice)} stored more than once, e.g. {list(twice.items())[:5]}")
    check(len(counts) == 2000, f"2,000 messages in the store: {len(counts)}")

    stored = {r[0] for r in pg.sql("SELECT id FROM messages WHERE channel = 'hooks'")}
    end = time.time() + 30
    while True:
        seen = [(subj, mid) for subj, mid in nats.stream_ids() if subj.startswith("parley.message.inbound.")]
        ids = [mid for _, mid in seen]
        if set(ids) >= stored or time.time() > end:
            break
        time.sleep(0.5)
    dup = len(ids) - len(set(ids))
    check(set(ids) == stored, f"the stream holds every stored envelope: {len(stored - set(ids))} missing,"
                              f" {len(set(ids) - stored)} not stored")
    check(dup == 0, f"each exactly once: {dup} duplicates")
    check(all(subj == "parley.message.inbound.webhook.hooks" for subj, _ in seen),
          f"on subject parley.<topic>: {set(subj for subj, _ in seen)}")
finally:
    a.cleanup()
    b.cleanup()
    nats.close()
    pg.close()
done()
