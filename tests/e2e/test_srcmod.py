"""End-to-end: source_modified. Each test makes a real git checkout, runs a real job in it
under runwarden, and checks the finding names each changed tracked file and its writer (the
kernel's record of the open for writing), that build outputs (untracked) raise nothing, that
lockfiles a build rewrites are `low`, and that a checkout past the snapshot cap is counted.
No network."""
import json
import os
import subprocess
import unittest

from rwtest import RW, Run, RwTestCase

GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x.test",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@x.test")

FILES = {
    "src/main.c": '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n',
    "src/util.c": "int util(void){return 1;}\n",
    "README.md": "# demo\n",
    "Makefile": "all: hello\nhello: src/main.c src/util.c\n\t$(CC) -O2 -o $@ $^\n",
    ".gitignore": "hello\n*.o\n",
}


class SourceModifiedTest(RwTestCase):
    def checkout(self, files=FILES):
        d = os.path.join(self.tmp, "repo")
        os.makedirs(d)
        subprocess.run(["git", "init", "-q", d], check=True)
        for rel, text in files.items():
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
        subprocess.run(["git", "-C", d, "add", "-A"], check=True)
        subprocess.run(["git", "-C", d, "commit", "-qm", "c"], check=True, env=GIT_ENV)
        return d

    def run_in(self, d, script, *opts):
        r = self.rw(["sh", "-c", f"cd {d} && {script}"], "--workspace", d, *opts)
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertIsNotNone(r.summary, r.stderr)
        return r

    def source_findings(self, r):
        return [f for f in r.summary["findings"] if f["kind"] == "source_modified"]

    def by_path(self, f):
        return {x["path"]: x for x in f["files"]}

    def test_append_to_tracked_c_file_names_file_and_writer(self):
        d = self.checkout()
        r = self.run_in(d, "echo '/* planted */' >> src/main.c")
        (f,) = self.source_findings(r)
        self.assertEqual(f["severity"], "high")
        (x,) = f["files"]
        self.assertEqual((x["path"], x["change"]), ("src/main.c", "modified"))
        (w,) = x["writers"]
        self.assertTrue(w["exe"].endswith("sh"), w)
        # the writer's open is a logged line the evidence points at
        line = next(e for e in r.events if e["seq"] == w["seq"])
        self.assertEqual(line["kind"], "file")
        self.assertTrue(line["tracked_write"], line)
        self.assertEqual(line["path"], os.path.join(d, "src/main.c"))
        self.assertEqual(line["pid"], w["pid"])
        self.assertIn(w["seq"], f["evidence"])
        self.assertIn("src/main.c", f["description"])
        self.assertIn("source_modified", r.stderr)  # the terminal summary

    def test_delete_and_rename_over_tracked_files(self):
        d = self.checkout()
        r = self.run_in(d, "rm README.md && printf 'int util(void){return 0;}\\n' > /tmp/rw-u.$$ "
                           "&& mv /tmp/rw-u.$$ src/util.c")
        (f,) = self.source_findings(r)
        files = self.by_path(f)
        self.assertEqual(set(files), {"README.md", "src/util.c"})
        self.assertEqual(files["README.md"]["change"], "deleted")
        self.assertEqual(files["src/util.c"]["change"], "replaced")
        # neither writes to the tracked inode: the kernel's unlink and rename records name them
        for path, exe, op in (("README.md", "rm", "unlink"), ("src/util.c", "mv", "rename_to")):
            self.assertEqual(len(files[path]["writers"]), 1, (files[path], r.of("path_op")))
            (w,) = files[path]["writers"]
            self.assertEqual(os.path.basename(w["exe"]), exe, files[path])
            line = next(e for e in r.events if e["seq"] == w["seq"])
            self.assertEqual(line["kind"], "path_op")
            self.assertEqual(line["op"], op)
            self.assertEqual(line["path"], os.path.join(d, path))
            self.assertEqual(line["tracked"], path)
            self.assertIn(w["seq"], f["evidence"])

    def test_name_changes_by_every_call_and_path_form(self):
        """unlink, unlinkat from a directory descriptor (rm -r), rename and truncate by name
        (mv's renameat2 is the test above), relative names from a changed directory and with
        "..": each names its process. Same-named files outside the checkout log nothing."""
        files = dict(FILES, **{"lib/a.c": "int a;\n", "lib/b.c": "int b;\n",
                               "docs/x.md": "x\n", "docs/y.md": "y\n"})
        d = self.checkout(files)
        other = os.path.join(self.tmp, "elsewhere")
        os.makedirs(os.path.join(other, "src"))
        for rel in ("README.md", "src/util.c"):
            with open(os.path.join(other, rel), "w") as fh:
                fh.write("not tracked\n")
        script = (
            "import os, sys\n"
            "d, other = sys.argv[1], sys.argv[2]\n"
            "os.chdir(os.path.join(d, 'src'))\n"
            "os.truncate('../src/util.c', 0)\n"           # truncate(2), relative, with ..
            "os.remove(os.path.join(other, 'README.md'))\n"  # same name, not tracked
            "os.remove(os.path.join(other, 'src/util.c'))\n"
            "os.chdir(d)\n"
            "os.rename('docs/x.md', 'docs/z.md')\n"        # rename(2): the tracked name moves away
            "fd = os.open('docs', os.O_RDONLY | os.O_DIRECTORY)\n"
            "os.unlink('y.md', dir_fd=fd)\n"               # unlinkat(fd, ...)
        )
        r = self.rw(["sh", "-c", "python3 -c \"$1\" \"$2\" \"$3\" && cd \"$2\" && rm -r lib",
                     "sh", script, d, other], "--workspace", d)
        self.assertEqual(r.rc, 0, r.stderr)
        (f,) = self.source_findings(r)
        files = self.by_path(f)
        self.assertEqual(set(files), {"src/util.c", "docs/x.md", "docs/y.md", "lib/a.c", "lib/b.c"})
        ops = {e["tracked"]: e for e in r.of("path_op")}
        self.assertEqual(set(ops), set(files), (r.of("path_op"), r.close))
        self.assertEqual(ops["src/util.c"]["op"], "truncate")
        self.assertEqual(ops["docs/x.md"]["op"], "rename_from")
        self.assertEqual(ops["docs/y.md"]["op"], "unlink")
        self.assertEqual(ops["lib/a.c"]["op"], "unlink")
        for path in ("src/util.c", "docs/x.md", "docs/y.md"):
            self.assertTrue(os.path.basename(files[path]["writers"][0]["exe"]).startswith("python3"))
        for path in ("lib/a.c", "lib/b.c"):
            self.assertEqual(os.path.basename(files[path]["writers"][0]["exe"]), "rm")
        # the untracked namesakes were removed by the same process and left no line
        self.assertFalse([e for e in r.of("path_op") if e["path"].startswith(other)])

    def test_an_inode_reused_after_an_unlink_is_not_the_tracked_file(self):
        """The kernel knows tracked files by (device, inode). README.md is unlinked and its
        inode handed out again to a new, untracked file, which is then written: that
        write is no write to README.md (it was: the shell named as README.md's writer)."""
        d = self.checkout()
        other = d  # the same directory: where the file system hands a freed inode out again
        script = (
            "import os, sys\n"
            "ino = os.stat('README.md').st_ino\n"
            "os.remove('README.md')\n"
            "for i in range(4000):\n"
            "    f = os.path.join(sys.argv[1], f'x{i}')\n"
            "    open(f, 'w').close()\n"
            "    if os.stat(f).st_ino == ino:\n"
            "        open(f, 'w').write('reused\\n')\n"
            "        print('reused')\n"
            "        break\n")
        with open(os.path.join(self.tmp, "s.py"), "w") as fh:
            fh.write(script)
        r = self.run_in(d, f"python3 {os.path.join(self.tmp, 's.py')} {other}")
        if "reused" not in r.stdout:
            self.skipTest("the file system did not hand the inode out again")
        (f,) = self.source_findings(r)
        (x,) = f["files"]
        self.assertEqual((x["path"], x["change"]), ("README.md", "deleted"))
        self.assertEqual([os.path.basename(w["exe"]).startswith("python3") for w in x["writers"]],
                         [True], x)
        line = next(e for e in r.events if e["seq"] == x["writers"][0]["seq"])
        self.assertEqual(line["kind"], "path_op")  # the unlink, not the reused inode's write
        self.assertFalse([e for e in r.of("file") if e.get("tracked_write")], r.of("file"))

    def test_truncation_by_another_program_is_its_writer(self):
        d = self.checkout()
        r = self.run_in(d, "python3 -c \"open('src/util.c','w').write('int util(void){return 2;}\\n')\"")
        (f,) = self.source_findings(r)
        (x,) = f["files"]
        self.assertEqual(x["change"], "modified")
        self.assertTrue(os.path.basename(x["writers"][0]["exe"]).startswith("python3"), x)

    def test_make_build_with_untracked_outputs_raises_none(self):
        d = self.checkout()
        # touch: the stat changes, the content does not: no finding either
        r = self.run_in(d, "make -j2 && ./hello && touch src/main.c && "
                           "cp README.md README.md.bak && cat src/util.c > /dev/null")
        self.assertTrue(os.path.exists(os.path.join(d, "hello")))
        self.assertEqual(self.source_findings(r), [])
        snap = r.summary["source_snapshot"]
        self.assertEqual(snap["files"], len(FILES))
        self.assertEqual(snap["workdir"], d + "/")

    def test_rewriting_with_the_same_content_raises_none(self):
        d = self.checkout()
        r = self.run_in(d, "cp src/main.c /tmp/rw-m.$$ && cat /tmp/rw-m.$$ > src/main.c && "
                           "rm /tmp/rw-m.$$")
        self.assertEqual(self.source_findings(r), [])
        # the open for writing is still on the record
        self.assertTrue(any(e.get("tracked_write") for e in r.events))

    def test_lockfile_rewrite_is_low(self):
        lock = {"name": "demo", "lockfileVersion": 2, "requires": True, "packages": {}}
        d = self.checkout(dict(FILES, **{
            "package.json": '{"name":"demo","version":"1.0.0"}\n',
            "package-lock.json": json.dumps(lock) + "\n"}))
        # what npm does to the lockfile: rewritten in place, re-indented, one key more
        script = ("python3 -c \"import json; p='package-lock.json'; l=json.load(open(p)); "
                  "l['lockfileVersion']=3; open(p,'w').write(json.dumps(l, indent=2)+'\\n')\"")
        r = self.run_in(d, script)
        (f,) = self.source_findings(r)
        self.assertEqual(f["severity"], "low")
        self.assertEqual([x["path"] for x in f["files"]], ["package-lock.json"])
        # a source file changed in the same job is a finding of its own, high
        subprocess.run(["git", "-C", d, "checkout", "-q", "--", "."], check=True)
        r = self.rw(["sh", "-c", f"cd {d} && {script} && echo x >> src/util.c"],
                    "--workspace", d, out=os.path.join(self.tmp, "out2"))
        sev = {f["severity"]: [x["path"] for x in f["files"]] for f in self.source_findings(r)}
        self.assertEqual(sev, {"high": ["src/util.c"], "low": ["package-lock.json"]})

    def test_workspace_from_the_ci_environment(self):
        d = self.checkout()
        env = dict(os.environ, GITHUB_ACTIONS="true", GITHUB_WORKSPACE=d)
        r = self.rw(["sh", "-c", f"echo x >> {d}/README.md"], env=env)
        (f,) = self.source_findings(r)
        self.assertEqual(f["files"][0]["path"], "README.md")

    def test_outside_ci_only_with_workspace(self):
        # A shell or a benchmark in a checkout: no snapshot unless asked (it costs every run).
        d = self.checkout()
        env = {k: v for k, v in os.environ.items()
               if k not in ("GITHUB_ACTIONS", "GITLAB_CI", "CI", "GITHUB_WORKSPACE")}
        p = subprocess.run([RW, "run", "--out", os.path.join(self.tmp, "o-plain"), "--no-sign",
                            "--", "sh", "-c", "echo x >> README.md"], cwd=d, env=env,
                           capture_output=True, text=True, timeout=120)
        r = Run(p.returncode, p.stderr, os.path.join(self.tmp, "o-plain"))
        self.assertIsNone(r.summary["source_snapshot"])

    def test_checkout_past_the_cap_is_counted(self):
        d = os.path.join(self.tmp, "big")
        n = 65536 + 300
        os.makedirs(os.path.join(d, "a"))
        for i in range(n):
            with open(os.path.join(d, "a", f"f{i:05d}"), "w") as f:
                f.write(f"{i}\n")
        subprocess.run(["git", "init", "-q", d], check=True)
        subprocess.run(["git", "-C", d, "add", "-A"], check=True)
        # within the cap (index order): still compared, with its writer
        r = self.run_in(d, "echo x >> a/f00007")
        snap = r.summary["source_snapshot"]
        self.assertEqual((snap["files"], snap["files_skipped"]), (65536, 300))
        self.assertEqual(snap["kernel_untracked"], 0)
        self.assertIn("300 tracked files past the cap are not compared", r.stderr)
        (f,) = self.source_findings(r)
        self.assertEqual(f["files"][0]["path"], "a/f00007")
        self.assertTrue(f["files"][0]["writers"])

    def test_no_checkout_no_snapshot(self):
        d = os.path.join(self.tmp, "plain")
        os.makedirs(d)
        r = self.run_in(d, "echo x > y")
        self.assertIsNone(r.summary["source_snapshot"])
        self.assertEqual(self.source_findings(r), [])


if __name__ == "__main__":
    unittest.main()
