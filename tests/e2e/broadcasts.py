"""broadcasts.py: the broadcast acceptance run (issue 15, acceptance 4), on the store given; test_broadcast.py
runs it on SQLite, test_broadcast_postgres.py on PostgreSQL.

Broadcasts and the customer-service window (issue 15, acceptance 4).

1,000 contacts made through the real pipeline on WhatsApp (half of them wrote two
days ago: outside the 24-hour window), Telegram and SMS (Twilio), each channel at
rate_limit 50; some of them opted out (STOP, 그만).  A broadcast with a template and a
text; the gateway is killed with SIGKILL halfway and started again.  Then, from the
fake providers' logs: every contact got it exactly once (the one send a kill can
catch in flight is at most once, and reported), opted-out contacts none, and the
WhatsApp contacts outside the window the template, never free text.  Also: a free
text outside the window is refused by message.send (422) before the provider; a
template goes; a reply to the broadcast joins the contact's conversation; receipts
move the counts."""
import base64
import hashlib
import hmac
import itertools
import json
import os
import pty
import subprocess
import threading
import time
import urllib.parse

from fakeprovider import FakeProvider
from harness import PARLEY, Gateway, check, fixture

WA_SECRET, PNID = "wa-app-secret", "106540352242922"
BOT, TG_SECRET = "123456:ABC-broadcast", "tg-secret"
AC, TW_TOKEN, PUBLIC = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "twilio-auth-token", "https://parley.example.com"
TEXT = "Service in Seoul is down; we expect it back by 18:00 KST."



PIPELINES = """pipelines:
  - name: inbound
    steps:
      - dedupe: {}
      - identify: {}
      - thread: { reopen_within: 7d }
      - route:
          type: rules
          config:
            rules:
              - match: { text: "(?i)seoul" }
                set: { labels: [outage-seoul] }
"""
CHANNELS = """  - name: wa
    type: whatsapp
    rate_limit: 50
    config: {{ phone_number_id: "{PNID}", access_token: T, app_secret: {WA_SECRET}, api_base_url: "{wa}" }}
  - name: tg
    type: telegram
    rate_limit: 50
    config: {{ token: "{BOT}", secret_token: {TG_SECRET}, api_base_url: "{tg}" }}
  - name: sms
    type: twilio
    rate_limit: 50
    config: {{ account_sid: {AC}, auth_token: {TW_TOKEN}, from: "+14155550100", api_base_url: "{tw}" }}
"""


def run(storage, n_wa=334, n_tg=333, n_sms=333, n_opt=10):
    """The whole run on a gateway whose config starts with storage (YAML), with n_wa + n_tg + n_sms contacts
    of which n_opt per channel opt out; check() records failures."""
    N_WA, N_TG, N_SMS, N_OPT = n_wa, n_tg, n_sms, n_opt
    wa, tg, tw = FakeProvider(nodelay=True), FakeProvider(nodelay=True), FakeProvider(nodelay=True)
    seq = itertools.count(1)
    wa.default = lambda req: (200, {"messaging_product": "whatsapp", "messages": [{"id": f"wamid.BC{next(seq)}"}]}, {})
    tg.default = lambda req: (200, {"ok": True, "result": {"message_id": next(seq), "date": int(time.time()),
                                                         "chat": {"id": 1, "type": "private"}}}, {})
    tw.default = lambda req: (201, {"sid": f"SM{next(seq):032d}", "status": "queued"}, {})

    gw = Gateway(http_extra=f"  public_url: {PUBLIC}\n", config_body=storage + PIPELINES,
                 extra_channels=CHANNELS.format(PNID=PNID, WA_SECRET=WA_SECRET, BOT=BOT, TG_SECRET=TG_SECRET, AC=AC,
                                                TW_TOKEN=TW_TOKEN, wa=wa.url, tg=tg.url, tw=tw.url)).start()

    WA_PATH, TG_PATH, TW_PATH = f"/v19.0/{PNID}/messages", f"/bot{BOT}/sendMessage", f"/2010-04-01/Accounts/{AC}/Messages.json"


    def wa_number(i):
        return f"8210{i:07d}"


    def wa_post(msgs):
        body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
            "contacts": [{"profile": {"name": f"WA {m['from']}"}, "wa_id": m["from"]} for m in msgs],
            "messages": msgs}}]}]}).encode()
        sig = "sha256=" + hmac.new(WA_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return gw.request("POST", "/webhooks/wa", body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig})


    def wa_text(i, text, ts):
        return {"from": wa_number(i), "id": f"wamid.IN{i}-{ts}-{abs(hash(text)) % 10000}", "timestamp": str(ts),
                "type": "text", "text": {"body": text}}


    def tg_post(i, text):
        uid = 700000 + i
        body = json.dumps({"update_id": next(seq), "message": {"message_id": next(seq), "date": int(time.time()), "text": text,
                           "from": {"id": uid, "is_bot": False, "first_name": f"TG{i}"}, "chat": {"id": uid, "type": "private"}}}).encode()
        return gw.request("POST", "/webhooks/tg", body, {"Content-Type": "application/json",
                                                          "X-Telegram-Bot-Api-Secret-Token": TG_SECRET})


    def sms_number(i):
        return f"+1555{i:07d}"


    def sms_post(i, text):
        params = {"MessageSid": f"SMIN{next(seq):030d}", "AccountSid": AC, "From": sms_number(i), "To": "+14155550100",
                  "Body": text, "NumMedia": "0"}
        data = PUBLIC + "/webhooks/sms" + "".join(k + v for k, v in sorted(params.items()))
        sig = base64.b64encode(hmac.new(TW_TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
        return gw.request("POST", "/webhooks/sms", urllib.parse.urlencode(params).encode(),
                          {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})


    def parallel(fn, items, threads=8):
        items, bad = list(items), []

        def work(k):
            for x in items[k::threads]:
                st, _ = fn(x)
                if st != 200:
                    bad.append((x, st))
        ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return bad


    def broadcast_sends():
        """Every broadcast request the providers got: (channel, address, request)."""
        out = []
        for r in wa.seen("POST", WA_PATH):
            j = r.json()
            if j.get("type") == "template" or j.get("text", {}).get("body") == TEXT:
                out.append(("wa", j["to"], j))
        for r in tg.seen("POST", TG_PATH):
            j = r.json()
            if j.get("text") == TEXT:
                out.append(("tg", str(j["chat_id"]), j))
        for r in tw.seen("POST", TW_PATH):
            f = r.form()
            if f.get("Body") == TEXT:
                out.append(("sms", f["To"], f))
        return out


    def status(bid, *extra):
        rc, out, err = gw.cli("broadcast", "-c", gw.config, "status", bid, "--json", *extra)
        return json.loads(out) if rc == 0 else {"rc": rc, "err": err}


    try:
        now, old = int(time.time()), int(time.time()) - 2 * 86400
        # The contacts, through the real pipeline.  WhatsApp: even ones wrote now, odd ones two days ago.
        for start in range(0, N_WA, 50):
            st, body = wa_post([wa_text(i, "Is Seoul down?", now if i % 2 == 0 else old) for i in range(start, min(start + 50, N_WA))])
            check(st == 200, f"WhatsApp batch answered {st} {body!r}")
        check(not parallel(lambda i: tg_post(i, "Seoul outage?"), range(N_TG)), "every Telegram update stored")
        check(not parallel(lambda i: sms_post(i, "seoul is down"), range(N_SMS)), "every SMS stored")
        # Opt-outs: the first N_OPT inside-window WhatsApp contacts write STOP, Telegram ones 그만, SMS ones STOP.
        opted = {("wa", wa_number(i)) for i in range(0, 2 * N_OPT, 2)}
        opted |= {("tg", str(700000 + i)) for i in range(N_OPT)} | {("sms", sms_number(i)) for i in range(N_OPT)}
        st, _ = wa_post([wa_text(i, "STOP", now) for i in range(0, 2 * N_OPT, 2)])
        check(st == 200 and not parallel(lambda i: tg_post(i, "그만"), range(N_OPT))
              and not parallel(lambda i: sms_post(i, "STOP"), range(N_OPT)), "the opt-outs are stored")
        rc, r = gw.api("contact.lookup", {"urns": ["whatsapp:" + wa_number(0)]})
        cid0 = r.get("contact_id") or r.get("contact", {}).get("id")
        rc, r = gw.api("contact.get", {"contact_id": cid0})
        attrs = r.get("contact", {}).get("attributes", {})
        check(attrs.get("opt_out") is True and attrs.get("opt_out_channel") == "wa" and attrs.get("opt_out_at"),
              f"STOP recorded on the contact: {attrs}")
        confirm = wa.wait_for("POST", WA_PATH, count=N_OPT)
        check(len(confirm) == N_OPT and all("START" in c.json().get("text", {}).get("body", "") for c in confirm),
              f"WhatsApp opt-outs get a confirmation: {len(confirm)}")
        tg.wait_for("POST", TG_PATH, count=N_OPT)
        check(len(tg.seen("POST", TG_PATH)) == N_OPT, "Telegram opt-outs (그만) get a confirmation")
        time.sleep(0.5)
        check(len(tw.seen("POST", TW_PATH)) == 0, "Twilio answers STOP itself: no confirmation from us")

        # message.send outside the window: refused before the provider, naming the window and the template.
        n0 = len(wa.seen("POST", WA_PATH))
        rc, r = gw.api("message.send", {"channel": "wa", "to": "whatsapp:" + wa_number(1), "text": "free text"})
        e = r.get("error", {})
        check(rc != 0 and e.get("code") == "outside_window" and "24-hour" in e.get("message", "")
              and "template" in e.get("message", ""), f"free text outside the window refused: {r}")
        time.sleep(0.3)
        check(len(wa.seen("POST", WA_PATH)) == n0, "the provider was never called for it")
        rc, r = gw.api("message.send", {"channel": "wa", "to": "whatsapp:" + wa_number(1), "template": {
            "name": "order_update", "language": "en_US", "body": ["Kim", "#1234"],
            "buttons": [{"type": "quick_reply", "value": "TRACK"}]}})
        m = gw.wait_message(r.get("id"), "sent")
        req = wa.seen("POST", WA_PATH)[-1].json() if len(wa.seen("POST", WA_PATH)) > n0 else {}
        check(m.get("status") == "sent" and req == {
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": wa_number(1), "type": "template",
            "template": {"name": "order_update", "language": {"policy": "deterministic", "code": "en_US"}, "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "Kim"}, {"type": "text", "text": "#1234"}]},
                {"type": "button", "sub_type": "quick_reply", "index": "0",
                 "parameters": [{"type": "payload", "payload": "TRACK"}]}]}}, f"the template as documented: {req}")
        rc, r = gw.api("message.send", {"channel": "wa", "to": "whatsapp:" + wa_number(1),
                                        "template": {"name": "Bad Name", "language": "en_US"}})
        check(rc != 0 and "template.name" in r.get("error", {}).get("message", ""), f"a bad template: 400 {r}")
        rc, r = gw.api("message.send", {"channel": "sms", "to": "tel:" + sms_number(500), "template": {
            "name": "order_update", "language": "en_US"}})
        m = gw.wait_message(r.get("id"), "failed")
        check("ContentSid" in m.get("error", "") and not any(x.form().get("To") == sms_number(500) for x in tw.seen("POST", TW_PATH)),
              f"Twilio refuses a template clearly, without calling the provider: {m.get('error')}")

        rc, r = gw.api("message.send", {"channel": "tg", "to": "telegram:700000", "template": {
            "name": "order_update", "language": "en_US"}})
        check(rc != 0 and r.get("error", {}).get("code") == "not_supported", f"Telegram takes no templates: {r}")

        # The broadcast: template and text, to the segment; killed halfway, restarted.
        base = len(broadcast_sends())
        rc, out, err = gw.cli("broadcast", "-c", gw.config, "create", "--segment", "label:outage-seoul",
                              "--template", "outage_notice", "--language", "ko", "--param", "Seoul", "--param", "18:00",
                              "--text", TEXT, "--json")
        check(rc == 0, f"broadcast create: {out} {err}")
        created = json.loads(out) if rc == 0 else {}
        bid = created.get("id", "none")
        total = N_WA + N_TG + N_SMS
        check(created.get("recipients") == total and created.get("skipped") == 3 * N_OPT,
              f"every contact selected, the opted-out skipped at once: {created}")
        # A reply to a customer during the broadcast goes ahead of the broadcast's backlog on its channel.
        end = time.time() + 20
        while len(broadcast_sends()) - base < total // 5 and time.time() < end:
            time.sleep(0.05)
        rc, r = gw.api("message.send", {"channel": "tg", "to": f"telegram:{700000 + N_TG - 1}", "text": "REPLY"})
        end = time.time() + 10
        while not any(x.json().get("text") == "REPLY" for x in tg.seen("POST", TG_PATH)) and time.time() < end:
            time.sleep(0.02)
        log = [x.json().get("text") for x in tg.seen("POST", TG_PATH)]
        before = log[:log.index("REPLY")].count(TEXT) if "REPLY" in log else N_TG
        check(rc == 0 and before < (N_TG - N_OPT) * 3 // 4,
              f"the reply went out with most of the broadcast still to go on its channel ({before} of {N_TG - N_OPT} before it)")
        while len(broadcast_sends()) - base < total // 2 and time.time() < end:
            time.sleep(0.05)
        halfway = len(broadcast_sends()) - base
        gw.proc.kill()
        gw.proc.wait()
        check(0 < halfway < total - 3 * N_OPT, f"killed halfway: {halfway} sent")
        gw.start()
        try:
            rc, out, err = gw.cli("broadcast", "-c", gw.config, "status", bid, "--follow", timeout=45)
        except subprocess.TimeoutExpired:
            rc, out, err = 1, "", f"not done within 45 s: {status(bid)}"
        check(rc == 0 and out.strip().splitlines()[-1].startswith("done"), f"status --follow until done: {out[-300:]} {err}")

        sends = broadcast_sends()[base:]
        per = {}
        for ch, addr, body in sends:
            per.setdefault((ch, addr), []).append(body)
        s = status(bid, "--recipients")
        unknown = {(r["channel"], r["to"].split(":", 1)[1].lstrip("+") if r["channel"] != "sms" else r["to"].split(":", 1)[1])
                   for r in s.get("recipients", []) if r["status"] == "failed" and "unknown" in r.get("reason", "")}
        want = {("wa", wa_number(i)) for i in range(N_WA)} | {("tg", str(700000 + i)) for i in range(N_TG)} | \
               {("sms", sms_number(i)) for i in range(N_SMS)}
        twice = [k for k, v in per.items() if len(v) > 1]
        missing = [k for k in want - opted if k not in per and k not in unknown]
        check(not twice, f"nobody got it twice: {twice[:5]}")
        check(not missing, f"every contact got it: {len(missing)} missing, e.g. {missing[:5]}")
        check(len(unknown) <= 3, f"at most the in-flight send of each channel has an unknown outcome: {unknown}")
        print(f"killed with {len(unknown)} send(s) in flight (unknown outcome, not sent again); "
              f"{len([k for k in unknown if k in per])} of them reached the provider")
        check(not [k for k in opted if k in per], "opted-out contacts got nothing")
        outside = {wa_number(i) for i in range(1, N_WA, 2)}
        wrong = [a for (ch, a), v in per.items() if ch == "wa" and a in outside and any(b.get("type") != "template" for b in v)]
        check(not wrong, f"outside the window: the template, never free text: {wrong[:5]}")
        inside_text = [a for (ch, a), v in per.items() if ch == "wa" and a not in outside and v[0].get("type") == "text"]
        check(len(inside_text) >= N_WA // 2 - N_OPT - 1, f"inside the window: the text ({len(inside_text)})")
        tpl = next((v[0] for (ch, a), v in per.items() if ch == "wa" and a in outside), {})
        check(tpl.get("template", {}).get("name") == "outage_notice" and
              tpl["template"]["components"][0]["parameters"][1]["text"] == "18:00", f"the template's parameters: {tpl}")
        counts = s.get("counts", {})
        check(counts.get("skipped") == 3 * N_OPT and counts.get("queued") == 0
              and counts.get("sent") + counts.get("failed") == total - 3 * N_OPT, f"status counts: {counts}")
        reasons = {r["reason"] for r in s.get("recipients", []) if r["status"] == "skipped"}
        check(reasons == {"opted out"}, f"skipped with a reason: {reasons}")

        # Receipts move a recipient to delivered / read; a reply joins the contact's conversation.
        rec = next(r for r in s["recipients"] if r["channel"] == "wa" and r["status"] == "sent"
                   and r["to"] == "whatsapp:" + wa_number(2 * N_OPT))
        rc, r = gw.api("message.get", {"id": rec["message_id"]})
        bm = r.get("message", {})
        receipt = fixture("whatsapp", "status_read.json").replace(b"WAMID_PLACEHOLDER", bm.get("external_id", "").encode())
        sig = "sha256=" + hmac.new(WA_SECRET.encode(), receipt, hashlib.sha256).hexdigest()
        gw.request("POST", "/webhooks/wa", receipt, {"Content-Type": "application/json", "X-Hub-Signature-256": sig})
        gw.wait_message(rec["message_id"], "read")
        check(status(bid).get("counts", {}).get("read") == 1, f"a read receipt counts: {status(bid).get('counts')}")
        rc, r = gw.api("conversation.get", {"conversation_id": bm.get("conversation_id")})
        check(not r.get("conversation", {}).get("first_response_at"),
              f"a broadcast is not the conversation's first response: {r.get('conversation', {}).get('first_response_at')}")
        st, _ = wa_post([wa_text(2 * N_OPT, "Thanks, any update?", int(time.time()))])
        reply = [m for m in gw.list_all("wa") if m.get("text") == "Thanks, any update?"]
        check(bm.get("conversation_id") and reply and reply[0].get("conversation_id") == bm["conversation_id"],
              f"the reply joins the conversation the broadcast was recorded in: {bm.get('conversation_id')} "
              f"{reply[0].get('conversation_id') if reply else None}")

        # The same ops over REST with a service token.
        rc, out, err = gw.cli("token", "create", "-c", gw.config, "--name", "ops", "--scope", "broadcast.status",
                              "--scope", "broadcast.create")
        auth = {"Authorization": "Bearer " + out.strip(), "Content-Type": "application/json"}
        st, body = gw.request("GET", f"/api/v1/broadcasts/{bid}", None, auth)
        r = json.loads(body) if st == 200 else {}
        check(r.get("counts", {}).get("total") == total, f"GET /api/v1/broadcasts/ID: {st} {body[:200]!r}")
        st, body = gw.request("POST", "/api/v1/broadcasts", json.dumps({"segment": ["tier:gold"], "text": "x"}).encode(),
                              auth)
        check(st == 400 and b"tier:gold" in body, f"POST /api/v1/broadcasts with a bad segment: 400 naming it: {st} {body!r}")
        st, body = gw.request("POST", "/api/v1/broadcasts", json.dumps({"segment": ["all"]}).encode(), auth)
        check(st == 400 and b"text" in body, f"a broadcast without text or template: 400: {st} {body!r}")

        # On a terminal, --follow draws a progress bar.
        mfd, sfd = pty.openpty()
        proc = subprocess.Popen([PARLEY, "broadcast", "-c", gw.config, "status", bid, "--follow"], stdout=sfd,
                                stderr=sfd)
        os.close(sfd)
        proc.wait(timeout=20)
        tty = b""
        while True:
            try:
                chunk = os.read(mfd, 4096)
            except OSError:
                break
            if not chunk:
                break
            tty += chunk
        os.close(mfd)
        check(b"\r[" + b"#" * 30 + b"] 100%" in tty and b"done" in tty, f"a progress bar on a terminal: {tty[-200:]!r}")

        # Opting in again: START clears opt_out (Twilio confirms it itself).
        sms_post(0, "START")
        rc, r = gw.api("contact.lookup", {"urns": ["tel:" + sms_number(0)]})
        rc, r = gw.api("contact.get", {"contact_id": r.get("contact_id") or r.get("contact", {}).get("id")})
        attrs = r.get("contact", {}).get("attributes", {})
        check(attrs.get("opt_out") is False and attrs.get("opt_in_channel") == "sms", f"START opts in again: {attrs}")

        # Cancel: a running broadcast stops (who was not sent to is cancelled); a done one cannot be cancelled.
        rc, out, err = gw.cli("broadcast", "-c", gw.config, "create", "--segment", "channel:tg", "--text", "CANCEL-ME",
                              "--json")
        cid = json.loads(out).get("id") if rc == 0 else "none"
        rc, out, err = gw.cli("broadcast", "-c", gw.config, "cancel", cid)
        check(rc == 0 and "cancelled" in out, f"cancel: {out} {err}")
        time.sleep(1.5)
        c = status(cid).get("counts", {})
        got = sum(1 for x in tg.seen("POST", TG_PATH) if x.json().get("text") == "CANCEL-ME")
        check(c.get("cancelled", 0) > 0 and got == c.get("sent", 0) + c.get("failed", 0) and got < N_TG - N_OPT,
              f"cancelled recipients are never sent to: {c}, {got} sent")
        rc, out, err = gw.cli("broadcast", "-c", gw.config, "cancel", bid)
        check(rc != 0 and "done" in err, f"a done broadcast is not cancelled: {err}")
        rc, out, err = gw.cli("broadcast", "-c", gw.config, "create", "--segment", "channel:sms,attr:opt_out=true",
                              "--text", "x", "--json")
        r = json.loads(out) if rc == 0 else {}
        check(rc == 0 and r.get("recipients") == N_OPT - 1 and r.get("queued") == 0,  # one opted in again
              f"segment terms are and-ed (channel:sms,attr:opt_out=true): {r} {err}")
        rc, out, err = gw.cli("broadcast", "-c", gw.config, "create", "--segment", "color:blue", "--text", "x")
        check(rc != 0 and "color:blue" in err, f"an unknown segment term is refused by name: {err}")
    finally:
        gw.cleanup()
        for f in (wa, tg, tw):
            f.close()
