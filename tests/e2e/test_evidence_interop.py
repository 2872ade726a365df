"""End-to-end: runwarden's signed evidence checked by an independent implementation.

Python's `cryptography` (Debian's python3-cryptography) recomputes the DSSE PAE
and verifies runwarden's Ed25519 and ECDSA signatures; envelopes signed in
Python (and the DSSE specification's own test vector) are fed to
`runwarden verify`; and a tamper corpus on real runs must be rejected, each
for the right reason. All runs are real `runwarden run` jobs.
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from evidence_util import (b64d, keygen, load_envelope, pae, rw, sha256_file, signed_run,
                           verify, write_json)
from rwtest import RwTestCase

INTOTO = b"application/vnd.in-toto+json"


def spki_keyid(pub):
    der = pub.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def load_pub(path):
    with open(path, "rb") as f:
        return serialization.load_pem_public_key(f.read())


def py_verify(pub, sig, msg):
    if isinstance(pub, ed25519.Ed25519PublicKey):
        pub.verify(sig, msg)
    else:
        pub.verify(sig, msg, ec.ECDSA(hashes.SHA256()))


class EvidenceInteropTest(RwTestCase):
    def setUp(self):
        super().setUp()
        self.ed_key, self.ed_pub = keygen(os.path.join(self.tmp, "ed"))
        self.ec_key, self.ec_pub = keygen(os.path.join(self.tmp, "ec"), ecdsa=True)

    def job(self, key, name="out", cmd=None):
        cmd = cmd or ["sh", "-c", "/bin/echo hidden-arg-4711 >/dev/null; cat /etc/hostname >/dev/null"]
        return signed_run(os.path.join(self.tmp, name), key, cmd)

    def check_statement(self, out, payload):
        st = json.loads(payload)
        self.assertEqual(st["_type"], "https://in-toto.io/Statement/v1")
        self.assertEqual(st["predicateType"], "https://in-toto.io/attestation/runtime-trace/v0.1")
        (log,) = [s for s in st["subject"] if s["annotations"]["role"] == "event-log"]
        path = os.path.join(out, "events.ndjson")
        self.assertEqual(log["digest"]["sha256"], sha256_file(path))
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        close = json.loads(lines[-1])
        self.assertEqual(close["kind"], "close")
        self.assertEqual(log["annotations"]["chainRoot"], close["root"])
        self.assertEqual(log["annotations"]["chainHead"],
                         hashlib.sha256(lines[-1] + b"\n").hexdigest())
        self.assertEqual(log["annotations"]["lines"], len(lines))
        pred = st["predicate"]
        for k in ("monitor", "monitoredProcess", "monitorLog", "metadata"):
            self.assertIn(k, pred)
        self.assertTrue(pred["metadata"]["buildStartedOn"].endswith("Z"))
        # The exec summary hashes arguments; the argument itself never appears.
        echo = [p for p in pred["monitorLog"]["process"] if p["processBinary"].endswith("/echo")]
        self.assertEqual(len(echo), 1, pred["monitorLog"]["process"])
        self.assertEqual(echo[0]["firstArgumentSha256"],
                         hashlib.sha256(b"hidden-arg-4711").hexdigest())
        # What ran, by content: the in-toto exec summary's digest.
        binary = echo[0]["processBinary"]
        self.assertEqual(echo[0]["digest"], {"sha256": sha256_file(binary)})
        self.assertEqual(echo[0]["inode"], os.stat(binary).st_ino)
        self.assertNotIn(b"hidden-arg-4711", payload)
        return st

    def test_python_verifies_runwarden_signatures(self):
        for key, pubpath in ((self.ed_key, self.ed_pub), (self.ec_key, self.ec_pub)):
            with self.subTest(key=os.path.basename(key)):
                out = self.job(key, name="out-" + os.path.basename(key))
                pub = load_pub(pubpath)
                for name in ("attestation.dsse.json", "attestation.sigstore.json"):
                    doc = load_envelope(os.path.join(out, name))
                    env = doc.get("dsseEnvelope", doc)
                    self.assertEqual(env["payloadType"], INTOTO.decode())
                    payload = b64d(env["payload"])
                    (sig,) = env["signatures"]
                    self.assertEqual(sig["keyid"], spki_keyid(pub))
                    py_verify(pub, b64d(sig["sig"]), pae(INTOTO, payload))
                    with self.assertRaises(InvalidSignature):
                        py_verify(pub, b64d(sig["sig"]), pae(INTOTO, payload + b" "))
                    self.check_statement(out, payload)
                bundle = load_envelope(os.path.join(out, "attestation.sigstore.json"))
                self.assertEqual(bundle["mediaType"],
                                 "application/vnd.dev.sigstore.bundle.v0.3+json")
                self.assertEqual(bundle["verificationMaterial"]["publicKey"]["hint"],
                                 spki_keyid(pub))
                rc, rep = verify(pubpath, os.path.join(out, "attestation.dsse.json"))
                self.assertEqual((rc, rep["verdict"]), (0, "valid"), rep)

    def test_runwarden_accepts_python_signed_envelopes(self):
        out = self.job(self.ed_key)
        payload = b64d(load_envelope(os.path.join(out, "attestation.dsse.json"))["payload"])
        log = os.path.join(out, "events.ndjson")
        ed = ed25519.Ed25519PrivateKey.generate()
        p256 = ec.generate_private_key(ec.SECP256R1())
        for name, priv, sign in (
                ("ed", ed, lambda m: ed.sign(m)),
                ("ec", p256, lambda m: p256.sign(m, ec.ECDSA(hashes.SHA256())))):
            pubpath = os.path.join(self.tmp, f"py-{name}.pub")
            with open(pubpath, "wb") as f:
                f.write(priv.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
            sig = sign(pae(INTOTO, payload))
            for enc in ("std", "url"):
                with self.subTest(key=name, base64=enc):
                    if enc == "std":
                        b = lambda x: base64.b64encode(x).decode()
                    else:  # URL-safe, unpadded
                        b = lambda x: base64.urlsafe_b64encode(x).decode().rstrip("=")
                    env = {"payloadType": INTOTO.decode(), "payload": b(payload),
                           "signatures": [{"sig": b(sig)}], "unknownField": {"x": 1}}
                    att = write_json(os.path.join(self.tmp, f"py-{name}-{enc}.json"), env)
                    rc, rep = verify(pubpath, att, "--log", log)
                    self.assertEqual((rc, rep["verdict"]), (0, "valid"), rep)
                    # ... and the same envelope fails for runwarden's own key.
                    rc, rep = verify(self.ed_pub, att, "--log", log)
                    self.assertEqual((rc, rep["code"]), (1, "signature"), rep)
        # ECDSA as raw r||s (what the DSSE spec's vector uses) is not accepted.
        der = p256.sign(pae(INTOTO, payload), ec.ECDSA(hashes.SHA256()))
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        r, s = decode_dss_signature(der)
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        env = {"payloadType": INTOTO.decode(), "payload": base64.b64encode(payload).decode(),
               "signatures": [{"sig": base64.b64encode(raw).decode()}]}
        att = write_json(os.path.join(self.tmp, "raw.json"), env)
        rc, rep = verify(os.path.join(self.tmp, "py-ec.pub"), att, "--log", log)
        self.assertEqual((rc, rep["code"]), (1, "signature"), rep)

    def test_dsse_spec_and_selfmade_vectors(self):
        # DSSE protocol.md vector: ECDSA P-256, raw r||s converted to DER.
        x = 46950820868899156662930047687818585632848591499744589407958293238635476079160
        y = 5640078356564379163099075877009565129882514886557779369047442380624545832820
        pub = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        pubpath = os.path.join(self.tmp, "spec.pub")
        with open(pubpath, "wb") as f:
            f.write(pub.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo))
        raw = base64.b64decode("A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfU"
                               "iHqJPcIAriEGAHTVeCUjW2JIZA==")
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        self.assertEqual(pae(b"http://example.com/HelloWorld", b"hello world"),
                         b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")
        env = {"payload": "aGVsbG8gd29ybGQ=", "payloadType": "http://example.com/HelloWorld",
               "signatures": [{"sig": base64.b64encode(der).decode()}]}
        att = write_json(os.path.join(self.tmp, "spec.json"), env)
        rc, rep = verify(pubpath, att)
        # The signature verifies; the payload is simply not an in-toto statement.
        self.assertEqual((rc, rep["code"]), (1, "payload-type"), rep)
        env["payload"] = "aGVsbG8gd29ybGR="  # canonical twin attempt: one bit more
        rc, rep = verify(pubpath, write_json(att, env))
        self.assertEqual((rc, rep["code"]), (1, "envelope"), rep)

        # REFERENCE.md self-made Ed25519 vector: seed 00..1f.
        priv = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
        pubpath = os.path.join(self.tmp, "selfmade.pub")
        with open(pubpath, "wb") as f:
            f.write(priv.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        payload = (b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"hello.txt",'
                   b'"digest":{"sha256":"b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"}}],'
                   b'"predicateType":"https://in-toto.io/attestation/runtime-trace/v0.1","predicate":{}}')
        sig = "MPeVbIoIieWd9r4hhihRJ8g/fSmBpdSaEXtvdqkjCpU3vLGegh3NZhbCU4b0GlGF4Hil91KpGw7RfL27+Ka5Aw=="
        self.assertEqual(base64.b64encode(priv.sign(pae(INTOTO, payload))).decode(), sig)
        env = {"payload": base64.b64encode(payload).decode(), "payloadType": INTOTO.decode(),
               "signatures": [{"keyid": "a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5",
                               "sig": sig}]}
        att = write_json(os.path.join(self.tmp, "selfmade.json"), env)
        rc, rep = verify(pubpath, att)
        self.assertEqual(rep["key"]["keyid"],
                         "a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5")
        # Signature and statement type pass; it carries no runwarden event log subject.
        self.assertEqual((rc, rep["code"]), (1, "statement"), rep)
        self.assertIn("event-log", rep["reason"])

    def test_tamper_corpus_on_real_runs(self):
        out = self.job(self.ed_key)
        other = self.job(self.ed_key, name="other",
                         cmd=["sh", "-c", "/bin/echo another-run; true"])
        att = os.path.join(out, "attestation.dsse.json")
        log = os.path.join(out, "events.ndjson")
        with open(log, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        self.assertGreaterEqual(len(lines), 4)
        env = load_envelope(att)

        def log_case(name, new_lines, code, line=None):
            p = os.path.join(self.tmp, name + ".ndjson")
            with open(p, "wb") as f:
                f.write(b"".join(l + b"\n" for l in new_lines))
            rc, rep = verify(self.ed_pub, att, "--log", p)
            self.assertEqual((rc, rep["verdict"], rep["code"]), (1, "invalid", code), rep)
            if line is not None:
                self.assertEqual(rep["line"], line, rep)

        def env_case(name, mutate, code, key=None):
            e = json.loads(json.dumps(env))
            mutate(e)
            p = write_json(os.path.join(self.tmp, name + ".json"), e)
            rc, rep = verify(key or self.ed_pub, p, "--log", log)
            self.assertEqual((rc, rep["verdict"], rep["code"]), (1, "invalid", code), rep)

        def flip(s, i):
            return s[:i] + ("B" if s[i] != "B" else "C") + s[i + 1:]

        with self.subTest("flipped byte in the payload"):
            env_case("p", lambda e: e.update(payload=flip(e["payload"], 40)), "signature")
        with self.subTest("flipped byte in the payloadType"):
            env_case("t", lambda e: e.update(payloadType="application/vnd.in-toto+jsoN"),
                     "signature")
        with self.subTest("flipped byte in the signature"):
            env_case("s", lambda e: e["signatures"][0].update(sig=flip(e["signatures"][0]["sig"], 3)),
                     "signature")
        with self.subTest("payload swapped for another run's"):
            o = load_envelope(os.path.join(other, "attestation.dsse.json"))
            env_case("swap", lambda e: e.update(payload=o["payload"]), "signature")
            rc, rep = verify(self.ed_pub, os.path.join(other, "attestation.dsse.json"), "--log", log)
            self.assertEqual((rc, rep["code"]), (1, "log-mismatch"), rep)
        with self.subTest("a different key"):
            rc, rep = verify(self.ec_pub, att)
            self.assertEqual((rc, rep["code"]), (1, "signature"), rep)
        with self.subTest("key id lying about the key"):
            # Signed by the ECDSA key, claiming the Ed25519 key's id.
            ec_out = self.job(self.ec_key, name="ec-out")
            e2 = load_envelope(os.path.join(ec_out, "attestation.dsse.json"))
            e2["signatures"][0]["keyid"] = spki_keyid(load_pub(self.ed_pub))
            p = write_json(os.path.join(self.tmp, "liar.json"), e2)
            rc, rep = verify(self.ed_pub, p, "--log", os.path.join(ec_out, "events.ndjson"))
            self.assertEqual((rc, rep["code"]), (1, "signature"), rep)
            self.assertIn("key ids are not trusted", rep["reason"])
        with self.subTest("flipped byte in a log line"):
            l2 = bytearray(lines[1])
            i = l2.index(b'"ts":"') + 8
            l2[i] ^= 1
            log_case("flip", [lines[0], bytes(l2)] + lines[2:], "prev", 3)
        with self.subTest("a line dropped"):
            log_case("drop", lines[:1] + lines[2:], "seq", 2)
        with self.subTest("lines swapped"):
            log_case("swap", [lines[0], lines[2], lines[1]] + lines[3:], "seq", 2)
        with self.subTest("closing record removed"):
            log_case("noclose", lines[:-1], "no-close", len(lines) - 1)
        with self.subTest("closing record altered"):
            close = lines[-1].replace(b'"complete":true', b'"complete":false ')
            self.assertNotEqual(close, lines[-1])
            log_case("close", lines[:-1] + [close], "log-mismatch", len(lines))
        with self.subTest("hostile attestation files"):
            for i, blob in enumerate([b"", b"\x00" * 100, b"{" * 100000, b'{"payload":1}',
                                      b"[" + b"1," * 1000000 + b"1]"]):
                p = os.path.join(self.tmp, f"hostile{i}.json")
                with open(p, "wb") as f:
                    f.write(blob)
                rc, rep = verify(self.ed_pub, p, "--log", log)
                self.assertEqual((rc, rep["code"]), (1, "envelope"), rep)

    def test_ephemeral_key_is_self_consistent_only(self):
        out = self.job(None)
        eph = os.path.join(out, "ephemeral.pub.pem")
        self.assertTrue(os.path.exists(eph))
        rc, rep = verify(eph, os.path.join(out, "attestation.dsse.json"))
        self.assertEqual((rc, rep["verdict"]), (3, "self-consistent"), rep)
        p = rw("verify", "--key", eph, os.path.join(out, "attestation.dsse.json"))
        self.assertEqual(p.returncode, 3)
        self.assertTrue(p.stdout.startswith(b"self-consistent only:"), p.stdout)

    def test_text_verdict_payload_out_and_policy(self):
        policy = os.path.join(self.tmp, "policy.yaml")
        with open(policy, "w") as f:
            f.write("version: 1\nallow:\n  - host: x.example.test\n")
        out = signed_run(os.path.join(self.tmp, "out"), self.ed_key, ["true"], "--policy", policy)
        att = os.path.join(out, "attestation.dsse.json")
        payload_out = os.path.join(self.tmp, "statement.json")
        p = rw("verify", "--key", self.ed_pub, "--policy", policy, "--payload-out", payload_out, att)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(p.stdout.startswith(b"valid: "), p.stdout)
        with open(payload_out, "rb") as f:
            self.assertEqual(f.read(), b64d(load_envelope(att)["payload"]))
        st = json.loads(b64d(load_envelope(att)["payload"]))
        (pol,) = [s for s in st["subject"] if s["annotations"]["role"] == "policy"]
        self.assertEqual(pol["digest"]["sha256"], sha256_file(policy))
        self.assertEqual(st["predicate"]["monitor"]["configSource"]["digest"]["sha256"],
                         sha256_file(policy))
        # A different policy file: invalid, named.
        other = os.path.join(self.tmp, "other.yaml")
        with open(other, "w") as f:
            f.write("version: 1\nallow: []\n")
        p = rw("verify", "--key", self.ed_pub, "--policy", other, "--payload-out",
               payload_out + ".2", att)
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stdout.startswith(b"invalid: "), p.stdout)
        self.assertIn(b"policy", p.stdout)
        self.assertFalse(os.path.exists(payload_out + ".2"))  # unverified bytes never handed on
        # Text verdict for a broken chain names the line.
        with open(os.path.join(out, "events.ndjson"), "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        with open(os.path.join(out, "events.ndjson"), "wb") as f:
            f.write(b"".join(l + b"\n" for l in lines[:-1]))
        p = rw("verify", "--key", self.ed_pub, att)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stdout.decode(), r"^invalid: \S*events.ndjson: line \d+: the log ends here without a closing record")

    def test_keygen_and_private_key_permissions(self):
        with open(self.ed_key, "rb") as f:
            priv = serialization.load_pem_private_key(f.read(), None)
        self.assertIsInstance(priv, ed25519.Ed25519PrivateKey)
        self.assertEqual(os.stat(self.ed_key).st_mode & 0o777, 0o600)
        with open(self.ec_key, "rb") as f:
            self.assertIsInstance(serialization.load_pem_private_key(f.read(), None),
                                  ec.EllipticCurvePrivateKey)
        p = rw("keygen", "--out", os.path.join(self.tmp, "ed"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"already exists", p.stderr)
        os.chmod(self.ed_key, 0o640)
        p = rw("run", "--out", os.path.join(self.tmp, "o"), "--quiet", "--key", self.ed_key, "--", "true")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"mode 0640", p.stderr)
        self.assertEqual(len(p.stderr.strip().split(b"\n")), 1, p.stderr)
