"""Hostile or broken requests get the right 4xx, and every error body Parley writes is
JSON {"ok":false,"error":"..."} built by one escaping path (no injection through the
path).  Chunked bodies are accepted up to http.max_body."""
import json

from harness import Gateway, check, done, sign
from rawhttp import Reader, connect, exchange, metric, request

gw = Gateway().start()
try:
    def error_shape(resp, status, what):
        if not check(resp is not None and resp.status == status, f"{what}: answered {resp}"):
            return
        try:
            body = resp.json()
        except ValueError:
            check(False, f"{what}: the body is not JSON: {resp.body!r}")
            return
        check(isinstance(body, dict) and set(body) == {"ok", "error"} and body["ok"] is False
              and isinstance(body["error"], str), f"{what}: body {body}")
        check(resp.headers.get("content-type") == "application/json", f"{what}: {resp.headers}")
        return body

    # A quote-and-backslash channel name must not break out of the JSON string.
    evil = 'x","admin":true,"y":"\\'
    [resp] = exchange(gw.port, request("POST", f"/webhooks/{evil}", b"{}"))
    body = error_shape(resp, 404, "injection path")
    check(body is not None and "admin" not in body and evil in body["error"],
          f"the channel name is kept as text inside the error: {body}")

    error_shape(exchange(gw.port, request("POST", "/webhooks/nosuch", b"{}"))[0], 404, "unknown channel")
    error_shape(exchange(gw.port, request("GET", "/webhooks/hooks"))[0], 405, "GET on a POST-only webhook")
    error_shape(exchange(gw.port, request("POST", "/healthz", b"{}"))[0], 405, "POST /healthz")
    error_shape(exchange(gw.port, request("GET", "/nowhere"))[0], 404, "unknown path")
    big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    error_shape(exchange(gw.port, request("POST", "/webhooks/hooks", big), timeout=20)[0], 413, "over max_body")

    # An 8 KB URL: 414 (JSON, ours: http.max_url_size).
    error_shape(exchange(gw.port, request("GET", "/webhooks/hooks?" + "a" * 8192))[0], 414, "8 KB URL")

    # A head just over http.max_header_size (16 KiB): 431 with our JSON.
    error_shape(exchange(gw.port, request("GET", "/healthz", headers={"X-Big": "b" * 17_000}))[0], 431,
                "a 17 KB header")
    # Far over it, the HTTP library refuses the head itself with 431 (its own body).
    [resp] = exchange(gw.port, request("GET", "/healthz", headers={"X-Big": "b" * 100_000}))
    check(resp is not None and resp.status == 431, f"a 100 KB header: {resp}")
    many = {f"X-H{i}": "v" for i in range(2000)}
    [resp] = exchange(gw.port, request("GET", "/healthz", headers=many))
    check(resp is not None and resp.status == 431, f"2,000 headers: {resp}")
    [resp] = exchange(gw.port, b"this is not http\r\n\r\n")
    check(resp is not None and resp.status == 400, f"a garbage request line: {resp}")

    # Header names are case-insensitive: a lower-case signature header is checked the same.
    msg = json.dumps({"id": "lower-1", "from": "tel:+15550000007", "text": "hi"}).encode()
    [resp] = exchange(gw.port, request("POST", "/webhooks/hooks", msg, {"x-parley-signature": sign(gw.secret, msg),
                                                                         "content-type": "application/json"}))
    check(resp is not None and resp.status == 200, f"lower-case header names: {resp}")

    # A chunked body is decoded and accepted.
    msg = json.dumps({"id": "chunked-1", "from": "tel:+15550000007", "text": "in chunks"}).encode()
    head = (f"POST /webhooks/hooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-Parley-Signature: {sign(gw.secret, msg)}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(msg[i:i + 10]), msg[i:i + 10]) for i in range(0, len(msg), 10))
    [resp] = exchange(gw.port, head + chunks + b"0\r\n\r\n")
    check(resp is not None and resp.status == 200, f"a chunked webhook: {resp}")
    stored = {m["external_id"] for m in gw.list_all("hooks")}
    check(stored == {"lower-1", "chunked-1"}, f"stored: {stored}")

    # A chunked body over max_body: 413, and the connection still answers what follows.
    s = connect(gw.port, timeout=20)
    chunk = b" " * 65536
    s.sendall(b"POST /webhooks/hooks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
              (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 20 + b"0\r\n\r\n" + request("GET", "/healthz"))
    r = Reader(s)
    first, second = r.response(20), r.response(20)
    error_shape(first, 413, "chunked over max_body")
    check(second is not None and second.status == 200, f"the request after it: {second}")
    s.close()

    [resp] = exchange(gw.port, request("GET", "/metrics"))
    text = resp.body.decode()
    for reason, least in (("uri_too_long", 1), ("headers_too_large", 2), ("bad_request", 1), ("body_too_large", 2)):
        got = metric(text, "http_refused_total", f'reason="{reason}"')
        check(got >= least, f"parley_http_refused_total{{reason=\"{reason}\"}} is {got}, expected >= {least}")
    for code in ("404", "405", "413", "414", "431", "400"):
        check(metric(text, "http_responses_total", f'code="{code}"') >= 1, f"http_responses_total counts {code}")
finally:
    gw.cleanup()
done()
