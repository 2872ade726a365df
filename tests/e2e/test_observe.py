"""End-to-end: `runwarden run` in observe mode records exactly what a job does."""
import json
import os
import socket
import subprocess
import sys
import time
import unittest

from rwtest import RW, TOOLS, Dnsmasq, RwTestCase, TcpServer

WORKLOAD = os.path.join(TOOLS, "workload")


class ObserveTest(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = Dnsmasq(records=[("example.test", "127.0.20.3")])
        cls.tcp = TcpServer("127.0.20.1")

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.tcp.stop()

    def make_key(self):
        home = os.path.join(self.tmp, "home")
        os.makedirs(os.path.join(home, ".ssh"))
        key = os.path.join(home, ".ssh", "id_rsa")
        with open(key, "w") as f:
            f.write("not a real key\n")
        return key

    def test_exact_counts_and_attribution(self):
        key = self.make_key()
        # A process outside the job doing the same things at the same time.
        outside = subprocess.Popen(
            [sys.executable, "-c", f"""
import socket, time
end = time.time() + 30
while time.time() < end:
    open({key!r}).close()
    s = socket.create_connection(("127.0.20.1", {self.tcp.port})); s.close()
    time.sleep(0.005)
"""])
        self.addCleanup(outside.kill)
        time.sleep(0.2)
        r = self.rw([WORKLOAD, "--exec", "300", "--tcp", "300", "127.0.20.1", str(self.tcp.port),
                     "--udp", "300", "127.0.20.2", "9999",
                     "--dns", "100", "127.0.53.1", "53", "example.test",
                     "--open", "100", key])
        outside.kill()
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.summary["events_lost"]["total"], 0)
        self.assertTrue(r.summary["complete"])
        r.verify_chain()

        (wl,) = r.of("exec", exe=WORKLOAD)
        pid = wl["pid"]
        self.assertEqual(wl["argv"][0], WORKLOAD)
        trues = r.of("exec", exe="/usr/bin/true")
        self.assertEqual(len(trues), 300)
        self.assertTrue(all(e["ppid"] == pid and e["argv"] == ["true"] for e in trues))

        tcp = r.of("connect", proto="tcp", daddr="127.0.20.1", dport=self.tcp.port)
        self.assertEqual(len(tcp), 300)
        self.assertTrue(all(e["pid"] == pid and e["result"] == "ok" and e["exe"] == WORKLOAD
                            for e in tcp))
        udp = r.of("connect", proto="udp", daddr="127.0.20.2", dport=9999)
        self.assertEqual(len(udp), 300)
        self.assertTrue(all(e["via"] == "sendmsg" and e["pid"] == pid for e in udp))

        dns = [e for e in r.of("dns") if e["query"].endswith(".example.test")]
        self.assertEqual(len(dns), 100)
        self.assertEqual(sorted(e["query"] for e in dns),
                         sorted(f"n{i}.example.test" for i in range(100)))
        self.assertTrue(all(e["answers"] == ["127.0.20.3"] and e["qtype"] == "A" and
                            e["pid"] == pid and e["rcode"] == "NOERROR" for e in dns))

        files = r.of("file", path=key)
        self.assertEqual(len(files), 100)
        self.assertTrue(all(e["pid"] == pid and e["result"] == "ok" for e in files))

        # Nothing from the outside process, and nothing unexpected at all.
        self.assertNotIn(outside.pid, {e["pid"] for e in r.events})
        self.assertEqual(len(r.of("file")), 100)
        self.assertEqual(len(r.of("connect")), 300 + 300 + 100)
        self.assertEqual(r.summary["counts"]["exec"], 301)
        self.assertEqual(r.close["count"], len(r.events))

    def test_connection_labelled_with_host(self):
        srv = TcpServer("127.0.20.3")
        self.addCleanup(srv.stop)
        script = (f"{TOOLS}/static_dns 127.0.53.1 53 api.example.test && "
                  f"exec {TOOLS}/workload --tcp 1 127.0.20.3 {srv.port}")
        r = self.rw(["sh", "-c", script])
        self.assertEqual(r.rc, 0, r.stderr)
        (c,) = r.of("connect", dport=srv.port)
        self.assertEqual(c["host"], "api.example.test")
        dests = [d for d in r.summary["destinations"] if d["dport"] == srv.port]
        self.assertEqual(dests[0]["host"], "api.example.test")

    def test_static_client_dns_seen(self):
        r = self.rw([f"{TOOLS}/static_dns", "127.0.53.1", "53", "static.example.test"])
        self.assertEqual(r.rc, 0, r.stderr)
        (d,) = r.of("dns", query="static.example.test")
        self.assertEqual(d["answers"], ["127.0.20.3"])
        self.assertEqual(d["exe"], f"{TOOLS}/static_dns")

    def test_dns_over_tcp_seen(self):
        r = self.rw(["dig", "+tcp", "+time=2", "+tries=1", "@127.0.53.1", "tcp.example.test"])
        self.assertEqual(r.rc, 0, r.stderr)
        (d,) = r.of("dns", query="tcp.example.test")
        self.assertEqual(d["proto"], "tcp")
        self.assertEqual(d["answers"], ["127.0.20.3"])

    def test_io_uring_connect_seen(self):
        r = self.rw([f"{TOOLS}/uring_connect", "127.0.20.1", str(self.tcp.port)])
        self.assertEqual(r.rc, 0, r.stderr)
        (c,) = r.of("connect", dport=self.tcp.port)
        self.assertEqual(c["exe"], f"{TOOLS}/uring_connect")
        self.assertEqual(c["proto"], "tcp")

    def test_io_uring_open_seen(self):
        key = self.make_key()
        r = self.rw([f"{TOOLS}/uring_open", key])
        self.assertEqual(r.rc, 0, r.stderr)
        (f,) = r.of("file", path=key)
        self.assertEqual((f["via"], f["result"], f["exe"]),
                         ("io_uring", "ok", f"{TOOLS}/uring_open"))
        self.assertEqual(f["flags"][0], "O_RDONLY")  # from the opened file: no syscall args

    def test_ipv6_and_v4_mapped(self):
        srv6 = TcpServer("::1", socket.AF_INET6)
        self.addCleanup(srv6.stop)
        code = f"""
import socket
s = socket.socket(socket.AF_INET6); s.connect(("::1", {srv6.port})); s.close()
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.connect(("::ffff:127.0.20.1", {self.tcp.port})); s.close()
"""
        r = self.rw([sys.executable, "-c", code])
        self.assertEqual(r.rc, 0, r.stderr)
        (a,) = r.of("connect", dport=srv6.port)
        self.assertEqual((a["family"], a["daddr"]), ("ipv6", "::1"))
        (b,) = r.of("connect", dport=self.tcp.port)
        self.assertEqual((b["family"], b["daddr"]), ("ipv6", "::ffff:127.0.20.1"))

    def test_tcp_fast_open_seen(self):
        code = f"""
import socket
s = socket.socket()
try:
    s.sendto(b"x", socket.MSG_FASTOPEN, ("127.0.20.1", {self.tcp.port}))
except OSError:
    pass
"""
        r = self.rw([sys.executable, "-c", code])
        self.assertEqual(r.rc, 0, r.stderr)
        (c,) = r.of("connect", dport=self.tcp.port)
        self.assertEqual(c["proto"], "tcp")

    def test_double_forked_daemon_attributed(self):
        key = self.make_key()
        script = f"(setsid sh -c 'sleep 1; exec cat {key} >/dev/null' &) ; exit 0"
        r = self.rw(["sh", "-c", script], "--grace", "10")
        self.assertEqual(r.rc, 0, r.stderr)
        (f,) = r.of("file", path=key)
        self.assertEqual(f["exe"], "/usr/bin/cat")
        # Its ancestry leads back to the job's first process.
        execs = {e["pid"]: e for e in r.of("exec")}
        self.assertIn(f["pid"], execs)
        self.assertEqual(r.summary["leftovers"], [])

    def test_leftovers_reported_and_killed(self):
        t0 = time.time()
        r = self.rw(["sh", "-c", "setsid sleep 60 >/dev/null 2>&1 & exit 3"],
                    "--grace", "1", "--kill-leftovers")
        self.assertEqual(r.rc, 3)
        self.assertLess(time.time() - t0, 20)
        (left,) = r.summary["leftovers"]
        self.assertEqual(left["cmdline"], "sleep 60")
        self.assertTrue(r.summary["leftovers_killed"])

    def test_hostile_names_are_valid_json(self):
        exe = os.path.join(self.tmp, 'evil\n"name\xff'.encode("utf-8", "surrogateescape")
                           .decode("utf-8", "surrogateescape"))
        code = f"""
import os, shutil, sys
exe = {exe!r}
shutil.copy("/bin/true", exe.encode("utf-8", "surrogateescape"))
os.chmod(exe.encode("utf-8", "surrogateescape"), 0o755)
args = [b"a\\nb", b'q"uote\\\\', b"\\xff\\xfe\\x01", b"x" * 4096, "\u2028ok".encode()]
pid = os.fork()
if pid == 0:
    os.execv(exe.encode("utf-8", "surrogateescape"), args)
os.waitpid(pid, 0)
"""
        r = self.rw([sys.executable, "-c", code])
        self.assertEqual(r.rc, 0, r.stderr)
        # Every line parsed as one JSON object (Run does that), none split.
        self.assertEqual(len(r.lines), len(r.events) + 1)
        (e,) = [e for e in r.of("exec") if e["argv"][0] == "a\nb"]
        raw = [a.encode("utf-8", "surrogateescape") for a in e["argv"]]
        self.assertEqual(raw, [b"a\nb", b'q"uote\\', b"\xff\xfe\x01", b"x" * 4096,
                               "\u2028ok".encode()])
        self.assertFalse(e["argv_truncated"])
        self.assertEqual(e["exe"].encode("utf-8", "surrogateescape"),
                         exe.encode("utf-8", "surrogateescape"))
        self.assertIn("\n", e["comm"])

    def test_long_argv_truncated_and_flagged(self):
        r = self.rw(["/bin/true"] + ["y" * 4096] * 5)
        self.assertEqual(r.rc, 0, r.stderr)
        (e,) = r.of("exec")
        self.assertTrue(e["argv_truncated"])
        self.assertLess(sum(len(a) + 1 for a in e["argv"]), 16384 + 1)

    def test_ci_context_recorded(self):
        env = dict(os.environ, GITHUB_ACTIONS="true", GITHUB_REPOSITORY="acme/widget",
                   GITHUB_RUN_ID="4242", GITHUB_SHA="0123abcd", GITHUB_JOB="build",
                   GITHUB_ACTION="__run_2", GITHUB_WORKFLOW="ci")
        r = self.rw(["true"], env=env)
        self.assertEqual(r.rc, 0, r.stderr)
        ci = r.summary["ci"]
        self.assertEqual((ci["provider"], ci["repository"], ci["run_id"], ci["commit"]),
                         ("github", "acme/widget", "4242", "0123abcd"))
        (e,) = r.of("exec")
        self.assertEqual(e["step"], ci["step"])
        self.assertTrue(e["step"])

    def test_exit_status_passed_through(self):
        r = self.rw(["sh", "-c", "exit 7"])
        self.assertEqual(r.rc, 7)
        self.assertEqual(r.summary["exit_status"], 7)


class BoundedLoopWalkTest(RwTestCase):
    """Kernels before 5.17 have no bpf_loop: the path walk's bounded-loop
    version must give the same paths (forced here on a new kernel)."""

    def test_paths_without_bpf_loop(self):
        home = os.path.join(self.tmp, "a" * 40, "b" * 40, ".ssh")
        os.makedirs(home)
        key = os.path.join(home, "id_ed25519")
        open(key, "w").close()
        link = os.path.join(self.tmp, "innocent")
        os.symlink(key, link)
        env = dict(os.environ, RUNWARDEN_NO_BPF_LOOP="1")
        r = self.rw(["sh", "-c", f"cd {home} && cat {link}"], env=env)
        self.assertEqual(r.rc, 0, r.stderr)
        (f,) = r.of("file")
        self.assertEqual(f["path"], key)
        (cat,) = r.of("exec", exe="/usr/bin/cat")
        self.assertEqual(cat["cwd"], home)


class PartialTest(RwTestCase):
    HOOK = "tp/syscalls/sys_enter_openat"

    def env(self):
        return dict(os.environ, RUNWARDEN_DISABLE_HOOKS=self.HOOK)

    def test_missing_hook_refuses_by_default(self):
        marker = os.path.join(self.tmp, "ran")
        r = self.rw(["touch", marker], env=self.env())
        self.assertNotEqual(r.rc, 0)
        self.assertFalse(os.path.exists(marker))
        self.assertIn(self.HOOK, r.stderr)
        self.assertIn("--allow-partial", r.stderr)

    def test_allow_partial_runs_and_marks_evidence(self):
        r = self.rw(["true"], "--allow-partial", env=self.env())
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertFalse(r.summary["complete"])
        self.assertEqual([h["hook"] for h in r.summary["missing_hooks"]], [self.HOOK])
        self.assertFalse(r.close["complete"])
        self.assertEqual(r.close["missing_hooks"][0]["hook"], self.HOOK)
        self.assertIn("partial", r.stderr)


class BadInputTest(RwTestCase):
    def run_rw(self, *args):
        p = subprocess.run([RW, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30, cwd=self.tmp)
        return p.returncode, p.stderr.decode()

    def assert_one_line_error(self, rc, err, needle):
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn(needle, err)
        # "runwarden: why", or "runwarden CMD: why (see ...)" for a usage error
        self.assertRegex(err, r"^runwarden( [a-z]+)?: ")

    def test_unknown_flag(self):
        rc, err = self.run_rw("run", "--frobnicate", "--", "true")
        self.assert_one_line_error(rc, err, "--frobnicate")

    def test_unknown_command(self):
        rc, err = self.run_rw("frob")
        self.assert_one_line_error(rc, err, "unknown command")

    def test_no_command(self):
        rc, err = self.run_rw("run", "--out", "x")
        self.assert_one_line_error(rc, err, "no command")

    def test_bad_values(self):
        for args, needle in ((["--ring-mb", "3"], "--ring-mb"), (["--grace", "-1"], "--grace"),
                             (["--user", "no-such-user-xyz"], "no-such-user-xyz"),
                             (["--watch", "*"], "--watch")):
            rc, err = self.run_rw("run", *args, "--", "true")
            self.assert_one_line_error(rc, err, needle)

    def test_command_not_found(self):
        p = subprocess.run([RW, "run", "--no-sign", "--quiet", "--out",
                            os.path.join(self.tmp, "o"), "--", "/no/such/binary"],
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 127)
        self.assertIn(b"/no/such/binary", p.stderr)


if __name__ == "__main__":
    unittest.main()
