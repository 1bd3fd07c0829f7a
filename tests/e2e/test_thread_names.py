"""The gateway names its threads (parley:prepare, parley:commit, ...), so that top -H, ps -L, perf and
gdb say which stage is busy, and bench/threads.py can count a webhook's hand-offs by stage."""
import os

from harness import Gateway, check, done

gw = Gateway().start()
try:
    names = set()
    for tid in os.listdir(f"/proc/{gw.proc.pid}/task"):
        try:
            with open(f"/proc/{gw.proc.pid}/task/{tid}/comm") as f:
                names.add(f.read().strip())
        except OSError:
            pass
    want = {"parley:prepare", "parley:commit", "parley:post", "parley:outbox", "parley:events", "parley:control"}
    check(want <= names, f"the pipeline's and the core's threads are named: missing {sorted(want - names)} "
                         f"among {sorted(names)}")
finally:
    gw.cleanup()
done()
