"""Pipelining: requests sent back to back in one write are each answered, in order, on
/healthz, /metrics and webhooks; signed webhooks sent that way are all stored."""
import json

from harness import Gateway, check, done, sign
from rawhttp import Reader, connect, request

gw = Gateway().start()
try:
    healthz = request("GET", "/healthz")
    for n in (2, 3):
        s = connect(gw.port)
        s.sendall(healthz * n)
        r = Reader(s)
        got = [r.response() for _ in range(n)]
        check(all(x is not None and x.status == 200 and x.json()["status"] == "ok" for x in got),
              f"{n} pipelined GET /healthz in one write: {got}")
        # The connection is still usable afterwards.
        s.sendall(healthz)
        after = r.response()
        check(after is not None and after.status == 200, f"a request after {n} pipelined ones: {after}")
        s.close()

    s = connect(gw.port)
    s.sendall(request("GET", "/metrics") * 2)
    r = Reader(s)
    got = [r.response() for _ in range(2)]
    check(all(x is not None and x.status == 200 and b"parley_http_responses_total" in x.body for x in got),
          f"2 pipelined GET /metrics: {got}")
    s.close()

    def signed(ext):
        body = json.dumps({"id": ext, "from": "tel:+15550000042", "text": f"pipelined {ext}"}).encode()
        return request("POST", "/webhooks/hooks", body,
                       {"Content-Type": "application/json", "X-Parley-Signature": sign(gw.secret, body)})

    # Two signed webhooks, then a health check, in one write: answers in that order.
    s = connect(gw.port)
    s.sendall(signed("pipe-1") + signed("pipe-2") + healthz)
    r = Reader(s)
    got = [r.response() for _ in range(3)]
    check(got[0] is not None and got[0].status == 200 and got[0].json().get("ok") is True,
          f"first pipelined webhook: {got[0]}")
    check(got[1] is not None and got[1].status == 200 and got[1].json().get("ok") is True,
          f"second pipelined webhook: {got[1]}")
    check(got[2] is not None and got[2].status == 200 and "status" in got[2].json(),
          f"the health check after them comes third: {got[2]}")
    s.close()
    ids = [x.json()["ids"][0] for x in got[:2] if x is not None and x.status == 200]
    stored = {m["external_id"]: m["id"] for m in gw.list_all("hooks")}
    check(set(stored) == {"pipe-1", "pipe-2"}, f"both pipelined webhooks are stored: {sorted(stored)}")
    check(ids == [stored.get("pipe-1"), stored.get("pipe-2")], f"answers are in request order: {ids} {stored}")

    # An error answer in the middle does not derail the rest.
    s = connect(gw.port)
    s.sendall(request("POST", "/webhooks/nosuch", b"{}") + signed("pipe-3") + healthz)
    r = Reader(s)
    got = [r.response() for _ in range(3)]
    check([x.status if x else None for x in got] == [404, 200, 200], f"404, 200, 200 in order: {got}")
    s.close()
finally:
    gw.cleanup()
done()
