#!/usr/bin/env python3
"""Overhead benchmarks: the same workload bare, under runwarden, under strace -f
and under a printing bpftrace, interleaved, medians, printed as ratios to the
bare run measured in the same session (these machines are noisy).

    bench/bench.py storm [--reps N]     # 20,000 connects, 5,000 execs, 50,000 opens
    bench/bench.py short [--reps N]     # issue #10's short storm: 2,000 / 400 / 10,000
    bench/bench.py large [--reps N]     # ten times that: 20,000 / 4,000 / 100,000
    bench/bench.py build --src DIR [--reps N]

"wall" includes runwarden's start-up and tear-down (with a resident kernel side
on the machine, `run` arms by writing maps; without one it loads its own);
"in-job" is the workload's own time. RW_ARGS adds options to every run (e.g.
RW_ARGS="--kernel private").
"""
import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RW = os.environ.get("RW", os.path.join(ROOT, "build", "runwarden"))

# The peers trace the same syscalls runwarden hooks.
STRACE = ["strace", "-f", "-qq", "-o", "/dev/null",
          "-e", "trace=execve,connect,sendto,sendmsg,open,openat,openat2"]
BPFTRACE_PROG = r"""
tracepoint:syscalls:sys_enter_execve { printf("%d %s exec %s\n", pid, comm, str(args->filename)); }
tracepoint:syscalls:sys_enter_connect { printf("%d %s connect\n", pid, comm); }
tracepoint:syscalls:sys_enter_sendto { printf("%d %s sendto\n", pid, comm); }
tracepoint:syscalls:sys_enter_openat { printf("%d %s open %s\n", pid, comm, str(args->filename)); }
"""


def timed(cmd, cwd=None):
    """Wall time of the whole command, and the workload's own time when it
    reports one ("storm: elapsed S" on stderr), else the wall time."""
    if "--out" in cmd:  # runwarden refuses an existing evidence directory
        shutil.rmtree(cmd[cmd.index("--out") + 1], True)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    inner = [l for l in p.stderr.splitlines() if l.startswith("storm: elapsed ")]
    return wall, float(inner[-1].split()[-1]) if inner else wall


class Bpftrace:
    """A system-wide printing bpftrace, as a user would run beside the job."""

    def __enter__(self):
        self.out = open("/dev/null", "w")
        self.p = subprocess.Popen(["bpftrace", "-e", BPFTRACE_PROG], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        line = self.p.stdout.readline()  # "Attaching N probes..."
        if "Attaching" not in line:
            raise RuntimeError("bpftrace did not start: " + line)
        self.drain = subprocess.Popen(["cat"], stdin=self.p.stdout, stdout=self.out)
        return self

    def __exit__(self, *a):
        self.p.terminate()
        self.p.wait()
        self.drain.wait()
        self.out.close()


ENFORCE_POLICY = """version: 1
mode: enforce
allow:
  - cidr: 127.0.0.0/8
dns:
  upstream: 127.0.0.53
"""


RW_ARGS = shlex.split(os.environ.get("RW_ARGS", ""))
POOL_BPF_DIR = "/sys/fs/bpf/runwarden/kernel"
GOALS = {"short storm": 1.05, "large storm": 1.03}


def kernel_side():
    """What a run will find: a resident kernel side, none, or no support for one."""
    p = subprocess.run([RW, "kernel", "status"], capture_output=True, text=True)
    if p.returncode == 2 and "unknown command" in p.stderr:
        return "n/a (no resident kernel side): every run loads its own"
    try:
        if any(os.scandir(POOL_BPF_DIR)):
            return "resident, loaded"
    except FileNotFoundError:
        pass
    return "resident, none loaded yet (the first run loads one and leaves it)"


def variants(workload, out):
    rw = [RW, "run", "--quiet", "--no-sign", *RW_ARGS, "--out", out]
    pol = os.path.join(os.path.dirname(out), "bench-policy.yaml")
    with open(pol, "w") as f:
        f.write(ENFORCE_POLICY)
    v = {"bare": lambda: timed(workload()),
         "runwarden": lambda: timed(rw + ["--"] + workload()),
         "rw enforce": lambda: timed(rw + ["--policy", pol, "--"] + workload())}
    cmds = {"bare": shlex.join(workload()),
            "runwarden": shlex.join(rw + ["--"] + workload()),
            "rw enforce": shlex.join(rw + ["--policy", pol, "--"] + workload())}
    if shutil.which("strace"):
        v["strace -f"] = lambda: timed(STRACE + workload())
        cmds["strace -f"] = shlex.join(STRACE + workload())
    if shutil.which("bpftrace"):
        def bt():
            with Bpftrace():
                return timed(workload())
        v["bpftrace"] = bt
        cmds["bpftrace"] = "bpftrace -e '<bench.py BPFTRACE_PROG>' & " + shlex.join(workload())
    return v, cmds


def run(name, workload, reps, prepare=None, skip=()):
    out = os.path.join(tempfile.mkdtemp(prefix="rw-bench-"), "out")
    times = {}
    summaries = []
    allv, cmds = variants(workload, out)
    vs = {k: v for k, v in allv.items() if k.split()[0] not in skip}
    state = kernel_side()
    for i in range(reps):
        for k, fn in vs.items():  # interleaved, so drift hits all alike
            if prepare:
                prepare()
            times.setdefault(k, []).append(fn())
            if k.startswith("r"):
                with open(os.path.join(out, "summary.json")) as f:
                    summaries.append(json.load(f))
                summaries[-1]["variant"] = k
    base = statistics.median(t[0] for t in times["bare"])
    ibase = statistics.median(t[1] for t in times["bare"])
    print(f"\n{name}: median of {reps} interleaved runs; kernel side: {state}")
    print(f"  {'variant':<12} {'wall s':>8} {'ratio':>7} {'in-job s':>9} {'ratio':>7}  wall runs")
    for k, ts in times.items():
        m = statistics.median(t[0] for t in ts)
        mi = statistics.median(t[1] for t in ts)
        goal = GOALS.get(name.split(" (")[0]) if k.startswith("r") else None
        print(f"  {k:<12} {m:8.3f} {m / base:7.3f} {mi:9.3f} {mi / ibase:7.3f}  " +
              " ".join(f"{t[0]:.2f}" for t in ts) +
              (f"  goal wall <= {goal}: {'met' if m / base <= goal else 'NOT met'}" if goal else ""))
    for k in times:
        print(f"    {k}: {cmds[k].replace(out, 'OUT').replace(os.path.dirname(out), 'TMP')}")
    lost = [s["events_lost"]["total"] for s in summaries]
    ev = [sum(s["counts"].values()) for s in summaries]
    rate = [e / s["duration_s"] for e, s in zip(ev, summaries)]
    print(f"  runwarden: events per run {statistics.median(ev):.0f}, "
          f"events/s sustained {statistics.median(rate):.0f}, lost {max(lost)}, "
          f"armed {statistics.median(s['armed_ms'] for s in summaries):.0f} ms, "
          f"agent peak RSS {max(s.get('agent_peak_rss_kb', 0) for s in summaries) / 1024:.1f} MiB")
    for k in [k for k in times if k.startswith("r")]:
        mine = [s for s in summaries if s["variant"] == k]
        copies = {}
        for s in mine:  # "resident slot 2 (borrowed)": the slot number does not matter
            c = " ".join(w for w in (s.get("kernel_side") or {}).get("copy", "private").split()
                         if not w.isdigit())
            copies[c] = copies.get(c, 0) + 1
        print(f"  {k}: armed {statistics.median(s['armed_ms'] for s in mine):.0f} ms (median); "
              "kernel side: " + ", ".join(f"{c} x{n}" for c, n in copies.items()))
    hashes = [s["exe_hashes"] for s in summaries if "exe_hashes" in s]
    if hashes:
        h = max(hashes, key=lambda x: x["ms"])
        print(f"  exec digests (worst run): {h['files']} files hashed, {h['bytes'] / 2**20:.1f} MiB, "
              f"{h['cache_hits']} cache hits, {h['ms']:.0f} ms of agent time")
    shutil.rmtree(os.path.dirname(out), True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["storm", "short", "large", "build"])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--src", help="source tree for 'build' (configured, with a Makefile)")
    ap.add_argument("--skip", action="append", default=[],
                    help="leave out a variant (strace, bpftrace, runwarden, rw)")
    ap.add_argument("--storm", default=os.path.join(ROOT, "build", "bench", "storm"))
    a = ap.parse_args()
    sizes = {"storm": ("syscall storm", "20000", "5000", "50000"),
             "short": ("short storm", "2000", "400", "10000"),
             "large": ("large storm", "20000", "4000", "100000")}
    if a.what in sizes:
        name, c, e, o = sizes[a.what]
        run(f"{name} ({int(c):,} connects, {int(e):,} execs, {int(o):,} opens)",
            lambda: [a.storm, c, e, o], a.reps, skip=a.skip)
    else:
        clean = lambda: subprocess.run(["make", "-s", "clean"], cwd=a.src, check=True,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run(f"real build (make -j2 in {os.path.basename(a.src)})",
            lambda: ["make", "-C", a.src, "-j2", "-s"], a.reps, prepare=clean, skip=a.skip)


if __name__ == "__main__":
    sys.exit(main())
