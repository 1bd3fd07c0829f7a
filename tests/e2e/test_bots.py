"""Bots act through the host (parley_host.op) and own a conversation one at a time, as the server
enforces it: a bot answers a conversation it claimed; when it hands off, the conversation enters
its team's queue with the bot's note, the customer is told their place in line, and the bot's later
replies are refused until an agent hands it back; an agent's reply takes a conversation from its
bot the same way.  A bot-owned conversation is never given to an agent by the queue."""
import json
import signal
import os
import re
import time

from harness import Gateway, check, done

plugins = os.environ["PARLEY_TEST_PLUGINS"]
gw = Gateway(config_body=f"""plugins:
  path: [{plugins}]
pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
      - route:
          type: assign
          config:
            teams: {{ sales: [ana] }}
      - route:
          type: echo_bot
          config: {{ team: sales }}
""")


def say(sender, text):
    st, body = gw.post_message({"id": f"{sender}-{time.time_ns()}", "from": sender, "text": text})
    check(st == 200, f"{sender}: {st} {body}")
    rc, r = gw.api("message.get", {"id": json.loads(body)["ids"][0]})
    return r["message"]["conversation_id"]


def outbound(cid):
    rc, r = gw.api("conversation.get", {"conversation_id": cid})
    c = r["conversation"]
    return c, [m.get("text") for m in c["timeline"] if m.get("direction") == "outbound"]


def wait_out(cid, n, timeout=5):
    end = time.time() + timeout
    while time.time() < end:
        c, out = outbound(cid)
        if len(out) >= n:
            return c, out
        time.sleep(0.05)
    return outbound(cid)


def metric(name):
    st, body = gw.request("GET", "/metrics")
    m = re.search(rf'parley_{name}{{channel="echo_bot"}} (\d+)', body.decode())
    return int(m.group(1)) if m else 0


def wait_metric(name, at_least, timeout=10):
    """The metric once it reaches at_least (the bot acts after the webhook's answer), or its last value."""
    end = time.time() + timeout
    while metric(name) < at_least and time.time() < end:
        time.sleep(0.05)
    return metric(name)


try:
    gw.start()
    # ana is busy elsewhere: her capacity is taken, so a handed-off conversation waits.
    rc, r = gw.api("state.set", {"instance": "assign", "key": "available:ana", "value": "false"})
    cid = say("kim", "hi there")
    c, out = wait_out(cid, 1)
    check(out == ["echo: hi there"], f"the bot answered its conversation: {out}")
    check(c.get("assignee") is None, f"nobody but the bot has it: {c}")

    cid2 = say("kim", "I want a human")
    check(cid2 == cid, "the same conversation")
    c, out = wait_out(cid, 2)
    check(out[1:] == ["You are number 1 in line"], f"told their place in line: {out}")
    check(c.get("team") == "sales" and c.get("queued_at"), f"in sales' queue: {c}")
    check([n["text"] for n in c["notes"]] == ["bot: the customer asked for a human"], f"the bot's note: {c['notes']}")
    rc, q = gw.api("queue.get", {"team": "sales"})
    check([w["conversation_id"] for w in q["queues"][0]["waiting"]] == [cid], f"queue.get: {q}")

    # kill -9: the handoff is in the store; the restarted bot still may not answer.
    gw.stop(sig=signal.SIGKILL)
    gw.start()
    refused = metric("bot_refused_total")
    say("kim", "hello? anyone?")
    check(wait_metric("bot_refused_total", refused + 1) == refused + 1, "the bot's reply was refused by the server")
    c, out = outbound(cid)
    check("echo: hello? anyone?" not in out, f"handed off: the bot no longer answers: {out}")

    # ana becomes available: the queue gives her the handed-off conversation.
    rc, r = gw.api("state.set", {"instance": "assign", "key": "available:ana", "value": "true"})
    end = time.time() + 5
    while time.time() < end and outbound(cid)[0].get("assignee") != "ana":
        time.sleep(0.05)
    check(outbound(cid)[0].get("assignee") == "ana", "the queue assigned it to ana")

    # An agent hands it back to the bot: the bot answers again, and the queue leaves it alone.
    rc, r = gw.api("conversation.bot", {"conversation_id": cid, "bot": "echo_bot"})
    check(r.get("ok"), f"handed back: {r}")
    say("kim", "thanks")
    c, out = wait_out(cid, 3)
    check(out[-1] == "echo: thanks" and c.get("assignee") is None, f"the bot answers again, unassigned: {out} {c}")
    time.sleep(2.5)  # a queue sweep passes: ana has room, but a bot's conversation is not hers
    check(outbound(cid)[0].get("assignee") is None, "the queue does not take a bot's conversation")

    # An agent's reply takes a conversation from its bot.
    other = say("lee", "good morning")
    wait_out(other, 1)
    rc, r = gw.api("message.send", {"conversation_id": other, "text": "Hello, this is Ana"})
    check(r.get("ok"), f"the agent's reply: {r}")
    refused = metric("bot_refused_total")
    say("lee", "hi Ana")
    check(wait_metric("bot_refused_total", refused + 1) == refused + 1, "the bot's attempt was refused")
    c, out = outbound(other)
    check(out == ["echo: good morning", "Hello, this is Ana"], f"after the agent's reply, no more echo: {out}")
finally:
    gw.cleanup()
done()
