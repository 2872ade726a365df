"""End-to-end: attestation.sigstore.json verified by @sigstore/verify (npm), offline.

The verifier trusts only the run's public key (a public-key trust material,
zero tlog/ctlog/timestamp thresholds). Its dependencies are pinned in
tests/e2e/sigstore/package-lock.json and installed with `npm ci` when missing.
"""
import json
import os
import shutil
import subprocess
import unittest

from evidence_util import keygen, load_envelope, signed_run, write_json
from rwtest import RwTestCase

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sigstore")


def npm_ready():
    if os.path.isdir(os.path.join(HERE, "node_modules", "@sigstore", "verify")):
        return
    subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=HERE,
                   check=True, stdout=subprocess.DEVNULL, timeout=600)


def node_verify(bundle, pub):
    p = subprocess.run(["node", os.path.join(HERE, "verify.cjs"), bundle, pub],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode()


@unittest.skipUnless(shutil.which("node") and shutil.which("npm"), "node/npm not installed")
class SigstoreInteropTest(RwTestCase):
    @classmethod
    def setUpClass(cls):
        npm_ready()

    def test_sigstore_js_verifies_bundles(self):
        for ecdsa in (False, True):
            with self.subTest(ecdsa=ecdsa):
                key, pub = keygen(os.path.join(self.tmp, f"k{int(ecdsa)}"), ecdsa=ecdsa)
                out = signed_run(os.path.join(self.tmp, f"out{int(ecdsa)}"), key,
                                 ["sh", "-c", "true"])
                bundle = os.path.join(out, "attestation.sigstore.json")
                rc, msg = node_verify(bundle, pub)
                self.assertEqual(rc, 0, msg)
                # Tampered payload: rejected by sigstore-js too.
                b = load_envelope(bundle)
                p = b["dsseEnvelope"]["payload"]
                b["dsseEnvelope"]["payload"] = p[:20] + ("A" if p[20] != "A" else "B") + p[21:]
                rc, msg = node_verify(write_json(os.path.join(self.tmp, "t.json"), b), pub)
                self.assertEqual(rc, 1, msg)
                # Another key: rejected.
                _, other = keygen(os.path.join(self.tmp, f"other{int(ecdsa)}"), ecdsa=ecdsa)
                rc, msg = node_verify(bundle, other)
                self.assertEqual(rc, 1, msg)

    def test_ephemeral_bundle(self):
        out = signed_run(os.path.join(self.tmp, "out"), None, ["true"])
        rc, msg = node_verify(os.path.join(out, "attestation.sigstore.json"),
                              os.path.join(out, "ephemeral.pub.pem"))
        self.assertEqual(rc, 0, msg)
