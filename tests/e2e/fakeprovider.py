"""fakeprovider.py: a local HTTP server playing a provider's API for the tests.

Every request is recorded (method, path, query, headers, body).  A test
scripts answers per route: `server.script[(method, path)] = [(status, body,
headers), ...]`; the list's last answer repeats.  Unscripted routes go to
`server.default(handler)`, which a test may replace.
"""
import http.server
import json
import threading
import time
import urllib.parse


class Request:
    def __init__(self, method, path, query, headers, body):
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body
        self.at = time.time()

    def json(self):
        return json.loads(self.body)

    def form(self):
        return dict(urllib.parse.parse_qsl(self.body.decode()))


class FakeProvider:
    def __init__(self, nodelay=False):
        """nodelay: answer without Nagle's delay (headers and body are two writes: without it each answer on a
        kept-alive connection waits ~40 ms for the client's delayed ACK), for tests that need many requests a
        second; off by default, the pace the other suites were written against."""
        self.requests = []
        self.script = {}
        self.lock = threading.Lock()
        self.default = lambda req: (404, {"error": "not scripted"}, {})
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = nodelay

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                u = urllib.parse.urlsplit(self.path)
                req = Request(self.command, u.path, dict(urllib.parse.parse_qsl(u.query)), dict(self.headers), body)
                with outer.lock:
                    outer.requests.append(req)
                    plan = outer.script.get((self.command, u.path))
                    if plan:
                        answer = plan.pop(0) if len(plan) > 1 else plan[0]
                    else:
                        answer = None
                if answer is None:
                    answer = outer.default(req)
                status, data, headers = (list(answer) + [{}])[:3]
                if callable(data):
                    data = data(req)
                if isinstance(data, (dict, list)):
                    data = json.dumps(data).encode()
                    headers = {"Content-Type": "application/json", **headers}
                elif isinstance(data, str):
                    data = data.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def seen(self, method=None, path=None):
        with self.lock:
            return [r for r in self.requests if (method is None or r.method == method) and
                    (path is None or r.path == path)]

    def wait_for(self, method, path, count=1, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if len(self.seen(method, path)) >= count:
                return self.seen(method, path)
            time.sleep(0.05)
        return self.seen(method, path)

    def close(self):
        self.server.shutdown()
