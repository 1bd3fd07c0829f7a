"""parley backup, taken while webhooks keep arriving: the copy passes PRAGMA integrity_check and
holds every message acknowledged before the backup began; restored (copied over the database of a
stopped gateway), the gateway starts on it and serves those messages.  An existing file is never
overwritten."""
import json
import os
import shutil
import sqlite3
import threading
import time

from harness import Gateway, check, done

gw = Gateway()
acked, lock, stop = [], threading.Lock(), threading.Event()


def load():
    conn = gw.connection()
    i = 0
    while not stop.is_set():
        i += 1
        mid = f"load-{i}"
        st, _ = gw.post_message({"id": mid, "from": f"c{i % 50}", "text": "x" * 200}, conn=conn)
        if st == 200:
            with lock:
                acked.append((mid, time.time()))


try:
    gw.start()
    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    backup = os.path.join(gw.dir, "backup.db")
    t_start = time.time()
    rc, out, err = gw.cli("backup", "-c", gw.config, backup)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    check(rc == 0 and "backed up to" in out, f"parley backup: {rc} {out} {err}")
    check(os.stat(backup).st_mode & 0o077 == 0, f"the copy is the gateway user's alone: {oct(os.stat(backup).st_mode)}")
    before = {m for m, at in acked if at < t_start}
    check(len(before) > 100, f"a load was running: {len(before)} acknowledged before the backup")
    db = sqlite3.connect(backup)
    check(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "the copy passes integrity_check")
    stored = {r[0] for r in db.execute("SELECT external_id FROM messages")}
    db.close()
    missing = before - stored
    check(not missing, f"every message acknowledged before the backup is in it: {len(missing)} missing")
    rc, out, err = gw.cli("backup", "-c", gw.config, backup)
    check(rc != 0 and "never overwrites" in (out + err), f"an existing file is not overwritten: {out} {err}")
    gw.stop()

    # Restore: the copy over the database of a stopped gateway; it starts and serves what was acknowledged.
    data = os.path.join(gw.dir, "var", "parley.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(data + suffix):
            os.remove(data + suffix)
    shutil.copy(backup, data)
    gw.start()
    some = sorted(before)[:5]
    rc, r = gw.api("messages.list", {"channel": "hooks", "limit": 1000})
    got = {m.get("external_id") for m in r.get("messages", [])}
    check(all(m in got for m in some), f"the restored gateway serves them: {some}")
finally:
    stop.set()
    gw.cleanup()
done()
