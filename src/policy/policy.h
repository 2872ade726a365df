/*
 * Egress policy: the model a policy file (YAML, `version: 1`) becomes, its strict loader, the
 * built-in block list, and the questions the rest of runwarden asks of a policy (may this name be
 * resolved, may this address/port/proto be reached, which CIDRs go into the kernel tries).
 * docs/policy.md is the user-facing description of the file; this header is the program-facing one.
 *
 * Precedence, everywhere: block (policy `block:`, the selected step's `block:`, the built-in list)
 * beats allow (top-level `allow:` plus the selected step's `allow:`), and anything not allowed is
 * denied. The caller turns POLICY_DENY into `audit` in observe/learn mode; POLICY_BLOCK applies
 * in every mode.
 *
 * Host patterns (all matching is ASCII case-insensitive and ignores one trailing dot):
 *   example.test      exactly that name
 *   *.example.test    exactly one more label: a.example.test, not a.b.example.test, not
 *                     example.test itself
 *   **.example.test   one or more labels: a.example.test, a.b.example.test, not example.test
 * A pattern never matches on a bare suffix: github.com does not admit evilgithub.com, and
 * *.github.com does not admit evilgithub.com or github.com.evil.test.
 */
#ifndef RW_POLICY_H
#define RW_POLICY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "findings/severity.h"
#include "rwnet.h"

/* Refuse policy files larger than this (bounded memory; 100,000 entries fit easily). */
#define POLICY_MAX_FILE_BYTES (16u << 20)
/* DNS limits: 253 characters in presentation form, 63 per label. */
#define POLICY_HOST_MAX 253
/* Longest step name, in bytes. */
#define POLICY_STEP_MAX 128
/* Port rules per destination; see struct policy_cidr for why this is a small fixed number. */
#define POLICY_RULES_MAX 16

enum policy_mode {
	POLICY_MODE_UNSET = 0, /* file did not say; caller picks (observe) */
	POLICY_MODE_OBSERVE,
	POLICY_MODE_LEARN,
	POLICY_MODE_ENFORCE,
};

/* Protocol masks, the kernel's (bpf/rwnet.h): a destination is judged with its own protocol's
 * bit, a rule holds one protocol or all (`any`, which also covers protocols with no name). */
#define POLICY_PROTO_TCP     ((unsigned)RPROTO_TCP)
#define POLICY_PROTO_UDP     ((unsigned)RPROTO_UDP)
#define POLICY_PROTO_UDPLITE ((unsigned)RPROTO_UDPLITE)
#define POLICY_PROTO_ICMP    ((unsigned)RPROTO_ICMP)
#define POLICY_PROTO_ANY     ((unsigned)RPROTO_ANY)

/* Named apart from bpf/events.h's enum verdict, which the agent includes alongside. */
enum policy_verdict {
	POLICY_DENY = 0, /* not allowed: EPERM in enforce, `audit` in observe/learn */
	POLICY_ALLOW,
	POLICY_BLOCK, /* on a block list: denied in every mode */
};

enum policy_refuse {
	POLICY_REFUSE_NXDOMAIN = 0, /* rcode 3 (default): clients give up at once */
	POLICY_REFUSE_REFUSED,	    /* DNS rcode 5: glibc reports a temporary failure */
};

/* Ports lo..hi inclusive, for the protocols in the mask. An entry without `ports:` has one rule
 * 0..65535 (0 is included so a connect to port 0 is not a loophole in "all ports"). */
struct policy_rule {
	uint16_t lo, hi;
	uint8_t proto;
};

/* How much of an HTTP transaction is written to the log (docs/policy.md, `capture:`). */
enum capture_level {
	CAPTURE_UNSET = 0, /* an entry that does not say: the policy's default */
	CAPTURE_SUMMARY,   /* the transaction line */
	CAPTURE_DETAILS,   /* + request and response headers, credentials redacted */
	CAPTURE_FULL,	   /* + bodies, up to body_bytes per direction */
};
const char *capture_level_name(enum capture_level l);

/* Capture limits: defaults, and the hard caps a policy cannot raise. */
#define CAPTURE_BODY_DEFAULT   (64u << 10)
#define CAPTURE_BODY_MAX       (1u << 20)
#define CAPTURE_BUDGET_DEFAULT (64ull << 20)
#define CAPTURE_BUDGET_MAX     (1ull << 30)
#define CAPTURE_H2_DEFAULT     (16u << 20)
#define CAPTURE_H2_MAX	       (256u << 20)
/* Headers kept per direction per transaction (details and full). */
#define CAPTURE_HEADER_BYTES (16u << 10)

struct policy_capture {
	enum capture_level allowed;	/* `default:` (CAPTURE_UNSET: summary) */
	enum capture_level not_allowed; /* `not_allowed:` (CAPTURE_UNSET: as default) */
	uint32_t body_bytes;		/* 0: CAPTURE_BODY_DEFAULT */
	uint64_t budget_bytes;		/* 0: CAPTURE_BUDGET_DEFAULT */
	uint32_t h2_bytes;		/* 0: CAPTURE_H2_DEFAULT */
	bool written;			/* the file had `capture:` */
};

enum policy_entry_kind {
	POLICY_ENTRY_HOST = 1,
	POLICY_ENTRY_CIDR, /* `ip:` is a CIDR of full length */
};

enum policy_origin {
	POLICY_FROM_FILE = 0, /* top-level allow/block */
	POLICY_FROM_STEP,     /* a steps.NAME section */
	POLICY_FROM_BLOCKLIST,
};

/*
 * What requests an allow `host:` entry admits (`methods:`, `paths:`), judged by the kernel on
 * every HTTP/1.x request naming the host, plain or inside TLS (bpf/httpjudge.bpf.h). methods:
 * bit i is the i-th method of HTTP_METHODS (bpf/events.h), 0 = any; paths: target prefixes,
 * none = any. The bounds are the kernel's (struct http_rules).
 */
#define POLICY_PATHS_MAX HTTP_PATHS_MAX
#define POLICY_PATH_MAX	 HTTP_PATH_BYTES
struct policy_http {
	uint32_t methods;
	uint8_t npaths;
	char *paths[POLICY_PATHS_MAX];
};

struct policy_entry {
	enum policy_entry_kind kind;
	/* HOST: normalised pattern, lower case, no trailing dot ("*.x.test", "**.x.test", "x.test")
	 */
	char *host;
	/* CIDR: AF_INET or AF_INET6; v4-mapped IPv6 (::ffff:a.b.c.d/96+n) is stored as AF_INET /n.
	 * addr is network order, masked to prefix; AF_INET uses addr[0..3]. */
	int family;
	uint8_t addr[16];
	uint8_t prefix;
	/* Sorted, non-overlapping per protocol; 1..POLICY_RULES_MAX. */
	uint8_t nrules;
	struct policy_rule rules[POLICY_RULES_MAX];
	/* Allow host entries only: NULL admits any request (no `methods:`, no `paths:`). */
	struct policy_http *http;
	/* `capture:` of an allow entry (CAPTURE_UNSET: the policy's default). */
	enum capture_level capture;
	/* Where it came from, for explanations ("blocked by blocklist line 12"). */
	enum policy_origin origin;
	uint32_t line, col;
};

struct policy_list {
	struct policy_entry *v;
	size_t n, cap;
};

struct policy_step {
	char *name;
	struct policy_list allow, block;
	uint32_t line, col;
};

/* A resolver or upstream address; port 0 means the default (53). */
struct policy_addr {
	int family;
	uint8_t addr[16];
	uint16_t port;
};

struct policy_dns {
	struct policy_addr *resolvers; /* none: the job may address any resolver (all are gated) */
	size_t nresolvers;
	bool refuse_unlisted; /* default true */
	enum policy_refuse refuse_with;
	bool has_upstream; /* false: the gate uses the host's own resolver */
	struct policy_addr upstream;
	unsigned pin_grace_s; /* seconds a pin outlives its TTL; 0: the gate's default (30) */
};

/* `secrets:` (docs/policy.md): more variables whose values are secrets, and where a secret may
 * go. A rule names a variable, a credential file (glob) or a token format; `to:` lists host
 * patterns: a name, "**.suffix" (any name below), "*" (anywhere). */
enum policy_secret_kind {
	POLICY_SECRET_ENV = 1,
	POLICY_SECRET_FILE,
	POLICY_SECRET_FORMAT,
};
#define POLICY_SECRET_TO_MAX 32
struct policy_secret_rule {
	enum policy_secret_kind kind;
	char *name;
	char *to[POLICY_SECRET_TO_MAX];
	size_t nto;
	uint32_t line;
};
struct policy_secrets {
	char **env;
	size_t nenv;
	struct policy_secret_rule *rules;
	size_t nrules;
};

struct policy {
	char *path;
	int version;
	enum policy_mode mode;
	int fail_on_violation; /* -1 unset (see policy_fails_on_violation), 0, 1 */
	struct policy_list allow, block;
	/* Peers that may open connections to the job (`inbound:`; cidr/ip
	 * entries, ports are the job's local ports). Absent: 127.0.0.1 and ::1. */
	struct policy_list inbound;
	bool has_inbound;
	struct policy_step *steps;
	size_t nsteps;
	struct policy_dns dns;
	char **files; /* absolute paths */
	size_t nfiles;
	/* `on_finding:` what each finding severity does (lockdown), resolved: a severity the file
	 * does not name takes the action of the nearest lower one it names. written[s]: named. */
	enum finding_action on_finding[SEV_COUNT];
	bool on_finding_written[SEV_COUNT];
	struct policy_capture capture;
	char sha256[65]; /* hex of the file's bytes, exactly what was parsed */
	struct policy_secrets secrets;
};

/*
 * Loads and validates a policy file. On error returns NULL and writes one line to err:
 * "FILE:LINE:COL: why" (line and column 1-based, from libyaml's marks).
 */
struct policy *policy_load(const char *path, char *err, size_t errlen);
/* Same, from memory; name is used in messages and stored as path. */
struct policy *policy_parse(const char *name, const char *text, size_t len, char *err,
			    size_t errlen);
void policy_free(struct policy *p);

const struct policy_step *policy_find_step(const struct policy *p, const char *name);
/* The fail_on_violation the run should use in mode (explicit value, else enforce → true). */
bool policy_fails_on_violation(const struct policy *p, enum policy_mode mode);
const char *policy_mode_name(enum policy_mode m);
/* "observe"/"learn"/"enforce" → mode, else POLICY_MODE_UNSET (for the --mode flag). */
enum policy_mode policy_mode_parse(const char *s);

/*
 * The built-in block list: one host pattern, IP or CIDR per line, '#' starts a comment.
 * path NULL: RW_DATADIR/blocklist.txt when it exists (the updatable copy `make install` puts
 * there), else the copy compiled into the binary. Errors as for policy_load.
 */
struct policy_list *policy_load_blocklist(const char *path, char *err, size_t errlen);
struct policy_list *policy_parse_blocklist(const char *name, const char *text, size_t len,
					   char *err, size_t errlen);
/* The compiled-in copy of data/blocklist.txt, and where policy_load_blocklist(NULL) looks. */
extern const char policy_blocklist_builtin[];
const char *policy_blocklist_default_path(void);
void policy_list_free(struct policy_list *l);

/*
 * The flattened rules a run uses: top-level allow + step allow; top-level block + step block +
 * blocklist (may be NULL). step NULL: top level only. An unknown step is an error (a typo in
 * --step must not silently run with fewer allowances). Free with policy_set_free.
 */
struct policy_set {
	struct policy_list allow, block; /* deep copies: the set outlives p and blocklist */
	struct policy_set_index *idx;	 /* host lookup tables, private */
};
struct policy_set *policy_effective(const struct policy *p, const char *step,
				    const struct policy_list *blocklist, char *err, size_t errlen);
void policy_set_free(struct policy_set *s);

/* Pattern as written in a policy (normalised or not) against a name; false for invalid names. */
bool host_pattern_match(const char *pattern, const char *name);

/* What a host check found: the union of the matching allow entries' port rules (capped at
 * POLICY_RULES_MAX, keeping the narrower first rules: overflow denies, never widens), and the
 * first matching entry (block entry for POLICY_BLOCK). */
struct policy_match {
	const struct policy_entry *entry;
	uint8_t nrules;
	struct policy_rule rules[POLICY_RULES_MAX];
};

/* Name as the job asked it (any case, optional trailing dot). O(labels) with hash lookups. m may
 * be NULL. Names that are not valid host names (empty labels, bytes outside [A-Za-z0-9_-]) are
 * never allowed, but are still POLICY_BLOCK when their trailing labels fall under a block
 * pattern ("a b.evil.test" under evil.test), so junk cannot smuggle a question into a blocked
 * zone in observe mode. The gate should pass presentation form; a label holding a '.' byte must
 * be refused by the gate before it gets here, since text cannot show that boundary. */
enum policy_verdict policy_check_host(const struct policy_set *s, const char *name,
				      struct policy_match *m);
/*
 * A DNS question (name as for policy_check_host, qtype numeric). The name's own verdict, except
 * that a name the policy does not list is admitted when a standard client derives it from an
 * allowed name: qtype SRV with `_SERVICE._tcp|_udp.NAME` for a well-known SERVICE whose port and
 * protocol NAME's rules allow, and qtype HTTPS with `_PORT._https.NAME` for a PORT NAME's rules
 * allow. Derived from a blocked name: POLICY_BLOCK. why (may be NULL) gets a static reason.
 * Admitting a question pins nothing: only answers to the allowed name itself are pinned.
 */
enum policy_verdict policy_check_question(const struct policy_set *s, const char *qname, int qtype,
					  const char **why);
/* A question standard clients derive from another name, as policy_check_question admits it:
 * the base name (a suffix of qname), the port its rules must reach over one of protos
 * (POLICY_PROTO_* bits), and why (static). False for any other question. */
struct policy_derived {
	const char *base;
	uint16_t port;
	unsigned protos;
	const char *why;
};
bool policy_derived_question(const char *qname, int qtype, struct policy_derived *d);
/* The query types policy_check_question tells apart, and their numbers from the names the
 * event log gives them ("SRV", "HTTPS"); 0 for any other name, which is judged by name alone. */
#define POLICY_QTYPE_SRV   33
#define POLICY_QTYPE_HTTPS 65
int policy_qtype_of(const char *name);
/* addr: 4 bytes for AF_INET, 16 for AF_INET6 (v4-mapped is checked as IPv4); port host order;
 * proto POLICY_PROTO_TCP or POLICY_PROTO_UDP. Only address entries count here: host entries
 * reach the kernel as the addresses the DNS gate pins. Linear: the kernel tries are the fast
 * path, this one is for explanations and tests. */
enum policy_verdict policy_check_addr(const struct policy_set *s, int family, const void *addr,
				      uint16_t port, unsigned proto, struct policy_match *m);
/* Does any rule cover port/proto. */
bool policy_rules_cover(const struct policy_rule *r, size_t n, uint16_t port, unsigned proto);

/*
 * Kernel-facing form of the address entries: one record per distinct (family, prefix, addr),
 * ready for a BPF_MAP_TYPE_LPM_TRIE whose key is {u32 prefixlen; u8 addr[4 or 16]} and whose
 * value is {u8 nrules; struct {u16 lo, hi; u8 proto;} rules[POLICY_RULES_MAX]}. A connect is
 * covered when some rule has the socket's proto bit and lo <= dport <= hi.
 *
 * The rules of every shorter prefix that covers a record are folded into it, so the trie's
 * longest-prefix answer alone decides: allowing 10.0.0.0/8 port 443 and 10.1.0.0/16 port 80
 * yields 10.1.0.0/16 → {80, 443}. Use one trie per family (v4-mapped destinations: look up the
 * embedded IPv4 address in the v4 trie) and one pair for block, checked first. More than
 * POLICY_RULES_MAX merged rules for one prefix is an error naming it.
 * Records come sorted (family, prefix, address). fn returning non-zero stops the walk and is
 * returned.
 */
struct policy_cidr {
	int family;
	uint8_t addr[16];
	uint8_t prefix;
	uint8_t nrules;
	struct policy_rule rules[POLICY_RULES_MAX];
};
typedef int (*policy_cidr_fn)(const struct policy_cidr *c, void *arg);
int policy_for_each_cidr(const struct policy_set *s, bool block, policy_cidr_fn fn, void *arg,
			 char *err, size_t errlen);

/* Normalises a host pattern (see above) into out (POLICY_HOST_MAX + 4 bytes). Returns NULL or
 * a static reason. Shared by the parser, the block list and `learn`. */
const char *policy_host_normalise(const char *in, size_t len, char *out);
/* Parses "ADDR" (cidr false) or "ADDR/N" (cidr true); v4-mapped → AF_INET. NULL or reason
 * (reason may point into why, WHYLEN bytes, for messages that quote a fix). */
#define POLICY_WHYLEN 128
const char *policy_addr_parse(const char *s, bool cidr, int *family, uint8_t addr[16],
			      uint8_t *prefix, char why[POLICY_WHYLEN]);
/* The name of method bit i ("GET"), NULL past the list; the bit of a method name, 0 if none. */
const char *policy_http_method_name(unsigned i);
uint32_t policy_http_method_bit(const char *name, size_t len);
/* NULL when path is a valid `paths:` prefix, else a static reason. */
const char *policy_http_path_check(const char *path, size_t len);
/* Does the entry's request rules admit method and target (as the kernel judges them)? */
bool policy_http_admits(const struct policy_http *h, const char *method, const char *target);
/* A request to host (as the job named it) on port (-1: not known, as inside TLS: any TCP port
 * of an entry counts) against the request rules of the allow entries admitting the host, as
 * the kernel judges it (bpf/httpjudge.bpf.h). POLICY_ALLOW also when no entry names the host
 * (then the name alone is judged); POLICY_DENY with why "method_not_allowed" or
 * "path_not_allowed". */
enum policy_verdict policy_check_request(const struct policy_set *s, const char *host, int port,
					 const char *method, const char *target, const char **why);
/* Appends the entry as YAML flow text: host: "x", ports: [...], proto: tcp. */
struct strbuf;
void policy_entry_format(struct strbuf *sb, const struct policy_entry *e);
/* A normalised, re-loadable YAML rendering of p (what `policy check` prints). */
void policy_format(struct strbuf *sb, const struct policy *p);

#endif
