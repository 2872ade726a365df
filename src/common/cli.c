/* Shared option parsing for the subcommands (see cli.h). */
#include "common/cli.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/strbuf.h"
#include "common/util.h"

int cli_usage(const char *cmd, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	char base[64];
	va_list ap;

	/* the help lives with the top command: "job start" -> runwarden job --help */
	snprintf(base, sizeof(base), "%s", cmd);
	base[strcspn(base, " ")] = 0;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	rw_err_cmd(cmd, "%s (see 'runwarden %s --help')", sb_str(&sb), base);
	sb_release(&sb);
	return CLI_USAGE;
}

int cli_dispatch(const char *cmd, int argc, char **argv, const struct cli_sub *subs, size_t n,
		 const char *usage)
{
	struct strbuf names = STRBUF_INIT;
	int rc;

	if (argc >= 2 &&
	    (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
		fputs(usage, stdout);
		return 0;
	}
	for (size_t i = 0; argc >= 2 && i < n; i++)
		if (!strcmp(argv[1], subs[i].name)) {
			optind = 1;
			return subs[i].fn(argc - 1, argv + 1);
		}
	for (size_t i = 0; i < n; i++)
		sb_addf(&names, "%s%s", i ? ", " : "", subs[i].name);
	if (argc < 2)
		rc = cli_usage(cmd, "no subcommand given (%s)", sb_str(&names));
	else
		rc = cli_usage(cmd, "unknown subcommand '%s' (%s)", argv[1], sb_str(&names));
	sb_release(&names);
	return rc;
}

/* "--name" for a long option, "-c" for a short one. */
static void opt_name(char *buf, size_t len, const struct option *longopts, int longindex, int c)
{
	if (longindex >= 0)
		snprintf(buf, len, "--%s", longopts[longindex].name);
	else
		snprintf(buf, len, "-%c", c);
}

int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
	       const struct option *longopts)
{
	static char spec[128];
	int longindex = -1, c;
	char name[80];
	bool plus = shortopts[0] == '+';

	/* ':' first (after a '+') makes getopt report a missing value as ':' */
	snprintf(spec, sizeof(spec), "%s:%s", plus ? "+" : "", shortopts + plus);
	opterr = 0;
	c = getopt_long(argc, argv, spec, longopts, &longindex);
	if (c == -1)
		return -1;
	if (c == '?') {
		if (optopt && optopt != '?')
			cli_usage(cmd, "option '-%c' is unknown", optopt);
		else
			cli_usage(cmd, "option '%s' is unknown", argv[optind - 1]);
		return '?';
	}
	if (c == ':') {
		cli_usage(cmd, "option '%s' needs a value", argv[optind - 1]);
		return '?';
	}
	if (optarg) {
		opt_name(name, sizeof(name), longopts, longindex, c);
		if (!*optarg) {
			cli_usage(cmd, "option %s: empty value", name);
			return '?';
		}
		if (optarg[0] == '-') {
			cli_usage(cmd,
				  "option %s: value '%s' looks like an option (write ./%s for a "
				  "file of that name)",
				  name, optarg, optarg);
			return '?';
		}
	}
	return c;
}
