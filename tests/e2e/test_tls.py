"""The name a connection really asks for (issue #12): the TLS ClientHello's SNI and ALPN and the
HTTP request's Host, read in the kernel from a TCP connection's first data segment, recorded as
`conn_name`, and in enforce mode refused when the address was allowed for another name (domain
fronting, a shared address): the server never sees the ClientHello or the request.

Real clients (curl, Python's urllib and ssl) against real servers on loopback: a TLS server in
Python with a certificate from a CA this test makes with openssl, a plain HTTP server, and a
dnsmasq that names them under .test. Hostile ClientHellos are sent on the wire by a Python job.
Nothing leaves loopback.
"""
import http.server
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from rwtest import RW, Dnsmasq, Run, RwTestCase

DNS = "127.0.66.53"
SRV = "127.0.66.1"      # allowed through the name good.test only (a pin)
ADDR = "127.0.66.2"     # allowed by an `ip:` entry
TLS_PORT, HTTP_PORT = 8443, 8080
PY = "/usr/bin/python3"
FAIL_WITHIN = 10  # seconds: a refused connection must fail at once, not after retransmissions

RESOLV = r"""set -e
mount --make-rprivate /
mount --bind "$RW_RESOLV" /etc/resolv.conf
exec "$@"
"""


def make_ca(root, names=("good.test", "evil.test", "other.test")):
    """A CA and a server certificate for these names (good.test, evil.test and other.test
    unless told), with openssl."""
    def ossl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True)
    ca_key, ca = os.path.join(root, "ca.key"), os.path.join(root, "ca.pem")
    key, csr, crt = (os.path.join(root, n) for n in ("srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(root, "ext.cnf")
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=runwarden test CA")
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", f"/CN={names[0]}")
    ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key



# node's https.get of good.test's /node, trusting the test CA ($CA).
NODE_GET = ("const https=require('https'),fs=require('fs');"
            "https.get({host:'good.test',port:8443,path:'/node',"
            "ca:fs.readFileSync(process.env.CA)},r=>{console.log(r.statusCode);r.resume()})")


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class _TlsServer(_QuietServer):
    """The handshake in the handler's thread: a client that never sends its ClientHello must
    not hold the accept loop."""
    ctx = None

    def get_request(self):
        s, a = self.socket.accept()
        s.settimeout(10)
        return self.ctx.wrap_socket(s, server_side=True, do_handshake_on_connect=False), a

    def finish_request(self, request, client_address):
        try:
            request.do_handshake()
        except (OSError, ssl.SSLError):
            return
        super().finish_request(request, client_address)


def serve(addr, port, handler, ctx=None):
    """A threaded HTTP server on addr:port, over TLS with ctx (else plain), serving at once;
    stop it with shutdown() and server_close()."""
    if ctx:
        srv = type("Tls", (_TlsServer,), {"ctx": ctx})((addr, port), handler)
    else:
        srv = _QuietServer((addr, port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv

class Servers:
    """HTTPS and HTTP on one loopback address, recording every SNI a handshake carried and
    every request's Host."""

    def __init__(self, addr, crt, key):
        self.snis, self.hosts, self.paths = [], [], []
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                me.hosts.append(self.headers.get("Host"))
                me.paths.append(self.path)
                body = b"hello\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *a):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.sni_callback = lambda sock, name, c: me.snis.append(name)

        self.tls = serve(addr, TLS_PORT, Handler, ctx)
        self.http = serve(addr, HTTP_PORT, Handler)

    def stop(self):
        for s in (self.tls, self.http):
            s.shutdown()
            s.server_close()


class TlsNames(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="rw-tls-")
        cls.ca, crt, key = make_ca(cls.root)
        cls.srv = Servers(SRV, crt, key)
        cls.addr_srv = Servers(ADDR, crt, key)
        cls.dns = Dnsmasq(DNS, records=[("good.test", SRV), ("evil.test", SRV),
                                        ("other.test", ADDR)])
        cls.resolv = os.path.join(cls.root, "resolv.conf")
        with open(cls.resolv, "w") as f:
            f.write(f"nameserver {DNS}\n")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.addr_srv.stop()
        cls.dns.stop()
        shutil.rmtree(cls.root, True)

    def setUp(self):
        super().setUp()
        self.srv.snis.clear()
        self.srv.hosts.clear()
        self.srv.paths.clear()
        self.addr_srv.snis.clear()
        self.addr_srv.hosts.clear()

    def policy(self, mode):
        path = os.path.join(self.tmp, "policy.yaml")
        with open(path, "w") as f:
            f.write(f"version: 1\nmode: {mode}\nallow:\n"
                    f"  - host: good.test\n    ports: [{TLS_PORT}, {HTTP_PORT}]\n"
                    f"  - ip: {ADDR}\n    ports: [{TLS_PORT}]\n"
                    f"  - ip: {DNS}\n"
                    f"dns:\n  upstream: {DNS}\n"
                    # test_http_inside_tls sends a GitHub-shaped token in a query to good.test
                    f"secrets:\n  allow:\n    - format: github\n      to: [good.test]\n")
        return path

    def job(self, script, mode="enforce", tag="out", rw_args=(), env=None):
        """Runs `sh -c script` under the policy; returns (Run, seconds)."""
        out = os.path.join(self.tmp, tag)
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", RESOLV, "sh",
                RW, "run", "--out", out, "--no-sign", "--policy", self.policy(mode),
                "--mode", mode, *rw_args, "--", "sh", "-c", script]
        env = dict(os.environ, RW_RESOLV=self.resolv, CA=self.ca, **(env or {}))
        t0 = time.time()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
        return Run(p.returncode, p.stderr, out, p.stdout), time.time() - t0

    def names(self, run, **match):
        return [e for e in run.of("conn_name", **match)]

    # ------------------------------------------------------------ curl

    def test_curl_fronting_refused_in_enforce(self):
        """curl to good.test (allowed) and, on the same address, with SNI evil.test
        (--connect-to: curl connects to good.test's address and asks for evil.test)."""
        run, took = self.job(
            'curl -sS --cacert "$CA" -o /dev/null https://good.test:8443/ok && echo GOOD; '
            'curl -sS --max-time 30 --cacert "$CA" -o /dev/null '
            '--connect-to evil.test:8443:good.test:8443 https://evil.test:8443/front '
            '&& echo FRONTED; echo curl=$?')
        self.assertIn("GOOD", run.stdout, run.stderr)
        self.assertNotIn("FRONTED", run.stdout)
        self.assertLess(took, FAIL_WITHIN + 5, "a refused connection must fail at once")
        self.assertNotIn("evil.test", self.srv.snis, "the server saw the fronted ClientHello")
        self.assertIn("good.test", self.srv.snis)
        good = self.names(run, sni="good.test")
        self.assertTrue(good, run.events)
        self.assertEqual(good[0]["verdict"], "allow")
        self.assertEqual(good[0]["app"], "tls")
        self.assertIn("http/1.1", good[0]["alpn"])
        self.assertEqual(good[0]["daddr"], SRV)
        self.assertEqual(good[0]["dport"], TLS_PORT)
        self.assertTrue(good[0]["exe"].endswith("/curl"), good[0])
        bad = self.names(run, sni="evil.test")
        self.assertEqual(len(bad), 1, run.events)
        self.assertEqual(bad[0]["verdict"], "deny")
        self.assertEqual(bad[0]["reason"], "sni_mismatch")
        self.assertIs(bad[0]["reset"], True)
        self.assertNotEqual(run.rc, 0, "a refusal fails the run in enforce mode")
        with open(os.path.join(run.outdir, "summary.json")) as f:
            summary = json.load(f)
        self.assertTrue(any(v["kind"] == "conn_name" and v["verdict"] == "deny" and
                            v["name"] == "evil.test" and v["reason"] == "sni_mismatch"
                            for v in summary["violations"]), summary["violations"])
        report = subprocess.run([RW, "report", run.outdir], capture_output=True, text=True)
        self.assertIn(f"tls evil.test on {SRV}:{TLS_PORT} (sni_mismatch)", report.stdout)
        run.verify_chain()

    def test_curl_fronting_would_deny_in_observe(self):
        run, _ = self.job(
            'curl -sS --cacert "$CA" -o /dev/null '
            '--connect-to evil.test:8443:good.test:8443 https://evil.test:8443/front '
            '&& echo FRONTED', mode="observe")
        self.assertIn("FRONTED", run.stdout, run.stderr)
        self.assertIn("evil.test", self.srv.snis)
        bad = self.names(run, sni="evil.test")
        self.assertEqual(len(bad), 1, run.events)
        self.assertEqual(bad[0]["verdict"], "audit")
        self.assertEqual(bad[0]["reason"], "sni_mismatch")
        self.assertNotIn("reset", bad[0])

    def test_ip_entry_trusts_the_address(self):
        """An `ip:` entry allows the address whatever name the connection sends: recorded,
        not judged (docs/policy.md)."""
        run, _ = self.job(
            f'curl -sS --cacert "$CA" -o /dev/null --resolve evil.test:8443:{ADDR} '
            'https://evil.test:8443/ && echo OK')
        self.assertIn("OK", run.stdout, run.stderr)
        rec = self.names(run, sni="evil.test")
        self.assertEqual(len(rec), 1, run.events)
        self.assertEqual(rec[0]["verdict"], "allow")
        self.assertIs(rec[0]["address_entry"], True)
        self.assertEqual(run.rc, 0, run.stderr)

    # ------------------------------------------------------------ Python

    def test_python_urllib_and_plain_http_host(self):
        """urllib over TLS to the allowed name; plain HTTP with the allowed name, then with
        a Host naming another site on the same address."""
        script = (
            "import ssl, sys, urllib.request, os\n"
            "ctx = ssl.create_default_context(cafile=os.environ['CA'])\n"
            "print(urllib.request.urlopen('https://good.test:8443/u', context=ctx).status)\n"
            "print(urllib.request.urlopen('http://good.test:8080/plain').status)\n"
            "r = urllib.request.Request('http://good.test:8080/front',"
            " headers={'Host': 'evil.test'})\n"
            "try:\n"
            "    urllib.request.urlopen(r, timeout=30)\n"
            "    print('FRONTED')\n"
            "except Exception as e:\n"
            "    print('refused', type(e).__name__)\n")
        path = os.path.join(self.tmp, "client.py")
        with open(path, "w") as f:
            f.write(script)
        run, took = self.job(f"{PY} {path}")
        self.assertIn("200\n200\n", run.stdout, run.stderr)
        self.assertIn("refused", run.stdout)
        self.assertLess(took, FAIL_WITHIN + 5)
        self.assertNotIn("evil.test", self.srv.hosts, "the server got the fronted request")
        tls = self.names(run, sni="good.test")
        self.assertEqual(tls[0]["verdict"], "allow", tls)
        self.assertTrue(tls[0]["exe"].startswith("/usr/bin/python3"), tls[0])
        plain = self.names(run, app="http", host="good.test")
        self.assertEqual(len(plain), 1, run.events)
        self.assertEqual(plain[0]["method"], "GET")
        self.assertEqual(plain[0]["path"], "/plain")
        bad = self.names(run, app="http", host="evil.test")
        self.assertEqual(len(bad), 1, run.events)
        self.assertEqual(bad[0]["verdict"], "deny")
        self.assertEqual(bad[0]["reason"], "host_mismatch")
        self.assertEqual(bad[0]["path"], "/front")

    def test_plain_http_keep_alive_and_pipelining(self):
        """A server routes each request on a kept-alive connection by its own Host: the second
        request, naming evil.test after an allowed first one, is judged and refused; so is a
        segment carrying two pipelined requests."""
        script = (
            "import http.client, socket\n"
            "c = http.client.HTTPConnection('good.test', 8080, timeout=10)\n"
            "c.request('GET', '/first'); r = c.getresponse(); r.read(); print('first', r.status)\n"
            "try:\n"
            "    c.putrequest('GET', '/second', skip_host=True)\n"
            "    c.putheader('Host', 'evil.test'); c.endheaders()\n"
            "    print('second', c.getresponse().status)\n"
            "except OSError as e:\n"
            "    print('second refused', type(e).__name__)\n"
            "s = socket.create_connection(('good.test', 8080), timeout=10)\n"
            "s.sendall(b'GET /p1 HTTP/1.1\\r\\nHost: good.test\\r\\n\\r\\n'\n"
            "          b'GET /p2 HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n')\n"
            "try:\n"
            "    print('pipelined', s.recv(100)[:12])\n"
            "except OSError as e:\n"
            "    print('pipelined refused', type(e).__name__)\n")
        path = os.path.join(self.tmp, "ka.py")
        with open(path, "w") as f:
            f.write(script)
        run, took = self.job(f"{PY} {path}")
        self.assertIn("first 200", run.stdout, run.stderr)
        self.assertIn("second refused", run.stdout)
        self.assertIn("pipelined refused", run.stdout)
        self.assertLess(took, FAIL_WITHIN + 5)
        self.assertNotIn("evil.test", self.srv.hosts)
        self.assertEqual(self.srv.hosts, ["good.test:8080"])  # the first request only
        second = self.names(run, app="http", host="evil.test")
        self.assertEqual([(e["path"], e["verdict"], e["reason"]) for e in second],
                         [("/second", "deny", "host_mismatch")], run.events)
        piped = self.names(run, app="http", path="/p1")
        self.assertEqual([(e["verdict"], e["reason"], e.get("unreadable")) for e in piped],
                         [("deny", "name_unreadable", "malformed")], run.events)

    # ------------------------------------------------------------ HTTP inside TLS

    def test_http_inside_tls(self):
        """One `http` line per request made through OpenSSL (curl: SSL_write/SSL_read; Python
        and node: the _ex forms), from the plaintext: method, authority, path (a token in the
        query redacted), status, body sizes."""
        token = "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345"
        py = ("import ssl,urllib.request,os; c=ssl.create_default_context(cafile=os.environ['CA']);"
              "r=urllib.request.Request('https://good.test:8443/upload', data=b'x'*100);"
              "print(urllib.request.urlopen(r, context=c).status)")
        path = os.path.join(self.tmp, "c.py")
        with open(path, "w") as f:
            f.write(py)
        npath = os.path.join(self.tmp, "c.js")
        with open(npath, "w") as f:
            f.write(NODE_GET)
        run, _ = self.job(
            f'curl -sS --cacert "$CA" -o /dev/null "https://good.test:8443/ok?token={token}" '
            f'&& {PY} {path} && node {npath}')
        self.assertEqual(run.rc, 0, run.stderr)
        self.assertNotIn(token, "\n".join(l.decode() for l in run.lines))
        lines = run.of("http")
        by_path = {e["path"].split("?")[0]: e for e in lines if e.get("path")}
        self.assertEqual(set(by_path), {"/ok", "/upload", "/node"}, lines)
        get = by_path["/ok"]
        self.assertTrue(get["exe"].endswith("/curl"), get)
        self.assertEqual((get["method"], get["authority"], get["status"]),
                         ("GET", "good.test", 200))
        self.assertIn("[redacted:", get["path"])
        self.assertEqual(get["response_body_bytes"], 6)
        self.assertIs(get["decoded"], True)
        post = by_path["/upload"]
        self.assertTrue(post["exe"].startswith("/usr/bin/python3"), post)
        self.assertEqual((post["method"], post["status"], post["request_body_bytes"]),
                         ("POST", 200, 100))
        self.assertTrue(by_path["/node"]["exe"].endswith("node"), by_path["/node"])
        # node writes its request before the handshake is done and OpenSSL has it call
        # SSL_write again: one request, one line
        self.assertEqual([e["status"] for e in lines if e.get("path") == "/node"], [200], lines)
        self.assertFalse([e for e in lines if e.get("content_seen") is False], lines)

    def test_perf_event_uprobes_before_uprobe_multi(self):
        """Kernels before 6.6 have no uprobe_multi links: the probes are then attached through
        perf events (RUNWARDEN_NO_UPROBE_MULTI makes a private copy do so here). The same
        requests are seen, through OpenSSL (curl) and node's own OpenSSL."""
        npath = os.path.join(self.tmp, "c.js")
        with open(npath, "w") as f:
            f.write(NODE_GET)
        run, _ = self.job(f'curl -sS --cacert "$CA" -o /dev/null https://good.test:8443/ok '
                          f'&& node {npath}', rw_args=("--kernel", "private"),
                          env={"RUNWARDEN_NO_UPROBE_MULTI": "1"})
        self.assertEqual(run.rc, 0, run.stderr)
        self.assertEqual(run.summary["kernel_side"]["copy"], "private")
        got = sorted((e["method"], e["path"], e["status"]) for e in run.of("http"))
        self.assertEqual(got, [("GET", "/node", 200), ("GET", "/ok", 200)], run.of("http"))

    @unittest.skipUnless(shutil.which("docker"), "no docker client (a Go program)")
    def test_content_not_seen_is_marked(self):
        """The docker client is a Go program: its crypto/tls is neither OpenSSL nor GnuTLS and
        passes no probe. The connection's name is still read from the ClientHello, and an
        `http` line says its content was not seen."""
        docker = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"
        run, _ = self.job(f'DOCKER_CONFIG={self.tmp}/docker {docker} -H tcp://good.test:8443 '
                          '--tlsverify --tlscacert "$CA" version >/dev/null 2>&1; echo DONE')
        self.assertIn("DONE", run.stdout, run.stderr)
        self.assertIn("/_ping", " ".join(self.srv.paths), "the client made no request")
        self.assertTrue(self.names(run, sni="good.test"), run.events)
        unseen = [e for e in run.of("http") if e.get("content_seen") is False]
        self.assertTrue(unseen, run.of("http"))
        for e in unseen:
            self.assertEqual((e["authority"], e["library"], e["decoded"]),
                             ("good.test", None, False), e)
            self.assertTrue(e["exe"].endswith("/docker"), e)
        self.assertFalse([e for e in run.of("http") if e.get("decoded")])

    # ------------------------------------------------------------ hostile hellos

    def test_hostile_client_hellos(self):
        """ClientHellos a parser could be fooled by, sent raw to the allowed address: each is
        refused (fail closed) or, without any name, judged by address; the kernel neither
        crashes nor lets a hidden name through."""
        path = os.path.join(self.tmp, "hostile.py")
        with open(path, "w") as f:
            f.write(HOSTILE)
        run, _ = self.job(f"{PY} {path} good.test {TLS_PORT} {HTTP_PORT}")
        out = dict(l.split("=", 1) for l in run.stdout.splitlines() if "=" in l)
        self.assertEqual(set(out), set(CASES), run.stdout + run.stderr)
        recs = {}
        for e in run.of("conn_name"):
            recs.setdefault(e["sport"], e)
        by_case = {c: recs.get(int(out[c])) for c in CASES}
        for case, (verdict, reason) in CASES.items():
            rec = by_case[case]
            self.assertIsNotNone(rec, f"{case}: no record ({run.events})")
            self.assertEqual((rec["verdict"], rec["reason"]), (verdict, reason), (case, rec))
        self.assertNotIn("evil.test", self.srv.snis)
        self.assertNotIn("evil.test", self.srv.hosts)


# What each hostile hello gets: (verdict, reason).
CASES = {
    "good": ("allow", None),
    "dup_sni": ("deny", "name_unreadable"),          # good.test then evil.test
    "bad_bytes": ("deny", "name_unreadable"),        # a NUL and a space in the name
    "cut": ("deny", "name_unreadable"),              # the record says more than is sent
    "sni_late": ("deny", "name_unreadable"),         # SNI after 70 padding extensions
    "lengths": ("deny", "name_unreadable"),          # extensions longer than the hello
    "no_sni": ("allow", None),                       # judged by its address alone
    "upper": ("allow", None),                        # GOOD.TEST. is good.test
    "evil": ("deny", "sni_mismatch"),
    # split across TCP segments (the server joins them): the first is judged as it is
    "split_tls": ("deny", "name_unreadable"),        # 3 bytes, then the rest naming evil.test
    "split_http": ("deny", "name_unreadable"),       # "G", then "ET / ... Host: evil.test"
    "crlf_http": ("deny", "host_mismatch"),          # an empty line first (servers skip it)
    "long_method": ("deny", "name_unreadable"),      # a 20-letter method
}

HOSTILE = r'''
import socket, struct, sys, time
host, port, http_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def ext(t, body):
    return struct.pack("!HH", t, len(body)) + body

def sni(name):
    n = name.encode("latin-1")
    entry = b"\0" + struct.pack("!H", len(n)) + n
    return ext(0, struct.pack("!H", len(entry)) + entry)

def hello(exts, claim=None, hello_claim=None):
    body = b"\x03\x03" + b"\x11" * 32 + b"\0" + struct.pack("!H", 2) + b"\x13\x01" + b"\x01\0"
    e = b"".join(exts)
    body += struct.pack("!H", len(e) if hello_claim is None else hello_claim) + e
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs) if claim is None else claim) + hs

alpn = ext(16, struct.pack("!H", 9) + b"\x08http/1.1")
cases = {
    "good": hello([sni("good.test"), alpn]),
    "dup_sni": hello([sni("good.test"), sni("evil.test")]),
    "bad_bytes": hello([sni("good.test\0 evil.test")]),
    "cut": hello([sni("good.test")], claim=3000)[:60],
    "sni_late": hello([ext(0xfe00 + i, b"") for i in range(70)] + [sni("evil.test")]),
    "lengths": hello([sni("good.test")], hello_claim=900),
    "no_sni": hello([alpn]),
    "upper": hello([sni("GOOD.TEST.")]),
    "evil": hello([sni("evil.test")]),
}
evil = hello([sni("evil.test")])
req = b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"
split = {
    "split_tls": ([evil[:3], evil[3:]], port),
    "split_http": ([req[:1], req[1:]], http_port),
    "crlf_http": ([b"\r\n" + req], http_port),
    "long_method": ([b"ABCDEFGHIJKLMNOPQRST" + req[3:]], http_port),
}
cases = {k: ([v], port) for k, v in cases.items()}
cases.update(split)
for name, (chunks, p) in cases.items():
    s = socket.create_connection((host, p), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print(f"{name}={s.getsockname()[1]}", flush=True)
    try:
        for i, c in enumerate(chunks):
            if i:
                time.sleep(0.2)  # its own segment
            s.sendall(c)
        s.settimeout(2)
        s.recv(100)
    except OSError:
        pass
    s.close()
'''

if __name__ == "__main__":
    unittest.main()
