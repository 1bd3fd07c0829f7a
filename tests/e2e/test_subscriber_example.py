"""examples/subscriber.c, built with the project, prints what the gateway publishes."""
import os
import subprocess
import time

from harness import Gateway, check, done

gw = Gateway().start()
try:
    sub = subprocess.Popen([os.environ["PARLEY_SUBSCRIBER"], f"ipc://{gw.dir}/var/events.ipc", "message."],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    st, _ = gw.post_message({"id": "e1", "from": "tel:+4930123", "text": "Grüße"})
    check(st == 200, "posted")
    time.sleep(0.5)
    sub.terminate()
    out, _ = sub.communicate(timeout=5)
    check("[message.inbound.webhook.hooks] {" in out and "Grüße" in out, f"subscriber printed: {out!r}")
finally:
    gw.cleanup()
done()
