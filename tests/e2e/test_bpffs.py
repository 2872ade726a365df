"""A fresh machine without bpffs: `runwarden agent` mounts it at /sys/fs/bpf itself (as bpftool
and systemd do) and then arms and stops a job as usual.

The agent runs in its own mount namespace (`unshare -m --propagation private`) where
/sys/fs/bpf has been unmounted first, so the machine's bpffs is untouched; the bpffs it mounts
is a new instance seen only there. Loopback only: a TCP server on 127.0.46.1.
"""
import os
import socket
import subprocess
import time

from rwtest import RW, Run, RwTestCase, TcpServer
from test_agent import Worker

SERVER = "127.0.46.1"

# Root in the new namespace: no bpffs left at /sys/fs/bpf, then the agent with its defaults
# for the pin root (under /sys/fs/bpf) and its own socket and state.
SETUP = r"""set -e
while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf; done
[ "$(stat -f -c %T /sys/fs/bpf)" != bpf_fs ]
echo unmounted >&2
exec "$@"
"""


class AgentMountsBpffs(RwTestCase):
    def setUp(self):
        super().setUp()
        self.server = TcpServer(SERVER)
        self.addCleanup(self.server.stop)
        self.sock = os.path.join(self.tmp, "ctl", "agent.sock")
        self.log = open(os.path.join(self.tmp, "agent.log"), "w")
        self.addCleanup(self.log.close)
        self.agent = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", SETUP, "sh",
             RW, "agent", "--foreground", "--socket", self.sock,
             "--state", os.path.join(self.tmp, "state")],
            stdout=self.log, stderr=self.log)
        self.addCleanup(self.stop_agent)
        self.worker = Worker()
        self.addCleanup(self.worker.stop)

    def stop_agent(self):
        if self.agent.poll() is None:
            subprocess.run([RW, "job", "stop", "--socket", self.sock], capture_output=True,
                           timeout=60)
            self.agent.terminate()
            self.agent.wait(30)

    def logtext(self):
        with open(os.path.join(self.tmp, "agent.log")) as f:
            return f.read()

    def wait_listening(self):
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.agent.poll() is not None:
                self.fail(f"agent exited {self.agent.returncode}:\n{self.logtext()}")
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(self.sock)
                    return
                except OSError:
                    time.sleep(0.05)
        self.fail("agent did not listen:\n" + self.logtext())

    def bpffs_in_agent_namespace(self):
        with open(f"/proc/{self.agent.pid}/mountinfo") as f:
            return [l for l in f if l.split()[4] == "/sys/fs/bpf" and " - bpf " in l]

    def test_agent_mounts_bpffs_and_runs_a_job(self):
        self.wait_listening()
        self.assertIn("unmounted", self.logtext())
        (mnt,) = self.bpffs_in_agent_namespace()
        self.assertIn("mode=700", mnt)
        out = os.path.join(self.tmp, "out")
        p = subprocess.run([RW, "job", "start", "--socket", self.sock, "--pid",
                            str(self.worker.pid), "--out", out, "--no-sign"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr + self.logtext())
        self.assertTrue(self.worker.cgroup().split("/")[-1].startswith("runwarden-"))
        self.assertEqual(self.worker.connect(SERVER, self.server.port), "ok")
        p = subprocess.run([RW, "job", "stop", "--socket", self.sock], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr + self.logtext())
        run = Run(0, p.stderr, out)
        run.verify_chain()
        self.assertTrue(run.summary["complete"])
        # The job's fence, pinned in the bpffs it mounted: gone again after stop. What stays
        # is the resident kernel side the agent loaded (docs/design.md).
        pins = subprocess.run(["nsenter", "-t", str(self.agent.pid), "-m", "--", "ls", "-A",
                               "/sys/fs/bpf/runwarden"], capture_output=True, text=True)
        self.assertEqual((pins.returncode, pins.stdout), (0, "kernel\n"), pins.stderr)
        self.assertTrue(run.of("connect", daddr=SERVER, dport=self.server.port))
        self.assertFalse(self.worker.cgroup().split("/")[-1].startswith("runwarden-"))


if __name__ == "__main__":
    import unittest
    unittest.main()
