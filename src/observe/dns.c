/* DNS wire parsing via libresolv (see dns.h). */
#include "observe/dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>

const char *dns_type_name(int type, char *buf, size_t len)
{
	static const struct {
		int t;
		const char *n;
	} names[] = {{ns_t_a, "A"},	{ns_t_aaaa, "AAAA"}, {ns_t_cname, "CNAME"},
		     {ns_t_mx, "MX"},	{ns_t_txt, "TXT"},   {ns_t_ns, "NS"},
		     {ns_t_ptr, "PTR"}, {ns_t_srv, "SRV"},   {ns_t_soa, "SOA"},
		     {ns_t_any, "ANY"}, {64, "SVCB"},	     {65, "HTTPS"}};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].t == type)
			return names[i].n;
	snprintf(buf, len, "TYPE%d", type);
	return buf;
}

const char *dns_rcode_name(int rcode, char *buf, size_t len)
{
	static const char *names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
				      "NXDOMAIN", "NOTIMP",  "REFUSED"};

	if (rcode >= 0 && rcode < (int)(sizeof(names) / sizeof(names[0])))
		return names[rcode];
	snprintf(buf, len, "RCODE%d", rcode);
	return buf;
}

int dns_parse(const uint8_t *pkt, size_t len, bool tcp, struct dns_msg *m, char *err, size_t errlen)
{
	ns_msg h;
	ns_rr rr;

	memset(m, 0, sizeof(*m));
	if (tcp) {
		size_t mlen;

		if (len < 2) {
			snprintf(err, errlen, "TCP DNS segment shorter than its length prefix");
			return -1;
		}
		mlen = (size_t)pkt[0] << 8 | pkt[1];
		pkt += 2;
		len -= 2;
		/* A message split over segments is parsed from what we have;
		 * ns_initparse rejects it if the header itself is cut. */
		if (mlen < len)
			len = mlen;
	}
	if (ns_initparse(pkt, len, &h) < 0) {
		snprintf(err, errlen, "malformed DNS message (%zu bytes): %s", len,
			 strerror(errno));
		return -1;
	}
	m->id = ns_msg_id(h);
	m->response = ns_msg_getflag(h, ns_f_qr);
	m->rcode = ns_msg_getflag(h, ns_f_rcode);
	if (ns_msg_count(h, ns_s_qd) < 1 || ns_parserr(&h, ns_s_qd, 0, &rr) < 0) {
		snprintf(err, errlen, "DNS message without a readable question");
		return -1;
	}
	/* ns_rr_name is already in presentation format (escaped by libresolv). */
	snprintf(m->qname, sizeof(m->qname), "%s", ns_rr_name(rr)[0] ? ns_rr_name(rr) : ".");
	m->qtype = ns_rr_type(rr);

	for (int i = 0; m->response && i < ns_msg_count(h, ns_s_an); i++) {
		struct dns_answer *a;
		int t;

		if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
			break; /* keep what parsed; a cut message still names its answers */
		t = ns_rr_type(rr);
		if (t != ns_t_a && t != ns_t_aaaa && t != ns_t_cname)
			continue;
		if (m->n_answers == DNS_MAX_ANSWERS) {
			m->answers_truncated = true;
			break;
		}
		a = &m->answers[m->n_answers];
		a->type = t;
		a->ttl = ns_rr_ttl(rr);
		snprintf(a->owner, sizeof(a->owner), "%s", ns_rr_name(rr));
		if (t == ns_t_a && ns_rr_rdlen(rr) == 4) {
			inet_ntop(AF_INET, ns_rr_rdata(rr), a->data, sizeof(a->data));
		} else if (t == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
			inet_ntop(AF_INET6, ns_rr_rdata(rr), a->data, sizeof(a->data));
		} else if (t == ns_t_cname) {
			if (ns_name_uncompress(ns_msg_base(h), ns_msg_end(h), ns_rr_rdata(rr),
					       a->data, sizeof(a->data)) < 0)
				continue;
		} else {
			continue;
		}
		m->n_answers++;
	}
	return 0;
}

int dns_parse_question(const uint8_t *pkt, size_t len, bool tcp, struct dns_msg *m, char *err,
		       size_t errlen)
{
	uint8_t wire[NS_MAXCDNAME];
	int n;

	memset(m, 0, sizeof(*m));
	if (tcp) {
		if (len < 2) {
			snprintf(err, errlen, "TCP DNS segment shorter than its length prefix");
			return -1;
		}
		pkt += 2;
		len -= 2;
	}
	/* ns_initparse wants the whole message; the header and the question come first, so
	 * libresolv's name reader still gets them from a cut copy. */
	if (len < NS_HFIXEDSZ || (pkt[4] << 8 | pkt[5]) < 1) {
		snprintf(err, errlen, "cut DNS message without a question");
		return -1;
	}
	n = ns_name_unpack(pkt, pkt + len, pkt + NS_HFIXEDSZ, wire, sizeof(wire));
	if (n < 0 || (size_t)NS_HFIXEDSZ + (size_t)n + 4 > len ||
	    ns_name_ntop(wire, m->qname, sizeof(m->qname)) < 0) {
		snprintf(err, errlen, "cut DNS message with an unreadable question");
		return -1;
	}
	if (!m->qname[0])
		strcpy(m->qname, ".");
	m->id = (uint16_t)(pkt[0] << 8 | pkt[1]);
	m->response = pkt[2] & 0x80;
	m->rcode = pkt[3] & 0x0f;
	m->qtype = pkt[NS_HFIXEDSZ + n] << 8 | pkt[NS_HFIXEDSZ + n + 1];
	return 0;
}
