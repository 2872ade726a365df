"""Every output of one run agrees with its exit status: a real enforce run with
denials of every kind (connect, DNS, socket; would-be denials in observe) is
read back by the terminal summary, summary.json, `runwarden report` (text,
GitHub job summary and workflow commands, JUnit, HTML), and each must list
the same grouped violations with the same counts.

Loopback only: dnsmasq on 127.0.53.1, TCP servers on 127.0.43.x."""
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

from rwtest import RW, TOOLS, Dnsmasq, RwTestCase, TcpServer

GOOD, BAD = "127.0.43.1", "127.0.43.2"

# Two denied connects, two refused names (A and TXT: one row each), a raw IPv4
# and a packet socket, and a failed open of a sensitive file.
JOB = r"""
import os, socket, subprocess, sys
good, bad, gp, bp, tools = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
socket.create_connection((good, gp), timeout=5).close()
for _ in range(2):
    try:
        socket.create_connection((bad, bp), timeout=5).close()
    except OSError:
        pass
for _ in range(2):
    subprocess.run([tools + "/static_dns", "127.0.53.1", "53", "evil.test"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
subprocess.run(["dig", "+time=2", "+tries=1", "@127.0.53.1", "TXT", "evil.test"],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for fam, typ, proto in ((socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
                        (socket.AF_PACKET, socket.SOCK_RAW, 0)):
    try:
        socket.socket(fam, typ, proto).close()
    except OSError:
        pass
try:
    open(os.path.expanduser("~/.ssh/id_rw_test_missing"))
except OSError:
    pass
subprocess.run(["cat", os.path.expanduser("~/.ssh/id_rw_test_missing")],
               stderr=subprocess.DEVNULL)
"""


class ReportsAgree(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = Dnsmasq(records=[("allowed.test", GOOD), ("evil.test", BAD)])
        cls.good = TcpServer(GOOD)
        cls.bad = TcpServer(BAD)

    @classmethod
    def tearDownClass(cls):
        cls.good.stop()
        cls.bad.stop()
        cls.dns.stop()

    def policy(self, mode):
        path = os.path.join(self.tmp, "policy.yaml")
        with open(path, "w") as f:
            f.write(f"""version: 1
mode: {mode}
fail_on_violation: true
allow:
  - ip: {GOOD}
    ports: [{self.good.port}]
dns:
  upstream: 127.0.53.1
""")
        return path

    def job(self, mode):
        r = self.rw([sys.executable, "-c", JOB, GOOD, BAD, str(self.good.port),
                     str(self.bad.port), TOOLS], "--policy", self.policy(mode),
                    "--mode", mode, "--watch", "**/.ssh/id_rw_test_missing")
        self.assertIsNotNone(r.summary, r.stderr)
        return r

    def report(self, r):
        html, junit, md = (os.path.join(self.tmp, n) for n in ("r.html", "r.xml", "r.md"))
        p = subprocess.run([RW, "report", r.outdir, "--html", html, "--junit", junit,
                            "--github-summary", md], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(md) as f:
            mdtext = f.read()
        with open(html) as f:
            m = re.search(r'id="rw-data">(.*?)</script>', f.read(), re.S)
        return p.stdout, mdtext, ET.parse(junit).getroot(), json.loads(m.group(1))

    def check_agree(self, r, want_verdict):
        s = r.summary
        rows = s["violations"]
        kinds = {(v["kind"], v["verdict"]) for v in rows}
        for k in ("connect", "dns", "socket"):
            self.assertIn((k, want_verdict), kinds, rows)
        # grouped: one row per thing attempted, with its count; DNS rows keep the type
        conn = [v for v in rows if v["kind"] == "connect" and v["daddr"] == BAD]
        self.assertEqual([v["count"] for v in conn], [2], conn)
        dns = {(v["query"], v["qtype"]): v["count"] for v in rows if v["kind"] == "dns"}
        self.assertEqual(dns.get(("evil.test", "A")), 2, dns)
        self.assertEqual(dns.get(("evil.test", "TXT")), 1, dns)
        socks = {v["family"] for v in rows if v["kind"] == "socket"}
        self.assertEqual(socks, {"ipv4", "packet"}, rows)
        # the counts add up to what the run counted
        total = sum(v["count"] for v in rows)
        self.assertEqual(total, s["denials"] + s["audits"])
        self.assertTrue(s["violations_fail_run"])
        self.assertEqual(r.rc, 1, r.stderr)
        # a failed open is an attempt, not a read
        files = [f for f in s["files"] if f["path"].endswith("id_rw_test_missing")]
        self.assertEqual([f["result"] for f in files], ["ENOENT"], s["files"])
        self.assertEqual(files[0]["count"], 2)
        # the run's summary names every process that tried, not only the first
        self.assertRegex(r.stderr, r'id_rw_test_missing" \(attempt, ENOENT\) x2 by '
                                   r'\S*python\S* \[pid \d+\], /usr/bin/cat \[pid \d+\]')

        text, md, junit, data = self.report(r)
        head = (f"{total} policy violations ({s['denials']} denied, {s['audits']} would have "
                f"been); the run failed on them.")
        denied = [v for v in rows if v["verdict"] in ("deny", "block")]
        failing = rows  # fail_on_violation: every row failed the run
        # terminal summary of the run itself, and `report`'s text
        for v in rows:
            pat = {"connect": rf"connect tcp {v.get('daddr')}:{v.get('dport')}",
                   "dns": rf'dns "{v.get("query")}" {v.get("qtype")}',
                   "socket": rf"socket [^\n]*{v.get('family')}"}[v["kind"]]
            self.assertRegex(r.stderr, rf"{v['verdict']} {pat}[^\n]* x{v['count']}")
        self.assertIn(head, text)
        rowlines = [l for l in text.splitlines()
                    if l.startswith(("  DENIED (", "  would be denied ("))]
        self.assertEqual(len(rowlines), len(rows), text)
        self.assertIn("runwarden exit status: 1 (policy violations)", text)
        # GitHub: the same headline and one table row per violation row
        self.assertIn(head, md.replace("\\", ""))
        self.assertIn("| runwarden exit status | 1 (policy violations) |", md)
        table = md.split("### Denied")[1].split("###")[0]
        self.assertEqual(len([l for l in table.splitlines() if l.startswith("| ")]) - 1,
                         len(rows), table)
        self.assertNotIn("No denials", md)
        # JUnit: one failing case per row that failed the run
        self.assertEqual(int(junit.get("failures")), len(failing))
        self.assertEqual(len(junit.findall(".//failure")), len(failing))
        # HTML: the page carries the very same rows and headline
        self.assertEqual(data["violations"], rows)
        self.assertEqual(data["headline"], head)
        return denied

    def test_enforce_every_kind_agrees(self):
        denied = self.check_agree(self.job("enforce"), "deny")
        self.assertTrue(denied)

    def test_observe_would_be_denials_agree(self):
        r = self.job("observe")
        self.check_agree(r, "audit")
