"""Collisions.  The soft lock on replies: an agent replying in a conversation assigned to someone
else is refused with conflict (409) unless the request says confirm: true; the assignee, a
conversation of nobody, a private note and the operator's token are not asked.  Presence: each
agent's heartbeat (conversation.presence) lists the others viewing or typing there, never the
caller, and an agent of another team gets not_found."""
import http.client
import json

from harness import Gateway, check, done

TOKEN = "soft-lock-control-token-0123456789"
gw = Gateway(config_body=f"""control:
  token: "{TOKEN}"
pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
""").start()


def jcall(method, path, obj=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    h = dict(headers or {})
    body = None
    if obj is not None:
        h["Content-Type"] = "application/json"
        body = json.dumps(obj).encode()
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(data) if data else None
    finally:
        c.close()


CTL = {"Authorization": f"Bearer {TOKEN}"}


def login(email, password):
    st, h, _ = jcall("POST", "/api/v1/login", {"email": email, "password": password})
    check(st == 200, f"{email} signs in: {st}")
    return {"Cookie": h.get("set-cookie", "").split(";")[0]}


try:
    for name in ("ana", "bo"):
        st, _, r = jcall("POST", "/api/v1/agents", {"name": name, "email": f"{name}@example.com", "role": "agent",
                                                    "teams": [], "password": f"{name}-correct-horse"}, CTL)
        check(st == 200, f"agent {name}: {st} {r}")
    ana, bo = login("ana@example.com", "ana-correct-horse"), login("bo@example.com", "bo-correct-horse")
    st, _ = gw.post_message({"id": "lock-1", "from": "tel:+15557770000", "text": "hello"})
    check(st == 200, f"the customer's message: {st}")
    st, _, r = jcall("GET", "/api/v1/conversations", None, CTL)
    conv = r["conversations"][0]["id"]
    path = f"/api/v1/conversations/{conv}/messages"

    st, _, r = jcall("POST", path, {"text": "nobody holds it"}, bo)
    check(st == 200, f"a conversation of nobody: anyone replies: {st} {r}")
    st, _, r = jcall("POST", f"/api/v1/conversations/{conv}/assign", {"assignee": "ana"}, CTL)
    check(st == 200, f"assigned to ana: {st} {r}")
    st, _, r = jcall("POST", path, {"text": "ana's own"}, ana)
    check(st == 200, f"the assignee replies: {st} {r}")
    st, _, r = jcall("POST", path, {"text": "bo butts in"}, bo)
    err = (r or {}).get("error") or {}
    check(st == 409 and err.get("code") == "conflict" and "ana" in err.get("message", ""),
          f"another agent is refused with conflict, naming the assignee: {st} {r}")
    st, _, r = jcall("POST", path, {"text": "bo, knowingly", "confirm": True}, bo)
    check(st == 200 and r.get("status") == "queued", f"with confirm: true it is sent: {st} {r}")
    st, _, r = jcall("POST", path, {"text": "a note for ana", "private": True}, bo)
    check(st == 200, f"a private note is not a reply: {st} {r}")
    st, _, r = jcall("POST", path, {"text": "the operator"}, CTL)
    check(st == 200, f"the control token is not asked: {st} {r}")
    texts = [m.get("text") for m in jcall("GET", f"/api/v1/conversations/{conv}", None, CTL)[2]["conversation"]["timeline"]]
    check("bo butts in" not in texts and "bo, knowingly" in texts, f"the refused reply was not queued: {texts}")

    # Presence: ana views, bo types; each sees the other, not themselves.
    pres = f"/api/v1/conversations/{conv}/presence"
    st, _, r = jcall("POST", pres, {}, ana)
    check(st == 200 and r.get("viewers") == [], f"ana alone: {st} {r}")
    st, _, r = jcall("POST", pres, {"typing": True}, bo)
    check(st == 200 and [(v["agent"], v["typing"]) for v in r["viewers"]] == [("ana", False)], f"bo sees ana: {r}")
    st, _, r = jcall("POST", pres, {}, ana)
    check([(v["agent"], v["typing"]) for v in r["viewers"]] == [("bo", True)] and r["viewers"][0].get("seen_at"),
          f"ana sees bo typing: {r}")
    st, _, r = jcall("POST", "/api/v1/conversations/01NOSUCHCONVERSATION00000/presence", {}, ana)
    check(st == 404, f"an unknown conversation: {st} {r}")
    st, _, r = jcall("POST", f"/api/v1/conversations/{conv}/assign", {"assignee": "ana", "team": "x"}, CTL)
    st, _, r = jcall("POST", "/api/v1/agents", {"name": "cy", "email": "cy@example.com", "role": "agent",
                                                "teams": ["y"], "password": "cy-correct-horse"}, CTL)
    cy = login("cy@example.com", "cy-correct-horse")
    st, _, r = jcall("POST", pres, {}, cy)
    check(st == 404, f"another team's agent: not_found: {st} {r}")
    st, _, r = jcall("POST", pres, {}, ana)
    check([v["agent"] for v in r["viewers"]] == ["bo"], f"cy was not recorded: {r}")
finally:
    gw.stop()
done()
