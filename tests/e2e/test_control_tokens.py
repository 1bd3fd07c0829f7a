"""A tcp:// control socket answers only requests that carry a token: control.token (the
operator) or a service token, which may do what its scopes allow and nothing once revoked.
Without control.token, even a loopback tcp socket refuses requests that carry none."""
import json
import os
import subprocess
import time

from harness import PARLEY, Gateway, check, done, free_port

TOKEN = "control-tokens-test-0123456789abcd"
port = free_port()
gw = Gateway(config_body=f"""control:
  listen: tcp://127.0.0.1:{port}
  token: "{TOKEN}"
""")
# A client config naming the same socket without the token: requests go out bare unless PARLEY_TOKEN is set.
bare = os.path.join(gw.dir, "client.yaml")
with open(bare, "w") as f:
    f.write(f"control:\n  listen: tcp://127.0.0.1:{port}\n")


def api(config, op, obj=None, token=None):
    env = dict(os.environ)
    env.pop("PARLEY_TOKEN", None)
    if token:
        env["PARLEY_TOKEN"] = token
    r = subprocess.run([PARLEY, "api", "-c", config, op, json.dumps(obj or {})], capture_output=True, text=True,
                       timeout=30, env=env)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"raw": r.stdout, "stderr": r.stderr}


def code(r):
    return (r.get("error") or {}).get("code")


try:
    gw.start()
    r = api(bare, "health")
    check(code(r) == "unauthorized" and "service token" in r["error"]["message"], f"no token: refused: {r}")
    r = api(bare, "health", token="pst_not-a-real-token-at-all")
    check(code(r) == "unauthorized", f"an unknown token: refused: {r}")
    r = api(gw.config, "health")
    check(r.get("ok") and r.get("status") == "ok", f"control.token: the operator: {r}")

    r = api(gw.config, "token.create", {"name": "reports"})
    tok = r.get("token", "")
    check(tok.startswith("pst_"), f"a service token: {r}")
    r = api(bare, "conversations.list", token=tok)
    check(r.get("ok") and r.get("conversations") == [], f"the service token lists conversations: {r}")
    r = api(bare, "agent.list", token=tok)
    check(code(r) == "forbidden", f"an unscoped token does not manage accounts: {r}")
    r = api(gw.config, "token.create", {"name": "admin-tool", "scopes": ["agent.list"]})
    r2 = api(bare, "agent.list", token=r.get("token"))
    check(r2.get("ok") and r2.get("agents") == [], f"a token naming agent.list may: {r2}")
    r3 = api(bare, "conversations.list", token=r.get("token"))
    check(code(r3) == "forbidden", f"...and only that: {r3}")

    tokens = api(gw.config, "token.list")["tokens"]
    rid = next(t["id"] for t in tokens if t["name"] == "reports")
    r = api(gw.config, "token.revoke", {"id": rid})
    check(r.get("ok"), f"revoked: {r}")
    time.sleep(2.2)  # each node checks a token against the store at least every 2 s
    r = api(bare, "conversations.list", token=tok)
    check(code(r) == "unauthorized", f"a revoked token: refused: {r}")
finally:
    gw.cleanup()

# No control.token at all: a loopback tcp socket still refuses requests without a token.
port2 = free_port()
gw2 = Gateway(config_body=f"control:\n  listen: tcp://127.0.0.1:{port2}\n")
try:
    gw2.start()
    r = api(gw2.config, "health")
    check(code(r) == "unauthorized", f"tcp without control.token: a bare request is refused: {r}")
finally:
    gw2.cleanup()
done()
