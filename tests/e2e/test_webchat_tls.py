"""test_webchat_tls.py: the web chat over HTTPS (http.tls): the session over HTTPS, the WebSocket over
TLS (wss://, where libmicrohttpd relays the switched connection), an ack after the commit, an agent's
reply pushed to the socket, and the socket still open after idling past the HTTP timeouts."""
import json
import os
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Gateway, check, done  # noqa: E402
from wsclient import WebSocket  # noqa: E402

ORIGIN = "https://shop.example"


def main():
    gw = Gateway(extra_channels=f"""  - name: site
    type: webchat
    config:
      secret: "webchat-tls-secret-0123456789abcdef0"
      allowed_origins: ["{ORIGIN}"]
""", http_extra="  header_timeout: 1s\n  body_timeout: 1s\n  tls: { cert: tls/server.crt, key: tls/server.key }\n")
    d = os.path.join(gw.dir, "tls")
    os.makedirs(d)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", "server.key", "-out", "server.crt", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"], cwd=d, check=True, capture_output=True)
    ctx = ssl.create_default_context(cafile=os.path.join(d, "server.crt"))
    gw.ssl_context = ctx
    try:
        gw.start()
        run(gw, ctx)
    finally:
        gw.cleanup()
    done()


def run(gw, ctx):
    st, body = gw.request("POST", "/webchat/site/session", b"{}", {"Origin": ORIGIN,
                                                                  "Content-Type": "application/json"})
    s = json.loads(body)
    check(st == 200 and s.get("token"), f"a session over HTTPS: {st} {body!r}")
    ws = WebSocket(gw.port, "/webchat/site/ws", origin=ORIGIN, ssl_context=ctx)
    check(ws.status == 101, f"the socket switches over TLS: {ws.head}")
    ws.send({"type": "auth", "token": s["token"]})
    m = ws.recv()
    check(m and m.get("type") == "ready", f"auth over wss: {m}")
    ws.send({"type": "message", "text": "over TLS 안녕", "client_id": "t1"})
    ack = ws.recv()
    check(ack and ack.get("type") == "ack" and ack.get("id"), f"ack over wss: {ack}")
    time.sleep(3.5)  # past header_timeout, body_timeout and MHD's idle timeout
    rc, sent = gw.api("message.send", {"channel": "site", "to": f"webchat:{s['session_id']}", "text": "reply"})
    m = ws.recv()
    check(m and m.get("type") == "message" and m.get("text") == "reply", f"the reply after idling arrives: {m}")
    ws.close()


if __name__ == "__main__":
    main()
