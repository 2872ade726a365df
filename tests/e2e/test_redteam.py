"""End-to-end: attacks a hostile job makes on the fence from outside its own
processes. An unprivileged job (`--user`) shares its uid with whatever else runs
as that user: under `--user runner`, the CI runner's own worker. Writing that
process's memory is making it connect for the job, outside the fence."""
import os
import signal
import subprocess
import unittest

from rwtest import TOOLS, RwTestCase

MEMREAD = os.path.realpath(os.path.join(TOOLS, "memread"))
URING_MEMWRITE = os.path.realpath(os.path.join(TOOLS, "uring_memwrite"))
SECRET = "SECRETSECRETSECRET"
PWNED = "PWNEDPWNED"


class OutsideHolder:
    """A process outside the job, running as the job's user, with a buffer it
    prints (as it then is) when its stdin closes."""

    def __init__(self, uid=65534):
        self.proc = subprocess.Popen(
            ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
             MEMREAD, "hold", SECRET],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        pid, self.addr, _ = self.proc.stdout.readline().split()
        self.pid = int(pid)

    def held(self):
        """What the buffer holds at the end (after a SIGCONT: an attach stops it)."""
        os.kill(self.pid, signal.SIGCONT)
        out, _ = self.proc.communicate(timeout=10)
        return out.strip()


class OutsideMemoryWriteTest(RwTestCase):
    def policy(self):
        path = os.path.join(self.tmp, "policy.yaml")
        with open(path, "w") as f:
            f.write("version: 1\nmode: enforce\nallow:\n  - cidr: 127.0.10.0/24\n")
        return path

    def write_outside(self, how, mode="enforce"):
        h = OutsideHolder()
        self.addCleanup(lambda: h.proc.poll() is None and h.proc.kill())
        r = self.rw([MEMREAD, how, str(h.pid), h.addr, PWNED], "--user", "nobody",
                    "--policy", self.policy(), "--mode", mode)
        held = h.held()
        recs = [e for e in r.of("memread") if e["target"]["pid"] == h.pid]
        self.assertTrue(recs, r.stderr)
        return r, held, recs

    def test_process_vm_writev_refused_and_recorded(self):
        r, held, recs = self.write_outside("vmwrite")
        self.assertEqual(held, "held: " + SECRET)
        self.assertEqual(recs[0]["op"], "process_vm_writev")
        self.assertEqual(recs[0]["result"], "EPERM")
        self.assertEqual(recs[0]["target"]["scope"], "outside")

    def test_ptrace_attach_outside_kills_the_tracer(self):
        r, held, recs = self.write_outside("poke")
        self.assertEqual(held, "held: " + SECRET)
        attach = [e for e in recs if e["op"] == "ptrace_attach"]
        self.assertTrue(attach and attach[0].get("killed"), recs)
        self.assertFalse([e for e in recs if e["op"] == "ptrace_poke"], recs)
        self.assertNotEqual(r.rc, 0)

    def test_proc_mem_opened_for_writing_kills_the_opener(self):
        r, held, recs = self.write_outside("memwrite")
        self.assertEqual(held, "held: " + SECRET)
        self.assertTrue(recs[0].get("killed"), recs)
        self.assertEqual(recs[0]["flags"], ["O_RDWR"])

    def test_io_uring_direct_descriptor_write_refused(self):
        # /proc/PID/mem opened into io_uring's fixed-file table and written through
        # it: no descriptor, no open or write tracepoint. Enforce refuses io_uring.
        h = OutsideHolder()
        self.addCleanup(lambda: h.proc.poll() is None and h.proc.kill())
        r = self.rw([URING_MEMWRITE, str(h.pid), h.addr, PWNED], "--user", "nobody",
                    "--policy", self.policy(), "--mode", "enforce")
        self.assertEqual(h.held(), "held: " + SECRET)
        self.assertIn("uring_memwrite: io_uring: Operation not permitted", r.stderr)

    def test_observe_records_without_killing(self):
        r, held, recs = self.write_outside("poke", mode="observe")
        self.assertEqual(held, "held: " + PWNED)  # whole words: the rest zeroed
        self.assertFalse([e for e in recs if e.get("killed")], recs)

    def test_tracing_inside_the_job_still_works(self):
        # gdb, strace and test harnesses attach to the job's own processes.
        script = (f"import subprocess\n"
                  f"h = subprocess.Popen(['{MEMREAD}', 'hold', '{SECRET}'],"
                  f" stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)\n"
                  f"pid, addr, _ = h.stdout.readline().split()\n"
                  f"subprocess.run(['{MEMREAD}', 'poke', pid, addr, '{PWNED}'], check=True)\n"
                  f"import os, signal; os.kill(int(pid), signal.SIGCONT)\n"
                  f"print(h.communicate()[0].strip())\n")
        r = self.rw(["python3", "-c", script], "--user", "nobody",
                    "--policy", self.policy(), "--mode", "enforce")
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertIn("held: " + PWNED, r.stdout)
        self.assertFalse([e for e in r.of("memread") if e.get("killed")])


if __name__ == "__main__":
    unittest.main()
