"""Whole-job mode: `runwarden agent` with `runwarden job start/stop`.

A real daemon on a temp socket, state dir and bpffs pin root; a stand-in for
the CI runner's worker (a Python process that runs "steps" on request, each a
child of it, the way Runner.Worker does) is put under watch with --pid.
Loopback only: dnsmasq on 127.0.53.1, TCP servers on 127.0.40.x.
"""
import json
import os
import struct
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

from rwtest import RW, TOOLS, Dnsmasq, Run, RwTestCase, TcpServer, cgroup2_mount

GOOD, BAD = "127.0.40.1", "127.0.40.2"

WORKER = r"""
import json, socket, subprocess, sys
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd[0] == "__connect":  # the worker itself, as a runner talks to its server
        s = socket.socket(); s.settimeout(5)
        try:
            s.connect((cmd[1], int(cmd[2]))); out = "ok"
        except OSError as e:
            out = str(e.errno)
        s.close()
        sys.stdout.write(json.dumps({"rc": 0, "out": out}) + "\n")
        sys.stdout.flush()
        continue
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sys.stdout.write(json.dumps({"rc": p.returncode, "out": p.stdout.decode("utf-8", "replace")}) + "\n")
    sys.stdout.flush()
"""

CONNECT = """
import socket, sys
s = socket.socket()
s.settimeout(5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("ok")
except OSError as e:
    print(e.errno)
"""


def agent_pids(sock):
    """The processes running `runwarden agent` on this control socket, found by their argv."""
    pids = []
    for e in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{e}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"agent" in argv and sock.encode() in argv:
            pids.append(int(e))
    return pids


def is_daemon(pid, starter):
    """The starter's daemon has a session of its own (setsid); a child the starter forks on
    its way (before that child's exec) has the starter's."""
    try:
        return pid != starter and os.getsid(pid) == pid
    except ProcessLookupError:
        return False


class Worker:
    """The runner's worker stand-in: runs each step as its own child."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid

    def step(self, *cmd):
        self.proc.stdin.write(json.dumps(list(cmd)) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def connect(self, addr, port):
        return self.step(sys.executable, "-c", CONNECT, addr, str(port))["out"].strip()

    def cgroup(self):
        with open(f"/proc/{self.pid}/cgroup") as f:
            return [l.split("::", 1)[1].strip() for l in f if l.startswith("0::")][0]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdin.close()
        self.proc.stdout.close()


class Agent:
    def __init__(self, tmp, pin_root, extra=()):
        self.tmp, self.pin_root = tmp, pin_root
        self.extra = list(extra)
        self.sock = os.path.join(tmp, "ctl", "agent.sock")
        self.state = os.path.join(tmp, "state")
        self.proc = None
        self.pids = []  # every agent this fixture started: their scopes are ours
        self.start()

    def start(self):
        self.log = open(os.path.join(self.tmp, "agent.log"), "a")
        self.proc = subprocess.Popen([RW, "agent", "--foreground", "--socket", self.sock,
                                      "--state", self.state, "--pin-root", self.pin_root,
                                      *self.extra],
                                     stdout=self.log, stderr=self.log)
        self.pids.append(self.proc.pid)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}: {self.logtext()}")
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.sock)
                s.close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("agent did not listen")

    def logtext(self):
        with open(os.path.join(self.tmp, "agent.log")) as f:
            return f.read()

    def job(self, *args, timeout=120):
        p = subprocess.run([RW, "job", args[0], "--socket", self.sock, *args[1:]],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def request(self, raw, shut=True, timeout=10):
        """One raw exchange on the control socket: the reply as JSON."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(self.sock)
        try:
            if raw:
                s.sendall(raw)
        except OSError:
            pass  # the agent may stop reading an oversized request early
        if shut:
            s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        return json.loads(data)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        self.log.close()


class AgentTest(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = Dnsmasq(records=[("allowed.test", GOOD), ("evil.test", BAD),
                                   ("example.test", "127.0.20.3")])
        cls.good = TcpServer(GOOD)
        cls.bad = TcpServer(BAD)

    @classmethod
    def tearDownClass(cls):
        cls.good.stop()
        cls.bad.stop()
        cls.dns.stop()

    def setUp(self):
        super().setUp()
        self.pin_root = f"/sys/fs/bpf/rw-e2e-{uuid.uuid4().hex[:12]}"
        self.addCleanup(self.clean_kernel)
        self.workers = []
        self.agent = Agent(self.tmp, self.pin_root)
        self.addCleanup(self.stop_all)

    def tearDown(self):
        # Only our agents' scopes (runwarden-<agent pid>-*): other runwarden
        # runs on this machine may come and go while we run.
        ours = tuple(f"runwarden-{p}-" for p in self.agent.pids)
        left = {d for d in set(os.listdir(cgroup2_mount())) - self.cg_before
                if d.startswith(ours)}
        self.assertEqual(left, set(), "the agent left cgroups behind:\n" + self.agent.logtext())

    def stop_all(self):
        self.agent.kill()
        for w in self.workers:
            w.stop()

    def clean_kernel(self):
        """Pass or fail: no scope, pin or process of ours survives the test."""
        mnt = cgroup2_mount()
        ours = tuple(f"runwarden-{p}-" for p in self.agent.pids)
        for d in set(os.listdir(mnt)) - self.cg_before:
            if d.startswith(ours):  # never another run's scope
                try:
                    with open(os.path.join(mnt, d, "cgroup.kill"), "w") as f:
                        f.write("1")
                except OSError:
                    pass
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

    def worker(self):
        w = Worker()
        self.workers.append(w)
        return w

    def policy(self):
        path = os.path.join(self.tmp, "policy.yaml")
        with open(path, "w") as f:
            f.write(f"""version: 1
mode: enforce
allow:
  - ip: {GOOD}
    ports: [{self.good.port}]
dns:
  upstream: 127.0.53.1
""")
        return path

    def pins(self):
        return os.listdir(self.pin_root) if os.path.isdir(self.pin_root) else []

    def assert_released(self, w):
        self.assertFalse(w.cgroup().split("/")[-1].startswith("runwarden-"), w.cgroup())

    # ------------------------------------------------------------ tests

    def test_daemon_keeps_none_of_the_callers_descriptors(self):
        """`runwarden agent &` in a CI step: the daemon lives for the whole job, so a pipe the
        step passed it (its output on fd 3) must reach EOF when the starting process exits."""
        rd, wr = os.pipe()
        d = os.path.join(self.tmp, "daemon")
        os.makedirs(d)
        sock = os.path.join(d, "agent.sock")
        pins = f"/sys/fs/bpf/rw-e2e-{uuid.uuid4().hex[:12]}"
        p = subprocess.run([RW, "agent", "--socket", sock, "--state", os.path.join(d, "state"),
                            "--pin-root", pins], pass_fds=(wr,), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=60)
        os.close(wr)
        self.assertEqual(p.returncode, 0, p.stderr)
        # The socket was made before the fork: the daemon is the one process left with it.
        pid = next(iter(agent_pids(sock)), None)
        self.assertIsNotNone(pid, "no daemon running")
        def stop():
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not os.path.exists(f"/proc/{pid}"):
                    break
                time.sleep(0.05)
            shutil.rmtree(pins, ignore_errors=True)
        self.addCleanup(stop)
        ready, _, _ = select.select([rd], [], [], 10)
        self.assertTrue(ready, "the daemon still holds the caller's pipe")
        self.assertEqual(os.read(rd, 1), b"")
        os.close(rd)

    def start_daemon_logging_to_a_fifo(self):
        """`runwarden agent` (daemonizing) whose log is a FIFO nobody reads yet: the daemon
        blocks opening it, after the fork and before it is ready. Returns the starting
        process, the daemon's pid and the FIFO's path."""
        d = os.path.join(self.tmp, "daemon")
        state = os.path.join(d, "state")
        os.makedirs(state, 0o700)
        sock = os.path.join(d, "agent.sock")
        fifo = os.path.join(state, "agent.log")
        os.mkfifo(fifo, 0o600)
        pins = f"/sys/fs/bpf/rw-e2e-{uuid.uuid4().hex[:12]}"
        self.addCleanup(shutil.rmtree, pins, True)
        p = subprocess.Popen([RW, "agent", "--socket", sock, "--state", state, "--pin-root",
                              pins], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        self.addCleanup(p.stderr.close)
        daemon = None
        deadline = time.time() + 60
        while daemon is None and time.time() < deadline:
            if p.poll():
                self.fail(f"the agent failed before its daemon was forked: {p.stderr.read()}")
            daemon = next((pid for pid in agent_pids(sock) if is_daemon(pid, p.pid)), None)
            time.sleep(0.05)
        self.assertIsNotNone(daemon, "the agent never forked its daemon")

        def stop():
            try:
                os.kill(daemon, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.addCleanup(stop)
        return p, daemon, fifo

    def test_started_daemon_is_ready_when_the_command_returns(self):
        """A step runs `runwarden agent` and at once reads the log for the daemon's pid (or
        stops it, or starts a job): the command must return only once the daemon is ready.
        It returned right after the fork, and the log line was not there yet on a busy
        machine."""
        p, daemon, fifo = self.start_daemon_logging_to_a_fifo()
        with self.assertRaises(subprocess.TimeoutExpired, msg="returned before the daemon "
                               "was ready"):
            p.wait(2)
        log = b""
        with open(fifo, "rb", buffering=0) as f:  # the daemon goes on once it is read
            deadline = time.time() + 60
            while b"agent listening on" not in log and time.time() < deadline:
                ready, _, _ = select.select([f], [], [], 1)
                if ready:
                    chunk = f.read(4096)
                    if not chunk:
                        break
                    log += chunk
            self.assertEqual(p.wait(30), 0, p.stderr.read())
        self.assertIn(f"(pid {daemon})".encode(), log)
        os.kill(daemon, 0)

    def test_daemon_dying_before_it_is_ready_fails_the_command(self):
        p, daemon, _ = self.start_daemon_logging_to_a_fifo()
        os.kill(daemon, signal.SIGKILL)
        self.assertEqual(p.wait(30), 1)
        self.assertIn("stopped before it was ready", p.stderr.read().decode())

    def test_lifecycle_two_jobs_back_to_back(self):
        ref = self.rw(["/bin/true"], out=os.path.join(self.tmp, "ref"))  # `run`'s file set
        self.assertEqual(ref.rc, 0, ref.stderr)
        for i in (1, 2):
            w = self.worker()
            out = os.path.join(self.tmp, f"out{i}")
            rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out, "--no-sign",
                                        "--step", f"job{i}")
            self.assertEqual(rc, 0, err)
            self.assertIn("armed", err)
            self.assertEqual(len(self.pins()), 1)
            self.assertTrue(w.cgroup().split("/")[-1].startswith("runwarden-"))
            r = w.step(f"{TOOLS}/static_dns", "127.0.53.1", "53", f"name{i}.example.test")
            self.assertEqual(r["rc"], 0, r)
            self.assertEqual(w.connect(GOOD, self.good.port), "ok")
            # A step that leaves a daemon behind: killed at stop (the default).
            w.step("sh", "-c", "sleep 300 >/dev/null 2>&1 &")
            rc, _, err = self.agent.job("stop")
            self.assertEqual(rc, 0, err)
            self.assertIn("observe run finished", err)  # the summary `run` prints
            run = Run(rc, err, out)
            self.assertIsNotNone(run.close, "no closing record")
            run.verify_chain()
            self.assertTrue(run.summary["complete"])
            self.assertEqual(run.summary["step"], f"job{i}")
            self.assertTrue(run.of("exec", exe=os.path.realpath(f"{TOOLS}/static_dns")))
            self.assertTrue(run.of("connect", daddr=GOOD, dport=self.good.port))
            self.assertTrue(any(e.get("query") == f"name{i}.example.test"
                                for e in run.of("dns")), run.of("dns"))
            self.assertTrue(any("sleep" in l["cmdline"] for l in run.summary["leftovers"]))
            self.assertTrue(run.summary["leftovers_killed"])
            self.assertEqual(sorted(os.listdir(out)), sorted(os.listdir(ref.outdir)))
            # The watched process itself is released, alive, not killed.
            self.assertIsNone(w.proc.poll())
            self.assert_released(w)
            self.assertEqual(self.pins(), [])
            self.assertFalse(os.path.exists(os.path.join(self.agent.state, "job.json")))
            # After stop nothing of the worker's is recorded any more.
            self.assertEqual(w.step("/bin/true")["rc"], 0)
            self.assertEqual(len(Run(0, "", out).lines), len(run.lines))

    def test_steps_from_each_process_environment(self):
        # GitHub's runner starts each step with its own GITHUB_ACTION; the
        # events of a step's whole process tree carry that step.
        w = self.worker()
        out = os.path.join(self.tmp, "out")
        rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out, "--no-sign")
        self.assertEqual(rc, 0, err)
        gh = ["env", "GITHUB_ACTIONS=true"]
        self.assertEqual(w.step(*gh, "GITHUB_ACTION=compile", "sh", "-c", "/bin/true")["rc"], 0)
        self.assertEqual(w.step(*gh, "GITHUB_ACTION=test", "sh", "-c",
                                "/bin/true; (/bin/true &); wait")["rc"], 0)
        self.assertEqual(w.step("/bin/true")["rc"], 0)  # not a CI step: the job's label
        rc, _, err = self.agent.job("stop")
        self.assertEqual(rc, 0, err)
        run = Run(rc, err, out)
        steps = [e["step"] for e in run.of("exec", exe="/usr/bin/true")]
        self.assertEqual(steps, ["compile", "test", "test", None])

    def test_baseline_whole_job(self):
        """agent --baseline: each stopped job is recorded under the key `job start` took from
        its own CI context; what a step never did before is first seen in the summary."""
        self.agent.kill()
        store = os.path.join(self.tmp, "baseline.db")
        self.agent = Agent(self.tmp, self.pin_root, ["--baseline", store,
                                                     "--baseline-min-runs", "1"])
        ci = dict(os.environ, GITHUB_ACTIONS="true", GITHUB_REPOSITORY="acme/app",
                  GITHUB_WORKFLOW="ci", GITHUB_JOB="build")
        gh = ["env", "GITHUB_ACTIONS=true", "GITHUB_ACTION=compile", sys.executable, "-c",
              CONNECT]
        runs = []
        for i, dests in enumerate(([GOOD], [GOOD, BAD])):
            w = self.worker()
            out = os.path.join(self.tmp, f"bl{i}")
            p = subprocess.run([RW, "job", "start", "--socket", self.agent.sock, "--pid",
                                str(w.pid), "--out", out, "--no-sign"], env=ci,
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            for d in dests:
                srv = self.good if d == GOOD else self.bad
                self.assertEqual(w.step(*gh, d, str(srv.port))["out"].strip(), "ok")
            rc, _, err = self.agent.job("stop")
            self.assertEqual(rc, 0, err)
            runs.append((Run(rc, err, out), err))
        first = runs[0][0].summary["baseline"]
        self.assertEqual(first["key"], {"repository": "acme/app", "workflow": "ci",
                                        "job": "build"})
        self.assertIn({"kind": "destination", "step": "compile",
                       "subject": f"tcp {GOOD}:{self.good.port}", "severity": "info"},
                      [{k: f[k] for k in ("kind", "step", "subject", "severity")}
                       for f in first["first_seen"]])
        run, err = runs[1]
        dests = [f for f in run.summary["baseline"]["first_seen"] if f["kind"] == "destination"]
        self.assertEqual([(f["step"], f["subject"], f["severity"]) for f in dests],
                         [("compile", f"tcp {BAD}:{self.bad.port}", "medium")])
        self.assertIn(f"first_seen_destination: destination tcp {BAD}:{self.bad.port} first seen",
                      err)
        self.assertIn(("first_seen_destination", "medium", "compile"),
                      [(f["kind"], f["severity"], f["step"]) for f in run.summary["findings"]])
        # a store the agent cannot reach refuses the job before anything is armed
        self.agent.kill()
        self.agent = Agent(self.tmp, self.pin_root,
                           ["--baseline", "postgresql://nobody@127.0.0.1:1/x"])
        w = self.worker()
        p = subprocess.run([RW, "job", "start", "--socket", self.agent.sock, "--pid",
                            str(w.pid), "--out", os.path.join(self.tmp, "never"), "--no-sign"],
                           env=ci, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot connect", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assert_released(w)
        self.assertEqual(self.pins(), [])

    def test_runner_own_connections_are_its_control_plane(self):
        # Enforce mode: the runner's worker reaching its server is allowed
        # and labelled; the same destination from a step is denied.
        w = self.worker()
        out = os.path.join(self.tmp, "out")
        rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out, "--no-sign",
                                    "--policy", self.policy(), "--mode", "enforce")
        self.assertEqual(rc, 0, err)
        self.assertEqual(w.step("__connect", BAD, str(self.bad.port))["out"], "ok")
        self.assertEqual(w.connect(BAD, self.bad.port), "1")  # EPERM for the step
        rc, _, err = self.agent.job("stop")
        self.assertNotEqual(rc, 0)  # the step's attempt is a violation
        run = Run(rc, err, out)
        evs = run.of("connect", daddr=BAD, dport=self.bad.port)
        self.assertEqual([(e["pid"] == w.pid, e["verdict"], e.get("runner")) for e in evs],
                         [(True, "allow", True), (False, "deny", None)])

    def test_containers_the_job_starts_are_followed(self):
        # The engine (this test, standing in for dockerd/runc) creates the
        # container's cgroup outside the job's scope, as a real engine does.
        engine = os.path.join(cgroup2_mount(), f"rw-engine-{os.getpid()}")
        os.mkdir(engine)
        self.addCleanup(os.rmdir, engine)
        self.agent.kill()
        self.agent = Agent(self.tmp, self.pin_root, ["--container-cgroups", engine])
        w = self.worker()
        out = os.path.join(self.tmp, "out")
        rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out, "--no-sign")
        self.assertEqual(rc, 0, err)
        cid = "docker-" + "cd" * 32 + ".scope"
        cg = os.path.join(engine, cid)
        os.mkdir(cg)
        self.addCleanup(os.rmdir, cg)
        time.sleep(0.2)
        code = f"""
import os, socket
with open({os.path.join(cg, 'cgroup.procs')!r}, "w") as f:
    f.write(str(os.getpid()))
socket.create_connection(("{GOOD}", {self.good.port}), timeout=5).close()
print(os.getpid())
"""
        c = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(c.returncode, 0, c.stderr)
        rc, _, err = self.agent.job("stop")
        self.assertEqual(rc, 0, err)
        run = Run(rc, err, out)
        self.assertEqual([(x["kind"], x["id"]) for x in run.summary["containers"]],
                         [("container", cid[len("docker-"):-len(".scope")])])
        (e,) = run.of("connect", pid=int(c.stdout.strip()))
        self.assertEqual((e["daddr"], e["dport"]), (GOOD, self.good.port))

    def test_signed_evidence_and_default_pid(self):
        # Without --pid the agent takes the client's parent: here a shell
        # that goes on to run the "steps" after `job start` returns.
        out = os.path.join(self.tmp, "out")
        script = (f"{RW} job start --socket {self.agent.sock} --out {out} || exit 9; "
                  f"{TOOLS}/static_dns 127.0.53.1 53 shell.example.test; "
                  f"{RW} job stop --socket {self.agent.sock}")
        p = subprocess.run(["sh", "-c", script], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr + self.agent.logtext())
        run = Run(0, p.stderr, out)
        self.assertTrue(run.of("exec", exe=os.path.realpath(f"{TOOLS}/static_dns")))
        self.assertTrue(run.summary["complete"])
        v = subprocess.run([RW, "verify", out], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        self.assertNotIn("AddressSanitizer", v.stdout)

    def test_enforce_whole_job(self):
        w = self.worker()
        out = os.path.join(self.tmp, "out")
        rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out, "--no-sign",
                                    "--policy", self.policy(), "--mode", "enforce")
        self.assertEqual(rc, 0, err)
        self.assertEqual(w.connect(GOOD, self.good.port), "ok")
        self.assertEqual(w.connect(BAD, self.bad.port), "1")  # EPERM
        rc, _, err = self.agent.job("stop")
        self.assertNotEqual(rc, 0, "a denial must fail the job")
        self.assertIn("violation", err)
        run = Run(rc, err, out)
        self.assertTrue(run.summary["complete"])
        self.assertGreaterEqual(run.summary["denials"], 1)
        self.assertTrue(all(e["verdict"] == "deny"
                            for e in run.of("connect", daddr=BAD, dport=self.bad.port)))
        self.assertEqual(w.connect(BAD, self.bad.port), "ok")  # released: no fence

    def test_learn_roundtrip_whole_job(self):
        # Observe a job whose CI steps reach different places, learn a policy from it, and
        # enforce that policy on the same job in whole-job mode: it must pass.
        gh = ["env", "GITHUB_ACTIONS=true"]
        code = CONNECT

        def job(out, *opts):
            w = self.worker()
            rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out, "--no-sign",
                                        *opts)
            self.assertEqual(rc, 0, err)
            build = w.step(*gh, "GITHUB_ACTION=build", sys.executable, "-c", code, GOOD,
                           str(self.good.port))
            test = w.step(*gh, "GITHUB_ACTION=test", sys.executable, "-c", code, BAD,
                          str(self.bad.port))
            self.assertEqual(w.step("__connect", GOOD, str(self.good.port))["out"], "ok")
            rc, _, err = self.agent.job("stop")
            return rc, err, build["out"].strip(), test["out"].strip()

        seen = os.path.join(self.tmp, "seen")
        rc, err, b, t = job(seen)
        self.assertEqual((rc, b, t), (0, "ok", "ok"), err)
        pol = os.path.join(self.tmp, "learned.yaml")
        p = subprocess.run([RW, "learn", seen, "--out", pol], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(pol) as f:
            text = f.read()
        # the steps are labels: what they reached is at the top level, which applies
        self.assertNotIn("allow: []", text)
        self.assertIn(f'- ip: "{GOOD}"', text)
        self.assertIn(f'- ip: "{BAD}"', text)
        self.assertIn("steps seen as labels", text)
        self.assertIn("connections of the CI runner itself are left out", text)
        chk = subprocess.run([RW, "policy", "check", pol, seen], capture_output=True, text=True)
        self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)
        self.assertIn(f"# run {seen} (top level): passes", chk.stdout)
        # the shape learn used to write (steps only, empty top level) is caught by check
        bad = os.path.join(self.tmp, "steps-only.yaml")
        with open(bad, "w") as f:
            f.write(f"""version: 1
mode: enforce
allow: []
steps:
  build:
    allow:
      - ip: "{GOOD}"
  test:
    allow:
      - ip: "{BAD}"
""")
        chk = subprocess.run([RW, "policy", "check", bad, seen], capture_output=True, text=True)
        self.assertEqual(chk.returncode, 1, chk.stdout + chk.stderr)
        self.assertIn(f"connect tcp {GOOD}:{self.good.port} x1", chk.stdout)
        self.assertIn(f"connect tcp {BAD}:{self.bad.port} x1", chk.stdout)
        self.assertIn("cannot pass 1 of the 1 run(s)", chk.stderr)
        # enforced where it was learned: the same job passes with zero denials
        rc, err, b, t = job(os.path.join(self.tmp, "enforced"), "--policy", pol, "--mode",
                            "enforce")
        self.assertEqual((rc, b, t), (0, "ok", "ok"), err)
        run = Run(rc, err, os.path.join(self.tmp, "enforced"))
        self.assertEqual(run.summary["denials"], 0)
        self.assertEqual(run.summary["violations"], [])

    def test_agent_killed_mid_job(self):
        w = self.worker()
        out = os.path.join(self.tmp, "out")
        rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out, "--no-sign",
                                    "--policy", self.policy(), "--mode", "enforce")
        self.assertEqual(rc, 0, err)
        self.assertEqual(w.connect(BAD, self.bad.port), "1")
        self.agent.kill(signal.SIGKILL)
        # The fence holds with nobody listening.
        self.assertEqual(w.connect(BAD, self.bad.port), "1")
        self.assertEqual(w.connect(GOOD, self.good.port), "ok")
        r = w.step(sys.executable, "-c", CONNECT, "127.0.40.3", "80")  # a fresh process too
        self.assertEqual(r["out"].strip(), "1")
        # Jobs of `run` meanwhile never borrow the copy whose maps the pinned fence still
        # reads (the agent's slot would be reset: its policy gone, the fence open).
        pol = os.path.join(self.tmp, "allow-bad.yaml")
        with open(pol, "w") as f:
            f.write(f"version: 1\nmode: enforce\nallow:\n  - ip: {BAD}\n")
        for i in range(2):
            p = subprocess.run([RW, "run", "--no-sign", "--out", os.path.join(self.tmp, f"r{i}"),
                                "--policy", pol, "--", sys.executable, "-c", CONNECT, BAD,
                                str(self.bad.port)], capture_output=True, text=True, timeout=60)
            self.assertEqual(p.stdout.strip(), "ok", p.stderr)
        self.assertEqual(w.connect(BAD, self.bad.port), "1")
        with open(os.path.join(out, "events.ndjson"), "rb") as f:
            log_before = f.read()

        self.agent.start()
        rc, status, err = self.agent.job("status")
        self.assertEqual(rc, 0, err)
        self.assertFalse(json.loads(status)["recording"])
        self.assertEqual(w.connect(BAD, self.bad.port), "1")  # still fenced after restart
        rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out + "2")
        self.assertNotEqual(rc, 0)
        self.assertIn("busy", err)

        rc, _, err = self.agent.job("stop")
        self.assertNotEqual(rc, 0, err)
        self.assertIn("INCOMPLETE", err)
        with open(os.path.join(out, "events.ndjson"), "rb") as f:
            self.assertEqual(f.read(), log_before, "nothing may be appended to a cut log")
        run = Run(rc, err, out)
        self.assertIsNone(run.close)
        self.assertIs(run.summary["complete"], False)
        self.assertIn("stopped before the job ended", run.summary["incomplete_reason"])
        self.assertEqual(self.pins(), [])
        self.assert_released(w)
        self.assertEqual(w.connect(BAD, self.bad.port), "ok")  # fence gone with the job
        rep = subprocess.run([RW, "report", out], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertNotIn("Sanitizer", rep.stdout)
        self.assertIn(rep.returncode, (0, 1), rep.stdout)

        # The restarted agent takes the next job as usual.
        out3 = os.path.join(self.tmp, "out3")
        rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out3, "--no-sign")
        self.assertEqual(rc, 0, err)
        rc, _, err = self.agent.job("stop")
        self.assertEqual(rc, 0, err)

    def test_agent_terminated_mid_job_keeps_fence(self):
        w = self.worker()
        out = os.path.join(self.tmp, "out")
        rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out, "--no-sign",
                                    "--policy", self.policy(), "--mode", "enforce")
        self.assertEqual(rc, 0, err)
        self.agent.kill(signal.SIGTERM)
        self.assertEqual(self.agent.proc.returncode, 0, self.agent.logtext())
        self.assertEqual(w.connect(BAD, self.bad.port), "1")
        self.agent.start()
        rc, _, err = self.agent.job("stop")
        self.assertNotEqual(rc, 0)
        self.assertIn("INCOMPLETE", err)
        self.assertEqual(self.pins(), [])

    def test_socket_is_root_only(self):
        sock_dir = os.path.dirname(self.agent.sock)
        self.assertEqual(os.stat(sock_dir).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(self.agent.sock).st_mode & 0o777, 0o600)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        p = subprocess.run(nobody + [RW, "job", "status", "--socket", self.agent.sock],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        # Loosened by someone: the agent still checks the peer's uid.
        os.chmod(self.tmp, 0o711)
        os.chmod(sock_dir, 0o711)
        os.chmod(self.agent.sock, 0o666)
        try:
            p = subprocess.run(nobody + [RW, "job", "stop", "--socket", self.agent.sock],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        finally:
            os.chmod(self.agent.sock, 0o600)
            os.chmod(sock_dir, 0o700)
            os.chmod(self.tmp, 0o700)
        self.assertEqual(p.returncode, 1)
        self.assertIn("root only", p.stderr)
        self.assertIn("refused a control connection from uid 65534", self.agent.logtext())

    def test_malformed_requests(self):
        bad = [b"", b"not json", b"[1,2]", b'{"op":1}', b'{"op":"nope"}',
               b'{"op":"start"}', b'{"op":"start","out":"relative"}',
               b'{"op":"start","out":"/tmp/x","pid":-5}',
               b'{"op":"start","out":"/tmp/x","pid":"12"}',
               b'{"op":"start","out":"/tmp/x","pid":1}',
               b'{"op":"start","out":"/tmp/x","pid":999999999}',
               b'{"op":"start","out":"/tmp/x","mode":"yolo"}',
               b'{"op":"start","out":"/tmp/x","mode":"enforce"}',
               b'{"op":"start","out":"/tmp/x","watch":"x"}',
               b'{"op":"start","out":"/tmp/x","extra":1}',
               b'{"op":"start","out":"/tmp/\\u0000x"}',
               b'{"op":"start","op":"stop"}',
               b'{"op":"stop"}', b'{"op":"stop","leftovers":"maybe"}',
               b"[" * 100000, b'{"op":"status","pad":"' + b"x" * 70000 + b'"}',
               b"\xff\xfe\x00garbage"]
        for raw in bad:
            with self.subTest(raw=raw[:40]):
                reply = self.agent.request(raw)
                self.assertIs(reply["ok"], False)
                self.assertTrue(reply["error"])
                self.assertNotIn("\n", reply["error"])
        # A client that connects and says nothing is cut off, not waited for.
        t0 = time.time()
        reply = self.agent.request(b'{"op":', shut=False)
        self.assertLess(time.time() - t0, 5)
        self.assertIs(reply["ok"], False)
        self.assertIsNone(self.agent.proc.poll(), "the agent must survive bad input")
        rc, out, err = self.agent.job("status")
        self.assertEqual((rc, out.strip()), (0, "null"), err)
        self.assertFalse(os.path.exists("/tmp/x"))

    def test_cli_errors_are_one_line(self):
        for args in (["job"], ["job", "frob"], ["job", "start", "--mode", "yolo"],
                     ["job", "start", "--pid", "abc"], ["job", "stop", "--leftovers", "x"],
                     ["job", "start", "--policy", "/nonexistent"],
                     ["job", "stop", "--socket", os.path.join(self.tmp, "nope.sock")]):
            with self.subTest(args=args):
                p = subprocess.run([RW, *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
                self.assertNotEqual(p.returncode, 0)
                if args != ["job"]:
                    self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        p = subprocess.run([RW, "agent", "--foreground", "--socket", self.agent.sock, "--state",
                            self.agent.state, "--pin-root", self.pin_root],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already listening", p.stderr)
