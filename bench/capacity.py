#!/usr/bin/env python3
"""Capacity: the sustained event rate at which runwarden first loses a record,
the collector's own CPU per event, and (--profile) where that CPU goes.

Generators (bench/capacity.c, one thread per CPU by default: as many as the
machine can run at once) re-connect UDP sockets on loopback (one connect
record per call, no packet) at rising paced rates under `runwarden run`; each
step reads summary.json (records logged, records lost) and runwarden's own CPU
time (utime+stime of the runwarden process, its job excluded) between the
generator's first and last connect, so start-up and tear-down are left out.
A step lasts long enough to overflow the ring buffer if the collector falls
behind: "sustained" means the ring cannot hide it. The bare ceiling of the same
generators is measured in the same run; every rate is printed against it.
After the first lossy rate the gap is bisected; a last step runs unpaced (the
most the generators reach under the hooks).

    bench/capacity.py [--threads N] [--seconds S] [--rates 100000,150000,...]
                      [--bisect N] [--profile RATE]
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


def rw_cmd(out, gen):
    return [RW, "run", "--quiet", "--no-sign", *RW_ARGS, "--out", out, "--", *gen]


class Step:
    """One run of the generators under runwarden at one paced rate (0: unpaced)."""

    def __init__(self, threads, rate, seconds, tmp, profile=False):
        out = os.path.join(tmp, "out")
        marks = os.path.join(tmp, "marks")
        shutil.rmtree(out, True)
        shutil.rmtree(marks, True)
        os.mkdir(marks)
        self.cmd = rw_cmd(out, [GEN, str(threads), str(rate), str(seconds), "9", marks])
        p = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        cpu = start = end = None
        perf = None
        while p.poll() is None:
            try:
                cpu = own_cpu(p.pid)
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
            if start is None and os.path.exists(os.path.join(marks, "start")):
                start = cpu
                if profile:
                    perf = subprocess.Popen(
                        ["perf", "record", "-q", "-F", "499", "--call-graph", "dwarf,16384", "-p", str(p.pid), "-o",
                         os.path.join(tmp, "perf.data"), "--", "sleep", str(seconds)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if end is None and os.path.exists(os.path.join(marks, "end")):
                end = time.monotonic()
            # The generator idles a second after its last connect: the collector
            # drains the ring meanwhile; take its CPU then, before tear-down.
            if end is not None and time.monotonic() - end > 0.9:
                break
            time.sleep(0.02)
        steady = cpu
        err = p.communicate()[1]
        if perf:
            perf.wait()
        if p.returncode:
            raise RuntimeError(f"runwarden exited {p.returncode}: {err}")
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
        self.calls, self.elapsed = gen_calls(err)
        self.rate = self.calls / self.elapsed
        self.logged = s["counts"].get("connect", 0)
        self.lost = s["events_lost"]["total"]
        self.cpu = steady - start if start is not None and steady is not None else float("nan")
        self.per_event_us = self.cpu / self.logged * 1e6 if self.logged else float("nan")
        self.armed_ms = s.get("armed_ms")


def print_row(rate, st, ceiling):
    label = f"{rate:,d}" if rate else "unpaced"
    print(f"  {label:>9} {st.rate:11,.0f} {st.rate / ceiling:8.3f} {st.logged:10,d} "
          f"{st.lost:9,d} {st.cpu:8.2f}s {st.cpu / st.elapsed:6.0%} {st.per_event_us:9.2f}",
          flush=True)


def perf_report(data, *args):
    r = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none", *args],
                       capture_output=True, text=True)
    return [l.split() for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]


# Where the collector's time goes, by the function that owns the work (inclusive). Code in
# libcrypto and the kernel's write path is also shown by library below: frames without
# symbols (OpenSSL's SHA-256 assembly) cannot always be unwound to their caller.
PARTS = [("chain a line: build, hash, buffer (append_line)", "append_line"),
         ("  of which SHA-256, line and file digests", "SHA256_Update"),
         ("flush: file digest of the buffer + write(2) (evlog_flush)", "evlog_flush"),
         ("event head: ts, pids, comm, exe (render_head)", "render_head"),
         ("connect destination + summary (note_dest)", "note_dest"),
         ("exec filter for the attestation (attest_exec_line)", "attest_exec_line"),
         ("ring buffer reads, all of the above (ring_buffer__consume)", "ring_buffer__consume")]


def profile(step, tmp, top):
    """The collector's profile over the generated events: by library, by part, hottest symbols."""
    data = os.path.join(tmp, "perf.data")
    print(f"\nprofile of the collector at {step.rate:,.0f} events/s, "
          f"{step.per_event_us:.2f} us of CPU per event "
          f"(perf record -F 499 --call-graph dwarf -p <runwarden pid> over the generation):")
    print("  by library (perf report --sort dso):")
    for f in perf_report(data, "--no-children", "--sort", "dso")[:6]:
        if f[0].endswith("%"):
            print(f"    {f[0]:>7}  {f[1]}")
    incl = {}
    for f in perf_report(data, "--children", "--sort", "symbol"):
        if len(f) >= 4 and f[0].endswith("%"):
            incl.setdefault(f[3], float(f[0][:-1]))
    print("  by part (perf report --children, inclusive):")
    for name, sym in PARTS:
        print(f"    {incl.get(sym, 0.0):6.1f}%  {name}")
    print(f"  hottest symbols (perf report --no-children --sort dso,symbol; unnamed libcrypto "
          f"code summed):")
    rows, crypto = [], 0.0
    for f in perf_report(data, "--no-children", "--sort", "dso,symbol"):
        if len(f) >= 4 and f[0].endswith("%"):
            if f[1] == "libcrypto.so.3" and f[3].startswith("0x"):
                crypto += float(f[0][:-1])
            else:
                rows.append((float(f[0][:-1]), f"{f[3]} ({f[1]})"))
    rows.append((crypto, "SHA-256 block code, no symbols (libcrypto.so.3)"))
    for pct, name in sorted(rows, reverse=True)[:top]:
        print(f"    {pct:6.2f}%  {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="generator threads (default: one per CPU)")
    ap.add_argument("--seconds", type=float, default=10,
                    help="per step; long enough that the 16 MiB ring cannot hide a deficit")
    ap.add_argument("--rates", default="100000,150000,200000,250000,300000,350000,400000")
    ap.add_argument("--bisect", type=int, default=2, help="steps between lossless and lossy")
    ap.add_argument("--profile", type=int, default=0, metavar="RATE",
                    help="also profile the collector (perf) at this paced rate")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rw-capacity-")
    try:
        bare = [GEN, str(a.threads), "0", str(a.seconds), "9"]
        p = subprocess.run(bare, check=True, stderr=subprocess.PIPE, text=True)
        calls, elapsed = gen_calls(p.stderr)
        ceiling = calls / elapsed
        print(f"capacity: {a.threads} generators (CPUs: {os.cpu_count()}), {a.seconds:g} s per "
              f"step; bare ceiling {ceiling:,.0f} connects/s\n  bare: {shlex.join(bare)}\n"
              f"  step: {shlex.join(rw_cmd('OUT', [GEN, str(a.threads), 'RATE', str(a.seconds), '9', 'MARKDIR']))}")
        print(f"  {'target/s':>9} {'achieved/s':>11} {'of bare':>8} {'logged':>10} {'lost':>9} "
              f"{'coll. CPU':>9} {'share':>6} {'us/event':>9}")
        lossless, lossy, per = None, None, []
        best = None  # the highest rate achieved without loss, whatever was asked
        for rate in (int(r) for r in a.rates.split(",")):
            st = Step(a.threads, rate, a.seconds, tmp)
            print_row(rate, st, ceiling)
            if st.lost:
                lossy = (rate, st)
                break
            lossless = (rate, st)
            best = st if not best or st.rate > best.rate else best
            per.append(st.per_event_us)
        for _ in range(a.bisect if lossy and lossless else 0):
            rate = (lossless[0] + lossy[0]) // 2
            st = Step(a.threads, rate, a.seconds, tmp)
            print_row(rate, st, ceiling)
            if st.lost:
                lossy = (rate, st)
            else:
                lossless = (rate, st)
                best = st if not best or st.rate > best.rate else best
                per.append(st.per_event_us)
        st = Step(a.threads, 0, a.seconds, tmp)
        print_row(0, st, ceiling)
        if not st.lost:
            best = st if not best or st.rate > best.rate else best
        if st.lost and not lossy:
            lossy = (0, st)
        print(f"  lossless rate {best.rate if best else 0:,.0f} events/s "
              f"(highest achieved with 0 lost); first loss at "
              + (f"{lossy[1].rate:,.0f} events/s ({lossy[1].lost:,d} lost)" if lossy
                 else "none of the rates tried (the generators' ceiling under the hooks)"))
        if per:
            per.sort()
            print(f"  collector CPU per event (lossless steps): median {per[len(per) // 2]:.2f} us, "
                  f"range {per[0]:.2f}-{per[-1]:.2f} us")
        if a.profile:
            if not shutil.which("perf"):
                print("profile: n/a (perf not installed: scripts/deps.sh bench)")
            else:
                profile(Step(a.threads, a.profile, a.seconds, tmp, profile=True), tmp, a.top)
    finally:
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    sys.exit(main())
