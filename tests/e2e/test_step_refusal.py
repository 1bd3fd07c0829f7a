"""A failed envelope setter reaches the answer, wherever it happens.  A step that ignores a setter's
refusal (the test step `slow` on text "careless") cannot get its envelope stored without the field: the
webhook is answered 503 (retry later, nothing stored) and the log names the step and the reason.  A control
message.send whose address the host refuses is answered invalid_request naming the field, and nothing is
queued."""
import os

from harness import Gateway, check, done

plugins = os.environ["PARLEY_TEST_PLUGINS"]
gw = Gateway(config_body=f"""plugins:
  path: [{plugins}]
pipelines:
  - name: inbound
    steps:
      - slow: {{}}
      - dedupe: {{}}
""", extra_channels="""  - name: out
    type: webhook
    config: { secret: out-secret, outbound_url: "http://127.0.0.1:9/never" }
""").start()
try:
    st, body = gw.post_message({"id": "c1", "from": "tel:+15550001", "text": "careless"})
    check(st == 503, f"a step's refused setter is not acknowledged: {st} {body!r}")
    st, _ = gw.post_message({"id": "c2", "from": "tel:+15550001", "text": "fine"})
    check(st == 200, f"other messages are stored: {st}")
    ids = [m["external_id"] for m in gw.list_all("hooks")]
    check(ids == ["c2"], f"nothing stored of the refused envelope: {ids}")
    log = gw.read_log()
    check("step slow" in log and "no_such_field" in log and "not stored" in log,
          f"the log names the step and the field: {log[-400:]}")

    rc, r = gw.api("message.send", {"channel": "out", "to": "webhook:" + "x" * 600, "text": "hi"})
    check(rc != 0 and r.get("error", {}).get("code") == "invalid_request" and "'to'" in r["error"]["message"],
          f"a refused address is an invalid request naming the field: {r}")
    rc, r = gw.api("message.send", {"channel": "out", "to": "webhook:bob", "text": "hi"})
    check(rc == 0, f"an ordinary reply is queued: {r}")
    out = gw.list_all("out")
    check(all(len(m.get("to", "")) < 100 for m in out), f"the refused reply was not queued: {[m.get('to')[:20] for m in out]}")
finally:
    gw.cleanup()
done()
