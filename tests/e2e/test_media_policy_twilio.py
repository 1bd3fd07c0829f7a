"""Twilio MMS under the media fetch policy: forged MediaUrlN values naming an internal
service, other schemes, other hosts or a redirect are stored but never fetched, and the
auth token goes to the REST API only; genuine media (served at api_base_url) still download."""
import base64
import hashlib
import hmac
import os
import time
import urllib.parse

from fakeprovider import FakeProvider
from harness import Gateway, check, done
from internalservice import InternalService, wait_metric

AC = "AC" + "5" * 32
TOKEN = "media-policy-auth-token"
PUBLIC = "https://parley.example.com"
fake = FakeProvider()
internal = InternalService()
gw = Gateway(http_extra=f"  public_url: {PUBLIC}\n",
             extra_channels=f"""  - name: sms
    type: twilio
    config:
      account_sid: {AC}
      auth_token: {TOKEN}
      from: "+14155550100"
      api_base_url: {fake.url}
""").start()
BASIC = base64.b64encode(f"{AC}:{TOKEN}".encode()).decode()


def post_mms(sid, urls):
    params = {"MessageSid": sid, "AccountSid": AC, "From": "+15551234567", "To": "+14155550100",
              "Body": "look", "NumMedia": str(len(urls))}
    for i, u in enumerate(urls):
        params[f"MediaUrl{i}"] = u
        params[f"MediaContentType{i}"] = "image/jpeg"
    data = PUBLIC + "/webhooks/sms" + "".join(k + v for k, v in sorted(params.items()))
    sig = base64.b64encode(hmac.new(TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
    st, body = gw.request("POST", "/webhooks/sms", urllib.parse.urlencode(params).encode(),
                          {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
    check(st == 200 and b"<Response>" in body, f"{sid} answered 200 with TwiML: {st} {body!r}")


def by_ext(ext):
    return {m.get("external_id"): m for m in gw.list_all("sms")}.get(ext)


try:
    media = f"/2010-04-01/Accounts/{AC}/Messages/MMforged/Media"
    fake.script[("GET", media + "/ME5")] = [(307, "", {"Location": internal.url + "/latest/meta-data/"})]
    fake.script[("GET", media + "/ME6")] = [(302, "", {"Location": f"https://127.0.0.1:{internal.port}/x"})]
    fake.script[("GET", media + "/ME7")] = [(302, "", {"Location": f"gopher://127.0.0.1:{internal.port}/_x"})]
    forged = [internal.url + media + "/ME0",
              f"gopher://127.0.0.1:{internal.port}/_AUTH%20x",
              "file:///etc/passwd",
              f"https://127.0.0.1:{internal.port}" + media + "/ME3",
              "https://api.twilio.com.example.org" + media + "/ME4",
              fake.url + media + "/ME5",
              fake.url + media + "/ME6",
              fake.url + media + "/ME7"]
    post_mms("MMforged", forged)
    refused = wait_metric(gw, "media_refused_total", "sms", len(forged))
    check(refused == len(forged), f"every forged MediaUrl refused and counted: {refused} of {len(forged)}")
    time.sleep(0.5)
    m = by_ext("MMforged")
    atts = (m or {}).get("attachments", [])
    check(m is not None and [a.get("url") for a in atts] == forged, f"stored with the original MediaUrls: {atts}")
    check(not any(a.get("sha256") or a.get("ref") for a in atts), f"nothing fetched: {atts}")
    check(internal.hits() == [], f"the internal service got nothing: {internal.hits()}")
    lines = [ln for ln in gw.read_log().splitlines() if "[channel sms]" in ln and "not fetched" in ln]
    check(len(lines) == len(forged), f"each refusal logged with the channel: {lines}")
    check(not any(TOKEN in ln for ln in lines), "no token in the log")

    # Genuine media at api_base_url still download with basic auth, through a redirect on the same origin.
    img = os.urandom(4000)
    good = f"/2010-04-01/Accounts/{AC}/Messages/MMgood/Media/ME0"
    fake.script[("GET", good)] = [(307, "", {"Location": "/cdn/MMgood-ME0.jpg"})]
    fake.script[("GET", "/cdn/MMgood-ME0.jpg")] = [(200, img, {"Content-Type": "image/jpeg"})]
    post_mms("MMgood", [fake.url + good])
    atts = []
    for _ in range(100):
        atts = (by_ext("MMgood") or {}).get("attachments", [])
        if atts and atts[0].get("sha256"):
            break
        time.sleep(0.1)
    check(atts and atts[0].get("sha256") == hashlib.sha256(img).hexdigest(), f"a genuine medium is kept: {atts}")
    got = fake.seen("GET", good) + fake.seen("GET", "/cdn/MMgood-ME0.jpg")
    check(len(got) == 2 and all(r.headers.get("Authorization") == "Basic " + BASIC for r in got),
          "the REST API's origin gets basic auth")
    check(internal.hits() == [], f"still nothing internal: {internal.hits()}")
finally:
    gw.cleanup()
    fake.close()
    internal.close()
done()
