/*
 * DNS gate, message layer: reads client questions and upstream replies and writes the few
 * messages the gate synthesises. Every name and record is read by glibc's libresolv
 * (ns_initparse, ns_parserr, ns_name_unpack, ns_name_uncompress); this file only decides what
 * the parsed pieces mean. Internal to src/gate/.
 */
#ifndef RW_GATE_WIRE_H
#define RW_GATE_WIRE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_NAME_MAX 1025 /* NS_MAXDNAME: presentation form, NUL included */
#define GW_WIRE_MAX 255	 /* NS_MAXCDNAME: uncompressed wire form */
#define GW_HDR	    12
/* The gate never sends a query bigger than this, so a client query above it is not DNS. */
#define GW_QUERY_MAX 4096
/* What the gate advertises upstream (the DNS flag day 2020 figure: no IP fragmentation). */
#define GW_EDNS_UPSTREAM 1232
#define GW_CHAIN_MAX	 16 /* CNAME hops followed inside one answer */

/* A client's question, as the gate understood it. */
struct gw_question {
	uint16_t id;
	uint8_t opcode;
	bool rd, cd;
	uint8_t wire[GW_WIRE_MAX]; /* the asked name, uncompressed, case as sent */
	size_t wire_len;
	char name[GW_NAME_MAX]; /* presentation form, lower-cased, no trailing dot ("." = root) */
	bool escaped;		/* the name needed \-escapes to print (a byte no host name has) */
	int qtype, qclass;
	bool edns;	   /* the client sent an OPT record */
	uint16_t udp_size; /* the largest UDP reply the client accepts (512 without EDNS) */
	bool dnssec_ok;	   /* DO bit */
};

enum gw_parse {
	GW_OK,	  /* q is complete */
	GW_REPLY, /* answer with *rcode; q->id/opcode/rd are valid, the question is if wire_len */
	GW_DROP,  /* not worth an answer (too short to carry an id, or not a query at all) */
};

/* Reads a client query. On GW_REPLY, *why says what was wrong (static string). */
enum gw_parse gw_parse_query(const uint8_t *pkt, size_t len, struct gw_question *q, int *rcode,
			     const char **why);

/* Writes the query the gate sends upstream: q's question only, with our id and, when the
 * client used EDNS, an OPT record of our own. Returns its length, 0 if cap is too small. */
size_t gw_build_query(const struct gw_question *q, uint16_t id, uint8_t *buf, size_t cap);

/* Writes a reply the gate answers itself: header (id, opcode, rd, cd copied; qr, ra set),
 * the question when q->wire_len, no records. Returns its length, 0 if cap is too small. */
size_t gw_build_reply(const struct gw_question *q, int rcode, bool tc, uint8_t *buf, size_t cap);

/* The same, for a refusal: when the client sent EDNS, the reply carries an OPT record of our
 * own with one RFC 8914 Extended DNS Error option (info_code, text as EXTRA-TEXT, cut to
 * GW_EDE_TEXT_MAX bytes). Without EDNS the client could not read it, so none is added. */
#define GW_EDE_TEXT_MAX 80
#define GW_REPLY_MAX	(GW_HDR + GW_WIRE_MAX + 4 + 11 + 6 + GW_EDE_TEXT_MAX)
size_t gw_build_refusal(const struct gw_question *q, int rcode, uint16_t info_code,
			const char *text, uint8_t *buf, size_t cap);

/* Is pkt a well-formed reply to q sent with id? Anything else from upstream is ignored. */
bool gw_reply_matches(const uint8_t *pkt, size_t len, const struct gw_question *q, uint16_t id);

/* One record of the answer section, as the walk hands it out. */
struct gw_rr {
	int type; /* ns_t_a, ns_t_aaaa or ns_t_cname; other types are skipped */
	uint32_t ttl;
	const char *owner;   /* lower-cased presentation form */
	const uint8_t *addr; /* A: 4 bytes, AAAA: 16 bytes; NULL for CNAME */
	const char *target;  /* CNAME target, lower-cased; NULL otherwise */
	bool in_chain; /* owner is the asked name or reached from it by CNAMEs in this answer */
};

/*
 * Walks the answer section of a reply that gw_reply_matches() accepted: first follows the
 * CNAME chain from qname (only through CNAME records present in the answer, at most
 * GW_CHAIN_MAX hops, stopping at a loop), then calls fn for every A, AAAA and CNAME record in
 * section order. fn returning non-zero stops the walk and is returned. Returns -1 if a record
 * cannot be read (the whole reply is then untrustworthy), otherwise 0.
 */
int gw_walk_answers(const uint8_t *pkt, size_t len, const char *qname,
		    int (*fn)(void *arg, const struct gw_rr *rr), void *arg);

/* rcode and TC bit of a message at least GW_HDR long. */
int gw_rcode(const uint8_t *pkt);
bool gw_truncated(const uint8_t *pkt);
void gw_set_id(uint8_t *pkt, uint16_t id);
uint16_t gw_get_id(const uint8_t *pkt);

#endif
