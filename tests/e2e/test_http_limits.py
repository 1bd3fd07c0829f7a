"""Slow and greedy clients: a head or body not finished within http.header_timeout /
body_timeout is closed even while bytes trickle in; connections over
http.max_connections_per_ip are refused at accept, and when max_connections is reached the
connection that has waited longest for a request head makes room for a new one; requests over
http.max_inflight get 503 with Retry-After; a slowloris of 50 connections does not stop
a normal client.  Every refusal is counted in /metrics."""
import os
import select
import threading
import time

from harness import Gateway, check, done
from rawhttp import Reader, connect, exchange, metric, request

HEADER_TIMEOUT = 1.5
gw = Gateway(http_extra=f"""  header_timeout: {HEADER_TIMEOUT}s
  body_timeout: {HEADER_TIMEOUT}s
  max_connections: 60
  max_connections_per_ip: 20
""").start()


def healthz(source="127.0.0.1"):
    s = connect(gw.port, source=source, timeout=3)
    try:
        s.sendall(request("GET", "/healthz"))
        return Reader(s).response(3)
    except OSError:
        return None
    finally:
        s.close()


def open_idle(source, n):
    return [connect(gw.port, source=source) for _ in range(n)]


def closed_now(socks, wait=0.4):
    """The sockets the server has closed (EOF or reset) within wait seconds."""
    time.sleep(wait)
    out = set()
    readable, _, _ = select.select(socks, [], [], 0)
    for s in readable:
        try:
            if s.recv(1, 0) == b"":
                out.add(s)
        except OSError:
            out.add(s)
    return out


def closed_by(socks, n, timeout):
    """The sockets the server has closed, once n of them are (or timeout passes)."""
    end = time.time() + timeout
    out = closed_now(socks, 0)
    while len(out) < n and time.time() < end:
        out |= closed_now([s for s in socks if s not in out], 0.05)
    return out


def metrics():
    [resp] = exchange(gw.port, request("GET", "/metrics"))
    return resp.body.decode() if resp else ""


try:
    # A half-sent head is closed at the header deadline, without an answer.
    s = connect(gw.port, timeout=10)
    t0 = time.time()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    r = Reader(s)
    closed = r.closed(timeout=HEADER_TIMEOUT + 3)
    waited = time.time() - t0
    check(closed and HEADER_TIMEOUT - 0.3 <= waited <= HEADER_TIMEOUT + 1.5,
          f"a half-sent head was closed after {waited:.2f} s (header_timeout {HEADER_TIMEOUT} s)")
    s.close()

    # A body trickling in a byte every 0.2 s is closed at the body deadline.
    s = connect(gw.port, timeout=10)
    s.sendall(b"POST /webhooks/hooks HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    t0 = time.time()
    alive = True
    while alive and time.time() - t0 < HEADER_TIMEOUT + 3:
        time.sleep(0.2)
        try:
            s.sendall(b" ")
        except OSError:
            alive = False
        if alive and closed_now([s], 0):
            alive = False
    waited = time.time() - t0
    check(not alive and waited <= HEADER_TIMEOUT + 1.5, f"a trickling body was closed after {waited:.2f} s")
    s.close()

    # Slowloris: 50 connections from one address, each trickling its head a byte at a time.
    slow = open_idle("127.0.0.2", 50)
    for s in slow:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
    refused = closed_by(slow, 30, HEADER_TIMEOUT - 0.3)  # before the header deadline closes the rest too
    check(len(refused) == 30, f"over max_connections_per_ip (20): {len(refused)} of 50 refused, expected 30")
    open_ = [s for s in slow if s not in refused]
    t0 = time.time()
    resp = healthz()
    check(resp is not None and resp.status == 200 and time.time() - t0 < 1.0,
          f"a normal client during the slowloris is answered at once: {resp} in {time.time() - t0:.2f} s")
    gone = set()
    while time.time() - t0 < HEADER_TIMEOUT + 2 and len(gone) < len(open_):
        for s in open_:
            if s not in gone:
                try:
                    s.sendall(b"X")
                except OSError:
                    gone.add(s)
        gone |= closed_now([s for s in open_ if s not in gone], 0.2)
    check(len(gone) == len(open_) == 20, f"the header deadline closed {len(gone)} of {len(open_)} slow connections")
    for s in slow:
        s.close()

    # The total cap: 60 connections from three addresses fill it.  A new client is not shut out
    # by them: the connection that has waited longest for a request head makes room.
    # The server accepts on several threads, so connections opened back to back may be taken in
    # either order: the two that must be oldest are opened with a pause after each.
    idle = []
    for _ in range(2):
        idle += open_idle("127.0.0.3", 1)
        time.sleep(0.15)
    idle += open_idle("127.0.0.3", 18) + open_idle("127.0.0.4", 20) + open_idle("127.0.0.5", 20)
    check(not closed_now(idle, 0.3), "60 connections from three addresses are accepted")
    resp = healthz("127.0.0.6")
    check(resp is not None and resp.status == 200, f"while full, a new client is answered: {resp}")
    gone = closed_now(idle, 0.3)
    check(gone == {idle[0]}, f"the longest-waiting idle connection made room: {[idle.index(s) for s in gone]}")
    idle += open_idle("127.0.0.7", 1)
    check(not closed_now(idle[1:], 0.3), "a new idle connection takes the freed slot")
    resp = healthz("127.0.0.6")
    check(resp is not None and resp.status == 200, f"full again, the next client is answered too: {resp}")
    gone = closed_now(idle, 0.3)
    check(gone == {idle[0], idle[1]}, f"and the next-longest waiting made room: {sorted(idle.index(s) for s in gone)}")
    for s in idle:
        s.close()

    text = metrics()
    for reason, least in (("header_timeout", 21), ("body_timeout", 1), ("too_many_connections", 30),
                          ("evicted_idle", 2)):
        got = metric(text, "http_refused_total", f'reason="{reason}"')
        check(got >= least, f"parley_http_refused_total{{reason=\"{reason}\"}} is {got}, expected >= {least}")
finally:
    gw.cleanup()

# max_inflight: with two webhooks held by a slow step, a third is told 503 with Retry-After.
plugins = os.environ.get("PARLEY_TEST_PLUGINS")
if check(plugins, "PARLEY_TEST_PLUGINS is set (by ctest)"):
    gw = Gateway(http_extra="  max_inflight: 2\n", config_body=f"""plugins:
  path: [{plugins}]
pipelines:
  - name: inbound
    steps:
      - slow: {{ delay: 1500ms }}
""").start()
    try:
        results = {}

        def post(i):
            results[i] = gw.post_message({"id": f"held-{i}", "from": "tel:+15550000009", "text": "slow"})

        held = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for t in held:
            t.start()
        end = time.time() + 10  # both held in the slow step: submitted, not yet committed
        while metric(metrics(), "inflight_submissions") < 2 and time.time() < end:
            time.sleep(0.02)
        s = connect(gw.port)
        s.sendall(request("POST", "/webhooks/hooks", b"{}"))
        third = Reader(s).response()
        s.close()
        check(third is not None and third.status == 503 and third.headers.get("retry-after") == "1"
              and third.json().get("ok") is False, f"a third request over max_inflight 2: {third}")
        for t in held:
            t.join()
        check([results[i][0] for i in range(2)] == [200, 200], f"the two held requests: {results}")
        resp = gw.post_message({"id": "after-1", "from": "tel:+15550000009", "text": "after"})
        check(resp[0] == 200, f"once they are answered, the next is served: {resp}")
        check(metric(metrics(), "http_refused_total", 'reason="overloaded"') == 1, "the refusal is counted")
    finally:
        gw.cleanup()
done()
