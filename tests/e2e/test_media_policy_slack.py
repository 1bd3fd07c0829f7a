"""Slack files under the media fetch policy: forged url_private values naming an internal
service, other schemes, other hosts or a redirect are stored but never fetched, and the bot
token goes nowhere but the Web API; genuine files (served at api_base_url) still download."""
import hashlib
import hmac
import json
import os
import time

from fakeprovider import FakeProvider
from harness import Gateway, check, done
from internalservice import InternalService, wait_metric

SIGNING = "media-policy-signing-secret"
BOT = "xoxb-media-policy-bot-token"
fake = FakeProvider()
internal = InternalService()
gw = Gateway(extra_channels=f"""  - name: sl
    type: slack
    config:
      bot_token: "{BOT}"
      signing_secret: "{SIGNING}"
      api_base_url: "{fake.url}"
""").start()


def post_file(n, url):
    """A signed file_share message whose file's url_private_download is url; its external id."""
    ts = f"1732269800.{n:06d}"
    body = json.dumps({"type": "event_callback", "team_id": "T061EG9R6", "event_id": f"EvMP{n}",
                       "event": {"type": "message", "subtype": "file_share", "channel": "D024BE91L",
                                 "user": "U2147483697", "text": f"file {n}", "ts": ts,
                                 "files": [{"id": f"F{n}", "name": f"f{n}.png", "mimetype": "image/png",
                                            "size": 100, "url_private": url, "url_private_download": url}]}}).encode()
    now = str(int(time.time()))
    sig = "v0=" + hmac.new(SIGNING.encode(), b"v0:" + now.encode() + b":" + body, hashlib.sha256).hexdigest()
    st, _ = gw.request("POST", "/webhooks/sl", body, {"Content-Type": "application/json",
                                                       "X-Slack-Request-Timestamp": now, "X-Slack-Signature": sig})
    check(st == 200, f"file {n} ({url}) answered 200: {st}")
    return f"D024BE91L:{ts}"


def by_ext(ext):
    return {m.get("external_id"): m for m in gw.list_all("sl")}.get(ext)


try:
    fake.script[("GET", "/files-pri/T1-F9/redirect.png")] = [(302, "", {"Location": internal.url + "/stolen.png"})]
    fake.script[("GET", "/files-pri/T1-F8/loop.png")] = [(302, "", {"Location": "/files-pri/T1-F8/loop.png"})]
    forged = [internal.url + "/files-pri/T1-F1/steal.png",
              f"gopher://127.0.0.1:{internal.port}/_GET%20/%20HTTP/1.0%0D%0A%0D%0A",
              "file:///etc/passwd",
              f"https://127.0.0.1:{internal.port}/files-pri/T1-F4/x.png",
              "https://files.slack.com.example.org/files-pri/T1-F5/x.png",
              fake.url + "/files-pri/T1-F9/redirect.png",
              fake.url + "/files-pri/T1-F8/loop.png"]
    exts = [post_file(i + 1, url) for i, url in enumerate(forged)]
    refused = wait_metric(gw, "media_refused_total", "sl", len(forged))
    check(refused == len(forged), f"every forged reference refused and counted: {refused} of {len(forged)}")
    time.sleep(0.5)
    for ext, url in zip(exts, forged):
        m = by_ext(ext)
        att = (m or {}).get("attachments", [{}])[0]
        check(m is not None and att.get("url") == url and not att.get("sha256") and not att.get("ref"),
              f"{url}: message stored with its original reference, nothing fetched: {att}")
    check(internal.hits() == [], f"the internal service got nothing: {internal.hits()}")
    check(len(fake.seen("GET", "/files-pri/T1-F9/redirect.png")) == 1, "the redirect to the internal service is not followed")
    check(len(fake.seen("GET", "/files-pri/T1-F8/loop.png")) == 4, "a redirect loop stops after 3 redirects")
    check(not [r for r in fake.seen() if r.path not in ("/files-pri/T1-F9/redirect.png", "/files-pri/T1-F8/loop.png")],
          f"no other request to the fake provider: {[r.path for r in fake.seen()]}")
    lines = [ln for ln in gw.read_log().splitlines() if "[channel sl]" in ln and "not fetched" in ln]
    for reason in ("scheme 'gopher'", "scheme 'file'", "plain http", "not a media host", "redirect 1",
                   "more than 3 redirects"):
        check(any(reason in ln for ln in lines), f"the refusal is logged with the channel and its reason ({reason})")
    check(not any(BOT in ln for ln in lines), "no token in the log")

    # Genuine files at api_base_url still download, following a redirect on the same origin, with the token.
    png = os.urandom(3000)
    fake.script[("GET", "/files-pri/T1-F20/moved.png")] = [(302, "", {"Location": "/files-pri/T1-F20/real.png"})]
    fake.script[("GET", "/files-pri/T1-F20/real.png")] = [(200, png, {"Content-Type": "image/png"})]
    ext = post_file(20, fake.url + "/files-pri/T1-F20/moved.png")
    att = {}
    for _ in range(100):
        att = (by_ext(ext) or {}).get("attachments", [{}])[0]
        if att.get("sha256"):
            break
        time.sleep(0.1)
    check(att.get("sha256") == hashlib.sha256(png).hexdigest(), f"a genuine file is kept: {att}")
    got = fake.seen("GET", "/files-pri/T1-F20/real.png")
    check(got and got[0].headers.get("Authorization") == f"Bearer {BOT}", "the API's own origin gets the bot token")
    check(internal.hits() == [], f"still nothing internal: {internal.hits()}")
finally:
    gw.cleanup()
    fake.close()
    internal.close()
done()
