"""Shared fixtures for runwarden's end-to-end tests.

Everything here is real: the runwarden binary (env RW), real servers on
loopback (dnsmasq, TCP/UDP sockets), real processes. Network rule: only
127.0.0.0/8 and ::1, never anything else.

The suite must hold on a busy CI machine, with the sanitizer build: wait for a
condition (a file the job touches, a line in the run's events.ndjson, a server's
count), with a generous deadline, rather than sleep a fixed time and hope another
process got the CPU meanwhile; no threshold on random data that the mean merely
clears. To see a module hold, run it with the whole test limited to a fraction of
a CPU (a cgroup-v1 cpu group with cpu.cfs_quota_us, here 20-40% of one CPU),
several times, under /tmp/rw-e2e.lock.
"""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RW = os.environ.get("RW", os.path.join(ROOT, "build", "runwarden"))
TOOLS = os.environ.get("TOOLS", os.path.join(ROOT, "build", "tools"))


def cgroup2_mount():
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if parts[2] == "cgroup2":
                return parts[1]
    raise RuntimeError("no cgroup2 mount")


def leftover_cgroups():
    mnt = cgroup2_mount()
    return [d for d in os.listdir(mnt) if d.startswith("runwarden-")]


def ancestors(pid):
    """pid's parent, its parent, ... (stops where /proc cannot tell)."""
    out = []
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            break
        pid = int(stat[stat.rindex(")") + 2:].split()[1])
        out.append(pid)
    return out


def foreign_scope(name):
    """Is runwarden-PID-... the scope of a runwarden still running that this process did not
    start (directly or through sudo, unshare, a shell)? An agent the test daemonized has left
    its tree too: tests of such agents check their scopes themselves (test_action)."""
    try:
        pid = int(name.split("-")[1])
        os.kill(pid, 0)
    except (IndexError, ValueError, OSError):
        return False  # its run is over: ours or not, it should be gone by now
    return os.getpid() not in ancestors(pid)


class Run:
    """One finished `runwarden run`: exit code, stderr, parsed evidence."""

    def __init__(self, rc, stderr, outdir, stdout=""):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.outdir = outdir
        self.lines = []
        self.events = []
        self.close = None
        self.summary = None
        log = os.path.join(outdir, "events.ndjson")
        if os.path.exists(log):
            with open(log, "rb") as f:
                self.lines = f.read().split(b"\n")
            assert self.lines[-1] == b"", "log must end with a newline"
            self.lines = self.lines[:-1]
            for raw in self.lines:
                ev = json.loads(raw.decode("utf-8"))  # strict: each line is one object
                if ev["kind"] == "close":
                    self.close = ev
                else:
                    self.events.append(ev)
        path = os.path.join(outdir, "summary.json")
        if os.path.exists(path):
            with open(path) as f:
                self.summary = json.load(f)

    def of(self, kind, **match):
        return [e for e in self.events if e["kind"] == kind and
                all(e.get(k) == v for k, v in match.items())]

    def verify_chain(self):
        prev = "0" * 64
        for i, raw in enumerate(self.lines, 1):
            ev = json.loads(raw)
            assert ev["seq"] == i, f"line {i}: seq {ev['seq']}"
            assert ev["prev"] == prev, f"line {i}: chain broken"
            prev = hashlib.sha256(raw + b"\n").hexdigest()
        return prev


class RwTestCase(unittest.TestCase):
    """Gives each test a temp dir and checks that nothing is left behind."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rw-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.cg_before = set(leftover_cgroups())

    def tearDown(self):
        # A scope is removed by its run, or by the fence keeper once the run's leftovers are
        # gone; a scope whose run is alive and no descendant of this test is another runwarden
        # on this machine (an engineer's, a bench's), not one this test left.
        left = self.new_scopes()
        t0 = time.time()
        while time.time() - t0 < 10 and set(leftover_cgroups()) & left:
            time.sleep(0.05)
        left &= set(leftover_cgroups())
        err = "\n".join(r.stderr for r in getattr(self, "_rw_runs", []))
        self.assertEqual(left, set(), "runwarden left cgroups behind (still there 10 s after "
                         f"the test); stderr of this test's runs:\n{err[-3000:]}")

    def new_scopes(self):
        """Job scopes made since the test began, other runwarden runs' left out."""
        return {d for d in set(leftover_cgroups()) - self.cg_before if not foreign_scope(d)}

    def rw(self, cmd, *opts, timeout=180, env=None, out=None):
        out = out or os.path.join(self.tmp, "out")
        args = [RW, "run", "--out", out, "--no-sign", *opts, "--", *cmd]
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=env)
        r = Run(p.returncode, p.stderr.decode("utf-8", "replace"), out,
                p.stdout.decode("utf-8", "replace"))
        self._rw_runs = getattr(self, "_rw_runs", []) + [r]
        return r


class Dnsmasq:
    """A real resolver on loopback that answers every name under `domain`."""

    def __init__(self, addr="127.0.53.1", port=53, records=(), log_file=None, extra=()):
        """log_file: where dnsmasq logs every query it gets (default: nowhere read);
        extra: more dnsmasq arguments."""
        self.addr, self.port = addr, port
        args = ["dnsmasq", "--no-daemon", "-C", "/dev/null", "--no-resolv", "--no-hosts",
                "--bind-interfaces", f"--listen-address={addr}", f"--port={port}",
                "--pid-file=", "--user=root", "--log-queries",
                f"--log-facility={log_file or '-'}"]
        args += [f"--address=/{name}/{ip}" for name, ip in records]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        # Read all along: dnsmasq writes its log to the pipe with blocking writes, and once
        # the pipe is full (about 490 questions) it stops answering, in whichever later test
        # of the class comes to it.
        self._logged, self._log_lock = [], threading.Lock()
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break  # could not bind: another server holds the address
            try:
                s = socket.create_connection((addr, port), timeout=0.2)
                s.close()
                time.sleep(0.05)
                if self.proc.poll() is None:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dnsmasq did not start")

    def _read_log(self):
        for line in self.proc.stderr:
            with self._log_lock:
                self._logged.append(line.decode("utf-8", "replace"))

    def take_log(self, expect=None, timeout=10):
        """What dnsmasq logged (to stderr) since the last take. With expect: once that text is
        in it, or after timeout; without: after a moment for the last lines to be read."""
        deadline = time.time() + (timeout if expect else 0.2)
        while True:
            with self._log_lock:
                text = "".join(self._logged)
            if (expect and expect in text) or time.time() >= deadline:
                break
            time.sleep(0.02)
        with self._log_lock:
            text = "".join(self._logged)
            self._logged.clear()
        return text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stderr:
            self.proc.stderr.close()


class TcpServer:
    """Accepts and closes connections on a loopback address, in a thread."""

    def __init__(self, addr="127.0.20.1", family=socket.AF_INET):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
                self.accepted += 1
                c.close()
            except OSError:
                continue

    def stop(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()
