"""What a job may ask of a host (issue #12): `methods:` and `paths:` on allow entries, judged by
the kernel for every HTTP/1.x request, plain (egress hook) and inside TLS (the SSL_write uprobe,
before OpenSSL encrypts a byte), with the request's Host judged inside TLS too (domain fronting
behind an allowed SNI). In enforce mode a refused request inside TLS kills its process before
the library writes it (the server receives nothing); plain HTTP is dropped and reset; in
observe mode both go through and are recorded.

Real clients (curl, Python's urllib and ssl, node's https) against real servers on loopback:
TLS and plain HTTP servers in Python with a certificate from a CA this test makes, and a
dnsmasq that names them under .test. Nothing leaves loopback.
"""
import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

from rwtest import RW, Dnsmasq, Run, RwTestCase, cgroup2_mount
from test_agent import Agent, Worker
from test_tls import RESOLV, make_ca, serve

DNS = "127.0.68.53"
SRV = "127.0.68.1"
H2 = "127.0.68.3"  # nghttpd: HTTP/2 over TLS (ALPN h2)
H2_PORT = 8443  # the port good.test's rules are for
TLS_PORT, HTTP_PORT = 8443, 8080
PY = "/usr/bin/python3"
KILLED = 137  # a shell's status for a child killed by SIGKILL

# good.test: GET/HEAD under two prefixes; other.test: any request; evil.test: not allowed
POLICY = """version: 1
mode: {mode}
allow:
  - host: good.test
    ports: [{tls}, {http}]
    methods: [GET, HEAD]
    paths: ["/allowed/", "/pub/"]
  - host: other.test
    ports: [{tls}, {http}]
  - ip: {dns}
  - ip: {h2}
    ports: [{h2port}]
dns:
  upstream: {dns}
"""


class Servers:
    """HTTPS and HTTP on one loopback address, recording every request line they read (raw,
    whatever the method) with its Host."""

    def __init__(self, addr, crt, key):
        self.seen = []
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def parse_request(self):
                ok = super().parse_request()
                me.seen.append((self.raw_requestline.decode("latin-1").rstrip("\r\n"),
                                self.headers.get("Host") if ok else None))
                return ok

            def do_GET(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                body = b"hello\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_DELETE = do_GET

            def do_HEAD(self):
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        ctx.set_alpn_protocols(["http/1.1"])

        self.tls = serve(addr, TLS_PORT, Handler, ctx)
        self.http = serve(addr, HTTP_PORT, Handler)

    def lines(self):
        return [line for line, _ in self.seen]

    def stop(self):
        for s in (self.tls, self.http):
            s.shutdown()
            s.server_close()


class HttpPolicy(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="rw-httppolicy-")
        cls.ca, crt, key = make_ca(cls.root)
        cls.srv = Servers(SRV, crt, key)
        cls.dns = Dnsmasq(DNS, records=[("good.test", SRV), ("other.test", SRV),
                                        ("evil.test", SRV)])
        cls.resolv = os.path.join(cls.root, "resolv.conf")
        with open(cls.resolv, "w") as f:
            f.write(f"nameserver {DNS}\n")
        docs = os.path.join(cls.root, "h2docs")
        os.mkdir(docs)
        with open(os.path.join(docs, "f"), "w") as f:
            f.write("h2\n")
        cls.h2 = subprocess.Popen(["nghttpd", "--address", H2, "-d", docs, str(H2_PORT), key,
                                   crt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        cls.h2.kill()
        cls.h2.wait()
        cls.srv.stop()
        cls.dns.stop()
        shutil.rmtree(cls.root, True)

    def setUp(self):
        super().setUp()
        self.srv.seen.clear()

    def job(self, script, mode="enforce", tag="out"):
        """Runs `sh -c script` under the policy; returns the Run."""
        policy = os.path.join(self.tmp, "policy.yaml")
        with open(policy, "w") as f:
            f.write(POLICY.format(mode=mode, tls=TLS_PORT, http=HTTP_PORT, dns=DNS, h2=H2,
                                  h2port=H2_PORT))
        out = os.path.join(self.tmp, tag)
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", RESOLV, "sh",
                RW, "run", "--out", out, "--no-sign", "--policy", policy,
                "--mode", mode, "--", "sh", "-c", script]
        env = dict(os.environ, RW_RESOLV=self.resolv, CA=self.ca)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)
        return Run(p.returncode, p.stderr, out, p.stdout)

    def script(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    @staticmethod
    def results(run):
        return dict(l.split("=", 1) for l in run.stdout.split() if "=" in l)

    @staticmethod
    def verdicts(run):
        return [(e["method"], e["authority"], e["path"], e["verdict"], e["reason"])
                for e in run.of("http_verdict")]

    def test_kernel_without_bpf_loop_refuses_to_enforce_methods(self):
        """Before 5.17 (forced with RUNWARDEN_NO_BPF_LOOP) the kernel cannot read requests:
        enforcing `methods:`/`paths:` is refused before the command runs, observe says so."""
        policy = os.path.join(self.tmp, "p.yaml")
        with open(policy, "w") as f:
            f.write(POLICY.format(mode="enforce", tls=TLS_PORT, http=HTTP_PORT, dns=DNS, h2=H2,
                                  h2port=H2_PORT))
        env = dict(os.environ, RUNWARDEN_NO_BPF_LOOP="1")
        marker = os.path.join(self.tmp, "ran")
        p = subprocess.run([RW, "run", "--out", os.path.join(self.tmp, "o1"), "--no-sign",
                            "--policy", policy, "--", "touch", marker],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("host good.test has methods/paths, which this kernel cannot judge",
                      p.stderr)
        self.assertFalse(os.path.exists(marker), "the command ran unfenced")
        p = subprocess.run([RW, "run", "--out", os.path.join(self.tmp, "o2"), "--no-sign",
                            "--policy", policy, "--mode", "observe", "--", "touch", marker],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("methods/paths are not judged", p.stderr)

    # ------------------------------------------------------------ curl, inside TLS

    def test_curl_enforce(self):
        """An allowed GET passes; a POST where only GET is allowed, a path outside the prefixes
        (plain, with dot segments, percent-encoded), a Host other than the SNI (fronting inside
        TLS) are each stopped before the server sees them; HTTP/2 offered to a host with rules
        is refused at the ClientHello; a host without rules takes any request."""
        c = 'curl -sS --http1.1 --cacert "$CA" -o /dev/null'
        run = self.job(
            f"{c} -w 'get=%{{http_code}}\\n' https://good.test:8443/allowed/a; "
            f"{c} -d secret=1 https://good.test:8443/allowed/post; echo post=$?; "
            f"{c} https://good.test:8443/secret; echo path=$?; "
            f"{c} --path-as-is https://good.test:8443/allowed/../secret; echo dots=$?; "
            f"{c} 'https://good.test:8443/allowed/%2e%2e/secret'; echo enc=$?; "
            f"{c} -H 'Host: evil.test' https://other.test:8443/front; echo front=$?; "
            f"{c} -X POST -H 'Host: good.test' https://other.test:8443/allowed/x; echo fpost=$?; "
            f"{c} -X POST -w 'free=%{{http_code}}\\n' https://other.test:8443/anything; "
            'curl -sS --cacert "$CA" -o /dev/null https://good.test:8443/allowed/h2; echo h2=$?')
        got = self.results(run)
        self.assertEqual(got.get("get"), "200", run.stdout + run.stderr)
        for k in ("post", "path", "dots", "enc", "front", "fpost"):
            self.assertEqual(got.get(k), str(KILLED), (k, run.stdout, run.stderr))
        self.assertEqual(got.get("free"), "200", run.stdout)
        self.assertNotEqual(got.get("h2"), "0", run.stdout)
        # the server read the allowed requests and nothing else
        self.assertEqual(sorted(self.srv.lines()),
                         ["GET /allowed/a HTTP/1.1", "POST /anything HTTP/1.1"],
                         self.srv.seen)
        want = [
            ("POST", "good.test", "/allowed/post", "deny", "method_not_allowed"),
            ("GET", "good.test", "/secret", "deny", "path_not_allowed"),
            ("GET", "good.test", "/allowed/../secret", "deny", "path_not_allowed"),
            ("GET", "good.test", "/allowed/%2e%2e/secret", "deny", "path_not_allowed"),
            ("GET", "evil.test", "/front", "deny", "host_mismatch"),
            ("POST", "good.test", "/allowed/x", "deny", "method_not_allowed"),
        ]
        self.assertEqual(self.verdicts(run), want, run.events)
        # a stopped request is no transaction: only what was sent has an `http` line
        self.assertEqual(sorted((e["method"], e["path"]) for e in run.of("http")
                                if e.get("content_seen") is not False),
                         [("GET", "/allowed/a"), ("POST", "/anything")], run.of("http"))
        for e in run.of("http_verdict"):
            self.assertIs(e["stopped"], True, e)
            self.assertIs(e["tls"], True, e)
            self.assertTrue(e["exe"].endswith("/curl"), e)
        h2 = run.of("conn_name", sni="good.test", reason="h2_unjudged")
        self.assertEqual(len(h2), 1, run.of("conn_name"))
        self.assertEqual(h2[0]["verdict"], "deny")
        self.assertIn("h2", h2[0]["alpn"])
        # the same story in summary.json, the report and the exit status
        self.assertNotEqual(run.rc, 0)
        with open(os.path.join(run.outdir, "summary.json")) as f:
            summary = json.load(f)
        rows = [(v["method"], v["authority"], v["path"], v["reason"])
                for v in summary["violations"] if v["kind"] == "http_verdict"]
        self.assertEqual(sorted(rows), sorted((m, a, p, r) for m, a, p, _, r in want))
        self.assertGreaterEqual(summary["denials"], len(want) + 1)
        report = subprocess.run([RW, "report", run.outdir], capture_output=True, text=True)
        self.assertIn("https POST good.test/allowed/post (method_not_allowed)", report.stdout)
        self.assertIn("https GET evil.test/front (host_mismatch)", report.stdout)
        self.assertIn("(h2_unjudged)", report.stdout)
        self.assertIn("method_not_allowed", run.stderr, "the terminal summary names it")
        run.verify_chain()

    def test_http2(self):
        """HTTP/2 (curl's default) to a host without rules is untouched, its preface included;
        offered to a host with rules it is refused at the ClientHello, even on an address an
        `ip:` entry trusts, since the kernel cannot read its requests."""
        c = f'curl -sS --cacert "$CA" -o /dev/null -w "%{{http_version}}\\n"'
        run = self.job(
            f"{c} --connect-to other.test:{H2_PORT}:{H2}:{H2_PORT} "
            f"https://other.test:{H2_PORT}/f | sed 's/^/free=/'; "
            f"{c} --connect-to good.test:{H2_PORT}:{H2}:{H2_PORT} "
            f"https://good.test:{H2_PORT}/f; echo ruled=$?")
        got = self.results(run)
        self.assertEqual(got.get("free"), "2", run.stdout + run.stderr)
        self.assertNotIn(got.get("ruled"), ("0", str(KILLED)), run.stdout)
        self.assertEqual(run.of("http_verdict"), [])
        ruled = run.of("conn_name", sni="good.test", dport=H2_PORT)
        self.assertEqual([(e["verdict"], e["reason"]) for e in ruled],
                         [("deny", "h2_unjudged")])
        self.assertIs(ruled[0]["address_entry"], True)

    def test_observe_records_would_deny(self):
        run = self.job(
            'curl -sS --http1.1 --cacert "$CA" -o /dev/null -d x=1 '
            "https://good.test:8443/allowed/post; echo post=$?; "
            'curl -sS --http1.1 --cacert "$CA" -o /dev/null -H "Host: evil.test" '
            "https://other.test:8443/front; echo front=$?", mode="observe")
        got = self.results(run)
        self.assertEqual((got.get("post"), got.get("front")), ("0", "0"), run.stderr)
        self.assertEqual(sorted(self.srv.lines()),
                         ["GET /front HTTP/1.1", "POST /allowed/post HTTP/1.1"])
        self.assertEqual(self.verdicts(run), [
            ("POST", "good.test", "/allowed/post", "audit", "method_not_allowed"),
            ("GET", "evil.test", "/front", "audit", "host_mismatch")], run.events)
        self.assertFalse([e for e in run.of("http_verdict") if "stopped" in e])
        self.assertEqual(run.rc, 0, run.stderr)
        # the observed run, replayed: what enforce would stop, before enforcing
        chk = subprocess.run([RW, "policy", "check", os.path.join(self.tmp, "policy.yaml"),
                              run.outdir], capture_output=True, text=True)
        self.assertEqual(chk.returncode, 1, chk.stdout + chk.stderr)
        self.assertIn("https POST good.test/allowed/post (method_not_allowed)", chk.stdout)

    # ------------------------------------------------------------ Python and node

    def test_python_and_node(self):
        py = self.script("u.py", (
            "import os, sys, ssl, urllib.request\n"
            "ctx = ssl.create_default_context(cafile=os.environ['CA'])\n"
            "data = sys.argv[2].encode() if len(sys.argv) > 2 and sys.argv[2] else None\n"
            "h = {'Cookie': 'c=' + 'x' * int(sys.argv[3])} if len(sys.argv) > 3 else {}\n"
            "r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=data,"
            " headers=h), context=ctx)\n"
            "print(r.status)\n"))
        js = self.script("n.js", (
            "const https = require('https'), fs = require('fs');\n"
            "const [method, path, big] = process.argv.slice(2);\n"
            "const headers = big ? {Authorization: 'Bearer ' + 'x'.repeat(+big)} : {};\n"
            "const r = https.request({host: 'good.test', port: 8443, method, path, headers,\n"
            "  ca: fs.readFileSync(process.env.CA)}, res => { console.log(res.statusCode);"
            " res.resume(); });\n"
            "r.end(method === 'POST' ? 'x=1' : undefined);\n"))
        run = self.job(
            f"{PY} {py} https://good.test:8443/pub/py; echo pyget=$?; "
            f"{PY} {py} https://good.test:8443/pub/py-post data=1; echo pypost=$?; "
            # a body written on its own that starts like a command line is a body
            f"{PY} {py} https://other.test:8443/script 'cd /tmp && ls -la'; echo pybody=$?; "
            f"node {js} GET /pub/node; echo nodeget=$?; "
            # heads longer than the kernel reads: a 3 KB token before node's Host, a 6 KB
            # cookie after urllib's
            f"node {js} GET /pub/node-jwt 3000; echo nodejwt=$?; "
            f"{PY} {py} https://good.test:8443/pub/py-cookie '' 6000; echo pycookie=$?; "
            f"node {js} PUT /pub/node-put; echo nodeput=$?; "
            f"node {js} GET /private; echo nodepath=$?")
        got = self.results(run)
        for k in ("pyget", "nodeget", "pybody", "nodejwt", "pycookie"):
            self.assertEqual(got.get(k), "0", (k, run.stdout, run.stderr))
        for k in ("pypost", "nodeput", "nodepath"):
            self.assertEqual(got.get(k), str(KILLED), (k, run.stdout, run.stderr))
        self.assertEqual(sorted(self.srv.lines()),
                         ["GET /pub/node HTTP/1.1", "GET /pub/node-jwt HTTP/1.1",
                          "GET /pub/py HTTP/1.1", "GET /pub/py-cookie HTTP/1.1",
                          "POST /script HTTP/1.1"])
        self.assertEqual(self.verdicts(run), [
            ("POST", "good.test", "/pub/py-post", "deny", "method_not_allowed"),
            ("PUT", "good.test", "/pub/node-put", "deny", "method_not_allowed"),
            ("GET", "good.test", "/private", "deny", "path_not_allowed")], run.events)
        exes = [e["exe"] for e in run.of("http_verdict")]
        self.assertTrue(exes[0].startswith("/usr/bin/python3"), exes)
        self.assertTrue(exes[1].endswith("node") and exes[2].endswith("node"), exes)

    # ------------------------------------------------------------ plain HTTP

    def test_plain_http(self):
        """The same rules at the egress hook: refused requests are dropped and reset, and a
        later request on a kept-alive connection is judged too."""
        py = self.script("p.py", (
            "import http.client, sys\n"
            "def ask(method, path, host='good.test', body=None):\n"
            "    c = http.client.HTTPConnection(host, 8080, timeout=10)\n"
            "    try:\n"
            "        c.request(method, path, body=body)\n"
            "        r = c.getresponse(); r.read(); return str(r.status)\n"
            "    except OSError as e:\n"
            "        return 'refused'\n"
            "print('get=' + ask('GET', '/allowed/p'))\n"
            "print('post=' + ask('POST', '/allowed/p', body=b'x=1'))\n"
            "print('path=' + ask('GET', '/etc/passwd'))\n"
            "print('dots=' + ask('GET', '/pub/%2E%2e/x'))\n"
            "print('free=' + ask('DELETE', '/x', host='other.test'))\n"
            "c = http.client.HTTPConnection('good.test', 8080, timeout=10)\n"
            "c.request('HEAD', '/pub/1'); r = c.getresponse(); r.read(); print('ka1=', r.status)\n"
            "try:\n"
            "    c.request('DELETE', '/pub/1'); print('ka2=' + str(c.getresponse().status))\n"
            "except OSError:\n"
            "    print('ka2=refused')\n"
            "import socket\n"
            "for name, raw in (('lower', b'post /allowed/x HTTP/1.1\\r\\nHost: good.test\\r\\n\\r\\n'),\n"
            "                  ('http09', b'GET /etc/passwd\\r\\n')):\n"
            "    s = socket.create_connection(('good.test', 8080), timeout=5)\n"
            "    s.sendall(raw)\n"
            "    try:\n"
            "        print(name + '=' + ('refused' if not s.recv(100) else 'answered'))\n"
            "    except OSError:\n"
            "        print(name + '=refused')\n"))
        run = self.job(f"{PY} {py}")
        got = self.results(run)
        self.assertEqual(got.get("get"), "200", run.stdout + run.stderr)
        self.assertEqual(got.get("free"), "200", run.stdout)
        for k in ("post", "path", "dots", "ka2", "lower", "http09"):
            self.assertEqual(got.get(k), "refused", (k, run.stdout))
        self.assertEqual(sorted(self.srv.lines()), [
            "DELETE /x HTTP/1.1", "GET /allowed/p HTTP/1.1", "HEAD /pub/1 HTTP/1.1"])
        bad = [(e["method"], e["path"], e["verdict"], e["reason"])
               for e in run.of("conn_name", app="http") if e["verdict"] != "allow"]
        self.assertEqual(bad, [("POST", "/allowed/p", "deny", "method_not_allowed"),
                               ("GET", "/etc/passwd", "deny", "path_not_allowed"),
                               ("GET", "/pub/%2E%2e/x", "deny", "path_not_allowed"),
                               ("DELETE", "/pub/1", "deny", "method_not_allowed"),
                               ("", "", "deny", "name_unreadable"),
                               ("GET", "/etc/passwd", "deny", "name_unreadable")])
        self.assertNotEqual(run.rc, 0)

    # ------------------------------------------------------------ hostile requests in TLS

    def test_hostile_requests_inside_tls(self):
        """Raw request heads written through Python's ssl (OpenSSL's SSL_write_ex), one process
        per case since a refused write kills its writer: each hostile one is stopped and the
        server sees none of them."""
        py = self.script("h.py", HOSTILE)
        cases = " ".join(CASES)
        run = self.job(f"for c in {cases}; do {PY} {py} $c; echo $c=$?; done")
        got = self.results(run)
        self.assertEqual(set(got), set(CASES), run.stdout + run.stderr)
        for case, reason in CASES.items():
            self.assertEqual(got[case], "0" if reason is None else str(KILLED), (case, got))
        # the server reads the preface as a request line of a version it refuses (505)
        self.assertEqual(sorted(self.srv.lines()),
                         ["GET /allowed/ok HTTP/1.1", "PRI * HTTP/2.0"], self.srv.seen)
        reasons = sorted(e["reason"] for e in run.of("http_verdict"))
        self.assertEqual(reasons, sorted(r for r in CASES.values() if r), run.of("http_verdict"))
        self.assertTrue(all(e["stopped"] for e in run.of("http_verdict")))


# A request inside TLS naming a host the policy does not allow (fronting behind SNI good.test).
FRONT = r"""
import os, socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
s = ctx.wrap_socket(socket.create_connection((sys.argv[2], 8443), timeout=5),
                    server_hostname="good.test")
s.sendall(b"GET /front HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n")
print(s.recv(100)[:12].decode())
"""

# The runner's worker stand-in of test_agent, which can also make that request itself.
RUNNER = r"""
import contextlib, io, json, subprocess, sys
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd[0] == "__front":  # the worker itself, as a runner talks to its server
        sys.argv = ["front", cmd[1], cmd[2]]
        got = io.StringIO()
        with contextlib.redirect_stdout(got):
            exec(compile(cmd[3], "front", "exec"))
        sys.stdout.write(json.dumps({"rc": 0, "out": got.getvalue().strip()}) + "\n")
        sys.stdout.flush()
        continue
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sys.stdout.write(json.dumps({"rc": p.returncode, "out": p.stdout.decode("utf-8", "replace")}) + "\n")
    sys.stdout.flush()
"""


class RunnerWorker(Worker):
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", RUNNER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        self.pid = self.proc.pid


class RunnerRequests(RwTestCase):
    """Whole-job mode: the CI runner's own requests are its control plane (as its connections
    are): not judged, never killed; the same request from a step is stopped."""

    ADDR = "127.0.68.2"

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="rw-httppolicy-runner-")
        cls.ca, crt, key = make_ca(cls.root)
        cls.srv = Servers(cls.ADDR, crt, key)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.root, True)

    def setUp(self):
        super().setUp()
        self.pin_root = f"/sys/fs/bpf/rw-e2e-{uuid.uuid4().hex[:12]}"
        self.agent = Agent(self.tmp, self.pin_root)
        self.worker = RunnerWorker()
        self.addCleanup(self.cleanup)

    def tearDown(self):
        pass  # scopes are the agent's: cleanup() checks and removes its own

    def cleanup(self):
        self.agent.kill()
        self.worker.stop()
        mnt = cgroup2_mount()
        ours = tuple(f"runwarden-{p}-" for p in self.agent.pids)
        for d in set(os.listdir(mnt)) - self.cg_before:
            if d.startswith(ours):
                with open(os.path.join(mnt, d, "cgroup.kill"), "w") as f:
                    f.write("1")
                for _ in range(100):
                    try:
                        os.rmdir(os.path.join(mnt, d))
                        break
                    except OSError:
                        time.sleep(0.05)
        if os.path.isdir(self.pin_root):
            for root, dirs, files in os.walk(self.pin_root, topdown=False):
                for f in files:
                    os.unlink(os.path.join(root, f))
                for d in dirs:
                    os.rmdir(os.path.join(root, d))
            os.rmdir(self.pin_root)

    def test_runner_requests_are_not_judged(self):
        policy = os.path.join(self.tmp, "policy.yaml")
        with open(policy, "w") as f:
            f.write(f"version: 1\nmode: enforce\nallow:\n  - ip: {self.ADDR}\n"
                    f"    ports: [{TLS_PORT}]\n  - host: good.test\n    methods: [GET]\n")
        out = os.path.join(self.tmp, "out")
        rc, _, err = self.agent.job("start", "--pid", str(self.worker.pid), "--out", out,
                                    "--no-sign", "--policy", policy, "--mode", "enforce")
        self.assertEqual(rc, 0, err)
        mine = self.worker.step("__front", self.ca, self.ADDR, FRONT)
        self.assertEqual(mine["out"], "HTTP/1.1 200", mine)
        step = self.worker.step(sys.executable, "-c", FRONT, self.ca, self.ADDR)
        self.assertEqual(step["rc"], -9, step)  # SIGKILL before the library wrote
        self.assertIsNone(self.worker.proc.poll(), "the runner must live")
        rc, _, err = self.agent.job("stop")
        self.assertNotEqual(rc, 0)  # the step's request is a violation
        run = Run(rc, err, out)
        self.assertEqual([(e["pid"] == self.worker.pid, e["reason"], e["verdict"])
                          for e in run.of("http_verdict")],
                         [(False, "host_mismatch", "deny")])
        self.assertEqual(self.srv.lines(), ["GET /front HTTP/1.1"])  # the runner's only


# What each hostile request head gets: the refusal reason (None: it passes).
CASES = {
    "ok": None,
    "long_method": "request_unreadable",     # a 20-letter method
    "lower_method": "request_unreadable",    # "post": servers may take any token
    "newline_path": "request_unreadable",    # a newline inside the target
    "http09": "request_unreadable",          # "GET /secret" alone: HTTP/0.9
    "dup_host": "request_unreadable",        # good.test, then evil.test
    "no_host": "request_unreadable",         # whose rules apply cannot be told
    "split_head": "request_unreadable",      # the head's end in a later write
    "backslash": "path_not_allowed",         # /allowed/..\secret
    "dotdot_semicolon": "path_not_allowed",  # /allowed/..;/secret (Tomcat reads ..)
    "enc_slash": "path_not_allowed",         # /allowed/..%2fsecret
    "double_enc": "path_not_allowed",        # /allowed/%252e%252e/secret
    "long_target": "path_not_allowed",       # past the 255 bytes the kernel reads
    "h2_preface": None,                      # HTTP/2 is judged at the ClientHello (ALPN)
}

HOSTILE = r'''
import os, socket, ssl, sys, time
H = b"Host: good.test\r\n\r\n"
heads = {
    "ok": [b"GET /allowed/ok HTTP/1.1\r\n" + H],
    "long_method": [b"ABCDEFGHIJKLMNOPQRST /allowed/ HTTP/1.1\r\n" + H],
    "lower_method": [b"post /allowed/x HTTP/1.1\r\n" + H],
    "newline_path": [b"GET /allowed/\nX HTTP/1.1\r\n" + H],
    "http09": [b"GET /secret\r\n"],
    "dup_host": [b"GET /allowed/ HTTP/1.1\r\nHost: good.test\r\nHost: evil.test\r\n\r\n"],
    "no_host": [b"GET /allowed/ HTTP/1.0\r\n\r\n"],
    "split_head": [b"GET /allowed/ HTTP/1.1\r\n", b"Host: evil.test\r\n\r\n"],
    "backslash": [b"GET /allowed/..\\secret HTTP/1.1\r\n" + H],
    "dotdot_semicolon": [b"GET /allowed/..;/secret HTTP/1.1\r\n" + H],
    "enc_slash": [b"GET /allowed/..%2fsecret HTTP/1.1\r\n" + H],
    "double_enc": [b"GET /allowed/%252e%252e/secret HTTP/1.1\r\n" + H],
    "long_target": [b"GET /allowed/" + b"a" * 300 + b" HTTP/1.1\r\n" + H],
    "h2_preface": [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
}
ctx = ssl.create_default_context(cafile=os.environ["CA"])
ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("good.test", 8443), timeout=5),
                    server_hostname="good.test")
for i, part in enumerate(heads[sys.argv[1]]):
    if i:
        time.sleep(0.1)
    s.sendall(part)
s.settimeout(2)
try:
    s.recv(100)
except OSError:
    pass
'''

if __name__ == "__main__":
    unittest.main()
