"""Event loss is never silent: with the reader frozen and a small ring, a
burst overflows the ring; every record is then either in the log or counted
as lost, per kind, in summary.json and the log's closing record."""
import os
import signal
import subprocess
import time

from rwtest import RW, TOOLS, RwTestCase, Run


class LossTest(RwTestCase):
    def test_overflow_is_counted_exactly(self):
        home = os.path.join(self.tmp, "home", ".ssh")
        os.makedirs(home)
        key = os.path.join(home, "id_rsa")
        open(key, "w").close()
        ready, go, done = (os.path.join(self.tmp, n) for n in ("ready", "go", "done"))
        n = 20000
        job = (f"touch {ready}; while [ ! -e {go} ]; do sleep 0.02; done; "
               f"{TOOLS}/workload --open {n} {key}; touch {done}")
        out = os.path.join(self.tmp, "out")
        p = subprocess.Popen([RW, "run", "--no-sign", "--quiet", "--ring-mb", "1", "--out", out,
                              "--", "sh", "-c", job], stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 30
            while not os.path.exists(ready) and time.time() < deadline:
                time.sleep(0.02)
            self.assertTrue(os.path.exists(ready))
            p.send_signal(signal.SIGSTOP)  # the reader stops draining the ring
            open(go, "w").close()
            while not os.path.exists(done) and time.time() < deadline:
                time.sleep(0.02)
            self.assertTrue(os.path.exists(done))
        finally:
            p.send_signal(signal.SIGCONT)
            _, err = p.communicate(timeout=60)
        r = Run(p.returncode, err.decode(), out)
        self.assertEqual(r.rc, 0, r.stderr)
        logged = len(r.of("file", path=key))
        lost = r.summary["events_lost"]["file"]
        self.assertGreater(lost, 0, "the burst should have overflowed a 1 MiB ring")
        self.assertEqual(logged + lost, n)
        self.assertFalse(r.summary["complete"])
        self.assertEqual(r.close["events_lost"]["file"], lost)
        self.assertFalse(r.close["complete"])
