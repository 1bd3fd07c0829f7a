"""Messenger's standard messaging window (24 hours) and message tags, against a local server playing the
Graph API: outside the window a free text is refused by message.send (422 outside_window) before Meta is
called; a message tag lets it go (messaging_type MESSAGE_TAG); HUMAN_AGENT only within 7 days; inside the
window a reply goes as RESPONSE; Messenger has no templates; an unknown tag never reaches Meta."""
import hashlib
import hmac
import json
import time

from fakeprovider import FakeProvider
from harness import Gateway, check, done, fixture

SECRET, PAGE, PAGE2 = "meta-app-secret", "1234567890", "1111111111"
OLD_USER, NEW_USER = "24680135792468013", "13579246801357924"
fake = FakeProvider()
fake.default = lambda req: (200, {"recipient_id": "x", "message_id": f"m_OUT{time.time_ns()}"}, {})
gw = Gateway(config_body="""outbox: { backoff_base: 5s }
pipelines:
  - name: inbound
    steps: [ {dedupe: {}}, {identify: {}}, {thread: {}} ]
""", extra_channels=f"""  - name: fb
    type: messenger
    config: {{ page_id: "{PAGE}", access_token: PAGE-TOKEN, app_secret: {SECRET}, api_base_url: "{fake.url}" }}
  - name: fb2
    type: messenger
    config: {{ page_id: "{PAGE2}", access_token: PAGE-TOKEN, app_secret: {SECRET}, api_base_url: "{fake.url}",
               reply_window: 2s }}
""").start()
PATH = "/v19.0/1234567890/messages"


def post(body, channel="fb"):
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return gw.request("POST", f"/webhooks/{channel}", body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig})


def send(to, **kw):
    return gw.api("message.send", {"channel": "fb", "to": f"messenger:{to}", **kw})


try:
    # One customer wrote in 2024 (the fixture), another just now.
    st, _ = post(fixture("messenger", "text.json"))
    now_ms = int(time.time() * 1000)
    fresh = fixture("messenger", "text.json").replace(OLD_USER.encode(), NEW_USER.encode()) \
        .replace(b"1732269600123", str(now_ms).encode()).replace(b"m_AG5Hz2", b"m_FRESH1")
    st2, _ = post(fresh)
    check(st == 200 and st2 == 200, f"the customers' messages stored: {st} {st2}")

    rc, r = send(OLD_USER, text="Your order shipped")
    e = r.get("error", {})
    check(rc != 0 and e.get("code") == "outside_window" and "message tag" in e.get("message", "")
          and "2024-11-22T10:00:00.123Z" in e.get("message", ""),
          f"free text outside the window: refused, naming the customer's last message and the tags: {r}")
    rc, r = send(OLD_USER, text="Your order shipped", meta={"tag": "HUMAN_AGENT"})
    check(rc != 0 and r.get("error", {}).get("code") == "outside_window", f"HUMAN_AGENT after 7 days: refused: {r}")
    rc, r = send(OLD_USER, template={"name": "order_update", "language": "en_US"})
    check(rc != 0 and r.get("error", {}).get("code") == "not_supported" and "no template" in r["error"]["message"],
          f"Messenger has no templates: refused at once: {r}")
    time.sleep(0.3)
    check(len(fake.seen("POST", PATH)) == 0, "Meta was never called for them")

    rc, r = send(OLD_USER, text="Your account was updated", meta={"tag": "ACCOUNT_UPDATE"})
    m = gw.wait_message(r.get("id"), "sent")
    req = fake.seen("POST", PATH)[-1].json() if fake.seen("POST", PATH) else {}
    check(m.get("status") == "sent" and req == {"recipient": {"id": OLD_USER}, "messaging_type": "MESSAGE_TAG",
                                                "tag": "ACCOUNT_UPDATE", "message": {"text": "Your account was updated"}},
          f"a tagged message goes as MESSAGE_TAG: {req}")

    rc, r = send(NEW_USER, text="Hello again", meta={"tag": "HUMAN_AGENT"})
    m = gw.wait_message(r.get("id"), "sent")
    check(m.get("status") == "sent" and fake.seen("POST", PATH)[-1].json().get("tag") == "HUMAN_AGENT",
          "HUMAN_AGENT within 7 days goes")
    rc, r = send(NEW_USER, text="Happy to help")
    m = gw.wait_message(r.get("id"), "sent")
    check(m.get("status") == "sent" and fake.seen("POST", PATH)[-1].json().get("messaging_type") == "RESPONSE",
          "inside the window: a RESPONSE")

    n = len(fake.seen("POST", PATH))
    rc, r = send(NEW_USER, text="x", meta={"tag": "PROMOTION"})
    m = gw.wait_message(r.get("id"), "failed")
    check("meta.tag must be" in m.get("error", "") and len(fake.seen("POST", PATH)) == n,
          f"an unknown tag is refused without calling Meta: {m.get('error')}")


    # Queued inside the window, due after it (a retry): the outbox does not call Meta, and says why.
    path2 = f"/v19.0/{PAGE2}/messages"
    fake.script[("POST", path2)] = [(500, {"error": {"message": "An unknown error has occurred.", "code": 1}}),
                                    (200, {"recipient_id": "x", "message_id": "m_LATE"})]
    page2 = fresh.replace(PAGE.encode(), PAGE2.encode()).replace(b"m_FRESH1", b"m_FRESH2") \
        .replace(str(now_ms).encode(), str(int(time.time() * 1000)).encode())
    st, _ = post(page2, "fb2")
    rc, r = gw.api("message.send", {"channel": "fb2", "to": f"messenger:{NEW_USER}", "text": "Sorry, one moment"})
    m = gw.wait_message(r.get("id"), "failed", timeout=15)
    check(st == 200 and rc == 0 and len(fake.seen("POST", path2)) == 1 and "2-second" in m.get("error", ""),
          f"a retry past the window is not sent: {len(fake.seen('POST', path2))} calls, {m.get('error')}")
finally:
    gw.cleanup()
    fake.close()
done()
