"""Outbound through the durable outbox: `parley send` POSTs the signed envelope to the
channel's outbound_url; 500 then 200 sends once; 429 honours Retry-After; a permanent
4xx is dead-lettered with the receiver's text; status envelopes are published."""
import hashlib
import hmac
import http.server
import json
import threading
import time

from harness import PARLEY, Gateway, check, done
from subscribers import read_until, subscribe


class Receiver(http.server.BaseHTTPRequestHandler):
    """Plays the integrator's system: answers from a per-text script."""
    script = {}
    seen = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        env = json.loads(body)
        with self.lock:
            self.seen.append((time.time(), env, self.headers.get("X-Parley-Signature"), body))
            plan = self.script.get(env.get("text"), [(200, {"id": "ext-" + env["id"]})])
            status, reply = plan.pop(0) if len(plan) > 1 else plan[0]
        data = json.dumps(reply).encode()
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{srv.server_address[1]}/replies"

Receiver.script = {
    "flaky": [(500, {"error": "try again"}), (200, {"id": "ext-flaky"})],
    "slow down": [(429, {"error": "rate limited"}), (200, {"id": "ext-slow"})],
    "bad": [(400, {"error": "recipient unknown"})],
}

gw = Gateway(config_body="outbox:\n  backoff_base: 100ms\n  max_attempts: 4\n  poll_interval: 100ms\n",
             extra_channels=f"  - name: out\n    type: webhook\n    config:\n      secret: outsecret\n"
                            f"      outbound_url: {url}\n"
                            f"  - name: slow\n    type: webhook\n    rate_limit: 2\n    config:\n      secret: slow-secret\n"
                            f"      outbound_url: {url}\n").start()
try:
    tail = subscribe([PARLEY, "tail", "-c", gw.config, "status."], gw)

    def send(text):
        rc, out, err = gw.cli("send", "-c", gw.config, "--channel", "out", "--to", "webhook:alice", "--text", text)
        check(rc == 0, f"send '{text}' accepted: {out} {err}")
        return json.loads(out)["id"]

    def wait_status(mid, want, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            rc, r = gw.api("message.get", {"id": mid})
            if rc == 0 and r["message"].get("status") == want:
                return r["message"]
            time.sleep(0.1)
        rc, r = gw.api("message.get", {"id": mid})
        return r.get("message", r)

    ok_id = send("hello there")
    m = wait_status(ok_id, "sent")
    check(m.get("status") == "sent", f"a plain send is sent: {m}")
    check(m.get("external_id") == "ext-" + ok_id, f"the receiver's id is stored: {m}")
    posted = [s for s in Receiver.seen if s[1]["id"] == ok_id]
    check(len(posted) == 1, f"posted once: {len(posted)}")
    if posted:
        _, env, sig, raw = posted[0]
        want = "sha256=" + hmac.new(b"outsecret", raw, hashlib.sha256).hexdigest()
        check(sig == want, "the outbound POST is signed with the channel's secret")
        check(env["to"] == "webhook:alice" and env["text"] == "hello there" and env["direction"] == "outbound",
              f"the receiver gets the envelope: {env}")

    flaky = send("flaky")
    m = wait_status(flaky, "sent")
    tries = [s for s in Receiver.seen if s[1]["id"] == flaky]
    check(m.get("status") == "sent" and len(tries) == 2, f"500 then 200: sent after {len(tries)} tries: {m}")
    check(m.get("external_id") == "ext-flaky", "sent once, with the receiver's id")

    slow = send("slow down")
    m = wait_status(slow, "sent")
    tries = [s for s in Receiver.seen if s[1]["id"] == slow]
    check(len(tries) == 2 and tries[1][0] - tries[0][0] >= 0.9,
          f"429 with Retry-After: 1 waited {tries[1][0] - tries[0][0]:.2f} s" if len(tries) == 2 else f"{len(tries)} tries")

    bad = send("bad")
    m = wait_status(bad, "failed")
    check(m.get("status") == "failed" and "recipient unknown" in (m.get("error") or ""),
          f"a permanent error is dead-lettered with the receiver's text: {m}")
    check(len([s for s in Receiver.seen if s[1]["id"] == bad]) == 1, "a permanent error is not retried")

    rc, r = gw.api("message.send", {"channel": "nosuch", "to": "webhook:x", "text": "x"})
    check(rc != 0 and r["error"]["code"] == "unknown_channel", f"unknown channel: {r}")
    rc, r = gw.api("message.send", {"channel": "out", "text": "x"})
    check(rc != 0 and r["error"]["code"] == "invalid_request", f"missing to: {r}")

    # rate_limit: 2 per second (burst 2): six sends take at least two seconds, none is lost or counted as failed.
    ids = []
    for i in range(6):
        rc, r = gw.api("message.send", {"channel": "slow", "to": "webhook:bob", "text": f"paced {i}"})
        ids.append(r["id"])
    got = [gw.wait_message(i, "sent", timeout=15) for i in ids]
    check(all(m.get("status") == "sent" and m.get("attempts") == 1 for m in got),
          f"all paced sends went out on their first attempt: {[(m.get('status'), m.get('attempts')) for m in got]}")
    times = sorted(s[0] for s in Receiver.seen if s[1]["channel"] == "slow")
    check(len(times) == 6 and times[-1] - times[0] >= 1.8, f"six sends at 2/s took {times[-1] - times[0]:.2f} s")
    st, metrics = gw.request("GET", "/metrics")
    deferred = [l for l in metrics.decode().splitlines() if l.startswith('parley_outbound_rate_limited_total{channel="slow"}')]
    n_deferred = int(deferred[0].split()[-1]) if deferred else 0
    check(n_deferred <= 6, f"each paced message waits for its turn once, not once per poll: {n_deferred} deferrals")

    def statuses(out):
        return {(s["meta"]["message_id"], s["status"]) for s in
                (json.loads(l.partition(" ")[2]) for l in out.splitlines() if l.startswith("status."))}

    out = read_until(tail, lambda out: {(ok_id, "sent"), (bad, "failed")} <= statuses(out))
    by_msg = statuses(out)
    check((ok_id, "sent") in by_msg and (bad, "failed") in by_msg, f"status envelopes published: {by_msg}")
    check(all(l.startswith(("status.webhook.out ", "status.webhook.slow ")) for l in out.splitlines() if l),
          "status topics are status.<type>.<channel>")
finally:
    gw.cleanup()
    srv.shutdown()
done()
