"""LINE Messaging API channel: documented webhook events in (signed with X-Line-Signature), threaded
into conversations; replies out with the reply token while it is good, else by push with a retry key;
content downloaded from the content API only; against a local server playing both APIs."""
import base64
import hashlib
import hmac
import json
import os
import re
import time

from channeltest import PIPELINE, check_cases, fetched, finder, sender
from envelopes import check_all_stored, check_logged_why, log_size
from fakeprovider import FakeProvider
from harness import Gateway, check, done, fixture
from internalservice import InternalService, wait_metric

SECRET = "line-channel-secret"
TOKEN = "line-channel-access-token"
BOT = "Ufabcaa97871555b68aa095335975e613"
USER = "Uee11cbb19052e40b07aac0ca060c23ee"
GROUP = "Cdb0f6f37ebeb6ea09489124345af2a45"
ROOM = "Rfef2576d54dbde017a3a8e4df699ef6d"
fake = FakeProvider()
internal = InternalService()
gw = Gateway(config_body=PIPELINE, extra_channels=f"""  - name: ln
    type: line
    config:
      channel_secret: {SECRET}
      channel_access_token: {TOKEN}
      bot_user_id: {BOT}
      api_base_url: {fake.url}
      data_api_base_url: {fake.url}
      reply_token_window: 20s
""").start()


def signature(body, secret=SECRET):
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def post(body, sig=None):
    headers = {"Content-Type": "application/json"}
    if sig is not False:
        headers["X-Line-Signature"] = sig or signature(body)
    return gw.request("POST", "/webhooks/ln", body, headers)



def event_now(name, eid, reply_token, age_ms=0):
    """A fixture's first event as a fresh one: a new webhookEventId, now as its time, its own reply token."""
    doc = json.loads(fixture("line", name))
    ev = doc["events"][0]
    ev["webhookEventId"], ev["replyToken"] = eid, reply_token
    ev["timestamp"] = int(time.time() * 1000) - age_ms
    ev["message"]["id"] = str(int(ev["message"]["id"]) + int(time.time()) % 1000)
    return json.dumps(doc).encode()



by_ext = finder(gw, "ln")
send = sender(gw, "ln", f"line:{USER}")

try:
    st, _ = post(fixture("line", "text.json"))
    m = by_ext("01FZ74A0TDDPYRVKNK77XKC3ZR")
    check(st == 200 and m is not None, f"text stored: {st}")
    if m:
        check(m["from"] == f"line:{USER}" and m["to"] == f"line:{BOT}" and m["text"] == "주문 취소하고 싶어요 (love)",
              f"URNs and text: {m}")
        check(m["sent_at"] == "2024-11-22T10:00:00.000Z", f"the event's time: {m.get('sent_at')}")
        meta = m["meta"]
        check(meta["message_id"] == "444573844083572737" and meta["quote_token"].startswith("q3Plxr4")
              and meta["emojis"][0]["productId"] == "5ac1bfd5040ab15980c9b435" and meta["reply_token"],
              f"LINE's ids and tokens kept: {meta}")
        check(m.get("contact_id") and m.get("conversation_id"), f"identified and threaded: {m}")
    n = len(gw.list_all("ln"))
    redelivered = json.loads(fixture("line", "text.json"))
    redelivered["events"][0]["deliveryContext"]["isRedelivery"] = True
    body = json.dumps(redelivered).encode()
    st, _ = post(body)
    check(st == 200 and len(gw.list_all("ln")) == n, f"a redelivery (same webhookEventId) is stored once: {st}")

    # Signatures: wrong secret, missing, the right one over other bytes.
    two = fixture("line", "two_events.json")
    st, _ = post(two, sig=signature(two, "wrong"))
    check(st == 401 and len(gw.list_all("ln")) == n, f"wrong signature: 401, nothing stored: {st}")
    st, _ = post(two, sig=False)
    check(st == 401 and len(gw.list_all("ln")) == n, f"no signature: 401: {st}")
    st, _ = post(two + b" ", sig=signature(two))
    check(st == 401 and len(gw.list_all("ln")) == n, f"a signature of other bytes: 401: {st}")
    st, _ = post(b'{"destination": "' + BOT.encode() + b'", "events": [')
    check(st == 400, f"malformed: {st}")
    st, _ = post(b'{"events": []}')
    check(st == 400, f"no destination: {st}")

    cases = (
            ("video", "01FZ74A0TDDPYRVKNK77XKC3ZV", lambda m: m["attachments"][0]["content_type"] == "video/mp4"
             and m["attachments"][0]["duration_ms"] == 60000),
            ("audio", "01FZ74A0TDDPYRVKNK77XKC3ZW", lambda m: m["attachments"][0]["kind"] == "audio"),
            ("file", "01FZ74A0TDDPYRVKNK77XKC3ZX", lambda m: m["attachments"][0]["name"] == "견적서.pdf"
             and m["attachments"][0]["provider_size"] == 2138),
            ("location", "01FZ74A0TDDPYRVKNK77XKC3ZY", lambda m: m["meta"]["location"]["latitude"] == 35.67966
             and m["text"] == "my location, 1-3 Kioicho, Chiyoda-ku, Tokyo, 102-8282, Japan"),
            ("sticker", "01FZ74A0TDDPYRVKNK77XKC3ZZ", lambda m: m["meta"]["sticker"]["package_id"] == "1"
             and m["meta"]["sticker"]["keywords"] == ["Happy", "Smiled"]),
            ("postback", "01FZ74A0TDDPYRVKNK77XKC400", lambda m: m["kind"] == "message" and m["text"] == "helpful-yes"
             and m["meta"]["reply_id"] == "helpful-yes" and m["meta"]["postback_params"]["datetime"]),
            ("follow", "01FZ74A0TDDPYRVKNK77XKC401", lambda m: m["kind"] == "event" and m["meta"]["event_type"] == "follow"
             and m["meta"]["is_unblocked"] is False and m["from"] == f"line:{USER}"),
            ("unfollow", "01FZ74A0TDDPYRVKNK77XKC402", lambda m: m["kind"] == "event" and m["meta"]["event_type"] == "unfollow"),
            ("unsend", "01FZ74A0TDDPYRVKNK77XKC403", lambda m: m["kind"] == "event" and m["thread_ref"] == "444573844083572737"),
            ("group_text", "01FZ74A0TDDPYRVKNK77XKC404", lambda m: m["from"] == f"line:{GROUP}"
             and m["meta"]["group_sender"] == USER and m["text"] == "Hello, world"),
            ("join", "01FZ74A0TDDPYRVKNK77XKC405", lambda m: m["kind"] == "event" and m["meta"]["raw"]["type"] == "join"),
            ("beacon", "01FZ74A0TDDPYRVKNK77XKC406", lambda m: m["kind"] == "event"
             and m["meta"]["raw"]["beacon"]["hwid"] == "d41d8cd98f"),
            ("unknown_message", "01FZ74A0TDDPYRVKNK77XKC407", lambda m: m["kind"] == "message"
             and m["meta"]["raw"]["message"]["type"] == "hologram"))
    check_cases(post, lambda name: fixture("line", name + ".json"), by_ext, cases)
    st, _ = post(two)
    a, b = by_ext("01FZ74A0TDDPYRVKNK77XKC408"), by_ext("01FZ74A0TDDPYRVKNK77XKC409")
    check(st == 200 and a and b and a["text"] == "first" and b["from"] == f"line:{ROOM}", f"two events, two envelopes: {a} {b}")

    # Another bot's request and LINE's URL check: 200, nothing stored, and the log says why.
    n = len(gw.list_all("ln"))
    for name, why in (("other_bot", "not " + BOT), ("verify", "without events")):
        off = log_size(gw)
        st, _ = post(fixture("line", name + ".json"))
        check(st == 200 and len(gw.list_all("ln")) == n, f"{name}: 200, nothing stored: {st}")
        check_logged_why(gw, off, "acknowledged, not stored", why)

    # Fidelity: ids, times and coordinates as LINE documents them, else 400 naming the field, nothing stored.
    for name, field in (("bad_user_id", b"events[0].source.userId"), ("bad_timestamp", b"events[1].timestamp"),
                        ("no_event_id", b"events[0] needs 'type' and 'webhookEventId'"),
                        ("bad_location", b"events[0].message needs 'latitude'")):
        st, body = post(fixture("line", name + ".json"))
        check(st == 400 and field in body and len(gw.list_all("ln")) == n,
              f"{name}: 400 naming {field.decode()}, nothing stored: {st} {body!r}")

    # Content: downloaded after the commit from the content API, with the channel access token.
    photo = bytes(range(256)) * 100
    fake.script[("GET", "/v2/bot/message/354718705033693859/content")] = [(200, photo, {"Content-Type": "image/jpeg"})]
    st, _ = post(fixture("line", "image.json"))
    att = fetched(by_ext, "01FZ74A0TDDPYRVKNK77XKC3ZS")
    check(st == 200 and att.get("sha256") == hashlib.sha256(photo).hexdigest() and att.get("size") == len(photo),
          f"image content kept: {att}")
    gets = fake.seen("GET", "/v2/bot/message/354718705033693859/content")
    check(gets and gets[0].headers.get("Authorization") == f"Bearer {TOKEN}", "the content API gets the token")
    check((by_ext("01FZ74A0TDDPYRVKNK77XKC3ZS") or {}).get("meta", {}).get("image_set", {}).get("total") == 2,
          "the image set is kept")

    # An external content provider's URL is fetched only under the media policy: not from an internal service,
    # nor from a host that is not LINE's, and never with the token.
    refused_before = wait_metric(gw, "media_refused_total", "ln", 0)
    ext = json.loads(fixture("line", "image_external.json"))
    ext["events"][0]["message"]["contentProvider"]["originalContentUrl"] = f"{internal.url}/latest/meta-data/"
    st, _ = post(json.dumps(ext).encode())
    m = by_ext("01FZ74A0TDDPYRVKNK77XKC3ZT")
    check(st == 200 and m and m["attachments"][0]["url"] == f"{internal.url}/latest/meta-data/",
          f"stored with the provider's URL: {m}")
    ext["events"][0]["webhookEventId"] = "01FZ74A0TDDPYRVKNK77XKC3ZQ"
    ext["events"][0]["message"]["contentProvider"]["originalContentUrl"] = "https://example.com/original.jpg"
    st, _ = post(json.dumps(ext).encode())
    check(st == 200, f"a second external image stored: {st}")
    refused = wait_metric(gw, "media_refused_total", "ln", refused_before + 2)
    check(refused == refused_before + 2, f"both external URLs refused by the policy: {refused}")
    check(internal.hits() == [], f"the internal service got nothing: {internal.hits()}")

    # Outbound, reply: a fresh event's token is used once, through the outbox, for free.
    fake.script[("POST", "/v2/bot/message/reply")] = [(200, {"sentMessages": [{"id": "461230966842064897",
                                                                                "quoteToken": "IStG5h1Tz7b"}]})]
    fake.script[("POST", "/v2/bot/message/push")] = [(200, {"sentMessages": [{"id": "461230966842064898",
                                                                               "quoteToken": "IStG5h1Tz7c"}]})]
    st, _ = post(event_now("text.json", "01FZ74A0TDDPYRVKNK77XKC500", "fresh-reply-token"))
    fresh = by_ext("01FZ74A0TDDPYRVKNK77XKC500")
    check(st == 200 and fresh, f"a fresh message stored: {st}")
    rc, r = gw.api("message.send", {"conversation_id": fresh["conversation_id"], "text": "취소해 드렸습니다"})
    m = gw.wait_message(r.get("id"), "sent")
    replies = fake.seen("POST", "/v2/bot/message/reply")
    check(m.get("status") == "sent" and m.get("external_id") == "461230966842064897", f"replied: {m}")
    check(replies and replies[0].json() == {"messages": [{"type": "text", "text": "취소해 드렸습니다"}],
                                            "replyToken": "fresh-reply-token"}, f"the documented reply: {replies and replies[0].body}")
    check(replies and replies[0].headers.get("Authorization") == f"Bearer {TOKEN}", "the reply carries the token")

    # The token is spent: the next message is pushed, with a retry key.
    mid = send("한 가지 더요")
    m = gw.wait_message(mid, "sent")
    pushes = fake.seen("POST", "/v2/bot/message/push")
    check(m.get("status") == "sent" and len(fake.seen("POST", "/v2/bot/message/reply")) == 1 and pushes,
          f"a second message goes by push: {m}")
    if pushes:
        check(pushes[-1].json() == {"messages": [{"type": "text", "text": "한 가지 더요"}], "to": USER},
              f"the documented push: {pushes[-1].body!r}")
        check(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                           pushes[-1].headers.get("X-Line-Retry-Key", "")), f"a UUID retry key: {pushes[-1].headers}")

    # An event older than reply_token_window: its token is not tried, the reply is pushed.
    st, _ = post(event_now("text.json", "01FZ74A0TDDPYRVKNK77XKC501", "stale-reply-token", age_ms=30000))
    before = len(fake.seen("POST", "/v2/bot/message/reply"))
    m = gw.wait_message(send("늦은 답장"), "sent")
    check(m.get("status") == "sent" and len(fake.seen("POST", "/v2/bot/message/reply")) == before,
          f"a stale token is not used: {m}")

    # In standby mode another channel answers the chat: the token is kept, not used.
    standby = json.loads(event_now("text.json", "01FZ74A0TDDPYRVKNK77XKC503", "standby-reply-token"))
    standby["events"][0]["mode"] = "standby"
    st, _ = post(json.dumps(standby).encode())
    before = len(fake.seen("POST", "/v2/bot/message/reply"))
    m = gw.wait_message(send("대기 중"), "sent")
    check(st == 200 and m.get("status") == "sent" and len(fake.seen("POST", "/v2/bot/message/reply")) == before
          and by_ext("01FZ74A0TDDPYRVKNK77XKC503")["meta"]["mode"] == "standby", f"a standby token is not used: {m}")

    # LINE refuses the token (used or expired): the same attempt pushes instead.
    fake.script[("POST", "/v2/bot/message/reply")] = [(400, {"message": "Invalid reply token"})]
    st, _ = post(event_now("text.json", "01FZ74A0TDDPYRVKNK77XKC502", "refused-reply-token"))
    npush = len(fake.seen("POST", "/v2/bot/message/push"))
    m = gw.wait_message(send("다시 보냅니다"), "sent")
    check(m.get("status") == "sent" and fake.seen("POST", "/v2/bot/message/reply")[-1].json()["replyToken"]
          == "refused-reply-token" and len(fake.seen("POST", "/v2/bot/message/push")) == npush + 1,
          f"a refused token falls back to push: {m}")

    # Push outcomes: 500 then 200 sent once with the same retry key; 429 honours Retry-After; 409 means LINE
    # took an earlier attempt; other 4xx are dead letters with LINE's message.
    fake.script[("POST", "/v2/bot/message/push")] = [(500, {"message": "Internal error"}),
                                                      (200, {"sentMessages": [{"id": "461230966842064899"}]})]
    npush = len(fake.seen("POST", "/v2/bot/message/push"))
    m = gw.wait_message(send("retry me"), "sent")
    reqs = fake.seen("POST", "/v2/bot/message/push")[npush:]
    check(m.get("status") == "sent" and len(reqs) == 2 and m.get("external_id") == "461230966842064899",
          f"5xx retried, then sent: {m}")
    check(len(reqs) == 2 and reqs[0].headers["X-Line-Retry-Key"] == reqs[1].headers["X-Line-Retry-Key"],
          "both attempts carry the same retry key")
    fake.script[("POST", "/v2/bot/message/push")] = [
        (429, {"message": "The API rate limit has been exceeded. Try again later."}, {"Retry-After": "1"}),
        (200, {"sentMessages": [{"id": "461230966842064900"}]})]
    npush = len(fake.seen("POST", "/v2/bot/message/push"))
    m = gw.wait_message(send("slow down", meta={"buttons": [{"id": "yes", "title": "네"}, {"id": "no", "title": "아니요"}]}),
                        "sent", timeout=15)
    reqs = fake.seen("POST", "/v2/bot/message/push")[npush:]
    check(m.get("status") == "sent" and len(reqs) == 2 and reqs[1].at - reqs[0].at >= 0.9,
          f"429 waits for Retry-After: {m}")
    if reqs:
        items = reqs[-1].json()["messages"][-1].get("quickReply", {}).get("items")
        check(items == [{"type": "action", "action": {"type": "postback", "label": "네", "data": "yes", "displayText": "네"}},
                        {"type": "action", "action": {"type": "postback", "label": "아니요", "data": "no",
                                                      "displayText": "아니요"}}], f"quick reply buttons: {items}")
    fake.script[("POST", "/v2/bot/message/push")] = [(409, {"message": "The retry key is already accepted",
                                                            "sentMessages": [{"id": "461230966842064901"}]})]
    m = gw.wait_message(send("already there"), "sent")
    check(m.get("status") == "sent" and m.get("external_id") == "461230966842064901", f"409: LINE has it: {m}")
    fake.script[("POST", "/v2/bot/message/push")] = [(400, {"message": "The request body has 1 error(s)", "details": [
        {"message": "May not be empty", "property": "messages[0].text"}]})]
    m = gw.wait_message(send("bad"), "failed")
    check(m.get("status") == "failed" and "May not be empty" in m.get("error", "")
          and "messages[0].text" in m.get("error", ""), f"400 dead-lettered with LINE's message: {m}")

    fake.script[("POST", "/v2/bot/message/push")] = [(200, {"sentMessages": [{"id": "461230966842064902"}]})]
    rc, r = gw.api("message.send", {"channel": "ln", "to": f"line:{USER}", "text": "your label",
                                    "attachments": [{"content_type": "image/png", "url": "https://example.com/label.png"}]})
    m = gw.wait_message(r.get("id"), "sent")
    last = fake.seen("POST", "/v2/bot/message/push")[-1].json()
    check(last["messages"] == [{"type": "image", "originalContentUrl": "https://example.com/label.png",
                                "previewImageUrl": "https://example.com/label.png"},
                               {"type": "text", "text": "your label"}], f"an image, then the text: {last}")
    six = [{"content_type": "image/png", "url": f"https://example.com/{i}.png", "name": f"{i}.png"} for i in range(6)]
    m = gw.wait_message(send("여섯 장", attachments=six), "sent")
    last = fake.seen("POST", "/v2/bot/message/push")[-1].json()["messages"]
    check(len(last) == 5 and [x["type"] for x in last] == ["image"] * 4 + ["text"]
          and last[4]["text"] == "여섯 장\n4.png: https://example.com/4.png\n5.png: https://example.com/5.png",
          f"what does not fit in five messages goes as links in the text: {last}")
    rc, r = gw.api("message.send", {"channel": "ln", "to": "line:someone", "text": "x"})
    m = gw.wait_message(r.get("id"), "failed")
    check(m.get("status") == "failed" and "line:<user" in m.get("error", ""), f"a 'to' that is no LINE id: {m}")

    # The content API gets the token: parley check refuses one on another host, naming the line.
    bad = os.path.join(gw.dir, "bad-data-url.yaml")
    with open(bad, "w") as f:
        f.write(f"""channels:
  - name: ln2
    type: line
    config:
      channel_secret: s
      channel_access_token: t
      bot_user_id: {BOT}
      data_api_base_url: https://media.example.com
""")
    rc, out, err = gw.cli("check", "-c", bad)
    check(rc != 0 and "bad-data-url.yaml:5:" in err and "data_api_base_url" in err, f"check names the key: {err}")

    check_all_stored(gw, "ln")
finally:
    gw.cleanup()
    fake.close()
    internal.close()
done()
