"""Telegram files under the media fetch policy: a file_id outside [A-Za-z0-9_-] is never
sent to getFile, and a getFile file_path with '..', '?', '#', '%' or a leading '/' is never
appended to the token's file URL; genuine files still download."""
import hashlib
import json
import os
import time

from fakeprovider import FakeProvider
from harness import Gateway, check, done
from internalservice import InternalService, wait_metric

BOT = "123456:media-policy-bot-token"
SECRET = "tg-media-policy-secret"
fake = FakeProvider()
internal = InternalService()
gw = Gateway(extra_channels=f"""  - name: tg
    type: telegram
    config:
      token: "{BOT}"
      secret_token: {SECRET}
      api_base_url: {fake.url}
""").start()

# file_id -> the file_path getFile answers.
paths = {"good-1": "documents/file_1.pdf", "dots-1": "documents/../../x", "dots-2": "../getMe",
         "abs-1": "/etc/passwd", "query-1": "documents/file_2.pdf?x=1", "frag-1": "documents/file_3.pdf#x",
         "pct-1": "documents/%2e%2e/%2e%2e/x", "url-1": f"http://127.0.0.1:{internal.port}/x"}
fake.script[("GET", f"/bot{BOT}/getFile")] = [(200, lambda req: {"ok": True, "result": {
    "file_id": req.query["file_id"], "file_unique_id": "u", "file_path": paths.get(req.query["file_id"], "x/y")}})]


def post_document(n, file_id):
    body = json.dumps({"update_id": 200000 + n, "message": {
        "message_id": 900 + n, "date": 1732269600, "from": {"id": 987654321, "is_bot": False, "first_name": "A"},
        "chat": {"id": 987654321, "type": "private"},
        "document": {"file_id": file_id, "file_unique_id": f"u{n}", "file_name": f"f{n}.pdf",
                     "mime_type": "application/pdf"}}}).encode()
    st, _ = gw.request("POST", "/webhooks/tg", body, {"Content-Type": "application/json",
                                                       "X-Telegram-Bot-Api-Secret-Token": SECRET})
    check(st == 200, f"document {file_id!r} answered 200: {st}")
    return f"987654321:{900 + n}"


def by_ext(ext):
    return {m.get("external_id"): m for m in gw.list_all("tg")}.get(ext)


try:
    forged = ["abc/../../x", "abc?x=1", "a b", "dots-1", "dots-2", "abs-1", "query-1", "frag-1", "pct-1", "url-1"]
    exts = {fid: post_document(i + 1, fid) for i, fid in enumerate(forged)}
    refused = wait_metric(gw, "media_refused_total", "tg", len(forged))
    check(refused == len(forged), f"every forged reference refused and counted: {refused} of {len(forged)}")
    time.sleep(0.5)
    for fid, ext in exts.items():
        att = (by_ext(ext) or {}).get("attachments", [{}])[0]
        check(att.get("provider_id") == fid and not att.get("sha256") and not att.get("ref"),
              f"{fid!r}: stored with its file_id, nothing fetched: {att}")
    asked = sorted(r.query.get("file_id") for r in fake.seen("GET", f"/bot{BOT}/getFile"))
    check(asked == sorted(forged[3:]), f"getFile only for well-formed file_ids: {asked}")
    others = [r.path for r in fake.seen() if r.path != f"/bot{BOT}/getFile"]
    check(others == [], f"no file URL built from a forged file_path: {others}")
    lines = [ln for ln in gw.read_log().splitlines() if "[channel tg]" in ln and "not fetched" in ln]
    check(len(lines) == len(forged) and not any(BOT in ln for ln in lines),
          f"each refusal logged with the channel and without the token: {lines}")

    # A genuine file still downloads from the Bot API's file URL.
    pdf = os.urandom(4000)
    fake.script[("GET", f"/file/bot{BOT}/documents/file_1.pdf")] = [(200, pdf, {"Content-Type": "application/pdf"})]
    ext = post_document(50, "good-1")
    att = {}
    for _ in range(100):
        att = (by_ext(ext) or {}).get("attachments", [{}])[0]
        if att.get("sha256"):
            break
        time.sleep(0.1)
    check(att.get("sha256") == hashlib.sha256(pdf).hexdigest(), f"a genuine file is kept: {att}")
    check(internal.hits() == [], f"the internal service got nothing: {internal.hits()}")
finally:
    gw.cleanup()
    fake.close()
    internal.close()
done()
