"""GET /api/v1/events: live events as Server-Sent Events, read from the store.  A client that
disconnects for 5 s while messages arrive and conversations change, then reconnects with
Last-Event-ID, receives every event it missed, in order, once; a malformed id is refused; no
credentials, no stream."""
import http.client
import json
import threading
import time

from harness import Gateway, check, done

TOKEN = "events-test-control-token-0123456789"
gw = Gateway(config_body=f"""control:
  token: "{TOKEN}"
pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
""")


class Stream:
    """An SSE client on its own thread: collects (id, event, data) until closed."""

    def __init__(self, last_id=None, after=None):
        self.events, self.lock = [], threading.Lock()
        self.conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        h = {"Authorization": f"Bearer {TOKEN}", "Accept": "text/event-stream"}
        if last_id:
            h["Last-Event-ID"] = last_id
        self.conn.request("GET", "/api/v1/events" + (f"?after={after}" if after else ""), headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = dict(self.resp.getheaders())
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        cur = {}
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    return
                line = line.decode().rstrip("\n")
                if line == "":
                    if "event" in cur:
                        with self.lock:
                            self.events.append((cur.get("id"), cur["event"], json.loads(cur.get("data", "{}"))))
                    cur = {}
                elif not line.startswith(":") and ":" in line:
                    k, v = line.split(":", 1)
                    cur[k] = v[1:] if v.startswith(" ") else v
        except (OSError, ValueError, http.client.HTTPException):
            return

    def got(self):
        with self.lock:
            return [e for e in self.events if e[1] != "ready"]

    def wait_for(self, n, timeout=10):
        end = time.time() + timeout
        while time.time() < end and len(self.got()) < n:
            time.sleep(0.02)
        return self.got()

    def close(self):
        try:
            self.conn.sock.shutdown(2)
        except OSError:
            pass
        self.conn.close()


def op(name, obj):
    rc, r = gw.api(name, obj)
    check(r.get("ok"), f"{name}: {r}")
    return r


try:
    gw.start()
    st, _ = gw.request("GET", "/api/v1/events")
    check(st == 401, f"no credentials, no stream: {st}")
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    c.request("GET", "/api/v1/events", headers={"Authorization": f"Bearer {TOKEN}", "Last-Event-ID": "yesterday"})
    r = c.getresponse()
    body = r.read() if r.status != 200 else b"(a stream opened)"
    c.close()
    check(r.status == 400 and b"M.E" in body, f"a malformed Last-Event-ID -> 400: {r.status} {body}")

    s1 = Stream()
    check(s1.status == 200 and s1.headers.get("Content-Type", "").startswith("text/event-stream"),
          f"the stream opens: {s1.status} {s1.headers}")
    st, _ = gw.post_message({"id": "e1", "from": "carol", "text": "first"})
    check(st == 200, "first message")
    got = s1.wait_for(2)
    check([e[1] for e in got[:2]] == ["message.inbound.webhook.hooks", "conversation.opened"],
          f"live: the message, then its conversation opened: {got}")
    conv = got[0][2].get("conversation_id")
    last_seen = got[-1][0]
    s1.close()

    # Offline for 5 s: messages, a reply, an assignment, a resolution, a reopening, another customer.
    time.sleep(1)
    st, _ = gw.post_message({"id": "e2", "from": "carol", "text": "second"})
    op("message.send", {"conversation_id": conv, "text": "we are on it"})
    op("conversation.assign", {"conversation_id": conv, "assignee": "ana", "team": "sales"})
    op("conversation.resolve", {"conversation_id": conv})
    st, _ = gw.post_message({"id": "e3", "from": "carol", "text": "one more thing"})
    st, _ = gw.post_message({"id": "e4", "from": "dave", "text": "hello, I am new"})
    time.sleep(4)

    # The truth: what the store holds after last_seen, in the stream's own order.
    s2 = Stream(last_id=last_seen)
    check(s2.status == 200, f"resume: {s2.status}")
    missed = s2.wait_for(8)
    time.sleep(1.0)  # anything delivered twice would arrive by now
    missed = s2.got()
    ids = [e[0] for e in missed]
    check(len(ids) == len(set(ids)), f"each event once: {ids}")
    kinds = [e[1] for e in missed]
    texts = [e[2].get("text") for e in missed if e[1].startswith("message.")]
    check(texts == ["second", "we are on it", "one more thing", "hello, I am new"],
          f"every message missed, in order: {texts}")
    conv_types = [e[2]["type"] for e in missed if e[1].startswith("conversation.") and e[2]["conversation_id"] == conv]
    check(conv_types == ["assigned", "resolved", "reopened"], f"the conversation's changes, in order: {conv_types}")
    check(kinds.count("conversation.opened") == 1, f"dave's conversation opened once: {kinds}")
    # Each id is greater than the one before in both logs: a client can resume from any of them.
    pairs = [tuple(int(x) for x in i.split(".")) for i in ids]
    check(all(a[0] <= b[0] and a[1] <= b[1] and a != b for a, b in zip(pairs, pairs[1:])),
          f"ids grow: {ids}")
    first = tuple(int(x) for x in last_seen.split("."))
    check(all(p[0] >= first[0] and p[1] >= first[1] for p in pairs), f"nothing before the resume point: {ids}")

    # Live again on the resumed stream, and ?after= resumes like Last-Event-ID.
    st, _ = gw.post_message({"id": "e5", "from": "dave", "text": "still there?"})
    live = s2.wait_for(len(missed) + 1)
    check(live[-1][2].get("text") == "still there?", f"live after the catch-up: {live[-1:]}")
    s3 = Stream(after=ids[2])
    again = s3.wait_for(len(live) - 3)
    check([e[0] for e in again] == [e[0] for e in live[3:]], f"?after= resumes at the same place: {again}")
    s2.close()
    s3.close()
finally:
    gw.cleanup()
done()
