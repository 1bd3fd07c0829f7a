"""Live reload (SIGHUP and `parley reload`, op config.reload).

A broken file is refused with each error at its FILE:LINE:COL and the gateway goes on serving
on the config it had.  A valid file is applied while webhooks keep arriving: a new channel
answers, a changed channel is drained and rebuilt (every webhook it accepted is answered 2xx and
stored), a removed one is gone, an unchanged one is the same instance; reloads asked for while
one drains are answered together by the next run.
"""
import http.server
import json
import signal
import threading
import time

from harness import Gateway, check, done, sign


class Provider(http.server.BaseHTTPRequestHandler):
    """Plays the integrator's system for outbound sends; holds each answer until released."""
    release = threading.Event()
    got = threading.Event()

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        Provider.got.set()
        Provider.release.wait(20)
        data = b'{"id":"ext-1"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{srv.server_address[1]}/replies"

OLD = f"""  - name: out
    type: webhook
    config:
      secret: out-secret
      outbound_url: {url}
  - name: gone
    type: webhook
    config:
      secret: gone-secret
"""
gw = Gateway(extra_channels=OLD, config_body="outbox:\n  poll_interval: 100ms\n")


class Load:
    """Webhooks to `hooks` on keep-alive connections until stopped: every answer and id kept."""

    def __init__(self, threads=4):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers = []  # (id, status or the exception text)
        self.threads = [threading.Thread(target=self.run, args=(t,)) for t in range(threads)]

    def run(self, t):
        conn, n = gw.connection(timeout=10), 0
        while not self.stop.is_set():
            mid = f"load-{t}-{n}"
            n += 1
            try:
                st, _ = gw.post_message({"id": mid, "from": f"user{t}", "text": "during the reload"}, conn=conn)
            except Exception as e:  # noqa: BLE001 (any failure is a finding)
                st = repr(e)
                conn.close()
                conn = gw.connection(timeout=10)
            with self.lock:
                self.answers.append((mid, st))
        conn.close()

    def __enter__(self):
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for th in self.threads:
            th.join()


try:
    gw.start()
    with open(gw.config) as f:
        good = f.read()
    rc, h = gw.api("health")
    check(rc == 0 and [c["name"] for c in h["channels"]] == ["hooks", "out", "gone"], f"three channels: {h}")

    # A broken file, by SIGHUP and by `parley reload`: refused at its place, the old config goes on.
    broken_line = good.count("\n", 0, good.index("  - name: gone")) + 1
    with open(gw.config, "w") as f:
        f.write(good.replace("type: webhook\n    config:\n      secret: gone-secret",
                             "type: no_such_type\n    config:\n      secret: gone-secret"))
    gw.proc.send_signal(signal.SIGHUP)
    rc, out, err = gw.cli("reload", "-c", gw.config)
    check(rc == 1 and f"{gw.config}:{broken_line + 1}:" in err and "no_such_type" in err,
          f"`parley reload` names the error at FILE:LINE:COL and exits 1: {rc} {err!r}")
    check("goes on with the config it had" in err, f"and says the gateway keeps its config: {err!r}")
    time.sleep(0.3)
    log = gw.read_log()
    check(f"reload refused: {gw.config}:{broken_line + 1}:" in log, f"SIGHUP logs the error with its place: {log[-1500:]}")
    check(gw.proc.poll() is None, "the gateway is still running")
    st, _ = gw.post_message({"id": "after-broken", "from": "alice", "text": "still here"}, channel="gone",
                            secret="gone-secret")
    check(st == 200, f"the old config still serves, channel 'gone' too: {st}")

    rc, out, err = gw.cli("token", "-c", gw.config, "create", "--name", "deploy", "--scope", "config.reload")
    token = out.strip()
    check(rc == 0 and token.startswith("pst_"), f"a service token for config.reload: {out} {err}")

    # A send held by the provider keeps the old channels in use: the reload drains for as long.
    rc, out, err = gw.cli("send", "-c", gw.config, "--channel", "out", "--to", "webhook:bob", "--text", "held")
    check(rc == 0, f"a send queued: {out} {err}")
    check(Provider.got.wait(10), "the provider got the send and holds its answer")

    # The new file: `hooks` changed (drained and rebuilt under load), `out` unchanged, `gone` removed,
    # `second` added.
    NEW = f"""  - name: hooks
    type: webhook
    config:
      secret: "{gw.secret}"
      timeout: 7s
  - name: out
    type: webhook
    config:
      secret: out-secret
      outbound_url: {url}
  - name: second
    type: webhook
    config:
      secret: second-secret
"""
    with Load() as load:
        time.sleep(0.5)
        with open(gw.config) as f:
            text = f.read()
        head, _, tail = text.partition("channels:\n")
        with open(gw.config, "w") as f:
            f.write(head + "channels:\n" + NEW + tail[tail.index("outbox:"):])
        applied_before = gw.read_log().count("reload applied")
        # SIGHUP starts a reload that drains while the provider holds the send; three POST /api/v1/config/reload
        # asked for meanwhile are answered together by one more run.
        gw.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        answers = [None] * 3

        def ask(i):
            st, body = gw.request("POST", "/api/v1/config/reload", b"{}",
                                  {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            answers[i] = (st, json.loads(body))

        askers = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
        for a in askers:
            a.start()
        time.sleep(0.5)
        check(gw.read_log().count("reload applied") == applied_before, "the reload waits for the held send")
        Provider.release.set()
        for a in askers:
            a.join(30)
        time.sleep(0.5)
    log = gw.read_log()
    check("reload applied: added second; changed hooks; removed gone; 0 pipeline(s) rebuilt" in log,
          f"the SIGHUP reload logs what changed: {log[-2000:]}")
    runs = log.count("reload applied") - applied_before
    check(runs == 2, f"SIGHUP and three requests during its drain were applied by {runs} runs (expected 2)")
    check(all(a and a[0] == 200 and "channels" in a[1] for a in answers), f"every POST /config/reload answered: {answers}")
    check(all(a[1]["channels"]["unchanged"] == ["hooks", "out", "second"] and a[1]["requests"] == 3
              for a in answers if a), f"one coalesced run answered all three, with nothing more to change: {answers}")

    # Every webhook accepted during the reload was answered 2xx, and each one is stored once.
    statuses = {}
    for _, st in load.answers:
        statuses[st] = statuses.get(st, 0) + 1
    check(len(load.answers) > 50 and set(statuses) == {200}, f"answers during the reload: {statuses}")
    stored = {m["external_id"] for m in gw.list_all("hooks")}
    missing = [mid for mid, st in load.answers if st == 200 and mid not in stored]
    check(not missing, f"acknowledged and not stored: {missing[:5]} ({len(missing)})")
    print(f"{len(load.answers)} webhooks during the reload, answered {statuses}; {len(missing)} missing")

    # The new channel answers; the removed one is gone; the held send was delivered.
    body = json.dumps({"id": "on-second", "from": "carol", "text": "hello"}).encode()
    st, _ = gw.request("POST", "/webhooks/second", body,
                       {"Content-Type": "application/json", "X-Parley-Signature": sign("second-secret", body)})
    check(st == 200, f"the added channel answers: {st}")
    st, _ = gw.post_message({"id": "on-gone", "from": "carol", "text": "x"}, channel="gone", secret="gone-secret")
    check(st == 404, f"the removed channel is not served: {st}")
    rc, h = gw.api("health")
    check(rc == 0 and sorted(c["name"] for c in h["channels"]) == ["hooks", "out", "second"], f"health: {h}")
    rc, r = gw.api("outbox.list", {"status": "sent"})
    check(rc == 0 and any(m.get("text") == "held" for m in r.get("messages", [])), f"the held send was sent: {r}")
    check(gw.stop() == 0, "and the gateway stops cleanly")
finally:
    Provider.release.set()
    gw.cleanup()
    srv.shutdown()
done()
