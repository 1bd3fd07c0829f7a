"""Dead letters: a send the provider refuses for good (a 4xx) is listed by `parley dlq list` with
the provider's answer, retried by `parley dlq retry ID` and then delivered once, or given up by
`parley dlq drop ID` and never sent; subscribers hear outbox.retried and outbox.dropped (valid against
sdk/schemas/events/).  messages.list honours `status` and refuses a filter it does not know instead of
ignoring it."""
import json
import time

from eventschemas import errors
from fakeprovider import FakeProvider
from harness import PARLEY, Gateway, check, done
from subscribers import read_until, subscribe

PNID = "106540352242922"
fake = FakeProvider()
path = f"/v19.0/{PNID}/messages"
refuse = (400, {"error": {"message": "(#131026) Message undeliverable", "type": "OAuthException", "code": 131026}})
fake.script[("POST", path)] = [refuse]
gw = Gateway(config_body="outbox:\n  backoff_base: 100ms\n  max_attempts: 3\n", extra_channels=f"""  - name: wa
    type: whatsapp
    config:
      reply_window: 0  # sends to a customer who never wrote: the window is test_broadcast's subject
      phone_number_id: "{PNID}"
      access_token: EAAG-test-token
      app_secret: wa-app-secret
      verify_token: verify-me
      api_base_url: {fake.url}
      api_version: v19.0
""")


def status_of(mid, want, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        rc, r = gw.api("message.get", {"id": mid})
        if r.get("message", {}).get("status") == want:
            return r["message"]
        time.sleep(0.05)
    rc, r = gw.api("message.get", {"id": mid})
    return r.get("message", {})


try:
    gw.start()
    rc, r = gw.api("message.send", {"channel": "wa", "to": "whatsapp:15551234567", "text": "Your order shipped"})
    mid = r["id"]
    m = status_of(mid, "failed")
    check(m.get("status") == "failed" and "Message undeliverable" in (m.get("error") or ""), f"dead-lettered: {m}")
    check(len(fake.seen("POST", path)) == 1, "a 4xx is not retried by itself")

    st, metrics = gw.request("GET", "/metrics")
    check(b'parley_outbox_messages{state="failed"} 1' in metrics, "the dead letter is in the outbox gauge")
    rc, out, err = gw.cli("dlq", "-c", gw.config, "list")
    check(rc == 0 and mid in out and "Message undeliverable" in out and "wa" in out,
          f"parley dlq list names it with the provider's answer: {out} {err}")
    rc, r = gw.api("messages.list", {"status": "failed"})
    check([x["id"] for x in r.get("messages", [])] == [mid], f"messages.list status=failed: {r}")
    rc, r = gw.api("messages.list", {"status": "sent"})
    check(r.get("messages") == [], f"status=sent: none yet: {r}")
    rc, r = gw.api("messages.list", {"stauts": "failed"})
    check(r.get("ok") is False and "stauts" in r["error"]["message"], f"an unknown filter is refused: {r}")

    tail = subscribe([PARLEY, "tail", "-c", gw.config], gw)  # PUB/SUB delivers only to connected subscribers

    # The provider accepts now: retried once, delivered once.
    fake.script[("POST", path)] = [(200, {"messages": [{"id": "wamid.RETRIED"}]})]
    rc, out, err = gw.cli("dlq", "-c", gw.config, "retry", mid)
    check(rc == 0 and "queued again" in out, f"dlq retry: {out} {err}")
    m = status_of(mid, "sent")
    check(m.get("status") == "sent" and m.get("external_id") == "wamid.RETRIED", f"sent after the retry: {m}")
    time.sleep(0.5)
    check(len(fake.seen("POST", path)) == 2, f"sent once more, not twice: {len(fake.seen('POST', path))}")
    rc, out, err = gw.cli("dlq", "-c", gw.config, "list")
    check(mid not in out, f"no longer a dead letter: {out}")
    rc, out, err = gw.cli("dlq", "-c", gw.config, "retry", mid)
    check(rc != 0 and "not dead-lettered" in (out + err), f"a sent message is not retried: {out} {err}")

    # Dropped: never sent again.
    fake.script[("POST", path)] = [refuse]
    rc, r = gw.api("message.send", {"channel": "wa", "to": "whatsapp:15551234567", "text": "Second notice"})
    mid2 = r["id"]
    status_of(mid2, "failed")
    rc, out, err = gw.cli("dlq", "-c", gw.config, "drop", mid2)
    check(rc == 0 and "dropped" in out, f"dlq drop: {out} {err}")
    fake.script[("POST", path)] = [(200, {"messages": [{"id": "wamid.NEVER"}]})]
    time.sleep(0.8)
    m = status_of(mid2, "dropped", timeout=1)
    check(m.get("status") == "dropped" and len(fake.seen("POST", path)) == 3, f"dropped, not sent: {m}")

    def outbox_events(lines):
        return [(t, json.loads(js)) for t, _, js in (line.partition(" ") for line in lines) if t.startswith("outbox.")]

    out = read_until(tail, lambda text: len(outbox_events(text.splitlines())) >= 2)
    events = outbox_events(out.splitlines())
    check([(t, p.get("id"), p.get("status")) for t, p in events] == [("outbox.retried", mid, "queued"),
                                                                       ("outbox.dropped", mid2, "dropped")],
          f"subscribers heard the retry and the drop, once each: {events}")
    for t, p in events:
        check("Message undeliverable" in p.get("error", "") and p.get("channel") == "wa", f"{t} names the dead letter: {p}")
        check(not errors(t, p), f"{t} {p} follows sdk/schemas/events/{t}.json: {errors(t, p)}")
        check(errors(t, dict(p, status="sent")), f"{t}: the schema refuses another status")
finally:
    gw.cleanup()
    fake.close()
done()
