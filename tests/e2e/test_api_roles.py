"""Who may see and do what over the HTTP API: agents sign in and see their teams' conversations
(another team's is not listed, and GET on it is 404), admins see all and manage accounts, service
tokens do the ops their scopes name and nothing once revoked, a session ends at logout, a
signed-in change from another origin is refused, and a flood of failed sign-ins locks that account
without keeping another from signing in."""
import http.client
import json
import threading
import time

from harness import Gateway, check, done

TOKEN = "roles-test-control-token-0123456789"
gw = Gateway(config_body=f"""control:
  token: "{TOKEN}"
auth:
  lockout_after: 20
  lockout_for: 10m
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
              - match: {{ text: "^sales" }}
                set: {{ team: sales }}
              - match: {{}}
                set: {{ team: support }}
""")


class Client:
    """A browser-like client: keeps the session cookie it is given."""

    def __init__(self, bearer=None, source=None):
        self.cookie, self.bearer, self.source = None, bearer, source

    def call(self, method, path, body=None, headers=None):
        h = {}
        if self.bearer:
            h["Authorization"] = f"Bearer {self.bearer}"
        if self.cookie:
            h["Cookie"] = self.cookie
        if body is not None:
            h["Content-Type"] = "application/json"
            body = json.dumps(body).encode()
        h.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30,
                                       source_address=(self.source, 0) if self.source else None)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            for k, v in r.getheaders():
                if k.lower() == "set-cookie":
                    self.set_cookie = v
                    val = v.split(";")[0]
                    self.cookie = val if val.split("=", 1)[1] else None
            try:
                return r.status, json.loads(data) if data else None
            except ValueError:
                return r.status, {"raw": data}
        finally:
            c.close()

    def login(self, email, password):
        return self.call("POST", "/api/v1/login", {"email": email, "password": password})


def code(r):
    return ((r or {}).get("error") or {}).get("code")


root = Client(bearer=TOKEN)
try:
    gw.start()
    for name, email, role, teams in (("ana", "ana@example.com", "agent", ["sales"]),
                                     ("sam", "sam@example.com", "agent", ["support"]),
                                     ("ada", "ada@example.com", "admin", [])):
        st, r = root.call("POST", "/api/v1/agents", {"name": name, "email": email, "role": role, "teams": teams,
                                                     "password": f"{name}-correct-horse"})
        check(st == 200, f"agent {name} added: {st} {r}")
    st, r = root.call("GET", "/api/v1/agents")
    check(st == 200 and sorted(a["name"] for a in r["agents"]) == ["ada", "ana", "sam"], f"agents listed: {r}")
    check("correct-horse" not in json.dumps(r) and "argon2" not in json.dumps(r), f"no password or hash listed: {r}")

    st, _ = gw.post_message({"id": "s1", "from": "kim", "text": "sales: a quote please"})
    st2, _ = gw.post_message({"id": "p1", "from": "lee", "text": "my order is late"})
    check(st == 200 and st2 == 200, "two customers wrote")
    st, r = root.call("GET", "/api/v1/conversations")
    by_team = {c["team"]: c for c in r["conversations"]}
    check(set(by_team) == {"sales", "support"}, f"one conversation per team: {r}")
    sales, support = by_team["sales"]["id"], by_team["support"]["id"]

    # No credentials, a bad cookie.
    anon = Client()
    st, r = anon.call("GET", "/api/v1/conversations")
    check(st == 401 and code(r) == "unauthorized", f"no credentials -> 401: {st} {r}")
    st, r = anon.call("GET", "/api/v1/conversations", headers={"Cookie": "parley_session=pss_forged"})
    check(st == 401, f"a forged session -> 401: {st} {r}")

    # Agents: their team's conversation, not the other's.
    ana, sam, ada = Client(), Client(), Client()
    st, r = ana.login("ana@example.com", "ana-correct-horse")
    check(st == 200 and r.get("name") == "ana" and r.get("teams") == ["sales"], f"ana signs in: {st} {r}")
    sc = ana.set_cookie
    check("HttpOnly" in sc and "SameSite=Strict" in sc and "Max-Age=" in sc and "pss_" in sc,
          f"the session cookie is HttpOnly, SameSite=Strict and expires: {sc}")
    st, r = sam.login("sam@example.com", "sam-correct-horse")
    check(st == 200, f"sam signs in: {st}")
    st, r = ada.login("ADA@example.com", "ada-correct-horse")
    check(st == 200 and r.get("role") == "admin", f"ada signs in (e-mail case-insensitive): {st} {r}")
    st, r = ana.call("GET", "/api/v1/conversations")
    check(st == 200 and [c["id"] for c in r["conversations"]] == [sales], f"ana sees only sales: {r}")
    st, r = sam.call("GET", "/api/v1/conversations")
    check(st == 200 and [c["id"] for c in r["conversations"]] == [support], f"sam sees only support: {r}")
    st, r = sam.call("GET", f"/api/v1/conversations/{sales}")
    check(st == 404 and code(r) == "not_found", f"another team's conversation is 404 to sam: {st} {r}")
    st, r = sam.call("POST", f"/api/v1/conversations/{sales}/messages", {"text": "hi from support"})
    check(st == 404, f"sam cannot reply in sales' conversation: {st} {r}")
    st, r = sam.call("POST", f"/api/v1/conversations/{sales}/resolve", {})
    check(st == 404, f"sam cannot resolve it: {st} {r}")
    st, r = sam.call("GET", f"/api/v1/messages?conversation_id={sales}")
    check(st == 404, f"sam cannot read its messages: {st} {r}")
    st, r = sam.call("GET", "/api/v1/messages")
    check(st == 403, f"an agent lists messages of a conversation, not all: {st} {r}")
    contact_sales = by_team["sales"]["contact_id"]
    st, r = sam.call("GET", f"/api/v1/contacts/{contact_sales}")
    check(st == 404, f"sam cannot read sales' customer: {st} {r}")
    st, r = ada.call("GET", "/api/v1/conversations")
    check(st == 200 and {c["id"] for c in r["conversations"]} == {sales, support}, f"ada sees both: {r}")
    st, r = ana.call("GET", f"/api/v1/conversations/{sales}")
    check(st == 200 and r["conversation"]["id"] == sales, f"ana reads her team's conversation: {st}")
    st, r = ana.call("POST", f"/api/v1/conversations/{sales}/messages", {"text": "a quote is on its way"})
    check(st == 200 and r.get("status") == "queued", f"ana replies: {st} {r}")
    st, r = ana.call("POST", f"/api/v1/conversations/{sales}/resolve", {})
    check(st == 200, f"ana resolves: {st} {r}")
    st, r = ada.call("GET", f"/api/v1/conversations/{sales}")
    check(any(e["type"] == "resolved" and e["data"].get("by") == "ana" for e in r["conversation"]["events"]),
          f"the resolution is ana's: {r['conversation']['events']}")
    st, r = ana.call("GET", "/api/v1/me")
    check(st == 200 and r == {"name": "ana", "role": "agent", "teams": ["sales"]}, f"me: {r}")

    # Admin-only ops.
    st, r = ana.call("POST", "/api/v1/contacts/merge", {"from": contact_sales, "into": by_team["support"]["contact_id"]})
    check(st == 403 and code(r) == "forbidden", f"an agent may not merge: {st} {r}")
    st, r = ana.call("POST", "/api/v1/agents", {"name": "eve", "email": "eve@example.com", "role": "admin",
                                                "password": "eve-correct-horse"})
    check(st == 403, f"an agent may not add accounts: {st} {r}")
    st, r = ana.call("POST", "/api/v1/ops/state.set", {"instance": "hooks", "key": "k", "value": "v"})
    check(st == 403, f"an agent may not change plugin state: {st} {r}")

    # A change signed in by cookie from another origin is refused; from the gateway's own origin it is not.
    st, r = ana.call("POST", f"/api/v1/conversations/{sales}/reopen", {}, headers={"Origin": "https://evil.example"})
    check(st == 403, f"cross-origin change with the cookie -> 403: {st} {r}")
    st, r = ana.call("POST", f"/api/v1/conversations/{sales}/reopen", {},
                     headers={"Origin": f"http://127.0.0.1:{gw.port}", "Host": f"127.0.0.1:{gw.port}"})
    check(st == 200, f"same-origin change -> 200: {st} {r}")

    # Logout ends the session on the server, not only in the browser.
    old_cookie = ana.cookie
    st, _ = ana.call("POST", "/api/v1/logout", {})
    check(st == 200 and ana.cookie is None and "Max-Age=0" in ana.set_cookie, f"logout clears the cookie: {ana.set_cookie}")
    replay = Client()
    replay.cookie = old_cookie
    time.sleep(2.2)  # sessions are cached for up to 2 s on each node
    st, r = replay.call("GET", "/api/v1/conversations")
    check(st == 401, f"the old session is dead after logout: {st} {r}")

    # Service tokens: scoped, and dead once revoked.
    st, r = root.call("POST", "/api/v1/tokens", {"name": "crm", "scopes": ["conversations.list", "conversation.get"]})
    check(st == 200 and r.get("token", "").startswith("pst_"), f"a scoped token: {st} {r}")
    crm, crm_id = Client(bearer=r["token"]), r["id"]
    st, r = crm.call("GET", "/api/v1/conversations")
    check(st == 200 and len(r["conversations"]) == 2, f"the token lists conversations: {st} {r}")
    st, r = crm.call("POST", f"/api/v1/conversations/{support}/resolve", {})
    check(st == 403 and code(r) == "forbidden", f"outside its scopes -> 403: {st} {r}")
    st, r = root.call("GET", "/api/v1/tokens")
    check(st == 200 and "pst_" not in json.dumps(r), f"token.list shows no secret: {r}")
    st, r = root.call("DELETE", f"/api/v1/tokens/{crm_id}")
    check(st == 200, f"revoked: {st} {r}")
    time.sleep(2.2)
    st, r = crm.call("GET", "/api/v1/conversations")
    check(st == 401, f"a revoked token -> 401: {st} {r}")

    # 1,000 failed sign-ins for sam from another address (127.0.0.2, loopback too): sam is locked (even with
    # the right password, from anywhere); ana, signing in from her own address meanwhile, is not slowed.
    failures, statuses = [0], {}
    lock = threading.Lock()

    def hammer(n):
        c = Client(source="127.0.0.2")
        for _ in range(n):
            st, _ = c.login("sam@example.com", "wrong-password-123")
            with lock:
                statuses[st] = statuses.get(st, 0) + 1

    threads = [threading.Thread(target=hammer, args=(250,)) for _ in range(4)]
    for t in threads:
        t.start()
    t0 = time.time()
    st, r = Client().login("ana@example.com", "ana-correct-horse")
    ana_during = time.time() - t0
    for t in threads:
        t.join()
    check(sum(statuses.values()) == 1000 and set(statuses) <= {401, 429}, f"1,000 refusals: {statuses}")
    check(statuses.get(429, 0) > 900, f"most refused before any password check (429): {statuses}")
    check(st == 200, f"ana signs in during the flood: {st} {r}")
    st, r = sam.login("sam@example.com", "sam-correct-horse")
    check(st == 429 and code(r) == "locked", f"sam is locked, even with the right password: {st} {r}")
    t0 = time.time()
    st, r = Client().login("ana@example.com", "ana-correct-horse")
    check(st == 200, f"ana signs in after the flood: {st} {r}")
    print(f"ana's sign-in took {ana_during * 1000:.0f} ms during the flood, {(time.time() - t0) * 1000:.0f} ms after")
    log = gw.read_log()
    check("sam-correct-horse" not in log and "wrong-password-123" not in log and "pss_" not in log,
          "no password or session token in the log")
finally:
    gw.cleanup()
done()
