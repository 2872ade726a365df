/*
 * Which DNS questions a policy admits (see policy.h, docs/policy.md "Names derived from an
 * allowed name"). A name's allowance covers the questions standard clients derive from it:
 * the SRV lookup of a well-known service (`_http._tcp.<name>`, apt) and the HTTPS record of a
 * non-default port (`_8443._https.<name>`, RFC 9460). Each adds only fixed or port-number labels
 * that the name's own allowance already pays for, so no question admitted here can carry data
 * that the allowed name itself could not.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"

/* The services whose SRV records clients look up on their own (IANA service names, with the
 * port that getservbyname gives them). A fixed list, so the first label is never free text. */
static const struct {
	const char *name;
	uint16_t port;
} services[] = {
    {"http", 80},	   {"https", 443},	  {"ldap", 389},       {"ldaps", 636},
    {"kerberos", 88},	   {"kpasswd", 464},	  {"imap", 143},       {"imaps", 993},
    {"pop3", 110},	   {"pop3s", 995},	  {"submission", 587}, {"submissions", 465},
    {"xmpp-client", 5222}, {"xmpp-server", 5269}, {"sip", 5060},       {"sips", 5061},
    {"stun", 3478},	   {"turn", 3478},	  {"mongodb", 27017},
};

/* First label of name, which must start with '_': its text (without '_') into out. Returns the
 * rest of the name after the dot, or NULL. */
static const char *underscore_label(const char *name, char *out, size_t cap)
{
	const char *dot = strchr(name, '.');
	size_t n;

	if (name[0] != '_' || !dot)
		return NULL;
	n = (size_t)(dot - name) - 1;
	if (n == 0 || n >= cap)
		return NULL;
	memcpy(out, name + 1, n);
	out[n] = 0;
	return dot + 1;
}

static int service_port(const char *svc)
{
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (!strcasecmp(svc, services[i].name))
			return services[i].port;
	return -1;
}

/* 1..65535 in plain decimal (no sign, no leading zero), or -1. */
static int port_label(const char *s)
{
	long v = 0;

	if (!s[0] || s[0] == '0' || strlen(s) > 5)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v >= 1 && v <= 65535 ? (int)v : -1;
}

/* `_service._proto.<base>` asked as SRV. */
static bool derived_srv(const char *qname, struct policy_derived *d)
{
	char svc[32], proto[8];
	const char *rest = underscore_label(qname, svc, sizeof(svc)), *base;
	int port;

	if (!rest || (base = underscore_label(rest, proto, sizeof(proto))) == NULL)
		return false;
	port = service_port(svc);
	if (port < 0 || (strcasecmp(proto, "tcp") && strcasecmp(proto, "udp")))
		return false;
	*d = (struct policy_derived){base, (uint16_t)port,
				     strcasecmp(proto, "tcp") ? POLICY_PROTO_UDP : POLICY_PROTO_TCP,
				     "SRV of an allowed name"};
	return true;
}

/* `_port._https.<base>` asked as HTTPS (RFC 9460 section 9.1: the record of a port other than
 * 443). QUIC (HTTP/3) uses the same port over UDP, so either protocol's rule admits it. */
static bool derived_https(const char *qname, struct policy_derived *d)
{
	char pl[8], scheme[8];
	const char *rest = underscore_label(qname, pl, sizeof(pl)), *base;
	int port;

	if (!rest || (base = underscore_label(rest, scheme, sizeof(scheme))) == NULL)
		return false;
	port = port_label(pl);
	if (port < 0 || strcasecmp(scheme, "https"))
		return false;
	*d = (struct policy_derived){base, (uint16_t)port, POLICY_PROTO_TCP | POLICY_PROTO_UDP,
				     "HTTPS record of an allowed name"};
	return true;
}

int policy_qtype_of(const char *name)
{
	if (name && !strcmp(name, "SRV"))
		return POLICY_QTYPE_SRV;
	if (name && !strcmp(name, "HTTPS"))
		return POLICY_QTYPE_HTTPS;
	return 0;
}

bool policy_derived_question(const char *qname, int qtype, struct policy_derived *d)
{
	if (qtype == POLICY_QTYPE_SRV)
		return derived_srv(qname, d);
	if (qtype == POLICY_QTYPE_HTTPS)
		return derived_https(qname, d);
	return false;
}

/* The base name's verdict, narrowed to what the derived question needs: a blocked base blocks
 * the question, an allowed one admits it only if its rules reach the port over one of the
 * protocols. */
static enum policy_verdict base_verdict(const struct policy_set *s, const struct policy_derived *d,
					const char **why)
{
	struct policy_match bm;
	enum policy_verdict v = policy_check_host(s, d->base, &bm);
	static const unsigned protos[] = {POLICY_PROTO_TCP, POLICY_PROTO_UDP};

	if (v == POLICY_BLOCK)
		return POLICY_BLOCK;
	if (v != POLICY_ALLOW)
		return POLICY_DENY;
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if ((d->protos & protos[i]) &&
		    policy_rules_cover(bm.rules, bm.nrules, d->port, protos[i])) {
			if (why)
				*why = d->why;
			return POLICY_ALLOW;
		}
	return POLICY_DENY;
}

enum policy_verdict policy_check_question(const struct policy_set *s, const char *qname, int qtype,
					  const char **why)
{
	enum policy_verdict v = policy_check_host(s, qname, NULL), d = POLICY_DENY;
	struct policy_derived dq;

	if (why)
		*why = v == POLICY_BLOCK   ? "on a block list"
		       : v == POLICY_ALLOW ? "allowed name"
					   : "not allowed by the policy";
	if (v != POLICY_DENY)
		return v;
	if (policy_derived_question(qname, qtype, &dq))
		d = base_verdict(s, &dq, why);
	if (d == POLICY_BLOCK && why)
		*why = "derived from a blocked name";
	return d;
}
