"""SIGHUP never kills the gateway: with a broken config file it logs each error at its
FILE:LINE:COL and goes on serving on the config it started with; with a valid one it says the new
config is valid and needs a restart to apply."""
import signal
import time

from harness import Gateway, check, done

gw = Gateway()
try:
    gw.start()
    with open(gw.config) as f:
        good = f.read()
    with open(gw.config, "w") as f:
        f.write(good + "  - name: broken\n    type: no_such_type\n")
    gw.proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    check(gw.proc.poll() is None, "still running after SIGHUP with a broken file")
    st, _ = gw.post_message({"id": "h-1", "from": "alice", "text": "still here"})
    check(st == 200, f"still serving: {st}")
    log = gw.read_log()
    check(f"reload refused: {gw.config}:" in log and "no_such_type" in log, f"the error at its place: {log[-1500:]}")
    check("still serving on the config the gateway started with" in log, "says it keeps the old config")
    with open(gw.config, "w") as f:
        f.write(good)
    gw.proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    check(gw.proc.poll() is None and "is valid (1 channel(s)" in gw.read_log(), "a valid file: said to need a restart")
    check(gw.stop() == 0, "and it still stops cleanly")
finally:
    gw.cleanup()
done()
