"""Subscribers to a gateway's events in tests (`parley tail`, nngcat, examples/subscriber).

PUB/SUB delivers only to subscribers already connected, and a subscriber process started just
before a test's first webhook may connect after it on a loaded machine; and what it prints
arrives a moment after the op that published it.  Instead of fixed sleeps:
subscribe() starts the subscriber and returns once the gateway has accepted its connection
(the accepted socket shows in /proc/net/unix under the gateway's events.ipc path);
read_until() reads what it prints until the test's condition holds (or time runs out), then
stops it and returns everything it printed.  EarlySubscriber is for what a gateway publishes
right at its start: the test's own SUB socket, connected before the gateway has finished starting.
"""
import os
import select
import socket
import subprocess
import threading
import time

from harness import check


def events_path(gw):
    """The path of gw's ipc:// PUB socket (data_dir var, as harness.Gateway writes it)."""
    return os.path.realpath(os.path.join(gw.dir, "var", "events.ipc"))


def accepted(path):
    """How many connections are accepted on the unix socket at path (state SS_CONNECTED)."""
    n = 0
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and fields[5] == "03" and fields[7] == path:
                n += 1
    return n


def subscribe(argv, gw, timeout=15, **popen):
    """Popen(argv) with stdout piped, once the running gateway gw has accepted its connection (or a failed
    check).  Start the subscriber after the gateway: one started before it connects only when its
    dialer's backoff lets it try again, which can be well after what the gateway publishes at once."""
    path = events_path(gw)
    before = accepted(path)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, **popen)
    end = time.time() + timeout
    while accepted(path) <= before:
        if proc.poll() is not None or time.time() > end:
            check(False, f"{argv[0]} did not connect to {path} within {timeout} s (exit {proc.poll()})")
            break
        time.sleep(0.02)
    return proc


def read_until(proc, cond, timeout=15):
    """What proc printed (text), read until cond(the lines complete so far) holds or timeout passes;
    proc is stopped."""
    fd = proc.stdout.fileno()
    out = b""
    end = time.time() + timeout
    eof = False
    while not eof and not cond(out[:out.rfind(b"\n") + 1].decode(errors="replace")) and time.time() < end:
        readable, _, _ = select.select([fd], [], [], 0.1)
        if readable:
            chunk = os.read(fd, 65536)
            eof = not chunk
            out += chunk
    if proc.poll() is None:
        proc.terminate()
    end = time.time() + 10
    while not eof:
        if not select.select([fd], [], [], 0.5)[0]:
            if time.time() > end:
                proc.kill()
            continue
        chunk = os.read(fd, 65536)
        eof = not chunk
        out += chunk
    proc.wait(timeout=10)
    proc.stdout.close()
    return out.decode(errors="replace")


class EarlySubscriber:
    """A SUB socket of the test's own on gw's ipc:// PUB socket (the SP protocol over IPC, nng's wire
    format), for what the gateway publishes right at its start: created before gw.start(), it connects
    within a few milliseconds of the bind, where a subscriber process connects only when its dialer's
    backoff lets it try again.  Keeps each message (topic SP JSON) whose topic starts with prefix."""

    def __init__(self, gw, prefix=""):
        self.path, self.prefix = events_path(gw), prefix.encode()
        self.messages, self.lock = [], threading.Lock()
        self.connected, self.stopping = threading.Event(), threading.Event()
        self.sock = None
        threading.Thread(target=self._run, daemon=True).start()

    def _connect(self):
        end = time.time() + 30
        while not self.stopping.is_set() and time.time() < end:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(self.path)
                return s
            except OSError:
                s.close()
                time.sleep(0.005)
        return None

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _run(self):
        self.sock = self._connect()
        if self.sock is None:
            return
        try:
            self.sock.sendall(b"\x00SP\x00\x00\x21\x00\x00")  # SP header: protocol sub0 (0x21)
            if self._read(8)[4:6] != b"\x00\x20":  # the gateway's: pub0 (0x20)
                return
            self.connected.set()
            while True:
                head = self._read(9)  # message type 1, then the length (64 bits, big-endian)
                body = self._read(int.from_bytes(head[1:], "big"))
                if body.startswith(self.prefix):
                    with self.lock:
                        self.messages.append(body.decode(errors="replace"))
        except (OSError, EOFError):
            return

    def wait(self, cond, timeout=15):
        """The messages kept (one a line), once cond(them) holds or timeout passes; the socket is closed."""
        end = time.time() + timeout
        while time.time() < end and not cond(self.text()):
            time.sleep(0.02)
        self.stopping.set()
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        return self.text()

    def text(self):
        with self.lock:
            return "".join(m + "\n" for m in self.messages)
