"""Every 2xx is the truth: payloads with invalid UTF-8, NUL characters, over-long addresses and
out-of-range numbers, to every channel type.  Each is refused whole with a 400 naming the field
(nothing stored, so the provider's redelivery is refused the same way), and no 2xx ever carries
a gateway id that is not in the store."""
import base64
import hashlib
import hmac
import json
import time
import urllib.parse

from fakeprovider import FakeProvider
from harness import Gateway, check, done, fixture

WA_SECRET, FB_SECRET, SLACK_SECRET, TG_SECRET = "wa-app-secret", "fb-app-secret", "slack-signing", "tg-secret"
AC, TW_TOKEN, PUBLIC = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "twilio-auth-token", "https://parley.example.com"
fake = FakeProvider()
gw = Gateway(http_extra=f"  public_url: {PUBLIC}\n",
             extra_channels=f"""  - name: wa
    type: whatsapp
    config: {{ phone_number_id: "106540352242922", access_token: t, app_secret: {WA_SECRET}, verify_token: v, api_base_url: "{fake.url}" }}
  - name: fb
    type: messenger
    config: {{ page_id: "1234567890", access_token: t, app_secret: {FB_SECRET}, verify_token: v, api_base_url: "{fake.url}" }}
  - name: ig
    type: instagram
    config: {{ page_id: "17841400000000000", access_token: t, app_secret: {FB_SECRET}, verify_token: v, api_base_url: "{fake.url}" }}
  - name: tg
    type: telegram
    config: {{ token: "123:abc", secret_token: {TG_SECRET}, api_base_url: "{fake.url}" }}
  - name: sms
    type: twilio
    config: {{ account_sid: {AC}, auth_token: {TW_TOKEN}, from: "+14155550100", api_base_url: "{fake.url}" }}
  - name: sl
    type: slack
    config: {{ bot_token: xoxb-1, signing_secret: {SLACK_SECRET}, api_base_url: "{fake.url}" }}
pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
""").start()


def meta_sig(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_wa(body):
    return gw.request("POST", "/webhooks/wa", body,
                      {"Content-Type": "application/json", "X-Hub-Signature-256": meta_sig(WA_SECRET, body)})


def post_fb(body):
    return gw.request("POST", "/webhooks/fb", body,
                      {"Content-Type": "application/json", "X-Hub-Signature-256": meta_sig(FB_SECRET, body)})


def post_ig(body):
    return gw.request("POST", "/webhooks/ig", body,
                      {"Content-Type": "application/json", "X-Hub-Signature-256": meta_sig(FB_SECRET, body)})


def post_tg(body):
    return gw.request("POST", "/webhooks/tg", body,
                      {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET})


def post_sl(body):
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SLACK_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return gw.request("POST", "/webhooks/sl", body,
                      {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})


def post_sms(form):
    """form: the raw urlencoded body (bytes); signed over its decoded parameters, as Twilio does."""
    params = dict(urllib.parse.parse_qsl(form.decode("latin-1"), keep_blank_values=True, encoding="latin-1"))
    data = PUBLIC + "/webhooks/sms" + "".join(k + v for k, v in sorted(params.items()))
    sig = base64.b64encode(hmac.new(TW_TOKEN.encode(), data.encode("latin-1"), hashlib.sha1).digest()).decode()
    return gw.request("POST", "/webhooks/sms", form,
                      {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})


def count(channel):
    return len(gw.list_all(channel))


def refused(what, channel, post, body, field):
    """body is refused with 400 naming field, stores nothing, and its redelivery the same."""
    before = count(channel)
    for attempt in ("first", "redelivery"):
        st, resp = post(body)
        try:
            err = json.loads(resp).get("error", "")
        except ValueError:
            err = resp.decode(errors="replace")
        check(st == 400 and field in err, f"{what} ({attempt}): 400 naming '{field}', got {st} {resp[:200]!r}")
    check(count(channel) == before, f"{what}: nothing stored")


TEXTS = [("invalid UTF-8", b'"caf\xe9"'), ("an escaped NUL", b'"order-7\\u0000a"'), ("a raw NUL", b'"a\x00b"')]

try:
    wa_text = fixture("whatsapp", "text.json")
    for name, bad in TEXTS:
        refused(f"whatsapp text with {name}", "wa", post_wa, wa_text.replace(b'"Hello, is my order shipped?"', bad),
                "text.body")
        refused(f"whatsapp id with {name}", "wa", post_wa,
                wa_text.replace(b'"wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQTdBRkM1Mjc1MDQyRjg5QzQyMQA="', bad),
                "messages[0].id")
        refused(f"whatsapp sender with {name}", "wa", post_wa, wa_text.replace(b'"from": "15551234567"', b'"from": ' + bad),
                "messages[0].from")
    unknown = fixture("whatsapp", "unknown.json").replace(b'"Message type unknown",\n', b'"unknown \xff",\n', 1)
    refused("whatsapp unknown type with invalid bytes", "wa", post_wa, unknown, "errors[0].title")
    refused("whatsapp timestamp out of range", "wa", post_wa, wa_text.replace(b'"1732269600"', b'"1e300"'), "timestamp")
    refused("whatsapp timestamp not a number", "wa", post_wa, wa_text.replace(b'"1732269600"', b'"last tuesday"'),
            "timestamp")

    fb_text = fixture("messenger", "text.json")
    for name, bad in TEXTS:
        refused(f"messenger text with {name}", "fb", post_fb,
                fb_text.replace(b'"Hi, I need help with order 1234"', bad), "message.text")
        refused(f"messenger sender with {name}", "fb", post_fb, fb_text.replace(b'"24680135792468013"', bad), "sender.id")
    refused("messenger timestamp out of range", "fb", post_fb,
            fb_text.replace(b'"timestamp": 1732269600123', b'"timestamp": 1e300'), "timestamp")

    ig_text = fixture("instagram", "text.json")
    for name, bad in TEXTS:
        refused(f"instagram text with {name}", "ig", post_ig, ig_text.replace(b'"Do you ship to Korea?"', bad),
                "message.text")
        refused(f"instagram message id with {name}", "ig", post_ig,
                ig_text.replace(b'"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw"', bad), "message.mid")
        refused(f"instagram sender with {name}", "ig", post_ig, ig_text.replace(b'"1357924680135792"', bad), "sender.id")
    before = count("ig")
    for _ in range(2):
        st, _ = post_ig(ig_text)
    check(st == 200 and count("ig") == before + 1, f"a good instagram message, posted twice, is stored once: {st}")

    tg_text = fixture("telegram", "text.json")
    for name, bad in TEXTS:
        refused(f"telegram text with {name}", "tg", post_tg, tg_text.replace('"환불 요청합니다"'.encode(), bad),
                "message.text")
        refused(f"telegram name with {name}", "tg", post_tg, tg_text.replace(b'"Min-jun"', bad, 1), "first_name")
    refused("telegram chat id 1e300", "tg", post_tg, tg_text.replace(b'"id": 987654321,\n      "first_name"',
                                                                      b'"id": 1e300,\n      "first_name"'), "chat.id")
    refused("telegram date 1e300", "tg", post_tg, tg_text.replace(b'"date": 1732269600', b'"date": 1e300'), "message.date")
    refused("telegram message id 2^63", "tg", post_tg,
            tg_text.replace(b'"message_id": 501', b'"message_id": 9223372036854775808'), "message_id")

    sl_text = fixture("slack", "text.json")
    for name, bad in TEXTS:
        refused(f"slack text with {name}", "sl", post_sl, sl_text.replace(b'"Is the API down?"', bad), "event.text")
        refused(f"slack user with {name}", "sl", post_sl, sl_text.replace(b'"U2147483697"', bad), "event.user")

    sms = fixture("twilio", "text.form").strip()
    refused("twilio Body=h%FFi", "sms", post_sms, sms.replace(b"Body=Where+is+my+refund%3F+%ED%99%98%EB%B6%88", b"Body=h%FFi"),
            "Body")
    refused("twilio Body with %00", "sms", post_sms,
            sms.replace(b"Body=Where+is+my+refund%3F+%ED%99%98%EB%B6%88", b"Body=order-7%00a"), "Body")
    refused("twilio From with invalid bytes", "sms", post_sms, sms.replace(b"From=%2B15551234567", b"From=%2B1555%C0"),
            "From")
    refused("twilio MessageSid with %00", "sms", post_sms,
            sms.replace(b"MessageSid=SMa1b2c3d4e5f60718293a4b5c6d7e8f90", b"MessageSid=SM1%00b"), "MessageSid")

    refused("twilio NumMedia out of range", "sms", post_sms, sms.replace(b"NumMedia=0", b"NumMedia=99999999999999999999"),
            "NumMedia")
    refused("twilio Latitude 1e999", "sms", post_sms, sms + b"&Latitude=1e999&Longitude=0", "Latitude")
    body = fixture("slack", "text.json")
    st, _ = gw.request("POST", "/webhooks/sl", body, {"Content-Type": "application/json",
                                                     "X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=00"})
    check(st == 401, f"a Slack timestamp of 40 digits is refused as a replay, not parsed into overflow: {st}")

    # The generic webhook: the ids that differ only after a NUL are both refused, never one stored twice.
    for name, bad in TEXTS:
        raw = b'{"id":' + bad + b',"from":"alice","text":"hi"}'
        refused(f"webhook id with {name}", "hooks", lambda b: gw.post_message(None, raw=b), raw, "id")
        raw = b'{"id":"w-' + name.encode().replace(b" ", b"-") + b'","from":' + bad + b',"text":"hi"}'
        refused(f"webhook sender with {name}", "hooks", lambda b: gw.post_message(None, raw=b), raw, "from")
        raw = b'{"id":"t-' + name.encode().replace(b" ", b"-") + b'","from":"alice","text":' + bad + b'}'
        refused(f"webhook text with {name}", "hooks", lambda b: gw.post_message(None, raw=b), raw, "text")
    raw_b = b'{"id":"order-7\\u0000b","from":"alice","text":"hi"}'
    refused("webhook order-7\\u0000b", "hooks", lambda b: gw.post_message(None, raw=b), raw_b, "id")
    st, _ = gw.request("POST", "/webhooks/hooks", b'{"id":"x","from":"a","text":"b"}',
                       {"Content-Type": "text/plain", "X-Parley-Signature": "sha256=" + hmac.new(
                           gw.secret.encode(), b'{"id":"x","from":"a","text":"b"}', hashlib.sha256).hexdigest()})
    check(st == 415, f"a text/plain body where JSON is expected: 415, got {st}")

    # A 2xx names only ids that are in the store: a re-post answers with the first post's ids.
    st1, b1 = gw.post_message([{"id": "dup-1", "from": "alice", "text": "one"}, {"id": "dup-2", "from": "alice", "text": "two"}])
    st2, b2 = gw.post_message([{"id": "dup-2", "from": "alice", "text": "two"}, {"id": "dup-3", "from": "alice", "text": "three"}])
    ids1, ids2 = json.loads(b1)["ids"], json.loads(b2)["ids"]
    check(st1 == 200 and st2 == 200 and ids2[0] == ids1[1], f"a redelivered message is answered with its stored id: {ids1} {ids2}")
    for gid in ids1 + ids2:
        rc, r = gw.api("message.get", {"id": gid})
        check(rc == 0 and r["message"]["id"] == gid, f"every id in a 2xx is in the store: {gid} -> {r}")
    ext = [m["external_id"] for m in gw.list_all("hooks") if m["external_id"].startswith("dup-")]
    check(sorted(ext) == ["dup-1", "dup-2", "dup-3"], f"each stored once: {ext}")

    # Two long addresses that share their first 200 bytes are two customers.
    prefix = "p" * 200
    a, b = prefix + "a" * 100, prefix + "b" * 100
    sa, ra = gw.post_message({"id": "long-a", "from": a, "text": "I am A"})
    sb, rb = gw.post_message({"id": "long-b", "from": b, "text": "I am B"})
    check(sa == 200 and sb == 200, f"300-byte addresses are taken: {sa} {sb}")
    if sa == 200 and sb == 200:
        ma = gw.api("message.get", {"id": json.loads(ra)["ids"][0]})[1]["message"]
        mb = gw.api("message.get", {"id": json.loads(rb)["ids"][0]})[1]["message"]
        check(ma["from"] == "webhook:" + a and mb["from"] == "webhook:" + b, "addresses stored whole")
        check(ma["contact_id"] != mb["contact_id"] and ma["conversation_id"] != mb["conversation_id"],
              f"two contacts, two conversations: {ma['contact_id']} {mb['contact_id']}")
    st, body = gw.post_message({"id": "too-long", "from": "q" * 600, "text": "hi"})
    check(st == 400 and b"from" in body, f"an address over the limit is refused, not cut: {st} {body[:200]!r}")
    wa_long = wa_text.replace(b'"from": "15551234567"', b'"from": "' + b"1" * 600 + b'"')
    refused("whatsapp sender of 600 digits", "wa", post_wa, wa_long, "from")

    # More messages in one webhook than a fixed array held: all stored, not the first 128.
    doc = json.loads(wa_text)
    value = doc["entry"][0]["changes"][0]["value"]
    one = value["messages"][0]
    value["messages"] = [dict(one, id=f"wamid.MANY{i}", text={"body": f"n{i}"}) for i in range(130)]
    before = count("wa")
    st, _ = post_wa(json.dumps(doc).encode())
    check(st == 200 and count("wa") == before + 130, f"130 messages in one webhook: {st}, {count('wa') - before} stored")
    # Messages the channel cannot key are refused, not acknowledged and lost.
    refused("whatsapp numeric id", "wa", post_wa, wa_text.replace(
        b'"wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQTdBRkM1Mjc1MDQyRjg5QzQyMQA="', b"12345"), "'id'")
    reaction = fixture("slack", "reaction.json")
    refused("slack reaction without event_id", "sl", post_sl,
            reaction.replace(b'"event_id": "' + json.loads(reaction)["event_id"].encode() + b'",', b""), "event_id")
    refused("slack ts past 9999", "sl", post_sl, sl_text.replace(b'"ts": "1732269600.000200"', b'"ts": "99999999999999.0001"'),
            "event.ts")
    refused("twilio From that is not a number", "sms", post_sms, sms.replace(b"From=%2B15551234567", b"From=%2B1555000111a"),
            "From")
    raw = b'{"id":"when-1","from":"alice","text":"hi","sent_at":"last tuesday"}'
    refused("webhook sent_at not RFC 3339", "hooks", lambda b: gw.post_message(None, raw=b), raw, "sent_at")
    raw = b'{"id":"big-1","from":"alice","text":"hi","meta":{"n":1e999}}'
    refused("a number that overflows a double", "hooks", lambda b: gw.post_message(None, raw=b), raw, "meta.n")
    # Sends are never made to a number cut or cleaned into another.
    rc, r = gw.api("message.send", {"channel": "sms", "to": "tel:+1" + "2" * 80, "text": "hi"})
    if rc == 0:
        m = gw.wait_message(r["id"], "failed")
        check(m.get("status") == "failed" and "E.164" in (m.get("error") or ""), f"an over-long number is not sent: {m}")
        check(not fake.seen("POST", f"/2010-04-01/Accounts/{AC}/Messages.json"), "nothing reached Twilio")

    # A 2xx with an empty body still ends (Content-Length: 0), so the provider sees it.
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    st, body = gw.request("GET", "/webhooks/wa?hub.mode=subscribe&hub.verify_token=v&hub.challenge=", conn=conn)
    st2, _ = gw.request("GET", "/healthz", conn=conn)
    conn.close()
    check(st == 200 and body == b"" and st2 == 200, f"an empty 200 ends and the connection goes on: {st} {body!r} {st2}")

    # The gateway is still well after all of it.
    st, _ = gw.post_message({"id": "after", "from": "alice", "text": "still fine"})
    check(st == 200, f"a good message after the hostile ones: {st}")
finally:
    gw.cleanup()
    fake.close()
done()
