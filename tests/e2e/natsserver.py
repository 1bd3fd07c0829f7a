"""natsserver.py: a real NATS server with JetStream on 127.0.0.1 (nats-server -js), with its
store in a throwaway directory, that a test can stop and start again on the same port and store;
and what a stream holds, read back with tests/bus/nats_stream_dump."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

from ports import free_port  # noqa: F401 (tests import it from here)

DUMP = os.environ.get("PARLEY_NATS_DUMP", "build/tests/nats_stream_dump")


class NatsServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="parley-nats-")
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.log = os.path.join(self.dir, "nats.log")
        self.proc = None

    def start(self, timeout=15):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                      "-sd", os.path.join(self.dir, "store")], stdout=logf, stderr=logf)
        logf.close()
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("nats-server exited:\n" + self.read_log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not listen:\n" + self.read_log())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def read_log(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def dump(self, stream):
        """[(seq, subject, msg_id)] of every message the stream holds, and the header line's fields."""
        r = subprocess.run([DUMP, self.url, stream], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"nats_stream_dump failed: {r.stderr}")
        lines = r.stdout.splitlines()
        head = lines[0].split()
        info = {head[i]: int(head[i + 1]) for i in range(1, len(head) - 1, 2)}
        rows = []
        for line in lines[1:]:
            seq, subject, mid = line.split(" ")
            rows.append((int(seq), subject, mid))
        return rows, info
