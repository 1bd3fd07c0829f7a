"""rawhttp.py: HTTP/1.1 over a raw socket, for tests that need what http.client hides:
several requests in one write (pipelining), malformed or oversized heads, half-sent
requests and many idle connections.  Standard library only.
"""
import json
import socket
import time


def connect(port, source="127.0.0.1", timeout=5.0):
    """A TCP connection to 127.0.0.1:port from the loopback address source (any 127.x.y.z)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def request(method, path, body=b"", headers=None):
    """The bytes of one request."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:120]!r}>"


class Reader:
    """Reads responses (Content-Length or chunked) off one socket, in order."""

    def __init__(self, sock):
        self.sock, self.buf, self.eof = sock, b"", False

    def _fill(self, deadline):
        if self.eof:
            return False
        self.sock.settimeout(max(0.01, deadline - time.time()))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _until(self, sep, deadline):
        while sep not in self.buf:
            if not self._fill(deadline):
                return None
        i = self.buf.index(sep)
        out, self.buf = self.buf[:i], self.buf[i + len(sep):]
        return out

    def _take(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, timeout=5.0):
        """The next response, or None when the connection closed or timed out first."""
        deadline = time.time() + timeout
        head = self._until(b"\r\n\r\n", deadline)
        if head is None:
            return None
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = self._until(b"\r\n", deadline)
                if size is None:
                    return None
                n = int(size.split(b";")[0], 16)
                chunk = self._take(n + 2, deadline)
                if chunk is None:
                    return None
                if n == 0:
                    break
                body += chunk[:-2]
        else:
            body = self._take(int(headers.get("content-length", "0")), deadline)
            if body is None:
                return None
        return Response(status, headers, body)

    def closed(self, timeout=5.0):
        """True when the peer closes the connection within timeout (data before the close is dropped)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self._fill(deadline) and self.eof:
                return True
        return self.eof


def exchange(port, data, n=1, timeout=5.0):
    """Send data in one write on a new connection and read n responses (None for each missing)."""
    s = connect(port, timeout=timeout)
    try:
        s.sendall(data)
        r = Reader(s)
        return [r.response(timeout) for _ in range(n)]
    finally:
        s.close()


def metric(text, name, label=None):
    """The value of parley_<name>{label} in a /metrics text, or 0."""
    key = f"parley_{name}{{{label}}}" if label else f"parley_{name}"
    for line in text.splitlines():
        if line.startswith(key + " "):
            return int(line.split(" ")[1])
    return 0
