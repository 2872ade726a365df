"""`make demo`'s script (scripts/demo.sh) against the real binary: the evidence it shows
verifies, it can be run again after a demo that was cut short (runwarden refuses an existing
--out, so the script must clear its own previous one), and it never deletes a directory that
is not a demo's. Env: RW=<runwarden binary>."""
import os
import shutil
import subprocess
import tempfile
import unittest

RW = os.environ.get("RW", "runwarden")
DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                    "demo.sh")


class Demo(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rw-demo-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.out = os.path.join(self.tmp, "out")

    def demo(self):
        return subprocess.run([DEMO, RW], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "OUT": self.out})

    def test_runs_again_after_a_demo_cut_short(self):
        # What a demo killed after runwarden created its directory leaves behind.
        os.mkdir(self.out)
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            f.write("{")
        p = self.demo()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("valid:", p.stdout)
        self.assertTrue(os.path.getsize(os.path.join(self.out, "events.ndjson")) > 0)

    def test_leaves_a_foreign_directory_alone(self):
        os.mkdir(self.out)
        mine = os.path.join(self.out, "notes.txt")
        with open(mine, "w") as f:
            f.write("mine")
        p = self.demo()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("is not a previous demo's evidence", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertEqual(os.listdir(self.out), ["notes.txt"])


if __name__ == "__main__":
    unittest.main()
