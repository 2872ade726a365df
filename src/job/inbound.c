/* The policy's inbound peers into the kernel tries (see inbound.h). */
#include "job/inbound.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "events.h"

/* Adds one entry's port rules under its prefix (entries with the same
 * prefix share a value: their rules add up). */
static int add_entry(const struct loader *ld, const struct policy_entry *e)
{
	struct lpm6_key k6 = {.prefixlen = e->prefix};
	struct lpm4_key k4 = {.prefixlen = e->prefix};
	struct addr_rules v = {.prefix = e->prefix};
	int fd = loader_map_fd(ld, e->family == AF_INET ? LM_INBOUND4 : LM_INBOUND6);
	void *key = e->family == AF_INET ? (void *)&k4 : (void *)&k6;

	memcpy(k4.addr, e->addr, 4);
	memcpy(k6.addr, e->addr, 16);
	if (bpf_map_lookup_elem(fd, key, &v) || v.prefix != e->prefix) {
		memset(&v, 0, sizeof(v));
		v.prefix = e->prefix;
	}
	for (int i = 0; i < e->nrules && v.nrules < RULES_MAX; i++) {
		v.r[v.nrules].lo = e->rules[i].lo;
		v.r[v.nrules].hi = e->rules[i].hi;
		v.r[v.nrules].proto = e->rules[i].proto;
		v.nrules++;
	}
	return bpf_map_update_elem(fd, key, &v, BPF_ANY);
}

int inbound_arm(const struct policy *pol, const struct loader *ld, char *err, size_t errlen)
{
	/* The default: local clients on the loopback addresses they use by
	 * default. Other 127/8 addresses are not the same host for this
	 * purpose: tests and containers use them as stand-ins for others. */
	struct policy_entry def[2] = {
	    {.kind = POLICY_ENTRY_CIDR, .family = AF_INET, .prefix = 32, .nrules = 1},
	    {.kind = POLICY_ENTRY_CIDR, .family = AF_INET6, .prefix = 128, .nrules = 1},
	};
	const struct policy_entry *v = pol->inbound.v;
	size_t n = pol->inbound.n;

	if (!pol->has_inbound) {
		inet_pton(AF_INET, "127.0.0.1", def[0].addr);
		inet_pton(AF_INET6, "::1", def[1].addr);
		for (int i = 0; i < 2; i++)
			def[i].rules[0] = (struct policy_rule){0, 65535, POLICY_PROTO_ANY};
		v = def;
		n = 2;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].kind != POLICY_ENTRY_CIDR)
			continue; /* the parser refuses host entries here */
		if (add_entry(ld, &v[i])) {
			snprintf(err, errlen, "inbound: cannot load entry %zu into the kernel: %s",
				 i + 1, strerror(errno));
			return -1;
		}
	}
	return 0;
}
