"""The GitHub Action from nothing: its real pre/main/post scripts, the real release artifact
(`make dist`, served from loopback by http.server), the real agent and a real job.

A fresh runner, simulated: everything runs in a private mount namespace whose /opt, /run,
/var/lib, /etc/sudoers.d, /etc/passwd, /etc/group, /etc/shadow and /etc/resolv.conf are this test's own
(so the machine's are untouched), with a runner user (uid 4242) that has passwordless sudo as
on GitHub's images. A stand-in for the runner's worker runs as that user, starts pre.js, the
job's steps and post.js as its children, and hands the action its state from pre to post the
way the runner does. Nothing is installed, no agent runs and bpffs is not touched by hand
before pre. Loopback only: artifact server 127.0.0.1, dnsmasq 127.0.53.6, TCP 127.0.45.x.
"""
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

from rwtest import RW, ROOT, Dnsmasq, Run, RwTestCase, TcpServer, cgroup2_mount

GOOD, BAD, DNS = "127.0.45.1", "127.0.45.2", "127.0.53.6"
UID = 4242
USER = "rwrunner"


def dist_tarball():
    """The artifact `make dist` built (make e2e passes it as RW_DIST)."""
    path = os.environ.get("RW_DIST")
    if not path:
        d = os.path.join(ROOT, "build", "dist")
        cands = sorted(f for f in os.listdir(d) if f.endswith(".tar.gz")) if os.path.isdir(d) else []
        path = os.path.join(d, cands[-1]) if cands else ""
    if not path or not os.path.exists(path) or not os.path.exists(path + ".sha256"):
        raise RuntimeError("no release artifact: run `make dist` (or set RW_DIST)")
    return path


# The runner's worker, as the runner user: runs each request as its own child and answers with
# the child's status and output. A request is ["node", script, env] or ["step", env, argv...].
WORKER = r"""
import json, os, subprocess, sys
for line in sys.stdin:
    req = json.loads(line)
    if req[0] == "node":
        argv, env = ["/usr/bin/node", req[1]], req[2]
    else:
        argv, env = req[2:], req[1]
    try:
        p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        r = {"rc": p.returncode, "out": p.stdout.decode("utf-8", "replace"),
             "err": p.stderr.decode("utf-8", "replace")}
    except OSError as e:
        r = {"rc": 127, "out": "", "err": str(e)}
    sys.stdout.write(json.dumps(r) + "\n")
    sys.stdout.flush()
"""

# Root, in the new mount namespace: the fresh runner's files over the machine's, then the
# worker as the runner user.
SETUP = r"""set -e
t=$1
mount --make-rprivate /
for d in opt run var/lib etc/sudoers.d; do mount --bind "$t/root/$d" "/$d"; done
for f in passwd group shadow resolv.conf; do mount --bind "$t/root/etc/$f" "/etc/$f"; done
cd "$t/home"
exec setpriv --reuid=%(uid)d --regid=%(uid)d --clear-groups env -i PATH=/usr/bin:/bin HOME="$t/home" \
    /usr/bin/python3 -c "$2"
""" % {"uid": UID}

CONNECT = """
import socket, sys
try:
    a = socket.getaddrinfo(sys.argv[1], int(sys.argv[2]), socket.AF_INET, socket.SOCK_STREAM)[0][4]
    socket.create_connection(a, timeout=5).close()
    print("ok")
except OSError as e:
    print(e.errno if e.errno is not None else type(e).__name__)
"""


def parse_file_command(path):
    """NAME<<DELIM ... DELIM blocks, read the way the runner reads them."""
    with open(path) as f:
        lines = f.read().split("\n")
    out, i = {}, 0
    while i < len(lines):
        m = re.match(r"^([A-Za-z_-]+)<<(ghadelimiter_[0-9a-f-]+)$", lines[i])
        if m:
            j = lines.index(m.group(2), i + 1)
            out[m.group(1)] = "\n".join(lines[i + 1:j])
            i = j + 1
        else:
            i += 1
    return out


class ArtifactServer:
    """http.server on 127.0.0.1 serving one directory, remembering what was asked."""

    def __init__(self, root):
        self.paths = []
        paths = self.paths

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=root, **kw)

            def do_GET(self):
                paths.append(self.path)
                super().do_GET()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Runner:
    """A fresh runner: its layout on disk and its worker in its own mount namespace."""

    def __init__(self, tmp, action, sudoers=True):
        self.tmp, self.action = tmp, action
        os.chmod(tmp, 0o755)
        r = os.path.join(tmp, "root")
        for d in ("opt", "run", "var/lib", "etc/sudoers.d"):
            os.makedirs(os.path.join(r, d), mode=0o755)
            os.chmod(os.path.join(r, d), 0o755)
        with open("/etc/passwd") as f:
            passwd = f.read()
        with open("/etc/group") as f:
            group = f.read()
        self.home = os.path.join(tmp, "home")
        with open(os.path.join(r, "etc/passwd"), "w") as f:
            f.write(passwd + f"{USER}:x:{UID}:{UID}::{self.home}:/bin/sh\n")
        with open(os.path.join(r, "etc/group"), "w") as f:
            f.write(group + f"{USER}:x:{UID}:\n")
        with open("/etc/shadow") as f:
            shadow = f.read()
        with open(os.path.join(r, "etc/shadow"), "w") as f:
            f.write(shadow + f"{USER}:*:19000:0:99999:7:::\n")
        os.chmod(os.path.join(r, "etc/shadow"), 0o640)
        with open(os.path.join(r, "etc/resolv.conf"), "w") as f:
            f.write(f"nameserver {DNS}\n")
        self.sudoers = os.path.join(r, "etc/sudoers.d")
        if sudoers:  # as on GitHub's images: /etc/sudoers.d/runner
            with open(os.path.join(self.sudoers, USER), "w") as f:
                f.write(f"{USER} ALL=(ALL) NOPASSWD:ALL\n")
            os.chmod(os.path.join(self.sudoers, USER), 0o440)
        self.files = {}
        for d in ("home", "work", "temp", "cmd"):
            os.makedirs(os.path.join(tmp, d))
            os.chown(os.path.join(tmp, d), UID, UID)
        for n in ("summary", "env", "output", "path"):
            self.files[n] = self.user_file(n)
        self.state = {}
        self.agent_pids = []  # agents pre started: their scopes are this test's
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", SETUP, "sh", tmp, WORKER],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid  # unshare execs sh, which execs setpriv, env, python

    def user_file(self, name):
        p = os.path.join(self.tmp, "cmd", name)
        open(p, "w").close()
        os.chown(p, UID, UID)
        return p

    def env(self, extra=None):
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": self.home, "CI": "true",
             "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo/repo", "GITHUB_RUN_ID": "42",
             "GITHUB_JOB": "build", "GITHUB_WORKSPACE": os.path.join(self.tmp, "work"),
             "RUNNER_TEMP": os.path.join(self.tmp, "temp"), "RUNNER_OS": "Linux",
             "GITHUB_STEP_SUMMARY": self.files["summary"], "GITHUB_ENV": self.files["env"],
             "GITHUB_OUTPUT": self.files["output"], "GITHUB_PATH": self.files["path"],
             "GITHUB_ACTION_REPOSITORY": "runwarden/runwarden"}
        e.update(extra or {})
        return e

    def call(self, req, timeout=120):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the runner's worker died")
        return json.loads(line)

    def node(self, script, inputs=None, post=False):
        env = self.env({"GITHUB_ACTION": "__runwarden_runwarden"})
        for k, v in (inputs or {}).items():
            env["INPUT_" + k.upper()] = v
        if post:
            for k, v in self.state.items():
                env["STATE_" + k] = v
        else:
            env["GITHUB_STATE"] = self.user_file("state")
        r = self.call(["node", os.path.join(self.action, "action", script), env])
        if not post and script == "pre.js":
            self.state = parse_file_command(env["GITHUB_STATE"])
            pidfile = os.path.join(self.tmp, "root/var/lib/runwarden-action/agent.pid")
            if os.path.exists(pidfile):
                with open(pidfile) as f:
                    self.agent_pids.append(int(f.read()))
        return r

    def step(self, name, *argv):
        return self.call(["step", self.env({"GITHUB_ACTION": name}), *argv])

    def connect(self, host, port):
        return self.step("connect", "/usr/bin/python3", "-c", CONNECT, host, str(port))["out"].strip()

    def outputs(self):
        return parse_file_command(self.files["output"])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc.stdout.close()


class ActionTest(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dist = dist_tarball()
        cls.dns = Dnsmasq(DNS, records=[("allowed.test", GOOD), ("evil.test", BAD)])
        cls.good, cls.bad = TcpServer(GOOD), TcpServer(BAD)

    @classmethod
    def tearDownClass(cls):
        cls.good.stop()
        cls.bad.stop()
        cls.dns.stop()

    def setUp(self):
        super().setUp()
        # The action as a workflow checks it out, stamped by the release process.
        self.action = os.path.join(self.tmp, "action-src")
        os.makedirs(os.path.join(self.action, "action"))
        shutil.copy(os.path.join(ROOT, "action.yml"), self.action)
        for f in os.listdir(os.path.join(ROOT, "action")):
            shutil.copy(os.path.join(ROOT, "action", f), os.path.join(self.action, "action"))
        subprocess.run([os.path.join(ROOT, "scripts", "stamp-action.sh"), "-o",
                        os.path.join(self.action, "action", "release.json"), self.dist + ".sha256"],
                       check=True, capture_output=True)
        for d, _, files in os.walk(self.action):
            os.chmod(d, 0o755)
        self.www = os.path.join(self.tmp, "www")
        os.makedirs(self.www)
        shutil.copy(self.dist, self.www)
        self.server = ArtifactServer(self.www)
        self.addCleanup(self.server.stop)
        self.url = f"{self.server.url}/{os.path.basename(self.dist)}"
        self.runner = None
        self.addCleanup(self.cleanup)

    def new_runner(self, **kw):
        self.runner = Runner(self.tmp, self.action, **kw)
        return self.runner

    def cleanup(self):
        """Pass or fail: no agent, scope or pin of this test outlives it."""
        sock = os.path.join(self.tmp, "root/run/runwarden/agent.sock")
        if os.path.exists(sock):
            subprocess.run([RW, "job", "stop", "--socket", sock], capture_output=True, timeout=120)
        if self.runner:
            self.runner.stop()
        for pid in self.runner.agent_pids if self.runner else []:
            self.kill_agent(pid)

    def kill_agent(self, pid):
        try:
            if os.readlink(f"/proc/{pid}/exe").endswith("/bin/runwarden"):
                os.kill(pid, 9)
        except OSError:
            pass
        mnt = cgroup2_mount()
        for d in os.listdir(mnt):
            if d.startswith(f"runwarden-{pid}-"):
                try:
                    with open(os.path.join(mnt, d, "cgroup.kill"), "w") as f:
                        f.write("1")
                    time.sleep(0.2)
                    os.rmdir(os.path.join(mnt, d))
                except OSError:
                    pass
        pins = "/sys/fs/bpf/runwarden"
        for d in os.listdir(pins) if os.path.isdir(pins) else []:
            if f"-{pid}-" in d:
                for f in os.listdir(os.path.join(pins, d)):
                    os.unlink(os.path.join(pins, d, f))
                os.rmdir(os.path.join(pins, d))

    def tearDown(self):
        self.cleanup()
        # Only the scopes of agents this test started: other runs on the machine come and go.
        ours = tuple(f"runwarden-{p}-" for p in (self.runner.agent_pids if self.runner else []))
        left = {d for d in set(os.listdir(cgroup2_mount())) - self.cg_before if d.startswith(ours)}
        self.assertEqual(left, set(), "the action left cgroups behind")

    def installed(self):
        return os.listdir(os.path.join(self.tmp, "root", "opt"))

    def keypair(self):
        prefix = os.path.join(self.tmp, "sign")
        subprocess.run([RW, "keygen", "--out", prefix], check=True, capture_output=True)
        with open(prefix + ".key") as f:
            return f.read(), prefix + ".pub"

    # ------------------------------------------------------------ tests

    def test_fresh_runner_arms_enforces_and_proves(self):
        key, pub = self.keypair()
        r = self.new_runner()
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "root/run/runwarden")))
        res = r.node("pre.js", {"mode": "enforce", "artifact-url": self.url, "signing-key": key,
                                "allowed-endpoints": f"allowed.test:{self.good.port}"})
        self.assertEqual(res["rc"], 0, res["out"] + res["err"])
        self.assertEqual(self.server.paths, ["/" + os.path.basename(self.dist)])
        self.assertEqual(r.state["armed"], "true")
        secret = key.splitlines()[1]
        self.assertEqual([l for l in (res["out"] + res["err"]).splitlines() if secret in l],
                         ["::add-mask::" + secret])
        # Installed root-owned under /opt/runwarden, the agent up on its default socket.
        (inst,) = self.installed()
        self.assertEqual(inst, "runwarden")
        prefix = r.state["prefix"]
        self.assertTrue(prefix.startswith("/opt/runwarden/"))
        real = os.path.join(self.tmp, "root", prefix.lstrip("/"))
        st = os.stat(os.path.join(real, "bin", "runwarden"))
        self.assertEqual((st.st_uid, st.st_mode & 0o022), (0, 0))
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "root/run/runwarden/agent.sock")))
        # The worker (pre.js's parent) is in the job's scope; the key file is gone from the
        # runner's temp dir.
        with open(f"/proc/{r.pid}/cgroup") as f:
            self.assertIn("/runwarden-", f.read())
        self.assertEqual(os.listdir(os.path.join(self.tmp, "temp")), [])

        self.assertIn("watching", r.node("main.js", post=True)["out"])
        good0, bad0 = self.good.accepted, self.bad.accepted
        self.assertEqual(r.connect("allowed.test", self.good.port), "ok")
        t0 = time.time()
        self.assertEqual(r.connect(BAD, self.bad.port), "1")  # EPERM, at once
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(self.good.accepted, good0 + 1)
        self.assertEqual(self.bad.accepted, bad0, "a denied connection got through")

        res = r.node("post.js", post=True)
        self.assertNotEqual(res["rc"], 0, "a denial must fail the job")
        self.assertIn("::error", res["out"])
        out = r.outputs()
        self.assertEqual(out["evidence-dir"], os.path.join(self.tmp, "temp", "runwarden-out"))
        self.assertNotEqual(out["status"], "0")
        with open(self.runner.files["summary"]) as f:
            summary = f.read()
        self.assertIn(BAD, summary)
        ev = Run(1, "", out["evidence-dir"])
        ev.verify_chain()
        self.assertTrue(ev.summary["complete"])
        (ok,) = [e for e in ev.of("connect", daddr=GOOD, dport=self.good.port)]
        self.assertEqual((ok["verdict"], ok["step"]), ("allow", "connect"))
        self.assertTrue(ev.of("connect", daddr=BAD, dport=self.bad.port, verdict="deny"))
        v = subprocess.run([RW, "verify", "--key", pub,
                            os.path.join(out["evidence-dir"], "attestation.dsse.json")],
                           capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # The agent pre started is gone, the worker released, the fence down.
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "root/run/runwarden/agent.sock")))
        with open(f"/proc/{r.pid}/cgroup") as f:
            self.assertNotIn("/runwarden-", f.read())
        self.assertEqual(r.connect(BAD, self.bad.port), "ok")

    def test_observe_job_passes(self):
        r = self.new_runner()
        res = r.node("pre.js", {"artifact-url": self.url})
        self.assertEqual(res["rc"], 0, res["out"] + res["err"])
        self.assertEqual(r.connect("allowed.test", self.good.port), "ok")
        res = r.node("post.js", post=True)
        self.assertEqual(res["rc"], 0, res["out"] + res["err"])
        self.assertEqual(r.outputs()["status"], "0")
        ev = Run(0, "", r.outputs()["evidence-dir"])
        self.assertTrue(ev.summary["complete"])
        self.assertTrue(ev.of("connect", daddr=GOOD, dport=self.good.port))
        # Signed with an ephemeral key: self-consistent only (exit 3).
        v = subprocess.run([RW, "verify", "--key",
                            os.path.join(ev.outdir, "ephemeral.pub.pem"),
                            os.path.join(ev.outdir, "attestation.dsse.json")],
                           capture_output=True, text=True)
        self.assertIn(v.returncode, (0, 3), v.stdout + v.stderr)

    def test_agent_already_running_is_used_and_left_running(self):
        """A self-hosted runner with the agent as a service: pre uses it, post leaves it."""
        r = self.new_runner()
        s = r.step("service", "sudo", "-n", RW, "agent")  # daemonizes once listening
        self.assertEqual(s["rc"], 0, s["err"])
        with open(os.path.join(self.tmp, "root/var/lib/runwarden/agent.log")) as f:
            pid = int(re.search(r"agent listening on \S+ \(pid (\d+)\)", f.read()).group(1))
        r.agent_pids.append(pid)
        res = r.node("pre.js", {"artifact-url": self.url})
        self.assertEqual(res["rc"], 0, res["out"] + res["err"])
        self.assertIn("using the agent already running", res["err"])
        self.assertEqual(r.connect("allowed.test", self.good.port), "ok")
        res = r.node("post.js", post=True)
        self.assertEqual(res["rc"], 0, res["out"] + res["err"])
        self.assertTrue(Run(0, "", r.outputs()["evidence-dir"]).of(
            "connect", daddr=GOOD, dport=self.good.port))
        os.kill(pid, 0)  # still there for the next job
        sock = os.path.join(self.tmp, "root/run/runwarden/agent.sock")
        st = subprocess.run([RW, "job", "status", "--socket", sock], capture_output=True,
                            text=True)
        self.assertEqual((st.returncode, st.stdout.strip()), (0, "null"), st.stderr)
        os.kill(pid, 15)

    def test_disable_sudo(self):
        r = self.new_runner()
        self.assertEqual(r.step("sudo", "sudo", "-n", "true")["rc"], 0)  # as on GitHub
        res = r.node("pre.js", {"artifact-url": self.url, "disable-sudo": "true"})
        self.assertEqual(res["rc"], 0, res["out"] + res["err"])
        self.assertNotIn(USER, os.listdir(r.sudoers))
        s = r.step("sudo", "sudo", "-n", "true")
        self.assertNotEqual(s["rc"], 0, "the job still has sudo")
        s = r.step("sudo", "sudo", "-n", "/bin/sh", "-c", "id")
        self.assertNotEqual(s["rc"], 0)
        helper = os.path.join(r.state["prefix"], "libexec/runwarden/runwarden-action-root")
        # The job can reach the helper's finish, but without the token it is refused ...
        s = r.step("finish", "sh", "-c", f"echo guess | sudo -n {helper} finish")
        self.assertNotEqual(s["rc"], 0)
        self.assertIn("wrong token", s["err"])
        s = r.step("arm", "sudo", "-n", helper, "arm", "--pid", "2", "--mode", "observe")
        self.assertNotEqual(s["rc"], 0)
        # ... and the agent still holds the job.
        with open(f"/proc/{r.pid}/cgroup") as f:
            self.assertIn("/runwarden-", f.read())
        res = r.node("post.js", post=True)
        self.assertEqual(res["rc"], 0, res["out"] + res["err"])
        self.assertIn("tried to finish runwarden early", res["out"])
        # sudo comes back for the next job on a reused runner.
        self.assertIn(USER, os.listdir(r.sudoers))
        self.assertEqual(r.step("sudo", "sudo", "-n", "true")["rc"], 0)

    def test_disable_sudo_fails_closed_when_sudo_stays(self):
        r = self.new_runner(sudoers=False)
        # A rule runwarden does not remove: the user's group in another file
        with open(os.path.join(self.tmp, "root/etc/group"), "a") as f:
            f.write(f"rwadmins:x:4343:{USER}\n")
        with open(os.path.join(r.sudoers, "admins"), "w") as f:
            f.write("%rwadmins ALL=(ALL) NOPASSWD:ALL\n")
        os.chmod(os.path.join(r.sudoers, "admins"), 0o440)
        res = r.node("pre.js", {"artifact-url": self.url, "disable-sudo": "true"})
        self.assertEqual(res["rc"], 1, res["out"] + res["err"])
        self.assertIn("can still use sudo", res["err"])
        self.assertEqual(r.state["armed"], "false")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "root/run/runwarden/agent.sock")))
        with open(f"/proc/{r.pid}/cgroup") as f:
            self.assertNotIn("/runwarden-", f.read())

    def test_tampered_artifact_refused(self):
        with open(os.path.join(self.www, os.path.basename(self.dist)), "r+b") as f:
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 1]))
        r = self.new_runner()
        res = r.node("pre.js", {"artifact-url": self.url, "mode": "enforce",
                                "allowed-endpoints": "allowed.test"})
        self.assertEqual(res["rc"], 1)
        self.assertRegex(res["out"], r"::error::runwarden action: artifact .*: sha256 [0-9a-f]{64}, "
                                     r"but this action pins [0-9a-f]{64}; refusing to install it")
        self.assertEqual(r.state["armed"], "false")
        self.assertEqual(self.installed(), [])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "root/run/runwarden")))
        self.assertEqual(os.listdir(os.path.join(self.tmp, "temp")), [])
        res = r.node("post.js", post=True)
        self.assertEqual(res["rc"], 0)
        self.assertIn("not armed", res["out"])

    def test_unstamped_action_and_bad_inputs(self):
        r = self.new_runner()
        for inputs, msg in (
                ({"mode": "yolo"}, "mode: 'yolo'"),
                ({"mode": "enforce"}, "needs a policy"),
                ({"policy": "missing.yml"}, "does not exist"),
                ({"policy": "a.yml", "allowed-endpoints": "x.test"}, "either policy"),
                ({"allowed-endpoints": 'x.test"\nallow: [evil]'}, "is not host or host:port"),
                ({"allowed-endpoints": "x.test:99999"}, "is not host or host:port"),
                ({"disable-sudo": "yes"}, "is not true or false"),
                ({"install-dir": "opt"}, "not an absolute path"),
                ({"mode": "a%b\r\n::error::x"}, "mode: 'a%25b%0D%0A::error::x'")):
            with self.subTest(inputs=inputs):
                res = r.node("pre.js", {"artifact-url": self.url, **inputs})
                self.assertEqual(res["rc"], 1, inputs)
                self.assertIn(msg, res["out"])
                self.assertEqual(r.state["armed"], "false")
        with open(os.path.join(self.action, "action", "release.json"), "w") as f:
            json.dump({"version": "0.1.0", "artifacts": {}}, f)
        res = r.node("pre.js", {"artifact-url": self.url})
        self.assertEqual(res["rc"], 1)
        self.assertIn("was not stamped by a release", res["out"])
        self.assertEqual(self.server.paths, [])
        self.assertEqual(self.installed(), [])

    def test_artifact_is_reproducible(self):
        """The sha256 the action pins can be re-derived from the source: the same commit
        built in another checkout gives the same bytes."""
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        epoch = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%ct"],
                               capture_output=True, text=True).stdout.strip()
        if not epoch:
            self.fail("not a git checkout: cannot rebuild the artifact from the same commit")
        ls = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True,
                            check=True).stdout.split(b"\0")
        for rel in filter(None, (p.decode() for p in ls)):
            if os.path.lexists(os.path.join(ROOT, rel)):
                os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
                shutil.copy2(os.path.join(ROOT, rel), os.path.join(src, rel))
        p = subprocess.run(["make", "-j2", "dist", f"SOURCE_DATE_EPOCH={epoch}"], cwd=src,
                           capture_output=True, text=True, timeout=900)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        name = os.path.basename(self.dist)
        with open(os.path.join(src, "build", "dist", name), "rb") as f:
            rebuilt = hashlib.sha256(f.read()).hexdigest()
        ours = subprocess.run(["make", "-s", "-C", ROOT, "dist", f"SOURCE_DATE_EPOCH={epoch}"],
                              capture_output=True, text=True)
        self.assertEqual(ours.returncode, 0, ours.stderr)
        with open(self.dist, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), rebuilt)


if __name__ == "__main__":
    import unittest
    unittest.main()
