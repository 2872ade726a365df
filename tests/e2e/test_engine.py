"""Containers a job starts through a real Docker engine (Debian's dockerd, started by the test
with its own data root and socket, no bridge NAT): `docker run`, the classic builder, BuildKit
and compose. What the containers do is recorded with the container's identity and fenced by
the job's policy; containers the job did not start are not its."""
import os
import signal
import subprocess
import threading
import time
import uuid

from dockerd import DOCKER, IMAGE, Dockerd
from rwtest import RW, Dnsmasq, Run, RwTestCase, TcpServer, cgroup2_mount
import test_agent  # its fixtures; importing its classes would run its tests here too

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
              f"nc -w 2 {GOOD} {self.good.port} </dev/null; echo good=$?; sleep 1")
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


# The containers and build steps below end with `sleep 1`: runwarden names a container when it
# reads its cgroup directory, and one removed before that (a step of 0.2 s while the sanitizer
# build lags under load) is fenced and recorded but named by nothing (docs/containers.md).
class BuildTest(EngineTestCase):
    """A RUN step is a container the engine makes for the build: the classic builder's
    under the engine's directory, BuildKit's under its own (docker/buildkit/<id>)."""

    def build(self, buildkit, mode="enforce"):
        ctx = os.path.join(self.tmp, "ctx")
        os.makedirs(ctx)
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            # The token keeps the engine from reusing an earlier test's step.
            f.write(f"FROM {IMAGE}\n"
                    f"RUN echo {os.path.basename(self.tmp)}; "
                    f"nc -w 2 {BAD} {self.bad.port} </dev/null; echo bad=$?; "
                    f"nc -w 2 {GOOD} {self.good.port} </dev/null; echo good=$?; sleep 1\n")
        env = self.engine.env(DOCKER_BUILDKIT="1" if buildkit else "0")
        return self.run_job([DOCKER, "build", "--no-cache", "--progress", "plain",
                             "--network", "host", "-t", "rwtest/built", ctx],
                            "--policy", policy(self.tmp, mode), env=env)

    def check_build(self, r, kind):
        out = r.stdout + r.stderr
        self.assertIn("bad=1", out)  # nc: EPERM inside the build step
        self.assertIn("good=0", out)
        self.assertEqual(self.bad.accepted, 0)
        self.assertEqual(self.good.accepted, 1)
        (deny,) = self.connects_of(r, BAD)
        self.assertEqual((deny["verdict"], deny["result"]), ("deny", "EPERM"))
        self.assertEqual(deny["container"]["kind"], kind)
        (ok,) = self.connects_of(r, GOOD)
        self.assertEqual(ok["verdict"], "allow")
        self.assertEqual(ok["container"], deny["container"])
        steps = [c for c in r.summary["containers"] if c["kind"] == kind]
        self.assertIn(deny["container"], steps)
        self.assert_contained(r, kind)
        nc = [e for e in r.of("exec") if e.get("container") and e["argv"][:1] == ["nc"]]
        self.assertEqual(len(nc), 2, r.events)

    def test_buildkit_run_step_recorded_and_fenced(self):
        r = self.run_job_checked(True)
        self.check_build(r, "build-step")
        (deny,) = self.connects_of(r, BAD)
        self.assertIsNone(deny["container"]["image"])  # a step is no API container

    def test_classic_build_run_step_recorded_and_fenced(self):
        r = self.run_job_checked(False)
        self.check_build(r, "container")
        (deny,) = self.connects_of(r, BAD)
        # The classic builder runs each step in a container of the previous layer's image.
        self.assertTrue(deny["container"]["image"].startswith("sha256:"), deny)

    def run_job_checked(self, buildkit):
        r = self.build(buildkit)
        self.assertEqual(r.rc, 1, r.stderr)  # the build succeeds; the denial fails the run
        return r


class TwoJobsTest(EngineTestCase):
    def test_container_started_before_the_job_is_not_its(self):
        """Neither recorded nor fenced: its connects to an address the job's policy refuses
        go on succeeding while the job runs (the job's hooks are on the engine's directory
        too, and let it pass)."""
        loop = f"while true; do nc -w 1 {BAD} {self.bad.port} </dev/null; sleep 0.1; done"
        cid = self.engine.docker("run", "-d", "--network", "host", IMAGE, "sh", "-c",
                                 loop).stdout.decode().strip()
        self.addCleanup(self.engine.docker, "rm", "-f", cid, check=False)
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
                          f"busybox nc -w 1 {GOOD} {self.good.port} </dev/null"],
                         "--policy", policy(self.tmp))
        t.join()
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.summary["containers"], [])
        self.assertEqual([e["daddr"] for e in r.of("connect")], [GOOD])
        self.assertFalse([e for e in r.events if e.get("container")])
        self.assertGreater(during[1], during[0])  # not fenced by the job's policy

    def test_second_job_on_one_engine_is_refused(self):
        ready, go = os.path.join(self.tmp, "ready"), os.path.join(self.tmp, "go")
        first = subprocess.Popen(
            [RW, "run", "--out", os.path.join(self.tmp, "a"), "--no-sign", "--quiet",
             "--containers", "--engine", self.engine.host, "--", "sh", "-c",
             f"touch {ready}; while [ ! -e {go} ]; do sleep 0.02; done"],
            stderr=subprocess.PIPE, env=self.engine.env())
        try:
            deadline = time.time() + 30
            while not os.path.exists(ready) and time.time() < deadline:
                time.sleep(0.02)
            marker = os.path.join(self.tmp, "ran")
            r = self.run_job(["touch", marker], out=os.path.join(self.tmp, "b"))
        finally:
            open(go, "w").close()
            _, err = first.communicate(timeout=60)
        self.assertEqual(first.returncode, 0, err)
        self.assertEqual(r.rc, 1)
        self.assertIn("another job is following the containers created under", r.stderr)
        self.assertFalse(os.path.exists(marker))  # the command never ran
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "b")))
        # Once the first job is over, the engine can be followed again.
        r = self.run_job(["true"], out=os.path.join(self.tmp, "c"))
        self.assertEqual(r.rc, 0, r.stderr)


class FromBirthTest(EngineTestCase):
    """A container's very first connect meets the job's hooks: they are attached to the
    engine's directory when the job starts, not to each container once it is seen."""

    def test_first_connect_of_a_container_is_denied_every_time(self):
        for i in range(10):
            with self.subTest(run=i):
                r = self.run_job([DOCKER, "run", "--rm", "--network", "host", IMAGE,
                                  "nc", "-w", "1", BAD, str(self.bad.port)],
                                 "--policy", policy(self.tmp),
                                 out=os.path.join(self.tmp, f"out{i}"))
                self.assertNotEqual(r.rc, 0, r.stderr)
                self.assertEqual(self.bad.accepted, 0, r.stderr)
                (deny,) = self.connects_of(r, BAD)
                self.assertEqual((deny["verdict"], deny["result"]), ("deny", "EPERM"))

    def test_container_fenced_while_runwarden_cannot_run(self):
        """runwarden stopped (SIGSTOP) from before the container's cgroup exists until
        its connect is over: nothing in user space can attach anything, and the connect is
        denied all the same; it is recorded, with the container named, once runwarden
        goes on."""
        ready, go = os.path.join(self.tmp, "ready"), os.path.join(self.tmp, "go")
        res = os.path.join(self.tmp, "res")
        inner = f"nc -w 1 {BAD} {self.bad.port} </dev/null; echo bad=$?; sleep 3"
        sh = (f"touch {ready}; while [ ! -e {go} ]; do sleep 0.02; done; "
              f"{DOCKER} run --rm --network host {IMAGE} sh -c '{inner}' >{res}")
        out = os.path.join(self.tmp, "out")
        p = subprocess.Popen([RW, "run", "--out", out, "--no-sign", "--containers",
                              "--engine", self.engine.host, "--policy", policy(self.tmp),
                              "--", "sh", "-c", sh],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.engine.env())
        try:
            deadline = time.time() + 60
            while not os.path.exists(ready) and time.time() < deadline:
                time.sleep(0.02)
            os.kill(p.pid, signal.SIGSTOP)
            try:
                open(go, "w").close()
                deadline = time.time() + 60
                while time.time() < deadline:
                    if os.path.exists(res):
                        with open(res) as f:
                            if "bad=" in f.read():
                                break
                    time.sleep(0.02)
            finally:
                os.kill(p.pid, signal.SIGCONT)
            _, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
        with open(res) as f:
            self.assertIn("bad=1", f.read(), err)
        self.assertEqual(self.bad.accepted, 0)
        r = Run(p.returncode, err.decode("utf-8", "replace"), out)
        (deny,) = self.connects_of(r, BAD)
        self.assertEqual((deny["verdict"], deny["result"]), ("deny", "EPERM"))
        self.assertEqual(deny["container"]["image"], IMAGE)


class ComposeTest(EngineTestCase):
    def test_compose_service_recorded_with_its_service_and_fenced(self):
        proj = os.path.join(self.tmp, "proj")
        os.makedirs(proj)
        sh = (f"nc -w 2 {BAD} {self.bad.port} </dev/null; echo bad=$$?; "
              f"nc -w 2 {GOOD} {self.good.port} </dev/null; echo good=$$?; sleep 1")
        with open(os.path.join(proj, "docker-compose.yml"), "w") as f:
            f.write(f"version: '3'\nservices:\n  probe:\n    image: {IMAGE}\n"
                    f"    network_mode: host\n    command: [\"sh\", \"-c\", \"{sh}\"]\n")
        r = self.run_job(["docker-compose", "--project-directory", proj, "-f",
                          os.path.join(proj, "docker-compose.yml"), "-p", "rwcompose",
                          "up", "--abort-on-container-exit", "--no-color"],
                         "--policy", policy(self.tmp))
        self.addCleanup(self.engine.docker, "rm", "-f", "rwcompose_probe_1", check=False)
        out = r.stdout + r.stderr
        self.assertIn("bad=1", out)
        self.assertIn("good=0", out)
        self.assertEqual(self.bad.accepted, 0)
        (deny,) = self.connects_of(r, BAD)
        self.assertEqual(deny["verdict"], "deny")
        c = deny["container"]
        self.assertEqual((c["kind"], c["image"], c["compose"]),
                         ("container", IMAGE, {"project": "rwcompose", "service": "probe"}))
        self.assertEqual([x["id"] for x in r.summary["containers"]], [c["id"]])


NET = "198.18.7"  # the test's own bridge: addresses of containers the test starts


class OwnNetworkTest(EngineTestCase):
    """A container on a bridge network the test creates, in a network namespace of its own:
    address rules hold there, and so do host-name rules (the gate listens in that
    namespace too). The servers are containers on the same bridge; nothing leaves the
    machine (the test checks the route first)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        e = cls.engine
        e.docker("network", "create", "--driver", "bridge", "--subnet", f"{NET}.0/24",
                 "-o", "com.docker.network.bridge.enable_ip_masquerade=false", "rwnet")
        for ip in (f"{NET}.10", f"{NET}.11"):
            e.docker("run", "-d", "--network", "rwnet", "--ip", ip, IMAGE, "sh", "-c",
                     "echo hello > /tmp/index.html; exec httpd -f -p 8080 -h /tmp")
        route = subprocess.run(["ip", "route", "get", f"{NET}.10"], capture_output=True,
                               text=True).stdout
        if " dev br-" not in route:
            e.stop()
            raise RuntimeError(f"{NET}.0/24 is not on the test's bridge: {route}")

    def test_host_names_and_addresses_inside_own_network(self):
        dns = Dnsmasq(records=[("web.test", f"{NET}.10"), ("other.test", f"{NET}.11")])
        self.addCleanup(dns.stop)
        pol = policy(self.tmp, extra="  - host: web.test\n    ports: [8080]\n"
                                     "dns:\n  upstream: 127.0.53.1\n")
        sh = ("wget -q -O - http://web.test:8080/index.html; echo web=$?; "
              "wget -q -O - http://other.test:8080/index.html; echo other=$?; "
              f"wget -q -O - http://{NET}.11:8080/index.html; echo direct=$?")
        r = self.run_job([DOCKER, "run", "--rm", "--network", "rwnet", IMAGE, "sh", "-c", sh],
                         "--policy", pol)
        self.assertIn("hello\nweb=0", r.stdout, r.stderr)
        self.assertRegex(r.stdout, r"other=[1-9]")
        self.assertRegex(r.stdout, r"direct=[1-9]")
        self.assertNotIn("cannot listen", r.stderr)
        web = [e for e in r.of("dns") if e.get("query") == "web.test"]
        self.assertTrue(web, r.events)
        self.assertTrue(all(e["container"]["kind"] == "container" for e in web), web)
        other = [e for e in r.of("dns") if e.get("query") == "other.test"]
        self.assertTrue(other and all(e["verdict"] == "deny" for e in other), other)
        (ok,) = [e for e in r.of("connect") if e["daddr"] == f"{NET}.10"]
        self.assertEqual((ok["verdict"], ok["host"]), ("allow", "web.test"))
        (deny,) = [e for e in r.of("connect") if e["daddr"] == f"{NET}.11"]
        self.assertEqual((deny["verdict"], deny["result"]), ("deny", "EPERM"))
        self.assertEqual(deny["container"]["image"], IMAGE, deny["container"])


    def test_classic_build_on_own_network_resolves_through_the_gate(self):
        dns = Dnsmasq(records=[("web.test", f"{NET}.10"), ("other.test", f"{NET}.11")])
        self.addCleanup(dns.stop)
        ctx = os.path.join(self.tmp, "ctx")
        os.makedirs(ctx)
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(f"FROM {IMAGE}\nRUN echo {os.path.basename(self.tmp)}; "
                    "wget -q -O - http://web.test:8080/index.html; echo web=$?; "
                    "wget -q -O - http://other.test:8080/index.html; echo other=$?\n")
        pol = policy(self.tmp, extra="  - host: web.test\n    ports: [8080]\n"
                                     "dns:\n  upstream: 127.0.53.1\n")
        r = self.run_job([DOCKER, "build", "--no-cache", "--network", "rwnet", ctx],
                         "--policy", pol, env=self.engine.env(DOCKER_BUILDKIT="0"))
        out = r.stdout + r.stderr
        self.assertIn("hello\nweb=0", out)
        self.assertRegex(out, r"other=[1-9]")
        (ok,) = [e for e in r.of("connect") if e["daddr"] == f"{NET}.10"]
        self.assertEqual((ok["verdict"], ok["host"], ok["container"]["kind"]),
                         ("allow", "web.test", "container"))
        other = [e for e in r.of("dns") if e.get("query") == "other.test"]
        self.assertTrue(other and all(e["verdict"] == "deny" for e in other), other)


class CtrTest(EngineTestCase):
    """containerd's own client, as kubelet's CRI calls reach it: `ctr run` makes the container's
    cgroup under the namespace's directory (cgroupfs: /<namespace>/<id>), with no Docker API
    to name it. Followed through --container-cgroups, as the DaemonSet would follow pods."""

    def test_ctr_container_followed_and_fenced(self):
        sock = os.path.join(self.engine.dir, "x", "containerd", "containerd.sock")
        ns = f"rwtest{os.getpid()}"
        ctr = ["ctr", "--address", sock, "--namespace", ns]
        img = os.path.join(self.tmp, "img.tar")
        with open(img, "wb") as f:
            f.write(self.engine.docker("save", IMAGE).stdout)
        subprocess.run(ctr + ["images", "import", img], check=True, capture_output=True)
        cgdir = os.path.join(cgroup2_mount(), ns)
        self.addCleanup(lambda: os.path.isdir(cgdir) and os.rmdir(cgdir))
        cid = os.urandom(32).hex()  # what kubelet's CRI ids look like
        # The container lives a second: it is named when runwarden reads its directory, and a
        # container gone before that (0.2 s, under the sanitizer build's load) is fenced but
        # named by nothing (docs/containers.md).
        sh = (f"nc -w 2 {BAD} {self.bad.port} </dev/null; echo bad=$?; "
              f"nc -w 2 {GOOD} {self.good.port} </dev/null; echo good=$?; sleep 1")
        r = self.run_job(ctr + ["run", "--rm", "--net-host", f"docker.io/{IMAGE}", cid,
                                "sh", "-c", sh],
                         "--policy", policy(self.tmp), "--container-cgroups", cgdir)
        self.assertIn("bad=1", r.stdout, r.stderr)
        self.assertIn("good=0", r.stdout, r.stderr)
        self.assertEqual(self.bad.accepted, 0)
        (deny,) = self.connects_of(r, BAD)
        self.assertEqual(deny["verdict"], "deny")
        self.assertEqual(deny["container"], {"engine": None, "kind": "container", "id": cid,
                                             "name": None, "image": None, "image_id": None})
        self.assertEqual(r.summary["containers"], [deny["container"]])


class AgentEngineTest(EngineTestCase):
    """Whole-job mode: the agent follows the containers a step of the job starts, with a
    real engine, and names them."""

    clean_kernel = test_agent.AgentTest.clean_kernel

    def test_step_docker_run_followed_by_the_agent(self):
        self.pin_root = f"/sys/fs/bpf/rw-e2e-{uuid.uuid4().hex[:12]}"
        self.addCleanup(self.clean_kernel)
        self.agent = test_agent.Agent(self.tmp, self.pin_root, ["--engine", self.engine.host])
        self.addCleanup(self.agent.kill)
        w = test_agent.Worker()
        self.addCleanup(w.stop)
        out = os.path.join(self.tmp, "out")
        rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out, "--no-sign",
                                    "--policy", policy(self.tmp), "--mode", "enforce")
        self.assertEqual(rc, 0, err)
        sh = f"nc -w 2 {BAD} {self.bad.port} </dev/null; echo bad=$?"
        res = w.step(DOCKER, "-H", self.engine.host, "run", "--rm", "--network", "host",
                     "--name", "rw-agent-1", IMAGE, "sh", "-c", sh)
        self.assertIn("bad=1", res["out"], res)
        rc, _, err = self.agent.job("stop")
        self.assertNotEqual(rc, 0)  # the denial is a violation
        r = Run(rc, err, out)
        (deny,) = self.connects_of(r, BAD)
        self.assertEqual((deny["verdict"], deny["container"]["name"]), ("deny", "rw-agent-1"))
        self.assertEqual([c["name"] for c in r.summary["containers"]], ["rw-agent-1"])
        self.assertEqual(self.bad.accepted, 0)
