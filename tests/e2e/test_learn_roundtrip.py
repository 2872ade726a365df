"""learn -> enforce in run mode: a policy learned from runs with --step passes those
runs again when enforced with the same steps, and `policy check POLICY RUNDIR...`
agrees (and says when a policy cannot pass a run); an SRV lookup derived from a learned
name (apt's `_http._tcp.<mirror>`) needs no entry of its own, in learn, check or enforce.
Loopback only: TCP servers and a resolver on 127.0.44.x."""
import os
import socket
import subprocess
import sys

from rwtest import RW, Dnsmasq, RwTestCase, TcpServer

A, B, MIRROR, DNS = "127.0.44.1", "127.0.44.2", "127.0.44.3", "127.0.44.53"
CONNECT = """
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
"""


class LearnRoundTrip(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = TcpServer(A)
        cls.b = TcpServer(B)

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        cls.b.stop()

    def connect(self, srv, name, *opts):
        addr = srv.sock.getsockname()[0]
        return self.rw([sys.executable, "-c", CONNECT, addr, str(srv.port)], *opts,
                       out=os.path.join(self.tmp, name))

    def test_steps_round_trip(self):
        build = self.connect(self.a, "build", "--step", "build")
        test = self.connect(self.b, "test", "--step", "test")
        self.assertEqual((build.rc, test.rc), (0, 0), build.stderr + test.stderr)
        pol = os.path.join(self.tmp, "policy.yaml")
        p = subprocess.run([RW, "learn", build.outdir, test.outdir, "--out", pol],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(pol) as f:
            text = f.read()
        self.assertIn('steps:\n  "build":\n    allow:\n      - ip: "127.0.44.1"', text)
        chk = subprocess.run([RW, "policy", "check", pol, build.outdir, test.outdir],
                             capture_output=True, text=True)
        self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)
        self.assertIn(f"# run {build.outdir} (step build): passes", chk.stdout)
        for srv, step in ((self.a, "build"), (self.b, "test")):
            r = self.connect(srv, "enf-" + step, "--policy", pol, "--mode", "enforce",
                             "--step", step)
            self.assertEqual(r.rc, 0, r.stderr)
            self.assertEqual(r.summary["denials"], 0)
        # the other step's destination is denied, and check says so before a run does
        r = self.connect(self.b, "cross", "--policy", pol, "--mode", "enforce", "--step",
                         "build")
        self.assertEqual(r.rc, 1, r.stderr)
        self.assertEqual([(v["kind"], v["daddr"], v["count"]) for v in r.summary["violations"]],
                         [("connect", B, 1)])
        chk = subprocess.run([RW, "policy", "check", pol, r.outdir], capture_output=True,
                             text=True)
        self.assertEqual(chk.returncode, 1)
        self.assertIn(f"connect tcp {B}:{self.b.port} x1", chk.stdout)
        # a run whose step the policy does not define cannot pass
        other = self.connect(self.a, "deploy", "--step", "deploy")
        chk = subprocess.run([RW, "policy", "check", pol, other.outdir], capture_output=True,
                             text=True)
        self.assertEqual(chk.returncode, 1)
        self.assertIn('enforced step "deploy", which this policy does not define', chk.stdout)

    def test_derived_srv_round_trip(self):
        """As apt-get does it: SRV of _http._tcp.<mirror>, then the mirror's address, then
        port 80 there."""
        dns = Dnsmasq(DNS, records=[("mirror.test", MIRROR)],
                      extra=["--srv-host=_http._tcp.mirror.test,mirror.test,80"])
        self.addCleanup(dns.stop)
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((MIRROR, 80))
        srv.listen(8)
        self.addCleanup(srv.close)
        job = ["sh", "-c", f"dig +short -t SRV _http._tcp.mirror.test @{DNS} | grep -q mirror"
               f" && dig +short mirror.test @{DNS} | grep -qx {MIRROR}"
               f" && {sys.executable} -c '{CONNECT}' {MIRROR} 80"]
        seen = self.rw(job, "--mode", "learn", out=os.path.join(self.tmp, "seen"))
        self.assertEqual(seen.rc, 0, seen.stderr)
        pol = os.path.join(self.tmp, "policy.yaml")
        p = subprocess.run([RW, "learn", seen.outdir, "--out", pol], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(pol) as f:
            text = f.read()
        self.assertIn('- host: "mirror.test"\n    ports: [80]', text)
        self.assertNotIn("_http._tcp", text)
        chk = subprocess.run([RW, "policy", "check", pol, seen.outdir], capture_output=True,
                             text=True)
        self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)
        r = self.rw(job, "--policy", pol, "--mode", "enforce",
                    out=os.path.join(self.tmp, "enf"))
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.summary["violations"], [])
        # asked as another type, the same name is not derived: check says it would be denied
        other = self.rw(["dig", "+short", "-t", "TXT", "_http._tcp.mirror.test", f"@{DNS}"],
                        out=os.path.join(self.tmp, "txt"))
        chk = subprocess.run([RW, "policy", "check", pol, other.outdir], capture_output=True,
                             text=True)
        self.assertEqual(chk.returncode, 1, chk.stdout)
        self.assertIn("dns _http._tcp.mirror.test TXT x1", chk.stdout)

    def test_no_step_round_trip(self):
        seen = self.connect(self.a, "seen")
        pol = os.path.join(self.tmp, "policy.yaml")
        self.assertEqual(subprocess.run([RW, "learn", seen.outdir, "--out", pol]).returncode, 0)
        r = self.connect(self.a, "enf", "--policy", pol, "--mode", "enforce")
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.summary["violations"], [])
