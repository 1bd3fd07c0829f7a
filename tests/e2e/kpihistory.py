"""kpihistory.py: a synthetic history built through the real pipeline, and the KPIs computed from it here.

The test drives a gateway with a steered history clock (PARLEY_TEST_CLOCK, a file holding the time):
several hundred customers write on three channels (the generic webhook channel, Telegram and
WhatsApp, each against a fake provider), agents are queued, assigned, reply (some replies are
dead-lettered by the provider), put conversations on pending, resolve, customers come back and
reopen, a bot (conversation.bot) handles some and hands off or resolves, ratings and SLA due times
are appended to the log.  As it acts, it records what the conversation history must say (type,
time, actor, who held the conversation, the channel), and computes every KPI of docs/kpis.md from
that record in Python, independently of the store's SQL; `parley stats --json` must give the same
figures, per channel and per team.
"""
import datetime
import hashlib
import hmac
import json
import math
import os
import random
import sqlite3
import time
from zoneinfo import ZoneInfo

from fakeprovider import FakeProvider
from harness import Gateway, check

TOKEN = "kpi-test-control-token-0123456789"
BOT = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
TG_SECRET = "tg-secret-token"
WA_SECRET = "wa-app-secret"
PNID = "106540352242922"
T0 = datetime.datetime(2026, 11, 2, 0, 0, tzinfo=datetime.timezone.utc)  # Monday 09:00 in Seoul
STEP_MS = 7 * 60 * 1000
WINDOW_MS = 7 * 24 * 3600 * 1000
TZ = ZoneInfo("Asia/Seoul")
AGENTS = {"web": ["ana", "bo"], "sales": ["cy", "di"], "support": ["ed", "fa", "gu"]}


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ms % 1000:03d}Z"


def t_of(step):
    return int(T0.timestamp() * 1000) + step * STEP_MS


# ------------------------------------------------------------------ the definitions, in Python

def business_ms(a, b):
    """Business milliseconds between a and b: Monday to Friday 09:00-18:00 Asia/Seoul."""
    if b <= a:
        return 0
    total = 0
    day = datetime.datetime.fromtimestamp(a / 1000, TZ).date() - datetime.timedelta(days=1)
    while True:
        start = int(datetime.datetime.combine(day, datetime.time(9), TZ).timestamp() * 1000)
        end = int(datetime.datetime.combine(day, datetime.time(18), TZ).timestamp() * 1000)
        if start >= b:
            return total
        if day.weekday() < 5:
            total += max(0, min(b, end) - max(a, start))
        day += datetime.timedelta(days=1)


def human(actor):
    return not ((actor or "").startswith("bot:") or actor == "inactivity")


def rank(vals, p):
    """Nearest rank: the value at rank ceil(p n)."""
    v = sorted(vals)
    n = len(v)
    return v[(n + 1) // 2 - 1] if p == 50 else v[(9 * n + 9) // 10 - 1]


def measures(log, frm, to):
    """(kind, dims, value, business, hit, hit2) of every measure whose ending row is in [frm, to)."""
    out = []
    inp = lambda r: frm <= r["t"] < to
    for rows in log.values():
        start = None
        replies = 0
        human_res = 0
        prev_q = None
        for i, r in enumerate(rows):
            ty, d = r["type"], r["data"]
            if ty in ("opened", "reopened") or (ty == "bot.handoff" and d.get("to") == "queue"):
                start = r["t"] if start is None else max(start, r["t"])
            dims = {"channel": r["channel"], "team": r["team"], "agent": r["agent"]}
            if ty == "opened" and inp(r):
                out.append(("opened", dims, 0, None, 0, 0))
            if ty == "replied" and d.get("kind") == "agent":
                replies += 1
                if replies == 1 and start is not None and inp(r):
                    out.append(("first_response", dict(dims, agent=r["actor"]), r["t"] - start,
                                business_ms(start, r["t"]), 0, 0))
            if ty == "resolved":
                later = rows[i + 1:]
                reopened = any(x["type"] == "reopened" and x["t"] <= r["t"] + WINDOW_MS for x in later)
                if human(r["actor"]):
                    human_res += 1
                    if start is not None and inp(r):
                        out.append(("resolution", dims, r["t"] - start, business_ms(start, r["t"]), 0, 0))
                    if human_res == 1 and inp(r):
                        agents = {x["data"]["assignee"] if x["type"] == "assigned" else x["actor"] for x in rows[:i]
                                  if (x["type"] == "assigned" and x["data"].get("assignee")) or
                                  (x["type"] == "replied" and x["data"].get("kind") == "agent")}
                        out.append(("fcr", dims, 0, None, int(not reopened and len(agents) <= 1), 0))
                if inp(r):
                    out.append(("reopen", dims, 0, None, int(reopened), int(not human(r["actor"]))))
            if ty == "rated" and inp(r):
                s = d["score"]
                ad = dict(dims, agent=d.get("agent") or r["agent"])
                if d["survey"] == "csat":
                    out.append(("csat", ad, s, None, int(s >= 4), 0))
                else:
                    out.append(("nps", ad, s, None, int(s >= 9), int(s <= 6)))
            if ty == "bot.claimed" and inp(r):
                nxt = next((x for x in rows[i + 1:] if x["type"] in ("resolved", "bot.handoff")), None)
                contained = nxt is not None and nxt["type"] == "resolved" and not human(nxt["actor"])
                out.append(("bot", dict(dims, agent=d["bot"]), 0, None, int(contained), 0))
            if ty in ("queued", "bot.claimed", "assigned") or (ty == "bot.handoff" and d.get("to") == "queue"):
                if ty == "assigned" and d.get("assignee") and prev_q is not None and \
                        prev_q["type"] in ("queued", "bot.handoff") and inp(r):
                    out.append(("queue", dims, r["t"] - prev_q["t"], None, 0, 0))
                prev_q = r
            if ty == "sla.due":
                target = d["target"]
                want = (lambda x: x["type"] == "replied" and x["data"].get("kind") == "agent") \
                    if target != "resolution" else (lambda x: x["type"] == "resolved")
                a = next((x for x in rows[i + 1:] if want(x)), None)
                if a is not None and inp(a):
                    due = parse_ms(d["due"])
                    ad = {"channel": a["channel"], "team": a["team"],
                          "agent": a["actor"] if a["type"] == "replied" else a["agent"]}
                    out.append(("sla." + target, ad, a["t"] - due, None, int(a["t"] > due), 0))
    return out


def parse_ms(s):
    return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000)


def figures(ms):
    by = {}
    for m in ms:
        by.setdefault(m[0], []).append(m)

    def dur(kind, business=True):
        x = by.get(kind, [])
        o = {"count": len(x), "median_ms": rank([m[2] for m in x], 50) if x else None,
             "p90_ms": rank([m[2] for m in x], 90) if x else None}
        if business:
            o["business_median_ms"] = rank([m[3] for m in x], 50) if x else None
            o["business_p90_ms"] = rank([m[3] for m in x], 90) if x else None
        return o

    def cnt(kind, i):
        return sum(m[i] for m in by.get(kind, []))

    def pct(a, n):
        # Percent to 2 decimals, half away from zero (as C's round()).
        if not n:
            return None
        v = 100.0 * a / n * 100
        return math.copysign(math.floor(abs(v) + 0.5), v) / 100

    n = lambda k: len(by.get(k, []))
    sla = {}
    for target in ("first_response", "next_response", "resolution"):
        x = by.get("sla." + target)
        sla[target] = None if not x else {
            "count": len(x), "median_gap_ms": rank([m[2] for m in x], 50), "p90_gap_ms": rank([m[2] for m in x], 90),
            "breached": cnt("sla." + target, 4), "breached_pct": pct(cnt("sla." + target, 4), len(x))}
    return {
        "conversations_opened": n("opened"),
        "first_response": dur("first_response"),
        "resolution": dur("resolution"),
        "resolutions": {"count": n("reopen"), "by_bot_or_inactivity": cnt("reopen", 5), "reopened": cnt("reopen", 4),
                        "reopen_rate": pct(cnt("reopen", 4), n("reopen"))},
        "fcr": {"count": n("fcr"), "first_contact": cnt("fcr", 4), "rate": pct(cnt("fcr", 4), n("fcr"))},
        "csat": {"count": n("csat"), "satisfied": cnt("csat", 4), "score": pct(cnt("csat", 4), n("csat"))},
        "nps": {"count": n("nps"), "promoters": cnt("nps", 4), "detractors": cnt("nps", 5),
                "score": pct(cnt("nps", 4) - cnt("nps", 5), n("nps"))},
        "bot": {"handled": n("bot"), "contained": cnt("bot", 4), "containment_rate": pct(cnt("bot", 4), n("bot"))},
        "queue": dur("queue", business=False),
        "sla": sla,
    }


def expected(log, frm, to, dim):
    ms = measures(log, frm, to)
    keys = {}
    for m in ms:
        keys.setdefault(m[1][dim], []).append(m)
    return {k: figures(v) for k, v in keys.items()}, figures(ms)


# ------------------------------------------------------------------ driving the gateway

class History:
    """The gateway, its fake providers, the steered clock, and the record of what the log must hold."""

    def __init__(self, storage="", raw_sql=None):
        self.fake = FakeProvider()
        self.fake.default = self.provider
        self.clock = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"parley-kpi-clock-{os.getpid()}")
        self.set_step(0)
        os.environ["PARLEY_TEST_CLOCK"] = self.clock
        self.raw_sql = raw_sql  # runs an INSERT on the store's database
        self.gw = Gateway(config_body=f"""control:
  token: "{TOKEN}"
outbox:
  max_attempts: 1
reports:
  business_hours: {{ timezone: Asia/Seoul, days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00" }}
{storage}pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
""", extra_channels=f"""  - name: tg
    type: telegram
    config:
      token: "{BOT}"
      secret_token: {TG_SECRET}
      api_base_url: {self.fake.url}
  - name: wa
    type: whatsapp
    config:
      phone_number_id: "{PNID}"
      access_token: wa-token
      app_secret: {WA_SECRET}
      api_base_url: {self.fake.url}
      api_version: v19.0
""")
        text = open(self.gw.config).read().replace(
            'secret: "s3cret"\n', f'secret: "s3cret"\n      outbound_url: {self.fake.url}/hooks-out\n', 1)
        with open(self.gw.config, "w") as f:
            f.write(text)
        self.log = {}  # conversation id -> the rows its history must hold
        self.state = {}
        self.n_out = 0
        self.conn = None

    # The providers: a text with FAIL is refused for good (a dead letter is never a response).
    def provider(self, req):
        fail = b"FAIL" in req.body
        self.n_out += 1
        if req.path.endswith("/sendMessage"):
            if fail:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, {}
            return 200, {"ok": True, "result": {"message_id": 9000 + self.n_out, "date": 1, "chat": {"id": 1}}}, {}
        if req.path.endswith("/messages"):
            if fail:
                return 400, {"error": {"message": "Invalid parameter", "type": "OAuthException", "code": 100}}, {}
            return 200, {"messaging_product": "whatsapp", "messages": [{"id": f"wamid.OUT{self.n_out}"}]}, {}
        return (400, {"error": "refused"}, {}) if fail else (200, {"ok": True}, {})

    def set_step(self, step):
        self.now = t_of(step)
        with open(self.clock, "w") as f:
            f.write(iso(self.now))

    def start(self):
        self.gw.start()
        self.conn = self.gw.connection()

    def close(self):
        self.gw.cleanup()
        self.fake.close()
        try:
            os.unlink(self.clock)
        except OSError:
            pass

    def op(self, name, body):
        st, data = self.gw.request("POST", f"/api/v1/ops/{name}", json.dumps(body).encode(),
                                   {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                                   conn=self.conn)
        r = json.loads(data) if data else {}
        check(st == 200, f"{name} {body}: {st} {r}")
        return r

    def row(self, conv, type_, data, actor=None):
        s = self.state[conv]
        self.log.setdefault(conv, []).append({"type": type_, "t": self.now, "data": data, "actor": actor,
                                              "agent": s["assignee"], "team": s["team"], "channel": s["channel"]})

    @staticmethod
    def waiting(s):
        return bool(s["team"]) and not s["assignee"] and s["status"] in ("open", "pending")

    # ---------------------------------------------------------------- a customer writes
    def customer(self, key, channel, n):
        text = f"message {n} from {key}"
        if channel == "hooks":
            body = json.dumps({"id": f"{key}-{n}", "from": key, "text": text}).encode()
            st, data = self.gw.post_message(None, raw=body, conn=self.conn)
        elif channel == "tg":
            uid = 500000 + int(key[1:])
            body = json.dumps({"update_id": uid * 100 + n, "message": {
                "message_id": uid * 100 + n, "from": {"id": uid, "is_bot": False, "first_name": key},
                "chat": {"id": uid, "type": "private", "first_name": key}, "date": self.now // 1000,
                "text": text}}).encode()
            st, data = self.gw.request("POST", "/webhooks/tg", body, {
                "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET}, conn=self.conn)
        else:
            wa_id = f"1555{int(key[1:]):07d}"
            body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
                "field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
                    "contacts": [{"profile": {"name": key}, "wa_id": wa_id}],
                    "messages": [{"from": wa_id, "id": f"wamid.{key}.{n}", "timestamp": str(self.now // 1000),
                                  "type": "text", "text": {"body": text}}]}}]}]}).encode()
            sig = "sha256=" + hmac.new(WA_SECRET.encode(), body, hashlib.sha256).hexdigest()
            st, data = self.gw.request("POST", "/webhooks/wa", body, {
                "Content-Type": "application/json", "X-Hub-Signature-256": sig}, conn=self.conn)
        check(st == 200, f"{channel}: {key}'s message {n} accepted: {st} {data[:200]}")
        return json.loads(data)["ids"][0] if channel == "hooks" else None

    def write(self, c):
        """Customer c writes: the conversation opens, reopens, or is open again."""
        key, ch = c["key"], c["channel"]
        c["n"] += 1
        mid = self.customer(key, ch, c["n"])
        if "conv" not in c:
            if mid is None:
                msgs = self.op("messages.list", {"channel": ch, "address": self.urn(c), "limit": 5})["messages"]
                mid = msgs[-1]["id"]
            c["conv"] = self.op("message.get", {"id": mid})["message"]["conversation_id"]
            self.state[c["conv"]] = {"team": None, "assignee": None, "status": "open", "channel": ch}
            self.row(c["conv"], "opened", {"channel": ch, "by": "contact"}, "contact")
            return
        s = self.state[c["conv"]]
        was = self.waiting(s) and s["status"] != "resolved"
        if s["status"] == "resolved":
            s["status"] = "open"
            self.row(c["conv"], "reopened", {"by": "contact", "channel": ch}, "contact")
        elif s["status"] in ("pending", "snoozed"):
            s["status"] = "open"
            self.row(c["conv"], "updated", {"status": "open", "by": "contact"}, "contact")
        if not was and self.waiting(s):
            self.row(c["conv"], "queued", {"team": s["team"], "by": "router"}, "router")

    @staticmethod
    def urn(c):
        return {"tg": f"telegram:{500000 + int(c['key'][1:])}", "wa": f"whatsapp:1555{int(c['key'][1:]):07d}"}[
            c["channel"]]

    # ---------------------------------------------------------------- agents and bots act
    def set_team(self, c, team):
        s = self.state[c["conv"]]
        was = self.waiting(s)
        self.op("conversation.set", {"conversation_id": c["conv"], "team": team})
        s["team"] = team
        self.row(c["conv"], "updated", {"team": team})
        if not was and self.waiting(s):
            self.row(c["conv"], "queued", {"team": team})

    def assign(self, c, agent, team):
        s = self.state[c["conv"]]
        self.op("conversation.assign", {"conversation_id": c["conv"], "assignee": agent, "team": team, "by": "lead"})
        s["assignee"], s["team"] = agent, team
        self.row(c["conv"], "assigned", {"assignee": agent, "team": team, "by": "lead"}, "lead")

    def reply(self, c, agent, ok=True):
        self.op("message.send", {"conversation_id": c["conv"], "text": "on it" if ok else "FAIL this one",
                                 "by": agent})
        if c.get("bot") == "claimed":
            c["bot"] = "done"
            self.row(c["conv"], "bot.handoff", {"bot": "bot:faq", "to": "agent", "by": agent}, agent)
        if ok:
            self.row(c["conv"], "replied", {"by": agent, "kind": "agent"}, agent)
        self.sent.add(c["conv"])

    def pending(self, c):
        self.op("conversation.set", {"conversation_id": c["conv"], "status": "pending"})
        self.state[c["conv"]]["status"] = "pending"
        self.row(c["conv"], "updated", {"status": "pending"})

    def resolve(self, c, by):
        self.op("conversation.resolve", {"conversation_id": c["conv"], "by": by})
        self.state[c["conv"]]["status"] = "resolved"
        self.row(c["conv"], "resolved", {"by": by}, by)

    def to_bot(self, c):
        s = self.state[c["conv"]]
        self.op("conversation.bot", {"conversation_id": c["conv"], "bot": "faq"})
        s["assignee"] = None
        c["bot"] = "claimed"
        self.row(c["conv"], "assigned", {"by": "queue"}, "queue")
        self.row(c["conv"], "bot.claimed", {"bot": "bot:faq"})

    def handoff(self, c, team):
        s = self.state[c["conv"]]
        was = self.waiting(s)
        self.op("conversation.handoff", {"conversation_id": c["conv"], "team": team})
        c["bot"] = "done"
        s["team"] = team
        self.row(c["conv"], "updated", {"team": team})
        if not was and self.waiting(s):
            self.row(c["conv"], "queued", {"team": team})
        self.row(c["conv"], "bot.handoff", {"bot": "bot:faq", "to": "queue", "team": team, "by": "bot:faq"},
                 "bot:faq")

    def append(self, c, type_, data):
        """A row another module appends (sla-csat's ratings and due times), as the store records it."""
        self.raw_sql(c["conv"], type_, json.dumps(data), iso(self.now))
        self.row(c["conv"], type_, data, data.get("by"))

    def drain(self):
        """Wait until the outbox has sent (or dead-lettered) everything queued at this time, and the
        accepted replies are in the history (the outbox logs them after it records the send)."""
        end = time.time() + 30
        while time.time() < end:
            c = self.op("outbox.counts", {})["counts"]
            if c["queued"] + c["retry"] + c["sending"] == 0:
                break
            time.sleep(0.02)
        for conv in self.sent:
            want = sum(1 for r in self.log[conv] if r["type"] == "replied")
            while time.time() < end:
                got = self.op("conversation.get", {"conversation_id": conv})["conversation"]["events"]
                if sum(1 for e in got if e["type"] == "replied") >= want:
                    break
                time.sleep(0.02)
        check(time.time() < end, "the outbox drained and its replies are in the history")


def plan(n, seed=15):
    """Each customer's story: (step, action, args), as a list of dicts sorted by step."""
    rnd = random.Random(seed)
    customers, acts = [], []
    for i in range(n):
        ch = ("hooks", "tg", "wa")[i % 3]
        team = {"hooks": "web", "tg": "sales", "wa": "support"}[ch] if rnd.random() < 0.85 else "support"
        agent = rnd.choice(AGENTS[team])
        c = {"key": f"c{i:04d}", "channel": ch, "n": 0}
        customers.append(c)
        s = rnd.randrange(0, 220)
        story = [(s, "write", ())]
        kind = rnd.random()
        t = s
        nxt = lambda lo, hi: t + rnd.randint(lo, hi)
        if kind < 0.15:  # the bot answers and resolves
            t = nxt(0, 1); story.append((t, "to_bot", ()))
            t = nxt(1, 6); story.append((t, "resolve", ("bot:faq",)))
            if rnd.random() < 0.3:
                t = nxt(1, 20); story.append((t, "write", ()))
                t = nxt(1, 8); story.append((t, "assign", (agent, team)))
                t = nxt(0, 5); story.append((t, "reply", (agent,)))
                t = nxt(1, 9); story.append((t, "resolve", (agent,)))
        elif kind < 0.27:  # the bot hands off to the team's queue
            t = nxt(0, 1); story.append((t, "to_bot", ()))
            t = nxt(1, 5); story.append((t, "handoff", (team,)))
            t = nxt(0, 12); story.append((t, "assign", (agent, team)))
            t = nxt(0, 6); story.append((t, "reply", (agent,)))
            t = nxt(1, 30); story.append((t, "resolve", (agent,)))
        elif kind < 0.33:  # an agent takes it from the bot by replying
            t = nxt(0, 1); story.append((t, "to_bot", ()))
            t = nxt(1, 9); story.append((t, "reply", (agent,)))
            t = nxt(1, 9); story.append((t, "resolve", (agent,)))
        elif kind < 0.40:  # nobody answers yet
            t = nxt(0, 3); story.append((t, "team", (team,)))
        else:  # the team's queue, an agent, maybe a dead letter first, pending, a reopen, a second agent
            t = nxt(0, 3); story.append((t, "team", (team,)))
            t = nxt(0, 25); story.append((t, "assign", (agent, team)))
            if rnd.random() < 0.2:
                t = nxt(0, 2); story.append((t, "reply_fail", (agent,)))
            t = nxt(0, 40); story.append((t, "reply", (agent,)))
            if rnd.random() < 0.25:
                t = nxt(1, 6); story.append((t, "pending", ()))
                t = nxt(1, 30); story.append((t, "write", ()))
                t = nxt(0, 8); story.append((t, "reply", (agent,)))
            t = nxt(1, 60); story.append((t, "resolve", (agent,)))
            if rnd.random() < 0.25:
                t = nxt(1, 40); story.append((t, "write", ()))
                other = rnd.choice(AGENTS[team]) if rnd.random() < 0.5 else agent
                if other != agent:
                    t = nxt(0, 5); story.append((t, "assign", (other, team)))
                t = nxt(0, 10); story.append((t, "reply", (other,)))
                t = nxt(1, 20); story.append((t, "resolve", (other,)))
        if rnd.random() < 0.5:
            story.append((s, "sla", (rnd.randint(1, 30), rnd.randint(20, 160))))
        if story[-1][1] == "resolve" and rnd.random() < 0.7:
            t = nxt(0, 10)
            story.append((t, "rate", ("csat", rnd.randint(1, 5))))
            if rnd.random() < 0.5:
                story.append((t, "rate", ("nps", rnd.randint(0, 10))))
        for order, (step, action, args) in enumerate(story):
            acts.append({"step": step, "order": order, "c": c, "action": action, "args": args})
    acts.sort(key=lambda a: (a["step"], a["c"]["key"], a["order"]))
    return customers, acts


def run(h, acts):
    """Play the stories in time order, one clock step at a time."""
    i = 0
    while i < len(acts):
        step = acts[i]["step"]
        h.set_step(step)
        h.sent = set()
        j = i
        while j < len(acts) and acts[j]["step"] == step:
            a = acts[j]
            c, name, args = a["c"], a["action"], a["args"]
            if name == "write":
                h.write(c)
            elif name == "team":
                h.set_team(c, *args)
            elif name == "assign":
                h.assign(c, *args)
            elif name in ("reply", "reply_fail"):
                h.reply(c, args[0], ok=name == "reply")
            elif name == "pending":
                h.pending(c)
            elif name == "resolve":
                h.resolve(c, *args)
            elif name == "to_bot":
                h.to_bot(c)
            elif name == "handoff":
                h.handoff(c, *args)
            elif name == "sla":
                h.append(c, "sla.due", {"target": "first_response", "due": iso(h.now + args[0] * STEP_MS)})
                h.append(c, "sla.due", {"target": "resolution", "due": iso(h.now + args[1] * STEP_MS)})
            elif name == "rate":
                agent = h.state[c["conv"]]["assignee"]
                data = {"survey": args[0], "score": args[1], "comment": "thanks"}
                if agent:
                    data["agent"] = agent
                h.append(c, "rated", data)
            j += 1
        if h.sent:
            h.drain()
        i = j


def stats(h, frm, to, by):
    rc, out, err = h.gw.cli("stats", "-c", h.gw.config, "--from", frm, "--to", to, "--by", by, "--json")
    check(rc == 0, f"parley stats --by {by}: exit {rc} {err}")
    return json.loads(out) if rc == 0 else {}


def compare(h, frm, to, by):
    got = stats(h, frm, to, by)
    want_groups, want_total = expected(h.log, parse_ms(frm if "T" in frm else frm + "T00:00:00.000Z"),
                                       parse_ms(to if "T" in to else to + "T00:00:00.000Z"), by)
    got_groups = {g["key"]: {k: v for k, v in g.items() if k != "key"} for g in got.get("groups", [])}
    check(set(got_groups) == set(want_groups), f"by {by} from {frm}: the keys {sorted(map(str, got_groups))} "
                                               f"are {sorted(map(str, want_groups))}")
    for k, want in want_groups.items():
        for name, fig in want.items():
            check(got_groups.get(k, {}).get(name) == fig,
                  f"by {by} from {frm}, {k}: {name} is {fig}, parley stats says {got_groups.get(k, {}).get(name)}")
    for name, fig in want_total.items():
        check(got.get("total", {}).get(name) == fig,
              f"by {by} from {frm}, total: {name} is {fig}, parley stats says {got.get('total', {}).get(name)}")
    return got, want_total


def sanity(total):
    """The history exercised every figure (a test of nothing would pass too)."""
    for name, path in (("first responses", ("first_response", "count")), ("resolutions", ("resolution", "count")),
                       ("reopens", ("resolutions", "reopened")), ("bot resolutions", ("bot", "contained")),
                       ("bot handoffs", ("bot", "handled")), ("queue waits", ("queue", "count")),
                       ("ratings", ("csat", "count")), ("NPS answers", ("nps", "count")),
                       ("FCR", ("fcr", "first_contact"))):
        v = total.get(path[0], {}).get(path[1]) or 0
        check(v >= 5, f"the history has {name}: {v}")
    check(total["first_response"]["business_median_ms"] != total["first_response"]["median_ms"],
          f"business time differs from calendar time: {total['first_response']}")
    check(total["sla"]["first_response"] and total["sla"]["first_response"]["breached"] > 0 and
          total["sla"]["resolution"]["count"] > 0, f"SLA gaps measured: {total['sla']}")


def sqlite_appender(h):
    """raw_sql for a History on SQLite: ratings and SLA due times as conversation_events_append writes them."""
    def insert(conv, type_, data, at):
        db = sqlite3.connect(os.path.join(h.gw.dir, "var", "parley.db"), timeout=10)
        with db:
            db.execute("INSERT INTO conversation_events (conversation_id, type, data, at, actor, agent, team, channel,"
                       " at_ms) SELECT ?1, ?2, ?3, ?4, ?3 ->> 'by', c.assignee, c.team, c.last_channel, ?5"
                       " FROM conversations AS c WHERE c.id = ?1", (conv, type_, data, at, parse_ms(at)))
        db.close()
    return insert
