"""The TLS request judge on request heads long enough that every walk of the kernel's parser
(bpf/firstbytes.h) takes many bpf_loop rounds: the header walk, the target, the Host name. Its
long walks take several positions a round (FB_STEP_N); the unit test compares that with one a
round on fuzzed bytes in user space, and this checks the kernel's verdicts on the same kind of
heads stay what the policy says: a Host after dozens of header lines of every length is found,
a second one far down is refused, and the method and path rules still hold.

Same fixtures as test_httppolicy (good.test: GET/HEAD under /allowed/ and /pub/), raw heads
written through Python's ssl (OpenSSL's SSL_write_ex), one process per case since a refused
write kills its writer.
"""
import unittest

from test_httppolicy import KILLED, PY, HttpPolicy

# What each head gets: the refusal reason (None: it passes). Filler header lines of lengths
# 1 to 40 move the Host line across every alignment of the parser's rounds.
CASES = {
    "deep_ok": None,                         # Host after 40 lines
    "deep_upper": None,                      # GOOD.TEST: names are compared lower-case
    "deep_dup_host": "request_unreadable",   # good.test first, evil.test 40 lines down
    "deep_front": "host_mismatch",           # evil.test behind the SNI good.test
    "deep_post": "method_not_allowed",       # POST, good.test allows GET and HEAD
    "deep_path": "path_not_allowed",         # /allowed/<long>/../secret
    "deep_target_ok": None,                  # a 200-byte target under /allowed/
}

HEADS = r'''
import os, socket, ssl, sys
fill = b"".join(b"X-F%d: " % i + b"v" * i + b"\r\n" for i in range(1, 41))
heads = {
    "deep_ok": b"GET /allowed/ok HTTP/1.1\r\n" + fill + b"Host: good.test\r\n\r\n",
    "deep_upper": b"GET /allowed/ok HTTP/1.1\r\n" + fill + b"Host: GOOD.TEST\r\n\r\n",
    "deep_dup_host": b"GET /allowed/ HTTP/1.1\r\nHost: good.test\r\n" + fill
                     + b"Host: evil.test\r\n\r\n",
    "deep_front": b"GET /allowed/ HTTP/1.1\r\n" + fill + b"Host: evil.test\r\n\r\n",
    "deep_post": b"POST /allowed/x HTTP/1.1\r\n" + fill
                 + b"Host: good.test\r\nContent-Length: 0\r\n\r\n",
    "deep_path": b"GET /allowed/" + b"a" * 45 + b"/../secret HTTP/1.1\r\n" + fill
                 + b"Host: good.test\r\n\r\n",
    "deep_target_ok": b"GET /allowed/" + b"t" * 200 + b" HTTP/1.1\r\n" + fill
                      + b"Host: good.test\r\n\r\n",
}
ctx = ssl.create_default_context(cafile=os.environ["CA"])
ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("good.test", 8443), timeout=5),
                    server_hostname="good.test")
s.sendall(heads[sys.argv[1]])
s.settimeout(2)
try:
    s.recv(100)
except OSError:
    pass
'''


class LongHeads(HttpPolicy):
    def test_long_heads_inside_tls(self):
        py = self.script("long.py", HEADS)
        run = self.job(f"for c in {' '.join(CASES)}; do {PY} {py} $c; echo $c=$?; done")
        got = self.results(run)
        self.assertEqual(set(got), set(CASES), run.stdout + run.stderr)
        for case, reason in CASES.items():
            self.assertEqual(got[case], "0" if reason is None else str(KILLED), (case, got))
        self.assertEqual(sorted(self.srv.lines()),
                         sorted(["GET /allowed/" + "t" * 200 + " HTTP/1.1"] +
                                ["GET /allowed/ok HTTP/1.1"] * 2), self.srv.seen)
        reasons = sorted(e["reason"] for e in run.of("http_verdict"))
        self.assertEqual(reasons, sorted(r for r in CASES.values() if r), run.of("http_verdict"))
        self.assertTrue(all(e["stopped"] for e in run.of("http_verdict")))


def load_tests(loader, tests, pattern):
    """Only this module's test: the fixtures' own tests are test_httppolicy's to run."""
    return unittest.TestSuite([LongHeads("test_long_heads_inside_tls")])


if __name__ == "__main__":
    unittest.main()
