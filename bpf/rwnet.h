/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Network facts that the kernel programs and user space must agree on, each
 * written once: socket families (name and whether a socket of that family is
 * egress), socket types, IP protocols (name and the policy bit that judges
 * them) and the kernel's policy maps. Everything that names or judges one of
 * these is generated from the lists below (X-macros), in bpf/judge.bpf.h,
 * bpf/socket.bpf.h, src/kernel/, src/observe/, src/job/ and src/policy/ alike.
 *
 * Plain numbers, not AF_* / IPPROTO_* macros: the BPF side sees vmlinux.h,
 * which has no libc headers; both sides' numbers are the kernel's ABI.
 */
#ifndef RUNWARDEN_RWNET_H
#define RUNWARDEN_RWNET_H

/*
 * How a socket of a family is judged:
 * FC_LOCAL  never leaves the machine (unix, netlink, ...): not egress, not
 *           recorded, never a violation.
 * FC_IP     IPv4/IPv6: every destination is judged by the connect/sendmsg
 *           hooks and the packet backstop; only raw sockets are judged at
 *           creation (they can forge any packet).
 * FC_LINK   frames straight to a network device (packet, XDP): egress that no
 *           IP hook sees. Needs CAP_NET_RAW, which an enforce-mode job lacks.
 * FC_REMOTE reaches other machines by other means than IP sockets (vsock to
 *           the hypervisor, Bluetooth, CAN, TIPC, RDS, ...): egress.
 * Families missing from the list are judged FC_REMOTE (fail closed).
 */
enum sock_class {
	FC_REMOTE = 0,
	FC_LOCAL,
	FC_IP,
	FC_LINK,
};

/* X(number, "name in logs", class): every family Linux defines (AF_MAX 46). */
#define RW_FAMILIES(X)                                                                             \
	X(0, "unspec", FC_LOCAL)                                                                   \
	X(1, "unix", FC_LOCAL)                                                                     \
	X(2, "ipv4", FC_IP)                                                                        \
	X(3, "ax25", FC_REMOTE)                                                                    \
	X(4, "ipx", FC_REMOTE)                                                                     \
	X(5, "appletalk", FC_REMOTE)                                                               \
	X(6, "netrom", FC_REMOTE)                                                                  \
	X(7, "bridge", FC_LOCAL)                                                                   \
	X(8, "atmpvc", FC_REMOTE)                                                                  \
	X(9, "x25", FC_REMOTE)                                                                     \
	X(10, "ipv6", FC_IP)                                                                       \
	X(11, "rose", FC_REMOTE)                                                                   \
	X(12, "decnet", FC_REMOTE)                                                                 \
	X(13, "netbeui", FC_REMOTE)                                                                \
	X(14, "security", FC_LOCAL)                                                                \
	X(15, "key", FC_LOCAL)                                                                     \
	X(16, "netlink", FC_LOCAL)                                                                 \
	X(17, "packet", FC_LINK)                                                                   \
	X(18, "ash", FC_REMOTE)                                                                    \
	X(19, "econet", FC_REMOTE)                                                                 \
	X(20, "atmsvc", FC_REMOTE)                                                                 \
	X(21, "rds", FC_REMOTE)                                                                    \
	X(22, "sna", FC_REMOTE)                                                                    \
	X(23, "irda", FC_REMOTE)                                                                   \
	X(24, "pppox", FC_REMOTE)                                                                  \
	X(25, "wanpipe", FC_REMOTE)                                                                \
	X(26, "llc", FC_REMOTE)                                                                    \
	X(27, "ib", FC_LOCAL)                                                                      \
	X(28, "mpls", FC_LOCAL)                                                                    \
	X(29, "can", FC_REMOTE)                                                                    \
	X(30, "tipc", FC_REMOTE)                                                                   \
	X(31, "bluetooth", FC_REMOTE)                                                              \
	X(32, "iucv", FC_REMOTE)                                                                   \
	X(33, "rxrpc", FC_REMOTE)                                                                  \
	X(34, "isdn", FC_REMOTE)                                                                   \
	X(35, "phonet", FC_REMOTE)                                                                 \
	X(36, "ieee802154", FC_REMOTE)                                                             \
	X(37, "caif", FC_REMOTE)                                                                   \
	X(38, "alg", FC_LOCAL)                                                                     \
	X(39, "nfc", FC_REMOTE)                                                                    \
	X(40, "vsock", FC_REMOTE)                                                                  \
	X(41, "kcm", FC_LOCAL)                                                                     \
	X(42, "qipcrtr", FC_LOCAL)                                                                 \
	X(43, "smc", FC_REMOTE)                                                                    \
	X(44, "xdp", FC_LINK)                                                                      \
	X(45, "mctp", FC_REMOTE)

#define RW_FAMILY_PACKET 17
#define RW_FAMILY_INET	 2
#define RW_FAMILY_INET6	 10

/* X(number, "name"): socket types (the low 4 bits of socket(2)'s type). */
#define RW_SOCK_TYPES(X)                                                                           \
	X(1, "stream")                                                                             \
	X(2, "dgram")                                                                              \
	X(3, "raw")                                                                                \
	X(4, "rdm")                                                                                \
	X(5, "seqpacket")                                                                          \
	X(6, "dccp")                                                                               \
	X(10, "packet")

#define RW_SOCK_DGRAM  2
#define RW_SOCK_RAW    3
#define RW_SOCK_PACKET 10 /* obsolete; socket(AF_INET, SOCK_PACKET) is a packet socket */

/*
 * Protocols a policy rule can name: X(SUFFIX, "name", mask bit, has ports).
 * A rule carries a mask of these; a destination is judged with exactly one
 * bit, that of its own protocol, so no protocol is ever judged as another.
 * Protocols not listed are judged with RPROTO_OTHER, which only `any` holds.
 */
#define RW_RULE_PROTOS(X)                                                                          \
	X(TCP, "tcp", 0x01, 1)                                                                     \
	X(UDP, "udp", 0x02, 1)                                                                     \
	X(UDPLITE, "udplite", 0x04, 1)                                                             \
	X(ICMP, "icmp", 0x08, 0) /* ICMP for IPv4, ICMPv6 for IPv6 */

enum rule_proto {
#define RW_RPROTO_ENUM_(s, name, bit, ports) RPROTO_##s = bit,
	RW_RULE_PROTOS(RW_RPROTO_ENUM_)
#undef RW_RPROTO_ENUM_
	    RPROTO_OTHER = 0x80,
	RPROTO_ANY = 0xff,
};

/* X(IP protocol number, "name in logs", rule bit): the protocols the hooks
 * know by name. Any other number is logged as "ip<N>" and judged OTHER. */
#define RW_IP_PROTOS(X)                                                                            \
	X(1, "icmp", RPROTO_ICMP)                                                                  \
	X(6, "tcp", RPROTO_TCP)                                                                    \
	X(17, "udp", RPROTO_UDP)                                                                   \
	X(58, "icmpv6", RPROTO_ICMP)                                                               \
	X(136, "udplite", RPROTO_UDPLITE)

#define RW_IPPROTO_ICMP	   1
#define RW_IPPROTO_TCP	   6
#define RW_IPPROTO_UDP	   17
#define RW_IPPROTO_ICMPV6  58
#define RW_IPPROTO_UDPLITE 136

/*
 * The kernel's policy maps: X(ENUM_SUFFIX, map name, list, family, exact).
 * Single addresses (policy `ip:`, the DNS gate's pins) live in hashes keyed
 * by the address; prefixes in LPM tries. The BPF object declares them, the
 * loader sizes and pins them, enforce.c fills them, all from this list.
 */
#define RW_POLICY_MAPS(X)                                                                          \
	X(ALLOW4, allow4, allow, 4, 0)                                                             \
	X(ALLOW6, allow6, allow, 6, 0)                                                             \
	X(BLOCK4, block4, block, 4, 0)                                                             \
	X(BLOCK6, block6, block, 6, 0)                                                             \
	X(ALLOW4X, allow4x, allow, 4, 1)                                                           \
	X(ALLOW6X, allow6x, allow, 6, 1)                                                           \
	X(BLOCK4X, block4x, block, 4, 1)                                                           \
	X(BLOCK6X, block6x, block, 6, 1)

#endif
