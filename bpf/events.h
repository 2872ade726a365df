/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The records the kernel programs send to user space through the ring buffer.
 * Shared by the BPF programs (bpf/runwarden.bpf.c and its parts) and the agent
 * (src/observe/collect.c); any change here is a change to both sides, so keep
 * field order and sizes explicit.
 *
 * Every record starts with struct ev_hdr. Records are variable-length: the
 * kernel sends exactly the bytes it filled (bpf_ringbuf_output with the used
 * length), never the scratch buffer's maximum.
 */
#ifndef RUNWARDEN_EVENTS_H
#define RUNWARDEN_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
#endif

#include "rwnet.h" /* families, protocols, policy maps: named and classed once */

/*
 * Every record kind, once: X(ENUM_SUFFIX, "name used in logs and summaries").
 * The enum, the user-space name table and every per-kind counter array are
 * generated from this list, so a new kind cannot be missing from one of them.
 * Append only: the numbers are part of the ring-buffer ABI.
 */
#define EV_KINDS(X)                                                                                \
	X(EXEC, "exec")                                                                            \
	X(FORK, "fork")                                                                            \
	X(EXIT, "exit")                                                                            \
	X(CONNECT, "connect")                                                                      \
	X(DNS_PKT, "dns")                                                                          \
	X(FILE, "file")                                                                            \
	X(SOCKET, "socket")	      /* socket creation judged by family and type */              \
	X(ENV, "env")		      /* environment of a step's first process (whole-job mode) */ \
	X(MEMREAD, "memread")	      /* access to another process's memory */                     \
	X(CGROUP_MOVE, "cgroup_move") /* a job process moved out of the scope */                   \
	X(GETFD, "pidfd_getfd")	      /* a descriptor taken from another process */                \
	X(ACCEPT, "accept")	      /* an inbound connection, judged */                          \
	X(FENCE, "fence")	      /* user space: the fence itself (links, keeper) */           \
	X(UNIX_CONNECT, "unix_connect") /* a connect to a unix socket named *.sock (engines) */    \
	X(MOUNT, "mount")		/* mount(2), move_mount(2) */                              \
	X(CONN_NAME, "conn_name")	/* the name a TCP connection's first bytes ask for */      \
	X(TLS_DATA, "http")   /* an HTTP head written or read through OpenSSL (uprobes) */         \
	X(PATH_OP, "path_op") /* unlink, rename, truncate by name of a tracked file's name */      \
	X(HTTP_VERDICT, "http_verdict") /* a request inside TLS not allowed (SSL_write uprobe) */  \
	X(TLS_CHUNK, "http_data")	/* plaintext streamed for a capture level or HTTP/2 */     \
	X(SECRET, "secret_leak")	/* a secret in what a process sends (secretscan.bpf.h) */

enum ev_kind {
	EV_NONE = 0,
#define EV_ENUM_(e, name) EV_##e,
	EV_KINDS(EV_ENUM_)
#undef EV_ENUM_
	    EV_KIND_MAX,
};

#define COMM_LEN 16
/* Longest argv area copied per exec; longer ones are cut and flagged. */
#define ARGV_MAX 16384
/* Path walks: at most PATH_DEPTH components, PATH_BYTES bytes in all. */
#define PATH_DEPTH 48
#define PATH_BYTES 4096
#define NAME_BYTES 256
/* Bytes of a DNS message (UDP payload, or TCP payload incl. length prefix). */
#define DNS_MAX 1024
/* Environment bytes copied for a CI step's first process. */
#define ENV_MAX 16384

/* ev_exec.flags, ev_file.flags2 */
#define EVF_ARGV_TRUNC	0x1
#define EVF_EXE_TRUNC	0x2
#define EVF_CWD_TRUNC	0x4
#define EVF_PATH_TRUNC	0x8
#define EVF_PATH_RAW	0x10 /* path is the name the caller passed, not resolved */
#define EVF_HAS_RESULT	0x20
#define EVF_REDIRECTED	0x40  /* port-53 traffic sent to the DNS gate instead */
#define EVF_RUNNER	0x80  /* made by the CI runner's own process (whole-job mode) */
#define EVF_URING	0x100 /* an open submitted through io_uring */
#define EVF_EXE_ANON	0x200 /* executable has no path (memfd): exe is its bare name */
#define EVF_EXE_DELETED 0x400 /* executable was unlinked before the exec */
#define EVF_INODE_HIT	0x800 /* file matched by device+inode, whatever its name */
/* ev_exec.flags: a standard descriptor was an IPv4/IPv6 socket at exec (a reverse shell's
 * stdin and stdout are its connection) */
#define EVF_STDIN_INET	0x1000
#define EVF_STDOUT_INET 0x2000
#define EVF_STDERR_INET 0x4000
/* ev_file.flags: an open for writing (O_WRONLY, O_RDWR, O_TRUNC) of a file the checkout
 * tracks (map `tracked`, filled at job start: findings/srcmod.c) */
#define EVF_TRACKED_WRITE 0x8000

struct ev_hdr {
	u32 kind;
	u32 pid; /* tgid of the acting process */
	u32 tid;
	u32 ppid;
	u32 uid;
	u32 _pad;
	u64 ts; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	char comm[COMM_LEN];
};

/* A file as the kernel knows it: the superblock's device (kernel encoding,
 * major << 20 | minor, as /proc/self/mountinfo prints it), the inode, and
 * enough of the inode to tell a changed file from the same one (ctime moves
 * on every write). */
struct file_id {
	u64 ino;
	u64 size;
	s64 ctime_sec;
	u32 ctime_nsec;
	u32 dev;
};

/* Key of the kernel's set of watched files (map `watched`). */
#define WATCHED_MAX 8192
/* Tracked files of the checkout known by identity (map `tracked`); more are compared at the
 * end of the job without a writer, and counted. */
#define TRACKED_MAX 65536
struct file_key {
	u64 ino;
	u32 dev;
	u32 _pad;
};

/*
 * Paths are sent as their components, leaf first, each NUL-terminated; user
 * space joins them in reverse. Walking dentries upward is the one way to get
 * an absolute, symlink-resolved path without bpf_d_path (LSM/fentry only).
 */
struct ev_exec {
	struct ev_hdr h;
	u32 argv_len;
	u16 exe_len;
	u16 cwd_len;
	u32 flags;
	u32 _pad;
	u64 cgid;	    /* its cgroup (v2 id): names the container a process runs in */
	struct file_id exe; /* what was executed, whatever its path says */
	char data[];	    /* exe components, cwd components, argv area (NUL-separated) */
};

struct ev_fork {
	struct ev_hdr h; /* h.pid = child, h.ppid = parent */
};

struct ev_exit {
	struct ev_hdr h;
	s32 exit_code; /* raw wait status */
	u32 _pad;
};

#define PROTO_TCP 6
#define PROTO_UDP 17

/* How the kernel hook saw the attempt. */
enum conn_via {
	VIA_CONNECT = 1, /* cgroup/connect4|6: connect(2), io_uring, TFO */
	VIA_SENDMSG,	 /* cgroup/sendmsg4|6: unconnected UDP */
	VIA_PACKET,	 /* cgroup_skb/egress backstop: a packet no hook allowed */
};

enum verdict {
	VERDICT_ALLOW = 0,
	VERDICT_AUDIT, /* would be denied; observe mode let it through */
	VERDICT_DENY,
	VERDICT_BLOCK, /* on a block list: denied in every mode */
};

struct ev_connect {
	struct ev_hdr h;
	u64 cookie;
	u8 family; /* AF_INET / AF_INET6 as on the wire (v4-mapped stays v6) */
	u8 proto;
	u8 via;
	u8 verdict;
	u16 dport;
	u16 flags;
	s32 result; /* 0 or -errno when EVF_HAS_RESULT */
	u32 _pad;
	u8 daddr[16];
};

enum dns_dir {
	DNS_OUT = 1, /* query leaving the job */
	DNS_IN,	     /* answer arriving to the job */
};

struct ev_dns_pkt {
	struct ev_hdr h; /* pid/comm of the socket's last connect/sendmsg, 0 if unknown */
	u64 cookie;
	u8 family;
	u8 proto;
	u8 dir;
	u8 truncated;
	u16 sport;
	u16 dport;
	u16 len; /* bytes in data */
	u16 _pad;
	u32 _pad2;
	u8 saddr[16];
	u8 daddr[16];
	u8 data[];
};

struct ev_file {
	struct ev_hdr h;
	s32 result; /* fd or -errno */
	u32 open_flags;
	u16 path_len;
	u16 flags;
	u32 dev; /* of the opened file (0 for failed attempts) */
	u64 ino;
	char data[]; /* components leaf first, or the raw name (EVF_PATH_RAW) */
};

struct ev_socket {
	struct ev_hdr h;
	u16 family;
	u16 type;
	u16 protocol;
	u8 verdict;
	u8 _pad;
	s32 result; /* fd or -errno */
	u32 _pad2;
};

/* Sent after the exec record of a direct child of the CI runner (whole-job
 * mode): the step variables live in its environment, and the process may be
 * gone before user space could read /proc/PID/environ. */
struct ev_env {
	struct ev_hdr h;
	u32 len;
	u32 truncated;
	char data[];
};

/* How a process reached another one's memory (ev_memread.op). */
enum memread_op {
	MR_VM_READV = 1, /* process_vm_readv */
	MR_VM_WRITEV,	 /* process_vm_writev */
	MR_PTRACE_ATTACH,
	MR_PTRACE_SEIZE,
	MR_PTRACE_PEEK, /* PEEKTEXT/PEEKDATA/PEEKUSER (request in ev_memread.request) */
	MR_PTRACE_POKE, /* POKETEXT/POKEDATA/POKEUSER */
	MR_PTRACE_REGS, /* GETREGS/GETFPREGS/GETREGSET */
	MR_PROC_MEM,	/* open of /proc/PID/mem (or task/TID/mem) */
	MR_PROC_ENVIRON,
};

/* ev_memread.flags */
#define MRF_TARGET_GLOBAL 0x1 /* target_pid is in the initial pid namespace */
#define MRF_TARGET_COMM	  0x2 /* target_comm was read from the target task */
#define MRF_KILLED	  0x4 /* enforce: the caller was killed before it could use the access */

/* Repeated accesses by one process to one target with one op and outcome
 * are sent when their count reaches 1, 2, 4, 8, ...: a PEEKDATA loop over a
 * whole address space makes a few dozen records, not millions, and the
 * first success after failures is always sent. */
struct ev_memread {
	struct ev_hdr h;
	u32 op;
	u32 request;	 /* ptrace request, or the open flags for /proc files */
	s32 target_pid;	 /* as the caller named it (its pid namespace) */
	u32 target_tgid; /* global tgid when known (MRF_TARGET_GLOBAL) */
	s64 result;	 /* bytes, 0, fd or -errno */
	u64 calls;	 /* calls so far with this outcome (a power of two) */
	u64 bytes;	 /* bytes moved so far by those calls (process_vm_*) */
	u32 pidns_level; /* the caller's pid namespace depth (0: initial) */
	u32 flags;
	u32 pidns_inum; /* the caller's pid namespace (its /proc/PID/ns/pid inode) */
	u32 _pad;
	char target_comm[COMM_LEN];
};

/* A process of the job was moved to a cgroup outside the scope: the fence
 * (cgroup hooks) no longer applies to it. h: the writer of cgroup.procs. */
struct ev_cgroup_move {
	struct ev_hdr h;
	u32 target_pid; /* the moved process (tgid) */
	u8 verdict;	/* AUDIT (observe) or DENY (enforce: the job is ended) */
	u8 killed;	/* the writer was killed in the kernel */
	u16 _pad;
	u64 dst_cgid;
	char dst_path[128]; /* cgroup path, relative to the hierarchy root */
};

/* pidfd_getfd(2): a descriptor duplicated out of another process. */
struct ev_getfd {
	struct ev_hdr h;
	s32 pidfd;
	s32 target_fd;
	s32 result;	/* the new fd or -errno */
	u32 target_pid; /* the process the pidfd names, 0 if unknown */
	u8 verdict;
	u8 killed; /* enforce: the caller was killed before it could use the fd */
	u16 _pad;
	u32 _pad2;
};

/* An inbound TCP connection: accepted (via VIA_CONNECT, with the accepting
 * process) or its SYN dropped in enforce mode (VIA_PACKET, no process). */
struct ev_accept {
	struct ev_hdr h;
	u8 family;
	u8 via;
	u8 verdict;
	u8 _pad;
	u16 peer_port;
	u16 local_port;
	s32 result; /* the accepted fd, or -EPERM for a dropped SYN */
	u32 _pad2;
	u8 peer[16];
};

/* connect(2) to a unix socket whose path ends in ".sock" (container engines' API sockets:
 * docker.sock, containerd.sock, podman.sock, ...): cgroup hooks see no unix connects. The path
 * is the one the caller passed, not resolved. */
#define UNIX_PATH_BYTES 108
struct ev_unix_connect {
	struct ev_hdr h;
	s32 result; /* 0 or -errno */
	u32 path_len;
	char path[UNIX_PATH_BYTES];
};

/* mount(2) or move_mount(2) by a process of the job: strings as the caller passed them. */
#define MOUNT_STR_BYTES	 256
#define MOUNT_TYPE_BYTES 32
enum mount_call {
	MOUNT_CALL_MOUNT = 1,
	MOUNT_CALL_MOVE, /* move_mount: the source is a descriptor (open_tree, fsmount) */
};
struct ev_mount {
	struct ev_hdr h;
	s32 result;
	u32 call;
	u64 flags; /* mount(2)'s MS_* flags, move_mount(2)'s MOVE_MOUNT_* flags */
	char source[MOUNT_STR_BYTES];
	char target[MOUNT_STR_BYTES];
	char fstype[MOUNT_TYPE_BYTES];
};

/* A change made by name that no open shows: unlink(at), rename(at,at2), truncate. Sent when
 * the name's last component is a tracked file's (the checkout's, for source_modified's writers);
 * user space joins the base and the name and keeps the record only for a tracked path. */
enum path_op {
	PATHOP_UNLINK = 1,
	PATHOP_RENAME_FROM, /* the name a rename moved away */
	PATHOP_RENAME_TO,   /* the name a rename put something at (replacing what was there) */
	PATHOP_TRUNCATE,
};
/* Tracked names by the end of their last component: its last TRACKED_NAME_BYTES - 1 bytes
 * (all of it when shorter), NUL-padded. The end, not the start: the kernel finds it by looking
 * back a bounded few bytes for a '/', which costs the verifier almost nothing. */
#define TRACKED_NAME_BYTES 32 /* a power of 2 */
struct ev_path_op {
	struct ev_hdr h;
	u16 op;
	u16 flags;    /* EVF_PATH_TRUNC: the base was cut */
	u16 name_len; /* the name as the caller passed it, NUL included */
	u16 base_len; /* components (leaf first) of the directory a relative name starts from */
	char data[];  /* name, then base */
};

/* The name a TCP connection's first bytes ask for (bpf/firstbytes.h parses them, bpf/conn.bpf.h
 * judges them): a TLS ClientHello's SNI and ALPN, or an HTTP/1.x request's method, target and
 * Host. Sent once per connection, from its first data segment, whole (no variable part). */
#define FB_NAME	  256
#define FB_ALPN	  64
#define FB_METHOD 16
#define FB_PATH	  256
enum fb_app {
	FB_NONE = 0,
	FB_TLS,	 /* a TLS ClientHello */
	FB_HTTP, /* an HTTP/1.x request */
};
/* ev_conn_name.flags */
#define FBF_NAMED     0x1  /* name holds a host name (valid, not an IP literal) */
#define FBF_NO_NAME   0x2  /* read whole, and names no host (no SNI, no Host) */
#define FBF_LITERAL   0x4  /* names an IP address, not a host */
#define FBF_CUT	      0x8  /* goes on past the bytes seen, before its name was found */
#define FBF_MALFORMED 0x10 /* lengths that do not add up, a second SNI or Host */
#define FBF_BAD_NAME  0x20 /* a name with bytes or labels no host name has, or too long */
#define FBF_PATH_CUT  0x40
#define FBF_ALPN_CUT  0x80
#define FBF_DROPPED   0x100 /* enforce: the segment was dropped and the connection is reset */
#define FBF_ADDR_RULE                                                                              \
	0x200 /* the address is allowed by an `ip:`/`cidr:` entry: name not judged                 \
	       */
/* http_verdict records only */
#define FBF_IN_TLS  0x400 /* an HTTP request read from SSL_write's plaintext */
#define FBF_STOPPED 0x800 /* enforce: the writing process was killed before the library wrote */
/* ev_conn_name.reason: why a verdict other than allow */
enum conn_name_reason {
	CNR_NONE = 0,
	CNR_SNI_MISMATCH,  /* the SNI names something the policy does not allow */
	CNR_HOST_MISMATCH, /* so does the HTTP Host (or an absolute request target) */
	CNR_UNREADABLE,	   /* TLS or HTTP whose name could not be read (cut, malformed) */
	CNR_NAME_BLOCKED,  /* the name is on a block list */
	CNR_METHOD,	   /* the request's method is outside its host's `methods:` */
	CNR_PATH,	   /* its target is outside its host's `paths:` (or unsafe under them) */
	CNR_H2_UNJUDGED,   /* HTTP/2 offered to a host with `methods:`/`paths:` (HPACK unread) */
	CNR_UNREAD_REQ,	   /* inside TLS: a request head that could not be read whole */
};
struct ev_conn_name {
	struct ev_hdr h; /* pid/tid/uid of the socket's connect; comm filled by user space */
	u64 cookie;
	u8 family;
	u8 app; /* enum fb_app */
	u8 verdict;
	u8 reason; /* enum conn_name_reason */
	u16 dport;
	u16 sport;
	u16 flags; /* FBF_* */
	u16 name_len;
	u16 alpn_len;
	u16 method_len;
	u16 path_len;
	u16 dots; /* dots in name */
	u32 _pad;
	u8 daddr[16];
	u8 saddr[16];
	char name[FB_NAME]; /* lower case, one trailing dot dropped */
	char alpn[FB_ALPN]; /* comma-separated */
	char method[FB_METHOD];
	char path[FB_PATH];
};

/* ---- policy, as the kernel sees it (filled by src/job/enforce.c) ---- */

enum rw_mode {
	MODE_OBSERVE = 0, /* record; deny only what a block list names */
	MODE_ENFORCE,
};

/* map `config`, slot 0 */
#define RESOLVERS_MAX	8
#define ENGINE_DIRS_MAX 8 /* followed engine directories (with BuildKit's) */
/* Cgroups below them when the job started: never the job's. */
#define ENGINE_PREEXISTING_MAX 16384
struct rw_config {
	u32 mode;
	u32 policy;	/* 0: no policy loaded, everything is `allow` */
	u16 gate_port;	/* DNS gate on 127.0.0.1, 0 = none */
	u16 nresolvers; /* >0: DNS only to these (addr as IPv6, v4-mapped for IPv4) */
	/* Whole-job mode: the CI runner's worker, moved into the scope so that
	 * every step it starts is watched. Its own connections (to its CI
	 * server) are allowed and labelled; its children get no such pass. */
	u32 runner_tgid;
	/* Containers the job started through a container engine: scope slots
	 * 1..extra_scopes (slot 0 is the job's own cgroup). */
	u32 extra_scopes;
	/* Set when user space has put the checkout's file names in `tracked_names`: until then
	 * unlinks and renames cost no lookup. */
	u32 names_tracked;
	/* The agent's network namespace: only sockets in it can reach the DNS
	 * gate, so only their DNS is redirected (0: unknown, redirect all). */
	u64 gate_netns;
	struct {
		u8 addr[16];
		u16 port;
		u16 _pad[3];
	} resolvers[RESOLVERS_MAX];
	/* Engine directories the job follows (containers.c): a cgroup directly
	 * below one, not in engine_preexisting, is a container of the job's, from
	 * its birth (the cgroup hooks are attached to the directory itself). */
	u32 n_engines;
	/* Set before the hooks are attached to the first engine directory: from
	 * then on the cgroup programs tell the job's from the rest. */
	u32 engines_armed;
	struct {
		u64 cgid;  /* the directory's cgroup id */
		u32 level; /* its depth below the cgroup2 root */
		u32 _pad;
	} engines[ENGINE_DIRS_MAX];
};

#define SCOPE_SLOTS    17 /* the job's cgroup and up to 16 containers */
#define GATE_NETNS_MAX 32 /* containers' network namespaces where the DNS gate listens */

#define RULES_MAX 16
struct port_rule {
	u16 lo, hi;
	u8 proto; /* RPROTO_* mask (rwnet.h) */
	u8 flags; /* PRF_* */
};
/* The rule is there for a name the DNS gate pinned, not for an `ip:`/`cidr:` entry: a
 * connection it alone admits must name (SNI, Host) what the policy allows. */
#define PRF_PINNED 0x1
/* Value of the allow/block LPM tries: an address is reached on these ports.
 * `prefix` is the entry's own prefix length: when the longest match does not
 * admit the port, the kernel retries with a shorter prefix, so overlapping
 * entries (a /24 for port 80 inside a /16 for 443) add up without user space
 * having to fold them. */
#define LPM_RETRIES 8
struct addr_rules {
	u32 prefix;
	u32 nrules;
	struct port_rule r[RULES_MAX];
};
/* The reversed, lower-case name as a name trie key: "a.b.test" is "tset.b.a\0", so a
 * pattern's suffix (".b.test" reversed) is a prefix of every name under it. */
struct fb_name_key {
	u32 prefixlen; /* bits: (name length + 1) * 8, the terminating NUL included */
	u8 data[FB_NAME];
};
/* The start of what a job process wrote or read through OpenSSL's SSL_write/SSL_read (and
 * their _ex forms), sent only when it is an HTTP/1.x request or response head, or HTTP/2's
 * connection preface: user space pairs requests and responses per (process, SSL object). */
#define TLS_HEAD 1024
enum tls_dir {
	TLSD_WRITE = 1,
	TLSD_READ,
};
/* The library whose probes saw the data. OpenSSL is 0: the field was padding before. */
enum tls_lib {
	TLSL_OPENSSL = 0, /* SSL_write/SSL_read (libssl.so.3, node) */
	TLSL_GNUTLS,	  /* gnutls_record_send/gnutls_record_recv (libgnutls.so.30) */
	TLSL_MAX,
};
/* The TLS write probe's attach cookie (src/kernel/loader.c sets it per function): the library
 * (enum tls_lib), and whether the size argument is a size_t (SSL_write_ex, gnutls_record_send)
 * rather than SSL_write's int, whose register's upper half is undefined. Without cookies
 * (before 5.15) it reads 0: OpenSSL, an int. */
#define TLSW_LIB    0xff
#define TLSW_SIZE_T 0x100
struct ev_tls_data {
	struct ev_hdr h;
	u64 ssl;      /* the SSL object: one TLS connection within the process */
	u32 dir;      /* enum tls_dir */
	u32 len;      /* bytes the call wrote or read */
	u32 data_len; /* 0: the SSL object's first SSL_write (its announcement), no head */
	u32 lib;      /* enum tls_lib; with GnuTLS, `ssl` is the gnutls_session_t */
	u8 data[TLS_HEAD];
};
/* The part of ev_tls_data before its data: what an announcement sends. */
struct ev_tls_data_head {
	struct ev_hdr h;
	u64 ssl;
	u32 dir;
	u32 len;
	u32 data_len;
	u32 lib;
};

/* Value of the name tries (names_allow, names_block): a host pattern's port rules. The key
 * is the pattern reversed (struct fb_name_key): an exact name with its NUL, a wildcard's
 * suffix from its dot. `prefix` is the key's own length in bits, for the shorter-prefix
 * retry; `one_label`: a `*.` pattern, which admits names with exactly `dots` dots. */
struct name_rules {
	struct addr_rules a;
	u32 one_label;
	u32 dots;
	/* Per port rule a.r[i]: the request rules (`methods:`, `paths:`) of the entry it came
	 * from, an index into map http_rules; 0: any request. */
	u16 req[RULES_MAX];
};
#define NAMES_MAX 4096

/*
 * Request rules of an allow entry (`methods:`, `paths:`; bpf/httpjudge.bpf.h judges HTTP/1.x
 * requests by them, plain and inside TLS). Slot 0 of map http_rules is never used: a port
 * rule whose req is 0 admits any request. methods: HTTPM_* bits, 0 = any method; npaths 0 =
 * any path, else the target must start with one of the prefixes: each is compared as
 * HTTP_PATH_BYTES / 8 words, (target word & mask word) == prefix word, so a prefix is
 * zero-padded and mask has 0xff for its bytes only.
 */
#define HTTP_RULES_MAX	256
#define HTTP_PATHS_MAX	8
#define HTTP_PATH_BYTES 128
struct http_path_rule {
	u8 s[HTTP_PATH_BYTES];
	u8 mask[HTTP_PATH_BYTES];
	u32 len;
	u32 _pad;
};
struct http_rules {
	u32 methods;
	u32 npaths;
	struct http_path_rule p[HTTP_PATHS_MAX];
};
/* The methods a policy can name, X(NAME): bit i is the i-th (RFC 9110, PATCH, WebDAV). A
 * request with any other method is outside every `methods:` list. */
#define HTTP_METHODS(X)                                                                            \
	X(GET)                                                                                     \
	X(HEAD)                                                                                    \
	X(POST)                                                                                    \
	X(PUT)                                                                                     \
	X(DELETE)                                                                                  \
	X(CONNECT)                                                                                 \
	X(OPTIONS)                                                                                 \
	X(TRACE)                                                                                   \
	X(PATCH)                                                                                   \
	X(PROPFIND)                                                                                \
	X(PROPPATCH)                                                                               \
	X(MKCOL)                                                                                   \
	X(COPY)                                                                                    \
	X(MOVE)                                                                                    \
	X(LOCK)                                                                                    \
	X(UNLOCK)                                                                                  \
	X(REPORT)                                                                                  \
	X(SEARCH)                                                                                  \
	X(MKCALENDAR)                                                                              \
	X(QUERY)
enum http_method_index {
#define HTTPM_ENUM_(m) HTTPM_I_##m,
	HTTP_METHODS(HTTPM_ENUM_)
#undef HTTPM_ENUM_
	    HTTPM_COUNT,
};

struct lpm4_key {
	u32 prefixlen;
	u8 addr[4];
};
struct lpm6_key {
	u32 prefixlen;
	u8 addr[16];
};

/* map `fence_cfg`, slot 0: set by the loader. */
#define JOBPIDS_MAX 65536
struct fence_config {
	u64 scope_cgid;	 /* the job's cgroup id (its inode number on cgroup2) */
	u32 scope_level; /* its depth in the hierarchy */
	u32 self_tgid;	 /* runwarden itself: its cgroup moves are not tampering */
};

/* Plaintext of an SSL object streamed to user space (bpf/tls.bpf.h) in chunks, only as far as
 * user space asked (map `tls_want`): a capture level's headers and bodies, an HTTP/2
 * connection's frames. Each call sends at most TLS_CHUNKS_PER_CALL chunks; what the call moved
 * past them is said by call_len, never silently lost. */
#define TLS_CHUNK	    4096
#define TLS_CHUNKS_PER_CALL 16
/* ev_tls_chunk.flags */
#define TLSC_HEAD 0x1 /* the call starts a head (its head record came just before) */
#define TLSC_H2	  0x2 /* the SSL object carries HTTP/2: every byte is streamed */
#define TLSC_CUT  0x4 /* the call's bytes past this chunk were wanted but are not sent */
struct ev_tls_chunk {
	struct ev_hdr h;
	u64 ssl;
	u32 dir;      /* enum tls_dir */
	u32 call_len; /* bytes the call wrote or read */
	u32 off;      /* of this chunk in the call's buffer */
	u16 data_len;
	u16 flags; /* TLSC_* */
	u8 data[TLS_CHUNK];
};
/* Map `tls_want`, key struct tls_want_key: how many more bytes of an SSL object user space
 * wants. left[] counts down as chunks are sent; a new head in a direction sets its left to
 * arm[] (the connection's capture level, set by user space). h2: HTTP/2, every byte up to
 * left. Entries are made by the kernel at a head (from tls_capcfg) and by user space. */
struct tls_want_key {
	u64 ssl;
	u32 tgid;
	u32 _pad;
};
struct tls_want {
	u32 left[2]; /* [TLSD_WRITE - 1], [TLSD_READ - 1] */
	u32 arm[2];
	u32 h2;
	u32 _pad;
};
/* Map `tls_capcfg`, slot 0, set by user space for the job: what a new SSL object gets before
 * user space has chosen its level (the most any rule of the policy wants; 0: nothing, so a
 * policy of `summary` alone costs one map lookup per call), and the bytes per direction
 * streamed from an HTTP/2 connection (0: HTTP/2 not decoded). */
struct tls_capcfg {
	u32 arm[2];
	u32 h2_bytes;
	u32 _pad;
};
#define TLS_WANT_MAX 16384
/* ---- secrets leaving (bpf/secretscan.bpf.h, src/secrets/) ----
 * The job's own secrets are known to the kernel by an anchor (their first SECRET_ANCHOR bytes,
 * map secret_anchors) and verified by a hash of their first SECRET_VMAX bytes; well-known token
 * formats have fixed ids below SECRET_ID_FIRST. Which hosts may receive which secret: map
 * secret_to. Nothing of a secret is ever sent back: a record names its id. */
#define SECRET_ANCHOR	8
#define SECRET_VMAX	128  /* bytes of a secret verified (its first): a power of two */
#define SECRETS_MAX	1024 /* anchors the kernel holds */
#define SECRET_ALIASES	4    /* secrets sharing one anchor */
#define SECRET_TO_MAX	8192
#define SECRET_HOST	128  /* bytes of a destination name kept */
#define SECRET_SUFFIXES 8    /* parent names of a destination checked against wildcards */
#define SECRET_PAIRS	1024 /* u64 words of the 2-byte-window bitmap (65536 bits) */
enum secret_format {
	SF_GITHUB = 1,	/* ghp_ gho_ ghu_ ghs_ ghr_ github_pat_ */
	SF_NPM,		/* npm_ */
	SF_AWS,		/* AKIA, ASIA access key ids */
	SF_SLACK,	/* xoxa- xoxb- xoxp- xoxr- xoxs- */
	SF_PRIVATE_KEY, /* -----BEGIN ... PRIVATE KEY----- */
	SF_COUNT,
};
#define SECRET_ID_FIRST 16 /* ids of the job's own secrets start here */
struct secret_cand {
	u32 id;
	u32 vlen; /* bytes hashed: min(length, SECRET_VMAX) */
	u64 hash; /* FNV-1a 64 of those bytes */
};
struct secret_anchor {
	u32 n;
	u32 _pad;
	struct secret_cand c[SECRET_ALIASES];
};
/* secret_to: {id, how, rhash}: host hash reversed-FNV of the whole name (how 0), of a
 * ".suffix" a `**.` pattern allows below (how 1), or any host at all (how 2, rhash 0). */
struct secret_to_key {
	u32 id;
	u32 how;
	u64 rhash;
};
struct secret_cfg {
	u32 on;	     /* 0: nothing to scan for (no secrets, formats off) */
	u32 formats; /* bit (1 << SF_*) : formats scanned for */
};
enum secret_channel {
	SCH_TLS_WRITE = 1, /* the plaintext given to SSL_write */
	SCH_TCP,	   /* a plain TCP segment */
	SCH_DNS,	   /* a DNS question (user space: the gate) */
};
/* ev_secret.flags */
#define SECF_KILLED    0x1  /* enforce: the writer was killed before the library wrote */
#define SECF_DROPPED   0x2  /* enforce: the segment was dropped, the connection is reset */
#define SECF_NO_HOST   0x4  /* no destination name known (not HTTP/1.x, or no Host) */
#define SECF_UNSCANNED 0x8  /* no scratch free to scan with: stopped unscanned (enforce) */
#define SECF_SPLIT     0x10 /* the match began in earlier writes or segments: ev_secret.earlier */
struct ev_secret {
	struct ev_hdr h;
	u64 conn;      /* the SSL object, or the socket cookie */
	u32 id;	       /* enum secret_format, or a job secret's id (>= SECRET_ID_FIRST) */
	u32 offset;    /* where the match starts in the write or segment payload */
	u32 write_len; /* bytes of the write or segment payload */
	u8 channel;
	u8 verdict;
	u8 flags;
	u8 family;
	u16 dport;
	u16 sport;
	u16 host_len;
	u16 _pad;
	u32 earlier; /* SECF_SPLIT: bytes of the match that earlier writes or segments sent */
	u8 daddr[16];
	u8 saddr[16];
	char host[SECRET_HOST];
};

/* Index of the per-kind lost-event counters (map `lost`). */
#define LOST_SLOTS EV_KIND_MAX

#endif
