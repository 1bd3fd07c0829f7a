"""What an agent's view covers beyond the conversation list: stored attachments (by the message
they are in, which the agent must see; images inline, anything else a download, never rendered as
a page) and the live events stream (only their teams' conversations)."""
import hashlib
import http.client
import json
import threading
import time

from harness import Gateway, check, done

TOKEN = "views-test-control-token-0123456789"
SECRET = "views-test-webchat-secret-0123456789"
ORIGIN = "http://shop.example"
gw = Gateway(config_body=f"""control:
  token: "{TOKEN}"
pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
      - route:
          type: rules
          config:
            rules:
              - match: {{ channel: site }}
                set: {{ team: sales }}
              - match: {{}}
                set: {{ team: support }}
""", extra_channels=f"""  - name: site
    type: webchat
    config:
      secret: "{SECRET}"
      allowed_origins: ["{ORIGIN}"]
""")


def request(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


def jcall(method, path, obj=None, headers=None):
    h = dict(headers or {})
    body = None
    if obj is not None:
        h["Content-Type"] = "application/json"
        body = json.dumps(obj).encode()
    st, hd, data = request(method, path, body, h)
    return st, hd, json.loads(data) if data else None


ctl = {"Authorization": f"Bearer {TOKEN}"}


def login(email, password):
    st, hd, r = jcall("POST", "/api/v1/login", {"email": email, "password": password})
    check(st == 200, f"{email} signs in: {st} {r}")
    return {"Cookie": hd.get("set-cookie", "").split(";")[0]}


class Stream:
    def __init__(self, headers):
        self.events, self.lock = [], threading.Lock()
        self.conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        self.conn.request("GET", "/api/v1/events", headers=headers)
        self.resp = self.conn.getresponse()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        cur = {}
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    return
                line = line.decode().rstrip("\n")
                if line == "" and "event" in cur:
                    with self.lock:
                        self.events.append((cur["event"], json.loads(cur.get("data", "{}"))))
                    cur = {}
                elif ":" in line and not line.startswith(":"):
                    k, v = line.split(":", 1)
                    cur[k] = v.lstrip(" ")
        except (OSError, ValueError, http.client.HTTPException):
            return

    def got(self):
        with self.lock:
            return [e for e in self.events if e[0] != "ready"]

    def close(self):
        try:
            self.conn.sock.shutdown(2)
        except OSError:
            pass
        self.conn.close()


try:
    gw.start()
    for name, teams in (("ana", ["sales"]), ("sam", ["support"])):
        st, _, r = jcall("POST", "/api/v1/agents", {"name": name, "email": f"{name}@example.com", "role": "agent",
                                                    "teams": teams, "password": f"{name}-correct-horse"}, ctl)
        check(st == 200, f"{name} added: {st} {r}")
    ana, sam = login("ana@example.com", "ana-correct-horse"), login("sam@example.com", "sam-correct-horse")
    ana_stream, sam_stream = Stream(ana), Stream(sam)
    time.sleep(0.3)

    # A visitor on the web chat (team sales) sends a picture and an HTML file; a webhook customer (support) writes.
    st, _, s = jcall("POST", "/webchat/site/session", {}, {"Origin": ORIGIN})
    visitor = {"Authorization": "Bearer " + s["token"], "Origin": ORIGIN}
    png = b"\x89PNG\r\n\x1a\n" + hashlib.sha256(b"pixels").digest() * 8
    html = b"<html><script>alert(document.cookie)</script></html>"
    ids = {}
    for name, data, ctype in (("photo.png", png, "image/png"), ("page.html", html, "text/html")):
        st, _, r = request("POST", f"/webchat/site/attachments?name={name}", data, dict(visitor, **{"Content-Type": ctype}))
        check(st == 200, f"{name} uploaded: {st} {r}")
        ids[name] = json.loads(r)["id"]
    st, _ = gw.post_message({"id": "w1", "from": "lee", "text": "my order is late"})
    check(st == 200, "a support customer wrote")

    png_sha, html_sha = hashlib.sha256(png).hexdigest(), hashlib.sha256(html).hexdigest()
    path = f"/api/v1/attachments/{png_sha}"
    st, hd, body = request("GET", path)
    check(st == 401, f"no credentials: 401 ({st})")
    st, hd, body = request("GET", f"{path}?message_id={ids['photo.png']}", headers=ana)
    check(st == 200 and body == png and hd.get("content-type") == "image/png", f"ana gets the picture: {st} {hd}")
    check(hd.get("x-content-type-options") == "nosniff" and "sandbox" in hd.get("content-security-policy", "") and
          hd.get("content-disposition") == "inline", f"shown inline, sandboxed, never sniffed: {hd}")
    st, hd, body = request("GET", path, headers=ana)
    check(st == 403, f"an agent names the message: 403 ({st} {body})")
    st, hd, body = request("GET", f"{path}?message_id={ids['photo.png']}", headers=sam)
    check(st == 404, f"sam (support) cannot see sales' message: 404 ({st})")
    st, hd, body = request("GET", f"{path}?message_id={ids['page.html']}", headers=ana)
    check(st == 404, f"the file is not in that message: 404 ({st})")
    st, hd, body = request("GET", f"/api/v1/attachments/{html_sha}?message_id={ids['page.html']}", headers=ana)
    check(st == 200 and body == html and hd.get("content-type") == "application/octet-stream" and
          hd.get("content-disposition") == "attachment", f"HTML is a download, never a page of ours: {st} {hd}")
    st, hd, body = request("GET", path, headers=ctl)
    check(st == 200 and body == png, f"the operator may fetch any attachment: {st}")
    st, hd, body = request("GET", "/api/v1/attachments/" + "0" * 64, headers=ctl)
    check(st == 404, f"an unknown digest: 404 ({st})")
    st, hd, body = request("GET", "/api/v1/attachments/../../etc/passwd", headers=ctl)
    check(st in (400, 404), f"not a digest: refused ({st})")

    # Live events: each agent's stream carries only their team's conversations.
    def n_messages(st):
        return len([1 for t, _ in st.got() if t.startswith("message.")])

    end = time.time() + 10
    while time.time() < end and (n_messages(ana_stream) < 2 or n_messages(sam_stream) < 1):
        time.sleep(0.05)
    time.sleep(0.6)  # what should not arrive would by now (the stream reads every 250 ms)
    a_texts = [d.get("attachments", [{}])[0].get("name") or d.get("text") for t, d in ana_stream.got()
               if t.startswith("message.")]
    s_texts = [d.get("text") for t, d in sam_stream.got() if t.startswith("message.")]
    check(a_texts == ["photo.png", "page.html"], f"ana's stream: the visitor's two files only: {a_texts}")
    check(s_texts == ["my order is late"], f"sam's stream: the support customer only: {s_texts}")
    a_convs = {d.get("conversation_id") for t, d in ana_stream.got()}
    s_convs = {d.get("conversation_id") for t, d in sam_stream.got()}
    check(a_convs and s_convs and not (a_convs & s_convs), f"no conversation in both streams: {a_convs} {s_convs}")
    ana_stream.close()
    sam_stream.close()
finally:
    gw.cleanup()
done()
