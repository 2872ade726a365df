#!/usr/bin/env python3
"""Where a TLS request's cost under `runwarden run` goes, per BPF program: one run of
bench/tls_loop.py's client (N keep-alive requests) under `run`, with the kernel's BPF run-time
statistics on (sysctl kernel.bpf_stats_enabled=1, which adds ~20-40 ns to every program run
while it is on, machine-wide: it is switched off again at once), and the change of each
program's run_cnt / run_time_ns (bpftool prog show) divided by the requests.

    bench/tls_probes.py [--client python|gnutls] [--requests 5000] [--rw build/runwarden]
                        [--private]

Every program on the machine is counted, the other resident copies' included (their probes
run for every process mapping the library: the scope check). The server runs in this process
(OpenSSL, out of the job's scope): its calls count too, about 150 ns each. --private runs with
`--kernel private` (a copy of its own, unloaded as `run` ends: the counts are the last seen
while it ran, polled every 0.2 s, so the last requests' may be missing).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tls_loop  # noqa: E402


def progs():
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True,
                         check=True).stdout
    return {p["id"]: (p.get("name", "?"), p.get("run_time_ns", 0), p.get("run_cnt", 0))
            for p in json.loads(out)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=("python", "gnutls"), default="python")
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--rw", default=os.path.join(tls_loop.ROOT, "build", "runwarden"))
    ap.add_argument("--private", action="store_true")
    a = ap.parse_args()
    n = a.requests
    with tempfile.TemporaryDirectory() as d:
        crt, key = tls_loop.certs(d)
        srv = tls_loop.server(crt, key, tls_loop.ADDR)
        if a.client == "gnutls":
            cmd = tls_loop.gnutls_client(d)
        else:
            client = os.path.join(d, "client.py")
            with open(client, "w") as f:
                f.write(tls_loop.CLIENT)
            cmd = ["/usr/bin/python3", client]
        cmd = [a.rw, "run", *(["--kernel", "private"] if a.private else []), "--out",
               os.path.join(d, "out"), "--no-sign", "--", *cmd, crt, tls_loop.ADDR,
               str(tls_loop.PORT), "loop", str(n)]
        subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=1"], check=True)
        try:
            before = progs()
            after = {}
            job = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            # A private copy is unloaded as `run` ends: its counts are the last ones seen.
            while job.poll() is None:
                after.update(progs())
                time.sleep(0.2)
            after.update(progs())
            out = job.stdout.read()
            if job.returncode:
                sys.exit(f"run exited {job.returncode}")
        finally:
            subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=0"], check=True)
        srv.shutdown()
    wall, cpu = (float(x) for x in out.split())
    print(f"{a.client} client, {n} requests under run: client CPU {cpu / n * 1e6:.1f} us/request")
    rows = []
    for i, (name, t, c) in after.items():
        _, t0, c0 = before.get(i, (name, 0, 0))
        if c > c0:
            rows.append((t - t0, c - c0, name, i))
    rows.sort(reverse=True)
    print(f"  {'program':28s} {'id':>7s} {'calls/req':>9s} {'ns/call':>8s} {'ns/req':>7s}")
    for dt, dc, name, i in rows:
        if dt / n < 5:
            break
        print(f"  {name:28s} {i:7d} {dc / n:9.2f} {dt / dc:8.0f} {dt / n:7.0f}")
    print(f"  all programs: {sum(r[0] for r in rows) / n:.0f} ns/request")


if __name__ == "__main__":
    main()
