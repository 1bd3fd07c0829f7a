"""log.format: json writes one JSON object per line; each webhook gets a request id, answered as
X-Request-Id, carried by the log lines written while it is read and by the envelopes it stored
(meta.request_id); at level debug the log says what each webhook did.  A bad log.format is refused
at its line and column."""
import json
import os
import subprocess
import tempfile

from harness import PARLEY, Gateway, check, done, sign

gw = Gateway(config_body="log: { level: debug, format: json }\n")
try:
    gw.start()
    body = json.dumps({"id": "log-1", "from": "alice", "text": "hello"}).encode()
    c = gw.connection()
    c.request("POST", "/webhooks/hooks", body, {"Content-Type": "application/json",
                                                "X-Parley-Signature": sign(gw.secret, body)})
    r = c.getresponse()
    r.read()
    rid = r.getheader("X-Request-Id")
    c.close()
    check(r.status == 200 and rid and len(rid) == 26, f"answered with a request id: {r.status} {rid}")
    bad = gw.post_message({"id": "log-2"}, raw=b"{not json")
    rc, m = gw.api("messages.list", {"channel": "hooks"})
    stored = m["messages"][0]
    check(stored.get("meta", {}).get("request_id") == rid, f"the envelope carries it: {stored.get('meta')}")
    gw.stop()
    lines = [ln for ln in gw.read_log().splitlines() if ln.strip()]
    parsed = []
    for ln in lines:
        try:
            parsed.append(json.loads(ln))
        except ValueError:
            check(False, f"a log line that is not JSON: {ln!r}")
    check(all({"ts", "level", "who", "msg"} <= set(p) for p in parsed), "each line has ts, level, who, msg")
    mine = [p for p in parsed if p.get("request_id") == rid]
    check(any(p["level"] == "debug" and "webhook POST /webhooks/hooks" in p["msg"] for p in mine),
          f"debug says the webhook came in, with its id: {mine}")
    check(any("answered 400" in p["msg"] for p in parsed), "and what a refused one was answered")
finally:
    gw.cleanup()

d = tempfile.mkdtemp(prefix="parley-log-")
path = os.path.join(d, "p.yaml")
with open(path, "w") as f:
    f.write("log:\n  format: xml\nchannels:\n  - name: hooks\n    type: webhook\n    config: { secret: s3cret }\n")
r = subprocess.run([PARLEY, "check", "-c", path], capture_output=True, text=True, timeout=30)
check(r.returncode != 0 and f"{path}:2:11:" in r.stdout + r.stderr and "text or json" in r.stdout + r.stderr,
      f"a bad log.format at its line and column: {r.stdout} {r.stderr}")
done()
