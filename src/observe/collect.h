/*
 * The ring-buffer consumer: decodes kernel records in ring order, attributes
 * them through the process table, writes one chained log line per event and
 * feeds the run's aggregates. Single-threaded; runs in the agent's loop.
 */
#ifndef RW_COLLECT_H
#define RW_COLLECT_H
#include <stdbool.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "observe/capture.h"
#include "observe/fileid.h"
#include "observe/proctab.h"
#include "observe/sensitive.h"
#include "observe/summary.h"
#include "common/strmap.h"
#include "evidence/evlog.h"
#include "findings/findings.h"
#include "findings/redact.h"
#include "secrets/secrets.h"

#define SHIMS_MAX 256

struct shim;

struct collector {
	struct evlog log;
	const struct sensitive_list *sens;
	const char *step;
	pid_t runner_pid;	 /* whole-job mode: the CI runner's worker */
	const char *ci_provider; /* for labelling the runner's control-plane hosts */
	int64_t mono_off;
	struct proctab procs;
	struct strmap dns_pending; /* "cookie:id" -> struct dns_pending (questions off the gate) */
	size_t dns_pending_bytes;
	struct dns_msg *dns_scratch; /* the one parse buffer for packets off the gate */
	struct strmap hosts;	     /* address text -> host name it was resolved from (LRU) */
	size_t hosts_bytes;	     /* text held in hosts (keys and names), bounded */
	struct strmap redirected; /* socket cookie -> resolver the job addressed (gate mode, LRU) */
	/* The DNS gate's port on 127.0.0.1 (0: no gate). Questions to it are logged from the
	 * gate's own events; the packets only say which process sent them. */
	uint16_t gate_port;
	struct strmap gate_clients; /* "proto addr port" of a job socket -> struct dns_who */
	/* Questions that did not go through the gate: their verdict (enum verdict), and the
	 * kernel block of the addresses a blocked name resolved to. NULL: all "allow". */
	int (*judge_question)(void *ctx, const char *qname, int qtype);
	void (*block_address)(void *ctx, int family, const void *addr);
	void *judge_ctx;
	/* Following containers (job.c): a container's first exec can be read before the engine
	 * directory event that names the container; this looks at the directories again before
	 * a process is taken for the job's own. NULL: not following. */
	void (*containers_poll)(void *ctx);
	void *containers_ctx;
	uint64_t own_cgid; /* the job's own cgroup: no container's, never looked up */
	struct dns_drops {
		uint64_t pending_overflow; /* questions logged at once, unpaired, past the cap */
		uint64_t clients_evicted;  /* gate clients forgotten past the cap */
		uint64_t unattributed; /* gate questions no job packet could name a process for */
	} dns_drops;
	struct summary sum;
	struct strbuf body; /* reused for every line */
	/* The destination part of the last connect line and its summary item, reused while
	 * connects go to the same place (a flood's usual shape). hosts_gen moves whenever an
	 * address gets a new name, so a label learnt later is never missed. */
	struct dest_memo {
		bool valid;
		uint8_t family, proto, verdict;
		uint16_t dport;
		uint8_t daddr[16];
		uint64_t hosts_gen;
		char addr[INET6_ADDRSTRLEN];
		const char *host;   /* owned by hosts */
		struct strbuf frag; /* "proto":...,"host":... */
		struct agg *dest;   /* see summary_dest_ref */
	} dest_memo;
	uint64_t hosts_gen;
	bool io_error;
	/* Watched files by identity: "dev:ino" -> the name it is watched as.
	 * watch_file puts one into the kernel's set (NULL: not armed). */
	struct strmap watched;
	int (*watch_file)(const void *ctx, uint32_t kdev, uint64_t ino);
	const void *watch_ctx;
	bool watched_full; /* said once: the kernel's set is full */
	struct exe_cache exes;
	/* Containers of the job: cgroup id (decimal) -> identity as a JSON object. */
	struct strmap containers;
	/* Containers without a cgroup (rootless Podman, shim.h): container id -> struct shim,
	 * at most SHIMS_MAX; shims_listed: those a process was in, for the summary. */
	struct strmap shims;
	struct shim *shims_listed[SHIMS_MAX];
	size_t n_shims_listed;
	/* Findings drawn from the lines as they are written, and the key that redacts secrets
	 * from command lines before they are (src/findings/). */
	struct findings findings;
	struct redactor redact;
	uint64_t last_seq; /* seq of the line just written, 0 if it failed */
	/* HTTP inside TLS: "pid:ssl" -> the requests waiting for their responses (tlshttp.h). */
	struct strmap tls_pending;
	size_t tls_waiting;	       /* requests in it, all connections */
	uint64_t tls_pending_overflow; /* requests logged at once, unpaired, past the cap */
	/* Processes whose TLS went through the OpenSSL probes ("pid"), and the TLS connections
	 * (conn_name) to check against them at the end: content not seen is said. */
	struct strmap tls_pids;
	struct tls_conn {
		struct ev_hdr h;
		uint8_t family;
		uint16_t dport;
		uint8_t daddr[16];
		char name[FB_NAME];
	} * tls_conns;
	size_t n_tls_conns;
	uint64_t tls_conns_unlisted;
	/* Capture levels, HTTP/2, WebSocket (capture.h): the job sets its config and hooks
	 * (cfg, level_of, want) after collector_init. */
	struct httpcap cap;
	/* The job's secrets (src/secrets/): matched in what leaves, redacted from what is logged
	 * (command lines, request targets, DNS names). */
	struct secrets secrets;
	/* plain connections a secret stopped that could not be reset */
	uint64_t secret_resets_failed;
	/* lines a secret value was replaced in before writing */
	uint64_t secrets_redacted_lines;
};

struct dnsgate_event;
struct dns_msg;

/* A container joined the job: processes that exec in cgroup cgid are named by
 * identity_json (a JSON object) on every line they cause. */
void collector_add_container(struct collector *c, uint64_t cgid, const char *identity_json);

/* Adds a watched file (found at start, or opened under a watched name). */
void collector_watch(struct collector *c, const char *path, uint32_t kdev, uint64_t ino);

/* Takes log_fd, the new events.ndjson (see evlog_open_fd). */
int collector_init(struct collector *c, int log_fd, const struct sensitive_list *sens,
		   const char *step);
/* ring_buffer_sample_fn */
int collector_handle(void *ctx, void *data, size_t len);
/* A breach of the fence seen from user space (a detached link, the keeper
 * gone): logged as a "fence" event and the record marked incomplete with
 * reason. verdict: VERDICT_AUDIT (observe) or VERDICT_DENY (job ended). */
void collector_fence_note(struct collector *c, const char *what, const char *reason, int verdict);
/* One question the DNS gate answered, refused or dropped, with its verdict (enum verdict):
 * one dns line, attributed through the job's packets to the gate. Call after draining the
 * ring buffer, so the packet that carried the question has been seen. */
void collector_gate_question(struct collector *c, const struct dnsgate_event *ev, int verdict);
/* The resolver the client of a gate question addressed (address text), or NULL if unknown. */
struct dnsgate_client;
const char *collector_gate_server(const struct collector *c, const struct dnsgate_client *cl);
/* "pending_overflow":N,... members for summary.json's "dns" object. */
void collector_dns_drops_json(const struct collector *c, struct strbuf *sb);
/* A credential file the job read (or one found at start): its tokens join the secrets, and
 * the kernel's copy. */
void collector_secret_file(struct collector *c, const char *path, uint32_t kdev, uint64_t ino,
			   int64_t uid);
/* Logs DNS questions that never got an answer. */
void collector_finish(struct collector *c);
void collector_free(struct collector *c);

/* Renders helpers, exposed for unit tests. */
void render_open_flags(struct strbuf *sb, unsigned flags);
void render_result(struct strbuf *sb, int result);
void join_components(struct strbuf *sb, const char *data, size_t len);
void render_argv(struct strbuf *sb, const char *data, size_t len);

#endif
