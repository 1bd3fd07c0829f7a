"""The sentiment step in a real gateway: "정말 화가 나네요, 환불해 주세요" is stored with
meta.sentiment < 0, and its conversation is labelled negative with priority high
(priority_on_negative); a rules router after it matches labels: [negative] and its own
labels add to it; a thankful message is positive and unlabelled; a threshold set lower
lets a mild complaint pass; a bad threshold is a config error at its line."""
import os

from harness import Gateway, check, done

gw = Gateway(config_body="""pipelines:
  - name: inbound
    steps:
      - dedupe: {}
      - identify: {}
      - thread: {}
      - sentiment: { negative_below: "-0.3", priority_on_negative: high }
      - route:
          type: rules
          config:
            rules:
              - match: { labels: [negative] }
                set: { team: care, labels: [escalated] }
              - match: {}
                set: { team: general }
""")
gw.start()


def say(g, sender, ext, text, meta=None):
    msg = {"id": ext, "from": sender, "text": text}
    if meta:
        msg["meta"] = meta
    st, body = g.post_message(msg)
    check(st == 200, f"accepted: {st} {body!r}")
    m = [m for m in g.list_all("hooks") if m["external_id"] == ext][0]
    rc, r = g.api("conversation.get", {"conversation_id": m["conversation_id"]})
    return m, r.get("conversation", {})


try:
    m, c = say(gw, "angry", "s1", "정말 화가 나네요, 환불해 주세요")
    s = m.get("meta", {}).get("sentiment")
    check(isinstance(s, (int, float)) and -1 <= s < 0, f"meta.sentiment is a negative number: {m.get('meta')}")
    check("negative" in m.get("labels", []) and "escalated" in m.get("labels", []),
          f"the envelope carries negative and the rule's label: {m.get('labels')}")
    check("negative" in c.get("labels", []) and "escalated" in c.get("labels", []),
          f"the conversation is labelled negative (and the rule's label adds): {c.get('labels')}")
    check(c.get("priority") == "high", f"priority_on_negative: {c.get('priority')}")
    check(c.get("team") == "care", f"a rule matched labels: [negative]: {c.get('team')}")

    m, c = say(gw, "happy", "s2", "빠른 배송 정말 감사합니다!")
    s = m.get("meta", {}).get("sentiment")
    check(isinstance(s, (int, float)) and s > 0.3, f"a thankful message is positive: {m.get('meta')}")
    check("negative" not in (c.get("labels") or []) and c.get("priority") != "high" and c.get("team") == "general",
          f"and not labelled: {c}")

    m, c = say(gw, "en", "s3", "I'm not happy, the parcel never arrived")
    check(m.get("meta", {}).get("sentiment", 0) < -0.3 and "negative" in c.get("labels", []),
          f"English negation: {m.get('meta')} {c.get('labels')}")

    # Provider meta is kept beside the score.
    m, c = say(gw, "plain", "s4", "주문번호 12345", meta={"shop": "kr-1"})
    check(m.get("meta", {}).get("sentiment") == 0 and "negative" not in (c.get("labels") or []),
          f"no sentiment words: 0 and no label: {m.get('meta')}")
    check(m.get("meta", {}).get("shop") == "kr-1", f"the sender's meta is kept: {m.get('meta')}")
finally:
    gw.cleanup()

# A lower threshold and no priority: a mild complaint passes; a strong one is labelled, priority unchanged.
gw2 = Gateway(config_body="""pipelines:
  - name: inbound
    steps:
      - identify: {}
      - thread: {}
      - sentiment: { negative_below: "-0.8", label: unhappy }
""").start()
try:
    m, c = say(gw2, "mild", "t1", "배송이 좀 늦네요")
    check(m["meta"]["sentiment"] < 0 and "unhappy" not in (c.get("labels") or []), f"above -0.8: {m['meta']} {c}")
    m, c = say(gw2, "strong", "t2", "정말 최악이에요. 진짜 화가 나요")
    check("unhappy" in c.get("labels", []) and c.get("priority") != "high", f"label: unhappy, no priority: {c}")
finally:
    gw2.cleanup()

# A threshold that is no number, and one out of range, are config errors naming the line.
gw3 = Gateway()
try:
    for bad_value, why in (('"abc"', "is not a number from -1 to 1"), ('"-2"', "is not a number from -1 to 1")):
        bad = os.path.join(gw3.dir, "bad.yaml")
        with open(bad, "w") as f:
            f.write(f"""channels:
  - name: hooks
    type: webhook
    config: {{ secret: s }}
pipelines:
  - name: inbound
    steps:
      - sentiment: {{ negative_below: {bad_value} }}
""")
        rc, out, err = gw3.cli("check", "-c", bad)
        check(rc != 0 and ":8:" in err and why in err, f"negative_below {bad_value}: {rc} {err!r}")
finally:
    gw3.cleanup()
done()
