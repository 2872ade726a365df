"""Command-line conventions, for every command of the real binary: -h/--help,
one style of usage error (exit 2), odd option values refused, policy files that
are not regular files refused at once, a key error said once, and a man page
that covers every command and exit status. Env: RW=<runwarden binary>."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

RW = os.environ.get("RW", "runwarden")
MAN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                   "runwarden.1")

# command words, and the name its messages and help carry
COMMANDS = [(["run"], "run"), (["report"], "report"), (["keygen"], "keygen"),
            (["verify"], "verify"), (["agent"], "agent"), (["job", "start"], "job start"),
            (["job", "stop"], "job stop"), (["job", "status"], "job status"),
            (["policy", "check"], "policy check"), (["learn"], "learn"),
            (["baseline", "add"], "baseline add"), (["baseline", "show"], "baseline show"),
            (["baseline", "prune"], "baseline prune"), (["baseline", "export"], "baseline export"),
            (["version"], "version")]


def rw(*args, cwd=None, timeout=20):
    return subprocess.run([RW, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


class Cli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rw-cli-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def usage_error(self, p, cmd):
        """Exit 2 and exactly one line in the shared style."""
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        top = cmd.split()[0]
        self.assertRegex(lines[0], rf"^runwarden {re.escape(cmd)}: .+ \(see 'runwarden "
                                   rf"{top} --help'\)$")
        return lines[0]

    def test_help_everywhere(self):
        for words, _ in COMMANDS + [(["job"], "job"), (["policy"], "policy"),
                                    (["baseline"], "baseline")]:
            for flag in ("-h", "--help"):
                with self.subTest(cmd=words, flag=flag):
                    p = rw(*words, flag)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertTrue(p.stdout.startswith("usage: runwarden"), p.stdout)
                    self.assertEqual(p.stderr, "")

    def test_unknown_option_one_style(self):
        for words, name in COMMANDS:
            with self.subTest(cmd=words):
                line = self.usage_error(rw(*words, "--bogus"), name)
                self.assertIn("option '--bogus' is unknown", line)
            with self.subTest(cmd=words, short=True):
                line = self.usage_error(rw(*words, "-Z"), name)
                self.assertIn("option '-Z' is unknown", line)

    def test_missing_value(self):
        for words, name, opt in ((["run"], "run", "--out"), (["report"], "report", "--html"),
                                 (["learn"], "learn", "--out"),
                                 (["verify"], "verify", "--key"),
                                 (["job", "start"], "job start", "--policy")):
            with self.subTest(cmd=words):
                line = self.usage_error(rw(*words, opt), name)
                self.assertIn(f"option '{opt}' needs a value", line)

    def test_run_out_dashdash_refused(self):
        # `--out -- true` used to make a directory named "--"
        p = rw("run", "--out", "--", "true", cwd=self.tmp)
        line = self.usage_error(p, "run")
        self.assertIn("--out: value '--' looks like an option", line)
        self.assertEqual(os.listdir(self.tmp), [])
        line = self.usage_error(rw("run", "--out", "", "--", "true", cwd=self.tmp), "run")
        self.assertIn("--out: empty value", line)
        line = self.usage_error(rw("learn", "--out", "--wildcard-min", "3", self.tmp), "learn")
        self.assertIn("looks like an option", line)
        line = self.usage_error(rw("report", self.tmp, "--junit", "-"), "report")
        self.assertIn("looks like an option", line)

    def test_stray_arguments(self):
        self.usage_error(rw("keygen", "--out", os.path.join(self.tmp, "k"), "extra"), "keygen")
        self.usage_error(rw("version", "extra"), "version")
        self.usage_error(rw("job", "status", "extra"), "job status")
        self.usage_error(rw("job", "frob"), "job")
        self.usage_error(rw("policy", "frob"), "policy")
        self.usage_error(rw("report"), "report")
        self.usage_error(rw("learn"), "learn")
        self.usage_error(rw("baseline"), "baseline")
        self.usage_error(rw("baseline", "frob"), "baseline")
        self.usage_error(rw("baseline", "show", "extra"), "baseline show")
        self.usage_error(rw("baseline", "prune"), "baseline prune")
        self.usage_error(rw("learn", "--repo", "r", "x"), "learn")
        self.usage_error(rw("policy", "check"), "policy check")

    def test_policy_not_a_regular_file(self):
        fifo = os.path.join(self.tmp, "policy.fifo")
        os.mkfifo(fifo)
        d = os.path.join(self.tmp, "policy.d")
        os.mkdir(d)
        for path, what in ((fifo, "a FIFO"), (d, "a directory"), ("/dev/null",
                                                                     "a character device")):
            for args in (["policy", "check", path], ["policy", "blocklist", path]):
                with self.subTest(args=args):
                    p = rw(*args, timeout=10)  # a FIFO used to hang here
                    self.assertEqual(p.returncode, 1, p.stderr)
                    self.assertEqual(p.stderr.strip(),
                                     f"runwarden: {path}: not a regular file ({what})")
        if os.geteuid() == 0:
            p = rw("run", "--out", os.path.join(self.tmp, "out"), "--no-sign", "--policy", fifo,
                   "--mode", "enforce", "--", "true", timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(f"{fifo}: not a regular file (a FIFO)", p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_report_refuses_planted_fifos(self):
        # A FIFO planted in a run directory in place of the log or the summary
        # used to make `runwarden report` wait for a writer forever.
        for name in ("events.ndjson", "summary.json"):
            with self.subTest(planted=name):
                d = os.path.join(self.tmp, f"run-{name}")
                os.mkdir(d)
                other = "summary.json" if name == "events.ndjson" else "events.ndjson"
                with open(os.path.join(d, other), "w") as f:
                    f.write("{}\n" if other == "summary.json" else "")
                os.mkfifo(os.path.join(d, name))
                p = rw("report", d, timeout=10)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertEqual(p.stderr.strip(),
                                 f"runwarden: report: {d}/{name}: not a regular file (a FIFO)")

    def test_learn_and_policy_check_refuse_planted_fifos(self):
        # A FIFO planted as a run's events.ndjson used to make `learn` and `policy check`
        # wait for a writer forever (they opened the log with fopen).
        d = os.path.join(self.tmp, "run")
        os.mkdir(d)
        os.mkfifo(os.path.join(d, "events.ndjson"))
        pol = os.path.join(self.tmp, "policy.yaml")
        with open(pol, "w") as f:
            f.write("version: 1\n")
        for args in (["learn", d], ["policy", "check", pol, d]):
            with self.subTest(args=args):
                p = rw(*args, timeout=10)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertEqual(p.stderr.strip(),
                                 f"runwarden: {d}/events.ndjson: not a regular file (a FIFO)")

    def test_learn_and_policy_check_read_past_nul_bytes(self):
        # A NUL byte inside a log line made the fgets readers drop the rest of that line,
        # its newline included, and glue the next line on: line numbers went wrong and the
        # next event was lost. A line is a line, whatever bytes it holds.
        d = os.path.join(self.tmp, "run")
        os.mkdir(d)
        with open(os.path.join(d, "events.ndjson"), "wb") as f:
            f.write(b'{"seq":1,"kind":"x\x00"}\n'
                    b'{"seq":2,"kind":"connect","proto":"tcp","family":"inet",'
                    b'"daddr":"127.0.0.9","dport":443,"verdict":"audit"}\n'
                    b'{"seq":3,"kind":"close"}\n')
        pol = os.path.join(self.tmp, "policy.yaml")
        with open(pol, "w") as f:
            f.write("version: 1\n")
        p = rw("policy", "check", pol, d)
        self.assertIn("127.0.0.9", p.stdout, p.stdout + p.stderr)
        p = rw("learn", d)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertEqual(p.stderr.strip().splitlines()[-1][:len(f"runwarden: {d}/events.ndjson:1:")],
                         f"runwarden: {d}/events.ndjson:1:", p.stderr)

    def test_unknown_command_is_one_line(self):
        # The name is quoted back: a newline in it used to split the message in two.
        p = rw("frob\nrunwarden: all clear")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr, "runwarden: unknown command 'frob runwarden: all clear' "
                         "(try 'runwarden --help')\n")

    def test_verify_key_error_said_once(self):
        att = os.path.join(self.tmp, "att.json")
        with open(att, "w") as f:
            f.write("{}")
        p = rw("verify", "--key", os.path.join(self.tmp, "nonesuch.pem"), att)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, "")
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertEqual(p.stderr.count("nonesuch.pem"), 1, p.stderr)

    def test_man_page_covers_every_command(self):
        with open(MAN) as f:
            src = f.read()
        out = subprocess.run(["man", "-l", "-P", "cat", MAN], capture_output=True, text=True,
                             env={**os.environ, "MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
        self.assertEqual(out.returncode, 0, out.stderr)
        text = re.sub(r".\x08", "", out.stdout)
        commands = re.search(r"\nCOMMANDS\n(.*?)\n[A-Z][A-Z ]+\n", text, re.S).group(1)
        for cmd in ("keygen", "verify", "policy check", "policy blocklist", "learn", "report",
                    "run", "agent", "job start", "job stop", "job status", "version",
                    "baseline"):
            with self.subTest(cmd=cmd):
                self.assertRegex(commands, rf"(?m)^ {{7}}{re.escape(cmd)}\b")
        status = re.search(r"\nEXIT STATUS\n(.*?)\n[A-Z][A-Z ]+\n", text, re.S).group(1)
        for cmd in ("run", "report", "keygen", "verify", "policy check", "learn", "job start",
                    "job stop", "agent", "baseline"):
            with self.subTest(status=cmd):
                self.assertRegex(status, rf"(?m)^ {{7}}{re.escape(cmd)}\b")
        self.assertIn("usage error", status)
        self.assertNotIn("\\f", src.replace("\\fB", "").replace("\\fR", "").replace(
            "\\fI", "").replace("\\fP", ""))


if __name__ == "__main__":
    unittest.main()
