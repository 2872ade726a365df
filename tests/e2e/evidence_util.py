"""Helpers shared by the evidence e2e tests: real runs with a key, DSSE PAE, envelope I/O."""
import base64
import hashlib
import json
import os
import subprocess

from rwtest import RW


def pae(payload_type: bytes, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding, computed independently of runwarden."""
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type, len(body), body)


def b64d(s: str) -> bytes:
    """Standard or URL-safe base64, padded or not."""
    s = s.replace("-", "+").replace("_", "/")
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def rw(*args, timeout=120):
    return subprocess.run([RW, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def keygen(prefix, ecdsa=False):
    p = rw("keygen", "--out", prefix, *(["--ecdsa"] if ecdsa else []))
    assert p.returncode == 0, p.stderr.decode()
    return prefix + ".key", prefix + ".pub"


def signed_run(outdir, key, cmd, *opts):
    """A real `runwarden run` that signs its evidence (key None: ephemeral)."""
    args = ["run", "--out", outdir, "--quiet", *opts]
    if key:
        args += ["--key", key]
    p = rw(*args, "--", *cmd, timeout=180)
    assert p.returncode == 0, p.stderr.decode()
    return outdir


def verify(key, attestation, *opts):
    """Runs `runwarden verify --json`; returns (exit code, report dict)."""
    p = rw("verify", "--json", "--key", key, *opts, attestation)
    try:
        report = json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"verify printed no JSON: {p.stdout!r} {p.stderr!r}")
    return p.returncode, report


def load_envelope(path):
    with open(path) as f:
        return json.load(f)


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return path
