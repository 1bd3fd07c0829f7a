"""A webhook not committed within http.request_timeout is answered 503 (so the provider
retries); the late commit still lands, and the provider's retry is stored once."""
import os
import time

from harness import Gateway, check, done

plugins = os.environ["PARLEY_TEST_PLUGINS"]
gw = Gateway(config_body=f"""plugins:
  path: [{plugins}]
pipelines:
  - name: inbound
    steps:
      - slow: {{ delay: 1500ms }}
      - dedupe: {{}}
""", http_extra="  request_timeout: 400ms\n").start()
try:
    t0 = time.time()
    st, body = gw.post_message({"id": "late-1", "from": "tel:+15557654321", "text": "slow"})
    waited = time.time() - t0
    check(st == 503, f"a commit later than request_timeout is answered 503: {st} {body!r}")
    check(waited < 1.2, f"the answer came at the timeout, not after the commit: {waited:.2f} s")
    time.sleep(1.5)  # the held envelope is committed after all
    st, body = gw.post_message({"id": "late-1", "from": "tel:+15557654321", "text": "slow"})
    check(st == 200 or st == 503, f"the provider's retry is answered: {st}")
    time.sleep(1.6)
    msgs = gw.list_all("hooks")
    check(len(msgs) == 1 and msgs[0]["external_id"] == "late-1", f"stored exactly once: {msgs}")
    st, _ = gw.post_message({"id": "quick-1", "from": "tel:+15557654321", "text": "fast"})
    check(st == 200, f"an ordinary message is answered 200: {st}")
finally:
    gw.cleanup()
done()
