"""WeChat Official Account channel: documented XML messages in (signature over the sorted token,
timestamp and nonce), answered "success" after the commit and stored once per MsgId; media fetched
by MediaId from the API; safe mode decrypted with the EncodingAESKey of WeChat's own sample (its
ciphertext included), appid checked; replies through the customer-service API, with the access
token fetched once, kept, and renewed when WeChat says it is invalid, and errcodes mapped to sent,
retry and dead letter (45015: outside the 48-hour window).  A local server plays the API."""
import base64
import hashlib
import json
import os
import struct
import time
import urllib.parse

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from envelopes import check_all_stored
from fakeprovider import FakeProvider
from harness import Gateway, check, done, fixture

TOKEN = "wx-server-token"
APPID, APPSECRET = "wx1234567890abcdef", "app-secret-0123456789"
OPENID = "oia2TjjewbmiOUlr6X-1crbLOvLw"
# WeChat's WXBizMsgCrypt sample.
S_KEY, S_TOKEN, S_APPID = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "pamtest", "wxb11529c136998cb6"
S_TS, S_NONCE = "1409304348", "xxxxxx"

api = FakeProvider()
tokens_issued = []


def issue_token(req):
    body = req.json()
    if body.get("appid") != APPID or body.get("secret") != APPSECRET:
        return {"errcode": 40013, "errmsg": "invalid appid"}
    tokens_issued.append(f"ACCESS_TOKEN_{len(tokens_issued) + 1}")
    return {"access_token": tokens_issued[-1], "expires_in": 7200}


def issue_plain_token(req):
    tokens_issued.append(f"PLAIN_TOKEN_{len(tokens_issued) + 1}")
    return {"access_token": tokens_issued[-1], "expires_in": 7200}


api.script[("POST", "/cgi-bin/stable_token")] = [(200, issue_token)]
api.script[("GET", "/cgi-bin/token")] = [(200, issue_plain_token)]
sends = []
send_answers = []  # errcodes to answer in order, then 0


def custom_send(req):
    sends.append((req.query.get("access_token"), req.json()))
    code = send_answers.pop(0) if send_answers else 0
    if code == "stale" :
        code = 40001 if req.query.get("access_token") == tokens_issued[0] else 0
    return {"errcode": code, "errmsg": "ok" if code == 0 else f"error {code}"}


api.script[("POST", "/cgi-bin/message/custom/send")] = [(200, custom_send)]
picture = os.urandom(20000)
api.script[("GET", "/cgi-bin/media/get")] = [(200, picture, {"Content-Type": "image/jpeg"})]

gw = Gateway(config_body="outbox:\n  backoff_base: 100ms\n  max_attempts: 3\n", extra_channels=f"""  - name: wx
    type: wechat
    config:
      app_id: {APPID}
      app_secret: {APPSECRET}
      token: {TOKEN}
      original_id: gh_7f083739789a
      api_base_url: {api.url}
  - name: wxd
    type: wechat
    config:
      app_id: wx2c2769f8efd9abc2
      app_secret: {APPSECRET}
      token: spamtest
      encoding_aes_key: {S_KEY}
      api_base_url: {api.url}
  - name: wxs
    type: wechat
    config:
      app_id: {S_APPID}
      app_secret: {APPSECRET}
      token: {S_TOKEN}
      encoding_aes_key: {S_KEY}
      token_endpoint: token
      api_base_url: {api.url}
""").start()


def signature(*parts):
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def post(channel, body, token=TOKEN, ts="1700000000", nonce="n0nce42", sig=None, extra=None):
    q = {"signature": sig or signature(token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": OPENID}
    q.update(extra or {})
    st, data = gw.request("POST", f"/webhooks/{channel}?" + urllib.parse.urlencode(q), body,
                          {"Content-Type": "text/xml"})
    return st, data


def by_ext(channel, ext):
    return {m.get("external_id"): m for m in gw.list_all(channel)}.get(ext)


def encrypt(plain, key=S_KEY, appid=S_APPID, rnd=None):
    k = base64.b64decode(key + "=")
    data = (rnd or os.urandom(16)) + struct.pack(">I", len(plain)) + plain + appid.encode()
    pad = 32 - len(data) % 32
    data += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(k), modes.CBC(k[:16])).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode()


def post_safe(inner_xml, ts=S_TS, nonce=S_NONCE, msig=None, encrypted=None):
    e = encrypted or encrypt(inner_xml)
    body = f"<xml><ToUserName><![CDATA[toUser]]></ToUserName><Encrypt><![CDATA[{e}]]></Encrypt></xml>".encode()
    return post("wxs", body, token=S_TOKEN, ts=ts, nonce=nonce,
                extra={"encrypt_type": "aes", "msg_signature": msig or signature(S_TOKEN, ts, nonce, e)})


def send(channel, text, **more):
    rc, r = gw.api("message.send", {"channel": channel, "to": f"wechat:{OPENID}", "text": text, **more})
    check(rc == 0, f"message.send: {r}")
    return r.get("id")


try:
    # URL verification: echostr back when the signature is right.
    q = urllib.parse.urlencode({"signature": signature(TOKEN, "1700000000", "abc"), "timestamp": "1700000000",
                                "nonce": "abc", "echostr": "5837397520565148738"})
    st, body = gw.request("GET", "/webhooks/wx?" + q)
    check(st == 200 and body == b"5837397520565148738", f"URL verification echoes echostr: {st} {body!r}")
    q = urllib.parse.urlencode({"signature": "0" * 40, "timestamp": "1700000000", "nonce": "abc", "echostr": "1"})
    st, _ = gw.request("GET", "/webhooks/wx?" + q)
    check(st == 401, f"a wrong signature is not echoed: {st}")

    st, body = post("wx", fixture("wechat", "text.xml"))
    m = by_ext("wx", "23637352235060880")
    check(st == 200 and body == b"success", f"answered success after the commit: {st} {body!r}")
    check(m and m["from"] == f"wechat:{OPENID}" and m["text"] == "你好，我的订单什么时候发货？" and
          m["to"] == "wechat:gh_7f083739789a" and m["sent_at"] == "2012-09-28T11:31:00.000Z", f"text stored: {m}")
    n = len(gw.list_all("wx"))
    st, _ = post("wx", fixture("wechat", "text.xml"), nonce="retry1")
    check(st == 200 and len(gw.list_all("wx")) == n, "WeChat's retry of the same MsgId is stored once")

    st, body = post("wx", fixture("wechat", "voice.xml"), sig="f" * 40)
    check(st == 401 and len(gw.list_all("wx")) == n, f"a bad signature is 401 and stores nothing: {st}")
    st, _ = gw.request("POST", "/webhooks/wx", fixture("wechat", "voice.xml"), {"Content-Type": "text/xml"})
    check(st == 401 and len(gw.list_all("wx")) == n, f"no signature: {st}")
    st, _ = post("wx", fixture("wechat", "voice.xml"), token="another-token")
    check(st == 401 and len(gw.list_all("wx")) == n, f"signed with another token: {st}")

    # Media: fetched by MediaId from the API (with the access token) after the commit.
    st, _ = post("wx", fixture("wechat", "image.xml"))
    att = {}
    for _ in range(50):
        att = (by_ext("wx", "23637352235060881") or {}).get("attachments", [{}])[0]
        if att.get("sha256"):
            break
        time.sleep(0.1)
    gets = api.seen("GET", "/cgi-bin/media/get")
    check(st == 200 and gets and gets[0].query.get("media_id") == "media_id_image-1" and
          gets[0].query.get("access_token") == "ACCESS_TOKEN_1", f"the image is fetched by MediaId: {gets}")
    check(att.get("sha256") == hashlib.sha256(picture).hexdigest() and att.get("kind") == "image",
          f"image kept: {att}")

    for name, ext, test in (
            ("voice", "23637352235060882", lambda m: m["text"] == "我要退货" and m["attachments"][0]["kind"] == "voice"),
            ("video", "23637352235060883", lambda m: m["attachments"][0]["provider_id"] == "media_id_video-1"),
            ("shortvideo", "23637352235060884", lambda m: m["attachments"][0]["kind"] == "video"),
            ("location", "23637352235060885", lambda m: m["meta"]["location"]["latitude"] == 23.134521 and
             m["text"] == "广州市天河区"),
            ("link", "23637352235060886", lambda m: m["meta"]["link"]["url"] == "https://mp.weixin.qq.com"),
            ("subscribe", f"event:{OPENID}:1348831860:subscribe", lambda m: m["kind"] == "event" and
             m["meta"]["event"] == "subscribe"),
            ("unsubscribe", f"event:{OPENID}:1348831870:unsubscribe", lambda m: m["kind"] == "event"),
            ("click", f"event:{OPENID}:1348831880:CLICK", lambda m: m["kind"] == "message" and
             m["text"] == "ORDER_STATUS" and m["meta"]["reply_id"] == "ORDER_STATUS"),
            ("location_event", f"event:{OPENID}:1348831890:LOCATION", lambda m: m["kind"] == "event" and
             m["meta"]["raw"]["Latitude"] == "23.137466"),
    ):
        st, body = post("wx", fixture("wechat", f"{name}.xml"))
        m = by_ext("wx", ext)
        ok = False
        try:
            ok = bool(m) and test(m)
        except (KeyError, IndexError, TypeError):
            pass
        check(st == 200 and ok, f"{name}: {st} {body!r} {m}")

    n = len(gw.list_all("wx"))
    st, body = post("wx", fixture("wechat", "other_account.xml"))
    check(st == 200 and body == b"success" and len(gw.list_all("wx")) == n,
          f"another account's message is acknowledged, not stored: {st}")
    for name, want in (("from_invalid", b"FromUserName"), ("time_invalid", b"CreateTime"),
                       ("doctype", b"DOCTYPE")):
        st, body = post("wx", fixture("wechat", f"{name}.xml"))
        check(st == 400 and want in body, f"{name}: 400 naming it: {st} {body!r}")
    st, body = post("wx", b"<xml><MsgType>text</MsgType")
    check(st == 400, f"not XML: {st}")
    text = fixture("wechat", "text.xml")
    for what, bad in (("not UTF-8", text.replace("你好".encode(), b"\xff\xfe")),
                      ("a NUL", text.replace("<![CDATA[你好".encode(), b"&#0;<![CDATA[")),
                      ("an OpenID over 64 bytes", text.replace(OPENID.encode(), b"o" * 65))):
        st, body = post("wx", bad)
        check(st == 400, f"{what}: 400: {st} {body!r}")
    check(len(gw.list_all("wx")) == n, "nothing of the refused messages is stored")

    # Replies: the customer-service API with the access token, fetched once and kept.
    mid = send("wx", "明天发货。")
    m = gw.wait_message(mid, "sent")
    check(m.get("status") == "sent" and sends and sends[-1][1] == {"touser": OPENID, "msgtype": "text",
                                                                   "text": {"content": "明天发货。"}},
          f"sent as a text customer-service message: {m} {sends[-1:]}")
    mid = send("wx", "请选择：", meta={"buttons": [{"id": "yes", "title": "满意"}, {"id": "no", "title": "不满意"}]})
    m = gw.wait_message(mid, "sent")
    menu = sends[-1][1].get("msgmenu", {}) if sends else {}
    check(m.get("status") == "sent" and menu.get("head_content") == "请选择：" and
          menu.get("list") == [{"id": "yes", "content": "满意"}, {"id": "no", "content": "不满意"}],
          f"buttons become a msgmenu: {sends[-1:]}")
    check(len(tokens_issued) == 1 and all(s[0] == "ACCESS_TOKEN_1" for s in sends),
          f"one access token for the media and every send: {tokens_issued}")

    # A token WeChat calls invalid is renewed and the message sent with the new one.
    send_answers[:] = ["stale"]
    mid = send("wx", "token test")
    m = gw.wait_message(mid, "sent")
    check(m.get("status") == "sent" and len(tokens_issued) == 2 and sends[-1][0] == "ACCESS_TOKEN_2",
          f"40001: a new token, then sent: {m} {tokens_issued} {[s[0] for s in sends[-2:]]}")
    # System busy: retried.
    send_answers[:] = [-1]
    mid = send("wx", "busy test")
    m = gw.wait_message(mid, "sent")
    check(m.get("status") == "sent" and m.get("attempts", 0) >= 2, f"-1 is retried: {m}")
    # Outside the 48-hour window: a dead letter saying so.
    send_answers[:] = [45015]
    mid = send("wx", "too late")
    m = gw.wait_message(mid, "failed")
    check(m.get("status") == "failed" and "48-hour" in (m.get("error") or "") and m.get("attempts") == 1,
          f"45015 is a dead letter with the reason: {m}")
    send_answers[:] = [40003]
    mid = send("wx", "bad openid")
    m = gw.wait_message(mid, "failed")
    check(m.get("status") == "failed" and "40003" in (m.get("error") or ""), f"other errcodes: dead letter: {m}")

    # Safe mode: the test's encryption is WeChat's (the sample's ciphertext), then a round trip.
    check(encrypt("我是中文abcd123".encode(), rnd=b"aaaabbbbccccdddd") ==
          "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==",
          "the test encrypts as WeChat's sample does")
    st, body = post_safe(fixture("wechat", "text.xml"))
    m = by_ext("wxs", "23637352235060880")
    check(st == 200 and body == b"success" and m and m["text"] == "你好，我的订单什么时候发货？",
          f"an encrypted message is decrypted and stored: {st} {body!r} {m}")
    st, _ = post_safe(None, encrypted=fixture("wechat", "sample_encrypt.txt").decode())
    sample = [x for x in gw.list_all("wxs") if x.get("from") == "wechat:gh_7f083739789a"]
    check(st == 200 and sample and sample[0]["meta"]["raw"]["Video"]["MediaId"] ==
          "eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0",
          f"WeChat's sample ciphertext decrypts (kept whole: a reply's shape): {st} {sample}")
    # WeChat's sample inbound message, with its own msg_signature, as it comes in compatible mode.
    st, body = post("wxd", fixture("wechat", "sample_compatible.xml"), token="spamtest", ts="1409735669",
                    nonce="1320562132", extra={"encrypt_type": "aes",
                                               "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa"})
    m = by_ext("wxd", "6054768590064713728")
    check(st == 200 and m and m["text"] == "abcdteT" and m["from"] == "wechat:oyORnuP8q7ou2gfYjqLzSIWZf0rs",
          f"WeChat's sample message, its signature and ciphertext, is taken: {st} {body!r} {m}")
    forged = fixture("wechat", "sample_compatible.xml").replace(b"abcdteT", b"forged!").replace(
        b"<MsgId>6054768590064713728", b"<MsgId>1")
    st, body = post("wxd", forged,
                    token="spamtest", ts="1409735669", nonce="1320562132",
                    extra={"encrypt_type": "aes", "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa"})
    check(st == 200 and not any(x.get("text") == "forged!" for x in gw.list_all("wxd")),
          "in compatible mode the encrypted copy is the one believed, not the plain fields")
    n = len(gw.list_all("wxs"))
    st, body = post_safe(fixture("wechat", "voice.xml"), msig="0" * 40)
    check(st == 401 and len(gw.list_all("wxs")) == n, f"a bad msg_signature is 401, nothing stored: {st} {body!r}")
    e = encrypt(fixture("wechat", "voice.xml"), appid="wx0000000000000000")
    st, body = post_safe(None, encrypted=e)
    check(st == 401 and b"appid" in body and len(gw.list_all("wxs")) == n, f"another appid: 401: {st} {body!r}")
    st, body = post("wxs", fixture("wechat", "voice.xml"), token=S_TOKEN)
    check(st == 400 and b"Encrypt" in body and len(gw.list_all("wxs")) == n,
          f"a plain message to a safe-mode channel: 400: {st} {body!r}")
    st, body = post("wx", b"<xml><ToUserName>gh_7f083739789a</ToUserName><Encrypt>abcd</Encrypt></xml>")
    check(st == 400 and b"encoding_aes_key" in body, f"an encrypted message to a plain channel: {st} {body!r}")

    # /cgi-bin/token (token_endpoint: token) for the safe-mode channel's sends.
    mid = send("wxs", "safe reply")
    m = gw.wait_message(mid, "sent")
    plain = api.seen("GET", "/cgi-bin/token")
    check(m.get("status") == "sent" and plain and plain[0].query.get("appid") == S_APPID and
          plain[0].query.get("grant_type") == "client_credential", f"token from /cgi-bin/token: {m}")

    check_all_stored(gw, "wx", "wxs", "wxd")
finally:
    gw.cleanup()
    api.close()
done()
