"""Attacks on the evidence by the job it records (issue 9, evidence integrity).

Every test is a real `runwarden run` (or whole-job agent) around a real job
that runs unprivileged (--user nobody) unless it says otherwise, against the
real kernel. The evidence directory sits in a parent the job can write, as in
every documented deployment ($RUNNER_TEMP, the workspace). Loopback only: no
test here opens a network connection.
"""
import json
import os
import pwd
import stat
import subprocess
import time

import test_agent as ta
from evidence_util import keygen, verify
from rwtest import RW, Run, RwTestCase, cgroup2_mount

NOBODY = pwd.getpwnam("nobody")
PY = "/usr/bin/python3"  # one the job's user can run (not a per-user install)
ORIGINAL = b"root-owned file: must never change\n"

# The FIFO swap: rename runwarden's directory, put a directory of the job's own
# at its name with a hand-made clean log, and serve summary.json from a FIFO (a
# helper left behind absorbs what runwarden writes there, then feeds it a forged
# summary when runwarden reads it back to sign).
FORGER = r"""
import hashlib, json, os, signal, sys
parent = sys.argv[1]
out = os.path.join(parent, "out")
os.rename(out, os.path.join(parent, "old"))
os.mkdir(out)
prev, lines = "0" * 64, []
def add(body):
    global prev
    line = json.dumps(dict(seq=len(lines) + 1, prev=prev, **body), separators=(",", ":")) + "\n"
    lines.append(line)
    prev = hashlib.sha256(line.encode()).hexdigest()
add({"ts": "2026-11-30T09:00:00Z", "kind": "exec", "pid": 1000, "exe": "/usr/bin/true",
     "argv": ["true"], "comm": "true"})
add({"kind": "close", "count": 1, "root": prev, "events_lost": {"total": 0},
     "complete": True, "missing_hooks": []})
with open(os.path.join(out, "events.ndjson"), "w") as f:
    f.write("".join(lines))
fifo = os.path.join(out, "summary.json")
os.mkfifo(fifo)
forged = json.dumps({"runwarden_version": "0.1.0", "command": ["true"], "mode": "observe",
                     "started_at": "2026-11-30T09:00:00Z", "finished_at": "2026-11-30T09:00:01Z",
                     "complete": True, "events_lost": {"total": 0}, "denials": 0,
                     "destinations": [], "dns_names": [], "files": [], "counts": {"exec": 1},
                     "log": {"path": "events.ndjson", "lines": 2, "root": prev}})
if os.fork() == 0:
    signal.alarm(10)  # never outlive the test
    with open(fifo, "rb") as f:
        f.read()
    with open(fifo, "w") as f:
        f.write(forged)
    os._exit(0)
"""


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY.pw_gid)
    os.setuid(NOBODY.pw_uid)


class EvidenceAttackTest(RwTestCase):
    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)  # the job (nobody) must reach the parent
        self.parent = os.path.join(self.tmp, "p")
        os.mkdir(self.parent)
        os.chmod(self.parent, 0o777)  # like $RUNNER_TEMP: the job can write here
        self.out = os.path.join(self.parent, "out")
        self.target = os.path.join(self.tmp, "root-target")
        with open(self.target, "wb") as f:
            f.write(ORIGINAL)
        self.key, self.pub = keygen(os.path.join(self.tmp, "signing"))

    def tearDown(self):
        self.reap_scopes()
        super().tearDown()

    def reap_scopes(self):
        """What a test leaves running on purpose (leftovers, a killed runwarden)."""
        mnt = cgroup2_mount()
        for d in set(os.listdir(mnt)) - self.cg_before:
            if not d.startswith("runwarden-"):
                continue
            try:
                with open(os.path.join(mnt, d, "cgroup.kill"), "w") as f:
                    f.write("1")
            except OSError:
                pass
            for _ in range(200):
                try:
                    os.rmdir(os.path.join(mnt, d))
                    break
                except OSError:
                    time.sleep(0.05)

    def run_rw(self, cmd, *opts, timeout=60):
        p = subprocess.run([RW, "run", "--out", self.out, "--quiet", *opts, "--", *cmd],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def script(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def assert_target_untouched(self):
        with open(self.target, "rb") as f:
            self.assertEqual(f.read(), ORIGINAL, "runwarden wrote through the job's symlink")
        st = os.stat(self.target)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o644))

    def assert_one_line(self, err, needle):
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn(needle, lines[0])

    # ------------------------------------------------------------ the directory

    def test_rename_and_symlink_summary_and_log(self):
        # Mid-run, the job moves runwarden's directory aside and puts its own
        # there with symlinks to a root-owned file at every evidence name.
        names = ["summary.json", "events.ndjson", "attestation.dsse.json",
                 "attestation.sigstore.json", "policy.learned.yaml"]
        links = " && ".join(f"ln -s {self.target} {self.out}/{n}" for n in names)
        rc, err = self.run_rw(["sh", "-c", f"mv {self.out} {self.parent}/old && "
                               f"mkdir {self.out} && {links}"],
                              "--user", "nobody", "--key", self.key, "--mode", "learn",
                              "--grace", "1")
        self.assert_target_untouched()
        self.assertNotEqual(rc, 0, err)
        self.assertIn("no longer names the evidence directory", err)
        old = os.path.join(self.parent, "old")
        self.assertIn(old, err)
        # The evidence is whole in runwarden's own directory, signed, and says
        # where it ended up.
        code, rep = verify(self.pub, os.path.join(old, "attestation.dsse.json"))
        self.assertEqual(code, 0, rep)
        run = Run(0, "", old)
        self.assertEqual(run.close["out_dir_moved_to"], old)
        self.assertEqual(run.summary["out_dir_moved_to"], old)
        self.assertTrue(run.of("exec", exe="/usr/bin/mv"))
        self.assertTrue(os.path.exists(os.path.join(old, "policy.learned.yaml")))
        # Root's, readable by all, writable by none but root, once the job is over.
        st = os.stat(old)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o755))
        for name in os.listdir(old):
            st = os.lstat(os.path.join(old, name))
            self.assertTrue(stat.S_ISREG(st.st_mode), name)
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o644), name)

    def test_planted_log_symlink_in_existing_dir_refused(self):
        # An earlier step (the job's user) prepared --out with a symlink at
        # events.ndjson: runwarden must neither truncate nor write the target.
        subprocess.run(["sh", "-c", f"mkdir {self.out} && ln -s {self.target} "
                        f"{self.out}/events.ndjson"], preexec_fn=as_nobody, check=True)
        rc, err = self.run_rw(["/bin/true"], "--user", "nobody", "--no-sign")
        self.assert_target_untouched()
        self.assertNotEqual(rc, 0)
        self.assert_one_line(err, "already exists")

    def test_existing_out_dir_refused(self):
        os.mkdir(self.out, 0o700)
        marker = os.path.join(self.parent, "ran")
        rc, err = self.run_rw(["touch", marker], "--no-sign")
        self.assertEqual(rc, 1)
        self.assert_one_line(err, f"--out {self.out} already exists")
        self.assertFalse(os.path.exists(marker), "the job ran without its evidence directory")
        self.assertEqual(os.listdir(self.out), [])

    def test_out_dir_private_while_the_job_runs(self):
        rc, err = self.run_rw(["sh", "-c", f"ls {self.out} || echo denied > {self.parent}/r"],
                              "--user", "nobody", "--no-sign")
        self.assertEqual(rc, 0, err)
        with open(os.path.join(self.parent, "r")) as f:
            self.assertEqual(f.read(), "denied\n")

    def test_fifo_swap_not_signed(self):
        forger = self.script("forger.py", FORGER)
        t0 = time.time()
        rc, err = self.run_rw([PY, forger, self.parent], "--user", "nobody",
                              "--key", self.key, "--grace", "1")
        self.assertLess(time.time() - t0, 30, "runwarden waited on the job's FIFO")
        # What sits at --out now is the job's forgery: never valid, never complete.
        code, rep = verify(self.pub, os.path.join(self.out, "attestation.dsse.json"))
        self.assertNotEqual(rep["verdict"], "valid", "the forged log was signed")
        self.assertNotEqual(code, 0, rep)
        self.assertNotIn("run_complete", rep.get("log", {}))
        self.assertNotEqual(rc, 0, err)  # the move is reported
        # runwarden's own evidence, signed, shows what the job did.
        old = os.path.join(self.parent, "old")
        code, rep = verify(self.pub, os.path.join(old, "attestation.dsse.json"))
        self.assertEqual(code, 0, rep)
        run = Run(0, "", old)
        self.assertTrue(any(forger in (e.get("argv") or []) for e in run.of("exec")))

    def test_verify_never_waits_on_a_fifo(self):
        # A reviewer's `verify` (or the CI step after the job) on what the job
        # left: FIFOs at the evidence names are refused at once, not waited on.
        os.mkdir(self.out)
        att, log = (os.path.join(self.out, n) for n in ("attestation.dsse.json",
                                                         "events.ndjson"))
        os.mkfifo(log)
        code, rep = verify(self.pub, att)  # no attestation: the log is looked at
        self.assertEqual((code, rep["code"]), (1, "log-io"), rep)
        self.assertIn("not a regular file", rep["reason"])
        os.mkfifo(att)
        code, rep = verify(self.pub, att)
        self.assertEqual((code, rep["code"]), (1, "envelope"), rep)
        self.assertIn("not a regular file", rep["reason"])

    # ------------------------------------------------------------ the key

    def test_key_owned_by_another_user_refused(self):
        os.chown(self.key, 1, 1)  # daemon: neither root nor the job's user
        marker = os.path.join(self.parent, "ran")
        rc, err = self.run_rw(["touch", marker], "--user", "nobody", "--key", self.key)
        self.assertEqual(rc, 1)
        self.assert_one_line(err, "owned by uid 1, not root")
        self.assertFalse(os.path.exists(marker))
        self.assertFalse(os.path.exists(self.out))

    def test_key_readable_by_others_refused(self):
        os.chmod(self.key, 0o644)
        rc, err = self.run_rw(["/bin/true"], "--user", "nobody", "--key", self.key)
        self.assertEqual(rc, 1)
        self.assert_one_line(err, "group and others must have no access")
        self.assertFalse(os.path.exists(self.out))

    def test_job_reading_the_key_is_recorded(self):
        key = os.path.realpath(self.key)
        rc, err = self.run_rw(["sh", "-c", f"cat {key} >/dev/null 2>&1; true"],
                              "--user", "nobody", "--key", self.key)
        self.assertEqual(rc, 0, err)
        run = Run(rc, err, self.out)
        (ev,) = run.of("file", path=key)
        self.assertEqual((ev["result"], ev["uid"]), ("EACCES", NOBODY.pw_uid))
        self.assertEqual([f["path"] for f in run.summary["files"]], [key])
        # A job running as root reads it: recorded too.
        self.out = os.path.join(self.parent, "out2")
        rc, err = self.run_rw(["cat", key], "--key", self.key)
        self.assertEqual(rc, 0, err)
        (ev,) = Run(rc, err, self.out).of("file", path=key)
        self.assertEqual(ev["result"], "ok")

    # ------------------------------------------------------------ lost writes

    def umount(self, path):
        for _ in range(100):  # the detaching child may hold it for a moment
            if subprocess.run(["umount", path], capture_output=True).returncode == 0:
                return
            time.sleep(0.05)

    def test_disk_full_is_neither_signed_nor_complete(self):
        small = os.path.join(self.tmp, "small")
        os.mkdir(small)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k,mode=0777", "tmpfs", small],
                       check=True)
        self.addCleanup(self.umount, small)
        self.out = os.path.join(small, "out")
        rc, err = self.run_rw(["sh", "-c", "for i in $(seq 300); do /bin/true; done"],
                              "--user", "nobody", "--key", self.key)
        self.assertNotEqual(rc, 0, err)
        self.assertIn("events.ndjson failed: No space left on device; the log is incomplete",
                      err)
        self.assertIn("refusing to sign", err)
        self.assertEqual(sorted(os.listdir(self.out)), ["events.ndjson"])  # nothing short
        code, rep = verify(self.pub, os.path.join(self.out, "attestation.dsse.json"))
        self.assertEqual((code, rep["code"]), (1, "incomplete"), rep)

    # ------------------------------------------------------------ SIGKILL

    def test_sigkill_leaves_the_log_up_to_the_kill(self):
        marker = os.path.join(self.parent, "ready")
        job = f"for i in $(seq 20); do /bin/true; done; touch {marker}; exec sleep 60"
        p = subprocess.Popen([RW, "run", "--out", self.out, "--quiet", "--user", "nobody",
                              "--key", self.key, "--", "sh", "-c", job],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 30
            while not os.path.exists(marker) and time.time() < deadline:
                time.sleep(0.05)
            self.assertTrue(os.path.exists(marker), "the job never got going")
            # Killed once the log holds the touch (a fixed second was short for the sanitizer
            # build on a busy machine): what is written by then must stay verifiable.
            log = os.path.join(self.out, "events.ndjson")
            while time.time() < deadline + 30 and not logged_exec(log, "/usr/bin/touch"):
                time.sleep(0.05)
            p.kill()
            p.wait(10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            p.stderr.close()
        run = Run(0, "", self.out)
        self.assertIsNone(run.close)
        run.verify_chain()
        self.assertEqual(len(run.of("exec", exe="/usr/bin/true")), 20)
        self.assertTrue(run.of("exec", exe="/usr/bin/touch"))
        code, rep = verify(self.pub, os.path.join(self.out, "attestation.dsse.json"))
        self.assertEqual((code, rep["verdict"], rep["code"]), (1, "invalid", "incomplete"), rep)
        self.assertIn("no closing record", rep["reason"])
        self.assertEqual(rep["line"], len(run.lines))
        txt = subprocess.run([RW, "verify", "--key", self.pub,
                              os.path.join(self.out, "attestation.dsse.json")],
                             stdout=subprocess.PIPE, text=True, timeout=60)
        self.assertIn("INCOMPLETE", txt.stdout)
        rep = subprocess.run([RW, "report", self.out], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertIn("no closing record", rep.stdout)


def logged_exec(log, exe):
    """Has the log, as written so far, an exec of exe? (A last line may be half written.)"""
    try:
        with open(log, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
    except FileNotFoundError:
        return False
    return any(e["kind"] == "exec" and e.get("exe") == exe for e in map(json.loads, lines))


class AgentEvidenceAttackTest(ta.AgentTest):
    """The same rules in whole-job mode (the agent's own fixture)."""

    def start(self, w, *opts):
        return self.agent.job("start", "--pid", str(w.pid), "--out",
                              os.path.join(self.tmp, "out"), *opts)

    def test_existing_out_dir_refused(self):
        os.mkdir(os.path.join(self.tmp, "out"))
        rc, _, err = self.start(self.worker(), "--no-sign")
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("already exists", err)
        self.assertEqual(self.pins(), [])

    def test_key_not_root_only_refused(self):
        key, _ = keygen(os.path.join(self.tmp, "signing"))
        for mode, owner, needle in [(0o644, 0, "group and others must have no access"),
                                    (0o600, NOBODY.pw_uid, "not root")]:
            os.chmod(key, mode)
            os.chown(key, owner, owner)
            rc, _, err = self.start(self.worker(), "--key", key)
            self.assertNotEqual(rc, 0, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(needle, err)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "out")))
            self.assertEqual(self.pins(), [])

    def test_key_read_is_recorded_and_out_dir_root_only(self):
        key, pub = keygen(os.path.join(self.tmp, "signing"))
        out = os.path.join(self.tmp, "out")
        w = self.worker()
        rc, _, err = self.start(w, "--key", key)
        self.assertEqual(rc, 0, err)
        st = os.stat(out)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o700))
        self.assertEqual(w.step("cat", key)["rc"], 0)
        rc, _, err = self.agent.job("stop")
        self.assertEqual(rc, 0, err)
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o755)
        run = Run(rc, err, out)
        (ev,) = run.of("file", path=os.path.realpath(key))
        self.assertEqual(ev["result"], "ok")
        code, rep = verify(pub, os.path.join(out, "attestation.dsse.json"))
        self.assertEqual(code, 0, rep)


# The agent fixture's own tests run in test_agent; only the ones above run here.
for _name in dir(ta.AgentTest):
    if _name.startswith("test_") and _name not in vars(AgentEvidenceAttackTest):
        setattr(AgentEvidenceAttackTest, _name, None)

if __name__ == "__main__":
    import unittest
    unittest.main()
