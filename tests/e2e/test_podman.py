"""Containers a job starts through rootful Podman (Debian 12's podman 4.3 with runc, the
cgroupfs manager, host network): recorded with the container's identity and fenced by the
job's policy from the container's first instruction; a container started before the job is
not the job's. See podman.py for the engine's set-up."""
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from dockerd import busybox_rootfs_tar
from podman import IMAGE, PARENT, PODMAN, ULIMITS, Podman
from rwtest import RW, Run, RwTestCase, TcpServer, cgroup2_mount

BAD = "127.0.30.2"  # a stand-in for an unlisted host
GOOD = "127.0.31.1"  # inside the policy's allowed range


def policy(tmp):
    path = os.path.join(tmp, "p.yaml")
    with open(path, "w") as f:
        f.write("version: 1\nmode: enforce\nallow:\n  - cidr: 127.0.31.0/24\n")
    return path


class Servers(RwTestCase):
    """An unlisted and an allowed loopback server for each test."""

    def setUp(self):
        super().setUp()
        self.bad = TcpServer(BAD)
        self.addCleanup(self.bad.stop)
        self.good = TcpServer(GOOD)
        self.addCleanup(self.good.stop)


class PodmanTest(Servers):
    engine = None

    @classmethod
    def setUpClass(cls):
        cls.engine = Podman().start()

    @classmethod
    def tearDownClass(cls):
        cls.engine.stop()


    def run_job(self, cmd, out=None):
        """`runwarden run --containers` with the default directories: Podman's among them."""
        out = out or os.path.join(self.tmp, "out")
        # A kernel side of this build's own: a resident one may come from another build
        # (the pool does not compare programs), without the cgroup-move rule podman needs.
        p = subprocess.run([RW, "run", "--out", out, "--no-sign", "--containers",
                            "--kernel", "private", "--policy", policy(self.tmp), "--", *cmd],
                           capture_output=True, timeout=180)
        return Run(p.returncode, p.stderr.decode("utf-8", "replace"), out,
                   p.stdout.decode("utf-8", "replace"))

    def podman_run(self, *args):
        return self.engine.command(*self.engine.run_args(*args))

    def connects_of(self, r, daddr):
        return [e for e in r.of("connect") if e["daddr"] == daddr]

    def test_run_recorded_with_identity_and_fenced_from_the_first_connect(self):
        # nc to the unlisted address is the container's first connect.
        sh = (f"nc -w 2 {BAD} {self.bad.port} </dev/null; echo bad=$?; "
              f"nc -w 2 {GOOD} {self.good.port} </dev/null; echo good=$?; sleep 1")
        cidfile = os.path.join(self.tmp, "cid")
        r = self.run_job(self.podman_run("--rm", "--cidfile", cidfile, IMAGE, "sh", "-c", sh))
        self.assertIn("bad=1", r.stdout, r.stderr)  # nc: EPERM
        self.assertIn("good=0", r.stdout, r.stderr)
        self.assertEqual(self.bad.accepted, 0)
        self.assertEqual(self.good.accepted, 1)
        with open(cidfile) as f:
            cid = f.read().strip()
        # Podman's own state is not asked (no API socket, a locked database): engine and
        # id come from the cgroup's name, libpod_parent/libpod-<id>.
        want = {"engine": "podman", "kind": "container", "id": cid, "name": None,
                "image": None, "image_id": None}
        self.assertEqual(r.summary["containers"], [want])
        (deny,) = self.connects_of(r, BAD)
        self.assertEqual((deny["verdict"], deny["result"]), ("deny", "EPERM"))
        self.assertEqual(deny["container"], want)
        (ok,) = self.connects_of(r, GOOD)
        self.assertEqual((ok["verdict"], ok["container"]), ("allow", want))
        sh_exec = [e for e in r.of("exec") if e.get("container") and e["argv"][:1] == ["sh"]]
        self.assertEqual(len(sh_exec), 1, r.events)
        self.assertEqual(sh_exec[0]["container"], want)
        # The client (podman, in the job's own cgroup) is the job's process, no container's.
        clients = [e for e in r.of("exec") if e["exe"] == "/usr/bin/podman"]
        self.assertTrue(clients, r.events)
        self.assertFalse([e for e in clients if e.get("container")])
        self.assertNotEqual(r.rc, 0)  # the denial fails the run

    def test_first_connect_denied_every_time(self):
        for i in range(5):
            with self.subTest(run=i):
                r = self.run_job(self.podman_run("--rm", IMAGE, "nc", "-w", "1", BAD,
                                                 str(self.bad.port)),
                                 out=os.path.join(self.tmp, f"out{i}"))
                self.assertNotEqual(r.rc, 0, r.stderr)
                self.assertEqual(self.bad.accepted, 0, r.stderr)
                (deny,) = self.connects_of(r, BAD)
                self.assertEqual((deny["verdict"], deny["result"]), ("deny", "EPERM"))
                # Not asked to be named: a container this short may be gone before
                # runwarden reads its cgroup's name (docs/containers.md, limits).
                if deny.get("container"):
                    self.assertEqual(deny["container"]["engine"], "podman")

    def test_container_started_before_the_job_is_not_its(self):
        """Neither recorded nor fenced: its connects to an address the job refuses go on
        succeeding while the job runs."""
        loop = f"while true; do nc -w 1 {BAD} {self.bad.port} </dev/null; sleep 0.1; done"
        cid = self.engine.podman(*self.engine.run_args("-d", IMAGE, "sh", "-c",
                                                        loop)).stdout.decode().strip()
        self.addCleanup(self.engine.podman, "rm", "-f", "-t", "0", cid, check=False)
        deadline = time.time() + 20
        while not self.bad.accepted and time.time() < deadline:
            time.sleep(0.05)
        started, done = os.path.join(self.tmp, "started"), os.path.join(self.tmp, "done")
        during = []

        def sample():
            for path in (started, done):
                end = time.time() + 60
                while not os.path.exists(path) and time.time() < end:
                    time.sleep(0.02)
                during.append(self.bad.accepted)

        t = threading.Thread(target=sample)
        t.start()
        r = self.run_job(["sh", "-c", f"touch {started}; sleep 1.5; touch {done}; "
                          f"busybox nc -w 1 {GOOD} {self.good.port} </dev/null"])
        t.join()
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.summary["containers"], [])
        self.assertEqual([e["daddr"] for e in r.of("connect")], [GOOD])
        self.assertFalse([e for e in r.events if e.get("container")])
        self.assertGreater(during[1], during[0])  # not fenced by the job's policy

    def test_job_moving_itself_below_the_engine_stays_fenced(self):
        """A move into a cgroup the job made below an engine directory is let through by
        the kernel (runc's move of the container's first process is one), so that cgroup
        must stay the job's though it is no container. Two outcomes, both fenced: runwarden
        saw the cgroup first (no container: not the job's), then the move is an escape
        and ends the job; or the move came first, the cgroup holds a job process and stays
        the job's, and the connect is denied there."""
        evil = os.path.join(cgroup2_mount(), PARENT, f"rw-evil-{os.getpid()}")
        self.addCleanup(lambda: os.path.isdir(evil) and os.rmdir(evil))
        sh = (f"mkdir {evil} && echo $$ > {evil}/cgroup.procs && sleep 0.5 && "
              f"busybox nc -w 1 {BAD} {self.bad.port} </dev/null; echo bad=$?; "
              f"echo $$ > {cgroup2_mount()}/cgroup.procs")
        r = self.run_job(["sh", "-c", sh])
        self.assertNotEqual(r.rc, 0)
        self.assertEqual(self.bad.accepted, 0)
        if "bad=" in r.stdout:
            self.assertIn("bad=1", r.stdout, r.stderr)
            (deny,) = self.connects_of(r, BAD)
            self.assertEqual((deny["verdict"], deny["result"]), ("deny", "EPERM"))
        else:
            (move,) = r.of("cgroup_move")
            self.assertEqual((move["cgroup"], move["verdict"]),
                             (evil[len(cgroup2_mount()):], "deny"))


ROOTLESS_USER = "rwrootless"


def rootless_user():
    """A user with subordinate ids for rootless Podman (uidmap's newuidmap/newgidmap)."""
    if subprocess.run(["id", ROOTLESS_USER], capture_output=True).returncode:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", ROOTLESS_USER], check=True)
    for f in ("/etc/subuid", "/etc/subgid"):
        text = ""
        if os.path.exists(f):
            with open(f) as fh:
                text = fh.read()
        if not any(line.startswith(ROOTLESS_USER + ":") for line in text.splitlines()):
            with open(f, "a") as out:
                out.write(f"{ROOTLESS_USER}:300000:65536\n")
    return ROOTLESS_USER


class RootlessPodmanTest(Servers):
    """Rootless Podman on this hybrid host cannot make cgroups: the container's processes stay
    in the job's own scope (fenced as the job), and are named from conmon's command line."""

    @classmethod
    def setUpClass(cls):
        if not shutil.which("newuidmap"):
            raise unittest.SkipTest("no newuidmap (Debian's uidmap): make check installs it")
        cls.user = rootless_user()
        pw = pwd.getpwnam(cls.user)
        cls.dir = tempfile.mkdtemp(prefix="rwpr-", dir="/tmp")
        os.chown(cls.dir, pw.pw_uid, pw.pw_gid)
        cls.home = pw.pw_dir
        cls.base = (f"{PODMAN} --root {cls.dir}/root --runroot {cls.dir}/run "
                    f"--tmpdir {cls.dir}/tmp --storage-driver vfs --cgroup-manager cgroupfs "
                    f"--events-backend file")
        tar = os.path.join(cls.dir, "image.tar")
        with open(tar, "wb") as f:
            f.write(busybox_rootfs_tar())
        os.chmod(tar, 0o644)
        cls.as_user(f"{cls.base} import {tar} {IMAGE}", check=True)

    @classmethod
    def as_user(cls, script, check=False):
        p = subprocess.run(["setpriv", f"--reuid={cls.user}", f"--regid={cls.user}",
                            "--init-groups", "env", "-u", "XDG_RUNTIME_DIR",
                            f"HOME={cls.home}", "sh", "-c", f"cd {cls.home} && {script}"],
                           capture_output=True, text=True, timeout=180)
        if check and p.returncode:
            raise RuntimeError(f"{script}: {p.stderr}")
        return p

    @classmethod
    def tearDownClass(cls):
        cls.as_user(f"{cls.base} rm -af -t 0")
        cls.as_user(f"{cls.base} system reset -f")
        shutil.rmtree(cls.dir, ignore_errors=True)


    def test_rootless_container_fenced_and_named_by_its_monitor(self):
        out = os.path.join(self.tmp, "out")
        sh = (f"nc -w 1 {BAD} {self.bad.port} </dev/null; echo bad=$?; "
              f"nc -w 1 {GOOD} {self.good.port} </dev/null; echo good=$?")
        script = (f"cd {self.home} && export HOME={self.home} && unset XDG_RUNTIME_DIR && "
                  f"{self.base} run {' '.join(ULIMITS)} --rm --name rootless1 --network host "
                  f"{IMAGE} sh -c '{sh}'")
        p = subprocess.run([RW, "run", "--out", out, "--no-sign", "--user", self.user,
                            "--policy", policy(self.tmp), "--", "sh", "-c", script],
                           capture_output=True, text=True, timeout=180)
        r = Run(p.returncode, p.stderr, out, p.stdout)
        self.assertIn("bad=1", r.stdout, r.stderr)
        self.assertIn("good=0", r.stdout, r.stderr)
        bad = [e for e in r.of("connect") if e["daddr"] == BAD]
        self.assertEqual([(e["verdict"], e["result"]) for e in bad], [("deny", "EPERM")], bad)
        ident = bad[0].get("container")
        self.assertEqual((ident or {}).get("engine"), "podman", bad[0])
        self.assertEqual((ident["name"], ident["named_by"], ident["cgroup"]),
                         ("rootless1", "conmon argv", None))
        self.assertRegex(ident["id"], r"^[0-9a-f]{64}$")
        good = [e for e in r.of("connect") if e["daddr"] == GOOD]
        self.assertEqual(good[0].get("container"), ident)
        # The engine's own processes are the job's, not the container's.
        for e in r.of("exec"):
            if os.path.basename(e["exe"]) in ("podman", "conmon") or e["exe"] == "/usr/sbin/runc":
                self.assertNotIn("container", e, e)
        self.assertEqual(r.summary["containers"], [ident], r.summary.get("containers"))
