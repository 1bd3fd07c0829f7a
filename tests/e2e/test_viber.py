"""Viber REST bot API channel: documented callbacks in (signed with X-Viber-Content-Signature), 64-bit
message tokens kept exactly, receipts moving our messages' status; send_message out, each JSON status
mapped to sent / retry / dead letter; media fetched only from the allowed hosts; against a local server
playing the API."""
import hashlib
import hmac
import json

from channeltest import PIPELINE, check_cases, fetched, finder, sender
from envelopes import check_all_stored, check_logged_why, log_size
from fakeprovider import FakeProvider
from harness import Gateway, check, done, fixture
from internalservice import InternalService, wait_metric

TOKEN = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"
USER = "01234567890A="
fake = FakeProvider()
internal = InternalService()
gw = Gateway(config_body=PIPELINE, extra_channels=f"""  - name: vb
    type: viber
    config:
      auth_token: {TOKEN}
      sender_name: Parley Shop
      api_base_url: {fake.url}/pa
""").start()
SEND = "/pa/send_message"


def signature(body, secret=TOKEN):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(body, sig=None):
    headers = {"Content-Type": "application/json"}
    if sig is not False:
        headers["X-Viber-Content-Signature"] = sig or signature(body)
    return gw.request("POST", "/webhooks/vb", body, headers)


def local(name):
    """A fixture with its Viber media links pointing at the fake provider (the API's origin)."""
    return fixture("viber", name).replace(b"https://dl-media.viber.com", fake.url.encode())



def ok(token):
    """send_message's documented answer; the token is written as the 64-bit integer Viber sends."""
    return (200, ('{"status":0,"status_message":"ok","message_token":%d,"chat_hostname":"SN-CHAT-05_",'
                  '"billing_status":1}' % token).encode(), {"Content-Type": "application/json"})



by_ext = finder(gw, "vb")
send = sender(gw, "vb", f"viber:{USER}")

try:
    st, _ = post(fixture("viber", "text.json"))
    m = by_ext("4912661846655238145")
    check(st == 200 and m is not None, f"text stored under its exact 64-bit token: {st} {[x.get('external_id') for x in gw.list_all('vb')]}")
    if m:
        check(m["from"] == f"viber:{USER}" and m["text"] == "a message to the service", f"URN and text: {m}")
        check(m["sent_at"] == "2016-03-12T06:29:57.627Z", f"the callback's time: {m.get('sent_at')}")
        check(m["meta"]["contact_name"] == "John McClane" and m["meta"]["tracking_data"] == "tracking data"
              and m["meta"]["country"] == "UK", f"the sender's profile kept: {m['meta']}")
        check(m.get("contact_id") and m.get("conversation_id"), f"identified and threaded: {m}")
    n = len(gw.list_all("vb"))
    st, _ = post(fixture("viber", "text.json"))
    check(st == 200 and len(gw.list_all("vb")) == n, "a redelivery is stored once")

    body = fixture("viber", "subscribed.json")
    st, _ = post(body, sig=signature(body, "wrong"))
    check(st == 401 and len(gw.list_all("vb")) == n, f"wrong signature: 401, nothing stored: {st}")
    st, _ = post(body, sig=False)
    check(st == 401 and len(gw.list_all("vb")) == n, f"no signature: 401: {st}")
    st, _ = post(body + b"\n", sig=signature(body))
    check(st == 401 and len(gw.list_all("vb")) == n, f"a signature of other bytes: 401: {st}")
    st, _ = post(b'{"event": "message", ')
    check(st == 400, f"malformed: {st}")
    st, _ = post(b'{"timestamp": 1457764197627}')
    check(st == 400, f"no event: {st}")

    cases = (
            ("picture", "4912661846655238146", lambda m: m["attachments"][0]["kind"] == "image"
             and m["text"] == "영수증 사진" and m["attachments"][0]["name"] == "receipt.jpg"),
            ("video", "4912661846655238147", lambda m: m["attachments"][0]["content_type"] == "video/mp4"
             and m["attachments"][0]["duration_s"] == 10 and m["attachments"][0]["provider_size"] == 10000),
            ("file", "4912661846655238148", lambda m: m["attachments"][0]["name"] == "name_of_file.pdf"),
            ("sticker", "4912661846655238149", lambda m: m["meta"]["sticker_id"] == 46105
             and m["attachments"][0]["kind"] == "sticker"),
            ("contact", "4912661846655238150", lambda m: m["text"] == "Itamar, +972511123123"
             and m["meta"]["contacts"][0]["phone_number"] == "+972511123123"),
            ("url", "4912661846655238151", lambda m: m["text"] == "https://www.website.com/go_here"),
            ("location", "4912661846655238152", lambda m: m["meta"]["location"] == {"latitude": 50.76891,
                                                                                    "longitude": 6.11499}),
            ("unknown_message", "4912661846655238153", lambda m: m["kind"] == "message"
             and m["meta"]["raw"]["message"]["type"] == "rich_media"),
            ("subscribed", "subscribed:4912661846655238154", lambda m: m["kind"] == "event"
             and m["from"] == f"viber:{USER}" and m["meta"]["contact_name"] == "John McClane"),
            ("unsubscribed", "unsubscribed:4912661846655238155", lambda m: m["kind"] == "event"
             and m["from"] == f"viber:{USER}" and m["meta"]["event"] == "unsubscribed"),
            ("conversation_started", "conversation_started:4912661846655238156", lambda m: m["kind"] == "event"
             and m["meta"]["type"] == "open" and m["meta"]["context"] == "context information"
             and m["meta"]["subscribed"] is False),
            ("client_status", "client_status:4912661846655238157", lambda m: m["kind"] == "event"
             and m["meta"]["raw"]["status"] == "online"))
    check_cases(post, lambda name: local(name + ".json"), by_ext, cases)

    n = len(gw.list_all("vb"))
    off = log_size(gw)
    st, _ = post(fixture("viber", "webhook.json"))
    check(st == 200 and len(gw.list_all("vb")) == n, f"set_webhook's check: 200, nothing stored: {st}")
    check_logged_why(gw, off, "acknowledged, not stored", "set_webhook")

    for name, field in (("sender_not_id", b"sender.id"), ("token_fraction", b"message_token"),
                        ("timestamp_text", b"timestamp")):
        st, body = post(fixture("viber", name + ".json"))
        check(st == 400 and field in body and len(gw.list_all("vb")) == n,
              f"{name}: 400 naming {field.decode()}, nothing stored: {st} {body!r}")

    # Media: fetched after the commit from where the policy allows; never from an internal service or a
    # host that is not Viber's.
    photo = bytes(range(256)) * 64
    fake.script[("GET", "/media/receipt.jpg")] = [(200, photo, {"Content-Type": "image/jpeg"})]
    pic = json.loads(fixture("viber", "picture.json"))
    pic["message"]["media"] = f"{fake.url}/media/receipt.jpg"
    body = json.dumps(pic).replace('"message_token": 4912661846655238146', '"message_token": 4912661846655238200')
    st, _ = post(body.encode())
    att = fetched(by_ext, "4912661846655238200")
    check(st == 200 and att.get("sha256") == hashlib.sha256(photo).hexdigest(), f"a picture is kept: {att}")
    check(not fake.seen("GET", "/media/receipt.jpg")[0].headers.get("X-Viber-Auth-Token"),
          "media links get no auth token")
    before = wait_metric(gw, "media_refused_total", "vb", 0)
    for i, url in enumerate((f"{internal.url}/latest/meta-data/", "https://example.com/x.jpg")):
        pic["message"]["media"] = url
        body = json.dumps(pic).replace('"message_token": 4912661846655238146', f'"message_token": {4912661846655238201 + i}')
        st, _ = post(body.encode())
        check(st == 200, f"a picture with a forged link stored: {st}")
    refused = wait_metric(gw, "media_refused_total", "vb", before + 2)
    check(refused == before + 2, f"forged links refused by the policy: {refused}")
    check(internal.hits() == [], f"the internal service got nothing: {internal.hits()}")

    # Outbound: send_message, its 64-bit token as the external id; the receipts move the message's status.
    conv = by_ext("4912661846655238145")["conversation_id"]
    fake.script[("POST", SEND)] = [ok(5741311803571721087)]
    rc, r = gw.api("message.send", {"conversation_id": conv, "text": "주문이 확인되었습니다"})
    m = gw.wait_message(r.get("id"), "sent")
    reqs = fake.seen("POST", SEND)
    check(m.get("status") == "sent" and m.get("external_id") == "5741311803571721087", f"sent: {m}")
    check(reqs and reqs[0].json() == {"receiver": USER, "min_api_version": 1, "sender": {"name": "Parley Shop"},
                                      "type": "text", "text": "주문이 확인되었습니다"}, f"the documented body: {reqs and reqs[0].body}")
    check(reqs and reqs[0].headers.get("X-Viber-Auth-Token") == TOKEN, "send_message carries the auth token")
    first = r.get("id")
    for name, state in (("delivered", "delivered"), ("seen", "read")):
        st, _ = post(fixture("viber", name + ".json"))
        m = gw.wait_message(first, state)
        check(st == 200 and m.get("status") == state, f"{name} moves the message to {state}: {m}")
    fake.script[("POST", SEND)] = [ok(5741311803571721088)]
    second = send("두 번째")
    gw.wait_message(second, "sent")
    st, _ = post(fixture("viber", "failed.json").replace(b"5741311803571721087", b"5741311803571721088"))
    m = gw.wait_message(second, "failed")
    check(st == 200 and m.get("status") == "failed" and "failure description" in m.get("error", ""),
          f"failed receipt: {m}")

    # Viber's errors come as HTTP 200 with a status: tooManyRequests and unknown ones retried, the documented
    # others dead-lettered with their name; HTTP 5xx retried.
    for answers, want, says in (
            ([(200, {"status": 12, "status_message": "tooManyRequests"}), ok(5741311803571721089)], "sent", None),
            ([(200, {"status": 99, "status_message": "generalError"}), ok(5741311803571721090)], "sent", None),
            ([(500, "Internal Server Error"), ok(5741311803571721091)], "sent", None),
            ([(200, {"status": 6, "status_message": "receiverNotSubscribed"})], "failed", "receiverNotSubscribed"),
            ([(200, {"status": 2, "status_message": "invalidAuthToken"})], "failed", "invalidAuthToken")):
        fake.script[("POST", SEND)] = list(answers)
        k = len(fake.seen("POST", SEND))
        m = gw.wait_message(send("status check"), want)
        tries = len(fake.seen("POST", SEND)) - k
        check(m.get("status") == want and tries == len(answers) and (not says or says in m.get("error", "")),
              f"{answers[0][:2]}: {want} after {tries} requests: {m}")

    fake.script[("POST", SEND)] = [ok(5741311803571721092)]
    k = len(fake.seen("POST", SEND))
    gw.wait_message(send("영수증", attachments=[{"content_type": "image/jpeg", "url": "https://example.com/r.jpg"}],
                         meta={"buttons": [{"id": "yes", "title": "네"}, {"id": "no", "title": "아니요"}]}), "sent")
    gw.wait_message(send(attachments=[{"content_type": "application/pdf", "url": "https://example.com/a.pdf",
                                       "size": 2138, "name": "a.pdf"}]), "sent")
    gw.wait_message(send("계약서", attachments=[{"content_type": "application/pdf", "url": "https://example.com/a.pdf",
                                              "size": 2138, "name": "a.pdf"}]), "sent")
    gw.wait_message(send("두 장", attachments=[{"content_type": "image/jpeg", "url": "https://example.com/1.jpg"},
                                              {"content_type": "image/jpeg", "url": "https://example.com/2.jpg"}]), "sent")
    pic, doc, both, two = [r.json() for r in fake.seen("POST", SEND)[k:k + 4]]
    check(two["type"] == "text" and two["text"] == "두 장\nhttps://example.com/1.jpg\nhttps://example.com/2.jpg",
          f"several attachments: the text and their links: {two}")
    check(pic["type"] == "picture" and pic["text"] == "영수증" and pic["media"] == "https://example.com/r.jpg",
          f"a picture with its caption: {pic}")
    check(pic.get("keyboard", {}).get("Buttons") == [{"ActionType": "reply", "ActionBody": "yes", "Text": "네"},
                                                     {"ActionType": "reply", "ActionBody": "no", "Text": "아니요"}],
          f"buttons as a keyboard: {pic.get('keyboard')}")
    check(doc["type"] == "file" and doc["size"] == 2138 and doc["file_name"] == "a.pdf", f"a file: {doc}")
    check(both["type"] == "text" and both["text"] == "계약서\nhttps://example.com/a.pdf", f"text and a file's link: {both}")

    rc, r = gw.api("message.send", {"channel": "vb", "to": "viber:not a user", "text": "x"})
    m = gw.wait_message(r.get("id"), "failed")
    check(m.get("status") == "failed" and "viber:<user id>" in m.get("error", ""), f"a 'to' that is no Viber id: {m}")

    check_all_stored(gw, "vb")
finally:
    gw.cleanup()
    fake.close()
    internal.close()
done()
