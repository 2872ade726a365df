"""Rootful Podman for the tests: Debian's podman (with runc and conmon), each test class with
its own storage root, run root and temporary directory, the cgroupfs manager (no systemd on
these machines) and the file events backend. Images are made offline with `podman import` of
the same busybox root filesystem dockerd.py gives docker: nothing is ever pulled. Containers
use the host's network only (no CNI/netavark network is made)."""
import os
import shutil
import subprocess
import tempfile

from dockerd import busybox_rootfs_tar
from rwtest import cgroup2_mount

PODMAN = "/usr/bin/podman"
IMAGE = "localhost/rwtest/busybox:1"
# Where Podman's cgroupfs manager puts containers: <cgroup2 mount>/libpod_parent/libpod-<id>.
PARENT = "libpod_parent"
# Podman asks runc for RLIMIT_NOFILE 1048576 and RLIMIT_NPROC by default; raising a hard
# limit needs CAP_SYS_RESOURCE, which a CI sandbox (this one) may not grant: stay below ours.
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


class Podman:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="rwp-", dir="/tmp")
        self.base = [PODMAN, "--root", os.path.join(self.dir, "root"),
                     "--runroot", os.path.join(self.dir, "run"),
                     "--tmpdir", os.path.join(self.dir, "tmp"),
                     "--cgroup-manager", "cgroupfs", "--events-backend", "file"]

    def start(self):
        # Made before any job, as an engine's directory should be (docs/containers.md):
        # a job then fences it from birth. Podman uses it as it is.
        os.makedirs(os.path.join(cgroup2_mount(), PARENT), exist_ok=True)
        self.podman("import", "-", IMAGE, input=busybox_rootfs_tar())
        return self

    def command(self, *args):
        """A podman command line on this engine."""
        return [*self.base, *args]

    def run_args(self, *args):
        """`podman run` on the host's network; args are run's own (options, image, command)."""
        return ["run", *ULIMITS, "--network", "host", *args]

    def podman(self, *args, check=True, timeout=120, input=None):
        p = subprocess.run(self.command(*args), capture_output=True, input=input,
                           timeout=timeout)
        if check and p.returncode:
            raise RuntimeError(f"podman {' '.join(args)}: {p.stderr.decode()}")
        return p

    def stop(self):
        self.podman("rm", "-af", "-t", "0", check=False)
        self.podman("system", "reset", "-f", check=False, timeout=60)
        subprocess.run(["umount", "-R", "-l", os.path.join(self.dir, "root")],
                       capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
