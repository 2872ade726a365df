#!/usr/bin/env python3
"""Arming: what `runwarden run -- true` costs, in wall time and `armed_ms`
(summary.json: from the start of run to every hook attached), against bare
`true` measured in the same run, variants interleaved, medians.

  cold     no resident kernel side on the machine (`runwarden kernel unload`
           first, then a pause so its detach is not charged to the next run):
           run loads one, arms, and leaves it behind
  private  `run --kernel private`: loads its own, unloads at the end (the
           behaviour before the resident kernel side; without one, every run)
  warm     a resident kernel side loaded (`runwarden kernel load`)
  30 steps 30 consecutive `run -- true` (a CI job of 30 short steps), total
           seconds, against 30 consecutive bare `true`

Without the resident kernel side (`runwarden kernel` unknown) cold and warm
print "n/a (no resident kernel side)" and every run is private.
The machine-wide kernel side is shared with whoever else runs runwarden here,
so this takes the e2e lock (/tmp/rw-e2e.lock) and puts back the state it found.

    bench/arm.py [--reps 10] [--steps 30] [--pause 2]
"""
import argparse
import fcntl
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
RW_ARGS = shlex.split(os.environ.get("RW_ARGS", ""))
POOL_BPF_DIR = "/sys/fs/bpf/runwarden/kernel"
LOCK = os.environ.get("RW_E2E_LOCK", "/tmp/rw-e2e.lock")
NA = "n/a (no resident kernel side)"
GOALS = {"warm": 0.050, "cold": 0.150}


def has_kernel_side():
    p = subprocess.run([RW, "kernel", "status"], capture_output=True, text=True)
    return not (p.returncode == 2 and "unknown command" in p.stderr)


def has_private():
    p = subprocess.run([RW, "run", "--help"], capture_output=True, text=True)
    return "--kernel" in p.stdout + p.stderr


def resident_loaded():
    try:
        return any(os.scandir(POOL_BPF_DIR))
    except FileNotFoundError:
        return False


def kernel(*args):
    # `kernel unload` exits 1 when a copy is in use by someone else's job: the idle ones
    # (ours among them) are unloaded all the same, so the next run still loads its own.
    p = subprocess.run([RW, "kernel", *args], stdout=subprocess.DEVNULL)
    if p.returncode not in ((0, 1) if args[:1] == ("unload",) else (0,)):
        raise subprocess.CalledProcessError(p.returncode, [RW, "kernel", *args])


def run_cmd(out, extra=()):
    return [RW, "run", "--quiet", "--no-sign", *RW_ARGS, *extra, "--out", out, "--", "true"]


COPIES = {}  # variant -> the kernel_side.copy values its runs reported


def timed(cmd, out=None, variant=None):
    """Wall seconds, and armed_ms from summary.json when out is given."""
    if out:
        shutil.rmtree(out, True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    armed = None
    if out:
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
        armed = s["armed_ms"]
        copy = (s.get("kernel_side") or {}).get("copy", "private (no kernel_side in summary)")
        # "resident slot 2 (borrowed)" and "resident slot 0 (borrowed)" are one case
        copy = " ".join(w for w in copy.split() if not w.isdigit())
        COPIES.setdefault(variant, set()).add(copy)
    return wall, armed


def steps(cmd_for, n, out):
    """n consecutive runs: total wall seconds, and the median armed_ms."""
    armed = []
    t0 = time.perf_counter()
    for _ in range(n):
        armed.append(timed(cmd_for(out), out, "steps")[1] if out else timed(cmd_for(None))[1])
    return time.perf_counter() - t0, (statistics.median(armed) if out else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--pause", type=float, default=2,
                    help="seconds after an unload before a cold run (its detach settles)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rw-arm-")
    out = os.path.join(tmp, "out")
    ks = has_kernel_side()
    private = ["--kernel", "private"] if ks and has_private() else []
    lockf = open(LOCK, "a+")
    fcntl.flock(lockf, fcntl.LOCK_EX)
    was_loaded = ks and resident_loaded()
    try:
        v = {"bare": lambda: timed(["true"])}

        def cold():
            kernel("unload")
            time.sleep(a.pause)
            return timed(run_cmd(out), out, "cold")

        def warm():
            kernel("load")  # a no-op when a copy of this build is loaded
            return timed(run_cmd(out), out, "warm")

        if ks:
            v["cold"] = cold
        v["private"] = lambda: timed(run_cmd(out, private), out, "private")
        if ks:
            v["warm"] = warm
        res = {k: [] for k in v}
        for _ in range(a.reps):
            for k, fn in v.items():  # interleaved: drift hits every variant alike
                res[k].append(fn())
        base = statistics.median(w for w, _ in res["bare"])
        print(f"arm: `run -- true`, median of {a.reps} interleaved runs "
              f"(resident kernel side: {'supported' if ks else 'absent'})")
        print(f"  {'variant':<9} {'wall s':>8} {'minus bare':>10} {'armed ms':>9}  goal")
        cmds = {"bare": "true", "cold": f"{RW} kernel unload; sleep {a.pause:g}; "
                + shlex.join(run_cmd("OUT")), "private": shlex.join(run_cmd("OUT", private)),
                "warm": f"{RW} kernel load (before each: a no-op when loaded); " + shlex.join(run_cmd("OUT"))}
        for k in ("bare", "cold", "private", "warm"):
            if k not in res:
                print(f"  {k:<9} {NA}")
                continue
            w = statistics.median(x for x, _ in res[k])
            arm = [x for _, x in res[k] if x is not None]
            goal = GOALS.get("cold" if k == "private" and not ks else k)
            verdict = (f"<= {goal * 1000:.0f} ms: {'met' if w - base <= goal else 'NOT met'}"
                       if goal else "")
            print(f"  {k:<9} {w:8.3f} {w - base:10.3f} "
                  f"{(f'{statistics.median(arm):9.0f}' if arm else '        -')}  {verdict}")
        for k, c in cmds.items():
            if k in res:
                print(f"    {k}: {c}" + (f"  [kernel_side: {', '.join(sorted(COPIES[k]))}]"
                                        if k in COPIES else ""))

        # A job of N short steps, back to back.
        if ks:
            kernel("load")
        bare_t, _ = steps(lambda _o: ["true"], a.steps, None)
        rows = [("bare", bare_t, None, f"{a.steps} x true")]
        t, arm = steps(lambda o: run_cmd(o), a.steps, out)
        rows.append(("warm" if ks else "private", t, arm,
                     f"{a.steps} x " + shlex.join(run_cmd("OUT"))))
        if ks and private:
            t, arm = steps(lambda o: run_cmd(o, private), a.steps, out)
            rows.append(("private", t, arm, f"{a.steps} x " + shlex.join(run_cmd("OUT", private))))
        print(f"\narm: a job of {a.steps} short steps, back to back (total seconds)")
        print(f"  {'variant':<9} {'total s':>8} {'minus bare':>10} {'per step':>9} {'armed ms':>9}  goal")
        for k, t, arm, c in rows:
            goal = "" if k == "bare" else (
                f"< 1.5 s: {'met' if t - bare_t < 1.5 else 'NOT met'}" if k == "warm"
                else "(today's behaviour)")
            print(f"  {k:<9} {t:8.2f} {t - bare_t:10.2f} {(t - bare_t) / a.steps:9.3f} "
                  f"{(f'{arm:9.0f}' if arm is not None else '        -')}  {goal}")
        if not ks:
            print(f"  warm      {NA}")
        for k, _, _, c in rows:
            print(f"    {k}: {c}")
    finally:
        if ks:  # leave the machine as it was found
            if was_loaded and not resident_loaded():
                kernel("load")
            elif not was_loaded and resident_loaded():
                kernel("unload")
        fcntl.flock(lockf, fcntl.LOCK_UN)
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    sys.exit(main())
