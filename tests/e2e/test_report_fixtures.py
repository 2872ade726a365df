"""Run-directory fixtures for the report tests, written to the events.ndjson /
summary.json contract (docs/runwarden.1), hostile strings included. Shared by
test_report_*.py; it has no tests of its own."""
import hashlib
import json
import os

HOSTILE_ARG = '</script><script>window.PWNED=1</script><img src=x onerror="window.PWNED=2">'
HOSTILE_HOST = 'evil"<b>&x.example'
HOSTILE_QUERY = 'exfil.example\n::error::forged %0A line\r\n'
HOSTILE_STEP = 'test | `rm` <i>*x*</i>\u202e'
BAD_UTF8_EXE = '/usr/bin/c\udcffat'   # a lone surrogate, as our writer escapes invalid bytes


def _ev(kind, pid, ppid, comm, exe, step, **kw):
    d = {"kind": kind, "pid": pid, "ppid": ppid, "comm": comm, "exe": exe, "step": step}
    d.update(kw)
    return d


def events():
    ts = "2026-11-25T13:00:00.%09dZ"
    ev = [
        _ev("exec", 100, 1, "bash", "/usr/bin/bash", "build", argv=["bash", "-c", "make"], cwd="/w"),
        _ev("exec", 101, 100, "curl", "/usr/bin/curl", "build",
            argv=["curl", "https://example.com/"], cwd="/w"),
        _ev("dns", 101, 100, "curl", "/usr/bin/curl", "build", query="example.com", qtype="A",
            answers=["93.184.216.34"], verdict="allow"),
        _ev("connect", 101, 100, "curl", "/usr/bin/curl", "build", proto="tcp", family="ipv4",
            daddr="93.184.216.34", dport=443, host="example.com", verdict="allow"),
        _ev("connect", 101, 100, "curl", "/usr/bin/curl", "build", proto="tcp", family="ipv4",
            daddr="93.184.216.34", dport=443, host="example.com", verdict="allow"),
        _ev("exit", 101, 100, "curl", "/usr/bin/curl", "build", status=0),
        _ev("exec", 102, 100, "evil", "/tmp/evil", HOSTILE_STEP,
            argv=["/tmp/evil", HOSTILE_ARG], cwd="/tmp"),
        _ev("dns", 102, 100, "evil", "/tmp/evil", HOSTILE_STEP, query=HOSTILE_QUERY, qtype="TXT",
            answers=[], verdict="block"),
        _ev("connect", 102, 100, "evil", "/tmp/evil", HOSTILE_STEP, proto="tcp", family="ipv4",
            daddr="203.0.113.9", dport=4444, host=HOSTILE_HOST, verdict="deny"),
        _ev("connect", 102, 100, "evil", "/tmp/evil", HOSTILE_STEP, proto="udp", family="ipv6",
            daddr="2001:db8::1", dport=53, host=None, verdict="audit"),
        _ev("exec", 103, 102, "cat", BAD_UTF8_EXE, HOSTILE_STEP,
            argv=["cat", "/home/u/.ssh/id_rsa"], cwd="/tmp"),
        _ev("file", 103, 102, "cat", BAD_UTF8_EXE, HOSTILE_STEP, path="/home/u/.ssh/id_rsa",
            flags="O_RDONLY"),
        _ev("exit", 103, 102, "cat", BAD_UTF8_EXE, HOSTILE_STEP, status=0),
        _ev("exit", 102, 100, "evil", "/tmp/evil", HOSTILE_STEP, status=1),
        # pid 101 reused by a new process after exiting
        _ev("exec", 101, 100, "npm", "/usr/bin/npm", "test", argv=["npm", "test"], cwd="/w"),
        _ev("connect", 101, 100, "npm", "/usr/bin/npm", "test", proto="tcp", family="ipv4",
            daddr="104.16.0.35", dport=443, host="registry.npmjs.org", verdict="allow"),
        _ev("exit", 101, 100, "npm", "/usr/bin/npm", "test", status=0),
        _ev("exit", 100, 1, "bash", "/usr/bin/bash", "build", status=1),
    ]
    for i, e in enumerate(ev):
        e["ts"] = ts % (i + 1)
    return ev


def summary():
    return {
        "runwarden_version": "0.1.0", "kernel": "6.1.0", "command": ["bash", "-c", "make"],
        "step": None, "mode": "enforce", "started_at": "2026-11-25T13:00:00Z",
        "finished_at": "2026-11-25T13:00:05Z", "duration_s": 5.0, "exit_status": 1,
        "complete": True, "missing_hooks": [{"hook": "lsm/file_open", "reason": "no BPF LSM"}],
        "counts": {"exec": 4, "connect": 4, "dns": 2, "file": 1, "exit": 4},
        "events_lost": {"exec": 0, "fork": 0, "exit": 0, "connect": 0, "dns": 0, "file": 0,
                        "total": 0},
        "destinations": [], "dns_names": [], "files": [], "denials": [],
        "leftovers": [{"pid": 4242, "cmdline": "sleep 1000\n::error::x"}],
        "ci": {"provider": "github", "repository": "o/r", "run_id": "1", "job": "build"},
        "log": {"path": "events.ndjson", "lines": 19, "root": "00"},
    }


def write_run(d, evs=None, summ=None, close=True):
    """Writes a chained events.ndjson (seq, prev as evlog.h describes) and summary.json."""
    os.makedirs(d, exist_ok=True)
    evs = events() if evs is None else evs
    prev = "0" * 64
    lines = []
    for i, e in enumerate(evs):
        body = {"seq": i, "prev": prev}
        body.update(e)
        line = json.dumps(body, ensure_ascii=True, separators=(",", ":")) + "\n"
        prev = hashlib.sha256(line.encode("utf-8", "surrogateescape")).hexdigest()
        lines.append(line)
    if close:
        lines.append(json.dumps({"seq": len(evs), "prev": prev, "kind": "close",
                                 "count": len(evs), "root": prev}) + "\n")
    with open(os.path.join(d, "events.ndjson"), "w") as f:
        f.writelines(lines)
    if summ is not False:
        with open(os.path.join(d, "summary.json"), "w") as f:
            json.dump(summary() if summ is None else summ, f, ensure_ascii=True)
    return d
