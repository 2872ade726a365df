"""The baseline store with real runs: `runwarden run --baseline` jobs connecting to loopback
servers and asking a loopback resolver, recorded in SQLite and in a real PostgreSQL server
that the test starts itself (initdb into a temp dir as the postgres user, its own port on
127.0.0.1, never the system cluster). First-seen destinations and DNS parents appear in
summary.json once the job reaches something new; `baseline add|show|prune|export` and
`learn --from-baseline` work on what was recorded; several processes adding runs at once
lose and duplicate nothing; a v1 store is migrated to v2; bad stores and bad runs give one
line and a non-zero exit. Loopback only: servers on 127.0.61.x."""
import json
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from rwtest import RW, ROOT, Dnsmasq, RwTestCase, TcpServer

A, B, DNS = "127.0.61.1", "127.0.61.2", "127.0.61.53"
PGBIN = "/usr/lib/postgresql/15/bin"
CONNECT = """
import socket, sys
for a in sys.argv[1:]:
    host, port = a.rsplit(":", 1)
    socket.create_connection((host, int(port)), timeout=5).close()
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postgres:
    """A PostgreSQL server of the test's own: a fresh cluster in a temp dir, run by the
    postgres user, listening on 127.0.0.1 at a free port and on a socket in that dir."""

    def __init__(self):
        self.pw = pwd.getpwnam("postgres")
        self.dir = tempfile.mkdtemp(prefix="rw-pg-")
        os.chown(self.dir, self.pw.pw_uid, self.pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.as_pg([f"{PGBIN}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                    "--no-sync"])
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
                "-c fsync=off -c max_connections=40")
        self.as_pg([f"{PGBIN}/pg_ctl", "-D", self.data, "-o", opts, "-l",
                    os.path.join(self.dir, "log"), "-w", "-t", "60", "start"])

    def as_pg(self, argv, **kw):
        return subprocess.run(["runuser", "-u", "postgres", "--"] + argv, check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              **kw)

    def createdb(self, name):
        self.as_pg([f"{PGBIN}/createdb", "-h", self.dir, "-p", str(self.port), name])
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def psql(self, db, sql):
        return self.as_pg(["psql", "-h", self.dir, "-p", str(self.port), "-d", db, "-v",
                           "ON_ERROR_STOP=1", "-At", "-c", sql]).stdout.strip()

    def psql_file(self, db, text):
        return self.as_pg(["psql", "-h", self.dir, "-p", str(self.port), "-d", db, "-v",
                           "ON_ERROR_STOP=1", "-q", "-f", "-"], input=text)

    def stop(self):
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D", self.data,
                        "-m", "immediate", "-w", "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, True)


def bl(*args, check=True):
    p = subprocess.run([RW, "baseline", *args], capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"baseline {args}: rc {p.returncode}: {p.stderr}")
    return p


def export(store, *args):
    return json.loads(bl("export", "--baseline", store, *args).stdout)


class BaselineTest(RwTestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = TcpServer(A)
        cls.b = TcpServer(B)
        cls.dns = Dnsmasq(DNS, records=[("registry.test", A), ("test", "127.0.61.3")])

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        cls.b.stop()
        cls.dns.stop()

    def job(self, name, store, dests, names=(), *opts, min_runs="2"):
        """A real job: asks DNS for names, connects to dests; recorded in store."""
        script = "".join(f"dig +short +tries=1 +time=2 @{DNS} {n} A >/dev/null; " for n in names)
        script += f"{sys.executable} -c '{CONNECT}' " + " ".join(
            f"{s.sock.getsockname()[0]}:{s.port}" for s in dests)
        r = self.rw(["sh", "-c", script], "--baseline", store, "--repo", "acme/app",
                    "--workflow", "ci", "--job", "build", "--baseline-min-runs", min_runs,
                    "--step", "build", *opts, out=os.path.join(self.tmp, name))
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertNotIn("error", r.summary["baseline"], r.summary["baseline"])
        return r

    @staticmethod
    def first_seen(r, kind=None):
        return {(f["kind"], f["subject"], f["severity"])
                for f in r.summary["baseline"]["first_seen"] if kind in (None, f["kind"])}

    def history(self, store, n=3):
        """n runs of the same job: A, and the name registry.test."""
        runs = [self.job(f"h{i}", store, [self.a], ["registry.test"]) for i in range(n)]
        # the job looked the address up: the destination is the name it asked for
        dest_a = f"tcp registry.test:{self.a.port}"
        self.assertIn(("destination", dest_a, "info"), self.first_seen(runs[0]))
        self.assertIn(("dns_parent", "registry.test", "info"), self.first_seen(runs[0]))
        for r in runs[1:]:
            self.assertEqual(self.first_seen(r, "destination"), set())
            self.assertEqual(self.first_seen(r, "dns_parent"), set())
        return runs

    def check_new_destination(self, store):
        runs = self.history(store)
        # the job now reaches B and asks names under a parent it never used: medium, as
        # the step has more runs than --baseline-min-runs; A and registry.test are known
        r = self.job("new", store, [self.a, self.b],
                     ["registry.test", "aGVsbG8.t.evil.test", "d29ybGQ.t.evil.test"])
        self.assertEqual(self.first_seen(r, "destination"),
                         {("destination", f"tcp {B}:{self.b.port}", "medium")})
        self.assertEqual(self.first_seen(r, "dns_parent"),
                         {("dns_parent", "t.evil.test", "medium")})
        self.assertEqual(r.summary["baseline"]["key"],
                         {"repository": "acme/app", "workflow": "ci", "job": "build"})
        # and as findings: in summary.json, pointing at the connect line, and leading the
        # terminal summary
        found = [f for f in r.summary["findings"] if f["kind"].startswith("first_seen_")]
        self.assertEqual(sorted((f["kind"], f["subject"], f["severity"]) for f in found),
                         [("first_seen_destination", f"tcp {B}:{self.b.port}", "medium"),
                          ("first_seen_dns_parent", "t.evil.test", "medium")])
        dest = [f for f in found if f["kind"] == "first_seen_destination"][0]
        line = [e for e in r.events if e["seq"] == dest["evidence"][0]][0]
        self.assertEqual((line["kind"], line["daddr"], line["dport"]), ("connect", B, self.b.port))
        self.assertEqual(dest["step"], "build")
        self.assertIn(f"first_seen_destination: destination tcp {B}:{self.b.port} first seen",
                      r.stderr)
        return runs + [r]

    def test_sqlite_first_seen_real_runs(self):
        store = os.path.join(self.tmp, "baseline.db")
        runs = self.check_new_destination(store)
        st = os.stat(store)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        doc = export(store)
        self.assertEqual(doc["schema_version"], 2)
        self.assertEqual([x["uid"] for x in doc["runs"]],
                         [r.summary["log"]["root"] for r in runs])
        # a run given again is recorded once
        p = bl("add", "--baseline", store, runs[0].outdir)
        self.assertIn("already recorded", p.stdout)
        self.assertEqual(len(export(store)["runs"]), len(runs))
        # show: the key, then its items with the runs they were seen in
        p = bl("show", "--baseline", store)
        self.assertIn('"acme/app" "ci" "build": 4 runs', p.stdout)
        p = bl("show", "--baseline", store, "--repo", "acme/app", "--job", "build")
        self.assertIn(f'destination "tcp registry.test:{self.a.port}" in 4 runs', p.stdout)
        self.assertIn(f'destination "tcp {B}:{self.b.port}" in 1 runs', p.stdout)
        self.assertIn('step "build" (4 runs)', p.stdout)
        # learn from the store writes what learn from the run directories writes
        from_dirs = subprocess.run([RW, "learn", *[r.outdir for r in runs]],
                                   capture_output=True, text=True)
        from_bl = subprocess.run([RW, "learn", "--from-baseline", store, "--repo", "acme/app",
                                  "--job", "build"], capture_output=True, text=True)
        self.assertEqual(from_bl.returncode, 0, from_bl.stderr)
        policy = lambda t: t[t.index("version: 1"):]
        self.assertEqual(policy(from_bl.stdout), policy(from_dirs.stdout))
        self.assertIn(f'- ip: "{B}"', from_bl.stdout)
        self.assertIn('- host: "registry.test"', from_bl.stdout)
        last = subprocess.run([RW, "learn", "--from-baseline", store, "--repo", "acme/app",
                               "--job", "build", "--last", "3"], capture_output=True, text=True)
        self.assertIn("# runs: baseline run 2, baseline run 3, baseline run 4", last.stdout)
        # prune keeps the newest run, which had what the next run of the job does
        p = bl("prune", "--baseline", store, "--keep", "1")
        self.assertEqual(p.stdout.strip(), "pruned 3 runs")
        self.assertEqual([x["uid"] for x in export(store)["runs"]],
                         [runs[-1].summary["log"]["root"]])
        r = self.job("after-prune", store, [self.a], ["registry.test"])
        self.assertEqual(self.first_seen(r, "destination"), set())

    def test_lockdown_on_first_seen(self):
        """A policy that ends jobs on medium findings fails the run that reaches somewhere new
        (the job is over when the run is judged: exit 86, the lockdown recorded)."""
        pol = os.path.join(self.tmp, "policy.yaml")
        with open(pol, "w") as f:
            f.write("version: 1\nmode: enforce\nallow:\n  - cidr: 127.0.61.0/24\n"
                    "on_finding: {medium: kill}\n")
        store = os.path.join(self.tmp, "lock.db")
        opts = ["--policy", pol, "--baseline", store, "--repo", "acme/app", "--job", "build",
                "--baseline-min-runs", "1"]
        for name, dests, rc in (("l1", [self.a], 0), ("l2", [self.a], 0),
                                ("l3", [self.a, self.b], 86)):
            r = self.rw([sys.executable, "-c", CONNECT] +
                        [f"{s.sock.getsockname()[0]}:{s.port}" for s in dests], *opts,
                        out=os.path.join(self.tmp, name))
            self.assertEqual(r.rc, rc, r.stderr)
        lock = r.summary["lockdown"]
        self.assertEqual((lock["kind"], lock["severity"], lock["enforced"]),
                         ("first_seen_destination", "medium", True))
        self.assertIn(f"tcp {B}:{self.b.port}", lock["reason"])

    def test_run_findings_recorded(self):
        """A run's findings go to the baseline with it (kind and description, per step)."""
        home = os.path.join(self.tmp, "home")
        files = [".npmrc", ".aws/credentials", ".ssh/id_rsa", ".git-credentials",
                 ".docker/config.json"]
        for f in files:
            os.makedirs(os.path.dirname(os.path.join(home, f)), exist_ok=True)
            with open(os.path.join(home, f), "w") as fh:
                fh.write("not a secret\n")
        store = os.path.join(self.tmp, "f.db")
        r = self.rw(["sh", "-c", "cat " + " ".join(f"~/{f}" for f in files) + " >/dev/null"],
                    "--baseline", store, "--repo", "acme/app", "--job", "build", "--step", "s",
                    env=dict(os.environ, HOME=home), out=os.path.join(self.tmp, "sweep"))
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertIn("credential_sweep", [f["kind"] for f in r.summary["findings"]])
        items = export(store)["runs"][0]["items"]
        kept = [(i["step"], i["name"], i["detail"]["severity"]) for i in items
                if i["kind"] == "finding"]
        self.assertEqual(kept, [("s", "credential_sweep", "high")])

    def test_add_after_the_fact(self):
        """Runs recorded without --baseline, added later with the key given by hand; the
        first-seen results are the same as when recorded live."""
        dirs = []
        for i, dests in enumerate(([self.a], [self.a], [self.a, self.b])):
            r = self.rw([sys.executable, "-c", CONNECT] +
                        [f"{s.sock.getsockname()[0]}:{s.port}" for s in dests],
                        out=os.path.join(self.tmp, f"r{i}"))
            self.assertEqual(r.rc, 0, r.stderr)
            dirs.append(r.outdir)
        store = os.path.join(self.tmp, "later.db")
        # no CI context and no --repo: refused, naming the run
        p = bl("add", "--baseline", store, dirs[0], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn("no repository", p.stderr)
        p = bl("add", "--baseline", store, "--repo", "acme/app", "--job", "t", "--min-runs",
               "2", *dirs)
        self.assertIn(f'first seen (medium): destination "tcp {B}:{self.b.port}"', p.stdout)
        self.assertEqual(p.stdout.count("recorded as run"), 3)

    def test_postgres(self):
        pg = Postgres()
        self.addCleanup(pg.stop)
        uri = pg.createdb("rwtest")
        runs = self.check_new_destination(uri)
        self.assertEqual(pg.psql("rwtest", "SELECT version FROM baseline_schema"), "2")
        self.assertEqual(pg.psql("rwtest", "SELECT count(*) FROM baseline_runs"), "4")
        # learn reads the server as it reads a file
        p = subprocess.run([RW, "learn", "--from-baseline", uri, "--repo", "acme/app", "--job",
                            "build"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f'- ip: "{B}"', p.stdout)
        self.concurrent_writers(pg, runs)

    def concurrent_writers(self, pg, runs):
        """Several processes add the same runs at once, each in its own order, into an empty
        database: every run lands once, every row once, and each item is first seen in
        exactly one run."""
        more = [self.job(f"c{i}", os.path.join(self.tmp, "scratch.db"), [self.a, self.b][:1 + i % 2],
                         ["registry.test"]) for i in range(4)]
        dirs = [r.outdir for r in runs + more]
        uri = pg.createdb("concurrent")
        procs = []
        for w in range(6):
            order = dirs[:]
            random.Random(w).shuffle(order)
            procs.append(subprocess.Popen(
                [RW, "baseline", "add", "--baseline", uri, "--repo", "acme/app", "--job", "c",
                 *order], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, err)
        recorded = sum(o.count("recorded as run") for o, _ in outs)
        already = sum(o.count("already recorded") for o, _ in outs)
        self.assertEqual((recorded, already), (len(dirs), 5 * len(dirs)))
        q = lambda sql: pg.psql("concurrent", sql)
        self.assertEqual(q("SELECT count(*), count(DISTINCT uid) FROM baseline_runs"),
                         f"{len(dirs)}|{len(dirs)}")
        # every run's items, as one run alone would have recorded them
        alone = {}
        for d in dirs:
            solo = os.path.join(self.tmp, "solo-" + os.path.basename(d) + ".db")
            bl("add", "--baseline", solo, "--repo", "x", "--job", "y", d)
            doc = export(solo)
            alone[doc["runs"][0]["uid"]] = len(doc["runs"][0]["items"])
        got = dict(tuple(line.split("|")) for line in q(
            "SELECT r.uid, count(i.ikey) FROM baseline_runs r LEFT JOIN baseline_items i"
            " ON i.run_id = r.id GROUP BY r.uid").splitlines())
        self.assertEqual({k: int(v) for k, v in got.items()}, alone)
        # each item is first seen exactly once, in whichever run the store took first
        self.assertEqual(q("SELECT count(*) FROM (SELECT step, kind, ikey FROM baseline_items"
                           " WHERE first_seen = 1 GROUP BY step, kind, ikey"
                           " HAVING count(*) > 1) t"), "0")
        self.assertEqual(q("SELECT count(*) FROM (SELECT DISTINCT step, kind, ikey FROM"
                           " baseline_items WHERE kind <> 'dns') t"),
                         q("SELECT count(*) FROM baseline_items WHERE first_seen = 1"))

    def test_postgres_migration_v1_to_v2(self):
        pg = Postgres()
        self.addCleanup(pg.stop)
        uri = pg.createdb("old")
        with open(os.path.join(ROOT, "tests", "data", "baseline-v1.sql")) as f:
            pg.psql_file("old", f.read().replace("@ID@", "BIGSERIAL PRIMARY KEY"))
        self.assertEqual(pg.psql("old", "SELECT version FROM baseline_schema"), "1")
        # several runwardens meet the old store at once: one migrates, none fails
        procs = [subprocess.Popen([RW, "baseline", "show", "--baseline", uri], text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(4)]
        outs = [p.communicate(timeout=120) for p in procs]
        self.assertEqual([p.returncode for p in procs], [0] * 4, outs)
        self.assertEqual(sum("schema migrated from v1 to v2" in e for _, e in outs), 1)
        self.assertEqual(pg.psql("old", "SELECT version FROM baseline_schema"), "2")
        got = pg.psql("old", "SELECT run_id, step, kind, ikey, severity FROM baseline_items"
                      " WHERE first_seen = 1 ORDER BY run_id, step, kind, ikey")
        sha_a, sha_b = "a" * 64, "b" * 64
        self.assertEqual(got.splitlines(), [
            "1|build|destination|tcp registry.test:443|info",
            "1|build|dns_parent|registry.test|info",
            f"1|build|exe|{sha_a} /usr/bin/make|info",
            "3|build|destination|tcp 127.0.9.9:8080|info",
            f"3|build|exe|{sha_b} /usr/bin/make|info",
            "3|test|destination|tcp 127.0.9.10:80|info",
            "4|build|destination|tcp 127.0.9.9:8080|info"])
        self.assertEqual(pg.psql("old", "SELECT count(*) FROM baseline_steps"), "5")
        # the migrated store takes a real run: the next id, first seen against the old runs
        r = self.rw([sys.executable, "-c", CONNECT, f"{A}:{self.a.port}"], "--baseline", uri,
                    "--repo", "acme/app", "--workflow", "ci", "--job", "build", "--step",
                    "build", out=os.path.join(self.tmp, "onv2"))
        self.assertEqual(r.rc, 0, r.stderr)
        self.assertEqual(r.summary["baseline"]["run_id"], 5)
        self.assertIn(("destination", f"tcp {A}:{self.a.port}", "info"), self.first_seen(r))

    def test_postgres_gone_at_the_end(self):
        """The server goes away while the job runs: the evidence is written all the same, the
        summary says why the run is not in the baseline, and run exits 1."""
        pg = Postgres()
        self.addCleanup(pg.stop)
        uri = pg.createdb("gone")
        out = os.path.join(self.tmp, "gone")
        flag, running = os.path.join(self.tmp, "stopped"), os.path.join(self.tmp, "running")
        p = subprocess.Popen([RW, "run", "--out", out, "--no-sign", "--baseline", uri,
                              "--repo", "acme/app", "--job", "build", "--", "sh", "-c",
                              f"touch {running}; while [ ! -e {flag} ]; do sleep 0.05; done"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Stopped while the job runs (not before runwarden got going, as a fixed second
        # allowed on a busy machine).
        deadline = time.time() + 60
        while not os.path.exists(running) and time.time() < deadline and p.poll() is None:
            time.sleep(0.02)
        pg.stop()
        open(flag, "w").close()
        _, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 1, err)
        from rwtest import Run
        r = Run(p.returncode, err, out)
        self.assertIsNotNone(r.close, "no closing record")
        self.assertIn("cannot connect", r.summary["baseline"]["error"])
        self.assertEqual([l for l in err.splitlines() if "cannot connect" in l],
                         [l for l in err.splitlines() if l.startswith("runwarden: baseline")])

    def test_without_libpq(self):
        """libpq is loaded only for a postgresql:// store: with it gone (hidden in a mount
        namespace of the test's own) runwarden still records to SQLite, and a PostgreSQL
        store is refused in one line."""
        lib = [l.split()[-1] for l in subprocess.run(["ldconfig", "-p"], capture_output=True,
                                                     text=True).stdout.splitlines()
               if l.strip().startswith("libpq.so.5 ") and "x86-64" in l][0]
        self.assertNotIn("libpq", subprocess.run(["ldd", RW], capture_output=True,
                                                 text=True).stdout)
        store = os.path.join(self.tmp, "nolibpq.db")
        script = (f"mount --bind /dev/null {lib} && "
                  f"{RW} baseline show --baseline postgresql://u@127.0.0.1:1/x; echo rc=$?; "
                  f"{RW} baseline add --baseline {store} --repo r --job j {self.tmp}/none;"
                  f" echo rc=$?")
        p = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                           text=True, timeout=60)
        self.assertIn("rc=1\nrc=1", p.stdout)
        lines = p.stderr.strip().splitlines()
        self.assertIn("cannot load libpq.so.5 (install libpq5)", lines[0])
        self.assertIn("cannot open run directory", lines[1])
        self.assertEqual(len(lines), 2, p.stderr)

    def test_bad_input(self):
        marker = os.path.join(self.tmp, "ran")
        bad_db = os.path.join(self.tmp, "corrupt.db")
        with open(bad_db, "wb") as f:
            f.write(b"SQLite format 2\0" + os.urandom(8192))
        cases = [
            (["--baseline", "postgresql://nobody@127.0.0.1:1/x"], "cannot connect"),
            (["--baseline", "postgresql://%zz"], "not a valid PostgreSQL URI"),
            (["--baseline", "mysql://u@127.0.0.1/x"], "unknown scheme"),
            (["--baseline", bad_db], "not a database"),
            (["--baseline", os.path.join(self.tmp, "no", "dir.db")], "cannot open"),
        ]
        # reading commands refuse a missing file rather than create one
        reading_why = {"cannot open": "no such store"}
        for opts, why in cases:
            # run refuses before the job starts: the command never runs
            r = self.rw(["touch", marker], *opts, "--repo", "r", "--job", "j",
                        out=os.path.join(self.tmp, "o" + str(len(why))))
            self.assertEqual(r.rc, 1, (opts, r.stderr))
            self.assertIn(why, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertFalse(os.path.exists(marker))
            for sub in (["show"], ["export"], ["prune", "--keep", "1"]):
                p = bl(*sub, *opts, check=False)
                self.assertEqual(p.returncode, 1, (sub, opts))
                self.assertIn(reading_why.get(why, why), p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        store = os.path.join(self.tmp, "ok.db")
        r = self.rw(["touch", marker], "--baseline", store, out=os.path.join(self.tmp, "nokey"))
        self.assertEqual(r.rc, 1)
        self.assertIn("give --repo and --job", r.stderr)
        self.assertFalse(os.path.exists(marker))
        # runs that are not runs
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        with open(os.path.join(empty, "summary.json"), "w") as f:
            f.write('{"step": "x"}')
        for d, why in ((os.path.join(self.tmp, "missing"), "cannot open run directory"),
                       (empty, "no log.root")):
            p = bl("add", "--baseline", store, "--repo", "r", "--job", "j", d, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn(why, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        p = bl("show", "--baseline", os.path.join(self.tmp, "none.db"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such store", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "none.db")))
        for args, why in ((["prune"], "give --keep N or --older-than DAYS"),
                          (["prune", "--keep", "0"], "--keep 0"),
                          (["frob"], "unknown subcommand"),
                          (["show", "extra"], "unexpected argument")):
            p = bl(*args, "--baseline", store, check=False)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(why, p.stderr)

    def test_hostile_labels(self):
        """Key and step labels and names a job chose are data: stored as given, printed
        quoted, never SQL or extra lines."""
        store = os.path.join(self.tmp, "hostile.db")
        repo = "acme/'); DROP TABLE baseline_runs; --"
        step = 'st"ep\nfake line'
        r = self.rw(["sh", "-c", f"dig +short +tries=1 +time=2 @{DNS} 'x\\\";drop.t.test' A"
                     " >/dev/null; true"],
                    "--baseline", store, "--repo", repo, "--job", "j\n2", "--step", step,
                    out=os.path.join(self.tmp, "h"))
        self.assertEqual(r.rc, 0, r.stderr)
        doc = export(store)
        self.assertEqual(doc["runs"][0]["repo"], repo)
        self.assertEqual(doc["runs"][0]["job"], "j\n2")
        p = bl("show", "--baseline", store, "--repo", repo, "--job", "j\n2")
        self.assertIn('"acme/\'); DROP TABLE baseline_runs; --" "" "j\\n2":', p.stdout)
        self.assertNotIn("\nfake line", p.stdout)
        self.assertIn("st\\\"ep\\nfake line", p.stdout)


if __name__ == "__main__":
    unittest.main()
