"""/metrics is valid Prometheus text: every family has # HELP and # TYPE, and label values that
come from data (a team named with quotes and a backslash) are escaped, so a scraper reads every
sample (checked with the prometheus_client parser, Debian's python3-prometheus-client)."""
import json
import os
import re
import sys
import time

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    debian = "/usr/bin/python3"
    if os.path.exists(debian) and os.path.realpath(sys.executable) != os.path.realpath(debian) \
            and not os.environ.get("PARLEY_PROM_REEXEC"):
        os.environ["PARLEY_PROM_REEXEC"] = "1"
        os.execv(debian, [debian, os.path.abspath(__file__), *sys.argv[1:]])
    print("FAIL: python3-prometheus-client is missing: scripts/deps.sh --test installs it", file=sys.stderr)
    sys.exit(1)

from harness import SOURCE_DIR, Gateway, check, done  # noqa: E402

TEAM = 'sales "east" \\ 1'
gw = Gateway(config_body=f"""pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
      - route:
          type: rules
          config:
            rules:
              - match: {{}}
                set: {{ team: {json.dumps(TEAM)} }}
      - route:
          type: assign
          config:
            teams: {{ {json.dumps(TEAM)}: [ana] }}
            agents: {{ ana: {{ capacity: 1 }} }}
""")


def conv_of(mid):
    rc, r = gw.api("message.get", {"id": mid})
    return r["message"]["conversation_id"]


try:
    gw.start()
    ids = []
    for who in ("m1", "m2"):
        st, body = gw.post_message({"id": who, "from": who, "text": "hello"})
        ids.append(json.loads(body)["ids"][0])
    gw.post_message({"id": "bad"}, raw=b"{not json")
    first = conv_of(ids[0])
    rc, r = gw.api("conversation.resolve", {"conversation_id": first})
    end = time.time() + 5
    while time.time() < end:
        st, body = gw.request("GET", "/metrics")
        if b"parley_queue_assignments_total" in body:
            break
        time.sleep(0.05)
    text = body.decode()
    families = list(text_string_to_metric_families(text))
    names = {f.name for f in families}
    check({"parley_webhooks_received", "parley_envelopes_stored", "parley_http_responses",
           "parley_queue_assignments"} <= names, f"the families are read: {sorted(names)}")
    for f in families:
        check(f.documentation and f.documentation != f.name, f"{f.name} has # HELP: {f.documentation!r}")
    teams = [s.labels.get("team") for f in families for s in f.samples if f.name == "parley_queue_assignments"]
    check(teams == [TEAM], f"the team label reads back as written: {teams}")
    hist = {s.labels.get("channel"): s.value for f in families for s in f.samples
            if f.name == "parley_webhook_seconds" and s.name == "parley_webhook_seconds_count"}
    check(hist.get("hooks") == 3, f"every webhook's time is in the histogram: {hist}")
    outbox = {s.labels.get("state"): s.value for f in families for s in f.samples if f.name == "parley_outbox_messages"}
    check(set(outbox) == {"queued", "retry", "sending", "failed"}, f"the outbox gauge: {outbox}")
    # The Grafana dashboard in examples/ asks only for metrics the gateway has.
    dash = json.load(open(os.path.join(SOURCE_DIR, "examples", "grafana", "parley-dashboard.json")))
    asked = set()
    for panel in dash["panels"]:
        for t in panel["targets"]:
            asked |= set(re.findall(r"parley_[a-z_]+", t["expr"]))
    have = set()
    for f in families:
        have |= {s.name for s in f.samples}
    check(asked and asked <= have, f"the dashboard's metrics exist: {sorted(asked - have)}")
    helps = [line for line in text.splitlines() if line.startswith("# HELP ")]
    types = [line for line in text.splitlines() if line.startswith("# TYPE ")]
    check(len(helps) == len(types), f"a HELP for every TYPE: {len(helps)} {len(types)}")
finally:
    gw.cleanup()
done()
