"""test_webchat.py: the web chat channel type end to end, on the real gateway.

A visitor's session token must come as the first WebSocket message (a bad
one is refused), sockets and HTTP calls from origins not allowed are refused
(403 before the upgrade), a message over max_message is 413 over HTTP and an
error on the socket, the per-session rate limit holds, identity tokens are
checked (valid, expired, replayed, for another channel), the ack follows the
commit, an agent reply reaches the visitor's open socket, the history comes
back after a reconnect, and "<script>" comes back as the same text.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from envelopes import check_all_stored  # noqa: E402
from harness import Gateway, check, done  # noqa: E402
from wsclient import WebSocket  # noqa: E402

SECRET = "webchat-test-secret-0123456789abcdef"
ORIGIN = "http://shop.example:8000"

CHANNELS = f"""  - name: site
    type: webchat
    config:
      secret: "{SECRET}"
      allowed_origins: ["{ORIGIN}"]
      rate_limit: 5
      max_message: 100
      auth_timeout: 1s
      max_attachment: 2k
  - name: members
    type: webchat
    config:
      secret: "{SECRET}"
      allowed_origins: ["*"]
      require_identity: true
"""


# PARLEY_WEBCHAT_ISOLATED=1 (ctest e2e.webchat_isolated): the same checks with both channels `isolate: true`,
# their sockets proxied to the plugin's child process, and a kill -9 of the child closing them (1012).
ISOLATED = os.environ.get("PARLEY_WEBCHAT_ISOLATED") == "1"
if ISOLATED:
    CHANNELS = CHANNELS.replace("    type: webchat\n", "    type: webchat\n    isolate: true\n")


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def identity_token(payload, secret=SECRET):
    part = b64url(json.dumps(payload).encode())
    mac = hmac.new(secret.encode(), part.encode(), hashlib.sha256).digest()
    return part + "." + b64url(mac)


def main():
    gw = Gateway(extra_channels=CHANNELS)
    try:
        gw.start()
        run(gw)
    finally:
        gw.cleanup()
    done()


def run_isolated(gw):
    """The web chat ran in its child; kill -9 of the child closes its sockets, and the next child serves."""
    check("[channel site] isolated plugin" in gw.read_log(), "the web chat ran isolated")
    site = [i for i in gw.api("health")[1].get("isolated", []) if i["instance"] == "site"][0]
    st, s = session(gw)
    ws, m = authed_socket(gw, s["token"])
    check(m and m.get("type") == "ready", f"an isolated web chat socket is ready: {m}")
    os.kill(site["pid"], 9)
    check(ws.recv() is None and ws.closed and ws.closed[0] == 1012, f"the child's death closes it 1012: {ws.closed}")
    ws.close()
    end = time.time() + 10
    while time.time() < end:
        now = [i for i in gw.api("health")[1].get("isolated", []) if i["instance"] == "site"][0]
        if now["state"] == "up" and now["restarts"] > site["restarts"]:
            break
        time.sleep(0.05)
    st, s = session(gw)
    ws, m = authed_socket(gw, s["token"])
    check(m and m.get("type") == "ready", f"the restarted child serves sockets: {m}")
    ws.send({"type": "message", "text": "after the restart", "client_id": "r1"})
    m = ws.recv()
    check(m and m.get("type") == "ack", f"and its messages are stored: {m}")
    ws.close()


def session(gw, channel="site", body=None, origin=ORIGIN):
    headers = {"Content-Type": "application/json"}
    if origin:
        headers["Origin"] = origin
    st, data = gw.request("POST", f"/webchat/{channel}/session", json.dumps(body or {}).encode(), headers)
    return st, json.loads(data or b"{}")


def authed_socket(gw, token, channel="site"):
    ws = WebSocket(gw.port, f"/webchat/{channel}/ws", origin=ORIGIN)
    ws.send({"type": "auth", "token": token})
    return ws, ws.recv()


def run(gw):
    # The widget is served, as JavaScript.
    st, js = gw.request("GET", "/webchat/site/widget.js")
    check(st == 200 and b"WebSocket" in js and b"textContent" in js, f"widget.js is served ({st})")
    check(b"innerHTML" not in js, "the widget never sets innerHTML")
    st, _ = gw.request("GET", "/webchat/nosuch/widget.js")
    check(st == 404, f"an unknown channel has no widget ({st})")

    st, body = gw.request("GET", "/webchat/site/settings", headers={"Origin": ORIGIN})
    j = json.loads(body)
    check(st == 200 and j.get("max_message") == 100 and j.get("prechat") is False, f"settings: {st} {j}")

    # A session, with CORS for the allowed origin; another origin is refused.
    st, s = session(gw)
    check(st == 200 and s.get("token") and len(s.get("session_id", "")) == 32, f"a session is made: {st} {s}")
    token, sid = s["token"], s["session_id"]
    c = gw.connection()
    c.request("OPTIONS", "/webchat/site/messages", headers={"Origin": ORIGIN,
                                                            "Access-Control-Request-Method": "POST"})
    r = c.getresponse()
    r.read()
    check(r.status == 204 and r.getheader("Access-Control-Allow-Origin") == ORIGIN and
          "Authorization" in (r.getheader("Access-Control-Allow-Headers") or ""), f"preflight answered ({r.status})")
    c.close()
    st, body = session(gw, origin="http://evil.example")
    check(st == 403, f"a session from another origin is refused ({st} {body})")

    # WebSocket: another origin is refused before the upgrade.
    ws = WebSocket(gw.port, "/webchat/site/ws", origin="http://evil.example")
    check(ws.status == 403, f"a socket from another origin is refused with 403 ({ws.status})")
    ws.close()

    # The auth frame is required, and a bad token is refused.
    ws = WebSocket(gw.port, "/webchat/site/ws", origin=ORIGIN)
    check(ws.status == 101, f"the socket opens ({ws.head})")
    ws.send({"type": "message", "text": "hi without auth"})
    m = ws.recv()
    check(m and m.get("type") == "error" and m.get("code") == "bad_token", f"no auth first: error ({m})")
    m = ws.recv()
    check(m is None and ws.closed and ws.closed[0] == 4001, f"no auth first: closed 4001 ({ws.closed})")
    ws.close()
    ws = WebSocket(gw.port, "/webchat/site/ws", origin=ORIGIN)
    m = ws.recv(timeout=5)
    check(m is None and ws.closed and ws.closed[0] == 4001, f"a silent socket is closed after auth_timeout ({ws.closed})")
    ws.close()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    ws, m = authed_socket(gw, forged)
    check(m and m.get("code") == "bad_token", f"a forged token is refused ({m})")
    check(ws.recv() is None and ws.closed[0] == 4001, "and the socket closed")
    ws.close()
    st, other = session(gw, "members", {"identity_token": identity_token(
        {"uid": "u1", "exp": int(time.time()) + 600, "nonce": "n-other-ch-1", "ch": "members"})})
    ws, m = authed_socket(gw, other.get("token", "x"))
    check(m and m.get("code") == "bad_token", f"a token of another channel is refused ({m})")
    ws.close()

    # A message: the ack comes after the commit, with the stored id; it is stored as given.
    ws, m = authed_socket(gw, token)
    check(m == {"type": "ready", "session_id": sid}, f"auth accepted ({m})")
    evil = "<script>alert(1)</script> 안녕"
    ws.send({"type": "message", "text": evil, "client_id": "c1"})
    ack = ws.recv()
    check(ack and ack.get("type") == "ack" and ack.get("client_id") == "c1" and ack.get("id"), f"ack ({ack})")
    rc, got = gw.api("message.get", {"id": ack.get("id", "")})
    msg = got.get("message", got)
    check(rc == 0 and msg.get("text") == evil and msg.get("from") == f"webchat:{sid}" and
          msg.get("direction") == "inbound" and msg.get("channel") == "site", f"stored as sent: {msg}")
    # A resend with the same client_id (a lost ack) is the same message.
    ws.send({"type": "message", "text": evil, "client_id": "c1"})
    again = ws.recv()
    check(again and again.get("id") == ack.get("id"), f"a resend is stored once ({again})")

    # Over max_message (100 here): an error on the socket, 413 over HTTP.
    ws.send({"type": "message", "text": "x" * 101, "client_id": "big"})
    m = ws.recv()
    check(m and m.get("code") == "too_large", f"too large on the socket ({m})")
    auth = {"Authorization": "Bearer " + token, "Content-Type": "application/json", "Origin": ORIGIN}
    st, body = gw.request("POST", "/webchat/site/messages", json.dumps({"text": "y" * 101}).encode(), auth)
    check(st == 413, f"too large over HTTP is 413 ({st} {body})")
    st, body = gw.request("POST", "/webchat/site/messages", json.dumps({"text": "by http"}).encode(),
                          {"Content-Type": "application/json", "Origin": ORIGIN})
    check(st == 401, f"HTTP without the token is 401 ({st})")
    st, body = gw.request("POST", "/webchat/site/messages", json.dumps({"text": "by http", "client_id": "h1"}).encode(),
                          auth)
    check(st == 200 and json.loads(body).get("id"), f"a message over HTTP is stored ({st} {body})")
    m = ws.recv()
    check(m and m.get("type") == "message" and m.get("text") == "by http", f"the other socket sees it ({m})")

    # An agent's reply reaches the open socket.
    rc, sent = gw.api("message.send", {"channel": "site", "to": f"webchat:{sid}", "text": "<b>hello</b> 고객님"})
    check(rc == 0, f"message.send: {sent}")
    m = ws.recv()
    check(m and m.get("type") == "message" and m.get("direction") == "outbound" and
          m.get("text") == "<b>hello</b> 고객님", f"the reply arrives on the socket ({m})")

    # The rate limit (5 a minute here: 2 sent, 1 over HTTP; 2 more pass, then refused).
    codes = []
    for i in range(4):
        ws.send({"type": "message", "text": f"r{i}", "client_id": f"r{i}"})
        m = ws.recv()
        codes.append(m.get("type") if m.get("type") != "error" else m.get("code"))
    check(codes[:1] == ["ack"] and "rate_limited" in codes, f"the rate limit holds: {codes}")
    st, _ = gw.request("POST", "/webchat/site/messages", json.dumps({"text": "more"}).encode(), auth)
    check(st == 429, f"and over HTTP: 429 ({st})")
    ws.close()

    # History after a reconnect: inbound and outbound, in order, the same text.
    time.sleep(0.2)
    st, body = gw.request("GET", "/webchat/site/messages", headers={"Authorization": "Bearer " + token,
                                                                    "Origin": ORIGIN})
    h = json.loads(body)
    texts = [(m["direction"], m["text"]) for m in h.get("messages", [])]
    check(st == 200 and texts[:3] == [("inbound", evil), ("inbound", "by http"), ("outbound", "<b>hello</b> 고객님")],
          f"the history: {texts}")
    st, s2 = session(gw)
    st, body = gw.request("GET", "/webchat/site/messages", headers={"Authorization": "Bearer " + s2["token"]})
    check(json.loads(body).get("messages") == [], "another visitor sees nothing of it")

    # An attachment goes to the attachment store and comes back in the history; over max_attachment: 413.
    st, s4 = session(gw)
    auth4 = {"Authorization": "Bearer " + s4["token"], "Origin": ORIGIN}
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(500)
    st, body = gw.request("POST", "/webchat/site/attachments?name=%EC%A3%BC%EB%AC%B8.png&client_id=f1", png,
                          dict(auth4, **{"Content-Type": "image/png"}))
    j = json.loads(body)
    check(st == 200 and j.get("id"), f"an attachment is stored: {st} {body}")
    rc, got = gw.api("message.get", {"id": j.get("id", "")})
    att = (got.get("message", got).get("attachments") or [{}])[0]
    want_sha = hashlib.sha256(png).hexdigest()
    check(att.get("sha256") == want_sha and att.get("size") == len(png) and att.get("name") == "주문.png" and
          att.get("content_type") == "image/png", f"the attachment in the envelope: {att}")
    path = os.path.join(gw.dir, "var", "attachments", want_sha[:2], want_sha)
    check(os.path.exists(path) and open(path, "rb").read() == png, "the bytes are in the attachment store")
    st, body = gw.request("POST", "/webchat/site/attachments?name=big.bin", b"x" * 2049,
                          dict(auth4, **{"Content-Type": "application/octet-stream"}))
    check(st == 413, f"an attachment over max_attachment is 413 ({st})")
    st, body = gw.request("GET", "/webchat/site/messages", headers=auth4)
    hist = json.loads(body).get("messages", [])
    check(len(hist) == 1 and hist[0].get("attachment", {}).get("name") == "주문.png", f"history has it: {hist}")

    # Identity tokens: valid, expired, replayed, other channel, bad signature; require_identity.
    now = int(time.time())
    good = identity_token({"uid": "user-42", "email": "kim@example.org", "exp": now + 300, "nonce": "nonce-0001",
                           "ch": "members"})
    st, s = session(gw, "members", {"identity_token": good}, origin=None)
    check(st == 200 and s.get("verified") is True, f"a valid identity token: {st} {s}")
    st, s_replay = session(gw, "members", {"identity_token": good}, origin=None)
    check(st == 401 and "nonce" in s_replay.get("error", ""), f"a replayed identity token: {st} {s_replay}")
    st, e = session(gw, "members", {"identity_token": identity_token(
        {"uid": "u", "exp": now - 1, "nonce": "nonce-0002", "ch": "members"})}, origin=None)
    check(st == 401 and "expired" in e.get("error", ""), f"an expired identity token: {st} {e}")
    st, e = session(gw, "members", {"identity_token": identity_token(
        {"uid": "u", "exp": now + 300, "nonce": "nonce-0003", "ch": "site"})}, origin=None)
    check(st == 401 and "channel" in e.get("error", ""), f"an identity token for another channel: {st} {e}")
    st, e = session(gw, "members", {"identity_token": identity_token(
        {"uid": "u", "exp": now + 300, "nonce": "nonce-0004", "ch": "members"}, secret="x" * 40)}, origin=None)
    check(st == 401 and "signature" in e.get("error", ""), f"a wrongly signed identity token: {st} {e}")
    st, e = session(gw, "members", {}, origin=None)
    check(st == 401 and e.get("code") == "identity_required", f"require_identity refuses anonymous: {st} {e}")
    ws, m = authed_socket(gw, s["token"], "members")
    check(m and m.get("type") == "ready", f"a verified visitor chats ({m})")
    ws.send({"type": "message", "text": "verified hello", "client_id": "v1"})
    ack = ws.recv()
    rc, got = gw.api("message.get", {"id": (ack or {}).get("id", "")})
    meta = got.get("message", got).get("meta", {}).get("webchat", {})
    check(meta.get("verified") is True and meta.get("user_id") == "user-42" and
          meta.get("verified_email") == "kim@example.org", f"the identity is in meta, verified: {meta}")
    ws.close()

    # Pre-chat fields are kept, unverified.
    st, s = session(gw, body={"name": "Jiwoo", "email": "jiwoo@example.org"})
    ws, m = authed_socket(gw, s["token"])
    ws.send({"type": "message", "text": "with a name", "client_id": "n1"})
    ack = ws.recv()
    rc, got = gw.api("message.get", {"id": (ack or {}).get("id", "")})
    msg = got.get("message", got)
    check(msg.get("meta", {}).get("contact_name") == "Jiwoo" and
          msg.get("meta", {}).get("webchat", {}).get("verified") is False and
          msg.get("meta", {}).get("webchat", {}).get("email") == "jiwoo@example.org", f"pre-chat fields: {msg}")
    ws.close()

    # A reply to a visitor with no open socket still succeeds (history shows it later).
    st, s3 = session(gw)
    rc, sent = gw.api("message.send", {"channel": "site", "to": f"webchat:{s3['session_id']}", "text": "later"})
    mid = sent.get("id") or sent.get("message", {}).get("id")
    m = gw.wait_message(mid, "sent") if mid else {}
    check(m.get("status") == "sent", f"a reply without a socket is sent: {m}")

    # Every envelope the visitors' messages and the replies became validates against the schema.
    check_all_stored(gw, "site", "members")

    if ISOLATED:
        run_isolated(gw)

    # The gateway stops with a visitor's socket open: close 1001, then a clean exit.
    ws, m = authed_socket(gw, token)
    t0 = time.time()
    rc = gw.stop()
    check(rc == 0 and time.time() - t0 < 10, f"the gateway stops at once with a socket open (exit {rc})")
    m = ws.recv()
    check(m is None and ws.closed and ws.closed[0] == 1001, f"the visitor's socket is closed 1001 ({ws.closed})")
    ws.close()


if __name__ == "__main__":
    main()
