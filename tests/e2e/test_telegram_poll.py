"""Telegram with mode: poll: getUpdates long-polling with the offset kept in the
channel's key-value state, advanced only after commit (a restart resumes there)."""
import json

from fakeprovider import FakeProvider
from envelopes import check_all_stored
from harness import Gateway, check, done, fixture

BOT = "42:poll-token"
fake = FakeProvider()
path = f"/bot{BOT}/getUpdates"
first = [json.loads(fixture("telegram", "text.json")), json.loads(fixture("telegram", "two_in_one_chat.json"))]
first[0]["update_id"], first[1]["update_id"] = 500, 501
fake.script[("GET", path)] = [(200, {"ok": True, "result": first}), (200, {"ok": True, "result": []})]
gw = Gateway(extra_channels=f"""  - name: tgp
    type: telegram
    config: {{ token: "{BOT}", mode: poll, poll_timeout: 1s, api_base_url: "{fake.url}" }}
""").start()
try:
    calls = fake.wait_for("GET", path, count=3)
    check(len(calls) >= 3, f"getUpdates is called in a loop: {len(calls)}")
    check(calls[0].query.get("offset") == "0" and calls[0].query.get("timeout") == "1", f"first call: {calls[0].query}")
    check(all(c.query.get("offset") == "502" for c in calls[1:]), f"then offset = last update_id + 1: {[c.query for c in calls]}")
    msgs = {m["external_id"]: m for m in gw.list_all("tgp")}
    check(set(msgs) == {"987654321:501", "987654321:512"}, f"both updates stored: {list(msgs)}")
    st, _ = gw.request("POST", "/webhooks/tgp", b"{}", {})
    check(st == 404, f"no webhook route in poll mode: {st}")

    check(gw.stop() == 0, "a long poll under way does not hold up shutdown")
    n = len(fake.seen("GET", path))
    gw.start()
    calls = fake.wait_for("GET", path, count=n + 1)
    check(calls[n].query.get("offset") == "502", f"after a restart the stored offset is used: {calls[n].query}")
    check(len(gw.list_all("tgp")) == 2, "nothing is stored twice")
    check_all_stored(gw, "tgp")
finally:
    gw.cleanup()
    fake.close()

# An update that cannot be stored is recorded as an event; the updates after it are not held up.
fake = FakeProvider()
raw = {700: '{"update_id":700,"message":{"message_id":1,"date":1700000000,"text":"bad\\u0000",'
            '"chat":{"id":1001,"type":"private"}}}',
       701: '{"update_id":701,"message":{"message_id":2,"date":1700000000,"text":"good",'
            '"chat":{"id":1001,"type":"private"}}}'}


def get_updates(req):
    """As the Bot API does: updates from offset on, at most limit of them."""
    ids = [u for u in sorted(raw) if u >= int(req.query.get("offset", "0"))][:int(req.query.get("limit", "100"))]
    return '{"ok":true,"result":[' + ",".join(raw[i] for i in ids) + "]}"


fake.script[("GET", path)] = [(200, get_updates, {"Content-Type": "application/json"})]
gw = Gateway(extra_channels=f"""  - name: tgp
    type: telegram
    config: {{ token: "{BOT}", mode: poll, poll_timeout: 1s, api_base_url: "{fake.url}" }}
""").start()
try:
    calls = fake.wait_for("GET", path, count=4)
    msgs = {m["external_id"]: m for m in gw.list_all("tgp")}
    check(msgs.get("1001:2", {}).get("text") == "good", f"the update after a refused one is stored: {list(msgs)}")
    ev = msgs.get("update:700", {})
    check(ev.get("kind") == "event" and "u0000" in ev.get("meta", {}).get("problem", ""),
          f"the refused update is recorded with its problem: {ev}")
    check(any(c.query.get("limit") == "1" for c in calls), "updates were asked for one at a time to find it")
    check(calls[-1].query.get("offset") == "702" and "limit" not in calls[-1].query,
          f"then polling goes on as before: {calls[-1].query}")
    check_all_stored(gw, "tgp")
finally:
    gw.cleanup()
    fake.close()
done()
