#!/usr/bin/env python3
"""Per-thread context switches and CPU of gateway processes, per acknowledged webhook.

  bench/threads.py snap PID... > FILE      the counters of every thread now
  bench/threads.py diff BEFORE AFTER OK     what happened between, per webhook (OK: webhooks acknowledged)

Threads are grouped by name (the gateway names its own: parley:commit, parley:prepare, ...; nng:task,
MHD-worker are the libraries'). vol: voluntary switches (the thread waited: a hand-off), invol: the
scheduler preempted it, cpu_us: CPU time. Read from /proc/PID/task/TID/{comm,status,stat}.
"""
import glob
import json
import os
import re
import sys


def snap(pids):
    out = {}
    for pid in pids:
        for t in glob.glob(f"/proc/{pid}/task/*"):
            try:
                name = open(t + "/comm").read().strip()
                st = open(t + "/status").read()
                vol = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", st, re.M).group(1))
                invol = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", st, re.M).group(1))
                f = open(t + "/stat").read().rsplit(")", 1)[1].split()
                ticks = int(f[11]) + int(f[12])
            except (OSError, AttributeError, IndexError, ValueError):
                continue
            out[f"{pid}/{os.path.basename(t)}"] = [name, vol, invol, ticks]
    return out


def diff(before, after, ok):
    hz = os.sysconf("SC_CLK_TCK")
    groups = {}
    for tid, (name, vol, invol, ticks) in after.items():
        b = before.get(tid, [name, 0, 0, 0])
        g = groups.setdefault(name, [0, 0, 0])
        g[0] += vol - b[1]
        g[1] += invol - b[2]
        g[2] += ticks - b[3]
    ok = max(ok, 1)
    tot = [sum(g[i] for g in groups.values()) for i in range(3)]
    print(f"#   threads per webhook: vol {tot[0] / ok:.2f} invol {tot[1] / ok:.2f} cpu_us {tot[2] * 1e6 / hz / ok:.0f}")
    for name, g in sorted(groups.items(), key=lambda kv: -kv[1][2]):
        if g[0] / ok >= 0.005 or g[2] * 1e6 / hz / ok >= 0.5:
            print(f"#     {name:16s} vol {g[0] / ok:5.2f} invol {g[1] / ok:5.2f} cpu_us {g[2] * 1e6 / hz / ok:5.0f}")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "snap":
        json.dump(snap(sys.argv[2:]), sys.stdout)
    elif len(sys.argv) == 5 and sys.argv[1] == "diff":
        diff(json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
