"""Slack channel: Events API payloads signed with v0 signatures in (old timestamps refused),
chat.postMessage out, against a local server playing the Web API."""
import hashlib
import hmac
import json
import os
import time
import urllib.parse

from fakeprovider import FakeProvider
from envelopes import check_all_stored, check_logged_why, log_size
from harness import Gateway, check, done, fixture

SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
BOT = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
fake = FakeProvider()
gw = Gateway(config_body="outbox:\n  backoff_base: 100ms\n  max_attempts: 4\n",
             extra_channels=f"""  - name: sl
    type: slack
    config: {{ bot_token: "{BOT}", signing_secret: "{SIGNING}", api_base_url: "{fake.url}" }}
""").start()


def post(body, path="/webhooks/sl", ts=None, secret=SIGNING, ctype="application/json"):
    ts = str(int(time.time()) if ts is None else ts)
    sig = "v0=" + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return gw.request("POST", path, body, {"Content-Type": ctype, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})


def fx(name):
    return fixture("slack", name + ".json").replace(b"MEDIA_BASE", fake.url.encode())


def by_ext(ext):
    return {m.get("external_id"): m for m in gw.list_all("sl")}.get(ext)


try:
    st, body = post(fx("url_verification"))
    check(st == 200 and body == b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", f"url_verification: {st} {body!r}")
    st, _ = post(fx("text"))
    m = by_ext("D024BE91L:1732269600.000200")
    check(st == 200 and m and m["from"] == "slack:T061EG9R6/U2147483697" and m["text"] == "Is the API down?", f"text: {m}")
    check(m and m["meta"].get("event_id") == "Ev08MFMKH6", f"Slack's event_id kept in meta: {m and m.get('meta')}")
    check(m and m["sent_at"] == "2024-11-22T10:00:00.000Z", f"time from ts: {m and m.get('sent_at')}")
    n = len(gw.list_all("sl"))
    st, _ = post(fx("text"))
    check(st == 200 and len(gw.list_all("sl")) == n, "a retried event is stored once")
    st, _ = post(fx("thread_reply"), ts=int(time.time()) - 301)
    check(st == 401 and len(gw.list_all("sl")) == n, f"a timestamp over 5 minutes old is refused: {st}")
    st, _ = post(fx("thread_reply"), secret="not-the-secret")
    check(st == 401 and len(gw.list_all("sl")) == n, f"a bad signature is refused: {st}")
    st, _ = gw.request("POST", "/webhooks/sl", fx("thread_reply"), {"Content-Type": "application/json"})
    check(st == 401, f"no signature: {st}")
    st, _ = post(b'{"type": "event_callback", "event": ')
    check(st == 400, f"malformed: {st}")

    png = os.urandom(4000)
    fake.script[("GET", "/files-pri/T061EG9R6-F0S43PZDF/download/error.png")] = [(200, png, {"Content-Type": "image/png"})]
    st, _ = post(fx("file"))
    atts = []
    for _ in range(50):
        atts = (by_ext("D024BE91L:1732269800.000400") or {}).get("attachments", [])
        if atts and atts[0].get("sha256"):
            break
        time.sleep(0.1)
    check(atts and atts[0]["sha256"] == hashlib.sha256(png).hexdigest() and atts[0]["name"] == "error.png", f"file kept: {atts}")
    got = fake.seen("GET", "/files-pri/T061EG9R6-F0S43PZDF/download/error.png")
    check(got and got[0].headers.get("Authorization") == f"Bearer {BOT}", "files fetched with the bot token")

    for name, ext, test in (
            ("thread_reply", "D024BE91L:1732269700.000300", lambda m: m["thread_ref"] == "D024BE91L:1732269600.000200"),
            ("edited", "D024BE91L:1732269600.000200:edit:1732269900.000500",
             lambda m: m["kind"] == "event" and m["meta"]["edited"] and m["text"].endswith("(eu-west)")),
            ("deleted", "D024BE91L:1732269700.000300:deleted:1732270000.000600",
             lambda m: m["kind"] == "event" and m["meta"]["deleted"] and m["thread_ref"] == "D024BE91L:1732269700.000300"),
            ("app_mention", "C2147483705:1732270200.000800", lambda m: m["text"] == "<@U0BOTUSER> help"),
            ("reaction", "event:Ev08MFMKHD", lambda m: m["kind"] == "event" and m["text"] == "thumbsup")):
        st, _ = post(fx(name))
        m = by_ext(ext)
        try:
            ok = st == 200 and m is not None and test(m)
        except (KeyError, TypeError):
            ok = False
        check(ok, f"{name}: {st} {m}")
    at = log_size(gw)
    st, _ = post(fx("bot_echo"))
    check(st == 200 and not by_ext("D024BE91L:1732270100.000700"), "our bot's own messages are skipped")
    check_logged_why(gw, at, "[channel sl]", "not stored", "bot")

    # Fidelity (issue 12): file events kept, senders and times checked, nothing acknowledged in silence.
    at = log_size(gw)
    st, _ = post(fx("file_shared"))
    m = by_ext("event:Ev08MFMKHF")
    check(st == 200 and m and m["kind"] == "event" and m.get("from") == "slack:T061EG9R6/U2147483697"
          and m["meta"]["raw"]["file_id"] == "F2147483862" and m["meta"]["event_id"] == "Ev08MFMKHF",
          f"file_shared kept with its raw event: {st} {m}")
    check_logged_why(gw, at, "Ev08MFMKHF", "meta.raw")
    st, _ = post(fx("file_check_info"))
    m = by_ext("D024BE91L:1732270600.001200")
    check(st == 200 and m and m["attachments"][0].get("provider_id") == "F0S43Q0AB", f"a check_file_info file kept: {m}")
    for name, field in (("user_not_id", b"event.user"), ("ts_not_number", b"event.ts"), ("no_ts", b"event.ts")):
        n0 = len(gw.list_all("sl"))
        st, body = post(fx(name))
        check(st == 400 and field in body and len(gw.list_all("sl")) == n0, f"{name}: 400 naming {field}: {st} {body!r}")
    at = log_size(gw)
    st, _ = post(fx("app_rate_limited"))
    check(st == 200, f"app_rate_limited acknowledged: {st}")
    check_logged_why(gw, at, "[channel sl]", "not stored", "app_rate_limited")

    form = urllib.parse.urlencode({"payload": fixture("slack", "block_actions.json").decode()}).encode()
    st, _ = post(form, path="/webhooks/sl/interactive", ctype="application/x-www-form-urlencoded")
    m = by_ext("action:1732270560.001200:yes")
    check(st == 200 and m and m["text"] == "Yes" and m["meta"]["reply_id"] == "yes", f"button answer: {st} {m}")
    at = log_size(gw)
    form = urllib.parse.urlencode({"payload": json.dumps({"type": "view_submission", "team": {"id": "T061EG9R6"},
                                                          "user": {"id": "U2147483697"}, "view": {"id": "V0PKB1ZFV"}})}).encode()
    st, _ = post(form, path="/webhooks/sl/interactive", ctype="application/x-www-form-urlencoded")
    check(st == 200, f"a view_submission is acknowledged: {st}")
    check_logged_why(gw, at, "[channel sl]", "not stored", "view_submission")

    # Outbound: chat.postMessage; HTTP 429 with Retry-After; ok:false errors.
    path = "/api/chat.postMessage"
    fake.script[("POST", path)] = [(500, "upstream error"),
                                   (200, {"ok": True, "channel": "D024BE91L", "ts": "1732271000.001300",
                                          "message": {"text": "Looking into it"}})]
    rc, out, err = gw.cli("send", "-c", gw.config, "--channel", "sl", "--to", "slack:T061EG9R6/U2147483697", "--text", "Looking into it")
    mid = json.loads(out)["id"]
    m = gw.wait_message(mid, "sent")
    reqs = fake.seen("POST", path)
    check(m.get("status") == "sent" and len(reqs) == 2 and m.get("external_id") == "D024BE91L:1732271000.001300", f"sent once: {m}")
    if reqs:
        check(reqs[-1].json() == {"channel": "U2147483697", "text": "Looking into it"}, f"body: {reqs[-1].body!r}")
        check(reqs[-1].headers.get("Authorization") == f"Bearer {BOT}", "bot token")

    fake.script[("POST", path)] = [(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}),
                                   (200, {"ok": True, "channel": "D024BE91L", "ts": "1732271100.001400"})]
    rc, r = gw.api("message.send", {"channel": "sl", "to": "slack:T061EG9R6/U2147483697", "text": "Helpful?",
                                    "thread_ref": "D024BE91L:1732269600.000200",
                                    "meta": {"buttons": [{"id": "yes", "title": "Yes"}]}})
    m = gw.wait_message(r["id"], "sent")
    reqs = fake.seen("POST", path)[-2:]
    check(m.get("status") == "sent" and reqs[1].at - reqs[0].at >= 0.9, "HTTP 429 Retry-After honoured")
    blocks = reqs[-1].json().get("blocks", [])
    check(blocks and blocks[-1]["type"] == "actions" and blocks[-1]["elements"][0]["value"] == "yes", f"buttons: {blocks}")
    check(reqs[-1].json().get("thread_ts") == "1732269600.000200", "a reply goes into the thread named by thread_ref")

    fake.script[("POST", path)] = [(200, {"ok": False, "error": "channel_not_found"})]
    rc, out, err = gw.cli("send", "-c", gw.config, "--channel", "sl", "--to", "slack:T061EG9R6/C000000", "--text", "x")
    m = gw.wait_message(json.loads(out)["id"], "failed")
    check(m.get("status") == "failed" and "channel_not_found" in m.get("error", ""), f"ok:false dead-lettered: {m}")
    check_all_stored(gw, "sl")
finally:
    gw.cleanup()
    fake.close()
done()
