"""Real clients, as a CI job runs them, in every mode: the matrix that says whether a correct
job passes.

For each client: observe (the job passes, nothing would have been denied), learn ->
`runwarden learn` -> enforce with that policy (passes, zero denials), and enforce with the
client's destination left out of that policy (fails within seconds, and nothing gets through:
the server saw no request). A representative subset also in whole-job mode (agent).

Clients: npm (the real npm registry, as `npm config get registry` names it), apt-get download
(the machine's Debian mirror, as apt's own configuration names it), curl, wget, busybox's static
wget, git clone over HTTP (git http-backend), pip (Debian's, from a loopback index of a wheel
built here), Python's urllib, Node's fetch and dig. The loopback servers have names under .test
served by a dnsmasq on 127.0.53.7; those clients run in a private mount namespace whose
/etc/resolv.conf names it. Nothing but npm and apt-get leaves loopback, and only to the hosts
their own configuration names.
"""
import base64
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import zipfile

import yaml

from rwtest import RW, Dnsmasq, Run, RwTestCase
from test_agent import WORKER

DNS = "127.0.53.7"
FILES, GIT, PYPI = "127.0.47.1", "127.0.47.2", "127.0.47.3"
PY = "/usr/bin/python3"
FAIL_WITHIN = 15  # seconds: a refused destination must not make a client retry for long

# The client's own exit status, which `run` replaces with 1 on a violation.
STATUS = r'"$@"; echo "rw-client-status=$?"'


def client_status(stdout):
    for line in reversed(stdout.splitlines()):
        if line.startswith("rw-client-status="):
            return int(line.split("=", 1)[1])
    return None


def client_env(**extra):
    """This machine's environment without its pip settings (find-links, index): pip sees only
    the loopback index."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE="/dev/null", **extra)
    return env

# Runs "$@" with /etc/resolv.conf naming the test's dnsmasq, in a private mount namespace.
RESOLV = r"""set -e
mount --make-rprivate /
mount --bind "$RW_RESOLV" /etc/resolv.conf
exec "$@"
"""


class LoopbackHttp:
    """A threaded HTTP server on one loopback address that counts requests. `git` serves
    git http-backend (smart HTTP) from root; otherwise files under root. `tls`: an
    ssl.SSLContext to serve HTTPS with (each handshake in its connection's thread)."""

    def __init__(self, addr, root, git=False, tls=None):
        self.requests = []
        srv = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def __init__(self, *a, **kw):
                super().__init__(*a, directory=root, **kw)

            def log_message(self, *a):
                pass

            def do_GET(self):
                srv.requests.append(self.path)
                if git:
                    return self.backend()
                super().do_GET()

            def do_POST(self):
                srv.requests.append(self.path)
                self.backend()

            def backend(self):
                url = urllib.parse.urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                env = {"PATH": "/usr/bin:/bin", "GIT_PROJECT_ROOT": root,
                       "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": self.command,
                       "PATH_INFO": url.path, "QUERY_STRING": url.query,
                       "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": self.client_address[0],
                       "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
                p = subprocess.run(["git", "http-backend"], input=body, env=env,
                                   capture_output=True, timeout=60)
                head, _, data = p.stdout.partition(b"\r\n\r\n")
                status, headers = 200, []
                for line in head.decode("latin-1").split("\r\n"):
                    k, _, v = line.partition(":")
                    if k.lower() == "status":
                        status = int(v.split()[0])
                    elif k:
                        headers.append((k, v.strip()))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                s, a = self.socket.accept()
                if not tls:
                    return s, a
                s.settimeout(30)
                return tls.wrap_socket(s, server_side=True, do_handshake_on_connect=False), a

            def finish_request(self, request, client_address):
                if tls:
                    try:
                        request.do_handshake()
                    except OSError:  # ssl.SSLError too
                        return
                super().finish_request(request, client_address)

        self.httpd = Server((addr, 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def build_wheel(dist_dir):
    """A pure-Python wheel, built here from nothing (PEP 427), and its PEP 503 index page."""
    name, ver = "rwdemo", "1.0"
    files = {f"{name}/__init__.py": b"VALUE = 42\n",
             f"{name}-{ver}.dist-info/METADATA":
                 f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n".encode(),
             f"{name}-{ver}.dist-info/WHEEL":
                 b"Wheel-Version: 1.0\nGenerator: runwarden-tests\nRoot-Is-Purelib: true\n"
                 b"Tag: py3-none-any\n"}
    record = ""
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    record += f"{name}-{ver}.dist-info/RECORD,,\n"
    files[f"{name}-{ver}.dist-info/RECORD"] = record.encode()
    whl = f"{name}-{ver}-py3-none-any.whl"
    os.makedirs(os.path.join(dist_dir, "files"))
    with zipfile.ZipFile(os.path.join(dist_dir, "files", whl), "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    with open(os.path.join(dist_dir, "files", whl), "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    os.makedirs(os.path.join(dist_dir, "simple", name))
    with open(os.path.join(dist_dir, "simple", name, "index.html"), "w") as f:
        f.write(f'<!DOCTYPE html><html><body><a href="../../files/{whl}#sha256={sha}">{whl}'
                f'</a></body></html>\n')
    return name


def npm_registry_host():
    r = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True,
                       timeout=60)
    return urllib.parse.urlsplit(r.stdout.strip()).hostname


def apt_hosts():
    """The hosts apt-get itself would fetch `hello` from: its proxy if one is configured,
    else the mirror in the package's own download URI."""
    proxy = subprocess.run(["apt-config", "shell", "P", "Acquire::http::Proxy"],
                           capture_output=True, text=True).stdout
    if "P=" in proxy:
        return {urllib.parse.urlsplit(proxy.split("=", 1)[1].strip("'\n")).hostname}
    r = subprocess.run(["apt-get", "download", "--print-uris", "hello"], capture_output=True,
                       text=True, timeout=60)
    return {urllib.parse.urlsplit(line.split()[0].strip("'")).hostname
            for line in r.stdout.splitlines() if line.startswith("'")}


def without(policy_text, hosts, addrs=()):
    """The policy with every entry for these hosts or addresses removed, at every level."""
    pol = yaml.safe_load(policy_text)

    def keep(e):
        return e.get("host", "").lower().rstrip(".") not in hosts and e.get("ip") not in addrs

    for level in [pol] + list((pol.get("steps") or {}).values()):
        if level and level.get("allow"):
            level["allow"] = [e for e in level["allow"] if keep(e)]
    return yaml.safe_dump(pol, sort_keys=False)


def only(policy_text, hosts):
    """What a user would write by hand: the learned entries for these hosts and nothing else
    (no resolvers, no names the client derived from them, such as apt's SRV lookup)."""
    pol = yaml.safe_load(policy_text)
    allow = [e for e in pol.get("allow") or [] if e.get("host", "").lower().rstrip(".") in hosts]
    for st in (pol.get("steps") or {}).values():
        allow += [e for e in (st or {}).get("allow") or []
                  if e.get("host", "").lower().rstrip(".") in hosts]
    return yaml.safe_dump({"version": 1, "mode": "enforce", "allow": allow}, sort_keys=False)


class Client:
    """One matrix row: argv, how to tell it succeeded, and where it goes."""

    def __init__(self, name, argv, hosts, server=None, loopback=True, ok=None, addrs=(),
                 no_retry=()):
        self.name, self.argv, self.hosts, self.server = name, argv, set(hosts), server
        self.loopback, self.addrs = loopback, tuple(addrs)
        self.ok = ok or (lambda rc, out: rc == 0)
        # The client's own switch for "do not retry": a client that retries every failed
        # request whatever the error (npm: every fetch error, 10-60 s apart) cannot be made
        # to give up by any answer, so the left-out cell runs it as a user who wants a
        # refusal to fail the job fast would.
        self.no_retry = list(no_retry)

    def without_retries(self):
        if self.no_retry:
            self.argv = self.argv[:1] + self.no_retry + self.argv[1:]
        return self


class ClientMatrix(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = os.path.realpath(os.environ.get("TMPDIR", "/tmp"))
        cls.root = os.path.join(cls.base, f"rw-clients-{uuid.uuid4().hex[:8]}")
        os.makedirs(cls.root)
        cls.dnslog = os.path.join(cls.root, "dnsmasq.log")
        cls.dns = Dnsmasq(DNS, records=[("files.test", FILES), ("git.test", GIT),
                                        ("pypi.test", PYPI), ("dig.test", "127.0.47.4")],
                          log_file=cls.dnslog)
        cls.resolv = os.path.join(cls.root, "resolv.conf")
        with open(cls.resolv, "w") as f:
            f.write(f"nameserver {DNS}\n")
        www = os.path.join(cls.root, "www")
        os.makedirs(www)
        with open(os.path.join(www, "hello.txt"), "w") as f:
            f.write("hello\n")
        cls.files = LoopbackHttp(FILES, www)
        repos = os.path.join(cls.root, "git")
        os.makedirs(repos)
        subprocess.run(["git", "init", "-q", "--bare", os.path.join(repos, "repo.git")],
                       check=True)
        work = os.path.join(cls.root, "gitwork")
        g = ["git", "-C", work, "-c", "user.name=t", "-c", "user.email=t@t.test"]
        subprocess.run(["git", "init", "-q", work], check=True)
        with open(os.path.join(work, "README"), "w") as f:
            f.write("runwarden\n")
        subprocess.run(g + ["add", "README"], check=True)
        subprocess.run(g + ["commit", "-qm", "one"], check=True)
        subprocess.run(g + ["push", "-q", os.path.join(repos, "repo.git"), "HEAD:refs/heads/main"],
                       check=True)
        cls.git = LoopbackHttp(GIT, repos, git=True)
        index = os.path.join(cls.root, "pypi")
        cls.wheel = build_wheel(index)
        cls.pypi = LoopbackHttp(PYPI, index)

    @classmethod
    def tearDownClass(cls):
        for s in (cls.files, cls.git, cls.pypi):
            s.stop()
        cls.dns.stop()
        shutil.rmtree(cls.root, ignore_errors=True)

    # ------------------------------------------------------------ clients

    def client(self, name):
        url = f"http://files.test:{self.files.port}/hello.txt"
        work = os.path.join(self.tmp, "work")
        os.makedirs(work, exist_ok=True)
        os.chmod(self.tmp, 0o755)
        os.chmod(work, 0o777)  # apt's download method runs as _apt
        if name == "curl":
            return Client(name, ["curl", "-fsS", "-o", "/dev/null", url], ["files.test"], self.files)
        if name == "wget":
            return Client(name, ["wget", "-q", "-O", "/dev/null", url], ["files.test"], self.files)
        if name == "busybox-wget":
            bb = "/bin/busybox"
            return Client(name, [bb, "wget", "-q", "-O", "/dev/null", url], ["files.test"],
                          self.files)
        if name == "urllib":
            code = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=30).read()"
            return Client(name, [PY, "-c", code], ["files.test"], self.files)
        if name == "node-fetch":
            code = (f"fetch({url!r}).then(r => {{ if (!r.ok) process.exit(2); return r.text(); }})"
                    ".catch(e => { console.error(e.cause || e); process.exit(1); })")
            return Client(name, ["node", "-e", code], ["files.test"], self.files)
        if name == "git":
            dest = os.path.join(work, "clone")
            shutil.rmtree(dest, ignore_errors=True)
            return Client(name, ["git", "clone", "-q", f"http://git.test:{self.git.port}/repo.git",
                                 dest], ["git.test"], self.git)
        if name == "pip":
            dest = os.path.join(work, "site")
            shutil.rmtree(dest, ignore_errors=True)
            return Client(name, [PY, "-m", "pip", "install", "--disable-pip-version-check",
                                 "--no-cache-dir", "--target", dest, "--trusted-host",
                                 "pypi.test", "--index-url",
                                 f"http://pypi.test:{self.pypi.port}/simple/", self.wheel],
                          ["pypi.test"], self.pypi)
        if name == "dig":
            # dig exits 0 whatever the answer: success is an address in the answer.
            return Client(name, ["dig", "+short", "dig.test"], ["dig.test"],
                          ok=lambda rc, out: rc == 0 and "127.0.47.4" in out)
        if name == "npm":
            dest = os.path.join(work, "npm")
            shutil.rmtree(dest, ignore_errors=True)
            os.makedirs(dest)
            return Client(name, ["npm", "install", "--no-audit", "--no-fund",
                                 "--no-update-notifier", "--cache", os.path.join(dest, ".cache"),
                                 "--prefix", dest, "is-number"],
                          [npm_registry_host()], loopback=False, no_retry=["--fetch-retries=0"])
        if name == "apt":
            return Client(name, ["sh", "-c", f"cd {work} && rm -f hello_*.deb && "
                                 "exec apt-get download -q hello"],
                          apt_hosts(), loopback=False)
        raise KeyError(name)

    # ------------------------------------------------------------ one run

    def run_job(self, c, tag, *opts):
        """`runwarden run` of the client: (Run, client succeeded, seconds)."""
        out = os.path.join(self.tmp, tag)
        argv = [RW, "run", "--out", out, "--no-sign", *opts, "--", "sh", "-c", STATUS, "sh",
                *c.argv]
        env = client_env(RW_RESOLV=self.resolv)
        if c.loopback:
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", RESOLV, "sh", *argv]
        t0 = time.time()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env,
                           cwd=os.path.join(self.tmp, "work"))
        took = time.time() - t0
        run = Run(p.returncode, p.stderr, out, p.stdout)
        return run, c.ok(client_status(p.stdout), p.stdout), took

    def dns_queries(self, name):
        with open(self.dnslog) as f:
            return sum(1 for l in f if f"query[" in l and f" {name} from" in l)

    def assert_clean(self, run, what):
        bad = [e for e in run.events if e.get("verdict") in ("deny", "block")]
        brief = [{k: e.get(k) for k in ("kind", "comm", "family", "type", "query", "qtype",
                                          "daddr", "dport", "verdict") if e.get(k) is not None}
                 for e in bad]
        self.assertEqual(brief, [], f"{what}: denials")
        self.assertIsNotNone(run.summary, f"{what}: no summary.json:\n{run.stderr}")
        self.assertEqual(run.summary["denials"], 0, f"{what}:\n{run.stderr}")
        # an ordinary client job is no attack: no finding of any kind (docs/findings.md)
        self.assertEqual([(f["kind"], f["description"]) for f in run.summary["findings"]], [],
                         f"{what}: findings")

    def matrix(self, name):
        c = self.client(name)
        obs, ok, _ = self.run_job(c, "observe")
        self.assertTrue(ok, f"{name} failed under observe:\n{obs.stdout}\n{obs.stderr}")
        self.assertEqual(obs.rc, 0, obs.stderr)
        self.assert_clean(obs, f"{name} observe")
        self.assertEqual(obs.summary["audits"], 0, obs.stderr)

        learned = subprocess.run([RW, "learn", obs.outdir], capture_output=True, text=True)
        self.assertEqual(learned.returncode, 0, learned.stderr)
        policy = os.path.join(self.tmp, "learned.yaml")
        with open(policy, "w") as f:
            f.write(learned.stdout)
        with self.subTest(cell="enforce with the learned policy"):
            c = self.client(name)
            enf, ok, _ = self.run_job(c, "enforce", "--policy", policy, "--mode", "enforce")
            self.assert_clean(enf, f"{name} enforce (learned)")
            self.assertTrue(ok, f"{name} failed under its learned policy:\n{learned.stdout}\n"
                                f"{enf.stdout}\n{enf.stderr}")
            self.assertEqual(enf.rc, 0, f"{learned.stdout}\n{enf.stderr}")
            self.assertEqual(enf.summary["audits"], 0, enf.stderr)

        with self.subTest(cell="enforce with a hand-written policy (the destination only)"):
            hand = os.path.join(self.tmp, "hand.yaml")
            with open(hand, "w") as f:
                f.write(only(learned.stdout, c.hosts))
            c = self.client(name)
            enf, ok, _ = self.run_job(c, "hand", "--policy", hand, "--mode", "enforce")
            self.assert_clean(enf, f"{name} enforce (hand-written)")
            self.assertTrue(ok, f"{name} failed with only its destination allowed:\n"
                                f"{only(learned.stdout, c.hosts)}\n{enf.stdout}\n{enf.stderr}")
            self.assertEqual(enf.rc, 0, enf.stderr)

        with self.subTest(cell="enforce with the destination left out"):
            missing = os.path.join(self.tmp, "missing.yaml")
            with open(missing, "w") as f:
                f.write(without(learned.stdout, c.hosts, c.addrs))
            c = self.client(name).without_retries()
            seen = len(c.server.requests) if c.server else None
            asked = {h: self.dns_queries(h) for h in c.hosts} if c.loopback else {}
            den, ok, took = self.run_job(c, "denied", "--policy", missing, "--mode", "enforce")
            self.assertFalse(ok, f"{name} succeeded with its destination left out")
            self.assertNotEqual(den.rc, 0, f"{name}: a refused destination must fail the job")
            if c.server:
                self.assertEqual(len(c.server.requests), seen, f"{name}: the server saw a request")
            for h, n in asked.items():
                self.assertEqual(self.dns_queries(h), n, f"{name}: the name {h} left the gate")
            leaked = [e for e in den.of("connect") if e.get("verdict") in ("allow", "audit") and
                      e.get("host") in c.hosts]
            self.assertEqual(leaked, [], f"{name}: allowed connections to the left-out destination")
            self.assertLess(took, FAIL_WITHIN, f"{name} took {took:.1f} s to give up")

    # ------------------------------------------------------------ run mode

    def test_curl(self):
        self.matrix("curl")

    def test_wget(self):
        self.matrix("wget")

    def test_busybox_wget(self):
        self.matrix("busybox-wget")

    def test_urllib(self):
        self.matrix("urllib")

    def test_node_fetch(self):
        self.matrix("node-fetch")

    def test_git_http_backend(self):
        self.matrix("git")

    def test_pip_loopback_index(self):
        self.matrix("pip")

    def test_dig(self):
        self.matrix("dig")

    def test_npm_registry(self):
        self.matrix("npm")

    def test_apt_get_download(self):
        self.matrix("apt")

    # ------------------------------------------------------------ whole-job mode

    def agent_matrix(self, name):
        c = self.client(name)
        pins = f"/sys/fs/bpf/rw-e2e-{uuid.uuid4().hex[:12]}"
        sock = os.path.join(self.tmp, "ctl", "agent.sock")
        wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c", RESOLV, "sh"] \
            if c.loopback else []
        env = client_env(RW_RESOLV=self.resolv)
        log = open(os.path.join(self.tmp, "agent.log"), "w")
        self.addCleanup(log.close)
        agent = subprocess.Popen(wrap + [RW, "agent", "--foreground", "--socket", sock,
                                         "--state", os.path.join(self.tmp, "state"),
                                         "--pin-root", pins], stdout=log, stderr=log, env=env)
        worker = subprocess.Popen(wrap + [sys.executable, "-c", WORKER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env,
                                  cwd=os.path.join(self.tmp, "work"))

        def cleanup():
            subprocess.run([RW, "job", "stop", "--socket", sock], capture_output=True)
            for p in (worker, agent):
                if p.poll() is None:
                    p.terminate()
                p.wait(30)
            worker.stdin.close()
            worker.stdout.close()
            if os.path.isdir(pins):
                for d, _, files in os.walk(pins, topdown=False):
                    for f in files:
                        os.unlink(os.path.join(d, f))
                    os.rmdir(d)
        self.addCleanup(cleanup)
        deadline = time.time() + 20
        while not os.path.exists(sock) and time.time() < deadline:
            self.assertIsNone(agent.poll(), "agent exited")
            time.sleep(0.05)

        def job(tag, *opts, no_retry=False):
            out = os.path.join(self.tmp, tag)
            p = subprocess.run([RW, "job", "start", "--socket", sock, "--pid", str(worker.pid),
                                "--out", out, "--no-sign", *opts], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            t0 = time.time()
            # Each step as the runner starts it: its own GITHUB_ACTION.
            step = self.client(name)
            if no_retry:
                step.without_retries()
            worker.stdin.write(json.dumps(["env", "GITHUB_ACTIONS=true", "GITHUB_ACTION=deps",
                                           *step.argv]) + "\n")
            worker.stdin.flush()
            r = json.loads(worker.stdout.readline())
            took = time.time() - t0
            p = subprocess.run([RW, "job", "stop", "--socket", sock], capture_output=True,
                               text=True, timeout=120)
            return Run(p.returncode, p.stderr, out), c.ok(r["rc"], r["out"]), took

        obs, ok, _ = job("observe")
        self.assertTrue(ok, f"{name} failed under observe: {obs.stderr}")
        self.assertEqual(obs.rc, 0, obs.stderr)
        self.assert_clean(obs, f"{name} whole-job observe")
        learned = subprocess.run([RW, "learn", obs.outdir], capture_output=True, text=True)
        self.assertEqual(learned.returncode, 0, learned.stderr)
        policy = os.path.join(self.tmp, "learned.yaml")
        with open(policy, "w") as f:
            f.write(learned.stdout)
        with self.subTest(cell="whole-job enforce with the learned policy"):
            enf, ok, _ = job("enforce", "--policy", policy, "--mode", "enforce")
            self.assert_clean(enf, f"{name} whole-job enforce (learned)")
            self.assertTrue(ok, f"{name} failed in whole-job enforce with its learned policy:\n"
                                f"{learned.stdout}\n{enf.stderr}")
            self.assertEqual(enf.rc, 0, f"{learned.stdout}\n{enf.stderr}")
        with self.subTest(cell="whole-job enforce with the destination left out"):
            missing = os.path.join(self.tmp, "missing.yaml")
            with open(missing, "w") as f:
                f.write(without(learned.stdout, c.hosts, c.addrs))
            seen = len(c.server.requests) if c.server else None
            den, ok, took = job("denied", "--policy", missing, "--mode", "enforce",
                                no_retry=True)
            self.assertFalse(ok, f"{name} succeeded with its destination left out")
            self.assertNotEqual(den.rc, 0)
            if c.server:
                self.assertEqual(len(c.server.requests), seen, f"{name}: the server saw a request")
            self.assertLess(took, FAIL_WITHIN, f"{name} took {took:.1f} s to give up")

    def test_whole_job_curl(self):
        self.agent_matrix("curl")

    def test_whole_job_pip(self):
        self.agent_matrix("pip")

    def test_whole_job_npm(self):
        self.agent_matrix("npm")

    def test_whole_job_apt(self):
        self.agent_matrix("apt")


if __name__ == "__main__":
    import unittest
    unittest.main()
