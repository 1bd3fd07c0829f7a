"""Subscribers to a gateway's events in tests (`parley tail`, nngcat, examples/subscriber).

PUB/SUB delivers only to subscribers already connected, and a subscriber process started just
before a test's first webhook may connect after it on a loaded machine; and what it prints
arrives a moment after the op that published it.  Instead of fixed sleeps:
subscribe() starts the subscriber and returns once the gateway has accepted its connection
(the accepted socket shows in /proc/net/unix under the gateway's events.ipc path);
read_until() reads what it prints until the test's condition holds (or time runs out), then
stops it and returns everything it printed.
"""
import os
import select
import subprocess
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
