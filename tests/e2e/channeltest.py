"""channeltest.py: what the LINE and Viber channel tests share: the gateway's outbox and inbound
pipeline (dedupe, identify, thread), finding a stored message by its external id, the table of
fixtures with what each must store, and waiting for an attachment to be fetched."""
import time

from harness import check

# Quick retries, and every inbound message identified and threaded into a conversation.
PIPELINE = """outbox:
  backoff_base: 100ms
  max_attempts: 4
pipelines:
  - name: inbound
    steps:
      - dedupe: {}
      - identify: {}
      - thread: {}
"""


def finder(gw, channel):
    """by_ext(external_id): the message stored on channel under that id, or None."""
    return lambda ext: {m.get("external_id"): m for m in gw.list_all(channel)}.get(ext)


def check_cases(post, body_of, by_ext, cases):
    """Post body_of(name) for each (name, external id, test) and check() it is answered 200 and stored
    under the external id as test(message) wants."""
    for name, ext, test in cases:
        st, _ = post(body_of(name))
        m = by_ext(ext)
        try:
            good = st == 200 and m is not None and test(m)
        except (KeyError, IndexError, TypeError):
            good = False
        check(good, f"{name}: {st} {m}")


def fetched(by_ext, ext, timeout=10):
    """The first attachment of the message stored under ext, once it has a sha256 (or time runs out)."""
    end = time.time() + timeout
    while True:
        att = (by_ext(ext) or {}).get("attachments", [{}])[0]
        if att.get("sha256") or time.time() > end:
            return att
        time.sleep(0.1)


def sender(gw, channel, to):
    """send(text, **fields): queue a message.send on channel to `to`; its id."""
    def send(text=None, **extra):
        req = {"channel": channel, "to": to, **extra}
        if text is not None:
            req["text"] = text
        rc, r = gw.api("message.send", req)
        check(rc == 0, f"message.send queued: {r}")
        return r.get("id")
    return send
