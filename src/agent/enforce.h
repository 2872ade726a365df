/*
 * Turning a policy into kernel decisions: the allow/block tries, the mode,
 * the DNS gate that pins allowed names' addresses before the job sees them.
 * The kernel decides every connect; this module only keeps its maps true.
 */
#ifndef RW_ENFORCE_H
#define RW_ENFORCE_H
#include <stdbool.h>
#include <stdint.h>

#include "agent/loader.h"
#include "common/strmap.h"
#include "policy/policy.h"

struct dnsgate;

struct enforce {
	struct policy *pol;
	struct policy_list *blocklist;
	struct policy_set *set;
	enum policy_mode mode;
	const struct loader *ld;
	struct dnsgate *gate;
	struct strmap exact;  /* allow entries' own values, by trie key */
	struct strmap pins;   /* pinned address -> struct pin */
	uint64_t pins_failed; /* pins the kernel map refused (the gate answered SERVFAIL) */
	uint64_t pinned_total;
};

/* Loads the policy (and the built-in block list) before the kernel side, so
 * maps can be sized. mode: the --mode flag, or POLICY_MODE_UNSET. */
int enforce_load(struct enforce *e, const char *policy_path, const char *step,
		 enum policy_mode mode, char *err, size_t errlen);
/* Entries each trie must hold: the policy's plus room for pins. */
uint32_t enforce_lpm_capacity(const struct enforce *e);
/* Fills the kernel maps and starts the DNS gate. */
int enforce_arm(struct enforce *e, const struct loader *ld, char *err, size_t errlen);
/* The gate's epoll fd (or -1) and its work, for the agent's loop. */
int enforce_gate_fd(const struct enforce *e);
void enforce_gate_dispatch(struct enforce *e);
/* "allow", "audit", "deny" or "block" for a DNS question, as the gate judged it. */
const char *enforce_dns_verdict(const struct enforce *e, const char *qname);
/* JSON object text describing the policy, for summary.json (caller frees). */
char *enforce_policy_json(const struct enforce *e);
void enforce_free(struct enforce *e);

#endif
