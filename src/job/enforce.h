/*
 * Turning a policy into kernel decisions: the allow/block tries, the mode,
 * the DNS gate that pins allowed names' addresses before the job sees them.
 * The kernel decides every connect; this module only keeps its maps true.
 */
#ifndef RW_ENFORCE_H
#define RW_ENFORCE_H
#include <stdbool.h>
#include <stdint.h>

#include "kernel/loader.h"
#include "common/strmap.h"
#include "policy/policy.h"

struct dnsgate;
struct dnsgate_event;
struct dnsgate_client;
struct strbuf;

struct enforce {
	struct policy *pol; /* the policy, or an empty one when the run has none */
	bool has_policy;
	bool gate_missing; /* no policy and no resolver to forward to: running without the gate */
	struct policy_list *blocklist;
	struct policy_set *set;
	enum policy_mode mode;
	const struct loader *ld;
	struct dnsgate *gate;
	struct strmap exact;   /* allow entries' own values, by trie key */
	struct strmap pins;    /* pinned address -> struct pin */
	struct strmap blocked; /* addresses blocked because a blocked name resolved to them */
	uint64_t pins_failed;  /* pins the kernel map refused (the gate answered SERVFAIL) */
	uint64_t pinned_total;
	uint64_t blocked_dropped; /* such addresses past the cap, or that the kernel refused */
	int warned_no_loop;	  /* methods/paths said once not to be judged (no bpf_loop) */
	/* Every question the gate answered, refused or dropped, with its verdict (enum verdict
	 * of bpf/events.h): where the run logs them. */
	void (*on_question)(void *ctx, const struct dnsgate_event *ev, int verdict);
	/* Without a policy the gate forwards each question to the resolver the job addressed
	 * (the address text, port 53), so observing changes nothing but the block list. */
	const char *(*resolver_of)(void *ctx, const struct dnsgate_client *who);
	/* Does a question's name hold one of the job's secrets (src/secrets/)? Refused in
	 * enforce mode whatever the policy says of the name. NULL: not asked. */
	bool (*secret_in_name)(void *ctx, const char *qname);
	void *on_question_ctx; /* for all three */
};

/* Loads the policy (policy_path NULL: none, the built-in block list only) and the block list
 * before the kernel side, so maps can be sized. mode: the --mode flag, or POLICY_MODE_UNSET. */
int enforce_load(struct enforce *e, const char *policy_path, const char *step,
		 enum policy_mode mode, char *err, size_t errlen);
/* Entries each trie must hold: the policy's plus room for pins. */
uint32_t enforce_lpm_capacity(const struct enforce *e);
/* Fills the kernel maps and starts the DNS gate (in every mode: the block list's names are
 * refused there; without a policy and without a resolver to forward to, it warns and runs
 * without the gate). */
int enforce_arm(struct enforce *e, const struct loader *ld, char *err, size_t errlen);
/* The gate's epoll fd (or -1) and its work, for the agent's loop. */
int enforce_gate_fd(const struct enforce *e);
void enforce_gate_dispatch(struct enforce *e);
/* End of the run: handles the questions already queued, then logs those still waiting for an
 * answer (the on_question sink sees every question the gate took). */
void enforce_gate_close(struct enforce *e);
/* The one judgement of a DNS question (enum verdict): block list, policy (with the names
 * derived from allowed ones, policy_check_question) and mode. gated: the question reached the
 * gate, which can refuse it; one that went another way and was not allowed is `audit`. */
int enforce_judge_question(const struct enforce *e, const char *qname, int qtype, bool gated,
			   const char **why);
/* A blocked name resolved off the gate to addr: the kernel refuses the address from now on, in
 * every mode (bounded; 0, or -1 when dropped and counted). */
int enforce_block_address(struct enforce *e, int family, const void *addr);
/* The "dns" object of summary.json: the gate's counters and what was dropped (no closing }). */
void enforce_gate_json(const struct enforce *e, struct strbuf *sb);
/* JSON object text describing the policy, for summary.json (caller frees). */
char *enforce_policy_json(const struct enforce *e);
void enforce_free(struct enforce *e);

#endif
