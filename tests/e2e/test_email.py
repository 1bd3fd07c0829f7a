"""E-mail channel against real servers started here: dovecot (IMAP) and aiosmtpd (SMTP).
Charsets, HTML-only mail, attachments, threading by In-Reply-To, replies with threading
headers, exactly-once intake across kill -9, auto-replies and bounces."""
import email.header
import email.utils
import hashlib
import json
import os
import signal
import time
from email.mime.application import MIMEApplication
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from envelopes import check_all_stored
from harness import Gateway, check, done
from mailservers import MailServers


def addr(display):
    """'Name <a@b>' with the name as an RFC 2047 encoded word when it is not ASCII."""
    name, address = email.utils.parseaddr(display)
    return email.utils.formataddr((name, address), charset="utf-8")


def mail(frm, subject, body, charset="utf-8", subtype="plain", msgid=None, extra=None):
    m = MIMEText(body, subtype, charset)
    m["From"] = addr(frm)
    m["To"] = "support@example.com"
    m["Subject"] = email.header.Header(subject, charset).encode()
    m["Message-ID"] = msgid or email.utils.make_msgid(domain="customer.example")
    m["Date"] = email.utils.formatdate()
    for k, v in (extra or {}).items():
        m[k] = v
    return m


def channel(ms, reopen="7d", poll="200ms"):
    return Gateway(config_body=f"""pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{ reopen_within: {reopen} }}
outbox:
  backoff_base: 100ms
""", extra_channels=f"""  - name: mail
    type: email
    config:
      imap_url: {ms.imap_url}
      smtp_url: {ms.smtp_url}
      username: {ms.user}
      password: {ms.password}
      from: support@example.com
      poll_interval: {poll}
""")


def wait(fn, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return fn()


def by_subject(gw, subject):
    return next((m for m in gw.list_all("mail") if m.get("subject") == subject), None)


ms = MailServers()
# A poll interval far longer than the test: mail arrives in time only through IMAP IDLE.
gw = channel(ms, reopen="1s", poll="10m").start()
try:
    # 1. Charsets, encoded-word subjects and names, HTML-only, attachments.
    ms.deliver(mail("김민준 <MinJun.Kim@Customer.Example>",
                    "주문 환불 요청", "안녕하세요, 주문 1234 환불 부탁드립니다.\n\n-- \n김민준\n").as_bytes())
    ms.deliver(mail("Ji-woo Park <jiwoo@customer.example>", "배송 문의", "배송이 언제 되나요?", charset="euc-kr").as_bytes())
    ms.deliver(mail("Renée Dupont <renee@customer.example>", "Problème de commande", "Ma commande est arrivée abîmée.",
                    charset="iso-8859-1").as_bytes())
    ms.deliver(mail("山田太郎 <taro@customer.example>", "注文について", "注文について質問があります。", charset="iso-2022-jp").as_bytes())
    ms.deliver(mail("Sam Lee <sam@customer.example>", "HTML only",
                    "<html><head><style>p{color:red}</style></head><body><p>Hello <b>team</b>,</p>"
                    "<p>my order is <i>late</i> &amp; I&#39;m worried.</p></body></html>", subtype="html").as_bytes())
    png, pdf = os.urandom(3000), b"%PDF-1.4\n" + os.urandom(2000)
    mm = MIMEMultipart()
    mm["From"], mm["To"], mm["Subject"] = "Ana <ana@customer.example>", "support@example.com", "Two files"
    mm["Message-ID"] = email.utils.make_msgid(domain="customer.example")
    mm.attach(MIMEText("Photo and invoice attached.", "plain", "utf-8"))
    img = MIMEImage(png, "png")
    img.add_header("Content-Disposition", "attachment", filename="damage.png")
    mm.attach(img)
    doc = MIMEApplication(pdf, "pdf")
    doc.add_header("Content-Disposition", "attachment", filename="invoice.pdf")
    mm.attach(doc)
    ms.deliver(mm.as_bytes())
    # A mail that claims UTF-8 but is not: repaired (U+FFFD), not refused and not stuck.
    bad = (b"From: Broken <broken@customer.example>\r\nTo: support@example.com\r\nSubject: Bad bytes\r\n"
           b"Message-ID: <bad-\xff@customer.example>\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9 au lait\r\n")
    ms.deliver(bad)
    # Ids and addresses too long for an envelope: the mail is kept (they go to meta), not retried forever.
    long_id = mail("Alice <alice@customer.example>", "Long id", "a long Message-ID", msgid="<" + "a" * 600 + "@x.example>")
    ms.deliver(long_id.as_bytes())
    long_from = mail("x" * 600 + "@customer.example", "Long from", "a long sender")
    ms.deliver(long_from.as_bytes())

    ko = wait(lambda: by_subject(gw, "주문 환불 요청"))
    check(ko and ko["from"] == "mailto:minjun.kim@customer.example" and ko["text"] == "안녕하세요, 주문 1234 환불 부탁드립니다.",
          f"UTF-8 mail, signature stripped: {ko and (ko['from'], ko.get('text'))}")
    check(ko and ko["meta"]["contact_name"] == "김민준" and "김민준" in ko["meta"]["full_text"], "encoded-word name; full body kept")
    kr = wait(lambda: by_subject(gw, "배송 문의"))
    check(kr and kr["text"] == "배송이 언제 되나요?", f"EUC-KR decoded: {kr and kr.get('text')}")
    fr = wait(lambda: by_subject(gw, "Problème de commande"))
    check(fr and fr["text"] == "Ma commande est arrivée abîmée." and fr["meta"]["contact_name"] == "Renée Dupont",
          f"ISO-8859-1 decoded: {fr and fr.get('text')}")
    jp = wait(lambda: by_subject(gw, "注文について"))
    check(jp and jp["text"] == "注文について質問があります。" and jp["meta"]["contact_name"] == "山田太郎",
          f"ISO-2022-JP decoded: {jp and (jp.get('text'), jp['meta'].get('contact_name'))}")
    html = wait(lambda: by_subject(gw, "HTML only"))
    check(html and html["text"] == "Hello team,\nmy order is late & I'm worried." and html["meta"]["html_only"],
          f"HTML-only mail as readable text: {html and html.get('text')!r}")
    two = wait(lambda: by_subject(gw, "Two files"))
    atts = (two or {}).get("attachments", [])
    check([a.get("name") for a in atts] == ["damage.png", "invoice.pdf"], f"two attachments: {atts}")
    check([a.get("sha256") for a in atts] == [hashlib.sha256(png).hexdigest(), hashlib.sha256(pdf).hexdigest()], "their bytes kept")
    check(all(os.path.exists(os.path.join(gw.dir, "var", a["ref"])) for a in atts if a.get("ref")), "in the attachment store")

    broken = wait(lambda: by_subject(gw, "Bad bytes"))
    check(broken and broken["text"].startswith("caf") and broken["text"].endswith("au lait"),
          f"a mail with invalid UTF-8 is stored as valid text, not refused or retried forever: "
          f"{broken and (broken.get('text'), broken.get('external_id'))}")

    lid = wait(lambda: by_subject(gw, "Long id"))
    check(lid and lid["external_id"].startswith("uid:") and len(lid["meta"]["message_id"]) > 600,
          f"an over-long Message-ID: stored under its UID, the id kept in meta: {lid and lid['external_id']}")
    lfrom = wait(lambda: by_subject(gw, "Long from"))
    check(lfrom and "from" not in lfrom and lfrom["meta"].get("from_address", "").startswith("xxx"),
          f"an over-long sender: stored with the address in meta: {lfrom and lfrom.get('meta', {}).get('from_address', '')[:20]}")

    # 3. A reply on the conversation goes out by SMTP with threading headers.
    conv = ko["conversation_id"]
    rc, r = gw.api("message.send", {"conversation_id": conv, "text": "환불 처리되었습니다."})
    check(rc == 0 and r["to"] == "mailto:minjun.kim@customer.example", f"message.send: {r}")
    sent = gw.wait_message(r["id"], "sent")
    got = wait(lambda: ms.received())
    check(len(got) == 1, f"the SMTP server received it: {len(got)}")
    if got:
        out = got[0]
        cust_id = ko["meta"]["message_id"]
        check(out["In-Reply-To"] == f"<{cust_id}>" and f"<{cust_id}>" in out["References"], f"threading headers: {out['In-Reply-To']} / {out['References']}")
        check(str(email.header.make_header(email.header.decode_header(out["Subject"]))) == "Re: 주문 환불 요청", f"subject: {out['Subject']}")
        check(out["Message-ID"] == f"<{sent.get('external_id')}>", "our Message-ID is the message's external id")
        body = out.get_payload(decode=True).decode(out.get_content_charset())
        check("환불 처리되었습니다." in body, f"body: {body!r}")

    # 2. The customer answers our mail with another subject, after the conversation was resolved long ago.
    gw.api("conversation.resolve", {"conversation_id": conv})
    time.sleep(1.5)
    ms.deliver(mail("김민준 <minjun.kim@customer.example>", "Different subject entirely", "Thanks!\n\nOn Mon, Support wrote:\n> 환불 처리되었습니다.",
                    extra={"In-Reply-To": f"<{sent.get('external_id')}>", "References": f"<{ko['meta']['message_id']}> <{sent.get('external_id')}>"}).as_bytes())
    rep = wait(lambda: by_subject(gw, "Different subject entirely"))
    check(rep and rep["conversation_id"] == conv and rep["text"] == "Thanks!", f"the reply joins the conversation it answers: {rep and (rep['conversation_id'], rep.get('text'))}")

    # 5. An auto-reply gets no answer (an event, not a message); a bounce marks our mail failed.
    ms.deliver(mail("Out of office <ooo@customer.example>", "Automatic reply: your message", "I am away until Monday.",
                    extra={"Auto-Submitted": "auto-replied"}).as_bytes())
    auto = wait(lambda: by_subject(gw, "Automatic reply: your message"))
    check(auto and auto["kind"] == "event" and auto["meta"]["auto_reply"] and not auto.get("conversation_id"),
          f"an auto-reply is an event that starts nothing: {auto and (auto['kind'], auto.get('conversation_id'))}")
    rc, r2 = gw.api("message.send", {"channel": "mail", "to": "mailto:nobody@customer.example", "text": "hello?", "subject": "Hi"})
    sent2 = gw.wait_message(r2["id"], "sent")
    # A delivery status notification (RFC 3464) as a mail server writes it.
    dsn = (f"From: MAILER-DAEMON@mx.customer.example\r\nTo: support@example.com\r\n"
           f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.customer.example>\r\n"
           f"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n"
           f"--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
           f"--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n"
           f"Final-Recipient: rfc822; nobody@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
           f"Diagnostic-Code: smtp; 550 5.1.1 <nobody@customer.example>: User unknown\r\n"
           f"--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{sent2.get('external_id')}>\r\n"
           f"From: support@example.com\r\nTo: nobody@customer.example\r\nSubject: Hi\r\n\r\n--b1--\r\n").encode()
    ms.deliver(dsn)
    m2 = gw.wait_message(r2["id"], "failed")
    check(m2.get("status") == "failed" and "User unknown" in (m2.get("error") or ""), f"a bounce marks the mail failed: {m2}")
    check_all_stored(gw, "mail")
finally:
    gw.cleanup()
    ms.close()

# 4. Kill -9 while 200 mails are being taken in; after a restart each is stored exactly once.
ms = MailServers()
for i in range(200):
    ms.deliver(mail(f"Bulk {i} <bulk{i}@customer.example>", f"bulk {i}", f"message number {i}").as_bytes())
gw = channel(ms)
try:
    gw.start()
    wait(lambda: len(gw.list_all("mail")) > 0, timeout=20)
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait()
    gw.start()
    wait(lambda: len(gw.list_all("mail")) >= 200, timeout=60)
    time.sleep(1)
    msgs = gw.list_all("mail")
    subjects = [m.get("subject") for m in msgs]
    check(len(msgs) == 200 and len(set(subjects)) == 200, f"200 mails, each once: {len(msgs)} stored, {len(set(subjects))} distinct")
finally:
    gw.cleanup()
    ms.close()
done()
