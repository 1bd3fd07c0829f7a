"""Telegram poll mode: one update the gateway refuses (here a text with \\u0000) stops every later
update from being stored, forever: the offset never moves past it.

Run from the source dir:  PARLEY_BIN=build/parley python3 tests/attack/attack_telegram_poll_poison.py
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from fakeprovider import FakeProvider  # noqa: E402
from harness import Gateway  # noqa: E402

BOT = "42:poll-token"
fake = FakeProvider()
path = f"/bot{BOT}/getUpdates"


def upd(uid, mid, text):
    return {"update_id": uid, "message": {"message_id": mid, "date": 1700000000, "text": text,
            "chat": {"id": 1001, "type": "private"}, "from": {"id": 1001, "is_bot": False, "first_name": "A"}}}


body = ('{"ok":true,"result":[' + '{"update_id":700,"message":{"message_id":1,"date":1700000000,'
        '"text":"bad\\u0000","chat":{"id":1001,"type":"private"}}},'
        '{"update_id":701,"message":{"message_id":2,"date":1700000000,"text":"good",'
        '"chat":{"id":1001,"type":"private"}}}]}')
fake.script[("GET", path)] = [(200, body, {"Content-Type": "application/json"})]
gw = Gateway(extra_channels=f"""  - name: tgp
    type: telegram
    config: {{ token: "{BOT}", mode: poll, poll_timeout: 1s, api_base_url: "{fake.url}" }}
""").start()
try:
    time.sleep(5)
    calls = fake.seen("GET", path)
    stored = [m.get("text") for m in gw.list_all("tgp")]
    offsets = sorted({c.query.get("offset") for c in calls})
    ok = "good" in stored
    print(("PASS" if ok else "FAIL") + f": {len(calls)} getUpdates calls, offsets asked {offsets}, stored {stored}")
finally:
    gw.cleanup()
    fake.close()
sys.exit(0 if ok else 1)
