"""KakaoTalk channel chatbot skills: the test plays Kakao i Open Builder, posting documented
SkillPayloads and reading the answer of the same request, which is the bot's reply.  The faq
bot's answer (with its buttons as quick replies) comes back in the skill's own answer; an
agent's reply sent while the request waits answers it too; with no reply in time the request is
answered with the holding text, and then a reply has nowhere to go and is dead-lettered saying
so, unless Kakao gave a callbackUrl: then the answer says useCallback and the reply is POSTed
there, once.  A wrong secret or bot id is 401 and stores nothing; a payload that is not a
SkillPayload is 400 naming the field."""
import json
import threading
import time

from envelopes import check_all_stored
from fakeprovider import FakeProvider
from harness import Gateway, check, done, fixture

SECRET = "kakao-skill-secret-0123"
BOT_ID = "5a548e36aea1a43fa851ecd9"
USER = "kakao:b8a0e3f2c1d44e7f9a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a"
HOLDING = "확인하고 있어요. 잠시만요!"
kakao = FakeProvider()  # plays the callback endpoint Kakao hands out
callbacks = []


def on_callback(req):
    callbacks.append(req.json())
    return {"taskId": f"task-{len(callbacks)}", "status": "SUCCESS", "message": "OK", "timestamp": 1}


kakao.script[("POST", "/v1/callback/CALLBACK-TOKEN")] = [(200, on_callback)]

gw = Gateway(config_body=f"""pipelines:
  - name: bot
    from: [kk]
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
      - route:
          type: faq
          config:
            team: support
            fallback: "잘 이해하지 못했어요."
            intents:
              - name: hours
                patterns: ["영업\\\\s*시간"]
                answer: "평일 오전 9시부터 오후 6시까지 상담해 드려요."
                buttons: ["주문 조회", "상담원 연결해 주세요"]
  - name: people
    from: [kk2]
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
""", extra_channels=f"""  - name: kk
    type: kakao
    config:
      secret: {SECRET}
      bot_id: "{BOT_ID}"
  - name: kk2
    type: kakao
    config:
      secret: {SECRET}
      answer_within: 1500ms
      holding_text: "{HOLDING}"
""").start()


def skill(channel, body, secret=SECRET, header="X-Parley-Kakao-Secret"):
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[header] = secret
    if not isinstance(body, bytes):
        body = json.dumps(body, ensure_ascii=False).encode()
    t0 = time.time()
    st, data = gw.request("POST", f"/webhooks/{channel}", body, headers)
    try:
        data = json.loads(data)
    except ValueError:
        pass
    return st, data, time.time() - t0


def payload(name, **user_request):
    d = json.loads(fixture("kakao", name))
    d["userRequest"].update(user_request)
    return d


def send(channel, text, **more):
    rc, r = gw.api("message.send", {"channel": channel, "to": USER, "text": text, **more})
    check(rc == 0, f"message.send on {channel}: {r}")
    return r.get("id")


try:
    # The faq bot's answer is the answer to the skill request itself, its buttons as quick replies.
    st, ans, took = skill("kk", payload("text.json"))
    check(st == 200 and ans.get("version") == "2.0", f"a SkillResponse 2.0 answers the request: {st} {ans}")
    outs = ans.get("template", {}).get("outputs", []) if isinstance(ans, dict) else []
    check(outs and outs[0].get("simpleText", {}).get("text") == "평일 오전 9시부터 오후 6시까지 상담해 드려요.",
          f"the bot's answer is the simpleText: {ans}")
    qr = ans.get("template", {}).get("quickReplies", []) if isinstance(ans, dict) else []
    check([q.get("label") for q in qr] == ["주문 조회", "상담원 연결해 주세요"[:14]] and
          qr[1].get("messageText") == "상담원 연결해 주세요" and qr[0].get("action") == "message",
          f"the bot's buttons are quick replies, labels at most 14 characters, the text whole: {qr}")
    msgs = gw.list_all("kk")
    inbound = [m for m in msgs if m["direction"] == "inbound"]
    outbound = [m for m in msgs if m["direction"] == "outbound"]
    check(len(inbound) == 1 and inbound[0]["from"] == USER and inbound[0]["text"] == "영업시간 알려주세요",
          f"the utterance is stored from kakao:<user id>: {inbound}")
    check(inbound and inbound[0]["meta"].get("bot_id") == BOT_ID and
          inbound[0]["meta"].get("block", {}).get("name") == "폴백 블록" and
          inbound[0]["meta"].get("user_properties", {}).get("plusfriendUserKey") == "BlGTEYoiNoSh",
          f"bot, block and user keys in meta: {inbound and inbound[0]['meta']}")
    check(len(outbound) == 1 and gw.wait_message(outbound[0]["id"], "sent").get("status") == "sent",
          f"the bot's reply is sent (it was the answer): {outbound}")

    # Several users at once: each request is answered with the reply to its own user.
    answers = {}

    def ask(uid, text):
        d = payload("text.json", utterance=text)
        d["userRequest"]["user"]["id"] = uid
        st, ans, _ = skill("kk", d)
        outs = ans.get("template", {}).get("outputs", []) if isinstance(ans, dict) else []
        answers[uid] = (st, outs[0]["simpleText"]["text"] if outs else ans)

    asks = [(f"user{i:02d}", "영업 시간이요" if i % 2 else "날씨 어때요") for i in range(6)]
    threads = [threading.Thread(target=ask, args=a) for a in asks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    for uid, text in asks:
        want = "평일 오전 9시부터 오후 6시까지 상담해 드려요." if "영업" in text else "잘 이해하지 못했어요."
        check(answers.get(uid) == (200, want), f"{uid} gets the answer to its own question: {answers.get(uid)}")

    # A quick reply comes back as the title said, its id in meta.reply_id.
    st, ans, _ = skill("kk", payload("quick_reply.json"))
    check(st == 200, f"quick reply answered: {st} {ans}")
    qm = [m for m in gw.list_all("kk") if m.get("text") == "주문 조회"]
    check(qm and qm[0]["meta"].get("reply_id") == "order", f"the quick reply's id: {qm}")

    # Authentication: Kakao signs nothing, the skill's header carries the secret; bot_id must match.
    n = len(gw.list_all("kk"))
    st, ans, _ = skill("kk", payload("text.json"), secret="wrong-secret")
    check(st == 401, f"a wrong secret is 401: {st} {ans}")
    st, ans, _ = skill("kk", payload("text.json"), secret=None)
    check(st == 401, f"no secret header is 401: {st}")
    other = payload("text.json")
    other["bot"]["id"] = "000000000000000000000000"
    st, ans, _ = skill("kk", other)
    check(st == 401 and "bot_id" in json.dumps(ans), f"another bot's request is 401: {st} {ans}")
    check(len(gw.list_all("kk")) == n, "nothing of the refused requests is stored")

    # Not a SkillPayload: 400 naming the field, nothing stored.
    st, ans, _ = skill("kk", fixture("kakao", "user_id_invalid.json"))
    check(st == 400 and "userRequest.user.id" in ans.get("error", ""), f"bad user id: {st} {ans}")
    st, ans, _ = skill("kk", fixture("kakao", "utterance_not_string.json"))
    check(st == 400 and "userRequest.utterance" in ans.get("error", ""), f"utterance not a string: {st} {ans}")
    st, ans, _ = skill("kk", b'{"userRequest": ')
    check(st == 400, f"not JSON: {st}")
    st, ans, _ = skill("kk2", {"intent": {}})
    check(st == 400 and "userRequest" in ans.get("error", ""), f"no userRequest: {st} {ans}")
    raw = fixture("kakao", "text.json")
    st, ans, _ = skill("kk", raw.replace("영업시간 알려주세요".encode(), b"\xff\xfe broken"))
    check(st == 400 and "userRequest.utterance" in ans.get("error", ""), f"utterance not UTF-8: {st} {ans}")
    st, ans, _ = skill("kk", raw.replace("영업시간 알려주세요".encode(), b"cut\\u0000here"))
    check(st == 400 and "userRequest.utterance" in ans.get("error", ""), f"utterance with a NUL: {st} {ans}")
    long_id = payload("text.json")
    long_id["userRequest"]["user"]["id"] = "a" * 129
    st, ans, _ = skill("kk", long_id)
    check(st == 400 and "userRequest.user.id" in ans.get("error", ""), f"user id over 128: {st} {ans}")
    notobj = payload("text.json", params=["surface"])
    st, ans, _ = skill("kk", notobj)
    check(st == 400 and "userRequest.params" in ans.get("error", ""), f"params not an object: {st} {ans}")
    check(len(gw.list_all("kk")) == n, "nothing of the invalid requests is stored")

    # An agent's reply sent while the request waits is its answer.
    result = {}
    th = threading.Thread(target=lambda: result.update(zip(("st", "ans", "took"),
                                                           skill("kk2", payload("text.json", utterance="배송이 늦어요")))))
    th.start()
    end = time.time() + 5
    while time.time() < end and not any(m.get("text") == "배송이 늦어요" for m in gw.list_all("kk2")):
        time.sleep(0.05)
    mid = send("kk2", "확인해 보니 내일 도착해요.")
    th.join(10)
    outs = result.get("ans", {}).get("template", {}).get("outputs", []) if isinstance(result.get("ans"), dict) else []
    check(result.get("st") == 200 and outs and outs[0]["simpleText"]["text"] == "확인해 보니 내일 도착해요.",
          f"the agent's reply is the skill's answer: {result}")
    check(gw.wait_message(mid, "sent").get("status") == "sent", "and it is sent")

    # No reply in time, no callback: the holding text answers in time; a later reply is a dead letter.
    st, ans, took = skill("kk2", payload("text.json", utterance="교환하고 싶어요"))
    outs = ans.get("template", {}).get("outputs", []) if isinstance(ans, dict) else []
    check(st == 200 and outs and outs[0]["simpleText"]["text"] == HOLDING and "useCallback" not in ans,
          f"the holding text answers when no reply came: {st} {ans}")
    # Not a speed check: the answer waits answer_within for a reply, then comes by itself.
    check(1.4 < took < 10, f"answered once answer_within passed, with nobody replying: {took:.2f} s")
    mid = send("kk2", "교환은 7일 안에 가능해요.")
    m = gw.wait_message(mid, "failed")
    check(m.get("status") == "failed" and "outside a request" in (m.get("error") or ""),
          f"a reply with no request to answer is dead-lettered saying why: {m}")

    # Callback mode: useCallback in time, then the reply goes to the callbackUrl, once.
    url = f"{kakao.url}/v1/callback/CALLBACK-TOKEN"
    st, ans, took = skill("kk2", payload("callback.json", callbackUrl=url))
    check(st == 200 and ans.get("useCallback") is True and ans.get("data", {}).get("text") == HOLDING,
          f"the late answer says useCallback with the holding text: {st} {ans}")
    stored = [m for m in gw.list_all("kk2") if m.get("text") == "환불 규정이 궁금해요"]
    check(stored and stored[0]["meta"].get("callback") is True, f"stored, callback noted: {stored}")
    mid = send("kk2", "환불은 결제 후 7일 안에 돼요.", meta={"buttons": [{"id": "more", "title": "더 보기"}]})
    m = gw.wait_message(mid, "sent")
    check(m.get("status") == "sent" and len(callbacks) == 1, f"the reply went to the callback: {m} {callbacks}")
    if callbacks:
        cb = callbacks[0]
        check(cb.get("version") == "2.0" and cb["template"]["outputs"][0]["simpleText"]["text"] ==
              "환불은 결제 후 7일 안에 돼요." and cb["template"]["quickReplies"][0]["extra"]["button_id"] == "more",
              f"the callback carries the SkillResponse: {cb}")
    mid = send("kk2", "하나 더요")
    m = gw.wait_message(mid, "failed")
    check(m.get("status") == "failed" and len(callbacks) == 1, f"a callbackUrl is used once: {m}")

    # A request without an utterance is kept whole as an event.
    st, ans, _ = skill("kk2", fixture("kakao", "no_utterance.json"))
    ev = [m for m in gw.list_all("kk2") if m.get("kind") == "event"]
    check(st == 200 and ev and ev[0]["meta"]["raw"]["userRequest"]["params"]["event"] == "welcome",
          f"no utterance: an event with meta.raw: {st} {ev}")

    check_all_stored(gw, "kk", "kk2")
finally:
    gw.cleanup()
    kakao.close()
done()
