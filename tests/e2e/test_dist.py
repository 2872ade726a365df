"""The release binary runs on the runners users have, not only on Debian 12.

GitHub's hosted runners are Ubuntu 22.04 and 24.04: their libbpf, libgit2, jansson and libyaml
are other versions or absent, and glibc 2.35 is the oldest there. The binary in `make dist`'s
tarball must therefore need only glibc (no symbol newer than 2.35), libcrypto.so.3, libcurl.so.4
and libgssapi_krb5.so.2 (see LDLIBS_SHIP in the Makefile), and must work with every other
library it was built against missing: this test hides them (bind mounts of an empty file in a
private mount namespace, so the machine is untouched) and runs a real job, signed and verified,
with the unpacked binary. Loopback only: one connect to a TCP server on 127.0.46.1.
"""
import os
import re
import subprocess

from rwtest import Run, RwTestCase, TcpServer
from test_action import dist_tarball

ALLOWED = {"libc.so.6", "libm.so.6", "libresolv.so.2", "libpthread.so.0", "libdl.so.2",
           "librt.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
           "libcrypto.so.3", "libcurl.so.4", "libgssapi_krb5.so.2",
           "libnghttp2.so.14",  # libcurl.so.4's own dependency: there wherever it is
           # Hyperscan's C++ runtime (src/secrets/): part of every such system's base
           "libstdc++.so.6", "libgcc_s.so.1"}
# The oldest glibc on a supported runner (Ubuntu 22.04).
GLIBC_MAX = (2, 35)
# What Debian 12 has and the runners may not: none of it may be needed (those the allowed
# libraries load themselves, libcurl's libssh2 and zlib here, stay: a runner's own libcurl
# brings its own).
HIDDEN = ["libbpf.so.1", "libgit2.so.1.5", "libjansson.so.4", "libyaml-0.so.2",
          "libsqlite3.so.0", "libelf.so.1", "libz.so.1", "libmbedtls.so.14",
          "libssh2.so.1", "libhttp_parser.so.2.9", "libpcre2-8.so.0"]
LIBDIR = "/usr/lib/x86_64-linux-gnu"


def loaded_by_allowed():
    """Every library the allowed ones load, as sonames (ldd resolves their dependencies)."""
    names = set()
    for lib in ("libcrypto.so.3", "libcurl.so.4", "libgssapi_krb5.so.2"):
        out = subprocess.run(["ldd", os.path.join(LIBDIR, lib)], capture_output=True, text=True)
        names |= set(re.findall(r"^\s*(\S+) =>", out.stdout, re.M))
    return names


def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True)
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout))


def glibc_versions(path):
    out = subprocess.run(["objdump", "-T", path], capture_output=True, text=True, check=True)
    return {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_([0-9.]+)", out.stdout)}


class DistTest(RwTestCase):
    def setUp(self):
        super().setUp()
        # our own artifact; tar(1), as a user would (tarfile's filter= is Python 3.11.4+)
        subprocess.run(["tar", "-xzf", dist_tarball(), "-C", self.tmp], check=True)
        (top,) = [d for d in os.listdir(self.tmp) if d.startswith("runwarden-")]
        self.bin = os.path.join(self.tmp, top, "bin", "runwarden")

    def test_needs_only_what_every_runner_has(self):
        libs = needed(self.bin)
        self.assertTrue(libs, "no NEEDED entries: not a dynamic binary?")
        self.assertLessEqual(libs, ALLOWED, f"the release binary needs {sorted(libs - ALLOWED)}")
        newest = max(glibc_versions(self.bin))
        self.assertLessEqual(newest, GLIBC_MAX, f"needs GLIBC_{'.'.join(map(str, newest))}")

    def test_runs_a_signed_job_with_debians_libraries_hidden(self):
        srv = TcpServer("127.0.46.1")
        self.addCleanup(srv.stop)
        keep = loaded_by_allowed()
        hide = [os.path.join(LIBDIR, n) for n in HIDDEN
                if n not in keep and os.path.exists(os.path.join(LIBDIR, n))]
        self.assertIn(os.path.join(LIBDIR, "libbpf.so.1"), hide)  # the point of the test
        empty = os.path.join(self.tmp, "empty")
        open(empty, "w").close()
        key = os.path.join(self.tmp, "k")
        out = os.path.join(self.tmp, "out")
        job = ("import socket; s = socket.create_connection(('127.0.46.1', %d)); s.close()"
               % srv.port)
        # Everything runs behind the bind mounts; the shell gets paths as arguments, never code.
        script = ('set -e; e=$1; b=$2; k=$3; o=$4; j=$5; shift 5\n'
                  'for l in "$@"; do mount --bind "$e" "$l"; done\n'
                  '"$b" --version\n'
                  '"$b" keygen --out "$k"\n'
                  '"$b" run --out "$o" --key "$k.key" --kernel private -- python3 -c "$j"\n'
                  '"$b" verify --key "$k.pub" "$o/attestation.dsse.json"\n')
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                            "sh", empty, self.bin, key, out, job, *hide],
                           capture_output=True, text=True, timeout=180)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("runwarden", p.stdout)
        r = Run(0, p.stderr, out)
        r.verify_chain()
        self.assertTrue(r.of("connect", daddr="127.0.46.1"), p.stderr)
        # and the libraries were really gone for it
        q = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            'mount --bind "$1" "$2" && exec python3 -c "import ctypes; '
                            'ctypes.CDLL(\'libbpf.so.1\')"', "sh", empty, hide[0]],
                           capture_output=True, text=True)
        self.assertNotEqual(q.returncode, 0, "libbpf.so.1 was still loadable")


if __name__ == "__main__":
    import unittest
    unittest.main()
