#!/usr/bin/env python3
"""Cost of HTTP inside TLS under `runwarden run` (issue #12's goal: <= 3% on a 1,000-request
loopback HTTPS loop): a keep-alive client against a threaded Python TLS server on 127.0.77.1,
bare and under `run` (observe, no policy), alternated round by round.

Clients (--client): `python` (http.client over OpenSSL: every request passes the
SSL_write/SSL_read uprobes) and `gnutls` (bench/tls_gnutls_client.c over libgnutls.so.30: the
gnutls_record_send/gnutls_record_recv uprobes, as apt and git's libcurl-gnutls). Work (--work):
`loop` (N requests of a 2-byte body: the per-request cost), `down` and `up` (one GET, one POST
of --mb megabytes: the throughput, where every read or write call of a body passes a probe that
only looks at its first 8 bytes).

    bench/tls_loop.py [--client python|gnutls] [--work loop|down|up] [--requests 1000]
                      [--mb 256] [--rounds 5] [--rw build/runwarden ...] [--capture LEVEL]
                      [--addr 127.0.77.1]

--rw given more than once runs each binary in every round, after the same bare run, in turns
(A B, then B A): before and after a change interleaved, so the machine's load moves them alike.

--capture summary|details|full runs under a policy whose `capture:` is that level (at details
and full every request's headers, at full its bodies, streamed by the kernel and written; the
lines are checked to have them); without it, no policy.

Prints the medians bare and under run of the wall time and of the client's CPU time (user +
system, where the traps land), measured inside the client (start-up and the run's arming left
out), and their ratios; for down/up the wall time as MB/s. Resident copies of the kernel side
(`runwarden kernel status`) keep their uprobes attached when idle: the "bare" runs pay their
traps too, and the count is printed.
"""
import argparse
import http.server
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDR, PORT = "127.0.77.1", 8443
CHUNK = 1 << 20

CLIENT = r"""
import http.client, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.check_hostname = False
c = http.client.HTTPSConnection(sys.argv[2], int(sys.argv[3]), context=ctx)
work, n = sys.argv[4], int(sys.argv[5])
c.request("GET", "/warm"); c.getresponse().read()
t, cpu = time.perf_counter(), time.process_time()
if work == "loop":
    for i in range(n):
        c.request("GET", f"/r/{i}")
        c.getresponse().read()
elif work == "down":
    c.request("GET", f"/big/{n}")
    r = c.getresponse()
    while r.read(1 << 20):
        pass
else:
    block = b"x" * (1 << 20)
    def body():
        for off in range(0, n, len(block)):
            yield block[:min(len(block), n - off)]
    c.request("POST", "/up", body=body(), headers={"Content-Length": str(n)})
    c.getresponse().read()
print(time.perf_counter() - t, time.process_time() - cpu)
"""


def certs(d):
    key, crt = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days",
                    "1", "-subj", "/CN=bench.test"], check=True, capture_output=True)
    return crt, key


def server(crt, key, addr):
    block = b"y" * CHUNK

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else each response waits for a delayed ACK (40 ms)

        def do_GET(self):
            n = int(self.path[5:]) if self.path.startswith("/big/") else 2
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            if n == 2:
                self.wfile.write(b"ok")
                return
            for off in range(0, n, CHUNK):
                self.wfile.write(block[:min(CHUNK, n - off)])

        def do_POST(self):
            left = int(self.headers["Content-Length"])
            while left > 0:
                got = self.rfile.read(min(CHUNK, left))
                if not got:
                    break
                left -= len(got)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    s = http.server.ThreadingHTTPServer((addr, PORT), H)
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


def gnutls_client(d):
    exe = os.path.join(d, "tls_gnutls_client")
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe,
                    os.path.join(ROOT, "bench", "tls_gnutls_client.c"), "-lgnutls"], check=True)
    return [exe]


def resident_copies(rw):
    p = subprocess.run([rw, "kernel", "status"], capture_output=True, text=True)
    return sum(1 for line in p.stdout.splitlines() if line.startswith("slot "))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=("python", "gnutls"), default="python")
    ap.add_argument("--work", choices=("loop", "down", "up"), default="loop")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rw", action="append",
                    help="runwarden binary (default build/runwarden); repeat to interleave")
    ap.add_argument("--capture", choices=["summary", "details", "full"])
    ap.add_argument("--addr", default=ADDR, help="loopback address of the server")
    a = ap.parse_args()
    rws = a.rw or [os.path.join(ROOT, "build", "runwarden")]
    n = a.requests if a.work == "loop" else a.mb << 20
    with tempfile.TemporaryDirectory() as d:
        crt, _ = certs(d)
        srv = server(crt, os.path.join(d, "k.pem"), a.addr)
        if a.client == "gnutls":
            cmd = gnutls_client(d)
        else:
            client = os.path.join(d, "client.py")
            with open(client, "w") as f:
                f.write(CLIENT)
            cmd = ["/usr/bin/python3", client]
        cmd += [crt, a.addr, str(PORT), a.work, str(n)]
        opts = []
        if a.capture:
            pol = os.path.join(d, "policy.yaml")
            with open(pol, "w") as f:
                f.write(f"version: 1\nmode: observe\ncapture: {a.capture}\n")
            opts = ["--policy", pol]
        bare, under = [], {rw: [] for rw in rws}
        for r in range(a.rounds):
            p = subprocess.run(cmd, check=True, capture_output=True, text=True)
            bare.append([float(x) for x in p.stdout.split()])
            for k, rw in (enumerate(rws) if r % 2 == 0 else reversed(list(enumerate(rws)))):
                out = os.path.join(d, f"out{r}.{k}")
                p = subprocess.run([rw, "run", "--out", out, "--no-sign", *opts, "--", *cmd],
                                   check=True, capture_output=True, text=True)
                under[rw].append([float(x) for x in p.stdout.split()])
                check_lines(a, out)
        srv.shutdown()
        copies = resident_copies(rws[0])
    what = (f"{a.requests} HTTPS requests, keep-alive" if a.work == "loop" else
            f"{'download' if a.work == 'down' else 'upload'} of {a.mb} MB")
    print(f"{a.client} client, {what}, median of {a.rounds}, {copies} resident copies:")
    for rw in rws:
        if len(rws) > 1:
            print(f" {rw}:")
        report(a, bare, under[rw])


def check_lines(a, out):
    """The run saw every request (else the probes were not on the client's path)."""
    with open(os.path.join(out, "events.ndjson")) as f:
        mark = (f'"capture":"{a.capture}"' if a.capture in ("details", "full")
                else '"decoded":true')
        lines = sum(1 for l in f if '"kind":"http"' in l and mark in l)
    want = a.requests + 1 if a.work == "loop" else 2
    if lines < want:
        sys.exit(f"only {lines} http lines for {want} requests")


def report(a, bare, under):
    wb, wu = (statistics.median(x[0] for x in v) for v in (bare, under))
    cb, cu = (statistics.median(x[1] for x in v) for v in (bare, under))
    if a.work == "loop":
        print(f"  wall: bare {wb * 1e3:.1f} ms ({wb / a.requests * 1e6:.0f} us/request), "
              f"under run {wu * 1e3:.1f} ms ({wu / a.requests * 1e6:.0f} us/request): "
              f"x{wu / wb:.3f} ({(wu / wb - 1) * 100:+.1f}%)")
    else:
        print(f"  throughput: bare {a.mb / wb:.0f} MB/s, under run {a.mb / wu:.0f} MB/s: "
              f"x{wb / wu:.3f} of bare ({(wb / wu - 1) * 100:+.1f}%)")
    print(f"  client CPU: bare {cb * 1e3:.1f} ms, under run {cu * 1e3:.1f} ms: "
          f"x{cu / cb:.3f} ({(cu / cb - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
