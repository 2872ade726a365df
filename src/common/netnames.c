/* Names generated from bpf/rwnet.h (see netnames.h). */
#include "common/netnames.h"

#include <stdio.h>

const char *net_family_name(unsigned family, char buf[NET_NAME_MAX])
{
	switch (family) {
#define FAMILY_NAME_(num, name, cls)                                                               \
	case num:                                                                                  \
		return name;
		RW_FAMILIES(FAMILY_NAME_)
#undef FAMILY_NAME_
	}
	snprintf(buf, NET_NAME_MAX, "af%u", family);
	return buf;
}

const char *net_socktype_name(unsigned type, char buf[NET_NAME_MAX])
{
	switch (type) {
#define TYPE_NAME_(num, name)                                                                      \
	case num:                                                                                  \
		return name;
		RW_SOCK_TYPES(TYPE_NAME_)
#undef TYPE_NAME_
	}
	snprintf(buf, NET_NAME_MAX, "type%u", type);
	return buf;
}

const char *net_ipproto_name(unsigned proto, char buf[NET_NAME_MAX])
{
	switch (proto) {
#define PROTO_NAME_(num, name, bit)                                                                \
	case num:                                                                                  \
		return name;
		RW_IP_PROTOS(PROTO_NAME_)
#undef PROTO_NAME_
	}
	snprintf(buf, NET_NAME_MAX, "ip%u", proto);
	return buf;
}

static unsigned ipproto_bit(unsigned proto)
{
	switch (proto) {
#define PROTO_BIT_(num, name, bit)                                                                 \
	case num:                                                                                  \
		return bit;
		RW_IP_PROTOS(PROTO_BIT_)
#undef PROTO_BIT_
	}
	return RPROTO_OTHER;
}

bool net_ipproto_has_ports(unsigned proto)
{
	return net_rule_proto_has_ports(ipproto_bit(proto));
}

const char *const net_rule_proto_words[] = {
#define RULE_WORD_(s, name, bit, ports) name,
    RW_RULE_PROTOS(RULE_WORD_)
#undef RULE_WORD_
	"any",
    NULL};

const unsigned net_rule_proto_masks[] = {
#define RULE_MASK_(s, name, bit, ports) bit,
    RW_RULE_PROTOS(RULE_MASK_)
#undef RULE_MASK_
	RPROTO_ANY,
    0};

const char *net_rule_proto_word(unsigned mask)
{
	for (int i = 0; net_rule_proto_words[i]; i++)
		if (net_rule_proto_masks[i] == mask)
			return net_rule_proto_words[i];
	return NULL;
}

bool net_rule_proto_has_ports(unsigned mask)
{
	switch (mask) {
#define RULE_PORTS_(s, name, bit, ports)                                                           \
	case bit:                                                                                  \
		return ports;
		RW_RULE_PROTOS(RULE_PORTS_)
#undef RULE_PORTS_
	case RPROTO_OTHER:
		return false;
	}
	return true;
}
