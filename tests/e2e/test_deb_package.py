"""The Debian package: built with `dpkg-buildpackage -us -uc -b` from a copy of
the tree (so the shared checkout's build/ and debian/ stay untouched),
inspected, unpacked, and its runwarden run against a recorded run directory.
Set RW_DEB_INSTALL=1 to also `dpkg -i` it on this machine (root)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_report_fixtures as F  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def have(*cmds):
    return all(shutil.which(c) for c in cmds)


@unittest.skipUnless(have("dpkg-buildpackage", "dh", "clang", "bpftool"),
                     "dpkg-dev, debhelper, clang or bpftool missing (scripts/deps.sh test)")
class DebPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rw-deb-")
        src = os.path.join(cls.tmp, "runwarden-0.1.0")
        ignore = shutil.ignore_patterns("build*", ".git", "node_modules", "__pycache__",
                                        "runwarden-out")
        shutil.copytree(ROOT, src, ignore=ignore)
        for junk in ("debian/runwarden", "debian/.debhelper", "debian/files"):
            shutil.rmtree(os.path.join(src, junk), ignore_errors=True)
        cls.res = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src,
                                 capture_output=True, text=True, timeout=1200)
        debs = [f for f in os.listdir(cls.tmp) if f.endswith(".deb")]
        cls.deb = os.path.join(cls.tmp, debs[0]) if debs else None

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_built(self):
        self.assertEqual(self.res.returncode, 0, self.res.stdout[-3000:] + self.res.stderr[-3000:])
        self.assertIsNotNone(self.deb)

    def test_contents(self):
        self.assertIsNotNone(self.deb, self.res.stderr[-3000:])
        info = subprocess.run(["dpkg-deb", "-I", self.deb], capture_output=True, text=True).stdout
        self.assertIn("Package: runwarden", info)
        depends = next(l for l in info.splitlines() if l.strip().startswith("Depends:"))
        self.assertIn("libcurl4", depends)  # shlibs found the shared libraries
        self.assertIn("libssl3", depends)
        # linked in (Makefile LDLIBS_SHIP), so the package does not pull them
        for lib in ("libjansson", "libgit2", "libbpf", "libyaml", "libsqlite3"):
            self.assertNotIn(lib, depends)
        files = subprocess.run(["dpkg-deb", "-c", self.deb], capture_output=True,
                               text=True).stdout
        for want in ("./usr/bin/runwarden", "./usr/share/man/man1/runwarden.1.gz",
                     "./usr/share/runwarden/blocklist.txt",
                     "./usr/lib/systemd/system/runwarden-agent.service",
                     "./usr/share/doc/runwarden/ci.md",
                     "./usr/share/runwarden/integrations/github-runner-hooks/job-started.sh"):
            self.assertIn(want, files)

    def test_unpacked_binary_reports(self):
        self.assertIsNotNone(self.deb, self.res.stderr[-3000:])
        root = os.path.join(self.tmp, "root")
        subprocess.run(["dpkg-deb", "-x", self.deb, root], check=True)
        rw = os.path.join(root, "usr/bin/runwarden")
        run = F.write_run(os.path.join(self.tmp, "run"))
        res = subprocess.run([rw, "report", run, "--junit", os.path.join(self.tmp, "j.xml")],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("3 policy violations (2 denied, 1 would have been).", res.stdout)
        man = subprocess.run(["man", "--warnings", "-l",
                              os.path.join(root, "usr/share/man/man1/runwarden.1.gz")],
                             capture_output=True, text=True, env=dict(os.environ, MANWIDTH="80"))
        self.assertEqual(man.returncode, 0)
        self.assertEqual(man.stderr, "")
        self.assertIn("--github-summary file", man.stdout)

    @unittest.skipUnless(os.environ.get("RW_DEB_INSTALL") == "1" and os.geteuid() == 0,
                         "RW_DEB_INSTALL=1 as root installs the package on this machine")
    def test_install(self):
        res = subprocess.run(["dpkg", "-i", self.deb], capture_output=True, text=True)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.addCleanup(subprocess.run, ["dpkg", "-r", "runwarden"], capture_output=True)
        self.assertTrue(os.path.exists("/usr/share/man/man1/runwarden.1.gz") or
                        os.path.exists("/usr/share/man/man1/runwarden.1"))
        # The installed binary does a real run: BPF object embedded, nothing else needed.
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run(["/usr/bin/runwarden", "run", "--quiet", "--no-sign", "--out", os.path.join(d, "out"),
                                  "--", "/bin/true"], capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            with open(os.path.join(d, "out", "summary.json")) as f:
                self.assertEqual(json.load(f)["counts"]["exec"], 1)


if __name__ == "__main__":
    unittest.main()
