/*
 * Names of socket families, socket types and IP protocols, and the policy's
 * protocol words, all generated from the one list of each in bpf/rwnet.h.
 * Every place that writes or reads one of these names goes through here.
 */
#ifndef RW_NETNAMES_H
#define RW_NETNAMES_H
#include <stdbool.h>
#include <stddef.h>

#include "rwnet.h"

/* Room for any name below, including the "af<N>"/"ip<N>" fallbacks. */
#define NET_NAME_MAX 16

/* "ipv4", "netlink", ...; "af<N>" for a number the list lacks. */
const char *net_family_name(unsigned family, char buf[NET_NAME_MAX]);
/* "stream", "raw", ...; "type<N>" otherwise. */
const char *net_socktype_name(unsigned type, char buf[NET_NAME_MAX]);
/* "tcp", "udplite", "icmpv6", ...; "ip<N>" otherwise. */
const char *net_ipproto_name(unsigned proto, char buf[NET_NAME_MAX]);
/* Whether destinations of this IP protocol have ports (TCP, UDP, UDP-Lite). */
bool net_ipproto_has_ports(unsigned proto);

/* The policy's `proto:` words ("tcp", ..., "any"), NULL-terminated, and the
 * RPROTO_* mask each stands for (same index). */
extern const char *const net_rule_proto_words[];
extern const unsigned net_rule_proto_masks[];
/* The word for a mask that is exactly one protocol (or RPROTO_ANY), else NULL. */
const char *net_rule_proto_word(unsigned mask);
/* Whether a rule protocol has ports; false for icmp. `any` has them. */
bool net_rule_proto_has_ports(unsigned mask);

#endif
