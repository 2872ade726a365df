"""Capture levels (issue #12): what of an HTTP transaction inside TLS the log keeps, chosen by
the policy per entry and per verdict. summary: the transaction line; details: + headers with
credentials redacted by the job's keyed tag; full: + bodies up to a cap, the cut said. HTTP/2
decoded from its frames (nghttp2's HPACK inflater) into one line per stream; WebSocket upgrades
and, at full, frames. Bounded whatever the job sends.

Real clients (curl, Python, node) against real servers on loopback: a Python HTTPS server and
nghttpd (HTTP/2), certificates from a CA the test makes, names under .test from a dnsmasq the
test starts. Nothing leaves loopback.
"""
import base64
import hashlib
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from rwtest import RW, Dnsmasq, Run, RwTestCase
from test_tls import RESOLV, make_ca, serve

DNS = "127.0.67.53"
SRV = "127.0.67.1"
H2_PORT, TLS_PORT = 8444, 8443
PY = "/usr/bin/python3"
SECRET = "s3cr3t-" + "Zq8vN2pLx7Rw4TkY"
BIG = 200 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, body, ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "session=" + SECRET)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ws":
            return self.websocket()
        if self.path == "/big":
            return self.reply(b"B" * BIG)
        self.reply(b"hello from " + self.path.encode() + b"\n")

    def do_POST(self):
        if self.path == "/slow":
            time.sleep(1)  # the client's socket fills: its writes would block
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.reply(b"got " + str(len(body)).encode() + b"\n")

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        acc = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", acc)
        self.end_headers()
        self.wfile.flush()
        hdr = self.rfile.read(2)
        n = hdr[1] & 0x7f
        mask = self.rfile.read(4)
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
        out = b"echo:" + data
        self.wfile.write(bytes([0x81, len(out)]) + out)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *a):
        pass


class TlsServer:
    def __init__(self, addr, port, crt, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        ctx.set_alpn_protocols(["http/1.1"])

        self.srv = serve(addr, port, Handler, ctx)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


# A WebSocket client over Python's ssl (OpenSSL): upgrade, one masked text frame, the echo.
WS_CLIENT = r"""
import os, socket, ssl
c = ssl.create_default_context(cafile=os.environ['CA'])
s = c.wrap_socket(socket.create_connection(('good.test', 8443)), server_hostname='good.test')
s.sendall(b'GET /ws HTTP/1.1\r\nHost: good.test:8443\r\nUpgrade: websocket\r\n'
          b'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
          b'Sec-WebSocket-Version: 13\r\n\r\n')
buf = b''
while b'\r\n\r\n' not in buf:
    buf += s.recv(4096)
assert buf.startswith(b'HTTP/1.1 101'), buf
msg, mask = b'hello websocket', b'\x11\x22\x33\x44'
s.sendall(bytes([0x81, 0x80 | len(msg)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
rest = buf.split(b'\r\n\r\n', 1)[1]
while len(rest) < 2 or len(rest) < 2 + rest[1]:
    rest += s.recv(4096)
print(rest[2:2 + rest[1]].decode())
"""

# Raw HTTP/2 from a hostile job: thousands of streams, then a malformed HPACK block. HPACK by
# hand (static table indices and literals): the test is the attacker here.
H2_HOSTILE = r"""
import os, socket, ssl, struct, sys
c = ssl.create_default_context(cafile=os.environ['CA'])
c.set_alpn_protocols(['h2'])
s = c.wrap_socket(socket.create_connection(('good.test', 8444)), server_hostname='good.test')
def frame(t, flags, sid, payload):
    return struct.pack('>I', len(payload))[1:] + bytes([t, flags]) + struct.pack('>I', sid) + payload
s.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + frame(4, 0, 0, b''))
auth = b'good.test:8444'
block = b'\x82\x87\x84' + b'\x41' + bytes([len(auth)]) + auth  # GET https / :authority
n = int(sys.argv[1])
out = b''
for i in range(n):
    out += frame(1, 0x5, 2 * i + 1, block)   # END_STREAM|END_HEADERS
    if len(out) > 16000:
        s.sendall(out); out = b''
s.sendall(out)
s.sendall(frame(1, 0x5, 2 * n + 1, b'\xff\xff\xff\xff\xff\xff\xff\xff'))  # malformed HPACK
s.settimeout(3)
try:
    while s.recv(65536):
        pass
except Exception:
    pass
print('sent')
"""


class Capture(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="rw-cap-")
        cls.ca, crt, key = make_ca(cls.root)
        cls.srv = TlsServer(SRV, TLS_PORT, crt, key)
        htdocs = os.path.join(cls.root, "htdocs")
        os.makedirs(htdocs)
        for name, size in (("a.txt", 10), ("b.txt", 20), ("c.txt", 30), ("big.bin", BIG)):
            with open(os.path.join(htdocs, name), "wb") as f:
                f.write(b"x" * size)
        cls.h2 = subprocess.Popen(["nghttpd", "-a", SRV, "-d", htdocs, "--echo-upload",
                                   str(H2_PORT), key, crt],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.dns = Dnsmasq(DNS, records=[("good.test", SRV), ("evil.test", SRV)])
        cls.resolv = os.path.join(cls.root, "resolv.conf")
        with open(cls.resolv, "w") as f:
            f.write(f"nameserver {DNS}\n")
        for _ in range(50):
            with socket.socket() as s:
                if s.connect_ex((SRV, H2_PORT)) == 0:
                    break
            time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.h2.terminate()
        cls.h2.wait()
        cls.dns.stop()
        shutil.rmtree(cls.root, True)

    def job(self, script, capture, mode="observe", entry_capture=None, tag="out"):
        pol = os.path.join(self.tmp, tag + ".yaml")
        with open(pol, "w") as f:
            f.write(f"version: 1\nmode: {mode}\ncapture: {capture}\nallow:\n"
                    f"  - host: good.test\n    ports: [{TLS_PORT}, {H2_PORT}]\n")
            if entry_capture:
                f.write(f"    capture: {entry_capture}\n")
            f.write(f"  - ip: {DNS}\ndns:\n  upstream: {DNS}\n")
        out = os.path.join(self.tmp, tag)
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", RESOLV, "sh",
                RW, "run", "--out", out, "--no-sign", "--policy", pol, "--mode", mode,
                "--", "sh", "-c", script]
        env = dict(os.environ, RW_RESOLV=self.resolv, CA=self.ca)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)
        return Run(p.returncode, p.stderr, out, p.stdout)

    def assert_absent(self, run, secret):
        """The secret is in no file of the run directory."""
        for d, _, files in os.walk(run.outdir):
            for n in files:
                with open(os.path.join(d, n), "rb") as f:
                    self.assertNotIn(secret.encode(), f.read(), os.path.join(d, n))

    def by_path(self, run):
        return {e["path"]: e for e in run.of("http") if e.get("path")}

    @staticmethod
    def header(line, which, name):
        return [v for k, v in line.get(which, []) if k.lower() == name]

    # ------------------------------------------------------------ levels

    def test_summary_keeps_only_the_line(self):
        run = self.job('curl -sS --cacert "$CA" -o /dev/null https://good.test:8443/s', "summary")
        self.assertEqual(run.rc, 0, run.stderr)
        line = self.by_path(run)["/s"]
        self.assertEqual((line["method"], line["status"]), ("GET", 200))
        self.assertNotIn("request_headers", line)
        self.assertNotIn("capture", line)
        self.assertEqual(run.summary["capture"]["transactions"]["summary"], 1, run.summary)

    def test_details_headers_redacted(self):
        """curl and Python at details: headers of both directions, Authorization, Cookie and
        Set-Cookie replaced by the job's tag; the secret is nowhere in the evidence."""
        py = os.path.join(self.tmp, "p.py")
        with open(py, "w") as f:
            f.write("import ssl,urllib.request,os\n"
                    "c=ssl.create_default_context(cafile=os.environ['CA'])\n"
                    "r=urllib.request.Request('https://good.test:8443/py',"
                    f"headers={{'Authorization':'token {SECRET}','X-Plain':'visible'}})\n"
                    "print(urllib.request.urlopen(r,context=c).status)\n")
        run = self.job(f'curl -sS --cacert "$CA" -o /dev/null -H "Authorization: Bearer {SECRET}"'
                       f' -H "Cookie: a={SECRET}" https://good.test:8443/d && {PY} {py}',
                       "details")
        self.assertEqual(run.rc, 0, run.stderr)
        paths = self.by_path(run)
        for p, exe in (("/d", "/curl"), ("/py", "python3")):
            line = paths[p]
            self.assertIn(exe, line["exe"])
            self.assertEqual(line["capture"], "details")
            auth = self.header(line, "request_headers", "authorization")
            self.assertEqual(len(auth), 1, line)
            self.assertIn("[redacted:", auth[0])
            self.assertEqual(self.header(line, "request_headers", "host"), ["good.test:8443"])
            self.assertEqual(len(self.header(line, "response_headers", "set-cookie")), 1)
            self.assertIn("[redacted:", self.header(line, "response_headers", "set-cookie")[0])
            self.assertNotIn("request_body", line)
        self.assertEqual(self.header(paths["/py"], "request_headers", "x-plain"), ["visible"])
        self.assert_absent(run, SECRET)

    def test_full_bodies_cut_at_the_cap(self):
        run = self.job('curl -sS --cacert "$CA" -o /dev/null --data-binary "posted-body-here" '
                       'https://good.test:8443/post && '
                       'curl -sS --cacert "$CA" -o /dev/null https://good.test:8443/big',
                       "{default: full, body_bytes: 1KiB}")
        self.assertEqual(run.rc, 0, run.stderr)
        paths = self.by_path(run)
        post, big = paths["/post"], paths["/big"]
        self.assertEqual(post["request_body"], "posted-body-here")
        self.assertIs(post["request_body_cut"], False)
        self.assertEqual(post["response_body"], "got 16\n")
        self.assertEqual(big["response_body"], "B" * 1024)
        self.assertIs(big["response_body_cut"], True)
        self.assertEqual(big["response_body_bytes"], BIG)
        self.assertGreaterEqual(run.summary["capture"]["bodies_cut"], 1)

    def test_budget_spent_is_said(self):
        """A 1 KiB budget: the first transactions' headers fit, the rest are written at summary
        with capture_skipped, and summary.json counts them."""
        run = self.job("for i in 1 2 3 4 5 6; do curl -sS --cacert \"$CA\" -o /dev/null "
                       "https://good.test:8443/b$i; done", "{default: details, budget_bytes: 1KiB}")
        self.assertEqual(run.rc, 0, run.stderr)
        lines = [self.by_path(run)[f"/b{i}"] for i in range(1, 7)]
        kept = [e for e in lines if "request_headers" in e]
        skipped = [e for e in lines if e.get("capture_skipped") == "budget"]
        self.assertTrue(kept, lines)
        self.assertTrue(skipped, lines)
        self.assertEqual(len(kept) + len(skipped), 6)
        cap = run.summary["capture"]
        self.assertEqual(cap["budget_skipped"], len(skipped))
        self.assertLessEqual(cap["bytes_logged"], 1024)

    def test_many_connections_at_full(self):
        """300 connections each with a request in flight at full: the connections past the cap
        are counted, every transaction still has its line."""
        py = os.path.join(self.tmp, "many.py")
        with open(py, "w") as f:
            f.write("import os,socket,ssl\n"
                    "c=ssl.create_default_context(cafile=os.environ['CA'])\n"
                    "ss=[]\n"
                    "a=socket.getaddrinfo('good.test',8443,socket.AF_INET)[0][4]\n"
                    "for i in range(300):\n"
                    "  s=c.wrap_socket(socket.create_connection(a),"
                    "server_hostname='good.test')\n"
                    "  s.sendall(b'GET /m%d HTTP/1.1\\r\\nHost: good.test\\r\\n\\r\\n' % i)\n"
                    "  ss.append(s)\n"
                    "for s in ss:\n"
                    "  b=b''\n"
                    "  while not b.endswith(b'\\n') or b'hello' not in b: b+=s.recv(4096)\n"
                    "print('done')\n")
        run = self.job(f"ulimit -n 4096; {PY} {py}", "full")
        self.assertIn("done", run.stdout, run.stderr)
        paths = self.by_path(run)
        self.assertEqual(len([p for p in paths if p.startswith("/m")]), 300)
        cap = run.summary["capture"]
        self.assertGreater(cap["conns_untracked"], 0, cap)
        self.assertEqual(cap["transactions"]["full"] + cap["transactions"]["summary"], 300, cap)

    def test_repeated_writes_seen_once(self):
        """A non-blocking client whose SSL_write would block repeats it with the same bytes
        (SSL_ERROR_WANT_WRITE): the captured body is the bytes sent, each once."""
        py = os.path.join(self.tmp, "nb.py")
        with open(py, "w") as f:
            f.write("import os,select,socket,ssl\n"
                    "body=b''.join(b'%08d,' % i for i in range(400000))\n"
                    "c=ssl.create_default_context(cafile=os.environ['CA'])\n"
                    "r=socket.socket(); r.setsockopt(socket.SOL_SOCKET,socket.SO_SNDBUF,16384)\n"
                    "r.connect(socket.getaddrinfo('good.test',8443,socket.AF_INET)[0][4])\n"
                    "s=c.wrap_socket(r,server_hostname='good.test')\n"
                    "s.sendall(b'POST /slow HTTP/1.1\\r\\nHost: good.test\\r\\n"
                    "Content-Length: %d\\r\\n\\r\\n' % len(body))\n"
                    "s.setblocking(False)\n"
                    "v=memoryview(body); retries=0\n"
                    "while v:\n"
                    "  try:\n"
                    "    n=s.send(v[:65536]); v=v[n:]\n"
                    "  except ssl.SSLWantWriteError:\n"
                    "    retries+=1; select.select([],[s],[])\n"
                    "s.setblocking(True)\n"
                    "b=b''\n"
                    "while b'got' not in b: b+=s.recv(4096)\n"
                    "print('retries', retries)\n")
        run = self.job(f"{PY} {py}", "{default: full, body_bytes: 1MiB}")
        self.assertEqual(run.rc, 0, run.stderr)
        retries = int(run.stdout.split()[-1])
        self.assertGreater(retries, 0, "the test did not make a write block")
        line = self.by_path(run)["/slow"]
        want = "".join("%08d," % i for i in range(400000))[:1 << 20]
        self.assertEqual(len(line["request_body"]), 1 << 20)
        self.assertTrue(line["request_body"] == want, "captured body differs from what was sent")

    def test_level_by_verdict_and_entry(self):
        """observe: evil.test is not allowed (full), good.test's entry says details."""
        run = self.job('curl -sS --cacert "$CA" -o /dev/null https://good.test:8443/g; '
                       'curl -sS --cacert "$CA" -o /dev/null --connect-to evil.test:8443:good.test:8443'
                       ' https://evil.test:8443/e; true',
                       "{default: summary, not_allowed: full}", entry_capture="details")
        paths = self.by_path(run)
        self.assertEqual(paths["/g"]["capture"], "details", paths)
        self.assertEqual(paths["/e"]["capture"], "full", paths)
        self.assertIn("response_body", paths["/e"])

    def test_node_fetch_details(self):
        js = os.path.join(self.tmp, "f.mjs")
        with open(js, "w") as f:
            f.write("const r = await fetch('https://good.test:8443/fetch', "
                    f"{{headers: {{authorization: 'Bearer {SECRET}'}}}});\n"
                    "console.log(r.status, (await r.text()).length);\n")
        run = self.job(f"NODE_EXTRA_CA_CERTS=$CA node {js}", "details")
        self.assertEqual(run.rc, 0, run.stderr)
        line = self.by_path(run)["/fetch"]
        self.assertTrue(line["exe"].endswith("node"), line)
        self.assertIn("[redacted:", self.header(line, "request_headers", "authorization")[0])
        self.assert_absent(run, SECRET)

    # ------------------------------------------------------------ HTTP/2

    def test_h2_streams(self):
        """curl --http2 against nghttpd: one line per stream, several streams on one
        connection (parallel, multiplexed), method, path, status, sizes."""
        run = self.job('curl -sS --http2 --cacert "$CA" -Z '
                       '-o /dev/null -o /dev/null -o /dev/null '
                       'https://good.test:8444/a.txt https://good.test:8444/b.txt '
                       'https://good.test:8444/missing && '
                       f'curl -sS --http2 --cacert "$CA" -o /dev/null -H "Authorization: Bearer {SECRET}" '
                       '--data-binary 12345 https://good.test:8444/c.txt', "details")
        self.assertEqual(run.rc, 0, run.stderr)
        lines = [e for e in run.of("http") if e.get("protocol") == "h2"]
        paths = {e["path"]: e for e in lines if e.get("decoded")}
        self.assertEqual(set(paths), {"/a.txt", "/b.txt", "/missing", "/c.txt"}, lines)
        self.assertEqual((paths["/a.txt"]["method"], paths["/a.txt"]["status"],
                          paths["/a.txt"]["response_body_bytes"]), ("GET", 200, 10))
        self.assertEqual(paths["/b.txt"]["response_body_bytes"], 20)
        self.assertEqual(paths["/missing"]["status"], 404)
        self.assertEqual(paths["/c.txt"]["method"], "POST")
        self.assertEqual(paths["/c.txt"]["request_body_bytes"], 5)
        self.assertEqual(paths["/a.txt"]["authority"], "good.test:8444")
        ids = {paths[p]["stream"] for p in ("/a.txt", "/b.txt", "/missing")}
        self.assertEqual(len(ids), 3, lines)
        self.assertIn("[redacted:", self.header(paths["/c.txt"], "request_headers",
                                                "authorization")[0])
        self.assert_absent(run, SECRET)
        self.assertFalse([e for e in lines if not e.get("decoded")], lines)
        self.assertEqual(run.summary["capture"]["h2"]["streams"], 4, run.summary)

    def test_h2_big_upload(self):
        """An 8 MB upload over HTTP/2 by curl (non-blocking: a write that would block is
        repeated with the same bytes): every frame is seen once, the stream decodes whole."""
        big = os.path.join(self.tmp, "up")
        with open(big, "wb") as f:
            f.write(os.urandom(8 << 20))
        run = self.job(f'curl -sS --http2 --cacert "$CA" -o /dev/null --limit-rate 50M '
                       f'--data-binary @{big} https://good.test:8444/c.txt && '
                       'curl -sS --http2 --cacert "$CA" -o /dev/null https://good.test:8444/a.txt',
                       "{default: summary, h2_bytes: 32MiB}")
        self.assertEqual(run.rc, 0, run.stderr)
        lines = run.of("http", protocol="h2")
        self.assertFalse([e for e in lines if not e.get("decoded")], lines)
        paths = {e["path"]: e for e in lines}
        self.assertEqual(paths["/c.txt"]["request_body_bytes"], 8 << 20, paths)
        self.assertEqual(paths["/c.txt"]["response_body_bytes"], 8 << 20, paths)
        self.assertEqual(paths["/a.txt"]["status"], 200)

    def test_h2_node(self):
        js = os.path.join(self.tmp, "h.js")
        with open(js, "w") as f:
            f.write("const h2=require('http2'),fs=require('fs');"
                    "const c=h2.connect('https://good.test:8444',{ca:fs.readFileSync(process.env.CA)});"
                    "let n=0;for(const p of ['/a.txt','/b.txt']){const r=c.request({':path':p});"
                    "r.on('response',h=>console.log(p,h[':status']));r.resume();"
                    "r.on('end',()=>{if(++n==2)c.close()});r.end()}")
        run = self.job(f"node {js}", "summary")
        self.assertEqual(run.rc, 0, run.stderr)
        paths = {e["path"]: e for e in run.of("http", protocol="h2") if e.get("decoded")}
        self.assertEqual(set(paths), {"/a.txt", "/b.txt"}, run.of("http"))
        self.assertEqual(paths["/b.txt"]["status"], 200)

    # ------------------------------------------------------------ WebSocket

    def test_websocket_upgrade_and_frames(self):
        py = os.path.join(self.tmp, "ws.py")
        with open(py, "w") as f:
            f.write(WS_CLIENT)
        run = self.job(f"{PY} {py}", "full")
        self.assertEqual(run.rc, 0, run.stderr)
        self.assertIn("echo:hello websocket", run.stdout)
        up = self.by_path(run)["/ws"]
        self.assertEqual(up["status"], 101)
        self.assertIs(up["websocket"], True)
        frames = run.of("websocket")
        got = {(f["direction"], f["opcode"], f["payload"], f["masked"]) for f in frames}
        self.assertIn(("sent", "text", "hello websocket", True), got, frames)
        self.assertIn(("received", "text", "echo:hello websocket", False), got, frames)
        summary = self.job(f"{PY} {py}", "summary", tag="sum")
        self.assertIs(self.by_path(summary)["/ws"]["websocket"], True)
        self.assertFalse(summary.of("websocket"))

    # ------------------------------------------------------------ hostile

    def test_hostile_streams_and_hpack(self):
        """Thousands of HTTP/2 streams and a malformed HPACK block, a 20 MB body at full:
        the run ends, memory stays bounded, what was left out is said."""
        py = os.path.join(self.tmp, "h.py")
        with open(py, "w") as f:
            f.write(H2_HOSTILE)
        big = os.path.join(self.tmp, "big")
        with open(big, "wb") as f:
            f.write(b"\0" * (20 << 20))
        run = self.job(f'{PY} {py} 3000; curl -sS --cacert "$CA" -o /dev/null '
                       f'--data-binary @{big} https://good.test:8443/post; true', "full")
        self.assertIn("sent", run.stdout, run.stderr)
        self.assertNotIn("AddressSanitizer", run.stderr)
        cap = run.summary["capture"]
        lines = run.of("http", protocol="h2")
        undecoded = [e for e in lines if e.get("decoded") is False]
        self.assertTrue(undecoded, lines[-3:])
        self.assertIn("HPACK", undecoded[0]["undecoded_reason"])
        decoded = [e for e in lines if e.get("decoded")]
        self.assertGreater(len(decoded) + cap["h2"]["streams_untracked"], 100, cap)
        post = self.by_path(run)["/post"]
        self.assertIs(post["request_body_cut"], True)
        self.assertEqual(len(post["request_body"]), 64 * 1024)
        self.assertLess(run.summary.get("agent_peak_rss_kb", 0), 200 * 1024, run.summary)


if __name__ == "__main__":
    unittest.main()
