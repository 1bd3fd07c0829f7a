"""Acceptance (issue 18, isolated plugins): a channel plugin and a step plugin that dereference NULL on the
text "crash" (tests/plugins/crashy.c, crash_step.c), run with `isolate: true`.  The crashing webhook gets
503, the log names the signal, the child restarts and the next message is stored; an in-process channel
keeps answering 200 all along (posted to continuously); `kill -9` of either child under load loses nothing
that was acknowledged; an isolated ticker's timers, key-value state and metrics work through the gateway;
five deaths within a minute open the circuit breaker and /healthz names the channel; a step stuck past its
time is killed and restarted; an isolated webhook channel sends outbound and its result comes back; a reload
replaces an isolated channel's child; the children end with the gateway."""
import http.client
import json
import os
import signal
import threading
import time

from fakeprovider import FakeProvider
from harness import Gateway, check, done, sign

plugins = os.environ["PARLEY_TEST_PLUGINS"]
provider = FakeProvider()
provider.script[("POST", "/replies")] = [(200, {"id": "ext-1"})]

gw = Gateway(config_body=f"""plugins:
  path: [{plugins}]
outbox:
  backoff_base: 100ms
  poll_interval: 100ms
pipelines:
  - name: stepped
    from: [stepped]
    steps:
      - crash_step: {{}}
        isolate: true
      - dedupe: {{}}
  - name: slowed
    from: [slowed]
    steps:
      - slow: {{ delay: 20s }}
        isolate: true
  - name: rest
    steps:
      - dedupe: {{}}
""", extra_channels=f"""  - name: crashy
    type: crashy
    isolate: true
  - name: stepped
    type: webhook
    config: {{ secret: step-secret }}
  - name: slowed
    type: webhook
    config: {{ secret: slow-secret }}
  - name: clock
    type: ticker
    isolate: true
    config: {{ interval: 20ms, count: 5 }}
  - name: out
    type: webhook
    isolate: true
    config: {{ secret: out-secret, outbound_url: "{provider.url}/replies" }}
""")


def check_refuses_offers():
    """A router that takes queue offers cannot be isolated: `parley check` says so at the line."""
    path = os.path.join(gw.dir, "offers.yaml")
    with open(path, "w") as f:
        f.write("data_dir: var\npipelines:\n  - name: p\n    steps:\n"
                "      - route: {type: assign, config: {teams: {t: [ann]}}}\n        isolate: true\n")
    rc, out, err = gw.cli("check", "-c", path)
    check(rc != 0 and "offers.yaml:6:18: router assign takes queue offers" in err + out,
          f"an isolated router with offers is refused at its line: {rc} {err}{out}")


def post_crashy(ext, text, conn=None):
    return gw.request("POST", "/webhooks/crashy", text.encode(), {"X-Message-Id": ext}, conn)


def post_stepped(ext, text, conn=None):
    return gw.post_message({"id": ext, "from": "tel:+15550100", "text": text}, channel="stepped",
                           secret="step-secret", conn=conn)


def isolated(name):
    rc, r = gw.api("health")
    for i in r.get("isolated", []):
        if i["instance"] == name:
            return i
    return {}


def wait_state(name, states, timeout=10, restarts=0):
    """The instance's entry once its state is one of states after at least `restarts` restarts."""
    end = time.time() + timeout
    while time.time() < end:
        i = isolated(name)
        if i.get("state") == "open" and "open" in states:
            return i
        if i.get("state") in states and i.get("restarts", 0) >= restarts:
            return i
        time.sleep(0.05)
    return isolated(name)


class Poster(threading.Thread):
    """Posts to one channel without pause, keeping every answer."""

    def __init__(self, post, prefix):
        super().__init__(daemon=True)
        self.post, self.prefix = post, prefix
        self.answers, self.stop = [], threading.Event()

    def run(self):
        conn, i = None, 0
        while not self.stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=15)
            ext = f"{self.prefix}-{i}"
            i += 1
            try:
                st, _ = self.post(ext, "steady", conn)
                self.answers.append((ext, st))
            except (OSError, http.client.HTTPException) as e:
                self.answers.append((ext, repr(e)))
                conn.close()
                conn = None


def stored(channel):
    return {m["external_id"]: m for m in gw.list_all(channel)}


check_refuses_offers()
gw.start()
others = Poster(lambda ext, text, conn: gw.post_message({"id": ext, "from": "tel:+15550001", "text": text},
                                                         conn=conn), "h")
try:
    st, _ = post_crashy("c-before", "hello")
    check(st == 200, f"the isolated channel takes a message: {st}")
    st, _ = post_stepped("s-before", "hello")
    check(st == 200, f"a channel behind the isolated step takes a message: {st}")
    m = stored("stepped").get("s-before", {})
    check("crash-step-saw-it" in (m.get("labels") or []), f"the isolated step ran on it: {m}")
    others.start()

    # The channel plugin crashes: that webhook gets 503, the log names the signal, the child comes back.
    first = isolated("crashy")
    st, body = post_crashy("c-crash", "crash")
    check(st == 503, f"the webhook that crashed the isolated channel is answered 503: {st} {body!r}")
    back = wait_state("crashy", ("up",), restarts=1)
    check(back.get("state") == "up" and back.get("restarts", 0) >= 1 and back.get("pid") != first.get("pid"),
          f"the channel's child was restarted: {first} -> {back}")
    log = gw.read_log()
    check("[channel crashy] isolated plugin died of signal 11 (SIGSEGV)" in log,
          f"the log names the channel and the signal: {log[-600:]}")
    st, _ = post_crashy("c-after", "hello again")
    check(st == 200, f"after the restart the channel takes messages again: {st}")
    ids = stored("crashy")
    check("c-after" in ids and "c-before" in ids and "c-crash" not in ids, f"stored: {sorted(ids)}")

    # The step plugin crashes: its envelope is not committed (503), the step comes back.
    st, body = post_stepped("s-crash", "crash")
    check(st == 503, f"the webhook whose envelope crashed the isolated step is answered 503: {st} {body!r}")
    back = wait_state("crash_step", ("up",), restarts=1)
    check(back.get("restarts", 0) >= 1, f"the step's child was restarted: {back}")
    check("[step crash_step] isolated plugin died of signal 11 (SIGSEGV)" in gw.read_log(), "the step's death is logged")
    st, _ = post_stepped("s-after", "fine")
    ids = stored("stepped")
    check(st == 200 and "s-after" in ids and "s-crash" not in ids, f"the step works again: {st} {sorted(ids)}")

    # kill -9 of each child under load: everything acknowledged is stored.
    loaders = [Poster(post_crashy, "ck"), Poster(post_stepped, "sk")]
    for p in loaders:
        p.start()
    time.sleep(0.5)
    restarts = {}
    for name in ("crashy", "crash_step"):
        i = isolated(name)
        restarts[name] = i.get("restarts", 0)
        check(i.get("pid"), f"{name} has a child pid")
        if i.get("pid"):
            os.kill(i["pid"], signal.SIGKILL)
    for name in ("crashy", "crash_step"):
        wait_state(name, ("up",), restarts=restarts[name] + 1)
    time.sleep(0.5)
    for p in loaders:
        p.stop.set()
        p.join()
    for p, channel in zip(loaders, ("crashy", "stepped")):
        acked = [e for e, s in p.answers if s == 200]
        refused = [s for e, s in p.answers if s != 200]
        have = stored(channel)
        lost = [e for e in acked if e not in have]
        check(len(acked) > 10 and not lost,
              f"{channel}: {len(acked)} acknowledged under kill -9, {len(lost)} missing from the store {lost[:5]}")
        check(all(s == 503 for s in refused), f"{channel}: what was not acknowledged was told 503: {set(refused)}")
        print(f"{channel}: kill -9 under load: {len(acked)} acknowledged (all stored), {len(refused)} told 503")
    check("died of signal 9 (SIGKILL)" in gw.read_log(), "the kill is logged with its signal")
    st, metrics = gw.request("GET", "/metrics")
    for name in ("crashy", "crash_step"):
        for series in ("isolated_crashes_total", "isolated_restarts_total"):
            line = [ln for ln in metrics.decode().splitlines() if ln.startswith(f'parley_{series}{{instance="{name}"}}')]
            check(line and int(line[0].split()[-1]) >= 2, f"/metrics counts {name}'s deaths and restarts: {line}")

    # An isolated channel's outbound send, and its result.
    rc, r = gw.api("message.send", {"channel": "out", "to": "webhook:bob", "text": "from the isolated side"})
    check(rc == 0, f"a reply through the isolated channel is queued: {r}")
    m = gw.wait_message(r.get("id"), "sent")
    check(m.get("status") == "sent" and m.get("external_id") == "ext-1", f"its send came back sent: {m}")
    sent = [q for q in provider.requests if q.path == "/replies"]
    check(sent and sent[-1].json().get("text") == "from the isolated side", "the provider got the envelope")
    st, _ = gw.post_message({"id": "o-1", "from": "tel:+15550002", "text": "in"}, channel="out",
                            secret="out-secret")
    st_bad, _ = gw.request("POST", "/webhooks/out", b'{"id":"o-2","from":"x","text":"y"}',
                           {"X-Parley-Signature": sign("wrong", b"x")})
    check(st == 200 and st_bad == 401, f"the isolated webhook channel checks signatures: {st} {st_bad}")

    # Timers, key-value state and metrics of an isolated plugin go through the gateway: five ticks, then
    # a new child (after kill -9) continues the numbering from the state kept in the store.
    def ticks():
        return sorted((m["text"] for m in gw.list_all("clock")), key=lambda t: int(t.split()[1]))

    end = time.time() + 10
    while time.time() < end and len(ticks()) < 5:
        time.sleep(0.05)
    time.sleep(0.2)
    first = ticks()
    check(first == [f"tick {i}" for i in range(1, 6)], f"the isolated ticker's timer ticked five times: {first}")
    st, metrics = gw.request("GET", "/metrics")
    check(b'parley_ticks_total{channel="clock"} 5' in metrics, "the isolated plugin's metric is exported")
    clock = isolated("clock")
    os.kill(clock["pid"], signal.SIGKILL)
    wait_state("clock", ("up",), restarts=clock["restarts"] + 1)
    end = time.time() + 10
    while time.time() < end and len(ticks()) < 10:
        time.sleep(0.05)
    time.sleep(0.2)
    both = ticks()
    check(both == [f"tick {i}" for i in range(1, 11)], f"the new child went on from the stored state: {both}")

    # A reload that changes the isolated channel replaces its child; the old one ends.
    old_pid = isolated("out").get("pid")
    with open(gw.config) as f:
        text = f.read()
    with open(gw.config, "w") as f:
        f.write(text.replace("secret: out-secret,", "secret: out-secret-2,"))
    rc, out, err = gw.cli("reload", "-c", gw.config)
    new = wait_state("out", ("up",))
    st, _ = gw.post_message({"id": "o-3", "from": "tel:+15550002", "text": "in"}, channel="out",
                            secret="out-secret-2")
    check(rc == 0 and new.get("pid") not in (None, 0, old_pid) and st == 200,
          f"a reload replaced the isolated channel's child: {rc} {out}{err} {old_pid} -> {new} ({st})")
    try:
        os.kill(old_pid, 0)
        check(False, f"the replaced child {old_pid} still runs")
    except OSError:
        pass

    # Five deaths within a minute: the breaker opens, /healthz names the channel, its webhooks get 503 at once.
    state = isolated("crashy")
    for _ in range(8):
        state = wait_state("crashy", ("up", "open"), restarts=state.get("restarts", 0))
        if state.get("state") != "up":
            break
        post_crashy("c-again", "crash")
        state["restarts"] = state.get("restarts", 0) + 1
    check(state.get("state") == "open", f"the circuit breaker opened: {state}")
    st, body = gw.request("GET", "/healthz")
    h = json.loads(body)
    down = {d["channel"]: d["why"] for d in h.get("channels_down", [])}
    check(st == 503 and "circuit breaker open" in down.get("crashy", ""), f"/healthz names the channel: {st} {h}")
    st, _ = post_crashy("c-open", "hello")
    check(st == 503, f"while the breaker is open the channel's webhooks get 503: {st}")

    # A step that does not answer in time (10 s) is killed and restarted; its envelope is not stored.
    slow = isolated("slow")
    st, _ = gw.post_message({"id": "sl-1", "from": "tel:+15550003", "text": "slow"}, channel="slowed",
                            secret="slow-secret")
    back = wait_state("slow", ("up",), restarts=slow.get("restarts", 0) + 1)
    st2, _ = gw.post_message({"id": "sl-2", "from": "tel:+15550003", "text": "fine"}, channel="slowed",
                             secret="slow-secret")
    ids = stored("slowed")
    check(st == 503 and st2 == 200 and "sl-2" in ids and "sl-1" not in ids and back.get("pid") != slow.get("pid"),
          f"a stuck isolated step is killed and restarted: {st} {st2} {sorted(ids)} {slow} -> {back}")
    check("did not answer an envelope in time: killing it" in gw.read_log(), "the log says why it was killed")

    others.stop.set()
    others.join()
    bad = [(e, s) for e, s in others.answers if s != 200]
    check(len(others.answers) > 50 and not bad,
          f"the in-process channel answered 200 all along: {len(others.answers)} posts, not 200: {bad[:5]}")
    print(f"in-process channel during the crashes: {len(others.answers)} posts, all 200")

    pids = [i.get("pid") for i in gw.api("health")[1].get("isolated", []) if i.get("pid")]
    rc = gw.stop()
    check(rc == 0, f"the gateway stops cleanly: {rc}")
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except OSError:
            pass
    check(pids and not alive, f"the isolated children end with the gateway: {pids} alive {alive}")
finally:
    others.stop.set()
    gw.cleanup()
    provider.close()
done()
