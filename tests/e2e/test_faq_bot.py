"""The built-in faq bot over WhatsApp and Telegram (local servers playing the Graph and Bot APIs):
it answers an order status looked up, signed, at the integrator's endpoint, and the fallback when
the endpoint is slower than its timeout, while other channels' webhooks go on being acknowledged; a customer asking for a person is handed to
the team's queue with the bot's note and told their place in line in Korean; a negative message
goes ahead of the line with priority high; when an agent resolves a conversation the waiting ones
are assigned in order, nobody writing, and queue.get shows the new places."""
import datetime
import hashlib
import hmac
import json
import time
import zoneinfo

from fakeprovider import FakeProvider
from harness import Gateway, check, done

APP_SECRET = "wa-app-secret"
PNID = "106540352242922"
LOOKUP_SECRET = "lookup-secret-0123456789"
BOT = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
graph, orders, tgapi = FakeProvider(), FakeProvider(), FakeProvider()
sent, tg_sent = [], []


def tg_send(req):
    tg_sent.append(req.json())
    return {"ok": True, "result": {"message_id": 900 + len(tg_sent), "date": int(time.time()),
                                   "chat": {"id": req.json().get("chat_id"), "type": "private"}}}


tgapi.script[("POST", f"/bot{BOT}/sendMessage")] = [(200, tg_send)]


def graph_send(req):
    sent.append(dict(req.json(), _at=time.time()))
    return {"messages": [{"id": f"wamid.OUT{len(sent)}"}]}


graph.script[("POST", f"/v19.0/{PNID}/messages")] = [(200, graph_send)]


def order_status(req):
    want = hmac.new(LOOKUP_SECRET.encode(), req.body, hashlib.sha256).hexdigest()
    if req.headers.get("X-Parley-Signature") != "sha256=" + want:
        return {"error": "bad signature"}
    order = req.json()["slots"].get("order_id")
    if order == "99999":
        time.sleep(3)  # slower than lookup_timeout
    return {"status": "배송 중" if order in ("12345", "23456") else "unknown"}


orders.script[("POST", "/orders")] = [(200, order_status)]

gw = Gateway(config_body=f"""pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
      - sentiment: {{ priority_on_negative: high }}
      - route:
          type: assign
          config:
            teams: {{ support: [ana] }}
            agents: {{ ana: {{ capacity: 1 }} }}
      - route:
          type: faq
          config:
            team: support
            lookup_url: {orders.url}/orders
            lookup_secret: {LOOKUP_SECRET}
            lookup_timeout: 1s
            fallback: {{ ko: "죄송해요, 잘 이해하지 못했어요.", en: "Sorry, I did not get that." }}
            intents:
              - name: order_status
                patterns: ["주문\\\\s*상태", "order status"]
                slots: {{ order_id: "\\\\b(\\\\d{{5,10}})\\\\b" }}
                lookup: true
                answer: {{ ko: "주문 {{{{order_id}}}}번은 {{{{status}}}}입니다.", en: "Order {{{{order_id}}}} is {{{{status}}}}." }}
                ask: {{ ko: "주문번호를 알려주세요.", en: "What is your order number?" }}
""", extra_channels=f"""  - name: wa
    type: whatsapp
    config:
      phone_number_id: "{PNID}"
      access_token: EAAG-test-token
      app_secret: {APP_SECRET}
      verify_token: verify-me
      api_base_url: {graph.url}
      api_version: v19.0
  - name: tg
    type: telegram
    config:
      token: "{BOT}"
      secret_token: tg-secret
      api_base_url: {tgapi.url}
""")


def say(number, text):
    wamid = f"wamid.IN{time.time_ns()}"
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
                  "contacts": [{"profile": {"name": "고객"}, "wa_id": number}],
                  "messages": [{"from": number, "id": wamid, "timestamp": str(int(time.time())), "type": "text",
                                "text": {"body": text}}]}}]}]}).encode()
    sig = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    st, _ = gw.request("POST", "/webhooks/wa", body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig})
    check(st == 200, f"{number}: {text}: {st}")
    end = time.time() + 5
    while time.time() < end:
        m = {x.get("external_id"): x for x in gw.list_all("wa")}.get(wamid)
        if m and m.get("conversation_id"):
            return m["conversation_id"]
        time.sleep(0.05)
    check(False, f"{wamid} stored")
    return None


def texts_to(number, n, timeout=5):
    end = time.time() + timeout
    while time.time() < end:
        got = [s.get("text", {}).get("body") or json.dumps(s.get("interactive", {}), ensure_ascii=False)
               for s in sent if s.get("to") == number]
        if len(got) >= n:
            return got
        time.sleep(0.05)
    return [s.get("text", {}).get("body") for s in sent if s.get("to") == number]


def conv(cid):
    rc, r = gw.api("conversation.get", {"conversation_id": cid})
    return r["conversation"]


def waiting():
    rc, r = gw.api("queue.get", {"team": "support"})
    qs = r.get("queues") or [{"waiting": []}]
    return [w["conversation_id"] for w in qs[0]["waiting"]]


try:
    gw.start()
    # An order status, looked up at the integrator's endpoint (signed), answered in Korean.
    a = say("15551110001", "주문 상태 알려주세요 12345")
    got = texts_to("15551110001", 1)
    check(got[:1] == ["주문 12345번은 배송 중입니다."], f"the looked-up status: {got}")
    lk = orders.seen("POST", "/orders")
    check(len(lk) == 1 and lk[0].json()["slots"] == {"order_id": "12345"} and lk[0].json()["intent"] == "order_status",
          f"the lookup: {[r.json() for r in lk]}")

    # Answered and thanked: the bot resolves it (contained, no human).
    say("15551110001", "감사합니다!")
    end = time.time() + 5
    while time.time() < end and conv(a).get("status") != "resolved":
        time.sleep(0.05)
    ca = conv(a)
    check(ca.get("status") == "resolved" and any(e["type"] == "resolved" and e["data"].get("by") == "bot:faq"
                                                 for e in ca["events"]), f"the bot resolved it: {ca}")

    # Two answers rejected: handed off.
    g = say("15551110007", "주문 상태 알려주세요 12345")
    texts_to("15551110007", 1)
    say("15551110007", "아니요, 그게 아니에요")
    texts_to("15551110007", 2)
    say("15551110007", "아니요, 다른 거요")
    got = texts_to("15551110007", 3)
    check(conv(g).get("team") == "support" and any("two answers rejected" in n["text"] for n in conv(g)["notes"]),
          f"handed off after two rejections: {got} {conv(g)['notes']}")
    note = next((n["text"] for n in conv(g)["notes"] if "rejected" in n["text"]), "")
    check("Transcript:" in note and "customer: 주문 상태 알려주세요 12345" in note and
          "bot: 주문 12345번은 배송 중입니다." in note and "customer: 아니요, 다른 거요" in note,
          f"the note carries the transcript: {note}")
    rc, r = gw.api("conversation.resolve", {"conversation_id": g})  # out of the way of the queue below

    # Telegram: the same intent, answered there.
    upd = {"update_id": 700001, "message": {"message_id": 77, "date": int(time.time()), "text": "주문 상태 23456 알려줘요",
           "from": {"id": 55501, "is_bot": False, "first_name": "Ji"}, "chat": {"id": 55501, "type": "private"}}}
    st, _ = gw.request("POST", "/webhooks/tg", json.dumps(upd).encode(),
                       {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "tg-secret"})
    check(st == 200, f"telegram update: {st}")
    end = time.time() + 5
    while time.time() < end and not tg_sent:
        time.sleep(0.05)
    check([m.get("text") for m in tg_sent] == ["주문 23456번은 배송 중입니다."] and tg_sent[0].get("chat_id") in (55501, "55501"),
          f"answered on Telegram: {tg_sent}")

    # The endpoint slower than lookup_timeout: the fallback, and meanwhile webhooks on other channels
    # are acknowledged at once (the lookup runs on the bot's threads, not the pipeline's).
    t0 = time.time()
    slow = say("15551110009", "주문 상태 알려주세요 99999")
    acked = []
    for i in range(20):
        st, _ = gw.post_message({"id": f"during-slow-{i}", "from": f"other{i}", "text": "hello"})
        acked.append((st, time.time()))
    check(all(st == 200 for st, _ in acked), f"other webhooks acknowledged during the slow lookup: {acked}")
    got = texts_to("15551110009", 1, timeout=5)
    check(got[:1] == ["죄송해요, 잘 이해하지 못했어요."], f"the fallback after the timeout: {got}")
    fallback_at = next((m["_at"] for m in sent if m.get("to") == "15551110009"), 0)
    check(fallback_at and acked[-1][1] < fallback_at,
          f"all 20 acknowledged before the lookup gave up ({acked[-1][1] - t0:.2f} s vs {fallback_at - t0:.2f} s)")

    # Three customers ask for a person; ana (capacity 1) takes the first, two wait.
    b = say("15551110002", "상담원 연결해 주세요")
    check(texts_to("15551110002", 1)[0].endswith("현재 대기 순번은 1번째입니다."), f"b told its place: {sent[-1:]}")
    end = time.time() + 5
    while time.time() < end and conv(b).get("assignee") != "ana":
        time.sleep(0.05)
    check(conv(b).get("assignee") == "ana", f"ana takes b: {conv(b)}")
    c = say("15551110003", "사람이랑 얘기하고 싶어요")
    d = say("15551110004", "상담원 부탁드려요")
    e = say("15551110005", "상담원 연결해 주세요")
    check(texts_to("15551110005", 1)[0].endswith("현재 대기 순번은 3번째입니다."), f"e is third: {texts_to('15551110005', 1)}")
    ce = conv(e)
    check(ce.get("team") == "support" and ce.get("queued_at") and ce.get("assignee") is None, f"e waits: {ce}")
    check(any("asked for a person" in n["text"] and "상담원 연결해 주세요" in n["text"] for n in ce["notes"]),
          f"the bot's note for the agent: {ce['notes']}")
    check(waiting() == [c, d, e], f"the queue: {waiting()}")

    # A negative message is handed off ahead of the line.
    f = say("15551110006", "정말 화가 나네요, 환불해 주세요")
    cf = conv(f)
    check(cf.get("priority") == "high" and "negative" in cf.get("labels", []), f"negative, high: {cf}")
    end = time.time() + 5
    while time.time() < end and waiting()[:1] != [f]:
        time.sleep(0.05)
    check(waiting() == [f, c, d, e], f"the angry customer first: {waiting()}")

    # ana resolves b: the first in line is hers, nobody wrote; the places move up.
    rc, r = gw.api("conversation.resolve", {"conversation_id": b})
    end = time.time() + 5
    while time.time() < end and waiting() != [c, d, e]:
        time.sleep(0.05)
    check(conv(f).get("assignee") == "ana" and waiting() == [c, d, e], f"f assigned, the rest move up: {waiting()}")
    rc, r = gw.api("queue.get", {"team": "support"})
    check([w["position"] for w in r["queues"][0]["waiting"]] == [1, 2, 3], f"queue.get positions: {r}")

    # A waiting customer who asks is told their place again, but not twice a minute.
    n_e = len(texts_to("15551110005", 1))
    say("15551110005", "지금 몇 번째예요?")
    got = texts_to("15551110005", n_e + 1)
    check(got[-1] == "현재 대기 순번은 3번째입니다. 조금만 기다려 주세요.", f"told again: {got}")
    say("15551110005", "몇 번째인지 다시 알려주세요")
    time.sleep(0.8)
    check(len(texts_to("15551110005", 1)) == n_e + 1, "not twice within a minute")

    # The bot no longer answers a conversation it handed off.
    n_before = len(texts_to("15551110004", 1))
    say("15551110004", "주문 상태 알려주세요 12345")
    time.sleep(0.8)
    check(len(texts_to("15551110004", 1)) == n_before, "no bot answer after the handoff")
finally:
    gw.cleanup()
    graph.close()
    orders.close()
    tgapi.close()

# Outside business hours (only tomorrow 09:00-10:00 in Seoul), a handoff says when agents are back.
seoul = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Seoul"))
tomorrow = (seoul + datetime.timedelta(days=1)).strftime("%a").lower()
day_ko = "월화수목금토일"[(seoul + datetime.timedelta(days=1)).weekday()] + "요일"
gw2 = Gateway(config_body=f"""pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
      - route:
          type: faq
          config:
            team: support
            business_hours: {{ timezone: Asia/Seoul, days: [{tomorrow}], from: "09:00", to: "10:00" }}
            intents:
              - name: hello
                patterns: ["^hello$"]
                answer: "Hello!"
""")
try:
    gw2.start()
    st, body = gw2.post_message({"id": "closed-1", "from": "night", "text": "상담원 연결해 주세요"})
    cid = json.loads(body)["ids"][0]
    rc, r = gw2.api("message.get", {"id": cid})
    conv_id = r["message"]["conversation_id"]
    end = time.time() + 5
    out = []
    while time.time() < end and not out:
        rc, r = gw2.api("conversation.get", {"conversation_id": conv_id})
        out = [m.get("text") for m in r["conversation"]["timeline"] if m.get("direction") == "outbound"]
        time.sleep(0.05)
    check(out == [f"지금은 상담 시간이 아니에요. 상담원은 {day_ko} 09:00부터 답변드려요. 대기 순번은 1번째입니다."],
          f"told when agents are back: {out}")
finally:
    gw2.cleanup()
done()
