"""cluster.py: several gateway nodes on one real PostgreSQL and one real nats-server, for the scale-out tests.

PostgreSQL is started with tests/servers/postgres.sh in a temporary directory, nats-server with
JetStream on a free loopback port; both can be stopped and started again on the same port (outages).
A test that finds the postgres store plugin, nats-server or PostgreSQL missing exits 77 (ctest's skip).
"""
import glob
import json
import socket
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from harness import PARLEY, SOURCE_DIR, Gateway, free_port, sign

PLUGIN_DIR = os.path.join(os.path.dirname(os.path.abspath(PARLEY)), "plugins")
PG_SH = os.path.join(SOURCE_DIR, "tests", "servers", "postgres.sh")
DUMP = os.environ.get("PARLEY_NATS_DUMP") or os.path.join(os.path.dirname(os.path.abspath(PARLEY)), "tests",
                                                            "nats_stream_dump")


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def need(nats=True):
    if not os.path.exists(os.path.join(PLUGIN_DIR, "store_postgres.so")):
        skip("the postgres store plugin is not built")
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") or not shutil.which("psql"):
        skip("PostgreSQL is not installed (scripts/deps.sh --test)")
    if nats and not shutil.which("nats-server"):
        skip("nats-server is not installed (scripts/deps.sh --test)")


class Postgres:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="parley-pg-")
        os.chmod(self.dir, 0o755)
        self.url = subprocess.run([PG_SH, "start", self.dir + "/pg"], check=True, capture_output=True,
                                  text=True).stdout.strip()

    def stop(self):
        subprocess.run([PG_SH, "stop", self.dir + "/pg"], check=True, capture_output=True)

    def resume(self):
        subprocess.run([PG_SH, "resume", self.dir + "/pg"], check=True, capture_output=True)

    def sql(self, query):
        """Rows of a query, as lists of strings."""
        out = subprocess.run(["psql", "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", self.url, "-c", query],
                             check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def close(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class Nats:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="parley-nats-")
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc = None
        self.start()

    def start(self):
        self.logf = open(os.path.join(self.dir, "nats.log"), "ab")
        self.proc = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd",
                                      os.path.join(self.dir, "js")], stdout=self.logf, stderr=self.logf)
        end = time.time() + 10
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def stream_ids(self, stream="PARLEY"):
        """(subject, Nats-Msg-Id) of every message in the stream, duplicates included."""
        out = subprocess.run([DUMP, self.url, stream], check=True, capture_output=True, text=True,
                             timeout=60).stdout
        return [tuple(line.split(" ")[1:3]) for line in out.splitlines() if line.count(" ") >= 2]

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def node(name, pg, nats=None, steps="[dedupe, identify, thread]", extra="", extra_channels=""):
    """A gateway node on the shared PostgreSQL (and NATS)."""
    bus = f'bus: {{ type: nats, config: {{ url: "{nats.url}", stream: PARLEY }} }}\n' if nats else ""
    body = f"""node: {{ name: {name} }}
storage: {{ type: postgres, config: {{ url: "{pg.url}", claim_timeout: 3s }} }}
{bus}pipelines:
  - name: inbound
    steps: {steps}
{extra}"""
    return Gateway(config_body=body, extra_channels=extra_channels)


class Sender:
    """Plays providers: each webhook is posted until a node answers 2xx (other answers and broken
    connections are retried, on the next node), as providers retry.  Records what was acknowledged."""

    def __init__(self, nodes, secret="s3cret"):
        self.nodes = nodes
        self.secret = secret
        self.acked = {}   # external id -> the node that answered 2xx last
        self.refused = 0  # non-2xx answers and failed connections (retried)
        self.lock = threading.Lock()

    def post(self, i, msg, deadline=60, both=False):
        body = json.dumps(msg).encode()
        headers = {"Content-Type": "application/json", "X-Parley-Signature": sign(self.secret, body)}
        end = time.time() + deadline
        k = i
        while time.time() < end:
            targets = self.nodes if both else [self.nodes[k % len(self.nodes)]]
            results = []

            def one(g):
                try:
                    st, _ = g.request("POST", "/webhooks/hooks", body, headers)
                except OSError:
                    st = 0
                results.append((g, st))

            threads = [threading.Thread(target=one, args=(g,)) for g in targets]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ok = [g for g, st in results if 200 <= st < 300]
            with self.lock:
                self.refused += len(results) - len(ok)
                if ok:
                    self.acked[msg["id"]] = ok[-1]
            if ok:
                return True
            k += 1
            time.sleep(0.05)
        return False

    def run(self, msgs, threads=8, both=frozenset(), stop=None):
        """Post msgs from several threads; msgs whose index is in `both` go to every node at once.
        With `stop` (a threading.Event), no new message is started once it is set."""
        it = iter(enumerate(msgs))
        lock = threading.Lock()

        def work():
            while True:
                with lock:
                    if stop is not None and stop.is_set():
                        return
                    try:
                        i, m = next(it)
                    except StopIteration:
                        return
                self.post(i, m, both=i in both)

        ts = [threading.Thread(target=work) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
