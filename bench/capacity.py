#!/usr/bin/env python3
"""Capacity: the sustained event rate at which runwarden first loses a record,
and the collector's own CPU per event.

Generators (bench/capacity.c) re-connect UDP sockets on loopback (one connect
record per call, no packet) at rising paced rates under `runwarden run`; each
step reads summary.json (records logged, records lost) and runwarden's own CPU
time (utime+stime of the runwarden process, its job excluded). The bare ceiling
of the same generators is measured in the same run, and every rate is printed
as a fraction of it.

    bench/capacity.py [--threads N] [--seconds S] [--rates 50000,100000,...]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RW = os.environ.get("RW", os.path.join(ROOT, "build", "runwarden"))
GEN = os.environ.get("CAPACITY", os.path.join(ROOT, "build", "bench", "capacity"))
TICK = os.sysconf("SC_CLK_TCK")


def gen_calls(stderr):
    line = [l for l in stderr.splitlines() if l.startswith("capacity: calls ")][-1].split()
    return int(line[2]), float(line[4])


def own_cpu(pid):
    """utime+stime of one process in seconds (children not included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def under_runwarden(threads, rate, seconds, out):
    shutil.rmtree(out, True)
    cmd = [RW, "run", "--quiet", "--no-sign", "--out", out, "--",
           GEN, str(threads), str(rate), str(seconds), "9"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cpu = 0.0
    while p.poll() is None:  # sample until it exits: the last sample is the total
        try:
            cpu = own_cpu(p.pid)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
        time.sleep(0.05)
    err = p.stderr.read()
    if p.returncode:
        raise RuntimeError(f"runwarden exited {p.returncode}: {err}")
    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    calls, elapsed = gen_calls(err)
    return calls, elapsed, s["counts"].get("connect", 0), s["events_lost"]["total"], cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rates", default="50000,100000,150000,200000,250000,300000,400000")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rw-capacity-")
    out = os.path.join(tmp, "out")
    try:
        p = subprocess.run([GEN, str(a.threads), "0", str(a.seconds), "9"], check=True,
                           stderr=subprocess.PIPE, text=True)
        calls, elapsed = gen_calls(p.stderr)
        ceiling = calls / elapsed
        print(f"capacity: {a.threads} generators, {a.seconds:g} s per step; "
              f"bare ceiling {ceiling:,.0f} connects/s")
        print(f"  {'target/s':>9} {'achieved/s':>11} {'of bare':>8} {'logged':>9} {'lost':>8} "
              f"{'collector CPU':>13} {'us/event':>9}")
        first_loss = None
        best = 0
        for rate in (int(r) for r in a.rates.split(",")):
            calls, elapsed, logged, lost, cpu = under_runwarden(a.threads, rate, a.seconds, out)
            got = calls / elapsed
            per = cpu / logged * 1e6 if logged else 0
            print(f"  {rate:9,d} {got:11,.0f} {got / ceiling:8.3f} {logged:9,d} {lost:8,d} "
                  f"{cpu:12.2f}s {per:9.2f}")
            if lost and first_loss is None:
                first_loss = got
            if not lost:
                best = max(best, got)
        print(f"  highest lossless rate {best:,.0f} events/s; first loss at "
              + (f"{first_loss:,.0f} events/s" if first_loss else "none of the rates tried"))
    finally:
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    sys.exit(main())
