"""On PostgreSQL, agents working a conversation while its customer keeps writing never deadlock the store.

A webhook's commit takes the message-sequence lock (messages_insert) and then the conversation's row
(conversations_put); an agent's op takes the conversation's row (conversation_lock) and then the same sequence
lock to append to the history.  Taken in opposite orders, the two wait on each other until PostgreSQL's
deadlock detector aborts one: the webhook is answered 503 (the provider retries) or the op fails.  The store
takes the sequence lock first in every transaction that locks a conversation, contact, identity, merge or
survey row, so the order is the same everywhere.  Here one customer writes 200 messages while an agent changes
the conversation's priority and labels 200 times, at the same moment: every webhook is acknowledged on its first
try, every op succeeds, and the server's log has no deadlock."""
import json
import os
import threading

from cluster import Postgres, node, need
from harness import check, done, sign

need(nats=False)

N = 200
pg = Postgres()
g = node("node-a", pg)
try:
    g.start()

    def post(i):
        body = json.dumps({"id": f"m{i}", "from": "writer", "text": f"message {i}", "name": "Writer"}).encode()
        st, _ = g.request("POST", "/webhooks/hooks", body,
                          {"Content-Type": "application/json", "X-Parley-Signature": sign("s3cret", body)})
        return st

    check(post(0) == 200, "the first message is acknowledged")
    conv = pg.sql("SELECT conversation_id FROM messages WHERE external_id = 'm0'")[0][0]

    statuses, op_errors = [], []

    def customer():
        for i in range(1, N + 1):
            statuses.append(post(i))

    def agent():
        for i in range(N):
            rc, r = g.api("conversation.set", {"conversation_id": conv, "priority": "high" if i % 2 else "low",
                                           "labels": [f"l{i % 3}"]})
            if rc != 0 or not r.get("ok"):
                op_errors.append(r)

    threads = [threading.Thread(target=customer), threading.Thread(target=agent)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    refused = [s for s in statuses if s != 200]
    check(len(statuses) == N and not refused, f"every webhook acknowledged on its first try: {len(refused)} refused "
                                              f"({sorted(set(refused))})")
    check(not op_errors, f"every op succeeded: {len(op_errors)} failed, e.g. {op_errors[:1]}")
    stored = pg.sql("SELECT count(*), count(DISTINCT conversation_id) FROM messages WHERE from_urn LIKE '%writer'")
    check(stored == [[str(N + 1), "1"]], f"{N + 1} messages stored, in one conversation: {stored}")
    with open(os.path.join(pg.dir, "pg", "postgres.log"), errors="replace") as f:
        deadlocks = [line.strip() for line in f if "deadlock detected" in line]
    check(not deadlocks, f"no deadlock in the server's log: {deadlocks[:2]}")
finally:
    g.stop()
    pg.close()
done()
