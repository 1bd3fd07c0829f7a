"""A webhook is answered 200 only after the disk has synced its commit; when the disk fails the
sync, the webhook is answered 503 and its commit is not kept, and the provider's retry, once the
disk works, is stored once.

The disk is played by tests/preload/disk_faults.c (LD_PRELOAD): fdatasync/fsync of the SQLite
store's -wal file sleep or fail as its control file says, and each is logged with its times."""
import json
import os
import sqlite3
import time

from harness import Gateway, check, done

work = Gateway()
ctl = os.path.join(work.dir, "disk.ctl")
synclog = os.path.join(work.dir, "disk.log")


def disk(delay_ms, fail):
    with open(ctl, "w") as f:
        f.write(f"{delay_ms} {fail}\n")


def syncs():
    if not os.path.exists(synclog):
        return []
    with open(synclog) as f:
        return [tuple(int(x) for x in line.split()) for line in f if line.strip()]


def post(mid):
    t0 = time.time()
    st, body = work.post_message({"id": mid, "from": "tel:+15550001000", "text": f"hello {mid}"})
    return st, body, t0, time.time()


disk(0, 0)
os.environ["LD_PRELOAD"] = os.environ["PARLEY_DISK_FAULTS"]
os.environ["PARLEY_DISK_FAULTS_CTL"] = ctl
os.environ["PARLEY_DISK_FAULTS_LOG"] = synclog
# An ASan build checks that its runtime comes first among the preloaded libraries.
os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
work.start()
try:
    st, body, _, _ = post("ok-1")
    check(st == 200, f"a webhook on a healthy disk: {st} {body!r}")
    check(len(syncs()) > 0, f"the store's log was synced through the shim: {syncs()}")

    # A slow disk: the answer waits for a sync of the log that began after the request was sent.
    disk(1200, 0)
    st, body, t0, t1 = post("slow-1")
    check(st == 200, f"a webhook on a slow disk: {st} {body!r}")
    covering = [s for s in syncs() if s[0] >= t0 * 1000 - 5 and s[1] <= t1 * 1000 + 5 and s[2] == 0
                and s[1] - s[0] >= 1150]
    check(t1 - t0 >= 1.15 and covering,
          f"the 200 came {t1 - t0:.2f} s after the request, after a 1.2 s sync of the log "
          f"(syncs in that time: {[s for s in syncs() if s[1] >= t0 * 1000 - 5]})")

    # A failing disk: 503, and nothing of that commit is kept (SQLite does not advance the log past a
    # commit whose sync failed, so no later sync can make it look durable).
    disk(0, 1)
    st, body, _, _ = post("fail-1")
    check(st == 503, f"a webhook whose sync failed is answered 503: {st} {body!r}")
    log = work.read_log()
    check("disk I/O error" in log and "their providers will retry" in log,
          "the log names the disk's failure:\n" + log[-2000:])
    con = sqlite3.connect(os.path.join(work.dir, "var", "parley.db"))
    try:
        kept = con.execute("SELECT count(*) FROM messages WHERE external_id = 'fail-1'").fetchone()[0]
    finally:
        con.close()
    check(kept == 0, f"the commit whose sync failed is not kept (a reader sees {kept} rows of it)")
    disk(0, 0)
    st, body, _, _ = post("fail-1")
    check(st == 200 and json.loads(body).get("ok") is True,
          f"the provider's retry, the disk working again: {st} {body!r}")
    st, _ = work.request("GET", "/healthz")
    check(st == 200, f"/healthz once the disk works: {st}")

    # What a restart recovers from the disk is what was acknowledged, each once.
    work.stop()
    work.start()
    db = os.path.join(work.dir, "var", "parley.db")
    con = sqlite3.connect(db)
    try:
        counts = dict(con.execute("SELECT external_id, count(*) FROM messages WHERE channel = 'hooks'"
                                  " GROUP BY external_id").fetchall())
    finally:
        con.close()
    check(counts == {"ok-1": 1, "slow-1": 1, "fail-1": 1}, f"every acknowledged webhook is stored once: {counts}")
finally:
    work.cleanup()
done()
