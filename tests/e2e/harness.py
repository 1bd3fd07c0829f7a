"""harness.py: start the real parley gateway on loopback for end-to-end tests.

Standard library only.  Each test gets a temporary directory with its own
config, SQLite file and ipc:// sockets, and free TCP ports.
"""
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

from ports import free_port  # noqa: F401 (tests import it from here)

PARLEY = os.environ.get("PARLEY_BIN", "build/parley")
BAD_PLUGINS = os.environ.get("PARLEY_BAD_PLUGINS", "")
SOURCE_DIR = os.environ.get("PARLEY_SOURCE_DIR", ".")

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)
    return cond


def done():
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def fixture(*parts):
    """The text of tests/fixtures/<parts...>."""
    with open(os.path.join(SOURCE_DIR, "tests", "fixtures", *parts), "rb") as f:
        return f.read()


def sign(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_envelope_validator = None


def envelope_validator():
    """A validator of sdk/envelope-v1.schema.json that also refuses top-level names the schema does not list."""
    global _envelope_validator
    if _envelope_validator is None:
        try:
            import jsonschema
        except ImportError:
            check(False, "Python's jsonschema is missing (scripts/deps.sh --test installs python3-jsonschema): "
                         "stored envelopes cannot be checked")
            return None
        with open(os.path.join(SOURCE_DIR, "sdk", "envelope-v1.schema.json")) as f:
            schema = json.load(f)
        # The host refuses fields the schema does not name (envelope_check.c); stored envelopes must show it.
        schema["additionalProperties"] = False
        _envelope_validator = jsonschema.Draft202012Validator(schema)
    return _envelope_validator


def stored_envelope_errors(db_path):
    """(id, 'path: message') for every envelope in a SQLite store's messages table that breaks the schema."""
    v = envelope_validator()
    if v is None:
        return []
    try:
        con = sqlite3.connect(db_path, timeout=10)
    except sqlite3.Error:
        return []
    out = []
    try:
        try:
            rows = con.execute("SELECT id, envelope FROM messages").fetchall()
        except sqlite3.Error:
            return []  # not a Parley store, or one that never got its tables
        for mid, text in rows:
            try:
                env = json.loads(text)
            except ValueError as e:
                out.append((mid, f"(top): not JSON: {e}"))
                continue
            for e in v.iter_errors(env):
                out.append((mid, f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"))
    finally:
        con.close()
    return out


class Gateway:
    """A parley gateway on a temporary directory and free ports."""

    def __init__(self, config_body="", secret="s3cret", extra_channels="", http_extra=""):
        self.dir = tempfile.mkdtemp(prefix="parley-e2e-")
        self.port = free_port()
        self.secret = secret
        self.config = os.path.join(self.dir, "parley.yaml")
        text = f"""data_dir: var
http:
  listen: 127.0.0.1:{self.port}
{http_extra}channels:
  - name: hooks
    type: webhook
    config:
      secret: "{secret}"
{extra_channels}{config_body}"""
        with open(self.config, "w") as f:
            f.write(text)
        self.proc = None
        self.log = os.path.join(self.dir, "gateway.log")
        self.ssl_context = None  # set for a gateway with http.tls: requests go over HTTPS

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([PARLEY, "run", "-c", self.config], stdout=self.logf, stderr=self.logf)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("gateway exited early:\n" + self.read_log())
            try:
                st, _ = self.request("GET", "/ready")
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("gateway did not become healthy:\n" + self.read_log())

    def read_log(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def check_stored_envelopes(self):
        """check() that every envelope this gateway's SQLite store holds validates against the envelope schema."""
        n = 0
        for root, _, files in os.walk(self.dir):
            for f in files:
                if f.endswith(".db"):
                    for mid, err in stored_envelope_errors(os.path.join(root, f)):
                        n += 1
                        if n <= 10:
                            check(False, f"stored envelope {mid} in {f} breaks sdk/envelope-v1.schema.json: {err}")
        return n

    def check_served_envelopes(self):
        """check() that every message messages.list serves (the stored envelope with its outbox state) validates."""
        v = envelope_validator()
        after, n = None, 0
        while v is not None and self.proc and self.proc.poll() is None:
            req = {"limit": 1000, **({"after_id": after} if after else {})}
            rc, r = self.api("messages.list", req)
            if rc != 0:
                return  # a test that locked its control socket down, or a store without messages.list
            for env in r.get("messages", []):
                for e in v.iter_errors(env):
                    n += 1
                    if n <= 10:
                        check(False, f"served envelope {env.get('id')} breaks sdk/envelope-v1.schema.json: "
                                     f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}")
            after = r.get("next_after_id")
            if not after:
                return

    def cleanup(self):
        died = self.proc is not None and self.proc.poll() is not None and self.proc.returncode != 0
        # Issue 17: whatever a test did, nothing the gateway stored or serves may break the envelope schema.
        if not died:
            self.check_served_envelopes()
        rc = self.stop()
        self.check_stored_envelopes()
        if failures or died or (rc not in (0, None)):
            print(f"--- gateway log (exit {self.proc.returncode if self.proc else None}), last lines ---",
                  file=sys.stderr)
            print("\n".join(self.read_log().splitlines()[-40:]), file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)

    def connection(self, timeout=30):
        """An HTTP connection to the gateway, HTTPS with ssl_context when it is set."""
        if self.ssl_context:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.ssl_context)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        c = conn or self.connection()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, data
        finally:
            if conn is None:
                c.close()

    def post_message(self, msg, channel="hooks", secret=None, conn=None, raw=None):
        body = raw if raw is not None else json.dumps(msg).encode()
        headers = {"Content-Type": "application/json",
                   "X-Parley-Signature": sign(secret or self.secret, body)}
        return self.request("POST", f"/webhooks/{channel}", body, headers, conn)

    def cli(self, *args, timeout=30):
        r = subprocess.run([PARLEY, *args], capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr

    def api(self, op, obj=None):
        rc, out, err = self.cli("api", "-c", self.config, op, json.dumps(obj or {}))
        try:
            return rc, json.loads(out)
        except ValueError:
            return rc, {"raw": out, "stderr": err}

    def wait_message(self, mid, want_status, timeout=10):
        """message.get until its status is want_status (or time runs out); the last answer."""
        end = time.time() + timeout
        while True:
            rc, r = self.api("message.get", {"id": mid})
            m = r.get("message", r)
            if (rc == 0 and m.get("status") == want_status) or time.time() > end:
                return m
            time.sleep(0.1)

    def list_all(self, channel):
        """Every stored message of channel, following next_after_id pages."""
        out, after = [], None
        while True:
            req = {"channel": channel, "limit": 1000}
            if after:
                req["after_id"] = after
            rc, r = self.api("messages.list", req)
            if rc != 0:
                raise RuntimeError(f"messages.list failed: {r}")
            out += r["messages"]
            after = r.get("next_after_id")
            if not after:
                return out
