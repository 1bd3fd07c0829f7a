"""Twilio SMS channel: documented form webhooks signed with X-Twilio-Signature in,
Messages.json requests out, against a local server playing the REST API."""
import base64
import hashlib
import hmac
import json
import os
import time
import urllib.parse

from fakeprovider import FakeProvider
from envelopes import check_all_stored, check_logged_why, log_size
from harness import Gateway, check, done, fixture

AC = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
TOKEN = "twilio-auth-token"
PUBLIC = "https://parley.example.com"
fake = FakeProvider()
gw = Gateway(config_body="outbox:\n  backoff_base: 100ms\n  max_attempts: 4\n",
             http_extra=f"  public_url: {PUBLIC}\n",
             extra_channels=f"""  - name: sms
    type: twilio
    config:
      account_sid: {AC}
      auth_token: {TOKEN}
      from: "+14155550100"
      api_base_url: {fake.url}
""").start()


def twilio_signature(url, params, token=TOKEN):
    data = url + "".join(k + v for k, v in sorted(params.items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def post(name, token=TOKEN, replace=None):
    text = fixture("twilio", name + ".form").decode().strip().replace("MEDIA_BASE", urllib.parse.quote(fake.url, safe=""))
    for a, b in (replace or {}).items():
        text = text.replace(a, b)
    params = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    sig = twilio_signature(PUBLIC + "/webhooks/sms", params, token)
    return gw.request("POST", "/webhooks/sms", text.encode(),
                      {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})


def by_ext(ext):
    return {m.get("external_id"): m for m in gw.list_all("sms")}.get(ext)


try:
    st, body = post("text")
    m = by_ext("SMa1b2c3d4e5f60718293a4b5c6d7e8f90")
    check(st == 200 and b"<Response></Response>" in body, f"answered with TwiML: {st} {body!r}")
    check(m and m["from"] == "tel:+15551234567" and m["to"] == "tel:+14155550100", f"URNs: {m}")
    check(m and m["text"] == "Where is my refund? 환불", "text")
    n = len(gw.list_all("sms"))
    st, _ = post("text")
    check(st == 200 and len(gw.list_all("sms")) == n, "a redelivery is stored once")
    st, _ = post("location", token="wrong-token")
    check(st == 401 and len(gw.list_all("sms")) == n, f"a bad signature: {st}, nothing stored")
    st, _ = gw.request("POST", "/webhooks/sms", b"From=%2B1&Body=x", {"Content-Type": "application/x-www-form-urlencoded"})
    check(st == 401, f"a missing signature: {st}")
    at = log_size(gw)
    st, _ = post("other_account")
    check(st == 200 and by_ext("SMother00000000000000000000000000001") is None, "another account's message is ignored")
    check_logged_why(gw, at, "[channel sms]", "not stored", "ACotherother")

    # Fidelity (issue 12): text as the customer wrote it, senders as the docs name them.
    st, _ = post("base64_concat")
    m = by_ext("SMb64000000000000000000000000000001")
    check(st == 200 and m and m.get("text", "").startswith("Hello, I ordered the blue jacket")
          and m["text"].endswith("고맙습니다 — Kerry") and m["meta"].get("body_base64"),
          f"a base64 concatenated SMS is decoded: {m}")
    for name, ext, body in (("base64_single", "SMb64000000000000000000000000000002", "SGVsbG8gd29ybGQh"),
                            ("base64_not_text", "SMb64000000000000000000000000000003", None)):
        st, _ = post(name)
        m = by_ext(ext)
        check(st == 200 and m and "body_base64" not in m["meta"] and (body is None or m["text"] == body),
              f"{name}: kept as it came: {m}")
    st, _ = post("whatsapp_button")
    m = by_ext("SMwab000000000000000000000000000001")
    check(st == 200 and m and m.get("text") == "Track my order" and m["meta"]["reply_id"] == "TRACK_ORDER"
          and m["from"] == "whatsapp:15551234567", f"a WhatsApp button reply carries ButtonText: {m}")
    st, _ = post("whatsapp_bsuid")
    m = by_ext("SMwau000000000000000000000000000001")
    check(st == 200 and m and m.get("from") == "whatsapp:US.13491208655302741918", f"a BSUID sender kept whole: {m}")
    for name, ext, word in (("whatsapp_bad_from", "SMwax000000000000000000000000000001", b"'From'"),
                            ("no_from", "SMnofrom0000000000000000000000000001", b"'From'")):
        st, body = post(name)
        check(st == 400 and word in body and by_ext(ext) is None, f"{name}: 400 naming From: {st} {body!r}")

    # MMS: two media fetched with basic auth.
    img, vid = os.urandom(5000), os.urandom(9000)
    fake.script[("GET", f"/2010-04-01/Accounts/{AC}/Messages/MMf1/Media/ME0")] = [(200, img, {"Content-Type": "image/jpeg"})]
    fake.script[("GET", f"/2010-04-01/Accounts/{AC}/Messages/MMf1/Media/ME1")] = [(200, vid, {"Content-Type": "video/mp4"})]
    st, _ = post("mms")
    atts = []
    for _ in range(50):
        atts = (by_ext("MMf1e2d3c4b5a69788796a5b4c3d2e1f00") or {}).get("attachments", [])
        if len(atts) == 2 and all(a.get("sha256") for a in atts):
            break
        time.sleep(0.1)
    check([a.get("sha256") for a in atts] == [hashlib.sha256(img).hexdigest(), hashlib.sha256(vid).hexdigest()],
          f"both media kept: {atts}")
    got = fake.seen("GET")
    want_auth = "Basic " + base64.b64encode(f"{AC}:{TOKEN}".encode()).decode()
    check(got and all(r.headers.get("Authorization") == want_auth for r in got), "media fetched with basic auth")

    st, _ = post("location")
    m = by_ext("SMloc000000000000000000000000000001")
    check(m and m["meta"]["location"]["latitude"] == 37.7749, f"location: {m}")
    st, _ = post("button")
    m = by_ext("SMbtn000000000000000000000000000001")
    check(m and m["text"] == "Yes" and m["meta"]["reply_id"] == "confirm-yes", f"button reply: {m}")

    # Outbound: the documented form; 500 then 201 sent once; receipts; permanent errors.
    path = f"/2010-04-01/Accounts/{AC}/Messages.json"
    fake.script[("POST", path)] = [(500, {"code": 20500, "message": "Internal Server Error", "status": 500}),
                                   (201, {"sid": "SMout000000000000000000000000000001", "status": "queued"})]
    rc, out, err = gw.cli("send", "-c", gw.config, "--channel", "sms", "--to", "tel:+15551234567", "--text", "Refund sent")
    mid = json.loads(out)["id"]
    m = gw.wait_message(mid, "sent")
    reqs = fake.seen("POST", path)
    check(m.get("status") == "sent" and len(reqs) == 2 and m.get("external_id") == "SMout000000000000000000000000000001",
          f"sent once after a 500: {m}")
    if reqs:
        form = reqs[-1].form()
        check(form == {"To": "+15551234567", "From": "+14155550100", "Body": "Refund sent",
                       "StatusCallback": PUBLIC + "/webhooks/sms"}, f"the documented form: {form}")
        check(reqs[-1].headers.get("Authorization") == want_auth, "basic auth on sends")
    for st_name in ("sent", "delivered", "read"):
        st, _ = post("status_" + st_name, replace={"SID_PLACEHOLDER": "SMout000000000000000000000000000001"})
        check(st == 200, f"status callback {st_name}: {st}")
    m = gw.wait_message(mid, "read")
    check(m.get("status") == "read", f"the sent, delivered and read callbacks move the message: {m.get('status')}")

    # A status callback without AccountSid is taken (the signature proves the account); another account's is not.
    st, _ = post("status_no_account", replace={"SID_PLACEHOLDER": "SMnoacct000000000000000000000000001"})
    r = by_ext("SMnoacct000000000000000000000000001:delivered")
    check(st == 200 and r and r["kind"] == "status" and r["status"] == "delivered",
          f"a callback without AccountSid is stored: {st} {r}")
    at = log_size(gw)
    st, _ = post("status_other_account")
    check(st == 200 and by_ext("SMstatusother0000000000000000000001:delivered") is None, "another account's callback ignored")
    check_logged_why(gw, at, "[channel sms]", "not stored", "ACotherother")
    # A state outside the receipts: an event with the raw callback, logged.
    for name, sid, state in (("status_canceled", "SMcancel000000000000000000000000001", "canceled"),
                             ("status_misspelled", "SMmisspl000000000000000000000000001", "delivred")):
        at = log_size(gw)
        st, _ = post(name)
        r = by_ext(f"{sid}:{state}")
        check(st == 200 and r and r["kind"] == "event" and "status" not in r and r["meta"]["raw"]["MessageStatus"] == state,
              f"{name}: an event with meta.raw: {st} {r}")
        check_logged_why(gw, at, state, "meta.raw")

    fake.script[("POST", path)] = [(429, {"code": 20429, "message": "Too Many Requests", "status": 429}, {"Retry-After": "1"}),
                                   (201, {"sid": "SMout000000000000000000000000000009", "status": "queued"})]
    rc, r = gw.api("message.send", {"channel": "sms", "to": "tel:+15551234567", "text": "paced"})
    m = gw.wait_message(r["id"], "sent")
    reqs = fake.seen("POST", path)[-2:]
    check(m.get("status") == "sent" and reqs[1].at - reqs[0].at >= 0.9, "429 with Retry-After is honoured")

    fake.script[("POST", path)] = [(400, {"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.",
                                          "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400})]
    rc, out, err = gw.cli("send", "-c", gw.config, "--channel", "sms", "--to", "tel:+1555", "--text", "x")
    m = gw.wait_message(json.loads(out)["id"], "failed")
    check(m.get("status") == "failed" and "21211" in m.get("error", "") and "not a valid phone number" in m.get("error", ""),
          f"dead-lettered with Twilio's code and text: {m}")

    # An undelivered callback after sent marks the message failed with the carrier error.
    fake.script[("POST", path)] = [(201, {"sid": "SMout000000000000000000000000000002", "status": "queued"})]
    rc, r = gw.api("message.send", {"channel": "sms", "to": "tel:+15551234567", "text": "second"})
    gw.wait_message(r["id"], "sent")
    post("status_undelivered", replace={"SID_PLACEHOLDER": "SMout000000000000000000000000000002"})
    m = gw.wait_message(r["id"], "failed")
    check(m.get("status") == "failed" and "30003" in m.get("error", ""), f"undelivered: {m}")

    check_all_stored(gw, "sms")
finally:
    gw.cleanup()
    fake.close()
done()
