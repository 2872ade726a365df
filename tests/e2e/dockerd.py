"""A real Docker engine for the tests: Debian's dockerd (docker.io), with its own data root,
exec root and API socket under a temporary directory, no bridge, no NAT and no iptables rules,
so nothing it runs can reach beyond the machine unless a test builds the way. Images are made
offline with `docker import` of a root filesystem holding the host's static busybox: nothing
is ever pulled."""
import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time

DOCKER = "/usr/bin/docker"  # docker.io's client (a newer one on PATH may want buildx)
DOCKERD = "/usr/sbin/dockerd"
BUSYBOX = "/bin/busybox"  # busybox-static: runs in any root filesystem
IMAGE = "rwtest/busybox:1"
NSS_LIBS = ("/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libnss_files.so.2",
            "/lib/x86_64-linux-gnu/libnss_dns.so.2", "/lib/x86_64-linux-gnu/libresolv.so.2",
            "/lib64/ld-linux-x86-64.so.2")
APPLETS = ("sh", "nc", "sleep", "cat", "echo", "wget", "nslookup", "true", "ls", "ip", "httpd")


def busybox_rootfs_tar():
    """A root filesystem as a tar stream: /bin/busybox, its applets, /etc for resolv.conf."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "lib", "lib64",
                  "lib/x86_64-linux-gnu"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, "bin/busybox")
        # A static glibc program still loads the name-service modules, with the C library
        # they need, to resolve a name or even parse an address (busybox wget crashes
        # without them): the host's, the same glibc busybox-static was built against.
        for lib in NSS_LIBS:
            tar.add(os.path.realpath(lib), lib.lstrip("/"))
        nss = b"hosts: files dns\n"
        info = tarfile.TarInfo("etc/nsswitch.conf")
        info.size = len(nss)
        tar.addfile(info, io.BytesIO(nss))
        for a in APPLETS:
            info = tarfile.TarInfo(f"bin/{a}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buf.getvalue()


def mounts_under(path):
    """The mount points at or below path, from this process's mount table."""
    prefix = path.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    # mountinfo escapes space, tab, newline and backslash as octal
    points = [p.encode().decode("unicode_escape") for p in points]
    return [p for p in points if p == path or p.startswith(prefix)]


class Dockerd:
    """One dockerd for a test class: start() waits until the API answers, stop() ends it
    and removes everything it made."""

    def __init__(self):
        # Short paths: containerd's sockets live under the exec root (sun_path is 108 bytes).
        self.dir = tempfile.mkdtemp(prefix="rwd-", dir="/tmp")
        self.sock = os.path.join(self.dir, "docker.sock")
        self.host = "unix://" + self.sock
        self.log_path = os.path.join(self.dir, "dockerd.log")
        self.proc = None

    def start(self, timeout=60):
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [DOCKERD, "--data-root", os.path.join(self.dir, "data"),
             "--exec-root", os.path.join(self.dir, "x"), "-H", self.host,
             "--pidfile", os.path.join(self.dir, "dockerd.pid"),
             "--bridge", "none", "--iptables=false", "--ip6tables=false",
             "--ip-masq=false", "--userland-proxy=false"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self.log_tail()}")
            if subprocess.run([DOCKER, "-H", self.host, "version"], capture_output=True,
                              timeout=30).returncode == 0:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dockerd did not answer in {timeout} s: {self.log_tail()}")

    def log_tail(self, n=4000):
        with open(self.log_path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")

    def env(self, **extra):
        """The environment a client of this engine runs with."""
        e = dict(os.environ, DOCKER_HOST=self.host, DOCKER_CONFIG=os.path.join(self.dir, "cfg"))
        e.update(extra)
        return e

    def docker(self, *args, check=True, timeout=120, input=None, env=None):
        p = subprocess.run([DOCKER, "-H", self.host, *args], capture_output=True,
                           input=input, timeout=timeout, env=env or self.env())
        if check and p.returncode:
            raise RuntimeError(f"docker {' '.join(args)}: {p.stderr.decode()}")
        return p

    def import_busybox(self, name=IMAGE):
        self.docker("import", "-", name, input=busybox_rootfs_tar())
        return name

    def stop(self):
        if self.proc and self.proc.poll() is None:
            # Containers first: a clean engine shutdown leaves no shim or mount behind.
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *[i.decode() for i in ids], check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        # dockerd leaves mounts of its own under the directory: the data root's, and the
        # host network namespace bound at x/netns/default, which no `rm` can remove and which
        # kept a namespace alive and a /tmp/rwd-* directory behind for every engine started.
        for mnt in sorted(mounts_under(self.dir), reverse=True):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
