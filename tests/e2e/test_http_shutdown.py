"""A webhook still waiting for its commit when the drain after SIGTERM gives up (5 s)
is answered 503 with Retry-After, so the provider retries; the gateway still exits 0."""
import json
import os
import threading
import time

from harness import Gateway, check, done, sign
from rawhttp import Reader, connect, metric, request

plugins = os.environ["PARLEY_TEST_PLUGINS"]
gw = Gateway(config_body=f"""plugins:
  path: [{plugins}]
pipelines:
  - name: inbound
    steps:
      - slow: {{ delay: 6s }}
""").start()
try:
    body = json.dumps({"id": "held-1", "from": "tel:+15550000011", "text": "slow"}).encode()
    s = connect(gw.port, timeout=20)
    s.sendall(request("POST", "/webhooks/hooks", body, {"Content-Type": "application/json",
                                                        "X-Parley-Signature": sign(gw.secret, body)}))
    got = {}
    reader = threading.Thread(target=lambda: got.setdefault("resp", Reader(s).response(20)))
    reader.start()
    end = time.time() + 5  # the webhook is held in the slow step: submitted, not yet committed
    while time.time() < end and metric(gw.request("GET", "/metrics")[1].decode(), "inflight_submissions") < 1:
        time.sleep(0.02)
    t0 = time.time()
    rc = gw.stop(timeout=30)
    reader.join()
    resp = got.get("resp")
    check(resp is not None and resp.status == 503 and resp.headers.get("retry-after") == "1"
          and resp.json() == {"ok": False, "error": "the gateway is shutting down: retry later"},
          f"the held webhook at shutdown: {resp}")
    check(rc == 0, f"the gateway exits 0 after answering it: {rc} in {time.time() - t0:.1f} s")
    s.close()
finally:
    gw.cleanup()
done()
