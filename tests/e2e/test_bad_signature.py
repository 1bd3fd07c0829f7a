"""The helper library's refusal of an unsigned or badly signed webhook (prov_refuse_signature, prov_meta_signed):
401 naming the header, nothing stored, and the channel's webhook_bad_signature_total counts it."""
import re

from harness import Gateway, check, done, fixture, sign

gw = Gateway(extra_channels="""  - name: wa
    type: whatsapp
    config:
      phone_number_id: "106540352242922"
      access_token: test-token
      app_secret: wa-app-secret
""").start()


def counter(channel):
    st, body = gw.request("GET", "/metrics")
    m = re.search(rf'^parley_webhook_bad_signature_total{{channel="{channel}"}} (\d+)$', body.decode(), re.M)
    return int(m.group(1)) if m else 0


try:
    body = fixture("whatsapp", "text.json")
    for sig in (None, sign("not-the-secret", body)):
        headers = {"Content-Type": "application/json"}
        if sig:
            headers["X-Hub-Signature-256"] = sig
        st, answer = gw.request("POST", "/webhooks/wa", body, headers)
        check(st == 401 and b"X-Hub-Signature-256" in answer, f"whatsapp refuses signature {sig}: {st} {answer!r}")
    check(counter("wa") == 2, f"both counted for wa: {counter('wa')}")
    check(gw.list_all("wa") == [], "nothing stored")
    st, _ = gw.request("POST", "/webhooks/wa", body,
                       {"Content-Type": "application/json", "X-Hub-Signature-256": sign("wa-app-secret", body)})
    check(st == 200 and len(gw.list_all("wa")) == 1 and counter("wa") == 2, f"a signed one is stored, not counted: {st}")

    st, answer = gw.post_message({"id": "x1", "from": "tel:+15551234567", "text": "hi"}, secret="wrong")
    check(st == 401 and b"X-Parley-Signature" in answer, f"webhook refuses a bad signature: {st} {answer!r}")
    check(counter("hooks") == 1 and gw.list_all("hooks") == [], "counted for hooks, nothing stored")
finally:
    gw.cleanup()
done()
