/* conn_name records: rendering and the reset of refused connections (see connname.h). */
#include "observe/connname.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/jsonw.h"
#include "common/util.h"

const char *conn_name_reason(unsigned reason)
{
	switch (reason) {
	case CNR_SNI_MISMATCH:
		return "sni_mismatch";
	case CNR_HOST_MISMATCH:
		return "host_mismatch";
	case CNR_UNREADABLE:
		return "name_unreadable";
	case CNR_NAME_BLOCKED:
		return "name_blocked";
	case CNR_METHOD:
		return "method_not_allowed";
	case CNR_PATH:
		return "path_not_allowed";
	case CNR_H2_UNJUDGED:
		return "h2_unjudged";
	case CNR_UNREAD_REQ:
		return "request_unreadable";
	}
	return NULL;
}

/* A kernel-filled length, clamped to its array. */
static size_t clamp_len(unsigned n, size_t cap)
{
	return n < cap ? n : cap;
}

static void flag(struct strbuf *sb, const char *name, bool on)
{
	if (on) {
		sb_addstr(sb, ",\"");
		sb_addstr(sb, name);
		sb_addstr(sb, "\":true");
	}
}

/* What the parser could not read, in one word, or NULL. */
static const char *unreadable_why(unsigned flags)
{
	return flags & FBF_MALFORMED  ? "malformed"
	       : flags & FBF_BAD_NAME ? "bad_name"
	       : flags & FBF_CUT      ? "cut"
				      : NULL;
}

void conn_name_members(struct strbuf *sb, const struct ev_conn_name *e)
{
	int family = e->family == AF_INET6 ? AF_INET6 : AF_INET;
	const char *why = unreadable_why(e->flags);

	sb_addstr(sb, ",\"proto\":\"tcp\",\"family\":\"");
	sb_addstr(sb, family == AF_INET ? "ipv4" : "ipv6");
	sb_addstr(sb, "\",\"daddr\":\"");
	fmt_addr(sb, family, e->daddr);
	sb_addstr(sb, "\",\"dport\":");
	sb_addu(sb, e->dport);
	sb_addstr(sb, ",\"sport\":");
	sb_addu(sb, e->sport);
	sb_addstr(sb, ",\"app\":\"");
	sb_addstr(sb, e->app == FB_TLS ? "tls" : "http");
	sb_addstr(sb, "\",\"name\":");
	if (e->flags & (FBF_NAMED | FBF_LITERAL) && e->name_len)
		json_str(sb, e->name, clamp_len(e->name_len, sizeof(e->name)));
	else
		sb_addstr(sb, "null");
	if (e->app == FB_TLS) {
		sb_addstr(sb, ",\"sni\":");
		if (e->flags & (FBF_NAMED | FBF_LITERAL) && e->name_len)
			json_str(sb, e->name, clamp_len(e->name_len, sizeof(e->name)));
		else
			sb_addstr(sb, "null");
		sb_addstr(sb, ",\"alpn\":[");
		for (size_t i = 0, start = 0, n = clamp_len(e->alpn_len, sizeof(e->alpn));
		     n && i <= n; i++) {
			if (i < n && e->alpn[i] != ',')
				continue;
			if (start)
				sb_addch(sb, ',');
			json_str(sb, e->alpn + start, i - start);
			start = i + 1;
		}
		sb_addch(sb, ']');
		flag(sb, "alpn_cut", e->flags & FBF_ALPN_CUT);
	} else {
		sb_addstr(sb, ",\"method\":");
		json_str(sb, e->method, clamp_len(e->method_len, sizeof(e->method)));
		sb_addstr(sb, ",\"path\":");
		json_str(sb, e->path, clamp_len(e->path_len, sizeof(e->path)));
		flag(sb, "path_cut", e->flags & FBF_PATH_CUT);
		sb_addstr(sb, ",\"host\":");
		if (e->flags & (FBF_NAMED | FBF_LITERAL) && e->name_len)
			json_str(sb, e->name, clamp_len(e->name_len, sizeof(e->name)));
		else
			sb_addstr(sb, "null");
	}
	flag(sb, "ip_literal", e->flags & FBF_LITERAL);
	flag(sb, "no_name", e->flags & FBF_NO_NAME);
	if (why) {
		sb_addstr(sb, ",\"unreadable\":\"");
		sb_addstr(sb, why);
		sb_addch(sb, '"');
	}
	flag(sb, "address_entry", e->flags & FBF_ADDR_RULE);
}

int conn_name_reset(const struct ev_conn_name *e)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req = {0};
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	char buf[512];
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	int fd, rc = -1, err = EIO;
	ssize_t n;

	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = SOCK_DESTROY;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.r.sdiag_family = e->family == AF_INET6 ? AF_INET6 : AF_INET;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	req.r.id.idiag_sport = htons(e->sport);
	req.r.id.idiag_dport = htons(e->dport);
	memcpy(req.r.id.idiag_src, e->saddr, req.r.sdiag_family == AF_INET ? 4 : 16);
	memcpy(req.r.id.idiag_dst, e->daddr, req.r.sdiag_family == AF_INET ? 4 : 16);
	/* the cookie makes it this socket and no other, whatever reused the ports since */
	req.r.id.idiag_cookie[0] = (uint32_t)e->cookie;
	req.r.id.idiag_cookie[1] = (uint32_t)(e->cookie >> 32);
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -1;
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		err = errno;
		goto out;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		err = errno;
		goto out;
	}
	if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) && nh->nlmsg_type == NLMSG_ERROR) {
		err = -((struct nlmsgerr *)NLMSG_DATA(nh))->error;
		rc = err ? -1 : 0;
	}
out:
	close(fd);
	errno = err;
	return rc;
}
