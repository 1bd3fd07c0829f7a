"""The conversation.* and contact.* events on the bus follow sdk/schemas/events/ (issue 17).

A real gateway with the identify and thread steps and the assign router takes messages and
control ops that publish each event: a new contact and conversation, an assignment by the
router and one by the op, a contact update, a label change, a note, a resolution, a reopen
by a message, by the op and by a snooze ending, a handoff to a team's queue, a merge and its
undoing.  Every conversation.* and contact.* event `parley tail` prints must validate
against the schema file named by its topic, and each schema must refuse a mutated payload,
so the schemas are not vacuous."""
import copy
import json
import time

from eventschemas import Draft202012Validator, docs, errors
from harness import PARLEY, Gateway, check, done
from subscribers import read_until, subscribe

for name, doc in docs.items():
    Draft202012Validator.check_schema(doc)
    check(doc.get("$id") == f"https://parley.dev/schema/events/{name}.json", f"{name}.json has its $id")
    check(name.startswith(("conversation.", "contact.", "sla.", "outbox.")),
          f"{name}.json is a conversation.*, contact.*, sla.* or outbox.* topic (sla.* validated by test_sla.py, "
          "outbox.* by test_dlq.py)")


gw = Gateway(config_body="""pipelines:
  - name: inbound
    steps:
      - dedupe: {}
      - identify: {}
      - thread: { reopen_within: 1h }
      - route: { type: assign, config: { teams: { support: [ana] }, default_team: support } }
""", secret="s3cret").start()


def api(op, obj):
    rc, r = gw.api(op, obj)
    check(rc == 0 and r.get("ok"), f"{op} {obj}: {r}")
    return r


tail = subscribe([PARLEY, "tail", "-c", gw.config], gw)  # PUB/SUB delivers only to connected subscribers
try:
    check(gw.post_message({"id": "e1", "from": "alice", "text": "Where is my parcel?"})[0] == 200, "first message")
    m = gw.list_all("hooks")[0]
    conv, alice = m["conversation_id"], m["contact_id"]
    api("contact.update", {"contact_id": alice, "name": "Alice", "attributes": {"tier": "gold"}})
    api("conversation.assign", {"conversation_id": conv, "assignee": "ana", "team": "support"})
    api("conversation.set", {"conversation_id": conv, "labels": ["vip"], "priority": "high"})
    api("conversation.note", {"conversation_id": conv, "text": "Call her back", "author": "ana"})
    api("conversation.resolve", {"conversation_id": conv})
    check(gw.post_message({"id": "e2", "from": "alice", "text": "Still nothing"})[0] == 200, "a message reopens")
    api("conversation.resolve", {"conversation_id": conv})
    api("conversation.reopen", {"conversation_id": conv})
    until = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 1))
    api("conversation.set", {"conversation_id": conv, "status": "snoozed", "snoozed_until": until})
    for _ in range(60):
        if api("conversation.get", {"conversation_id": conv})["conversation"]["status"] == "open":
            break
        time.sleep(0.1)
    api("conversation.handoff", {"conversation_id": conv, "team": "support", "note": "Wants a call"})
    check(gw.post_message({"id": "e3", "from": "bob", "text": "Alice's other address"})[0] == 200, "second contact")
    bob = [x for x in gw.list_all("hooks") if x["external_id"] == "e3"][0]["contact_id"]
    merge = api("contacts.merge", {"from": bob, "into": alice})["merge"]
    api("contacts.unmerge", {"merge_id": merge["id"]})

    want = {"contact.created", "contact.updated", "contact.merged", "contact.unmerged", "conversation.opened",
            "conversation.assigned", "conversation.updated", "conversation.noted", "conversation.resolved",
            "conversation.reopened", "conversation.handed_off"}

    def published(out):
        topics = [line.split(" ", 1)[0] for line in out.splitlines()]
        return want <= set(topics) and topics.count("conversation.reopened") >= 3

    out = read_until(tail, published)
    events = []
    for line in out.splitlines():
        topic, _, js = line.partition(" ")
        if topic.startswith(("conversation.", "contact.")):
            events.append((topic, json.loads(js)))
    seen = {t for t, _ in events}
    check(want <= seen, f"every event was published: missing {sorted(want - seen)}")
    reopened_by = {("message_id" in p) and "message" or p.get("by") or "op"
                   for t, p in events if t == "conversation.reopened"}
    check(reopened_by == {"message", "snooze", "op"}, f"reopened by a message, a snooze and the op: {reopened_by}")
    assigned_by = {p.get("by") or "op" for t, p in events if t == "conversation.assigned"}
    check(assigned_by == {"router", "op"}, f"assigned by the router and by the op: {assigned_by}")
    for topic, payload in events:
        if check(topic in docs, f"sdk/schemas/events/{topic}.json exists for a published {topic}"):
            errs = errors(topic, payload)
            check(not errs, f"{topic} {json.dumps(payload)[:300]} breaks its schema: {errs}")

    # Mutated payloads must fail: the schemas describe what is published, not anything.
    for topic, payload in events:
        if topic not in docs:
            continue
        extra = dict(payload, colour="blue")
        check(errors(topic, extra), f"{topic}: an unknown key is refused")
        for key in payload:
            less = copy.deepcopy(payload)
            del less[key]
            check(errors(topic, less) or key in ("team",), f"{topic}: a payload without {key} is refused")
finally:
    gw.cleanup()
done()
