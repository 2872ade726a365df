"""End-to-end: what a hostile job does is recorded as what it is, not as what it
is called: reads of other processes' memory with the target named, credential
files reached under other names, executables by device, inode and content."""
import hashlib
import os
import shutil
import subprocess
import sys
import unittest

from rwtest import TOOLS, RwTestCase

MEMREAD = os.path.realpath(os.path.join(TOOLS, "memread"))
BYHANDLE = os.path.realpath(os.path.join(TOOLS, "byhandle"))
SECRET = "ghs_notarealtokenbutlongenough0123456789"


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Holder:
    """A process outside the job's scope (the runner's worker, say) with a
    secret in its memory."""

    def __init__(self, user=None):
        pre = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user else []
        self.proc = subprocess.Popen(pre + [MEMREAD, "hold", SECRET], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        pid, addr, n = self.proc.stdout.readline().split()
        self.pid, self.addr, self.len = int(pid), addr, n

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(10)
        self.proc.stdout.close()


class MemReadTest(RwTestCase):
    def setUp(self):
        super().setUp()
        self.holder = Holder()
        self.addCleanup(self.holder.stop)

    def read(self, how, *extra):
        h = self.holder
        args = [MEMREAD, how, str(h.pid)] + ([h.addr, h.len] if how != "environ" else [])
        r = self.rw(args + list(extra))
        self.assertEqual(r.rc, 0, r.stderr)
        return r

    def assert_target_named(self, ev):
        t = ev["target"]
        self.assertEqual(t["pid"], self.holder.pid)
        self.assertEqual(t["comm"], "memread")
        self.assertEqual(t["exe"], MEMREAD)
        self.assertEqual(t["scope"], "outside")
        self.assertEqual(ev["exe"], MEMREAD)  # the reader, named too

    def test_process_vm_readv_recorded_with_target(self):
        r = self.read("vm")
        self.assertIn(SECRET, r.stdout)  # the read worked: this is the attack
        (ev,) = r.of("memread", op="process_vm_readv")
        self.assert_target_named(ev)
        self.assertEqual((ev["result"], ev["bytes"], ev["calls"]), ("ok", len(SECRET), 1))

    def test_unprivileged_job_reads_same_uid_process(self):
        # The tj-actions case: an unprivileged job and the runner share a uid.
        other = Holder(user=65534)
        self.addCleanup(other.stop)
        r = self.rw([MEMREAD, "vm", str(other.pid), other.addr, other.len], "--user", "nobody")
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertIn(SECRET, r.stdout)
        (ev,) = r.of("memread", op="process_vm_readv")
        self.assertEqual((ev["target"]["pid"], ev["target"]["scope"], ev["result"]),
                         (other.pid, "outside", "ok"))
        self.assertEqual(ev["uid"], 65534)

    def test_ptrace_attach_and_peekdata_recorded_with_target(self):
        r = self.read("peek")
        self.assertIn(SECRET, r.stdout)
        (att,) = r.of("memread", op="ptrace_attach")
        self.assert_target_named(att)
        self.assertEqual((att["request"], att["result"]), ("PTRACE_ATTACH", "ok"))
        peeks = r.of("memread", op="ptrace_peek")
        self.assertTrue(peeks)
        for p in peeks:
            self.assert_target_named(p)
            self.assertEqual(p["request"], "PTRACE_PEEKDATA")
        # Counted, not one record per word: 1, 2, 4, ... calls.
        words = (len(SECRET) + 7) // 8
        self.assertEqual([p["calls"] for p in peeks],
                         [1 << i for i in range(words.bit_length())])
        self.assertEqual(peeks[-1]["bytes"], 8 * peeks[-1]["calls"])

    def test_peek_storm_makes_few_records(self):
        h = self.holder
        r = self.rw([MEMREAD, "peek", str(h.pid), h.addr, str(8 * 5000)])
        # It may fault past the heap: what matters is what was recorded.
        peeks = r.of("memread", op="ptrace_peek", result="ok")
        self.assertGreater(len(peeks), 0)
        self.assertLessEqual(len(peeks), 14)
        self.assertEqual(r.summary["events_lost"]["total"], 0)

    def test_ptrace_seize_recorded(self):
        h = self.holder
        r = self.rw([MEMREAD, "seize", str(h.pid)])
        self.assertEqual(r.rc, 0, r.stderr)
        (ev,) = r.of("memread", op="ptrace_seize")
        self.assert_target_named(ev)

    def test_proc_pid_mem_recorded_with_target(self):
        r = self.read("mem")
        self.assertIn(SECRET, r.stdout)
        (ev,) = r.of("memread", op="proc_mem")
        self.assert_target_named(ev)
        self.assertEqual(ev["result"], "ok")

    def test_own_memory_not_reported(self):
        # A runtime reading its own /proc/self/mem is not a theft; the same
        # job reading another process's is.
        h = self.holder
        code = f"""
import subprocess
open('/proc/self/mem','rb').close(); open('/proc/self/environ','rb').read()
subprocess.run([{MEMREAD!r}, "mem", "{h.pid}", "{h.addr}", "{h.len}"], check=True)
"""
        r = self.rw([sys.executable, "-c", code])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual([e["target"]["pid"] for e in r.of("memread")], [h.pid])

    def test_proc_pid_environ_recorded_with_target(self):
        r = self.read("environ")
        (ev,) = r.of("memread", op="proc_environ")
        self.assert_target_named(ev)

    def test_reading_a_job_process_says_job(self):
        # The target is the job's own child: inside the scope.
        code = f"""
import subprocess
h = subprocess.Popen([{MEMREAD!r}, "hold", "x"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
pid, addr, n = h.stdout.readline().split()
subprocess.run([{MEMREAD!r}, "vm", pid, addr, n], check=True)
h.stdin.close(); h.wait()
"""
        r = self.rw([sys.executable, "-c", code])
        self.assertEqual(r.rc, 0, r.stderr)
        (ev,) = r.of("memread", op="process_vm_readv")
        self.assertEqual(ev["target"]["scope"], "job")
        self.assertEqual(ev["target"]["exe"], MEMREAD)

    def test_target_named_inside_a_pid_namespace(self):
        # Inside its own pid namespace the job names the target by a pid of
        # that namespace; the record names the process by its global pid.
        out = os.path.join(self.tmp, "held")
        # (The namespace's init stays until the record is read: its exit
        # would kill the target at once.)
        # The holder lives until `sleep 10` ends; it is read as soon as it has said where
        # (a fixed 0.5 s was not always enough for it to start on a busy machine).
        script = (f"sleep 10 | {MEMREAD} hold inner > {out} & "
                  f"for i in $(seq 400); do [ -s {out} ] && break; sleep 0.05; done; "
                  f"set -- $(cat {out}); {MEMREAD} vm $1 $2 $3; sleep 1")
        os.chmod(self.tmp, 0o755)
        r = self.rw(["unshare", "-Urpfm", "--mount-proc", "sh", "-c", script])
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertIn("inner", r.stdout)
        (holder,) = [e for e in r.of("exec") if e["argv"][:2] == [MEMREAD, "hold"]]
        (ev,) = r.of("memread", op="process_vm_readv")
        t = ev["target"]
        self.assertEqual((t["pid"], t["scope"], t["exe"]), (holder["pid"], "job", MEMREAD))
        self.assertNotEqual(t["pid_as_given"], holder["pid"])
        self.assertEqual(t["pid_namespace_level"], 1)


class SensitiveIdentityTest(RwTestCase):
    """The credential is recorded whatever name reaches it."""

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(os.path.join(self.home, ".ssh"))
        self.key = os.path.join(self.home, ".ssh", "id_rsa")
        with open(self.key, "w") as f:
            f.write("not a real key\n")
        os.chmod(self.home, 0o755)
        os.chmod(os.path.dirname(self.key), 0o755)
        os.chmod(self.key, 0o644)
        self.key_ino = os.stat(self.key).st_ino
        self.env = dict(os.environ, HOME=self.home)

    def assert_key_read(self, r, opened_as):
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertIn("not a real key", r.stdout)
        evs = [e for e in r.of("file") if e.get("watched_as", e["path"]) == self.key]
        self.assertEqual(len(evs), 1, r.of("file"))
        (ev,) = evs
        self.assertEqual(ev["path"], opened_as)
        self.assertEqual(ev["ino"], self.key_ino)
        self.assertEqual(ev["result"], "ok")
        files = [f for f in r.summary["files"] if f["path"] == self.key]
        self.assertEqual(len(files), 1)
        return ev

    def test_hard_link(self):
        # An unrelated file named like a credential ("config"), linked and
        # read the same way, stays out of the record.
        other, olink = os.path.join(self.tmp, "config"), os.path.join(self.tmp, "z")
        with open(other, "w") as f:
            f.write("x\n")
        link = os.path.join(self.tmp, "innocent")
        r = self.rw(["sh", "-c", f"cat {other} >/dev/null && ln {other} {olink} && "
                     f"cat {olink} >/dev/null && ln {self.key} {link} && cat {link}"],
                    env=self.env)
        ev = self.assert_key_read(r, link)
        self.assertEqual(ev["matched_by"], "inode")
        self.assertEqual(len(r.of("file")), 1)

    def test_renamed_parent_directory(self):
        moved = os.path.join(self.home, ".x")
        r = self.rw(["sh", "-c", f"mv {self.home}/.ssh {moved} && cat {moved}/id_rsa"],
                    env=self.env)
        self.assert_key_read(r, os.path.join(moved, "id_rsa"))

    def test_bind_mount_in_user_namespace(self):
        mnt = os.path.join(self.tmp, "mnt")
        os.mkdir(mnt)
        script = (f"unshare -Urm sh -c 'mount --bind {self.home}/.ssh {mnt} && "
                  f"cat {mnt}/id_rsa'")
        r = self.rw(["sh", "-c", script], "--user", "nobody", env=self.env)
        self.assert_key_read(r, os.path.join(mnt, "id_rsa"))

    def test_open_by_handle_at(self):
        got = subprocess.run([BYHANDLE, "get", self.key], capture_output=True, text=True,
                             check=True).stdout.split()
        r = self.rw([BYHANDLE, "open", self.tmp, got[0], got[1]], env=self.env)
        ev = self.assert_key_read(r, self.key)
        self.assertEqual(ev["exe"], BYHANDLE)

    def test_file_created_during_job_then_linked(self):
        aws = os.path.join(self.home, ".aws")
        link = os.path.join(self.tmp, "y")
        script = (f"mkdir {aws} && echo secret > {aws}/credentials && "
                  f"ln {aws}/credentials {link} && cat {link}")
        r = self.rw(["sh", "-c", script], env=self.env)
        self.assertEqual(r.rc, 0, r.stderr)
        (made,) = r.of("file", path=f"{aws}/credentials")
        (read,) = r.of("file", path=link)
        self.assertEqual(read["watched_as"], f"{aws}/credentials")
        self.assertEqual(read["ino"], made["ino"])


class ExecIdentityTest(RwTestCase):
    def payload(self, src="/bin/sleep"):
        os.chmod(self.tmp, 0o755)
        p = os.path.join(self.tmp, "payload")
        shutil.copy(src, p)
        with open(p, "ab") as f:
            f.write(b"\0payload marker")  # a different file from src
        os.chmod(p, 0o755)
        return p

    def test_exec_records_hash_and_inode(self):
        r = self.rw([os.path.join(TOOLS, "workload"), "--exec", "50"])
        self.assertEqual(r.rc, 0, r.stderr)
        trues = r.of("exec", exe="/usr/bin/true")
        self.assertEqual(len(trues), 50)
        want = (sha256_file("/usr/bin/true"), os.stat("/usr/bin/true").st_ino)
        self.assertTrue(all((e["exe_sha256"], e["exe_ino"]) == want for e in trues), trues[0])

    def test_bind_mount_over_binary(self):
        payload = self.payload()
        script = f"mount --bind {payload} /usr/bin/true && exec /usr/bin/true 0.5"
        r = self.rw(["unshare", "-m", "sh", "-c", script])
        self.assertEqual(r.rc, 0, r.stderr)
        (ev,) = r.of("exec", exe="/usr/bin/true")
        self.assertNotEqual(ev["exe_ino"], os.stat("/usr/bin/true").st_ino)
        self.assertEqual(ev["exe_ino"], os.stat(payload).st_ino)
        self.assertEqual(ev["exe_sha256"], sha256_file(payload))
        self.assertNotEqual(ev["exe_sha256"], sha256_file("/usr/bin/true"))

    def test_memfd_exec(self):
        code = """
import os
fd = os.memfd_create("innocent", 0)
with open("/bin/sleep", "rb") as f:
    os.write(fd, f.read())
os.execv(f"/proc/self/fd/{fd}", ["innocent", "0.5"])
"""
        r = self.rw([sys.executable, "-c", code])
        self.assertEqual(r.rc, 0, r.stderr)
        (ev,) = [e for e in r.of("exec") if e["argv"] == ["innocent", "0.5"]]
        self.assertEqual(ev["exe"], "memfd:innocent")
        self.assertTrue(ev["exe_memfd"])
        self.assertEqual(ev["exe_sha256"], sha256_file("/bin/sleep"))

    def test_deleted_executable(self):
        payload = self.payload()
        code = f"""
import os
fd = os.open({payload!r}, os.O_RDONLY)
os.unlink({payload!r})
os.execv(f"/proc/self/fd/{{fd}}", ["gone", "0.5"])
"""
        want = sha256_file(payload)
        r = self.rw([sys.executable, "-c", code])
        self.assertEqual(r.rc, 0, r.stderr)
        (ev,) = [e for e in r.of("exec") if e["argv"] == ["gone", "0.5"]]
        self.assertEqual(ev["exe"], payload + " (deleted)")
        self.assertTrue(ev["exe_deleted"])
        self.assertEqual(ev["exe_sha256"], want)


if __name__ == "__main__":
    unittest.main()
