"""The host checks every field a plugin sets against sdk/envelope-v1.schema.json (issue 17).

A test channel (tests/plugins/field_setter.c) sets the field each request names, as a
plugin with a bug would, and submits whatever the setter answered.  A refused field is
PARLEY_EINVAL (-1) from the setter, a log line naming the channel, its plugin, the field
and why, and a refused submit: nothing is stored, nothing reaches a subscriber.  A valid
value of the same fields is stored, and the stored envelopes validate."""
import json
import os
import sqlite3
import tempfile

from envelopes import check_all_stored, check_logged_why, log_size
from harness import Gateway, check, done, stored_envelope_errors
from subscribers import read_until, subscribe

plugins = os.environ["PARLEY_TEST_PLUGINS"]
gw = Gateway(config_body=f"plugins:\n  path: [{plugins}]\n",
             extra_channels="  - name: buggy\n    type: field_setter\n").start()

EINVAL = -1
BAD = [
    ("sent_at", {"value": "last tuesday"}, "not an RFC 3339 time"),
    ("sent_at", {"value": "2026-02-30T10:00:00Z"}, "not an RFC 3339 time"),
    ("from", {"value": "not a urn"}, "not a URN"),
    ("to", {"value": "Tel:+15550000001"}, "not a URN"),
    ("kind", {"value": "memo"}, "not message, status or event"),
    ("direction", {"value": "sideways"}, "not inbound or outbound"),
    ("status", {"value": "lost"}, "not one of queued"),
    ("colour", {"value": "blue"}, "not an envelope field"),
    ("meta", {"value": "a string"}, "set it with envelope_set_json"),
    ("attachments", {"json": [{"url": "https://example.org/a.png", "size": "big"}]}, "attachments[0].size"),
    ("attachments", {"json": [{"sha256": "ABC"}]}, "attachments[0].sha256"),
    ("labels", {"json": ["vip", 7]}, "labels[1]"),
    ("meta", {"json": ["not", "an", "object"]}, "must be a JSON object"),
    ("text", {"json": {"not": "a string"}}, "must be a string"),
    ("received_at", {}, "cannot be removed"),
]


def post(msg):
    st, body = gw.request("POST", "/webhooks/buggy", json.dumps(msg).encode(), {"Content-Type": "application/json"})
    try:
        return st, json.loads(body)
    except ValueError:
        return st, {"raw": body}


try:
    pub = f"ipc://{gw.dir}/var/events.ipc"
    # PUB/SUB delivers only to connected subscribers: subscribe() returns once the gateway accepted it.
    sub = subscribe(["nngcat", "--sub", "--dial", pub, "--subscribe", "", "--quoted"], gw)

    for i, (field, how, why) in enumerate(BAD):
        at = log_size(gw)
        st, r = post({"id": f"bad-{i}", "field": field, **how})
        check(r.get("set") == EINVAL, f"setting {field} {how} answers PARLEY_EINVAL: {r}")
        check(r.get("submit") == EINVAL and st == 400, f"the envelope with a refused {field} is not submitted: {st} {r}")
        check_logged_why(gw, at, "channel buggy", "plugin field_setter", f"'{field}", why)

    # An envelope built without its instance has no channel: submit refuses it, naming what is missing.
    at = log_size(gw)
    st, r = post({"id": "orphan-1", "field": "text", "value": "fine", "orphan": True})
    check(r.get("set") == 0 and r.get("submit") == EINVAL and st == 400, f"an envelope without channel is refused: {r}")
    check_logged_why(gw, at, "channel buggy", "submit refused", "no 'channel'")

    check(gw.list_all("buggy") == [], "nothing refused is stored")

    GOOD = [
        ("sent_at", {"value": "2026-11-22T10:11:12.345Z"}),
        ("sent_at", {"value": "2026-11-22T19:11:12+09:00"}),
        ("to", {"value": "tel:+15550000001"}),
        ("status", {"value": "delivered"}),
        ("attachments", {"json": [{"url": "https://example.org/a.png", "size": 12, "content_type": "image/png"}]}),
        ("labels", {"json": ["vip"]}),
        ("meta", {"json": {"anything": ["goes", 1, None]}}),
    ]
    for i, (field, how) in enumerate(GOOD):
        st, r = post({"id": f"good-{i}", "field": field, **how})
        check(st == 200 and r == {"set": 0, "submit": 0}, f"a valid {field} {how} is stored: {st} {r}")
    stored = {m["external_id"]: m for m in gw.list_all("buggy")}
    check(sorted(stored) == sorted(f"good-{i}" for i in range(len(GOOD))), f"the valid ones are stored: {sorted(stored)}")
    check(stored.get("good-0", {}).get("sent_at") == "2026-11-22T10:11:12.345Z", "sent_at kept as set")
    check_all_stored(gw, "buggy")

    # The refused envelopes were posted first: had they been published, they are in by the last valid one.
    out = read_until(sub, lambda out: all(f"good-{i}" in out for i in range(len(GOOD))))
    # nngcat --quoted prints each message as a C string literal on its own line.
    lines = [ln.strip()[1:-1].encode("latin-1").decode("unicode_escape").encode("latin-1").decode("utf-8")
             for ln in out.splitlines() if ln.strip()]
    published = [json.loads(ln.partition(" ")[2]) for ln in lines if ln.startswith("message.inbound.field_setter.")]
    ids = sorted(m.get("external_id") for m in published)
    check(ids == sorted(stored), f"subscribers got the valid envelopes only: {ids}")
finally:
    gw.cleanup()

# The harness checks every e2e gateway's store at cleanup (harness.py): it must see a bad envelope that a
# channel managed to store past the host, and name the field.
with tempfile.TemporaryDirectory() as d:
    db = os.path.join(d, "parley.db")
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE messages (id TEXT, envelope TEXT)")
    good = {"v": 1, "id": "01JX0000000000000000000000", "kind": "message", "direction": "inbound",
            "channel": "hooks", "channel_type": "webhook", "received_at": "2026-11-22T10:11:12.345Z"}
    con.execute("INSERT INTO messages VALUES (?, ?)", (good["id"], json.dumps(good)))
    con.commit()
    check(not stored_envelope_errors(db), "a valid stored envelope passes")
    for bad, what in ((dict(good, sent_at="last tuesday"), "sent_at"), (dict(good, colour="blue"), "colour"),
                      (dict(good, **{"from": "not a urn"}), "from")):
        con.execute("DELETE FROM messages")
        con.execute("INSERT INTO messages VALUES (?, ?)", (bad["id"], json.dumps(bad)))
        con.commit()
        errs = stored_envelope_errors(db)
        check(any(what in e for _, e in errs), f"the harness names {what} in a stored envelope: {errs}")
    con.close()
done()
