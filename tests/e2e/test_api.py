"""The HTTP API under /api/v1: the op table over HTTP, as an integrator's service uses it with a
service token (one whose scopes name every op, so it may do all the control socket can): REST routes for the inbox, POST /api/v1/ops/<op> for every op the control socket
has, JSON errors {"error":{"code","message"}} with the right 4xx, and an OpenAPI document that a
validator accepts and that lists every op."""
import json
import os
import subprocess

from harness import SOURCE_DIR, Gateway, check, done

TOKEN = "api-test-control-token-0123456789"
gw = Gateway(config_body=f"""control:
  token: "{TOKEN}"
pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
canned_responses:
  thanks: "Thanks {{{{contact.name|there}}}}, this is {{{{agent|our team}}}}."
""")


svc = {}


def call(method, path, body=None, token="service", headers=None):
    token = svc.get("token") if token == "service" else token
    h = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        h["Content-Type"] = "application/json"
        body = json.dumps(body).encode() if not isinstance(body, bytes) else body
    h.update(headers or {})
    st, data = gw.request(method, path, body, h)
    try:
        return st, json.loads(data) if data else None
    except ValueError:
        return st, {"raw": data}


def error_of(reply):
    e = (reply or {}).get("error") or {}
    return e.get("code"), e.get("message", "")


try:
    gw.start()
    # A service token allowed every op the document lists (created with control.token, the operator's).
    st, doc = call("GET", "/api/v1/openapi.json", token=None)
    every = sorted(p.split("/api/v1/ops/")[1] for p in doc["paths"] if p.startswith("/api/v1/ops/"))
    st, r = call("POST", "/api/v1/tokens", {"name": "integrator", "scopes": every}, token=TOKEN)
    check(st == 200 and r.get("token", "").startswith("pst_"), f"a service token for every op: {st} {r}")
    svc["token"] = r["token"]
    st, r = gw.post_message({"id": "a1", "from": "alice", "text": "hello from alice"})
    check(st == 200, f"a customer message is stored: {st} {r}")
    st, r = gw.post_message({"id": "b1", "from": "bob", "text": "hello from bob"})
    check(st == 200, f"a second customer: {st}")

    # No credentials, a wrong token: 401 with a JSON error and a challenge; nothing is served.
    st, r = call("GET", "/api/v1/conversations", token=None)
    check(st == 401 and error_of(r)[0] == "unauthorized", f"no credentials -> 401: {st} {r}")
    st, r = call("GET", "/api/v1/conversations", token="not-the-token")
    check(st == 401 and "not valid" in error_of(r)[1], f"a wrong bearer token -> 401: {st} {r}")

    # The inbox over REST.
    st, r = call("GET", "/api/v1/conversations")
    convs = (r or {}).get("conversations", [])
    check(st == 200 and len(convs) == 2, f"both conversations listed: {st} {r}")
    st, r = call("GET", "/api/v1/conversations?status=open&page=1&limit=1")
    check(st == 200 and len(r["conversations"]) == 1, f"a page of one: {r}")
    first = r["conversations"][0]["id"]
    st, r = call("GET", "/api/v1/conversations?status=open&page=2&limit=1")
    check(st == 200 and len(r["conversations"]) == 1 and r["conversations"][0]["id"] != first,
          f"page 2 is the other conversation: {r}")
    st, r = call("GET", "/api/v1/conversations?page=3&limit=1")
    check(st == 200 and r["conversations"] == [], f"past the last page: empty: {r}")
    st, r = call("GET", "/api/v1/conversations")
    by_text = {}
    for c in r["conversations"]:
        st2, full = call("GET", f"/api/v1/conversations/{c['id']}")
        check(st2 == 200 and full["conversation"]["id"] == c["id"], f"GET one conversation: {st2} {full}")
        texts = [m.get("text") for m in full["conversation"]["timeline"]]
        by_text[texts[0]] = full["conversation"]
    conv = by_text["hello from alice"]
    cid = conv["id"]

    # A reply, a canned reply and a private note: the note is never queued for sending.
    st, r = call("POST", f"/api/v1/conversations/{cid}/messages", {"text": "hi alice, how can I help?"})
    check(st == 200 and r.get("status") == "queued" and r.get("conversation_id") == cid, f"reply queued: {st} {r}")
    reply_id = r.get("id")
    st, r = call("POST", f"/api/v1/conversations/{cid}/messages", {"canned": "thanks"})
    check(st == 200, f"canned reply: {st} {r}")
    st, m = call("GET", f"/api/v1/messages/{r.get('id')}")
    check(st == 200 and m["message"]["text"] == "Thanks there, this is our team.", f"canned text filled: {m}")
    st, r = call("POST", f"/api/v1/conversations/{cid}/messages", {"text": "VIP customer", "private": True})
    check(st == 200 and r.get("note", {}).get("text") == "VIP customer", f"private note: {st} {r}")
    st, full = call("GET", f"/api/v1/conversations/{cid}")
    outbound = [m for m in full["conversation"]["timeline"] if m.get("direction") == "outbound"]
    check(len(outbound) == 2 and all(m.get("text") != "VIP customer" for m in outbound),
          f"two replies queued, the note is not one of them: {outbound}")
    check([n["text"] for n in full["conversation"]["notes"]] == ["VIP customer"], f"the note is a note: {full}")
    st, r = call("GET", f"/api/v1/messages?conversation_id={cid}")
    check(st == 200 and reply_id in [m["id"] for m in r["messages"]], f"messages.list by conversation: {r}")

    # Assign, snooze, resolve, reopen.
    st, r = call("POST", f"/api/v1/conversations/{cid}/assign", {"assignee": "ana", "team": "sales"})
    check(st == 200, f"assign: {st} {r}")
    st, r = call("POST", f"/api/v1/conversations/{cid}/snooze", {"snoozed_until": "2030-01-01T00:00:00Z"})
    check(st == 200, f"snooze: {st} {r}")
    st, r = call("GET", "/api/v1/conversations?status=snoozed")
    check([c["id"] for c in r["conversations"]] == [cid], f"snoozed listed: {r}")
    st, r = call("POST", f"/api/v1/conversations/{cid}/snooze", {})
    check(st == 400 and "snoozed_until" in error_of(r)[1], f"snooze without a time -> 400 naming it: {st} {r}")
    st, r = call("POST", f"/api/v1/conversations/{cid}/resolve", {})
    check(st == 200, f"resolve: {st} {r}")
    st, r = call("GET", f"/api/v1/conversations?status=resolved&team=sales&assignee=ana")
    check([c["id"] for c in r["conversations"]] == [cid], f"filters by status, team and assignee: {r}")
    st, r = call("POST", f"/api/v1/conversations/{cid}/reopen", {})
    check(st == 200, f"reopen: {st} {r}")

    # Contacts.
    contact = conv["contact_id"]
    st, r = call("PATCH", f"/api/v1/contacts/{contact}", {"name": "Alice Kim", "attributes": {"tier": "gold"}})
    check(st == 200, f"contact patched: {st} {r}")
    st, r = call("GET", f"/api/v1/contacts/{contact}")
    check(st == 200 and r["contact"]["name"] == "Alice Kim", f"contact read back: {r}")
    other = by_text["hello from bob"]["contact_id"]
    st, r = call("POST", "/api/v1/contacts/merge", {"from": other, "into": contact})
    check(st == 200 and r.get("merge", {}).get("id"), f"merge: {st} {r}")
    st, r = call("POST", "/api/v1/contacts/unmerge", {"merge_id": r["merge"]["id"]})
    check(st == 200, f"unmerge: {st} {r}")

    # Every op through POST /api/v1/ops/<op>, as on the control socket.
    st, r = call("POST", "/api/v1/ops/health", {})
    check(st == 200 and r.get("status") == "ok", f"ops/health: {st} {r}")
    st, r = call("POST", "/api/v1/ops/state.set", {"instance": "hooks", "key": "k", "value": "v"})
    check(st == 200, f"ops/state.set: {st} {r}")
    st, r = call("POST", "/api/v1/ops/state.get", {"instance": "hooks", "key": "k"})
    check(st == 200 and r.get("value") == "v", f"ops/state.get: {st} {r}")
    st, r = call("POST", "/api/v1/ops/conversation.get", {"conversation_id": cid})
    check(st == 200 and r["conversation"]["id"] == cid, f"ops/conversation.get: {st}")

    # Bad input: the right 4xx, naming what is wrong; nothing changes.
    st, r = call("GET", "/api/v1/conversations?colour=red")
    check(st == 400 and "colour" in error_of(r)[1], f"an unknown filter -> 400 naming it: {st} {r}")
    st, r = call("GET", "/api/v1/conversations?page=two")
    check(st == 400 and "page" in error_of(r)[1], f"a non-integer page -> 400: {st} {r}")
    st, r = call("GET", "/api/v1/conversations/01NOSUCHCONVERSATION0000000")
    check(st == 404 and error_of(r)[0] == "not_found", f"an unknown conversation -> 404: {st} {r}")
    st, r = call("POST", f"/api/v1/conversations/{cid}/messages", b"text=hi",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(st == 400 and "application/json" in error_of(r)[1], f"a form body -> 400: {st} {r}")
    st, r = call("POST", f"/api/v1/conversations/{cid}/messages", b"{not json")
    check(st == 400, f"broken JSON -> 400: {st} {r}")
    st, r = call("POST", f"/api/v1/conversations/{cid}/messages", {"text": 5})
    check(st == 400 and "'text' must be a string" in error_of(r)[1], f"a mistyped field -> 400: {st} {r}")
    st, r = call("POST", "/api/v1/ops/no.such.op", {})
    check(st == 404 and error_of(r)[0] == "unknown_op", f"an unknown op -> 404: {st} {r}")
    st, r = call("DELETE", f"/api/v1/conversations/{cid}")
    check(st == 405, f"a method the path has not -> 405: {st} {r}")
    st, r = call("GET", "/api/v1/nothing/here")
    check(st == 404, f"an unknown path -> 404: {st} {r}")
    st, r = call("POST", "/api/v1/ops/contacts.merge", {"from": other})
    check(st == 400 and "'into'" in error_of(r)[1], f"a missing field -> 400 naming it: {st} {r}")

    # The OpenAPI document: valid, and it lists every op the control socket serves.
    st, doc = call("GET", "/api/v1/openapi.json", token=None)
    check(st == 200 and doc.get("openapi", "").startswith("3.1"), f"openapi.json served without credentials: {st}")
    validator = os.path.join(SOURCE_DIR, "tests", "api", "validate_openapi.mjs")
    v = subprocess.run(["node", validator, "-"], input=json.dumps(doc), capture_output=True, text=True, timeout=60)
    check(v.returncode == 0, f"the OpenAPI validator accepts the document: {v.stdout[-2000:]} {v.stderr[-2000:]}")
    ops_paths = {p.split("/api/v1/ops/")[1] for p in doc["paths"] if p.startswith("/api/v1/ops/")}
    for op in ("health", "stats", "message.send", "messages.list", "message.get", "conversations.list",
               "conversation.get", "conversation.resolve", "conversation.reopen", "conversation.assign",
               "conversation.set", "conversation.note", "contact.get", "contact.update", "contacts.merge",
               "contacts.unmerge", "state.get", "state.set", "canned.list"):
        check(op in ops_paths, f"openapi.json has POST /api/v1/ops/{op}")
    for path, method in (("/api/v1/conversations", "get"), ("/api/v1/conversations/{conversation_id}", "get"),
                         ("/api/v1/conversations/{conversation_id}/messages", "post"),
                         ("/api/v1/contacts/{contact_id}", "patch"), ("/api/v1/contacts/merge", "post"),
                         ("/api/v1/messages", "get"), ("/api/v1/attachments/{sha256}", "get"),
                         ("/api/v1/login", "post"), ("/api/v1/events", "get")):
        check(method in doc["paths"].get(path, {}), f"openapi.json has {method.upper()} {path}")
    # Every op of the table answers through ops/: what the document lists is served.
    for op in sorted(ops_paths):
        st, r = call("POST", f"/api/v1/ops/{op}", {})
        check(st != 404 or error_of(r)[0] != "unknown_op", f"ops/{op} is served: {st} {r}")
finally:
    gw.cleanup()
done()
