"""Acceptance: with bus: {type: nats}, a JetStream subscriber misses nothing.

(a) every acknowledged webhook's stored envelope is in the stream exactly once, on
    parley.<topic>, with Nats-Msg-Id = the envelope id; events (contact.created) go too;
(b) NATS stopped during posting: webhooks still get 2xx, and once it is back (same port and
    store) the stream catches up with nothing missing and no id twice;
(c) a gateway restart resumes from the saved cursor: distinct ids == stored count, no id twice;
(d) a NATS that is down when the gateway starts does not stop it, and the stream catches up later;
(e) after a crash (SIGKILL) whatever is republished from an older cursor is dropped by the stream."""
import json
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from harness import Gateway, check, done
from natsserver import NatsServer

N1, N2, N3, N4, N5 = 200, 40, 5, 10, 100
TOPIC = "parley.message.inbound.webhook.hooks"

nats = NatsServer().start()
gw = Gateway(config_body=f"""pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
bus: {{ type: nats, config: {{ url: "{nats.url}", stream: PARLEY, timeout: 1s }} }}
""")


def post_range(start, n, senders):
    """Post n webhooks from 8 connections at once (so commits batch), from `senders` phone numbers."""
    def one(i):
        st, _ = gw.post_message({"id": f"m-{i}", "from": senders[i % len(senders)], "text": f"hello {i}"})
        return st
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(start, start + n)))


OLD = [f"tel:+1555000{i:04d}" for i in range(7)]
NEW = [f"tel:+1555100{i:04d}" for i in range(4)]  # new contacts while NATS is down: their events must wait


def envelope_rows():
    rows, _ = nats.dump("PARLEY")
    return [r for r in rows if r[1].startswith("parley.message.")], rows


def wait_stream(want_ids, timeout=20):
    """Wait until the stream's envelope ids cover want_ids; the envelope rows and all rows."""
    end = time.time() + timeout
    while True:
        env, rows = envelope_rows()
        if want_ids <= {r[2] for r in env} or time.time() > end:
            return env, rows
        time.sleep(0.2)


def stored_ids():
    return {m["id"] for m in gw.list_all("hooks")}


def health():
    st, body = gw.request("GET", "/healthz")
    return st, json.loads(body)


try:
    # A bus: section is checked like storage: (FILE:LINE:COL, the plugin's own keys).
    with open(gw.dir + "/bad.yaml", "w") as f:
        f.write('bus: { type: nats, config: { url: "nats://x", streem: P } }\n')
    rc, out, err = gw.cli("check", "-c", gw.dir + "/bad.yaml")
    check(rc != 0 and "bad.yaml:1:" in err and "unknown key 'streem'" in err and "did you mean 'stream'" in err,
          f"an unknown bus config key is an error with its place: {err}")
    with open(gw.dir + "/bad2.yaml", "w") as f:
        f.write('bus:\n  type: nats\n  config: { url: "nats://x", stream: A.B }\n')
    rc, out, err = gw.cli("check", "-c", gw.dir + "/bad2.yaml")
    check(rc != 0 and "bad2.yaml:3:11: bus: stream must be a name without '.'" in err,
          f"the plugin's own check of the stream name, at its place: {err}")
    rc, out, err = gw.cli("plugins")
    check(any(l.split()[:2] == ["nats", "bus"] for l in out.splitlines()), f"plugins lists nats (bus): {out}")

    t0 = time.time()
    gw.start()
    # (a) N1 webhooks, all acknowledged, each stored envelope once in the stream.
    sts = post_range(0, N1, OLD)
    check(all(200 <= s < 300 for s in sts), f"(a) webhooks answered 2xx: {sts}")
    ids = stored_ids()
    check(len(ids) == N1, f"(a) {len(ids)} stored, expected {N1}")
    env, rows = wait_stream(ids)
    info = nats.dump("PARLEY")[1]
    check(info.get("duplicate_window_ms") == 120000, f"(a) the stream deduplicates over 2 min: {info}")
    got = Counter(r[2] for r in env)
    check(set(got) == ids, f"(a) the stream holds every stored id: missing {ids - set(got)}, extra {set(got) - ids}")
    check(all(c == 1 for c in got.values()), f"(a) no id twice: {[k for k, c in got.items() if c > 1]}")
    check(all(r[1] == TOPIC for r in env), f"(a) envelopes on {TOPIC}: {set(r[1] for r in env)}")
    created = sum(r[1] == "parley.contact.created" for r in rows)
    check(created == len(OLD), f"(a) events go too: {created} contact.created for {len(OLD)} senders")
    check(any(r[1] == "parley.conversation.opened" for r in rows), "(a) events go too (conversation.opened)")
    ev_ids = [r[2] for r in rows if not r[1].startswith("parley.message.")]
    check(len(ev_ids) == len(set(ev_ids)) and all(len(i) == 26 for i in ev_ids), f"(a) each event its own id: {ev_ids}")
    st, h = health()
    check(st == 200 and h.get("durable_bus") == "up", f"(a) /healthz says the durable bus is up: {h}")
    st, body = gw.request("GET", "/metrics")
    m = body.decode()
    check(f'parley_bus_published_total{{bus="nats"}} {len(rows)}' in m, f"(a) published count in /metrics:\n{m}")
    check('parley_bus_lag{bus="nats"} 0' in m, "(a) no lag once caught up")
    rc, hr = gw.api("health")
    check(rc == 0 and hr.get("durable_bus", {}).get("state") == "up", f"(a) the health op has the bus: {hr}")

    # (b) NATS down while webhooks keep coming: ingest goes on, then the stream catches up.
    nats.stop()
    sts = post_range(N1, N2, NEW)
    check(all(200 <= s < 300 for s in sts), f"(b) webhooks answered 2xx with NATS down: {sts}")
    end = time.time() + 10
    while time.time() < end and health()[1].get("durable_bus") != "down":
        time.sleep(0.1)
    st, h = health()
    check(st == 200 and h.get("durable_bus") == "down", f"(b) /healthz: still 200, durable bus down: {st} {h}")
    st, body = gw.request("GET", "/metrics")
    lag = [l for l in body.decode().splitlines() if l.startswith("parley_bus_lag")]
    check(lag and int(lag[0].split()[-1]) > 0, f"(b) /metrics shows the lag while NATS is down: {lag}")
    time.sleep(2.0)  # several retries against a closed port, the backoff growing
    nats.start()
    ids = stored_ids()
    check(len(ids) == N1 + N2, f"(b) {len(ids)} stored, expected {N1 + N2}")
    env, rows = wait_stream(ids)
    got = Counter(r[2] for r in env)
    check(set(got) == ids, f"(b) caught up: missing {sorted(ids - set(got))}")
    check(all(c == 1 for c in got.values()), f"(b) no id twice after the outage: {[k for k, c in got.items() if c > 1]}")
    end = time.time() + 10
    while time.time() < end and sum(r[1] == "parley.contact.created" for r in rows) < len(OLD) + len(NEW):
        time.sleep(0.2)
        rows = nats.dump("PARLEY")[0]
    created = sum(r[1] == "parley.contact.created" for r in rows)
    check(created == len(OLD) + len(NEW), f"(b) events queued during the outage arrive: {created} contact.created")
    end = time.time() + 10
    while time.time() < end and health()[1].get("durable_bus") != "up":
        time.sleep(0.1)
    check(health()[1].get("durable_bus") == "up", "(b) the durable bus is up again")

    # (c) a gateway restart resumes after its cursor.
    check(gw.stop() == 0, "(c) the gateway stops cleanly")
    gw.start()
    sts = post_range(N1 + N2, N3, OLD)
    check(all(200 <= s < 300 for s in sts), f"(c) webhooks after the restart answered 2xx: {sts}")
    ids = stored_ids()
    env, rows = wait_stream(ids)
    time.sleep(0.5)  # anything republished from an old cursor would show by now
    env, rows = envelope_rows()
    got = Counter(r[2] for r in env)
    check(len(ids) == N1 + N2 + N3 and set(got) == ids, f"(c) distinct ids == stored: {len(set(got))} vs {len(ids)}")
    check(len(env) == len(ids), f"(c) no envelope twice in the stream: {len(env)} messages for {len(ids)} ids")
    log = gw.read_log()
    check(f"relaying committed envelopes after store seq {N1 + N2}" in log,
          "(c) the restarted relay resumed after the saved cursor")

    # (d) NATS down when the gateway starts: it starts anyway, and the stream catches up later.
    check(gw.stop() == 0, "(d) the gateway stops cleanly")
    nats.stop()
    t1 = time.time()
    gw.start()
    check(time.time() - t1 < 5, f"(d) the gateway started in {time.time() - t1:.1f} s without NATS")
    sts = post_range(N1 + N2 + N3, N4, OLD)
    check(all(200 <= s < 300 for s in sts), f"(d) webhooks answered 2xx without NATS: {sts}")
    nats.start()
    ids = stored_ids()
    env, rows = wait_stream(ids)
    got = Counter(r[2] for r in env)
    check(set(got) == ids and len(env) == len(ids), f"(d) caught up once NATS came: {len(set(got))} of {len(ids)}")

    # (e) a crash: the cursor may be behind what was published; the stream drops the republished copies.
    sts = post_range(N1 + N2 + N3 + N4, N5, OLD)
    check(all(200 <= s < 300 for s in sts), f"(e) webhooks answered 2xx: {sts}")
    gw.stop(signal.SIGKILL)
    gw.start()
    ids = stored_ids()
    env, rows = wait_stream(ids)
    time.sleep(0.5)
    env, rows = envelope_rows()
    got = Counter(r[2] for r in env)
    check(len(ids) == N1 + N2 + N3 + N4 + N5, f"(e) {len(ids)} stored")
    check(set(got) == ids, f"(e) distinct ids == stored after the crash: missing {sorted(ids - set(got))}")
    check(len(env) == len(ids), f"(e) no id twice after the crash: {len(env)} messages for {len(ids)} ids")
    check(time.time() - t0 < 60, f"bounded: took {time.time() - t0:.1f} s")
finally:
    gw.cleanup()
    if failures_seen := __import__("harness").failures:
        print("--- nats-server log, last lines ---\n" + "\n".join(nats.read_log().splitlines()[-20:]))
    nats.cleanup()
done()
