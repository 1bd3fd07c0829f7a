"""A broadcast whose channel is removed from the config while it runs: after the restart its recipients there
are skipped with the reason (not left pending for ever), and the broadcast ends; recipients whose sends fail
are each tried and recorded with the reason, none stopping the others (chatwoot#9000)."""
import base64
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse

from fakeprovider import FakeProvider
from harness import Gateway, check, done
from subscribers import EarlySubscriber

AC, TW_TOKEN, PUBLIC = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "twilio-auth-token", "https://parley.example.com"
N = 20
tw = FakeProvider()
seq = itertools.count(1)
tw.default = lambda req: (201, {"sid": f"SM{next(seq):032d}", "status": "queued"}, {})
SMS = f"""  - name: sms
    type: twilio
    rate_limit: 1
    config: {{ account_sid: {AC}, auth_token: {TW_TOKEN}, from: "+14155550100", api_base_url: "{tw.url}" }}
"""
gw = Gateway(http_extra=f"  public_url: {PUBLIC}\n", extra_channels=SMS, config_body="""pipelines:
  - name: inbound
    steps: [ {dedupe: {}}, {identify: {}}, {thread: {}} ]
""").start()


def sms_post(i, text):
    params = {"MessageSid": f"SMIN{next(seq):030d}", "AccountSid": AC, "From": f"+1555{i:07d}", "To": "+14155550100",
              "Body": text, "NumMedia": "0"}
    data = PUBLIC + "/webhooks/sms" + "".join(k + v for k, v in sorted(params.items()))
    sig = base64.b64encode(hmac.new(TW_TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
    return gw.request("POST", "/webhooks/sms", urllib.parse.urlencode(params).encode(),
                      {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})


try:
    for i in range(N):
        sms_post(i, "hello")
    for i in range(N):
        gw.post_message({"id": f"hook-{i}", "from": f"webhook:c{i}", "text": "hello"})
    rc, out, err = gw.cli("broadcast", "-c", gw.config, "create", "--segment", "all", "--text", "NOTICE", "--json")
    bid = json.loads(out).get("id") if rc == 0 else "none"
    check(rc == 0 and json.loads(out).get("queued") == 2 * N, f"created: {out} {err}")
    # The operator removes the SMS channel and restarts while most of its recipients still wait (rate_limit 1).
    gw.stop()
    with open(gw.config) as f:
        text = f.read()
    with open(gw.config, "w") as f:
        f.write(text.replace(SMS, ""))
    # The broadcast ends a moment after the start (one feeder pass skips the orphans, the next sees it done):
    # a subscriber started after the gateway may connect too late for broadcast.done.
    sub = EarlySubscriber(gw, "broadcast.")
    gw.start()
    check(sub.connected.wait(10), "a subscriber is on the gateway's events")
    end, st = time.time() + 40, {}
    while time.time() < end:
        rc, out, err = gw.cli("broadcast", "-c", gw.config, "status", bid, "--recipients", "--json")
        st = json.loads(out) if rc == 0 else {}
        if st.get("broadcast", {}).get("state") == "done":
            break
        time.sleep(0.5)
    check(st.get("broadcast", {}).get("state") == "done", f"the broadcast ends: {st.get('counts')}")
    events = sub.wait(lambda out: "broadcast.done " in out)
    check(f'broadcast.done {{"id":"{bid}","state":"done"}}' in events, f"broadcast.done is published: {events!r}")
    sms = [r for r in st.get("recipients", []) if r.get("channel") == "sms"]
    skipped = [r for r in sms if r["status"] == "skipped"]
    # Sent before the stop (rate_limit 1: one or two), or already in the outbox (the outbox says why it fails).
    before = [r for r in sms if r["status"] != "skipped"]
    check(len(skipped) == len(sms) - len(before) and len(sms) == N and len(skipped) >= N - 3
          and all(r["reason"] == "channel 'sms' is not configured any more" for r in skipped)
          and all(r["status"] == "sent" or "not configured" in r.get("reason", "") for r in before),
          f"the removed channel's recipients are skipped with the reason: {len(skipped)} skipped, {before}")
    # The webhook channel here has no outbound_url: each of its sends fails, none stops the others.
    hooks = [r for r in st.get("recipients", []) if r.get("channel") == "hooks"]
    check(len(hooks) == N and all(r["status"] == "failed" and "outbound_url" in r.get("reason", "") for r in hooks),
          f"every failing recipient is tried and recorded: {hooks[:2]}")
finally:
    gw.cleanup()
    tw.close()
done()
