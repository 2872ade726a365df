#!/usr/bin/env python3
"""What watching unlinks, renames and truncates of a checkout's files (the `path_op` records,
bpf/file.bpf.h) costs a build that churns files: in a git checkout of 2,000 tracked files, a
worker creates, renames and unlinks 20,000 untracked files (a build's temporaries), half of
them named like tracked files (`Makefile`, `index.js`: names the kernel's filter passes on
to user space, which drops them), bare and under `run --workspace` (observe, no policy),
alternated. Prints the median time of the churn (measured inside the worker, so the run's
start-up is left out) and the ratio.

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
        bare, under = [], []
        for r in range(a.rounds):
            work = os.path.join(repo, "build", str(r))
            cmd = [sys.executable, "-c", WORKER, work, str(a.files)]
            p = subprocess.run(cmd, capture_output=True, text=True, check=True)
            bare.append(float(p.stdout))
            out = os.path.join(tmp, f"out{r}")
            p = subprocess.run([a.rw, "run", "--out", out, "--no-sign", "--workspace", repo,
                                "--", *cmd], capture_output=True, text=True)
            if p.returncode:
                sys.exit(f"pathop: run failed: {p.stderr.strip()}")
            under.append(float(p.stdout))
        b, u = statistics.median(bare), statistics.median(under)
        ops = a.files * 4
        print(f"pathop: {a.files} files x (create, rename, truncate, unlink) in a checkout of "
              f"2,000 tracked files, {a.rounds} rounds alternated")
        print(f"  bare      {b:.3f} s  ({b / ops * 1e6:.2f} us/op)")
        print(f"  under run {u:.3f} s  ({u / ops * 1e6:.2f} us/op)")
        print(f"  ratio     {u / b:.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
