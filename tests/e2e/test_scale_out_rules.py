"""Two nodes on one PostgreSQL decide as one (the scale-out issue, acceptance 4): a new customer's first two
messages arriving at node A and node B at the same moment make one contact and one conversation; a merge done
through node A is honoured by node B's next message from the merged address; a snoozed conversation wakes once;
a channel with rate_limit 5 sends at most 5 per second summed over both nodes."""
import http.server
import json
import threading
import time

from cluster import Postgres, node, need
from harness import check, done, sign

need(nats=False)


class Receiver(http.server.BaseHTTPRequestHandler):
    times = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        env = json.loads(body)
        with self.lock:
            self.times.append((time.monotonic(), env["id"]))
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
out_channel = f"""  - name: out
    type: webhook
    rate_limit: 5
    config:
      secret: out-secret
      outbound_url: http://127.0.0.1:{srv.server_address[1]}/replies
"""

pg = Postgres()
a = node("node-a", pg, extra_channels=out_channel)
b = node("node-b", pg, extra_channels=out_channel)
try:
    a.start()
    b.start()

    # 1. The same new customer at both nodes at once, twenty customers over: one contact and one conversation each.
    def post(g, msg, out):
        body = json.dumps(msg).encode()
        hdr = {"Content-Type": "application/json", "X-Parley-Signature": sign("s3cret", body)}
        for _ in range(50):  # a provider retries what was not acknowledged
            st, _ = g.request("POST", "/webhooks/hooks", body, hdr)
            if st == 200:
                out.append(st)
                return
            time.sleep(0.05)

    for k in range(20):
        acks = []
        barrier = threading.Barrier(2)

        def go(g, mid):
            barrier.wait()
            post(g, {"id": mid, "from": f"new{k}", "text": "hello", "name": f"New {k}"}, acks)

        ts = [threading.Thread(target=go, args=(a, f"n{k}a")), threading.Thread(target=go, args=(b, f"n{k}b"))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(len(acks) == 2, f"customer {k}: both messages acknowledged: {acks}")
    rows = pg.sql("SELECT from_urn, count(DISTINCT contact_id), count(DISTINCT conversation_id), count(*)"
                  " FROM messages WHERE external_id LIKE 'n%' GROUP BY from_urn ORDER BY from_urn")
    check(len(rows) == 20, f"twenty customers stored: {len(rows)}")
    split = [r for r in rows if r[1] != "1" or r[2] != "1" or r[3] != "2"]
    check(not split, f"each customer has one contact and one conversation for both messages: {split}")
    contacts = pg.sql("SELECT count(*) FROM contacts WHERE id IN (SELECT contact_id FROM messages"
                      " WHERE external_id LIKE 'n%')")[0][0]
    stray = pg.sql("SELECT count(*) FROM contacts c WHERE NOT EXISTS (SELECT 1 FROM identities i"
                   " WHERE i.contact_id = c.id) AND c.merged_into IS NULL")[0][0]
    convs = pg.sql("SELECT count(*) FROM conversations")[0][0]
    check(contacts == "20" and stray == "0" and convs == "20",
          f"twenty contacts, none without an address, twenty conversations: {contacts}, {stray}, {convs}")

    # 2. A merge through node A is honoured by node B's next message from the merged address.
    acks = []
    post(b, {"id": "p1", "from": "paul", "text": "hi"}, acks)
    post(b, {"id": "q1", "from": "paul-sms", "text": "also me"}, acks)
    post(b, {"id": "q2", "from": "paul-sms", "text": "node b knows this address"}, acks)
    p = a.list_all("hooks")
    cp = [m for m in p if m["external_id"] == "p1"][0]["contact_id"]
    cq = [m for m in p if m["external_id"] == "q1"][0]["contact_id"]
    check(cp != cq, "two addresses, two contacts before the merge")
    rc, r = a.api("contacts.merge", {"from": cq, "into": cp})
    check(rc == 0, f"merge through node A: {r}")
    post(b, {"id": "q3", "from": "paul-sms", "text": "after the merge"}, acks)
    q3 = [m for m in b.list_all("hooks") if m["external_id"] == "q3"][0]
    check(q3["contact_id"] == cp, f"node B's next message from the merged address is the surviving contact's: {q3['contact_id']} vs {cp}")
    conv_owner = pg.sql(f"SELECT contact_id FROM conversations WHERE id = '{q3['conversation_id']}'")
    check(conv_owner == [[cp]], f"and joins a conversation of the surviving contact: {conv_owner}")

    # A reply without a channel goes where the customer wrote last (conversation.route on PostgreSQL).
    rc, r = a.api("message.send", {"conversation_id": q3["conversation_id"], "text": "we are on it"})
    check(rc == 0, f"a reply routed by conversation: {r}")
    routed = pg.sql(f"SELECT channel, to_urn FROM messages WHERE id = '{r.get('id')}'")
    check(routed == [["hooks", "webhook:paul-sms"]], f"on the channel and to the address used last: {routed}")

    # 3. A snoozed conversation wakes once, though both nodes look for due conversations.
    conv = q3["conversation_id"]
    until = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 2))
    rc, r = b.api("conversation.set", {"conversation_id": conv, "status": "snoozed", "snoozed_until": until})
    check(rc == 0 and r["conversation"]["status"] == "snoozed", f"snoozed through node B: {r}")
    time.sleep(6)
    # The wake-up is logged as the status going back to open, by the snooze (a reopening is of a resolved one).
    woke = pg.sql(f"SELECT count(*) FROM conversation_events WHERE conversation_id = '{conv}' AND type = 'updated'"
                  " AND data->>'by' = 'snooze' AND data->>'status' = 'open'")[0][0]
    status = pg.sql(f"SELECT status FROM conversations WHERE id = '{conv}'")[0][0]
    check(woke == "1" and status == "open", f"woken once: {woke} wake-ups, status {status}")

    # 4. rate_limit: 5 is the channel's: 30 sends queued through both nodes go out at most 5 in any second.
    t0 = time.monotonic()
    for i in range(30):
        g = a if i % 2 else b
        rc, r = g.api("message.send", {"channel": "out", "to": f"webhook:r{i}", "text": f"paced {i}"})
        check(rc == 0, f"queued {i}: {r}")
    end = time.time() + 30
    while time.time() < end and len(Receiver.times) < 30:
        time.sleep(0.2)
    times = sorted(t for t, _ in Receiver.times)
    ids = [i for _, i in Receiver.times]
    check(len(times) == 30 and len(set(ids)) == 30, f"every message sent once: {len(times)} sends, {len(set(ids))} distinct")
    worst = max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)
    check(worst <= 5, f"at most 5 sends in any second over both nodes: {worst}")
    check(times and times[-1] - t0 >= 5.0, f"30 sends at 5/s take at least 5 s: {times[-1] - t0 if times else 0:.2f}")
finally:
    a.cleanup()
    b.cleanup()
    pg.close()
    srv.shutdown()
done()
