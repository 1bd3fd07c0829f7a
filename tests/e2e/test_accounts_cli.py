"""Acceptance: `parley agent` and `parley token` against a running gateway.  Accounts
are added, listed, given a new password and removed; a service token is created
(printed once), listed without its secret, stored only as its SHA-256, and revoked.
Neither a password nor a token shows in `agent list`, `token list`, `parley api`,
`parley check`, `parley plugins`, the log (at debug level) or the database file."""
import hashlib
import os
import sqlite3
import subprocess

from harness import PARLEY, Gateway, check, done

PASSWORD = "Correct-Horse-Battery-1"
NEW_PASSWORD = "Staple-Another-Secret-2"

gw = Gateway(config_body="log:\n  level: debug\n")


def cli_in(stdin, *args):
    r = subprocess.run([PARLEY, *args], input=stdin, capture_output=True, text=True, timeout=60,
                       stdin=None if stdin is not None else subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr


try:
    gw.start()
    c = ["-c", gw.config]

    rc, out, err = cli_in(PASSWORD + "\n", "agent", "add", "ana", *c, "--email", "Ana@Example.org", "--role",
                          "agent", "--team", "billing", "--team", "sales", "--password-stdin")
    check(rc == 0 and "agent ana added" in out, f"agent add: rc={rc} out={out!r} err={err!r}")
    rc, out, err = cli_in("admin-password-3\n", "agent", "add", "root", *c, "--email", "root@example.org",
                          "--role", "admin", "--password-stdin")
    check(rc == 0, f"agent add (admin): rc={rc} err={err!r}")

    # Refusals name what is wrong.
    rc, out, err = cli_in(PASSWORD + "\n", "agent", "add", "ana", *c, "--email", "other@example.org", "--role",
                          "agent", "--password-stdin")
    check(rc == 1 and "conflict" in err, f"a second ana is refused: rc={rc} err={err!r}")
    rc, out, err = cli_in("short\n", "agent", "add", "bea", *c, "--email", "bea@example.org", "--role", "agent",
                          "--password-stdin")
    check(rc == 1 and "'password'" in err, f"a short password is refused: rc={rc} err={err!r}")
    rc, out, err = cli_in(PASSWORD + "\n", "agent", "add", "bea", *c, "--email", "bea@", "--role", "agent",
                          "--password-stdin")
    check(rc == 1 and "'email'" in err, f"a bad e-mail is refused: rc={rc} err={err!r}")
    rc, out, err = cli_in(PASSWORD + "\n", "agent", "add", "bea", *c, "--email", "bea@example.org", "--role",
                          "owner", "--password-stdin")
    check(rc == 1 and "'role'" in err, f"a bad role is refused: rc={rc} err={err!r}")
    rc, out, err = cli_in(None, "agent", "add", "bea", *c, "--email", "bea@example.org", "--role", "agent",
                          "--password", PASSWORD)
    check(rc == 2 and "never taken from the command line" in err, f"--password on argv is refused: {rc} {err!r}")

    rc, listing, err = cli_in(None, "agent", "list", *c)
    check(rc == 0 and "ana" in listing and "ana@example.org" in listing and "billing,sales" in listing
          and "root" in listing and "admin" in listing, f"agent list: rc={rc} out={listing!r}")

    rc, out, err = cli_in(NEW_PASSWORD + "\n", "agent", "passwd", "ana", *c, "--password-stdin")
    check(rc == 0 and "new password" in out, f"agent passwd: rc={rc} out={out!r} err={err!r}")
    rc, out, err = cli_in(NEW_PASSWORD + "\n", "agent", "passwd", "nobody", *c, "--password-stdin")
    check(rc == 1 and "not_found" in err, f"passwd of an unknown account: rc={rc} err={err!r}")

    # A service token: printed once on stdout, with a warning that it will not be shown again.
    rc, out, err = cli_in(None, "token", "create", *c, "--name", "crm", "--scope", "messages.list", "--scope",
                          "message.send")
    token = out.strip()
    check(rc == 0 and token.startswith("pst_") and len(token) == 47, f"token create: rc={rc} out={out!r}")
    check("will not be shown again" in err, f"token create warns it is shown once: {err!r}")
    rc, out, err = cli_in(None, "token", "create", *c, "--name", "bad", "--scope", "no.such.op")
    check(rc == 1 and "'scopes'" in err, f"an unknown scope is refused: rc={rc} err={err!r}")

    rc, tokens, err = cli_in(None, "token", "list", *c)
    check(rc == 0 and "crm" in tokens and "messages.list,message.send" in tokens and "valid" in tokens,
          f"token list: rc={rc} out={tokens!r}")
    tid = next((w for w in tokens.split() if w.startswith("tok_")), None)
    check(tid is not None, f"token list shows the id: {tokens!r}")

    # Stored hashed: the database holds the SHA-256, never the token.
    db = os.path.join(gw.dir, "var", "parley.db")
    con = sqlite3.connect(db)
    rows = con.execute("SELECT hash FROM service_tokens").fetchall()
    hashes = con.execute("SELECT password_hash FROM accounts").fetchall()
    con.close()
    check(rows == [(hashlib.sha256(token.encode()).hexdigest(),)], f"the token's SHA-256 is stored: {rows}")
    check(all(h[0].startswith("$argon2id$v=19$m=19456,t=2,p=1$") for h in hashes),
          f"passwords are argon2id hashes: {hashes}")
    raw = b""
    for suffix in ("", "-wal"):
        if os.path.exists(db + suffix):
            with open(db + suffix, "rb") as f:
                raw += f.read()
    for secret in (token, token[4:], PASSWORD, NEW_PASSWORD):
        check(secret.encode() not in raw, f"the database file does not hold {secret[:6]}...")

    if tid:
        rc, out, err = cli_in(None, "token", "revoke", tid, *c)
        check(rc == 0 and "revoked" in out, f"token revoke: rc={rc} out={out!r} err={err!r}")
        rc, out, err = cli_in(None, "token", "list", *c)
        check("revoked 20" in out, f"token list shows it revoked: {out!r}")
    rc, out, err = cli_in(None, "token", "revoke", "tok_nope", *c)
    check(rc == 1 and "not_found" in err, f"revoking an unknown token: rc={rc} err={err!r}")

    rc, api_reply = gw.api("agent.list")
    api_text = str(api_reply)
    check(rc == 0 and "ana" in api_text and "argon2" not in api_text and "has_password" in api_text,
          f"api agent.list: {api_reply}")
    rc, tok_reply = gw.api("token.list")
    rc2, out_check, err_check = gw.cli("check", "-c", gw.config)
    rc3, out_plugins, err_plugins = gw.cli("plugins", "-c", gw.config)
    check(rc2 == 0, f"check passes: {out_check} {err_check}")

    rc, out, err = cli_in(None, "agent", "remove", "ana", *c)
    check(rc == 0 and "removed" in out, f"agent remove: rc={rc} out={out!r}")
    rc, out, err = cli_in(None, "agent", "list", *c)
    check("ana" not in out and "root" in out, f"agent list after remove: {out!r}")
    rc, out, err = cli_in(None, "agent", "remove", "ana", *c)
    check(rc == 1 and "not_found" in err, f"removing again: rc={rc} err={err!r}")

    gw.stop()
    log = gw.read_log()
    outputs = {"agent list": listing, "token list": tokens, "api agent.list": api_text, "api token.list":
               str(tok_reply), "check": out_check + err_check, "plugins": out_plugins + err_plugins, "log": log}
    for where, text in outputs.items():
        for secret in (PASSWORD, NEW_PASSWORD, "admin-password-3", token, token[4:], "$argon2id$"):
            check(secret not in text, f"{where} does not show {secret[:6]}...")
finally:
    gw.cleanup()
done()
