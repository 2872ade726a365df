"""HTTP inside TLS for the clients that are not built on OpenSSL's libssl (issue #12): GnuTLS
(apt's https method, git over https through libcurl-gnutls, wget), read at
gnutls_record_send/gnutls_record_recv, and npm (node's own OpenSSL) against the real registry.

Real clients against real servers: an apt repository and a git smart-HTTP server (git
http-backend) served over TLS on loopback by Python, with a certificate from a CA this test
makes; names under .test from a dnsmasq the test starts. npm reaches the registry its own
configuration names, through npm only. Nothing else leaves loopback.
"""
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from rwtest import RW, Dnsmasq, Run, RwTestCase
from test_clients import RESOLV, LoopbackHttp, npm_registry_host
from test_tls import make_ca

DNS = "127.0.78.53"
APT, GIT = "127.0.78.1", "127.0.78.2"
PKGS, VER = ("rwtest-gnutls-a", "rwtest-gnutls-b", "rwtest-gnutls-c"), "1.0"


def build_deb(root, pkg, size):
    """A real Debian package of about `size` bytes, with dpkg-deb: its file name."""
    src = os.path.join(root, "src")
    os.makedirs(os.path.join(src, "DEBIAN"))
    os.makedirs(os.path.join(src, "usr", "share", pkg))
    with open(os.path.join(src, "DEBIAN", "control"), "w") as f:
        f.write(f"Package: {pkg}\nVersion: {VER}\nArchitecture: all\n"
                "Maintainer: runwarden tests <tests@runwarden.test>\n"
                "Description: runwarden test package\n")
    with open(os.path.join(src, "usr", "share", pkg, "data"), "wb") as f:
        f.write(os.urandom(size))  # does not compress: the size holds
    deb = f"{pkg}_{VER}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", src,
                    os.path.join(root, deb)], check=True, capture_output=True)
    shutil.rmtree(src)
    return deb


def build_flat_repo(root):
    """A flat apt repository (`deb [trusted=yes] URL ./`): three packages of different sizes,
    their Packages index and a Release file that names the index by hash (unsigned:
    trusted=yes). Returns the packages' file names."""
    os.makedirs(root)
    debs = []
    with open(os.path.join(root, "Packages"), "w") as idx:
        for i, pkg in enumerate(PKGS):
            deb = build_deb(root, pkg, 1000 + 50000 * i)
            with open(os.path.join(root, deb), "rb") as f:
                data = f.read()
            idx.write(f"Package: {pkg}\nVersion: {VER}\nArchitecture: all\n"
                      "Maintainer: runwarden tests <tests@runwarden.test>\n"
                      f"Filename: ./{deb}\nSize: {len(data)}\n"
                      f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
                      "Description: runwarden test package\n\n")
            debs.append(deb)
    with open(os.path.join(root, "Packages"), "rb") as f:
        idx = f.read()
    with open(os.path.join(root, "Release"), "w") as f:
        f.write("Origin: runwarden-tests\nLabel: runwarden-tests\nSuite: test\n"
                f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S UTC', time.gmtime())}\n"
                f"SHA256:\n {hashlib.sha256(idx).hexdigest()} {len(idx)} Packages\n")
    return debs


def git_repo(root):
    """A bare repository with one commit, under root/repo.git."""
    bare = os.path.join(root, "repo.git")
    work = os.path.join(root, "work")
    g = ["git", "-C", work, "-c", "user.name=t", "-c", "user.email=t@t.test"]
    subprocess.run(["git", "init", "-q", "--bare", bare], check=True)
    subprocess.run(["git", "init", "-q", work], check=True)
    with open(os.path.join(work, "README"), "w") as f:
        f.write("runwarden\n")
    subprocess.run(g + ["add", "README"], check=True)
    subprocess.run(g + ["commit", "-qm", "one"], check=True)
    subprocess.run(g + ["push", "-q", bare, "HEAD:refs/heads/main"], check=True)
    subprocess.run(["git", "-C", bare, "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
    shutil.rmtree(work)


def npm_fetched_tarballs(cache):
    """The tarball URLs npm fetched into this cache, as its index (cacache) records them."""
    urls = []
    for d, _, files in os.walk(os.path.join(cache, "_cacache", "index-v5")):
        for name in files:
            with open(os.path.join(d, name)) as f:
                for line in f:
                    if "\t" in line:
                        url = json.loads(line.split("\t", 1)[1])["metadata"]["url"]
                        if url.endswith(".tgz"):
                            urls.append(url)
    return urls


class GnuTls(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="rw-gnutls-")
        os.chmod(cls.root, 0o755)  # apt's methods run as _apt: they read the CA from here
        cls.ca, crt, key = make_ca(cls.root, names=("apt.test", "git.test"))
        os.chmod(cls.ca, 0o644)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        ctx.set_alpn_protocols(["http/1.1"])
        cls.debs = build_flat_repo(os.path.join(cls.root, "repo"))
        cls.apt = LoopbackHttp(APT, os.path.join(cls.root, "repo"), tls=ctx)
        git_repo(os.path.join(cls.root, "git"))
        cls.git = LoopbackHttp(GIT, os.path.join(cls.root, "git"), git=True, tls=ctx)
        cls.dns = Dnsmasq(DNS, records=[("apt.test", APT), ("git.test", GIT)])
        cls.resolv = os.path.join(cls.root, "resolv.conf")
        with open(cls.resolv, "w") as f:
            f.write(f"nameserver {DNS}\n")

    @classmethod
    def tearDownClass(cls):
        cls.apt.stop()
        cls.git.stop()
        cls.dns.stop()
        shutil.rmtree(cls.root, True)

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        self.apt.requests.clear()
        self.git.requests.clear()

    def job(self, script, loopback=True, timeout=180, policy=None):
        """`runwarden run` (observe, or the policy's mode) of `sh -c script`, with
        /etc/resolv.conf naming the test's dnsmasq when loopback; $CA is the test CA."""
        out = os.path.join(self.tmp, "out")
        argv = [RW, "run", "--out", out, "--no-sign", *(["--policy", policy] if policy else []),
                "--", "sh", "-c", script]
        if loopback:
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", RESOLV, "sh", *argv]
        env = dict(os.environ, RW_RESOLV=self.resolv, CA=self.ca)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        return Run(p.returncode, p.stderr, out, p.stdout)

    def http(self, run, **match):
        return [e for e in run.of("http", **match) if e.get("content_seen") is not False]

    def assertNoneUnseen(self, run):
        self.assertEqual([e for e in run.of("http") if e.get("content_seen") is False], [],
                         run.of("http"))

    # ------------------------------------------------------------ apt

    def apt_opts(self):
        state = os.path.join(self.tmp, "apt")
        for d in ("lists/partial", "cache/archives/partial"):
            os.makedirs(os.path.join(state, d), exist_ok=True)
        sources = os.path.join(state, "sources.list")
        with open(sources, "w") as f:
            f.write(f"deb [trusted=yes] https://apt.test:{self.apt.port}/ ./\n")
        return (f"-o Dir::Etc::SourceList={sources} -o Dir::Etc::SourceParts=- "
                f"-o Dir::State::Lists={state}/lists -o Dir::Cache={state}/cache "
                f"-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=- "
                f"-o APT::Get::List-Cleanup=false -o Acquire::Languages=none "
                f'-o Acquire::https::CaInfo="$CA"')

    def test_apt_update_and_download_over_https(self):
        """apt-get update and apt-get download from a loopback https repository: apt's https
        method (GnuTLS) makes every request, each one an `http` line with library gnutls. The
        three packages are fetched on one connection, pipelined (apt sends the next requests
        before the first response): each line still pairs a request with its own response (the
        packages differ in size)."""
        work = os.path.join(self.tmp, "work")
        os.makedirs(work)
        os.chmod(work, 0o777)  # apt's method writes the download as _apt
        opts = self.apt_opts()
        run = self.job(f"apt-get -q {opts} update && cd {work} && "
                       f"apt-get -q {opts} download {' '.join(PKGS)}")
        self.assertEqual(run.rc, 0, run.stderr + run.stdout)
        for deb in self.debs:
            self.assertTrue(os.path.exists(os.path.join(work, deb)), run.stdout)
        lines = self.http(run)
        seen = [(e["method"], e["path"]) for e in lines]
        served = [p for p in self.apt.requests]
        self.assertTrue(served, "the server got no request")
        # every request the server answered is a line, in order, and nothing else is
        self.assertEqual(seen, [("GET", p) for p in served], lines)
        self.assertIn(("GET", "/./Packages"), seen)
        for e in lines:
            self.assertEqual((e["library"], e["authority"], e["protocol"], e["decoded"]),
                             ("gnutls", "apt.test", "http/1.1", True), e)
            self.assertEqual(e["argv"][0], "/usr/lib/apt/methods/https", e)
            self.assertIn(e["status"], (200, 404), e)
        for deb in self.debs:
            got = [(e["status"], e["response_body_bytes"]) for e in lines
                   if e["path"] == f"/./{deb}"]
            size = os.path.getsize(os.path.join(self.root, "repo", deb))
            self.assertEqual(got, [(200, size)], lines)
        self.assertNoneUnseen(run)

    # ------------------------------------------------------------ git

    def test_git_clone_over_https(self):
        """git clone over https: git-remote-https (libcurl-gnutls) makes the smart-HTTP
        requests, the ref advertisement GET and the upload-pack POSTs, each an `http` line."""
        dest = os.path.join(self.tmp, "clone")
        run = self.job(f'GIT_SSL_CAINFO="$CA" git clone -q '
                       f"https://git.test:{self.git.port}/repo.git {dest}")
        self.assertEqual(run.rc, 0, run.stderr)
        self.assertTrue(os.path.exists(os.path.join(dest, "README")))
        lines = self.http(run)
        seen = [(e["method"], e["path"]) for e in lines]
        self.assertEqual(len(seen), len(self.git.requests), (seen, self.git.requests))
        self.assertEqual([p for _, p in seen], self.git.requests)
        self.assertEqual(seen[0], ("GET", "/repo.git/info/refs?service=git-upload-pack"))
        self.assertIn(("POST", "/repo.git/git-upload-pack"), seen)
        for e in lines:
            self.assertEqual((e["library"], e["authority"], e["status"]),
                             ("gnutls", "git.test", 200), e)
            self.assertTrue(e["argv"][0].endswith("/git-remote-https"), e)
        post = [e for e in lines if e["method"] == "POST"][-1]
        self.assertGreater(post["request_body_bytes"], 0, post)
        self.assertNoneUnseen(run)

    def test_methods_and_fronting_judged_for_gnutls_clients(self):
        """`methods:` and the Host check hold for GnuTLS clients too (gnutls_record_send,
        with the name from gnutls_server_name_set): git.test allows GET only, so git's
        upload-pack POST is stopped before it is sent and the clone fails; wget asking apt.test
        (allowed by name) for another Host is stopped too. The servers see neither."""
        policy = os.path.join(self.tmp, "policy.yaml")
        with open(policy, "w") as f:
            f.write(f"version: 1\nmode: enforce\nallow:\n"
                    f"  - host: git.test\n    ports: [{self.git.port}]\n    methods: [GET]\n"
                    f"  - host: apt.test\n    ports: [{self.apt.port}]\n"
                    f"  - ip: {DNS}\ndns:\n  upstream: {DNS}\n")
        dest = os.path.join(self.tmp, "clone")
        # HTTP/1.1 only: libcurl offers h2, which a host with `methods:` refuses at the hello
        run = self.job(f'GIT_SSL_CAINFO="$CA" git -c http.version=HTTP/1.1 clone -q '
                       f"https://git.test:{self.git.port}/repo.git {dest}; echo git=$?; "
                       f'wget -q -O /dev/null --ca-certificate="$CA" --header "Host: evil.test" '
                       f"https://apt.test:{self.apt.port}/Release; echo wget=$?; "
                       f'wget -q -O /dev/null --ca-certificate="$CA" '
                       f"https://apt.test:{self.apt.port}/Release; echo plain=$?", policy=policy)
        got = dict(l.split("=", 1) for l in run.stdout.split() if "=" in l)
        self.assertNotEqual(got.get("git"), "0", run.stdout + run.stderr)
        self.assertNotEqual(got.get("wget"), "0", run.stdout + run.stderr)
        self.assertEqual(got.get("plain"), "0", run.stdout + run.stderr)
        self.assertFalse(os.path.exists(os.path.join(dest, "README")))
        self.assertEqual(self.git.requests, ["/repo.git/info/refs?service=git-upload-pack"])
        self.assertEqual(self.apt.requests, ["/Release"])  # the allowed wget only
        verdicts = [(e["method"], e["authority"], e["reason"], e["stopped"])
                    for e in run.of("http_verdict")]
        self.assertEqual(verdicts, [("POST", "git.test", "method_not_allowed", True),
                                    ("GET", "evil.test", "host_mismatch", True)], run.events)
        # a stopped request is no transaction: only what was sent has an `http` line
        self.assertEqual([(e["method"], e["authority"], e["path"]) for e in self.http(run)],
                         [("GET", "git.test", "/repo.git/info/refs?service=git-upload-pack"),
                          ("GET", "apt.test", "/Release")])

    # ------------------------------------------------------------ wget

    def test_wget(self):
        """wget is built on GnuTLS directly."""
        run = self.job(f'wget -q -O /dev/null --ca-certificate="$CA" '
                       f"https://apt.test:{self.apt.port}/Release")
        self.assertEqual(run.rc, 0, run.stderr)
        lines = self.http(run)
        self.assertEqual([(e["library"], e["method"], e["path"], e["status"]) for e in lines],
                         [("gnutls", "GET", "/Release", 200)], lines)
        self.assertTrue(lines[0]["exe"].endswith("/wget"), lines[0])
        self.assertNoneUnseen(run)

    # ------------------------------------------------------------ npm, the real registry

    @unittest.skipUnless(shutil.which("npm"), "npm not installed")
    def test_npm_install_tarballs(self):
        """npm install from the registry npm's own configuration names (node's OpenSSL): every
        tarball npm fetched (the URLs its cache recorded; one per package installed) is a GET
        line with the registry's name and the package's path, answered 200."""
        host = npm_registry_host()
        dest = os.path.join(self.tmp, "npm")
        os.makedirs(dest)
        # is-odd depends on is-number: two tarballs; a fresh cache, so both are fetched
        run = self.job(f"npm install --no-audit --no-fund --no-update-notifier "
                       f"--cache {dest}/.cache --prefix {dest} is-odd@3.0.1",
                       loopback=False, timeout=300)
        self.assertEqual(run.rc, 0, run.stderr + run.stdout)
        tarballs = npm_fetched_tarballs(os.path.join(dest, ".cache"))
        with open(os.path.join(dest, "package-lock.json")) as f:
            lock = json.load(f)
        installed = {k.rsplit("node_modules/", 1)[1]: p["version"]
                     for k, p in lock["packages"].items() if k}
        self.assertEqual(sorted(installed), ["is-number", "is-odd"], lock)
        self.assertEqual(sorted(urllib.parse.urlsplit(u).path for u in tarballs),
                         sorted(f"/{n}/-/{n}-{v}.tgz" for n, v in installed.items()), tarballs)
        gets = {(e["authority"], e["path"]): e for e in self.http(run, method="GET")}
        for url in tarballs:
            u = urllib.parse.urlsplit(url)
            self.assertEqual(u.hostname, host)
            e = gets.get((host, u.path))
            self.assertIsNotNone(e, (url, sorted(gets)))
            self.assertEqual((e["status"], e["library"]), (200, "openssl"), e)
            self.assertTrue(e["exe"].endswith("node"), e)


if __name__ == "__main__":
    unittest.main()
