#!/usr/bin/env python3
"""Per-request cost of HTTP inside TLS under `runwarden run` (issue #12's goal: <= 3% on a
1,000-request loopback HTTPS loop): a keep-alive client (Python http.client over OpenSSL, so
every request passes the SSL_write/SSL_read uprobes and is an `http` line) against a threaded
Python TLS server on 127.0.77.1, bare and under `run` (observe, no policy), alternated.

    bench/tls_loop.py [--requests 1000] [--rounds 5] [--rw build/runwarden] [--capture LEVEL]

--capture details|full runs under a policy whose `capture:` is that level (every request's
headers, and at full its bodies, streamed by the kernel and written), and checks each line has
them; without it, no policy (summary).

Prints the median wall time of the loop (measured inside the client, so start-up and the
run's arming are left out) bare and under run, and the ratio.
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

CLIENT = r"""
import http.client, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.check_hostname = False
c = http.client.HTTPSConnection(sys.argv[2], int(sys.argv[3]), context=ctx)
n = int(sys.argv[4])
c.request("GET", "/warm"); c.getresponse().read()
t = time.perf_counter()
for i in range(n):
    c.request("GET", f"/r/{i}")
    c.getresponse().read()
print(time.perf_counter() - t)
"""


def certs(d):
    key, crt = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days",
                    "1", "-subj", "/CN=bench.test"], check=True, capture_output=True)
    return crt, key


def server(crt, key, addr):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else each response waits for a delayed ACK (40 ms)

        def do_GET(self):
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rw", default=os.path.join(ROOT, "build", "runwarden"))
    ap.add_argument("--capture", choices=["summary", "details", "full"])
    ap.add_argument("--addr", default=ADDR, help="loopback address of the server")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        crt, _ = certs(d)
        srv = server(crt, os.path.join(d, "k.pem"), a.addr)
        client = os.path.join(d, "client.py")
        with open(client, "w") as f:
            f.write(CLIENT)
        cmd = ["/usr/bin/python3", client, crt, a.addr, str(PORT), str(a.requests)]
        opts = []
        if a.capture:
            pol = os.path.join(d, "policy.yaml")
            with open(pol, "w") as f:
                f.write(f"version: 1\nmode: observe\ncapture: {a.capture}\n")
            opts = ["--policy", pol]
        bare, under = [], []
        for r in range(a.rounds):
            bare.append(float(subprocess.run(cmd, check=True, capture_output=True,
                                             text=True).stdout))
            out = os.path.join(d, f"out{r}")
            p = subprocess.run([a.rw, "run", "--out", out, "--no-sign", *opts, "--", *cmd],
                               check=True, capture_output=True, text=True)
            under.append(float(p.stdout))
            want = '"kind":"http"'
            if a.capture in ("details", "full"):
                want = f'"capture":"{a.capture}"'
            with open(os.path.join(out, "events.ndjson")) as f:
                lines = sum(1 for l in f if want in l)
            if lines < a.requests:
                sys.exit(f"only {lines} http lines for {a.requests} requests")
        srv.shutdown()
    mb, mu = statistics.median(bare), statistics.median(under)
    print(f"{a.requests} HTTPS requests, keep-alive, capture {a.capture or 'summary'}, "
          f"median of {a.rounds}: "
          f"bare {mb * 1e3:.1f} ms ({mb / a.requests * 1e6:.0f} us/request), "
          f"under run {mu * 1e3:.1f} ms ({mu / a.requests * 1e6:.0f} us/request): "
          f"x{mu / mb:.3f} ({(mu / mb - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
