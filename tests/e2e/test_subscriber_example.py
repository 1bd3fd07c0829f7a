"""examples/subscriber.c, built with the project, prints what the gateway publishes."""
import os

from harness import Gateway, check, done
from subscribers import read_until, subscribe

gw = Gateway().start()
try:
    sub = subscribe([os.environ["PARLEY_SUBSCRIBER"], f"ipc://{gw.dir}/var/events.ipc", "message."], gw)
    st, _ = gw.post_message({"id": "e1", "from": "tel:+4930123", "text": "Grüße"})
    check(st == 200, "posted")
    out = read_until(sub, lambda out: "Grüße" in out)
    check("[message.inbound.webhook.hooks] {" in out and "Grüße" in out, f"subscriber printed: {out!r}")
finally:
    gw.cleanup()
done()
