#!/usr/bin/env python3
"""Memory over a long job: `runwarden run` around a steady workload
(bench/steady.c: DNS questions to a resolver on loopback, connects to the
addresses it answers, opens, and a fork+exec every 20 iterations, cycling
through DISTINCT names), VmRSS of the runwarden process sampled every second.
Prints RSS at each quarter and the least-squares slope over the second half
(after the tables have filled to their bounds): flat means the agent's memory
does not depend on the job's length.

    bench/rss.py [--seconds 300] [--rate 2000] [--distinct 100000]
    LONG=1 bench/rss.py        # one hour
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RW = os.environ.get("RW", os.path.join(ROOT, "build", "runwarden"))
RW_ARGS = shlex.split(os.environ.get("RW_ARGS", ""))
STEADY = os.environ.get("STEADY", os.path.join(ROOT, "build", "bench", "steady"))


def rss_kb(pid):
    """VmRSS and RssAnon (the heap: VmRSS also counts the mapped ring buffer and the binary)."""
    v = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "RssAnon:")):
                v[line.split(":")[0]] = int(line.split()[1])
    return (v["VmRSS"], v["RssAnon"]) if len(v) == 2 else None


def slope(points):
    """Least-squares slope of (t, v) points, per second."""
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / den if den else 0.0


def main():
    ap = argparse.ArgumentParser()
    long_run = os.environ.get("LONG") == "1"
    ap.add_argument("--seconds", type=float, default=3600 if long_run else 300)
    ap.add_argument("--rate", type=float, default=2000, help="iterations per second")
    ap.add_argument("--distinct", type=int, default=100000,
                    help="names/addresses cycled through (more than every table's bound)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rw-rss-")
    out = os.path.join(tmp, "out")
    cmd = [RW, "run", "--quiet", "--no-sign", *RW_ARGS, "--out", out, "--", STEADY,
           f"{a.seconds:g}", f"{a.rate:g}", str(a.distinct)]
    try:
        print(f"rss: {shlex.join(cmd)}", flush=True)
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        samples = []
        while p.poll() is None:
            try:
                kb = rss_kb(p.pid)
            except (FileNotFoundError, ProcessLookupError):
                kb = None
            if kb:
                samples.append((time.monotonic() - t0, kb[0], kb[1]))
            time.sleep(1)
        err = p.stderr.read()
        if p.returncode:
            raise SystemExit(f"rss: runwarden exited {p.returncode}: {err}")
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
        # Only the generation: from the first second to the workload's end (tear-down out).
        work = [x for x in samples if 1 <= x[0] <= a.seconds]
        if len(work) < 8:
            raise SystemExit("rss: too few samples")
        q = [work[min(len(work) - 1, int(len(work) * f))] for f in (0, 0.25, 0.5, 0.75)] + [work[-1]]
        half = [x for x in work if x[0] >= a.seconds / 2]
        sl = slope([(t, v) for t, v, _ in half]) * 60
        sla = slope([(t, v) for t, _, v in half]) * 60
        events = sum(s["counts"].values())
        print(f"  {a.seconds:g} s at {a.rate:g} iterations/s, {a.distinct:,d} distinct names: "
              f"{events:,d} events logged ({events / s['duration_s']:,.0f}/s), "
              f"lost {s['events_lost']['total']}")
        print("  VmRSS of runwarden at 0/25/50/75/100% of the job: "
              + " / ".join(f"{kb / 1024:.1f}" for _, kb, _ in q) + " MiB; of which heap "
              "(RssAnon): " + " / ".join(f"{kb / 1024:.1f}" for _, _, kb in q) + " MiB")
        print(f"  slope over the second half: VmRSS {sl:+.1f} KiB/min "
              f"({sl * 60 / 1024:+.2f} MiB/hour), RssAnon {sla:+.1f} KiB/min; "
              f"peak VmRSS {max(kb for _, kb, _ in work) / 1024:.1f} MiB")
    finally:
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    sys.exit(main())
