#!/usr/bin/env python3
"""What scanning for secrets costs a sender (issue #12, secrets leaving): a client writes
--mib MiB in --chunk-byte writes to a sink on 127.0.77.2, over TLS (every SSL_write is
scanned by the uprobe) and over plain TCP (every segment is scanned at the egress hook), bare
and under `runwarden run` (observe, no policy) with --secrets secret variables in its
environment, alternated, in the same run.

    bench/secrets.py [--mib 64] [--chunk 16384] [--secrets 20] [--rounds 5] [--rw build/runwarden]
                     [--prog-cost]

Prints per transport the median time of the writes (measured inside the client, so start-up
and arming are left out) bare and under run, the ratio, and the added cost per KiB sent.

--prog-cost: instead, the CPU time of the program that scans (rw_ssl_write for TLS,
rw_skb_egress for plain TCP) per run, from the kernel's own BPF statistics
(kernel.bpf_stats_enabled, switched on for the measurement and off after it), under
`run --kernel private` (bpftool reads the copy the job runs under). A busy machine moves the
end-to-end times far more than the scan costs; this figure moves much less. Needs root and
bpftool.
"""
import argparse
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDR, TLS_PORT, TCP_PORT = "127.0.77.2", 8444, 8081

CLIENT = r"""
import socket, ssl, sys, time
tls, addr, port, total, chunk = sys.argv[1] == "tls", sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.create_connection((addr, port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
if tls:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s, server_hostname="bench.test")
head = b"POST /sink HTTP/1.1\r\nHost: bench.test\r\nContent-Length: %d\r\n\r\n" % total
buf = (b"lorem ipsum dolor sit amet, consectetur adipiscing elit; " * (chunk // 56 + 1))[:chunk]
s.sendall(head)
t = time.perf_counter()
for _ in range(total // chunk):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
s.recv(1)
print(time.perf_counter() - t)
"""


def certs(d):
    key, crt = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days",
                    "1", "-subj", "/CN=bench.test"], check=True, capture_output=True)
    return crt, key


def sink(port, ctx):
    """Reads every connection to its end, then answers one byte."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ADDR, port))
    ls.listen(16)

    def one(c):
        try:
            if ctx:
                c = ctx.wrap_socket(c, server_side=True)
            while c.recv(1 << 20):
                pass
            c.sendall(b"k")
        except OSError:
            pass
        finally:
            c.close()

    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=one, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def prog_cost(a, client, env, total):
    """Median ns per run of the scanning program, over a.rounds runs, per transport."""
    tmp = os.path.dirname(client)
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
    try:
        for proto, port, prog in (("tls", TLS_PORT, "rw_ssl_write"),
                                  ("tcp", TCP_PORT, "rw_skb_egress")):
            per, runs = [], 0
            for r in range(a.rounds):
                job = (f"{sys.executable} {client} {proto} {ADDR} {port} {total} {a.chunk} "
                       f">/dev/null && bpftool -j prog show name {prog}")
                out = os.path.join(tmp, f"cost-{proto}-{r}")
                p = subprocess.run([a.rw, "run", "--kernel", "private", "--quiet", "--no-sign",
                                    "--out", out, "--", "sh", "-c", job],
                                   capture_output=True, text=True, env=env, check=True)
                progs = []
                for line in p.stdout.splitlines():
                    if line.strip()[:1] in "[{":
                        d = json.loads(line)
                        progs += d if isinstance(d, list) else [d]
                mine = max(progs, key=lambda d: d["id"])  # the private copy: loaded last
                per.append(mine["run_time_ns"] / mine["run_cnt"])
                runs = mine["run_cnt"]
            print(f"{proto}: {a.mib} MiB in {a.chunk}-byte writes, {a.secrets} secrets: {prog} "
                  f"{statistics.median(per):.0f} ns a run ({runs} runs)")
    finally:
        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=16384)
    ap.add_argument("--secrets", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rw", default=os.path.join(ROOT, "build", "runwarden"))
    ap.add_argument("--prog-cost", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rw-bench-secrets-")
    crt, key = certs(tmp)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(crt, key)
    sink(TLS_PORT, sctx)
    sink(TCP_PORT, None)
    client = os.path.join(tmp, "client.py")
    with open(client, "w") as f:
        f.write(CLIENT)
    env = dict(os.environ)
    for i in range(a.secrets):
        env[f"BENCH_{i}_TOKEN"] = f"s3cr3t-{i:04d}-" + os.urandom(12).hex()
    total = a.mib << 20
    if a.prog_cost:
        prog_cost(a, client, env, total)
        return
    for proto, port in (("tls", TLS_PORT), ("tcp", TCP_PORT)):
        bare, under = [], []
        for r in range(a.rounds):
            argv = [sys.executable, client, proto, ADDR, str(port), str(total), str(a.chunk)]
            p = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
            bare.append(float(p.stdout.split()[-1]))
            out = os.path.join(tmp, f"out-{proto}-{r}")
            p = subprocess.run([a.rw, "run", "--quiet", "--no-sign", "--out", out, "--"] + argv,
                               capture_output=True, text=True, env=env, check=True)
            under.append(float(p.stdout.split()[-1]))
        b, u = statistics.median(bare), statistics.median(under)
        print(f"{proto}: {a.mib} MiB in {a.chunk}-byte writes, {a.secrets} secrets: bare "
              f"{b * 1e3:.1f} ms ({a.mib / b:.0f} MiB/s), run {u * 1e3:.1f} ms "
              f"({a.mib / u:.0f} MiB/s), ratio {u / b:.3f}, added "
              f"{(u - b) * 1e9 / (total / 1024):.0f} ns/KiB")


if __name__ == "__main__":
    main()
