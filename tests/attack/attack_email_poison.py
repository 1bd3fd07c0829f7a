"""One e-mail with a Message-ID (or From address) over 512 bytes must not stop the mailbox:
e-mail cannot be refused to its sender, so it is stored (its UID as id) and later mail keeps flowing.

Run from the source dir:  PARLEY_BIN=build/parley python3 tests/attack/attack_email_poison.py
"""
import email.utils
import os
import sys
import time
from email.mime.text import MIMEText

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from harness import Gateway  # noqa: E402
from mailservers import MailServers  # noqa: E402

fails = 0
for case in ("long Message-ID", "long From"):
    ms = MailServers()
    gw = Gateway(config_body="""pipelines:
  - name: inbound
    steps:
      - dedupe: {}
      - identify: {}
      - thread: {}
""", extra_channels=f"""  - name: mail
    type: email
    config:
      imap_url: {ms.imap_url}
      smtp_url: {ms.smtp_url}
      username: {ms.user}
      password: {ms.password}
      from: support@example.com
      poll_interval: 200ms
""").start()
    try:
        m = MIMEText("poison", "plain", "utf-8")
        if case == "long From":
            m["From"] = "x" * 600 + "@customer.example"
            m["Message-ID"] = email.utils.make_msgid(domain="customer.example")
        else:
            m["From"] = "alice@customer.example"
            m["Message-ID"] = "<" + "a" * 600 + "@customer.example>"
        m["To"] = "support@example.com"
        m["Subject"] = "poison"
        ms.deliver(m.as_bytes())
        ok = MIMEText("hello after the poison", "plain", "utf-8")
        ok["From"] = "bob@customer.example"
        ok["To"] = "support@example.com"
        ok["Subject"] = "normal"
        ok["Message-ID"] = email.utils.make_msgid(domain="customer.example")
        ms.deliver(ok.as_bytes())
        end, got = time.time() + 8, []
        while time.time() < end:
            got = gw.list_all("mail")
            if any(g.get("subject") == "normal" for g in got):
                break
            time.sleep(0.3)
        normal = any(g.get("subject") == "normal" for g in got)
        print(("PASS " if normal else "FAIL ") + case + f": stored {len(got)} message(s); "
              f"normal mail stored: {normal}")
        if not normal:
            fails += 1
            print("\n".join(l for l in gw.read_log().splitlines() if "refused" in l or "not stored" in l)[-600:])
    finally:
        gw.cleanup()
        ms.close()
sys.exit(1 if fails else 0)
