/* Capture levels by policy (jobcapture.h). */
#include "job/jobcapture.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

struct capture_judge {
	const struct enforce *e;
	const struct capture_cfg *cfg;
	const struct loader *ld;
};
/* One job per process: the hooks' context. */
static struct capture_judge judge;

/* The authority without its port: "host", "host:port", "[v6]:port". */
static void authority_host(const char *a, char *out, size_t n)
{
	const char *end;

	if (a[0] == '[') {
		end = strchr(a, ']');
		snprintf(out, n, "%.*s", end ? (int)(end - a - 1) : 0, a + 1);
		return;
	}
	end = strchr(a, ':');
	if (end && strchr(end + 1, ':'))
		end = NULL; /* a bare IPv6 literal */
	snprintf(out, n, "%.*s", end ? (int)(end - a) : (int)strlen(a), a);
}

/* The level of a transaction: the admitting entry's `capture:`, else the policy's default for
 * allowed traffic; not_allowed for what no entry admits (observe mode lets it through) and
 * for a request that names no host. */
static enum capture_level level_of(void *ctx, const char *authority)
{
	const struct capture_judge *j = ctx;
	struct policy_match m = {0};
	enum policy_verdict v;
	char host[POLICY_HOST_MAX + 8];
	uint8_t addr[16];

	if (!j->e->has_policy)
		return j->cfg->allowed;
	if (!authority || !authority[0])
		return j->cfg->not_allowed;
	authority_host(authority, host, sizeof(host));
	if (inet_pton(AF_INET, host, addr) == 1)
		v = policy_check_addr(j->e->set, AF_INET, addr, 443, POLICY_PROTO_TCP, &m);
	else if (inet_pton(AF_INET6, host, addr) == 1)
		v = policy_check_addr(j->e->set, AF_INET6, addr, 443, POLICY_PROTO_TCP, &m);
	else
		v = policy_check_host(j->e->set, host, &m);
	if (v != POLICY_ALLOW)
		return j->cfg->not_allowed;
	return m.entry && m.entry->capture != CAPTURE_UNSET ? m.entry->capture : j->cfg->allowed;
}

static int want(void *ctx, uint32_t tgid, uint64_t ssl, const struct tls_want *w)
{
	const struct capture_judge *j = ctx;
	struct tls_want_key k = {.ssl = ssl, .tgid = tgid};

	return bpf_map_update_elem(loader_map_fd(j->ld, LM_TLS_WANT), &k, w, BPF_ANY);
}

int job_capture_arm(struct httpcap *cap, const struct enforce *e, const struct loader *ld,
		    char *err, size_t errlen)
{
	struct tls_capcfg kc;
	uint32_t zero = 0;

	capture_cfg_from_policy(&cap->cfg, e->has_policy ? &e->pol->capture : NULL);
	for (size_t i = 0; e->has_policy && e->set && i < e->set->allow.n; i++)
		if (e->set->allow.v[i].capture > cap->cfg.top)
			cap->cfg.top = e->set->allow.v[i].capture;
	judge.e = e;
	judge.cfg = &cap->cfg;
	judge.ld = ld;
	cap->level_of = level_of;
	cap->want = want;
	cap->judge_ctx = &judge;
	capture_kernel_cfg(&cap->cfg, &kc);
	if (bpf_map_update_elem(loader_map_fd(ld, LM_TLS_CAPCFG), &zero, &kc, BPF_ANY)) {
		snprintf(err, errlen, "cannot set the kernel's capture config: %s",
			 strerror(errno));
		return -1;
	}
	return 0;
}
