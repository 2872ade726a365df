#!/usr/bin/env python3
"""Where a running runwarden's heap goes: walks glibc's main arena ([heap]) from /proc/PID/mem
and counts the chunks in use by size, then (with --peek) shows what the newest ones hold.

    bench/heapwalk.py PID [--save FILE] [--diff EARLIER.json] [--peek SIZE]

--save writes the histogram; --diff prints the sizes whose bytes changed most since an
earlier --save: what a creep is made of (docs/performance.md, "Memory over a long job").
--peek SIZE prints the contents of the in-use chunks of that size in the top 5% of the heap
(the most recently grown part): strings as they are, and a strmap entry (two pointers into
the heap first) as its key and value. Digits are shown as '#' so that alike entries group.

The process is stopped (SIGSTOP) for the read, a fraction of a second, and continued. Root.
Calling malloc_stats() through gdb is not a substitute: stopped inside malloc, the call
waits for the arena lock the process holds, for ever.
"""
import argparse
import collections
import json
import os
import re
import signal
import struct
import sys


def read_heap(pid):
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            if line.rstrip().endswith("[heap]"):
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                break
        else:
            raise SystemExit(f"heapwalk: pid {pid} has no [heap]")
    os.kill(pid, signal.SIGSTOP)
    try:
        with open(f"/proc/{pid}/mem", "rb") as f:
            f.seek(lo)
            return lo, f.read(hi - lo)
    finally:
        os.kill(pid, signal.SIGCONT)


def chunks(mem):
    """(offset of the chunk, its size) of every chunk in use (tcache and fastbin chunks
    count as in use: glibc marks them so)."""
    p, n = 0, len(mem)
    while p + 16 <= n:
        size = struct.unpack_from("<Q", mem, p + 8)[0] & ~7
        if size < 32 or p + size > n:
            return
        nxt = p + size
        if nxt + 16 <= n and struct.unpack_from("<Q", mem, nxt + 8)[0] & 1:
            yield p, size
        p = nxt


def text_at(mem, lo, addr, limit=64):
    if not lo <= addr < lo + len(mem):
        return None
    s = mem[addr - lo:addr - lo + limit].split(b"\0")[0]
    return s if s and all(32 <= c < 127 for c in s) else None


def peek(mem, lo, want):
    seen = collections.Counter()
    for p, size in chunks(mem):
        if size != want or p < len(mem) * 0.95:
            continue
        body = mem[p + 16:p + size]
        s = body.split(b"\0")[0]
        if len(s) >= 2 and all(32 <= c < 127 for c in s):
            seen["string " + re.sub(rb"\d", b"#", s).decode()] += 1
            continue
        key, val = struct.unpack_from("<2Q", body)
        k, v = text_at(mem, lo, key), text_at(mem, lo, val)
        if k:
            seen["entry %s -> %s" % (re.sub(rb"\d", b"#", k).decode(),
                                     re.sub(rb"\d", b"#", v).decode() if v else "<binary>")] += 1
        else:
            seen["other"] += 1
    for what, n in seen.most_common(20):
        print(f"{n:8d}  {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pid", type=int)
    ap.add_argument("--save")
    ap.add_argument("--diff")
    ap.add_argument("--peek", type=int)
    a = ap.parse_args()
    lo, mem = read_heap(a.pid)
    hist = collections.Counter(size for _, size in chunks(mem))
    print(f"heap {len(mem) / 1024:.0f} KiB, in use {sum(s * n for s, n in hist.items()) / 1024:.0f}"
          f" KiB in {sum(hist.values())} chunks")
    if a.save:
        with open(a.save, "w") as f:
            json.dump({str(k): v for k, v in hist.items()}, f)
    if a.diff:
        with open(a.diff) as f:
            old = {int(k): v for k, v in json.load(f).items()}
        sizes = sorted(set(old) | set(hist), key=lambda s: -abs((hist[s] - old.get(s, 0)) * s))
        for s in sizes[:12]:
            print(f"  {s:7d}-byte chunks: {old.get(s, 0):8d} -> {hist[s]:8d} "
                  f"({(hist[s] - old.get(s, 0)) * s / 1024:+.0f} KiB)")
    if a.peek:
        peek(mem, lo, a.peek)


if __name__ == "__main__":
    sys.exit(main())
