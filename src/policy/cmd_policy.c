/*
 * `runwarden policy check FILE`: validates a policy exactly as `run` would (including every step's
 * flattened rules and their kernel form) and prints it normalised, so a reviewer sees what the
 * file means rather than how it was spelled. `runwarden policy blocklist [FILE]` does the same
 * for a block list.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "common/cli.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "policy/policy.h"

static const char policy_usage[] =
    "usage: runwarden policy check FILE [--step NAME] [--blocklist FILE]\n"
    "       runwarden policy blocklist [FILE]\n"
    "\n"
    "check      validate a policy file and print it normalised (exit 1 if invalid)\n"
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
	int c, rc = 1;

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
	fputs(sb_str(&out), stdout);
	rc = 0;
out:
	sb_release(&out);
	policy_list_free(bl);
	policy_free(p);
	return rc;
}

static int do_blocklist(int argc, char **argv)
{
	struct policy_list *bl;
	struct strbuf out = STRBUF_INIT;
	char err[512];

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(policy_usage, stdout);
		return 0;
	}
	if (argc > 2)
		return cli_usage("policy blocklist", "at most one block list file");
	if (argc == 2 && argv[1][0] == '-')
		return cli_usage("policy blocklist", "option '%s' is unknown", argv[1]);
	bl = policy_load_blocklist(argc == 2 ? argv[1] : NULL, err, sizeof(err));
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
	if (argc < 2)
		return cli_usage("policy", "no subcommand given (check, blocklist)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(policy_usage, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "check"))
		return do_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "blocklist"))
		return do_blocklist(argc - 1, argv + 1);
	return cli_usage("policy", "unknown subcommand '%s' (check, blocklist)", argv[1]);
}
