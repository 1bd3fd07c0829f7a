"""The agent inbox's files under /inbox/: GET and HEAD only, the right types, a strict
Content-Security-Policy on every answer, and nothing outside the directory, encoded or not."""
import http.client
import os

from harness import Gateway, check, done

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "core", "web", "inbox")
gw = Gateway().start()


def fetch(method, path):
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    c.putrequest(method, path, skip_accept_encoding=True)  # the path is sent as written
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


try:
    for path, ctype, name in (("/inbox/", "text/html; charset=utf-8", "index.html"),
                              ("/inbox/index.html", "text/html; charset=utf-8", "index.html"),
                              ("/inbox/app.js", "text/javascript; charset=utf-8", "app.js"),
                              ("/inbox/api.js", "text/javascript; charset=utf-8", "api.js"),
                              ("/inbox/style.css", "text/css; charset=utf-8", "style.css")):
        st, h, body = fetch("GET", path)
        with open(os.path.join(SRC, name), "rb") as f:
            want = f.read()
        check(st == 200 and h.get("content-type") == ctype and body == want, f"{path}: {st} {h.get('content-type')}")
        csp = h.get("content-security-policy", "")
        check("default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
              and "frame-ancestors 'none'" in csp, f"{path}: a strict CSP: {csp}")
        check(h.get("x-content-type-options") == "nosniff" and h.get("x-frame-options") == "DENY",
              f"{path}: nosniff and DENY: {h}")
        check(h.get("cache-control") == "no-cache", f"{path}: revalidated: {h.get('cache-control')}")
    # The page runs no inline script: every <script> names a file.
    st, h, body = fetch("GET", "/inbox/")
    check(b"<script>" not in body and b'<script type="module" src="app.js">' in body, "no inline script")

    # Revalidation: the same Last-Modified back is answered 304 without a body.
    st, h, _ = fetch("GET", "/inbox/app.js")
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    c.request("GET", "/inbox/app.js", headers={"If-Modified-Since": h.get("last-modified", "")})
    r = c.getresponse()
    check(h.get("last-modified") and r.status == 304 and r.read() == b"", f"revalidated: {r.status} {h.get('last-modified')}")
    c.close()

    st, h, body = fetch("HEAD", "/inbox/app.js")
    check(st == 200 and body == b"" and h.get("content-type", "").startswith("text/javascript"), f"HEAD: {st} {h}")
    st, h, _ = fetch("GET", "/inbox")
    check(st == 301 and h.get("location") == "/inbox/", f"/inbox redirects: {st} {h.get('location')}")
    for method in ("POST", "PUT", "DELETE"):
        st, _, _ = fetch(method, "/inbox/app.js")
        check(st == 405, f"{method}: {st}")

    # Nothing outside the directory, nor hidden, nor encoded; unknown files are 404.
    for path in ("/inbox/../README.md", "/inbox/../../CMakeLists.txt", "/inbox/%2e%2e/README.md",
                 "/inbox/%2E%2E%2FREADME.md", "/inbox/..%2fREADME.md", "/inbox/.%2e/README.md",
                 "/inbox//etc/passwd", "/inbox/.hidden.js", "/inbox/app.js%00.css", "/inbox/nope.js",
                 "/inbox/app", "/inbox/sub/", "/inbox/%61pp.js", "/inbox/..", "/inbox/."):
        st, h, body = fetch("GET", path)
        check(st == 404 and b"Usage" not in body and b"project(" not in body, f"{path}: {st} {body[:60]!r}")
        check("default-src 'self'" in h.get("content-security-policy", ""), f"{path}: the refusal has the CSP too")
finally:
    gw.stop()
done()
