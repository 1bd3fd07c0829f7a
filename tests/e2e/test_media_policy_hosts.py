"""A channel's media_hosts: checked by `parley check`, and a listed host that resolves to an
internal address is still refused where libcurl connects (what DNS rebinding would do),
so the internal service never even sees a connection."""
import hashlib
import hmac
import json
import shutil
import time

from fakeprovider import FakeProvider
from harness import Gateway, check, done
from internalservice import InternalService, wait_metric

SIGNING = "hosts-signing-secret"
BOT = "xoxb-hosts-bot-token"
fake = FakeProvider()
internal = InternalService()

bad = Gateway(extra_channels=f"""  - name: sl
    type: slack
    config:
      bot_token: "{BOT}"
      signing_secret: "{SIGNING}"
      media_hosts: ["https://media.example.com/files"]
""")
rc, out, err = bad.cli("check", "-c", bad.config)
check(rc != 0 and "parley.yaml:" in err + out and "media_hosts entry 'https://media.example.com/files'" in err + out,
      f"parley check names the bad media_hosts entry: {rc} {out} {err}")
shutil.rmtree(bad.dir, ignore_errors=True)  # never started: nothing to stop

gw = Gateway(extra_channels=f"""  - name: sl
    type: slack
    config:
      bot_token: "{BOT}"
      signing_secret: "{SIGNING}"
      api_base_url: "{fake.url}"
      media_hosts: ["localhost:{internal.port}", "*.localhost:{internal.port}"]
""").start()


def post_file(n, url):
    ts = f"1732269900.{n:06d}"
    body = json.dumps({"type": "event_callback", "team_id": "T1", "event_id": f"EvH{n}",
                       "event": {"type": "message", "subtype": "file_share", "channel": "D1", "user": "U1",
                                 "ts": ts, "files": [{"id": f"F{n}", "name": "x.png", "mimetype": "image/png",
                                                      "url_private_download": url}]}}).encode()
    now = str(int(time.time()))
    sig = "v0=" + hmac.new(SIGNING.encode(), b"v0:" + now.encode() + b":" + body, hashlib.sha256).hexdigest()
    st, _ = gw.request("POST", "/webhooks/sl", body, {"Content-Type": "application/json",
                                                       "X-Slack-Request-Timestamp": now, "X-Slack-Signature": sig})
    check(st == 200, f"{url} answered 200: {st}")
    return f"D1:{ts}"


def by_ext(ext):
    return {m.get("external_id"): m for m in gw.list_all("sl")}.get(ext)


try:
    urls = [f"https://localhost:{internal.port}/files-pri/T1-F1/x.png",
            f"https://files.localhost:{internal.port}/files-pri/T1-F2/x.png"]
    fake.script[("GET", "/files-pri/T1-F3/moved.png")] = [(302, "", {"Location": urls[0]})]
    urls.append(fake.url + "/files-pri/T1-F3/moved.png")
    exts = [post_file(i + 1, u) for i, u in enumerate(urls)]
    refused = wait_metric(gw, "media_refused_total", "sl", len(urls))
    check(refused == len(urls), f"listed hosts on loopback refused at connect: {refused} of {len(urls)}")
    time.sleep(0.5)
    for ext, url in zip(exts, urls):
        att = (by_ext(ext) or {}).get("attachments", [{}])[0]
        check(att.get("url") == url and not att.get("sha256"), f"{url}: stored, not fetched: {att}")
    check(internal.hits() == [], f"no connection reached the internal service: {internal.hits()}")
    lines = [ln for ln in gw.read_log().splitlines() if "[channel sl]" in ln and "not fetched" in ln]
    check(len(lines) == len(urls) and all("resolved to" in ln for ln in lines),
          f"refused for the address it resolved to: {lines}")
finally:
    gw.cleanup()
    fake.close()
    internal.close()
done()
