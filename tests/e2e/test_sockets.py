"""Sockets judged as what they are: by family, type and protocol.

Local families (netlink, unix) are not egress and never a violation; raw IP,
packet and the like are; UDP-Lite and ICMP (ping sockets) are judged and
recorded as themselves, and observe and enforce agree on every verdict.
Real clients (`ip`, glibc's getaddrinfo), real sockets, loopback only.
"""
import os
import socket
import subprocess
import sys
import unittest

from rwtest import TOOLS, RwTestCase

# Stand-ins for outside hosts; nothing listens on them except where a test says.
LISTED_TCP, UNLISTED, PING_OK = "127.0.31.1", "127.0.31.2", "127.0.31.3"

MAKE_SOCKETS = """
import socket, sys
out = []
for fam, typ, proto in [tuple(int(x) for x in a.split(",")) for a in sys.argv[1:]]:
    try:
        socket.socket(fam, typ, proto).close(); out.append("ok")
    except OSError as e:
        out.append(str(e.errno))
print(" ".join(out))
"""

# sendto on a UDP-Lite socket; prints "sent" or the errno.
UDPLITE = """
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM, socket.IPPROTO_UDPLITE)
try:
    s.sendto(b"x", (sys.argv[1], int(sys.argv[2]))); print("sent")
except OSError as e:
    print(e.errno)
"""

# One echo request through a ping socket (SOCK_DGRAM, IPPROTO_ICMP[V6]),
# connected first or not: prints "reply", "noreply" or the errno.
PING = """
import socket, sys
addr, how = sys.argv[1], sys.argv[2]
v6 = ":" in addr
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM,
                  socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
s.settimeout(2)
pkt = bytes([128 if v6 else 8, 0, 0, 0, 0, 0, 0, 1]) + b"runwarden"
try:
    if how == "connect":
        s.connect((addr, 0)); s.send(pkt)
    elif how.startswith("connect:"):  # connected elsewhere, then a sendto here
        s.connect((how[8:], 0)); s.sendto(pkt, (addr, 0))
    else:
        s.sendto(pkt, (addr, 0))
    s.recv(100); print("reply")
except socket.timeout:
    print("noreply")
except OSError as e:
    print(e.errno)
"""

AF = socket
RAW4 = f"{AF.AF_INET},{AF.SOCK_RAW},{socket.IPPROTO_ICMP}"
RAW6 = f"{AF.AF_INET6},{AF.SOCK_RAW},{socket.IPPROTO_ICMPV6}"
PACKET = f"{AF.AF_PACKET},{AF.SOCK_RAW},0"
INET_SOCK_PACKET = f"{AF.AF_INET},10,0"  # SOCK_PACKET: the kernel makes it a packet socket
NETLINK = f"{AF.AF_NETLINK},{AF.SOCK_RAW},0"
NETLINK_DGRAM = f"{AF.AF_NETLINK},{AF.SOCK_DGRAM},0"
UNIX = f"{AF.AF_UNIX},{AF.SOCK_STREAM},0"
VSOCK = f"{AF.AF_VSOCK},{AF.SOCK_STREAM},0"  # made, never connected: on a VM it reaches the host
XDP = f"44,{AF.SOCK_RAW},0"


class PingRange:
    """Lets every group make ping sockets for the test, then puts it back."""
    PATH = "/proc/sys/net/ipv4/ping_group_range"

    def __enter__(self):
        with open(self.PATH) as f:
            self.saved = f.read().split()
        with open(self.PATH, "w") as f:
            f.write("0 2147483647")
        return self

    def __exit__(self, *exc):
        with open(self.PATH, "w") as f:
            f.write(" ".join(self.saved))


class SocketVerdictTest(RwTestCase):
    def rw(self, cmd, *opts, **kw):
        # runwarden refuses to reuse an output directory: one per run.
        self.runs = getattr(self, "runs", 0) + 1
        return super().rw(cmd, *opts, out=os.path.join(self.tmp, f"out{self.runs}"), **kw)

    def policy(self, mode, extra=""):
        path = os.path.join(self.tmp, f"policy-{mode}.yaml")
        with open(path, "w") as f:
            f.write(f"""version: 1
mode: {mode}
allow:
  - ip: {LISTED_TCP}
    ports: [9000]
    proto: tcp
{extra}dns:
  upstream: 127.0.53.1
""")
        return path

    def run_in(self, mode, cmd, extra=""):
        return self.rw(cmd, "--policy", self.policy(mode, extra), "--mode", mode)

    def py(self, code, *args):
        return [sys.executable, "-c", code, *args]

    def no_violation(self, r):
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual((r.summary["denials"], r.summary["audits"]), (0, 0), r.events)
        self.assertNotIn("violation", r.stderr)
        for e in r.of("socket"):
            self.assertEqual(e["verdict"], "allow", e)

    # ---- local families are not egress

    def test_netlink_and_unix_in_enforce_are_no_violation(self):
        r = self.run_in("enforce", self.py(MAKE_SOCKETS, NETLINK, NETLINK_DGRAM, UNIX))
        self.assertEqual(r.stdout.split(), ["ok", "ok", "ok"], r.stderr)
        self.no_violation(r)

    def test_ip_brief_addr_in_enforce_passes(self):
        r = self.run_in("enforce", ["ip", "-brief", "addr"])
        self.assertIn("lo", r.stdout)
        self.no_violation(r)

    def test_getaddrinfo_addrconfig_in_enforce_passes(self):
        # glibc asks the kernel over netlink which address families are
        # configured (AI_ADDRCONFIG) before it answers; "localhost" is in
        # /etc/hosts, so no DNS is involved.
        code = ("import socket; print(len(socket.getaddrinfo('localhost', 80, "
                "flags=socket.AI_ADDRCONFIG)) > 0)")
        r = self.run_in("enforce", self.py(code))
        self.assertEqual(r.stdout.strip(), "True", r.stderr)
        self.no_violation(r)

    # ---- egress families still are

    def test_raw_and_packet_refused_in_enforce_netlink_not(self):
        r = self.run_in("enforce", self.py(MAKE_SOCKETS, NETLINK, RAW4, RAW6, PACKET,
                                           INET_SOCK_PACKET))
        self.assertEqual(r.stdout.split(), ["ok", "1", "1", "1", "1"], r.stderr)
        self.assertEqual(r.rc, 1, r.stderr)
        socks = [(s["family"], s["type"], s["verdict"], s["result"]) for s in r.of("socket")]
        self.assertEqual(socks, [("ipv4", "raw", "deny", "EPERM"), ("ipv6", "raw", "deny", "EPERM"),
                                 ("packet", "raw", "deny", "EPERM"),
                                 ("packet", "packet", "deny", "EPERM")])
        self.assertTrue(all(s["pid"] for s in r.of("socket")))
        self.assertEqual(r.summary["denials"], 4)

    def test_raw_and_packet_would_deny_in_observe_netlink_not(self):
        r = self.run_in("observe", self.py(MAKE_SOCKETS, NETLINK, RAW4, RAW6, PACKET))
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["ok", "ok", "ok", "ok"], r.stderr)
        socks = [(s["family"], s["verdict"], s["result"]) for s in r.of("socket")]
        self.assertEqual(socks, [("ipv4", "audit", "ok"), ("ipv6", "audit", "ok"),
                                 ("packet", "audit", "ok")])
        self.assertEqual((r.summary["audits"], r.summary["denials"]), (3, 0))

    def test_non_ip_egress_families_judged_in_enforce(self):
        # XDP needs CAP_NET_RAW, which an enforce-mode job lacks. No cgroup
        # hook sees a vsock socket (and BPF LSM programs are refused on this
        # kernel): the job's seccomp filter refuses it (EPERM) and the exit
        # tracepoint records the refusal from the saved registers. (Before
        # the filter, the socket was made: vsock reaches the hypervisor.)
        r = self.run_in("enforce", self.py(MAKE_SOCKETS, VSOCK, XDP, NETLINK))
        self.assertEqual(r.stdout.split(), ["1", "1", "ok"], r.stderr)
        self.assertEqual(r.rc, 1, r.stderr)
        self.assertIn("violation", r.stderr)
        socks = [(s["family"], s["type"], s["verdict"], s["result"]) for s in r.of("socket")]
        self.assertEqual(socks, [("vsock", "stream", "deny", "EPERM"),
                                 ("xdp", "raw", "deny", "EPERM")])

    def test_compat_syscalls_refused_in_enforce(self):
        # A 64-bit process can make 32-bit system calls (int 0x80); the
        # per-syscall tracepoints do not fire for them, so an open made that
        # way was never recorded. The enforce-mode filter refuses that ABI.
        if not os.path.exists("/proc/sys/abi") or os.uname().machine != "x86_64":
            self.fail("this test needs x86-64 with IA-32 emulation")
        tool = os.path.join(TOOLS, "static_compat_open")
        r = self.run_in("enforce", [tool, "/etc/hostname"])
        self.assertEqual((r.rc, r.stdout.strip()), (3, "error Function not implemented"),
                         r.stderr)
        r = self.run_in("observe", [tool, "/etc/hostname"])
        self.assertEqual(r.rc, 0, r.stderr)  # observe changes nothing

    def test_non_ip_egress_families_would_deny_in_observe(self):
        r = self.run_in("observe", self.py(MAKE_SOCKETS, VSOCK, XDP))
        self.assertEqual((r.rc, r.stdout.split()), (0, ["ok", "ok"]), r.stderr)
        socks = [(s["family"], s["verdict"], s["result"]) for s in r.of("socket")]
        self.assertEqual(socks, [("vsock", "audit", "ok"), ("xdp", "audit", "ok")])

    def test_unsupported_family_attempt_is_not_an_event(self):
        # A family number Linux does not have: nothing made, nothing refused
        # by runwarden, so no violation (it was a denied "ipv4 raw" socket).
        r = self.run_in("enforce", self.py(MAKE_SOCKETS, f"{46 + 5},{AF.SOCK_RAW},0"))
        self.assertEqual(r.stdout.split(), ["97"], r.stderr)  # EAFNOSUPPORT
        self.no_violation(r)
        self.assertEqual(r.of("socket"), [])

    # ---- UDP-Lite is UDP-Lite

    def udplite(self, r, daddr, dport):
        (e,) = r.of("connect", daddr=daddr, dport=dport)
        self.assertEqual((e["proto"], e["via"]), ("udplite", "sendmsg"), e)
        self.assertTrue(e["pid"], e)
        return e

    def test_udplite_unlisted_observe_and_enforce_agree(self):
        # 127.0.31.1:9000 is allowed for TCP only: UDP-Lite there is not TCP.
        for daddr, dport in ((UNLISTED, 9001), (LISTED_TCP, 9000)):
            with self.subTest(daddr=daddr):
                r = self.run_in("observe", self.py(UDPLITE, daddr, str(dport)))
                self.assertEqual((r.rc, r.stdout.strip()), (0, "sent"), r.stderr)
                self.assertEqual(self.udplite(r, daddr, dport)["verdict"], "audit")
                r = self.run_in("enforce", self.py(UDPLITE, daddr, str(dport)))
                self.assertEqual(r.stdout.strip(), "1", r.stderr)  # EPERM at once
                self.assertEqual(r.rc, 1)
                self.assertEqual(self.udplite(r, daddr, dport)["verdict"], "deny")
                self.assertFalse(r.of("connect", via="packet"), r.events)

    def test_udplite_allowed_by_its_name(self):
        extra = f"  - ip: {UNLISTED}\n    ports: [9001]\n    proto: udplite\n"
        r = self.rw(self.py(UDPLITE, UNLISTED, "9001"), "--policy",
                    self.policy("enforce", extra))
        self.assertEqual((r.rc, r.stdout.strip()), (0, "sent"), r.stderr)
        self.assertEqual(self.udplite(r, UNLISTED, 9001)["verdict"], "allow")

    # ---- ICMP through ping sockets is ICMP

    def pings(self, r, daddr):
        evs = r.of("connect", daddr=daddr)
        self.assertTrue(evs, r.events)
        for e in evs:
            self.assertIn(e["proto"], ("icmp", "icmpv6"), e)
            self.assertEqual(e["dport"], 0, e)
            self.assertTrue(e["pid"], e)
            self.assertTrue(e["exe"], e)
        return evs

    def test_ping_socket_unlisted_observe_sees_it_enforce_refuses(self):
        with PingRange():
            for how in ("sendto", "connect"):
                with self.subTest(how=how):
                    r = self.run_in("observe", self.py(PING, UNLISTED, how))
                    self.assertEqual((r.rc, r.stdout.strip()), (0, "reply"), r.stderr)
                    evs = self.pings(r, UNLISTED)
                    self.assertEqual({e["verdict"] for e in evs}, {"audit"}, evs)
                    self.assertEqual(evs[0]["proto"], "icmp")

                    r = self.run_in("enforce", self.py(PING, UNLISTED, how))
                    self.assertEqual(r.stdout.strip(), "1", r.stderr)  # EPERM
                    self.assertEqual(r.rc, 1)
                    evs = self.pings(r, UNLISTED)
                    self.assertEqual({e["verdict"] for e in evs}, {"deny"}, evs)
                    self.assertEqual(r.summary["denials"], len(evs))

    def test_connected_ping_socket_sendto_elsewhere(self):
        # Connected to an allowed address, then an echo to another one: no
        # hook judged that address at connect time, the packet program does.
        extra = f"  - ip: {PING_OK}\n    proto: icmp\n"
        with PingRange():
            r = self.run_in("observe", self.py(PING, UNLISTED, f"connect:{PING_OK}"), extra)
            self.assertEqual((r.rc, r.stdout.strip()), (0, "reply"), r.stderr)
            (e,) = self.pings(r, UNLISTED)
            self.assertEqual((e["verdict"], e["via"]), ("audit", "packet"))
            r = self.run_in("enforce", self.py(PING, UNLISTED, f"connect:{PING_OK}"), extra)
            self.assertEqual(r.stdout.strip(), "1", r.stderr)
            (e,) = self.pings(r, UNLISTED)
            self.assertEqual(e["verdict"], "deny")
            (ok,) = self.pings(r, PING_OK)
            self.assertEqual((ok["verdict"], ok["via"]), ("allow", "connect"))

    def test_ping_socket_ipv6_refused(self):
        with PingRange():
            r = self.run_in("enforce", self.py(PING, "::1", "sendto"))
            # Dropped on the way out; the kernel does not hand the drop back
            # to an ICMPv6 sendto as EPERM (IPv4's does), so no reply is the sign.
            self.assertIn(r.stdout.strip(), ("1", "noreply"), r.stderr)
            self.assertEqual(r.rc, 1)
            (e,) = self.pings(r, "::1")
            self.assertEqual((e["proto"], e["family"], e["verdict"]), ("icmpv6", "ipv6", "deny"))

    def test_allowed_icmp_passes(self):
        with PingRange():
            for how in ("sendto", "connect"):
                with self.subTest(how=how):
                    r = self.run_in("enforce", self.py(PING, PING_OK, how),
                                    f"  - ip: {PING_OK}\n    proto: icmp\n")
                    self.assertEqual((r.rc, r.stdout.strip()), (0, "reply"), r.stderr)
                    evs = self.pings(r, PING_OK)
                    self.assertEqual({e["verdict"] for e in evs}, {"allow"})
                    self.assertEqual(r.summary["denials"], 0)

    def test_icmp_not_admitted_by_a_port_rule(self):
        # An entry with ports (any protocol) says nothing about ICMP.
        extra = f"  - ip: {UNLISTED}\n    ports: [443]\n"
        with PingRange():
            r = self.rw(self.py(PING, UNLISTED, "sendto"), "--policy",
                        self.policy("enforce", extra))
            self.assertEqual(r.stdout.strip(), "1", r.stderr)
            self.assertEqual({e["verdict"] for e in self.pings(r, UNLISTED)}, {"deny"})


class PolicyProtoTest(RwTestCase):
    def check(self, entry):
        path = os.path.join(self.tmp, "p.yaml")
        with open(path, "w") as f:
            f.write(f"version: 1\nallow:\n  - {entry}\n")
        from rwtest import RW
        return subprocess.run([RW, "policy", "check", path], capture_output=True, text=True)

    def test_proto_names(self):
        for proto in ("tcp", "udp", "udplite", "icmp", "any"):
            with self.subTest(proto=proto):
                p = self.check(f"{{ip: 127.0.31.9, proto: {proto}}}")
                self.assertEqual(p.returncode, 0, p.stderr)
                if proto != "any":
                    self.assertIn(f"proto: {proto}", p.stdout)

    def test_icmp_has_no_ports(self):
        p = self.check("{ip: 127.0.31.9, ports: [443], proto: icmp}")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn("proto icmp has no ports", p.stderr)


if __name__ == "__main__":
    unittest.main()
