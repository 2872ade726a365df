/* Shared option parsing for the subcommands (see cli.h). */
#include "common/cli.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/strbuf.h"

int cli_usage(const char *cmd, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	char base[64];
	va_list ap;

	/* the help lives with the top command: "job start" -> runwarden job --help */
	snprintf(base, sizeof(base), "%s", cmd);
	base[strcspn(base, " ")] = 0;
	sb_addf(&sb, "runwarden %s: ", cmd);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	sb_addf(&sb, " (see 'runwarden %s --help')", base);
	/* one line, whatever the message quotes */
	for (size_t i = 0; i < sb.len; i++)
		if (sb.buf[i] == '\n' || sb.buf[i] == '\r')
			sb.buf[i] = ' ';
	fprintf(stderr, "%s\n", sb_str(&sb));
	sb_release(&sb);
	return CLI_USAGE;
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
