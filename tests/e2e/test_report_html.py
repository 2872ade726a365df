"""`runwarden report` end to end: the HTML page rendered in headless Chromium
(DOM assertions and a screenshot), plus the terminal, GitHub and JUnit outputs
of the same hostile fixture. Env: RW=<runwarden binary>. Chromium runs with
every name resolving to nothing, so a page that tried to fetch would fail."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_report_fixtures as F  # noqa: E402

RW = os.environ.get("RW", "runwarden")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(args, tmp):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND",
           "--user-data-dir=" + os.path.join(tmp, "profile")] + args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


class ReportHTML(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rw-html-")
        cls.run_dir = F.write_run(os.path.join(cls.tmp, "run"))
        cls.html = os.path.join(cls.tmp, "report.html")
        cls.junit = os.path.join(cls.tmp, "junit.xml")
        cls.md = os.path.join(cls.tmp, "summary.md")
        cls.res = subprocess.run([RW, "report", cls.run_dir, "--html", cls.html, "--junit",
                                  cls.junit, "--github-summary", cls.md],
                                 capture_output=True, timeout=60)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_exit_and_files(self):
        self.assertEqual(self.res.returncode, 0, self.res.stderr)
        for p in (self.html, self.junit, self.md):
            self.assertTrue(os.path.getsize(p) > 100, p)

    def test_self_contained(self):
        with open(self.html, encoding="utf-8") as f:
            page = f.read()
        # nothing that could fetch: no external src/href, no link/import
        self.assertIsNone(re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page))
        self.assertNotIn("<link", page)
        self.assertNotIn("@import", page)
        self.assertIn("default-src 'none'", page)
        # the embedded data cannot end its script element early
        m = re.search(r'<script type="application/json" id="rw-data">(.*?)</script>', page, re.S)
        self.assertIsNotNone(m)
        self.assertNotIn("<", m.group(1))
        data = json.loads(m.group(1))
        self.assertEqual(len(data["procs"]), 5)
        self.assertIn(F.HOSTILE_ARG, data["procs"][2]["argv"])

    @unittest.skipUnless(CHROMIUM, "chromium not installed (scripts/deps.sh test)")
    def test_dom(self):
        res = chromium(["--virtual-time-budget=5000", "--dump-dom", "file://" + self.html],
                       self.tmp)
        dom = res.stdout
        self.assertIn('data-ready="1"', dom, res.stderr[-2000:])
        # five processes (pid 101 was reused: two nodes), denials first and highlighted
        self.assertEqual(len(re.findall(r'<li class="proc[ "]', dom)), 5)
        self.assertEqual(len(re.findall(r'<li class="proc denied', dom)), 1)
        self.assertIn('<table id="denials">', dom)
        self.assertLess(dom.index('id="denials"'), dom.index('id="tree"'))
        # tree shape: curl, evil and npm under bash; cat under evil
        self.assertIsNotNone(re.search(r'id="p0".*?<ul class="children">.*?id="p1"', dom, re.S))
        self.assertIsNotNone(re.search(
            r'id="p2".*?<ul class="children"><li class="proc[^"]*" id="p3"', dom, re.S))
        # hostile text is text: no injected elements ran or exist
        self.assertNotIn("PWNED", re.sub(r"&lt;.*?&gt;|window\.PWNED=\d", "", dom))
        self.assertEqual(dom.count("<script"), 2)
        self.assertNotIn("<img", dom)
        self.assertIn("&lt;/script&gt;&lt;script&gt;window.PWNED=1", dom)
        self.assertIn("evil\"&lt;b&gt;&amp;x.example:4444", dom)
        self.assertIn("/usr/bin/c\ufffdat", dom)
        # connections, names and files sit under their process
        self.assertIsNotNone(re.search(r'id="p1".*?example\.com:443 \(93\.184\.216\.34\) x2',
                                       dom, re.S))
        self.assertIn("file /home/u/.ssh/id_rsa", dom)
        # the step filter lists every step
        self.assertIn('<option value="build">build</option>', dom)

    @unittest.skipUnless(CHROMIUM, "chromium not installed (scripts/deps.sh test)")
    def test_filter_by_step(self):
        res = chromium(["--virtual-time-budget=5000", "--dump-dom",
                        "file://" + self.html + "#step=test"], self.tmp)
        dom = res.stdout
        classes = {pid: cls for cls, pid in re.findall(r'<li class="(proc[^"]*)" id="(p\d+)"',
                                                       dom)}
        self.assertEqual(len(classes), 5, res.stderr[-2000:])
        self.assertIn("match", classes["p4"])      # npm, step "test"
        self.assertIn("hidden", classes["p1"])     # curl, step "build", no "test" below
        self.assertIn("context", classes["p0"])    # bash: only an ancestor of a match
        self.assertIn("1 of 5 processes", dom)

    @unittest.skipUnless(CHROMIUM, "chromium not installed (scripts/deps.sh test)")
    def test_screenshot(self):
        png = os.path.join(self.tmp, "report.png")
        res = chromium(["--virtual-time-budget=5000", "--window-size=1280,1600",
                        "--screenshot=" + png, "file://" + self.html], self.tmp)
        self.assertTrue(os.path.exists(png), res.stderr[-2000:])
        with open(png, "rb") as f:
            head = f.read(24)
        self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        self.assertEqual((width, height), (1280, 1600))
        self.assertGreater(os.path.getsize(png), 20000)  # a rendered page, not a blank one
        keep = os.environ.get("RW_KEEP_SCREENSHOT")
        if keep:
            shutil.copy(png, keep)

    def test_junit(self):
        root = ET.parse(self.junit).getroot()
        self.assertEqual(root.tag, "testsuites")
        cases = root.findall(".//testcase")
        self.assertEqual(len(cases), 5)
        failures = root.findall(".//failure")
        self.assertEqual(len(failures), 2)
        self.assertEqual(root.get("failures"), "2")
        names = [c.get("name") for c in cases]
        self.assertIn('connect tcp evil"<b>&x.example:4444 (203.0.113.9)', names)

    def test_github_summary(self):
        with open(self.md, encoding="utf-8") as f:
            md = f.read()
        self.assertLess(md.index("### Denied"), md.index("### Destinations by step"))
        self.assertIn("```yaml\nallowed-endpoints: |\n  example.com:443\n", md)
        self.assertIn("  [2001:db8::1]:53\n", md)
        self.assertIn("  registry.npmjs.org:443\n", md)
        allow = md.split("```yaml")[1].split("```")[0]
        self.assertNotIn("4444", allow)  # denied stays out
        self.assertNotIn("<b>", md)
        self.assertNotIn("<i>", md)
        out = self.res.stdout.decode("utf-8", "replace")
        cmds = [l for l in out.splitlines() if l.startswith("::")]
        self.assertEqual(len(cmds), 3)
        self.assertTrue(cmds[0].startswith("::error title=runwarden%3A denied::"))
        self.assertIn("exfil.example%0A::error::forged %250A line%0D%0A", cmds[0])
        self.assertTrue(cmds[2].startswith("::warning "))
        # recorded text with "::error::" in it never starts a line of its own
        self.assertTrue(all(l.startswith(("::error title=runwarden", "::warning title=runwarden"))
                            for l in cmds))

    def test_terminal(self):
        out = self.res.stdout.decode("utf-8", "replace")
        self.assertIn("3 policy violations (2 denied, 1 would have been).", out)
        self.assertLess(out.index("DENIED"), out.index("destinations ("))
        self.assertIn("sensitive files:", out)
        self.assertIn("missing hook: lsm/file_open", out)
        self.assertNotIn("\x1b", out)

    @unittest.skipUnless(os.geteuid() == 0, "runwarden run needs root")
    def test_real_run(self):
        # A real recording (no network: a file read and an exec), read back by every format.
        out = os.path.join(self.tmp, "real")
        res = subprocess.run([RW, "run", "--out", out, "--step", "real", "--quiet", "--",
                              "bash", "-c", "x=$(cat /etc/hostname | tr a b); /bin/true"],
                             capture_output=True, timeout=120)
        if res.returncode != 0 or not os.path.exists(os.path.join(out, "events.ndjson")):
            self.skipTest("runwarden run unavailable here: " + res.stderr.decode()[-300:])
        html = os.path.join(self.tmp, "real.html")
        rep = subprocess.run([RW, "report", out, "--html", html, "--junit",
                              os.path.join(self.tmp, "real.xml")], capture_output=True,
                             timeout=60)
        self.assertEqual(rep.returncode, 0, rep.stderr)
        self.assertIn(b"events: exec ", rep.stdout)
        self.assertNotIn(b"note: events.ndjson has no closing record", rep.stdout)
        ET.parse(os.path.join(self.tmp, "real.xml"))
        with open(html, encoding="utf-8") as f:
            m = re.search(r'id="rw-data">(.*?)</script>', f.read(), re.S)
        data = json.loads(m.group(1))
        self.assertTrue(any((p.get("argv") or [None])[0] == "cat" for p in data["procs"]))
        self.assertEqual(data["steps"], ["real"])
        # the $(...) subshell's pipeline hangs under the subshell, under bash (which ends by
        # exec'ing /bin/true): one root
        self.assertEqual(len([p for p in data["procs"] if p["parent"] is None]), 1)
        by_id = {p["id"]: p for p in data["procs"]}
        (cat,) = [p for p in data["procs"] if p["comm"] == "cat"]
        self.assertEqual(by_id[cat["parent"]]["pid"], cat["ppid"])

    def test_bad_input(self):
        d = os.path.join(self.tmp, "bad")
        os.makedirs(d)
        with open(os.path.join(d, "events.ndjson"), "w") as f:
            f.write('{"kind":"exec"}\n{broken\n')
        res = subprocess.run([RW, "report", d], capture_output=True, timeout=60)
        self.assertEqual(res.returncode, 1)
        err = res.stderr.decode()
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn(":2: not a JSON object", err)
        res = subprocess.run([RW, "report", os.path.join(self.tmp, "nonesuch")],
                             capture_output=True, timeout=60)
        self.assertEqual(res.returncode, 1)
        res = subprocess.run([RW, "report"], capture_output=True, timeout=60)
        self.assertEqual(res.returncode, 2)


if __name__ == "__main__":
    unittest.main()


def tree_events():
    """A `$(...)` subshell (a fork that never execs, seen only at its exit, after its
    child) and a pyenv-like shim whose 60 helper forks did nothing but run."""
    ev = [
        F._ev("exec", 100, 1, "bash", "/usr/bin/bash", None, argv=["bash", "job.sh"], cwd="/w"),
        F._ev("exec", 111, 110, "cat", "/usr/bin/cat", None, argv=["cat", "/home/u/.netrc"],
              cwd="/w"),
        F._ev("file", 111, 110, "cat", "/usr/bin/cat", None, path="/home/u/.netrc",
              flags=["O_RDONLY"], result="ok"),
        F._ev("exit", 111, 110, "cat", "/usr/bin/cat", None, status=0),
        F._ev("exit", 110, 100, "bash", "/usr/bin/bash", None, status=0),
        F._ev("exec", 200, 100, "pyenv", "/usr/bin/bash", None, argv=["bash", "pyenv", "exec"],
              cwd="/w"),
    ]
    for pid in range(201, 261):
        ev.append(F._ev("exit", pid, 200, "bash", "/usr/bin/bash", None, status=0))
    ev += [
        F._ev("exec", 300, 200, "python3", "/usr/bin/python3", None, argv=["python3", "x.py"],
              cwd="/w"),
        F._ev("connect", 300, 200, "python3", "/usr/bin/python3", None, proto="tcp",
              family="ipv4", daddr="127.0.0.1", dport=8080, host=None, verdict="allow"),
        F._ev("exit", 300, 200, "python3", "/usr/bin/python3", None, status=0),
        F._ev("exit", 200, 100, "pyenv", "/usr/bin/bash", None, status=0),
        F._ev("exit", 100, 1, "bash", "/usr/bin/bash", None, status=0),
    ]
    for i, e in enumerate(ev):
        e["ts"] = "2026-11-25T13:00:00.%09dZ" % (i + 1)
    return ev


class ReportTree(unittest.TestCase):
    """Forks linked to their real parent; quiet subtrees folded."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rw-tree-")
        summ = F.summary()
        summ["missing_hooks"] = []
        summ["leftovers"] = []
        cls.run_dir = F.write_run(os.path.join(cls.tmp, "run"), tree_events(), summ)
        cls.html = os.path.join(cls.tmp, "tree.html")
        cls.res = subprocess.run([RW, "report", cls.run_dir, "--html", cls.html, "--quiet"],
                                 capture_output=True, timeout=60)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def data(self):
        with open(self.html, encoding="utf-8") as f:
            return json.loads(re.search(r'id="rw-data">(.*?)</script>', f.read(), re.S).group(1))

    def test_forks_link_to_real_parent(self):
        self.assertEqual(self.res.returncode, 0, self.res.stderr)
        procs = self.data()["procs"]
        by_pid = {p["pid"]: p for p in procs}
        roots = [p["pid"] for p in procs if p["parent"] is None]
        self.assertEqual(roots, [100])
        self.assertEqual(by_pid[111]["parent"], by_pid[110]["id"])  # under the subshell
        self.assertEqual(by_pid[110]["parent"], by_pid[100]["id"])

    @unittest.skipUnless(CHROMIUM, "chromium not installed (scripts/deps.sh test)")
    def test_quiet_subtrees_fold(self):
        res = chromium(["--virtual-time-budget=5000", "--dump-dom", "file://" + self.html],
                       self.tmp)
        dom = res.stdout
        self.assertIn('data-ready="1"', dom, res.stderr[-2000:])
        # the 60 helper forks: one closed group, after the python that connected
        self.assertEqual(dom.count("<details>"), 1, dom)
        self.assertIn("60 processes that only ran (no network, files or denials)", dom)
        self.assertLess(dom.index("127.0.0.1:8080"), dom.index("60 processes that only ran"))
        # cat's sensitive read is shown, nested under the subshell under bash
        p = {d["pid"]: d["id"] for d in self.data()["procs"]}
        self.assertIsNotNone(re.search(
            rf'id="p{p[100]}".*?id="p{p[110]}".*?<ul class="children"><li class="proc[^"]*" '
            rf'id="p{p[111]}"', dom, re.S))
        png = os.path.join(self.tmp, "tree.png")
        chromium(["--virtual-time-budget=5000", "--window-size=1100,900", "--screenshot=" + png,
                  "file://" + self.html], self.tmp)
        keep = os.environ.get("RW_KEEP_SCREENSHOT")
        if keep:
            shutil.copy(png, keep.replace(".png", "") + "-tree.png")
