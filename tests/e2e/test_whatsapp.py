"""WhatsApp Cloud API channel: documented webhook payloads in, documented requests out,
against a local server playing the Graph API."""
import hashlib
import hmac
import json
import os

from fakeprovider import FakeProvider
from envelopes import check_all_stored, check_logged_why, log_size
from harness import Gateway, check, done, fixture

APP_SECRET = "wa-app-secret"
TOKEN = "EAAG-test-token"
PNID = "106540352242922"
fake = FakeProvider()
gw = Gateway(config_body="outbox:\n  backoff_base: 100ms\n  max_attempts: 4\n",
             extra_channels=f"""  - name: wa
    type: whatsapp
    config:
      reply_window: 0  # the fixtures' customers wrote in 2024: the window is test_broadcast's subject
      phone_number_id: "{PNID}"
      access_token: {TOKEN}
      app_secret: {APP_SECRET}
      verify_token: verify-me
      api_base_url: {fake.url}
      api_version: v19.0
  - name: wa-groups
    type: whatsapp
    config:
      phone_number_id: "{PNID}"
      access_token: {TOKEN}
      app_secret: {APP_SECRET}
      api_base_url: {fake.url}
      groups: true
""").start()


def post(body, secret=APP_SECRET, channel="wa"):
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return gw.request("POST", f"/webhooks/{channel}", body,
                      {"Content-Type": "application/json", "X-Hub-Signature-256": sig})


def by_ext(ext, channel="wa"):
    return {m.get("external_id"): m for m in gw.list_all(channel)}.get(ext)


try:
    # The verification handshake.
    st, body = gw.request("GET", "/webhooks/wa?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444")
    check(st == 200 and body == b"1158201444", f"hub.challenge echoed: {st} {body!r}")
    st, _ = gw.request("GET", "/webhooks/wa?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")
    check(st == 403, f"a wrong verify token is refused: {st}")

    # Text: URN, text, external id, provider time, display name.
    st, _ = post(fixture("whatsapp", "text.json"))
    check(st == 200, f"text answered {st}")
    m = by_ext("wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQTdBRkM1Mjc1MDQyRjg5QzQyMQA=")
    check(m is not None, "text stored")
    if m:
        check(m["from"] == "whatsapp:15551234567" and m["to"] == "whatsapp:15550783881", f"URNs: {m}")
        check(m["text"] == "Hello, is my order shipped?", "text")
        check(m["sent_at"] == "2024-11-22T10:00:00.000Z", f"provider time: {m.get('sent_at')}")
        check(m["meta"]["contact_name"] == "Kerry Fisher", "the profile name is kept")
        check(m["kind"] == "message" and m["channel_type"] == "whatsapp", "kind and type")

    # Redelivery stored once; wrong signature 401 and nothing stored; malformed 400.
    before = len(gw.list_all("wa"))
    st, _ = post(fixture("whatsapp", "text.json"))
    check(st == 200 and len(gw.list_all("wa")) == before, "a redelivery is acknowledged and stored once")
    st, _ = post(fixture("whatsapp", "two_messages.json"), secret="not-the-secret")
    check(st == 401 and len(gw.list_all("wa")) == before, f"bad signature: {st}, nothing stored")
    st, _ = gw.request("POST", "/webhooks/wa", fixture("whatsapp", "two_messages.json"), {})
    check(st == 401, f"missing signature: {st}")
    st, body = post(b'{"object": "whatsapp_business_account", "entry": ')
    check(st == 400, f"malformed body: {st} {body!r}")

    # Another phone number of the app: acknowledged, ignored.
    at = log_size(gw)
    st, _ = post(fixture("whatsapp", "other_number.json"))
    check(st == 200 and by_ext("wamid.OTHER1") is None, "a payload for another number is acknowledged and ignored")
    check_logged_why(gw, at, "[channel wa]", "not stored", "phone number id")

    # Several messages in one payload: several envelopes.
    st, _ = post(fixture("whatsapp", "two_messages.json"))
    check(st == 200 and by_ext("wamid.TWO1") and by_ext("wamid.TWO2"), "two messages, two envelopes")

    # Image: fetched after commit through the Graph API, kept content-addressed.
    image = os.urandom(20000)
    fake.script[("GET", "/v19.0/1003383421387256")] = [(200, {"url": fake.url + "/media/lookaside/1003383421387256",
                                                              "mime_type": "image/jpeg", "file_size": len(image),
                                                              "id": "1003383421387256", "messaging_product": "whatsapp"})]
    fake.script[("GET", "/media/lookaside/1003383421387256")] = [(200, image, {"Content-Type": "image/jpeg"})]
    st, _ = post(fixture("whatsapp", "image.json"))
    check(st == 200, "image answered")
    fake.wait_for("GET", "/media/lookaside/1003383421387256")
    want = hashlib.sha256(image).hexdigest()
    att = {}
    for _ in range(50):
        m = by_ext("wamid.IMAGE1")
        att = (m or {}).get("attachments", [{}])[0]
        if att.get("sha256"):
            break
        __import__("time").sleep(0.1)
    check(att.get("sha256") == want and att.get("size") == len(image), f"image sha256 recorded: {att}")
    check(att.get("content_type") == "image/jpeg" and att.get("kind") == "image", f"{att}")
    check(m and m.get("text") == "the broken part", "the caption is the text")
    path = os.path.join(gw.dir, "var", att.get("ref", "missing"))
    check(os.path.exists(path) and open(path, "rb").read() == image, f"the bytes are at {att.get('ref')}")
    auth = [r.headers.get("Authorization") for r in fake.seen("GET")]
    check(all(a == f"Bearer {TOKEN}" for a in auth), "media requests carry the access token")

    # Every other kind.
    for name, ext, test in (
            ("audio", "wamid.AUDIO1", lambda m: m["attachments"][0]["kind"] == "voice"),
            ("video", "wamid.VIDEO1", lambda m: m["attachments"][0]["content_type"] == "video/mp4"),
            ("document", "wamid.DOC1", lambda m: m["attachments"][0]["name"] == "invoice-2026-11.pdf"),
            ("sticker", "wamid.STICKER1", lambda m: m["attachments"][0]["kind"] == "sticker"),
            ("location", "wamid.LOC1", lambda m: m["meta"]["location"]["latitude"] == 37.4852 and "Main Street" in m["text"]),
            ("contacts", "wamid.CONTACTS1", lambda m: m["text"] == "Ana Lima" and m["meta"]["contacts"][0]["phones"]),
            ("button", "wamid.BUTTON1", lambda m: m["text"] == "Track my order" and m["meta"]["reply_id"] == "TRACK_ORDER"),
            ("interactive_button", "wamid.IBUTTON1", lambda m: m["text"] == "Refund" and m["meta"]["reply_id"] == "refund" and m["thread_ref"] == "wamid.OUT1"),
            ("interactive_list", "wamid.ILIST1", lambda m: m["meta"]["reply_type"] == "list_reply" and m["meta"]["reply_id"] == "size-m"),
            ("reaction", "wamid.REACT1", lambda m: m["kind"] == "event" and m["text"] == "👍" and m["thread_ref"] == "wamid.OUT1"),
            ("unknown", "wamid.UNSUP1", lambda m: m["meta"]["raw"]["errors"][0]["code"] == 131051)):
        st, _ = post(fixture("whatsapp", name + ".json"))
        m = by_ext(ext)
        try:
            ok = st == 200 and m is not None and test(m)
        except (KeyError, IndexError, TypeError):
            ok = False
        check(ok, f"{name}: {st} {m}")


    # Fidelity (issue 12): what the documentation shows, handled as it says.
    # Sender, contact and time that are not what the reference says: 400 naming the field, nothing stored.
    for name, ext, field in (("from_not_number", "wamid.BADFROM1", "messages[0].from"),
                             ("wa_id_not_number", "wamid.BADWAID1", "contacts[0].wa_id"),
                             ("timestamp_not_number", "wamid.BADTS1", "messages[0].timestamp")):
        st, body = post(fixture("whatsapp", name + ".json"))
        check(st == 400 and field.encode() in body and by_ext(ext) is None,
              f"{name}: 400 naming {field}, nothing stored: {st} {body!r}")

    # A user with a username and no number: the BSUID is the address, whole.
    st, _ = post(fixture("whatsapp", "bsuid.json"))
    m = by_ext("wamid.BSUID1")
    check(st == 200 and m and m.get("from") == "whatsapp:US.13491208655302741918" and m["kind"] == "message"
          and m["meta"].get("username") == "@sheena" and m["meta"].get("contact_name") == "Sheena Nelson",
          f"BSUID sender stored as whatsapp:<BSUID>: {st} {m}")
    st, _ = post(fixture("whatsapp", "bsuid_contacts_only.json"))
    m = by_ext("wamid.BSUID2")
    check(st == 200 and m and m.get("from") == "whatsapp:BR.ENT.1502576394655843" and m["text"] == "Olá",
          f"BSUID from contacts[].user_id (parent BSUID): {st} {m}")

    st, _ = post(fixture("whatsapp", "status_bsuid.json"))
    m = by_ext("wamid.OUT-BSUID:delivered")
    check(st == 200 and m and m["kind"] == "status" and m.get("to") == "whatsapp:US.13491208655302741918",
          f"a receipt naming only recipient_user_id: {st} {m}")

    # Groups: ignored with a reason where not enabled; stored with the group as the address where they are.
    at = log_size(gw)
    st, _ = post(fixture("whatsapp", "group.json"))
    check(st == 200 and by_ext("wamid.GROUP1") is None, f"a group message on a channel without groups: {st}")
    check_logged_why(gw, at, "[channel wa]", "not stored", "groups are not enabled")
    st, _ = post(fixture("whatsapp", "group.json"), channel="wa-groups")
    m = by_ext("wamid.GROUP1", "wa-groups")
    check(st == 200 and m and m.get("from") == "whatsapp-group:Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD"
          and m["meta"].get("group_sender") == "15551234567" and m["text"].startswith("Hi all"),
          f"a group message with groups: true has the group as its address: {st} {m}")

    # A Flow's answer: its fields kept, parsed, and the whole message in meta.raw.
    st, _ = post(fixture("whatsapp", "flow_reply.json"))
    m = by_ext("wamid.FLOW1")
    check(st == 200 and m and m["meta"].get("flow_response", {}).get("size") == "M"
          and m["meta"].get("reply_type") == "nfm_reply" and m["meta"]["raw"]["interactive"]["nfm_reply"]
          and m["thread_ref"] == "wamid.FLOWSENT1", f"nfm_reply kept: {st} {m}")

    # No sender at all: an event with the raw message, and a log line.
    at = log_size(gw)
    st, _ = post(fixture("whatsapp", "no_from.json"))
    m = by_ext("wamid.NOFROM1")
    check(st == 200 and m and m["kind"] == "event" and "from" not in m and m["meta"]["raw"]["text"]["body"] == "who am I?",
          f"a message without from kept as an event: {st} {m}")
    check_logged_why(gw, at, "wamid.NOFROM1", "meta.raw")

    # Receipts in a state the envelope does not have: events with the raw status, never a status.
    for name, ext, state in (("status_deleted", "wamid.OUT-DEL:deleted", "deleted"),
                             ("status_misspelled", "wamid.OUT-MIS:delivred", "delivred")):
        at = log_size(gw)
        st, _ = post(fixture("whatsapp", name + ".json"))
        m = by_ext(ext)
        check(st == 200 and m and m["kind"] == "event" and "status" not in m
              and m["meta"]["raw"]["status"] == state and m["meta"]["provider_status"] == state,
              f"{name}: an event with meta.raw: {st} {m}")
        check_logged_why(gw, at, state, "meta.raw")

    # The location's text does not say its name twice; the business number is a URN of digits.
    st, _ = post(fixture("whatsapp", "location_named.json"))
    m = by_ext("wamid.LOC2")
    check(st == 200 and m and m["text"] == "Main Street Beach, Santa Cruz, CA", f"location text: {m}")
    st, _ = post(fixture("whatsapp", "display_formatted.json"))
    m = by_ext("wamid.DISPLAY1")
    check(st == 200 and m and m["to"] == "whatsapp:15550783881", f"to from '+1 555-078-3881': {m}")

    # A change with only errors is kept; a change of another field is acknowledged with a reason.
    st, _ = post(fixture("whatsapp", "errors_only.json"))
    ev = [m for m in gw.list_all("wa") if m["kind"] == "event" and "errors" in m.get("meta", {}).get("raw", {})]
    check(st == 200 and len(ev) == 1 and ev[0]["meta"]["raw"]["errors"][0]["code"] == 131014,
          f"errors-only change kept: {st} {ev}")
    at = log_size(gw)
    n0 = len(gw.list_all("wa"))
    st, _ = post(fixture("whatsapp", "template_status.json"))
    check(st == 200 and len(gw.list_all("wa")) == n0, f"template status change acknowledged: {st}")
    check_logged_why(gw, at, "[channel wa]", "not stored", "message_template_status_update")

    # Outbound: exactly the documented request; 500 then 200 is sent once.
    path = f"/v19.0/{PNID}/messages"
    fake.script[("POST", path)] = [(500, {"error": {"message": "An unknown error occurred", "code": 1}}),
                                   (200, {"messaging_product": "whatsapp",
                                          "contacts": [{"input": "15551234567", "wa_id": "15551234567"}],
                                          "messages": [{"id": "wamid.OUT-A"}]})]
    rc, out, err = gw.cli("send", "-c", gw.config, "--channel", "wa", "--to", "whatsapp:15551234567", "--text", "hi")
    check(rc == 0, f"parley send: {out} {err}")
    mid = json.loads(out)["id"]
    m = gw.wait_message(mid, "sent")
    reqs = fake.seen("POST", path)
    check(m.get("status") == "sent" and len(reqs) == 2, f"sent after one retry: {m} ({len(reqs)} requests)")
    check(m.get("external_id") == "wamid.OUT-A", "the provider's id is stored")
    if reqs:
        check(reqs[-1].json() == {"messaging_product": "whatsapp", "recipient_type": "individual",
                                  "to": "15551234567", "type": "text", "text": {"preview_url": False, "body": "hi"}},
              f"the documented request body: {reqs[-1].body!r}")
        check(reqs[-1].headers.get("Authorization") == f"Bearer {TOKEN}", "bearer token")
        check(reqs[-1].headers.get("Content-Type") == "application/json", "JSON content type")

    # Receipts move that message forward, never back.
    for status in ("sent", "delivered", "read", "delivered"):
        body = fixture("whatsapp", f"status_{status}.json").replace(b"WAMID_PLACEHOLDER", b"wamid.OUT-A")
        st, _ = post(body)
        check(st == 200, f"receipt {status} answered {st}")
    m = gw.wait_message(mid, "read")
    check(m.get("status") == "read", f"delivered then read: {m.get('status')}")

    # A permanent error is dead-lettered with the provider's text.
    fake.script[("POST", path)] = [(400, {"error": {"message": "(#131047) Re-engagement message", "type": "OAuthException",
                                                    "code": 131047, "error_data": {"messaging_product": "whatsapp",
                                                    "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                                                    "fbtrace_id": "AbCdEf"}})]
    n0 = len(fake.seen("POST", path))
    rc, out, err = gw.cli("send", "-c", gw.config, "--channel", "wa", "--to", "whatsapp:15551234567", "--text", "late")
    mid2 = json.loads(out)["id"]
    m = gw.wait_message(mid2, "failed")
    check(m.get("status") == "failed" and "131047" in m.get("error", "") and "24 hours" in m.get("error", ""),
          f"dead-lettered with the provider's code and text: {m}")
    check(len(fake.seen("POST", path)) == n0 + 1, "a permanent error is not retried")

    # 429 with Retry-After is honoured; reply buttons become an interactive message.
    fake.script[("POST", path)] = [(429, {"error": {"message": "rate limit", "code": 130429}}, {"Retry-After": "1"}),
                                   (200, {"messages": [{"id": "wamid.OUT-B"}]})]
    rc, r = gw.api("message.send", {"channel": "wa", "to": "whatsapp:15551234567", "text": "Was this helpful?",
                                    "meta": {"buttons": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}]}})
    m = gw.wait_message(r["id"], "sent")
    reqs = fake.seen("POST", path)[-2:]
    check(m.get("status") == "sent" and len(reqs) == 2 and reqs[1].at - reqs[0].at >= 0.9,
          f"429 with Retry-After: 1 waited {reqs[1].at - reqs[0].at:.2f} s" if len(reqs) == 2 else "two tries")
    if reqs:
        inter = reqs[-1].json().get("interactive", {})
        check(inter.get("type") == "button" and [b["reply"]["id"] for b in inter["action"]["buttons"]] == ["yes", "no"],
              f"reply buttons: {inter}")

    # A failed receipt after sent marks the message failed with the provider's error.
    body = fixture("whatsapp", "status_failed.json").replace(b"WAMID_PLACEHOLDER", b"wamid.OUT-B")
    post(body)
    m = gw.wait_message(r["id"], "failed")
    check(m.get("status") == "failed" and "131047" in m.get("error", ""), f"failed receipt: {m}")

    # A reply to a group goes to the group (recipient_type group).
    fake.script[("POST", path)] = [(200, {"messages": [{"id": "wamid.OUT-G"}]})]
    rc, r = gw.api("message.send", {"channel": "wa", "to": "whatsapp-group:Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD",
                                    "text": "We open at 9"})
    m = gw.wait_message(r.get("id"), "sent")
    req = fake.seen("POST", path)[-1].json()
    check(m.get("status") == "sent" and req["recipient_type"] == "group"
          and req["to"] == "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD", f"group reply: {req}")

    check_all_stored(gw, "wa", "wa-groups")
finally:
    gw.cleanup()
    fake.close()
done()
