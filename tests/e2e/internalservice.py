"""internalservice.py: a local TCP service playing something internal (a metadata
endpoint, an admin port) that forged media references try to reach.

It records every connection it accepts and what came over it: the raw bytes
and, when they look like HTTP, the request path and headers.  It answers
HTTP with 200 and a body, and anything else (gopher, TLS hellos) by closing.
A test asserts that `hits()` stays empty.
"""
import socketserver
import threading
import time


class Hit:
    def __init__(self, raw):
        self.raw = raw
        self.path, self.headers = None, {}
        head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        parts = head[0].split(" ")
        if len(parts) == 3 and parts[2].startswith("HTTP/"):
            self.path = parts[1]
            for line in head[1:]:
                k, _, v = line.partition(":")
                self.headers[k.strip().lower()] = v.strip()

    def __repr__(self):
        return f"Hit(path={self.path!r}, headers={self.headers!r}, raw={self.raw[:80]!r})"


class InternalService:
    def __init__(self):
        self._hits = []
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = self.request.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                hit = Hit(data)
                with outer.lock:
                    outer._hits.append(hit)
                if hit.path is not None:
                    body = b"internal secret"
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hits(self):
        with self.lock:
            return list(self._hits)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def metric(gw, name, channel):
    """The value of parley_<name>{channel="<channel>"} on the gateway's /metrics, 0 when absent."""
    st, body = gw.request("GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(f"parley_{name}{{") and f'channel="{channel}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0


def wait_metric(gw, name, channel, want, timeout=10):
    """Wait until the counter reaches want; its last value."""
    end = time.time() + timeout
    while True:
        v = metric(gw, name, channel)
        if v >= want or time.time() > end:
            return v
        time.sleep(0.1)
