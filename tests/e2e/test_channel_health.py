"""A channel says whether it works: an e-mail channel whose IMAP server cannot be reached is named
in /healthz, which answers 503 with the reason, while /ready (the gateway takes webhooks) stays 200
and the other channels go on answering."""
import json
import time

from harness import Gateway, check, done, free_port

closed = free_port()  # nothing listens here
gw = Gateway(extra_channels=f"""  - name: mail
    type: email
    config:
      imap_url: imap://127.0.0.1:{closed}/INBOX
      smtp_url: smtp://127.0.0.1:{closed}
      username: support
      password: not-used
      from: support@example.com
      poll_interval: 1s
""")
try:
    gw.start()
    end = time.time() + 10
    st, body = gw.request("GET", "/healthz")
    while time.time() < end and st == 200:
        time.sleep(0.1)
        st, body = gw.request("GET", "/healthz")
    h = json.loads(body)
    down = h.get("channels_down", [])
    check(st == 503 and h.get("status") == "degraded", f"/healthz: 503, degraded: {st} {h}")
    check([d["channel"] for d in down] == ["mail"] and "IMAP" in down[0]["why"], f"names the channel and why: {down}")
    st, body = gw.request("GET", "/ready")
    check(st == 200 and json.loads(body).get("status") == "ok", f"/ready: still takes webhooks: {st} {body}")
    st, _ = gw.post_message({"id": "h1", "from": "alice", "text": "hello"})
    check(st == 200, f"another channel answers: {st}")
    log = gw.read_log()
    check(log.count("[channel mail] down: IMAP") == 1, f"the change is logged once, with why: {log[-800:]}")
finally:
    gw.cleanup()
done()
