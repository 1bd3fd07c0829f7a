"""Attack probes for "Every 2xx is the truth": real requests to the real gateway on 127.0.0.1.

Run from the source dir:  PARLEY_BIN=build-asan/parley python3 tests/attack/attack_every2xx.py
Each probe prints PASS/FAIL with what came back; exit 1 when any FAIL.
"""
import base64, hashlib, hmac, json, os, subprocess, sys, time, urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from fakeprovider import FakeProvider  # noqa: E402
from harness import Gateway, sign  # noqa: E402

WA_SECRET, SLACK_SECRET = "wa-app-secret", "slack-signing"
AC, TW_TOKEN, PUBLIC = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "twilio-auth-token", "https://parley.example.com"
PNID = "106540352242922"
fake = FakeProvider()
results = []


def report(ok, name, detail=""):
    results.append((ok, name))
    print(("PASS " if ok else "FAIL ") + name + (": " + detail if detail else ""), flush=True)


gw = Gateway(http_extra=f"  public_url: {PUBLIC}\n",
             extra_channels=f"""  - name: wa
    type: whatsapp
    config: {{ phone_number_id: "{PNID}", access_token: t, app_secret: {WA_SECRET}, verify_token: v, api_base_url: "{fake.url}" }}
  - name: sms
    type: twilio
    config: {{ account_sid: {AC}, auth_token: {TW_TOKEN}, from: "+14155550100", api_base_url: "{fake.url}" }}
  - name: sl
    type: slack
    config: {{ bot_token: xoxb-1, signing_secret: {SLACK_SECRET}, api_base_url: "{fake.url}" }}
pipelines:
  - name: inbound
    steps:
      - dedupe: {{ capacity: 1 }}
      - identify: {{}}
      - thread: {{}}
""")
gw.start()


def post_wa(body):
    return gw.request("POST", "/webhooks/wa", body, {"Content-Type": "application/json",
                      "X-Hub-Signature-256": "sha256=" + hmac.new(WA_SECRET.encode(), body, hashlib.sha256).hexdigest()})


def post_sms(params):
    form = urllib.parse.urlencode(params).encode()
    data = PUBLIC + "/webhooks/sms" + "".join(k + v for k, v in sorted(params))
    sig = base64.b64encode(hmac.new(TW_TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
    return gw.request("POST", "/webhooks/sms", form,
                      {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})


def post_sl_form(form):
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SLACK_SECRET.encode(), b"v0:" + ts.encode() + b":" + form, hashlib.sha256).hexdigest()
    return gw.request("POST", "/webhooks/sl/interactive", form, {"Content-Type": "application/x-www-form-urlencoded",
                      "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})


def stored(channel):
    return gw.list_all(channel)


def ids_in_store(ids):
    for i in ids:
        rc, r = gw.api("message.get", {"id": i})
        if rc != 0:
            return False
    return True


try:
    # 1. Twilio: two long From numbers sharing a 160-byte prefix must stay two contacts.
    pre = "+1" + "5" * 170
    for sid, frm in (("SMlong1", pre + "1"), ("SMlong2", pre + "2")):
        st, body = post_sms([("MessageSid", sid), ("AccountSid", AC), ("From", frm), ("To", "+14155550100"),
                             ("Body", "hi")])
    msgs = stored("sms")
    froms = {m.get("external_id"): m.get("from") for m in msgs}
    contacts = {m.get("contact_id") for m in msgs if m.get("external_id") in ("SMlong1", "SMlong2")}
    report(st != 200 or (len(contacts) == 2 and all(len(f or "") > 170 for f in froms.values())),
           "twilio long From not truncated",
           f"last status {st}; stored from lengths {[len(f or '') for f in froms.values()]}, contacts {len(contacts)}")

    # 2. Twilio whatsapp: From digits silently dropped/merged ("whatsapp:+1 555" vs "whatsapp:+1555").
    # (normalisation; informational)

    # 3. WhatsApp: 130 messages in one webhook: all stored, or refused, never 200 with some dropped.
    msgs = [{"from": "491511111", "id": f"wamid.BULK{i}", "timestamp": "1700000000", "type": "text",
             "text": {"body": f"m{i}"}} for i in range(130)]
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
                      "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001",
                                "phone_number_id": PNID}, "messages": msgs}}]}]}).encode()
    st, resp = post_wa(body)
    n = len([m for m in stored("wa") if (m.get("external_id") or "").startswith("wamid.BULK")])
    report(not (200 <= st < 300) or n == 130, "whatsapp 130 messages in one webhook", f"status {st}, stored {n}/130")

    # 4. WhatsApp: a message without "id" (or with a numeric id) is answered 200 and dropped.
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
                      "value": {"metadata": {"phone_number_id": PNID}, "messages": [
                          {"from": "4915122", "id": 12345, "timestamp": "1700000000", "type": "text",
                           "text": {"body": "numeric id"}}]}}]}]}).encode()
    before = len(stored("wa"))
    st, resp = post_wa(body)
    after = len(stored("wa"))
    report(not (200 <= st < 300) or after == before + 1, "whatsapp message with numeric id",
           f"status {st} {resp[:80]!r}, stored {after - before}")

    # 5. Slack interactive: 130 actions in one block_actions payload.
    acts = [{"action_id": f"a{i}", "action_ts": f"1700000000.{i:06d}", "value": "v", "text": {"text": "t"}}
            for i in range(130)]
    payload = json.dumps({"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"},
                          "channel": {"id": "C1"}, "message": {"ts": "1.2"}, "actions": acts})
    st, resp = post_sl_form(urllib.parse.urlencode({"payload": payload}).encode())
    n = len([m for m in stored("sl") if (m.get("external_id") or "").startswith("action:")])
    report(not (200 <= st < 300) or n == 130, "slack 130 actions in one payload", f"status {st}, stored {n}/130")

    # 6. Generic webhook: the same id twice in one batch, mixed with a new one.
    st, resp = gw.post_message([{"id": "dup-1", "from": "u1", "text": "a"}, {"id": "dup-1", "from": "u1", "text": "b"},
                                {"id": "new-1", "from": "u1", "text": "c"}])
    ids = json.loads(resp).get("ids", []) if st == 200 else []
    report(st != 200 or (ids_in_store(ids) and ids[0] == ids[1]), "webhook same id twice in a batch",
           f"status {st} ids {ids}")

    # 7. Redelivery after the dedupe cache evicted (capacity 1): answered with the stored id.
    st1, r1 = gw.post_message({"id": "evict-a", "from": "u2", "text": "a"})
    gw.post_message({"id": "evict-b", "from": "u2", "text": "b"})
    st2, r2 = gw.post_message({"id": "evict-a", "from": "u2", "text": "a"})
    a1, a2 = json.loads(r1).get("ids"), json.loads(r2).get("ids")
    n = len([m for m in stored("hooks") if m.get("external_id") == "evict-a"])
    report(a1 == a2 and n == 1 and ids_in_store(a2 or []), "redelivery after dedupe eviction", f"{a1} vs {a2}, stored {n}")

    # 8. Redelivery while the first is cached: mixed batch new + dup.
    st, resp = gw.post_message([{"id": "evict-a", "from": "u2", "text": "a"}, {"id": "mix-new", "from": "u2", "text": "n"}])
    ids = json.loads(resp).get("ids", []) if st == 200 else []
    report(st == 200 and ids[0] == a1[0] and ids_in_store(ids), "mixed new + duplicate batch", f"{st} {ids}")

    # 9. JSON tricks on the generic webhook: each must be 400 and store nothing.
    tricks = {
        "escaped NUL in key": b'{"id":"k1","from":"u","text":"x","meta":{"a\\u0000b":1}}',
        "lone high surrogate": b'{"id":"k2","from":"u","text":"\\ud800"}',
        "lone low surrogate": b'{"id":"k3","from":"u","text":"\\udc00x"}',
        "overlong slash": b'{"id":"k4","from":"u","text":"\xc0\xaf"}',
        "CESU surrogate bytes": b'{"id":"k5","from":"u","text":"\xed\xa0\x80"}',
        "raw NUL in text": b'{"id":"k6","from":"u","text":"a\x00b"}',
        "deep nesting 70": b'{"id":"k7","from":"u","text":"x","meta":{"a":' + b'[' * 70 + b']' * 70 + b'}}',
        "formfeed whitespace then NUL": b'{"id":"k8","from":"u",\x0c"text":"a\\u0000b"}',
        "trailing garbage": b'{"id":"k9","from":"u","text":"x"} {"x":"\\u0000"}',
        "duplicate id key": b'{"id":"k10","id":"k10\\u0000","from":"u","text":"x"}',
    }
    for name, raw in tricks.items():
        before = len(stored("hooks"))
        st, resp = gw.post_message(None, raw=raw)
        after = len(stored("hooks"))
        report(st == 400 and after == before, "webhook JSON trick: " + name, f"{st} {resp[:100]!r} stored {after - before}")

    # 10. Numbers: meta with 1e999 (cJSON makes it inf and prints it as null) - is it silently altered?
    st, resp = gw.post_message(None, raw=b'{"id":"num1","from":"u","text":"x","meta":{"big":1e999,"neg":-1e999}}')
    m = [x for x in stored("hooks") if x.get("external_id") == "num1"]
    report(st == 400 or (m and m[0].get("meta", {}).get("big") is not None), "meta number 1e999 kept or refused",
           f"{st} stored meta {m[0].get('meta') if m else None}")

    # 11. Slack interactive: actions without action_ts/action_id all get external_id "action::".
    acts = [{"value": "yes", "text": {"text": "Yes"}}, {"value": "no", "text": {"text": "No"}}]
    payload = json.dumps({"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U9"},
                          "channel": {"id": "C1"}, "message": {"ts": "1.2"}, "actions": acts})
    st, resp = post_sl_form(urllib.parse.urlencode({"payload": payload}).encode())
    n = len([m for m in stored("sl") if m.get("from") == "slack:T1/U9"])
    report(not (200 <= st < 300) or n == 2, "slack actions without ids", f"status {st}, stored {n}/2")

    # 12. Generic webhook: sent_at is not checked at all.
    st, resp = gw.post_message({"id": "sat1", "from": "u", "text": "x", "sent_at": "not a time at all"})
    report(st == 400, "webhook sent_at must be RFC 3339", f"status {st} {resp[:80]!r}")

    # 13. Twilio outbound: a long tel: number is cut to 63 bytes before it is sent.
    longto = "tel:+1" + "2" * 80
    rc, r = gw.api("message.send", {"channel": "sms", "to": longto, "text": "hello"})
    time.sleep(1.5)
    sent = [q for q in fake.seen("POST") if "Messages.json" in q.path]
    tos = [urllib.parse.parse_qs(q.body.decode()).get("To", [""])[0] for q in sent]
    report(not tos or all(t == longto[4:] for t in tos), "twilio outbound To not truncated",
           f"api rc {rc} {r}; sent To lengths {[len(t) for t in tos]} want {len(longto) - 4}")

    # 14. Control API: a form feed (JSON whitespace to cJSON, not to the scanner) hides \u0000 from the check.
    ctl = None
    for line in open(gw.config):
        pass
    ctl = "ipc://" + os.path.join(gw.dir, "var", "control.ipc")
    req = os.path.join(gw.dir, "req.json")
    with open(req, "wb") as f:
        f.write(b'{"op":"message.send",\x0c"channel":"hooks","to":"webhook:bob","text":"pay 100\\u0000 (not really)"}')
    out = subprocess.run(["nngcat", "--req", "--dial", ctl, "--file", req, "--ascii"], capture_output=True,
                         timeout=10).stdout.decode(errors="replace")
    report('"ok":true' not in out, "control API \\u0000 hidden behind a form feed", out.strip()[:160])

    # 15. Slack Events API: a message ts beyond the year 9999 is not refused; sent_at is silently left out.
    def post_sl_json(body):
        ts = str(int(time.time()))
        sig = "v0=" + hmac.new(SLACK_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
        return gw.request("POST", "/webhooks/sl", body, {"Content-Type": "application/json",
                          "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})
    body = json.dumps({"type": "event_callback", "team_id": "T1", "event_id": "Ev1",
                       "event": {"type": "message", "channel": "C7", "user": "U7", "text": "hi",
                                 "ts": "99999999999999.000100"}}).encode()
    st, resp = post_sl_json(body)
    m = [x for x in stored("sl") if (x.get("external_id") or "").startswith("C7:")]
    report(st == 400, "slack ts past 9999 refused", f"status {st}, stored {len(m)} sent_at {m[0].get('sent_at') if m else None}")

    # 16. Twilio WhatsApp senders: non-digits are dropped, so two different addresses become one contact.
    for sid, frm in (("SMwa1", "whatsapp:+1555000111a"), ("SMwa2", "whatsapp:+1555000111b")):
        st, _ = post_sms([("MessageSid", sid), ("AccountSid", AC), ("From", frm), ("To", "+14155550100"), ("Body", "x")])
    m = {x.get("external_id"): x.get("from") for x in stored("sms") if x.get("external_id") in ("SMwa1", "SMwa2")}
    report(len(set(m.values())) == 2 or st == 400, "twilio whatsapp: From kept distinct", f"status {st}, from {m}")
finally:
    gw.stop()
    log = gw.read_log()
    if "ERROR: AddressSanitizer" in log or "runtime error:" in log:
        report(False, "sanitizer clean", "\n".join(l for l in log.splitlines() if "runtime error" in l or "Sanitizer" in l)[:2000])
    gw.cleanup()
    fake.close() if hasattr(fake, "close") else None

bad = [n for ok, n in results if not ok]
print(f"{len(bad)} FAIL of {len(results)}")
sys.exit(1 if bad else 0)
