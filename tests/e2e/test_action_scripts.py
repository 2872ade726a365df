"""The GitHub Action's pre/main/post scripts against a simulated runner layout
(GITHUB_* files and variables in a temp dir, state handed from pre to post the
way the runner does), with a stand-in `runwarden` on PATH that records its
arguments: this tests the action's glue, not runwarden."""
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE = shutil.which("node")

FAKE = r"""#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
args = sys.argv[1:]
if args[:2] == ["job", "start"]:
    os.makedirs(args[args.index("--out") + 1], exist_ok=True)
    sys.exit(int(os.environ.get("FAKE_START_RC", "0")))
if args[:2] == ["job", "stop"]:
    sys.exit(int(os.environ.get("FAKE_STOP_RC", "0")))
if args[:1] == ["report"] and "--github-summary" in args:
    with open(args[args.index("--github-summary") + 1], "a") as f:
        f.write("## runwarden\n")
    print("::error title=runwarden%3A denied::connection to x")
"""

KEY = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n-----END PRIVATE KEY-----\n"


def parse_state(path):
    """Reads NAME<<DELIM ... DELIM blocks the way the runner does."""
    with open(path) as f:
        lines = f.read().split("\n")
    state, i = {}, 0
    while i < len(lines):
        m = re.match(r"^([A-Za-z_]+)<<(ghadelimiter_[0-9a-f-]+)$", lines[i])
        if m:
            j = lines.index(m.group(2), i + 1)
            state[m.group(1)] = "\n".join(lines[i + 1:j])
            i = j + 1
        else:
            i += 1
    return state


@unittest.skipUnless(NODE, "node not installed")
class ActionScripts(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rw-action-")
        t = self.tmp
        self.bin = os.path.join(t, "bin")
        os.makedirs(self.bin)
        fake = os.path.join(self.bin, "runwarden")
        with open(fake, "w") as f:
            f.write(FAKE)
        os.chmod(fake, 0o755)
        for d in ("temp", "workspace", "files"):
            os.makedirs(os.path.join(t, d))
        self.files = {n: os.path.join(t, "files", n) for n in
                      ("state", "summary", "env", "output", "path")}
        for p in self.files.values():
            open(p, "w").close()
        self.log = os.path.join(t, "calls.jsonl")
        self.env = {
            "PATH": self.bin + ":/usr/bin:/bin",
            "HOME": t,
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "octo/repo",
            "GITHUB_RUN_ID": "42",
            "GITHUB_JOB": "build",
            "GITHUB_ACTION": "__runwarden",
            "GITHUB_WORKSPACE": os.path.join(t, "workspace"),
            "GITHUB_ACTION_PATH": ROOT,
            "RUNNER_TEMP": os.path.join(t, "temp"),
            "RUNNER_OS": "Linux",
            "GITHUB_STATE": self.files["state"],
            "GITHUB_STEP_SUMMARY": self.files["summary"],
            "GITHUB_ENV": self.files["env"],
            "GITHUB_OUTPUT": self.files["output"],
            "GITHUB_PATH": self.files["path"],
            "FAKE_LOG": self.log,
        }

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def node(self, script, inputs=None, state=None, extra=None):
        env = dict(self.env)
        for k, v in (inputs or {}).items():
            env["INPUT_" + k.upper()] = v
        for k, v in (state or {}).items():
            env["STATE_" + k] = v
        env.update(extra or {})
        return subprocess.run([NODE, os.path.join(ROOT, "action", script)], env=env,
                              capture_output=True, text=True, timeout=60)

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(l) for l in f]

    def test_action_yml(self):
        with open(os.path.join(ROOT, "action.yml")) as f:
            y = f.read()
        self.assertIn("using: node20", y)
        for k in ("pre: action/pre.js", "main: action/main.js", "post: action/post.js"):
            self.assertIn(k, y)
        for i in ("policy:", "mode:", "allowed-endpoints:", "signing-key:", "step:"):
            self.assertIn("\n  " + i, y)

    def test_full_job(self):
        r = self.node("pre.js", {"mode": "enforce",
                                 "allowed-endpoints": "github.com:443\n*.npmjs.org:443  ghcr.io",
                                 "signing-key": KEY, "step": "setup"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        start = self.calls()[0]
        self.assertEqual(start[:2], ["job", "start"])
        out = start[start.index("--out") + 1]
        self.assertEqual(out, os.path.join(self.tmp, "temp", "runwarden-out"))
        self.assertEqual(start[start.index("--mode") + 1], "enforce")
        self.assertEqual(start[start.index("--step") + 1], "setup")
        # the runner worker (pre.js's parent) goes under watch, not the short-lived node process
        self.assertEqual(start[start.index("--pid") + 1], str(os.getpid()))
        policy = start[start.index("--policy") + 1]
        with open(policy) as f:
            pol = f.read()
        self.assertIn('version: 1\nmode: enforce\nallow:\n  - host: "github.com"\n    ports: [443]\n', pol)
        self.assertIn('  - host: "*.npmjs.org"\n', pol)
        self.assertIn('  - host: "ghcr.io"\n', pol)
        # the key is in a private file, never on the command line, and masked in the log
        key_file = start[start.index("--key") + 1]
        self.assertEqual(stat.S_IMODE(os.stat(key_file).st_mode), 0o600)
        with open(key_file) as f:
            self.assertEqual(f.read(), KEY)
        self.assertFalse(any("MC4CAQ" in a for a in start))
        self.assertIn("::add-mask::MC4CAQ", r.stdout)

        state = parse_state(self.files["state"])
        self.assertEqual(state["armed"], "true")
        self.assertEqual(state["out"], out)

        r = self.node("main.js", state=state)
        self.assertEqual(r.returncode, 0)
        self.assertIn("watching", r.stdout)

        r = self.node("post.js", state=state)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        calls = self.calls()
        self.assertEqual(calls[1], ["job", "stop"])
        self.assertEqual(calls[2], ["report", out, "--github-summary", self.files["summary"]])
        with open(self.files["summary"]) as f:
            self.assertIn("## runwarden", f.read())
        self.assertIn("::error title=runwarden%3A denied::", r.stdout)
        self.assertFalse(os.path.exists(key_file))

    def test_violation_fails_the_job_but_still_reports(self):
        r = self.node("pre.js", {"mode": "enforce", "allowed-endpoints": "example.com"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        state = parse_state(self.files["state"])
        r = self.node("post.js", state=state, extra={"FAKE_STOP_RC": "3"})
        self.assertEqual(r.returncode, 3)
        self.assertEqual(self.calls()[-1][0], "report")
        self.assertIn("::error::runwarden job stop exited 3", r.stdout)

    def test_policy_file(self):
        with open(os.path.join(self.tmp, "workspace", "rw.yml"), "w") as f:
            f.write("version: 1\n")
        r = self.node("pre.js", {"policy": "rw.yml"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        start = self.calls()[0]
        self.assertEqual(start[start.index("--policy") + 1],
                         os.path.join(self.tmp, "workspace", "rw.yml"))
        self.assertEqual(start[start.index("--mode") + 1], "observe")
        self.assertNotIn("--key", start)

    def test_bad_inputs(self):
        for inputs, msg in (
                ({"mode": "yolo"}, "mode: 'yolo'"),
                ({"policy": "missing.yml"}, "does not exist"),
                ({"policy": "a.yml", "allowed-endpoints": "x.com"}, "either policy"),
                ({"allowed-endpoints": 'x.com"\nallow: [evil]'}, "is not host or host:port"),
                ({"allowed-endpoints": "x.com:99999"}, "is not host or host:port"),
                ({"allowed-endpoints": "x.com:443:1"}, "is not host or host:port")):
            r = self.node("pre.js", inputs)
            self.assertEqual(r.returncode, 1, inputs)
            self.assertIn("::error::", r.stdout)
            self.assertIn(msg, r.stdout)
            self.assertEqual(self.calls(), [], inputs)

    def test_start_failure(self):
        r = self.node("pre.js", {}, extra={"FAKE_START_RC": "1"})
        self.assertEqual(r.returncode, 1)
        state = parse_state(self.files["state"])
        self.assertEqual(state["armed"], "false")
        r = self.node("post.js", state=state)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(len(self.calls()), 1)  # post does not stop what never started

    def test_error_message_escaping(self):
        r = self.node("pre.js", {"mode": "a%b\r\n::error::x"})
        self.assertIn("::error::mode: 'a%25b%0D%0A::error::x'", r.stdout)


if __name__ == "__main__":
    unittest.main()
