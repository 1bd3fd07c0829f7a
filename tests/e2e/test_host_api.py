"""Host functions a plugin relies on: timers fire and stop with the instance; key-value
state survives a restart; metrics from a plugin show up at /metrics."""
import os
import time

from harness import Gateway, check, done

plugins = os.environ["PARLEY_TEST_PLUGINS"]
gw = Gateway(config_body=f"plugins:\n  path: [{plugins}]\n",
             extra_channels="  - name: clock\n    type: ticker\n    config: {{ interval: 20ms, count: 5 }}\n"
             .replace("{{", "{").replace("}}", "}")).start()


def ticks():
    return sorted(m["text"] for m in gw.list_all("clock"))


def wait_for(n, timeout=10):
    end = time.time() + timeout
    while time.time() < end and len(gw.list_all("clock")) < n:
        time.sleep(0.1)


try:
    wait_for(5)
    time.sleep(0.3)  # count caps a run at 5: more would mean the count or the kv state is wrong
    first = ticks()
    check(first == [f"tick {i}" for i in range(1, 6)], f"five ticks from the timer: {first}")
    st, metrics = gw.request("GET", "/metrics")
    check(b'parley_ticks_total{channel="clock"} 5' in metrics, "a plugin's metric is exported")

    check(gw.stop() == 0, "stops cleanly with a timer running")
    gw.start()
    wait_for(10)
    time.sleep(0.3)
    both = ticks()
    want = sorted(f"tick {i}" for i in range(1, 11))
    check(both == want, f"after a restart numbering continues from the stored state: {both}")
finally:
    gw.cleanup()
done()
