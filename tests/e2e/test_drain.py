"""Acceptance: SIGTERM during a steady ingest exits 0 within 10 s, and every request
that got 2xx is in the store (read back after a restart)."""
import http.client
import json
import threading
import time

from harness import Gateway, check, done, sign

gw = Gateway().start()
acked, others, stop = [], [], threading.Event()
lock = threading.Lock()


def sender(worker):
    conn = None
    i = 0
    while not stop.is_set():
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=15)
        ext = f"w{worker}-{i}"
        i += 1
        body = json.dumps({"id": ext, "from": f"user{worker}", "text": "steady"}).encode()
        try:
            conn.request("POST", "/webhooks/hooks", body,
                         {"Content-Type": "application/json", "X-Parley-Signature": sign(gw.secret, body)})
            r = conn.getresponse()
            r.read()
            with lock:
                (acked if 200 <= r.status < 300 else others).append((ext, r.status))
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = None
            time.sleep(0.01)


try:
    threads = [threading.Thread(target=sender, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    t0 = time.time()
    rc = gw.stop(timeout=20)
    elapsed = time.time() - t0
    stop.set()
    for t in threads:
        t.join()
    check(rc == 0, f"exit code after SIGTERM is {rc}")
    check(elapsed < 10, f"drained and exited in {elapsed:.2f} s")
    check(len(acked) > 100, f"the ingest was steady: {len(acked)} acknowledged")
    check(all(s == 503 for _, s in others), f"requests not acknowledged were told 503: {set(s for _, s in others)}")

    gw.start()
    stored = {m["external_id"] for m in gw.list_all("hooks")}
    lost = [e for e, _ in acked if e not in stored]
    check(not lost, f"{len(lost)} acknowledged messages missing from the store, e.g. {lost[:5]}")
    print(f"acknowledged {len(acked)}, stored {len(stored)}, refused {len(others)}, drain {elapsed:.2f} s")
finally:
    gw.cleanup()
done()
