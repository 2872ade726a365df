"""Containers a job starts through a container engine: the engine (here this
test, standing in for dockerd/runc) creates the container's cgroup outside
the job's scope and starts the container's process in it. runwarden follows
the new cgroup, records what the container does and fences it."""
import os
import subprocess
import sys
import time

from rwtest import RW, Run, RwTestCase, TcpServer, cgroup2_mount

BAD = "127.0.30.2"


class ContainerTest(RwTestCase):
    def test_container_followed_recorded_and_fenced(self):
        srv = TcpServer(BAD)
        self.addCleanup(srv.stop)
        engine = os.path.join(cgroup2_mount(), f"rw-engine-{os.getpid()}")
        os.mkdir(engine)
        self.addCleanup(os.rmdir, engine)
        home = os.path.join(self.tmp, "home", ".ssh")
        os.makedirs(home)
        key = os.path.join(home, "id_rsa")
        open(key, "w").close()
        pol = os.path.join(self.tmp, "p.yaml")
        with open(pol, "w") as f:
            f.write("version: 1\nmode: enforce\nallow:\n  - cidr: 127.0.31.0/24\n"
                    "dns:\n  upstream: 127.0.53.1\n")
        ready, go = os.path.join(self.tmp, "ready"), os.path.join(self.tmp, "go")
        out = os.path.join(self.tmp, "out")
        job = f"touch {ready}; while [ ! -e {go} ]; do sleep 0.02; done"
        p = subprocess.Popen([RW, "run", "--no-sign", "--quiet", "--policy", pol,
                              "--container-cgroups", engine, "--out", out, "--", "sh", "-c", job],
                             stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 30
            while not os.path.exists(ready) and time.time() < deadline:
                time.sleep(0.02)
            cid = "docker-" + "ab" * 32 + ".scope"
            cg = os.path.join(engine, cid)
            os.mkdir(cg)  # what runc does first
            self.addCleanup(os.rmdir, cg)
            time.sleep(0.2)  # the engine sets the container up
            # As runc does: join the container's cgroup, then exec what the container runs.
            join = f"""
import os, sys
with open({os.path.join(cg, 'cgroup.procs')!r}, "w") as f:
    f.write(str(os.getpid()))
os.execv(sys.executable, [sys.executable, "-c", sys.argv[1]])
"""
            code = f"""
import os, socket
s = socket.socket(); s.settimeout(3)
try:
    s.connect(("{BAD}", {srv.port})); print("ok")
except OSError as e:
    print(e.errno)
open({key!r}).close()
print(os.getpid())
"""
            c = subprocess.run([sys.executable, "-c", join, code], capture_output=True, text=True,
                               timeout=30)
        finally:
            open(go, "w").close()
            _, err = p.communicate(timeout=60)
        verdict, pid = c.stdout.split()
        self.assertEqual(verdict, "1", c.stderr)  # EPERM inside the container
        r = Run(p.returncode, err.decode(), out)
        (c,) = r.summary["containers"]
        self.assertEqual((c["engine"], c["kind"], c["id"]), ("docker", "container", "ab" * 32))
        # No engine answers here: the record says why the image is not named.
        self.assertIsNone(c["image"])
        self.assertIn("/var/run/docker.sock", c["identity_error"])
        (conn,) = r.of("connect", pid=int(pid))
        self.assertEqual(conn["container"], c)
        self.assertEqual((conn["daddr"], conn["verdict"]), (BAD, "deny"))
        (f,) = r.of("file", pid=int(pid))
        self.assertEqual(f["path"], key)
        self.assertEqual(srv.accepted, 0)

    def test_buildkit_step_under_systemd_driver_named_as_a_step(self):
        """Docker's BuildKit with the systemd cgroup driver: system.slice/docker-<id>.scope
        with BuildKit's base32 id, which no Docker API knows."""
        engine = os.path.join(cgroup2_mount(), f"rw-engine-{os.getpid()}")
        os.mkdir(engine)
        self.addCleanup(os.rmdir, engine)
        ready, go = os.path.join(self.tmp, "ready"), os.path.join(self.tmp, "go")
        out = os.path.join(self.tmp, "out")
        p = subprocess.Popen([RW, "run", "--no-sign", "--quiet", "--container-cgroups", engine,
                              "--out", out, "--", "sh", "-c",
                              f"touch {ready}; while [ ! -e {go} ]; do sleep 0.02; done"],
                             stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 30
            while not os.path.exists(ready) and time.time() < deadline:
                time.sleep(0.02)
            step = "qh7r04abj3rpnstegukdz79t9"
            cg = os.path.join(engine, f"docker-{step}.scope")
            os.mkdir(cg)
            self.addCleanup(os.rmdir, cg)
            time.sleep(0.3)
        finally:
            open(go, "w").close()
            _, err = p.communicate(timeout=60)
        r = Run(p.returncode, err.decode(), out)
        (c,) = r.summary["containers"]
        self.assertEqual((c["engine"], c["kind"], c["id"]), ("docker", "build-step", step))
        self.assertNotIn("identity_error", c)  # no API question for a step


    def test_a_new_cgroup_that_is_no_container_is_let_go(self):
        """A service systemd starts in system.slice while the job runs is made under a
        followed directory but is no container: once runwarden has seen its name, the
        kernel leaves it alone (not fenced, not recorded)."""
        srv = TcpServer(BAD)
        self.addCleanup(srv.stop)
        engine = os.path.join(cgroup2_mount(), f"rw-engine-{os.getpid()}")
        os.mkdir(engine)
        self.addCleanup(os.rmdir, engine)
        pol = os.path.join(self.tmp, "p.yaml")
        with open(pol, "w") as f:
            f.write("version: 1\nmode: enforce\nallow:\n  - cidr: 127.0.31.0/24\n")
        ready, go = os.path.join(self.tmp, "ready"), os.path.join(self.tmp, "go")
        out = os.path.join(self.tmp, "out")
        p = subprocess.Popen([RW, "run", "--no-sign", "--quiet", "--policy", pol,
                              "--container-cgroups", engine, "--out", out, "--", "sh", "-c",
                              f"touch {ready}; while [ ! -e {go} ]; do sleep 0.02; done"],
                             stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 30
            while not os.path.exists(ready) and time.time() < deadline:
                time.sleep(0.02)
            cg = os.path.join(engine, "apt-daily.service")
            os.mkdir(cg)
            self.addCleanup(os.rmdir, cg)
            time.sleep(0.3)  # runwarden reads its name
            join = f"""
import os, socket
with open({os.path.join(cg, 'cgroup.procs')!r}, "w") as f:
    f.write(str(os.getpid()))
s = socket.socket(); s.settimeout(3)
try:
    s.connect(("{BAD}", {srv.port})); print("ok")
except OSError as e:
    print(e.errno)
"""
            c = subprocess.run([sys.executable, "-c", join], capture_output=True, text=True,
                               timeout=30)
        finally:
            open(go, "w").close()
            _, err = p.communicate(timeout=60)
        self.assertEqual(c.stdout.strip(), "ok", c.stderr)
        self.assertEqual(srv.accepted, 1)
        r = Run(p.returncode, err.decode(), out)
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.summary["containers"], [])
        self.assertFalse([e for e in r.of("connect") if e["daddr"] == BAD])
