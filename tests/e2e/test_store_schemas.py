"""The store's read ops answer what sdk/schemas/store/ documents.

Every schema file is a valid draft 2020-12 schema, documents each field, and
is listed in the README's table (and every op listed there has a file).  The
real gateway then gets real data (two contacts, messages on three channels, a
resolved conversation, notes, an assignment, an outbound reply the provider
accepted and its delivery receipt) and each read op is called through the
control API: its reply, less the control API's "ok", must validate against
the op's reply schema, and the request sent against its request schema.
Each documented PARLEY_ENOENT and PARLEY_EINVAL message is provoked and must
come back as that plain text.  Mutated replies must fail validation, so the
schemas are not vacuous."""
import base64
import copy
import glob
import hashlib
import hmac
import json
import os
import re
import sys
import time
import urllib.parse

from fakeprovider import FakeProvider
from harness import SOURCE_DIR, Gateway, check, done, fixture

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError:
    # Debian's python3-jsonschema is for Debian's python3; CMake may have found another interpreter.
    debian = "/usr/bin/python3"
    if os.path.exists(debian) and os.path.realpath(sys.executable) != os.path.realpath(debian) \
            and not os.environ.get("PARLEY_SCHEMA_REEXEC"):
        os.environ["PARLEY_SCHEMA_REEXEC"] = "1"
        os.execv(debian, [debian, os.path.abspath(__file__), *sys.argv[1:]])
    print("FAIL: Python's jsonschema is missing: scripts/deps.sh --test installs python3-jsonschema", file=sys.stderr)
    sys.exit(1)

SCHEMAS = os.path.join(SOURCE_DIR, "sdk", "schemas", "store")
BASE = "https://parley.dev/schema/store/"

# ---------------------------------------------------------------- the files

docs = {}
for path in sorted(glob.glob(os.path.join(SCHEMAS, "*.json"))):
    with open(path) as f:
        try:
            docs[os.path.basename(path)[:-5]] = json.load(f)
        except ValueError as e:
            check(False, f"{path} is not JSON: {e}")
with open(os.path.join(SOURCE_DIR, "sdk", "envelope-v1.schema.json")) as f:
    envelope = json.load(f)
ops = sorted(n for n in docs if n != "common")
check(len(ops) >= 12, f"one schema file per read op: {ops}")

for name, doc in docs.items():
    try:
        Draft202012Validator.check_schema(doc)
    except jsonschema.exceptions.SchemaError as e:
        check(False, f"{name}.json is not a valid JSON Schema: {e.message}")
    check(doc.get("$schema") == "https://json-schema.org/draft/2020-12/schema", f"{name}.json says draft 2020-12")
    check(doc.get("$id") == BASE + name + ".json", f"{name}.json has $id {BASE}{name}.json: {doc.get('$id')}")
    if name != "common":
        defs = doc.get("$defs", {})
        check("request" in defs and "reply" in defs, f"{name}.json defines request and reply")
        check(doc.get("x-parley-answered-by") in ("store", "core"), f"{name}.json says who answers it")
        check(isinstance(doc.get("x-parley-errors"), list), f"{name}.json lists its errors")


def undocumented(node, where):
    """Paths of properties without a description, anywhere in a schema."""
    out = []
    if isinstance(node, dict):
        for k, v in node.get("properties", {}).items():
            if not (isinstance(v, dict) and isinstance(v.get("description"), str) and v["description"].strip()):
                out.append(f"{where}/properties/{k}")
        for k, v in node.items():
            out += undocumented(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += undocumented(v, f"{where}/{i}")
    return out


for name, doc in docs.items():
    missing = undocumented(doc, name + ".json#")
    check(not missing, f"every field has a description: {missing}")

with open(os.path.join(SCHEMAS, "README.md")) as f:
    readme = f.read()
listed = sorted(set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", readme, re.M)))
check(listed, "the README has the table of read ops")
for op in listed:
    check(op in docs, f"the README's op {op} has sdk/schemas/store/{op}.json")
for op in ops:
    check(op in listed, f"{op}.json is in the README's table")

# -------------------------------------------------------------- validation

try:
    from referencing import Registry, Resource

    registry = Registry().with_resources(
        [(d["$id"], Resource.from_contents(d)) for d in [envelope, *docs.values()]])

    def validator(op, part):
        return Draft202012Validator({"$ref": f"{BASE}{op}.json#/$defs/{part}"}, registry=registry)
except ImportError:  # jsonschema before 4.18 (Debian bookworm's 4.10)
    store = {d["$id"]: d for d in [envelope, *docs.values()]}

    def validator(op, part):
        schema = {"$ref": f"{BASE}{op}.json#/$defs/{part}"}
        return Draft202012Validator(schema, resolver=jsonschema.RefResolver("", schema, store=store))


def errors(op, part, value):
    return [f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}"
            for e in validator(op, part).iter_errors(value)]


# A mutated reply must not pass: the schemas describe something.
sample = {"conversation": {"id": "01JX0000000000000000000000", "contact_id": "01JX0000000000000000000001",
                           "status": "open", "labels": [], "resolutions": 0,
                           "created_at": "2026-12-01T12:00:00.000Z", "updated_at": "2026-12-01T12:00:00.000Z"}}
check(not errors("conversation.current", "reply", sample), f"a plain conversation passes: {errors('conversation.current', 'reply', sample)}")
for mutate, what in [(lambda c: c.pop("status"), "without status"),
                     (lambda c: c.update(status="closed"), "with an unknown status"),
                     (lambda c: c.update(assignee=None), "with a null column (NULL columns are absent)"),
                     (lambda c: c.update(labels='["a"]'), "with labels as text"),
                     (lambda c: c.update(colour="red"), "with an undocumented key")]:
    bad = copy.deepcopy(sample)
    mutate(bad["conversation"])
    check(errors("conversation.current", "reply", bad), f"a conversation {what} fails")

# ------------------------------------------------------------------ the data

AC, TW_TOKEN, PUBLIC = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "twilio-auth-token", "https://parley.example.com"
WA_SECRET, PNID = "wa-app-secret", "106540352242922"
fake = FakeProvider()
gw = Gateway(http_extra=f"  public_url: {PUBLIC}\n",
             config_body="""pipelines:
  - name: inbound
    steps:
      - dedupe: {}
      - identify: {}
      - thread: {}
""",
             extra_channels=f"""  - name: wa
    type: whatsapp
    config: {{ phone_number_id: "{PNID}", access_token: T, app_secret: {WA_SECRET}, api_base_url: "{fake.url}" }}
  - name: sms
    type: twilio
    config: {{ account_sid: {AC}, auth_token: {TW_TOKEN}, from: "+14155550100", api_base_url: "{fake.url}" }}
""").start()


def post_wa(mid, text):
    doc = json.loads(fixture("whatsapp", "text.json"))
    m = doc["entry"][0]["changes"][0]["value"]["messages"][0]
    m["id"], m["text"]["body"], m["timestamp"] = mid, text, str(int(time.time()))
    body = json.dumps(doc).encode()
    sig = "sha256=" + hmac.new(WA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return gw.request("POST", "/webhooks/wa", body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig})


def post_sms(sid, text, form="text.form"):
    params = dict(urllib.parse.parse_qsl(fixture("twilio", form).decode().strip()))
    params.update({"MessageSid": sid, "SmsSid": sid})
    if text is not None:
        params.update({"SmsMessageSid": sid, "Body": text})
    data = PUBLIC + "/webhooks/sms" + "".join(k + v for k, v in sorted(params.items()))
    sig = base64.b64encode(hmac.new(TW_TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
    return gw.request("POST", "/webhooks/sms", urllib.parse.urlencode(params).encode(),
                      {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})


def api(op, obj):
    rc, r = gw.api(op, obj)
    check(rc == 0 and r.get("ok") is True, f"{op} {obj}: {r}")
    return r


validated = {}


def read(op, req):
    """Call a read op through the control API; validate the request and the reply."""
    e = errors(op, "request", req)
    check(not e, f"{op}: the request {req} matches its schema: {e}")
    r = dict(api(op, req))
    r.pop("ok", None)
    e = errors(op, "reply", r)
    check(not e, f"{op} {req}: the reply matches {op}.json#/$defs/reply: {e}\n  reply: {json.dumps(r)[:2000]}")
    validated[op] = validated.get(op, 0) + 1
    return r


try:
    # Contact A writes on WhatsApp and by SMS from one number: one contact, one conversation, two channels.
    check(post_wa("wamid.SCHEMA1", "My order never arrived")[0] == 200, "WhatsApp message accepted")
    check(post_sms("SMschema000000000000000000000000001", "Any news?")[0] == 200, "SMS accepted")
    # Contact B writes on the webhook channel.
    check(gw.post_message({"id": "web-s1", "from": "bob", "text": "Hello from the website"})[0] == 200, "webhook message accepted")
    wa = gw.list_all("wa")[0]
    hook = gw.list_all("hooks")[0]
    conv_a, contact_a = wa["conversation_id"], wa["contact_id"]
    conv_b, contact_b = hook["conversation_id"], hook["contact_id"]
    check(conv_a and conv_b and contact_a != contact_b, "two contacts, two conversations")

    # Notes (with and without an author), an assignment, labels, attributes; B is resolved.
    api("conversation.note", {"conversation_id": conv_a, "text": "Offer a voucher", "author": "ana"})
    api("conversation.note", {"conversation_id": conv_b, "text": "Probably a test"})
    api("conversation.assign", {"conversation_id": conv_a, "assignee": "ana", "team": "support"})
    api("conversation.set", {"conversation_id": conv_a, "labels": ["shipping"], "priority": "high"})
    api("contact.update", {"contact_id": contact_b, "attributes": {"plan": "gold"}})
    api("conversation.resolve", {"conversation_id": conv_b, "by": "ana"})

    # An outbound reply the provider accepts: an outbound envelope with a provider id, a first response.
    fake.script[("POST", f"/2010-04-01/Accounts/{AC}/Messages.json")] = [(201, {"sid": "SMreplyschema1"})]
    sent = api("message.send", {"conversation_id": conv_a, "text": "It ships today"})
    check(gw.wait_message(sent["id"], "sent").get("status") == "sent", "the reply was sent")
    for _ in range(50):
        if api("conversation.get", {"conversation_id": conv_a})["conversation"].get("first_response_at"):
            break
        time.sleep(0.1)
    # A reply the provider refuses: its error and attempts are folded into the stored envelope.
    fake.script[("POST", f"/v19.0/{PNID}/messages")] = [(400, {"error": {"message": "Invalid parameter", "code": 100}})]
    refused = api("message.send", {"conversation_id": conv_a, "channel": "wa", "text": "Tracking: 1Z999"})
    m = gw.wait_message(refused["id"], "failed")
    check(m.get("status") == "failed" and m.get("error") and "external_id" not in m, f"the refused reply failed: {m}")
    # Its delivery receipt: an inbound status envelope, and the reply moves to delivered.
    check(post_sms("SMreplyschema1", None, "status_delivered.form")[0] == 200, "the receipt is accepted")
    check(gw.wait_message(sent["id"], "delivered").get("status") == "delivered", "the reply was delivered")

    # ------------------------------------------------------- every read op
    r = read("messages.list", {})
    check(r["count"] == 6 and "next_after_id" not in r, f"five messages and a receipt, one page: {r['count']}")
    check([m["kind"] for m in r["messages"]].count("status") == 1, "the receipt is stored")
    r = read("messages.list", {"limit": 1})
    check(r["count"] == 1 and r.get("next_after_id") == r["messages"][0]["id"], "a full page names the next")
    read("messages.list", {"after_id": r["next_after_id"], "limit": 1000})
    r = read("messages.list", {"channel": "sms", "direction": "outbound"})
    check([m["id"] for m in r["messages"]] == [sent["id"]] and r["messages"][0].get("external_id") == "SMreplyschema1",
          f"the outbound reply with its provider id: {r['messages']}")
    read("messages.list", {"conversation_id": conv_b})
    read("message.get", {"id": sent["id"]})
    read("message.get", {"id": wa["id"]})
    m = read("message.get", {"id": refused["id"]})["message"]
    check(m.get("attempts", 0) >= 1 and m.get("error"), f"a failed reply carries attempts and error: {m}")

    r = read("conversations.list", {})
    check(sorted(c["id"] for c in r["conversations"]) == sorted([conv_a, conv_b]), "both conversations listed")
    r = read("conversations.list", {"status": "resolved", "limit": 10})
    check([c["id"] for c in r["conversations"]] == [conv_b], "the resolved one")
    read("conversations.list", {"label": "shipping", "assignee": "ana", "team": "support", "channel": "wa",
                                "contact_id": contact_a})
    # Each listed conversation carries its contact's name and latest message; the counts match the list.
    every = read("conversations.list", {"limit": 1000})["conversations"]
    la = {c["id"]: c for c in every}[conv_a]
    msgs = [m for m in read("messages.list", {"conversation_id": conv_a, "limit": 1000})["messages"] if m["kind"] == "message"]
    lm = la.get("last_message") or {}
    check(lm.get("id") == msgs[-1]["id"] and lm.get("text") == (msgs[-1].get("text") or "")[:200]
          and lm.get("channel") == msgs[-1]["channel"] and lm.get("direction") == msgs[-1]["direction"],
          f"A's last message: {lm} vs {msgs[-1]}")
    name_a = read("contact.get", {"contact_id": contact_a})["contact"].get("name")
    check(la.get("contact_name") == name_a, f"A's contact name: {la.get('contact_name')} vs {name_a}")
    for vis in (None, {"agent": "nobody", "teams": []}, {"agent": "ana", "teams": ["support"]}):
        q = {"visible_to": vis} if vis else {}
        shown = read("conversations.list", dict(q, limit=1000))["conversations"]
        want = {s: sum(1 for c in shown if c["status"] == s) for s in ("open", "pending", "snoozed", "resolved")}
        got = read("conversations.counts", q)["counts"]
        check(got == want, f"counts {vis}: {got} vs {want}")
    got = read("conversations.counts", {"assignee": "ana"})["counts"]
    check(sum(got.values()) == sum(1 for c in every if c.get("assignee") == "ana") >= 1, f"counts of ana's: {got}")

    c = read("conversation.get", {"conversation_id": conv_a})["conversation"]
    check(len(c["timeline"]) == 4 and c["notes"][0].get("author") == "ana" and c.get("first_response_at")
          and c.get("assignee") == "ana" and c["labels"] == ["shipping"],
          f"conversation A has its timeline, note, assignee, labels, first response: {c}")
    check({e["type"] for e in c["events"]} >= {"opened", "assigned", "updated", "first_response"}, f"A's history: {c['events']}")
    c = read("conversation.get", {"id": conv_b})["conversation"]
    check(c["status"] == "resolved" and c.get("resolved_at") and c["resolutions"] == 1 and "author" not in c["notes"][0],
          f"conversation B is resolved, its note has no author: {c}")

    k = read("contact.get", {"contact_id": contact_a})["contact"]
    check(sorted(i["urn"] for i in k["identities"]) == ["tel:+15551234567", "whatsapp:15551234567"], f"A's identities: {k}")
    k = read("contact.get", {"id": contact_b})["contact"]
    check(k["attributes"] == {"plan": "gold"}, f"B's attributes: {k}")

    r = read("contact.lookup", {"urns": ["tel:+19999999999", "webhook:bob"]})
    check(r["contact"]["id"] == contact_b, f"lookup finds B by its second address: {r}")
    r = read("conversation.of_ref", {"channel": "wa", "ref": "wamid.SCHEMA1"})
    check(r["conversation"]["id"] == conv_a, "of_ref by an inbound external_id")
    r = read("conversation.of_ref", {"channel": "sms", "ref": "SMreplyschema1"})
    check(r["conversation"]["id"] == conv_a, "of_ref by an outbound provider id")
    r = read("conversation.current", {"contact_id": contact_b})
    check(r["conversation"]["id"] == conv_b, "B's current conversation")
    r = read("conversation.route", {"conversation_id": conv_a, "channel_types": {"wa": "whatsapp", "sms": "twilio"}})
    check(r["route"] == {"channel": "sms", "to": "tel:+15551234567", "contact_id": contact_a}, f"route: the last channel: {r}")
    r = read("conversation.route", {"conversation_id": conv_a, "channel": "wa"})
    check(r["route"]["to"] == "whatsapp:15551234567", f"route: the channel named: {r}")
    r = read("agents.load", {})
    check(r["load"] == {"ana": 1}, f"ana has one conversation: {r}")
    r = read("outbox.counts", {})
    check(r["counts"]["failed"] >= 1, f"the dead letter is counted: {r}")
    r = read("queue.handling", {"team": "sales"})
    check(isinstance(r["resolved"], list), f"queue.handling: {r}")
    r = read("queue.waiting", {})
    check(all(c.get("queued_at") for c in r["waiting"]), f"every waiting conversation has queued_at: {r}")
    r = read("events.position", {})
    last = r["position"]["event_seq"]
    check(last >= 1 and r["position"]["message_seq"] >= 1, f"positions of both logs: {r}")
    r = read("conversation_events.since", {"after": 0})
    seqs = [e["seq"] for e in r["events"]]
    check(seqs == sorted(seqs) and seqs[-1] == last and {"opened", "assigned"} <= {e["type"] for e in r["events"]},
          f"the conversation log in order, up to the position: {r}")
    r = read("conversation_events.since", {"after": last})
    check(r["events"] == [], f"nothing after the last: {r}")

    r = read("reports.kpis", {"from": "2000-01-01T00:00:00.000Z", "to": "2100-01-01T00:00:00.000Z", "by": "channel",
                              "reopen_window_ms": 604800000,
                              "business_hours": {"timezone": "Asia/Seoul", "days": 62, "from_m": 540, "to_m": 1080}})
    kinds = {(k["kind"], k["total"]) for k in r["kpis"]}
    check({("opened", 0), ("opened", 1), ("resolution", 1)} <= kinds, f"reports.kpis: the store's aggregates: {r}")

    r = read("contact.decide", {"from": "whatsapp:15551234567"})
    check(r["contact_id"] == contact_a and r["created"] is False and r["urns"] == ["whatsapp:15551234567", "tel:+15551234567"],
          f"a known sender is A, both numbers covered: {r}")
    r = read("contact.decide", {"from": "mailto:New@Example.org", "link_phone": False})
    check(r["created"] is True and r["urns"] == ["mailto:new@example.org"], f"a new sender: {r}")
    r = read("conversation.decide", {"contact_id": contact_a, "channel": "wa", "thread_ref": "wamid.SCHEMA1",
                                     "received_at": "2026-12-01T12:00:00.000Z"})
    check(r == {"conversation_id": conv_a, "what": "join", "via": "thread_ref"}, f"a reply joins A: {r}")
    r = read("conversation.decide", {"contact_id": contact_b, "received_at": "2099-01-01T00:00:00.000Z",
                                     "reopen_within_ms": 0})
    check(r["what"] == "open" and r["via"] == "latest" and r["conversation_id"] != conv_b, f"B outside a zero window: a new one: {r}")

    print("validated:", validated)
    check(sorted(validated) == ops, f"every op with a schema was called and validated: {sorted(validated)} vs {ops}")

    # ---------------------------------------- documented errors: plain text
    provoke = {
        ("messages.list", "limit must be a number from 1 to 1000"): {"limit": 0},
        ("message.get", "message.get needs 'id'"): {},
        ("message.get", "no message with that id"): {"id": "01JX0000000000000000000000"},
        ("contact.lookup", "no contact has any of these addresses"): {"urns": ["tel:+19999999999"]},
        ("conversation.of_ref", "conversation.of_ref needs channel and ref"): {"channel": "wa"},
        ("conversation.of_ref", "no stored message has that ref"): {"channel": "wa", "ref": "wamid.NONE"},
        ("conversation.current", "the contact has no conversation"): {"contact_id": "01JX0000000000000000000000"},
        ("conversation.get", "no conversation with that conversation_id"): {"conversation_id": "nope"},
        ("conversation.route", "no conversation with that conversation_id"): {"conversation_id": "nope"},
        ("conversation.route", "the contact has no address on that channel"):
            {"conversation_id": conv_b, "channel": "sms", "channel_types": {"sms": "twilio"}},
        ("contact.get", "no contact with that contact_id"): {"contact_id": "nope"},
        ("contact.decide", "contact.decide needs from: an address of at most 512 bytes"): {"from": "x" * 700},
        ("conversation.decide", "conversation.decide needs contact_id"): {},
        ("queue.handling", "queue.handling needs team"): {},
        ("reports.kpis", "reports.kpis needs from, to and by"): {"reopen_window_ms": 0},
    }
    # Documented but not reachable through real data: a conversation has a channel once a message joined it.
    unreachable = {("conversation.route", "the conversation has no channel yet: name one")}
    codes = {"PARLEY_ENOENT": "not_found", "PARLEY_EINVAL": "invalid_request"}
    for op in ops:
        for err in docs[op]["x-parley-errors"]:
            key = (op, err["message"])
            if err["code"] not in codes:
                continue
            if key in unreachable:
                continue
            if not check(key in provoke, f"the documented error {key} is provoked here"):
                continue
            rc, r = gw.api(op, provoke[key])
            e = r.get("error") or {}
            check(rc != 0 and r.get("ok") is False and e.get("code") == codes[err["code"]] and e.get("message") == err["message"],
                  f"{op} {provoke[key]}: {err['code']} with the plain text {err['message']!r}: {r}")
            try:
                json.loads(e.get("message", ""))
                check(False, f"{op}: the error text is not JSON: {e.get('message')!r}")
            except ValueError:
                pass
finally:
    gw.cleanup()
    fake.close()
done()
