"""The resident kernel side: copies of the kernel programs loaded once and lent to one job at a
time (docs/design.md, "The resident kernel side"). What must hold: a job borrows a free copy
instead of loading one; concurrent jobs get different copies and never see each other's policy
or events; nothing a job left in a copy (policy, pins, watched files, leftover processes)
reaches the next job; a copy fencing leftovers is not lent out; a job that died leaves a copy
the next job can use; and `runwarden kernel` loads, shows and unloads copies.

Loopback only: TCP servers on 127.0.41.x stand in for the outside world.
"""
import os
import select
import subprocess
import sys
import textwrap
import threading
import time

from rwtest import RW, RwTestCase, TcpServer

CONNECT = """
import socket, sys
for target in sys.argv[2:]:
    host, port = target.rsplit(":", 1)
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, int(port))); r = "ok"
    except OSError as e:
        r = str(e.errno)
    print(host, r, flush=True)
    s.close()
"""


def kernel(*args):
    return subprocess.run([RW, "kernel", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)


class ResidentTest(RwTestCase):
    @classmethod
    def setUpClass(cls):
        kernel("unload")  # copies other builds left idle: ours replace them anyway

    def setUp(self):
        super().setUp()
        self.a = TcpServer("127.0.41.1")
        self.b = TcpServer("127.0.41.2")
        self.addCleanup(self.a.stop)
        self.addCleanup(self.b.stop)

    def policy(self, allow, name):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write("version: 1\nmode: enforce\nallow:\n" +
                    "".join(f"  - ip: {a}\n" for a in allow))
        return path

    def connect(self, *servers, wait=None, ready=None):
        code = CONNECT
        if wait:  # hold the job open until the file appears (concurrency)
            code = (f"import os, time\nwhile not os.path.exists({wait!r}): time.sleep(0.02)\n"
                    + CONNECT)
        if ready:  # say the job runs (its copy is armed by then)
            code = f"open({ready!r}, 'w').close()\n" + code
        return [sys.executable, "-c", code, "x"] + [f"{s.sock.getsockname()[0]}:{s.port}"
                                                   for s in servers]

    def results(self, r):
        return dict(line.split() for line in r.stdout.splitlines())

    def test_second_job_borrows_the_copy_the_first_left(self):
        first = self.rw(["true"], out=os.path.join(self.tmp, "o1"))
        second = self.rw(["true"], out=os.path.join(self.tmp, "o2"))
        self.assertEqual(first.rc, 0, first.stderr)
        self.assertEqual(second.rc, 0, second.stderr)
        self.assertRegex(second.summary["kernel_side"]["copy"], r"^resident slot \d \(borrowed\)$")
        # The status shows it, idle now.
        st = kernel("status")
        self.assertEqual(st.returncode, 0, st.stderr)
        self.assertRegex(st.stdout, r"slot \d: idle")

    def test_back_to_back_steps_on_a_busy_machine_reuse_one_copy(self):
        # CI steps follow each other at once, on a machine busy with the build. The slot must
        # be free when `run` returns, not when the fence keeper next looks: otherwise the next
        # step loads a copy of its own (and evicts an older build's idle one to do so).
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
        for p in busy:
            self.addCleanup(p.wait)
            self.addCleanup(p.kill)
        copies = []
        for i in range(6):
            r = self.rw(["true"], out=os.path.join(self.tmp, f"o{i}"))
            self.assertEqual(r.rc, 0, r.stderr)
            # Nothing was left running: the step's scope is gone when it returns.
            self.assertEqual(self.new_scopes(), set(), (i, r.stderr))
            copies.append(r.summary["kernel_side"]["copy"])
            st = kernel("status")
            self.assertRegex(st.stdout, r"slot \d: idle", (i, st.stdout))
            self.assertNotIn("in use", st.stdout, (i, st.stdout))
        slot = copies[0].split(" (")[0]
        self.assertEqual(copies[1:], [f"{slot} (borrowed)"] * 5, copies)

    def test_private_copy_on_request_and_for_debugging_knobs(self):
        r = self.rw(["true"], "--kernel", "private")
        self.assertEqual(r.summary["kernel_side"]["copy"], "private")
        env = dict(os.environ, RUNWARDEN_NO_BPF_LOOP="1")
        r = self.rw(["true"], env=env, out=os.path.join(self.tmp, "o2"))
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.summary["kernel_side"]["copy"], "private")

    def test_nothing_of_a_job_reaches_the_next(self):
        # Job 1 allows 127.0.41.1 and watches a file; job 2, on the same copy, allows only
        # 127.0.41.2 and does not watch it.
        secret = os.path.join(self.tmp, "secret.txt")
        with open(secret, "w") as f:
            f.write("x")
        r1 = self.rw(self.connect(self.a) + [], "--policy", self.policy(["127.0.41.1"], "p1"),
                     "--watch", secret, out=os.path.join(self.tmp, "o1"))
        self.assertEqual(self.results(r1), {"127.0.41.1": "ok"}, r1.stderr)
        read = [sys.executable, "-c", f"open({secret!r}).read()"]
        r2 = self.rw(self.connect(self.a, self.b), "--policy",
                     self.policy(["127.0.41.2"], "p2"), out=os.path.join(self.tmp, "o2"))
        # The same copy, reset (jobs of other users of this machine could take it
        # between the two; in CI nothing else runs).
        self.assertEqual(r2.summary["kernel_side"]["copy"][:15],
                         r1.summary["kernel_side"]["copy"][:15])
        self.assertIn("borrowed", r2.summary["kernel_side"]["copy"])
        self.assertEqual(self.results(r2), {"127.0.41.1": "1", "127.0.41.2": "ok"}, r2.stderr)
        r3 = self.rw(read, out=os.path.join(self.tmp, "o3"))
        self.assertEqual(r3.rc, 0, r3.stderr)
        self.assertEqual([e for e in r3.of("file") if e.get("path") == secret], [])
        # Each log has only its own job's processes.
        self.assertEqual(r3.of("connect"), [])

    def test_concurrent_jobs_get_separate_copies_and_policies(self):
        go = os.path.join(self.tmp, "go")
        runs = {}

        ready = {n: os.path.join(self.tmp, f"ready-{n}") for n in ("a", "b")}

        def job(name, allow, servers):
            runs[name] = self.rw(self.connect(*servers, wait=go, ready=ready[name]), "--policy",
                                 self.policy([allow], f"p-{name}"),
                                 out=os.path.join(self.tmp, f"o-{name}"))

        ts = [threading.Thread(target=job, args=("a", "127.0.41.1", (self.a, self.b))),
              threading.Thread(target=job, args=("b", "127.0.41.2", (self.a, self.b)))]
        for t in ts:
            t.start()
        # Both running at once, each on its copy. A fixed 3 s instead: on a busy machine the
        # sanitizer build may not have started one job by then, which could then borrow the
        # other's copy once that one was over.
        deadline = time.time() + 120
        while time.time() < deadline and not all(map(os.path.exists, ready.values())):
            time.sleep(0.05)
        open(go, "w").close()
        for t in ts:
            t.join(60)
        a, b = runs["a"], runs["b"]
        self.assertEqual(self.results(a), {"127.0.41.1": "ok", "127.0.41.2": "1"}, a.stderr)
        self.assertEqual(self.results(b), {"127.0.41.1": "1", "127.0.41.2": "ok"}, b.stderr)
        self.assertNotEqual(a.summary["kernel_side"]["copy"][:15],
                            b.summary["kernel_side"]["copy"][:15])
        # Neither log holds the other's connects.
        self.assertEqual({e["daddr"] for e in a.of("connect")}, {"127.0.41.1", "127.0.41.2"})
        pids_a = {e["pid"] for e in a.events}
        pids_b = {e["pid"] for e in b.events}
        self.assertEqual(pids_a & pids_b, set())

    def test_a_copy_fencing_leftovers_is_not_lent_out(self):
        # Job 1 leaves a process behind (fenced by its keeper with job 1's policy); job 2 must
        # get another copy, and the leftover's later connect is denied by job 1's policy and
        # recorded in neither job 2's log.
        flag = os.path.join(self.tmp, "flag")
        result = os.path.join(self.tmp, "leftover-result")
        # Whatever fails below, the leftover is told to go (it would hold a slot for ever).
        self.addCleanup(lambda: open(flag, "w").close())
        leftover = textwrap.dedent(f"""
            import os, socket, subprocess, sys, time
            if os.fork() == 0:
                os.setsid()
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                while not os.path.exists({flag!r}): time.sleep(0.05)
                s = socket.socket(); s.settimeout(3)
                try:
                    s.connect(("127.0.41.2", {self.b.port})); r = "ok"
                except OSError as e:
                    r = str(e.errno)
                open({result!r}, "w").write(r)
                os._exit(0)
        """)
        r1 = self.rw([sys.executable, "-c", leftover], "--grace", "0", "--policy",
                     self.policy(["127.0.41.1"], "p1"), out=os.path.join(self.tmp, "o1"))
        self.assertEqual(r1.rc, 0, r1.stderr)
        r2 = self.rw(self.connect(self.b), "--policy", self.policy(["127.0.41.2"], "p2"),
                     out=os.path.join(self.tmp, "o2"))
        self.assertEqual(self.results(r2), {"127.0.41.2": "ok"}, r2.stderr)
        self.assertNotEqual(r1.summary["kernel_side"]["copy"][:15],
                            r2.summary["kernel_side"]["copy"][:15])
        open(flag, "w").close()
        deadline = time.time() + 10
        while not os.path.exists(result) and time.time() < deadline:
            time.sleep(0.05)
        with open(result) as f:
            self.assertEqual(f.read(), "1")  # job 1's policy still fences it
        self.assertEqual(len(r2.of("connect")), 1)
        self.wait_keepers_gone()

    def wait_keepers_gone(self):
        # A keeper removes its job's cgroup when it lets go (and with it the copy).
        deadline = time.time() + 15
        while time.time() < deadline and self.new_scopes():
            time.sleep(0.1)

    def test_a_job_killed_mid_way_leaves_a_usable_copy(self):
        out = os.path.join(self.tmp, "o1")
        p = subprocess.Popen([RW, "run", "--out", out, "--no-sign", "--policy",
                              self.policy(["127.0.41.1"], "p1"), "--", "sleep", "30"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        p.kill()
        p.wait()
        # enforce: the keeper ends the job once runwarden is gone, then lets go of the copy.
        self.wait_keepers_gone()
        r = self.rw(self.connect(self.a, self.b), "--policy",
                    self.policy(["127.0.41.2"], "p2"), out=os.path.join(self.tmp, "o2"))
        self.assertEqual(self.results(r), {"127.0.41.1": "1", "127.0.41.2": "ok"}, r.stderr)

    def test_another_builds_idle_copy_is_replaced(self):
        # Fill every slot, then make each copy look like another build's.
        for _ in range(4):
            kernel("load")
        for i in range(4):
            meta = f"/run/runwarden/kernel/{i}.json"
            if os.path.exists(meta):
                with open(meta) as f:
                    text = f.read()
                with open(meta, "w") as f:
                    f.write(text.replace('"key":"', '"key":"older-build '))
                # ...unused for two minutes: a copy in use by another build is left alone.
                old = time.time() - 120
                os.utime(f"/run/runwarden/kernel/{i}.lock", (old, old))
        r = self.rw(["true"])
        self.assertIn("loaded by this job", r.summary["kernel_side"]["copy"])
        r = self.rw(["true"], out=os.path.join(self.tmp, "o2"))
        self.assertIn("borrowed", r.summary["kernel_side"]["copy"])

    def test_an_unprivileged_job_cannot_reach_the_slots(self):
        kernel("load")
        code = textwrap.dedent("""
            import os
            for p in ("/run/runwarden/kernel", "/run/runwarden/kernel/0.lock",
                      "/sys/fs/bpf/runwarden/kernel"):
                try:
                    os.listdir(p) if not p.endswith(".lock") else open(p, "a")
                    print(p, "open")
                except OSError as e:
                    print(p, e.errno)
        """)
        r = self.rw(["/usr/bin/python3", "-c", code], "--user", "nobody")
        self.assertEqual(r.rc, 0, r.stderr)
        for line in r.stdout.splitlines():
            self.assertTrue(line.endswith(" 13"), line)  # EACCES
        self.assertEqual(len(r.stdout.splitlines()), 3)

    def test_garbled_slot_metadata_is_not_trusted(self):
        kernel("load")
        self.addCleanup(kernel, "unload")  # the garbled copies must not outlive the test
        for i in range(4):
            meta = f"/run/runwarden/kernel/{i}.json"
            if os.path.exists(meta):
                with open(meta, "w") as f:
                    f.write('{"key": [1, 2, {"\u0000": "\n"}]')  # truncated, hostile
        r = self.rw(self.connect(self.a), "--policy", self.policy(["127.0.41.1"], "p"))
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(self.results(r), {"127.0.41.1": "ok"})
        self.assertNotIn("borrowed", r.summary["kernel_side"]["copy"])
        kernel("unload")

    def test_kernel_command(self):
        load = kernel("load", "--idle", "600")
        self.assertEqual(load.returncode, 0, load.stderr)
        self.assertRegex(load.stdout, r"^slot \d: (already )?loaded\n$")
        st = kernel("status")
        self.assertRegex(st.stdout, r"slot \d: idle, runwarden \S+, loaded \d+s ago, missing hooks: 0")
        u = kernel("unload")
        # 1 only when some copy is in use (another job on this machine: none in CI).
        self.assertIn(u.returncode, (0, 1), u.stderr)
        for line in u.stdout.splitlines():
            self.assertRegex(line, r"^slot \d: (unloaded|in use, left loaded)$")
        self.assertNotIn("idle", kernel("status").stdout)
        # A cold run loads one again and says so.
        r = self.rw(["true"])
        self.assertIn("loaded by this job", r.summary["kernel_side"]["copy"])
        for bad in (["load", "--idle", "soon"], ["load", "--ring-mb", "3"], ["frobnicate"],
                    ["status", "extra"]):
            p = kernel(*bad)
            self.assertEqual(p.returncode, 2, bad)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_the_holder_keeps_none_of_the_callers_descriptors(self):
        """The first job starts the holder, which lives for the idle time: a pipe the job's
        caller passed it (a CI step's output on fd 3, a lock held with flock(1)) must reach EOF
        when the job ends, not 600 s later (it did: a lock of the test suite stayed held)."""
        subprocess.run(["pkill", "-f", "runwarden kernel hold"], check=False)
        kernel("unload")
        rd, wr = os.pipe()
        r = subprocess.run([RW, "run", "--out", os.path.join(self.tmp, "o"), "--no-sign", "--",
                            "true"], pass_fds=(wr,), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        os.close(wr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(subprocess.run(["pgrep", "-f", "runwarden kernel hold"],
                                       stdout=subprocess.DEVNULL).returncode == 0,
                        "the job started no holder: nothing was tested")
        ready, _, _ = select.select([rd], [], [], 10)
        self.assertTrue(ready, "the pipe's write end is still held after the job ended")
        self.assertEqual(os.read(rd, 1), b"")
        os.close(rd)

    def test_idle_copies_are_unloaded_by_the_holder(self):
        load = kernel("load", "--idle", "1")
        self.assertEqual(load.returncode, 0, load.stderr)
        slot = load.stdout.split(":")[0]  # "slot N"
        # A holder from an earlier test may watch with a longer idle time: start ours.
        subprocess.run(["pkill", "-f", "runwarden kernel hold"], check=False)
        h = subprocess.Popen([RW, "kernel", "hold", "--idle", "1"])
        self.addCleanup(lambda: (h.kill(), h.wait()))
        deadline = time.time() + 30
        while time.time() < deadline and f"{slot}: idle" in kernel("status").stdout:
            time.sleep(0.5)
        self.assertNotIn(f"{slot}: idle", kernel("status").stdout)
