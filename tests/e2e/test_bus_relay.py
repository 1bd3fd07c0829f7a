"""The host's relay (core/relay.c) against a test bus plugin that fails on demand (tests/plugins/
flaky_bus.c): every stored envelope reaches the bus once, in store order, through intermittent
failures and an outage; events wait out the outage; an envelope the bus can never take is skipped
and counted instead of stopping the relay; a restart resumes after the saved cursor."""
import json
import os
import shutil
import tempfile
import time

from harness import Gateway, check, done

plugins = os.environ.get("PARLEY_TEST_PLUGINS", "build/tests/test-plugins")
tmp = tempfile.mkdtemp(prefix="parley-flaky-")
LOG, DOWN = os.path.join(tmp, "bus.log"), os.path.join(tmp, "down")
gw = Gateway(config_body=f"""plugins:
  path: [{plugins}]
pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
bus:
  type: flaky
  config: {{ log: "{LOG}", down: "{DOWN}", fail_every: 5, max_size: 1500 }}
""")


def taken():
    """(topic, id) lines the bus took, in order."""
    if not os.path.exists(LOG):
        return []
    with open(LOG) as f:
        return [tuple(l.split()) for l in f if l.strip()]


def envelope_ids():
    return [i for t, i in taken() if t.startswith("message.")]


def stored():
    return [m["id"] for m in gw.list_all("hooks")]


def wait_for(cond, timeout=15):
    end = time.time() + timeout
    while not cond() and time.time() < end:
        time.sleep(0.05)
    return cond()


def post(i, sender, text=None):
    st, _ = gw.post_message({"id": f"m-{i}", "from": sender, "text": text or f"hello {i}"})
    return st


def healthz():
    return json.loads(gw.request("GET", "/healthz")[1])


def metric(name):
    for line in gw.request("GET", "/metrics")[1].decode().splitlines():
        if line.startswith(f'parley_{name}{{bus="flaky"}} '):
            return int(line.split()[-1])
    return None


try:
    gw.start()
    # Every fifth publish fails: each stored envelope still arrives once, in store order.
    sts = [post(i, f"tel:+1555000{i % 3}") for i in range(40)]
    check(all(s == 200 for s in sts), f"webhooks answered 200: {sts}")
    ids = stored()
    check(wait_for(lambda: envelope_ids() == ids), f"the bus took the 40 envelopes once, in store order: "
          f"{len(envelope_ids())} lines, {len(set(envelope_ids()))} distinct")
    check(wait_for(lambda: sum(t == "contact.created" for t, _ in taken()) == 3),
          f"3 contact.created events: {[t for t, _ in taken() if not t.startswith('message.')]}")
    check(metric("bus_failures_total") >= 5, f"the failures are counted: {metric('bus_failures_total')}")
    check(wait_for(lambda: healthz().get("durable_bus") == "up"), f"/healthz: {healthz()}")

    # An outage: ingest goes on; the relay reports it and catches up afterwards, events included.
    open(DOWN, "w").close()
    sts = [post(i, f"tel:+1555100{i % 2}") for i in range(40, 60)]
    check(all(s == 200 for s in sts), f"webhooks answered 200 while the bus is down: {sts}")
    check(wait_for(lambda: healthz().get("durable_bus") == "down"), f"/healthz says down: {healthz()}")
    rc, h = gw.api("health")
    check(h.get("durable_bus", {}).get("reachable") == "no" and h["durable_bus"].get("lag", 0) > 0,
          f"the health op shows the outage and the lag: {h}")
    time.sleep(1.5)
    os.unlink(DOWN)
    ids = stored()
    check(wait_for(lambda: envelope_ids() == ids), f"caught up after the outage, once each, in order: "
          f"{len(envelope_ids())} of {len(ids)}")
    check(wait_for(lambda: sum(t == "contact.created" for t, _ in taken()) == 5),
          "the 2 contact.created events of the outage arrived")
    check(wait_for(lambda: healthz().get("durable_bus") == "up"), "up again")
    check(wait_for(lambda: metric("bus_lag") == 0), f"no lag once caught up: {metric('bus_lag')}")

    # One envelope too big for the bus: skipped and counted, the ones after it still go.
    sts = [post(60, "tel:+15550000", "x" * 3000)] + [post(i, "tel:+15550000") for i in range(61, 64)]
    check(all(s == 200 for s in sts), f"webhooks answered 200: {sts}")
    ids = stored()
    big = ids[60]
    check(wait_for(lambda: envelope_ids() == ids[:60] + ids[61:]), "the envelopes after the big one went")
    check(metric("bus_skipped_total") == 1, f"the big one is counted as skipped: {metric('bus_skipped_total')}")
    check(f"envelope {big} (" in gw.read_log(), "the big one is named in the log")

    # A restart resumes after the saved cursor: nothing is taken twice.
    check(gw.stop() == 0, "the gateway stops cleanly")
    gw.start()
    post(64, "tel:+15550000")
    ids = stored()
    check(wait_for(lambda: envelope_ids() == ids[:60] + ids[61:]), "after the restart: each envelope once")
    check(f"relaying committed envelopes after store seq 64" in gw.read_log(), "resumed after the cursor")
finally:
    gw.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
done()
