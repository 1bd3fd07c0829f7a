"""Routing: a Korean message containing 환불 is routed by the rules router to team billing
with label refund; the assign router gives new conversations to billing's available agents
in turn (round-robin), never to an unavailable one; a conversation keeps its agent while
available; business hours are computed in the configured timezone."""
import datetime
import zoneinfo

from harness import PARLEY, Gateway, check, done
from subscribers import read_until, subscribe

now = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Seoul"))
lo, hi = (now - datetime.timedelta(minutes=30)).strftime("%H:%M"), (now + datetime.timedelta(minutes=30)).strftime("%H:%M")
gw = Gateway(config_body=f"""pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
      - route:
          type: rules
          config:
            business_hours: {{ timezone: Asia/Seoul, days: [sun, mon, tue, wed, thu, fri, sat], from: "{lo}", to: "{hi}" }}
            rules:
              - match: {{ text: "환불|refund" }}
                set: {{ team: billing, labels: [refund], priority: high }}
              - match: {{ contact: {{ tier: gold }} }}
                set: {{ team: vip, labels: [gold] }}
              - match: {{ text: "^urgent", business_hours: true }}
                set: {{ team: oncall, labels: [in-hours] }}
              - match: {{ text: "^urgent" }}
                set: {{ team: oncall, labels: [after-hours] }}
              - match: {{}}
                set: {{ team: general }}
      - route:
          type: assign
          config:
            strategy: round_robin
            teams: {{ billing: [alice, carol, bob], general: [dave], oncall: [erin], vip: [vera] }}
            agents: {{ carol: {{ available: false }}, alice: {{ capacity: 10 }} }}
""")
gw.start()


def say(sender, text, n=[0]):
    n[0] += 1
    st, body = gw.post_message({"id": f"r{n[0]}", "from": sender, "text": text})
    check(st == 200, f"accepted: {st} {body!r}")
    return [m for m in gw.list_all("hooks") if m["external_id"] == f"r{n[0]}"][0]


def conv(m):
    rc, r = gw.api("conversation.get", {"conversation_id": m["conversation_id"]})
    return r["conversation"]


tail = subscribe([PARLEY, "tail", "-c", gw.config, "conversation.assigned"], gw)
try:
    first = say("customer1", "환불 부탁드립니다. 주문번호 1234")
    c = conv(first)
    check(c["team"] == "billing" and c["labels"] == ["refund"] and c["priority"] == "high", f"routed to billing: {c}")
    check(first.get("labels") == ["refund"] and first.get("route", {}).get("team") == "billing", f"the envelope carries the route: {first.get('route')}")
    agents = [c["assignee"]]
    for i in range(2, 5):
        agents.append(conv(say(f"customer{i}", "REFUND please" if i % 2 else "환불해 주세요"))["assignee"])
    check(agents == ["alice", "bob", "alice", "bob"], f"round-robin over available agents, carol (unavailable) skipped: {agents}")

    again = say("customer1", "아직 환불 안 됐어요")
    check(again["conversation_id"] == first["conversation_id"] and conv(again)["assignee"] == "alice",
          "a conversation keeps its agent while available")
    other = say("customer9", "hello there")
    check(conv(other)["team"] == "general" and conv(other)["assignee"] == "dave", "no rule text: the catch-all team")

    # Availability changes at run time: bob leaves.
    rc, r = gw.api("state.set", {"instance": "assign", "key": "available:bob", "value": "false"})
    check(rc == 0, f"state.set: {r}")
    late = [conv(say(f"customer{i}", "환불"))["assignee"] for i in (5, 6)]
    check(late == ["alice", "alice"], f"an unavailable agent gets none: {late}")
    moved = say("customer2", "환불 still waiting")
    check(conv(moved)["assignee"] == "alice", "bob's conversation moves on when he is unavailable")

    # Contact attributes: a gold customer goes to the vip team.
    rc, r = gw.api("contact.update", {"contact_id": other["contact_id"], "attributes": {"tier": "gold"}})
    check(rc == 0 and r["contact"]["attributes"] == {"tier": "gold"}, f"contact.update: {r}")
    vip = say("customer9", "hello again")
    check(vip.get("labels") == ["gold"] and conv(vip)["team"] == "vip", f"matched on a contact attribute: {vip.get('labels')}")

    # Business hours in Asia/Seoul (the window is the current Seoul hour +-30 min; UTC is 9 hours away).
    check(conv(say("customer7", "urgent: site down"))["labels"] == ["in-hours"], "within business hours in Asia/Seoul")

    out = read_until(tail, lambda out: out.count("conversation.assigned ") >= 7)
    check(out.count("conversation.assigned ") >= 7, f"assignments are published: {out.count('conversation.assigned ')}")
finally:
    gw.cleanup()

# The same window in UTC is not now: the after-hours rule applies.
gw2 = Gateway(config_body=f"""pipelines:
  - name: inbound
    steps:
      - identify: {{}}
      - thread: {{}}
      - route:
          type: rules
          config:
            business_hours: {{ timezone: UTC, from: "{lo}", to: "{hi}", days: [sun, mon, tue, wed, thu, fri, sat] }}
            rules:
              - match: {{ text: "^urgent", business_hours: true }}
                set: {{ labels: [in-hours] }}
              - match: {{ text: "^urgent" }}
                set: {{ labels: [after-hours] }}
""").start()
try:
    st, _ = gw2.post_message({"id": "u1", "from": "x", "text": "urgent: site down"})
    m = gw2.list_all("hooks")[0]
    check(m.get("labels") == ["after-hours"], f"the same clock window in UTC is not now: {m.get('labels')}")
finally:
    gw2.cleanup()

# The round-robin position is kept in the store: a restart goes on where it was.
gw4 = Gateway(config_body="""pipelines:
  - name: inbound
    steps:
      - identify: {}
      - thread: {}
      - route: { type: assign, config: { strategy: round_robin, teams: { t: [ann, ben, cat] }, default_team: t } }
""").start()
try:
    def agent_of(sender):
        st, _ = gw4.post_message({"id": sender, "from": sender, "text": "hi"})
        m = [m for m in gw4.list_all("hooks") if m["external_id"] == sender][0]
        return gw4.api("conversation.get", {"conversation_id": m["conversation_id"]})[1]["conversation"].get("assignee")
    before = [agent_of("p1"), agent_of("p2")]
    gw4.stop()
    gw4.start()
    after = agent_of("p3")
    check(before == ["ann", "ben"] and after == "cat", f"the turn survives a restart: {before} then {after}")
finally:
    gw4.cleanup()

# A bad pattern is refused at start with the rule and PCRE2's reason.
gw3 = Gateway(config_body="""pipelines:
  - name: inbound
    steps:
      - route: { type: rules, config: { rules: [ { match: { text: "(unclosed" }, set: { team: x } } ] } }
""")
try:
    try:
        gw3.start()
        check(False, "a bad pattern must stop the start")
    except RuntimeError as e:
        check("rule 1: bad text pattern" in str(e) and "missing closing parenthesis" in str(e), f"clear error: {str(e)[-300:]}")
finally:
    gw3.cleanup()
done()
