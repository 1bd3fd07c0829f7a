"""mailservers.py: a real IMAP server (dovecot) and a real SMTP server that keeps what it
receives (aiosmtpd's Mailbox handler, a maildir), on 127.0.0.1 with throwaway config."""
import glob
import mailbox
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

from ports import free_port  # noqa: F401 (tests import it from here)


def wait_port(port, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


class MailServers:
    def __init__(self, user="agent", password="secret"):
        self.dir = tempfile.mkdtemp(prefix="parley-mail-")
        os.chmod(self.dir, 0o755)
        self.user, self.password = user, password
        self.imap_port, self.smtp_port = free_port(), free_port()
        dv = pwd.getpwnam("dovecot")
        for d in ("run", "mail", "home"):
            os.makedirs(os.path.join(self.dir, d))
        for d in ("mail", "home"):
            os.chown(os.path.join(self.dir, d), dv.pw_uid, dv.pw_gid)
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write(f"{user}:{{PLAIN}}{password}:{dv.pw_uid}:{dv.pw_gid}::{self.dir}/home/{user}\n")
        conf = os.path.join(self.dir, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(f"""protocols = imap
listen = 127.0.0.1
base_dir = {self.dir}/run
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.dir}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.dir}/passwd
}}
mail_location = maildir:{self.dir}/mail/%u
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
}}
log_path = {self.dir}/dovecot.log
""")
        self.dovecot = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", conf],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.outbox = os.path.join(self.dir, "received")
        # Debian's aiosmtpd belongs to /usr/bin/python3, whatever python3 is first on PATH.
        self.smtpd = subprocess.Popen(["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.smtp_port}",
                                       "-c", "aiosmtpd.handlers.Mailbox", self.outbox],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.imap_port) or not wait_port(self.smtp_port):
            raise RuntimeError("mail servers did not start: " + open(os.path.join(self.dir, "dovecot.log")).read()
                               if os.path.exists(os.path.join(self.dir, "dovecot.log")) else "no log")

    @property
    def imap_url(self):
        return f"imap://127.0.0.1:{self.imap_port}"

    @property
    def smtp_url(self):
        return f"smtp://127.0.0.1:{self.smtp_port}"

    def deliver(self, raw):
        """Put a mail in the INBOX with a real IMAP client (curl's APPEND)."""
        path = os.path.join(self.dir, "append.eml")
        with open(path, "wb") as f:
            f.write(raw)
        subprocess.run(["curl", "-s", "-T", path, f"{self.imap_url}/INBOX", "-u", f"{self.user}:{self.password}"],
                       check=True, timeout=30)

    def received(self):
        """Mails the SMTP server got, as email.message objects."""
        if not os.path.isdir(self.outbox):
            return []
        return list(mailbox.Maildir(self.outbox, create=False))

    def close(self):
        for p in (self.dovecot, self.smtpd):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
