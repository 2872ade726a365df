#!/usr/bin/env python3
"""Per-connect latency in enforce mode against policy size: the same connects
bare, under observe (no policy), and under enforce with 10, 1,000 and 100,000
entries. Entries are /32s inside 127.100.0.0/16 and up (never traffic, just
trie size); the destination is allowed by its own entry.

    bench/connect_latency.py [--connects N] [--reps R]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RW = os.environ.get("RW", os.path.join(ROOT, "build", "runwarden"))
TOOL = os.path.join(ROOT, "build", "bench", "connect_lat")
DEST = "127.0.0.1"


def policy(path, n):
    with open(path, "w") as f:
        f.write("version: 1\nmode: enforce\nallow:\n")
        f.write(f"  - ip: {DEST}\n    proto: tcp\n")
        for i in range(n - 1):
            a = 100 + (i >> 16)
            f.write(f"  - cidr: 127.{a}.{(i >> 8) & 255}.{i & 255}/32\n    ports: [443]\n")
        f.write("dns:\n  upstream: 127.0.0.53\n")


def measure_all(variants, reps):
    """Interleaved: every rep runs every variant once, so drift hits all."""
    got = {name: ([], []) for name, _ in variants}
    for _ in range(reps):
        for name, cmd in variants:
            if "--out" in cmd:  # runwarden refuses an existing evidence directory
                shutil.rmtree(cmd[cmd.index("--out") + 1], True)
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
            got[name][0].append(float(out[-2]))
            got[name][1].append(float(out[-1]))
    return [(name, (statistics.median(got[name][0]), statistics.median(got[name][1])))
            for name, _ in variants]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connects", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rw-lat-")
    out = os.path.join(tmp, "out")
    lat = [TOOL, str(a.connects), DEST]
    rw = [RW, "run", "--quiet", "--no-sign", "--out", out]
    variants = [("bare", lat), ("observe, no policy", rw + ["--"] + lat)]
    for n in (10, 1000, 100000):
        p = os.path.join(tmp, f"p{n}.yaml")
        policy(p, n)
        variants.append((f"enforce, {n} entries", rw + ["--policy", p, "--"] + lat))
    rows = measure_all(variants, a.reps)
    b50, b99 = rows[0][1]
    print(f"per-connect latency, {a.connects} loopback connects, median of {a.reps} interleaved runs (µs)")
    print(f"  {'variant':<24} {'p50':>7} {'p99':>7} {'p50 added':>10} {'p99 added':>10}")
    for name, (p50, p99) in rows:
        print(f"  {name:<24} {p50:7.2f} {p99:7.2f} {p50 - b50:10.2f} {p99 - b99:10.2f}")


if __name__ == "__main__":
    sys.exit(main())
