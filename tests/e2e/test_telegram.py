"""Telegram Bot API channel: documented Update objects in, documented requests out,
against a local server playing the Bot API."""
import hashlib
import json
import os
import time

from fakeprovider import FakeProvider
from envelopes import check_all_stored
from harness import Gateway, check, done, fixture

BOT = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
SECRET = "tg-secret-token"
fake = FakeProvider()
gw = Gateway(config_body="outbox:\n  backoff_base: 100ms\n  max_attempts: 4\n",
             extra_channels=f"""  - name: tg
    type: telegram
    config:
      token: "{BOT}"
      secret_token: {SECRET}
      api_base_url: {fake.url}
""").start()


def post(body, secret=SECRET):
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return gw.request("POST", "/webhooks/tg", body, headers)


def by_ext(ext):
    return {m.get("external_id"): m for m in gw.list_all("tg")}.get(ext)


try:
    st, _ = post(fixture("telegram", "text.json"))
    m = by_ext("987654321:501")
    check(st == 200 and m is not None, f"text stored: {st}")
    if m:
        check(m["from"] == "telegram:987654321" and m["text"] == "환불 요청합니다", f"URN and text: {m}")
        check(m["sent_at"] == "2024-11-22T10:00:00.000Z", "provider time")
        check(m["meta"]["contact_name"] == "Min-jun Kim" and m["meta"]["username"] == "minjun", "display name kept")
    n = len(gw.list_all("tg"))
    st, _ = post(fixture("telegram", "text.json"))
    check(st == 200 and len(gw.list_all("tg")) == n, "a redelivery is stored once")
    st, _ = post(fixture("telegram", "two_in_one_chat.json"), secret="wrong")
    check(st == 401 and len(gw.list_all("tg")) == n, f"wrong secret token: {st}, nothing stored")
    st, _ = post(fixture("telegram", "two_in_one_chat.json"), secret=None)
    check(st == 401, f"missing secret token: {st}")
    st, _ = post(b'{"update_id": 5, "message": ')
    check(st == 400, f"malformed: {st}")
    st, _ = post(b'{"message": {}}')
    check(st == 400, f"no update_id: {st}")

    # Photo: the largest size fetched with getFile, kept content-addressed.
    photo = os.urandom(30000)
    fake.script[("GET", f"/bot{BOT}/getFile")] = [(200, lambda req: {"ok": True, "result": {
        "file_id": req.query["file_id"], "file_unique_id": "u", "file_size": len(photo),
        "file_path": "photos/file_7.jpg"}})]
    fake.script[("GET", f"/file/bot{BOT}/photos/file_7.jpg")] = [(200, photo, {"Content-Type": "image/jpeg"})]
    st, _ = post(fixture("telegram", "photo.json"))
    check(st == 200, "photo answered")
    att = {}
    for _ in range(50):
        att = (by_ext("987654321:502") or {}).get("attachments", [{}])[0]
        if att.get("sha256"):
            break
        time.sleep(0.1)
    gets = fake.seen("GET", f"/bot{BOT}/getFile")
    check(gets and gets[0].query["file_id"] == "AgACAgIAAxkBAAIBsmal-large", "the largest photo size is fetched")
    check(att.get("sha256") == hashlib.sha256(photo).hexdigest() and att.get("size") == len(photo), f"photo kept: {att}")

    for name, ext, test in (
            ("voice", "987654321:503", lambda m: m["attachments"][0]["kind"] == "voice"),
            ("audio", "987654321:504", lambda m: m["attachments"][0]["name"] == "song.mp3"),
            ("video", "987654321:505", lambda m: m["attachments"][0]["content_type"] == "video/mp4"),
            ("document", "987654321:506", lambda m: m["attachments"][0]["name"] == "contract.pdf" and m["text"] == "signed"),
            ("sticker", "987654321:507", lambda m: m["attachments"][0]["kind"] == "sticker"),
            ("location", "987654321:508", lambda m: m["meta"]["location"]["latitude"] == 37.5665),
            ("venue", "987654321:509", lambda m: m["text"] == "Gangnam Store, 123 Teheran-ro, Seoul"),
            ("contact", "987654321:510", lambda m: m["meta"]["contacts"][0]["phone_number"] == "+821012345678"
             and m["text"] == "Ji-woo Park, +821012345678"),
            ("reply", "987654321:511", lambda m: m["thread_ref"] == "987654321:77"),
            ("edited_message", "987654321:501:edit:1732269660",
             lambda m: m["kind"] == "event" and m["meta"]["edited"] and m["thread_ref"] == "987654321:501"),
            ("callback_query", "callback:4382bfdwdsb323b2d9",
             lambda m: m["text"] == "helpful-yes" and m["meta"]["reply_id"] == "helpful-yes" and m["thread_ref"] == "987654321:78"),
            ("unknown", "update:100014", lambda m: m["kind"] == "event" and m["meta"]["update_type"] == "message_reaction")):
        st, _ = post(fixture("telegram", name + ".json"))
        m = by_ext(ext)
        try:
            ok = st == 200 and m is not None and test(m)
        except (KeyError, IndexError, TypeError):
            ok = False
        check(ok, f"{name}: {st} {m}")

    # Fidelity (issue 12): times and ids as the reference has them, else 400 naming the field.
    for name, ext, field in (("date_not_number", "987654321:601", b"message.date"),
                             ("sender_not_integer", "987654321:602", b"message.from.id"),
                             ("chat_not_integer", "987654321:603", b"message.chat.id")):
        st, body = post(fixture("telegram", name + ".json"))
        check(st == 400 and field in body and not [m for m in gw.list_all("tg") if m.get("external_id", "").endswith(ext[-4:])],
              f"{name}: 400 naming {field.decode()}, nothing stored: {st} {body!r}")

    # Outbound: sendMessage; 500 then 200 sent once; 429 retry_after; 403 dead-lettered.
    path = f"/bot{BOT}/sendMessage"
    fake.script[("POST", path)] = [(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}),
                                   (200, {"ok": True, "result": {"message_id": 901, "chat": {"id": 987654321}, "date": 1, "text": "hi"}})]
    rc, out, err = gw.cli("send", "-c", gw.config, "--channel", "tg", "--to", "telegram:987654321", "--text", "hi")
    mid = json.loads(out)["id"]
    m = gw.wait_message(mid, "sent")
    reqs = fake.seen("POST", path)
    check(m.get("status") == "sent" and len(reqs) == 2 and m.get("external_id") == "987654321:901", f"sent once: {m}")
    if reqs:
        check(reqs[-1].json() == {"chat_id": 987654321, "text": "hi"}, f"the documented body: {reqs[-1].body!r}")

    fake.script[("POST", path)] = [(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                          "parameters": {"retry_after": 1}}),
                                   (200, {"ok": True, "result": {"message_id": 902}})]
    rc, r = gw.api("message.send", {"channel": "tg", "to": "telegram:987654321", "text": "Was this helpful?",
                                    "meta": {"buttons": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}]}})
    m = gw.wait_message(r["id"], "sent")
    reqs = fake.seen("POST", path)[-2:]
    check(m.get("status") == "sent" and reqs[1].at - reqs[0].at >= 0.9, f"retry_after honoured: {reqs[1].at - reqs[0].at:.2f} s")
    kb = reqs[-1].json().get("reply_markup", {}).get("inline_keyboard")
    check(kb == [[{"text": "Yes", "callback_data": "yes"}], [{"text": "No", "callback_data": "no"}]], f"inline keyboard: {kb}")

    fake.script[("POST", path)] = [(403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})]
    rc, out, err = gw.cli("send", "-c", gw.config, "--channel", "tg", "--to", "telegram:987654321", "--text", "still there?")
    m = gw.wait_message(json.loads(out)["id"], "failed")
    check(m.get("status") == "failed" and "blocked by the user" in m.get("error", ""), f"dead-lettered: {m}")

    fake.script[("POST", f"/bot{BOT}/sendPhoto")] = [(200, {"ok": True, "result": {"message_id": 903}})]
    rc, r = gw.api("message.send", {"channel": "tg", "to": "telegram:987654321", "text": "your label",
                                    "attachments": [{"content_type": "image/png", "url": "https://example.com/label.png"}]})
    m = gw.wait_message(r["id"], "sent")
    photo_req = fake.seen("POST", f"/bot{BOT}/sendPhoto")
    check(photo_req and photo_req[0].json() == {"chat_id": 987654321, "photo": "https://example.com/label.png",
                                                "caption": "your label"}, "an image goes out with sendPhoto")

    check_all_stored(gw, "tg")
finally:
    gw.cleanup()
    fake.close()
done()
