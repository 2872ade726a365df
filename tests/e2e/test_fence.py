"""Fence integrity: a hostile job trying to get out of the fence rather than
through it. Leftovers after the end, runwarden killed, inbound connections,
sockets borrowed from outside with pidfd_getfd, and a root job's tampering
(moving itself out of its cgroup, detaching a link). Each is refused or ends
the job in enforce mode, and the evidence says what happened.

Loopback only: TCP servers on 127.0.31.x stand in for the outside world, and
127.0.31.9 is a peer the policy does not list.
"""
import ctypes
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
import time

import test_agent as agent_fixtures  # the module, so its tests are not collected here
from rwtest import RW, Run, RwTestCase, TcpServer, cgroup2_mount, leftover_cgroups

BAD, PEER = "127.0.31.2", "127.0.31.9"

CONNECT_LATER = """
import socket, sys, time
time.sleep(float(sys.argv[3]))
s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    r = "ok"
except OSError as e:
    r = str(e.errno)
with open(sys.argv[4], "w") as f:
    f.write(r)
"""

# Listens on the job's side, accepts for a while, greets every peer.
SERVER = """
import os, socket, sys, time
s = socket.socket()
s.bind(("0.0.0.0", 0))
s.listen(8)
s.settimeout(0.2)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
end = time.time() + 20
while time.time() < end and not os.path.exists(sys.argv[2]):
    try:
        c, _ = s.accept()
    except OSError:
        continue
    c.sendall(b"hello")
    c.close()
"""

# Takes fd N from pid P with pidfd_getfd(2) and connects it to addr:port.
GETFD = """
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
pidfd = os.pidfd_open(int(sys.argv[1]))
fd = libc.syscall(438, pidfd, int(sys.argv[2]), 0)
if fd < 0:
    print("getfd", os.strerror(ctypes.get_errno())); sys.exit(3)
s = socket.socket(fileno=fd)
s.settimeout(3)
try:
    s.connect((sys.argv[3], int(sys.argv[4]))); print("connected")
except OSError as e:
    print("connect", e.errno)
"""

# A process outside the job holding a fresh TCP socket: the victim.
VICTIM = """
import socket, sys, time
s = socket.socket()
print(s.fileno(), flush=True)
time.sleep(60)
"""


class FenceTest(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.bad = TcpServer(BAD)

    @classmethod
    def tearDownClass(cls):
        cls.bad.stop()

    def tearDown(self):
        # The keeper removes a scope once its last process is gone.
        deadline = time.time() + 20
        while self.new_scopes() and time.time() < deadline:
            time.sleep(0.1)
        super().tearDown()

    def policy(self, mode="enforce", extra=""):
        path = os.path.join(self.tmp, f"policy-{mode}.yaml")
        with open(path, "w") as f:
            f.write(f"version: 1\nmode: {mode}\nallow:\n  - ip: 127.0.31.1\n{extra}")
        return path

    def py(self, code, *args):
        return [sys.executable, "-c", code, *map(str, args)]

    def wait_for(self, cond, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return True
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------ leftovers

    def test_leftover_stays_fenced_after_the_end(self):
        before = self.bad.accepted
        result = os.path.join(self.tmp, "result")
        later = " ".join(map(shlex.quote, self.py(CONNECT_LATER, BAD, self.bad.port, 3, result)))
        r = self.rw(["sh", "-c", f"(setsid {later} &); exit 0"], "--policy", self.policy(),
                    "--grace", "1")
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertTrue(self.wait_for(lambda: os.path.exists(result)), "leftover never ran")
        with open(result) as f:
            self.assertEqual(f.read(), "1")  # EPERM, after runwarden was gone
        self.assertEqual(self.bad.accepted, before)
        self.assertIs(r.summary["complete"], False)
        self.assertEqual(r.summary["leftovers_fate"], "fenced")
        self.assertTrue(any("not recorded" in w for w in r.summary["incomplete_reasons"]))
        self.assertIs(r.close["complete"], False)
        self.assertEqual(r.close["incomplete_reasons"], r.summary["incomplete_reasons"])

    def test_killed_leftovers_leave_the_record_complete(self):
        r = self.rw(["sh", "-c", "(setsid sleep 60 &); exit 0"], "--grace", "1",
                    "--kill-leftovers")
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.summary["leftovers_fate"], "killed")
        self.assertIs(r.summary["complete"], True)

    # ------------------------------------------------------------ runwarden killed

    def test_runwarden_killed_ends_the_job(self):
        before = self.bad.accepted
        tries = os.path.join(self.tmp, "tries")
        loop = (f"kill -9 $PPID; for i in $(seq 20); do "
                f"{sys.executable} -c 'import socket; s=socket.socket(); s.settimeout(1)\n"
                f"try: s.connect((\"{BAD}\", {self.bad.port})); print(\"ok\")\n"
                f"except OSError as e: print(e.errno)' >> {tries}; sleep 0.2; done")
        r = self.rw(["sh", "-c", loop], "--policy", self.policy())
        self.assertEqual(r.rc, -9)
        # The keeper ends the job: its scope goes away long before 20 tries.
        self.assertTrue(self.wait_for(lambda: not self.new_scopes(), timeout=10),
                        "the job outlived runwarden")
        # The keeper may end the job before its first try is written: no file then.
        out = open(tries).read().split() if os.path.exists(tries) else []
        self.assertLess(len(out), 20, out)
        self.assertNotIn("ok", out)
        self.assertEqual(self.bad.accepted, before)
        self.assertIsNone(r.close, "a killed runwarden cannot have closed the log")

    # ------------------------------------------------------------ inbound

    def serve_and_probe(self, policy):
        portfile, stop = os.path.join(self.tmp, "port"), os.path.join(self.tmp, "stop")
        p = subprocess.Popen([RW, "run", "--out", os.path.join(self.tmp, "out"), "--no-sign",
                              "--policy", policy, "--", *self.py(SERVER, portfile, stop)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertTrue(self.wait_for(lambda: os.path.exists(portfile)), "no server")
            with open(portfile) as f:
                port = int(f.read())
            results = {}
            for src in (PEER, "127.0.0.1"):
                s = socket.socket()
                s.settimeout(2)
                s.bind((src, 0))
                try:
                    s.connect(("127.0.0.1", port))
                    results[src] = s.recv(5).decode()
                except OSError as e:
                    results[src] = type(e).__name__
                s.close()
        finally:
            open(stop, "w").close()
            _, err = p.communicate(timeout=60)
        return results, Run(p.returncode, err.decode(), os.path.join(self.tmp, "out")), port

    def test_inbound_from_unlisted_peer_refused(self):
        results, r, port = self.serve_and_probe(self.policy())
        self.assertEqual(results, {PEER: "TimeoutError", "127.0.0.1": "hello"}, r.stderr)
        denied = r.of("accept", peer=PEER)
        self.assertTrue(denied, r.events)
        self.assertTrue(all(e["verdict"] == "deny" and e["local_port"] == port
                            for e in denied), denied)
        (ok,) = r.of("accept", peer="127.0.0.1")
        self.assertEqual((ok["verdict"], ok["local_port"], ok["via"]), ("allow", port, "accept"))
        self.assertTrue(ok["pid"])
        self.assertNotEqual(r.rc, 0)  # a refused peer is a violation

    def test_inbound_recorded_in_observe(self):
        results, r, port = self.serve_and_probe(self.policy("observe"))
        self.assertEqual(results, {PEER: "hello", "127.0.0.1": "hello"}, r.stderr)
        (e,) = r.of("accept", peer=PEER)
        self.assertEqual((e["verdict"], e["local_port"]), ("audit", port))
        self.assertEqual(r.summary["audits"], 1)

    def test_inbound_policy_lists_a_peer(self):
        pol = self.policy(extra=f"inbound:\n  - cidr: {PEER}/32\n")
        results, r, _ = self.serve_and_probe(pol)
        # Listing a peer replaces the default: 127.0.0.1 is refused now.
        self.assertEqual(results, {PEER: "hello", "127.0.0.1": "TimeoutError"}, r.stderr)

    def test_job_connecting_to_itself_is_not_inbound(self):
        # A client and a server of the same job, the client on an address
        # the inbound list does not name: the job's own SYN, not a peer's.
        code = textwrap.dedent("""
            import socket
            s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen(1)
            c = socket.socket(); c.bind(("127.0.31.7", 0)); c.settimeout(3)
            c.connect(("127.0.0.1", s.getsockname()[1]))
            a, peer = s.accept(); a.sendall(b"hi")
            print(c.recv(2).decode(), peer[0])
        """)
        r = self.rw(self.py(code), "--policy", self.policy(extra="  - ip: 127.0.0.1\n"))
        self.assertEqual(r.stdout.strip(), "hi 127.0.31.7", r.stderr)
        self.assertEqual(r.of("accept"), [])  # its connect is the record
        (c,) = r.of("connect", daddr="127.0.0.1")
        self.assertEqual(c["verdict"], "allow")
        self.assertEqual(r.rc, 0, r.stderr)

    # ------------------------------------------------------------ pidfd_getfd

    def borrow(self, mode):
        victim = subprocess.Popen(self.py(VICTIM), stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (victim.kill(), victim.wait()))
        fd = int(victim.stdout.readline())
        before = self.bad.accepted
        r = self.rw(self.py(GETFD, victim.pid, fd, BAD, self.bad.port), "--policy",
                    self.policy(mode))
        return r, victim.pid, fd, self.bad.accepted - before

    def test_pidfd_getfd_refused_in_enforce(self):
        r, pid, fd, reached = self.borrow("enforce")
        self.assertEqual(r.stdout.strip(), "getfd Operation not permitted", r.stderr)
        self.assertEqual(reached, 0)
        (e,) = r.of("pidfd_getfd")
        self.assertEqual((e["target"]["pid"], e["target"]["in_job"], e["target_fd"]),
                         (pid, False, fd))
        self.assertEqual((e["verdict"], e["result"]), ("deny", "EPERM"))

    def test_pidfd_getfd_recorded_in_observe(self):
        r, pid, fd, reached = self.borrow("observe")
        self.assertEqual(r.stdout.strip(), "connected", r.stderr)
        (e,) = r.of("pidfd_getfd")
        self.assertEqual((e["target"]["pid"], e["target_fd"], e["verdict"]), (pid, fd, "audit"))
        self.assertEqual(e["result"], "ok")

    # ------------------------------------------------------------ root tampering

    def move_out(self, mode):
        before = self.bad.accepted
        procs = os.path.join(cgroup2_mount(), "cgroup.procs")
        marker = os.path.join(self.tmp, "after-move")
        script = (f"echo $$ > {procs} && touch {marker} && "
                  f"exec {sys.executable} -c '{CONNECT_LATER}' {BAD} {self.bad.port} 0 "
                  f"{os.path.join(self.tmp, 'result')}")
        r = self.rw(["sh", "-c", script], "--policy", self.policy(mode))
        return r, marker, self.bad.accepted - before

    def test_root_job_moving_itself_out_is_ended(self):
        r, marker, reached = self.move_out("enforce")
        self.assertFalse(os.path.exists(marker), "the moved process went on running")
        self.assertEqual(reached, 0)
        (e,) = r.of("cgroup_move")
        self.assertEqual((e["verdict"], e["killed"], e["cgroup"]), ("deny", True, "/"))
        self.assertIs(r.summary["complete"], False)
        self.assertTrue(any("moved out of the job's cgroup" in w
                            for w in r.summary["incomplete_reasons"]))
        self.assertNotEqual(r.rc, 0)

    def test_root_job_moving_itself_out_marks_observe_incomplete(self):
        r, marker, _ = self.move_out("observe")
        self.assertTrue(os.path.exists(marker))
        (e,) = r.of("cgroup_move")
        self.assertEqual((e["verdict"], e["killed"]), ("audit", False))
        self.assertIs(r.summary["complete"], False)
        self.assertIs(r.close["complete"], False)

    def test_root_job_detaching_a_link_is_ended(self):
        if not shutil.which("bpftool"):
            self.skipTest("bpftool is not installed")
        before = self.bad.accepted
        code = textwrap.dedent(f"""
            import json, os, subprocess, sys, time
            cg = open("/proc/self/cgroup").read().split("0::")[1].strip()
            cgid = os.stat({cgroup2_mount()!r} + cg).st_ino
            links = json.loads(subprocess.check_output(["bpftool", "-j", "link", "show"]))
            ours = [l["id"] for l in links if l.get("cgroup_id") == cgid]
            # Said first: runwarden ends the job as soon as it sees the first link go.
            print(len(ours), flush=True)
            for i in ours:
                subprocess.check_call(["bpftool", "link", "detach", "id", str(i)])
            time.sleep(5)
            print("survived", flush=True)
        """)
        r = self.rw(self.py(code), "--policy", self.policy())
        self.assertGreater(int(r.stdout.split()[0]), 0, r.stderr)
        self.assertNotIn("survived", r.stdout)
        self.assertEqual(self.bad.accepted, before)
        (e,) = r.of("fence")
        self.assertEqual((e["what"], e["verdict"]), ("link_detached", "deny"))
        self.assertIs(r.summary["complete"], False)
        self.assertTrue(any("detached" in w for w in r.summary["incomplete_reasons"]))

    def test_root_job_killing_the_keeper_is_ended(self):
        # The keeper is runwarden's other child: the job's parent's.
        code = textwrap.dedent("""
            import os, signal, time
            ppid = os.getppid()
            keepers = []
            for p in filter(str.isdigit, os.listdir("/proc")):
                try:
                    stat = open(f"/proc/{p}/stat").read()
                except OSError:
                    continue
                comm = stat[stat.index("(") + 1:stat.rindex(")")]
                if comm == "runwarden-keep" and int(stat[stat.rindex(")") + 2:].split()[1]) == ppid:
                    keepers.append(int(p))
            # Said before the kill: runwarden ends the job as soon as it sees the keeper go.
            print(len(keepers), flush=True)
            for k in keepers:
                os.kill(k, signal.SIGKILL)
            time.sleep(5)
            print("survived", flush=True)
        """)
        r = self.rw(self.py(code), "--policy", self.policy())
        self.assertEqual(r.stdout.split()[:1], ["1"], r.stderr)
        self.assertNotIn("survived", r.stdout)
        (e,) = r.of("fence")
        self.assertEqual((e["what"], e["verdict"]), ("keeper_gone", "deny"))
        self.assertIs(r.summary["complete"], False)

    # ------------------------------------------------------------ --user

    def test_user_cannot_regain_root_through_setuid(self):
        os.chmod(self.tmp, 0o755)
        suid = os.path.join(self.tmp, "suid-id")
        shutil.copy("/usr/bin/id", suid)
        os.chmod(suid, 0o4755)
        r = self.rw([suid, "-u"], "--user", "nobody")
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "65534")
        if shutil.which("sudo"):
            r = self.rw(["sudo", "-n", "true"], "--user", "nobody",
                        out=os.path.join(self.tmp, "out-sudo"))
            self.assertNotEqual(r.rc, 0)




class WholeJobFenceTest(RwTestCase):
    """The same attacks from a step of a whole-job run (`runwarden agent`):
    no seccomp filter can be put on a runner that is already running, so a
    borrowed descriptor costs the caller its life instead."""

    @classmethod
    def setUpClass(cls):
        cls.bad = TcpServer(BAD)

    @classmethod
    def tearDownClass(cls):
        cls.bad.stop()

    def setUp(self):
        super().setUp()
        self.pin_root = f"/sys/fs/bpf/rw-e2e-fence-{os.getpid()}"
        self.agent = agent_fixtures.Agent(self.tmp, self.pin_root)
        self.worker = agent_fixtures.Worker()
        self.addCleanup(self.cleanup)
        self.out = os.path.join(self.tmp, "out")
        pol = os.path.join(self.tmp, "policy.yaml")
        with open(pol, "w") as f:
            f.write("version: 1\nmode: enforce\nallow:\n  - ip: 127.0.31.1\n")
        rc, _, err = self.agent.job("start", "--pid", str(self.worker.pid), "--out", self.out,
                                    "--no-sign", "--policy", pol)
        self.assertEqual(rc, 0, err)

    def tearDown(self):
        ours = tuple(f"runwarden-{p}-" for p in self.agent.pids)
        deadline = time.time() + 10
        while time.time() < deadline and any(
                d.startswith(ours) for d in set(leftover_cgroups()) - self.cg_before):
            time.sleep(0.1)
        left = {d for d in set(leftover_cgroups()) - self.cg_before if d.startswith(ours)}
        self.assertEqual(left, set(), self.agent.logtext())

    def cleanup(self):
        self.agent.kill()
        self.worker.stop()
        # Pass or fail, no scope or pin of this test's agents survives it.
        agent_fixtures.AgentTest.clean_kernel(self)

    def stop(self):
        rc, _, err = self.agent.job("stop")
        return Run(rc, err, self.out)

    def test_pidfd_getfd_kills_the_caller(self):
        victim = subprocess.Popen([sys.executable, "-c", VICTIM], stdout=subprocess.PIPE,
                                  text=True)
        self.addCleanup(lambda: (victim.kill(), victim.wait(), victim.stdout.close()))
        fd = int(victim.stdout.readline())
        before = self.bad.accepted
        r = self.worker.step(sys.executable, "-c", GETFD, str(victim.pid), str(fd), BAD,
                             str(self.bad.port))
        self.assertEqual((r["rc"], r["out"]), (-9, ""))
        self.assertEqual(self.bad.accepted, before)
        run = self.stop()
        (e,) = run.of("pidfd_getfd")
        self.assertEqual((e["target"]["pid"], e["verdict"], e["killed"], e["result"]),
                         (victim.pid, "deny", True, "ok"))
        self.assertNotEqual(run.rc, 0)

    def test_step_moving_out_ends_the_job(self):
        procs = os.path.join(cgroup2_mount(), "cgroup.procs")
        marker = os.path.join(self.tmp, "after-move")
        self.worker.proc.stdin.write(json.dumps(
            ["sh", "-c", f"echo $$ > {procs} && touch {marker}"]) + "\n")
        self.worker.proc.stdin.flush()
        # The job is ended: the runner's worker itself is killed with it.
        self.assertEqual(self.worker.proc.wait(10), -9)
        self.assertFalse(os.path.exists(marker))
        run = self.stop()
        (e,) = run.of("cgroup_move")
        self.assertEqual((e["verdict"], e["killed"]), ("deny", True))
        self.assertIs(run.summary["complete"], False)
        self.assertTrue(any("moved out" in w for w in run.summary["incomplete_reasons"]))


if __name__ == "__main__":
    import unittest
    unittest.main()
