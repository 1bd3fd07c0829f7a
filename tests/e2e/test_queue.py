"""The team queue: a conversation routed to a team whose agents are all at capacity waits, in
order (priority, then waiting time), and is assigned as soon as an agent has room, without the
customer writing again: when a conversation is resolved or an agent becomes available.  An
unavailable agent gets none.  queue.get shows the places in line, and kill -9 keeps them."""
import signal
import time

from harness import Gateway, check, done

gw = Gateway(config_body="""pipelines:
  - name: inbound
    steps:
      - dedupe: {}
      - identify: {}
      - thread: {}
      - route:
          type: rules
          config:
            rules:
              - match: { text: "^urgent" }
                set: { team: sales, priority: high }
              - match: {}
                set: { team: sales }
      - route:
          type: assign
          config:
            strategy: round_robin
            teams: { sales: [ana, bob] }
            agents: { ana: { capacity: 2 }, bob: { capacity: 1 } }
""")


def conv_of(mid):
    rc, r = gw.api("message.get", {"id": mid})
    cid = r["message"]["conversation_id"]
    rc, c = gw.api("conversation.get", {"conversation_id": cid})
    return c["conversation"]


def say(sender, text):
    st, body = gw.post_message({"id": f"{sender}-{time.time_ns()}", "from": sender, "text": text})
    check(st == 200, f"{sender} wrote: {st} {body}")
    import json
    return json.loads(body)["ids"][0]


def queue():
    rc, r = gw.api("queue.get", {"team": "sales"})
    check(r.get("ok"), f"queue.get: {r}")
    qs = r.get("queues", [])
    return [w["conversation_id"] for w in (qs[0]["waiting"] if qs else [])], (qs[0]["waiting"] if qs else [])


def wait_for(pred, timeout=5):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


try:
    gw.start()
    # bob is unavailable: only ana (capacity 2) takes conversations.
    rc, r = gw.api("state.set", {"instance": "assign", "key": "available:bob", "value": "false"})
    check(rc == 0, f"bob made unavailable: {r}")
    c1 = conv_of(say("c1", "hello"))
    c2 = conv_of(say("c2", "hello"))
    check(c1.get("assignee") == "ana" and c2.get("assignee") == "ana", f"ana takes two: {c1} {c2}")
    c3 = conv_of(say("c3", "hello, third"))
    time.sleep(0.05)
    c4 = conv_of(say("c4", "hello, fourth"))
    time.sleep(0.05)
    c5 = conv_of(say("c5", "urgent: the payment failed"))
    for c in (c3, c4, c5):
        check(c.get("assignee") is None and c["team"] == "sales" and c.get("queued_at"), f"waits in sales' queue: {c}")
    order, entries = queue()
    check(order == [c5["id"], c3["id"], c4["id"]], f"the queue: the urgent one first, then by waiting time: {order}")
    check([e["position"] for e in entries] == [1, 2, 3] and entries[0]["priority"] == "high",
          f"positions and priority: {entries}")

    # Resolving one of ana's gives her room: the first in line is hers at once, nobody wrote.
    rc, r = gw.api("conversation.resolve", {"conversation_id": c1["id"]})
    check(r.get("ok"), f"resolve: {r}")
    check(wait_for(lambda: queue()[0] == [c3["id"], c4["id"]]), f"the first in line was taken: {queue()[0]}")
    rc, r = gw.api("conversation.get", {"conversation_id": c5["id"]})
    c5now = r["conversation"]
    check(c5now.get("assignee") == "ana" and not c5now.get("queued_at"), f"c5 is ana's now: {c5now}")
    check(any(e["type"] == "assigned" and e["data"].get("assignee") == "ana" for e in c5now["events"]),
          f"the assignment is in the conversation's history: {c5now['events']}")

    # kill -9 and a restart keep the queue and its order.
    gw.stop(sig=signal.SIGKILL)
    gw.start()
    check(queue()[0] == [c3["id"], c4["id"]], f"after kill -9 and a restart, the same queue: {queue()[0]}")

    # bob becomes available (capacity 1): he takes the next in line, and only one.
    rc, r = gw.api("state.set", {"instance": "assign", "key": "available:bob", "value": "true"})
    check(wait_for(lambda: queue()[0] == [c4["id"]]), f"bob takes c3: {queue()[0]}")
    rc, r = gw.api("conversation.get", {"conversation_id": c3["id"]})
    check(r["conversation"].get("assignee") == "bob", f"c3 is bob's: {r}")
    time.sleep(2.5)  # a sweep passes: nobody has room, c4 still waits
    check(queue()[0] == [c4["id"]], f"c4 waits for room: {queue()[0]}")
    check("estimated_wait_s" not in queue()[1][0], f"with one resolution, no made-up estimate: {queue()[1]}")

    # With three resolutions behind it, the queue estimates each place's wait from them.
    late = [conv_of(say(f"w{i}", "hello, later")) for i in range(5)]
    for c in (c2, c3, c5):
        rc, r = gw.api("conversation.resolve", {"conversation_id": c["id"]})
        check(r.get("ok"), f"resolved: {r}")
    check(wait_for(lambda: len(queue()[0]) == 3), f"three taken, three wait: {queue()[0]}")
    rc, r = gw.api("queue.get", {"team": "sales"})
    q0 = r["queues"][0]
    check(q0.get("median_handling_s", -1) >= 0 and q0.get("agents") == 2, f"the team's handling figures: {q0}")
    est = [w.get("estimated_wait_s") for w in q0["waiting"]]
    check(all(e is not None and e >= 0 for e in est) and est == sorted(est), f"estimates, growing with place: {est}")
finally:
    gw.cleanup()

# least_busy: a new conversation goes to the agent with the fewest open ones.
gw = Gateway(config_body="""pipelines:
  - name: inbound
    steps:
      - dedupe: {}
      - identify: {}
      - thread: {}
      - route:
          type: assign
          config:
            strategy: least_busy
            default_team: sales
            teams: { sales: [xena, yuri] }
""")
try:
    gw.start()
    first = [conv_of(say(f"lb{i}", "hello")) for i in range(2)]
    # Both to xena by hand: yuri is now the least busy, for two in a row.
    for c in first:
        rc, r = gw.api("conversation.assign", {"conversation_id": c["id"], "assignee": "xena", "team": "sales"})
        check(r.get("ok"), f"assigned by hand: {r}")
    nxt = [conv_of(say(f"lb-next{i}", "hello"))["assignee"] for i in range(3)]
    check(nxt[:2] == ["yuri", "yuri"] and nxt[2] in ("xena", "yuri"), f"the least busy first: {nxt}")
finally:
    gw.cleanup()
done()
