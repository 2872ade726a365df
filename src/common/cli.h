/*
 * Option parsing shared by every subcommand, so they all behave alike: -h/--help,
 * one error style ("runwarden CMD: why (see 'runwarden CMD --help')", exit status 2),
 * and option values that are empty or look like options refused (`run --out -- true`
 * would otherwise make a directory named "--").
 */
#ifndef RW_CLI_H
#define RW_CLI_H
#include <getopt.h>
#include <stddef.h>

/* Exit status for every usage error. */
#define CLI_USAGE 2

/*
 * getopt_long with the checks above. cmd names the command in messages ("run", "job start").
 * Returns the option's value, -1 at the end of the options, or '?' after printing the error
 * (the caller returns CLI_USAGE). Never returns ':'. The caller sets optind = 1 first
 * (argc/argv are the subcommand's, argv[0] its name).
 */
int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
	       const struct option *longopts);

/* A command made of subcommands ("job start", "policy check"). */
struct cli_sub {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is the subcommand's name */
};

/*
 * Runs the subcommand argv[1] names, with optind reset. -h, --help and help print usage on
 * stdout (exit 0); none or an unknown one is a usage error that lists the names.
 */
int cli_dispatch(const char *cmd, int argc, char **argv, const struct cli_sub *subs, size_t n,
		 const char *usage);

/* Prints "runwarden CMD: <message> (see 'runwarden CMD --help')" and returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
