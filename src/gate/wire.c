/*
 * DNS gate, message layer (see wire.h). Untrusted bytes reach only libresolv; what this file
 * adds is the gate's reading of them: which questions are well-formed enough to forward,
 * which replies belong to which question, and which addresses an answer vouches for.
 */
#include "gate/wire.h"

#include <arpa/nameser.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s += 'a' - 'A';
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint8_t *put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

/* Length of a name that ns_name_unpack already produced (so it is well-formed and bounded). */
static size_t wire_len(const uint8_t *w)
{
	size_t n = 0;

	while (w[n])
		n += (size_t)w[n] + 1;
	return n + 1;
}

int gw_rcode(const uint8_t *pkt)
{
	return pkt[3] & 0x0f;
}

bool gw_truncated(const uint8_t *pkt)
{
	return pkt[2] & 0x02;
}

uint16_t gw_get_id(const uint8_t *pkt)
{
	return get16(pkt);
}

void gw_set_id(uint8_t *pkt, uint16_t id)
{
	put16(pkt, id);
}

enum gw_parse gw_parse_query(const uint8_t *pkt, size_t len, struct gw_question *q, int *rcode,
			     const char **why)
{
	ns_msg h;
	ns_rr rr;
	int n;

	memset(q, 0, sizeof(*q));
	q->udp_size = 512;
	*rcode = ns_r_formerr;
	if (len < GW_HDR) {
		*why = "shorter than a DNS header";
		return GW_DROP;
	}
	q->id = get16(pkt);
	/* Answering a response could start a loop between two forwarders; drop it. */
	if (pkt[2] & 0x80) {
		*why = "a response, not a query";
		return GW_DROP;
	}
	q->opcode = (pkt[2] >> 3) & 0x0f;
	q->rd = pkt[2] & 0x01;
	q->cd = pkt[3] & 0x10;
	if (q->opcode != ns_o_query) {
		/* NOTIFY, UPDATE, ...: nothing a build job needs, and UPDATE carries data. */
		*rcode = ns_r_notimpl;
		*why = "opcode is not QUERY";
		return GW_REPLY;
	}
	if (len > GW_QUERY_MAX) {
		*why = "query larger than any question needs";
		return GW_REPLY;
	}
	if (ns_initparse(pkt, (int)len, &h) < 0) {
		*why = "malformed message";
		return GW_REPLY;
	}
	if (ns_msg_count(h, ns_s_qd) == 0) {
		*why = "no question";
		return GW_REPLY;
	}
	if (ns_msg_count(h, ns_s_qd) > 1) {
		/* No resolver supports it and every question would need its own verdict. */
		*rcode = ns_r_refused;
		*why = "more than one question";
		return GW_REPLY;
	}
	n = ns_name_unpack(pkt, pkt + len, pkt + GW_HDR, q->wire, sizeof(q->wire));
	if (n < 0 || ns_parserr(&h, ns_s_qd, 0, &rr) < 0 ||
	    ns_name_ntop(q->wire, q->name, sizeof(q->name)) < 0) {
		*why = "unreadable question";
		return GW_REPLY;
	}
	q->wire_len = wire_len(q->wire);
	q->qtype = ns_rr_type(rr);
	q->qclass = ns_rr_class(rr);
	lower(q->name);
	q->escaped = strchr(q->name, '\\') != NULL;

	for (int i = 0; i < ns_msg_count(h, ns_s_ar); i++) {
		if (ns_parserr(&h, ns_s_ar, i, &rr) < 0) {
			*why = "unreadable additional record";
			return GW_REPLY;
		}
		if (ns_rr_type(rr) != ns_t_opt)
			continue;
		/* RFC 6891 6.1.1: more than one OPT, or one not at the root, is FORMERR. */
		if (q->edns || (strcmp(ns_rr_name(rr), "") && strcmp(ns_rr_name(rr), "."))) {
			*why = "bad OPT record";
			return GW_REPLY;
		}
		q->edns = true;
		q->udp_size = ns_rr_class(rr) > 512 ? ns_rr_class(rr) : 512;
		q->dnssec_ok = ns_rr_ttl(rr) & 0x8000;
	}
	*rcode = ns_r_noerror;
	*why = "ok";
	return GW_OK;
}

static uint8_t *put_header(uint8_t *p, const struct gw_question *q, uint16_t id, bool response,
			   int rcode, bool tc)
{
	p = put16(p, id);
	*p++ = (uint8_t)((response ? 0x80 : 0) | (q->opcode & 0x0f) << 3 | (tc ? 0x02 : 0) |
			 (q->rd ? 0x01 : 0));
	*p++ = (uint8_t)((response ? 0x80 : 0) | (q->cd ? 0x10 : 0) | (rcode & 0x0f));
	p = put16(p, q->wire_len ? 1 : 0);
	p = put16(p, 0); /* ANCOUNT */
	p = put16(p, 0); /* NSCOUNT */
	p = put16(p, 0); /* ARCOUNT, set by the caller if it adds OPT */
	return p;
}

static uint8_t *put_question(uint8_t *p, const struct gw_question *q)
{
	memcpy(p, q->wire, q->wire_len);
	p += q->wire_len;
	p = put16(p, (unsigned)q->qtype);
	return put16(p, (unsigned)q->qclass);
}

size_t gw_build_query(const struct gw_question *q, uint16_t id, uint8_t *buf, size_t cap)
{
	uint8_t *p = buf;

	if (!q->wire_len || cap < GW_HDR + q->wire_len + 4 + 11)
		return 0;
	p = put_header(p, q, id, false, 0, false);
	p = put_question(p, q);
	if (q->edns) {
		/* Our own OPT, not the client's: its options (cookies, padding, anything) could
		 * carry data, and only the question is the client's to send. */
		unsigned size = q->udp_size < GW_EDNS_UPSTREAM ? q->udp_size : GW_EDNS_UPSTREAM;

		put16(buf + 10, 1); /* ARCOUNT */
		*p++ = 0;	    /* root */
		p = put16(p, ns_t_opt);
		p = put16(p, size);
		p = put16(p, 0); /* extended rcode, version 0 */
		p = put16(p, q->dnssec_ok ? 0x8000 : 0);
		p = put16(p, 0); /* no options */
	}
	return (size_t)(p - buf);
}

size_t gw_build_reply(const struct gw_question *q, int rcode, bool tc, uint8_t *buf, size_t cap)
{
	uint8_t *p = buf;

	if (cap < GW_HDR + q->wire_len + 4)
		return 0;
	p = put_header(p, q, q->id, true, rcode, tc);
	if (q->wire_len)
		p = put_question(p, q);
	return (size_t)(p - buf);
}

size_t gw_build_refusal(const struct gw_question *q, int rcode, uint16_t info_code,
			const char *text, uint8_t *buf, size_t cap)
{
	size_t tlen = text ? strnlen(text, GW_EDE_TEXT_MAX) : 0;
	size_t n = gw_build_reply(q, rcode, false, buf, cap);
	uint8_t *p = buf + n;

	if (!n || !q->edns || !info_code)
		return n;
	if (cap - n < 11 + 6 + tlen)
		return n;   /* the bare refusal still says no */
	put16(buf + 10, 1); /* ARCOUNT */
	*p++ = 0;	    /* root */
	p = put16(p, ns_t_opt);
	p = put16(p, GW_EDNS_UPSTREAM);
	p = put16(p, 0); /* extended rcode, version 0 */
	p = put16(p, 0); /* flags */
	p = put16(p, (unsigned)(6 + tlen));
	p = put16(p, 15); /* OPTION-CODE: Extended DNS Error */
	p = put16(p, (unsigned)(2 + tlen));
	p = put16(p, info_code);
	if (tlen)
		memcpy(p, text, tlen);
	return (size_t)(p + tlen - buf);
}

bool gw_reply_matches(const uint8_t *pkt, size_t len, const struct gw_question *q, uint16_t id)
{
	char name[GW_NAME_MAX];
	ns_msg h;
	ns_rr rr;

	if (len < GW_HDR || get16(pkt) != id || !(pkt[2] & 0x80) ||
	    ((pkt[2] >> 3) & 0x0f) != ns_o_query)
		return false;
	if (ns_initparse(pkt, (int)len, &h) < 0 || ns_msg_count(h, ns_s_qd) != 1 ||
	    ns_parserr(&h, ns_s_qd, 0, &rr) < 0)
		return false;
	if ((int)ns_rr_type(rr) != q->qtype || (int)ns_rr_class(rr) != q->qclass)
		return false;
	snprintf(name, sizeof(name), "%s", ns_rr_name(rr)[0] ? ns_rr_name(rr) : ".");
	lower(name);
	return strcmp(name, q->name) == 0;
}

static bool in_chain(char chain[][GW_NAME_MAX], int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(chain[i], name) == 0)
			return true;
	return false;
}

/* ns_rr names the root "" while ns_name_ntop says "."; the gate always says ".". */
static void rr_owner(const ns_rr *rr, char *out)
{
	snprintf(out, GW_NAME_MAX, "%s", ns_rr_name(*rr)[0] ? ns_rr_name(*rr) : ".");
	lower(out);
}

static int rr_target(const ns_msg *h, const ns_rr *rr, char *out)
{
	if (ns_name_uncompress(ns_msg_base(*h), ns_msg_end(*h), ns_rr_rdata(*rr), out,
			       GW_NAME_MAX) < 0)
		return -1;
	if (!out[0])
		strcpy(out, ".");
	lower(out);
	return 0;
}

int gw_walk_answers(const uint8_t *pkt, size_t len, const char *qname,
		    int (*fn)(void *arg, const struct gw_rr *rr), void *arg)
{
	/* The chain is followed before any record is handed out, so that an address whose
	 * record comes before the CNAME leading to it is still recognised. */
	char chain[GW_CHAIN_MAX + 1][GW_NAME_MAX];
	char owner[GW_NAME_MAX], target[GW_NAME_MAX];
	int nchain = 1, count;
	ns_msg h;
	ns_rr rr;

	if (ns_initparse(pkt, (int)len, &h) < 0)
		return -1;
	count = ns_msg_count(h, ns_s_an);
	snprintf(chain[0], sizeof(chain[0]), "%s", qname);
	for (bool more = true; more && nchain <= GW_CHAIN_MAX;) {
		more = false;
		for (int i = 0; i < count; i++) {
			if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
				return -1;
			if (ns_rr_type(rr) != ns_t_cname || ns_rr_class(rr) != ns_c_in)
				continue;
			rr_owner(&rr, owner);
			if (strcmp(owner, chain[nchain - 1]) != 0)
				continue;
			if (rr_target(&h, &rr, target) < 0)
				return -1;
			if (in_chain(chain, nchain, target))
				break; /* a loop: the chain ends where it started repeating */
			strcpy(chain[nchain++], target);
			more = true;
			break;
		}
	}

	for (int i = 0; i < count; i++) {
		struct gw_rr out = {0};
		int t, r;

		if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
			return -1;
		t = ns_rr_type(rr);
		if (ns_rr_class(rr) != ns_c_in ||
		    (t != ns_t_a && t != ns_t_aaaa && t != ns_t_cname))
			continue;
		/* A short address is a broken answer, not one to half-pin. */
		if ((t == ns_t_a && ns_rr_rdlen(rr) != 4) ||
		    (t == ns_t_aaaa && ns_rr_rdlen(rr) != 16))
			return -1;
		rr_owner(&rr, owner);
		out.type = t;
		out.ttl = ns_rr_ttl(rr);
		out.owner = owner;
		out.in_chain = in_chain(chain, nchain, owner);
		if (t == ns_t_cname) {
			if (rr_target(&h, &rr, target) < 0)
				return -1;
			out.target = target;
		} else {
			out.addr = ns_rr_rdata(rr);
		}
		r = fn(arg, &out);
		if (r)
			return r;
	}
	return 0;
}
