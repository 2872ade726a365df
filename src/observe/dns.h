/*
 * DNS messages as captured on the wire (skb_dns_capture, bpf/skb.bpf.h):
 * parsed with glibc's libresolv (ns_initparse/ns_parserr), never by hand.
 * Names come out in presentation format, so a hostile label cannot inject
 * bytes into the log.
 */
#ifndef RW_DNS_H
#define RW_DNS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_MAX_ANSWERS 32
#define DNS_NAME_MAX	1025 /* NS_MAXDNAME */

struct dns_answer {
	int type; /* ns_t_a, ns_t_aaaa, ns_t_cname */
	uint32_t ttl;
	char owner[DNS_NAME_MAX];
	char data[DNS_NAME_MAX]; /* address text or CNAME target */
};

struct dns_msg {
	uint16_t id;
	bool response;
	int rcode;
	int qtype;
	char qname[DNS_NAME_MAX];
	int n_answers;
	bool answers_truncated;
	struct dns_answer answers[DNS_MAX_ANSWERS];
};

/* tcp: the message carries the 2-byte length prefix. Returns 0, or -1 with
 * a reason in err. */
int dns_parse(const uint8_t *pkt, size_t len, bool tcp, struct dns_msg *m, char *err,
	      size_t errlen);

/* Header and question only, for a message the capture cut (DNS_MAX): a padded question is
 * still named. No answers. Returns 0, or -1 with a reason in err. */
int dns_parse_question(const uint8_t *pkt, size_t len, bool tcp, struct dns_msg *m, char *err,
		       size_t errlen);

/* "A", "AAAA", ..., or "TYPE<n>" into buf. */
const char *dns_type_name(int type, char *buf, size_t len);
const char *dns_rcode_name(int rcode, char *buf, size_t len);

#endif
