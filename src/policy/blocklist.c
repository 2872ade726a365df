/*
 * The built-in block list: a line-oriented data file (data/blocklist.txt) of host patterns, IPs
 * and CIDRs that every run refuses, whatever the policy allows.
 *
 * Where it comes from: an explicit path when the caller has one; otherwise the installed copy
 * (RW_DATADIR/blocklist.txt), which users and distributions update without rebuilding; otherwise
 * the copy compiled into the binary (blocklist_data.c), so a bare binary copied onto a runner is
 * never without it. The installed copy replaces the compiled one rather than adding to it, so
 * removing a line from it really removes the entry.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "policy/policy.h"
#include "policy/policy_int.h"
#include "common/xalloc.h"

#ifndef RW_DATADIR
#define RW_DATADIR "/usr/local/share/runwarden"
#endif

const char *policy_blocklist_default_path(void)
{
	return RW_DATADIR "/blocklist.txt";
}

static bool looks_like_addr(const char *s)
{
	unsigned char a[16];

	return strchr(s, '/') || inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

struct policy_list *policy_parse_blocklist(const char *name, const char *text, size_t len,
					   char *err, size_t errlen)
{
	struct policy_list *l = xcalloc(1, sizeof(*l));
	size_t pos = 0, lineno = 0;

	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - line) : len - pos, a = 0, b;
		char tok[POLICY_HOST_MAX + 8], host[POLICY_HOST_MAX + 4], why[POLICY_WHYLEN];
		struct policy_entry e = {0};
		const char *r;

		pos += ll + (nl ? 1 : 0);
		lineno++;
		for (size_t i = 0; i < ll; i++)
			if (line[i] == '#') {
				ll = i;
				break;
			}
		while (a < ll && (line[a] == ' ' || line[a] == '\t' || line[a] == '\r'))
			a++;
		b = a;
		while (b < ll && line[b] != ' ' && line[b] != '\t' && line[b] != '\r')
			b++;
		if (a == b)
			continue;
		for (size_t i = b; i < ll; i++) {
			if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
				snprintf(err, errlen, "%s:%zu:%zu: one entry per line", name,
					 lineno, i + 1);
				goto fail;
			}
		}
		if (b - a >= sizeof(tok) || memchr(line + a, 0, b - a)) {
			snprintf(err, errlen, "%s:%zu:%zu: entry too long or not text", name,
				 lineno, a + 1);
			goto fail;
		}
		memcpy(tok, line + a, b - a);
		tok[b - a] = 0;
		if (looks_like_addr(tok)) {
			r = policy_addr_parse(tok, strchr(tok, '/') != NULL, &e.family, e.addr,
					      &e.prefix, why);
			e.kind = POLICY_ENTRY_CIDR;
		} else {
			r = policy_host_normalise(tok, b - a, host);
			e.kind = POLICY_ENTRY_HOST;
			e.host = host;
		}
		if (r) {
			snprintf(err, errlen, "%s:%zu:%zu: %s", name, lineno, a + 1, r);
			goto fail;
		}
		e.nrules = 1;
		e.rules[0] = (struct policy_rule){0, 65535, POLICY_PROTO_ANY};
		e.origin = POLICY_FROM_BLOCKLIST;
		e.line = lineno;
		e.col = a + 1;
		policy_list_add(l, &e);
	}
	return l;
fail:
	policy_list_free(l);
	return NULL;
}

struct policy_list *policy_load_blocklist(const char *path, char *err, size_t errlen)
{
	char *buf;
	ssize_t n;
	struct policy_list *l;

	if (!path) {
		path = policy_blocklist_default_path();
		if (access(path, F_OK) != 0)
			return policy_parse_blocklist(
			    "<built-in blocklist>", policy_blocklist_builtin,
			    strlen(policy_blocklist_builtin), err, errlen);
	}
	buf = xmalloc(POLICY_MAX_FILE_BYTES + 1);
	n = read_regular_file(path, buf, POLICY_MAX_FILE_BYTES + 1, err, errlen);
	if (n < 0 || n > POLICY_MAX_FILE_BYTES) {
		if (n > POLICY_MAX_FILE_BYTES)
			snprintf(err, errlen, "%s: larger than %u MiB", path,
				 POLICY_MAX_FILE_BYTES >> 20);
		free(buf);
		return NULL;
	}
	l = policy_parse_blocklist(path, buf, n, err, errlen);
	free(buf);
	return l;
}
