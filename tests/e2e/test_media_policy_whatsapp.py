"""WhatsApp media under the media fetch policy: a media id that is not digits never reaches
a Graph path, and a lookup answering an internal, non-https or redirecting URL is not
followed; the access token goes nowhere else; genuine media still download."""
import hashlib
import hmac
import json
import os
import time

from fakeprovider import FakeProvider
from harness import Gateway, check, done
from internalservice import InternalService, wait_metric

APP_SECRET = "wa-media-policy-secret"
TOKEN = "EAAG-media-policy-token"
PNID = "106540352242922"
fake = FakeProvider()
internal = InternalService()
gw = Gateway(extra_channels=f"""  - name: wa
    type: whatsapp
    config:
      phone_number_id: "{PNID}"
      access_token: {TOKEN}
      app_secret: {APP_SECRET}
      api_base_url: {fake.url}
      api_version: v19.0
""").start()


def post_image(wamid, media_id):
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
                  "messages": [{"from": "15551234567", "id": wamid, "timestamp": "1732269600", "type": "image",
                                "image": {"mime_type": "image/jpeg", "id": media_id}}]}}]}]}).encode()
    sig = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    st, _ = gw.request("POST", "/webhooks/wa", body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig})
    check(st == 200, f"{wamid} answered 200: {st}")


def lookup(media_id, url):
    fake.script[("GET", f"/v19.0/{media_id}")] = [(200, {"url": url, "mime_type": "image/jpeg", "id": media_id,
                                                          "messaging_product": "whatsapp"})]


def by_ext(ext):
    return {m.get("external_id"): m for m in gw.list_all("wa")}.get(ext)


try:
    lookup("1001", internal.url + "/whatsapp_business/attachments/?mid=1001")
    lookup("1002", f"gopher://127.0.0.1:{internal.port}/_x")
    lookup("1003", "file:///etc/passwd")
    lookup("1004", f"https://127.0.0.1:{internal.port}/x")
    lookup("1005", "https://lookaside.fbsbx.com.example.org/x")
    lookup("1006", fake.url + "/media/redirect")
    fake.script[("GET", "/media/redirect")] = [(302, "", {"Location": internal.url + "/redirected"})]
    cases = {"wamid.BAD1": "../../x?", "wamid.BAD2": "1234/../../x", "wamid.BAD3": "1001?fields=x",
             "wamid.F1": "1001", "wamid.F2": "1002", "wamid.F3": "1003", "wamid.F4": "1004",
             "wamid.F5": "1005", "wamid.F6": "1006"}
    for wamid, media_id in cases.items():
        post_image(wamid, media_id)
    refused = wait_metric(gw, "media_refused_total", "wa", len(cases))
    check(refused == len(cases), f"every forged reference refused and counted: {refused} of {len(cases)}")
    time.sleep(0.5)
    for wamid, media_id in cases.items():
        att = (by_ext(wamid) or {}).get("attachments", [{}])[0]
        check(att.get("provider_id") == media_id and not att.get("sha256") and not att.get("ref"),
              f"{wamid}: stored with its media id, nothing fetched: {att}")
    paths = sorted({r.path for r in fake.seen()})
    check(paths == ["/media/redirect"] + [f"/v19.0/100{i}" for i in range(1, 7)],
          f"only digit ids were looked up, no other Graph path: {paths}")
    check(internal.hits() == [], f"the internal service got nothing: {internal.hits()}")
    lines = [ln for ln in gw.read_log().splitlines() if "[channel wa]" in ln and "not fetched" in ln]
    check(sum("media id" in ln for ln in lines) == 3, f"bad ids logged with the reason: {lines}")
    check(not any(TOKEN in ln for ln in lines), "no token in the log")

    # Genuine media: the lookup's URL on api_base_url is fetched with the token.
    image = os.urandom(5000)
    lookup("2001", fake.url + "/media/lookaside/2001")
    fake.script[("GET", "/media/lookaside/2001")] = [(200, image, {"Content-Type": "image/jpeg"})]
    post_image("wamid.GOOD1", "2001")
    att = {}
    for _ in range(100):
        att = (by_ext("wamid.GOOD1") or {}).get("attachments", [{}])[0]
        if att.get("sha256"):
            break
        time.sleep(0.1)
    check(att.get("sha256") == hashlib.sha256(image).hexdigest(), f"genuine media kept: {att}")
    got = fake.seen("GET", "/media/lookaside/2001")
    check(got and got[0].headers.get("Authorization") == f"Bearer {TOKEN}", "the API's origin gets the token")
    check(internal.hits() == [], f"still nothing internal: {internal.hits()}")
finally:
    gw.cleanup()
    fake.close()
    internal.close()
done()
