"""SLA policies: "first response within 1 business hour, Asia/Seoul, Mon-Fri 09-18".  A message
at Friday 17:30 is due Monday 09:30; sla.warning (at 80%: Monday 09:18) and sla.breached come once
each at the right times, on the bus (as sdk/schemas/events/ says) and in the conversation's log, also across a restart; a
pending period does not count (the due time moves by it); sla.list shows what is at risk or
breached.  The gateway's clock is moved with the test-only PARLEY_TEST_CLOCK_FILE."""
import calendar
import json
import os
import time

from eventschemas import errors
from fakeprovider import FakeProvider
from harness import PARLEY, Gateway, check, done
from subscribers import subscribe

CLOCK = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"parley-sla-clock-{os.getpid()}")
os.environ["PARLEY_TEST_CLOCK_FILE"] = CLOCK


def set_clock(iso):
    """The gateway's now becomes iso (UTC, "2026-12-04T08:30:00Z") and runs on from there."""
    target = calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) * 1000
    with open(CLOCK + ".tmp", "w") as f:
        f.write(str(target - int(time.time() * 1000)))
    os.replace(CLOCK + ".tmp", CLOCK)
    time.sleep(0.05)


set_clock("2026-12-04T08:30:00Z")  # Friday 17:30 in Seoul
fake = FakeProvider()
fake.script[("POST", "/out")] = [(200, {"id": "out-1"})]
gw = Gateway(extra_channels=f"""  - name: desk
    type: webhook
    config: {{ secret: desk-secret, outbound_url: "{fake.url}/out" }}
""", config_body="""control:
  token: "sla-test-control-token-0123456789"
pipelines:
  - name: inbound
    steps:
      - dedupe: {}
      - identify: {}
      - thread: {}
sla:
  calendars:
    seoul: { timezone: Asia/Seoul, days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00" }
  policies:
    - name: desk
      match: { channel: desk }
      business_hours: seoul
      first_response: 1h
      next_response: 30m
      resolution: 2h
    - name: standard
      business_hours: seoul
      first_response: 1h
""").start()
tail = subscribe([PARLEY, "tail", "-c", gw.config, "sla."], gw, text=True)


def say(sender, text):
    st, body = gw.post_message({"id": f"{sender}-{time.time_ns()}", "from": sender, "text": text})
    check(st == 200, f"{sender} wrote: {st} {body}")
    rc, r = gw.api("message.get", {"id": json.loads(body)["ids"][0]})
    return r["message"]["conversation_id"]


def log(cid, prefix="sla."):
    rc, r = gw.api("conversation.get", {"conversation_id": cid})
    return [e for e in r.get("conversation", {}).get("events", []) if e["type"].startswith(prefix)]


def listed(state):
    rc, r = gw.api("sla.list", {"state": state})
    check(rc == 0 and r.get("ok"), f"sla.list {state}: {r}")
    return {(x["conversation_id"], x["target"]) for x in r.get("sla", [])}


def wait_for(pred, timeout=8):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def count(cid, kind):
    return len([e for e in log(cid) if e["type"] == kind])


try:
    # The clock runs on from where it is set: set it again just before each message the checks time.
    set_clock("2026-12-04T08:30:00Z")
    a = say("ahn", "My parcel is lost")
    set_clock("2026-12-04T08:30:00Z")
    b = say("bae", "Where is my refund?")
    due = [e["data"] for e in log(a) if e["type"] == "sla.due"]
    check(due == [{"target": "first_response", "policy": "standard", "due": "2026-12-07T00:30:00.000Z"}],
          f"Friday 17:30 + 1 business hour is Monday 09:30 in Seoul (00:30Z): {due}")

    # Monday 09:00: b waits on the customer until 10:00; its clock stops with 30 minutes left.
    set_clock("2026-12-07T00:00:00Z")
    rc, r = gw.api("conversation.set", {"conversation_id": b, "status": "pending"})
    check(rc == 0, f"b set pending: {r}")

    # 09:17: nothing yet (the warning is at 80% of the hour: 09:18).
    set_clock("2026-12-07T00:17:00Z")
    time.sleep(2.5)
    check(count(a, "sla.warning") == 0 and listed("at_risk") == set(), f"no warning before 09:18: {log(a)}")

    set_clock("2026-12-07T00:19:00Z")
    check(wait_for(lambda: (a, "first_response") in listed("at_risk")), f"a is at risk after 09:18: {log(a)}")
    check(count(a, "sla.warning") == 1 and count(a, "sla.breached") == 0, f"one warning, no breach: {log(a)}")
    check(count(b, "sla.warning") == 0, f"b is pending: its clock does not run: {log(b)}")

    set_clock("2026-12-07T00:31:00Z")
    check(wait_for(lambda: (a, "first_response") in listed("breached")), f"a is breached after 09:30: {log(a)}")
    check(count(b, "sla.breached") == 0 and (b, "first_response") not in listed("breached"),
          f"b, pending, is not breached at 09:31: {log(b)}")

    # 10:00: the customer answers b; the hour it waited does not count: due 10:30, warning 10:18.
    set_clock("2026-12-07T01:00:00Z")
    say("bae", "Here is my order number: 4711")
    moved = [e["data"]["due"] for e in log(b) if e["type"] == "sla.due"]
    check(moved == ["2026-12-07T00:30:00.000Z", "2026-12-07T01:30:00.000Z"], f"b's due time moved by the pause: {moved}")
    set_clock("2026-12-07T01:17:00Z")
    time.sleep(2.5)
    check(count(b, "sla.warning") == 0, f"no warning for b at 10:17: {log(b)}")
    set_clock("2026-12-07T01:31:00Z")
    check(wait_for(lambda: count(b, "sla.breached") == 1), f"b is breached after 10:30: {log(b)}")
    check(count(b, "sla.warning") == 1, f"b was warned once: {log(b)}")

    # A restart repeats nothing.
    gw.stop()
    gw.start()
    time.sleep(4.5)
    for c in (a, b):
        check(count(c, "sla.warning") == 1 and count(c, "sla.breached") == 1,
              f"once each, also after a restart: {[e['type'] for e in log(c)]}")
    check(listed("breached") == {(a, "first_response"), (b, "first_response")}, f"sla.list breached: {listed('breached')}")

    rc, r = gw.api("conversations.list", {"sla": "breached"})
    check(rc == 0 and {c["id"] for c in r.get("conversations", [])} == {a, b}, f"the inbox filter sla=breached: {r}")
    rc, r = gw.api("conversations.list", {"sla": "late"})
    check(rc != 0 and r.get("error", {}).get("code") == "invalid_request" and "sla" in r["error"]["message"],
          f"an unknown sla filter is refused, naming it: {r}")
    st, body = gw.request("GET", "/api/v1/sla?state=breached")
    check(st == 401, f"GET /api/v1/sla needs a login or a token: {st}")
    bearer = {"Authorization": "Bearer sla-test-control-token-0123456789"}
    st, body = gw.request("GET", "/api/v1/sla?state=breached", headers=bearer)
    rest = json.loads(body) if st == 200 else {}
    check({(x["conversation_id"], x["due"]) for x in rest.get("sla", [])} ==
          {(a, "2026-12-07T00:30:00.000Z"), (b, "2026-12-07T01:30:00.000Z")}, f"GET /api/v1/sla: {st} {body[:300]}")
    st, body = gw.request("GET", "/api/v1/sla?state=soon", headers=bearer)
    check(st == 400 and b"state" in body, f"a bad state is a 400 naming it: {st} {body}")

    # Resolving takes them off the list.
    gw.api("conversation.resolve", {"conversation_id": a})
    check((a, "first_response") not in listed("breached"), "a resolved conversation is not listed")

    # Replies keep the response promises, the customer's next message starts next_response, a resolve
    # keeps the resolution promise (Monday 11:00 in Seoul).
    set_clock("2026-12-07T02:00:00Z")
    st, body = gw.post_message({"id": "desk-1", "from": "cho", "text": "Can I change my address?"},
                               channel="desk", secret="desk-secret")
    rc, r = gw.api("message.get", {"id": json.loads(body)["ids"][0]})
    d = r["message"]["conversation_id"]

    def reply(text):
        rc, r = gw.api("message.send", {"conversation_id": d, "text": text})
        check(rc == 0, f"reply queued: {r}")
        gw.wait_message(r.get("id"), "sent")

    reply("Yes: which one?")
    check(wait_for(lambda: count(d, "sla.met") == 1), f"the reply met first_response: {log(d)}")
    set_clock("2026-12-07T02:10:00Z")
    gw.post_message({"id": "desk-2", "from": "cho", "text": "Gangnam-daero 1"}, channel="desk", secret="desk-secret")
    reply("Done.")
    check(wait_for(lambda: count(d, "sla.met") == 2), f"the next reply met next_response: {log(d)}")
    gw.api("conversation.resolve", {"conversation_id": d})
    seq = [(e["type"], e["data"].get("target"), e["data"].get("due", e["data"].get("at"))) for e in log(d)]
    check(seq[:2] == [("sla.due", "first_response", "2026-12-07T03:00:00.000Z"),
                      ("sla.due", "resolution", "2026-12-07T04:00:00.000Z")], f"desk's promises: {seq}")
    check([(t, g) for t, g, _ in seq[2:]] == [("sla.met", "first_response"), ("sla.due", "next_response"),
                                              ("sla.met", "next_response"), ("sla.met", "resolution")],
          f"met, next_response due and met, resolution met: {seq}")
    check(seq[3][2] == "2026-12-07T02:40:00.000Z" if len(seq) > 3 else False, f"next_response due 30 min after 11:10: {seq}")

    # Snoozed counts as paused too: written 11:20, snoozed 11:30 until 11:50, woken then: 50 minutes left.
    set_clock("2026-12-07T02:20:00Z")
    e = say("eun", "Is the store open on Sunday?")
    set_clock("2026-12-07T02:30:00Z")
    rc, r = gw.api("conversation.snooze", {"conversation_id": e, "snoozed_until": "2026-12-07T02:50:00.000Z"})
    check(rc == 0, f"snoozed: {r}")
    set_clock("2026-12-07T02:50:00Z")
    check(wait_for(lambda: len([x for x in log(e) if x["type"] == "sla.due"]) == 2), f"woken, due moved: {log(e)}")
    dues = [x["data"]["due"] for x in log(e) if x["type"] == "sla.due"]
    check(dues[0] == "2026-12-07T03:20:00.000Z" and "2026-12-07T03:40:00" <= dues[-1] <= "2026-12-07T03:40:09",
          f"the snoozed 20 minutes do not count: {dues}")

    time.sleep(0.5)
    tail.terminate()
    out, _ = tail.communicate(timeout=5)
    events = [(l.split(" ", 1)[0], json.loads(l.split(" ", 1)[1])) for l in out.splitlines() if " " in l]
    for c in (a, b):
        mine = [t for t, e in events if e.get("conversation_id") == c]
        check(sorted(mine) == ["sla.breached", "sla.warning"], f"the bus carried each once for {c}: {mine}")
    for t, e in events:
        check(not errors(t, e), f"{t} {e} follows sdk/schemas/events/{t}.json: {errors(t, e)}")
        check(errors(t, dict(e, colour="blue")) and errors(t, {k: v for k, v in e.items() if k != "due"}),
              f"{t}'s schema refuses a changed payload")
    first = [e for t, e in events if t == "sla.breached" and e.get("conversation_id") == a]
    check(first and first[0]["due"] == "2026-12-07T00:30:00.000Z" and first[0]["target"] == "first_response",
          f"sla.breached says what was due when: {first}")
finally:
    if tail.poll() is None:
        tail.terminate()
    gw.cleanup()
    fake.close()
    for p in (CLOCK, CLOCK + ".tmp"):
        if os.path.exists(p):
            os.remove(p)
done()
