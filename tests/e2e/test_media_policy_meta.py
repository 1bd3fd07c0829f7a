"""Messenger and Instagram attachments under the media fetch policy: forged payload.url
values naming an internal service, other schemes, other hosts or a redirect are stored but
never fetched; genuine attachments (served at api_base_url) still download."""
import hashlib
import hmac
import json
import os
import time

from fakeprovider import FakeProvider
from harness import Gateway, check, done
from internalservice import InternalService, wait_metric

SECRET = "meta-media-policy-secret"
PAGE, IG = "1234567890", "17841400000000000"
fake = FakeProvider()
internal = InternalService()
gw = Gateway(extra_channels=f"""  - name: fb
    type: messenger
    config: {{ page_id: "{PAGE}", access_token: PAGE-TOKEN, app_secret: {SECRET}, api_base_url: "{fake.url}" }}
  - name: ig
    type: instagram
    config: {{ page_id: "{IG}", access_token: IG-TOKEN, app_secret: {SECRET}, api_base_url: "{fake.url}" }}
""").start()


def post(channel, mid, urls):
    obj, page = ("page", PAGE) if channel == "fb" else ("instagram", IG)
    body = json.dumps({"object": obj, "entry": [{"id": page, "time": 1732269600123, "messaging": [{
        "sender": {"id": "24680135792468013"}, "recipient": {"id": page}, "timestamp": 1732269600123,
        "message": {"mid": mid, "attachments": [{"type": "image", "payload": {"url": u}} for u in urls]}}]}]}).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    st, _ = gw.request("POST", f"/webhooks/{channel}", body,
                       {"Content-Type": "application/json", "X-Hub-Signature-256": sig})
    check(st == 200, f"{channel} {mid} answered 200: {st}")


def by_ext(channel, ext):
    return {m.get("external_id"): m for m in gw.list_all(channel)}.get(ext)


try:
    fake.script[("GET", "/cdn/redirect.jpg")] = [(302, "", {"Location": internal.url + "/computeMetadata/v1/"})]
    forged = [internal.url + "/cdn/steal.jpg",
              f"gopher://127.0.0.1:{internal.port}/_x",
              "file:///etc/passwd",
              f"https://127.0.0.1:{internal.port}/cdn/x.jpg",
              "https://scontent.xx.fbcdn.net.example.org/x.jpg",
              fake.url + "/cdn/redirect.jpg"]
    for channel in ("fb", "ig"):
        post(channel, f"m_FORGED_{channel}", forged)
        refused = wait_metric(gw, "media_refused_total", channel, len(forged))
        check(refused == len(forged), f"{channel}: every forged URL refused and counted: {refused} of {len(forged)}")
        time.sleep(0.3)
        atts = (by_ext(channel, f"m_FORGED_{channel}") or {}).get("attachments", [])
        check([a.get("url") for a in atts] == forged, f"{channel}: stored with the original URLs: {atts}")
        check(not any(a.get("sha256") or a.get("ref") for a in atts), f"{channel}: nothing fetched: {atts}")
        lines = [ln for ln in gw.read_log().splitlines() if f"[channel {channel}]" in ln and "not fetched" in ln]
        check(len(lines) == len(forged), f"{channel}: each refusal logged with the channel: {lines}")
    check(internal.hits() == [], f"the internal service got nothing: {internal.hits()}")

    # Genuine attachments at api_base_url still download.
    for channel in ("fb", "ig"):
        blob = os.urandom(3000)
        fake.script[("GET", f"/cdn/good-{channel}.jpg")] = [(200, blob, {"Content-Type": "image/jpeg"})]
        post(channel, f"m_GOOD_{channel}", [fake.url + f"/cdn/good-{channel}.jpg"])
        atts = []
        for _ in range(100):
            atts = (by_ext(channel, f"m_GOOD_{channel}") or {}).get("attachments", [])
            if atts and atts[0].get("sha256"):
                break
            time.sleep(0.1)
        check(atts and atts[0]["sha256"] == hashlib.sha256(blob).hexdigest(), f"{channel}: genuine kept: {atts}")
    check(internal.hits() == [], f"still nothing internal: {internal.hits()}")
finally:
    gw.cleanup()
    fake.close()
    internal.close()
done()
