"""Acceptance: signed webhooks are stored once, published, listed after a restart;
bad signature 401, malformed 400, oversized 413, unknown channel 404."""
import json
import os
import subprocess

from envelopes import check_all_stored
from harness import Gateway, check, done, fixture
from subscribers import subscribe


def unquote(line):
    """nngcat --quoted prints each message as a C string literal on its own line."""
    return line.strip()[1:-1].encode("latin-1").decode("unicode_escape").encode("latin-1").decode("utf-8")


gw = Gateway().start()
try:
    # A subscriber on the real PUB socket, with nng's own command-line client.
    pub = f"ipc://{gw.dir}/var/events.ipc"
    # PUB/SUB delivers only to connected subscribers: subscribe() returns once the gateway accepted it.
    sub = subscribe(["nngcat", "--sub", "--dial", pub, "--subscribe", "message.inbound.", "--quoted",
                     "--recv-timeout", "5"], gw, stderr=subprocess.PIPE)

    statuses = []
    for i in range(50):
        st, body = gw.post_message({"id": f"msg-{i}", "from": "tel:+15550000001", "text": f"hello {i}",
                                    "sent_at": "2026-11-22T10:00:00.000Z"})
        statuses.append(st)
    check(all(200 <= s < 300 for s in statuses), f"50 signed POSTs answered 2xx: {statuses}")

    # A redelivery of the same id: 2xx, stored once.
    st, _ = gw.post_message({"id": "msg-7", "from": "tel:+15550000001", "text": "hello 7"})
    check(st == 200, f"re-POST of an id answered {st}")

    # Bad signature: 401 and nothing stored.
    st, body = gw.post_message({"id": "evil-1", "from": "x", "text": "nope"}, secret="wrong")
    check(st == 401, f"bad signature answered {st}")
    st, _ = gw.request("POST", "/webhooks/hooks", json.dumps({"id": "evil-2", "from": "x", "text": "n"}).encode(),
                       {"Content-Type": "application/json"})
    check(st == 401, f"missing signature answered {st}")

    # Malformed JSON (correctly signed): 400 with a reason.
    st, body = gw.post_message(None, raw=b'{"id": "m", "from": ')
    check(st == 400 and b"not valid JSON" in body, f"malformed JSON answered {st} {body!r}")
    st, body = gw.post_message({"from": "x", "text": "no id"})
    check(st == 400 and b"'id' is required" in body, f"missing id answered {st} {body!r}")

    # Over max_body (1 MiB default): 413.
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    st, body = gw.post_message(None, raw=big)
    check(st == 413, f"2 MiB body answered {st}")

    # Unknown channel: 404.
    st, body = gw.post_message({"id": "x", "from": "y", "text": "z"}, channel="nosuch")
    check(st == 404 and b"unknown channel 'nosuch'" in body, f"unknown channel answered {st} {body!r}")

    # Subscriber: exactly the 50 envelopes, with their topic and v1 fields.
    out, err = sub.communicate(timeout=40)
    lines = [unquote(l) for l in out.decode().splitlines() if l.strip()]
    check(len(lines) == 50, f"subscriber got {len(lines)} envelopes, expected 50 ({err[-300:]!r})")
    seen = set()
    for line in lines:
        topic, _, js = line.partition(" ")
        check(topic == "message.inbound.webhook.hooks", f"topic {topic}")
        env = json.loads(js)
        for field in ("v", "id", "kind", "direction", "channel", "channel_type", "external_id", "from",
                      "text", "sent_at", "received_at"):
            check(field in env, f"envelope has {field}: {env}")
        check(env["v"] == 1 and env["kind"] == "message" and env["direction"] == "inbound", f"{env}")
        check(env["channel"] == "hooks" and env["channel_type"] == "webhook", f"{env}")
        check(env["from"] == "tel:+15550000001", f"from {env['from']}")
        check(len(env["id"]) == 26, f"id {env['id']} is a ULID")
        seen.add(env["external_id"])
    check(seen == {f"msg-{i}" for i in range(50)}, "the subscriber saw each external id once")

    msgs = gw.list_all("hooks")
    check(len(msgs) == 50, f"messages.list returned {len(msgs)}, expected 50")
    check({m["external_id"] for m in msgs} == {f"msg-{i}" for i in range(50)}, "stored ids are the 50")

    # After a restart, the same 50.
    check(gw.stop() == 0, "gateway exits 0 on SIGTERM")
    gw.start()
    msgs = gw.list_all("hooks")
    check(len(msgs) == 50, f"after restart messages.list returned {len(msgs)}")
    rc, one = gw.api("message.get", {"id": msgs[3]["id"]})
    check(rc == 0 and one["message"]["text"] == msgs[3]["text"], f"message.get: {one}")
    rc, missing = gw.api("message.get", {"id": "nope"})
    check(rc != 0 and missing["error"]["code"] == "not_found", f"message.get of an unknown id: {missing}")

    st, metrics = gw.request("GET", "/metrics")
    check(st == 200 and b"parley_envelopes_stored_total" in metrics, "metrics are served")

    # Fidelity (issue 12): addresses are URNs or the integrator's own ids; anything else is 400, not stored.
    st, _ = gw.post_message(None, raw=fixture("webhook", "bare_ids.json"))
    m = {m["external_id"]: m for m in gw.list_all("hooks")}.get("crm-1001")
    check(st == 200 and m and m["from"] == "webhook:customer-42" and m["to"] == "webhook:support-desk",
          f"bare ids become webhook: URNs: {m}")
    for name, word in (("from_not_urn", b"'from' and 'to'"), ("to_not_urn", b"'from' and 'to'"),
                       ("sent_at_not_time", b"'sent_at'")):
        n0 = len(gw.list_all("hooks"))
        st, body = gw.post_message(None, raw=fixture("webhook", name + ".json"))
        check(st == 400 and word in body and len(gw.list_all("hooks")) == n0, f"{name}: 400, nothing stored: {st} {body!r}")
    check_all_stored(gw, "hooks")
finally:
    gw.cleanup()
done()
