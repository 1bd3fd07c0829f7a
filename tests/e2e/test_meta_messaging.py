"""Messenger and Instagram channels (Meta Messenger Platform): documented webhook events in,
Send API requests out, against a local server playing the Graph API."""
import hashlib
import hmac
import json
import os
import time

from fakeprovider import FakeProvider
from envelopes import check_all_stored, check_logged_why, log_size
from harness import Gateway, check, done, fixture

SECRET = "meta-app-secret"
PAGE, IG = "1234567890", "17841400000000000"
fake = FakeProvider()
gw = Gateway(config_body="outbox:\n  backoff_base: 100ms\n  max_attempts: 4\n",
             extra_channels=f"""  - name: fb
    type: messenger  # reply_window 0: the fixtures' customers wrote in 2024 (the window: test_broadcast)
    config: {{ reply_window: 0, page_id: "{PAGE}", access_token: PAGE-TOKEN, app_secret: {SECRET}, verify_token: vt, api_base_url: "{fake.url}" }}
  - name: ig
    type: instagram
    config: {{ reply_window: 0, page_id: "{IG}", access_token: IG-TOKEN, app_secret: {SECRET}, api_base_url: "{fake.url}" }}
""").start()


def post(channel, kind, name, secret=SECRET, replace=None):
    body = fixture(kind, name + ".json").replace(b"MEDIA_BASE", fake.url.encode())
    for a, b in (replace or {}).items():
        body = body.replace(a.encode(), b.encode())
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return gw.request("POST", f"/webhooks/{channel}", body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig})


def by_ext(channel, ext):
    return {m.get("external_id"): m for m in gw.list_all(channel)}.get(ext)


def wait_sha(channel, ext, n=1):
    for _ in range(50):
        atts = (by_ext(channel, ext) or {}).get("attachments", [])
        if len(atts) >= n and all(a.get("sha256") for a in atts[:n]):
            return atts
        time.sleep(0.1)
    return (by_ext(channel, ext) or {}).get("attachments", [])


try:
    st, body = gw.request("GET", "/webhooks/fb?hub.mode=subscribe&hub.verify_token=vt&hub.challenge=CHALLENGE_ACCEPTED")
    check(st == 200 and body == b"CHALLENGE_ACCEPTED", "hub.challenge")
    mid = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
    st, _ = post("fb", "messenger", "text")
    m = by_ext("fb", mid)
    check(st == 200 and m and m["from"] == "messenger:24680135792468013" and m["text"] == "Hi, I need help with order 1234",
          f"Messenger text: {m}")
    check(m and m["sent_at"] == "2024-11-22T10:00:00.123Z", f"provider time in ms: {m and m.get('sent_at')}")
    n = len(gw.list_all("fb"))
    st, _ = post("fb", "messenger", "text")
    check(st == 200 and len(gw.list_all("fb")) == n, "redelivery stored once")
    st, _ = post("fb", "messenger", "quick_reply", secret="wrong")
    check(st == 401 and len(gw.list_all("fb")) == n, "bad signature: 401, nothing stored")
    st, _ = gw.request("POST", "/webhooks/fb", b'{"object":"page","entry":', {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), b'{"object":"page","entry":', hashlib.sha256).hexdigest()})
    check(st == 400, f"malformed: {st}")
    at = log_size(gw)
    st, _ = post("fb", "messenger", "other_page")
    check(st == 200 and by_ext("fb", "m_OTHER1") is None, "another page's event is ignored")
    check_logged_why(gw, at, "[channel fb]", "not stored", "not 1234567890")
    at = log_size(gw)
    st, _ = post("fb", "messenger", "echo")
    check(st == 200 and by_ext("fb", "m_ECHO1") is None, "echoes of our own sends are skipped")
    check_logged_why(gw, at, "[channel fb]", "not stored", "echo")

    # Fidelity (issue 12): senders and times as the reference has them, else 400 naming the field.
    for ch, kind, name, ext, field in (("fb", "messenger", "sender_not_numeric", "m_BADSENDER1", "messaging[0].sender.id"),
                                       ("fb", "messenger", "timestamp_not_number", "m_BADTS1", "messaging[0].timestamp"),
                                       ("fb", "messenger", "sender_missing", "m_NOSENDER1", "messaging[0].sender.id"),
                                       ("ig", "instagram", "sender_not_numeric", "aWdfBADSENDER1", "messaging[0].sender.id")):
        st, body = post(ch, kind, name)
        check(st == 400 and field.encode() in body and by_ext(ch, ext) is None,
              f"{kind} {name}: 400 naming {field}, nothing stored: {st} {body!r}")
    # An event for another recipient than the page: acknowledged, ignored, logged.
    for ch, kind, ext in (("fb", "messenger", "m_OTHERRCPT1"), ("ig", "instagram", "aWdfOTHERRCPT1")):
        at = log_size(gw)
        st, _ = post(ch, kind, "other_recipient")
        check(st == 200 and by_ext(ch, ext) is None, f"{kind}: another recipient's event ignored: {st}")
        check_logged_why(gw, at, f"[channel {ch}]", "not stored", "recipient")
    # Nothing acknowledged in silence: a delivery naming no message, standby events.
    for name in ("delivery_watermark", "standby"):
        at = log_size(gw)
        n0 = len(gw.list_all("fb"))
        st, _ = post("fb", "messenger", name)
        check(st == 200 and len(gw.list_all("fb")) == n0, f"{name}: acknowledged: {st}")
        check_logged_why(gw, at, "[channel fb]", "not stored", "entry[0]")
    # A checkbox opt-in names the person by user_ref only: kept as an event, not refused.
    st, _ = post("fb", "messenger", "optin_user_ref")
    ev = [m for m in gw.list_all("fb") if m.get("meta", {}).get("raw", {}).get("optin", {}).get("user_ref") == "UNIQUE_REF_PARAM"]
    check(st == 200 and len(ev) == 1 and "from" not in ev[0], f"an opt-in by user_ref kept in meta.raw: {st} {ev}")
    # A heart, a like: the emoji is the text.
    st, _ = post("fb", "messenger", "reaction_no_emoji")
    m = by_ext("fb", "reaction:m_OUT2:react:1732269600123")
    check(st == 200 and m and m.get("text") == "\u2764\ufe0f", f"a 'love' reaction without emoji: {m}")
    st, _ = post("ig", "instagram", "like_heart")
    m = by_ext("ig", "aWdfHEART1")
    check(st == 200 and m and m.get("text") == "\u2764\ufe0f" and m["attachments"][0]["kind"] == "like_heart",
          f"an Instagram heart: {m}")

    blobs = {}
    for name in ("image1.jpg", "audio1.mp4", "video1.mp4", "file1.pdf", "sticker.png", "ig1.jpg", "story.mp4"):
        blobs[name] = os.urandom(3000)
        fake.script[("GET", "/cdn/" + name)] = [(200, blobs[name], {"Content-Type": "application/octet-stream"})]
    for name, ext, blob, kind in (("image", "m_IMAGE1", "image1.jpg", "image"), ("audio", "m_AUDIO1", "audio1.mp4", "audio"),
                                  ("video", "m_VIDEO1", "video1.mp4", "video"), ("file", "m_FILE1", "file1.pdf", "document"),
                                  ("sticker", "m_STICKER1", "sticker.png", "sticker")):
        st, _ = post("fb", "messenger", name)
        atts = wait_sha("fb", ext)
        check(st == 200 and atts and atts[0]["kind"] == kind and atts[0]["sha256"] == hashlib.sha256(blobs[blob]).hexdigest(),
              f"{name}: {atts}")
    m = by_ext("fb", "m_STICKER1")
    check(m and m.get("text") == "\U0001f44d", f"the like sticker's text is the thumbs up: {m}")
    for name, ext, test in (
            ("location", "m_LOC1", lambda m: m["meta"]["location"] == {"latitude": 52.52, "longitude": 13.405}),
            ("quick_reply", "m_QR1", lambda m: m["text"] == "Yes" and m["meta"]["reply_id"] == "CONFIRM_YES"),
            ("reply_to", "m_REPLY1", lambda m: m["thread_ref"] == "m_OUT1"),
            ("postback", "postback:m_POSTBACK1", lambda m: m["text"] == "Talk to an agent" and m["meta"]["reply_id"] == "AGENT"),
            ("reaction", "reaction:m_OUT1:react:1732269600123", lambda m: m["kind"] == "event" and m["thread_ref"] == "m_OUT1"),
            ("edit", mid + ":edit:1", lambda m: m["meta"]["edited"] and m["text"].endswith("1235")),
            ("unknown", None, None)):
        st, _ = post("fb", "messenger", name)
        if name == "unknown":
            raw = [m for m in gw.list_all("fb") if m.get("meta", {}).get("raw", {}).get("optin", {}).get("type") == "notification_messages"]
            check(st == 200 and len(raw) == 1, f"an unknown event is kept in meta.raw: {raw}")
            st, _ = post("fb", "messenger", name)
            raw = [m for m in gw.list_all("fb") if m.get("meta", {}).get("raw", {}).get("optin", {}).get("type") == "notification_messages"]
            check(len(raw) == 1, "and stored once when redelivered")
            continue
        m = by_ext("fb", ext)
        try:
            ok = st == 200 and m is not None and test(m)
        except (KeyError, TypeError):
            ok = False
        check(ok, f"{name}: {st} {m}")

    # Instagram: same shapes under object "instagram".
    st, _ = post("ig", "instagram", "text")
    m = by_ext("ig", "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw")
    check(st == 200 and m and m["from"] == "instagram:1357924680135792" and m["channel_type"] == "instagram", f"IG text: {m}")
    st, _ = post("ig", "instagram", "image")
    atts = wait_sha("ig", "aWdfIMAGE1")
    check(atts and atts[0]["sha256"] == hashlib.sha256(blobs["ig1.jpg"]).hexdigest(), f"IG image: {atts}")
    st, _ = post("ig", "instagram", "story_mention")
    atts = wait_sha("ig", "aWdfSTORY1")
    check(atts and atts[0]["kind"] == "story_mention", f"IG story mention kept: {atts}")
    st, _ = post("ig", "instagram", "deleted")
    m = by_ext("ig", "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw:deleted")
    check(m and m["kind"] == "event" and m["meta"]["deleted"], f"IG deletion: {m}")
    at = log_size(gw)
    st, _ = post("fb", "instagram", "text")
    check(st == 200 and not by_ext("fb", "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw"), "an instagram payload on a messenger channel is ignored")
    check_logged_why(gw, at, "[channel fb]", "not stored", "webhook object 'instagram'")

    # Outbound Messenger: the Send API request; 500 then 200; receipts; permanent errors.
    path = f"/v19.0/{PAGE}/messages"
    fake.script[("POST", path)] = [(500, {"error": {"message": "An unknown error has occurred.", "type": "OAuthException", "code": 1}}),
                                   (200, {"recipient_id": "24680135792468013", "message_id": "m_SENT1"})]
    rc, out, err = gw.cli("send", "-c", gw.config, "--channel", "fb", "--to", "messenger:24680135792468013", "--text", "On its way")
    mid_out = json.loads(out)["id"]
    m = gw.wait_message(mid_out, "sent")
    reqs = fake.seen("POST", path)
    check(m.get("status") == "sent" and len(reqs) == 2 and m.get("external_id") == "m_SENT1", f"sent once: {m}")
    if reqs:
        check(reqs[-1].json() == {"recipient": {"id": "24680135792468013"}, "messaging_type": "RESPONSE",
                                  "message": {"text": "On its way"}}, f"the Send API body: {reqs[-1].body!r}")
        check(reqs[-1].query.get("access_token") == "PAGE-TOKEN", "page token")
    st, _ = post("fb", "messenger", "delivery", replace={"MID_PLACEHOLDER": "m_SENT1"})
    m = gw.wait_message(mid_out, "delivered")
    check(m.get("status") == "delivered", f"the delivery receipt: {m.get('status')}")

    st, _ = post("fb", "messenger", "read")
    reads = [m for m in gw.list_all("fb") if m["kind"] == "status" and m.get("status") == "read"]
    check(st == 200 and len(reads) == 1 and reads[0]["meta"]["read"]["watermark"] == 1732269800000,
          f"the read watermark is kept as a receipt: {reads}")

    fake.script[("POST", path)] = [(429, {"error": {"message": "(#613) Calls to this api have exceeded the rate limit.",
                                                    "type": "OAuthException", "code": 613}}, {"Retry-After": "1"}),
                                   (200, {"recipient_id": "24680135792468013", "message_id": "m_SENT3"})]
    rc, r = gw.api("message.send", {"channel": "fb", "to": "messenger:24680135792468013", "text": "paced"})
    m = gw.wait_message(r["id"], "sent")
    reqs = fake.seen("POST", path)[-2:]
    check(m.get("status") == "sent" and reqs[1].at - reqs[0].at >= 0.9, "429 with Retry-After is honoured")

    fake.script[("POST", path)] = [(400, {"error": {"message": "(#10) This message is sent outside of allowed window.",
                                                    "type": "OAuthException", "code": 10, "error_subcode": 2018278,
                                                    "fbtrace_id": "Xyz"}})]
    rc, out, err = gw.cli("send", "-c", gw.config, "--channel", "fb", "--to", "messenger:24680135792468013", "--text", "late")
    m = gw.wait_message(json.loads(out)["id"], "failed")
    check(m.get("status") == "failed" and "2018278" in m.get("error", "") and "allowed window" in m.get("error", ""),
          f"outside the window: dead-lettered with Meta's text: {m}")

    fake.script[("POST", path)] = [(200, {"recipient_id": "x", "message_id": "m_SENT2"})]
    rc, r = gw.api("message.send", {"channel": "fb", "to": "messenger:24680135792468013", "text": "Pick one",
                                    "meta": {"buttons": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]}})
    gw.wait_message(r["id"], "sent")
    qr = fake.seen("POST", path)[-1].json()["message"].get("quick_replies")
    check(qr == [{"content_type": "text", "title": "A", "payload": "a"}, {"content_type": "text", "title": "B", "payload": "b"}],
          f"quick replies: {qr}")

    fake.script[("POST", f"/v19.0/{IG}/messages")] = [(200, {"recipient_id": "1357924680135792", "message_id": "aWdfSENT"})]
    rc, r = gw.api("message.send", {"channel": "ig", "to": "instagram:1357924680135792", "text": "Yes, we do"})
    m = gw.wait_message(r["id"], "sent")
    check(m.get("external_id") == "aWdfSENT", f"Instagram send: {m}")
    st, _ = post("ig", "instagram", "delivery", replace={"MID_PLACEHOLDER": "aWdfSENT"})
    m = gw.wait_message(r["id"], "delivered")
    check(m.get("status") == "delivered", "Instagram delivery receipt")

    check_all_stored(gw, "fb", "ig")
finally:
    gw.cleanup()
    fake.close()
done()
