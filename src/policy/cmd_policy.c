/*
 * `runwarden policy check FILE`: validates a policy exactly as `run` would (including every step's
 * flattened rules and their kernel form) and prints it normalised, so a reviewer sees what the
 * file means rather than how it was spelled. `runwarden policy blocklist [FILE]` does the same
 * for a block list.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "common/cli.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "common/strmap.h"
#include "policy/learn.h"
#include "policy/policy.h"
#include "evidence/evread.h"

#include <jansson.h>

static const char policy_usage[] =
    "usage: runwarden policy check FILE [RUNDIR...] [--step NAME] [--blocklist FILE]\n"
    "       runwarden policy blocklist [FILE]\n"
    "\n"
    "check      validate a policy file and print it normalised (exit 1 if invalid);\n"
    "           with RUNDIRs, also replay each run's connections, DNS names and sockets\n"
    "           against the rules its step would get, and list what would be denied\n"
    "           (exit 1 if anything would be)\n"
    "           --step NAME       check only the rules in effect for that step\n"
    "           --blocklist FILE  block list to apply (default: the installed or built-in one)\n"
    "blocklist  validate a block list (default: the one runwarden would use) and print it\n";

static int count_cb(const struct policy_cidr *c, void *arg)
{
	(void)c;
	(*(size_t *)arg)++;
	return 0;
}

/* Builds one step's set and its kernel form: the checks `run` would otherwise hit at start. */
static int check_set(const struct policy *p, const char *step, const struct policy_list *bl,
		     struct strbuf *out)
{
	char err[512];
	struct policy_set *s = policy_effective(p, step, bl, err, sizeof(err));
	size_t na = 0, nb = 0;

	if (!s) {
		rw_err("%s", err);
		return -1;
	}
	if (policy_for_each_cidr(s, false, count_cb, &na, err, sizeof(err)) ||
	    policy_for_each_cidr(s, true, count_cb, &nb, err, sizeof(err))) {
		rw_err("%s: %s%s: %s", p->path, step ? "step " : "top level", step ? step : "",
		       err);
		policy_set_free(s);
		return -1;
	}
	sb_addf(out,
		"#   %-20s %zu allow, %zu block entries; kernel prefixes: %zu allow, %zu block\n",
		step ? step : "(no --step)", s->allow.n, s->block.n, na, nb);
	policy_set_free(s);
	return 0;
}

/* What a replayed run would have been refused, grouped: description -> count. */
struct replay {
	struct strmap denied;
	size_t total;
};

static void would_deny(struct replay *rp, const char *what)
{
	struct strmap_entry *e;

	rp->total++;
	if (rp->denied.count >= 1000 && !strmap_get(&rp->denied, what))
		return; /* counted, not listed */
	e = strmap_put(&rp->denied, what, NULL);
	e->val = (void *)((uintptr_t)e->val + 1);
}

static bool resolver_listed(const struct policy *p, int family, const uint8_t *addr, unsigned port)
{
	for (size_t i = 0; i < p->dns.nresolvers; i++) {
		const struct policy_addr *r = &p->dns.resolvers[i];

		if (r->family == family && !memcmp(r->addr, addr, family == AF_INET ? 4 : 16) &&
		    (r->port ? r->port : 53) == port)
			return true;
	}
	return false;
}

/* One connect as the kernel and the gate would judge it under set. */
static void replay_connect(const struct policy *p, const struct policy_set *set, json_t *ev,
			   struct replay *rp)
{
	const char *daddr = json_string_value(json_object_get(ev, "daddr"));
	const char *host = json_string_value(json_object_get(ev, "host"));
	const char *proto = json_string_value(json_object_get(ev, "proto"));
	json_int_t port = json_integer_value(json_object_get(ev, "dport"));
	unsigned pr = proto && !strcmp(proto, "udp") ? POLICY_PROTO_UDP : POLICY_PROTO_TCP;
	char why[POLICY_WHYLEN], what[600];
	struct policy_match m;
	uint8_t addr[16], prefix;
	int family;

	if (json_is_true(json_object_get(ev, "runner")) || !daddr ||
	    policy_addr_parse(daddr, false, &family, addr, &prefix, why) || port <= 0 ||
	    port > 65535)
		return; /* the runner's own traffic is allowed in every mode */
	snprintf(what, sizeof(what), "connect %s %s%s%s:%lld%s%s", proto ? proto : "?",
		 strchr(daddr, ':') ? "[" : "", daddr, strchr(daddr, ':') ? "]" : "",
		 (long long)port, host ? " host " : "", host ? host : "");
	if (port == 53 && !host) {
		/* the gate takes DNS; only a resolver list limits where it may go */
		if (p->dns.nresolvers && !resolver_listed(p, family, addr, 53))
			would_deny(rp, what);
		return;
	}
	if (policy_check_addr(set, family, addr, (uint16_t)port, pr, NULL) == POLICY_ALLOW)
		return;
	if (host && policy_check_host(set, host, &m) == POLICY_ALLOW &&
	    policy_rules_cover(m.rules, m.nrules, (uint16_t)port, pr))
		return;
	would_deny(rp, what);
}

/* One HTTP request (an `http` line inside TLS, a `conn_name` of plain HTTP) against the
 * `methods:`/`paths:` of its host's entries, as bpf/httpjudge.bpf.h judges it. */
static void replay_request(const struct policy_set *set, json_t *ev, bool tls, struct replay *rp)
{
	const char *method = json_string_value(json_object_get(ev, "method"));
	const char *host = json_string_value(json_object_get(ev, tls ? "authority" : "host"));
	const char *target = json_string_value(json_object_get(ev, "path"));
	json_int_t port = tls ? -1 : json_integer_value(json_object_get(ev, "dport"));
	const char *why;
	char what[800];

	if (!method || !*method || !host || !target)
		return;
	if (policy_check_request(set, host, (int)port, method, target, &why) == POLICY_ALLOW)
		return;
	snprintf(what, sizeof(what), "%s %s %s%s (%s)", tls ? "https" : "http", method, host,
		 target, why);
	would_deny(rp, what);
}

static void replay_event(const struct policy *p, const struct policy_set *set, json_t *ev,
			 struct replay *rp)
{
	const char *kind = json_string_value(json_object_get(ev, "kind"));
	const char *verdict = json_string_value(json_object_get(ev, "verdict"));
	char what[600];

	if (!kind)
		return;
	if (!strcmp(kind, "connect")) {
		replay_connect(p, set, ev, rp);
	} else if (!strcmp(kind, "dns")) {
		const char *q = json_string_value(json_object_get(ev, "query"));
		const char *t = json_string_value(json_object_get(ev, "qtype"));

		/* As the gate judges it: SRV/HTTPS questions derived from an allowed name pass. */
		if (q && p->dns.refuse_unlisted &&
		    policy_check_question(set, q, policy_qtype_of(t), NULL) != POLICY_ALLOW) {
			snprintf(what, sizeof(what), "dns %s %s", q, t ? t : "");
			would_deny(rp, what);
		}
	} else if (!strcmp(kind, "http") && json_is_true(json_object_get(ev, "decoded"))) {
		replay_request(set, ev, true, rp);
	} else if (!strcmp(kind, "conn_name") &&
		   !strcmp(json_string_value(json_object_get(ev, "app")) ?: "", "http")) {
		replay_request(set, ev, false, rp);
	} else if (!strcmp(kind, "socket") && verdict && strcmp(verdict, "allow")) {
		/* socket kinds are judged by family and type, not by any policy entry */
		json_t *fam = json_object_get(ev, "family"), *ty = json_object_get(ev, "type");

		snprintf(what, sizeof(what), "socket %s %s (no policy entry allows it)",
			 json_is_string(fam) ? json_string_value(fam) : "?",
			 json_is_string(ty) ? json_string_value(ty) : "?");
		would_deny(rp, what);
	}
}

/* Replays one run directory; returns attempts that would be denied, -1 on a read error. */
static long check_run(const struct policy *p, const struct policy_list *bl, const char *dir,
		      struct strbuf *out)
{
	struct replay rp = {.total = 0};
	struct strbuf path = STRBUF_INIT;
	struct policy_set *set = NULL;
	struct evread in = {.fd = -1};
	char err[EV_ERRLEN], *step = NULL;
	long rc = -1;
	int got;

	strmap_init(&rp.denied);
	learn_run_step(dir, &step);
	if (step && !policy_find_step(p, step)) {
		sb_addf(out, "# run %s: enforced step \"%s\", which this policy does not define\n",
			dir, step);
		rc = 1;
		goto out;
	}
	set = policy_effective(p, step, bl, err, sizeof(err));
	if (!set) {
		rw_err("%s", err);
		goto out;
	}
	sb_addf(&path, "%s/events.ndjson", dir);
	if (evread_open(&in, path.buf, LEARN_MAX_LINE, err)) {
		rw_err("%s", err);
		goto out;
	}
	while ((got = evread_next(&in)) > 0) {
		json_t *ev;

		if (!in.terminated) {
			/* A run killed mid-write: what it did finish is still judged. */
			rw_err("%s:%llu: ignoring incomplete last line", path.buf,
			       (unsigned long long)in.lineno);
			break;
		}
		ev = json_loadb(in.line.buf, in.line.len, 0, NULL);
		if (json_is_object(ev))
			replay_event(p, set, ev, &rp);
		json_decref(ev);
	}
	if (got < 0) {
		rw_err("%s", in.err);
		goto out;
	}
	sb_addf(out, "# run %s (%s%s): ", dir, step ? "step " : "top level", step ? step : "");
	if (!rp.total)
		sb_addstr(out, "passes\n");
	else
		sb_addf(out, "%zu attempt%s would be denied:\n", rp.total,
			rp.total == 1 ? "" : "s");
	strmap_for_each(e, &rp.denied)
	    sb_addf(out, "#   %s x%zu\n", e->key, (size_t)(uintptr_t)e->val);
	rc = (long)rp.total;
out:
	evread_close(&in);
	policy_set_free(set);
	free(step);
	strmap_clear(&rp.denied, NULL);
	sb_release(&path);
	return rc;
}

static int do_check(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"step", required_argument, NULL, 's'},
	    {"blocklist", required_argument, NULL, 'b'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *step = NULL, *blpath = NULL;
	struct policy *p;
	struct policy_list *bl;
	struct strbuf out = STRBUF_INIT;
	char err[512];
	int c, rc = 1, denied_runs = 0;

	optind = 1;
	while ((c = cli_getopt("policy check", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 's':
			step = optarg;
			break;
		case 'b':
			blpath = optarg;
			break;
		case 'h':
			fputs(policy_usage, stdout);
			return 0;
		default:
			return CLI_USAGE;
		}
	}
	if (optind >= argc)
		return cli_usage("policy check", "no policy file given");
	p = policy_load(argv[optind], err, sizeof(err));
	if (!p) {
		rw_err("%s", err);
		return 1;
	}
	bl = policy_load_blocklist(blpath, err, sizeof(err));
	if (!bl) {
		rw_err("%s", err);
		policy_free(p);
		return 1;
	}
	sb_addf(&out, "# %s: valid\n# sha256: %s\n", p->path, p->sha256);
	sb_addf(&out, "# block list: %zu entries from %s\n", bl->n,
		blpath ? blpath
		: access(policy_blocklist_default_path(), F_OK) == 0
		    ? policy_blocklist_default_path()
		    : "the built-in copy");
	sb_addf(&out, "# fail_on_violation in effect: observe %s, enforce %s\n",
		policy_fails_on_violation(p, POLICY_MODE_OBSERVE) ? "yes" : "no",
		policy_fails_on_violation(p, POLICY_MODE_ENFORCE) ? "yes" : "no");
	sb_addstr(&out, "# rules in effect:\n");
	if (step) {
		if (check_set(p, step, bl, &out))
			goto out;
	} else {
		if (check_set(p, NULL, bl, &out))
			goto out;
		for (size_t i = 0; i < p->nsteps; i++)
			if (check_set(p, p->steps[i].name, bl, &out))
				goto out;
	}
	policy_format(&out, p);
	rc = 0;
	for (int i = optind + 1; i < argc; i++) {
		long n = check_run(p, bl, argv[i], &out);

		if (n < 0) {
			rc = 1;
			goto out;
		}
		if (n > 0) {
			rc = 1;
			denied_runs++;
		}
	}
	fputs(sb_str(&out), stdout);
	if (denied_runs)
		rw_err("%s cannot pass %d of the %d run(s) given: see the list above", p->path,
		       denied_runs, argc - optind - 1);
out:
	sb_release(&out);
	policy_list_free(bl);
	policy_free(p);
	return rc;
}

static int do_blocklist(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct policy_list *bl;
	struct strbuf out = STRBUF_INIT;
	char err[512];
	int c;

	optind = 1;
	while ((c = cli_getopt("policy blocklist", argc, argv, "h", opts)) != -1) {
		if (c != 'h')
			return CLI_USAGE;
		fputs(policy_usage, stdout);
		return 0;
	}
	if (argc - optind > 1)
		return cli_usage("policy blocklist", "at most one block list file");
	bl = policy_load_blocklist(optind < argc ? argv[optind] : NULL, err, sizeof(err));
	if (!bl) {
		rw_err("%s", err);
		return 1;
	}
	sb_addf(&out, "# %zu entries; default location %s\n", bl->n,
		policy_blocklist_default_path());
	for (size_t i = 0; i < bl->n; i++) {
		sb_addstr(&out, "- { ");
		policy_entry_format(&out, &bl->v[i]);
		sb_addstr(&out, " }\n");
	}
	fputs(sb_str(&out), stdout);
	sb_release(&out);
	policy_list_free(bl);
	return 0;
}

int cmd_policy(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"check", do_check},
	    {"blocklist", do_blocklist},
	};

	return cli_dispatch("policy", argc, argv, subs, sizeof(subs) / sizeof(subs[0]),
			    policy_usage);
}
