#!/usr/bin/env python3
"""What watching unlinks, renames and truncates of a checkout's files (the `path_op` records,
bpf/file.bpf.h) costs a build that churns files: in a git checkout of 2,000 tracked files, a
worker creates, renames and unlinks 20,000 untracked files (a build's temporaries), half of
them named like tracked files (`Makefile`, `index.js`: names the kernel's filter passes on
to user space, which drops them), bare and under `run --workspace` (observe, no policy),
alternated, and under `run` with the path_op hooks left out (RUNWARDEN_DISABLE_HOOKS, so a
private kernel side; `--allow-partial`), which separates their cost from the opens'. Prints the
median time of the churn (measured inside the worker, so the run's start-up is left out) and
the ratios.

    bench/pathop.py [--files 20000] [--rounds 5] [--rw build/runwarden]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r"""
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
t0 = time.perf_counter()
for i in range(n):
    # every other file is named like tracked ones: the kernel sends those, user space drops them
    a, b = ("Makefile", "index.js") if i % 2 else (f"{i}.tmp", f"{i}.o")
    a, b = os.path.join(d, a), os.path.join(d, b)
    open(a, "w").close()
    os.rename(a, b)
    os.truncate(b, 0)
    os.unlink(b)
print(time.perf_counter() - t0)
"""


PATHOP_CALLS = ("unlink", "unlinkat", "rename", "renameat", "renameat2", "truncate")


def checkout(root, files):
    subprocess.run(["git", "init", "-q", root], check=True)
    for i in range(files):
        sub = os.path.join(root, f"pkg{i % 50}")
        os.makedirs(sub, exist_ok=True)
        name = ("Makefile", "index.js", f"mod{i}.c", f"README{i}.md")[i % 4]
        with open(os.path.join(sub, name if i % 4 > 1 or i < 100 else f"f{i}.c"), "w") as f:
            f.write(f"{i}\n")
    subprocess.run(["git", "-C", root, "add", "-A"], check=True)
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b.test",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b.test")
    subprocess.run(["git", "-C", root, "commit", "-qm", "bench"], check=True, env=env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rw", default=os.path.join(ROOT, "build", "runwarden"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rw-pathop-")
    try:
        repo = os.path.join(tmp, "repo")
        checkout(repo, 2000)
        hooks = ",".join(f"tp/syscalls/sys_{d}_{c}" for c in PATHOP_CALLS
                         for d in ("enter", "exit"))
        times = {"bare": [], "run": [], "run without path_op": []}
        for r in range(a.rounds):
            for variant, got in times.items():
                work = os.path.join(repo, "build", f"{r}-{len(got)}-{variant[:3]}")
                cmd = [sys.executable, "-c", WORKER, work, str(a.files)]
                env = dict(os.environ)
                if variant == "bare":
                    argv = cmd
                else:
                    argv = [a.rw, "run", "--out", os.path.join(tmp, f"out{r}{variant}"),
                            "--no-sign", "--workspace", repo]
                    if "without" in variant:
                        env["RUNWARDEN_DISABLE_HOOKS"] = hooks
                        argv.append("--allow-partial")
                    argv += ["--", *cmd]
                p = subprocess.run(argv, capture_output=True, text=True, env=env)
                if p.returncode:
                    sys.exit(f"pathop: {variant} failed: {p.stderr.strip()}")
                got.append(float(p.stdout))
        ops = a.files * 4
        b = statistics.median(times["bare"])
        print(f"pathop: {a.files} files x (create, rename, truncate, unlink) in a checkout of "
              f"2,000 tracked files, {a.rounds} rounds alternated")
        for variant, got in times.items():
            m = statistics.median(got)
            print(f"  {variant:<21} {m:.3f} s  ({m / ops * 1e6:.2f} us/op)  ratio {m / b:.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
