"""One conversation per customer across channels: a WhatsApp message and an SMS from the
same number are one contact and one conversation; replies go to the channel used last or
the one named; resolve, reopen within the window, a new conversation after it; merges
move everything and can be undone; events on the bus."""
import base64
import hashlib
import hmac
import json
import time
import urllib.parse

from fakeprovider import FakeProvider
from harness import PARLEY, Gateway, check, done, fixture
from subscribers import read_until, subscribe

AC, TW_TOKEN, PUBLIC = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "twilio-auth-token", "https://parley.example.com"
WA_SECRET, PNID = "wa-app-secret", "106540352242922"
fake = FakeProvider()
gw = Gateway(http_extra=f"  public_url: {PUBLIC}\n",
             config_body="""canned_responses:
  greeting: "Hi {{contact.name|there}}, {{agent|our team}} here on {{channel}}."
pipelines:
  - name: inbound
    steps:
      - dedupe: {}
      - identify: {}
      - thread: { reopen_within: 3s }
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


def post_sms(sid, text):
    params = dict(urllib.parse.parse_qsl(fixture("twilio", "text.form").decode().strip()))
    params.update({"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "Body": text})
    data = PUBLIC + "/webhooks/sms" + "".join(k + v for k, v in sorted(params.items()))
    sig = base64.b64encode(hmac.new(TW_TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
    return gw.request("POST", "/webhooks/sms", urllib.parse.urlencode(params).encode(),
                      {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})


def api(op, obj):
    rc, r = gw.api(op, obj)
    check(rc == 0 and r.get("ok"), f"{op} {obj}: {r}")
    return r


tail = subscribe([PARLEY, "tail", "-c", gw.config], gw)
try:
    # 1. WhatsApp from 15551234567, then SMS from +15551234567: one contact, one conversation.
    check(post_wa("wamid.CONV1", "My order never arrived")[0] == 200, "WhatsApp message accepted")
    check(post_sms("SMconv0000000000000000000000000001", "Hello? Any news on my order?")[0] == 200, "SMS accepted")
    wa = gw.list_all("wa")[0]
    sms = gw.list_all("sms")[0]
    check(wa.get("contact_id") and wa["contact_id"] == sms.get("contact_id"), f"one contact: {wa.get('contact_id')} / {sms.get('contact_id')}")
    check(wa.get("conversation_id") and wa["conversation_id"] == sms.get("conversation_id"), "one conversation")
    conv_id, contact_a = wa["conversation_id"], wa["contact_id"]
    c = api("conversation.get", {"conversation_id": conv_id})["conversation"]
    check([(m["channel"], m["text"]) for m in c["timeline"]] == [("wa", "My order never arrived"), ("sms", "Hello? Any news on my order?")],
          f"the timeline holds both, in order, with their channels: {[(m['channel'], m.get('text')) for m in c['timeline']]}")
    check(c["status"] == "open" and c["last_channel"] == "sms" and c["first_inbound_at"], f"state: {c}")
    contact = api("contact.get", {"contact_id": contact_a})["contact"]
    check(sorted(i["urn"] for i in contact["identities"]) == ["tel:+15551234567", "whatsapp:15551234567"], f"identities: {contact['identities']}")
    check(contact["name"] == "Kerry Fisher" and len(contact["conversations"]) == 1, f"name and conversations: {contact}")

    # 2. A reply with no channel goes out on SMS (used last); naming wa sends on WhatsApp.
    fake.script[("POST", f"/2010-04-01/Accounts/{AC}/Messages.json")] = [(201, {"sid": "SMreply1"})]
    fake.script[("POST", f"/v19.0/{PNID}/messages")] = [(200, {"messages": [{"id": "wamid.REPLY1"}]})]
    r = api("message.send", {"conversation_id": conv_id, "text": "It ships today"})
    check(r.get("channel") == "sms" and r.get("to") == "tel:+15551234567", f"no channel: the last used, SMS: {r}")
    check(gw.wait_message(r["id"], "sent").get("status") == "sent", "sent by SMS")
    form = fake.seen("POST", f"/2010-04-01/Accounts/{AC}/Messages.json")[-1].form()
    check(form["To"] == "+15551234567" and form["Body"] == "It ships today", f"Twilio got it: {form}")
    r = api("message.send", {"conversation_id": conv_id, "channel": "wa", "text": "Tracking: 1Z999"})
    check(r.get("channel") == "wa" and r.get("to") == "whatsapp:15551234567", f"named channel: {r}")
    gw.wait_message(r["id"], "sent")
    body = fake.seen("POST", f"/v19.0/{PNID}/messages")[-1].json()
    check(body["to"] == "15551234567" and body["text"]["body"] == "Tracking: 1Z999", f"WhatsApp got it: {body}")
    c = api("conversation.get", {"conversation_id": conv_id})["conversation"]
    check(len(c["timeline"]) == 4 and c["first_response_at"], "the replies are in the timeline; first response time recorded")

    # A canned response, filled from the conversation.
    fake.script[("POST", f"/2010-04-01/Accounts/{AC}/Messages.json")] = [(201, {"sid": "SMreply2"})]
    r = api("message.send", {"conversation_id": conv_id, "canned": "greeting"})
    gw.wait_message(r["id"], "sent")
    form = fake.seen("POST", f"/2010-04-01/Accounts/{AC}/Messages.json")[-1].form()
    check(form["Body"] == "Hi Kerry Fisher, our team here on sms.", f"canned response rendered: {form['Body']!r}")
    rc, r = gw.api("message.send", {"conversation_id": conv_id, "canned": "nope"})
    check(rc != 0 and r["error"]["code"] == "not_found", "an unknown canned response is refused")

    # Notes, labels, list filters.
    api("conversation.note", {"conversation_id": conv_id, "text": "Customer is upset: offer a voucher", "author": "ana"})
    api("conversation.set", {"conversation_id": conv_id, "labels": ["shipping"], "priority": "high"})
    c = api("conversation.get", {"conversation_id": conv_id})["conversation"]
    check(c["notes"][0]["text"] == "Customer is upset: offer a voucher" and c["labels"] == ["shipping"], f"note and label: {c['notes']}")
    check([x["id"] for x in api("conversations.list", {"label": "shipping"})["conversations"]] == [conv_id], "list by label")
    check([x["id"] for x in api("conversations.list", {"channel": "sms", "status": "open"})["conversations"]] == [conv_id], "list by channel and status")
    check(api("conversations.list", {"status": "resolved"})["conversations"] == [], "no resolved ones yet")

    # Snooze until a moment from now: it wakes by itself and says so.
    until = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 1))
    c = api("conversation.set", {"conversation_id": conv_id, "status": "snoozed", "snoozed_until": until})["conversation"]
    check(c["status"] == "snoozed", f"snoozed: {c['status']}")
    for _ in range(60):
        if api("conversation.get", {"conversation_id": conv_id})["conversation"]["status"] == "open":
            break
        time.sleep(0.1)
    check(api("conversation.get", {"conversation_id": conv_id})["conversation"]["status"] == "open", "woken when its time came")

    # 4. Resolve; a message within the window reopens; after the window a new conversation starts.
    c = api("conversation.resolve", {"conversation_id": conv_id})["conversation"]
    check(c["status"] == "resolved" and c["resolved_at"] and c["resolutions"] == 1, f"resolved: {c}")
    post_wa("wamid.CONV2", "One more thing")
    m = [x for x in gw.list_all("wa") if x["external_id"] == "wamid.CONV2"][0]
    check(m["conversation_id"] == conv_id, "within reopen_within the same conversation")
    c = api("conversation.get", {"conversation_id": conv_id})["conversation"]
    check(c["status"] == "open" and [json.dumps(e.get("data")) for e in c["events"] if e["type"] == "reopened"][-1].find("contact") >= 0,
          f"reopened by the contact: {c['status']} {c['events']}")
    api("conversation.resolve", {"conversation_id": conv_id})
    time.sleep(3.5)
    post_wa("wamid.CONV3", "New problem")
    m = [x for x in gw.list_all("wa") if x["external_id"] == "wamid.CONV3"][0]
    check(m["conversation_id"] != conv_id and m["contact_id"] == contact_a, "after the window: a new conversation, same contact")
    conv2 = m["conversation_id"]

    # 5. Merge another contact in: everything moves, nothing is lost, and it can be undone.
    st, _ = gw.post_message({"id": "web-1", "from": "kerry.fisher", "text": "This is Kerry from the website"})
    other = gw.list_all("hooks")[0]
    contact_b, conv_b = other["contact_id"], other["conversation_id"]
    check(contact_b and contact_b != contact_a, "the website visitor is a separate contact")
    count = lambda cid: api("contact.get", {"contact_id": cid})["contact"]
    before_a, before_b = count(contact_a), count(contact_b)
    merge = api("contacts.merge", {"from": contact_b, "into": contact_a})["merge"]
    after = count(contact_a)
    check(len(after["identities"]) == len(before_a["identities"]) + len(before_b["identities"]), f"identities moved: {after['identities']}")
    check(len(after["conversations"]) == len(before_a["conversations"]) + len(before_b["conversations"]), "conversations moved")
    check(conv_b in [x["id"] for x in after["conversations"]], "the other contact's conversation is now this contact's")
    check(gw.list_all("hooks")[0]["contact_id"] == contact_a, "its messages too")
    check(count(contact_b)["merged_into"] == contact_a, "the merged contact points at the survivor")
    st, _ = gw.post_message({"id": "web-2", "from": "kerry.fisher", "text": "still me"})
    check([x for x in gw.list_all("hooks") if x["external_id"] == "web-2"][0]["contact_id"] == contact_a,
          "a new message from a merged address joins the survivor")
    api("contacts.unmerge", {"merge_id": merge["id"]})
    back = count(contact_b)
    check(sorted(i["urn"] for i in back["identities"]) == ["webhook:kerry.fisher"] and back.get("merged_into") is None,
          f"unmerge gives the identities back: {back}")
    check(len(count(contact_a)["identities"]) == len(before_a["identities"]), "and the survivor has its own again")

    want = ("contact.created", "conversation.opened", "conversation.resolved", "conversation.reopened", "contact.merged")
    out = read_until(tail, lambda out: all(f"\n{t} " in "\n" + out for t in want))
    topics = [l.split(" ", 1)[0] for l in out.splitlines()]
    for t in want:
        check(t in topics, f"{t} was published: {sorted(set(topics))}")
finally:
    gw.cleanup()
    fake.close()
done()
