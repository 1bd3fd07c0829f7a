"""CSAT in the customer's own channel after a resolve.  A WhatsApp customer gets the survey with
buttons (an interactive list message at the fake Graph API) after the configured delay and taps
"5" (the documented interactive reply webhook): the rating is stored on the conversation and on the
agent who held it, the conversation stays resolved, and the comment written after it is kept.  A
Telegram customer answers with an inline button (callback_query), across a restart of the
gateway while the survey was due; an SMS (Twilio) customer, asked "reply 1-5", replies "4".  A
contact who opted out is never asked; a conversation is asked once.  The clock is moved with the
test-only PARLEY_TEST_CLOCK_FILE."""
import base64
import calendar
import hashlib
import hmac
import json
import os
import time
import urllib.parse

from fakeprovider import FakeProvider
from harness import Gateway, check, done, fixture

CLOCK = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"parley-survey-clock-{os.getpid()}")
os.environ["PARLEY_TEST_CLOCK_FILE"] = CLOCK
AC, TW_TOKEN, PUBLIC = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "twilio-auth-token", "https://parley.example.com"
WA_SECRET, PNID = "wa-app-secret", "106540352242922"
BOT, TG_SECRET = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11", "tg-secret-token"
WA_PATH, TG_PATH, SMS_PATH = f"/v19.0/{PNID}/messages", f"/bot{BOT}/sendMessage", f"/2010-04-01/Accounts/{AC}/Messages.json"


def set_clock(iso):
    target = calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) * 1000
    with open(CLOCK + ".tmp", "w") as f:
        f.write(str(target - int(time.time() * 1000)))
    os.replace(CLOCK + ".tmp", CLOCK)
    time.sleep(0.05)


fake = FakeProvider()
fake.script[("POST", WA_PATH)] = [(200, {"messages": [{"id": "wamid.SURVEY1"}]})]
fake.script[("POST", TG_PATH)] = [(200, {"ok": True, "result": {"message_id": 90, "chat": {"id": 987654321}}})]
fake.script[("POST", SMS_PATH)] = [(201, {"sid": "SMsurvey1"})]
set_clock("2026-12-04T03:00:00Z")
gw = Gateway(http_extra=f"  public_url: {PUBLIC}\n", config_body="""control:
  token: "survey-test-control-token-0123456789"
pipelines:
  - name: inbound
    steps:
      - dedupe: {}
      - identify: {}
      - thread: {}
surveys:
  - survey: csat
    channels: [wa, tg]
    delay: 10m
    comment_window: 30m
    text: { en: "How did we do? Tap 1 (bad) to 5 (great).", ko: "상담은 어떠셨나요? 1~5점을 눌러 주세요." }
  - survey: csat
    channels: [sms]
    delay: 10m
    buttons: false
    text: "How did we do? Reply 1 (bad) to 5 (great)."
""", extra_channels=f"""  - name: wa
    type: whatsapp
    # The test moves the gateway's clock days ahead (PARLEY_TEST_CLOCK_FILE); the 24-hour window is not what it tests.
    config: {{ phone_number_id: "{PNID}", access_token: T, app_secret: {WA_SECRET}, api_base_url: "{fake.url}",
               reply_window: 0 }}
  - name: tg
    type: telegram
    config: {{ token: "{BOT}", secret_token: {TG_SECRET}, api_base_url: "{fake.url}" }}
  - name: sms
    type: twilio
    config: {{ account_sid: {AC}, auth_token: {TW_TOKEN}, from: "+14155550100", api_base_url: "{fake.url}" }}
""").start()


def wa_message(mid, body):
    doc = json.loads(fixture("whatsapp", "text.json"))
    m = doc["entry"][0]["changes"][0]["value"]["messages"][0]
    m.clear()
    m.update({"from": "15551234567", "id": mid, "timestamp": str(int(time.time())), **body})
    raw = json.dumps(doc).encode()
    sig = "sha256=" + hmac.new(WA_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    st, _ = gw.request("POST", "/webhooks/wa", raw, {"Content-Type": "application/json", "X-Hub-Signature-256": sig})
    check(st == 200, f"WhatsApp webhook {mid}: {st}")


def tg_update(doc):
    st, _ = gw.request("POST", "/webhooks/tg", json.dumps(doc).encode(),
                       {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
    check(st == 200, f"Telegram update: {st}")


def sms(sender, sid, text):
    params = dict(urllib.parse.parse_qsl(fixture("twilio", "text.form").decode().strip()))
    params.update({"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "Body": text, "From": sender})
    data = PUBLIC + "/webhooks/sms" + "".join(k + v for k, v in sorted(params.items()))
    sig = base64.b64encode(hmac.new(TW_TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
    st, _ = gw.request("POST", "/webhooks/sms", urllib.parse.urlencode(params).encode(),
                       {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
    check(st == 200, f"SMS webhook {sid}: {st}")


def conversation_of(channel, ext):
    m = {x.get("external_id"): x for x in gw.list_all(channel)}[ext]
    rc, r = gw.api("conversation.get", {"conversation_id": m["conversation_id"]})
    return r["conversation"]


def api(op, obj):
    rc, r = gw.api(op, obj)
    check(rc == 0 and r.get("ok"), f"{op} {obj}: {r}")
    return r


def served(agent, team, conv):
    api("conversation.assign", {"conversation_id": conv, "assignee": agent, "team": team})
    api("conversation.resolve", {"conversation_id": conv})


def wait_for(pred, timeout=8):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def ratings(**q):
    return api("ratings.list", q).get("ratings", [])


def csat():
    r = ratings()
    return round(100 * sum(1 for x in r if x["score"] >= 4) / len(r)) if r else None


try:
    # Three customers, served by ana (support), bo (billing) and cy (support); one who opted out.
    wa_message("wamid.Q1", {"type": "text", "text": {"body": "Is my order shipped?"}})
    tg = json.loads(fixture("telegram", "text.json"))
    tg_update(tg)
    sms("+15551230001", "SMq0000000000000000000000000000001", "Where is my refund?")
    sms("+15551230002", "SMq0000000000000000000000000000002", "Cancel my plan")
    wa_conv = conversation_of("wa", "wamid.Q1")["id"]
    tg_conv = conversation_of("tg", "987654321:501")["id"]
    sms_conv = conversation_of("sms", "SMq0000000000000000000000000000001")["id"]
    out_conv = conversation_of("sms", "SMq0000000000000000000000000000002")
    api("contact.update", {"contact_id": out_conv["contact_id"], "attributes": {"opt_out": True}})
    served("ana", "support", wa_conv)
    served("bo", "billing", tg_conv)
    served("cy", "support", sms_conv)
    served("cy", "support", out_conv["id"])

    # Nobody is asked before the delay.
    time.sleep(2.5)
    check(not fake.seen("POST", WA_PATH) and not fake.seen("POST", TG_PATH) and not fake.seen("POST", SMS_PATH),
          "no survey before the 10 minutes after the resolve")

    # A restart while the surveys are due loses none and asks none twice.
    gw.stop()
    set_clock("2026-12-04T03:11:00Z")
    gw.start()
    check(wait_for(lambda: fake.seen("POST", WA_PATH) and fake.seen("POST", TG_PATH) and fake.seen("POST", SMS_PATH)),
          "after the delay each customer is asked on their own channel")
    time.sleep(2.5)

    wa_asks = fake.seen("POST", WA_PATH)
    check(len(wa_asks) == 1, f"the WhatsApp customer is asked once: {len(wa_asks)}")
    inter = wa_asks[0].json().get("interactive", {}) if wa_asks else {}
    rows = [r["id"] for s in inter.get("action", {}).get("sections", []) for r in s.get("rows", [])]
    check(inter.get("type") == "list" and rows == ["csat:5", "csat:4", "csat:3", "csat:2", "csat:1"],
          f"WhatsApp gets an interactive list of the five scores: {inter}")
    check(inter.get("body", {}).get("text") == "How did we do? Tap 1 (bad) to 5 (great).", f"the question: {inter}")
    tg_asks = fake.seen("POST", TG_PATH)
    kb = tg_asks[0].json().get("reply_markup", {}).get("inline_keyboard", []) if tg_asks else []
    check(len(tg_asks) == 1 and [b[0]["callback_data"] for b in kb] == ["csat:5", "csat:4", "csat:3", "csat:2", "csat:1"],
          f"Telegram gets an inline keyboard: {kb}")
    sms_asks = fake.seen("POST", SMS_PATH)
    check([r.form().get("To") for r in sms_asks] == ["+15551230001"],
          f"the SMS customer is asked, the one who opted out is not: {[r.form() for r in sms_asks]}")
    check(sms_asks and sms_asks[0].form().get("Body") == "How did we do? Reply 1 (bad) to 5 (great).",
          f"SMS asks in text: {[r.form() for r in sms_asks]}")
    check(csat() is None, "no rating yet")

    # WhatsApp: the customer taps "5" in the list.
    wa_message("wamid.A1", {"context": {"from": "15550783881", "id": "wamid.SURVEY1"}, "type": "interactive",
                            "interactive": {"type": "list_reply", "list_reply": {"id": "csat:5", "title": "5"}}})
    r = ratings(conversation_id=wa_conv)
    check([(x["score"], x.get("agent"), x.get("team"), x["survey"]) for x in r] == [(5, "ana", "support", "csat")],
          f"the rating is on the conversation and on ana: {r}")
    c = conversation_of("wa", "wamid.A1")
    check(c["status"] == "resolved" and c["id"] == wa_conv, f"the conversation stays resolved: {c['status']}")
    types = [e["type"] for e in c["events"]]
    check("rated" in types and types.count("reopened") == 0, f"logged as rated, not reopened: {types}")
    check("first_response" not in types, f"the survey is no first response: {types}")
    rated = [e["data"] for e in c["events"] if e["type"] == "rated"]
    check(rated == [{"survey": "csat", "score": 5, "agent": "ana", "team": "support"}], f"the rated row: {rated}")
    check(csat() == 100, f"CSAT 100% after a 5: {csat()}")
    wa_message("wamid.A2", {"type": "text", "text": {"body": "Ana was really quick, thanks!"}})
    r = ratings(conversation_id=wa_conv)
    check(r and r[0].get("comment") == "Ana was really quick, thanks!" and r[0]["score"] == 5,
          f"the comment after it is kept with the rating: {r}")
    check(conversation_of("wa", "wamid.A2")["status"] == "resolved", "a comment does not reopen either")

    # Telegram: an inline button (callback_query) answers "2".
    cb = json.loads(fixture("telegram", "callback_query.json"))
    cb["callback_query"]["data"] = "csat:2"
    cb["callback_query"]["message"]["message_id"] = 90
    tg_update(cb)
    r = ratings(conversation_id=tg_conv)
    check([(x["score"], x.get("agent"), x.get("team")) for x in r] == [(2, "bo", "billing")], f"Telegram rating: {r}")
    check(conversation_of("tg", "987654321:501")["status"] == "resolved", "the Telegram conversation stays resolved")
    check(csat() == 50, f"CSAT moves to 50% (one of two is 4 or 5): {csat()}")

    # SMS: the customer replies "4".
    sms("+15551230001", "SMa0000000000000000000000000000001", " 4 ")
    r = ratings(conversation_id=sms_conv)
    check([(x["score"], x.get("agent")) for x in r] == [(4, "cy")], f"SMS rating: {r}")
    check(conversation_of("sms", "SMa0000000000000000000000000000001")["status"] == "resolved", "SMS stays resolved")
    check(csat() == 67, f"CSAT 2 of 3: {csat()}")
    check([x["conversation_id"] for x in ratings(agent="cy")] == [sms_conv], "ratings by agent")
    st, body = gw.request("GET", "/api/v1/ratings?agent=ana",
                          headers={"Authorization": "Bearer survey-test-control-token-0123456789"})
    rest = json.loads(body).get("ratings", []) if st == 200 else []
    check([(x["conversation_id"], x["score"]) for x in rest] == [(wa_conv, 5)], f"GET /api/v1/ratings: {st} {body[:300]}")

    # Writing again later is a new question: it reopens, and the next resolve asks nothing again.
    set_clock("2026-12-04T04:00:00Z")
    wa_message("wamid.Q2", {"type": "text", "text": {"body": "One more question about returns"}})
    check(conversation_of("wa", "wamid.Q2")["status"] == "open", "a later message reopens as usual")
    api("conversation.resolve", {"conversation_id": wa_conv})
    set_clock("2026-12-04T04:15:00Z")
    time.sleep(4.5)
    check(len(fake.seen("POST", WA_PATH)) == 1, "one survey per conversation")
    check(len(fake.seen("POST", SMS_PATH)) == 1, f"the contact who opted out was never asked: {len(fake.seen('POST', SMS_PATH))}")
    check(len(ratings()) == 3, f"three ratings: {ratings()}")
finally:
    gw.cleanup()
    fake.close()
    for p in (CLOCK, CLOCK + ".tmp"):
        if os.path.exists(p):
            os.remove(p)
done()
