"""Nothing is left open by accident: a control socket other machines can reach needs a token,
a publish socket other machines can reach must be allowed on purpose, channels without a
signature secret must say insecure: true, and the database, its -wal/-shm and the ipc sockets
are the gateway user's alone whatever the umask or an existing data_dir says."""
import json
import os
import stat
import subprocess
import tempfile

from harness import PARLEY, Gateway, check, done, free_port


def check_config(text):
    d = tempfile.mkdtemp(prefix="parley-exposure-")
    path = os.path.join(d, "parley.yaml")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([PARLEY, "check", "-c", path], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr, path


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


base = "channels:\n  - name: hooks\n    type: webhook\n    config: { secret: s3cret }\n"

# A tcp control socket on every interface: refused without a token, at its line and column.
rc, out, path = check_config(base + "control:\n  listen: tcp://0.0.0.0:7010\n")
check(rc != 0 and f"{path}:6:11:" in out and "control.token" in out, f"remote control.listen needs a token: {out}")
rc, out, _ = check_config(base + "control:\n  listen: tcp://[::]:7010\n")
check(rc != 0 and "control.token" in out, f"an IPv6 wildcard counts as remote too: {out}")
rc, out, _ = check_config(base + "control:\n  listen: tcp://127.0.0.1:7010\n")
check(rc == 0, f"loopback tcp needs no token: {out}")
rc, out, _ = check_config(base + "control:\n  listen: tcp://0.0.0.0:7010\n  token: short\n")
check(rc != 0 and "at least 16" in out, f"a guessable token is refused: {out}")
for url in ("TCP://0.0.0.0:7010", "ws4://0.0.0.0:7010/c", "wss6://[::]:7010/c", "tls+tcp4://0.0.0.0:7010",
            "abstract://parley-control"):
    rc, out, _ = check_config(base + f"control:\n  listen: {url}\n")
    check(rc != 0 and "control.token" in out, f"{url} counts as reachable by others: {out}")
rc, out, _ = check_config(base + "publish:\n  listen: tcp://0.0.0.0:7011\n")
check(rc != 0 and "publish.listen" in out and "allow_remote" in out, f"remote publish.listen is refused: {out}")
rc, out, _ = check_config(base + "publish:\n  listen: tcp://0.0.0.0:7011\n  allow_remote: true\n")
check(rc == 0, f"publish.allow_remote: true allows it: {out}")

# Channels that would take anything from anyone.
rc, out, path = check_config("channels:\n  - name: open\n    type: webhook\n    config: {}\n")
check(rc != 0 and f"{path}:" in out and "insecure: true" in out and "'secret'" in out,
      f"a webhook channel without a secret is refused: {out}")
rc, out, _ = check_config("channels:\n  - name: tg\n    type: telegram\n    config: { token: \"1:a\" }\n")
check(rc != 0 and "secret_token" in out and "insecure: true" in out, f"telegram without secret_token refused: {out}")
rc, out, _ = check_config("channels:\n  - name: tg\n    type: telegram\n    config: { token: \"1:a\", mode: poll }\n")
check(rc == 0, f"telegram in poll mode needs no secret_token: {out}")
rc, out, _ = check_config("channels:\n  - name: tg\n    type: telegram\n    config: { token: \"1:a\", insecure: true }\n")
check(rc == 0, f"insecure: true accepts it: {out}")

# A gateway with a remote control socket and a token; an open webhook channel chosen on purpose.
old_umask = os.umask(0)
cport = free_port()
token = "0123456789abcdef0123"
gw = Gateway(config_body=f"control:\n  listen: tcp://0.0.0.0:{cport}\n  token: {token}\n",
             extra_channels="  - name: open\n    type: webhook\n    config: { insecure: true }\n")
data = os.path.join(gw.dir, "var")
os.makedirs(data, mode=0o777)
os.chmod(data, 0o777)
with open(os.path.join(data, "parley.db"), "wb"):
    pass
os.chmod(os.path.join(data, "parley.db"), 0o666)
try:
    gw.start()
    os.umask(old_umask)
    st, _ = gw.request("POST", "/webhooks/open", b'{"id":"o1","from":"x","text":"hi"}', {"Content-Type": "application/json"})
    check(st == 200, f"insecure: true takes unsigned posts: {st}")
    check("INSECURE" in gw.read_log(), "an insecure channel is logged loudly")
    rc, r = gw.api("health")
    check(rc == 0 and r.get("ok"), f"the CLI sends the config's token: {r}")
    # Another client that does not know the token.
    other = os.path.join(gw.dir, "other.yaml")
    with open(other, "w") as f:
        f.write(f"control:\n  listen: tcp://127.0.0.1:{cport}\n")
    r = subprocess.run([PARLEY, "api", "-c", other, "contacts.merge", json.dumps({"from": "a", "into": "b"})],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode != 0 and "unauthorized" in r.stdout, f"a request without the token is refused: {r.stdout}")
    r = subprocess.run([PARLEY, "api", "-c", other, "health", json.dumps({"token": "x" * 20})],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode != 0 and "unauthorized" in r.stdout, f"a wrong token is refused: {r.stdout}")
    r = subprocess.run([PARLEY, "api", "-c", other, "health", json.dumps({"token": token})],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"the right token is taken: {r.stdout}")

    # The control parser reads the request exactly as the check does: a form feed (whitespace to
    # cJSON) does not smuggle a \u0000 past it.
    req = os.path.join(gw.dir, "req.json")
    with open(req, "wb") as f:
        f.write(b'{"op":"message.send",\x0c"channel":"hooks","to":"webhook:bob","text":"pay 100\\u0000 (not really)",'
                b'"token":"' + token.encode() + b'"}')
    out = subprocess.run(["nngcat", "--req", "--dial", f"tcp://127.0.0.1:{cport}", "--file", req, "--ascii"],
                         capture_output=True, timeout=10).stdout.decode(errors="replace")
    check('"ok":false' in out and "invalid_request" in out, f"a request the check cannot read is refused: {out[:200]}")

    # Files: the gateway user's alone, though the umask was 0 and data_dir and the database were open.
    check(mode(data) & 0o077 == 0, f"data_dir mode {oct(mode(data))}")
    for name in ("parley.db", "parley.db-wal", "parley.db-shm", "events.ipc"):
        p = os.path.join(data, name)
        check(os.path.exists(p) and mode(p) & 0o077 == 0, f"{name} mode {oct(mode(p)) if os.path.exists(p) else 'missing'}")
finally:
    os.umask(old_umask)
    gw.cleanup()
done()
