"""A 2xx with an empty body is sent without Content-Length on a kept-alive connection, so the
provider never sees the answer end (it times out and retries).  Slack url_verification without a
challenge, and the Meta hub.challenge handshake with an empty challenge.

Run from the source dir:  PARLEY_BIN=build/parley python3 tests/attack/attack_empty_body.py
"""
import hashlib, hmac, os, socket, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from harness import Gateway  # noqa: E402

SL = "slack-signing"
gw = Gateway(extra_channels=f"""  - name: sl
    type: slack
    config: {{ bot_token: xoxb-1, signing_secret: {SL}, api_base_url: "http://127.0.0.1:1" }}
  - name: wa
    type: whatsapp
    config: {{ phone_number_id: "1", access_token: t, app_secret: s, verify_token: vt, api_base_url: "http://127.0.0.1:1" }}
""").start()


def raw(req):
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.settimeout(3)
    s.sendall(req)
    data = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except socket.timeout:
        data += b"<timeout: the answer never ended>"
    s.close()
    return data


fails = 0
try:
    body = b'{"type":"url_verification"}'
    ts = str(int(time.time())).encode()
    sig = ("v0=" + hmac.new(SL.encode(), b"v0:" + ts + b":" + body, hashlib.sha256).hexdigest()).encode()
    cases = {
        "slack url_verification without challenge": b"POST /webhooks/sl HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"application/json\r\nX-Slack-Request-Timestamp: " + ts + b"\r\nX-Slack-Signature: " + sig +
        b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
        "meta handshake with empty hub.challenge": b"GET /webhooks/wa?hub.mode=subscribe&hub.verify_token=vt"
        b"&hub.challenge= HTTP/1.1\r\nHost: x\r\n\r\n",
    }
    for name, req in cases.items():
        got = raw(req)
        ok = b"<timeout" not in got and (b"Content-Length" in got or b"Connection: close" in got)
        fails += not ok
        print(("PASS " if ok else "FAIL ") + name + ": " + repr(got[:200]))
finally:
    gw.cleanup()
sys.exit(1 if fails else 0)
