"""Containers a job starts through a real Docker engine (Debian's dockerd, started by the test
with its own data root and socket, no bridge NAT): `docker run`, the classic builder, BuildKit
and compose. What the containers do is recorded with the container's identity and fenced by
the job's policy; containers the job did not start are not its."""
import os
import subprocess
import threading
import time

from dockerd import DOCKER, IMAGE, Dockerd
from rwtest import RW, Run, RwTestCase, TcpServer, cgroup2_mount

BAD = "127.0.30.2"  # a stand-in for an unlisted host
GOOD = "127.0.31.1"  # inside the policy's allowed range


def policy(tmp, mode="enforce", extra=""):
    path = os.path.join(tmp, "p.yaml")
    with open(path, "w") as f:
        f.write(f"version: 1\nmode: {mode}\nallow:\n  - cidr: 127.0.31.0/24\n{extra}")
    return path


class EngineTestCase(RwTestCase):
    engine = None

    @classmethod
    def setUpClass(cls):
        cls.engine = Dockerd().start()
        cls.engine.import_busybox()

    @classmethod
    def tearDownClass(cls):
        cls.engine.stop()

    def setUp(self):
        super().setUp()
        self.bad = TcpServer(BAD)
        self.addCleanup(self.bad.stop)
        self.good = TcpServer(GOOD)
        self.addCleanup(self.good.stop)

    def run_job(self, cmd, *opts, env=None, timeout=180, out=None):
        """`runwarden run --containers` with this engine: the job's clients talk to it."""
        out = out or os.path.join(self.tmp, "out")
        args = [RW, "run", "--out", out, "--no-sign", "--containers",
                "--engine", self.engine.host, *opts, "--", *cmd]
        p = subprocess.run(args, capture_output=True, timeout=timeout,
                           env=env or self.engine.env())
        return Run(p.returncode, p.stderr.decode("utf-8", "replace"), out,
                   p.stdout.decode("utf-8", "replace"))

    def connects_of(self, r, daddr):
        return [e for e in r.of("connect") if e["daddr"] == daddr]

    def assert_contained(self, r, kind, cid=None):
        """Every exec and connect of a process in a container names the container."""
        seen = [e for e in r.events if e["kind"] in ("exec", "connect") and e.get("container")]
        self.assertTrue(seen, r.stderr)
        for e in seen:
            c = e["container"]
            self.assertEqual((c["engine"], c["kind"]), ("docker", kind), e)
            if cid:
                self.assertEqual(c["id"], cid, e)
        return seen


class DockerRunTest(EngineTestCase):
    def test_run_host_network_recorded_with_identity_and_fenced(self):
        pol = policy(self.tmp)
        sh = (f"nc -w 2 {BAD} {self.bad.port} </dev/null; echo bad=$?; "
              f"nc -w 2 {GOOD} {self.good.port} </dev/null; echo good=$?")
        cidfile = os.path.join(self.tmp, "cid")
        r = self.run_job([DOCKER, "run", "--rm", "--cidfile", cidfile, "--network", "host",
                          "--name", "rw-run-1", IMAGE, "sh", "-c", sh], "--policy", pol)
        self.assertIn("bad=1", r.stdout, r.stderr)  # nc: EPERM
        self.assertIn("good=0", r.stdout, r.stderr)
        self.assertEqual(self.bad.accepted, 0)
        with open(cidfile) as f:
            cid = f.read().strip()
        self.assertEqual([c["id"] for c in r.summary["containers"]], [cid])
        (c,) = r.summary["containers"]
        self.assertEqual((c["engine"], c["kind"], c["name"], c["image"]),
                         ("docker", "container", "rw-run-1", IMAGE))
        self.assertTrue(c["image_id"].startswith("sha256:"), c)
        self.assert_contained(r, "container", cid)
        (deny,) = self.connects_of(r, BAD)
        self.assertEqual((deny["verdict"], deny["result"]), ("deny", "EPERM"))
        self.assertEqual(deny["container"]["image"], IMAGE)
        (ok,) = self.connects_of(r, GOOD)
        self.assertEqual(ok["verdict"], "allow")
        sh_exec = [e for e in r.of("exec") if e.get("container") and e["argv"][:1] == ["sh"]]
        self.assertEqual(len(sh_exec), 1, r.events)
        # The client outside the container is the job's own process, not a container's.
        (client,) = [e for e in r.of("exec") if e["exe"] == DOCKER]
        self.assertIsNone(client.get("container"))
        self.assertNotEqual(r.rc, 0)  # the denial fails the run
