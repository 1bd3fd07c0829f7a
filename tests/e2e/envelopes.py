"""envelopes.py: what the channel tests read back, checked against sdk/envelope-v1.schema.json,
and the gateway log checked for the reason of every webhook answered 2xx with nothing stored."""
import json
import os

import jsonschema

from harness import SOURCE_DIR, check

with open(os.path.join(SOURCE_DIR, "sdk", "envelope-v1.schema.json")) as f:
    SCHEMA = json.load(f)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def schema_errors(env):
    """The schema's complaints about one envelope, as 'path: message' strings."""
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
            for e in VALIDATOR.iter_errors(env)]


def check_envelope(env, what="envelope"):
    """check() that env validates against the envelope schema."""
    errs = schema_errors(env)
    return check(not errs, f"{what} {env.get('external_id', env.get('id'))} does not validate: {errs}")


def check_all_stored(gw, *channels):
    """Every message stored on the channels (messages.list and message.get) validates; returns how many."""
    n = 0
    for ch in channels:
        for m in gw.list_all(ch):
            check_envelope(m, f"{ch} (messages.list)")
            rc, r = gw.api("message.get", {"id": m["id"]})
            check(rc == 0, f"message.get {m['id']}: {r}")
            if rc == 0:
                check_envelope(r.get("message", r), f"{ch} (message.get)")
            n += 1
    check(n > 0, f"something was stored on {channels}")
    return n


def log_since(gw, offset):
    """The gateway log written after byte offset (take offset = log_size(gw) before a request)."""
    with open(gw.log, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def log_size(gw):
    return os.path.getsize(gw.log)


def check_logged_why(gw, offset, *words):
    """check() that the log written since offset has a line with all of words (the reason for storing nothing)."""
    lines = log_since(gw, offset).splitlines()
    hit = [ln for ln in lines if all(w in ln for w in words)]
    return check(bool(hit), f"a log line with {words} after the request; got: {lines[-5:]}")
